# zsh -f zsh-complete.zsh FPATHDIR WORD...: what the _nook in FPATHDIR
# offers (one a line) with the cursor on the last WORD. compadd and the
# file helpers are stand-ins that print what they were given (compadd is a
# builtin only inside a completion widget); zsh filters by the prefix
# itself, so everything offered is printed.
fpath=($1 $fpath)
shift
compadd() {
  local arr=0
  while (( $# )); do
    case $1 in
      -[XJVx]) shift 2 ;;
      -a) arr=1; shift ;;
      --) shift; print -l -- "$@"; return 0 ;;
      -*) shift ;;
      *) if (( arr )); then print -l -- "${(@P)1}"; else print -l -- "$1"; fi; shift ;;
    esac
  done
  return 0
}
_files() { print -- '<files>' }
_directories() { print -- '<dirs>' }
_call_program() { shift; eval "$@" }
words=("$@")
CURRENT=$#words
autoload -Uz _nook
_nook

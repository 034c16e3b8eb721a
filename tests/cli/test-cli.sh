#!/usr/bin/env bash
# The command table, help, version and exit codes, as a user meets them.
NOOK=$1
. "$(dirname "$0")/lib.sh"

expect_rc "nook with no command is a usage error" 2 "$NOOK"
contains "  ... and lists the commands" "$ERR" "cidata"
expect_rc "nook help" 0 "$NOOK" help
for c in cidata doctor help version; do
	contains "  help lists $c" "$OUT" "  $c "
done
# help is generated from the table: every listed command answers --help
for c in $("$NOOK" help | awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1}'); do
	expect_rc "nook $c --help exits 0" 0 "$NOOK" "$c" --help
	contains "  nook $c --help shows its usage" "$OUT" "usage: nook $c"
	expect_rc "nook help $c exits 0" 0 "$NOOK" help "$c"
done
expect_rc "nook --help" 0 "$NOOK" --help
expect_rc "unknown command exits 2" 2 "$NOOK" frobnicate
contains "  ... and names it" "$ERR" "'frobnicate' is not a nook command"
expect_rc "commands match exactly, not by prefix" 2 "$NOOK" doc
expect_rc "help for an unknown command exits 2" 2 "$NOOK" help frobnicate
expect_rc "nook version" 0 "$NOOK" version
contains "  prints a version" "$OUT" "nook 0."
expect_rc "nook --version" 0 "$NOOK" --version
expect_rc "an unknown option exits 2" 2 "$NOOK" doctor --frob
contains "  ... and names it" "$ERR" "unknown option '--frob'"
expect_rc "a missing option value exits 2" 2 "$NOOK" cidata build -o
contains "  ... and says so" "$ERR" "needs a value"
expect_rc "version takes no arguments" 2 "$NOOK" version extra
expect_rc "help version WORD shows version's help, as help shell WORD does" 0 "$NOOK" help version extra
contains "  the help" "$OUT" "usage: nook version"
expect_rc "export help, as local help" 0 "$NOOK" export help
contains "  the help" "$OUT" "usage: nook export libvirt"
# suspend's default timeout grows with memory past an hour: what can be
# given goes as far as start's (a day)
expect_rc "suspend --timeout 5000 parses" 1 "$NOOK" local suspend t1 --timeout 5000
contains "  and gets as far as the VM" "$ERR" "no VM named 't1'"
expect_rc "stop --timeout past a day" 2 "$NOOK" local stop t1 --timeout 86401
# nook shell's words: NAME before or after its options, COMMAND after --
expect_rc "shell NAME --workdir DIR -- CMD parses" 1 "$NOOK" shell t1 --workdir /etc -- pwd
contains "... and gets as far as the VM" "$ERR" "no VM named 't1'"
expect_rc "shell --workdir '' is a usage error" 2 "$NOOK" shell t1 --workdir '' -- pwd
contains "... saying what it needs" "$ERR" "--workdir needs a directory"
expect_rc "shell --workdir -- NAME -- CMD: '--' is the directory" 1 "$NOOK" shell --workdir -- t1 -- pwd
contains "... and NAME the VM" "$ERR" "no VM named 't1'"
expect_rc "shell --user U NAME -- CMD parses" 1 "$NOOK" shell --user x t1 -- a b
contains "... and gets as far as the VM" "$ERR" "no VM named 't1'"
expect_rc "shell -- CMD means the default VM" 1 "$NOOK" shell -- pwd
contains "... the default VM" "$ERR" "'default'"
expect_rc "shell NAME WORD without --" 2 "$NOOK" shell t1 extra
contains "says to put the command after --" "$ERR" "after '--'"
expect_rc "shell with an unknown option" 2 "$NOOK" shell t1 --bogus
# sync's first word is a NAME or SRC: one that is neither is a typo
expect_rc "sync WORD, neither a file nor a VM name" 2 "$NOOK" sync no_such_vm
contains "  says both" "$ERR" "'no_such_vm' is neither a file (No such file or directory) nor a valid VM name"
expect_rc "sync --all WORD, likewise" 2 "$NOOK" sync --all no_such_vm
ln -s loop_x "$WORK/loop_x"
expect_rc "a WORD that is a file sync cannot read is no typo" 1 sh -c 'cd "$1" && exec "$2" sync loop_x' _ "$WORK" "$NOOK"
contains "  names the source and why" "$ERR" "sync source loop_x: Too many levels of symbolic links"
printf 'x' > "$WORK/a_file" && mkfifo "$WORK/a_fifo"
for f in a_file a_fifo; do
	expect_rc "sync NAME SRC with SRC a ${f#a_}" 1 timeout 20 "$NOOK" sync t1 "$WORK/$f"
	contains "  says it is not a directory" "$ERR" "sync source $WORK/$f is not a directory"
done
expect_rc "sync NAME SRC with SRC missing names the source" 1 "$NOOK" sync t1 ./missing_dir
contains "  only" "$ERR" "sync source ./missing_dir"
# --json asked for: a usage error is JSON on stdout too, once, the usage
# on stderr; a guest command's own --json (after --) is not nook's
usage_json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["usage"], d["error"])'; }
expect_rc "a usage error with --json" 2 "$NOOK" local list --json extra
check "  is JSON naming it" test "$(echo "$OUT" | usage_json)" = "True list takes no name"
contains "  the usage on stderr" "$ERR" "usage: nook local list"
expect_rc "a bad option value with --json" 2 "$NOOK" local start t1 --cpus 0 --json
check "  is JSON naming it" test "$(echo "$OUT" | usage_json)" = "True bad --cpus '0': expected a whole number from 1 to 64"
expect_rc "an invalid VM name with --json" 2 "$NOOK" local status 'a/b' --json
check "  is one JSON object, a usage error" test "$(echo "$OUT" | usage_json | cut -c1-4)" = True
expect_rc "--json after -- is the guest command's" 1 "$NOOK" shell t1 -- echo --json
check "  nothing on stdout" test -z "$OUT"
expect_rc "an unknown command with --json" 2 "$NOOK" frobnicate --json
check "  is JSON naming it" test "$(echo "$OUT" | usage_json)" = "True 'frobnicate' is not a nook command; see 'nook help'"
expect_rc "--js, as getopt takes it, with a usage error" 2 "$NOOK" local status --js a b
check "  is JSON" test "$(echo "$OUT" | usage_json)" = "True unexpected argument 'b'"
expect_rc "--json=1" 2 "$NOOK" local status x --json=1
contains "  says it takes no value" "$ERR" "option '--json' takes no value"
check "  as JSON too" test "$(echo "$OUT" | usage_json)" = "True option '--json' takes no value"
expect_rc "help for a command that is an escape sequence" 2 "$NOOK" help $'\e[31mX'
contains "  shows it escaped" "$ERR" "'\x1b[31mX' is not a nook command"
expect_rc "a failure that is no usage error with --json" 1 "$NOOK" local status t1 --json
check "  JSON without usage" test "$(echo "$OUT" | python3 -c 'import json,sys; print("usage" in json.load(sys.stdin))')" = False
# --json as an option's value is no --json: the failure is not JSON
expect_rc "sync --exclude --json (a pattern) that fails" 1 "$NOOK" sync t1 ./missing_dir --exclude --json
contains "  says why on stderr" "$ERR" "sync source ./missing_dir"
check "  and prints no JSON: none was asked for" test -z "$OUT"
expect_rc "start --user-data --json (a file) that fails" 1 "$NOOK" local start t1 --user-data --json
check "  prints no JSON" test -z "$OUT"
expect_rc "--json after an unknown option, never parsed" 2 "$NOOK" local list --bogus --json
check "  is JSON still" test "$(echo "$OUT" | usage_json)" = "True unknown option '--bogus'"
# a parent that made the pipe it shares with nook non-blocking, and reads
# it slowly: nook waits for room, nothing is lost (stdio took EAGAIN for
# a failure: "writing output", lines lost, exit 1)
slow_pipe() {
	python3 - "$@" <<'PY'
import fcntl, os, subprocess, sys, time
which, argv = sys.argv[1], sys.argv[2:]
plain = subprocess.run(argv, capture_output=True)
r, w = os.pipe()
fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
full = 0  # the pipe full: nook's first write finds no room
try:
    while True:
        full += os.write(w, b"x" * 4096)
except BlockingIOError:
    pass
out = {"stdout": w} if which == "stdout" else {"stderr": w}
p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, **out)
os.close(w)
time.sleep(0.5)
got = b""
while True:
    chunk = os.read(r, 4096)
    if not chunk:
        break
    got += chunk
    time.sleep(0.01)
want = getattr(plain, which)
print(p.wait() == plain.returncode, len(want) > 0 and got[full:] == want)
PY
}
check "help into a full non-blocking pipe, read slowly: all of it, exit 0" \
	test "$(slow_pipe stdout "$NOOK" help local start)" = "True True"
check "an error into a full non-blocking pipe: all of it, exit 2" \
	test "$(slow_pipe stderr "$NOOK" frobnicate)" = "True True"
finish

#!/usr/bin/env bash
# cmake --install into a temporary prefix, then the INSTALLED nook: its
# help, its image recipes found from its own prefix (not the source
# tree's), its man page rendered by groff without a warning and covering
# every command and option, and its shell completion driven through
# bash's own completion machinery (and zsh's parser).
NOOK=$1
. "$(dirname "$0")/lib.sh"
build=$(dirname "$NOOK")
P=$WORK/prefix
unset NOOK_RECIPES
[ -f "$build/CMakeCache.txt" ] || { fail "find the build directory of $NOOK"; finish; exit 1; }

expect_rc "cmake --install into a temporary prefix" 0 cmake --install "$build" --prefix "$P"
for f in bin/nook share/nook/recipes/debian-12.sh share/man/man1/nook.1 \
	share/bash-completion/completions/nook share/zsh/site-functions/_nook; do
	check "installed $f" test -s "$P/$f"
done
check "the recipe stays executable" test -x "$P/share/nook/recipes/debian-12.sh"
IN=$P/bin/nook
check "the installed nook is a copy, not the build's" test "$(realpath "$IN")" != "$NOOK"

# help and version
expect_rc "installed nook --help" 0 "$IN" --help
for c in local port shell sync images; do
	contains "help lists $c" "$OUT" "  $c "
done
expect_rc "installed nook version" 0 "$IN" version

# the recipes: PREFIX/share/nook/recipes, found from the binary's own path
expect_rc "doctor --json" 0 "$IN" doctor --json
check "recipes from the prefix" test "$(echo "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["dirs"]["recipes"])')" = "$P/share/nook/recipes"
check "the debian-12 recipe found there" test "$(echo "$OUT" | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["recipes"]))')" = debian-12
expect_rc "doctor names the recipes" 0 "$IN" doctor
contains "... in words" "$OUT" "image recipes:     $P/share/nook/recipes (debian-12)"
expect_rc "a build of an unknown recipe" 1 "$IN" images build no-such-recipe
contains "looks for it in the prefix" "$ERR" "$P/share/nook/recipes/no-such-recipe.sh"
# a copy of the tree elsewhere: the recipes follow the binary
cp -a "$P" "$WORK/moved"
check "a moved prefix finds its own recipes" sh -c '"$1" doctor --json | grep -q "\"recipes\": \"$2\""' _ "$WORK/moved/bin/nook" "$WORK/moved/share/nook/recipes"
mkdir -p "$WORK/mine"
cp "$P/share/nook/recipes/debian-12.sh" "$WORK/mine/custom.sh"
check "\$NOOK_RECIPES still wins" sh -c 'NOOK_RECIPES="$2" "$1" doctor --json | grep -q "\"custom\""' _ "$IN" "$WORK/mine"
check "the build tree's nook uses the source tree's" sh -c '"$1" doctor --json | grep -q "\"recipes\": \"$2\""' _ "$NOOK" "$(realpath "$(dirname "$0")/../../images/recipes")"

# the man page: no warning under -ww, every command and option in it
man1=$P/share/man/man1/nook.1
expect_rc "groff -man -ww renders it" 0 groff -man -ww -Tutf8 -z "$man1"
check "... without a warning" test -z "$ERR"
page=$(groff -man -Tutf8 "$man1" 2>/dev/null | sed 's/.\x08//g')
contains "the page has its title" "$page" "nook - a local cluster of cloud VMs"
cmds=$("$IN" help | sed -n 's/^  \([a-z-]*\) .*/\1/p')
check "nook help lists commands" test -n "$cmds"
for c in $cmds; do
	case $c in help | version) ;; *)
		contains "the man page has nook $c" "$page" "nook $c" ;;
	esac
	# a command's subcommands, from its help's table ("  sub  ...")
	# and its usage lines ("nook c sub ...")
	subs=$("$IN" "$c" --help 2>/dev/null | sed -n -e 's/^  \([a-z]\{2,\}\)  *[A-Za-z[].*/\1/p' \
		-e "s/^.*nook $c \([a-z][a-z]*\)\( .*\)\{0,1\}$/\1/p" | sort -u)
	for s in "" $subs; do
		for o in $("$IN" "$c" $s --help 2>/dev/null | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u); do
			contains "the man page has nook $c${s:+ $s} $o" "$page" "$o"
		done
	done
done

# bash completion, through bash's own machinery: the function `complete
# -p nook` names, called as readline would, COMPREPLY checked
mkdir -p "$NOOK_HOME/vms/webvm"
printf '{"name":"webvm","image":{"ref":"x","disk":"/nonexistent/disk.qcow2","format":"qcow2"},"boot":"disk","accel":"auto","cpus":1,"memory":268435456,"disk":0,"ssh_port":0,"instance_id":"i"}' \
	> "$NOOK_HOME/vms/webvm/vm.json"
expect_rc "a VM record made without a boot" 0 "$IN" local list --json
contains "... is listed" "$OUT" '"name": "webvm"'
complete_words() { # LINE: print COMPREPLY, sorted, one a line
	PATH="$P/bin:/usr/bin:/bin" bash --norc --noprofile -c '
		[ -n "$2" ] && [ -f "$2" ] && . "$2"
		. "$1"
		spec=$(complete -p nook) || exit 3
		fn=${spec#*-F }; fn=${fn%% *}
		COMP_LINE=$3
		COMP_POINT=${#COMP_LINE}
		read -ra COMP_WORDS <<< "$COMP_LINE"
		[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMPREPLY=()
		"$fn" nook "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}" | sort' _ \
		"$P/share/bash-completion/completions/nook" "$FRAMEWORK" "$1"
}
for FRAMEWORK in /usr/share/bash-completion/bash_completion ""; do
	how=${FRAMEWORK:+with bash-completion}; how=${how:-plain bash}
	if [ -n "$FRAMEWORK" ] && [ ! -f "$FRAMEWORK" ]; then
		fail "bash-completion is installed ($FRAMEWORK)"
		continue
	fi
	check "$how: nook local st<TAB> -> start status stop" \
		test "$(complete_words "nook local st" | tr '\n' ' ')" = "start status stop "
	check "$how: nook lo<TAB> -> local" test "$(complete_words "nook lo")" = local
	check "$how: nook local status we<TAB> -> webvm" \
		test "$(complete_words "nook local status we")" = webvm
	check "$how: nook port add <TAB> names the VM" \
		sh -c 'echo "$1" | grep -qx webvm' _ "$(complete_words "nook port add ")"
	check "$how: nook local start --mem<TAB> -> --memory" \
		test "$(complete_words "nook local start --mem")" = --memory
	check "$how: nook port list webvm --<TAB> -> --json" \
		test "$(complete_words "nook port list webvm --")" = --json
	check "$how: nook port <TAB> -> add list rm" \
		test "$(complete_words "nook port " | tr '\n' ' ')" = "add list rm "
	check "$how: a VM name is not offered twice" \
		test "$(complete_words "nook shell webvm ")" = ""
	check "$how: nook ex<TAB> -> export" test "$(complete_words "nook ex")" = export
	check "$how: nook export libvirt webvm --co<TAB> -> --connect" \
		test "$(complete_words "nook export libvirt webvm --co")" = --connect
	check "$how: an option a help's sentence names is not offered" \
		test "$(complete_words "nook local suspend webvm --" | tr '\n' ' ')" = "--json --timeout "
	check "$how: snapshot save's options are not list's" \
		test "$(complete_words "nook local snapshot save webvm --")" = ""
	check "$how: snapshot list's are" \
		test "$(complete_words "nook local snapshot list webvm --")" = --json
	check "$how: nook images pull --<TAB>: pull's options, not build's" \
		sh -c 'echo "$1" | grep -qx -- --sha256 && ! echo "$1" | grep -qx -- --cache' \
		_ "$(complete_words "nook images pull --")"
done
# a cluster's name, and an image's
mkdir -p "$NOOK_HOME/vms/kc-1"
sed 's/"name":"webvm"/"name":"kc-1","cluster":{"name":"kc","node":1,"address":"10.77.0.1","prefix":24}/' \
	"$NOOK_HOME/vms/webvm/vm.json" > "$NOOK_HOME/vms/kc-1/vm.json"
FRAMEWORK=
expect_rc "a cluster node's record" 0 "$IN" local list --json
contains "... names its cluster" "$OUT" '"cluster": "kc"'
check "a cluster's name completes" test "$(complete_words "nook local stop k" | tr '\n' ' ')" = "kc kc-1 "
qemu-img create -q -f qcow2 "$WORK/tiny.qcow2" 1M
"$IN" images import "$WORK/tiny.qcow2" --name tinyimg >/dev/null 2>&1
check "an image's name completes" test "$(complete_words "nook images rm ti")" = tinyimg
check "... and after --image" sh -c 'echo "$1" | grep -qx tinyimg' _ "$(complete_words "nook local start --image ti")"

# zsh: the file parses, and names its command
if command -v zsh >/dev/null; then
	check "zsh -n _nook" zsh -n "$P/share/zsh/site-functions/_nook"
	check "_nook is for nook" test "$(head -1 "$P/share/zsh/site-functions/_nook")" = "#compdef nook"
	zcomplete() { PATH="$P/bin:/usr/bin:/bin" zsh -f "$(dirname "$0")/zsh-complete.zsh" "$P/share/zsh/site-functions" "$@"; }
	check "zsh: nook local st<TAB> offers start status stop" \
		test "$(zcomplete nook local st | grep -c '^st')" = 3
	check "zsh: nook local status <TAB> offers webvm and kc" \
		sh -c 'echo "$1" | grep -qx webvm && echo "$1" | grep -qx kc' _ "$(zcomplete nook local status '')"
	check "zsh: nook local start --<TAB> offers --memory" \
		sh -c 'echo "$1" | grep -qx -- --memory' _ "$(zcomplete nook local start --)"
	check "zsh: nook images rm <TAB> offers tinyimg" \
		test "$(zcomplete nook images rm '')" = tinyimg
	check "zsh: nothing after a VM name of nook shell" \
		test -z "$(zcomplete nook shell webvm '')"
	check "zsh: nook images pull --<TAB>: pull's options, not build's" \
		sh -c 'echo "$1" | grep -qx -- --sha256 && ! echo "$1" | grep -qx -- --cache' \
		_ "$(zcomplete nook images pull --)"
	check "zsh: nook <TAB> offers export" \
		sh -c 'echo "$1" | grep -qx export' _ "$(zcomplete nook '')"
else
	ok "zsh is not installed: zsh completion not parsed"
fi
finish

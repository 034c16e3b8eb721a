# Shared by the end-to-end scripts: checks that count, and a closing line.
# Usage: . lib.sh; NOOK is the binary under test ($1 of the script).
set -u
NOOK=$(realpath "${NOOK:?}")
PASS=0
FAIL=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nook-cli.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export NOOK_HOME="$WORK/home"
# the source tree's image recipes: what the build directory's binary uses,
# and a copy of it outside that directory would look for beside its prefix
NOOK_RECIPES=${NOOK_RECIPES:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../images/recipes" && pwd)}
export NOOK_RECIPES

# each line says when it ended, in seconds from the script's start: where a
# slow test spends its time, in CI's log
ok() { PASS=$((PASS + 1)); printf 'ok   %4ss %s\n' "$SECONDS" "$1"; }
fail() { FAIL=$((FAIL + 1)); printf 'FAIL %4ss %s\n' "$SECONDS" "$1"; [ $# -gt 1 ] && printf '     %s\n' "$2"; return 0; }

# json EXPR: EXPR (Python) of the JSON on stdin, d
json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# check NAME COMMAND...: COMMAND must succeed
check() { local n=$1; shift; if "$@"; then ok "$n"; else fail "$n"; fi; }

# expect_rc NAME RC COMMAND...: COMMAND must exit RC; its stderr is in $ERR
expect_rc() {
	local n=$1 want=$2 rc
	shift 2
	"$@" >"$WORK/.out" 2>"$WORK/.err"
	rc=$?
	ERR=$(cat "$WORK/.err")
	OUT=$(cat "$WORK/.out")
	if [ "$rc" = "$want" ]; then ok "$n"; else fail "$n" "exit $rc, wanted $want: $ERR"; fi
}

# ended PID: wait (5 s at most) until process PID has ended; a zombie
# counts (a loaded machine may take longer than a fixed sleep to reap)
ended() {
	for _ in $(seq 50); do
		tr -d '\0' < "/proc/$1/cmdline" 2>/dev/null | grep -q . || return 0
		sleep 0.1
	done
	return 1
}

# killed_ends NAME ENDS PIDFILE COMMAND...: COMMAND (a nook whose stand-in
# program writes its pid to PIDFILE, then holds) run in the background
# and SIGKILLed once PIDFILE is written. No handler of nook's runs, so
# only its parent-death signal can end the stand-in: checks NAME (the
# stand-in ran) and ENDS (it ended with nook).
killed_ends() {
	local n=$1 ends=$2 pidfile=$3 pid held
	shift 3
	# (an earlier run's pid there would end the wait before this one's)
	rm -f "$pidfile"
	"$@" >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 100); do [ -s "$pidfile" ] && break; sleep 0.1; done
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	held=$(cat "$pidfile" 2>/dev/null)
	check "$n" test -n "$held"
	check "$ends" ended "$held"
}

# locked VM: a process holds VM's lock, as /proc/locks says: looked at,
# not taken, so that a nook after it meanwhile is not refused as busy
locked() { grep -q " FLOCK .* WRITE .*:$(stat -c %i "$NOOK_HOME/vms/$1/lock") " /proc/locks; }

# contains NAME HAYSTACK NEEDLE
contains() {
	case $2 in
	*"$3"*) ok "$1" ;;
	*) fail "$1" "no \"$3\" in: $2" ;;
	esac
}

# QEMU's monitor without nook (qmp.py): VM $1's socket, then what to ask
# (CMD [ARGS-JSON]...); each answer a line of JSON
QMP_PY=$(realpath "$(dirname "${BASH_SOURCE[0]}")/qmp.py")
# (imported from there too: no __pycache__ in the source tree)
export PYTHONDONTWRITEBYTECODE=1
qmp() {
	local vm=$1
	shift
	python3 "$QMP_PY" "$NOOK_HOME/run/$vm/qmp.sock" "$@"
}

# QEMU's own word on whether VM $1's vCPUs run, over its QMP socket
qmp_status() {
	qmp "$1" query-status | python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])'
}

# A suspend of VM $1 killed (SIGKILL) once QEMU had saved into file $2:
# its QMP steps done here by hand (stop, migrate to the file, completed).
# Prints QEMU's status after: postmigrate. For tests of a real QEMU.
cut_suspend() {
	python3 - "$NOOK_HOME/run/$1/qmp.sock" "$2" "$(dirname "$QMP_PY")" <<'PY'
import sys, time
sys.path.insert(0, sys.argv[3])
from qmp import Qmp
ask = Qmp(sys.argv[1]).ask
ask("stop")
ask("migrate", {"uri": "exec:cat > " + sys.argv[2]})
for _ in range(200):
    if ask("query-migrate")["return"].get("status") == "completed":
        break
    time.sleep(0.05)
print(ask("query-status")["return"]["status"])
PY
}

# cut_at_quit VM COMMAND...: COMMAND (a nook that ends VM's QEMU: a stop,
# a suspend) killed (SIGKILL) once that QEMU has ended, before it records
# what it made of VM. Not a race: a listener that never answers at VM's
# ssh master socket holds nook's clean-up after the QEMU it ended
# (vm_clean_runtime()) for seconds, and the kill comes at once. Fails
# when QEMU did not end within 10 s.
cut_at_quit() {
	local run=$NOOK_HOME/run/$1 qp lis pid rc=1
	shift
	qp=$(cat "$run/qemu.pid")
	python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(8)
time.sleep(60)' "$run/ssh.sock" &
	lis=$!
	for _ in $(seq 50); do [ -S "$run/ssh.sock" ] && break; sleep 0.1; done
	"$@" >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 200); do
		if ! tr -d '\0' < "/proc/$qp/cmdline" 2>/dev/null | grep -q .; then
			rc=0
			break
		fi
		sleep 0.05
	done
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	kill "$lis"
	wait "$lis" 2>/dev/null
	rm -f "$run/ssh.sock"
	return $rc
}

# watch_list, then a command, then seen_states NAME...: what 'nook local
# list --json', run again and again in the background meanwhile, said of
# each VM NAME's state, each change once, space-separated, a line a VM (a
# list racing a stop or a suspend of a real guest must never say crashed)
watch_list() {
	: > "$WORK/.watch"
	(while :; do "$NOOK" local list --json >> "$WORK/.watch" 2>/dev/null; done) &
	WATCHER=$!
}
seen_states() {
	sleep 0.3 # a list or two after the command's end
	kill "$WATCHER"
	wait "$WATCHER" 2>/dev/null
	python3 - "$WORK/.watch" "$@" <<'PY'
import json, sys
text, names = open(sys.argv[1]).read(), sys.argv[2:]
dec, i, seen = json.JSONDecoder(), 0, {n: [] for n in names}
while True:
    while i < len(text) and text[i].isspace():
        i += 1
    try:
        d, i = dec.raw_decode(text, i)
    except ValueError:  # the end, or a list cut short by the kill
        break
    for v in d:
        s = seen.get(v["name"])
        if s is not None and (not s or s[-1] != v["state"]):
            s.append(v["state"])
for n in names:
    print(" ".join(seen[n]))
PY
}

# went SEEN FROM TO: states SEEN (a line of seen_states) began with FROM,
# ended with TO, and never said crashed
went() {
	case " $1 " in *" crashed "*) return 1 ;; esac
	[ "${1%% *}" = "$2" ] && [ "${1##* }" = "$3" ]
}

finish() {
	echo "$PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
}

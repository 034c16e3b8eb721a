#!/usr/bin/env bash
# Suspend, resume and pause against the real test image under TCG. Two
# boots: the fixture VM, then the cold boot a stale save gives. In between:
# a suspend and a resume (the same boot, a process started before alive, a
# file written before there, the clock within a second of the host's after
# the host clock ran on, ssh working), and a pause (the guest's clock
# stands still, then is set right).
NOOK=$1
. "$(dirname "$0")/../cli/lib.sh"
img=$(bash "$(dirname "$0")/image.sh") || { fail "build the test image"; finish; exit 1; }
cleanup() {
	"$NOOK" local delete g1 --force >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
qemus() { pgrep -f -- "-name nook-$1" | wc -l; }
gsh() { "$NOOK" shell g1 -- "$@"; }
now() { date +%s.%N; }
since() { python3 -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$(now)"; }
# |guest clock - host clock| in seconds, the host's read before and after
clock_off() {
	local h0 g h1
	h0=$(now)
	g=$(gsh date +%s.%N)
	h1=$(now)
	python3 -c 'import sys; h0, g, h1 = map(float, sys.argv[1:]); print("%.3f" % abs(g - (h0 + h1) / 2))' "$h0" "$g" "$h1"
}
within() { python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)' "$1" "$2"; }
save=$NOOK_HOME/vms/g1/suspend.save

# --- boot 1 ---------------------------------------------------------------
t0=$(now)
expect_rc "start g1: ready" 0 "$NOOK" local start g1 --image "$img" --memory 1G
echo "     cold start: $(since "$t0") s"
boot_id=$(gsh cat /proc/sys/kernel/random/boot_id)
check "a boot id" test -n "$boot_id"
gsh sh -c 'setsid sleep 10000 </dev/null >/dev/null 2>&1 & echo $! > /tmp/sleeper'
sleeper=$(gsh cat /tmp/sleeper)
check "a process started" gsh kill -0 "$sleeper"
gsh sh -c 'echo written-before > "$HOME/marker"'

# --- suspend --------------------------------------------------------------
t0=$(now)
expect_rc "suspend" 0 "$NOOK" local suspend g1
echo "     suspend: $(since "$t0") s; $OUT"
check "  no QEMU" test "$(qemus g1)" = 0
expect_rc "  status --json" 0 "$NOOK" local status g1 --json
check "  suspended" test "$(echo "$OUT" | json 'd["state"]')" = suspended
size=$(echo "$OUT" | json 'd["save"]["size"]')
check "  the save's size is the file's" test "$size" = "$(stat -c %s "$save")"
echo "     save: $size bytes"
sleep 6 # the host clock runs on; the guest's stands at the save

# --- resume ---------------------------------------------------------------
t0=$(now)
expect_rc "start resumes" 0 "$NOOK" local start g1
resume_s=$(since "$t0")
echo "     resume: $resume_s s"
contains "  says resumed" "$OUT" "resumed"
check "  no word of a cold boot" sh -c '! echo "$1" | grep -q "booting cold"' _ "$OUT$ERR"
check "  the same boot" test "$(gsh cat /proc/sys/kernel/random/boot_id)" = "$boot_id"
check "  the process lives on" gsh kill -0 "$sleeper"
check "  the file is there" test "$(gsh cat marker)" = written-before
off=$(clock_off)
echo "     guest clock off by $off s after resume"
check "  the guest's clock within 1 s of the host's" within "$off" 1
check "  ssh works (a fresh connection, no master)" \
	ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o LogLevel=ERROR \
	-o UserKnownHostsFile=/dev/null -i "$NOOK_HOME/vms/g1/id_ed25519" \
	-p "$("$NOOK" local status g1 --json | json 'd["ssh"]["port"]')" \
	"$("$NOOK" local status g1 --json | json 'd["ssh"]["user"]')@127.0.0.1" true
check "  the save is used up" test ! -e "$save"

# --- pause: the guest's clock stands still, then is set right -------------
u0=$(gsh cut -d' ' -f1 /proc/uptime)
h0=$(now)
expect_rc "pause" 0 "$NOOK" local pause g1
check "  paused" test "$("$NOOK" local status g1 --json | json 'd["state"]')" = paused
sleep 4
expect_rc "unpause" 0 "$NOOK" local unpause g1
u1=$(gsh cut -d' ' -f1 /proc/uptime)
h1=$(now)
check "  the guest did not run while paused" python3 -c 'import sys; u0, u1, h0, h1 = map(float, sys.argv[1:]); sys.exit(0 if u1 - u0 < h1 - h0 - 3 else 1)' "$u0" "$u1" "$h0" "$h1"
off=$(clock_off)
echo "     guest clock off by $off s after unpause"
check "  the clock within 1 s after unpause" within "$off" 1

# --- a stale save: a cold boot, saying why ---------------------------------
expect_rc "suspend again" 0 "$NOOK" local suspend g1
touch "$NOOK_HOME/vms/g1/disk.qcow2"
expect_rc "start after the disk changed" 0 "$NOOK" local start g1
contains "  boots cold" "$OUT" "booting cold"
contains "  says why" "$OUT" "disk changed"
check "  a new boot" test "$(gsh cat /proc/sys/kernel/random/boot_id)" != "$boot_id"
check "  the save removed" test ! -e "$save"
finish

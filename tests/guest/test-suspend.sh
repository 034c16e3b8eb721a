#!/usr/bin/env bash
# Suspend, resume and pause against the real test image under TCG. Two
# boots: the fixture VM, then the cold boot a stale save gives. In between:
# a suspend and a resume (the same boot, a process started before alive, a
# file written before there, the clock within a second of the host's after
# the host clock ran on, ssh working), and a pause (the guest's clock
# stands still, then is set right), and a snapshot saved, the guest
# changed and the snapshot restored (the file as it was, the same boot,
# the clock right); after the second boot a stopped VM's disk snapshot.
NOOK=$1
. "$(dirname "$0")/../cli/lib.sh"
img=$(bash "$(dirname "$0")/image.sh") || { fail "build the test image"; finish; exit 1; }
cleanup() {
	"$NOOK" local delete g1 --force >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
qemus() { pgrep -f -- "$NOOK_HOME/run/$1/qemu.pid" | wc -l; }
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

# --- a suspend killed half way: the guest runs on, or is suspended ------
# (600 MiB of random bytes in the guest make the save take a while: the
# signal comes once it is being written; one that comes once it is kept
# finds a suspended VM). Before, SIGTERM left the guest stopped under a
# record that said running.
gsh sh -c 'setsid python3 -c "import os, time; b = os.urandom(600 << 20); open(\"/tmp/hog\", \"w\").close(); time.sleep(99999)" </dev/null >/dev/null 2>&1 & while [ ! -e /tmp/hog ]; do sleep 0.5; done'
"$NOOK" local suspend g1 >/dev/null 2>&1 &
killed=$!
# once the migration writes (or, if it was that quick, is done)
for _ in $(seq 300); do
	[ -s "$NOOK_HOME/vms/g1/.suspend.save.tmp" ] || [ -e "$save" ] && break
	sleep 0.02
done
kill -TERM "$killed"
wait "$killed"
check "a suspend killed by SIGTERM dies of it" test "$?" = 143
st=$("$NOOK" local status g1 --json | json 'd["state"]')
echo "     killed during the suspend: $st"
if [ "$st" = running ]; then
	check "  running: the guest answers" timeout 60 "$NOOK" shell g1 -- true
	check "  no save, no half-written one" test ! -e "$save" -a ! -e "$NOOK_HOME/vms/g1/.suspend.save.tmp"
else
	check "  or suspended, with its save" test "$st" = suspended -a -s "$save"
	expect_rc "  which resumes" 0 "$NOOK" local start g1
fi
gsh pkill -f os.urandom

# --- suspend --------------------------------------------------------------
t0=$(now)
watch_list
expect_rc "suspend" 0 "$NOOK" local suspend g1
echo "     suspend: $(since "$t0") s; $OUT"
seen=$(seen_states g1)
echo "     list said, meanwhile: $seen"
check "  list said running, then suspended, never crashed" went "$seen" running suspended
check "  no QEMU" test "$(qemus g1)" = 0
expect_rc "  status --json" 0 "$NOOK" local status g1 --json
check "  suspended" test "$(echo "$OUT" | json 'd["state"]')" = suspended
size=$(echo "$OUT" | json 'd["save"]["size"]')
check "  the save's size is the file's" test "$size" = "$(stat -c %s "$save")"
echo "     save: $size bytes"
sleep 6 # the host clock runs on; the guest's stands at the save

# --- resume ---------------------------------------------------------------
t0=$(now)
# with kernel arguments added meanwhile: they are for the next boot, not
# the machine the save loads into
expect_rc "start resumes (--append added)" 0 "$NOOK" local start g1 --append nook.resume_test=1
resume_s=$(since "$t0")
echo "     resume: $resume_s s"
contains "  says resumed" "$OUT" "resumed"
check "  no word of a cold boot" sh -c '! echo "$1" | grep -q "booting cold"' _ "$OUT$ERR"
check "  the same boot" test "$(gsh cat /proc/sys/kernel/random/boot_id)" = "$boot_id"
check "  the process lives on" gsh kill -0 "$sleeper"
check "  the file is there" test "$(gsh cat marker)" = written-before
cmdline=$(gsh cat /proc/cmdline)
contains "  on the kernel arguments it booted with" "$cmdline" "console=ttyS0"
check "  not the ones added" sh -c '! printf "%s" "$1" | grep -q nook.resume_test' _ "$cmdline"
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

# --- a snapshot of the running guest: disk and memory back ----------------
gsh sh -c 'echo before-snapshot > "$HOME/snapfile"'
t0=$(now)
expect_rc "snapshot save" 0 "$NOOK" local snapshot save g1 snap1
echo "     snapshot save: $(since "$t0") s; $OUT"
gsh sh -c 'echo after-snapshot > "$HOME/snapfile"; setsid sleep 10001 </dev/null >/dev/null 2>&1 & echo $! > /tmp/later'
later=$(gsh cat /tmp/later)
check "  the file changed" test "$(gsh cat snapfile)" = after-snapshot
expect_rc "  list --json" 0 "$NOOK" local snapshot list g1 --json
check "  snap1 with memory" test "$(echo "$OUT" | json '[(s["tag"], s["memory"]) for s in d]')" = "[('snap1', True)]"
check "  its size: memory's" test "$(echo "$OUT" | json 'd[0]["size"] > 1 << 20')" = True
sleep 3 # the host clock runs on; the snapshot's stands
t0=$(now)
expect_rc "snapshot restore" 0 "$NOOK" local snapshot restore g1 snap1
echo "     snapshot restore: $(since "$t0") s"
contains "  disk and memory" "$OUT" "disk and memory"
check "  the file as it was" test "$(gsh cat snapfile)" = before-snapshot
check "  the same boot" test "$(gsh cat /proc/sys/kernel/random/boot_id)" = "$boot_id"
check "  a process started after the snapshot is gone" test "$(gsh sh -c 'kill -0 "$1" 2>/dev/null && echo alive || echo gone' _ "$later")" = gone
check "  one started before lives" gsh kill -0 "$sleeper"
off=$(clock_off)
echo "     guest clock off by $off s after restore"
check "  the clock within 1 s after restore" within "$off" 1
expect_rc "snapshot rm" 0 "$NOOK" local snapshot rm g1 snap1
expect_rc "  list" 0 "$NOOK" local snapshot list g1 --json
check "  empty" test "$(echo "$OUT" | json 'len(d)')" = 0
check "  qemu-img agrees" test "$(qemu-img info -U --output=json "$NOOK_HOME/vms/g1/disk.qcow2" | json 'len(d.get("snapshots", []))')" = 0

# --- a stale save: a cold boot, saying why ---------------------------------
expect_rc "suspend again" 0 "$NOOK" local suspend g1
touch "$NOOK_HOME/vms/g1/disk.qcow2"
expect_rc "start after the disk changed" 0 "$NOOK" local start g1
contains "  boots cold" "$OUT" "booting cold"
contains "  says why" "$OUT" "disk changed"
check "  a new boot" test "$(gsh cat /proc/sys/kernel/random/boot_id)" != "$boot_id"
contains "  with the kernel arguments added at the resume" "$(gsh cat /proc/cmdline)" "nook.resume_test=1"
check "  the save removed" test ! -e "$save"

# --- a stopped VM's snapshot: the disk alone -------------------------------
watch_list
expect_rc "stop" 0 "$NOOK" local stop g1
seen=$(seen_states g1)
echo "     list said, meanwhile: $seen"
check "  list said running, then stopped, never crashed" went "$seen" running stopped
expect_rc "snapshot save while stopped" 0 "$NOOK" local snapshot save g1 cold
expect_rc "  list" 0 "$NOOK" local snapshot list g1
check "  cold: memory no" sh -c 'echo "$1" | grep -q "^cold .* no$"' _ "$OUT"
expect_rc "  restore it" 0 "$NOOK" local snapshot restore g1 cold
check "  the overlay is sound" qemu-img check -q "$NOOK_HOME/vms/g1/disk.qcow2"
finish

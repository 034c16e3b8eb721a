#!/usr/bin/env bash
# suspend, resume, pause without a guest OS: a blank disk's QEMU (the
# firmware finding nothing to boot) is saved and loaded like any other, so
# the states, the save file, what it records, and every way a save is
# refused (a changed disk, a truncated or damaged file, changed settings,
# --cold) are checked in seconds. The guest test checks the guest itself.
NOOK=$1
. "$(dirname "$0")/lib.sh"
cleanup() {
	for vm in s1 s2; do "$NOOK" local delete "$vm" --force >/dev/null 2>&1; done
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
qemus() { pgrep -f -- "$NOOK_HOME/run/$1/qemu.pid" | wc -l; }
cmdline() { tr '\0' ' ' < /proc/"$(cat "$NOOK_HOME/run/$1/qemu.pid")"/cmdline; }
state() { "$NOOK" local status "$1" --json | json 'd["state"]'; }
save=$NOOK_HOME/vms/s1/suspend.save
qemu-img create -q -f raw blank.img 64M

# nothing to suspend, pause or unpause yet
expect_rc "suspend of no VM" 1 "$NOOK" local suspend s1
contains "  says there is none" "$ERR" "no VM named 's1'"
fixed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
expect_rc "start" 0 "$NOOK" local start s1 --image blank.img --no-wait \
	--memory 256M --cpus 1 --accel tcg --port 0:80 --port "$fixed:81"
pinned=$(qemu-system-x86_64 -machine help | sed -n 's/^q35 .*(alias of \(.*\))$/\1/p')
contains "the machine type is the versioned one" "$(cmdline s1)" "-machine $pinned "
ports=$("$NOOK" local status s1 --json | json 'd["ports"]')
expect_rc "unpause of a running VM" 1 "$NOOK" local unpause s1
contains "  says it is not paused" "$ERR" "is running, not paused"

# pause: QEMU stays, its CPUs stop; unpause: they run on
pid=$(cat "$NOOK_HOME/run/s1/qemu.pid")
expect_rc "pause" 0 "$NOOK" local pause s1
check "  status paused" test "$(state s1)" = paused
check "  QEMU says paused" test "$(qmp_status s1)" = paused
check "  the same QEMU" test "$(cat "$NOOK_HOME/run/s1/qemu.pid")" = "$pid"
expect_rc "pause a paused VM" 1 "$NOOK" local pause s1
expect_rc "delete of a paused VM" 1 "$NOOK" local delete s1
contains "  says paused, and the way out" "$ERR" "VM s1 is paused (pid $pid); stop it first or use --force"
expect_rc "unpause" 0 "$NOOK" local unpause s1
check "  status running" test "$(state s1)" = running
check "  QEMU says running" test "$(qmp_status s1)" = running
contains "  no sshd to set the clock through: said" "$ERR" "clock"
check "  no pause's mark left" test ! -e "$NOOK_HOME/vms/s1/pause-begun"
# a pause killed (SIGKILL) once QEMU had stopped its CPUs, before its
# record: made here by hand (QMP stop, the mark the pause leaves). The
# first look records what QEMU says, and unpause takes it
mark=$NOOK_HOME/vms/s1/pause-begun
qmp s1 stop >/dev/null
: > "$mark"
expect_rc "a pause cut off before its record: status" 0 "$NOOK" local status s1 --json
contains "  says so" "$ERR" "VM s1: a pause of it was cut off once QEMU had stopped its CPUs; it is recorded paused, as QEMU says"
check "  paused, as QEMU says" test "$(echo "$OUT" | json 'd["state"]')" = paused
check "  the mark is gone" test ! -e "$mark"
expect_rc "  unpause" 0 "$NOOK" local unpause s1
check "  QEMU says running" test "$(qmp_status s1)" = running
# ... an unpause, under the lock of the next command (a pause)
"$NOOK" local pause s1 >/dev/null
qmp s1 cont >/dev/null
: > "$mark"
expect_rc "an unpause cut off before its record: pause" 0 "$NOOK" local pause s1
contains "  says so" "$ERR" "VM s1: an unpause of it was cut off once QEMU had restarted its CPUs; it is recorded running"
check "  paused" test "$(state s1)" = paused
check "  and so it is" test "$(qmp_status s1)" = paused
"$NOOK" local unpause s1 >/dev/null 2>&1

# suspend: the save is written, QEMU ends, the record says what it needs
t0=$(date +%s.%N)
expect_rc "suspend" 0 "$NOOK" local suspend s1
echo "     suspend took $(echo "$(date +%s.%N) - $t0" | bc) s"
contains "  says how big" "$OUT" "suspended:"
check "  no QEMU" test "$(qemus s1)" = 0
check "  the save exists" test -s "$save"
check "  mode 0600" test "$(stat -c %a "$save")" = 600
check "  no temporary file left" test -z "$(find "$NOOK_HOME/vms/s1" -name '*.tmp')"
expect_rc "status --json" 0 "$NOOK" local status s1 --json
check "  suspended" test "$(echo "$OUT" | json 'd["state"]')" = suspended
check "  its save's size" test "$(echo "$OUT" | json 'd["save"]["size"]')" = "$(stat -c %s "$save")"
check "  not gone" test "$(echo "$OUT" | json 'd["save"]["gone"]')" = False
check "  its save's age" test "$(echo "$OUT" | json 'd["save"]["age"] >= 0')" = True
check "  no pid" test "$(echo "$OUT" | json 'd["pid"]')" = None
rec=$NOOK_HOME/vms/s1/vm.json
check "  recorded: QEMU's version" test "$(json 'd["state"]["save"]["version"]' < "$rec")" = \
	"$(qemu-system-x86_64 --version | sed -n 's/^QEMU emulator version //p')"
check "  recorded: the machine" test "$(json 'd["state"]["save"]["machine"]' < "$rec")" = "$pinned"
check "  recorded: the binary" test "$(json 'd["state"]["save"]["qemu"]' < "$rec")" = \
	"$(realpath "$(command -v qemu-system-x86_64)")"
check "  recorded: the disk's inode" test "$(json 'd["state"]["save"]["disk"]["inode"]' < "$rec")" = \
	"$(stat -c %i "$NOOK_HOME/vms/s1/disk.qcow2")"
expect_rc "status (text)" 0 "$NOOK" local status s1
contains "  says suspended with its save" "$OUT" "suspended (saved state"
expect_rc "list" 0 "$NOOK" local list
contains "  shows the save" "$OUT" "(saved "
expect_rc "suspend a suspended VM" 1 "$NOOK" local suspend s1
contains "  says why" "$ERR" "is suspended"
expect_rc "stop a suspended VM" 0 "$NOOK" local stop s1
contains "  keeps the save, saying so" "$OUT" "saved state is kept"
contains "  and which start discards it" "$OUT" "'nook local start s1 --cold' discards it"
expect_rc "  again, --json" 0 "$NOOK" local stop s1 --json
check "  says stopped, and how" test "$(echo "$OUT" | json '(d["name"], d["stopped"], "saved state is kept" in d["how"])')" = "('s1', True, True)"
expect_rc "stop --json of no VM" 1 "$NOOK" local stop nosuch --json
contains "  gives the error as JSON" "$(echo "$OUT" | json 'd["error"]')" "no VM named 'nosuch'"
check "  the save is still there" test -s "$save"
sleep 1

# resume: the same argv plus -incoming, the same forwards
expect_rc "start resumes" 0 "$NOOK" local start s1
contains "  says resumed" "$OUT" "resumed from its saved state"
contains "  no sshd to set the clock through: said" "$ERR" "clock"
check "  QEMU runs" test "$(qemus s1)" = 1
contains "  loaded from the save" "$(cmdline s1)" "-incoming defer"
check "  status running" test "$(state s1)" = running
check "  QEMU says running" test "$(qmp_status s1)" = running
check "  the same forwards" test "$("$NOOK" local status s1 --json | json 'd["ports"]')" = "$ports"
check "  the save is used up" test ! -e "$save"

# a suspended VM whose save file is gone (removed by hand): status says
# so, and what the next start does, not the size the save had
"$NOOK" local suspend s1 >/dev/null 2>&1
mv "$save" "$WORK/away.save"
expect_rc "status of a suspended VM whose save is gone" 0 "$NOOK" local status s1
contains "  says it is gone" "$OUT" "suspended (saved state gone, made "
contains "  and what the next start does" "$OUT" "nook local start s1 boots it afresh"
check "  no size" sh -c '! printf "%s" "$1" | grep -q "[0-9]M,"' _ "$OUT"
expect_rc "  --json" 0 "$NOOK" local status s1 --json
check "  gone, no size" test "$(echo "$OUT" | json '(d["save"]["gone"], d["save"]["size"])')" = "(True, None)"
expect_rc "  list" 0 "$NOOK" local list
contains "  says it is gone" "$OUT" "(saved state gone, made "
mv "$WORK/away.save" "$save"
expect_rc "  back in place: resumed" 0 "$NOOK" local start s1
contains "  resumed" "$OUT" "resumed from its saved state"

# the facts a suspend writes beside its save are a mend's aid alone: a
# suspend that cannot write them (on a disk the save has just filled;
# here a directory in their place) is whole, and says nothing of them
facts=$NOOK_HOME/vms/s1/.suspend.save.facts
mkdir "$facts"
expect_rc "a suspend that cannot write its save's facts" 0 "$NOOK" local suspend s1
check "  says nothing of them" sh -c 'case $1 in *facts*) exit 1 ;; esac' _ "$ERR"
check "  suspended" test "$(state s1)" = suspended
rmdir "$facts"
# a suspend cut off before its save began left its facts alone: the next
# command that holds the VM removes them
expect_rc "start s1 (resumed)" 0 "$NOOK" local start s1
: > "$facts.begun"
: > "$facts.begun.tmp"
expect_rc "the facts of a suspend cut off before its save: pause" 0 "$NOOK" local pause s1
check "  they are gone" test ! -e "$facts.begun"
check "  and their temporary file" test ! -e "$facts.begun.tmp"
expect_rc "  unpause; suspend again" 0 sh -c '"$1" local unpause s1 && "$1" local suspend s1' _ "$NOOK"
# the facts a resume writes beside the save keep it should the resume be
# cut off: one that cannot write them does not begin, saying why; the
# save is kept, and the next start resumes it
resuming=$NOOK_HOME/vms/s1/.suspend.save.resuming
mkdir "$resuming"
expect_rc "a resume that cannot write its facts" 1 "$NOOK" local start s1
contains "  says why, and what to do" "$ERR" "VM s1 was not resumed: cannot write $resuming ("
contains "  the save kept" "$ERR" "its save is kept: 'nook local start s1' tries again"
check "  still suspended" test "$(state s1)" = suspended
check "  the save kept" test -s "$save"
rmdir "$resuming"
# ... on a full disk (a tmpfs of its own, in a mount namespace of the
# test's: nothing outside sees it, the VM's files copied in): said so
if unshare -m true 2>/dev/null; then
	out=$(unshare -m bash -s "$NOOK" "$NOOK_HOME" "$WORK" <<'SH' 2>&1
NOOK=$1 NOOK_HOME=$2
cp -a "$NOOK_HOME/vms/s1" "$3/s1.copy" || exit 1
mount -t tmpfs -o size=64m tmpfs "$NOOK_HOME/vms" || exit 1
cp -a "$3/s1.copy" "$NOOK_HOME/vms/s1" || exit 1
# (the copy is the same disk under another inode, which the save names)
python3 - "$NOOK_HOME/vms/s1" <<'PY'
import json, os, sys
rec = os.path.join(sys.argv[1], "vm.json")
r = json.load(open(rec))
disk = os.stat(os.path.join(sys.argv[1], "disk.qcow2"))
r["state"]["save"]["disk"]["inode"] = disk.st_ino
json.dump(r, open(rec, "w"))
PY
dd if=/dev/zero of="$NOOK_HOME/vms/filler" bs=64k 2>/dev/null
"$NOOK" local start s1 --no-wait --timeout 20
echo "exit $?"
SH
)
	rm -rf "$WORK/s1.copy"
	contains "a resume on a full disk fails" "$out" "exit 1"
	contains "  says the disk is full, and what to do" "$out" "VM s1 was not resumed: the disk holding $NOOK_HOME/vms/s1 is full"
	contains "  the save kept" "$out" "'nook local start s1' resumes it (its save is kept)"
fi
expect_rc "  the next start resumes it" 0 "$NOOK" local start s1
contains "  resumed" "$OUT" "resumed from its saved state"
# a suspend whose save is whole but whose record cannot be written (no
# inode left for the record's new file, on a tmpfs of the test's): the
# save is kept for the next command, which records it once there is room
if unshare -m true 2>/dev/null; then
	out=$(unshare -m bash -s "$NOOK" "$NOOK_HOME" "$WORK" <<'SH' 2>&1
NOOK=$1 NOOK_HOME=$2
cd "$3" || exit 1
mount -t tmpfs -o size=64m,nr_inodes=64 tmpfs "$NOOK_HOME/vms" || exit 1
"$NOOK" local start sf --image blank.img --no-wait --memory 256M --cpus 1 \
	--accel tcg >/dev/null 2>&1 || { echo "start failed"; exit 1; }
mkdir "$NOOK_HOME/vms/fill"
i=0
while touch "$NOOK_HOME/vms/fill/$i" 2>/dev/null; do i=$((i + 1)); done
# room for the save and its facts' files, none for the record's
rm "$NOOK_HOME/vms/fill/0" "$NOOK_HOME/vms/fill/1"
"$NOOK" local suspend sf
echo "suspend exit $?"
ls -a "$NOOK_HOME/vms/sf" | grep suspend
"$NOOK" local status sf >/dev/null
rm -r "$NOOK_HOME/vms/fill"
"$NOOK" local status sf --json | python3 -c 'import json, sys; print("state", json.load(sys.stdin)["state"])'
"$NOOK" local start sf --timeout 30 >/dev/null 2>&1
echo "start exit $?"
"$NOOK" local status sf --json | python3 -c 'import json, sys; print("state", json.load(sys.stdin)["state"])'
"$NOOK" local delete sf --force >/dev/null 2>&1
SH
)
	printf '%s\n' "$out" | sed 's/^/     | /'
	contains "a suspend whose record cannot be written fails" "$out" "suspend exit 1"
	contains "  says the save is whole, and what to do" "$out" "VM sf: its save is whole but its record cannot be written; free space on the disk holding $NOOK_HOME/vms/sf"
	contains "  the save kept, with its facts" "$out" ".suspend.save.facts"
	contains "  a look while the disk is still full keeps it" "$out" "VM sf: its save is whole, and its record still cannot be written"
	contains "  once there is room, the next look records it suspended" "$out" "VM sf: a suspend of it was cut off once its save was whole; the save is kept"
	contains "  suspended" "$out" "state suspended"
	contains "  and the start resumes it" "$out" "start exit 0"
	contains "  running" "$out" "state running"
fi

# ... and one with no room for its facts, then with room for them alone
# (a single inode): none begins, the guest runs on (the save, written
# first, used to be removed with no facts to keep it by: the VM stopped)
if unshare -m true 2>/dev/null; then
	out=$(unshare -m bash -s "$NOOK" "$NOOK_HOME" "$WORK" <<'SH' 2>&1
NOOK=$1 NOOK_HOME=$2
cd "$3" || exit 1
mount -t tmpfs -o size=64m,nr_inodes=64 tmpfs "$NOOK_HOME/vms" || exit 1
"$NOOK" local start sg --image blank.img --no-wait --memory 256M --cpus 1 \
	--accel tcg >/dev/null 2>&1 || { echo "start failed"; exit 1; }
mkdir "$NOOK_HOME/vms/fill"
i=0
while touch "$NOOK_HOME/vms/fill/$i" 2>/dev/null; do i=$((i + 1)); done
"$NOOK" local suspend sg
echo "no room: suspend exit $?"
rm "$NOOK_HOME/vms/fill/0"
"$NOOK" local suspend sg
echo "suspend exit $?"
echo "files: $(ls -A "$NOOK_HOME/vms/sg" | grep -c suspend)"
rm -r "$NOOK_HOME/vms/fill"
"$NOOK" local status sg --json | python3 -c 'import json, sys; print("state", json.load(sys.stdin)["state"])'
"$NOOK" local suspend sg >/dev/null
echo "suspend again exit $?"
"$NOOK" local delete sg --force >/dev/null 2>&1
SH
)
	printf '%s\n' "$out" | sed 's/^/     | /'
	check "a suspend with no room for its facts fails" grep -qx "no room: suspend exit 1" <<<"$out"
	contains "  says the disk is full, and what to do" "$out" "VM sg was not suspended: the disk holding $NOOK_HOME/vms/sg is full (No space left on device writing $NOOK_HOME/vms/sg/.suspend.save.facts.begun); free space there"
	contains "  and that the VM runs on" "$out" "then suspend again; it runs on as it was"
	check "with room for its facts alone, it fails too" grep -qx "suspend exit 1" <<<"$out"
	contains "  says the disk is full" "$out" "VM sg was not suspended: the disk holding $NOOK_HOME/vms/sg is full (No space left on device writing $NOOK_HOME/vms/sg/.suspend.save.tmp)"
	check "  nothing of the suspend is left" grep -qx "files: 0" <<<"$out"
	check "  it still runs" grep -qx "state running" <<<"$out"
	check "  and suspends once there is room" grep -qx "suspend again exit 0" <<<"$out"
fi

# a resumed QEMU (with -incoming) suspends and resumes again
expect_rc "suspend the resumed VM, --json" 0 "$NOOK" local suspend s1 --json
check "  says suspended" test "$(echo "$OUT" | json '(d["name"], d["state"])')" = "('s1', 'suspended')"
check "  and the save's size" test "$(echo "$OUT" | json 'd["save"]["size"]')" = "$(stat -c %s "$save")"
check "  and how long it took" test "$(echo "$OUT" | json 'd["save"]["seconds"] > 0')" = True
expect_rc "and resume it again" 0 "$NOOK" local start s1
contains "  resumed" "$OUT" "resumed"

# a suspend killed (SIGKILL) once QEMU had saved (cut_suspend, lib.sh),
# its temporary save left, the record still running. The first look
# mends it: the guest runs on
check "a suspend cut off after QEMU saved: QEMU waits, stopped" test "$(cut_suspend s1 "$WORK/cut.save")" = postmigrate
: > "$NOOK_HOME/vms/s1/.suspend.save.tmp"
expect_rc "  status" 0 "$NOOK" local status s1 --json
contains "  says the suspend was cut off" "$ERR" "VM s1: a suspend of it was cut off; its guest runs on"
check "  running, as recorded" test "$(echo "$OUT" | json 'd["state"]')" = running
check "  and so it is: QEMU says running" test "$(qmp_status s1)" = running
check "  the temporary save is gone" test ! -e "$NOOK_HOME/vms/s1/.suspend.save.tmp"
expect_rc "  and it suspends again" 0 "$NOOK" local suspend s1
expect_rc "  and resumes" 0 "$NOOK" local start s1
rm -f "$WORK/cut.save"
cut=$NOOK_HOME/vms/s1/.suspend.save.tmp
# ... while QEMU does not answer (stopped here with SIGSTOP): nothing is
# lost, the file stays for the next look, which mends it
check "a suspend cut off, QEMU slow to answer" test "$(cut_suspend s1 "$WORK/cut.save")" = postmigrate
: > "$cut"
kill -STOP "$(cat "$NOOK_HOME/run/s1/qemu.pid")"
expect_rc "  status" 0 "$NOOK" local status s1
contains "  says the guest stays stopped for now" "$ERR" "VM s1: a suspend of it was cut off, and its guest stays stopped for now"
check "  the file stays" test -e "$cut"
kill -CONT "$(cat "$NOOK_HOME/run/s1/qemu.pid")"
expect_rc "  the next status" 0 "$NOOK" local status s1
contains "  mends it" "$ERR" "its guest runs on"
check "  QEMU says running" test "$(qmp_status s1)" = running
rm -f "$WORK/cut.save"
# ... of a paused VM: it stays paused, and a suspend takes it again
expect_rc "a paused VM" 0 "$NOOK" local pause s1
check "  a suspend of it cut off" test "$(cut_suspend s1 "$WORK/cut.save")" = postmigrate
: > "$cut"
expect_rc "  status" 0 "$NOOK" local status s1 --json
contains "  says it stays paused" "$ERR" "VM s1: a suspend of it was cut off; it stays paused"
check "  paused, as recorded" test "$(echo "$OUT" | json 'd["state"]')" = paused
check "  and so it is" test "$(qmp_status s1)" = paused
expect_rc "  a suspend takes it" 0 "$NOOK" local suspend s1
expect_rc "  and resumes it" 0 "$NOOK" local start s1
rm -f "$WORK/cut.save"
# ... once the save was whole and QEMU had quit, before the rename (a
# window of a tenth of a second): made here from a finished suspend, its
# save and facts put back as the suspend had them, the record as it was
# (running, naming the QEMU that is gone). The save is kept and resumed
expect_rc "a suspend cut off once its save was whole" 0 "$NOOK" local suspend s1
rec=$NOOK_HOME/vms/s1/vm.json
python3 - "$rec" "$NOOK_HOME/vms/s1" <<'PY'
import json, os, sys
rec, d = sys.argv[1], sys.argv[2]
r = json.load(open(rec))
facts = r["state"].pop("save")
open(os.path.join(d, ".suspend.save.facts"), "w").write(json.dumps(facts))
os.rename(os.path.join(d, "suspend.save"), os.path.join(d, ".suspend.save.tmp"))
r["state"]["status"] = "running"
r["state"]["pid"] = 2 ** 22 - 1
json.dump(r, open(rec, "w"))
PY
expect_rc "  status" 0 "$NOOK" local status s1 --json
contains "  says the save is kept" "$ERR" "VM s1: a suspend of it was cut off once its save was whole; the save is kept"
check "  suspended" test "$(echo "$OUT" | json 'd["state"]')" = suspended
check "  its files in place" test -s "$save" -a ! -e "$cut" -a ! -e "$NOOK_HOME/vms/s1/.suspend.save.facts"
expect_rc "  the next start resumes it" 0 "$NOOK" local start s1
contains "  resumed" "$OUT" "resumed from its saved state"
# ... killed (SIGKILL) at the moment its QEMU had quit, the save whole
# (cut_at_quit, lib.sh): kept as above
check "a suspend killed once its QEMU quit" cut_at_quit s1 "$NOOK" local suspend s1
check "  before its record" test "$(json 'd["state"]["status"]' < "$rec")" = running
check "  its save whole, its facts beside it" test -s "$cut" -a -s "$NOOK_HOME/vms/s1/.suspend.save.facts"
expect_rc "  list" 0 "$NOOK" local list --json
check "  says suspended" test "$(echo "$OUT" | json '[v["state"] for v in d if v["name"] == "s1"]')" = "['suspended']"
contains "  and that the save is kept" "$ERR" "VM s1: a suspend of it was cut off once its save was whole; the save is kept"
expect_rc "  the next start resumes it" 0 "$NOOK" local start s1
contains "  resumed" "$OUT" "resumed from its saved state"
# ... once its save had its own name, before its record (keep_save()'s
# rename done): made here by hand as above, the save left where it is.
# Kept too (before: crashed, and the next start booted without it)
expect_rc "a suspend cut off after its rename" 0 "$NOOK" local suspend s1
python3 - "$rec" "$NOOK_HOME/vms/s1" <<'PY'
import json, os, sys
rec, d = sys.argv[1], sys.argv[2]
r = json.load(open(rec))
facts = r["state"].pop("save")
open(os.path.join(d, ".suspend.save.facts"), "w").write(json.dumps(facts))
r["state"]["status"] = "running"
r["state"]["pid"] = 2 ** 22 - 1
json.dump(r, open(rec, "w"))
PY
expect_rc "  status" 0 "$NOOK" local status s1 --json
contains "  says the save is kept" "$ERR" "VM s1: a suspend of it was cut off once its save was whole; the save is kept"
check "  suspended" test "$(echo "$OUT" | json 'd["state"]')" = suspended
check "  its files in place" test -s "$save" -a ! -e "$cut" -a ! -e "$NOOK_HOME/vms/s1/.suspend.save.facts"
# (bounded: a cold boot of the blank disk would wait for sshd)
expect_rc "  the next start resumes it" 0 "$NOOK" local start s1 --timeout 30
contains "  resumed" "$OUT" "resumed from its saved state"
# ... once QEMU had saved and quit, with no facts beside the save (an
# older nook's suspend): it cannot be resumed; the VM is stopped, not
# called crashed
: > "$cut"
qp=$(cat "$NOOK_HOME/run/s1/qemu.pid")
kill -9 "$qp"
for _ in $(seq 100); do kill -0 "$qp" 2>/dev/null || break; sleep 0.05; done
expect_rc "a suspend cut off after QEMU ended: status" 0 "$NOOK" local status s1 --json
contains "  says so" "$ERR" "VM s1: a suspend of it was cut off once its QEMU had ended"
check "  stopped, not crashed" test "$(echo "$OUT" | json 'd["state"]')" = stopped
check "  the file is gone" test ! -e "$cut"
expect_rc "  it boots again" 0 "$NOOK" local start s1 --no-wait

# what keeps a resume from starting for a while is no reason to lose the
# guest's memory: a forward's host port another program holds (one picked
# for HOST 0 moves, as at a boot; one the user fixed stops the start), a
# QEMU that cannot start
hold() {
	python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(30)' "$1" &
	holder=$!
	for _ in $(seq 200); do ss -ltn | grep -q "127.0.0.1:$1 " && break; sleep 0.05; done
}
port_to() { "$NOOK" local status s1 --json | json "[p.split(':')[1] for p in d['ports'] if p.endswith(':$1/tcp')][0]"; }
# (its port read while it runs: a suspended VM's status lists none)
held=$(port_to 80)
expect_rc "suspend for the refusals" 0 "$NOOK" local suspend s1
hold "$held"
expect_rc "a resume with the HOST 0 forward's port $held held elsewhere" 0 "$NOOK" local start s1 --no-wait
contains "  resumed" "$OUT" "resumed from its saved state"
check "  that forward on another port" test "$(port_to 80)" != "$held"
check "  the fixed one as it was" test "$(port_to 81)" = "$fixed"
kill "$holder"; wait "$holder" 2>/dev/null
ports=$("$NOOK" local status s1 --json | json 'd["ports"]')
expect_rc "suspend again" 0 "$NOOK" local suspend s1
hold "$fixed"
expect_rc "a resume with the fixed port $fixed held elsewhere fails" 1 "$NOOK" local start s1 --timeout 20
contains "  naming the port and --cold" "$ERR" "forward from host port 127.0.0.1:$fixed/tcp is another program's now"
check "  still suspended" test "$(state s1)" = suspended
check "  the save kept" test -s "$save"
kill "$holder"; wait "$holder" 2>/dev/null
# (a directory where QEMU makes its QMP socket: it exits at once)
mkdir -p "$NOOK_HOME/run/s1/qmp.sock/in-the-way"
expect_rc "a resume whose QEMU cannot start fails" 1 "$NOOK" local start s1 --timeout 20
contains "  saying the save is kept" "$ERR" "the save is kept"
check "  still suspended" test "$(state s1)" = suspended
check "  the save kept" test -s "$save"
mkdir -p "$NOOK_HOME/run/s1/qmp.sock/in-the-way"
expect_rc "  with --json too" 1 "$NOOK" local start s1 --timeout 20 --json
contains "  its error carries what QEMU said" "$(echo "$OUT" | json 'd["error"]')" "(QEMU failed to start (exit 1): "
rm -rf "$NOOK_HOME/run/s1/qmp.sock"
expect_rc "then the resume" 0 "$NOOK" local start s1
contains "  resumed" "$OUT" "resumed from its saved state"
check "  the same forwards" test "$("$NOOK" local status s1 --json | json 'd["ports"]')" = "$ports"

# a resume killed (SIGKILL) once its QEMU runs, before the save loads: a
# QEMU in front of the real one stops it (SIGSTOP) as it starts, so the
# kill comes before the load. That QEMU waits for the save under a record
# that says starting: the first look ends it, and the VM is suspended
# again with its save, which the next start resumes
mkdir -p "$WORK/bin"
cat > "$WORK/bin/qemu-system-x86_64" <<'WRAP'
#!/usr/bin/env bash
real=/usr/bin/qemu-system-x86_64
# (named as nook names it: a save is of QEMU's command line, this too)
run() { (exec -a qemu-system-x86_64 "$real" "$@"); }
case " $* " in *" -incoming "*) ;; *) run "$@"; exit ;; esac
[ -n "${STOPPED:-}" ] || { run "$@"; exit; }
run "$@" || exit
pid=$(cat "$NOOK_HOME/run/s1/qemu.pid")
kill -STOP "$pid"
echo "$pid" > "$STOPPED"
WRAP
chmod +x "$WORK/bin/qemu-system-x86_64"
expect_rc "suspend for a resume cut off" 0 "$NOOK" local suspend s1
# (the save made by the QEMU in front, as the resume sees it)
python3 - "$rec" "$WORK/bin/qemu-system-x86_64" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["state"]["save"]["qemu"] = sys.argv[2]
json.dump(r, open(sys.argv[1], "w"))
PY
rm -f "$WORK/stopped"
STOPPED=$WORK/stopped PATH="$WORK/bin:$PATH" "$NOOK" local start s1 >/dev/null 2>&1 &
resumer=$!
for _ in $(seq 200); do [ -s "$WORK/stopped" ] && break; sleep 0.05; done
check "  its QEMU started, and was held" test -s "$WORK/stopped"
kill -KILL "$resumer"
wait "$resumer" 2>/dev/null
kill -CONT "$(cat "$WORK/stopped")"
expect_rc "  status" 0 "$NOOK" local status s1 --json
contains "  says the resume was cut off" "$ERR" "VM s1: a resume of it was cut off; it is suspended, its save kept"
check "  suspended" test "$(echo "$OUT" | json 'd["state"]')" = suspended
check "  its QEMU ended" ended "$(cat "$WORK/stopped")"
check "  the save kept" test -s "$save"
PATH="$WORK/bin:$PATH" expect_rc "  the next start resumes it" 0 "$NOOK" local start s1 --no-wait
contains "  resumed" "$OUT" "resumed from its saved state"
check "  the same forwards" test "$("$NOOK" local status s1 --json | json 'd["ports"]')" = "$ports"
# ... once its guest ran on from the save, before that was recorded:
# made here from a finished resume, its record put back as the resume
# had it then (starting, no pid, the save's facts beside it)
expect_rc "a resume cut off once its guest ran on" 0 "$NOOK" local suspend s1
cp "$save" "$WORK/kept.save"
python3 -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["state"]["save"]))' \
	"$rec" > "$WORK/facts"
expect_rc "  (resumed)" 0 "$NOOK" local start s1 --no-wait
contains "  (from its save)" "$OUT" "resumed from its saved state"
pid=$(cat "$NOOK_HOME/run/s1/qemu.pid")
cp "$WORK/kept.save" "$save"
mv "$WORK/facts" "$NOOK_HOME/vms/s1/.suspend.save.resuming"
python3 - "$rec" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["state"]["status"], r["state"]["pid"] = "starting", 0
json.dump(r, open(sys.argv[1], "w"))
PY
expect_rc "  status" 0 "$NOOK" local status s1 --json
contains "  says it runs" "$ERR" "VM s1: a resume of it was cut off once its guest ran on from its save; it runs"
check "  running, the same QEMU" test "$(echo "$OUT" | json '(d["state"], d["pid"])')" = "('running', $pid)"
check "  the same forwards" test "$(echo "$OUT" | json 'd["ports"]')" = "$ports"
check "  the save gone" test ! -e "$save" -a ! -e "$NOOK_HOME/vms/s1/.suspend.save.resuming"
rm -f "$WORK/kept.save"
expect_rc "  and it suspends" 0 "$NOOK" local suspend s1
expect_rc "  and resumes" 0 "$NOOK" local start s1

# a paused VM suspends too, and comes back running
"$NOOK" local pause s1 >/dev/null
expect_rc "suspend a paused VM" 0 "$NOOK" local suspend s1
expect_rc "resume it" 0 "$NOOK" local start s1
check "  running" test "$(qmp_status s1)" = running

# a guest kernel that panicked before the suspend (written onto the blank
# VM's console, as in test-local.sh) spins on after the resume: said and
# ended, not called resumed and running
printf '[ 2.4] Kernel panic - not syncing: VFS: no root\r\n[ 2.5] ---[ end Kernel panic - not syncing: VFS: no root ]---\r\n' >> "$NOOK_HOME/vms/s1/console.log"
expect_rc "suspend a VM whose kernel panicked" 0 "$NOOK" local suspend s1
expect_rc "a resume of it fails" 1 "$NOOK" local start s1
contains "  saying so" "$ERR" "the guest's kernel panicked before it was suspended (resumed spinning); nook ended its QEMU. The kernel said: Kernel panic - not syncing: VFS: no root"
check "  crashed" test "$(state s1)" = crashed
expect_rc "a cold start after it" 0 "$NOOK" local start s1 --no-wait
check "  no panic in this boot's part of the log" \
	test "$("$NOOK" local status s1 --json | json 'd["panic"]')" = None

# a QEMU that an older nook started has no balloon (free page reporting):
# its save loads into the same argv less the balloon, and the VM's next
# boot has the balloon again. The older QEMU: this one's argv without it.
older_qemu() {
	python3 - "$NOOK_HOME/run/s1/qemu.pid" <<'PY'
import os, signal, subprocess, sys, time
pid = int(open(sys.argv[1]).read())
argv = open("/proc/%d/cmdline" % pid, "rb").read().split(b"\0")[:-1]
out, skip = [], False
for k, a in enumerate(argv):
    if skip:
        skip = False
    elif a == b"-device" and argv[k + 1].startswith(b"virtio-balloon-pci,"):
        skip = True
    else:
        out.append(a)
os.kill(pid, signal.SIGKILL)
def ended():
    try:
        return open("/proc/%d/stat" % pid).read().rsplit(") ", 1)[1][0] == "Z"
    except OSError:
        return True
while not ended():
    time.sleep(0.05)
sys.exit(1 if len(out) != len(argv) - 2 else subprocess.run(out).returncode)
PY
}
has_balloon() { tr '\0' ' ' < "/proc/$(cat "$NOOK_HOME/run/s1/qemu.pid")/cmdline" | grep -q virtio-balloon-pci; }
no_balloon() { ! has_balloon; }
check "s1 run by an older nook's QEMU, with no balloon" older_qemu
check "  (it has none)" no_balloon
expect_rc "  suspend it" 0 "$NOOK" local suspend s1
expect_rc "  the start resumes it" 0 "$NOOK" local start s1 --no-wait
contains "  says resumed" "$OUT" "resumed from its saved state"
contains "  loaded from the save" "$(cmdline s1)" "-incoming defer"
check "  into a QEMU without the balloon" no_balloon
expect_rc "  stopped" 0 "$NOOK" local stop s1 --force
expect_rc "  its next boot" 0 "$NOOK" local start s1 --no-wait
check "  has the balloon" has_balloon

# a save that does not fit: a cold boot with the reason, the save removed
stale() { # NAME WHAT-IT-SAYS SETUP...; $EXTRA: more start options
	local n=$1 says=$2
	shift 2
	"$NOOK" local suspend s1 >/dev/null || fail "$n: suspend"
	"$@"
	# shellcheck disable=SC2086
	expect_rc "$n: start" 0 "$NOOK" local start s1 --no-wait ${EXTRA:-}
	contains "  boots cold" "$OUT" "booting cold"
	contains "  says why" "$OUT" "$says"
	check "  a new QEMU without the save" sh -c '! tr "\0" " " < "/proc/$(cat "$1")/cmdline" | grep -q incoming' _ "$NOOK_HOME/run/s1/qemu.pid"
	check "  the save removed" test ! -e "$save"
	check "  running" test "$(state s1)" = running
}
stale "disk touched" "disk changed" touch "$NOOK_HOME/vms/s1/disk.qcow2"
stale "save truncated" "truncated" truncate -s -4096 "$save"
stale "save removed" "its save file is gone" rm "$save"
damage() { dd if=/dev/urandom of="$save" bs=1k seek=64 count=512 conv=notrunc status=none; }
stale "save damaged" "QEMU" damage
EXTRA="--memory 512M" stale "settings changed" "command line" true
older() {
	python3 - "$rec" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d["state"]["save"]["version"] = "6.2.0"
json.dump(d, open(sys.argv[1], "w"))
PY
}
stale "another QEMU version" "QEMU's version changed" older

# --cold: the save discarded, a cold boot
"$NOOK" local suspend s1 >/dev/null
expect_rc "start --cold" 0 "$NOOK" local start s1 --cold --no-wait
contains "  says discarded" "$OUT" "discarded"
check "  a cold QEMU" sh -c '! tr "\0" " " < "/proc/$(cat "$1")/cmdline" | grep -q incoming' _ "$NOOK_HOME/run/s1/qemu.pid"
check "  no save" test ! -e "$save"

# stop --force while a suspend runs (seen holding the VM's lock, looked
# at in /proc/locks, not taken): the stop wins, the suspend says so, no
# save is left, whole or partial, and the next start boots cold
"$NOOK" local suspend s1 > sus.out 2>&1 &
sus=$!
for _ in $(seq 100); do locked s1 && break; sleep 0.05; done
check "a suspend holds s1" locked s1
expect_rc "  stop --force meanwhile" 0 "$NOOK" local stop s1 --force
wait "$sus"
check "  the suspend fails" test $? = 1
contains "  saying why" "$(cat sus.out)" "stopped while it was being suspended"
check "  no QEMU" test "$(qemus s1)" = 0
check "  stopped" test "$(state s1)" = stopped
check "  no save, whole or partial" test -z "$(find "$NOOK_HOME/vms/s1" -name '*save*')"
expect_rc "  the next start" 0 "$NOOK" local start s1 --no-wait
check "  boots cold" sh -c '! tr "\0" " " < "/proc/$(cat "$1")/cmdline" | grep -q incoming' _ "$NOOK_HOME/run/s1/qemu.pid"

# a start killed (SIGKILL) as it waits for its guest (a blank disk's never
# answers) leaves its record saying starting, its QEMU running on: status
# says running, and so must pause, suspend and port, not "starting" for
# good (a port added then did not reach the running QEMU)
"$NOOK" local start s2 --image blank.img --memory 128M --cpus 1 --accel tcg \
	--timeout 120 >/dev/null 2>&1 &
starter=$!
booting() { json '(d["state"]["status"], d["state"]["pid"] > 0)' < "$NOOK_HOME/vms/s2/vm.json" 2>/dev/null; }
for _ in $(seq 200); do [ "$(booting)" = "('starting', True)" ] && break; sleep 0.05; done
kill -KILL "$starter"
wait "$starter" 2>/dev/null
check "a start killed as its guest boots: its QEMU runs on" test "$(qemus s2)" = 1
expect_rc "  a port added" 0 "$NOOK" port add s2 0:80
contains "  says the start was cut off" "$ERR" "VM s2: a start of it was cut off as its guest booted; its QEMU runs on"
check "  forwarded at once, not from its next start" sh -c 'case $1 in *"next start"*) exit 1 ;; esac' _ "$OUT"
expect_rc "  paused" 0 "$NOOK" local pause s2
expect_rc "  suspended" 0 "$NOOK" local suspend s2
expect_rc "  resumed" 0 "$NOOK" local start s2 --no-wait
contains "  from its save" "$OUT" "resumed from its saved state"
"$NOOK" local delete s2 --force >/dev/null 2>&1

# a QEMU gone while paused is a crash; delete removes a save
"$NOOK" local pause s1 >/dev/null
pid=$(cat "$NOOK_HOME/run/s1/qemu.pid")
kill -9 "$pid"
ended "$pid"
check "paused, then killed: crashed" test "$(state s1)" = crashed
"$NOOK" local start s1 --no-wait >/dev/null 2>&1
"$NOOK" local suspend s1 >/dev/null
expect_rc "delete a suspended VM" 0 "$NOOK" local delete s1
check "  its save is gone with it" test ! -e "$NOOK_HOME/vms/s1"
finish

#!/usr/bin/env bash
# nook local snapshot without a guest OS: a blank disk's QEMU has memory
# and devices to save like any other. Checked by independent tools:
# qemu-img (the overlay's snapshot table, the base image untouched) and
# qemu-io (a stopped VM's disk really goes back). The guest test checks a
# file inside a real guest.
NOOK=$1
. "$(dirname "$0")/lib.sh"
cleanup() {
	"$NOOK" local delete p1 --force >/dev/null 2>&1
	"$NOOK" local delete p2 --force >/dev/null 2>&1
	"$NOOK" local delete k --force >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
state() { "$NOOK" local status "$1" --json | json 'd["state"]'; }
# the overlay's snapshot tags as qemu-img lists them, one line
tags() { qemu-img info -U --output=json "$disk" | json '" ".join(s["name"] for s in d.get("snapshots", []))'; }
# pattern_is BYTE: the disk's first 64k all BYTE, read by qemu-io
pattern_is() {
	local out
	out=$(qemu-io -f qcow2 -c "read -P $1 0 64k" "$disk" 2>&1)
	case $out in
	*"verification failed"*) return 1 ;;
	*"read 65536/65536 bytes"*) return 0 ;;
	*) echo "     qemu-io: $out"; return 1 ;;
	esac
}
disk=$NOOK_HOME/vms/p1/disk.qcow2
qemu-img create -q -f raw blank.img 64M
base_sum=$(sha256sum < blank.img)

# usage errors: exit 2, said before anything is looked at
expect_rc "snapshot without a subcommand" 2 "$NOOK" local snapshot
expect_rc "an unknown subcommand" 2 "$NOOK" local snapshot take p1 x
contains "  named" "$ERR" "unknown snapshot subcommand 'take'"
expect_rc "save without a tag" 2 "$NOOK" local snapshot save p1
contains "  says what is missing" "$ERR" "needs a VM NAME and a TAG"
expect_rc "restore with a word too many" 2 "$NOOK" local snapshot restore p1 a b
expect_rc "a tag of digits" 2 "$NOOK" local snapshot save p1 42
contains "  says why" "$ERR" "must begin with a letter"
expect_rc "a tag with a slash" 2 "$NOOK" local snapshot save p1 a/b
contains "  says which characters" "$ERR" "only letters, digits"
expect_rc "a tag of 65 characters" 2 "$NOOK" local snapshot rm p1 "a$(printf 'b%.0s' $(seq 64))"
expect_rc "--json is for list" 2 "$NOOK" local snapshot save p1 x --json
expect_rc "an unknown option" 2 "$NOOK" local snapshot list p1 --frob
expect_rc "--help" 0 "$NOOK" local snapshot --help
contains "  shows the subcommands" "$OUT" "save|restore|rm NAME TAG"
expect_rc "local --help names snapshot" 0 "$NOOK" local --help
contains "  yes" "$OUT" "snapshot"
expect_rc "no such VM" 1 "$NOOK" local snapshot save p1 x
contains "  says so" "$ERR" "no VM named 'p1'"
expect_rc "list --json of no such VM" 1 "$NOOK" local snapshot list p1 --json
check "  an error object on stdout" test "$(echo "$OUT" | json '"error" in d')" = True

# a running VM: disk and memory
expect_rc "start p1" 0 "$NOOK" local start p1 --image blank.img --no-wait \
	--memory 256M --cpus 1 --accel tcg
check "the seed is attached read-only (the overlay alone is writable)" \
	sh -c 'tr "\0" "\n" < "/proc/$(cat "$1")/cmdline" | grep cidata.iso | grep -q readonly=on' _ "$NOOK_HOME/run/p1/qemu.pid"
pid=$(cat "$NOOK_HOME/run/p1/qemu.pid")
expect_rc "list: none yet" 0 "$NOOK" local snapshot list p1
contains "  says none" "$OUT" "no snapshots"
expect_rc "save a running VM" 0 "$NOOK" local snapshot save p1 warm
contains "  disk and memory" "$OUT" "disk and memory"
check "  qemu-img finds it in the overlay" test "$(tags)" = warm
check "  the VM runs on, the same QEMU" test "$(state p1)" = running -a "$(cat "$NOOK_HOME/run/p1/qemu.pid")" = "$pid"
expect_rc "the same tag again" 1 "$NOOK" local snapshot save p1 warm
contains "  says it exists" "$ERR" "has a snapshot 'warm' already"
expect_rc "list --json" 0 "$NOOK" local snapshot list p1 --json
check "  one, with memory" test "$(echo "$OUT" | json '[(s["tag"], s["memory"]) for s in d]')" = "[('warm', True)]"
check "  its size is qemu-img's VM size" test "$(echo "$OUT" | json 'd[0]["size"]')" = \
	"$(qemu-img info -U --output=json "$disk" | json 'd["snapshots"][0]["vm-state-size"]')"
check "  its date is now" python3 -c 'import sys,time; sys.exit(0 if abs(int(sys.argv[1]) - time.time()) < 120 else 1)' \
	"$(echo "$OUT" | json 'd[0]["date_epoch"]')"
expect_rc "restore it while running" 0 "$NOOK" local snapshot restore p1 warm
contains "  disk and memory" "$OUT" "disk and memory"
check "  running" test "$(state p1)" = running
expect_rc "restore an unknown tag" 1 "$NOOK" local snapshot restore p1 cold
contains "  says there is none" "$ERR" "has no snapshot 'cold'"
expect_rc "rm an unknown tag" 1 "$NOOK" local snapshot rm p1 cold
# what each snapshot was made with (snapshots.json) is read as a file only:
# a FIFO in its place is said, never waited on nor written into; without
# the record, memory is not loaded (it may not fit: a guest half loaded)
facts=$NOOK_HOME/vms/p1/snapshots.json
mv "$facts" facts.saved
mkfifo "$facts"
expect_rc "restore, snapshots.json a FIFO: not waited on" 1 timeout 60 "$NOOK" local snapshot restore p1 warm
contains "  says it is no file" "$ERR" "snapshots.json is no file"
contains "  and that no record says what the memory fits" "$ERR" "nook has no record of what snapshot 'warm' was made with"
check "  the VM runs on" test "$(state p1)" = running
expect_rc "save, snapshots.json a FIFO: not written into" 1 timeout 60 "$NOOK" local snapshot save p1 fifo
contains "  says it is not kept" "$ERR" "neither read nor kept there"
contains "  and that no snapshot is made, memory unloadable without" "$ERR" "no snapshot made: what it would be made with (QEMU's command line and version) cannot be kept"
check "  still a FIFO" test -p "$facts"
check "  and no snapshot fifo" test "$(tags)" = warm
rm "$facts"
mv facts.saved "$facts"

# a job a killed nook left concluded in QEMU (never dismissed): the next
# snapshot command dismisses it
jobs() {
	qmp p1 "$@" query-jobs | tail -1 |
		python3 -c 'import json, sys; print(" ".join(sorted(j["id"] for j in json.load(sys.stdin))))'
}
check "a killed nook's job left in QEMU" test "$(jobs snapshot-delete '{"job-id": "nook-snapshot-delete-1", "tag": "none", "devices": []}')" = nook-snapshot-delete-1
expect_rc "  a save after it" 0 "$NOOK" local snapshot save p1 after
check "  dismisses it" test -z "$(jobs)"
"$NOOK" local snapshot rm p1 after >/dev/null

# another nook at work on p1 (a snapshot's job holds QEMU's monitor while
# it runs; held here as such a nook holds it: the VM's lock, saying what
# it does and its pid, and the monitor): a second restore, and a list
# (which takes no lock, and finds the monitor taken), name that nook
python3 - "$NOOK_HOME/vms/p1/lock" "$NOOK_HOME/run/p1/qmp.sock" "$(dirname "$QMP_PY")" <<'PY' &
import fcntl, os, sys, time
sys.path.insert(0, sys.argv[3])
from qmp import Qmp
lock = open(sys.argv[1], "r+")
fcntl.flock(lock, fcntl.LOCK_EX)
lock.truncate(0)
lock.write("snapshot %d\n" % os.getpid())
lock.flush()
m = Qmp(sys.argv[2])
open(sys.argv[1] + ".held", "w").close()
time.sleep(30)
PY
holder=$!
for _ in $(seq 100); do [ -e "$NOOK_HOME/vms/p1/lock.held" ] && break; sleep 0.1; done
expect_rc "a restore while another nook restores" 1 "$NOOK" local snapshot restore p1 warm
contains "  names that nook's pid" "$ERR" "VM p1 is busy: another nook (pid $holder) is taking or restoring a snapshot of it"
expect_rc "a list meanwhile" 1 "$NOOK" local snapshot list p1
contains "  names that nook's pid" "$ERR" "VM p1 is busy: another nook (pid $holder) is taking or restoring a snapshot of it"
kill "$holder"; wait "$holder" 2>/dev/null
rm -f "$NOOK_HOME/vms/p1/lock.held"
expect_rc "  a list once it is done" 0 "$NOOK" local snapshot list p1

# a paused VM saves too and stays paused
"$NOOK" local pause p1 >/dev/null
expect_rc "save a paused VM" 0 "$NOOK" local snapshot save p1 paused
check "  still paused" test "$(state p1)" = paused
"$NOOK" local unpause p1 >/dev/null 2>&1
expect_rc "rm while running" 0 "$NOOK" local snapshot rm p1 paused
check "  gone from the overlay" test "$(tags)" = warm

# a suspended VM is refused: its save would not match its disk
"$NOOK" local suspend p1 >/dev/null 2>&1
expect_rc "save of a suspended VM" 1 "$NOOK" local snapshot save p1 x
contains "  says what to do" "$ERR" "nook local start p1"
expect_rc "restore on a suspended VM" 1 "$NOOK" local snapshot restore p1 warm
expect_rc "list of a suspended VM" 0 "$NOOK" local snapshot list p1
contains "  lists" "$OUT" "warm"
expect_rc "the save still fits: start resumes" 0 "$NOOK" local start p1 --no-wait
contains "  resumed" "$OUT" "resumed"

# a stopped VM: the disk alone
expect_rc "stop p1" 0 "$NOOK" local stop p1 --force
qemu-io -f qcow2 -c 'write -P 0x11 0 64k' "$disk" >/dev/null
expect_rc "save a stopped VM" 0 "$NOOK" local snapshot save p1 cold
contains "  the disk" "$OUT" "the disk"
expect_rc "list" 0 "$NOOK" local snapshot list p1
check "  cold: memory no" sh -c 'echo "$1" | grep -q "^cold .* no$"' _ "$OUT"
check "  warm: memory yes" sh -c 'echo "$1" | grep -q "^warm .* yes$"' _ "$OUT"
qemu-io -f qcow2 -c 'write -P 0x22 0 64k' "$disk" >/dev/null
check "  the disk changed since (0x22)" pattern_is 0x22
expect_rc "restore cold" 0 "$NOOK" local snapshot restore p1 cold
check "  the disk as it was (qemu-io reads 0x11)" pattern_is 0x11
expect_rc "restore warm (memory) while stopped" 0 "$NOOK" local snapshot restore p1 warm
contains "  gives the disk only, saying so" "$ERR" "not its memory"
check "  the disk as it was then (zeros)" pattern_is 0
expect_rc "a running VM will not take a disk-only snapshot" 0 "$NOOK" local start p1 --no-wait
expect_rc "  restore cold while running" 1 "$NOOK" local snapshot restore p1 cold
contains "  says stop first" "$ERR" "nook local stop p1"
"$NOOK" local stop p1 --force >/dev/null
expect_rc "rm cold while stopped" 0 "$NOOK" local snapshot rm p1 cold
check "  gone" test "$(tags)" = warm
# memory made at 256M cannot go into a QEMU of 512M: refused before
# QEMU tries (it would stop half way, the guest paused)
expect_rc "start p1 with more memory" 0 "$NOOK" local start p1 --no-wait --memory 512M
expect_rc "  restore warm (256M memory)" 1 "$NOOK" local snapshot restore p1 warm
contains "  says the settings differ" "$ERR" "other settings"
check "  the VM runs on" test "$(state p1)" = running
"$NOOK" local stop p1 --force >/dev/null
check "the base image is untouched" test "$(sha256sum < blank.img)" = "$base_sum"
check "the overlay is sound (qemu-img check)" qemu-img check -q "$disk"

# a HOST 0 forward gets another port at a later start: the memory still
# loads (user-mode forwards are not in it)
expect_rc "start p2 with a forward from a free port" 0 "$NOOK" local start p2 --image blank.img \
	--no-wait --memory 256M --cpus 1 --accel tcg --port 0:80
port_of() { "$NOOK" local status p2 --json | json 'd["ports"][0].split(":")[1]'; }
before=$(port_of)
expect_rc "  snapshot it" 0 "$NOOK" local snapshot save p2 hot
"$NOOK" local stop p2 --force >/dev/null
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(30)' "$before" &
holder=$!
for _ in $(seq 200); do ss -ltn | grep -q "127.0.0.1:$before " && break; sleep 0.05; done
expect_rc "  start it again, port $before taken" 0 "$NOOK" local start p2 --no-wait
check "  another host port" test "$(port_of)" != "$before"
expect_rc "  its memory snapshot loads" 0 "$NOOK" local snapshot restore p2 hot
contains "  disk and memory" "$OUT" "disk and memory"
kill "$holder"; wait "$holder" 2>/dev/null
"$NOOK" local delete p2 --force >/dev/null

# a save onto a full disk: QEMU says no more than "Input/output error";
# nook says the disk is full, and what to do. On a tmpfs of its own, in
# a mount namespace of the test's (nothing outside sees it), filled
if unshare -m true 2>/dev/null; then
	out=$(unshare -m bash -s "$NOOK" "$NOOK_HOME" "$WORK" <<'SH' 2>&1
NOOK=$1 NOOK_HOME=$2
cd "$3" || exit 1
mount -t tmpfs -o size=32m tmpfs "$NOOK_HOME/vms" || exit 1
"$NOOK" local start pf --image blank.img --no-wait --memory 256M --cpus 1 \
	--accel tcg >/dev/null 2>&1 || { echo "start failed"; exit 1; }
dd if=/dev/zero of="$NOOK_HOME/vms/filler" bs=64k 2>/dev/null
"$NOOK" local snapshot save pf full
echo "exit $?"
# room for what it is made with (snapshots.json), not for its memory
truncate -s -256K "$NOOK_HOME/vms/filler"
"$NOOK" local snapshot save pf nearly
echo "nearly exit $?"
rm "$NOOK_HOME/vms/filler"
"$NOOK" local snapshot save pf roomy >/dev/null 2>&1
echo "then exit $?"
"$NOOK" local delete pf --force >/dev/null 2>&1
SH
)
	check "a save onto a full disk fails" sh -c 'printf "%s\n" "$1" | grep -qx "exit 1"' _ "$out"
	contains "  says no snapshot was made: the disk is full" "$out" "no snapshot made: what it would be made with (QEMU's command line and version) cannot be kept, and without it its memory could never be loaded; the disk holding $NOOK_HOME/vms/pf is full ("
	contains "  a snapshot rm among the ways" "$out" "'nook local snapshot rm pf TAG'"
	contains "a save onto a nearly full disk fails" "$out" "nearly exit 1"
	contains "  says the disk is full, though QEMU said less" \
		"$(printf '%s\n' "$out" | grep "snapshot-save of 'nearly' failed: ")" \
		"; the disk holding $NOOK_HOME/vms/pf is full ("
	check "  and no more (a record forgotten or not is no matter)" \
		sh -c '! printf "%s" "$1" | grep -q "snapshot .nearly. was made with"' _ "$out"
	contains "  once there is room, it saves" "$out" "then exit 0"
fi

# a cluster's name is no VM's
common=(--image blank.img --no-wait --memory 256M --cpus 1 --accel tcg)
"$NOOK" local start k --nodes 1 "${common[@]}" >/dev/null 2>&1
expect_rc "a cluster's name" 1 "$NOOK" local snapshot list k
contains "  names its nodes" "$ERR" "k-1"
# a tag made outside nook (by qemu-img) may hold any byte: listed escaped
"$NOOK" local start et --image blank.img --no-wait --memory 256M --cpus 1 --accel tcg >/dev/null 2>&1
"$NOOK" local stop et --force >/dev/null 2>&1
qemu-img snapshot -c "$(printf 'x\033]0;T\007')" "$NOOK_HOME/vms/et/disk.qcow2"
expect_rc "a tag with an escape sequence, by qemu-img: list" 0 "$NOOK" local snapshot list et
contains "  shows it escaped" "$OUT" 'x\x1b]0;T\x07'
finish

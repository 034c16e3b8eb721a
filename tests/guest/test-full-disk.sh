#!/usr/bin/env bash
# The disk holding a running VM fills up (its VM directory on a tmpfs of
# the test's own, in a mount namespace: nothing outside sees it). QEMU
# stops the guest at the write it has no room for (its werror=enospc):
# status, list and shell say so and what to do; unpause says when there
# is still no room, and once there is, the guest goes on and its write
# is whole, with no I/O error in the guest; a stop does not wait on a
# power button the guest cannot hear (QEMU quits when there is still no
# room; with room the guest makes its write and powers off); a start
# whose guest fills the disk as it boots says so instead of waiting out
# --timeout, and a stop whose guest fills it as it shuts down quits QEMU
# instead of waiting out its power-button wait. Boots: 3.
NOOK=$1
if [ -z "${NOOK_FULL_DISK_NS:-}" ]; then
	if ! unshare -m true 2>/dev/null; then
		echo "skipped: the test's own tmpfs needs a mount namespace (root)"
		exit 77
	fi
	NOOK_FULL_DISK_NS=1 exec unshare -m bash "$0" "$@"
fi
. "$(dirname "$0")/../cli/lib.sh" || exit 1
img=$(bash "$(dirname "$0")/image.sh") || { fail "build the test image"; finish; exit 1; }
vms=${NOOK_HOME:?}/vms
cleanup() {
	"$NOOK" local delete fd --force >/dev/null 2>&1
	umount "$vms" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
mkdir -p "$vms" && mount -t tmpfs -o size=256m,mode=0700 tmpfs "$vms" ||
	{ fail "a tmpfs for the VMs"; finish; exit 1; }
# fill the VMs' disk but for $1 KiB
fill() {
	rm -f "$vms/filler"
	local avail
	avail=$(df -k --output=avail "$vms" | tail -1)
	dd if=/dev/zero of="$vms/filler" bs=1k count=$((avail - $1)) 2>/dev/null
}
no_room() { "$NOOK" local status fd --json | json 'd["no_room"] or ""'; }
wait_no_room() {
	for _ in $(seq 600); do
		[ -n "$(no_room)" ] && return 0
		sleep 0.5
	done
	return 1
}

# bootcmd runs at every boot: once the guest has the mark, its boot
# writes 32 MiB before sshd starts
cat > user-data <<'UD'
#cloud-config
bootcmd:
  - [sh, -c, "if [ -e /var/tmp/fill-at-boot ]; then dd if=/dev/urandom of=/var/tmp/boot-fill bs=1M count=32 conv=fsync; fi"]
UD

# --- boot 1 ---------------------------------------------------------------
expect_rc "start fd: ready" 0 "$NOOK" local start fd --image "$img" --user-data user-data --timeout 900

# a write in the guest that the host's disk has no room for
fill 16384
# (detached in the guest: ssh gives up on a frozen guest after 20 s,
# which a loaded host may take to get through the checks below)
expect_rc "a 64 MiB write in the guest" 0 "$NOOK" shell fd -- sh -c 'rm -f dd.rc; nohup sh -c "dd if=/dev/urandom of=big bs=1M count=64 conv=fsync; echo \$? > dd.rc" > /dev/null 2>&1 &'
check "QEMU stopped the guest at the write: status says so (--json no_room)" wait_no_room
expect_rc "status" 0 "$NOOK" local status fd
contains "  says why, where and what to do" "$OUT" "stopped: QEMU stopped its guest at a write the disk holding $vms/fd had no room for ("
contains "  and how to go on" "$OUT" "free space there, then 'nook local unpause fd' lets it go on"
contains "  its state is still running" "$OUT" "state:   running"
expect_rc "list" 0 "$NOOK" local list
contains "  says so on fd's line" "$(grep '^fd ' <<<"$OUT")" "(QEMU stopped it: no room on its disk)"
# (ssh would hang on the stopped guest until its own timeouts)
expect_rc "shell is refused at once, saying why" 1 timeout 60 "$NOOK" shell fd -- true
contains "  with the same words" "$ERR" "VM fd: QEMU stopped its guest at a write the disk holding"
expect_rc "unpause with still no room" 1 "$NOOK" local unpause fd
contains "  says so" "$ERR" "VM fd: its guest stopped again at a write: the disk holding $vms/fd still has no room for it"
check "  and the guest is stopped at it still" test -n "$(no_room)"
rm "$vms/filler"
expect_rc "unpause once there is room" 0 "$NOOK" local unpause fd
check "  status says nothing of it now" test -z "$(no_room)"
expect_rc "  the guest's write went on" 0 "$NOOK" shell fd -- sh -c 'for i in $(seq 600); do [ -s dd.rc ] && exec cat dd.rc; sleep 0.5; done; exit 1'
check "  and ended well" test "$OUT" = 0
expect_rc "  the file is whole" 0 "$NOOK" shell fd -- stat -c %s big
check "  64 MiB" test "$OUT" = 67108864
expect_rc "  the guest's kernel saw no I/O error" 0 "$NOOK" shell fd -- sh -c 'sudo dmesg | grep -ci "i/o error" || true'
check "  none" test "$OUT" = 0

# a stop of a guest stopped at such a write, with still no room (room
# for nook's record, less than a megabyte): it cannot hear the power
# button, so QEMU quits at once, not after --timeout
expect_rc "the guest marks its next boot to fill the disk" 0 "$NOOK" shell fd -- sh -c 'touch /var/tmp/fill-at-boot && sync'
fill 1024
"$NOOK" shell fd -- dd if=/dev/urandom of=big2 bs=1M count=32 conv=fsync > /dev/null 2>&1 &
check "QEMU stopped the guest again" wait_no_room
fill 512
expect_rc "stop, its power-button wait 600 s" 0 timeout 120 "$NOOK" local stop fd --timeout 600
contains "  QEMU quit" "$OUT" "VM fd stopped: QEMU quit (QMP quit)"
wait

# --- boot 2: the guest fills the disk as it boots ---------------------------
fill 4096
expect_rc "a start whose guest fills the disk is not ready, and says why" 1 timeout 600 "$NOOK" local start fd --timeout 900
contains "  QEMU stopped its guest" "$ERR" "VM fd: not ready: while "
contains "  at a write with no room" "$ERR" ", QEMU stopped its guest at a write the disk holding $vms/fd had no room for"
check "  the VM runs on, stopped at that write" test -n "$(no_room)"
rm "$vms/filler"
expect_rc "unpause once there is room" 0 "$NOOK" local unpause fd
expect_rc "  the boot goes on to ready" 0 "$NOOK" shell fd -- cloud-init status --wait
expect_rc "  bootcmd's write is whole" 0 "$NOOK" shell fd -- stat -c %s /var/tmp/boot-fill
check "  32 MiB" test "$OUT" = 33554432

# (boot 3 writes nothing as it boots: the disk has room for it)
expect_rc "the guest's next boot writes nothing more" 0 "$NOOK" shell fd -- sh -c 'rm -f /var/tmp/fill-at-boot big big2 && sync'

# with room again, a stop lets the guest make its write and go on, then
# powers it off
fill 1024
"$NOOK" shell fd -- dd if=/dev/urandom of=big3 bs=1M count=16 conv=fsync > /dev/null 2>&1 &
check "QEMU stopped the guest at a write once more" wait_no_room
rm "$vms/filler"
expect_rc "with room: stop" 0 timeout 300 "$NOOK" local stop fd --timeout 600
contains "  the guest powered off" "$OUT" "VM fd stopped: the guest powered off (ACPI power button)"
wait

# --- boot 3: the guest fills the disk as it shuts down ------------------------
rm -f "$vms/filler"
expect_rc "start fd again: ready" 0 "$NOOK" local start fd --timeout 900
# a unit whose stop, at the guest's shutdown, writes 32 MiB
expect_rc "the guest writes 32 MiB as it shuts down" 0 "$NOOK" shell fd -- sudo sh -c 'printf "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\nExecStop=/bin/dd if=/dev/urandom of=/var/tmp/stop-fill bs=1M count=32 conv=fsync\n" > /etc/systemd/system/nook-stop-fill.service && systemctl daemon-reload && systemctl start nook-stop-fill.service'
fill 4096
t0=$(date +%s)
expect_rc "stop, its power-button wait 600 s" 0 timeout 300 "$NOOK" local stop fd --timeout 600
echo "     | stopped after $(( $(date +%s) - t0 )) s"
contains "  QEMU quit once QEMU stopped the guest at that write" "$OUT" "VM fd stopped: QEMU quit (QMP quit): as it shut down, the guest stopped at a write the VM's disk had no room for"
check "  no QEMU left" test -z "$(pgrep -f -- "$NOOK_HOME/run/fd/qemu.pid")"
rm -f "$vms/filler"
expect_rc "delete fd" 0 "$NOOK" local delete fd
finish

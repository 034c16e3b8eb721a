#!/usr/bin/env bash
# nook export libvirt against a real libvirt (qemu:///system, TCG): the
# test starts libvirtd and virtlogd itself (no systemd here) and stops them
# by pid after. A VM booted by nook, a file written in it, stopped,
# exported with --start: the same instance-id (no second provisioning) and
# the file are on its serial log. Then a 2-node cluster made by nook (not
# booted there) is exported and started: node 1 reaches node 2's sshd over
# the exported network. Boots: one by nook, three by libvirt (two at once).
# Needs root and Debian's libvirt-daemon-system, libvirt-clients,
# dnsmasq-base (scripts/setup.sh installs them); installs nothing.
NOOK=$1
. "$(dirname "$0")/../cli/lib.sh"
img=$(bash "$(dirname "$0")/image.sh") || { fail "build the test image"; finish; exit 1; }
[ "$(id -u)" = 0 ] || { fail "needs root (libvirt's system daemon)"; finish; exit 1; }
for p in libvirtd virtlogd virsh; do
	command -v "$p" >/dev/null || { fail "$p is missing: run scripts/setup.sh"; finish; exit 1; }
done
URI=qemu:///system
POOL=nook-export-test
v() { virsh -q -c "$URI" "$@"; }
vq() { v "$@" >/dev/null; }
LVPID=$WORK/libvirtd.pid
VLPID=$WORK/virtlogd.pid
net_started=
cleanup() {
	for d in ex1 kx-1 kx-2; do
		v destroy "$d" >/dev/null 2>&1
		v undefine "$d" >/dev/null 2>&1
	done
	for vol in $(v vol-list "$POOL" 2>/dev/null | awk '{print $1}'); do
		v vol-delete --pool "$POOL" "$vol" >/dev/null 2>&1
	done
	v net-destroy kx >/dev/null 2>&1
	v net-undefine kx >/dev/null 2>&1
	[ -n "$net_started" ] && v net-destroy default >/dev/null 2>&1
	v pool-destroy "$POOL" >/dev/null 2>&1
	v pool-undefine "$POOL" >/dev/null 2>&1
	for f in "$LVPID" "$VLPID"; do
		[ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	# libvirt's own logs of our domains (their QEMU's messages)
	rm -f /var/log/libvirt/qemu/ex1.log /var/log/libvirt/qemu/kx-[12].log
	"$NOOK" local delete ex1 --force >/dev/null 2>&1
	"$NOOK" local delete kx --force >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
# wait_log FILE PATTERN SECONDS: until the serial log has a line matching
wait_log() {
	local i
	for i in $(seq "$3"); do
		grep -aq -- "$2" "$1" 2>/dev/null && return 0
		sleep 1
	done
	return 1
}

# the daemons, ours alone: refuse to share one that runs already
if pgrep -x libvirtd >/dev/null || pgrep -x virtlogd >/dev/null; then
	fail "a libvirtd or virtlogd runs already: stop it first"; finish; exit 1
fi
virtlogd -d -p "$VLPID" || { fail "start virtlogd"; finish; exit 1; }
# Where nook finds KVM unusable (a /dev/kvm without vmx or svm, whose
# QEMU hangs), libvirt probes it anew at every define: its cached
# capabilities lack the KVM that /dev/kvm promises. Each probe waits
# ~60 s for the hung QEMU. Our libvirtd gets /dev/null in its place.
accel=$("$NOOK" doctor --json | json 'd["accel"]["accelerator"]')
if [ "$accel" = tcg ] && [ -e /dev/kvm ]; then
	unshare -m sh -c 'mount --bind /dev/null /dev/kvm && exec "$@"' _ \
		libvirtd -d -p "$LVPID"
else
	libvirtd -d -p "$LVPID"
fi || { fail "start libvirtd"; finish; exit 1; }
for _ in $(seq 50); do v uri >/dev/null 2>&1 && break; sleep 0.2; done
check "libvirtd answers" vq uri
# libvirt's qemu user must reach the pool's files
chmod 755 "$WORK"
mkdir -p pool logs
v pool-define-as "$POOL" dir --target "$WORK/pool" >/dev/null && v pool-start "$POOL" >/dev/null
check "a storage pool of our own" vq pool-info "$POOL"
if ! v net-info default | grep -q 'Active: *yes'; then
	v net-start default >/dev/null && net_started=1
fi

# Every boot says on its serial port which instance it is and what the
# file nook's shell wrote holds; the first one of an instance also says
# it provisioned.
cat > user-data <<'UD'
#cloud-config
bootcmd:
  - [sh, -c, 'echo "NOOK-BOOT iid=$INSTANCE_ID mark=$(cat /var/lib/nook-mark 2>/dev/null || echo none)" > /dev/ttyS0']
runcmd:
  - [sh, -c, 'echo NOOK-PROVISIONED > /dev/ttyS0']
UD

# --- a VM booted by nook, a file written, stopped -------------------------
expect_rc "nook starts ex1" 0 "$NOOK" local start ex1 --image "$img" --user-data user-data --memory 1G --timeout 900
echo "$ERR" | tail -3 | sed 's/^/     | /'
iid=$(json 'd["instance_id"]' < "$NOOK_HOME/vms/ex1/vm.json")
mac=$(json 'd["nics"][0]["mac"]' < "$NOOK_HOME/vms/ex1/vm.json")
check "nook's boot provisioned" grep -aq NOOK-PROVISIONED "$NOOK_HOME/vms/ex1/console.log"
expect_rc "a file written in the VM" 0 "$NOOK" shell ex1 -- sudo sh -c 'echo written-under-nook > /var/lib/nook-mark && sync'
expect_rc "export of a running VM is refused" 1 "$NOOK" export libvirt ex1 --connect "$URI" --pool "$POOL"
contains "  saying to stop it" "$ERR" "stop it"
expect_rc "nook stops ex1" 0 "$NOOK" local stop ex1

# --- exported and started on libvirt --------------------------------------
expect_rc "export ex1 --connect --start" 0 "$NOOK" export libvirt ex1 --connect "$URI" --pool "$POOL" --log-dir "$WORK/logs" --start
echo "$OUT" | sed 's/^/     | /'
contains "  says how to reach its console" "$OUT" "virsh -c '$URI' console ex1"
check "ex1 runs on libvirt" test "$(v domstate ex1)" = running
xml=$(v dumpxml ex1)
contains "  domain type qemu (TCG here)" "$xml" "<domain type='qemu'"
contains "  nook's MAC" "$xml" "$mac"
contains "  the pinned machine type" "$xml" "machine='pc-q35-"
contains "  the balloon with free page reporting" "$xml" "<memballoon model='virtio' freePageReporting='on'>"
check "  the serial console is a pty (virsh console)" sh -c 'virsh -q -c "$1" ttyconsole ex1 | grep -q /dev/pts/' _ "$URI"
expect_rc "a second export of ex1 is refused" 1 "$NOOK" export libvirt ex1 --connect "$URI" --pool "$POOL"
contains "  naming the domain" "$ERR" "domain named ex1 already"
log=$WORK/logs/ex1.console.log
t0=$(date +%s)
check "cloud-init finishes on libvirt (serial log)" wait_log "$log" "Cloud-init v.* finished" 600
echo "     | after $(( $(date +%s) - t0 )) s"
check "  the same instance-id, and the file written under nook" grep -aq "NOOK-BOOT iid=$iid mark=written-under-nook" "$log"
check "  no second provisioning" test "$(grep -ac NOOK-PROVISIONED "$log")" = 0
v destroy ex1 >/dev/null
v undefine ex1 >/dev/null
check "ex1 destroyed and undefined" sh -c '! virsh -q -c "$1" dominfo ex1 >/dev/null 2>&1' _ "$URI"

# --- a 2-node cluster made by nook, booted first on libvirt ----------------
cat > user-data-k <<'UD'
#cloud-config
runcmd:
  - [bash, -c, 'test "$(hostname)" = kx-1 || exit 0; for i in $(seq 90); do if timeout 3 bash -c "exec 3<>/dev/tcp/10.77.0.2/22 && head -c 4 <&3" > /tmp/r 2>/dev/null; then echo "NOOK-REACH $(cat /tmp/r)" > /dev/ttyS0; exit 0; fi; sleep 2; done; echo NOOK-REACH-FAILED > /dev/ttyS0']
UD
expect_rc "nook makes kx (2 nodes, not waited for)" 0 "$NOOK" local start kx --nodes 2 --image "$img" --user-data user-data-k --memory 768M --no-wait
expect_rc "nook stops kx" 0 "$NOOK" local stop kx --force
a2=$("$NOOK" local status kx --json | json 'd[1]["address"]')
check "node 2's address is the one the user-data dials" test "$a2" = 10.77.0.2
expect_rc "export kx --connect --start" 0 "$NOOK" export libvirt kx --connect "$URI" --pool "$POOL" --log-dir "$WORK/logs" --start
echo "$OUT" | sed 's/^/     | /'
contains "  names node 2's address" "$OUT" "kx-2: address 10.77.0.2 on network kx"
check "the cluster's network is on libvirt" sh -c 'virsh -q -c "$1" net-info kx | grep -q "Active: *yes"' _ "$URI"
t0=$(date +%s)
check "node 1 reaches node 2's sshd over the exported network" wait_log "$WORK/logs/kx-1.console.log" "NOOK-REACH SSH-" 900
echo "     | after $(( $(date +%s) - t0 )) s"
grep -a "NOOK-REACH" "$WORK/logs/kx-1.console.log" | sed 's/^/     | /'

# --- everything defined goes -------------------------------------------
for d in kx-1 kx-2; do v destroy "$d" >/dev/null; v undefine "$d" >/dev/null; done
v net-destroy kx >/dev/null; v net-undefine kx >/dev/null
for vol in $(v vol-list "$POOL" | awk '{print $1}'); do v vol-delete --pool "$POOL" "$vol" >/dev/null; done
check "no domain left" test -z "$(v list --all --name | grep -E '^(ex1|kx-1|kx-2)$')"
check "no network kx left" sh -c '! virsh -q -c "$1" net-info kx >/dev/null 2>&1' _ "$URI"
check "no volume left" test -z "$(v vol-list "$POOL")"
finish

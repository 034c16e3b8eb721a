#!/usr/bin/env bash
# nook export libvirt without a guest OS or a libvirt daemon: VMs made by
# nook on blank disks (real QEMUs that boot nothing), exported with -o DIR.
# The XML is checked by libvirt's own virt-xml-validate and read back with
# python for the names, MACs, addresses, disks and boot; the disk must be
# self-contained and the seed nook's own. Refusals: a running VM, names
# that exist in DIR, an unknown VM, bad options, an unreachable URI, and
# a name taken on libvirt's built-in test:///default driver.
# tests/guest/test-export.sh boots the exports on a real libvirt.
NOOK=$1
. "$(dirname "$0")/lib.sh"
cleanup() {
	"$NOOK" local delete e1 --force >/dev/null 2>&1
	"$NOOK" local delete ek --force >/dev/null 2>&1
	"$NOOK" local delete test --force >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
command -v virt-xml-validate >/dev/null || { fail "virt-xml-validate is missing: run scripts/setup.sh (libvirt-clients)"; finish; exit 1; }
valid() { virt-xml-validate "$@" >/dev/null; }
json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
# xq FILE EXPR: EXPR over the XML's root r (xml.etree)
xq() { python3 -c 'import sys,xml.etree.ElementTree as E; r=E.parse(sys.argv[1]).getroot(); print(eval(sys.argv[2]))' "$1" "$2"; }
qemu-img create -q -f raw blank.img 64M
common=(--image blank.img --no-wait --memory 256M --cpus 1 --accel tcg)

expect_rc "export --help" 0 "$NOOK" export libvirt --help
contains "  names -o and --connect" "$OUT" "--connect URI"
expect_rc "help lists export" 0 "$NOOK" help
contains "  in the table" "$OUT" "export"
expect_rc "no target is a usage error" 2 "$NOOK" export
expect_rc "an unknown target is a usage error" 2 "$NOOK" export vmware e1 -o x
expect_rc "neither -o nor --connect is a usage error" 2 "$NOOK" export libvirt e1
expect_rc "both is a usage error" 2 "$NOOK" export libvirt e1 -o x --connect test:///default
expect_rc "--start with -o is a usage error" 2 "$NOOK" export libvirt e1 -o x --start
expect_rc "a bad --virt-type is a usage error" 2 "$NOOK" export libvirt e1 -o x --virt-type xen
expect_rc "an unknown VM is refused" 1 "$NOOK" export libvirt nosuch -o out0
contains "  naming it" "$ERR" "no VM named 'nosuch'"
check "  and nothing is written" test ! -e out0/define.sh

# --- one VM -------------------------------------------------------------
expect_rc "start e1" 0 "$NOOK" local start e1 "${common[@]}"
expect_rc "export of a running VM is refused" 1 "$NOOK" export libvirt e1 -o out1
contains "  saying to stop or suspend it" "$ERR" "stop it ('nook local stop e1') or suspend it"
check "  and nothing is written" test ! -e out1/e1.xml -a ! -e out1/e1.qcow2
expect_rc "stop e1" 0 "$NOOK" local stop e1 --force
expect_rc "export e1 -o out1" 0 "$NOOK" export libvirt e1 -o out1
contains "  says how to define it" "$OUT" "define.sh"
contains "  says how to reach its console" "$OUT" "console e1"
check "the domain XML validates (virt-xml-validate)" valid out1/e1.xml domain
check "define.sh is executable and defines e1" sh -c 'test -x out1/define.sh && grep -q "define \"\$here/e1.xml\"" out1/define.sh'
check "define.sh is valid sh" sh -n out1/define.sh
mac=$(json 'd["nics"][0]["mac"]' < "$NOOK_HOME/vms/e1/vm.json")
check "the name is e1" test "$(xq out1/e1.xml 'r.find("name").text')" = e1
check "nook's MAC" test "$(xq out1/e1.xml '[i.find("mac").get("address") for i in r.iter("interface")]')" = "['$mac']"
check "the uplink is libvirt's default network" test "$(xq out1/e1.xml 'r.find("devices/interface/source").get("network")')" = default
check "the same memory" test "$(xq out1/e1.xml 'r.find("memory").text')" = $((256 * 1024))
check "the same CPUs" test "$(xq out1/e1.xml 'r.find("vcpu").text')" = 1
contains "the pinned machine type" "$(xq out1/e1.xml 'r.find("os/type").get("machine")')" "pc-q35-"
check "TCG here: domain type qemu" test "$(xq out1/e1.xml 'r.get("type")')" = qemu
check "disk boot (as the VM)" test "$(xq out1/e1.xml 'r.find("os/boot").get("dev")')" = hd
check "the serial console is a pty logged to a file" test "$(xq out1/e1.xml 'r.find("devices/serial").get("type") + " " + r.find("devices/serial/log").get("file")')" = "pty $WORK/out1/e1.console.log"
check "vda is the flattened disk, vdb the seed" test "$(xq out1/e1.xml '[(d.find("target").get("dev"), d.find("source").get("file")) for d in r.iter("disk")]')" = "[('vda', '$WORK/out1/e1.qcow2'), ('vdb', '$WORK/out1/e1.seed.iso')]"
check "the disk is self-contained (no backing file)" sh -c '! qemu-img info --output=json out1/e1.qcow2 | grep -q backing-filename'
check "  qcow2 of the VM's size" test "$(qemu-img info --output=json out1/e1.qcow2 | json 'd["format"], d["virtual-size"]')" = "$(qemu-img info -U --output=json "$NOOK_HOME/vms/e1/disk.qcow2" | json '"qcow2", d["virtual-size"]')"
check "  with the VM's data" qemu-img compare -q out1/e1.qcow2 "$NOOK_HOME/vms/e1/disk.qcow2"
check "the seed is nook's, unchanged" cmp -s out1/e1.seed.iso "$NOOK_HOME/vms/e1/cidata.iso"
check "  and private (it holds the VM's host key)" test "$(stat -c %a out1/e1.seed.iso)" = 600
files=$(ls out1 | tr '\n' ' ')
expect_rc "a second export into out1 is refused" 1 "$NOOK" export libvirt e1 -o out1
contains "  naming what exists" "$ERR" "out1/e1.xml exists already"
check "  and nothing changed there" test "$(ls out1 | tr '\n' ' ')" = "$files"
expect_rc "--uplink user" 0 "$NOOK" export libvirt e1 -o out2 --uplink user --virt-type kvm
check "  a user-mode NIC with the MAC" test "$(xq out2/e1.xml '[(i.get("type"), i.find("mac").get("address")) for i in r.iter("interface")]')" = "[('user', '$mac')]"
check "  validates" valid out2/e1.xml domain
check "--virt-type kvm: domain type kvm, the host's CPU" test "$(xq out2/e1.xml 'r.get("type") + " " + r.find("cpu").get("mode")')" = "kvm host-passthrough"

# a direct boot: the kernel and initrd go along, with the same cmdline
printf 'not really a kernel' > vmlinuz
printf 'not really an initrd' > initrd.img
python3 - "$NOOK_HOME/vms/e1/vm.json" "$WORK" <<'PY'
import json, sys
p, w = sys.argv[1], sys.argv[2]
d = json.load(open(p))
d["boot"] = "direct"
d["image"]["kernel"] = w + "/vmlinuz"
d["image"]["initrd"] = w + "/initrd.img"
d["image"]["cmdline"] = "root=LABEL=nook-root ro & <quoted> 'x'"
json.dump(d, open(p, "w"))
PY
expect_rc "export a direct boot" 0 "$NOOK" export libvirt e1 -o out3
check "  validates" valid out3/e1.xml domain
check "  the kernel and initrd copied" sh -c 'cmp -s out3/e1.vmlinuz vmlinuz && cmp -s out3/e1.initrd initrd.img'
check "  and named in <os>" test "$(xq out3/e1.xml 'r.find("os/kernel").text + " " + r.find("os/initrd").text')" = "$WORK/out3/e1.vmlinuz $WORK/out3/e1.initrd"
cmdline=$(xq out3/e1.xml 'r.find("os/cmdline").text')
contains "  the image's cmdline, escaped and read back" "$cmdline" "root=LABEL=nook-root ro & <quoted> 'x'"
contains "  and nook's (serial console, NoCloud)" "$cmdline" "console=ttyS0 ds=nocloud"

# --- a cluster: its nodes and its network ----------------------------------
expect_rc "start ek --nodes 2" 0 "$NOOK" local start ek --nodes 2 "${common[@]}"
expect_rc "export of a running cluster is refused" 1 "$NOOK" export libvirt ek -o outk
contains "  naming the node" "$ERR" "VM ek-1 is running"
expect_rc "stop ek" 0 "$NOOK" local stop ek --force
expect_rc "export ek -o outk" 0 "$NOOK" export libvirt ek -o outk
st=$("$NOOK" local status ek --json)
for n in 1 2; do
	i=$((n - 1))
	check "ek-$n validates" valid outk/ek-$n.xml domain
	addr=$(echo "$st" | json "d[$i][\"address\"]")
	macs=$(json '[n["mac"] for n in d["nics"]]' < "$NOOK_HOME/vms/ek-$n/vm.json")
	check "ek-$n: nook's two MACs, uplink then the cluster's network" test "$(xq outk/ek-$n.xml '[i.find("mac").get("address") for i in r.iter("interface")]')" = "$macs"
	check "ek-$n: the second NIC on network ek" test "$(xq outk/ek-$n.xml '[i.find("source").get("network") for i in r.iter("interface")]')" = "['default', 'ek']"
	check "ek-$n: the seed's network-config gives it $addr" sh -c '"$1" cidata show "$2" --file network-config | grep -q "$3/24"' _ "$NOOK" outk/ek-$n.seed.iso "$addr"
	contains "ek-$n: its address said" "$OUT" "ek-$n: address $addr on network ek"
done
check "the network XML validates" valid outk/ek.net.xml network
check "  isolated: no <forward>, no host address" test "$(xq outk/ek.net.xml '(r.find("name").text, r.find("forward"), r.find("ip"))')" = "('ek', None, None)"
check "define.sh defines the network first" test "$(grep -n 'net-define\|define "\$here/ek-1' outk/define.sh | cut -d: -f1 | tr '\n' ' ')" = "$(grep -n 'net-define' outk/define.sh | cut -d: -f1) $(grep -n 'define "\$here/ek-1' outk/define.sh | cut -d: -f1) "

# --- --connect: refusals before anything is made ---------------------------
expect_rc "an unreachable URI is refused" 1 "$NOOK" export libvirt e1 --connect qemu+ssh://nobody@127.0.0.1:1/system
contains "  saying so" "$ERR" "cannot reach libvirt at qemu+ssh://nobody@127.0.0.1:1/system"
# libvirt's test driver lives in virsh itself: a pool default-pool, a
# network default and a domain named test
expect_rc "a missing pool is refused" 1 "$NOOK" export libvirt e1 --connect test:///default --pool nosuch
contains "  naming it" "$ERR" "no storage pool 'nosuch'"
expect_rc "a missing uplink network is refused" 1 "$NOOK" export libvirt e1 --connect test:///default --pool default-pool --uplink nosuch
contains "  pointing at --uplink user" "$ERR" "--uplink user"
expect_rc "start a VM named test" 0 "$NOOK" local start test "${common[@]}"
expect_rc "stop it" 0 "$NOOK" local stop test --force
expect_rc "a name that exists on the target is refused" 1 "$NOOK" export libvirt test --connect test:///default --pool default-pool
contains "  naming it" "$ERR" "has a domain named test already"
# test:///default forgets between virsh runs: the network defined in
# one is gone in the next, a failure part way, said and undone
expect_rc "a failure part way is said" 1 "$NOOK" export libvirt ek --connect test:///default --pool default-pool
contains "  naming the step" "$ERR" "starting the network on test:///default failed"
check "  and its temporary files are gone" test -z "$(ls -A "$NOOK_HOME/vms/ek-1" | grep '^\.export')"
finish

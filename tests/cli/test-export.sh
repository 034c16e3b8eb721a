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
# a name virsh would read as an option: 'pool-info --help' succeeded, so
# the pool passed for there, and the undo named volumes never made
expect_rc "a --pool starting with '-' is a usage error" 2 "$NOOK" export libvirt e1 --connect test:///default --pool=--help
contains "  saying why" "$ERR" "--pool '--help' starts with '-', which virsh would read as an option"
expect_rc "an --uplink starting with '-' is a usage error" 2 "$NOOK" export libvirt e1 --connect test:///default --uplink=-x
contains "  saying why" "$ERR" "--uplink '-x' starts with '-'"
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
# XML is UTF-8: a directory whose name is not (or holds a control
# character) is refused, naming it, before anything is written (the XML
# was written, and libvirt's parser stopped at the byte)
expect_rc "-o DIR not UTF-8 is refused" 1 "$NOOK" export libvirt e1 -o "$(printf 'caf\351')"
contains "  naming the path" "$ERR" "VM e1: its file '$WORK/caf\xe9/e1.qcow2' holds a control character or a byte that is not UTF-8"
check "  nothing written" test ! -e "$(printf 'caf\351')"
expect_rc "-o DIR with a control character is refused" 1 "$NOOK" export libvirt e1 -o "$(printf 'a\001b')"
contains "  naming the path" "$ERR" "its file '$WORK/a\x01b/e1.qcow2'"
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
contains "  naming the step and the network" "$ERR" "starting network ek on test:///default failed"
check "  and its temporary files are gone" test -z "$(ls -A "$NOOK_HOME/vms/ek-1" | grep '^\.export')"
# --- the reviewed faults: fakes of virsh and qemu-img on PATH -------------
expect_rc "-o '' is a usage error" 2 "$NOOK" export libvirt e1 -o ''
expect_rc "--connect '' is a usage error" 2 "$NOOK" export libvirt e1 --connect ''
expect_rc "a session URI without --log-dir is a usage error" 2 "$NOOK" export libvirt e1 --connect qemu:///session
check "a new -o directory is private (0700)" test "$(stat -c %a out1)" = 700
check "  the disk copy too (0600)" test "$(stat -c %a out1/e1.qcow2)" = 600
check "  the kernel copy too (0600)" test "$(stat -c %a out3/e1.vmlinuz)" = 600
mkdir shared && chmod 777 shared
expect_rc "a directory others can write to is refused" 1 "$NOOK" export libvirt e1 -o shared
contains "  saying why" "$ERR" "writable by anyone"
check "  and nothing is written" test -z "$(ls -A shared)"
chmod 770 shared
expect_rc "so is one its group can write to" 1 "$NOOK" export libvirt e1 -o shared
contains "  saying so" "$ERR" "shared is writable by its group"
# a directory anyone may write (not sticky) on the way: another user
# could swap DIR for one of theirs (before, a new DIR was made there)
mkdir open && chmod 777 open
expect_rc "a new -o directory where anyone may write is refused" 1 "$NOOK" export libvirt e1 -o open/lv
contains "  saying what, where and what to do" "$ERR" "open/lv: another user could swap the export for one of theirs: $WORK/open has mode 0777: anyone may replace what it holds; chmod o-w it, or make it sticky, or write the export elsewhere"
check "  and not made" test ! -e open/lv
mkdir -m 700 open/mine
expect_rc "  so is one of yours there" 1 "$NOOK" export libvirt e1 -o open/mine
check "  and nothing is written" test -z "$(ls -A open/mine)"
: > afile
expect_rc "-o naming a file is refused" 1 "$NOOK" export libvirt e1 -o afile
contains "  up front" "$ERR" "afile is not a directory"
mkdir fake state
cat > fake/qemu-img <<'SH'
#!/bin/sh
# qemu-img with hooks on convert: a name appearing meanwhile, a failure,
# a slow one; the rest is the real one
if [ "$1" = convert ]; then
	if [ -n "${FAKE_RACE:-}" ] && [ ! -L "$FAKE_RACE" ]; then ln -s "$FAKE_RACE_TO" "$FAKE_RACE"; fi
	[ -n "${FAKE_CONVERT_FAIL:-}" ] && { echo "qemu-img: cannot convert" >&2; exit 1; }
	[ -n "${FAKE_CONVERT_SLOW:-}" ] && { /usr/bin/qemu-img "$@" || exit; touch "$FAKE_CONVERT_SLOW"; exec sleep 30; }
	[ -n "${FAKE_CONVERT_HOLD:-}" ] && { echo $$ > "$FAKE_CONVERT_HOLD"; exec sleep 30; }
fi
exec /usr/bin/qemu-img "$@"
SH
cat > fake/virsh <<'SH'
#!/bin/sh
# a libvirt kept as files in $FAKE_STATE; argvs logged; vol-path says
# more on stderr, as virsh under LIBVIRT_DEBUG does
st=$FAKE_STATE
echo "$*" >> "$st.log"
[ "$1" = -q ] && shift
[ "$1" = -c ] && shift 2
name() { sed -n 's|.*<name>\(.*\)</name>.*|\1|p' "$1" | head -n 1; }
case $1 in
uri) [ -n "${FAKE_SILENT:-}" ] && exit 1; echo fake:///x ;;
capabilities) echo "<capabilities/>" ;;
pool-info) echo "Name: $2" ;;
net-info) [ "$2" = default ] && { echo "Active:         yes"; exit 0; }; test -e "$st/net-$2" ;;
dominfo) test -e "$st/dom-$2" ;;
vol-info) test -e "$st/vol-$4" ;;
vol-create-as) touch "$st/vol-$3" ;;
vol-upload) [ -n "${FAKE_SLOW:-}" ] && { touch "$st.uploading"; sleep 2; }; cp "$5" "$st/vol-$4" ;;
vol-path) echo "libvirt: debug: some noise" >&2; echo "/pool/$4" ;;
vol-delete) [ -n "${FAKE_FAILDELETE:-}" ] && { echo "error: cannot delete $4" >&2; exit 1; }; rm "$st/vol-$4" ;;
define) cp "$2" "$st/dom-$(name "$2")" ;;
undefine) rm "$st/dom-$2" ;;
net-define) cp "$2" "$st/net-$(name "$2")" ;;
net-undefine) rm "$st/net-$2" ;;
net-start) touch "$st/netrun-$2" ;;
net-destroy) rm "$st/netrun-$2" ;;
start) [ "$2" = "${FAKE_FAILSTART:-}" ] && { echo "error: cannot start $2" >&2; exit 1; }; touch "$st/run-$2" ;;
destroy) rm "$st/run-$2" ;;
*) echo "error: fake virsh has no $1" >&2; exit 1 ;;
esac
SH
chmod +x fake/qemu-img fake/virsh
export FAKE_STATE=$WORK/state
FPATH=$WORK/fake:$PATH
printf 'precious' > victim
expect_rc "a name appearing in DIR while exporting" 1 env PATH="$FPATH" FAKE_RACE="$WORK/outr/e1.qcow2" FAKE_RACE_TO="$WORK/victim" "$NOOK" export libvirt e1 -o outr
contains "  is refused" "$ERR" "appeared there while"
check "  never written through (a symlink)" test "$(cat victim)" = precious
check "  and nothing else of the export is left" test "$(ls -A outr)" = e1.qcow2
expect_rc "a failed export into a new directory" 1 env PATH="$FPATH" FAKE_CONVERT_FAIL=1 "$NOOK" export libvirt e1 -o outf
contains "  says what failed, whole" "$ERR" "failed: qemu-img: cannot convert"
check "  and removes the directory it made" test ! -e outf
# -o a/b/c: every directory made for it goes with a failure, and none
# that was there before (a/b stayed, empty)
mkdir had
expect_rc "a failed export into new nested directories" 1 env PATH="$FPATH" FAKE_CONVERT_FAIL=1 "$NOOK" export libvirt e1 -o had/b/c
check "  removes each directory it made" test ! -e had/b
check "  and keeps the one that was there" test -d had
env PATH="$FPATH" FAKE_CONVERT_SLOW="$WORK/converting" "$NOOK" export libvirt e1 -o outs >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do [ -e converting ] && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid"
check "SIGTERM during -o's flatten ends it" test $? = 143
check "  leaving no half-written file" test -z "$(ls -A outs)"
expect_rc "  and the next export there works" 0 "$NOOK" export libvirt e1 -o outs
rm -f converting
env PATH="$FPATH" FAKE_CONVERT_SLOW="$WORK/converting" "$NOOK" export libvirt e1 -o had/n1/n2 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do [ -e converting ] && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid"
check "SIGTERM during an export into new nested directories ends it" test $? = 143
check "  removing each directory it made" test ! -e had/n1
check "  and none that was there" test -d had
# a file someone else put into a directory the export made is theirs:
# that directory stays, with it (the signal removes what is empty only)
rm -f converting
env PATH="$FPATH" FAKE_CONVERT_SLOW="$WORK/converting" "$NOOK" export libvirt e1 -o had/m1/m2 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do [ -e converting ] && break; sleep 0.1; done
echo theirs > had/m1/notes.txt
kill -TERM "$pid"
wait "$pid"
check "SIGTERM with another's file in a directory the export made" test $? = 143
check "  keeps that file" test -f had/m1/notes.txt
check "  removes the empty one below it" test ! -e had/m1/m2
rm -rf had/m1
expect_rc "an export into new nested directories" 0 "$NOOK" export libvirt e1 -o had/n1/n2
check "  keeps them" test -x had/n1/n2/define.sh
# SIGKILL: no handler of nook's runs, yet its qemu-img ends with it
killed_ends "SIGKILL during -o's flatten" "  ends its qemu-img too" \
	convert.pid env PATH="$FPATH" FAKE_CONVERT_HOLD="$WORK/convert.pid" \
	"$NOOK" export libvirt e1 -o outx
expect_rc "  and the next export there works" 0 "$NOOK" export libvirt e1 -o outx
check "  leaving nothing of the killed one" test -z "$(ls -A outx | grep '^\.')"
mkdir -p cdp/out1
check "define.sh with CDPATH set defines from its own directory" sh -c 'cd "$1" && CDPATH="$1/cdp" PATH="$2" sh out1/define.sh fake:///x >/dev/null && grep -qx "\-c fake:///x define $1/out1/e1.xml" "$3"' _ "$WORK" "$FPATH" "$FAKE_STATE.log"
rm -f state/*

expect_rc "virsh failing silently" 1 env PATH="$FPATH" FAKE_SILENT=1 "$NOOK" export libvirt e1 --connect fake:///x
contains "  is not called missing" "$ERR" "virsh failed and said nothing"
expect_rc "export ek --connect --start" 0 env PATH="$FPATH" "$NOOK" export libvirt ek --connect fake:///x --start
check "  defines both nodes and the network" test "$(ls state | tr '\n' ' ')" = "dom-ek-1 dom-ek-2 net-ek netrun-ek run-ek-1 run-ek-2 vol-ek-1.qcow2 vol-ek-1.seed.iso vol-ek-2.qcow2 vol-ek-2.seed.iso "
check "  virsh's stderr is no part of a volume's path" test "$(xq state/dom-ek-1 '[d.find("source").get("file") for d in r.iter("disk")]')" = "['/pool/ek-1.qcow2', '/pool/ek-1.seed.iso']"
check "  the domain validates" valid state/dom-ek-1 domain
check "  the network validates" valid state/net-ek network
check "  the uploaded disk is the VM's" qemu-img compare -q state/vol-ek-1.qcow2 "$NOOK_HOME/vms/ek-1/disk.qcow2"
rm -f state/*
expect_rc "a start failing part way" 1 env PATH="$FPATH" FAKE_FAILSTART=ek-2 "$NOOK" export libvirt ek --connect fake:///x --start
contains "  names the domain and says virsh's error" "$ERR" "starting domain ek-2 on fake:///x failed: error: cannot start ek-2"
check "  and undoes everything on the target" test -z "$(ls -A state)"
check "  and its temporary files are gone" test -z "$(ls -A "$NOOK_HOME/vms/ek-1" | grep '^\.export')"
expect_rc "an undo step failing" 1 env PATH="$FPATH" FAKE_FAILSTART=ek-1 FAKE_FAILDELETE=1 "$NOOK" export libvirt ek --connect fake:///x --start
contains "  says what is left and how to remove it" "$ERR" "this is left: run 'virsh -c fake:///x vol-delete --pool default ek-2.qcow2'"
check "  and undoes the rest" test "$(ls state | grep -v '^vol-' | tr '\n' ' ')" = ""
rm -f state/* state.uploading
# SIGINT as a terminal's Ctrl-C sends it (a background job ignores it)
python3 -c 'import os,signal,sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' "$(command -v env)" PATH="$FPATH" FAKE_SLOW=1 "$NOOK" export libvirt ek --connect fake:///x >/dev/null 2>sigint.err &
pid=$!
for _ in $(seq 100); do [ -e state.uploading ] && break; sleep 0.1; done
kill -INT "$pid"
wait "$pid"
check "SIGINT during an upload ends the export" test $? = 130
contains "  saying it was interrupted" "$(cat sigint.err)" "interrupted"
check "  after undoing what it made on the target" test -z "$(ls -A state)"
check "  and removing its flattened copy" test -z "$(ls -A "$NOOK_HOME/vms/ek-1" | grep '^\.export')"
finish

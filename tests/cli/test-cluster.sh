#!/usr/bin/env bash
# Clusters without a guest OS: blank disks give real QEMUs that boot
# nothing, enough to check what start --nodes makes (nodes, NICs, MACs,
# addresses, the network process), the name rules, growing, stop and
# delete, in seconds. tests/guest/test-cluster.sh boots real nodes.
NOOK=$1
. "$(dirname "$0")/lib.sh"
cleanup() {
	"$NOOK" local delete k --force >/dev/null 2>&1
	"$NOOK" local delete solo --force >/dev/null 2>&1
	"$NOOK" local delete m-2 --force >/dev/null 2>&1
	"$NOOK" local delete z --force >/dev/null 2>&1
	"$NOOK" local delete kf --force >/dev/null 2>&1
	"$NOOK" local delete h --force >/dev/null 2>&1
	"$NOOK" local delete r --force >/dev/null 2>&1
	"$NOOK" local delete r-2 --force >/dev/null 2>&1
	"$NOOK" local delete q --force >/dev/null 2>&1
	"$NOOK" local delete fq --force >/dev/null 2>&1
	"$NOOK" local delete pr --force >/dev/null 2>&1
	"$NOOK" local delete sc --force >/dev/null 2>&1
	"$NOOK" local delete ho --force >/dev/null 2>&1
	"$NOOK" local delete hp --force >/dev/null 2>&1
	"$NOOK" local delete dn --force >/dev/null 2>&1
	"$NOOK" local delete dn-1 --force >/dev/null 2>&1
	"$NOOK" local delete dn-2 --force >/dev/null 2>&1
	"$NOOK" local delete gk --force >/dev/null 2>&1
	"$NOOK" local delete dk --force >/dev/null 2>&1
	"$NOOK" local prune >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
qemus() { pgrep -f -- "$NOOK_HOME/run/$1/qemu.pid" | wc -l; }
qemu_args() { tr '\0' '\n' < /proc/"$(cat "$NOOK_HOME/run/$1/qemu.pid")"/cmdline; }
qemu-img create -q -f raw blank.img 64M
common=(--image blank.img --no-wait --memory 256M --cpus 1 --accel tcg)

expect_rc "--subnet without --nodes is a usage error" 2 "$NOOK" local start k --subnet 10.9.0.0/24
expect_rc "--nodes 0 is a usage error" 2 "$NOOK" local start k --nodes 0
expect_rc "a subnet over slirp's is refused" 2 "$NOOK" local start k --nodes 2 --subnet 10.0.2.0/24 "${common[@]}"
check "  and nothing is made" test ! -e "$NOOK_HOME/vms/k-1" -a ! -e "$NOOK_HOME/clusters/k.json"
# a first start whose network cannot start makes no node, and leaves
# neither a record, nor a lock file, nor a runtime directory behind
# (nook, run as a switch, starts no other: its environment says so)
expect_rc "a first start whose switch fails" 1 env NOOK_SWITCH_CHILD=1 "$NOOK" local start fq --nodes 2 "${common[@]}"
contains "  says why" "$ERR" "a switch does not start another"
check "  leaves no record, lock or network directory" sh -c '! ls "$1/clusters" "$1/run" 2>/dev/null | grep -q fq' _ "$NOOK_HOME"
check "  and no node" test ! -e "$NOOK_HOME/vms/fq-1"
# a runtime directory another user made (as a /tmp/nook-UID made first):
# a start is refused, and neither it nor prune removes anything there
if [ "$(id -u)" = 0 ]; then
	H2="$WORK/h2"
	mkdir -p "$H2/run/ev.net/sw" "$H2/run/old.net"
	: > "$H2/run/ev.net/sw/theirs"
	: > "$H2/run/old.net/theirs"
	chown -R nobody "$H2/run"
	expect_rc "a start under another user's runtime directory" 1 env NOOK_HOME="$H2" "$NOOK" local start ev --nodes 2 "${common[@]}"
	contains "  is refused, naming the owner" "$ERR" "$H2/run belongs to user 65534, not to you"
	check "  and removes nothing of theirs" test -e "$H2/run/ev.net/sw/theirs"
	expect_rc "  prune there" 0 env NOOK_HOME="$H2" "$NOOK" local prune
	contains "  finds nothing" "$OUT" "nothing to prune"
	check "  and removes nothing of theirs" test -e "$H2/run/ev.net/sw/theirs" -a -e "$H2/run/old.net/theirs"
	rm -rf "$H2"
fi

# two nodes: each a VM with a second NIC on the cluster's network
expect_rc "start k --nodes 2" 0 "$NOOK" local start k --nodes 2 "${common[@]}"
contains "  each progress line names its node once" "$OUT" "k-2: QEMU running"
check "  not twice" sh -c '! printf "%s" "$1" | grep -q "k-[12]: VM k-"' _ "$OUT"
check "two QEMUs" test "$(qemus k-1)" = 1 -a "$(qemus k-2)" = 1
expect_rc "status k --json" 0 "$NOOK" local status k --json
st=$OUT
check "status of a cluster lists both nodes" test "$(echo "$st" | json 'len(d)')" = 2
check "node 1 is k's" test "$(echo "$st" | json 'd[0]["cluster"]')" = k
a1=$(echo "$st" | json 'd[0]["address"]'); a2=$(echo "$st" | json 'd[1]["address"]')
check "nodes have distinct private addresses" test -n "$a1" -a "$a1" != "$a2"
contains "the default subnet is 10.77.0.0/24" "$a1" "10.77.0."
check "the network runs" test "$(echo "$st" | json 'd[0]["network"]')" = running
n1=$(qemu_args k-1 | grep -c -- '^-netdev$')
check "a node has two NICs" test "$n1" = 2
mac1=$(qemu_args k-1 | grep -o 'mac=[0-9a-f:]*' | sort | tr '\n' ' ')
mac2=$(qemu_args k-2 | grep -o 'mac=[0-9a-f:]*' | sort | tr '\n' ' ')
check "MACs differ between nodes" test "$mac1" != "$mac2"
check "the seed carries a network-config with the node's address" \
	sh -c '"$1" cidata show "$2" --file network-config | grep -q "$3"' _ "$NOOK" "$NOOK_HOME/vms/k-1/cidata.iso" "$a1"
# the seed's ID in the record is the one its boothook sets: nook's writes
# of the names over ssh pass it on, and a reboot of the node's own keeps
# them only under that seed
seed_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"].get("seed"))' "$NOOK_HOME/vms/$1/vm.json"; }
seed1=$(seed_of k-1)
check "the record keeps the seed's ID" \
	sh -c '"$1" cidata show "$2" --file vendor-data | grep -qx "seed=$3"' _ "$NOOK" "$NOOK_HOME/vms/k-1/cidata.iso" "$seed1"
expect_rc "list shows the cluster" 0 "$NOOK" local list
contains "list names the cluster and address" "$OUT" "$a2"

# names: the cluster's name is no VM's, a node's is no stranger's
expect_rc "a plain VM with a node's name of k is refused" 1 "$NOOK" local start k-3 "${common[@]}"
contains "  naming the cluster" "$ERR" "node name of cluster k"
expect_rc "  and so is its --plan" 1 "$NOOK" local start k-3 "${common[@]}" --plan
contains "  for the same reason" "$ERR" "node name of cluster k"
# a name is no path: delete of ../x/y once removed DATA/x/y.json
mkdir -p "$NOOK_HOME/victim" && echo '{}' > "$NOOK_HOME/victim/keep.json"
expect_rc "delete ../victim/keep is a bad name" 2 "$NOOK" local delete ../victim/keep --force
check "  and the file outside clusters/ stays" test -f "$NOOK_HOME/victim/keep.json"
expect_rc "  status of it too" 2 "$NOOK" local status ../victim/keep
# only names nook would make are k's: k-01 and k-0 never are
expect_rc "a plain VM k-01 may be planned" 0 "$NOOK" local start k-01 "${common[@]}" --plan
expect_rc "  and k-0" 0 "$NOOK" local start k-0 "${common[@]}" --plan
expect_rc "the plan of k again, no --image" 0 "$NOOK" local start k --plan
contains "  its nodes keep their image, named as made" "$OUT" "image blank.img"
contains "  and their one vCPU, said so" "$OUT" " 1 cpu, memory 256M"
# one node's plan: it starts as a node of k, at its own address
expect_rc "the plan of node k-2 alone, --json" 0 "$NOOK" local start k-2 --plan --json
check "  names its cluster, cluster staying a boolean" test "$(echo "$OUT" | json '(d["cluster"], d["node_of"])')" = "(False, 'k')"
check "  and its number and address" test "$(echo "$OUT" | json '(d["nodes"][0]["node"], d["nodes"][0]["address"])')" = "(2, '$a2')"
expect_rc "  in words" 0 "$NOOK" local start k-2 --plan
contains "  names its cluster" "$OUT" "VM k-2 (a node of cluster k)"
check "  and its address" sh -c 'printf "%s\n" "$1" | grep -q "^  k-2  *$2 "' _ "$OUT" "$a2"
# a cluster's name too long for its nodes' names, or no VM name's start:
# said of the name typed, with the limit for that many nodes
c30=abcdefghijklmnopqrstuvwxyzabcd
expect_rc "a cluster of 30 characters with 10 nodes" 2 "$NOOK" local start $c30 --nodes 10 "${common[@]}" --plan
contains "  names the cluster's name" "$ERR" "cluster name \"$c30\" is too long for 10 nodes"
contains "  and the limit for 10 nodes" "$ERR" "a cluster of 10 to 64 nodes takes a name of at most 29 characters"
expect_rc "  with 9 it is planned" 0 "$NOOK" local start $c30 --nodes 9 "${common[@]}" --plan
expect_rc "a cluster of 31 characters" 2 "$NOOK" local start ${c30}e --nodes 2 "${common[@]}" --plan
contains "  names the cluster's name, and the limit" "$ERR" "cluster name \"${c30}e\" is too long for 2 nodes: its node ${c30}e-2 would be a VM name of 33 characters, past the 32 a VM name takes; a cluster of 1 to 9 nodes takes a name of at most 30 characters"
expect_rc "a cluster named 1" 2 "$NOOK" local start 1 --nodes 2 "${common[@]}"
contains "  is said of the cluster's name" "$ERR" 'cluster name "1" must start with a lower-case letter'
printf '{"name": "%s", "subnet": "10.77.0.0/24", "nodes": 1}\n' $c30 > "$NOOK_HOME/clusters/$c30.json"
expect_rc "  a cluster of 30 characters grown to 10" 2 "$NOOK" local start $c30 --nodes 10 "${common[@]}" --plan
contains "  says how many nodes its name takes" "$ERR" "cluster $c30 cannot have 10 nodes: its node $c30-10 would be a VM name of 33 characters, past the 32 a VM name takes, so a cluster of this name takes at most 9"
rm "$NOOK_HOME/clusters/$c30.json"
expect_rc "a plain VM m-2 (no cluster m yet)" 0 "$NOOK" local start m-2 "${common[@]}"
expect_rc "cluster m over it is refused" 1 "$NOOK" local start m --nodes 2 "${common[@]}"
contains "  naming the VM in the way" "$ERR" "m-2 is a VM already"
check "  and nothing of m was made" test ! -e "$NOOK_HOME/vms/m-1" -a ! -e "$NOOK_HOME/clusters/m.json"
"$NOOK" local delete m-2 --force >/dev/null
expect_rc "a cluster named like another's node is refused" 1 "$NOOK" local start k-1 --nodes 2 "${common[@]}"
expect_rc "  and like a node it would have" 1 "$NOOK" local start k-5 --nodes 1 "${common[@]}"
contains "  naming the cluster" "$ERR" "k-5 is a node name of cluster k"
check "  and nothing of it was made" test ! -e "$NOOK_HOME/vms/k-5-1" -a ! -e "$NOOK_HOME/clusters/k-5.json"
expect_rc "a plain VM" 0 "$NOOK" local start solo "${common[@]}"
expect_rc "a cluster cannot take its name" 1 "$NOOK" local start solo --nodes 2 "${common[@]}"
contains "  says why" "$ERR" "solo is a VM already"
"$NOOK" local delete solo --force >/dev/null
expect_rc "fewer nodes than the cluster has is refused" 1 "$NOOK" local start k --nodes 1 "${common[@]}"
contains "  pointing at delete" "$ERR" "nook local delete k-2"
contains "  one that works on a running node" "$ERR" "'nook local delete k-2' removes the last (stopped, or with --force)"
expect_rc "status of a node k has not made" 1 "$NOOK" local status k-5
contains "  says how such a node is made" "$ERR" "no VM named 'k-5' (a node name of cluster k: 'nook local start k --nodes N' makes its nodes)"

# one node restarts alone, with the same MAC and address
expect_rc "stop one node" 0 "$NOOK" local stop k-2 --force
check "the network runs on for the other" test "$("$NOOK" local status k-1 --json | json 'd["network"]')" = running
# a node whose lock another nook holds (a start of it, before its QEMU
# runs) needs the network: stopping the last running node leaves it
flock "$NOOK_HOME/vms/k-2/lock" sleep 30 &
holder=$!
for _ in $(seq 200); do
	flock -n "$NOOK_HOME/vms/k-2/lock" true || break
	sleep 0.05
done
expect_rc "stop k-1 while k-2's lock is held" 0 "$NOOK" local stop k-1 --force
check "  the network runs on for k-2's start" test -n "$(pgrep -f -- "__switch $NOOK_HOME/run/k.net\$")"
pkill -P "$holder"; wait "$holder" 2>/dev/null
# two nodes that stop at once: the last of them stops the network
expect_rc "  k-1 back, and k-2" 0 "$NOOK" local start k --no-wait
"$NOOK" local stop k-1 --force >/dev/null 2>&1 &
s1=$!
"$NOOK" local stop k-2 --force >/dev/null 2>&1
wait "$s1"
check "k-1 and k-2 stopped at once: no network process left" test -z "$(pgrep -f -- "__switch $NOOK_HOME/run/k.net\$")"
expect_rc "  k-1 back" 0 "$NOOK" local start k-1 --no-wait
seed1=$(seed_of k-1)
expect_rc "start it alone" 0 "$NOOK" local start k-2 --no-wait
check "same MACs" test "$(qemu_args k-2 | grep -o 'mac=[0-9a-f:]*' | sort | tr '\n' ' ')" = "$mac2"
check "same address" test "$("$NOOK" local status k-2 --json | json 'd["address"]')" = "$a2"

# a network process that died: status says so, the next start brings it
# back, and names the running nodes QEMU cannot plug into the new one
kill "$(cat "$NOOK_HOME/run/k.net/switch.pid")"
for _ in $(seq 20); do
	[ "$("$NOOK" local status k-1 --json | json 'd["network"]')" = stopped ] && break
	sleep 0.25
done
check "a dead network: status says stopped" test "$("$NOOK" local status k-1 --json | json 'd["network"]')" = stopped
expect_rc "start k brings it back" 0 "$NOOK" local start k --no-wait
contains "  naming k-1 as cut off" "$ERR" "node k-1 ran while its cluster's network process was replaced"
check "  status says k-1 is cut off" test "$("$NOOK" local status k-1 --json | json 'd["network"]')" = cut
expect_rc "  in words" 0 "$NOOK" local status k-1
contains "  saying to restart it" "$OUT" "restart the node to rejoin"
"$NOOK" local stop k-1 --force >/dev/null
check "a stopped node's record keeps its seed's ID" test "$(seed_of k-1)" = "$seed1"
expect_rc "k-1 restarted" 0 "$NOOK" local start k-1 --no-wait
check "  with a new seed, its ID in the record" \
	sh -c '"$1" cidata show "$2" --file vendor-data | grep -qx "seed=$3"' _ "$NOOK" "$NOOK_HOME/vms/k-1/cidata.iso" "$(seed_of k-1)"
check "  not the old one" test "$(seed_of k-1)" != "$seed1"
check "  is on the network again" test "$("$NOOK" local status k-1 --json | json 'd["network"]')" = running
# a stopped switch (SIGSTOP) takes a node's plug into its backlog and
# never answers: a start that waited on it did so for 120 s, then left
# the node's QEMU running, said killed
ksw=$(cat "$NOOK_HOME/run/k.net/switch.pid")
kill -STOP "$ksw"
expect_rc "a grow while the switch is stopped" 1 timeout 30 "$NOOK" local start k --nodes 3 "${common[@]}"
contains "  says so at once, and the way on" "$ERR" "the cluster's switch (pid $ksw) is stopped (SIGSTOP), and a node would wait for it for good: 'kill -CONT $ksw' lets it run again"
check "  the record keeps 2 nodes" test "$(json 'd["nodes"]' < "$NOOK_HOME/clusters/k.json")" = 2
check "  and k-3 is not made" test ! -e "$NOOK_HOME/vms/k-3"
expect_rc "  status says its network is paused" 0 "$NOOK" local status k-1 --json
check "  as such" test "$(echo "$OUT" | json 'd["network"]')" = paused
expect_rc "  in words" 0 "$NOOK" local status k-1
contains "  saying what stopped" "$OUT" "its network paused: its switch is stopped (SIGSTOP)"
kill -CONT "$ksw"
check "  running again once it runs" test "$("$NOOK" local status k-1 --json | json 'd["network"]')" = running

# growing
# a grow that fails leaves the cluster the size it was: bad user-data is
# said once, before the record grows; a node that fails in its own
# process before it is made goes from the record again
printf '#cloud-config\nfoo: [\n' > bad.yaml
expect_rc "grow to 3 with a bad user-data fails" 1 "$NOOK" local start k --nodes 3 "${common[@]}" --user-data bad.yaml
check "  said once" test "$(printf '%s\n' "$ERR" | grep -c 'bad.yaml:3')" = 1
check "  the running nodes are not called failed" sh -c '! printf "%s" "$1" | grep -q "did not get running"' _ "$ERR"
check "  the record keeps 2 nodes" test "$(json 'd["nodes"]' < "$NOOK_HOME/clusters/k.json")" = 2
expect_rc "grow to 3 with a disk smaller than the image fails" 1 "$NOOK" local start k --nodes 3 "${common[@]}" --disk 1M
contains "  in k-3's own start" "$ERR" "cannot shrink VM k-3's disk"
check "  the record keeps 2 nodes" test "$(json 'd["nodes"]' < "$NOOK_HOME/clusters/k.json")" = 2
expect_rc "  so --nodes 2 is the cluster's size" 0 "$NOOK" local start k --nodes 2 --no-wait
expect_rc "grow to 3" 0 "$NOOK" local start k --nodes 3 "${common[@]}"
check "a third QEMU" test "$(qemus k-3)" = 1
expect_rc "ssh-config of the cluster" 0 "$NOOK" ssh-config k
check "  a stanza per node" test "$(echo "$OUT" | grep -c '^Host ')" = 3
expect_rc "ssh-config k --json" 0 "$NOOK" ssh-config k --json
check "  an object per node" test "$(echo "$OUT" | json '[n["name"] for n in d]')" = "['k-1', 'k-2', 'k-3']"
check "  each with its node's port" test "$(echo "$OUT" | json '[n["port"] for n in d]')" = "$("$NOOK" local status k --json | json '[n["ssh"]["port"] for n in d]')"

# the network's sockets are the user's alone
if [ "$(id -u)" = 0 ] && command -v runuser >/dev/null; then
	sw=$(find "$NOOK_HOME/run/k.net" -type s | head -1)
	check "the network has a socket" test -n "$sw"
	for sock in $(find "$NOOK_HOME/run/k.net" -type s); do
		check "nobody cannot connect to $(basename "$sock")" sh -c '! runuser -u nobody -- python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])" "$1" 2>/dev/null' _ "$sock"
	done
fi

# a running node is not changed by a start: it says so
expect_rc "a start with --memory 300M while k runs" 0 "$NOOK" local start k --no-wait --memory 300M
contains "  says it changes nothing in a node" "$ERR" "VM k-2 is running, so this start changes nothing in it (memory: 256M -> 300M)"
check "  nor records it" test "$(json 'd["memory"]' < "$NOOK_HOME/vms/k-2/vm.json")" = 268435456
expect_rc "  its plan with a smaller disk too: the nodes run" 0 "$NOOK" local start k --plan --disk 32M
expect_rc "  such a start" 0 "$NOOK" local start k --no-wait --disk 32M
contains "  says it could not" "$ERR" "VM k-2 is running, and this start could not change it anyway: its disk cannot shrink from 64M to 32M"
expect_rc "  the same values say nothing" 0 "$NOOK" local start k "${common[@]}"
check "  (nothing)" sh -c '! printf "%s" "$1" | grep -q "changes nothing"' _ "$ERR"

# running nodes are waited for, not taken as ready: these boot nothing
expect_rc "start of a running cluster waits for its nodes" 1 "$NOOK" local start k --timeout 3
check "  and does not call them ready" sh -c '! printf "%s" "$1" | grep -q "every node is ready"' _ "$OUT"
contains "  names a node that is not" "$ERR" "k-1: not ready after 3 s"
check "  once: its error names it already" sh -c '! printf "%s" "$1" | grep -q "k-1: VM k-1"' _ "$ERR"
check "  which still runs" test "$(qemus k-1)" = 1

expect_rc "  and with --json" 1 "$NOOK" local start k --timeout 2 --json
check "  one JSON document: the error, and every node" test "$(echo "$OUT" | json '(d["error"] != "", len(d["nodes"]))')" = "(True, 3)"
check "  each with its own reason, not naming its node again" test "$(echo "$OUT" | json '{n["error"].startswith("not ready after") for n in d["nodes"]}')" = "{True}"

# on a terminal: a board of one line per node, redrawn in place
script -qec "$(printf '%q ' "$NOOK" local start k --timeout 2)" /dev/null > board.out 2>&1
check "a terminal gets a line per node" grep -q 'k-1 .*booting' board.out
check "  and k-2's" grep -q 'k-2 .*booting' board.out
check "  redrawn in place (cursor up)" grep -q $'\033\[[0-9]*A' board.out

# a start killed while its nodes' processes wait: by SIGTERM to it alone
# (passed on to them), or outright by SIGKILL (they end with it), leaves
# none of them behind, holding the cluster's lock until they timed out
# (this script's: another run of it on the host has its own NOOK_HOME)
starts() {
	local p n=0
	for p in $(pgrep -f -- '[l]ocal start k --timeout 117'); do
		tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null |
			grep -qxF "NOOK_HOME=$NOOK_HOME" && n=$((n + 1))
	done
	echo "$n"
}
# until such a start waits in a process a node (at most 10 s)
await_nodes() {
	for _ in $(seq 40); do
		[ "$(starts)" -ge 3 ] && break
		sleep 0.25
	done
}
# every node's QEMU launched (slow when the host is busy): until then a
# node is held by the start with no QEMU to stop
await_qemus() {
	for _ in $(seq 240); do
		[ "$(qemus k-1)$(qemus k-2)$(qemus k-3)" = 111 ] && break
		sleep 0.25
	done
}
for sig in TERM KILL; do
	"$NOOK" local start k --timeout 117 >/dev/null 2>&1 &
	killed=$!
	await_nodes
	check "SIG$sig: the start waits in a process a node" test "$(starts)" -ge 3
	kill -"$sig" "$killed"
	wait "$killed" 2>/dev/null
	check "  it ends of the signal" test "$?" = "$((128 + $(kill -l "$sig")))"
	for _ in $(seq 20); do
		[ "$(starts)" = 0 ] && break
		sleep 0.25
	done
	check "  none of its processes left" test "$(starts)" = 0
	expect_rc "  nor the cluster busy" 1 "$NOOK" local start k --timeout 1
	check "  (a wait, not 'busy')" sh -c '! printf "%s" "$1" | grep -q busy' _ "$ERR"
done

# a node stopped --force while a start waits on it is stopped from then
# on, not "starting" with no QEMU until that start looks again
"$NOOK" local start k --timeout 117 >/dev/null 2>&1 &
waiting=$!
await_nodes
await_qemus
expect_rc "stop k-1 --force while a start waits on it" 0 "$NOOK" local stop k-1 --force
expect_rc "  status at once" 0 "$NOOK" local status k-1 --json
st=$(echo "$OUT" | json 'd["state"]')
check "  says stopped ($st)" test "$st" = stopped
kill -TERM "$waiting"
wait "$waiting" 2>/dev/null

# stop --force of the cluster while a start waits on its nodes: --force
# wins, and the start, seeing them stopped, ends the network
"$NOOK" local start k --timeout 117 >/dev/null 2>&1 &
waiting=$!
await_nodes
await_qemus
expect_rc "stop k --force while a start waits on it" 0 "$NOOK" local stop k --force
contains "  says the cluster was busy" "$ERR" "--force stops its nodes all the same"
check "  no QEMU left" test "$(qemus k-1)$(qemus k-2)$(qemus k-3)" = 000
wait "$waiting"
check "  the start fails" test "$?" = 1
check "  and no network process is left" test "$(pgrep -f -- "$NOOK_HOME/run/k.net" | wc -l)" = 0

# a node's delete writes the cluster's record only under the cluster's
# lock: while another nook holds it (a start growing the cluster, which
# writes the record too) the record is left to that nook, and the next
# nook to hold the lock takes the node off it
cp "$NOOK_HOME/clusters/k.json" k.json.before
exec 9>"$NOOK_HOME/clusters/k.lock"
flock -n 9
expect_rc "delete the last node while another nook holds k" 0 "$NOOK" local delete k-3 --force
check "  leaves the record to that nook" cmp -s k.json.before "$NOOK_HOME/clusters/k.json"
check "  without a warning" test -z "$ERR"
expect_rc "  a plan meanwhile" 0 "$NOOK" local start k --plan --json
check "  counts the record as the next start will save it" test "$(echo "$OUT" | json '[n["name"] for n in d["nodes"]]')" = "['k-1', 'k-2']"
exec 9>&-
expect_rc "  a start of k then" 0 "$NOOK" local start k "${common[@]}"
check "  does not make k-3 again" test ! -e "$NOOK_HOME/vms/k-3"
check "  as the record says (2 nodes)" test "$(json 'd["nodes"]' < "$NOOK_HOME/clusters/k.json")" = 2
check "  which keeps no mark" test -z "$(ls "$NOOK_HOME/clusters" | grep gone)"
expect_rc "  grown to 3 again" 0 "$NOOK" local start k --nodes 3 "${common[@]}"
check "  (k-3 is there)" test -e "$NOOK_HOME/vms/k-3/vm.json"

# a mark left for a node that was made again later does not take it
exec 9>"$NOOK_HOME/clusters/k.lock"
flock -n 9
expect_rc "a middle node's delete while k is held" 0 "$NOOK" local delete k-2 --force
exec 9>&-
expect_rc "  a start of k makes the gap's node again" 0 "$NOOK" local start k "${common[@]}"
check "  (k-2 is there)" test -e "$NOOK_HOME/vms/k-2/vm.json"
check "  and keeps k-3" test -e "$NOOK_HOME/vms/k-3/vm.json"

# a start of fewer nodes after a middle node's delete counts and names
# the nodes there are, not the gap
expect_rc "a middle node deleted" 0 "$NOOK" local delete k-2 --force
expect_rc "  then --nodes 1 is refused" 1 "$NOOK" local start k --nodes 1 "${common[@]}"
contains "  counting the nodes there are, naming the one dropped" "$ERR" "cluster k has 2 nodes; this start (1 node) would drop k-3:"
expect_rc "  a start of k makes k-2 again" 0 "$NOOK" local start k "${common[@]}"

# deleting the last node shrinks the cluster
expect_rc "delete the last node" 0 "$NOOK" local delete k-3 --force
expect_rc "then --nodes 2 is the cluster's size" 0 "$NOOK" local start k --nodes 2 "${common[@]}"
check "  and k-3 is not made again" test ! -e "$NOOK_HOME/vms/k-3"

# suspend, resume, pause and unpause: every node at once
# a command refused while a suspend holds the cluster (held there by
# SIGSTOP once it has the lock) names the suspend and what to do
clocked() { grep -q " FLOCK .* WRITE .*:$(stat -c %i "$NOOK_HOME/clusters/$1.lock") " /proc/locks; }
"$NOOK" local suspend k >/dev/null 2>&1 &
suspender=$!
# (the lock taken, then the line that names its holder written: stopped
# between them, it would be held by a nook that says nothing of itself)
for _ in $(seq 400); do
	clocked k && grep -qw "$suspender" "$NOOK_HOME/clusters/k.lock" && break
	sleep 0.01
done
kill -STOP "$suspender"
check "a suspend of k holds the cluster" clocked k
expect_rc "  a stop of k meanwhile" 1 "$NOOK" local stop k
contains "  names the suspend, and what to do" "$ERR" "cluster k is busy: another nook (pid $suspender) is suspending it; try again once it is done"
kill -CONT "$suspender"
wait "$suspender"
check "  the suspend ends well" test $? = 0
expect_rc "  start k resumes them" 0 "$NOOK" local start k --no-wait
t0=$(date +%s.%N)
expect_rc "suspend k" 0 "$NOOK" local suspend k
echo "     both suspended in $(echo "$(date +%s.%N) - $t0" | bc) s"
contains "  k-1 said" "$OUT" "VM k-1 suspended"
contains "  k-2 said" "$OUT" "VM k-2 suspended"
check "  both suspended" test "$("$NOOK" local status k --json | json '[n["state"] for n in d]')" = "['suspended', 'suspended']"
check "  no QEMU left" test "$(qemus k-1)$(qemus k-2)" = 00
check "  no network process left" test "$(pgrep -f -- "$NOOK_HOME/run/k.net" | wc -l)" = 0
expect_rc "start k resumes both" 0 "$NOOK" local start k --no-wait
contains "  k-1 resumed" "$OUT$ERR" "k-1: resumed"
contains "  k-2 resumed" "$OUT$ERR" "k-2: resumed"
check "  both running" test "$("$NOOK" local status k --json | json '[n["state"] for n in d]')" = "['running', 'running']"
check "  the network runs again" test "$("$NOOK" local status k-1 --json | json 'd["network"]')" = running
check "  the same MACs" test "$(qemu_args k-2 | grep -o 'mac=[0-9a-f:]*' | sort | tr '\n' ' ')" = "$mac2"
expect_rc "pause k --json" 0 "$NOOK" local pause k --json
check "  both paused" test "$("$NOOK" local status k --json | json '[n["state"] for n in d]')" = "['paused', 'paused']"
check "  the JSON says so, node by node" test "$(echo "$OUT" | json '[(n["name"], n["state"]) for n in d]')" = "[('k-1', 'paused'), ('k-2', 'paused')]"
expect_rc "unpause k" 0 "$NOOK" local unpause k
check "  both running" test "$("$NOOK" local status k --json | json '[n["state"] for n in d]')" = "['running', 'running']"
# a node in the state asked for already is said and left, no failure
expect_rc "unpause k again, --json" 0 "$NOOK" local unpause k --json
check "  each node running already" test "$(echo "$OUT" | json '[(n["name"], n["state"], n["how"]) for n in d]')" = "[('k-1', 'running', 'running already'), ('k-2', 'running', 'running already')]"
expect_rc "pause k-1 alone" 0 "$NOOK" local pause k-1
expect_rc "pause k with k-1 paused" 0 "$NOOK" local pause k
contains "  says k-1 is paused already" "$OUT" "VM k-1: paused already"
contains "  and pauses k-2" "$OUT" "VM k-2 paused"
expect_rc "unpause k-2 alone" 0 "$NOOK" local unpause k-2
expect_rc "unpause k with k-2 running" 0 "$NOOK" local unpause k
contains "  says k-2 is running already" "$OUT" "VM k-2: running already"
contains "  and unpauses k-1" "$OUT" "VM k-1 running again"
check "  both running" test "$("$NOOK" local status k --json | json '[n["state"] for n in d]')" = "['running', 'running']"
# a stopped node has nothing to save, pause or unpause: said, and no
# failure, as a stop of the cluster leaves a stopped node
"$NOOK" local stop k-2 --force >/dev/null
expect_rc "pause k with k-2 stopped" 0 "$NOOK" local pause k
contains "  says k-2 has nothing to pause" "$OUT" "VM k-2: stopped, nothing to pause"
expect_rc "unpause k with k-2 stopped" 0 "$NOOK" local unpause k
contains "  says k-2 has nothing to unpause" "$OUT" "VM k-2: stopped, nothing to unpause"
contains "  and unpauses k-1" "$OUT" "VM k-1 running again"
expect_rc "suspend k with k-2 stopped" 0 "$NOOK" local suspend k
contains "  says k-2 has nothing to suspend" "$OUT" "VM k-2: stopped, nothing to suspend"
contains "  and suspends k-1" "$OUT" "VM k-1 suspended"
check "  k-1 suspended, k-2 stopped" test "$("$NOOK" local status k --json | json '[n["state"] for n in d]')" = "['suspended', 'stopped']"
expect_rc "  again, --json" 0 "$NOOK" local suspend k --json
check "  each node as it is, and why" test "$(echo "$OUT" | json '[(n["name"], n["state"], n["how"]) for n in d]')" = "[('k-1', 'suspended', 'suspended already'), ('k-2', 'stopped', 'stopped, nothing to suspend')]"
expect_rc "  start k" 0 "$NOOK" local start k --no-wait
check "  both running" test "$("$NOOK" local status k --json | json '[n["state"] for n in d]')" = "['running', 'running']"

# k-2's kernel panicked with no one waiting (written on its console: a
# blank disk prints nothing): a start that waits ends its QEMU and says
# why; k-1, which boots nothing, runs out its --timeout and runs on
printf '[ 2.4] Kernel panic - not syncing: Attempted to kill init!\r\n[ 2.5] ---[ end Kernel panic - not syncing: Attempted to kill init! ]---\r\n' \
	>> "$NOOK_HOME/vms/k-2/console.log"
expect_rc "start k, k-2 panicked" 1 "$NOOK" local start k --timeout 5
contains "  names k-2's panic" "$ERR" "k-2: the guest's kernel panicked before this start (found running)"
check "  k-2's QEMU ended" test "$(qemus k-2)" = 0
check "  k-2 recorded crashed" test "$("$NOOK" local status k-2 --json | json 'd["state"]')" = crashed
check "  k-1 runs on" test "$(qemus k-1)" = 1

# stop: no QEMU and no network process left; delete: every node gone
expect_rc "stop k" 0 "$NOOK" local stop k --force
check "no QEMU left" test "$(qemus k-1)$(qemus k-2)" = 00
check "no network process left" test "$(pgrep -f -- "$NOOK_HOME/run/k.net" | wc -l)" = 0
expect_rc "status says the network is stopped" 0 "$NOOK" local status k-1 --json
check "  stopped" test "$(echo "$OUT" | json 'd["network"]')" = stopped
# a record that cannot be read is rebuilt from the nodes' specs, once
cp "$NOOK_HOME/clusters/k.json" k.json.good
printf '{"name": "k", "nod' > "$NOOK_HOME/clusters/k.json"
expect_rc "status of k with a broken record" 0 "$NOOK" local status k --json
check "  lists both nodes" test "$(echo "$OUT" | json 'len(d)')" = 2
contains "  says it rebuilt the record" "$ERR" "rebuilt from the specs of its 2 nodes"
check "  once" test "$(printf '%s\n' "$ERR" | grep -c rebuilt)" = 1
check "  which is as it was" cmp -s k.json.good "$NOOK_HOME/clusters/k.json"
# one that parses but names a subnet no start would take (edited by hand)
sed 's#"subnet": "[^"]*"#"subnet": "10.0.2.0/24"#' k.json.good \
	> "$NOOK_HOME/clusters/k.json"
check "  (the edit took)" grep -q '"10.0.2.0/24"' "$NOOK_HOME/clusters/k.json"
expect_rc "status of k with slirp's subnet in its record" 0 "$NOOK" local status k --json
contains "  says what is wrong" "$ERR" "not a subnet a cluster can have: subnet '10.0.2.0/24' overlaps"
contains "  and rebuilds it" "$ERR" "rebuilt from the specs of its 2 nodes"
check "  as it was" cmp -s k.json.good "$NOOK_HOME/clusters/k.json"
rm "$NOOK_HOME/clusters/k.json"
expect_rc "status of k with its record gone" 0 "$NOOK" local status k --json
check "  lists both nodes" test "$(echo "$OUT" | json 'len(d)')" = 2
contains "  says it made the record again" "$ERR" "k.json: missing; rebuilt from the specs of its 2 nodes"
check "  as it was" cmp -s k.json.good "$NOOK_HOME/clusters/k.json"
# one that parses but counts fewer nodes than say they are k's: a stop
# or delete of k would leave k-2 out, and end the network under it
sed 's#"nodes": 2#"nodes": 1#' k.json.good > "$NOOK_HOME/clusters/k.json"
check "  (the edit took)" grep -q '"nodes": 1' "$NOOK_HOME/clusters/k.json"
expect_rc "status of k with a record that leaves k-2 out" 0 "$NOOK" local status k --json
check "  lists both nodes" test "$(echo "$OUT" | json '[n["name"] for n in d]')" = "['k-1', 'k-2']"
contains "  says so" "$ERR" "k.json leaves out k-2, which says it is a node of cluster k: added"
check "  and mends the record" cmp -s k.json.good "$NOOK_HOME/clusters/k.json"
# one that also names another subnet: k-2 cannot be taken in, and a stop
# of k would miss it; said, with what mends the record
sed -e 's#"nodes": 2#"nodes": 1#' -e 's#"subnet": "[^"]*"#"subnet": "10.201.7.0/24"#' \
	k.json.good > "$NOOK_HOME/clusters/k.json"
check "  (the edit took)" grep -q '"10.201.7.0/24"' "$NOOK_HOME/clusters/k.json"
expect_rc "status of k whose record leaves k-2 out, on another subnet" 0 "$NOOK" local status k --json
contains "  says k-2 cannot be taken in, and why" "$ERR" "leaves out k-2 (on $(json 'd["subnet"]' < k.json.good), the record's subnet 10.201.7.0/24), which cannot be taken in"
contains "  and what mends it" "$ERR" "misses it; remove the file, and the next command makes it again"
check "  once" test "$(printf '%s\n' "$ERR" | grep -c 'cannot be taken in')" = 1
rm "$NOOK_HOME/clusters/k.json"
expect_rc "  which, removed" 0 "$NOOK" local status k --json
check "  is made again as it was" cmp -s k.json.good "$NOOK_HOME/clusters/k.json"
expect_rc "delete k" 0 "$NOOK" local delete k
check "every node gone" test ! -e "$NOOK_HOME/vms/k-1" -a ! -e "$NOOK_HOME/vms/k-2"
check "the record gone" test ! -e "$NOOK_HOME/clusters/k.json"
printf 'nonsense' > "$NOOK_HOME/clusters/k.json"
expect_rc "a broken record of no nodes" 1 "$NOOK" shell k -- true
contains "  says where and what is wrong" "$ERR" "clusters/k.json:1: '[' or '{' expected"
contains "  and what forgets it" "$ERR" "'nook local delete k' forgets it"
check "  and goes no further" sh -c '! printf "%s" "$1" | grep -q "first node"' _ "$ERR"
# list shows it, as it shows a VM whose record cannot be read (before, it
# was left out: a cluster nobody could see, that delete would forget)
expect_rc "list with a broken record of no nodes" 0 "$NOOK" local list
contains "  names k as broken, what is wrong" "$OUT" "cluster k is broken: $NOOK_HOME/clusters/k.json:1: '[' or '{' expected"
contains "  and what forgets it" "$OUT" "'nook local delete k' forgets it"
expect_rc "  list --json" 0 "$NOOK" local list --json
check "  lists k, broken, a cluster" test "$(echo "$OUT" | json '[(v["name"], v["state"], v.get("cluster")) for v in d if v["name"] == "k"]')" = "[('k', 'broken', 'k')]"
contains "  its error says what is wrong and what forgets it" "$(echo "$OUT" | json '[v["error"] for v in d if v["name"] == "k"][0]')" "clusters/k.json:1: '[' or '{' expected near 'nonsense', and no VM is a node of cluster k to rebuild it from: 'nook local delete k' forgets it"
expect_rc "delete k forgets it" 0 "$NOOK" local delete k
contains "  saying so" "$ERR" "removing the record"
check "  the record gone" test ! -e "$NOOK_HOME/clusters/k.json"
expect_rc "  list" 0 "$NOOK" local list
check "  names it no more" sh -c '! printf "%s" "$1" | grep -q "cluster k "' _ "$OUT"
expect_rc "  nor list --json" 0 "$NOOK" local list --json
check "  (no k)" test "$(echo "$OUT" | json '[v["name"] for v in d if v["name"] == "k"]')" = "[]"

# a cluster whose last node was deleted says so, and delete forgets it
expect_rc "a cluster of one node" 0 "$NOOK" local start z --nodes 1 "${common[@]}"
expect_rc "  whose node is deleted" 0 "$NOOK" local delete z-1 --force
expect_rc "status z says it has no nodes" 1 "$NOOK" local status z
contains "  and what to do" "$ERR" "cluster z has no nodes: 'nook local start z' makes them again"
expect_rc "stop z too" 1 "$NOOK" local stop z
expect_rc "  --json" 1 "$NOOK" local stop z --json
check "  its JSON error names no VM: z is a cluster" test "$(echo "$OUT" | json '("name" in d, "has no nodes" in d["error"])')" = "(False, True)"
expect_rc "list" 0 "$NOOK" local list
contains "  names z, which has no row" "$OUT" "cluster z has no nodes: 'nook local start z' makes them again (its own options: no node keeps an earlier start's image or sizes), 'nook local delete z' forgets it"
expect_rc "list --json" 0 "$NOOK" local list --json
check "  lists z too, with no nodes" test "$(echo "$OUT" | json '[(v["name"], v["state"], v["cluster"]) for v in d if v["name"].startswith("z")]')" = "[('z', 'no-nodes', 'z')]"
contains "  and what to do" "$(echo "$OUT" | json '[v["error"] for v in d if v["name"] == "z"][0]')" "'nook local start z' makes them again (its own options: no node keeps an earlier start's image or sizes), 'nook local delete z' forgets it"
expect_rc "delete z --json forgets it" 0 "$NOOK" local delete z --json
check "  prints no node (an empty array)" test "$(echo "$OUT" | json 'd')" = "[]"
check "  the record gone" test ! -e "$NOOK_HOME/clusters/z.json"
expect_rc "  and list names it no more" 0 "$NOOK" local list
check "  (no note)" sh -c '! printf "%s" "$1" | grep -q "cluster z"' _ "$OUT"
expect_rc "  nor list --json" 0 "$NOOK" local list --json
check "  (no z)" test "$(echo "$OUT" | json '[v["name"] for v in d if v["name"] == "z"]')" = "[]"
# a first start killed once it saved the cluster's record, before any
# node had its own: the record and the nodes' directories, no VM
expect_rc "a cluster kf of two" 0 "$NOOK" local start kf --nodes 2 "${common[@]}"
expect_rc "  stopped" 0 "$NOOK" local stop kf --force
rm "$NOOK_HOME/vms/kf-1/vm.json" "$NOOK_HOME/vms/kf-2/vm.json"
expect_rc "  as its first start killed early: list" 0 "$NOOK" local list
contains "  names kf" "$OUT" "cluster kf has no nodes"
expect_rc "  list --json" 0 "$NOOK" local list --json
check "  lists kf, with no nodes" test "$(echo "$OUT" | json '[(v["name"], v["state"]) for v in d if v["name"].startswith("kf")]')" = "[('kf', 'no-nodes')]"
# no node holds an address on its subnet yet: a start may move it
expect_rc "  a start on another subnet" 0 "$NOOK" local start kf --nodes 2 --subnet 10.79.0.0/24 "${common[@]}"
check "  moves it" test "$(json 'd["subnet"]' < "$NOOK_HOME/clusters/kf.json")" = 10.79.0.0/24
expect_rc "  status --json" 0 "$NOOK" local status kf --json
check "  the nodes' addresses on it" test "$(echo "$OUT" | json '[v["address"] for v in d]')" = "['10.79.0.1', '10.79.0.2']"
expect_rc "  but not once a node has one" 1 "$NOOK" local start kf --subnet 10.78.0.0/24 "${common[@]}"
contains "  saying so" "$ERR" "cluster kf is on 10.79.0.0/24; its subnet cannot move to 10.78.0.0/24"
expect_rc "  stopped" 0 "$NOOK" local stop kf --force
rm "$NOOK_HOME/vms/kf-1/vm.json" "$NOOK_HOME/vms/kf-2/vm.json"
expect_rc "  delete --json" 0 "$NOOK" local delete kf --json
check "  prints no node" test "$(echo "$OUT" | json 'd')" = "[]"
check "  its nodes' directories gone" test ! -e "$NOOK_HOME/vms/kf-1" -a ! -e "$NOOK_HOME/vms/kf-2"

# a first start cut short leaves a node's directory without its record
# (prune's "half-made"): deleting the cluster removes that one too
expect_rc "a cluster h of two" 0 "$NOOK" local start h --nodes 2 "${common[@]}"
expect_rc "  stopped" 0 "$NOOK" local stop h --force
rm "$NOOK_HOME/vms/h-2/vm.json"
check "  h-2 has its runtime directory" test -d "$NOOK_HOME/run/h-2"
expect_rc "delete h" 0 "$NOOK" local delete h
check "  saying nothing of the half-made one" test -z "$ERR"
check "  h-1 gone" test ! -e "$NOOK_HOME/vms/h-1"
check "  half-made h-2 gone too" test ! -e "$NOOK_HOME/vms/h-2"
check "  with its runtime directory" test ! -e "$NOOK_HOME/run/h-2"
check "  the record gone" test ! -e "$NOOK_HOME/clusters/h.json"

# a node's error, said in its own process, names the node: the lines of
# every node meet on one stderr. A QEMU in front of the real one fails
# for node $FAIL_NODE alone.
mkdir -p "$WORK/qbin"
cat > "$WORK/qbin/qemu-system-x86_64" <<'WRAP'
#!/usr/bin/env bash
case " $* " in *"/vms/$FAIL_NODE/"*" -daemonize "*)
	echo "qemu-system-x86_64: a stand-in's failure" >&2
	exit 1 ;;
esac
exec /usr/bin/qemu-system-x86_64 "$@"
WRAP
chmod +x "$WORK/qbin/qemu-system-x86_64"
expect_rc "a cluster fq of two, fq-2's QEMU failing" 1 \
	env FAIL_NODE=fq-2 PATH="$WORK/qbin:$PATH" "$NOOK" local start fq --nodes 2 "${common[@]}"
contains "  fq-2's error line names it" "$ERR" "nook: fq-2: QEMU failed to start (exit 1): qemu-system-x86_64: a stand-in's failure"
check "  fq-1 runs" test "$(qemus fq-1)" = 1
expect_rc "  started again, --json" 1 \
	env FAIL_NODE=fq-2 PATH="$WORK/qbin:$PATH" "$NOOK" local start fq --no-wait --json
contains "  names fq-2 on stderr" "$ERR" "nook: fq-2: QEMU failed to start"
check "  and its JSON error, by the node's name" test "$(echo "$OUT" | json '[(n["name"], n["error"].startswith("QEMU failed to start")) for n in d["nodes"] if "error" in n]')" = "[('fq-2', True)]"
expect_rc "  deleted" 0 "$NOOK" local delete fq --force
# a first start whose every node fails before it is made (a full disk:
# qemu-img cannot write the overlay) drops the record: the table names
# each node not made, and no lookup of the gone record speaks up
cat > "$WORK/qbin/qemu-img" <<'WRAP'
#!/usr/bin/env bash
[ "$1" = create ] && { echo "qemu-img: No space left on device" >&2; exit 1; }
exec /usr/bin/qemu-img "$@"
WRAP
chmod +x "$WORK/qbin/qemu-img"
expect_rc "a cluster fd whose nodes all fail before they are made" 1 \
	env PATH="$WORK/qbin:$PATH" "$NOOK" local start fd --nodes 2 "${common[@]}"
contains "  names each node's reason" "$ERR" "nook: fd-2: creating the VM's disk failed (qemu-img exit 1): qemu-img: No space left on device"
check "  the table says each was not made" test "$(printf '%s\n' "$OUT" | grep -c '^  fd-[12]  *not made  creating the VM')" = 2
check "  says nothing of a cluster that is not there" sh -c '! printf "%s" "$1" | grep -q "no cluster named"' _ "$ERR"
check "  nor a blank line" sh -c '! printf "%s\n" "$1" | grep -qx ""' _ "$ERR"
check "  and leaves no record" test ! -e "$NOOK_HOME/clusters/fd.json"
expect_rc "  --json too" 1 env PATH="$WORK/qbin:$PATH" "$NOOK" local start fd --nodes 2 "${common[@]}" --json
check "  one error per node, no more" test "$(printf '%s\n' "$ERR" | grep -c '^nook: ')" = 3
rm "$WORK/qbin/qemu-img"

# a cluster's delete is all or nothing: a node another nook holds (a
# start of that node) keeps every node; a node whose record cannot be
# read is refused, and with --force its QEMU ends with the others
expect_rc "a cluster z2 of two" 0 "$NOOK" local start z2 --nodes 2 "${common[@]}"
exec 9>"$NOOK_HOME/vms/z2-2/lock"
flock -n 9
expect_rc "  delete --force --json while another nook holds z2-2" 1 "$NOOK" local delete z2 --force --json
contains "  says so" "$ERR" "cluster z2: no node deleted"
check "  --json: each node's error" test "$(echo "$OUT" | json '[(n["name"], "deleted" in n, "error" in n) for n in d]')" = "[('z2-1', False, True), ('z2-2', False, True)]"
contains "  z2-2's: busy" "$(echo "$OUT" | json 'd[1]["error"]')" "busy"
contains "  z2-1's: all or nothing" "$(echo "$OUT" | json 'd[0]["error"]')" "all or nothing"
check "  and deletes none" test -e "$NOOK_HOME/vms/z2-1/vm.json" -a -e "$NOOK_HOME/vms/z2-2/vm.json"
check "  z2-1 still runs" test "$(qemus z2-1)" = 1
exec 9>&-
echo junk > "$NOOK_HOME/vms/z2-2/vm.json"
expect_rc "  delete with z2-2's record broken" 1 "$NOOK" local delete z2
contains "  names it and what to do" "$ERR" "node z2-2's record cannot be read (said above); 'nook local delete z2 --force'"
check "  and deletes none" test -e "$NOOK_HOME/vms/z2-1/vm.json"
expect_rc "  delete --json" 1 "$NOOK" local delete z2 --json
check "  --json: each node's error, none deleted" test "$(echo "$OUT" | json '[(n["name"], "deleted" in n, "error" in n) for n in d]')" = "[('z2-1', False, True), ('z2-2', False, True)]"
contains "  z2-2's error is the one said" "$(echo "$OUT" | json 'd[1]["error"]')" "node z2-2's record cannot be read"
contains "  with what is wrong with its record, said above on stderr" "$(echo "$OUT" | json 'd[1]["error"]')" "z2-2/vm.json"
contains "  z2-1's is its own" "$(echo "$OUT" | json 'd[0]["error"]')" "node z2-1 is running"
check "  and deletes none" test -e "$NOOK_HOME/vms/z2-1/vm.json"
expect_rc "  status z2 --json" 0 "$NOOK" local status z2 --json
check "  shows both nodes, z2-2 broken" test "$(echo "$OUT" | json '[(n["name"], n["state"]) for n in d]')" = "[('z2-1', 'running'), ('z2-2', 'broken')]"
contains "  with what is wrong" "$(echo "$OUT" | json 'd[1]["error"]')" "z2-2/vm.json"
expect_rc "  status z2" 0 "$NOOK" local status z2
contains "  says broken and the way out" "$OUT" "nook local delete z2-2 --force"
expect_rc "  list" 0 "$NOOK" local list
check "  says what is wrong with z2-2's record once" test "$(grep -c 'z2-2/vm.json' <<<"$ERR")" = 1
# logs serves the nodes it can read and fails for the one it cannot
expect_rc "  logs z2: z2-2 cannot be read" 1 "$NOOK" local logs z2
contains "  shows z2-1's" "$OUT" "==> z2-1 <=="
check "  and no header for z2-2" sh -c '! printf "%s" "$1" | grep -q "z2-2 <=="' _ "$OUT"
contains "  names z2-2 and the way out" "$ERR" "node z2-2's record cannot be read (said above); 'nook local delete z2-2 --force' removes it"
contains "  with what is wrong" "$ERR" "z2-2/vm.json"
# ssh-config is all or nothing: no stanzas that look like the whole cluster
expect_rc "  ssh-config z2: z2-2 cannot be read" 1 "$NOOK" ssh-config z2
check "  prints no stanza" test -z "$OUT"
contains "  names z2-2 and the way out" "$ERR" "node z2-2's record cannot be read (said above); 'nook local delete z2-2 --force' removes it"
expect_rc "  start z2-2 --plan: its record cannot be read" 1 "$NOOK" local start z2-2 --plan
contains "  says what is wrong with it" "$ERR" "z2-2/vm.json"
check "  and not that z2-2 would be a new node" sh -c '! printf "%s" "$1" | grep -q "is a node name of cluster"' _ "$ERR"
sw_alive() { kill -0 "$(cat "$NOOK_HOME/run/$1.net/switch.pid" 2>/dev/null)" 2>/dev/null; }
expect_rc "  stop z2: z2-2 cannot be read" 1 "$NOOK" local stop z2 --timeout 1 --json
check "  --json: z2-1 stopped, z2-2's error" test "$(echo "$OUT" | json '[(n["name"], n.get("stopped"), "error" in n) for n in d]')" = "[('z2-1', True, False), ('z2-2', None, True)]"
contains "  z2-2's error is the one said" "$(echo "$OUT" | json 'd[1]["error"]')" "--force ends its QEMU"
contains "  with what is wrong with its record, said once on stderr" "$(echo "$OUT" | json 'd[1]["error"]')" "z2-2/vm.json"
contains "  says so, and the way out" "$ERR" "node z2-2's record cannot be read (said above): --force ends its QEMU"
check "  what is wrong with the record said once" test "$(grep -c 'z2-2/vm.json' <<<"$ERR")" = 1
check "  z2-2's QEMU runs on" test "$(qemus z2-2)" = 1
check "  and so does the network under it" sw_alive z2
expect_rc "  start z2: z2-2 cannot be read" 1 "$NOOK" local start z2 "${common[@]}"
contains "  says so, and the way out" "$ERR" "node z2-2's record cannot be read (said above): 'nook local delete z2-2 --force' removes it"
expect_rc "  stop z2 --force" 0 "$NOOK" local stop z2 --force
check "  ends z2-2's QEMU" test "$(qemus z2-2)" = 0
check "  and the network" test ! -e "$NOOK_HOME/run/z2.net/switch.pid" -o "$(sw_alive z2 && echo up)" = ""
expect_rc "  delete --force --json" 0 "$NOOK" local delete z2 --force --json
check "  --json: each node deleted" test "$(echo "$OUT" | json '[(n["name"], n["deleted"]) for n in d]')" = "[('z2-1', True), ('z2-2', True)]"
check "  and removes it" test ! -e "$NOOK_HOME/vms/z2-2"
check "  and the record" test ! -e "$NOOK_HOME/clusters/z2.json"

# a cluster grown from the command line stays alike: a new node takes
# what the start leaves unsaid from the first node, not the defaults (the
# default image would be imported, and a real guest booted, beside blank
# ones); what the start says wins
vmj() { json "$2" < "$NOOK_HOME/vms/$1/vm.json"; }
printf '#cloud-config\nruncmd: [[echo, alike]]\nbootcmds: []\n' > alike.yaml
expect_rc "a cluster lk of two, with user-data" 0 "$NOOK" local start lk --nodes 2 "${common[@]}" --user-data alike.yaml
check "  its typo'd key is warned of once, not by each node" test "$(printf '%s\n' "$ERR" | grep -c "alike.yaml:3:1: cloud-init knows no key 'bootcmds' and skips it: did you mean bootcmd?")" = 1
mkdir -p elsewhere
expect_rc "  planned to grow, from elsewhere, no options" 0 sh -c 'cd elsewhere && "$1" local start lk --nodes 3 --plan --json' _ "$NOOK"
check "  the plan says lk-3 is like lk-1, from its image" test "$(echo "$OUT" | json '[(n["like"], n["image"], n["memory_mib"]) for n in d["nodes"]][2]')" = "('lk-1', 'blank.img', 256)"
expect_rc "  grown so" 0 sh -c 'cd elsewhere && "$1" local start lk --nodes 3 --no-wait' _ "$NOOK"
check "  lk-3 on lk-1's image" test "$(vmj lk-3 'd["image"]["disk"]')" = "$(vmj lk-1 'd["image"]["disk"]')"
check "  with its memory, cpus and accel" test "$(vmj lk-3 '(d["memory"], d["cpus"], d["accel"])')" = "(268435456, 1, 'tcg')"
check "  and its user-data" sh -c '"$1" cidata show "$2" --file user-data | grep -q "echo, alike"' _ "$NOOK" "$NOOK_HOME/vms/lk-3/cidata.iso"
check "  and no default image was made" test ! -e "$NOOK_HOME/images/names/debian-12"
expect_rc "  grown again with --memory 320M" 0 "$NOOK" local start lk --nodes 4 --no-wait --memory 320M
check "  lk-4 has what the start said" test "$(vmj lk-4 'd["memory"]')" = 335544320
expect_rc "  deleted" 0 "$NOOK" local delete lk --force
# a new node like a node whose image left the store: refused, naming it
expect_rc "an image in the store" 0 "$NOOK" images import blank.img --name lkimg
expect_rc "  a cluster lm of one from it" 0 "$NOOK" local start lm --nodes 1 --image lkimg --no-wait --memory 256M --cpus 1 --accel tcg
expect_rc "  the image removed" 0 "$NOOK" images rm lkimg --force
contains "  warning that lm-1 cannot start again" "$ERR" "VM lm-1 cannot start again without image lkimg"
expect_rc "  --plan of a grow is refused" 1 "$NOOK" local start lm --nodes 2 --plan
contains "  naming the image that is gone" "$ERR" "node lm-1's image lkimg"
expect_rc "  so is the grow" 1 "$NOOK" local start lm --nodes 2 --no-wait
contains "  saying the same" "$ERR" "which a new node is made like, is gone; give --image"
"$NOOK" local stop lm-1 --force >/dev/null
expect_rc "  a start of the node made from it" 1 "$NOOK" local start lm-1 --no-wait
contains "  says the image is gone, not QEMU's words" "$ERR" "image lkimg, which this VM is made from, is gone"
expect_rc "  deleted" 0 "$NOOK" local delete lm --force

# a plain start of r-2 and cluster r's first start at once: the plain one
# passed its name check (no cluster r yet) and is making its disk when
# cluster r saves its record. A qemu-img in front of the real one holds
# the plain start of $HOLD_VM there until cluster $HOLD_FOR's record is
# written. Either may then win the name, but never both: each looks again
# once its own record is written (and a failed cluster start drops a node
# another VM took).
mkdir -p "$WORK/bin"
cat > "$WORK/bin/qemu-img" <<'WRAP'
#!/usr/bin/env bash
case " $* " in *" create "*"/vms/$HOLD_VM/"*)
	touch "$WORK/$HOLD_VM.making"
	for _ in $(seq 600); do
		[ -e "$NOOK_HOME/clusters/$HOLD_FOR.json" ] && break
		sleep 0.1
	done ;;
esac
exec /usr/bin/qemu-img "$@"
WRAP
chmod +x "$WORK/bin/qemu-img"
held_start() { # VM CLUSTER: a plain start of VM held until CLUSTER's record
	WORK=$WORK HOLD_VM=$1 HOLD_FOR=$2 PATH="$WORK/bin:$PATH" \
		"$NOOK" local start "$1" "${common[@]}" >plain.out 2>plain.err &
	plain=$!
	for _ in $(seq 200); do [ -e "$WORK/$1.making" ] && break; sleep 0.05; done
	check "a plain start of $1 is making its disk" test -e "$WORK/$1.making"
	"$NOOK" local start "$2" --nodes 2 "${common[@]}" >/dev/null 2>&1
	wait "$plain"
}
held_start r-2 r
rc=$?
check "  cluster r's start meanwhile: the plain one fails (exit $rc)" test "$rc" = 1
contains "  saying r-2 is cluster r's node name" "$(cat plain.err)" "r-2 is a node name of cluster r"
# (as the race fell, r's failed start kept r-2 in its record or not)
expect_rc "  cluster r started again" 0 "$NOOK" local start r --nodes 2 "${common[@]}"
expect_rc "  its status" 0 "$NOOK" local status r --json
check "  r-1 and r-2, both its nodes" test "$(echo "$OUT" | json '[(n["name"], n["cluster"]) for n in d]')" = "[('r-1', 'r'), ('r-2', 'r')]"
expect_rc "  deleted" 0 "$NOOK" local delete r --force
check "  nothing of r-2 left" test ! -e "$NOOK_HOME/vms/r-2"
# the same for the cluster's own name
held_start q q
rc=$?
if [ -e "$NOOK_HOME/clusters/q.json" ]; then
	check "  cluster q's start meanwhile: the plain one fails (exit $rc)" test "$rc" = 1
	contains "  saying q is a cluster now" "$(cat plain.err)" "q is a cluster now"
	check "  and no VM q" test ! -e "$NOOK_HOME/vms/q/vm.json"
else
	check "  VM q won (exit $rc)" test "$rc" = 0 -a -e "$NOOK_HOME/vms/q/vm.json"
fi
"$NOOK" local delete q --force >/dev/null 2>&1

# a first start ended by SIGTERM while it makes its disk (the qemu-img
# above holds it there) leaves no directory; a cluster's says once that
# its nodes that started go on
sig_start() { # VM: a start of VM, SIGTERM once its disk is being made
	rm -f "$WORK/$1.making"
	WORK=$WORK HOLD_VM=$1 HOLD_FOR=never PATH="$WORK/bin:$PATH" \
		"$NOOK" local start "${@:2}" "${common[@]}" >sig.out 2>sig.err &
	local p=$!
	for _ in $(seq 200); do [ -e "$WORK/$1.making" ] && break; sleep 0.05; done
	kill -TERM "$p"
	wait "$p"
}
sig_start sg sg
check "a first start ended by SIGTERM as it makes its disk (exit $?)" test ! -e "$NOOK_HOME/vms/sg"
check "  nor a runtime directory" test ! -e "$NOOK_HOME/run/sg"
sig_start sc-2 sc --nodes 2
check "a cluster's first start ended so" test ! -e "$NOOK_HOME/vms/sc-2" -a ! -e "$NOOK_HOME/run/sc-2"
check "  says once that the nodes that started go on" test "$(grep -c "the nodes of cluster sc that had started go on booting in the background" sig.err)" = 1
"$NOOK" local delete sc --force >/dev/null 2>&1

# a cluster's delete killed (SIGKILL) once it has ended node 1's QEMU:
# the nodes left are not taken for crashed, and each says that a delete
# was cut short, and what finishes it
# (a kill that lands once the delete has removed both nodes leaves
# nothing to look at: then again, five times at most)
for try in 1 2 3 4 5; do
	"$NOOK" local start dk --nodes 2 "${common[@]}" >/dev/null 2>&1
	"$NOOK" local delete dk --force >/dev/null 2>&1 &
	deleter=$!
	for _ in $(seq 1000); do [ "$(qemus dk-1)" = 0 ] && break; sleep 0.005; done
	kill -KILL "$deleter"
	wait "$deleter" 2>/dev/null
	"$NOOK" local list --json > list.json
	[ -n "$(json '[v for v in d if v.get("cluster") == "dk" and v["name"] != "dk"]' < list.json | tr -d '[]')" ] && break
	"$NOOK" local delete dk --force >/dev/null 2>&1
done
OUT=$(cat list.json)
left=$(echo "$OUT" | json '[(v["name"], v["state"], v.get("delete_cut_short")) for v in d if v.get("cluster") == "dk" and v["name"] != "dk"]')
check "a cluster dk's delete killed as it deletes: some node is left (try $try: $left)" test "$left" != "[]"
check "  none crashed, each a delete of dk cut short" test "$(echo "$OUT" | json '[v["name"] for v in d if v.get("cluster") == "dk" and v["name"] != "dk" and (v["state"] == "crashed" or v.get("delete_cut_short") != "dk")]')" = "[]"
node=$(echo "$OUT" | json '[v["name"] for v in d if v.get("cluster") == "dk" and v["name"] != "dk"][0]')
expect_rc "  status of $node" 0 "$NOOK" local status "$node"
contains "  says what finishes the delete" "$OUT" "a delete of it was cut short; 'nook local delete dk --force' finishes it"
expect_rc "  the delete again" 0 "$NOOK" local delete dk --force
check "  leaves no node" test ! -e "$NOOK_HOME/vms/dk-1" -a ! -e "$NOOK_HOME/vms/dk-2"

# a dry run only looks: a cluster record that reading would rebuild
# from its nodes is used, not written, and a node's suspend cut off
# (which reading the nodes would mend) is left for the next command
expect_rc "a cluster pw of 2" 0 "$NOOK" local start pw --nodes 2 "${common[@]}"
check "  a suspend of pw-1 cut off" test "$(cut_suspend pw-1 "$WORK/pw.save")" = postmigrate
: > "$NOOK_HOME/vms/pw-1/.suspend.save.tmp"
rm "$NOOK_HOME/clusters/pw.json"
records() { find "$NOOK_HOME/vms" "$NOOK_HOME/clusters" -printf '%p %s %T@\n' | sort; }
before=$(records)
expect_rc "  prune --dry-run, its record gone" 0 "$NOOK" local prune --dry-run
check "  writes nothing: the record stays gone, the rest as it was" test "$before" = "$(records)"
check "  and mends nothing: pw-1's QEMU stays stopped" test "$(qmp_status pw-1)" = postmigrate
expect_rc "  status" 0 "$NOOK" local status pw
check "  rebuilds the record" test -s "$NOOK_HOME/clusters/pw.json"
check "  and mends pw-1: its guest runs" test "$(qmp_status pw-1)" = running
rm -f "$WORK/pw.save"
"$NOOK" local delete pw --force >/dev/null 2>&1

# a running node's directory removed by hand: its QEMU runs on with no
# record. A start of the cluster neither waits on it as a running node
# (nor says what it would change in it, against no record) nor calls
# every node running: it names it and what ends it, and leaves no
# directory of its own for it; once prune ended it, a start makes it
expect_rc "a cluster ho of 2" 0 "$NOOK" local start ho --nodes 2 "${common[@]}"
rm -rf "$NOOK_HOME/vms/ho-2"
expect_rc "  ho-2's directory removed by hand: a start of ho fails" 1 "$NOOK" local start ho --no-wait
contains "  naming ho-2's QEMU with no record" "$ERR" "VM ho-2 has no record ($NOOK_HOME/vms/ho-2/vm.json is gone), yet its QEMU (pid"
contains "  and what ends it" "$ERR" "'nook local prune' ends it"
check "  not calling every node running" sh -c '! printf "%s" "$1" | grep -q "every node is running"' _ "$OUT"
check "  nor saying what it changes in ho-2" sh -c '! printf "%s" "$1" | grep -q "VM ho-2 is running"' _ "$ERR"
check "  and makes no directory for it" test ! -e "$NOOK_HOME/vms/ho-2"
expect_rc "  prune" 0 "$NOOK" local prune
expect_rc "  then a start of ho" 0 "$NOOK" local start ho --no-wait
check "  makes ho-2 again" test -e "$NOOK_HOME/vms/ho-2/vm.json" -a "$(qemus ho-2)" = 1
"$NOOK" local delete ho --force >/dev/null 2>&1
# a plain VM's the same: not "already running, nook shell gets you in"
expect_rc "a plain VM hp" 0 "$NOOK" local start hp "${common[@]}"
rm -rf "$NOOK_HOME/vms/hp"
expect_rc "  its directory removed by hand: a start of hp fails" 1 "$NOOK" local start hp "${common[@]}"
contains "  naming its QEMU with no record" "$ERR" "VM hp has no record"
check "  not that a shell gets in" sh -c '! printf "%s" "$1" | grep -q "gets you in"' _ "$ERR"
check "  and makes no directory for it" test ! -e "$NOOK_HOME/vms/hp"
"$NOOK" local prune >/dev/null 2>&1

# a cluster's record gone, and two nodes whose own records give one
# number (a hand edit): it cannot be rebuilt. It is a cluster still, said
# with why and what mends it, not "no VM named dn", and a start of dn
# makes no plain VM dn beside its nodes
expect_rc "a cluster dn of 2" 0 "$NOOK" local start dn --nodes 2 "${common[@]}"
"$NOOK" local stop dn --force >/dev/null
python3 - "$NOOK_HOME/vms/dn-2/vm.json" "$NOOK_HOME/vms/dn-1/vm.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["cluster"] = json.load(open(sys.argv[2]))["cluster"]
json.dump(d, open(sys.argv[1], "w"))
PY
rm "$NOOK_HOME/clusters/dn.json"
expect_rc "  dn-2 says it is node 1, dn's record gone: status dn" 1 "$NOOK" local status dn
contains "  says why the record cannot be rebuilt" "$ERR" "nodes dn-1 and dn-2 are both node 1"
contains "  and what mends it" "$ERR" "mend dn-2's vm.json, or 'nook local delete dn-2 --force' removes it"
expect_rc "  a start of dn" 1 "$NOOK" local start dn "${common[@]}"
contains "  says the same" "$ERR" "are both node 1"
check "  and makes no plain VM dn" test ! -e "$NOOK_HOME/vms/dn"
expect_rc "  list" 0 "$NOOK" local list
contains "  names dn broken, why and what mends it, under its nodes" "$OUT" "cluster dn is broken: $NOOK_HOME/clusters/dn.json: missing, and it cannot be rebuilt from the VMs that say they are its nodes: nodes dn-1 and dn-2 are both node 1: mend dn-2's vm.json"
expect_rc "  list --json" 0 "$NOOK" local list --json
check "  lists cluster dn, broken" test "$(echo "$OUT" | json '[(v["state"], "both node 1" in v["error"]) for v in d if v["name"] == "dn"]')" = "[('broken', True)]"
expect_rc "  dn-2 deleted as said" 0 "$NOOK" local delete dn-2 --force
expect_rc "  then status dn" 0 "$NOOK" local status dn --json
check "  has the record rebuilt, of dn-1" test "$(echo "$OUT" | json '[n["name"] for n in d]')" = "['dn-1']"
"$NOOK" local delete dn --force >/dev/null 2>&1

# a grow killed (SIGKILL) once it saved the record, before it made its
# new nodes, leaves the record counting them (written so here): a start
# of the size the cluster has drops nothing that exists, so it is not
# refused, pointing at a delete of a node there is none of (which only
# said "no VM named"), and says what it leaves out
expect_rc "a cluster gk of 2" 0 "$NOOK" local start gk --nodes 2 "${common[@]}"
sed 's#"nodes": 2#"nodes": 4#' "$NOOK_HOME/clusters/gk.json" > gk.json
mv gk.json "$NOOK_HOME/clusters/gk.json"
check "  (the edit took)" grep -q '"nodes": 4' "$NOOK_HOME/clusters/gk.json"
expect_rc "  its record counting 4, no gk-3, gk-4: a start of 2" 0 "$NOOK" local start gk --nodes 2 --no-wait
contains "  says what it leaves out" "$ERR" "cluster gk's record counts gk-3, gk-4, which no start made (one was cut short): this start leaves them out"
check "  once" test "$(grep -c 'which no start made' <<<"$ERR")" = 1
check "  and the record counts 2" test "$(json 'd["nodes"]' < "$NOOK_HOME/clusters/gk.json")" = 2
expect_rc "  grown to 3 then" 0 "$NOOK" local start gk --nodes 3 "${common[@]}"
check "  makes gk-3" test -e "$NOOK_HOME/vms/gk-3/vm.json"
"$NOOK" local delete gk --force >/dev/null 2>&1
# the same of a first start of 3 killed before it made a node
printf '{"name": "gn", "subnet": "10.77.0.0/24", "nodes": 3}\n' > "$NOOK_HOME/clusters/gn.json"
expect_rc "a first start of gn cut short, no node: a plan of 2" 0 "$NOOK" local start gn --nodes 2 "${common[@]}" --plan --json
check "  plans gn-1 and gn-2" test "$(echo "$OUT" | json '[n["name"] for n in d["nodes"]]')" = "['gn-1', 'gn-2']"
contains "  leaving gn-3 out" "$ERR" "cluster gn's record counts gn-3, which no start made (one was cut short): this start leaves it out"
rm "$NOOK_HOME/clusters/gn.json"

# nodes whose records went by hand: prune ends their QEMUs, then the
# network none of them uses any more
expect_rc "a cluster pr of 2" 0 "$NOOK" local start pr --nodes 2 "${common[@]}"
check "  its network runs" sw_alive pr
rm "$NOOK_HOME/vms/pr-1/vm.json" "$NOOK_HOME/vms/pr-2/vm.json"
expect_rc "  prune --dry-run, records gone" 0 "$NOOK" local prune --dry-run
contains "  lists the network the QEMUs' end leaves unused" "$OUT" "would remove network cluster pr's network, no node running"
check "  and leaves it running" sw_alive pr
expect_rc "  prune" 0 "$NOOK" local prune --json
check "  ends both QEMUs, their directories, then the network" test "$(echo "$OUT" | json 'sorted(i["kind"] for i in d["items"] if i["removed"])')" = "['network', 'qemu', 'qemu', 'vm-dir', 'vm-dir']"
check "  which is gone" sh -c '! kill -0 "$(cat "$1")" 2>/dev/null' _ "$NOOK_HOME/run/pr.net/switch.pid"
expect_rc "  a second prune" 0 "$NOOK" local prune
contains "  finds nothing" "$OUT" "nothing to prune"
"$NOOK" local delete pr --force >/dev/null 2>&1
# the cluster's record gone by hand as well: its network is found by its
# runtime directory, and goes with it
expect_rc "a cluster pn of 2" 0 "$NOOK" local start pn --nodes 2 "${common[@]}"
pnsw=$(cat "$NOOK_HOME/run/pn.net/switch.pid")
rm "$NOOK_HOME/vms/pn-1/vm.json" "$NOOK_HOME/vms/pn-2/vm.json" "$NOOK_HOME/clusters/pn.json"
expect_rc "  prune --dry-run, every record gone" 0 "$NOOK" local prune --dry-run
contains "  lists the network" "$OUT" "would remove network cluster pn's network"
check "  and leaves it" kill -0 "$pnsw"
expect_rc "  prune" 0 "$NOOK" local prune --json
check "  ends both QEMUs, their directories and the network" test "$(echo "$OUT" | json 'sorted(i["kind"] for i in d["items"] if i["removed"])')" = "['network', 'qemu', 'qemu', 'vm-dir', 'vm-dir']"
check "  the switch is gone" ended "$pnsw"
check "  and so are its directory and lock file" test ! -e "$NOOK_HOME/run/pn.net" -a ! -e "$NOOK_HOME/clusters/pn.lock"
# a network directory an older nook's failed first start left
mkdir -m 700 "$NOOK_HOME/run/old.net"
: > "$NOOK_HOME/run/old.net/sw.log"
# kept while another nook holds the cluster's lock (a start of it), or
# works on a VM that has no record yet (its QEMU may be on it): quietly
exec 9>"$NOOK_HOME/clusters/old.lock"
flock -n 9
expect_rc "  prune while another nook holds the cluster's lock" 0 "$NOOK" local prune
contains "  keeps the network quietly" "$OUT" "nothing to prune"
check "  which is there" test -e "$NOOK_HOME/run/old.net/sw.log"
exec 9>&-
mkdir -p "$NOOK_HOME/vms/busy"
exec 9>"$NOOK_HOME/vms/busy/lock"
flock -n 9
expect_rc "  prune while a VM with no record is at work" 0 "$NOOK" local prune --dry-run
check "  keeps the network" sh -c '! printf %s "$1" | grep -q "old"' _ "$OUT"
exec 9>&-
rm -rf "$NOOK_HOME/vms/busy"
expect_rc "  prune of a left network directory" 0 "$NOOK" local prune
contains "  names it" "$OUT" "cluster old's network"
check "  and removes it" test ! -e "$NOOK_HOME/run/old.net"
expect_rc "  a second prune" 0 "$NOOK" local prune
contains "  finds nothing" "$OUT" "nothing to prune"
finish

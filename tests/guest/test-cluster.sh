#!/usr/bin/env bash
# A real cluster under TCG: two nodes booted in parallel on their private
# network, names that resolve between them, a node's restart, the cluster
# suspended and resumed (names and the private network still work), growing
# to three, a node rebooting on its own, the last node deleted while the
# others run, and nothing left after stop and delete; frames up to MTU
# 65535 between nodes, a stopped switch said and let go on, and a
# killed switch brought back. Boots: 2 at once,
# then one restart, one more node, one reboot.
NOOK=$1
. "$(dirname "$0")/../cli/lib.sh"
img=$(bash "$(dirname "$0")/image.sh") || { fail "build the test image"; finish; exit 1; }
cleanup() {
	"$NOOK" local delete dev --force >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
qemus() { pgrep -f -- "$NOOK_HOME/run/$1/qemu.pid" | wc -l; }
macs() { tr '\0' '\n' < /proc/"$(cat "$NOOK_HOME/run/$1/qemu.pid")"/cmdline | grep -o 'mac=[0-9a-f:]*' | sort | tr '\n' ' '; }
# reach NODE ADDR: from inside NODE, a TCP connect to ADDR's sshd
reach() { "$NOOK" shell "$1" -- timeout 10 bash -c 'exec 3<>/dev/tcp/$0/22 && head -c 4 <&3' "$2"; }

# user-data's commands run before the node is ready: the names resolve
# then already (each node's seed holds them)
cat > user-data <<'UD'
#cloud-config
runcmd:
  - [sh, -c, 'getent hosts dev-1 dev-2 > /var/tmp/peers-at-boot']
UD
# a start interrupted while the nodes boot (^C; here SIGTERM to all of
# it) ends as the signal would; the nodes boot on, no longer scheduled as
# batch work (see vm_sched_boot), and a start again waits for them
batch() { ps -L -o cls= -p "$(cat "$NOOK_HOME/run/$1/qemu.pid" 2>/dev/null)" 2>/dev/null | grep -c B; }
t0=$(date +%s)
setsid "$NOOK" local start dev --nodes 2 --image "$img" --user-data user-data --timeout 900 > first.out 2> first.err &
first=$!
for _ in $(seq 240); do
	if [ "$(nproc)" -ge 4 ]; then
		[ "$(qemus dev-1)$(qemus dev-2)" = 11 ] && break
	elif [ "$(batch dev-1)" -gt 0 ] && [ "$(batch dev-2)" -gt 0 ]; then
		break
	fi
	sleep 0.5
done
if [ "$(nproc)" -lt 4 ]; then
	check "the first start's nodes boot as batch work" test "$(batch dev-1)" -gt 0 -a "$(batch dev-2)" -gt 0
fi
kill -TERM -- -"$first"
wait "$first"
check "an interrupted start ends as SIGTERM would (143)" test "$?" = 143
check "  its nodes boot on" test "$(qemus dev-1)$(qemus dev-2)" = 11
check "  not as batch work" test "$(batch dev-1)$(batch dev-2)" = 00
expect_rc "start dev --nodes 2 again: every node ready" 0 "$NOOK" local start dev --nodes 2 --image "$img" --user-data user-data --timeout 900
start_out=$OUT
echo "$ERR" | sed 's/^/     | /' | tail -8
echo "     | both ready after $(( $(date +%s) - t0 )) s"
expect_rc "status dev --json" 0 "$NOOK" local status dev --json
a1=$(echo "$OUT" | json 'd[0]["address"]'); a2=$(echo "$OUT" | json 'd[1]["address"]')
check "both running" test "$(echo "$OUT" | json '[n["state"] for n in d]')" = "['running', 'running']"
# 2 nodes x 2 vCPUs on fewer than 4 cores boot on one vCPU each, then
# get the other; with 4 or more cores they boot on both
for n in dev-1 dev-2; do
	expect_rc "$n: both vCPUs online" 0 "$NOOK" shell "$n" -- nproc
	check "  2" test "$OUT" = 2
	expect_rc "$n: its kernel arguments" 0 "$NOOK" shell "$n" -- cat /proc/cmdline
	if [ "$(nproc)" -lt 4 ]; then
		contains "  booted on one vCPU ($(nproc) host cores)" "$OUT" "maxcpus=1"
		contains "  and the start said so, by its name" "$start_out" "$n: all 2 vCPUs online"
	else
		check "  booted on all ($(nproc) host cores)" test "${OUT#*maxcpus=1}" = "$OUT"
	fi
done
expect_rc "on dev-1, dev-2 resolves" 0 "$NOOK" shell dev-1 -- getent hosts dev-2
contains "  to its private address" "$OUT" "$a2"
expect_rc "on dev-2, dev-1 resolves" 0 "$NOOK" shell dev-2 -- getent hosts dev-1
contains "  to its private address" "$OUT" "$a1"
expect_rc "user-data's runcmd on dev-2 resolved both names" 0 "$NOOK" shell dev-2 -- cat /var/tmp/peers-at-boot
contains "  dev-1" "$OUT" "$a1"
contains "  dev-2" "$OUT" "$a2"
expect_rc "dev-1 reaches dev-2's sshd on the private network" 0 reach dev-1 dev-2
contains "  an SSH banner" "$OUT" "SSH-"
expect_rc "shell --all" 0 "$NOOK" shell --all dev -- hostname
contains "  dev-1's line" "$OUT" "dev-1: dev-1"
contains "  dev-2's line" "$OUT" "dev-2: dev-2"
expect_rc "shell --all: the highest exit status" 3 "$NOOK" shell --all dev -- sh -c 'test "$(hostname)" = dev-1 || exit 3'
# --json: each node's outputs apart and its status, in the nodes' order
expect_rc "shell --all --json" 3 "$NOOK" shell --all dev --json -- sh -c 'hostname; printf "\377"; echo oops >&2; exit 3'
check "  an object per node, each its own output" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert [n["name"] for n in d] == ["dev-1", "dev-2"], d
for n in d:
    assert n == {"name": n["name"], "exit": 3, "stdout": n["name"] + "\n\ufffd", "stderr": "oops\n"}, n' "$OUT"
# sync --all: a tree into every node at once; then --json of a copy
# that fails on dev-2 alone (a directory there its user cannot write:
# root's, since rsync -a would give one of the user's its mode back)
mkdir -p tree/sub && echo one >tree/sub/f
expect_rc "sync --all" 0 "$NOOK" sync --all dev "$WORK/tree"
contains "  says both" "$OUT" "synced 2 of 2 nodes"
expect_rc "  the file is on dev-2" 0 "$NOOK" shell dev-2 -- cat tree/sub/f
check "  as sent" test "$OUT" = one
expect_rc "  dev-2's copy made root's" 0 "$NOOK" shell dev-2 -- sudo chown root: tree/sub
echo two >tree/sub/g
expect_rc "sync --all --json, dev-2's rsync failing: its status" 23 "$NOOK" sync --all dev "$WORK/tree" --json
check "  dev-1 copied, dev-2 failed and says why" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert [n["name"] for n in d] == ["dev-1", "dev-2"], d
assert d[0]["exit"] == 0 and "error" not in d[0], d
assert d[1]["exit"] == 23, d
assert d[1]["error"].startswith("rsync failed (exit 23"), d
assert "Permission denied" in d[1]["stderr"], d' "$OUT"
expect_rc "  the new file on dev-1 only" 0 "$NOOK" shell --all dev -- sh -c 'cat tree/sub/g || true'
contains "  dev-1 has it" "$OUT" "dev-1: two"
# a SIGTERM to shell --all hangs its command up on every node
running_on() {
	"$NOOK" shell --all dev -- sh -c "grep -ls 'nook-all-tes[t]' /proc/[0-9]*/cmdline | grep -q . && echo running || echo gone" | sort | tr '\n' ' '
}
"$NOOK" shell --all dev -- sh -c 'sleep 300' nook-all-test >/dev/null 2>&1 &
all_pid=$!
for _ in $(seq 60); do [ "$(running_on)" = "dev-1: running dev-2: running " ] && break; sleep 0.5; done
check "shell --all runs a command on both nodes" test "$(running_on)" = "dev-1: running dev-2: running "
kill -TERM "$all_pid"
# its ssh clients' pipes stay open in the ssh master while the commands
# run: nook must end with the clients, not with the commands' 300 s
alive() { [ -e "/proc/$1" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }
for _ in $(seq 60); do alive "$all_pid" || break; sleep 0.5; done
check "  it ends within 30 s" eval '! alive "$all_pid"'
alive "$all_pid" && kill -KILL "$all_pid"
wait "$all_pid"
check "  it dies of the SIGTERM" test $? = 143
check "  and the command is gone on both" test "$(running_on)" = "dev-1: gone dev-2: gone "
# a reader of its output that goes (| head -n1): nook ends as a broken
# pipe's writer, and the commands are hung up on both nodes, not left
"$NOOK" shell --all dev -- sh -c 'while sleep 0.5; do echo one; done' nook-all-test | head -n1 >/dev/null
check "shell --all | head -n1 dies of the broken pipe" test "${PIPESTATUS[0]}" = 141
for _ in $(seq 20); do [ "$(running_on)" = "dev-1: gone dev-2: gone " ] && break; sleep 0.5; done
check "  and the command is gone on both" test "$(running_on)" = "dev-1: gone dev-2: gone "
expect_rc "the uplinks work (DNS and a route out through slirp)" 0 "$NOOK" shell dev-2 -- ip route get 10.0.2.2
expect_rc "the cluster's name means its first node" 0 "$NOOK" shell dev -- hostname
check "  dev-1" test "$OUT" = dev-1
contains "  said on stderr" "$ERR" "dev-1"

# the network says it has no router, so no node waited for one: it told
# each node unasked as soon as the node's IPv6 came up
for n in 1 2; do
	nm=$(macs dev-$n | grep -o 'mac=06:[0-9a-f:]*' | cut -d= -f2)
	check "dev-$n was advertised to when its IPv6 came up" grep -q "^advertising unasked to $nm\$" "$NOOK_HOME/run/dev.net/switch.log"
done
ifc=$("$NOOK" shell dev-1 -- ip -o link | awk -F': ' '/link\/ether 06:6e/ {print $2}')
expect_rc "dev-1's private NIC ($ifc): its IPv6 default routes" 0 "$NOOK" shell dev-1 -- ip -6 route show default dev "$ifc"
check "  none: the advertisement named no router" test -z "$OUT"

# frames larger than Ethernet's pass the switch whole: each node's
# private NIC at MTU 9000, then 65535, and one UDP datagram that fills
# it, sent with the don't-fragment bit (so one frame, or EMSGSIZE)
# from dev-2 to dev-1
ifc2=$("$NOOK" shell dev-2 -- ip -o link | awk -F': ' '/link\/ether 06:6e/ {print $2}')
for mtu in 9000 65535; do
	expect_rc "MTU $mtu on both private NICs" 0 sh -c '"$1" shell dev-1 -- sudo ip link set dev "$2" mtu "$4" && "$1" shell dev-2 -- sudo ip link set dev "$3" mtu "$4"' _ "$NOOK" "$ifc" "$ifc2" "$mtu"
	"$NOOK" shell dev-1 -- timeout 60 python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 9999))
print(len(s.recvfrom(70000)[0]))' "$a1" > jumbo.out 2>&1 &
	recv=$!
	for _ in $(seq 60); do
		"$NOOK" shell dev-1 -- ss -uln 2>/dev/null | grep -q ":9999 " && break
		sleep 0.5
	done
	expect_rc "  dev-2 sends $((mtu - 28)) bytes unfragmented" 0 "$NOOK" shell dev-2 -- python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER: IP_PMTUDISC_DO
for _ in range(3):
    s.sendto(b"x" * int(sys.argv[2]), (sys.argv[1], 9999))
    time.sleep(0.5)' "$a1" "$((mtu - 28))"
	wait "$recv"
	check "  dev-1 receives it whole" test "$(cat jumbo.out)" = "$((mtu - 28))"
done
expect_rc "MTU 1500 again" 0 sh -c '"$1" shell dev-1 -- sudo ip link set dev "$2" mtu 1500 && "$1" shell dev-2 -- sudo ip link set dev "$3" mtu 1500' _ "$NOOK" "$ifc" "$ifc2"

# a node's QEMU killed (SIGKILL) while sync --all copies into both: the
# other node's copy is whole, the dead one is named with what became of
# it, and the exit status is its rsync's; then the node restarts on its
# own: the same MAC and address, the network again
m2=$(macs dev-2)
mkdir big && head -c 96M /dev/urandom > big/blob
# (the kill is a power cut: what the guest has not yet written back,
# its first boot's files among them, would be lost, and with them its
# sshd's next start; synced first, it loses only the copy)
expect_rc "dev-2 written back" 0 "$NOOK" shell dev-2 -- sync
pid2=$("$NOOK" local status dev-2 --json | json 'd["pid"]')
"$NOOK" sync --all dev "$WORK/big" > cut.out 2> cut.err &
cut=$!
# dev-2's copy under way: rsync's temporary file there has some bytes;
# killed at once, before the copy can end
began=no
for _ in $(seq 240); do
	if "$NOOK" shell dev-2 -- sh -c 'find big -name ".blob.*" -size +1M 2>/dev/null' | grep -q .; then
		kill -KILL "$pid2"
		began=yes
		break
	fi
	sleep 0.25
done
check "dev-2's copy began, and its QEMU was killed then" test "$began" = yes
wait "$cut"
rc=$?
check "sync --all with dev-2 killed mid-copy fails (exit $rc)" test "$rc" -ne 0
contains "  names dev-2 and what became of it" "$(cat cut.err)" "dev-2: the VM is crashed now: the copy into it could not finish"
contains "  counts dev-1's copy" "$(cat cut.out)" "synced 1 of 2 nodes"
expect_rc "  dev-1's copy is whole" 0 "$NOOK" shell dev-1 -- sha256sum big/blob
check "  as sent" test "${OUT%% *}" = "$(sha256sum big/blob | cut -d' ' -f1)"
expect_rc "start dev-2 alone" 0 "$NOOK" local start dev-2 --timeout 900
check "same MACs" test "$(macs dev-2)" = "$m2"
check "same address" test "$("$NOOK" local status dev-2 --json | json 'd["address"]')" = "$a2"
expect_rc "dev-1 reaches the restarted dev-2" 0 reach dev-1 dev-2
expect_rc "the restarted dev-2 resolves dev-1" 0 "$NOOK" shell dev-2 -- getent hosts dev-1

# the switch stopped (SIGSTOP): nothing passes, status says paused;
# SIGCONT and the nodes reach each other again
nets() { "$NOOK" local status dev --json | json '[n["network"] for n in d]'; }
sw=$(cat "$NOOK_HOME/run/dev.net/switch.pid")
kill -STOP "$sw"
check "a stopped switch: status says paused" test "$(nets)" = "['paused', 'paused']"
expect_rc "  dev-1 does not reach dev-2 (10 s)" 124 reach dev-1 dev-2
expect_rc "  status says how it comes back" 0 "$NOOK" local status dev-1
contains "  SIGCONT" "$OUT" "its switch is stopped (SIGSTOP), and passes nothing until it gets SIGCONT"
kill -CONT "$sw"
check "  SIGCONT: status says running" test "$(nets)" = "['running', 'running']"
expect_rc "  dev-1 reaches dev-2 again" 0 reach dev-1 dev-2

# the switch killed while both run: status says so, the next start
# brings it back and names both nodes, which real QEMU cannot plug into
# the new switch, as cut off; the resume below (new QEMUs from the saved
# state) plugs them in again
kill -KILL "$(cat "$NOOK_HOME/run/dev.net/switch.pid")"
for _ in $(seq 20); do
	[ "$(nets)" = "['stopped', 'stopped']" ] && break
	sleep 0.25
done
check "a killed switch: status says stopped" test "$(nets)" = "['stopped', 'stopped']"
expect_rc "start dev brings it back" 0 "$NOOK" local start dev --timeout 900
contains "  naming dev-1 as cut off" "$ERR" "node dev-1 ran while its cluster's network process was replaced"
contains "  and dev-2" "$ERR" "node dev-2 ran while its cluster's network process was replaced"
check "  status: both cut off" test "$(nets)" = "['cut', 'cut']"
check "  dev-1 cannot reach dev-2" eval '! reach dev-1 dev-2 >/dev/null 2>&1'

# the cluster suspended and resumed, every node at once: names and the
# private network work after it
t0=$(date +%s.%N)
expect_rc "suspend dev" 0 "$NOOK" local suspend dev
echo "     | both suspended in $(echo "$(date +%s.%N) - $t0" | bc) s"
check "  both suspended" test "$("$NOOK" local status dev --json | json '[n["state"] for n in d]')" = "['suspended', 'suspended']"
check "  no QEMU left" test "$(qemus dev-1)$(qemus dev-2)" = 00
t0=$(date +%s.%N)
expect_rc "start dev resumes both" 0 "$NOOK" local start dev --timeout 900
echo "     | both resumed in $(echo "$(date +%s.%N) - $t0" | bc) s"
contains "  dev-1 resumed" "$OUT$ERR" "dev-1: resumed"
contains "  dev-2 resumed" "$OUT$ERR" "dev-2: resumed"
check "  both running" test "$("$NOOK" local status dev --json | json '[n["state"] for n in d]')" = "['running', 'running']"
check "  both on the network again" test "$(nets)" = "['running', 'running']"
expect_rc "  on dev-1, dev-2 resolves" 0 "$NOOK" shell dev-1 -- getent hosts dev-2
contains "  to its private address" "$OUT" "$a2"
expect_rc "  dev-1 reaches dev-2's sshd by name" 0 reach dev-1 dev-2
contains "  an SSH banner" "$OUT" "SSH-"
expect_rc "  dev-2 reaches dev-1's sshd by address" 0 reach dev-2 "$a1"
expect_rc "pause dev" 0 "$NOOK" local pause dev
check "  both paused" test "$("$NOOK" local status dev --json | json '[n["state"] for n in d]')" = "['paused', 'paused']"
expect_rc "unpause dev" 0 "$NOOK" local unpause dev
expect_rc "  dev-1 reaches dev-2 after unpause" 0 reach dev-1 dev-2

# the network is the user's alone
if [ "$(id -u)" = 0 ]; then
	for sock in $(find "$NOOK_HOME/run/dev.net" -type s); do
		check "nobody cannot connect to $(basename "$sock")" sh -c '! runuser -u nobody -- python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])" "$1" 2>/dev/null' _ "$sock"
	done
fi

# growing: dev-3 joins, and dev-1 knows its name at once, even from a
# start that does not wait for dev-3
expect_rc "grow to 3 nodes (--no-wait)" 0 "$NOOK" local start dev --nodes 3 --no-wait
a3=$("$NOOK" local status dev-3 --json | json 'd["address"]')
expect_rc "  on dev-1, dev-3 resolves at once" 0 "$NOOK" shell dev-1 -- getent hosts dev-3
contains "  to its private address" "$OUT" "$a3"
expect_rc "start dev waits for dev-3" 0 "$NOOK" local start dev --timeout 900
expect_rc "dev-3 reaches dev-1" 0 reach dev-3 dev-1

# dev-1 reboots on its own; its seed is older than dev-3, and cloud-init
# (manage_etc_hosts) writes /etc/hosts afresh at boot: the names stay
boot_id() { "$NOOK" shell dev-1 -- cat /proc/sys/kernel/random/boot_id 2>/dev/null; }
b1=$(boot_id)
"$NOOK" shell dev-1 -- sudo systemctl reboot >/dev/null 2>&1
for _ in $(seq 150); do
	b2=$(boot_id) && [ -n "$b2" ] && [ "$b2" != "$b1" ] && break
	sleep 2
done
check "dev-1 rebooted on its own" test -n "$b2" -a "$b2" != "$b1"
expect_rc "  cloud-init done again" 0 "$NOOK" shell dev-1 -- cloud-init status --wait
# booted on one vCPU again (QEMU keeps its kernel arguments), with nobody
# waiting for it: the node brings the other online itself
for _ in $(seq 20); do
	[ "$("$NOOK" shell dev-1 -- nproc 2>/dev/null)" = 2 ] && break
	sleep 1
done
expect_rc "  both vCPUs online again" 0 "$NOOK" shell dev-1 -- nproc
check "  2" test "$OUT" = 2
expect_rc "  dev-3 still resolves on dev-1" 0 "$NOOK" shell dev-1 -- getent hosts dev-3
contains "  to its private address" "$OUT" "$a3"
expect_rc "  and dev-2" 0 "$NOOK" shell dev-1 -- getent hosts dev-2
contains "  to its private address" "$OUT" "$a2"

# the last node goes while the others run: they forget its name at once
expect_rc "delete dev-3, running (--force)" 0 "$NOOK" local delete dev-3 --force
check "  without a warning" test -z "$ERR"
expect_rc "  on dev-1, dev-3 no longer resolves" 2 "$NOOK" shell dev-1 -- getent hosts dev-3
expect_rc "  nor on dev-2" 2 "$NOOK" shell dev-2 -- getent hosts dev-3
expect_rc "  dev-2 still does on dev-1" 0 "$NOOK" shell dev-1 -- getent hosts dev-2

# a cluster's suspend with a node stopped says so and suspends the other;
# the start after it resumes that one and boots the stopped one
boot_ids() { "$NOOK" shell --all dev -- cat /proc/sys/kernel/random/boot_id | sort; }
ids=$(boot_ids)
check "a boot id of each node" test "$(echo "$ids" | grep -c '^dev-[12]: .')" = 2
expect_rc "stop dev-2" 0 "$NOOK" local stop dev-2
watch_list
expect_rc "suspend dev, dev-2 stopped" 0 "$NOOK" local suspend dev
seen=$(seen_states dev-1)
contains "  says dev-2 has nothing to suspend" "$OUT" "VM dev-2: stopped, nothing to suspend"
echo "     | list said of dev-1 meanwhile: $seen"
check "  list said dev-1 running, then suspended, never crashed" went "$seen" running suspended
check "  dev-1 suspended, dev-2 stopped" test "$("$NOOK" local status dev --json | json '[n["state"] for n in d]')" = "['suspended', 'stopped']"
expect_rc "start dev" 0 "$NOOK" local start dev --timeout 900
contains "  resumes dev-1" "$OUT$ERR" "dev-1: resumed"
now=$(boot_ids)
check "  the same boot on dev-1" test "$(echo "$now" | grep '^dev-1' )" = "$(echo "$ids" | grep '^dev-1')"
check "  a new one on dev-2" test "$(echo "$now" | grep '^dev-2' | cut -d' ' -f2)" != "$(echo "$ids" | grep '^dev-2' | cut -d' ' -f2)"
expect_rc "  dev-2 reaches dev-1 by name" 0 reach dev-2 dev-1

watch_list
expect_rc "stop dev" 0 "$NOOK" local stop dev
seen=$(seen_states dev-1 dev-2)
echo "     | list said of dev-1 and dev-2 meanwhile: $(echo "$seen" | paste -sd';')"
check "  list said dev-1 running, then stopped, never crashed" went "$(echo "$seen" | sed -n 1p)" running stopped
check "  and dev-2" went "$(echo "$seen" | sed -n 2p)" running stopped
check "no QEMU left" test "$(qemus dev-1)$(qemus dev-2)$(qemus dev-3)" = 000
check "no network process left" test "$(pgrep -f -- "$NOOK_HOME/run/dev.net" | wc -l)" = 0
check "  and its lock is free" flock -n "$NOOK_HOME/run/dev.net/switch.lock" true
expect_rc "delete dev" 0 "$NOOK" local delete dev
check "every node gone" test -z "$(ls "$NOOK_HOME/vms")"
finish

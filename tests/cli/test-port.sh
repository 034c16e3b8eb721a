#!/usr/bin/env bash
# nook port without a guest OS: argument errors, a stopped VM's record,
# and a real QEMU booting nothing (a blank disk), whose slirp listens on
# the host ports that QMP's hostfwd_add gives it: ss(8) is the judge.
# The guest test (test-local.sh) checks that traffic really flows.
NOOK=$1
. "$(dirname "$0")/lib.sh"
cleanup() {
	for vm in p1 pc pn pt ptc; do "$NOOK" local delete "$vm" --force >/dev/null 2>&1; done
	[ -n "${NS:-}" ] && ip netns del "$NS"
	[ -n "${HOLD:-}" ] && kill "$HOLD" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
listening() { ss -Hltn "sport = :$1" | grep -c "$2:$1"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
qemu-img create -q -f raw blank.img 64M

# usage errors: exit 2
expect_rc "no subcommand" 2 "$NOOK" port
expect_rc "unknown subcommand" 2 "$NOOK" port frob p1
expect_rc "add without a spec" 2 "$NOOK" port add p1
contains "asks which port" "$ERR" "which port"
expect_rc "add without anything" 2 "$NOOK" port add
for spec in 8080 1:2:3:4 80:0 70000:80 8080:80/sctp x:80 300.1.1.1:80:80; do
	expect_rc "add $spec is a usage error" 2 "$NOOK" port add p1 "$spec"
done
contains "bad spec is named" "$ERR" "300.1.1.1:80:80"
expect_rc "add with an extra word" 2 "$NOOK" port add p1 80:80 extra
expect_rc "add --json of a VM not made" 1 "$NOOK" port add p1 80:80 --json
check "  is a JSON error" test "$(echo "$OUT" | json '"no VM named" in d["error"]')" = True
for host in 0 x 65536 80/sctp 80:80 0:0 0:x 0:70000; do
	expect_rc "rm $host is a usage error" 2 "$NOOK" port rm p1 "$host"
done
expect_rc "list without a name" 2 "$NOOK" port list
expect_rc "port --help" 0 "$NOOK" port --help
contains "help names the subcommands" "$OUT" "add   NAME [ADDR:]HOST:GUEST"
expect_rc "port add --help" 0 "$NOOK" port add --help
expect_rc "help port" 0 "$NOOK" help port
contains "nook help lists port" "$("$NOOK" help)" "port"
expect_rc "add on an unknown VM" 1 "$NOOK" port add p1 8080:80
contains "says there is no such VM" "$ERR" "no VM named 'p1'"
expect_rc "list --json of an unknown VM" 1 "$NOOK" port list p1 --json
check "the error as JSON" test "$(echo "$OUT" | json '"error" in d')" = True

# a stopped VM: only its record changes
expect_rc "start p1" 0 "$NOOK" local start p1 --image blank.img --no-wait \
	--port 0:81 --memory 256M --cpus 1 --accel tcg
"$NOOK" local stop p1 --force >/dev/null
P1=$(free_port)
expect_rc "add on a stopped VM" 0 "$NOOK" port add p1 "$P1:80"
contains "says from its next start" "$OUT" "next start"
check "nothing listens on a stopped VM's port" test "$(listening "$P1" 127.0.0.1)" = 0
check "vm.json keeps it" grep -q "\"127.0.0.1:$P1:80/tcp\"" "$NOOK_HOME/vms/p1/vm.json"
expect_rc "list --json" 0 "$NOOK" port list p1 --json
check "two forwards listed" test "$(echo "$OUT" | json 'len(d)')" = 2
check "inactive, kept" test "$(echo "$OUT" | json '[(f["host"],f["active"],f["kept"]) for f in d if f["guest"]==80][0]')" = "($P1, False, True)"
check "the 0:81 forward stays HOST 0" test "$(echo "$OUT" | json '[f["host"] for f in d if f["guest"]==81][0]')" = 0
expect_rc "the same port twice" 1 "$NOOK" port add p1 "$P1:90"
contains "says it is forwarded already" "$ERR" "already forwards host port $P1"
expect_rc "udp on the same number is another port" 0 "$NOOK" port add p1 "$P1:53/udp"
expect_rc "rm udp" 0 "$NOOK" port rm p1 "$P1/udp"
check "udp gone, tcp kept" test "$(grep -c "127.0.0.1:$P1:" "$NOOK_HOME/vms/p1/vm.json")" = 1
python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); time.sleep(60)' "$((P1 + 1))" &
HOLD=$!
for _ in $(seq 100); do [ "$(listening "$((P1 + 1))" 127.0.0.1)" = 1 ] && break; sleep 0.1; done
expect_rc "a port in use on the host" 1 "$NOOK" port add p1 "$((P1 + 1)):80"
contains "says in use" "$ERR" "already in use"
expect_rc "rm a port it does not forward" 1 "$NOOK" port rm p1 "$((P1 + 2))"
contains "says it has no such forward" "$ERR" "no forward from host port"
# a port only root may bind (root here without that power), an address
# the host does not have (TEST-NET-1): said why, and what to do
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null &&
	[ "$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)" -gt 80 ]; then
	expect_rc "a port below 1024, not root" 1 \
		setpriv --bounding-set=-net_bind_service "$NOOK" port add p1 80:80
	contains "  says only root may bind it" "$ERR" "host port 127.0.0.1:80/tcp is below 1024: only root may bind it"
	contains "  and what to do" "$ERR" "pick one from 1024 up"
fi
expect_rc "an address the host does not have" 1 "$NOOK" port add p1 "192.0.2.1:$((P1 + 2)):80"
contains "  says so" "$ERR" "this host has no address 192.0.2.1; give one it has"

# running: QEMU's slirp takes the port at once, and lets it go
expect_rc "start p1 again" 0 "$NOOK" local start p1 --no-wait
check "the recorded forward runs after the start" test "$(listening "$P1" 127.0.0.1)" = 1
ssh_port=$("$NOOK" local status p1 --json | json 'd["ssh"]["port"]')
expect_rc "ssh's port is refused" 1 "$NOOK" port add p1 "$ssh_port:80"
contains "says it is ssh's" "$ERR" "ssh forward"
expect_rc "ssh's forward cannot go" 1 "$NOOK" port rm p1 "$ssh_port"
expect_rc "add HOST 0 on a running VM" 0 "$NOOK" port add p1 0:8000
picked=$(echo "$OUT" | sed -n 's/^host port: //p')
check "prints the port it picked" test -n "$picked"
check "QEMU listens on it now" test "$(listening "$picked" 127.0.0.1)" = 1
check "status shows it running" test "$("$NOOK" local status p1 --json | json "'127.0.0.1:$picked:8000/tcp' in d['ports']")" = True
expect_rc "list shows it active" 0 "$NOOK" port list p1 --json
check "active and kept" test "$(echo "$OUT" | json "[(f['active'],f['kept']) for f in d if f['host']==$picked][0]")" = "(True, True)"
check "the 0:81 forward runs on its picked port" test "$(echo "$OUT" | json '[f["active"] for f in d if f["guest"]==81][0]')" = True
expect_rc "rm 0:8000 of the forward 'port add 0:8000' made" 1 "$NOOK" port rm p1 0:8000
contains "  names the port it has, and the command that removes it" "$ERR" "is from host port $picked, not a free one picked at each start: 'nook port rm p1 $picked' removes it"
expect_rc "an address given, with --json" 0 "$NOOK" port add p1 127.0.0.2:0:8001 --json
picked2=$(echo "$OUT" | json 'd["host"]')
check "  the forward as list has it" test "$(echo "$OUT" | json '(d["addr"], d["guest"], d["proto"], d["active"], d["kept"])')" = "('127.0.0.2', 8001, 'tcp', True, True)"
check "  its picked port, the one list shows" test "$("$NOOK" port list p1 --json | json '[f["host"] for f in d if f["guest"]==8001][0]')" = "$picked2"
check "bound to that address" test "$(listening "$picked2" 127.0.0.2)" = 1
expect_rc "rm a running forward" 0 "$NOOK" port rm p1 "$picked"
check "QEMU let it go" test "$(listening "$picked" 127.0.0.1)" = 0
check "gone from the record" test "$(grep -c ":$picked:8000" "$NOOK_HOME/vms/p1/vm.json")" = 0
picked81=$("$NOOK" port list p1 --json | json '[f["host"] for f in d if f["guest"]==81][0]')
expect_rc "rm the running form of a HOST 0 forward, with --json" 0 "$NOOK" port rm p1 "$picked81" --json
check "  the forward removed, neither active nor kept" test "$(echo "$OUT" | json '(d["host"], d["guest"], d["active"], d["kept"])')" = "($picked81, 81, False, False)"
check "its HOST 0 record went with it" test "$(grep -c ':0:81/' "$NOOK_HOME/vms/p1/vm.json")" = 0
expect_rc "list after the changes" 0 "$NOOK" port list p1
contains "lists the address given" "$OUT" "127.0.0.2:$picked2:8001/tcp"
"$NOOK" local stop p1 --force >/dev/null
expect_rc "start after the changes" 0 "$NOOK" local start p1 --no-wait
check "an added forward is there after a restart" test "$(listening "$picked2" 127.0.0.2)" = 1
check "a removed one is not" test "$(listening "$picked" 127.0.0.1)" = 0

# paused, then suspended: the save is tied to QEMU's command line, so a
# resume keeps it, then gets nook port's changes through the monitor again
expect_rc "pause p1" 0 "$NOOK" local pause p1
expect_rc "add on a paused VM" 0 "$NOOK" port add p1 0:8002
live1=$(echo "$OUT" | sed -n 's/^host port: //p')
check "... QEMU listens on it at once" test "$(listening "$live1" 127.0.0.1)" = 1
expect_rc "rm a forward of QEMU's command line" 0 "$NOOK" port rm p1 "$picked2"
check "... QEMU let it go" test "$(listening "$picked2" 127.0.0.2)" = 0
expect_rc "suspend p1" 0 "$NOOK" local suspend p1
check "nothing listens while suspended" test "$(listening "$live1" 127.0.0.1)" = 0
P3=$(free_port)
expect_rc "add on a suspended VM" 0 "$NOOK" port add p1 "$P3:8003"
contains "... from its next start" "$OUT" "next start"
expect_rc "rm on a suspended VM" 0 "$NOOK" port rm p1 "$P1"
check "... the record alone changed" test "$(listening "$P3" 127.0.0.1)" = 0
expect_rc "start resumes p1" 0 "$NOOK" local start p1 --no-wait
contains "... from its save, not cold" "$OUT" "resumed from its saved state"
check "the forward added before the suspend is back" test "$(listening "$live1" 127.0.0.1)" = 1
check "the one removed before it stays removed" test "$(listening "$picked2" 127.0.0.2)" = 0
check "the one added while suspended runs" test "$(listening "$P3" 127.0.0.1)" = 1
check "the one removed while suspended is gone" test "$(listening "$P1" 127.0.0.1)" = 0
expect_rc "status after the resume" 0 "$NOOK" local status p1 --json
check "status shows the running forwards" test "$(echo "$OUT" | json "sorted(p.split(':')[1] for p in d['ports'])")" = "$(python3 -c 'import sys; print(sorted(sys.argv[1:]))' "$P3" "$live1")"
expect_rc "port list after the resume" 0 "$NOOK" port list p1 --json
check "... every forward active and kept" test "$(echo "$OUT" | json "sorted((f['host'],f['active'],f['kept']) for f in d)")" = "$(python3 -c 'import sys; print(sorted((int(p),True,True) for p in sys.argv[1:]))' "$P3" "$live1")"
expect_rc "suspend and resume once more" 0 sh -c '"$1" local suspend p1 && "$1" local start p1 --no-wait' _ "$NOOK"
contains "... resumed again" "$OUT" "resumed from its saved state"
check "... the forward still there" test "$(listening "$live1" 127.0.0.1)" = 1

# a port add or rm killed (SIGKILL) once QEMU had changed its forwards,
# before the record: made here by hand (QMP's hostfwd change, the mark
# the command leaves). The next look puts QEMU back as recorded
mark=$NOOK_HOME/vms/p1/port-begun
hmp() { qmp p1 human-monitor-command "{\"command-line\": \"$1\"}" >/dev/null; }
P4=$(free_port)
hmp "hostfwd_add net0 tcp:127.0.0.1:$P4-:8006"
printf 'add 127.0.0.1:%s:8006/tcp' "$P4" > "$mark"
check "an add cut off: QEMU listens on a port not recorded" test "$(listening "$P4" 127.0.0.1)" = 1
expect_rc "  status" 0 "$NOOK" local status p1
contains "  says the add was cut off" "$ERR" "VM p1: a 'nook port add' of it was cut off before it was recorded; host port $P4 is not forwarded"
check "  QEMU let it go" test "$(listening "$P4" 127.0.0.1)" = 0
check "  the mark is gone" test ! -e "$mark"
expect_rc "  and it adds again" 0 "$NOOK" port add p1 "$P4:8006"
check "  QEMU listens on it" test "$(listening "$P4" 127.0.0.1)" = 1
check "  no mark left" test ! -e "$mark"
hmp "hostfwd_remove net0 tcp:127.0.0.1:$P4"
printf 'rm 127.0.0.1:%s:8006/tcp' "$P4" > "$mark"
expect_rc "an rm cut off: port list" 0 "$NOOK" port list p1
contains "  says the rm was cut off, the port forwarded still" "$ERR" "VM p1: a 'nook port rm' of it was cut off before it was recorded; host port $P4 is forwarded still, as recorded"
check "  QEMU listens on it again" test "$(listening "$P4" 127.0.0.1)" = 1
check "  the mark is gone" test ! -e "$mark"
# ... the port taken meanwhile by another program: not forwarded now,
# which the record of the running forwards says; the next start has it
hmp "hostfwd_remove net0 tcp:127.0.0.1:$P4"
printf 'rm 127.0.0.1:%s:8006/tcp' "$P4" > "$mark"
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
print("held", flush=True); time.sleep(60)' "$P4" > held.out &
holder=$!
for _ in $(seq 50); do grep -q held held.out 2>/dev/null && break; sleep 0.1; done
expect_rc "an rm cut off, its port taken since: status --json" 0 "$NOOK" local status p1 --json
contains "  says it is not forwarded now" "$ERR" "host port $P4 is not forwarded now (the next start forwards it again, as recorded)"
check "  status no longer lists it running" test "$(echo "$OUT" | json "[p for p in d['ports'] if p.split(':')[1] == '$P4']")" = "[]"
expect_rc "  port list" 0 "$NOOK" port list p1 --json
check "  lists it kept, not active" test "$(echo "$OUT" | json "[(f['active'], f['kept']) for f in d if f['host'] == $P4]")" = "[(False, True)]"
kill "$holder"
wait "$holder" 2>/dev/null
expect_rc "  rm" 0 "$NOOK" port rm p1 "$P4"
# the mark's temporary file alone (a command killed as it wrote the
# mark): the next command that holds the VM removes it, not only the
# next port command
printf 'add 127.0.0.1:1:1/tcp' > "$mark.tmp"
expect_rc "a mark's temporary file alone: pause and unpause" 0 sh -c '"$1" local pause p1 && "$1" local unpause p1' _ "$NOOK"
check "  it is gone" test ! -e "$mark.tmp"

"$NOOK" local stop p1 --force >/dev/null

# a forward from a free port (HOST 0, given at start) has no host port
# while the VM does not run: named by its guest port, 0:GUEST
expect_rc "start with HOST 0 forwards" 0 "$NOOK" local start p1 --no-wait --port 0:8004 --port 0:8005
live5=$("$NOOK" port list p1 --json | json '[f["host"] for f in d if f["guest"]==8005][0]')
expect_rc "rm 0:8005 while it runs" 0 "$NOOK" port rm p1 0:8005
check "... QEMU let its port go" test "$(listening "$live5" 127.0.0.1)" = 0
check "... and the record it" test "$("$NOOK" port list p1 --json | json '[f for f in d if f["guest"]==8005]')" = "[]"
"$NOOK" local stop p1 --force >/dev/null
check "stopped, 0:8004 is recorded" test "$(grep -c ':0:8004/tcp' "$NOOK_HOME/vms/p1/vm.json")" = 1
expect_rc "rm 0:8004 while stopped" 0 "$NOOK" port rm p1 0:8004
check "... gone from the record" test "$(grep -c ':0:8004/tcp' "$NOOK_HOME/vms/p1/vm.json")" = 0
expect_rc "rm 0:GUEST of no such forward" 1 "$NOOK" port rm p1 0:8004
contains "... says there is none" "$ERR" "no forward from HOST 0 to guest port 8004/tcp"

# a cluster's name means its first node, as in shell and console
expect_rc "start a cluster of one" 0 "$NOOK" local start pc --nodes 1 --image blank.img \
	--no-wait --memory 128M --cpus 1 --accel tcg
expect_rc "port add on the cluster's name" 0 "$NOOK" port add pc 0:80
contains "says it uses the first node" "$ERR" "using its first node pc-1"
contains "the forward is the node's" "$OUT" "on VM pc-1"
node_port=$(echo "$OUT" | sed -n 's/^host port: //p')
check "the node's QEMU listens on it" test "$(listening "$node_port" 127.0.0.1)" = 1
expect_rc "port list of the node" 0 "$NOOK" port list pc-1 --json
check "... lists it" test "$(echo "$OUT" | json "[f['host'] for f in d]")" = "[$node_port]"
"$NOOK" local stop pc --force >/dev/null

# The kernel's pick of a free port on 127.0.0.2 may be one this VM's QEMU
# holds on 127.0.0.1 already (a CI failure): a VM's forwards are told
# apart by host port alone. In a network namespace whose kernel picks
# from 40000-40001 it is so every time: the kernel likes odd ports.
if [ "$(id -u)" = 0 ] && ip netns add "nook-port-$$" 2>/dev/null; then
	NS=nook-port-$$
	in_ns() { ip netns exec "$NS" "$@"; }
	# the forwards' host ports, ssh's too, each checked to be listening
	ns_ports() {
		local ssh f fs
		ssh=$(in_ns "$NOOK" local status pn --json | json 'd["ssh"]["port"]')
		fs=$(in_ns "$NOOK" port list pn --json |
			json "' '.join('%s:%d' % (f['addr'], f['host']) for f in d)")
		for f in "127.0.0.1:$ssh" $fs; do
			in_ns ss -Hltn "sport = :${f##*:}" | grep -q "$f" || echo "$f is not listening"
			echo "${f##*:}"
		done | sort | xargs
	}
	in_ns ip link set lo up
	echo "40000 40001" | in_ns tee /proc/sys/net/ipv4/ip_local_port_range >/dev/null
	expect_rc "start with HOST 0 on 127.0.0.2, two ports to pick from" 0 \
		in_ns "$NOOK" local start pn --image blank.img --no-wait \
		--port 127.0.0.2:0:81 --memory 128M --cpus 1 --accel tcg
	check "ssh's and 127.0.0.2's are both ports, both listening" \
		test "$(ns_ports)" = "40000 40001"
	expect_rc "port rm the picked one" 0 in_ns "$NOOK" port rm pn 40000
	expect_rc "port add HOST 0 on 127.0.0.3" 0 in_ns "$NOOK" port add pn 127.0.0.3:0:8001
	check "... picks the port that ssh's is not" test "$(ns_ports)" = "40000 40001"
	"$NOOK" local delete pn --force >/dev/null
else
	echo "skip: the HOST 0 picks in a network namespace of their own need root"
fi

# A port another program takes between nook's pick and QEMU's bind (in CI
# another test's nook picked the same one at once): a QEMU in front of the
# real one takes the forward of guest port $TAKE as it starts, once. The
# real QEMU then fails on it, with its own words.
mkdir -p "$WORK/bin"
cat > "$WORK/bin/qemu-system-x86_64" <<'WRAP'
#!/usr/bin/env bash
real=/usr/bin/qemu-system-x86_64
case " $* " in *" -daemonize "*) ;; *) exec "$real" "$@" ;; esac
[ -e "$TAKEN" ] && exec "$real" "$@"
port=$(printf '%s\n' "$@" | grep -o "hostfwd=tcp:127.0.0.1:[0-9]*-:$TAKE\b" |
	head -1 | sed 's/.*:\([0-9]*\)-:.*/\1/')
echo "$port" > "$TAKEN"
# (the last start's word gone first: the job below truncates the file
# only once it runs, which on a loaded machine may be after the wait)
rm -f "$TAKEN.held"
python3 -c 'import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(1)
print("held", flush=True); time.sleep(60)' "$port" > "$TAKEN.held" &
holder=$!
# (a loaded machine may take long to start python: wait for it to hold
# the port, or to have failed to, never a fixed time)
until grep -q held "$TAKEN.held" 2>/dev/null || ! kill -0 "$holder" 2>/dev/null; do
	sleep 0.05
done
"$real" "$@"
rc=$?
kill "$holder"
wait "$holder" # the port is free again once this returns
exit "$rc"
WRAP
chmod +x "$WORK/bin/qemu-system-x86_64"
taken_start() { # NAME GUEST-PORT START-OPTION...
	local name=$1
	rm -f "$WORK/taken"
	TAKE=$2 TAKEN=$WORK/taken PATH="$WORK/bin:$PATH" expect_rc "$3" "$4" \
		"$NOOK" local start "$name" --image blank.img --no-wait \
		--memory 128M --cpus 1 --accel tcg "${@:5}"
}
taken_start pt 22 "ssh's port taken as QEMU starts: started" 0 --port 0:81
check "  the wrapper took a port" test -s "$WORK/taken"
contains "  says it was taken" "$OUT$ERR" "host port $(cat "$WORK/taken")/tcp was taken"
SSH=$("$NOOK" local status pt --json | json 'd["ssh"]["port"]')
check "  ssh on another port" test "${SSH:-0}" -gt 0 -a "${SSH:-0}" != "$(cat "$WORK/taken")"
check "  which QEMU listens on" test "$(listening "${SSH:-0}" 127.0.0.1)" = 1
"$NOOK" local delete pt --force >/dev/null
taken_start pt 81 "a HOST 0 forward's port taken: started" 0 --port 0:81
H81=$("$NOOK" port list pt --json | json '[f["host"] for f in d if f["guest"]==81][0]')
check "  the forward on another port" test "${H81:-0}" -gt 0 -a "${H81:-0}" != "$(cat "$WORK/taken")"
check "  which QEMU listens on" test "$(listening "${H81:-0}" 127.0.0.1)" = 1
"$NOOK" local delete pt --force >/dev/null
P80=$(free_port)
taken_start pt 80 "a fixed forward's port taken: refused" 1 --port "$P80:80"
contains "  QEMU's own words" "$ERR" "Could not set up host forwarding rule 'tcp:127.0.0.1:$P80-:80'"
check "  not picked again" test "$(cat "$WORK/taken")" = "$P80"
check "  stopped" test "$("$NOOK" local status pt --json | json 'd["state"]')" = stopped
"$NOOK" local delete pt --force >/dev/null
# a cluster's node so: in --json, stopped, with no pid and no ssh to use
P82=$(free_port)
taken_start ptc 82 "a node's fixed forward taken: the start fails" 1 \
	--nodes 1 --port "$P82:82" --json
check "  ptc-1 stopped, no pid, no ssh" test "$(echo "$OUT" | json '[(n["state"], n["pid"], n["ssh"]) for n in d["nodes"]]')" = "[('stopped', None, None)]"
"$NOOK" local delete ptc --force >/dev/null
finish

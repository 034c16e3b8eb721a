#!/usr/bin/env bash
# nook local without a guest OS: a blank disk image gives a real QEMU that
# boots nothing, which is enough to check the life around a VM (start
# --no-wait, status, list, logs, stop's escalation, delete, the lock,
# remembered settings) and every error path, in seconds, and under the
# sanitizers. The guest tests do the same with a real cloud-init guest.
NOOK=$1
. "$(dirname "$0")/lib.sh"
cleanup() {
	[ -n "${WAITER:-}" ] && kill "$WAITER" 2>/dev/null
	for vm in b1 b2 b3 r1; do "$NOOK" local delete "$vm" --force >/dev/null 2>&1; done
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
qemus() { pgrep -f -- "$NOOK_HOME/run/$1/qemu.pid" | wc -l; }
qemu-img create -q -f raw blank.img 64M

# usage errors: exit 2, nothing made
for args in "--port 8080" "--port 1:2:3:4" "--cpus 0" "--memory 12Q" \
	"--boot floppy" "--accel xen" "--timeout -1" "--initrd x" "a b" "--bogus"; do
	# shellcheck disable=SC2086
	expect_rc "start $args is a usage error" 2 "$NOOK" local start $args
done
check "usage errors made nothing" test ! -e "$NOOK_HOME/vms"
expect_rc "bad name" 2 "$NOOK" local start Bad_Name --image blank.img
contains "says what is wrong with the name" "$ERR" "Bad_Name"
expect_rc "missing image" 1 "$NOOK" local start b1 --image ./nope.qcow2
contains "names the image" "$ERR" "nope.qcow2"
expect_rc "unknown image name" 1 "$NOOK" local start b1 --image no-such-image
contains "says where it looked" "$ERR" "no image 'no-such-image'"
printf '#cloud-config\nfoo: [1, 2\n' > bad.yaml
expect_rc "bad user-data" 1 "$NOOK" local start b1 --image blank.img --user-data bad.yaml
contains "user-data error has FILE:LINE" "$ERR" "bad.yaml:"
check "  said once" test "$(printf '%s\n' "$ERR" | grep -c 'bad.yaml:')" = 1
expect_rc "  a usage error is said before it" 2 "$NOOK" local start b1 --image blank.img --user-data bad.yaml --subnet 10.9.0.0/24
expect_rc "direct boot without a kernel" 1 "$NOOK" local start b1 --image blank.img --boot direct
contains "says direct boot needs a kernel" "$ERR" "kernel"
expect_rc "a disk smaller than the image" 1 "$NOOK" local start b1 --image blank.img --disk 1M
contains "says it cannot shrink" "$ERR" "cannot shrink"
check "failed first starts left nothing" test ! -e "$NOOK_HOME/vms/b1"
expect_rc "status of an unknown VM" 1 "$NOOK" local status b1
contains "says there is no such VM" "$ERR" "no VM named 'b1'"
expect_rc "list with no VMs" 0 "$NOOK" local list --json
check "empty list" test "$(echo "$OUT" | json 'len(d)')" = 0

# a real QEMU with nothing to boot
expect_rc "start --no-wait" 0 "$NOOK" local start b1 --image blank.img --no-wait \
	--port 0:80 --memory 256M --cpus 1 --accel tcg
check "QEMU runs" test "$(qemus b1)" = 1
expect_rc "second start refused" 1 "$NOOK" local start b1
contains "says already running" "$ERR" "already running"
check "still one QEMU" test "$(qemus b1)" = 1
expect_rc "status --json" 0 "$NOOK" local status b1 --json
check "running" test "$(echo "$OUT" | json 'd["state"]')" = running
check "accel tcg" test "$(echo "$OUT" | json 'd["accel"]')" = tcg
check "one forwarded port" test "$(echo "$OUT" | json 'len(d["ports"])')" = 1
# QEMU's resident memory as /proc has it just before and just after (a
# young QEMU's changes by MiBs a second)
qrss() { awk '/^VmRSS:/ {print int($2 / 1024)}' /proc/"$(cat "$NOOK_HOME/run/b1/qemu.pid")"/status; }
before=$(qrss)
rmib=$("$NOOK" local status b1 --json | json 'd["resident_mib"]')
after=$(qrss)
check "QEMU's resident memory: $rmib MiB (/proc: $before, then $after)" sh -c \
	'[ "$1" -gt 0 ] && { { [ "$1" -ge $(($2 - 1)) ] && [ "$1" -le $(($3 + 1)) ]; } ||
	{ [ "$1" -le $(($2 + 1)) ] && [ "$1" -ge $(($3 - 1)) ]; }; }' _ "$rmib" "$before" "$after"
ssh_port=$(echo "$OUT" | json 'd["ssh"]["port"]')
expect_rc "status in words" 0 "$NOOK" local status b1
contains "  says QEMU's resident memory" "$OUT" "memory 256M (QEMU resident "
check "ssh forward on 127.0.0.1 only" test "$(ss -Hltn "sport = :$ssh_port" | grep -vc '127.0.0.1:')" = 0
check "QMP socket exists" test -S "$NOOK_HOME/run/b1/qmp.sock"
# the data directory spelled another way (a trailing slash, "//" and
# "/.", a symlink to it) is the same one: the running VM is not
# "crashed", and a start is refused without touching its sockets
ln -s "$NOOK_HOME" home-link
for h in "$NOOK_HOME/" "$(dirname "$NOOK_HOME")//$(basename "$NOOK_HOME")/." "$PWD/home-link"; do
	expect_rc "NOOK_HOME=$h: status" 0 env NOOK_HOME="$h" "$NOOK" local status b1 --json
	check "  running" test "$(echo "$OUT" | json 'd["state"]')" = running
done
expect_rc "  a start through the link" 1 env NOOK_HOME="$PWD/home-link" "$NOOK" local start b1
contains "  is refused as running" "$ERR" "already running"
check "  the sockets kept" test -S "$NOOK_HOME/run/b1/qmp.sock" -a -S "$NOOK_HOME/run/b1/serial.sock"
# a pid file garbled while QEMU runs: a start refuses, naming that QEMU,
# and leaves its sockets alone
cp "$NOOK_HOME/run/b1/qemu.pid" qemu.pid.good
cp "$NOOK_HOME/vms/b1/vm.json" vm.json.before
echo garbage > "$NOOK_HOME/run/b1/qemu.pid"
expect_rc "a start with the pid file garbled" 1 "$NOOK" local start b1
contains "  names the QEMU that runs" "$ERR" "a QEMU (pid $(cat qemu.pid.good)) still runs with this VM's QMP socket"
check "  the sockets kept" test -S "$NOOK_HOME/run/b1/qmp.sock" -a -S "$NOOK_HOME/run/b1/serial.sock"
check "  and that QEMU runs on" kill -0 "$(cat qemu.pid.good)"
check "  its record untouched (ports, state)" cmp -s vm.json.before "$NOOK_HOME/vms/b1/vm.json"
cp qemu.pid.good "$NOOK_HOME/run/b1/qemu.pid"
mac=$(tr '\0' '\n' < /proc/"$(cat "$NOOK_HOME/run/b1/qemu.pid")"/cmdline | grep -o 'mac=[0-9a-f:]*')
expect_rc "stop waits, then QMP quit" 0 "$NOOK" local stop b1 --timeout 1
contains "no guest to power off: quit ended it" "$OUT" "QMP quit"
case $OUT in *"QMP quit"*) ;; *) echo "     its stderr: $ERR" ;; esac
check "QEMU gone" test "$(qemus b1)" = 0
check "sockets cleaned up" test ! -e "$NOOK_HOME/run/b1/qmp.sock"
# a FIFO where the pid file was does not hang the commands that read it
mkdir -p "$NOOK_HOME/run/b1" && mkfifo "$NOOK_HOME/run/b1/qemu.pid"
expect_rc "a FIFO for the pid file: list" 0 timeout 20 "$NOOK" local list
expect_rc "  status" 0 timeout 20 "$NOOK" local status b1 --json
check "  says stopped" test "$(echo "$OUT" | json 'd["state"]')" = stopped
rm "$NOOK_HOME/run/b1/qemu.pid"
expect_rc "start again, new memory" 0 "$NOOK" local start b1 --no-wait --memory 512M
contains "says what changed" "$OUT" "memory: 256M -> 512M"
mac2=$(tr '\0' '\n' < /proc/"$(cat "$NOOK_HOME/run/b1/qemu.pid")"/cmdline | grep -o 'mac=[0-9a-f:]*')
check "same MAC across restarts" test -n "$mac" -a "$mac" = "$mac2"
"$NOOK" local stop b1 --force >/dev/null
# a start given the same --user-data leaves the kept copy as it is: a
# start rewrites nothing of its own that has not changed (on a nearly
# full disk a rewrite needs room for a second copy)
printf '#cloud-config\n{}\n' >same-ud.yaml
expect_rc "start with --user-data" 0 "$NOOK" local start b1 --no-wait --user-data same-ud.yaml
"$NOOK" local stop b1 --force >/dev/null
ino=$(stat -c %i "$NOOK_HOME/vms/b1/user-data")
expect_rc "  again, the same --user-data" 0 "$NOOK" local start b1 --no-wait --user-data same-ud.yaml
check "  its kept copy is not written again" test "$(stat -c %i "$NOOK_HOME/vms/b1/user-data")" = "$ino"
"$NOOK" local stop b1 --force >/dev/null
# a key cloud-init does not know, a typo of one it does: it would skip
# it without a word on the console, so the start says it and goes on
printf '#cloud-config\nruncmd: [[true]]\npackges: [tree]\n' > typo.yaml
expect_rc "a start whose user-data has a typo'd key" 0 "$NOOK" local start ty --image blank.img --no-wait --user-data typo.yaml
contains "  warns of it, where it is, with the key meant" "$ERR" "nook: warning: typo.yaml:3:1: cloud-init knows no key 'packges' and skips it: did you mean packages?"
check "  of it alone (runcmd is cloud-init's)" test "$(printf '%s\n' "$ERR" | grep -c warning)" = 1
check "  the user-data is kept as given" cmp -s typo.yaml "$NOOK_HOME/vms/ty/user-data"
"$NOOK" local delete ty --force >/dev/null
expect_rc "the same user-data through a pipe" 0 "$NOOK" local start ty --image blank.img --no-wait --user-data <(cat typo.yaml)
check "  is read once, whole" cmp -s typo.yaml "$NOOK_HOME/vms/ty/user-data"
check "  and not checked for typos (said in the README)" test -z "$(printf '%s' "$ERR" | grep warning)"
"$NOOK" local delete ty --force >/dev/null
cp blank.img other.img
expect_rc "another image is refused" 1 "$NOOK" local start b1 --image other.img --no-wait
contains "refusal says why" "$ERR" "was made from image"
expect_rc "a smaller disk is refused" 1 "$NOOK" local start b1 --disk 1M --no-wait
expect_rc "start again after the refusals" 0 "$NOOK" local start b1 --no-wait --disk 128M
check "disk grown to 128M" test "$(qemu-img info -U --output=json "$NOOK_HOME/vms/b1/disk.qcow2" | json 'd["virtual-size"]')" = 134217728
expect_rc "logs" 0 "$NOOK" local logs b1
# a hostile guest's console: to a terminal, what would set its title or
# type an answer into the user's input is shown as \xNN, its colours
# pass; to a pipe, the bytes as they are
printf 'hi \033[32mgreen\033[0m \033]0;pwned\007 \033[6n end\n' >>"$NOOK_HOME/vms/b1/console.log"
script -qec "$(printf '%q ' "$NOOK" local logs b1)" /dev/null </dev/null >logs.tty 2>&1
check "logs to a terminal: a title set is shown escaped" grep -qF '\x1b]0;pwned\x07' logs.tty
check "  and a report asked for" grep -qF '\x1b[6n end' logs.tty
check "  no escape but a colour reaches it" sh -c '! grep -q "$(printf "\033")[^[]" "$1" && ! grep -q "$(printf "\033\\[6n")" "$1"' _ logs.tty
check "  a colour does" grep -qF "$(printf '\033[32mgreen\033[0m')" logs.tty
"$NOOK" local logs b1 >logs.pipe
check "logs to a pipe: the bytes as they are" grep -qF "$(printf '\033]0;pwned\007')" logs.pipe
# --follow, as tail -F: a log emptied is read again from its start, one
# removed and made anew is opened anew
log=$NOOK_HOME/vms/b1/console.log
"$NOOK" local logs b1 --follow >follow.out 2>&1 &
follower=$!
for _ in $(seq 50); do grep -q pwned follow.out && break; sleep 0.1; done
: >"$log"
echo after-emptied >>"$log"
for _ in $(seq 50); do grep -q after-emptied follow.out && break; sleep 0.1; done
check "logs --follow: a log emptied is read from its start" grep -q after-emptied follow.out
mv "$log" "$log.old"
echo made-anew >"$log"
for _ in $(seq 50); do grep -q made-anew follow.out && break; sleep 0.1; done
check "  one made anew is opened anew" grep -q made-anew follow.out
kill "$follower"
wait "$follower" 2>/dev/null
mv "$log.old" "$log"
# kill -9: status must say crashed, not running or stopped
pid=$(cat "$NOOK_HOME/run/b1/qemu.pid")
kill -9 "$pid"
ended "$pid"
expect_rc "status after kill -9" 0 "$NOOK" local status b1
contains "says crashed" "$OUT" "crashed"
# a pid file naming another live program is not trusted
echo $$ > "$NOOK_HOME/run/b1/qemu.pid"
expect_rc "status with a foreign pid file" 0 "$NOOK" local status b1 --json
check "foreign pid: not running" test "$(echo "$OUT" | json 'd["state"]')" = crashed
# a QEMU killed a moment ago holds its sockets until its last thread has
# given its memory back: its main thread a zombie, another still on the
# QMP socket. Played here by a process whose main thread has ended, a
# thread of it listening on the socket for 2 s more.
rm -f "$NOOK_HOME/run/b1/qmp.sock"
python3 - "$NOOK_HOME/run/b1/qmp.sock" <<'PY' &
import ctypes, os, socket, sys, threading, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
def linger():
    time.sleep(2); s.close(); os._exit(0)
threading.Thread(target=linger).start()
ctypes.CDLL(None).pthread_exit(None)
PY
dying=$!
for _ in $(seq 200); do
	[ "$(cut -d' ' -f3 "/proc/$dying/stat" 2>/dev/null)" = Z ] && break
	sleep 0.05
done
expect_rc "start after a crash, while the killed QEMU still exits" 0 "$NOOK" local start b1 --no-wait
check "  its new QEMU on the QMP socket" test -n "$(qmp_status b1)"
wait "$dying"
# a shell on a VM whose sshd does not answer yet waits for it (the guest
# test sees one answer); a blank disk's never does: these waits end with
# what happens to the VM meanwhile
# waiting_shell NAME [tty]: a shell on b1 in the background (on a
# terminal of its own with tty), its output in wait.out; NAME passes once
# it says it waits
waiting_shell() {
	rm -f wait.out
	if [ $# -gt 1 ]; then
		(script -qec "'$NOOK' shell b1 -- true" /dev/null >wait.out 2>&1
		 echo "rc=$?" >>wait.out) &
	else
		("$NOOK" shell b1 -- true >wait.out 2>&1; echo "rc=$?" >>wait.out) &
	fi
	WAITER=$!
	for _ in $(seq 100); do
		grep -q "VM b1 is booting: waiting for its sshd" wait.out 2>/dev/null &&
			{ ok "$1"; return; }
		sleep 0.2
	done
	fail "$1" "$(cat wait.out 2>/dev/null)"
}
# a console on a terminal whose VM ends says so, not that it detached
expect_rc "a VM cc" 0 "$NOOK" local start cc --image blank.img --no-wait --memory 256M --accel tcg
(timeout 30 script -qec "$(printf '%q ' "$NOOK" console cc)" /dev/null </dev/null >console.out 2>&1) &
sc=$!
for _ in $(seq 100); do grep -q detaches console.out 2>/dev/null && break; sleep 0.1; done
expect_rc "  stop --force while its console is attached" 0 "$NOOK" local stop cc --force
wait "$sc"
check "  the console ends, saying QEMU ended" grep -q "cc's console closed: its QEMU ended" console.out
expect_rc "  delete" 0 "$NOOK" local delete cc
# console from a pipe: what it holds goes in, then the console ends once
# quiet (it spun on the pipe's hang-up for ever)
expect_rc "console with a pipe for stdin ends" 0 sh -c 'echo hello | timeout 20 "$1" console b1' _ "$NOOK"
# a console ended by SIGTERM says so in its exit status (its stdin a
# FIFO held open, so that only the signal ends it)
mkfifo console.in
"$NOOK" console b1 < console.in > /dev/null 2>&1 &
console_pid=$!
exec 8> console.in
sleep 1
kill -TERM "$console_pid"
wait "$console_pid"
check "a console sent SIGTERM ends of it" test "$?" = 143
exec 8>&-
# on a terminal (raw while attached), any signal that ends the console
# gives the terminal back first: SIGINT, SIGQUIT and SIGPIPE (stdout's
# reader gone) left it raw, without echo, for the shell after
for sig in INT QUIT PIPE; do
	check "a console on a terminal sent SIG$sig ends of it, the terminal given back" test "$(python3 - "$NOOK" b1 "$sig" <<'PY'
import os, pty, select, signal, sys, termios, time
sig = getattr(signal, "SIG" + sys.argv[3])
pid, fd = pty.fork()
if pid == 0:  # (python ignores SIGPIPE: a shell's child would not)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.execv(sys.argv[1], [sys.argv[1], "console", sys.argv[2]])
end = time.time() + 20  # until the console has made the terminal raw
while termios.tcgetattr(fd)[3] & termios.ICANON and time.time() < end:
    if select.select([fd], [], [], 0.1)[0]:
        os.read(fd, 4096)
os.kill(pid, sig)
for _ in range(100):
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    time.sleep(0.1)
else:
    os.kill(pid, signal.SIGKILL)
    _, st = os.waitpid(pid, 0)
lflag = termios.tcgetattr(fd)[3]
print(os.WTERMSIG(st) == sig, bool(lflag & termios.ICANON),
      bool(lflag & termios.ECHO))
PY
)" = "True True True"
done
# a client not nook's on the serial socket (socat, say): QEMU would
# leave a second one waiting unseen. The holder prints "held" once QEMU
# has taken it (its monitor no longer says "disconnected:").
python3 - "$NOOK_HOME/run/b1" "$(dirname "$QMP_PY")" > holder.out <<'PY' &
import socket, sys, time
sys.path.insert(0, sys.argv[2])
from qmp import Qmp
held = socket.socket(socket.AF_UNIX); held.connect(sys.argv[1] + "/serial.sock")
m = Qmp(sys.argv[1] + "/qmp.sock")
for _ in range(100):
    if not [c for c in m.ask("query-chardev")["return"]
            if c["label"] == "serial0"
            and c["filename"].startswith("disconnected:")]:
        break
    time.sleep(0.1)
m.close()  # QEMU's monitor, too, serves one client
print("held", flush=True)
time.sleep(60)
PY
holder=$!
for _ in $(seq 100); do grep -q held holder.out && break; sleep 0.1; done
expect_rc "a console another program holds is refused, not hung" 1 timeout 20 "$NOOK" console b1 < /dev/null
contains "  says so" "$ERR" "the console of b1 is in use by another program"
kill "$holder"
wait "$holder" 2>/dev/null
expect_rc "  and is ours once that program ends" 0 sh -c 'echo | timeout 20 "$1" console b1' _ "$NOOK"
waiting_shell "a shell on a booting VM waits for its sshd, a clock on a terminal" tty
"$NOOK" local pause b1 >/dev/null
wait "$WAITER"
check "  the clock cleared, then: paused" grep -qF $'\r\033[Knook: VM b1 was paused before its sshd answered' wait.out
contains "  and how to go on" "$(cat wait.out)" "'nook local unpause b1' lets it run"
contains "  exit 1" "$(cat wait.out)" "rc=1"
"$NOOK" local unpause b1 >/dev/null
# a record that cannot be read meanwhile: its error too on a line of its
# own (it was printed after the clock's text, on the clock's line)
waiting_shell "a shell waits again, a clock on a terminal" tty
rec="$NOOK_HOME/vms/b1/vm.json"
cp -p "$rec" vm.json.keep
printf '{"state": ' > vm.json.bad
mv vm.json.bad "$rec"
wait "$WAITER"
mv vm.json.keep "$rec"
check "  the clock cleared, then: the record's error" grep -qF $'\r\033[Knook: '"$rec:" wait.out
contains "  exit 1" "$(cat wait.out)" "rc=1"
waiting_shell "off a terminal, one line says it waits"
# a guest kernel's panic at the end of this QEMU's part of the console log
# (written here: a blank disk boots nothing and prints nothing): said by
# status, and shell and start stop at once (the guest test has a real one)
log="$NOOK_HOME/vms/b1/console.log"
printf '[ 2.4] Kernel panic - not syncing: VFS: no root\r\n[ 2.4] CPU: 0\r\n[ 2.5] ---[ end Kernel panic - not syncing: VFS: no root ]---\r\n' >> "$log"
wait "$WAITER"
contains "a shell waiting for sshd stops at a panic" "$(cat wait.out)" \
	"VM b1: the guest's kernel panicked (Kernel panic - not syncing: VFS: no root)"
contains "  exit 1" "$(cat wait.out)" "rc=1"
expect_rc "status of a guest whose kernel panicked" 0 "$NOOK" local status b1 --json
check "  running" test "$(echo "$OUT" | json 'd["state"]')" = running
check "  the panic's line" test "$(echo "$OUT" | json 'd["panic"]')" = "Kernel panic - not syncing: VFS: no root"
expect_rc "shell refuses it" 1 "$NOOK" shell b1 -- true
contains "  saying why" "$ERR" "the guest's kernel panicked (Kernel panic - not syncing: VFS: no root)"
expect_rc "a start of it says so" 1 "$NOOK" local start b1
contains "  saying why" "$ERR" "but its guest's kernel panicked"
printf '[ 0.0] Linux version 6.1.0 (panic=10: a boot after it)\r\n' >> "$log"
expect_rc "once it boots again" 0 "$NOOK" local status b1 --json
check "  no panic" test "$(echo "$OUT" | json 'd["panic"]')" = None
# a guest that powered itself off, its log past what nook reads whole
pid=$(cat "$NOOK_HOME/run/b1/qemu.pid")
truncate -s +65M "$log"
printf '[ 99.0] reboot: Power down\r\n' >> "$log"
waiting_shell "a shell waits once more"
kill -9 "$pid"
ended "$pid"
wait "$WAITER"
contains "a shell waiting for sshd stops when QEMU ends" "$(cat wait.out)" \
	"VM b1: its QEMU ended before its sshd answered; 'nook local status b1' says how"
expect_rc "status of a VM that powered off, a 65 MiB log" 0 "$NOOK" local status b1 --json
check "  stopped, not crashed" test "$(echo "$OUT" | json 'd["state"]')" = stopped
check "  no resident memory" test "$(echo "$OUT" | json 'd["resident_mib"]')" = None
expect_rc "start it again" 0 "$NOOK" local start b1 --no-wait
expect_rc "delete refuses a running VM" 1 "$NOOK" local delete b1
contains "  says it runs" "$ERR" "VM b1 is running"
expect_rc "  --json too" 1 "$NOOK" local delete b1 --json
contains "  its stdout is the JSON error" "$(echo "$OUT" | json 'd["error"]')" "VM b1 is running"
expect_rc "delete --force --json" 0 "$NOOK" local delete b1 --force --json
check "  prints the VM deleted" test "$(echo "$OUT" | json '(d["name"], d["deleted"])')" = "('b1', True)"
check "QEMU gone after delete" test "$(qemus b1)" = 0
check "files gone" test ! -e "$NOOK_HOME/vms/b1"
check "base image kept" test -f blank.img

# the lock: a start that holds it makes others wait their turn
"$NOOK" local start b2 --image blank.img --no-wait >/dev/null
exec 9>"$NOOK_HOME/vms/b2/lock"
flock -n 9
expect_rc "stop of a locked VM" 1 "$NOOK" local stop b2
contains "says busy" "$ERR" "busy"
exec 9>&-
expect_rc "stop --force after the lock" 0 "$NOOK" local stop b2 --force
expect_rc "stop a stopped VM" 0 "$NOOK" local stop b2
contains "says it was not running" "$OUT" "not running"
# stop --force while the lock is held by what reads no stop mark (here no
# nook at all; a pause, a port, a snapshot alike): it ends QEMU itself and
# says how, and no one is said to report what no one will (before: "QEMU
# was ended ...; that command says what became of it", and the next stop
# of the stopped VM said QEMU was ended by a stop --force "meanwhile")
"$NOOK" local start b2 --no-wait >/dev/null
qpid=$(cat "$NOOK_HOME/run/b2/qemu.pid")
exec 9>"$NOOK_HOME/vms/b2/lock"
flock -n 9
expect_rc "stop --force while the lock is held" 0 "$NOOK" local stop b2 --force
contains "  says which step ended QEMU, and under what" "$OUT" "VM b2 stopped: QEMU quit (QMP quit) while another nook command held the VM"
contains "  and where to see what became of it" "$OUT" "'nook local status b2' shows it"
check "  QEMU is gone" ended "$qpid"
expect_rc "  status while still held" 0 "$NOOK" local status b2 --json
check "  says stopped" test "$(echo "$OUT" | json 'd["state"]')" = stopped
exec 9>&-
expect_rc "  a stop once the lock is free" 0 "$NOOK" local stop b2
contains "  says it was not running" "$OUT" "VM b2 stopped: it was not running"
check "  not that a stop --force ended it meanwhile" sh -c '! printf "%s" "$1" | grep -q meanwhile' _ "$OUT"
check "  and takes the mark" test ! -e "$NOOK_HOME/vms/b2/stop-forced"
# the same, then a start that fails before it records anything (a fixed
# port in use): the VM stays stopped (before, that start took the stop's
# mark and left it crashed for good); and a paused VM ended so is
# stopped, not crashed
"$NOOK" local start b2 --no-wait >/dev/null
exec 9>"$NOOK_HOME/vms/b2/lock"
flock -n 9
"$NOOK" local stop b2 --force >/dev/null
exec 9>&-
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
open(sys.argv[1], "w").write(str(s.getsockname()[1])); time.sleep(30)' busy.port &
holder=$!
for _ in $(seq 100); do [ -s busy.port ] && break; sleep 0.05; done
expect_rc "a start of it that fails at once (its port in use)" 1 "$NOOK" local start b2 --no-wait --port "$(cat busy.port):80"
contains "  says why" "$ERR" "is already in use"
kill "$holder"; wait "$holder" 2>/dev/null
expect_rc "  status" 0 "$NOOK" local status b2 --json
check "  still says stopped" test "$(echo "$OUT" | json 'd["state"]')" = stopped
"$NOOK" local start b2 --no-wait >/dev/null
expect_rc "a paused VM" 0 "$NOOK" local pause b2
exec 9>"$NOOK_HOME/vms/b2/lock"
flock -n 9
expect_rc "  stopped with --force while the lock is held" 0 "$NOOK" local stop b2 --force
exec 9>&-
expect_rc "  status" 0 "$NOOK" local status b2 --json
check "  says stopped, not crashed" test "$(echo "$OUT" | json 'd["state"]')" = stopped
expect_rc "  and a start brings it back" 0 "$NOOK" local start b2 --no-wait
"$NOOK" local stop b2 --force >/dev/null
# a stop that holds the VM once its QEMU is gone, before it records
# that (held there by SIGSTOP): status and list say stopped, what it
# records, not crashed; a command refused meanwhile names that stop
"$NOOK" local start b2 --no-wait >/dev/null
qpid=$(cat "$NOOK_HOME/run/b2/qemu.pid")
"$NOOK" local stop b2 --timeout 60 >/dev/null 2>&1 &
stopper=$!
for _ in $(seq 100); do locked b2 && break; sleep 0.05; done
check "a stop holds b2" locked b2
kill -STOP "$stopper"
kill -KILL "$qpid"
check "  its QEMU gone" ended "$qpid"
expect_rc "  status meanwhile" 0 "$NOOK" local status b2 --json
check "  says stopped, not crashed" test "$(echo "$OUT" | json 'd["state"]')" = stopped
expect_rc "  list meanwhile" 0 "$NOOK" local list --json
check "  says stopped too" test "$(echo "$OUT" | json '[v["state"] for v in d if v["name"] == "b2"]')" = "['stopped']"
expect_rc "  a start meanwhile" 1 "$NOOK" local start b2 --no-wait
contains "  names the stop that holds b2" "$ERR" "VM b2 is busy: another nook (pid $stopper) is stopping it; try again once it is done"
kill -CONT "$stopper"
wait "$stopper"
check "  the stop ends well" test $? = 0
check "  and records b2 stopped" test "$("$NOOK" local status b2 --json | json 'd["state"]')" = stopped
# a look (status, list) holds the lock shared for a moment: a stop that
# meets one waits it out (it said "busy", seen when a list ran in a loop)
"$NOOK" local start b2 --no-wait >/dev/null
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_SH)
print("held", flush=True); time.sleep(0.2)' "$NOOK_HOME/vms/b2/lock" > look.out &
looker=$!
for _ in $(seq 100); do grep -q held look.out 2>/dev/null && break; sleep 0.01; done
expect_rc "a stop meeting a look's shared hold" 0 "$NOOK" local stop b2 --timeout 2
check "  waits it out, not busy" test "${ERR#*busy}" = "$ERR"
wait "$looker"
# ... and one whose VM a delete (holding the lock) removed meanwhile
# says so: its lock is of a file gone with the VM's directory
"$NOOK" local start bd --image blank.img --no-wait --memory 128M --cpus 1 \
	--accel tcg >/dev/null && "$NOOK" local stop bd --force >/dev/null
rm -f nookpid
python3 - "$NOOK_HOME/vms/bd" > del.out <<'PY' &
import fcntl, os, shutil, sys, time
d = sys.argv[1]
f = open(os.path.join(d, "lock"), "r+")
fcntl.flock(f, fcntl.LOCK_EX)
ino = os.fstat(f.fileno()).st_ino
print("held", flush=True)
def has_lock(pid):
    try:
        fds = os.listdir("/proc/%s/fd" % pid)
    except OSError:
        return False
    for fd in fds:
        try:
            if os.stat("/proc/%s/fd/%s" % (pid, fd)).st_ino == ino:
                return True
        except OSError:
            pass
    return False
end = time.time() + 10
while time.time() < end:
    try:
        if has_lock(open("nookpid").read().strip()):
            print("opened", flush=True)
            break
    except OSError:
        pass
    time.sleep(0.002)
shutil.rmtree(d)
f.close()
PY
deleter=$!
for _ in $(seq 100); do grep -q held del.out 2>/dev/null && break; sleep 0.01; done
"$NOOK" local stop bd >/dev/null 2>del.err &
echo $! > nookpid
wait $!
echo "rc=$?" >> del.err
wait "$deleter"
check "a stop whose VM a delete removed meanwhile (opened: $(grep -c opened del.out))" grep -qx "rc=1" del.err
contains "  says the VM was deleted meanwhile" "$(cat del.err)" "VM bd was deleted by another nook meanwhile; try again"
check "  and makes nothing of it again" test ! -e "$NOOK_HOME/vms/bd"
# a stop killed (SIGKILL) once its QEMU had ended, before its record
# (cut_at_quit, lib.sh): stopped, as asked, not crashed (before: list and
# status said crashed, "QEMU died without a stop"). The first look
# records it and says so; the next start boots as after any stop
"$NOOK" local start b2 --no-wait >/dev/null
check "a stop killed once its QEMU ended" cut_at_quit b2 "$NOOK" local stop b2 --force
check "  before its record" test "$(json 'd["state"]["status"]' < "$NOOK_HOME/vms/b2/vm.json")" = running
expect_rc "  list" 0 "$NOOK" local list --json
check "  says stopped, not crashed" test "$(echo "$OUT" | json '[v["state"] for v in d if v["name"] == "b2"]')" = "['stopped']"
contains "  and that the stop was cut off" "$ERR" "VM b2: a stop of it was cut off once its QEMU had ended; it is recorded stopped"
check "  which is recorded" test "$(json 'd["state"]["status"]' < "$NOOK_HOME/vms/b2/vm.json")" = stopped
check "  its runtime files gone, as a stop leaves it" test ! -e "$NOOK_HOME/run/b2/qemu.pid" -a ! -e "$NOOK_HOME/run/b2/qmp.sock"
expect_rc "  status" 0 "$NOOK" local status b2 --json
check "  says stopped, no more news" test "$(echo "$OUT" | json 'd["state"]'):$ERR" = stopped:
expect_rc "  a start" 0 "$NOOK" local start b2 --no-wait
check "  runs it" test "$("$NOOK" local status b2 --json | json 'd["state"]')" = running
# ... killed before it ended QEMU (as the power button waits): nothing
# was stopped, and a crash after is still a crash
"$NOOK" local stop b2 --timeout 60 >/dev/null 2>&1 &
stopper=$!
for _ in $(seq 100); do test -e "$NOOK_HOME/vms/b2/stop-begun" && break; sleep 0.05; done
kill -KILL "$stopper"
wait "$stopper" 2>/dev/null
check "a stop killed before its QEMU ended leaves its mark" test -e "$NOOK_HOME/vms/b2/stop-begun"
expect_rc "  status" 0 "$NOOK" local status b2 --json
check "  running" test "$(echo "$OUT" | json 'd["state"]')" = running
check "  no stop's mark left" test ! -e "$NOOK_HOME/vms/b2/stop-begun"
qpid=$(cat "$NOOK_HOME/run/b2/qemu.pid")
kill -KILL "$qpid"
check "  its QEMU killed after" ended "$qpid"
check "  crashed" test "$("$NOOK" local status b2 --json | json 'd["state"]')" = crashed
"$NOOK" local stop b2 >/dev/null
# a delete killed (SIGKILL) once it has ended QEMU: stopped, said to be
# a delete cut short; a start keeps the VM, and takes that off
"$NOOK" local start b2 --no-wait >/dev/null
qpid=$(cat "$NOOK_HOME/run/b2/qemu.pid")
"$NOOK" local delete b2 --force >/dev/null 2>&1 &
deleter=$!
for _ in $(seq 1000); do
	tr -d '\0' < "/proc/$qpid/cmdline" 2>/dev/null | grep -q . || break
	sleep 0.002
done
kill -KILL "$deleter"
wait "$deleter" 2>/dev/null
if [ -e "$NOOK_HOME/vms/b2/vm.json" ]; then
	expect_rc "a delete of b2 killed as it deletes: status" 0 "$NOOK" local status b2 --json
	check "  stopped, a delete of b2 cut short" test "$(echo "$OUT" | json '(d["state"], d["delete_cut_short"])')" = "('stopped', 'b2')"
	expect_rc "  a start" 0 "$NOOK" local start b2 --no-wait
	check "  keeps it, no longer said" test "$("$NOOK" local status b2 --json | json '(d["state"], d["delete_cut_short"])')" = "('running', None)"
	"$NOOK" local stop b2 --force >/dev/null
else
	"$NOOK" local delete b2 --force >/dev/null 2>&1
	"$NOOK" local start b2 --image blank.img --no-wait >/dev/null
	"$NOOK" local stop b2 --force >/dev/null
fi

# a guest that never answers: the timeout names the phase, QEMU stays up
expect_rc "start --timeout 2 on a disk that boots nothing" 1 "$NOOK" local start b3 \
	--image blank.img --timeout 2 --memory 256M
contains "timeout names the stalled phase" "$ERR" "stalled while booting"
contains "timeout says the VM still runs" "$ERR" "still running"
check "QEMU left running to look at" test "$(qemus b3)" = 1
expect_rc "delete the timed-out VM" 0 "$NOOK" local delete b3 --force

# --reprovision: a new instance-id, said out loud
iid=$(json 'd["instance_id"]' < "$NOOK_HOME/vms/b2/vm.json")
expect_rc "start --reprovision" 0 "$NOOK" local start b2 --no-wait --reprovision
contains "says the instance-id changes" "$OUT" "instance-id: $iid ->"
check "vm.json has the new id" test "$(json 'd["instance_id"]' < "$NOOK_HOME/vms/b2/vm.json")" != "$iid"
"$NOOK" local stop b2 --force >/dev/null

# KVM asked for where it cannot work: a clear refusal
if [ "$("$NOOK" doctor --json | json 'd["accel"]["accelerator"]' 2>/dev/null)" = tcg ]; then
	expect_rc "--accel kvm on a TCG-only host" 1 "$NOOK" local start b3 --image blank.img --accel kvm --no-wait
	contains "says why not" "$ERR" "--accel kvm cannot work here"
	check "nothing left of b3" test ! -e "$NOOK_HOME/vms/b3" || ls -la "$NOOK_HOME/vms/b3"
fi

# two first starts of one name at once: one wins, the other touches nothing
for round in 1 2 3; do
	"$NOOK" local start r1 --image blank.img --no-wait --memory 256M >"$WORK/s1" 2>&1 &
	p1=$!
	"$NOOK" local start r1 --image blank.img --no-wait --memory 256M >"$WORK/s2" 2>&1 &
	p2=$!
	wait $p1; rc1=$?
	wait $p2; rc2=$?
	check "round $round: exactly one start won" test "$((rc1 + rc2))" = 1
	check "round $round: exactly one QEMU" test "$(qemus r1)" = 1
	lost=$(cat "$WORK/s1" "$WORK/s2")
	case $lost in
	*busy* | *"already running"*) ok "round $round: the other says the VM is busy" ;;
	*) fail "round $round: the other says the VM is busy" "$lost" ;;
	esac
	check "round $round: the winner's files are intact" test -f "$NOOK_HOME/vms/r1/vm.json" -a -f "$NOOK_HOME/vms/r1/disk.qcow2"
	expect_rc "round $round: the winner's VM runs" 0 "$NOOK" local status r1 --json
	check "round $round: status running" test "$(echo "$OUT" | json 'd["state"]')" = running
	"$NOOK" local delete r1 --force >/dev/null 2>&1
done

# --json: a failure is a JSON object on stdout too
expect_rc "status --json of no VM" 1 "$NOOK" local status nosuch --json
check "its stdout is a JSON error" test "$(echo "$OUT" | json 'd["error"]')" = "no VM named 'nosuch' (start one with 'nook local start nosuch')"
check "  naming the VM" test "$(echo "$OUT" | json 'd["name"]')" = nosuch
expect_rc "start --json that fails" 1 "$NOOK" local start b3 --image ./nope.img --json
contains "its stdout is a JSON error" "$(echo "$OUT" | json 'd["error"]')" "nope.img"
check "  naming the VM" test "$(echo "$OUT" | json 'd["name"]')" = b3
# every command about one VM names it in its JSON error, a script
# running several at once can tell whose it is
for cmd in "local stop" "local delete" "local pause" "local suspend" \
	"local snapshot list" "port list"; do
	# shellcheck disable=SC2086
	expect_rc "$cmd --json of no VM" 1 "$NOOK" $cmd nosuch --json
	check "  its JSON error names it" test "$(echo "$OUT" | json '(d["name"], d["error"].startswith("no VM named"))')" = "('nosuch', True)"
done
expect_rc "stop --json of a bad name" 2 "$NOOK" local stop Bad_Name --json
check "  names no VM: it is none" test "$(echo "$OUT" | json '("name" in d, d["usage"])')" = "(False, True)"

# a recovered error is not printed: with its QMP socket gone, stop goes
# quietly to SIGTERM, and says why in its one line
"$NOOK" local start b2 --no-wait >/dev/null 2>&1
rm -f "$NOOK_HOME/run/b2/qmp.sock"
expect_rc "stop without QMP" 0 "$NOOK" local stop b2 --timeout 1
contains "ended by SIGTERM" "$OUT" "SIGTERM"
contains "says why QMP did not end it" "$OUT" "cannot connect to QMP socket"
check "nothing said of the QMP that failed" test -z "$ERR"

# a vm.json written before NICs: its MAC and ports stay
"$NOOK" local start b2 --no-wait --port 0:80 >/dev/null 2>&1
mac=$(tr '\0' '\n' < /proc/"$(cat "$NOOK_HOME/run/b2/qemu.pid")"/cmdline | grep -o 'mac=[0-9a-f:]*')
"$NOOK" local stop b2 --force >/dev/null
python3 - "$NOOK_HOME/vms/b2/vm.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["ports"] = d.pop("nics")[0]["ports"]
json.dump(d, open(sys.argv[1], "w"))
PY
expect_rc "start a VM recorded by an earlier nook" 0 "$NOOK" local start b2 --no-wait
mac2=$(tr '\0' '\n' < /proc/"$(cat "$NOOK_HOME/run/b2/qemu.pid")"/cmdline | grep -o 'mac=[0-9a-f:]*')
check "its MAC is the one it had" test -n "$mac" -a "$mac" = "$mac2"
expect_rc "status of it" 0 "$NOOK" local status b2 --json
check "its port forward is kept" test "$(echo "$OUT" | json 'len(d["ports"])')" = 1
"$NOOK" local delete b2 --force >/dev/null

# a comma in the data directory (QEMU doubles it in its options): the VM
# is still known as ours, so status, stop and delete reach it
(
	export NOOK_HOME="$WORK/a,b home"
	expect_rc "start with a comma in NOOK_HOME" 0 "$NOOK" local start c1 --image "$WORK/blank.img" --no-wait --memory 256M
	expect_rc "status with a comma" 0 "$NOOK" local status c1 --json
	check "it runs" test "$(echo "$OUT" | json 'd["state"]')" = running
	expect_rc "delete --force with a comma" 0 "$NOOK" local delete c1 --force
	check "no QEMU left" test "$(qemus c1)" = 0
	finish >/dev/null
) | tee "$WORK/comma.log" | grep -v '^$'
grep -q '^FAIL' "$WORK/comma.log" && fail "the comma checks" || ok "the comma checks"

# QEMU killed while start waits: exit 1 saying so, the record crashed
"$NOOK" local start b3 --image blank.img --memory 256M --timeout 60 >"$WORK/w.out" 2>"$WORK/w.err" &
waiter=$!
# (once it says QEMU runs: its pid file comes while QEMU still sets
# itself up, and a kill then is a QEMU that failed to start)
for _ in $(seq 150); do grep -qs "VM b3: QEMU running" "$WORK/w.out" && break; sleep 0.2; done
kill -9 "$(cat "$NOOK_HOME/run/b3/qemu.pid")"
wait $waiter
check "a start whose QEMU dies exits 1" test $? = 1
contains "  saying QEMU exited" "$(cat "$WORK/w.err")" "QEMU exited while"
check "  and no refused state move" sh -c '! grep -q "cannot go from" "$1"' _ "$WORK/w.err"
expect_rc "status after it" 0 "$NOOK" local status b3 --json
check "  crashed" test "$(echo "$OUT" | json 'd["state"]')" = crashed
"$NOOK" local delete b3 --force >/dev/null

# a vm.json with a field missing or of the wrong type: named, never a crash;
# delete --force removes even an unreadable record
"$NOOK" local start b2 --image blank.img --no-wait >/dev/null 2>&1
"$NOOK" local stop b2 --force >/dev/null
python3 - "$NOOK_HOME/vms/b2/vm.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); del d["accel"]; d["cpus"] = "two"
json.dump(d, open(sys.argv[1], "w"))
PY
expect_rc "start with a broken vm.json" 1 "$NOOK" local start b2 --no-wait
contains "  names the field" "$ERR" '"accel" is missing'
expect_rc "delete without --force refuses" 1 "$NOOK" local delete b2
expect_rc "delete --force removes it anyway" 0 "$NOOK" local delete b2 --force
check "  gone" test ! -e "$NOOK_HOME/vms/b2"

# QEMU's own failure is shown and no QEMU is left
expect_rc "start with a QEMU that fails" 1 "$NOOK" local start b3 --image blank.img --no-wait --memory 256M --cpu no-such-model
contains "QEMU's message is shown" "$ERR" "QEMU failed to start"
check "no QEMU for b3" test "$(qemus b3)" = 0

# a kernel named by a relative path is kept whole: a later start from
# another directory boots it too (QEMU takes zeros for a kernel)
head -c 600000 /dev/zero > zero.kernel
ln -s zero.kernel link.kernel
expect_rc "a start with a relative --kernel" 0 "$NOOK" local start rk --image blank.img --kernel link.kernel --no-wait --memory 256M --accel tcg
check "  kept absolute, its link kept" test "$(json 'd["kernel"]' < "$NOOK_HOME/vms/rk/vm.json")" = "$PWD/link.kernel"
expect_rc "  stopped" 0 "$NOOK" local stop rk --force
expect_rc "  started again from another directory" 0 sh -c 'cd / && exec "$1" local start rk --no-wait' _ "$NOOK"
expect_rc "  deleted" 0 "$NOOK" local delete rk --force
# --append is held as an image's kernel arguments are: one line of
# printable text; and the whole line, nook's own with it, must fit
expect_rc "--append with an escape is a usage error" 2 "$NOOK" local start rk --image blank.img --kernel zero.kernel --append "$(printf 'quiet\033[2J')" --plan
contains "  naming the problem" "$ERR" "--append has a control character or a byte that is not UTF-8 (\x1b) at byte 5"
expect_rc "an --append that leaves no room for nook's own" 1 "$NOOK" local start rk --image blank.img --kernel zero.kernel --append "x=$(printf '%02000d' 0)" --no-wait --memory 256M --accel tcg
contains "  says the whole line is too long" "$ERR" "a kernel takes at most 2047: shorten --append"
check "  and makes no VM" test ! -e "$NOOK_HOME/vms/rk"

# a path may hold any byte: list, status and the plan print it escaped
esc=$(printf 'e\033[31m.img')
cp blank.img "$esc"
expect_rc "a start from an image whose name holds an escape" 0 "$NOOK" local start esc --image "$esc" --no-wait --memory 256M --accel tcg
expect_rc "  list" 0 "$NOOK" local list
contains "  shows it as \\x1b" "$OUT" 'e\x1b[31m.img'
check "  and never the byte" sh -c '! printf "%s" "$1" | grep -q "$(printf "\033")"' _ "$OUT"
expect_rc "  status" 0 "$NOOK" local status esc
contains "  shows it as \\x1b" "$OUT" 'image:   e\x1b[31m.img'
expect_rc "  the plan" 0 "$NOOK" local start esc2 --image "$esc" --plan
contains "  shows it as \\x1b" "$OUT" 'image e\x1b[31m.img'
expect_rc "  deleted" 0 "$NOOK" local delete esc --force

# --subnet's form is a usage error; help takes a subcommand
expect_rc "a --subnet that is no subnet" 2 "$NOOK" local start sn --nodes 2 --subnet banana --plan
contains "  says why" "$ERR" "subnet 'banana': expected an IPv4"
expect_rc "help local start" 0 "$NOOK" help local start
contains "  is start's usage" "$OUT" "usage: nook local start"

# --plan refuses what the start would refuse, making nothing
expect_rc "--plan of a missing image" 1 "$NOOK" local start pl --image /nonexistent --plan
contains "  says so" "$ERR" "image /nonexistent: No such file or directory"
expect_rc "--plan with user-data that is none" 1 "$NOOK" local start pl --image blank.img --user-data /etc/passwd --plan
contains "  says so" "$ERR" "unrecognised user-data"
expect_rc "--plan of a disk smaller than its image" 1 "$NOOK" local start pl --image blank.img --disk 1K --plan
contains "  says so" "$ERR" "--disk cannot shrink VM pl's disk (64M now)"
check "  and made nothing" test ! -e "$NOOK_HOME/vms/pl"
expect_rc "--plan naming the default image, not yet in the store, with --disk" 0 "$NOOK" local start pl --image debian-12 --disk 30G --plan
contains "  plans it (the start makes the image)" "$OUT" "disk 30G, image debian-12 (new)"
expect_rc "--plan --boot direct of an image with no kernel" 1 "$NOOK" local start pl --image blank.img --boot direct --plan
contains "  says so, as the start does" "$ERR" "--boot direct needs a kernel: image blank.img has none"
expect_rc "--plan --json without --image" 0 "$NOOK" local start pl --plan --json
check "  names the default image, as the text does" test "$(echo "$OUT" | json 'd["nodes"][0]["image"]')" = debian-12

# memory that cannot be had is refused at the plan, not by QEMU later:
# beyond what a VM can have (its record's 4T: such a VM's record could
# not be read back), and beyond the host's RAM and swap when the kernel
# would refuse it to QEMU (its overcommit heuristic or strict mode)
expect_rc "--memory 100000G: a usage error" 2 "$NOOK" local start pl --image blank.img --memory 100000G --plan
contains "  says the most a VM can have" "$ERR" "--memory 100000G is more than the 4T a VM can have"
# a disk likewise: 64T, its record's bound
expect_rc "--disk 100T: a usage error" 2 "$NOOK" local start pl --image blank.img --disk 100T --plan
contains "  says the most a VM's disk can be" "$ERR" "--disk 100T is more than the 64T a VM's disk can be"
printf 'name: pm\nmemory: 5T\n' >"$WORK/pm.yaml"
mkdir -p "$WORK/pm" && mv "$WORK/pm.yaml" "$WORK/pm/nook.yaml"
expect_rc "memory: 5T in nook.yaml: refused" 2 sh -c 'cd "$1" && "$2" local start --image "$3" --plan' _ "$WORK/pm" "$NOOK" "$WORK/blank.img"
contains "  names the file's line" "$ERR" "memory 5T is more than the 4T a VM can have"
ram_kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)
swap_kb=$(sed -n 's/^SwapTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)
over=$(( (ram_kb + swap_kb) / 1048576 + 2 ))G
if [ "$(cat /proc/sys/vm/overcommit_memory)" != 1 ] && [ "${over%G}" -lt 4096 ]; then
	expect_rc "--memory $over, more than the host's RAM and swap: refused" 1 "$NOOK" local start pl --image blank.img --memory "$over" --plan
	contains "  says why" "$ERR" "VM pl: memory $over is more than this host's RAM and swap"
	check "  and made nothing" test ! -e "$NOOK_HOME/vms/pl"
fi
expect_rc "--memory 256M: planned" 0 "$NOOK" local start pl --image blank.img --memory 256M --plan
check "  with no warning" test -z "$ERR"

# a VM whose record cannot be read is listed as broken, not left out
expect_rc "a VM bk" 0 "$NOOK" local start bk --image blank.img --no-wait --memory 256M --accel tcg
expect_rc "  its plan, made" 0 "$NOOK" local start bk --plan --json
check "  names the image it was made from" test "$(echo "$OUT" | json 'd["nodes"][0]["image"]')" = blank.img
# the default image named for it: refused before that image is made
# (minutes), the plan likewise
for how in --plan --no-wait; do
	expect_rc "  start $how --image debian-12, not in the store" 1 "$NOOK" local start bk --image debian-12 $how
	contains "  says its disk cannot move" "$ERR" "VM bk was made from image blank.img; its disk cannot move to debian-12"
	check "  and made no image" test ! -e "$NOOK_HOME/images/names/debian-12"
done
# a file named debian-12 where the start runs is a path, as a start takes
# it: the default image is neither made nor compared with
mkdir -p lf && cp blank.img lf/debian-12
expect_rc "a VM lf made from a file named debian-12" 0 sh -c 'cd lf && "$1" local start lf --image debian-12 --no-wait --memory 256M --accel tcg' _ "$NOOK"
check "  made no image" test ! -e "$NOOK_HOME/images/names/debian-12"
expect_rc "  its plan, the same --image" 0 sh -c 'cd lf && "$1" local start lf --image debian-12 --plan' _ "$NOOK"
expect_rc "  stopped" 0 "$NOOK" local stop lf --force
expect_rc "  its start, the same --image" 0 sh -c 'cd lf && "$1" local start lf --image debian-12 --no-wait' _ "$NOOK"
expect_rc "  delete" 0 "$NOOK" local delete lf --force
# one made from an image since removed (not the store's): still refused
cp blank.img gone.img
expect_rc "a VM gi" 0 "$NOOK" local start gi --image gone.img --no-wait --memory 256M --accel tcg
expect_rc "  stopped" 0 "$NOOK" local stop gi --force
rm gone.img
expect_rc "  its image removed: --plan --image debian-12" 1 "$NOOK" local start gi --image debian-12 --plan
contains "  says its disk cannot move" "$ERR" "VM gi was made from image gone.img; its disk cannot move to debian-12"
expect_rc "  delete" 0 "$NOOK" local delete gi
expect_rc "  as text" 0 "$NOOK" local start bk --plan
contains "  too" "$OUT" "image blank.img"
expect_rc "  stopped" 0 "$NOOK" local stop bk --force
echo junk > "$NOOK_HOME/vms/bk/vm.json"
expect_rc "  its record broken: list" 0 "$NOOK" local list
check "  shows it broken" sh -c 'echo "$1" | grep -q "^bk  *broken "' _ "$OUT"
contains "  says what is wrong" "$ERR" "vms/bk/vm.json:1:"
expect_rc "  list --json" 0 "$NOOK" local list --json
check "  has it, state broken, with the error" test "$(echo "$OUT" | json '[(v["state"], "vm.json:1:" in v["error"]) for v in d if v["name"] == "bk"]')" = "[('broken', True)]"
# ... with a stop's mark: a command that opens it as it is (stop,
# delete, images rm) takes no lock to mend it first (it would mend
# nothing, and hold back a command that wants the lock meanwhile)
: > "$NOOK_HOME/vms/bk/stop-begun"
if command -v strace >/dev/null; then
	# (LeakSanitizer cannot run under ptrace: an ASan build's leak
	# check is off for this one run)
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -e trace=flock -o flock.trace "$NOOK" local stop bk >/dev/null 2>&1
	check "  with a stop's mark: stop takes no lock to mend it" sh -c 'grep -q "exited with" flock.trace && ! grep -q LOCK_EX flock.trace'
else
	echo "     | skipped (no strace): a look at a broken VM with a stop's mark"
fi
rm "$NOOK_HOME/vms/bk/stop-begun"
# a FIFO in its place would hang any reader: said at once, as a directory
rm "$NOOK_HOME/vms/bk/vm.json"
mkfifo "$NOOK_HOME/vms/bk/vm.json"
expect_rc "  its record a FIFO: status" 1 timeout 10 "$NOOK" local status bk
contains "  says it is not a file" "$ERR" "vms/bk/vm.json: it is a FIFO, not a file"
rm "$NOOK_HOME/vms/bk/vm.json"
mkdir "$NOOK_HOME/vms/bk/vm.json"
expect_rc "  a directory: list" 0 "$NOOK" local list
contains "  says it is not a file" "$ERR" "vms/bk/vm.json: it is a directory, not a file"
rmdir "$NOOK_HOME/vms/bk/vm.json"
ln -s /nonexistent "$NOOK_HOME/vms/bk/vm.json"
expect_rc "  a symlink that leads nowhere: list" 0 "$NOOK" local list
check "  shows it broken" sh -c 'echo "$1" | grep -q "^bk  *broken "' _ "$OUT"
expect_rc "  status" 1 "$NOOK" local status bk
contains "  says it cannot be read" "$ERR" "vms/bk/vm.json"
check "  not that there is no such VM" sh -c '! printf "%s" "$1" | grep -q "no VM named"' _ "$ERR"
expect_rc "  a start does not make it again over its disk" 1 "$NOOK" local start bk --image blank.img --no-wait --memory 256M --accel tcg
check "  the symlink stays" test -L "$NOOK_HOME/vms/bk/vm.json"
expect_rc "  delete --force" 0 "$NOOK" local delete bk --force
check "  gone" test ! -e "$NOOK_HOME/vms/bk"
# a directory in the record's place: delete --force removes it all the same
expect_rc "a VM bd" 0 "$NOOK" local start bd --image blank.img --no-wait --memory 256M --accel tcg
rm "$NOOK_HOME/vms/bd/vm.json" && mkdir -p "$NOOK_HOME/vms/bd/vm.json/x"
expect_rc "  its record a directory: delete --force" 0 "$NOOK" local delete bd --force
check "  gone" test ! -e "$NOOK_HOME/vms/bd"
# a delete removes the record after the disk and before the lock and its
# mark: cut off before the record, it is a delete cut short (said, and
# done again); after it, nothing a start would take up again
if command -v strace >/dev/null; then
	expect_rc "a VM bo" 0 "$NOOK" local start bo --image blank.img --no-wait --memory 256M --accel tcg
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -e trace=unlink,unlinkat,rmdir -o del.trace "$NOOK" local delete bo --force >/dev/null 2>&1
	order=$(grep -o 'vms/bo/[a-z0-9._-]*' del.trace | grep -xE 'vms/bo/(disk.qcow2|vm.json|lock|delete-begun)' | uniq | tr '\n' ' ')
	check "  its files go disk, record, then lock and mark ($order)" sh -c 'case "$1" in "vms/bo/disk.qcow2 vms/bo/vm.json "*lock*delete-begun*|"vms/bo/disk.qcow2 vms/bo/vm.json "*delete-begun*lock*) true ;; *) false ;; esac' _ "$order"
	check "  gone" test ! -e "$NOOK_HOME/vms/bo"
else
	echo "     | skipped (no strace): the order of a delete's removals"
fi

# a running VM whose record breaks: stop --force ends its QEMU by its
# paths, as a delete would, and leaves the file for mending
expect_rc "a VM br, running" 0 "$NOOK" local start br --image blank.img --no-wait --memory 256M --accel tcg
echo junk > "$NOOK_HOME/vms/br/vm.json"
expect_rc "  its record broken: stop" 1 "$NOOK" local stop br
contains "  says --force ends its QEMU" "$ERR" "VM br's record cannot be read (said above): --force ends its QEMU"
expect_rc "  stop --json" 1 "$NOOK" local stop br --json
contains "  its JSON error says --force ends its QEMU" "$(echo "$OUT" | json 'd["error"]')" "VM br's record cannot be read"
contains "  and what is wrong with the record, said above on stderr" "$(echo "$OUT" | json 'd["error"]')" "br/vm.json:1:"
check "  which runs on" test "$(qemus br)" = 1
expect_rc "  stop --force" 0 "$NOOK" local stop br --force
check "  ended it" test "$(qemus br)" = 0
check "  the record left as it was" test "$(cat "$NOOK_HOME/vms/br/vm.json")" = junk
expect_rc "  delete" 1 "$NOOK" local delete br
contains "  says --force removes it" "$ERR" "'nook local delete br --force' removes it"
expect_rc "  delete --json" 1 "$NOOK" local delete br --json
contains "  its JSON error says --force removes it" "$(echo "$OUT" | json 'd["error"]')" "'nook local delete br --force' removes it"
contains "  and what is wrong with the record" "$(echo "$OUT" | json 'd["error"]')" "br/vm.json:1:"
expect_rc "  delete --force" 0 "$NOOK" local delete br --force

# a stopped VM started again on a full disk (a tmpfs of the test's over
# vms/, in a mount namespace of its own: nothing outside sees it). A seed
# that would not change is kept, so a start that needs to write only its
# record works in the little room left; one that cannot says the disk is
# full, how much is free and what to do, and leaves the VM as it was
if unshare -m true 2>/dev/null; then
	out=$(unshare -m bash -s "$NOOK" "$NOOK_HOME" "$WORK" <<'SH' 2>&1
NOOK=$1 NOOK_HOME=$2
cd "$3" || exit 1
v=$NOOK_HOME/vms
mount -t tmpfs -o size=8m,nr_inodes=64 tmpfs "$v" || exit 1
"$NOOK" local start fs --image blank.img --no-wait --memory 256M --cpus 1 \
	--accel tcg >/dev/null 2>&1 || { echo "first start failed"; exit 1; }
"$NOOK" local stop fs --force >/dev/null 2>&1 || echo "stop failed"
was() { ls -A "$v/fs"; md5sum "$v/fs/cidata.iso" "$v/fs/vm.json"; }
before=$(was)
same() { [ "$(was)" = "$before" ] && echo "$1: as it was"; }
start() { "$NOOK" local start fs --no-wait "$@"; echo "start exit $?"; }
state() { "$NOOK" local status fs --json | python3 -c 'import json, sys; print("state", json.load(sys.stdin)["state"])'; }
# no byte left
dd if=/dev/zero of="$v/pad" bs=16k count=1 2>/dev/null
dd if=/dev/zero of="$v/filler" bs=4k 2>/dev/null
echo "[bytes]"; start
same "bytes"
state
# 16K left: room for the record, not for a second seed
rm "$v/pad"
echo "[reprovision]"; start --reprovision
same "reprovision"
echo "[16K]"; start
state
"$NOOK" local stop fs --force >/dev/null 2>&1
before=$(was)
# no inode left
rm "$v/filler"
mkdir "$v/fill"
i=0
while touch "$v/fill/$i" 2>/dev/null; do i=$((i + 1)); done
echo "[inodes]"; start
same "inodes"
"$NOOK" local start fs --no-wait --json | python3 -c 'import json, sys; print("json error:", json.load(sys.stdin)["error"])'
rm -r "$v/fill"
echo "[freed]"; start
state
"$NOOK" local delete fs --force >/dev/null 2>&1
SH
)
	printf '%s\n' "$out" | sed 's/^/     | /'
	full="VM fs was not started: the disk holding $NOOK_HOME/vms/fs is full"
	todo="free space there, then run the start again"
	part() { printf '%s\n' "$out" | sed -n "/^\[$1\]/,/^\[/p"; }
	contains "a restart with no byte left fails" "$(part bytes)" "start exit 1"
	contains "  says the disk is full, how much is free" "$(part bytes)" "$full (0K free)"
	contains "  and what to do" "$(part bytes)" "$todo"
	contains "  the VM's files as they were, none left over" "$out" "bytes: as it was"
	contains "  stopped still" "$(part bytes)" "state stopped"
	contains "a --reprovision (a new seed) with 16K left fails" "$(part reprovision)" "start exit 1"
	contains "  says so" "$(part reprovision)" "$full (16K free)"
	contains "  the old seed and record kept" "$out" "reprovision: as it was"
	contains "a start with 16K left keeps the seed, and works" "$(part 16K)" "start exit 0"
	contains "  running" "$(part 16K)" "state running"
	contains "a restart with no inode left fails" "$(part inodes)" "start exit 1"
	contains "  says the disk is full" "$(part inodes)" "$full ("
	contains "  with no inode free, and what to do" "$(part inodes)" "M free, no inode free); $todo"
	contains "  the VM's files as they were" "$out" "inodes: as it was"
	contains "  so does its JSON error" "$out" "json error: $full"
	contains "once there is room, the start works" "$(part freed)" "start exit 0"
	contains "  running" "$(part freed)" "state running"
fi
finish

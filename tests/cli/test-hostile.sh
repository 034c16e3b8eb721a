#!/usr/bin/env bash
# What a careless user or a hostile name does, without a guest OS: invalid
# VM names are usage errors everywhere and never reach the terminal raw;
# a signal or SIGKILL in the middle of a command leaves nothing behind
# that nook does not clean (the signal handler, the next command in the
# same directory, 'nook local prune'); an orphaned QEMU is found and ended.
NOOK=$1
. "$(dirname "$0")/lib.sh"
GHOST=
cleanup() {
	[ -n "$GHOST" ] && kill -9 "$GHOST" 2>/dev/null
	"$NOOK" local delete w1 --force >/dev/null 2>&1
	"$NOOK" local delete norec --force >/dev/null 2>&1
	"$NOOK" local delete fd --force >/dev/null 2>&1
	env -u NOOK_HOME HOME="$WORK/hA" XDG_RUNTIME_DIR="$WORK/xrt" \
		"$NOOK" local delete v1 --force >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
mkdir -p "$NOOK_HOME"

# --- invalid VM names: exit 2 from every command, no raw bytes echoed
bad=$'x\e[31mred\a'
for c in "local start" "local stop" "local status" "local delete" \
	"local logs" "local suspend" "local pause" "local unpause" \
	"shell" "ssh-config" "console"; do
	# shellcheck disable=SC2086
	expect_rc "$c with an invalid name exits 2" 2 "$NOOK" $c "Bad_Name"
	# shellcheck disable=SC2086
	expect_rc "$c with an escape sequence in the name exits 2" 2 "$NOOK" $c "$bad"
	case $ERR in
	*$'\e'* | *$'\a'*) fail "  $c: the error has no raw control bytes" "$(printf %q "$ERR")" ;;
	*'\x1b[31mred\x07'*) ok "  $c: the error shows them escaped" ;;
	*) fail "  $c: the error shows them escaped" "$ERR" ;;
	esac
done
expect_rc "a name with a character not allowed exits 2" 2 "$NOOK" local status a_b
check "  and names the character" grep -qF "'_' is not allowed" <<<"$ERR"
expect_rc "shell --all with an invalid name exits 2" 2 "$NOOK" shell --all "$bad" -- true
expect_rc "sync NAME SRC DEST with an invalid name exits 2" 2 "$NOOK" sync "$bad" . /tmp
expect_rc "status --json with an invalid name exits 2" 2 "$NOOK" local status "$bad" --json
expect_rc "an unknown command with escapes exits 2" 2 "$NOOK" "$bad"
# a usage error is one line: a newline in what it quotes is shown, not
# obeyed (a name or an option value could fake a second message)
nl() { # NAME ARGS...: a usage error whose first line shows the newline
	local n=$1
	shift
	expect_rc "usage error quoting a newline: $n" 2 "$NOOK" "$@"
	check "  its message is one line, the newline shown" test "$(head -1 <<<"$ERR" | grep -c '\\x0a')" = 1
}
nl "a VM name" local start $'a\nb'
nl "an image name" images rm $'a\nb'
nl "an option" local status --bogus=$'x\ny'
# names nook did not choose, printed back: a project's directory, an
# output path, the names inside an ISO someone else made
no_raw() { # NAME TEXT: TEXT has the escape shown, no raw control byte
	case $2 in
	*$'\e'* | *$'\a'*) fail "$1" "$(printf %q "$2")" ;;
	*'\x1b[31mred\x07'*) ok "$1" ;;
	*) fail "$1" "$2" ;;
	esac
}
mkdir -p "$WORK/proj/$bad"
expect_rc "init in a directory named with an escape sequence" 0 sh -c 'cd "$1" && "$2" init' _ "$WORK/proj/$bad" "$NOOK"
no_raw "  its 'wrote' line shows it escaped" "$OUT"
printf '#cloud-config\n{}\n' > ud-esc.yaml
expect_rc "cidata build -o a name with an escape sequence" 0 "$NOOK" cidata build -o "$bad.iso" -u ud-esc.yaml
no_raw "  its 'wrote' line shows it escaped" "$OUT"
mkdir -p rr && printf '#cloud-config\n{}\n' > rr/user-data && printf 'instance-id: i\n' > rr/meta-data && : > "rr/$bad"
xorriso -outdev rr.iso -volid cidata -map rr / >/dev/null 2>&1 # Rock Ridge names
expect_rc "cidata show of an ISO with such a file name" 0 "$NOOK" cidata show rr.iso
no_raw "  lists it escaped" "$OUT"
case $ERR in *$'\e'*) fail "  ... echoed raw" ;; *) ok "  ... shown escaped" ;; esac

# --- SIGINT in the middle of an import: its staging directory goes
head -c 300M /dev/urandom > big.raw
printf '\x55\xaa' | dd of=big.raw bs=1 seek=510 conv=notrunc 2>/dev/null
# a background job of a script has SIGINT ignored: give it back
SIGINT_DFL=(python3 -c 'import signal,os,sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])')
"${SIGINT_DFL[@]}" "$NOOK" images import big.raw --name big &
pid=$!
for _ in $(seq 200); do
	compgen -G "$NOOK_HOME/images/.tmp-*" >/dev/null && break
	sleep 0.05
done
if compgen -G "$NOOK_HOME/images/.tmp-*" >/dev/null; then
	ok "the import has its staging directory"
	kill -INT $pid
	wait $pid
	rc=$?
	check "  SIGINT ends it as SIGINT (exit 130, got $rc)" test "$rc" = 130
	check "  and leaves no images/.tmp-*" test -z "$(compgen -G "$NOOK_HOME/images/.tmp-*")"
else
	wait $pid
	fail "the import has its staging directory" "$(ls -a "$NOOK_HOME/images")"
fi
rm -f big.raw

# --- SIGKILL leaves what the next command of the directory removes
true & dead=$!
wait $dead
mkdir -p "$NOOK_HOME/images/.tmp-$dead-AbCdEf" "$NOOK_HOME/images/.tmp-$$-AbCdEf"
echo x > "$NOOK_HOME/images/.tmp-$dead-AbCdEf/disk.raw"
mkdir -p "$NOOK_HOME/images/.downloads"
: > "$NOOK_HOME/images/.downloads/0123456789abcdef.part"
: > "$NOOK_HOME/images/.downloads/0123456789abcdef.meta"
: > "$NOOK_HOME/images/.downloads/fedcba9876543210.meta"
mkdir -p "$NOOK_HOME/vms/half" "$NOOK_HOME/vms/whole"
echo key > "$NOOK_HOME/vms/half/id_ed25519"
echo '{}' > "$NOOK_HOME/vms/whole/vm.json"
expect_rc "prune --dry-run" 0 "$NOOK" local prune --dry-run
contains "  lists the dead import's stage" "$OUT" "would remove temp $NOOK_HOME/images/.tmp-$dead-AbCdEf"
contains "  lists the partial download" "$OUT" "0123456789abcdef.part"
contains "  and the record of its file" "$OUT" "0123456789abcdef.meta"
contains "  and a record with no part" "$OUT" "fedcba9876543210.meta"
contains "  lists the half-made VM directory" "$OUT" "would remove vm-dir $NOOK_HOME/vms/half"
case $OUT in *"tmp-$$-"*) fail "  a live pid's stage is not listed" ;; *) ok "  a live pid's stage is not listed" ;; esac
case $OUT in *whole*) fail "  a VM with a record is not listed" ;; *) ok "  a VM with a record is not listed" ;; esac
check "  removes nothing" test -d "$NOOK_HOME/images/.tmp-$dead-AbCdEf" -a -d "$NOOK_HOME/vms/half"
expect_rc "prune --json" 0 "$NOOK" local prune --dry-run --json
check "  is JSON with five items" test "$(printf '%s' "$OUT" |
	python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["dry_run"], len(d["items"]))')" = "True 5"
# a pull of this URL holds its .part locked: prune leaves it
exec 9>>"$NOOK_HOME/images/.downloads/0123456789abcdef.part"
flock 9
expect_rc "prune" 0 "$NOOK" local prune
exec 9>&-
check "  removed the dead import's stage" test ! -e "$NOOK_HOME/images/.tmp-$dead-AbCdEf"
check "  kept the live one's" test -d "$NOOK_HOME/images/.tmp-$$-AbCdEf"
check "  kept the download a pull holds" test -e "$NOOK_HOME/images/.downloads/0123456789abcdef.part"
check "  and its record" test -e "$NOOK_HOME/images/.downloads/0123456789abcdef.meta"
check "  removed the record with no part" test ! -e "$NOOK_HOME/images/.downloads/fedcba9876543210.meta"
check "  removed the half-made VM directory" test ! -e "$NOOK_HOME/vms/half"
check "  kept the whole VM" test -e "$NOOK_HOME/vms/whole/vm.json"
rm -rf "$NOOK_HOME/images/.tmp-$$-AbCdEf" "$NOOK_HOME/vms/whole"
expect_rc "prune again: the part nobody holds now goes" 0 "$NOOK" local prune
check "  gone, with its record" test ! -e "$NOOK_HOME/images/.downloads/0123456789abcdef.part" -a ! -e "$NOOK_HOME/images/.downloads/0123456789abcdef.meta"
expect_rc "prune with nothing left" 0 "$NOOK" local prune
contains "  says so" "$OUT" "nothing to prune"

# the next import sweeps a dead import's stage itself
mkdir -p "$NOOK_HOME/images/.tmp-$dead-XyZxYz"
head -c 2M /dev/zero > small.raw
expect_rc "an import" 0 "$NOOK" images import small.raw --name small
check "  removed the stage a killed import left" test ! -e "$NOOK_HOME/images/.tmp-$dead-XyZxYz"
# ... and the next cidata build the temporary file a killed one left
printf '#cloud-config\n{}\n' > ud.yaml
: > ".seed.iso.$dead-QwErTy"
expect_rc "a cidata build" 0 "$NOOK" cidata build -o seed.iso --user-data ud.yaml
check "  removed the temporary file a killed build left" test ! -e ".seed.iso.$dead-QwErTy"

# a failed pull leaves no empty .part
expect_rc "a pull from nowhere fails" 1 "$NOOK" images pull http://127.0.0.1:9/x.qcow2 --name x --insecure
check "  and leaves no .part" test -z "$(ls -A "$NOOK_HOME/images/.downloads")"

# --- an orphaned QEMU: its VM directory gone, it still runs
mkdir -p "$NOOK_HOME/run/ghost"
qemu-system-x86_64 -M none -display none -nodefaults \
	-chardev "socket,id=qmp0,path=$NOOK_HOME/run/ghost/qmp.sock,server=on,wait=off" \
	-mon chardev=qmp0,mode=control >/dev/null 2>&1 &
GHOST=$!
# a process that merely mentions the socket is not a QEMU of ours
python3 -c "import time; time.sleep(300)" "socket,id=qmp0,path=$NOOK_HOME/run/ghost/qmp.sock,server=on,wait=offX" &
DECOY=$!
for _ in $(seq 200); do [ -S "$NOOK_HOME/run/ghost/qmp.sock" ] && break; sleep 0.05; done
expect_rc "prune --dry-run finds the orphaned QEMU" 0 "$NOOK" local prune --dry-run
contains "  by its VM and pid" "$OUT" "would remove qemu VM ghost (pid $GHOST)"
case $OUT in *"pid $DECOY"*) fail "  not the decoy" ;; *) ok "  not the decoy" ;; esac
check "  and leaves it running" kill -0 "$GHOST"
expect_rc "prune ends it" 0 "$NOOK" local prune
contains "  says so" "$OUT" "removed qemu VM ghost (pid $GHOST)"
sleep 0.2
if [ "$(ps -o stat= -p "$GHOST" 2>/dev/null | cut -c1)" = Z ] || ! kill -0 "$GHOST" 2>/dev/null; then
	ok "  the QEMU is gone"
else
	fail "  the QEMU is gone"
fi
check "  the decoy lives on" kill -0 "$DECOY"
kill "$DECOY"
check "  its runtime directory is gone" test ! -e "$NOOK_HOME/run/ghost"
kill -9 "$GHOST" 2>/dev/null
wait "$GHOST" 2>/dev/null
GHOST=

# --- a VM whose vm.json was removed by hand while its QEMU runs: nothing
# else reaches it, so prune ends that QEMU and removes the directory
qemu-img create -q -f raw blank0.img 64M
expect_rc "a VM norec" 0 "$NOOK" local start norec --image blank0.img --no-wait \
	--memory 128M --cpus 1 --accel tcg
nqpid=$(cat "$NOOK_HOME/run/norec/qemu.pid")
rm "$NOOK_HOME/vms/norec/vm.json"
expect_rc "  its record removed by hand: prune --dry-run" 0 "$NOOK" local prune --dry-run
contains "  lists its QEMU" "$OUT" "would remove qemu VM norec (pid $nqpid)"
contains "  and its directory, as the prune will remove it" "$OUT" "$NOOK_HOME/vms/norec"
check "  and leaves both" test -e "$NOOK_HOME/vms/norec/disk.qcow2" -a "$(ps -o stat= -p "$nqpid" | cut -c1)" != Z
expect_rc "  prune" 0 "$NOOK" local prune
contains "  ends its QEMU" "$OUT" "removed qemu VM norec (pid $nqpid)"
contains "  and removes its directory" "$OUT" "$NOOK_HOME/vms/norec"
check "  the QEMU is gone" ended "$nqpid"
check "  so is the directory" test ! -e "$NOOK_HOME/vms/norec"

# --- a start waiting for a guest that never comes (a blank disk boots
# nothing): a plain stop is refused (busy), stop --force wins, and the
# start says it was stopped
qemu-img create -q -f raw blank.img 64M
qemu_of() { cat "$NOOK_HOME/run/$1/qemu.pid" 2>/dev/null; }
# wait_qemu VM: until the start in the background (its stdout start.out,
# its own) says VM's QEMU runs. The pid file comes earlier, while QEMU
# still sets itself up (slow on a busy host): a stop then is one of a
# QEMU starting, not of a start waiting for its guest
wait_qemu() {
	for _ in $(seq 600); do grep -qs "VM $1: QEMU running" start.out && break; sleep 0.05; done
}
"$NOOK" local start w1 --image blank.img --memory 256M --cpus 1 --accel tcg \
	--timeout 120 >start.out 2>start.err &
spid=$!
wait_qemu w1
qpid=$(qemu_of w1)
check "the start launched QEMU" test -n "$qpid"
expect_rc "stop while a start waits: busy" 1 "$NOOK" local stop w1
contains "  says busy" "$ERR" "busy"
t0=$(date +%s)
expect_rc "stop --force wins over the waiting start" 0 timeout 60 "$NOOK" local stop w1 --force
check "  at once" test $(($(date +%s) - t0)) -lt 15
contains "  says what it did" "$OUT" "stopped"
wait $spid
rc=$?
check "  the start fails (exit $rc)" test "$rc" = 1
contains "  saying it was stopped while starting" "$(cat start.err)" "stopped while starting"
check "  QEMU is gone" test -z "$(ps -o stat= -p "$qpid" 2>/dev/null | grep -v Z)"
expect_rc "  status" 0 "$NOOK" local status w1 --json
contains "  says stopped" "$OUT" '"state": "stopped"'

# --- stop --force just as the start's QEMU comes up (a QEMU in front of
# the real one runs the stop once QEMU has daemonized, before the start
# reads its pid): the start says it was stopped, not that QEMU exited
mkdir -p "$WORK/bin"
cat > "$WORK/bin/qemu-system-x86_64" <<'WRAP'
#!/usr/bin/env bash
real=/usr/bin/qemu-system-x86_64
case " $* " in *" -daemonize "*) ;; *) exec "$real" "$@" ;; esac
"$real" "$@" || exit
"$NOOK" local stop w1 --force > "$WORK/stop.out" 2>&1
WRAP
chmod +x "$WORK/bin/qemu-system-x86_64"
NOOK=$NOOK WORK=$WORK PATH="$WORK/bin:$PATH" expect_rc \
	"a stop --force as the start's QEMU comes up: the start fails" 1 \
	"$NOOK" local start w1 --timeout 120
contains "  the stop ended it" "$(cat "$WORK/stop.out")" "while another nook command held the VM"
contains "  the start says it was stopped" "$ERR" "VM w1: stopped as its QEMU started (nook local stop --force)"
check "  and nothing of QEMU exiting" test "${ERR/exited}" = "$ERR"
expect_rc "  status" 0 "$NOOK" local status w1 --json
contains "  says stopped" "$OUT" '"state": "stopped"'

# --- SIGTERM while QEMU comes up (a QEMU in front of the real one sends
# it to the start, then runs): the start waits for QEMU, records the VM
# running, says it goes on booting, and ends as SIGTERM would
mkdir -p "$WORK/bin2"
cat > "$WORK/bin2/qemu-system-x86_64" <<'WRAP'
#!/usr/bin/env bash
real=/usr/bin/qemu-system-x86_64
case " $* " in *" -daemonize "*) ;; *) exec "$real" "$@" ;; esac
kill -TERM "$PPID"
sleep 0.5
exec "$real" "$@"
WRAP
chmod +x "$WORK/bin2/qemu-system-x86_64"
PATH="$WORK/bin2:$PATH" expect_rc "SIGTERM as QEMU comes up: the start ends with it" 143 \
	"$NOOK" local start w1 --timeout 120
contains "  saying the VM goes on booting" "$ERR" "interrupted: VM w1 goes on booting in the background"
check "  QEMU runs" kill -0 "$(qemu_of w1)"
check "  recorded running" test "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"]["status"])' "$NOOK_HOME/vms/w1/vm.json")" = running
expect_rc "  and a stop stops it" 0 "$NOOK" local stop w1 --force

# --- a QEMU whose launch hangs (as on a disk on a dead network file
# system; a QEMU in front of the real one never returns): the start's
# --timeout bounds the wait for it, not the 2 minutes a launch may take
mkdir -p "$WORK/bin3"
cat > "$WORK/bin3/qemu-system-x86_64" <<'WRAP'
#!/usr/bin/env bash
case " $* " in *" -daemonize "*) ;; *) exec /usr/bin/qemu-system-x86_64 "$@" ;; esac
exec sleep 600
WRAP
chmod +x "$WORK/bin3/qemu-system-x86_64"
t0=$SECONDS
PATH="$WORK/bin3:$PATH" expect_rc "a QEMU whose launch hangs: the start fails" 1 \
	timeout 60 "$NOOK" local start w1 --timeout 3
check "  within its --timeout, not 2 minutes ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -lt 30
contains "  saying so" "$ERR" "QEMU did not finish starting within 3 s (--timeout); it was killed"
expect_rc "  status" 0 "$NOOK" local status w1 --json
contains "  says stopped" "$OUT" '"state": "stopped"'

# --- a launch that hangs once QEMU has daemonized (a QEMU in front of
# the real one runs it, which writes its pid file and runs on its own,
# then never returns): the start kills that QEMU too, as it says, and
# the VM is stopped, nothing of it left running
cat > "$WORK/bin3/qemu-system-x86_64" <<'WRAP'
#!/usr/bin/env bash
real=/usr/bin/qemu-system-x86_64
case " $* " in *" -daemonize "*) ;; *) exec "$real" "$@" ;; esac
"$real" "$@" || exit
cp "$NOOK_HOME/run/w1/qemu.pid" "$WORK/daemonized.pid"
exec sleep 600
WRAP
rm -f "$WORK/daemonized.pid"
WORK=$WORK PATH="$WORK/bin3:$PATH" expect_rc \
	"a launch that hangs once QEMU has daemonized: the start fails" 1 \
	timeout 60 "$NOOK" local start w1 --timeout 5
contains "  saying QEMU was killed" "$ERR" "QEMU did not finish starting within 5 s (--timeout); it was killed"
dpid=$(cat "$WORK/daemonized.pid" 2>/dev/null)
check "  the real QEMU had daemonized" test -n "$dpid"
check "  and it is gone" ended "${dpid:-0}"
check "  no QEMU of w1 left" test "$(pgrep -f -- "$NOOK_HOME/run/w1/qmp.sock" | wc -l)" = 0
expect_rc "  status" 0 "$NOOK" local status w1 --json
contains "  says stopped" "$OUT" '"state": "stopped"'
expect_rc "  list" 0 "$NOOK" local list --json
check "  says w1 stopped" test "$(python3 -c 'import json,sys; print([v["state"] for v in json.load(sys.stdin) if v["name"] == "w1"])' <<<"$OUT")" = "['stopped']"
check "  its pid file and sockets cleaned up" test ! -e "$NOOK_HOME/run/w1/qemu.pid" -a ! -e "$NOOK_HOME/run/w1/qmp.sock"
expect_rc "  a start then runs it" 0 "$NOOK" local start w1 --no-wait
expect_rc "  and a stop stops it" 0 "$NOOK" local stop w1 --force

# --- a slow launch (8 s before QEMU is up) leaves the wait for the
# guest what is left of --timeout: S bounds the start from the launch,
# not the launch and then S more (the blank disk never gets ready)
cat > "$WORK/bin3/qemu-system-x86_64" <<'WRAP'
#!/usr/bin/env bash
case " $* " in *" -daemonize "*) sleep 8 ;; esac
exec /usr/bin/qemu-system-x86_64 "$@"
WRAP
t0=$SECONDS
PATH="$WORK/bin3:$PATH" expect_rc "a slow launch, then no ready guest: the start fails" 1 \
	timeout 60 "$NOOK" local start w1 --timeout 12
took=$((SECONDS - t0))
contains "  saying so" "$ERR" "not ready after 12 s"
check "  within its --timeout from the launch, not 8 s more ($took s)" test "$took" -lt 17
expect_rc "  and a stop stops it" 0 "$NOOK" local stop w1 --force

# --- ^C during a start: the VM goes on booting, and nook says so
rm -f start.out # (the job truncates it only once it runs)
"${SIGINT_DFL[@]}" "$NOOK" local start w1 --timeout 120 >start.out 2>start.err &
spid=$!
wait_qemu w1
qpid=$(qemu_of w1)
sleep 1
kill -INT $spid
wait $spid
rc=$?
check "^C ends the start as SIGINT (exit $rc)" test "$rc" = 130
contains "  saying the VM goes on booting" "$(cat start.err)" "interrupted: VM w1 goes on booting in the background"
contains "  and how to stop it" "$(cat start.err)" "nook local stop w1"
check "  QEMU runs on" kill -0 "$qpid"
check "  recorded running, not starting for good" test "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"]["status"])' "$NOOK_HOME/vms/w1/vm.json")" = running
expect_rc "  so a pause pauses it" 0 "$NOOK" local pause w1
expect_rc "  and a stop stops it" 0 "$NOOK" local stop w1 --force

# --- stop --force while a plain stop waits for a guest that never powers
# off: each says what ended QEMU, and no mark is left behind
expect_rc "a VM for a stop to wait on" 0 "$NOOK" local start w1 --no-wait
"$NOOK" local stop w1 --timeout 60 >stop.out 2>stop.err &
stpid=$!
for _ in $(seq 200); do locked w1 && break; sleep 0.05; done
expect_rc "  stop --force while the plain stop waits" 0 "$NOOK" local stop w1 --force
contains "  says another command held it, and reports" "$OUT" "while another nook command held the VM: a start, stop or suspend that holds it says what became of it, and 'nook local status w1' shows it"
wait $stpid
check "  the plain stop succeeds (exit $?)" test "$?" = 0
contains "  saying the forced stop ended QEMU, not the power button" "$(cat stop.out)" "QEMU was ended by 'nook local stop --force' meanwhile"
check "  and no mark is left" test ! -e "$NOOK_HOME/vms/w1/stop-forced"
expect_rc "delete" 0 "$NOOK" local delete w1

# --- stop --force at points through a suspend (the last as the save
# ends and QEMU quits, here): one story whatever the point. The suspend
# says what the VM is: stopped under it, or suspended with its save
# whole; no mark is left for a later command to misread
expect_rc "a VM to suspend under stops" 0 "$NOOK" local start w1 --no-wait
for dly in 0.5 0.9 1.0 1.05 1.1; do
	"$NOOK" local suspend w1 >sus.out 2>&1 &
	spid=$!
	sleep "$dly"
	"$NOOK" local stop w1 --force >/dev/null 2>&1
	wait $spid
	src=$?
	st=$("$NOOK" local status w1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
	case $st in
	suspended) check "  at $dly s: suspended, as the suspend says (exit $src)" test "$src" = 0 ;;
	stopped) check "  at $dly s: stopped, as the suspend says" grep -q "stopped while it was being suspended" sus.out ;;
	*) fail "  at $dly s: $st" ;;
	esac
	check "  and no mark is left" test ! -e "$NOOK_HOME/vms/w1/stop-forced"
	"$NOOK" local start w1 --no-wait >/dev/null 2>&1 # resumes, or boots
done
expect_rc "delete" 0 "$NOOK" local delete w1 --force

# --- two HOMEs under one XDG_RUNTIME_DIR (a script's HOME=$(mktemp -d)):
# each its own runtime directory, so one's prune, status or stop never
# touches the other's VM of the same name
two() { env -u NOOK_HOME HOME="$WORK/$1" XDG_RUNTIME_DIR="$WORK/xrt" "$NOOK" "${@:2}"; }
mkdir -p "$WORK/hA" "$WORK/hB" "$WORK/xrt"
chmod 700 "$WORK/xrt"
expect_rc "home A starts v1" 0 two hA local start v1 --image blank.img \
	--memory 256M --cpus 1 --accel tcg --no-wait
apid=$(find "$WORK/xrt" -name qemu.pid -path '*/v1/*' -exec cat {} + 2>/dev/null)
check "  its QEMU runs" kill -0 "${apid:-0}"
expect_rc "home B's prune" 0 two hB local prune
case $OUT in *"v1"*) fail "  leaves home A's VM alone" "$OUT" ;; *) ok "  leaves home A's VM alone" ;; esac
check "  A's QEMU runs on" test "$(ps -o stat= -p "${apid:-0}" | cut -c1)" != Z -a -n "$(ps -o stat= -p "${apid:-0}")"
expect_rc "home B's status of v1" 1 two hB local status v1
contains "  knows no v1" "$ERR" "no VM named 'v1'"
expect_rc "home A's status" 0 two hA local status v1 --json
contains "  running" "$OUT" '"state": "running"'
expect_rc "home A deletes v1" 0 two hA local delete v1 --force

# --- nook started with fd 0, 1 or 2 closed: the first file it opens (a
# cluster's lock, held while each node is stopped or checked) must not
# take the closed fd, or what is printed goes into the file
expect_rc "a cluster fd of two" 0 "$NOOK" local start fd --nodes 2 \
	--image blank.img --memory 256M --cpus 1 --accel tcg --no-wait
# stray WORDS: the files under NOOK_HOME that hold nook's WORDS (not the
# image store: a disk there may hold any text)
stray() { grep -rlaF --exclude-dir=images "$1" "$NOOK_HOME"; }
for closed in ">&-" "2>&-" "<&- >&-" ">&- 2>&-" "<&- >&- 2>&-"; do
	# (a start of the running cluster, changed, says on stderr that it
	# changes nothing in its nodes)
	expect_rc "start of the running cluster ($closed)" 0 \
		bash -c '"$0" local start fd --memory 300M --no-wait '"$closed" "$NOOK"
	check "  no file got its words" test -z "$(stray "VM fd-1 is running, so")$(stray "cluster fd: every node")"
	expect_rc "stop of the cluster ($closed)" 0 \
		bash -c '"$0" local stop fd --force '"$closed" "$NOOK"
	check "  no file got its output" test -z "$(stray "VM fd-1 stopped:")"
	"$NOOK" local start fd --no-wait >/dev/null 2>&1
done
expect_rc "the cluster's delete" 0 "$NOOK" local delete fd --force

# --- deletes racing a list: a VM removed while list reads the others is
# not listed as broken ("no VM named") nor crashed. A race: the code
# before this check failed it in two runs of three
races=(r1 r2 r3 r4 r5)
( while :; do
	"$NOOK" local list --json 2>/dev/null | python3 -c '
import json, sys
for v in json.load(sys.stdin):
    if v.get("state") == "crashed" or "error" in v:
        print(v.get("name"), v.get("state"), v.get("error"))'
done ) >race.log &
lister=$!
for _ in 1 2 3 4; do
	for v in "${races[@]}"; do
		"$NOOK" local start "$v" --image blank.img --memory 256M \
			--cpus 1 --accel tcg --no-wait >/dev/null 2>&1
	done
	pids=()
	for v in "${races[@]}"; do
		"$NOOK" local delete "$v" --force >/dev/null 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}"
done
kill "$lister"
wait "$lister" 2>/dev/null
if [ ! -s race.log ]; then ok "a list racing deletes shows none broken or crashed"
else fail "a list racing deletes shows none broken or crashed" "$(sort race.log | uniq -c)"; fi
left=$("$NOOK" local list --json |
	json '" ".join(v["name"] for v in d if v["name"] in "r1 r2 r3 r4 r5".split())')
check "  and the deletes left none of them" [ -z "$left" ]

finish

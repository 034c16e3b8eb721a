#!/usr/bin/env bash
# nook shell, sync and ssh-config with a NOOK_HOME holding a space and a
# quote, without a guest OS. A QEMU that boots nothing makes the VM run; a
# fake ssh first on PATH stands in for the guest: it asks the real ssh -G
# what the options it got configure, then runs the remote command in a
# local "home" as sshd would (its words joined with spaces, through sh -c).
# The real host rsync runs at both ends, so rsync's own -e splitter and
# --protect-args are what is tested.
NOOK=$1
. "$(dirname "$0")/lib.sh"
export NOOK_HOME="$WORK/it's a home"
cleanup() {
	"$NOOK" local delete q1 --force >/dev/null 2>&1
	"$NOOK" local delete qc --force >/dev/null 2>&1
	[ -n "${BANNER:-}" ] && kill "$BANNER"
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
qemu-img create -q -f raw blank.img 64M
mkdir -p bin guest/.ssh
echo key >guest/.ssh/authorized_keys
REAL_SSH=$(command -v ssh)
export REAL_SSH WORK NOOK
cat >bin/ssh <<'EOF'
#!/bin/bash
# A stand-in for ssh into a guest whose home is $WORK/guest.
# a master's control commands (-O check, -O exit) go to the real ssh
case " $* " in *" -O "*) exec "$REAL_SSH" "$@" ;; esac
printf '%s\n' "$@" >"$WORK/ssh.argv"
pre=()
while [ $# -gt 0 ]; do
	case $1 in
	-[FoOlpi]) pre+=("$1" "$2"); shift 2 ;;
	-*) pre+=("$1"); shift ;;
	*) host=$1; shift; break ;;
	esac
done
[ "${1:-}" = -- ] && shift
"$REAL_SSH" "${pre[@]}" -G "$host" >"$WORK/ssh.G" 2>&1 || exit 255
[ $# -eq 0 ] && exit 0
# a node's own home when the test made one ($WORK/guest-nook-NODE); the
# rsync of the node KILL_RSYNC names (nook-NODE) killed
home=$WORK/guest
for o in "${pre[@]}"; do
	case $o in HostKeyAlias=*) alias=${o#*=} alias=${alias//\"/} ;; esac
done
[ -d "$WORK/guest-${alias:-}" ] && home=$WORK/guest-$alias
if [ -n "${KILL_RSYNC:-}" ] && [ "${alias:-}" = "$KILL_RSYNC" ]; then
	case "$*" in *rsync*) kill -KILL "$PPID"; exit 255 ;; esac
fi
# the VM of a node STOP_VM names (nook-NODE, several apart by spaces)
# killed as its rsync starts in the guest (once the file STOP_VM_IF names
# is there, when it is set): its connection closed, as a real ssh's is
if case " ${STOP_VM:-} " in *" ${alias:-} "*) true ;; *) false ;; esac &&
   { [ -z "${STOP_VM_IF:-}" ] || [ -e "$STOP_VM_IF" ]; }; then
	case "$*" in *rsync*)
		vm=${alias#nook-}
		pid=$("$NOOK" local status "$vm" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"] or "")')
		[ -n "$pid" ] && kill -KILL "$pid"
		for _ in $(seq 100); do
			"$NOOK" local status "$vm" --json | grep -q '"pid": *null' && break
			sleep 0.1
		done
		echo "Connection to 127.0.0.1 closed by remote host." >&2
		exit 255 ;;
	esac
fi
# once the file MODIFY_IF names is there: the file MODIFY_FILE names
# changes while an rsync's copy is under way (its guest end done, its
# host end not yet), and the flag goes
if [ -n "${MODIFY_IF:-}" ] && [ -e "$MODIFY_IF" ]; then
	case "$*" in *rsync*)
		(cd "$home" && SHELL=$WORK/bin/loginsh sh -c "$*")
		rc=$?
		echo late >"$MODIFY_FILE"
		rm -f "$MODIFY_IF"
		exit "$rc" ;;
	esac
fi
cd "$home" && SHELL=$WORK/bin/loginsh exec sh -c "$*"
EOF
# the guest user's shell: a login says where it is; -c runs a line
cat >bin/loginsh <<'EOF'
#!/bin/sh
if [ "${1:-}" = -c ]; then
	shift
	[ "${1:-}" = -- ] && shift
	exec sh -c "$@"
fi
echo "login shell in $(pwd)"
EOF
chmod +x bin/ssh bin/loginsh
export PATH="$WORK/bin:$PATH"

# g KEY: what the last ssh was configured with
g() { sed -n "s/^$1 //p" "$WORK/ssh.G"; }
# the paths ssh got are the VM's own files, under the odd NOOK_HOME
ssh_saw_vm() {
	local key kh
	key=$(g identityfile) kh=$(g userknownhostsfile)
	case $key in "$NOOK_HOME"/*) ;; *) fail "$1: key path" "$key"; return ;; esac
	if [ -f "$key" ] && [ -f "$kh" ] && [ -d "$(dirname "$(g controlpath)")" ] &&
		[ "$(g hostkeyalias)" = nook-q1 ]; then
		ok "$1"
	else
		fail "$1" "$(cat "$WORK/ssh.G")"
	fi
}

expect_rc "start a VM under a NOOK_HOME with a space and a quote" 0 \
	"$NOOK" local start q1 --image blank.img --no-wait --memory 256M \
	--cpus 1 --accel tcg
# The fake ssh stands in for the guest; this stands in for its sshd,
# whose banner nook asks for before a shell or a sync when no master is up
# (a booting VM's is waited for): the record's ssh port is moved to it.
python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
while True:
	c, _ = s.accept()
	try:
		c.sendall(b"SSH-2.0-OpenSSH_stand-in\r\n")
	except OSError:
		pass
	c.close()' >banner.port &
BANNER=$!
for _ in $(seq 100); do [ -s banner.port ] && break; sleep 0.1; done
# without it, every shell below would wait for the blank VM's sshd
check "the stand-in sshd listens" test -s banner.port || { finish; exit 1; }
# to_banner VM: VM's ssh port is the stand-in's
to_banner() {
	python3 - "$NOOK_HOME/vms/$1/vm.json" "$(cat banner.port)" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
	j = json.load(f)
j["ssh_port"] = int(sys.argv[2])
with open(sys.argv[1], "w") as f:
	json.dump(j, f)
EOF
}
to_banner q1
port=$("$NOOK" local status q1 --json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["ssh"]["port"])')

# ssh-config, read by plain ssh
"$NOOK" ssh-config q1 >cfg
check "ssh-config exits 0" test -s cfg
"$REAL_SSH" -G -F cfg nook-q1 >ssh.G 2>&1
ssh_saw_vm "plain ssh -F reads the stanza's paths back"
check "the stanza's port" test "$(g port)" = "$port"
check "the stanza's user" test "$(g user)" = debian
# --json: the stanza's settings, for a script (an inventory, an IDE)
expect_rc "ssh-config --json" 0 "$NOOK" ssh-config q1 --json
sj() { printf '%s' "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
check "  names the VM" test "$(sj name)" = q1
check "  its host, the stanza's HostKeyAlias" test "$(sj alias)" = "$(g hostkeyalias)"
check "  hostname" test "$(sj hostname)" = "$(g hostname)"
check "  port" test "$(sj port)" = "$(g port)"
check "  user" test "$(sj user)" = "$(g user)"
check "  identity file" test "$(sj identity_file)" = "$(g identityfile)"
check "  known hosts file" test "$(sj known_hosts_file)" = "$(g userknownhostsfile)"
check "  control path" test "$(sj control_path)" = "$(g controlpath)"
expect_rc "ssh-config --json of no VM" 1 "$NOOK" ssh-config nosuch --json
check "  the error as JSON, naming it" test "$(sj name): $(sj error)" = "nosuch: $ERR" -o "$(sj name): nook: $(sj error)" = "nosuch: $ERR"

# shell: the options and the command's words arrive intact
expect_rc "shell -- CMD" 0 "$NOOK" shell q1 -- printf '%s|' "a b" "it's" '$HOME'
check "the words came through" test "$OUT" = "a b|it's|\$HOME|"
# one word holding a blank is a shell line, as ssh would run it: the
# guest's shell expands it, runs its pipe; after --workdir's cd, whole
expect_rc "shell -- 'a shell line'" 0 "$NOOK" shell q1 -- 'cd / && pwd; echo "$HOME" | tr a-z A-Z'
check "  the guest's shell ran it" test "$OUT" = "$(printf '/\n%s' "$HOME" | tr a-z A-Z)"
expect_rc "shell --workdir DIR -- 'a shell line'" 0 "$NOOK" shell q1 --workdir /tmp -- 'pwd; echo x'
check "  in DIR" test "$OUT" = "$(printf '/tmp\nx')"
"$NOOK" shell q1 --workdir /nonexistent-nook -- 'false || echo ran' >line.out 2>&1
check "shell --workdir of no such directory -- 'a || b' fails (cd's status)" test $? -ne 0
check "  none of it ran" sh -c '! grep -q ran line.out'
ssh_saw_vm "ssh got the VM's paths from nook shell"

# shell --workdir without a command: a login shell there, on a terminal
script -qec '"$NOOK" shell q1 --workdir /tmp' /dev/null </dev/null >shell.out 2>&1
contains "shell --workdir runs a login shell in DIR" "$(cat shell.out)" "login shell in /tmp"
check "shell --workdir asks for a terminal (-tt)" grep -qx -- -tt ssh.argv
# a command typed at a terminal gets one (its hang-up ends it when the
# local side is killed); piped, none
script -qec '"$NOOK" shell q1 -- true' /dev/null </dev/null >shell.out 2>&1
check "shell -- CMD on a terminal asks for one (-tt)" grep -qx -- -tt "$WORK/ssh.argv"
"$NOOK" shell q1 -- true </dev/null >/dev/null 2>&1
check "shell -- CMD piped asks for none (-T)" grep -qx -- -T "$WORK/ssh.argv"

# sync through the real rsync, into a DEST with a space and a quote
mkdir -p "src it's/sub dir"
echo hello >"src it's/sub dir/f 'x'"
expect_rc "sync SRC DEST" 0 "$NOOK" sync q1 "src it's" "dest it's"
check "the file arrived" test "$(cat "guest/dest it's/sub dir/f 'x'" 2>&1)" = hello
ssh_saw_vm "ssh got the VM's paths from rsync's -e"
expect_rc "sync into ~/DIR" 0 "$NOOK" sync q1 "src it's" '~/t dir'
check "~/ is the home" test -f "guest/t dir/sub dir/f 'x'"
# a DEST that starts with ':' is a directory, not an rsync daemon's
# module ("HOST::DEST")
expect_rc "sync into :DIR" 0 "$NOOK" sync q1 "src it's" ':c dir'
check "  the files are in the home's :DIR" test -f "guest/:c dir/sub dir/f 'x'"
expect_rc "sync --delete into a directory" 0 "$NOOK" sync q1 "src it's" "dest it's" --delete
# its summary line into a full disk: no success (the line's own fflush()
# failed: its error must not be lost by the time nook exits)
expect_rc "sync into a full disk's stdout: fails" 1 sh -c '"$0" sync q1 "src it'"'"'s" full >/dev/full' "$NOOK"
contains "  says the output was not written" "$ERR" "nook: writing output"
# its rsync killed: said as a signal (as --all says it), not as an exit
# 137 of rsync's with "its message above" that there is none of
expect_rc "sync, its rsync killed: fails" 1 env KILL_RSYNC=nook-q1 "$NOOK" sync q1 "src it's" killed
check "  said as a signal" test "$ERR" = "nook: rsync failed (ended by SIGKILL)"

# --chown runs "sudo rsync" in the guest: a sudo that fails there (a
# password wanted, or none installed) is said as sudo's failure, not as
# an rsync missing from the guest (a stand-in sudo: the host has none)
cat >bin/sudo <<'EOF2'
#!/bin/sh
case ${FAKE_SUDO:-} in
nopass) echo "sudo: a password is required" >&2; exit 1 ;;
none) echo "sh: 1: sudo: not found" >&2; exit 127 ;;
esac
exec "$@"
EOF2
chmod +x bin/sudo
expect_rc "sync --chown, sudo wants a password: fails" 1 env FAKE_SUDO=nopass "$NOOK" sync q1 "src it's" owned --chown root:root
contains "  sudo's own words are shown" "$ERR" "sudo: a password is required"
contains "  says sudo in the guest failed" "$ERR" "--chown runs 'sudo rsync' in the guest"
check "  not as rsync missing" test "${ERR#*not installed}" = "$ERR"
expect_rc "sync --chown, no sudo in the guest: fails" 1 env FAKE_SUDO=none "$NOOK" sync q1 "src it's" owned --chown root:root
# (the guest shell's 127: rsync before 3.5 passes it on, 3.5 says 12)
contains "  says sudo or rsync may be missing in the guest" "$ERR" "sudo or rsync is"
contains "  and that --chown runs sudo there" "$ERR" "--chown runs 'sudo rsync'"
contains "  under the guest's own words" "$ERR" "sudo: not found"
expect_rc "sync --all --chown, sudo wants a password: fails" 12 env FAKE_SUDO=nopass "$NOOK" sync --all q1 "src it's" owned --chown root:root
contains "  names the VM and says sudo failed" "$ERR" "nook: q1: rsync failed (exit 12: --chown runs 'sudo rsync' in the guest"
expect_rc "sync --chown, sudo works" 0 "$NOOK" sync q1 "src it's" owned --chown root:root
check "  the file arrived" test -f "guest/owned/sub dir/f 'x'"
rm bin/sudo

# DEST that would wipe the home
expect_rc "an empty DEST is a usage error" 2 "$NOOK" sync q1 "src it's" ""
for d in . '~' / /home /home/debian ..; do
	expect_rc "--delete into '$d' is refused" 2 "$NOOK" sync q1 "src it's" "$d" --delete
	contains "says why ($d)" "$ERR" "refusing --delete"
done
check "the guest's .ssh is intact" test -f guest/.ssh/authorized_keys
check "nothing landed in the home itself" test ! -e "guest/sub dir"
# a DEST the guest's rsync would glob (it globs what --protect-args sends,
# and no quoting stops it): "/home/debia[n]" is the home, past the check
# of the home as typed
for d in '/home/debia[n]' 'dest*' 'x?y'; do
	expect_rc "a DEST with a wildcard ($d) is a usage error" 2 "$NOOK" sync q1 "src it's" "$d" --delete
	contains "  says why" "$ERR" "the guest's rsync would take it for a wildcard"
done
check "  the guest's .ssh is intact" test -f guest/.ssh/authorized_keys
# a '[' with no ']' after it is no wildcard (an escape sequence's CSI)
expect_rc "a DEST with a lone [" 0 "$NOOK" sync q1 "src it's" 'br[1'
check "  lands as typed" test -f "guest/br[1/sub dir/f 'x'"
mkdir -p wild/sub && printf 'name: q1\nsync:\n  - src: sub\n    dest: "d[1]"\n' >wild/nook.yaml
expect_rc "a sync rule whose dest has one: refused" 1 sh -c 'cd wild && "$1" sync' _ "$NOOK"
contains "  names the file and the rule" "$ERR" "nook.yaml: the sync rule of $WORK/wild/sub: its dest 'd[1]'"
# a directory named "~" is ~/~, not the home
mkdir -p tl/'~' && echo t >tl/'~'/tf
expect_rc "sync of a directory named ~" 0 sh -c 'cd tl && "$1" sync q1 "~"' _ "$NOOK"
check "  lands in ~/~" test -f guest/'~'/tf
check "  not in the home" test ! -e guest/tf

# an ssh master that does not answer: a stopped one is ended (by its
# verified pid) and a fresh connection made; a running one that is only
# slow is left to its sessions, and this connection goes without it
ctl=$(g controlpath)
fake_master() {
	rm -f "$ctl"
	# ssh titles its master "ssh: CONTROL [mux]" (not pyenv's shim: it
	# would re-exec under another argv[0])
	# it binds a temporary name, then links the control path to it, as
	# OpenSSH's master does
	bash -c 'exec -a "ssh: $1 [mux]" /usr/bin/python3 -c "
import os, socket, sys, time
tmp = sys.argv[1] + \".0123456789abcdef\"
s = socket.socket(socket.AF_UNIX); s.bind(tmp); s.listen(64)
os.link(tmp, sys.argv[1]); os.unlink(tmp)
time.sleep(600)" "$1"' _ "$ctl" &
	MASTER=$!
	for _ in $(seq 100); do [ -S "$ctl" ] && break; sleep 0.05; done
}
gone() { [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" = Z ] || ! kill -0 "$1" 2>/dev/null; }
fake_master
kill -STOP "$MASTER"
t0=$(date +%s)
expect_rc "shell with a stopped ssh master" 0 timeout 60 "$NOOK" shell q1 -- echo through
check "  gets through within 20 s" test $(($(date +%s) - t0)) -lt 20
check "  runs the command" test "$OUT" = through
contains "  says it ended the master" "$ERR" "ssh master (pid $MASTER) did not answer"
check "  the stopped master is gone" gone "$MASTER"
kill -9 "$MASTER" 2>/dev/null
wait "$MASTER" 2>/dev/null
fake_master
expect_rc "shell with a running master that does not answer" 0 timeout 60 "$NOOK" shell q1 -- echo through
contains "  goes without it" "$ERR" "connecting without it"
check "  ssh got no ControlPath" test -z "$(g controlpath)"
check "  the running master is left alone" kill -0 "$MASTER"
kill -STOP "$MASTER"
t0=$(date +%s)
expect_rc "stop with a stopped ssh master" 0 timeout 60 "$NOOK" local stop q1 --force
check "  within 20 s" test $(($(date +%s) - t0)) -lt 20
check "  the master is gone" gone "$MASTER"
kill -9 "$MASTER" 2>/dev/null
wait "$MASTER" 2>/dev/null
# a master by its name whose socket another program now has: the stop
# cannot tell which listener is at the path, and ends no one
expect_rc "q1 again" 0 "$NOOK" local start q1 --no-wait
fake_master
rm -f "$ctl"
python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(64); time.sleep(600)' "$ctl" &
OTHER=$!
for _ in $(seq 100); do [ -S "$ctl" ] && break; sleep 0.05; done
expect_rc "stop with another program on the master's socket" 0 timeout 60 "$NOOK" local stop q1 --force
contains "  says it is no master of ours" "$ERR" "is no ssh master of ours"
check "  the master by name alone is left alone" kill -0 "$MASTER"
check "  and so is the program" kill -0 "$OTHER"
kill -9 "$MASTER" "$OTHER" 2>/dev/null
wait "$MASTER" "$OTHER" 2>/dev/null

# --all over a cluster with a node whose record cannot be read: the
# others are served, that one is named and fails the command
expect_rc "a cluster qc of two" 0 "$NOOK" local start qc --nodes 2 \
	--image blank.img --no-wait --memory 256M --cpus 1 --accel tcg
to_banner qc-1
to_banner qc-2
expect_rc "shell --all qc -- 'a shell line'" 0 "$NOOK" shell --all qc -- 'echo one | tr o O; echo two'
check "  each node's shell ran it" test "$(echo "$OUT" | sort)" = "$(printf 'qc-1: One\nqc-1: two\nqc-2: One\nqc-2: two')"
# --json of both nodes' two outputs past the cap, of bytes that JSON
# writes 6 times as long (\u0001) or UTF-8 3 times (U+FFFD): each node's
# object is made and written in turn, never the whole array at once -
# what nook holds stays near what it kept (4 x 16 MiB), not several
# times that
maxrss() { python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)' "$@"; }
# (AddressSanitizer's shadow and quarantine hold ~1.5 times as much: the
# bound is doubled there, under what holding it all took without it, 835)
bound=300
ldd "$NOOK" 2>/dev/null | grep -q libasan && bound=600
for c in '\001' '\377'; do
	mib=$(maxrss "$NOOK" shell --all qc --json -- sh -c "head -c 16777300 /dev/zero | tr '\\0' '$c'; head -c 16777300 /dev/zero | tr '\\0' '$c' >&2")
	check "shell --all --json of 2 x 2 outputs of $c past 16 MiB: under $bound MiB ($mib)" test "$mib" -lt "$bound"
done
# a node's rsync killed: said as such, not as an exit status of rsync's
expect_rc "sync --all qc, qc-2's rsync killed: fails" 137 env KILL_RSYNC=nook-qc-2 "$NOOK" sync --all qc "src it's" killed
contains "  said as a signal" "$ERR" "nook: qc-2: rsync failed (ended by SIGKILL)"
check "  qc-1 got the files" test -f "guest/killed/sub dir/f 'x'"
# jnodes PYTHON [ARGS]: PYTHON asserts of stdout's JSON, d
jnodes() { python3 -c 'import json, sys
d = json.loads(sys.argv[1]); exec(sys.argv[2])' "$OUT" "$@"; }
# sync --all --json into both nodes (each its own home): an object per
# node in order, rsync's status and outputs, no summary line
mkdir -p guest-nook-qc-1 guest-nook-qc-2
expect_rc "sync --all qc --json" 0 "$NOOK" sync --all qc --json "src it's" both
check "  both got the files" test -f "guest-nook-qc-1/both/sub dir/f 'x'" -a -f "guest-nook-qc-2/both/sub dir/f 'x'"
check "  stdout is one array: each node's rsync, in order" jnodes 'assert [n["name"] for n in d] == ["qc-1", "qc-2"], d
for n in d:
	assert sorted(n) == ["exit", "name", "stderr", "stdout"], n
	assert n["exit"] == 0 and n["stderr"] == "", n
	assert "Number of regular files transferred: 1\n" in n["stdout"], n'
# a node's rsync killed: exit null, the signal, and the error said
expect_rc "sync --all qc --json, qc-2's rsync killed: fails" 137 env KILL_RSYNC=nook-qc-2 "$NOOK" sync --all qc --json "src it's" both
check "  qc-1 synced" jnodes 'assert d[0]["exit"] == 0 and "error" not in d[0], d'
check "  qc-2: exit null, signal KILL, the error as on stderr" jnodes 'assert {k: d[1][k] for k in ("exit", "signal", "error")} == {"exit": None, "signal": "KILL", "error": "rsync failed (ended by SIGKILL)"}, d
assert ("nook: qc-2: " + d[1]["error"]) in sys.argv[3], sys.argv[3]' "$ERR"
# the labelled lines into a full disk: said, and no success even when
# every node's command (one that shrugs off its EPIPE) exits 0
expect_rc "shell --all qc into a full disk: fails" 1 sh -c '"$0" shell --all qc -- sh -c "trap \"\" PIPE; echo hi 2>/dev/null; exit 0" >/dev/full' "$NOOK"
contains "  says the output was not written" "$ERR" "output: No space left on device"
rm -rf guest-nook-qc-1 guest-nook-qc-2
# stdout's reader that goes (head): the nodes' commands (here, what they
# started: the stand-in's own sh dies with nook) are hung up, not left to
# run on, and nook dies of SIGPIPE as a pipeline's writer does - whether
# it started with SIGPIPE ignored (an EPIPE to act on) or not
to_head() {
	bash -c "$1"'
"$0" shell --all qc -- sh -c "sleep 30 & echo \$! >>held; echo one; sleep 1; echo two; wait" | head -n1
exit "${PIPESTATUS[0]}"' "$NOOK"
}
for trap in "" "trap '' PIPE"; do
	rm -f guest/held
	t0=$(date +%s)
	expect_rc "shell --all qc | head -n1 ($trap): nook dies of SIGPIPE" 141 to_head "$trap"
	check "  within 20 s" test $(($(date +%s) - t0)) -lt 20
	check "  head got a node's line" test "${OUT%: one}" != "$OUT"
	check "  says nothing of the output it could not write" test "${ERR#*cannot write}" = "$ERR"
	# (the other's may not have started: nook ends as head does)
	check "  a node's command ran" test -s guest/held
	for p in $(cat guest/held); do
		check "  a node's command ($p) was hung up" ended "$p"
		kill "$p" 2>/dev/null
	done
done
# commands that print once and then wait, nothing more to write: the
# reader's going is seen all the same, not at the commands' end
to_head_quiet() {
	"$NOOK" shell --all qc -- sh -c "sleep 30 & echo \$! >>held; echo one; wait" | head -n1
	return "${PIPESTATUS[0]}"
}
rm -f guest/held
t0=$(date +%s)
expect_rc "shell --all qc | head -n1, commands that then wait: SIGPIPE" 141 to_head_quiet
check "  within 20 s, not the commands' 30" test $(($(date +%s) - t0)) -lt 20
check "  a node's command ran" test -s guest/held
for p in $(cat guest/held); do
	check "  a node's command ($p) was hung up" ended "$p"
	kill "$p" 2>/dev/null
done
# a stderr that fails (a full disk, a reader gone) does not stop stdout's
# lines: every node's arrives, and the status says some were lost
errout='echo err >&2; sleep 1; echo out'
expect_rc "shell --all qc, stderr into a full disk: fails" 1 sh -c '"$0" shell --all qc -- sh -c "$1" 2>/dev/full' "$NOOK" "$errout"
check "  each node's stdout arrived" test "$(sort <<<"$OUT" | tr '\n' ' ')" = "qc-1: out qc-2: out "
to_gone() { "$NOOK" shell --all qc -- sh -c "$errout" 2> >(exec head -c0); }
expect_rc "shell --all qc, stderr's reader gone: fails" 1 to_gone
check "  each node's stdout arrived" test "$(sort <<<"$OUT" | tr '\n' ' ')" = "qc-1: out qc-2: out "
# with stderr the same pipe as stdout, its EPIPE is stdout's reader gone
to_head2() {
	bash -c "$1"'
"$0" shell --all qc -- sh -c "sleep 30 & echo \$! >>held; echo one >&2; sleep 1; echo two >&2; wait" 2>&1 | head -n1
exit "${PIPESTATUS[0]}"' "$NOOK"
}
rm -f guest/held
expect_rc "shell --all qc 2>&1 | head -n1, stderr lines only: SIGPIPE" 141 to_head2 "trap '' PIPE"
for p in $(cat guest/held); do
	check "  a node's command ($p) was hung up" ended "$p"
	kill "$p" 2>/dev/null
done
# a non-blocking stdout (a parent's pipe, shared): a full pipe (EAGAIN)
# is waited on, not a line lost - every node's 20000 lines arrive
nonblock() { python3 -c 'import os, subprocess, sys, time
r, w = os.pipe()
os.set_blocking(w, False)
p = subprocess.Popen(sys.argv[1:], stdout=w)
os.close(w)
time.sleep(2)  # the pipe fills meanwhile
out = b"".join(iter(lambda: os.read(r, 65536), b""))
sys.stdout.buffer.write(out)
sys.exit(p.wait())' "$@"; }
expect_rc "shell --all qc into a non-blocking pipe" 0 nonblock "$NOOK" shell --all qc -- seq 20000
check "  every line arrived" test "$(grep -c '^qc-[12]: [0-9]*$' <<<"$OUT")" = 40000
check "  each node's last" test "$(grep -c ': 20000$' <<<"$OUT")" = 2
# a node whose VM stops under its ssh (its connection closed): nook's
# line about it is labelled with the node's name as its other lines are,
# and says what happened (not "start it", from a hang-up tried)
mkdir -p guest-nook-qc-1 guest-nook-qc-2
stop_self='n=${PWD##*guest-nook-}; "$NOOK" local stop "$n" --force >/dev/null 2>&1; echo "Connection to 127.0.0.1 closed by remote host." >&2; exit 255'
expect_rc "shell --all qc, each node's VM stopped under it: ssh's 255" 255 "$NOOK" shell --all qc -- sh -c "$stop_self"
for n in qc-1 qc-2; do
	contains "  $n's ssh line labelled" "$ERR" "$n: Connection to 127.0.0.1 closed"
	contains "  $n's stop said, labelled" "$ERR" "nook: $n: the VM is stopped now: it stopped while ssh was connected"
done
check "  every line of stderr labelled" test -z "$(grep -v '^\(nook: \)\?qc-[12]: ' <<<"$ERR")"
expect_rc "qc up again" 0 "$NOOK" local start qc --no-wait
to_banner qc-1
to_banner qc-2
expect_rc "shell --all qc --json, each VM stopped under it" 255 "$NOOK" shell --all qc --json -- sh -c "$stop_self"
check "  each node's error says its VM stopped, as stderr does" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
for n in d:
    assert n["exit"] == 255, n
    assert n["error"] == "the VM is stopped now: it stopped while ssh was connected", n
    assert ("nook: %s: %s" % (n["name"], n["error"])) in sys.argv[2], sys.argv[2]' "$OUT" "$ERR"
rm -rf guest-nook-qc-1 guest-nook-qc-2
expect_rc "qc again" 0 "$NOOK" local start qc --no-wait
to_banner qc-1
to_banner qc-2
echo '{' >"$NOOK_HOME/vms/qc-2/vm.json"
expect_rc "shell --all qc, qc-2 broken: fails" 1 "$NOOK" shell --all qc -- echo hi
check "  qc-1 ran it" test "$OUT" = "qc-1: hi"
contains "  names qc-2 and the way out" "$ERR" "node qc-2's record cannot be read (said above); 'nook local delete qc-2 --force' removes it"
contains "  with what is wrong" "$ERR" "qc-2/vm.json"
# --json: an object per node in order, the broken one's its error; the
# exit status as without it
expect_rc "shell --all qc --json, qc-2 broken: fails" 1 "$NOOK" shell --all qc --json -- echo hi
check "  stdout is one array: qc-1 ran it" jnodes 'assert d[0] == {"name": "qc-1", "exit": 0, "stdout": "hi\n", "stderr": ""}, d'
check "  qc-2's error, as on stderr" jnodes 'assert d[1:] == [{"name": "qc-2", "error": d[1]["error"]}], d
assert d[1]["error"].startswith("node qc-2\x27s record cannot be read (said above); \x27nook local delete qc-2 --force\x27 removes it ("), d
assert "qc-2/vm.json" in d[1]["error"], d'
contains "  still said on stderr" "$ERR" "node qc-2's record cannot be read"
expect_rc "shell --all qc --json: the highest status" 3 "$NOOK" shell --all qc --json -- sh -c "printf 'a\\377b\\nno end'; echo err >&2; exit 3"
check "  each output apart, as printed, not UTF-8 as U+FFFD" jnodes 'assert d[0] == {"name": "qc-1", "exit": 3, "stdout": "a\ufffdb\nno end", "stderr": "err\n"}, d'
# (the stand-in ssh runs the command's sh: its $PPID is the "ssh")
expect_rc "shell --all qc --json: a node's ssh killed" 143 "$NOOK" shell --all qc --json -- sh -c 'echo bye; kill -TERM $PPID'
check "  exit null, the signal named" jnodes 'assert d[0] == {"name": "qc-1", "exit": None, "signal": "TERM", "stdout": "bye\n", "stderr": ""}, d'
# a node whose ssh cannot be started at all: why, in its object
# (no ssh on PATH)
mkdir -p nossh
expect_rc "shell --all qc --json, ssh not found: fails" 1 env PATH="$WORK/nossh" "$NOOK" shell --all qc --json -- echo hi
check "  qc-1's object says why, as stderr does" jnodes 'assert d[0] == {"name": "qc-1", "error": sys.argv[3]}, d' "qc-1: cannot run ssh: No such file or directory"
contains "  stderr names the node" "$ERR" "nook: qc-1: cannot run ssh: No such file or directory"
# stdout that cannot be written (a full disk): said, as a labelled
# line's failed write is, since the status may well be a node's
expect_rc "shell --all qc --json into a full disk: a node's status" 3 sh -c '"$0" shell --all qc --json -- sh -c "exit 3" >/dev/full' "$NOOK"
contains "  says the JSON was not written" "$ERR" "nook: cannot write the JSON of qc's nodes: No space left on device"
expect_rc "shell --json without --all: a usage error" 2 "$NOOK" shell qc --json -- echo hi
contains "  says --json goes with --all" "$ERR" "--json goes with --all"
expect_rc "shell --all --json of no such cluster or VM" 1 "$NOOK" shell --all nosuch --json -- echo hi
check "  the error as JSON, naming it" jnodes 'assert d == {"name": "nosuch", "error": sys.argv[3]}, d' "${ERR#nook: }"
expect_rc "sync --all qc, qc-2 broken: fails" 1 "$NOOK" sync --all qc "src it's" all
check "  qc-1 got the files" test -f "guest/all/sub dir/f 'x'"
contains "  says one of two synced" "$OUT" "synced 1 of 2 nodes"
contains "  names qc-2 and the way out" "$ERR" "node qc-2's record cannot be read (said above); 'nook local delete qc-2 --force' removes it"
# an rsync that cannot be started (none on PATH) is said so under the
# node's name, not as an rsync that exited 1 ("syntax or usage error")
expect_rc "sync --all qc, rsync not found: fails" 1 env PATH="$WORK/nossh" "$NOOK" sync --all qc "src it's" all
contains "  names qc-1 and why" "$ERR" "nook: qc-1: cannot run rsync: No such file or directory"
check "  not as an rsync that failed" test "${ERR#*rsync failed}" = "$ERR"
# --json: the same, a node's object each
expect_rc "sync --all qc --json, qc-2 broken: fails" 1 "$NOOK" sync --all qc --json "src it's" jall
check "  qc-1 got the files" test -f "guest/jall/sub dir/f 'x'"
check "  stdout is one array: qc-1's rsync worked" jnodes 'assert d[0]["name"] == "qc-1" and d[0]["exit"] == 0 and "error" not in d[0], d'
check "  qc-2's error, as on stderr" jnodes 'assert d[1:] == [{"name": "qc-2", "error": d[1]["error"]}], d
assert d[1]["error"].startswith("node qc-2\x27s record cannot be read (said above); \x27nook local delete qc-2 --force\x27 removes it ("), d
assert "qc-2/vm.json" in d[1]["error"], d'
contains "  still said on stderr" "$ERR" "node qc-2's record cannot be read"
# a failed rsync (DEST's parent missing): its status, what stderr says
# of it, and rsync's own words
expect_rc "sync --all qc --json, an rsync that fails: its status" 11 "$NOOK" sync --all qc --json "src it's" no/such/dir
check "  qc-1: exit, the error as on stderr, rsync's stderr" jnodes 'n = d[0]
assert n["exit"] == 11 and n["error"].startswith("rsync failed (exit 11: error in file I/O in the guest"), d
assert ("nook: qc-1: " + n["error"]) in sys.argv[3], sys.argv[3]
assert "No such file or directory" in n["stderr"], d' "$ERR"
expect_rc "sync --all qc --json, rsync not found: fails" 1 env PATH="$WORK/nossh" "$NOOK" sync --all qc --json "src it's" jall
check "  qc-1's object says why, as stderr does" jnodes 'assert d[0] == {"name": "qc-1", "error": sys.argv[3]}, d' "qc-1: cannot run rsync: No such file or directory"
expect_rc "sync --json without --all: a usage error" 2 "$NOOK" sync qc --json "src it's" jall
contains "  says --json goes with --all" "$ERR" "--json goes with --all"
check "  the error as JSON" jnodes 'assert d["usage"] is True and "--json goes with --all" in d["error"], d'
expect_rc "sync --all --json --watch: a usage error" 2 "$NOOK" sync --all qc --json --watch "src it's" jall
contains "  says why" "$ERR" "--watch copies again and again"
check "  the error as JSON" jnodes 'assert d["usage"] is True and "--watch" in d["error"], d'
expect_rc "sync --all --json of no such cluster or VM" 1 "$NOOK" sync --all nosuch --json "src it's" jall
check "  the error as JSON, naming it" jnodes 'assert d == {"name": "nosuch", "error": sys.argv[3]}, d' "${ERR#nook: }"
expect_rc "sync --all --json, --delete into the home refused" 2 "$NOOK" sync --all qc --json "src it's" . --delete
check "  the one error object, as on stderr" jnodes 'assert d["error"].startswith("refusing --delete into \x27.\x27") and ("nook: " + d["error"]) in sys.argv[3], d' "$ERR"

# a node whose VM is killed during the copy: said as the VM stopped, as
# shell --all says it, not as rsync's exit 255 ("the ssh connection
# failed") or 12; the other node is copied into
# vstate VM: the state status gives VM
vstate() { "$NOOK" local status "$1" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["state"])'; }
# qc anew (its qc-2's record was broken above): both nodes running
qc_anew() {
	"$NOOK" local delete qc --force >/dev/null 2>&1
	expect_rc "$1" 0 "$NOOK" local start qc --nodes 2 --image blank.img \
		--no-wait --memory 256M --cpus 1 --accel tcg
	to_banner qc-1
	to_banner qc-2
}
# rsync_cut NAME COMMAND...: COMMAND exits as rsync does when its
# connection is cut (12 or 255, as rsync sees it end), into $RC
rsync_cut() {
	local n=$1
	shift
	"$@" >"$WORK/.out" 2>"$WORK/.err"
	RC=$?
	ERR=$(cat "$WORK/.err")
	OUT=$(cat "$WORK/.out")
	case $RC in
	12 | 255) ok "$n" ;;
	*) fail "$n" "exit $RC, wanted 12 or 255: $ERR" ;;
	esac
}
qc_anew "qc anew"
rsync_cut "sync --all qc, qc-2's VM killed during the copy: rsync's status" env STOP_VM=nook-qc-2 "$NOOK" sync --all qc "src it's" mid
st=$(vstate qc-2)
check "  qc-2's VM no longer runs ($st)" test "$st" != running
contains "  says qc-2's VM stopped, labelled" "$ERR" "nook: qc-2: the VM is $st now: the copy into it could not finish"
check "  not as an rsync that failed" test "${ERR#*rsync failed}" = "$ERR"
check "  qc-1 got the files" test -f "guest/mid/sub dir/f 'x'"
contains "  says one of two synced" "$OUT" "synced 1 of 2 nodes"
qc_anew "qc anew"
rsync_cut "sync --all qc --json, qc-2's VM killed during the copy: rsync's status" env STOP_VM=nook-qc-2 "$NOOK" sync --all qc --json "src it's" jmid
st=$(vstate qc-2)
check "  qc-2: its exit, the error as on stderr" jnodes 'n = d[1]
assert n["name"] == "qc-2" and n["exit"] == int(sys.argv[5]), d
assert n["error"] == "the VM is %s now: the copy into it could not finish" % sys.argv[4], d
assert ("nook: qc-2: " + n["error"]) in sys.argv[3], sys.argv[3]' "$ERR" "$st" "$RC"
check "  qc-1 synced" jnodes 'assert d[0]["exit"] == 0 and "error" not in d[0], d'
# watch_then_stop NAME STOP_VM SYNC-ARGS...: `nook sync --watch
# SYNC-ARGS` in the background; once its first round is done, the VMs
# STOP_VM names stop in the next round's copy (a change under SRC
# starts it); its output and "rc=STATUS" into watch.out
watch_then_stop() {
	local n=$1 stop=$2 watcher
	shift 2
	rm -f stop-now watch.out
	(STOP_VM=$stop STOP_VM_IF=$PWD/stop-now timeout 60 "$NOOK" sync --watch "$@" >watch.out 2>&1
	 echo "rc=$?" >>watch.out) &
	watcher=$!
	for _ in $(seq 150); do grep -q "^watching" watch.out 2>/dev/null && break; sleep 0.2; done
	contains "$n: the first round, then watching" "$(cat watch.out)" "watching"
	touch stop-now "src it's/new $RANDOM"
	wait "$watcher"
}
# --all --watch: a round in which every node's VM stopped ends the watch;
# while one runs, it goes on
qc_anew "qc for a watch"
watch_then_stop "sync --all qc --watch" "nook-qc-1 nook-qc-2" --all qc "src it's" wall
check "  every node's VM stopped in a later round: the watch ends" sh -c '! grep -qx "rc=124" "$1"' _ watch.out
check "  with a failure's status" sh -c 'grep -q "^rc=" "$1" && ! grep -qx "rc=0" "$1"' _ watch.out
contains "  says qc-1's VM stopped" "$(cat watch.out)" "nook: qc-1: the VM is"
contains "  says qc-2's VM stopped" "$(cat watch.out)" "nook: qc-2: the VM is"
"$NOOK" local delete qc --force >/dev/null 2>&1
# one VM killed during the copy: said as the VM stopped, and only that
expect_rc "q1 again" 0 "$NOOK" local start q1 --no-wait
to_banner q1
# --watch: a change made while a round's rsync runs makes another round
# (the watch is set before the copy, not after it)
mkdir -p wsrc && echo early >wsrc/f
rm -f mod-now watch.out
(MODIFY_IF=$PWD/mod-now MODIFY_FILE=$PWD/wsrc/f timeout 60 "$NOOK" sync --watch q1 wsrc wlate >watch.out 2>&1
 echo "rc=$?" >>watch.out) &
watcher=$!
for _ in $(seq 150); do grep -q "^watching" watch.out 2>/dev/null && break; sleep 0.2; done
touch mod-now wsrc/g
for _ in $(seq 50); do [ "$(cat guest/wlate/f 2>/dev/null)" = late ] && break; sleep 0.2; done
check "sync --watch: a change during a round's copy is copied by the next" test "$(cat guest/wlate/f 2>/dev/null)" = late
check "  the change was made during a round" test ! -e mod-now
pkill -TERM -P "$watcher" timeout
wait "$watcher"
expect_rc "sync q1, its VM killed during the copy: fails" 1 env STOP_VM=nook-q1 "$NOOK" sync q1 "src it's" mid
st=$(vstate q1)
check "  q1 no longer runs ($st)" test "$st" != running
contains "  says the VM stopped" "$ERR" "nook: VM q1 is $st now: the copy into it could not finish"
check "  not as an rsync that failed" test "${ERR#*rsync failed}" = "$ERR"
# --watch: a round whose VM stopped ends the watch (each later round
# failed the same way, for as long as the watch ran)
expect_rc "q1 once more" 0 "$NOOK" local start q1 --no-wait
to_banner q1
watch_then_stop "sync q1 --watch" nook-q1 q1 "src it's" wmid
st=$(vstate q1)
check "  the VM stopped in a later round: the watch ends, exit 1" grep -qx "rc=1" watch.out
contains "  says the VM stopped" "$(cat watch.out)" "nook: VM q1 is $st now: the copy into it could not finish"

finish

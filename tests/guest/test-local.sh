#!/usr/bin/env bash
# nook local start/stop/status/list/delete/logs, nook shell and nook port
# against the real test image under TCG. Boots are few and named: the fixture VM (boot
# 1), its restart (boot 2), a restart after kill -9 (not waited for), and a
# VM whose user-data fails (boot 3), and a kernel that panics seconds into
# boot 4, waited for, then again not. Everything else is checked against
# them.
NOOK=$1
. "$(dirname "$0")/../cli/lib.sh"
# A data directory with a space and a quote: every path nook hands to
# QEMU, ssh, rsync and ssh-config must survive both.
export NOOK_HOME="$WORK/it's home"
img=$(bash "$(dirname "$0")/image.sh") || { fail "build the test image"; finish; exit 1; }
cleanup() {
	for vm in t1 t2 t3 t4 t5; do "$NOOK" local delete "$vm" --force >/dev/null 2>&1; done
	NOOK_HOME="$WORK/fresh home" "$NOOK" local delete t6 --force >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
qemus() { pgrep -f -- "$NOOK_HOME/run/$1/qemu.pid" | wc -l; }
base_sum=$(stat -c '%s %Y' "$img/disk.qcow2")

cat > user-data <<'UD'
#cloud-config
write_files:
  - path: /etc/nook-test
    content: "from user-data\n"
UD

# --- boot 1: the fixture VM, from nothing to ready -----------------------
# started through a nook.yaml, from a directory below it: its name, image,
# user-data (a path relative to the file), port and disk come from the
# file; --memory on the command line overrides the file's. What the file
# names is in the project: the image hard-linked in (the same inode, so
# "base image untouched" below still watches it)
mkdir -p proj/sub proj/img
cp -al "$img/." proj/img/ 2>/dev/null || cp -a "$img/." proj/img/
cp user-data proj/user-data
cat > proj/nook.yaml <<YAML
name: t1
image: img
user-data: user-data
ports: ["0:8080"]
memory: 2G
disk: 3G
YAML
expect_rc "start t1 from its nook.yaml: ready" 0 sh -c 'cd "$1" && exec "$2" local start --memory 1G --json' _ proj/sub "$NOOK"
start_json=$OUT
check "the file's name: t1" test "$(echo "$start_json" | json 'd["name"]')" = t1
expect_rc "status without NAME below nook.yaml is t1's" 0 sh -c 'cd "$1" && exec "$2" local status --json' _ proj/sub "$NOOK"
check "  --memory 1G overrode the file's 2G" test "$(echo "$OUT" | json 'd["memory_mib"]')" = 1024
echo "$ERR" | sed 's/^/     | /'
ssh_port=$(echo "$start_json" | json 'd["ssh"]["port"]')
fwd=$(echo "$start_json" | json 'd["ports"][0]')
check "start --json says running" test "$(echo "$start_json" | json 'd["state"]')" = running
contains "auto picked tcg on this host" "$(echo "$start_json" | json 'd["accel"]')" tcg
listen=$(ss -Hltn "sport = :$ssh_port")
contains "ssh port listens on 127.0.0.1" "$listen" "127.0.0.1:$ssh_port"
check "ssh port listens on 127.0.0.1 only" test "$(echo "$listen" | grep -vc '127.0.0.1:')" = 0
fport=${fwd#127.0.0.1:}; fport=${fport%%:*}
check "--port 0:8080 got a free host port" test "$fport" -gt 0
check "forwarded port listens on 127.0.0.1 only" \
	test "$(ss -Hltn "sport = :$fport" | grep -c "127.0.0.1:$fport")" = 1
expect_rc "user-data took effect" 0 "$NOOK" shell t1 -- cat /etc/nook-test
contains "user-data file content" "$OUT" "from user-data"
base_size=$(qemu-img info -U --output=json "$img/disk.qcow2" | json 'd["virtual-size"]')
expect_rc "root file system size" 0 "$NOOK" shell t1 -- df -B1 --output=size /
root_size=$(echo "$OUT" | tail -1 | tr -d ' ')
check "--disk 3G: the root file system grew past the image's $base_size bytes" \
	test "$root_size" -gt "$base_size"
expect_rc "hostname is the VM's name" 0 "$NOOK" shell t1 -- hostname
contains "hostname t1" "$OUT" "t1"
# warm (its master up): no probe of sshd's banner, nor any TCP at all -
# nook asks the master over its socket, and ssh goes through it
expect_rc "a warm shell" 0 strace -f -qq -e trace=connect -o connects.txt "$NOOK" shell t1 -- true
check "  makes no TCP connection" test "$(grep -c AF_INET connects.txt)" = 0
check "  (strace saw its unix-socket connects)" grep -q AF_UNIX connects.txt

# the host key the guest shows is the one nook made (pinned, not learned)
scanned=$(ssh-keyscan -t ed25519 -p "$ssh_port" 127.0.0.1 2>/dev/null | awk '{print $3}')
made=$(awk '{print $2}' "$NOOK_HOME/vms/t1/ssh_host_ed25519_key.pub")
check "guest's host key is the pinned one" test -n "$made" -a "$scanned" = "$made"
check "private key is 0600" test "$(stat -c %a "$NOOK_HOME/vms/t1/id_ed25519")" = 600
check "VM dir is 0700" test "$(stat -c %a "$NOOK_HOME/vms/t1")" = 700
check "runtime dir is 0700" test "$(stat -c %a "$NOOK_HOME/run/t1")" = 700

# direct boot without the guest's own decompression: QEMU got the kernel
# and initrd nook unpacked (a PVH ELF, a plain cpio), and the guest booted
# from them with the TCG-only arguments
qargs=$(tr '\0' '\n' < /proc/"$(cat "$NOOK_HOME/run/t1/qemu.pid")"/cmdline)
kern=$(echo "$qargs" | grep -A1 -x -- -kernel | tail -1)
initrd=$(echo "$qargs" | grep -A1 -x -- -initrd | tail -1)
contains "QEMU boots the unpacked kernel" "$kern" "$NOOK_HOME/cache/boot/"
check "... an ELF vmlinux with a PVH note" sh -c 'readelf -n "$1" | grep -q "Xen.*(0x00000012)"' _ "$kern"
check "... the unpacked initrd is the image's, decompressed" \
	sh -c 'zstd -dc "$1" | cmp -s - "$2"' _ "$img/initrd.img" "$initrd"
if [ -e /usr/share/qemu/qboot.rom ]; then
	contains "direct boot through qboot" "$(echo "$qargs" | grep -A1 -x -- -bios | tail -1)" qboot.rom
fi
expect_rc "guest's kernel arguments" 0 "$NOOK" shell t1 -- cat /proc/cmdline /proc/sys/kernel/randomize_va_space
contains "tsc=reliable under TCG" "$OUT" "tsc=reliable"
contains "norandmaps under TCG" "$OUT" "norandmaps"
contains "no_timer_check under TCG" "$OUT" "no_timer_check"
check "ASLR off in the TCG guest" test "$(echo "$OUT" | tail -1)" = 0
# the NIC made at boot skipped IPv6 duplicate address detection; the
# boothook gave it back to interfaces made later
ifc=$("$NOOK" shell t1 -- ip -o link | awk -F': ' '/link\/ether 02:6e/ {print $2}')
expect_rc "the guest's DAD settings (uplink $ifc)" 0 "$NOOK" shell t1 -- cat "/proc/sys/net/ipv6/conf/$ifc/accept_dad" /proc/sys/net/ipv6/conf/default/accept_dad
check "the uplink skipped DAD" test "$(echo "$OUT" | head -1)" = 0
check "later interfaces do DAD" test "$(echo "$OUT" | tail -1)" = 1
expect_rc "the guest's clock source" 0 "$NOOK" shell t1 -- cat /sys/devices/system/clocksource/clocksource0/current_clocksource
contains "the guest keeps the TSC" "$OUT" "tsc"
# memory the guest frees goes back to the host (free page reporting): 300
# MiB written to the guest's tmpfs raise QEMU's resident size (as status
# says it); once they are removed, the guest reports the free blocks and
# QEMU lets them go
rss() { "$NOOK" local status t1 --json | json 'd["resident_mib"]'; }
expect_rc "the guest's balloon driver is bound" 0 "$NOOK" shell t1 -- sh -c 'ls /sys/bus/virtio/drivers/virtio_balloon | grep virtio'
low=$(rss)
expect_rc "the guest fills 300 MiB of its tmpfs" 0 "$NOOK" shell t1 -- dd if=/dev/zero of=/dev/shm/fill bs=1M count=300 status=none
full=$(rss)
check "  QEMU's resident size rose by 200 MiB or more ($low -> $full MiB)" test "$full" -ge $((low + 200))
expect_rc "the guest removes them" 0 "$NOOK" shell t1 -- rm /dev/shm/fill
for _ in $(seq 60); do now=$(rss); [ "$now" -le $((full - 200)) ] && break; sleep 1; done
check "  QEMU's resident size fell by 200 MiB or more within 60 s ($full -> $now MiB)" test "$now" -le $((full - 200))

# a second start is refused and no second QEMU appears
expect_rc "second start refused" 1 "$NOOK" local start t1
contains "says it is running" "$ERR" "already running"
check "one QEMU for t1" test "$(qemus t1)" = 1

expect_rc "status --json" 0 "$NOOK" local status t1 --json
check "status says running" test "$(echo "$OUT" | json 'd["state"]')" = running
check "status names the pid" test "$(echo "$OUT" | json 'd["pid"]')" = "$(cat "$NOOK_HOME/run/t1/qemu.pid")"
expect_rc "list" 0 "$NOOK" local list
contains "list shows t1 running" "$OUT" "running"
expect_rc "logs" 0 "$NOOK" local logs t1
contains "logs show the guest's console" "$OUT" "Cloud-init"

# shell: statuses, arguments, stdin
for want in 0 3 127; do
	case $want in
	0) cmd=(true) ;; 3) cmd=(sh -c 'exit 3') ;; 127) cmd=(no-such-command) ;;
	esac
	expect_rc "shell exit status $want comes back" "$want" "$NOOK" shell t1 -- "${cmd[@]}"
done
args=('a b' "it's" '"q"' '*' '$HOME' $'line1\nline2' '' '\')
printf '%s\0' "${args[@]}" > want.args
"$NOOK" shell t1 -- printf '%s\0' "${args[@]}" > got.args
check "arguments arrive unchanged" cmp -s want.args got.args
head -c 1048576 /dev/urandom > blob
"$NOOK" shell t1 -- cat < blob > blob.back
check "1 MiB binary round trip" cmp -s blob blob.back
tar -C "$WORK" -cf - blob | "$NOOK" shell t1 -- tar -xf - -C /tmp
"$NOOK" shell t1 -- sha256sum /tmp/blob > sum.guest
check "tar-piped file intact" test "$(awk '{print $1}' sum.guest)" = "$(sha256sum blob | awk '{print $1}')"

# another user does not ride the login user's master
expect_rc "shell --user root while the master is up" 0 "$NOOK" shell t1 --user root -- id -un
check "  is root, not the login user" test "$OUT" = root
# a user the guest lacks: said, not only ssh's "Permission denied"
expect_rc "shell --user of a user the guest lacks" 1 "$NOOK" shell t1 --user nosuch -- true
contains "  says the guest has no such user" "$ERR" "VM t1 has no user 'nosuch'"
# fifty commands at once: every one succeeds, and quietly
for i in $(seq 50); do
	"$NOOK" shell t1 -- echo "par-$i" >"$WORK/par.$i.out" 2>"$WORK/par.$i.err" &
done
wait
check "50 parallel shells all answered" test "$(cat "$WORK"/par.*.out | grep -c '^par-')" = 50
check "  and said nothing on stderr" test -z "$(cat "$WORK"/par.*.err)"
cat "$WORK"/par.*.err | sort | uniq -c | head -3 | sed 's/^/     | /'

expect_rc "shell --workdir" 0 "$NOOK" shell t1 --workdir /etc -- pwd
contains "ran in /etc" "$OUT" "/etc"
expect_rc "a shell line (one word with blanks), in --workdir" 0 "$NOOK" shell t1 --workdir /etc -- 'cd .. && pwd | tr / X; echo "$USER"'
check "  the guest's shell ran it" test "$OUT" = "$(printf 'X\n%s' "$(echo "$start_json" | json 'd["ssh"]["user"]')")"
expect_rc "shell --workdir -L (a directory, not cd's option)" 0 "$NOOK" shell t1 -- mkdir -p -- -L
expect_rc "  runs in it" 0 "$NOOK" shell t1 --workdir -L -- pwd
contains "  (pwd)" "$OUT" "/-L"
expect_rc "shell --workdir ~/-L" 0 "$NOOK" shell t1 --workdir '~/-L' -- pwd
check "  runs in the home's -L" sh -c 'case "$1" in /home/*/-L) ;; *) exit 1 ;; esac' _ "$OUT"
"$NOOK" ssh-config t1 > ssh_config
expect_rc "plain ssh with nook ssh-config" 0 ssh -F ssh_config nook-t1 -- echo via-plain-ssh
contains "plain ssh got in" "$OUT" "via-plain-ssh"
expect_rc "rsync with nook ssh-config" 0 rsync -a -e "ssh -F $WORK/ssh_config" user-data nook-t1:ud-copy
expect_rc "... the copy arrived" 0 "$NOOK" shell t1 -- cat ud-copy
contains "copy content" "$OUT" "from user-data"

# a stale ssh master socket is replaced, never a hang
ctl=$NOOK_HOME/run/t1/ssh.sock
ssh -o ControlPath="$ctl" -O exit nook >/dev/null 2>&1
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$ctl"
check "a stale socket file is there" test -S "$ctl"
expect_rc "shell works past a stale master socket" 0 timeout 60 "$NOOK" shell t1 -- true
# a stopped (SIGSTOP) master is ended and a fresh one made, never a hang
mpid=$(ssh -o "ControlPath=\"$ctl\"" -O check nook 2>&1 | sed -n 's/.*pid=\([0-9]*\).*/\1/p')
check "the master runs (pid $mpid)" test -n "$mpid"
kill -STOP "$mpid"
t0=$(date +%s)
expect_rc "shell past a stopped master" 0 timeout 60 "$NOOK" shell t1 -- echo through
check "  within 30 s" test $(($(date +%s) - t0)) -lt 30
check "  ran the command" test "$OUT" = through
contains "  said it ended the master" "$ERR" "ssh master (pid $mpid) did not answer"
check "  the stopped master is gone" test -z "$(ps -o stat= -p "$mpid" 2>/dev/null | grep -v Z)"
kill -9 "$mpid" 2>/dev/null
expect_rc "  and the next shell uses a fresh master quietly" 0 timeout 60 "$NOOK" shell t1 -- true
check "  (no warning)" test -z "$ERR"
# a command run at a terminal ends in the guest when the local nook shell
# is killed (the terminal's hang-up); the guest may lack pgrep: /proc
remote_hup() {
	"$NOOK" shell t1 -- sh -c "grep -ls 'nook-hup-tes[t]' /proc/[0-9]*/cmdline | grep -q . && echo running || echo gone"
}
script -qec "\"$NOOK\" shell t1 -- sh -c 'sleep 300; touch /tmp/not-killed' nook-hup-test" \
	/dev/null </dev/null >/dev/null 2>&1 &
spid=$!
for _ in $(seq 60); do [ "$(remote_hup)" = running ] && break; sleep 0.5; done
check "the remote command runs" test "$(remote_hup)" = running
kill -9 "$(pgrep -f -n "nook-hup-test")" 2>/dev/null
kill "$spid" 2>/dev/null
wait "$spid" 2>/dev/null
sleep 3
check "  and is gone once the local side is killed" test "$(remote_hup)" = gone
# piped, without a terminal, sshd hangs up nothing: nook does, when a
# signal ends nook shell (SIGTERM to it alone) or its ssh (kill -9)
remote_pipe() {
	"$NOOK" shell t1 -- sh -c "grep -ls 'nook-pipe-tes[t]$1' /proc/[0-9]*/cmdline | grep -q . && echo running || echo gone"
}
"$NOOK" shell t1 -- sh -c 'sleep 300' nook-pipe-test1 </dev/null | cat >/dev/null &
for _ in $(seq 60); do [ "$(remote_pipe 1)" = running ] && break; sleep 0.5; done
check "a piped remote command runs" test "$(remote_pipe 1)" = running
kill -TERM "$(pgrep -f -n "nook shell t1 -- sh -c sleep 300 nook-pipe-test1")"
wait $!
check "  and is gone once nook shell is sent SIGTERM" test "$(remote_pipe 1)" = gone
"$NOOK" shell t1 -- sh -c 'sleep 300' nook-pipe-test2 </dev/null | cat >/dev/null &
for _ in $(seq 60); do [ "$(remote_pipe 2)" = running ] && break; sleep 0.5; done
check "another piped command runs" test "$(remote_pipe 2)" = running
kill -9 "$(pgrep -n -f "^ssh .*nook-pipe-test2")"
wait $!
check "  and is gone once its ssh is killed" test "$(remote_pipe 2)" = gone
"$NOOK" shell t1 -- sh -c 'sleep 300' nook-pipe-test3 </dev/null | cat >/dev/null &
for _ in $(seq 60); do [ "$(remote_pipe 3)" = running ] && break; sleep 0.5; done
check "a third piped command runs" test "$(remote_pipe 3)" = running
kill -TERM "$(pgrep -n -f "^ssh .*nook-pipe-test3")" # ssh exits 255
wait $!
check "  and is gone once its ssh is sent SIGTERM" test "$(remote_pipe 3)" = gone
expect_rc "a piped command's exit status passes through" 7 "$NOOK" shell t1 -- sh -c 'exit 7'

# sync: excludes, .gitignore, symlinks, non-ASCII names, executable bits
mkdir -p tree/sub tree/build
echo a > tree/a.txt
echo b > tree/sub/b.txt
printf '#!/bin/sh\necho run\n' > tree/run.sh; chmod 755 tree/run.sh
ln -s a.txt tree/link
echo u > "tree/ünï cödé файл.txt"
echo log > tree/x.log
echo o > tree/build/out.o
echo s > tree/secret.txt
printf 'build/\nsecret.txt\n' > tree/.gitignore
printf '*.tmp\n' > tree/sub/.gitignore
echo t > tree/sub/scratch.tmp
expect_rc "sync a tree" 0 "$NOOK" sync t1 tree --exclude '*.log'
contains "sync prints a summary" "$OUT" "files"
expect_rc "list the synced tree" 0 "$NOOK" shell t1 -- sh -c 'cd tree && find . | LC_ALL=C sort'
got=$OUT
for f in ./a.txt ./sub/b.txt ./run.sh ./link "./ünï cödé файл.txt" ./.gitignore; do
	contains "synced $f" "$got" "$f"
done
for f in ./x.log ./build ./secret.txt ./sub/scratch.tmp; do
	case $got in *"$f"*) fail "left out $f" "found in: $got" ;; *) ok "left out $f" ;; esac
done
expect_rc "exec bit kept" 0 "$NOOK" shell t1 -- test -x tree/run.sh
expect_rc "symlink kept as a link" 0 "$NOOK" shell t1 -- readlink tree/link
contains "symlink target" "$OUT" "a.txt"
rm tree/a.txt
echo changed > tree/sub/b.txt
ln -s tree tree-link
expect_rc "sync a symlink to a tree, no DEST" 0 "$NOOK" sync t1 tree-link/
expect_rc "  lands under the link's name" 0 "$NOOK" shell t1 -- test -d tree-link/sub
rm tree-link
expect_rc "sync --dry-run" 0 "$NOOK" sync t1 tree --dry-run
expect_rc "dry run changed nothing" 0 "$NOOK" shell t1 -- cat tree/sub/b.txt
contains "old content after dry run" "$OUT" "b"
expect_rc "sync --delete" 0 "$NOOK" sync t1 tree --delete
# --delete into a guest symlink that leads to the home is refused as the
# home is: the guard follows it in the guest, not only the words
expect_rc "a symlink in the guest to its home" 0 "$NOOK" shell t1 -- sh -c 'ln -sfn "$HOME" homelink'
expect_rc "sync --delete into it is refused" 2 "$NOOK" sync t1 tree homelink --delete
contains "  saying where it leads" "$ERR" "leading to /home/"
expect_rc "  and the home is whole" 0 "$NOOK" shell t1 -- test -f .ssh/authorized_keys
expect_rc "deletion propagated" 1 "$NOOK" shell t1 -- test -e tree/a.txt
expect_rc "change propagated" 0 "$NOOK" shell t1 -- cat tree/sub/b.txt
contains "new content" "$OUT" "changed"
expect_rc "sync --chown to another DEST" 0 "$NOOK" sync t1 tree /srv/tree --chown nobody:nogroup
expect_rc "chown took effect" 0 "$NOOK" shell t1 -- stat -c %U:%G /srv/tree/sub/b.txt
contains "owner nobody:nogroup" "$OUT" "nobody:nogroup"
# a DEST with an escape sequence: it lands as typed, and the report
# shows it as \xNN instead of sending it to the terminal
expect_rc "sync to a DEST with an escape in its name" 0 "$NOOK" sync t1 tree "$(printf 'esc\033[31mred')"
contains "  the report shows it escaped" "$OUT" 'esc\x1b[31mred'
check "  and sends no escape" sh -c '! printf "%s" "$1" | grep -q "$(printf "\033")"' _ "$OUT"
# a sync whose nook alone is killed (not its process group) takes its
# rsync with it: the copy does not go on behind nook's back
mkdir big && head -c 300M /dev/urandom > big/blob
"$NOOK" sync t1 big big-copy > /dev/null 2>&1 &
syncer=$!
for _ in $(seq 100); do pgrep -f "rsync .*big-copy" > /dev/null && break; sleep 0.1; done
sleep 1
kill -TERM "$syncer"
wait "$syncer"
check "a sync killed alone dies of the signal" test "$?" = 143
for _ in $(seq 50); do pgrep -f "^rsync .*big-copy" > /dev/null || break; sleep 0.1; done
check "  and leaves no rsync running" sh -c '! pgrep -f "^rsync .*big-copy"'
rm -rf big
"$NOOK" sync t1 tree --watch > watch.out 2>&1 &
watch_pid=$!
for _ in $(seq 100); do grep -q watching watch.out && break; sleep 0.2; done
echo new > tree/new.txt
seen=no
for _ in $(seq 60); do
	if "$NOOK" shell t1 -- test -e tree/new.txt 2>/dev/null; then seen=yes; break; fi
	sleep 0.5
done
kill "$watch_pid" 2>/dev/null; wait "$watch_pid" 2>/dev/null
check "--watch picked up a new file" test "$seen" = yes
mkdir gone && echo x > gone/f
"$NOOK" sync t1 gone --watch > gone.out 2>&1 &
watch_pid=$!
for _ in $(seq 100); do grep -q watching gone.out && break; sleep 0.2; done
rm -rf gone
for _ in $(seq 150); do kill -0 "$watch_pid" 2>/dev/null || break; sleep 0.2; done
kill "$watch_pid" 2>/dev/null
wait "$watch_pid"
check "--watch of a SRC removed ends, exit 1" test "$?" = 1
contains "  saying why" "$(cat gone.out)" "--watch cannot follow"
# nook sync with no arguments below nook.yaml applies its sync rules
cp -a tree proj/tree
printf 'sync:\n  - src: tree\n    dest: tree-rule\n    exclude: ["*.log"]\n' >> proj/nook.yaml
expect_rc "sync by the file's rule" 0 sh -c 'cd "$1" && exec "$2" sync' _ proj/sub "$NOOK"
expect_rc "shell without NAME below nook.yaml" 0 sh -c 'cd "$1" && exec "$2" shell -- sh -c "ls tree-rule"' _ proj/sub "$NOOK"
contains "  the rule's src went to its dest" "$OUT" "new.txt"
case $OUT in *x.log*) fail "  the rule's exclude left out x.log" "$OUT" ;; *) ok "  the rule's exclude left out x.log" ;; esac
expect_rc "sync into a DEST whose parent is missing" 1 "$NOOK" sync t1 tree no-such-parent/tree
contains "  gives rsync's own line" "$ERR" "no-such-parent"
check "  without its --stats block" sh -c '! printf "%s" "$1" | grep -q "^Number of files"' _ "$ERR"
expect_rc "sync to a stopped name fails clearly" 1 "$NOOK" sync nosuchvm tree dest
contains "names the VM" "$ERR" "nosuchvm"

# console: through a pipe, a newline brings the login prompt back
printf '\n' | timeout 30 "$NOOK" console t1 > console.out 2>&1
contains "console answers with a login prompt" "$(cat console.out)" "login:"
exec 8>"$NOOK_HOME/run/t1/console.lock"
flock -n 8
expect_rc "a second console is refused, not hung" 1 timeout 20 "$NOOK" console t1
contains "says the console is in use" "$ERR" "in use"
exec 8>&-
# on a terminal (a pty): raw while attached, Ctrl-] and SIGTERM detach,
# the terminal comes back as it was
expect_rc "console on a terminal" 0 timeout 120 python3 \
	"$(dirname "$0")/console-pty.py" "$NOOK" t1
echo "$OUT" | sed 's/^/     | /'

# port: forwards added and removed while the guest runs (QMP hostfwd_*)
cat > serve.sh <<'SH'
mkdir -p /tmp/www && echo "served by $(hostname)" > /tmp/www/hello.txt
setsid nohup python3 -m http.server 8000 --directory /tmp/www \
	>/dev/null 2>&1 < /dev/null &
for i in $(seq 100); do
	python3 -c 'import socket; socket.create_connection(("127.0.0.1", 8000))' 2>/dev/null && exit 0
	sleep 0.2
done
exit 1
SH
serve() { "$NOOK" shell t1 -- sh -s < serve.sh; }
fetch() { python3 -c 'import sys, urllib.request as u
print(u.urlopen("http://127.0.0.1:%s/hello.txt" % sys.argv[1], timeout=10).read().decode())' "$1"; }
check "a web server in the guest" serve
expect_rc "port add t1 0:8000 while it runs" 0 "$NOOK" port add t1 0:8000
web=$(echo "$OUT" | sed -n 's/^host port: //p')
check "... prints the host port it picked" test -n "$web"
contains "the guest's server answers on the host" "$(fetch "$web")" "served by t1"
expect_rc "port list" 0 "$NOOK" port list t1 --json
check "... shows it active" test "$(echo "$OUT" | json "[f['active'] for f in d if f['host']==$web][0]")" = True
expect_rc "port rm t1 $web" 0 "$NOOK" port rm t1 "$web"
check "after port rm the port is closed" sh -c '! python3 -c "import socket,sys; socket.create_connection((\"127.0.0.1\", int(sys.argv[1])), 5)" "$1" 2>/dev/null' _ "$web"
check "... nothing listens on it" test "$(ss -Hltn "sport = :$web" | wc -l)" = 0
expect_rc "port add again, kept for the restart" 0 "$NOOK" port add t1 0:8000
web=$(echo "$OUT" | sed -n 's/^host port: //p')
contains "the new forward answers" "$(fetch "$web")" "served by t1"

# the wait for sshd did not leave slirp a pile of connections to hand the
# guest once its network came up: each starts an sshd that says its banner
# to no one (probing blind every 1.25 s from power-on left 13 here, all
# served by now; slirp holds one for 75 s at most). nook's own probe that
# read the banner counts too.
"$NOOK" shell t1 -- sudo journalctl -b -u ssh.service -o cat --no-pager > sshd.log
check "sshd's journal of this boot is there" grep -q 'Accepted publickey' sshd.log
dropped=$(grep -c 'kex_exchange_identification' sshd.log || true)
check "sshd served few banner-only connections ($dropped, at most 6)" test "$dropped" -le 6

# --- stop, and boot 2: the data survives ---------------------------------
"$NOOK" shell t1 -- sh -c 'echo survives > ~/marker && sync'
# a piped command cut off by the stop: its shell says why, not only 255
"$NOOK" shell t1 -- sleep 300 < /dev/null > cut.out 2> cut.err &
cut_pid=$!
sleep 2
expect_rc "stop t1" 0 "$NOOK" local stop t1
wait "$cut_pid"
check "the shell it cut off exits 255" test "$?" = 255
contains "  saying the VM stopped" "$(cat cut.err)" "VM t1 is stopped now: it stopped while ssh was connected"
contains "stop says how" "$OUT" "powered off"
check "no QEMU after stop" test "$(qemus t1)" = 0
expect_rc "stopping a stopped VM is fine" 0 "$NOOK" local stop t1
expect_rc "status after stop" 0 "$NOOK" local status t1 --json
check "status says stopped" test "$(echo "$OUT" | json 'd["state"]')" = stopped
expect_rc "shell on a stopped VM" 1 "$NOOK" shell t1 -- true
contains "shell says it is stopped" "$ERR" "stopped"
expect_rc "restart t1: ready" 0 "$NOOK" local start t1
expect_rc "file survives stop and start" 0 "$NOOK" shell t1 -- cat marker
contains "marker content" "$OUT" "survives"
expect_rc "same instance: not provisioned again" 0 "$NOOK" shell t1 -- cat /var/lib/cloud/data/instance-id
contains "instance-id kept" "$OUT" "$(json 'd["instance_id"]' < "$NOOK_HOME/vms/t1/vm.json")"
check "the forward added while it ran is there after the restart" \
	test "$(ss -Hltn "sport = :$web" | grep -c "127.0.0.1:$web")" = 1
check "a web server in the restarted guest" serve
contains "... answers through the kept forward" "$(fetch "$web")" "served by t1"

# --- kill -9: status says so, start works again --------------------------
kill -9 "$(cat "$NOOK_HOME/run/t1/qemu.pid")"
sleep 0.5
expect_rc "status after kill -9" 0 "$NOOK" local status t1 --json
check "status says crashed" test "$(echo "$OUT" | json 'd["state"]')" = crashed
expect_rc "start after a crash" 0 "$NOOK" local start t1 --no-wait
check "one QEMU again" test "$(qemus t1)" = 1
expect_rc "a shell at once waits for the booting guest's sshd" 0 "$NOOK" shell t1 -- cat marker
contains "  saying so" "$ERR" "VM t1 is booting: waiting for its sshd"
contains "  then gets in" "$OUT" "survives"
expect_rc "status: up again" 0 "$NOOK" local status t1 --json
check "status says running after restart" test "$(echo "$OUT" | json 'd["state"]')" = running
expect_rc "delete refuses a running VM" 1 "$NOOK" local delete t1
contains "delete says why" "$ERR" "running"
expect_rc "delete --force" 0 "$NOOK" local delete t1 --force
check "no QEMU after delete" test "$(qemus t1)" = 0
check "VM dir gone" test ! -e "$NOOK_HOME/vms/t1"
check "base image untouched" test "$(stat -c '%s %Y' "$img/disk.qcow2")" = "$base_sum"

# --- a host port in use: clear error, nothing left -----------------------
python3 -c 'import socket,time,sys
s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(60)' > busy.port &
busy_pid=$!
for _ in $(seq 50); do [ -s busy.port ] && break; sleep 0.1; done
busy=$(cat busy.port)
expect_rc "start with a busy --port" 1 "$NOOK" local start t2 --image "$img" --port "$busy:80"
contains "says the port is in use" "$ERR" "$busy"
contains "says in use" "$ERR" "in use"
check "no QEMU for t2" test "$(qemus t2)" = 0
check "nothing left of t2" test ! -e "$NOOK_HOME/vms/t2"
kill "$busy_pid"

# --- boot 3: user-data whose runcmd fails, booted from the disk ----------
cat > bad-user-data <<'UD'
#cloud-config
runcmd:
  - [sh, -c, 'echo NOOK-RUNCMD-FAILS >&2; exit 7']
UD
expect_rc "start with failing runcmd exits 1" 1 "$NOOK" local start t3 \
	--image "$img" --boot disk --user-data bad-user-data
contains "says cloud-init reported an error" "$ERR" "cloud-init reported an error"
contains "shows cloud-init's own account" "$ERR" "status: error"
contains "shows the failing command's output" "$ERR" "NOOK-RUNCMD-FAILS"
check "VM stays up to be looked at" test "$(qemus t3)" = 1
expect_rc "stop --force" 0 "$NOOK" local stop t3 --force
contains "force skips the guest" "$OUT" "quit"

# --- a guest kernel that panics: said at once, its QEMU ended -------------
# (no root for the kernel: it panics seconds in, where a wait for sshd
# would have run to --timeout)
expect_rc "start of a guest that panics exits 1" 1 "$NOOK" local start t4 \
	--image "$img" --append "rdinit=/nope" --timeout 600
contains "names the kernel's panic" "$ERR" "the guest's kernel panicked"
contains "quotes the kernel's line" "$ERR" "Kernel panic - not syncing: VFS"
check "no QEMU left spinning" test "$(qemus t4)" = 0
expect_rc "status of the panicked VM" 0 "$NOOK" local status t4 --json
check "  says crashed" test "$(echo "$OUT" | json 'd["state"]')" = crashed

# --- the same panic with no one waiting: QEMU spins on, and status, shell
# and start say so instead of waiting for an sshd that never comes
log="$NOOK_HOME/vms/t4/console.log"
before=$(stat -c %s "$log")
panicked() { tail -c +$((before + 1)) "$log" | grep -q -- '---\[ end Kernel panic'; }
expect_rc "start --no-wait of a guest that panics" 0 "$NOOK" local start t4 \
	--no-wait
for _ in $(seq 120); do
	panicked && break
	sleep 1
done
check "  it panicked again" panicked
expect_rc "status of the spinning VM" 0 "$NOOK" local status t4 --json
check "  running" test "$(echo "$OUT" | json 'd["state"]')" = running
contains "  with the panic's line" "$(echo "$OUT" | json 'd["panic"]')" \
	"Kernel panic - not syncing: VFS"
expect_rc "  in words" 0 "$NOOK" local status t4
contains "  says it panicked" "$OUT" "the guest's kernel panicked"
expect_rc "  list marks it" 0 "$NOOK" local list
contains "  (its kernel panicked)" "$OUT" "(its kernel panicked)"
expect_rc "shell refuses at once" 1 timeout 10 "$NOOK" shell t4 -- true
contains "  saying why" "$ERR" "the guest's kernel panicked"
expect_rc "start of it says so" 1 "$NOOK" local start t4
contains "  names the panic" "$ERR" "kernel panicked"
expect_rc "stop --force ends it" 0 "$NOOK" local stop t4 --force
check "  no QEMU left" test "$(qemus t4)" = 0
expect_rc "delete it" 0 "$NOOK" local delete t4

# --- a project's kernel and initrd, changed under its VM (a 'git pull'
# turning the initrd into a symlink to a key): the next start by NAME
# refuses it before QEMU loads it into the guest's memory
mkdir -p kp
cp -l "$img/vmlinuz" "$img/initrd.img" kp/ 2>/dev/null || cp "$img/vmlinuz" "$img/initrd.img" kp/
printf 'name: t5\nkernel: vmlinuz\ninitrd: initrd.img\nappend: rdinit=/nope\n' > kp/nook.yaml
expect_rc "start a VM with a project's kernel, not waited for" 0 sh -c 'cd "$1" && exec "$2" local start --image "$3" --no-wait' _ kp "$NOOK" "$img"
check "  its record names the project" grep -q '"kernel_within"' "$NOOK_HOME/vms/t5/vm.json"
expect_rc "  stop it" 0 "$NOOK" local stop t5 --force
printf 'secret\n' > key
rm kp/initrd.img
ln -s "$WORK/key" kp/initrd.img
expect_rc "its initrd now a symlink out: not started" 1 "$NOOK" local start t5 --no-wait
contains "  says where it leads" "$ERR" "initrd.img leads outside its project ($WORK/kp), to $WORK/key"
check "  no QEMU" test "$(qemus t5)" = 0
expect_rc "delete it" 0 "$NOOK" local delete t5

# the default image named (as 'nook init' writes it) is made when the
# store lacks it, as when unnamed: from the recipe's cached build
fresh="$WORK/fresh home"
expect_rc "a start naming debian-12 with an empty store" 0 env NOOK_HOME="$fresh" "$NOOK" local start t6 --image debian-12 --no-wait --memory 512M
check "  imports it" test -e "$fresh/images/names/debian-12"
expect_rc "  delete it" 0 env NOOK_HOME="$fresh" "$NOOK" local delete t6 --force

finish

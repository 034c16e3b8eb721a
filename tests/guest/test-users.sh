#!/usr/bin/env bash
# user-data with its own users list and no "default": nook still gets in
# (its key reaches sshd for every user through vendor-data's boothook) and
# logs in as the first listed user. Four boots, each named: u1 reaches
# ready, is cut off at once (stop --force) and comes back ready, and
# `nook shell` works as that user; u2 also turns off vendor-data
# boothooks, so its key lands nowhere: start must fail within seconds of
# sshd answering, naming the user and the likely causes, not wait out
# --timeout. u3's own bootcmd spoils sshd's configuration before sshd
# starts: start must say that sshd failed, seconds after systemd gave up
# on it, not wait out --timeout either. (A few minutes under TCG.)
NOOK=$1
. "$(dirname "$0")/../cli/lib.sh"
img=$(bash "$(dirname "$0")/image.sh") || { fail "build the test image"; finish; exit 1; }
cleanup() {
	for vm in u1 u2 u3; do "$NOOK" local delete "$vm" --force >/dev/null 2>&1; done
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
qemus() { pgrep -f -- "$NOOK_HOME/run/$1/qemu.pid" | wc -l; }

cat > users-data <<'UD'
#cloud-config
users:
  - name: alice
    shell: /bin/bash
    sudo: ALL=(ALL) NOPASSWD:ALL
  - bob
write_files:
  - path: /etc/nook-test
    content: "users list\n"
UD

# --- boot u1: its own users list reaches ready --------------------------
t0=$(date +%s)
expect_rc "start u1 (users: alice, bob; no default): ready" 0 \
	"$NOOK" local start u1 --image "$img" --user-data users-data --timeout 600
echo "     | ready after $(( $(date +%s) - t0 )) s"
# a power cut the moment it is ready (QMP quit: what the guest has not
# written back is lost); its first boot's files are on its disk, and it
# comes back (without the write-back at ready, the next boot's
# cloud-init-local failed here, and it waited for its network; a cut 5 s
# after ready left sshd failing at every start)
expect_rc "stop u1 --force at once" 0 "$NOOK" local stop u1 --force
t0=$(date +%s)
expect_rc "start u1 again: ready" 0 "$NOOK" local start u1 --timeout 600
echo "     | ready after $(( $(date +%s) - t0 )) s"
expect_rc "shell works" 0 "$NOOK" shell u1 -- id -un
check "shell logs in as the first listed user" test "$OUT" = alice
expect_rc "user-data took effect" 0 "$NOOK" shell u1 -- cat /etc/nook-test
contains "user-data file content" "$OUT" "users list"
expect_rc "alice has her sudo" 0 "$NOOK" shell u1 -- sudo -n true
expect_rc "no default user was made" 2 "$NOOK" shell u1 -- getent passwd debian
expect_rc "bob exists too" 0 "$NOOK" shell u1 -- getent passwd bob
expect_rc "cloud-init finished without errors" 0 "$NOOK" shell u1 -- cloud-init status
contains "cloud-init says done" "$OUT" "done"
expect_rc "stop u1" 0 "$NOOK" local stop u1 --force

# --- boot u2: the key lands nowhere; the refusal is explained at once -----
cat > no-boothook-data <<'UD'
#cloud-config
vendor_data:
  enabled: true
  disabled_handlers: [text/cloud-boothook]
users:
  - name: alice
    shell: /bin/bash
UD
t0=$(date +%s)
# on a terminal (script(1)), where the progress is one line rewritten
expect_rc "start u2 (boothooks off): fails" 1 script -qec \
	"'$NOOK' local start u2 --image '$img' --user-data no-boothook-data --timeout 900" /dev/null
took=$(( $(date +%s) - t0 ))
echo "     | failed after $took s"
# a TCG boot takes 60-120 s to sshd; the refusal comes seconds after
check "fails long before --timeout (${took} s)" test "$took" -lt 300
contains "says the login was refused" "$OUT" "refused nook's key"
# (it was printed after the progress line's text, on its line)
contains "  on a line of its own, the progress wiped" "$OUT" $'\r\033[Knook: the guest\'s sshd refused'
contains "names the user it tried" "$OUT" '"alice"'
contains "names the users list" "$OUT" "users: list"
contains "names vendor-data" "$OUT" "vendor_data"
check "VM stays up to be looked at" test "$(qemus u2)" = 1
expect_rc "stop u2" 0 "$NOOK" local stop u2 --force

# --- boot u3: sshd fails to start; said once systemd gives up ------------
cat > bad-sshd-data <<'UD'
#cloud-config
bootcmd:
  - echo 'NookNoSuchKeyword yes' >> /etc/ssh/sshd_config
UD
t0=$(date +%s)
expect_rc "start u3 (sshd_config spoiled): fails" 1 \
	"$NOOK" local start u3 --image "$img" --user-data bad-sshd-data --timeout 900
took=$(( $(date +%s) - t0 ))
echo "     | failed after $took s"
check "fails long before --timeout (${took} s)" test "$took" -lt 300
contains "says sshd failed to start" "$ERR" "VM u3: not ready: the guest's sshd failed to start, and was not started again"
contains "  quoting systemd, its colour codes gone" "$ERR" '(systemd: "Failed to start ssh.servic'
contains "  naming the user-data as a likely cause" "$ERR" "the user-data changes sshd's configuration"
contains "  with the console's last lines" "$ERR" "last console lines:"
check "  which show systemd's failure" sh -c 'grep -a "Failed to start" "$1" | tail -1 | grep -q ssh' _ "$NOOK_HOME/vms/u3/console.log"
check "VM stays up to be looked at" test "$(qemus u3)" = 1
# what the console says is found again by every later look
expect_rc "status u3" 0 "$NOOK" local status u3
contains "  says its sshd failed" "$OUT" "sshd:    the guest's sshd failed to start, and systemd gave up on it: Failed to start ssh.servic"
expect_rc "status u3 --json" 0 "$NOOK" local status u3 --json
check "  as sshd_failed" test "$(echo "$OUT" | json 'd["sshd_failed"][:20]')" = "Failed to start ssh."
expect_rc "list" 0 "$NOOK" local list
contains "  marks u3" "$(echo "$OUT" | grep '^u3 ')" "(its sshd failed to start)"
t0=$(date +%s)
expect_rc "shell u3 refuses" 1 "$NOOK" shell u3 -- true
check "  at once ($(( $(date +%s) - t0 )) s)" test "$(( $(date +%s) - t0 ))" -lt 10
contains "  saying why" "$ERR" "VM u3: the guest's sshd failed to start, and systemd gave up on it"
# suspended and resumed, it is no readier
expect_rc "suspend u3" 0 "$NOOK" local suspend u3
expect_rc "start u3 resumes it, and fails: its sshd is still down" 1 \
	"$NOOK" local start u3 --timeout 300
contains "  resumed" "$ERR$OUT" "VM u3: resumed from its saved state"
contains "  says sshd failed to start" "$ERR" "VM u3: not ready: the guest's sshd failed to start, and was not started again"
check "  VM stays up to be looked at" test "$(qemus u3)" = 1
expect_rc "stop u3" 0 "$NOOK" local stop u3 --force

finish

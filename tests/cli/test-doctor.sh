#!/usr/bin/env bash
# nook doctor against this host's real programs and CPU.
NOOK=$1
. "$(dirname "$0")/lib.sh"

expect_rc "doctor passes on a set-up host" 0 "$NOOK" doctor
for p in qemu-system-x86_64 qemu-img ssh ssh-keygen rsync; do
	contains "  doctor reports $p" "$OUT" "$p"
done
qver=$(qemu-img --version | sed -n 's/.*version \([0-9][0-9.]*\).*/\1/p' | head -1)
contains "  doctor's qemu-img version matches qemu-img's own" "$OUT" "$qver"
contains "  doctor shows NOOK_HOME as the data directory" "$OUT" "$NOOK_HOME"

expect_rc "doctor --json" 0 "$NOOK" doctor --json
json=$OUT
check "  doctor --json is valid JSON" python3 -c 'import json,sys; json.loads(sys.argv[1])' "$json"
accel=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["accel"]["accelerator"])' "$json")
# The CPU flags decide: without vmx/svm it must be TCG (these machines),
# with them and a usable /dev/kvm it may be KVM.
if grep -qwE 'vmx|svm' /proc/cpuinfo; then
	check "doctor picks an accelerator" test -n "$accel"
else
	check "no vmx/svm in /proc/cpuinfo: doctor says tcg" test "$accel" = tcg
	# the first reason that holds on this host (vm_accel_decide's order)
	if [ ! -e /dev/kvm ]; then
		why="/dev/kvm does not exist"
	elif [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
		why="/dev/kvm is not readable and writable"
	else
		why="vmx nor svm"
	fi
	contains "  ... and says why ($why)" "$OUT" "$why"
fi

# A required program missing: exit 1, naming the Debian package.
mkdir -p "$WORK/bin"
for p in qemu-system-x86_64 ssh ssh-keygen rsync; do
	ln -s "$(command -v "$p")" "$WORK/bin/$p"
done
expect_rc "doctor without qemu-img exits 1" 1 env PATH="$WORK/bin" "$NOOK" doctor
contains "  ... and names the package" "$ERR" "apt-get install qemu-utils"

# A too-old qemu-img (a stand-in script printing an old version).
printf '#!/bin/sh\necho "qemu-img version 2.11.1"\n' > "$WORK/bin/qemu-img"
chmod +x "$WORK/bin/qemu-img"
expect_rc "doctor with qemu-img 2.11 exits 1" 1 env PATH="$WORK/bin:/usr/bin:/bin" "$NOOK" doctor
contains "  ... and says it is too old" "$ERR" "too old"
# QEMU 5.0 is too old too: the balloon's free page reporting is 5.1's.
mkdir -p "$WORK/bin50"
for p in qemu-img ssh ssh-keygen rsync; do
	ln -s "$(command -v "$p")" "$WORK/bin50/$p"
done
printf '#!/bin/sh\necho "QEMU emulator version 5.0.1"\n' > "$WORK/bin50/qemu-system-x86_64"
chmod +x "$WORK/bin50/qemu-system-x86_64"
expect_rc "doctor with QEMU 5.0 exits 1" 1 env PATH="$WORK/bin50:/usr/bin:/bin" "$NOOK" doctor
contains "  ... and says it is too old" "$ERR" "too old"
# The image build cache it reports is the one builds use.
expect_rc "doctor --json with NOOK_IMAGE_CACHE" 0 env NOOK_IMAGE_CACHE="$WORK/cache" "$NOOK" doctor --json
check "  reports it as the image cache" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["dirs"]["cache"]==sys.argv[2], d["dirs"]' "$OUT" "$WORK/cache"

# With --json, a failure is still one JSON object on stdout, saying why.
expect_rc "doctor --json with a relative NOOK_HOME exits 1" 1 env NOOK_HOME=relative "$NOOK" doctor --json
check "  prints JSON with ok false and the error" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["ok"] is False and "NOOK_HOME" in d["error"], d' "$OUT"
expect_rc "doctor --json with a too-old qemu-img exits 1" 1 env PATH="$WORK/bin" "$NOOK" doctor --json
check "  prints JSON naming the package" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["ok"] is False and "qemu-utils" in d["error"], d' "$OUT"
expect_rc "doctor with an argument is a usage error" 2 "$NOOK" doctor extra
# A data directory under one a group with others in it may write (as
# root: nogroup, whose member is nobody): every start would refuse the
# runtime directory, so doctor says so (and makes nothing)
mkdir -p "$WORK/shared/home"
chmod 0775 "$WORK/shared"
[ "$(id -u)" = 0 ] && chgrp nogroup "$WORK/shared" && chmod 0775 "$WORK/shared"
[ "$(id -u)" = 0 ] && {
expect_rc "doctor under a group-writable directory exits 1" 1 env NOOK_HOME="$WORK/shared/home" "$NOOK" doctor
contains "  names it, its mode and what to do" "$ERR" "$WORK/shared has mode 0775: its group (or a user its ACL names) may replace what it holds; chmod go-w it"
check "  and makes no runtime directory" test ! -e "$WORK/shared/home/run"
expect_rc "  doctor --json" 1 env NOOK_HOME="$WORK/shared/home" "$NOOK" doctor --json
check "  says it in its error" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["ok"] is False and "mode 0775" in d["error"], d' "$OUT"
expect_rc "  a start is refused the same way" 1 env NOOK_HOME="$WORK/shared/home" "$NOOK" local start v --image /dev/null --no-wait
contains "  saying why, and what it is on the way to" "$ERR" "may replace what it holds; chmod go-w it, or make it sticky (it is on the way to $WORK/shared/home/run/v)"
chmod 0755 "$WORK/shared"
expect_rc "  chmod go-w: doctor passes" 0 env NOOK_HOME="$WORK/shared/home" "$NOOK" doctor
# an ACL naming another user who may write (nobody): the group bits are
# its mask, and a group of yours alone does not make it private
chgrp "$(id -g)" "$WORK/shared"
chmod 0700 "$WORK/shared"
python3 -c '
import os, struct, sys
e = [(1, 7, 0xffffffff), (2, 7, 65534), (4, 0, 0xffffffff), (0x10, 7, 0xffffffff), (0x20, 0, 0xffffffff)]
os.setxattr(sys.argv[1], "system.posix_acl_access", struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *x) for x in e))' "$WORK/shared"
expect_rc "  an ACL lets nobody write it: doctor exits 1" 1 env NOOK_HOME="$WORK/shared/home" "$NOOK" doctor
contains "  naming it" "$ERR" "$WORK/shared has mode 0770: its group (or a user its ACL names) may replace"
setfattr -x system.posix_acl_access "$WORK/shared" 2>/dev/null || python3 -c 'import os, sys; os.removexattr(sys.argv[1], "system.posix_acl_access")' "$WORK/shared"
chmod 0755 "$WORK/shared"
}
# a group of yours alone (a user private group) may write it
chgrp "$(id -g)" "$WORK/shared"
chmod 0775 "$WORK/shared"
if [ "$(getent group "$(id -g)" | cut -d: -f4)" = "" ] && [ "$(getent passwd | awk -F: -v g="$(id -g)" '$4 == g' | wc -l)" = 1 ]; then
	expect_rc "  a user private group may write it: doctor passes" 0 env NOOK_HOME="$WORK/shared/home" "$NOOK" doctor
fi
finish

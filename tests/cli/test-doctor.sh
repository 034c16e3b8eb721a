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
	contains "  ... and says why" "$OUT" "vmx nor svm"
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
finish

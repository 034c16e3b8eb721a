#!/usr/bin/env bash
# A real cloud-init guest reads nook's cidata ISO: boot the test image under
# TCG with plain QEMU from the disk, with a seed from `nook cidata build`,
# and wait on the serial console for the user-data's runcmd and
# cloud-init's final message (about 60 s under TCG). Booted by GRUB, the
# kernel's command line has no ds=nocloud: cloud-init finds the seed by
# its volume label alone. (Every nook start of the other guest tests
# boots with an ISO nook wrote too, most by direct kernel boot.)
NOOK=$1
. "$(dirname "$0")/../cli/lib.sh"
img=$(bash "$(dirname "$0")/image.sh") || { fail "build the test image"; finish; exit 1; }
ok "test image at $img"
cd "$WORK" || exit 1

cat > user-data <<'UD'
#cloud-config
runcmd:
  - [sh, -c, 'echo "NOOK-RUNCMD $(hostname) $(cat /var/lib/cloud/data/instance-id)" > /dev/ttyS0']
final_message: "NOOK-FINAL cloud-init done after $UPTIME s"
UD
"$NOOK" cidata build -o seed.iso --user-data user-data --hostname nook-guest --instance-id iid-boot-test >/dev/null ||
	fail "build the seed"

# boot the image from its disk and wait for cloud-init on the console
log=console.log waited=0
qemu-img create -q -f qcow2 -F qcow2 -b "$img/disk.qcow2" disk.qcow2
qemu-system-x86_64 -machine q35 -accel tcg,thread=multi -cpu max -smp 2 -m 1024 \
	-display none -serial "file:$log" -monitor none \
	-drive "file=disk.qcow2,if=virtio,format=qcow2" \
	-drive "file=seed.iso,if=virtio,format=raw,readonly=on" \
	-nic user,model=virtio-net-pci &
pid=$!
trap 'kill "$pid" 2>/dev/null; rm -rf "$WORK"' EXIT
while [ $waited -lt 420 ] && kill -0 $pid 2>/dev/null; do
	grep -q NOOK-FINAL "$log" 2>/dev/null && break
	sleep 2
	waited=$((waited + 2))
done
kill $pid 2>/dev/null
wait $pid 2>/dev/null
if grep -q NOOK-FINAL "$log"; then
	ok "disk boot: cloud-init finished (after ~${waited}s)"
else
	fail "disk boot: cloud-init finished" "last console lines: $(tail -5 "$log" | tr -d '\r')"
fi
check "  runcmd from our user-data ran, hostname and instance-id from our meta-data" \
	grep -q "NOOK-RUNCMD nook-guest iid-boot-test" "$log"
finish

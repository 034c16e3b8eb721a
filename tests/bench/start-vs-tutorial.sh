#!/usr/bin/env bash
# Benchmark: `nook local start` to ready against the recipe a tutorial
# gives, on the same test image, alternated, RUNS times each (default 3).
# The recipe: qemu-img create an overlay, cloud-localds a seed with an ssh
# key, qemu-system-x86_64 -accel tcg with the image's kernel, initrd and
# its plain cmdline (root=... rw console=ttyS0), virtio disk, user-mode net
# with one hostfwd for ssh; poll ssh once a second, then `cloud-init status
# --wait`. Both get 2 vCPUs and 1 GiB. Each run is a first boot of a fresh
# VM. Prints each time, the medians and the ratio nook/tutorial.
# Usage: tests/bench/start-vs-tutorial.sh BUILD-DIR [RUNS]
set -eu
build=$(realpath "${1:-build}")
runs=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
img=$(bash "$here/../guest/image.sh")
work=$(mktemp -d "${TMPDIR:-/tmp}/nook-bench.XXXXXX")
export NOOK_HOME=$work/home
cleanup() {
	"$build/nook" local delete bench --force >/dev/null 2>&1 || true
	[ -f "$work/t.pid" ] && kill "$(cat "$work/t.pid")" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
cmdline=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cmdline"])' "$img/manifest.json")
cmdline=$(echo "$cmdline" | sed 's/ ro / rw /; s/ ro$/ rw/') # as a tutorial writes it
ssh-keygen -q -t ed25519 -N '' -f key
printf '#cloud-config\nssh_authorized_keys:\n  - %s\n' "$(cat key.pub)" > user-data
now() { date +%s.%N; }

nook_run() {
	local t0=$(now)
	"$build/nook" local start bench --image "$img" >/dev/null 2>nook.err ||
		{ cat nook.err >&2; return 1; }
	echo "$(now) - $t0" | bc
	"$build/nook" local delete bench --force >/dev/null
}

tutorial_run() {
	local t0=$(now) port
	rm -f t.qcow2 seed.img t.pid
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	qemu-img create -q -f qcow2 -F qcow2 -b "$img/disk.qcow2" t.qcow2
	cloud-localds seed.img user-data
	qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -display none \
		-kernel "$img/vmlinuz" -initrd "$img/initrd.img" -append "$cmdline" \
		-drive file=t.qcow2,if=virtio,format=qcow2 \
		-drive file=seed.img,if=virtio,format=raw \
		-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:22" \
		-device virtio-net-pci,netdev=n0 \
		-serial file:t.console -pidfile t.pid -daemonize
	local ssh=(ssh -i key -p "$port" -o StrictHostKeyChecking=no
		   -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5
		   -o BatchMode=yes -o LogLevel=ERROR debian@127.0.0.1)
	until "${ssh[@]}" true 2>/dev/null; do sleep 1; done
	"${ssh[@]}" cloud-init status --wait >/dev/null
	echo "$(now) - $t0" | bc
	local pid=$(cat t.pid)
	kill "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
	rm -f t.pid
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "nook local start vs the tutorial recipe, first boots, $runs each, alternating ($(date -u +%F))"
: > nook.times; : > tutorial.times
for i in $(seq "$runs"); do
	t=$(nook_run); echo "  run $i nook     $t s"; echo "$t" >> nook.times
	t=$(tutorial_run); echo "  run $i tutorial $t s"; echo "$t" >> tutorial.times
done
n=$(median < nook.times); t=$(median < tutorial.times)
printf 'median: nook %.1f s, tutorial %.1f s, ratio nook/tutorial %.2f\n' "$n" "$t" "$(echo "$n / $t" | bc -l)"

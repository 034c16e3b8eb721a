#!/usr/bin/env bash
# Benchmark: `nook cidata build` against `cloud-localds` on the same inputs
# (user-data, meta-data, network-config), alternating, 200 runs each, each
# a whole process from spawn to exit. Prints medians and the ratio.
# Usage: tests/bench/cidata-vs-cloud-localds.sh BUILD-DIR [RUNS]
set -eu
build=$(realpath "${1:-build}")
runs=${2:-200}
work=$(mktemp -d "${TMPDIR:-/tmp}/nook-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
printf '#cloud-config\npackages: [htop, rsync]\nruncmd:\n  - [touch, /run/ready]\n' > user-data
printf 'instance-id: iid-bench\nlocal-hostname: bench\n' > meta-data
printf 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n' > network-config
echo "nook cidata build vs cloud-localds, $runs runs each, alternating ($(date -u +%F))"
"$build/tests/nook-benchrun" "$runs" nook cloud-localds \
	--- "$build/nook" cidata build -o nook.iso --user-data user-data \
	   --meta-data meta-data --network-config network-config \
	--- cloud-localds -N network-config localds.iso user-data meta-data

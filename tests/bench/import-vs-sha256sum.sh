#!/usr/bin/env bash
# Benchmark: `nook images import` of the default test image's disk (built
# by tests/guest/image.sh) against doing it by hand: `sha256sum` of the
# same disk, then `cp` of it. Alternating, ROUNDS each (default 5), every
# nook run a fresh import into an empty store. The disk is read once,
# untimed, before the first round, so both read it from the page cache;
# what each wrote is removed and `sync`ed away untimed before each run, so
# neither pays for the other's writeback. nook does more than the peer:
# qemu-img info, an fsync of its copy, the manifest. Prints each time, the
# medians and the ratio nook/peer (lower is better; the target is 1.2).
# Usage: tests/bench/import-vs-sha256sum.sh BUILD-DIR [ROUNDS]
set -eu
build=$(realpath "${1:-build}")
rounds=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
img=$(bash "$here/../guest/image.sh")
disk=$img/disk.qcow2
work=$(mktemp -d "${TMPDIR:-/tmp}/nook-bench.XXXXXX")
export NOOK_HOME=$work/home
trap 'rm -rf "$work"' EXIT
cd "$work"
now() { date +%s.%N; }

nook_run() {
	rm -rf "$NOOK_HOME"
	sync
	local t0=$(now)
	"$build/nook" images import "$disk" --name bench >/dev/null
	echo "$(now) - $t0" | bc
}

peer_run() {
	rm -f copy.qcow2
	sync
	local t0=$(now)
	sha256sum "$disk" >/dev/null
	cp "$disk" copy.qcow2
	echo "$(now) - $t0" | bc
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
size=$(stat -c %s "$disk")
echo "nook images import vs sha256sum + cp, $((size / 1048576)) MiB disk, $rounds each, alternating ($(date -u +%F))"
cat "$disk" >/dev/null
: > nook.times; : > peer.times
for i in $(seq "$rounds"); do
	t=$(nook_run); echo "  run $i nook            $t s"; echo "$t" >> nook.times
	t=$(peer_run); echo "  run $i sha256sum + cp $t s"; echo "$t" >> peer.times
done
n=$(median < nook.times); p=$(median < peer.times)
printf 'median: nook %.2f s, sha256sum + cp %.2f s, ratio nook/peer %.2f\n' \
	"$n" "$p" "$(echo "$n / $p" | bc -l)"

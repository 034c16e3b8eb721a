#!/usr/bin/env bash
# Benchmark: `nook local start c --nodes 3` to every node ready against
# three single `nook local start` one after another, on the same test
# image, alternated, RUNS times each (default 2). Each run makes fresh
# VMs (first boots). Prints each time, the medians, the ratio
# cluster/sequential, and each QEMU's resident memory once the cluster is
# ready.
# Usage: tests/bench/cluster-vs-sequential.sh BUILD-DIR [RUNS]
set -eu
build=$(realpath "${1:-build}")
runs=${2:-2}
here=$(cd "$(dirname "$0")" && pwd)
img=$(bash "$here/../guest/image.sh")
work=$(mktemp -d "${TMPDIR:-/tmp}/nook-bench.XXXXXX")
export NOOK_HOME=$work/home
nook=$build/nook
cleanup() {
	"$nook" local delete c --force >/dev/null 2>&1 || true
	for i in 1 2 3; do "$nook" local delete "s$i" --force >/dev/null 2>&1 || true; done
	rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }

cluster_run() {
	local t0=$(now) t
	"$nook" local start c --nodes 3 --image "$img" >/dev/null 2>"$work/err" ||
		{ cat "$work/err" >&2; return 1; }
	t=$(echo "$(now) - $t0" | bc)
	for i in 1 2 3; do
		rss=$(awk '/VmRSS/ {print $2}' /proc/"$(cat "$NOOK_HOME/run/c-$i/qemu.pid")"/status)
		echo "    c-$i QEMU resident: $((rss / 1024)) MiB" >&2
	done
	"$nook" local delete c --force >/dev/null
	echo "$t"
}

sequential_run() {
	local t0=$(now)
	for i in 1 2 3; do
		"$nook" local start "s$i" --image "$img" >/dev/null 2>"$work/err" ||
			{ cat "$work/err" >&2; return 1; }
	done
	echo "$(now) - $t0" | bc
	for i in 1 2 3; do "$nook" local delete "s$i" --force >/dev/null; done
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "a 3-node cluster vs 3 starts one after another, first boots, $runs each, alternating ($(date -u +%F), $(nproc) cores)"
: > "$work/c.times"; : > "$work/s.times"
for i in $(seq "$runs"); do
	t=$(cluster_run); echo "  run $i cluster    $t s"; echo "$t" >> "$work/c.times"
	t=$(sequential_run); echo "  run $i sequential $t s"; echo "$t" >> "$work/s.times"
done
c=$(median < "$work/c.times"); s=$(median < "$work/s.times")
printf 'median: cluster %.1f s, sequential %.1f s, ratio cluster/sequential %.2f\n' "$c" "$s" "$(echo "$c / $s" | bc -l)"

#!/usr/bin/env bash
# Benchmark: `nook local start c --nodes 3` to every node ready against
# three single `nook local start` one after another, on the same test
# image, alternated, RUNS times each (default 2). Each run makes fresh
# VMs (first boots). Prints each time, the medians, the ratio
# cluster/sequential, each QEMU's resident memory once the cluster is
# ready (and its proportional share: shared pages split), and before each
# run how long each core takes for one loop.
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

# Each core's speed just before a run: one fixed loop pinned to it, timed.
# This host lends a core at about half its speed for minutes at a time
# (2026-12-04: 1.7 s against 0.9 s for the same Python loop, core 1
# against core 0, then both 0.9 s a few minutes later). A cluster, busy
# on every core, feels that more than a lone start does, so each run says
# what it had.
cores() {
	local c t0 out=""
	for c in $(seq 0 $(($(nproc) - 1))); do
		t0=$(now)
		taskset -c "$c" awk 'BEGIN { for (i = 0; i < 12000000; i++) x += i }'
		out="$out core $c $(printf '%.2f' "$(echo "$(now) - $t0" | bc)") s"
	done
	echo "    loop before:$out" >&2
}

cluster_run() {
	cores
	local t0=$(now) t
	"$nook" local start c --nodes 3 --image "$img" >/dev/null 2>"$work/err" ||
		{ cat "$work/err" >&2; return 1; }
	t=$(echo "$(now) - $t0" | bc)
	# resident, and proportional: the pages QEMUs share (the unpacked
	# kernel and initrd they map from nook's boot cache) split among them
	for i in 1 2 3; do
		f=/proc/"$(cat "$NOOK_HOME/run/c-$i/qemu.pid")"/smaps_rollup
		echo "    c-$i QEMU resident: $(awk '/^Rss:/ {print int($2 / 1024)}' "$f") MiB" \
			"(proportional $(awk '/^Pss:/ {print int($2 / 1024)}' "$f") MiB)" >&2
	done
	"$nook" local delete c --force >/dev/null
	echo "$t"
}

sequential_run() {
	cores
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

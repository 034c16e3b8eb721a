#!/usr/bin/env bash
# Benchmark: `nook local start c --nodes 3` to every node ready against
# three single `nook local start` one after another, on the same test
# image, alternated, RUNS times each (default 2). Each run makes fresh
# VMs (first boots). Prints each time, the medians, the ratio
# cluster/sequential (of the medians, and the median of each run's
# pair's), each QEMU's resident memory once the cluster is ready (and its
# proportional share: shared pages split), before each run how long each
# core takes for one loop, and after it the CPU time the host's cores
# spent idle and stolen (by the hypervisor) while it ran.
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

# /proc/stat's idle, iowait and steal of all cores, in USER_HZ ticks
ticks() { awk '/^cpu / {print $5, $6, $9}' /proc/stat; }
# What the cores did not give a run: idle (iowait counted in) and stolen
# by the hypervisor (a busy neighbour on the host), in CPU-seconds.
lost() {
	local hz
	hz=$(getconf CLK_TCK)
	echo "$1 $(ticks)" | awk -v hz="$hz" '{
		printf "    cores idle %.1f CPU-s, stolen %.1f CPU-s\n",
			($4 + $5 - $1 - $2) / hz, ($6 - $3) / hz }' >&2
}

cluster_run() {
	cores
	local t0=$(now) t s0=$(ticks)
	"$nook" local start c --nodes 3 --image "$img" >/dev/null 2>"$work/err" ||
		{ cat "$work/err" >&2; return 1; }
	t=$(echo "$(now) - $t0" | bc)
	lost "$s0"
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
	local t0=$(now) s0=$(ticks)
	for i in 1 2 3; do
		"$nook" local start "s$i" --image "$img" >/dev/null 2>"$work/err" ||
			{ cat "$work/err" >&2; return 1; }
	done
	echo "$(now) - $t0" | bc
	lost "$s0"
	for i in 1 2 3; do "$nook" local delete "s$i" --force >/dev/null; done
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "a 3-node cluster vs 3 starts one after another, first boots, $runs each, alternating ($(date -u +%F), $(nproc) cores)"
: > "$work/c.times"; : > "$work/s.times"; : > "$work/ratios"
for i in $(seq "$runs"); do
	c=$(cluster_run); echo "  run $i cluster    $c s"; echo "$c" >> "$work/c.times"
	s=$(sequential_run); echo "  run $i sequential $s s"; echo "$s" >> "$work/s.times"
	r=$(echo "$c / $s" | bc -l); echo "$r" >> "$work/ratios"
	printf '  run %d ratio %.3f\n' "$i" "$r"
done
c=$(median < "$work/c.times"); s=$(median < "$work/s.times")
printf 'median: cluster %.1f s, sequential %.1f s, ratio cluster/sequential %.2f\n' "$c" "$s" "$(echo "$c / $s" | bc -l)"
printf 'median of the runs'"'"' ratios: %.2f\n' "$(median < "$work/ratios")"

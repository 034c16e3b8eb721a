#!/usr/bin/env bash
# Benchmark: `nook local start` of a suspended VM (resume, the clock set,
# ssh answering) against a cold `nook local start` of the same VM to ready
# (after a stop), on the test image, alternated, RUNS times each (default
# 5). The first boot (provisioning) is not counted. Also the time of each
# `nook local suspend` and the size of its save.
# Usage: tests/bench/resume-vs-cold.sh BUILD-DIR [RUNS]
set -eu
build=$(realpath "${1:-build}")
runs=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
img=$(bash "$here/../guest/image.sh")
work=$(mktemp -d "${TMPDIR:-/tmp}/nook-bench.XXXXXX")
export NOOK_HOME=$work/home
nook=$build/nook
cleanup() {
	"$nook" local delete r --force >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
# timed COMMAND...: run it quietly, print its seconds; its failure ends all
timed() {
	local t0=$(now)
	"$@" >"$work/out" 2>"$work/err" || { cat "$work/out" "$work/err" >&2; return 1; }
	echo "$(now) - $t0" | bc
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "resume vs cold start of one VM (1 GiB, TCG), $runs each, alternating ($(date -u +%F), $(nproc) cores)"
t=$(timed "$nook" local start r --image "$img" --memory 1G)
echo "  first boot (not counted) $t s"
: > "$work/resume"; : > "$work/cold"; : > "$work/suspend"; : > "$work/size"
for i in $(seq "$runs"); do
	t=$(timed "$nook" local suspend r); echo "$t" >> "$work/suspend"
	size=$("$nook" local status r --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["save"]["size"])')
	echo "$size" >> "$work/size"
	t=$(timed "$nook" local start r)
	grep -q "resumed" "$work/out" "$work/err" || { echo "run $i: start did not resume" >&2; exit 1; }
	echo "  run $i resume $t s (suspend $(tail -1 "$work/suspend") s, save $((size >> 20)) MiB)"
	echo "$t" >> "$work/resume"
	"$nook" local stop r >/dev/null
	t=$(timed "$nook" local start r)
	echo "  run $i cold   $t s"
	echo "$t" >> "$work/cold"
done
r=$(median < "$work/resume"); c=$(median < "$work/cold")
s=$(median < "$work/suspend"); z=$(median < "$work/size")
printf 'median: resume %.1f s, cold start %.1f s, ratio resume/cold %.3f; suspend %.1f s, save %d MiB\n' \
	"$r" "$c" "$(echo "$r / $c" | bc -l)" "$s" "$((${z%.*} >> 20))"

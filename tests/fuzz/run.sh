#!/usr/bin/env bash
# Build nook's libFuzzer targets with clang (into $NOOK_FUZZ_BUILD, else
# build-fuzz/) and run each for SECONDS, one per core at a time, against a
# COPY of its seed corpus (tests/fuzz/corpus/NAME/ never grows here). Prints the
# executions each ran; fails if any crashed, hung, leaked or hit undefined
# behaviour, naming the file that reproduces it (kept in the build
# directory, out of the tree): rerun it with build-fuzz/tests/fuzz/fuzz_NAME
# FILE.
#   tests/fuzz/run.sh SECONDS [NAME...]   (default: every target)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ]; then
	echo "usage: tests/fuzz/run.sh SECONDS [NAME...]" >&2
	exit 2
fi
secs=$1
shift
build=${NOOK_FUZZ_BUILD:-build-fuzz}
if [ $# -gt 0 ]; then
	targets=("$@")
else
	targets=()
	for f in tests/fuzz/fuzz_*.c; do
		t=${f#tests/fuzz/fuzz_}
		targets+=("${t%.c}")
	done
fi

# clang's warnings are not gcc's: -Werror stays with the gcc builds
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DNOOK_FUZZ=ON \
	-DNOOK_WERROR=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}" \
	>"$build/fuzz-build.log" 2>&1 ||
	{ cat "$build/fuzz-build.log" >&2; exit 1; }

# one target: its line of the summary into $work/result, 1 in $work/failed
run_one() {
	local t=$1 work dict=() rc=0 runs found
	work=$(realpath "$build")/fuzz-run/$t
	rm -rf "$work"
	mkdir -p "$work/corpus"
	cp -R "tests/fuzz/corpus/$t/." "$work/corpus/"
	case $t in
	qmp | manifest | vmjson) dict=(-dict=tests/fuzz/json.dict) ;;
	userdata | netconfig | project) dict=(-dict=tests/fuzz/yaml.dict) ;;
	esac
	# -close_fd_mask=2: the parsers' own messages (stderr) are not
	# libFuzzer's; its report and the sanitizers' still come through
	"$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=2048 -close_fd_mask=2 -print_final_stats=1 \
		-artifact_prefix="$work/" "${dict[@]}" "$work/corpus" \
		>"$work/log" 2>&1 || rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
	found=$(find "$work" -maxdepth 1 -type f \( -name 'crash-*' -o \
		-name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' -o \
		-name 'slow-unit-*' \) | sort)
	if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
		echo 1 > "$work/failed"
		{
			printf '%-10s FAILED after %s executions (exit %d); log: %s\n' \
				"$t" "${runs:-?}" "$rc" "$work/log"
			for f in $found; do
				echo "           reproduce: $build/tests/fuzz/fuzz_$t $f"
			done
			grep -m1 -E 'ERROR: |runtime error|SUMMARY' "$work/log" | sed 's/^/           /' || true
		} > "$work/result"
	else
		printf '%-10s %12s executions in %ss, no crash\n' "$t" "$runs" \
			"$secs" > "$work/result"
	fi
}

# as many at once as there are cores (each target is one process), the
# summary in the targets' order
for t in "${targets[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do wait -n || true; done
	run_one "$t" &
done
wait
failed=0
for t in "${targets[@]}"; do
	work=$(realpath "$build")/fuzz-run/$t
	cat "$work/result" 2>/dev/null || { echo "$t: no result"; failed=1; }
	[ -e "$work/failed" ] && failed=1
done
exit $failed

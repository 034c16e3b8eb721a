#!/usr/bin/env bash
# The whole test suite: set up, build with warnings as errors, run every
# test through CTest (the guest test builds the test image once per recipe,
# cached in /var/cache/nook, and boots it under TCG), and beside it the
# rest again, built with AddressSanitizer + UBSan; then the fuzzers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# -O3 inlines across more calls, and GCC then sees (and warns of) paths it
# does not see at setup's -O2: the binary alone, warnings as errors.
echo "== -O3 build, warnings as errors (build-o3/)"
cmake -S . -B build-o3 -DCMAKE_BUILD_TYPE=Release \
	-DCMAKE_C_FLAGS_RELEASE="-O3 -DNDEBUG" -DNOOK_WERROR=ON >/dev/null
cmake --build build-o3 --target nook -j"$(nproc)" >/dev/null

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build (build-asan/)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNOOK_WERROR=ON \
	-DNOOK_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$(nproc)" >/dev/null

# The guest boots take most of the time, one after another (CTest's lock
# "guest"), and a boot leaves a core idle much of it: the other tests of
# build/ run beside them, and so do all but the guests once more under the
# sanitizers (where a boot would test QEMU's speed, not nook's memory),
# niced to give way. One CTest per build directory; the sanitizers' output
# is shown once it ends.
echo "== tests (build/), and beside them the tests under the sanitizers"
asan_log=build-asan/ctest.out
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	setsid nice -n 5 ctest --test-dir build-asan --output-on-failure \
	--label-exclude guest -j"$(nproc)" > "$asan_log" 2>&1 &
asan=$!
trap 'kill -TERM -- -"$asan" 2>/dev/null' EXIT
rc=0
ctest --test-dir build --output-on-failure -j"$(($(nproc) + 1))" || rc=1
wait "$asan" || rc=1
trap - EXIT
echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)"
cat "$asan_log"
[ "$rc" = 0 ] || exit 1

# Every parser of outside input under libFuzzer (clang), briefly: a few
# seconds each against a copy of its seeds, one per core (tests/fuzz/run.sh).
echo "== fuzz targets, 10 s each (build-fuzz/)"
bash tests/fuzz/run.sh 10

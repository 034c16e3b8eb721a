#!/usr/bin/env bash
# The whole test suite: set up, build with warnings as errors (and at -O3),
# and with AddressSanitizer + UBSan; run every test through CTest, the
# guest tests on set-up's build/ (they build the test image once per
# recipe, cached in /var/cache/nook, and boot it under TCG), the rest
# under the sanitizers; then the fuzzers.
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

# All but the guest tests, under the sanitizers (where a boot would test
# QEMU's speed, not nook's memory), two per core: they wait much of the
# time on QEMU, ssh and each other (measured on 2 cores: 500 s at -j4,
# 541 s at -j6 with both cores busy throughout). They run once, there:
# build/ (-O2) is what the guest tests run.
echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/), all but the guests"
rc=0
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	ctest --test-dir build-asan --output-on-failure --label-exclude guest \
	-j"$((2 * $(nproc)))" || rc=1

# The guest tests once the rest has ended: a TCG guest beside that work
# slows far more than its share (2.7 to 3.5 times, measured: a vCPU that
# waits for the core stalls the other one too). Beside another guest it
# slows less, so as many run at once as there are cores (one that boots
# two guests at once takes two: tests/CMakeLists.txt).
echo "== guest tests (build/)"
ctest --test-dir build --output-on-failure --label-regex guest \
	-j"$(nproc)" || rc=1
[ "$rc" = 0 ] || exit 1

# Every parser of outside input under libFuzzer (clang), briefly: a few
# seconds each against a copy of its seeds, one per core (tests/fuzz/run.sh).
echo "== fuzz targets, 10 s each (build-fuzz/)"
bash tests/fuzz/run.sh 10

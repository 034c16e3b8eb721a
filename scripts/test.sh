#!/usr/bin/env bash
# The whole test suite: set up, build with warnings as errors, run every
# test through CTest (the guest test builds the test image once per recipe,
# cached in /var/cache/nook, and boots it under TCG), then the rest
# again, built with AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# -O3 inlines across more calls, and GCC then sees (and warns of) paths it
# does not see at setup's -O2: the binary alone, warnings as errors.
echo "== -O3 build, warnings as errors (build-o3/)"
cmake -S . -B build-o3 -DCMAKE_BUILD_TYPE=Release \
	-DCMAKE_C_FLAGS_RELEASE="-O3 -DNDEBUG" -DNOOK_WERROR=ON >/dev/null
cmake --build build-o3 --target nook -j"$(nproc)" >/dev/null

# One per core where they only wait on nook and fake QEMUs; the guest
# boots one after another: each keeps both cores busy.
echo "== tests (build/)"
ctest --test-dir build --output-on-failure --label-exclude guest -j"$(nproc)"
ctest --test-dir build --output-on-failure --label-regex guest

# The guest boots run once, above: under the sanitizers they would test
# QEMU's speed, not nook's memory safety.
echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNOOK_WERROR=ON \
	-DNOOK_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$(nproc)" >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	ctest --test-dir build-asan --output-on-failure --label-exclude guest \
	-j"$(nproc)"

# Every parser of outside input under libFuzzer (clang), briefly: a few
# seconds each against a copy of its seeds, one per core (tests/fuzz/run.sh).
echo "== fuzz targets, 10 s each (build-fuzz/)"
bash tests/fuzz/run.sh 10

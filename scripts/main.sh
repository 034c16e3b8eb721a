#!/usr/bin/env bash
# The main job: set up, build, and use nook for what it does today.
# (Until `nook local start` lands, that is: check the host, build a cidata
# seed from the example user-data, and read it back.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
nook=build/nook
out=${NOOK_OUT:-build/example}
mkdir -p "$out"
set -x
"$nook" doctor
"$nook" cidata build -o "$out/seed.iso" --user-data examples/user-data.yaml --hostname example
"$nook" cidata show "$out/seed.iso"
"$nook" cidata show "$out/seed.iso" --file meta-data

#!/usr/bin/env bash
# The main job: set up, build, then start the default VM from the default
# image (Debian 12 with cloud-init, built from Debian packages and cached)
# with the example user-data, and run a command in it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
nook=build/nook
"$nook" doctor
# the default image into the store: ~4 min the first time, then cached
"$nook" images build debian-12
state=$("$nook" local status --json 2>/dev/null |
	python3 -c 'import json,sys; print(json.load(sys.stdin).get("state", ""))' || true)
set -x
if [ "$state" != running ]; then
	"$nook" local start --user-data examples/user-data.yaml
fi
"$nook" shell -- sh -c 'uname -a; cloud-init status --long; cat /etc/os-release | head -1'
"$nook" local status
set +x
echo "The VM keeps running: 'build/nook shell' gets you in, 'build/nook local stop' stops it."

#!/usr/bin/env bash
# Benchmarks on one running test VM:
#  1. a warm `nook shell NAME -- true` (over nook's ssh master) against a
#     fresh `ssh ... true` with the same key and pinned host key, alternating,
#     RUNS each (default 50);
#  2. a no-change re-sync of a 5,000-file tree: `nook sync` against raw
#     `rsync -a -e ssh` (fresh ssh each time), alternating, SYNCS each
#     (default 10), after each has done its first full sync.
# Prints medians and time ratios (nook/peer: lower is better).
# Usage: tests/bench/shell-sync-vs-ssh.sh BUILD-DIR [RUNS] [SYNCS]
set -eu
build=$(realpath "${1:-build}")
runs=${2:-50}
syncs=${3:-10}
here=$(cd "$(dirname "$0")" && pwd)
img=$(bash "$here/../guest/image.sh")
work=$(mktemp -d "${TMPDIR:-/tmp}/nook-bench.XXXXXX")
export NOOK_HOME=$work/home
nook=$build/nook
trap '"$nook" local delete bench --force >/dev/null 2>&1; rm -rf "$work"' EXIT
cd "$work"
echo "starting the bench VM (one TCG boot)..."
"$nook" local start bench --image "$img" >/dev/null
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ssh_port"])' "$NOOK_HOME/vms/bench/vm.json")
vm=$NOOK_HOME/vms/bench
ssh_opts=(-F /dev/null -p "$port" -i "$vm/id_ed25519" -o IdentitiesOnly=yes
	  -o UserKnownHostsFile="$vm/known_hosts" -o HostKeyAlias=nook-bench
	  -o StrictHostKeyChecking=yes -o BatchMode=yes -o LogLevel=ERROR)
"$nook" shell bench -- true # the master is up: "warm"

echo "== nook shell -- true (warm) vs fresh ssh true, $runs each, alternating ($(date -u +%F))"
"$build/tests/nook-benchrun" "$runs" nook-shell ssh \
	--- "$nook" shell bench -- true \
	--- ssh "${ssh_opts[@]}" debian@127.0.0.1 true

mkdir tree
python3 - <<'PY'
import os
for d in range(50):
    os.makedirs(f"tree/d{d:02d}", exist_ok=True)
    for f in range(100):
        with open(f"tree/d{d:02d}/f{f:03d}.txt", "w") as fh:
            fh.write(f"file {d}/{f}\n" * (1 + f % 7))
PY
rsh="ssh ${ssh_opts[*]}"
"$nook" sync bench tree tree >/dev/null
rsync -a -e "$rsh" tree/ debian@127.0.0.1:tree-raw
echo "== no-change re-sync of 5,000 files: nook sync vs rsync -a -e ssh, $syncs each, alternating"
"$build/tests/nook-benchrun" "$syncs" nook-sync rsync-ssh \
	--- "$nook" sync bench tree tree \
	--- rsync -a -e "$rsh" tree/ debian@127.0.0.1:tree-raw

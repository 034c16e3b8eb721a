#!/usr/bin/env bash
# Print the directory of the cached test image, building it first when the
# cache has none for this recipe. The cache lives outside the checkout
# ($NOOK_IMAGE_CACHE, default /var/cache/nook: the one `nook images build`
# uses as root), keyed by the sha256 of the recipe, so a second run is
# fast and a changed recipe rebuilds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
recipe=$here/../../images/recipes/debian-12.sh
cache=${NOOK_IMAGE_CACHE:-${NOOK_TEST_CACHE:-/var/cache/nook}}
key=$(sha256sum "$recipe" | cut -c1-16)
dir=$cache/debian-12-$key
if [ -f "$dir/manifest.json" ]; then
	echo "$dir"
	exit 0
fi
mkdir -p "$cache"
# guest tests run two at a time: one builds, the other waits for it
exec 9>>"$cache/.test-image-$key.lock"
flock 9
if [ ! -f "$dir/manifest.json" ]; then
	tmp=$(mktemp -d "$cache/.build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	echo "image.sh: building the test image (recipe $key) into $dir" >&2
	bash "$recipe" "$tmp/out" >&2
	mv "$tmp/out" "$dir"
fi
echo "$dir"

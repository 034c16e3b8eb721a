#!/usr/bin/env bash
# Install what nook needs to build, run and test on Debian 12, then build.
# Runs as root (or through sudo). Skips apt when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
	# build
	build-essential cmake pkg-config
	libarchive-dev libiso9660-dev libcdio-dev libjansson-dev libyaml-dev
	zlib1g-dev liblzma-dev libzstd-dev liblz4-dev libcurl4-openssl-dev
	libcmocka-dev
	# what nook drives
	qemu-system-x86 qemu-utils openssh-client rsync
	# what the tests check nook's output with, and the peers it is compared to
	genisoimage xorriso cloud-image-utils python3 python3-yaml util-linux zstd
	strace
	# the switch's tests: vde_plug (libvdeplug's own plug), vde_switch (the
	# switch an older nook ran)
	vde2
	# nook export libvirt: virt-xml-validate and virsh; the guest test's libvirtd
	libvirt-clients libvirt-daemon-system dnsmasq-base
	# the fuzz targets (tests/fuzz): clang's libFuzzer and sanitizers
	clang libclang-rt-14-dev
	# the installed man page and shell completion (cli_install)
	groff-base bash-completion zsh
	# building the test guest image
	debootstrap syslinux syslinux-common mtools dosfstools fdisk e2fsprogs
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build=${NOOK_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNOOK_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
echo "setup: built $build/nook"

#!/usr/bin/env bash
# nook images: import (dir, disk, bundle), list, export, rm, and pull from
# a local HTTP server on 127.0.0.1: success with each kind of checksum, a
# corrupted file (rejected, nothing stored), an interrupted transfer
# (resumed, over http or file://, but only from the file it came from: a
# changed or shorter one is downloaded whole), plain http without a
# checksum (refused).
NOOK=$1
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
cleanup() {
	[ -n "${srv:-}" ] && kill "$srv" 2>/dev/null
	[ -n "${srv2:-}" ] && kill "$srv2" 2>/dev/null
	"$NOOK" local delete keyed --force >/dev/null 2>&1
	"$NOOK" local delete nosuch --force >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
names() { "$NOOK" images list --json | json '" ".join(sorted(e["name"] for e in d))'; }
store_clean() { test -z "$(ls -A "$NOOK_HOME/images" 2>/dev/null | grep -v '^names$' | grep -v '^\.downloads$' | grep -v '^\.lock$' | grep '^\.' )"; }

# a small but real qcow2 with data in it, and a kernel-like file
qemu-img create -q -f qcow2 small.qcow2 64M
head -c 300000 /dev/urandom > payload
qemu-io -c "write -P 0x5a 0 1M" small.qcow2 >/dev/null 2>&1 || true
echo kernel > vmlinuz

expect_rc "import a disk with a kernel" 0 "$NOOK" images import small.qcow2 --name small \
	--kernel vmlinuz --cmdline "root=/dev/vda1 console=ttyS0"
expect_rc "list --json" 0 "$NOOK" images list --json
check "small is listed" test "$(echo "$OUT" | json 'd[0]["name"]')" = small
check "boot modes from the kernel" test "$(echo "$OUT" | json '",".join(d[0]["boot"])')" = direct,disk
dir=$(echo "$OUT" | json 'd[0]["dir"]')
check "the directory is the manifest's sha256" \
	test "$(basename "$dir")" = "$(sha256sum "$dir/manifest.json" | cut -d' ' -f1)"
check "the stored disk is byte-identical" cmp -s small.qcow2 "$dir/disk.qcow2"
check "manifest has the disk's sha256" grep -q "$(sha256sum small.qcow2 | cut -d' ' -f1)" "$dir/manifest.json"
expect_rc "list (table)" 0 "$NOOK" images list
contains "table names small" "$OUT" "small"

# --json: the image stored, and the one its name left, as one object
qemu-img create -q -f qcow2 js.qcow2 1M
expect_rc "import --json" 0 "$NOOK" images import js.qcow2 --json
check "  names the image, its digest and dir, none replaced" test "$(echo "$OUT" | json '(d["name"], d["digest"] == d["dir"].split("/")[-1], d["replaced"])')" = "('js', True, None)"
check "  the digest list shows" test "$(echo "$OUT" | json 'd["digest"]')" = "$("$NOOK" images list --json | json '[e["digest"] for e in d if e["name"] == "js"][0]')"
first=$(echo "$OUT" | json 'd["digest"]')
qemu-img create -q -f qcow2 js.qcow2 2M
expect_rc "import --json again under the name" 0 "$NOOK" images import js.qcow2 --json
check "  says the image it replaced, removed" test "$(echo "$OUT" | json '(d["replaced"]["digest"], d["replaced"]["removed"])')" = "('$first', True)"
check "  and stdout is that object only" test "$(echo "$OUT" | json 'sorted(d)')" = "['digest', 'dir', 'name', 'replaced']"
expect_rc "  rm" 0 "$NOOK" images rm js

expect_rc "export" 0 "$NOOK" images export small small.tar.zst
# a name of a directory that is not there, or none: said at once (the
# whole bundle was written beside it, then a rename failed: "cannot
# replace out/: Not a directory")
expect_rc "export into 'nosuchdir/' is refused" 1 "$NOOK" images export small nosuchdir/
contains "  saying so" "$ERR" "cannot write nosuchdir/: No such file or directory"
check "  nothing left beside it" test -z "$(ls -A | grep '^\.nosuchdir')"
expect_rc "export into '' is refused" 1 "$NOOK" images export small ""
contains "  saying so" "$ERR" "cannot write : No such file or directory"
# a FIFO or a device is written into, never replaced by a file (the
# device is a /dev/null made here: a nook that replaced it breaks nothing)
mkfifo export.fifo
{ timeout 20 cat export.fifo > via-fifo.tar.zst; } &
reader=$!
expect_rc "export into a FIFO" 0 timeout 20 "$NOOK" images export small export.fifo
wait "$reader"
check "... the FIFO stays one" test -p export.fifo
check "... and the bundle came through it" cmp -s small.qcow2 <(tar --zstd -xOf via-fifo.tar.zst disk.qcow2)
if [ "$(id -u)" = 0 ] && mknod export.null c 1 3 2>/dev/null; then
	expect_rc "export into a character device (as root)" 0 "$NOOK" images export small export.null
	check "... it is still a device" test -c export.null
	check "... and nothing was left beside it" test -z "$(ls -A | grep '^\.export\.null')"
fi
check "bundle is zstd" test "$(head -c4 small.tar.zst | od -An -tx1 | tr -d ' ')" = 28b52ffd
contains "tar lists the manifest first" "$(tar --zstd -tf small.tar.zst | head -1)" "manifest.json"
expect_rc "import the bundle back" 0 "$NOOK" images import small.tar.zst --name again
check "same digest after the round trip" test "$(readlink -f "$dir")" = \
	"$(readlink -f "$NOOK_HOME/images/$(cat "$NOOK_HOME/images/names/again")")"
tar -C "$dir" -czf small.tgz manifest.json disk.qcow2 vmlinuz
expect_rc "import a tar.gz" 0 "$NOOK" images import small.tgz --name gz
tar -C "$dir" -cJf small.tar.xz manifest.json disk.qcow2 vmlinuz
expect_rc "import a tar.xz" 0 "$NOOK" images import small.tar.xz --name xz
# export compresses as the name says (before, always zstd), "-" is stdout
magic() { head -c "$2" "$1" | od -An -tx1 | tr -d ' \n'; }
expect_rc "export .tar.gz" 0 "$NOOK" images export small e.tar.gz
check "  is gzip" test "$(magic e.tar.gz 2)" = 1f8b
expect_rc "export .tar.xz" 0 "$NOOK" images export small e.tar.xz
check "  is xz" test "$(magic e.tar.xz 6)" = fd377a585a00
expect_rc "export .tar" 0 "$NOOK" images export small e.tar
check "  is a plain tar" test "$(tar -tf e.tar | head -1)" = manifest.json
expect_rc "export -" 0 "$NOOK" images export small -
check "  writes zstd to stdout" test "$(magic "$WORK/.out" 4)" = 28b52ffd
check "  and no file named '-'" test ! -e -
expect_rc "export - onto a terminal is refused" 1 script -qec "$NOOK images export small -" /dev/null
contains "  saying why" "$OUT" "standard output is a terminal"
expect_rc "export .txz" 0 "$NOOK" images export small e.txz
check "  is xz" test "$(magic e.txz 6)" = fd377a585a00
# in any case of letters; a name promising what nook does not write is a
# usage error naming what it writes (before, some were written as zstd)
expect_rc "export .TAR.GZ" 0 "$NOOK" images export small E.TAR.GZ
check "  is gzip" test "$(magic E.TAR.GZ 2)" = 1f8b
expect_rc "  imports back (a bundle's name in capitals)" 0 "$NOOK" images import E.TAR.GZ --name back-caps
check "  as the same image" test "$(cat "$NOOK_HOME/images/names/back-caps")" = "$(cat "$NOOK_HOME/images/names/small")"
"$NOOK" images rm back-caps > /dev/null
expect_rc "export .tar.Zst" 0 "$NOOK" images export small e.tar.Zst
check "  is zstd" test "$(magic e.tar.Zst 4)" = 28b52ffd
for f in e.tar.bz2 e.TAR.BZ2 e.tbz2 out.zip e.tar.lz4 e.gz; do
	expect_rc "export $f (not written) is a usage error" 2 "$NOOK" images export small "$f"
	contains "  saying what is written" "$ERR" "a bundle is written as .tar.zst (.tzst), .tar.gz (.tgz), .tar.xz (.txz) or .tar"
	check "  and nothing is written" test ! -e "$f"
done
expect_rc "  said before the image is looked for" 2 "$NOOK" images export nosuch e.zip
for f in e.tar.gz e.tar.xz e.tar e.txz; do
	expect_rc "  $f imports back" 0 "$NOOK" images import "$f" --name "back-${f#e.tar}"
	check "  as the same image" test "$(cat "$NOOK_HOME/images/names/back-${f#e.tar}")" = "$(cat "$NOOK_HOME/images/names/small")"
	"$NOOK" images rm "back-${f#e.tar}" > /dev/null
done
# an OUT in a directory anyone may write, not sticky as /tmp is: another
# user could swap the bundle for one of theirs (before, it was written)
mkdir open && chmod 0777 open && mkdir open/sub
expect_rc "export into a directory anyone may write is refused" 1 "$NOOK" images export small open/x.tar.zst
contains "  saying what, where and what to do" "$ERR" "open/x.tar.zst: another user could swap the bundle for one of theirs: $WORK/open has mode 0777: anyone may replace what it holds; chmod o-w it, or make it sticky, or write the bundle elsewhere"
check "  and writing nothing" test -z "$(ls -A open | grep -v '^sub$')"
expect_rc "  so is one into a directory below it" 1 "$NOOK" images export small open/sub/x.tar.zst
contains "  naming the one on the way" "$ERR" "$WORK/open has mode 0777"
chmod +t open
expect_rc "  sticky (as /tmp), it is written" 0 "$NOOK" images export small open/x.tar.zst
# a SIGKILLed export (no handler of nook's runs) takes its tar along; the
# temporary file it leaves goes at the next export to that name. The tar
# is a stand-in that holds, then runs the real one.
mkdir tbin
printf '#!/bin/bash\necho $$ > "%s/tar.pid"\nfor _ in $(seq 300); do [ -e "%s/tar.go" ] && break; sleep 0.1; done\nexec %s "$@"\n' "$WORK" "$WORK" "$(command -v tar)" > tbin/tar
chmod +x tbin/tar
killed_ends "an export SIGKILLed as it runs tar" "  ends its tar" tar.pid \
	env PATH="$WORK/tbin:$PATH" "$NOOK" images export small killed.tar.zst
touch tar.go # one left running goes on to its end
check "  leaving its temporary file only" test "$(ls -A | grep -c '^\.killed\.tar\.zst\.')" = 1
expect_rc "  which the next export to that name removes" 0 "$NOOK" images export small killed.tar.zst
check "  leaving none" test -z "$(ls -A | grep '^\.killed\.tar\.zst\.')"
check "  and a whole bundle" cmp -s small.qcow2 <(tar --zstd -xOf killed.tar.zst disk.qcow2)
# a bundle whose disk does not match its manifest
mkdir bad && cp "$dir"/* bad/ && chmod u+w bad/* &&
	printf X | dd of=bad/disk.qcow2 bs=1 seek=300000 conv=notrunc status=none
tar -C bad -cf bad.tar manifest.json disk.qcow2 vmlinuz
expect_rc "a tampered bundle is refused" 1 "$NOOK" images import bad.tar --name bad
# the bundle and its file are named, never a staging directory the user
# never saw (before: "disk.qcow2: checksum mismatch" alone)
contains "says checksum mismatch, naming the bundle and the file" "$ERR" "nook: bad.tar: file disk.qcow2: checksum mismatch: its sha256 is $(sha256sum bad/disk.qcow2 | cut -d' ' -f1), the manifest says $(sha256sum small.qcow2 | cut -d' ' -f1)"
contains "  and what to do" "$ERR" "copy or export the image again"
check "nothing half-imported" store_clean
check "no name for it" test ! -e "$NOOK_HOME/images/names/bad"
expect_rc "a tampered image directory is refused" 1 "$NOOK" images import bad --name bad
contains "  naming the directory and the file" "$ERR" "nook: bad: file disk.qcow2: checksum mismatch"
check "  nothing half-imported" store_clean
echo grown >> bad/disk.qcow2
tar -C bad -cf bad.tar manifest.json disk.qcow2 vmlinuz
expect_rc "a disk larger than its manifest says is refused" 1 "$NOOK" images import bad.tar --name bad
contains "... before it is read" "$ERR" "disk.qcow2 is $(stat -c %s bad/disk.qcow2) bytes, the manifest says"
check "nothing half-imported" store_clean
# a bundle whose manifest.json nook cannot read: the bundle and its member
# are named, never the staging directory it was read into (before:
# "nook: .../images/.tmp-PID-XXXXXX/manifest.json: unexpected token ...")
badman() { # WHAT JSON WHY: a bundle whose manifest is JSON is refused, saying WHY
	rm -rf badman && mkdir badman && cp "$dir"/* badman/ && chmod u+w badman/*
	printf '%s' "$2" > badman/manifest.json
	tar -C badman -cf badman.tar manifest.json disk.qcow2 vmlinuz
	expect_rc "a bundle whose manifest $1 is refused" 1 "$NOOK" images import badman.tar --name badman
	contains "  naming the bundle and manifest.json, saying what is wrong" "$ERR" "nook: badman.tar: manifest.json: $3"
	contains "  and what to do" "$ERR" "export the image again, or fix manifest.json"
	check "  not the staging directory" test -z "$(printf '%s' "$ERR" | grep -F -e "$NOOK_HOME" -e .tmp-)"
	check "  nothing half-imported" store_clean
}
badman "is cut short" '{"files": {' "not JSON: "
badman "is an array" '[{"files": {}}]' "is an array, not an object"
badman "gives files as a list" '{"files": ["disk.qcow2"]}' 'its "files" is an array, not an object'
badman "gives a file a string" '{"files": {"disk.qcow2": "x"}}' "file 'disk.qcow2' is a string, not an object"
# a login user that is no user name (a newline would add a ProxyCommand
# line to ssh-config) is refused at import
mkdir baduser && cp "$dir"/* baduser/ && chmod u+w baduser/*
python3 - baduser/manifest.json <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); m["user"] = "debian\n  ProxyCommand touch /tmp/nook-pwned"
json.dump(m, open(sys.argv[1], "w"))
PY
expect_rc "an image whose user is no user name is refused" 1 "$NOOK" images import baduser --name baduser
contains "  saying so" "$ERR" "not a user name"
check "  and nothing is stored" test ! -e "$NOOK_HOME/images/names/baduser"
contains "  naming the directory, not where it was staged" "$ERR" "nook: baduser: manifest.json: the login user is not a user name"
tar -C baduser -cf baduser.tar manifest.json disk.qcow2 vmlinuz
expect_rc "a bundle of it is refused" 1 "$NOOK" images import baduser.tar --name baduser
contains "  naming the bundle and manifest.json" "$ERR" "nook: baduser.tar: manifest.json: the login user is not a user name"
# what would boot nothing is a usage error, not stored and ignored: a
# bundle's --kernel and --cmdline (it boots as its manifest says), an
# --initrd or a --cmdline without --kernel (a disk boot reads neither)
expect_rc "--kernel with a bundle is a usage error" 2 "$NOOK" images import small.tar.zst --name kbundle --kernel vmlinuz --cmdline quiet
contains "  saying why" "$ERR" "--kernel, --initrd and --cmdline go with a disk file (a bundle or an image directory boots as its manifest says)"
check "  nothing stored" test ! -e "$NOOK_HOME/images/names/kbundle"
expect_rc "--initrd without --kernel is a usage error" 2 "$NOOK" images import small.qcow2 --name kinitrd --initrd vmlinuz
contains "  saying why" "$ERR" "--initrd and --cmdline go with --kernel: a disk boot reads neither"
expect_rc "--cmdline without --kernel is a usage error" 2 "$NOOK" images import small.qcow2 --name kcmd --cmdline quiet --json
check "  said as JSON" test "$(echo "$OUT" | json 'd["usage"]')" = True
check "  nothing stored" test ! -e "$NOOK_HOME/images/names/kcmd"
# kernel arguments with a control character, or longer than x86's
# COMMAND_LINE_SIZE (2048 with the NUL), are refused at import: as a usage
# error when given, as a bad image in a manifest (a directory, a bundle)
expect_rc "--cmdline with a newline and an escape is a usage error" 2 "$NOOK" images import small.qcow2 --name badcmd \
	--kernel vmlinuz --cmdline "$(printf 'console=ttyS0\nroot=/dev/vda\033[2J')"
contains "  naming the problem" "$ERR" "--cmdline has a control character or a byte that is not UTF-8 (\x0a) at byte 13"
expect_rc "--cmdline with a byte that is not UTF-8 is a usage error" 2 "$NOOK" images import small.qcow2 --name badcmd \
	--kernel vmlinuz --cmdline "$(printf 'root=/dev/vda \377')"
contains "  naming it" "$ERR" "(\xff) at byte 14"
expect_rc "--cmdline with a C1 control (U+009B, CSI) is a usage error" 2 "$NOOK" images import small.qcow2 --name badcmd \
	--kernel vmlinuz --cmdline "$(printf 'a\302\233')"
contains "  naming it" "$ERR" "(\xc2) at byte 1"
expect_rc "a --cmdline of 5000 bytes is a usage error" 2 "$NOOK" images import small.qcow2 --name badcmd \
	--kernel vmlinuz --cmdline "$(printf '%05000d' 0)"
contains "  naming the problem" "$ERR" "--cmdline is 5000 bytes long: a kernel takes at most 2047"
check "  nothing is stored" test ! -e "$NOOK_HOME/images/names/badcmd"
expect_rc "a --cmdline of 2047 bytes is taken" 0 "$NOOK" images import small.qcow2 --name longcmd \
	--kernel vmlinuz --cmdline "$(printf 'x=%02045d' 0)"
"$NOOK" images rm longcmd > /dev/null
# badcmd WHAT CMDLINE WHY: an image directory and a bundle whose manifest
# gives CMDLINE (a JSON string's inside) are refused, saying WHY
badcmd() {
	rm -rf badcmd && mkdir badcmd && cp "$dir"/* badcmd/ && chmod u+w badcmd/*
	python3 - badcmd/manifest.json "$2" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); m["cmdline"] = json.loads('"%s"' % sys.argv[2])
json.dump(m, open(sys.argv[1], "w"))
PY
	tar -C badcmd -cf badcmd.tar manifest.json disk.qcow2 vmlinuz
	for src in badcmd badcmd.tar; do
		expect_rc "$src: a manifest whose cmdline $1 is refused" 1 "$NOOK" images import "$src" --name badcmd
		contains "  saying why" "$ERR" "manifest.json: the kernel command line $3"
		check "  and nothing is stored" test ! -e "$NOOK_HOME/images/names/badcmd"
	done
}
badcmd "has an escape" 'root=/dev/vda\u001b[2J' "has a control character or a byte that is not UTF-8 (\x1b) at byte 13"
badcmd "is 5000 bytes" "$(printf 'x=%04998d' 0)" "is 5000 bytes long"
check "  nor half-imported" store_clean
# a traversal entry, written by Python's tarfile
python3 -c 'import tarfile,io; t=tarfile.open("evil.tar","w"); i=tarfile.TarInfo("../../evil"); i.size=1; t.addfile(i, io.BytesIO(b"x")); t.close()'
expect_rc "a traversal bundle is refused" 1 "$NOOK" images import evil.tar --name evil
check "nothing written outside" test ! -e "$NOOK_HOME/evil" -a ! -e "$WORK/evil"
expect_rc "import a bad name" 2 "$NOOK" images import small.qcow2 --name "Bad Name"
contains "  says which characters, not to give --name it was given" "$ERR" "use a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
check "  (no 'give --name')" test "${ERR#*give --name}" = "$ERR"
expect_rc "import a 65-character name" 2 "$NOOK" images import small.qcow2 --name "$(printf 'a%.0s' $(seq 65))"
contains "  says it is too long" "$ERR" "at most 64 characters"
qemu-img create -q -f qcow2 -F qcow2 -b "$WORK/small.qcow2" overlay.qcow2
expect_rc "an overlay (backing file) is refused" 1 "$NOOK" images import overlay.qcow2 --name ov
contains "says convert it" "$ERR" "backing file"
# nor is it booted when a project file names it (a cloned repository's
# qcow2 whose backing file is your key, for the VM to read), nor an image
# directory's file that is a symlink out of it; nor does a project's
# store name find a file of that name where the user stands
qemu-img create -q -f raw "$WORK/key" 1M
mkdir -p kproj/sub
qemu-img create -q -f qcow2 -F raw -b "$WORK/key" kproj/keyed.qcow2
printf 'name: keyed\nimage: keyed.qcow2\n' > kproj/nook.yaml
kstart() { (cd "$1" && exec "$NOOK" local start --no-wait --memory 256M --accel tcg); }
expect_rc "a project's image with a backing file is not booted" 1 kstart kproj
contains "  says why" "$ERR" "keyed.qcow2: a qcow2 with a backing file"
check "  and no VM is made" test ! -e "$NOOK_HOME/vms/keyed"
cp -r "$dir" kproj/img
rm kproj/img/vmlinuz
ln -s "$WORK/key" kproj/img/vmlinuz
printf 'name: keyed\nimage: img\n' > kproj/nook.yaml
expect_rc "a project's image directory with a file linked out" 1 kstart kproj
contains "  says where it leads" "$ERR" "vmlinuz leads outside the image's directory, to $WORK/key"
check "  and no VM is made" test ! -e "$NOOK_HOME/vms/keyed"
printf 'name: keyed\nimage: nosuch\n' > kproj/nook.yaml
ln -s "$WORK/kproj/keyed.qcow2" kproj/sub/nosuch
expect_rc "a project's store name is no file where you stand" 1 kstart kproj/sub
contains "  it is looked for in the store" "$ERR" "no image 'nosuch' in the store"
contains "  the default image is the one built" "$ERR" "'nook images build debian-12' makes the default one"
# a VM made from a project's image, whose disk a 'git pull' turns into an
# overlay of the key: its next start by NAME checks the disk again
qemu-img create -q -f qcow2 kproj/good.qcow2 64M
printf 'name: keyed\nimage: good.qcow2\n' > kproj/nook.yaml
expect_rc "a VM from a project's clean image starts" 0 kstart kproj
check "  its record names its project, checked at each start" grep -q "\"within\": \"$WORK/kproj\"" "$NOOK_HOME/vms/keyed/vm.json"
expect_rc "  stop it" 0 "$NOOK" local stop keyed --force
mv kproj kproj.moved
ln -s kproj.moved kproj
expect_rc "the project moved, linked from where it was: still starts" 0 "$NOOK" local start keyed --no-wait
expect_rc "  stop it" 0 "$NOOK" local stop keyed --force
rm kproj
mv kproj.moved kproj
qemu-img create -q -f qcow2 -F raw -b "$WORK/key" kproj/good.qcow2
expect_rc "its disk turned into an overlay of the key: not started" 1 "$NOOK" local start keyed --no-wait
contains "  says why" "$ERR" "good.qcow2: a qcow2 with a backing file"
expect_rc "  nor exported" 1 "$NOOK" export libvirt keyed -o kexp
contains "  saying why" "$ERR" "good.qcow2: a qcow2 with a backing file"
check "  and nothing written" test ! -e kexp/keyed.qcow2
rm kproj/good.qcow2
ln -s "$WORK/small.qcow2" kproj/good.qcow2
expect_rc "its disk turned into a symlink out: not started" 1 "$NOOK" local start keyed --no-wait
contains "  says where it leads" "$ERR" "kproj/good.qcow2 leads outside its project ($WORK/kproj), to $WORK/small.qcow2"
expect_rc "  delete it" 0 "$NOOK" local delete keyed
rm -rf kproj
mkdir empty
expect_rc "a directory without a manifest" 1 "$NOOK" images import empty --name e
contains "names the manifest" "$ERR" "manifest.json"

# --- no imported image may make QEMU open a file outside the store ---------
# hostile DIR FORMAT QEMU-IMG-ARGS...: DIR/disk.qcow2 made with those
# arguments, a manifest declaring FORMAT with its true sha256, and
# DIR.tar, a bundle of the two
hostile() {
	local d=$1 fmt=$2
	shift 2
	rm -rf "$d" && mkdir "$d"
	qemu-img create -q -f qcow2 "$@" "$d/disk.qcow2" 64M || return 1
	printf '{"name":"h","arch":"x86_64","boot":["disk"],"files":{"disk.qcow2":{"format":"%s","sha256":"%s"}}}\n' \
		"$fmt" "$(sha256sum "$d/disk.qcow2" | cut -d' ' -f1)" > "$d/manifest.json"
	tar -C "$d" -cf "$d.tar" manifest.json disk.qcow2
}
# refused NAME WHY: both DIR and DIR.tar are refused saying WHY, nothing kept;
# the message names what was imported and its disk (it named the copy in
# the store's staging directory, gone by then)
refused() {
	expect_rc "$1: an image directory is refused" 1 "$NOOK" images import h --name h
	contains "... saying why" "$ERR" "$2"
	contains "... of the directory's disk" "$ERR" "nook: h: disk disk.qcow2: "
	expect_rc "$1: a bundle is refused" 1 "$NOOK" images import h.tar --name h
	contains "... saying why" "$ERR" "$2"
	contains "... of the bundle's disk" "$ERR" "nook: h.tar: disk disk.qcow2: "
	check "... nothing is stored" test ! -e "$NOOK_HOME/images/names/h"
	check "... nothing half-imported" store_clean
}
hostile h qcow2 -u -b /etc/shadow -F raw
refused "a backing file (/etc/shadow)" "backing file"
hostile h qcow2 -u -b 'json:{"driver":"raw","file":{"driver":"file","filename":"/etc/shadow"}}' -F raw
refused "a json: backing file" "backing file"
hostile h qcow2 -o data_file="$WORK/h-data",data_file_raw=on
refused "an external data file" "external data file"
expect_rc "a lone qcow2 with a data file is refused too" 1 "$NOOK" images import h/disk.qcow2 --name h
contains "... saying why" "$ERR" "external data file"
hostile h raw -u -b /etc/shadow -F raw
refused "such a qcow2 declared raw" "a qcow2 image, not a raw disk"
hostile h vmdk
refused "a format other than qcow2 or raw" '"qcow2" or "raw"'

# --- what is no disk is not imported as one ---------------------------------
expect_rc "import /dev/zero is refused" 1 timeout 20 "$NOOK" images import /dev/zero --name z
contains "... as no regular file" "$ERR" "not a regular file"
printf '<!DOCTYPE html>\n<html><body>Sign in to download</body></html>\n' > page.img
expect_rc "an HTML page is refused" 1 "$NOOK" images import page.img --name page
contains "... saying what it looks like" "$ERR" "begins with text, not a disk (an HTML or XML page?)"
head -c 4096 /dev/zero > tiny.img
expect_rc "a raw disk of 4 KiB is refused" 1 "$NOOK" images import tiny.img --name tiny
contains "... as too small" "$ERR" "too small for a disk"
truncate -s 2M zeros.img
expect_rc "a raw disk of 2 MiB is taken" 0 "$NOOK" images import zeros.img --name zeros
"$NOOK" images rm zeros >/dev/null

# --- a sparse disk stays sparse: in the store, in a bundle and back -----------
# (before, 64 MiB of holes were stored, and bundled, as 64 MiB of zeros)
truncate -s 64M holes.img
printf x | dd of=holes.img bs=1 seek=1048576 conv=notrunc status=none
stored_disk() { echo "$(readlink -f "$NOOK_HOME/images/$(cat "$NOOK_HOME/images/names/$1")")/disk.raw"; }
kib() { du -k "$1" | cut -f1; }
expect_rc "import a sparse raw disk (64 MiB, 1 byte of data)" 0 "$NOOK" images import holes.img --name holes
check "  stored byte-identical" cmp -s holes.img "$(stored_disk holes)"
check "  its holes kept ($(kib "$(stored_disk holes)") KiB on disk)" test "$(kib "$(stored_disk holes)")" -lt 4096
expect_rc "  exported as a plain tar" 0 "$NOOK" images export holes holes.tar
check "  the bundle keeps them ($(stat -c %s holes.tar) bytes)" test "$(stat -c %s holes.tar)" -lt 4194304
expect_rc "  exported as .tar.zst" 0 "$NOOK" images export holes holes.tar.zst
expect_rc "  rm" 0 "$NOOK" images rm holes
for b in holes.tar holes.tar.zst; do
	expect_rc "  $b imports back" 0 "$NOOK" images import "$b" --name holes
	check "    byte-identical" cmp -s holes.img "$(stored_disk holes)"
	check "    sparse" test "$(kib "$(stored_disk holes)")" -lt 4096
	"$NOOK" images rm holes > /dev/null
done
expect_rc "pull a sparse raw disk (file://)" 0 "$NOOK" images pull "file://$WORK/holes.img" --name holes
check "  stored byte-identical" cmp -s holes.img "$(stored_disk holes)"
check "  and sparse" test "$(kib "$(stored_disk holes)")" -lt 4096
"$NOOK" images rm holes > /dev/null

# --- a bundle's members are held to the manifest before they are read -------
# 8 TiB of holes in a 10 KB tar: the sizes are compared first, not hashed
mkdir sparse
if truncate -s 8T sparse/disk.raw 2>/dev/null; then
	sparse_bundle() { # SIZE-FIELD: the manifest's extra fields
		printf '{"name":"s","arch":"x86_64","boot":["disk"],"files":{"disk.raw":{"format":"raw","sha256":"%064d"%s}}}\n' 0 "$1" > sparse/manifest.json
		rm -f sparse.tar && tar --sparse -C sparse -cf sparse.tar manifest.json disk.raw
	}
	sparse_bundle ',"size":67108864'
	expect_rc "an 8 TiB sparse member the manifest gives 64 MiB" 1 timeout 20 "$NOOK" images import sparse.tar --name s
	contains "... refused by its size" "$ERR" "disk.raw is 8796093022208 bytes, the manifest says 67108864"
	sparse_bundle ''
	expect_rc "an 8 TiB sparse member without a size" 1 timeout 20 "$NOOK" images import sparse.tar --name s
	contains "... refused by its size" "$ERR" "disk.raw is 8192 GiB, more than the 1024 GiB"
	check "... nothing half-imported" store_clean
	rm -f sparse/disk.raw
fi
tar -C "$dir" -cf late.tar disk.qcow2 manifest.json vmlinuz
expect_rc "a bundle whose manifest is not first" 1 "$NOOK" images import late.tar --name late
contains "... says where it must be" "$ERR" "no manifest.json before 'disk.qcow2'"

# a name that is a path leads out of the store: refused, not followed (a
# file holding a stored image's digest, outside the store, stays)
cat "$NOOK_HOME/images/names/small" > victim
for args in "rm ../../../victim" "export ../../../victim out.tar"; do
	# shellcheck disable=SC2086 # the words of each
	expect_rc "images $args is a usage error" 2 "$NOOK" images $args
	contains "  saying what a name is" "$ERR" "an image's name in the store is a-z"
done
check "  the file outside is still there" test -s victim
check "  and nothing was exported" test ! -e out.tar
expect_rc "images rm ..: a usage error" 2 "$NOOK" images rm ..

# rm: refused while a VM uses it
mkdir -p "$NOOK_HOME/vms/v1"
printf '{"name":"v1","image":{"ref":"small","disk":"%s/disk.qcow2","format":"qcow2"},"boot":"disk","accel":"auto","cpus":1,"memory":268435456,"disk":0,"ssh_port":0,"instance_id":"i"}' "$dir" > "$NOOK_HOME/vms/v1/vm.json"
expect_rc "rm refuses an image in use" 1 "$NOOK" images rm small
contains "names the VM" "$ERR" "v1"
rm -rf "$NOOK_HOME/vms/v1"
# what a direct boot unpacked from the image (DATA/cache/boot, named by
# the kernel file's path, inode, size and mtime) goes with its last name
cached=$(python3 - "$dir/vmlinuz" "$NOOK_HOME/cache/boot" <<'PY'
import hashlib, os, sys
st = os.stat(sys.argv[1])
key = "%s\n%d\n%d\n%d.%09d\n" % (sys.argv[1], st.st_ino, st.st_size,
    st.st_mtime_ns // 10**9, st.st_mtime_ns % 10**9)
print(os.path.join(sys.argv[2], hashlib.sha256(key.encode()).hexdigest()[:32] + ".vmlinux"))
PY
)
mkdir -p "$NOOK_HOME/cache/boot"
echo unpacked > "$cached"
echo other > "$NOOK_HOME/cache/boot/other.vmlinux"
expect_rc "rm" 0 "$NOOK" images rm small
check "files kept for the other names" test -d "$dir"
check "... and what was unpacked from them" test -e "$cached"
for n in again gz xz; do "$NOOK" images rm "$n" >/dev/null; done
check "files gone with the last name" test ! -d "$dir"
check "... and the unpacked kernel with them" test ! -e "$cached"
check "another image's unpacked kernel stays" test -e "$NOOK_HOME/cache/boot/other.vmlinux"
expect_rc "rm an unknown image" 1 "$NOOK" images rm small

# --- a name imported again: the image it named goes, unless held --------
# (before, it stayed in the store, listed nowhere and not removable)
for m in 64 65 66; do qemu-img create -q -f qcow2 "re$m.qcow2" "${m}M"; done
digest_of() { readlink -f "$NOOK_HOME/images/$(cat "$NOOK_HOME/images/names/$1")"; }
expect_rc "import re" 0 "$NOOK" images import re64.qcow2 --name re
old=$(digest_of re)
expect_rc "import another disk as re" 0 "$NOOK" images import re65.qcow2 --name re
contains "  says the image it named before went" "$OUT" "image re replaced; the image it named before ($(basename "$old" | cut -c1-12)) removed"
check "  its files are gone" test ! -e "$old"
check "  the store lists re once" test "$("$NOOK" images list --json | json 'len(d)')" = 1
old=$(digest_of re)
expect_rc "a second name for it" 0 "$NOOK" images import "$old" --name re2
expect_rc "re moved on again" 0 "$NOOK" images import re64.qcow2 --name re
check "  the image re2 names stays" test -d "$old"
check "  and re2 still reads it" test "$(digest_of re2)" = "$old"
expect_rc "  rm re2" 0 "$NOOK" images rm re2
check "  now its files go" test ! -e "$old"
# a VM on it: kept, listed without a name, removed by its digest later
old=$(digest_of re)
d=$(basename "$old")
mkdir -p "$NOOK_HOME/vms/v2"
printf '{"name":"v2","image":{"ref":"re","disk":"%s/disk.qcow2","format":"qcow2"},"boot":"disk","accel":"auto","cpus":1,"memory":268435456,"disk":0,"ssh_port":0,"instance_id":"i"}' "$old" > "$NOOK_HOME/vms/v2/vm.json"
expect_rc "re moved on while VM v2 uses its image" 0 "$NOOK" images import re66.qcow2 --name re
contains "  says the image stays for v2" "$ERR" "the image re named before, ${d:0:12}, stays: VM v2 uses it ('nook images rm ${d:0:12}' once it is deleted)"
check "  its files stay" test -e "$old/disk.qcow2"
expect_rc "list --json" 0 "$NOOK" images list --json
check "  lists it without a name" test "$(echo "$OUT" | json '[e["digest"] for e in d if e["name"] is None]')" = "['$d']"
expect_rc "list" 0 "$NOOK" images list
contains "  the table says it is unnamed" "$OUT" "(unnamed)        ${d:0:12}"
expect_rc "rm by digest while v2 uses it" 1 "$NOOK" images rm "${d:0:12}"
contains "  names the VM" "$ERR" "image ${d:0:12} is used by VM v2"
check "  and keeps it" test -e "$old/disk.qcow2"
rm -rf "$NOOK_HOME/vms/v2"
expect_rc "rm a named image by its digest" 1 "$NOOK" images rm "$(basename "$(digest_of re)" | cut -c1-12)"
contains "  says to use its name" "$ERR" "has a name"
expect_rc "rm by too short a digest" 1 "$NOOK" images rm "${d:0:8}"
check "  keeps it" test -e "$old"
expect_rc "rm by digest once v2 is gone" 0 "$NOOK" images rm "${d:0:12}"
contains "  says so" "$OUT" "image ${d:0:12} removed"
check "  its files are gone" test ! -e "$old"
# the VM is found however NOOK_HOME is spelt (its record holds the
# image's realpath), and a VM whose record is broken by its overlay
old=$(digest_of re)
mkdir -p "$NOOK_HOME/vms/v2"
printf '{"name":"v2","image":{"ref":"re","disk":"%s/disk.qcow2","format":"qcow2"},"boot":"disk","accel":"auto","cpus":1,"memory":268435456,"disk":0,"ssh_port":0,"instance_id":"i"}' "$old" > "$NOOK_HOME/vms/v2/vm.json"
expect_rc "re moved on, NOOK_HOME given with a trailing slash" 0 env NOOK_HOME="$NOOK_HOME/" "$NOOK" images import re64.qcow2 --name re
contains "  still finds VM v2 on the image" "$ERR" "VM v2 uses it"
check "  and keeps it" test -e "$old/disk.qcow2"
rm -rf "$NOOK_HOME/vms/v2"
"$NOOK" images rm "$(basename "$old")" > /dev/null
old=$(digest_of re)
mkdir -p "$NOOK_HOME/vms/v3"
echo '{' > "$NOOK_HOME/vms/v3/vm.json"
qemu-img create -q -f qcow2 -F qcow2 -b "$old/disk.qcow2" "$NOOK_HOME/vms/v3/disk.qcow2"
expect_rc "re moved on while broken VM v3's overlay is on its image" 0 "$NOOK" images import re65.qcow2 --name re
contains "  finds v3 by its overlay" "$ERR" "VM v3 uses it"
check "  and keeps the image" test -e "$old/disk.qcow2"
rm -rf "$NOOK_HOME/vms/v3"
"$NOOK" images rm "$(basename "$old")" > /dev/null
# two imports of one name at once: the one that commits last removes the
# image the first put there, learnt under the store's lock (a qemu-img in
# front of the real one holds the first import before its commit)
mkdir -p bin
printf '#!/bin/bash\ncase "$*" in *hold.qcow2*) for _ in $(seq 300); do [ -e "%s/go" ] && break; sleep 0.1; done ;; esac\nexec %s "$@"\n' "$WORK" "$(command -v qemu-img)" > bin/qemu-img
chmod +x bin/qemu-img
cp re66.qcow2 hold.qcow2
first=$(digest_of re)
PATH="$WORK/bin:$PATH" "$NOOK" images import hold.qcow2 --name re > held.out 2> held.err &
held=$!
expect_rc "an import of re while another is held" 0 "$NOOK" images import re64.qcow2 --name re
mid=$(digest_of re)
touch go
wait "$held"
check "  the held one commits after it" test "$(digest_of re)" != "$mid"
check "  and removes the image the other put there" test ! -e "$mid"
check "  nothing is left unnamed" test -z "$("$NOOK" images list --json | json '[e for e in d if e["name"] is None] or ""')"
check "  the first image went once, with no error" test ! -e "$first" -a ! -s held.err
rm -f go
# a FIFO among the names holds no store change (nor the lock)
mkfifo "$NOOK_HOME/images/names/ff"
expect_rc "a FIFO among the names: an import moving a name is not held" 0 timeout 20 "$NOOK" images import re65.qcow2 --name re
contains "  the FIFO is named" "$ERR" "names/ff: it is a FIFO"
expect_rc "  nor is list" 0 timeout 20 "$NOOK" images list
rm "$NOOK_HOME/images/names/ff"
# a first start whose QEMU takes its time holds no import up: the store's
# lock is let go once the VM's record names its image
mkdir -p qbin
printf '#!/bin/bash\ncase "$*" in *-daemonize*) for _ in $(seq 600); do [ -e "%s/qgo" ] && break; sleep 0.1; done ;; esac\nexec %s "$@"\n' "$WORK" "$(command -v qemu-system-x86_64)" > qbin/qemu-system-x86_64
chmod +x qbin/qemu-system-x86_64
PATH="$WORK/qbin:$PATH" "$NOOK" local start slowq --image re --no-wait --memory 256M --cpus 1 --accel tcg > slow.out 2>&1 &
slow=$!
for _ in $(seq 200); do grep -qs '"state": *"starting"' "$NOOK_HOME/vms/slowq/vm.json" && break; sleep 0.1; done
expect_rc "an import while a first start waits on its QEMU" 0 timeout 30 "$NOOK" images import re64.qcow2 --name other
check "  the start was still waiting" test ! -e qgo
touch qgo
wait "$slow"
check "  and the start went on" grep -q "QEMU running" slow.out
"$NOOK" local delete slowq --force > /dev/null
"$NOOK" images rm other > /dev/null
# a bundle is known by its file's name, not by the directories it is in
mkdir -p my.tar.d
cp re64.qcow2 my.tar.d/disk.qcow2
expect_rc "import a disk in a directory named like a bundle" 0 "$NOOK" images import my.tar.d/disk.qcow2 --name intar
"$NOOK" images rm intar > /dev/null
expect_rc "rm re" 0 "$NOOK" images rm re
check "  the store holds no image" test -z "$(ls "$NOOK_HOME/images" | grep -v '^names$' | grep -v '^\.')"

# --- pull from a local HTTP server ---------------------------------------
mkdir www
cp small.qcow2 www/disk.qcow2
cp small.qcow2 www/debian-12-genericcloud-amd64.qcow2
(cd www && sha256sum disk.qcow2 > SHA256SUMS && sha512sum ./*.qcow2 | sed 's| \./| |' > SHA512SUMS)
python3 "$here/httpserve.py" www requests.log > port.txt &
srv=$!
for _ in $(seq 100); do [ -s port.txt ] && break; sleep 0.1; done
url=http://127.0.0.1:$(cat port.txt)
sum=$(sha256sum www/disk.qcow2 | cut -d' ' -f1)
expect_rc "pull with --sha256" 0 "$NOOK" images pull "$url/disk.qcow2" --name p1 --sha256 "$sum"
contains "says the checksum matched" "$ERR" "checksum matches"
expect_rc "pull --json" 0 "$NOOK" images pull "$url/disk.qcow2" --name p1j --sha256 "$sum" --json
check "  the image stored, on stdout" test "$(echo "$OUT" | json 'd["name"]')" = p1j
contains "  its progress on stderr" "$ERR" "downloaded 100%"
check "pulled disk is byte-identical" cmp -s www/disk.qcow2 "$(readlink -f "$NOOK_HOME/images/$(cat "$NOOK_HOME/images/names/p1")")/disk.qcow2"
expect_rc "pull with --checksums (a sha512 list of this host's)" 0 "$NOOK" images pull "$url/disk.qcow2" --name p2 --checksums "file://$WORK/www/SHA512SUMS"
expect_rc "a list over plain http for a file over plain http is refused" 1 "$NOOK" images pull "$url/disk.qcow2" --name p2h --checksums "$url/SHA512SUMS"
contains "  saying why" "$ERR" "both come over plain http"
check "  nothing stored" test ! -e "$NOOK_HOME/images/names/p2h"
expect_rc "  unless --insecure" 0 "$NOOK" images pull "$url/disk.qcow2" --name p2h --checksums "$url/SHA512SUMS" --insecure
contains "  which still checks the list's sum" "$ERR" "sha512 checksum matches"
# an image given as the checksums list (a careless paste): refused once
# past 8 MiB, naming it (the whole of it was downloaded, then a 64 MiB
# read refused the .sums file in the store)
truncate -s 200M www/big.img
expect_rc "a checksums list of 200 MB is refused" 1 "$NOOK" images pull "$url/disk.qcow2" --name p2b --checksums "$url/big.img" --insecure
contains "  naming it, saying why" "$ERR" "$url/big.img is over 8 MiB, which no checksums list is"
check "  nothing stored" test ! -e "$NOOK_HOME/images/names/p2b"
check "  nor left in the downloads" test -z "$(ls "$NOOK_HOME/images/.downloads/")"
rm www/big.img
expect_rc "a known name through an http --base-url is refused" 1 "$NOOK" images pull debian-12 --base-url "$url"
check "  before any download" sh -c '! grep -q genericcloud requests.log'
expect_rc "  unless --insecure" 0 "$NOOK" images pull debian-12 --base-url "$url" --insecure
contains "the vendor's file name was asked for" "$(cat requests.log)" "/debian-12-genericcloud-amd64.qcow2"
contains "... checked against its SHA512SUMS" "$ERR" "sha512 checksum matches"
check "stored as debian-12" test -e "$NOOK_HOME/images/names/debian-12"
expect_rc "plain http without a checksum is refused" 1 "$NOOK" images pull "$url/disk.qcow2" --name p3
contains "says why" "$ERR" "plain http"
expect_rc "... unless --insecure" 0 "$NOOK" images pull "$url/disk.qcow2" --name p3 --insecure
contains "  which says it is not verified" "$ERR" "not verified (--insecure)"
expect_rc "plain http is plain http in capitals" 1 "$NOOK" images pull "HTTP://127.0.0.1:$(cat port.txt)/disk.qcow2" --name p3c
contains "  says why" "$ERR" "plain http"
expect_rc "an ftp URL is refused" 1 "$NOOK" images pull "ftp://127.0.0.1/disk.qcow2" --name p3f
contains "  naming what may be pulled" "$ERR" "only https://, http:// and file://"
expect_rc "an ftp checksum list is refused" 1 "$NOOK" images pull "$url/disk.qcow2" --name p3f --checksums "ftp://127.0.0.1/SUMS"
contains "  naming it" "$ERR" "cannot pull ftp://127.0.0.1/SUMS: only https://, http:// and file://"
expect_rc "a file:// URL needs no checksum" 0 "$NOOK" images pull "file://$WORK/www/disk.qcow2" --name p3l
check "  and is not said to be --insecure" sh -c '! printf "%s" "$1" | grep -q -- "--insecure"' _ "$ERR"
echo "/disk.qcow2" > www/moved.qcow2.redirect
expect_rc "a redirect, checked by its sum" 0 "$NOOK" images pull "$url/moved.qcow2" --name p3r --sha256 "$sum"
check "  is followed" test "$(tail -1 requests.log)" = "/disk.qcow2 -"
echo "file://$WORK/www/disk.qcow2" > www/local.qcow2.redirect
expect_rc "a redirect to a file of this host is not followed" 1 "$NOOK" images pull "$url/local.qcow2" --name p3x --insecure
check "  nothing stored" test ! -e "$NOOK_HOME/images/names/p3x"
contains "  saying where it may lead" "$ERR" "leads to a scheme this pull may not follow"
expect_rc "a wrong checksum" 1 "$NOOK" images pull "$url/disk.qcow2" --name p4 \
	--sha256 0000000000000000000000000000000000000000000000000000000000000000
contains "says mismatch" "$ERR" "checksum mismatch"
check "nothing stored for p4" test ! -e "$NOOK_HOME/images/names/p4"
check "the bad download was deleted" test -z "$(ls "$NOOK_HOME/images/.downloads/")"
cp www/disk.qcow2 www/corrupt.qcow2 && echo x >> www/corrupt.qcow2
expect_rc "a corrupted file against the vendor's list" 1 "$NOOK" images pull "$url/corrupt.qcow2" \
	--name p5 --sha256 "$sum"
check "nothing stored for p5" test ! -e "$NOOK_HOME/images/names/p5"
printf '<html><head><title>Moved</title></head><body>moved</body></html>\n' > www/page.qcow2
expect_rc "a pulled HTML page is no image" 1 "$NOOK" images pull "$url/page.qcow2" --name p8 \
	--sha256 "$(sha256sum www/page.qcow2 | cut -d' ' -f1)"
contains "... saying what it looks like" "$ERR" "an HTML or XML page"
check "no name for p8" test ! -e "$NOOK_HOME/images/names/p8"
check "... nor a download left to resume" test -z "$(ls "$NOOK_HOME/images/.downloads/")"
expect_rc "a 404" 1 "$NOOK" images pull "$url/nope.qcow2" --name p6 --sha256 "$sum"
check "no name for p6" test ! -e "$NOOK_HOME/images/names/p6"

# an interrupted transfer is resumed by the next pull
python3 "$here/httpserve.py" www requests2.log --drop-after 100000 > port2.txt &
srv2=$!
for _ in $(seq 100); do [ -s port2.txt ] && break; sleep 0.1; done
url2=http://127.0.0.1:$(cat port2.txt)
expect_rc "an interrupted pull fails" 1 "$NOOK" images pull "$url2/disk.qcow2" --name r1 --sha256 "$sum"
contains "says it can resume" "$ERR" "resume"
check "nothing stored yet" test ! -e "$NOOK_HOME/images/names/r1"
expect_rc "the next pull resumes" 0 "$NOOK" images pull "$url2/disk.qcow2" --name r1 --sha256 "$sum"
contains "the second request asked for the rest" "$(tail -1 requests2.log)" "bytes=100000-"
contains "  if the file is still the one it began (If-Range)" "$(tail -1 requests2.log)" 'if-range="'
check "resumed disk is byte-identical" cmp -s www/disk.qcow2 "$(readlink -f "$NOOK_HOME/images/$(cat "$NOOK_HOME/images/names/r1")")/disk.qcow2"
# what an --insecure pull fetched is not resumed by a stricter one
cp www/disk.qcow2 www/other.qcow2
expect_rc "an interrupted --insecure pull" 1 "$NOOK" images pull "$url2/other.qcow2" --name r2 --insecure
expect_rc "a pull with a checksum after it" 0 "$NOOK" images pull "$url2/other.qcow2" --name r2 --sha256 "$sum"
check "  fetched it whole, not the rest" test "$(tail -1 requests2.log)" = "/other.qcow2 -"
# a part is resumed only from the file it came from: another file at the
# URL (changed, shorter) is downloaded whole, never spliced onto the part.
# ulimit -f cuts the first pull off at a set size (SIGXFSZ, as sure as a
# kill -9 and with no timing)
dls=$NOOK_HOME/images/.downloads
rm -f "$dls"/*
disk_of() { echo "$(readlink -f "$NOOK_HOME/images/$(cat "$NOOK_HOME/images/names/$1")")/disk.raw"; }
cut_off() { { (ulimit -f "$1"; shift; exec "$NOOK" images pull "$@"); } >/dev/null 2>&1; }
head -c 4M /dev/urandom > src.img
cut_off 1024 "file://$WORK/src.img" --name spliced
check "a file:// pull cut off at 1 MiB keeps its part" test "$(stat -c %s "$dls"/*.part)" = 1048576
head -c 4M /dev/urandom > src.img
touch -d @1600000000 src.img
expect_rc "the file replaced by another of its size: the pull succeeds" 0 "$NOOK" images pull "file://$WORK/src.img" --name spliced
contains "  saying the part is not resumed, and why" "$ERR" "not resumed (the file changed: its date): downloading it again from the start"
check "  the stored disk is the new file, not old head and new tail" cmp -s src.img "$(disk_of spliced)"
check "  no part nor its record is left" test -z "$(ls -A "$dls")"
cut_off 1024 "file://$WORK/src.img" --name same
expect_rc "the same file cut off is resumed" 0 "$NOOK" images pull "file://$WORK/src.img" --name same
check "  with no word of starting over" sh -c '! printf "%s" "$1" | grep -q "not resumed"' _ "$ERR"
check "  and is stored whole" cmp -s src.img "$(disk_of same)"
cut_off 3072 "file://$WORK/src.img" --name shrunk
head -c 2M /dev/urandom > src.img
expect_rc "the file now shorter than the part: the pull succeeds" 0 "$NOOK" images pull "file://$WORK/src.img" --name shrunk
contains "  saying why the part is dropped" "$ERR" "not resumed (the file is shorter now)"
check "  stored whole" cmp -s src.img "$(disk_of shrunk)"
expect_rc "  and the next pull of it too" 0 "$NOOK" images pull "file://$WORK/src.img" --name shrunk
cut_off 1024 "file://$WORK/src.img" --name norec
rm "$dls"/*.meta
expect_rc "a part with no record of its file (an older nook's)" 0 "$NOOK" images pull "file://$WORK/src.img" --name norec
contains "  is not resumed" "$ERR" "not resumed (no record of the file it came from)"
check "  stored whole" cmp -s src.img "$(disk_of norec)"
# over http, the ETag: a changed file answers If-Range in whole
head -c 1536K /dev/urandom > www/changing.img
expect_rc "an interrupted http pull" 1 "$NOOK" images pull "$url2/changing.img" --name etag --sha256 "$(sha256sum www/changing.img | cut -d' ' -f1)"
head -c 1536K /dev/urandom > www/changing.img
expect_rc "the file changed, its size not: the next pull succeeds" 0 "$NOOK" images pull "$url2/changing.img" --name etag --sha256 "$(sha256sum www/changing.img | cut -d' ' -f1)"
contains "  the part is not resumed, its ETag told" "$ERR" "not resumed (the file changed: its ETag)"
contains "  the range was asked for if the ETag held" "$(tail -2 requests2.log | head -1)" 'bytes=100000- if-range="'
check "  then the whole file" test "$(tail -1 requests2.log)" = "/changing.img -"
check "  stored whole" cmp -s www/changing.img "$(disk_of etag)"
# a part already whole (the pull was killed checking or importing it):
# its range is answered 416, which says so; nothing is downloaded again
head -c 1536K /dev/urandom > www/whole.img
wsum=$(sha256sum www/whole.img | cut -d' ' -f1)
rm -f "$dls"/*
expect_rc "an interrupted http pull" 1 "$NOOK" images pull "$url2/whole.img" --name whole --sha256 "$wsum"
tail -c +100001 www/whole.img >> "$(ls "$dls"/*.part)"
expect_rc "its part made whole: the next pull succeeds" 0 "$NOOK" images pull "$url2/whole.img" --name whole --sha256 "$wsum"
check "  with no word of starting over" sh -c '! printf "%s" "$1" | grep -q "not resumed"' _ "$ERR"
check "  asking for what lies past the part only" test "$(tail -1 requests2.log | cut -d' ' -f1-2)" = "/whole.img bytes=1572864-"
check "  never for the whole file again" test "$(grep -c '^/whole.img -$' requests2.log)" = 1
check "  stored whole" cmp -s www/whole.img "$(disk_of whole)"
# a start-over keeps the part until the new download brings its first
# byte: one that fails at once (here a 503) leaves it as it was
rm -f "$dls"/*
head -c 1536K /dev/urandom > www/flaky.img
expect_rc "an interrupted http pull" 1 "$NOOK" images pull "$url2/flaky.img" --name flaky --sha256 "$wsum"
cp "$dls"/*.part flaky.before
head -c 1536K /dev/urandom > www/flaky.img
echo 503 > www/flaky.img.status
fsum=$(sha256sum www/flaky.img | cut -d' ' -f1)
expect_rc "the file changed, and its whole download fails at once" 1 "$NOOK" images pull "$url2/flaky.img" --name flaky --sha256 "$fsum"
check "  the part is kept as it was" cmp -s flaky.before "$dls"/*.part
check "  with its record" test -s "$(ls "$dls"/*.meta)"
rm www/flaky.img.status
expect_rc "  the next pull succeeds" 0 "$NOOK" images pull "$url2/flaky.img" --name flaky --sha256 "$fsum"
check "  stored whole" cmp -s www/flaky.img "$(disk_of flaky)"
# a weak ETag (W/"...") tells no bytes apart: the date does, and no
# If-Range is sent (RFC 9110 allows neither a weak ETag nor, with an ETag,
# a date in it)
head -c 1536K /dev/urandom > www/weak.img
touch www/weak.img.weak
expect_rc "an interrupted http pull, a weak ETag" 1 "$NOOK" images pull "$url2/weak.img" --name weak --sha256 "$(sha256sum www/weak.img | cut -d' ' -f1)"
expect_rc "  is resumed" 0 "$NOOK" images pull "$url2/weak.img" --name weak --sha256 "$(sha256sum www/weak.img | cut -d' ' -f1)"
check "  by its date, asking for the rest" test "$(tail -1 requests2.log)" = "/weak.img bytes=100000-"
check "  stored whole" cmp -s www/weak.img "$(disk_of weak)"
# the temp file of a record that a crash left is pruned
mkdir -p prune-home/images/.downloads
dead=$(sh -c 'echo $$')
touch "prune-home/images/.downloads/.0123456789abcdef.meta.$dead-AbC123"
expect_rc "prune, a record's temp file left by a crash" 0 env NOOK_HOME="$WORK/prune-home" "$NOOK" local prune
check "  removes it" test -z "$(ls -A prune-home/images/.downloads)"
expect_rc "an unknown name" 1 "$NOOK" images pull debian-99
contains "lists the known names" "$ERR" "ubuntu-24.04"
contains "off a terminal, progress is a line per 10%" "$("$NOOK" images pull "$url/disk.qcow2" --name p7 --sha256 "$sum" 2>&1)" "downloaded 100%"

# --- usage errors exit 2; --json failures are JSON on stdout ----------------
expect_rc "an unknown subcommand is a usage error" 2 "$NOOK" images frob
contains "... and names it" "$ERR" "unknown subcommand 'frob'"
expect_rc "an unknown option is a usage error" 2 "$NOOK" images list --frob
contains "... and names it" "$ERR" "unknown option '--frob'"
expect_rc "rm with two names is a usage error" 2 "$NOOK" images rm a b
expect_rc "build without a NAME is a usage error" 2 "$NOOK" images build --cache "$WORK"
expect_rc "export takes NAME OUT" 2 "$NOOK" images export small
expect_rc "pull --help" 0 "$NOOK" images pull --help
contains "... shows the usage" "$OUT" "usage: nook images"
expect_rc "list --json failing exits 1" 1 env NOOK_HOME=relative "$NOOK" images list --json
check "... with a JSON object on stdout saying why" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert "NOOK_HOME" in d["error"], d' "$OUT"

# --- build: the cache is $NOOK_IMAGE_CACHE (or --cache), named by the
# recipe's hash; a cached build is imported without running the recipe -----
"$NOOK" images import small.qcow2 --name base >/dev/null
base=$(readlink -f "$NOOK_HOME/images/$(cat "$NOOK_HOME/images/names/base")")
mkdir recipes
printf '#!/bin/bash\ntouch "%s/recipe-ran"\nmkdir "$1" && cp "%s"/* "$1"/\n' "$WORK" "$base" > recipes/tiny.sh
rsum=$(sha256sum recipes/tiny.sh | cut -c1-16)
mkdir cache && cp -r "$base" "cache/tiny-$rsum"
expect_rc "build finds an earlier build in NOOK_IMAGE_CACHE" 0 \
	env NOOK_RECIPES="$WORK/recipes" NOOK_IMAGE_CACHE="$WORK/cache" "$NOOK" images build tiny
contains "... says so" "$OUT" "recipe $rsum built before; using $WORK/cache/tiny-$rsum"
check "... stores it" test -e "$NOOK_HOME/images/names/tiny"
check "... without running the recipe" test ! -e "$WORK/recipe-ran"
expect_rc "--cache wins over NOOK_IMAGE_CACHE" 0 env NOOK_RECIPES="$WORK/recipes" \
	NOOK_IMAGE_CACHE="$WORK/nowhere" "$NOOK" images build tiny --cache "$WORK/cache"
contains "... and is used" "$OUT" "using $WORK/cache/tiny-$rsum"
expect_rc "a missing recipe" 1 env NOOK_RECIPES="$WORK/recipes" \
	NOOK_IMAGE_CACHE="$WORK/cache" "$NOOK" images build nosuch
contains "... names the recipe looked for" "$ERR" "$WORK/recipes/nosuch.sh"
"$NOOK" images rm tiny >/dev/null
if [ "$(id -u)" = 0 ]; then
	expect_rc "build runs the recipe into NOOK_IMAGE_CACHE" 0 env NOOK_RECIPES="$WORK/recipes" \
		NOOK_IMAGE_CACHE="$WORK/cache2" "$NOOK" images build tiny
	contains "... saying so" "$OUT" "image tiny: building with $WORK/recipes/tiny.sh"
	contains "... and when it is done" "$OUT" "image tiny: built in"
	check "... the build is in the cache" test -e "$WORK/cache2/tiny-$rsum/manifest.json"
	check "... nothing half-built is left" test -z "$(ls -A "$WORK/cache2" | grep -v "^tiny-$rsum\$")"
	# a recipe's own lines are progress: with --json, stdout is the image
	printf '#!/bin/bash\necho "recipe says hi"\nmkdir "$1" && cp "%s"/* "$1"/\n' "$base" > recipes/loud.sh
	expect_rc "build --json of a recipe that prints" 0 env NOOK_RECIPES="$WORK/recipes" \
		NOOK_IMAGE_CACHE="$WORK/cache2" "$NOOK" images build loud --json
	check "... stdout is the image, as JSON" test "$(echo "$OUT" | json 'd["name"]')" = loud
	contains "... the recipe's line on stderr" "$ERR" "recipe says hi"
	printf '#!/bin/bash\necho "recipe fails"\nexit 3\n' > recipes/bad.sh
	expect_rc "build --json of a recipe that fails" 1 env NOOK_RECIPES="$WORK/recipes" \
		NOOK_IMAGE_CACHE="$WORK/cache2" "$NOOK" images build bad --json
	check "... stdout is the JSON error only" test "$(echo "$OUT" | json '"recipe exit 3" in d["error"]')" = True
	# what a recipe runs (debootstrap under its bash) ends with nook,
	# even on a SIGKILL, though the parent-death signal reaches only the
	# recipe's bash; and no stdin of a terminal reaches it
	# (its scratch, made as Debian's recipe makes it, is noted)
	printf '#!/bin/bash\nread -t 1 x && echo "read %%s" "$x" >&2\n%s\nsh -c %s\n' \
		"mktemp -d \"\${TMPDIR:-/var/tmp}/nook-image.XXXXXX\" >> \"$WORK/scratch\"" \
		"'echo \$\$ > \"$WORK/gc.pid\"; exec sleep 300'" > recipes/hang.sh
	for sig in KILL TERM; do
		rm -f "$WORK/gc.pid"
		echo typed | env NOOK_RECIPES="$WORK/recipes" NOOK_IMAGE_CACHE="$WORK/cache2" \
			"$NOOK" images build hang >/dev/null 2>"$WORK/hang.err" &
		nook_pid=$!
		for _ in $(seq 100); do [ -s "$WORK/gc.pid" ] && break; sleep 0.1; done
		gc=$(cat "$WORK/gc.pid" 2>/dev/null)
		check "a recipe's grandchild runs ($sig)" test -n "$gc"
		kill -"$sig" "$nook_pid"
		wait "$nook_pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$gc" 2>/dev/null || break; sleep 0.1; done
		check "... and ends with nook's SIG$sig" sh -c '! kill -0 "$1" 2>/dev/null' _ "$gc"
		[ -n "$gc" ] && kill -KILL "$gc" 2>/dev/null
	done
	check "... it read no stdin" test ! -s "$WORK/hang.err"
	# the scratch a killed recipe could not remove is in nook's build
	# directory, which the next build sweeps
	check "... its scratch was made in the build's directory" \
		test "$(grep -c "^$WORK/cache2/.build-" "$WORK/scratch")" = 2
	cp recipes/tiny.sh recipes/later.sh
	expect_rc "a later build" 0 env NOOK_RECIPES="$WORK/recipes" \
		NOOK_IMAGE_CACHE="$WORK/cache2" "$NOOK" images build later
	check "... sweeps the killed builds' scratch" \
		test "$(xargs -r ls -d 2>/dev/null < "$WORK/scratch" | wc -l)" = 0
else
	expect_rc "build refuses to run a recipe as a user" 1 env NOOK_RECIPES="$WORK/recipes" \
		NOOK_IMAGE_CACHE="$WORK/cache2" "$NOOK" images build tiny
	contains "... saying it needs root" "$ERR" "needs root"
fi

# a start that names no image takes the store's default, not a file of
# that name where it runs (--image debian-12 would take the file)
qemu-img create -q -f raw unnamed.img 64M
expect_rc "a default image in the store" 0 "$NOOK" images import unnamed.img --name debian-12
mkdir -p here && cp unnamed.img here/debian-12
expect_rc "a start naming no image, a file debian-12 here" 0 sh -c 'cd here && "$1" local start ud --no-wait --memory 256M --accel tcg' _ "$NOOK"
backing=$(qemu-img info -U --output=json "$NOOK_HOME/vms/ud/disk.qcow2" | json 'd["backing-filename"]')
check "  its disk is on the store's image ($backing)" test "${backing#"$(realpath "$NOOK_HOME")/images/"}" != "$backing"
expect_rc "  delete" 0 "$NOOK" local delete ud --force
expect_rc "  the image removed" 0 "$NOOK" images rm debian-12
finish

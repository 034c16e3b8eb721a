#!/usr/bin/env bash
# nook cidata build/show end to end: every accepted user-data form round
# trips; independent readers (isoinfo in Rock Ridge and Joliet modes,
# xorriso, blkid) see the same bytes; the files match cloud-localds'; and
# every failure leaves the output as it was.
NOOK=$1
. "$(dirname "$0")/lib.sh"
cd "$WORK" || exit 1

# --- the accepted user-data forms --------------------------------------
printf '#cloud-config\npackages: [htop]\nruncmd:\n  - [sh, -c, "echo $HOME > /tmp/x"]\n' > cloud-config
printf '#!/bin/sh\necho hello from a script\n' > script
printf '#include\nhttp://example.invalid/one\n' > include
printf '#cloud-boothook\n#!/bin/sh\necho early\n' > boothook
printf '## template: jinja\n#cloud-config\nhostname: {{ v1.local_hostname }}\n' > jinja
python3 - > mime <<'PY'
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
m = MIMEMultipart()
m.attach(MIMEText("#cloud-config\npackages: [htop]\n", "cloud-config"))
m.attach(MIMEText("#!/bin/sh\necho hi\n", "x-shellscript"))
print(m.as_string())
PY
gzip -c cloud-config > gzip
: > empty
head -c 3000 /dev/urandom | base64 > b64 && { echo '#!/bin/sh'; echo ': <<EOF'; cat b64; echo EOF; } > long-script

# extract FILE ISO MODE: a file's bytes as isoinfo reads them (-R or -J)
extract() { isoinfo "$3" -i "$2" -x "/$1"; }

for form in cloud-config script include boothook jinja mime gzip empty long-script; do
	iso=$form.iso
	expect_rc "build from $form user-data" 0 "$NOOK" cidata build -o "$iso" --user-data "$form"
	expect_rc "  show lists it" 0 "$NOOK" cidata show "$iso"
	contains "  show: volume cidata" "$OUT" "volume  cidata"
	size=$(stat -c %s "$form")
	check "  show: user-data is $size bytes" grep -qE "user-data +$size bytes" <<<"$OUT"
	check "  show --file user-data is byte-identical" cmp -s "$form" <("$NOOK" cidata show "$iso" --file user-data)
	check "  isoinfo -R reads it byte-identical" cmp -s "$form" <(extract user-data "$iso" -R)
	check "  isoinfo -J reads it byte-identical" cmp -s "$form" <(extract user-data "$iso" -J)
	"$NOOK" cidata show "$iso" --file meta-data > md.nook
	check "  meta-data the same through isoinfo -R" cmp -s md.nook <(extract meta-data "$iso" -R)
	check "  meta-data the same through isoinfo -J" cmp -s md.nook <(extract meta-data "$iso" -J)
	rm -rf x && xorriso -osirrox on -indev "$iso" -extract / x >/dev/null 2>&1
	check "  xorriso extracts the same user-data" cmp -s "$form" x/user-data
done
contains "gzip user-data is reported as such" "$("$NOOK" cidata build -o g.iso -u gzip)" "gzip"
expect_rc "build from cloud-config" 0 "$NOOK" cidata build -o cc.iso -u cloud-config
check "  its known keys get no warning" test -z "$ERR"
printf '#cloud-config\nruncmd: [[true]]\nwrite-files: []\n' > typo
gzip -c typo > typo.gz
printf '#cloud-config\nssh_authorised_keys: []\n' > typo-vd
expect_rc "build from user-data with a typo'd key" 0 "$NOOK" cidata build -o typo.iso -u typo --vendor-data typo-vd
contains "  warns of it, where it is, with the key meant" "$ERR" "nook: warning: typo:3:1: cloud-init knows no key 'write-files' and skips it: did you mean write_files?"
contains "  and of vendor-data's" "$ERR" "typo-vd:2:1: cloud-init knows no key 'ssh_authorised_keys'"
check "  the ISO holds it as given" cmp -s typo <("$NOOK" cidata show typo.iso --file user-data)
expect_rc "the same, gzipped" 0 "$NOOK" cidata build -o typo.iso -u typo.gz
contains "  warns of the key, placed inside" "$ERR" "typo.gz (gunzipped):3:1: cloud-init knows no key 'write-files'"

iso=cloud-config.iso
check "isoinfo sees Joliet" grep -q "Joliet" <(isoinfo -d -i "$iso")
check "isoinfo sees Rock Ridge" grep -q "Rock Ridge" <(isoinfo -d -i "$iso")
check "primary volume id is CIDATA" grep -q "Volume id: CIDATA" <(isoinfo -d -i "$iso")
check "blkid (what cloud-init asks) says LABEL cidata" test "$(blkid -o value -s LABEL "$iso")" = cidata
check "Rock Ridge names are lower-case" test "$(isoinfo -R -f -i "$iso" | sort | tr '\n' ' ')" = "/meta-data /user-data "
check "Joliet names are lower-case" test "$(isoinfo -J -f -i "$iso" | sort | tr '\n' ' ')" = "/meta-data /user-data "

# --- nook's own meta-data ------------------------------------------------
ssh-keygen -q -t ed25519 -N '' -C test@nook -f key
ssh-keygen -q -t ed25519 -N '' -C two@nook -f key2
expect_rc "build with hostname, instance-id and two keys" 0 "$NOOK" cidata build -o md.iso -u cloud-config --hostname web-1 --instance-id iid-abc -k key.pub --ssh-authorized-key key2.pub
"$NOOK" cidata show md.iso --file meta-data > md
check "  meta-data parses as YAML with those values" python3 - md key.pub key2.pub <<'PY'
import sys, yaml
m = yaml.safe_load(open(sys.argv[1]))
keys = [open(f).read().strip() for f in sys.argv[2:]]
assert m == {"instance-id": "iid-abc", "local-hostname": "web-1", "public-keys": keys}, m
PY
"$NOOK" cidata build -o a.iso -u cloud-config >/dev/null
"$NOOK" cidata build -o b.iso -u cloud-config >/dev/null
iid() { "$NOOK" cidata show "$1" --file meta-data | sed -n 's/^instance-id: "\(.*\)"$/\1/p'; }
check "the derived instance-id is the same for the same inputs" test "$(iid a.iso)" = "$(iid b.iso)"
check "  and looks like iid-<16 hex>" grep -qE '^iid-[0-9a-f]{16}$' <<<"$(iid a.iso)"
"$NOOK" cidata build -o c.iso -u script >/dev/null
check "  and changes when user-data does" test "$(iid a.iso)" != "$(iid c.iso)"
"$NOOK" cidata build -o d.iso -u - < cloud-config >/dev/null
check "user-data from stdin ('-') gives the same seed" test "$(iid a.iso)" = "$(iid d.iso)"
expect_rc "build --json" 0 "$NOOK" cidata build -o j.iso -u cloud-config --json
check "  prints JSON with the instance-id" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["instance_id"].startswith("iid-") and d["volume_id"]=="cidata"' "$OUT"
expect_rc "show --json" 0 "$NOOK" cidata show j.iso --json
check "  lists the files with sizes" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); f={x["name"]:x["size"] for x in d["files"]}; assert f["user-data"]==int(sys.argv[2]), f' "$OUT" "$(stat -c %s cloud-config)"
expect_rc "show --file with --json: a usage error" 2 "$NOOK" cidata show j.iso --file user-data --json
contains "  says --json is for the listing" "$ERR" "--json is for the listing"

# --- the same files as cloud-localds -------------------------------------
printf 'instance-id: iid-same\nlocal-hostname: twin\n' > meta
printf 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n' > netcfg
same_files() { # ISO-A ISO-B: the same names and the same bytes in each
	local a b f
	a=$(isoinfo -R -f -i "$1" | sort) b=$(isoinfo -R -f -i "$2" | sort)
	[ "$a" = "$b" ] || { echo "names differ: $a / $b"; return 1; }
	for f in $a; do cmp -s <(isoinfo -R -x "$f" -i "$1") <(isoinfo -R -x "$f" -i "$2") || { echo "$f differs"; return 1; }; done
}
cloud-localds ref1.iso cloud-config meta
"$NOOK" cidata build ours1.iso cloud-config meta >/dev/null
check "positional form: same files as cloud-localds OUT UD MD" same_files ref1.iso ours1.iso
cloud-localds -N netcfg ref2.iso gzip meta
"$NOOK" cidata build -o ours2.iso -u gzip -m meta -N netcfg >/dev/null
check "with network-config and gzip: same files as cloud-localds -N" same_files ref2.iso ours2.iso
cloud-localds ref3.iso script
"$NOOK" cidata build ours3.iso script >/dev/null
check "without meta-data: the same file names as cloud-localds" test "$(isoinfo -R -f -i ref3.iso | sort)" = "$(isoinfo -R -f -i ours3.iso | sort)"
check "  and the same user-data" cmp -s <(isoinfo -R -x /user-data -i ref3.iso) <(isoinfo -R -x /user-data -i ours3.iso)

# --- failures leave the output as it was ---------------------------------
printf '#cloud-config\npackages: [htop\nfoo: bar\n' > bad-yaml
printf 'hello world\n' > bad-first-line
printf 'version: 2\nethernets: [\n' > bad-netcfg
printf -- '- just\n- a list\n' > bad-meta
mkdir out && cp cloud-config.iso out/seed.iso && cp out/seed.iso keep.iso
inode=$(stat -c %i out/seed.iso)
unchanged() { # the existing output, untouched, and nothing else in out/
	cmp -s keep.iso out/seed.iso && [ "$(stat -c %i out/seed.iso)" = "$inode" ] &&
		[ "$(ls -A out)" = seed.iso ]
}
fails() { # NAME RC MESSAGE ARGS...: exit RC, MESSAGE on stderr, output untouched
	local n=$1 rc=$2 msg=$3
	shift 3
	expect_rc "$n" "$rc" "$NOOK" cidata build "$@"
	contains "  says: $msg" "$ERR" "$msg"
	check "  leaves out/ as it was" unchanged
}
fails "bad YAML" 1 "bad-yaml:3:4: " -o out/seed.iso -u bad-yaml
fails "unknown first line" 1 "bad-first-line:1: unrecognised user-data" -o out/seed.iso -u bad-first-line
contains "  and lists the accepted forms" "$ERR" "#cloud-boothook"
fails "bad network-config" 1 "bad-netcfg:3:1: " -o out/seed.iso -u cloud-config -N bad-netcfg
fails "meta-data that is not a mapping" 1 "bad-meta:1:1: the top level must be a mapping" -o out/seed.iso -u cloud-config -m bad-meta
fails "missing user-data" 1 "cannot read no-such-file" -o out/seed.iso -u no-such-file
fails "missing meta-data" 1 "cannot read no-such-meta" out/seed.iso cloud-config no-such-meta
fails "a private key given as a public key" 1 "key:1: this is a private key" -o out/seed.iso -u cloud-config -k key
fails "a bad hostname" 1 "hostname \"bad_host\"" -o out/seed.iso -u cloud-config -H bad_host
fails "--meta-data with --hostname" 2 "--meta-data is used as it is" -o out/seed.iso -u cloud-config -m meta -H x
fails "no user-data" 2 "--user-data is required" -o out/seed.iso
fails "a damaged gzip" 1 "gzip" -o out/seed.iso -u <(head -c 20 gzip)
expect_rc "output directory missing" 1 "$NOOK" cidata build -o nodir/seed.iso -u cloud-config
contains "  says which path" "$ERR" "nodir/seed.iso"
check "  creates nothing" test ! -e nodir
expect_rc "output directory is a file" 1 "$NOOK" cidata build -o cloud-config/seed.iso -u cloud-config
expect_rc "output directory not writable" 1 "$NOOK" cidata build -o /proc/seed.iso -u cloud-config
# a seed in a directory anyone may write, not sticky: another user could
# swap it for one whose user-data runs theirs (before, it was written)
mkdir open && chmod 0777 open
expect_rc "output in a directory anyone may write is refused" 1 "$NOOK" cidata build -o open/seed.iso -u cloud-config
contains "  saying what and what to do" "$ERR" "open/seed.iso: another user could swap the seed for one of theirs: $WORK/open has mode 0777"
check "  creates nothing" test ! -e open/seed.iso
chmod +t open
expect_rc "  sticky (as /tmp), it is written" 0 "$NOOK" cidata build -o open/seed.iso -u cloud-config
check "  creates nothing" test ! -e /proc/seed.iso
if [ "$(id -u)" != 0 ]; then
	mkdir ro && chmod 555 ro
	expect_rc "output directory read-only" 1 "$NOOK" cidata build -o ro/seed.iso -u cloud-config
	check "  creates nothing" test -z "$(ls -A ro)"
fi
# --- hostile inputs and outputs -----------------------------------------
# a device, FIFO or socket is never replaced by a file: written into (as
# cloud-localds would) or refused. The device is a copy of /dev/null made
# here, so a nook that renames over it breaks nothing outside $WORK.
mkfifo seed.fifo
{ timeout 20 cat seed.fifo > from-fifo.iso; } &
reader=$!
expect_rc "-o a FIFO" 0 timeout 20 "$NOOK" cidata build -o seed.fifo -u cloud-config
wait "$reader"
check "  the FIFO is still one" test -p seed.fifo
check "  and the ISO came through it" cmp -s cloud-config <(isoinfo -R -x /user-data -i from-fifo.iso)
if [ "$(id -u)" = 0 ] && mknod null.dev c 1 3 2>/dev/null; then
	chmod 666 null.dev
	expect_rc "-o a character device (as root)" 0 "$NOOK" cidata build -o null.dev -u cloud-config
	check "  it is still a device" test -c null.dev
	check "  with its mode" test "$(stat -c %a null.dev)" = 666
	check "  and no file beside it" test -z "$(ls -A | grep '^\.null\.dev')"
	ln -s null.dev null.link
	expect_rc "-o a symlink to a device" 0 "$NOOK" cidata build -o null.link -u cloud-config
	check "  the link and the device stay" test -L null.link -a -c null.dev
	# a full disk (a copy of /dev/full): said as such, not as libarchive's
	# bare "Write error"
	if mknod full.dev c 1 7 2>/dev/null; then
		expect_rc "-o a device that is full" 1 "$NOOK" cidata build -o full.dev -u cloud-config
		contains "  says the disk is full" "$ERR" "cannot finish full.dev: Write error: No space left on device"
	fi
fi
python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' seed.sock
expect_rc "-o a socket is refused" 1 "$NOOK" cidata build -o seed.sock -u cloud-config
contains "  saying what it is" "$ERR" "seed.sock: it is a socket"
check "  and it is still one" test -S seed.sock
cp cloud-config.iso kept.iso && ln -s kept.iso via.link
expect_rc "-o a symlink to a file" 0 "$NOOK" cidata build -o via.link -u script
check "  replaces the file, keeps the link" test -L via.link
check "  with the new ISO" cmp -s script <(isoinfo -R -x /user-data -i kept.iso)
# input that never ends, nesting that makes libyaml crawl
expect_rc "--user-data /dev/zero is refused" 1 timeout 20 "$NOOK" cidata build -o out/seed.iso -u /dev/zero
contains "  at 16 MiB" "$ERR" "/dev/zero: it is larger than 16 MiB"
check "  leaves out/ as it was" unchanged
python3 -c 'print("#cloud-config\nx: " + "[" * 100000)' > deep
fails "100,000 nested lists" 1 "deep:2:1003: nested more than 1000 levels deep" -o out/seed.iso -u deep
start=$(date +%s)
"$NOOK" cidata build -o out/seed.iso -u deep 2>/dev/null
check "  refused within 2 s" test $(($(date +%s) - start)) -le 2
# what is echoed of refused user-data reaches the terminal printable
printf '\033]0;pwned\007\033[2J hello\n' > escapes
fails "escape sequences in user-data" 1 'unrecognised user-data "\x1b]0;pwned\x07\x1b[2J hello"' -o out/seed.iso -u escapes
check "  none of them on stderr" test -z "$(printf '%s' "$ERR" | tr -d '\n' | tr -d '[:print:]')"
printf '#cloud-config\na: 1\nb: "x\0y"\n' > nul
fails "a NUL byte is placed where it is" 1 "nul:3:6: control characters are not allowed (byte 0x00)" -o out/seed.iso -u nul

expect_rc "a successful build replaces the existing output" 0 "$NOOK" cidata build -o out/seed.iso -u script
check "  with the new user-data" cmp -s script <("$NOOK" cidata show out/seed.iso --file user-data)
check "  and leaves no temporary file" test "$(ls -A out)" = seed.iso

# --- show on what is not a cidata volume --------------------------------
mkdir other && cp script other/user-data && genisoimage -quiet -V OTHER -J -R -o other.iso other
expect_rc "show on a non-cidata ISO exits 1" 1 "$NOOK" cidata show other.iso
contains "  and says so" "$ERR" "not a cidata volume"
expect_rc "show on a file that is no ISO exits 1" 1 "$NOOK" cidata show script
contains "  and says so" "$ERR" "not an ISO9660 image"
expect_rc "show --file of a missing file exits 1" 1 "$NOOK" cidata show cloud-config.iso --file vendor-data
expect_rc "show without an ISO exits 2" 2 "$NOOK" cidata show
# a directory record with a name of length 0 (found by fuzzing: the
# listing read past its name buffer, printing heap bytes)
mkdir noname && cp script noname/user-data && printf 'instance-id: i\n' > noname/meta-data
genisoimage -quiet -V cidata -o noname.iso noname
python3 - noname.iso <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], 'rb').read())
root = d[16 * 2048 + 156:16 * 2048 + 190]
off = struct.unpack('<I', root[2:6])[0] * 2048
end = off + struct.unpack('<I', root[10:14])[0]
while off < end and d[off]:
    if d[off + 33:off + 37] == b'USER':
        d[off + 32] = 0
    off += d[off]
open(sys.argv[1], 'wb').write(d)
PY
# a root directory that claims 3 GB (found by fuzzing: libcdio allocated
# all of it before reading a byte)
cp noname.iso bigroot.iso
python3 - bigroot.iso <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], 'rb').read())
d[16 * 2048 + 166:16 * 2048 + 174] = struct.pack('<I', 3 << 30) + struct.pack('>I', 3 << 30)
open(sys.argv[1], 'wb').write(d)
PY
expect_rc "show on an ISO whose root runs past its end exits 1" 1 "$NOOK" cidata show bigroot.iso
contains "  and says so" "$ERR" "root directory runs past its end"
expect_rc "show on an ISO with an empty file name exits 0" 0 "$NOOK" cidata show noname.iso --json
check "  and lists that file as \"\" with its size" python3 -c '
import json, sys
f = json.loads(sys.argv[1])["files"]
assert {"name": "", "size": int(sys.argv[2])} in f, f' "$OUT" "$(stat -c %s script)"
# a file that claims 600 MB in a sparse ISO: show --file streams it (it
# read the whole file into memory first, 4 GiB for the largest claim)
mkdir bigfile && cp script bigfile/user-data && printf 'instance-id: i\n' > bigfile/meta-data
genisoimage -quiet -R -V cidata -o bigfile.iso bigfile
claim() { # BYTES: bigfile.iso's meta-data says it holds BYTES
	python3 - bigfile.iso "$1" <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], 'rb').read())
n = int(sys.argv[2])
root = d[16 * 2048 + 156:16 * 2048 + 190]
off = struct.unpack('<I', root[2:6])[0] * 2048
end = off + struct.unpack('<I', root[10:14])[0]
while off < end and d[off]:
    if d[off + 33:off + 37] == b'META':
        d[off + 10:off + 18] = struct.pack('<I', n) + struct.pack('>I', n)
    off += d[off]
open(sys.argv[1], 'r+b').write(d)
PY
}
claim $((600 << 20))
truncate -s 700M bigfile.iso
# (its peak memory, as the kernel counted it for a child of python's)
peak_kib() { python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@"; }
check "show --file of a 600 MB file writes all of it" test "$("$NOOK" cidata show bigfile.iso --file meta-data | wc -c)" = $((600 << 20))
kib=$(peak_kib "$NOOK" cidata show bigfile.iso --file meta-data)
check "  holding little of it in memory ($kib KiB at most)" test "$kib" -lt $((100 << 10))
# the largest claim, 4 GiB less a byte: its last block read, the offset
# (32 bits) wrapped to 0 and the reading went on, past the file, to fail
claim $(((1 << 32) - 1))
truncate -s 4400M bigfile.iso
check "show --file of a file of 4 GiB less a byte writes that, and exits 0" test "$("$NOOK" cidata show bigfile.iso --file meta-data 2>/dev/null | wc -c; echo "rc ${PIPESTATUS[0]}")" = "$(((1 << 32) - 1))
rc 0"
rm bigfile.iso
# --- with --json, a failure is a JSON object on stdout too ----------------
jerr() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert sys.argv[2] in d["error"], d' "$OUT" "$1"; }
expect_rc "show --json on a non-cidata ISO exits 1" 1 "$NOOK" cidata show other.iso --json
check "  with {\"error\": ...} on stdout" jerr "not a cidata volume"
expect_rc "show --json on a file that is no ISO exits 1" 1 "$NOOK" cidata show script --json
check "  with {\"error\": ...} on stdout" jerr "not an ISO9660 image"
# names are any bytes, JSON carries UTF-8: one that is not is null (a file
# of the ISO was left out of the listing; a path made it say "failed")
mkdir latin1 && cp script latin1/user-data && printf 'instance-id: i\n' > latin1/meta-data
printf x > "$(printf 'latin1/caf\351')"
genisoimage -quiet -R -V cidata -o latin1.iso latin1
cp latin1.iso "$(printf 'caf\351.iso')"
expect_rc "show --json of a file name that is not UTF-8 exits 0" 0 "$NOOK" cidata show latin1.iso --json
check "  and lists that file, its name null" test "$(echo "$OUT" | python3 -c 'import json,sys; print(sorted((f["name"] or "", f["size"]) for f in json.load(sys.stdin)["files"]))')" = "[('', 1), ('meta-data', 15), ('user-data', $(stat -c %s script))]"
expect_rc "show --json of an ISO whose path is not UTF-8 exits 0" 0 "$NOOK" cidata show "$(printf 'caf\351.iso')" --json
check "  its path null, its files listed" test "$(echo "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["path"], len(d["files"]))')" = "None 3"
expect_rc "build --json into a path that is not UTF-8 exits 0" 0 "$NOOK" cidata build -o "$(printf 'out/caf\351.iso')" -u script --json
check "  its path null, its files listed" test "$(echo "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["path"], [f["name"] for f in d["files"]])')" = "None ['user-data', 'meta-data']"
rm "$(printf 'out/caf\351.iso')"
expect_rc "build --json with bad user-data exits 1" 1 "$NOOK" cidata build -o out/seed.iso -u bad-first-line --json
check "  with {\"error\": ...} on stdout" jerr "unrecognised user-data"
check "  leaves out/ as it was" test "$(ls -A out)" = seed.iso

# --- unknown subcommands and options are usage errors (exit 2) ------------
expect_rc "an unknown subcommand exits 2" 2 "$NOOK" cidata frob
contains "  and names it" "$ERR" "unknown subcommand 'frob'"
expect_rc "an unknown build option exits 2" 2 "$NOOK" cidata build -o x.iso -u cloud-config --frob
contains "  and names it" "$ERR" "unknown option '--frob'"
check "  writes nothing" test ! -e x.iso
expect_rc "an unknown show option exits 2" 2 "$NOOK" cidata show cloud-config.iso -z
contains "  and names it" "$ERR" "unknown option '-z'"
expect_rc "show with two ISOs exits 2" 2 "$NOOK" cidata show a.iso b.iso

# -o DIR/ of a directory that is not there: said as that, at once
expect_rc "build -o nosuchdir/ is refused" 1 "$NOOK" cidata build -o nosuchdir/ -u cloud-config
contains "  saying so" "$ERR" "cannot write nosuchdir/: No such file or directory"
# '-o -': the ISO on standard output (a file or a pipe), never a terminal
# (before, a file named '-' was written)
expect_rc "build -o - into a file" 0 "$NOOK" cidata build -o - -u cloud-config -i iid-dash
cp "$WORK/.out" dash.iso
check "  the ISO carries the user-data" cmp -s cloud-config <("$NOOK" cidata show dash.iso --file user-data)
check "  and the meta-data" grep -q iid-dash <("$NOOK" cidata show dash.iso --file meta-data)
contains "  what was written is said on stderr" "$ERR" "wrote standard output: cidata volume"
check "  no file named '-'" test ! -e -
check "  into a pipe, an ISO reader reads it" cmp -s cloud-config <("$NOOK" cidata build -o - -u cloud-config 2>/dev/null | cat > piped.iso && "$NOOK" cidata show piped.iso --file user-data)
expect_rc "build -o - onto a terminal is refused" 1 script -qec "$NOOK cidata build -o - -u cloud-config" /dev/null
contains "  saying why" "$OUT" "standard output is a terminal"
expect_rc "build -o - --json is a usage error" 2 "$NOOK" cidata build -o - -u cloud-config --json
contains "  saying why" "$OUT" "both write to standard output"
# show reads a file: a FIFO (no writer would come) is refused at once
mkfifo show.fifo
expect_rc "show of a FIFO is refused, not waited on" 1 timeout 10 "$NOOK" cidata show show.fifo
contains "  saying why" "$ERR" "show.fifo: not a file"
expect_rc "cidata build --help exits 0" 0 "$NOOK" cidata build --help
contains "  and shows the options" "$OUT" "--ssh-authorized-key"
finish

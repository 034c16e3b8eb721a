/* The image store: digests, names, verification, import of dirs/disks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "images.h"
#include "store.h"

int img_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 64 || !((name[0] >= 'a' && name[0] <= 'z') ||
				  (name[0] >= '0' && name[0] <= '9')))
		return 0;
	return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

int img_disk_info(const char *path, json_t **info)
{
	/* "./": a relative name with a colon ("nbd:x", "json:{...}") is a
	 * file here, not a protocol for qemu-img */
	char *file = path[0] == '/' ? xstrdup(path) : xasprintf("./%s", path);
	const char *argv[] = { "qemu-img", "info", "--output=json", "-U", file,
			       NULL };
	struct buf out = BUF_INIT;
	int rc = run_capture(argv, &out);

	free(file);
	*info = rc == 0 ? json_loads(out.p, 0, NULL) : NULL;
	if (!*info && rc >= 0)
		errorf("qemu-img cannot read %s: %s", path, out.p);
	buf_free(&out);
	return *info ? 0 : -1;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* A qcow2 header that makes QEMU open no other file. */
static int sniff_qcow2(const char *what, const unsigned char *h, size_t n)
{
	uint32_t version = n >= 8 ? be32(h + 4) : 0;

	if (n < 72 || (version != 2 && version != 3) ||
	    (version == 3 && n < 104))
		return errorf("%s: not a qcow2 (version 2 or 3) header", what);
	if (be64(h + 8) != 0)
		return errorf("%s: a qcow2 with a backing file (QEMU would "
			      "open that file too, for the VM to read) is "
			      "not taken; 'qemu-img convert' it first", what);
	/* incompatible feature bit 2: the data is in another file */
	if (version == 3 && (be64(h + 72) & 4))
		return errorf("%s: a qcow2 with an external data file (QEMU "
			      "would open that file too, for the VM to read) "
			      "is not taken; 'qemu-img convert' it first",
			      what);
	return 0;
}

/* The image format QEMU would find in a header, for the formats that
 * have a magic at their start; NULL for none of them. */
static const char *other_format(const unsigned char *h, size_t n)
{
	static const struct {
		const char *magic;
		size_t len;
		const char *name;
	} magics[] = {
		{ "QFI\xfb", 4, "qcow2" },
		{ "QED\0", 4, "qed" },
		{ "KDMV", 4, "vmdk" },
		{ "COWD", 4, "vmdk" },
		{ "conectix", 8, "vpc" },
		{ "vhdxfile", 8, "vhdx" },
		{ "LUKS\xba\xbe", 6, "luks" },
		{ "WithoutFreeSpace", 16, "parallels" },
		{ "WithouFreSpacExt", 16, "parallels" },
		{ "Bochs Virtual HD Image", 22, "bochs" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(magics); i++)
		if (n >= magics[i].len &&
		    !memcmp(h, magics[i].magic, magics[i].len))
			return magics[i].name;
	/* VDI keeps its signature at 0x40, little-endian */
	if (n >= 0x44 && h[0x40] == 0x7f && h[0x41] == 0x10 &&
	    h[0x42] == 0xda && h[0x43] == 0xbe)
		return "vdi";
	return NULL;
}

/* 1 when the first 16 bytes of h (after a UTF-8 byte order mark) are
 * all printable ASCII or white space: a page or a descriptor, where a
 * disk's first sector holds boot code (a jump: 0xeb...) or zeros. */
static int looks_like_text(const unsigned char *h, size_t n)
{
	size_t i = n >= 3 && !memcmp(h, "\xef\xbb\xbf", 3) ? 3 : 0;
	size_t end = n < i + 16 ? n : i + 16;

	if (i >= end)
		return 0;
	for (; i < end; i++)
		if ((h[i] < 0x20 || h[i] > 0x7e) && h[i] != '\t' &&
		    h[i] != '\r' && h[i] != '\n')
			return 0;
	return 1;
}

/* A raw disk that is plausibly one: 1 MiB at least, not text (a pulled
 * HTML page), and no other format's header for QEMU's probe to find. */
static int sniff_raw(const char *what, const unsigned char *h, size_t n,
		     uint64_t size)
{
	const char *other = other_format(h, n);
	size_t i = 0;

	if (other)
		return errorf("%s: a %s image, not a raw disk; 'qemu-img "
			      "convert -O qcow2' it first", what, other);
	if (looks_like_text(h, n)) {
		while (i < n && (h[i] == ' ' || h[i] == '\t' || h[i] == '\r' ||
				 h[i] == '\n'))
			i++;
		return errorf("%s: begins with text, not a disk%s", what,
			      i < n && h[i] == '<' ? " (an HTML or XML page?)"
						   : "");
	}
	if (size < IMG_RAW_MIN)
		return errorf("%s: %llu bytes, too small for a disk (a raw "
			      "disk is 1 MiB at least)", what,
			      (unsigned long long)size);
	return 0;
}

int img_disk_sniff(const char *what, const char *fmt, const unsigned char *head,
		   size_t n, uint64_t size)
{
	if (!strcmp(fmt, "qcow2"))
		return sniff_qcow2(what, head, n);
	if (!strcmp(fmt, "raw"))
		return sniff_raw(what, head, n, size);
	return errorf("%s: format \"%s\": nook takes qcow2 or raw disks", what,
		      fmt);
}

/* Read up to n bytes of the head of regular file path into h. */
static int read_head(const char *path, unsigned char *h, size_t *n,
		     uint64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	ssize_t got = -1;

	if (fd < 0)
		return error_errno("cannot read %s", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return errorf("%s: not a regular file", path);
	}
	do
		got = pread(fd, h, *n, 0);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		error_errno("cannot read %s", path);
	close(fd);
	*n = got < 0 ? 0 : (size_t)got;
	*size = (uint64_t)st.st_size;
	return got < 0 ? -1 : 0;
}

char *img_qcow2_backing(const char *disk)
{
	unsigned char h[20];
	size_t n = sizeof(h);
	uint64_t size, off;
	uint32_t len;
	char *name;
	int fd;

	if (read_head(disk, h, &n, &size) < 0 || n < sizeof(h) ||
	    memcmp(h, "QFI\xfb", 4))
		return NULL;
	off = be64(h + 8);
	len = be32(h + 16);
	/* qcow2 keeps a backing file's name under 1024 bytes */
	if (!off || !len || len > 1023 || off + len > size)
		return NULL;
	fd = open(disk, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	name = xmalloc(len + 1);
	if (pread(fd, name, len, (off_t)off) == (ssize_t)len) {
		name[len] = '\0';
	} else {
		free(name);
		name = NULL;
	}
	close(fd);
	return name;
}

/* What qemu-img says beside the format: nothing else to open. what
 * names path in messages. */
static int info_alone(const char *path, const char *what, const char *fmt)
{
	json_t *info, *data;
	const char *got;
	int ret = 0;

	if (img_disk_info(path, &info) < 0)
		return -1;
	got = json_string_value(json_object_get(info, "format"));
	data = json_object_get(json_object_get(info, "format-specific"),
			       "data");
	if (!got || strcmp(got, fmt))
		ret = errorf("%s: qemu-img finds %s, not a %s disk", what,
			     got ? got : "no format", fmt);
	else if (json_object_get(info, "backing-filename") ||
		 json_object_get(info, "full-backing-filename"))
		ret = errorf("%s: a disk with a backing file is not taken",
			     what);
	else if (json_object_get(data, "data-file"))
		ret = errorf("%s: a disk with an external data file is not "
			     "taken", what);
	json_decref(info);
	return ret;
}

/* img_disk_check(), what naming path in messages. */
static int disk_check(const char *path, const char *what, const char *fmt)
{
	unsigned char head[4096];
	size_t n = sizeof(head);
	uint64_t size;

	/* the bytes first: qemu-img itself opens what a header names */
	if (read_head(path, head, &n, &size) < 0 ||
	    img_disk_sniff(what, fmt, head, n, size) < 0)
		return -1;
	return info_alone(path, what, fmt);
}

int img_disk_check(const char *path, const char *fmt)
{
	return disk_check(path, path, fmt);
}

static int is_hex64(const char *s)
{
	return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

int img_plain_name(const char *name)
{
	return *name && !strchr(name, '/') && strcmp(name, ".") &&
	       strcmp(name, "..") && name[0] != '.';
}

int img_resolve(const char *data, const char *name, char **dir)
{
	char *link = xasprintf("%s/images/names/%s", data, name);
	struct buf b = BUF_INIT;
	int ret = -1;

	*dir = NULL;
	/* no name that is a path: "../../x" would lead out of the store */
	if (!img_name_valid(name))
		goto none;
	if (access(link, F_OK) < 0 && errno == ENOENT) {
		ret = 0;
		goto out;
	}
	/* a FIFO there would hold every reader, and the store's lock */
	if (read_file_regular(link, &b, 256) < 0)
		goto out;
	b.p[strcspn(b.p, "\n")] = '\0';
	if (!is_hex64(b.p)) {
		errorf("%s: not a digest", link);
		goto out;
	}
	*dir = xasprintf("%s/images/%s", data, b.p);
none:
	ret = 0;
out:
	buf_free(&b);
	free(link);
	return ret;
}

/* What kind of JSON value j is, for a message. */
static const char *json_kind(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_NULL:
		return "null";
	default:
		return "a boolean";
	}
}

/* What to do about a manifest nook cannot read. */
#define MANIFEST_FIX "a manifest is a JSON object whose \"files\" gives " \
	"each file an object with its \"sha256\" (as 'nook images export' " \
	"writes it): export the image again, or fix manifest.json"

/* m's shape, which every other check takes for granted: an object whose
 * "files" is an object of objects. 0, or -1 naming where. */
static int manifest_shape(const char *where, const json_t *m)
{
	const json_t *files = json_object_get(m, "files"), *f;
	const char *name;

	if (!json_is_object(m))
		return errorf("%s: is %s, not an object: " MANIFEST_FIX,
			      where, json_kind(m));
	if (!files)
		return errorf("%s: has no \"files\": " MANIFEST_FIX, where);
	if (!json_is_object(files))
		return errorf("%s: its \"files\" is %s, not an object: "
			      MANIFEST_FIX, where, json_kind(files));
	json_object_foreach((json_t *)files, name, f)
		if (!json_is_object(f))
			return errorf("%s: file '%s' is %s, not an object: "
				      MANIFEST_FIX, where, name, json_kind(f));
	return 0;
}

int img_manifest_load(const char *path, const char *where, json_t **m)
{
	struct buf b = BUF_INIT;
	json_error_t jerr;

	*m = NULL;
	if (!where)
		where = path;
	if (read_file_max(path, &b, IMG_MANIFEST_MAX) == 0) {
		*m = json_loadb(b.p, b.len, JSON_DECODE_ANY, &jerr);
		if (!*m)
			errorf("%s: not JSON: %s (line %d, column %d): "
			       MANIFEST_FIX, where, jerr.text, jerr.line,
			       jerr.column);
	}
	buf_free(&b);
	if (*m && manifest_shape(where, *m) < 0) {
		json_decref(*m);
		*m = NULL;
	}
	return *m ? 0 : -1;
}

/* The size a manifest entry f gives: 1 with *size set, 0 when it gives
 * none, -1 when it is not a number of bytes. */
static int size_given(const char *where, const char *name, const json_t *f,
		      uint64_t *size)
{
	const json_t *want = json_object_get(f, "size");

	if (!want)
		return 0;
	if (!json_is_integer(want) || json_integer_value(want) < 0)
		return errorf("%s: the manifest gives %s a size that is not a "
			      "number of bytes", where, name);
	*size = (uint64_t)json_integer_value(want);
	return 1;
}

int img_member_check(const char *where, const json_t *m, const char *name,
		     uint64_t size, int sparse)
{
	const json_t *f = json_object_get(json_object_get(m, "files"), name);
	uint64_t want = 0;
	int given = f ? size_given(where, name, f, &want) : 0;

	if (!f || !strcmp(name, "manifest.json"))
		return errorf("%s: '%s' is not a file manifest.json lists",
			      where, name);
	if (given < 0)
		return -1;
	if (given && want != size)
		return errorf("%s: %s is %llu bytes, the manifest says %llu",
			      where, name, (unsigned long long)size,
			      (unsigned long long)want);
	if (size > IMG_FILE_MAX)
		return errorf("%s: %s is %llu GiB, more than the %llu GiB nook "
			      "takes for one file", where, name,
			      (unsigned long long)(size >> 30),
			      (unsigned long long)(IMG_FILE_MAX >> 30));
	if (sparse && !given)
		return errorf("%s: %s is sparse and manifest.json gives no "
			      "\"size\" for it (its holes would be hashed as "
			      "zeros for as long as the archive claims)", where,
			      name);
	return 0;
}

/* The size of dir/name against the one manifest entry f gives, if any;
 * from names the image in messages. */
static int check_size(const char *dir, const char *from, const char *name,
		      const json_t *f)
{
	char *path;
	struct stat st;
	uint64_t want = 0;
	int rc = size_given(from, name, f, &want);

	if (rc <= 0)
		return rc;
	path = xasprintf("%s/%s", dir, name);
	rc = stat(path, &st);
	free(path);
	if (rc < 0)
		return error_errno("%s: cannot read %s", from, name);
	if ((uint64_t)st.st_size != want)
		return errorf("%s: %s is %llu bytes, the manifest says %llu",
			      from, name, (unsigned long long)st.st_size,
			      (unsigned long long)want);
	return 0;
}

/* One file of a manifest against its sum as it was written, and its size
 * on disk in dir when the manifest gives one. The messages name from,
 * the image as the user gave it (a staging dir is nothing to them). */
static int check_entry(const char *dir, const char *from, const char *name,
		       const json_t *f, const json_t *sums)
{
	const char *want = json_string_value(json_object_get(f, "sha256"));
	const char *got = json_string_value(json_object_get(sums, name));
	const json_t *fmt = json_object_get(f, "format");

	if (!img_plain_name(name) || !strcmp(name, "manifest.json"))
		return errorf("%s: the manifest names a file '%s' that "
			      "is not a plain name", from, name);
	if (!want || !is_hex64(want))
		return errorf("%s: file %s has no sha256 in the manifest",
			      from, name);
	if (fmt && (!json_is_string(fmt) ||
		    (strcmp(json_string_value(fmt), "qcow2") &&
		     strcmp(json_string_value(fmt), "raw"))))
		return errorf("%s: disk %s: its format must be \"qcow2\" or "
			      "\"raw\"", from, name);
	if (!got)
		return errorf("%s: the manifest lists %s, which is not "
			      "in the image", from, name);
	if (strcmp(got, want))
		return errorf("%s: file %s: checksum mismatch: its sha256 is "
			      "%s, the manifest says %s; it was changed or "
			      "damaged since the manifest was written: copy "
			      "or export the image again", from, name, got,
			      want);
	return check_size(dir, from, name, f);
}

/* Check a manifest against the sums of its files as they were written
 * into dir (file name -> sha256 hex): plain names only, each with the
 * sha256 it was written with (and the size it gives), and one disk among
 * them. from names the image in messages. */
static int check_sums(const char *dir, const char *from,
		      const json_t *manifest, const json_t *sums)
{
	const json_t *files = json_object_get(manifest, "files"), *f;
	const char *name;
	int disks = 0;

	if (!json_is_object(files) || !json_object_size(files))
		return errorf("%s: the manifest lists no files", from);
	json_object_foreach((json_t *)files, name, f) {
		if (check_entry(dir, from, name, f, sums) < 0)
			return -1;
		disks += json_object_get(f, "format") != NULL;
	}
	if (disks != 1)
		return errorf("%s: the manifest must name one disk (a file with "
			      "a \"format\"), not %d", from, disks);
	return 0;
}

int img_verify(const char *dir, const json_t *manifest)
{
	json_t *sums = json_object(), *f;
	const char *name;
	int ret = 0;

	json_object_foreach(json_object_get(manifest, "files"), name, f) {
		char sum[65], *path;

		if (!img_plain_name(name))
			continue; /* check_sums refuses it, unopened */
		path = xasprintf("%s/%s", dir, name);
		ret = sha256_file(path, sum);
		free(path);
		if (ret < 0)
			break;
		json_object_set_new(sums, name, json_string(sum));
	}
	if (ret == 0)
		ret = check_sums(dir, dir, manifest, sums);
	json_decref(sums);
	return ret;
}

/* Open src to be copied: a regular file only (/dev/zero or a FIFO would
 * be read for ever); *size is what it holds. */
static int open_regular(const char *src, uint64_t *size)
{
	int fd = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;

	if (fd < 0)
		return error_errno("cannot read %s", src);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return errorf("%s: not a regular file", src);
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

/* Copy src to dst (created 0644) and hash it in the same pass; *size gets
 * the bytes copied. */
static int copy_hashed(const char *src, const char *dst, char sum[65],
		       uint64_t *size)
{
	int in = open_regular(src, size), out = -1, ret = -1;
	struct stat st;
	struct sha256 s;

	if (in < 0)
		return -1;
	sha256_init(&s);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0) {
		error_errno("cannot write %s", dst);
		goto out;
	}
	if (sha256_fd(&s, in, src, out, dst) < 0)
		goto out;
	if (fsync(out) < 0 || fstat(out, &st) < 0) {
		error_errno("cannot write %s", dst);
		goto out;
	}
	*size = (uint64_t)st.st_size;
	ret = sha256_hex(&s, sum);
out:
	sha256_free(&s);
	close(in); /* read-only: nothing to lose */
	if (out >= 0 && close(out) < 0 && ret == 0)
		ret = error_errno("cannot write %s", dst);
	return ret;
}

/* Copy src into stage as file, hashing it as it goes: its sha256 goes into
 * sums and, when files is given, into the manifest entry for it there,
 * with its size (and format, for the disk). */
static int stage_file(const char *stage, const char *src, const char *file,
		      json_t *files, const char *format, json_t *sums)
{
	char *to = xasprintf("%s/%s", stage, file);
	char sum[65];
	uint64_t size = 0;
	int rc = copy_hashed(src, to, sum, &size);
	json_t *entry;

	free(to);
	if (rc < 0)
		return -1;
	json_object_set_new(sums, file, json_string(sum));
	if (!files)
		return 0;
	entry = json_pack("{s:s,s:I}", "sha256", sum, "size",
			  (json_int_t)size);
	if (format)
		json_object_set_new(entry, "format", json_string(format));
	json_object_set_new(files, file, entry);
	return 0;
}

char *img_stage(const char *data)
{
	char *base = xasprintf("%s/images", data);
	char *tmp = xasprintf("%s/.tmp-%d-XXXXXX", base, (int)getpid());

	/* an import that was killed left its stage: the store owns it */
	tmp_sweep(base, ".tmp-");
	if (mkdir_p(base, 0755) < 0 || !tmp_mkdtemp(tmp)) {
		if (errno)
			error_errno("cannot make a directory in %s", base);
		free(tmp);
		tmp = NULL;
	}
	free(base);
	return tmp;
}

/* Point name at digest: names/NAME, written atomically. */
static int set_name(const char *data, const char *name, const char *digest)
{
	char *dir = xasprintf("%s/images/names", data);
	char *path = xasprintf("%s/%s", dir, name);
	char line[66];
	int ret = mkdir_p(dir, 0755);

	snprintf(line, sizeof(line), "%s\n", digest);
	if (ret == 0)
		ret = write_file_atomic(path, line, strlen(line), 0644);
	free(dir);
	free(path);
	return ret;
}

/* Each disk in stage as img_disk_check() wants it: the copy that will be
 * used, after its checksum matched. The messages name from and the disk
 * (the stage is nothing to the user, and gone once refused). */
static int check_disks(const char *stage, const char *from, const json_t *m)
{
	const char *name;
	json_t *f;

	json_object_foreach((json_t *)json_object_get(m, "files"), name, f) {
		const char *fmt = json_string_value(json_object_get(f, "format"));
		char *path, *what;
		int rc;

		if (!fmt)
			continue;
		path = xasprintf("%s/%s", stage, name);
		what = xasprintf("%s: disk %s", from, name);
		rc = disk_check(path, what, fmt);
		free(path);
		free(what);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* What a VM will boot from the image reads as it will then: the login
 * user a plain user name (it goes into ssh's argv and ssh-config). where
 * names manifest m in messages. */
static int check_boot(const char *stage, const json_t *m, const char *where)
{
	struct img_boot b;

	if (img_boot_parse(stage, m, where, &b) < 0)
		return -1;
	img_boot_free(&b);
	return 0;
}

/* How long a store operation waits for another's lock: the holder only
 * renames, writes a name or removes a directory, or (shared) takes a new
 * VM from resolving its image to its record: its inputs, its overlay and
 * seed, not its QEMU's launch. */
#define STORE_WAIT_MS 60000

/* Without the lock an import of an image being removed could find its
 * directory still there, keep it, and name it just as it goes. */
int img_lock(const char *data, int shared)
{
	char *base = xasprintf("%s/images", data);
	char *path = xasprintf("%s/.lock", base);
	int fd = -1;

	/* read-only is enough for flock: a store someone else made */
	if (mkdir_p(base, 0755) == 0)
		fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		error_errno("cannot open %s", path);
	else if ((shared ? flock_wait_shared(fd, STORE_WAIT_MS)
			 : flock_wait(fd, STORE_WAIT_MS)) < 0) {
		if (errno == EWOULDBLOCK)
			errorf("another nook has held the image store (%s) "
			       "for a minute (an import, a removal or a VM's "
			       "first start): try again when it is done", path);
		else
			error_errno("cannot lock %s", path);
		close(fd);
		fd = -1;
	}
	free(base);
	free(path);
	return fd;
}

void img_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

void img_named_free(struct img_named *n)
{
	if (!n)
		return;
	free(n->dir);
	free(n->was);
	n->dir = n->was = NULL;
}

/* Fill out (if wanted) with final and what name pointed at before. */
static void tell_named(const char *data, const char *name, const char *final,
		       struct img_named *out)
{
	char *was = NULL;
	struct stat st;

	if (!out)
		return;
	out->dir = xstrdup(final);
	out->was = NULL;
	/* a dangling name replaced nothing */
	if (img_resolve(data, name, &was) == 0 && was && strcmp(was, final) &&
	    stat(was, &st) == 0)
		out->was = was;
	else
		free(was);
}

int img_commit(const char *data, char *stage, const char *from,
	       const char *name, const json_t *sums, struct img_named *out)
{
	char *mpath = xasprintf("%s/manifest.json", stage);
	/* the stage is nothing to the user: name what they import */
	char *where = xasprintf("%s: manifest.json", from);
	const json_t *d = json_object_get(sums, "manifest.json");
	const char *digest = json_string_value(d);
	json_t *m = NULL;
	char *final = NULL;
	struct stat st;
	int lock = -1, ret = -1;

	if (img_manifest_load(mpath, where, &m) < 0)
		goto out;
	if (!digest || !is_hex64(digest)) {
		errorf("%s: the manifest was not hashed as it was written",
		       from);
		goto out;
	}
	if (check_sums(stage, from, m, sums) < 0 ||
	    check_disks(stage, from, m) < 0 || check_boot(stage, m, where) < 0)
		goto out;
	final = xasprintf("%s/images/%s", data, digest);
	lock = img_lock(data, 0);
	if (lock < 0)
		goto out;
	if (stat(final, &st) == 0) {
		remove_tree(stage); /* the same image is there already */
	} else if (rename(stage, final) < 0) {
		error_errno("cannot move %s to %s", stage, final);
		goto out;
	}
	tell_named(data, name, final, out);
	if (set_name(data, name, digest) < 0) {
		img_named_free(out);
		goto out;
	}
	ret = 0;
out:
	img_unlock(lock);
	if (ret < 0)
		remove_tree(stage);
	tmp_unregister(stage);
	free(stage);
	json_decref(m);
	free(mpath);
	free(where);
	free(final);
	return ret;
}

/* Copy src/file into stage once its size is what manifest m says. */
static int stage_listed(const char *stage, const char *src, const json_t *m,
			const char *file, json_t *sums)
{
	char *from = xasprintf("%s/%s", src, file);
	struct stat st;
	int rc = stat(from, &st);

	if (rc < 0)
		rc = error_errno("cannot read %s", from);
	else if (!S_ISREG(st.st_mode))
		rc = errorf("%s: not a regular file", from);
	else
		rc = img_member_check(src, m, file, (uint64_t)st.st_size, 0);
	if (rc == 0)
		rc = stage_file(stage, from, file, NULL, NULL, sums);
	free(from);
	return rc;
}

int img_import_dir(const char *data, const char *src, const char *name,
		   struct img_named *out)
{
	char *mpath = xasprintf("%s/manifest.json", src);
	json_t *m = NULL, *f;
	json_t *sums = json_object();
	char *stage = NULL;
	const char *file;
	int ret = -1;

	if (img_manifest_load(mpath, NULL, &m) < 0)
		goto out;
	stage = img_stage(data);
	if (!stage)
		goto out;
	json_object_foreach(json_object_get(m, "files"), file, f) {
		if (!img_plain_name(file)) {
			errorf("%s: file '%s' is not a plain name", mpath, file);
			goto out;
		}
		if (stage_listed(stage, src, m, file, sums) < 0)
			goto out;
	}
	if (stage_file(stage, mpath, "manifest.json", NULL, NULL, sums) < 0)
		goto out;
	ret = img_commit(data, stage, src, name, sums, out);
	stage = NULL; /* committed or removed */
out:
	if (stage)
		remove_tree(stage);
	tmp_unregister(stage);
	free(stage);
	json_decref(sums);
	json_decref(m);
	free(mpath);
	return ret;
}

int img_disk_probe(const char *disk, const char **fmt)
{
	unsigned char head[4];
	size_t n = sizeof(head);
	uint64_t size;

	if (read_head(disk, head, &n, &size) < 0)
		return -1;
	*fmt = n == 4 && !memcmp(head, "QFI\xfb", 4) ? "qcow2" : "raw";
	return img_disk_check(disk, *fmt);
}

/* Write m as stage's manifest.json, hashed from memory into sums. */
static int stage_manifest(const char *stage, const json_t *m, json_t *sums)
{
	char *s = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	char *path = xasprintf("%s/manifest.json", stage);
	struct sha256 h;
	char sum[65];
	int ret = s ? write_file_atomic(path, s, strlen(s), 0644)
		    : errorf("%s: cannot encode the manifest", path);

	if (ret == 0) {
		sha256_init(&h);
		sha256_update(&h, s, strlen(s));
		ret = sha256_hex(&h, sum);
	}
	if (ret == 0)
		json_object_set_new(sums, "manifest.json", json_string(sum));
	free(path);
	free(s);
	return ret;
}

int img_import_disk(const char *data, const char *disk, const char *kernel,
		    const char *initrd, const char *cmdline, const char *name,
		    struct img_named *out)
{
	json_t *m = NULL, *files, *boot, *sums = json_object();
	const char *fmt;
	char *stage = NULL, *file = NULL;
	int ret = -1;

	if (img_disk_probe(disk, &fmt) < 0)
		goto out;
	stage = img_stage(data);
	if (!stage)
		goto out;
	files = json_object();
	boot = json_array();
	m = json_pack("{s:s,s:s,s:o,s:o}", "name", name, "arch", "x86_64",
		      "boot", boot, "files", files);
	file = xasprintf("disk.%s", fmt);
	/* each file is read once: copied and hashed in the same pass */
	if (stage_file(stage, disk, file, files, fmt, sums) < 0 ||
	    (kernel && stage_file(stage, kernel, "vmlinuz", files, NULL,
				  sums) < 0) ||
	    (initrd && stage_file(stage, initrd, "initrd.img", files, NULL,
				  sums) < 0))
		goto out;
	if (kernel)
		json_array_append_new(boot, json_string("direct"));
	json_array_append_new(boot, json_string("disk"));
	if (cmdline)
		json_object_set_new(m, "cmdline", json_string(cmdline));
	if (stage_manifest(stage, m, sums) < 0)
		goto out;
	ret = img_commit(data, stage, disk, name, sums, out);
	stage = NULL; /* committed or removed */
out:
	if (stage)
		remove_tree(stage);
	tmp_unregister(stage);
	free(stage);
	free(file);
	json_decref(sums);
	json_decref(m);
	return ret;
}

static uint64_t dir_size(const char *dir)
{
	DIR *d = opendir(dir);
	uint64_t total = 0;

	for (struct dirent *e = d ? readdir(d) : NULL; e; e = readdir(d)) {
		char *p = xasprintf("%s/%s", dir, e->d_name);
		struct stat st;

		if (e->d_name[0] != '.' && stat(p, &st) == 0)
			total += (uint64_t)st.st_blocks * 512;
		free(p);
	}
	if (d)
		closedir(d);
	return total;
}

/* Every name in the store; the names of images/names, unchecked. */
static void list_names(const char *data, struct strvec *v)
{
	char *names = xasprintf("%s/images/names", data);
	DIR *d = opendir(names);

	for (struct dirent *e = d ? readdir(d) : NULL; e; e = readdir(d))
		if (e->d_name[0] != '.')
			strvec_push(v, e->d_name);
	if (d)
		closedir(d);
	free(names);
}

/* 1 when a name of the store points at image directory dir. */
static int named(const char *data, const char *dir)
{
	struct strvec v = STRVEC_INIT;
	int found = 0;

	list_names(data, &v);
	for (size_t i = 0; i < v.n && !found; i++) {
		char *to = NULL;

		if (img_resolve(data, v.v[i], &to) == 0 && to)
			found = !strcmp(to, dir);
		free(to);
	}
	strvec_clear(&v);
	return found;
}

/* The image directories themselves (images/<digest>), named or not. */
static void list_digests(const char *data, struct strvec *v)
{
	char *base = xasprintf("%s/images", data);
	DIR *d = opendir(base);

	for (struct dirent *e = d ? readdir(d) : NULL; e; e = readdir(d))
		if (is_hex64(e->d_name))
			strvec_push(v, e->d_name);
	if (d)
		closedir(d);
	free(base);
}

/* Append image dir's entry to all, under name (NULL: unnamed). */
static void list_one(json_t *all, const char *dir, const char *name)
{
	char *mpath = xasprintf("%s/manifest.json", dir);
	json_t *m = json_load_file(mpath, 0, NULL);
	json_t *boot = json_object_get(m, "boot");
	struct stat st;

	if (m && stat(mpath, &st) == 0)
		json_array_append_new(all, json_pack(
			"{s:s?,s:s,s:s,s:I,s:O,s:I}", "name", name,
			"digest", strrchr(dir, '/') + 1, "dir", dir,
			"size", (json_int_t)dir_size(dir), "boot",
			boot ? boot : json_null(),
			"created", (json_int_t)st.st_mtime));
	json_decref(m);
	free(mpath);
}

json_t *img_list(const char *data)
{
	json_t *all = json_array();
	struct strvec v = STRVEC_INIT, digests = STRVEC_INIT;
	struct strvec dirs = STRVEC_INIT; /* the named ones */

	list_names(data, &v);
	for (size_t i = 0; i < v.n; i++) {
		char *dir = NULL;

		if (img_resolve(data, v.v[i], &dir) == 0 && dir) {
			list_one(all, dir, v.v[i]);
			strvec_push(&dirs, dir);
		}
		free(dir);
	}
	/* what no name points at: a name moved on while a VM used it */
	list_digests(data, &digests);
	for (size_t i = 0; i < digests.n; i++) {
		char *dir = xasprintf("%s/images/%s", data, digests.v[i]);

		if (strvec_index(&dirs, dir) < 0)
			list_one(all, dir, NULL);
		free(dir);
	}
	strvec_clear(&dirs);
	strvec_clear(&digests);
	strvec_clear(&v);
	return all;
}

int img_remove(const char *data, const char *name)
{
	char *dir = NULL, *link = xasprintf("%s/images/names/%s", data, name);
	char *base = xasprintf("%s/images", data);
	int ret = -1;

	if (img_resolve(data, name, &dir) < 0)
		goto out;
	if (!dir) {
		errorf("no image named '%s' in the store", name);
		goto out;
	}
	/* not the name gone and the files half there */
	if (access(base, W_OK) < 0) {
		error_errno("cannot remove image %s from %s", name, base);
		goto out;
	}
	if (unlink(link) < 0) {
		error_errno("cannot remove %s", link);
		goto out;
	}
	ret = named(data, dir) ? 0 : remove_tree(dir);
out:
	free(base);
	free(dir);
	free(link);
	return ret;
}

int img_forget(const char *data, const char *dir)
{
	/* named again meanwhile: an import of the same image */
	if (named(data, dir))
		return 0;
	return remove_tree(dir) < 0 ? -1 : 1;
}

int img_find_digest(const char *data, const char *prefix, char **dir)
{
	struct strvec v = STRVEC_INIT;
	size_t n = strlen(prefix), found = 0;

	*dir = NULL;
	if (n < 12 || n > 64 || strspn(prefix, "0123456789abcdef") != n)
		return 0;
	list_digests(data, &v);
	for (size_t i = 0; i < v.n; i++) {
		if (strncmp(v.v[i], prefix, n))
			continue;
		if (!found)
			*dir = xasprintf("%s/images/%s", data, v.v[i]);
		found++;
	}
	strvec_clear(&v);
	if (found > 1) {
		free(*dir);
		*dir = NULL;
		return errorf("digest %s: %zu images begin with it; give "
			      "more of it", prefix, found);
	}
	return 0;
}

/* Image bundles: tar (plain, gzip, xz, zstd) in and tar.zst out. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "images.h"
#include "store.h"

/* An entry's name with a leading "./" dropped; NULL when it is not a
 * plain file name at the top of the bundle. */
static const char *entry_name(const char *path)
{
	if (!strncmp(path, "./", 2))
		path += 2;
	return img_plain_name(path) ? path : NULL;
}

/* A hole of n bytes in fd at its offset (read back as zeros: hashed so). */
static int hole(int fd, struct sha256 *s, la_int64_t n, const char *path)
{
	static const unsigned char zeros[1 << 16];

	if (n > 0 && lseek(fd, (off_t)n, SEEK_CUR) < 0)
		return error_errno("cannot write %s", path);
	while (n > 0) {
		size_t k = n < (la_int64_t)sizeof(zeros) ? (size_t)n
							   : sizeof(zeros);

		sha256_update(s, zeros, k);
		n -= (la_int64_t)k;
	}
	return 0;
}

/* Copy the current entry's data to a new file at path, hashing it as it
 * goes into sum; a sparse entry's holes stay holes. */
static int extract(struct archive *a, la_int64_t size_all, const char *path,
		   char sum[65])
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	struct sha256 s;
	const void *blk;
	size_t size;
	la_int64_t off, pos = 0;
	int r, ret = -1;

	if (fd < 0)
		return error_errno("cannot write %s", path);
	sha256_init(&s);
	for (;;) {
		r = archive_read_data_block(a, &blk, &size, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK || off < pos) {
			errorf("bundle: %s", r != ARCHIVE_OK ?
			       archive_error_string(a) : "blocks out of order");
			goto out;
		}
		if (hole(fd, &s, off - pos, path) < 0)
			goto out;
		if (write_all(fd, blk, size) < 0) {
			error_errno("cannot write %s", path);
			goto out;
		}
		sha256_update(&s, blk, size);
		pos = off + (la_int64_t)size;
	}
	/* a hole at the end has no block: the entry's size says it */
	if (size_all > pos && hole(fd, &s, size_all - pos, path) < 0)
		goto out;
	if ((size_all > pos && ftruncate(fd, (off_t)size_all) < 0) ||
	    fsync(fd) < 0) {
		error_errno("cannot write %s", path);
		goto out;
	}
	ret = sha256_hex(&s, sum);
out:
	sha256_free(&s);
	if (close(fd) < 0 && ret == 0)
		ret = error_errno("cannot write %s", path);
	return ret;
}

/* The next member of the bundle worth reading: 1 with *e and *plain set,
 * 0 at the end, -1 having refused it (anything but a regular file with a
 * plain name at the top). */
static int next_member(struct archive *a, const char *bundle,
		       struct archive_entry **e, const char **plain)
{
	const char *path;
	int r;

	do {
		r = archive_read_next_header(a, e);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r != ARCHIVE_OK)
			return errorf("%s: %s", bundle, archive_error_string(a));
		path = archive_entry_pathname(*e);
		if (!path)
			path = "";
	} while (archive_entry_filetype(*e) == AE_IFDIR &&
		 (!strcmp(path, "./") || !strcmp(path, ".")));
	/* An image is a handful of plain files side by side: anything else
	 * is refused, never followed or created. */
	if (archive_entry_filetype(*e) != AE_IFREG ||
	    archive_entry_hardlink(*e))
		return errorf("%s: entry '%s' is not a regular file (links, "
			      "devices and directories are refused)", bundle,
			      path);
	*plain = entry_name(path);
	if (!*plain)
		return errorf("%s: entry '%s' is not a plain name at the top "
			      "(absolute paths and '..' are refused)", bundle,
			      path);
	return 1;
}

/* Whether member plain (of *m's bundle) may be read: the manifest comes
 * first, and is loaded into *m once staged; every other member is one it
 * lists, once, of the size it says. */
static int may_read(const char *bundle, struct archive_entry *e,
		    const char *plain, const json_t *m, const json_t *sums)
{
	la_int64_t size = archive_entry_size(e);

	if (size < 0)
		return errorf("%s: entry '%s' has no size", bundle, plain);
	if (!m && strcmp(plain, "manifest.json"))
		return errorf("%s: no manifest.json before '%s': a bundle "
			      "begins with its manifest (as 'nook images "
			      "export' writes it)", bundle, plain);
	if (!m)
		return (uint64_t)size > IMG_MANIFEST_MAX ?
			errorf("%s: manifest.json is larger than %zu KiB",
			       bundle, IMG_MANIFEST_MAX >> 10) : 0;
	if (json_object_get(sums, plain))
		return errorf("%s: entry '%s' comes twice", bundle, plain);
	return img_member_check(bundle, m, plain, (uint64_t)size,
				archive_entry_sparse_count(e) > 0);
}

/* The manifest staged at path, named in messages as the bundle's member:
 * the staging directory is nothing to the user. */
static int load_manifest(const char *bundle, const char *path, json_t **m)
{
	char *where = xasprintf("%s: manifest.json", bundle);
	int rc = img_manifest_load(path, where, m);

	free(where);
	return rc;
}

int img_bundle_extract(struct archive *a, const char *bundle,
		       const char *stage, json_t **m, json_t *sums)
{
	struct archive_entry *e = NULL;
	const char *plain = NULL;
	int r;

	for (;;) {
		char *dst, sum[65];

		r = next_member(a, bundle, &e, &plain);
		if (r <= 0)
			break;
		if (may_read(bundle, e, plain, *m, sums) < 0)
			return -1;
		dst = xasprintf("%s/%s", stage, plain);
		r = extract(a, archive_entry_size(e), dst, sum);
		if (r == 0 && !*m)
			r = load_manifest(bundle, dst, m);
		free(dst);
		if (r < 0)
			return -1;
		json_object_set_new(sums, plain, json_string(sum));
	}
	if (r == 0 && !*m)
		return errorf("%s: no manifest.json in the bundle", bundle);
	return r;
}

struct archive *img_bundle_reader(void)
{
	struct archive *a = archive_read_new();

	archive_read_support_format_tar(a);
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_zstd(a);
	return a;
}

int img_import_bundle(const char *data, const char *bundle, const char *name,
		      struct img_named *out)
{
	struct archive *a = img_bundle_reader();
	json_t *sums = json_object(), *m = NULL;
	char *stage = NULL;
	int ret = -1;

	if (archive_read_open_filename(a, bundle, 1 << 16) != ARCHIVE_OK) {
		errorf("%s: %s", bundle, archive_error_string(a));
		goto out;
	}
	stage = img_stage(data);
	if (!stage || img_bundle_extract(a, bundle, stage, &m, sums) < 0)
		goto out;
	ret = img_commit(data, stage, bundle, name, sums, out);
	stage = NULL;
out:
	if (stage)
		remove_tree(stage);
	tmp_unregister(stage);
	free(stage);
	json_decref(m);
	json_decref(sums);
	archive_read_free(a);
	return ret;
}

/* Run tar (argv) with its archive going to fd; it says on stderr what
 * goes wrong, nook says that it did. */
static int run_tar(struct strvec *argv, int fd, const char *out)
{
	struct child c = CHILD_INIT;
	int rc;

	c.argv = (const char *const *)argv->v;
	c.in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	c.out = fd;
	rc = c.in < 0 ? error_errno("cannot open /dev/null") : child_start(&c);
	if (rc == 0)
		rc = child_wait(&c);
	if (c.in >= 0)
		close(c.in);
	if (rc > 0)
		errorf("tar failed (exit %d) writing %s", rc, out);
	return rc == 0 ? 0 : -1;
}

/* 1 when name ends in suffix, in any case of letters. */
static int ends_in(const char *name, const char *suffix)
{
	size_t n = strlen(name), k = strlen(suffix);

	return n > k && !strcasecmp(name + n - k, suffix);
}

/* path's file name: the name says what it is, not its directories. */
static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

int img_bundle_name(const char *path)
{
	const char *base = base_name(path);

	return ends_in(base, ".tar") || strcasestr(base, ".tar.") ||
	       ends_in(base, ".tgz") || ends_in(base, ".txz") ||
	       ends_in(base, ".tzst");
}

/* The names nook writes a bundle under, each with tar's option for its
 * compression (NULL: none). */
static const struct {
	const char *suffix, *z;
} written[] = {
	{ ".tar.zst", "--zstd" }, { ".tzst", "--zstd" },
	{ ".tar.gz", "--gzip" },  { ".tgz", "--gzip" },
	{ ".tar.xz", "--xz" },    { ".txz", "--xz" },
	{ ".tar", NULL },
};

/* Names that promise an archive or a compression nook does not write
 * (any other .tar.EXT too): refused, not written as zstd under them. A
 * bare .gz, .xz or .zst would be read back as a disk, not a bundle. */
static const char *const foreign[] = {
	".zip", ".7z", ".rar", ".cpio", ".jar", ".tbz", ".tbz2", ".tb2",
	".bz2", ".tlz", ".lz", ".lzma", ".lz4", ".lzo", ".taz", ".tz", ".z",
	".gz", ".xz", ".zst", ".zstd",
};

/* 1 when base (not one of written[]) promises what nook does not write. */
static int foreign_name(const char *base)
{
	for (size_t i = 0; i < ARRAY_SIZE(foreign); i++)
		if (ends_in(base, foreign[i]))
			return 1;
	return strcasestr(base, ".tar.") != NULL;
}

/* The compression out's name asks for, as tar's option into *z (NULL:
 * none), the one each reader of the name would expect: zstd for "-" and a
 * name that says nothing of it (a FIFO's, a device's). 0, or -1 (a usage
 * error) for a name that promises what nook does not write (a .tar.bz2
 * with zstd inside is read by nothing). */
static int compression(const char *out, const char **z)
{
	const char *base = base_name(out);

	*z = "--zstd";
	for (size_t i = 0; i < ARRAY_SIZE(written); i++) {
		if (ends_in(base, written[i].suffix)) {
			*z = written[i].z;
			return 0;
		}
	}
	if (foreign_name(base))
		return usage_errorf("%s: a bundle is written as .tar.zst "
				    "(.tzst), .tar.gz (.tgz), .tar.xz (.txz) "
				    "or .tar, in any case of letters", out);
	return 0;
}

/* tar's argv for the image in dir as manifest m lists it, compressed
 * with tar's option z (NULL: not compressed). */
static int tar_argv(const char *dir, const char *mpath, const json_t *m,
		    const char *z, struct strvec *argv)
{
	const char *file;
	json_t *f;

	/* GNU tar writes the bundle: libarchive's tar writers would drag
	 * every writer format (and libxml2) into nook's static link. The
	 * manifest goes first, so a reader knows what follows; the archive
	 * goes to tar's stdout, which is whatever tmpfile_open() opened. */
	strvec_push(argv, "tar");
	if (z)
		strvec_push(argv, z);
	strvec_push(argv, "--format=pax");
	/* a disk's holes stay holes (pax sparse 1.0, which libarchive and
	 * GNU tar read back), not gigabytes of zeros to compress */
	strvec_push(argv, "--sparse");
	strvec_push(argv, "--owner=0");
	strvec_push(argv, "--group=0");
	strvec_push(argv, "-cf");
	strvec_push(argv, "-");
	strvec_push(argv, "-C");
	strvec_push(argv, dir);
	strvec_push(argv, "--");
	strvec_push(argv, "manifest.json");
	json_object_foreach((json_t *)json_object_get(m, "files"), file, f) {
		if (!img_plain_name(file))
			return errorf("%s: file '%s' is not a plain name",
				      mpath, file);
		strvec_push(argv, file);
	}
	return 0;
}

int img_export(const char *data, const char *name, const char *out)
{
	struct strvec argv = STRVEC_INIT;
	struct tmpfile t = { NULL, NULL, -1, 0 };
	const char *z;
	char *dir = NULL, *mpath = NULL;
	json_t *m = NULL;
	int ret = -1;

	/* a name nook cannot write is said before the image is looked for */
	if (compression(out, &z) < 0)
		return -1;
	if (strcmp(out, "-") && path_unswappable(out, "the bundle") < 0)
		return -1;
	if (img_resolve(data, name, &dir) < 0)
		return -1;
	if (!dir)
		return errorf("no image named '%s' in the store", name);
	mpath = xasprintf("%s/manifest.json", dir);
	m = json_load_file(mpath, 0, NULL);
	if (!m) {
		errorf("%s: cannot read the manifest", mpath);
		goto out;
	}
	if (tar_argv(dir, mpath, m, z, &argv) < 0)
		goto out;
	if (tmpfile_open_out(&t, out, 0644) < 0)
		goto out;
	if (run_tar(&argv, t.fd, t.path) < 0)
		goto out;
	ret = tmpfile_commit(&t);
out:
	if (ret < 0 && t.path)
		tmpfile_abort(&t);
	strvec_clear(&argv);
	json_decref(m);
	free(mpath);
	free(dir);
	return ret;
}

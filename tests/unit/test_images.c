/* Unit tests for images/ and SHA-256: the store, names, manifests,
 * checksums, and the bundle reader against malicious bundles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>

#include "images.h"
#include "testutil.h"

/* The FIPS 180-4 vectors, through libcrypto (builtin = 0: it must be the
 * one in use) and through nook's own fallback code. */
static void sha256_vectors(int builtin)
{
	static const struct {
		const char *in, *hex;
	} v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	};
	struct sha256 s;
	char hex[65];

	for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
		if (builtin)
			sha256_init_builtin(&s);
		else
			sha256_init(&s);
		assert_true(builtin ? !s.evp : !!s.evp);
		sha256_update(&s, v[i].in, strlen(v[i].in));
		assert_int_equal(sha256_hex(&s, hex), 0);
		assert_string_equal(hex, v[i].hex);
	}
	/* a million 'a's, fed in odd-sized pieces */
	if (builtin)
		sha256_init_builtin(&s);
	else
		sha256_init(&s);
	for (int i = 0; i < 1000000;) {
		static const char a[997] = { [0 ... 996] = 'a' };
		int n = 1000000 - i < 997 ? 1000000 - i : 997;

		sha256_update(&s, a, (size_t)n);
		i += n;
	}
	assert_int_equal(sha256_hex(&s, hex), 0);
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_sha256_vectors(void **state)
{
	(void)state;
	sha256_vectors(0);
	sha256_vectors(1);
}

static void sha512_vectors(int builtin)
{
	static const struct {
		const char *in, *hex;
	} v[] = {
		{ "", "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
		      "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e" },
		{ "abc", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
			 "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f" },
		{ "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
		  "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
		  "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
		  "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909" },
	};
	struct sha512 s;
	char hex[129];

	for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
		if (builtin)
			sha512_init_builtin(&s);
		else
			sha512_init(&s);
		assert_true(builtin ? !s.evp : !!s.evp);
		sha512_update(&s, v[i].in, strlen(v[i].in));
		assert_int_equal(sha512_hex(&s, hex), 0);
		assert_string_equal(hex, v[i].hex);
	}
}

static void test_sha512_vectors(void **state)
{
	(void)state;
	sha512_vectors(0);
	sha512_vectors(1);
}

/* A file of n bytes of a repeating pattern (several read chunks when n is
 * large); the caller frees the path. */
static char *pattern_file(const char *dir, const char *name, size_t n)
{
	char *p = xasprintf("%s/%s", dir, name);
	char *data = xmalloc(n);

	for (size_t i = 0; i < n; i++)
		data[i] = (char)(i * 7 + i / 4099);
	assert_int_equal(write_file_atomic(p, data, n, 0644), 0);
	free(data);
	return p;
}

/* The file functions agree with hashing the bytes in memory through the
 * fallback code, and a copy made by sha256_fd holds the same bytes. */
static void test_sha_files_and_copy(void **state)
{
	const size_t n = 3 * 256 * 1024 + 4321;
	char *root = make_tmpdir(), *src = pattern_file(root, "src", n);
	char *dst = xasprintf("%s/dst", root);
	char want[129], got[129];
	struct buf b = BUF_INIT;
	struct sha256 s;
	struct sha512 s5;
	int in, out;

	(void)state;
	assert_int_equal(read_file(src, &b), 0);
	sha256_init_builtin(&s);
	sha256_update(&s, b.p, b.len);
	assert_int_equal(sha256_hex(&s, want), 0);
	assert_int_equal(sha256_file(src, got), 0);
	assert_string_equal(got, want);
	sha512_init_builtin(&s5);
	sha512_update(&s5, b.p, b.len);
	assert_int_equal(sha512_hex(&s5, want), 0);
	assert_int_equal(sha512_file(src, got), 0);
	assert_string_equal(got, want);

	in = open(src, O_RDONLY | O_CLOEXEC);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(in >= 0 && out >= 0);
	sha256_init(&s);
	assert_int_equal(sha256_fd(&s, in, src, out, dst), 0);
	assert_int_equal(sha256_hex(&s, got), 0);
	assert_int_equal(close(out), 0);
	close(in);
	assert_int_equal(sha256_file(src, want), 0);
	assert_string_equal(got, want);
	assert_int_equal(sha256_file(dst, got), 0);
	assert_string_equal(got, want);
	buf_free(&b);
	remove_tree(root);
	free(root);
	free(src);
	free(dst);
}

/* A sparse file copied by sha256_fd into a regular file: the same bytes
 * and digest, its holes (whole zero chunks, a hole at the end) kept as
 * holes; into a pipe, every byte written. */
static void test_sha_copy_sparse(void **state)
{
	const off_t size = 16 << 20;
	char *root = make_tmpdir(), *src = xasprintf("%s/src", root);
	char *dst = xasprintf("%s/dst", root), want[65], got[65];
	struct buf a = BUF_INIT, b = BUF_INIT;
	struct sha256 s;
	struct stat st;
	int in, out, p[2];

	(void)state;
	in = open(src, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(in >= 0);
	assert_int_equal(ftruncate(in, size), 0);
	assert_int_equal(pwrite(in, "data", 4, 1 << 20), 4);
	assert_int_equal(pwrite(in, "more", 4, (5 << 20) + 77), 4);
	assert_int_equal(lseek(in, 0, SEEK_SET), 0);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(out >= 0);
	sha256_init(&s);
	assert_int_equal(sha256_fd(&s, in, src, out, dst), 0);
	assert_int_equal(sha256_hex(&s, got), 0);
	assert_int_equal(close(out), 0);
	assert_int_equal(sha256_file(src, want), 0);
	assert_string_equal(got, want);
	assert_int_equal(read_file(src, &a), 0);
	assert_int_equal(read_file(dst, &b), 0);
	assert_int_equal(b.len, (size_t)size);
	assert_memory_equal(a.p, b.p, a.len);
	assert_int_equal(stat(dst, &st), 0);
	/* two chunks of 256 KiB hold data: the rest is holes */
	assert_true((off_t)st.st_blocks * 512 <= 1 << 20);

	/* a pipe cannot seek: the zeros go through it */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(lseek(in, (1 << 20) - 8, SEEK_SET), (1 << 20) - 8);
	assert_int_equal(ftruncate(in, (1 << 20) + 4), 0);
	sha256_init(&s);
	assert_int_equal(sha256_fd(&s, in, src, p[1], "the-pipe"), 0);
	sha256_free(&s);
	close(p[1]);
	assert_int_equal(read(p[0], want, 12), 12);
	assert_memory_equal(want, "\0\0\0\0\0\0\0\0data", 12);
	close(p[0]);
	close(in);
	buf_free(&a);
	buf_free(&b);
	remove_tree(root);
	free(root);
	free(src);
	free(dst);
}

/* A read that fails is an error naming the file, never the hash of what
 * came before it; so is a write that fails while copying. */
static void test_sha_read_error(void **state)
{
	char *root = make_tmpdir(), *src = pattern_file(root, "src", 1000);
	char *missing = xasprintf("%s/missing", root);
	char hex[129], *err;
	struct sha256 s;
	int in, out;

	(void)state;
	stderr_begin();
	assert_int_equal(sha256_file(root, hex), -1); /* read(2): EISDIR */
	assert_int_equal(sha512_file(root, hex), -1);
	assert_int_equal(sha256_file(missing, hex), -1);
	err = stderr_end();
	assert_non_null(strstr(err, "cannot read"));
	assert_non_null(strstr(err, root));
	assert_non_null(strstr(err, "Is a directory"));
	assert_non_null(strstr(err, "missing"));
	free(err);

	/* a copy into a read-only fd: the write side is named */
	in = open(src, O_RDONLY | O_CLOEXEC);
	out = open(src, O_RDONLY | O_CLOEXEC);
	assert_true(in >= 0 && out >= 0);
	sha256_init(&s);
	stderr_begin();
	assert_int_equal(sha256_fd(&s, in, "the-src", out, "the-dst"), -1);
	err = stderr_end();
	sha256_free(&s);
	sha256_free(&s); /* twice, and NULL: both fine */
	sha256_free(NULL);
	assert_non_null(strstr(err, "cannot write the-dst"));
	free(err);
	close(in);
	close(out);
	remove_tree(root);
	free(root);
	free(src);
	free(missing);
}

static void test_names(void **state)
{
	(void)state;
	assert_true(img_name_valid("debian-12"));
	assert_true(img_name_valid("ubuntu-24.04"));
	assert_true(img_name_valid("0abc_x"));
	assert_false(img_name_valid(""));
	assert_false(img_name_valid(".hidden"));
	assert_false(img_name_valid("a/b"));
	assert_false(img_name_valid("Debian"));
	assert_false(img_name_valid("../x"));
}

static char *write_in(const char *dir, const char *name, const char *data)
{
	char *p = xasprintf("%s/%s", dir, name);

	assert_int_equal(write_file_atomic(p, data, strlen(data), 0644), 0);
	return p;
}

/* A small real qcow2 at path, made by qemu-img; extra: more of its
 * arguments (NULL: none), such as a backing file. */
static void make_qcow2(const char *path, const char *const *extra)
{
	const char *argv[16] = { "qemu-img", "create", "-q", "-f", "qcow2" };
	struct buf out = BUF_INIT;
	size_t n = 5;

	for (; extra && *extra; extra++)
		argv[n++] = *extra;
	argv[n++] = path;
	argv[n++] = "1M";
	argv[n] = NULL;
	if (run_capture(argv, &out) != 0)
		fail_msg("qemu-img create %s: %s", path, out.p);
	buf_free(&out);
}

/* The manifest of an image whose one file is disk (named file, in
 * format fmt) with the sha256 claimed, or its own when claimed is NULL. */
static char *manifest_for(const char *disk, const char *file, const char *fmt,
			  const char *claimed)
{
	char sum[65];

	assert_int_equal(sha256_file(disk, sum), 0);
	return xasprintf("{\"name\": \"t\", \"arch\": \"x86_64\", "
			 "\"boot\": [\"disk\"], \"files\": {\"%s\": "
			 "{\"format\": \"%s\", \"sha256\": \"%s\"}}}\n", file,
			 fmt, claimed ? claimed : sum);
}

/* An image directory: a real qcow2 and a manifest with its checksum. */
static char *make_image_dir(const char *root, const char *claimed_sum)
{
	char *dir = xasprintf("%s/src", root);
	char *disk = xasprintf("%s/disk.qcow2", dir), *manifest;

	assert_int_equal(mkdir_p(dir, 0755), 0);
	make_qcow2(disk, NULL);
	manifest = manifest_for(disk, "disk.qcow2", "qcow2", claimed_sum);
	free(write_in(dir, "manifest.json", manifest));
	free(manifest);
	free(disk);
	return dir;
}

/* What an import did to its name: the directory it names now, and the one
 * it named before when that was another still there. */
static void test_store_named(void **state)
{
	char *root = make_tmpdir(), *data = xasprintf("%s/data", root);
	char *src = make_image_dir(root, NULL);
	char *disk = xasprintf("%s/disk.qcow2", src), *first;
	struct img_named n = { NULL, NULL };

	(void)state;
	stderr_begin();
	assert_int_equal(img_import_dir(data, src, "t", &n), 0);
	assert_non_null(n.dir);
	assert_null(n.was); /* a new name replaced nothing */
	first = xstrdup(n.dir);
	img_named_free(&n);
	/* the same disk imported bare: another manifest, another image */
	assert_int_equal(img_import_disk(data, disk, NULL, NULL, NULL, "t", &n),
			 0);
	assert_string_not_equal(n.dir, first);
	assert_non_null(n.was);
	assert_string_equal(n.was, first);
	img_named_free(&n);
	/* the same image again replaced nothing */
	assert_int_equal(img_import_dir(data, src, "t2", NULL), 0);
	assert_int_equal(img_import_dir(data, src, "t2", &n), 0);
	assert_string_equal(n.dir, first);
	assert_null(n.was);
	img_named_free(&n);
	/* a name whose directory is gone replaced nothing that is there */
	assert_int_equal(img_import_disk(data, disk, NULL, NULL, NULL, "t2",
					 NULL), 0);
	assert_int_equal(img_forget(data, first), 1);
	assert_int_equal(access(first, F_OK), -1);
	assert_int_equal(img_import_dir(data, src, "t3", NULL), 0);
	assert_int_equal(remove_tree(first), 0);
	assert_int_equal(img_import_disk(data, disk, NULL, NULL, NULL, "t3", &n),
			 0);
	assert_null(n.was);
	img_named_free(&n);
	/* a named image is not forgotten */
	assert_int_equal(img_resolve(data, "t3", &n.dir), 0);
	assert_int_equal(img_forget(data, n.dir), 0);
	assert_int_equal(access(n.dir, F_OK), 0);
	img_named_free(&n);
	free(stderr_end());
	remove_tree(root);
	free(root);
	free(data);
	free(src);
	free(disk);
	free(first);
}

static void test_store_import_list_remove(void **state)
{
	char *root = make_tmpdir(), *data = xasprintf("%s/data", root);
	char *src = make_image_dir(root, NULL), *dir = NULL;
	char *out = xasprintf("%s/t.tar.zst", root);
	json_t *all;

	(void)state;
	stderr_begin();
	assert_int_equal(img_resolve(data, "t", &dir), 0);
	assert_null(dir);
	assert_int_equal(img_import_dir(data, src, "t", NULL), 0);
	assert_int_equal(img_resolve(data, "t", &dir), 0);
	assert_non_null(dir);
	/* content-addressed: the directory is the manifest's digest */
	{
		char *m = xasprintf("%s/manifest.json", src);
		char sum[65];

		assert_int_equal(sha256_file(m, sum), 0);
		assert_non_null(strstr(dir, sum));
		free(m);
	}
	all = img_list(data);
	assert_int_equal(json_array_size(all), 1);
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(all, 0), "name")), "t");
	json_decref(all);
	/* a second name for the same image shares its files */
	assert_int_equal(img_import_dir(data, src, "t2", NULL), 0);
	assert_int_equal(img_remove(data, "t"), 0);
	assert_int_equal(access(dir, F_OK), 0);
	/* export and import back under a new name */
	assert_int_equal(img_export(data, "t2", out), 0);
	assert_int_equal(img_import_bundle(data, out, "t3", NULL), 0);
	assert_int_equal(img_remove(data, "t2"), 0);
	assert_int_equal(access(dir, F_OK), 0); /* t3 still uses it */
	assert_int_equal(img_remove(data, "t3"), 0);
	assert_int_equal(access(dir, F_OK), -1);
	assert_int_equal(img_remove(data, "t3"), -1);
	free(stderr_end());
	remove_tree(root);
	free(root);
	free(data);
	free(src);
	free(dir);
	free(out);
}

/* The first n bytes of path, as hex. */
static void magic_of(const char *path, size_t n, char *hex)
{
	unsigned char b[8] = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0 && n <= sizeof(b));
	assert_int_equal(read(fd, b, n), (ssize_t)n);
	close(fd);
	for (size_t i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", b[i]);
}

/* Export compresses as OUT's name says, in any case of letters, and
 * refuses a name promising what it does not write (a usage error, nothing
 * written, before the image is looked for); import knows the names. */
static void test_export_names(void **state)
{
	static const struct {
		const char *name, *magic;
	} ok[] = {
		{ "a.TAR.GZ", "1f8b" }, { "b.Tgz", "1f8b" },
		{ "c.tar.Zst", "28b52ffd" }, { "d.TZST", "28b52ffd" },
		{ "e.tar.XZ", "fd377a58" }, { "f.bundle", "28b52ffd" },
	};
	static const char *const refused[] = {
		"x.tbz2", "out.zip", "x.tar.bz2", "x.TAR.BZ2", "x.tar.lz4",
		"x.gz", "x.zst", "x.tar.zstd",
	};
	char *root = make_tmpdir(), *data = xasprintf("%s/data", root);
	char *src = make_image_dir(root, NULL);

	(void)state;
	stderr_begin();
	assert_int_equal(img_import_dir(data, src, "t", NULL), 0);
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		char *out = xasprintf("%s/%s", root, ok[i].name);
		char hex[17];

		assert_int_equal(img_export(data, "t", out), 0);
		magic_of(out, strlen(ok[i].magic) / 2, hex);
		assert_string_equal(hex, ok[i].magic);
		assert_int_equal(img_bundle_name(out),
				 strcmp(ok[i].name, "f.bundle") != 0);
		free(out);
	}
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		char *out = xasprintf("%s/%s", root, refused[i]);

		assert_int_equal(img_export(data, "nosuch", out), -1);
		assert_true(error_last_usage());
		assert_non_null(strstr(error_last(), "written as .tar.zst "
				       "(.tzst), .tar.gz (.tgz), .tar.xz "
				       "(.txz) or .tar"));
		assert_int_equal(access(out, F_OK), -1);
		free(out);
	}
	free(stderr_end());
	remove_tree(root);
	free(root);
	free(data);
	free(src);
}

/* Kernel arguments with a control character, or longer than the kernel
 * takes, are refused in a manifest however it came (the one nook writes
 * for a lone disk too), saying which. */
static void test_boot_cmdline(void **state)
{
	static const struct {
		const char *cmdline;
		int ok;
		const char *why;
	} c[] = {
		{ "root=/dev/vda1 console=ttyS0 quiet", 1, NULL },
		{ "console=ttyS0\\nroot=/dev/vda", 0, "(\\x0a) at byte 13" },
		{ "root=/dev/vda\\u001b[2J", 0, "(\\x1b) at byte 13" },
		{ "a\\tb", 0, "(\\x09) at byte 1" },
		{ "x\\u007f", 0, "(\\x7f)" },
		{ "r\\u00e9sum\\u00e9=1", 1, NULL },
	};
	char *root = make_tmpdir(), *data = xasprintf("%s/data", root);
	char *disk = xasprintf("%s/disk.qcow2", root), *kernel, *err;
	char *big = xmalloc(IMG_CMDLINE_MAX + 1), *dir = NULL;
	struct buf why = BUF_INIT;
	struct img_boot b;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		char *m = xasprintf("{\"files\": {\"disk.raw\": {\"format\": "
				    "\"raw\"}}, \"cmdline\": \"%s\"}",
				    c[i].cmdline);

		free(write_in(root, "manifest.json", m));
		free(m);
		stderr_begin();
		assert_int_equal(img_boot_read(root, &b), c[i].ok ? 0 : -1);
		err = stderr_end();
		if (c[i].ok) {
			assert_non_null(b.cmdline);
			assert_true(img_cmdline_valid(b.cmdline, &why));
			img_boot_free(&b);
		} else {
			assert_non_null(strstr(err, "the kernel command line "
					       "has a control character"));
			assert_non_null(strstr(err, c[i].why));
		}
		free(err);
	}
	/* 2047 bytes and the NUL fit; one more does not */
	memset(big, 'a', IMG_CMDLINE_MAX);
	big[IMG_CMDLINE_MAX - 1] = '\0';
	assert_true(img_cmdline_valid(big, &why));
	big[IMG_CMDLINE_MAX - 1] = 'a';
	big[IMG_CMDLINE_MAX] = '\0';
	assert_false(img_cmdline_valid(big, &why));
	assert_non_null(strstr(why.p, "is 2048 bytes long: a kernel takes at "
			       "most 2047"));
	/* the manifest nook writes for a lone disk is held to it too */
	make_qcow2(disk, NULL);
	kernel = write_in(root, "vmlinuz", "kernel");
	stderr_begin();
	assert_int_equal(img_import_disk(data, disk, kernel, NULL, big, "t",
					 NULL), -1);
	assert_int_equal(img_import_disk(data, disk, kernel, NULL,
					 "console=ttyS0\nroot=/dev/vda", "t",
					 NULL), -1);
	err = stderr_end();
	assert_non_null(strstr(err, "is 2048 bytes long"));
	assert_non_null(strstr(err, "has a control character"));
	free(err);
	assert_int_equal(img_resolve(data, "t", &dir), 0);
	assert_null(dir);
	assert_int_equal(img_import_disk(data, disk, kernel, NULL,
					 "root=/dev/vda1", "t", NULL), 0);
	buf_free(&why);
	remove_tree(root);
	free(root);
	free(data);
	free(disk);
	free(kernel);
	free(big);
}

static void test_bad_checksum_imports_nothing(void **state)
{
	char *root = make_tmpdir(), *data = xasprintf("%s/data", root);
	char *src = make_image_dir(root,
		"0000000000000000000000000000000000000000000000000000000000000000");
	char *err, *dir = NULL;

	(void)state;
	stderr_begin();
	assert_int_equal(img_import_dir(data, src, "t", NULL), -1);
	err = stderr_end();
	assert_non_null(strstr(err, "checksum mismatch"));
	assert_int_equal(img_resolve(data, "t", &dir), 0);
	assert_null(dir);
	/* nothing half-imported: only the (empty) store directory */
	{
		char *images = xasprintf("%s/images", data);

		assert_int_equal(count_entries(images), 0);
		free(images);
	}
	free(err);
	remove_tree(root);
	free(root);
	free(data);
	free(src);
}

/* A sparse raw disk in src: 3 MiB, "data" at 1 MiB, holes around it. */
static char *sparse_disk(const char *src)
{
	char *disk = xasprintf("%s/disk.raw", src);
	int fd;

	assert_int_equal(mkdir_p(src, 0755), 0);
	fd = open(disk, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "data", 4, 1 << 20), 4);
	assert_int_equal(ftruncate(fd, 3 << 20), 0);
	assert_int_equal(close(fd), 0);
	return disk;
}

/* tar --sparse of src's manifest.json and disk.raw into tar. */
static void sparse_tar(const char *src, const char *tar)
{
	const char *argv[] = { "tar", "--sparse", "-cf", tar, "-C", src,
			       "manifest.json", "disk.raw", NULL };
	struct buf out = BUF_INIT;

	assert_int_equal(run_capture(argv, &out), 0);
	buf_free(&out);
}

/* A bundle whose disk is sparse (GNU tar --sparse), with a hole inside and
 * one at the end: the holes are hashed as the zeros they read as, stay
 * holes, and the file keeps its size. img_verify() then reads the image
 * again, and finds a byte changed in it. A sparse member needs its size
 * in the manifest (its holes cost nothing to store, hours to hash). */
static void test_sparse_bundle(void **state)
{
	char *root = make_tmpdir(), *data = xasprintf("%s/data", root);
	char *src = xasprintf("%s/src", root);
	char *tar = xasprintf("%s/b.tar", root);
	char *disk = sparse_disk(src), *m, *err, *dir = NULL;
	struct stat st;
	char sum[65];
	json_t *mj;
	int fd;

	(void)state;
	assert_int_equal(sha256_file(disk, sum), 0);
	m = xasprintf("{\"name\": \"s\", \"arch\": \"x86_64\", \"boot\": "
		      "[\"disk\"], \"files\": {\"disk.raw\": {\"format\": "
		      "\"raw\", \"sha256\": \"%s\"}}}\n", sum);
	free(write_in(src, "manifest.json", m));
	sparse_tar(src, tar);
	stderr_begin();
	assert_int_equal(img_import_bundle(data, tar, "s", NULL), -1);
	err = stderr_end();
	assert_non_null(strstr(err, "disk.raw is sparse and manifest.json "
				    "gives no \"size\""));
	free(err);
	free(m);
	m = xasprintf("{\"name\": \"s\", \"arch\": \"x86_64\", \"boot\": "
		      "[\"disk\"], \"files\": {\"disk.raw\": {\"format\": "
		      "\"raw\", \"sha256\": \"%s\", \"size\": %d}}}\n", sum,
		      3 << 20);
	free(write_in(src, "manifest.json", m));
	unlink(tar);
	sparse_tar(src, tar);
	stderr_begin();
	assert_int_equal(img_import_bundle(data, tar, "s", NULL), 0);
	free(stderr_end());
	assert_int_equal(img_resolve(data, "s", &dir), 0);
	assert_non_null(dir);
	free(disk);
	disk = xasprintf("%s/disk.raw", dir);
	assert_int_equal(stat(disk, &st), 0);
	assert_int_equal(st.st_size, 3 << 20);
	assert_true(st.st_blocks * 512 < 1 << 20); /* the holes stayed */

	mj = json_loads(m, 0, NULL);
	assert_int_equal(img_verify(dir, mj), 0);
	fd = open(disk, O_WRONLY | O_CLOEXEC);
	assert_int_equal(pwrite(fd, "DATA", 4, 1 << 20), 4);
	assert_int_equal(close(fd), 0);
	stderr_begin();
	assert_int_equal(img_verify(dir, mj), -1);
	err = stderr_end();
	assert_non_null(strstr(err, "checksum mismatch"));
	free(err);
	json_decref(mj);
	remove_tree(root);
	free(root);
	free(data);
	free(src);
	free(tar);
	free(disk);
	free(m);
	free(dir);
}

enum kind { REG, SYMLINK, HARDLINK, CHARDEV, DIRECTORY };

/* Write a tar with one bad entry, with Python's tarfile: an independent
 * writer that makes any entry we ask for. */
static char *bad_bundle(const char *root, const char *name, enum kind k,
			const char *entry)
{
	static const char script[] =
		"import io, sys, tarfile\n"
		"path, kind, name = sys.argv[1], sys.argv[2], sys.argv[3]\n"
		"t = tarfile.open(path, 'w')\n"
		"i = tarfile.TarInfo(name)\n"
		"data = None\n"
		"if kind == 'reg': i.size = 2; data = io.BytesIO(b'x\\n')\n"
		"elif kind == 'sym': i.type = tarfile.SYMTYPE; i.linkname = '/etc/passwd'\n"
		"elif kind == 'hard': i.type = tarfile.LNKTYPE; i.linkname = '/etc/passwd'\n"
		"elif kind == 'chr': i.type = tarfile.CHRTYPE; i.devmajor = 1; i.devminor = 3\n"
		"elif kind == 'dir': i.type = tarfile.DIRTYPE\n"
		"t.addfile(i, data)\n"
		"t.close()\n";
	static const char *const kinds[] = { "reg", "sym", "hard", "chr", "dir" };
	char *path = xasprintf("%s/%s.tar", root, name);
	const char *argv[] = { "python3", "-c", script, path, kinds[k], entry,
			       NULL };
	struct buf out = BUF_INIT;

	assert_int_equal(run_capture(argv, &out), 0);
	buf_free(&out);
	return path;
}

static void test_malicious_bundles(void **state)
{
	static const struct {
		const char *name;
		enum kind k;
		const char *entry;
		const char *why;
	} cases[] = {
		{ "traversal", REG, "../escape", "not a plain name" },
		{ "deep", REG, "a/../../escape", "not a plain name" },
		{ "absolute", REG, "/etc/cron.d/x", "not a plain name" },
		{ "subdir", REG, "sub/file", "not a plain name" },
		{ "symlink", SYMLINK, "disk.qcow2", "not a regular file" },
		{ "hardlink", HARDLINK, "disk.qcow2", "not a regular file" },
		{ "device", CHARDEV, "null", "not a regular file" },
		{ "dir", DIRECTORY, "etc", "not a regular file" },
		{ "nomanifest", REG, "disk.qcow2", "no manifest.json" },
	};
	char *root = make_tmpdir(), *data = xasprintf("%s/data", root);
	char *parent = xasprintf("%s/escape", data);

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *b = bad_bundle(root, cases[i].name, cases[i].k,
				     cases[i].entry);
		char *err, *dir = NULL, *images = xasprintf("%s/images", data);

		stderr_begin();
		assert_int_equal(img_import_bundle(data, b, "evil", NULL), -1);
		err = stderr_end();
		if (!strstr(err, cases[i].why))
			fail_msg("%s: wanted \"%s\" in: %s", cases[i].name,
				 cases[i].why, err);
		assert_int_equal(img_resolve(data, "evil", &dir), 0);
		assert_null(dir);
		assert_int_equal(count_entries(images), 0);
		assert_int_equal(access(parent, F_OK), -1);
		free(err);
		free(b);
		free(images);
	}
	remove_tree(root);
	free(root);
	free(data);
	free(parent);
}

/* A qcow2 header by hand: version, backing file offset, incompatible
 * feature bits. */
static void qcow2_header(unsigned char *h, size_t n, uint32_t version,
			 uint64_t backing, uint64_t incompat)
{
	memset(h, 0, n);
	memcpy(h, "QFI\xfb", 4);
	h[7] = (unsigned char)version;
	for (int i = 0; i < 8; i++) {
		h[8 + i] = (unsigned char)(backing >> (56 - 8 * i));
		h[72 + i] = (unsigned char)(incompat >> (56 - 8 * i));
	}
	h[103] = 104; /* header_length */
}

/* img_disk_sniff() on head (n bytes of a file of size bytes): the
 * message it gives, or NULL when it takes the disk. */
static char *sniff(const char *fmt, const void *head, size_t n, uint64_t size)
{
	char *err;
	int rc;

	stderr_begin();
	rc = img_disk_sniff("d", fmt, head, n, size);
	err = stderr_end();
	if (rc == 0) {
		assert_string_equal(err, "");
		free(err);
		return NULL;
	}
	assert_int_equal(rc, -1);
	return err;
}

/* err (from sniff(), freed here) must say why. */
static void refused(char *err, const char *why)
{
	if (!err || !strstr(err, why))
		fail_msg("wanted \"%s\" in: %s", why, err ? err : "(taken)");
	free(err);
}

static void test_disk_sniff(void **state)
{
	static const char html[] = "\n  <!DOCTYPE html><html><body>Not "
				   "Found</body></html>\n";
	static const char vmdk[] = "# Disk DescriptorFile\nversion=1\n"
				   "RW 8 FLAT \"/etc/shadow\" 0\n";
	unsigned char h[4096];

	(void)state;
	qcow2_header(h, sizeof(h), 3, 0, 0);
	assert_null(sniff("qcow2", h, sizeof(h), 1 << 20));
	qcow2_header(h, sizeof(h), 2, 0, 0);
	assert_null(sniff("qcow2", h, 72, 200000));
	qcow2_header(h, sizeof(h), 3, 0x10000, 0);
	refused(sniff("qcow2", h, sizeof(h), 1 << 20), "backing file");
	qcow2_header(h, sizeof(h), 3, 0, 4);
	refused(sniff("qcow2", h, sizeof(h), 1 << 20), "external data file");
	qcow2_header(h, sizeof(h), 1, 0, 0);
	refused(sniff("qcow2", h, sizeof(h), 1 << 20), "not a qcow2");
	refused(sniff("qcow2", "QFI\xfb", 4, 4), "not a qcow2");
	/* a raw disk that holds another format's header is that format to
	 * QEMU's probe, so it is refused as raw */
	qcow2_header(h, sizeof(h), 3, 0x10000, 0);
	refused(sniff("raw", h, sizeof(h), 1 << 20), "a qcow2 image");
	memset(h, 0, sizeof(h));
	memcpy(h, "KDMV", 4);
	refused(sniff("raw", h, sizeof(h), 1 << 20), "a vmdk image");
	refused(sniff("raw", vmdk, strlen(vmdk), 1 << 20), "begins with text");
	refused(sniff("raw", html, strlen(html), 1 << 20), "an HTML or XML page");
	memset(h, 0, sizeof(h));
	refused(sniff("raw", h, sizeof(h), 4096), "too small for a disk");
	assert_null(sniff("raw", h, sizeof(h), 1 << 20));
	h[510] = 0x55; /* an MBR: binary, and zeros in it */
	h[511] = 0xaa;
	assert_null(sniff("raw", h, sizeof(h), 64 << 20));
	refused(sniff("vmdk", h, sizeof(h), 1 << 20), "qcow2 or raw");
}

/* A fresh data directory under root for one import (the caller frees). */
static char *fresh_data(const char *root)
{
	static int n;

	return xasprintf("%s/data%d", root, n++);
}

/* Import src (an image directory, or a bundle made of it with tar when
 * bundle is set) into a fresh store: it must be refused saying why, and
 * leave nothing in the store. */
static void refused_import(const char *root, const char *src, int bundle,
			   const char *why)
{
	char *data = fresh_data(root), *tar = xasprintf("%s/b.tar", root);
	char *images = xasprintf("%s/images", data), *err, *dir = NULL;
	const char *argv[] = { "tar", "-cf", tar, "-C", src, "manifest.json",
			       "disk.qcow2", NULL };
	struct buf out = BUF_INIT;
	int rc;

	unlink(tar);
	if (bundle)
		assert_int_equal(run_capture(argv, &out), 0);
	stderr_begin();
	rc = bundle ? img_import_bundle(data, tar, "evil", NULL)
		    : img_import_dir(data, src, "evil", NULL);
	err = stderr_end();
	assert_int_equal(rc, -1);
	if (!strstr(err, why))
		fail_msg("wanted \"%s\" in: %s", why, err);
	assert_int_equal(img_resolve(data, "evil", &dir), 0);
	assert_null(dir);
	assert_int_equal(count_entries(images), 0);
	buf_free(&out);
	free(err);
	free(data);
	free(tar);
	free(images);
}

/* src/disk.qcow2 made by qemu-img with extra arguments, and a manifest
 * that declares it fmt. */
static void hostile_disk(const char *src, const char *const *extra,
			 const char *fmt)
{
	char *disk = xasprintf("%s/disk.qcow2", src), *m;

	remove_tree(src);
	assert_int_equal(mkdir_p(src, 0755), 0);
	make_qcow2(disk, extra);
	m = manifest_for(disk, "disk.qcow2", fmt, NULL);
	free(write_in(src, "manifest.json", m));
	free(m);
	free(disk);
}

/* No imported image may make QEMU open a file outside the store: a qcow2
 * with a backing file (plain or json:), with an external data file, or
 * such a qcow2 declared "raw" (qemu-img's probe would find the qcow2),
 * in an image directory or a bundle, as a lone disk already is. */
static void test_disks_that_open_other_files(void **state)
{
	char *root = make_tmpdir(), *src = xasprintf("%s/src", root);
	char *secret = xasprintf("%s/secret", root);
	char *datafile = xasprintf("%s/data-file", root);
	char *dfopt = xasprintf("data_file=%s,data_file_raw=on", datafile);
	char *jsonb = xasprintf("json:{\"driver\": \"raw\", \"file\": "
				"{\"driver\": \"file\", \"filename\": \"%s\"}}",
				secret);
	const char *backing[] = { "-b", secret, "-F", "raw", NULL };
	const char *json[] = { "-u", "-b", jsonb, "-F", "raw", NULL };
	const char *data[] = { "-o", dfopt, NULL };

	(void)state;
	free(write_in(root, "secret", "host secret\n"));
	assert_int_equal(truncate(secret, 1 << 20), 0);
	for (int bundle = 0; bundle < 2; bundle++) {
		hostile_disk(src, backing, "qcow2");
		refused_import(root, src, bundle, "backing file");
		hostile_disk(src, json, "qcow2");
		refused_import(root, src, bundle, "backing file");
		hostile_disk(src, data, "qcow2");
		refused_import(root, src, bundle, "external data file");
		unlink(datafile);
		hostile_disk(src, backing, "raw");
		refused_import(root, src, bundle, "a qcow2 image, not a raw");
		hostile_disk(src, NULL, "vmdk");
		refused_import(root, src, bundle, "\"qcow2\" or \"raw\"");
	}
	remove_tree(root);
	free(root);
	free(src);
	free(secret);
	free(datafile);
	free(dfopt);
	free(jsonb);
}

/* A tar at root/NAME.tar of src's FILES in that order, by Python's
 * tarfile (GNU tar would make a repeated file a hard link); the caller
 * frees the path. */
static char *tar_of(const char *root, const char *name, const char *src,
		    const char *const *files)
{
	static const char script[] =
		"import os, sys, tarfile\n"
		"t = tarfile.open(sys.argv[1], 'w')\n"
		"for f in sys.argv[3:]:\n"
		"    t.add(os.path.join(sys.argv[2], f), arcname=f)\n"
		"t.close()\n";
	const char *argv[16] = { "python3", "-c", script, NULL, src };
	char *tar = xasprintf("%s/%s.tar", root, name);
	struct buf out = BUF_INIT;
	size_t n = 5;

	argv[3] = tar;
	for (; *files; files++)
		argv[n++] = *files;
	argv[n] = NULL;
	if (run_capture(argv, &out) != 0)
		fail_msg("tarfile: %s", out.p);
	buf_free(&out);
	return tar;
}

/* A bundle of src's files (in that order) is refused saying why; 0 when
 * why is NULL and it is imported. */
static void bundle_of(const char *root, const char *src,
		      const char *const *files, const char *why)
{
	char *tar = tar_of(root, "b", src, files), *data = fresh_data(root);
	char *err;
	int rc;

	stderr_begin();
	rc = img_import_bundle(data, tar, "b", NULL);
	err = stderr_end();
	if (why ? rc != -1 || !strstr(err, why) : rc != 0)
		fail_msg("wanted %s%s, got %d: %s", why ? "-1 saying " : "0",
			 why ? why : "", rc, err);
	unlink(tar);
	free(err);
	free(tar);
	free(data);
}

/* Each bundle member is held to the manifest before a byte of it is
 * read: the manifest first, then only the files it lists, once each. */
static void test_bundle_members_listed(void **state)
{
	static const char *const order[] = { "disk.qcow2", "manifest.json", NULL };
	static const char *const extra[] = { "manifest.json", "disk.qcow2",
					     "extra", NULL };
	static const char *const twice[] = { "manifest.json", "disk.qcow2",
					     "disk.qcow2", NULL };
	char *root = make_tmpdir(), *src = make_image_dir(root, NULL);

	(void)state;
	free(write_in(src, "extra", "x"));
	bundle_of(root, src, order, "no manifest.json before 'disk.qcow2'");
	bundle_of(root, src, extra, "'extra' is not a file manifest.json lists");
	bundle_of(root, src, twice, "'disk.qcow2' comes twice");
	remove_tree(root);
	free(root);
	free(src);
}

/* ... and of the size it gives; a huge manifest is not read at all. */
static void test_bundle_member_sizes(void **state)
{
	static const char *const plain[] = { "manifest.json", "disk.qcow2", NULL };
	char *root = make_tmpdir(), *src = make_image_dir(root, NULL);
	char *disk = xasprintf("%s/disk.qcow2", src);
	char *m = manifest_for(disk, "disk.qcow2", "qcow2", NULL), *with;
	struct stat st;

	(void)state;
	assert_int_equal(stat(disk, &st), 0);
	m[strlen(m) - 4] = '\0'; /* cut the closing "}}}\n" */
	with = xasprintf("%s, \"size\": %lld}}}\n", m, (long long)st.st_size + 1);
	free(write_in(src, "manifest.json", with));
	bundle_of(root, src, plain, "the manifest says");
	free(with);
	with = xasprintf("%s, \"size\": %lld}}}\n", m, (long long)st.st_size);
	free(write_in(src, "manifest.json", with));
	bundle_of(root, src, plain, NULL);
	free(with);
	with = xasprintf("%s/manifest.json", src);
	assert_int_equal(truncate(with, 2 << 20), 0);
	bundle_of(root, src, plain, "manifest.json is larger than 1024 KiB");
	remove_tree(root);
	free(root);
	free(src);
	free(disk);
	free(m);
	free(with);
}

/* A manifest nook cannot read (not JSON, or JSON of another shape) is
 * refused as the bundle's member, never as the staging file it was
 * written to, saying what is wrong and what to do. */
static void test_bundle_manifest_unreadable(void **state)
{
	static const char *const plain[] = { "manifest.json", "disk.qcow2",
					     NULL };
	static const struct {
		const char *json, *why;
	} c[] = {
		{ "{\"files\": {", "b.tar: manifest.json: not JSON: " },
		{ "", "b.tar: manifest.json: not JSON: " },
		{ "7", "b.tar: manifest.json: is a number, not an object" },
		{ "{\"name\": \"x\"}",
		  "b.tar: manifest.json: has no \"files\"" },
		{ "{\"files\": null}", "b.tar: manifest.json: its \"files\" is "
					"null, not an object" },
		{ "{\"files\": {\"disk.qcow2\": []}}", "b.tar: manifest.json: "
			"file 'disk.qcow2' is an array, not an object" },
	};
	char *root = make_tmpdir(), *src = make_image_dir(root, NULL);

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		free(write_in(src, "manifest.json", c[i].json));
		bundle_of(root, src, plain, c[i].why);
		bundle_of(root, src, plain, "export the image again, or fix "
			  "manifest.json");
	}
	remove_tree(root);
	free(root);
	free(src);
}

/* img_import_disk() of path into data is refused saying why. */
static void disk_refused(const char *data, const char *path, const char *why)
{
	char *err;

	stderr_begin();
	assert_int_equal(img_import_disk(data, path, NULL, NULL, NULL, "d",
					 NULL), -1);
	err = stderr_end();
	if (!strstr(err, why))
		fail_msg("%s: wanted \"%s\" in: %s", path, why, err);
	free(err);
}

/* What is no disk is not imported as one: /dev/zero (read for ever), a
 * FIFO in an image directory, a pulled HTML page, a few bytes. */
static void test_not_a_disk(void **state)
{
	char *root = make_tmpdir(), *src = make_image_dir(root, NULL);
	char *disk = xasprintf("%s/disk.qcow2", src), *page, *tiny;
	char *data = fresh_data(root);

	(void)state;
	disk_refused(data, "/dev/zero", "/dev/zero: not a regular file");
	assert_int_equal(unlink(disk), 0);
	assert_int_equal(mkfifo(disk, 0644), 0);
	refused_import(root, src, 0, "not a regular file");
	page = write_in(root, "page.qcow2", "<!doctype html>\n<title>404</title>\n");
	disk_refused(data, page, "an HTML or XML page");
	/* the text is what tells, however large the page */
	assert_int_equal(truncate(page, 2 << 20), 0);
	disk_refused(data, page, "an HTML or XML page");
	tiny = write_in(root, "tiny.raw", "");
	assert_int_equal(truncate(tiny, 4096), 0);
	disk_refused(data, tiny, "too small for a disk");
	remove_tree(root);
	free(root);
	free(src);
	free(disk);
	free(page);
	free(tiny);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_vectors),
		cmocka_unit_test(test_sha512_vectors),
		cmocka_unit_test(test_sha_files_and_copy),
		cmocka_unit_test(test_sha_copy_sparse),
		cmocka_unit_test(test_export_names),
		cmocka_unit_test(test_boot_cmdline),
		cmocka_unit_test(test_sha_read_error),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_store_named),
		cmocka_unit_test(test_store_import_list_remove),
		cmocka_unit_test(test_bad_checksum_imports_nothing),
		cmocka_unit_test(test_sparse_bundle),
		cmocka_unit_test(test_malicious_bundles),
		cmocka_unit_test(test_disk_sniff),
		cmocka_unit_test(test_disks_that_open_other_files),
		cmocka_unit_test(test_bundle_members_listed),
		cmocka_unit_test(test_bundle_member_sizes),
		cmocka_unit_test(test_bundle_manifest_unreadable),
		cmocka_unit_test(test_not_a_disk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

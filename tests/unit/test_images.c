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

/* An image directory: a fake "disk" and a manifest with its checksum. */
static char *make_image_dir(const char *root, const char *disk_bytes,
			    const char *claimed_sum)
{
	char *dir = xasprintf("%s/src", root);
	char sum[65];
	char *disk, *manifest;

	assert_int_equal(mkdir_p(dir, 0755), 0);
	disk = write_in(dir, "disk.qcow2", disk_bytes);
	assert_int_equal(sha256_file(disk, sum), 0);
	manifest = xasprintf("{\"name\": \"t\", \"arch\": \"x86_64\", "
			     "\"boot\": [\"disk\"], \"files\": {\"disk.qcow2\": "
			     "{\"format\": \"qcow2\", \"sha256\": \"%s\"}}}\n",
			     claimed_sum ? claimed_sum : sum);
	free(write_in(dir, "manifest.json", manifest));
	free(manifest);
	free(disk);
	return dir;
}

static void test_store_import_list_remove(void **state)
{
	char *root = make_tmpdir(), *data = xasprintf("%s/data", root);
	char *src = make_image_dir(root, "pretend disk\n", NULL), *dir = NULL;
	char *out = xasprintf("%s/t.tar.zst", root);
	json_t *all;

	(void)state;
	stderr_begin();
	assert_int_equal(img_resolve(data, "t", &dir), 0);
	assert_null(dir);
	assert_int_equal(img_import_dir(data, src, "t"), 0);
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
	assert_int_equal(img_import_dir(data, src, "t2"), 0);
	assert_int_equal(img_remove(data, "t"), 0);
	assert_int_equal(access(dir, F_OK), 0);
	/* export and import back under a new name */
	assert_int_equal(img_export(data, "t2", out), 0);
	assert_int_equal(img_import_bundle(data, out, "t3"), 0);
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

static void test_bad_checksum_imports_nothing(void **state)
{
	char *root = make_tmpdir(), *data = xasprintf("%s/data", root);
	char *src = make_image_dir(root, "pretend disk\n",
		"0000000000000000000000000000000000000000000000000000000000000000");
	char *err, *dir = NULL;

	(void)state;
	stderr_begin();
	assert_int_equal(img_import_dir(data, src, "t"), -1);
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

/* A bundle whose disk is sparse (GNU tar --sparse), with a hole inside and
 * one at the end: the holes are hashed as the zeros they read as, stay
 * holes, and the file keeps its size. img_verify() then reads the image
 * again, and finds a byte changed in it. */
static void test_sparse_bundle(void **state)
{
	char *root = make_tmpdir(), *data = xasprintf("%s/data", root);
	char *src = xasprintf("%s/src", root);
	char *tar = xasprintf("%s/b.tar", root);
	char *disk = xasprintf("%s/disk.qcow2", src), *m, *err, *dir = NULL;
	const char *argv[] = { "tar", "--sparse", "-cf", tar, "-C", src,
			       "manifest.json", "disk.qcow2", NULL };
	struct buf out = BUF_INIT;
	struct stat st;
	char sum[65];
	json_t *mj;
	int fd;

	(void)state;
	assert_int_equal(mkdir_p(src, 0755), 0);
	fd = open(disk, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "data", 4, 1 << 20), 4);
	assert_int_equal(ftruncate(fd, 3 << 20), 0);
	assert_int_equal(close(fd), 0);
	assert_int_equal(sha256_file(disk, sum), 0);
	m = xasprintf("{\"name\": \"s\", \"arch\": \"x86_64\", \"boot\": "
		      "[\"disk\"], \"files\": {\"disk.qcow2\": {\"format\": "
		      "\"qcow2\", \"sha256\": \"%s\"}}}\n", sum);
	free(write_in(src, "manifest.json", m));
	assert_int_equal(run_capture(argv, &out), 0);
	stderr_begin();
	assert_int_equal(img_import_bundle(data, tar, "s"), 0);
	free(stderr_end());
	assert_int_equal(img_resolve(data, "s", &dir), 0);
	assert_non_null(dir);
	free(disk);
	disk = xasprintf("%s/disk.qcow2", dir);
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
	buf_free(&out);
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
		assert_int_equal(img_import_bundle(data, b, "evil"), -1);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_vectors),
		cmocka_unit_test(test_sha512_vectors),
		cmocka_unit_test(test_sha_files_and_copy),
		cmocka_unit_test(test_sha_read_error),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_store_import_list_remove),
		cmocka_unit_test(test_bad_checksum_imports_nothing),
		cmocka_unit_test(test_sparse_bundle),
		cmocka_unit_test(test_malicious_bundles),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

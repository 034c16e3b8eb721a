/* Unit tests for cidata/: checks, meta-data, and the ISO round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <zlib.h>

#include "cidata.h"
#include "testutil.h"

/* Run cidata_check_user_data on a string; returns its result and sets
 * *err to what it printed (the caller frees). */
static int check_ud(const char *text, size_t len, const char **form,
		    char **err)
{
	int rc;

	stderr_begin();
	rc = cidata_check_user_data("ud", text, len, form);
	*err = stderr_end();
	return rc;
}

static void test_accepted_forms(void **state)
{
	static const struct {
		const char *text;
		const char *form;
	} ok[] = {
		{ "#cloud-config\npackages: [htop]\n", "cloud-config" },
		{ "#cloud-config\n", "cloud-config" },
		{ "  #Cloud-Config\nruncmd: [[touch, /x]]\n", "cloud-config" },
		{ "#!/bin/sh\necho hi\n", "script" },
		{ "#include\nhttp://example.invalid/a\n", "include list" },
		{ "#include-once\nhttp://example.invalid/a\n", "include list" },
		{ "#cloud-boothook\n#!/bin/sh\necho early\n", "boothook" },
		{ "## template: jinja\n#cloud-config\nhostname: {{ v1.x }}\n",
		  "jinja template" },
		{ "## template:jinja\n#!/bin/sh\necho {{ v1.x }}\n",
		  "jinja template" },
		{ "Content-Type: multipart/mixed; boundary=\"b\"\n"
		  "MIME-Version: 1.0\n\n--b\n", "MIME multipart" },
		{ "MIME-Version: 1.0\nContent-Type: multipart/mixed\n",
		  "MIME multipart" },
		{ "", "empty" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		const char *form = NULL;
		char *err;

		assert_int_equal(check_ud(ok[i].text, strlen(ok[i].text),
					  &form, &err), 0);
		assert_string_equal(err, "");
		assert_string_equal(form, ok[i].form);
		free(err);
	}
}

static void test_unknown_first_line(void **state)
{
	char *err;

	(void)state;
	assert_int_equal(check_ud("hello world\n#cloud-config\n", 26, NULL,
				  &err), -1);
	assert_non_null(strstr(err, "ud:1: unrecognised user-data "
				    "\"hello world\""));
	/* the message lists what is accepted */
	assert_non_null(strstr(err, "#cloud-config"));
	assert_non_null(strstr(err, "#!"));
	assert_non_null(strstr(err, "#include"));
	assert_non_null(strstr(err, "#cloud-boothook"));
	assert_non_null(strstr(err, "## template: jinja"));
	assert_non_null(strstr(err, "multipart"));
	assert_non_null(strstr(err, "gzip"));
	free(err);
}

static void test_yaml_error_position(void **state)
{
	/* line 3, column 4: the unclosed flow sequence meets a new key */
	const char *bad = "#cloud-config\npackages: [htop\nfoo: bar\n";
	const char *tab = "#cloud-config\nusers:\n\t- name: x\n";
	char *err;

	(void)state;
	assert_int_equal(check_ud(bad, strlen(bad), NULL, &err), -1);
	assert_true(!strncmp(err, "nook: ud:3:4: ", 14));
	free(err);
	assert_int_equal(check_ud(tab, strlen(tab), NULL, &err), -1);
	assert_true(!strncmp(err, "nook: ud:3:1: ", 14));
	free(err);
}

/* Nesting is bounded before the parser builds it: 100,000 levels took
 * libyaml 25 s (quadratic), and cloud-init's PyYAML fails near 5,000. */
static void test_deep_yaml(void **state)
{
	struct buf deep = BUF_INIT, ok = BUF_INIT, block = BUF_INIT;
	long long t0;
	char *err;

	(void)state;
	buf_adds(&deep, "#cloud-config\na: ");
	for (int i = 0; i < 100000; i++)
		buf_adds(&deep, "[");
	buf_adds(&deep, "\n");
	t0 = mono_ms();
	assert_int_equal(check_ud(deep.p, deep.len, NULL, &err), -1);
	assert_true(mono_ms() - t0 < 2000);
	assert_non_null(strstr(err, "ud:2:1003: nested more than 1000 levels"));
	free(err);
	/* 999 lists in the top mapping: 1,000 levels, taken */
	buf_adds(&ok, "#cloud-config\na: ");
	for (int i = 0; i < 999; i++)
		buf_adds(&ok, "[");
	for (int i = 0; i < 999; i++)
		buf_adds(&ok, "]");
	buf_adds(&ok, "\n");
	assert_int_equal(check_ud(ok.p, ok.len, NULL, &err), 0);
	free(err);
	/* block nesting counts the same */
	buf_adds(&block, "#cloud-config\n");
	for (int i = 0; i < 1200; i++)
		buf_addf(&block, "%*sk%d:\n", 2 * i, "", i);
	stderr_begin();
	assert_int_equal(cidata_check_yaml("nc", block.p, block.len), -1);
	err = stderr_end();
	assert_non_null(strstr(err, "nested more than 1000 levels"));
	free(err);
	buf_free(&deep);
	buf_free(&ok);
	buf_free(&block);
}

/* A seed file larger than 16 MiB is refused, whatever its form. */
static void test_size_bound(void **state)
{
	size_t n = (16u << 20) + 1;
	char *big = malloc(n), *err;

	(void)state;
	assert_non_null(big);
	memset(big, ' ', n);
	memcpy(big, "#!/bin/sh\n", 10);
	assert_int_equal(check_ud(big, n, NULL, &err), -1);
	assert_non_null(strstr(err, "more than the 16 MiB"));
	free(err);
	assert_int_equal(check_ud(big, n - 1, NULL, &err), 0);
	free(err);
	free(big);
}

/* Bytes the reader refuses are placed where they are, not at 1:1; what
 * is echoed of a refused file is printable, its escapes escaped. */
static void test_bad_bytes(void **state)
{
	static const char nul[] = "#cloud-config\na: 1\nb: \"x\0y\"\n";
	static const char esc[] = "\x1b]0;pwned\x07\x1b[31mred \"q\" \xc3\xa9\n";
	const char *ctl = "#cloud-config\nkey: \x01\n";
	char *err;

	(void)state;
	assert_int_equal(check_ud(nul, sizeof(nul) - 1, NULL, &err), -1);
	assert_non_null(strstr(err, "ud:3:6: control characters are not "
				    "allowed (byte 0x00)"));
	free(err);
	assert_int_equal(check_ud(ctl, strlen(ctl), NULL, &err), -1);
	assert_non_null(strstr(err, "ud:2:6: "));
	free(err);
	assert_int_equal(check_ud(esc, strlen(esc), NULL, &err), -1);
	assert_non_null(strstr(err, "\"\\x1b]0;pwned\\x07\\x1b[31mred \\\"q\\\" "
				    "\\xc3\\xa9\""));
	for (const char *p = err; *p; p++)
		assert_true(*p == '\n' || (*p >= 0x20 && *p < 0x7f));
	free(err);
}

static void test_yaml_must_be_mapping(void **state)
{
	const char *list = "#cloud-config\n- a\n- b\n";
	const char *scalar = "#cloud-config\njust words\n";
	char *err;

	(void)state;
	assert_int_equal(check_ud(list, strlen(list), NULL, &err), -1);
	assert_non_null(strstr(err, "ud:2:1: the top level must be a mapping"));
	assert_non_null(strstr(err, "a list"));
	free(err);
	assert_int_equal(check_ud(scalar, strlen(scalar), NULL, &err), -1);
	assert_non_null(strstr(err, "ud:2:1:"));
	free(err);
	/* network-config and meta-data go through the same check */
	stderr_begin();
	assert_int_equal(cidata_check_yaml("nc", "version: 2\nethernets: {}\n",
					   25), 0);
	assert_int_equal(cidata_check_yaml("md", "{\"instance-id\": \"x\"}\n",
					   21), 0);
	assert_int_equal(cidata_check_yaml("nc", "a: [\n", 5), -1);
	err = stderr_end();
	assert_true(!strncmp(err, "nook: nc:2:1: ", 14));
	free(err);
}

static void test_jinja_needs_a_form(void **state)
{
	const char *bad = "## template: jinja\nhello\n";
	const char *alone = "## template: jinja";
	const char *other = "## template: mako\n#cloud-config\n";
	char *err;

	(void)state;
	assert_int_equal(check_ud(bad, strlen(bad), NULL, &err), -1);
	assert_non_null(strstr(err, "ud:2:"));
	free(err);
	assert_int_equal(check_ud(alone, strlen(alone), NULL, &err), -1);
	free(err);
	assert_int_equal(check_ud(other, strlen(other), NULL, &err), -1);
	assert_non_null(strstr(err, "jinja"));
	free(err);
}

/* gzip text with zlib, as `gzip -c` would. */
static void gzip_text(const char *text, struct buf *out)
{
	z_stream z;
	char chunk[4096];
	int rc;

	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8,
				      Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (unsigned char *)text;
	z.avail_in = (uInt)strlen(text);
	do {
		z.next_out = (unsigned char *)chunk;
		z.avail_out = sizeof(chunk);
		rc = deflate(&z, Z_FINISH);
		buf_add(out, chunk, sizeof(chunk) - z.avail_out);
	} while (rc != Z_STREAM_END);
	deflateEnd(&z);
}

static void test_gzip(void **state)
{
	struct buf good = BUF_INIT, bad = BUF_INIT;
	const char *form;
	char *err;

	(void)state;
	gzip_text("#cloud-config\nruncmd: [[true]]\n", &good);
	assert_int_equal(check_ud(good.p, good.len, &form, &err), 0);
	assert_string_equal(form, "gzip");
	free(err);
	/* the content inside is checked too, its errors placed in it */
	gzip_text("#cloud-config\na: [\n", &bad);
	assert_int_equal(check_ud(bad.p, bad.len, NULL, &err), -1);
	assert_non_null(strstr(err, "ud (gunzipped):3:1:"));
	free(err);
	/* a cut-off gzip stream is damaged, not silently short */
	assert_int_equal(check_ud(good.p, good.len - 8, NULL, &err), -1);
	assert_non_null(strstr(err, "gzip"));
	free(err);
	buf_free(&good);
	buf_free(&bad);
}

/* The warnings cidata_cloud_config_typos() gives text, joined by
 * newlines ("" for none); the caller frees. */
static char *typos(const char *text, size_t len)
{
	struct strvec w = STRVEC_INIT;
	struct buf b = BUF_INIT;
	size_t n = cidata_cloud_config_typos("ud", text, len, &w);

	assert_int_equal(n, w.n);
	for (size_t i = 0; i < w.n; i++)
		buf_addf(&b, "%s%s", i ? "\n" : "", w.v[i]);
	buf_add(&b, "", 0);
	strvec_clear(&w);
	return b.p;
}

static void test_cloud_config_typos(void **state)
{
	static const struct {
		const char *text, *said;
	} cases[] = {
		/* the known keys, and one far from every known key: none */
		{ "#cloud-config\npackages: [htop]\nruncmd: [[true]]\n"
		  "write_files: []\nca-certs: {}\nmerge_how: x\n"
		  "x-common: &c {a: 1}\n", "" },
		{ "#cloud-config\npackges: [htop]\n",
		  "ud:2:1: cloud-init knows no key 'packges' and skips it: "
		  "did you mean packages?" },
		/* the case, a dash for an underscore, a British spelling */
		{ "#cloud-config\nRuncmd: []\n", "did you mean runcmd?" },
		{ "#cloud-config\nwrite-files: []\n",
		  "did you mean write_files?" },
		{ "#cloud-config\nusers: []\nssh_authorised_keys: []\n",
		  "ud:3:1: cloud-init knows no key 'ssh_authorised_keys'" },
		/* a quoted key, where it starts */
		{ "#cloud-config\n\"bootcmds\": []\n",
		  "ud:2:1: cloud-init knows no key 'bootcmds' and skips it: "
		  "did you mean bootcmd?" },
		/* keys of cloud-init's own config, outside its schema */
		{ "#cloud-config\nlog_cfgs: []\nlogcfg: x\nvendor_data2: {}\n",
		  "" },
		/* a short word is a word of its own, not a typo */
		{ "#cloud-config\napp: 1\nssl: 2\n", "" },
		/* PyYAML's merge key brings another mapping's keys in */
		{ "#cloud-config\nbase: &b\n  packges: []\nfoo: {<<: *b}\n"
		  "<<: *b\n", "ud:3:3: cloud-init knows no key 'packges'" },
		{ "#cloud-config\n<<: [{runcmdd: 1}, {x: 1}]\n",
		  "ud:2:7: cloud-init knows no key 'runcmdd'" },
		/* a quoted "<<" is a key like any, merging nothing */
		{ "#cloud-config\n\"<<\": {packges: 1}\n", "" },
		/* a NUL in a key is no typo of cloud-init's */
		{ "#cloud-config\n\"runcm\\0\": 1\n", "" },
		/* what a key holds is not the terminal's */
		{ "#cloud-config\n\"runcm\\e\": 1\n",
		  "no key 'runcm\\x1b' and skips it: did you mean runcmd?" },
		/* only top-level keys are cloud-init's */
		{ "#cloud-config\napt:\n  packges: 1\n", "" },
		{ "#cloud-config\n[packges]: 1\n", "" },
		/* only cloud-config is YAML of cloud-init's keys */
		{ "#!/bin/sh\npackges: 1\n", "" },
		{ "## template: jinja\n#cloud-config\npackges: 1\n", "" },
		{ "#cloud-config\n", "" },
		{ "", "" },
	};
	struct buf gz = BUF_INIT;
	char *w;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		w = typos(cases[i].text, strlen(cases[i].text));
		if (cases[i].said[0] ? !strstr(w, cases[i].said) : w[0] != 0)
			fail_msg("case %zu: said \"%s\", not \"%s\"", i, w,
				 cases[i].said);
		free(w);
	}
	/* one warning a key, in order */
	w = typos("#cloud-config\npackge: 1\nrunmcd: 2\n", 34);
	assert_string_equal(w,
		"ud:2:1: cloud-init knows no key 'packge' and skips it: "
		"did you mean packages?\n"
		"ud:3:1: cloud-init knows no key 'runmcd' and skips it: "
		"did you mean runcmd?");
	free(w);
	/* keys past the thousandth are not looked at */
	for (int n = 999; n <= 1000; n++) {
		struct buf many = BUF_INIT;

		buf_adds(&many, "#cloud-config\n");
		for (int i = 0; i < n; i++)
			buf_addf(&many, "k%d: 1\n", i);
		buf_adds(&many, "packges: 1\n");
		w = typos(many.p, many.len);
		if (n == 999)
			assert_non_null(strstr(w, "ud:1001:1: cloud-init knows "
					       "no key 'packges'"));
		else
			assert_string_equal(w, "");
		free(w);
		buf_free(&many);
	}
	/* inside gzip, placed in what it holds */
	gzip_text("#cloud-config\n\nbootcmd: []\npackges: 1\n", &gz);
	w = typos(gz.p, gz.len);
	assert_non_null(strstr(w, "ud (gunzipped):4:1: cloud-init knows no "
			       "key 'packges'"));
	free(w);
	buf_free(&gz);
}

static void test_public_keys(void **state)
{
	const char *ok = "# my keys\n\nssh-ed25519 AAAAC3Nz me@host\n"
			 "  ecdsa-sha2-nistp256 AAAAE2 other  \n";
	const char *priv = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n";
	struct strvec keys = STRVEC_INIT;
	char *err;

	(void)state;
	assert_int_equal(cidata_parse_public_keys("k", ok, strlen(ok), &keys), 0);
	assert_int_equal(keys.n, 2);
	assert_string_equal(keys.v[0], "ssh-ed25519 AAAAC3Nz me@host");
	assert_string_equal(keys.v[1], "ecdsa-sha2-nistp256 AAAAE2 other");
	strvec_clear(&keys);
	stderr_begin();
	assert_int_equal(cidata_parse_public_keys("k", priv, strlen(priv),
						  &keys), -1);
	assert_int_equal(cidata_parse_public_keys("k", "hello there\n", 12,
						  &keys), -1);
	assert_int_equal(cidata_parse_public_keys("k", "# none\n", 7, &keys),
			 -1);
	err = stderr_end();
	assert_non_null(strstr(err, "k:1: this is a private key"));
	assert_non_null(strstr(err, "k:1: not an SSH public key"));
	assert_non_null(strstr(err, "k: holds no SSH public key"));
	free(err);
	strvec_clear(&keys);
}

static void test_render_meta_data(void **state)
{
	const char *keys[] = { "ssh-ed25519 AAAA me@host", "ssh-rsa B \"q\"" };
	struct cidata_meta m = { "iid-1", "vm1", keys, 2 };
	struct buf out = BUF_INIT;

	(void)state;
	cidata_render_meta_data(&m, &out);
	assert_string_equal(out.p, "instance-id: \"iid-1\"\n"
				   "local-hostname: \"vm1\"\n"
				   "public-keys:\n"
				   "  - \"ssh-ed25519 AAAA me@host\"\n"
				   "  - \"ssh-rsa B \\\"q\\\"\"\n");
	/* what nook renders must pass its own meta-data check */
	assert_int_equal(cidata_check_yaml("md", out.p, out.len), 0);
	buf_free(&out);
	m.nkeys = 0;
	cidata_render_meta_data(&m, &out);
	assert_null(strstr(out.p, "public-keys"));
	buf_free(&out);
}

static void test_instance_id(void **state)
{
	struct cidata_file f[] = { { "user-data", "#cloud-config\n", 14 } };
	struct cidata_meta m = { NULL, "vm1", NULL, 0 };
	char *a = cidata_instance_id(f, 1, &m);
	char *b = cidata_instance_id(f, 1, &m);
	char *c, *d;

	(void)state;
	assert_string_equal(a, b);
	assert_int_equal(strlen(a), 4 + 16);
	assert_true(!strncmp(a, "iid-", 4));
	m.hostname = "vm2";
	c = cidata_instance_id(f, 1, &m);
	assert_string_not_equal(a, c);
	m.hostname = "vm1";
	f[0].data = "#cloud-config\n\n";
	f[0].len = 15;
	d = cidata_instance_id(f, 1, &m);
	assert_string_not_equal(a, d);
	assert_int_equal(cidata_check_instance_id(a), 0);
	free(a);
	free(b);
	free(c);
	free(d);
}

static void test_names(void **state)
{
	(void)state;
	stderr_begin();
	assert_int_equal(cidata_check_hostname("vm-1.example"), 0);
	assert_int_equal(cidata_check_hostname("-bad"), -1);
	assert_int_equal(cidata_check_hostname("bad_name"), -1);
	assert_int_equal(cidata_check_hostname("a..b"), -1);
	assert_int_equal(cidata_check_hostname(""), -1);
	assert_int_equal(cidata_check_instance_id("iid-local01"), 0);
	assert_int_equal(cidata_check_instance_id("bad id"), -1);
	assert_int_equal(cidata_check_instance_id("x\ny"), -1);
	free(stderr_end());
	assert_true(cidata_is_volume_id("cidata"));
	assert_true(cidata_is_volume_id("CIDATA"));
	assert_false(cidata_is_volume_id("CDROM"));
	assert_false(cidata_is_volume_id(NULL));
}

static void test_iso_round_trip(void **state)
{
	char *dir = make_tmpdir();
	char *iso = xasprintf("%s/seed.iso", dir);
	char big[5000];
	struct cidata_file files[3] = {
		{ "user-data", "#cloud-config\n", 14 },
		{ "meta-data", "", 0 },
		{ "vendor-data", big, sizeof(big) },
	};
	struct cidata_listing l;

	(void)state;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + 3); /* binary, NULs and all */
	assert_int_equal(cidata_write_iso(iso, files, 3, 0644), 0);
	assert_int_equal(count_entries(dir), 1);
	assert_int_equal(cidata_iso_list(iso, &l), 0);
	assert_true(cidata_is_volume_id(l.volume_id));
	assert_int_equal(l.n, 3);
	for (size_t i = 0; i < 3; i++) {
		struct buf b = BUF_INIT;
		int seen = 0;

		for (size_t k = 0; k < l.n; k++)
			if (!strcmp(l.entries[k].name, files[i].name)) {
				assert_int_equal(l.entries[k].size, files[i].len);
				seen = 1;
			}
		assert_true(seen);
		assert_int_equal(cidata_iso_read(iso, files[i].name, &b), 0);
		assert_int_equal(b.len, files[i].len);
		assert_memory_equal(b.p, files[i].data, files[i].len);
		buf_free(&b);
	}
	cidata_listing_free(&l);
	free(iso);
	remove_tree(dir);
	free(dir);
}

/* A seed holding the same files (any order) is one a start keeps; any
 * other difference, or none there, is not. Nothing is said either way. */
static void test_iso_holds(void **state)
{
	char *dir = make_tmpdir();
	char *iso = xasprintf("%s/seed.iso", dir);
	char *plain = xasprintf("%s/plain", dir);
	char big[5000];
	struct cidata_file files[3] = {
		{ "user-data", "#cloud-config\n", 14 },
		{ "meta-data", "", 0 },
		{ "vendor-data", big, sizeof(big) },
	};
	struct cidata_file other[3], swapped[3];
	char *err;

	(void)state;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + 3);
	assert_int_equal(write_file_atomic(plain, "not an iso", 10, 0600), 0);
	stderr_begin();
	assert_false(cidata_iso_holds(iso, files, 3, 0600)); /* none */
	assert_false(cidata_iso_holds(plain, files, 3, 0600));
	assert_int_equal(cidata_write_iso(iso, files, 3, 0600), 0);
	assert_true(cidata_iso_holds(iso, files, 3, 0600));
	swapped[0] = files[2];
	swapped[1] = files[0];
	swapped[2] = files[1];
	assert_true(cidata_iso_holds(iso, swapped, 3, 0600));
	assert_false(cidata_iso_holds(iso, files, 3, 0644)); /* its mode */
	assert_false(cidata_iso_holds(iso, files, 2, 0600)); /* one more */
	memcpy(other, files, sizeof(other));
	other[2].len--; /* shorter */
	assert_false(cidata_iso_holds(iso, other, 3, 0600));
	memcpy(other, files, sizeof(other));
	other[0].data = "#cloud-config\t"; /* a byte differs */
	assert_false(cidata_iso_holds(iso, other, 3, 0600));
	memcpy(other, files, sizeof(other));
	other[1].name = "network-config"; /* a name differs */
	assert_false(cidata_iso_holds(iso, other, 3, 0600));
	/* one block's difference past the first */
	big[4500] ^= 1;
	assert_false(cidata_iso_holds(iso, files, 3, 0600));
	err = stderr_end();
	assert_string_equal(err, "");
	free(err);
	free(iso);
	free(plain);
	remove_tree(dir);
	free(dir);
}

static void test_iso_failures(void **state)
{
	char *dir = make_tmpdir();
	char *iso = xasprintf("%s/missing/seed.iso", dir);
	char *notiso = xasprintf("%s/plain", dir);
	struct cidata_file f = { "user-data", "#cloud-config\n", 14 };
	struct cidata_listing l;
	struct buf b = BUF_INIT;
	char *err;

	(void)state;
	assert_int_equal(write_file_atomic(notiso, "not an iso", 10, 0644), 0);
	stderr_begin();
	assert_int_equal(cidata_write_iso(iso, &f, 1, 0644), -1);
	assert_int_equal(cidata_iso_list(notiso, &l), -1);
	free(iso);
	iso = xasprintf("%s/seed.iso", dir);
	assert_int_equal(cidata_write_iso(iso, &f, 1, 0644), 0);
	assert_int_equal(cidata_iso_read(iso, "nope", &b), -1);
	err = stderr_end();
	assert_non_null(strstr(err, "missing/seed.iso"));
	assert_non_null(strstr(err, "not an ISO9660 image"));
	assert_non_null(strstr(err, "no file named nope"));
	assert_int_equal(count_entries(dir), 2); /* plain and seed.iso */
	free(err);
	buf_free(&b);
	free(iso);
	free(notiso);
	remove_tree(dir);
	free(dir);
}

/* The cloud-config nook has always sent as vendor-data, for the host key
 * below: the multipart's first part must stay exactly this. */
static const char host_priv[] = "-----BEGIN OPENSSH PRIVATE KEY-----\n"
				"b3BlbnNz\n\n"
				"-----END OPENSSH PRIVATE KEY-----\n";
static const char vendor_cc[] =
	"#cloud-config\n"
	"# written by nook: the VM's pinned SSH host key, so no\n"
	"# key is made at boot (RSA alone costs seconds under\n"
	"# emulation) and none is printed to the console\n"
	"ssh_deletekeys: true\n"
	"ssh_genkeytypes: [ed25519]\n"
	"no_ssh_fingerprints: true\n"
	"ssh_fp_console_blacklist: [ssh-ed25519]\n"
	"ssh_key_console_blacklist: [ssh-ed25519]\n"
	"ssh_keys:\n"
	"  ed25519_private: |\n"
	"    -----BEGIN OPENSSH PRIVATE KEY-----\n"
	"    b3BlbnNz\n"
	"    -----END OPENSSH PRIVATE KEY-----\n"
	"  ed25519_public: \"ssh-ed25519 HOSTPUB nook-vm\"\n"
	"grub_dpkg:\n  enabled: false\n";

/* Split a MIME message the way cloud-init does (Python's email module):
 * one "== type filename" line per part, then its payload. */
static const char mime_split[] =
	"import email, sys\n"
	"m = email.message_from_string(open(sys.argv[1]).read())\n"
	"assert m.is_multipart()\n"
	"for p in m.walk():\n"
	"    if p.is_multipart(): continue\n"
	"    sys.stdout.write('== %s %s\\n' % (p.get_content_type(),"
	" p.get_filename()))\n"
	"    sys.stdout.write(p.get_payload())\n";

static void render_vendor(int direct, struct buf *out)
{
	struct cidata_vendor v = { host_priv, "ssh-ed25519 HOSTPUB nook-vm\n",
				   "ssh-ed25519 AAAAlogin nook-vm\n", direct };

	assert_int_equal(cidata_render_vendor_data(&v, out), 0);
}

static void test_vendor_data_multipart(void **state)
{
	char *dir = make_tmpdir(), *path = xasprintf("%s/vendor-data", dir);
	const char *py[] = { "python3", "-c", mime_split, path, NULL };
	const char *shn[] = { "sh", "-n", path, NULL };
	struct buf vd = BUF_INIT, out = BUF_INIT, want = BUF_INIT;
	const char *form = NULL, *hook;

	(void)state;
	render_vendor(1, &vd);
	/* cloud-init reads it as multipart only with this in its first 4K */
	assert_non_null(strstr(vd.p, "MIME-Version: 1.0\n"));
	assert_int_equal(cidata_check_user_data("vd", vd.p, vd.len, &form), 0);
	assert_string_equal(form, "MIME multipart");
	assert_int_equal(write_file_atomic(path, vd.p, vd.len, 0600), 0);
	assert_int_equal(run_capture(py, &out), 0);
	buf_addf(&want, "== text/cloud-config nook.cfg\n%s"
			"== text/cloud-boothook nook-login-key.sh\n"
			"#cloud-boothook\n#!/bin/sh\n", vendor_cc);
	assert_int_equal(strncmp(out.p, want.p, want.len), 0);
	hook = out.p + want.len;
	assert_non_null(strstr(hook, "<<'NOOK_EOF'\n"
				     "ssh-ed25519 AAAAlogin nook-vm\n"
				     "NOOK_EOF\n"));
	assert_non_null(strstr(hook, "\nAuthorizedKeysFile "
				     "/etc/ssh/nook_authorized_keys "
				     ".ssh/authorized_keys "
				     ".ssh/authorized_keys2\n"));
	assert_non_null(strstr(hook, "/etc/ssh/sshd_config.d/00-nook.conf"));
	/* a boot with DAD off for its NICs turns it on for later ones */
	assert_non_null(strstr(hook, "*\" " CIDATA_NO_DAD_ARG " \"*)\n"
				     "\t{ echo 1 > /proc/sys/net/ipv6/conf/"
				     "default/accept_dad; }"));
	/* the boothook is a shell script sh can parse */
	assert_int_equal(write_file_atomic(path, hook, strlen(hook), 0600), 0);
	buf_free(&out);
	assert_int_equal(run_capture(shn, &out), 0);
	assert_int_equal(cidata_check_yaml("cc", vendor_cc,
					   strlen(vendor_cc)), 0);
	buf_free(&vd);
	buf_free(&out);
	buf_free(&want);
	remove_tree(dir);
	free(path);
	free(dir);
}

static void test_vendor_data_disk_boot(void **state)
{
	struct buf vd = BUF_INIT;

	(void)state;
	render_vendor(0, &vd);
	/* booted from its disk, the guest's grub still needs debconf */
	assert_null(strstr(vd.p, "grub_dpkg"));
	assert_non_null(strstr(vd.p, "ed25519_public: \"ssh-ed25519 HOSTPUB"));
	buf_free(&vd);
}

static void test_vendor_data_bad_key(void **state)
{
	static const char *const bad[] = {
		"", "not a key\n", "-----BEGIN OPENSSH PRIVATE KEY-----\n",
		"ssh-ed25519 A a\nssh-ed25519 B b\n",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct cidata_vendor v = { host_priv, "ssh-ed25519 H h", bad[i],
					   1 };
		struct buf vd = BUF_INIT;
		char *err;

		stderr_begin();
		assert_int_equal(cidata_render_vendor_data(&v, &vd), -1);
		err = stderr_end();
		assert_non_null(strstr(err, "nook's login key"));
		assert_int_equal(vd.len, 0);
		free(err);
		buf_free(&vd);
	}
}

/* Every occurrence of from in in, as to, into out. */
static void replace_all(const char *in, const char *from, const char *to,
			struct buf *out)
{
	const char *at;

	while ((at = strstr(in, from))) {
		buf_add(out, in, (size_t)(at - in));
		buf_adds(out, to);
		in = at + strlen(from);
	}
	buf_adds(out, in);
}

/*
 * script with every guest path it uses put under dir: /etc/hosts,
 * /var/lib/nook, /var/lib/cloud/scripts/per-boot, /proc/cmdline,
 * cloud-init's result.json and /sys/devices/system/cpu. Run as root, a
 * path missed would be the machine's own: none may be left.
 */
static void stand_ins(const char *dir, const char *script, struct buf *out)
{
	const char *paths = "hosts=/etc/hosts state=/var/lib/nook/hosts "
			    "lock=/run/nook-hosts.lock";
	const char *perboot = "d=/var/lib/cloud/scripts/per-boot "
			      "t=/var/lib/nook/per-boot.tmp";
	char *ours = xasprintf("hosts=%s/hosts state=%s/nook/hosts "
			       "lock=%s/lock", dir, dir, dir);
	char *our_pb = xasprintf("d=%s/per-boot t=%s/nook/per-boot.tmp", dir,
				 dir);
	char *cmdline = xasprintf("%s/cmdline", dir);
	char *result = xasprintf("%s/result.json", dir);
	char *cpu = xasprintf("%s/cpu", dir);
	struct buf a = BUF_INIT, b = BUF_INIT;

	/* a per-boot script the hook wrote has ours already */
	assert_true(strstr(script, paths) || strstr(script, ours));
	replace_all(script, paths, ours, &a);
	replace_all(a.p, perboot, our_pb, &b);
	buf_free(&a);
	replace_all(b.p, "/proc/cmdline", cmdline, &a);
	buf_free(&b);
	replace_all(a.p, "/run/cloud-init/result.json", result, &b);
	buf_free(out);
	replace_all(b.p, "/sys/devices/system/cpu", cpu, out);
	assert_null(strstr(out->p, "=/etc/hosts"));
	assert_null(strstr(out->p, " /proc/"));
	assert_null(strstr(out->p, " /sys/"));
	assert_null(strstr(out->p, " /run/cloud-init"));
	buf_free(&a);
	buf_free(&b);
	free(ours);
	free(our_pb);
	free(cmdline);
	free(result);
	free(cpu);
}

/* Run script (sh -c, with args) on dir's stand-ins (a hook's: it writes
 * the per-boot script); 0 and its hosts file in got, or -1. */
static int run_hosts(const char *dir, const char *script, int hook,
		     const char *const *args, struct buf *got)
{
	const char *argv[12] = { "sh", "-c", NULL, "nook-hosts" };
	struct buf sh = BUF_INIT, out = BUF_INIT;
	char *hosts = xasprintf("%s/hosts", dir);
	char *cmdline = xasprintf("%s/cmdline", dir);
	size_t n = 0;
	int rc;

	assert_true(!hook || strstr(script, "d=/var/lib/cloud/scripts/per-boot"));
	/* a boot on all vCPUs */
	assert_int_equal(write_file_atomic(cmdline, "ro\n", 3, 0644), 0);
	stand_ins(dir, script, &sh);
	argv[2] = sh.p;
	while (args[n])
		n++;
	assert_true(4 + n < ARRAY_SIZE(argv));
	for (size_t i = 0; i < n; i++)
		argv[4 + i] = args[i];
	rc = run_capture(argv, &out);
	buf_free(got);
	if (rc == 0)
		rc = read_file(hosts, got);
	buf_free(&sh);
	buf_free(&out);
	free(hosts);
	free(cmdline);
	return rc;
}

/* The hosts boothook of a node whose seed (number id) holds lines,
 * rendered and split out of the multipart as cloud-init would. */
static char *hosts_hook(const char *dir, const char *const *lines,
			size_t n, long long id)
{
	struct cidata_vendor v = { host_priv, "ssh-ed25519 HOSTPUB nook-vm\n",
				   "ssh-ed25519 AAAAlogin nook-vm\n", 1, lines,
				   n, id };
	char *vpath = xasprintf("%s/vendor-data", dir), *hook;
	const char *py[] = { "python3", "-c", mime_split, vpath, NULL };
	struct buf vd = BUF_INIT, out = BUF_INIT;

	assert_int_equal(cidata_render_vendor_data(&v, &vd), 0);
	assert_int_equal(write_file_atomic(vpath, vd.p, vd.len, 0600), 0);
	assert_int_equal(run_capture(py, &out), 0);
	hook = strstr(out.p, "== text/cloud-boothook nook-cluster-hosts.sh\n");
	assert_non_null(hook);
	hook = xstrdup(strchr(hook, '\n') + 1);
	/* the last part: nothing after it */
	assert_null(strstr(hook, "\n== "));
	assert_int_equal(strncmp(hook, "#cloud-boothook\n#!/bin/sh\n", 26), 0);
	buf_free(&vd);
	buf_free(&out);
	free(vpath);
	return hook;
}

/* A cluster node's vendor-data: a third part, a boothook writing the
 * names at once and leaving a per-boot script that writes them again
 * after cloud-init's update_etc_hosts. Run on files of ours, not /etc:
 * they replace the marked lines and keep the rest, in the file's own
 * inode. What nook wrote over ssh since the seed was made (dev-9 came,
 * or went) stays at a reboot of the node's own; a newer seed's names
 * replace it. */
static void test_vendor_data_hosts(void **state)
{
	static const char *const lines[] = { "10.77.0.1 dev-1",
					     "10.77.0.2 dev-2" };
	static const char *const none[] = { NULL };
	static const char *const grown[] = { "10.77.0.1 dev-1",
					     "10.77.0.2 dev-2",
					     "10.77.0.9 dev-9", NULL };
	static const char *const shrunk[] = { "10.77.0.1 dev-1",
					      "10.77.0.2 dev-2", NULL };
	static const char *const one[] = { "10.77.0.1 dev-1", NULL };
	const char *seeded_one[] = { "seed=1000", "10.77.0.1 dev-1", NULL };
	char *dir = make_tmpdir(), *hook = hosts_hook(dir, lines, 2, 1000);
	char *hosts = xasprintf("%s/hosts", dir);
	char *kept = xasprintf("%s/nook/hosts", dir);
	char *perboot = xasprintf("%s/per-boot/nook-cluster-hosts", dir);
	char *started, *newer;
	const char *old = "127.0.0.1 localhost\n"
			  "10.77.0.7 gone-7 # nook cluster\n"
			  "192.168.5.5 mine\n";
	const char *rendered = "127.0.0.1 localhost\n";
	const char *both = "127.0.0.1 localhost\n"
			   "10.77.0.1 dev-1 # nook cluster\n"
			   "10.77.0.2 dev-2 # nook cluster\n";
	struct buf got = BUF_INIT, pb = BUF_INIT, kept_txt = BUF_INIT;
	struct stat before, after;

	(void)state;
	assert_non_null(strstr(hook, "\nseed=1000\nset -- '10.77.0.1 dev-1' "
				     "'10.77.0.2 dev-2'\n"));
	assert_int_equal(write_file_atomic(hosts, old, strlen(old), 0644), 0);
	assert_int_equal(stat(hosts, &before), 0);
	/* the first boot, run twice: the same */
	for (int run = 0; run < 2; run++) {
		assert_int_equal(run_hosts(dir, hook, 1, none, &got), 0);
		assert_string_equal(got.p, "127.0.0.1 localhost\n"
					   "192.168.5.5 mine\n"
					   "10.77.0.1 dev-1 # nook cluster\n"
					   "10.77.0.2 dev-2 # nook cluster\n");
	}
	assert_int_equal(stat(hosts, &after), 0);
	assert_true(before.st_ino == after.st_ino);
	assert_int_equal(stat(perboot, &after), 0);
	assert_true(after.st_mode & S_IXUSR);
	assert_int_equal(read_file(perboot, &pb), 0);
	assert_int_equal(strncmp(pb.p, "#!/bin/sh\n", 10), 0);
	assert_int_equal(write_file_atomic(hosts, rendered, strlen(rendered),
					   0644), 0);

	/* the cluster grew while the node ran: nook's write over ssh; the
	 * node reboots with its older seed, update_etc_hosts writes the
	 * file from the template, the per-boot script puts every name back */
	assert_int_equal(run_hosts(dir, cidata_hosts_script, 0, grown, &got), 0);
	assert_non_null(strstr(got.p, "10.77.0.9 dev-9 # nook cluster\n"));
	assert_int_equal(read_file(kept, &kept_txt), 0);
	assert_int_equal(strncmp(kept_txt.p, "#ssh 1000\n10.77.0.1 dev-1\n",
				 26), 0);
	buf_free(&kept_txt);
	assert_int_equal(run_hosts(dir, hook, 1, none, &got), 0);
	assert_int_equal(write_file_atomic(hosts, rendered, strlen(rendered),
					   0644), 0);
	assert_int_equal(run_hosts(dir, pb.p, 0, none, &got), 0);
	assert_string_equal(got.p, "127.0.0.1 localhost\n"
				   "10.77.0.1 dev-1 # nook cluster\n"
				   "10.77.0.2 dev-2 # nook cluster\n"
				   "10.77.0.9 dev-9 # nook cluster\n");

	/* the node starts again, its seed names dev-9; dev-9 goes while it
	 * runs: at its next reboot on its own, that seed does not bring
	 * dev-9 back */
	started = hosts_hook(dir, grown, 3, 2500);
	assert_int_equal(run_hosts(dir, started, 1, none, &got), 0);
	assert_non_null(strstr(got.p, "10.77.0.9 dev-9 # nook cluster\n"));
	assert_int_equal(run_hosts(dir, cidata_hosts_script, 0, shrunk, &got),
			 0);
	assert_string_equal(got.p, both);
	assert_int_equal(run_hosts(dir, started, 1, none, &got), 0);
	assert_string_equal(got.p, both);
	assert_int_equal(write_file_atomic(hosts, rendered, strlen(rendered),
					   0644), 0);
	assert_int_equal(run_hosts(dir, pb.p, 0, none, &got), 0);
	assert_string_equal(got.p, both);

	/* a later start's seed replaces what was written over ssh, whatever
	 * its number (the host's clock may have gone back) */
	newer = hosts_hook(dir, lines + 1, 1, 100);
	assert_int_equal(run_hosts(dir, newer, 1, none, &got), 0);
	assert_string_equal(got.p, "127.0.0.1 localhost\n"
				   "10.77.0.2 dev-2 # nook cluster\n");
	assert_int_equal(read_file(kept, &kept_txt), 0);
	assert_string_equal(kept_txt.p, "#seed 100\n10.77.0.2 dev-2\n");
	buf_free(&kept_txt);
	/* over ssh, the names given are all there are */
	assert_int_equal(run_hosts(dir, cidata_hosts_script, 0, one, &got), 0);
	assert_string_equal(got.p, "127.0.0.1 localhost\n"
				   "10.77.0.1 dev-1 # nook cluster\n");
	/* names an older nook kept, with no first line saying where they
	 * came from: a seed replaces them */
	assert_int_equal(write_file_atomic(kept, "10.77.0.7 gone-7\n", 17,
					   0644), 0);
	assert_int_equal(run_hosts(dir, hook, 1, none, &got), 0);
	assert_string_equal(got.p, both);
	/* over ssh onto such a state, nook names the seed it last wrote
	 * (its record's): at that seed's reboot, the names written stay */
	assert_int_equal(write_file_atomic(kept, "10.77.0.7 gone-7\n", 17,
					   0644), 0);
	assert_int_equal(run_hosts(dir, cidata_hosts_script, 0, seeded_one,
				   &got), 0);
	assert_int_equal(read_file(kept, &kept_txt), 0);
	assert_string_equal(kept_txt.p, "#ssh 1000\n10.77.0.1 dev-1\n");
	buf_free(&kept_txt);
	assert_int_equal(run_hosts(dir, hook, 1, none, &got), 0);
	assert_string_equal(got.p, "127.0.0.1 localhost\n"
				   "10.77.0.1 dev-1 # nook cluster\n");
	/* and onto one of an older seed (a memory snapshot's guest): the
	 * seed that nook wrote last is the one the next boot reads */
	assert_int_equal(write_file_atomic(kept, "#ssh 100\n", 9, 0644), 0);
	seeded_one[0] = "seed=2500";
	assert_int_equal(run_hosts(dir, cidata_hosts_script, 0, seeded_one,
				   &got), 0);
	assert_int_equal(run_hosts(dir, started, 1, none, &got), 0);
	assert_string_equal(got.p, "127.0.0.1 localhost\n"
				   "10.77.0.1 dev-1 # nook cluster\n");
	buf_free(&got);
	buf_free(&pb);
	remove_tree(dir);
	free(dir);
	free(hook);
	free(started);
	free(newer);
	free(hosts);
	free(kept);
	free(perboot);
}

/* dir's stand-in for cpu1/online after ms, or as soon as it is "1". */
static char online_after(const char *dir, int ms)
{
	char *online = xasprintf("%s/cpu/cpu1/online", dir);
	struct buf b = BUF_INIT;
	char got = '?';

	for (int waited = 0;; waited += 50) {
		assert_int_equal(read_file(online, &b), 0);
		got = b.p[0];
		buf_free(&b);
		if (got == '1' || waited >= ms)
			break;
		sleep_ms(50);
	}
	free(online);
	return got;
}

/*
 * The per-boot script on dir's stand-ins, booted with cmdline, cpu1
 * offline and cloud-init done or not (result): it returns at once (a
 * background job may wait for cloud-init, never the script: cloud-init
 * waits for it). cpu1/online after ms.
 */
static char run_online(const char *dir, const char *perboot,
		       const char *cmdline, int result, int ms)
{
	char *cmd = xasprintf("%s/cmdline", dir);
	char *res = xasprintf("%s/result.json", dir);
	char *cpu1 = xasprintf("%s/cpu/cpu1", dir);
	char *online = xasprintf("%s/cpu/cpu1/online", dir);
	char *hosts = xasprintf("%s/hosts", dir);
	const char *argv[] = { "sh", "-c", NULL, "per-boot", NULL };
	struct buf sh = BUF_INIT, out = BUF_INIT;
	double t0;

	assert_int_equal(mkdir_p(cpu1, 0700), 0);
	assert_int_equal(write_file_atomic(online, "0\n", 2, 0644), 0);
	assert_int_equal(write_file_atomic(cmd, cmdline, strlen(cmdline),
					   0644), 0);
	unlink(res);
	if (result)
		assert_int_equal(write_file_atomic(res, "{}\n", 3, 0644), 0);
	assert_int_equal(write_file_atomic(hosts, "", 0, 0644), 0);
	stand_ins(dir, perboot, &sh);
	argv[2] = sh.p;
	t0 = mono_s();
	assert_int_equal(run_capture(argv, &out), 0);
	assert_true(mono_s() - t0 < 5);
	buf_free(&sh);
	buf_free(&out);
	free(cmd);
	free(res);
	free(cpu1);
	free(online);
	free(hosts);
	return online_after(dir, ms);
}

/* A node booted on one vCPU brings the others online itself once
 * cloud-init is done (after a reboot of its own, nook is not there to),
 * and only when its kernel arguments say so. */
static void test_vendor_data_online_cpus(void **state)
{
	static const char *const lines[] = { "10.77.0.1 dev-1" };
	static const char one[] = "root=/dev/vda ro maxcpus=1 "
				  CIDATA_ONLINE_CPUS_ARG "\n";
	struct cidata_vendor v = { host_priv, "ssh-ed25519 HOSTPUB nook-vm\n",
				   "ssh-ed25519 AAAAlogin nook-vm\n", 1, lines,
				   1 };
	char *dir = make_tmpdir(), *res = xasprintf("%s/result.json", dir);
	struct buf vd = BUF_INIT, pb = BUF_INIT;
	const char *at, *end;

	(void)state;
	assert_int_equal(cidata_render_vendor_data(&v, &vd), 0);
	at = strstr(vd.p, "<<'NOOK_EOF' &&\n#!/bin/sh\n");
	assert_non_null(at);
	at = strchr(at, '\n') + 1;
	end = strstr(at, "\nNOOK_EOF\n");
	assert_non_null(end);
	buf_add(&pb, at, (size_t)(end - at) + 1);
	/* cloud-init done: at once */
	assert_int_equal(run_online(dir, pb.p, one, 1, 5000), '1');
	/* not yet: the script returns, the vCPU comes once it is */
	assert_int_equal(run_online(dir, pb.p, one, 0, 1500), '0');
	assert_int_equal(write_file_atomic(res, "{}\n", 3, 0644), 0);
	assert_int_equal(online_after(dir, 5000), '1');
	/* not nook's boot on one vCPU: nothing, even a while later */
	assert_int_equal(run_online(dir, pb.p, "root=/dev/vda ro maxcpus=1\n",
				    1, 500), '0');
	assert_int_equal(run_online(dir, pb.p, "x " CIDATA_ONLINE_CPUS_ARG
				    "=2 y\n", 1, 500), '0');
	buf_free(&vd);
	buf_free(&pb);
	remove_tree(dir);
	free(dir);
	free(res);
}

/* A line that is not "ADDR NAME" never reaches the shell. */
static void test_vendor_data_bad_hosts(void **state)
{
	static const char *const bad[] = {
		"10.0.0.1 it's", "dev-1", "10.0.0.1 a b", "10.0.0.1 ",
		" dev-1", "10.0.0.1 $(reboot)", "10.0.0.1\tdev-1",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct cidata_vendor v = { host_priv, "ssh-ed25519 H h",
					   "ssh-ed25519 AAAAlogin nook-vm\n",
					   1, &bad[i], 1 };
		struct buf vd = BUF_INIT;
		char *err;

		stderr_begin();
		assert_int_equal(cidata_render_vendor_data(&v, &vd), -1);
		err = stderr_end();
		assert_non_null(strstr(err, "is not an address and a name"));
		assert_int_equal(vd.len, 0);
		free(err);
		buf_free(&vd);
	}
}

static void test_login_user(void **state)
{
	static const struct {
		const char *ud, *user;
	} cases[] = {
		{ NULL, "debian" },
		{ "#cloud-config\n", "debian" },
		{ "#cloud-config\n{}\n", "debian" },
		{ "#cloud-config\npackages: [htop]\n", "debian" },
		{ "#cloud-config\nusers:\n", "debian" },
		{ "#cloud-config\nusers: [default]\n", "debian" },
		{ "#cloud-config\nusers: [alice, default]\n", "debian" },
		{ "#cloud-config\nusers:\n  - name: default\n  - bob\n", "debian" },
		/* its own list, no default: the first user it makes */
		{ "#cloud-config\nusers:\n  - name: alice\n    shell: /bin/bash\n"
		  "  - bob\n", "alice" },
		{ "#cloud-config\nusers: [bob, carol]\n", "bob" },
		{ "#cloud-config\nusers:\n  - gecos: no name\n  - name: dave\n",
		  "dave" },
		/* the string form and the mapping form */
		{ "#cloud-config\nusers: \"carol, dave\"\n", "carol" },
		{ "#cloud-config\nusers: \" default ,carol\"\n", "debian" },
		{ "#cloud-config\nusers:\n  erin: {shell: /bin/sh}\n", "erin" },
		{ "#cloud-config\nusers: {frank: false, gina: true}\n", "gina" },
		/* no user at all: root still has nook's key */
		{ "#cloud-config\nusers: []\n", "root" },
		/* user: renames the default user and puts it back in the list */
		{ "#cloud-config\nuser: zed\nusers: [alice]\n", "zed" },
		{ "#cloud-config\nuser: {name: zed, shell: /bin/sh}\n", "zed" },
		{ "#cloud-config\nsystem_info:\n  default_user:\n    name: yan\n",
		  "yan" },
		{ "#cloud-config\nsystem_info: {default_user: {name: yan}}\n"
		  "users: [default, bob]\n", "yan" },
		/* forms nook does not read: the image's user */
		{ "#!/bin/sh\necho users: [alice]\n", "debian" },
		{ "#cloud-config-archive\n- type: text/cloud-config\n", "debian" },
		{ "## template: jinja\n#cloud-config\nusers: [x]\n", "debian" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *ud = cases[i].ud;
		char *user = (char *)"unset";

		assert_int_equal(cidata_login_user("ud", ud, ud ? strlen(ud) : 0,
						   "debian", &user), 0);
		assert_string_equal(user, cases[i].user);
		free(user);
	}
}

static void test_login_user_errors(void **state)
{
	static const char *const bad[] = {
		"#cloud-config\nusers: [\"bad name\"]\n",
		"#cloud-config\nusers: [-x]\n",
		"#cloud-config\nusers: [alice\n",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *user = (char *)"unset", *err;
		int rc;

		stderr_begin();
		rc = cidata_login_user("ud", bad[i], strlen(bad[i]), "debian",
				       &user);
		err = stderr_end();
		assert_int_equal(rc, -1);
		assert_null(user);
		assert_non_null(strstr(err, "ud:"));
		free(err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted_forms),
		cmocka_unit_test(test_unknown_first_line),
		cmocka_unit_test(test_yaml_error_position),
		cmocka_unit_test(test_deep_yaml),
		cmocka_unit_test(test_size_bound),
		cmocka_unit_test(test_bad_bytes),
		cmocka_unit_test(test_yaml_must_be_mapping),
		cmocka_unit_test(test_jinja_needs_a_form),
		cmocka_unit_test(test_gzip),
		cmocka_unit_test(test_cloud_config_typos),
		cmocka_unit_test(test_public_keys),
		cmocka_unit_test(test_render_meta_data),
		cmocka_unit_test(test_instance_id),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_iso_round_trip),
		cmocka_unit_test(test_iso_holds),
		cmocka_unit_test(test_iso_failures),
		cmocka_unit_test(test_vendor_data_multipart),
		cmocka_unit_test(test_vendor_data_disk_boot),
		cmocka_unit_test(test_vendor_data_bad_key),
		cmocka_unit_test(test_vendor_data_hosts),
		cmocka_unit_test(test_vendor_data_online_cpus),
		cmocka_unit_test(test_vendor_data_bad_hosts),
		cmocka_unit_test(test_login_user),
		cmocka_unit_test(test_login_user_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

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
	const char *argv[] = { "qemu-img", "info", "--output=json", "-U", path,
			       NULL };
	struct buf out = BUF_INIT;
	int rc = run_capture(argv, &out);

	*info = rc == 0 ? json_loads(out.p, 0, NULL) : NULL;
	if (!*info && rc >= 0)
		errorf("qemu-img cannot read %s: %s", path, out.p);
	buf_free(&out);
	return *info ? 0 : -1;
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
	if (read_file_quiet(link, &b) < 0) {
		if (errno == ENOENT)
			ret = 0;
		else
			error_errno("cannot read %s", link);
		goto out;
	}
	b.p[strcspn(b.p, "\n")] = '\0';
	if (!is_hex64(b.p)) {
		errorf("%s: not a digest", link);
		goto out;
	}
	*dir = xasprintf("%s/images/%s", data, b.p);
	ret = 0;
out:
	buf_free(&b);
	free(link);
	return ret;
}

/* Check a manifest against the sums of its files as they were written
 * (file name -> sha256 hex): plain names only, each with the sha256 it was
 * written with, and one disk among them. */
static int check_sums(const char *dir, const json_t *manifest,
		      const json_t *sums)
{
	const json_t *files = json_object_get(manifest, "files"), *f;
	const char *name;
	int disks = 0;

	if (!json_is_object(files) || !json_object_size(files))
		return errorf("%s: the manifest lists no files", dir);
	json_object_foreach((json_t *)files, name, f) {
		const char *want = json_string_value(json_object_get(f, "sha256"));
		const char *got;

		if (!img_plain_name(name) || !strcmp(name, "manifest.json"))
			return errorf("%s: the manifest names a file '%s' that "
				      "is not a plain name", dir, name);
		if (!want || !is_hex64(want))
			return errorf("%s: file %s has no sha256 in the manifest",
				      dir, name);
		got = json_string_value(json_object_get(sums, name));
		if (!got)
			return errorf("%s: the manifest lists %s, which is not "
				      "in the image", dir, name);
		disks += json_object_get(f, "format") != NULL;
		if (strcmp(got, want))
			return errorf("%s: checksum mismatch: sha256 %s, the "
				      "manifest says %s", name, got, want);
	}
	if (disks != 1)
		return errorf("%s: the manifest must name one disk (a file with "
			      "a \"format\"), not %d", dir, disks);
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
		ret = check_sums(dir, manifest, sums);
	json_decref(sums);
	return ret;
}

/* Copy src to dst (created 0644) and hash it in the same pass. */
static int copy_hashed(const char *src, const char *dst, char sum[65])
{
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, ret = -1;
	struct sha256 s;

	if (in < 0)
		return error_errno("cannot read %s", src);
	sha256_init(&s);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0) {
		error_errno("cannot write %s", dst);
		goto out;
	}
	if (sha256_fd(&s, in, src, out, dst) < 0)
		goto out;
	if (fsync(out) < 0) {
		error_errno("cannot write %s", dst);
		goto out;
	}
	ret = sha256_hex(&s, sum);
out:
	sha256_free(&s);
	close(in); /* read-only: nothing to lose */
	if (out >= 0 && close(out) < 0 && ret == 0)
		ret = error_errno("cannot write %s", dst);
	return ret;
}

/* Copy src into stage as file, hashing it as it goes: its sha256 goes into
 * sums and, when files is given, into the manifest entry for it there. */
static int stage_file(const char *stage, const char *src, const char *file,
		      json_t *files, const char *format, json_t *sums)
{
	char *to = xasprintf("%s/%s", stage, file);
	char sum[65];
	int rc = copy_hashed(src, to, sum);

	free(to);
	if (rc < 0)
		return -1;
	json_object_set_new(sums, file, json_string(sum));
	if (files && format)
		json_object_set_new(files, file, json_pack("{s:s,s:s}",
			"format", format, "sha256", sum));
	else if (files)
		json_object_set_new(files, file, json_pack("{s:s}", "sha256",
							   sum));
	return 0;
}

char *img_stage(const char *data)
{
	char *base = xasprintf("%s/images", data);
	char *tmp = xasprintf("%s/.tmp-XXXXXX", base);

	if (mkdir_p(base, 0755) < 0 || !mkdtemp(tmp)) {
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

int img_commit(const char *data, char *stage, const char *name,
	       const json_t *sums)
{
	char *mpath = xasprintf("%s/manifest.json", stage);
	const json_t *d = json_object_get(sums, "manifest.json");
	const char *digest = json_string_value(d);
	json_error_t jerr;
	json_t *m = NULL;
	char *final = NULL;
	struct stat st;
	int ret = -1;

	m = json_load_file(mpath, 0, &jerr);
	if (!m) {
		errorf("%s: %s", mpath, jerr.text);
		goto out;
	}
	if (!digest || !is_hex64(digest)) {
		errorf("%s: the manifest was not hashed as it was written",
		       stage);
		goto out;
	}
	if (check_sums(stage, m, sums) < 0)
		goto out;
	final = xasprintf("%s/images/%s", data, digest);
	if (stat(final, &st) == 0) {
		remove_tree(stage); /* the same image is there already */
	} else if (rename(stage, final) < 0) {
		error_errno("cannot move %s to %s", stage, final);
		goto out;
	}
	if (set_name(data, name, digest) < 0)
		goto out;
	printf("image %s: %.12s (%s)\n", name, digest, final);
	ret = 0;
out:
	if (ret < 0)
		remove_tree(stage);
	free(stage);
	json_decref(m);
	free(mpath);
	free(final);
	return ret;
}

int img_import_dir(const char *data, const char *src, const char *name)
{
	char *mpath = xasprintf("%s/manifest.json", src);
	json_error_t jerr;
	json_t *m = json_load_file(mpath, 0, &jerr), *f;
	json_t *sums = json_object();
	char *stage = NULL;
	const char *file;
	int ret = -1;

	if (!m) {
		errorf("%s: %s", mpath, jerr.text);
		goto out;
	}
	stage = img_stage(data);
	if (!stage)
		goto out;
	json_object_foreach(json_object_get(m, "files"), file, f) {
		char *from;
		int rc;

		if (!img_plain_name(file)) {
			errorf("%s: file '%s' is not a plain name", mpath, file);
			goto out;
		}
		from = xasprintf("%s/%s", src, file);
		rc = stage_file(stage, from, file, NULL, NULL, sums);
		free(from);
		if (rc < 0)
			goto out;
	}
	if (stage_file(stage, mpath, "manifest.json", NULL, NULL, sums) < 0)
		goto out;
	ret = img_commit(data, stage, name, sums);
	stage = NULL; /* committed or removed */
out:
	if (stage)
		remove_tree(stage);
	free(stage);
	json_decref(sums);
	json_decref(m);
	free(mpath);
	return ret;
}

/* What qemu-img says disk is: qcow2 or raw, standing alone. *info holds
 * *fmt (the caller decrefs it). 0, or -1 having said why. */
static int disk_format(const char *disk, json_t **info, const char **fmt)
{
	if (img_disk_info(disk, info) < 0)
		return -1;
	*fmt = json_string_value(json_object_get(*info, "format"));
	if (!*fmt || (strcmp(*fmt, "qcow2") && strcmp(*fmt, "raw")))
		return errorf("%s: not a qcow2 or raw disk (qemu-img says %s)",
			      disk, *fmt ? *fmt : "nothing");
	if (!strcmp(*fmt, "qcow2") &&
	    json_object_get(*info, "backing-filename"))
		return errorf("%s: a qcow2 with a backing file cannot be "
			      "imported alone; 'qemu-img convert' it first",
			      disk);
	return 0;
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
		    const char *initrd, const char *cmdline, const char *name)
{
	json_t *info = NULL, *m = NULL, *files, *boot, *sums = json_object();
	const char *fmt;
	char *stage = NULL, *file = NULL;
	int ret = -1;

	if (disk_format(disk, &info, &fmt) < 0)
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
	ret = img_commit(data, stage, name, sums);
	stage = NULL; /* committed or removed */
out:
	if (stage)
		remove_tree(stage);
	free(stage);
	free(file);
	json_decref(sums);
	json_decref(m);
	json_decref(info);
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

json_t *img_list(const char *data)
{
	char *names = xasprintf("%s/images/names", data);
	DIR *d = opendir(names);
	json_t *all = json_array();
	struct strvec v = STRVEC_INIT;

	for (struct dirent *e = d ? readdir(d) : NULL; e; e = readdir(d))
		if (e->d_name[0] != '.')
			strvec_push(&v, e->d_name);
	if (d)
		closedir(d);
	for (size_t i = 0; i < v.n; i++) {
		char *dir = NULL, *mpath;
		json_t *m;
		struct stat st;

		if (img_resolve(data, v.v[i], &dir) < 0 || !dir)
			continue;
		mpath = xasprintf("%s/manifest.json", dir);
		m = json_load_file(mpath, 0, NULL);
		if (m && stat(mpath, &st) == 0)
			json_array_append_new(all, json_pack(
				"{s:s,s:s,s:s,s:I,s:O,s:I}", "name", v.v[i],
				"digest", strrchr(dir, '/') + 1, "dir", dir,
				"size", (json_int_t)dir_size(dir), "boot",
				json_object_get(m, "boot") ?
					json_object_get(m, "boot") : json_null(),
				"created", (json_int_t)st.st_mtime));
		json_decref(m);
		free(mpath);
		free(dir);
	}
	strvec_clear(&v);
	free(names);
	return all;
}

int img_remove(const char *data, const char *name)
{
	char *dir = NULL, *link = xasprintf("%s/images/names/%s", data, name);
	json_t *all;
	size_t i;
	json_t *e;
	int shared = 0, ret = -1;

	if (img_resolve(data, name, &dir) < 0)
		goto out;
	if (!dir) {
		errorf("no image named '%s' in the store", name);
		goto out;
	}
	if (unlink(link) < 0) {
		error_errno("cannot remove %s", link);
		goto out;
	}
	all = img_list(data);
	json_array_foreach(all, i, e)
		shared |= !strcmp(json_string_value(json_object_get(e, "dir")), dir);
	json_decref(all);
	ret = shared ? 0 : remove_tree(dir);
out:
	free(dir);
	free(link);
	return ret;
}

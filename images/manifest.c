/* Reading an image's manifest.json for what a VM boots from it: the one
 * place that knows where the disk, kernel, initrd, kernel arguments and
 * login user are written, and what each may hold. */
#include <stdlib.h>
#include <string.h>

#include "images.h"
#include "store.h"

static char *opt_str(const json_t *m, const char *key)
{
	const char *v = json_string_value(json_object_get(m, key));

	return v ? xstrdup(v) : NULL;
}

int img_user_valid(const char *user)
{
	size_t n = user ? strlen(user) : 0;

	/* what useradd accepts by default, without the trailing '$' of
	 * machine accounts: nothing a shell, ssh or a config line would
	 * read as more than a name */
	if (n == 0 || n > 32 || !strchr("abcdefghijklmnopqrstuvwxyz_", user[0]))
		return 0;
	return strspn(user, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

int img_cmdline_valid(const char *cmdline, struct buf *why)
{
	size_t n = strlen(cmdline), i = 0;
	/* what str_escape() leaves as it is: printable UTF-8. A newline
	 * would end the arguments, an escape drive the terminal of whoever
	 * reads them; neither libvirt's XML nor a JSON manifest (whose
	 * strings are UTF-8) takes a control character or a stray byte */
	char *shown = str_escaped(cmdline);

	while (i < n && cmdline[i] == shown[i])
		i++;
	free(shown);
	if (i < n) {
		buf_addf(why, "has a control character or a byte that is not "
			 "UTF-8 (\\x%02x) at byte %zu: kernel arguments are "
			 "one line of printable text",
			 (unsigned char)cmdline[i], i);
		return 0;
	}
	if (n >= IMG_CMDLINE_MAX) {
		buf_addf(why, "is %zu bytes long: a kernel takes at most %d "
			 "(x86's COMMAND_LINE_SIZE, %d with its NUL)", n,
			 IMG_CMDLINE_MAX - 1, IMG_CMDLINE_MAX);
		return 0;
	}
	return 1;
}

static int take_file(const char *dir, const char *where, const char *key,
		     const json_t *f, struct img_boot *b)
{
	char **slot = NULL;

	if (strchr(key, '/') || !strcmp(key, "..") || !strcmp(key, "."))
		return errorf("%s: file name '%s' is not a plain name", where,
			      key);
	if (json_object_get(f, "format"))
		slot = &b->disk;
	else if (!strcmp(key, "vmlinuz"))
		slot = &b->kernel;
	else if (!strcmp(key, "initrd.img"))
		slot = &b->initrd;
	if (slot && *slot)
		return errorf("%s: names two disks", where);
	if (slot)
		*slot = xasprintf("%s/%s", dir, key);
	return 0;
}

int img_boot_parse(const char *dir, const json_t *m, const char *where,
		   struct img_boot *b)
{
	struct buf why = BUF_INIT;
	const char *key;
	json_t *f;
	int ret = -1;

	memset(b, 0, sizeof(*b));
	json_object_foreach(json_object_get(m, "files"), key, f)
		if (take_file(dir, where, key, f, b) < 0)
			goto out;
	if (!b->disk) {
		errorf("%s: names no disk (a file with a \"format\")", where);
		goto out;
	}
	b->cmdline = opt_str(m, "cmdline");
	b->user = opt_str(m, "user");
	if (b->user && !img_user_valid(b->user)) {
		errorf("%s: the login user is not a user name", where);
		goto out;
	}
	if (b->cmdline && !img_cmdline_valid(b->cmdline, &why)) {
		errorf("%s: the kernel command line %s", where, why.p);
		goto out;
	}
	ret = 0;
out:
	if (ret < 0)
		img_boot_free(b);
	buf_free(&why);
	return ret;
}

int img_boot_read(const char *dir, struct img_boot *b)
{
	char *mpath = xasprintf("%s/manifest.json", dir);
	json_t *m = NULL;
	int ret = -1;

	memset(b, 0, sizeof(*b));
	/* the store's one loader: bounded, says what is wrong where */
	if (img_manifest_load(mpath, NULL, &m) == 0)
		ret = img_boot_parse(dir, m, mpath, b);
	json_decref(m);
	free(mpath);
	return ret;
}

void img_boot_free(struct img_boot *b)
{
	free(b->disk);
	free(b->kernel);
	free(b->initrd);
	free(b->cmdline);
	free(b->user);
	memset(b, 0, sizeof(*b));
}

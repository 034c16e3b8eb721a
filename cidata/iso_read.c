/* Reading an ISO back with libcdio's libiso9660. */
#include <cdio/iso9660.h>
#include <cdio/logging.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cidata.h"

int cidata_is_volume_id(const char *volume_id)
{
	return volume_id && !strcasecmp(volume_id, "cidata");
}

/* libcdio logs warnings to stderr on its own; our errors say what failed. */
static void quiet_log(cdio_log_level_t level, const char *message)
{
	(void)level;
	(void)message;
}

/* Open with every extension, so Rock Ridge names and the Joliet label are
 * what we see, as on the guest. NULL having said why, unless quiet. */
static iso9660_t *open_iso_as(const char *path, int quiet)
{
	iso9660_t *iso;
	iso9660_stat_t *root;
	struct stat st;

	/* a FIFO would hold the open until a writer came; a device's size
	 * is no size to check the root against */
	if (stat(path, &st) < 0) {
		if (!quiet)
			error_errno("cannot read %s", path);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		if (!quiet)
			errorf("cannot read %s: not a file (an ISO is read "
			       "from a regular file)", path);
		return NULL;
	}
	cdio_log_set_handler(quiet_log);
	iso = iso9660_open_ext(path, ISO_EXTENSION_ALL);

	if (!iso) {
		if (!quiet)
			errorf("%s: not an ISO9660 image (or unreadable)",
			       path);
		return NULL;
	}
	/* libcdio allocates a directory's whole size (up to 4 GiB) before
	 * it reads it: a root that claims more than the file holds is
	 * refused first (found by fuzzing) */
	root = iso9660_ifs_stat(iso, "/");
	if (!root || root->size > (uint64_t)st.st_size) {
		if (!quiet)
			errorf("%s: the ISO9660 image's root directory runs "
			       "past its end (a damaged image?)", path);
		iso9660_close(iso);
		iso = NULL;
	}
	iso9660_stat_free(root);
	return iso;
}

static iso9660_t *open_iso(const char *path)
{
	return open_iso_as(path, 0);
}

/* Rock Ridge names are kept as written; plain ISO9660 names end in ";1"
 * and are upper-case, which we undo as Linux's isofs does. */
static char *entry_name(const iso9660_stat_t *st, uint8_t joliet)
{
	char *name = xmalloc(strlen(st->filename) + 1);

	/* libcdio's translation writes nothing, not even the NUL, for an
	 * empty name (a crafted ISO's directory record) */
	name[0] = '\0';
	if (st->rr.b3_rock == yep)
		memcpy(name, st->filename, strlen(st->filename) + 1);
	else
		iso9660_name_translate_ext(st->filename, name, joliet);
	return name;
}

/* iso's volume id and root files into l: -1 (nothing said, l empty)
 * when its root cannot be read. */
static int list_root(iso9660_t *iso, struct cidata_listing *l)
{
	CdioISO9660FileList_t *list;
	CdioListNode_t *node;
	char *vol = NULL;

	memset(l, 0, sizeof(*l));
	if (iso9660_ifs_get_volume_id(iso, &vol) && vol) {
		l->volume_id = xstrdup(vol);
		free(vol);
	} else {
		l->volume_id = xstrdup("");
	}
	list = iso9660_ifs_readdir(iso, "/");
	if (!list) {
		cidata_listing_free(l);
		return -1;
	}
	_CDIO_LIST_FOREACH(node, list) {
		iso9660_stat_t *st = _cdio_list_node_data(node);

		if (st->type != _STAT_FILE)
			continue;
		l->entries = xrealloc(l->entries,
				      (l->n + 1) * sizeof(*l->entries));
		l->entries[l->n].name = entry_name(st,
						   iso9660_ifs_get_joliet_level(iso));
		l->entries[l->n].size = st->size;
		l->n++;
	}
	iso9660_filelist_free(list);
	return 0;
}

int cidata_iso_list(const char *path, struct cidata_listing *l)
{
	iso9660_t *iso;
	int rc;

	memset(l, 0, sizeof(*l));
	iso = open_iso(path);
	if (!iso)
		return -1;
	rc = list_root(iso, l);
	iso9660_close(iso);
	if (rc < 0)
		return errorf("%s: cannot read the root directory", path);
	return 0;
}

void cidata_listing_free(struct cidata_listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->entries[i].name);
	free(l->entries);
	free(l->volume_id);
	memset(l, 0, sizeof(*l));
}

int cidata_iso_each(const char *path, const char *name,
		    int (*put)(const void *p, size_t n, void *arg), void *arg)
{
	iso9660_t *iso;
	iso9660_stat_t *st = NULL;
	char *file = xasprintf("/%s", name);
	char block[ISO_BLOCKSIZE];
	int ret = -1;

	iso = open_iso(path);
	if (!iso)
		goto out;
	st = iso9660_ifs_stat_translate(iso, file);
	if (!st || st->type != _STAT_FILE) {
		errorf("%s: no file named %s", path, name);
		goto out_stat;
	}
	/* a block at a time: a file may claim up to 4 GiB. off is 64 bits:
	 * past the last block of such a file, 32 wrap to 0 and read on */
	for (uint64_t off = 0; off < st->size; off += ISO_BLOCKSIZE) {
		size_t n = st->size - off < ISO_BLOCKSIZE ?
			(size_t)(st->size - off) : ISO_BLOCKSIZE;
		lsn_t i = (lsn_t)(off / ISO_BLOCKSIZE);

		if (iso9660_iso_seek_read(iso, block, st->lsn + i, 1) !=
		    ISO_BLOCKSIZE) {
			errorf("%s: cannot read %s", path, name);
			goto out_stat;
		}
		if (put(block, n, arg) < 0)
			goto out_stat;
	}
	ret = 0;
out_stat:
	iso9660_stat_free(st);
out:
	if (iso)
		iso9660_close(iso);
	free(file);
	return ret;
}

static int put_buf(const void *p, size_t n, void *arg)
{
	buf_add(arg, p, n);
	return 0;
}

int cidata_iso_read(const char *path, const char *name, struct buf *out)
{
	if (cidata_iso_each(path, name, put_buf, out) < 0)
		return -1;
	if (!out->p)
		buf_add(out, "", 0);
	return 0;
}

/* Whether root file f of iso holds f's bytes, no more. */
static int holds_file(iso9660_t *iso, const struct cidata_file *f)
{
	char *file = xasprintf("/%s", f->name);
	iso9660_stat_t *st = iso9660_ifs_stat_translate(iso, file);
	char block[ISO_BLOCKSIZE];
	int same = st && st->type == _STAT_FILE && st->size == f->len;

	for (uint64_t off = 0; same && off < f->len; off += ISO_BLOCKSIZE) {
		size_t n = f->len - off < ISO_BLOCKSIZE ?
			(size_t)(f->len - off) : ISO_BLOCKSIZE;
		lsn_t i = st->lsn + (lsn_t)(off / ISO_BLOCKSIZE);

		same = iso9660_iso_seek_read(iso, block, i, 1) ==
		       ISO_BLOCKSIZE && !memcmp(block, f->data + off, n);
	}
	iso9660_stat_free(st);
	free(file);
	return same;
}

int cidata_iso_holds(const char *path, const struct cidata_file *files,
		     size_t n, mode_t mode)
{
	struct cidata_listing l;
	iso9660_t *iso;
	struct stat st;
	int same;

	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & 07777) != mode)
		return 0;
	iso = open_iso_as(path, 1);
	if (!iso)
		return 0;
	/* the volume's name and its root's names, as a reader sees them */
	same = list_root(iso, &l) == 0 && cidata_is_volume_id(l.volume_id) &&
	       l.n == n;
	for (size_t i = 0; same && i < n; i++) {
		size_t k = 0;

		while (k < l.n && strcmp(l.entries[k].name, files[i].name))
			k++;
		same = k < l.n && holds_file(iso, &files[i]);
	}
	cidata_listing_free(&l);
	iso9660_close(iso);
	return same;
}

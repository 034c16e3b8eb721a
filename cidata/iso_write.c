/* Writing a cidata ISO9660 volume with libarchive. */
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cidata.h"

/*
 * Rock Ridge keeps the lower-case names and modes; Joliet serves readers
 * that skip Rock Ridge. The primary volume id is stored upper-case by
 * libarchive (ISO9660 d-characters); the Joliet label stays "cidata", which
 * is what blkid and so cloud-init report.
 */
static const char iso_options[] =
	"iso9660:volume-id=cidata,iso9660:joliet,iso9660:rockridge,"
	"iso9660:!pad";

/* What went wrong in a, with the system's reason when it has one:
 * libarchive's "Write error" alone does not say the disk is full. The
 * caller frees. */
static char *why(struct archive *a)
{
	const char *s = archive_error_string(a);
	int e = archive_errno(a);

	if (!s)
		s = "an unknown error";
	if (e > 0 && !strstr(s, strerror(e)))
		return xasprintf("%s: %s", s, strerror(e));
	return xstrdup(s);
}

static int add_file(struct archive *a, const struct cidata_file *f,
		    time_t now)
{
	struct archive_entry *e = archive_entry_new();
	int ret = 0;

	archive_entry_set_pathname(e, f->name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_mtime(e, now, 0);
	archive_entry_set_size(e, (la_int64_t)f->len);
	if (archive_write_header(a, e) != ARCHIVE_OK ||
	    (f->len > 0 &&
	     archive_write_data(a, f->data, f->len) != (la_ssize_t)f->len)) {
		char *w = why(a);

		ret = errorf("writing %s into the ISO: %s", f->name, w);
		free(w);
	}
	archive_entry_free(e);
	return ret;
}

int cidata_write_iso(const char *path, const struct cidata_file *files,
		     size_t n, mode_t mode)
{
	struct archive *a = NULL;
	struct tmpfile t;
	time_t now = time(NULL);
	int ret = -1;

	if (tmpfile_open_out(&t, path, mode) < 0)
		return -1;
	a = archive_write_new();
	if (!a) {
		errorf("cannot start the ISO writer");
		goto out;
	}
	if (archive_write_set_format_iso9660(a) != ARCHIVE_OK ||
	    archive_write_set_options(a, iso_options) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open_fd(a, t.fd) != ARCHIVE_OK) {
		errorf("cannot start the ISO writer: %s", archive_error_string(a));
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (add_file(a, &files[i], now) < 0)
			goto out;
	if (archive_write_close(a) != ARCHIVE_OK) {
		char *w = why(a);

		errorf("cannot finish %s: %s", path, w);
		free(w);
		goto out;
	}
	ret = 0;
out:
	if (a)
		archive_write_free(a);
	if (ret == 0)
		return tmpfile_commit(&t);
	tmpfile_abort(&t);
	return ret;
}

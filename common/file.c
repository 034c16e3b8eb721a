/* Reading files, writing them whole, and replacing them atomically. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

static int read_file_1(const char *path, struct buf *b, int quiet)
{
	char chunk[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret = -1;

	if (fd < 0)
		return quiet ? -1 : error_errno("cannot read %s", path);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (!quiet)
				error_errno("cannot read %s", path);
			goto out;
		}
		if (n == 0)
			break;
		buf_add(b, chunk, (size_t)n);
	}
	ret = 0;
out:
	close(fd);
	if (!b->p)
		buf_add(b, "", 0);
	return ret;
}

int read_file(const char *path, struct buf *b)
{
	return read_file_1(path, b, 0);
}

int read_file_quiet(const char *path, struct buf *b)
{
	return read_file_1(path, b, 1);
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The directory part of path, newly allocated ("." when there is none). */
static char *dir_of(const char *path)
{
	char *copy = xstrdup(path);
	char *dir = xstrdup(dirname(copy));

	free(copy);
	return dir;
}

static int fsync_dir(const char *path)
{
	char *dir = dir_of(path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0 || fsync(fd) < 0)
		ret = error_errno("cannot sync directory %s", dir);
	if (fd >= 0)
		close(fd);
	free(dir);
	return ret;
}

int tmpfile_open(struct tmpfile *t, const char *path, mode_t mode)
{
	char *copy = xstrdup(path);
	char *dir = dir_of(path);

	t->path = xstrdup(path);
	t->tmp = xasprintf("%s/.%s.XXXXXX", dir, basename(copy));
	free(copy);
	free(dir);
	t->fd = mkostemp(t->tmp, O_CLOEXEC);
	if (t->fd < 0) {
		error_errno("cannot write %s (creating a file in its "
			    "directory failed)", path);
		free(t->tmp);
		free(t->path);
		t->tmp = t->path = NULL;
		return -1;
	}
	if (fchmod(t->fd, mode) < 0) {
		error_errno("cannot set the mode of %s", t->tmp);
		tmpfile_abort(t);
		return -1;
	}
	return 0;
}

void tmpfile_abort(struct tmpfile *t)
{
	if (t->fd >= 0)
		close(t->fd);
	if (t->tmp)
		unlink(t->tmp);
	free(t->tmp);
	free(t->path);
	t->tmp = t->path = NULL;
	t->fd = -1;
}

int tmpfile_commit(struct tmpfile *t)
{
	int fd = t->fd;

	t->fd = -1;
	if (fsync(fd) < 0) {
		error_errno("cannot write %s", t->path);
		close(fd);
		goto fail;
	}
	if (close(fd) < 0) {
		error_errno("cannot write %s", t->path);
		goto fail;
	}
	if (rename(t->tmp, t->path) < 0) {
		error_errno("cannot replace %s", t->path);
		goto fail;
	}
	free(t->tmp);
	t->tmp = NULL;
	if (fsync_dir(t->path) < 0) {
		free(t->path);
		t->path = NULL;
		return -1;
	}
	free(t->path);
	t->path = NULL;
	return 0;
fail:
	tmpfile_abort(t);
	return -1;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	struct tmpfile t;

	if (tmpfile_open(&t, path, mode) < 0)
		return -1;
	if (write_all(t.fd, data, len) < 0) {
		error_errno("cannot write %s", path);
		tmpfile_abort(&t);
		return -1;
	}
	return tmpfile_commit(&t);
}

int mkdir_p(const char *path, mode_t mode)
{
	char *p = xstrdup(path);
	int ret = 0;

	for (char *s = p + 1;; s++) {
		char c = *s;

		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			ret = error_errno("cannot create directory %s", p);
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return ret;
}

static int remove_entry(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP ? rmdir(path) : unlink(path))
		return error_errno("cannot remove %s", path);
	return 0;
}

int remove_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : error_errno("cannot remove %s", path);
	/* FTW_PHYS: a symlink is removed, never followed */
	return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) ? -1 : 0;
}

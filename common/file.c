/* Reading files, writing them whole, and replacing them atomically. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <libgen.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common.h"

/* Read fd to its end into b, refusing (EFBIG) past max bytes. */
static int read_fd_max(int fd, struct buf *b, size_t max)
{
	char chunk[65536];
	size_t got = 0;

	for (;;) {
		size_t left = max - got; /* one more byte tells "too big" */
		size_t want = left < sizeof(chunk) ? left + 1 : sizeof(chunk);
		ssize_t n = read(fd, chunk, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		got += (size_t)n;
		if (got > max) {
			errno = EFBIG;
			return -1;
		}
		buf_add(b, chunk, (size_t)n);
	}
}

/* A size for a message: "16 MiB", "512 KiB" or "100 bytes". */
static char *size_words(size_t n)
{
	if (n >= (1u << 20) && n % (1u << 20) == 0)
		return xasprintf("%zu MiB", n >> 20);
	if (n >= 1024 && n % 1024 == 0)
		return xasprintf("%zu KiB", n >> 10);
	return xasprintf("%zu bytes", n);
}

/* A read that failed leaves b as it came: had bytes long, or not
 * allocated when it had none (so a caller that returns at once leaks
 * nothing). errno is kept. */
static void read_undone(struct buf *b, size_t had)
{
	int saved = errno;

	if (!had) {
		buf_free(b);
	} else {
		b->len = had;
		b->p[had] = '\0';
	}
	errno = saved;
}

static int read_file_1(const char *path, struct buf *b, int quiet,
		       size_t max)
{
	/* a quiet read is of nook's own state (a pid file, a log) or
	 * /proc: a FIFO put in its place must not hang the command */
	int fd = open(path, O_RDONLY | O_CLOEXEC | (quiet ? O_NONBLOCK : 0));
	size_t had = b->len;
	struct stat st;
	int ret, saved;

	if (fd < 0)
		return quiet ? -1 : error_errno("cannot read %s", path);
	if (quiet && fstat(fd, &st) < 0) {
		ret = -1;
	} else if (quiet && !S_ISREG(st.st_mode)) {
		ret = -1;
		errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
	} else {
		ret = read_fd_max(fd, b, max);
	}
	saved = errno;
	close(fd);
	errno = saved;
	if (ret == 0) {
		if (!b->p)
			buf_add(b, "", 0);
		return 0;
	}
	read_undone(b, had);
	if (quiet)
		return -1;
	if (errno == EFBIG) {
		char *words = size_words(max);

		errorf("cannot read %s: it is larger than %s", path, words);
		free(words);
		errno = EFBIG;
		return -1;
	}
	return error_errno("cannot read %s", path);
}

int read_file_max(const char *path, struct buf *b, size_t max)
{
	return read_file_1(path, b, 0, max);
}

int read_file(const char *path, struct buf *b)
{
	return read_file_1(path, b, 0, READ_FILE_MAX);
}

int read_file_quiet(const char *path, struct buf *b)
{
	return read_file_1(path, b, 1, READ_FILE_MAX);
}

long long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

int read_file_tail(const char *path, long long from, size_t max,
		   struct buf *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), saved;
	size_t had = b->len;
	char chunk[8192];
	struct stat st;
	off_t at, end;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		goto fail;
	end = st.st_size;
	at = from > 0 ? (off_t)from : 0;
	if (end - at > (off_t)max)
		at = end - (off_t)max;
	while (at < end) {
		size_t n = (size_t)(end - at) < sizeof(chunk) ?
			   (size_t)(end - at) : sizeof(chunk);
		ssize_t got = pread(fd, chunk, n, at);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			goto fail;
		if (got == 0)
			break; /* cut short meanwhile */
		buf_add(b, chunk, (size_t)got);
		at += got;
	}
	close(fd);
	if (!b->p)
		buf_add(b, "", 0);
	return 0;
fail:
	read_undone(b, had);
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* What a file that is not a regular one is, for a message. */
static const char *file_kind(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m) || S_ISBLK(m))
		return "a device";
	return "not a regular file";
}

int read_file_regular(const char *path, struct buf *b, size_t max)
{
	/* O_NONBLOCK: opening a FIFO with no writer must not wait */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), ret;

	if (fd < 0)
		return error_errno("cannot read %s", path);
	ret = read_fd_regular(fd, path, b, max);
	close(fd);
	return ret;
}

/* fd's O_NONBLOCK (set to open a FIFO without a wait) cleared for a
 * read that waits. 0, or -1 (errno). */
static int clear_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

int read_fd_regular(int fd, const char *path, struct buf *b, size_t max)
{
	size_t had = b->len;
	struct stat st;
	int ret = -1;

	if (fstat(fd, &st) < 0)
		error_errno("cannot read %s", path);
	else if (!S_ISREG(st.st_mode))
		errorf("cannot read %s: it is %s, not a file", path,
		       file_kind(st.st_mode));
	else if (clear_nonblock(fd) < 0)
		error_errno("cannot read %s", path);
	else if (read_fd_max(fd, b, max) == 0)
		ret = 0;
	else if (errno == EFBIG) {
		char *words = size_words(max);

		errorf("cannot read %s: it is larger than %s", path, words);
		free(words);
	} else {
		error_errno("cannot read %s", path);
	}
	if (ret < 0)
		read_undone(b, had);
	else if (!b->p)
		buf_add(b, "", 0);
	return ret;
}

/* Wait until fd (non-blocking: ours, or one a parent shares with us, its
 * flag not ours to clear) takes more. 0, or -1 (errno). */
static int wait_writable(int fd)
{
	struct pollfd p = { fd, POLLOUT, 0 };

	while (poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && wait_writable(fd) == 0)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int unix_connect(const char *path, int flags)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	int fd, e;

	if (len >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, len + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
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

/* Open a new temporary file beside path, to be renamed over it. */
static int open_beside(struct tmpfile *t, const char *path, mode_t mode)
{
	char *copy = xstrdup(path);
	char *dir = dir_of(path);
	char *prefix = xasprintf(".%s.", basename(copy));

	/* what a killed writer of path left here goes first */
	tmp_sweep(dir, prefix);
	t->path = xstrdup(path);
	t->tmp = xasprintf("%s/%s%d-XXXXXX", dir, prefix, (int)getpid());
	free(prefix);
	free(copy);
	free(dir);
	t->fd = tmp_mkostemp(t->tmp, O_CLOEXEC);
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

/* Open a character device or a FIFO to write into it: renaming a file
 * over /dev/null would break it for everyone. */
static int open_into(struct tmpfile *t, const char *path)
{
	t->fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
	if (t->fd < 0)
		return error_errno("cannot write %s", path);
	t->path = xstrdup(path);
	t->direct = 1;
	return 0;
}

static int tmpfile_stdout(struct tmpfile *t)
{
	t->path = t->tmp = NULL;
	t->direct = 0;
	t->fd = -1;
	if (isatty(STDOUT_FILENO))
		return errorf("standard output is a terminal: redirect it to a "
			      "file or a pipe, or give a file's name");
	/* a copy: the commit closes it, and stdout stays for messages */
	t->fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	if (t->fd < 0)
		return error_errno("cannot write standard output");
	t->path = xstrdup("standard output");
	t->direct = 1;
	return 0;
}

int tmpfile_open_out(struct tmpfile *t, const char *path, mode_t mode)
{
	return strcmp(path, "-") ? tmpfile_open(t, path, mode)
				 : tmpfile_stdout(t);
}

/* "" or a name that ends in '/' (a directory's): no file's name. */
static int names_no_file(const char *path)
{
	size_t n = strlen(path);

	return !n || path[n - 1] == '/';
}

int tmpfile_open(struct tmpfile *t, const char *path, mode_t mode)
{
	struct stat st, lst;
	char *real;
	int ret;

	t->path = t->tmp = NULL;
	t->fd = -1;
	t->direct = 0;
	/* such a name, missing, is said so at once: not once the whole
	 * file is written beside it, by a rename that cannot be */
	if (stat(path, &st) < 0)
		return errno == ENOENT && !names_no_file(path) ?
		       open_beside(t, path, mode) :
		       error_errno("cannot write %s", path);
	if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))
		return open_into(t, path);
	if (S_ISDIR(st.st_mode))
		return errorf("cannot write %s: it is a directory", path);
	if (!S_ISREG(st.st_mode))
		return errorf("cannot write %s: it is a %s, not a file", path,
			      S_ISBLK(st.st_mode) ? "block device" : "socket");
	if (lstat(path, &lst) < 0 || !S_ISLNK(lst.st_mode))
		return open_beside(t, path, mode);
	real = realpath(path, NULL);
	if (!real)
		return error_errno("cannot write %s", path);
	ret = open_beside(t, real, mode);
	free(real);
	return ret;
}

void tmpfile_abort(struct tmpfile *t)
{
	if (t->fd >= 0)
		close(t->fd);
	if (t->tmp) {
		unlink(t->tmp);
		tmp_unregister(t->tmp);
	}
	free(t->tmp);
	free(t->path);
	t->tmp = t->path = NULL;
	t->fd = -1;
	t->direct = 0;
}

/* Finish writing into a device or FIFO: nothing to sync or rename. */
static int commit_direct(struct tmpfile *t)
{
	int ret = close(t->fd) < 0 ? error_errno("cannot write %s", t->path)
				   : 0;

	t->fd = -1;
	free(t->path);
	t->path = NULL;
	t->direct = 0;
	return ret;
}

int tmpfile_commit(struct tmpfile *t)
{
	int fd = t->fd;

	if (t->direct)
		return commit_direct(t);
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
	tmp_unregister(t->tmp);
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

/* Whether path (a symlink followed, as tmpfile_open() follows it) is a
 * regular file of ours with this mode that holds len bytes of data. */
static int holds_already(const char *path, const void *data, size_t len,
			 mode_t mode)
{
	struct buf b = BUF_INIT;
	struct stat st;
	int same;

	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & 07777) != mode || st.st_uid != geteuid() ||
	    st.st_size < 0 || (size_t)st.st_size != len)
		return 0;
	if (!len)
		return 1;
	same = read_file_quiet(path, &b) == 0 && b.len == len &&
	       !memcmp(b.p, data, len);
	buf_free(&b);
	return same;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	struct tmpfile t;

	/* what did not change is not written again: a write needs room
	 * for a second copy, which a nearly full disk may not have */
	if (holds_already(path, data, len, mode))
		return 0;
	if (tmpfile_open(&t, path, mode) < 0)
		return -1;
	if (write_all(t.fd, data, len) < 0) {
		error_errno("cannot write %s", path);
		tmpfile_abort(&t);
		return -1;
	}
	return tmpfile_commit(&t);
}

static int flock_wait_op(int fd, int op, int ms)
{
	long long deadline = mono_ms() + ms;

	while (flock(fd, op | LOCK_NB) < 0) {
		long long left = deadline - mono_ms();

		if (errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		if (left <= 0) {
			errno = EWOULDBLOCK;
			return -1;
		}
		sleep_ms(left < 20 ? (int)left : 20);
	}
	return 0;
}

int flock_wait(int fd, int ms)
{
	return flock_wait_op(fd, LOCK_EX, ms);
}

int flock_wait_shared(int fd, int ms)
{
	return flock_wait_op(fd, LOCK_SH, ms);
}

void lock_say(int fd, const char *doing)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "%s %d\n", doing,
			 (int)getpid());

	if (n < 0 || (size_t)n >= sizeof(line) || ftruncate(fd, 0) < 0)
		return;
	/* (a write cut short says less: lock_holder_said() reads no pid) */
	if (pwrite(fd, line, (size_t)n, 0) != n)
		return;
}

pid_t lock_holder_said(const char *path, char *doing, size_t n)
{
	struct buf b = BUF_INIT;
	size_t w;
	char *end;
	long pid = 0;

	if (n)
		doing[0] = '\0';
	if (read_file_quiet(path, &b) < 0 || !b.len) {
		buf_free(&b); /* an empty file's read holds a buffer still */
		return 0;
	}
	w = strcspn(b.p, " \n");
	if (b.p[w] == ' ' && w < n) {
		errno = 0;
		pid = strtol(b.p + w + 1, &end, 10);
		if (errno || *end != '\n' || pid <= 0 || pid > INT32_MAX ||
		    (kill((pid_t)pid, 0) < 0 && errno != EPERM))
			pid = 0;
	}
	if (pid) {
		memcpy(doing, b.p, w);
		doing[w] = '\0';
	}
	buf_free(&b);
	return (pid_t)pid;
}

int copy_file(const char *src, const char *dst, mode_t mode)
{
	char chunk[65536];
	int in, out, ret = 0;
	ssize_t n;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return error_errno("cannot read %s", src);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (out < 0) {
		close(in);
		return error_errno("cannot create %s", dst);
	}
	while ((n = read(in, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = error_errno("cannot read %s", src);
			break;
		}
		if (write_all(out, chunk, (size_t)n) < 0) {
			ret = error_errno("cannot write %s", dst);
			break;
		}
	}
	close(in);
	if (ret == 0 && fsync(out) < 0)
		ret = error_errno("cannot write %s", dst);
	if (close(out) < 0 && ret == 0)
		ret = error_errno("cannot write %s", dst);
	if (ret < 0)
		unlink(dst);
	return ret;
}

int mkdir_each(const char *path, mode_t mode, mkdir_step_fn step, void *ctx)
{
	char *p;
	int ret = 0;

	if (!*path)
		return errorf("an empty directory name");
	p = xstrdup(path);
	for (char *s = p + 1;; s++) {
		char c = *s;
		sigset_t was;
		int made, e;

		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		/* a directory made is the step's before a signal can come;
		 * one found is checked with the signals let in (a check may
		 * take a while: a walk of the users) */
		sig_hold(&was);
		made = mkdir(p, mode) == 0;
		e = errno;
		if (!made)
			sig_release(&was);
		errno = e;
		if (!made && e != EEXIST)
			ret = error_errno("cannot create directory %s", p);
		else if (step)
			ret = step(p, made, ctx);
		if (made)
			sig_release(&was);
		*s = c;
		if (ret < 0 || c == '\0')
			break;
	}
	free(p);
	return ret;
}

int mkdir_p(const char *path, mode_t mode)
{
	return mkdir_each(path, mode, NULL, NULL);
}

/* Whether the group of st has one member, st's owner: a user private
 * group, which Debian's OpenSSH lets write where StrictModes looks. */
static int group_is_owner(const struct stat *st)
{
	struct group *gr = getgrgid(st->st_gid);
	struct passwd *pw;
	int ok = gr != NULL, members = 0;
	char *owner = NULL;

	for (char **m = gr ? gr->gr_mem : NULL; m && *m; m++) {
		if (!owner) {
			pw = getpwuid(st->st_uid);
			owner = xstrdup(pw ? pw->pw_name : "");
		}
		if (strcmp(*m, owner))
			ok = 0;
		members++;
	}
	/* and the users whose primary group it is */
	setpwent();
	for (;;) {
		pw = ok ? getpwent() : NULL;
		if (!pw)
			break;
		if (pw->pw_gid == st->st_gid) {
			ok = pw->pw_uid == st->st_uid;
			members++;
		}
	}
	endpwent();
	free(owner);
	return ok && members > 0;
}

/* Whether path has an access ACL beyond its mode bits: then its group
 * bits are the ACL's mask, which may let named users write. */
static int has_acl(const char *path)
{
	return lgetxattr(path, "system.posix_acl_access", NULL, 0) > 0;
}

/* Whether directory st (at p) lets others replace what it holds: not
 * sticky, and writable by anyone, or with group, by its group (a user
 * private group aside, as Debian's OpenSSH has StrictModes). */
static int may_swap(const char *p, const struct stat *st, int group)
{
	if (!S_ISDIR(st->st_mode) || (st->st_mode & S_ISVTX))
		return 0;
	if (st->st_mode & S_IWOTH)
		return 1;
	return group && (st->st_mode & S_IWGRP) &&
	       (has_acl(p) || !group_is_owner(st));
}

/* may_swap()'s finding in words, with what to do (the caller frees). */
static char *swap_why(const char *p, const struct stat *st, int group)
{
	int all = (st->st_mode & S_IWOTH) != 0;

	return xasprintf("%s has mode %04o: %s may replace what it holds; "
			 "chmod %s-w it, or make it sticky", p,
			 (unsigned)st->st_mode & 07777, all ? "anyone" :
			 "its group (or a user its ACL names)",
			 group ? "go" : "o");
}

/* Each of path and the directories above it, as lstat sees them: none
 * that may_swap() by all (strict: by its group too), none owned by
 * another user than us or root; strict, also each a directory; a symlink
 * only needs a trusted owner (nobody else can point it elsewhere), its
 * target being walked by the caller. Not strict, one that cannot be
 * looked at is left for the write that follows to say. path is
 * absolute. NULL, or why not (the caller frees). */
static char *walk_up(const char *path, int strict)
{
	char *p = xstrdup(path), *why = NULL;

	for (;;) {
		struct stat st;
		int theirs;
		char *slash;

		if (lstat(p, &st) < 0) {
			if (strict)
				why = xasprintf("cannot use %s: %s", p,
						strerror(errno));
			break;
		}
		theirs = st.st_uid != geteuid() && st.st_uid != 0;
		if (strict && theirs)
			why = xasprintf("%s belongs to user %u, not to you: "
					"another user may have made it to "
					"reach your VMs' sockets; remove it, "
					"or set XDG_RUNTIME_DIR (or NOOK_HOME) "
					"to a directory of yours", p,
					(unsigned)st.st_uid);
		else if (theirs)
			why = xasprintf("%s belongs to user %u, who may "
					"replace what it holds", p,
					(unsigned)st.st_uid);
		else if (may_swap(p, &st, strict))
			why = swap_why(p, &st, strict);
		else if (strict && !S_ISDIR(st.st_mode) &&
			 !S_ISLNK(st.st_mode))
			why = xasprintf("%s is not a directory", p);
		if (why || !strcmp(p, "/"))
			break;
		slash = strrchr(p, '/');
		slash[slash == p] = '\0';
	}
	free(p);
	return why;
}

/* walk_up() the part of absolute path that exists already, as given
 * and where it leads: NULL, or why not (the caller frees). */
static char *walk_why(const char *path, int strict)
{
	char *p = xstrdup(path), *real, *why;
	struct stat st;

	while (lstat(p, &st) < 0 && errno == ENOENT && strcmp(p, "/")) {
		char *slash = strrchr(p, '/');

		slash[slash == p] = '\0';
	}
	real = realpath(p, NULL);
	if (real)
		why = walk_up(p, strict);
	else
		why = strict ? xasprintf("cannot use %s: %s", p,
					 strerror(errno)) : NULL;
	if (!why && real)
		why = walk_up(real, strict);
	free(real);
	free(p);
	return why;
}

static char *private_why(const char *path)
{
	return walk_why(path, 1);
}

int path_unswappable(const char *path, const char *what)
{
	char *abs = path_absolute(path), *why;

	if (!abs)
		return error_errno("%s: cannot tell the current directory",
				   path);
	why = walk_why(abs, 0);
	free(abs);
	if (!why)
		return 0;
	errorf("%s: another user could swap %s for one of theirs: %s, or "
	       "write %s elsewhere", path, what, why, what);
	free(why);
	return -1;
}

int path_private_ok(const char *path, int quiet)
{
	char *why = private_why(path);

	if (why && !quiet)
		errorf("%s", why);
	free(why);
	return why ? -1 : 0;
}

/* mkdir_each()'s step for mkdir_private(whole): made or found, dir
 * gets the same checks. */
static int private_step(const char *dir, int made, void *whole)
{
	char *why = private_why(dir);

	(void)made;
	if (!why)
		return 0;
	errorf("%s (it is on the way to %s)", why, (const char *)whole);
	free(why);
	return -1;
}

int mkdir_private(const char *path)
{
	char *real;
	struct stat st;
	int ret = 0;

	if (path[0] != '/')
		return errorf("%s: not an absolute path", path);
	if (mkdir_each(path, 0700, private_step, (void *)path) < 0)
		return -1;
	real = realpath(path, NULL);
	if (!real)
		return error_errno("cannot use %s", path);
	if (stat(real, &st) == 0 && (st.st_mode & 077)) {
		if (st.st_uid != geteuid())
			ret = errorf("%s has mode %04o and is not yours to "
				     "change: pick a directory of your own",
				     real, (unsigned)st.st_mode & 07777);
		else if (chmod(real, 0700) < 0)
			ret = error_errno("chmod 0700 %s", real);
	}
	free(real);
	return ret;
}

char *path_absolute(const char *path)
{
	char *cwd, *abs;

	if (path[0] == '/')
		return xstrdup(path);
	cwd = getcwd(NULL, 0);
	if (!cwd)
		return NULL;
	abs = xasprintf("%s/%s", cwd, path);
	free(cwd);
	return abs;
}

int path_under(const char *root, const char *real)
{
	size_t n = strlen(root);

	if (!strcmp(root, "/"))
		return 1;
	return !strncmp(real, root, n) && (real[n] == '\0' || real[n] == '/');
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

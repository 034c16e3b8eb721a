/* Unit tests for common/: vectors, buffers, files, children, dirs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "testutil.h"

static void test_strvec(void **state)
{
	struct strvec sv = STRVEC_INIT;

	(void)state;
	for (int i = 0; i < 20; i++)
		strvec_pushf(&sv, "arg%d", i);
	strvec_push(&sv, "with space");
	assert_int_equal(sv.n, 21);
	assert_string_equal(sv.v[0], "arg0");
	assert_string_equal(sv.v[19], "arg19");
	assert_string_equal(sv.v[20], "with space");
	assert_null(sv.v[21]);
	strvec_clear(&sv);
	assert_null(sv.v);
	assert_int_equal(sv.n, 0);
	strvec_clear(&sv); /* clearing twice is fine */
}

static void test_buf(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	buf_adds(&b, "a");
	buf_addf(&b, "%d-%s", 42, "x");
	buf_add(&b, "\0z", 2);
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.p, "a42-x\0z", 7);
	assert_int_equal(b.p[7], '\0');
	buf_free(&b);
	assert_null(b.p);
}

static void test_atomic_write(void **state)
{
	char *dir = make_tmpdir();
	char *path = xasprintf("%s/state.json", dir);
	struct buf b = BUF_INIT;
	struct stat st;

	(void)state;
	assert_int_equal(write_file_atomic(path, "one", 3, 0600), 0);
	assert_int_equal(write_file_atomic(path, "second", 6, 0600), 0);
	assert_int_equal(read_file(path, &b), 0);
	assert_string_equal(b.p, "second");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(count_entries(dir), 1); /* no temporary file left */
	buf_free(&b);
	free(path);
	remove_tree(dir);
	free(dir);
}

/* The same bytes with the same mode: the file is left alone (no second
 * copy needs room); other bytes or another mode: replaced. */
static void test_atomic_write_same(void **state)
{
	char *dir = make_tmpdir();
	char *path = xasprintf("%s/known_hosts", dir);
	struct stat a, b;

	(void)state;
	assert_int_equal(write_file_atomic(path, "line\n", 5, 0600), 0);
	assert_int_equal(stat(path, &a), 0);
	assert_int_equal(write_file_atomic(path, "line\n", 5, 0600), 0);
	assert_int_equal(stat(path, &b), 0);
	assert_true(a.st_ino == b.st_ino);
	assert_int_equal(write_file_atomic(path, "line\n", 5, 0644), 0);
	assert_int_equal(stat(path, &a), 0);
	assert_true(a.st_ino != b.st_ino);
	assert_int_equal(a.st_mode & 0777, 0644);
	assert_int_equal(write_file_atomic(path, "lime\n", 5, 0644), 0);
	assert_int_equal(stat(path, &b), 0);
	assert_true(a.st_ino != b.st_ino);
	/* an empty file too */
	assert_int_equal(write_file_atomic(path, "", 0, 0644), 0);
	assert_int_equal(stat(path, &a), 0);
	assert_int_equal(write_file_atomic(path, "", 0, 0644), 0);
	assert_int_equal(stat(path, &b), 0);
	assert_true(a.st_ino == b.st_ino);
	assert_int_equal(count_entries(dir), 1);
	free(path);
	remove_tree(dir);
	free(dir);
}

static void test_tmpfile_abort_keeps_old(void **state)
{
	char *dir = make_tmpdir();
	char *path = xasprintf("%s/out", dir);
	struct tmpfile t;
	struct buf b = BUF_INIT;

	(void)state;
	assert_int_equal(write_file_atomic(path, "old", 3, 0644), 0);
	assert_int_equal(tmpfile_open(&t, path, 0644), 0);
	assert_int_equal(write_all(t.fd, "new", 3), 0);
	tmpfile_abort(&t);
	assert_null(t.tmp);
	assert_int_equal(read_file(path, &b), 0);
	assert_string_equal(b.p, "old");
	assert_int_equal(count_entries(dir), 1);
	buf_free(&b);
	free(path);
	remove_tree(dir);
	free(dir);
}

static void test_atomic_write_missing_dir(void **state)
{
	char *dir = make_tmpdir();
	char *path = xasprintf("%s/nope/out", dir);
	char *err;

	(void)state;
	stderr_begin();
	assert_int_equal(write_file_atomic(path, "x", 1, 0644), -1);
	err = stderr_end();
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));
	assert_int_equal(count_entries(dir), 0);
	free(err);
	free(path);
	remove_tree(dir);
	free(dir);
}

static void test_read_file_missing(void **state)
{
	struct buf b = BUF_INIT;
	char *err;

	(void)state;
	stderr_begin();
	assert_int_equal(read_file("/nonexistent/file", &b), -1);
	err = stderr_end();
	assert_string_equal(err, "nook: cannot read /nonexistent/file: "
			    "No such file or directory\n");
	free(err);
	buf_free(&b);
}

/* A file that never ends (/dev/zero) is refused at the bound, not read
 * until the allocator gives up; the bound itself is inclusive. */
static void test_read_file_max(void **state)
{
	char *dir = make_tmpdir(), *path = xasprintf("%s/f", dir), *err;
	struct buf b = BUF_INIT;

	(void)state;
	stderr_begin();
	assert_int_equal(read_file_max("/dev/zero", &b, 100000), -1);
	assert_int_equal(errno, EFBIG);
	err = stderr_end();
	assert_string_equal(err, "nook: cannot read /dev/zero: it is larger "
			    "than 100000 bytes\n");
	free(err);
	assert_true(b.len <= 100000);
	buf_free(&b);
	assert_int_equal(write_file_atomic(path, "12345", 5, 0644), 0);
	assert_int_equal(read_file_max(path, &b, 5), 0);
	assert_string_equal(b.p, "12345");
	buf_free(&b);
	stderr_begin();
	assert_int_equal(read_file_max(path, &b, 4), -1);
	/* a quiet read is of regular files only, and bounded too */
	assert_int_equal(read_file_quiet("/dev/zero", &b), -1);
	assert_int_equal(errno, EINVAL);
	{
		int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);

		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, (off_t)READ_FILE_MAX + 1), 0);
		close(fd);
		assert_int_equal(read_file_quiet(path, &b), -1);
		assert_int_equal(errno, EFBIG);
	}
	err = stderr_end();
	assert_non_null(strstr(err, "larger than 4 bytes"));
	free(err);
	buf_free(&b);
	remove_tree(dir);
	free(dir);
	free(path);
}

/* A log's part from an offset, or its end when that is more than max:
 * appended, past what read_file() takes too (a sparse 65 MiB file). */
static void test_read_file_tail(void **state)
{
	char *dir = make_tmpdir(), *path = xasprintf("%s/log", dir);
	struct buf b = BUF_INIT;
	int fd;

	(void)state;
	assert_int_equal(read_file_tail(path, 0, 10, &b), -1);
	assert_int_equal(errno, ENOENT);
	assert_null(b.p);
	assert_int_equal(write_file_atomic(path, "0123456789", 10, 0644), 0);
	assert_int_equal(read_file_tail(path, 0, 100, &b), 0);
	assert_string_equal(b.p, "0123456789");
	buf_free(&b);
	assert_int_equal(read_file_tail(path, 3, 100, &b), 0);
	assert_string_equal(b.p, "3456789");
	buf_free(&b);
	assert_int_equal(read_file_tail(path, 3, 4, &b), 0);
	assert_string_equal(b.p, "6789");
	buf_free(&b);
	/* from at or past the end: nothing, an empty string */
	assert_int_equal(read_file_tail(path, 10, 4, &b), 0);
	assert_string_equal(b.p, "");
	assert_int_equal(read_file_tail(path, 99, 4, &b), 0);
	assert_string_equal(b.p, "");
	/* appended to what b held */
	buf_adds(&b, "x:");
	assert_int_equal(read_file_tail(path, 8, 4, &b), 0);
	assert_string_equal(b.p, "x:89");
	buf_free(&b);
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)65 << 20), 0);
	assert_int_equal(pwrite(fd, "the end\n", 8, (off_t)65 << 20), 8);
	close(fd);
	assert_int_equal(read_file_quiet(path, &b), -1);
	assert_int_equal(read_file_tail(path, 0, 8, &b), 0);
	assert_string_equal(b.p, "the end\n");
	buf_free(&b);
	remove_tree(dir);
	free(dir);
	free(path);
}

/* A read that fails once the file is open (a directory: EISDIR; past the
 * bound: EFBIG) leaves the buffer as it came: nothing to free when it
 * was empty, its old text when it was not. */
static void test_read_file_failed_leaves_buffer(void **state)
{
	char *dir = make_tmpdir(), *path = xasprintf("%s/f", dir);
	struct buf b = BUF_INIT;

	(void)state;
	assert_int_equal(read_file_quiet(dir, &b), -1);
	assert_int_equal(errno, EISDIR);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	assert_int_equal(write_file_atomic(path, "12345", 5, 0644), 0);
	assert_int_equal(read_file_quiet(path, &b), 0);
	b.len = 0; /* allocated, empty: as a caller reusing it has it */
	assert_int_equal(read_file_quiet(dir, &b), -1);
	assert_null(b.p);
	buf_adds(&b, "kept");
	stderr_begin();
	assert_int_equal(read_file_max(path, &b, 4), -1);
	assert_int_equal(errno, EFBIG);
	assert_string_equal(b.p, "kept");
	assert_int_equal(b.len, 4);
	assert_int_equal(read_file_regular(dir, &b, 100), -1);
	free(stderr_end());
	assert_string_equal(b.p, "kept");
	buf_free(&b);
	remove_tree(dir);
	free(dir);
	free(path);
}

/* Read a FIFO to its end in a child, into out; returns the child. */
static pid_t drain_fifo(const char *fifo, const char *out)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct buf b = BUF_INIT;

		alarm(10); /* no writer ever comes when the FIFO is replaced */
		if (read_file(fifo, &b) < 0 ||
		    write_file_atomic(out, b.p, b.len, 0644) < 0)
			_exit(1);
		_exit(0);
	}
	assert_true(pid > 0);
	return pid;
}

/* A FIFO, a character device (as root) and a symlink are written into or
 * through, never replaced: renaming a file over /dev/null would break it
 * for everyone. A socket, a directory are refused. */
static void test_atomic_write_special(void **state)
{
	char *dir = make_tmpdir(), *fifo = xasprintf("%s/fifo", dir);
	char *got = xasprintf("%s/got", dir), *dev = xasprintf("%s/null", dir);
	char *target = xasprintf("%s/target", dir), *link = xasprintf("%s/l", dir);
	struct buf b = BUF_INIT;
	struct stat st;
	int status;
	pid_t pid;

	(void)state;
	assert_int_equal(mkfifo(fifo, 0600), 0);
	pid = drain_fifo(fifo, got);
	assert_int_equal(write_file_atomic(fifo, "through", 7, 0644), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	assert_int_equal(lstat(fifo, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(read_file(got, &b), 0);
	assert_string_equal(b.p, "through");
	buf_free(&b);
	if (geteuid() == 0 && mknod(dev, S_IFCHR | 0666, makedev(1, 3)) == 0) {
		/* the device keeps its mode: mode is for a new file */
		assert_int_equal(chmod(dev, 0666), 0);
		assert_int_equal(write_file_atomic(dev, "x", 1, 0600), 0);
		assert_int_equal(lstat(dev, &st), 0);
		assert_true(S_ISCHR(st.st_mode));
		assert_int_equal(st.st_mode & 07777, 0666);
	}
	assert_int_equal(write_file_atomic(target, "old", 3, 0644), 0);
	assert_int_equal(symlink("target", link), 0);
	assert_int_equal(write_file_atomic(link, "new", 3, 0644), 0);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(read_file(target, &b), 0);
	assert_string_equal(b.p, "new");
	buf_free(&b);
	stderr_begin();
	assert_int_equal(write_file_atomic(dir, "x", 1, 0644), -1);
	free(stderr_end());
	assert_int_equal(count_entries(dir), 5 - (access(dev, F_OK) != 0));
	remove_tree(dir);
	free(dir);
	free(fifo);
	free(got);
	free(dev);
	free(target);
	free(link);
}

static void test_run_capture_argv_unchanged(void **state)
{
	/* printf gets its arguments as they are: no shell re-splits them */
	const char *argv[] = { "printf", "[%s]", "a b", "$HOME", "*", "'q\"",
			       NULL };
	struct buf out = BUF_INIT;

	(void)state;
	assert_int_equal(run_capture(argv, &out), 0);
	assert_string_equal(out.p, "[a b][$HOME][*]['q\"]");
	buf_free(&out);
}

static void test_child_status(void **state)
{
	const char *fail[] = { "false", NULL };
	const char *missing[] = { "nook-no-such-program", NULL };
	struct buf out = BUF_INIT;
	char *err;

	(void)state;
	assert_int_equal(run_capture(fail, &out), 1);
	stderr_begin();
	assert_int_equal(run_capture(missing, &out), -1);
	err = stderr_end();
	assert_non_null(strstr(err, "cannot run nook-no-such-program"));
	free(err);
	buf_free(&out);
}

/* A program that is no program (no #!, not ELF) is said as such, not
 * run through /bin/sh as execvp would: its lines as shell commands. */
static void test_child_not_a_program(void **state)
{
	char *dir = make_tmpdir(), *path = xasprintf("%s/prog", dir), *err;
	const char *argv[] = { path, NULL };
	struct buf out = BUF_INIT;

	(void)state;
	assert_int_equal(write_file_atomic(path, "echo ran\n", 9, 0755), 0);
	stderr_begin();
	assert_int_equal(run_capture(argv, &out), -1);
	err = stderr_end();
	assert_non_null(strstr(err, "Exec format error"));
	assert_null(strstr(out.p ? out.p : "", "ran"));
	free(err);
	buf_free(&out);
	remove_tree(dir);
	free(path);
	free(dir);
}

/* The pid of a sleep started by child_start() in a process that then
 * dies of SIGKILL (no handler, no exit code of its own runs). */
static pid_t orphaned_sleep(int lasting)
{
	const char *argv[] = { "sleep", "30", NULL };
	pid_t mid, pid = -1;
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	mid = fork();
	assert_true(mid >= 0);
	if (mid == 0) {
		struct child c = CHILD_INIT;

		c.argv = argv;
		c.lasting = lasting;
		if (child_start(&c) == 0 &&
		    write(p[1], &c.pid, sizeof(c.pid)) < 0)
			_exit(1);
		kill(getpid(), SIGKILL);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &pid, sizeof(pid)), sizeof(pid));
	close(p[0]);
	assert_true(waitpid(mid, NULL, 0) == mid);
	return pid;
}

/* A child ends with the process that started it, even one SIGKILLed; a
 * lasting one (a daemon's launcher) is left alone. */
static void test_child_dies_with_parent(void **state)
{
	pid_t tied, lasting;
	int alive = 1;

	(void)state;
	tied = orphaned_sleep(0);
	for (int i = 0; i < 100 && alive; i++) {
		alive = pid_alive(tied);
		if (alive)
			sleep_ms(50);
	}
	assert_false(alive);
	lasting = orphaned_sleep(1);
	sleep_ms(300);
	alive = pid_alive(lasting);
	kill(lasting, SIGKILL);
	assert_true(alive);
}

static void test_find_program(void **state)
{
	char *p = find_program("sh");

	(void)state;
	assert_non_null(p);
	assert_true(p[0] == '/');
	free(p);
	assert_null(find_program("nook-no-such-program"));
}

static void test_mkdir_p(void **state)
{
	char *dir = make_tmpdir();
	char *deep = xasprintf("%s/a/b/c", dir);
	struct stat st;

	(void)state;
	assert_int_equal(mkdir_p(deep, 0700), 0);
	assert_int_equal(mkdir_p(deep, 0700), 0);
	assert_int_equal(stat(deep, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	/* "" is no directory, refused without reading past its end */
	assert_int_equal(mkdir_p("", 0700), -1);
	free(deep);
	remove_tree(dir);
	free(dir);
}

/* path_unswappable: a file (there or not) or directory is refused under a
 * directory anyone may write unless it is sticky, followed through a
 * symlink; a group's write, another's ownership are no matter there */
static void test_path_unswappable(void **state)
{
	char *dir = make_tmpdir();
	char *open_ = xasprintf("%s/w", dir), *sub = xasprintf("%s/w/d", dir);
	char *file = xasprintf("%s/w/d/f", dir), *link = xasprintf("%s/l", dir);
	char *via = xasprintf("%s/l/f", dir), *group = xasprintf("%s/g", dir);
	char *mine = xasprintf("%s/g/f", dir);
	char *via_file = xasprintf("%s/g/f/x", dir);
	char *err;

	(void)state;
	assert_int_equal(mkdir(open_, 0777), 0);
	assert_int_equal(chmod(open_, 0777), 0);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(symlink(sub, link), 0);
	stderr_begin();
	assert_int_equal(path_unswappable(file, "the file"), -1);
	err = stderr_end();
	assert_non_null(strstr(err, "another user could swap the file"));
	assert_non_null(strstr(err, "has mode 0777: anyone may replace"));
	free(err);
	assert_int_equal(path_unswappable(sub, "it"), -1);
	assert_int_equal(path_unswappable(via, "it"), -1);
	assert_int_equal(chmod(open_, 01777), 0);
	assert_int_equal(path_unswappable(file, "it"), 0);
	assert_int_equal(path_unswappable(via, "it"), 0);
	assert_int_equal(mkdir(group, 0770), 0);
	assert_int_equal(chmod(group, 0770), 0);
	assert_int_equal(path_unswappable(mine, "it"), 0);
	/* below a file: not this check's to say (the write says it) */
	assert_int_equal(write_file_atomic(mine, "", 0, 0600), 0);
	assert_int_equal(path_unswappable(via_file, "it"), 0);
	/* sticky, but another user's: its owner may rename what it holds */
	if (geteuid() == 0) {
		assert_int_equal(chown(open_, 65534, 65534), 0);
		stderr_begin();
		assert_int_equal(path_unswappable(file, "it"), -1);
		err = stderr_end();
		assert_non_null(strstr(err, "belongs to user 65534"));
		free(err);
	}
	free(via_file);
	free(open_);
	free(sub);
	free(file);
	free(link);
	free(via);
	free(group);
	free(mine);
	remove_tree(dir);
	free(dir);
}

/* mkdir_private: its own directory 0700, and nothing above it that
 * another user owns, or anyone or its group may write without the
 * sticky bit */
static void test_mkdir_private(void **state)
{
	char *dir = make_tmpdir();
	char *ok = xasprintf("%s/a/b", dir), *open_ = xasprintf("%s/w", dir);
	char *under = xasprintf("%s/w/x", dir), *link = xasprintf("%s/l", dir);
	char *via = xasprintf("%s/l/c", dir), *other = xasprintf("%s/o", dir);
	char *theirs = xasprintf("%s/o/x", dir), *loose = xasprintf("%s/m", dir);
	struct stat st;

	(void)state;
	assert_int_equal(mkdir_private(ok), 0);
	assert_int_equal(stat(ok, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(mkdir_private("rel/dir"), -1);
	/* one made 0755 before (an older nook's) is made private */
	assert_int_equal(mkdir(loose, 0755), 0);
	assert_int_equal(chmod(loose, 0755), 0);
	assert_int_equal(mkdir_private(loose), 0);
	assert_int_equal(stat(loose, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* a directory anyone may write: refused, unless sticky as /tmp */
	assert_int_equal(mkdir(open_, 0700), 0);
	assert_int_equal(chmod(open_, 0777), 0);
	assert_int_equal(mkdir_private(under), -1);
	assert_int_equal(chmod(open_, 01777), 0);
	assert_int_equal(mkdir_private(under), 0);
	/* its group may write it: fine when the group is ours alone (a
	 * user private group), refused when others are in it (as root:
	 * nogroup, whose member is nobody), nothing made inside */
	assert_int_equal(remove_tree(under), 0);
	assert_int_equal(chmod(open_, 0770), 0);
	if (geteuid() == 0 && getgrgid(65534) && getpwuid(65534)) {
		assert_int_equal(mkdir_private(under), 0);
		assert_int_equal(remove_tree(under), 0);
		assert_int_equal(chown(open_, 0, 65534), 0);
		assert_int_equal(chmod(open_, 0770), 0);
		assert_int_equal(mkdir_private(under), -1);
		assert_int_equal(lstat(under, &st), -1);
		assert_int_equal(chmod(open_, 01770), 0);
		assert_int_equal(mkdir_private(under), 0);
	}
	/* a symlink of ours on the way (a symlinked home): followed */
	assert_int_equal(symlink(ok, link), 0);
	assert_int_equal(mkdir_private(via), 0);
	assert_int_equal(stat(via, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* another user's directory on the way, or their symlink (as root:
	 * nobody's) */
	if (geteuid() == 0) {
		char *their_link = xasprintf("%s/t", dir);
		char *through = xasprintf("%s/t/y", dir);

		assert_int_equal(mkdir(other, 0755), 0);
		assert_int_equal(chown(other, 65534, 65534), 0);
		assert_int_equal(mkdir_private(theirs), -1);
		/* refused before anything is made in it */
		assert_int_equal(lstat(theirs, &st), -1);
		assert_int_equal(symlink(ok, their_link), 0);
		assert_int_equal(lchown(their_link, 65534, 65534), 0);
		assert_int_equal(mkdir_private(through), -1);
		free(their_link);
		free(through);
	}
	free(ok);
	free(open_);
	free(under);
	free(link);
	free(via);
	free(other);
	free(theirs);
	free(loose);
	remove_tree(dir);
	free(dir);
}

/* flock_wait: waits the time given for a lock held by another open
 * file, then takes it once it is let go */
static void test_flock_wait(void **state)
{
	char path[] = "/tmp/nook-test-lock.XXXXXX";
	int held = mkostemp(path, O_CLOEXEC), fd;
	long long t0;

	(void)state;
	assert_true(held >= 0);
	fd = open(path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(flock_wait(held, 0), 0);
	/* another open of the file waits, then says the lock is taken */
	t0 = mono_ms();
	assert_int_equal(flock_wait(fd, 100), -1);
	assert_int_equal(errno, EWOULDBLOCK);
	assert_true(mono_ms() - t0 >= 100);
	close(held);
	assert_int_equal(flock_wait(fd, 100), 0);
	close(fd);
	unlink(path);
}

/* copy_file: the bytes, the mode, never over a file that is there */
static void test_copy_file(void **state)
{
	char *dir = make_tmpdir();
	char *src = xasprintf("%s/src", dir), *dst = xasprintf("%s/dst", dir);
	struct buf big = BUF_INIT, back = BUF_INIT;
	struct stat st;

	(void)state;
	for (int i = 0; i < 100000; i++)
		buf_addf(&big, "%d,", i);
	assert_int_equal(write_file_atomic(src, big.p, big.len, 0644), 0);
	assert_int_equal(copy_file(src, dst, 0600), 0);
	assert_int_equal(read_file(dst, &back), 0);
	assert_int_equal(back.len, big.len);
	assert_memory_equal(back.p, big.p, big.len);
	assert_int_equal(stat(dst, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(copy_file(src, dst, 0600), -1);
	buf_free(&big);
	buf_free(&back);
	free(src);
	free(dst);
	remove_tree(dir);
	free(dir);
}

/* BASE/HASH: the runtime directory of data directory data */
static const char *run_of(const char *base, const char *data)
{
	static char s[256];

	snprintf(s, sizeof(s), "%s/%08x", base,
		 (unsigned)(fnv1a64(data, strlen(data)) >> 32));
	return s;
}

static void test_dirs(void **state)
{
	struct nook_dirs d;
	struct nook_env env = { .home = "/home/u", .uid = 1000 };
	char *err;

	(void)state;
	assert_int_equal(nook_dirs_resolve(&d, &env), 0);
	assert_string_equal(d.data, "/home/u/.local/share/nook");
	assert_string_equal(d.run, run_of("/tmp/nook-1000", d.data));
	nook_dirs_free(&d);

	env.xdg_data_home = "/xdg/data";
	env.xdg_runtime_dir = "/run/user/1000";
	assert_int_equal(nook_dirs_resolve(&d, &env), 0);
	assert_string_equal(d.data, "/xdg/data/nook");
	assert_string_equal(d.run, run_of("/run/user/1000/nook", d.data));
	nook_dirs_free(&d);

	env.xdg_data_home = "relative"; /* XDG: relative paths are ignored */
	env.xdg_runtime_dir = "";
	assert_int_equal(nook_dirs_resolve(&d, &env), 0);
	assert_string_equal(d.data, "/home/u/.local/share/nook");
	assert_string_equal(d.run, run_of("/tmp/nook-1000", d.data));
	nook_dirs_free(&d);

	/* another HOME under the same runtime directory: its own */
	env.home = "/tmp/other";
	assert_int_equal(nook_dirs_resolve(&d, &env), 0);
	assert_string_equal(d.data, "/tmp/other/.local/share/nook");
	assert_string_not_equal(d.run, run_of("/tmp/nook-1000",
					      "/home/u/.local/share/nook"));
	assert_string_equal(d.run, run_of("/tmp/nook-1000", d.data));
	nook_dirs_free(&d);
	env.home = "/home/u";

	env.nook_home = "/tmp/nh"; /* overrides everything */
	assert_int_equal(nook_dirs_resolve(&d, &env), 0);
	assert_string_equal(d.data, "/tmp/nh");
	assert_string_equal(d.run, "/tmp/nh/run");
	nook_dirs_free(&d);

	env.nook_home = "rel";
	stderr_begin();
	assert_int_equal(nook_dirs_resolve(&d, &env), -1);
	err = stderr_end();
	assert_non_null(strstr(err, "NOOK_HOME must be an absolute path"));
	free(err);

	memset(&env, 0, sizeof(env));
	stderr_begin();
	assert_int_equal(nook_dirs_resolve(&d, &env), -1);
	free(stderr_end());
	/* a failed resolve leaves nothing to free */
	assert_null(d.data);
	assert_null(d.cache);
	assert_null(d.recipes);
}

/* The image build cache: $NOOK_IMAGE_CACHE, /var/cache/nook for root,
 * $XDG_CACHE_HOME/nook, ~/.cache/nook; the recipes: $NOOK_RECIPES or the
 * ones installed with nook, PREFIX/share/nook/recipes for PREFIX/bin/nook.
 * Both whatever NOOK_HOME says. */
static void test_path_canonical(void **state)
{
	char *dir = make_tmpdir(), *real = realpath(dir, NULL);
	char *link = xasprintf("%s/link", dir), *sub = xasprintf("%s/sub", dir);
	char *want = xasprintf("%s/sub/home", real);
	const char *spellings[] = { "/sub/home", "/sub/home/",
				    "//sub/./home", "/link/home",
				    "/link/./home//", "/sub/x/../home" };
	char *p;

	(void)state;
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(symlink("sub", link), 0);
	/* home does not exist yet, then it does: one spelling either way */
	for (int made = 0; made < 2; made++) {
		if (made)
			assert_int_equal(mkdir(want, 0700), 0);
		for (size_t i = 0; i < ARRAY_SIZE(spellings); i++) {
			char *typed = xasprintf("%s%s", dir, spellings[i]);

			p = path_canonical(typed);
			assert_string_equal(p, want);
			free(p);
			free(typed);
		}
	}
	p = path_canonical("/");
	assert_string_equal(p, "/");
	free(p);
	p = path_canonical("//nonexistent-nook-test/./a/../b/");
	assert_string_equal(p, "/nonexistent-nook-test/b");
	free(p);
	p = path_canonical("rel/./x");
	assert_string_equal(p, "rel/./x");
	free(p);
	assert_int_equal(remove_tree(dir), 0);
	free(want);
	free(sub);
	free(link);
	free(real);
	free(dir);
}

/* A FIFO where nook's own state file was (a pid file) fails the quiet
 * read at once instead of waiting for a writer. */
static void test_read_quiet_fifo(void **state)
{
	char *dir = make_tmpdir(), *fifo = xasprintf("%s/qemu.pid", dir);
	struct buf b = BUF_INIT;

	(void)state;
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(read_file_quiet(fifo, &b), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(remove_tree(dir), 0);
	buf_free(&b);
	free(fifo);
	free(dir);
}

static void test_dirs_cache_recipes(void **state)
{
	struct nook_dirs d;
	struct nook_env env = { .home = "/home/u", .uid = 1000 };

	(void)state;
	assert_int_equal(nook_dirs_resolve(&d, &env), 0);
	assert_string_equal(d.cache, "/home/u/.cache/nook");
	assert_non_null(strstr(d.recipes, "recipes"));
	nook_dirs_free(&d);
	assert_null(d.cache);

	env.xdg_cache_home = "relative"; /* XDG: ignored */
	assert_int_equal(nook_dirs_resolve(&d, &env), 0);
	assert_string_equal(d.cache, "/home/u/.cache/nook");
	nook_dirs_free(&d);

	env.xdg_cache_home = "/xdg/cache";
	assert_int_equal(nook_dirs_resolve(&d, &env), 0);
	assert_string_equal(d.cache, "/xdg/cache/nook");
	nook_dirs_free(&d);

	env.uid = 0; /* root: the system's cache, as the README says */
	assert_int_equal(nook_dirs_resolve(&d, &env), 0);
	assert_string_equal(d.cache, "/var/cache/nook");
	nook_dirs_free(&d);

	/* an installed binary's recipes are beside it, under its prefix */
	env.exe = "/opt/nook/bin/nook";
	assert_int_equal(nook_dirs_resolve(&d, &env), 0);
	assert_string_equal(d.recipes, "/opt/nook/share/nook/recipes");
	nook_dirs_free(&d);
	env.exe = "/nook";
	assert_int_equal(nook_dirs_resolve(&d, &env), 0);
	assert_string_equal(d.recipes, "/share/nook/recipes");
	nook_dirs_free(&d);
	env.exe = "relative/bin/nook"; /* not a path to go by */
	assert_int_equal(nook_dirs_resolve(&d, &env), 0);
	assert_true(d.recipes[0] == '/' && !strstr(d.recipes, "relative"));
	nook_dirs_free(&d);

	env.nook_image_cache = "/big/disk"; /* overrides, root or not */
	env.nook_recipes = "/my/recipes";
	env.nook_home = "/tmp/nh";
	assert_int_equal(nook_dirs_resolve(&d, &env), 0);
	assert_string_equal(d.cache, "/big/disk");
	assert_string_equal(d.recipes, "/my/recipes");
	assert_string_equal(d.data, "/tmp/nh");
	nook_dirs_free(&d);

	memset(&env, 0, sizeof(env)); /* no HOME: still somewhere */
	env.nook_home = "/tmp/nh";
	env.uid = 1000;
	env.nook_image_cache = "";
	assert_int_equal(nook_dirs_resolve(&d, &env), 0);
	assert_string_equal(d.cache, "/tmp/.cache/nook");
	nook_dirs_free(&d);
	nook_dirs_free(NULL);
}

static void test_parse_size(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{ "1", 1 }, { "512M", 512ULL << 20 }, { "2G", 2ULL << 30 },
		{ "2g", 2ULL << 30 }, { "1GiB", 1ULL << 30 }, { "10K", 10240 },
		{ "3T", 3ULL << 40 }, { "100B", 100 }, { "100b", 100 },
		{ "2Ki", 2048 }, { "4kib", 4096 }, { "1MB", 1ULL << 20 },
	};
	static const char *const bad[] = {
		"", "0", "G", "-1", "1.5G", "1X", "1 G", "99999999999999999999",
		"17179869184T", "1GG",
		/* a space is no unit (it was taken as P: 2 PiB) */
		"2 ", "1 B", "2G ", " 2G", "2\t", "2\n", "1 iB",
		"+2", "1iB", "1Bi", "2KiBB", "2GiBs", "0x10", "2P",
	};
	uint64_t v;
	long l;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		assert_int_equal(parse_size("--memory", good[i].s, &v), 0);
		assert_true(v == good[i].v);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *err;

		stderr_begin();
		assert_int_equal(parse_size("--memory", bad[i], &v), -1);
		err = stderr_end();
		assert_non_null(strstr(err, "--memory"));
		free(err);
	}
	assert_int_equal(parse_int("--cpus", "4", 1, 64, &l), 0);
	assert_int_equal(l, 4);
	stderr_begin();
	assert_int_equal(parse_int("--cpus", "0", 1, 64, &l), -1);
	assert_int_equal(parse_int("--cpus", "4x", 1, 64, &l), -1);
	assert_int_equal(parse_int("--cpus", "", 1, 64, &l), -1);
	free(stderr_end());
}

static void test_parse_int_strict(void **state)
{
	static const char *const bad[] = {
		" 4", "\t4", "\n4", "+4", "4 ", "-", "--4", "- 4", "-+4", "4-",
		"0x4", "99999999999999999999999",
	};
	long l = 0;

	(void)state;
	assert_int_equal(parse_int("--n", "-3", -5, 5, &l), 0);
	assert_int_equal(l, -3);
	assert_int_equal(parse_int("--n", "007", -5, 10, &l), 0);
	assert_int_equal(l, 7);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *err;

		l = 42;
		stderr_begin();
		assert_int_equal(parse_int("--n", bad[i], -9, 9, &l), -1);
		err = stderr_end();
		assert_non_null(strstr(err, "--n"));
		assert_int_equal(l, 42); /* untouched */
		free(err);
	}
}

static void test_fnv1a64(void **state)
{
	(void)state;
	/* the published FNV-1a 64-bit test vectors */
	assert_true(fnv1a64("", 0) == 0xcbf29ce484222325ULL);
	assert_true(fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL);
	assert_true(fnv1a64("foobar", 6) == 0x85944171f73967e8ULL);
	assert_true(fnv1a64_add(fnv1a64("foo", 3), "bar", 3) ==
		    fnv1a64("foobar", 6));
}

static void test_edit_distance(void **state)
{
	(void)state;
	assert_int_equal(edit_distance("memory", "memory"), 0);
	assert_int_equal(edit_distance("memroy", "memory"), 1);
	assert_int_equal(edit_distance("memor", "memory"), 1);
	assert_int_equal(edit_distance("mmemory", "memory"), 1);
	assert_int_equal(edit_distance("cpu", "cpus"), 1);
	assert_int_equal(edit_distance("", "disk"), 4);
	assert_int_equal(edit_distance("kitten", "sitting"), 3);
}

static void test_typo_of(void **state)
{
	static const char *const a[] = { "packages", "runcmd", NULL };
	static const char *const b[] = { "users", "user", NULL };
	static const char *const shorts[] = { "usr", NULL };
	const char *const *lists[] = { a, b }, *const *b_short[] = { shorts };

	(void)state;
	assert_string_equal(typo_of("packges", lists, 2), "packages");
	assert_string_equal(typo_of("RUNCMD", lists, 2), "runcmd");
	/* the nearest wins, the first listed on a tie */
	assert_string_equal(typo_of("usre", lists, 2), "user");
	assert_string_equal(typo_of("userz", lists, 2), "users");
	/* a word of its own is itself */
	assert_string_equal(typo_of("user", lists, 2), "user");
	/* three letters or fewer: only the case */
	assert_string_equal(typo_of("USR", b_short, 1), "usr");
	assert_null(typo_of("usb", b_short, 1));
	/* two edits in a short word is not a typo: a third of it, at most */
	assert_null(typo_of("rncd", lists, 2));
	assert_null(typo_of("zz", lists, 2));
	assert_null(typo_of("", lists, 2));
	assert_null(typo_of("packages", lists, 0));
}

static void test_remove_tree(void **state)
{
	char *dir = make_tmpdir();
	char *sub = xasprintf("%s/a/b", dir);
	char *f = xasprintf("%s/a/b/f", dir);
	char *link = xasprintf("%s/a/l", dir);
	char *outside = make_tmpdir();
	char *keep = xasprintf("%s/keep", outside);

	(void)state;
	assert_int_equal(mkdir_p(sub, 0700), 0);
	assert_int_equal(write_file_atomic(f, "x", 1, 0600), 0);
	assert_int_equal(write_file_atomic(keep, "x", 1, 0600), 0);
	/* a symlink out of the tree is removed, its target left alone */
	assert_int_equal(symlink(outside, link), 0);
	assert_int_equal(remove_tree(dir), 0);
	assert_int_equal(access(dir, F_OK), -1);
	assert_int_equal(access(keep, F_OK), 0);
	assert_int_equal(remove_tree(dir), 0); /* already gone: fine */
	remove_tree(outside);
	free(dir);
	free(sub);
	free(f);
	free(link);
	free(outside);
	free(keep);
}

/* Control characters, DEL, C1 and bytes that are not UTF-8 come out as
 * \xNN; UTF-8 text stays; newlines and tabs only when asked. */
static void test_str_escape(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	str_escape(&b, "a\033[31mb\a\x7f", 1);
	assert_string_equal(b.p, "a\\x1b[31mb\\x07\\x7f");
	b.len = 0;
	str_escape(&b, "caf\xc3\xa9 \xd1\x84 \xc2\x9b \xff\xc3", 1);
	assert_string_equal(b.p, "caf\xc3\xa9 \xd1\x84 \\xc2\\x9b \\xff\\xc3");
	b.len = 0;
	/* an overlong '/', a surrogate, a code past U+10FFFF: not UTF-8 */
	str_escape(&b, "\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80", 1);
	assert_string_equal(b.p, "\\xc0\\xaf \\xed\\xa0\\x80 "
			    "\\xf4\\x90\\x80\\x80");
	b.len = 0;
	str_escape(&b, "l1\n\tl2", 1);
	assert_string_equal(b.p, "l1\n\tl2");
	b.len = 0;
	str_escape(&b, "l1\n\tl2", 0);
	assert_string_equal(b.p, "l1\\x0a\\x09l2");
	buf_free(&b);
}

/* What a terminal is shown of a guest's console: colours, newlines,
 * tabs, CRs and UTF-8 pass; other escape sequences, controls and C1 come
 * out as \xNN; a sequence cut at the end is kept back while more comes,
 * and escaped when no more does. */
static void test_term_escape(void **state)
{
	const char in[] = "a\033[1;32mok\033[0m\r\n\033]0;T\a\033[6n"
			  "\xc2\x9b\xc3\xa9\033";
	struct buf b = BUF_INIT;

	(void)state;
	assert_int_equal(term_escape(&b, in, sizeof(in) - 1, 0),
			 sizeof(in) - 1);
	buf_add(&b, "", 0);
	assert_string_equal(b.p, "a\033[1;32mok\033[0m\r\n\\x1b]0;T\\x07"
			    "\\x1b[6n\\xc2\\x9b\xc3\xa9\\x1b");
	b.len = 0;
	/* cut: ESC [ 3 and half of a UTF-8 character wait for the rest */
	assert_int_equal(term_escape(&b, "x\033[3", 4, 1), 1);
	assert_int_equal(term_escape(&b, "y\xc3", 2, 1), 1);
	buf_add(&b, "", 0);
	assert_string_equal(b.p, "xy");
	buf_free(&b);
}

/* msg_after_name() takes a line's own "VM NAME: " or "NAME: " off, for
 * a place that shows NAME before it: only that name, only as a prefix. */
static void test_msg_after_name(void **state)
{
	(void)state;
	assert_string_equal(msg_after_name("VM dev-2: not ready", "dev-2"),
			    "not ready");
	assert_string_equal(msg_after_name("dev-2: QEMU failed", "dev-2"),
			    "QEMU failed");
	assert_string_equal(msg_after_name("dev-20: other", "dev-2"),
			    "dev-20: other");
	assert_string_equal(msg_after_name("dev-2 is a VM", "dev-2"),
			    "dev-2 is a VM");
	assert_string_equal(msg_after_name("VM dev-1: up", "dev-2"),
			    "VM dev-1: up");
	assert_string_equal(msg_after_name("a dev-2: b", "dev-2"),
			    "a dev-2: b");
	assert_int_equal(msg_names("VM dev-2's disk", "dev-2"), 8);
	assert_int_equal(msg_names("dev-2x", "dev-2"), 0);
	assert_int_equal(msg_names("anything", ""), 0);
}

/* error_add_cause() adds a cause said before to the last error, for
 * --json only: stderr has said each once. One that would not fit is
 * left out whole, never cut. */
static void test_error_add_cause(void **state)
{
	char *err, *cause, *big;

	(void)state;
	stderr_begin();
	errorf("x.json:1: junk");
	cause = strdup(error_last());
	assert_int_equal(errorf("VM a's record cannot be read (said above)"),
			 -1);
	assert_int_equal(error_add_cause(cause), -1);
	assert_string_equal(error_last(), "VM a's record cannot be read "
			    "(said above) (x.json:1: junk)");
	error_add_cause(NULL);
	error_add_cause("");
	assert_string_equal(error_last(), "VM a's record cannot be read "
			    "(said above) (x.json:1: junk)");
	big = malloc(4090);
	memset(big, 'b', 4089);
	big[4089] = '\0';
	error_add_cause(big);
	assert_string_equal(error_last(), "VM a's record cannot be read "
			    "(said above) (x.json:1: junk)");
	err = stderr_end();
	assert_null(strstr(err, "(x.json"));
	free(err);
	free(big);
	free(cause);
}

/* error_where() puts its place before a message, once: not before one
 * that names it already (a VM's own errors), nor before a warning. */
static void test_error_where(void **state)
{
	char *err;

	(void)state;
	stderr_begin();
	error_where("dev-2");
	errorf("QEMU failed to start");
	assert_string_equal(error_last(), "dev-2: QEMU failed to start");
	errorf("VM dev-2: not ready");
	assert_string_equal(error_last(), "VM dev-2: not ready");
	errorf("dev-2 is a VM already");
	assert_string_equal(error_last(), "dev-2 is a VM already");
	errorf("VM dev-2's record cannot be read");
	assert_string_equal(error_last(), "VM dev-2's record cannot be read");
	errorf("dev-20: another node");
	assert_string_equal(error_last(), "dev-2: dev-20: another node");
	errorf("VM dev-2x is not this one");
	assert_string_equal(error_last(), "dev-2: VM dev-2x is not this one");
	warnf("VM dev-1 is running");
	error_where(NULL);
	errorf("plain");
	assert_string_equal(error_last(), "plain");
	err = stderr_end();
	assert_non_null(strstr(err, "nook: dev-2: QEMU failed to start\n"));
	assert_non_null(strstr(err, "nook: VM dev-2: not ready\n"));
	assert_non_null(strstr(err, "nook: warning: VM dev-1 is running\n"));
	free(err);
}

/* A temp named by a pid that is gone is stale; ours, a live one's and
 * other names are not. */
static void test_tmp_stale(void **state)
{
	char *dir = make_tmpdir();
	struct strvec out = STRVEC_INIT;
	pid_t dead = fork();
	char *p;

	(void)state;
	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	p = xasprintf("%s/.tmp-%d-abcdef", dir, (int)dead);
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
	p = xasprintf("%s/.tmp-%d-abcdef", dir, (int)getpid());
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
	p = xasprintf("%s/.tmp-%d-abcdef", dir, (int)getppid());
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
	p = xasprintf("%s/.tmp-x%d-abcdef", dir, (int)dead);
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
	assert_int_equal(tmp_stale(dir, ".tmp-", &out), 1);
	p = xasprintf("%s/.tmp-%d-abcdef", dir, (int)dead);
	assert_string_equal(out.v[0], p);
	tmp_sweep(dir, ".tmp-");
	assert_int_equal(access(p, F_OK), -1);
	free(p);
	strvec_clear(&out);
	remove_tree(dir);
	free(dir);
}

/* A child that outlives its time is killed and said to have timed out. */
static void test_run_capture_timeout(void **state)
{
	const char *const slow[] = { "sleep", "10", NULL };
	const char *const quick[] = { "sh", "-c", "echo hi; exit 3", NULL };
	struct buf out = BUF_INIT;
	long long t0 = mono_ms();

	(void)state;
	assert_int_equal(run_capture_timeout(slow, &out, 300), RUN_TIMED_OUT);
	assert_true(mono_ms() - t0 < 3000);
	assert_int_equal(run_capture_timeout(quick, &out, 5000), 3);
	assert_string_equal(out.p, "hi\n");
	buf_free(&out);
}

/* stdout is data, stderr apart, even when stderr fills its pipe first */
static void test_run_capture_split(void **state)
{
	const char *const argv[] = { "sh", "-c", "head -c 200000 /dev/zero "
				     ">&2; echo /the/path; echo noise >&2; "
				     "exit 4", NULL };
	struct buf out = BUF_INIT, err = BUF_INIT;

	(void)state;
	assert_int_equal(run_capture_split(argv, &out, &err), 4);
	assert_string_equal(out.p, "/the/path\n");
	assert_int_equal(err.len, 200000 + strlen("noise\n"));
	buf_free(&out);
	buf_free(&err);
}

/* A child that touches 64 MiB grows by that and a little more (under
 * ASan too: its shadow is an eighth); once reaped, nothing. The child is
 * ended before anything is asserted. */
static void test_proc_resident(void **state)
{
	const size_t size = 64 << 20;
	uint64_t before, after;
	int up[2], down[2], status;
	char c;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *p;

		if (write(up[1], "a", 1) != 1 || read(down[0], &c, 1) != 1)
			_exit(1);
		p = malloc(size);
		if (!p)
			_exit(1);
		memset(p, 1, size);
		/* p escapes: the compiler keeps what it holds */
		if (write(up[1], p + size - 1, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	before = read(up[0], &c, 1) == 1 ? proc_resident(pid) : 0;
	after = write(down[1], "b", 1) == 1 && read(up[0], &c, 1) == 1 ?
		proc_resident(pid) : 0;
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(up[0]);
	close(down[1]);
	assert_true(before > 0);
	assert_true(after >= before + size && after < before + 2 * size);
	assert_int_equal(proc_resident(pid), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strvec),
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_atomic_write),
		cmocka_unit_test(test_atomic_write_same),
		cmocka_unit_test(test_tmpfile_abort_keeps_old),
		cmocka_unit_test(test_atomic_write_missing_dir),
		cmocka_unit_test(test_read_file_missing),
		cmocka_unit_test(test_read_file_max),
		cmocka_unit_test(test_read_file_tail),
		cmocka_unit_test(test_read_file_failed_leaves_buffer),
		cmocka_unit_test(test_atomic_write_special),
		cmocka_unit_test(test_run_capture_argv_unchanged),
		cmocka_unit_test(test_child_dies_with_parent),
		cmocka_unit_test(test_child_not_a_program),
		cmocka_unit_test(test_child_status),
		cmocka_unit_test(test_find_program),
		cmocka_unit_test(test_mkdir_p),
		cmocka_unit_test(test_mkdir_private),
		cmocka_unit_test(test_path_unswappable),
		cmocka_unit_test(test_dirs),
		cmocka_unit_test(test_dirs_cache_recipes),
		cmocka_unit_test(test_path_canonical),
		cmocka_unit_test(test_read_quiet_fifo),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_int_strict),
		cmocka_unit_test(test_fnv1a64),
		cmocka_unit_test(test_edit_distance),
		cmocka_unit_test(test_typo_of),
		cmocka_unit_test(test_remove_tree),
		cmocka_unit_test(test_str_escape),
		cmocka_unit_test(test_term_escape),
		cmocka_unit_test(test_msg_after_name),
		cmocka_unit_test(test_error_where),
		cmocka_unit_test(test_error_add_cause),
		cmocka_unit_test(test_tmp_stale),
		cmocka_unit_test(test_run_capture_timeout),
		cmocka_unit_test(test_run_capture_split),
		cmocka_unit_test(test_flock_wait),
		cmocka_unit_test(test_copy_file),
		cmocka_unit_test(test_proc_resident),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

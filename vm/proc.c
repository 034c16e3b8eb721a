/* Is a VM running? The pid file, the lock, and the state rule. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "internal.h"

/* 1 when /proc/pid is a live (not zombie) process one of whose
 * arguments is exactly arg: a substring would let a process that merely
 * mentions the socket be adopted. */
static int proc_has_arg(pid_t pid, const char *arg)
{
	char path[64];
	struct buf b = BUF_INIT;
	int found = 0;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file_quiet(path, &b) < 0)
		return 0;
	p = strrchr(b.p, ')');
	if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X') {
		buf_free(&b);
		return 0;
	}
	b.len = 0;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (read_file_quiet(path, &b) < 0)
		return 0;
	for (size_t off = 0; off < b.len; off += strlen(b.p + off) + 1)
		if (!strcmp(b.p + off, arg))
			found = 1;
	buf_free(&b);
	return found;
}

pid_t vm_pid_alive(const char *pidfile, const char *qmp_arg)
{
	struct buf b = BUF_INIT;
	char *end;
	long pid;

	if (read_file_quiet(pidfile, &b) < 0)
		return 0;
	pid = strtol(b.p, &end, 10);
	if (end == b.p || (*end && *end != '\n') || pid <= 1 || pid > 1 << 22) {
		buf_free(&b);
		return 0;
	}
	buf_free(&b);
	/* A recycled pid belongs to some other program: only a process whose
	 * command line has this VM's QMP chardev is ours. */
	return proc_has_arg((pid_t)pid, qmp_arg) ? (pid_t)pid : 0;
}

int vm_pid_is_ours(pid_t pid, const char *qmp_arg)
{
	return proc_has_arg(pid, qmp_arg);
}

int vm_lock(const struct vm_paths *p, const char *name, int *fd)
{
	*fd = open(p->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0)
		return error_errno("cannot open %s", p->lock);
	if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		close(*fd);
		*fd = -1;
		if (e == EWOULDBLOCK)
			return errorf("VM %s is busy: another nook command is "
				      "starting, stopping or deleting it", name);
		errno = e;
		return error_errno("cannot lock %s", p->lock);
	}
	return 0;
}

int vm_lock_busy(const struct vm_paths *p)
{
	int fd = open(p->lock, O_RDONLY | O_CLOEXEC);
	int busy = 0;

	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK)
		busy = 1;
	close(fd);
	return busy;
}

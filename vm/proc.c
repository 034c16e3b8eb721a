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

pid_t vm_pid_alive(const char *pidfile, const char *qmp_arg)
{
	/* only a process whose command line has this VM's QMP chardev is
	 * its QEMU */
	return pidfile_owner(pidfile, qmp_arg);
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
				      "starting, stopping, exporting or "
				      "deleting it", name);
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

char *vm_stop_mark(const struct vm_paths *p)
{
	return xasprintf("%s/stop-forced", p->dir);
}

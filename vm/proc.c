/* Is a VM running? The pid file, the lock, the state rule, and how the
 * host schedules a crowded boot. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

/*
 * Under TCG a vCPU thread runs flat out. Three crowded nodes on two cores
 * under the host's default (EEVDF's short slices, a thread that wakes
 * preempting one that runs) had each vCPU thread switched out ~600 times
 * a second, each QEMU's main loop waking as often; every switch to
 * another QEMU costs caches and TLB on both sides. Batch threads do not
 * preempt on waking; a 10 ms slice lets a vCPU run longer between
 * switches: ~150-250 switches a second, and less CPU per boot (measured:
 * README, Clusters). Only while the node boots: a ready VM answers its
 * user with the default latency. A thread's nice value is kept. One pass
 * over the threads: one made during it by a thread not yet changed may
 * keep the old policy (QEMU's short-lived I/O workers).
 */
struct sched_attr_ver0 {  /* the kernel's struct sched_attr, 48 bytes */
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
};
_Static_assert(sizeof(struct sched_attr_ver0) == 48, "SCHED_ATTR_SIZE_VER0");

#define BOOT_SLICE_NS 10000000ull

/* Thread tid to batch (on) or, when nook put it there, back to other. */
static int sched_thread(pid_t tid, int on)
{
	struct sched_attr_ver0 a;

	if (syscall(SYS_sched_getattr, tid, &a, sizeof(a), 0) < 0)
		return -1;
	if (on) {
		a.policy = SCHED_BATCH;
		a.runtime = BOOT_SLICE_NS; /* older kernels ignore it */
	} else {
		/* a slice of ours, or none shown (before Linux 6.12) */
		if (a.policy != SCHED_BATCH ||
		    (a.runtime && a.runtime != BOOT_SLICE_NS))
			return -1;
		a.policy = SCHED_OTHER;
		a.runtime = 0;
	}
	a.size = sizeof(a);
	a.flags = 0;
	a.priority = 0;
	a.deadline = a.period = 0;
	return (int)syscall(SYS_sched_setattr, tid, &a, 0);
}

int vm_sched_boot(pid_t pid, int on)
{
	char dir[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		/* a thread's id, not "." or ".." */
		if (e->d_name[0] >= '1' && e->d_name[0] <= '9' &&
		    sched_thread((pid_t)strtol(e->d_name, NULL, 10), on) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* What another nook's word for its work (lock_say()) reads as, of the
 * thing it holds ("stopping"), or NULL for a word nook does not know. */
const char *vm_doing_words(const char *doing)
{
	static const char *const words[][2] = {
		{ "start", "starting" }, { "stop", "stopping" },
		{ "suspend", "suspending" }, { "pause", "pausing" },
		{ "unpause", "unpausing" }, { "delete", "deleting" },
		{ "snapshot", "taking or restoring a snapshot of" },
		{ "export", "exporting" }, { "port", "changing a forward of" },
		{ "prune", "pruning" },
		{ "mend", "mending a command cut off of" },
		{ "names", "writing its nodes' names into" },
		{ "record", "rebuilding the record of" },
	};

	for (size_t i = 0; doing && i < ARRAY_SIZE(words); i++)
		if (!strcmp(doing, words[i][0]))
			return words[i][1];
	return NULL;
}

void vm_busy_holder(const char *lock, struct buf *b)
{
	char doing[32];
	pid_t pid = lock_holder_said(lock, doing, sizeof(doing));
	const char *words = pid ? vm_doing_words(doing) : NULL;

	if (words)
		buf_addf(b, "another nook (pid %d) is %s it", (int)pid, words);
	else
		buf_adds(b, "another nook command holds it");
}

/* How long vm_lock() waits out a look's hold (microseconds long) */
#define LOCK_LOOK_MS 250

int vm_lock(const struct vm_paths *p, const char *name, const char *doing,
	    int *fd)
{
	/* a look's mend takes the lock only when it is free, quietly: a
	 * command that holds it mends as it goes */
	int mend = !strcmp(doing, "mend");
	struct stat st;

	*fd = open(p->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0)
		return error_errno("cannot open %s", p->lock);
	/* a look (vm_lock_busy(): every status and list) holds the lock
	 * shared for a moment: a command that meets one waits it out, and
	 * is refused only by another command */
	if (flock_wait(*fd, mend ? 0 : LOCK_LOOK_MS) < 0) {
		struct buf who = BUF_INIT;
		int e = errno;

		close(*fd);
		*fd = -1;
		if (mend)
			return -1;
		if (e != EWOULDBLOCK) {
			errno = e;
			return error_errno("cannot lock %s", p->lock);
		}
		vm_busy_holder(p->lock, &who);
		errorf("VM %s is busy: %s; try again once it is done", name,
		       who.p);
		buf_free(&who);
		return -1;
	}
	/* a delete that held it removed the VM meanwhile, the lock file
	 * with it: this lock is of nothing */
	if (fstat(*fd, &st) == 0 && st.st_nlink == 0) {
		close(*fd);
		*fd = -1;
		return mend ? -1 : errorf("VM %s was deleted by another nook "
					  "meanwhile; try again", name);
	}
	lock_say(*fd, doing);
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

int vm_lock_ending(const struct vm_paths *p)
{
	char doing[32], *facts = xasprintf("%s/." VM_SAVE_NAME ".facts",
					   p->dir);
	int whole = access(facts, F_OK) == 0;

	free(facts);
	/* a suspend's save is whole once its facts are beside it: kept
	 * then, by it or by whoever mends it (vm/save.c) */
	if (whole)
		return VM_SUSPENDED;
	if (!lock_holder_said(p->lock, doing, sizeof(doing)))
		return -1;
	return !strcmp(doing, "stop") || !strcmp(doing, "delete") ?
	       VM_STOPPED : -1;
}

char *vm_delete_mark(const struct vm_paths *p)
{
	return xasprintf("%s/delete-begun", p->dir);
}

char *vm_delete_marked(const struct vm_paths *p)
{
	char *mark = vm_delete_mark(p), *what = NULL;
	struct buf b = BUF_INIT;

	if (read_file_quiet(mark, &b) == 0 && b.len && vm_name_valid(b.p))
		what = xstrdup(b.p);
	buf_free(&b);
	free(mark);
	return what;
}

char *vm_stop_mark(const struct vm_paths *p)
{
	return xasprintf("%s/stop-forced", p->dir);
}

int vm_take_stop_mark(const struct vm_paths *p)
{
	char *mark = vm_stop_mark(p);
	int had = unlink(mark) == 0;

	free(mark);
	return had;
}

int vm_stop_marked(const struct vm_paths *p)
{
	char *mark = vm_stop_mark(p);
	int yes = access(mark, F_OK) == 0;

	free(mark);
	return yes;
}

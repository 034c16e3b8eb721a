/*
 * Temporary files a signal must not leave behind, and the stale ones a
 * process killed outright (SIGKILL, a crash) did leave: each is named with
 * the pid of the process that made it, so the next one to look can tell.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common.h"

#define TMP_SLOTS 32

/* Written whole before published: the handler reads a slot's pointer once
 * and finds either NULL or a complete string. Each slot's order of
 * registration, set before its pointer: the handler removes the newest
 * first, so that a directory made inside one registered before it (a
 * temporary directory in a directory made for it) is gone when the
 * outer one's turn comes. */
static char *volatile slots[TMP_SLOTS];
static volatile unsigned long orders[TMP_SLOTS];
/* Each slot's kind, set before its pointer: 1 for tmp_register_dir()'s
 * (removed only while empty), 0 for a file or a directory of ours. */
static volatile char only_empty[TMP_SLOTS];
static unsigned long last_order;
static char *volatile note;
static int installed;

/* Empty directory path one level deep, then remove it: getdents64 and
 * unlinkat, as a signal handler may (no opendir, it allocates). */
static void rmdir_flat(const char *path)
{
	char dents[4096];
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	long n;

	if (fd < 0)
		return;
	while ((n = syscall(SYS_getdents64, fd, dents, sizeof(dents))) > 0) {
		for (long off = 0; off < n;) {
			/* struct linux_dirent64: ino 8, off 8, reclen 2,
			 * type 1, then the name */
			unsigned short reclen;
			const char *name = dents + off + 19;

			memcpy(&reclen, dents + off + 16, sizeof(reclen));
			if (strcmp(name, ".") && strcmp(name, ".."))
				unlinkat(fd, name, 0);
			off += reclen;
		}
	}
	close(fd);
	rmdir(path);
}

/* The slot registered last among those not done, or -1. */
static int newest_slot(const char done[TMP_SLOTS])
{
	int newest = -1;

	for (int i = 0; i < TMP_SLOTS; i++)
		if (!done[i] && slots[i] &&
		    (newest < 0 || orders[i] > orders[newest]))
			newest = i;
	return newest;
}

static void on_signal(int sig)
{
	int saved = errno;
	const char *n = note;
	char done[TMP_SLOTS] = { 0 };

	if (n && write(STDERR_FILENO, n, strlen(n)) < 0)
		saved = errno;
	for (int i = newest_slot(done); i >= 0; i = newest_slot(done)) {
		const char *p = slots[i];

		done[i] = 1;
		if (p && only_empty[i])
			rmdir(p);
		else if (p && unlink(p) < 0 &&
			 (errno == EISDIR || errno == EPERM))
			rmdir_flat(p);
	}
	errno = saved;
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa, old;

	installed = 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaddset(&sa.sa_mask, sigs[i]);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		/* an ignored signal (nohup) or a command's own handler
		 * stays as it is */
		if (sigaction(sigs[i], NULL, &old) == 0 &&
		    old.sa_handler == SIG_DFL)
			sigaction(sigs[i], &sa, NULL);
	}
}

volatile sig_atomic_t sig_caught;
static pid_t *volatile pass_pids;
static volatile size_t pass_n;

static void on_catch(int sig)
{
	int saved = errno;

	if (!sig_caught)
		for (size_t i = 0; i < pass_n; i++)
			if (pass_pids[i] > 0)
				kill(pass_pids[i], sig);
	sig_caught = sig;
	errno = saved;
}

void sig_hold(sigset_t *was)
{
	sigset_t stops;

	sigemptyset(&stops);
	sigaddset(&stops, SIGINT);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGHUP);
	sigprocmask(SIG_BLOCK, &stops, was);
}

void sig_release(const sigset_t *was)
{
	sigprocmask(SIG_SETMASK, was, NULL);
}

void sig_pass_on(pid_t *pids, size_t n)
{
	sigset_t was;

	/* the handler sees the old list or the new, whole */
	sig_hold(&was);
	pass_n = 0;
	pass_pids = pids;
	pass_n = pids ? n : 0;
	/* one caught before the pids were known */
	for (size_t i = 0; sig_caught && i < pass_n; i++)
		if (pids[i] > 0)
			kill(pids[i], sig_caught);
	sig_release(&was);
}

void sig_catch(struct sigaction old[3], int on)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_catch;
	sigemptyset(&sa.sa_mask);
	if (on)
		sig_caught = 0;
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		if (!on)
			sigaction(sigs[i], &old[i], NULL);
		else if (sigaction(sigs[i], NULL, &old[i]) == 0 &&
			 old[i].sa_handler != SIG_IGN)
			sigaction(sigs[i], &sa, NULL);
	}
}

void sig_rethrow(void)
{
	int sig = sig_caught;

	if (!sig)
		return;
	raise(sig);
	/* a handler above that returned: end as the signal's default */
	signal(sig, SIG_DFL);
	raise(sig);
}

static void register_slot(const char *path, int empty_only)
{
	if (!installed)
		install();
	for (int i = 0; i < TMP_SLOTS; i++) {
		if (!slots[i]) {
			orders[i] = ++last_order;
			only_empty[i] = (char)empty_only;
			slots[i] = xstrdup(path);
			return;
		}
	}
	/* full: a temporary file is found by the next sweep of its
	 * directory; a tmp_register_dir() one stays, empty */
}

void tmp_register(const char *path)
{
	register_slot(path, 0);
}

void tmp_register_dir(const char *path)
{
	register_slot(path, 1);
}

void sig_note(const char *msg)
{
	char *old = note;

	if (!installed)
		install();
	note = msg ? xstrdup(msg) : NULL;
	free(old);
}

void tmp_unregister(const char *path)
{
	for (int i = 0; path && i < TMP_SLOTS; i++) {
		char *p = slots[i];

		if (p && !strcmp(p, path)) {
			slots[i] = NULL;
			free(p);
			return;
		}
	}
}

/* Run make(tmpl) with the signals held, registering what it made before
 * they can end us: no moment where the file exists unregistered. */
static int make_held(char *tmpl, int (*make)(char *tmpl, int flags),
		     int flags)
{
	sigset_t was;
	int ret, e;

	if (!installed)
		install();
	sig_hold(&was);
	ret = make(tmpl, flags);
	e = errno;
	if (ret >= 0)
		tmp_register(tmpl);
	sig_release(&was);
	errno = e;
	return ret;
}

static int make_dir(char *tmpl, int flags)
{
	(void)flags;
	return mkdtemp(tmpl) ? 0 : -1;
}

char *tmp_mkdtemp(char *tmpl)
{
	return make_held(tmpl, make_dir, 0) < 0 ? NULL : tmpl;
}

int tmp_mkostemp(char *tmpl, int flags)
{
	return make_held(tmpl, mkostemp, flags);
}

int pid_alive(pid_t pid)
{
	char state;
	unsigned long flags;

	if (pid <= 0 || (kill(pid, 0) < 0 && errno != EPERM))
		return 0;
	/* a zombie (PID 1 here does not reap) is gone */
	if (proc_stat(pid, &state, &flags) < 0)
		return errno != ENOENT;
	return state != 'Z' && state != 'X';
}

/* The pid in name when it is prefix, digits, then '-' or '.'; else 0. */
static pid_t name_pid(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);
	char *end;
	long pid;

	if (strncmp(name, prefix, n) || name[n] < '1' || name[n] > '9')
		return 0;
	errno = 0;
	pid = strtol(name + n, &end, 10);
	if (errno || (*end != '-' && *end != '.') || pid > 1 << 22)
		return 0;
	return (pid_t)pid;
}

int tmp_stale(const char *dir, const char *prefix, struct strvec *out)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		pid_t pid = name_pid(e->d_name, prefix);

		if (pid && pid != getpid() && !pid_alive(pid)) {
			strvec_pushf(out, "%s/%s", dir, e->d_name);
			found++;
		}
	}
	closedir(d);
	return found;
}

void tmp_sweep(const char *dir, const char *prefix)
{
	struct strvec stale = STRVEC_INIT;

	tmp_stale(dir, prefix, &stale);
	for (size_t i = 0; i < stale.n; i++)
		remove_tree(stale.v[i]);
	strvec_clear(&stale);
}

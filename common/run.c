/*
 * Spawning children from argv vectors, never through a shell. A child
 * is tied to nook's life: fork, PR_SET_PDEATHSIG, then exec. A
 * program that starts a daemon (c->lasting) is started by posix_spawn
 * instead, with nothing tying it to us. Also: what /proc says of a
 * process, and finding a program on $PATH.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

extern char **environ;

/* waitpid(pid) until it has reaped pid, past EINTR; the status is not
 * wanted. */
static void reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* A wait status as a shell says it: the exit status, 128 + the signal
 * that ended it, or -1. */
static int exit_status(int ws)
{
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return -1;
}

/* A launcher of a daemon: nothing ties it to us. errno on failure. */
static int spawn_lasting(struct child *c, const int fds[3])
{
	posix_spawn_file_actions_t fa;
	int rc;

	posix_spawn_file_actions_init(&fa);
	/* our own fds are all O_CLOEXEC; dup2 clears that flag on the
	 * copies */
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			posix_spawn_file_actions_adddup2(&fa, fds[i], i);
	rc = posix_spawnp(&c->pid, c->argv[0], &fa, NULL,
			  (char *const *)c->argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	errno = rc;
	return rc ? -1 : 0;
}

/* In a fork of ours, before the signal mask lets one in: our handlers
 * (the temporary files' cleanup) are not the fork's, so each caught
 * signal goes back to its default. Ignored ones stay ignored, as
 * posix_spawn does. */
static void handlers_default(void)
{
	struct sigaction dfl, sa;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		if (sigaction(sig, NULL, &sa) == 0 &&
		    sa.sa_handler != SIG_IGN && sa.sa_handler != SIG_DFL)
			sigaction(sig, &dfl, NULL);
}

/*
 * The forked side of spawn_tied(), with async-signal-safe calls only:
 * set up the child's fds, its own process group (c->group), its death
 * with the parent, the signal mask; then exec prog. The parent found
 * prog on $PATH: execvp would run a file without #! through /bin/sh,
 * where posix_spawnp says it cannot be run. Never returns: on a
 * failure, its errno is written to the pipe w.
 */
static void tied_child(const struct child *c, const char *prog,
		       const int fds[3], pid_t parent, const sigset_t *mask,
		       int w)
{
	ssize_t n;
	int e;

	handlers_default();
	if (c->group && setpgid(0, 0) < 0)
		goto fail;
	for (int i = 0; i < 3; i++) {
		if (fds[i] < 0)
			continue;
		if (fds[i] == i ? fcntl(i, F_SETFD, 0) < 0
				: dup2(fds[i], i) < 0)
			goto fail;
	}
	/* SIGTERM, as a user's kill would: rsync, say, removes its partial
	 * file before it goes */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		goto fail;
	/* we may have died before that: no signal would come then */
	if (getppid() != parent)
		_exit(127);
	sigprocmask(SIG_SETMASK, mask, NULL);
	execv(prog, (char *const *)c->argv);
fail:
	e = errno;
	n = write(w, &e, sizeof(e));
	(void)n;
	_exit(127);
}

/* Start a child that dies with us. PR_SET_PDEATHSIG is kept across
 * its exec but not by a fork of its own, so what it daemonizes is free.
 * -1 with errno on failure, its exec's failure included. */
static int spawn_tied(struct child *c, const int fds[3])
{
	pid_t parent = getpid();
	sigset_t all, old;
	int p[2], w, e = 0;
	char *prog = strchr(c->argv[0], '/') ? xstrdup(c->argv[0]) :
		     find_program(c->argv[0]);
	ssize_t n;

	if (!prog) {
		errno = ENOENT;
		return -1;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(prog);
		return -1;
	}
	/* not on 0-2, where the child's own fds go */
	w = fcntl(p[1], F_DUPFD_CLOEXEC, 3);
	close(p[1]);
	if (w < 0) {
		e = errno;
		close(p[0]);
		free(prog);
		errno = e;
		return -1;
	}
	/* no handler of ours runs in the child between fork and exec */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	c->pid = fork();
	if (c->pid == 0)
		tied_child(c, prog, fds, parent, &old, w);
	e = errno;
	/* both make the group, whichever comes first, so that it is there
	 * before the watcher (once the child has exec'd, this one fails:
	 * the child's made it) */
	if (c->pid > 0 && c->group)
		setpgid(c->pid, c->pid);
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(w);
	free(prog);
	if (c->pid < 0) {
		close(p[0]);
		errno = e;
		return -1;
	}
	/* the pipe closes at the exec, or carries why it failed */
	do
		n = read(p[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(p[0]);
	if (n != (ssize_t)sizeof(e))
		return 0;
	reap(c->pid);
	errno = e;
	return -1;
}

/*
 * The watcher of process group pgid (watch_group()). It ignores the
 * signals that end us and holds no file of ours but rd. It waits until
 * the pipe's other end closes: we unwatch, or we end, however we end.
 * Then it ends what is left of the group: SIGTERM, and a second later
 * SIGKILL.
 */
static void watcher(pid_t pgid, int rd, const sigset_t *mask)
{
	char b;

	handlers_default();
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	sigprocmask(SIG_SETMASK, mask, NULL);
	if (dup2(rd, 0) < 0)
		_exit(1);
	close_range(1, ~0U, 0);
	while (read(0, &b, 1) < 0 && errno == EINTR)
		;
	if (kill(-pgid, SIGTERM) == 0)
		for (int i = 0; i < 10 && kill(-pgid, 0) == 0; i++)
			sleep_ms(100);
	kill(-pgid, SIGKILL);
	_exit(0);
}

/* Start c's watcher: what c starts may leave c's group (a daemon's
 * setsid), but what stays in it ends with us. errno on failure. */
static int watch_group(struct child *c)
{
	sigset_t all, old;
	int p[2], e;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	c->watcher = fork();
	if (c->watcher == 0)
		watcher(c->pid, p[0], &old);
	e = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(p[0]);
	if (c->watcher < 0) {
		close(p[1]);
		errno = e;
		return -1;
	}
	c->watch = p[1];
	return 0;
}

/* c has ended: its watcher ends what it left in its group, and goes. */
static void unwatch(struct child *c)
{
	if (c->watch < 0)
		return;
	close(c->watch);
	c->watch = -1;
	reap(c->watcher);
	c->watcher = -1;
}

int child_start(struct child *c)
{
	int fds[3] = { c->in, c->out, c->err };
	int rc = c->lasting ? spawn_lasting(c, fds) : spawn_tied(c, fds);

	if (rc == 0 && c->group && watch_group(c) < 0) {
		int e = errno;

		/* unwatched, what it starts could outlive us */
		kill(-c->pid, SIGKILL);
		reap(c->pid);
		errno = e;
		rc = -1;
	}
	if (rc < 0) {
		c->pid = -1;
		return error_errno("cannot run %s", c->argv[0]);
	}
	return 0;
}

int child_wait_signal(struct child *c, int *sig)
{
	int status;

	*sig = 0;
	if (c->pid <= 0)
		return -1;
	while (waitpid(c->pid, &status, 0) < 0) {
		if (errno != EINTR)
			return error_errno("waiting for %s", c->argv[0]);
	}
	c->pid = -1;
	unwatch(c);
	if (WIFSIGNALED(status))
		*sig = WTERMSIG(status);
	return exit_status(status);
}

int child_wait(struct child *c)
{
	int sig;

	return child_wait_signal(c, &sig);
}

int child_poll(struct child *c, int *status)
{
	int st;
	pid_t r;

	if (c->pid <= 0)
		return -1;
	r = waitpid(c->pid, &st, WNOHANG);
	if (r < 0 && errno != EINTR)
		return error_errno("waiting for %s", c->argv[0]);
	if (r <= 0)
		return 0;
	c->pid = -1;
	unwatch(c);
	*status = exit_status(st);
	return 1;
}

void child_kill(struct child *c)
{
	if (c->pid <= 0)
		return;
	kill(c->pid, SIGTERM);
	child_wait(c);
}

/* Close both ends of pipe p that are open. */
static void close_pipe(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
}

/*
 * Start argv as c with stdin from /dev/null. Its stdout goes into a
 * pipe whose read end is *out_rd. Its stderr goes into another pipe
 * whose read end is *err_rd, or with err_rd NULL into the same one.
 * -1 having said why.
 */
static int start_piped(struct child *c, const char *const *argv,
		       int *out_rd, int *err_rd)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, rc = -1;

	if (pipe2(po, O_CLOEXEC) < 0 ||
	    (err_rd && pipe2(pe, O_CLOEXEC) < 0)) {
		error_errno("cannot make a pipe for %s's output", argv[0]);
		goto out;
	}
	c->argv = argv;
	c->out = po[1];
	c->err = err_rd ? pe[1] : po[1];
	c->in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	rc = child_start(c);
	if (c->in >= 0)
		close(c->in);
	if (rc < 0)
		goto out;
	*out_rd = po[0];
	po[0] = -1;
	if (err_rd) {
		*err_rd = pe[0];
		pe[0] = -1;
	}
out:
	close_pipe(po);
	close_pipe(pe);
	return rc;
}

/* Read each of the n fds (1 or 2) to its end into to[i], all at once:
 * a child that fills one pipe while we wait on another would never
 * end. Each fd is closed. */
static void read_all(int *fd, struct buf **to, int n)
{
	struct pollfd p[2];
	char chunk[4096];
	int open_fds = n;

	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){ fd[i], POLLIN, 0 };
	while (open_fds) {
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < n; i++) {
			ssize_t r;

			if (p[i].fd < 0 || !p[i].revents)
				continue;
			r = read(p[i].fd, chunk, sizeof(chunk));
			if (r > 0) {
				buf_add(to[i], chunk, (size_t)r);
			} else if (r == 0 || errno != EINTR) {
				p[i].fd = -1;
				open_fds--;
			}
		}
	}
	for (int i = 0; i < n; i++)
		close(fd[i]);
}

int run_capture(const char *const *argv, struct buf *out)
{
	struct child c = CHILD_INIT;
	int rd;

	if (start_piped(&c, argv, &rd, NULL) < 0)
		return -1;
	read_all(&rd, &out, 1);
	if (!out->p)
		buf_add(out, "", 0);
	return child_wait(&c);
}

int run_capture_split(const char *const *argv, struct buf *out,
		      struct buf *err)
{
	struct child c = CHILD_INIT;
	struct buf *to[2] = { out, err };
	int rd[2], rc = -1;

	if (start_piped(&c, argv, &rd[0], &rd[1]) == 0) {
		read_all(rd, to, 2);
		rc = child_wait(&c);
	}
	if (!out->p)
		buf_add(out, "", 0);
	if (!err->p)
		buf_add(err, "", 0);
	return rc;
}

int run_capture_timeout(const char *const *argv, struct buf *out,
			int timeout_ms)
{
	struct child c = CHILD_INIT;
	long long deadline = mono_ms() + timeout_ms;
	int rd = -1, st = 0, done = 0, eof = 0;
	char chunk[4096];

	if (start_piped(&c, argv, &rd, NULL) < 0)
		return -1;
	/* the output's end is not the child's (it may pass the pipe on):
	 * its exit is, looked at between reads */
	while (!done) {
		struct pollfd p = { rd, POLLIN, 0 };
		long long left = deadline - mono_ms();
		ssize_t n;

		if (left <= 0)
			break;
		if (eof) {
			sleep_ms(left < 20 ? (int)left : 20);
		} else if (poll(&p, 1, left < 100 ? (int)left : 100) > 0) {
			n = read(rd, chunk, sizeof(chunk));
			if (n > 0)
				buf_add(out, chunk, (size_t)n);
			else if (n == 0 || errno != EINTR)
				eof = 1;
		}
		done = child_poll(&c, &st) != 0;
	}
	close(rd);
	if (!out->p)
		buf_add(out, "", 0);
	if (done)
		return c.pid < 0 ? st : -1;
	kill(c.pid, SIGKILL);
	child_wait(&c);
	return RUN_TIMED_OUT;
}

char *find_program(const char *name)
{
	const char *path = nook_env_path();
	char *copy, *dir, *next = NULL, *found = NULL;

	if (strchr(name, '/'))
		return access(name, X_OK) == 0 ? xstrdup(name) : NULL;
	copy = xstrdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (dir = copy; dir && !found; dir = next) {
		char *colon = strchr(dir, ':');
		struct stat st;
		char *cand;

		next = colon ? colon + 1 : NULL;
		if (colon)
			*colon = '\0';
		cand = xasprintf("%s/%s", *dir ? dir : ".", name);
		if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(cand, X_OK) == 0)
			found = cand;
		else
			free(cand);
	}
	free(copy);
	return found;
}

/* pid's state letter and flags from /proc/PID/stat, the fields after its
 * name (which may hold spaces and parentheses): state ppid pgrp session
 * tty_nr tpgid flags. -1 with errno when it cannot be read; the state
 * is '?' when the line cannot be parsed. */
int proc_stat(pid_t pid, char *state, unsigned long *flags)
{
	char path[64];
	struct buf b = BUF_INIT;
	const char *p;

	*state = '?';
	*flags = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file_quiet(path, &b) < 0)
		return -1;
	p = strrchr(b.p, ')');
	if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %lu", state,
			 flags) < 1)
		*state = '?';
	buf_free(&b);
	return 0;
}

static int state_gone(char state)
{
	return state == 'Z' || state == 'X';
}

int proc_has_arg(pid_t pid, const char *arg)
{
	char path[64], state;
	unsigned long flags;
	struct buf b = BUF_INIT;
	int found = 0;

	/* a zombie (PID 1 here does not reap) or a dying process is gone */
	if (proc_stat(pid, &state, &flags) < 0 || state_gone(state))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (read_file_quiet(path, &b) < 0)
		return 0;
	for (size_t off = 0; off < b.len; off += strlen(b.p + off) + 1)
		if (!strcmp(b.p + off, arg))
			found = 1;
	buf_free(&b);
	return found;
}

/* the kernel's task flag, shown in /proc/PID/stat's ninth field */
#define PF_EXITING 0x4u

int proc_exiting(pid_t pid)
{
	char state;
	unsigned long flags;

	if (proc_stat(pid, &state, &flags) < 0)
		return 0;
	return state_gone(state) || (flags & PF_EXITING);
}

int proc_stopped(pid_t pid)
{
	char state;
	unsigned long flags;

	if (proc_stat(pid, &state, &flags) < 0)
		return 0;
	return state == 'T' || state == 't';
}

uint64_t proc_resident(pid_t pid)
{
	char path[64];
	struct buf b = BUF_INIT;
	unsigned long long kb = 0;
	const char *l;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_file_quiet(path, &b) < 0)
		return 0;
	l = strstr(b.p, "\nVmRSS:");
	if (!l || sscanf(l + 7, "%llu kB", &kb) != 1)
		kb = 0;
	buf_free(&b);
	return (uint64_t)kb << 10;
}

pid_t pidfile_owner(const char *pidfile, const char *arg)
{
	struct buf b = BUF_INIT;
	char *end;
	long pid;

	if (read_file_quiet(pidfile, &b) < 0)
		return 0;
	pid = strtol(b.p, &end, 10);
	if (end == b.p || (*end && *end != '\n') || pid <= 1 || pid > 1 << 22)
		pid = 0;
	buf_free(&b);
	/* a recycled pid belongs to some other program */
	return pid && proc_has_arg((pid_t)pid, arg) ? (pid_t)pid : 0;
}

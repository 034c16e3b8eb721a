/*
 * The cluster's switch: a VDE learning switch (vde_switch) per cluster
 * directory, reached only through unix sockets inside that directory.
 * DIR/sw is vde_switch's socket directory (its "ctl" socket and one data
 * socket per port), DIR/sw.pid its pid, DIR/sw.log what it said before it
 * went to the background, DIR/sw.lock serializes start and stop. Each
 * start also makes sure the switch's router advertisement responder
 * (net/ra.c, DIR/ra.*) is plugged in; it ends when the switch does.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "net.h"

#define SWITCH_PROGRAM "vde_switch"
/* ports at once: one per running node, the old one of a restarting node,
 * the router advertisements' responder */
#define SWITCH_PORTS "256"

struct sw_paths {
	char *ctl, *pid, *log, *lock;
};

static void sw_paths_init(struct sw_paths *p, const char *dir)
{
	p->ctl = xasprintf("%s/sw", dir);
	p->pid = xasprintf("%s/sw.pid", dir);
	p->log = xasprintf("%s/sw.log", dir);
	p->lock = xasprintf("%s/sw.lock", dir);
}

static void sw_paths_free(struct sw_paths *p)
{
	free(p->ctl);
	free(p->pid);
	free(p->log);
	free(p->lock);
	memset(p, 0, sizeof(*p));
}

static pid_t alive(const struct sw_paths *p)
{
	return pidfile_owner(p->pid, p->ctl);
}

pid_t net_switch_alive(const char *dir)
{
	struct sw_paths p;
	pid_t pid;

	sw_paths_init(&p, dir);
	pid = alive(&p);
	sw_paths_free(&p);
	return pid;
}

/* Absolute, short enough for its sockets, a 0700 directory of ours: no
 * other user can reach a socket inside. */
static int check_dir(const char *dir)
{
	struct stat st;

	if (dir[0] != '/')
		return errorf("switch directory '%s' is not an absolute path",
			      dir);
	if (strlen(dir) + sizeof(NET_SWITCH_LONGEST_SOCKET) >
	    sizeof(((struct sockaddr_un *)0)->sun_path)) {
		errno = ENAMETOOLONG;
		return error_errno("switch directory %s", dir);
	}
	if (lstat(dir, &st) < 0)
		return error_errno("switch directory %s", dir);
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077))
		return errorf("switch directory %s must be a directory of "
			      "yours with mode 0700 (it has mode %04o)", dir,
			      (unsigned)st.st_mode & 07777);
	return 0;
}

/* Hold path's lock, waiting at most 10 s for another nook. */
static int sw_lock(const char *path, int *fd)
{
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0)
		return error_errno("cannot open %s", path);
	if (flock_wait(*fd, 10000) < 0) {
		int ret = error_errno("cannot lock %s", path);

		close(*fd);
		*fd = -1;
		return ret;
	}
	return 0;
}

static int start_failed(const struct sw_paths *p, int status)
{
	struct buf log = BUF_INIT;
	int ret;

	read_file_quiet(p->log, &log);
	while (log.len && log.p[log.len - 1] == '\n')
		log.p[--log.len] = '\0';
	ret = errorf("%s failed to start (exit %d): %s", SWITCH_PROGRAM,
		     status, log.len ? log.p : "(no message)");
	buf_free(&log);
	return ret;
}

/* Run vde_switch -d and wait (at most 5 s) for its first process, which
 * exits once the sockets are bound and the daemon is forked. */
static int spawn(const struct sw_paths *p)
{
	const char *argv[] = { SWITCH_PROGRAM, "-s", p->ctl, "-m", "0600",
			       "--dirmode", "0700", "-n", SWITCH_PORTS,
			       "-f", "/dev/null", "-p", p->pid, "-d", NULL };
	struct child c = CHILD_INIT;
	long long end = mono_ms() + 5000;
	int rc, status = -1;

	c.argv = argv;
	c.lasting = 1; /* the switch outlives us, its nodes' QEMUs too */
	c.in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	c.out = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	c.err = c.out;
	rc = c.in < 0 || c.out < 0 ? error_errno("cannot write %s", p->log) :
	     child_start(&c);
	if (c.in >= 0)
		close(c.in);
	if (c.out >= 0)
		close(c.out);
	if (rc < 0)
		return -1;
	for (;;) {
		rc = child_poll(&c, &status);
		if (rc != 0 || mono_ms() >= end)
			break;
		sleep_ms(10);
	}
	if (rc == 0) {
		child_kill(&c);
		return errorf("%s did not go to the background within 5 s",
			      SWITCH_PROGRAM);
	}
	if (rc < 0)
		return -1;
	return status ? start_failed(p, status) : 0;
}

/* The daemon writes its pid file just after it forks: wait for it. */
static int wait_up(const struct sw_paths *p)
{
	for (int waited = 0; waited <= 3000; waited += 20) {
		if (alive(p))
			return 0;
		sleep_ms(20);
	}
	return errorf("%s started but does not run; see %s", SWITCH_PROGRAM,
		      p->log);
}

int net_switch_start(const char *dir)
{
	struct sw_paths p;
	char *prog;
	int lock = -1, ret = -1, have;

	if (check_dir(dir) < 0)
		return -1;
	sw_paths_init(&p, dir);
	if (sw_lock(p.lock, &lock) < 0)
		goto out;
	ret = 0;
	if (alive(&p))
		goto answer;
	ret = -1;
	prog = find_program(SWITCH_PROGRAM);
	have = prog != NULL;
	free(prog);
	if (!have) {
		errorf("%s not found: a cluster's network needs it (Debian: "
		       "apt-get install vde2)", SWITCH_PROGRAM);
		goto out;
	}
	/* A switch that died leaves its pid file, which vde_switch will not
	 * overwrite, and its sockets. */
	if (unlink(p.pid) < 0 && errno != ENOENT) {
		error_errno("cannot remove %s", p.pid);
		goto out;
	}
	if (remove_tree(p.ctl) < 0 || spawn(&p) < 0 || wait_up(&p) < 0)
		goto out;
	ret = 0;
answer:
	/* also for a switch of an older nook, or one whose responder died */
	net_ra_start(dir);
out:
	if (lock >= 0)
		close(lock);
	sw_paths_free(&p);
	return ret;
}

static int wait_gone(const struct sw_paths *p, pid_t pid, int ms)
{
	for (int waited = 0; waited <= ms; waited += 20) {
		if (!proc_has_arg(pid, p->ctl))
			return 1;
		sleep_ms(20);
	}
	return 0;
}

int net_switch_stop_unused(const char *dir, int (*in_use)(void *ctx),
			   void *ctx)
{
	struct sw_paths p;
	int lock = -1, ret = -1;
	pid_t pid;

	sw_paths_init(&p, dir);
	if (sw_lock(p.lock, &lock) < 0)
		goto out;
	ret = 1;
	if (in_use && in_use(ctx))
		goto out;
	ret = -1;
	pid = alive(&p);
	if (pid && !(kill(pid, SIGTERM) == 0 && wait_gone(&p, pid, 3000)) &&
	    !(kill(pid, SIGKILL) == 0 && wait_gone(&p, pid, 2000))) {
		errorf("the switch (%s, pid %d) survived SIGKILL",
		       SWITCH_PROGRAM, (int)pid);
		goto out;
	}
	net_ra_stop(dir);
	/* SIGTERM has it remove its sockets and pid file; SIGKILL not */
	if (unlink(p.pid) < 0 && errno != ENOENT) {
		error_errno("cannot remove %s", p.pid);
		goto out;
	}
	ret = remove_tree(p.ctl);
out:
	if (lock >= 0)
		close(lock);
	sw_paths_free(&p);
	return ret;
}

int net_switch_stop(const char *dir)
{
	return net_switch_stop_unused(dir, NULL, NULL);
}

/* path as libvdeplug reads it: it takes ' " \ as quotes and escapes, cuts
 * at [ (its options), and would load a plugin named by what comes before
 * a "://"; and as QEMU reads an option value: a comma is doubled. */
static void add_vde_path(struct buf *out, const char *path)
{
	for (const char *c = path; *c; c++) {
		if (strchr("'\"\\[]", *c) ||
		    (*c == '/' && c > path && c[-1] == ':'))
			buf_adds(out, "\\");
		if (*c == ',')
			buf_adds(out, ",");
		buf_add(out, c, 1);
	}
}

void net_switch_netdev(const char *dir, int node, const char *id,
		       struct buf *out)
{
	struct sw_paths p;

	(void)node;
	sw_paths_init(&p, dir);
	buf_addf(out, "vde,id=%s,sock=", id);
	add_vde_path(out, p.ctl);
	sw_paths_free(&p);
}

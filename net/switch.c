/*
 * The cluster's switch: nook run again ("nook __switch DIR"), one process
 * per cluster directory DIR, in a session of its own. It is a learning
 * Ethernet switch that speaks VDE's plug protocol, the one QEMU's
 * "-netdev vde" speaks through libvdeplug, and it tells the nodes there is
 * no router (net/ra.c).
 *
 * Not Debian's vde_switch (vde2 2.3.2), which nook ran until 2026-12: it
 * keeps for good the port of a plug whose request it read after another
 * plug left or after a later plug's request (its poll table's index goes
 * stale), so a long-lived cluster fills its 255 ports and the next node
 * hangs. Nor libvdeplug4's switch module ("vde_plug switch://"), which
 * spins on a connection that ends before its request: a core gone until
 * the cluster stops. The protocol is small:
 *
 * - A plug binds a datagram socket in DIR/sw, connects a stream socket to
 *   DIR/sw/ctl and sends a request: magic 0xfeedface, version 3, type 0
 *   (a new port), its datagram socket's address, a description.
 * - The switch makes the port: a datagram socket of its own, connected to
 *   the plug's and bound at DIR/sw/portN, whose address it answers. The
 *   plug connects its socket to that address and unlinks its own name.
 *   Frames go both ways over the pair, one per datagram.
 * - The port lasts as long as the stream: EOF on it ends the port.
 *
 * Files in DIR: sw/ (0700: ctl and the ports, all 0600), switch.lock (held
 * while the switch runs), switch.pid, switch.log (what it did: its start,
 * its advertisements, its stderr; kept across switches), sw.lock (start
 * and stop take it). An older nook ran vde_switch there (sw.pid) beside
 * a responder "nook __ra" (ra.lock, ra.pid): such a switch is still
 * joined, and stopped, as this one is.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net.h"

struct sw_paths {
	char *dir;     /* an argument of the switch's (and the responder's) */
	char *sw, *ctl, *lock, *run, *pid, *log;
	char *old_pid, *old_ra_lock, *old_ra_pid; /* an older nook's */
};

static void sw_paths_init(struct sw_paths *p, const char *dir)
{
	p->dir = xstrdup(dir);
	p->sw = xasprintf("%s/sw", dir);
	p->ctl = xasprintf("%s/sw/ctl", dir);
	p->lock = xasprintf("%s/sw.lock", dir);
	p->run = xasprintf("%s/switch.lock", dir);
	p->pid = xasprintf("%s/switch.pid", dir);
	p->log = xasprintf("%s/switch.log", dir);
	p->old_pid = xasprintf("%s/sw.pid", dir);
	p->old_ra_lock = xasprintf("%s/ra.lock", dir);
	p->old_ra_pid = xasprintf("%s/ra.pid", dir);
}

static void sw_paths_free(struct sw_paths *p)
{
	free(p->dir);
	free(p->sw);
	free(p->ctl);
	free(p->lock);
	free(p->run);
	free(p->pid);
	free(p->log);
	free(p->old_pid);
	free(p->old_ra_lock);
	free(p->old_ra_pid);
	memset(p, 0, sizeof(*p));
}

/* A process that takes its lock writes its pid within this (at once) */
#define PID_WITHIN_MS 2000

/*
 * The process holding lockfile, 0 when none does: the lock is taken while
 * the process runs, and only then. Its pid is in pidfile, which it writes
 * just after it takes the lock: until then the file names the holder
 * before it, dead, or nothing (half written), so a pid is trusted only
 * when one of that process's arguments is p's directory, and the lock is
 * asked again a moment later while it is not. Shared: the lock another
 * nook asking just now holds for a moment is no holder.
 */
static pid_t lock_holder(const struct sw_paths *p, const char *lockfile,
			 const char *pidfile)
{
	int fd = open(lockfile, O_RDWR | O_CLOEXEC);
	pid_t pid = 0;

	for (int waited = 0; fd >= 0 && !pid; waited += 10) {
		if (flock(fd, LOCK_SH | LOCK_NB) == 0 ||
		    errno != EWOULDBLOCK || waited > PID_WITHIN_MS)
			break;
		pid = pidfile_owner(pidfile, p->dir);
		if (!pid)
			sleep_ms(10);
	}
	if (fd >= 0)
		close(fd);
	return pid;
}

/* An older nook's vde_switch, told by its socket directory among its
 * arguments (a pid file alone is not trusted). */
static pid_t old_switch(const struct sw_paths *p)
{
	return pidfile_owner(p->old_pid, p->sw);
}

static pid_t alive(const struct sw_paths *p)
{
	pid_t pid = lock_holder(p, p->run, p->pid);

	return pid ? pid : old_switch(p);
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

/* What the switch wrote on fd before it closed it, waiting at most ms:
 * 1 once it closed it, 0 when the wait ran out first. */
static int read_said(int fd, struct buf *said, int ms)
{
	long long end = mono_ms() + ms;
	char chunk[256];

	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		long long left = end - mono_ms();
		ssize_t n;

		int r = left > 0 ? poll(&pfd, 1, (int)left) : 0;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 1;
		buf_add(said, chunk, (size_t)n);
	}
}

/* how long a start waits for the switch to say it takes plugs */
#define READY_WITHIN_MS 5000
/* of its log, what an error quotes at most */
#define LOG_QUOTED 600

/* The end of what the switch logged from offset from on (its start's
 * lines, a crash's words: its stderr is its log), into out: whole lines,
 * not the newline after the last. */
static void log_since(const char *log, long long from, struct buf *out)
{
	long long size = file_size(log);
	const char *nl;

	if (size < from) /* it began a new one (open_log()) */
		from = 0;
	if (read_file_tail(log, from, LOG_QUOTED, out) < 0)
		return;
	nl = size - from > LOG_QUOTED ? memchr(out->p, '\n', out->len) : NULL;
	if (nl) { /* cut inside a line: from the next one on */
		out->len -= (size_t)(nl + 1 - out->p);
		memmove(out->p, nl + 1, out->len + 1);
	}
	buf_trim_newlines(out);
}

/* Why a switch that said nothing on its pipe did not start (ended: it
 * closed it; else it still runs, late), with what it logged since from
 * in log and what to do. -1. */
static int silent_switch(const char *log, long long from, int ended)
{
	struct buf b = BUF_INIT, why = BUF_INIT;
	int ret;

	if (ended)
		buf_adds(&why, "it ended without saying why (dmesg may say "
			 "how: a crash, an out-of-memory kill)");
	else
		buf_addf(&why, "it did not say it was ready within %d s (a "
			 "host that busy?)", READY_WITHIN_MS / 1000);
	log_since(log, from, &b);
	ret = errorf("the cluster's switch did not start: %s; start the "
		     "cluster again, and if it fails again, see %s%s%s",
		     why.p, log, b.len ? ", which ends:\n" : " (it wrote "
		     "nothing there)", b.len ? b.p : "");
	buf_free(&why);
	buf_free(&b);
	return ret;
}

/*
 * Run "nook __switch DIR" as nobody's child, in a session of its own, with
 * no fd of ours (a lock held, a pipe a reader waits on) but fd 3, on
 * which it says "1" once it takes plugs, or why it cannot.
 */
static int spawn(const char *dir, const char *log)
{
	struct buf said = BUF_INIT;
	long long logged = file_size(log);
	int pfd[2], st = 0, ret = 0, ended;
	pid_t pid;

	/* a program that is not nook would run itself again, and again */
	if (getenv("NOOK_SWITCH_CHILD"))
		return errorf("a switch does not start another");
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return error_errno("cannot start the switch");
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int w = fcntl(pfd[1], F_DUPFD, 4); /* not on 0-2 */
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (setsid() < 0 || w < 0 || null < 0 || dup2(null, 0) < 0 ||
		    dup2(null, 1) < 0 || dup2(null, 2) < 0 ||
		    dup2(w, 3) < 0 || close_range(4, ~0U, 0) < 0)
			_exit(1);
		if (fork() == 0) {
			const char *argv[] = { "nook", NET_SWITCH_ARGV1, dir,
					       NULL };

			if (setenv("NOOK_SWITCH_CHILD", "1", 1) == 0)
				execv("/proc/self/exe", (char *const *)argv);
			dprintf(3, "cannot run /proc/self/exe: %s",
				strerror(errno));
			_exit(127);
		}
		_exit(0);
	}
	close(pfd[1]);
	if (pid < 0) {
		close(pfd[0]);
		return error_errno("cannot start the switch");
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	/* EOF once the switch takes plugs, has failed, or never ran */
	ended = read_said(pfd[0], &said, READY_WITHIN_MS);
	close(pfd[0]);
	if (said.len == 1 && said.p[0] == '1')
		ret = 0;
	else if (said.len || st)
		ret = errorf("the cluster's switch did not start: %s",
			     said.len ? said.p : "it could not leave "
			     "nook's session");
	else
		ret = silent_switch(log, logged, ended);
	buf_free(&said);
	return ret;
}

int net_switch_start(const char *dir)
{
	struct sw_paths p;
	int lock = -1, ret = -1;
	pid_t pid;

	if (check_dir(dir) < 0)
		return -1;
	sw_paths_init(&p, dir);
	if (sw_lock(p.lock, &lock) < 0)
		goto out;
	pid = alive(&p);
	/* it would take a node's plug in its backlog and never answer:
	 * QEMU's start waits on it for good */
	if (pid && proc_stopped(pid)) {
		errorf("the cluster's switch (pid %d) is stopped (SIGSTOP), "
		       "and a node would wait for it for good: 'kill -CONT "
		       "%d' lets it run again", (int)pid, (int)pid);
		goto out;
	}
	ret = 0;
	if (pid)
		goto out;
	ret = -1;
	/* a switch that died leaves its sockets */
	if (remove_tree(p.sw) < 0)
		goto out;
	if (mkdir(p.sw, 0700) < 0) {
		error_errno("cannot make %s", p.sw);
		goto out;
	}
	ret = spawn(dir, p.log);
out:
	if (lock >= 0)
		close(lock);
	sw_paths_free(&p);
	return ret;
}

static int ours_runs(const struct sw_paths *p, pid_t pid)
{
	return lock_holder(p, p->run, p->pid) == pid;
}

static int old_switch_runs(const struct sw_paths *p, pid_t pid)
{
	return proc_has_arg(pid, p->sw);
}

static int old_ra_runs(const struct sw_paths *p, pid_t pid)
{
	return lock_holder(p, p->old_ra_lock, p->old_ra_pid) == pid;
}

static int wait_gone(const struct sw_paths *p, pid_t pid, int ms,
		     int (*runs)(const struct sw_paths *, pid_t))
{
	for (int waited = 0; waited <= ms; waited += 20) {
		if (!runs(p, pid))
			return 1;
		sleep_ms(20);
	}
	return 0;
}

/* End pid (0: none) with SIGTERM, then SIGKILL after a few seconds. */
static int end(const struct sw_paths *p, pid_t pid,
	       int (*runs)(const struct sw_paths *, pid_t))
{
	if (!pid || (kill(pid, SIGTERM) == 0 &&
		     wait_gone(p, pid, 3000, runs)) ||
	    (kill(pid, SIGKILL) == 0 && wait_gone(p, pid, 2000, runs)) ||
	    errno == ESRCH) /* it ended by itself meanwhile */
		return 0;
	return errorf("the cluster's switch (pid %d) survived SIGKILL",
		      (int)pid);
}

int net_switch_stop_unused(const char *dir, int (*in_use)(void *ctx),
			   void *ctx)
{
	struct sw_paths p;
	int lock = -1, ret = -1;

	sw_paths_init(&p, dir);
	if (sw_lock(p.lock, &lock) < 0)
		goto out;
	ret = 1;
	if (in_use && in_use(ctx))
		goto out;
	ret = -1;
	if (end(&p, lock_holder(&p, p.run, p.pid), ours_runs) < 0 ||
	    end(&p, old_switch(&p), old_switch_runs) < 0 ||
	    end(&p, lock_holder(&p, p.old_ra_lock, p.old_ra_pid),
		old_ra_runs) < 0)
		goto out;
	if ((unlink(p.pid) < 0 && errno != ENOENT) ||
	    (unlink(p.old_pid) < 0 && errno != ENOENT)) {
		error_errno("cannot remove the switch's pid file in %s", dir);
		goto out;
	}
	ret = remove_tree(p.sw);
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
	add_vde_path(out, p.sw);
	sw_paths_free(&p);
}

/* --- the switch's process --- */

/* plugs at once: the nodes, the old plug of a node that restarts */
#define MAX_PORTS 256
/* fds the switch keeps besides its ports' two each */
#define FDS_SPARE 16
/* MACs it knows the port of, each for FDB_AGE_MS after its last frame */
#define FDB_SIZE 256
#define FDB_AGE_MS (300 * 1000)
/* QEMU's NET_BUFSIZE: no frame QEMU sends or takes is larger (a guest's
 * MTU goes up to 65535) */
#define FRAME_MAX (4096 + 65536)
#define MAX_PER_SECOND 20   /* answers: a guest that floods gets fewer */
#define MAX_LOG_LINES 1000  /* then the log says it stops */
/* The log, kept across switches (a resumed cluster's says what came
 * before); past LOG_KEEP bytes it becomes switch.log.1, the one before it
 * goes. Each switch logs at most MAX_LOG_LINES lines. */
#define LOG_KEEP (64 * 1024)

/* libvdeplug's request for a port (its struct request_v3: packed, host
 * byte order), then a description it does not end with a NUL. */
struct vde_request {
	uint32_t magic;           /* VDE_MAGIC */
	uint32_t version;         /* 3 */
	uint32_t type;            /* 0: a new port; any number in bits 8- */
	struct sockaddr_un sock;  /* the plug's datagram socket */
	char descr[128];
} __attribute__((packed));

#define VDE_MAGIC 0xfeedface

struct port {
	int ctl;       /* the plug's stream; -1: a free slot */
	int data;      /* ours, its pair; -1 until its request came */
	unsigned id;   /* ours is bound at sw/port<id> */
	long long due; /* its request, by mono_ms() */
};

/* libvdeplug sends its request as soon as it connects: a connection
 * silent for this long is no plug, and gives its port back */
#define REQUEST_WITHIN_MS 5000

struct fdb_entry {
	unsigned char mac[6];
	int port;      /* -1: a free entry */
	long long seen;
};

/*
 * The unasked advertisements: when, after a node's report, each goes (ms);
 * a node's reports within BURST_QUIET ms of the last burst's start (its
 * kernel repeats them) start none. A table of BURSTS nodes bounds what a
 * guest that sends reports from many addresses gets.
 */
static const int burst_at[] = { 0, 150, 400, 800, 1500 };
#define NBURST_AT (sizeof(burst_at) / sizeof(burst_at[0]))
#define BURST_QUIET 5000
#define BURSTS 64

struct burst {
	unsigned char node[6];   /* the reporting node's MAC */
	unsigned char frame[NET_RA_FRAME];
	long long start;   /* 0: a free slot */
	size_t sent;       /* of burst_at's */
};

struct sw {
	char *dir;                /* sw/, where the ports are */
	struct stat dir_st;       /* a plug's socket must be in it */
	int listener;
	struct port ports[MAX_PORTS];
	int nports;               /* of them its fds have room for */
	unsigned next_id;
	struct fdb_entry fdb[FDB_SIZE];
	unsigned char mac[6];     /* the advertisements' */
	struct burst bursts[BURSTS];
	long long second;         /* answers this second */
	int answers;
	int log;
	long lines;
	char *run;                /* switch.lock, which it holds: */
	int run_fd;               /* how nook finds it */
};

static void sw_log(struct sw *s, const char *what, const unsigned char *m)
{
	char line[128];
	int n;

	if (s->log < 0 || ++s->lines > MAX_LOG_LINES)
		return;
	if (s->lines == MAX_LOG_LINES)
		n = snprintf(line, sizeof(line), "(%d lines: no more are "
			     "logged)\n", MAX_LOG_LINES);
	else
		n = snprintf(line, sizeof(line),
			     "%s %02x:%02x:%02x:%02x:%02x:%02x\n", what,
			     m[0], m[1], m[2], m[3], m[4], m[5]);
	if (n > 0 && write_all(s->log, line, (size_t)n) < 0)
		s->lines = MAX_LOG_LINES; /* a full disk: stop trying */
}

static int open_log(const char *path)
{
	struct stat st;
	int fd;

	if (stat(path, &st) == 0 && st.st_size > LOG_KEEP) {
		char *old = xasprintf("%s.1", path);

		rename(path, old);
		free(old);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0)
		dprintf(fd, "switch %d started\n", (int)getpid());
	return fd;
}

/* The port mac was last seen on, or -1. */
static int fdb_find(struct sw *s, const unsigned char *mac, long long now)
{
	for (int i = 0; i < FDB_SIZE; i++)
		if (s->fdb[i].port >= 0 && !memcmp(s->fdb[i].mac, mac, 6) &&
		    now - s->fdb[i].seen < FDB_AGE_MS)
			return s->fdb[i].port;
	return -1;
}

/* mac was seen on port: kept in its entry, a free one, or the oldest. */
static void fdb_learn(struct sw *s, const unsigned char *mac, int port,
		      long long now)
{
	struct fdb_entry *e = NULL;

	for (int i = 0; i < FDB_SIZE; i++) {
		struct fdb_entry *f = &s->fdb[i];

		if (f->port >= 0 && !memcmp(f->mac, mac, 6)) {
			e = f;
			break;
		}
		if (!e || (e->port >= 0 && (f->port < 0 || f->seen < e->seen)))
			e = f;
	}
	memcpy(e->mac, mac, 6);
	e->port = port;
	e->seen = now;
}

/* Send frame f (n bytes) from port from (-1: the switch itself) on: to
 * the port its destination was last seen on, else to every port but
 * from. A port that cannot take it now loses it, as on a wire. */
static void forward(struct sw *s, const unsigned char *f, size_t n, int from)
{
	int to = (f[0] & 1) ? -1 : fdb_find(s, f, mono_ms());

	if (to >= 0) {
		if (to != from)
			(void)send(s->ports[to].data, f, n,
				   MSG_DONTWAIT | MSG_NOSIGNAL);
		return;
	}
	for (int i = 0; i < MAX_PORTS; i++)
		if (i != from && s->ports[i].data >= 0)
			(void)send(s->ports[i].data, f, n,
				   MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Start a burst of ad (m bytes) for the node that sent in, unless it had
 * one lately or the table is full. 1 when one starts. */
static int burst_begin(struct burst *b, const unsigned char *in,
		       const unsigned char *ad, size_t m, long long now)
{
	struct burst *free_slot = NULL;

	for (int i = 0; i < BURSTS; i++) {
		if (b[i].start && now - b[i].start >= BURST_QUIET)
			b[i].start = 0;
		if (!b[i].start) {
			free_slot = free_slot ? free_slot : &b[i];
			continue;
		}
		if (!memcmp(b[i].node, in + 6, 6))
			return 0;
	}
	if (!free_slot || m != sizeof(free_slot->frame))
		return 0;
	memcpy(free_slot->node, in + 6, 6);
	memcpy(free_slot->frame, ad, m);
	free_slot->start = now;
	free_slot->sent = 0;
	return 1;
}

/* Send what is due; the ms until the next one is, or -1 for none. */
static int burst_send(struct sw *s, long long now)
{
	struct burst *b = s->bursts;
	long long next = -1;

	for (int i = 0; i < BURSTS; i++) {
		long long due;

		if (!b[i].start || b[i].sent == NBURST_AT)
			continue;
		due = b[i].start + burst_at[b[i].sent];
		if (due <= now) {
			forward(s, b[i].frame, sizeof(b[i].frame), -1);
			/* a switch that was not run for a while skips what
			 * is past: the burst keeps its spread */
			while (b[i].sent < NBURST_AT &&
			       b[i].start + burst_at[b[i].sent] <= now)
				b[i].sent++;
			if (b[i].sent == NBURST_AT)
				continue;
			due = b[i].start + burst_at[b[i].sent];
		}
		if (next < 0 || due < next)
			next = due;
	}
	return next < 0 ? -1 : (int)(next > now ? next - now : 0);
}

/* A frame came in on port from: learn, forward, and tell a node that
 * solicits, or whose IPv6 comes up, that there is no router. */
static void frame_in(struct sw *s, const unsigned char *in, size_t n,
		     int from)
{
	unsigned char out[NET_RA_FRAME];
	long long now = mono_ms();
	size_t m;

	if (!(in[6] & 1) && memcmp(in + 6, s->mac, 6))
		fdb_learn(s, in + 6, from, now);
	forward(s, in, n, from);
	m = net_ra_unasked(in, n, s->mac, out, sizeof(out));
	if (m && burst_begin(s->bursts, in, out, m, now))
		sw_log(s, "advertising unasked to", in + 6);
	m = net_ra_answer(in, n, s->mac, out, sizeof(out));
	if (!m)
		return;
	if (now / 1000 != s->second) {
		s->second = now / 1000;
		s->answers = 0;
	}
	if (++s->answers > MAX_PER_SECOND)
		return;
	forward(s, out, m, -1);
	sw_log(s, "answered a router solicitation from", in + 6);
}

static void port_frames(struct sw *s, int i)
{
	static unsigned char in[FRAME_MAX];

	for (int k = 0; k < 64 && s->ports[i].data >= 0; k++) {
		ssize_t n = recv(s->ports[i].data, in, sizeof(in),
				 MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0)
			return;
		/* n is the whole frame's length: a cut one goes nowhere */
		if (n >= 14 && n <= (ssize_t)sizeof(in))
			frame_in(s, in, (size_t)n, i);
	}
}

static void port_path(const struct sw *s, const struct port *pt,
		      struct sockaddr_un *a)
{
	*a = (struct sockaddr_un){ AF_UNIX, "" };
	snprintf(a->sun_path, sizeof(a->sun_path), "%s/port%u", s->dir,
		 pt->id);
}

static void port_close(struct sw *s, int i)
{
	struct port *pt = &s->ports[i];
	struct sockaddr_un a;

	close(pt->ctl);
	if (pt->data >= 0) {
		close(pt->data);
		port_path(s, pt, &a);
		unlink(a.sun_path);
	}
	pt->ctl = pt->data = -1;
	for (int k = 0; k < FDB_SIZE; k++)
		if (s->fdb[k].port == i)
			s->fdb[k].port = -1;
}

/* 1 when path names something directly in s's directory (the plug's
 * path may be another spelling of it: libvdeplug resolves symlinks). */
static int in_dir(const struct sw *s, const char *path)
{
	char *d = xstrdup(path), *slash = strrchr(d, '/');
	struct stat st;
	int yes = 0;

	if (slash && slash > d) {
		*slash = '\0';
		yes = stat(d, &st) == 0 && st.st_dev == s->dir_st.st_dev &&
		      st.st_ino == s->dir_st.st_ino;
	}
	free(d);
	return yes;
}

/* The plug of port pt sent its request: make its datagram socket, the
 * pair of the plug's, and answer where it is. -1 for anything else. */
static int port_open(struct sw *s, struct port *pt)
{
	struct vde_request req;
	struct sockaddr_un at;
	ssize_t n = recv(pt->ctl, &req, sizeof(req), MSG_DONTWAIT);

	if (n < (ssize_t)offsetof(struct vde_request, descr) ||
	    req.magic != VDE_MAGIC || req.version != 3 ||
	    (req.type & 0xff) != 0 || req.sock.sun_family != AF_UNIX)
		return -1;
	req.sock.sun_path[sizeof(req.sock.sun_path) - 1] = '\0';
	/* frames go to no socket but a plug's in our directory */
	if (!in_dir(s, req.sock.sun_path))
		return -1;
	port_path(s, pt, &at);
	unlink(at.sun_path);
	pt->data = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			  0);
	if (pt->data < 0 ||
	    connect(pt->data, (struct sockaddr *)&req.sock,
		    sizeof(req.sock)) < 0 ||
	    bind(pt->data, (struct sockaddr *)&at, sizeof(at)) < 0 ||
	    chmod(at.sun_path, 0600) < 0 ||
	    send(pt->ctl, &at, sizeof(at), MSG_DONTWAIT | MSG_NOSIGNAL) !=
		    (ssize_t)sizeof(at))
		return -1;
	return 0;
}

/* The plug's stream of port i: its request, or its end. */
static void port_ctl(struct sw *s, int i)
{
	struct port *pt = &s->ports[i];
	char junk[256];
	ssize_t n;

	if (pt->data < 0) {
		if (port_open(s, pt) < 0)
			port_close(s, i);
		return;
	}
	/* a plug says nothing once it has its port: EOF ends it */
	n = recv(pt->ctl, junk, sizeof(junk), MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		port_close(s, i);
}

static void port_accept(struct sw *s)
{
	int fd = accept4(s->listener, NULL, NULL,
			 SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	for (int i = 0; i < s->nports; i++)
		if (s->ports[i].ctl < 0) {
			s->ports[i] = (struct port){
				fd, -1, s->next_id++,
				mono_ms() + REQUEST_WITHIN_MS };
			return;
		}
	close(fd); /* every port taken: the plug is told by EOF */
}

/* End the connections whose request is overdue. The ms until the next
 * one is due, or wait if that comes first (-1: neither). */
static int requests_due(struct sw *s, long long now, int wait)
{
	for (int i = 0; i < MAX_PORTS; i++) {
		struct port *pt = &s->ports[i];
		long long left = pt->due - now;

		if (pt->ctl < 0 || pt->data >= 0)
			continue;
		if (left <= 0)
			port_close(s, i);
		else if (wait < 0 || left < wait)
			wait = (int)left;
	}
	return wait;
}

/* How often the switch looks whether nook can still find it. */
#define LOST_CHECK_MS 2000

/* 1 when s's lock file is no longer where nook looks for it (its
 * directory removed, or made again for another switch): no nook finds
 * s to stop it, once its nodes stop it serves none. */
static int lost(const struct sw *s)
{
	struct stat held, there;

	if (fstat(s->run_fd, &held) < 0)
		return 0;
	if (stat(s->run, &there) < 0)
		return errno == ENOENT || errno == ENOTDIR;
	return held.st_dev != there.st_dev || held.st_ino != there.st_ino;
}

static int plugged(const struct sw *s)
{
	for (int i = 0; i < MAX_PORTS; i++)
		if (s->ports[i].ctl >= 0)
			return 1;
	return 0;
}

/* Move frames until killed (net_switch_stop() sends SIGTERM), or until
 * it is lost to nook with no plug left: 0 then, else 1. */
static int serve(struct sw *s)
{
	static struct pollfd pfd[1 + 2 * MAX_PORTS];
	static int port_of[1 + 2 * MAX_PORTS];
	long long look = mono_ms() + LOST_CHECK_MS;

	for (;;) {
		long long now = mono_ms();
		int wait = requests_due(s, now, burst_send(s, now)), n = 0, r;

		if (now >= look) {
			if (!plugged(s) && lost(s)) {
				if (s->log >= 0)
					dprintf(s->log, "%s is gone, and no "
						"plug is left: ending\n",
						s->run);
				return 0;
			}
			look = now + LOST_CHECK_MS;
		}
		if (wait < 0 || wait > look - now)
			wait = (int)(look - now);

		pfd[n++] = (struct pollfd){ s->listener, POLLIN, 0 };
		for (int i = 0; i < MAX_PORTS; i++) {
			if (s->ports[i].ctl < 0)
				continue;
			port_of[n] = i;
			pfd[n++] = (struct pollfd){ s->ports[i].ctl, POLLIN,
						    0 };
			if (s->ports[i].data < 0)
				continue;
			port_of[n] = i;
			pfd[n++] = (struct pollfd){ s->ports[i].data, POLLIN,
						    0 };
		}
		r = poll(pfd, (nfds_t)n, wait);
		if (r < 0 && errno == ENOMEM) /* the nodes' link: not given up */
			sleep_ms(100);
		else if (r < 0 && errno != EINTR)
			return 1;
		if (r <= 0)
			continue;
		/* a port closed in this round stays free until the next:
		 * no fd of it is taken for another's */
		for (int k = 1; k < n; k++) {
			struct port *pt = &s->ports[port_of[k]];

			if (!pfd[k].revents || pt->ctl < 0)
				continue;
			if (pfd[k].fd == pt->ctl)
				port_ctl(s, port_of[k]);
			else if (pfd[k].fd == pt->data)
				port_frames(s, port_of[k]);
		}
		if (pfd[0].revents)
			port_accept(s);
	}
}

/*
 * The ports the open-file limit has room for, raised to MAX_PORTS' need
 * if it can be: a shell's "ulimit -n 256" would refuse nodes past about
 * 120, and a plug accept() has no fd for stays queued, which poll() says
 * for ever. Past the ports a plug is refused at once instead.
 */
static int room_for_ports(int log)
{
	rlim_t want = 2 * MAX_PORTS + FDS_SPARE;
	struct rlimit r;
	int n;

	if (getrlimit(RLIMIT_NOFILE, &r) < 0)
		return MAX_PORTS;
	if (r.rlim_cur < want) {
		r.rlim_cur = r.rlim_max < want ? r.rlim_max : want;
		/* up to the hard limit is always allowed; else it stays */
		if (setrlimit(RLIMIT_NOFILE, &r) < 0)
			getrlimit(RLIMIT_NOFILE, &r);
	}
	if (r.rlim_cur >= want)
		return MAX_PORTS;
	n = r.rlim_cur > FDS_SPARE ? (int)((r.rlim_cur - FDS_SPARE) / 2) : 0;
	if (log >= 0)
		dprintf(log, "open files are limited to %llu: room for %d "
			"ports\n", (unsigned long long)r.rlim_cur, n);
	return n;
}

static int listen_at(const char *path)
{
	struct sockaddr_un a = { AF_UNIX, "" };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			0);

	if (fd < 0)
		return -1;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    chmod(path, 0600) < 0 || listen(fd, 64) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The switch's process (nook, run again by spawn()): what it keeps of its
 * parent is undone first (signals ignored or blocked by a caller that
 * waits for them, the working directory). It tells fd 3 "1" once it takes
 * plugs, or its reason when it cannot.
 */
int net_switch_main(const char *dir)
{
	static struct sw s;
	struct sw_paths p;
	char macs[18], pid[24];
	int ready = 3, lock, pidfd, n;
	sigset_t none;

	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (fcntl(ready, F_SETFD, FD_CLOEXEC) < 0 || chdir("/") < 0)
		return 1;
	sw_paths_init(&p, dir);
	lock = open(p.run, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	/* the switch that was stopped just before may still be ending */
	if (lock < 0 || flock_wait(lock, 2000) < 0) {
		dprintf(ready, "another switch still runs in %s", dir);
		return 1;
	}
	/* read only while the lock is held, and trusted by its holder's
	 * arguments: a reader that finds the dead switch's pid here, or
	 * half of ours, asks again (lock_holder()) */
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	pidfd = open(p.pid, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (pidfd < 0 || write_all(pidfd, pid, (size_t)n) < 0) {
		dprintf(ready, "cannot write %s: %s", p.pid, strerror(errno));
		return 1;
	}
	close(pidfd);
	for (int i = 0; i < MAX_PORTS; i++)
		s.ports[i].ctl = s.ports[i].data = -1;
	for (int i = 0; i < FDB_SIZE; i++)
		s.fdb[i].port = -1;
	s.dir = xstrdup(p.sw);
	net_mac("ra", dir, 0, macs);
	for (int i = 0; i < 6; i++)
		s.mac[i] = (unsigned char)strtol(macs + 3 * i, NULL, 16);
	s.log = open_log(p.log);
	/* its last words if it fails (out of memory, a sanitizer's
	 * report) are kept: a start it leaves without a word quotes them */
	if (s.log >= 0)
		dup2(s.log, 2);
	s.nports = room_for_ports(s.log);
	s.listener = listen_at(p.ctl);
	if (s.listener < 0 || stat(p.sw, &s.dir_st) < 0) {
		dprintf(ready, "cannot listen on %s: %s", p.ctl,
			strerror(errno));
		return 1;
	}
	s.run = xstrdup(p.run);
	s.run_fd = lock;
	write_all(ready, "1", 1);
	close(ready);
	sw_paths_free(&p);
	return serve(&s);
}

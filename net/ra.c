/*
 * The cluster network's router advertisements: "there is no router here".
 *
 * A node's private NIC has a static address and nothing else, but
 * systemd-networkd (the renderer cloud-init picks on Debian) accepts IPv6
 * router advertisements on it by default and, until one comes or its
 * three solicitations time out (12 s), does not call the link configured:
 * systemd-networkd-wait-online, and so cloud-init's network stage, wait
 * those 12 s on every boot of every node. cloud-init 22.4's networkd
 * renderer drops network-config's accept-ra for a link without DHCPv6, so
 * the guest cannot be told before its first boot. The network tells it
 * instead: a process plugged into the switch answers each router
 * solicitation with an advertisement of router lifetime 0 (RFC 4861:
 * not a default router) and no prefix, which changes nothing in the
 * guest but ends its wait.
 *
 * networkd sends its first solicitation only 0.5-1.5 s after the link's
 * IPv6 came up (sd-ndisc's timer), all of it idle time on the boot's
 * path. A node's IPv6 coming up is seen on the network, though: its
 * kernel reports joining the solicited-node group of its new address
 * (MLD). The responder advertises to a node that reports, unasked, a few
 * times in the 1.5 s after, so that one lands once networkd listens.
 *
 * The responder is nook run again ("nook __ra DIR"), plugged into the
 * switch like a node (vde_switch's protocol, as libvdeplug speaks it), in
 * its own session.
 * It holds DIR/ra.lock while it runs, writes its pid to DIR/ra.pid and a
 * line when it starts, per answer and per burst to DIR/ra.log (kept across
 * responders), and exits when the switch goes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net.h"

/* Offsets in an Ethernet frame carrying IPv6 and ICMPv6. */
#define ETH_DST 0
#define ETH_SRC 6
#define ETH_TYPE 12
#define IP6 14
#define IP6_PLEN (IP6 + 4)
#define IP6_NEXT (IP6 + 6)
#define IP6_HOPS (IP6 + 7)
#define IP6_SRC (IP6 + 8)
#define IP6_DST (IP6 + 24)
#define ICMP6 (IP6 + 40)

#define PROTO_ICMP6 58
#define ND_ROUTER_SOLICIT 133
#define ND_ROUTER_ADVERT 134
#define ND_OPT_SOURCE_LLADDR 1
#define RA_LEN (16 + 8) /* the advertisement and our link-layer address */

static unsigned get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static void put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

/* ICMPv6's checksum: over the IPv6 pseudo-header and the message. */
static unsigned icmp6_sum(const unsigned char *ip6, const unsigned char *msg,
			  size_t len)
{
	uint32_t sum = PROTO_ICMP6 + (uint32_t)len;

	for (size_t i = 0; i < 32; i += 2) /* source and destination */
		sum += get16(ip6 + 8 + i);
	for (size_t i = 0; i < len; i += 2)
		sum += i + 1 < len ? get16(msg + i) : (unsigned)msg[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

/* The advertisement to the node that sent in: to its address; to all
 * nodes when it has none yet. out holds ICMP6 + RA_LEN bytes. */
static size_t advertise(const unsigned char *in, const unsigned char mac[6],
			unsigned char *out)
{
	static const unsigned char all_nodes_mac[6] = { 0x33, 0x33, 0, 0, 0,
							1 };
	static const unsigned char unspecified[16];
	unsigned char *ip = out + IP6, *ra = out + ICMP6;

	memset(out, 0, ICMP6 + RA_LEN);
	/* to the one who asked; to all nodes when it has no address yet */
	if (memcmp(in + IP6_SRC, unspecified, 16)) {
		memcpy(out + ETH_DST, in + ETH_SRC, 6);
		memcpy(out + IP6_DST, in + IP6_SRC, 16);
	} else {
		memcpy(out + ETH_DST, all_nodes_mac, 6);
		out[IP6_DST] = 0xff;
		out[IP6_DST + 1] = 0x02;
		out[IP6_DST + 15] = 1;
	}
	memcpy(out + ETH_SRC, mac, 6);
	put16(out + ETH_TYPE, 0x86dd);
	ip[0] = 0x60;
	put16(out + IP6_PLEN, RA_LEN);
	out[IP6_NEXT] = PROTO_ICMP6;
	out[IP6_HOPS] = 255;
	/* from our link-local address, fe80::EUI-64 of mac */
	out[IP6_SRC] = 0xfe;
	out[IP6_SRC + 1] = 0x80;
	out[IP6_SRC + 8] = mac[0] ^ 0x02;
	memcpy(out + IP6_SRC + 9, mac + 1, 2);
	out[IP6_SRC + 11] = 0xff;
	out[IP6_SRC + 12] = 0xfe;
	memcpy(out + IP6_SRC + 13, mac + 3, 3);
	/* hop limit, flags, router lifetime, reachable and retransmission
	 * times all 0: unspecified, and no default router */
	ra[0] = ND_ROUTER_ADVERT;
	ra[16] = ND_OPT_SOURCE_LLADDR;
	ra[17] = 1; /* in units of 8 bytes */
	memcpy(ra + 18, mac, 6);
	put16(ra + 2, icmp6_sum(ip, ra, RA_LEN));
	return ICMP6 + RA_LEN;
}

/* An IPv6 frame from a node (a unicast source that is not us) whose IPv6
 * header carries next header next and the whole payload. */
static int ipv6_from_node(const unsigned char *in, size_t n,
			  const unsigned char mac[6], unsigned next)
{
	return n >= ICMP6 && get16(in + ETH_TYPE) == 0x86dd &&
	       (in[IP6] >> 4) == 6 && in[IP6_NEXT] == next &&
	       ICMP6 + get16(in + IP6_PLEN) <= n && !(in[ETH_SRC] & 1) &&
	       memcmp(in + ETH_SRC, mac, 6) != 0;
}

size_t net_ra_answer(const unsigned char *in, size_t n,
		     const unsigned char mac[6], unsigned char *out,
		     size_t cap)
{
	size_t plen;

	if (cap < ICMP6 + RA_LEN || !ipv6_from_node(in, n, mac, PROTO_ICMP6) ||
	    in[IP6_HOPS] != 255)
		return 0;
	plen = get16(in + IP6_PLEN);
	if (plen < 8 || in[ICMP6] != ND_ROUTER_SOLICIT || in[ICMP6 + 1] != 0 ||
	    icmp6_sum(in + IP6, in + ICMP6, plen) != 0)
		return 0;
	return advertise(in, mac, out);
}

#define PROTO_HOP_BY_HOP 0
#define MLD_REPORT 131
#define MLD2_REPORT 143

size_t net_ra_unasked(const unsigned char *in, size_t n,
		      const unsigned char mac[6], unsigned char *out,
		      size_t cap)
{
	size_t plen, hop, icmp;

	/* MLD goes behind a hop-by-hop header (its router alert) */
	if (cap < ICMP6 + RA_LEN ||
	    !ipv6_from_node(in, n, mac, PROTO_HOP_BY_HOP))
		return 0;
	plen = get16(in + IP6_PLEN);
	if (plen < 8)
		return 0;
	hop = ((size_t)in[ICMP6 + 1] + 1) * 8;
	icmp = ICMP6 + hop;
	if (hop + 8 > plen || in[ICMP6] != PROTO_ICMP6 ||
	    (in[icmp] != MLD_REPORT && in[icmp] != MLD2_REPORT) ||
	    in[icmp + 1] != 0 ||
	    icmp6_sum(in + IP6, in + icmp, plen - hop) != 0)
		return 0;
	return advertise(in, mac, out);
}

/* --- the responder --- */

struct ra_paths {
	char *sw, *lock, *pid, *log;
};

static void ra_paths_init(struct ra_paths *p, const char *dir)
{
	p->sw = xasprintf("%s/sw", dir);
	p->lock = xasprintf("%s/ra.lock", dir);
	p->pid = xasprintf("%s/ra.pid", dir);
	p->log = xasprintf("%s/ra.log", dir);
}

static void ra_paths_free(struct ra_paths *p)
{
	free(p->sw);
	free(p->lock);
	free(p->pid);
	free(p->log);
}

pid_t net_ra_alive(const char *dir)
{
	struct ra_paths p;
	struct buf b = BUF_INIT;
	pid_t pid = 0;
	int fd;

	ra_paths_init(&p, dir);
	fd = open(p.lock, O_RDWR | O_CLOEXEC);
	/* the lock is taken while the responder runs, and only then */
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0 &&
	    errno == EWOULDBLOCK && read_file_quiet(p.pid, &b) == 0)
		pid = (pid_t)strtol(b.p, NULL, 10);
	if (fd >= 0)
		close(fd);
	buf_free(&b);
	ra_paths_free(&p);
	return pid > 1 ? pid : 0;
}

/* vde_switch's request for a new port (libvdeplug's struct request_v3,
 * packed, in host byte order), sent without the unused description. */
struct vde_request {
	uint32_t magic;           /* VDE_MAGIC */
	uint32_t version;         /* 3 */
	uint32_t type;            /* 0: a new port, any number */
	struct sockaddr_un sock;  /* where the switch sends our frames */
	char descr[sizeof("nook-ra")];
} __attribute__((packed));

#define VDE_MAGIC 0xfeedface

/* a = dir/name, refused (ENAMETOOLONG) rather than cut */
static int set_path(struct sockaddr_un *a, const char *dir, const char *name)
{
	int n = snprintf(a->sun_path, sizeof(a->sun_path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(a->sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/*
 * Plug into the switch whose directory is sw as libvdeplug does: bind a
 * datagram socket at me (in sw), send its address over a stream
 * connection to sw/ctl, connect the datagram socket to the address the
 * switch answers. The stream stays open: it is the port. -1 with errno.
 */
static int plug(const char *sw, int *ctl, int *data, struct sockaddr_un *me)
{
	struct vde_request req = { VDE_MAGIC, 3, 0, { AF_UNIX, "" },
				   "nook-ra" };
	struct sockaddr_un it = { AF_UNIX, "" }, port;
	struct timeval answer_within = { 3, 0 };
	int rc = -1;

	*ctl = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	*data = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (*ctl < 0 || *data < 0 || set_path(&it, sw, "ctl") < 0 ||
	    connect(*ctl, (struct sockaddr *)&it, sizeof(it)) < 0)
		return -1;
	*me = (struct sockaddr_un){ AF_UNIX, "" };
	for (int i = 0; rc < 0 && i < 100; i++) {
		char name[32];

		snprintf(name, sizeof(name), ".%05d-%05d", (int)getpid(), i);
		if (set_path(me, sw, name) < 0)
			return -1;
		rc = bind(*data, (struct sockaddr *)me, sizeof(*me));
		if (rc < 0 && errno != EADDRINUSE)
			return -1;
	}
	if (rc < 0 || chmod(me->sun_path, 0600) < 0 ||
	    setsockopt(*ctl, SOL_SOCKET, SO_RCVTIMEO, &answer_within,
		       sizeof(answer_within)) < 0)
		return -1;
	req.sock = *me;
	if (send(*ctl, &req, sizeof(req) - 1, MSG_NOSIGNAL) < 0)
		return -1;
	errno = EPROTO; /* unless recv says otherwise */
	if (recv(*ctl, &port, sizeof(port), 0) != (ssize_t)sizeof(port))
		return -1;
	return connect(*data, (struct sockaddr *)&port, sizeof(port));
}

#define MAX_PER_SECOND 20   /* answers: a guest that floods gets fewer */
#define MAX_LOG_LINES 1000  /* then the log says it stops */

static void ra_log(int fd, const char *what, const unsigned char *frame,
		   long *lines)
{
	const unsigned char *m = frame + ETH_SRC;
	char line[128];
	int n;

	if (fd < 0 || ++*lines > MAX_LOG_LINES)
		return;
	if (*lines == MAX_LOG_LINES)
		n = snprintf(line, sizeof(line), "(%d lines: no more are "
			     "logged)\n", MAX_LOG_LINES);
	else
		n = snprintf(line, sizeof(line),
			     "%s %02x:%02x:%02x:%02x:%02x:%02x\n", what,
			     m[0], m[1], m[2], m[3], m[4], m[5]);
	if (n > 0 && write_all(fd, line, (size_t)n) < 0)
		*lines = MAX_LOG_LINES; /* a full disk: stop trying */
}

/* The log, kept across responders (a resumed cluster's says what came
 * before); past RA_LOG_KEEP bytes it becomes ra.log.1, the one before
 * it goes. Each responder logs at most MAX_LOG_LINES lines. */
#define RA_LOG_KEEP (64 * 1024)

static int open_log(const char *path)
{
	struct stat st;
	int fd;

	if (stat(path, &st) == 0 && st.st_size > RA_LOG_KEEP) {
		char *old = xasprintf("%s.1", path);

		rename(path, old);
		free(old);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0)
		dprintf(fd, "responder %d started\n", (int)getpid());
	return fd;
}

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
	unsigned char frame[ICMP6 + RA_LEN];
	long long start;   /* 0: a free slot */
	size_t sent;       /* of burst_at's */
};

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
		if (!memcmp(b[i].node, in + ETH_SRC, 6))
			return 0;
	}
	if (!free_slot || m != sizeof(free_slot->frame))
		return 0;
	memcpy(free_slot->node, in + ETH_SRC, 6);
	memcpy(free_slot->frame, ad, m);
	free_slot->start = now;
	free_slot->sent = 0;
	return 1;
}

/* Send what is due; the ms until the next one is, or -1 for none. */
static int burst_send(struct burst *b, int data, long long now)
{
	long long next = -1;

	for (int i = 0; i < BURSTS; i++) {
		long long due;

		if (!b[i].start || b[i].sent == NBURST_AT)
			continue;
		due = b[i].start + burst_at[b[i].sent];
		if (due <= now) {
			/* not sent again when it fails: the node's own
			 * solicitation is still answered */
			(void)send(data, b[i].frame, sizeof(b[i].frame),
				   MSG_NOSIGNAL);
			/* a responder that was not run for a while skips
			 * what is past: the burst keeps its spread */
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

/* Answer solicitations, and advertise to nodes that report, until the
 * switch goes. */
static void serve(int ctl, int data, const unsigned char mac[6], int log)
{
	struct burst bursts[BURSTS] = { 0 };
	unsigned char in[2048], out[128];
	long long second = 0;
	long lines = 0;
	int answers = 0;

	for (;;) {
		struct pollfd pfd[2] = { { data, POLLIN, 0 },
					 { ctl, POLLIN, 0 } };
		int wait = burst_send(bursts, data, mono_ms());
		ssize_t n;
		size_t m;
		int r = poll(pfd, 2, wait);

		if (r == 0)
			continue;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (pfd[1].revents) /* the switch says nothing: it hung up */
			return;
		if (!(pfd[0].revents & POLLIN))
			return;
		n = recv(data, in, sizeof(in), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return;
		m = net_ra_unasked(in, (size_t)n, mac, out, sizeof(out));
		if (m && burst_begin(bursts, in, out, m, mono_ms()))
			ra_log(log, "advertising unasked to", in, &lines);
		m = net_ra_answer(in, (size_t)n, mac, out, sizeof(out));
		if (!m)
			continue;
		if (mono_ms() / 1000 != second) {
			second = mono_ms() / 1000;
			answers = 0;
		}
		if (++answers > MAX_PER_SECOND)
			continue;
		if (send(data, out, m, MSG_NOSIGNAL) == (ssize_t)m)
			ra_log(log, "answered a router solicitation from", in,
			       &lines);
	}
}

/*
 * The responder's process (nook, run again by net_ra_start()): what it
 * keeps of its parent is undone first (signals ignored or blocked by a
 * caller that waits for them, the working directory). It tells fd 3 one
 * byte once it is plugged in, or its reason when it cannot be.
 */
int net_ra_main(const char *dir)
{
	struct ra_paths p;
	struct sockaddr_un me = { AF_UNIX, "" };
	unsigned char mac[6];
	char macs[18], pid[24];
	int ready = 3, lock, pidfd, ctl = -1, data = -1, log, n;
	sigset_t none;

	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (fcntl(ready, F_SETFD, FD_CLOEXEC) < 0 || chdir("/") < 0)
		return 1;
	ra_paths_init(&p, dir);
	lock = open(p.lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	/* the one of a switch that went may still be ending: wait for it */
	if (lock < 0)
		return 1;
	if (flock_wait(lock, 2000) < 0)
		return 0; /* another one answers */
	/* read only while the lock is held: no half-written pid matters */
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	pidfd = open(p.pid, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (pidfd < 0 || write_all(pidfd, pid, (size_t)n) < 0) {
		dprintf(ready, "cannot write %s: %s", p.pid, strerror(errno));
		return 1;
	}
	close(pidfd);
	net_mac("ra", dir, 0, macs);
	for (int i = 0; i < 6; i++)
		mac[i] = (unsigned char)strtol(macs + 3 * i, NULL, 16);
	log = open_log(p.log);
	if (plug(p.sw, &ctl, &data, &me) < 0) {
		dprintf(ready, "cannot plug into %s: %s", p.sw,
			strerror(errno));
		if (me.sun_path[0])
			unlink(me.sun_path);
		return 1;
	}
	write_all(ready, "1", 1);
	close(ready);
	serve(ctl, data, mac, log);
	/* our socket stays while we run: a switch may send to its path */
	unlink(me.sun_path);
	/* ra.pid stays: the lock, released at exit, says whether we run */
	ra_paths_free(&p);
	return 0;
}

/* What the responder wrote on fd before it closed it, waiting at most ms. */
static void read_said(int fd, struct buf *said, int ms)
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
			return;
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf_add(said, chunk, (size_t)n);
	}
}

static void ra_off(const char *why)
{
	warnf("no router advertisements on the cluster's network (%s): a "
	      "node's boot waits 12 s more for one", why);
}

int net_ra_start(const char *dir)
{
	struct buf said = BUF_INIT;
	int pfd[2], st = 0, ret = 0;
	pid_t pid;

	if (net_ra_alive(dir))
		return 0;
	/* a program that is not nook would run itself again, and again */
	if (getenv("NOOK_RA_CHILD")) {
		ra_off("a responder does not start another");
		return -1;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		ra_off(strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		/* a child that forks the responder and exits: the responder
		 * is nobody's child, in a session of its own, with no fd of
		 * ours (a lock held, a pipe a reader waits on) but fd 3 */
		int w = fcntl(pfd[1], F_DUPFD, 4); /* not on 0-2 */
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (setsid() < 0 || w < 0 || null < 0 || dup2(null, 0) < 0 ||
		    dup2(null, 1) < 0 || dup2(null, 2) < 0 ||
		    dup2(w, 3) < 0 || close_range(4, ~0U, 0) < 0)
			_exit(1);
		if (fork() == 0) {
			const char *argv[] = { "nook", NET_RA_ARGV1, dir, NULL };

			if (setenv("NOOK_RA_CHILD", "1", 1) == 0)
				execv("/proc/self/exe", (char *const *)argv);
			dprintf(3, "cannot run /proc/self/exe: %s",
				strerror(errno));
			_exit(127);
		}
		_exit(0);
	}
	close(pfd[1]);
	if (pid < 0) {
		ra_off(strerror(errno));
		close(pfd[0]);
		return -1;
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	/* EOF once the responder is ready, has failed, or never ran */
	read_said(pfd[0], &said, 3000);
	close(pfd[0]);
	if (!(said.len == 1 && said.p[0] == '1') && !net_ra_alive(dir)) {
		ra_off(said.len ? said.p : st ? "it could not leave nook's "
		       "session" : "the responder did not start");
		ret = -1;
	}
	buf_free(&said);
	return ret;
}

void net_ra_stop(const char *dir)
{
	pid_t pid;

	/* it ends when its switch does: wait for that, then make sure */
	for (int waited = 0; waited < 2000 && net_ra_alive(dir); waited += 20)
		sleep_ms(20);
	pid = net_ra_alive(dir);
	if (pid && kill(pid, SIGKILL) == 0)
		for (int waited = 0; waited < 2000 && net_ra_alive(dir);
		     waited += 20)
			sleep_ms(20);
}

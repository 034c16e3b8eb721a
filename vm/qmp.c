/* A small QMP client: newline-delimited JSON over QEMU's unix socket. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common.h"
#include "qmp.h"

/* Keep why the current call fails; the first reason wins, as the callers
 * up the stack know less. Always -1. */
static int fail(struct qmp *q, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int fail(struct qmp *q, const char *fmt, ...)
{
	va_list ap;

	if (q->err)
		return -1;
	va_start(ap, fmt);
	q->err = xvasprintf(fmt, ap);
	va_end(ap);
	return -1;
}

static void clear_error(struct qmp *q)
{
	free(q->err);
	q->err = NULL;
}

/* The next whole line of q->in as JSON: 1 and *j set, 0 when no line is
 * complete yet, -1 when the line is not JSON. */
static int take_line(struct qmp *q, json_t **j)
{
	struct buf *in = &q->in;
	char *nl = in->len ? memchr(in->p, '\n', in->len) : NULL;
	size_t len;

	if (!nl)
		return 0;
	len = (size_t)(nl - in->p) + 1;
	*j = json_loadb(in->p, len, 0, NULL);
	memmove(in->p, in->p + len, in->len - len + 1); /* with the NUL */
	in->len -= len;
	if (!*j)
		return fail(q, "QMP: QEMU sent a line that is not JSON");
	return 1;
}

/* Wait for fd to be readable within deadline and append what it has to
 * q->in. 0, or -1 having kept why. */
static int fill(struct qmp *q, long long deadline)
{
	struct pollfd pfd = { q->fd, POLLIN, 0 };
	char chunk[4096];
	ssize_t n;

	for (;;) {
		long long left = deadline - mono_ms();
		int rc;

		if (left <= 0)
			return fail(q, "QMP: no answer from QEMU in time");
		rc = poll(&pfd, 1, (int)left);
		if (rc < 0 && errno != EINTR)
			return fail(q, "QMP: poll: %s", strerror(errno));
		if (rc <= 0)
			continue;
		n = read(q->fd, chunk, sizeof(chunk));
		if (n > 0)
			break;
		if (n == 0)
			return fail(q, "QMP: QEMU closed the connection");
		if (errno != EINTR && errno != EAGAIN)
			return fail(q, "QMP: read: %s", strerror(errno));
	}
	buf_add(&q->in, chunk, (size_t)n);
	return 0;
}

/* Read one JSON message within deadline; NULL (having kept why) otherwise. */
static json_t *read_msg(struct qmp *q, long long deadline)
{
	for (;;) {
		json_t *j = NULL;
		int rc = take_line(q, &j);

		if (rc > 0)
			return j;
		if (rc < 0 || fill(q, deadline) < 0)
			return NULL;
	}
}

/* send(2) all of it, past short writes and EINTR; MSG_NOSIGNAL, as a
 * QEMU that is gone must be an error, not a SIGPIPE. */
static int send_all(struct qmp *q, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = send(q->fd, s, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(q, "QMP: write: %s", strerror(errno));
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The command and its newline in one write: QEMU runs a command once
 * its closing brace arrives, and a quit can end QEMU (and the socket)
 * before a second write, which then fails (EPIPE) as if the quit had. */
static int send_msg(struct qmp *q, json_t *msg)
{
	char *s = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
	char *line;
	int rc;

	if (!s)
		return fail(q, "QMP: cannot encode a command");
	line = xasprintf("%s\n", s);
	rc = send_all(q, line, strlen(line));
	free(line);
	free(s);
	return rc;
}

/* A blocking socket connected to path, tried again until deadline while
 * the listener's backlog is full (a stopped QEMU accepts nobody: a
 * blocking connect would wait for ever); the fd, or -1 with errno. */
static int connect_by(const char *path, long long deadline)
{
	int fd = unix_connect(path, SOCK_NONBLOCK), flags;

	while (fd < 0) {
		if (errno != EAGAIN)
			return -1;
		if (mono_ms() >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		sleep_ms(20);
		fd = unix_connect(path, SOCK_NONBLOCK);
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int qmp_open(struct qmp *q, const char *path, int timeout_ms)
{
	long long deadline = mono_ms() + timeout_ms;
	int fd;

	memset(q, 0, sizeof(*q));
	q->fd = -1;
	fd = connect_by(path, deadline);
	if (fd < 0)
		return fail(q, "cannot connect to QMP socket %s: %s", path,
			    strerror(errno));
	return qmp_open_fd(q, fd, (int)(deadline - mono_ms()) > 0 ?
				  (int)(deadline - mono_ms()) : 1);
}

int qmp_open_fd(struct qmp *q, int fd, int timeout_ms)
{
	json_t *greeting;

	memset(q, 0, sizeof(*q));
	q->fd = fd;
	/* ids differ between the connections one nook makes in turn (a
	 * stop reconnects): the clock stands in if getrandom() fails */
	if (getrandom(&q->nonce, sizeof(q->nonce), 0) !=
	    (ssize_t)sizeof(q->nonce))
		q->nonce = (uint32_t)real_us();
	greeting = read_msg(q, mono_ms() + timeout_ms);
	if (greeting && !json_object_get(greeting, "QMP"))
		fail(q, "QMP: QEMU's first message is not a greeting");
	json_decref(greeting);
	if (q->err ||
	    qmp_execute(q, "qmp_capabilities", NULL, timeout_ms, NULL) < 0) {
		close(q->fd);
		q->fd = -1;
		return -1;
	}
	return 0;
}

/*
 * Each command carries an id, "nook-PID-NONCE-N" (NONCE the connection's),
 * that QEMU puts in its reply.
 * QEMU's monitor belongs to the socket, not to one connection: a reply
 * to a client killed mid-command can reach the next one to connect (a
 * snapshot's "{}" read as the answer to query-block). A reply naming
 * another id (or an id that is no string) is not ours; one naming none
 * (QEMU's to a line it could not parse) is taken as ours.
 */
static char *command_id(const struct qmp *q)
{
	return xasprintf("nook-%d-%08x-%lu", (int)getpid(),
			 (unsigned)q->nonce, q->sent);
}

/* The next command to send: {"id":..., "execute": command}. */
static json_t *command_msg(struct qmp *q, const char *command)
{
	char *id;
	json_t *msg;

	q->sent++;
	id = command_id(q);
	msg = json_pack("{s:s,s:s}", "id", id, "execute", command);
	free(id);
	return msg;
}

/* What reply r says about command: 0 for its return (into *ret, if ret),
 * -1 for its error, 1 for an event or another's reply, not the answer. */
static int answer(struct qmp *q, const char *command, json_t *r, json_t **ret)
{
	json_t *v = json_object_get(r, "return");
	json_t *e = json_object_get(r, "error");
	json_t *id = json_object_get(r, "id");
	const char *class, *desc;
	char *ours;
	int other;

	if (id) {
		ours = command_id(q);
		other = !json_is_string(id) ||
			strcmp(json_string_value(id), ours) != 0;
		free(ours);
		if (other)
			return 1;
	}
	if (v) {
		if (ret)
			*ret = json_incref(v);
		return 0;
	}
	if (!e)
		return 1;
	class = json_string_value(json_object_get(e, "class"));
	desc = json_string_value(json_object_get(e, "desc"));
	return fail(q, "QMP %s: %s: %s", command, class ? class : "error",
		    desc ? desc : "(no description)");
}

/* Wait for the answer to command; events before it are skipped. */
static int read_answer(struct qmp *q, const char *command, long long deadline,
		       json_t **ret)
{
	for (;;) {
		json_t *r = read_msg(q, deadline);
		int rc;

		if (!r)
			return -1;
		rc = answer(q, command, r, ret);
		json_decref(r);
		if (rc <= 0)
			return rc;
	}
}

int qmp_execute(struct qmp *q, const char *command, json_t *args,
		int timeout_ms, json_t **ret)
{
	long long deadline = mono_ms() + timeout_ms;
	json_t *msg = command_msg(q, command);
	int rc;

	clear_error(q);
	if (msg && args)
		json_object_set(msg, "arguments", args);
	rc = send_msg(q, msg);
	json_decref(msg);
	if (rc < 0)
		return -1;
	return read_answer(q, command, deadline, ret);
}

int qmp_send_fd(struct qmp *q, int fd, const char *name, int timeout_ms)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} u;
	char blank = ' ';
	struct iovec iov = { &blank, 1 };
	struct msghdr m;
	struct cmsghdr *c;
	json_t *args;
	ssize_t n;
	int rc;

	clear_error(q);
	memset(&u, 0, sizeof(u));
	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = u.b;
	m.msg_controllen = sizeof(u.b);
	c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	do
		n = sendmsg(q->fd, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		return fail(q, "QMP: cannot pass a file to QEMU: %s",
			    n < 0 ? strerror(errno) : "short write");
	args = json_pack("{s:s}", "fdname", name);
	rc = qmp_execute(q, "getfd", args, timeout_ms, NULL);
	json_decref(args);
	return rc;
}

int qmp_hmp(struct qmp *q, const char *cmdline, const char *ok,
	    int timeout_ms, struct buf *out)
{
	json_t *args = json_pack("{s:s}", "command-line", cmdline);
	json_t *ret = NULL;
	const char *text;
	size_t len;
	int rc;

	rc = qmp_execute(q, "human-monitor-command", args, timeout_ms, &ret);
	json_decref(args);
	if (rc < 0)
		return -1;
	text = json_string_value(ret);
	if (!text) {
		json_decref(ret);
		return fail(q, "QMP human-monitor-command: the answer to '%s' "
			    "is not text", cmdline);
	}
	if (out)
		buf_adds(out, text);
	len = strlen(text);
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	if (len && !(ok && strstr(text, ok)))
		rc = fail(q, "HMP %s: %.*s", cmdline, (int)len, text);
	json_decref(ret);
	return rc;
}

int qmp_quit(struct qmp *q, int timeout_ms)
{
	long long deadline = mono_ms() + timeout_ms;
	json_t *msg = command_msg(q, "quit");
	int rc;

	clear_error(q);
	rc = send_msg(q, msg);
	json_decref(msg);
	/* QEMU answers, then closes the socket as it exits: read until the
	 * close so the command is not dropped with our end of the socket */
	if (rc < 0)
		return -1;
	while (fill(q, deadline) == 0)
		buf_free(&q->in);
	clear_error(q); /* the close, or a timeout: both expected */
	return 0;
}

const char *qmp_error(const struct qmp *q)
{
	return q->err ? q->err : "";
}

void qmp_close(struct qmp *q)
{
	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	clear_error(q);
	buf_free(&q->in);
}

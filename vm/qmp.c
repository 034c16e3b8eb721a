/* A small QMP client: newline-delimited JSON over QEMU's unix socket. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vm.h"


/* Read one JSON line within deadline; NULL (having said why) otherwise. */
static json_t *read_msg(struct qmp *q, long long deadline)
{
	for (;;) {
		char *nl = q->in.p ? memchr(q->in.p, '\n', q->in.len) : NULL;
		char chunk[4096];
		struct pollfd pfd = { q->fd, POLLIN, 0 };
		long long left;
		ssize_t n;

		if (nl) {
			size_t len = (size_t)(nl - q->in.p) + 1;
			json_t *j = json_loadb(q->in.p, len, 0, NULL);

			memmove(q->in.p, q->in.p + len, q->in.len - len);
			q->in.len -= len;
			q->in.p[q->in.len] = '\0';
			if (!j) {
				errorf("QMP: QEMU sent a line that is not JSON");
				return NULL;
			}
			return j;
		}
		left = deadline - mono_ms();
		if (left <= 0) {
			errorf("QMP: no answer from QEMU in time");
			return NULL;
		}
		if (poll(&pfd, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			error_errno("QMP: poll");
			return NULL;
		}
		if (!(pfd.revents & (POLLIN | POLLHUP)))
			continue;
		n = read(q->fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			errorf("QMP: QEMU closed the connection");
			return NULL;
		}
		buf_add(&q->in, chunk, (size_t)n);
	}
}

static int send_msg(struct qmp *q, json_t *msg)
{
	char *s = json_dumps(msg, JSON_COMPACT);
	int ret = 0;

	if (!s)
		return errorf("QMP: cannot encode a command");
	if (write_all(q->fd, s, strlen(s)) < 0 || write_all(q->fd, "\n", 1) < 0)
		ret = error_errno("QMP: write");
	free(s);
	return ret;
}

int qmp_open(struct qmp *q, const char *path, int timeout_ms)
{
	struct sockaddr_un sa;
	json_t *greeting;

	memset(q, 0, sizeof(*q));
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		q->fd = -1;
		errno = ENAMETOOLONG;
		return error_errno("QMP socket %s", path);
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (q->fd < 0)
		return error_errno("QMP: socket");
	if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		error_errno("cannot connect to QMP socket %s", path);
		qmp_close(q);
		return -1;
	}
	greeting = read_msg(q, mono_ms() + timeout_ms);
	if (!greeting || !json_object_get(greeting, "QMP")) {
		json_decref(greeting);
		qmp_close(q);
		return errorf("QMP: no greeting on %s", path);
	}
	json_decref(greeting);
	if (qmp_execute(q, "qmp_capabilities", NULL, timeout_ms, NULL) < 0) {
		qmp_close(q);
		return -1;
	}
	return 0;
}

int qmp_execute(struct qmp *q, const char *command, json_t *args,
		int timeout_ms, json_t **ret)
{
	long long deadline = mono_ms() + timeout_ms;
	json_t *msg = json_object();
	int rc;

	json_object_set_new(msg, "execute", json_string(command));
	if (args)
		json_object_set(msg, "arguments", args);
	rc = send_msg(q, msg);
	json_decref(msg);
	if (rc < 0)
		return -1;
	for (;;) {
		json_t *r = read_msg(q, deadline), *v;

		if (!r)
			return -1;
		v = json_object_get(r, "return");
		if (v) {
			if (ret)
				*ret = json_incref(v);
			json_decref(r);
			return 0;
		}
		v = json_object_get(r, "error");
		if (v) {
			errorf("QMP %s: %s", command,
			       json_string_value(json_object_get(v, "desc")));
			json_decref(r);
			return -1;
		}
		json_decref(r); /* an event: not our answer */
	}
}

int qmp_quit(struct qmp *q, int timeout_ms)
{
	long long deadline = mono_ms() + timeout_ms;
	json_t *msg = json_pack("{s:s}", "execute", "quit");
	char chunk[1024];
	int rc = send_msg(q, msg);

	json_decref(msg);
	/* QEMU answers, then closes the socket as it exits: read until the
	 * close so the command is not dropped with our end of the socket */
	while (rc == 0) {
		struct pollfd pfd = { q->fd, POLLIN, 0 };
		long long left = deadline - mono_ms();

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		if (read(q->fd, chunk, sizeof(chunk)) <= 0)
			break;
	}
	return rc;
}

void qmp_close(struct qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	buf_free(&q->in);
}

/*
 * Unit tests for the QMP client, against a socket pair whose other end, a
 * forked child, plays QEMU from a script: what it writes (as QEMU does,
 * each message ending in \r\n), what it expects to read, pauses.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "qmp.h"
#include "testutil.h"

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, " \
	"\"minor\": 2, \"major\": 7}, \"package\": \"\"}, " \
	"\"capabilities\": [\"oob\"]}}\r\n"
#define RETURN_EMPTY "{\"return\": {}}\r\n"

enum op { SEND, EXPECT, RECORD, PAUSE, RECVFD, REPLY, END };
struct step {
	enum op op;
	const char *text; /* SEND: bytes to write; REPLY: the same, its
			   * "%ID%" the id of the command EXPECTed last;
			   * EXPECT: in the next line;
			   * RECORD: in the next record (a seqpacket
			   * socket's write), which is a whole line;
			   * RECVFD: what to write into the fd received */
	int ms;           /* PAUSE */
};

/* The steps of every conversation: QEMU greets, capabilities are agreed. */
#define HANDSHAKE { SEND, GREETING, 0 }, \
	{ EXPECT, "{\"execute\":\"qmp_capabilities\"}", 0 }, \
	{ SEND, RETURN_EMPTY, 0 }

struct fake {
	int fd;     /* the client's end */
	pid_t pid;  /* the child playing QEMU */
};

/* One line from fd, without its newline; 0 at EOF before one. */
static int read_line(int fd, char *line, size_t size)
{
	size_t n = 0;
	char c;

	while (n + 1 < size && read(fd, &c, 1) == 1) {
		if (c == '\n') {
			line[n] = '\0';
			return 1;
		}
		line[n++] = c;
	}
	return 0;
}

/* Receive one byte, which must be a blank, carrying one fd (SCM_RIGHTS),
 * and write text into that fd: 0, or 3 when no fd came with a blank. */
static int recv_fd(int fd, const char *text)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} u;
	char blank = 0;
	struct iovec iov = { &blank, 1 };
	struct msghdr m = { 0 };
	struct cmsghdr *c;
	int got = -1;

	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = u.b;
	m.msg_controllen = sizeof(u.b);
	if (recvmsg(fd, &m, 0) != 1 || blank != ' ')
		return 3;
	c = CMSG_FIRSTHDR(&m);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
		return 3;
	memcpy(&got, CMSG_DATA(c), sizeof(int));
	if (write_all(got, text, strlen(text)) < 0)
		return 3;
	close(got);
	return 0;
}

/* the id of the command EXPECTed last, for a REPLY */
static char last_id[64];

/* A command line less its id, which comes first ({"id":"nook-...",
 * "execute":...}), kept in last_id: the scripts name commands without.
 * 0 when the line has no id. */
static int drop_id(char *line)
{
	char *end;

	if (strncmp(line, "{\"id\":\"nook-", 12))
		return 0;
	end = strstr(line, "\",");
	if (!end || (size_t)(end - line - 7) >= sizeof(last_id))
		return 0;
	memcpy(last_id, line + 7, (size_t)(end - line - 7));
	last_id[end - line - 7] = '\0';
	memmove(line + 1, end + 2, strlen(end + 2) + 1);
	return 1;
}

/* Write text with its "%ID%" replaced by last_id. */
static int reply(int fd, const char *text)
{
	const char *at = strstr(text, "%ID%");
	char out[1024];
	int n = at ? snprintf(out, sizeof(out), "%.*s%s%s", (int)(at - text),
			      text, last_id, at + 4) :
		     snprintf(out, sizeof(out), "%s", text);

	return n > 0 && (size_t)n < sizeof(out) ?
	       write_all(fd, out, (size_t)n) : -1;
}

/* The next record (one write of the other end) is one whole line, a
 * command with its id, that holds text. */
static int read_record(int fd, const char *text)
{
	char rec[1024];
	ssize_t n = read(fd, rec, sizeof(rec) - 1);

	if (n <= 0 || rec[n - 1] != '\n')
		return 0;
	rec[n - 1] = '\0';
	return !strchr(rec, '\n') && drop_id(rec) && strstr(rec, text);
}

/* Play the script on fd; the exit status is 0 when every EXPECT held. */
static int play(int fd, const struct step *s)
{
	char line[1024];

	for (; s->op != END; s++) {
		if (s->op == SEND &&
		    write_all(fd, s->text, strlen(s->text)) < 0)
			return 1;
		if (s->op == REPLY && reply(fd, s->text) < 0)
			return 1;
		if (s->op == EXPECT && (!read_line(fd, line, sizeof(line)) ||
					!drop_id(line) ||
					!strstr(line, s->text)))
			return 2;
		if (s->op == RECORD && !read_record(fd, s->text))
			return 2;
		if (s->op == PAUSE)
			sleep_ms(s->ms);
		if (s->op == RECVFD && recv_fd(fd, s->text) != 0)
			return 3;
	}
	return 0;
}

/* type: SOCK_STREAM, as QEMU's; SOCK_SEQPACKET to see each write. */
static struct fake fake_start_on(const struct step *script, int type)
{
	struct fake f;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
	f.pid = fork();
	assert_true(f.pid >= 0);
	if (f.pid == 0) {
		close(sv[0]);
		_exit(play(sv[1], script));
	}
	close(sv[1]);
	f.fd = sv[0];
	return f;
}

static struct fake fake_start(const struct step *script)
{
	return fake_start_on(script, SOCK_STREAM);
}

/* Wait for the fake QEMU; it must have seen what its script expected. */
static void fake_end(struct fake *f)
{
	int status;

	if (f->pid < 0)
		return;
	assert_int_equal(waitpid(f->pid, &status, 0), f->pid);
	f->pid = -1;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* The client must print nothing, whatever happens. */
static void assert_silent(char *err)
{
	assert_string_equal(err, "");
	free(err);
}

/* Start a fake QEMU playing script, capture stderr, connect to it. */
static void session_begin(struct fake *f, struct qmp *q,
			  const struct step *script)
{
	*f = fake_start(script);
	stderr_begin();
	assert_int_equal(qmp_open_fd(q, f->fd, 5000), 0);
}

/* The client printed nothing, and the fake saw what it expected. */
static void session_end(struct fake *f, struct qmp *q)
{
	assert_silent(stderr_end());
	qmp_close(q);
	fake_end(f);
}

static void test_execute(void **state)
{
	static const struct step script[] = {
		HANDSHAKE,
		{ EXPECT, "{\"execute\":\"query-status\"}", 0 },
		{ SEND, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2},"
			" \"event\": \"RTC_CHANGE\", \"data\": {}}\r\n", 0 },
		{ SEND, "{\"return\": {\"status\": \"running\", "
			"\"running\": true}}\r\n", 0 },
		{ EXPECT, "\"arguments\":{\"device\":\"cd0\"}", 0 },
		{ SEND, RETURN_EMPTY, 0 },
		{ END, NULL, 0 },
	};
	struct fake f;
	json_t *ret = NULL, *args = json_pack("{s:s}", "device", "cd0");
	struct qmp q;

	(void)state;
	session_begin(&f, &q, script);
	assert_string_equal(qmp_error(&q), "");
	/* the event before the answer is skipped */
	assert_int_equal(qmp_execute(&q, "query-status", NULL, 5000, &ret), 0);
	assert_string_equal(json_string_value(json_object_get(ret, "status")),
			    "running");
	assert_int_equal(qmp_execute(&q, "eject", args, 5000, NULL), 0);
	json_decref(ret);
	json_decref(args);
	session_end(&f, &q);
}

/* A reply naming another id (one to a client killed mid-command, which
 * QEMU's monitor hands the next one) is skipped; one naming ours is the
 * answer. */
static void test_others_reply(void **state)
{
	static const struct step script[] = {
		HANDSHAKE,
		{ EXPECT, "{\"execute\":\"query-block\"}", 0 },
		{ SEND, "{\"return\": {}, \"id\": \"nook-1-0-7\"}\r\n", 0 },
		{ SEND, "{\"return\": {}, \"id\": 7}\r\n", 0 },
		{ REPLY, "{\"return\": [{\"device\": \"d0\"}], "
			 "\"id\": \"%ID%\"}\r\n", 0 },
		{ END, NULL, 0 },
	};
	struct fake f;
	json_t *ret = NULL;
	struct qmp q;

	(void)state;
	session_begin(&f, &q, script);
	assert_int_equal(qmp_execute(&q, "query-block", NULL, 5000, &ret), 0);
	assert_true(json_is_array(ret));
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(ret, 0), "device")), "d0");
	json_decref(ret);
	session_end(&f, &q);
}

static void test_error_reply(void **state)
{
	static const struct step script[] = {
		HANDSHAKE,
		{ EXPECT, "system_powerdown", 0 },
		{ SEND, "{\"error\": {\"class\": \"CommandNotFound\", "
			"\"desc\": \"The command system_powerdown has not been "
			"found\"}}\r\n", 0 },
		{ EXPECT, "query-status", 0 },
		{ SEND, "{\"return\": {\"status\": \"paused\"}}\r\n", 0 },
		{ END, NULL, 0 },
	};
	struct fake f;
	json_t *ret = NULL;
	struct qmp q;

	(void)state;
	session_begin(&f, &q, script);
	assert_int_equal(qmp_execute(&q, "system_powerdown", NULL, 5000, &ret),
			 -1);
	assert_null(ret);
	assert_string_equal(qmp_error(&q), "QMP system_powerdown: "
			    "CommandNotFound: The command system_powerdown "
			    "has not been found");
	/* the connection goes on, and the next success clears the error */
	assert_int_equal(qmp_execute(&q, "query-status", NULL, 5000, &ret), 0);
	assert_string_equal(qmp_error(&q), "");
	json_decref(ret);
	session_end(&f, &q);
}

/* HMP's answers are text: empty or the expected words is success, any
 * other text (QEMU's complaint) an error naming it. */
static void test_hmp(void **state)
{
	static const struct step script[] = {
		HANDSHAKE,
		{ EXPECT, "{\"execute\":\"human-monitor-command\","
			  "\"arguments\":{\"command-line\":\"hostfwd_add net0 "
			  "tcp:127.0.0.1:8080-:80\"}}", 0 },
		{ SEND, "{\"return\": \"\"}\r\n", 0 },
		{ EXPECT, "hostfwd_add net0 tcp:127.0.0.1:8080-:80", 0 },
		{ SEND, "{\"return\": \"Could not set up host forwarding "
			"rule 'tcp:127.0.0.1:8080-:80'\\r\\n\"}\r\n", 0 },
		{ EXPECT, "hostfwd_remove net0 tcp:127.0.0.1:8080", 0 },
		{ SEND, "{\"return\": \"host forwarding rule for "
			"tcp:127.0.0.1:8080 removed\\r\\n\"}\r\n", 0 },
		{ EXPECT, "hostfwd_remove net0 tcp:127.0.0.1:8080", 0 },
		{ SEND, "{\"return\": \"host forwarding rule for "
			"tcp:127.0.0.1:8080 not found\\r\\n\"}\r\n", 0 },
		{ EXPECT, "info usernet", 0 },
		{ SEND, "{\"return\": {}}\r\n", 0 },
		{ END, NULL, 0 },
	};
	struct buf out = BUF_INIT;
	struct fake f;
	struct qmp q;

	(void)state;
	session_begin(&f, &q, script);
	assert_int_equal(qmp_hmp(&q, "hostfwd_add net0 tcp:127.0.0.1:8080-:80",
				 NULL, 5000, &out), 0);
	assert_string_equal(out.p ? out.p : "", "");
	assert_int_equal(qmp_hmp(&q, "hostfwd_add net0 tcp:127.0.0.1:8080-:80",
				 NULL, 5000, NULL), -1);
	assert_string_equal(qmp_error(&q), "HMP hostfwd_add net0 "
			    "tcp:127.0.0.1:8080-:80: Could not set up host "
			    "forwarding rule 'tcp:127.0.0.1:8080-:80'");
	assert_int_equal(qmp_hmp(&q, "hostfwd_remove net0 tcp:127.0.0.1:8080",
				 " removed", 5000, &out), 0);
	assert_non_null(strstr(out.p, "removed"));
	assert_int_equal(qmp_hmp(&q, "hostfwd_remove net0 tcp:127.0.0.1:8080",
				 " removed", 5000, NULL), -1);
	assert_non_null(strstr(qmp_error(&q), "not found"));
	assert_int_equal(qmp_hmp(&q, "info usernet", NULL, 5000, NULL), -1);
	assert_non_null(strstr(qmp_error(&q), "not text"));
	buf_free(&out);
	session_end(&f, &q);
}

static void test_split_reply(void **state)
{
	/* every message comes in pieces, one of them a lone \r\n, and two
	 * messages share a write */
	static const struct step script[] = {
		{ SEND, "{\"QMP\": {\"version\": {}, ", 0 },
		{ PAUSE, NULL, 30 },
		{ SEND, "\"capabilities\": []}}", 0 },
		{ PAUSE, NULL, 30 },
		{ SEND, "\r\n", 0 },
		{ EXPECT, "qmp_capabilities", 0 },
		{ SEND, "{\"ret", 0 },
		{ PAUSE, NULL, 30 },
		{ SEND, "urn\": {}}\r", 0 },
		{ PAUSE, NULL, 30 },
		{ SEND, "\n", 0 },
		{ EXPECT, "query-name", 0 },
		{ SEND, "{\"event\": \"STOP\"}\r\n{\"return\": {\"na", 0 },
		{ PAUSE, NULL, 30 },
		{ SEND, "me\": \"web\"}}\r\n", 0 },
		{ END, NULL, 0 },
	};
	struct fake f;
	json_t *ret = NULL;
	struct qmp q;

	(void)state;
	session_begin(&f, &q, script);
	assert_int_equal(qmp_execute(&q, "query-name", NULL, 5000, &ret), 0);
	assert_string_equal(json_string_value(json_object_get(ret, "name")),
			    "web");
	json_decref(ret);
	session_end(&f, &q);
}

static void test_closed_mid_reply(void **state)
{
	static const struct step script[] = {
		HANDSHAKE,
		{ EXPECT, "query-status", 0 },
		{ SEND, "{\"return\": {\"status\": \"runn", 0 },
		{ END, NULL, 0 },
	};
	struct fake f;
	json_t *ret = NULL;
	struct qmp q;

	(void)state;
	session_begin(&f, &q, script);
	assert_int_equal(qmp_execute(&q, "query-status", NULL, 5000, &ret), -1);
	assert_null(ret);
	assert_string_equal(qmp_error(&q), "QMP: QEMU closed the connection");
	/* QEMU is gone: a write fails (EPIPE), it does not raise SIGPIPE */
	fake_end(&f);
	assert_int_equal(qmp_execute(&q, "query-status", NULL, 5000, &ret), -1);
	assert_non_null(strstr(qmp_error(&q), "QMP: write: "));
	session_end(&f, &q);
}

static void test_timeout(void **state)
{
	static const struct step script[] = {
		HANDSHAKE,
		{ EXPECT, "query-status", 0 },
		{ PAUSE, NULL, 1500 }, /* and then no answer at all */
		{ END, NULL, 0 },
	};
	struct fake f;
	struct qmp q;
	long long t0;

	(void)state;
	session_begin(&f, &q, script);
	t0 = mono_ms();
	assert_int_equal(qmp_execute(&q, "query-status", NULL, 200, NULL), -1);
	assert_true(mono_ms() - t0 >= 200);
	assert_true(mono_ms() - t0 < 1000);
	assert_string_equal(qmp_error(&q), "QMP: no answer from QEMU in time");
	session_end(&f, &q);
}

static void test_bad_greetings(void **state)
{
	static const struct step not_qmp[] = {
		{ SEND, RETURN_EMPTY, 0 },
		{ END, NULL, 0 },
	};
	static const struct step not_json[] = {
		{ SEND, "QEMU 7.2.0 monitor - type 'help'\r\n", 0 },
		{ END, NULL, 0 },
	};
	static const struct step silent[] = {
		{ PAUSE, NULL, 1000 },
		{ END, NULL, 0 },
	};
	static const struct step caps_refused[] = {
		{ SEND, GREETING, 0 },
		{ EXPECT, "qmp_capabilities", 0 },
		{ SEND, "{\"error\": {\"class\": \"GenericError\", \"desc\": "
			"\"Capabilities negotiation is already complete\"}}\r\n",
		  0 },
		{ END, NULL, 0 },
	};
	static const struct {
		const struct step *script;
		const char *err;
	} cases[] = {
		{ not_qmp, "QMP: QEMU's first message is not a greeting" },
		{ not_json, "QMP: QEMU sent a line that is not JSON" },
		{ silent, "QMP: no answer from QEMU in time" },
		{ caps_refused, "QMP qmp_capabilities: GenericError: "
		  "Capabilities negotiation is already complete" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct fake f = fake_start(cases[i].script);
		struct qmp q;

		stderr_begin();
		assert_int_equal(qmp_open_fd(&q, f.fd, 300), -1);
		assert_int_equal(q.fd, -1); /* closed already */
		assert_string_equal(qmp_error(&q), cases[i].err);
		assert_silent(stderr_end());
		qmp_close(&q);
		fake_end(&f);
	}
}

static void test_quit(void **state)
{
	static const struct step script[] = {
		HANDSHAKE,
		{ EXPECT, "{\"execute\":\"quit\"}", 0 },
		{ SEND, RETURN_EMPTY, 0 },
		{ SEND, "{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": false, "
			"\"reason\": \"host-qmp-quit\"}}\r\n", 0 },
		{ END, NULL, 0 },
	};
	struct fake f;
	struct qmp q;

	(void)state;
	session_begin(&f, &q, script);
	/* the close that follows is what a quit looks like: no error */
	assert_int_equal(qmp_quit(&q, 5000), 0);
	assert_string_equal(qmp_error(&q), "");
	session_end(&f, &q);
}

/* Each command goes in one write, its newline with it: QEMU runs a
 * command at its closing brace, and a quit can end QEMU before a second
 * write, which would fail (EPIPE) as if the quit had (a stop said
 * SIGTERM when QMP quit had ended QEMU). */
static void test_one_write(void **state)
{
	static const struct step script[] = {
		{ SEND, GREETING, 0 },
		{ RECORD, "{\"execute\":\"qmp_capabilities\"}", 0 },
		{ SEND, RETURN_EMPTY, 0 },
		{ RECORD, "{\"execute\":\"quit\"}", 0 },
		{ END, NULL, 0 },
	};
	struct fake f = fake_start_on(script, SOCK_SEQPACKET);
	struct qmp q;

	(void)state;
	stderr_begin();
	assert_int_equal(qmp_open_fd(&q, f.fd, 5000), 0);
	assert_int_equal(qmp_quit(&q, 5000), 0);
	session_end(&f, &q);
}

static void test_send_fd(void **state)
{
	static const struct step script[] = {
		HANDSHAKE,
		{ RECVFD, "through the fd", 0 },
		{ EXPECT, "{\"execute\":\"getfd\",\"arguments\":"
			  "{\"fdname\":\"nooksave\"}}", 0 },
		{ SEND, RETURN_EMPTY, 0 },
		{ RECVFD, "again", 0 },
		{ EXPECT, "getfd", 0 },
		{ SEND, "{\"error\": {\"class\": \"GenericError\", "
			"\"desc\": \"No file descriptor supplied via "
			"SCM_RIGHTS\"}}\r\n", 0 },
		{ END, NULL, 0 },
	};
	struct fake f;
	struct qmp q;
	char got[64];
	ssize_t n;
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	session_begin(&f, &q, script);
	assert_int_equal(qmp_send_fd(&q, p[1], "nooksave", 5000), 0);
	assert_string_equal(qmp_error(&q), "");
	/* the fake QEMU wrote into the very pipe we passed */
	n = read(p[0], got, sizeof(got) - 1);
	assert_int_equal(n, 14);
	got[n] = '\0';
	assert_string_equal(got, "through the fd");
	/* QEMU's refusal comes back as getfd's error; fd is still ours */
	assert_int_equal(qmp_send_fd(&q, p[1], "x", 5000), -1);
	assert_string_equal(qmp_error(&q), "QMP getfd: GenericError: No file "
			    "descriptor supplied via SCM_RIGHTS");
	assert_int_equal(write(p[1], "!", 1), 1);
	session_end(&f, &q);
	close(p[1]);
	n = read(p[0], got, sizeof(got) - 1);
	assert_true(n >= 1);
	got[n] = '\0';
	assert_string_equal(got, "again!");
	close(p[0]);
}

static void test_send_fd_gone(void **state)
{
	static const struct step script[] = {
		HANDSHAKE,
		{ END, NULL, 0 },
	};
	struct fake f;
	struct qmp q;

	(void)state;
	session_begin(&f, &q, script);
	fake_end(&f);
	/* QEMU is gone: an error that says so, no SIGPIPE */
	assert_int_equal(qmp_send_fd(&q, 2, "nooksave", 1000), -1);
	assert_non_null(strstr(qmp_error(&q), "cannot pass a file to QEMU"));
	session_end(&f, &q);
}

/* A fake QEMU listening at path, playing script to one client. */
static struct fake fake_listen(const char *path, const struct step *script)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fake f = { -1, -1 };
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(lfd >= 0 && strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	f.pid = fork();
	assert_true(f.pid >= 0);
	if (f.pid == 0) {
		int fd = accept(lfd, NULL, NULL);

		_exit(fd < 0 ? 3 : play(fd, script));
	}
	close(lfd);
	return f;
}

static void test_open_socket(void **state)
{
	static const struct step script[] = {
		HANDSHAKE,
		{ EXPECT, "query-status", 0 },
		{ SEND, "{\"return\": {\"status\": \"running\"}}\r\n", 0 },
		{ END, NULL, 0 },
	};
	char *dir = make_tmpdir();
	char *path = xasprintf("%s/qmp.sock", dir);
	struct fake f = fake_listen(path, script);
	struct qmp q;

	(void)state;
	stderr_begin();
	assert_int_equal(qmp_open(&q, path, 5000), 0);
	assert_int_equal(qmp_execute(&q, "query-status", NULL, 5000, NULL), 0);
	session_end(&f, &q);
	free(path);
	remove_tree(dir);
	free(dir);
}

static void test_open_path(void **state)
{
	char *dir = make_tmpdir();
	char *path = xasprintf("%s/qmp.sock", dir);
	char longpath[200];
	struct qmp q;

	(void)state;
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	/* what vm_stop meets when QEMU is wedged or gone: said nowhere */
	stderr_begin();
	assert_int_equal(qmp_open(&q, path, 1000), -1);
	assert_non_null(strstr(qmp_error(&q), path));
	assert_non_null(strstr(qmp_error(&q), "No such file or directory"));
	qmp_close(&q);
	assert_int_equal(qmp_open(&q, longpath, 1000), -1);
	assert_non_null(strstr(qmp_error(&q), "File name too long"));
	qmp_close(&q);
	qmp_close(NULL);
	assert_silent(stderr_end());
	free(path);
	remove_tree(dir);
	free(dir);
}

/* A QEMU that accepts nobody (stopped): once its backlog is full, a
 * connect would block for ever; qmp_open() gives up at its deadline. */
static void test_open_not_accepting(void **state)
{
	char *dir = make_tmpdir();
	char *path = xasprintf("%s/qmp.sock", dir);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0), held[8], n = 0;
	long long t0;
	struct qmp q;

	(void)state;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 0), 0);
	/* fill the backlog with connections nobody accepts */
	for (; n < 8; n++) {
		held[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (connect(held[n], (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			close(held[n]);
			break;
		}
	}
	assert_true(n < 8);
	t0 = mono_ms();
	assert_int_equal(qmp_open(&q, path, 300), -1);
	assert_true(mono_ms() - t0 < 3000);
	assert_non_null(strstr(qmp_error(&q), "timed out"));
	qmp_close(&q);
	while (n > 0)
		close(held[--n]);
	close(lfd);
	free(path);
	remove_tree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_execute),
		cmocka_unit_test(test_others_reply),
		cmocka_unit_test(test_error_reply),
		cmocka_unit_test(test_hmp),
		cmocka_unit_test(test_split_reply),
		cmocka_unit_test(test_closed_mid_reply),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_bad_greetings),
		cmocka_unit_test(test_quit),
		cmocka_unit_test(test_one_write),
		cmocka_unit_test(test_send_fd),
		cmocka_unit_test(test_send_fd_gone),
		cmocka_unit_test(test_open_socket),
		cmocka_unit_test(test_open_path),
		cmocka_unit_test(test_open_not_accepting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

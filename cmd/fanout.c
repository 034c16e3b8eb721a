/*
 * Fan-out: several commands at once, one per node of a cluster. Every
 * line they print is labelled with whose it is. With --json, their
 * outputs are kept instead, and printed as one array with an object per
 * job. The labelling is a loop over fds (fanout_pump()), so the tests
 * drive it with pipes and no children.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"

/* A line longer than this is cut (and each piece labelled) rather than
 * held: a command printing binary without newlines costs bounded memory. */
#define FANOUT_MAX_LINE 65536

int fanout_status(const int *status, size_t n)
{
	int high = 0;

	for (size_t i = 0; i < n; i++) {
		int st = status[i] < 0 ? 1 : status[i];

		if (st > high)
			high = st;
	}
	return high;
}

/* "LABEL: " and len bytes of a line and a newline, appended to out. */
static void add_line(struct buf *out, const char *label, const char *p,
		     size_t len)
{
	buf_addf(out, "%s: ", label);
	buf_add(out, p, len);
	buf_add(out, "\n", 1);
}

/*
 * Move s->part's whole lines into out, labelled. What is left is a line
 * not yet ended; with at_end, it goes out too.
 */
static void take_lines(struct fanout_stream *s, int at_end, struct buf *out)
{
	size_t done = 0;

	for (;;) {
		char *start = s->part.p + done;
		size_t left = s->part.len - done;
		char *nl = memchr(start, '\n', left);
		size_t len = nl ? (size_t)(nl - start) : left;

		/* a line not yet ended waits for its rest, unless this is
		 * the end or it is too long to hold */
		if (!nl && (!len || (!at_end && len < FANOUT_MAX_LINE)))
			break;
		add_line(out, s->label, start, len);
		done += len + (nl != NULL);
	}
	memmove(s->part.p, s->part.p + done, s->part.len - done);
	s->part.len -= done;
	s->part.p[s->part.len] = '\0';
}

void fanout_text_utf8(struct fanout_text *t)
{
	const unsigned char *p = (const unsigned char *)t->b.p;
	struct buf out = BUF_INIT;
	size_t i = 0, n = t->b.len, k;
	int whole;

	/* the usual case, valid, costs no copy */
	while (i < n) {
		k = utf8_len(p + i, n - i, &whole);
		if (whole <= 0)
			break;
		i += k;
	}
	if (i == n) {
		buf_add(&t->b, "", 0);
		return;
	}
	buf_add(&out, p, i);
	for (; i < n; i += k) {
		k = utf8_len(p + i, n - i, &whole);
		if (whole > 0)
			buf_add(&out, p + i, k);
		else if (!(whole < 0 && t->truncated))
			buf_add(&out, "\xef\xbf\xbd", 3);
	}
	buf_add(&out, "", 0);
	buf_free(&t->b);
	t->b = out;
}

/* len bytes read into t, as many as FANOUT_KEEP_MAX leaves room for. */
static void keep_bytes(struct fanout_text *t, const char *p, size_t len)
{
	size_t room = FANOUT_KEEP_MAX - t->b.len;

	if (len > room) {
		t->truncated = 1;
		len = room;
	}
	buf_add(&t->b, p, len);
}

/* Close s and free its partial line. What s->keep holds stays as read:
 * made UTF-8 now it could take 3 times the room, and a set of jobs
 * keeps all of them until the JSON is printed. */
static void end(struct fanout_stream *s)
{
	if (s->in >= 0)
		close(s->in);
	s->in = -1;
	buf_free(&s->part);
}

/* Whether stdout's reader has gone, asked without writing anything:
 * the write end of a pipe whose reader has gone polls POLLERR. */
static int stdout_gone(void)
{
	struct pollfd p = { STDOUT_FILENO, 0, 0 };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

/*
 * A write of s's lines failed (errno says why). Returns:
 *  -2 when stdout's reader has gone. Nothing is said: a pipeline's
 *     reader that quits is no error.
 *  0  when s writes to stderr: a failing stderr does not stop stdout's
 *     lines. The failure is said (if it can be), s->lost is set, and
 *     s's lines are dropped from now on.
 *  -1 otherwise, having said why.
 */
static int write_failed(struct fanout_stream *s)
{
	if (errno == EPIPE && (s->out == STDOUT_FILENO || stdout_gone()))
		return -2;
	error_errno("cannot write %s's output", s->label);
	if (s->out != STDERR_FILENO)
		return -1;
	s->out = -1;
	s->lost = 1;
	return 0;
}

/* One read from s->in; its lines written out, or kept. 1 while s is
 * open. 0 at its end: s->in closed, the last partial line written. < 0
 * when a write failed (write_failed()'s result). */
static int feed(struct fanout_stream *s)
{
	struct buf out = BUF_INIT;
	char chunk[16384];
	ssize_t r = read(s->in, chunk, sizeof(chunk));
	size_t got = r > 0 ? (size_t)r : 0;
	int ret = 1;

	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return 1;
	if (s->keep) {
		keep_bytes(s->keep, chunk, got);
	} else {
		buf_add(&s->part, chunk, got);
		/* an error reading counts as the end: nothing more will
		 * come */
		take_lines(s, r <= 0, &out);
	}
	if (out.len && s->out >= 0 && write_all(s->out, out.p, out.len) < 0)
		ret = write_failed(s);
	buf_free(&out);
	if (r <= 0 || ret < 0) {
		end(s);
		return ret < 0 ? ret : 0;
	}
	return 1;
}

/* End s before its writer did: what it holds goes out as a last line,
 * then s is closed. */
static void cut(struct fanout_stream *s)
{
	struct buf out = BUF_INIT;

	if (s->part.p)
		take_lines(s, 1, &out);
	if (out.len && s->out >= 0)
		write_all(s->out, out.p, out.len);
	buf_free(&out);
	end(s);
}

/* How many more reads of the streams once done() says so: enough for
 * a full pipe (64 KiB) in 16 KiB reads, and bounded for a writer that
 * goes on. */
#define LAST_READS 8

/* The end of pump(), whose result so far is ret. Streams still open are
 * cut where they are when ret is 0. After a failure they are closed as
 * they are: their writers get EPIPE and end, rather than block on a
 * full pipe. A stream whose lines were dropped (a failing stderr's)
 * makes the result -1: that is no success either. */
static int pump_end(struct fanout_stream *s, size_t n, int ret)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i].in >= 0 && ret == 0)
			cut(&s[i]);
		if (s[i].in >= 0)
			end(&s[i]);
		buf_free(&s[i].part);
	}
	for (size_t i = 0; ret == 0 && i < n; i++)
		if (s[i].lost)
			ret = -1;
	return ret;
}

/* Whether a stream copies its lines to stdout as they come. */
static int streams_stdout(const struct fanout_stream *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i].out == STDOUT_FILENO && !s[i].keep)
			return 1;
	return 0;
}

/*
 * fanout_pump(), which can also be ended by done(ctx), asked every
 * 250 ms. Once done() says so, what is readable is still copied (at
 * most LAST_READS more times), then the streams are cut where they
 * are. -2 when stdout's reader has gone: seen at a write, or while
 * the streams are quiet (polled as well, so a command that printed
 * once and waits does not keep nook running for a reader that left).
 */
static int pump(struct fanout_stream *s, size_t n, int (*done)(void *),
		void *ctx)
{
	struct pollfd *p = xmalloc(sizeof(*p) * (n + 1));
	int ret = 0, last = 0;

	/* asked for nothing: only POLLERR, a pipe's reader gone, is said */
	p[n].fd = streams_stdout(s, n) ? STDOUT_FILENO : -1;
	p[n].events = 0;
	for (;;) {
		size_t live = 0;
		int r;

		for (size_t i = 0; i < n; i++) {
			p[i].fd = s[i].in; /* poll skips a negative fd */
			p[i].events = POLLIN;
			p[i].revents = 0;
			live += s[i].in >= 0;
		}
		if (!live)
			break;
		p[n].revents = 0;
		r = poll(p, n + 1, last ? 0 : done ? 250 : -1);
		if (r < 0 && errno != EINTR) {
			ret = error_errno("cannot wait on the nodes' output");
			break;
		}
		if (r > 0 && (p[n].revents & POLLERR)) {
			ret = -2;
			break;
		}
		for (size_t i = 0; r > 0 && ret == 0 && i < n; i++) {
			int f = p[i].revents ? feed(&s[i]) : 1;

			if (f < ret)
				ret = f;
		}
		if (ret < 0)
			break;
		if (last) {
			/* drained, or a writer that goes on */
			if (r <= 0 || ++last > LAST_READS)
				break;
		} else if (done && done(ctx)) {
			last = 1;
		}
	}
	free(p);
	return pump_end(s, n, ret);
}

int fanout_pump(struct fanout_stream *s, size_t n)
{
	return pump(s, n, NULL, NULL) < 0 ? -1 : 0;
}

/* Start job j with stdin from devnull, its stdout and stderr into new
 * pipes whose read ends go to so and se. -1 having said why. */
static int start_job(const struct fanout_job *j, int devnull, struct child *c,
		     struct fanout_stream *so, struct fanout_stream *se)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, ret = -1;

	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		error_errno("cannot make a pipe for %s's output", j->label);
		goto out;
	}
	c->argv = j->argv;
	c->in = devnull;
	c->out = po[1];
	c->err = pe[1];
	if (child_start(c) < 0)
		goto out;
	*so = (struct fanout_stream){ j->label, po[0], STDOUT_FILENO, BUF_INIT,
				      j->keep };
	*se = (struct fanout_stream){ j->label, pe[0], STDERR_FILENO, BUF_INIT,
				      j->keep ? &j->keep[1] : NULL };
	po[0] = pe[0] = -1;
	ret = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	return ret;
}

struct jobs {
	const struct child *c;
	size_t n;
};

/*
 * Whether a signal was passed on and every job has ended since. The
 * jobs are not reaped here: the handler may still signal their pids.
 * Their end, not their pipes', is what counts: ssh's client hands its
 * fds to the master, which holds them until the command in the guest
 * ends.
 */
static int ended_by_signal(void *ctx)
{
	const struct jobs *j = ctx;

	if (!sig_caught)
		return 0;
	for (size_t i = 0; i < j->n; i++) {
		siginfo_t si;

		memset(&si, 0, sizeof(si));
		if (j->c[i].pid > 0 &&
		    waitid(P_PID, (id_t)j->c[i].pid, &si,
			   WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == 0)
			return 0;
	}
	return 1;
}

/* Ignore SIGPIPE, its old action in *was. A write to stdout whose
 * reader has gone then fails instead of killing us, so that we can end
 * the jobs rather than leave them running. */
static void ignore_sigpipe(struct sigaction *was)
{
	struct sigaction ign;

	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, was);
}

/* stdout's reader has gone, so the jobs' output has nowhere to go. End
 * each job as a ^C would: SIGTERM, ssh goes, and the caller hangs up
 * what it ran. The run counts as ended by SIGPIPE, as a pipeline's
 * writer would be. */
static void end_jobs(const struct child *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (c[i].pid > 0)
			kill(c[i].pid, SIGTERM);
	if (!sig_caught)
		sig_caught = SIGPIPE;
}

/* Start each job that has an argv as c[i], its stdout read from s[2i]
 * and its stderr from s[2i + 1]. A job that cannot start gets its
 * error in jobs[i].error. */
static void start_jobs(struct fanout_job *jobs, size_t n, struct child *c,
		       struct fanout_stream *s)
{
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

	for (size_t i = 0; i < n; i++) {
		c[i] = (struct child)CHILD_INIT;
		s[2 * i] = (struct fanout_stream){ jobs[i].label, -1, -1,
						   BUF_INIT };
		s[2 * i + 1] = s[2 * i];
		if (!jobs[i].argv)
			continue;
		free(jobs[i].error);
		jobs[i].error = NULL;
		error_where(jobs[i].label);
		if (devnull < 0)
			error_errno("cannot open /dev/null for its stdin");
		else
			start_job(&jobs[i], devnull, &c[i], &s[2 * i],
				  &s[2 * i + 1]);
		error_where(NULL);
		if (c[i].pid <= 0)
			jobs[i].error = xstrdup(error_last());
	}
	if (devnull >= 0)
		close(devnull);
}

/* pump() the n jobs' streams while a signal caught is passed on to the
 * jobs. pump()'s result. */
static int pump_jobs(const struct child *c, struct fanout_stream *s,
		     size_t n)
{
	pid_t *pids = xmalloc(sizeof(*pids) * (n ? n : 1));
	struct jobs j = { c, n };
	int ret;

	for (size_t i = 0; i < n; i++)
		pids[i] = c[i].pid;
	sig_pass_on(pids, n);
	ret = pump(s, 2 * n, ended_by_signal, &j);
	sig_pass_on(NULL, 0);
	free(pids);
	return ret;
}

/* Wait for each job that started, setting its status and signal. st[i]
 * gets its status as fanout_status() takes it (1 for a job not run). */
static void wait_jobs(struct fanout_job *jobs, struct child *c, int *st,
		      size_t n)
{
	for (size_t i = 0; i < n; i++) {
		st[i] = 1;
		jobs[i].signal = 0;
		if (c[i].pid > 0)
			st[i] = child_wait_signal(&c[i], &jobs[i].signal);
		jobs[i].status = st[i] < 0 ? 1 : st[i];
	}
}

int fanout_run(struct fanout_job *jobs, size_t n, int *caught)
{
	struct sigaction old[3], pipe_was;
	struct child *c = xmalloc(sizeof(*c) * (n ? n : 1));
	struct fanout_stream *s = xmalloc(sizeof(*s) * 2 * (n ? n : 1));
	int *st = xmalloc(sizeof(*st) * (n ? n : 1));
	int rc, pumped;

	/* our own buffered output goes before any labelled line */
	fflush(NULL);
	/* a signal that would end us is passed on to every job once; we
	 * go on labelling what they print until they end */
	sig_catch(old, 1);
	start_jobs(jobs, n, c, s);
	/* ignored only now: the jobs start with SIGPIPE as it was */
	ignore_sigpipe(&pipe_was);
	pumped = pump_jobs(c, s, n);
	if (pumped == -2)
		end_jobs(c, n);
	wait_jobs(jobs, c, st, n);
	sig_catch(old, 0);
	sigaction(SIGPIPE, &pipe_was, NULL);
	rc = fanout_status(st, n);
	/* lines that could not be written (said): not a success, even when
	 * every job's was */
	if (pumped < 0 && !rc)
		rc = 1;
	if (caught) {
		*caught = sig_caught;
		sig_caught = 0;
	} else {
		sig_rethrow(); /* dies of it, as the jobs did */
	}
	free(st);
	free(s);
	free(c);
	return rc;
}

/* Set o's key to t's text made UTF-8, and key_cut to true when t was
 * cut. t's bytes are freed at once, so only one output at a time is
 * held twice (as UTF-8, up to 3 times its size, and as JSON's). */
static void add_text(json_t *o, const char *key, const char *key_cut,
		     struct fanout_text *t)
{
	fanout_text_utf8(t);
	json_object_set_new(o, key, json_stringn(t->b.p, t->b.len));
	buf_free(&t->b);
	if (t->truncated)
		json_object_set_new(o, key_cut, json_true());
}

/* fanout_job_json(), NULL when j->error is not UTF-8 */
static json_t *job_json(struct fanout_job *j, fanout_add_fn *add)
{
	const char *abbrev = j->signal ? sigabbrev_np(j->signal) : NULL;
	json_t *o;

	if (j->error)
		return json_pack("{s:s,s:s}", "name", j->label, "error",
				 j->error);
	o = json_pack("{s:s,s:o}", "name", j->label, "exit",
		      j->signal ? json_null() : json_integer(j->status));
	if (!o)
		return NULL;
	if (j->signal)
		json_object_set_new(o, "signal", abbrev ? json_string(abbrev) :
					json_sprintf("%d", j->signal));
	if (j->why)
		json_object_set_new(o, "error", json_string(j->why));
	if (add)
		add(o, j);
	if (j->keep) {
		add_text(o, "stdout", "stdout_truncated", &j->keep[0]);
		add_text(o, "stderr", "stderr_truncated", &j->keep[1]);
	}
	return o;
}

json_t *fanout_job_json(struct fanout_job *j, fanout_add_fn *add)
{
	json_t *o = job_json(j, add);

	/* the node is not left out */
	if (!o)
		o = json_pack("{s:s,s:s}", "name", j->label, "error",
			      "its outcome cannot be written as JSON");
	return o;
}

void fanout_set_init(struct fanout_set *s, struct strvec *nodes)
{
	memset(s, 0, sizeof(*s));
	s->nodes = *nodes;
	*nodes = (struct strvec)STRVEC_INIT;
	s->avs = xmalloc(sizeof(*s->avs) * (s->nodes.n + 1));
	s->jobs = xmalloc(sizeof(*s->jobs) * (s->nodes.n + 1));
	for (size_t i = 0; i < s->nodes.n; i++) {
		s->avs[i] = (struct strvec)STRVEC_INIT;
		s->jobs[i] = (struct fanout_job){ s->nodes.v[i], NULL, 0 };
	}
}

void fanout_set_keep(struct fanout_set *s)
{
	size_t n = 2 * (s->nodes.n + 1);

	s->kept = xmalloc(sizeof(*s->kept) * n);
	memset(s->kept, 0, sizeof(*s->kept) * n);
	for (size_t i = 0; i < s->nodes.n; i++)
		s->jobs[i].keep = &s->kept[2 * i];
}

void fanout_set_free(struct fanout_set *s)
{
	for (size_t i = 0; s->avs && i < s->nodes.n; i++) {
		strvec_clear(&s->avs[i]);
		free(s->jobs[i].error);
		free(s->jobs[i].why);
	}
	for (size_t i = 0; s->kept && i < 2 * s->nodes.n; i++)
		buf_free(&s->kept[i].b);
	free(s->kept);
	free(s->avs);
	free(s->jobs);
	strvec_clear(&s->nodes);
	memset(s, 0, sizeof(*s));
}

struct set_json {
	struct fanout_set *s;
	fanout_add_fn *add;
};

/* print_json_array()'s item i: job i's object */
static json_t *set_json_item(size_t i, void *ctx)
{
	struct set_json *a = ctx;

	return fanout_job_json(&a->s->jobs[i], a->add);
}

int fanout_print_json(struct fanout_set *s, const char *name,
		      fanout_add_fn *add)
{
	struct set_json a = { s, add };

	/* a full disk or a closed pipe: the exit status may be a node's,
	 * so say it (as the labelled lines' failed write is said) */
	errno = 0;
	if (!print_json_array(s->nodes.n, set_json_item, &a))
		return 0;
	if (errno)
		error_errno("cannot write the JSON of %s's nodes", name);
	else
		errorf("cannot write the JSON of %s's nodes", name);
	return 1;
}

/*
 * Unit tests for cmd/fanout.c: every line labelled with its job's name and
 * never cut or mixed with another job's, a last partial line flushed, and
 * the exit status the highest of the jobs'. Pipes and forked writers
 * stand in for the nodes' ssh and rsync. Also vm/nodes.c's fan-out of a
 * command over a cluster's nodes: what each node's process says comes
 * back whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "cmd.h"
#include "testutil.h"
#include "vm.h"

/* A file to collect labelled output in (a pipe could fill up). */
static int out_file(void)
{
	FILE *f = tmpfile();

	assert_non_null(f);
	return dup(fileno(f)); /* the file lives while the dup is open */
}

/* Everything written to fd so far, NUL-terminated; the caller frees. */
static char *slurp(int fd)
{
	struct buf b = BUF_INIT;
	char chunk[4096];
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_add(&b, chunk, (size_t)n);
	buf_add(&b, "", 0);
	return b.p;
}

/* The lines of text that start with "LABEL: ", prefix kept, in order. */
static char *only(const char *text, const char *label)
{
	struct buf b = BUF_INIT;
	char *pre = xasprintf("%s: ", label);

	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);

		if (!strncmp(p, pre, strlen(pre)))
			buf_add(&b, p, len);
		p += len;
	}
	buf_add(&b, "", 0);
	free(pre);
	return b.p;
}

/* text's lines labelled label are exactly want. */
static void lines_are(const char *text, const char *label, const char *want)
{
	char *got = only(text, label);

	assert_string_equal(got, want);
	free(got);
}

/* A stream reading from a new pipe whose write end goes to *w. */
static void stream_pipe(struct fanout_stream *s, const char *label, int out,
			int *w)
{
	int p[2];

	assert_int_equal(pipe(p), 0);
	*s = (struct fanout_stream){ label, p[0], out, BUF_INIT };
	*w = p[1];
}

/* Fork a writer that writes each piece to fd with a pause between
 * (so the reader sees them as separate reads), then exits. */
static pid_t writer(int fd, const char *const *pieces, int pause_ms)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		for (size_t i = 0; pieces[i]; i++) {
			if (write_all(fd, pieces[i], strlen(pieces[i])) < 0)
				_exit(1);
			if (pause_ms)
				usleep(pause_ms * 1000);
		}
		_exit(0);
	}
	close(fd);
	return pid;
}

static void test_status(void **state)
{
	int a[] = { 0, 3, 0 }, b[] = { 0, -1 }, c[] = { 255, 1, 130 };
	int z[] = { 0, 0 };

	(void)state;
	assert_int_equal(fanout_status(a, 3), 3);
	assert_int_equal(fanout_status(b, 2), 1); /* not run counts as 1 */
	assert_int_equal(fanout_status(c, 3), 255);
	assert_int_equal(fanout_status(z, 2), 0);
	assert_int_equal(fanout_status(NULL, 0), 0);
}

/* Whole lines labelled, an empty line kept, a partial last line flushed
 * with a newline, a stream with nothing printing nothing. */
static void test_labels_and_partial(void **state)
{
	struct fanout_stream s[3];
	int out = out_file(), w[3];
	char *text, *a, *b;

	(void)state;
	stream_pipe(&s[0], "dev-1", out, &w[0]);
	stream_pipe(&s[1], "dev-2", out, &w[1]);
	stream_pipe(&s[2], "dev-3", out, &w[2]);
	assert_int_equal(write_all(w[0], "one\ntwo: x\nthree", 16), 0);
	assert_int_equal(write_all(w[1], "a\n\nb\n", 5), 0);
	for (int i = 0; i < 3; i++)
		close(w[i]);
	assert_int_equal(fanout_pump(s, 3), 0);
	text = slurp(out);
	a = only(text, "dev-1");
	b = only(text, "dev-2");
	assert_string_equal(a, "dev-1: one\ndev-1: two: x\ndev-1: three\n");
	assert_string_equal(b, "dev-2: a\ndev-2: \ndev-2: b\n");
	assert_int_equal(strlen(text), strlen(a) + strlen(b));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(s[i].in, -1); /* closed */
		assert_null(s[i].part.p);
	}
	free(a);
	free(b);
	free(text);
	close(out);
}

/* A line that arrives in several reads comes out once, whole. */
static void test_split_reads(void **state)
{
	static const char *const pieces[] = { "hel", "lo\nwor", "ld\n", "tail",
					      NULL };
	struct fanout_stream s;
	int out = out_file(), w, st;
	pid_t pid;
	char *text;

	(void)state;
	stream_pipe(&s, "n", out, &w);
	pid = writer(w, pieces, 30);
	assert_int_equal(fanout_pump(&s, 1), 0);
	waitpid(pid, &st, 0);
	text = slurp(out);
	assert_string_equal(text, "n: hello\nn: world\nn: tail\n");
	free(text);
	close(out);
}

/* Two writers at once: every line whole under its own label, each
 * writer's lines in their order. */
static void test_no_mixing(void **state)
{
	struct fanout_stream s[2];
	const char *pieces[2][401];
	struct strvec lines[2] = { STRVEC_INIT, STRVEC_INIT };
	struct buf want[2] = { BUF_INIT, BUF_INIT };
	int out = out_file(), w[2], st;
	pid_t pid[2];
	char *text;

	(void)state;
	for (int j = 0; j < 2; j++) {
		stream_pipe(&s[j], j ? "dev-2" : "dev-1", out, &w[j]);
		for (int i = 0; i < 400; i++) {
			strvec_pushf(&lines[j], "%s line %d %0*d\n",
				     j ? "b" : "a", i, 100 + i % 50, 0);
			buf_addf(&want[j], "dev-%d: %s", j + 1,
				 lines[j].v[i]);
		}
		for (int i = 0; i < 400; i++)
			pieces[j][i] = lines[j].v[i];
		pieces[j][400] = NULL;
	}
	pid[0] = writer(w[0], pieces[0], 0);
	pid[1] = writer(w[1], pieces[1], 0);
	assert_int_equal(fanout_pump(s, 2), 0);
	for (int j = 0; j < 2; j++) {
		char *got;

		waitpid(pid[j], &st, 0);
		text = slurp(out);
		got = only(text, j ? "dev-2" : "dev-1");
		assert_string_equal(got, want[j].p);
		free(got);
		free(text);
		buf_free(&want[j]);
		strvec_clear(&lines[j]);
	}
	close(out);
}

/* A line with no end in sight is cut into labelled pieces, nothing
 * lost. */
static void test_long_line(void **state)
{
	static const char *pieces[] = { NULL, NULL };
	struct fanout_stream s;
	size_t big = 200000, seen = 0, nl = 0;
	char *line = xmalloc(big + 1), *text;
	int out = out_file(), w, st;
	pid_t pid;

	(void)state;
	memset(line, 'x', big);
	line[big] = '\0';
	pieces[0] = line;
	stream_pipe(&s, "n", out, &w);
	pid = writer(w, pieces, 0);
	assert_int_equal(fanout_pump(&s, 1), 0);
	waitpid(pid, &st, 0);
	text = slurp(out);
	for (char *p = text; *p; p++) {
		if (*p == 'x')
			seen++;
		if (*p == '\n') {
			nl++;
			if (p[1]) /* every piece is labelled */
				assert_memory_equal(p + 1, "n: ", 3);
		}
	}
	assert_memory_equal(text, "n: ", 3);
	assert_int_equal(seen, big);
	assert_true(nl >= 2 && nl <= 5);
	free(text);
	free(line);
	close(out);
}

/* A job's two streams, kept (--json) in t[0] and t[1] rather than
 * written to out; their write ends in w. */
static void kept_pipes(struct fanout_stream s[2], struct fanout_text t[2],
		       int out, int w[2])
{
	memset(t, 0, 2 * sizeof(*t));
	for (int i = 0; i < 2; i++) {
		stream_pipe(&s[i], "n", out, &w[i]);
		s[i].keep = &t[i];
	}
}

/* t, made UTF-8, holds exactly want (n bytes), untruncated, and JSON
 * takes it. */
static void kept_is(struct fanout_text *t, const char *want, size_t n)
{
	json_t *j;

	fanout_text_utf8(t);
	j = json_stringn(t->b.p, t->b.len);
	assert_int_equal(t->b.len, n);
	assert_memory_equal(t->b.p, want, n);
	assert_false(t->truncated);
	assert_non_null(j);
	json_decref(j);
}

/* Kept, each stream apart and as it came, in several reads: a last line
 * without its newline stays so, nothing is labelled or written out. */
static void test_kept_apart(void **state)
{
	static const char *const pieces[] = { "one\ntw", "o\n\nno end",
					      NULL };
	struct fanout_stream s[2];
	struct fanout_text t[2];
	int out = out_file(), w[2], st;
	pid_t pid;
	char *text;

	(void)state;
	kept_pipes(s, t, out, w);
	assert_int_equal(write_all(w[1], "err\n", 4), 0);
	close(w[1]);
	pid = writer(w[0], pieces, 30);
	assert_int_equal(fanout_pump(s, 2), 0);
	waitpid(pid, &st, 0);
	kept_is(&t[0], "one\ntwo\n\nno end", 15);
	kept_is(&t[1], "err\n", 4);
	text = slurp(out);
	assert_string_equal(text, "");
	assert_int_equal(s[0].in, -1);
	assert_int_equal(s[1].in, -1);
	free(text);
	close(out);
	buf_free(&t[0].b);
	buf_free(&t[1].b);
}

/* Bytes that are not UTF-8, each sequence one U+FFFD (as a browser or
 * Python's "replace" reads them); valid ones, and NULs, kept. */
static void test_kept_utf8(void **state)
{
	static const char in[] =
		"a\xff" "b"             /* never in UTF-8 */
		"\xc3\xa9\xe2\x82\xac" /* e acute, euro: kept */
		"\xc0\xaf"              /* overlong '/': two */
		"\xed\xa0\x80"          /* a surrogate: three */
		"\xe2\x82" "x"         /* cut short: one */
		"\xf0\x9f\x98\x80"      /* an emoji: kept */
		"\xf4\x90\x80\x80"      /* past U+10FFFF: four */
		"\0z\xe2\x82";          /* a NUL; cut by the end: one */
	static const char want[] =
		"a\xef\xbf\xbd" "b" "\xc3\xa9\xe2\x82\xac"
		"\xef\xbf\xbd\xef\xbf\xbd"
		"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
		"\xef\xbf\xbd" "x" "\xf0\x9f\x98\x80"
		"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
		"\0z\xef\xbf\xbd";
	struct fanout_stream s[2];
	struct fanout_text t[2];
	int out = out_file(), w[2];

	(void)state;
	kept_pipes(s, t, out, w);
	assert_int_equal(write_all(w[0], in, sizeof(in) - 1), 0);
	close(w[0]);
	close(w[1]);
	assert_int_equal(fanout_pump(s, 2), 0);
	kept_is(&t[0], want, sizeof(want) - 1);
	kept_is(&t[1], "", 0);
	close(out);
	buf_free(&t[0].b);
	buf_free(&t[1].b);
}

/* FANOUT_KEEP_MAX bytes kept of a stream, the rest read (its writer
 * ends) and dropped, said by truncated; a character the cap cuts in two
 * dropped, not a U+FFFD. A stream of just the cap is whole. */
static void test_kept_cap(void **state)
{
	static const char *pieces[2][4];
	size_t max = FANOUT_KEEP_MAX;
	char *big = xmalloc(max + 1), *whole = xmalloc(max + 1);
	struct fanout_stream s[2];
	struct fanout_text t[2];
	int out = out_file(), w[2], st;
	pid_t pid[2];

	(void)state;
	memset(big, 'x', max - 1);
	big[max - 1] = '\0';
	memset(whole, 'y', max);
	whole[max] = '\0';
	pieces[0][0] = big;
	pieces[0][1] = "\xc3\xa9"; /* its second byte past the cap */
	pieces[0][2] = "more";
	pieces[1][0] = whole;
	kept_pipes(s, t, out, w);
	pid[0] = writer(w[0], pieces[0], 0);
	pid[1] = writer(w[1], pieces[1], 0);
	assert_int_equal(fanout_pump(s, 2), 0);
	waitpid(pid[0], &st, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	waitpid(pid[1], &st, 0);
	assert_true(t[0].truncated);
	fanout_text_utf8(&t[0]);
	t[0].truncated = 0;
	kept_is(&t[0], big, max - 1);
	kept_is(&t[1], whole, max);
	close(out);
	buf_free(&t[0].b);
	buf_free(&t[1].b);
	free(big);
	free(whole);
}

/* An output of bytes that are never UTF-8, past the cap: what is kept
 * is the cap's worth as read, not the 3 times as many bytes of its
 * U+FFFDs (a cluster's nodes' outputs are all held at once); made UTF-8
 * when asked, one output at a time. */
static void test_kept_raw(void **state)
{
	static const char *pieces[3];
	size_t max = FANOUT_KEEP_MAX;
	char *bad = xmalloc(max + 1);
	struct fanout_stream s[2];
	struct fanout_text t[2];
	int out = out_file(), w[2], st;
	pid_t pid;

	(void)state;
	memset(bad, 0xff, max);
	bad[max] = '\0';
	pieces[0] = bad;
	pieces[1] = "\xff";
	kept_pipes(s, t, out, w);
	close(w[1]);
	pid = writer(w[0], pieces, 0);
	assert_int_equal(fanout_pump(s, 2), 0);
	waitpid(pid, &st, 0);
	assert_true(t[0].truncated);
	assert_int_equal(t[0].b.len, max);
	assert_memory_equal(t[0].b.p, bad, max);
	fanout_text_utf8(&t[0]);
	assert_int_equal(t[0].b.len, 3 * max);
	assert_memory_equal(t[0].b.p + 3 * max - 6, "\xef\xbf\xbd\xef\xbf\xbd",
			    6);
	kept_is(&t[1], "", 0);
	close(out);
	buf_free(&t[0].b);
	buf_free(&t[1].b);
	free(bad);
}

/* Real children kept: each one's two outputs apart, its status, and a
 * signal that ended one said as such. */
static void test_run_kept(void **state)
{
	const char *a[] = { "sh", "-c", "printf 'o1\\no2'; echo e1 >&2; exit 3",
			    NULL };
	const char *k[] = { "sh", "-c", "echo bye; kill -TERM $$", NULL };
	struct fanout_text t[4];
	struct fanout_job jobs[] = { { "a", a, -5, &t[0], -5 },
				     { "k", k, -5, &t[2], -5 } };
	int o = out_file(), so = dup(1), rc;
	char *out;

	(void)state;
	memset(t, 0, sizeof(t));
	fflush(NULL);
	dup2(o, 1);
	rc = fanout_run(jobs, 2, NULL);
	dup2(so, 1);
	close(so);
	out = slurp(o);
	assert_string_equal(out, "");
	assert_int_equal(rc, 128 + SIGTERM);
	assert_int_equal(jobs[0].status, 3);
	assert_int_equal(jobs[0].signal, 0);
	kept_is(&t[0], "o1\no2", 5);
	kept_is(&t[1], "e1\n", 3);
	assert_int_equal(jobs[1].status, 128 + SIGTERM);
	assert_int_equal(jobs[1].signal, SIGTERM);
	kept_is(&t[2], "bye\n", 4);
	for (int i = 0; i < 4; i++)
		buf_free(&t[i].b);
	free(out);
	close(o);
}

/* Real children: stdout and stderr labelled apart, the statuses, a job
 * that could not be made and one that cannot start, stdin empty. */
static void test_run(void **state)
{
	const char *a[] = { "sh", "-c", "printf 'o1\\no2'; echo e1 >&2; exit 3",
			    NULL };
	const char *b[] = { "sh", "-c", "echo fine", NULL };
	const char *c[] = { "cat", NULL };
	const char *k[] = { "sh", "-c", "kill -TERM $$", NULL };
	const char *x[] = { "/nonexistent/nook-test", NULL };
	struct fanout_job jobs[] = {
		{ "a", a, -5 }, { "b", b, -5 }, { "c", c, -5 },
		{ "gone", NULL, -5 }, { "x", x, -5 }, { "k", k, -5 }
	};
	int o = out_file(), e = out_file();
	int so = dup(1), se = dup(2), rc;
	char *out, *err;

	(void)state;
	fflush(NULL);
	dup2(o, 1);
	dup2(e, 2);
	rc = fanout_run(jobs, 6, NULL);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	out = slurp(o);
	err = slurp(e);
	assert_int_equal(rc, 128 + SIGTERM);
	assert_int_equal(jobs[0].status, 3);
	assert_int_equal(jobs[1].status, 0);
	assert_int_equal(jobs[2].status, 0); /* cat read /dev/null */
	assert_int_equal(jobs[3].status, 1);
	assert_int_equal(jobs[4].status, 1);
	assert_int_equal(jobs[5].status, 128 + SIGTERM);
	lines_are(out, "a", "a: o1\na: o2\n");
	lines_are(out, "b", "b: fine\n");
	assert_null(strstr(out, "e1"));
	lines_are(err, "a", "a: e1\n");
	/* x's failure, said with x's name, and kept for its --json */
	assert_non_null(strstr(err, "nook: x: cannot run /nonexistent/"));
	assert_non_null(jobs[4].error);
	assert_non_null(strstr(jobs[4].error, "cannot run /nonexistent"));
	assert_non_null(strstr(jobs[4].error, strerror(ENOENT)));
	for (size_t i = 0; i < 6; i++)
		if (i != 4)
			assert_null(jobs[i].error);
	free(jobs[4].error);
	free(out);
	free(err);
	close(o);
	close(e);
}

/* A SIGTERM to us while jobs run is passed on to each of them and given
 * back in *caught, with every job's status still collected. */
static void test_run_signal(void **state)
{
	const char *kill_us[] = { "sh", "-c", "kill -TERM $PPID; exec sleep 30",
				  NULL };
	const char *sleeper[] = { "sleep", "30", NULL };
	struct fanout_job jobs[] = { { "k", kill_us, -5 }, { "s", sleeper, -5 } };
	int o = out_file(), so = dup(1), caught = -1;

	(void)state;
	fflush(NULL);
	dup2(o, 1);
	fanout_run(jobs, 2, &caught);
	dup2(so, 1);
	close(so);
	close(o);
	assert_int_equal(caught, SIGTERM);
	assert_int_equal(jobs[0].status, 128 + SIGTERM);
	assert_int_equal(jobs[1].status, 128 + SIGTERM);
}

/*
 * A job's pipe held by a process the job left behind (as ssh's master
 * holds its client's fds until the command in the guest ends): after a
 * SIGTERM, the run ends once the jobs have, with what they printed, and
 * does not wait for the pipe's end.
 */
static void test_run_signal_pipe_held(void **state)
{
	char *dir = make_tmpdir(), *pidf = xasprintf("%s/held", dir);
	const char *holder[] = {
		"sh", "-c",
		"echo before; sleep 60 & echo $! > \"$0\"; kill -TERM $PPID; "
		"exec sleep 30", pidf, NULL
	};
	struct fanout_job jobs[] = { { "h", holder, -5 } };
	struct buf pid = BUF_INIT;
	int o = out_file(), so = dup(1), caught = -1;
	double t0 = mono_s(), took;
	char *out;

	(void)state;
	fflush(NULL);
	dup2(o, 1);
	fanout_run(jobs, 1, &caught);
	took = mono_s() - t0;
	dup2(so, 1);
	close(so);
	out = slurp(o);
	close(o);
	/* the holder, while it is surely still ours (not after its 60 s) */
	if (took < 50 && read_file_quiet(pidf, &pid) == 0 && pid.p)
		kill((pid_t)strtol(pid.p, NULL, 10), SIGKILL);
	buf_free(&pid);
	unlink(pidf);
	rmdir(dir);
	free(pidf);
	free(dir);
	assert_int_equal(caught, SIGTERM);
	assert_int_equal(jobs[0].status, 128 + SIGTERM);
	assert_true(took < 20); /* not the 60 s of the pipe's holder */
	lines_are(out, "h", "h: before\n");
	free(out);
}

/* o as compact JSON, its keys in order; the caller frees. */
static char *compact(json_t *o)
{
	char *text;

	assert_non_null(o);
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	assert_non_null(text);
	json_decref(o);
	return text;
}

/* fanout_job_json()'s add: a command's own word on a job that ran */
static void add_why(json_t *o, const struct fanout_job *j)
{
	json_object_set_new(o, "why", json_sprintf("status %d", j->status));
}

/* t holding text, as kept */
static void kept_text(struct fanout_text *t, const char *text, int cut)
{
	memset(t, 0, sizeof(*t));
	buf_adds(&t->b, text);
	t->truncated = cut;
}

/* A job's object: one that ran, its status (or its signal), why it
 * failed and what add says of it, then its outputs made UTF-8 (and
 * freed); one not run, its name and why, whatever add would say. */
static void test_job_json(void **state)
{
	const char *argv[] = { "x", NULL };
	struct fanout_text t[2];
	struct fanout_job j = { "n1", argv, 3, t, 0, NULL };
	char *text;

	(void)state;
	kept_text(&t[0], "o\xff\n", 0);
	kept_text(&t[1], "e", 1);
	text = compact(fanout_job_json(&j, add_why));
	assert_string_equal(text, "{\"name\":\"n1\",\"exit\":3,"
			    "\"why\":\"status 3\","
			    "\"stdout\":\"o\xef\xbf\xbd\\n\","
			    "\"stderr\":\"e\",\"stderr_truncated\":true}");
	free(text);
	/* one output at a time: each is freed once in the object */
	assert_null(t[0].b.p);
	assert_null(t[1].b.p);
	kept_text(&t[0], "", 0);
	kept_text(&t[1], "", 0);
	j.status = 128 + SIGTERM;
	j.signal = SIGTERM;
	text = compact(fanout_job_json(&j, NULL));
	assert_string_equal(text, "{\"name\":\"n1\",\"exit\":null,"
			    "\"signal\":\"TERM\",\"stdout\":\"\","
			    "\"stderr\":\"\"}");
	free(text);
	/* the caller's words on why one that ran failed: its "error" */
	kept_text(&t[0], "", 0);
	kept_text(&t[1], "", 0);
	j.status = 255;
	j.signal = 0;
	j.why = "the VM is stopped now";
	text = compact(fanout_job_json(&j, NULL));
	assert_string_equal(text, "{\"name\":\"n1\",\"exit\":255,"
			    "\"error\":\"the VM is stopped now\","
			    "\"stdout\":\"\",\"stderr\":\"\"}");
	free(text);
	j.why = NULL;
	j.error = "no such VM";
	text = compact(fanout_job_json(&j, add_why));
	assert_string_equal(text, "{\"name\":\"n1\",\"error\":\"no such VM\"}");
	free(text);
	/* a why that JSON cannot take: the node is still there */
	j.error = "bad \xff";
	text = compact(fanout_job_json(&j, NULL));
	assert_string_equal(text, "{\"name\":\"n1\",\"error\":\"its outcome "
			    "cannot be written as JSON\"}");
	free(text);
	buf_free(&t[0].b);
	buf_free(&t[1].b);
}

/* A job without argv keeps the why its caller gave (--json says it);
 * one that runs loses an earlier run's. */
static void test_run_keeps_why(void **state)
{
	const char *ok[] = { "true", NULL };
	struct fanout_job jobs[] = {
		{ "gone", NULL, -5, NULL, 0, xstrdup("its record is bad") },
		{ "ok", ok, -5, NULL, 0, xstrdup("from before") }
	};

	(void)state;
	assert_int_equal(fanout_run(jobs, 2, NULL), 1);
	assert_string_equal(jobs[0].error, "its record is bad");
	assert_int_equal(jobs[0].status, 1);
	assert_null(jobs[1].error);
	assert_int_equal(jobs[1].status, 0);
	free(jobs[0].error);
}

/* A set that kept its outputs, printed: one array on stdout, each
 * job's object in order. */
static void test_set_json(void **state)
{
	struct strvec nodes = STRVEC_INIT;
	struct fanout_set s;
	int o = out_file(), so = dup(1), rc;
	char *out, *text;
	json_t *j;

	(void)state;
	strvec_push(&nodes, "c-1");
	strvec_push(&nodes, "c-2");
	fanout_set_init(&s, &nodes);
	fanout_set_keep(&s);
	strvec_push(&s.avs[0], "sh");
	strvec_push(&s.avs[0], "-c");
	strvec_push(&s.avs[0], "echo hi; echo oh >&2; exit 2");
	s.jobs[0].argv = (const char *const *)s.avs[0].v;
	s.jobs[1].error = xstrdup("not running");
	fflush(NULL);
	dup2(o, 1);
	rc = fanout_run(s.jobs, s.nodes.n, NULL);
	assert_int_equal(fanout_print_json(&s, "c", add_why), 0);
	fflush(NULL);
	dup2(so, 1);
	close(so);
	assert_int_equal(rc, 2);
	out = slurp(o);
	close(o);
	j = json_loads(out, 0, NULL);
	text = compact(j);
	assert_string_equal(text, "[{\"name\":\"c-1\",\"exit\":2,"
			    "\"why\":\"status 2\",\"stdout\":\"hi\\n\","
			    "\"stderr\":\"oh\\n\"},{\"name\":\"c-2\","
			    "\"error\":\"not running\"}]");
	free(text);
	free(out);
	fanout_set_free(&s);
	assert_null(s.kept);
}

/* JSON that cannot be written (a full disk): said, naming the set. */
static void test_set_json_full(void **state)
{
	struct strvec nodes = STRVEC_INIT;
	int full = open("/dev/full", O_WRONLY), st;
	pid_t pid;

	(void)state;
	assert_true(full >= 0);
	strvec_push(&nodes, "c-1");
	fflush(NULL);
	stderr_begin();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct fanout_set s;

		dup2(full, 1);
		fanout_set_init(&s, &nodes);
		s.jobs[0].error = xstrdup("not running");
		_exit(fanout_print_json(&s, "c", NULL) == 1 ? 0 : 3);
	}
	waitpid(pid, &st, 0);
	{
		char *err = stderr_end();

		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		assert_non_null(strstr(err, "nook: cannot write the JSON of "
					    "c's nodes: No space left"));
		free(err);
	}
	close(full);
	strvec_clear(&nodes);
}

/* More than any pipe holds: a node's words past it must still come back
 * whole (fan_out() reads them once the node's process has ended). */
#define BIG_WORDS ((size_t)1 << 20)

/* vm_cluster_each()'s fn: BIG_WORDS of words, ending "end", and a
 * failure, as a node's error quoting a long path would be. */
static int big_words(const struct nook_dirs *d, const char *node,
		     const void *arg, struct buf *words)
{
	char *x = xmalloc(BIG_WORDS - 3);

	(void)d;
	(void)node;
	(void)arg;
	memset(x, 'x', BIG_WORDS - 3);
	buf_add(words, x, BIG_WORDS - 3);
	buf_adds(words, "end");
	free(x);
	return -1;
}

/* path's text written, or the test fails. */
static void put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* A cluster w of one node, w-1, under dir: its record and the node's. */
static void make_cluster(const char *dir, struct nook_dirs *d)
{
	char *p;

	d->data = xasprintf("%s/data", dir);
	d->run = xasprintf("%s/run", dir);
	d->cache = xasprintf("%s/cache", dir);
	d->recipes = NULL;
	p = xasprintf("%s/vms/w-1", d->data);
	assert_int_equal(mkdir_p(p, 0700), 0);
	free(p);
	p = xasprintf("%s/clusters", d->data);
	assert_int_equal(mkdir_p(p, 0700), 0);
	free(p);
	assert_int_equal(mkdir_p(d->run, 0700), 0);
	p = xasprintf("%s/clusters/w.json", d->data);
	put_file(p, "{\"name\": \"w\", \"subnet\": \"10.77.0.0/24\", "
		 "\"nodes\": 1}\n");
	free(p);
	p = xasprintf("%s/vms/w-1/vm.json", d->data);
	put_file(p, "{\"name\": \"w-1\", \"image\": {\"ref\": \"blank\", "
		 "\"disk\": \"/nonexistent.img\", \"format\": \"raw\"}, "
		 "\"boot\": \"disk\", \"accel\": \"tcg\", "
		 "\"instance_id\": \"w-1\", \"cpus\": 1, "
		 "\"memory\": 268435456, \"disk\": 67108864, "
		 "\"ssh_port\": 2222, "
		 "\"cluster\": {\"name\": \"w\", \"node\": 1, "
		 "\"address\": \"10.77.0.1\", \"prefix\": 24}}\n");
	free(p);
}

/* A node's words past a pipe's buffer (64 KiB): the command gets them
 * whole, and does not wait for good on a node that waits for room. */
static void test_cluster_big_words(void **state)
{
	char *dir = make_tmpdir();
	struct nook_dirs d;
	int st;
	pid_t pid;

	(void)state;
	make_cluster(dir, &d);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct vm_cluster_said said = VM_CLUSTER_SAID_INIT;
		int failed;
		const char *w;

		alarm(30); /* stuck: dies of SIGALRM */
		failed = vm_cluster_each(&d, "w", "test", big_words, NULL,
					 &said);
		w = said.words.n == 1 ? said.words.v[0] : "";
		_exit(failed == 1 && said.failed[0] &&
		      strlen(w) == BIG_WORDS && !memcmp(w, "xxx", 3) &&
		      !strcmp(w + BIG_WORDS - 3, "end") ? 0 : 3);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st))
		fail_msg("the command waited for good on a node whose words "
			 "passed a pipe's buffer (ended by %s)",
			 strsignal(WTERMSIG(st)));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	remove_tree(dir);
	free(dir);
	nook_dirs_free(&d);
}

/* Without any job: nothing run, status 0. */
static void test_run_none(void **state)
{
	(void)state;
	assert_int_equal(fanout_run(NULL, 0, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_labels_and_partial),
		cmocka_unit_test(test_split_reads),
		cmocka_unit_test(test_no_mixing),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_kept_apart),
		cmocka_unit_test(test_kept_utf8),
		cmocka_unit_test(test_kept_cap),
		cmocka_unit_test(test_kept_raw),
		cmocka_unit_test(test_run_kept),
		cmocka_unit_test(test_run),
		cmocka_unit_test(test_run_signal),
		cmocka_unit_test(test_run_signal_pipe_held),
		cmocka_unit_test(test_run_none),
		cmocka_unit_test(test_job_json),
		cmocka_unit_test(test_run_keeps_why),
		cmocka_unit_test(test_set_json),
		cmocka_unit_test(test_set_json_full),
		cmocka_unit_test(test_cluster_big_words),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

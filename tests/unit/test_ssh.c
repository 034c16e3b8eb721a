/*
 * Unit tests for ssh/: quoting, the ssh and rsync argv (checked through
 * rsync's splitter, the real rsync and the real ssh -G), the ssh-config
 * stanza, known_hosts, the banner probe.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ssh.h"
#include "testutil.h"

/* Ask a real /bin/sh to split the quoted words back: they must come out
 * exactly as they went in. */
static void test_quote_round_trip(void **state)
{
	static const char *const words[] = {
		"plain", "with space", "it's", "'", "\"dq\"", "$HOME", "*", "?",
		"a\nb", "\\", "`id`", "$(id)", "", "; rm -rf /", "tab\there",
	};
	struct buf script = BUF_INIT, out = BUF_INIT, want = BUF_INIT;

	(void)state;
	buf_adds(&script, "printf '%s\\0'");
	for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
		buf_adds(&script, " ");
		ssh_quote(words[i], &script);
		buf_add(&want, words[i], strlen(words[i]) + 1);
	}
	{
		const char *argv[] = { "sh", "-c", script.p, NULL };

		assert_int_equal(run_capture(argv, &out), 0);
	}
	assert_int_equal(out.len, want.len);
	assert_memory_equal(out.p, want.p, want.len);
	buf_free(&script);
	buf_free(&out);
	buf_free(&want);
}

static int has(const struct strvec *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->v[i], s))
			return 1;
	return 0;
}

static void test_argv(void **state)
{
	struct ssh_target t = { "debian", "127.0.0.1", 2222, "/k/id",
				"/k/known_hosts", "nook-x", "/r/ssh.sock", 600 };
	const char *cmd[] = { "echo", "a b", NULL };
	struct strvec v = STRVEC_INIT;

	(void)state;
	ssh_argv(&t, -1, NULL, cmd, &v);
	assert_string_equal(v.v[0], "ssh");
	assert_true(has(&v, "Port=2222"));
	assert_true(has(&v, "StrictHostKeyChecking=yes"));
	assert_true(has(&v, "HostKeyAlias=\"nook-x\""));
	assert_true(has(&v, "UserKnownHostsFile=\"/k/known_hosts\""));
	assert_true(has(&v, "ControlPath=\"/r/ssh.sock\""));
	assert_true(has(&v, "-T"));
	/* the command is one remote word string after "--" */
	assert_string_equal(v.v[v.n - 2], "--");
	assert_string_equal(v.v[v.n - 1], "'echo' 'a b'");
	assert_string_equal(v.v[v.n - 3], "127.0.0.1");
	strvec_clear(&v);

	t.control = NULL;
	ssh_argv(&t, 0, "/srv/my app", NULL, &v);
	assert_false(has(&v, "ControlMaster=auto"));
	assert_false(has(&v, "-T"));
	assert_string_equal(v.v[v.n - 1], "cd '/srv/my app' && exec \"$SHELL\" -l");
	strvec_clear(&v);

	/* a login shell in a directory is a remote command: it needs -tt */
	ssh_argv(&t, 1, "/srv", NULL, &v);
	assert_true(has(&v, "-tt"));
	assert_string_equal(v.v[v.n - 1], "cd '/srv' && exec \"$SHELL\" -l");
	strvec_clear(&v);

	/* cd takes DIR as typed: not as an option, not as OLDPWD; "~"
	 * is the home */
	{
		const char *dirs[][2] = {
			{ "-L", "cd './-L' && exec \"$SHELL\" -l" },
			{ "-", "cd './-' && exec \"$SHELL\" -l" },
			{ "~", "cd '.' && exec \"$SHELL\" -l" },
			{ "~/", "cd '.' && exec \"$SHELL\" -l" },
			{ "~/src/x", "cd 'src/x' && exec \"$SHELL\" -l" },
			{ "~//src", "cd 'src' && exec \"$SHELL\" -l" },
			{ "a~", "cd 'a~' && exec \"$SHELL\" -l" },
		};

		for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
			ssh_argv(&t, 0, dirs[i][0], NULL, &v);
			assert_string_equal(v.v[v.n - 1], dirs[i][1]);
			strvec_clear(&v);
		}
	}

	ssh_argv(&t, 0, NULL, NULL, &v); /* interactive: ends at the host */
	assert_string_equal(v.v[v.n - 1], "127.0.0.1");
	strvec_clear(&v);

	ssh_master_exit_argv("/r/it's a/ssh.sock", &v);
	assert_true(has(&v, "ControlPath=\"/r/it's a/ssh.sock\""));
	assert_string_equal(v.v[v.n - 2], "exit");
	strvec_clear(&v);
}

/*
 * One word holding a blank is a shell line: the user's shell ($SHELL -c)
 * runs it whole, after a --workdir's cd (a real /bin/sh here, as sshd
 * runs the remote string); one that starts with '-' is no option.
 */
static void test_shell_line(void **state)
{
	struct ssh_target t = { "debian", "127.0.0.1", 2222, "/k/id",
				"/k/known_hosts", "nook-x", NULL, 600 };
	const char *line[] = { "cd / && pwd; echo \"$NOOK_T\" | tr a-z A-Z",
			       NULL };
	const char *failing[] = { "false || echo ran", NULL };
	const char *dash[] = { "-n nook", NULL };
	const char *words[][3] = { { "echo", "a b", NULL },
				   { "a\tb", "c", NULL },
				   { "echo$PWD", NULL, NULL },
				   { "", NULL, NULL } };
	const char *lines[][2] = { { "a b", NULL }, { "a\tb", NULL },
				   { "a\nb", NULL }, { " ", NULL } };
	struct strvec v = STRVEC_INIT;
	struct buf out = BUF_INIT;

	(void)state;
	assert_int_equal(setenv("SHELL", "/bin/sh", 1), 0);
	assert_int_equal(setenv("NOOK_T", "nook-sh", 1), 0);
	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		assert_false(ssh_is_line(words[i]));
	for (size_t i = 0; i < ARRAY_SIZE(lines); i++)
		assert_true(ssh_is_line(lines[i]));

	ssh_argv(&t, -1, NULL, line, &v);
	assert_string_equal(v.v[v.n - 1], "exec \"$SHELL\" -c -- 'cd / && pwd; "
			    "echo \"$NOOK_T\" | tr a-z A-Z'");
	strvec_clear(&v);
	ssh_argv(&t, -1, "/tmp", line, &v);
	assert_string_equal(v.v[v.n - 1], "cd '/tmp' && exec \"$SHELL\" -c -- "
			    "'cd / && pwd; echo \"$NOOK_T\" | tr a-z A-Z'");
	{
		const char *sh[] = { "sh", "-c", v.v[v.n - 1], NULL };

		assert_int_equal(run_capture(sh, &out), 0);
		assert_string_equal(out.p, "/\nNOOK-SH\n");
	}
	strvec_clear(&v);
	buf_free(&out);

	/* where cd fails, none of the line runs */
	ssh_argv(&t, -1, "/nonexistent/nook", failing, &v);
	{
		const char *sh[] = { "sh", "-c", v.v[v.n - 1], NULL };

		assert_int_not_equal(run_capture(sh, &out), 0);
		assert_null(strstr(out.p ? out.p : "", "ran"));
	}
	strvec_clear(&v);
	buf_free(&out);

	ssh_argv(&t, -1, NULL, dash, &v);
	{
		const char *sh[] = { "sh", "-c", v.v[v.n - 1], NULL };

		assert_int_equal(run_capture(sh, &out), 127);
	}
	strvec_clear(&v);
	buf_free(&out);

	t.tag = "0123abcd";
	ssh_argv(&t, -1, NULL, failing, &v);
	assert_string_equal(v.v[v.n - 1], "export NOOK_SHELL='0123abcd'; "
			    "exec \"$SHELL\" -c -- 'false || echo ran'");
	strvec_clear(&v);
}

/* sh -c remote as sshd runs a session's command: in a session of its own. */
static pid_t start_remote(const char *remote)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		setsid();
		execl("/bin/sh", "sh", "-c", remote, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* 1 when a child of pid runs with the tag in its environment. */
static int has_tagged_child(pid_t pid)
{
	struct buf b = BUF_INIT;
	char path[64];
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid,
		 (int)pid);
	if (read_file_quiet(path, &b) == 0 && b.len) {
		snprintf(path, sizeof(path), "/proc/%ld/environ",
			 strtol(b.p, NULL, 10));
		buf_free(&b);
		if (read_file_quiet(path, &b) == 0)
			found = memmem(b.p, b.len, "NOOK_SHELL=0123abcd", 19) != NULL;
	}
	buf_free(&b);
	return found;
}

/*
 * A tagged command and the hang-up for it, run by a real /bin/sh here as
 * the guest's would: the tagged command (and what it started) dies of
 * SIGHUP, another tag's command does not. cmd's remote string is want.
 */
static void hangup_case(const char *const *cmd, const char *want)
{
	struct ssh_target t = { "debian", "127.0.0.1", 2222, "/k/id",
				"/k/known_hosts", "nook-x", "/r/ssh.sock", 600,
				"0123abcd" };
	struct strvec v = STRVEC_INIT, other = STRVEC_INIT;
	struct buf out = BUF_INIT;
	pid_t tagged, untagged;
	int st;

	ssh_argv(&t, -1, "/", cmd, &v);
	assert_string_equal(v.v[v.n - 1], want);
	tagged = start_remote(v.v[v.n - 1]);
	t.tag = "0123abce";
	ssh_argv(&t, -1, NULL, cmd, &other);
	untagged = start_remote(other.v[other.n - 1]);
	strvec_clear(&v);
	t.tag = "0123abcd";
	/* until the tagged shell has exec'd and its sleep started */
	for (int i = 0; i < 500 && !has_tagged_child(tagged); i++)
		usleep(10000);
	ssh_hangup_argv(&t, &v);
	assert_true(has(&v, "-T"));
	{
		const char *sh[] = { "sh", "-c", v.v[v.n - 1], NULL };

		assert_int_equal(run_capture(sh, &out), 0);
	}
	assert_int_equal(waitpid(tagged, &st, 0), tagged);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGHUP);
	assert_int_equal(waitpid(untagged, &st, WNOHANG), 0);
	kill(-untagged, SIGTERM);
	assert_int_equal(waitpid(untagged, &st, 0), untagged);
	strvec_clear(&v);
	strvec_clear(&other);
	buf_free(&out);
}

/* The command's words, and a shell line: the shell that runs the line is
 * tagged too, so the rest of the line (exit 3) never runs. */
static void test_hangup(void **state)
{
	const char *cmd[] = { "sh", "-c", "sleep 30; exit 3", NULL };
	const char *line[] = { "sleep 30; exit 3", NULL };

	(void)state;
	assert_int_equal(setenv("SHELL", "/bin/sh", 1), 0);
	hangup_case(cmd, "export NOOK_SHELL='0123abcd'; "
		    "cd '/' && exec 'sh' '-c' 'sleep 30; exit 3'");
	hangup_case(line, "export NOOK_SHELL='0123abcd'; "
		    "cd '/' && exec \"$SHELL\" -c -- 'sleep 30; exit 3'");
}

/*
 * rsync's own splitter for -e, as main.c do_cmd() has it (rsync 3.x):
 * words end at spaces; ' and " quote; inside, the quote doubled is one
 * quote character; no backslash escapes. -1 on an unclosed quote, which
 * rsync refuses with "Missing trailing-' in remote-shell command".
 */
static int rsync_split(const char *cmd, struct strvec *out)
{
	char *copy = xstrdup(cmd), *t, *f, in_quote = '\0';

	for (t = f = copy; *f; f++) {
		char *arg;

		if (*f == ' ')
			continue;
		arg = t;
		while (*f != ' ' || in_quote) {
			if (!*f) {
				if (in_quote) {
					free(copy);
					return -1;
				}
				f--;
				break;
			}
			if (*f == '\'' || *f == '"') {
				if (!in_quote) {
					in_quote = *f++;
					continue;
				}
				if (*f == in_quote && *++f != in_quote) {
					in_quote = '\0';
					continue;
				}
			}
			*t++ = *f++;
		}
		*t++ = '\0';
		strvec_push(out, arg);
	}
	free(copy);
	return 0;
}

/* The splitter itself, against what rsync 3.x was seen to do. */
static void test_rsync_split(void **state)
{
	struct strvec v = STRVEC_INIT;

	(void)state;
	assert_int_equal(rsync_split("a  'b c' 'it''s' \"x\"\"y\" 'q\"q' "
				     "a\\b '' z'w'\"v\"", &v), 0);
	assert_int_equal(v.n, 8);
	assert_string_equal(v.v[0], "a");
	assert_string_equal(v.v[1], "b c");
	assert_string_equal(v.v[2], "it's");
	assert_string_equal(v.v[3], "x\"y");
	assert_string_equal(v.v[4], "q\"q");
	assert_string_equal(v.v[5], "a\\b");
	assert_string_equal(v.v[6], "");
	assert_string_equal(v.v[7], "zwv");
	strvec_clear(&v);
	/* the shell's '\'' idiom, as nook used to quote: rsync refuses it */
	assert_int_equal(rsync_split("ssh -o 'a=it'\\''s'", &v), -1);
	strvec_clear(&v);
}

/* A target whose every path has a quote, a space and worse in it. */
#define ODD "/tmp/it's a \"dir\" 100%\\"
static const struct ssh_target odd = {
	"debian", "127.0.0.1", 2222, ODD "/id key", ODD "/known hosts",
	"nook-it's", ODD "/ssh sock", 600
};

/* The value ssh -G prints for key in out ("key value\n" lines). */
static char *g_value(const char *out, const char *key)
{
	size_t n = strlen(key);
	const char *l = out;

	while (*l) {
		size_t len = strcspn(l, "\n");

		if (len > n && !strncmp(l, key, n) && l[n] == ' ')
			return xstrndup(l + n + 1, len - n - 1);
		l += len + (l[len] != '\0');
	}
	return xstrdup("(none)");
}

static void assert_g(const char *out, const char *key, const char *want)
{
	char *got = g_value(out, key);

	assert_string_equal(got, want);
	free(got);
}

/*
 * Ask the real ssh what words (an ssh argv up to the host) configure for
 * host: the odd target's values, exactly.
 */
static void check_with_ssh_g(const struct strvec *words, const char *host,
			     const char *alias)
{
	struct strvec argv = STRVEC_INIT;
	struct buf out = BUF_INIT;

	for (size_t i = 0; i < words->n; i++)
		strvec_push(&argv, words->v[i]);
	strvec_push(&argv, "-G");
	strvec_push(&argv, host);
	assert_int_equal(run_capture((const char *const *)argv.v, &out), 0);
	assert_g(out.p, "hostname", "127.0.0.1");
	assert_g(out.p, "user", "debian");
	assert_g(out.p, "port", "2222");
	/* -G shows IdentityFile before %-expansion, the others after */
	assert_g(out.p, "identityfile", "/tmp/it's a \"dir\" 100%%\\/id key");
	assert_g(out.p, "userknownhostsfile", ODD "/known hosts");
	assert_g(out.p, "controlpath", ODD "/ssh sock");
	assert_g(out.p, "hostkeyalias", alias);
	assert_g(out.p, "stricthostkeychecking", "true");
	strvec_clear(&argv);
	buf_free(&out);
}

static void test_ssh_argv_odd_paths(void **state)
{
	struct strvec v = STRVEC_INIT;

	(void)state;
	ssh_argv(&odd, 0, NULL, NULL, &v);
	free(v.v[--v.n]); /* the host */
	v.v[v.n] = NULL;
	check_with_ssh_g(&v, "127.0.0.1", "nook-it's");
	strvec_clear(&v);
}

static const char *find_e(const struct strvec *v)
{
	for (size_t i = 0; i + 1 < v->n; i++)
		if (!strcmp(v->v[i], "-e"))
			return v->v[i + 1];
	fail_msg("no -e in the rsync argv");
	return NULL;
}

static void test_known_hosts(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	ssh_known_hosts_line("nook-x", "ssh-ed25519 AAAAC3Nz nook-x\n", &b);
	assert_string_equal(b.p, "nook-x ssh-ed25519 AAAAC3Nz\n");
	buf_free(&b);
}

static void count_tick(void *arg)
{
	++*(int *)arg;
}

static void test_banner(void **state)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	pid_t child;
	int lfd, port, ticks = 0;

	(void)state;
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	getsockname(lfd, (struct sockaddr *)&sa, &len);
	port = ntohs(sa.sin_port);
	/* accepted but silent (what slirp does before sshd runs): not ready */
	assert_int_equal(ssh_banner("127.0.0.1", port, 200), 0);
	/* ... and a progress line's clock ticks on meanwhile */
	assert_int_equal(ssh_banner_ticking("127.0.0.1", port, 700, count_tick,
					    &ticks), 0);
	assert_true(ticks >= 2);
	/* a listener that speaks SSH */
	child = fork();
	if (child == 0) {
		/* the first connections in the backlog are the silent probes' */
		for (int i = 0; i < 3; i++) {
			int c = accept(lfd, NULL, NULL);

			(void)!write(c, "SSH-2.0-test\r\n", 14);
		}
		sleep(1);
		_exit(0);
	}
	assert_int_equal(ssh_banner("127.0.0.1", port, 3000), 1);
	close(lfd);
	waitpid(child, NULL, 0); /* its copy of the listener is gone too */
	/* nothing listening: refused, at once */
	assert_int_equal(ssh_banner("127.0.0.1", port, 200), -1);
	/* accepted, then closed without a word: -1 too */
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_port = 0;
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	len = sizeof(sa);
	getsockname(lfd, (struct sockaddr *)&sa, &len);
	child = fork();
	if (child == 0) {
		close(accept(lfd, NULL, NULL));
		_exit(0);
	}
	assert_int_equal(ssh_banner("127.0.0.1", ntohs(sa.sin_port), 3000),
			 -1);
	close(lfd);
	waitpid(child, NULL, 0);
}

/* ssh_argv()'s words before the host: what rsync's -e must come to. */
static void ssh_words(const struct ssh_target *t, struct strvec *v)
{
	ssh_argv(t, 0, NULL, NULL, v);
	free(v->v[--v->n]);
	v->v[v->n] = NULL;
}

static void assert_same(const struct strvec *a, const struct strvec *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		assert_string_equal(a->v[i], b->v[i]);
}

static void test_rsync_argv(void **state)
{
	static const char *const ex[] = { "a b", NULL };
	struct ssh_rsync_opts o = { ex, NULL, 1, 1, 0, 0 };
	struct strvec v = STRVEC_INIT, words = STRVEC_INIT, want = STRVEC_INIT;

	(void)state;
	ssh_rsync_argv(&odd, &o, ODD "/src it's", "dest it's/y z", &v);
	/* -e, split as rsync splits it, is ssh's argv word for word ... */
	assert_int_equal(rsync_split(find_e(&v), &words), 0);
	ssh_words(&odd, &want);
	assert_same(&words, &want);
	/* ... and those words give ssh exactly the target's values */
	check_with_ssh_g(&words, "127.0.0.1", "nook-it's");
	assert_true(has(&v, "--protect-args"));
	assert_true(has(&v, "--delete"));
	assert_true(has(&v, "--exclude=a b"));
	assert_string_equal(v.v[v.n - 2], ODD "/src it's/");
	assert_string_equal(v.v[v.n - 1], "127.0.0.1:dest it's/y z");
	strvec_clear(&v);
	/* no shell sees DEST any more: "~/" is done here */
	ssh_rsync_argv(&odd, &o, "/s", "~/x y", &v);
	assert_string_equal(v.v[v.n - 1], "127.0.0.1:x y");
	strvec_clear(&v);
	ssh_rsync_argv(&odd, &o, "/s", "~", &v);
	assert_string_equal(v.v[v.n - 1], "127.0.0.1:.");
	strvec_clear(&v);
	/* "HOST::X" would be an rsync daemon's module X */
	ssh_rsync_argv(&odd, &o, "/s", ":x", &v);
	assert_string_equal(v.v[v.n - 1], "127.0.0.1:./:x");
	strvec_clear(&v);
	ssh_rsync_argv(&odd, &o, "/s", "~/:x", &v);
	assert_string_equal(v.v[v.n - 1], "127.0.0.1:./:x");
	strvec_clear(&v);
	strvec_clear(&words);
	strvec_clear(&want);
}

/* Write len bytes of data to path, or fail the test. */
static void put_file(const char *path, const char *data, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, data, strlen(data)), 0);
	assert_int_equal(close(fd), 0);
}

static void rm_rf(const char *dir)
{
	const char *argv[] = { "rm", "-rf", dir, NULL };
	struct buf out = BUF_INIT;

	run_capture(argv, &out);
	buf_free(&out);
}

/*
 * The real host rsync, with a fake ssh first on PATH that writes down the
 * argv rsync gave it: ssh's words, the host, rsync's server command, and
 * no DEST (it goes in the protocol with --protect-args).
 */
static void test_rsync_real(void **state)
{
	struct ssh_rsync_opts o = { NULL, NULL, 0, 0, 0, 0 };
	struct strvec v = STRVEC_INIT, want = STRVEC_INIT, got = STRVEC_INIT;
	struct buf out = BUF_INIT, rec = BUF_INIT;
	char *dir = make_tmpdir(), *old = xstrdup(getenv("PATH"));
	char *fake = xasprintf("%s/ssh", dir), *log = xasprintf("%s/argv", dir);
	char *path = xasprintf("%s:%s", dir, old);
	char *script = xasprintf("#!/bin/sh\nfor a; do printf '%%s\\0' \"$a\"; "
				 "done >'%s'\nexit 3\n", log);

	(void)state;
	put_file(fake, script, 0755);
	ssh_rsync_argv(&odd, &o, dir, "dest it's/y z", &v);
	setenv("PATH", path, 1);
	assert_int_not_equal(run_capture((const char *const *)v.v, &out), 0);
	setenv("PATH", old, 1);
	assert_int_equal(read_file(log, &rec), 0);
	strvec_push(&got, "ssh"); /* it ran: PATH found the fake */
	for (size_t i = 0; i < rec.len; i += strlen(rec.p + i) + 1)
		strvec_push(&got, rec.p + i);
	ssh_words(&odd, &want);
	assert_true(got.n > want.n + 2);
	for (size_t i = 0; i < want.n; i++)
		assert_string_equal(got.v[i], want.v[i]);
	assert_string_equal(got.v[want.n], "127.0.0.1");
	assert_string_equal(got.v[want.n + 1], "rsync");
	for (size_t i = want.n; i < got.n; i++)
		assert_null(strstr(got.v[i], "dest"));
	rm_rf(dir);
	strvec_clear(&v);
	strvec_clear(&want);
	strvec_clear(&got);
	buf_free(&out);
	buf_free(&rec);
	free(dir), free(old), free(fake), free(log), free(path), free(script);
}

/* The stanza, read back by the real ssh -G -F; values that cannot be
 * written are refused, never written. */
static void test_config_stanza(void **state)
{
	struct ssh_target t = odd;
	struct strvec argv = STRVEC_INIT;
	struct buf b = BUF_INIT;
	char *dir = make_tmpdir(), *cfg = xasprintf("%s/config", dir), *err;

	(void)state;
	t.alias = "nook-odd";
	assert_int_equal(ssh_config_stanza(&t, &b), 0);
	put_file(cfg, b.p, 0600);
	strvec_push(&argv, "ssh");
	strvec_push(&argv, "-F");
	strvec_push(&argv, cfg);
	check_with_ssh_g(&argv, "nook-odd", "nook-odd");
	assert_null(strstr(b.p, "BatchMode"));
	buf_free(&b);

	/* a line break would start a line of its own: ProxyCommand... */
	t.user = "debian\nProxyCommand touch /tmp/pwned";
	stderr_begin();
	assert_int_equal(ssh_config_stanza(&t, &b), -1);
	err = stderr_end();
	assert_non_null(strstr(err, "line break"));
	assert_int_equal(b.len, 0);
	free(err);
	t.user = "debian";
	t.identity = "/x\r/id";
	t.control = "/x/${HOME}/s";
	stderr_begin();
	assert_int_equal(ssh_config_stanza(&t, &b), -1);
	t.identity = "/x/id";
	assert_int_equal(ssh_config_stanza(&t, &b), -1);
	t.control = "/x/s";
	t.alias = "nook x";
	assert_int_equal(ssh_config_stanza(&t, &b), -1);
	free(stderr_end());
	assert_int_equal(b.len, 0);
	rm_rf(dir);
	strvec_clear(&argv);
	free(dir);
	free(cfg);
}

static void test_path_holds(void **state)
{
	static const struct { const char *dest; int holds; } cases[] = {
		{ "", 1 }, { ".", 1 }, { "./", 1 }, { "~", 1 }, { "~/", 1 },
		{ "~//.", 1 }, { "/", 1 }, { "//", 1 }, { "/home", 1 },
		{ "/home/debian", 1 }, { "/home/debian/", 1 },
		{ "/home/./debian/.", 1 }, { "..", 1 }, { "x/..", 1 },
		{ "../debian", 1 }, { "../../..", 1 }, { "/..", 1 },
		{ "x", 0 }, { "~/x", 0 }, { "/home/debian/x", 0 },
		{ "/home/debianx", 0 }, { "/srv", 0 }, { "../other", 0 },
		{ "/home/other", 0 }, { "~other", 0 }, { "x/../y", 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		if (ssh_path_holds(cases[i].dest, "/home/debian") !=
		    cases[i].holds)
			fail_msg("ssh_path_holds(\"%s\") should be %d",
				 cases[i].dest, cases[i].holds);
	}
	assert_int_equal(ssh_path_holds("/", "/root"), 1);
	assert_int_equal(ssh_path_holds("/root/x", "/root"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote_round_trip),
		cmocka_unit_test(test_argv),
		cmocka_unit_test(test_shell_line),
		cmocka_unit_test(test_hangup),
		cmocka_unit_test(test_rsync_split),
		cmocka_unit_test(test_ssh_argv_odd_paths),
		cmocka_unit_test(test_rsync_argv),
		cmocka_unit_test(test_rsync_real),
		cmocka_unit_test(test_config_stanza),
		cmocka_unit_test(test_path_holds),
		cmocka_unit_test(test_known_hosts),
		cmocka_unit_test(test_banner),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

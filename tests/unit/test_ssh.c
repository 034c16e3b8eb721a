/* Unit tests for ssh/: quoting, the argv, known_hosts, the banner probe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

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
	assert_true(has(&v, "HostKeyAlias=nook-x"));
	assert_true(has(&v, "UserKnownHostsFile=/k/known_hosts"));
	assert_true(has(&v, "ControlPath=/r/ssh.sock"));
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

	ssh_argv(&t, 0, NULL, NULL, &v); /* interactive: ends at the host */
	assert_string_equal(v.v[v.n - 1], "127.0.0.1");
	strvec_clear(&v);
}

static void test_known_hosts(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	ssh_known_hosts_line("nook-x", "ssh-ed25519 AAAAC3Nz nook-x\n", &b);
	assert_string_equal(b.p, "nook-x ssh-ed25519 AAAAC3Nz\n");
	buf_free(&b);
}

static void test_banner(void **state)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int lfd, port;

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
	/* a listener that speaks SSH */
	if (fork() == 0) {
		/* the first connection in the backlog is the silent probe's */
		for (int i = 0; i < 2; i++) {
			int c = accept(lfd, NULL, NULL);

			(void)!write(c, "SSH-2.0-test\r\n", 14);
		}
		sleep(1);
		_exit(0);
	}
	assert_int_equal(ssh_banner("127.0.0.1", port, 3000), 1);
	close(lfd);
	/* nothing listening */
	assert_int_equal(ssh_banner("127.0.0.1", port, 200), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote_round_trip),
		cmocka_unit_test(test_argv),
		cmocka_unit_test(test_known_hosts),
		cmocka_unit_test(test_banner),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

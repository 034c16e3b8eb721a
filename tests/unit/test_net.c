/* Unit tests for net/: port specs, free ports, stable MACs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "net.h"
#include "testutil.h"

static void test_port_parse_good(void **state)
{
	static const struct {
		const char *spec, *canon, *hostfwd;
	} cases[] = {
		{ "8080:80", "127.0.0.1:8080:80/tcp", "hostfwd=tcp:127.0.0.1:8080-:80" },
		{ "0:80", "127.0.0.1:0:80/tcp", "hostfwd=tcp:127.0.0.1:0-:80" },
		{ "5353:53/udp", "127.0.0.1:5353:53/udp", "hostfwd=udp:127.0.0.1:5353-:53" },
		{ "127.0.0.2:1:65535/tcp", "127.0.0.2:1:65535/tcp", "hostfwd=tcp:127.0.0.2:1-:65535" },
		{ "0.0.0.0:8080:80", "0.0.0.0:8080:80/tcp", "hostfwd=tcp:0.0.0.0:8080-:80" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct net_port p;
		struct buf b = BUF_INIT, h = BUF_INIT;

		assert_int_equal(net_port_parse(cases[i].spec, &p), 0);
		net_port_format(&p, &b);
		net_port_hostfwd(&p, &h);
		assert_string_equal(b.p, cases[i].canon);
		assert_string_equal(h.p, cases[i].hostfwd);
		buf_free(&b);
		buf_free(&h);
	}
}

static void test_port_parse_bad(void **state)
{
	static const char *const bad[] = {
		"", "80", ":80", "8080:", "8080:0", "65536:80", "80:65536",
		"-1:80", "x:80", "80:x", "8080:80/sctp", "8080:80/", "a.b.c.d:1:2",
		"1.2.3:1:2", ":1:2", "1:2:3:4", "8080 :80", "99999999999:80",
		"8080:80/tcp/udp",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct net_port p;
		char *err;

		stderr_begin();
		assert_int_equal(net_port_parse(bad[i], &p), -1);
		err = stderr_end();
		/* the message names the spec the user typed */
		assert_non_null(strstr(err, "bad port spec"));
		free(err);
	}
}

static void test_port_free_and_in_use(void **state)
{
	struct sockaddr_in sa;
	int port, fd;
	char *err;

	(void)state;
	assert_int_equal(net_port_free("127.0.0.1", 0, &port), 0);
	assert_true(port > 0 && port < 65536);
	assert_int_equal(net_port_check("127.0.0.1", port, 0), 0);
	/* hold it: now it must be reported as in use */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	stderr_begin();
	assert_int_equal(net_port_check("127.0.0.1", port, 0), -1);
	err = stderr_end();
	assert_non_null(strstr(err, "already in use"));
	free(err);
	close(fd);
}

static void test_mac(void **state)
{
	char a[18], b[18], c[18], d[18], e[18];
	unsigned first;

	(void)state;
	net_mac("", "default", 0, a);
	net_mac("", "default", 0, b);
	net_mac("", "default", 1, c);
	net_mac("", "other", 0, d);
	net_mac("team", "default", 0, e);
	assert_string_equal(a, b); /* stable */
	assert_string_not_equal(a, c);
	assert_string_not_equal(a, d);
	assert_string_not_equal(a, e);
	assert_int_equal(strlen(a), 17);
	assert_int_equal(sscanf(a, "%x:", &first), 1);
	assert_true(first & 0x02);   /* locally administered */
	assert_false(first & 0x01);  /* unicast */
}

/* The addresses earlier nooks gave: a VM keeps its MAC across versions. */
static void test_mac_stable(void **state)
{
	char mac[18], ns[151];

	(void)state;
	memset(ns, 'n', sizeof(ns) - 1);
	ns[sizeof(ns) - 1] = '\0';
	net_mac("", "default", 0, mac);
	assert_string_equal(mac, "02:6e:b4:dc:0a:af");
	net_mac("team", "web", 1, mac);
	assert_string_equal(mac, "02:6e:9e:d5:87:d4");
	net_mac("", "abcdefghijklmnopqrstuvwxyz012345", 0, mac);
	assert_string_equal(mac, "02:6e:46:77:3e:97");
	net_mac(ns, "x", 0, mac); /* a key past 127 bytes */
	assert_string_equal(mac, "02:6e:3b:79:f4:93");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_port_parse_good),
		cmocka_unit_test(test_port_parse_bad),
		cmocka_unit_test(test_port_free_and_in_use),
		cmocka_unit_test(test_mac),
		cmocka_unit_test(test_mac_stable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for net/: port specs, free ports, stable MACs, a cluster's
 * address plan and network-config, and its switch (the real process,
 * with guest-less QEMUs, vde_plug and raw plugs as its nodes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <yaml.h>

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
	/* an IPv6 address is said to be one, not "'[' is not an IPv4" */
	{
		struct net_port p;
		char *err;

		stderr_begin();
		assert_int_equal(net_port_parse("[::1]:8082:80", &p), -1);
		err = stderr_end();
		assert_non_null(strstr(err, "IPv6 addresses are not taken"));
		free(err);
	}
}

/* The checks of test_port_pick_avoids(), in a network namespace of the
 * child's own whose kernel picks ports from two, 40000 and 40001: the
 * number of the first that failed, or 0. */
static int pick_in_two_ports(void)
{
	struct net_port p = { .addr = "127.0.0.2" };
	struct net_port avoid[] = {
		{ .addr = "127.0.0.1", .host = 40001 },
		{ .addr = "127.0.0.1", .host = 40000, .udp = 1 },
		{ .addr = "127.0.0.1", .host = 40000 },
	};
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	int range = open("/proc/sys/net/ipv4/ip_local_port_range", O_WRONLY);
	char *err;

	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return 1;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0 || range < 0 ||
	    write(range, "40000 40001\n", 12) != 12)
		return 2;
	/* the kernel likes odd ports: 40001 every time, while it is free */
	if (net_port_pick(&p, NULL, 0) < 0 || p.host != 40001)
		return 3;
	/* taken (on another address), so the other */
	if (net_port_pick(&p, avoid, 1) < 0 || p.host != 40000)
		return 4;
	/* a udp port does not take a tcp one */
	if (net_port_pick(&p, avoid, 2) < 0 || p.host != 40000)
		return 5;
	stderr_begin();
	p.host = 0;
	if (net_port_pick(&p, avoid, 3) != -1 || p.host)
		return 6;
	err = stderr_end();
	if (!strstr(err, "cannot find a free tcp port on 127.0.0.2"))
		return 7;
	free(err);
	return 0;
}

/* A pick on one address that is a port the VM forwards on another is
 * picked again (a CI failure of 'nook port add VM 127.0.0.2:0:8001'). */
static void test_port_pick_avoids(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	/* a network namespace of one's own: root's, or in a user namespace
	 * of one's own, whose root may set its port range */
	if (pid == 0)
		_exit(unshare(geteuid() ? CLONE_NEWUSER | CLONE_NEWNET :
				  CLONE_NEWNET) < 0 ? 100 :
		      pick_in_two_ports());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 100)
		skip(); /* no namespaces here (a container that forbids them) */
	if (geteuid() != 0 && (WEXITSTATUS(status) == 1 ||
			       WEXITSTATUS(status) == 2))
		skip(); /* a user namespace without the right to set it up */
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_port_free_and_in_use(void **state)
{
	struct sockaddr_in sa;
	int port, fd;
	char *err;

	(void)state;
	struct net_port p = { .addr = "127.0.0.1" };

	assert_int_equal(net_port_pick(&p, NULL, 0), 0);
	port = p.host;
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

/* A port held here, and a real QEMU asked to forward it: its own words
 * name the forward it could not set up, and nook reads them back. */
static void test_hostfwd_refused(void **state)
{
	struct net_port held = { .addr = "127.0.0.1" }, got;
	struct buf fwd = BUF_INIT, nd = BUF_INIT, out = BUF_INIT;
	struct sockaddr_in sa;
	const char *argv[] = { "qemu-system-x86_64", "-M", "none",
			       "-nodefaults", "-display", "none", "-netdev",
			       NULL, NULL };
	int fd;

	(void)state;
	assert_int_equal(net_port_pick(&held, NULL, 0), 0);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)held.host);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	held.guest = 22;
	net_port_hostfwd(&held, &fwd);
	buf_addf(&nd, "user,id=n0,%s", fwd.p);
	argv[7] = nd.p;
	assert_int_not_equal(run_capture(argv, &out), 0);
	if (net_hostfwd_refused(out.p, &got) != 1)
		fail_msg("not read as a refused forward: %s", out.p);
	assert_int_equal(got.host, held.host);
	assert_int_equal(got.udp, 0);
	assert_string_equal(got.addr, "127.0.0.1");
	close(fd);

	/* udp, and what is not that message */
	assert_int_equal(net_hostfwd_refused("qemu: -netdev x: Could not set up "
					     "host forwarding rule 'udp:127.0.0.2"
					     ":5353-:53'", &got), 1);
	assert_true(got.udp && got.host == 5353);
	assert_string_equal(got.addr, "127.0.0.2");
	assert_int_equal(net_hostfwd_refused(NULL, &got), 0);
	assert_int_equal(net_hostfwd_refused("Could not open disk", &got), 0);
	assert_int_equal(net_hostfwd_refused("Could not set up host forwarding "
					     "rule 'sctp:1.2.3.4:5-:6'", &got), 0);
	assert_int_equal(net_hostfwd_refused("Could not set up host forwarding "
					     "rule 'tcp::2222-:22'", &got), 0);
	assert_int_equal(net_hostfwd_refused("Could not set up host forwarding "
					     "rule 'tcp:127.0.0.1:99999-:22'", &got), 0);
	buf_free(&fwd);
	buf_free(&nd);
	buf_free(&out);
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

/* --- the address plan --- */

static void test_subnet_parse_good(void **state)
{
	static const struct {
		const char *in, *cidr;
		uint32_t net;
		int prefix;
	} cases[] = {
		{ NET_SUBNET_DEFAULT, "10.77.0.0/24", 0x0a4d0000, 24 },
		{ "172.16.0.0/16", "172.16.0.0/16", 0xac100000, 16 },
		{ "192.168.100.8/29", "192.168.100.8/29", 0xc0a86408, 29 },
		{ "10.0.3.0/24", "10.0.3.0/24", 0x0a000300, 24 },
		{ "10.0.0.0/23", "10.0.0.0/23", 0x0a000000, 23 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct net_subnet sn;

		assert_int_equal(net_subnet_parse(cases[i].in, &sn), 0);
		assert_string_equal(sn.cidr, cases[i].cidr);
		assert_int_equal(sn.net, cases[i].net);
		assert_int_equal(sn.prefix, cases[i].prefix);
	}
}

static void test_subnet_parse_bad(void **state)
{
	static const struct {
		const char *in, *why;
	} bad[] = {
		{ "10.0.0.0/16", "slirp" },
		{ "10.0.2.0/24", "slirp" },
		{ "10.0.2.128/25", "slirp" },
		{ "10.0.0.0/22", "slirp" },
		{ "127.0.0.0/16", "loopback" },
		{ "127.255.255.248/29", "loopback" },
		{ "169.254.0.0/16", "link-local" },
		{ "224.1.0.0/16", "multicast" },
		{ "0.0.0.0/16", "this network" },
		{ "10.77.0.1/24", "did you mean 10.77.0.0/24?" },
		{ "10.77.0.0/15", "16 to 29" },
		{ "10.77.0.0/30", "16 to 29" },
		{ "10.77.0.0/8", "16 to 29" },
		{ "10.77.0.0", "A.B.C.D/PREFIX" },
		{ "10.77.0/24", "A.B.C.D/PREFIX" },
		{ "10.77.0.0/2x", "A.B.C.D/PREFIX" },
		{ "10.77.0.0/", "A.B.C.D/PREFIX" },
		{ "10.77.0.0/024", "A.B.C.D/PREFIX" },
		{ "/24", "A.B.C.D/PREFIX" },
		{ "", "A.B.C.D/PREFIX" },
		{ "fd00::/64", "A.B.C.D/PREFIX" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct net_subnet sn;
		char *err;

		stderr_begin();
		assert_int_equal(net_subnet_parse(bad[i].in, &sn), -1);
		err = stderr_end();
		if (!strstr(err, bad[i].why) || !strstr(err, bad[i].in))
			fail_msg("'%s': wanted '%s' in: %s", bad[i].in,
				 bad[i].why, err);
		free(err);
	}
}

static void test_node_address(void **state)
{
	struct net_subnet sn;
	char a[INET_ADDRSTRLEN];
	char *err;

	(void)state;
	assert_int_equal(net_subnet_parse(NET_SUBNET_DEFAULT, &sn), 0);
	assert_int_equal(net_node_address(&sn, 1, a), 0);
	assert_string_equal(a, "10.77.0.1");
	assert_int_equal(net_node_address(&sn, 254, a), 0);
	assert_string_equal(a, "10.77.0.254");
	stderr_begin();
	assert_int_equal(net_node_address(&sn, 255, a), -1);
	assert_int_equal(net_node_address(&sn, 0, a), -1);
	err = stderr_end();
	assert_non_null(strstr(err, "node 255 does not fit in subnet "
				    "10.77.0.0/24: it has room for nodes 1 "
				    "to 254"));
	assert_non_null(strstr(err, "node 0 "));
	free(err);
	assert_int_equal(net_subnet_parse("192.168.100.8/29", &sn), 0);
	assert_int_equal(net_node_address(&sn, 6, a), 0);
	assert_string_equal(a, "192.168.100.14");
	stderr_begin();
	assert_int_equal(net_node_address(&sn, 7, a), -1);
	free(stderr_end());
	assert_int_equal(net_subnet_parse("172.16.0.0/16", &sn), 0);
	assert_int_equal(net_node_address(&sn, 300, a), 0);
	assert_string_equal(a, "172.16.1.44");
	assert_int_equal(net_node_address(&sn, 65534, a), 0);
	assert_string_equal(a, "172.16.255.254");
}

static void test_node_mac(void **state)
{
	char a[18], b[18], up[18], name[32];
	unsigned o[6];

	(void)state;
	net_node_mac("dev", 2, a);
	net_node_mac("dev", 2, b);
	assert_string_equal(a, b);
	/* pinned: a node keeps its MAC across nook versions */
	assert_string_equal(a, "06:6e:b8:01:00:02");
	net_node_mac("dev", 300, a);
	assert_string_equal(a, "06:6e:b8:01:01:2c");
	net_node_mac("other", 2, b);
	assert_string_not_equal(a, b);
	for (int i = 1; i <= 300; i++) {
		net_node_mac("dev", i, a);
		assert_int_equal(strlen(a), 17);
		assert_int_equal(sscanf(a, "%2x:%2x:%2x:%2x:%2x:%2x", &o[0],
					&o[1], &o[2], &o[3], &o[4], &o[5]), 6);
		assert_true(o[0] & 0x02);  /* locally administered */
		assert_false(o[0] & 0x01); /* unicast */
		assert_int_equal(o[4] << 8 | o[5], i); /* distinct per node */
		/* never an uplink's: those all start 02: */
		snprintf(name, sizeof(name), "dev-%d", i);
		net_mac("", name, 0, up);
		assert_string_not_equal(a, up);
		assert_int_equal(strncmp(up, "02:", 3), 0);
		assert_int_not_equal(strncmp(a, "02:", 3), 0);
	}
}

/* --- network-config --- */

/* The scalar at a dotted path ("ethernets.x.addresses.0") of YAML text,
 * copied (the caller frees), or NULL when there is none. */
static char *yaml_at(const char *text, const char *path)
{
	yaml_parser_t p;
	yaml_document_t d;
	yaml_node_t *n;
	char *copy = xstrdup(path), *seg, *dot, *ret = NULL;

	assert_true(yaml_parser_initialize(&p));
	yaml_parser_set_input_string(&p, (const unsigned char *)text,
				     strlen(text));
	assert_true(yaml_parser_load(&p, &d));
	n = yaml_document_get_root_node(&d);
	for (seg = copy; n && seg; seg = dot ? dot + 1 : NULL) {
		yaml_node_t *next = NULL;

		dot = strchr(seg, '.');
		if (dot)
			*dot = '\0';

		if (n->type == YAML_SEQUENCE_NODE) {
			long i = strtol(seg, NULL, 10);

			if (i >= 0 && n->data.sequence.items.start + i <
				      n->data.sequence.items.top)
				next = yaml_document_get_node(&d,
					n->data.sequence.items.start[i]);
		} else if (n->type == YAML_MAPPING_NODE) {
			for (yaml_node_pair_t *q = n->data.mapping.pairs.start;
			     q < n->data.mapping.pairs.top; q++) {
				yaml_node_t *k = yaml_document_get_node(&d,
								q->key);

				if (k->type == YAML_SCALAR_NODE &&
				    !strcmp((char *)k->data.scalar.value, seg))
					next = yaml_document_get_node(&d,
								q->value);
			}
		}
		n = next;
	}
	if (n && n->type == YAML_SCALAR_NODE)
		ret = xstrdup((char *)n->data.scalar.value);
	yaml_document_delete(&d);
	yaml_parser_delete(&p);
	free(copy);
	return ret;
}

static void assert_at(const char *text, const char *path, const char *want)
{
	char *got = yaml_at(text, path);

	if (!want) {
		if (got)
			fail_msg("%s: wanted nothing, got '%s' in:\n%s", path,
				 got, text);
		return;
	}
	if (!got || strcmp(got, want))
		fail_msg("%s: wanted '%s', got '%s' in:\n%s", path, want,
			 got ? got : "(nothing)", text);
	free(got);
}

#define UP_MAC "02:6e:b4:dc:0a:af"
#define NODE_MAC "06:6e:b8:01:00:02"

static void ours(struct buf *b)
{
	net_node_network_config(UP_MAC, NODE_MAC, "10.77.0.2", 24, b);
}

static void test_node_network_config(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	ours(&b);
	assert_int_equal(strncmp(b.p, "version: 2\n", 11), 0);
	assert_at(b.p, "version", "2");
	assert_at(b.p, "ethernets.nook-uplink.match.macaddress", UP_MAC);
	assert_at(b.p, "ethernets.nook-uplink.dhcp4", "true");
	assert_at(b.p, "ethernets.nook-cluster.match.macaddress", NODE_MAC);
	assert_at(b.p, "ethernets.nook-cluster.addresses.0", "10.77.0.2/24");
	assert_at(b.p, "ethernets.nook-cluster.dhcp4", "false");
	/* no way out and no resolver on the private network */
	assert_null(strstr(b.p, "gateway"));
	assert_null(strstr(b.p, "routes"));
	assert_null(strstr(b.p, "nameservers"));
	buf_free(&b);
}

/* Merge user text with ours; returns the result, *err what was said. */
static int merge(const char *user, struct buf *out, char **err)
{
	struct buf o = BUF_INIT;
	int rc;

	ours(&o);
	stderr_begin();
	rc = net_network_config_merge(user, user ? strlen(user) : 0, o.p, out);
	*err = stderr_end();
	buf_free(&o);
	return rc;
}

static void test_merge_plain(void **state)
{
	static const char *const users[] = {
		NULL, "", "version: 2\n", "# nothing\n",
		"version: 2\nethernets: {}\n", "network:\n  version: 2\n",
		"version: 2\nethernets:\n",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(users); i++) {
		struct buf out = BUF_INIT;
		char *err;

		assert_int_equal(merge(users[i], &out, &err), 0);
		assert_string_equal(err, "");
		assert_at(out.p, "version", "2");
		assert_at(out.p, "network", NULL);
		assert_at(out.p, "ethernets.nook-uplink.match.macaddress",
			  UP_MAC);
		assert_at(out.p, "ethernets.nook-cluster.addresses.0",
			  "10.77.0.2/24");
		free(err);
		buf_free(&out);
	}
}

static void test_merge_user_keys(void **state)
{
	const char *user =
		"network:\n"
		"  version: 2\n"
		"  renderer: networkd\n"
		"  ethernets:\n"
		"    enp0s9:\n"
		"      addresses: [192.168.50.10/24]\n"
		"      nameservers: {addresses: [192.168.50.1]}\n"
		"      mtu: 1500\n"
		"    lan:\n"
		"      match: {macaddress: \"52:54:00:12:34:56\"}\n"
		"      dhcp4: yes\n"
		"  vlans:\n"
		"    vlan7: {id: 7, link: nook-cluster, addresses: "
		"[10.99.0.2/24]}\n";
	struct buf out = BUF_INIT;
	char *err, *p1, *p2, *p3;

	(void)state;
	assert_int_equal(merge(user, &out, &err), 0);
	assert_string_equal(err, "");
	assert_at(out.p, "version", "2");
	assert_at(out.p, "renderer", "networkd");
	assert_at(out.p, "ethernets.enp0s9.addresses.0", "192.168.50.10/24");
	assert_at(out.p, "ethernets.enp0s9.nameservers.addresses.0",
		  "192.168.50.1");
	assert_at(out.p, "ethernets.lan.match.macaddress", "52:54:00:12:34:56");
	assert_at(out.p, "ethernets.lan.dhcp4", "yes");
	assert_at(out.p, "vlans.vlan7.link", "nook-cluster");
	assert_at(out.p, "ethernets.nook-uplink.dhcp4", "true");
	assert_at(out.p, "ethernets.nook-cluster.match.macaddress", NODE_MAC);
	/* version first; the user's interfaces, then ours */
	assert_int_equal(strncmp(out.p, "version: 2\n", 11), 0);
	p1 = strstr(out.p, "enp0s9:");
	p2 = strstr(out.p, "lan:");
	p3 = strstr(out.p, "nook-uplink:");
	assert_true(p1 && p2 && p3 && p1 < p2 && p2 < p3);
	free(err);
	buf_free(&out);
}

static void test_merge_conflicts(void **state)
{
	static const struct {
		const char *user, *why;
	} bad[] = {
		{ "version: 1\nconfig: []\n", "version 1" },
		{ "ethernets: {}\n", "no 'version: 2'" },
		{ "network: {config: disabled}\n", "no 'version: 2'" },
		{ "- version: 2\n", "top level must be a mapping" },
		{ "version: 2\nethernets: [a]\n", "ethernets must be a mapping" },
		{ "version: 2\nethernets:\n  nook-cluster: {dhcp4: true}\n",
		  "ethernets.nook-cluster: that id is nook's own (its cluster" },
		{ "version: 2\nethernets:\n  nook-uplink: {dhcp4: true}\n",
		  "that id is nook's own (its uplink" },
		{ "version: 2\nethernets:\n  e:\n    match: {macaddress: "
		  "\"02:6E:B4:DC:0A:AF\"}\n",
		  "the MAC of nook's uplink NIC" },
		{ "version: 2\nethernets:\n  e:\n    match:\n      macaddress: "
		  NODE_MAC "\n", "the MAC of nook's cluster NIC" },
		{ "version: 2\nethernets:\n  all:\n    match: {name: \"en*\"}\n"
		  "    dhcp4: true\n", "ethernets.all: a match by name pattern" },
		{ "version: 2\nethernets:\n  v:\n    match: {driver: "
		  "virtio_net}\n", "a match by driver" },
		{ "version: 2\nethernets:\n  eth1:\n    addresses: "
		  "[10.77.0.9/24]\n", "ethernets.eth1: address 10.77.0.9/24 "
		  "is on the cluster's subnet" },
		{ "version: 2\nethernets:\n  eth1:\n    addresses:\n"
		  "      - 10.77.0.0/16: {lifetime: 0}\n", "10.77.0.0/16" },
		{ "version: 2\nbridges:\n  br0:\n    interfaces: [nook-cluster]"
		  "\n", "bridges.br0 takes nook-cluster" },
		{ "version: 2\nbonds:\n  b0:\n    addresses: [10.77.0.200/32]"
		  "\n", "bonds.b0: address 10.77.0.200/32" },
		{ "version: 2\nethernets: {a: [}\n", "network-config:" },
		{ "version: 2\n\tx: 1\n", "network-config:2:" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct buf out = BUF_INIT;
		char *err;

		assert_int_equal(merge(bad[i].user, &out, &err), -1);
		if (!strstr(err, bad[i].why))
			fail_msg("case %zu: wanted '%s' in: %s", i, bad[i].why,
				 err);
		assert_int_equal(out.len, 0);
		free(err);
		buf_free(&out);
	}
}

/* Aliases stay shared (no blow-up); nesting is bounded. */
static void test_merge_hostile(void **state)
{
	struct buf user = BUF_INIT, out = BUF_INIT;
	char *err;

	(void)state;
	buf_adds(&user, "version: 2\na: &a [x, x, x, x, x, x, x, x, x, x]\n");
	for (char c = 'b'; c <= 'j'; c++)
		buf_addf(&user, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, "
			 "*%c, *%c, *%c]\n", c, c, c - 1, c - 1, c - 1, c - 1,
			 c - 1, c - 1, c - 1, c - 1, c - 1, c - 1);
	assert_int_equal(merge(user.p, &out, &err), 0);
	assert_true(out.len < 4 * user.len + 1024);
	assert_at(out.p, "j.0.0.0.0.0.0.0.0.0.0", "x");
	free(err);
	buf_free(&out);
	user.len = 0;
	buf_adds(&user, "version: 2\nx: ");
	for (int i = 0; i < 200; i++)
		buf_adds(&user, "[");
	for (int i = 0; i < 200; i++)
		buf_adds(&user, "]");
	assert_int_equal(merge(user.p, &out, &err), -1);
	assert_non_null(strstr(err, "nested too deep"));
	free(err);
	buf_free(&out);
	buf_free(&user);
}

/* An independent reader (PyYAML) sees the shape we meant, with the
 * user's scalars keeping their types. */
static void test_merge_python(void **state)
{
	static const char check[] =
		"import sys, yaml\n"
		"d = yaml.safe_load(sys.argv[1])\n"
		"e = d['ethernets']\n"
		"assert d['version'] == 2, d\n"
		"assert list(e) == ['eth9', 'nook-uplink', 'nook-cluster'], e\n"
		"assert e['eth9']['mtu'] == 1500 and e['eth9']['dhcp4'] is True\n"
		"assert e['eth9']['set-name'] == '0123'\n"
		"assert e['eth9']['wakeonlan'] == 'on'\n"
		"assert e['nook-uplink'] == {'match': {'macaddress': '"
		UP_MAC "'}, 'dhcp4': True}, e\n"
		"assert e['nook-cluster'] == {'match': {'macaddress': '"
		NODE_MAC "'}, 'dhcp4': False, 'addresses': ['10.77.0.2/24']}\n"
		"print('ok')\n";
	const char *user = "version: 2\nethernets:\n  eth9:\n    mtu: 1500\n"
			   "    dhcp4: true\n    set-name: \"0123\"\n"
			   "    wakeonlan: 'on'\n";
	struct buf out = BUF_INIT, py = BUF_INIT;
	char *err, *python = find_program("python3");
	const char *argv[] = { "python3", "-c", check, NULL, NULL };

	(void)state;
	if (!python)
		skip();
	free(python);
	assert_int_equal(merge(user, &out, &err), 0);
	argv[3] = out.p;
	if (run_capture(argv, &py) != 0 || strcmp(py.p, "ok\n"))
		fail_msg("PyYAML on:\n%s\nsaid: %s", out.p, py.p);
	free(err);
	buf_free(&out);
	buf_free(&py);
}

/* --- router advertisements --- */

/* A router solicitation as a node's networkd sends it (from fe80::46e:
 * 66ff:fee4:1, MAC 06:6e:66:e4:00:01, to ff02::2, with its link-layer
 * address), its checksum made by Python's arithmetic, not ours. */
static const unsigned char rs_frame[] =
	"\x33\x33\x00\x00\x00\x02\x06\x6e\x66\xe4\x00\x01\x86\xdd\x60\x00"
	"\x00\x00\x00\x10\x3a\xff\xfe\x80\x00\x00\x00\x00\x00\x00\x04\x6e"
	"\x66\xff\xfe\xe4\x00\x01\xff\x02\x00\x00\x00\x00\x00\x00\x00\x00"
	"\x00\x00\x00\x00\x00\x02\x85\x00\xa4\x87\x00\x00\x00\x00\x01\x01"
	"\x06\x6e\x66\xe4\x00\x01";
static const unsigned char ra_mac[6] = { 0x02, 0x6e, 1, 2, 3, 4 };

/* RFC 4443's check: the sum over the pseudo-header and the message,
 * checksum included, is all ones. */
static int icmp6_ok(const unsigned char *f, size_t n)
{
	unsigned long sum = 58 + (n - 54);

	for (size_t i = 22; i < 54; i += 2)
		sum += (unsigned long)f[i] << 8 | f[i + 1];
	for (size_t i = 54; i < n; i += 2)
		sum += (unsigned long)f[i] << 8 | (i + 1 < n ? f[i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

/* What a node's networkd checks of the answer, and what it learns. */
static void check_ra(const unsigned char *ra, size_t n,
		     const unsigned char *from, const unsigned char *to_mac,
		     const unsigned char *to_ip)
{
	const unsigned char ll[] = { 0xfe, 0x80, 0, 0, 0, 0, 0, 0,
				     from[0] ^ 2, from[1], from[2], 0xff, 0xfe,
				     from[3], from[4], from[5] };

	assert_int_equal(n, 14 + 40 + 16 + 8);
	assert_memory_equal(ra, to_mac, 6);
	assert_memory_equal(ra + 6, from, 6);
	assert_int_equal(ra[12] << 8 | ra[13], 0x86dd);
	assert_int_equal(ra[14] >> 4, 6);
	assert_int_equal(ra[18] << 8 | ra[19], 24);   /* payload length */
	assert_int_equal(ra[20], 58);                 /* ICMPv6 */
	assert_int_equal(ra[21], 255);                /* hop limit */
	assert_memory_equal(ra + 22, ll, 16);         /* fe80::EUI-64 */
	assert_memory_equal(ra + 38, to_ip, 16);
	assert_int_equal(ra[54], 134);                /* advertisement */
	assert_int_equal(ra[55], 0);
	assert_true(icmp6_ok(ra, n));
	assert_int_equal(ra[58] | ra[59], 0);         /* hop limit, M, O */
	assert_int_equal(ra[60] << 8 | ra[61], 0);    /* no default router */
	assert_int_equal(ra[70], 1);                  /* its link-layer addr */
	assert_int_equal(ra[71], 1);
	assert_memory_equal(ra + 72, from, 6);
}

static void test_ra_answer(void **state)
{
	static const unsigned char all_mac[6] = { 0x33, 0x33, 0, 0, 0, 1 };
	static const unsigned char all_ip[16] = { 0xff, 0x02, [15] = 1 };
	unsigned char in[128], out[128];
	size_t n = sizeof(rs_frame) - 1;
	size_t m;

	(void)state;
	memcpy(in, rs_frame, n);
	assert_true(icmp6_ok(in, n));
	/* answered to the one who asked */
	m = net_ra_answer(in, n, ra_mac, out, sizeof(out));
	check_ra(out, m, ra_mac, in + 6, in + 22);
	/* one without an address yet is answered to all nodes (its
	 * checksum changes with the source: patch it by the difference) */
	memset(in + 22, 0, 16);
	for (unsigned long sum = (unsigned long)in[56] << 8 | in[57], i = 0;
	     i < 16; i += 2) {
		sum += (unsigned long)rs_frame[22 + i] << 8 | rs_frame[23 + i];
		while (sum >> 16)
			sum = (sum & 0xffff) + (sum >> 16);
		in[56] = (unsigned char)(sum >> 8);
		in[57] = (unsigned char)sum;
	}
	assert_true(icmp6_ok(in, n));
	m = net_ra_answer(in, n, ra_mac, out, sizeof(out));
	check_ra(out, m, ra_mac, all_mac, all_ip);

	/* nothing else is answered */
	memcpy(in, rs_frame, n);
	assert_int_equal(net_ra_answer(in, n, ra_mac, out, 77), 0);
	assert_int_equal(net_ra_answer(in, 61, ra_mac, out, sizeof(out)), 0);
	in[57] ^= 1;                                  /* checksum */
	assert_int_equal(net_ra_answer(in, n, ra_mac, out, sizeof(out)), 0);
	in[57] ^= 1;
	in[21] = 254;                                 /* routed from afar */
	assert_int_equal(net_ra_answer(in, n, ra_mac, out, sizeof(out)), 0);
	in[21] = 255;
	in[19] = 0xff;                                /* longer than frame */
	assert_int_equal(net_ra_answer(in, n, ra_mac, out, sizeof(out)), 0);
	in[19] = 0x10;
	in[13] = 0x00;                                /* IPv4 */
	assert_int_equal(net_ra_answer(in, n, ra_mac, out, sizeof(out)), 0);
	in[13] = 0xdd;
	in[20] = 17;                                  /* UDP */
	assert_int_equal(net_ra_answer(in, n, ra_mac, out, sizeof(out)), 0);
	in[20] = 58;
	/* an advertisement is no solicitation: no answer to our own */
	m = net_ra_answer(in, n, ra_mac, out, sizeof(out));
	assert_true(m > 0);
	memcpy(in, out, m);
	assert_int_equal(net_ra_answer(in, m, ra_mac, out, sizeof(out)), 0);
}

/* An MLDv2 report as a node's kernel sends it when its IPv6 comes up
 * (from fe80::46e:66ff:fee4:1, MAC 06:6e:66:e4:00:01, to ff02::16, behind
 * a hop-by-hop header with a router alert: joining ff02::1:ffe4:1), its
 * checksum made by Python's arithmetic. */
static const unsigned char mld_frame[] =
	"\x33\x33\x00\x00\x00\x16\x06\x6e\x66\xe4\x00\x01\x86\xdd\x60\x00"
	"\x00\x00\x00\x24\x00\x01\xfe\x80\x00\x00\x00\x00\x00\x00\x04\x6e"
	"\x66\xff\xfe\xe4\x00\x01\xff\x02\x00\x00\x00\x00\x00\x00\x00\x00"
	"\x00\x00\x00\x00\x00\x16\x3a\x00\x05\x02\x00\x00\x01\x00\x8f\x00"
	"\x05\xd1\x00\x00\x00\x01\x04\x00\x00\x00\xff\x02\x00\x00\x00\x00"
	"\x00\x00\x00\x00\x00\x01\xff\xe4\x00\x01";

/* The report's ICMPv6 checksum made again after a change (the message
 * starts at 62, behind the 8-byte hop-by-hop header). */
static void mld_sum(unsigned char *f, size_t n)
{
	unsigned long sum = 58 + (n - 62);

	f[64] = f[65] = 0;
	for (size_t i = 22; i < 54; i += 2)
		sum += (unsigned long)f[i] << 8 | f[i + 1];
	for (size_t i = 62; i < n; i += 2)
		sum += (unsigned long)f[i] << 8 | (i + 1 < n ? f[i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	f[64] = (unsigned char)(~sum >> 8);
	f[65] = (unsigned char)~sum;
}

static void test_ra_unasked(void **state)
{
	unsigned char in[128], out[128];
	size_t n = sizeof(mld_frame) - 1;
	size_t m;

	(void)state;
	memcpy(in, mld_frame, n);
	mld_sum(in, n);
	assert_memory_equal(in, mld_frame, n);  /* our sum is Python's */
	/* advertised to the node that reports, at its new address */
	m = net_ra_unasked(in, n, ra_mac, out, sizeof(out));
	check_ra(out, m, ra_mac, in + 6, in + 22);
	/* a report is no solicitation, a solicitation no report */
	assert_int_equal(net_ra_answer(in, n, ra_mac, out, sizeof(out)), 0);
	assert_int_equal(net_ra_unasked(rs_frame, sizeof(rs_frame) - 1,
					ra_mac, out, sizeof(out)), 0);
	/* MLDv1's report too */
	in[62] = 131;
	mld_sum(in, n);
	assert_true(net_ra_unasked(in, n, ra_mac, out, sizeof(out)) > 0);
	/* a query is not a node coming up */
	in[62] = 130;
	mld_sum(in, n);
	assert_int_equal(net_ra_unasked(in, n, ra_mac, out, sizeof(out)), 0);
	memcpy(in, mld_frame, n);
	in[65] ^= 1;                                  /* checksum */
	assert_int_equal(net_ra_unasked(in, n, ra_mac, out, sizeof(out)), 0);
	in[65] ^= 1;
	assert_int_equal(net_ra_unasked(in, n - 1, ra_mac, out, sizeof(out)),
			 0);                           /* cut short */
	in[55] = 9;                    /* a hop-by-hop header past the end */
	assert_int_equal(net_ra_unasked(in, n, ra_mac, out, sizeof(out)), 0);
	in[55] = 0;
	in[54] = 17;                   /* UDP behind it */
	assert_int_equal(net_ra_unasked(in, n, ra_mac, out, sizeof(out)), 0);
	in[54] = 58;
	assert_int_equal(net_ra_unasked(in, n, ra_mac, out, 77), 0);
	/* from us, or from a multicast source: no node */
	memcpy(in + 6, ra_mac, 6);
	assert_int_equal(net_ra_unasked(in, n, ra_mac, out, sizeof(out)), 0);
	memcpy(in + 6, mld_frame + 6, 6);
	in[6] |= 1;
	assert_int_equal(net_ra_unasked(in, n, ra_mac, out, sizeof(out)), 0);
}

/* --- the switch --- */

static void test_switch_netdev(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	net_switch_netdev("/run/user/1000/nook/dev.net", 2, "net1", &b);
	assert_string_equal(b.p, "vde,id=net1,sock=/run/user/1000/nook/"
				 "dev.net/sw");
	b.len = 0;
	net_switch_netdev("/h/it's a,b [c] \"d\" e\\f/x://y", 1, "n", &b);
	assert_string_equal(b.p, "vde,id=n,sock=/h/it\\'s a,,b \\[c\\] "
				 "\\\"d\\\" e\\\\f/x:\\//y/sw");
	buf_free(&b);
}

static void test_switch_refuses(void **state)
{
	char *tmp = make_tmpdir(), *sub = xasprintf("%s/open", tmp);
	char *err, longdir[128];

	(void)state;
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(chmod(sub, 0755), 0);
	memset(longdir, 'a', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[sizeof(longdir) - 1] = '\0';
	stderr_begin();
	assert_int_equal(net_switch_start("relative/dir"), -1);
	assert_int_equal(net_switch_start(sub), -1);
	assert_int_equal(net_switch_start(longdir), -1);
	err = stderr_end();
	assert_non_null(strstr(err, "'relative/dir' is not an absolute path"));
	assert_non_null(strstr(err, "must be a directory of yours with mode "
				    "0700 (it has mode 0755)"));
	assert_non_null(strstr(err, "File name too long"));
	assert_int_equal(net_switch_alive(sub), 0);
	assert_int_equal(net_switch_stop(sub), 0);
	free(err);
	assert_int_equal(remove_tree(tmp), 0);
	free(sub);
	free(tmp);
}

/* What test_switch_live made, for its teardown to end. */
static char *live_tmp, *live_dir;
static pid_t live_pids[8];

/* A switch directory for a test, as nook makes one: DIR/net, 0700. */
static void live_net(void)
{
	live_tmp = make_tmpdir();
	live_dir = xasprintf("%s/net", live_tmp);
	assert_int_equal(mkdir(live_dir, 0700), 0);
}

/* Ports the switch has: their sockets in sw/, beside "ctl" (and the
 * plugs' own, whose names start with a dot, until they unlink them). */
static int ports_named(const char *dir, struct buf *names)
{
	char *sw = xasprintf("%s/sw", dir);
	DIR *d = opendir(sw);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' && strcmp(e->d_name, "ctl")) {
			n++;
			if (names)
				buf_addf(names, " %s", e->d_name);
		}
	if (d)
		closedir(d);
	if (names)
		buf_adds(names, " "); /* " NAME NAME ": each as " NAME " */
	free(sw);
	return n;
}

static int ports(const char *dir)
{
	return ports_named(dir, NULL);
}

/* Wait (a loaded host may take its time) for the switch to have want
 * ports; if it has not, say what it has and what it logged. */
#define wait_ports(dir, want) wait_ports_at(dir, want, __LINE__)
static void wait_ports_at(const char *dir, int want, int line)
{
	struct buf names = BUF_INIT, log = BUF_INIT;
	char *logpath;
	int n;

	for (int i = 0; i < 250 && ports(dir) != want; i++)
		sleep_ms(20);
	n = ports_named(dir, &names);
	if (n == want) {
		buf_free(&names);
		return;
	}
	logpath = xasprintf("%s/switch.log", dir);
	read_file_quiet(logpath, &log);
	fail_msg("line %d: %d ports, not %d; ports:%s; switch %d; "
		 "switch.log:\n%s", line, n, want, names.len ? names.p : "",
		 (int)net_switch_alive(dir), log.len ? log.p : "(empty)");
}

/* A guest-less QEMU as node i: it connects to the switch before it goes
 * to the background, so the port is there when this returns. */
static void node_up(int i)
{
	struct buf nd = BUF_INIT, out = BUF_INIT, pid = BUF_INIT;
	char *pidfile = xasprintf("%s/q%d.pid", live_tmp, i);
	const char *argv[] = { "qemu-system-x86_64", "-M", "none",
			       "-nodefaults", "-display", "none", "-netdev",
			       NULL, "-pidfile", pidfile, "-daemonize", NULL };

	net_switch_netdev(live_dir, i, "n", &nd);
	argv[7] = nd.p;
	if (run_capture(argv, &out) != 0)
		fail_msg("QEMU node %d: %s", i, out.p);
	assert_int_equal(read_file(pidfile, &pid), 0);
	live_pids[i] = (pid_t)strtol(pid.p, NULL, 10);
	assert_true(live_pids[i] > 1);
	buf_free(&nd);
	buf_free(&out);
	buf_free(&pid);
	free(pidfile);
}

static int gone(pid_t pid)
{
	char path[64];
	struct buf b = BUF_INIT;
	char *p;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file_quiet(path, &b) < 0)
		return 1;
	p = strrchr(b.p, ')');
	ret = p && (p[2] == 'Z' || p[2] == 'X');
	buf_free(&b);
	return ret;
}

static void node_down(int i)
{
	kill(live_pids[i], SIGTERM);
	for (int t = 0; t < 100 && !gone(live_pids[i]); t++)
		sleep_ms(20);
	assert_true(gone(live_pids[i]));
	live_pids[i] = 0;
}

/* Every socket the switch has is a unix one: none on TCP or UDP. */
static void only_unix_sockets(pid_t pid)
{
	char link[128], *fds = xasprintf("/proc/%d/fd", (int)pid);
	struct buf unix_socks = BUF_INIT;
	DIR *d = opendir(fds);
	struct dirent *e;
	int socks = 0;

	assert_non_null(d);
	assert_int_equal(read_file("/proc/net/unix", &unix_socks), 0);
	while ((e = readdir(d))) {
		char *path = xasprintf("%s/%s", fds, e->d_name);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		char want[sizeof(link) + 2];

		free(path);
		if (n < 0 || strncmp(link, "socket:[", 8))
			continue;
		link[n - 1] = '\0'; /* the ']' */
		snprintf(want, sizeof(want), " %s ", link + 8);
		if (!strstr(unix_socks.p, want)) {
			want[strlen(want) - 1] = '\n';
			if (!strstr(unix_socks.p, want))
				fail_msg("socket %s of the switch is not "
					 "a unix one", link + 8);
		}
		socks++;
	}
	assert_true(socks >= 1);
	closedir(d);
	buf_free(&unix_socks);
	free(fds);
}

/* Nothing in sw/ is open to group or others. */
static void private_modes(const char *dir)
{
	char *sw = xasprintf("%s/sw", dir);
	DIR *d = opendir(sw);
	struct dirent *e;
	struct stat st;

	assert_non_null(d);
	assert_int_equal(stat(sw, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	while ((e = readdir(d))) {
		char *p = xasprintf("%s/%s", sw, e->d_name);

		assert_int_equal(lstat(p, &st), 0);
		if (st.st_mode & 077)
			fail_msg("%s has mode %04o", p, st.st_mode & 07777);
		free(p);
	}
	closedir(d);
	free(sw);
}

/* As user nobody, no socket of the switch can be connected to. */
static void nobody_refused(const char *dir)
{
	static const char script[] =
		"import socket, sys\n"
		"for p in sys.argv[1:]:\n"
		"    for t in (socket.SOCK_STREAM, socket.SOCK_DGRAM):\n"
		"        s = socket.socket(socket.AF_UNIX, t)\n"
		"        try:\n"
		"            s.connect(p)\n"
		"            print('connected to', p); sys.exit(1)\n"
		"        except PermissionError:\n"
		"            pass\n";
	struct strvec argv = STRVEC_INIT;
	char *sw = xasprintf("%s/sw", dir);
	DIR *d = opendir(sw);
	struct dirent *e;
	struct buf out = BUF_INIT;
	char *runuser = find_program("runuser");

	assert_non_null(d);
	if (geteuid() != 0 || !runuser) {
		free(runuser);
		free(sw);
		closedir(d);
		return; /* only root can be nobody */
	}
	strvec_push(&argv, runuser);
	strvec_push(&argv, "-u");
	strvec_push(&argv, "nobody");
	strvec_push(&argv, "--");
	strvec_push(&argv, "python3");
	strvec_push(&argv, "-c");
	strvec_push(&argv, script);
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			strvec_pushf(&argv, "%s/%s", sw, e->d_name);
	assert_true(argv.n >= 9); /* ctl and a port at least */
	if (run_capture((const char *const *)argv.v, &out) != 0)
		fail_msg("nobody: %s", out.p);
	closedir(d);
	buf_free(&out);
	strvec_clear(&argv);
	free(runuser);
	free(sw);
}

/* vde_plug children joined to the switch by pipes: frames on stdin
 * come out of the others' stdout, each as a 2-byte length and bytes. */
struct plug {
	struct child c;
	const char *argv[3];
	int to, from;
	struct buf got;
};

static void plug_open(struct plug *p, const char *url)
{
	int in[2], out[2];

	memset(p, 0, sizeof(*p));
	p->argv[0] = "vde_plug";
	p->argv[1] = url;
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	p->c = (struct child)CHILD_INIT;
	p->c.argv = p->argv;
	p->c.in = in[0];
	p->c.out = out[1];
	assert_int_equal(child_start(&p->c), 0);
	close(in[0]);
	close(out[1]);
	p->to = in[1];
	p->from = out[0];
}

/* SIGKILL, not child_kill()'s SIGTERM: vde_plug's SIGTERM handler can
 * deadlock in its own cleanup (seen: a plug stuck on a futex, for good) */
static void plug_close(struct plug *p)
{
	close(p->to);
	close(p->from);
	kill(p->c.pid, SIGKILL);
	child_wait(&p->c);
	buf_free(&p->got);
}

static void plug_send(struct plug *p, const char *dst, const char *src)
{
	unsigned char f[2 + 60] = { 0, 60 };

	memcpy(f + 2, dst, 6);
	memcpy(f + 8, src, 6);
	f[14] = 0x88; /* local experimental ethertype */
	f[15] = 0xb5;
	memcpy(f + 16, "nook", 4);
	assert_int_equal(write_all(p->to, f, sizeof(f)), 0);
}

/* Take the whole frames out of p->got: 1 when one came from src. */
static int plug_scan(struct plug *p, const char *src)
{
	int found = 0;

	while (p->got.len >= 2) {
		const unsigned char *f = (const unsigned char *)p->got.p;
		size_t n = (size_t)f[0] << 8 | f[1];

		if (p->got.len < 2 + n)
			break;
		if (n >= 14 && !memcmp(f + 2 + 6, src, 6))
			found = 1;
		memmove(p->got.p, p->got.p + 2 + n, p->got.len - 2 - n);
		p->got.len -= 2 + n;
	}
	return found;
}

/* 1 when a frame from src arrives at p within ms, 0 when none does. */
static int plug_got(struct plug *p, const char *src, int ms)
{
	struct pollfd pfd = { p->from, POLLIN, 0 };
	char chunk[4096];
	long long end = mono_ms() + ms;

	while (mono_ms() < end) {
		ssize_t n;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = read(p->from, chunk, sizeof(chunk));
		assert_true(n > 0);
		buf_add(&p->got, chunk, (size_t)n);
		if (plug_scan(p, src))
			return 1;
	}
	return 0;
}

/* A learning switch: broadcast reaches all, unicast only its owner. */
static void frames_switch(const char *dir)
{
	static const char bcast[] = "\xff\xff\xff\xff\xff\xff";
	static const char ma[] = "\x02\x6e\x00\x00\x00\x0a";
	static const char mb[] = "\x02\x6e\x00\x00\x00\x0b";
	struct buf nd = BUF_INIT, url = BUF_INIT;
	struct plug a, b, c;
	char *plug = find_program("vde_plug");

	if (!plug)
		return;
	free(plug);
	net_switch_netdev(dir, 9, "x", &nd);
	/* the path as libvdeplug reads it: without QEMU's doubled commas */
	for (const char *s = strstr(nd.p, "sock=") + 5; *s; s++)
		if (!(s[0] == ',' && s[1] == ','))
			buf_add(&url, s, 1);
	plug_open(&a, url.p);
	plug_open(&b, url.p);
	plug_open(&c, url.p);
	/* the plugs connect in their own time: the first frame is resent */
	for (int i = 0; i < 10 && !plug_got(&a, mb, 300); i++)
		plug_send(&b, bcast, mb);
	assert_true(plug_got(&c, mb, 3000));
	plug_send(&a, mb, ma);
	assert_true(plug_got(&b, ma, 3000));
	assert_false(plug_got(&c, ma, 500));
	plug_close(&a);
	plug_close(&b);
	plug_close(&c);
	buf_free(&url);
	buf_free(&nd);
}

/* The plug's first frame from the switch's MAC, into f: its length. */
static size_t plug_frame_from(struct plug *p, const unsigned char *src,
			      unsigned char *f, size_t cap, int ms)
{
	struct pollfd pfd = { p->from, POLLIN, 0 };
	long long end = mono_ms() + ms;
	char chunk[4096];

	while (mono_ms() < end) {
		while (p->got.len >= 2) {
			const unsigned char *g = (unsigned char *)p->got.p;
			size_t n = (size_t)g[0] << 8 | g[1], ret = 0;

			if (p->got.len < 2 + n)
				break;
			if (n >= 14 && n <= cap && !memcmp(g + 8, src, 6)) {
				memcpy(f, g + 2, n);
				ret = n;
			}
			memmove(p->got.p, p->got.p + 2 + n,
				p->got.len - 2 - n);
			p->got.len -= 2 + n;
			if (ret)
				return ret;
		}
		if (poll(&pfd, 1, 50) > 0) {
			ssize_t n = read(p->from, chunk, sizeof(chunk));

			assert_true(n > 0);
			buf_add(&p->got, chunk, (size_t)n);
		}
	}
	return 0;
}

/* A solicitation on the switch is answered by the switch, to the one
 * who sent it, and the switch logs it. */
static void ra_over_switch(const char *dir)
{
	unsigned char f[256], mac[6];
	char macs[18], *log = xasprintf("%s/switch.log", dir);
	struct buf nd = BUF_INIT, url = BUF_INIT, said = BUF_INIT;
	struct plug a;
	size_t n = 0;

	net_mac("ra", dir, 0, macs);
	for (int i = 0; i < 6; i++)
		mac[i] = (unsigned char)strtol(macs + 3 * i, NULL, 16);
	net_switch_netdev(dir, 9, "x", &nd);
	for (const char *s = strstr(nd.p, "sock=") + 5; *s; s++)
		if (!(s[0] == ',' && s[1] == ','))
			buf_add(&url, s, 1);
	plug_open(&a, url.p);
	/* the plug connects in its own time: the solicitation is resent */
	for (int i = 0; i < 10 && !n; i++) {
		unsigned char len[2] = { 0, sizeof(rs_frame) - 1 };

		assert_int_equal(write_all(a.to, len, 2), 0);
		assert_int_equal(write_all(a.to, rs_frame, len[1]), 0);
		n = plug_frame_from(&a, mac, f, sizeof(f), 300);
	}
	check_ra(f, n, mac, rs_frame + 6, rs_frame + 22);
	/* it logs once it has sent: the line may come just after */
	for (int t = 0; t < 100; t++, sleep_ms(20)) {
		said.len = 0;
		assert_int_equal(read_file(log, &said), 0);
		if (strstr(said.p, "solicitation from 06:6e:66:e4:00:01\n"))
			break;
	}
	assert_non_null(strstr(said.p, "answered a router solicitation "
				       "from 06:6e:66:e4:00:01\n"));
	plug_close(&a);
	buf_free(&said);
	buf_free(&url);
	buf_free(&nd);
	free(log);
}

/* The switches' log grown past what one file keeps. */
static void log_grown(const char *dir)
{
	char *log = xasprintf("%s/switch.log", dir);
	FILE *f = fopen(log, "a");

	assert_non_null(f);
	for (int i = 0; i < 1000; i++)
		fprintf(f, "%0*d\n", 99, i);
	assert_int_equal(fclose(f), 0);
	free(log);
}

static int count(const char *s, const char *what)
{
	int n = 0;

	for (; s && (s = strstr(s, what)); s++)
		n++;
	return n;
}

/* After log_grown() and a new switch: the old log is switch.log.1, with
 * the earlier switches' starts (the log is kept across them), and
 * switch.log begins again with the new one. */
static void log_kept(const char *dir)
{
	char *log = xasprintf("%s/switch.log", dir);
	char *old = xasprintf("%s.1", log);
	struct buf b = BUF_INIT, o = BUF_INIT;

	assert_int_equal(read_file(log, &b), 0);
	assert_int_equal(read_file(old, &o), 0);
	assert_true(count(o.p, " started\n") >= 2);
	assert_true(o.len > 100000);
	assert_int_equal(count(b.p, " started\n"), 1);
	assert_true(b.len < 1000);
	buf_free(&b);
	buf_free(&o);
	free(old);
	free(log);
}

/* The port in after (names, as ports_named() lists them) not in before. */
static char *new_port(const struct buf *before, const struct buf *after)
{
	const char *p = after->p;

	while (p && *p == ' ' && p[1]) {
		size_t len = strcspn(p + 1, " ");
		char *name = xasprintf("%.*s", (int)len, p + 1);
		char *spaced = xasprintf(" %s ", name);
		int old = before->p && strstr(before->p, spaced);

		free(spaced);
		if (!old)
			return name;
		free(name);
		p += 1 + len;
	}
	fail_msg("no new port: before%s, after%s", before->p, after->p);
	return NULL;
}

/* The switch's CPU time so far, in clock ticks. */
static long long cpu_ticks(pid_t pid)
{
	char path[64];
	struct buf b = BUF_INIT;
	unsigned long long ut = 0, st = 0;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	assert_int_equal(read_file(path, &b), 0);
	p = strrchr(b.p, ')');
	assert_non_null(p);
	/* after ")": the state, 10 numbers, then utime and stime */
	assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u "
				"%*u %*u %llu %llu", &ut, &st), 2);
	buf_free(&b);
	return (long long)(ut + st);
}

/* A switch with no frames to move uses no CPU to speak of (libvdeplug4's
 * switch module spins for good on a connection that ended before its
 * request: net/switch.c). */
static void switch_idle(pid_t pid)
{
	long long hz = sysconf(_SC_CLK_TCK), before = cpu_ticks(pid), used;

	sleep_ms(1000);
	used = cpu_ticks(pid) - before;
	if (used * 10 > hz) /* a tenth of a core; spinning takes it all */
		fail_msg("the idle switch used %lld ms of CPU in 1 s",
			 used * 1000 / hz);
}

static void test_switch_live(void **state)
{
	char *qemu, *node2;
	struct buf before = BUF_INIT, after = BUF_INIT;
	pid_t pid, again;

	(void)state;
	qemu = find_program("qemu-system-x86_64");
	if (!qemu)
		skip();
	free(qemu);
	live_tmp = make_tmpdir();
	/* libvdeplug's quotes and QEMU's commas in the path */
	live_dir = xasprintf("%s/it's [a] \"b\" c,d:", live_tmp);
	assert_int_equal(mkdir(live_dir, 0700), 0);
	assert_int_equal(net_switch_alive(live_dir), 0);
	assert_int_equal(net_switch_start(live_dir), 0);
	pid = net_switch_alive(live_dir);
	assert_true(pid > 1 && pid != getpid());
	assert_int_equal(net_switch_start(live_dir), 0); /* idempotent */
	assert_int_equal(net_switch_alive(live_dir), pid);
	only_unix_sockets(pid);
	wait_ports(live_dir, 0);
	switch_idle(pid);
	/* three nodes; one restarts and is taken back; the cluster grows */
	for (int i = 1; i <= 3; i++)
		node_up(i);
	wait_ports(live_dir, 3);
	node_down(2);
	wait_ports(live_dir, 2);
	ports_named(live_dir, &before);
	node_up(2);
	wait_ports(live_dir, 3);
	ports_named(live_dir, &after);
	node2 = new_port(&before, &after);
	node_up(4);
	node_up(5);
	wait_ports(live_dir, 5);
	only_unix_sockets(pid);
	private_modes(live_dir);
	nobody_refused(live_dir);
	/* even with the caller's directory opened, sw/ keeps others out */
	assert_int_equal(chmod(live_tmp, 0711), 0);
	assert_int_equal(chmod(live_dir, 0711), 0);
	nobody_refused(live_dir);
	assert_int_equal(chmod(live_dir, 0700), 0);
	frames_switch(live_dir);
	ra_over_switch(live_dir);
	for (int i = 1; i <= 5; i++)
		node_down(i);
	/* each node's port goes with it */
	wait_ports(live_dir, 0);
	switch_idle(pid);
	buf_free(&before);
	buf_free(&after);
	free(node2);
	/* a switch that died is reported, and comes back at the next start */
	assert_int_equal(kill(pid, SIGKILL), 0);
	for (int t = 0; t < 100 && !gone(pid); t++)
		sleep_ms(20);
	assert_int_equal(net_switch_alive(live_dir), 0);
	assert_int_equal(net_switch_start(live_dir), 0);
	again = net_switch_alive(live_dir);
	assert_true(again > 1 && again != pid);
	node_up(1);
	wait_ports(live_dir, 1);
	node_down(1);
	ra_over_switch(live_dir);
	log_grown(live_dir);
	/* stopped and started at once: a new switch, not the old one */
	assert_int_equal(net_switch_stop(live_dir), 0);
	assert_true(gone(again));
	assert_int_equal(net_switch_start(live_dir), 0);
	pid = net_switch_alive(live_dir);
	assert_true(pid > 1 && pid != again);
	ra_over_switch(live_dir);
	log_kept(live_dir);
	/* stop: no process, no socket left; stopping twice is fine */
	assert_int_equal(net_switch_stop(live_dir), 0);
	assert_true(gone(pid));
	assert_int_equal(net_switch_alive(live_dir), 0);
	assert_int_equal(ports(live_dir), 0);
	assert_int_equal(net_switch_stop(live_dir), 0);
}

/* A plug that speaks the VDE protocol itself (as libvdeplug does,
 * request v3), so that the test decides when its request goes and what
 * it says. Its functions return -1 rather than fail: a child process
 * uses them too. */
struct raw_plug {
	int ctl, data;
	struct sockaddr_un me;
};

/* Connect to dir's switch: a connection the switch takes, no request;
 * the plug's own socket in dir/at. */
static int raw_connect_at(const char *dir, const char *at,
			  struct raw_plug *p)
{
	static int seq;
	struct sockaddr_un ctl = { AF_UNIX, "" };

	p->ctl = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	p->data = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(ctl.sun_path, sizeof(ctl.sun_path), "%s/sw/ctl", dir);
	p->me = (struct sockaddr_un){ AF_UNIX, "" };
	snprintf(p->me.sun_path, sizeof(p->me.sun_path), "%s/%s/.t%d-%d",
		 dir, at, (int)getpid(), seq++);
	unlink(p->me.sun_path);
	if (p->ctl < 0 || p->data < 0 ||
	    connect(p->ctl, (struct sockaddr *)&ctl, sizeof(ctl)) < 0 ||
	    bind(p->data, (struct sockaddr *)&p->me, sizeof(p->me)) < 0)
		return -1;
	return 0;
}

/* Ask for any port and wait 3 s at most for the switch's answer: 0 once
 * plugged in, -1 when the switch said nothing (it does not answer when
 * it has no port to give) or named a socket that is not there. */
static int raw_request(struct raw_plug *p)
{
	struct {
		uint32_t magic, version, type;
		struct sockaddr_un sock;
		char descr[8];
	} __attribute__((packed)) req = { 0xfeedface, 3, 0, p->me, "test" };
	struct timeval within = { 3, 0 };
	struct sockaddr_un its;

	if (setsockopt(p->ctl, SOL_SOCKET, SO_RCVTIMEO, &within,
		       sizeof(within)) < 0 ||
	    send(p->ctl, &req, sizeof(req), MSG_NOSIGNAL) != sizeof(req) ||
	    recv(p->ctl, &its, sizeof(its), 0) != (ssize_t)sizeof(its))
		return -1;
	return connect(p->data, (struct sockaddr *)&its, sizeof(its));
}

static int raw_connect(const char *dir, struct raw_plug *p)
{
	return raw_connect_at(dir, "sw", p);
}

static void raw_close(struct raw_plug *p)
{
	close(p->ctl);
	close(p->data);
	unlink(p->me.sun_path);
}

/* Join dir's switch, wait_ms from the connection to the request. */
static int raw_join(const char *dir, struct raw_plug *p, int wait_ms)
{
	if (raw_connect(dir, p) < 0)
		return -1;
	if (wait_ms)
		sleep_ms(wait_ms);
	return raw_request(p);
}

/* 1 when a frame from src comes to p within 2 s. */
static int raw_got(struct raw_plug *p, const unsigned char src[6])
{
	unsigned char f[2048];
	long long end = mono_ms() + 2000;

	while (mono_ms() < end) {
		struct pollfd pfd = { p->data, POLLIN, 0 };
		ssize_t n;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = recv(p->data, f, sizeof(f), 0);
		if (n >= 14 && !memcmp(f + 6, src, 6))
			return 1;
	}
	return 0;
}

static void raw_send(struct raw_plug *p, const unsigned char dst[6],
		     const unsigned char src[6])
{
	unsigned char f[60] = { 0 };

	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x88; /* local experimental ethertype */
	f[13] = 0xb5;
	assert_int_equal(send(p->data, f, sizeof(f), 0), (ssize_t)sizeof(f));
}

/* Other nodes joining and going, for ever: a child that exits 1 when one
 * of them could not join. */
static pid_t others_join(const char *dir)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid > 0)
		return pid;
	for (;;) {
		struct raw_plug p;

		if (raw_join(dir, &p, 0) < 0)
			_exit(1);
		raw_close(&p);
	}
}

/* Joins past the 255 ports of the vde_switch nook ran before. */
#define RESTARTS 300

/*
 * vde_switch 2.3.2 kept a plug's connection for good when it read its
 * request after another plug left, or after the request of a plug that
 * connected later (net/switch.c). Node 2 restarts RESTARTS times, each
 * time taking 2 ms from its connection to its request while other nodes
 * keep joining and going (and are killed at the end, maybe between their
 * connection and their request): each join still gets a port, the switch
 * keeps none of those that ended, does not spin, and nodes still talk.
 */
static void test_switch_joins(void **state)
{
	static const unsigned char bcast[6] = { 0xff, 0xff, 0xff, 0xff,
						0xff, 0xff };
	static const unsigned char m2[6] = { 0x06, 0x6e, 0, 0, 0, 2 };
	static const unsigned char m3[6] = { 0x06, 0x6e, 0, 0, 0, 3 };
	struct raw_plug n2, n3;
	char *qemu;
	pid_t others;
	int st;

	(void)state;
	live_net();
	assert_int_equal(net_switch_start(live_dir), 0);
	wait_ports(live_dir, 0);
	others = others_join(live_dir);
	for (int i = 0; i < RESTARTS; i++) {
		if (raw_join(live_dir, &n2, 2) < 0) {
			const char *why = strerror(errno);

			kill(others, SIGKILL);
			waitpid(others, &st, 0);
			fail_msg("restart %d: node 2 could not join (%s); the "
				 "switch has %d ports", i, why,
				 ports(live_dir));
		}
		raw_close(&n2);
	}
	assert_int_equal(waitpid(others, &st, WNOHANG), 0); /* all joined */
	kill(others, SIGKILL);
	assert_int_equal(waitpid(others, &st, 0), others);
	wait_ports(live_dir, 0);
	switch_idle(net_switch_alive(live_dir));
	assert_int_equal(raw_join(live_dir, &n2, 0), 0);
	assert_int_equal(raw_join(live_dir, &n3, 0), 0);
	raw_send(&n2, bcast, m2);
	assert_true(raw_got(&n3, m2));
	raw_send(&n3, m2, m3);
	assert_true(raw_got(&n2, m3));
	raw_send(&n2, m3, m2);
	assert_true(raw_got(&n3, m2));
	raw_close(&n2);
	raw_close(&n3);
	/* and a QEMU node joins as nook runs it */
	qemu = find_program("qemu-system-x86_64");
	if (qemu) {
		node_up(4);
		wait_ports(live_dir, 1);
		node_down(4);
	}
	free(qemu);
	wait_ports(live_dir, 0);
}

/* 1 when the switch ends p's connection within ms. */
static int raw_ended(struct raw_plug *p, int ms)
{
	struct pollfd pfd = { p->ctl, POLLIN, 0 };
	char c;

	return poll(&pfd, 1, ms) == 1 && recv(p->ctl, &c, 1, 0) == 0;
}

/* A connection that sends its request and waits for the answer: 0 when
 * the switch gave it a port, -1 when it ended the connection. */
static int raw_says(struct raw_plug *p, const void *req, size_t n)
{
	struct timeval within = { 3, 0 };
	struct sockaddr_un its;

	if (setsockopt(p->ctl, SOL_SOCKET, SO_RCVTIMEO, &within,
		       sizeof(within)) < 0 ||
	    send(p->ctl, req, n, MSG_NOSIGNAL) != (ssize_t)n)
		return -1;
	return recv(p->ctl, &its, sizeof(its), 0) == (ssize_t)sizeof(its) ?
	       0 : -1;
}

/*
 * What a plug may do wrong: end before its request, send too little, the
 * wrong magic or version, a port-0 request, nothing at all, a socket
 * outside the switch's directory, or take every port. The switch ends
 * each such connection (or refuses it), keeps no port of it, does not
 * spin, and takes the next good plug.
 */
static void test_switch_hostile(void **state)
{
	static const unsigned char bcast[6] = { 0xff, 0xff, 0xff, 0xff,
						0xff, 0xff };
	static const unsigned char m1[6] = { 0x06, 0x6e, 0, 0, 0, 1 };
	struct {
		uint32_t magic, version, type;
		struct sockaddr_un sock;
	} __attribute__((packed)) req;
	static struct raw_plug held[300];
	struct raw_plug p, q;
	int taken = 0;

	(void)state;
	live_net();
	assert_int_equal(net_switch_start(live_dir), 0);
	for (int i = 0; i < 5; i++) { /* connected, then gone */
		assert_int_equal(raw_connect(live_dir, &p), 0);
		raw_close(&p);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(raw_connect(live_dir, &p), 0);
		req = (typeof(req)){ 0xfeedface, 3, 0, p.me };
		if (i == 0)
			req.magic = 0xdeadbeef;
		if (i == 1)
			req.version = 2;
		if (i == 2)
			req.type = 1; /* port 0: vde_switch's management */
		assert_int_equal(raw_says(&p, &req, i == 3 ? 12 : sizeof(req)),
				 -1);
		raw_close(&p);
	}
	/* a connection that says nothing is ended within seconds */
	assert_int_equal(raw_connect(live_dir, &p), 0);
	assert_true(raw_ended(&p, 15000));
	raw_close(&p);
	/* a plug's socket elsewhere: the switch sends frames nowhere else */
	assert_int_equal(raw_connect_at(live_dir, "..", &p), 0);
	assert_int_equal(raw_request(&p), -1);
	raw_close(&p);
	wait_ports(live_dir, 0);
	switch_idle(net_switch_alive(live_dir));
	/* a plug past the last port is ended; one is taken once one frees */
	for (; taken < (int)ARRAY_SIZE(held); taken++)
		if (raw_join(live_dir, &held[taken], 0) < 0)
			break;
	raw_close(&held[taken]);
	assert_int_equal(taken, 256);
	raw_close(&held[--taken]);
	assert_int_equal(raw_join(live_dir, &held[taken++], 0), 0);
	while (taken > 0)
		raw_close(&held[--taken]);
	wait_ports(live_dir, 0);
	/* and good plugs still talk */
	assert_int_equal(raw_join(live_dir, &p, 0), 0);
	assert_int_equal(raw_join(live_dir, &q, 0), 0);
	raw_send(&p, bcast, m1);
	assert_true(raw_got(&q, m1));
	raw_close(&p);
	raw_close(&q);
	switch_idle(net_switch_alive(live_dir));
}

/* Start dir's switch from a process whose open-file limit is soft, hard
 * (the switch inherits it, as it would a shell's "ulimit -n"). */
static void start_limited(const char *dir, rlim_t soft, rlim_t hard)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit r = { soft, hard };

		_exit(setrlimit(RLIMIT_NOFILE, &r) == 0 &&
		      net_switch_start(dir) == 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/*
 * A switch started under a low open-file limit. Under "ulimit -n 256" it
 * still takes its 256 ports (each holds two fds: it refused plugs past
 * about 120). Under a hard limit of 64 it takes fewer, says so in its
 * log, and refuses the plugs past them; connections that send nothing
 * do not leave it unable to accept the next one, which poll() reported
 * for ever: a core gone.
 */
static void test_switch_fd_limit(void **state)
{
	static struct raw_plug held[300];
	struct rlimit r;
	struct buf log = BUF_INIT;
	char *logpath;
	int taken = 0;

	(void)state;
	live_net();
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &r), 0);
	/* this process holds two fds a plug */
	assert_true(r.rlim_cur > 2 * ARRAY_SIZE(held) + 64);
	start_limited(live_dir, 256, r.rlim_max);
	for (; taken < 256; taken++)
		if (raw_join(live_dir, &held[taken], 0) < 0)
			fail_msg("plug %d refused under ulimit -n 256", taken);
	while (taken > 0)
		raw_close(&held[--taken]);
	assert_int_equal(net_switch_stop(live_dir), 0);

	start_limited(live_dir, 64, 64);
	for (; taken < 256; taken++)
		if (raw_join(live_dir, &held[taken], 0) < 0)
			break;
	raw_close(&held[taken]);
	assert_true(taken >= 16 && taken < 32);
	/* connections that say nothing, past the ports there are */
	for (int i = 0; i < 40; i++)
		assert_int_equal(raw_connect(live_dir, &held[taken + i]), 0);
	sleep_ms(200);
	switch_idle(net_switch_alive(live_dir));
	for (int i = 0; i < 40; i++)
		raw_close(&held[taken + i]);
	raw_close(&held[--taken]);
	assert_int_equal(raw_join(live_dir, &held[taken++], 0), 0);
	while (taken > 0)
		raw_close(&held[--taken]);
	logpath = xasprintf("%s/switch.log", live_dir);
	assert_int_equal(read_file(logpath, &log), 0);
	assert_non_null(strstr(log.p, "open files are limited to 64"));
	buf_free(&log);
	free(logpath);
}

/* The length of the first frame to p within 2 s (however long it is),
 * 0 when none comes. */
static size_t raw_frame_len(struct raw_plug *p)
{
	static unsigned char f[128 * 1024];
	struct pollfd pfd = { p->data, POLLIN, 0 };
	ssize_t n;

	if (poll(&pfd, 1, 2000) != 1)
		return 0;
	n = recv(p->data, f, sizeof(f), MSG_TRUNC);
	return n > 0 ? (size_t)n : 0;
}

/* Broadcast a frame of n bytes from p. */
static void raw_send_len(struct raw_plug *p, size_t n)
{
	static unsigned char f[128 * 1024];

	memset(f, 0xff, 6);
	memcpy(f + 6, "\x06\x6e\x00\x00\x00\x01", 6);
	f[12] = 0x88; /* local experimental ethertype */
	f[13] = 0xb5;
	assert_true(n <= sizeof(f));
	assert_int_equal(send(p->data, f, n, 0), (ssize_t)n);
}

/*
 * A guest may set its private NIC's MTU up to 65535 (virtio-net's
 * largest): its frames, 65549 bytes and 4 more behind a VLAN tag, reach
 * the other nodes whole. One larger than any QEMU takes goes nowhere;
 * the switch cut such frames at 65536 bytes and sent on what was left.
 */
static void test_switch_jumbo(void **state)
{
	static const size_t sizes[] = { 1514, 9018, 65549, 65553 };
	struct raw_plug a, b;

	(void)state;
	live_net();
	assert_int_equal(net_switch_start(live_dir), 0);
	assert_int_equal(raw_join(live_dir, &a, 0), 0);
	assert_int_equal(raw_join(live_dir, &b, 0), 0);
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		raw_send_len(&a, sizes[i]);
		assert_int_equal(raw_frame_len(&b), sizes[i]);
	}
	raw_send_len(&a, 100000);
	assert_int_equal(raw_frame_len(&b), 0);
	raw_send_len(&a, 60);
	assert_int_equal(raw_frame_len(&b), 60);
	raw_close(&a);
	raw_close(&b);
}

/* Other nooks asking whether the switch runs, for ever (status, a node's
 * start noting its link): a child to kill. */
static pid_t others_ask(const char *dir)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid > 0)
		return pid;
	for (;;)
		net_switch_alive(dir);
}

/*
 * A switch that died leaves its pid file. While other nooks ask whether
 * it runs, each start still starts a new one: an asker that held the lock
 * for a moment made the start read the dead switch's pid as the running
 * one, and start none (a stop would signal that pid, maybe another
 * program's by then).
 */
static void test_switch_askers(void **state)
{
	pid_t askers[2], dead = 0;
	int st;

	(void)state;
	live_net();
	for (size_t i = 0; i < ARRAY_SIZE(askers); i++)
		askers[i] = others_ask(live_dir);
	for (int round = 0; round < 40; round++) {
		pid_t pid;

		assert_int_equal(net_switch_start(live_dir), 0);
		pid = net_switch_alive(live_dir);
		if (pid <= 1 || pid == dead || gone(pid)) {
			for (size_t i = 0; i < ARRAY_SIZE(askers); i++)
				kill(askers[i], SIGKILL);
			fail_msg("round %d: the switch that died was pid %d; "
				 "the start left pid %d", round, (int)dead,
				 (int)pid);
		}
		assert_int_equal(kill(pid, SIGKILL), 0);
		for (int t = 0; t < 100 && !gone(pid); t++)
			sleep_ms(20);
		assert_true(gone(pid));
		dead = pid;
	}
	for (size_t i = 0; i < ARRAY_SIZE(askers); i++) {
		kill(askers[i], SIGKILL);
		assert_int_equal(waitpid(askers[i], &st, 0), askers[i]);
	}
}

/* A switch an older nook started (vde_switch) keeps running across an
 * upgrade: it is found, nodes join it, it stops with the last one. */
static void test_switch_older(void **state)
{
	char *sw = find_program("vde_switch"), *ctl, *pid;
	const char *argv[] = { "vde_switch", "-s", NULL, "-m", "0600",
			       "--dirmode", "0700", "-n", "256", "-f",
			       "/dev/null", "-p", NULL, "-d", NULL };
	struct buf out = BUF_INIT;
	struct raw_plug n1;
	pid_t old;

	(void)state;
	if (!sw)
		skip();
	free(sw);
	live_net();
	ctl = xasprintf("%s/sw", live_dir);
	pid = xasprintf("%s/sw.pid", live_dir);
	argv[2] = ctl;
	argv[12] = pid;
	assert_int_equal(run_capture(argv, &out), 0);
	for (int t = 0; t < 150 && !net_switch_alive(live_dir); t++)
		sleep_ms(20);
	old = net_switch_alive(live_dir);
	assert_true(old > 1);
	assert_int_equal(net_switch_start(live_dir), 0);
	assert_int_equal(net_switch_alive(live_dir), old);
	assert_int_equal(raw_join(live_dir, &n1, 0), 0);
	wait_ports(live_dir, 1);
	raw_close(&n1);
	assert_int_equal(net_switch_stop(live_dir), 0);
	assert_true(gone(old));
	assert_int_equal(net_switch_alive(live_dir), 0);
	free(ctl);
	free(pid);
	buf_free(&out);
}

/* The switch's process when TEST_SWITCH_LAST_WORDS is set: it logs them
 * (none when empty) and ends without a word on its pipe, as a switch
 * that crashes or is killed does. */
static int switch_dies(const char *dir, const char *last)
{
	char *log = xasprintf("%s/switch.log", dir);
	int fd = open(log, O_WRONLY | O_APPEND | O_CLOEXEC);

	if (fd >= 0 && *last)
		dprintf(fd, "switch %d started\n%s\n", (int)getpid(), last);
	raise(SIGKILL);
	return 1;
}

/* The switch's log, whose last lines say why it failed to start */
static void test_switch_silent(void **state)
{
	char *log, *err, *fd2 = NULL, target[PATH_MAX];
	const char *before = "switch 1 started\nan earlier switch's line\n";
	ssize_t n;
	pid_t pid;

	(void)state;
	live_net();
	log = xasprintf("%s/switch.log", live_dir);
	assert_int_equal(write_file_atomic(log, before, strlen(before), 0600),
			 0);
	assert_int_equal(setenv("TEST_SWITCH_LAST_WORDS", "nook: out of memory",
				1), 0);
	stderr_begin();
	assert_int_equal(net_switch_start(live_dir), -1);
	err = stderr_end();
	if (!strstr(err, log) || !strstr(err, "ends:\nswitch ") ||
	    !strstr(err, "\nnook: out of memory") ||
	    strstr(err, "earlier switch") ||
	    !strstr(err, "start the cluster again"))
		fail_msg("a switch that died after it logged: %s", err);
	free(err);
	/* one that wrote nothing either */
	assert_int_equal(setenv("TEST_SWITCH_LAST_WORDS", "", 1), 0);
	stderr_begin();
	assert_int_equal(net_switch_start(live_dir), -1);
	err = stderr_end();
	if (!strstr(err, log) || !strstr(err, "wrote nothing there") ||
	    !strstr(err, "ended without saying why"))
		fail_msg("a switch that died without a line: %s", err);
	free(err);
	assert_int_equal(unsetenv("TEST_SWITCH_LAST_WORDS"), 0);
	/* a real one's stderr, its last words if it fails, is its log */
	assert_int_equal(net_switch_start(live_dir), 0);
	pid = net_switch_alive(live_dir);
	assert_true(pid > 1);
	fd2 = xasprintf("/proc/%d/fd/2", (int)pid);
	n = readlink(fd2, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, log);
	free(fd2);
	free(log);
}

/* The switch's process when TEST_SWITCH_PID_LATE is set: it takes the
 * lock, as a switch does, and writes its pid only half a second later (a
 * switch descheduled between the two, on a busy host), then waits. */
static int switch_pid_late(const char *dir)
{
	char *lock = xasprintf("%s/switch.lock", dir);
	char *pid = xasprintf("%s/switch.pid", dir), line[24];
	int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600), n;

	if (fd < 0 || flock_wait(fd, 2000) < 0)
		return 1;
	sleep_ms(500);
	n = snprintf(line, sizeof(line), "%d\n", (int)getpid());
	if (write_file_atomic(pid, line, (size_t)n, 0600) < 0)
		return 1;
	for (;;)
		pause();
}

/* A pid no process has: a child's, reaped. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return pid;
}

/* 1 when dir's switch.lock is held (exclusively), as a switch holds it. */
static int switch_locked(const char *dir)
{
	char *lock = xasprintf("%s/switch.lock", dir);
	int fd = open(lock, O_RDWR | O_CLOEXEC), held;

	held = fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) < 0;
	if (fd >= 0)
		close(fd);
	free(lock);
	return held;
}

/*
 * A new switch holds its lock a moment before its pid is in switch.pid,
 * which still says the dead switch's pid (or, half written, nothing). A
 * nook that asks then (status, which holds no lock of the start's) is
 * told the new switch's pid: not the dead one's, not that none runs.
 */
static void test_switch_pid_late(void **state)
{
	const char *argv[] = { "nook", NET_SWITCH_ARGV1, NULL, NULL };
	pid_t was[] = { dead_pid(), 0 }; /* 0: nothing */
	char *pidfile, line[24] = "";

	(void)state;
	live_net();
	argv[2] = live_dir;
	pidfile = xasprintf("%s/switch.pid", live_dir);
	for (size_t i = 0; i < ARRAY_SIZE(was); i++) {
		pid_t late, told;
		int n = 0;

		if (was[i])
			n = snprintf(line, sizeof(line), "%d\n", (int)was[i]);
		assert_int_equal(write_file_atomic(pidfile, line, (size_t)n,
						   0600), 0);
		late = fork();
		assert_true(late >= 0);
		if (late == 0) {
			setenv("TEST_SWITCH_PID_LATE", "1", 1);
			execv("/proc/self/exe", (char *const *)argv);
			_exit(127);
		}
		live_pids[i] = late;
		for (int t = 0; t < 250 && !switch_locked(live_dir); t++)
			sleep_ms(10);
		assert_true(switch_locked(live_dir));
		told = net_switch_alive(live_dir);
		kill(late, SIGKILL);
		assert_int_equal(waitpid(late, NULL, 0), late);
		if (told != late)
			fail_msg("switch.pid said %d (0: nothing): the switch "
				 "told was %d, not the one that holds the "
				 "lock, %d", (int)was[i], (int)told,
				 (int)late);
	}
	free(pidfile);
}

/* A switch whose directory was removed under it (a cleaner of /tmp, a
 * runtime directory gone with its session) is found by no nook, to be
 * stopped: it serves the nodes still plugged in, then ends by itself
 * once none is left, rather than run for ever. */
static void test_switch_lost(void **state)
{
	char *qemu = find_program("qemu-system-x86_64");
	pid_t pid;
	int t;

	(void)state;
	if (!qemu)
		skip();
	free(qemu);
	live_net();
	assert_int_equal(net_switch_start(live_dir), 0);
	pid = net_switch_alive(live_dir);
	assert_true(pid > 1);
	live_pids[7] = pid;
	node_up(1);
	wait_ports(live_dir, 1);
	assert_int_equal(remove_tree(live_dir), 0);
	/* made again, empty, as a start would: not its own any more */
	assert_int_equal(mkdir(live_dir, 0700), 0);
	sleep_ms(2500); /* past a look at it, the node still plugged in */
	assert_false(gone(pid));
	node_down(1);
	for (t = 0; t < 250 && !gone(pid); t++)
		sleep_ms(20);
	if (!gone(pid))
		fail_msg("the switch (pid %d) of a removed directory runs on "
			 "with no node plugged in", (int)pid);
	assert_int_equal(net_switch_alive(live_dir), 0);
}

static int switch_teardown(void **state)
{
	(void)state;
	unsetenv("TEST_SWITCH_LAST_WORDS"); /* a failed test_switch_silent */
	for (size_t i = 0; i < ARRAY_SIZE(live_pids); i++)
		if (live_pids[i] > 1 && !gone(live_pids[i]))
			kill(live_pids[i], SIGKILL);
	if (live_dir)
		net_switch_stop(live_dir);
	if (live_tmp)
		remove_tree(live_tmp);
	free(live_dir);
	free(live_tmp);
	live_dir = live_tmp = NULL;
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_port_parse_good),
		cmocka_unit_test(test_port_parse_bad),
		cmocka_unit_test(test_port_free_and_in_use),
		cmocka_unit_test(test_port_pick_avoids),
		cmocka_unit_test(test_hostfwd_refused),
		cmocka_unit_test(test_mac),
		cmocka_unit_test(test_mac_stable),
		cmocka_unit_test(test_ra_answer),
		cmocka_unit_test(test_ra_unasked),
		cmocka_unit_test(test_subnet_parse_good),
		cmocka_unit_test(test_subnet_parse_bad),
		cmocka_unit_test(test_node_address),
		cmocka_unit_test(test_node_mac),
		cmocka_unit_test(test_node_network_config),
		cmocka_unit_test(test_merge_plain),
		cmocka_unit_test(test_merge_user_keys),
		cmocka_unit_test(test_merge_conflicts),
		cmocka_unit_test(test_merge_hostile),
		cmocka_unit_test(test_merge_python),
		cmocka_unit_test(test_switch_netdev),
		cmocka_unit_test(test_switch_refuses),
		cmocka_unit_test_teardown(test_switch_live, switch_teardown),
		cmocka_unit_test_teardown(test_switch_joins, switch_teardown),
		cmocka_unit_test_teardown(test_switch_hostile,
					  switch_teardown),
		cmocka_unit_test_teardown(test_switch_fd_limit,
					  switch_teardown),
		cmocka_unit_test_teardown(test_switch_jumbo, switch_teardown),
		cmocka_unit_test_teardown(test_switch_askers,
					  switch_teardown),
		cmocka_unit_test_teardown(test_switch_older, switch_teardown),
		cmocka_unit_test_teardown(test_switch_lost, switch_teardown),
		cmocka_unit_test_teardown(test_switch_silent, switch_teardown),
		cmocka_unit_test_teardown(test_switch_pid_late,
					  switch_teardown),
	};

	/* net_switch_start() runs the switch as this program again, as nook */
	if (argc == 3 && !strcmp(argv[1], NET_SWITCH_ARGV1))
		return getenv("TEST_SWITCH_LAST_WORDS") ?
		       switch_dies(argv[2], getenv("TEST_SWITCH_LAST_WORDS")) :
		       getenv("TEST_SWITCH_PID_LATE") ?
		       switch_pid_late(argv[2]) : net_switch_main(argv[2]);

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Port forwards and cluster subnets as the user writes them (net/net.c,
 * net/cluster.c): net_port_parse() and net_subnet_parse() on any string.
 * A spec that parses must print canonically as one that parses to the
 * same forward, and a subnet's canonical form must parse to itself. The
 * same string as QEMU's output: a forward net_hostfwd_refused() reads
 * from it has a port and an address that fit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_port(const char *s)
{
	struct net_port p, again;
	struct buf b = BUF_INIT;

	memset(&p, 0, sizeof(p));
	if (net_port_parse(s, &p) < 0)
		return;
	net_port_format(&p, &b);
	memset(&again, 0, sizeof(again));
	if (net_port_parse(b.p, &again) < 0 || strcmp(p.addr, again.addr) ||
	    p.host != again.host || p.guest != again.guest ||
	    p.udp != again.udp)
		abort();
	b.len = 0;
	net_port_hostfwd(&p, &b);
	buf_free(&b);
}

static void check_subnet(const char *s)
{
	struct net_subnet n, again;
	char addr[INET_ADDRSTRLEN];

	if (net_subnet_parse(s, &n) < 0)
		return;
	if (net_subnet_parse(n.cidr, &again) < 0 || again.net != n.net ||
	    again.prefix != n.prefix)
		abort();
	net_node_address(&n, 1, addr);
	net_node_address(&n, 1 << (32 - n.prefix), addr);
}

static void check_refused(const char *s)
{
	struct net_port p;

	if (net_hostfwd_refused(s, &p) &&
	    (p.host < 1 || p.host > 65535 || !p.addr[0] ||
	     memchr(p.addr, '\0', sizeof(p.addr)) == NULL))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xstrndup((const char *)data, size);

	check_port(s);
	check_subnet(s);
	check_refused(s);
	free(s);
	return 0;
}

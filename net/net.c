/* Port-forward specs, free ports and stable MACs. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

static int parse_port(const char *s, size_t len, int allow_zero, int *out)
{
	int v = 0;

	if (len == 0 || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v > 65535 || (v == 0 && !allow_zero))
		return -1;
	*out = v;
	return 0;
}

int net_port_clash(const struct net_port *a, const struct net_port *b)
{
	return a->host && a->host == b->host && a->udp == b->udp &&
	       (!strcmp(a->addr, b->addr) || !strcmp(a->addr, "0.0.0.0") ||
		!strcmp(b->addr, "0.0.0.0"));
}

int net_port_parse(const char *spec, struct net_port *p)
{
	const char *slash = strrchr(spec, '/');
	size_t len = slash ? (size_t)(slash - spec) : strlen(spec);
	const char *c1, *c2 = NULL, *hs;
	struct in_addr ia;

	memset(p, 0, sizeof(*p));
	if (slash) {
		if (!strcmp(slash + 1, "udp"))
			p->udp = 1;
		else if (strcmp(slash + 1, "tcp"))
			return errorf("bad port spec '%s': the protocol after "
				      "'/' must be tcp or udp", spec);
	}
	c1 = memchr(spec, ':', len);
	if (c1)
		c2 = memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - spec));
	if (!c1)
		return errorf("bad port spec '%s': expected "
			      "[ADDR:]HOST:GUEST[/tcp|/udp]", spec);
	if (c2) {
		size_t alen = (size_t)(c1 - spec);

		if (spec[0] == '[')
			return errorf("bad port spec '%s': IPv6 addresses are "
				      "not taken (QEMU's forwards listen on "
				      "IPv4: 127.0.0.1 unless given)", spec);
		if (alen == 0 || alen >= sizeof(p->addr))
			return errorf("bad port spec '%s': empty or overlong "
				      "address", spec);
		memcpy(p->addr, spec, alen);
		p->addr[alen] = '\0';
		if (inet_pton(AF_INET, p->addr, &ia) != 1)
			return errorf("bad port spec '%s': '%s' is not an IPv4 "
				      "address", spec, p->addr);
		hs = c1 + 1;
		c1 = c2;
	} else {
		snprintf(p->addr, sizeof(p->addr), "127.0.0.1");
		hs = spec;
	}
	if (parse_port(hs, (size_t)(c1 - hs), 1, &p->host) < 0)
		return errorf("bad port spec '%s': host port must be 0-65535 "
			      "(0 picks a free one)", spec);
	if (parse_port(c1 + 1, len - (size_t)(c1 + 1 - spec), 0, &p->guest) < 0)
		return errorf("bad port spec '%s': guest port must be 1-65535",
			      spec);
	return 0;
}

const char *net_proto(int udp)
{
	return udp ? "udp" : "tcp";
}

void net_port_format(const struct net_port *p, struct buf *out)
{
	buf_addf(out, "%s:%d:%d/%s", p->addr, p->host, p->guest,
		 net_proto(p->udp));
}

void net_port_hostfwd(const struct net_port *p, struct buf *out)
{
	buf_addf(out, "hostfwd=%s:%s:%d-:%d", net_proto(p->udp), p->addr,
		 p->host, p->guest);
}

int net_hostfwd_refused(const char *out, struct net_port *p)
{
	/* QEMU 7.2's slirp_setup_hostfwd(), quoting the hostfwd's value:
	 * "Could not set up host forwarding rule 'tcp:127.0.0.1:2222-:22'" */
	static const char said[] = "Could not set up host forwarding rule '";
	const char *at = out ? strstr(out, said) : NULL;
	const char *addr, *colon, *dash;
	size_t alen;

	if (!at)
		return 0;
	memset(p, 0, sizeof(*p));
	at += strlen(said);
	if (!strncmp(at, "udp:", 4))
		p->udp = 1;
	else if (strncmp(at, "tcp:", 4))
		return 0;
	addr = at + 4;
	colon = strchr(addr, ':');
	dash = colon ? strchr(colon, '-') : NULL;
	if (!dash)
		return 0;
	alen = (size_t)(colon - addr);
	if (alen == 0 || alen >= sizeof(p->addr) ||
	    parse_port(colon + 1, (size_t)(dash - colon - 1), 0, &p->host) < 0)
		return 0;
	memcpy(p->addr, addr, alen);
	p->addr[alen] = '\0';
	return 1;
}

/* A socket bound to addr:port (0: the kernel picks), its port in *bound;
 * -1 with errno when it cannot be bound. */
static int bound_socket(const char *addr, int port, int udp, int *bound)
{
	struct sockaddr_in sa;
	socklen_t slen = sizeof(sa);
	int fd, e;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* QEMU's slirp sets SO_REUSEADDR too: test the bind it will do. */
	if (!udp)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &slen) == 0) {
		*bound = ntohs(sa.sin_port);
		return fd;
	}
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

static int bind_socket(const char *addr, int port, int udp, int *bound)
{
	int fd = bound_socket(addr, port, udp, bound);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* picks held at most before net_port_pick() gives up */
#define NET_PICK_TRIES 64

/* 1 when one of avoid[0..n) forwards host port port of proto udp. */
static int avoided(const struct net_port *avoid, size_t n, int port, int udp)
{
	for (size_t i = 0; i < n; i++)
		if (avoid[i].host == port && avoid[i].udp == udp)
			return 1;
	return 0;
}

int net_port_pick(struct net_port *p, const struct net_port *avoid, size_t n)
{
	int held[NET_PICK_TRIES], nheld = 0, port = 0, fd = -1, e;

	/* Hold each pick that is avoided, so that the kernel's next pick
	 * is another port: it likes odd ports, and picks the same one
	 * again while that one is free on this address. */
	while (nheld < NET_PICK_TRIES) {
		fd = bound_socket(p->addr, 0, p->udp, &port);
		if (fd < 0 || !avoided(avoid, n, port, p->udp))
			break;
		held[nheld++] = fd;
		fd = -1;
	}
	e = errno;
	for (int i = 0; i < nheld; i++)
		close(held[i]);
	if (fd >= 0) {
		close(fd);
		p->host = port;
		return 0;
	}
	if (nheld == NET_PICK_TRIES)
		return errorf("cannot find a free %s port on %s that is not "
			      "forwarded already", net_proto(p->udp),
			      p->addr);
	errno = e;
	return error_errno("cannot find a free %s port on %s",
			   net_proto(p->udp), p->addr);
}

int net_port_is_free(const char *addr, int port, int udp)
{
	int got;

	return bind_socket(addr, port, udp, &got) == 0;
}

int net_port_check(const char *addr, int port, int udp)
{
	int got;

	if (bind_socket(addr, port, udp, &got) == 0)
		return 0;
	if (errno == EADDRINUSE)
		return errorf("host port %s:%d/%s is already in use; pick "
			      "another (or 0 for a free one)", addr, port,
			      net_proto(udp));
	if (errno == EACCES && port < 1024)
		return errorf("host port %s:%d/%s is below 1024: only root "
			      "may bind it (sysctl "
			      "net.ipv4.ip_unprivileged_port_start); pick one "
			      "from 1024 up (or 0 for a free one)", addr, port,
			      net_proto(udp));
	if (errno == EADDRNOTAVAIL)
		return errorf("cannot bind host port %s:%d/%s: this host has "
			      "no address %s; give one it has (127.0.0.1 "
			      "unless given)", addr, port, net_proto(udp),
			      addr);
	return error_errno("cannot bind host port %s:%d/%s", addr, port,
			   net_proto(udp));
}

void net_mac(const char *ns, const char *name, int nic, char out[18])
{
	char key[128];
	uint64_t h;

	/* A longer key is hashed cut to 127 bytes, as it always was: the MACs
	 * of existing VMs must not change. */
	snprintf(key, sizeof(key), "%s/%s/%d", ns, name, nic);
	h = fnv1a64(key, strlen(key));
	snprintf(out, 18, "02:6e:%02x:%02x:%02x:%02x",
		 (unsigned)(h >> 56) & 0xff, (unsigned)(h >> 48) & 0xff,
		 (unsigned)(h >> 40) & 0xff, (unsigned)(h >> 32) & 0xff);
}

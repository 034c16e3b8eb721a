/*
 * The cluster network's router advertisements: "there is no router here".
 *
 * A node's private NIC has a static address and nothing else, but
 * systemd-networkd (the renderer cloud-init picks on Debian) accepts IPv6
 * router advertisements on it by default and, until one comes or its
 * three solicitations time out (12 s), does not call the link configured:
 * systemd-networkd-wait-online, and so cloud-init's network stage, wait
 * those 12 s on every boot of every node. cloud-init 22.4's networkd
 * renderer drops network-config's accept-ra for a link without DHCPv6, so
 * the guest cannot be told before its first boot. The network tells it
 * instead: the switch (net/switch.c) answers each router solicitation
 * with an advertisement of router lifetime 0 (RFC 4861: not a default
 * router) and no prefix, which changes nothing in the guest but ends its
 * wait.
 *
 * networkd sends its first solicitation only 0.5-1.5 s after the link's
 * IPv6 came up (sd-ndisc's timer), all of it idle time on the boot's
 * path. A node's IPv6 coming up is seen on the network, though: its
 * kernel reports joining the solicited-node group of its new address
 * (MLD). The switch advertises to a node that reports, unasked, a few
 * times in the 1.5 s after, so that one lands once networkd listens.
 *
 * This file makes the frames; it is pure.
 */
#include <stdint.h>
#include <string.h>

#include "net.h"

/* Offsets in an Ethernet frame carrying IPv6 and ICMPv6. */
#define ETH_DST 0
#define ETH_SRC 6
#define ETH_TYPE 12
#define IP6 14
#define IP6_PLEN (IP6 + 4)
#define IP6_NEXT (IP6 + 6)
#define IP6_HOPS (IP6 + 7)
#define IP6_SRC (IP6 + 8)
#define IP6_DST (IP6 + 24)
#define ICMP6 (IP6 + 40)

#define PROTO_ICMP6 58
#define ND_ROUTER_SOLICIT 133
#define ND_ROUTER_ADVERT 134
#define ND_OPT_SOURCE_LLADDR 1
#define RA_LEN (16 + 8) /* the advertisement and our link-layer address */
_Static_assert(ICMP6 + RA_LEN == NET_RA_FRAME, "net.h says so");

static unsigned get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static void put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

/* ICMPv6's checksum: over the IPv6 pseudo-header and the message. */
static unsigned icmp6_sum(const unsigned char *ip6, const unsigned char *msg,
			  size_t len)
{
	uint32_t sum = PROTO_ICMP6 + (uint32_t)len;

	for (size_t i = 0; i < 32; i += 2) /* source and destination */
		sum += get16(ip6 + 8 + i);
	for (size_t i = 0; i < len; i += 2)
		sum += i + 1 < len ? get16(msg + i) : (unsigned)msg[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

/* The advertisement to the node that sent in: to its address; to all
 * nodes when it has none yet. out holds ICMP6 + RA_LEN bytes. */
static size_t advertise(const unsigned char *in, const unsigned char mac[6],
			unsigned char *out)
{
	static const unsigned char all_nodes_mac[6] = { 0x33, 0x33, 0, 0, 0,
							1 };
	static const unsigned char unspecified[16];
	unsigned char *ip = out + IP6, *ra = out + ICMP6;

	memset(out, 0, ICMP6 + RA_LEN);
	/* to the one who asked; to all nodes when it has no address yet */
	if (memcmp(in + IP6_SRC, unspecified, 16)) {
		memcpy(out + ETH_DST, in + ETH_SRC, 6);
		memcpy(out + IP6_DST, in + IP6_SRC, 16);
	} else {
		memcpy(out + ETH_DST, all_nodes_mac, 6);
		out[IP6_DST] = 0xff;
		out[IP6_DST + 1] = 0x02;
		out[IP6_DST + 15] = 1;
	}
	memcpy(out + ETH_SRC, mac, 6);
	put16(out + ETH_TYPE, 0x86dd);
	ip[0] = 0x60;
	put16(out + IP6_PLEN, RA_LEN);
	out[IP6_NEXT] = PROTO_ICMP6;
	out[IP6_HOPS] = 255;
	/* from our link-local address, fe80::EUI-64 of mac */
	out[IP6_SRC] = 0xfe;
	out[IP6_SRC + 1] = 0x80;
	out[IP6_SRC + 8] = mac[0] ^ 0x02;
	memcpy(out + IP6_SRC + 9, mac + 1, 2);
	out[IP6_SRC + 11] = 0xff;
	out[IP6_SRC + 12] = 0xfe;
	memcpy(out + IP6_SRC + 13, mac + 3, 3);
	/* hop limit, flags, router lifetime, reachable and retransmission
	 * times all 0: unspecified, and no default router */
	ra[0] = ND_ROUTER_ADVERT;
	ra[16] = ND_OPT_SOURCE_LLADDR;
	ra[17] = 1; /* in units of 8 bytes */
	memcpy(ra + 18, mac, 6);
	put16(ra + 2, icmp6_sum(ip, ra, RA_LEN));
	return ICMP6 + RA_LEN;
}

/* An IPv6 frame from a node (a unicast source that is not us) whose IPv6
 * header carries next header next and the whole payload. */
static int ipv6_from_node(const unsigned char *in, size_t n,
			  const unsigned char mac[6], unsigned next)
{
	return n >= ICMP6 && get16(in + ETH_TYPE) == 0x86dd &&
	       (in[IP6] >> 4) == 6 && in[IP6_NEXT] == next &&
	       ICMP6 + get16(in + IP6_PLEN) <= n && !(in[ETH_SRC] & 1) &&
	       memcmp(in + ETH_SRC, mac, 6) != 0;
}

size_t net_ra_answer(const unsigned char *in, size_t n,
		     const unsigned char mac[6], unsigned char *out,
		     size_t cap)
{
	size_t plen;

	if (cap < ICMP6 + RA_LEN || !ipv6_from_node(in, n, mac, PROTO_ICMP6) ||
	    in[IP6_HOPS] != 255)
		return 0;
	plen = get16(in + IP6_PLEN);
	if (plen < 8 || in[ICMP6] != ND_ROUTER_SOLICIT || in[ICMP6 + 1] != 0 ||
	    icmp6_sum(in + IP6, in + ICMP6, plen) != 0)
		return 0;
	return advertise(in, mac, out);
}

#define PROTO_HOP_BY_HOP 0
#define MLD_REPORT 131
#define MLD2_REPORT 143

size_t net_ra_unasked(const unsigned char *in, size_t n,
		      const unsigned char mac[6], unsigned char *out,
		      size_t cap)
{
	size_t plen, hop, icmp;

	/* MLD goes behind a hop-by-hop header (its router alert) */
	if (cap < ICMP6 + RA_LEN ||
	    !ipv6_from_node(in, n, mac, PROTO_HOP_BY_HOP))
		return 0;
	plen = get16(in + IP6_PLEN);
	if (plen < 8)
		return 0;
	hop = ((size_t)in[ICMP6 + 1] + 1) * 8;
	icmp = ICMP6 + hop;
	if (hop + 8 > plen || in[ICMP6] != PROTO_ICMP6 ||
	    (in[icmp] != MLD_REPORT && in[icmp] != MLD2_REPORT) ||
	    in[icmp + 1] != 0 ||
	    icmp6_sum(in + IP6, in + icmp, plen - hop) != 0)
		return 0;
	return advertise(in, mac, out);
}

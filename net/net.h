/*
 * net: what a VM's user-mode network needs from the host: port-forward
 * specs, free ports on 127.0.0.1, and MAC addresses that stay the same
 * across restarts.
 *
 * The parsers and formatters are pure. net_port_free() and
 * net_port_check() bind real sockets on the host. Functions return 0 or -1
 * having said why (naming the spec or the port).
 */
#ifndef NOOK_NET_H
#define NOOK_NET_H

#include <stddef.h>

#include "common.h"

/* A forward from ADDR:HOST on the host to GUEST in the guest. */
struct net_port {
	char addr[64]; /* an IPv4 address; "127.0.0.1" unless given */
	int host;      /* 0: pick a free one when the VM starts */
	int guest;
	int udp;       /* 0 tcp, 1 udp */
};

/*
 * Parse "[ADDR:]HOST:GUEST[/tcp|/udp]". Ports are 1-65535 (HOST may be 0),
 * ADDR a dotted IPv4 address.
 */
int net_port_parse(const char *spec, struct net_port *p);

/* Append the spec's canonical form "ADDR:HOST:GUEST/PROTO" to out. */
void net_port_format(const struct net_port *p, struct buf *out);

/* Append QEMU's user-net "hostfwd=PROTO:ADDR:HOST-:GUEST" to out. */
void net_port_hostfwd(const struct net_port *p, struct buf *out);

/*
 * Pick a free port on addr for proto (0 tcp, 1 udp) by letting the kernel
 * choose one. The port may be taken again before it is used; QEMU's own
 * error is the last word then.
 */
int net_port_free(const char *addr, int udp, int *port);

/* 1 when port on addr can be bound now, 0 when not; says nothing. */
int net_port_is_free(const char *addr, int port, int udp);
/* 0 when port on addr can be bound now; else -1 saying it is in use. */
int net_port_check(const char *addr, int port, int udp);

/*
 * A stable MAC for NIC number nic of VM name in namespace ns ("" for the
 * local one). The scheme: 02:6e (locally administered, unicast; 0x6e is
 * 'n') then the first four bytes of the FNV-1a 64-bit hash of
 * "ns/name/nic". The same inputs always give the same address, so a
 * restarted guest keeps its interface names and DHCP lease.
 */
void net_mac(const char *ns, const char *name, int nic, char out[18]);

#endif

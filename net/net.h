/*
 * net: what a VM's network needs from the host: port-forward specs, free
 * ports on 127.0.0.1, MAC addresses that stay the same across restarts, and
 * a cluster's private network.
 *
 * The parsers and formatters are pure. net_port_pick() and
 * net_port_check() bind real sockets on the host; net_switch_*() run the
 * cluster's switch. Functions return 0 or -1 having said why (naming the
 * spec, the port or the path) through errorf().
 *
 * A cluster's private network (net/cluster.c, net/switch.c, net/ra.c):
 * - Address plan: an IPv4 subnet of prefix /16 to /29, NET_SUBNET_DEFAULT
 *   unless the user picks one. Node N gets network address + N (node 1 is
 *   .1), up to the last address before the broadcast one; there is no
 *   gateway and no DNS on it: the uplink keeps both. A subnet overlapping
 *   slirp's 10.0.2.0/24, loopback, link-local, multicast or 0.0.0.0/8 is
 *   refused.
 * - MACs: the uplink's is net_mac("", vmname, 0) = 02:6e:xx:xx:xx:xx. A
 *   cluster NIC's is 06:6e:AA:BB:NN:NN: AA:BB the first two hashed bytes of
 *   net_mac("cluster", cluster, 0), NN:NN the node number (big-endian). The
 *   first octet (0x06, locally administered unicast) keeps it apart from
 *   every uplink; the node number keeps the nodes of a cluster apart.
 * - Guest side: cloud-init network-config version 2 with two ethernets,
 *   NET_NC_UPLINK (dhcp4) and NET_NC_CLUSTER (the static address), each
 *   matched by its MAC; a user's own network-config is merged with it.
 * - Host side: one learning switch per cluster, nook's own process
 *   (net/switch.c, where the README's "why" is), in a 0700 directory of
 *   the caller's: only unix sockets, no root, nothing on TCP or UDP.
 *   Nodes join it through QEMU's VDE backend (net_switch_netdev()); a node
 *   that restarts or is added just connects again. Calling sequence:
 *   net_switch_start(dir) before the first node, net_switch_alive(dir) for
 *   status, net_switch_stop(dir) after the last one.
 * - No router, said so (net/ra.c): the switch answers IPv6 router
 *   solicitations with "no default router, no prefix" (MAC
 *   net_mac("ra", dir, 0)); without an answer a node's networkd holds its
 *   private NIC unconfigured, and so cloud-init, for 12 s on every boot.
 */
#ifndef NOOK_NET_H
#define NOOK_NET_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

/* 1 when a and b forward the same fixed host port (the same protocol, on
 * the same address or either on 0.0.0.0): the second would not bind. */
int net_port_clash(const struct net_port *a, const struct net_port *b);

/* "udp" or "tcp". */
const char *net_proto(int udp);

/* Append the spec's canonical form "ADDR:HOST:GUEST/PROTO" to out. */
void net_port_format(const struct net_port *p, struct buf *out);

/* Append QEMU's user-net "hostfwd=PROTO:ADDR:HOST-:GUEST" to out. */
void net_port_hostfwd(const struct net_port *p, struct buf *out);

/*
 * Set p->host to a free port on p->addr for p's protocol, chosen by the
 * kernel, and not the host port of any of avoid[0..n) of that protocol
 * (a port free on 127.0.0.2 may be one a VM holds on 127.0.0.1 already;
 * a VM's forwards are told apart by port alone). The port may be taken
 * again before QEMU binds it: net_hostfwd_refused() reads QEMU's word.
 */
int net_port_pick(struct net_port *p, const struct net_port *avoid, size_t n);

/* 1 when QEMU's output out says it could not set up a hostfwd, with
 * that forward's protocol, address and host port in *p (its guest port
 * 0); 0 when it says no such thing. */
int net_hostfwd_refused(const char *out, struct net_port *p);

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

/* --- a cluster's address plan and NICs (net/cluster.c) --- */

/* The subnet a new cluster gets unless --subnet says otherwise. */
#define NET_SUBNET_DEFAULT "10.77.0.0/24"
/* The ethernets ids of nook's two NICs in a node's network-config. */
#define NET_NC_UPLINK "nook-uplink"
#define NET_NC_CLUSTER "nook-cluster"

struct net_subnet {
	uint32_t net;   /* the network address, host byte order */
	int prefix;     /* 16..29 */
	char cidr[INET_ADDRSTRLEN + 3]; /* canonical "A.B.C.D/P" */
};

/*
 * Parse an IPv4 "A.B.C.D/P" with P 16..29 and no host bits set. Refuses a
 * subnet overlapping slirp's 10.0.2.0/24, loopback and other special
 * ranges, naming the range.
 */
int net_subnet_parse(const char *cidr, struct net_subnet *s);
/* The same, saying why in why instead of on stderr. */
int net_subnet_check(const char *cidr, struct net_subnet *s,
		     struct buf *why);

/* The address of node (1..) in s; -1 saying how many nodes s has room for. */
int net_node_address(const struct net_subnet *s, int node,
		     char out[INET_ADDRSTRLEN]);

/* The MAC of node (1..65535)'s cluster NIC: see the scheme above. */
void net_node_mac(const char *cluster, int node, char out[18]);

/*
 * Append a node's network-config (version 2): the uplink by uplink_mac
 * with DHCP, the cluster NIC by node_mac with addr/prefix and nothing
 * else. Pure; the arguments are as net_mac()/net_node_*() make them.
 */
void net_node_network_config(const char *uplink_mac, const char *node_mac,
			     const char *addr, int prefix, struct buf *out);

/*
 * Append to out the merge of a user's network-config (len bytes of YAML,
 * version 2, bare or under "network:") with ours (from
 * net_node_network_config()): the user's keys and ethernets plus ours. -1
 * saying why when they conflict: another version, one of our ids or MACs,
 * a match that could take our NICs, an address in our subnet.
 */
int net_network_config_merge(const char *user, size_t len, const char *ours,
			     struct buf *out);

/* --- the cluster's switch (net/switch.c) --- */

/*
 * What the switch's directory's path gets for its longest socket (a
 * plug's, with a 7-digit pid, or a port's): strlen(dir) +
 * sizeof(NET_SWITCH_LONGEST_SOCKET) must be at most sizeof(sun_path).
 */
#define NET_SWITCH_LONGEST_SOCKET "/sw/.4194304-00000"

/*
 * Start the switch of directory dir (absolute, the caller's own, mode
 * 0700), a process of its own, unless it runs already. 0 once it takes
 * nodes. QEMU does not reconnect: nodes that were on a switch that died
 * stay cut off until they restart.
 */
int net_switch_start(const char *dir);

/* The switch's pid, or 0 when it does not run (it holds dir/switch.lock;
 * an older nook's vde_switch counts too). */
pid_t net_switch_alive(const char *dir);

/* Stop the switch (SIGTERM, then SIGKILL after a few seconds) and remove
 * its sockets. 0 when it is gone or was not running. */
int net_switch_stop(const char *dir);
/* The same unless in_use(ctx), asked under the lock that starts take
 * too: a node that starts meanwhile finds the switch, or starts it. 1
 * when it was left running for that. */
int net_switch_stop_unused(const char *dir, int (*in_use)(void *ctx),
			   void *ctx);

/*
 * The switch's process is nook again, run as "nook NET_SWITCH_ARGV1 DIR"
 * with fd 3 the pipe net_switch_start() reads; main() hands it to
 * net_switch_main(), which returns only when it cannot go on.
 */
#define NET_SWITCH_ARGV1 "__switch"
int net_switch_main(const char *dir);

/*
 * Append the value of QEMU's -netdev for node (1..) with netdev id id, on
 * the switch of dir, its path escaped for libvdeplug and for QEMU's option
 * syntax. Every connection gets a free port: node is unused today.
 */
void net_switch_netdev(const char *dir, int node, const char *id,
		       struct buf *out);

/* --- the network's router advertisements (net/ra.c) --- */

/*
 * If frame (n bytes, Ethernet) is a valid IPv6 router solicitation from a
 * node (a unicast source MAC other than mac), write
 * to out (cap bytes) the answer of a "router" of link-layer address mac
 * that is no router (lifetime 0, no prefix) and return its length; else
 * 0. Without it a node's networkd waits 12 s for one on every boot.
 */
size_t net_ra_answer(const unsigned char *frame, size_t n,
		     const unsigned char mac[6], unsigned char *out,
		     size_t cap);

/*
 * The same advertisement for a node whose IPv6 comes up, told by frame:
 * its valid MLD report (joining its new address's solicited-node group).
 * networkd listens for advertisements from then on but solicits one only
 * 0.5-1.5 s later. 0 for any other frame.
 */
size_t net_ra_unasked(const unsigned char *frame, size_t n,
		      const unsigned char mac[6], unsigned char *out,
		      size_t cap);

/* The length of what net_ra_answer() and net_ra_unasked() make. */
#define NET_RA_FRAME 78

#endif

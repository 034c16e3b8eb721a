/* A cluster's record and its nodes, shared by vm/cluster.c (the record,
 * the names, the network, /etc/hosts) and vm/nodes.c (what runs on every
 * node at once: start, stop, suspend and the like, delete). Private to
 * vm/; vm.h has what the rest of nook sees. */
#ifndef NOOK_VM_CLUSTER_H
#define NOOK_VM_CLUSTER_H

#include "internal.h"

#define MAX_NODES VM_CLUSTER_MAX_NODES
/* Node numbers go into the cluster NIC's MAC (two bytes). */
#define MAX_NODE_NUMBER 65534

/* A node of the record: its name and its number, which gives its
 * address (the subnet's + number) and its MAC, for good. */
struct member {
	char *name;
	int node;
};

struct cluster {
	char *name;
	char *subnet;
	int nodes;             /* the highest node number */
	struct member *m;      /* in order of their numbers */
	size_t n;
};

/* What cluster_read() found. */
enum record {
	REC_OK = 0,
	REC_NONE = 1,     /* no such cluster */
	REC_BROKEN = -1,  /* a record that cannot be had */
	REC_ORPHAN = -2,  /* a broken one, and no VM is a node of it */
};

/* A member as a VM: none (a gap, or a VM that only has a node's name),
 * a node, or one whose record cannot be read. */
enum node_kind { NODE_NONE, NODE_OK, NODE_BROKEN };

/* The record: DATA/clusters/NAME.json */
char *record_path(const struct nook_dirs *d, const char *name);
enum record cluster_read(const struct nook_dirs *d, const char *name,
			 struct cluster *c, struct buf *why);
int cluster_load(const struct nook_dirs *d, const char *name,
		 struct cluster *c);
enum record cluster_peek(const struct nook_dirs *d, const char *name,
			 struct cluster *c);
int cluster_save(const struct nook_dirs *d, const struct cluster *c);
void cluster_free(struct cluster *c);
int plain_members(const struct cluster *c);
void add_member(struct cluster *c, const char *name, int node);
const struct member *find_member(const struct cluster *c,
				 const char *name);

/* Its nodes and their names */
char *node_name(const char *cluster, int i);
int node_number(const char *s);
enum node_kind node_kind(const struct nook_dirs *d, const char *name,
			 const char *cluster);
int is_member(const struct nook_dirs *d, const char *name,
	      const char *cluster);
void members(const struct nook_dirs *d, const struct cluster *c,
	     struct strvec *out, struct strvec *why);
int no_nodes(const char *name);
int check_names(const struct nook_dirs *d, const char *name,
		const struct cluster *c);

/* Its lock (saying in it what this nook does: a word vm_doing_words()
 * knows), its network's leftovers, its nodes' /etc/hosts */
int cluster_lock(const struct nook_dirs *d, const char *name,
		 const char *doing, int *fd);
int cluster_trylock(const struct nook_dirs *d, const char *name,
		    const char *doing, int *fd);
int drop_leftovers(const struct nook_dirs *d, const char *name);
int no_cluster(const struct nook_dirs *d, const char *name);
void host_lines(const struct cluster *c, struct strvec *out);
void write_hosts(struct vm *vm, const struct strvec *lines, int ready);

#endif

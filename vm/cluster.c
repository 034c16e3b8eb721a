/* Clusters: VMs NAME-1..NAME-N on one private network. The record is
 * DATA/clusters/NAME.json (its subnet and how many nodes); each node is a
 * full VM whose spec says which node of which cluster it is. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cidata.h"
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

static void cluster_free(struct cluster *c)
{
	free(c->name);
	free(c->subnet);
	for (size_t i = 0; i < c->n; i++)
		free(c->m[i].name);
	free(c->m);
	memset(c, 0, sizeof(*c));
}

static char *record_path(const struct nook_dirs *d, const char *name)
{
	return xasprintf("%s/clusters/%s.json", d->data, name);
}

char *vm_cluster_node_name(const char *cluster, const char *group, int i)
{
	return group ? xasprintf("%s-%s-%d", cluster, group, i) :
		       xasprintf("%s-%d", cluster, i);
}

static char *node_name(const char *cluster, int i)
{
	return vm_cluster_node_name(cluster, NULL, i);
}

static void add_member(struct cluster *c, const char *name, int node)
{
	c->m = xrealloc(c->m, sizeof(*c->m) * (c->n + 1));
	c->m[c->n].name = xstrdup(name);
	c->m[c->n++].node = node;
	if (node > c->nodes)
		c->nodes = node;
}

static const struct member *find_member(const struct cluster *c,
					const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->m[i].name, name))
			return &c->m[i];
	return NULL;
}

/* The record's "members": each {"name", "node"}, numbers rising. A
 * record without it (every plain cluster's) has NAME-1..NAME-nodes. */
static int load_members(const json_t *j, struct cluster *c)
{
	const json_t *ms = json_object_get(j, "members"), *e;
	size_t i;
	int nodes = c->nodes;

	if (!ms) {
		for (int k = 1; k <= nodes && nodes <= MAX_NODES; k++) {
			char *n = node_name(c->name, k);

			add_member(c, n, k);
			free(n);
		}
		return 0;
	}
	if (!json_is_array(ms) || json_array_size(ms) > MAX_NODES)
		return -1;
	c->nodes = 0;
	json_array_foreach(ms, i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		json_int_t node = json_integer_value(json_object_get(e, "node"));

		if (!name || !vm_name_valid(name) || node <= c->nodes ||
		    node > MAX_NODE_NUMBER || find_member(c, name))
			return -1;
		add_member(c, name, (int)node);
	}
	return 0;
}

#define SUBNET_LEN (INET_ADDRSTRLEN + 3) /* "A.B.C.D/P" */

/* The subnet of a node's spec into cidr: its address less its number,
 * within its prefix. 0, or -1 when the spec holds no such address. */
static int spec_subnet(const struct vm_spec *s, char cidr[SUBNET_LEN])
{
	char addr[INET_ADDRSTRLEN];
	struct in_addr ia;
	uint32_t host, net, mask;

	if (!s->address || inet_pton(AF_INET, s->address, &ia) != 1 ||
	    s->prefix < 16 || s->prefix > 29 || s->node < 1 ||
	    s->node > MAX_NODE_NUMBER)
		return -1;
	mask = ~0u << (32 - s->prefix);
	host = ntohl(ia.s_addr);
	net = host - (uint32_t)s->node;
	/* the node's number is its host part, short of the broadcast */
	if (net & ~mask || (host & mask) != net || (host & ~mask) == ~mask)
		return -1;
	ia.s_addr = htonl(net);
	inet_ntop(AF_INET, &ia, addr, sizeof(addr));
	snprintf(cidr, SUBNET_LEN, "%s/%d", addr, s->prefix);
	return 0;
}

static int cmp_member(const void *a, const void *b)
{
	return ((const struct member *)a)->node -
	       ((const struct member *)b)->node;
}

/* vm, a node of c, into c's members, its subnet the first node's (kept
 * in first). -1 saying why. */
static int add_node(struct cluster *c, const struct vm *vm,
		    char first[SUBNET_LEN], struct buf *why)
{
	char sn[SUBNET_LEN];

	if (spec_subnet(&vm->spec, sn) < 0) {
		buf_addf(why, "node %s's address %s/%d is no subnet's node %d",
			 vm->name, vm->spec.address ? vm->spec.address :
			 "(none)", vm->spec.prefix, vm->spec.node);
		return -1;
	}
	if (c->n && strcmp(sn, first)) {
		buf_addf(why, "node %s is on %s, node %s on %s", c->m[0].name,
			 first, vm->name, sn);
		return -1;
	}
	memcpy(first, sn, SUBNET_LEN);
	add_member(c, vm->name, vm->spec.node);
	return 0;
}

/*
 * The record of cluster name made again from its nodes' specs, each of
 * which says its cluster, its number and its address: 0 and *c filled;
 * -1 saying why in why, or with why empty when no VM is a node of name.
 * Any VM whose own record cannot be read may be a node: none is made
 * then, rather than one that lacks it and would hand its number out.
 */
static int rebuild(const struct nook_dirs *d, const char *name,
		   struct cluster *c, struct buf *why)
{
	char *vms = xasprintf("%s/vms", d->data), first[SUBNET_LEN] = "";
	DIR *dir = opendir(vms);
	struct dirent *e;

	memset(c, 0, sizeof(*c));
	c->name = xstrdup(name);
	while (dir && !why->len && (e = readdir(dir))) {
		size_t k = strlen(name);
		struct vm *vm;

		/* a node's name is the cluster's and more (NAME-N, NAME-G-N):
		 * no other VM is opened */
		if (strncmp(e->d_name, name, k) || e->d_name[k] != '-' ||
		    !vm_name_valid(e->d_name))
			continue;
		if (vm_open(d, e->d_name, 0, &vm) < 0)
			buf_addf(why, "VM %s's record cannot be read (mend it, "
				 "or 'nook local delete %s --force')",
				 e->d_name, e->d_name);
		else if (vm->exists && vm->spec.cluster &&
			 !strcmp(vm->spec.cluster, name))
			add_node(c, vm, first, why);
		vm_close(vm);
	}
	if (dir)
		closedir(dir);
	free(vms);
	if (c->n)
		qsort(c->m, c->n, sizeof(*c->m), cmp_member);
	for (size_t i = 1; i < c->n && !why->len; i++)
		if (c->m[i].node == c->m[i - 1].node)
			buf_addf(why, "nodes %s and %s are both node %d",
				 c->m[i - 1].name, c->m[i].name, c->m[i].node);
	if (!why->len && c->n) {
		struct net_subnet sn;
		struct buf bad = BUF_INIT;

		/* the nodes' own records, hand-edited alike */
		if (net_subnet_check(first, &sn, &bad) < 0)
			buf_addf(why, "its nodes' addresses are not on a subnet "
				 "a cluster can have: %s", bad.p);
		buf_free(&bad);
	}
	if (why->len || !c->n) {
		cluster_free(c);
		return -1;
	}
	c->subnet = xstrdup(first);
	return 0;
}

/* Read path into *c: 0; -1 saying what is wrong with it in why; -2 when
 * it cannot even be opened (EACCES). */
static int parse_record(const char *path, const char *name, struct cluster *c,
			struct buf *why)
{
	json_error_t jerr;
	struct stat st;
	json_t *j;
	int ret = -1;

	memset(c, 0, sizeof(*c));
	/* a FIFO would hang the read */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		buf_addf(why, "%s: not a file", path);
		return -1;
	}
	j = json_load_file(path, 0, &jerr);
	if (!j) {
		buf_addf(why, "%s:%d: %s", path, jerr.line, jerr.text);
		return json_error_code(&jerr) == json_error_cannot_open_file ?
		       -2 : -1;
	}
	c->name = xstrdup(name);
	c->nodes = (int)json_integer_value(json_object_get(j, "nodes"));
	if (json_string_value(json_object_get(j, "subnet")))
		c->subnet = xstrdup(json_string_value(json_object_get(j,
								       "subnet")));
	if (!c->subnet || c->nodes < 1 || c->nodes > MAX_NODE_NUMBER ||
	    load_members(j, c) < 0 || !c->n) {
		buf_addf(why, "%s: not a nook cluster record (its subnet, "
			 "nodes or members are missing or wrong)", path);
	} else {
		struct net_subnet sn;
		struct buf bad = BUF_INIT;

		/* one nook did not write (any start checks its --subnet) */
		if (net_subnet_check(c->subnet, &sn, &bad) < 0)
			buf_addf(why, "%s: not a subnet a cluster can have: %s",
				 path, bad.p);
		else
			ret = 0;
		buf_free(&bad);
	}
	json_decref(j);
	if (ret < 0)
		cluster_free(c);
	return ret;
}

static int cluster_trylock(const struct nook_dirs *d, const char *name,
			   int *fd);
static int cluster_save(const struct nook_dirs *d, const struct cluster *c);

/* c, rebuilt because the record at path is broken (said), saved under
 * the cluster's lock: unless another nook holds it or this one only
 * looks, or another mended the record meanwhile (then c is what the
 * record says, and nothing is said). */
static void save_rebuilt(const struct nook_dirs *d, const char *path,
			 struct cluster *c, const char *said)
{
	struct buf scratch = BUF_INIT;
	struct cluster again;
	int lock, saved = 0;

	if (!vm_looking_only() && cluster_trylock(d, c->name, &lock) == 0) {
		if (parse_record(path, c->name, &again, &scratch) == 0) {
			cluster_free(c);
			*c = again;
			close(lock);
			buf_free(&scratch);
			return;
		}
		saved = cluster_save(d, c) == 0;
		close(lock);
	}
	buf_free(&scratch);
	warnf("%s; %s the specs of its %zu node%s", said,
	      saved ? "rebuilt from" : "using", c->n, c->n == 1 ? "" : "s");
}

/* What cluster_read() found. */
enum record {
	REC_OK = 0,
	REC_NONE = 1,     /* no such cluster */
	REC_BROKEN = -1,  /* a record that cannot be had */
	REC_ORPHAN = -2,  /* a broken one, and no VM is a node of it */
};

/*
 * The record of cluster name into *c, quietly: why says what is wrong
 * with a broken one. One that does not parse, or is gone while VMs say
 * they are its nodes, is rebuilt from them (rebuild(), save_rebuilt()),
 * which is said on stderr.
 */
static enum record cluster_read(const struct nook_dirs *d, const char *name,
				struct cluster *c, struct buf *why)
{
	char *path;
	struct buf whynot = BUF_INIT;
	enum record rc = REC_BROKEN;

	memset(c, 0, sizeof(*c));
	if (!vm_name_valid(name)) {
		buf_addf(why, "\"%s\" is no cluster's name", name);
		return REC_NONE;
	}
	path = record_path(d, name);
	if (access(path, F_OK) < 0 && errno == ENOENT) {
		/* none, unless VMs say they are its nodes */
		rc = REC_NONE;
		buf_addf(why, "%s: missing", path);
		if (rebuild(d, name, c, &whynot) == 0) {
			save_rebuilt(d, path, c, why->p);
			rc = REC_OK;
		} else if (whynot.len) {
			buf_addf(why, ", and it cannot be rebuilt from the VMs "
				 "that say they are its nodes: %s", whynot.p);
			rc = REC_BROKEN;
		}
		if (rc != REC_BROKEN)
			buf_free(why);
	} else {
		switch (parse_record(path, name, c, why)) {
		case 0:
			rc = REC_OK;
			break;
		case -2: /* not a broken record: one we may not read */
			break;
		default:
			if (rebuild(d, name, c, &whynot) == 0) {
				save_rebuilt(d, path, c, why->p);
				buf_free(why);
				rc = REC_OK;
			} else if (whynot.len) {
				buf_addf(why, ", and it cannot be rebuilt "
					 "from its nodes: %s", whynot.p);
			} else {
				rc = REC_ORPHAN;
			}
		}
	}
	buf_free(&whynot);
	free(path);
	return rc;
}

/* cluster_read(), saying why when the record cannot be had: 0 and *c
 * filled; 1 when there is no such cluster; -1. */
static int cluster_load(const struct nook_dirs *d, const char *name,
			struct cluster *c)
{
	struct buf why = BUF_INIT;
	int rc = cluster_read(d, name, c, &why);

	if (rc == REC_ORPHAN)
		buf_addf(&why, ", and no VM is a node of cluster %s to rebuild "
			 "it from: 'nook local delete %s' forgets it", name,
			 name);
	if (rc < 0)
		errorf("%s", why.p);
	buf_free(&why);
	return rc < 0 ? -1 : rc;
}

/* cluster_read(), why dropped */
static enum record cluster_peek(const struct nook_dirs *d, const char *name,
				struct cluster *c)
{
	struct buf why = BUF_INIT;
	enum record rc = cluster_read(d, name, c, &why);

	buf_free(&why);
	return rc;
}

/* 1 when every member is NAME-N with N its number: the plain record. */
static int plain_members(const struct cluster *c)
{
	for (size_t i = 0; i < c->n; i++) {
		char *n = node_name(c->name, c->m[i].node);
		int same = !strcmp(n, c->m[i].name);

		free(n);
		if (!same)
			return 0;
	}
	return 1;
}

static int cluster_save(const struct nook_dirs *d, const struct cluster *c)
{
	char *path = record_path(d, c->name);
	char *dir = xasprintf("%s/clusters", d->data);
	json_t *j = json_pack("{s:s,s:s,s:i}", "name", c->name, "subnet",
			      c->subnet, "nodes", c->nodes);
	char *s;
	int ret;

	/* a plain cluster's record stays as it always was */
	if (!plain_members(c)) {
		json_t *ms = json_array();

		for (size_t i = 0; i < c->n; i++)
			json_array_append_new(ms, json_pack("{s:s,s:i}", "name",
				c->m[i].name, "node", c->m[i].node));
		json_object_set_new(j, "members", ms);
	}
	s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	ret = mkdir_p(dir, 0700) < 0 ? -1 :
	      write_file_atomic(path, s, strlen(s), 0600);
	free(s);
	json_decref(j);
	free(dir);
	free(path);
	return ret;
}

int vm_cluster_exists(const struct nook_dirs *d, const char *name)
{
	struct stat st;
	struct cluster c;
	char *path;
	int ret;

	/* ../vms/web/vm is no cluster: a name never leaves clusters/ */
	if (!vm_name_valid(name))
		return 0;
	path = record_path(d, name);
	ret = stat(path, &st) == 0;
	free(path);
	if (ret)
		return ret;
	/* no record: a plain VM's name, or a record removed while its
	 * nodes remain, which cluster_read() makes again */
	path = xasprintf("%s/vms/%s/vm.json", d->data, name);
	if (stat(path, &st) < 0 && cluster_peek(d, name, &c) == REC_OK) {
		cluster_free(&c);
		ret = 1;
	}
	free(path);
	return ret;
}

char *vm_cluster_subnet(const struct nook_dirs *d, const char *name)
{
	struct cluster c;
	struct net_subnet sn;
	char *ret = NULL;
	int rc = cluster_load(d, name, &c);

	if (rc) {
		if (rc > 0)
			errorf("no cluster record for %s", name);
		return NULL;
	}
	if (net_subnet_parse(c.subnet, &sn) == 0)
		ret = xstrdup(sn.cidr);
	cluster_free(&c);
	return ret;
}

/* What member name of cluster is: NODE_NONE (no record: a gap or a
 * first start cut short; or a VM that merely has a node's name), a
 * NODE_OK, or NODE_BROKEN, whose record cannot be read (said). */
enum node_kind { NODE_NONE, NODE_OK, NODE_BROKEN };
static enum node_kind node_kind(const struct nook_dirs *d, const char *name,
				const char *cluster)
{
	char *json = xasprintf("%s/vms/%s/vm.json", d->data, name);
	struct vm *vm = NULL;
	enum node_kind k = NODE_NONE;

	if (access(json, F_OK) == 0 &&
	    vm_open(d, name, VM_OPEN_BROKEN, &vm) == 0)
		k = vm->broken ? NODE_BROKEN :
		    vm->exists && vm->spec.cluster &&
		    !strcmp(vm->spec.cluster, cluster) ? NODE_OK : NODE_NONE;
	vm_close(vm);
	free(json);
	return k;
}

/* 1 when VM name exists and is a node of cluster (0 otherwise; a record
 * that cannot be read is said). */
static int is_member(const struct nook_dirs *d, const char *name,
		     const char *cluster)
{
	return node_kind(d, name, cluster) == NODE_OK;
}

/* The names of c's members that are its nodes: a VM that merely has a
 * node's name is not one. With why (not NULL): also each member whose
 * record cannot be read, its error in why (each other's why ""). */
static void members(const struct nook_dirs *d, const struct cluster *c,
		    struct strvec *out, struct strvec *why)
{
	for (size_t i = 0; i < c->n; i++) {
		enum node_kind k = node_kind(d, c->m[i].name, c->name);

		if (k == NODE_OK || (k == NODE_BROKEN && why))
			strvec_push(out, c->m[i].name);
		if (why && k != NODE_NONE)
			strvec_push(why, k == NODE_BROKEN ? error_last() : "");
	}
}

/* A cluster whose record stayed when its last node was deleted. */
static int no_nodes(const char *name)
{
	return errorf("cluster %s has no nodes: 'nook local start %s' makes "
		      "them again, 'nook local delete %s' forgets it", name,
		      name, name);
}

int vm_cluster_nodes_why(const struct nook_dirs *d, const char *name,
			 struct strvec *out, struct strvec *why)
{
	struct cluster c;
	size_t had = out->n;
	int rc = cluster_load(d, name, &c);

	if (rc > 0)
		return errorf("no cluster named '%s'", name);
	if (rc < 0)
		return -1;
	members(d, &c, out, why);
	cluster_free(&c);
	return out->n > had ? 0 : no_nodes(name);
}

int vm_cluster_node_broken(const char *node)
{
	return errorf("node %s's record cannot be read (said above); 'nook "
		      "local delete %s --force' removes it", node, node);
}

int vm_cluster_nodes(const struct nook_dirs *d, const char *name,
		     struct strvec *out)
{
	return vm_cluster_nodes_why(d, name, out, NULL);
}

/* 1 when s is a node number as nook writes it: 1 to MAX_NODE_NUMBER,
 * no sign, no leading zero (dev-01 is never a node, dev-1 is). */
static int node_number(const char *s)
{
	size_t len = strspn(s, "0123456789");

	return len && !s[len] && s[0] != '0' && len <= 5 &&
	       strtol(s, NULL, 10) <= MAX_NODE_NUMBER;
}

/* The length of name less its "-N" (N a node number), its group's part:
 * dev-worker of dev-worker-3, dev of dev-3; 0 when it has no "-N". */
static size_t group_part(const char *name)
{
	const char *dash = strrchr(name, '-');

	if (!dash || !node_number(dash + 1))
		return 0;
	return (size_t)(dash - name);
}

/* 1 when cluster (which exists) has name as a node, or NAME-N would be
 * one of its plain nodes, or NAME-G-N one of group G's, which has a node
 * (grown, the group takes that name). */
static int claims(const struct nook_dirs *d, const char *cluster,
		  const char *name)
{
	const char *rest = name + strlen(cluster) + 1;
	size_t g = group_part(name);
	struct cluster c;
	int yes;

	if (node_number(rest))
		return 1;
	if (cluster_peek(d, cluster, &c) != 0)
		return 0;
	yes = find_member(&c, name) != NULL;
	for (size_t i = 0; !yes && g && i < c.n; i++)
		yes = group_part(c.m[i].name) == g &&
		      !strncmp(c.m[i].name, name, g);
	cluster_free(&c);
	return yes;
}

const char *vm_cluster_claiming(const struct nook_dirs *d, const char *name,
				char *buf, size_t size)
{
	/* every prefix before a '-': dev-2 and dev-worker-2 are dev's */
	for (const char *dash = strchr(name, '-'); dash;
	     dash = strchr(dash + 1, '-')) {
		size_t n = (size_t)(dash - name);

		if (n >= size || !dash[1])
			break;
		memcpy(buf, name, n);
		buf[n] = '\0';
		if (vm_cluster_exists(d, buf) && claims(d, buf, name))
			return buf;
	}
	return NULL;
}

/* Whether cluster name's nodes are NAME-N (made by --nodes), not named
 * by a nook.yaml's groups. */
static int plain_cluster(const struct nook_dirs *d, const char *name)
{
	struct cluster c;
	int plain = 1;

	if (cluster_peek(d, name, &c) == REC_OK) {
		plain = plain_members(&c);
		cluster_free(&c);
	}
	return plain;
}

int vm_plain_name_check(const struct nook_dirs *d, const char *name)
{
	const char *rest;
	char c[64];

	if (!vm_cluster_claiming(d, name, c, sizeof(c)))
		return 0;
	rest = name + strlen(c) + 1;
	if (node_number(rest) && plain_cluster(d, c))
		return errorf("%s is a node name of cluster %s: 'nook local "
			      "start %s --nodes N' makes its nodes", name, c, c);
	return errorf("%s is a node name of cluster %s: its nook.yaml's "
		      "groups make its nodes", name, c);
}

int vm_resolve_name(const struct nook_dirs *d, const char *name,
		    char **vm_name, int *is_cluster)
{
	*vm_name = NULL;
	*is_cluster = 0;
	if (vm_name_check(name) < 0)
		return -1;
	if (vm_cluster_exists(d, name)) {
		struct strvec nodes = STRVEC_INIT;

		*is_cluster = 1;
		/* its first node that is one (not a deleted one's name) */
		if (vm_cluster_nodes(d, name, &nodes) < 0)
			return -1;
		*vm_name = xstrdup(nodes.v[0]);
		strvec_clear(&nodes);
	} else {
		*vm_name = xstrdup(name);
	}
	return 0;
}

char *vm_cluster_switch_dir(const struct nook_dirs *d, const char *name)
{
	char *net = xasprintf("%s.net", name);
	int fell;
	char *dir = vm_run_path(d, net, &fell);

	free(net);
	return dir;
}

int vm_node_network_config(const struct vm_spec *s, struct buf *out)
{
	struct buf ours = BUF_INIT, user = BUF_INIT;
	int ret = 0;

	if (!s->cluster) {
		if (s->network_config)
			ret = read_file(s->network_config, out);
		return ret;
	}
	net_node_network_config(s->nics[0].mac, s->nics[1].mac, s->address,
				s->prefix, &ours);
	if (!s->network_config) {
		buf_add(out, ours.p, ours.len);
	} else if (read_file(s->network_config, &user) < 0 ||
		   net_network_config_merge(user.p, user.len, ours.p, out) < 0) {
		ret = errorf("VM %s: its --network-config cannot join the "
			     "cluster's", s->name);
	}
	buf_free(&ours);
	buf_free(&user);
	return ret;
}

/* "ADDR NAME" of c's members, from the plan (subnet + node number, so
 * a node not made yet, or whose first start failed, has its line too). */
static void host_lines(const struct cluster *c, struct strvec *out)
{
	struct net_subnet sn;
	char addr[INET_ADDRSTRLEN];

	if (net_subnet_parse(c->subnet, &sn) < 0)
		return;
	for (size_t i = 0; i < c->n; i++)
		if (net_node_address(&sn, c->m[i].node, addr) == 0)
			strvec_pushf(out, "%s %s", addr, c->m[i].name);
}

/* lines into the /etc/hosts of vm; a warning when it cannot. Unless
 * vm was just found ready, one whose sshd does not answer now (resumed
 * without it, say) is skipped: it gets the names when it is ready. */
static void write_hosts(struct vm *vm, const struct strvec *lines,
			int ready)
{
	struct strvec cmd = STRVEC_INIT;
	struct buf out = BUF_INIT;
	struct vm_info info;

	if (!lines->n)
		return;
	if (!ready) {
		vm_get_info(vm, &info);
		if (info.state != VM_RUNNING ||
		    ssh_banner("127.0.0.1", info.ssh_port, 2000) != 1)
			return;
	}
	strvec_push(&cmd, "sudo");
	strvec_push(&cmd, "sh");
	strvec_push(&cmd, "-c");
	strvec_push(&cmd, cidata_hosts_script);
	strvec_push(&cmd, "nook-hosts");
	if (vm->seed > 0)
		strvec_pushf(&cmd, "seed=%lld", vm->seed);
	for (size_t i = 0; i < lines->n; i++)
		strvec_push(&cmd, lines->v[i]);
	if (vm_guest_run(vm, (const char *const *)cmd.v, &out) != 0)
		warnf("node %s: could not write its /etc/hosts: %s", vm->name,
		      out.p ? out.p : "");
	buf_free(&out);
	strvec_clear(&cmd);
}

int vm_cluster_host_lines(const struct nook_dirs *d, const char *cluster,
			  struct strvec *out)
{
	struct cluster c;

	if (cluster_load(d, cluster, &c) != 0)
		return -1;
	host_lines(&c, out);
	cluster_free(&c);
	return 0;
}

struct net_users {
	const struct nook_dirs *d;
	struct strvec names;   /* the cluster's nodes */
	const struct strvec *ending; /* VMs whose QEMUs a prune ends, or
				      * NULL: as if not running */
};

/* Whether a node's QEMU runs, or another nook holds the node's lock: a
 * start between its lock and its QEMU needs the switch too. Its paths
 * alone are looked at: a node whose record cannot be read, or is gone,
 * may still have its QEMU on the network. */
static int net_in_use(void *ctx)
{
	const struct net_users *u = ctx;
	int up = 0;

	for (size_t i = 0; i < u->names.n && !up; i++) {
		const char *name = u->names.v[i];
		struct vm_paths p;

		if ((u->ending && strvec_index(u->ending, name) >= 0) ||
		    vm_paths_init(&p, u->d, name) < 0)
			continue;
		up = vm_pid_alive(p.pidfile, p.qmp_arg) || vm_lock_busy(&p);
		vm_paths_free(&p);
	}
	return up;
}

/* One start, stop or delete of a cluster at a time: flock on
 * DATA/clusters/NAME.lock, taken without waiting, into *fd. 0, or 1
 * (quietly) when another nook holds it, or -1. */
static int cluster_trylock(const struct nook_dirs *d, const char *name,
			   int *fd)
{
	char *dir = xasprintf("%s/clusters", d->data);
	char *path = xasprintf("%s/%s.lock", dir, name);
	int ret = 0;

	*fd = -1;
	if (mkdir_p(dir, 0700) < 0)
		ret = -1;
	else if ((*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		ret = error_errno("cannot open %s", path);
	else if (flock(*fd, LOCK_EX | LOCK_NB) < 0)
		ret = errno == EWOULDBLOCK ? 1 :
		      error_errno("cannot lock %s", path);
	if (ret != 0 && *fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	free(path);
	free(dir);
	return ret;
}

/* cluster_trylock(), saying that the cluster is busy */
static int cluster_lock(const struct nook_dirs *d, const char *name,
			int *fd)
{
	int rc = cluster_trylock(d, name, fd);

	if (rc == 1)
		return errorf("cluster %s is busy: another nook is starting, "
			      "stopping or deleting it", name);
	return rc;
}

/* What a cluster leaves once it has no record and no node: its network
 * (stopped, its directory removed) and its lock file, which the caller
 * holds. A network directory on a way another user could change (a
 * /tmp/nook-UID someone else made) is not ours to act in: left alone.
 * 0, or -1 having said why. */
static int drop_leftovers(const struct nook_dirs *d, const char *name)
{
	char *dir = vm_cluster_switch_dir(d, name), *path;
	int ret = 0;

	if (dir && path_private_ok(dir, 1) == 0) {
		if (net_switch_alive(dir) && net_switch_stop(dir) < 0)
			ret = -1;
		if (ret == 0 && remove_tree(dir) < 0)
			ret = -1;
	}
	free(dir);
	path = xasprintf("%s/clusters/%s.lock", d->data, name);
	unlink(path);
	free(path);
	return ret;
}

/* 1 when no record names cluster name and no VM says it is its node. */
static int no_cluster(const struct nook_dirs *d, const char *name)
{
	struct cluster c;
	enum record rc = cluster_peek(d, name, &c);

	if (rc == REC_OK)
		cluster_free(&c);
	return rc == REC_NONE;
}

void vm_cluster_network_gc(const struct nook_dirs *d, const char *cluster)
{
	struct net_users u = { d, STRVEC_INIT };
	struct cluster c;
	char *dir;
	int rc = cluster_peek(d, cluster, &c);

	/* quietly: a cluster whose record went has nothing to collect; one
	 * whose broken record has no node left has no node running */
	if (rc == REC_NONE || rc == REC_BROKEN)
		return;
	for (size_t i = 0; rc == REC_OK && i < c.n; i++)
		strvec_push(&u.names, c.m[i].name);
	if (rc == REC_OK)
		cluster_free(&c);
	dir = vm_cluster_switch_dir(d, cluster);
	if (dir && net_switch_alive(dir))
		net_switch_stop_unused(dir, net_in_use, &u);
	free(dir);
	strvec_clear(&u.names);
}

/* Cluster name's nodes as net_in_use() asks about them, and its switch
 * directory when its switch runs (NULL: it does not, or no record says
 * which nodes it has). */
static char *idle_check(const struct nook_dirs *d, const char *name,
			struct net_users *u)
{
	struct cluster c;
	enum record rc = cluster_peek(d, name, &c);
	char *dir;

	/* an orphan record: no VM says it is a node, none uses the switch */
	if (rc != REC_OK && rc != REC_ORPHAN)
		return NULL;
	for (size_t i = 0; i < c.n; i++)
		strvec_push(&u->names, c.m[i].name);
	cluster_free(&c);
	dir = vm_cluster_switch_dir(d, name);
	if (dir && !net_switch_alive(dir)) {
		free(dir);
		dir = NULL;
	}
	return dir;
}

/* Clusters with no record and no node whose network directory is left
 * in dir (RUN, or with some_prefix the fallback /tmp/nook-UID, whose
 * entries are "HASH-NAME.net"), onto out: what a record removed by hand,
 * or an older nook's failed first start, leaves. */
static void lost_networks(const struct nook_dirs *d, const char *dir,
			  int some_prefix, struct strvec *out)
{
	/* not in a directory another user could change under us */
	DIR *dp = path_private_ok(dir, 1) == 0 ? opendir(dir) : NULL;
	struct dirent *e;

	while (dp && (e = readdir(dp))) {
		size_t n = strlen(e->d_name), skip = some_prefix ? 9 : 0;
		char *name, *at, *sw;

		if (n <= skip + 4 || strcmp(e->d_name + n - 4, ".net"))
			continue;
		name = xstrndup(e->d_name + skip, n - skip - 4);
		at = xasprintf("%s/%s", dir, e->d_name);
		/* where nook would put it, not a like-named other thing */
		sw = vm_name_valid(name) ? vm_cluster_switch_dir(d, name) :
					   NULL;
		if (sw && !strcmp(sw, at) && no_cluster(d, name))
			strvec_push(out, name);
		free(sw);
		free(at);
		free(name);
	}
	if (dp)
		closedir(dp);
}

void vm_idle_networks(const struct nook_dirs *d, const struct strvec *ending,
		      struct strvec *out)
{
	char *path = xasprintf("%s/clusters", d->data);
	char *tmp = xasprintf("/tmp/nook-%u", (unsigned)getuid());
	DIR *dir = opendir(path);
	struct dirent *e;

	while (dir && (e = readdir(dir))) {
		size_t n = strlen(e->d_name);
		struct net_users u = { d, STRVEC_INIT, ending };
		char *name, *sw;

		if (n <= 5 || strcmp(e->d_name + n - 5, ".json"))
			continue;
		name = xstrndup(e->d_name, n - 5);
		sw = vm_name_valid(name) ? idle_check(d, name, &u) : NULL;
		if (sw && !net_in_use(&u))
			strvec_push(out, name);
		free(sw);
		free(name);
		strvec_clear(&u.names);
	}
	if (dir)
		closedir(dir);
	/* a node at work with no record may be on one */
	if (!vm_unrecorded_busy(d)) {
		lost_networks(d, d->run, 0, out);
		lost_networks(d, tmp, 1, out);
	}
	free(tmp);
	free(path);
}

int vm_idle_network_stop(const struct nook_dirs *d, const char *name)
{
	struct net_users u = { d, STRVEC_INIT };
	char *sw;
	int rc = 0, lock;

	/* no cluster left: the network goes with its directory, under the
	 * lock a first start of a cluster of that name would take; a start
	 * or another prune holding it, or a node at work, keeps it */
	if (no_cluster(d, name)) {
		rc = cluster_trylock(d, name, &lock);
		if (rc != 0)
			return rc;
		rc = !no_cluster(d, name) || vm_unrecorded_busy(d) ? 1 :
		     drop_leftovers(d, name);
		close(lock);
		return rc;
	}
	sw = idle_check(d, name, &u);
	if (sw)
		rc = net_switch_stop_unused(sw, net_in_use, &u);
	free(sw);
	strvec_clear(&u.names);
	return rc;
}

/* Node node of cluster name is no other cluster's node: dev-cp-1 of
 * dev's group cp is not also node 1 of a cluster dev-cp. */
static int check_claim(const struct nook_dirs *d, const char *name,
		       const char *node)
{
	char other[64];

	for (const char *dash = strchr(node, '-'); dash;
	     dash = strchr(dash + 1, '-')) {
		size_t n = (size_t)(dash - node);

		if (n >= sizeof(other))
			break;
		memcpy(other, node, n);
		other[n] = '\0';
		if (strcmp(other, name) && vm_cluster_exists(d, other) &&
		    claims(d, other, node))
			return errorf("%s is a node name of cluster %s already; "
				      "it cannot be a node of %s too: rename "
				      "the group, or delete cluster %s", node,
				      other, name, other);
	}
	return 0;
}

/* Before anything starts: the cluster's name is no plain VM's, and every
 * node name is free or already this cluster's node. */
static int check_names(const struct nook_dirs *d, const char *name,
		       const struct cluster *c)
{
	struct vm *vm;
	int ret = 0;

	if (vm_open(d, name, 0, &vm) < 0)
		return -1;
	if (vm->exists)
		ret = errorf("%s is a VM already; a cluster cannot take its "
			     "name", name);
	vm_close(vm);
	for (size_t i = 0; ret == 0 && i < c->n; i++) {
		const char *n = c->m[i].name;

		if (vm_open(d, n, 0, &vm) < 0)
			ret = errorf("node %s's record cannot be read (said "
				     "above): 'nook local delete %s --force' "
				     "removes it, and the next start makes it "
				     "again", n, n);
		else if (vm->exists && (!vm->spec.cluster ||
					strcmp(vm->spec.cluster, name)))
			ret = errorf("%s is a VM already, not a node of %s: "
				     "delete it or pick another cluster name",
				     n, name);
		else if (vm_cluster_exists(d, n))
			ret = errorf("%s is a cluster already; its name cannot "
				     "be a node of %s", n, name);
		else
			ret = check_claim(d, name, n);
		vm_close(vm);
	}
	return ret;
}

/* A node's part of a command run on every node: 0, or -1 having said
 * why; what it puts in words is said to the command's process. */
typedef int node_fn(const struct nook_dirs *d, const char *cluster,
		    const struct member *m, const void *arg,
		    struct buf *words);

void vm_cluster_said_clear(struct vm_cluster_said *s)
{
	strvec_clear(&s->nodes);
	strvec_clear(&s->words);
	memset(s->failed, 0, sizeof(s->failed));
}

/* What a node's process said, read from fd (its pipe, non-blocking: a
 * process the node's left behind may hold it too): its last error when
 * it failed, else its words. */
static void take_said(int fd, int failed, struct strvec *out)
{
	struct buf b = BUF_INIT;
	char chunk[1024];
	ssize_t r;

	for (;;) {
		r = fd >= 0 ? read(fd, chunk, sizeof(chunk)) : 0;
		if (r > 0)
			buf_add(&b, chunk, (size_t)r);
		else if (r == 0 || errno != EINTR)
			break;
	}
	strvec_push(out, b.len ? b.p : !failed ? "" :
		    "its process ended without saying why");
	buf_free(&b);
}

/* Run fn for every node of c, each in a process of its own, at once;
 * the number of nodes for which it failed. With said, what each node's
 * process said goes there in c's order (struct vm_cluster_said). A signal
 * that ended them is in *sig (0: none): the caller cleans up (the record,
 * the network), then dies of it with die_of(). */
static int fan_out(const struct nook_dirs *d, const struct cluster *c,
		   node_fn *fn, const void *arg, int *sig,
		   struct vm_cluster_said *said)
{
	pid_t pids[MAX_NODES];
	int out[MAX_NODES][2];
	size_t n = c->n < MAX_NODES ? c->n : MAX_NODES;
	struct sigaction old[3];
	sigset_t was;
	pid_t parent = getpid();
	int failed = 0;

	/* held until each side has its handlers: none is lost or misread */
	sig_hold(&was);
	fflush(NULL);
	for (size_t i = 0; i < n; i++) {
		out[i][0] = out[i][1] = -1;
		if (said && pipe2(out[i], O_CLOEXEC | O_NONBLOCK) < 0)
			out[i][0] = out[i][1] = -1;
		pids[i] = fork();
		if (pids[i] == 0) {
			struct buf words = BUF_INIT;
			const char *last;
			int rc;

			/* our end, even by SIGKILL, ends the node's process:
			 * it would hold the cluster's lock until its wait
			 * timed out */
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (getppid() != parent)
				_exit(1);
			/* the command's note on a signal is said once, by us */
			sig_note(NULL);
			sig_release(&was);
			rc = fn(d, c->name, &c->m[i], arg, &words);
			fflush(NULL);
			/* a pipe holds far more than one error or a node's
			 * words: no wait */
			last = rc < 0 ? error_last() : words.len ? words.p : "";
			if (out[i][1] >= 0)
				write_all(out[i][1], last, strlen(last));
			_exit(rc < 0 ? 1 : 0);
		}
		if (out[i][1] >= 0)
			close(out[i][1]);
		if (pids[i] < 0) {
			error_errno("fork");
			failed++;
		}
	}
	/* ^C, SIGTERM, SIGHUP: each node's process hears it too, from the
	 * terminal or from us (a start's puts its QEMU back from batch
	 * scheduling), and ends before we do */
	sig_catch(old, 1);
	sig_pass_on(pids, n);
	sig_release(&was);
	for (size_t i = 0; i < n; i++) {
		siginfo_t si;

		/* ended, not yet reaped: the handler may still signal it */
		while (pids[i] > 0 && waitid(P_PID, (id_t)pids[i], &si,
					     WEXITED | WNOWAIT) < 0 &&
		       errno == EINTR)
			;
	}
	sig_pass_on(NULL, 0);
	for (size_t i = 0; i < n; i++) {
		int st = 0, bad = pids[i] <= 0;

		if (pids[i] > 0 && (waitpid(pids[i], &st, 0) < 0 ||
				    !WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
			failed++;
			bad = 1;
		}
		if (said) {
			strvec_push(&said->nodes, c->m[i].name);
			take_said(out[i][0], bad, &said->words);
			said->failed[i] = (unsigned char)bad;
		}
		if (out[i][0] >= 0)
			close(out[i][0]);
	}
	sig_catch(old, 0);
	*sig = sig_caught;
	sig_caught = 0;
	return failed;
}

static void die_of(int sig)
{
	if (sig) {
		sig_caught = sig;
		sig_rethrow();
	}
}

struct node_start {
	const struct vm_start_opts *o;
	const struct vm_cluster_node *list;
	size_t n;
	const char *subnet;
	int crowded;              /* more vCPUs than the host has cores */
	struct strvec hosts;      /* every node's line of /etc/hosts */
	char *like;               /* first_made(): what new nodes are like */
};

/* The node a plain node still to be made is made like: c's first node
 * that is made (NULL: none). Then a cluster grown from the command line
 * (--nodes 5 after --nodes 3 --image X --memory 2G) stays alike. A
 * group's node has its group's options instead. The caller frees. */
static char *first_made(const struct nook_dirs *d, const struct cluster *c)
{
	for (size_t i = 0; i < c->n; i++)
		if (is_member(d, c->m[i].name, c->name))
			return xstrdup(c->m[i].name);
	return NULL;
}

const struct vm_start_opts *vm_cluster_node_opts(
	const struct vm_start_opts *o, const struct vm_cluster_node *l,
	size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(l[i].name, name))
			return l[i].o ? l[i].o : o;
	return o;
}

/* What node name of a start with ns is like (NULL: nothing): only a
 * node that starts with the start's own options, not its group's (a
 * plain cluster's, --nodes N or nodes: N in a file). */
static const char *like_for(const struct node_start *ns, const char *name)
{
	return vm_cluster_node_opts(ns->o, ns->list, ns->n, name) == ns->o
		       ? ns->like
		       : NULL;
}

static int start_node(const struct nook_dirs *d, const char *cluster,
		      const struct member *m, const void *arg,
		      struct buf *words)
{
	const struct node_start *ns = arg;
	struct vm_start_opts o = *vm_cluster_node_opts(ns->o, ns->list, ns->n,
							  m->name);
	struct vm_node node = { cluster, m->node, ns->subnet, &ns->hosts,
				like_for(ns, m->name) };
	struct vm_start_result r;
	const char *name = m->name;
	struct vm *vm;
	int rc = -1;

	(void)words; /* a start's outcome is its node's record */
	o.node = &node;
	o.boot_one_cpu = ns->crowded;
	if (vm_open(d, name, 0, &vm) < 0)
		goto out;
	if (vm->exists && (!vm->spec.cluster || strcmp(vm->spec.cluster,
						       cluster))) {
		errorf("%s is a VM already, not a node of %s", name, cluster);
		goto out;
	}
	/* the nodes' errors meet on one stderr: each names its node */
	error_where(name);
	/* a node that runs already is only waited for */
	rc = vm_start(vm, &o, &r);
	/* Every node learns every name as soon as it is ready, so none
	 * waits for the last: a new one had them in its seed, but its
	 * user-data may have rewritten /etc/hosts; an old one may have run
	 * while the cluster grew, or been resumed. Also one whose cloud-init
	 * failed: the guest is there to use. With --no-wait, one that ran
	 * already or was resumed (its sshd answers): one that boots has the
	 * names in its seed. Not one whose wait found them all there. */
	if (!r.hosts_ok &&
	    (o.no_wait ? rc == 0 && (r.found_running || r.resumed) :
			 (rc == 0 || (r.reached >= VM_PHASE_CLOUD_INIT &&
				      !r.crashed && !r.stopped))))
		write_hosts(vm, &ns->hosts, !o.no_wait && !r.resumed);
	error_where(NULL);
out:
	vm_close(vm);
	return rc;
}

/* 1 when c's nodes together have more vCPUs than this host has cores:
 * then a boot that can runs on one vCPU (boots_one_cpu() in start.c). */
static int crowded(const struct nook_dirs *d, const struct cluster *c,
		   const struct node_start *ns)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN), vcpus = 0;
	cpu_set_t mine;

	/* the cores we may run on (a cpuset, taskset), not the machine's */
	if (sched_getaffinity(0, sizeof(mine), &mine) == 0)
		cores = CPU_COUNT(&mine);

	for (size_t i = 0; i < c->n; i++) {
		struct vm_cluster_plan_node p;

		memset(&p, 0, sizeof(p));
		vm_plan_sizes(d, c->m[i].name,
			      vm_cluster_node_opts(ns->o, ns->list, ns->n,
						   c->m[i].name),
			      like_for(ns, c->m[i].name), &p);
		vcpus += p.cpus;
		free(p.like);
		free(p.image);
		free(p.cluster);
	}
	return c->n > 1 && cores > 0 && vcpus > cores;
}

/* Members of c missing from list (n > 0): a start that names nodes
 * may add some, never drop one. */
static int check_dropped(const struct cluster *c,
			 const struct vm_cluster_node *list, size_t n)
{
	const char *last = NULL;
	size_t dropped = 0;

	for (size_t i = 0; i < c->n; i++) {
		size_t k = 0;

		while (k < n && strcmp(list[k].name, c->m[i].name))
			k++;
		if (k == n) {
			last = c->m[i].name;
			dropped++;
		}
	}
	if (!dropped)
		return 0;
	if (dropped == c->n && !plain_members(c))
		return errorf("cluster %s's nodes are named by groups (%s ...): "
			      "its nook.yaml says how many; edit it, not "
			      "--nodes", c->name, c->m[0].name);
	return errorf("cluster %s has %zu nodes; this start (%zu nodes) would "
		      "drop %zu of them: 'nook local delete %s' removes the "
		      "last (stopped, or with --force)", c->name, c->n, n,
		      dropped, last);
}

/* A fixed host port that both a and b forward, or NULL. */
static const struct net_port *shared_port(const struct vm_start_opts *a,
					  const struct vm_start_opts *b)
{
	for (size_t x = 0; x < a->nports; x++)
		for (size_t y = 0; y < b->nports; y++)
			if (net_port_clash(&a->ports[x], &b->ports[y]))
				return &a->ports[x];
	return NULL;
}

/* Every node's options, as merged, checked as a start checks them, and
 * no fixed host port forwarded on two nodes. */
static int check_opts(const struct cluster *c, const struct vm_start_opts *o,
		      const struct vm_cluster_node *list, size_t n)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct vm_start_opts *a =
			vm_cluster_node_opts(o, list, n, c->m[i].name);
		char *where = xasprintf("node %s", c->m[i].name);
		int rc;

		error_where(where);
		rc = vm_start_opts_check(a);
		error_where(NULL);
		free(where);
		if (rc < 0)
			return -1;
		for (size_t k = 0; k < i; k++) {
			const struct net_port *p = shared_port(a,
				vm_cluster_node_opts(o, list, n, c->m[k].name));

			if (p)
				return errorf("host port %d%s would be forwarded "
					      "to both %s and %s: give it to one "
					      "node, or 0:%d (a free port each)",
					      p->host, p->udp ? "/udp" : "",
					      c->m[k].name, c->m[i].name,
					      p->guest);
		}
	}
	return 0;
}

/* Each node's files, once a set of options: a bad user-data is said
 * once, and before the record grows, rather than by every node. */
static int check_files(const struct vm_start_opts *o,
		       const struct vm_cluster_node *list, size_t n)
{
	if (vm_start_check_files(o) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;

		while (k < i && list[k].o != list[i].o)
			k++;
		if (list[i].o && list[i].o != o && k == i &&
		    vm_start_check_files(list[i].o) < 0)
			return -1;
	}
	return 0;
}

/* The record for this start: the cluster's as it is, with the listed
 * nodes it does not have yet added (numbered on from its highest, so no
 * node's address moves), or a new one numbered in list order; *had
 * says how many members it had. */
/* DATA/clusters/NAME.gone-N: node N of cluster NAME was deleted while
 * another nook held the cluster's lock. The next nook to hold it takes
 * the node off the record (take_gone()), as the delete would have. */
static char *gone_path(const struct nook_dirs *d, const char *name, int node)
{
	return xasprintf("%s/clusters/%s.gone-%d", d->data, name, node);
}

/* The last node gone: the cluster is one smaller (and any gap before it
 * closes); a middle node leaves a gap that a start fills. In c only: 1
 * when it changed. */
static int trim_end(const struct nook_dirs *d, struct cluster *c)
{
	size_t had = c->n;

	while (c->n > 0 && !is_member(d, c->m[c->n - 1].name, c->name))
		free(c->m[--c->n].name);
	c->nodes = c->n ? c->m[c->n - 1].node : 0;
	return c->n < had;
}

/* c as its pending marks (gone_path()) make it: its last node marked
 * gone and gone, it is trimmed, unless no node would be left (then the
 * record stays, as vm_cluster_node_gone() leaves it). In c only: what a
 * start or a plan reads is the record as the next holder of the lock
 * saves it. */
static int trim_marked(const struct nook_dirs *d, struct cluster *c)
{
	char *mark;
	int marked, left = 0;

	if (!c->n)
		return 0;
	mark = gone_path(d, c->name, c->m[c->n - 1].node);
	marked = access(mark, F_OK) == 0;
	free(mark);
	for (size_t i = 0; marked && i < c->n && !left; i++)
		left = is_member(d, c->m[i].name, c->name);
	return left && trim_end(d, c);
}

/* c (trimmed) saved, unless no node is left (the record stays: a start
 * makes them again). */
static void save_trimmed(const struct nook_dirs *d, const struct cluster *c)
{
	if (c->n && cluster_save(d, c) < 0)
		warnf("cluster %s: its record still counts the nodes deleted "
		      "from its end", c->name);
}

/* Under the cluster's lock: the marks of nodes deleted meanwhile applied
 * to its record, and removed; one made after the look waits for the next
 * holder. */
static void take_gone(const struct nook_dirs *d, const char *name)
{
	char *dir = xasprintf("%s/clusters", d->data);
	char *prefix = xasprintf("%s.gone-", name);
	size_t k = strlen(prefix);
	DIR *dh = opendir(dir);
	struct strvec marks = STRVEC_INIT;
	struct cluster c;

	for (;;) {
		struct dirent *e = dh ? readdir(dh) : NULL;

		if (!e)
			break;
		if (!strncmp(e->d_name, prefix, k) && node_number(e->d_name + k))
			strvec_pushf(&marks, "%s/%s", dir, e->d_name);
	}
	if (dh)
		closedir(dh);
	if (marks.n && cluster_peek(d, name, &c) == 0) {
		if (trim_marked(d, &c))
			save_trimmed(d, &c);
		cluster_free(&c);
	}
	for (size_t i = 0; i < marks.n; i++)
		unlink(marks.v[i]);
	strvec_clear(&marks);
	free(prefix);
	free(dir);
}

static int plan(const struct nook_dirs *d, const char *name,
		const struct vm_cluster_node *list, size_t n,
		const char *subnet, const struct vm_start_opts *o,
		struct cluster *c, size_t *had, int *is_new)
{
	struct net_subnet sn;
	char addr[64], *where;
	int rc = cluster_load(d, name, c);

	if (rc < 0)
		return -1;
	if (rc == 0)
		trim_marked(d, c); /* as the start, under the lock, saves it */
	*is_new = rc > 0;
	*had = c->n;
	if (n > MAX_NODES)
		return errorf("cluster %s: %zu nodes; at most %d", name, n,
			      MAX_NODES);
	if (*is_new) {
		char other[64];

		/* k-5 would be cluster k's fifth node: not a cluster's name */
		if (vm_cluster_claiming(d, name, other, sizeof(other)))
			return errorf("%s is a node name of cluster %s: a new "
				      "cluster needs another name", name, other);
		c->name = xstrdup(name);
		c->subnet = xstrdup(subnet ? subnet : NET_SUBNET_DEFAULT);
		if (!n) {
			char *n1 = node_name(name, 1);

			add_member(c, n1, 1);
			free(n1);
		}
	} else if (subnet && strcmp(subnet, c->subnet)) {
		return errorf("cluster %s is on %s; its subnet cannot move to "
			      "%s", name, c->subnet, subnet);
	} else if (n && check_dropped(c, list, n) < 0) {
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (vm_name_check(list[i].name) < 0)
			return -1;
		if (!find_member(c, list[i].name))
			add_member(c, list[i].name, c->nodes + 1);
	}
	if (c->n > MAX_NODES)
		return errorf("cluster %s: %zu nodes; at most %d", name, c->n,
			      MAX_NODES);
	if (net_subnet_parse(c->subnet, &sn) < 0)
		return -1;
	where = xasprintf("cluster %s", name);
	error_where(where);
	rc = net_node_address(&sn, c->nodes, addr);
	error_where(NULL);
	free(where);
	if (rc < 0)
		return -1;
	if (check_opts(c, o, list, n) < 0 || check_files(o, list, n) < 0)
		return -1;
	return check_names(d, name, c);
}

/* The default image once, not once per node, and only when a node still
 * to be made starts from it: one that names none and is like none. */
static int ensure_image(const struct nook_dirs *d, const struct cluster *c,
			const struct node_start *ns)
{
	struct img_build_opts b = { d->recipes, d->cache, ns->o->image_report,
				    ns->o->image_ctx };
	int need = 0;

	for (size_t i = 0; i < c->n && !need; i++) {
		const char *name = c->m[i].name;
		const char *img = vm_cluster_node_opts(ns->o, ns->list, ns->n,
						       name)->image;

		need = !is_member(d, name, c->name) &&
		       (img ? !strcmp(img, IMG_DEFAULT) : !like_for(ns, name));
	}
	return need ? img_ensure_default(d->data, &b) : 0;
}

/* Whether node name left nothing on disk: not even a half-made
 * directory, which the cluster's delete (or prune) still has to find. */
static int never_made(const struct nook_dirs *d, const char *name)
{
	char *dir = xasprintf("%s/vms/%s", d->data, name);
	struct stat st;
	int none = lstat(dir, &st) < 0 && errno == ENOENT;

	free(dir);
	return none;
}

/* Whether name is a VM that is no node of cluster: a plain VM that won
 * the name from a start making that node. */
static int other_vm(const struct nook_dirs *d, const char *name,
		    const char *cluster)
{
	struct vm *vm;
	int other = 0;

	if (vm_open(d, name, 0, &vm) == 0)
		other = vm->exists && (!vm->spec.cluster ||
				       strcmp(vm->spec.cluster, cluster));
	vm_close(vm);
	return other;
}

/* A start that failed: the nodes it added (after the first had of
 * planned) that left nothing, or whose name another VM took meanwhile,
 * go from the record again, as the nodes' processes left it, so that the
 * cluster is the size it was; a new cluster left with none goes. */
static void forget_unmade(const struct nook_dirs *d,
			  const struct cluster *planned, size_t had, int is_new)
{
	struct cluster c;
	size_t k = 0;

	if (cluster_peek(d, planned->name, &c) != 0)
		return;
	for (size_t i = 0; i < c.n; i++) {
		const struct member *m = find_member(planned, c.m[i].name);

		if (m && (size_t)(m - planned->m) >= had &&
		    (never_made(d, c.m[i].name) ||
		     other_vm(d, c.m[i].name, c.name)))
			free(c.m[i].name);
		else
			c.m[k++] = c.m[i];
	}
	if (k < c.n) {
		c.n = k;
		c.nodes = k ? c.m[k - 1].node : 0;
		if (k) {
			if (cluster_save(d, &c) < 0)
				warnf("cluster %s: its record still lists the "
				      "nodes this start could not make", c.name);
		} else if (is_new) {
			char *path = record_path(d, c.name);

			unlink(path);
			free(path);
		}
	}
	cluster_free(&c);
}

int vm_cluster_start(const struct nook_dirs *d, const char *name,
		     const struct vm_cluster_node *nodes, size_t n,
		     const char *subnet, const struct vm_start_opts *o,
		     struct strvec *failed, struct strvec *why)
{
	struct cluster c = { 0 };
	struct node_start ns = { o, nodes, n, NULL, 0, STRVEC_INIT, NULL };
	struct vm_cluster_said said = VM_CLUSTER_SAID_INIT;
	char *dir = NULL;
	size_t had = 0;
	int is_new = 0, ret = -1, lock = -1, sig = 0;

	if (cluster_lock(d, name, &lock) < 0)
		goto out;
	take_gone(d, name);
	if (plan(d, name, nodes, n, subnet, o, &c, &had, &is_new) < 0)
		goto out;
	ns.like = first_made(d, &c);
	if (ensure_image(d, &c, &ns) < 0 || cluster_save(d, &c) < 0)
		goto out;
	/* a plain VM of the cluster's name, made since check_names(): its
	 * start looks for the cluster once its own record is written, as
	 * this looks for that record once the cluster's is: one of the two
	 * gives way at least */
	if (is_new && other_vm(d, name, name)) {
		char *path = record_path(d, name);

		/* as a whole: forget_unmade() keeps a node's leftover
		 * directory, and the record would name a cluster too */
		unlink(path);
		free(path);
		errorf("%s is a VM now: its first start ran beside this one; "
		       "pick another cluster name, or delete VM %s", name,
		       name);
		goto out;
	}
	dir = vm_cluster_switch_dir(d, name);
	if (!dir || mkdir_private(dir) < 0 || net_switch_start(dir) < 0)
		goto out;
	ns.subnet = c.subnet;
	ns.crowded = crowded(d, &c, &ns);
	host_lines(&c, &ns.hosts);
	ret = fan_out(d, &c, start_node, &ns, &sig, &said) ? -1 : 0;
	for (size_t i = 0; i < said.nodes.n; i++)
		if (said.failed[i]) {
			strvec_push(failed, said.nodes.v[i]);
			strvec_push(why, said.words.v[i]);
		}
out:
	/* the network first: it goes when no node runs, which it learns
	 * from the record */
	if (c.name)
		vm_cluster_network_gc(d, name);
	if (ret < 0 && c.name)
		forget_unmade(d, &c, had, is_new);
	/* a first start that made no node leaves nothing behind */
	if (ret < 0 && lock >= 0 && no_cluster(d, name))
		(void)drop_leftovers(d, name);
	if (lock >= 0)
		close(lock);
	free(dir);
	strvec_clear(&ns.hosts);
	free(ns.like);
	vm_cluster_said_clear(&said);
	cluster_free(&c);
	die_of(sig);
	return ret;
}

void vm_plan_sizes(const struct nook_dirs *d, const char *name,
		   const struct vm_start_opts *o, const char *like,
		   struct vm_cluster_plan_node *p)
{
	struct vm_spec fresh;
	const struct vm_spec *s = &fresh;
	struct vm *vm = NULL, *lk = NULL;

	vm_spec_init(&fresh);
	p->like = p->image = p->cluster = NULL;
	if (vm_open(d, name, 0, &vm) == 0 && vm->exists)
		s = &vm->spec;
	p->is_new = s == &fresh;
	/* a node started on its own joins its cluster, where it is */
	if (!p->is_new && s->cluster) {
		p->cluster = xstrdup(s->cluster);
		if (!p->node)
			p->node = s->node;
		/* one too long for an address (a record edited by hand)
		 * is left out rather than shown cut */
		if (!p->address[0] && s->address &&
		    strlen(s->address) < sizeof(p->address))
			memcpy(p->address, s->address, strlen(s->address) + 1);
	}
	if (!p->is_new && !o->image && s->image.ref)
		p->image = xstrdup(s->image.ref);
	/* as made_like() in start.c takes it */
	if (p->is_new && like && vm_open(d, like, 0, &lk) == 0 && lk->exists) {
		s = &lk->spec;
		p->like = xstrdup(like);
		if (!o->image)
			p->image = xstrdup(s->image.ref);
	}
	p->cpus = o->cpus ? o->cpus : s->cpus;
	p->memory = o->memory ? o->memory : s->memory;
	p->disk = o->disk ? o->disk : p->like && o->image ? 0 : s->disk;
	vm_close(lk);
	vm_close(vm);
}

int vm_cluster_plan(const struct nook_dirs *d, const char *name,
		    const struct vm_cluster_node *nodes, size_t n,
		    const char *subnet, const struct vm_start_opts *o,
		    struct vm_cluster_plan *out)
{
	struct cluster c = { 0 };
	struct node_start ns = { o, nodes, n, NULL, 0, STRVEC_INIT, NULL };
	struct net_subnet sn;
	size_t had;
	int is_new;

	memset(out, 0, sizeof(*out));
	if (plan(d, name, nodes, n, subnet, o, &c, &had, &is_new) < 0 ||
	    net_subnet_parse(c.subnet, &sn) < 0) {
		cluster_free(&c);
		return -1;
	}
	out->is_new = is_new;
	ns.like = first_made(d, &c);
	snprintf(out->subnet, sizeof(out->subnet), "%s", sn.cidr);
	out->nodes = xmalloc(sizeof(*out->nodes) * c.n);
	memset(out->nodes, 0, sizeof(*out->nodes) * c.n);
	for (size_t i = 0; i < c.n; i++) {
		struct vm_cluster_plan_node *p = &out->nodes[i];

		p->name = xstrdup(c.m[i].name);
		p->node = c.m[i].node;
		net_node_address(&sn, p->node, p->address);
		vm_plan_sizes(d, p->name, vm_cluster_node_opts(o, nodes, n,
							       p->name),
			      like_for(&ns, p->name), p);
	}
	out->n = c.n;
	free(ns.like);
	cluster_free(&c);
	return 0;
}

void vm_cluster_plan_free(struct vm_cluster_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->nodes[i].name);
		free(p->nodes[i].like);
		free(p->nodes[i].image);
		free(p->nodes[i].cluster);
	}
	free(p->nodes);
	memset(p, 0, sizeof(*p));
}

struct node_stop {
	int force, timeout_s;
	void (*report)(const char *node, const char *how);
};

typedef int each_fn(const struct nook_dirs *d, const char *node,
		    const void *arg, struct buf *words);

struct node_each {
	each_fn *fn;
	/* for a node whose record cannot be read; NULL: that node fails */
	each_fn *broken;
	const void *arg;
	/* the nodes as members() found them, and why (each_of()): each
	 * record is read once, its error said once */
	const struct strvec *nodes, *why;
};

static int each_node(const struct nook_dirs *d, const char *cluster,
		     const struct member *m, const void *arg,
		     struct buf *words)
{
	const struct node_each *e = arg;
	ssize_t k = strvec_index(e->nodes, m->name);
	/* a record found broken before the lock is not read again (its
	 * error was said); the others are looked at again under it: a
	 * start it waited for may have made or removed a node */
	enum node_kind kind = k >= 0 && *e->why->v[k] ?
		NODE_BROKEN : node_kind(d, m->name, cluster);

	/* a gap, or a VM with a node's name that is not one: left alone */
	switch (kind) {
	case NODE_NONE:
		return 0;
	case NODE_BROKEN:
		if (!e->broken)
			return vm_cluster_node_broken(m->name);
		return e->broken(d, m->name, e->arg, words) != 0 ? -1 : 0;
	default:
		return e->fn(d, m->name, e->arg, words) != 0 ? -1 : 0;
	}
}

/* vm_cluster_each(); forced (a stop --force), also while another nook
 * holds the cluster (a start waiting on its nodes: it sees them stopped,
 * and ends the network itself). */
static int each_of(const struct nook_dirs *d, const char *name,
		   const struct node_each *e, int forced,
		   struct vm_cluster_said *said)
{
	struct strvec names = STRVEC_INIT, why = STRVEC_INIT;
	struct node_each each = *e;
	struct cluster c;
	int failed, lock = -1, sig = 0, rc = cluster_load(d, name, &c);

	if (rc)
		return rc > 0 ? errorf("no cluster named '%s'", name) : -1;
	members(d, &c, &names, &why);
	rc = names.n ? 0 : no_nodes(name);
	if (rc == 0)
		rc = forced ? cluster_trylock(d, name, &lock) :
			      cluster_lock(d, name, &lock);
	if (rc < 0) {
		strvec_clear(&names);
		strvec_clear(&why);
		cluster_free(&c);
		return -1;
	}
	if (rc > 0)
		warnf("cluster %s is busy (another nook is starting, stopping "
		      "or deleting it): --force stops its nodes all the same",
		      name);
	each.nodes = &names;
	each.why = &why;
	failed = fan_out(d, &c, each_node, &each, &sig, said);
	strvec_clear(&names);
	strvec_clear(&why);
	if (lock >= 0) {
		vm_cluster_network_gc(d, name);
		close(lock);
	}
	cluster_free(&c);
	die_of(sig);
	return failed;
}

int vm_cluster_each(const struct nook_dirs *d, const char *name,
		    each_fn *fn, const void *arg,
		    struct vm_cluster_said *said)
{
	struct node_each e = { fn, NULL, arg };

	return each_of(d, name, &e, 0, said);
}

static int hosts_node(const struct nook_dirs *d, const char *cluster,
		      const struct member *m, const void *arg,
		      struct buf *words)
{
	struct vm *vm;

	(void)words;
	if (is_member(d, m->name, cluster) &&
	    vm_open(d, m->name, 0, &vm) == 0) {
		write_hosts(vm, arg, 0);
		vm_close(vm);
	}
	return 0;
}

void vm_cluster_hosts(const struct nook_dirs *d, const char *cluster)
{
	struct strvec lines = STRVEC_INIT;
	struct cluster c;
	int lock, sig = 0;

	if (cluster_peek(d, cluster, &c) != 0)
		return;
	/* a cluster another nook is starting gets its names from that
	 * start; one it stops or deletes needs none */
	if (cluster_trylock(d, cluster, &lock) == 0) {
		host_lines(&c, &lines);
		fan_out(d, &c, hosts_node, &lines, &sig, NULL);
		close(lock);
	}
	strvec_clear(&lines);
	cluster_free(&c);
	die_of(sig);
}

static int stop_node(const struct nook_dirs *d, const char *node,
		     const void *arg, struct buf *words)
{
	const struct node_stop *ns = arg;
	const char *how = NULL;
	struct vm *vm;
	int rc = -1;

	if (vm_open(d, node, 1, &vm) == 0)
		rc = vm_stop(vm, ns->force, ns->timeout_s, &how);
	if (rc == 0 && ns->report)
		ns->report(node, how);
	if (rc == 0)
		buf_adds(words, how);
	vm_close(vm);
	return rc;
}

/* A node whose record cannot be read: its QEMU, found by its paths as a
 * delete finds it, ended with --force (its network is not stopped under
 * it); refused without. */
static int stop_broken(const struct nook_dirs *d, const char *node,
		       const void *arg, struct buf *words)
{
	const struct node_stop *ns = arg;
	const char *how = NULL;
	struct vm_paths p;
	int rc;

	if (!ns->force)
		return errorf("node %s's record cannot be read (said above): "
			      "--force ends its QEMU, and 'nook local delete "
			      "%s --force' removes it", node, node);
	if (vm_paths_init(&p, d, node) < 0)
		return -1;
	rc = vm_stop_qemu(&p, 1, ns->timeout_s, &how, NULL);
	if (rc == 0 && ns->report)
		ns->report(node, how);
	if (rc == 0)
		buf_adds(words, how);
	vm_paths_free(&p);
	return rc;
}

int vm_cluster_stop(const struct nook_dirs *d, const char *name, int force,
		    int timeout_s,
		    void (*report)(const char *node, const char *how),
		    struct vm_cluster_said *said)
{
	struct node_stop ns = { force, timeout_s, report };
	struct node_each e = { stop_node, stop_broken, &ns };
	int failed = each_of(d, name, &e, force, said);

	if (failed < 0)
		return -1;
	return failed ? errorf("cluster %s: %d node%s did not stop", name,
			       failed, failed == 1 ? "" : "s") : 0;
}

/* The directories of c's nodes that a first start cut short left without
 * a record (prune's half-made ones). */
static void half_made_nodes(const struct nook_dirs *d,
			    const struct cluster *c, struct strvec *out)
{
	struct strvec all = STRVEC_INIT;

	vm_half_made(d, &all);
	for (size_t i = 0; i < all.n; i++) {
		const char *base = strrchr(all.v[i], '/') + 1;

		for (size_t j = 0; j < c->n; j++)
			if (!strcmp(base, c->m[j].name))
				strvec_push(out, all.v[i]);
	}
	strvec_clear(&all);
}

/* c's nodes, opened into a vector (*n of them): each whose record says
 * it is c's, and each whose record cannot be read (said once, as it is
 * read). A name with no record is none: half_made_nodes() finds its
 * directory. */
static struct vm **open_nodes(const struct nook_dirs *d,
			      const struct cluster *c, size_t *n)
{
	struct vm **vms = xmalloc(sizeof(*vms) * (c->n + 1));

	*n = 0;
	for (size_t i = 0; i < c->n; i++) {
		char *json = xasprintf("%s/vms/%s/vm.json", d->data,
				       c->m[i].name);
		int has = access(json, F_OK) == 0;
		struct vm *vm;

		free(json);
		if (!has || vm_open(d, c->m[i].name, VM_OPEN_BROKEN, &vm) < 0)
			continue;
		if (vm->broken || (vm->exists && vm->spec.cluster &&
				   !strcmp(vm->spec.cluster, c->name)))
			vms[(*n)++] = vm;
		else
			vm_close(vm);
	}
	return vms;
}

/* Lock each of the n nodes in vms: -1 having said why when one is busy,
 * runs without force, or cannot be read without force. */
static int lock_nodes(struct vm **vms, size_t n, const char *cluster,
		      int force)
{
	int ret = 0;

	for (size_t i = 0; i < n; i++) {
		const char *name = vm_name(vms[i]);
		struct vm_info info;

		if (vms[i]->broken && !force) {
			ret = errorf("node %s's record cannot be read (said "
				     "above); 'nook local delete %s --force' "
				     "removes it with the other nodes", name,
				     cluster);
			continue;
		}
		if (vm_take_lock(vms[i]) < 0) {
			ret = -1;
			continue;
		}
		if (force || vms[i]->broken)
			continue;
		vm_get_info(vms[i], &info);
		if (info.pid)
			ret = errorf("node %s is running (pid %d); stop the "
				     "cluster first or use --force", name,
				     (int)info.pid);
	}
	return ret;
}

int vm_cluster_delete(const struct nook_dirs *d, const char *name, int force)
{
	struct strvec half = STRVEC_INIT;
	struct buf why = BUF_INIT;
	struct cluster c;
	struct vm **vms = NULL;
	size_t n = 0;
	char *path;
	enum record rc = cluster_read(d, name, &c, &why);
	int ret = 0, lock = -1;

	/* a broken record of no node: what is left to delete is the file */
	if (rc == REC_ORPHAN)
		warnf("%s; no VM is a node of cluster %s: removing the record",
		      why.p, name);
	else if (rc == REC_NONE)
		ret = errorf("no cluster named '%s'", name);
	else if (rc == REC_BROKEN)
		ret = errorf("%s", why.p);
	buf_free(&why);
	if (ret < 0)
		return -1;
	if (rc == REC_OK) {
		vms = open_nodes(d, &c, &n);
		half_made_nodes(d, &c, &half);
		cluster_free(&c);
	}
	/* all or nothing: every node locked (a start of one holds it) and
	 * none refused before any goes */
	ret = cluster_lock(d, name, &lock);
	if (ret == 0 && lock_nodes(vms, n, name, force) < 0) {
		errorf("cluster %s: no node deleted", name);
		ret = -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (ret == 0) {
			vms[i]->cluster_held = 1; /* its record goes below */
			if (vm_remove(vms[i], force) < 0)
				ret = -1;
		}
		vm_close(vms[i]);
	}
	free(vms);
	/* one being made after all says so and is left to 'nook prune' */
	for (size_t i = 0; ret == 0 && i < half.n; i++)
		vm_half_made_remove(d, half.v[i]);
	strvec_clear(&half);
	if (ret < 0) {
		if (lock >= 0)
			close(lock);
		return -1;
	}
	path = record_path(d, name);
	if (unlink(path) < 0 && errno != ENOENT)
		ret = error_errno("cannot remove %s", path);
	free(path);
	take_gone(d, name); /* no record: the marks go */
	if (drop_leftovers(d, name) < 0)
		ret = -1;
	close(lock);
	return ret;
}

void vm_cluster_node_gone(const struct nook_dirs *d, const char *cluster,
			  int node)
{
	char *path = record_path(d, cluster);
	int lock, rc = access(path, F_OK) == 0 ? 1 : -1;
	struct cluster c;

	/* under the cluster's lock: a start growing the cluster writes the
	 * record too. Another node's delete holds it briefly; a start holds
	 * it for its boots, a stop while its guests shut down, the names
	 * update while it reaches each node: then the node is marked gone
	 * for whichever nook holds it next. A delete of the whole cluster
	 * never gets here: it keeps the record itself (vm->cluster_held). */
	for (int i = 0; rc == 1 && i < 60; i++)
		if ((rc = cluster_trylock(d, cluster, &lock)) == 1)
			sleep_ms(50);
	free(path);
	if (rc == 1) {
		char *mark = gone_path(d, cluster, node);

		if (write_file_atomic(mark, "", 0, 0600) < 0)
			warnf("cluster %s is busy: its record still counts "
			      "node %d, which its next start makes again",
			      cluster, node);
		free(mark);
	}
	if (rc != 0)
		return;
	take_gone(d, cluster);
	if (cluster_peek(d, cluster, &c) != 0) {
		close(lock);
		return;
	}
	if (node == c.nodes && trim_end(d, &c))
		save_trimmed(d, &c);
	cluster_free(&c);
	close(lock);
}

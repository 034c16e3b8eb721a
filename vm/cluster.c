/* Clusters: VMs NAME-1..NAME-N on one private network. The record is
 * DATA/clusters/NAME.json (its subnet and how many nodes); each node is a
 * full VM whose spec says which node of which cluster it is. Here: the
 * record, the nodes' names, the network's life, /etc/hosts; what runs on
 * every node at once is in nodes.c. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cidata.h"
#include "cluster.h"

void cluster_free(struct cluster *c)
{
	free(c->name);
	free(c->subnet);
	for (size_t i = 0; i < c->n; i++)
		free(c->m[i].name);
	free(c->m);
	memset(c, 0, sizeof(*c));
}

char *record_path(const struct nook_dirs *d, const char *name)
{
	return xasprintf("%s/clusters/%s.json", d->data, name);
}

char *vm_cluster_node_name(const char *cluster, const char *group, int i)
{
	return group ? xasprintf("%s-%s-%d", cluster, group, i) :
		       xasprintf("%s-%d", cluster, i);
}

char *node_name(const char *cluster, int i)
{
	return vm_cluster_node_name(cluster, NULL, i);
}

void add_member(struct cluster *c, const char *name, int node)
{
	c->m = xrealloc(c->m, sizeof(*c->m) * (c->n + 1));
	c->m[c->n].name = xstrdup(name);
	c->m[c->n++].node = node;
	if (node > c->nodes)
		c->nodes = node;
}

const struct member *find_member(const struct cluster *c,
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

/* By number; two of one number (said as wrong) by name, as said. */
static int cmp_member(const void *a, const void *b)
{
	const struct member *x = a, *y = b;

	return x->node != y->node ? x->node - y->node :
				    strcmp(x->name, y->name);
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

/* Into why: a and b, nodes of c, say they have one number (a hand edit),
 * and what ends it: the one whose name is not NAME-N of that number is
 * named to mend or delete (b when neither or both are). */
static void same_number(const struct cluster *c, const struct member *a,
			const struct member *b, struct buf *why)
{
	char *n = node_name(c->name, a->node);
	const struct member *odd = !strcmp(n, b->name) ? a : b;

	buf_addf(why, "nodes %s and %s are both node %d: mend %s's vm.json, "
		 "or 'nook local delete %s --force' removes it", a->name,
		 b->name, a->node, odd->name, odd->name);
	free(n);
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
	while (dir && !why->len) {
		size_t k = strlen(name);
		struct vm *vm;

		e = readdir(dir);
		if (!e)
			break;
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
			same_number(c, &c->m[i - 1], &c->m[i], why);
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

	if (!vm_looking_only() &&
	    cluster_trylock(d, c->name, "record", &lock) == 0) {
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

/* 1 when a VM is named as a node of c is (NAME-N, NAME-GROUP-N) but is
 * no member: only then are the VMs' records read (rebuild()), which
 * says any that cannot be. */
static int maybe_strays(const struct nook_dirs *d, const struct cluster *c)
{
	char *vms = xasprintf("%s/vms", d->data);
	DIR *dir = opendir(vms);
	size_t k = strlen(c->name);
	int any = 0;

	while (dir && !any) {
		struct dirent *e = readdir(dir);
		const char *dash;

		if (!e)
			break;
		dash = strrchr(e->d_name, '-');
		any = !strncmp(e->d_name, c->name, k) &&
		      e->d_name[k] == '-' && vm_name_valid(e->d_name) &&
		      node_number(dash + 1) && !find_member(c, e->d_name);
	}
	if (dir)
		closedir(dir);
	free(vms);
	return any;
}

/* Into c, each node of all (its nodes' own records) that c leaves out,
 * when it is on c's subnet with a number no member has: how many, their
 * names in names; the others, each with why, in left, counted in
 * *nleft. */
static size_t add_strays(struct cluster *c, const struct cluster *all,
			 struct buf *names, struct buf *left, size_t *nleft)
{
	int same_net = !strcmp(all->subnet, c->subnet);
	size_t added = 0;

	for (size_t i = 0; i < all->n; i++) {
		const struct member *m = &all->m[i];
		const char *holder = NULL;

		if (find_member(c, m->name))
			continue;
		for (size_t j = 0; j < c->n && !holder; j++)
			if (c->m[j].node == m->node)
				holder = c->m[j].name;
		if (holder)
			buf_addf(left, "%s%s (its number, %d, is %s's there)",
				 left->len ? ", " : "", m->name, m->node,
				 holder);
		else if (!same_net)
			buf_addf(left, "%s%s (on %s, the record's subnet %s)",
				 left->len ? ", " : "", m->name, all->subnet,
				 c->subnet);
		if (holder || !same_net) {
			(*nleft)++;
			continue;
		}
		add_member(c, m->name, m->node);
		buf_addf(names, "%s%s", added++ ? ", " : "", m->name);
	}
	if (added)
		qsort(c->m, c->n, sizeof(*c->m), cmp_member);
	return added;
}

/* 1 the first time this process asks of path: what a record that stays
 * as it is leaves out is said once, not at each of a command's reads. */
static int said_once(const char *path)
{
	static char *said; /* a process reads one cluster's record */

	if (said && !strcmp(said, path))
		return 0;
	free(said);
	said = xstrdup(path);
	return 1;
}

/* Nodes the record at path leaves out though their own records say they
 * are c's (a hand-edited "nodes" or "members"): a stop or delete of the
 * cluster would miss them, and end the network under them. Each on the
 * record's subnet, with a number no member has, is added to c, and to
 * the record as it is under the cluster's lock (another nook may have
 * changed it since c was read), saved unless another nook holds the lock
 * or this one only looks; said either way. Those that cannot be added,
 * and VMs that cannot be told to be nodes or not, are said with what
 * mends the record. */
static void take_strays(const struct nook_dirs *d, const char *path,
			struct cluster *c)
{
	struct buf whynot = BUF_INIT, names = BUF_INIT, left = BUF_INIT;
	struct buf scratch = BUF_INIT;
	struct cluster all = { 0 }, now;
	size_t added = 0, nleft = 0;
	int lock = -1, saved = 0, tried = maybe_strays(d, c);

	if (tried && rebuild(d, c->name, &all, &whynot) == 0)
		added = add_strays(c, &all, &names, &left, &nleft);
	if (added && !vm_looking_only() &&
	    cluster_trylock(d, c->name, "record", &lock) == 0 &&
	    parse_record(path, c->name, &now, &scratch) == 0) {
		buf_free(&names);
		buf_free(&left);
		nleft = 0;
		added = add_strays(&now, &all, &names, &left, &nleft);
		saved = added && cluster_save(d, &now) == 0;
		cluster_free(c);
		*c = now;
	}
	if (lock >= 0)
		close(lock);
	if (added)
		warnf("%s leaves out %s, which say%s of cluster %s: %s", path,
		      names.p, added == 1 ? "s it is a node" :
		      " they are nodes", c->name, saved ? "added" :
		      "counted in");
	if (left.len && said_once(path))
		warnf("%s leaves out %s, which cannot be taken in: a stop or "
		      "delete of cluster %s misses %s; remove the file, and "
		      "the next command makes it again from the nodes' own "
		      "records", path, left.p, c->name,
		      nleft == 1 ? "it" : "them");
	else if (tried && whynot.len && said_once(path))
		warnf("%s may leave out nodes of cluster %s, which cannot be "
		      "told: %s", path, c->name, whynot.p);
	cluster_free(&all);
	buf_free(&whynot);
	buf_free(&names);
	buf_free(&left);
	buf_free(&scratch);
}

/*
 * The record of cluster name into *c; why says what is wrong with a
 * broken one. One that does not parse, or is gone while VMs say they are
 * its nodes, is rebuilt from them (rebuild(), save_rebuilt()); nodes a
 * good one leaves out are taken in (take_strays()): either is said on
 * stderr, nothing else is.
 */
enum record cluster_read(const struct nook_dirs *d, const char *name,
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
			take_strays(d, path, c);
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

/* To why, cluster_read()'s of name's REC_ORPHAN: what forgets it. */
static void orphan_why(struct buf *why, const char *name)
{
	buf_addf(why, ", and no VM is a node of cluster %s to rebuild it "
		 "from: 'nook local delete %s' forgets it", name, name);
}

/* cluster_read(), saying why when the record cannot be had: 0 and *c
 * filled; 1 when there is no such cluster; -1. */
int cluster_load(const struct nook_dirs *d, const char *name,
		 struct cluster *c)
{
	struct buf why = BUF_INIT;
	int rc = cluster_read(d, name, c, &why);

	if (rc == REC_ORPHAN)
		orphan_why(&why, name);
	if (rc < 0)
		errorf("%s", why.p);
	buf_free(&why);
	return rc < 0 ? -1 : rc;
}

/* cluster_read(), why dropped */
enum record cluster_peek(const struct nook_dirs *d, const char *name,
			 struct cluster *c)
{
	struct buf why = BUF_INIT;
	enum record rc = cluster_read(d, name, c, &why);

	buf_free(&why);
	return rc;
}

/* 1 when every member is NAME-N with N its number: the plain record. */
int plain_members(const struct cluster *c)
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

int cluster_save(const struct nook_dirs *d, const struct cluster *c)
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
	 * nodes remain, which cluster_read() makes again, or says why it
	 * cannot (two nodes with one number, a VM that may be a node and
	 * cannot be read): a cluster still, never a new plain VM's name */
	path = xasprintf("%s/vms/%s/vm.json", d->data, name);
	if (lstat(path, &st) < 0) {
		enum record rc = cluster_peek(d, name, &c);

		if (rc == REC_OK)
			cluster_free(&c);
		ret = rc == REC_OK || rc == REC_BROKEN;
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
enum node_kind node_kind(const struct nook_dirs *d, const char *name,
			 const char *cluster)
{
	char *json = xasprintf("%s/vms/%s/vm.json", d->data, name);
	struct vm *vm = NULL;
	enum node_kind k = NODE_NONE;
	struct stat st;

	if (lstat(json, &st) == 0 &&
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
int is_member(const struct nook_dirs *d, const char *name,
	      const char *cluster)
{
	return node_kind(d, name, cluster) == NODE_OK;
}

/* The names of c's members that are its nodes: a VM that merely has a
 * node's name is not one. With why (not NULL): also each member whose
 * record cannot be read, its error in why (each other's why ""). */
void members(const struct nook_dirs *d, const struct cluster *c,
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

char *vm_cluster_no_nodes_text(const char *name)
{
	return xasprintf("cluster %s has no nodes: 'nook local start %s' "
			 "makes them again (its own options: no node keeps "
			 "an earlier start's image or sizes), 'nook local "
			 "delete %s' forgets it", name, name, name);
}

/* A cluster whose record stayed when its last node was deleted. */
int no_nodes(const char *name)
{
	char *text = vm_cluster_no_nodes_text(name);

	errorf("%s", text);
	free(text);
	return -1;
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
int node_number(const char *s)
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
void host_lines(const struct cluster *c, struct strvec *out)
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
void write_hosts(struct vm *vm, const struct strvec *lines, int ready)
{
	struct strvec cmd = STRVEC_INIT;
	struct buf out = BUF_INIT;
	struct vm_info info;

	if (!lines->n)
		return;
	if (!ready) {
		vm_get_info(vm, &info);
		if (info.state != VM_RUNNING ||
		    ssh_banner("127.0.0.1", info.ssh_port,
			       vm_sshd_wait_ms(vm->paths.console_log)) != 1)
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
int cluster_trylock(const struct nook_dirs *d, const char *name,
		    const char *doing, int *fd)
{
	char *dir = xasprintf("%s/clusters", d->data);
	char *path = xasprintf("%s/%s.lock", dir, name);
	int ret = 0;

	*fd = -1;
	if (mkdir_p(dir, 0700) < 0) {
		ret = -1;
		goto out;
	}
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0) {
		ret = error_errno("cannot open %s", path);
		goto out;
	}
	if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		ret = errno == EWOULDBLOCK ? 1 :
		      error_errno("cannot lock %s", path);
		close(*fd);
		*fd = -1;
	} else {
		lock_say(*fd, doing);
	}
out:
	free(path);
	free(dir);
	return ret;
}

/* cluster_trylock(), saying that the cluster is busy: who holds it
 * when it said (an older nook does not), and what to do */
int cluster_lock(const struct nook_dirs *d, const char *name,
		 const char *doing, int *fd)
{
	int rc = cluster_trylock(d, name, doing, fd);
	char *path;
	struct buf who = BUF_INIT;

	if (rc != 1)
		return rc;
	path = xasprintf("%s/clusters/%s.lock", d->data, name);
	vm_busy_holder(path, &who);
	free(path);
	errorf("cluster %s is busy: %s; try again once it is done", name,
	       who.p);
	buf_free(&who);
	return -1;
}

/* What a cluster leaves once it has no record and no node: its network
 * (stopped, its directory removed) and its lock file, which the caller
 * holds. A network directory on a way another user could change (a
 * /tmp/nook-UID someone else made) is not ours to act in: left alone.
 * 0, or -1 having said why. */
int drop_leftovers(const struct nook_dirs *d, const char *name)
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
int no_cluster(const struct nook_dirs *d, const char *name)
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

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* 1 when a member of c has a record, read or not (not read: list has
 * said what is wrong with one that cannot be). */
static int any_record(const struct nook_dirs *d, const struct cluster *c)
{
	int any = 0;

	for (size_t i = 0; !any && i < c->n; i++) {
		char *json = xasprintf("%s/vms/%s/vm.json", d->data,
				       c->m[i].name);
		struct stat st;

		any = lstat(json, &st) == 0;
		free(json);
	}
	return any;
}

/* The names of the records under d (DATA/clusters/NAME.json), sorted,
 * into out. */
static void record_names(const struct nook_dirs *d, struct strvec *out)
{
	char *path = xasprintf("%s/clusters", d->data);
	DIR *dir = opendir(path);

	while (dir) {
		struct dirent *e = readdir(dir);
		size_t n;
		char *name;

		if (!e)
			break;
		n = strlen(e->d_name);
		if (n <= 5 || strcmp(e->d_name + n - 5, ".json"))
			continue;
		name = xstrndup(e->d_name, n - 5);
		if (vm_name_valid(name))
			strvec_push(out, name);
		free(name);
	}
	if (dir)
		closedir(dir);
	/* none: out->v may be NULL, which qsort() must not be given */
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), cmp_name);
	free(path);
}

void vm_clusters_empty(const struct nook_dirs *d, const struct strvec *named,
		       struct strvec *out, struct strvec *broken,
		       struct strvec *why)
{
	struct strvec names = STRVEC_INIT;

	record_names(d, &names);
	/* a record gone that its nodes cannot make again has no file */
	for (size_t i = 0; named && i < named->n; i++)
		if (vm_name_valid(named->v[i]) &&
		    strvec_index(&names, named->v[i]) < 0)
			strvec_push(&names, named->v[i]);
	if (names.n)
		qsort(names.v, names.n, sizeof(*names.v), cmp_name);
	for (size_t i = 0; i < names.n; i++) {
		struct buf w = BUF_INIT;
		struct cluster c;
		enum record rc = cluster_read(d, names.v[i], &c, &w);

		if (rc == REC_OK && !any_record(d, &c))
			strvec_push(out, names.v[i]);
		/* no node to list it under, nor to rebuild it from: said
		 * here, or the user never learns what delete would forget */
		if (rc == REC_ORPHAN && broken) {
			orphan_why(&w, names.v[i]);
			strvec_push(broken, names.v[i]);
			strvec_push(why, w.p);
		}
		/* nodes listed, but every command on the cluster fails:
		 * why is said once, here */
		if (rc == REC_BROKEN && broken && w.len) {
			strvec_push(broken, names.v[i]);
			strvec_push(why, w.p);
		}
		if (rc == REC_OK)
			cluster_free(&c);
		buf_free(&w);
	}
	strvec_clear(&names);
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
		rc = cluster_trylock(d, name, "prune", &lock);
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
int check_names(const struct nook_dirs *d, const char *name,
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

/* A cluster's address plan, its NICs' MACs and each node's network-config. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "net.h"

/* Deeper than any network-config; it bounds the copy's recursion. */
#define MAX_DEPTH 32

static uint32_t prefix_mask(int prefix)
{
	return prefix <= 0 ? 0 : 0xffffffffu << (32 - prefix);
}

/* Two CIDR blocks overlap when one holds the other. */
static int overlaps(uint32_t a, int pa, uint32_t b, int pb)
{
	uint32_t m = prefix_mask(pa < pb ? pa : pb);

	return (a & m) == (b & m);
}

static const struct reserved {
	uint32_t net;
	int prefix;
	const char *what;
} reserved[] = {
	{ 0x0a000200, 24, "10.0.2.0/24, QEMU's user-mode network (slirp) "
			  "that every node's uplink is on" },
	{ 0x7f000000, 8, "127.0.0.0/8, the host's loopback" },
	{ 0x00000000, 8, "0.0.0.0/8 (\"this network\")" },
	{ 0xa9fe0000, 16, "169.254.0.0/16, link-local (cloud metadata)" },
	{ 0xe0000000, 4, "224.0.0.0/4, multicast" },
	{ 0xf0000000, 4, "240.0.0.0/4, reserved" },
};

/* "A.B.C.D/P" into host-order address and prefix (0..32); -1 if not. */
static int parse_cidr(const char *s, size_t len, uint32_t *addr, int *prefix)
{
	const char *slash = memchr(s, '/', len);
	char a[INET_ADDRSTRLEN];
	struct in_addr ia;
	size_t alen, plen;
	int p = 0;

	if (!slash)
		return -1;
	alen = (size_t)(slash - s);
	plen = len - alen - 1;
	if (alen == 0 || alen >= sizeof(a) || plen == 0 || plen > 2)
		return -1;
	memcpy(a, s, alen);
	a[alen] = '\0';
	if (inet_pton(AF_INET, a, &ia) != 1)
		return -1;
	for (size_t i = 0; i < plen; i++) {
		if (slash[1 + i] < '0' || slash[1 + i] > '9')
			return -1;
		p = p * 10 + (slash[1 + i] - '0');
	}
	if (p > 32)
		return -1;
	*addr = ntohl(ia.s_addr);
	*prefix = p;
	return 0;
}

static void format_cidr(uint32_t net, int prefix, char *out, size_t size)
{
	struct in_addr ia = { htonl(net) };
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &ia, a, sizeof(a));
	snprintf(out, size, "%s/%d", a, prefix);
}

int net_subnet_check(const char *cidr, struct net_subnet *s,
		     struct buf *why)
{
	char canon[sizeof(s->cidr)];
	uint32_t net;
	int prefix;

	memset(s, 0, sizeof(*s));
	if (parse_cidr(cidr, strlen(cidr), &net, &prefix) < 0) {
		buf_addf(why, "subnet '%s': expected an IPv4 A.B.C.D/PREFIX, "
			 "e.g. %s", cidr, NET_SUBNET_DEFAULT);
		return -1;
	}
	if (prefix < 16 || prefix > 29) {
		buf_addf(why, "subnet '%s': the prefix must be 16 to 29 (/29 "
			 "holds 6 nodes, /16 65534)", cidr);
		return -1;
	}
	format_cidr(net & prefix_mask(prefix), prefix, canon, sizeof(canon));
	if (net & ~prefix_mask(prefix)) {
		buf_addf(why, "subnet '%s' has host bits set: did you mean "
			 "%s?", cidr, canon);
		return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(reserved); i++) {
		const struct reserved *r = &reserved[i];

		if (overlaps(net, prefix, r->net, r->prefix)) {
			buf_addf(why, "subnet '%s' overlaps %s; pick another, "
				 "e.g. %s", cidr, r->what, NET_SUBNET_DEFAULT);
			return -1;
		}
	}
	s->net = net;
	s->prefix = prefix;
	memcpy(s->cidr, canon, sizeof(canon));
	return 0;
}

int net_subnet_parse(const char *cidr, struct net_subnet *s)
{
	struct buf why = BUF_INIT;
	int ret = net_subnet_check(cidr, s, &why);

	if (ret < 0)
		errorf("%s", why.p);
	buf_free(&why);
	return ret;
}

int net_node_address(const struct net_subnet *s, int node,
		     char out[INET_ADDRSTRLEN])
{
	uint32_t room = (1u << (32 - s->prefix)) - 2;
	struct in_addr ia;

	if (node < 1 || (uint32_t)node > room)
		return errorf("node %d does not fit in subnet %s: it has room "
			      "for nodes 1 to %u", node, s->cidr, room);
	ia.s_addr = htonl(s->net + (uint32_t)node);
	inet_ntop(AF_INET, &ia, out, INET_ADDRSTRLEN);
	return 0;
}

void net_node_mac(const char *cluster, int node, char out[18])
{
	char base[18];

	/* base is "02:6e:AA:BB:CC:DD": keep AA:BB, put the node after */
	net_mac("cluster", cluster, 0, base);
	snprintf(out, 18, "06:6e:%.5s:%02x:%02x", base + 6,
		 (unsigned)(node >> 8) & 0xff, (unsigned)node & 0xff);
}

void net_node_network_config(const char *uplink_mac, const char *node_mac,
			     const char *addr, int prefix, struct buf *out)
{
	buf_addf(out,
		 "version: 2\n"
		 "ethernets:\n"
		 "  " NET_NC_UPLINK ":\n"
		 "    match:\n"
		 "      macaddress: \"%s\"\n"
		 "    dhcp4: true\n"
		 "  " NET_NC_CLUSTER ":\n"
		 "    match:\n"
		 "      macaddress: \"%s\"\n"
		 "    dhcp4: false\n"
		 "    addresses:\n"
		 "      - \"%s/%d\"\n",
		 uplink_mac, node_mac, addr, prefix);
}

/* --- merging a user's network-config with ours --- */

struct nc {
	yaml_document_t doc;
	int loaded;
	yaml_node_t *top; /* the version 2 mapping; NULL when empty */
};

/* What of ours the user must leave alone. */
struct ours {
	const char *ids[4];
	const char *macs[4];
	size_t n;
	uint32_t net;
	int prefix; /* 0: no address of ours */
};

static int is_scalar(const yaml_node_t *n, const char *s)
{
	return n && n->type == YAML_SCALAR_NODE &&
	       n->data.scalar.length == strlen(s) &&
	       !memcmp(n->data.scalar.value, s, n->data.scalar.length);
}

/* A scalar's text (libyaml ends it with a NUL), or NULL. */
static const char *str(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ?
	       (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *node(yaml_document_t *d, int id)
{
	return yaml_document_get_node(d, id);
}

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *map,
			    const char *key)
{
	yaml_node_pair_t *p;

	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++)
		if (is_scalar(node(d, p->key), key))
			return node(d, p->value);
	return NULL;
}

static int load_error(const char *what, yaml_parser_t *parser)
{
	const yaml_mark_t *m = &parser->problem_mark;

	return errorf("%s:%zu:%zu: %s%s%s", what, m->line + 1, m->column + 1,
		      parser->problem ? parser->problem : "invalid YAML",
		      parser->context ? " " : "",
		      parser->context ? parser->context : "");
}

/* The version 2 mapping of a loaded document, bare or under "network". */
static int find_top(const char *what, struct nc *c)
{
	yaml_node_t *root = yaml_document_get_root_node(&c->doc);
	yaml_node_t *net = map_get(&c->doc, root, "network");
	yaml_node_t *v;

	if (!root || (root->type == YAML_SCALAR_NODE &&
		      root->data.scalar.length == 0))
		return 0;
	if (root->type != YAML_MAPPING_NODE)
		return errorf("%s: the top level must be a mapping", what);
	if (net && net->type == YAML_MAPPING_NODE)
		root = net;
	v = map_get(&c->doc, root, "version");
	if (!v)
		return errorf("%s: no 'version: 2'; nook merges network-config "
			      "version 2 only", what);
	if (!is_scalar(v, "2"))
		return errorf("%s: version %s; nook merges network-config "
			      "version 2 only: write it as version 2", what,
			      str(v) ? str(v) : "(not a number)");
	c->top = root;
	return 0;
}

static int nc_load(const char *what, const char *text, size_t len,
		   struct nc *c)
{
	yaml_parser_t parser;
	int ret = 0;

	memset(c, 0, sizeof(*c));
	if (!yaml_parser_initialize(&parser))
		return errorf("%s: cannot start the YAML parser", what);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text,
				     len);
	if (!yaml_parser_load(&parser, &c->doc))
		ret = load_error(what, &parser);
	else
		c->loaded = 1;
	yaml_parser_delete(&parser);
	if (ret == 0)
		ret = find_top(what, c);
	return ret;
}

static void nc_free(struct nc *c)
{
	if (c->loaded)
		yaml_document_delete(&c->doc);
	memset(c, 0, sizeof(*c));
}

/* The first IPv4 CIDR among an addresses list's entries (a scalar, or
 * a mapping keyed by the address), from index *i on; NULL at the end. */
static const char *next_address(yaml_document_t *d, yaml_node_t *list,
				size_t *i)
{
	while (list && list->type == YAML_SEQUENCE_NODE &&
	       list->data.sequence.items.start + *i <
	       list->data.sequence.items.top) {
		yaml_node_t *it = node(d, list->data.sequence.items.start[*i]);

		(*i)++;
		if (it && it->type == YAML_MAPPING_NODE &&
		    it->data.mapping.pairs.start < it->data.mapping.pairs.top)
			it = node(d, it->data.mapping.pairs.start->key);
		if (str(it))
			return str(it);
	}
	return NULL;
}

static int ours_facts(struct nc *c, struct ours *o)
{
	yaml_node_t *eth = map_get(&c->doc, c->top, "ethernets");
	yaml_node_pair_t *p;

	memset(o, 0, sizeof(*o));
	if (!eth || eth->type != YAML_MAPPING_NODE)
		return errorf("network-config: nook's own part has no "
			      "ethernets");
	for (p = eth->data.mapping.pairs.start;
	     p < eth->data.mapping.pairs.top && o->n < ARRAY_SIZE(o->ids);
	     p++) {
		yaml_node_t *def = node(&c->doc, p->value);
		yaml_node_t *match = map_get(&c->doc, def, "match");
		yaml_node_t *addrs = map_get(&c->doc, def, "addresses");
		const char *a;
		size_t i = 0;

		o->ids[o->n] = str(node(&c->doc, p->key));
		o->macs[o->n++] = str(map_get(&c->doc, match, "macaddress"));
		for (a = next_address(&c->doc, addrs, &i); a;
		     a = next_address(&c->doc, addrs, &i))
			if (parse_cidr(a, strlen(a), &o->net, &o->prefix) == 0)
				o->net &= prefix_mask(o->prefix);
	}
	return 0;
}

/* Which of nook's NICs our ethernets id names. */
static const char *nic_of(const char *our_id)
{
	return strcmp(our_id, NET_NC_CLUSTER) ? "uplink" : "cluster";
}

/* A user's ethernets entry id/def: not ours, and not able to match ours. */
static int check_ethernet(yaml_document_t *d, const char *id,
			  yaml_node_t *def, const struct ours *o)
{
	yaml_node_t *match = map_get(d, def, "match");
	const char *mac = str(map_get(d, match, "macaddress"));
	const char *name = str(map_get(d, match, "name"));

	for (size_t i = 0; i < o->n; i++) {
		if (!o->ids[i])
			continue;
		if (!strcmp(id, o->ids[i]))
			return errorf("network-config: ethernets.%s: that id "
				      "is nook's own (its %s NIC); pick "
				      "another", id, nic_of(o->ids[i]));
		if (mac && o->macs[i] && !strcasecmp(mac, o->macs[i]))
			return errorf("network-config: ethernets.%s matches "
				      "%s, the MAC of nook's %s NIC, which "
				      "nook configures itself", id, mac,
				      nic_of(o->ids[i]));
	}
	if (match && !mac && (!name || strpbrk(name, "*?[")))
		return errorf("network-config: ethernets.%s: a match by %s "
			      "can take the cluster's NIC too; match one "
			      "interface by its exact name or MAC", id,
			      name ? "name pattern" : "driver or nothing");
	return 0;
}

/* An entry of any section (ethernets, bonds, ...): no address in our
 * subnet, none of our NICs as a member. */
static int check_entry(yaml_document_t *d, const char *sect, const char *id,
		       yaml_node_t *def, const struct ours *o)
{
	yaml_node_t *addrs = map_get(d, def, "addresses");
	yaml_node_t *ifs = map_get(d, def, "interfaces");
	const char *a;
	size_t i = 0;

	for (a = o->prefix ? next_address(d, addrs, &i) : NULL; a;
	     a = next_address(d, addrs, &i)) {
		uint32_t net;
		int prefix;

		if (parse_cidr(a, strlen(a), &net, &prefix) == 0 &&
		    overlaps(net, prefix, o->net, o->prefix))
			return errorf("network-config: %s.%s: address %s is "
				      "on the cluster's subnet, whose "
				      "addresses nook gives out", sect, id, a);
	}
	for (i = 0; ifs && ifs->type == YAML_SEQUENCE_NODE &&
		    ifs->data.sequence.items.start + i <
		    ifs->data.sequence.items.top; i++) {
		const char *m = str(node(d, ifs->data.sequence.items.start[i]));

		for (size_t k = 0; m && k < o->n; k++)
			if (o->ids[k] && !strcmp(m, o->ids[k]))
				return errorf("network-config: %s.%s takes "
					      "%s, nook's own NIC", sect, id,
					      m);
	}
	return 0;
}

static int check_user(struct nc *u, const struct ours *o)
{
	yaml_document_t *d = &u->doc;
	yaml_node_pair_t *s, *p;

	for (s = u->top->data.mapping.pairs.start;
	     s < u->top->data.mapping.pairs.top; s++) {
		const char *sect = str(node(d, s->key));
		yaml_node_t *v = node(d, s->value);

		if (!sect || !v || v->type != YAML_MAPPING_NODE) {
			if (is_scalar(node(d, s->key), "ethernets") &&
			    !is_scalar(v, ""))
				return errorf("network-config: ethernets must "
					      "be a mapping of interfaces");
			continue;
		}
		for (p = v->data.mapping.pairs.start;
		     p < v->data.mapping.pairs.top; p++) {
			const char *id = str(node(d, p->key));
			yaml_node_t *def = node(d, p->value);

			if (!id)
				continue;
			if (!strcmp(sect, "ethernets") &&
			    check_ethernet(d, id, def, o) < 0)
				return -1;
			if (check_entry(d, sect, id, def, o) < 0)
				return -1;
		}
	}
	return 0;
}

/* Copies nodes of src into dst once each (aliases stay shared, so an
 * alias bomb costs no more than its text). */
struct copier {
	yaml_document_t *src, *dst;
	int *memo;
	int depth;
};

static void copier_init(struct copier *c, yaml_document_t *src,
			yaml_document_t *dst)
{
	size_t n = (size_t)(src->nodes.top - src->nodes.start);

	c->src = src;
	c->dst = dst;
	c->memo = xmalloc((n ? n : 1) * sizeof(int));
	memset(c->memo, 0, (n ? n : 1) * sizeof(int));
	c->depth = 0;
}

static int copy_node(struct copier *c, int id);

static int copy_children(struct copier *c, const yaml_node_t *n, int to)
{
	if (n->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     i < n->data.sequence.items.top; i++) {
			int item = copy_node(c, *i);

			if (!item ||
			    !yaml_document_append_sequence_item(c->dst, to,
								item))
				return -1;
		}
		return 0;
	}
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
	     p < n->data.mapping.pairs.top; p++) {
		int k = copy_node(c, p->key), v = k ? copy_node(c, p->value) : 0;

		if (!v || !yaml_document_append_mapping_pair(c->dst, to, k, v))
			return -1;
	}
	return 0;
}

/* The id in dst of a copy of node id of src; 0 on failure. */
static int copy_node(struct copier *c, int id)
{
	yaml_node_t *n = node(c->src, id);
	int to = 0;

	if (!n)
		return 0;
	if (c->memo[id - 1])
		return c->memo[id - 1];
	if (n->type == YAML_SCALAR_NODE) {
		to = yaml_document_add_scalar(c->dst, n->tag,
					      n->data.scalar.value,
					      (int)n->data.scalar.length,
					      n->data.scalar.style);
		c->memo[id - 1] = to;
		return to;
	}
	if (c->depth >= MAX_DEPTH)
		return 0;
	if (n->type == YAML_SEQUENCE_NODE)
		to = yaml_document_add_sequence(c->dst, n->tag,
						n->data.sequence.style);
	else if (n->type == YAML_MAPPING_NODE)
		to = yaml_document_add_mapping(c->dst, n->tag,
					       n->data.mapping.style);
	c->memo[id - 1] = to;
	c->depth++;
	if (to && copy_children(c, n, to) < 0)
		to = 0;
	c->depth--;
	return to;
}

static int add_key(yaml_document_t *d, const char *key)
{
	return yaml_document_add_scalar(d, NULL, (const yaml_char_t *)key, -1,
					YAML_PLAIN_SCALAR_STYLE);
}

static int node_id(yaml_document_t *d, yaml_node_t *n)
{
	return (int)(n - d->nodes.start) + 1;
}

/* Append every pair of mapping from (in c's source) to mapping to. */
static int copy_pairs(struct copier *c, yaml_node_t *from, int to)
{
	return from && from->type == YAML_MAPPING_NODE ?
	       copy_children(c, from, to) : 0;
}

/* dst's root: version, the user's keys with ethernets = theirs + ours. */
static int build(struct nc *u, struct nc *o, yaml_document_t *dst)
{
	struct copier cu, co;
	yaml_node_t *oeth = map_get(&o->doc, o->top, "ethernets");
	yaml_node_t *over = map_get(&o->doc, o->top, "version");
	int root, k, v, eth = 0, ret = -1;

	copier_init(&cu, &u->doc, dst);
	copier_init(&co, &o->doc, dst);
	root = yaml_document_add_mapping(dst, NULL, YAML_BLOCK_MAPPING_STYLE);
	k = add_key(dst, "version");
	v = copy_node(&co, node_id(&o->doc, over));
	if (!root || !k || !v ||
	    !yaml_document_append_mapping_pair(dst, root, k, v))
		goto out;
	for (yaml_node_pair_t *p = u->top ? u->top->data.mapping.pairs.start :
	     NULL; p && p < u->top->data.mapping.pairs.top; p++) {
		if (is_scalar(node(&u->doc, p->key), "version"))
			continue;
		k = copy_node(&cu, p->key);
		if (is_scalar(node(&u->doc, p->key), "ethernets")) {
			v = eth = yaml_document_add_mapping(dst, NULL,
					YAML_BLOCK_MAPPING_STYLE);
			if (v && copy_pairs(&cu, node(&u->doc, p->value), v) < 0)
				v = 0;
		} else {
			v = copy_node(&cu, p->value);
		}
		if (!k || !v ||
		    !yaml_document_append_mapping_pair(dst, root, k, v))
			goto out;
	}
	if (!eth) {
		k = add_key(dst, "ethernets");
		eth = yaml_document_add_mapping(dst, NULL,
						YAML_BLOCK_MAPPING_STYLE);
		if (!k || !eth ||
		    !yaml_document_append_mapping_pair(dst, root, k, eth))
			goto out;
	}
	ret = copy_pairs(&co, oeth, eth);
out:
	free(cu.memo);
	free(co.memo);
	return ret;
}

static int write_out(void *data, unsigned char *bytes, size_t size)
{
	buf_add(data, bytes, size);
	return 1;
}

/* Emit doc (which this deletes) to out. */
static int emit(yaml_document_t *doc, struct buf *out)
{
	yaml_emitter_t em;
	int ok;

	if (!yaml_emitter_initialize(&em)) {
		yaml_document_delete(doc);
		return errorf("network-config: cannot start the YAML writer");
	}
	yaml_emitter_set_output(&em, write_out, out);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, -1);
	yaml_emitter_set_indent(&em, 2);
	ok = yaml_emitter_open(&em);
	if (!ok)
		yaml_document_delete(doc);
	ok = ok && yaml_emitter_dump(&em, doc) && yaml_emitter_close(&em) &&
	     yaml_emitter_flush(&em);
	yaml_emitter_delete(&em);
	if (!ok)
		return errorf("network-config: cannot write the merged YAML");
	return 0;
}

int net_network_config_merge(const char *user, size_t len, const char *ours,
			     struct buf *out)
{
	struct nc u, o;
	struct ours facts;
	yaml_document_t dst;
	int ret = -1;

	if (nc_load("network-config (nook's)", ours, strlen(ours), &o) < 0 ||
	    !o.top || ours_facts(&o, &facts) < 0) {
		nc_free(&o);
		return -1;
	}
	if (nc_load("network-config", user ? user : "", user ? len : 0,
		    &u) < 0 || (u.top && check_user(&u, &facts) < 0))
		goto out;
	if (!yaml_document_initialize(&dst, NULL, NULL, NULL, 1, 1)) {
		errorf("network-config: out of memory");
		goto out;
	}
	if (build(&u, &o, &dst) < 0) {
		yaml_document_delete(&dst);
		errorf("network-config: nested too deep or out of memory");
		goto out;
	}
	ret = emit(&dst, out);
out:
	nc_free(&u);
	nc_free(&o);
	return ret;
}

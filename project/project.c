/* nook.yaml: finding it, reading it with libyaml, checking every key. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "cidata.h"
#include "project.h"
#include "vm.h"

/* Where a message points: "PATH:LINE:COLUMN". */
struct pctx {
	yaml_document_t *doc;
	const char *path;
	const char *dir;
	char *root;	/* dir, resolved: what the file's paths stay under */
	char *where;
	size_t taken;	/* bytes of values read, aliases counted each time */
};

/* The values a file's aliases (*name) may come to, read as often as they
 * are named: a file of 100 KB naming a 100 KB list 40 times would be
 * a gigabyte to copy. */
#define PROJECT_MAX_TAKEN (2 * PROJECT_MAX_BYTES)

static const char *at(struct pctx *c, const yaml_node_t *n)
{
	free(c->where);
	c->where = xasprintf("%s:%zu:%zu", c->path,
			     n ? n->start_mark.line + 1 : 1,
			     n ? n->start_mark.column + 1 : 1);
	return c->where;
}

/* s with what a terminal would act on (C0 and C1 controls, DEL) shown
 * as \xNN: a file's keys and values are echoed in messages. */
static char *printable(const char *s)
{
	struct buf b = BUF_INIT;

	for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
		if (*u < 0x20 || *u == 0x7f)
			buf_addf(&b, "\\x%02x", *u);
		else if (*u == 0xc2 && u[1] >= 0x80 && u[1] <= 0x9f)
			buf_addf(&b, "\\u%04x", *++u);
		else
			buf_add(&b, u, 1);
	}
	buf_add(&b, "", 0);
	return b.p;
}

/* s holds something printable() would change. */
static int has_control(const char *s)
{
	char *p = printable(s);
	int changed = strcmp(p, s) != 0;

	free(p);
	return changed;
}

static int fail(struct pctx *c, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct pctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;
	char *msg, *shown;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	shown = printable(msg);
	errorf("%s: %s", at(c, n), shown);
	free(shown);
	free(msg);
	return -1;
}

static yaml_node_t *node(struct pctx *c, int id)
{
	return yaml_document_get_node(c->doc, id);
}

/* A plain ~ or null: YAML's "nothing", never a value nook takes. */
static int is_null(const yaml_node_t *n)
{
	static const char *const nulls[] = { "~", "null", "Null", "NULL" };
	const char *v = (const char *)n->data.scalar.value;

	if (n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(nulls); i++)
		if (!strcmp(v, nulls[i]))
			return 1;
	return 0;
}

static const char *kind(const yaml_node_t *n)
{
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	return n->data.scalar.length && !is_null(n) ? "a single value" :
	       "nothing";
}

/* A tag nook does not know (!custom): refused, not ignored. */
static int bad_tag(const yaml_node_t *n)
{
	const char *t = (const char *)n->tag;

	return t && strncmp(t, "tag:yaml.org,2002:", 18) != 0;
}

/* A scalar's text (libyaml ends it with a NUL); NULL, having said so,
 * when n is none or empty, or holds a NUL or a control character (no
 * value nook takes has one). */
static const char *scalar(struct pctx *c, const char *key,
			  const yaml_node_t *n, const char *want)
{
	const char *v;

	if (n->type != YAML_SCALAR_NODE || !n->data.scalar.length ||
	    is_null(n)) {
		fail(c, n, "%s: expected %s, not %s", key, want, kind(n));
		return NULL;
	}
	c->taken += n->data.scalar.length;
	if (c->taken > PROJECT_MAX_TAKEN) {
		fail(c, n, "%s: the file's values come to more than %zu KiB "
		     "with its aliases (*name) repeated; a project file's "
		     "values are at most that", key, PROJECT_MAX_TAKEN >> 10);
		return NULL;
	}
	v = (const char *)n->data.scalar.value;
	if (bad_tag(n)) {
		fail(c, n, "%s: an unknown tag %s: nook.yaml takes plain "
		     "values", key, (const char *)n->tag);
		return NULL;
	}
	if (strlen(v) != n->data.scalar.length) {
		fail(c, n, "%s: a NUL character in the value", key);
		return NULL;
	}
	if (has_control(v)) {
		fail(c, n, "%s: a control character in '%s'", key, v);
		return NULL;
	}
	return v;
}

/* The keys each mapping takes. */
static const char *const vm_keys[] = {
	"image", "cpus", "memory", "disk", "user-data", "network-config",
	"ports", "boot", "kernel", "initrd", "append", "accel", "cpu",
	"timeout", NULL
};
static const char *const top_keys[] = { "name", "subnet", "nodes", "sync",
					NULL };
static const char *const group_keys[] = { "group", "count", NULL };
static const char *const sync_keys[] = { "src", "dest", "exclude", "delete",
					 NULL };

static int in_list(const char *const *l, const char *s)
{
	for (; l && *l; l++)
		if (!strcmp(*l, s))
			return 1;
	return 0;
}

/* The known key (in a or b) that key is a typo of, if any. */
static const char *closest(const char *key, const char *const *a,
			   const char *const *b)
{
	const char *const *lists[] = { a, b };

	return typo_of(key, lists, ARRAY_SIZE(lists));
}

static int unknown_key(struct pctx *c, const yaml_node_t *k, const char *key,
		       const char *where, const char *const *a,
		       const char *const *b)
{
	const char *near = closest(key, a, b);

	if (!strcmp(where, "a group") && in_list(top_keys, key))
		return fail(c, k, "%s is for the whole file, not a group: "
			    "move it to the top level", key);
	if (near)
		return fail(c, k, "unknown key '%s' in %s: did you mean %s?",
			    key, where, near);
	return fail(c, k, "unknown key '%s' in %s (see 'nook init' for "
		    "the keys)", key, where);
}

/*
 * Check map's keys: scalars, known (in a or b), none twice. 0 or -1
 * having said which.
 */
static int check_keys(struct pctx *c, const yaml_node_t *map,
		      const char *where, const char *const *a,
		      const char *const *b)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node(c, p->key);
		const char *key;

		if (!k || k->type != YAML_SCALAR_NODE || !k->data.scalar.length)
			return fail(c, k, "a key in %s must be a word, not %s",
				    where, k ? kind(k) : "nothing");
		key = (const char *)k->data.scalar.value;
		if (strlen(key) != k->data.scalar.length)
			return fail(c, k, "a key in %s holds a NUL character",
				    where);
		if (!in_list(a, key) && !in_list(b, key))
			return unknown_key(c, k, key, where, a, b);
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start;
		     q < p; q++) {
			yaml_node_t *o = node(c, q->key);

			if (o && o->type == YAML_SCALAR_NODE &&
			    !strcmp((const char *)o->data.scalar.value, key))
				return fail(c, k, "duplicate key '%s' (first at "
					    "line %zu)", key,
					    o->start_mark.line + 1);
		}
	}
	return 0;
}

static void set(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? xstrdup(v) : NULL;
}

/* A value through one of the checks that say what is wrong (parse_int,
 * parse_size, net_port_parse ...), its message placed at n:
 *	where_on(c, n);
 *	rc = where_off(parse_int(...));
 */
static void where_on(struct pctx *c, const yaml_node_t *n)
{
	error_where(at(c, n));
}

static int where_off(int rc)
{
	error_where(NULL);
	return rc < 0 ? -1 : 0;
}

/* Where abs leads, symlinks followed; for a path not there yet, where
 * its nearest existing directory leads with the rest added. NULL with
 * *err an errno when it cannot be resolved, or 0 when that rest climbs
 * ("missing/../..": where it leads cannot be known). */
static char *resolve(const char *abs, int *err)
{
	char *head = xstrdup(abs), *real = NULL, *slash;
	size_t cut = strlen(head);
	struct stat st;

	/* only what is not there at all: a link that realpath cannot
	 * follow (/proc/self/fd/N) is there, and is no project's file */
	while (!(real = realpath(head, NULL)) && errno == ENOENT &&
	       lstat(head, &st) < 0 && errno == ENOENT &&
	       (slash = strrchr(head, '/')) && slash != head) {
		*slash = '\0';
		cut = (size_t)(slash - head);
	}
	*err = real ? 0 : errno;
	if (real && abs[cut]) {
		const char *rest = abs + cut;

		for (const char *p = rest; p && *p; p = strchr(p + 1, '/'))
			if (!strncmp(p, "/..", 3) && (!p[3] || p[3] == '/')) {
				free(real);
				real = NULL;
				break;
			}
		if (real) {
			char *joined = xasprintf("%s%s", real, rest);

			free(real);
			real = joined;
		}
	}
	free(head);
	return real;
}

/* A path the file names must lead to this project's directory or below
 * it: a project you did not write (a repository cloned) must not send
 * your other files (~/.ssh, a kubeconfig) into a VM that its user-data
 * runs. instead says how to use such a file anyway. */
static int inside(struct pctx *c, const char *key, const yaml_node_t *n,
		  const char *abs, const char *instead)
{
	int err;
	char *real = resolve(abs, &err);
	int ok = real && path_under(c->root, real);

	free(real);
	if (ok)
		return 0;
	if (err)
		return fail(c, n, "%s: cannot tell where %s leads: %s", key,
			    (const char *)n->data.scalar.value, strerror(err));
	return fail(c, n, "%s: %s leads outside this project (%s): the paths "
		    "in a project file stay under its directory, so that a "
		    "project you did not write cannot copy your other files "
		    "into a VM; %s", key, (const char *)n->data.scalar.value,
		    c->root, instead);
}

/* A path relative to the file's directory, made absolute, that must be
 * readable now, and in this project. */
static int take_path(struct pctx *c, const char *key, const yaml_node_t *n,
		     char **out)
{
	const char *v = scalar(c, key, n, "a file name");
	char *abs, *instead;
	int rc;

	if (!v)
		return -1;
	abs = v[0] == '/' ? xstrdup(v) : xasprintf("%s/%s", c->dir, v);
	if (access(abs, R_OK) < 0) {
		int e = errno;

		free(abs);
		return fail(c, n, "%s: cannot read %s: %s%s", key, v,
			    strerror(e), e == ENOENT ? " (paths are relative "
			    "to the directory of this file)" : "");
	}
	instead = !strcmp(key, "src") ?
		  xstrdup("to copy it, give it to 'nook sync SRC DEST'") :
		  xasprintf("to use it, give it as --%s", key);
	rc = inside(c, key, n, abs, instead);
	free(instead);
	if (rc == 0)
		set(out, abs);
	free(abs);
	return rc;
}

/* A path to a file (a kernel, an initrd), not a directory or a FIFO. */
static int take_file(struct pctx *c, const char *key, const yaml_node_t *n,
		     char **out)
{
	struct stat st;

	if (take_path(c, key, n, out) < 0)
		return -1;
	if (stat(*out, &st) < 0 || !S_ISREG(st.st_mode))
		return fail(c, n, "%s: %s is not a file", key,
			    (const char *)n->data.scalar.value);
	return 0;
}

/* A user-data or network-config file: readable, and checked as start
 * checks it (the message names the file, and this file's line). */
static int take_seed_file(struct pctx *c, const char *key,
			  const yaml_node_t *n, char **out)
{
	struct buf b = BUF_INIT;
	const char *shown;
	int rc;

	if (take_path(c, key, n, out) < 0)
		return -1;
	shown = (const char *)n->data.scalar.value;
	where_on(c, n);
	rc = read_file_regular(*out, &b, READ_FILE_MAX);
	if (rc == 0 && !strcmp(key, "user-data"))
		rc = cidata_check_user_data(shown, b.p ? b.p : "", b.len, NULL);
	else if (rc == 0)
		rc = cidata_check_yaml(shown, b.p ? b.p : "", b.len);
	buf_free(&b);
	return where_off(rc);
}

static int take_word(struct pctx *c, const char *key, const yaml_node_t *n,
		     const char *const *ok, char **out)
{
	const char *v = scalar(c, key, n, ok ? "one of its words" : "a word");

	if (!v)
		return -1;
	if (ok && !in_list(ok, v)) {
		struct buf all = BUF_INIT;

		for (const char *const *w = ok; *w; w++)
			buf_addf(&all, "%s%s", w == ok ? "" : ", ", *w);
		fail(c, n, "%s cannot be '%s': one of %s", key, v, all.p);
		buf_free(&all);
		return -1;
	}
	set(out, v);
	return 0;
}

static int take_int(struct pctx *c, const char *key, const yaml_node_t *n,
		    long min, long max, int *out)
{
	const char *v = scalar(c, key, n, "a whole number");
	long l;

	if (!v)
		return -1;
	where_on(c, n);
	if (where_off(parse_int(key, v, min, max, &l)) < 0)
		return -1;
	*out = (int)l;
	return 0;
}

static int take_size(struct pctx *c, const char *key, const yaml_node_t *n,
		     uint64_t min, uint64_t max, uint64_t *out)
{
	const char *v = scalar(c, key, n, "a size such as 2G");

	if (!v)
		return -1;
	where_on(c, n);
	if (where_off(parse_size(key, v, out)) < 0)
		return -1;
	if (*out < min)
		return fail(c, n, "%s %s is below the %lluM a guest needs",
			    key, v, (unsigned long long)(min >> 20));
	if (max && *out > max)
		return fail(c, n, "%s %s is more than the %lluT a VM can have",
			    key, v, (unsigned long long)(max >> 40));
	return 0;
}

static int take_ports(struct pctx *c, const yaml_node_t *n,
		      struct project_vm *v)
{
	size_t count;

	if (n->type != YAML_SEQUENCE_NODE)
		return fail(c, n, "ports: expected a list such as "
			    "[\"8080:80\"], not %s", kind(n));
	count = (size_t)(n->data.sequence.items.top -
			 n->data.sequence.items.start);
	if (count > PROJECT_MAX_PORTS)
		return fail(c, n, "ports: %zu forwards; a VM has at most %d",
			    count, PROJECT_MAX_PORTS);
	free(v->ports);
	v->ports = xmalloc(sizeof(*v->ports) * (count ? count : 1));
	v->nports = 0;
	v->ports_given = 1;
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *it = node(c, n->data.sequence.items.start[i]);
		const char *s = it ? scalar(c, "ports", it,
					    "[ADDR:]HOST:GUEST[/udp]") : NULL;

		if (!s)
			return -1;
		where_on(c, it);
		if (where_off(net_port_parse(s, &v->ports[i])) < 0)
			return -1;
		/* as for paths: a project you did not write must not open
		 * a VM to your network */
		if (strncmp(v->ports[i].addr, "127.", 4))
			return fail(c, it, "ports: %s forwards from %s: a "
				    "project file forwards only from loopback "
				    "(127.x.x.x), so that one you did not write "
				    "cannot open a VM to your network; to open "
				    "it, give it as --port", s,
				    v->ports[i].addr);
		for (size_t k = 0; k < i; k++)
			if (net_port_clash(&v->ports[k], &v->ports[i]))
				return fail(c, it, "ports: host port %d%s is "
					    "forwarded twice: once is all it "
					    "can be", v->ports[i].host,
					    v->ports[i].udp ? "/udp" : "");
		v->nports++;
	}
	return 0;
}

static int take_cpu(struct pctx *c, const yaml_node_t *n, char **out)
{
	const char *v = scalar(c, "cpu", n, "a QEMU CPU model");

	if (!v)
		return -1;
	/* one QEMU word, as --cpu takes it */
	if (strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		   "0123456789-_.,=+") != strlen(v))
		return fail(c, n, "cpu: '%s' is not a QEMU CPU model", v);
	set(out, v);
	return 0;
}

static int take_image(struct pctx *c, const yaml_node_t *n, char **out)
{
	const char *v = scalar(c, "image", n, "an image name or path");
	char *abs;

	if (!v)
		return -1;
	/* a path (it has a '/', or names a file beside this one) is from
	 * the file's directory; anything else is a name in the store */
	abs = v[0] == '/' ? xstrdup(v) : xasprintf("%s/%s", c->dir, v);
	if (v[0] == '/' || strchr(v, '/') || access(abs, F_OK) == 0) {
		if (inside(c, "image", n, abs, "to boot it, import it ('nook "
			   "images import PATH --name NAME') and give its NAME "
			   "here, or give it as --image") < 0) {
			free(abs);
			return -1;
		}
		set(out, abs);
	} else {
		set(out, v);
	}
	free(abs);
	return 0;
}

/* A key any VM takes, into v: 1 taken, 0 not a VM key, -1 bad. */
static int take_vm_key(struct pctx *c, const char *key, const yaml_node_t *n,
		       struct project_vm *v)
{
	static const char *const boots[] = { "disk", "direct", NULL };
	static const char *const accels[] = { "auto", "kvm", "tcg", NULL };
	int rc = 0;

	if (!strcmp(key, "image"))
		rc = take_image(c, n, &v->image);
	else if (!strcmp(key, "cpus"))
		rc = take_int(c, key, n, 1, 64, &v->cpus);
	else if (!strcmp(key, "memory"))
		rc = take_size(c, key, n, 128ULL << 20, VM_MEMORY_MAX,
			       &v->memory);
	else if (!strcmp(key, "disk"))
		rc = take_size(c, key, n, 1, VM_DISK_MAX, &v->disk);
	else if (!strcmp(key, "user-data"))
		rc = take_seed_file(c, key, n, &v->user_data);
	else if (!strcmp(key, "network-config"))
		rc = take_seed_file(c, key, n, &v->network_config);
	else if (!strcmp(key, "kernel"))
		rc = take_file(c, key, n, &v->kernel);
	else if (!strcmp(key, "initrd"))
		rc = take_file(c, key, n, &v->initrd);
	else if (!strcmp(key, "ports"))
		rc = take_ports(c, n, v);
	else if (!strcmp(key, "boot"))
		rc = take_word(c, key, n, boots, &v->boot);
	else if (!strcmp(key, "accel"))
		rc = take_word(c, key, n, accels, &v->accel);
	else if (!strcmp(key, "append"))
		rc = take_word(c, key, n, NULL, &v->append);
	else if (!strcmp(key, "cpu"))
		rc = take_cpu(c, n, &v->cpu);
	else if (!strcmp(key, "timeout"))
		rc = take_int(c, key, n, 1, 86400, &v->timeout_s);
	else
		return 0;
	return rc < 0 ? -1 : 1;
}

static void vm_free(struct project_vm *v)
{
	free(v->image);
	free(v->within);
	free(v->user_data);
	free(v->network_config);
	free(v->kernel);
	free(v->initrd);
	free(v->boot);
	free(v->append);
	free(v->accel);
	free(v->cpu);
	free(v->ports);
	memset(v, 0, sizeof(*v));
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void vm_copy(struct project_vm *dst, const struct project_vm *src)
{
	*dst = *src;
	dst->image = dup_or_null(src->image);
	dst->within = dup_or_null(src->within);
	dst->user_data = dup_or_null(src->user_data);
	dst->network_config = dup_or_null(src->network_config);
	dst->kernel = dup_or_null(src->kernel);
	dst->initrd = dup_or_null(src->initrd);
	dst->boot = dup_or_null(src->boot);
	dst->append = dup_or_null(src->append);
	dst->accel = dup_or_null(src->accel);
	dst->cpu = dup_or_null(src->cpu);
	dst->ports = NULL;
	if (src->ports_given) {
		dst->ports = xmalloc(sizeof(*dst->ports) *
				     (src->nports ? src->nports : 1));
		memcpy(dst->ports, src->ports, sizeof(*src->ports) *
		       src->nports);
	}
}

/* A VM's settings that do not go together (as start refuses them). */
static const yaml_node_t *value_of(struct pctx *c, const yaml_node_t *map,
				   const char *key)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node(c, p->key);

		if (k && k->type == YAML_SCALAR_NODE &&
		    !strcmp((const char *)k->data.scalar.value, key))
			return node(c, p->value);
	}
	return NULL;
}

static size_t seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top -
			n->data.sequence.items.start);
}

/* One entry of nodes: a group's mapping, over a copy of the top's VM. */
static int take_group(struct pctx *c, const yaml_node_t *m,
		      const struct project *p, struct project_group *g)
{
	const yaml_node_t *name, *count;
	const char *s;

	vm_copy(&g->vm, &p->vm);
	g->count = 1;
	if (m->type != YAML_MAPPING_NODE)
		return fail(c, m, "nodes: each entry is a group (group: NAME, "
			    "count: N, and any VM key), not %s", kind(m));
	if (check_keys(c, m, "a group", group_keys, vm_keys) < 0)
		return -1;
	name = value_of(c, m, "group");
	if (!name)
		return fail(c, m, "a group needs its name: add 'group: NAME' "
			    "(its nodes are %s-NAME-1 ...)", p->name);
	s = scalar(c, "group", name, "a name");
	if (!s)
		return -1;
	if (!vm_name_valid(s))
		return fail(c, name, "group '%s': a group's name is part of "
			    "its nodes' VM names: [a-z][a-z0-9-]*", s);
	set(&g->name, s);
	count = value_of(c, m, "count");
	if (count && take_int(c, "count", count, 1, PROJECT_MAX_NODES,
			      &g->count) < 0)
		return -1;
	for (yaml_node_pair_t *q = m->data.mapping.pairs.start;
	     q < m->data.mapping.pairs.top; q++) {
		yaml_node_t *k = node(c, q->key), *v = node(c, q->value);

		if (take_vm_key(c, (const char *)k->data.scalar.value, v,
				&g->vm) < 0)
			return -1;
	}
	return 0;
}

/* Every node's name is a VM name, and none is there twice; a message
 * points at the group's entry (marks[g]: group g's). */
static int check_node_names(struct pctx *c, const yaml_node_t *const *marks,
			    struct project *p)
{
	size_t first = 0;
	struct strvec names = STRVEC_INIT;
	int ret = 0;

	for (size_t g = 0; g < p->ngroups && ret == 0; g++) {
		for (size_t i = 0; i < (size_t)p->groups[g].count && ret == 0;
		     i++) {
			char *name = project_node_name(p, first + i, NULL);

			if (!vm_name_valid(name))
				ret = fail(c, marks[g], "node %s is not a valid "
					   "VM name ([a-z][a-z0-9-], at most 32 "
					   "characters): shorten the name or "
					   "the group", name);
			for (size_t k = 0; k < names.n && ret == 0; k++)
				if (!strcmp(names.v[k], name))
					ret = fail(c, marks[g], "node %s would "
						   "be made twice: change the "
						   "group's name", name);
			strvec_push(&names, name);
			free(name);
		}
		first += (size_t)p->groups[g].count;
	}
	strvec_clear(&names);
	return ret;
}

/* A fixed host port on two nodes: the second would not start. The
 * message points at the first group that has it (marks[g]). */
static int check_node_ports(struct pctx *c, const yaml_node_t *const *marks,
			    const struct project *p)
{
	for (size_t g = 0; g < p->ngroups; g++)
		for (size_t i = 0; i < p->groups[g].vm.nports; i++) {
			const struct net_port *a = &p->groups[g].vm.ports[i];
			int users = a->host ? p->groups[g].count : 0;

			for (size_t h = g + 1; a->host && h < p->ngroups; h++)
				for (size_t k = 0; k < p->groups[h].vm.nports;
				     k++)
					if (net_port_clash(a,
						&p->groups[h].vm.ports[k]))
						users += p->groups[h].count;
			if (users > 1)
				return fail(c, marks[g], "ports: host port %d%s "
					    "would be forwarded to %d nodes; "
					    "give it to one group, or 0:%d (a "
					    "free port each)", a->host,
					    a->udp ? "/udp" : "", users,
					    a->guest);
		}
	return 0;
}

/* The groups' names and ports, each message at its group's entry. */
static int check_groups(struct pctx *c, const yaml_node_t *n,
			struct project *p)
{
	const yaml_node_t **names = xmalloc(sizeof(*names) * p->ngroups);
	const yaml_node_t **ports;
	size_t total = project_node_count(p);
	int ret;

	if (total > PROJECT_MAX_NODES) {
		free(names);
		return fail(c, n, "nodes: %zu nodes; a cluster has at most %d",
			    total, PROJECT_MAX_NODES);
	}
	ports = xmalloc(sizeof(*ports) * p->ngroups);
	for (size_t g = 0; g < p->ngroups; g++) {
		const yaml_node_t *m = n->type == YAML_SEQUENCE_NODE ?
			node(c, n->data.sequence.items.start[g]) : n;
		const yaml_node_t *v = m->type == YAML_MAPPING_NODE ?
			value_of(c, m, "ports") : NULL;

		names[g] = m->type == YAML_MAPPING_NODE &&
			   value_of(c, m, "group") ? value_of(c, m, "group") : m;
		ports[g] = v ? v : m;
	}
	ret = check_node_names(c, names, p);
	if (ret == 0)
		ret = check_node_ports(c, ports, p);
	free(names);
	free(ports);
	return ret;
}

static int take_nodes(struct pctx *c, const yaml_node_t *n,
		      struct project *p)
{
	p->cluster = 1;
	if (n->type == YAML_SCALAR_NODE) {
		/* nodes: N, as --nodes N: NAME-1..NAME-N */
		p->groups = xmalloc(sizeof(*p->groups));
		memset(p->groups, 0, sizeof(*p->groups));
		p->ngroups = 1;
		vm_copy(&p->groups[0].vm, &p->vm);
		if (take_int(c, "nodes", n, 1, PROJECT_MAX_NODES,
			     &p->groups[0].count) < 0)
			return -1;
	} else if (n->type != YAML_SEQUENCE_NODE || !seq_len(n)) {
		return fail(c, n, "nodes: expected a number or a list of groups "
			    "(- group: NAME), not %s", n->type ==
			    YAML_SEQUENCE_NODE ? "an empty list" : kind(n));
	} else {
		size_t count = seq_len(n);

		/* each group has a node at least: more groups than a
		 * cluster's nodes are refused before each is read and
		 * compared with all before it (60,000 in 1 MiB) */
		if (count > PROJECT_MAX_NODES)
			return fail(c, n, "nodes: %zu groups; a cluster has "
				    "at most %d nodes", count,
				    PROJECT_MAX_NODES);
		p->groups = xmalloc(sizeof(*p->groups) * count);
		memset(p->groups, 0, sizeof(*p->groups) * count);
		for (size_t i = 0; i < count; i++) {
			yaml_node_t *m = node(c, n->data.sequence.items.start[i]);

			p->ngroups++;
			if (take_group(c, m, p, &p->groups[i]) < 0)
				return -1;
			for (size_t k = 0; k < i; k++)
				if (!strcmp(p->groups[k].name,
					    p->groups[i].name))
					return fail(c, value_of(c, m, "group"),
						    "duplicate group '%s' "
						    "(first at line %zu)",
						    p->groups[i].name,
						    value_of(c, node(c,
						    n->data.sequence.items
						    .start[k]), "group")
						    ->start_mark.line + 1);
		}
	}
	return check_groups(c, n, p);
}

static int take_excludes(struct pctx *c, const yaml_node_t *n,
			 struct strvec *out)
{
	if (n->type == YAML_SCALAR_NODE) {
		const char *s = scalar(c, "exclude", n, "a pattern");

		if (!s)
			return -1;
		strvec_push(out, s);
		return 0;
	}
	if (n->type != YAML_SEQUENCE_NODE)
		return fail(c, n, "exclude: expected a list of patterns such "
			    "as [build/, .git/], not %s", kind(n));
	if (seq_len(n) > PROJECT_MAX_EXCLUDES)
		return fail(c, n, "exclude: %zu patterns; a rule has at most %d",
			    seq_len(n), PROJECT_MAX_EXCLUDES);
	for (size_t i = 0; i < seq_len(n); i++) {
		yaml_node_t *it = node(c, n->data.sequence.items.start[i]);
		const char *s = scalar(c, "exclude", it, "a pattern");

		if (!s)
			return -1;
		strvec_push(out, s);
	}
	return 0;
}

static int take_bool(struct pctx *c, const char *key, const yaml_node_t *n,
		     int *out)
{
	static const char *const yes[] = { "true", "yes", "on", NULL };
	static const char *const no[] = { "false", "no", "off", NULL };
	const char *s = scalar(c, key, n, "true or false");

	if (!s)
		return -1;
	if (in_list(yes, s) || in_list(no, s)) {
		*out = in_list(yes, s);
		return 0;
	}
	return fail(c, n, "%s: expected true or false, not '%s'", key, s);
}

static int take_sync_rule(struct pctx *c, const yaml_node_t *m,
			  struct project_sync *r)
{
	const yaml_node_t *v;

	if (m->type != YAML_MAPPING_NODE)
		return fail(c, m, "sync: each entry is a rule (src: DIR, dest: "
			    "DIR, exclude: [...]), not %s", kind(m));
	if (check_keys(c, m, "a sync rule", sync_keys, NULL) < 0)
		return -1;
	v = value_of(c, m, "src");
	if (v) {
		struct stat st;

		char *real;

		if (take_path(c, "src", v, &r->src) < 0)
			return -1;
		if (stat(r->src, &st) < 0 || !S_ISDIR(st.st_mode))
			return fail(c, v, "src: %s is not a directory",
				    v->data.scalar.value);
		/* "." and "ci/.." name the directory itself: its name is
		 * the default destination, as for 'nook sync' */
		real = realpath(r->src, NULL);
		if (!real)
			return fail(c, v, "src: cannot resolve %s: %s",
				    v->data.scalar.value, strerror(errno));
		free(r->src);
		r->src = real;
	} else {
		set(&r->src, c->dir);
	}
	v = value_of(c, m, "dest");
	if (v) {
		const char *s = scalar(c, "dest", v, "a directory in the VM");

		if (!s)
			return -1;
		set(&r->dest, s);
	}
	v = value_of(c, m, "exclude");
	if (v && take_excludes(c, v, &r->exclude) < 0)
		return -1;
	v = value_of(c, m, "delete");
	return v ? take_bool(c, "delete", v, &r->del) : 0;
}

static int take_sync(struct pctx *c, const yaml_node_t *n, struct project *p)
{
	size_t count;

	if (n->type != YAML_SEQUENCE_NODE)
		return fail(c, n, "sync: expected a list of rules (- src: DIR), "
			    "not %s", kind(n));
	count = seq_len(n);
	p->syncs = xmalloc(sizeof(*p->syncs) * (count ? count : 1));
	memset(p->syncs, 0, sizeof(*p->syncs) * (count ? count : 1));
	for (size_t i = 0; i < count; i++) {
		p->nsyncs++;
		if (take_sync_rule(c, node(c, n->data.sequence.items.start[i]),
				   &p->syncs[i]) < 0)
			return -1;
	}
	return 0;
}

/* The top level: the VM keys first (groups start from them), then name,
 * subnet, nodes and sync. */
static int take_top(struct pctx *c, const yaml_node_t *root,
		    struct project *p)
{
	const yaml_node_t *v = value_of(c, root, "name");
	const char *s;

	/* the name first, quietly: a file wrong elsewhere still tells which
	 * VM it is of, so that a start of another can go on without it */
	if (v && v->type == YAML_SCALAR_NODE &&
	    vm_name_valid((const char *)v->data.scalar.value))
		set(&p->name, (const char *)v->data.scalar.value);
	if (check_keys(c, root, "the top level", top_keys, vm_keys) < 0)
		return -1;
	p->vm.within = xstrdup(c->root); /* groups copy it */
	for (yaml_node_pair_t *q = root->data.mapping.pairs.start;
	     q < root->data.mapping.pairs.top; q++)
		if (take_vm_key(c, (const char *)node(c, q->key)->data.scalar
				.value, node(c, q->value), &p->vm) < 0)
			return -1;
	v = value_of(c, root, "name");
	if (!v)
		return fail(c, root, "no name: add 'name: NAME' (the VM's, or "
			    "the cluster's)");
	s = scalar(c, "name", v, "a VM name");
	if (!s)
		return -1;
	where_on(c, v);
	if (where_off(vm_name_check(s)) < 0)
		return -1;
	set(&p->name, s);
	v = value_of(c, root, "subnet");
	if (v) {
		struct net_subnet sn;

		s = scalar(c, "subnet", v, "a CIDR such as 10.77.0.0/24");
		if (!s)
			return -1;
		where_on(c, v);
		if (where_off(net_subnet_parse(s, &sn)) < 0)
			return -1;
		set(&p->subnet, sn.cidr);
		if (!value_of(c, root, "nodes"))
			return fail(c, v, "subnet is for a cluster: add nodes");
	}
	v = value_of(c, root, "nodes");
	if (v && take_nodes(c, v, p) < 0)
		return -1;
	v = value_of(c, root, "sync");
	return v ? take_sync(c, v, p) : 0;
}

static int yaml_error(const char *path, const yaml_parser_t *yp,
		      const char *buf, size_t len)
{
	size_t line = yp->problem_mark.line, col = yp->problem_mark.column;

	/* the reader (bad UTF-8, a NUL) says where as a byte offset */
	if (yp->error == YAML_READER_ERROR) {
		line = col = 0;
		for (size_t i = 0; i < yp->problem_offset && i < len; i++) {
			if (buf[i] == '\n') {
				line++;
				col = 0;
			} else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
				col++; /* characters, not UTF-8's bytes */
			}
		}
	}
	return errorf("%s:%zu:%zu: %s%s%s", path, line + 1, col + 1,
		      yp->problem ? yp->problem : "invalid YAML",
		      yp->context ? " " : "", yp->context ? yp->context : "");
}

/* The first document into doc; a second one is refused. */
static int load_doc(const char *path, const char *buf, size_t len,
		    yaml_document_t *doc)
{
	yaml_parser_t yp;
	yaml_document_t next;
	int ret = 0;

	if (!yaml_parser_initialize(&yp))
		return errorf("%s: cannot start the YAML parser", path);
	yaml_parser_set_input_string(&yp, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&yp, doc)) {
		ret = yaml_error(path, &yp, buf, len);
		yaml_parser_delete(&yp);
		return ret;
	}
	if (!yaml_parser_load(&yp, &next)) {
		ret = yaml_error(path, &yp, buf, len);
	} else {
		yaml_node_t *r = yaml_document_get_root_node(&next);

		if (r)
			ret = errorf("%s:%zu:%zu: a second document: nook.yaml "
				     "holds one", path, r->start_mark.line + 1,
				     r->start_mark.column + 1);
		yaml_document_delete(&next);
	}
	if (ret < 0)
		yaml_document_delete(doc);
	yaml_parser_delete(&yp);
	return ret;
}

int project_parse(const char *buf, size_t len, const char *path,
		  const char *dir, struct project *p)
{
	yaml_document_t doc;
	struct pctx c = { &doc, path, dir, NULL, NULL };
	yaml_node_t *root;
	int ret;

	memset(p, 0, sizeof(*p));
	p->path = xstrdup(path);
	p->dir = xstrdup(dir);
	if (len > PROJECT_MAX_BYTES)
		return errorf("%s: %zu bytes, more than the %zu KiB a project "
			      "file may have", path, len,
			      PROJECT_MAX_BYTES >> 10);
	if (cidata_yaml_depth(path, buf, len, PROJECT_MAX_DEPTH, 1) < 0 ||
	    load_doc(path, buf, len, &doc) < 0)
		return -1;
	root = yaml_document_get_root_node(&doc);
	c.root = realpath(dir, NULL);
	if (!c.root)
		ret = error_errno("%s: cannot resolve its directory %s", path,
				  dir);
	else if (!root || (root->type == YAML_SCALAR_NODE &&
			   !root->data.scalar.length))
		ret = errorf("%s:1:1: empty: it needs at least 'name: NAME' "
			     "('nook init' writes a starter)", path);
	else if (root->type != YAML_MAPPING_NODE)
		ret = fail(&c, root, "the top level must be a mapping (key: "
			   "value lines), not %s", kind(root));
	else
		ret = take_top(&c, root, p);
	yaml_document_delete(&doc);
	free(c.where);
	free(c.root);
	return ret;
}

/* A dangling symlink said as what it is, not as "no such file". */
static int say_dangling(const char *file)
{
	char target[4096];
	ssize_t n = readlink(file, target, sizeof(target) - 1);
	struct stat st;

	if (n < 0 || stat(file, &st) == 0 || errno != ENOENT)
		return 0;
	target[n] = '\0';
	return errorf("%s is a symlink to %s, which does not exist", file,
		      target);
}

/* Who may have written a project file nook acts on: you, or root. */
static int trusted_owner(uid_t owner, uid_t me)
{
	return owner == me || owner == 0;
}

static char *user_word(uid_t uid)
{
	struct passwd *pw = getpwuid(uid);

	return pw ? xasprintf("%s (uid %u)", pw->pw_name, (unsigned)uid) :
		    xasprintf("uid %u", (unsigned)uid);
}

/* Refuse path (a project file, or a directory it is found through)
 * when another user owns it: as git refuses a repository another user
 * owns (CVE-2022-24765), nook does not start what another user's file
 * on the way up from the current directory describes. */
static int refuse_owner(const char *file, const char *path, uid_t owner,
			uid_t me)
{
	char *who = user_word(owner), *you = user_word(me);

	errorf("%s: not used: %s is owned by %s, not by you (%s) or root; a "
	       "project file another user can write could start any VM with "
	       "your files. Check it, then take it over (chown), or give NAME "
	       "to act without it", file, path, who, you);
	free(who);
	free(you);
	return -1;
}

/* Refuse file, a project file that any user may change (o+w; through
 * a symlink, link: the file it leads to). */
static int refuse_mode(const char *file, int link, mode_t mode)
{
	char *to = link ? realpath(file, NULL) : NULL;

	errorf("%s: not used: %s%s%s has mode %04o, so any user here may "
	       "change it. Check it, then chmod o-w it, or give NAME to act "
	       "without it", file, to ? "the file it links to (" : "it",
	       to ? to : "", to ? ")" : "", (unsigned)mode & 07777);
	free(to);
	return -1;
}

/* Open project file for me to read, its checks made on what is open,
 * so that what is read is what was checked: the owner of file (or of
 * the symlink it is) and of what it leads to is me or root, and that is
 * not writable by all. Opened without following a symlink unless file
 * was one when looked at (one swapped in after is not followed), and
 * without a wait (a FIFO). -1 having said why it is refused; else 0,
 * with *fd open and *st its fstat, or *fd -1 and errno when it cannot
 * be opened (for the caller to say or not). */
static int open_checked(const char *file, uid_t me, int *fd,
			struct stat *st)
{
	int flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, link, e;
	struct stat l;

	*fd = -1;
	if (lstat(file, &l) < 0)
		return 0;
	link = S_ISLNK(l.st_mode);
	if (!trusted_owner(l.st_uid, me))
		return refuse_owner(file, file, l.st_uid, me);
	*fd = open(file, flags | (link ? 0 : O_NOFOLLOW));
	if (*fd >= 0 && fstat(*fd, st) < 0) {
		e = errno;
		close(*fd);
		*fd = -1;
		errno = e;
	}
	if (*fd < 0)
		return 0;
	if (!trusted_owner(st->st_uid, me)) {
		refuse_owner(file, link ? "the file it links to" : file,
			     st->st_uid, me);
	} else if (st->st_mode & S_IWOTH) {
		refuse_mode(file, link, st->st_mode);
	} else {
		return 0;
	}
	close(*fd);
	*fd = -1;
	return -1;
}

/* Read project file into b from the fd its checks (for me) were made
 * on: a regular file of at most PROJECT_MAX_BYTES. 0, or -1 having said
 * why. */
static int read_checked(const char *file, uid_t me, struct buf *b)
{
	struct stat st;
	int fd, ret;

	if (open_checked(file, me, &fd, &st) < 0)
		return -1;
	if (fd < 0)
		return error_errno("cannot read %s", file);
	ret = read_fd_regular(fd, file, b, PROJECT_MAX_BYTES);
	close(fd);
	return ret;
}

int project_load(const char *file, const char *shown, uid_t me,
		 struct project *p)
{
	struct buf b = BUF_INIT;
	char *dir = xstrdup(file), *slash = strrchr(dir, '/');
	int ret = PROJECT_UNREADABLE;

	memset(p, 0, sizeof(*p));
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	if (say_dangling(file) == 0 && read_checked(file, me, &b) == 0)
		ret = project_parse(b.p ? b.p : "", b.len, shown,
				    slash ? dir : ".", p) < 0 ?
		      PROJECT_INVALID : PROJECT_LOADED;
	buf_free(&b);
	free(dir);
	return ret;
}

/* What the user would type from the directory searched to reach file,
 * up directories above it. */
static char *shown_path(const char *file, int up)
{
	struct buf s = BUF_INIT;

	if (up > 8)
		return xstrdup(file);
	for (int i = 0; i < up; i++)
		buf_adds(&s, "../");
	buf_adds(&s, PROJECT_FILE);
	return s.p;
}

int project_find(const char *dir, uid_t me, char **file, char **shown)
{
	char *d = xstrdup(dir), *foreign = NULL;
	uid_t foreign_uid = 0;
	int up = 0, ret = 0, found;

	*file = *shown = NULL;
	for (;;) {
		char *f = xasprintf("%s%s" PROJECT_FILE, d,
				    strcmp(d, "/") ? "/" : "");
		char *slash;
		struct stat st;

		/* the first directory on the way another user owns: a file
		 * in it, or above it, is not trusted */
		if (!foreign && stat(d, &st) == 0 &&
		    !trusted_owner(st.st_uid, me)) {
			foreign = xstrdup(d);
			foreign_uid = st.st_uid;
		}
		/* lstat: a dangling symlink is this tree's file, and wrong;
		 * so is one that cannot be looked at (said when read) */
		found = lstat(f, &st) == 0;
		if (found || errno != ENOENT) {
			int fd = -1;

			*file = f;
			*shown = shown_path(f, up);
			ret = 1;
			/* the file's own checks, made again on the fd
			 * project_load() reads */
			if (foreign)
				ret = refuse_owner(f, foreign, foreign_uid, me);
			else if (found && open_checked(f, me, &fd, &st) < 0)
				ret = -1;
			if (fd >= 0)
				close(fd);
			break;
		}
		free(f);
		slash = strrchr(d, '/');
		if (!slash || !strcmp(d, "/"))
			break;
		*(slash == d ? slash + 1 : slash) = '\0';
		up++;
	}
	free(d);
	free(foreign);
	if (ret < 0) {
		free(*file);
		free(*shown);
		*file = *shown = NULL;
	}
	return ret;
}

int project_open(struct project *p)
{
	char *cwd = getcwd(NULL, 0), *file = NULL, *shown = NULL;
	int ret;

	memset(p, 0, sizeof(*p));
	/* a directory removed under the shell is in no tree */
	if (!cwd && errno == ENOENT)
		return PROJECT_NONE;
	if (!cwd) {
		error_errno("cannot tell the current directory");
		return PROJECT_UNREADABLE;
	}
	ret = project_find(cwd, geteuid(), &file, &shown);
	if (ret > 0 && strchr(shown, '/')) {
		struct buf a = BUF_INIT, b = BUF_INIT;

		/* a directory's name may hold any byte: none reaches the
		 * terminal as itself */
		str_escape(&a, file, 0);
		str_escape(&b, shown, 0);
		fprintf(stderr, "nook: using %s (%s)\n", a.p, b.p);
		buf_free(&a);
		buf_free(&b);
	}
	if (ret > 0)
		ret = project_load(file, shown, geteuid(), p);
	else if (ret < 0)
		ret = PROJECT_UNREADABLE;
	free(cwd);
	free(file);
	free(shown);
	return ret;
}

void project_free(struct project *p)
{
	if (!p)
		return;
	free(p->path);
	free(p->dir);
	free(p->name);
	free(p->subnet);
	vm_free(&p->vm);
	for (size_t i = 0; i < p->ngroups; i++) {
		free(p->groups[i].name);
		vm_free(&p->groups[i].vm);
	}
	free(p->groups);
	for (size_t i = 0; i < p->nsyncs; i++) {
		free(p->syncs[i].src);
		free(p->syncs[i].dest);
		strvec_clear(&p->syncs[i].exclude);
	}
	free(p->syncs);
	memset(p, 0, sizeof(*p));
}

size_t project_node_count(const struct project *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->ngroups; i++)
		n += (size_t)p->groups[i].count;
	return n;
}

char *project_node_name(const struct project *p, size_t i,
			const struct project_group **group)
{
	for (size_t g = 0; g < p->ngroups; g++) {
		const struct project_group *gr = &p->groups[g];

		if (i < (size_t)gr->count) {
			if (group)
				*group = gr;
			return vm_cluster_node_name(p->name, gr->name,
						    (int)i + 1);
		}
		i -= (size_t)gr->count;
	}
	return NULL;
}

void project_fill_opts(struct vm_start_opts *o, const struct project_vm *v)
{
	if (!o->image) {
		o->image = v->image;
		o->image_within = v->image ? v->within : NULL;
	}
	if (!o->user_data)
		o->user_data = v->user_data;
	if (!o->network_config)
		o->network_config = v->network_config;
	if (!o->boot)
		o->boot = v->boot;
	if (!o->kernel) {
		o->kernel = v->kernel;
		o->initrd = v->initrd;
		o->kernel_within = v->kernel ? v->within : NULL;
	}
	if (!o->append)
		o->append = v->append;
	if (!o->accel)
		o->accel = v->accel;
	if (!o->cpu)
		o->cpu = v->cpu;
	if (!o->cpus)
		o->cpus = v->cpus;
	if (!o->memory)
		o->memory = v->memory;
	if (!o->disk)
		o->disk = v->disk;
	if (!o->timeout_s)
		o->timeout_s = v->timeout_s;
	if (!o->ports_given && v->ports_given) {
		o->ports = v->ports;
		o->nports = v->nports;
		o->ports_given = 1;
	}
}

void project_nodes(const struct project *p, const struct vm_start_opts *given,
		   struct project_nodes *out)
{
	size_t n = project_node_count(p);

	memset(out, 0, sizeof(*out));
	out->list = xmalloc(sizeof(*out->list) * (n ? n : 1));
	out->opts = xmalloc(sizeof(*out->opts) * (n ? n : 1));
	for (size_t i = 0; i < n; i++) {
		const struct project_group *g = NULL;
		char *name = project_node_name(p, i, &g);

		strvec_push(&out->names, name);
		free(name);
		/* the command line, then the group's (which holds the
		 * file's top level under its own keys) */
		out->opts[i] = *given;
		project_fill_opts(&out->opts[i], &g->vm);
	}
	/* names.v moves while it grows: point into it once it is whole */
	for (size_t i = 0; i < n; i++) {
		out->list[i].name = out->names.v[i];
		out->list[i].o = &out->opts[i];
	}
	out->n = n;
}

void project_nodes_free(struct project_nodes *nodes)
{
	free(nodes->list);
	free(nodes->opts);
	strvec_clear(&nodes->names);
	memset(nodes, 0, sizeof(*nodes));
}

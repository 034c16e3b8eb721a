/* What runs on every node of a cluster at once, each node in a process
 * of its own (fan_out()): a start, which plans the nodes first; stop,
 * suspend, pause and the like (vm_cluster_each()); and delete, all or
 * nothing. The record and the names are cluster.c's (cluster.h). */
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"

/* A node's part of a command run on every node: 0, or -1 having said
 * why; what it puts in words is said to the command's process (on a
 * failure, instead of its last error). */
typedef int node_fn(const struct nook_dirs *d, const char *cluster,
		    const struct member *m, const void *arg,
		    struct buf *words);

void vm_cluster_said_clear(struct vm_cluster_said *s)
{
	strvec_clear(&s->nodes);
	strvec_clear(&s->words);
	memset(s->failed, 0, sizeof(s->failed));
}

/* What a node's process said, read from fd (its file, from the start):
 * its words, else its last error when it failed. */
static void take_said(int fd, int failed, struct strvec *out)
{
	struct buf b = BUF_INIT;
	char chunk[4096];
	off_t at = 0;
	ssize_t r;

	for (;;) {
		r = fd >= 0 ? pread(fd, chunk, sizeof(chunk), at) : 0;
		if (r > 0) {
			buf_add(&b, chunk, (size_t)r);
			at += r;
		} else if (r == 0 || errno != EINTR) {
			break;
		}
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
	int out[MAX_NODES];
	size_t n = c->n < MAX_NODES ? c->n : MAX_NODES;
	struct sigaction old[3];
	sigset_t was;
	pid_t parent = getpid();
	int failed = 0;

	/* held until each side has its handlers: none is lost or misread */
	sig_hold(&was);
	fflush(NULL);
	for (size_t i = 0; i < n; i++) {
		/* a file, not a pipe: the words are read once the node's
		 * process has ended, and words past a pipe's buffer (64 KiB;
		 * a page or two once the user's pipes pass their quota)
		 * would have it wait for room for good. Without a file, a
		 * node that fails is said to have ended without saying
		 * why. */
		out[i] = said ? memfd_create("nook-node-said", MFD_CLOEXEC)
			      : -1;
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
			last = words.len ? words.p : rc < 0 ? error_last() : "";
			if (out[i] >= 0)
				write_all(out[i], last, strlen(last));
			_exit(rc < 0 ? 1 : 0);
		}
		if (pids[i] < 0) {
			error_errno("cannot fork for node %s", c->m[i].name);
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
			take_said(out[i], bad, &said->words);
			said->failed[i] = (unsigned char)bad;
		}
		if (out[i] >= 0)
			close(out[i]);
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

/* list (n > 0) is --nodes N's: c's NAME-1..NAME-N. */
static int plain_list(const struct cluster *c,
		      const struct vm_cluster_node *list, size_t n)
{
	int same = 1;

	for (size_t i = 0; i < n && same; i++) {
		char *name = node_name(c->name, (int)i + 1);

		same = !strcmp(name, list[i].name);
		free(name);
	}
	return same;
}

/* A start (a nook.yaml's groups) that names none of c's nodes: a node
 * keeps the name it was made with. -1, having said so. */
static int renamed(const struct cluster *c,
		   const struct vm_cluster_node *list)
{
	if (plain_members(c))
		return errorf("cluster %s's nodes are %s ..., and this start "
			      "names none of them (%s ...): a node keeps the "
			      "name it was made with. Say 'nodes: %zu' in "
			      "the nook.yaml, or 'nook local delete %s' to "
			      "make the cluster again by groups", c->name,
			      c->m[0].name, list[0].name, c->n, c->name);
	return errorf("cluster %s's nodes are %s ..., and this start names "
		      "none of them (%s ...): a node keeps the name it was "
		      "made with, so a group keeps its name. Give the "
		      "nook.yaml its groups as they were, or 'nook local "
		      "delete %s' to make the cluster again", c->name,
		      c->m[0].name, list[0].name, c->name);
}

/* Members of c missing from list (n > 0): a start that names nodes
 * may add some, never drop one. The error counts and names the nodes
 * that list shows, not a gap (a node deleted from the middle, whose place
 * a start fills again). */
static int check_dropped(const struct nook_dirs *d, const struct cluster *c,
			 const struct vm_cluster_node *list, size_t n)
{
	struct buf names = BUF_INIT;
	size_t dropped = 0, missing = 0, there = 0;
	const char *last = NULL, *gap = NULL;
	int rc;

	for (size_t i = 0; i < c->n; i++) {
		int kept = node_kind(d, c->m[i].name, c->name) != NODE_NONE;
		size_t k = 0;

		there += kept;
		while (k < n && strcmp(list[k].name, c->m[i].name))
			k++;
		if (k < n)
			continue;
		missing++;
		if (!kept) {
			gap = c->m[i].name;
			continue;
		}
		buf_addf(&names, "%s%s", dropped ? ", " : "", c->m[i].name);
		last = c->m[i].name;
		dropped++;
	}
	if (!missing)
		return 0;
	if (missing == c->n && !plain_members(c) && plain_list(c, list, n))
		rc = errorf("cluster %s's nodes are named by groups (%s ...): "
			    "its nook.yaml's groups say how many; edit them, "
			    "not a number of nodes (--nodes N, nodes: N)",
			    c->name, c->m[0].name);
	else if (missing == c->n)
		rc = renamed(c, list);
	else if (!dropped) /* a start fills every place: names from groups */
		rc = errorf("cluster %s keeps the place of %s, a node deleted "
			    "from its middle, which a start makes again; this "
			    "start does not name it", c->name, gap);
	else
		rc = errorf("cluster %s has %zu node%s; this start (%zu "
			    "node%s) would drop %s: 'nook local delete %s' "
			    "removes the last (stopped, or with --force)",
			    c->name, there, there == 1 ? "" : "s", n,
			    n == 1 ? "" : "s", names.p, last);
	buf_free(&names);
	return rc;
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

/* The members at c's end that list leaves out and that no start made: a
 * start of more nodes killed (SIGKILL, a crash) before it made them, or
 * before it took them off the record again as a start that fails does.
 * They hold nothing, so a start of fewer nodes is no drop of them (nor
 * could 'nook local delete' remove what is not there): off c, said when
 * say (the plan a start shows first says it for the start). */
static void leave_unmade(const struct nook_dirs *d, struct cluster *c,
			 const struct vm_cluster_node *list, size_t n, int say)
{
	struct buf names = BUF_INIT;
	size_t had = c->n, keep = c->n, k;

	while (keep > 0) {
		const char *m = c->m[keep - 1].name;

		for (k = 0; k < n && strcmp(list[k].name, m); k++)
			;
		if (k < n || node_kind(d, m, c->name) != NODE_NONE)
			break;
		keep--;
	}
	/* every member left out (nodes named by groups, --nodes naming
	 * others): not a smaller cluster; check_dropped() says why */
	if (keep == had || keep == 0)
		return;
	c->n = keep;
	c->nodes = c->n ? c->m[c->n - 1].node : 0;
	for (k = c->n; k < had; k++) {
		buf_addf(&names, "%s%s", k > c->n ? ", " : "", c->m[k].name);
		free(c->m[k].name);
	}
	if (say)
		warnf("cluster %s's record counts %s, which no start made (one "
		      "was cut short): this start leaves %s out", c->name,
		      names.p, had - c->n > 1 ? "them" : "it");
	buf_free(&names);
}

/* Cluster c on subnet, as a start asks: it cannot move once a node
 * holds an address on it; before that (a first start cut short) it
 * may. */
static int move_subnet(const struct nook_dirs *d, struct cluster *c,
		       const char *subnet)
{
	if (!strcmp(subnet, c->subnet))
		return 0;
	/* a node whose record cannot be read holds one too */
	for (size_t i = 0; i < c->n; i++)
		if (node_kind(d, c->m[i].name, c->name) != NODE_NONE)
			return errorf("cluster %s is on %s; its subnet cannot "
				      "move to %s", c->name, c->subnet,
				      subnet);
	free(c->subnet);
	c->subnet = xstrdup(subnet);
	return 0;
}

static int plan(const struct nook_dirs *d, const char *name,
		const struct vm_cluster_node *list, size_t n,
		const char *subnet, const struct vm_start_opts *o,
		struct cluster *c, size_t *had, int *is_new, int say)
{
	struct net_subnet sn;
	char addr[64], *where;
	int rc = cluster_load(d, name, c);

	if (rc < 0)
		return -1;
	if (rc == 0)
		trim_marked(d, c); /* as the start, under the lock, saves it */
	*is_new = rc > 0;
	if (!*is_new && n)
		leave_unmade(d, c, list, n, say);
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
	} else if (subnet && move_subnet(d, c, subnet) < 0) {
		return -1;
	} else if (n && check_dropped(d, c, list, n) < 0) {
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

	if (cluster_lock(d, name, "start", &lock) < 0)
		goto out;
	take_gone(d, name);
	if (plan(d, name, nodes, n, subnet, o, &c, &had, &is_new, 0) < 0)
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
	if (plan(d, name, nodes, n, subnet, o, &c, &had, &is_new, 1) < 0 ||
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
		if ((e->broken ? e->broken(d, m->name, e->arg, words) :
				 vm_cluster_node_broken(m->name)) == 0)
			return 0;
		/* stderr said what is wrong with it once, before: the
		 * command's own words (--json) say it with the error */
		if (!words->len && k >= 0 && *e->why->v[k])
			buf_addf(words, "%s (%s)", error_last(), e->why->v[k]);
		return -1;
	default:
		return e->fn(d, m->name, e->arg, words) != 0 ? -1 : 0;
	}
}

/* vm_cluster_each(); forced (a stop --force), also while another nook
 * holds the cluster (a start waiting on its nodes: it sees them stopped,
 * and ends the network itself). */
static int each_of(const struct nook_dirs *d, const char *name,
		   const struct node_each *e, const char *doing, int forced,
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
		rc = forced ? cluster_trylock(d, name, doing, &lock) :
			      cluster_lock(d, name, doing, &lock);
	if (rc < 0) {
		strvec_clear(&names);
		strvec_clear(&why);
		cluster_free(&c);
		return -1;
	}
	if (rc > 0) {
		char *path = xasprintf("%s/clusters/%s.lock", d->data, name);
		struct buf who = BUF_INIT;

		vm_busy_holder(path, &who);
		warnf("cluster %s is busy (%s): --force stops its nodes all "
		      "the same", name, who.p);
		buf_free(&who);
		free(path);
	}
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
		    const char *doing, each_fn *fn, const void *arg,
		    struct vm_cluster_said *said)
{
	struct node_each e = { fn, NULL, arg };

	return each_of(d, name, &e, doing, 0, said);
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
	if (cluster_trylock(d, cluster, "names", &lock) == 0) {
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
	int failed = each_of(d, name, &e, "stop", force, said);

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
		struct stat st;
		int has = lstat(json, &st) == 0;
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

/* Lock node vm of cluster: -1 having said why when it is busy, runs
 * without force, or cannot be read without force. */
static int lock_node(struct vm *vm, const char *cluster, int force)
{
	struct vm_info info;

	if (vm->broken && !force) {
		errorf("node %s's record cannot be read (said above); 'nook "
		       "local delete %s --force' removes it with the other "
		       "nodes", vm_name(vm), cluster);
		return error_add_cause(vm->broken_why);
	}
	if (vm_take_lock(vm, "delete") < 0)
		return -1;
	if (force || vm->broken)
		return 0;
	vm_get_info(vm, &info);
	if (info.pid)
		return errorf("node %s is running (pid %d); stop the cluster "
			      "first or use --force", vm_name(vm),
			      (int)info.pid);
	return 0;
}

/* Lock each of the n nodes in vms (lock_node()), each one's error into
 * why ("" for none): -1 when one was refused. */
static int lock_nodes(struct vm **vms, size_t n, const char *cluster,
		      int force, struct strvec *why)
{
	int ret = 0;

	for (size_t i = 0; i < n; i++) {
		int rc = lock_node(vms[i], cluster, force);

		strvec_push(why, rc < 0 ? error_last() : "");
		if (rc < 0)
			ret = -1;
	}
	return ret;
}

/* Node name's outcome, into said (NULL: none wanted). */
static void said_add(struct vm_cluster_said *said, const char *name,
		     const char *words, int failed)
{
	if (!said || said->nodes.n >= VM_CLUSTER_MAX_NODES)
		return;
	said->failed[said->nodes.n] = (unsigned char)failed;
	strvec_push(&said->nodes, name);
	strvec_push(&said->words, words);
}

/* Remove the n nodes in vms, locked (why: lock_nodes()'s, each one's
 * refusal), unless one was refused (refused); each one's outcome into
 * said. 0, or -1 when one was refused or failed (said): the nodes after
 * a failure are left. */
static int remove_nodes(struct vm **vms, size_t n, int force, int refused,
			const struct strvec *why,
			struct vm_cluster_said *said)
{
	int ret = refused ? -1 : 0;

	/* every node marked first: a delete killed half way names them all
	 * as a delete of the cluster cut short, none as crashed */
	for (size_t i = 0; ret == 0 && i < n; i++)
		vm_delete_begin(vms[i], vms[i]->spec.cluster);
	for (size_t i = 0; i < n; i++) {
		const char *name = vm_name(vms[i]);

		if (ret < 0 && !refused)
			vm_delete_begin(vms[i], NULL);
		if (ret == 0) {
			vms[i]->cluster_held = 1; /* its record goes later */
			ret = vm_remove(vms[i], force);
			said_add(said, name, ret < 0 ? error_last() :
				 "deleted", ret < 0);
		} else if (refused) {
			said_add(said, name, *why->v[i] ? why->v[i] :
				 "not deleted: a cluster's delete is all or "
				 "nothing, and another node was refused", 1);
		} else {
			said_add(said, name, "not deleted: the delete stopped "
				 "when a node before it failed", 1);
		}
	}
	return ret;
}

static void close_nodes(struct vm **vms, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vm_close(vms[i]);
	free(vms);
}

int vm_cluster_delete(const struct nook_dirs *d, const char *name, int force,
		      struct vm_cluster_said *said)
{
	struct strvec half = STRVEC_INIT, why_not = STRVEC_INIT;
	struct buf why = BUF_INIT;
	struct cluster c;
	struct vm **vms = NULL;
	size_t n = 0;
	char *path;
	enum record rc = cluster_read(d, name, &c, &why);
	int ret = 0, lock = -1, refused;

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
	ret = cluster_lock(d, name, "delete", &lock);
	refused = ret == 0 && lock_nodes(vms, n, name, force, &why_not) < 0;
	if (refused)
		errorf("cluster %s: no node deleted", name);
	/* busy: no node was looked at, and none is said */
	if (ret == 0)
		ret = remove_nodes(vms, n, force, refused, &why_not, said);
	close_nodes(vms, n);
	strvec_clear(&why_not);
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
	for (int i = 0; rc == 1 && i < 60; i++) {
		rc = cluster_trylock(d, cluster, "delete", &lock);
		if (rc == 1)
			sleep_ms(50);
	}
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

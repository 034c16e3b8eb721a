/* nook local: a VM's life on this host (start is in start.c). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "vm.h"

static const char usage_local[] =
	"usage: nook local SUBCOMMAND [NAME] [OPTIONS]\n"
	"\n"
	"  start   make (first time) and boot a VM, or a cluster with --nodes,\n"
	"          and wait until it is ready (a suspended VM resumes)\n"
	"  stop    power it off (ACPI, then quit, then signals)\n"
	"  suspend save its memory to a file and end QEMU; start resumes it\n"
	"  pause   stop its CPUs, keeping its memory (unpause goes on)\n"
	"  snapshot named snapshots of its disk and memory: save, restore,\n"
	"          list, rm\n"
	"  status  state, pid, accelerator, ports, how to get in\n"
	"  list    every VM\n"
	"  delete  remove a VM's files (never the base image)\n"
	"  logs    the serial console log\n"
	"  prune   remove what killed commands left (temp files, orphaned QEMUs)\n"
	"\n"
	"'nook local SUBCOMMAND --help' shows its options. NAME defaults to\n"
	"the name in nook.yaml (found upward from the current directory), else\n"
	"'default'; a cluster's name means every node (snapshot takes one VM\n"
	"only).\n";

/* Parse "[NAME]" plus the few flags the small subcommands take. */
struct small {
	const char *name;
	int force, json, follow;
	long timeout;
	int timeout_given;
};

/* ctx: a command that takes a NAME; given none, it is the project
 * file's (NULL: list, which takes none). */
static int parse_small(struct nook_ctx *ctx, int argc, char **argv,
		       const char *usage, const char *flags, struct small *s)
{
	static const struct option longopts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "follow", no_argument, NULL, 'F' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	memset(s, 0, sizeof(*s));
	s->name = "default";
	s->timeout = 60;
	getopt_reset();
	while ((c = cmd_getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h')
			return show_usage(usage) - 1;
		if (c == ':' || c == '?')
			return bad_option(usage, argv, c);
		if (!strchr(flags, c))
			return usage_error(usage, "unknown option '%s'",
					   argv[optind - 1]);
		if (c == 'f')
			s->force = 1;
		else if (c == 'j')
			s->json = 1;
		else if (c == 'F')
			s->follow = 1;
		else if (parse_int("--timeout", optarg, 1, 86400,
				   &s->timeout) < 0)
			return EXIT_USAGE;
		else
			s->timeout_given = 1;
	}
	if (argc - optind > 1)
		return usage_error(usage, "unexpected argument '%s'",
				   argv[optind + 1]);
	if (optind < argc) {
		s->name = argv[optind];
	} else if (ctx) {
		s->name = ctx_default_name(ctx);
		if (!s->name)
			return ctx_project_exit(ctx);
	}
	return 0;
}

static const char usage_stop[] =
	"usage: nook local stop [NAME] [--force] [--timeout S] [--json]\n"
	"\n"
	"Asks the guest to power off (ACPI) and waits up to S seconds (60),\n"
	"then QMP quit, SIGTERM, SIGKILL, each bounded (QMP quit at once when\n"
	"QEMU stops the guest at a write the disk has no room for). --force\n"
	"skips the guest's shutdown. Stopping a stopped VM is not an error.\n"
	"The disk is kept: the next start brings the VM back as it was. A\n"
	"cluster's name stops every node at once, then its network. --json\n"
	"prints how it stopped (for a cluster, an array: each node's, or its\n"
	"error).\n";

static void said_stopped(const char *node, const char *how)
{
	printf("VM %s stopped: %s\n", node, how);
	fflush(stdout);
}

static json_t *stop_json(const char *node, const char *how)
{
	return json_pack("{s:s,s:b,s:s}", "name", node, "stopped", 1, "how",
			 how);
}

/* A JSON text a node's process made (pause_one()), read back; one that
 * does not parse cannot come from it, but is said rather than lost. */
static json_t *node_json(const char *node, const char *words)
{
	json_t *j = json_loads(words, 0, NULL);

	return j ? j : json_pack("{s:s,s:s}", "name", node, "error",
				 "its outcome could not be read");
}

/* --json of a command run on every node of a cluster: an array of each
 * node's object, made by ok() from what the node's process said, or of
 * its error. A gap in the node numbers, which the command left alone,
 * is not in it. A command that failed where no node's entry says so
 * (the cluster's own record, say) gets the error beside the array, as a
 * cluster's start does: {"error": ..., "nodes": [...]}. */
static int print_nodes(const struct vm_cluster_said *said, int failed,
		       json_t *(*ok)(const char *node, const char *words))
{
	json_t *all = json_array();

	for (size_t i = 0; i < said->nodes.n; i++) {
		const char *node = said->nodes.v[i];
		const char *words = said->words.v[i];

		if (said->failed[i]) {
			failed = 0;
			json_array_append_new(all, json_pack("{s:s,s:s}",
				"name", node, "error", words));
		} else if (*words)
			json_array_append_new(all, ok(node, words));
	}
	if (failed)
		return print_json(json_pack("{s:s,s:o}", "error", error_last(),
					    "nodes", all));
	return print_json(all);
}

/* 1 when NAME is a cluster (d set), 0 when not (then it is the VM a
 * --json error names), -1 with no directories. */
static int is_cluster(struct nook_ctx *ctx, const char *name,
		      const struct nook_dirs **d)
{
	int rc;

	*d = ctx_dirs(ctx);
	if (!*d)
		return -1;
	rc = vm_cluster_exists(*d, name);
	if (rc == 0)
		json_error_name(name);
	return rc;
}

static int local_stop(struct nook_ctx *ctx, int argc, char **argv)
{
	const struct nook_dirs *d;
	struct small s;
	struct vm *vm;
	const char *how;
	int rc = parse_small(ctx, argc, argv, usage_stop, "ftj", &s);

	if (rc)
		return rc < 0 ? 0 : rc;
	rc = is_cluster(ctx, s.name, &d);
	if (rc > 0) {
		struct vm_cluster_said said = VM_CLUSTER_SAID_INIT;

		rc = vm_cluster_stop(d, s.name, s.force, (int)s.timeout,
				     s.json ? NULL : said_stopped,
				     s.json ? &said : NULL) < 0;
		if (s.json && said.nodes.n)
			rc |= print_nodes(&said, rc, stop_json);
		vm_cluster_said_clear(&said);
	} else if (rc == 0) {
		/* one whose record cannot be read too: --force ends its
		 * QEMU */
		if (vm_open(d, s.name, VM_OPEN_BROKEN, &vm) < 0)
			vm = NULL;
		rc = !vm || vm_stop(vm, s.force, (int)s.timeout, &how) < 0;
		if (!rc && s.json)
			rc = print_json(stop_json(s.name, how));
		else if (!rc)
			printf("VM %s stopped: %s\n", s.name, how);
		vm_close(vm);
	}
	return rc ? 1 : 0;
}

static void fmt_duration(long s, char *out, size_t size)
{
	if (s >= 3600)
		snprintf(out, size, "%ldh%02ldm", s / 3600, s / 60 % 60);
	else if (s >= 60)
		snprintf(out, size, "%ldm%02lds", s / 60, s % 60);
	else
		snprintf(out, size, "%lds", s);
}

/* A suspended VM's save: its size (null when its file is gone: the
 * next start boots afresh), when it was made, and whether it is gone. */
static json_t *save_json(const struct vm_info *i)
{
	return json_pack("{s:o,s:I,s:I,s:b}", "size", i->save_gone ?
			 json_null() : json_integer((json_int_t)i->save_size),
			 "saved_at", (json_int_t)i->saved_at, "age",
			 (json_int_t)(time(NULL) - i->saved_at), "gone",
			 i->save_gone);
}

static json_t *status_json(struct vm *vm)
{
	struct vm_info i;
	json_t *ports = json_array();
	int up;

	vm_get_info(vm, &i);
	up = i.state == VM_RUNNING || i.state == VM_STARTING ||
	     i.state == VM_PAUSED;
	/* the first forward is ssh's; the rest are the user's */
	for (size_t k = 1; up && k < i.ports->n; k++)
		json_array_append_new(ports, json_string(i.ports->v[k]));
	return json_pack("{s:s,s:s,s:o,s:o,s:o,s:s,s:i,s:I,s:o,s:o,s:o,s:s,"
			 "s:s?,s:s?,s:o,s:o,s:o,s:s?,s:s?,s:s?}",
		"name", i.name, "state", vm_state_name(i.state),
		"pid", up ? json_integer(i.pid) : json_null(),
		"accel", up && i.accel ? json_string(i.accel) : json_null(),
		"uptime", up ? json_integer(time(NULL) - i.since) : json_null(),
		"image", i.image, "cpus", i.cpus,
		"memory_mib", (json_int_t)(i.memory >> 20),
		"resident_mib", i.resident ?
		json_integer((json_int_t)(i.resident >> 20)) : json_null(),
		"ssh", up ? json_pack("{s:s,s:i,s:s}", "host", "127.0.0.1",
				      "port", i.ssh_port, "user", i.user) :
			    json_null(),
		"ports", ports, "dir", i.dir, "cluster", i.cluster,
		"address", i.address, "network", i.cluster ?
		json_string(i.network_cut ? "cut" : i.network_paused ?
			    "paused" : i.network_up ? "running" : "stopped") :
		json_null(),
		"save", i.saved_at ? save_json(&i) : json_null(),
		"panic", i.panic ? json_string(i.panic) : json_null(),
		"delete_cut_short", i.delete_cut, "no_room", i.no_room,
		"sshd_failed", i.sshd_failed);
}

/* 1 when status j is of a suspended VM whose save file is gone. */
static int json_save_gone(json_t *j)
{
	return json_is_true(json_object_get(json_object_get(j, "save"),
					    "gone"));
}

/* "391M, 2m05s ago" for a save of status j ("gone, made 2m05s ago" when
 * its file is), or "" when it has none. */
static void save_line(json_t *j, char *out, size_t size)
{
	json_t *sv = json_object_get(j, "save");
	char age[32];

	out[0] = '\0';
	if (!json_is_object(sv))
		return;
	fmt_duration((long)json_integer_value(json_object_get(sv, "age")),
		     age, sizeof(age));
	if (json_save_gone(j))
		snprintf(out, size, "gone, made %s ago", age);
	else
		snprintf(out, size, "%lldM, %s ago", (long long)(
			 json_integer_value(json_object_get(sv, "size")) >> 20),
			 age);
}

static void print_status(json_t *j)
{
	const char *state = json_string_value(json_object_get(j, "state"));
	const char *name = json_string_value(json_object_get(j, "name"));
	json_t *ports = json_object_get(j, "ports"), *p;
	char up[32], *image;
	size_t i;

	printf("name:    %s\n", name);
	if (!strcmp(state, "broken")) {
		printf("state:   broken: %s\nremove:  nook local delete %s "
		       "--force\n", json_string_value(json_object_get(j,
		       "error")), name);
		return;
	}
	if (json_is_integer(json_object_get(j, "pid"))) {
		const char *accel = json_string_value(json_object_get(j,
								      "accel"));

		fmt_duration((long)json_integer_value(json_object_get(j, "uptime")),
			     up, sizeof(up));
		/* no accelerator yet while a start has it launching */
		printf("state:   %s (pid %lld, up %s%s%s)\n", state,
		       (long long)json_integer_value(json_object_get(j, "pid")),
		       up, accel ? ", " : "", accel ? accel : "");
	} else if (json_is_object(json_object_get(j, "save"))) {
		char saved[64];

		save_line(j, saved, sizeof(saved));
		printf("state:   %s (saved state %s%s)\n", state, saved,
		       json_save_gone(j) ? ": its file was removed" : "");
	} else {
		printf("state:   %s\n", state);
	}
	image = str_escaped(json_string_value(json_object_get(j, "image")));
	printf("image:   %s\n", image);
	free(image);
	printf("cpus:    %lld, memory %lldM",
	       (long long)json_integer_value(json_object_get(j, "cpus")),
	       (long long)json_integer_value(json_object_get(j, "memory_mib")));
	/* what it takes of the host's: the guest hands back what it frees */
	if (json_is_integer(json_object_get(j, "resident_mib")))
		printf(" (QEMU resident %lldM)", (long long)json_integer_value(
		       json_object_get(j, "resident_mib")));
	printf("\n");
	if (json_is_object(json_object_get(j, "ssh")))
		printf("ssh:     127.0.0.1:%lld -> 22\n",
		       (long long)json_integer_value(json_object_get(
			       json_object_get(j, "ssh"), "port")));
	json_array_foreach(ports, i, p)
		printf("port:    %s\n", json_string_value(p));
	if (json_is_string(json_object_get(j, "cluster"))) {
		const char *net = json_string_value(json_object_get(j,
								    "network"));

		printf("cluster: %s, address %s (its network %s)\n",
		       json_string_value(json_object_get(j, "cluster")),
		       json_string_value(json_object_get(j, "address")),
		       !strcmp(net, "cut") ? "running, but this node was "
		       "plugged into the process before it: restart the node "
		       "to rejoin" : !strcmp(net, "paused") ? "paused: its "
		       "switch is stopped (SIGSTOP), and passes nothing until "
		       "it gets SIGCONT" : net);
	}
	if (json_is_string(json_object_get(j, "delete_cut_short")))
		printf("note:    a delete of it was cut short; 'nook local "
		       "delete %s --force' finishes it, 'nook local start %s' "
		       "keeps it\n", json_string_value(json_object_get(j,
		       "delete_cut_short")), name);
	else if (json_is_string(json_object_get(j, "panic")))
		printf("panic:   the guest's kernel panicked, and QEMU spins "
		       "on: %s\n         'nook local logs %s' shows the console, "
		       "'nook local stop %s --force' ends it\n",
		       json_string_value(json_object_get(j, "panic")), name,
		       name);
	else if (json_is_string(json_object_get(j, "no_room")))
		printf("stopped: %s\n", json_string_value(json_object_get(j,
		       "no_room")));
	else if (json_is_string(json_object_get(j, "sshd_failed")))
		printf("sshd:    the guest's sshd failed to start, and systemd "
		       "gave up on it: %s\n         'nook local logs %s' shows "
		       "the console, 'nook local stop %s --force' ends it\n",
		       json_string_value(json_object_get(j, "sshd_failed")),
		       name, name);
	else if (!strcmp(state, "running") || !strcmp(state, "starting"))
		printf("get in:  nook shell %s\n", name);
	else if (!strcmp(state, "paused"))
		printf("go on:   nook local unpause %s\n", name);
	else if (!strcmp(state, "suspended") && json_save_gone(j))
		printf("start:   nook local start %s boots it afresh (its "
		       "memory is lost with the save; the disk is as the "
		       "suspend left it)\n", name);
	else if (!strcmp(state, "suspended"))
		printf("resume:  nook local start %s (--cold boots afresh)\n",
		       name);
	else if (!strcmp(state, "crashed"))
		printf("note:    QEMU died without a stop; 'nook local logs %s' "
		       "shows the console, 'nook local start %s' boots it "
		       "again\n", name, name);
	else
		printf("start:   nook local start %s\n", name);
}

static const char usage_status[] =
	"usage: nook local status [NAME] [--json]\n"
	"\n"
	"Shows the VM's state (running, starting, stopped, crashed, paused,\n"
	"suspended, with its save's size and age, or that its file is gone\n"
	"and the next start boots afresh), its pid, accelerator, image,\n"
	"forwarded ports, uptime and how to get in; for a\n"
	"cluster node its address and whether the network runs (cut: it\n"
	"runs, but the node was plugged into the one before and rejoins when\n"
	"it restarts). A running VM whose guest's kernel panicked (QEMU\n"
	"spins on) says so, with the console's line (\"panic\" in JSON), and\n"
	"one whose guest QEMU stopped at a write the disk holding the VM had\n"
	"no room for says so, with what to do (\"no_room\" in JSON), as does\n"
	"one whose guest's sshd systemd gave up starting (\"sshd_failed\").\n"
	"A cluster's name shows every node (a JSON array).\n";

/* What list and a cluster's status show of VM name, whose record cannot
 * be read: what is wrong, and 'delete --force' removes it. */
static json_t *broken_json(const char *name, const char *why)
{
	return json_pack("{s:s,s:s,s:s}", "name", name, "state", "broken",
			 "error", why);
}

/* The status of VM name, or of every node when it is a cluster (an
 * array for --json). */
static json_t *status_of(const struct nook_dirs *d, const char *name,
			 int cluster)
{
	struct strvec names = STRVEC_INIT, why = STRVEC_INIT;
	json_t *j = NULL;

	if (cluster && vm_cluster_nodes_why(d, name, &names, &why) < 0)
		return NULL;
	if (!cluster)
		strvec_push(&names, name);
	if (cluster)
		j = json_array();
	for (size_t i = 0; i < names.n; i++) {
		struct vm *vm;

		if (cluster && *why.v[i]) {
			json_array_append_new(j, broken_json(names.v[i],
							     why.v[i]));
			continue;
		}
		if (vm_open(d, names.v[i], !cluster, &vm) < 0)
			continue;
		if (cluster && vm_exists(vm))
			json_array_append_new(j, status_json(vm));
		else if (!cluster)
			j = status_json(vm);
		vm_close(vm);
	}
	strvec_clear(&names);
	strvec_clear(&why);
	return j;
}

static int local_status(struct nook_ctx *ctx, int argc, char **argv)
{
	const struct nook_dirs *d;
	struct small s;
	json_t *j, *e;
	size_t i;
	int cluster, rc = parse_small(ctx, argc, argv, usage_status, "j", &s);

	if (rc)
		return rc < 0 ? 0 : rc;
	cluster = is_cluster(ctx, s.name, &d);
	j = cluster < 0 ? NULL : status_of(d, s.name, cluster);
	if (!j)
		return s.json ? print_json_error() : 1;
	if (s.json)
		return print_json(j);
	if (!cluster)
		print_status(j);
	json_array_foreach(cluster ? j : NULL, i, e) {
		printf("%s", i ? "\n" : "");
		print_status(e);
	}
	json_decref(j);
	return 0;
}

static const char usage_list[] =
	"usage: nook local list [--json]\n"
	"\n"
	"Lists every VM with its state, pid, ssh port and image, and names a\n"
	"cluster that has no node (in --json, after the VMs: its \"name\",\n"
	"\"state\": \"no-nodes\", \"cluster\" and what to do in \"error\"),\n"
	"or whose record cannot be read and that no VM is a node of\n"
	"(\"state\": \"broken\", \"error\" saying what is wrong, what forgets\n"
	"it).\n";

static const char *or_dash(const json_t *v)
{
	return json_is_string(v) ? json_string_value(v) : "-";
}

/* The width of a column of all's key: its longest string, at least
 * min. */
static int col_width(json_t *all, const char *key, int min)
{
	size_t i, w = (size_t)min;
	json_t *j;

	json_array_foreach(all, i, j) {
		const char *s = json_string_value(json_object_get(j, key));

		if (s && strlen(s) > w)
			w = strlen(s);
	}
	return (int)w;
}

static void print_list(json_t *all)
{
	/* a name may be 32 characters: the columns fit the longest */
	int nw = col_width(all, "name", 16), cw = col_width(all, "cluster", 10);
	json_t *j;
	size_t i;

	printf("%-*s %-9s %-8s %-6s %-*s %-15s %s\n", nw, "NAME", "STATE",
	       "PID", "SSH", cw, "CLUSTER", "ADDRESS", "IMAGE");
	json_array_foreach(all, i, j) {
		json_t *ssh = json_object_get(j, "ssh");
		char pid[16] = "-", port[16] = "-", saved[64], *image;

		if (json_is_integer(json_object_get(j, "pid")))
			snprintf(pid, sizeof(pid), "%lld", (long long)
				 json_integer_value(json_object_get(j, "pid")));
		save_line(j, saved, sizeof(saved));
		if (json_is_object(ssh))
			snprintf(port, sizeof(port), "%lld", (long long)
				 json_integer_value(json_object_get(ssh, "port")));
		image = str_escaped(or_dash(json_object_get(j, "image")));
		printf("%-*s %-9s %-8s %-6s %-*s %-15s %s%s%s%s%s%s%s%s\n", nw,
		       json_string_value(json_object_get(j, "name")),
		       json_string_value(json_object_get(j, "state")), pid, port,
		       cw, or_dash(json_object_get(j, "cluster")),
		       or_dash(json_object_get(j, "address")), image,
		       !saved[0] ? "" : json_save_gone(j) ? " (saved state " :
		       " (saved ", saved, saved[0] ? ")" : "",
		       json_is_string(json_object_get(j, "panic")) ?
		       " (its kernel panicked)" : "",
		       json_is_string(json_object_get(j, "no_room")) ?
		       " (QEMU stopped it: no room on its disk)" : "",
		       json_is_string(json_object_get(j, "sshd_failed")) ?
		       " (its sshd failed to start)" : "",
		       json_is_string(json_object_get(j, "delete_cut_short")) ?
		       " (a delete of it was cut short)" : "");
		free(image);
	}
}

/* What list --json shows of cluster name, which has a record and no
 * node: as the text, what to do. */
static json_t *no_nodes_json(const char *name)
{
	char *text = vm_cluster_no_nodes_text(name);
	json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "name", name, "state",
			      "no-nodes", "cluster", name, "error", text);

	free(text);
	return j;
}

/* What list --json shows of cluster name, whose record cannot be read
 * and that has no node: as a broken VM's, what is wrong (why). */
static json_t *broken_cluster_json(const char *name, const char *why)
{
	return json_pack("{s:s,s:s,s:s,s:s}", "name", name, "state", "broken",
			 "cluster", name, "error", why);
}

/* The clusters that are no row of list's table (no node) into all:
 * names, which have a record, then broken, whose record cannot be read
 * (each with what is wrong in why). */
static void nodeless_json(json_t *all, const struct strvec *names,
			  const struct strvec *broken, const struct strvec *why)
{
	for (size_t i = 0; i < names->n; i++)
		json_array_append_new(all, no_nodes_json(names->v[i]));
	for (size_t i = 0; i < broken->n; i++)
		json_array_append_new(all, broken_cluster_json(broken->v[i],
							       why->v[i]));
}

/* The same, said after the table. */
static void nodeless_print(const struct strvec *names,
			   const struct strvec *broken, const struct strvec *why)
{
	for (size_t i = 0; i < names->n; i++) {
		char *text = vm_cluster_no_nodes_text(names->v[i]);

		printf("%s\n", text);
		free(text);
	}
	for (size_t i = 0; i < broken->n; i++)
		printf("cluster %s is broken: %s\n", broken->v[i], why->v[i]);
}

/* The clusters the VMs of all (list's) say they are nodes of, into out. */
static void named_clusters(json_t *all, struct strvec *out)
{
	size_t i;
	json_t *v;

	json_array_foreach(all, i, v) {
		const char *c = json_string_value(json_object_get(v, "cluster"));

		if (c && strvec_index(out, c) < 0)
			strvec_push(out, c);
	}
}

static int local_list(struct nook_ctx *ctx, int argc, char **argv)
{
	struct small s;
	const struct nook_dirs *d;
	struct strvec names = STRVEC_INIT;
	struct strvec broken = STRVEC_INIT, why = STRVEC_INIT;
	struct strvec named = STRVEC_INIT;
	json_t *all;
	int rc = parse_small(NULL, argc, argv, usage_list, "j", &s);

	if (rc)
		return rc < 0 ? 0 : rc;
	if (argc - optind > 0)
		return usage_error(usage_list, "list takes no name");
	d = ctx_dirs(ctx);
	if (!d)
		return s.json ? print_json_error() : 1;
	vm_list(d, &names);
	all = json_array();
	for (size_t i = 0; i < names.n; i++) {
		struct vm *vm;

		/* one whose record cannot be read is listed, not left out:
		 * what is wrong is said, and 'delete --force' removes it;
		 * one deleted since the directory was read is not */
		if (vm_open(d, names.v[i], 0, &vm) < 0) {
			/* (its record gone as it was read) */
			if (vm_list_has(d, names.v[i]))
				json_array_append_new(all, broken_json(
					names.v[i], error_last()));
		} else if (vm_exists(vm))
			json_array_append_new(all, status_json(vm));
		vm_close(vm);
	}
	strvec_clear(&names);
	named_clusters(all, &named);
	/* not a VM, so not a row of the table: but its name is taken, and
	 * a start killed before it made a node leaves one; one whose record
	 * cannot be read is said too, or delete would forget it unseen */
	vm_clusters_empty(d, &named, &names, &broken, &why);
	strvec_clear(&named);
	if (s.json) {
		nodeless_json(all, &names, &broken, &why);
		rc = print_json(all);
	} else {
		print_list(all);
		json_decref(all);
		nodeless_print(&names, &broken, &why);
	}
	strvec_clear(&names);
	strvec_clear(&broken);
	strvec_clear(&why);
	return rc;
}

static const char usage_delete[] =
	"usage: nook local delete [NAME] [--force] [--json]\n"
	"\n"
	"Removes the VM's files: its disk, seed, keys and logs. A running VM\n"
	"is refused unless --force, which stops it first. The base image is\n"
	"never touched. A cluster's name deletes every node, its network and\n"
	"its record (refused while any node runs, unless --force: all or\n"
	"nothing). --json prints what was deleted (for a cluster, an array:\n"
	"each node's, or its error).\n";

static json_t *delete_json(const char *node, const char *words)
{
	(void)words;
	return json_pack("{s:s,s:b}", "name", node, "deleted", 1);
}

static int delete_cluster(const struct nook_dirs *d, const struct small *s)
{
	struct vm_cluster_said said = VM_CLUSTER_SAID_INIT;
	int rc = vm_cluster_delete(d, s->name, s->force,
				   s->json ? &said : NULL) < 0;

	/* one with no node left is deleted too: an empty array */
	if (s->json && (said.nodes.n || !rc))
		rc |= print_nodes(&said, rc, delete_json);
	else if (!rc)
		printf("cluster %s deleted\n", s->name);
	vm_cluster_said_clear(&said);
	return rc;
}

static int local_delete(struct nook_ctx *ctx, int argc, char **argv)
{
	const struct nook_dirs *d;
	struct small s;
	struct vm *vm;
	int rc = parse_small(ctx, argc, argv, usage_delete, "fj", &s);

	if (rc)
		return rc < 0 ? 0 : rc;
	rc = is_cluster(ctx, s.name, &d);
	if (rc)
		return rc < 0 ? 1 : delete_cluster(d, &s);
	/* one whose record cannot be read too: vm_remove() says that
	 * only --force removes it */
	if (vm_open(d, s.name, VM_OPEN_BROKEN, &vm) < 0)
		vm = NULL;
	rc = !vm || vm_delete(vm, s.force) < 0;
	if (!rc && s.json)
		rc = print_json(delete_json(s.name, NULL));
	else if (!rc)
		printf("VM %s deleted\n", s.name);
	vm_close(vm);
	return rc;
}

static const char usage_suspend[] =
	"usage: nook local suspend [NAME] [--timeout S] [--json]\n"
	"\n"
	"Saves the VM's memory and device state to vms/NAME/suspend.save and\n"
	"ends its QEMU, freeing its memory. 'nook local start NAME' resumes it\n"
	"in seconds (the guest's clock set right, a new ssh master); '--cold'\n"
	"discards the save. A save made with another QEMU, machine, CPU,\n"
	"settings or disk is not used: the VM boots cold, saying why.\n"
	"--timeout bounds the save (default: a minute, and a second per 8M of\n"
	"memory). A cluster's name suspends every node at once (and its\n"
	"network; a node stopped or suspended already is said and left);\n"
	"'nook local start CLUSTER' resumes them all at once.\n"
	"--json prints the save's size and time (a cluster's: an array).\n";

static const char usage_pause[] =
	"usage: nook local pause [NAME] [--json]\n"
	"\n"
	"Stops the VM's CPUs (QMP stop); its memory and QEMU stay. 'nook local\n"
	"unpause' lets it go on. A cluster's name pauses every node at once\n"
	"(a node paused, stopped or suspended already is said and left).\n"
	"--json prints the outcome (a cluster's: an array).\n";

static const char usage_unpause[] =
	"usage: nook local unpause [NAME] [--json]\n"
	"\n"
	"Lets a paused VM run again and sets its clock to the host's (over\n"
	"ssh). It also lets go on a guest that QEMU stopped at a write the\n"
	"disk holding the VM had no room for (status says so), once space is\n"
	"free there: QEMU makes that write again. A cluster's name unpauses\n"
	"every node at once (a node running, stopped or suspended already\n"
	"is said and left). --json prints the outcome (a cluster's: an\n"
	"array).\n";

enum pause_op { OP_SUSPEND, OP_PAUSE, OP_UNPAUSE };

struct pausing {
	enum pause_op op;
	const struct small *s;
	int cluster;            /* the nodes of a cluster's name */
};

static json_t *pause_json(const char *name, enum pause_op op,
			  uint64_t size, double secs)
{
	static const char *const states[] = { "suspended", "paused",
					      "running" };
	json_t *j = json_pack("{s:s,s:s}", "name", name, "state", states[op]);

	if (op == OP_SUSPEND)
		json_object_set_new(j, "save", json_pack("{s:I,s:f}", "size",
				    (json_int_t)size, "seconds", secs));
	return j;
}

/* What a cluster's node in state st, its guest stopped by QEMU for
 * lack of room (no_room) or not, gives op nothing to do: the words
 * that follow its state, or NULL when op has work there. */
static const char *nothing_to_do(enum pause_op op, enum vm_state st,
				 int no_room)
{
	static const char *const none[] = { ", nothing to suspend",
					     ", nothing to pause",
					     ", nothing to unpause" };
	static const enum vm_state done[] = { VM_SUSPENDED, VM_PAUSED,
					      VM_RUNNING };

	if (st == done[op] && !(op == OP_UNPAUSE && no_room))
		return " already";
	if (st == VM_STOPPED || st == VM_SUSPENDED)
		return none[op];
	return NULL;
}

/* A cluster's node that op has nothing to do on (one stopped or
 * suspended, or in op's state already) is said (with words, a --json's:
 * its JSON there) and left, as a cluster's stop leaves a stopped node:
 * 1; else 0. */
static int nothing_there(struct vm *vm, const char *name, enum pause_op op,
			 struct buf *words)
{
	struct vm_info i;
	const char *st, *left;
	char *how, *text;
	json_t *j;

	vm_get_info(vm, &i);
	left = nothing_to_do(op, i.state, i.no_room != NULL);
	if (!left)
		return 0;
	st = vm_state_name(i.state);
	how = xasprintf("%s%s", st, left);
	if (words) {
		j = json_pack("{s:s,s:s,s:s}", "name", name, "state", st,
			      "how", how);
		text = j ? json_dumps(j, JSON_COMPACT) : NULL;
		if (text)
			buf_adds(words, text);
		free(text);
		json_decref(j);
	} else {
		printf("VM %s: %s\n", name, how);
		fflush(stdout);
	}
	free(how);
	return 1;
}

/* One VM's suspend, pause or unpause: its outcome printed, or, with
 * words (a cluster's node, in its own process), its --json put there
 * for the command's process to print. 0, or 1. */
static int pause_one(const struct nook_dirs *d, const char *name,
		     const void *arg, struct buf *words)
{
	const struct pausing *p = arg;
	enum pause_op op = p->op;
	const struct small *s = p->s;
	uint64_t size = 0;
	double secs = 0;
	struct vm *vm;
	int rc = -1;

	if (vm_open(d, name, 1, &vm) < 0)
		return 1;
	if (p->cluster && nothing_there(vm, name, op, s->json ? words : NULL)) {
		vm_close(vm);
		return 0;
	}
	if (op == OP_SUSPEND)
		rc = vm_suspend(vm, s->timeout_given ? (int)s->timeout : 0,
				&size, &secs);
	else if (op == OP_PAUSE)
		rc = vm_pause(vm);
	else
		rc = vm_unpause(vm);
	if (rc == 0 && s->json) {
		json_t *j = pause_json(name, op, size, secs);
		char *text = words ? json_dumps(j, JSON_COMPACT) : NULL;

		if (words && text)
			buf_adds(words, text);
		else if (!words && print_json(json_incref(j)) != 0)
			rc = -1;
		free(text);
		json_decref(j);
	} else if (rc == 0 && op == OP_SUSPEND)
		printf("VM %s suspended: %lluM saved in %.1f s\n", name,
		       (unsigned long long)(size >> 20), secs);
	else if (rc == 0)
		printf("VM %s %s\n", name, op == OP_PAUSE ? "paused" :
		       "running again");
	fflush(stdout);
	vm_close(vm);
	sig_rethrow(); /* a suspend cut short by ^C, undone */
	return rc == 0 ? 0 : 1;
}

static int local_pausing(struct nook_ctx *ctx, int argc, char **argv,
			 enum pause_op op)
{
	static const char *const usages[] = { usage_suspend, usage_pause,
					      usage_unpause };
	struct pausing p = { op, NULL, 0 };
	const struct nook_dirs *d;
	struct small s;
	int rc = parse_small(ctx, argc, argv, usages[op], op == OP_SUSPEND ?
			     "tj" : "j", &s);

	if (rc)
		return rc < 0 ? 0 : rc;
	p.s = &s;
	rc = is_cluster(ctx, s.name, &d);
	if (rc == 0)
		rc = pause_one(d, s.name, &p, NULL);
	else if (rc > 0) {
		struct vm_cluster_said said = VM_CLUSTER_SAID_INIT;

		p.cluster = 1;
		/* every node at once, each in its own process */
		rc = vm_cluster_each(d, s.name, op == OP_SUSPEND ? "suspend" :
				     op == OP_PAUSE ? "pause" : "unpause",
				     pause_one, &p, s.json ? &said : NULL);
		if (rc > 0)
			errorf("cluster %s: %d node%s failed (%s)", s.name, rc,
			       rc == 1 ? "" : "s", s.json ? "each node's "
			       "\"error\" in the JSON" : "said above");
		if (s.json && said.nodes.n)
			rc |= print_nodes(&said, rc != 0, node_json);
		vm_cluster_said_clear(&said);
	}
	return rc ? 1 : 0;
}

static int local_suspend(struct nook_ctx *ctx, int argc, char **argv)
{
	return local_pausing(ctx, argc, argv, OP_SUSPEND);
}

static int local_pause(struct nook_ctx *ctx, int argc, char **argv)
{
	return local_pausing(ctx, argc, argv, OP_PAUSE);
}

static int local_unpause(struct nook_ctx *ctx, int argc, char **argv)
{
	return local_pausing(ctx, argc, argv, OP_UNPAUSE);
}

static const char usage_logs[] =
	"usage: nook local logs [NAME] [--follow]\n"
	"\n"
	"Prints the VM's serial console log (every boot, appended), or each\n"
	"node's of a cluster (a node whose record cannot be read is named,\n"
	"and the exit status is 1). --follow keeps printing what one VM's\n"
	"console writes until interrupted.\n";

/* chunk[0..n) to stdout: to a terminal, as term_escape() shows it (the
 * log is the guest's, and a hostile guest's escape sequences would act
 * on the user's terminal), a sequence cut off at its end kept back (the
 * bytes kept are at chunk's start again); to a file or pipe, as it is.
 * The bytes kept, or -1 when stdout failed. */
static long write_log(char *chunk, size_t n, int tty, int more)
{
	struct buf b = BUF_INIT;
	size_t took;
	int ok;

	if (!tty)
		return fwrite(chunk, 1, n, stdout) == n ? 0 : -1;
	took = term_escape(&b, chunk, n, more);
	ok = !b.len || fwrite(b.p, 1, b.len, stdout) == b.len;
	buf_free(&b);
	memmove(chunk, chunk + took, n - took);
	return ok ? (long)(n - took) : -1;
}

/* --follow's look at the log at path between reads, as tail -F's: one
 * cut short (emptied) is read again from its start, one removed and made
 * anew (a delete and a start of the same name) is opened anew. */
static void follow_look(const char *path, FILE **f)
{
	struct stat was, now;
	FILE *g;

	if (fstat(fileno(*f), &was) < 0 || stat(path, &now) < 0)
		return; /* gone for now: its next one is looked for */
	if (now.st_ino != was.st_ino || now.st_dev != was.st_dev) {
		g = fopen(path, "re");
		if (g) {
			fclose(*f);
			*f = g;
		}
	} else if (now.st_size < ftello(*f)) {
		fseeko(*f, 0, SEEK_SET);
	}
}

/* Copy VM name's console log to stdout; with follow, keep copying. */
static int print_log(const struct nook_dirs *d, const char *name, int follow)
{
	struct vm *vm;
	FILE *f = NULL;
	char chunk[4096];
	size_t have = 0;
	int rc = 1, tty = isatty(STDOUT_FILENO);
	long kept;

	if (vm_open(d, name, 1, &vm) < 0)
		return 1;
	f = fopen(vm_console_log(vm), "re");
	if (!f) {
		/* never booted: nothing logged yet */
		rc = errno == ENOENT && !follow ? 0 :
		     error_errno("cannot read %s", vm_console_log(vm)) + 2;
		goto out;
	}
	for (;;) {
		size_t n = fread(chunk + have, 1, sizeof(chunk) - have, f);

		have += n;
		kept = write_log(chunk, have, tty, n > 0 || follow);
		if (kept < 0)
			goto out;
		have = (size_t)kept;
		if (n)
			continue;
		if (!follow)
			break;
		fflush(stdout);
		clearerr(f);
		nanosleep(&(struct timespec){ 0, 200000000L }, NULL);
		follow_look(vm_console_log(vm), &f);
	}
	rc = fflush(stdout) ? 1 : 0;
out:
	if (f)
		fclose(f);
	vm_close(vm);
	return rc;
}

/* Each node's console log of cluster name, a header above each; one
 * whose record cannot be read is named on stderr and fails the command,
 * as a stop of the cluster does, and the others' are shown. */
static int print_cluster_logs(const struct nook_dirs *d, const char *name)
{
	struct strvec nodes = STRVEC_INIT, why = STRVEC_INIT;
	size_t shown = 0;
	int rc = 0;

	if (vm_cluster_nodes_why(d, name, &nodes, &why) < 0)
		return 1;
	for (size_t i = 0; i < nodes.n; i++) {
		if (*why.v[i]) {
			vm_cluster_node_broken(nodes.v[i]);
			rc = 1;
			continue;
		}
		printf("%s==> %s <==\n", shown++ ? "\n" : "", nodes.v[i]);
		rc |= print_log(d, nodes.v[i], 0);
	}
	strvec_clear(&nodes);
	strvec_clear(&why);
	return rc;
}

static int local_logs(struct nook_ctx *ctx, int argc, char **argv)
{
	const struct nook_dirs *d;
	struct small s;
	int cluster, rc = parse_small(ctx, argc, argv, usage_logs, "F", &s);

	if (rc)
		return rc < 0 ? 0 : rc;
	cluster = is_cluster(ctx, s.name, &d);
	if (cluster < 0)
		return 1;
	if (!cluster)
		return print_log(d, s.name, s.follow);
	if (s.follow)
		return usage_error(usage_logs, "--follow takes one VM: name a "
				   "node of %s", s.name);
	return print_cluster_logs(d, s.name);
}

int cmd_local(struct nook_ctx *ctx, int argc, char **argv)
{
	static const struct subcommand subs[] = {
		{ "start", cmd_local_start }, { "stop", local_stop },
		{ "status", local_status },   { "list", local_list },
		{ "delete", local_delete },   { "logs", local_logs },
		{ "suspend", local_suspend }, { "pause", local_pause },
		{ "unpause", local_unpause }, { "prune", cmd_local_prune },
		{ "snapshot", cmd_local_snapshot },
	};

	return run_subcommand(ctx, argc, argv, subs, ARRAY_SIZE(subs),
			      usage_local);
}

/* nook local start: a VM from nothing (or from where it was) to ready. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "vm.h"

static const char usage[] =
	"usage: nook local start [NAME] [OPTIONS]\n"
	"\n"
	"Starts VM NAME (default: default), making it on first start, and waits\n"
	"until it is ready: sshd answers, ssh logs in, cloud-init is done.\n"
	"With --nodes, or when NAME is a cluster, starts cluster NAME: VMs\n"
	"NAME-1..NAME-N on a private network, in parallel.\n"
	"Without NAME inside a tree with a nook.yaml (found upward from the\n"
	"current directory), starts what it describes: a VM, or a cluster of\n"
	"groups (NAME-GROUP-1 ...); options given here override the file.\n"
	"\n"
	"  --plan                 print what would start (nodes, sizes,\n"
	"                         addresses; --json for JSON) and exit\n"
	"  --nodes N              a cluster of N nodes (more grows one)\n"
	"  --subnet CIDR          the cluster's private network (default\n"
	"                         10.77.0.0/24)\n"
	"  --image NAME|PATH      base image: a name in the store, an image\n"
	"                         directory (manifest.json) or a disk file\n"
	"                         (default: debian-12)\n"
	"  --cpus N               virtual CPUs (default 2)\n"
	"  --memory SIZE          memory, e.g. 2G (default 1G)\n"
	"  --disk SIZE            grow the VM's disk to SIZE\n"
	"  --user-data FILE       cloud-init user-data, passed on untouched\n"
	"  --network-config FILE  cloud-init network-config\n"
	"  --port [ADDR:]HOST:GUEST[/tcp|/udp]\n"
	"                         forward a host port (ADDR 127.0.0.1 unless\n"
	"                         given; HOST 0 picks a free one); repeatable\n"
	"  --boot disk|direct     boot from the disk or the image's kernel\n"
	"  --kernel K [--initrd I]  direct kernel boot with this kernel\n"
	"  --append ARGS          more kernel arguments (direct boot)\n"
	"  --accel auto|kvm|tcg   accelerator (default auto: KVM when it works);\n"
	"                         under TCG a direct boot also gets the kernel\n"
	"                         arguments tsc=reliable norandmaps (the guest\n"
	"                         runs without ASLR: see the README)\n"
	"  --cpu MODEL            QEMU CPU model (default: host under KVM,\n"
	"                         qemu64,svm=off under TCG, the fastest to\n"
	"                         emulate)\n"
	"  --no-wait              return once QEMU runs\n"
	"  --timeout SECONDS      how long to wait for ready (default 900)\n"
	"  --reprovision          new instance-id: cloud-init runs again\n"
	"  --cold                 a suspended VM: discard its saved state and\n"
	"                         boot (default: resume it)\n"
	"  --json                 print the result as JSON\n"
	"\n"
	"Settings given at first start are remembered; a later start says what\n"
	"it changes.\n";

enum { O_IMAGE = 256, O_CPUS, O_MEMORY, O_DISK, O_USER_DATA, O_NETCFG,
       O_PORT, O_BOOT, O_KERNEL, O_INITRD, O_APPEND, O_ACCEL, O_NO_WAIT,
       O_TIMEOUT, O_REPROVISION, O_JSON, O_CPU, O_NODES, O_SUBNET, O_COLD,
       O_PLAN };

static const struct option longopts[] = {
	{ "image", required_argument, NULL, O_IMAGE },
	{ "cpus", required_argument, NULL, O_CPUS },
	{ "memory", required_argument, NULL, O_MEMORY },
	{ "disk", required_argument, NULL, O_DISK },
	{ "user-data", required_argument, NULL, O_USER_DATA },
	{ "network-config", required_argument, NULL, O_NETCFG },
	{ "port", required_argument, NULL, O_PORT },
	{ "boot", required_argument, NULL, O_BOOT },
	{ "kernel", required_argument, NULL, O_KERNEL },
	{ "initrd", required_argument, NULL, O_INITRD },
	{ "append", required_argument, NULL, O_APPEND },
	{ "accel", required_argument, NULL, O_ACCEL },
	{ "cpu", required_argument, NULL, O_CPU },
	{ "no-wait", no_argument, NULL, O_NO_WAIT },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "reprovision", no_argument, NULL, O_REPROVISION },
	{ "json", no_argument, NULL, O_JSON },
	{ "nodes", required_argument, NULL, O_NODES },
	{ "subnet", required_argument, NULL, O_SUBNET },
	{ "cold", no_argument, NULL, O_COLD },
	{ "plan", no_argument, NULL, O_PLAN },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

struct opts {
	struct vm_start_opts vm;
	struct net_port *ports;
	int json;
	int nodes;
	int plan;
	const char *subnet;
	/* a cluster's nodes by name, each with its options (NULL: vm) */
	struct vm_cluster_node *list;
	size_t nlist;
	struct vm_start_opts *node_opts;
	struct strvec names;
	struct vm_start_opts given; /* as the command line alone has it */
};

/* One of the options with a value that is a word from a list. */
static int one_of(const char *opt, const char *arg, const char *const *ok,
		  const char **out)
{
	for (size_t i = 0; ok[i]; i++)
		if (!strcmp(arg, ok[i])) {
			*out = ok[i];
			return 0;
		}
	return usage_error(usage, "%s cannot be '%s' (see --help)", opt, arg);
}

/* The options whose value is a number or a size. */
static int take_number(struct opts *opts, int c, const char *arg)
{
	struct vm_start_opts *o = &opts->vm;
	long n;

	switch (c) {
	case O_CPUS:
		if (parse_int("--cpus", arg, 1, 64, &n) < 0)
			return EXIT_USAGE;
		o->cpus = (int)n;
		return 0;
	case O_TIMEOUT:
		if (parse_int("--timeout", arg, 1, 86400, &n) < 0)
			return EXIT_USAGE;
		o->timeout_s = (int)n;
		return 0;
	case O_NODES:
		if (parse_int("--nodes", arg, 1, 64, &n) < 0)
			return EXIT_USAGE;
		opts->nodes = (int)n;
		return 0;
	case O_MEMORY:
		if (parse_size("--memory", arg, &o->memory) < 0)
			return EXIT_USAGE;
		if (o->memory < (128ULL << 20))
			return usage_error(usage, "--memory %s is below the "
					   "128M a guest needs", arg);
		return 0;
	case O_DISK:
		return parse_size("--disk", arg, &o->disk) < 0 ? EXIT_USAGE : 0;
	}
	return EXIT_USAGE;
}

/* Take one option's value into opts; EXIT_USAGE when it is bad. */
static int take(struct opts *opts, int c, const char *arg)
{
	static const char *const boots[] = { "disk", "direct", NULL };
	static const char *const accels[] = { "auto", "kvm", "tcg", NULL };
	struct vm_start_opts *o = &opts->vm;

	switch (c) {
	case O_IMAGE: o->image = arg; return 0;
	case O_USER_DATA: o->user_data = arg; return 0;
	case O_NETCFG: o->network_config = arg; return 0;
	case O_KERNEL: o->kernel = arg; return 0;
	case O_INITRD: o->initrd = arg; return 0;
	case O_APPEND: o->append = arg; return 0;
	case O_NO_WAIT: o->no_wait = 1; return 0;
	case O_REPROVISION: o->reprovision = 1; return 0;
	case O_COLD: o->cold = 1; return 0;
	case O_PLAN: opts->plan = 1; return 0;
	case O_JSON: opts->json = 1; return 0;
	case O_SUBNET: opts->subnet = arg; return 0;
	case O_BOOT: return one_of("--boot", arg, boots, &o->boot);
	case O_ACCEL: return one_of("--accel", arg, accels, &o->accel);
	case O_CPU:
		/* one QEMU word: a model and its +/-features */
		if (!*arg || strspn(arg, "abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "0123456789-_.,=+") != strlen(arg))
			return usage_error(usage, "bad --cpu '%s'", arg);
		o->cpu = arg;
		return 0;
	case O_CPUS: case O_TIMEOUT: case O_NODES: case O_MEMORY: case O_DISK:
		return take_number(opts, c, arg);
	case O_PORT:
		opts->ports = xrealloc(opts->ports, sizeof(*opts->ports) *
							(o->nports + 1));
		if (net_port_parse(arg, &opts->ports[o->nports]) < 0)
			return EXIT_USAGE;
		o->ports = opts->ports;
		o->nports++;
		o->ports_given = 1;
		return 0;
	}
	return EXIT_USAGE;
}

/* 0, EXIT_USAGE, or -1 for --help (shown). */
static int parse(int argc, char **argv, struct opts *opts, const char **name)
{
	const struct vm_start_opts *o = &opts->vm;
	int c, rc;

	getopt_reset();
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h')
			return show_usage(usage) - 1;
		if (c == '?' || c == ':')
			return bad_option(usage, argv, c);
		rc = take(opts, c, optarg);
		if (rc)
			return rc;
	}
	if (argc - optind > 1)
		return usage_error(usage, "unexpected argument '%s'",
				   argv[optind + 1]);
	*name = optind < argc ? argv[optind] : NULL;
	if (o->initrd && !o->kernel)
		return usage_error(usage, "--initrd goes with --kernel");
	if (o->append && o->boot && !strcmp(o->boot, "disk"))
		return usage_error(usage, "--append is for direct boot, not "
				   "--boot disk");
	if (o->kernel && o->boot && !strcmp(o->boot, "disk"))
		return usage_error(usage, "--kernel means direct boot, not "
				   "--boot disk");
	return 0;
}

/* How the start is going, on stderr: a line per phase, or on a terminal
 * one line rewritten in place with the console's last line. */
struct progress {
	FILE *say;
	int tty;          /* one line rewritten in place */
	int cluster;      /* a node's lines carry its name */
	int last_phase;
	int noted;        /* the ^C note is set */
	struct board board; /* a cluster's on a terminal, else fd -1 */
};

static void say_line(void *ctx, struct vm *vm, const char *line)
{
	struct progress *pr = ctx;

	if (pr->cluster)
		fprintf(pr->say, "%s: ", vm_name(vm));
	fprintf(pr->say, "%s\n", line);
	fflush(pr->say);
}

/* The console's last line, printable characters only: no escape
 * sequences, no CRs. */
static void console_last_line(struct vm *vm, char *out, size_t size)
{
	struct buf b = BUF_INIT;
	size_t start = 0, j = 0;

	out[0] = '\0';
	vm_console_tail(vm, 1, &b);
	while (b.len && (b.p[b.len - 1] == '\n' || b.p[b.len - 1] == '\r'))
		b.len--;
	for (size_t i = b.len; i > 0 && !start; i--)
		if (b.p[i - 1] == '\n')
			start = i;
	for (size_t i = start; i < b.len && j + 1 < size; i++) {
		unsigned char c = (unsigned char)b.p[i];

		if (c == 0x1b) {
			while (i + 1 < b.len && !((b.p[i + 1] >= 'A' &&
						   b.p[i + 1] <= 'Z') ||
						  (b.p[i + 1] >= 'a' &&
						   b.p[i + 1] <= 'z')))
				i++;
			i++;
			continue;
		}
		if (c >= 0x20 && c != 0x7f)
			out[j++] = (char)c;
	}
	out[j] = '\0';
	buf_free(&b);
}

static void show_progress(void *ctx, struct vm *vm, enum vm_phase ph,
			  double el)
{
	struct progress *pr = ctx;
	char line[512], head[128];
	int hl, room;

	if (!pr->noted && !pr->cluster) {
		/* QEMU is daemonized: ^C ends this wait, not the VM */
		char *note = xasprintf(
			"\nnook: interrupted: VM %s goes on booting in the "
			"background; 'nook local status %s' shows when it is "
			"ready, 'nook local stop %s' stops it\n", vm_name(vm),
			vm_name(vm), vm_name(vm));

		sig_note(note);
		free(note);
		pr->noted = 1;
	}
	if (pr->board.fd >= 0) {
		char text[200];

		console_last_line(vm, line, sizeof(line));
		snprintf(text, sizeof(text), "[%4.0fs] %-27s %.60s", el,
			 vm_phase_name(ph), line);
		board_say(&pr->board, vm_name(vm), text);
		return;
	}
	if (!pr->tty || pr->cluster) {
		if ((int)ph != pr->last_phase)
			fprintf(stderr, "nook: %s: %s (%.0f s)\n",
				vm_name(vm), vm_phase_name(ph), el);
		pr->last_phase = (int)ph;
		return;
	}
	console_last_line(vm, line, sizeof(line));
	hl = snprintf(head, sizeof(head), "[%4.0fs] %s", el, vm_phase_name(ph));
	room = 100 - hl - 3;
	fprintf(stderr, "\r\033[K%s", head);
	if (room > 10 && line[0])
		fprintf(stderr, " | %.*s", room, line);
	fflush(stderr);
	pr->last_phase = (int)ph;
}

/* text, each line indented under a title, on stderr. */
static void show_block(const char *title, const char *text)
{
	fprintf(stderr, "%s\n", title);
	if (!text || !*text) {
		fprintf(stderr, "  (nothing)\n");
		return;
	}
	for (const char *l = text; *l;) {
		size_t len = strcspn(l, "\n");

		fprintf(stderr, "  | %.*s\n", (int)len, l);
		l += len;
		if (*l)
			l++;
	}
}

static void show_console(struct vm *vm)
{
	struct buf b = BUF_INIT;

	vm_console_tail(vm, 15, &b);
	show_block("last console lines:", b.p);
	buf_free(&b);
}

static void show_guest(struct vm *vm, const char *title,
		       const char *const *cmd)
{
	struct buf out = BUF_INIT;

	vm_guest_run(vm, cmd, &out);
	show_block(title, out.p);
	buf_free(&out);
}

static void report_failure(struct vm *vm, const struct vm_start_result *r)
{
	static const char *const status[] = { "cloud-init", "status", "--long",
					       NULL };
	static const char *const output[] = {
		"tail", "-n", "25", "/var/log/cloud-init-output.log", NULL };
	const char *name = vm_name(vm);
	struct buf log = BUF_INIT;

	if (r->stopped) {
		errorf("VM %s: stopped while starting (nook local stop --force); "
		       "it was %s", name, vm_phase_name(r->reached));
	} else if (r->crashed) {
		errorf("VM %s: QEMU exited while %s", name,
		       vm_phase_name(r->reached));
		vm_qemu_messages(vm, &log);
		show_block("QEMU said:", log.p);
		buf_free(&log);
		show_console(vm);
	} else if (r->timed_out) {
		errorf("VM %s: not ready after %d s: stalled while %s; the VM "
		       "is still running ('nook local logs %s', 'nook local "
		       "stop %s')", name, r->timeout_s,
		       vm_phase_name(r->reached), name, name);
		show_console(vm);
	} else if (r->cloud_init_rc > 0) {
		errorf("VM %s: cloud-init reported an error (status exit %d); "
		       "the VM is still running: 'nook shell %s' to look",
		       name, r->cloud_init_rc, name);
		show_guest(vm, "cloud-init status --long:", status);
		show_guest(vm, "/var/log/cloud-init-output.log (end):", output);
	}
}

static json_t *result_json(struct vm *vm, double secs)
{
	struct vm_info i;
	json_t *j, *ports = json_array();

	vm_get_info(vm, &i);
	for (size_t k = 1; k < i.ports->n; k++)
		json_array_append_new(ports, json_string(i.ports->v[k]));
	j = json_pack("{s:s,s:s,s:i,s:s?,s:{s:s,s:i,s:s},s:o,s:f}",
		      "name", i.name, "state", vm_state_name(i.state),
		      "pid", (int)i.pid, "accel", i.accel,
		      "ssh", "host", "127.0.0.1", "port", i.ssh_port,
		      "user", i.user, "ports", ports, "seconds", secs);
	return j;
}

static void print_ready(struct vm *vm, double secs)
{
	const char *name = vm_name(vm);
	int other = strcmp(name, "default") != 0;
	struct vm_info i;

	vm_get_info(vm, &i);
	printf("VM %s is ready (%.0f s). Get in with: nook shell%s%s\n", name,
	       secs, other ? " " : "", other ? name : "");
	for (size_t k = 1; k < i.ports->n; k++)
		printf("  port %s\n", i.ports->v[k]);
}

static void on_failure(void *ctx, struct vm *vm,
		       const struct vm_start_result *r)
{
	struct progress *pr = ctx;

	if (pr->tty && !pr->cluster)
		fputs("\r\033[K", stderr);
	report_failure(vm, r);
}

/* Every node of cluster name, as a table or a JSON array. */
static int print_cluster(const struct nook_dirs *d, const char *name,
			 int json, double secs)
{
	struct strvec nodes = STRVEC_INIT;
	json_t *all = json_array();

	vm_cluster_nodes(d, name, &nodes);
	for (size_t i = 0; i < nodes.n; i++) {
		struct vm *vm;
		struct vm_info in;

		if (vm_open(d, nodes.v[i], 1, &vm) < 0)
			continue;
		vm_get_info(vm, &in);
		if (json)
			json_array_append_new(all, result_json(vm, secs));
		else
			printf("  %-16s %-9s %-15s ssh 127.0.0.1:%d\n", in.name,
			       vm_state_name(in.state),
			       in.address ? in.address : "-", in.ssh_port);
		vm_close(vm);
	}
	strvec_clear(&nodes);
	if (json)
		return print_json(all);
	json_decref(all);
	return 0;
}

static void fmt_mib(uint64_t bytes, char *out, size_t size)
{
	if (!bytes)
		snprintf(out, size, "image's");
	else if (bytes % (1ULL << 30) == 0)
		snprintf(out, size, "%lluG", (unsigned long long)(bytes >> 30));
	else
		snprintf(out, size, "%lluM", (unsigned long long)(bytes >> 20));
}

/* The options node name starts with. */
static const struct vm_start_opts *opts_of(const struct opts *opts,
					   const char *name)
{
	for (size_t i = 0; i < opts->nlist; i++)
		if (!strcmp(opts->list[i].name, name) && opts->list[i].o)
			return opts->list[i].o;
	return &opts->vm;
}

static json_t *plan_node_json(const struct vm_cluster_plan_node *p,
			      const struct vm_start_opts *o)
{
	return json_pack("{s:s,s:o,s:o,s:b,s:i,s:I,s:o,s:s?,s:s?,s:s?,s:i}",
		"name", p->name, "node", p->node ? json_integer(p->node) :
		json_null(), "address", p->address[0] ?
		json_string(p->address) : json_null(), "new", p->is_new,
		"cpus", p->cpus, "memory_mib", (json_int_t)(p->memory >> 20),
		"disk_mib", p->disk ? json_integer((json_int_t)(p->disk >> 20)) :
		json_null(), "image", o->image, "user_data", o->user_data,
		"network_config", o->network_config, "ports", (int)o->nports);
}

static void plan_node_line(FILE *f, const struct vm_cluster_plan_node *p,
			   const struct vm_start_opts *o)
{
	char mem[32], disk[32];

	fmt_mib(p->memory, mem, sizeof(mem));
	fmt_mib(p->disk, disk, sizeof(disk));
	fprintf(f, "  %-20s %-15s %d cpus, memory %s, disk %s%s%s%s\n",
		p->name, p->address[0] ? p->address : "-", p->cpus, mem, disk,
		o->user_data ? ", user-data " : "",
		o->user_data ? o->user_data : "", p->is_new ? " (new)" : "");
}

/* The plan of a cluster's start: on f, or as JSON on stdout. 0, or 1
 * having said why it would not start. */
static int show_cluster_plan(const struct nook_dirs *d, const char *name,
			     const struct opts *opts, FILE *f, int json)
{
	struct vm_cluster_plan pl;
	json_t *nodes, *j;

	if (vm_cluster_plan(d, name, opts->list, opts->nlist, opts->subnet,
			    &opts->vm, &pl) < 0)
		return 1;
	if (json) {
		nodes = json_array();
		for (size_t i = 0; i < pl.n; i++)
			json_array_append_new(nodes, plan_node_json(
				&pl.nodes[i], opts_of(opts, pl.nodes[i].name)));
		j = json_pack("{s:s,s:b,s:b,s:s,s:o}", "name", name, "cluster",
			      1, "new", pl.is_new, "subnet", pl.subnet, "nodes",
			      nodes);
		vm_cluster_plan_free(&pl);
		return print_json(j);
	}
	fprintf(f, "cluster %s%s: %zu node%s on %s\n", name,
		pl.is_new ? " (new)" : "", pl.n, pl.n == 1 ? "" : "s",
		pl.subnet);
	for (size_t i = 0; i < pl.n; i++)
		plan_node_line(f, &pl.nodes[i], opts_of(opts, pl.nodes[i].name));
	fflush(f);
	vm_cluster_plan_free(&pl);
	return 0;
}

/* --plan of one VM. */
static int show_vm_plan(const struct nook_dirs *d, const char *name,
			const struct opts *opts)
{
	struct vm_cluster_plan_node p;

	memset(&p, 0, sizeof(p));
	if (vm_name_check(name) < 0)
		return 1;
	p.name = (char *)name;
	vm_plan_sizes(d, name, &opts->vm, &p);
	if (opts->json)
		return print_json(json_pack("{s:s,s:b,s:o}", "name", name,
			"cluster", 0, "nodes", json_pack("[o]",
			plan_node_json(&p, &opts->vm))));
	printf("VM %s%s\n", name, p.is_new ? " (new)" : "");
	plan_node_line(stdout, &p, &opts->vm);
	return 0;
}

static int start_cluster(const struct nook_dirs *d, const char *name,
			 struct opts *opts, struct progress *pr, double t0)
{
	int failed = 0, rc;

	/* the plan first: what is about to boot, and where */
	if (show_cluster_plan(d, name, opts, stderr, 0))
		return 1;
	pr->cluster = 1;
	if (pr->tty && board_start(&pr->board) < 0)
		pr->board.fd = -1;
	rc = vm_cluster_start(d, name, opts->list, opts->nlist, opts->subnet,
			      &opts->vm, &failed);
	board_end(&pr->board);
	if (rc < 0 && !failed)
		return 1;
	if (!opts->json)
		printf("cluster %s: %s (%.0f s)%s\n", name, failed ?
		       "some nodes failed" : "every node is ready",
		       mono_s() - t0, failed ? "" : "; get in with: nook "
		       "shell NODE");
	if (print_cluster(d, name, opts->json, mono_s() - t0))
		return 1;
	if (failed)
		errorf("cluster %s: %d node%s did not get ready (see above)",
		       name, failed, failed == 1 ? "" : "s");
	return failed ? 1 : 0;
}

static int start_one(const struct nook_dirs *d, const char *name,
		     struct opts *opts, struct progress *pr, double t0)
{
	struct vm_start_result r;
	struct vm *vm = NULL;
	int rc = 1;

	if (vm_open(d, name, 0, &vm) < 0 || vm_start(vm, &opts->vm, &r) < 0)
		goto out;
	if (pr->tty && !opts->vm.no_wait)
		fputs("\r\033[K", stderr);
	if (opts->json)
		rc = print_json(result_json(vm, mono_s() - t0));
	else if (!opts->vm.no_wait)
		print_ready(vm, mono_s() - t0);
	rc = opts->json ? rc : 0;
out:
	vm_close(vm);
	return rc;
}

/* What the command line left unsaid, from the file's VM settings. */
static void fill_from(struct vm_start_opts *o, const struct project_vm *v)
{
	if (!o->image)
		o->image = v->image;
	if (!o->user_data)
		o->user_data = v->user_data;
	if (!o->network_config)
		o->network_config = v->network_config;
	if (!o->boot)
		o->boot = v->boot;
	if (!o->kernel) {
		o->kernel = v->kernel;
		o->initrd = v->initrd;
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

/* The nodes a start names: a nook.yaml's groups (each node with its
 * group's settings under the command line's), or --nodes N's
 * NAME-1..NAME-N. */
static void make_list(struct opts *opts, const char *name,
		      const struct project *p)
{
	size_t n = p && p->cluster ? project_node_count(p) :
		   (size_t)opts->nodes;

	opts->list = xmalloc(sizeof(*opts->list) * (n ? n : 1));
	opts->node_opts = xmalloc(sizeof(*opts->node_opts) * (n ? n : 1));
	for (size_t i = 0; i < n; i++) {
		const struct project_group *g = NULL;
		char *nn = p && p->cluster ? project_node_name(p, i, &g) :
			   xasprintf("%s-%zu", name, i + 1);

		strvec_push(&opts->names, nn);
		free(nn);
		/* the command line, then the group's (which holds the
		 * file's top level under its own keys) */
		opts->node_opts[i] = g ? opts->given : opts->vm;
		if (g)
			fill_from(&opts->node_opts[i], &g->vm);
		opts->list[i].name = opts->names.v[i];
		opts->list[i].o = g ? &opts->node_opts[i] : NULL;
	}
	opts->nlist = n;
}

/* Take the project file into opts when NAME was not given: its name, its
 * settings under the command line's. EXIT_USAGE when it is bad. */
static int use_project(struct nook_ctx *ctx, struct opts *opts,
		       const char **name, const struct project **p)
{
	int bad;

	*p = NULL;
	if (*name)
		return 0;
	*p = ctx_project(ctx, &bad);
	if (bad)
		return EXIT_USAGE;
	if (!*p) {
		*name = "default";
		return 0;
	}
	*name = (*p)->name;
	opts->given = opts->vm;
	if ((*p)->cluster && opts->nodes)
		return usage_error(usage, "%s lists the nodes: --nodes cannot "
				   "change them (edit the file)", (*p)->path);
	fill_from(&opts->vm, &(*p)->vm);
	if (!opts->subnet)
		opts->subnet = (*p)->subnet;
	return 0;
}

static void opts_free(struct opts *opts)
{
	free(opts->ports);
	free(opts->list);
	free(opts->node_opts);
	strvec_clear(&opts->names);
}

int cmd_local_start(struct nook_ctx *ctx, int argc, char **argv)
{
	const struct nook_dirs *d;
	const struct project *proj = NULL;
	struct opts opts = { 0 };
	struct progress pr = { 0 };
	const char *name = NULL;
	double t0 = mono_s();
	int rc = parse(argc, argv, &opts, &name), cluster;

	pr.say = opts.json ? stderr : stdout;
	pr.tty = isatty(STDERR_FILENO);
	pr.last_phase = -1;
	pr.board.fd = -1;
	pr.board.pid = -1;
	opts.vm.say = say_line;
	opts.vm.progress = show_progress;
	opts.vm.failed = on_failure;
	opts.vm.ctx = &pr;
	opts.vm.image_report = images_report;
	opts.vm.image_ctx = pr.say;
	if (rc == 0)
		rc = use_project(ctx, &opts, &name, &proj);
	if (rc) {
		opts_free(&opts);
		return rc < 0 ? 0 : rc;
	}
	rc = 1;
	d = ctx_dirs(ctx);
	cluster = d && ((proj && proj->cluster) || opts.nodes ||
			vm_cluster_exists(d, name));
	if (cluster)
		make_list(&opts, name, proj);
	if (d && !cluster && opts.subnet)
		rc = usage_error(usage, "--subnet is for a cluster: add "
				 "--nodes N");
	else if (d && opts.plan)
		rc = cluster ? show_cluster_plan(d, name, &opts, stdout,
						 opts.json) :
			       show_vm_plan(d, name, &opts);
	else if (cluster)
		rc = start_cluster(d, name, &opts, &pr, t0);
	else if (d)
		rc = start_one(d, name, &opts, &pr, t0);
	if (rc == 1 && opts.json)
		print_json_error();
	opts_free(&opts);
	return rc;
}

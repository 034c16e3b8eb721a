/* nook local start: a VM from nothing (or from where it was) to ready. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cidata.h"
#include "cmd.h"
#include "vm.h"

static const char usage[] =
	"usage: nook local start [NAME] [OPTIONS]\n"
	"\n"
	"Starts VM NAME (default: nook.yaml's, below; else default), making it\n"
	"on first start, and waits until it is ready: sshd answers, ssh logs\n"
	"in, cloud-init is done.\n"
	"With --nodes, or when NAME is a cluster, starts cluster NAME: VMs\n"
	"NAME-1..NAME-N on a private network, in parallel.\n"
	"Without NAME (or with the file's) inside a tree with a nook.yaml\n"
	"(found upward from the current directory), starts what it describes:\n"
	"a VM, or a cluster of groups (NAME-GROUP-1 ...); options given here\n"
	"override the file.\n"
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
	"  --memory SIZE          memory, e.g. 2G (default 1G; at most 4T,\n"
	"                         and the host's RAM and swap)\n"
	"  --disk SIZE            grow the VM's disk to SIZE (at most 64T)\n"
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
	"                         arguments tsc=reliable norandmaps\n"
	"                         no_timer_check (the guest runs without ASLR:\n"
	"                         see the README)\n"
	"  --cpu MODEL            QEMU CPU model (default: host under KVM,\n"
	"                         qemu64,svm=off under TCG, the fastest to\n"
	"                         emulate)\n"
	"  --no-wait              return once QEMU runs\n"
	"  --timeout SECONDS      how long to wait for ready (default 900);\n"
	"                         QEMU's own launch may take as long, at most\n"
	"                         2 minutes\n"
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
	int nodes_n;          /* --nodes N */
	int plan;
	const char *subnet;
	/* a cluster's nodes by name, each with its options (NULL: vm) */
	struct project_nodes nodes;
	const struct project *proj; /* the file this start is of, or NULL */
	int json_out;         /* the JSON result is out, failure and all */
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
		if (parse_int("--nodes", arg, 1, VM_CLUSTER_MAX_NODES,
			      &n) < 0)
			return EXIT_USAGE;
		opts->nodes_n = (int)n;
		return 0;
	case O_MEMORY:
		if (parse_size("--memory", arg, &o->memory) < 0)
			return EXIT_USAGE;
		if (o->memory < (128ULL << 20))
			return usage_error(usage, "--memory %s is below the "
					   "128M a guest needs", arg);
		if (o->memory > VM_MEMORY_MAX)
			return usage_error(usage, "--memory %s is more than "
					   "the %lluT a VM can have", arg,
					   VM_MEMORY_MAX >> 40);
		return 0;
	case O_DISK:
		if (parse_size("--disk", arg, &o->disk) < 0)
			return EXIT_USAGE;
		if (o->disk > VM_DISK_MAX)
			return usage_error(usage, "--disk %s is more than the "
					   "%lluT a VM's disk can be", arg,
					   VM_DISK_MAX >> 40);
		return 0;
	}
	return EXIT_USAGE;
}

/* Take one option's value into opts; EXIT_USAGE when it is bad. */
static int take(struct opts *opts, int c, const char *arg)
{
	static const char *const boots[] = { "disk", "direct", NULL };
	static const char *const accels[] = { "auto", "kvm", "tcg", NULL };
	struct vm_start_opts *o = &opts->vm;
	struct net_subnet sn;
	struct buf why = BUF_INIT;

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
	case O_SUBNET:
		/* its form here; its size against the nodes when planned */
		if (net_subnet_check(arg, &sn, &why) < 0) {
			usage_error(usage, "%s", why.p);
			buf_free(&why);
			return EXIT_USAGE;
		}
		opts->subnet = arg;
		return 0;
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
	int c, rc;

	getopt_reset();
	while ((c = cmd_getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
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
	return 0;
}

/* How the start is going, on stderr: a line per phase, or on a terminal
 * one line rewritten in place with the console's last line. */
struct progress {
	FILE *say;
	int tty;          /* one line rewritten in place */
	int cluster;      /* a node's lines carry its name */
	int last_phase;
	int showing;      /* the in-place line is on the terminal */
	int noted;        /* the ^C note is set */
	struct board board; /* a cluster's on a terminal, else fd -1 */
};

/* The in-place line wiped, for what follows to start a line of its own:
 * the ready line, a failure's report, and (error_before()) any error
 * said while a start waits (a login refused, a record that cannot be
 * read). */
static void progress_clear(void *ctx)
{
	struct progress *pr = ctx;

	if (pr->showing)
		fputs(TTY_WIPE, stderr);
	pr->showing = 0;
}

static void say_line(void *ctx, struct vm *vm, const char *line)
{
	struct progress *pr = ctx;
	const char *name = vm_name(vm);
	struct buf b = BUF_INIT;

	progress_clear(pr);
	/* "VM dev-2: ..." after "dev-2: " would name it twice */
	if (pr->cluster)
		line = msg_after_name(line, name);
	/* a line may quote a path, which may hold any byte */
	str_escape(&b, line, 1);
	if (pr->cluster)
		fprintf(pr->say, "%s: ", name);
	fprintf(pr->say, "%s\n", b.p);
	fflush(pr->say);
	buf_free(&b);
}

/* The console's last line, printable characters only: no escape
 * sequences, no CRs. */
static void console_last_line(struct vm *vm, char *out, size_t size)
{
	struct buf b = BUF_INIT;
	size_t start = 0, j = 0;

	out[0] = '\0';
	vm_console_tail(vm, 1, &b);
	buf_trim_newlines(&b);
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
	fprintf(stderr, TTY_WIPE "%s", head);
	if (room > 10 && line[0])
		fprintf(stderr, " | %.*s", room, line);
	fflush(stderr);
	pr->showing = 1;
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

	if (r->panicked) {
		errorf("VM %s: the guest's kernel panicked %s%s%s. The "
		       "kernel said: %s", name, r->found_running ?
		       "before this start (found running)" : r->resumed ?
		       "before it was suspended (resumed spinning)" : "while ",
		       r->found_running || r->resumed ? "" :
		       vm_phase_name(r->reached),
		       r->crashed ? "; nook ended its QEMU" : "", r->panic);
		show_console(vm);
	} else if (r->stopped) {
		errorf("VM %s: stopped while starting (nook local stop --force); "
		       "it was %s", name, vm_phase_name(r->reached));
	} else if (r->crashed) {
		errorf("VM %s: QEMU exited while %s", name,
		       vm_phase_name(r->reached));
		vm_qemu_messages(vm, &log);
		show_block("QEMU said:", log.p);
		buf_free(&log);
		show_console(vm);
	} else if (r->no_room) {
		errorf("VM %s: not ready: while %s, %s", name,
		       vm_phase_name(r->reached), r->no_room);
	} else if (r->sshd_failed[0]) {
		errorf("VM %s: not ready: the guest's sshd failed to start, "
		       "and was not started again (systemd: \"%s\"); the VM "
		       "is still running.\nLikely causes:\n"
		       "  - the user-data changes sshd's configuration "
		       "(/etc/ssh): mend it, then\n    'nook local delete %s' "
		       "and start again\n"
		       "  - a power cut (QEMU killed, the host crashed) soon "
		       "after the first boot,\n    before the guest wrote "
		       "its files back: delete it and start again",
		       name, r->sshd_failed, name);
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
	json_t *ports = json_array();
	int up;

	vm_get_info(vm, &i);
	/* as status has it: a node that failed has no pid, and no ssh */
	up = i.state == VM_RUNNING || i.state == VM_STARTING ||
	     i.state == VM_PAUSED;
	for (size_t k = 1; up && k < i.ports->n; k++)
		json_array_append_new(ports, json_string(i.ports->v[k]));
	return json_pack("{s:s,s:s,s:o,s:s?,s:o,s:o,s:f}",
		"name", i.name, "state", vm_state_name(i.state),
		"pid", up ? json_integer(i.pid) : json_null(),
		"accel", up ? i.accel : NULL,
		"ssh", up ? json_pack("{s:s,s:i,s:s}", "host", "127.0.0.1",
				      "port", i.ssh_port, "user", i.user) :
			    json_null(),
		"ports", ports, "seconds", secs);
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
	progress_clear(ctx);
	report_failure(vm, r);
}

/* The width of a column of names: the longest (a name may be 32
 * characters), at least min. */
static int name_width(const struct strvec *names, int min)
{
	size_t w = (size_t)min;

	for (size_t i = 0; i < names->n; i++)
		if (strlen(names->v[i]) > w)
			w = strlen(names->v[i]);
	return (int)w;
}

/* Every node of cluster name, as a table or (returned) a JSON array; a
 * node that failed with its reason ("error"), also one that failed
 * before it was made (its state null). */
static json_t *print_cluster(const struct nook_dirs *d, const char *name,
			     int json, double secs,
			     const struct strvec *failed,
			     const struct strvec *why)
{
	struct strvec nodes = STRVEC_INIT;
	json_t *all = json ? json_array() : NULL;
	int w;

	/* a first start whose nodes all failed before they were made has
	 * dropped the record: the rows below are all there is to say */
	if (vm_cluster_exists(d, name))
		vm_cluster_nodes(d, name, &nodes);
	w = name_width(&nodes, 16);
	if (name_width(failed, 16) > w)
		w = name_width(failed, 16);
	for (size_t i = 0; i < nodes.n; i++) {
		ssize_t k = strvec_index(failed, nodes.v[i]);
		/* the row or the object names the node already */
		const char *bad = k < 0 ? NULL : msg_after_name(why->v[k],
								nodes.v[i]);
		struct vm *vm;
		struct vm_info in;
		json_t *j;

		if (vm_open(d, nodes.v[i], 1, &vm) < 0)
			continue;
		vm_get_info(vm, &in);
		if (json) {
			j = result_json(vm, secs);
			if (bad)
				json_object_set_new(j, "error", json_string(bad));
			json_array_append_new(all, j);
		} else {
			printf("  %-*s %-9s %-15s ssh 127.0.0.1:%d%s\n",
			       w, in.name, vm_state_name(in.state),
			       in.address ? in.address : "-", in.ssh_port,
			       bad ? " (failed: see above)" : "");
		}
		vm_close(vm);
	}
	for (size_t i = 0; i < failed->n; i++) {
		const char *row = msg_after_name(why->v[i], failed->v[i]);

		if (strvec_index(&nodes, failed->v[i]) >= 0)
			continue;
		if (json)
			json_array_append_new(all, json_pack("{s:s,s:n,s:s}",
				"name", failed->v[i], "state", "error", row));
		else
			printf("  %-*s %-9s %.*s\n", w, failed->v[i],
			       "not made", (int)strcspn(row, "\n"), row);
	}
	strvec_clear(&nodes);
	return all;
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
	return vm_cluster_node_opts(&opts->vm, opts->nodes.list,
				    opts->nodes.n, name);
}

/* s as JSON (null for none); *bad set when it is not UTF-8 (a path can
 * be any bytes), which JSON cannot carry. */
static json_t *jstr(const char *s, int *bad)
{
	json_t *j = s ? json_string(s) : json_null();

	if (!j) {
		*bad = 1;
		j = json_null();
	}
	return j;
}

static json_t *ports_json(const struct vm_start_opts *o)
{
	json_t *a = json_array();

	for (size_t i = 0; i < o->nports; i++) {
		struct buf b = BUF_INIT;

		net_port_format(&o->ports[i], &b);
		json_array_append_new(a, json_string(b.p));
		buf_free(&b);
	}
	return a;
}

/* The image a plan's node has or would be made from (NULL: one its
 * record does not name). */
static const char *plan_image(const struct vm_cluster_plan_node *p,
			      const struct vm_start_opts *o)
{
	if (o->image)
		return o->image;
	if (p->image)
		return p->image;
	return p->is_new ? IMG_DEFAULT : NULL;
}

static json_t *plan_node_json(const struct vm_cluster_plan_node *p,
			      const struct vm_start_opts *o, int *bad)
{
	json_t *j = json_object();

	json_object_set_new(j, "name", jstr(p->name, bad));
	json_object_set_new(j, "node", p->node ? json_integer(p->node) :
			    json_null());
	json_object_set_new(j, "address", jstr(p->address[0] ? p->address :
					       NULL, bad));
	json_object_set_new(j, "new", json_boolean(p->is_new));
	json_object_set_new(j, "cpus", json_integer(p->cpus));
	json_object_set_new(j, "memory_mib",
			    json_integer((json_int_t)(p->memory >> 20)));
	json_object_set_new(j, "disk_mib", p->disk ?
			    json_integer((json_int_t)(p->disk >> 20)) :
			    json_null());
	json_object_set_new(j, "image", jstr(plan_image(p, o), bad));
	json_object_set_new(j, "like", jstr(p->like, bad));
	json_object_set_new(j, "user_data", jstr(o->user_data, bad));
	json_object_set_new(j, "network_config", jstr(o->network_config, bad));
	json_object_set_new(j, "ports", ports_json(o));
	json_object_set_new(j, "boot", jstr(o->boot, bad));
	json_object_set_new(j, "kernel", jstr(o->kernel, bad));
	json_object_set_new(j, "initrd", jstr(o->initrd, bad));
	json_object_set_new(j, "append", jstr(o->append, bad));
	json_object_set_new(j, "accel", jstr(o->accel, bad));
	json_object_set_new(j, "cpu", jstr(o->cpu, bad));
	json_object_set_new(j, "timeout_s", o->timeout_s ?
			    json_integer(o->timeout_s) : json_null());
	return j;
}

/* The project file's path and its sync rules, for a plan's JSON. */
static void plan_project_json(json_t *j, const struct project *p, int *bad)
{
	json_t *rules = json_array();

	json_object_set_new(j, "file", jstr(p ? p->path : NULL, bad));
	for (size_t i = 0; p && i < p->nsyncs; i++) {
		const struct project_sync *r = &p->syncs[i];
		json_t *ex = json_array();

		for (size_t k = 0; k < r->exclude.n; k++)
			json_array_append_new(ex, jstr(r->exclude.v[k], bad));
		json_array_append_new(rules, json_pack("{s:o,s:o,s:o,s:b}",
			"src", jstr(r->src, bad), "dest", jstr(r->dest, bad),
			"exclude", ex, "delete", r->del));
	}
	json_object_set_new(j, "sync", rules);
}

/* Print a plan's JSON, or say why it cannot be. */
static int print_plan_json(json_t *j, int bad)
{
	if (bad) {
		json_decref(j);
		errorf("cannot give the plan as JSON: a name or path in it is "
		       "not UTF-8");
		return 1;
	}
	return print_json(j);
}

/* A plan's line of node p, its name in a column w wide. */
static void plan_node_line(FILE *f, const struct vm_cluster_plan_node *p,
			   const struct vm_start_opts *o, int w)
{
	char mem[32], disk[32];
	const char *named = plan_image(p, o);
	char *image = str_escaped(named ? named : "as made");
	char *ud = str_escaped(o->user_data);

	fmt_mib(p->memory, mem, sizeof(mem));
	fmt_mib(p->disk, disk, sizeof(disk));

	fprintf(f, "  %-*s %-15s %d cpu%s, memory %s, disk %s, image %s",
		w, p->name, p->address[0] ? p->address : "-", p->cpus,
		p->cpus == 1 ? "" : "s", mem, disk, image);
	if (p->like)
		fprintf(f, ", like %s", p->like);
	for (size_t i = 0; i < o->nports; i++) {
		struct buf b = BUF_INIT;

		net_port_format(&o->ports[i], &b);
		fprintf(f, "%s%s", i ? " " : ", ports ", b.p);
		buf_free(&b);
	}
	fprintf(f, "%s%s%s\n", ud ? ", user-data " : "", ud ? ud : "",
		p->is_new ? " (new)" : "");
	free(image);
	free(ud);
}

/* The plan of a cluster's start: on f, or as JSON on stdout. 0, or 1
 * having said why it would not start. */
static int show_cluster_plan(const struct nook_dirs *d, const char *name,
			     const struct opts *opts, FILE *f, int json)
{
	struct vm_cluster_plan pl;
	json_t *nodes, *j;
	int bad = 0, w = 20;

	if (vm_cluster_plan(d, name, opts->nodes.list, opts->nodes.n,
			    opts->subnet, &opts->vm, &pl) < 0)
		return 1;
	/* --plan refuses what the start would (a start checks as it goes) */
	for (size_t i = 0; opts->plan && i < pl.n; i++)
		if (vm_start_plan_check(d, pl.nodes[i].name,
					opts_of(opts, pl.nodes[i].name), 1,
					pl.nodes[i].like) < 0) {
			vm_cluster_plan_free(&pl);
			return 1;
		}
	if (json) {
		nodes = json_array();
		for (size_t i = 0; i < pl.n; i++)
			json_array_append_new(nodes, plan_node_json(
				&pl.nodes[i], opts_of(opts, pl.nodes[i].name),
				&bad));
		j = json_pack("{s:s,s:b,s:b,s:s,s:o}", "name", name, "cluster",
			      1, "new", pl.is_new, "subnet", pl.subnet, "nodes",
			      nodes);
		plan_project_json(j, opts->proj, &bad);
		vm_cluster_plan_free(&pl);
		return print_plan_json(j, bad);
	}
	fprintf(f, "cluster %s%s: %zu node%s on %s\n", name,
		pl.is_new ? " (new)" : "", pl.n, pl.n == 1 ? "" : "s",
		pl.subnet);
	for (size_t i = 0; i < pl.n; i++)
		if ((int)strlen(pl.nodes[i].name) > w)
			w = (int)strlen(pl.nodes[i].name);
	for (size_t i = 0; i < pl.n; i++)
		plan_node_line(f, &pl.nodes[i], opts_of(opts, pl.nodes[i].name),
			       w);
	fflush(f);
	vm_cluster_plan_free(&pl);
	return 0;
}

/* --plan of one VM: a node's with its cluster and address. */
static int show_vm_plan(const struct nook_dirs *d, const char *name,
			const struct opts *opts)
{
	struct vm_cluster_plan_node p;
	struct vm *vm = NULL;
	json_t *j;
	int bad = 0, rc = 1;

	memset(&p, 0, sizeof(p));
	/* a record that cannot be read stops the start: the plan too */
	if (vm_open(d, name, 0, &vm) < 0)
		return 1;
	vm_close(vm);
	p.name = (char *)name;
	vm_plan_sizes(d, name, &opts->vm, NULL, &p);
	/* refused as the start would refuse it */
	if ((p.is_new && vm_plain_name_check(d, name) < 0) ||
	    vm_start_plan_check(d, name, &opts->vm, 0, NULL) < 0)
		goto out;
	if (opts->json) {
		/* one VM's plan; a node's names its cluster, as status
		 * does ("cluster" stays a boolean: is this a cluster's) */
		j = json_pack("{s:s,s:b,s:o,s:b}", "name", name, "cluster", 0,
			      "node_of", p.cluster ? jstr(p.cluster, &bad) :
						     json_null(),
			      "new", p.is_new);
		json_object_set_new(j, "nodes", json_pack("[o]",
			plan_node_json(&p, &opts->vm, &bad)));
		plan_project_json(j, opts->proj, &bad);
		rc = print_plan_json(j, bad);
		goto out;
	}
	printf("VM %s%s", name, p.is_new ? " (new)" : "");
	if (p.cluster)
		printf(" (a node of cluster %s)", p.cluster);
	printf("\n");
	plan_node_line(stdout, &p, &opts->vm, 20);
	rc = 0;
out:
	free(p.cluster);
	free(p.image);
	free(p.like);
	return rc;
}

static int start_cluster(const struct nook_dirs *d, const char *name,
			 struct opts *opts, struct progress *pr, double t0)
{
	struct strvec failed = STRVEC_INIT, why = STRVEC_INIT;
	char *note;
	int rc;
	json_t *nodes;

	/* the plan first: what is about to boot, and where */
	if (show_cluster_plan(d, name, opts, stderr, 0))
		return 1;
	pr->cluster = 1;
	if (pr->tty && board_start(&pr->board) < 0)
		pr->board.fd = -1;
	/* QEMU is daemonized: ^C ends this wait, not the nodes */
	note = xasprintf("\nnook: interrupted: the nodes of cluster %s that "
			 "had started go on booting in the background; 'nook "
			 "local list' shows them, 'nook local stop %s' stops "
			 "them\n", name, name);
	sig_note(note);
	free(note);
	rc = vm_cluster_start(d, name, opts->nodes.list, opts->nodes.n,
			      opts->subnet, &opts->vm, &failed, &why);
	sig_note(NULL);
	board_end(&pr->board);
	if (rc < 0 && !failed.n)
		return 1;
	if (!opts->json)
		printf("cluster %s: %s (%.0f s)%s\n", name, failed.n ?
		       "some nodes failed" : opts->vm.no_wait ?
		       "every node is running" : "every node is ready",
		       mono_s() - t0, failed.n ? "" : "; get in with: nook "
		       "shell NODE");
	nodes = print_cluster(d, name, opts->json, mono_s() - t0, &failed,
			      &why);
	rc = failed.n ? 1 : 0;
	if (failed.n)
		errorf("cluster %s: %zu node%s did not get %s (see above)",
		       name, failed.n, failed.n == 1 ? "" : "s",
		       opts->vm.no_wait ? "running" : "ready");
	strvec_clear(&failed);
	strvec_clear(&why);
	if (!opts->json)
		return rc;
	/* one document: the nodes, and on a failure the error beside them */
	opts->json_out = 1;
	if (!rc)
		return print_json(nodes);
	print_json(json_pack("{s:s,s:o}", "error", error_last(), "nodes",
			     nodes));
	return 1;
}

static int start_one(const struct nook_dirs *d, const char *name,
		     struct opts *opts, struct progress *pr, double t0)
{
	struct vm_start_result r;
	struct error_hook hook;
	struct vm *vm = NULL;
	int rc = 1;

	hook = error_before(progress_clear, pr);
	if (vm_open(d, name, 0, &vm) < 0 || vm_start(vm, &opts->vm, &r) < 0)
		goto out;
	progress_clear(pr);
	if (opts->json)
		rc = print_json(result_json(vm, mono_s() - t0));
	else if (!opts->vm.no_wait)
		print_ready(vm, mono_s() - t0);
	rc = opts->json ? rc : 0;
out:
	error_before_restore(hook);
	vm_close(vm);
	sig_rethrow(); /* a resume cut short by ^C, undone */
	return rc;
}

/* --nodes N's nodes: NAME-1..NAME-N, each with the start's options. */
static void plain_nodes(struct project_nodes *out, const char *name, int n)
{
	memset(out, 0, sizeof(*out));
	out->list = xmalloc(sizeof(*out->list) * (size_t)(n ? n : 1));
	for (int i = 0; i < n; i++) {
		char *nn = vm_cluster_node_name(name, NULL, i + 1);

		strvec_push(&out->names, nn);
		free(nn);
	}
	for (int i = 0; i < n; i++) {
		out->list[i].name = out->names.v[i];
		out->list[i].o = NULL;
	}
	out->n = (size_t)n;
}

/* A start of VM name while the tree's project file is wrong (bad, its
 * exit status; said): 0 to go on without the file when it is another
 * VM's, or cannot be read at all (as other commands given NAME do);
 * else bad, having said how to start anyway. */
static int start_despite(const struct nook_ctx *ctx, const char *name,
			 int bad)
{
	const char *path, *theirs = ctx_project_wrong_name(ctx, &path);

	if (!path) {
		warnf("starting VM %s without the project file", name);
		return 0;
	}
	if (theirs && strcmp(theirs, name)) {
		warnf("%s is VM %s's, not %s's: starting %s without it", path,
		      theirs, name, name);
		return 0;
	}
	if (theirs)
		errorf("VM %s is the one %s describes: fix the file (its error "
		       "is above) to start it", name, path);
	else
		errorf("%s is wrong (above), so it cannot tell whether it "
		       "describes VM %s: fix it, or start %s from a directory "
		       "outside the file's tree", path, name, name);
	return bad;
}

/* The project file, when the start is its: given no NAME inside its
 * tree, or its own name (a bad file is said: its exit status, unless
 * the start is of another VM). Then NAME is its name and its settings
 * come under the command line's. */
static int use_project(struct nook_ctx *ctx, struct opts *opts,
		       const char **name, const struct project **p)
{
	struct vm_start_opts given = opts->vm;
	int bad;

	*p = ctx_project(ctx, &bad);
	if (bad && *name)
		bad = start_despite(ctx, *name, bad);
	if (bad)
		return bad;
	if (*p && *name && strcmp(*name, (*p)->name))
		*p = NULL;  /* another VM than the file's */
	if (!*p) {
		*name = *name ? *name : "default";
		return 0;
	}
	*name = (*p)->name;
	if ((*p)->cluster && opts->nodes_n)
		return usage_error(usage, "%s lists the nodes: --nodes cannot "
				   "change them (edit the file)", (*p)->path);
	project_fill_opts(&opts->vm, &(*p)->vm);
	if (!opts->subnet)
		opts->subnet = (*p)->subnet;
	if ((*p)->cluster)
		project_nodes(*p, &given, &opts->nodes);
	return 0;
}

/* The options as merged (the command line over the file's), each
 * node's too, checked as a start checks them: EXIT_USAGE when wrong. */
static int check_merged(const struct opts *opts)
{
	if (vm_start_opts_check(&opts->vm) < 0)
		return EXIT_USAGE;
	for (size_t i = 0; i < opts->nodes.n; i++) {
		const struct vm_start_opts *o = opts->nodes.list[i].o;
		char *where = xasprintf("node %s", opts->nodes.list[i].name);
		int rc = 0;

		error_where(where);
		if (o && vm_start_opts_check(o) < 0)
			rc = EXIT_USAGE;
		error_where(NULL);
		free(where);
		if (rc)
			return rc;
	}
	return 0;
}

/* VM name's memory (0: the record's, checked when it was given)
 * against host m: a warning when it is more than the host's RAM; -1
 * having said why when the kernel would refuse QEMU that much. */
static int check_host_memory(const struct vm_host_mem *m, const char *name,
			     uint64_t memory)
{
	char mem[32];
	enum vm_mem_fit fit = vm_host_mem_fit(m, memory);

	if (!memory || fit == VM_MEM_FITS)
		return 0;
	fmt_mib(memory, mem, sizeof(mem));
	if (fit == VM_MEM_REFUSED)
		return errorf("VM %s: memory %s is more than this host's RAM "
			      "and swap (%.1fG and %.1fG): the kernel would "
			      "refuse it to QEMU (vm.overcommit_memory is "
			      "%d); give less with --memory (or memory: in "
			      "nook.yaml)", name, mem,
			      (double)m->ram / (1 << 30),
			      (double)m->swap / (1 << 30), m->overcommit);
	warnf("VM %s: memory %s is more than this host's %.1fG of RAM: it "
	      "starts, but the guest swaps, or the host kills it, once it "
	      "uses that much", name, mem, (double)m->ram / (1 << 30));
	return 0;
}

/* Each VM's (or node's) memory given here or in nook.yaml against the
 * host's; 1 having said why one cannot be had. */
static int check_memory(const struct opts *opts, const char *name)
{
	struct vm_host_mem m;

	vm_host_mem_probe(&m);
	if (!opts->nodes.n)
		return check_host_memory(&m, name, opts->vm.memory) < 0;
	for (size_t i = 0; i < opts->nodes.n; i++) {
		const struct vm_start_opts *o = opts->nodes.list[i].o;

		if (check_host_memory(&m, opts->nodes.list[i].name,
				      (o ? o : &opts->vm)->memory) < 0)
			return 1;
	}
	return 0;
}

/* User-data file path checked as the start will check it, and a warning
 * said for each key cloud-init would skip as a typo. A pipe is left to
 * the start, which reads it once. 1 having said why it cannot be used. */
static int check_user_data_file(const char *path)
{
	struct stat st;
	struct buf b = BUF_INIT;
	struct strvec typos = STRVEC_INIT;
	const char *data;
	int rc = 0;

	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;  /* the start says why, or reads it alone */
	if (read_file(path, &b) < 0)
		return 1;
	data = b.p ? b.p : "";
	if (cidata_check_user_data(path, data, b.len, NULL) < 0)
		rc = 1;
	else
		cidata_cloud_config_typos(path, data, b.len, &typos);
	for (size_t i = 0; i < typos.n; i++)
		warnf("%s", typos.v[i]);
	strvec_clear(&typos);
	buf_free(&b);
	return rc;
}

/* Each user-data file of this start (the VM's, each node's), once. */
static int check_user_data(const struct opts *opts)
{
	struct strvec seen = STRVEC_INIT;
	int rc = 0;

	for (size_t i = 0; i <= opts->nodes.n && !rc; i++) {
		const struct vm_start_opts *o = i ? opts->nodes.list[i - 1].o :
						    &opts->vm;

		if (!o || !o->user_data ||
		    strvec_index(&seen, o->user_data) >= 0)
			continue;
		strvec_push(&seen, o->user_data);
		rc = check_user_data_file(o->user_data);
	}
	strvec_clear(&seen);
	return rc;
}

static void opts_free(struct opts *opts)
{
	free(opts->ports);
	project_nodes_free(&opts->nodes);
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
	opts.proj = proj;
	if (rc) {
		opts_free(&opts);
		return rc < 0 ? 0 : rc;
	}
	rc = 1;
	d = ctx_dirs(ctx);
	cluster = d && ((proj && proj->cluster) || opts.nodes_n ||
			vm_cluster_exists(d, name));
	if (cluster && !(proj && proj->cluster))
		plain_nodes(&opts.nodes, name, opts.nodes_n);
	if (!cluster)
		json_error_name(name);
	/* said of the name typed, not of a node's name made from it */
	if (cluster && opts.nodes_n &&
	    vm_cluster_name_check(name, opts.nodes_n,
				  vm_cluster_exists(d, name)) < 0)
		rc = EXIT_USAGE;
	else if (d && check_merged(&opts))
		rc = EXIT_USAGE;
	else if (d && check_memory(&opts, name))
		rc = 1;
	else if (d && !cluster && opts.subnet)
		rc = usage_error(usage, "--subnet is for a cluster: add "
				 "--nodes N");
	else if (d && check_user_data(&opts))
		rc = 1;
	else if (d && opts.plan)
		rc = cluster ? show_cluster_plan(d, name, &opts, stdout,
						 opts.json) :
			       show_vm_plan(d, name, &opts);
	else if (cluster)
		rc = start_cluster(d, name, &opts, &pr, t0);
	else if (d)
		rc = start_one(d, name, &opts, &pr, t0);
	if (rc == 1 && opts.json && !opts.json_out)
		print_json_error();
	opts_free(&opts);
	return rc;
}

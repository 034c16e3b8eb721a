/* nook local: a VM's life on this host (start is in start.c). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "vm.h"

static const char usage_local[] =
	"usage: nook local SUBCOMMAND [NAME] [OPTIONS]\n"
	"\n"
	"  start   make (first time) and boot a VM, wait until it is ready\n"
	"  stop    power it off (ACPI, then quit, then signals)\n"
	"  status  state, pid, accelerator, ports, how to get in\n"
	"  list    every VM\n"
	"  delete  remove a VM's files (never the base image)\n"
	"  logs    the serial console log\n"
	"\n"
	"'nook local SUBCOMMAND --help' shows its options. NAME defaults to\n"
	"'default'.\n";

/* Parse "[NAME]" plus the few flags the small subcommands take. */
struct small {
	const char *name;
	int force, json, follow;
	long timeout;
};

static int parse_small(int argc, char **argv, const char *usage,
		       const char *flags, struct small *s)
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
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
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
		else if (parse_int("--timeout", optarg, 1, 3600, &s->timeout) < 0)
			return EXIT_USAGE;
	}
	if (argc - optind > 1)
		return usage_error(usage, "unexpected argument '%s'",
				   argv[optind + 1]);
	if (optind < argc)
		s->name = argv[optind];
	return 0;
}

static const char usage_stop[] =
	"usage: nook local stop [NAME] [--force] [--timeout S]\n"
	"\n"
	"Asks the guest to power off (ACPI) and waits up to S seconds (60),\n"
	"then QMP quit, SIGTERM, SIGKILL, each bounded. --force skips the\n"
	"guest's shutdown. Stopping a stopped VM is not an error. The disk is\n"
	"kept: the next start brings the VM back as it was.\n";

/* Open the VM the subcommand names; NULL having said why. */
static struct vm *open_vm(struct nook_ctx *ctx, const char *name)
{
	const struct nook_dirs *d = ctx_dirs(ctx);
	struct vm *vm;

	if (!d || vm_open(d, name, 1, &vm) < 0)
		return NULL;
	return vm;
}

static int local_stop(struct nook_ctx *ctx, int argc, char **argv)
{
	struct small s;
	struct vm *vm;
	const char *how;
	int rc = parse_small(argc, argv, usage_stop, "ft", &s);

	if (rc)
		return rc < 0 ? 0 : rc;
	vm = open_vm(ctx, s.name);
	rc = 1;
	if (vm && vm_stop(vm, s.force, (int)s.timeout, &how) == 0) {
		printf("VM %s stopped: %s\n", s.name, how);
		rc = 0;
	}
	vm_close(vm);
	return rc;
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

static json_t *status_json(struct vm *vm)
{
	struct vm_info i;
	json_t *ports = json_array();
	int up;

	vm_get_info(vm, &i);
	up = i.state == VM_RUNNING || i.state == VM_STARTING;
	/* the first forward is ssh's; the rest are the user's */
	for (size_t k = 1; up && k < i.ports->n; k++)
		json_array_append_new(ports, json_string(i.ports->v[k]));
	return json_pack("{s:s,s:s,s:o,s:o,s:o,s:s,s:i,s:I,s:o,s:o,s:s}",
		"name", i.name, "state", vm_state_name(i.state),
		"pid", up ? json_integer(i.pid) : json_null(),
		"accel", up && i.accel ? json_string(i.accel) : json_null(),
		"uptime", up ? json_integer(time(NULL) - i.since) : json_null(),
		"image", i.image, "cpus", i.cpus,
		"memory_mib", (json_int_t)(i.memory >> 20),
		"ssh", up ? json_pack("{s:s,s:i,s:s}", "host", "127.0.0.1",
				      "port", i.ssh_port, "user", i.user) :
			    json_null(),
		"ports", ports, "dir", i.dir);
}

static void print_status(json_t *j)
{
	const char *state = json_string_value(json_object_get(j, "state"));
	const char *name = json_string_value(json_object_get(j, "name"));
	json_t *ports = json_object_get(j, "ports"), *p;
	char up[32];
	size_t i;

	printf("name:    %s\n", name);
	if (json_is_integer(json_object_get(j, "pid"))) {
		fmt_duration((long)json_integer_value(json_object_get(j, "uptime")),
			     up, sizeof(up));
		printf("state:   %s (pid %lld, up %s, %s)\n", state,
		       (long long)json_integer_value(json_object_get(j, "pid")),
		       up, json_string_value(json_object_get(j, "accel")));
	} else {
		printf("state:   %s\n", state);
	}
	printf("image:   %s\n", json_string_value(json_object_get(j, "image")));
	printf("cpus:    %lld, memory %lldM\n",
	       (long long)json_integer_value(json_object_get(j, "cpus")),
	       (long long)json_integer_value(json_object_get(j, "memory_mib")));
	if (json_is_object(json_object_get(j, "ssh")))
		printf("ssh:     127.0.0.1:%lld -> 22\n",
		       (long long)json_integer_value(json_object_get(
			       json_object_get(j, "ssh"), "port")));
	json_array_foreach(ports, i, p)
		printf("port:    %s\n", json_string_value(p));
	if (!strcmp(state, "running") || !strcmp(state, "starting"))
		printf("get in:  nook shell %s\n", name);
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
	"Shows the VM's state (running, starting, stopped, crashed), its pid,\n"
	"accelerator, image, forwarded ports, uptime and how to get in.\n";

static int local_status(struct nook_ctx *ctx, int argc, char **argv)
{
	struct small s;
	struct vm *vm;
	json_t *j;
	int rc = parse_small(argc, argv, usage_status, "j", &s);

	if (rc)
		return rc < 0 ? 0 : rc;
	vm = open_vm(ctx, s.name);
	if (!vm)
		return s.json ? print_json_error() : 1;
	j = status_json(vm);
	if (s.json) {
		rc = print_json(j);
	} else {
		print_status(j);
		json_decref(j);
	}
	vm_close(vm);
	return rc;
}

static const char usage_list[] =
	"usage: nook local list [--json]\n"
	"\n"
	"Lists every VM with its state, pid, ssh port and image.\n";

static void print_list(json_t *all)
{
	json_t *j;
	size_t i;

	printf("%-16s %-9s %-8s %-6s %s\n", "NAME", "STATE", "PID", "SSH",
	       "IMAGE");
	json_array_foreach(all, i, j) {
		json_t *ssh = json_object_get(j, "ssh");
		char pid[16] = "-", port[16] = "-";

		if (json_is_integer(json_object_get(j, "pid")))
			snprintf(pid, sizeof(pid), "%lld", (long long)
				 json_integer_value(json_object_get(j, "pid")));
		if (json_is_object(ssh))
			snprintf(port, sizeof(port), "%lld", (long long)
				 json_integer_value(json_object_get(ssh, "port")));
		printf("%-16s %-9s %-8s %-6s %s\n",
		       json_string_value(json_object_get(j, "name")),
		       json_string_value(json_object_get(j, "state")), pid, port,
		       json_string_value(json_object_get(j, "image")));
	}
}

static int local_list(struct nook_ctx *ctx, int argc, char **argv)
{
	struct small s;
	const struct nook_dirs *d;
	struct strvec names = STRVEC_INIT;
	json_t *all;
	int rc = parse_small(argc, argv, usage_list, "j", &s);

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

		if (vm_open(d, names.v[i], 1, &vm) == 0)
			json_array_append_new(all, status_json(vm));
		vm_close(vm);
	}
	strvec_clear(&names);
	if (s.json)
		return print_json(all);
	print_list(all);
	json_decref(all);
	return 0;
}

static const char usage_delete[] =
	"usage: nook local delete [NAME] [--force]\n"
	"\n"
	"Removes the VM's files: its disk, seed, keys and logs. A running VM\n"
	"is refused unless --force, which stops it first. The base image is\n"
	"never touched.\n";

static int local_delete(struct nook_ctx *ctx, int argc, char **argv)
{
	struct small s;
	struct vm *vm;
	int rc = parse_small(argc, argv, usage_delete, "f", &s);

	if (rc)
		return rc < 0 ? 0 : rc;
	vm = open_vm(ctx, s.name);
	rc = 1;
	if (vm && vm_delete(vm, s.force) == 0) {
		printf("VM %s deleted\n", s.name);
		rc = 0;
	}
	vm_close(vm);
	return rc;
}

static const char usage_logs[] =
	"usage: nook local logs [NAME] [--follow]\n"
	"\n"
	"Prints the VM's serial console log (every boot, appended). --follow\n"
	"keeps printing what the console writes until interrupted.\n";

static int local_logs(struct nook_ctx *ctx, int argc, char **argv)
{
	struct small s;
	struct vm *vm;
	FILE *f = NULL;
	char chunk[4096];
	int rc = parse_small(argc, argv, usage_logs, "F", &s);

	if (rc)
		return rc < 0 ? 0 : rc;
	rc = 1;
	vm = open_vm(ctx, s.name);
	if (!vm)
		goto out;
	f = fopen(vm_console_log(vm), "re");
	if (!f) {
		if (errno == ENOENT && !s.follow) {
			rc = 0; /* never booted: nothing logged yet */
			goto out;
		}
		error_errno("cannot read %s", vm_console_log(vm));
		goto out;
	}
	for (;;) {
		size_t n = fread(chunk, 1, sizeof(chunk), f);

		if (n && fwrite(chunk, 1, n, stdout) != n)
			goto out;
		if (n)
			continue;
		if (!s.follow)
			break;
		fflush(stdout);
		clearerr(f);
		nanosleep(&(struct timespec){ 0, 200000000L }, NULL);
	}
	rc = fflush(stdout) ? 1 : 0;
out:
	if (f)
		fclose(f);
	vm_close(vm);
	return rc;
}

int cmd_local(struct nook_ctx *ctx, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct nook_ctx *, int, char **);
	} subs[] = {
		{ "start", cmd_local_start }, { "stop", local_stop },
		{ "status", local_status },   { "list", local_list },
		{ "delete", local_delete },   { "logs", local_logs },
	};

	if (argc < 2)
		return usage_error(usage_local, "which subcommand?");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return show_usage(usage_local);
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
		if (!strcmp(subs[i].name, argv[1]))
			return subs[i].fn(ctx, argc - 1, argv + 1);
	return usage_error(usage_local, "unknown subcommand '%s'", argv[1]);
}

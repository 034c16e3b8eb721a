/* nook port: a VM's port forwards, added and removed while it runs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "vm.h"

static const char usage_port[] =
	"usage: nook port SUBCOMMAND NAME ...\n"
	"\n"
	"  add   NAME [ADDR:]HOST:GUEST[/udp] [--json]\n"
	"                                      forward host port HOST to GUEST\n"
	"  rm    NAME HOST|0:GUEST[/udp] [--json]\n"
	"                                      remove the forward from HOST\n"
	"  list  NAME [--json]                 the VM's forwards\n"
	"\n"
	"A running VM's forwards change at once (through QEMU's monitor);\n"
	"every change is remembered for its next start. A cluster's NAME means\n"
	"its first node. 'nook port SUBCOMMAND --help' says more.\n";

static const char usage_add[] =
	"usage: nook port add NAME [ADDR:]HOST:GUEST[/udp] [--json]\n"
	"\n"
	"Forwards host port HOST on ADDR (127.0.0.1 unless given) to port\n"
	"GUEST in VM NAME, at once when it runs, and from every start on.\n"
	"HOST 0 picks a free port and prints it; that port is kept (to have\n"
	"one picked at each start, give 'local start --port 0:GUEST'). A\n"
	"port in use on the host, or forwarded by the VM already, is refused.\n"
	"--json prints the forward as 'port list --json' does.\n";

static const char usage_rm[] =
	"usage: nook port rm NAME HOST[/udp] [--json]\n"
	"       nook port rm NAME 0:GUEST[/udp] [--json]\n"
	"\n"
	"Removes VM NAME's forward from host port HOST (tcp unless /udp), at\n"
	"once when it runs, and from its next starts. ssh's cannot go.\n"
	"0:GUEST names a forward that 'local start --port 0:GUEST' made (a\n"
	"free port picked at each start) by its guest port, also while the VM\n"
	"does not run and so has no host port for it.\n"
	"--json prints the forward removed.\n";

static const char usage_list[] =
	"usage: nook port list NAME [--json]\n"
	"\n"
	"Lists VM NAME's forwards (ssh's is in 'nook local status'): each\n"
	"one's ADDR:HOST:GUEST/PROTO, whether QEMU forwards it now (active)\n"
	"and whether its next start brings it back (kept).\n";

/* Parse "NAME WORD" (want words) and --json where json is not NULL;
 * 0, EXIT_USAGE, or -1 after --help. */
static int parse(int argc, char **argv, const char *usage, int want,
		 int *json)
{
	int rc = parse_json_only(argc, argv, usage, want, json);

	if (rc == 0 && argc - optind < want)
		rc = usage_error(usage, want == 1 ? "which VM?" :
				 argc == optind ? "which VM and port?" :
				 "which port?");
	return rc;
}

/* Open the VM NAME means (a cluster's first node); NULL having said why. */
static struct vm *open_vm(struct nook_ctx *ctx, const char *name)
{
	const struct nook_dirs *d = ctx_dirs(ctx);
	struct vm *vm = NULL;
	char *vm_name = d ? shell_resolve(d, name) : NULL;

	json_error_name(vm_name);
	if (vm_name && vm_open(d, vm_name, 1, &vm) < 0)
		vm = NULL;
	free(vm_name);
	return vm;
}

static json_t *forward_json(const struct vm_forward *f)
{
	return json_pack("{s:s,s:i,s:i,s:s,s:b,s:b}", "addr", f->port.addr,
			 "host", f->port.host, "guest", f->port.guest, "proto",
			 net_proto(f->port.udp), "active", f->active,
			 "kept", f->kept);
}

/* What port add or rm did to forward p (live: at once, in QEMU; kept:
 * for its next starts): a line, or with json the forward's object. */
static int say_port(const char *what, const struct vm *vm,
		    const struct net_port *p, int live, int kept, int json)
{
	/* one removed (not kept) is not active either */
	struct vm_forward f = { *p, live && kept, kept };
	struct buf b = BUF_INIT;

	if (json)
		return print_json(forward_json(&f));
	net_port_format(p, &b);
	printf("%s %s on VM %s%s\n", what, b.p, vm_name(vm),
	       live ? "" : " (from its next start)");
	buf_free(&b);
	return 0;
}

static int port_add(struct nook_ctx *ctx, int argc, char **argv)
{
	struct net_port p, made;
	struct vm *vm;
	int live, json = 0, rc = parse(argc, argv, usage_add, 2, &json);

	if (rc)
		return rc < 0 ? 0 : rc;
	if (net_port_parse(argv[optind + 1], &p) < 0)
		return EXIT_USAGE;
	vm = open_vm(ctx, argv[optind]);
	rc = 1;
	if (vm && vm_port_add(vm, &p, &made, &live) == 0) {
		rc = say_port("forwarding", vm, &made, live, 1, json);
		if (!json && !p.host)
			printf("host port: %d\n", made.host);
	}
	vm_close(vm);
	return rc;
}

/* "HOST[/tcp|/udp]", or "0:GUEST[/tcp|/udp]" (*host 0): the forward from
 * a free port to GUEST, which has no host port of its own to name it by
 * while the VM does not run */
static int parse_host(const char *s, int *host, int *guest, int *udp)
{
	const char *slash = strchr(s, '/');
	char *num = slash ? xstrndup(s, (size_t)(slash - s)) : xstrdup(s);
	int host0 = !strncmp(num, "0:", 2);
	long v = 0;
	int rc;

	*udp = slash && !strcmp(slash + 1, "udp");
	if (slash && !*udp && strcmp(slash + 1, "tcp"))
		rc = errorf("bad port '%s': the protocol after '/' must be "
			    "tcp or udp", s);
	else if (host0)
		rc = parse_int("guest port", num + 2, 1, 65535, &v);
	else
		rc = parse_int("host port", num, 1, 65535, &v);
	*host = host0 ? 0 : (int)v;
	*guest = host0 ? (int)v : 0;
	free(num);
	return rc < 0 ? -1 : 0;
}

static int port_rm(struct nook_ctx *ctx, int argc, char **argv)
{
	struct net_port gone;
	struct vm *vm;
	int host = 0, guest = 0, udp = 0, live, json = 0;
	int rc = parse(argc, argv, usage_rm, 2, &json);

	if (rc)
		return rc < 0 ? 0 : rc;
	if (parse_host(argv[optind + 1], &host, &guest, &udp) < 0)
		return EXIT_USAGE;
	vm = open_vm(ctx, argv[optind]);
	rc = 1;
	if (vm && vm_port_remove(vm, host, guest, udp, &gone, &live) == 0)
		rc = say_port("removed", vm, &gone, 1, 0, json);
	vm_close(vm);
	return rc;
}

static int port_list(struct nook_ctx *ctx, int argc, char **argv)
{
	struct vm_forward *f = NULL;
	struct vm *vm;
	size_t n = 0;
	int json = 0, rc = parse(argc, argv, usage_list, 1, &json);

	if (rc)
		return rc < 0 ? 0 : rc;
	vm = open_vm(ctx, argv[optind]);
	if (!vm)
		return json ? print_json_error() : 1;
	vm_port_list(vm, &f, &n);
	if (json) {
		json_t *a = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, forward_json(&f[i]));
		rc = print_json(a);
	} else {
		for (size_t i = 0; i < n; i++) {
			struct buf b = BUF_INIT;

			net_port_format(&f[i].port, &b);
			printf("%-28s %s%s\n", b.p,
			       f[i].active ? "active" : "inactive",
			       !f[i].kept ? ", until it stops" :
			       !f[i].port.host ? ", a free port at each start" :
			       "");
			buf_free(&b);
		}
		if (!n)
			printf("VM %s has no forwards but ssh's\n", vm_name(vm));
	}
	free(f);
	vm_close(vm);
	return rc;
}

int cmd_port(struct nook_ctx *ctx, int argc, char **argv)
{
	static const struct subcommand subs[] = {
		{ "add", port_add }, { "rm", port_rm }, { "list", port_list },
	};

	return run_subcommand(ctx, argc, argv, subs, ARRAY_SIZE(subs),
			      usage_port);
}

/* nook export libvirt: a VM or a cluster, moved to libvirt. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "vm.h"

static const char usage_export[] =
	"usage: nook export libvirt NAME|CLUSTER [OPTIONS]\n"
	"\n"
	"Exports VMs to another runtime. Targets:\n"
	"  libvirt  a VM, or a cluster's nodes and network, as libvirt domains\n"
	"\n"
	"'nook export libvirt --help' shows its options.\n";

static const char usage_libvirt[] =
	"usage: nook export libvirt NAME|CLUSTER -o DIR [OPTIONS]\n"
	"       nook export libvirt NAME|CLUSTER --connect URI [--pool P] "
	"[--start] [OPTIONS]\n"
	"\n"
	"Exports stopped (or suspended) VM NAME, or every node of CLUSTER and\n"
	"its private network, to libvirt: the same CPUs, memory, machine type,\n"
	"MACs, boot (direct kernel boot with the same command line, or disk),\n"
	"the same cidata seed (same instance-id: cloud-init does not provision\n"
	"again), the disk flattened from overlay and base into one qcow2, and\n"
	"the serial console a pty ('virsh console') also logged to a file.\n"
	"\n"
	"  -o, --output DIR      write NAME.xml, NAME.qcow2, NAME.seed.iso (and\n"
	"                        a direct boot's NAME.vmlinuz, NAME.initrd),\n"
	"                        CLUSTER.net.xml and define.sh into DIR\n"
	"  -c, --connect URI     define them on libvirt at URI (qemu:///system,\n"
	"                        qemu+ssh://user@host/system ...) with virsh\n"
	"      --pool P          the storage pool the volumes go to (default:\n"
	"                        default)\n"
	"      --start           start the domains once defined\n"
	"      --uplink NET      the libvirt network of the first NIC (default:\n"
	"                        default, libvirt's NAT), or 'user' for\n"
	"                        user-mode networking\n"
	"      --virt-type T     auto (default: kvm when the target has it),\n"
	"                        kvm or qemu\n"
	"      --log-dir LOGDIR  with --connect: where the target writes the\n"
	"                        serial logs (default /var/log/libvirt/qemu;\n"
	"                        a qemu:///session URI needs it); -o puts\n"
	"                        them in DIR\n";

static void say_line(void *ctx, const char *line)
{
	(void)ctx;
	printf("%s\n", line);
	fflush(stdout);
}

/* The options that go together, and their values; 0, or usage_error()'s
 * status having said what is wrong. */
static int check_options(const struct vm_export_opts *o, int pool_given,
			 int log_given)
{
	if (!o->outdir == !o->connect)
		return usage_error(usage_libvirt, "give either -o DIR or "
				   "--connect URI");
	if ((o->outdir && !*o->outdir) || (o->connect && !*o->connect))
		return usage_error(usage_libvirt, "%s", o->outdir ?
				   "-o needs a directory name" :
				   "--connect needs a libvirt URI");
	if (o->outdir && (pool_given || o->start || log_given))
		return usage_error(usage_libvirt, "--pool, --start and "
				   "--log-dir go with --connect, not -o");
	if (o->connect && strstr(o->connect, "/session") && !log_given)
		return usage_error(usage_libvirt, "a session libvirt cannot "
				   "write to /var/log/libvirt/qemu: give "
				   "--log-dir");
	/* virsh would take it for an option: 'pool-info --help' succeeds */
	if (o->pool[0] == '-' || o->uplink[0] == '-')
		return usage_error(usage_libvirt, "%s '%s' starts with '-', "
				   "which virsh would read as an option",
				   o->pool[0] == '-' ? "--pool" : "--uplink",
				   o->pool[0] == '-' ? o->pool : o->uplink);
	if (!*o->uplink || (o->log_dir[0] != '/'))
		return usage_error(usage_libvirt, "%s", !*o->uplink ?
				   "--uplink needs a network name or 'user'" :
				   "--log-dir must be an absolute path");
	if (strcmp(o->virt_type, "auto") && strcmp(o->virt_type, "kvm") &&
	    strcmp(o->virt_type, "qemu"))
		return usage_error(usage_libvirt, "--virt-type is auto, kvm or "
				   "qemu, not '%s'", o->virt_type);
	return 0;
}

static int cmd_export_libvirt(struct nook_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "connect", required_argument, NULL, 'c' },
		{ "pool", required_argument, NULL, 'p' },
		{ "start", no_argument, NULL, 's' },
		{ "uplink", required_argument, NULL, 'u' },
		{ "virt-type", required_argument, NULL, 't' },
		{ "log-dir", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct vm_export_opts o = { 0 };
	const struct nook_dirs *d;
	int c, pool_given = 0, log_given = 0;

	o.pool = "default";
	o.uplink = "default";
	o.virt_type = "auto";
	o.log_dir = "/var/log/libvirt/qemu";
	o.say = say_line;
	getopt_reset();
	while ((c = cmd_getopt_long(argc, argv, ":ho:c:", longopts,
				    NULL)) != -1) {
		switch (c) {
		case 'h':
			return show_usage(usage_libvirt);
		case 'o':
			o.outdir = optarg;
			break;
		case 'c':
			o.connect = optarg;
			break;
		case 'p':
			o.pool = optarg;
			pool_given = 1;
			break;
		case 's':
			o.start = 1;
			break;
		case 'u':
			o.uplink = optarg;
			break;
		case 't':
			o.virt_type = optarg;
			break;
		case 'l':
			o.log_dir = optarg;
			log_given = 1;
			break;
		default:
			return bad_option(usage_libvirt, argv, c);
		}
	}
	if (optind >= argc)
		return usage_error(usage_libvirt, "export libvirt needs a VM or "
				   "cluster NAME");
	if (argc - optind > 1)
		return usage_error(usage_libvirt, "export libvirt takes one "
				   "NAME");
	c = check_options(&o, pool_given, log_given);
	if (c)
		return c;
	d = ctx_dirs(ctx);
	if (!d)
		return 1;
	return vm_export_libvirt(d, argv[optind], &o) < 0 ? 1 : 0;
}

static const struct {
	const char *name;
	int (*fn)(struct nook_ctx *ctx, int argc, char **argv);
} targets[] = {
	{ "libvirt", cmd_export_libvirt },
};

int cmd_export(struct nook_ctx *ctx, int argc, char **argv)
{
	if (argc < 2)
		return usage_error(usage_export, "export needs a target");
	/* as run_subcommand()'s: nook export help */
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help"))
		return show_usage(usage_export);
	for (size_t i = 0; i < ARRAY_SIZE(targets); i++)
		if (!strcmp(argv[1], targets[i].name))
			return targets[i].fn(ctx, argc - 1, argv + 1);
	return usage_error(usage_export, "unknown export target '%s'",
			   argv[1]);
}

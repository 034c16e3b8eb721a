/* nook local start: a VM from nothing (or from where it was) to ready. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cidata.h"
#include "cmd.h"
#include "images.h"
#include "vmcmd.h"

static const char usage[] =
	"usage: nook local start [NAME] [OPTIONS]\n"
	"\n"
	"Starts VM NAME (default: default), making it on first start, and waits\n"
	"until it is ready: sshd answers, ssh logs in, cloud-init is done.\n"
	"\n"
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
	"  --json                 print the result as JSON\n"
	"\n"
	"Settings given at first start are remembered; a later start says what\n"
	"it changes.\n";

enum { O_IMAGE = 256, O_CPUS, O_MEMORY, O_DISK, O_USER_DATA, O_NETCFG,
       O_PORT, O_BOOT, O_KERNEL, O_INITRD, O_APPEND, O_ACCEL, O_NO_WAIT,
       O_TIMEOUT, O_REPROVISION, O_JSON, O_CPU };

struct opts {
	const char *image, *user_data, *netcfg, *boot, *kernel, *initrd;
	const char *append, *accel, *cpu;
	long cpus, timeout;
	uint64_t memory, disk;
	struct net_port *ports;
	size_t nports;
	int ports_given, no_wait, reprovision, json;
};

static int parse(int argc, char **argv, struct opts *o, const char **name)
{
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
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	o->timeout = 900;
	getopt_reset();
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case O_IMAGE: o->image = optarg; break;
		case O_USER_DATA: o->user_data = optarg; break;
		case O_NETCFG: o->netcfg = optarg; break;
		case O_KERNEL: o->kernel = optarg; break;
		case O_INITRD: o->initrd = optarg; break;
		case O_APPEND: o->append = optarg; break;
		case O_CPU:
			/* one QEMU word: a model and its +/-features */
			if (!*optarg || strspn(optarg, "abcdefghijklmnopqrstuvwxyz"
					       "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					       "0123456789-_.,=+") !=
						strlen(optarg))
				return usage_error(usage, "bad --cpu '%s'",
						   optarg);
			o->cpu = optarg;
			break;
		case O_NO_WAIT: o->no_wait = 1; break;
		case O_REPROVISION: o->reprovision = 1; break;
		case O_JSON: o->json = 1; break;
		case O_CPUS:
			if (parse_int("--cpus", optarg, 1, 64, &o->cpus) < 0)
				return EXIT_USAGE;
			break;
		case O_TIMEOUT:
			if (parse_int("--timeout", optarg, 1, 86400,
				      &o->timeout) < 0)
				return EXIT_USAGE;
			break;
		case O_MEMORY:
			if (parse_size("--memory", optarg, &o->memory) < 0)
				return EXIT_USAGE;
			if (o->memory < (128ULL << 20))
				return usage_error(usage, "--memory %s is below "
						   "the 128M a guest needs", optarg);
			break;
		case O_DISK:
			if (parse_size("--disk", optarg, &o->disk) < 0)
				return EXIT_USAGE;
			break;
		case O_PORT:
			o->ports = xrealloc(o->ports, sizeof(*o->ports) *
						      (o->nports + 1));
			if (net_port_parse(optarg, &o->ports[o->nports]) < 0)
				return EXIT_USAGE;
			o->nports++;
			o->ports_given = 1;
			break;
		case O_BOOT:
			if (strcmp(optarg, "disk") && strcmp(optarg, "direct"))
				return usage_error(usage, "--boot must be disk "
						   "or direct, not '%s'", optarg);
			o->boot = optarg;
			break;
		case O_ACCEL:
			if (strcmp(optarg, "auto") && strcmp(optarg, "kvm") &&
			    strcmp(optarg, "tcg"))
				return usage_error(usage, "--accel must be auto, "
						   "kvm or tcg, not '%s'", optarg);
			o->accel = optarg;
			break;
		case 'h': return show_usage(usage) - 1;
		default: return bad_option(usage, argv, c);
		}
	}
	if (argc - optind > 1)
		return usage_error(usage, "unexpected argument '%s'",
				   argv[optind + 1]);
	*name = optind < argc ? argv[optind] : "default";
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

/* Read and check an input file before anything is made. */
static int check_input(const char *opt, const char *path, int user_data,
		       struct buf *b)
{
	if (read_file(path, b) < 0)
		return -1;
	if (user_data)
		return cidata_check_user_data(path, b->p, b->len, NULL);
	(void)opt;
	return cidata_check_yaml(path, b->p, b->len);
}

static char *new_instance_id(void)
{
	unsigned char r[8];
	char hex[17];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return NULL;
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", r[i]);
	return xasprintf("iid-nook-%s", hex);
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? xstrdup(v) : NULL;
}

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Keep a copy of an input in the VM's directory: the VM's own record of
 * what it was given. *changed says whether it differs from the last. */
static int keep_copy(struct vmcmd *v, const char *base, const struct buf *b,
		     char **field, int *changed)
{
	char *dst = xasprintf("%s/%s", v->paths.dir, base);
	struct buf old = BUF_INIT;
	int ret;

	*changed = !*field || read_file_quiet(dst, &old) < 0 ||
		   old.len != b->len || memcmp(old.p, b->p, b->len);
	buf_free(&old);
	ret = write_file_atomic(dst, b->p, b->len, 0600);
	if (ret == 0)
		set_str(field, dst);
	free(dst);
	return ret;
}

/* Apply what this start asks for to the remembered spec, saying what
 * changes for an existing VM. */
static int apply(struct vmcmd *v, const struct opts *o, int is_new,
		 const struct vm_image *img, FILE *say)
{
	struct vm_spec *s = &v->spec;

	if (is_new) {
		set_str(&s->name, v->name);
		s->image = *img;
		s->instance_id = new_instance_id();
		if (!s->instance_id)
			return error_errno("getrandom");
		set_str(&s->accel, "auto");
	} else if (o->image && !same_str(img->disk, s->image.disk)) {
		return errorf("VM %s was made from image %s; its disk cannot "
			      "move to %s. Delete it first ('nook local delete "
			      "%s') or start another name", v->name,
			      s->image.ref, o->image, v->name);
	}
	if (o->cpus && o->cpus != s->cpus) {
		if (!is_new)
			fprintf(say, "cpus: %d -> %ld\n", s->cpus, o->cpus);
		s->cpus = (int)o->cpus;
	}
	if (o->memory && o->memory != s->memory) {
		if (!is_new)
			fprintf(say, "memory: %lluM -> %lluM\n",
				(unsigned long long)(s->memory >> 20),
				(unsigned long long)(o->memory >> 20));
		s->memory = o->memory;
	}
	if (o->disk) {
		uint64_t have;

		if (vm_disk_size(is_new ? s->image.disk : v->paths.disk,
				 &have) < 0)
			return -1;
		if (o->disk < have)
			return errorf("--disk cannot shrink VM %s's disk (%lluM "
				      "now)", v->name,
				      (unsigned long long)(have >> 20));
		if (o->disk > have && !is_new)
			fprintf(say, "disk: %lluM -> %lluM (the guest grows its "
				"file system on boot)\n",
				(unsigned long long)(have >> 20),
				(unsigned long long)(o->disk >> 20));
	}
	if (o->disk)
		s->disk = o->disk;
	if (o->ports_given) {
		if (!is_new)
			fprintf(say, "ports: now as given (%zu forward%s)\n",
				o->nports, o->nports == 1 ? "" : "s");
		free(s->ports);
		s->ports = xmalloc(sizeof(*s->ports) * (o->nports + 1));
		memcpy(s->ports, o->ports, sizeof(*s->ports) * o->nports);
		s->nports = o->nports;
	}
	if (o->accel && !same_str(o->accel, s->accel)) {
		if (!is_new)
			fprintf(say, "accel: %s -> %s\n", s->accel, o->accel);
		set_str(&s->accel, o->accel);
	}
	if (o->cpu && !same_str(o->cpu, s->cpu)) {
		if (!is_new)
			fprintf(say, "cpu: %s -> %s\n", s->cpu ? s->cpu : "default",
				o->cpu);
		set_str(&s->cpu, o->cpu);
	}
	if (o->kernel) {
		if (!is_new && !same_str(o->kernel, s->kernel))
			fprintf(say, "kernel: now %s\n", o->kernel);
		set_str(&s->kernel, o->kernel);
		set_str(&s->initrd, o->initrd);
	}
	if (o->append) {
		if (!is_new && !same_str(o->append, s->append))
			fprintf(say, "kernel arguments: now adding '%s'\n",
				o->append);
		set_str(&s->append, o->append);
	}
	if (o->boot || o->kernel || is_new) {
		const char *boot = o->boot ? o->boot :
				   o->kernel || s->kernel || s->image.kernel ?
				   "direct" : "disk";

		if (!strcmp(boot, "direct") && !s->kernel && !s->image.kernel)
			return errorf("--boot direct needs a kernel: image %s "
				      "has none; give --kernel", s->image.ref);
		if (!is_new && !same_str(boot, s->boot))
			fprintf(say, "boot: %s -> %s\n", s->boot, boot);
		set_str(&s->boot, boot);
	}
	if (o->reprovision && !is_new) {
		char *iid = new_instance_id();

		if (!iid)
			return error_errno("getrandom");
		fprintf(say, "instance-id: %s -> %s (cloud-init provisions "
			"again)\n", s->instance_id, iid);
		free(s->instance_id);
		s->instance_id = iid;
	}
	return 0;
}

static int decide_accel(const char *want, enum vm_accel *a, FILE *say)
{
	struct vm_accel_facts f;
	const char *why;

	if (!strcmp(want, "tcg")) {
		*a = VM_ACCEL_TCG;
		return 0;
	}
	vm_accel_probe(&f, "qemu-system-x86_64");
	*a = vm_accel_decide(&f, &why);
	if (*a == VM_ACCEL_TCG && !strcmp(want, "kvm"))
		return errorf("--accel kvm cannot work here: %s", why);
	if (*a == VM_ACCEL_TCG)
		fprintf(say, "accel: tcg (software emulation; slower): %s\n",
			why);
	return 0;
}

/* The forwards for this start: ssh first (the remembered port when it is
 * still free), then the user's, free ports picked for HOST 0. */
static int resolve_ports(struct vm_spec *s, struct net_port **out, size_t *n)
{
	struct net_port *p = xmalloc(sizeof(*p) * (s->nports + 1));

	*out = p;
	*n = 0;
	memset(&p[0], 0, sizeof(p[0]));
	snprintf(p[0].addr, sizeof(p[0].addr), "127.0.0.1");
	p[0].guest = 22;
	p[0].host = s->ssh_port;
	if (!p[0].host || net_port_check(p[0].addr, p[0].host, 0) < 0) {
		if (p[0].host)
			warnf("ssh port %d is taken now; picking another",
			      p[0].host);
		if (net_port_free(p[0].addr, 0, &p[0].host) < 0)
			return -1;
	}
	s->ssh_port = p[0].host;
	*n = 1;
	for (size_t i = 0; i < s->nports; i++) {
		p[*n] = s->ports[i];
		if (!p[*n].host) {
			if (net_port_free(p[*n].addr, p[*n].udp, &p[*n].host) < 0)
				return -1;
		} else if (net_port_check(p[*n].addr, p[*n].host,
					  p[*n].udp) < 0) {
			return -1;
		}
		for (size_t j = 0; j < *n; j++)
			if (p[j].host == p[*n].host && p[j].udp == p[*n].udp)
				return errorf("host port %d is forwarded twice",
					      p[j].host);
		(*n)++;
	}
	return 0;
}

/* "Booting the guest" line on a terminal: rewritten in place. */
struct progress {
	struct vmcmd *v;
	int tty;
	int last_phase;
	int width;
};

static void console_last_line(const struct vmcmd *v, char *out, size_t size)
{
	struct buf b = BUF_INIT;
	size_t end, start, j = 0;

	out[0] = '\0';
	if (read_file_quiet(v->paths.console_log, &b) < 0)
		return;
	end = b.len;
	while (end > 0 && (b.p[end - 1] == '\n' || b.p[end - 1] == '\r'))
		end--;
	start = end;
	while (start > 0 && b.p[start - 1] != '\n')
		start--;
	/* printable characters only: no escape sequences, no CRs */
	for (size_t i = start; i < end && j + 1 < size; i++) {
		unsigned char c = (unsigned char)b.p[i];

		if (c == 0x1b) {
			while (i + 1 < end && !((b.p[i + 1] >= 'A' &&
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

static void show_progress(void *ctx, enum vm_phase ph, double el)
{
	struct progress *pr = ctx;
	char line[512];

	if (!pr->tty) {
		if ((int)ph != pr->last_phase)
			fprintf(stderr, "nook: %s: %s (%.0f s)\n", pr->v->name,
				vm_phase_name(ph), el);
		pr->last_phase = (int)ph;
		return;
	}
	console_last_line(pr->v, line, sizeof(line));
	{
		char head[128];
		int hl = snprintf(head, sizeof(head), "[%4.0fs] %s", el,
				  vm_phase_name(ph));
		int room = pr->width - hl - 3;

		fprintf(stderr, "\r\033[K%s", head);
		if (room > 10 && line[0])
			fprintf(stderr, " | %.*s", room, line);
		fflush(stderr);
	}
	pr->last_phase = (int)ph;
}

/* Run a command in the guest and print what it says, indented. */
static void guest_report(struct vmcmd *v, const char *title,
			 const char *const *cmd)
{
	struct strvec argv = STRVEC_INIT;
	struct buf out = BUF_INIT;

	ssh_argv(&v->ssh, -1, NULL, cmd, &argv);
	run_capture((const char *const *)argv.v, &out);
	fprintf(stderr, "%s\n", title);
	for (char *l = out.p; l && *l;) {
		size_t len = strcspn(l, "\n");

		fprintf(stderr, "  | %.*s\n", (int)len, l);
		l += len;
		if (*l)
			l++;
	}
	buf_free(&out);
	strvec_clear(&argv);
}

static void report_failure(struct vmcmd *v, const struct vm_ready *r)
{
	static const char *const status[] = { "cloud-init", "status", "--long",
					       NULL };
	static const char *const output[] = {
		"tail", "-n", "25", "/var/log/cloud-init-output.log", NULL };
	struct buf log = BUF_INIT;

	if (r->crashed) {
		errorf("VM %s: QEMU exited while %s", v->name,
		       vm_phase_name(r->reached));
		if (read_file_quiet(v->paths.qemu_log, &log) == 0 && log.len)
			fprintf(stderr, "QEMU said:\n%s", log.p);
		buf_free(&log);
		fprintf(stderr, "last console lines (%s):\n",
			v->paths.console_log);
		vmcmd_console_tail(v, 15);
	} else if (r->timed_out) {
		errorf("VM %s: not ready after %d s: stalled while %s; the VM "
		       "is still running ('nook local logs %s', 'nook local "
		       "stop %s')", v->name, r->timeout_s,
		       vm_phase_name(r->reached), v->name, v->name);
		fprintf(stderr, "last console lines:\n");
		vmcmd_console_tail(v, 15);
	} else if (r->cloud_init_rc > 0) {
		errorf("VM %s: cloud-init reported an error (status exit %d); "
		       "the VM is still running: 'nook shell %s' to look",
		       v->name, r->cloud_init_rc, v->name);
		guest_report(v, "cloud-init status --long:", status);
		guest_report(v, "/var/log/cloud-init-output.log (end):", output);
	}
}

static json_t *result_json(struct vmcmd *v, const char *state, pid_t pid,
			   const char *accel, const struct net_port *ports,
			   size_t n, double secs)
{
	json_t *j = json_object(), *pa = json_array();

	json_object_set_new(j, "name", json_string(v->name));
	json_object_set_new(j, "state", json_string(state));
	json_object_set_new(j, "pid", json_integer(pid));
	json_object_set_new(j, "accel", json_string(accel));
	json_object_set_new(j, "ssh", json_pack("{s:s,s:i,s:s}", "host",
						"127.0.0.1", "port",
						v->spec.ssh_port, "user",
						v->spec.image.user));
	for (size_t i = 1; i < n; i++) {
		struct buf b = BUF_INIT;

		net_port_format(&ports[i], &b);
		json_array_append_new(pa, json_string(b.p));
		buf_free(&b);
	}
	json_object_set_new(j, "ports", pa);
	json_object_set_new(j, "seconds", json_real(secs));
	return j;
}


/* The default image, debian-12: from the store, else pulled from Debian,
 * else built here from Debian packages, saying which. */
static int default_image(const char *data)
{
	struct img_pull p;
	char *dir = NULL;
	int rc = -1;

	if (img_resolve(data, "debian-12", &dir) < 0)
		return -1;
	if (dir) {
		free(dir);
		return 0;
	}
	printf("image debian-12 is not in the store: pulling it\n");
	fflush(stdout);
	memset(&p, 0, sizeof(p));
	if (img_pull_resolve("debian-12", NULL, &p) == 0 &&
	    img_pull(data, &p) == 0)
		rc = 0;
	free(p.url);
	free(p.name);
	free(p.checksums_url);
	if (rc == 0)
		return 0;
	printf("the pull did not work; building debian-12 here from Debian "
	       "packages instead\n");
	return img_build(data, "debian-12", NULL);
}

/* Everything up to a running QEMU. On a new VM, a failure removes what was
 * made so a rerun starts clean. */
static int bring_up(struct vmcmd *v, struct opts *o, FILE *say,
		    enum vm_accel *accel, struct net_port **ports,
		    size_t *nports, pid_t *pid)
{
	struct vm_image img = { 0 };
	struct buf ud = BUF_INIT, nc = BUF_INIT;
	struct strvec argv = STRVEC_INIT;
	struct buf cmdline = BUF_INIT;
	struct vm_launch l;
	struct vm_boot boot = { 0 };
	char *extra;
	int is_new = !v->have_spec, made_dir = 0, changed, ret = -1;
	struct stat st;

	/* Check every input before anything is made. */
	if (o->user_data && check_input("--user-data", o->user_data, 1, &ud) < 0)
		goto out;
	if (o->netcfg && check_input("--network-config", o->netcfg, 0, &nc) < 0)
		goto out;
	if (is_new && !o->image && default_image(v->dirs.data) < 0)
		goto out;
	if ((is_new || o->image) &&
	    vm_image_resolve(v->dirs.data, o->image ? o->image : "debian-12",
			     &img) < 0)
		goto out;
	if (o->kernel && access(o->kernel, R_OK) < 0) {
		error_errno("--kernel %s", o->kernel);
		goto out;
	}
	if (o->initrd && access(o->initrd, R_OK) < 0) {
		error_errno("--initrd %s", o->initrd);
		goto out;
	}
	made_dir = is_new && stat(v->paths.dir, &st) < 0;
	if (mkdir_p(v->paths.dir, 0700) < 0 ||
	    vm_lock(&v->paths, v->name, &v->lock_fd) < 0)
		goto out;
	if (is_new && stat(v->paths.json, &st) == 0) {
		made_dir = 0;
		errorf("VM %s was just made by another nook; run again",
		       v->name);
		goto out;
	}
	*pid = vm_pid_alive(v->paths.pidfile, v->paths.qmp);
	if (*pid) {
		errorf("VM %s is already running (pid %d); 'nook shell %s' "
		       "gets you in", v->name, (int)*pid, v->name);
		goto out;
	}
	changed = apply(v, o, is_new, &img, say);
	if (is_new)
		memset(&img, 0, sizeof(img)); /* the spec owns it now */
	if (changed < 0)
		goto out;
	if (o->user_data) {
		if (keep_copy(v, "user-data", &ud, &v->spec.user_data,
			      &changed) < 0)
			goto out;
		if (!is_new && changed && !o->reprovision)
			fprintf(say, "user-data: changed; cloud-init applies it "
				"only to a new instance: add --reprovision\n");
	}
	if (o->netcfg) {
		if (keep_copy(v, "network-config", &nc,
			      &v->spec.network_config, &changed) < 0)
			goto out;
		if (!is_new && changed && !o->reprovision)
			fprintf(say, "network-config: changed; add "
				"--reprovision to apply it\n");
	}
	if (decide_accel(v->spec.accel, accel, say) < 0 ||
	    resolve_ports(&v->spec, ports, nports) < 0 ||
	    vm_prepare(&v->spec, &v->paths) < 0)
		goto out;
	memset(&l, 0, sizeof(l));
	l.accel = *accel;
	l.qemu = "qemu-system-x86_64";
	/* keep the image's root and device arguments; add what a local boot
	 * needs: the serial console, the hint that the seed is NoCloud (no
	 * datasource probing), and no e2scrub_reap, which looks for LVM
	 * snapshots a fresh VM never has while cloud-init waits for CPU.
	 * Under TCG (measured here, QEMU 7.2) also:
	 * - tsc=reliable: every vCPU's TSC reads the host's one clock, so
	 *   they agree; but the guest's sync check, timed under emulation,
	 *   finds them apart and falls back to the HPET, whose every read
	 *   is an emulated MMIO access. ~4.5 s of a first boot.
	 * - norandmaps: TCG keys the code it has translated by virtual
	 *   address, so with ASLR every new process translates ld.so and
	 *   libc afresh: a fork+exec of /bin/true took 51 ms, 17 ms
	 *   without; a warm `nook shell -- true` 160 ms, 71 ms without.
	 *   The price is the guest's address space randomization; user-data
	 *   can turn it back on (sysctl kernel.randomize_va_space=2). */
	extra = xasprintf("console=ttyS0 ds=nocloud "
			  "systemd.mask=e2scrub_reap.service%s",
			  *accel == VM_ACCEL_TCG ? " tsc=reliable norandmaps" : "");
	vm_cmdline_merge(v->spec.kernel ? "" : v->spec.image.cmdline, extra,
			 &cmdline);
	free(extra);
	if (v->spec.append) {
		char *base = xstrdup(cmdline.p);

		cmdline.len = 0;
		vm_cmdline_merge(base, v->spec.append, &cmdline);
		free(base);
	}
	l.cmdline = cmdline.p;
	if (!strcmp(v->spec.boot, "direct")) {
		char *cache = xasprintf("%s/cache/boot", v->dirs.data);
		const char *kernel, *initrd;

		vm_spec_kernel(&v->spec, &kernel, &initrd);
		vm_boot_prepare(cache, l.qemu, kernel, initrd, v->spec.memory,
				&boot);
		free(cache);
		l.boot = &boot;
	}
	l.ports = *ports;
	l.nports = *nports;
	net_mac("", v->name, 0, l.mac);
	vm_qemu_argv(&v->spec, &v->paths, &l, &argv);
	if (vmcmd_save(v, "starting", 0, NULL, *ports, *nports) < 0)
		goto out;
	made_dir = 0; /* from here on the VM exists, even if QEMU fails */
	if (vm_launch(&v->paths, (const char *const *)argv.v, pid) < 0) {
		vmcmd_save(v, "stopped", 0, NULL, *ports, *nports);
		goto out;
	}
	ret = 0;
out:
	if (ret < 0 && made_dir) {
		remove_tree(v->paths.dir);
		remove_tree(v->paths.run);
	}
	vm_image_free(&img);
	vm_boot_free(&boot);
	buf_free(&ud);
	buf_free(&nc);
	buf_free(&cmdline);
	strvec_clear(&argv);
	return ret;
}

int cmd_local_start(struct nook_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	struct opts o;
	struct vmcmd v;
	struct net_port *ports = NULL;
	size_t nports = 0;
	enum vm_accel accel = VM_ACCEL_TCG;
	const char *name = NULL, *acc;
	struct vm_ready r;
	struct progress pr;
	pid_t pid = 0;
	double t0 = mono_s();
	FILE *say;
	int rc;

	memset(&o, 0, sizeof(o));
	rc = parse(argc, argv, &o, &name);
	if (rc) {
		free(o.ports);
		return rc < 0 ? 0 : rc;
	}
	say = o.json ? stderr : stdout;
	rc = 1;
	if (vmcmd_open(&v, name, 0) < 0)
		goto out;
	if (bring_up(&v, &o, say, &accel, &ports, &nports, &pid) < 0)
		goto out;
	acc = accel == VM_ACCEL_KVM ? "kvm" : "tcg";
	fprintf(say, "VM %s: QEMU running (pid %d, %s), ssh on 127.0.0.1:%d\n",
		name, (int)pid, acc, v.spec.ssh_port);
	fflush(say);
	if (o.no_wait) {
		vmcmd_save(&v, "running", pid, acc, ports, nports);
		rc = o.json ? print_json(result_json(&v, "starting", pid, acc,
						     ports, nports,
						     mono_s() - t0)) : 0;
		goto out;
	}
	vmcmd_save(&v, "starting", pid, acc, ports, nports);
	vmcmd_ssh(&v, NULL);
	memset(&r, 0, sizeof(r));
	memset(&pr, 0, sizeof(pr));
	pr.v = &v;
	pr.tty = isatty(STDERR_FILENO);
	pr.last_phase = -1;
	pr.width = 100;
	r.ssh = &v.ssh;
	r.paths = &v.paths;
	r.pid = pid;
	r.timeout_s = (int)o.timeout;
	r.progress = show_progress;
	r.ctx = &pr;
	rc = vm_wait_ready(&r);
	if (pr.tty)
		fputs("\r\033[K", stderr);
	vmcmd_save(&v, r.crashed ? "stopped" : "running", r.crashed ? 0 : pid,
		   acc, ports, nports);
	if (rc < 0) {
		report_failure(&v, &r);
		rc = 1;
		goto out;
	}
	if (o.json) {
		rc = print_json(result_json(&v, "running", pid, acc, ports,
					    nports, mono_s() - t0));
		goto out;
	}
	printf("VM %s is ready (%.0f s). Get in with: nook shell%s%s\n", name,
	       mono_s() - t0, strcmp(name, "default") ? " " : "",
	       strcmp(name, "default") ? name : "");
	for (size_t i = 1; i < nports; i++) {
		struct buf b = BUF_INIT;

		net_port_format(&ports[i], &b);
		printf("  port %s\n", b.p);
		buf_free(&b);
	}
	rc = 0;
out:
	vmcmd_close(&v);
	free(ports);
	free(o.ports);
	return rc;
}

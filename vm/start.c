/* Starting a VM: the start policy (what changes, the accelerator, the
 * ports), making its files, launching QEMU and waiting for the guest. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cidata.h"
#include "images.h"
#include "internal.h"

/* The VM being started, for the callbacks: one start at a time per
 * process (a cluster starts each node in a process of its own). */
static struct vm *current;

static void say(const struct vm_start_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(const struct vm_start_opts *o, const char *fmt, ...)
{
	va_list ap;
	char *line;

	if (!o->say)
		return;
	va_start(ap, fmt);
	line = xvasprintf(fmt, ap);
	va_end(ap);
	o->say(o->ctx, current, line);
	free(line);
}

static void progress(void *ctx, enum vm_phase ph, double elapsed)
{
	const struct vm_start_opts *o = ctx;

	if (o->progress)
		o->progress(o->ctx, current, ph, elapsed);
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

/* The user's files, read and checked before anything is made. */
struct inputs {
	struct buf user_data, network_config;
	struct vm_image image;  /* resolved when the start names one */
	int have_image;
};

static void inputs_free(struct inputs *in)
{
	buf_free(&in->user_data);
	buf_free(&in->network_config);
	vm_image_free(&in->image);
}

/* The files o names (not its image) into in: -1 having said why. */
static int read_files(const struct vm_start_opts *o, struct inputs *in)
{
	if (o->user_data && (read_file(o->user_data, &in->user_data) < 0 ||
			     cidata_check_user_data(o->user_data,
						    in->user_data.p,
						    in->user_data.len,
						    NULL) < 0))
		return -1;
	if (o->network_config &&
	    (read_file(o->network_config, &in->network_config) < 0 ||
	     cidata_check_yaml(o->network_config, in->network_config.p,
			       in->network_config.len) < 0))
		return -1;
	if (o->kernel && access(o->kernel, R_OK) < 0)
		return error_errno("--kernel %s", o->kernel);
	if (o->initrd && access(o->initrd, R_OK) < 0)
		return error_errno("--initrd %s", o->initrd);
	return 0;
}

int vm_start_check_files(const struct vm_start_opts *o)
{
	struct inputs in = { BUF_INIT, BUF_INIT, { 0 }, 0 };
	int ret = read_files(o, &in);

	inputs_free(&in);
	return ret;
}

/* The image node like was made from, into img, as it is now: still
 * there (a store's image can be removed) and, a project's, still in it. */
static int like_image(const struct vm *like, struct vm_image *img)
{
	vm_image_copy(img, &like->spec.image);
	if (access(img->disk, R_OK) < 0)
		return error_errno("node %s's image %s (%s), which a new node "
				   "is made like, is gone; give --image",
				   vm_name(like), img->ref, img->disk);
	return vm_image_recheck(img);
}

/* An existing VM's disk stays on the image it was made from. */
static int check_image(const struct vm *vm, const struct vm_image *img,
		       const char *named)
{
	if (same_str(img->disk, vm->spec.image.disk))
		return 0;
	return errorf("VM %s was made from image %s; its disk cannot move to "
		      "%s. Delete it first ('nook local delete %s') or start "
		      "another name", vm->name, vm->spec.image.ref, named,
		      vm->name);
}

/* 1 when the --image named is a path, as vm_image_resolve() takes it: a
 * file here of that name, outside a project, is one (not the store's
 * image of that name, not even the default's). */
static int image_is_path(const struct vm_start_opts *o)
{
	struct stat st;

	return o->image && (strchr(o->image, '/') ||
			    (!o->image_within && stat(o->image, &st) == 0));
}

/* A VM made from an image outside the store, named the default image:
 * refused before the default is made (minutes of a pull or a build when
 * the store has none), as check_image() would refuse it after. */
static int check_not_default(const struct vm *vm,
			     const struct vm_start_opts *o)
{
	const struct vm_image none = { 0 };
	const char *was = vm->spec.image.disk;
	char *store, *real, *disk;
	int in_store;

	if (!vm->exists || !o->image || strcmp(o->image, IMG_DEFAULT) ||
	    !was || image_is_path(o))
		return 0;
	store = xasprintf("%s/images", vm->dirs->data);
	real = realpath(store, NULL);
	disk = realpath(was, NULL);
	/* one in the store (or gone from it) is compared once it is made;
	 * one gone from elsewhere is not in it, as recorded */
	in_store = path_under(real ? real : store, disk ? disk : was) ||
		   path_under(store, was);
	free(store);
	free(real);
	free(disk);
	return in_store ? 0 : check_image(vm, &none, o->image);
}

/* The files and the image o names into in; a node made like another
 * (like) its image, as that image is now. */
static int read_inputs(struct vm *vm, const struct vm_start_opts *o,
		       const struct vm *like, struct inputs *in)
{
	const char *ref = o->image ? o->image : IMG_DEFAULT;
	int as_like = !o->image && like;

	if (read_files(o, in) < 0)
		return -1;
	if (vm->exists && !o->image)
		return 0;
	if (check_not_default(vm, o) < 0)
		return -1;
	/* named or not, the default image is made when missing */
	if (!as_like && !strcmp(ref, IMG_DEFAULT) && !image_is_path(o)) {
		struct img_build_opts b = { vm->dirs->recipes, vm->dirs->cache,
					    o->image_report, o->image_ctx };

		if (img_ensure_default(vm->dirs->data, &b) < 0)
			return -1;
	}
	/* a first start holds it until its record names the image
	 * (boot_qemu()): an image removed meanwhile would be one this VM's
	 * disk is made on. A VM made already keeps the image it has. */
	if (!vm->exists) {
		vm->image_lock = img_lock(vm->dirs->data, 1);
		if (vm->image_lock < 0)
			return -1;
	}
	if (as_like) {
		in->have_image = 1;
		return like_image(like, &in->image);
	}
	/* unnamed, the default is the store's: a within makes a name a
	 * store name only, never a file of that name here */
	if (vm_image_resolve(vm->dirs->data, ref,
			     o->image ? o->image_within : vm->dirs->data,
			     &in->image) < 0)
		return -1;
	in->have_image = 1;
	return 0;
}

/* Keep a copy of an input in the VM's directory: the VM's own record of
 * what it was given. *changed says whether it differs from the last;
 * one that does not is left as it is (a start on a nearly full disk
 * need not find room for it again). */
static int keep_copy(struct vm *vm, const char *base, const struct buf *b,
		     char **field, int *changed)
{
	char *dst = xasprintf("%s/%s", vm->paths.dir, base);
	struct buf old = BUF_INIT;
	int ret = 0;

	*changed = !*field || read_file_quiet(dst, &old) < 0 ||
		   old.len != b->len || memcmp(old.p, b->p, b->len);
	buf_free(&old);
	if (*changed)
		ret = write_file_atomic(dst, b->p, b->len, 0600);
	if (ret == 0)
		set_str(field, dst);
	free(dst);
	return ret;
}

/* A cluster node's place: its second NIC and its address. */
static int make_node(struct vm_spec *s, const struct vm_node *node)
{
	struct net_subnet sn;
	char addr[64];

	if (net_subnet_parse(node->subnet, &sn) < 0 ||
	    net_node_address(&sn, node->node, addr) < 0)
		return -1;
	s->nics = xrealloc(s->nics, sizeof(*s->nics) * 2);
	vm_nic_user(&s->nics[1], "", NULL, 0);
	s->nics[1].kind = VM_NIC_CLUSTER;
	net_node_mac(node->cluster, node->node, s->nics[1].mac);
	s->nnics = 2;
	set_str(&s->cluster, node->cluster);
	set_str(&s->address, addr);
	s->node = node->node;
	s->prefix = sn.prefix;
	return 0;
}

/* A new VM's spec: what it was made from, its identity and its NIC. */
static int make_spec(struct vm *vm, struct inputs *in,
		     const struct vm_node *node)
{
	struct vm_spec *s = &vm->spec;
	char mac[18];

	set_str(&s->name, vm->name);
	s->image = in->image;
	memset(&in->image, 0, sizeof(in->image)); /* the spec owns it now */
	in->have_image = 0;
	s->instance_id = new_instance_id();
	if (!s->instance_id)
		return error_errno("cannot make the VM's instance-id");
	set_str(&s->accel, "auto");
	net_mac("", vm->name, 0, mac);
	s->nics = xmalloc(sizeof(*s->nics));
	vm_nic_user(&s->nics[0], mac, NULL, 0);
	s->nnics = 1;
	return node ? make_node(s, node) : 0;
}

/* VM name's disk (or the base image of a new one) at path, *have bytes,
 * against --disk want: a disk does not shrink. */
static int check_disk(const char *name, const char *path, uint64_t want,
		      uint64_t *have)
{
	if (vm_disk_size(path, have) < 0)
		return -1;
	if (want < *have)
		return errorf("--disk cannot shrink VM %s's disk (%lluM now)",
			      name, (unsigned long long)(*have >> 20));
	return 0;
}

static int apply_disk(struct vm *vm, const struct vm_start_opts *o)
{
	uint64_t have;
	int is_new = !vm->exists;

	if (!o->disk)
		return 0;
	if (check_disk(vm->name, is_new ? vm->spec.image.disk : vm->paths.disk,
		       o->disk, &have) < 0)
		return -1;
	if (o->disk > have && !is_new)
		say(o, "disk: %lluM -> %lluM (the guest grows its file system "
		    "on boot)", (unsigned long long)(have >> 20),
		    (unsigned long long)(o->disk >> 20));
	vm->spec.disk = o->disk;
	return 0;
}

/* A string setting: changed when given and different, saying so for a
 * VM that exists. */
static void apply_str(struct vm *vm, const struct vm_start_opts *o,
		      const char *what, char **field, const char *want)
{
	if (!want || same_str(*field, want))
		return;
	if (vm->exists)
		say(o, "%s: %s -> %s", what, *field ? *field : "default", want);
	set_str(field, want);
}

/* A direct boot with no kernel (the image's, or --kernel's): -1 said. */
static int kernel_check(const char *boot, int kernel, const char *image)
{
	if (!strcmp(boot, "direct") && !kernel)
		return errorf("--boot direct needs a kernel: image %s has "
			      "none; give --kernel", image);
	return 0;
}

static int apply_boot(struct vm *vm, const struct vm_start_opts *o)
{
	struct vm_spec *s = &vm->spec;
	const char *boot;

	if (!o->boot && !o->kernel && vm->exists)
		return 0;
	boot = o->boot ? o->boot : o->kernel || s->kernel || s->image.kernel ?
	       "direct" : "disk";
	if (kernel_check(boot, s->kernel || s->image.kernel, s->image.ref) < 0)
		return -1;
	apply_str(vm, o, "boot", &s->boot, boot);
	return 0;
}

/* Apply what this start asks for to the spec, saying what changes for a
 * VM that exists. */
static int apply(struct vm *vm, const struct vm_start_opts *o,
		 struct inputs *in)
{
	struct vm_spec *s = &vm->spec;
	struct vm_nic *up;

	if (!vm->exists && make_spec(vm, in, o->node) < 0)
		return -1;
	/* the same disk named again: checked as named this time (a VM made
	 * before images were checked again becomes so) */
	if (vm->exists && in->have_image &&
	    same_str(in->image.disk, s->image.disk))
		set_str(&s->image.within, in->image.within);
	if (vm->exists && in->have_image &&
	    check_image(vm, &in->image, o->image) < 0)
		return -1;
	if (o->cpus && o->cpus != s->cpus) {
		if (vm->exists)
			say(o, "cpus: %d -> %d", s->cpus, o->cpus);
		s->cpus = o->cpus;
	}
	if (o->memory && o->memory != s->memory) {
		if (vm->exists)
			say(o, "memory: %lluM -> %lluM",
			    (unsigned long long)(s->memory >> 20),
			    (unsigned long long)(o->memory >> 20));
		s->memory = o->memory;
	}
	if (apply_disk(vm, o) < 0)
		return -1;
	up = &s->nics[0];
	if (o->ports_given) {
		char mac[18];

		if (vm->exists)
			say(o, "ports: now as given (%zu forward%s)", o->nports,
			    o->nports == 1 ? "" : "s");
		memcpy(mac, up->mac, sizeof(mac));
		vm_nic_free(up);
		vm_nic_user(up, mac, o->ports, o->nports);
	}
	apply_str(vm, o, "accel", &s->accel, o->accel);
	apply_str(vm, o, "cpu", &s->cpu, o->cpu);
	if (o->kernel) {
		/* kept as absolute paths: a later start is made from
		 * wherever its user is */
		char *kernel = path_absolute(o->kernel);
		char *initrd = o->initrd ? path_absolute(o->initrd) : NULL;

		if (!kernel || (o->initrd && !initrd)) {
			error_errno("%s", !kernel ? o->kernel : o->initrd);
			free(kernel);
			return -1;
		}
		apply_str(vm, o, "kernel", &s->kernel, kernel);
		set_str(&s->initrd, initrd);
		set_str(&s->kernel_within, o->kernel_within);
		free(kernel);
		free(initrd);
	}
	apply_str(vm, o, "kernel arguments added", &s->append, o->append);
	if (apply_boot(vm, o) < 0)
		return -1;
	if (o->reprovision && vm->exists) {
		char *iid = new_instance_id();

		if (!iid)
			return error_errno("cannot make an instance-id");
		say(o, "instance-id: %s -> %s (cloud-init provisions again)",
		    s->instance_id, iid);
		free(s->instance_id);
		s->instance_id = iid;
	}
	return 0;
}

/* The login user: the image's, unless the user-data makes its own users
 * without the default one. Decided when cloud-init provisions. */
static int login_user(struct vm *vm, const struct vm_start_opts *o,
		      const struct inputs *in)
{
	const char *file = o->user_data ? o->user_data : vm->spec.user_data;
	struct buf kept = BUF_INIT;
	const struct buf *ud = &in->user_data;
	char *user = NULL;
	int rc;

	if (vm->exists && !o->reprovision)
		return 0;
	/* a reprovision without new user-data provisions the kept copy */
	if (!o->user_data && file) {
		if (read_file(file, &kept) < 0)
			return -1;
		ud = &kept;
	}
	rc = cidata_login_user(file ? file : "user-data", file ? ud->p : NULL,
			       file ? ud->len : 0, vm->spec.image.user, &user);
	buf_free(&kept);
	if (rc < 0)
		return -1;
	if (vm->exists && !same_str(user, vm_spec_login(&vm->spec)))
		say(o, "login user: now %s", user);
	free(vm->spec.user);
	vm->spec.user = user;
	return 0;
}

static int keep_inputs(struct vm *vm, const struct vm_start_opts *o,
		       const struct inputs *in)
{
	int changed;

	if (login_user(vm, o, in) < 0)
		return -1;

	if (o->user_data) {
		if (keep_copy(vm, "user-data", &in->user_data,
			      &vm->spec.user_data, &changed) < 0)
			return -1;
		if (vm->exists && changed && !o->reprovision)
			say(o, "user-data: changed; cloud-init applies it only "
			    "to a new instance: add --reprovision");
	}
	if (o->network_config) {
		if (keep_copy(vm, "network-config", &in->network_config,
			      &vm->spec.network_config, &changed) < 0)
			return -1;
		if (vm->exists && changed && !o->reprovision)
			say(o, "network-config: changed; add --reprovision to "
			    "apply it");
	}
	return 0;
}

static int decide_accel(const struct vm_start_opts *o, const char *want,
			enum vm_accel *a)
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
		say(o, "accel: tcg (software emulation; slower): %s", why);
	return 0;
}

/* The uplink for this start: ssh first (the remembered port while it is
 * still free, else a new one, quietly), then the user's forwards, free
 * ports picked for HOST 0 that none of the others has. */
static int resolve_uplink(struct vm_spec *s, struct vm_nic *out)
{
	const struct vm_nic *up = &s->nics[0];
	struct net_port *p;

	vm_nic_free(out); /* a launch again: the last one's */
	vm_nic_user(out, up->mac, NULL, 0);
	out->ports = p = xrealloc(out->ports, sizeof(*p) * (up->nports + 1));
	out->nports = up->nports + 1;
	memset(&p[0], 0, sizeof(p[0]));
	snprintf(p[0].addr, sizeof(p[0].addr), "127.0.0.1");
	p[0].guest = 22;
	memcpy(&p[1], up->ports, sizeof(*p) * up->nports);
	p[0].host = s->ssh_port;
	if (!p[0].host || !net_port_is_free(p[0].addr, p[0].host, 0))
		if (net_port_pick(&p[0], p, out->nports) < 0)
			return -1;
	s->ssh_port = p[0].host;
	for (size_t i = 1; i < out->nports; i++) {
		struct net_port *q = &p[i];

		if (q->host ? net_port_check(q->addr, q->host, q->udp) < 0
			    : net_port_pick(q, p, out->nports) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (p[j].host == q->host && p[j].udp == q->udp)
				return errorf("host port %d is forwarded twice",
					      q->host);
	}
	return 0;
}

void vm_build_argv(struct vm *vm, enum vm_accel accel,
		   const struct vm_nic *uplink, const char *switch_dir,
		   int one_cpu, struct strvec *argv)
{
	struct vm_nic *nics = xmalloc(sizeof(*nics) * vm->spec.nnics);
	struct buf cmdline = BUF_INIT;
	struct vm_boot boot = { 0 };
	struct vm_launch l = { 0 };
	char *machine;

	memcpy(nics, vm->spec.nics, sizeof(*nics) * vm->spec.nnics);
	nics[0] = *uplink;
	l.accel = accel;
	l.qemu = "qemu-system-x86_64";
	/* the versioned type, not the q35 alias, whose meaning changes with
	 * QEMU's version: a save names the machine it was made on */
	machine = vm_machine_pinned(l.qemu);
	l.machine = machine;
	vm_kernel_args(&vm->spec, accel, &cmdline);
	if (one_cpu)
		buf_addf(&cmdline, " %s", VM_ONE_CPU_ARG);
	l.cmdline = cmdline.p;
	if (!strcmp(vm->spec.boot, "direct")) {
		char *cache = xasprintf("%s/cache/boot", vm->dirs->data);
		const char *kernel, *initrd;

		vm_spec_kernel(&vm->spec, &kernel, &initrd);
		vm_boot_prepare(cache, l.qemu, kernel, initrd, vm->spec.memory,
				&boot);
		free(cache);
		l.boot = &boot;
	}
	l.nics = nics;
	l.nnics = vm->spec.nnics;
	l.switch_dir = switch_dir;
	vm_qemu_argv(&vm->spec, &vm->paths, &l, argv);
	vm_boot_free(&boot);
	buf_free(&cmdline);
	free(machine);
	free(nics);
}

static const char *accel_name(enum vm_accel a)
{
	return a == VM_ACCEL_KVM ? "kvm" : "tcg";
}

/* Whether host port p's forward is one the user fixed (HOST given), not
 * ssh's or one picked for HOST 0, which may move. */
static int fixed_port(const struct vm_spec *s, const struct net_port *p)
{
	const struct vm_nic *up = &s->nics[0];

	for (size_t i = 0; i < up->nports; i++)
		if (up->ports[i].host == p->host && up->ports[i].udp == p->udp)
			return 1;
	return 0;
}

/* Launches tried at most while another program takes a host port that
 * was free a moment before (another nook picking at once, or any
 * program's outgoing connection). */
#define LAUNCH_TRIES 3

/* The forwards of uplink up (ssh's first) that may move when another
 * program takes their host port, copied to out (room for up->nports):
 * none on the last attempt; else ssh's, and those not fixed by the user.
 * How many. */
static size_t movable_ports(const struct vm_spec *s, const struct vm_nic *up,
			    int attempt, struct net_port *out)
{
	size_t n = 0;

	for (size_t i = 0; i < up->nports && attempt < LAUNCH_TRIES; i++)
		if (i == 0 || !fixed_port(s, &up->ports[i]))
			out[n++] = up->ports[i];
	return n;
}

/* Pick again the forward of up that QEMU found taken (say so): -1 when
 * no port is free. */
static int pick_again(struct vm *vm, const struct vm_start_opts *o,
		      struct vm_nic *up, const struct net_port *taken)
{
	say(o, "VM %s: host port %d/%s was taken as QEMU started; picking "
	    "another", vm->name, taken->host, net_proto(taken->udp));
	for (size_t i = 0; i < up->nports; i++) {
		struct net_port *p = &up->ports[i];

		if (p->host != taken->host || p->udp != taken->udp)
			continue;
		if (net_port_pick(p, up->ports, up->nports) < 0)
			return -1;
		if (i == 0)
			vm->spec.ssh_port = p->host;
	}
	return 0;
}

/* The suspended VM's forwards as its QEMU had them, each still free:
 * one that moves (ssh's, or a HOST 0 one) gets another free port, as a
 * boot would (forwards are not in the saved memory); a fixed one
 * another program holds now stops the resume, saying which and what to
 * do, rather than cost the guest's memory (-1). */
static int free_forwards(struct vm *vm, struct vm_nic *up)
{
	for (size_t i = 0; i < up->nports; i++) {
		struct net_port *p = &up->ports[i];

		if (!p->host || net_port_is_free(p->addr, p->host, p->udp))
			continue;
		if (i > 0 && fixed_port(&vm->spec, p))
			return errorf("VM %s is suspended, and its forward from "
				      "host port %s:%d/%s is another program's "
				      "now: free it and start again, or 'nook "
				      "local start %s --cold' boots it cold "
				      "(its saved state is lost)", vm->name,
				      p->addr, p->host, net_proto(p->udp),
				      vm->name);
		if (net_port_pick(p, up->ports, up->nports) < 0)
			return -1;
		if (i == 0)
			vm->spec.ssh_port = p->host;
	}
	return 0;
}

/* What is left of --timeout since QEMU's launch began (all of it when
 * this start launched none: a VM found running): at least 1 s. */
static int time_left(const struct vm_start_result *r)
{
	long long left = r->timeout_s - (mono_ms() - r->launch_ms) / 1000;

	if (!r->launch_ms)
		return r->timeout_s;
	return left > 1 ? (int)left : 1;
}

/* vm_resume()'s answer, picking again a port QEMU found taken. */
static int resume_launch(struct vm *vm, const struct vm_start_opts *o,
			 struct vm_start_result *r, struct vm_nic *up,
			 const char *sw, struct buf *why)
{
	struct strvec argv = STRVEC_INIT;
	struct net_port *movable = xmalloc(sizeof(*movable) * up->nports);
	struct net_port taken;
	int rc;

	r->launch_ms = mono_ms();
	for (int attempt = 1;; attempt++) {
		/* the save is the guest's memory: not thrown away because
		 * another program holds a port for a while */
		if (free_forwards(vm, up) < 0) {
			rc = -1;
			break;
		}
		strvec_clear(&argv);
		vm_build_argv(vm, r->accel, up, sw, 0, &argv);
		rc = vm_resume(vm, &argv, accel_name(r->accel), time_left(r),
			       up, &r->pid, why, movable,
			       movable_ports(&vm->spec, up, attempt, movable),
			       &taken);
		if (rc != VM_LAUNCH_TAKEN)
			break;
		if (pick_again(vm, o, up, &taken) < 0) {
			rc = -1;
			break;
		}
	}
	strvec_clear(&argv);
	free(movable);
	return rc;
}

/*
 * A suspended VM: back from its save (1), or, when the save does not fit
 * or will not load, the save removed and the VM stopped for a cold boot,
 * saying why (0). -1 on an error that ends the start.
 */
static int resume(struct vm *vm, const struct vm_start_opts *o,
		  struct vm_start_result *r, struct vm_nic *up, const char *sw)
{
	struct buf why = BUF_INIT;
	double t0 = mono_s();
	int rc = 0;

	if (o->reprovision) {
		buf_adds(&why, "--reprovision needs a boot");
	} else if (vm_uplink_recorded(vm, up) < 0) {
		buf_adds(&why, "its forwards cannot be read back");
	} else {
		rc = resume_launch(vm, o, r, up, sw, &why);
	}
	if (rc == VM_LAUNCH_STOPPED)
		r->stopped = vm_take_stop_mark(&vm->paths);
	if (rc > 0)
		vm_port_reconcile(vm);
	if (rc > 0) {
		r->launched = r->resumed = 1;
		r->reached = VM_PHASE_READY;
		say(o, "VM %s: resumed from its saved state in %.1f s (pid %d, "
		    "%s), ssh on 127.0.0.1:%d", vm->name, mono_s() - t0,
		    (int)r->pid, accel_name(r->accel), vm->spec.ssh_port);
	} else if (rc == 0) {
		say(o, "VM %s: its saved state cannot be used: %s; booting cold "
		    "(the save is removed)", vm->name, why.p);
		vm_save_remove(vm);
		vm_nic_free(up);
		memset(up, 0, sizeof(*up));
		if (vm_record(vm, VM_STOPPED, 0, NULL, NULL) < 0)
			rc = -1;
	}
	buf_free(&why);
	return rc;
}

/*
 * Whether this boot runs on one vCPU: asked for (o->boot_one_cpu), under
 * TCG, a direct boot (whose kernel arguments are ours), more than one
 * vCPU, the rest brought online by nook (so not with --no-wait), and no
 * CPU argument of the user's. Under TCG a guest's vCPU spins while it
 * waits for another (a TLB flush, a lock); with more vCPU threads than
 * host cores the one it waits for is often not running: a 3-node
 * cluster on 2 cores took 111.6 s, and 95.5 s on one vCPU each (medians
 * the same day).
 */
static int boots_one_cpu(const struct vm *vm, const struct vm_start_opts *o,
			 enum vm_accel accel)
{
	const char *a = vm->spec.append ? vm->spec.append : "";

	return o->boot_one_cpu && accel == VM_ACCEL_TCG && !o->no_wait &&
	       vm->spec.cpus > 1 && !strcmp(vm->spec.boot, "direct") &&
	       !strstr(a, "maxcpus=") && !strstr(a, "nosmp") &&
	       !strstr(a, "nr_cpus=");
}

/* 1 when QEMU pid's kernel arguments end in VM_ONE_CPU_ARG (nook's
 * own: a user's maxcpus=1 is not followed by its second word). */
static int booted_one_cpu(pid_t pid)
{
	const char *one = " " VM_ONE_CPU_ARG;
	struct buf b = BUF_INIT;
	char path[64];
	int is = 0;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (pid > 0 && read_file_quiet(path, &b) == 0) {
		/* NUL-separated: the word after "-append" */
		for (const char *p = b.p, *prev = ""; p < b.p + b.len;
		     prev = p, p += strlen(p) + 1) {
			size_t n = strlen(p), k = strlen(one);

			if (!strcmp(prev, "-append") && n >= k &&
			    !strcmp(p + n - k, one))
				is = 1;
		}
	}
	buf_free(&b);
	return is;
}

/* A VM booted on one vCPU: the others online now (as root, sudo), unless
 * the wait did it (done). A warning saying how when that fails: the VM
 * runs, on fewer vCPUs. */
static void online_cpus(struct vm *vm, const struct vm_start_opts *o,
			int done)
{
	static const char *const cmd[] = {
		"sudo", "-n", "sh", "-c", CIDATA_ONLINE_CPUS_SH, NULL
	};
	struct strvec argv = STRVEC_INIT;
	struct buf out = BUF_INIT;
	struct ssh_target t;
	int rc = -1;

	if (done)
		rc = 0;
	else if (vm_ssh(vm, NULL, 0, &t) == 0) {
		ssh_argv(&t, -1, NULL, cmd, &argv);
		rc = run_capture_timeout((const char *const *)argv.v, &out,
					 30000);
	}
	if (rc != 0)
		warnf("VM %s booted on one vCPU (its cluster's vCPUs outnumber "
		      "this host's cores) and the other %d could not be "
		      "brought online%s%.*s; in the VM, 'sudo chcpu -e 1-%d' "
		      "does it", vm->name, vm->spec.cpus - 1,
		      out.len ? ": " : "", (int)strcspn(out.p ? out.p : "",
							"\n"),
		      out.p ? out.p : "", vm->spec.cpus - 1);
	else
		say(o, "VM %s: all %d vCPUs online (it booted on one: its "
		    "cluster's vCPUs outnumber this host's cores)", vm->name,
		    vm->spec.cpus);
	strvec_clear(&argv);
	buf_free(&out);
}

/* Whether the name of plain VM vm, just recorded, was claimed since its
 * start looked: a cluster's first start saves its record (the cluster's
 * name, its nodes' names), then looks for VMs of those names (vm.json)
 * again. Of the two, each writes before it looks, so one at least sees
 * the other and gives way; both may. The record is removed then (-1). */
static int name_taken_since(struct vm *vm)
{
	int taken = vm_plain_name_check(vm->dirs, vm->name) < 0;

	if (!taken && vm_cluster_exists(vm->dirs, vm->name))
		taken = errorf("%s is a cluster now: its first start ran "
			       "beside this one; 'nook local start %s' starts "
			       "it", vm->name, vm->name) < 0;
	if (!taken)
		return 0;
	if (unlink(vm->paths.json) < 0 && errno != ENOENT)
		warnf("VM %s: cannot remove %s: %s", vm->name, vm->paths.json,
		      strerror(errno));
	vm->exists = 0;
	return -1;
}

/* A first start's directories (the VM's and its runtime one) removed by
 * a signal's cleanup (on), or no longer. */
static void hold_dirs(const struct vm *vm, int on)
{
	if (on) {
		tmp_register(vm->paths.dir);
		tmp_register(vm->paths.run);
	} else {
		tmp_unregister(vm->paths.dir);
		tmp_unregister(vm->paths.run);
	}
}

/* QEMU from a cold boot, for the uplink resolved in *up: recorded
 * starting, launched, and launched again on other ports while it finds
 * one nook picked taken. vm_launch()'s answer; a plain VM new with this
 * start whose name was taken meanwhile is forgotten (vm->exists 0). */
static int boot_qemu(struct vm *vm, const struct vm_start_opts *o,
		     struct vm_start_result *r, struct vm_nic *up,
		     const char *sw, int plain_first)
{
	struct strvec argv = STRVEC_INIT;
	struct net_port *movable = NULL, taken;
	struct sigaction old[3];
	int rc = -1;

	r->launch_ms = mono_ms();
	for (int attempt = 1;; attempt++) {
		if (attempt > 1 && resolve_uplink(&vm->spec, up) < 0)
			break;
		strvec_clear(&argv);
		vm_build_argv(vm, r->accel, up, sw,
			      boots_one_cpu(vm, o, r->accel), &argv);
		/* from here on the VM exists, even if QEMU fails */
		if (vm_record(vm, VM_STARTING, 0, NULL, up) < 0)
			break;
		/* its record names its image: a remove finds the VM now,
		 * and QEMU may take minutes to come up */
		vm_image_unlock(vm);
		if (attempt == 1 && plain_first && name_taken_since(vm) < 0)
			break;
		r->console_at = file_size(vm->paths.console_log);
		movable = xrealloc(movable, sizeof(*movable) * up->nports);
		/* QEMU will use the directories: a signal no longer takes
		 * them, and waits until QEMU is up (or not): a node's network
		 * is not stopped under a QEMU still plugging into it */
		hold_dirs(vm, 0);
		sig_catch(old, 1);
		rc = vm_launch(&vm->paths, (const char *const *)argv.v,
			       time_left(r), &r->pid, movable,
			       movable_ports(&vm->spec, up, attempt, movable),
			       &taken);
		sig_catch(old, 0);
		r->signal = sig_caught;
		if (rc == VM_LAUNCH_TAKEN && r->signal)
			errorf("VM %s: interrupted (%s) as its QEMU found a port "
			       "taken, before it picked another: nothing runs",
			       vm->name, strsignal(r->signal));
		if (rc != VM_LAUNCH_TAKEN || r->signal)
			break;
		/* ssh's is kept while free: not this one; the others are
		 * picked at each resolve_uplink() */
		rc = -1;
		if (pick_again(vm, o, up, &taken) < 0)
			break;
	}
	free(movable);
	strvec_clear(&argv);
	return rc;
}

/* -1 saying so when a direct boot's whole kernel command line (the
 * image's arguments, nook's own, --append, and the one-vCPU boot's)
 * would be longer than a kernel takes: it would be cut, and nook's own
 * (the console, the NoCloud seed) lost with the end. */
static int kernel_args_fit(const struct vm *vm, enum vm_accel accel)
{
	struct buf line = BUF_INIT;
	size_t n;

	if (strcmp(vm->spec.boot, "direct"))
		return 0;
	vm_kernel_args(&vm->spec, accel, &line);
	n = line.len + 1 + strlen(VM_ONE_CPU_ARG);
	buf_free(&line);
	if (n < IMG_CMDLINE_MAX)
		return 0;
	return errorf("VM %s: its kernel command line (the image's "
		      "arguments, nook's own and --append's) would be %zu "
		      "bytes, and a kernel takes at most %d: shorten --append "
		      "or the image's", vm->name, n, IMG_CMDLINE_MAX - 1);
}

/*
 * A start that failed before QEMU ran, as the last error said, because
 * the disk holding the VM's directory is full (ENOSPC, with under 1M or
 * no inode left there): said again as such, with how much is free and
 * what to do. Nothing said for another error, or when that disk has
 * room (the full one may be another: TMPDIR's). made: a new VM.
 */
static void full_disk(const struct vm *vm, int made)
{
	char free_s[32];
	long long left;
	int no_inode = 0;

	if (!strstr(error_last(), strerror(ENOSPC)))
		return;
	left = vm_room_left(vm->paths.dir, free_s, &no_inode);
	if (left < 0 || (left >> 20 && !no_inode))
		return;
	errorf("VM %s was not %s: the disk holding %s is full (%s free%s); "
	       "free space there, then run the start again", vm->name,
	       made ? "made" : "started", vm->paths.dir, free_s,
	       no_inode ? ", no inode free" : "");
}

/* From the lock to a running QEMU, with the uplink as launched in *up. */
static int launch(struct vm *vm, const struct vm_start_opts *o,
		  struct inputs *in, struct vm_start_result *r,
		  struct vm_nic *up)
{
	struct strvec hosts = STRVEC_INIT;
	char *sw = NULL;
	long long seed;
	/* a plain VM made by this start: no cluster's node */
	int plain_first = !vm->exists && !o->node, made = !vm->exists;
	int ret = -1, rc;

	if (apply(vm, o, in) < 0)
		goto out;
	if (keep_inputs(vm, o, in) < 0) {
		full_disk(vm, made);
		goto out;
	}
	if (decide_accel(o, vm->spec.accel, &r->accel) < 0 ||
	    kernel_args_fit(vm, r->accel) < 0)
		goto out;
	/* a node's network runs from its first node's start on */
	if (vm->spec.cluster) {
		sw = vm_cluster_switch_dir(vm->dirs, vm->spec.cluster);
		if (!sw || mkdir_private(sw) < 0 || net_switch_start(sw) < 0)
			goto out;
	}
	if (vm_state_held(vm) == VM_SUSPENDED) {
		rc = resume(vm, o, r, up, sw);
		if (rc) {
			ret = rc > 0 ? 0 : -1;
			goto out;
		}
	}
	/* names are a convenience: a node boots without them */
	if (vm->spec.cluster &&
	    vm_cluster_host_lines(vm->dirs, vm->spec.cluster, &hosts) < 0)
		warnf("VM %s: cluster %s has no record of its nodes: its seed "
		      "names none of them", vm->name, vm->spec.cluster);
	seed = real_us();
	/* the ports first: a fixed one in use stops the start before the
	 * disk grows or the seed is written */
	if (resolve_uplink(&vm->spec, up) < 0)
		goto out;
	rc = vm_prepare(&vm->spec, &vm->paths, &hosts, seed);
	if (rc < 0) {
		full_disk(vm, made);
		goto out;
	}
	/* (a seed kept is the one its record names already) */
	if (rc == 0)
		vm->seed = seed;
	rc = boot_qemu(vm, o, r, up, sw, plain_first);
	if (rc == VM_LAUNCH_STOPPED) {
		r->stopped = vm_take_stop_mark(&vm->paths);
		errorf("VM %s: stopped as its QEMU started (nook local stop "
		       "--force)", vm->name);
	}
	if (rc < 0) {
		/* a record that could not say starting says what it said */
		if (vm->exists && vm->recorded == VM_STARTING &&
		    vm_record(vm, VM_STOPPED, 0, NULL, NULL) < 0)
			warnf("VM %s: its record still says starting", vm->name);
		if (!r->pid)
			full_disk(vm, made);
		goto out;
	}
	r->launched = 1;
	vm->console_at = r->console_at;
	say(o, "VM %s: QEMU running (pid %d, %s), ssh on 127.0.0.1:%d",
	    vm->name, (int)r->pid, accel_name(r->accel), vm->spec.ssh_port);
	ret = vm_record(vm, VM_STARTING, r->pid, accel_name(r->accel), up);
out:
	strvec_clear(&hosts);
	free(sw);
	return ret;
}

/* A QEMU of this VM's runs, but its record is gone (removed by hand: QEMU
 * is launched only once the record is written). Not a VM to wait for or
 * get into: said, with what ends it; a directory this start made for it
 * goes (its runtime directory is the QEMU's, left to prune). -1. */
static int orphan(struct vm *vm, int *made_dir, pid_t pid)
{
	hold_dirs(vm, 0);
	if (*made_dir)
		remove_tree(vm->paths.dir);
	*made_dir = 0;
	return errorf("VM %s has no record (%s is gone), yet its QEMU (pid "
		      "%d) still runs: 'nook local prune' ends it, then a "
		      "start makes the VM anew", vm->name, vm->paths.json,
		      (int)pid);
}

/* Lock first, then look: whether the VM is new is decided under the lock,
 * so of two first starts the one that loses touches nothing. 1 (with
 * *pid) when it runs already and running is allowed (a cluster's node). */
static int lock_and_check(struct vm *vm, int *made_dir, int running_ok,
			  pid_t *pid)
{
	struct stat st;

	*made_dir = stat(vm->paths.dir, &st) < 0;
	if (mkdir_p(vm->paths.dir, 0700) < 0)
		return -1;
	/* a first start that a signal ends before its QEMU is launched
	 * leaves nothing, as one that fails: its directories go with the
	 * process (until boot_qemu() lets go of them) */
	if (*made_dir)
		hold_dirs(vm, 1);
	if (vm_take_lock(vm, "start") < 0) {
		hold_dirs(vm, 0);
		*made_dir = 0;
		return -1;
	}
	if (!vm->exists && lstat(vm->paths.json, &st) == 0) {
		/* made by another nook between our open and our lock */
		hold_dirs(vm, 0);
		*made_dir = 0;
		return errorf("VM %s is busy: another nook has just made it; "
			      "run again", vm->name);
	}
	/* a delete of it cut short: a start keeps it, running or not */
	vm_delete_begin(vm, NULL);
	*pid = vm_pid_alive(vm->paths.pidfile, vm->paths.qmp_arg);
	if (*pid && !vm->exists)
		return orphan(vm, made_dir, *pid);
	if (*pid && running_ok)
		return 1;
	if (*pid && vm_console_panicked(vm->paths.console_log, vm->console_at,
					vm->panic, sizeof(vm->panic)))
		return errorf("VM %s is running (pid %d), but its guest's "
			      "kernel panicked (%s); 'nook local logs %s' shows "
			      "the console, 'nook local stop %s --force' ends it",
			      vm->name, (int)*pid, vm->panic, vm->name,
			      vm->name);
	if (*pid)
		return errorf("VM %s is already running (pid %d); 'nook shell "
			      "%s' gets you in", vm->name, (int)*pid, vm->name);
	/* before anything changes: not its ports, seed or record either */
	return vm_qmp_unclaimed(&vm->paths);
}

/* A guest whose kernel panicked spins its vCPU until someone ends it:
 * end its QEMU now (it takes the cores a cluster's other nodes boot on)
 * and record it crashed (r->crashed); its console log keeps the panic. */
static int end_panicked(struct vm *vm, struct vm_start_result *r,
			const char *panic)
{
	struct buf why = BUF_INIT;
	const char *how;

	snprintf(r->panic, sizeof(r->panic), "%s", panic);
	r->panicked = 1;
	if (vm_stop_qemu(&vm->paths, 1, 0, &how, &why) < 0)
		warnf("VM %s: its QEMU (pid %d) could not be ended: %s",
		      vm->name, (int)r->pid, why.p ? why.p : how);
	else if (vm_record(vm, VM_CRASHED, 0, NULL, NULL) < 0)
		warnf("VM %s: its record could not say it crashed", vm->name);
	else
		r->crashed = 1;
	buf_free(&why);
	return -1;
}

/* A guest resumed whose kernel had panicked before its suspend (its
 * console's part since its boot ends with the panic) spins on as it did:
 * ended as one that panics while a start waits, unless its sshd answers
 * after all. One whose sshd systemd had given up on is no readier now,
 * unless its sshd was started since (it refuses no connection): left up
 * to look at, as one found running (await_running()). */
static int check_resumed(struct vm *vm, struct vm_start_result *r)
{
	char panic[sizeof(r->panic)];

	if (vm_console_panicked(vm->paths.console_log, vm->console_at, panic,
				sizeof(panic)) &&
	    ssh_banner("127.0.0.1", vm->spec.ssh_port, 2000) != 1)
		return end_panicked(vm, r, panic);
	if (vm_console_sshd_failed(vm->paths.console_log, vm->console_at,
				   r->sshd_failed, sizeof(r->sshd_failed)) &&
	    ssh_banner("127.0.0.1", vm->spec.ssh_port, 2000) < 0)
		return -1;
	r->sshd_failed[0] = '\0';
	return 0;
}

/* What a wait for ready (rc) found, in r and in the record: a VM the
 * wait left booting (timed out, interrupted) is recorded running. */
static int settle(struct vm *vm, struct vm_start_result *r,
		  const struct vm_ready *w, const struct vm_nic *up, int rc)
{
	r->cpus_online = w->cpus_online;
	r->hosts_ok = w->hosts_ok;
	r->reached = w->reached;
	r->crashed = w->crashed;
	r->timed_out = w->timed_out;
	r->cloud_init_rc = w->cloud_init_rc;
	r->no_room = w->no_room ? vm_no_room(vm) : NULL;
	memcpy(r->sshd_failed, w->sshd_failed, sizeof(r->sshd_failed));
	if (w->panicked)
		return end_panicked(vm, r, w->panic);
	/* gone because 'stop --force' ended it: a stop, not a crash. Its
	 * mark goes once the record says stopped: a status between the two
	 * would see a QEMU gone with neither, and call it crashed */
	if (w->crashed && vm_stop_marked(&vm->paths)) {
		r->stopped = 1;
		vm_record(vm, VM_STOPPED, 0, NULL, NULL);
		vm_take_stop_mark(&vm->paths);
		return -1;
	}
	/* a QEMU gone during the wait: crashed, or stopped when the guest
	 * powered itself off, as the holder of the lock sees it */
	if ((w->crashed || vm->recorded != VM_RUNNING) &&
	    vm_record(vm, w->crashed ? vm_state_held(vm) : VM_RUNNING,
		      w->crashed ? 0 : r->pid, accel_name(r->accel), up) < 0)
		return -1;
	return rc;
}

static int wait_ready(struct vm *vm, const struct vm_start_opts *o,
		      struct vm_start_result *r, const struct vm_nic *up)
{
	struct ssh_target t;
	struct vm_ready w = { 0 };
	struct sigaction old[3];
	int rc;

	vm_ssh(vm, NULL, 0, &t);
	w.ssh = &t;
	w.paths = &vm->paths;
	w.pid = r->pid;
	w.timeout_s = time_left(r);
	w.progress = progress;
	w.ctx = (void *)o;
	w.online_cpus = !r->resumed && booted_one_cpu(r->pid);
	w.hosts = o->node && o->node->hosts && o->node->hosts->n ?
		  o->node->hosts : NULL;
	w.console_from = r->console_at;
	/* A signal (^C) ends the wait, not nook: the VM goes on booting,
	 * recorded running (else pause, suspend and port took it for one
	 * still starting for good), and a crowded boot's QEMU is scheduled
	 * as before; then nook ends as the signal would have. */
	sig_catch(old, 1);
	/* a crowded boot shares the cores as throughput work; also one an
	 * interrupted start left so, found running */
	if (w.online_cpus)
		vm_sched_boot(r->pid, 1);
	rc = vm_wait_ready(&w);
	if (w.online_cpus && vm_pid_is_ours(r->pid, vm->paths.qmp_arg))
		vm_sched_boot(r->pid, 0);
	rc = settle(vm, r, &w, up, rc);
	sig_catch(old, 0);
	sig_rethrow();
	return rc;
}

/* A node's QEMU is plugged into the network process running now: kept
 * for vm_get_info(), which tells a node that process's successor does
 * not reach. */
static void note_link(struct vm *vm)
{
	char *sw = vm_cluster_switch_dir(vm->dirs, vm->spec.cluster);
	char pid[24];
	int n = snprintf(pid, sizeof(pid), "%d\n",
			 sw ? (int)net_switch_alive(sw) : 0);

	write_file_atomic(vm->paths.link, pid, (size_t)n, 0600);
	free(sw);
}

/* QEMU runs: a cluster's node noted on its network's link; recorded
 * running at once after a signal (said, as a wait's ^C says it; the
 * start then ends as the signal would) or with --no-wait; a resumed
 * guest checked (--no-wait or not); else waited for until it is ready. */
static int launched(struct vm *vm, const struct vm_start_opts *o,
		    struct vm_start_result *r, const struct vm_nic *up)
{
	if (vm->spec.cluster)
		note_link(vm);
	if (r->signal)
		progress((void *)o, VM_PHASE_BOOT, 0);
	if (r->signal || (!r->resumed && o->no_wait))
		return vm_record(vm, VM_RUNNING, r->pid, accel_name(r->accel),
				 up);
	if (r->resumed)
		return check_resumed(vm, r);
	return wait_ready(vm, o, r, up);
}

/* A cluster's node found running: wait until it is ready too (an
 * interrupted start's node may not be), recording it running. */
static int await_running(struct vm *vm, const struct vm_start_opts *o,
			 struct vm_start_result *r, pid_t pid)
{
	struct vm_info i;

	vm_get_info(vm, &i);
	if (i.network_cut)
		warnf("node %s ran while its cluster's network process was "
		      "replaced, and QEMU does not plug back in: it is cut off "
		      "from the other nodes until it restarts ('nook local "
		      "stop %s', then 'nook local start %s')", vm->name,
		      vm->name, vm->name);
	r->pid = pid;
	r->launched = r->found_running = 1;
	r->accel = vm->rec_accel && !strcmp(vm->rec_accel, "kvm") ?
		   VM_ACCEL_KVM : VM_ACCEL_TCG;
	if (o->no_wait)
		return 0;
	/* one that panicked before (no one waited) is no start's to wait
	 * for (the wait's own look at the console starts at its start);
	 * ended only when its sshd does not answer either */
	if (i.panic && ssh_banner("127.0.0.1", vm->spec.ssh_port, 2000) != 1)
		return end_panicked(vm, r, i.panic);
	/* likewise one whose sshd systemd gave up on (and that does not
	 * answer): left up to look at */
	if (i.sshd_failed) {
		snprintf(r->sshd_failed, sizeof(r->sshd_failed), "%s",
			 i.sshd_failed);
		return -1;
	}
	return wait_ready(vm, o, r, NULL);
}

int vm_start_plan_check(const struct nook_dirs *d, const char *name,
			const struct vm_start_opts *o, int node,
			const char *like)
{
	struct inputs in = { BUF_INIT, BUF_INIT, { 0 }, 0 };
	struct vm *vm = NULL, *lk = NULL;
	struct vm_info info;
	enum vm_accel a;
	uint64_t have;
	char *stored = NULL;
	int ret = -1;

	if (vm_start_opts_check(o) < 0 || read_files(o, &in) < 0 ||
	    vm_open(d, name, 0, &vm) < 0)
		goto out;
	/* a running node is only waited for (say_unapplied()) */
	if (vm->exists && node) {
		vm_get_info(vm, &info);
		if (info.pid) {
			ret = 0;
			goto out;
		}
	}
	if (!vm->exists && !o->image && like) {
		if (vm_open(d, like, 1, &lk) < 0 ||
		    like_image(lk, &in.image) < 0)
			goto out;
		vm_image_free(&in.image);
	}
	if (check_not_default(vm, o) < 0)
		goto out;
	/* the default image, named, is made when missing, as unnamed */
	if (o->image && (strcmp(o->image, IMG_DEFAULT) || image_is_path(o) ||
			 img_resolve(d->data, IMG_DEFAULT, &stored) < 0 ||
			 stored) &&
	    vm_image_resolve(d->data, o->image, o->image_within,
			     &in.image) < 0)
		goto out;
	/* (the default image still to be made: nothing to compare yet) */
	if (in.image.disk && vm->exists &&
	    check_image(vm, &in.image, o->image) < 0)
		goto out;
	if (o->disk && (vm->exists || in.image.disk) &&
	    check_disk(name, vm->exists ? vm->paths.disk : in.image.disk,
		       o->disk, &have) < 0)
		goto out;
	/* the image a VM that exists was made from, else the one named */
	if (o->boot && vm->exists &&
	    kernel_check(o->boot, o->kernel || vm->spec.kernel ||
			 vm->spec.image.kernel, vm->spec.image.ref) < 0)
		goto out;
	if (o->boot && !vm->exists && in.image.disk &&
	    kernel_check(o->boot, o->kernel || in.image.kernel,
			 in.image.ref) < 0)
		goto out;
	if (o->accel && !strcmp(o->accel, "kvm") &&
	    decide_accel(o, o->accel, &a) < 0)
		goto out;
	ret = 0;
out:
	free(stored);
	vm_close(lk);
	vm_close(vm);
	inputs_free(&in);
	return ret;
}

/* --append as an image's kernel arguments are held (img_cmdline_valid):
 * a usage error saying why, else 0. */
static int append_check(const char *append)
{
	struct buf why = BUF_INIT;
	int ok = img_cmdline_valid(append, &why);

	if (!ok)
		usage_errorf("--append %s", why.p);
	buf_free(&why);
	return ok ? 0 : -1;
}

int vm_start_opts_check(const struct vm_start_opts *o)
{
	int disk = o->boot && !strcmp(o->boot, "disk");

	if (o->initrd && !o->kernel)
		return errorf("an initrd goes with a kernel: give --kernel (or "
			      "kernel: in nook.yaml)");
	if (disk && (o->kernel || o->append))
		return errorf("%s is for direct boot, not boot disk",
			      o->kernel ? "a kernel" : "kernel arguments "
			      "(--append)");
	if (o->append && append_check(o->append) < 0)
		return -1;
	for (size_t i = 0; i < o->nports; i++)
		for (size_t k = 0; k < i; k++)
			if (net_port_clash(&o->ports[k], &o->ports[i]))
				return errorf("host port %d%s is forwarded "
					      "twice: once is all it can be",
					      o->ports[i].host, o->ports[i].udp ?
					      "/udp" : "");
	return 0;
}

/* ", WHAT: HAD -> WANT" into b when want is given and differs. */
static void unapplied_str(struct buf *b, const char *what, const char *had,
			  const char *want)
{
	if (want && !same_str(had, want))
		buf_addf(b, ", %s: %s -> %s", what, had ? had : "default", want);
}

/* Whether file (a kept copy) holds other bytes than b. */
static int differs(const char *file, const struct buf *b)
{
	struct buf old = BUF_INIT;
	int diff = !file || read_file_quiet(file, &old) < 0 ||
		   old.len != b->len || memcmp(old.p, b->p, b->len);

	buf_free(&old);
	return diff;
}

/* A running node is only waited for: what this start would change in it
 * (as apply() would after a stop) is said, not done. */
static void say_unapplied(const struct vm *vm, const struct vm_start_opts *o,
			  const struct inputs *in)
{
	const struct vm_spec *s = &vm->spec;
	struct buf b = BUF_INIT, never = BUF_INIT;
	char *kernel = o->kernel ? path_absolute(o->kernel) : NULL;
	uint64_t have;

	if (in->have_image && !same_str(in->image.disk, s->image.disk))
		buf_addf(&never, "; its disk cannot move from image %s to %s",
			 s->image.ref, o->image);
	if (o->disk && vm_disk_size(vm->paths.disk, &have) == 0) {
		unsigned long long h = have >> 20, w = o->disk >> 20;

		if (o->disk < have)
			buf_addf(&never, "; its disk cannot shrink from %lluM "
				 "to %lluM", h, w);
		else if (o->disk > have)
			buf_addf(&b, ", disk: %lluM -> %lluM", h, w);
	}
	if (o->cpus && o->cpus != s->cpus)
		buf_addf(&b, ", cpus: %d -> %d", s->cpus, o->cpus);
	if (o->memory && o->memory != s->memory)
		buf_addf(&b, ", memory: %lluM -> %lluM",
			 (unsigned long long)(s->memory >> 20),
			 (unsigned long long)(o->memory >> 20));
	unapplied_str(&b, "accel", s->accel, o->accel);
	unapplied_str(&b, "cpu", s->cpu, o->cpu);
	unapplied_str(&b, "boot", s->boot, o->boot);
	unapplied_str(&b, "kernel", s->kernel, kernel);
	unapplied_str(&b, "kernel arguments added", s->append, o->append);
	if (o->user_data && differs(s->user_data, &in->user_data))
		buf_adds(&b, ", user-data");
	if (o->network_config &&
	    differs(s->network_config, &in->network_config))
		buf_adds(&b, ", network-config");
	if (b.len)
		warnf("VM %s is running, so this start changes nothing in it "
		      "(%s); stop it, then start it with them", vm->name,
		      b.p + 2);
	if (never.len)
		warnf("VM %s is running, and this start could not change it "
		      "anyway: %s", vm->name, never.p + 2);
	buf_free(&b);
	buf_free(&never);
	free(kernel);
}

/*
 * A cluster's node made like another (o->node->like, which a start that
 * grows a cluster from the command line sets): o, and what o leaves
 * unsaid that node's, into *eff; *like is that node, whose record holds
 * the strings (read_inputs() takes its image). The image, its disk's
 * size and the boot (boot, kernel, initrd, arguments) go together: none
 * when o names an image, or any of the boot. Never its ports: a fixed
 * host port is one node's.
 */
static int made_like(struct vm *vm, const struct vm_start_opts *o,
		     struct vm_start_opts *eff, struct vm **like)
{
	const struct vm_spec *s;

	*eff = *o;
	if (vm_open(vm->dirs, o->node->like, 0, like) < 0)
		return -1;
	if (!(*like)->exists) { /* deleted meanwhile: a new VM's defaults */
		vm_close(*like);
		*like = NULL;
		return 0;
	}
	s = &(*like)->spec;
	if (!o->image) {
		eff->disk = o->disk ? o->disk : s->disk;
		if (!o->boot && !o->kernel && !o->append) {
			eff->boot = s->boot;
			eff->kernel = s->kernel;
			eff->initrd = s->initrd;
			eff->kernel_within = s->kernel_within;
			eff->append = s->append;
		}
	}
	eff->cpus = o->cpus ? o->cpus : s->cpus;
	eff->memory = o->memory ? o->memory : s->memory;
	eff->accel = o->accel ? o->accel : s->accel;
	eff->cpu = o->cpu ? o->cpu : s->cpu;
	eff->user_data = o->user_data ? o->user_data : s->user_data;
	eff->network_config = o->network_config ? o->network_config :
			      s->network_config;
	return 0;
}

int vm_start(struct vm *vm, const struct vm_start_opts *o,
	     struct vm_start_result *r)
{
	struct inputs in = { BUF_INIT, BUF_INIT, { 0 }, 0 };
	struct vm_start_opts eff;
	struct vm_nic up = { 0 };
	struct vm *like = NULL;
	int made_dir = 0, ret = -1, rc;
	pid_t pid = 0;

	memset(r, 0, sizeof(*r));
	current = vm;
	r->cloud_init_rc = -1;
	r->console_at = -1;
	r->timeout_s = o->timeout_s ? o->timeout_s : 900;
	if (vm_start_opts_check(o) < 0)
		goto out;
	if (!vm->exists && !o->node &&
	    vm_plain_name_check(vm->dirs, vm->name) < 0)
		goto out;
	if (!vm->exists && o->node && o->node->like) {
		if (made_like(vm, o, &eff, &like) < 0)
			goto out;
		o = &eff;
	}
	if (read_inputs(vm, o, like, &in) < 0)
		goto out;
	rc = lock_and_check(vm, &made_dir, o->node != NULL, &pid);
	/* the record as the lock found it: what a project's files hold
	 * now, before QEMU opens them (unless this start names others) */
	if (rc < 0 || (rc == 0 &&
		       ((!o->image && vm_image_recheck(&vm->spec.image) < 0) ||
			(!o->kernel && vm_kernel_recheck(&vm->spec) < 0))))
		goto out;
	/* again under the lock: a cluster's start may have claimed the
	 * name since the look before (it saves its record, then makes its
	 * nodes, each under its lock) */
	if (!vm->exists && !o->node &&
	    vm_plain_name_check(vm->dirs, vm->name) < 0) {
		if (made_dir)
			remove_tree(vm->paths.dir);
		goto out;
	}
	/* one an earlier forced stop left is no news, once the record says
	 * stopped: a stop under a nook that records nothing (a port's, a
	 * snapshot's) left it saying the VM ran, and a start that failed
	 * with the mark gone would leave the VM crashed for good */
	if (rc == 0 && vm_stop_marked(&vm->paths) &&
	    vm_state_up(vm->recorded) &&
	    vm_record(vm, VM_STOPPED, 0, NULL, NULL) < 0)
		goto out;
	vm_take_stop_mark(&vm->paths);
	if (rc > 0) {
		/* running already: no disk is made, and the wait is long */
		vm_image_unlock(vm);
		say_unapplied(vm, o, &in);
		ret = await_running(vm, o, r, pid);
		goto out;
	}
	if (o->cold && vm_state_held(vm) == VM_SUSPENDED) {
		if (vm_discard_save(vm) < 0)
			goto out;
		say(o, "VM %s: its saved state is discarded (--cold)", vm->name);
	}
	rc = launch(vm, o, &in, r, &up);
	/* (let go in boot_qemu(), unless the start failed before it) */
	vm_image_unlock(vm);
	if (rc < 0) {
		/* a first start that failed before QEMU ran leaves nothing;
		 * we still hold the lock, so nobody else is making it */
		if (made_dir && !vm->exists) {
			remove_tree(vm->paths.dir);
			remove_tree(vm->paths.run);
			vm->exists = 0;
		}
		goto out;
	}
	ret = launched(vm, o, r, &up);
	/* a node started on its own joins its cluster's names (cloud-init
	 * may have rewritten its /etc/hosts; a node started with --no-wait
	 * may lack its line); a cluster's start writes them on each node */
	if (ret == 0 && !o->no_wait && vm->spec.cluster && !o->node)
		vm_cluster_hosts(vm->dirs, vm->spec.cluster);
out:
	/* also for a node an interrupted start left booting on one vCPU,
	 * and after cloud-init failed: the guest is there to use */
	if (r->launched && !r->resumed && r->reached >= VM_PHASE_CLOUD_INIT &&
	    booted_one_cpu(r->pid))
		online_cpus(vm, o, r->cpus_online);
	if (ret < 0 && r->launched && o->failed)
		o->failed(o->ctx, vm, r);
	if (vm->spec.cluster && !r->launched && !o->node)
		vm->net_gc = 1;
	hold_dirs(vm, 0);
	vm_nic_free(&up);
	inputs_free(&in);
	vm_close(like);
	if (r->signal) {
		sig_caught = r->signal;
		sig_rethrow();
	}
	return ret;
}

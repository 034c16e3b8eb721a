/*
 * Export to libvirt: a VM, or a cluster's nodes and network, as libvirt
 * domain and network XML with the same CPUs, memory, machine type, MACs,
 * PCI slots, boot and seed, written to a directory or defined on a
 * libvirt through virsh (argv only: nothing of libvirt is linked in).
 * The XML is made by pure functions (vm_libvirt_*_xml); the rest copies
 * files and drives virsh.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* --- the XML, pure ------------------------------------------------------ */

void vm_xml_escape(const char *s, struct buf *out)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': buf_adds(out, "&amp;"); break;
		case '<': buf_adds(out, "&lt;"); break;
		case '>': buf_adds(out, "&gt;"); break;
		case '"': buf_adds(out, "&quot;"); break;
		case '\'': buf_adds(out, "&apos;"); break;
		default: buf_add(out, s, 1);
		}
	}
}

/* Append "<tag>text</tag>\n" at indent, text escaped. */
static void elem(struct buf *b, int indent, const char *tag, const char *text)
{
	buf_addf(b, "%*s<%s>", indent, "", tag);
	vm_xml_escape(text, b);
	buf_addf(b, "</%s>\n", tag);
}

/* Append " name='value'" with value escaped. */
static void attr(struct buf *b, const char *name, const char *value)
{
	buf_addf(b, " %s='", name);
	vm_xml_escape(value, b);
	buf_adds(b, "'");
}

/* nook's QEMU puts the NICs, then the rng, then the two disks on the
 * root bus from slot 1 on, in that order: the same slots keep the
 * guest's interface names (cloud-init's first network config matched
 * them) and its vda. */
static void pci_slot(struct buf *b, int slot)
{
	buf_addf(b, "      <address type='pci' domain='0x0000' bus='0x00' "
		 "slot='0x%02x' function='0x0'/>\n", slot);
}

/* -cpu MODEL[,FEAT=on|off...] as libvirt's <cpu>. */
static void cpu_xml(const char *model, struct buf *b)
{
	size_t n = strcspn(model, ",");
	char *name = xstrndup(model, n);
	const char *f = model[n] ? model + n + 1 : NULL;

	if (!strcmp(name, "host") || !strcmp(name, "max")) {
		buf_addf(b, "  <cpu mode='%s' check='none'/>\n",
			 !strcmp(name, "host") ? "host-passthrough" :
			 "maximum");
		free(name);
		return;
	}
	buf_adds(b, "  <cpu mode='custom' match='exact' check='none'>\n");
	elem(b, 4, "model", name);
	while (f && *f) {
		size_t len = strcspn(f, ","), klen = strcspn(f, "=");
		const char *val = klen < len ? f + klen + 1 : "on";
		size_t vlen = klen < len ? len - klen - 1 : 2;
		int off = (vlen == 3 && !strncmp(val, "off", 3)) ||
			  (vlen == 5 && !strncmp(val, "false", 5));
		char *feat;

		/* QEMU's older +feat / -feat */
		if (klen >= len && (*f == '+' || *f == '-')) {
			off = *f == '-';
			f++;
			len--;
			klen--;
		}
		feat = xstrndup(f, klen < len ? klen : len);

		buf_addf(b, "    <feature policy='%s'", off ? "disable" :
			 "require");
		attr(b, "name", feat);
		buf_adds(b, "/>\n");
		free(feat);
		f += len;
		if (*f)
			f++;
	}
	buf_adds(b, "  </cpu>\n");
	free(name);
}

static void disk_xml(struct buf *b, const char *path, const char *format,
		     const char *dev, int readonly, int slot)
{
	buf_adds(b, "    <disk type='file' device='disk'>\n");
	buf_addf(b, "      <driver name='qemu' type='%s'%s/>\n", format,
		 readonly ? "" : " discard='unmap'");
	buf_adds(b, "      <source");
	attr(b, "file", path);
	buf_adds(b, "/>\n");
	buf_addf(b, "      <target dev='%s' bus='virtio'/>\n", dev);
	if (readonly)
		buf_adds(b, "      <readonly/>\n");
	pci_slot(b, slot);
	buf_adds(b, "    </disk>\n");
}

static void nic_xml(struct buf *b, const struct vm_nic *nic,
		    const char *network, int slot)
{
	if (network) {
		buf_adds(b, "    <interface type='network'>\n");
		buf_addf(b, "      <mac address='%s'/>\n", nic->mac);
		buf_adds(b, "      <source");
		attr(b, "network", network);
		buf_adds(b, "/>\n");
	} else {
		buf_adds(b, "    <interface type='user'>\n");
		buf_addf(b, "      <mac address='%s'/>\n", nic->mac);
	}
	buf_adds(b, "      <model type='virtio'/>\n");
	/* no iPXE option ROM, as nook's romfile= */
	buf_adds(b, "      <rom enabled='no'/>\n");
	pci_slot(b, slot);
	buf_adds(b, "    </interface>\n");
}

void vm_libvirt_domain_xml(const struct vm_spec *s,
			   const struct vm_lv_domain *t, struct buf *out)
{
	enum vm_accel accel = strcmp(t->type, "kvm") ? VM_ACCEL_TCG :
			      VM_ACCEL_KVM;
	int slot = 1;

	buf_addf(out, "<domain type='%s'>\n", t->type);
	elem(out, 2, "name", s->name);
	buf_adds(out, "  <description>");
	vm_xml_escape("exported by nook from ", out);
	vm_xml_escape(s->name, out);
	if (s->instance_id) {
		vm_xml_escape(" (instance-id ", out);
		vm_xml_escape(s->instance_id, out);
		vm_xml_escape(")", out);
	}
	buf_adds(out, "</description>\n");
	buf_addf(out, "  <memory unit='KiB'>%llu</memory>\n",
		 (unsigned long long)(s->memory >> 10));
	buf_addf(out, "  <vcpu placement='static'>%d</vcpu>\n", s->cpus);
	buf_adds(out, "  <os>\n    <type arch='x86_64'");
	attr(out, "machine", t->machine);
	buf_adds(out, ">hvm</type>\n");
	if (!strcmp(s->boot, "direct")) {
		struct buf cmdline = BUF_INIT;

		vm_kernel_args(s, accel, &cmdline);
		elem(out, 4, "kernel", t->kernel);
		if (t->initrd)
			elem(out, 4, "initrd", t->initrd);
		elem(out, 4, "cmdline", cmdline.p);
		buf_free(&cmdline);
	} else {
		buf_adds(out, "    <boot dev='hd'/>\n");
	}
	buf_adds(out, "  </os>\n");
	buf_adds(out, "  <features>\n    <acpi/>\n    <apic/>\n  </features>\n");
	cpu_xml(vm_cpu_model(s, accel), out);
	buf_adds(out, "  <clock offset='utc'/>\n");
	buf_adds(out, "  <on_poweroff>destroy</on_poweroff>\n"
		 "  <on_reboot>restart</on_reboot>\n"
		 "  <on_crash>destroy</on_crash>\n");
	buf_adds(out, "  <devices>\n");
	for (size_t i = 0; i < s->nnics; i++)
		nic_xml(out, &s->nics[i], s->nics[i].kind == VM_NIC_CLUSTER ?
			s->cluster : t->uplink, slot++);
	buf_adds(out, "    <rng model='virtio'>\n"
		 "      <backend model='random'>/dev/urandom</backend>\n");
	pci_slot(out, slot++);
	buf_adds(out, "    </rng>\n");
	disk_xml(out, t->disk, "qcow2", "vda", 0, slot++);
	disk_xml(out, t->seed, "raw", "vdb", 1, slot++);
	buf_adds(out, "    <serial type='pty'>\n      <log");
	attr(out, "file", t->log);
	buf_adds(out, " append='on'/>\n"
		 "      <target port='0'/>\n"
		 "    </serial>\n"
		 "    <console type='pty'>\n"
		 "      <target type='serial' port='0'/>\n"
		 "    </console>\n"
		 "    <controller type='usb' model='none'/>\n"
		 "    <memballoon model='none'/>\n"
		 "  </devices>\n"
		 "</domain>\n");
}

void vm_libvirt_network_xml(const char *name, const char *subnet,
			    struct buf *out)
{
	/* Isolated (no <forward>) and without an <ip>: the host takes no
	 * address on it and runs no DHCP or DNS there, as nook's switch;
	 * the nodes' seeds give them their static addresses. */
	buf_adds(out, "<network>\n");
	elem(out, 2, "name", name);
	buf_adds(out, "  <!-- nook cluster ");
	vm_xml_escape(name, out);
	buf_adds(out, ": subnet ");
	vm_xml_escape(subnet, out);
	buf_adds(out, ", static addresses from the nodes' seeds -->\n"
		 "  <bridge stp='off' delay='0'/>\n"
		 "</network>\n");
}

/* --- the export --------------------------------------------------------- */

/* One VM being exported: where its pieces go on the target. */
struct lv_vm {
	struct vm *vm;
	char *disk, *seed, *kernel, *initrd, *log; /* paths libvirt reads */
	char *disk_vol, *seed_vol, *kernel_vol, *initrd_vol; /* pool names */
};

struct lv_export {
	const struct nook_dirs *dirs;
	const struct vm_export_opts *o;
	struct lv_vm *vms;
	size_t n;
	char *cluster;       /* the network to make, or NULL */
	char *subnet;
	char *type;          /* "kvm" or "qemu" */
	char *machine;
	char *outdir;        /* -o, made absolute */
	struct strvec made;  /* files written, removed on failure */
	struct strvec *undo; /* --connect: virsh argvs undoing each step */
	size_t nundo;
};

static void say(const struct vm_export_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void say(const struct vm_export_opts *o, const char *fmt, ...)
{
	va_list ap;
	char *line;

	if (!o->say)
		return;
	va_start(ap, fmt);
	line = xvasprintf(fmt, ap);
	va_end(ap);
	o->say(o->ctx, line);
	free(line);
}

static void lv_vm_free(struct lv_vm *v)
{
	vm_close(v->vm);
	free(v->disk);
	free(v->seed);
	free(v->kernel);
	free(v->initrd);
	free(v->log);
	free(v->disk_vol);
	free(v->seed_vol);
	free(v->kernel_vol);
	free(v->initrd_vol);
}

/* The subnet of addr/prefix, "A.B.C.D/P", into out. */
static void subnet_of(const char *addr, int prefix, char *out, size_t size)
{
	struct in_addr a;
	char s[INET_ADDRSTRLEN];
	uint32_t mask = prefix <= 0 ? 0 : 0xffffffffu << (32 - prefix);

	if (!addr || inet_pton(AF_INET, addr, &a) != 1) {
		addr = addr ? addr : "?";
		snprintf(out, size, "%s/%d", addr, prefix);
		return;
	}
	a.s_addr = htonl(ntohl(a.s_addr) & mask);
	inet_ntop(AF_INET, &a, s, sizeof(s));
	snprintf(out, size, "%s/%d", s, prefix);
}

/* Open and lock every VM name means; refuse one that runs. */
static int open_vms(struct lv_export *x, const char *name)
{
	struct strvec names = STRVEC_INIT;
	int ret = -1;

	if (vm_cluster_exists(x->dirs, name)) {
		if (vm_cluster_nodes(x->dirs, name, &names) < 0)
			goto out;
		if (!names.n) {
			errorf("cluster %s has no nodes to export", name);
			goto out;
		}
	} else {
		strvec_push(&names, name);
	}
	x->vms = xmalloc(sizeof(*x->vms) * names.n);
	memset(x->vms, 0, sizeof(*x->vms) * names.n);
	for (size_t i = 0; i < names.n; i++) {
		struct lv_vm *v = &x->vms[x->n];
		struct vm_spec *s;
		enum vm_state st;

		if (vm_open(x->dirs, names.v[i], 1, &v->vm) < 0)
			goto out;
		x->n++;
		if (vm_take_lock(v->vm) < 0)
			goto out;
		st = vm_state_held(v->vm);
		if (st == VM_RUNNING || st == VM_STARTING || st == VM_PAUSED) {
			errorf("VM %s is %s: its disk is in use; stop it ('nook "
			       "local stop %s') or suspend it ('nook local "
			       "suspend %s') first", names.v[i],
			       vm_state_name(st), names.v[i], names.v[i]);
			goto out;
		}
		s = &v->vm->spec;
		if (st == VM_SUSPENDED)
			say(x->o, "%s is suspended: its saved memory stays with "
			    "nook; the export boots from its disk", s->name);
		if (s->cluster && !x->cluster) {
			char sub[INET_ADDRSTRLEN + 4];

			subnet_of(s->address, s->prefix, sub, sizeof(sub));
			x->cluster = xstrdup(s->cluster);
			x->subnet = xstrdup(sub);
		}
	}
	ret = 0;
out:
	strvec_clear(&names);
	return ret;
}

/* Copy src to dst (new, mode), streaming. */
static int copy_file(const char *src, const char *dst, mode_t mode)
{
	struct sha256 h;
	int in, out, ret;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return error_errno("cannot read %s", src);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (out < 0) {
		close(in);
		return error_errno("cannot create %s", dst);
	}
	sha256_init(&h);
	ret = sha256_fd(&h, in, src, out, dst);
	sha256_free(&h);
	close(in);
	if (fsync(out) < 0 && ret == 0)
		ret = error_errno("cannot write %s", dst);
	if (close(out) < 0 && ret == 0)
		ret = error_errno("cannot write %s", dst);
	if (ret < 0)
		unlink(dst);
	return ret;
}

/* The VM's disk, overlay and base, as one self-contained qcow2 at dst. */
static int flatten(const struct vm *vm, const char *dst)
{
	const char *argv[] = { "qemu-img", "convert", "-O", "qcow2",
			       vm->paths.disk, dst, NULL };
	struct buf out = BUF_INIT;
	int rc = run_capture(argv, &out);

	if (rc != 0)
		errorf("flattening %s's disk into %s failed: %s", vm->name,
		       dst, rc > 0 && out.p ? out.p : "");
	buf_free(&out);
	return rc == 0 ? 0 : -1;
}

static int write_new(const char *path, const struct buf *b, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);

	if (fd < 0)
		return error_errno("cannot create %s", path);
	if (write_all(fd, b->p, b->len) < 0 || fsync(fd) < 0) {
		error_errno("cannot write %s", path);
		close(fd);
		unlink(path);
		return -1;
	}
	if (close(fd) < 0) {
		error_errno("cannot write %s", path);
		unlink(path);
		return -1;
	}
	return 0;
}

static void domain_xml(const struct lv_export *x, const struct lv_vm *v,
		       struct buf *out)
{
	struct vm_lv_domain t = {
		.type = x->type, .machine = x->machine,
		.uplink = strcmp(x->o->uplink, "user") ? x->o->uplink : NULL,
		.log = v->log, .disk = v->disk, .seed = v->seed,
		.kernel = v->kernel, .initrd = v->initrd,
	};

	vm_libvirt_domain_xml(&v->vm->spec, &t, out);
}

/* The host's kernel and initrd files of a direct boot (NULL: none). */
static void boot_files(const struct vm_spec *s, const char **kernel,
		       const char **initrd)
{
	*kernel = *initrd = NULL;
	if (!strcmp(s->boot, "direct"))
		vm_spec_kernel(s, kernel, initrd);
}

/* -o DIR: the file names each VM's pieces take there. */
static void dir_names(struct lv_export *x)
{
	for (size_t i = 0; i < x->n; i++) {
		struct lv_vm *v = &x->vms[i];
		const char *n = v->vm->name, *k, *r;

		boot_files(&v->vm->spec, &k, &r);
		v->disk = xasprintf("%s/%s.qcow2", x->outdir, n);
		v->seed = xasprintf("%s/%s.seed.iso", x->outdir, n);
		v->kernel = k ? xasprintf("%s/%s.vmlinuz", x->outdir, n) : NULL;
		v->initrd = r ? xasprintf("%s/%s.initrd", x->outdir, n) : NULL;
		v->log = xasprintf("%s/%s.console.log", x->outdir, n);
	}
}

static int refuse_existing(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0)
		return errorf("%s exists already: pick another -o directory "
			      "or remove it", path);
	return 0;
}

static void define_script(const struct lv_export *x, struct buf *b)
{
	buf_adds(b, "#!/bin/sh\n"
		 "# Defines on libvirt what 'nook export libvirt' wrote here.\n"
		 "# The domains read their disks, seeds and kernels from this\n"
		 "# directory, in place, by absolute path: move it and export\n"
		 "# again. Usage: ./define.sh [URI]   (default qemu:///system)\n"
		 "set -e\n"
		 "uri=${1:-qemu:///system}\n"
		 "here=$(cd \"$(dirname \"$0\")\" && pwd)\n");
	if (x->cluster)
		buf_addf(b, "virsh -c \"$uri\" net-define \"$here/%s.net.xml\"\n"
			 "virsh -c \"$uri\" net-start %s\n", x->cluster,
			 x->cluster);
	for (size_t i = 0; i < x->n; i++)
		buf_addf(b, "virsh -c \"$uri\" define \"$here/%s.xml\"\n",
			 x->vms[i].vm->name);
	for (size_t i = 0; i < x->n; i++)
		buf_addf(b, "echo \"start: virsh -c $uri start %s; console: "
			 "virsh -c $uri console %s\"\n", x->vms[i].vm->name,
			 x->vms[i].vm->name);
}

static int export_dir(struct lv_export *x)
{
	struct buf b = BUF_INIT;
	char *path = NULL;
	int ret = -1;

	if (mkdir_p(x->o->outdir, 0755) < 0)
		return -1;
	x->outdir = realpath(x->o->outdir, NULL);
	if (!x->outdir)
		return error_errno("cannot resolve %s", x->o->outdir);
	dir_names(x);
	/* every name is checked before anything is written */
	for (size_t i = 0; i < x->n; i++) {
		struct lv_vm *v = &x->vms[i];

		free(path);
		path = xasprintf("%s/%s.xml", x->outdir, v->vm->name);
		if (refuse_existing(path) < 0 || refuse_existing(v->disk) < 0 ||
		    refuse_existing(v->seed) < 0 ||
		    (v->kernel && refuse_existing(v->kernel) < 0) ||
		    (v->initrd && refuse_existing(v->initrd) < 0))
			goto out;
	}
	free(path);
	path = x->cluster ? xasprintf("%s/%s.net.xml", x->outdir, x->cluster) :
			    NULL;
	if (path && refuse_existing(path) < 0)
		goto out;
	free(path);
	path = xasprintf("%s/define.sh", x->outdir);
	if (refuse_existing(path) < 0)
		goto out;
	for (size_t i = 0; i < x->n; i++) {
		struct lv_vm *v = &x->vms[i];
		const char *k, *r;

		say(x->o, "%s: flattening its disk into %s", v->vm->name,
		    v->disk);
		strvec_push(&x->made, v->disk);
		if (flatten(v->vm, v->disk) < 0)
			goto out;
		if (copy_file(v->vm->paths.cidata, v->seed, 0600) < 0)
			goto out;
		strvec_push(&x->made, v->seed);
		boot_files(&v->vm->spec, &k, &r);
		if (k) {
			if (copy_file(k, v->kernel, 0644) < 0)
				goto out;
			strvec_push(&x->made, v->kernel);
		}
		if (r) {
			if (copy_file(r, v->initrd, 0644) < 0)
				goto out;
			strvec_push(&x->made, v->initrd);
		}
		free(path);
		path = xasprintf("%s/%s.xml", x->outdir, v->vm->name);
		b.len = 0;
		domain_xml(x, v, &b);
		if (write_new(path, &b, 0644) < 0)
			goto out;
		strvec_push(&x->made, path);
	}
	if (x->cluster) {
		free(path);
		path = xasprintf("%s/%s.net.xml", x->outdir, x->cluster);
		b.len = 0;
		vm_libvirt_network_xml(x->cluster, x->subnet, &b);
		if (write_new(path, &b, 0644) < 0)
			goto out;
		strvec_push(&x->made, path);
	}
	free(path);
	path = xasprintf("%s/define.sh", x->outdir);
	b.len = 0;
	define_script(x, &b);
	if (write_new(path, &b, 0755) < 0)
		goto out;
	strvec_push(&x->made, path);
	say(x->o, "wrote %s: define it with %s", x->outdir, path);
	ret = 0;
out:
	free(path);
	buf_free(&b);
	return ret;
}

/* --- --connect: virsh ---------------------------------------------------- */

/* Drop the white space that ends b. */
static void trim(struct buf *b)
{
	while (b->len && strchr(" \t\r\n", b->p[b->len - 1]))
		b->p[--b->len] = '\0';
}

/* Run virsh -q -c URI with the words in args (NULL-ended); its output
 * into out (may be NULL). Its exit status, or -1. */
static int virsh(const struct lv_export *x, struct buf *out,
		 const char *const *args)
{
	struct strvec argv = STRVEC_INIT;
	struct buf tmp = BUF_INIT;
	int rc;

	strvec_push(&argv, "virsh");
	strvec_push(&argv, "-q");
	strvec_push(&argv, "-c");
	strvec_push(&argv, x->o->connect);
	for (; *args; args++)
		strvec_push(&argv, *args);
	rc = run_capture((const char *const *)argv.v, out ? out : &tmp);
	strvec_clear(&argv);
	buf_free(&tmp);
	return rc;
}

/* virsh that must succeed: -1 saying what failed and what virsh said. */
static int virsh_ok(const struct lv_export *x, const char *what,
		    const char *const *args, struct buf *out)
{
	struct buf b = BUF_INIT;
	int rc = virsh(x, &b, args);

	if (rc != 0) {
		trim(&b);
		errorf("%s on %s failed: %s", what, x->o->connect,
		       rc > 0 && b.p ? b.p : "virsh did not run");
	} else if (out) {
		buf_add(out, b.p, b.len);
	}
	buf_free(&b);
	return rc == 0 ? 0 : -1;
}

/* Remember a virsh argv that undoes a step (run in reverse on failure). */
static void undo_push(struct lv_export *x, const char *a, const char *b,
		      const char *c, const char *d)
{
	struct strvec *u;

	x->undo = xrealloc(x->undo, sizeof(*x->undo) * (x->nundo + 1));
	u = &x->undo[x->nundo++];
	memset(u, 0, sizeof(*u));
	strvec_push(u, a);
	if (b)
		strvec_push(u, b);
	if (c)
		strvec_push(u, c);
	if (d)
		strvec_push(u, d);
}

static void undo_run(struct lv_export *x, int run)
{
	while (x->nundo) {
		struct strvec *u = &x->undo[--x->nundo];

		if (run)
			virsh(x, NULL, (const char *const *)u->v);
		strvec_clear(u);
	}
	free(x->undo);
	x->undo = NULL;
}

/* 1 when virsh net-info's text says the network is active. */
static int net_active(const char *info)
{
	const char *p = info ? strstr(info, "Active:") : NULL;

	if (!p)
		return 0;
	p += strlen("Active:");
	p += strspn(p, " \t");
	return !strncmp(p, "yes", 3);
}

/* Before anything is made: the libvirt answers, the pool and the uplink
 * network are there, and none of the names is taken. */
static int connect_checks(struct lv_export *x)
{
	const char *pool = x->o->pool;
	struct buf b = BUF_INIT;
	int ret = -1;

	if (virsh(x, &b, (const char *const[]){ "uri", NULL }) != 0) {
		trim(&b);
		errorf("cannot reach libvirt at %s: %s", x->o->connect,
		       b.len ? b.p : "virsh did not run (install "
		       "libvirt-clients)");
		goto out;
	}
	if (virsh(x, NULL, (const char *const[]){ "pool-info", pool,
						  NULL }) != 0) {
		errorf("%s has no storage pool '%s': pick one with --pool "
		       "('virsh -c %s pool-list --all')", x->o->connect, pool,
		       x->o->connect);
		goto out;
	}
	b.len = 0;
	if (strcmp(x->o->uplink, "user") &&
	    virsh(x, &b, (const char *const[]){ "net-info", x->o->uplink,
						NULL }) != 0) {
		errorf("%s has no network '%s' for the uplink: define it, or "
		       "take user-mode networking with --uplink user",
		       x->o->connect, x->o->uplink);
		goto out;
	}
	if (strcmp(x->o->uplink, "user") && x->o->start &&
	    !net_active(b.p)) {
		errorf("network '%s' on %s is not active, so the domains could "
		       "not start: start it ('virsh -c %s net-start %s') or "
		       "take --uplink user", x->o->uplink, x->o->connect,
		       x->o->connect, x->o->uplink);
		goto out;
	}
	if (x->cluster &&
	    virsh(x, NULL, (const char *const[]){ "net-info", x->cluster,
						  NULL }) == 0) {
		errorf("%s has a network named %s already: undefine it first "
		       "('virsh -c %s net-undefine %s')", x->o->connect,
		       x->cluster, x->o->connect, x->cluster);
		goto out;
	}
	for (size_t i = 0; i < x->n; i++) {
		struct lv_vm *v = &x->vms[i];
		const char *vols[] = { v->disk_vol, v->seed_vol, v->kernel_vol,
				       v->initrd_vol };

		if (virsh(x, NULL, (const char *const[]){ "dominfo",
				v->vm->name, NULL }) == 0) {
			errorf("%s has a domain named %s already: undefine it "
			       "first ('virsh -c %s undefine %s')",
			       x->o->connect, v->vm->name, x->o->connect,
			       v->vm->name);
			goto out;
		}
		for (size_t j = 0; j < ARRAY_SIZE(vols); j++)
			if (vols[j] && virsh(x, NULL, (const char *const[]){
					"vol-info", "--pool", pool, vols[j],
					NULL }) == 0) {
				errorf("pool %s on %s has a volume %s already: "
				       "delete it first", pool, x->o->connect,
				       vols[j]);
				goto out;
			}
	}
	ret = 0;
out:
	buf_free(&b);
	return ret;
}

/* Upload file as a new raw-allocated volume vol of the pool; *path is
 * where libvirt keeps it. */
static int upload(struct lv_export *x, const char *file, const char *vol,
		  char **path)
{
	const char *pool = x->o->pool;
	struct buf b = BUF_INIT;
	struct stat st;
	char size[32];

	if (stat(file, &st) < 0)
		return error_errno("cannot read %s", file);
	snprintf(size, sizeof(size), "%lld", (long long)st.st_size);
	if (virsh_ok(x, "creating volume", (const char *const[]){
			"vol-create-as", pool, vol, size, "--format", "raw",
			NULL }, NULL) < 0)
		return -1;
	undo_push(x, "vol-delete", "--pool", pool, vol);
	if (virsh_ok(x, "uploading", (const char *const[]){ "vol-upload",
			"--pool", pool, vol, file, NULL }, NULL) < 0 ||
	    virsh_ok(x, "asking the volume's path", (const char *const[]){
			"vol-path", "--pool", pool, vol, NULL }, &b) < 0) {
		buf_free(&b);
		return -1;
	}
	trim(&b);
	*path = xstrdup(b.p);
	buf_free(&b);
	return 0;
}

/* Write b to a temporary file under the VM's directory and run virsh
 * verb on it. */
static int define_from(struct lv_export *x, const char *dir, const char *verb,
		       const char *what, const struct buf *b)
{
	char *tmp = xasprintf("%s/.export.xml", dir);
	int ret;

	unlink(tmp);
	ret = write_new(tmp, b, 0600);
	if (ret == 0)
		ret = virsh_ok(x, what, (const char *const[]){ verb, tmp,
							      NULL }, NULL);
	unlink(tmp);
	free(tmp);
	return ret;
}

static int connect_vm(struct lv_export *x, struct lv_vm *v)
{
	const char *k, *r;
	char *flat = xasprintf("%s/.export.qcow2", v->vm->paths.dir);
	struct buf b = BUF_INIT;
	int ret = -1;

	unlink(flat);
	say(x->o, "%s: flattening its disk", v->vm->name);
	if (flatten(v->vm, flat) < 0)
		goto out;
	say(x->o, "%s: uploading its disk and seed into pool %s",
	    v->vm->name, x->o->pool);
	if (upload(x, flat, v->disk_vol, &v->disk) < 0 ||
	    upload(x, v->vm->paths.cidata, v->seed_vol, &v->seed) < 0)
		goto out;
	boot_files(&v->vm->spec, &k, &r);
	if ((k && upload(x, k, v->kernel_vol, &v->kernel) < 0) ||
	    (r && upload(x, r, v->initrd_vol, &v->initrd) < 0))
		goto out;
	domain_xml(x, v, &b);
	if (define_from(x, v->vm->paths.dir, "define", "defining the domain",
			&b) < 0)
		goto out;
	undo_push(x, "undefine", v->vm->name, NULL, NULL);
	ret = 0;
out:
	unlink(flat);
	free(flat);
	buf_free(&b);
	return ret;
}

static int export_connect(struct lv_export *x)
{
	struct buf b = BUF_INIT;
	int ret = -1;

	for (size_t i = 0; i < x->n; i++) {
		struct lv_vm *v = &x->vms[i];
		const char *n = v->vm->name, *k, *r;

		boot_files(&v->vm->spec, &k, &r);
		v->disk_vol = xasprintf("%s.qcow2", n);
		v->seed_vol = xasprintf("%s.seed.iso", n);
		v->kernel_vol = k ? xasprintf("%s.vmlinuz", n) : NULL;
		v->initrd_vol = r ? xasprintf("%s.initrd", n) : NULL;
		v->log = xasprintf("%s/%s.console.log", x->o->log_dir, n);
	}
	if (connect_checks(x) < 0)
		return -1;
	if (x->cluster) {
		vm_libvirt_network_xml(x->cluster, x->subnet, &b);
		if (define_from(x, x->vms[0].vm->paths.dir, "net-define",
				"defining the network", &b) < 0)
			goto out;
		undo_push(x, "net-undefine", x->cluster, NULL, NULL);
		if (virsh_ok(x, "starting the network", (const char *const[]){
				"net-start", x->cluster, NULL }, NULL) < 0)
			goto out;
		undo_push(x, "net-destroy", x->cluster, NULL, NULL);
		say(x->o, "network %s defined and started (isolated, subnet %s)",
		    x->cluster, x->subnet);
	}
	for (size_t i = 0; i < x->n; i++) {
		if (connect_vm(x, &x->vms[i]) < 0)
			goto out;
		say(x->o, "%s: defined on %s", x->vms[i].vm->name,
		    x->o->connect);
	}
	for (size_t i = 0; x->o->start && i < x->n; i++) {
		if (virsh_ok(x, "starting the domain", (const char *const[]){
				"start", x->vms[i].vm->name, NULL }, NULL) < 0)
			goto out;
		undo_push(x, "destroy", x->vms[i].vm->name, NULL, NULL);
		say(x->o, "%s: started", x->vms[i].vm->name);
	}
	ret = 0;
out:
	buf_free(&b);
	return ret;
}

/* How to reach each VM, said once it is made. */
static void say_reach(const struct lv_export *x)
{
	const char *uri = x->o->connect ? x->o->connect : "URI";

	for (size_t i = 0; i < x->n; i++) {
		const struct lv_vm *v = &x->vms[i];
		const struct vm_spec *s = &v->vm->spec;
		const char *user = s->user ? s->user : s->image.user;

		say(x->o, "%s: console: virsh -c %s console %s (log %s)",
		    s->name, uri, s->name, v->log);
		if (s->address)
			say(x->o, "%s: address %s on network %s", s->name,
			    s->address, s->cluster);
		if (strcmp(x->o->uplink, "user"))
			say(x->o, "%s: uplink on network %s by DHCP (virsh -c %s "
			    "domifaddr %s); ssh -i %s %s@ADDRESS", s->name,
			    x->o->uplink, uri, s->name, v->vm->paths.key,
			    user ? user : "USER");
	}
}

/* -o: this host's answer (the directory is most often defined here). */
static int local_kvm(void)
{
	struct vm_accel_facts f;
	const char *why;

	vm_accel_probe(&f, "qemu-system-x86_64");
	return vm_accel_decide(&f, &why) == VM_ACCEL_KVM;
}

/* Whether the target runs KVM guests: this host's probe for -o and a
 * URI without a host (libvirt lists kvm wherever /dev/kvm exists, even
 * where it cannot be used), else what the target's capabilities say. */
static int target_kvm(const struct lv_export *x)
{
	const char *uri = x->o->connect;
	const char *p = uri ? strstr(uri, "://") : NULL;
	struct buf b = BUF_INIT;
	int kvm;

	if (!uri || (p && p[3] == '/'))
		return local_kvm();
	kvm = virsh(x, &b, (const char *const[]){ "capabilities", NULL }) == 0 &&
	      strstr(b.p, "<domain type='kvm'") != NULL;
	buf_free(&b);
	return kvm;
}

int vm_export_libvirt(const struct nook_dirs *d, const char *name,
		      const struct vm_export_opts *o)
{
	struct lv_export x;
	int ret = -1;

	memset(&x, 0, sizeof(x));
	x.dirs = d;
	x.o = o;
	if (vm_name_check(name) < 0 || open_vms(&x, name) < 0)
		goto out;
	if (o->virt_type && strcmp(o->virt_type, "auto"))
		x.type = xstrdup(o->virt_type);
	else
		x.type = xstrdup(target_kvm(&x) ? "kvm" : "qemu");
	x.machine = vm_machine_pinned("qemu-system-x86_64");
	if (o->connect) {
		ret = export_connect(&x);
		undo_run(&x, ret < 0);
	} else {
		ret = export_dir(&x);
		if (ret < 0)
			for (size_t i = 0; i < x.made.n; i++)
				unlink(x.made.v[i]);
	}
	if (ret == 0) {
		say(o, "domain type '%s', machine %s", x.type, x.machine);
		say_reach(&x);
	}
out:
	for (size_t i = 0; i < x.n; i++)
		lv_vm_free(&x.vms[i]);
	free(x.vms);
	free(x.cluster);
	free(x.subnet);
	free(x.type);
	free(x.machine);
	free(x.outdir);
	strvec_clear(&x.made);
	return ret;
}

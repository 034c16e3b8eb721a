/*
 * Export to libvirt: a VM, or a cluster's nodes and network, as libvirt
 * domain and network XML (vm/libvirt_xml.c) with the same CPUs, memory,
 * machine type, MACs, PCI slots, boot and seed, written to a directory
 * or defined on a libvirt through virsh (argv only: nothing of libvirt is
 * linked in).
 *
 * -o DIR: everything is made in a private directory inside DIR and moved
 * into place at the end, each name only where none is (a name that
 * appears meanwhile, a symlink, is never written through); a failure or
 * a signal removes the private directory, and the directories made for
 * DIR (those only: never one that was there before). --connect: each
 * step made on the target is undone in reverse on a failure or on
 * SIGINT, SIGTERM or SIGHUP.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

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
	struct strvec made;  /* -o: the directories we made for it,
			      * outermost first; removed on failure */
	char *tmpdir;        /* where the files are made before they move */
	struct strvec files; /* -o: their names, made in tmpdir */
	struct strvec moved; /* -o: those moved into outdir */
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

/* Open and lock VM name as x's next; refuse one whose disk is in use. */
static int open_vm(struct lv_export *x, const char *name)
{
	struct lv_vm *v = &x->vms[x->n];
	struct vm_spec *s;
	enum vm_state st;

	if (vm_open(x->dirs, name, 1, &v->vm) < 0)
		return -1;
	x->n++;
	if (vm_take_lock(v->vm, "export") < 0)
		return -1;
	st = vm_state_held(v->vm);
	if (vm_state_up(st))
		return errorf("VM %s is %s: its disk is in use; stop it ('nook "
			      "local stop %s') or suspend it ('nook local "
			      "suspend %s') first", name, vm_state_name(st),
			      name, name);
	s = &v->vm->spec;
	/* qemu-img convert reads the whole chain: what a project's image
	 * holds now, as a start would check it */
	if (vm_image_recheck(&s->image) < 0 || vm_kernel_recheck(s) < 0)
		return -1;
	if (st == VM_SUSPENDED)
		say(x->o, "%s is suspended: its saved memory stays with nook; "
		    "the export boots from its disk", s->name);
	if (s->cluster && !x->cluster) {
		x->subnet = vm_cluster_subnet(x->dirs, s->cluster);
		if (!x->subnet)
			return -1;
		x->cluster = xstrdup(s->cluster);
	}
	return 0;
}

/* Open and lock every VM name means. */
static int open_vms(struct lv_export *x, const char *name)
{
	struct strvec names = STRVEC_INIT;
	int ret = -1;

	if (vm_cluster_exists(x->dirs, name)) {
		if (vm_cluster_nodes(x->dirs, name, &names) < 0)
			goto out;
	} else {
		strvec_push(&names, name);
	}
	x->vms = xmalloc(sizeof(*x->vms) * names.n);
	memset(x->vms, 0, sizeof(*x->vms) * names.n);
	for (size_t i = 0; i < names.n; i++)
		if (open_vm(x, names.v[i]) < 0)
			goto out;
	ret = 0;
out:
	strvec_clear(&names);
	return ret;
}

/* Drop the white space that ends b. */
static void trim(struct buf *b)
{
	while (b->len && strchr(" \t\r\n", b->p[b->len - 1]))
		b->p[--b->len] = '\0';
}

/* The VM's disk, overlay and base, as one self-contained qcow2 at dst,
 * private (qemu-img makes it by the umask). */
static int flatten(const struct vm *vm, const char *dst)
{
	const char *argv[] = { "qemu-img", "convert", "-O", "qcow2",
			       vm->paths.disk, dst, NULL };
	struct buf out = BUF_INIT;
	int rc = run_capture(argv, &out);

	trim(&out);
	if (rc != 0)
		errorf("flattening %s's disk into %s failed: %s", vm->name,
		       dst, rc > 0 && out.p ? out.p : "");
	else if (chmod(dst, 0600) < 0)
		rc = error_errno("cannot make %s private", dst);
	buf_free(&out);
	return rc == 0 ? 0 : -1;
}

static int domain_xml(const struct lv_export *x, const struct lv_vm *v,
		      struct buf *out)
{
	struct vm_lv_domain t = {
		.type = x->type, .machine = x->machine,
		.uplink = strcmp(x->o->uplink, "user") ? x->o->uplink : NULL,
		.log = v->log, .disk = v->disk, .seed = v->seed,
		.kernel = v->kernel, .initrd = v->initrd,
	};

	return vm_libvirt_domain_xml(&v->vm->spec, &t, out);
}

/* Every XML made once, before anything is: what libvirt's XML cannot
 * carry is refused while nothing is there to undo. */
static int xml_checks(const struct lv_export *x)
{
	struct buf b = BUF_INIT;
	int ret = 0;

	for (size_t i = 0; i < x->n && ret == 0; i++) {
		b.len = 0;
		ret = domain_xml(x, &x->vms[i], &b);
	}
	if (ret == 0 && x->cluster) {
		b.len = 0;
		ret = vm_libvirt_network_xml(x->cluster, x->subnet, &b);
	}
	buf_free(&b);
	return ret;
}

/* The host's kernel and initrd files of a direct boot (NULL: none). */
static void boot_files(const struct vm_spec *s, const char **kernel,
		       const char **initrd)
{
	*kernel = *initrd = NULL;
	if (!strcmp(s->boot, "direct"))
		vm_spec_kernel(s, kernel, initrd);
}

/* --- -o DIR ------------------------------------------------------------ */

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
		strvec_pushf(&x->files, "%s.xml", n);
		strvec_pushf(&x->files, "%s.qcow2", n);
		strvec_pushf(&x->files, "%s.seed.iso", n);
		if (k)
			strvec_pushf(&x->files, "%s.vmlinuz", n);
		if (r)
			strvec_pushf(&x->files, "%s.initrd", n);
	}
	if (x->cluster)
		strvec_pushf(&x->files, "%s.net.xml", x->cluster);
	strvec_push(&x->files, "define.sh");
}

/* An -o DIR there already: a directory of ours only we can write to,
 * which no other user can swap. */
static int outdir_ok(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) < 0)
		return error_errno("cannot use %s", dir);
	if (!S_ISDIR(st.st_mode))
		return errorf("%s is not a directory: -o takes a directory "
			      "(new, or one of yours)", dir);
	if (st.st_uid != geteuid() || (st.st_mode & 022))
		return errorf("%s is %s: the export holds the VMs' private "
			      "keys; pick a directory only you can write to",
			      dir, st.st_uid != geteuid() ? "someone else's" :
			      st.st_mode & 002 ? "writable by anyone" :
			      "writable by its group");
	return path_unswappable(dir, "the export");
}

/* mkdir_each()'s step for -o DIR (x's): a directory made is registered
 * at once for a signal to remove while empty and kept in x->made; one
 * there already, perhaps made by another since open_outdir() looked,
 * is checked as it would have been there before (DIR as an -o DIR
 * there, one above it as path_unswappable() does) and is never
 * removed. */
static int outdir_step(const char *dir, int made, void *ctx)
{
	struct lv_export *x = ctx;

	if (made) {
		tmp_register_dir(dir);
		strvec_push(&x->made, dir);
		return 0;
	}
	if (!strcmp(dir, x->o->outdir))
		return outdir_ok(dir);
	return path_unswappable(dir, "the export");
}

/* The directories outdir_step() made no longer go with a signal: the
 * export is in place in them. */
static void keep_outdir(struct lv_export *x)
{
	for (size_t i = 0; i < x->made.n; i++)
		tmp_unregister(x->made.v[i]);
}

/* -o DIR as a directory only we can write to, made (0700) if missing. */
static int open_outdir(struct lv_export *x)
{
	const char *dir = x->o->outdir;
	struct stat st;
	int ret;

	if (stat(dir, &st) == 0)
		ret = outdir_ok(dir);
	else if (errno != ENOENT)
		ret = error_errno("cannot use %s", dir);
	/* nor one anyone may swap on the way (a parent 0777) */
	else if (path_unswappable(dir, "the export") < 0)
		ret = -1;
	else
		ret = mkdir_each(dir, 0700, outdir_step, x);
	if (ret < 0)
		return -1;
	x->outdir = realpath(dir, NULL);
	if (!x->outdir)
		return error_errno("cannot resolve %s", dir);
	return 0;
}

static int refuse_existing(const struct lv_export *x)
{
	for (size_t i = 0; i < x->files.n; i++) {
		char *path = xasprintf("%s/%s", x->outdir, x->files.v[i]);
		struct stat st;
		int there = lstat(path, &st) == 0;

		if (there)
			errorf("%s exists already: pick another -o directory "
			       "or remove it", path);
		free(path);
		if (there)
			return -1;
	}
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
		 "here=$(CDPATH= cd -- \"$(dirname -- \"$0\")\" && pwd)\n");
	if (x->cluster)
		buf_addf(b, "virsh -c \"$uri\" net-define \"$here/%s.net.xml\"\n"
			 "virsh -c \"$uri\" net-start %s\n", x->cluster,
			 x->cluster);
	for (size_t i = 0; i < x->n; i++)
		buf_addf(b, "virsh -c \"$uri\" define \"$here/%s.xml\"\n",
			 x->vms[i].vm->name);
	for (size_t i = 0; i < x->n; i++)
		buf_addf(b, "echo \"start: virsh -c '$uri' start %s; console: "
			 "virsh -c '$uri' console %s\"\n", x->vms[i].vm->name,
			 x->vms[i].vm->name);
}

/* Write b as tmpdir/name. */
static int write_tmp(const struct lv_export *x, const char *name,
		     const struct buf *b, mode_t mode)
{
	char *path = xasprintf("%s/%s", x->tmpdir, name);
	int ret = write_file_atomic(path, b->p, b->len, mode);

	free(path);
	return ret;
}

/* Copy src (NULL: none) into tmpdir as VM's NAME+ext, private. */
static int copy_in(const struct lv_export *x, const char *vm, const char *src,
		   const char *ext)
{
	char *p;
	int ret;

	if (!src)
		return 0;
	p = xasprintf("%s/%s%s", x->tmpdir, vm, ext);
	ret = copy_file(src, p, 0600);
	free(p);
	return ret;
}

/* VM v's pieces, made in tmpdir under their names in outdir. */
static int make_vm_files(const struct lv_export *x, const struct lv_vm *v)
{
	const char *n = v->vm->name, *k, *r;
	char *disk = xasprintf("%s/%s.qcow2", x->tmpdir, n);
	char *xml = xasprintf("%s.xml", n);
	struct buf b = BUF_INIT;
	int ret;

	say(x->o, "%s: flattening its disk into %s", n, v->disk);
	boot_files(&v->vm->spec, &k, &r);
	ret = flatten(v->vm, disk) < 0 ||
	      copy_in(x, n, v->vm->paths.cidata, ".seed.iso") < 0 ||
	      copy_in(x, n, k, ".vmlinuz") < 0 ||
	      copy_in(x, n, r, ".initrd") < 0 ||
	      domain_xml(x, v, &b) < 0 ||
	      write_tmp(x, xml, &b, 0600) < 0 ? -1 : 0;
	free(disk);
	free(xml);
	buf_free(&b);
	return ret;
}

/* Move every file from tmpdir into outdir, none over a name that is
 * there; with the signals held, so that it is all or nothing. */
static int move_into_place(struct lv_export *x)
{
	sigset_t was;
	int from, to, ret = 0;

	from = open(x->tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	to = open(x->outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (from < 0 || to < 0)
		ret = error_errno("cannot open %s", x->outdir);
	sig_hold(&was);
	for (size_t i = 0; ret == 0 && i < x->files.n; i++) {
		const char *f = x->files.v[i];

		if (renameat2(from, f, to, f, RENAME_NOREPLACE) < 0)
			ret = error_errno("cannot move %s into %s%s", f,
					  x->outdir, errno == EEXIST ?
					  " (it appeared there while we were "
					  "exporting)" : "");
		else
			strvec_pushf(&x->moved, "%s/%s", x->outdir, f);
	}
	if (ret == 0 && fsync(to) < 0)
		ret = error_errno("cannot write %s", x->outdir);
	if (ret < 0)
		for (size_t i = 0; i < x->moved.n; i++)
			unlink(x->moved.v[i]);
	else
		keep_outdir(x); /* before a signal can come */
	sig_release(&was);
	if (from >= 0)
		close(from);
	if (to >= 0)
		close(to);
	return ret;
}

static int export_dir(struct lv_export *x)
{
	struct buf b = BUF_INIT;
	int ret = -1;

	if (open_outdir(x) < 0)
		return -1;
	dir_names(x);
	/* every name is checked before anything is written */
	if (xml_checks(x) < 0 || refuse_existing(x) < 0)
		return -1;
	tmp_sweep(x->outdir, ".nook-export.");
	x->tmpdir = xasprintf("%s/.nook-export.%d-XXXXXX", x->outdir,
			      (int)getpid());
	if (!tmp_mkdtemp(x->tmpdir))
		return error_errno("cannot make a directory in %s", x->outdir);
	for (size_t i = 0; i < x->n; i++)
		if (make_vm_files(x, &x->vms[i]) < 0)
			goto out;
	if (x->cluster) {
		char *name = xasprintf("%s.net.xml", x->cluster);
		int rc = vm_libvirt_network_xml(x->cluster, x->subnet, &b);

		if (rc == 0)
			rc = write_tmp(x, name, &b, 0600);
		free(name);
		if (rc < 0)
			goto out;
	}
	b.len = 0;
	define_script(x, &b);
	if (write_tmp(x, "define.sh", &b, 0700) < 0 ||
	    move_into_place(x) < 0)
		goto out;
	say(x->o, "wrote %s: define it with %s/define.sh", x->outdir,
	    x->outdir);
	ret = 0;
out:
	buf_free(&b);
	return ret;
}

/* After export_dir: the private directory goes; on a failure, the
 * directories we made for -o DIR too, innermost first (rmdir: only
 * while empty). */
static void dir_finish(struct lv_export *x, int failed)
{
	if (x->tmpdir) {
		remove_tree(x->tmpdir);
		tmp_unregister(x->tmpdir);
	}
	for (size_t i = x->made.n; i-- > 0;) {
		if (failed)
			rmdir(x->made.v[i]);
		tmp_unregister(x->made.v[i]);
	}
}

/* --- --connect: virsh ---------------------------------------------------- */

/* Run virsh -q -c URI with the words in args (NULL-ended): its stdout
 * into out, its stderr into err (either may be NULL). Its exit status,
 * or -1 when it did not run (or a signal asked us to stop, unless undo). */
static int virsh(const struct lv_export *x, struct buf *out, struct buf *err,
		 const char *const *args, int undo)
{
	struct strvec argv = STRVEC_INIT;
	struct buf o = BUF_INIT, e = BUF_INIT;
	int rc;

	if (sig_caught && !undo)
		return -1;
	strvec_push(&argv, "virsh");
	strvec_push(&argv, "-q");
	strvec_push(&argv, "-c");
	strvec_push(&argv, x->o->connect);
	for (; *args; args++)
		strvec_push(&argv, *args);
	rc = run_capture_split((const char *const *)argv.v, &o, &e);
	trim(&o);
	trim(&e);
	if (out)
		buf_add(out, o.p, o.len);
	if (err)
		buf_add(err, e.p, e.len);
	strvec_clear(&argv);
	buf_free(&o);
	buf_free(&e);
	return rc;
}

/* virsh that must succeed: -1 saying what failed (what, of name) and
 * what virsh said. */
static int virsh_ok(const struct lv_export *x, const char *what,
		    const char *name, const char *const *args, struct buf *out)
{
	struct buf o = BUF_INIT, e = BUF_INIT;
	int rc = virsh(x, &o, &e, args, 0);

	if (rc != 0 && sig_caught)
		errorf("%s %s on %s: interrupted (%s)", what, name,
		       x->o->connect, strsignal(sig_caught));
	else if (rc != 0)
		errorf("%s %s on %s failed: %s", what, name, x->o->connect,
		       rc < 0 ? "virsh did not run" : e.len ? e.p : o.len ?
		       o.p : "virsh said nothing");
	else if (out)
		buf_add(out, o.p, o.len);
	buf_free(&o);
	buf_free(&e);
	return rc == 0 ? 0 : -1;
}

/* Remember a virsh argv that undoes a step (run in reverse on failure),
 * and what it leaves when it fails. */
static void undo_push(struct lv_export *x, const char *const *argv)
{
	struct strvec *u;

	x->undo = xrealloc(x->undo, sizeof(*x->undo) * (x->nundo + 1));
	u = &x->undo[x->nundo++];
	memset(u, 0, sizeof(*u));
	for (; *argv; argv++)
		strvec_push(u, *argv);
}

static void undo_run(struct lv_export *x, int run)
{
	while (x->nundo) {
		struct strvec *u = &x->undo[--x->nundo];
		struct buf e = BUF_INIT;

		if (run && virsh(x, NULL, &e, (const char *const *)u->v, 1)) {
			struct buf cmd = BUF_INIT;

			for (size_t i = 0; i < u->n; i++)
				buf_addf(&cmd, " %s", u->v[i]);
			errorf("undoing on %s failed, this is left: run 'virsh "
			       "-c %s%s' (%s)", x->o->connect, x->o->connect,
			       cmd.p, e.len ? e.p : "virsh did not run");
			buf_free(&cmd);
		}
		buf_free(&e);
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

/* 0 when virsh args succeeds (the thing it asks about is there). */
static int virsh_has(const struct lv_export *x, const char *a,
		     const char *b, const char *c, const char *d)
{
	return virsh(x, NULL, NULL, (const char *const[]){ a, b, c, d, NULL },
		     0);
}

/* The libvirt answers, the pool and the uplink network are there. */
static int target_checks(const struct lv_export *x)
{
	const char *uri = x->o->connect, *up = x->o->uplink;
	struct buf o = BUF_INIT, e = BUF_INIT;
	int rc = virsh(x, &o, &e, (const char *const[]){ "uri", NULL }, 0);

	if (rc != 0)
		errorf("cannot reach libvirt at %s: %s", uri, rc < 0 ?
		       "virsh did not run (install libvirt-clients)" :
		       e.len ? e.p : "virsh failed and said nothing");
	else if (virsh_has(x, "pool-info", x->o->pool, NULL, NULL) != 0)
		rc = errorf("%s has no storage pool '%s': pick one with --pool "
			    "(virsh -c '%s' pool-list --all)", uri,
			    x->o->pool, uri);
	else if (strcmp(up, "user") &&
		 virsh(x, &o, NULL, (const char *const[]){ "net-info", up,
							   NULL }, 0) != 0)
		rc = errorf("%s has no network '%s' for the uplink: define "
			    "it, or take user-mode networking with --uplink "
			    "user", uri, up);
	else if (strcmp(up, "user") && x->o->start && !net_active(o.p))
		rc = errorf("network '%s' on %s is not active, so the domains "
			    "could not start: start it (virsh -c '%s' "
			    "net-start %s) or take --uplink user", up, uri,
			    uri, up);
	buf_free(&o);
	buf_free(&e);
	return rc == 0 ? 0 : -1;
}

/* None of the names is taken on the target. */
static int name_checks(const struct lv_export *x)
{
	const char *uri = x->o->connect, *pool = x->o->pool;

	if (x->cluster && virsh_has(x, "net-info", x->cluster, NULL,
				    NULL) == 0)
		return errorf("%s has a network named %s already: undefine "
			      "it first (virsh -c '%s' net-undefine %s)", uri,
			      x->cluster, uri, x->cluster);
	for (size_t i = 0; i < x->n; i++) {
		const struct lv_vm *v = &x->vms[i];
		const char *vols[] = { v->disk_vol, v->seed_vol, v->kernel_vol,
				       v->initrd_vol };

		if (virsh_has(x, "dominfo", v->vm->name, NULL, NULL) == 0)
			return errorf("%s has a domain named %s already: "
				      "undefine it first (virsh -c '%s' "
				      "undefine %s)", uri, v->vm->name, uri,
				      v->vm->name);
		for (size_t j = 0; j < ARRAY_SIZE(vols); j++)
			if (vols[j] && virsh_has(x, "vol-info", "--pool", pool,
						 vols[j]) == 0)
				return errorf("pool %s on %s has a volume %s "
					      "already: delete it first", pool,
					      uri, vols[j]);
	}
	return 0;
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
	if (virsh_ok(x, "creating volume", vol, (const char *const[]){
			"vol-create-as", pool, vol, size, "--format", "raw",
			NULL }, NULL) < 0)
		return -1;
	undo_push(x, (const char *const[]){ "vol-delete", "--pool", pool, vol,
					   NULL });
	if (virsh_ok(x, "uploading volume", vol, (const char *const[]){
			"vol-upload", "--pool", pool, vol, file, NULL },
		     NULL) < 0 ||
	    virsh_ok(x, "asking the path of volume", vol, (const char *const[]){
			"vol-path", "--pool", pool, vol, NULL }, &b) < 0) {
		buf_free(&b);
		return -1;
	}
	if (!b.len || b.p[0] != '/' || strchr(b.p, '\n')) {
		errorf("virsh vol-path on %s gave no path for volume %s: '%s'",
		       x->o->connect, vol, b.p);
		buf_free(&b);
		return -1;
	}
	*path = xstrdup(b.p);
	buf_free(&b);
	return 0;
}

/* Write b into the private directory and run virsh verb on it. */
static int define_from(struct lv_export *x, const char *verb,
		       const char *what, const char *name, const struct buf *b)
{
	char *tmp = xasprintf("%s/%s.xml", x->tmpdir, name);
	int ret = write_file_atomic(tmp, b->p, b->len, 0600);

	if (ret == 0)
		ret = virsh_ok(x, what, name, (const char *const[]){ verb, tmp,
								    NULL }, NULL);
	unlink(tmp);
	free(tmp);
	return ret;
}

static int connect_vm(struct lv_export *x, struct lv_vm *v)
{
	const char *k, *r;
	char *flat = xasprintf("%s/%s.qcow2", x->tmpdir, v->vm->name);
	struct buf b = BUF_INIT;
	int ret = -1;

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
	if (domain_xml(x, v, &b) < 0 ||
	    define_from(x, "define", "defining domain", v->vm->name, &b) < 0)
		goto out;
	undo_push(x, (const char *const[]){ "undefine", v->vm->name, NULL });
	ret = 0;
out:
	unlink(flat);
	free(flat);
	buf_free(&b);
	return ret;
}

/* --connect: the volume names, and placeholder paths for the checks. */
static void connect_names(struct lv_export *x)
{
	for (size_t i = 0; i < x->n; i++) {
		struct lv_vm *v = &x->vms[i];
		const char *n = v->vm->name, *k, *r;

		boot_files(&v->vm->spec, &k, &r);
		v->disk_vol = xasprintf("%s.qcow2", n);
		v->seed_vol = xasprintf("%s.seed.iso", n);
		v->kernel_vol = k ? xasprintf("%s.vmlinuz", n) : NULL;
		v->initrd_vol = r ? xasprintf("%s.initrd", n) : NULL;
		v->log = xasprintf("%s/%s.console.log", x->o->log_dir, n);
		v->disk = xstrdup("/pool/disk");
		v->seed = xstrdup("/pool/seed");
		v->kernel = k ? xstrdup("/pool/kernel") : NULL;
		v->initrd = r ? xstrdup("/pool/initrd") : NULL;
	}
}

static int connect_network(struct lv_export *x)
{
	struct buf b = BUF_INIT;
	int rc = vm_libvirt_network_xml(x->cluster, x->subnet, &b);

	if (rc == 0)
		rc = define_from(x, "net-define", "defining network",
				 x->cluster, &b);
	buf_free(&b);
	if (rc < 0)
		return -1;
	undo_push(x, (const char *const[]){ "net-undefine", x->cluster, NULL });
	if (virsh_ok(x, "starting network", x->cluster, (const char *const[]){
			"net-start", x->cluster, NULL }, NULL) < 0)
		return -1;
	undo_push(x, (const char *const[]){ "net-destroy", x->cluster, NULL });
	say(x->o, "network %s defined and started (isolated, subnet %s)",
	    x->cluster, x->subnet);
	return 0;
}

static int export_connect(struct lv_export *x)
{
	connect_names(x);
	if (xml_checks(x) < 0 || target_checks(x) < 0 || name_checks(x) < 0)
		return -1;
	for (size_t i = 0; i < x->n; i++) {
		free(x->vms[i].disk);
		free(x->vms[i].seed);
		free(x->vms[i].kernel);
		free(x->vms[i].initrd);
		x->vms[i].disk = x->vms[i].seed = NULL;
		x->vms[i].kernel = x->vms[i].initrd = NULL;
	}
	/* one a killed export left */
	tmp_sweep(x->vms[0].vm->paths.dir, ".export.");
	x->tmpdir = xasprintf("%s/.export.%d-XXXXXX", x->vms[0].vm->paths.dir,
			      (int)getpid());
	if (!tmp_mkdtemp(x->tmpdir))
		return error_errno("cannot make a directory in %s",
				   x->vms[0].vm->paths.dir);
	if (x->cluster && connect_network(x) < 0)
		return -1;
	for (size_t i = 0; i < x->n; i++) {
		if (connect_vm(x, &x->vms[i]) < 0)
			return -1;
		say(x->o, "%s: defined on %s", x->vms[i].vm->name,
		    x->o->connect);
	}
	for (size_t i = 0; x->o->start && i < x->n; i++) {
		const char *n = x->vms[i].vm->name;

		if (virsh_ok(x, "starting domain", n, (const char *const[]){
				"start", n, NULL }, NULL) < 0)
			return -1;
		undo_push(x, (const char *const[]){ "destroy", n, NULL });
		say(x->o, "%s: started", n);
	}
	/* a signal that came during the last step, which still worked */
	if (sig_caught)
		return errorf("interrupted (%s): undoing the export on %s",
			      strsignal(sig_caught), x->o->connect);
	return 0;
}

/* How to reach each VM, said once it is made. */
static void say_reach(const struct lv_export *x)
{
	const char *uri = x->o->connect ? x->o->connect : "URI";

	for (size_t i = 0; i < x->n; i++) {
		const struct lv_vm *v = &x->vms[i];
		const struct vm_spec *s = &v->vm->spec;
		const char *user = vm_spec_login(s);

		say(x->o, "%s: console: virsh -c '%s' console %s (log %s)",
		    s->name, uri, s->name, v->log);
		if (s->address)
			say(x->o, "%s: address %s on network %s", s->name,
			    s->address, s->cluster);
		if (strcmp(x->o->uplink, "user"))
			say(x->o, "%s: uplink on network %s by DHCP (virsh -c "
			    "'%s' domifaddr %s); ssh -i %s %s@ADDRESS", s->name,
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
	kvm = virsh(x, &b, NULL, (const char *const[]){ "capabilities", NULL },
		    0) == 0 && strstr(b.p, "<domain type='kvm'") != NULL;
	buf_free(&b);
	return kvm;
}

static int run_connect(struct lv_export *x)
{
	struct sigaction old[3];
	int ret;

	/* a signal ends the step under way, and what was made is undone */
	sig_catch(old, 1);
	ret = export_connect(x);
	if (ret < 0 && x->nundo)
		say(x->o, "undoing what was made on %s", x->o->connect);
	undo_run(x, ret < 0);
	if (x->tmpdir) {
		remove_tree(x->tmpdir);
		tmp_unregister(x->tmpdir);
	}
	sig_catch(old, 0);
	sig_rethrow(); /* undone: now end as the signal would have */
	return ret;
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
		ret = run_connect(&x);
	} else {
		ret = export_dir(&x);
		dir_finish(&x, ret < 0);
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
	free(x.tmpdir);
	strvec_clear(&x.files);
	strvec_clear(&x.moved);
	strvec_clear(&x.made);
	return ret;
}

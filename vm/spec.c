/* A VM's spec (vm.json), its paths, and resolving its base image. */
#include <errno.h>
#include <stddef.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "images.h"
#include "internal.h"

static void set(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? xstrdup(v) : NULL;
}

void vm_image_free(struct vm_image *img)
{
	free(img->ref);
	free(img->disk);
	free(img->format);
	free(img->kernel);
	free(img->initrd);
	free(img->cmdline);
	free(img->user);
	free(img->within);
	memset(img, 0, sizeof(*img));
}

void vm_image_copy(struct vm_image *dst, const struct vm_image *src)
{
	memset(dst, 0, sizeof(*dst));
	set(&dst->ref, src->ref);
	set(&dst->disk, src->disk);
	set(&dst->format, src->format);
	set(&dst->kernel, src->kernel);
	set(&dst->initrd, src->initrd);
	set(&dst->cmdline, src->cmdline);
	set(&dst->user, src->user);
	set(&dst->within, src->within);
}

void vm_spec_init(struct vm_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->cpus = 2;
	s->memory = 1024ULL << 20;
}

const char *vm_spec_login(const struct vm_spec *s)
{
	return s->user ? s->user : s->image.user;
}

void vm_spec_free(struct vm_spec *s)
{
	if (!s)
		return;
	free(s->name);
	vm_image_free(&s->image);
	free(s->boot);
	free(s->kernel);
	free(s->initrd);
	free(s->kernel_within);
	free(s->append);
	for (size_t i = 0; i < s->nnics; i++)
		vm_nic_free(&s->nics[i]);
	free(s->nics);
	free(s->cluster);
	free(s->address);
	free(s->accel);
	free(s->cpu);
	free(s->instance_id);
	free(s->user);
	free(s->user_data);
	free(s->network_config);
	memset(s, 0, sizeof(*s));
}

void vm_nic_user(struct vm_nic *nic, const char *mac,
		 const struct net_port *ports, size_t n)
{
	memset(nic, 0, sizeof(*nic));
	nic->kind = VM_NIC_USER;
	snprintf(nic->mac, sizeof(nic->mac), "%s", mac);
	nic->ports = xmalloc(sizeof(*ports) * (n + 1));
	if (n)
		memcpy(nic->ports, ports, sizeof(*ports) * n);
	nic->nports = n;
}

void vm_nic_free(struct vm_nic *nic)
{
	free(nic->ports);
	nic->ports = NULL;
	nic->nports = 0;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *ports_to_json(const struct net_port *p, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		struct buf b = BUF_INIT;

		net_port_format(&p[i], &b);
		json_array_append_new(a, json_string(b.p));
		buf_free(&b);
	}
	return a;
}

static json_t *nics_to_json(const struct vm_spec *s)
{
	json_t *a = json_array();

	for (size_t i = 0; i < s->nnics; i++) {
		const struct vm_nic *n = &s->nics[i];

		if (n->kind == VM_NIC_CLUSTER)
			json_array_append_new(a, json_pack("{s:s,s:s}", "kind",
				"cluster", "mac", n->mac));
		else
			json_array_append_new(a, json_pack("{s:s,s:s,s:o}",
				"kind", "user", "mac", n->mac, "ports",
				ports_to_json(n->ports, n->nports)));
	}
	return a;
}

json_t *vm_spec_to_json(const struct vm_spec *s)
{
	json_t *j = json_object(), *img = json_object();

	json_object_set_new(j, "name", json_string(s->name));
	json_object_set_new(img, "ref", str_or_null(s->image.ref));
	json_object_set_new(img, "disk", str_or_null(s->image.disk));
	json_object_set_new(img, "format", str_or_null(s->image.format));
	json_object_set_new(img, "kernel", str_or_null(s->image.kernel));
	json_object_set_new(img, "initrd", str_or_null(s->image.initrd));
	json_object_set_new(img, "cmdline", str_or_null(s->image.cmdline));
	json_object_set_new(img, "user", str_or_null(s->image.user));
	if (s->image.within)
		json_object_set_new(img, "within", json_string(s->image.within));
	json_object_set_new(j, "image", img);
	json_object_set_new(j, "boot", str_or_null(s->boot));
	json_object_set_new(j, "kernel", str_or_null(s->kernel));
	json_object_set_new(j, "initrd", str_or_null(s->initrd));
	if (s->kernel_within)
		json_object_set_new(j, "kernel_within",
				    json_string(s->kernel_within));
	json_object_set_new(j, "append", str_or_null(s->append));
	json_object_set_new(j, "cpus", json_integer(s->cpus));
	json_object_set_new(j, "memory", json_integer((json_int_t)s->memory));
	json_object_set_new(j, "disk", json_integer((json_int_t)s->disk));
	json_object_set_new(j, "nics", nics_to_json(s));
	json_object_set_new(j, "cluster", !s->cluster ? json_null() :
			    json_pack("{s:s,s:i,s:s,s:i}", "name", s->cluster,
				      "node", s->node, "address", s->address,
				      "prefix", s->prefix));
	json_object_set_new(j, "accel", str_or_null(s->accel));
	json_object_set_new(j, "cpu", str_or_null(s->cpu));
	json_object_set_new(j, "instance_id", str_or_null(s->instance_id));
	json_object_set_new(j, "login_user", str_or_null(s->user));
	json_object_set_new(j, "user_data", str_or_null(s->user_data));
	json_object_set_new(j, "network_config",
			    str_or_null(s->network_config));
	json_object_set_new(j, "ssh_port", json_integer(s->ssh_port));
	return j;
}

static int ports_from_json(const json_t *a, struct net_port **out, size_t *n)
{
	const json_t *v;
	size_t i;

	*out = xmalloc(sizeof(**out) * (json_array_size(a) + 1));
	*n = 0;
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) ||
		    net_port_parse(json_string_value(v), &(*out)[*n]) < 0)
			return -1;
		(*n)++;
	}
	return 0;
}

/* The NICs; a vm.json from before NICs had "ports" and the MAC every
 * nook derived from the name: the uplink keeps both. */
static int nics_from_json(const json_t *j, struct vm_spec *s)
{
	const json_t *nics = json_object_get(j, "nics"), *v;
	size_t i;

	if (!nics) {
		char mac[18];

		s->nics = xmalloc(sizeof(*s->nics));
		net_mac("", s->name, 0, mac);
		vm_nic_user(&s->nics[0], mac, NULL, 0);
		s->nnics = 1;
		free(s->nics[0].ports);
		return ports_from_json(json_object_get(j, "ports"),
				       &s->nics[0].ports, &s->nics[0].nports);
	}
	if (!json_is_array(nics) || !json_array_size(nics))
		return -1;
	s->nics = xmalloc(sizeof(*s->nics) * json_array_size(nics));
	json_array_foreach(nics, i, v) {
		struct vm_nic *n = &s->nics[s->nnics];
		const char *mac = json_string_value(json_object_get(v, "mac"));
		const char *kind = json_string_value(json_object_get(v, "kind"));

		if (!mac || strlen(mac) != 17 || !kind ||
		    (strcmp(kind, "user") && strcmp(kind, "cluster")))
			return -1;
		vm_nic_user(n, mac, NULL, 0);
		s->nnics++;
		if (!strcmp(kind, "cluster")) {
			n->kind = VM_NIC_CLUSTER;
			continue;
		}
		free(n->ports);
		if (ports_from_json(json_object_get(v, "ports"), &n->ports,
				    &n->nports) < 0)
			return -1;
	}
	return 0;
}

static int cluster_from_json(const json_t *c, struct vm_spec *s)
{
	const char *name = json_string_value(json_object_get(c, "name"));
	const char *addr = json_string_value(json_object_get(c, "address"));

	if (!c || json_is_null(c))
		return 0;
	if (!name || !addr || !vm_name_valid(name))
		return -1;
	set(&s->cluster, name);
	set(&s->address, addr);
	s->node = (int)json_integer_value(json_object_get(c, "node"));
	s->prefix = (int)json_integer_value(json_object_get(c, "prefix"));
	return s->node >= 1 && s->prefix >= 8 && s->prefix <= 30 ? 0 : -1;
}

/* The string fields of vm.json: where each goes, whether it must be
 * there, and the words it may be. */
static const char *const boots[] = { "direct", "disk", NULL };
static const char *const accels[] = { "auto", "kvm", "tcg", NULL };
static const char *const formats[] = { "qcow2", "raw", NULL };
static const struct str_field {
	const char *key;
	size_t off;
	int required;
	const char *const *oneof;
} str_fields[] = {
	{ "name", offsetof(struct vm_spec, name), 1, NULL },
	{ "boot", offsetof(struct vm_spec, boot), 1, boots },
	{ "kernel", offsetof(struct vm_spec, kernel), 0, NULL },
	{ "initrd", offsetof(struct vm_spec, initrd), 0, NULL },
	{ "kernel_within", offsetof(struct vm_spec, kernel_within), 0, NULL },
	{ "append", offsetof(struct vm_spec, append), 0, NULL },
	{ "accel", offsetof(struct vm_spec, accel), 1, accels },
	{ "cpu", offsetof(struct vm_spec, cpu), 0, NULL },
	{ "instance_id", offsetof(struct vm_spec, instance_id), 1, NULL },
	{ "login_user", offsetof(struct vm_spec, user), 0, NULL },
	{ "user_data", offsetof(struct vm_spec, user_data), 0, NULL },
	{ "network_config", offsetof(struct vm_spec, network_config), 0, NULL },
	{ "image.ref", offsetof(struct vm_spec, image.ref), 1, NULL },
	{ "image.disk", offsetof(struct vm_spec, image.disk), 1, NULL },
	{ "image.format", offsetof(struct vm_spec, image.format), 1, formats },
	{ "image.kernel", offsetof(struct vm_spec, image.kernel), 0, NULL },
	{ "image.initrd", offsetof(struct vm_spec, image.initrd), 0, NULL },
	{ "image.cmdline", offsetof(struct vm_spec, image.cmdline), 0, NULL },
	{ "image.user", offsetof(struct vm_spec, image.user), 0, NULL },
	{ "image.within", offsetof(struct vm_spec, image.within), 0, NULL },
};

static const struct int_field {
	const char *key;
	size_t off;
	int is64;
	long long min, max;
} int_fields[] = {
	{ "cpus", offsetof(struct vm_spec, cpus), 0, 1, 64 },
	{ "memory", offsetof(struct vm_spec, memory), 1, 128LL << 20,
	  (long long)VM_MEMORY_MAX },
	{ "disk", offsetof(struct vm_spec, disk), 1, 0,
	  (long long)VM_DISK_MAX },
	{ "ssh_port", offsetof(struct vm_spec, ssh_port), 0, 0, 65535 },
};

/* j's value at key, "image.x" reaching into "image". */
static const json_t *field(const json_t *j, const char *key)
{
	const char *dot = strchr(key, '.');

	if (!dot)
		return json_object_get(j, key);
	return json_object_get(json_object_get(j, "image"), dot + 1);
}

static int load_strings(const json_t *j, const char *name, struct vm_spec *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(str_fields); i++) {
		const struct str_field *f = &str_fields[i];
		const json_t *v = field(j, f->key);
		const char *str = json_string_value(v);
		int ok = !f->oneof;

		if (!str && (f->required || (v && !json_is_null(v))))
			return errorf("%s: \"%s\" %s", name, f->key, v ?
				      "is not a string" : "is missing");
		for (size_t k = 0; str && f->oneof && f->oneof[k]; k++)
			ok |= !strcmp(str, f->oneof[k]);
		if (str && !ok)
			return errorf("%s: \"%s\" cannot be '%s'", name,
				      f->key, str);
		set((char **)((char *)s + f->off), str);
	}
	return 0;
}

static int load_ints(const json_t *j, const char *name, struct vm_spec *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(int_fields); i++) {
		const struct int_field *f = &int_fields[i];
		const json_t *v = json_object_get(j, f->key);
		long long n = json_integer_value(v);

		if (!json_is_integer(v) || n < f->min || n > f->max)
			return errorf("%s: \"%s\" must be a whole number from "
				      "%lld to %lld", name, f->key, f->min,
				      f->max);
		if (f->is64)
			*(uint64_t *)((char *)s + f->off) = (uint64_t)n;
		else
			*(int *)((char *)s + f->off) = (int)n;
	}
	return 0;
}

int vm_spec_from_json(const json_t *j, const char *name, struct vm_spec *s)
{
	vm_spec_init(s);
	if (!json_is_object(j) || !json_is_object(json_object_get(j, "image")))
		return errorf("%s: not a nook VM spec (no image)", name);
	if (load_strings(j, name, s) < 0 || load_ints(j, name, s) < 0)
		return -1;
	if (!vm_name_valid(s->name))
		return errorf("%s: \"name\" is not a VM name", name);
	if (strspn(s->instance_id, "abcdefghijklmnopqrstuvwxyz"
		   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
	    strlen(s->instance_id))
		return errorf("%s: \"instance_id\" has characters cloud-init's "
			      "meta-data would not keep", name);
	if ((s->user && !img_user_valid(s->user)) ||
	    (s->image.user && !img_user_valid(s->image.user)))
		return errorf("%s: the login user is not a user name", name);
	if (nics_from_json(j, s) < 0)
		return errorf("%s: bad NIC or port in the VM spec", name);
	if (cluster_from_json(json_object_get(j, "cluster"), s) < 0)
		return errorf("%s: bad \"cluster\" in the VM spec", name);
	return 0;
}

/* The longest socket name put in a runtime directory: the one OpenSSH's
 * master binds before it renames it to ssh.sock ("." and 16 random
 * characters more). A cluster network's, and QEMU's, are shorter. */
#define LONGEST_SOCKET "/ssh.sock.0123456789abcdef"
_Static_assert(sizeof(LONGEST_SOCKET) >= sizeof(NET_SWITCH_LONGEST_SOCKET),
	       "the switch's sockets must fit where ssh's do");
#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)

char *vm_host_alias(const char *name)
{
	return xasprintf("nook-%s", name);
}

/* RUN/NAME, or when a socket there would not fit sun_path a short
 * directory of our own: never truncated, the same one every time for the
 * same data directory, and another data directory's never (its VMs of the
 * same name must not meet). */
char *vm_run_path(const struct nook_dirs *d, const char *name, int *fell)
{
	char *run = xasprintf("%s/%s", d->run, name);

	*fell = 0;
	if (strlen(run) + sizeof(LONGEST_SOCKET) <= SUN_PATH_SIZE)
		return run;
	free(run);
	*fell = 1;
	run = xasprintf("/tmp/nook-%u/%08x-%s", (unsigned)getuid(),
			(unsigned)(fnv1a64(d->data, strlen(d->data)) >> 32),
			name);
	if (strlen(run) + sizeof(LONGEST_SOCKET) <= SUN_PATH_SIZE)
		return run;
	free(run);
	errno = ENAMETOOLONG;
	error_errno("runtime directory for %s", name);
	return NULL;
}

int vm_paths_init(struct vm_paths *p, const struct nook_dirs *d,
		  const char *name)
{
	struct buf b = BUF_INIT;
	char *run;

	memset(p, 0, sizeof(*p));
	run = vm_run_path(d, name, &p->run_fallback);
	if (!run)
		return -1;
	p->dir = xasprintf("%s/vms/%s", d->data, name);
	p->json = xasprintf("%s/vm.json", p->dir);
	p->disk = xasprintf("%s/disk.qcow2", p->dir);
	p->cidata = xasprintf("%s/cidata.iso", p->dir);
	p->key = xasprintf("%s/id_ed25519", p->dir);
	p->host_key = xasprintf("%s/ssh_host_ed25519_key", p->dir);
	p->known_hosts = xasprintf("%s/known_hosts", p->dir);
	p->console_log = xasprintf("%s/console.log", p->dir);
	p->qemu_log = xasprintf("%s/qemu.log", p->dir);
	p->lock = xasprintf("%s/lock", p->dir);
	p->run = run;
	p->qmp = xasprintf("%s/qmp.sock", run);
	p->serial = xasprintf("%s/serial.sock", run);
	p->pidfile = xasprintf("%s/qemu.pid", run);
	p->control = xasprintf("%s/ssh.sock", run);
	p->link = xasprintf("%s/link.pid", run);
	vm_qmp_chardev(p->qmp, &b);
	p->qmp_arg = xstrdup(b.p);
	buf_free(&b);
	return 0;
}

void vm_paths_free(struct vm_paths *p)
{
	char **all[] = { &p->dir, &p->json, &p->disk, &p->cidata, &p->key,
			 &p->host_key, &p->known_hosts, &p->console_log,
			 &p->qemu_log, &p->lock, &p->run, &p->qmp, &p->serial,
			 &p->pidfile, &p->control, &p->link, &p->qmp_arg };

	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		free(*all[i]);
		*all[i] = NULL;
	}
}

/* qemu-img's idea of a disk's format ("qcow2", "raw"). */
static int disk_format(const char *path, char **format)
{
	json_t *j;
	const char *f;

	if (img_disk_info(path, &j) < 0)
		return -1;
	f = json_string_value(json_object_get(j, "format"));
	if (f)
		*format = xstrdup(f);
	else
		errorf("qemu-img info %s: no format in its answer", path);
	json_decref(j);
	return f ? 0 : -1;
}

/* An image directory: what its manifest says. */
static int image_from_dir(const char *dir, struct vm_image *img)
{
	struct img_boot b;

	if (img_boot_read(dir, &b) < 0)
		return -1;
	img->disk = b.disk;
	img->kernel = b.kernel;
	img->initrd = b.initrd;
	img->cmdline = b.cmdline;
	img->user = b.user;
	return 0;
}

/* Each of n files (NULL: none) leads under dir (resolved), symlinks
 * followed, dir being what: a project's image or kernel must not boot a
 * file of yours from elsewhere. */
static int lead_under(const char *dir, const char *what,
		      const char *const *files, size_t n)
{
	int ret = 0;

	for (size_t i = 0; i < n && ret == 0; i++) {
		char *real = files[i] ? realpath(files[i], NULL) : NULL;

		if (files[i] && !real)
			ret = error_errno("%s", files[i]);
		else if (real && !path_under(dir, real))
			ret = errorf("%s leads outside %s, to %s", files[i],
				     what, real);
		free(real);
	}
	return ret;
}

/* lead_under() the project directory within as it is now (a project
 * moved, and linked from where it was, is the same project). */
static int in_project(const char *within, const char *const *files,
		      size_t n)
{
	char *root = realpath(within, NULL), *what;
	int ret;

	if (!root)
		return error_errno("the project %s", within);
	what = xasprintf("its project (%s)", root);
	ret = lead_under(root, what, files, n);
	free(what);
	free(root);
	return ret;
}

int vm_image_recheck(const struct vm_image *img)
{
	const char *const files[] = { img->disk, img->kernel, img->initrd };
	const char *fmt;

	/* a store's image removed under its VMs ('images rm --force'), a
	 * project's file deleted: said here, not as QEMU's "Could not open
	 * backing file" */
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		if (!files[i] || access(files[i], F_OK) == 0 || errno != ENOENT)
			continue;
		if (img->within)
			return errorf("%s, which this VM is made from, is gone "
				      "from its project: put it back, or delete "
				      "the VM", files[i]);
		return errorf("image %s, which this VM is made from, is gone "
			      "(%s is not there; removed with 'nook images rm "
			      "--force'?): import it again, or delete the VM",
			      img->ref, files[i]);
	}
	if (!img->within)
		return 0;
	if (in_project(img->within, files, ARRAY_SIZE(files)) < 0 ||
	    img_disk_probe(img->disk, &fmt) < 0)
		return -1;
	if (strcmp(fmt, img->format))
		return errorf("image %s: its disk is %s now, not %s as when "
			      "the VM was made", img->ref, fmt, img->format);
	return 0;
}

int vm_kernel_recheck(const struct vm_spec *s)
{
	const char *const files[] = { s->kernel, s->initrd };

	if (!s->kernel || !s->kernel_within)
		return 0;
	return in_project(s->kernel_within, files, ARRAY_SIZE(files));
}

int vm_image_resolve(const char *datadir, const char *ref,
		     const char *within, struct vm_image *img)
{
	char *path = NULL, *abs = NULL;
	struct stat st;
	int ret = -1, strict = within != NULL;

	memset(img, 0, sizeof(*img));
	img->ref = xstrdup(ref);
	/* a path when it looks like one or names something here (not for
	 * a project's name: here is wherever the user is); else a name in
	 * the store */
	if (strchr(ref, '/') || (!strict && stat(ref, &st) == 0)) {
		path = xstrdup(ref);
	} else {
		strict = 0; /* the store's, checked when imported */
		if (img_resolve(datadir, ref, &path) < 0)
			goto out;
		if (!path) {
			errorf("no image '%s' in the store; 'nook images build "
			       "%s' makes the default one (as root), 'nook "
			       "images import' adds one, or give a path", ref,
			       IMG_DEFAULT);
			goto out;
		}
	}
	if (stat(path, &st) < 0) {
		error_errno("image %s", path);
		goto out;
	}
	abs = realpath(path, NULL);
	if (!abs) {
		error_errno("image %s", path);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		if (image_from_dir(abs, img) < 0)
			goto out;
		if (strict) {
			const char *const files[] = { img->disk, img->kernel,
						      img->initrd };

			if (lead_under(abs, "the image's directory", files,
				       ARRAY_SIZE(files)) < 0)
				goto out;
		}
	} else {
		/* abs: a symlink's end, checked by the project's caller */
		img->disk = xstrdup(abs);
	}
	if (!img->user)
		img->user = xstrdup(IMG_DEFAULT_USER);
	for (char **f = &img->kernel; f <= &img->initrd; f++)
		if (*f && access(*f, R_OK) < 0) {
			error_errno("image %s: %s", ref, *f);
			goto out;
		}
	/* a store's disk was checked when imported; a project's path is
	 * held to the same checks now (no backing file for the VM to read:
	 * a cloned project's qcow2 could name ~/.ssh/id_ed25519) */
	if (strict) {
		img->within = realpath(within, NULL);
		if (!img->within) {
			error_errno("image %s: its project %s", ref, within);
			goto out;
		}
		const char *fmt;

		if (img_disk_probe(img->disk, &fmt) < 0)
			goto out;
		img->format = xstrdup(fmt);
	} else if (disk_format(img->disk, &img->format) < 0) {
		goto out;
	}
	if (strcmp(img->format, "qcow2") && strcmp(img->format, "raw")) {
		errorf("image %s: disk format '%s' is not qcow2 or raw",
		       ref, img->format);
		goto out;
	}
	ret = 0;
out:
	if (ret < 0)
		vm_image_free(img);
	free(path);
	free(abs);
	return ret;
}

/*
 * What a killed nook leaves of VMs: QEMUs whose VM directory is gone (a
 * delete that did not finish, a data directory removed by hand) or has
 * no record that anyone is writing (vm.json removed by hand), and VM
 * directories a first start never finished (no vm.json).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define QMP_PREFIX "socket,id=qmp0,path="

/* The VM name in a QMP chardev argument "...path=RUN/NAME/qmp.sock,...",
 * into name (at most 32 characters): the last directory's name, or with
 * strip, what follows its "HASH-" (a fallback runtime directory). 0, or
 * -1 when it has none. */
static int chardev_name(const char *arg, int strip, char name[33])
{
	static const char tail[] = "/qmp.sock,server=on,wait=off";
	const char *end = strstr(arg, tail);
	const char *start = end;

	if (strncmp(arg, QMP_PREFIX, strlen(QMP_PREFIX)) || !end ||
	    strcmp(end, tail))
		return -1;
	while (start > arg && start[-1] != '/')
		start--;
	if (strip) {
		if (end - start <= 9 || start[8] != '-')
			return -1;
		start += 9;
	}
	if (end - start > 32)
		return -1;
	memcpy(name, start, (size_t)(end - start));
	name[end - start] = '\0';
	return vm_name_valid(name) ? 0 : -1;
}

/* 1 when arg is exactly the QMP chardev d gives VM name. */
static int chardev_is(const struct nook_dirs *d, const char *name,
		      const char *arg)
{
	struct vm_paths p;
	int is;

	if (vm_paths_init(&p, d, name) < 0)
		return 0;
	is = !strcmp(p.qmp_arg, arg);
	vm_paths_free(&p);
	return is;
}

/* The name of the VM of d whose QEMU pid is, by the exact QMP chardev
 * in its command line; 0, or -1 when pid is none of ours. */
static int qemu_of(const struct nook_dirs *d, pid_t pid, char name[33])
{
	char path[64];
	struct buf b = BUF_INIT;
	int ret = -1;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (read_file_quiet(path, &b) < 0)
		return -1;
	for (size_t off = 0; ret < 0 && off < b.len;
	     off += strlen(b.p + off) + 1) {
		for (int strip = 0; ret < 0 && strip < 2; strip++)
			if (chardev_name(b.p + off, strip, name) == 0 &&
			    chardev_is(d, name, b.p + off) &&
			    vm_pid_is_ours(pid, b.p + off))
				ret = 0;
	}
	buf_free(&b);
	return ret;
}

static int dir_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Whether the VM at p has a record (or may have: it cannot be told). */
static int recorded_now(const struct vm_paths *p)
{
	struct stat st;

	return lstat(p->json, &st) == 0 || errno != ENOENT;
}

/* Whether VM name of d has a record, or a start at work on one (it
 * holds the lock from before it writes the record until QEMU runs): a
 * QEMU of a VM that has neither is nobody's. */
static int recorded(const struct nook_dirs *d, const char *name)
{
	struct vm_paths p;
	int yes;

	if (vm_paths_init(&p, d, name) < 0)
		return 1;
	yes = dir_exists(p.dir) && (recorded_now(&p) || vm_lock_busy(&p));
	vm_paths_free(&p);
	return yes;
}

int vm_orphans(const struct nook_dirs *d, struct vm_orphan **out, size_t *n)
{
	DIR *proc = opendir("/proc");
	struct dirent *e;

	*out = NULL;
	*n = 0;
	if (!proc)
		return error_errno("cannot read /proc");
	while ((e = readdir(proc))) {
		char *end, name[33];
		long pid = strtol(e->d_name, &end, 10);

		if (*end || pid <= 1 || pid == getpid() ||
		    qemu_of(d, (pid_t)pid, name) < 0)
			continue;
		if (!recorded(d, name)) {
			*out = xrealloc(*out, (*n + 1) * sizeof(**out));
			(*out)[*n].pid = (pid_t)pid;
			memcpy((*out)[*n].name, name, sizeof(name));
			(*n)++;
		}
	}
	closedir(proc);
	return 0;
}

int vm_orphan_kill(const struct nook_dirs *d, const struct vm_orphan *o)
{
	struct vm_paths p;
	int ret = 0, fd = -1;

	if (vm_paths_init(&p, d, o->name) < 0)
		return -1;
	/* under the VM's lock, looked at again: a start may have begun
	 * since the list was made (it writes the record, then launches) */
	if (dir_exists(p.dir) && vm_lock(&p, o->name, "prune", &fd) < 0)
		ret = -1;
	else if (recorded_now(&p))
		ret = errorf("VM %s has a record now: its QEMU is left alone",
			     o->name);
	/* by its verified pid: a recycled one is some other program */
	if (ret == 0 && vm_pid_is_ours(o->pid, p.qmp_arg)) {
		kill(o->pid, SIGTERM);
		if (!vm_wait_gone(o->pid, &p, 5000))
			kill(o->pid, SIGKILL);
		if (!vm_wait_gone(o->pid, &p, 5000))
			ret = errorf("QEMU of VM %s (pid %d) survived SIGKILL",
				     o->name, (int)o->pid);
	}
	if (ret == 0) {
		vm_clean_runtime(&p);
		rmdir(p.run);
	}
	if (fd >= 0)
		close(fd);
	vm_paths_free(&p);
	return ret;
}

int vm_unrecorded_busy(const struct nook_dirs *d)
{
	char *vms = xasprintf("%s/vms", d->data);
	DIR *dir = opendir(vms);
	struct dirent *e;
	int busy = 0;

	while (!busy && dir && (e = readdir(dir))) {
		struct vm_paths p;

		if (!vm_name_valid(e->d_name) ||
		    vm_paths_init(&p, d, e->d_name) < 0)
			continue;
		busy = dir_exists(p.dir) && !recorded_now(&p) &&
		       vm_lock_busy(&p);
		vm_paths_free(&p);
	}
	if (dir)
		closedir(dir);
	free(vms);
	return busy;
}

void vm_half_made(const struct nook_dirs *d, struct strvec *out)
{
	char *vms = xasprintf("%s/vms", d->data);
	DIR *dir = opendir(vms);
	struct dirent *e;

	while (dir && (e = readdir(dir))) {
		struct vm_paths p;

		if (!vm_name_valid(e->d_name) ||
		    vm_paths_init(&p, d, e->d_name) < 0)
			continue;
		/* no record, nobody at work on it: a QEMU of it is an
		 * orphan, which prune ends first */
		if (dir_exists(p.dir) && !recorded_now(&p) &&
		    !vm_lock_busy(&p))
			strvec_push(out, p.dir);
		vm_paths_free(&p);
	}
	if (dir)
		closedir(dir);
	free(vms);
}

int vm_half_made_remove(const struct nook_dirs *d, const char *dir)
{
	const char *name = strrchr(dir, '/');
	struct vm_paths p;
	struct stat st;
	int fd = -1, ret = -1;

	if (!name || vm_paths_init(&p, d, name + 1) < 0)
		return -1;
	/* under its lock, looked at again: a first start may have begun
	 * since the list was made (it takes the lock before it writes) */
	if (vm_lock(&p, name + 1, "prune", &fd) == 0) {
		if (lstat(p.json, &st) < 0 && errno == ENOENT &&
		    !vm_pid_alive(p.pidfile, p.qmp_arg)) {
			/* its runtime files too, as a delete removes them */
			vm_clean_runtime(&p);
			ret = remove_tree(p.run) < 0 ? -1 : remove_tree(p.dir);
		} else {
			ret = errorf("VM %s is being made now: left alone",
				     name + 1);
		}
		close(fd);
	}
	vm_paths_free(&p);
	return ret;
}

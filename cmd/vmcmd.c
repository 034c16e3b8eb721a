/* Opening a VM by name for the commands that work on one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmcmd.h"

int vmcmd_open(struct vmcmd *v, const char *name, int must_exist)
{
	json_error_t jerr;
	json_t *j;
	struct stat st;

	memset(v, 0, sizeof(*v));
	v->lock_fd = -1;
	v->name = name;
	vm_spec_init(&v->spec);
	if (vm_name_check(name) < 0)
		return -1;
	if (nook_dirs_from_environ(&v->dirs) < 0 ||
	    vm_paths_init(&v->paths, &v->dirs, name) < 0)
		return -1;
	v->alias = xasprintf("nook-%s", name);
	if (stat(v->paths.json, &st) < 0) {
		if (errno == ENOENT && !must_exist)
			return 0;
		if (errno == ENOENT)
			return errorf("no VM named '%s' (start one with 'nook "
				      "local start %s')", name, name);
		return error_errno("cannot read %s", v->paths.json);
	}
	j = json_load_file(v->paths.json, 0, &jerr);
	if (!j)
		return errorf("%s:%d: %s", v->paths.json, jerr.line, jerr.text);
	vm_spec_free(&v->spec);
	if (vm_spec_from_json(j, v->paths.json, &v->spec) < 0) {
		json_decref(j);
		return -1;
	}
	v->state = json_incref(json_object_get(j, "state"));
	json_decref(j);
	v->have_spec = 1;
	return 0;
}

void vmcmd_close(struct vmcmd *v)
{
	if (v->lock_fd >= 0)
		close(v->lock_fd);
	v->lock_fd = -1;
	json_decref(v->state);
	v->state = NULL;
	vm_spec_free(&v->spec);
	vm_paths_free(&v->paths);
	nook_dirs_free(&v->dirs);
	free(v->alias);
	v->alias = NULL;
}

int vmcmd_save(struct vmcmd *v, const char *status, pid_t pid,
	       const char *accel, const struct net_port *ports, size_t nports)
{
	json_t *j = vm_spec_to_json(&v->spec), *st = json_object();
	json_t *pa = json_array();
	char *s;
	int ret;

	json_object_set_new(st, "status", json_string(status));
	json_object_set_new(st, "pid", json_integer(pid));
	json_object_set_new(st, "accel", accel ? json_string(accel) : json_null());
	/* "since" is when this QEMU started, kept across saves */
	if (pid && json_integer_value(json_object_get(v->state, "pid")) == pid)
		json_object_set(st, "since", json_object_get(v->state, "since"));
	else
		json_object_set_new(st, "since",
				    json_integer((json_int_t)time(NULL)));
	for (size_t i = 0; i < nports; i++) {
		struct buf b = BUF_INIT;

		net_port_format(&ports[i], &b);
		json_array_append_new(pa, json_string(b.p));
		buf_free(&b);
	}
	json_object_set_new(st, "ports", pa);
	json_object_set_new(j, "state", st);
	s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(v->state);
	v->state = json_incref(st);
	json_decref(j);
	ret = write_file_atomic(v->paths.json, s, strlen(s), 0600);
	free(s);
	return ret;
}

static int powered_off(const struct vmcmd *v)
{
	struct buf b = BUF_INIT;
	int off;

	if (read_file_quiet(v->paths.console_log, &b) < 0)
		return 0;
	off = b.len > 4096 ? (int)(b.len - 4096) : 0;
	/* the guest kernel's last words when it powers itself off */
	off = strstr(b.p + off, "reboot: Power down") != NULL;
	buf_free(&b);
	return off;
}

enum vm_state vmcmd_state(struct vmcmd *v, pid_t *pid)
{
	const char *rec = json_string_value(json_object_get(v->state, "status"));
	int busy = v->lock_fd < 0 && vm_lock_busy(&v->paths);

	*pid = vm_pid_alive(v->paths.pidfile, v->paths.qmp);
	return vm_state_decide(rec, *pid != 0, busy, !*pid && powered_off(v));
}

int vmcmd_ssh(struct vmcmd *v, const char *user)
{
	pid_t pid;
	enum vm_state st = vmcmd_state(v, &pid);

	if (st != VM_RUNNING && st != VM_STARTING)
		return errorf("VM %s is %s; start it with 'nook local start %s'",
			      v->name, vm_state_name(st), v->name);
	v->ssh.user = user ? user : v->spec.image.user;
	v->ssh.host = "127.0.0.1";
	v->ssh.port = v->spec.ssh_port;
	v->ssh.identity = v->paths.key;
	v->ssh.known_hosts = v->paths.known_hosts;
	v->ssh.alias = v->alias;
	v->ssh.control = v->paths.control;
	v->ssh.persist = 600;
	return 0;
}

void vmcmd_console_tail(const struct vmcmd *v, int n)
{
	struct buf b = BUF_INIT;
	size_t i;
	int lines = 0;

	if (read_file_quiet(v->paths.console_log, &b) < 0 || !b.len) {
		fprintf(stderr, "  (the console log is empty)\n");
		buf_free(&b);
		return;
	}
	for (i = b.len; i > 0; i--)
		if (b.p[i - 1] == '\n' && i != b.len && ++lines == n)
			break;
	for (char *l = b.p + i; *l;) {
		size_t len = strcspn(l, "\n");

		fprintf(stderr, "  | %.*s\n", (int)len, l);
		l += len;
		if (*l)
			l++;
	}
	buf_free(&b);
}

/* The VM object: opening one by name, its record (vm.json: the one place
 * it is read and written), its state, and what status and ssh need. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "qmp.h"

static int load_state(struct vm *vm, const json_t *st)
{
	const char *status = json_string_value(json_object_get(st, "status"));
	const char *accel = json_string_value(json_object_get(st, "accel"));
	const json_t *ports = json_object_get(st, "ports"), *v;
	const json_t *launched = json_object_get(st, "launched");
	int s = vm_state_parse(status);
	size_t i;

	strvec_clear(&vm->ports);
	strvec_clear(&vm->launched);

	/* a record with no state is a start that never launched */
	vm->recorded = s < 0 ? VM_STOPPED : (enum vm_state)s;
	vm->rec_pid = (pid_t)json_integer_value(json_object_get(st, "pid"));
	vm->rec_accel = accel ? xstrdup(accel) : NULL;
	vm->since = json_integer_value(json_object_get(st, "since"));
	vm->console_at = json_is_integer(json_object_get(st, "console_at")) ?
			 json_integer_value(json_object_get(st, "console_at")) :
			 -1;
	vm->seed = json_integer_value(json_object_get(st, "seed"));
	json_array_foreach(ports, i, v)
		if (json_is_string(v))
			strvec_push(&vm->ports, json_string_value(v));
	json_array_foreach(launched, i, v)
		if (json_is_string(v))
			strvec_push(&vm->launched, json_string_value(v));
	vm_save_free(&vm->save);
	vm->has_save = vm->recorded == VM_SUSPENDED &&
		       vm_save_from_json(json_object_get(st, "save"),
					 &vm->save) == 0;
	if (status && s < 0)
		return errorf("%s: unknown state '%s'", vm->paths.json, status);
	return 0;
}

/* vm.json, parsed; NULL having said why. */
/* The most a record may hold: far more than any VM's */
#define RECORD_MAX ((size_t)4 << 20)

static json_t *read_record(const struct vm *vm)
{
	struct buf b = BUF_INIT;
	json_error_t jerr;
	json_t *j = NULL;

	/* a regular file only: a directory reads as an empty one, and a
	 * FIFO would hang the read */
	if (read_file_regular(vm->paths.json, &b, RECORD_MAX) == 0) {
		j = json_loadb(b.p, b.len, 0, &jerr);
		if (!j)
			errorf("%s:%d: %s", vm->paths.json, jerr.line,
			       jerr.text);
	}
	buf_free(&b);
	return j;
}

int vm_reload_state(struct vm *vm)
{
	json_t *j = read_record(vm);
	int ret;

	if (!j)
		return -1;
	free(vm->rec_accel);
	vm->rec_accel = NULL;
	ret = load_state(vm, json_object_get(j, "state"));
	json_decref(j);
	return ret;
}

static int load(struct vm *vm)
{
	json_t *j = read_record(vm);
	int ret = -1;

	if (!j)
		return -1;
	vm_spec_free(&vm->spec);
	ret = vm_spec_from_json(j, vm->paths.json, &vm->spec);
	if (ret == 0 && strcmp(vm->spec.name, vm->name))
		ret = errorf("%s: names VM '%s', not '%s'", vm->paths.json,
			     vm->spec.name, vm->name);
	if (ret == 0)
		ret = load_state(vm, json_object_get(j, "state"));
	vm->exists = ret == 0;
	json_decref(j);
	return ret;
}

/* Say there is no VM name, and how one is made: a name a cluster's
 * nodes take is made by starting the cluster, not by its own start. */
static void no_such_vm(const struct nook_dirs *d, const char *name)
{
	char c[64];

	if (vm_cluster_claiming(d, name, c, sizeof(c)))
		errorf("no VM named '%s' (a node name of cluster %s: 'nook "
		       "local start %s --nodes N' makes its nodes)", name, c,
		       c);
	else
		errorf("no VM named '%s' (start one with 'nook local start "
		       "%s')", name, name);
}

char *vm_mark_path(const struct vm *vm, const char *name)
{
	return xasprintf("%s/%s", vm->paths.dir, name);
}

int vm_marked(const struct vm *vm, const char *name)
{
	char *mark = vm_mark_path(vm, name);
	int there = access(mark, F_OK) == 0;

	free(mark);
	return there;
}

static int look_only;

void vm_look_only(void)
{
	look_only = 1;
}

int vm_looking_only(void)
{
	return look_only;
}

int vm_open(const struct nook_dirs *d, const char *name, int must_exist,
	    struct vm **out)
{
	struct vm *vm;
	struct stat st;

	*out = NULL;
	if (vm_name_check(name) < 0)
		return -1;
	vm = xmalloc(sizeof(*vm));
	memset(vm, 0, sizeof(*vm));
	vm->lock_fd = -1;
	vm->image_lock = -1;
	vm->console_at = -1;
	vm->name = xstrdup(name);
	vm->dirs = d;
	vm->alias = vm_host_alias(name);
	vm_spec_init(&vm->spec);
	if (vm_paths_init(&vm->paths, d, name) < 0)
		goto fail;
	/* lstat: a symlink that leads nowhere is a record that cannot be
	 * read, not a VM that is not there (whose start would make it again
	 * over the disk that is) */
	if (lstat(vm->paths.json, &st) < 0) {
		if (errno != ENOENT) {
			error_errno("cannot read %s", vm->paths.json);
			goto fail;
		}
		if (must_exist) {
			no_such_vm(d, name);
			goto fail;
		}
	} else if (load(vm) < 0) {
		/* delete --force must work on a record it cannot read */
		if (must_exist != VM_OPEN_BROKEN)
			goto fail;
		vm->broken = 1;
		vm->broken_why = xstrdup(error_last());
	}
	/* a suspend cut off left the guest stopped under "running" (or
	 * QEMU where no suspend takes it), a resume cut off its QEMU
	 * waiting under "starting", a pause cut off its CPUs other than
	 * recorded, a port command QEMU's forwards, a stop cut off its QEMU
	 * ended under "running": mended by whoever looks first (status,
	 * list), when no nook is at work (none for a record that cannot
	 * be read: its mends wait for it, or for a delete --force) */
	if (!look_only && !vm->broken &&
	    (((vm->recorded == VM_RUNNING || vm->recorded == VM_PAUSED) &&
	      (vm_suspend_cut_off(vm) || vm_marked(vm, VM_MARK_PAUSE) ||
	       vm_marked(vm, VM_MARK_PORT))) ||
	     vm_resume_cut_off(vm) || vm_marked(vm, VM_MARK_STOP)) &&
	    !vm_lock_busy(&vm->paths) && vm_take_lock(vm, "mend") == 0) {
		close(vm->lock_fd);
		vm->lock_fd = -1;
	}
	*out = vm;
	return 0;
fail:
	vm_close(vm);
	return -1;
}

void vm_close(struct vm *vm)
{
	if (!vm)
		return;
	if (vm->lock_fd >= 0)
		close(vm->lock_fd);
	vm_image_unlock(vm);
	if (vm->net_gc && vm->spec.cluster)
		vm_cluster_network_gc(vm->dirs, vm->spec.cluster);
	vm_spec_free(&vm->spec);
	vm_paths_free(&vm->paths);
	strvec_clear(&vm->ports);
	strvec_clear(&vm->launched);
	free(vm->rec_accel);
	vm_save_free(&vm->save);
	free(vm->alias);
	free(vm->how);
	free(vm->broken_why);
	free(vm->delete_cut);
	free(vm->no_room);
	free(vm->name);
	free(vm);
}

void vm_image_unlock(struct vm *vm)
{
	img_unlock(vm->image_lock);
	vm->image_lock = -1;
}

int vm_exists(const struct vm *vm)
{
	return vm->exists || vm->broken;
}

const char *vm_name(const struct vm *vm)
{
	return vm->name;
}

/* A start killed (SIGKILL) as it waited for its guest left the record
 * saying starting, its QEMU running on: running, as status says (pause,
 * suspend, snapshot and port took it for one still starting for good).
 * With the lock held, no start is at work. */
static void start_mend(struct vm *vm)
{
	char *accel;

	if (vm->recorded != VM_STARTING || !vm->rec_pid || vm->broken ||
	    vm_pid_alive(vm->paths.pidfile, vm->paths.qmp_arg) != vm->rec_pid)
		return;
	/* the record read anew frees rec_accel */
	accel = vm->rec_accel ? xstrdup(vm->rec_accel) : NULL;
	if (vm_record(vm, VM_RUNNING, vm->rec_pid, accel, NULL) == 0)
		warnf("VM %s: a start of it was cut off as its guest booted; "
		      "its QEMU runs on, and the VM is recorded running",
		      vm->name);
	free(accel);
}

/* A stop cut off left its mark. Its QEMU gone, the VM is stopped, as
 * asked: recorded so and said (the mark kept when the record cannot be
 * written, for the next look). QEMU still running, it was cut off before
 * it ended it: nothing was stopped. With the lock held, no stop is at
 * work. */
static void stop_mend(struct vm *vm)
{
	char *mark = vm_mark_path(vm, VM_MARK_STOP);
	int up = vm_state_up(vm->recorded);

	if (access(mark, F_OK) < 0 || vm->broken)
		goto out;
	if (up && !vm_pid_alive(vm->paths.pidfile, vm->paths.qmp_arg)) {
		if (vm_record(vm, VM_STOPPED, 0, NULL, NULL) < 0)
			goto out;
		/* what the stop had left to do: its runtime files, and a
		 * node's network once no node runs (vm_close()) */
		vm_clean_runtime(&vm->paths);
		if (vm->spec.cluster)
			vm->net_gc = 1;
		warnf("VM %s: a stop of it was cut off once its QEMU had "
		      "ended; it is recorded stopped", vm->name);
	}
	unlink(mark);
out:
	free(mark);
}

int vm_take_lock(struct vm *vm, const char *doing)
{
	struct stat st;

	if (vm->lock_fd >= 0)
		return 0;
	if (vm_lock(&vm->paths, vm->name, doing, &vm->lock_fd) < 0)
		return -1;
	/* what was read before the lock may have changed since: the record
	 * this process writes must start from the one on disk now */
	if (!vm->broken && lstat(vm->paths.json, &st) == 0) {
		strvec_clear(&vm->ports);
		free(vm->rec_accel);
		vm->rec_accel = NULL;
		if (load(vm) < 0)
			return -1;
	}
	vm_suspend_mend(vm);
	vm_resume_mend(vm);
	start_mend(vm);
	vm_pause_mend(vm);
	vm_port_mend(vm);
	stop_mend(vm);
	return 0;
}

#define POWER_DOWN "reboot: Power down"

static int powered_off(const struct vm *vm)
{
	struct buf b = BUF_INIT;
	int off;

	/* the guest kernel's last words when it powers itself off; only
	 * the end of a log that may have grown past what read_file() takes */
	if (read_file_tail(vm->paths.console_log, 0, 4096, &b) < 0)
		return 0;
	/* memmem: a log may hold NUL bytes */
	off = memmem(b.p, b.len, POWER_DOWN, strlen(POWER_DOWN)) != NULL;
	buf_free(&b);
	return off;
}

static pid_t alive(const struct vm *vm)
{
	return vm_pid_alive(vm->paths.pidfile, vm->paths.qmp_arg);
}

enum vm_state vm_state_held(struct vm *vm)
{
	int up = vm_state_up(vm->recorded);

	if (!vm->exists)
		return VM_STOPPED;
	/* the lock is ours, so the record is the truth unless the QEMU it
	 * names has gone since (a start records pid 0 until it launches) */
	if (up && vm->rec_pid && !alive(vm))
		return powered_off(vm) ? VM_STOPPED : VM_CRASHED;
	return vm->recorded;
}

static json_t *state_json(const struct vm *vm, enum vm_state to, pid_t pid,
			  const char *accel, const struct vm_nic *uplink)
{
	json_t *st = json_object(), *pa = json_array();
	long long since = pid && pid == vm->rec_pid ? vm->since :
						      (long long)time(NULL);
	int keep;

	json_object_set_new(st, "status", json_string(vm_state_name(to)));
	json_object_set_new(st, "pid", json_integer(pid));
	json_object_set_new(st, "accel", accel ? json_string(accel) :
						 json_null());
	json_object_set_new(st, "since", json_integer(since));
	/* a new QEMU's: set by its launch (-1 until then); a suspended
	 * guest's goes on at its resume */
	if ((pid || to == VM_SUSPENDED) && vm->console_at >= 0)
		json_object_set_new(st, "console_at",
				    json_integer(vm->console_at));
	/* the cidata's, kept until a start writes another */
	if (vm->seed > 0)
		json_object_set_new(st, "seed", json_integer(vm->seed));
	for (size_t i = 0; uplink && i < uplink->nports; i++) {
		struct buf b = BUF_INIT;

		net_port_format(&uplink->ports[i], &b);
		json_array_append_new(pa, json_string(b.p));
		buf_free(&b);
	}
	/* the same QEMU running on, or a suspended one that resumes with
	 * them: its forwards stay as they are */
	keep = !uplink && ((pid && pid == vm->rec_pid) || to == VM_SUSPENDED);
	for (size_t i = 0; keep && i < vm->ports.n; i++)
		json_array_append_new(pa, json_string(vm->ports.v[i]));
	json_object_set_new(st, "ports", pa);
	if (keep && vm->launched.n) {
		json_t *la = json_array();

		for (size_t i = 0; i < vm->launched.n; i++)
			json_array_append_new(la,
					      json_string(vm->launched.v[i]));
		json_object_set_new(st, "launched", la);
	}
	if (to == VM_SUSPENDED && vm->has_save)
		json_object_set_new(st, "save", vm_save_to_json(&vm->save));
	return st;
}

static int write_record(struct vm *vm, enum vm_state to, pid_t pid,
			const char *accel, const struct vm_nic *uplink)
{
	json_t *j, *st;
	char *s;
	int ret;

	j = vm_spec_to_json(&vm->spec);
	st = state_json(vm, to, pid, accel, uplink);
	json_object_set_new(j, "state", st);
	s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	ret = s ? write_file_atomic(vm->paths.json, s, strlen(s), 0600) :
		  errorf("cannot encode %s", vm->paths.json);
	if (ret == 0) {
		free(vm->rec_accel);
		vm->rec_accel = NULL;
		load_state(vm, st);
		vm->exists = 1;
	}
	free(s);
	json_decref(j);
	return ret;
}

int vm_record(struct vm *vm, enum vm_state to, pid_t pid, const char *accel,
	      const struct vm_nic *uplink)
{
	enum vm_state from = vm_state_held(vm);

	if (!vm_transition_ok(from, to))
		return errorf("VM %s cannot go from %s to %s", vm->name,
			      vm_state_name(from), vm_state_name(to));
	return write_record(vm, to, pid, accel, uplink);
}

int vm_record_spec(struct vm *vm)
{
	char *accel = vm->rec_accel ? xstrdup(vm->rec_accel) : NULL;
	int ret;

	/* load_state() frees rec_accel as it reads the new record */
	ret = write_record(vm, vm->recorded, vm->rec_pid, accel, NULL);
	free(accel);
	return ret;
}

long long vm_room_left(const char *dir, char s[32], int *no_inode)
{
	struct statvfs sv;
	unsigned long long left;

	s[0] = '\0';
	if (statvfs(dir, &sv) < 0)
		return -1;
	/* what nook, run as it is, may take: root has the reserve too */
	left = (unsigned long long)(geteuid() ? sv.f_bavail : sv.f_bfree) *
	       sv.f_frsize;
	/* (a file system that counts no inodes has f_files 0) */
	if (no_inode)
		*no_inode = sv.f_files > 0 &&
			    !(geteuid() ? sv.f_favail : sv.f_ffree);
	if (left >> 20)
		snprintf(s, 32, "%lluM", left >> 20);
	else
		snprintf(s, 32, "%lluK", left >> 10);
	return (long long)left;
}

const char *vm_no_room(struct vm *vm)
{
	char left[32];

	free(vm->no_room);
	vm_room_left(vm->paths.dir, left, NULL);
	vm->no_room = xasprintf("QEMU stopped its guest at a write the disk "
				"holding %s had no room for%s%s%s; free space "
				"there, then 'nook local unpause %s' lets it "
				"go on", vm->paths.dir, *left ? " (" : "",
				left, *left ? " free now)" : "", vm->name);
	return vm->no_room;
}

int vm_sshd_failed_error(const struct vm *vm, const char *words)
{
	return errorf("VM %s: the guest's sshd failed to start, and systemd "
		      "gave up on it (\"%s\"); 'nook local logs %s' shows "
		      "the console, 'nook local stop %s --force' ends it",
		      vm->name, words, vm->name, vm->name);
}

void vm_get_info(struct vm *vm, struct vm_info *i)
{
	int busy = vm->lock_fd < 0 && vm_lock_busy(&vm->paths);
	pid_t pid = alive(vm);
	/* the QEMU a start recorded has gone while it holds the lock: that
	 * start is over and about to say so; the VM is what it will record,
	 * not "starting" with no QEMU, nor "crashed" when a 'stop --force'
	 * ended it */
	int over = busy && vm->rec_pid && !pid;
	/* a stop, delete or suspend that ended it: what it records; a
	 * delete killed once it had ended it: stopped, and said */
	int ending = busy && !pid ? vm_lock_ending(&vm->paths) : -1;

	free(vm->delete_cut);
	vm->delete_cut = busy ? NULL : vm_delete_marked(&vm->paths);
	if (!busy && !pid && vm->delete_cut)
		ending = VM_STOPPED;
	/* a 'stop --force' under a nook that records nothing (a port's, a
	 * snapshot's) ended it: stopped, a paused one too, until a start
	 * records it so */
	if (!pid && ending < 0 && vm_stop_marked(&vm->paths))
		ending = VM_STOPPED;
	enum vm_state st = vm_state_decide(vm->recorded, pid != 0,
					   busy && !over,
					   !pid && (powered_off(vm) ||
						    vm_stop_marked(&vm->paths)),
					   ending);
	struct stat rec;

	/* a delete removed it since its record was read (with the lock and
	 * mark that said so): ended by the delete, not crashed */
	if (st == VM_CRASHED && lstat(vm->paths.json, &rec) < 0 &&
	    errno == ENOENT)
		st = VM_STOPPED;
	int up = st == VM_RUNNING || st == VM_STARTING || st == VM_PAUSED;

	memset(i, 0, sizeof(*i));
	i->name = vm->name;
	i->state = st;
	i->pid = up ? pid : 0;
	i->accel = up ? vm->rec_accel : NULL;
	i->since = vm->since;
	i->image = vm->spec.image.ref;
	i->base_disk = vm->spec.image.disk;
	i->cpus = vm->spec.cpus;
	i->memory = vm->spec.memory;
	i->resident = i->pid ? proc_resident(i->pid) : 0;
	i->ssh_port = vm->spec.ssh_port;
	i->user = vm_spec_login(&vm->spec);
	i->ports = &vm->ports;
	i->dir = vm->paths.dir;
	i->cluster = vm->spec.cluster;
	i->address = vm->spec.address;
	i->delete_cut = vm->delete_cut;
	if (i->pid && vm_console_panicked(vm->paths.console_log,
					  vm->console_at, vm->panic,
					  sizeof(vm->panic)))
		i->panic = vm->panic;
	/* (and nothing listens on its ssh port: one started by hand since,
	 * after the boot, is not on the console. A guest that cannot answer,
	 * paused or its QEMU stopped by a signal, is not asked) */
	else if (i->pid && vm_console_sshd_failed(vm->paths.console_log,
						  vm->console_at,
						  vm->sshd_failed,
						  sizeof(vm->sshd_failed)) &&
		 (st == VM_PAUSED || proc_stopped(i->pid) ||
		  ssh_banner("127.0.0.1", vm->spec.ssh_port, 2000) < 0))
		i->sshd_failed = vm->sshd_failed;
	/* (not asked while another nook holds it: a start says so itself,
	 * and QEMU takes one QMP client at a time; nor of a QEMU stopped by
	 * a signal, which would not answer: half a second for its greeting,
	 * as much for its answer) */
	if (i->pid && !busy && !proc_stopped(i->pid) &&
	    vm_qemu_cpus(&vm->paths, 500) == VM_QEMU_NO_ROOM)
		i->no_room = vm_no_room(vm);
	if (st == VM_SUSPENDED && vm->has_save) {
		i->save_size = vm->save.size;
		i->saved_at = vm->save.saved_at;
		i->save_gone = vm_save_gone(vm);
	}
	if (vm->spec.cluster) {
		char *sw = vm_cluster_switch_dir(vm->dirs, vm->spec.cluster);
		pid_t now = sw ? net_switch_alive(sw) : 0;
		struct buf was = BUF_INIT;

		i->network_up = now != 0;
		i->network_paused = now && proc_stopped(now);
		/* QEMU's vde client does not reconnect: a node that ran
		 * while its network process was replaced is not on it */
		if (now && i->pid && read_file_quiet(vm->paths.link, &was) == 0)
			i->network_cut = strtol(was.p, NULL, 10) != now;
		buf_free(&was);
		free(sw);
	}
}

int vm_ssh(struct vm *vm, const char *user, int must_run,
	   struct ssh_target *t)
{
	const char *login = vm_spec_login(&vm->spec);

	if (must_run) {
		struct vm_info i;

		vm_get_info(vm, &i);
		if (i.state == VM_PAUSED)
			return errorf("VM %s is paused; 'nook local unpause %s' "
				      "lets it run", vm->name, vm->name);
		if (i.state != VM_RUNNING && i.state != VM_STARTING)
			return errorf("VM %s is %s; %s it with 'nook local "
				      "start %s'", vm->name,
				      vm_state_name(i.state),
				      i.state == VM_SUSPENDED ? "resume" :
				      "start", vm->name);
		/* ssh would wait out its ConnectTimeout for nothing */
		if (i.panic)
			return errorf("VM %s: the guest's kernel panicked "
				      "(%s); 'nook local logs %s' shows the "
				      "console, 'nook local stop %s --force' "
				      "ends it", vm->name, i.panic, vm->name,
				      vm->name);
		if (i.no_room)
			return errorf("VM %s: %s", vm->name, i.no_room);
		if (i.sshd_failed)
			return vm_sshd_failed_error(vm, i.sshd_failed);
	}
	memset(t, 0, sizeof(*t));
	t->user = user ? user : login;
	t->host = "127.0.0.1";
	t->port = vm->spec.ssh_port;
	t->identity = vm->paths.key;
	t->known_hosts = vm->paths.known_hosts;
	t->alias = vm->alias;
	/* the shared master is the login user's: another user gets a
	 * connection of its own, not the master's session as the login user */
	t->control = strcmp(t->user, login) ? NULL : vm->paths.control;
	t->persist = 600;
	if (ssh_target_check(t) < 0)
		return -1;
	/* a stopped master would hang this ssh for ever */
	if (must_run && t->control) {
		int rc = ssh_master_check(t->control, SSH_MASTER_CHECK_MS, 0);

		if (rc < 0)
			return -1;
		if (rc == 1)
			t->control = NULL;
		t->master_up = rc == 2;
	}
	return 0;
}

int vm_ssh_user_check(struct vm *vm, const char *user)
{
	const char *cmd[] = { "getent", "passwd", "--", user, NULL };
	struct strvec av = STRVEC_INIT;
	struct buf out = BUF_INIT;
	struct ssh_target t;
	int rc;

	if (!strcmp(user, vm_spec_login(&vm->spec)) ||
	    vm_ssh(vm, NULL, 1, &t) < 0)
		return 0;
	ssh_argv(&t, -1, NULL, cmd, &av);
	rc = run_capture_timeout((const char *const *)av.v, &out, 20000);
	strvec_clear(&av);
	buf_free(&out);
	/* getent's 2: no such key */
	if (rc != 2)
		return 0;
	return errorf("VM %s has no user '%s' (a user made by cloud-init's "
		      "'users:' in the user-data, with nook's key in its "
		      "ssh_authorized_keys, can log in)", vm->name, user);
}

/*
 * --force while another nook holds the lock (a start waiting for the
 * guest, say): end QEMU by its verified pid without the lock, leaving a
 * mark so that the holder, seeing QEMU gone, reports a stop, not a crash,
 * and records it. Only a start, a stop or a suspend looks for the mark:
 * after any other holder (a pause, a port, a snapshot, not a nook at
 * all) nothing records it, and status reads the mark. *how says which
 * step ended QEMU, or that it had ended before this stop could end it.
 */
static int stop_under_holder(struct vm *vm, int timeout_s, const char **how)
{
	pid_t pid = vm_pid_alive(vm->paths.pidfile, vm->paths.qmp_arg);
	int had = vm_stop_marked(&vm->paths);
	const char *ended = NULL;
	char *mark;
	int ret;

	if (!pid)
		return errorf("VM %s is busy: another nook command holds it, "
			      "and no QEMU of it runs now; run 'nook local stop "
			      "%s --force' again in a moment", vm->name,
			      vm->name);
	mark = vm_stop_mark(&vm->paths);
	ret = write_file_atomic(mark, "", 0, 0600);
	free(mark);
	if (ret == 0)
		ret = vm_stop_qemu(&vm->paths, 1, timeout_s, &ended, NULL);
	/* QEMU ended on its own meanwhile, or still runs: not this stop's
	 * doing, which the holder must not be told */
	if ((ret < 0 || ended == vm_not_running) && !had)
		vm_take_stop_mark(&vm->paths);
	if (ret < 0)
		return -1;
	free(vm->how);
	if (ended == vm_not_running)
		vm->how = xasprintf("it was not running: its QEMU ended before "
				    "this stop could end it, while another "
				    "nook command held the VM; 'nook local "
				    "status %s' shows what became of it",
				    vm->name);
	else
		vm->how = xasprintf("%s while another nook command held the "
				    "VM: a start, stop or suspend that holds "
				    "it says what became of it, and 'nook "
				    "local status %s' shows it", ended,
				    vm->name);
	*how = vm->how;
	return 0;
}

int vm_stop(struct vm *vm, int force, int timeout_s, const char **how)
{
	struct buf why = BUF_INIT;
	enum vm_state held;
	char *mark, *begun, left[32];
	int ret, fd;

	/* a record that cannot be read (opened VM_OPEN_BROKEN): its QEMU
	 * found by its paths, as a delete finds it, and the file left as
	 * it is for whoever mends or deletes it */
	if (vm->broken && !force) {
		errorf("VM %s's record cannot be read (said above): --force "
		       "ends its QEMU, and 'nook local delete %s --force' "
		       "removes it", vm->name, vm->name);
		return error_add_cause(vm->broken_why);
	}
	if (vm->broken)
		return vm_take_lock(vm, "stop") < 0 ? -1 :
		       vm_stop_qemu(&vm->paths, 1, timeout_s, how, NULL);
	if (force && vm->lock_fd < 0 && vm_lock_busy(&vm->paths))
		return stop_under_holder(vm, timeout_s, how);
	if (vm_take_lock(vm, "stop") < 0)
		return -1;
	held = vm_state_held(vm);
	if (held == VM_SUSPENDED) {
		free(vm->how);
		vm->how = xasprintf("it was suspended, with no QEMU running; "
				    "its saved state is kept ('nook local "
				    "start %s --cold' discards it)", vm->name);
		*how = vm->how;
		return 0;
	}
	begun = vm_mark_path(vm, VM_MARK_STOP);
	/* (none made, on a disk without an inode to spare: no reason to
	 * fail the stop, whose record is then all that tells) */
	fd = open(begun, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	/* (kept by a stop ^C'd while the power button is waited on: the
	 * guest heard it, and its end is this stop's; a QEMU that runs on
	 * has the next look remove it) */
	/* a guest QEMU stopped at a write with no room cannot hear the
	 * power button: with room now (a megabyte at least, nook's record
	 * needs some too) it makes the write again and goes on; with none,
	 * or stopped again at it, QEMU quits, and the write is lost as in
	 * a power cut. A paused guest cannot hear it either: let run first */
	if (!force && (held == VM_RUNNING || held == VM_PAUSED) &&
	    vm_qemu_cpus(&vm->paths, 1000) == VM_QEMU_NO_ROOM)
		force = vm_room_left(vm->paths.dir, left, NULL) < (1 << 20) ||
			vm_qmp_cont_checked(&vm->paths) != 0;
	else if (held == VM_PAUSED && !force && vm_qmp_cont(&vm->paths) < 0)
		force = 1;
	if (vm_stop_qemu(&vm->paths, force, timeout_s, how, &why) < 0) {
		/* its QEMU runs on: nothing was stopped */
		unlink(begun);
		free(begun);
		buf_free(&why);
		return -1;
	}
	/* a stop --force meanwhile ended QEMU, not our ask: its mark says so
	 * (and is ours to take, as a start takes it) */
	mark = vm_stop_mark(&vm->paths);
	/* one found with no QEMU to stop is an earlier stop's: no news */
	if (unlink(mark) == 0 && *how != vm_not_running) {
		*how = "QEMU was ended by 'nook local stop --force' meanwhile";
		buf_free(&why);
	}
	free(mark);
	if (why.len) {
		free(vm->how);
		vm->how = xasprintf("%s: %s", *how, why.p);
		*how = vm->how;
	}
	buf_free(&why);
	ret = vm_record(vm, VM_STOPPED, 0, NULL, NULL);
	/* (kept when the record failed: the next look writes it) */
	if (ret == 0)
		unlink(begun);
	free(begun);
	if (vm->spec.cluster)
		vm->net_gc = 1;
	return ret;
}

/*
 * A deleted VM's directory, but for its record, lock and delete mark: a
 * look that finds the record finds the lock and mark that say "being
 * deleted" (a directory's own order could take those first, and show it
 * crashed for an instant), and a delete cut off here leaves a VM whose
 * delete was cut short, as the README has it, not a directory with no
 * record whose disk and keys a start would take up again. 0 or -1 said.
 */
static int remove_but_record(const struct vm_paths *p)
{
	DIR *dir = opendir(p->dir);
	char *mark = vm_delete_mark(p);
	struct dirent *e;
	int ret = 0;

	if (!dir) {
		free(mark);
		return errno == ENOENT ? 0 :
		       error_errno("cannot read %s", p->dir);
	}
	while (ret == 0 && (e = readdir(dir))) {
		char *path;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		path = xasprintf("%s/%s", p->dir, e->d_name);
		if (strcmp(path, p->json) && strcmp(path, p->lock) &&
		    strcmp(path, mark))
			ret = remove_tree(path);
		free(path);
	}
	closedir(dir);
	free(mark);
	return ret;
}

int vm_remove(struct vm *vm, int force)
{
	const char *how;
	pid_t pid;

	if (vm->broken && !force) {
		errorf("VM %s's record cannot be read (said above); 'nook "
		       "local delete %s --force' removes it", vm->name,
		       vm->name);
		return error_add_cause(vm->broken_why);
	}
	if (vm_take_lock(vm, "delete") < 0)
		return -1;
	pid = alive(vm);
	if (pid && !force)
		return errorf("VM %s is %s (pid %d); stop it first or use "
			      "--force", vm->name,
			      vm_state_held(vm) == VM_PAUSED ? "paused" :
			      "running", (int)pid);
	vm_delete_begin(vm, vm->cluster_held ? vm->spec.cluster : vm->name);
	if (pid && vm_stop_qemu(&vm->paths, 1, 0, &how, NULL) < 0)
		return -1;
	vm_clean_runtime(&vm->paths);
	if (remove_tree(vm->paths.run) < 0 ||
	    remove_but_record(&vm->paths) < 0 ||
	    remove_tree(vm->paths.json) < 0 || remove_tree(vm->paths.dir) < 0)
		return -1;
	vm->exists = 0;
	if (vm->spec.cluster) {
		if (!vm->cluster_held)
			vm_cluster_node_gone(vm->dirs, vm->spec.cluster,
					     vm->spec.node);
		vm->net_gc = 1;
	}
	return 0;
}

void vm_delete_begin(struct vm *vm, const char *what)
{
	char *mark = vm_delete_mark(&vm->paths);
	int fd;

	if (!what) {
		unlink(mark);
		free(mark);
		return;
	}
	fd = open(mark, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	/* (a mark cut short names no VM: vm_delete_marked() reads none) */
	if (fd >= 0 && write_all(fd, what, strlen(what)) == 0)
		fsync(fd);
	if (fd >= 0)
		close(fd);
	free(mark);
}

int vm_delete(struct vm *vm, int force)
{
	if (vm_remove(vm, force) < 0)
		return -1;
	/* the cluster's running nodes get its names now: a deleted last
	 * node's leaves them at once, not at their next start */
	if (vm->spec.cluster)
		vm_cluster_hosts(vm->dirs, vm->spec.cluster);
	return 0;
}

const char *vm_console_log(const struct vm *vm)
{
	return vm->paths.console_log;
}

const char *vm_serial_socket(const struct vm *vm)
{
	return vm->paths.serial;
}

int vm_console_taken(struct vm *vm)
{
	struct qmp q;
	json_t *all = NULL, *dev;
	size_t i;
	int rc = 0;

	if (qmp_open(&q, vm->paths.qmp, 2000) == 0)
		qmp_execute(&q, "query-chardev", NULL, 2000, &all);
	qmp_close(&q);
	/* a socket server's filename is "disconnected:unix:PATH,server=on"
	 * until a client comes, "unix:PATH,server=on" while it stays */
	json_array_foreach(all, i, dev) {
		const char *label = json_string_value(
			json_object_get(dev, "label"));
		const char *file = json_string_value(
			json_object_get(dev, "filename"));

		if (label && file && !strcmp(label, VM_SERIAL_CHARDEV))
			rc = strncmp(file, "disconnected:", 13) != 0;
	}
	json_decref(all);
	return rc;
}

const char *vm_run_dir(const struct vm *vm)
{
	return vm->paths.run;
}

void vm_console_tail(const struct vm *vm, int n, struct buf *out)
{
	struct buf b = BUF_INIT;
	size_t i;
	int lines = 0;

	/* lines enough from its end: a long-lived VM's log may have grown
	 * past what read_file() takes */
	if (read_file_tail(vm->paths.console_log, 0, 256 * 1024, &b) < 0 ||
	    !b.len) {
		buf_free(&b);
		return;
	}
	for (i = b.len; i > 0; i--)
		if (b.p[i - 1] == '\n' && i != b.len && ++lines == n)
			break;
	buf_add(out, b.p + i, b.len - i);
	buf_free(&b);
}

void vm_qemu_messages(const struct vm *vm, struct buf *out)
{
	read_file_quiet(vm->paths.qemu_log, out);
}

int vm_guest_run(struct vm *vm, const char *const *cmd, struct buf *out)
{
	struct strvec argv = STRVEC_INIT;
	struct ssh_target t;
	int rc;

	vm_ssh(vm, NULL, 0, &t);
	ssh_argv(&t, -1, NULL, cmd, &argv);
	/* a guest that stopped answering ends this, not the caller */
	rc = run_capture_timeout((const char *const *)argv.v, out,
				 VM_GUEST_RUN_MS);
	if (rc == RUN_TIMED_OUT)
		rc = errorf("the guest did not answer '%s' within %d s",
			    cmd[0], VM_GUEST_RUN_MS / 1000);
	strvec_clear(&argv);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int vm_list_has(const struct nook_dirs *d, const char *name)
{
	char *json = xasprintf("%s/vms/%s/vm.json", d->data, name);
	struct stat st;
	int has = lstat(json, &st) == 0;

	free(json);
	return has;
}

void vm_list(const struct nook_dirs *d, struct strvec *names)
{
	char *vms = xasprintf("%s/vms", d->data);
	DIR *dir = opendir(vms);
	struct dirent *e;

	for (;;) {
		e = dir ? readdir(dir) : NULL;
		if (!e)
			break;
		if (!vm_name_valid(e->d_name))
			continue;
		/* a record there, read or not (a symlink that leads nowhere
		 * too): the caller opens it */
		if (vm_list_has(d, e->d_name))
			strvec_push(names, e->d_name);
	}
	if (dir)
		closedir(dir);
	if (names->n)
		qsort(names->v, names->n, sizeof(*names->v), cmp_str);
	free(vms);
}

/* 1 when path leads into directory realdir (a realpath()). */
static int leads_under(const char *path, const char *realdir)
{
	char *real = realpath(path, NULL);
	int in = real && path_under(realdir, real);

	free(real);
	return in;
}

/* 1 when VM name's disk is made on the image in realdir. A VM whose
 * record cannot be read is asked its overlay, whose header names what
 * it is made on; one that cannot tell counts as a user: its image is
 * kept, not lost under it. */
static int uses_image(const struct nook_dirs *d, const char *name,
		      const char *realdir)
{
	struct vm *vm;
	char *backing;
	int uses = 0;

	if (vm_open(d, name, VM_OPEN_BROKEN, &vm) < 0)
		return 0; /* gone meanwhile */
	if (!vm->broken) {
		uses = leads_under(vm->spec.image.disk, realdir);
	} else if (access(vm->paths.disk, F_OK) == 0) {
		backing = img_qcow2_backing(vm->paths.disk);
		/* (nook names it absolute: a relative one is no answer) */
		uses = !backing || backing[0] != '/' ||
		       leads_under(backing, realdir);
		free(backing);
	}
	vm_close(vm);
	return uses;
}

void vm_users_of_image(const struct nook_dirs *d, const char *dir,
		       struct strvec *users)
{
	struct strvec names = STRVEC_INIT;
	/* the record holds its image's realpath(): a NOOK_HOME with a
	 * symlink or a trailing slash must still find it */
	char *real = realpath(dir, NULL);

	vm_list(d, &names);
	for (size_t i = 0; i < names.n; i++)
		if (uses_image(d, names.v[i], real ? real : dir))
			strvec_push(users, names.v[i]);
	strvec_clear(&names);
	free(real);
}

void vm_image_unpacked(const struct nook_dirs *d, const char *dir,
		       struct strvec *files)
{
	struct vm_image img;
	char *cache;

	if (vm_image_resolve(d->data, dir, NULL, &img) < 0)
		return;
	cache = xasprintf("%s/cache/boot", d->data);
	vm_boot_cached(cache, img.kernel, files);
	vm_boot_cached(cache, img.initrd, files);
	free(cache);
	vm_image_free(&img);
}

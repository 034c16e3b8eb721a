/*
 * Named snapshots, as Lima's `limactl snapshot`: QEMU's internal
 * snapshots inside the VM's qcow2 overlay (the base image is only ever
 * read). While QEMU runs, QMP's snapshot-save / snapshot-load /
 * snapshot-delete jobs (QEMU >= 6.0) on the overlay's node, which hold
 * the memory and device state too, each waited for with query-jobs within
 * a bound; while it does not, `qemu-img snapshot` on the overlay (the
 * disk alone). Only the overlay is writable: the cidata seed is attached
 * read-only, so it needs no snapshot of its own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "qmp.h"

#define TAG_MAX 64

void vm_snapshots_free(struct vm_snapshots *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].tag);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

int vm_snapshot_tag_check(const char *tag)
{
	size_t n = strlen(tag);

	if (!n)
		return errorf("a snapshot tag cannot be empty");
	if (n > TAG_MAX)
		return errorf("snapshot tag '%.20s...' is too long: at most %d "
			      "characters", tag, TAG_MAX);
	if (!((*tag >= 'a' && *tag <= 'z') || (*tag >= 'A' && *tag <= 'Z')))
		return errorf("snapshot tag '%s' must begin with a letter (QEMU "
			      "reads a tag of digits as a snapshot's id)", tag);
	if (strspn(tag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		   "0123456789._-") != n)
		return errorf("snapshot tag '%s': only letters, digits, '.', "
			      "'_' and '-' may be in it", tag);
	return 0;
}

int vm_snapshots_parse(const json_t *arr, struct vm_snapshots *out)
{
	size_t i;
	json_t *e;

	if (!arr)
		return 0; /* qemu-img leaves the array out when it is empty */
	if (!json_is_array(arr))
		return errorf("QEMU's list of snapshots is not a list");
	out->v = xrealloc(out->v, sizeof(*out->v) *
			  (out->n + json_array_size(arr)));
	json_array_foreach(arr, i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		const json_t *sz = json_object_get(e, "vm-state-size");
		const json_t *date = json_object_get(e, "date-sec");
		struct vm_snapshot *s = &out->v[out->n];

		if (!name || !json_is_integer(sz) || !json_is_integer(date) ||
		    json_integer_value(sz) < 0)
			return errorf("QEMU's list of snapshots: entry %zu lacks "
				      "a name, a size or a date", i + 1);
		s->tag = xstrdup(name);
		s->size = (uint64_t)json_integer_value(sz);
		s->memory = s->size > 0;
		s->date = json_integer_value(date);
		out->n++;
	}
	return 0;
}

/* The snapshot called tag in s, or NULL. */
static const struct vm_snapshot *find(const struct vm_snapshots *s,
				      const char *tag)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i].tag, tag))
			return &s->v[i];
	return NULL;
}

/* ---- QEMU running: QMP ---- */

/* A bound for a job that moves a guest of memory bytes: a minute, and a
 * second more for every 8 MiB. */
static int job_bound(uint64_t memory)
{
	return 60 + (int)(memory >> 23);
}

/*
 * The overlay's node in the running QEMU (the device whose file is the
 * VM's disk: the one writable disk) into *node, and its snapshots into
 * *list when list is not NULL.
 */
static int overlay_node(struct vm *vm, struct qmp *q, char **node,
			struct vm_snapshots *list)
{
	json_t *r = NULL, *e, *in, *pick = NULL;
	const char *name;
	size_t i;
	int ret = -1;

	*node = NULL;
	if (qmp_execute(q, "query-block", NULL, 10000, &r) < 0)
		return errorf("VM %s: %s", vm->name, qmp_error(q));
	json_array_foreach(r, i, e) {
		const char *file;

		in = json_object_get(e, "inserted");
		file = json_string_value(json_object_get(in, "file"));
		if (in && file && !strcmp(file, vm->paths.disk))
			pick = in;
	}
	name = json_string_value(json_object_get(pick, "node-name"));
	if (!name) {
		errorf("VM %s: QEMU shows no block device for %s", vm->name,
		       vm->paths.disk);
		goto out;
	}
	if (list && vm_snapshots_parse(json_object_get(json_object_get(
			pick, "image"), "snapshots"), list) < 0)
		goto out;
	*node = xstrdup(name);
	ret = 0;
out:
	json_decref(r);
	return ret;
}

/* A concluded job gone from QEMU's list (it stays there until told). */
static void dismiss_job(struct qmp *q, const char *id)
{
	json_t *a = json_pack("{s:s}", "id", id);

	qmp_execute(q, "job-dismiss", a, 5000, NULL);
	json_decref(a);
}

/* Wait for job id to conclude within bound_s, then dismiss it: 0 when it
 * ended well, else -1 with QEMU's reason in why. */
static int wait_job(struct qmp *q, const char *id, int bound_s,
		    struct buf *why)
{
	long long deadline = mono_ms() + bound_s * 1000LL;

	for (;;) {
		json_t *r = NULL, *e, *job = NULL;
		const char *st, *err;
		size_t i;
		int done;

		if (qmp_execute(q, "query-jobs", NULL, 10000, &r) < 0) {
			buf_adds(why, qmp_error(q));
			return -1;
		}
		json_array_foreach(r, i, e) {
			const char *eid = json_string_value(json_object_get(e,
									"id"));

			if (eid && !strcmp(eid, id))
				job = e;
		}
		st = json_string_value(json_object_get(job, "status"));
		err = json_string_value(json_object_get(job, "error"));
		done = !job || (st && (!strcmp(st, "concluded") ||
				       !strcmp(st, "null")));
		if (!job)
			buf_addf(why, "QEMU's job %s is gone", id);
		else if (done && err)
			buf_adds(why, err);
		json_decref(r);
		if (done) {
			dismiss_job(q, id);
			return why->len ? -1 : 0;
		}
		if (mono_ms() > deadline) {
			buf_addf(why, "QEMU's job %s was not done in %d s", id,
				 bound_s);
			return -1;
		}
		sleep_ms(50);
	}
}

/* Dismiss the concluded jobs of nooks killed before they could: each
 * stays in QEMU for good otherwise, and one whose id (its nook's pid)
 * comes again would make that job fail to start. */
static void sweep_jobs(struct qmp *q)
{
	json_t *r = NULL, *e;
	size_t i;

	if (qmp_execute(q, "query-jobs", NULL, 10000, &r) < 0)
		return;
	json_array_foreach(r, i, e) {
		const char *id = json_string_value(json_object_get(e, "id"));
		const char *st = json_string_value(json_object_get(e,
								   "status"));

		if (!id || !st || strncmp(id, "nook-snapshot-", 14) ||
		    strcmp(st, "concluded"))
			continue;
		dismiss_job(q, id);
	}
	json_decref(r);
}

/*
 * A snapshot's save failed, saying why: when the disk holding the VM's
 * overlay is full (ENOSPC in what was said, or under 1M free), or has
 * less free than need (what the save may take), that is added to why,
 * with what to do. QEMU's own word for a full disk is often a bare
 * "Input/output error". Less room than need only may be: a save fails
 * for other reasons too (a timeout, a QMP error).
 */
static void add_full_disk_hint(const struct vm *vm, uint64_t need,
			       struct buf *why)
{
	int said = why->p && strstr(why->p, strerror(ENOSPC));
	char free_s[32];
	long long left = vm_room_left(vm->paths.dir, free_s, NULL);

	if (left < 0 || (!said && (unsigned long long)left >= need))
		return;
	buf_addf(why, "; the disk holding %s %s (%s free", vm->paths.dir,
		 said || !(left >> 20) ? "is full" : "may have too little room",
		 free_s);
	if (!said && left >> 20)
		buf_addf(why, ", less than the %lluM a snapshot of its memory "
			 "may take", (unsigned long long)(need >> 20));
	buf_addf(why, "): free space there, or remove a snapshot ('nook "
		 "local snapshot rm %s TAG'), then save again", vm->name);
}

/* Run snapshot job cmd ("snapshot-save", -load, -delete) for tag on the
 * overlay's node (with its memory for save and load) and wait for it. */
static int run_job(struct vm *vm, struct qmp *q, const char *cmd,
		   const char *tag, const char *node)
{
	char *id = xasprintf("nook-%s-%d", cmd, (int)getpid());
	struct buf why = BUF_INIT;
	json_t *args = json_pack("{s:s,s:s,s:[s]}", "job-id", id, "tag", tag,
				 "devices", node);
	int rc;

	sweep_jobs(q);
	if (strcmp(cmd, "snapshot-delete"))
		json_object_set_new(args, "vmstate", json_string(node));
	rc = qmp_execute(q, cmd, args, 10000, NULL);
	json_decref(args);
	if (rc < 0)
		buf_adds(&why, qmp_error(q));
	else
		rc = wait_job(q, id, job_bound(vm->spec.memory), &why);
	if (rc < 0 && !strcmp(cmd, "snapshot-save"))
		add_full_disk_hint(vm, vm->spec.memory, &why);
	if (rc < 0)
		errorf("VM %s: %s of '%s' failed: %s", vm->name, cmd, tag,
		       why.p);
	buf_free(&why);
	free(id);
	return rc;
}

/* ---- QEMU not running: qemu-img on the overlay ---- */

static int disk_list(struct vm *vm, struct vm_snapshots *out)
{
	json_t *info;
	int rc;

	if (img_disk_info(vm->paths.disk, &info) < 0)
		return -1;
	rc = vm_snapshots_parse(json_object_get(info, "snapshots"), out);
	json_decref(info);
	return rc;
}

/* qemu-img snapshot op (-c, -a, -d) tag on the overlay. */
static int disk_op(struct vm *vm, const char *op, const char *tag)
{
	const char *argv[] = { "qemu-img", "snapshot", "-q", op, tag,
			       vm->paths.disk, NULL };
	struct buf out = BUF_INIT;
	int rc = vm_run_bounded(argv, 600000, &out);

	buf_trim_newlines(&out);
	/* a snapshot of the disk alone takes a copy of its tables */
	if (rc > 0 && !strcmp(op, "-c"))
		add_full_disk_hint(vm, 1 << 20, &out);
	if (rc > 0)
		errorf("VM %s: qemu-img snapshot %s %s failed (exit %d): %s",
		       vm->name, op, tag, rc, out.p);
	buf_free(&out);
	return rc == 0 ? 0 : -1;
}

/* ---- the operations ---- */

/*
 * Take the lock and see how the VM is: *q open when QEMU runs (*paused
 * set when its CPUs are stopped), closed (fd -1) when it does not. A
 * suspended or starting VM is refused, saying what to do.
 */
static int begin(struct vm *vm, const char *what, struct qmp *q, int *paused)
{
	enum vm_state st;

	q->fd = -1;
	*paused = 0;
	if (vm_take_lock(vm, "snapshot") < 0)
		return -1;
	st = vm_state_held(vm);
	if (st == VM_SUSPENDED)
		return errorf("VM %s is suspended: its save would no longer "
			      "match its disk after a snapshot %s; 'nook local "
			      "start %s' resumes it first ('--cold' discards "
			      "the save)", vm->name, what, vm->name);
	if (st == VM_STARTING)
		return errorf("VM %s is starting: wait until it is ready",
			      vm->name);
	if (st != VM_RUNNING && st != VM_PAUSED)
		return 0;
	if (!vm_pid_alive(vm->paths.pidfile, vm->paths.qmp_arg))
		return errorf("VM %s: its QEMU is gone", vm->name);
	*paused = st == VM_PAUSED;
	if (qmp_open(q, vm->paths.qmp, 5000) < 0) {
		errorf("VM %s: %s", vm->name, qmp_error(q));
		qmp_close(q);
		return -1;
	}
	return 0;
}

/* The snapshots now, from QEMU when it runs, else from the disk; the
 * overlay's node too when QEMU runs. */
static int snapshots_now(struct vm *vm, struct qmp *q, char **node,
			 struct vm_snapshots *list)
{
	*node = NULL;
	if (q->fd >= 0)
		return overlay_node(vm, q, node, list);
	return disk_list(vm, list);
}

static int no_such(struct vm *vm, const char *tag)
{
	return errorf("VM %s has no snapshot '%s' ('nook local snapshot list "
		      "%s' shows its snapshots)", vm->name, tag, vm->name);
}

/* QEMU's monitor did not answer q: when a nook holds the VM (a snapshot
 * job holds the monitor while it runs), that nook is named, as a lock
 * taken names it; else QMP's error. -1. */
static int monitor_busy(struct vm *vm, struct qmp *q)
{
	struct buf who = BUF_INIT;

	if (!vm_lock_busy(&vm->paths))
		return errorf("VM %s: %s", vm->name, qmp_error(q));
	vm_busy_holder(vm->paths.lock, &who);
	errorf("VM %s is busy: %s; try again once it is done", vm->name,
	       who.p);
	buf_free(&who);
	return -1;
}

int vm_snapshot_list(struct vm *vm, struct vm_snapshots *out)
{
	struct qmp q = { -1, BUF_INIT, NULL };
	struct vm_info i;
	char *node = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	vm_get_info(vm, &i);
	if ((i.state == VM_RUNNING || i.state == VM_PAUSED) &&
	    qmp_open(&q, vm->paths.qmp, 5000) < 0) {
		monitor_busy(vm, &q);
		qmp_close(&q);
		return -1;
	}
	rc = snapshots_now(vm, &q, &node, out);
	qmp_close(&q);
	free(node);
	if (rc < 0)
		vm_snapshots_free(out);
	return rc;
}

/*
 * What a memory snapshot was made with, kept per tag in
 * vms/NAME/snapshots.json ({"TAG": "FACTS"}): the hash of the running
 * QEMU's command line (memory, CPUs, machine, devices) and QEMU's
 * version. QEMU cannot load memory into a VM made otherwise: it stops
 * half way with the guest paused. The record is written before QEMU
 * saves (a save killed half way leaves one that holds), and a memory
 * snapshot without one (made outside nook) is not loaded: its disk
 * alone can be, while the VM is stopped.
 */
static char *facts_path(const struct vm *vm)
{
	return xasprintf("%s/snapshots.json", vm->paths.dir);
}

/* The running QEMU's facts ("ARGV-HASH VERSION"), or NULL; exact: with
 * vm_argv_hash_exact(), as snapshots made before 2026-12-05 have them. */
static char *running_facts(const struct vm *vm, int exact)
{
	pid_t pid = vm_pid_alive(vm->paths.pidfile, vm->paths.qmp_arg);
	struct buf cmd = BUF_INIT, ver = BUF_INIT;
	struct strvec argv = STRVEC_INIT;
	char path[64], hash[65], *facts = NULL;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (pid <= 0 || read_file_quiet(path, &cmd) < 0 || !cmd.len)
		goto out;
	for (size_t off = 0; off < cmd.len; off += strlen(cmd.p + off) + 1)
		strvec_push(&argv, cmd.p + off);
	if (exact)
		vm_argv_hash_exact((const char *const *)argv.v, argv.n, hash);
	else
		vm_argv_hash((const char *const *)argv.v, argv.n, hash);
	{
		const char *v[] = { argv.v[0], "--version", NULL };

		if (vm_run_bounded(v, 10000, &ver) < 0)
			goto out;
	}
	facts = xasprintf("%s %.*s", hash, (int)strcspn(ver.p, "\n"), ver.p);
out:
	strvec_clear(&argv);
	buf_free(&cmd);
	buf_free(&ver);
	return facts;
}

/* The facts file's object, or NULL when it is missing or unreadable. One
 * that is no regular file is warned of and left alone (*not_file set): a
 * FIFO would hang the read, and be written into. */
static json_t *facts_load(const struct vm *vm, const char *path,
			  int *not_file)
{
	struct buf b = BUF_INIT;
	json_t *all = NULL;
	struct stat st;
	int there = lstat(path, &st) == 0;

	*not_file = there && !S_ISREG(st.st_mode);
	if (*not_file)
		warnf("VM %s: %s is no file: what its snapshots were made with "
		      "is neither read nor kept there", vm->name, path);
	else if (there && read_file_regular(path, &b, (size_t)1 << 20) == 0)
		all = json_loadb(b.p, b.len, 0, NULL);
	buf_free(&b);
	return all;
}

/* Record (facts) or forget (facts NULL) tag's facts: -1 having said why
 * when they could not be recorded (a forget that fails is warned of). */
static int facts_keep(const struct vm *vm, const char *tag,
		      const char *facts)
{
	char *path = facts_path(vm), *text;
	int not_file, ret = 0;
	json_t *all = facts_load(vm, path, &not_file);

	if (not_file) {
		ret = facts ? -1 : 0;
		goto out;
	}
	if (!json_is_object(all)) {
		json_decref(all);
		if (!facts)
			goto out;
		all = json_object();
	}
	if (facts)
		json_object_set_new(all, tag, json_string(facts));
	else
		json_object_del(all, tag);
	text = json_dumps(all, JSON_INDENT(2) | JSON_SORT_KEYS);
	/* a forget that fails (on a full disk) leaves the record of a tag
	 * that is not there, which the next save of it replaces: quiet */
	if (!facts) {
		if (text)
			vm_write_quiet(path, text);
	} else if (!text ||
		   write_file_atomic(path, text, strlen(text), 0600) < 0) {
		warnf("VM %s: cannot keep what snapshot '%s' was made with",
		      vm->name, tag);
		ret = -1;
	}
	free(text);
out:
	json_decref(all);
	free(path);
	return ret;
}

/* 0 when tag's memory can be loaded into the QEMU running now, else -1
 * having said why (also when nothing was recorded). */
static int facts_fit(const struct vm *vm, const char *tag)
{
	char *path = facts_path(vm), *now = NULL;
	int not_file;
	json_t *all = facts_load(vm, path, &not_file);
	const char *then = json_string_value(json_object_get(all, tag));
	int ret = 0;

	if (!then)
		ret = errorf("VM %s: nook has no record of what snapshot '%s' "
			     "was made with (made outside nook, or the record "
			     "lost): its memory is not loaded, as memory that "
			     "does not fit leaves the guest half loaded; stop "
			     "the VM ('nook local stop %s') to restore its "
			     "disk alone", vm->name, tag, vm->name);
	if (then) {
		now = running_facts(vm, 0);
		if (now && strcmp(now, then)) {
			free(now);
			now = running_facts(vm, 1);
		}
		if (!now || strcmp(now, then))
			ret = errorf("VM %s: snapshot '%s' was made by another "
				     "QEMU or with other settings (memory, "
				     "CPUs, devices or port forwards, 'nook "
				     "port' ones too, differ from its "
				     "start's): its memory cannot be loaded "
				     "here; start the VM as it was then, or "
				     "stop it to restore its disk alone",
				     vm->name, tag);
	}
	free(now);
	json_decref(all);
	free(path);
	return ret;
}

/* After a save that failed: tag's record forgotten unless QEMU made the
 * snapshot after all (a job that outlasted its wait, a QMP failure once
 * it was done). */
static void forget_unmade(struct vm *vm, struct qmp *q, const char *tag)
{
	struct vm_snapshots list = { NULL, 0 };
	char *node = NULL;

	if (snapshots_now(vm, q, &node, &list) == 0 && !find(&list, tag))
		facts_keep(vm, tag, NULL);
	vm_snapshots_free(&list);
	free(node);
}

/* What a memory snapshot would be made with could not be kept (when
 * have_facts: they were read, their write failed, said): said, with a
 * full disk named. */
static void not_kept(const struct vm *vm, int have_facts)
{
	struct buf why = BUF_INIT;

	buf_addf(&why, "what it would be made with (QEMU's command line and "
		 "version) cannot be %s, and without it its memory could "
		 "never be loaded", have_facts ? "kept" : "told");
	if (have_facts)
		add_full_disk_hint(vm, vm->spec.memory, &why);
	errorf("VM %s: no snapshot made: %s", vm->name, why.p);
	buf_free(&why);
}

int vm_snapshot_save(struct vm *vm, const char *tag, struct vm_snapshot *made)
{
	struct qmp q = { -1, BUF_INIT, NULL };
	struct vm_snapshots list = { NULL, 0 };
	const struct vm_snapshot *s;
	char *node = NULL, *facts;
	int paused, kept, ret = -1;

	memset(made, 0, sizeof(*made));
	if (vm_snapshot_tag_check(tag) < 0 ||
	    begin(vm, "save", &q, &paused) < 0 ||
	    snapshots_now(vm, &q, &node, &list) < 0)
		goto out;
	if (find(&list, tag)) {
		errorf("VM %s has a snapshot '%s' already: 'nook local snapshot "
		       "rm %s %s' removes it, or pick another tag", vm->name,
		       tag, vm->name, tag);
		goto out;
	}
	if (q.fd >= 0) {
		/* the disk as the guest means it, for a restore of this
		 * snapshot's disk alone (a stopped VM's) */
		if (!paused)
			vm_guest_sync(vm);
		/* recorded first: a save killed half way may still
		 * make the snapshot, which must not be left without it
		 * (its memory could never be loaded) */
		facts = running_facts(vm, 0);
		kept = facts && facts_keep(vm, tag, facts) == 0;
		if (!kept)
			not_kept(vm, facts != NULL);
		free(facts);
		if (!kept)
			goto out;
		if (run_job(vm, &q, "snapshot-save", tag, node) < 0) {
			forget_unmade(vm, &q, tag);
			goto out;
		}
	} else if (disk_op(vm, "-c", tag) < 0) {
		goto out;
	}
	vm_snapshots_free(&list);
	free(node);
	if (snapshots_now(vm, &q, &node, &list) < 0)
		goto out;
	s = find(&list, tag);
	if (!s) {
		errorf("VM %s: QEMU said the snapshot '%s' was made, and does "
		       "not list it", vm->name, tag);
		goto out;
	}
	*made = *s;
	made->tag = xstrdup(s->tag);
	ret = 0;
out:
	vm_snapshots_free(&list);
	qmp_close(&q);
	free(node);
	return ret;
}

/* After the memory came back: the guest's clock stands at the snapshot,
 * and the ssh master's connection belongs to a TCP state the guest no
 * longer has. */
static void after_memory(struct vm *vm)
{
	struct strvec argv = STRVEC_INIT;
	struct buf out = BUF_INIT;

	if (access(vm->paths.control, F_OK) == 0) {
		ssh_master_exit_argv(vm->paths.control, &argv);
		vm_run_bounded((const char *const *)argv.v, 10000, &out);
		unlink(vm->paths.control);
	}
	if (vm_clock_sync(vm) < 0)
		warnf("VM %s: restored, but its clock is still the snapshot's",
		      vm->name);
	strvec_clear(&argv);
	buf_free(&out);
}

/* A load that failed leaves QEMU's CPUs stopped (its memory may be half
 * loaded): recorded paused, saying what to do. */
static void left_stopped(struct vm *vm, struct qmp *q)
{
	json_t *r = NULL;
	int running = 0;

	if (qmp_execute(q, "query-status", NULL, 5000, &r) == 0)
		running = json_is_true(json_object_get(r, "running"));
	json_decref(r);
	if (running)
		return;
	if (vm_record(vm, VM_PAUSED, vm->rec_pid, vm->rec_accel, NULL) < 0)
		return;
	warnf("VM %s is left paused: its memory may be half loaded; 'nook "
	      "local stop %s --force', then start it, boots it afresh",
	      vm->name, vm->name);
}

int vm_snapshot_restore(struct vm *vm, const char *tag, int *memory)
{
	struct qmp q = { -1, BUF_INIT, NULL };
	struct vm_snapshots list = { NULL, 0 };
	const struct vm_snapshot *s;
	char *node = NULL;
	int paused, ret = -1;

	*memory = 0;
	if (vm_snapshot_tag_check(tag) < 0 ||
	    begin(vm, "restore", &q, &paused) < 0 ||
	    snapshots_now(vm, &q, &node, &list) < 0)
		goto out;
	s = find(&list, tag);
	if (!s) {
		no_such(vm, tag);
		goto out;
	}
	if (q.fd < 0) {
		ret = disk_op(vm, "-a", tag);
		if (ret == 0 && s->memory)
			warnf("VM %s is not running: snapshot '%s' gave back its "
			      "disk, not its memory ('nook local start %s', "
			      "then restore again, brings the memory too)",
			      vm->name, tag, vm->name);
		goto out;
	}
	if (!s->memory) {
		errorf("VM %s: snapshot '%s' holds the disk alone (it was made "
		       "while the VM was stopped), and a disk cannot change "
		       "under a running guest: 'nook local stop %s' first",
		       vm->name, tag, vm->name);
		goto out;
	}
	if (facts_fit(vm, tag) < 0)
		goto out;
	if (run_job(vm, &q, "snapshot-load", tag, node) < 0) {
		if (!paused)
			left_stopped(vm, &q);
		goto out;
	}
	*memory = 1;
	qmp_close(&q);
	/* the console's output from here on is the restored guest's: a
	 * panic before it is not (vm_console_panicked()) */
	vm->console_at = file_size(vm->paths.console_log);
	if (vm_record_spec(vm) < 0)
		warnf("VM %s: its record could not be written: a panic on its "
		      "console from before the restore may still be shown "
		      "('nook local stop %s' and start clear it)", vm->name,
		      vm->name);
	if (!paused)
		after_memory(vm);
	ret = 0;
out:
	vm_snapshots_free(&list);
	qmp_close(&q);
	free(node);
	return ret;
}

int vm_snapshot_delete(struct vm *vm, const char *tag)
{
	struct qmp q = { -1, BUF_INIT, NULL };
	struct vm_snapshots list = { NULL, 0 };
	char *node = NULL;
	int paused, ret = -1;

	if (vm_snapshot_tag_check(tag) < 0 ||
	    begin(vm, "rm", &q, &paused) < 0 ||
	    snapshots_now(vm, &q, &node, &list) < 0)
		goto out;
	if (!find(&list, tag))
		no_such(vm, tag);
	else if (q.fd >= 0)
		ret = run_job(vm, &q, "snapshot-delete", tag, node);
	else
		ret = disk_op(vm, "-d", tag);
	if (ret == 0)
		facts_keep(vm, tag, NULL);
out:
	vm_snapshots_free(&list);
	qmp_close(&q);
	free(node);
	return ret;
}

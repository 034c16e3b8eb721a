/*
 * Suspend, resume and pause: a VM's memory and device state saved to
 * vms/NAME/suspend.save by QEMU's migration to a file, and loaded back by
 * a new QEMU started with the same argv and -incoming defer.
 *
 * The file reaches QEMU as an fd (qmp_send_fd(): QMP getfd, the fd
 * passed with SCM_RIGHTS), not as an exec: URI: QEMU 7.2 has no file:
 * URI, and exec: runs /bin/sh -c inside QEMU with a command line glued
 * from the path. With fd: no shell runs, no path is quoted, and nook
 * itself creates the file (0600, close-on-exec) and fsyncs it before it
 * counts as saved.
 *
 * A save is loaded only when what it was made with still holds (struct
 * vm_save, recorded in vm.json): else the VM boots cold, saying why.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "qmp.h"

#define SAVE_NAME VM_SAVE_NAME

/* ---- the facts, pure ---- */

void vm_save_free(struct vm_save *s)
{
	char **all[] = { &s->qemu, &s->version, &s->machine, &s->accel,
			 &s->cpu, &s->argv_hash, &s->argv_exact };

	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		free(*all[i]);
		*all[i] = NULL;
	}
	memset(s, 0, sizeof(*s));
}

json_t *vm_save_to_json(const struct vm_save *s)
{
	return json_pack("{s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:{s:I,s:I,s:I},"
			 "s:I,s:I}",
			 "qemu", s->qemu, "version", s->version,
			 "machine", s->machine, "accel", s->accel,
			 "cpu", s->cpu, "argv_sha256", s->argv_hash,
			 "disk", "size", (json_int_t)s->disk_size,
			 "mtime_ns", (json_int_t)s->disk_mtime_ns,
			 "inode", (json_int_t)s->disk_ino,
			 "size", (json_int_t)s->size,
			 "saved_at", (json_int_t)s->saved_at);
}

static char *str_field(const json_t *j, const char *key, int *bad)
{
	const char *v = json_string_value(json_object_get(j, key));

	*bad |= !v;
	return v ? xstrdup(v) : NULL;
}

static long long int_field(const json_t *j, const char *key, int *bad)
{
	const json_t *v = json_object_get(j, key);

	*bad |= !json_is_integer(v);
	return json_integer_value(v);
}

int vm_save_from_json(const json_t *j, struct vm_save *s)
{
	const json_t *d = json_object_get(j, "disk");
	int bad = !json_is_object(j) || !json_is_object(d);

	memset(s, 0, sizeof(*s));
	if (bad)
		return -1;
	s->qemu = str_field(j, "qemu", &bad);
	s->version = str_field(j, "version", &bad);
	s->machine = str_field(j, "machine", &bad);
	s->accel = str_field(j, "accel", &bad);
	s->cpu = str_field(j, "cpu", &bad);
	s->argv_hash = str_field(j, "argv_sha256", &bad);
	s->disk_size = (uint64_t)int_field(d, "size", &bad);
	s->disk_mtime_ns = int_field(d, "mtime_ns", &bad);
	s->disk_ino = (unsigned long long)int_field(d, "inode", &bad);
	s->size = (uint64_t)int_field(j, "size", &bad);
	s->saved_at = int_field(j, "saved_at", &bad);
	if (bad)
		vm_save_free(s);
	return bad ? -1 : 0;
}

static int differs(const char *a, const char *b)
{
	return !a || !b || strcmp(a, b);
}

static const char *or_unknown(const char *s)
{
	return s ? s : "unknown";
}

int vm_save_fits(const struct vm_save *rec, const struct vm_save *now,
		 struct buf *why)
{
	static const struct {
		size_t off;
		const char *what;
	} strs[] = {
		{ offsetof(struct vm_save, qemu), "the QEMU binary" },
		{ offsetof(struct vm_save, version), "QEMU's version" },
		{ offsetof(struct vm_save, machine), "the machine type" },
		{ offsetof(struct vm_save, accel), "the accelerator" },
		{ offsetof(struct vm_save, cpu), "the CPU model" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(strs); i++) {
		const char *a = *(char *const *)((const char *)rec + strs[i].off);
		const char *b = *(char *const *)((const char *)now + strs[i].off);

		if (differs(a, b)) {
			buf_addf(why, "%s changed since the save (%s, now %s)",
				 strs[i].what, or_unknown(a), or_unknown(b));
			return 0;
		}
	}
	if (!vm_save_argv_same(rec, now))
		buf_adds(why, "QEMU's command line (settings or devices) "
			 "differs from the one the save was made with");
	else if (rec->disk_size != now->disk_size ||
		 rec->disk_mtime_ns != now->disk_mtime_ns ||
		 rec->disk_ino != now->disk_ino)
		buf_adds(why, "the VM's disk changed since the save (its size, "
			 "time or inode differ): its memory would not match it");
	else if (rec->size != now->size)
		buf_addf(why, "the save file is %llu bytes, %llu when it was "
			 "made (truncated or replaced)",
			 (unsigned long long)now->size,
			 (unsigned long long)rec->size);
	else
		return 1;
	return 0;
}

int vm_machine_alias(const char *help, const char *alias, struct buf *out)
{
	size_t n = strlen(alias);

	for (const char *l = help; l && *l;) {
		size_t len = strcspn(l, "\n");
		const char *of = memmem(l, len, "(alias of ", 10);

		if (!strncmp(l, alias, n) && (l[n] == ' ' || l[n] == '\t') &&
		    of) {
			const char *v = of + 10;
			size_t vl = strcspn(v, ")\n");

			if (vl && v[vl] == ')') {
				buf_add(out, v, vl);
				return 0;
			}
		}
		l += len;
		if (*l)
			l++;
	}
	return -1;
}

int vm_qemu_version_parse(const char *text, struct buf *out)
{
	const char *v = text ? strstr(text, " version ") : NULL;
	size_t len;

	if (!v)
		return -1;
	v += 9;
	len = strcspn(v, "\r\n");
	if (!len || *v < '0' || *v > '9')
		return -1;
	buf_add(out, v, len);
	return 0;
}

/* a, with the host port of each "hostfwd=PROTO:ADDR:PORT-..." left
 * out, into out */
static void without_host_ports(const char *a, struct buf *out)
{
	const char *f;

	while ((f = strstr(a, "hostfwd="))) {
		const char *colon = strchr(f + strlen("hostfwd="), ':');

		colon = colon ? strchr(colon + 1, ':') : NULL;
		if (!colon)
			break;
		buf_add(out, a, (size_t)(colon + 1 - a));
		a = colon + 1 + strspn(colon + 1, "0123456789");
	}
	buf_adds(out, a);
}

static void argv_hash(const char *const *argv, size_t n, int exact,
		      char out[65])
{
	struct sha256 h;

	sha256_init(&h);
	for (size_t i = 0; i < n; i++) {
		struct buf b = BUF_INIT;

		if (!strcmp(argv[i], "-incoming")) {
			i++;
			continue;
		}
		if (exact)
			buf_adds(&b, argv[i]);
		else
			without_host_ports(argv[i], &b);
		sha256_update(&h, b.p ? b.p : "", b.len + 1);
		buf_free(&b);
		/* -append's kernel arguments, not that there are some: only
		 * a boot reads them, not the machine a save loads into
		 * (QEMU keeps them for its firmware, outside the migrated
		 * state). A save outlives a change of them (--append, or
		 * nook's own, as for a boot on one vCPU); the guest runs on
		 * with those it booted with until it boots again. */
		if (!strcmp(argv[i], "-append"))
			i++;
	}
	if (sha256_hex(&h, out) < 0)
		out[0] = '\0';
}

void vm_argv_hash(const char *const *argv, size_t n, char out[65])
{
	argv_hash(argv, n, 0, out);
}

void vm_argv_hash_exact(const char *const *argv, size_t n, char out[65])
{
	argv_hash(argv, n, 1, out);
}

const char *vm_argv_value(const char *const *argv, size_t n, const char *opt)
{
	for (size_t i = 0; i + 1 < n; i++)
		if (!strcmp(argv[i], opt))
			return argv[i + 1];
	return NULL;
}

/* ---- small bounded helpers ---- */

/* vm_run_bounded(): ends when the child does, even if something it
 * started keeps the pipe open (ssh's ControlPersist master does). */
int vm_run_bounded(const char *const *argv, int ms, struct buf *out)
{
	struct child c = CHILD_INIT;
	long long deadline = mono_ms() + ms;
	char chunk[4096];
	int pfd[2], st = -1;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return error_errno("cannot make a pipe for %s's output",
				   argv[0]);
	/* our end only: the child's stays blocking */
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	c.argv = argv;
	c.out = c.err = pfd[1];
	c.in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (child_start(&c) == 0) {
		for (;;) {
			ssize_t n = read(pfd[0], chunk, sizeof(chunk));

			if (n > 0) {
				buf_add(out, chunk, (size_t)n);
				continue;
			}
			if (child_poll(&c, &st) != 0) {
				while ((n = read(pfd[0], chunk,
						 sizeof(chunk))) > 0)
					buf_add(out, chunk, (size_t)n);
				break;
			}
			if (mono_ms() > deadline) {
				child_kill(&c);
				st = errorf("%s: no answer in %d s", argv[0],
					    ms / 1000);
				break;
			}
			sleep_ms(20);
		}
	}
	close(pfd[0]);
	close(pfd[1]);
	if (c.in >= 0)
		close(c.in);
	buf_add(out, "", 0);
	return st;
}

char *vm_machine_pinned(const char *qemu)
{
	const char *argv[] = { qemu, "-machine", "help", NULL };
	struct buf out = BUF_INIT, m = BUF_INIT;

	if (vm_run_bounded(argv, 10000, &out) != 0 ||
	    vm_machine_alias(out.p, "q35", &m) < 0)
		buf_adds(&m, "q35");
	buf_free(&out);
	return m.p;
}

static char *save_path(const struct vm *vm, int tmp)
{
	return xasprintf(tmp ? "%s/." SAVE_NAME ".tmp" : "%s/" SAVE_NAME,
			 vm->paths.dir);
}

/* What a suspend knows of its save once the file is whole, kept beside
 * it until the save is recorded: a suspend cut off then can be kept. */
static char *facts_path(const struct vm *vm)
{
	return xasprintf("%s/." SAVE_NAME ".facts", vm->paths.dir);
}

/* The same facts, written before the save begins and renamed to
 * facts_path() once it is whole: the rename takes no room on a disk the
 * save has filled. */
static char *facts_begun_path(const struct vm *vm)
{
	return xasprintf("%s/." SAVE_NAME ".facts.begun", vm->paths.dir);
}

/* What a resume loads, kept beside the save while its QEMU starts (the
 * starting record names no save): a resume cut off then can put the VM
 * back as it was. */
static char *resuming_path(const struct vm *vm)
{
	return xasprintf("%s/." SAVE_NAME ".resuming", vm->paths.dir);
}

void vm_save_remove(struct vm *vm)
{
	char *files[] = { save_path(vm, 0), save_path(vm, 1), facts_path(vm),
			  facts_begun_path(vm), resuming_path(vm) };

	for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
		/* and vm_write_quiet()'s temporary file, of a nook killed
		 * as it wrote */
		char *tmp = xasprintf("%s.tmp", files[i]);

		unlink(files[i]);
		unlink(tmp);
		free(tmp);
		free(files[i]);
	}
	vm->has_save = 0;
}

int vm_suspend_cut_off(const struct vm *vm)
{
	char *tmp = save_path(vm, 1), *facts = facts_path(vm);
	/* the facts alone: cut off between keep_save()'s rename and its
	 * record */
	int there = access(tmp, F_OK) == 0 || access(facts, F_OK) == 0;

	free(tmp);
	free(facts);
	return there;
}

/* QEMU out of the migration a cut-off suspend left it in: cancelled,
 * and let run (no later migrate, a suspend, takes a QEMU that ended
 * one), then stopped again when the VM is recorded paused. */
static int mend_qemu(struct qmp *q, int paused)
{
	qmp_execute(q, "migrate_cancel", NULL, 5000, NULL);
	if (qmp_execute(q, "cont", NULL, 10000, NULL) < 0)
		return -1;
	return paused ? qmp_execute(q, "stop", NULL, 10000, NULL) : 0;
}

/* keep_save()'s failure when the save is whole but its record could not
 * be written (a disk the save filled): the save is back under its
 * temporary name, for vm_suspend_mend() to keep once there is room. */
#define SAVE_NOT_RECORDED -2

static int keep_save(struct vm *vm, struct vm_save *f);

/* The whole save a cut-off suspend left, with the facts it wrote beside
 * it, kept and recorded as a finished suspend would: 0; -1 (quietly:
 * no facts, they do not read), or SAVE_NOT_RECORDED. */
static int keep_cut_off(struct vm *vm)
{
	char *path = facts_path(vm);
	char *tmp = save_path(vm, 1), *dst = save_path(vm, 0);
	struct buf b = BUF_INIT;
	struct vm_save f;
	json_t *j = NULL;
	int ret = -1;

	memset(&f, 0, sizeof(f));
	if (read_file_quiet(path, &b) == 0)
		j = json_loadb(b.p, b.len, 0, NULL);
	/* its QEMU quit once the save was whole: ended by the suspend, no
	 * crash (as suspend_qemu() has it) */
	vm->rec_pid = 0;
	/* cut off once keep_save() had renamed the save, before its record:
	 * the save back under its temporary name, for keep_save() again
	 * (no save at all: none to keep; one that cannot be moved is kept
	 * for the next look, as one whose record cannot be written) */
	if (j && access(tmp, F_OK) < 0 && rename(dst, tmp) < 0) {
		if (errno != ENOENT)
			ret = SAVE_NOT_RECORDED;
		goto out;
	}
	if (j && vm_save_from_json(j, &f) == 0)
		ret = keep_save(vm, &f);
out:
	vm_save_free(&f);
	json_decref(j);
	buf_free(&b);
	free(path);
	free(tmp);
	free(dst);
	return ret;
}

void vm_suspend_mend(struct vm *vm)
{
	struct qmp q = { -1, BUF_INIT, NULL };
	int paused = vm->recorded == VM_PAUSED, keep = 0;
	char *tmp;

	if (!vm_suspend_cut_off(vm)) {
		/* the facts alone (or vm_write_quiet()'s temporary file of
		 * them): a suspend cut off before its save began, its guest
		 * never stopped; nothing to mend */
		char *begun = facts_begun_path(vm);

		tmp = xasprintf("%s.tmp", begun);
		unlink(begun);
		unlink(tmp);
		free(begun);
		free(tmp);
		return;
	}
	tmp = save_path(vm, 1);
	if (vm->recorded == VM_STOPPED && !vm->broken) {
		/* a stopped VM's stale files, the save too (a suspend
		 * cut off once it had recorded it stopped): none is its */
		vm_save_remove(vm);
	} else if ((vm->recorded != VM_RUNNING && !paused) || vm->broken) {
		/* a stale file: nothing else to mend */
	} else if (!vm_pid_alive(vm->paths.pidfile, vm->paths.qmp_arg)) {
		/* cut off once QEMU had saved and quit: a whole save (its
		 * facts beside it) is kept; else the disk is as QEMU left
		 * it, cleanly, and the VM stopped */
		int kept = keep_cut_off(vm);

		if (kept == 0) {
			warnf("VM %s: a suspend of it was cut off once its "
			      "save was whole; the save is kept, and the next "
			      "start resumes it", vm->name);
		} else if (kept == SAVE_NOT_RECORDED) {
			keep = 1;
			warnf("VM %s: its save is whole, and its record still "
			      "cannot be written; free space on the disk "
			      "holding %s, and the next nook command on it "
			      "records it suspended", vm->name, vm->paths.dir);
		} else {
			/* recorded before the save's facts go: with neither, a
			 * look between would call it crashed */
			vm->has_save = 0;
			if (vm_record(vm, VM_STOPPED, 0, NULL, NULL) == 0)
				warnf("VM %s: a suspend of it was cut off once "
				      "its QEMU had ended: what it saved cannot "
				      "be resumed, and the VM is stopped (its "
				      "next start boots)", vm->name);
			vm_save_remove(vm);
		}
	} else if (qmp_open(&q, vm->paths.qmp, 5000) < 0 ||
		   mend_qemu(&q, paused) < 0) {
		keep = 1; /* the next look tries again */
		warnf("VM %s: a suspend of it was cut off, and its guest "
		      "stays stopped for now (%s); 'nook local stop %s "
		      "--force' ends it", vm->name, qmp_error(&q), vm->name);
	} else {
		warnf(paused ? "VM %s: a suspend of it was cut off; it stays "
			       "paused" :
			       "VM %s: a suspend of it was cut off; its guest "
			       "runs on", vm->name);
	}
	qmp_close(&q);
	if (!keep) {
		char *facts = facts_path(vm), *begun = facts_begun_path(vm);

		unlink(tmp);
		unlink(facts);
		unlink(begun);
		free(facts);
		free(begun);
	}
	free(tmp);
}

int vm_resume_cut_off(const struct vm *vm)
{
	char *path = resuming_path(vm);
	int there = vm->recorded == VM_STARTING && access(path, F_OK) == 0;

	free(path);
	return there;
}

/* 1 when the QEMU at vm's socket says its guest runs, else 0. */
static int guest_runs(const struct vm *vm)
{
	int now = vm_qemu_cpus(&vm->paths, 5000);

	/* (stopped since at a write with no room: it ran on from the save) */
	return now == VM_RUNNING || now == VM_QEMU_NO_ROOM;
}

/* A resume cut off once its guest ran on from the save: recorded
 * running, the save gone as a finished resume has it. */
static void resumed_after_all(struct vm *vm, pid_t pid, const char *accel)
{
	/* the forwards the starting record names are QEMU's */
	vm->rec_pid = pid;
	if (vm_record(vm, VM_RUNNING, pid, accel, NULL) < 0)
		return;
	vm_save_remove(vm);
	warnf("VM %s: a resume of it was cut off once its guest ran on from "
	      "its save; it runs", vm->name);
}

void vm_resume_mend(struct vm *vm)
{
	char *path = resuming_path(vm);
	struct buf b = BUF_INIT;
	struct vm_save f;
	json_t *j = NULL;
	const char *how;
	pid_t pid;

	memset(&f, 0, sizeof(f));
	if (!vm_resume_cut_off(vm) || vm->broken)
		goto out;
	if (read_file_quiet(path, &b) == 0)
		j = json_loadb(b.p, b.len, 0, NULL);
	if (!j || vm_save_from_json(j, &f) < 0)
		goto out; /* no facts: a cold start's QEMU, as any other */
	pid = vm_pid_alive(vm->paths.pidfile, vm->paths.qmp_arg);
	if (pid && guest_runs(vm)) {
		resumed_after_all(vm, pid, f.accel);
		goto out;
	}
	/* its QEMU waits for the save, or has it loaded and was never let
	 * run: the save is still the guest's memory */
	if (vm_stop_qemu(&vm->paths, 1, 0, &how, NULL) < 0)
		goto out;
	vm_save_free(&vm->save);
	vm->save = f;
	vm->has_save = 1;
	memset(&f, 0, sizeof(f));
	if (vm_record(vm, VM_SUSPENDED, 0, NULL, NULL) == 0)
		warnf("VM %s: a resume of it was cut off; it is suspended, its "
		      "save kept ('nook local start %s' resumes it)", vm->name,
		      vm->name);
out:
	if (vm->recorded != VM_STARTING)
		unlink(path);
	vm_save_free(&f);
	json_decref(j);
	buf_free(&b);
	free(path);
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return error_errno("cannot open %s", dir);
	rc = fsync(fd);
	close(fd);
	return rc < 0 ? error_errno("fsync %s", dir) : 0;
}

static int disk_facts(const char *path, struct vm_save *f)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return error_errno("cannot read %s", path);
	f->disk_size = (uint64_t)st.st_size;
	f->disk_mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL +
			   st.st_mtim.tv_nsec;
	f->disk_ino = (unsigned long long)st.st_ino;
	return 0;
}

int vm_save_argv_same(const struct vm_save *rec, const struct vm_save *now)
{
	return !differs(rec->argv_hash, now->argv_hash) ||
	       (now->argv_exact && !differs(rec->argv_hash, now->argv_exact));
}

/* argv's hashes into f, the one saves record now and the exact one. */
static void argv_hashes(const char *const *argv, size_t n, struct vm_save *f)
{
	char hash[65];

	free(f->argv_hash);
	free(f->argv_exact);
	vm_argv_hash(argv, n, hash);
	f->argv_hash = xstrdup(hash);
	vm_argv_hash_exact(argv, n, hash);
	f->argv_exact = xstrdup(hash);
}

/* argv's facts: machine, CPU and the hashes. */
static void argv_facts(const char *const *argv, size_t n, struct vm_save *f)
{
	const char *m = vm_argv_value(argv, n, "-machine");
	const char *cpu = vm_argv_value(argv, n, "-cpu");

	argv_hashes(argv, n, f);
	f->machine = m ? xstrdup(m) : NULL;
	f->cpu = cpu ? xstrdup(cpu) : NULL;
}

/* ---- QMP steps ---- */

/* Hand fd to QEMU under name; why gets the reason when it fails. */
static int give_fd(struct qmp *q, int fd, const char *name, struct buf *why)
{
	int rc = qmp_send_fd(q, fd, name, 5000);

	if (rc < 0)
		buf_adds(why, qmp_error(q));
	return rc;
}

static int qmp_do(struct qmp *q, const char *cmd, json_t *args,
		  struct buf *why)
{
	int rc = qmp_execute(q, cmd, args, 10000, NULL);

	json_decref(args);
	if (rc < 0)
		buf_adds(why, qmp_error(q));
	return rc;
}

/* Poll query-migrate until it says completed, within timeout_s. */
static int wait_migration(struct qmp *q, int timeout_s, struct buf *why)
{
	long long deadline = mono_ms() + timeout_s * 1000LL;

	for (;;) {
		json_t *r = NULL;
		const char *st, *desc;
		int done = 0;

		if (qmp_execute(q, "query-migrate", NULL, 10000, &r) < 0) {
			buf_adds(why, qmp_error(q));
			return -1;
		}
		st = json_string_value(json_object_get(r, "status"));
		desc = json_string_value(json_object_get(r, "error-desc"));
		if (st && !strcmp(st, "completed"))
			done = 1;
		else if (st && (!strcmp(st, "failed") ||
				!strcmp(st, "cancelled")))
			done = -1;
		if (done < 0)
			buf_addf(why, "QEMU's migration %s: %s", st,
				 desc ? desc : "(no reason given)");
		json_decref(r);
		if (done)
			return done > 0 ? 0 : -1;
		/* ^C: given up, which the caller undoes (see vm_suspend) */
		if (sig_caught) {
			buf_addf(why, "interrupted (%s)", strsignal(sig_caught));
			return -1;
		}
		if (mono_ms() > deadline) {
			buf_addf(why, "the migration was not done in %d s",
				 timeout_s);
			return -1;
		}
		sleep_ms(50);
	}
}

/* A bound for moving a guest of memory bytes through a file: a minute,
 * and a second more for every 8 MiB. */
static int migration_bound(uint64_t memory)
{
	return 60 + (int)(memory >> 23);
}

int vm_qmp_cont(const struct vm_paths *p)
{
	struct qmp q = { -1, BUF_INIT, NULL };
	int rc = qmp_open(&q, p->qmp, 5000);

	if (rc == 0)
		rc = qmp_execute(&q, "cont", NULL, 10000, NULL);
	qmp_close(&q);
	return rc;
}

/* 1 when QEMU at p, just told to go on, stops its guest again within a
 * second at a write with no room (VM_QEMU_NO_ROOM): the write it made
 * again failed at once. */
static int stops_again(const struct vm_paths *p)
{
	for (int ms = 0; ms < 1000; ms += 100) {
		sleep_ms(100);
		if (vm_qemu_cpus(p, 1000) == VM_QEMU_NO_ROOM)
			return 1;
	}
	return 0;
}

int vm_qmp_cont_checked(const struct vm_paths *p)
{
	if (vm_qmp_cont(p) < 0)
		return -1;
	return stops_again(p) ? VM_QEMU_NO_ROOM : 0;
}

/* ---- the clock ---- */

int vm_clock_sync(struct vm *vm)
{
	static const char *const ping[] = { "true", NULL };
	struct strvec argv = STRVEC_INIT;
	struct buf out = BUF_INIT;
	struct ssh_target t;
	struct timespec ts;
	char at[64];
	const char *date[] = { "sudo", "-n", "date", "-s", at, NULL };
	int rc = -1;

	if (vm_ssh(vm, NULL, 0, &t) < 0)
		return -1;
	/* a resumed guest's sshd answers within seconds; one that does
	 * not (a guest without sshd, a blank disk) is not waited for */
	if (ssh_banner(t.host, t.port,
		       vm_sshd_wait_ms(vm->paths.console_log)) != 1)
		return errorf("the guest's sshd does not answer on 127.0.0.1:%d",
			      t.port);
	/* the master first: a new connection's key exchange takes ~1.6 s
	 * under TCG, a command over the master ~0.1 s */
	ssh_argv(&t, -1, NULL, ping, &argv);
	if (vm_run_bounded((const char *const *)argv.v, 30000, &out) != 0) {
		errorf("cannot reach the guest over ssh to set its clock: %s",
		       out.p ? out.p : "");
		goto out;
	}
	strvec_clear(&argv);
	buf_free(&out);
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(at, sizeof(at), "@%lld.%09ld", (long long)ts.tv_sec,
		 ts.tv_nsec);
	ssh_argv(&t, -1, NULL, date, &argv);
	rc = vm_run_bounded((const char *const *)argv.v, 15000, &out);
	if (rc != 0)
		rc = errorf("cannot set the guest's clock (sudo date, exit "
			    "%d): %s", rc, out.p ? out.p : "");
out:
	strvec_clear(&argv);
	buf_free(&out);
	return rc;
}

/* ---- suspend ---- */

/*
 * Flush the guest's file systems before its memory is saved. The disk of a
 * suspended guest is as its last writeback left it (ext4 keeps data dirty
 * for up to 30 s); a save that is then discarded (--cold, a stale save)
 * would boot a disk that lost what the guest wrote last, as a power cut
 * does: files cloud-init had just written came back empty in a test here.
 * Skipped when sshd does not answer (no sshd, a blank disk; see
 * vm_sshd_wait_ms()): a warning, never a failed suspend.
 */
void vm_guest_sync(struct vm *vm)
{
	static const char *const sync_cmd[] = { "sync", NULL };
	struct strvec argv = STRVEC_INIT;
	struct buf out = BUF_INIT;
	struct ssh_target t;

	if (vm_ssh(vm, NULL, 0, &t) < 0 ||
	    ssh_banner(t.host, t.port,
		       vm_sshd_wait_ms(vm->paths.console_log)) != 1) {
		warnf("VM %s: its sshd does not answer: its file systems are "
		      "saved unsynced", vm->name);
		return;
	}
	ssh_argv(&t, -1, NULL, sync_cmd, &argv);
	if (vm_run_bounded((const char *const *)argv.v, 30000, &out) != 0)
		warnf("VM %s: sync in the guest failed: %s", vm->name,
		      out.p ? out.p : "");
	strvec_clear(&argv);
	buf_free(&out);
}

/* What the running QEMU pid was made with: binary, argv, version. */
static int running_facts(struct vm *vm, pid_t pid, struct qmp *q,
			 struct vm_save *f)
{
	char *exe = xasprintf("/proc/%d/exe", (int)pid);
	char *cmd = xasprintf("/proc/%d/cmdline", (int)pid);
	char link[PATH_MAX];
	struct strvec argv = STRVEC_INIT;
	struct buf b = BUF_INIT;
	json_t *v = NULL, *qv;
	const char *pkg;
	ssize_t n = readlink(exe, link, sizeof(link) - 1);
	int ret = -1;

	if (n <= 0 || read_file(cmd, &b) < 0) {
		error_errno("cannot read %s", exe);
		goto out;
	}
	link[n] = '\0';
	f->qemu = xstrdup(link);
	for (size_t i = 0; i < b.len; i += strlen(b.p + i) + 1)
		strvec_push(&argv, b.p + i);
	argv_facts((const char *const *)argv.v, argv.n, f);
	f->accel = xstrdup(vm->rec_accel ? vm->rec_accel : "tcg");
	if (qmp_execute(q, "query-version", NULL, 5000, &v) < 0) {
		errorf("%s", qmp_error(q));
		goto out;
	}
	qv = json_object_get(v, "qemu");
	pkg = json_string_value(json_object_get(v, "package"));
	/* as `qemu --version` words it: "7.2.22 (Debian 1:7.2+dfsg-7...)" */
	f->version = xasprintf("%lld.%lld.%lld%s%s%s",
		(long long)json_integer_value(json_object_get(qv, "major")),
		(long long)json_integer_value(json_object_get(qv, "minor")),
		(long long)json_integer_value(json_object_get(qv, "micro")),
		pkg && *pkg ? " (" : "", pkg ? pkg : "",
		pkg && *pkg ? ")" : "");
	ret = 0;
out:
	json_decref(v);
	strvec_clear(&argv);
	buf_free(&b);
	free(exe);
	free(cmd);
	return ret;
}

/* stop, then QEMU's state into fd; a failure lets a VM that ran run on. */
static int save_state(struct vm *vm, struct qmp *q, int fd, int was_running,
		      int bound_s)
{
	struct buf why = BUF_INIT;
	int ret = -1;

	if (qmp_do(q, "stop", NULL, &why) < 0 ||
	    /* the default limit is 128 MiB/s; a stopped guest has nothing
	     * to race */
	    qmp_do(q, "migrate-set-parameters",
		   json_pack("{s:I}", "max-bandwidth", (json_int_t)1 << 40),
		   &why) < 0 ||
	    give_fd(q, fd, "nooksave", &why) < 0 ||
	    qmp_do(q, "migrate", json_pack("{s:s}", "uri", "fd:nooksave"),
		   &why) < 0 ||
	    wait_migration(q, bound_s, &why) < 0)
		goto out;
	ret = 0;
out:
	if (ret < 0) {
		errorf("VM %s: cannot save its state: %s", vm->name, why.p);
		qmp_execute(q, "migrate_cancel", NULL, 5000, NULL);
		if (was_running && qmp_execute(q, "cont", NULL, 10000, NULL) < 0)
			warnf("VM %s stays paused: %s", vm->name,
			      qmp_error(q));
	}
	buf_free(&why);
	return ret;
}

/* The save is written and QEMU is gone: keep the file, record it. 0;
 * -1, or SAVE_NOT_RECORDED with the save and its facts left for a mend,
 * having said why. */
static int keep_save(struct vm *vm, struct vm_save *f)
{
	char *tmp = save_path(vm, 1), *dst = save_path(vm, 0);
	struct stat st;
	int ret = -1;

	if (disk_facts(vm->paths.disk, f) < 0)
		goto out;
	if (stat(tmp, &st) < 0) {
		error_errno("cannot read %s", tmp);
		goto out;
	}
	f->size = (uint64_t)st.st_size;
	if (!f->saved_at)
		f->saved_at = (long long)time(NULL);
	if (rename(tmp, dst) < 0) {
		error_errno("cannot rename %s", tmp);
		goto out;
	}
	if (fsync_dir(vm->paths.dir) < 0)
		goto out;
	vm_save_free(&vm->save);
	vm->save = *f;
	vm->has_save = 1;
	memset(f, 0, sizeof(*f));
	ret = vm_record(vm, VM_SUSPENDED, 0, NULL, NULL);
	if (ret < 0) {
		/* the save whole, its record not written: not lost with
		 * it, if its facts are there for the mend to check it by */
		char *facts = facts_path(vm);

		vm->has_save = 0;
		if (access(facts, F_OK) == 0 && rename(dst, tmp) == 0)
			ret = SAVE_NOT_RECORDED;
		free(facts);
	}
	if (ret == 0) {
		free(tmp);
		tmp = facts_path(vm);
		unlink(tmp);
	}
out:
	free(tmp);
	free(dst);
	return ret;
}

/* fsync of the directory holding path: its renames kept through a power
 * cut. 0, or -1 with errno set, nothing said. */
static int sync_dir_of(const char *path)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	int fd, e, ret = -1;

	if (slash)
		*slash = '\0';
	fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		ret = fsync(fd);
		e = errno;
		close(fd);
		errno = e;
	}
	free(dir);
	return ret;
}

int vm_write_quiet(const char *path, const char *s)
{
	char *tmp = xasprintf("%s.tmp", path);
	int fd, e, ret = -1;

	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	if (write_all(fd, s, strlen(s)) < 0 || fsync(fd) < 0) {
		e = errno;
		close(fd);
		errno = e;
		goto out;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0)
		goto out;
	ret = sync_dir_of(path);
out:
	e = errno;
	if (ret < 0)
		unlink(tmp);
	free(tmp);
	errno = e;
	return ret;
}

/* f into path (a file beside the save, for a mend), quietly: 0, or -1
 * with errno set. */
static int write_facts(const char *path, const struct vm_save *f)
{
	json_t *j = vm_save_to_json(f);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	int rc = -1, e = ENOMEM;

	if (s && vm_write_quiet(path, s) == 0)
		rc = 0;
	else if (s)
		e = errno;
	free(s);
	json_decref(j);
	errno = e;
	return rc;
}

/* The save's facts or its file (path) could not be made before it
 * began, errno says why (a save without its facts would be lost by a
 * suspend cut off once it was whole). Said, with what to do; -1. */
static int suspend_unbegun(const struct vm *vm, const char *path)
{
	int e = errno;

	if (e == ENOSPC || e == EDQUOT)
		return errorf("VM %s was not suspended: the disk holding %s "
			      "is full (%s writing %s); free space there "
			      "(a save takes up to its %lluM of memory), then "
			      "suspend again; it runs on as it was", vm->name,
			      vm->paths.dir, strerror(e), path,
			      (unsigned long long)(vm->spec.memory >> 20));
	return errorf("VM %s was not suspended: cannot write %s (%s); it "
		      "runs on as it was", vm->name, path, strerror(e));
}

/* Write the save into its temporary file; QEMU ends once it is safe. */
static int suspend_qemu(struct vm *vm, pid_t pid, int was_running,
			int bound_s, struct vm_save *f)
{
	struct qmp q = { -1, BUF_INIT, NULL };
	char *tmp = save_path(vm, 1), *begun = facts_begun_path(vm);
	char *facts = facts_path(vm);
	int fd = -1, ret = -1;
	const char *how;

	if (qmp_open(&q, vm->paths.qmp, 5000) < 0) {
		errorf("VM %s: %s", vm->name, qmp_error(&q));
		goto out;
	}
	if (running_facts(vm, pid, &q, f) < 0)
		goto out;
	/* the time the save began: a mend's record of it says so, a
	 * finished suspend's the time it ended */
	f->saved_at = (long long)time(NULL);
	if (write_facts(begun, f) < 0) {
		suspend_unbegun(vm, begun);
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		suspend_unbegun(vm, tmp);
		goto out;
	}
	if (save_state(vm, &q, fd, was_running, bound_s) < 0)
		goto out;
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		error_errno("cannot write %s", tmp);
		if (was_running)
			qmp_execute(&q, "cont", NULL, 10000, NULL);
		goto out;
	}
	fd = -1;
	qmp_close(&q);
	/* the save is whole: its facts say so for a mend, should this
	 * suspend be cut off before it is recorded. A rename takes no room
	 * on a disk the save has just filled; one that fails anyway fails
	 * nothing and is not said: a suspend cut off then stops the VM
	 * cleanly */
	if (rename(begun, facts) == 0)
		sync_dir_of(facts);
	f->saved_at = (long long)time(NULL);
	/* QEMU has flushed and let go of the disk; quit ends it. The record
	 * still names it: ended by us, it is no crash (vm_state_held()) */
	ret = vm_stop_qemu(&vm->paths, 1, 0, &how, NULL);
	if (ret == 0)
		vm->rec_pid = 0;
out:
	if (fd >= 0)
		close(fd);
	if (ret < 0) {
		unlink(tmp);
		unlink(facts);
	}
	unlink(begun);
	qmp_close(&q);
	free(tmp);
	free(begun);
	free(facts);
	return ret;
}

/* A stop --force that ended QEMU under a suspend left its mark: the VM
 * is stopped, which is recorded and said (the mark taken, as a start
 * takes it). */
static void stopped_meanwhile(struct vm *vm)
{
	char *mark = vm_stop_mark(&vm->paths);

	/* our QMP connection breaks as the stop's QEMU begins to end (its
	 * sockets go first): its pid may stay a moment; bounded by the
	 * stop's own ways (QMP, SIGTERM, SIGKILL) */
	for (int ms = 0; ms < 30000 && access(mark, F_OK) == 0 &&
	     vm_pid_alive(vm->paths.pidfile, vm->paths.qmp_arg); ms += 100)
		sleep_ms(100);
	/* the mark goes once the record says stopped: a status between the
	 * two would see a QEMU gone with neither, and call it crashed */
	if (!vm_pid_alive(vm->paths.pidfile, vm->paths.qmp_arg) &&
	    access(mark, F_OK) == 0) {
		if (vm_record(vm, VM_STOPPED, 0, NULL, NULL) < 0)
			warnf("VM %s: its record still says running", vm->name);
		unlink(mark);
		errorf("VM %s: stopped while it was being suspended (nook local "
		       "stop --force)", vm->name);
	}
	free(mark);
}

int vm_suspend(struct vm *vm, int timeout_s, uint64_t *size,
	       double *seconds)
{
	double t0 = mono_s();
	struct sigaction old[3];
	struct vm_save f;
	enum vm_state held;
	pid_t pid;
	int ret = -1, kept;

	memset(&f, 0, sizeof(f));
	if (vm_take_lock(vm, "suspend") < 0)
		return -1;
	held = vm_state_held(vm);
	pid = vm_pid_alive(vm->paths.pidfile, vm->paths.qmp_arg);
	if ((held != VM_RUNNING && held != VM_PAUSED) || !pid)
		return errorf("VM %s is %s: only a running or paused VM can be "
			      "suspended", vm->name, vm_state_name(held));
	/* ^C, SIGTERM, SIGHUP while the guest is stopped and its memory on
	 * its way out: the migration is cancelled, the guest runs on as it
	 * was (not frozen under a record that says running), the half-made
	 * save goes; the caller then dies of it */
	sig_catch(old, 1);
	vm_save_remove(vm);
	if (held == VM_RUNNING)
		vm_guest_sync(vm);
	if (sig_caught ||
	    suspend_qemu(vm, pid, held == VM_RUNNING, timeout_s > 0 ? timeout_s :
			 migration_bound(vm->spec.memory), &f) < 0) {
		stopped_meanwhile(vm);
		goto out;
	}
	kept = keep_save(vm, &f);
	if (kept == SAVE_NOT_RECORDED) {
		errorf("VM %s: its save is whole but its record cannot be "
		       "written; free space on the disk holding %s, then any "
		       "nook command on it ('nook local status %s') records "
		       "it suspended, and 'nook local start %s' resumes it",
		       vm->name, vm->paths.dir, vm->name, vm->name);
		goto out;
	}
	if (kept < 0) {
		/* QEMU is gone: what is left is a stopped VM (recorded
		 * before the save's facts go, as in the mend) */
		vm->has_save = 0;
		if (vm_record(vm, VM_STOPPED, 0, NULL, NULL) < 0)
			warnf("VM %s: its record still says %s", vm->name,
			      vm_state_name(held));
		vm_save_remove(vm);
		errorf("VM %s: its save could not be kept; it is stopped",
		       vm->name);
		goto out;
	}
	/* a stop --force as the save ended found QEMU quitting and ended
	 * it: the save is whole and kept, which is what this says; the
	 * stop said this command would */
	if (vm_take_stop_mark(&vm->paths))
		warnf("VM %s: a 'nook local stop --force' came as its save "
		      "ended: it is suspended, its save whole ('nook local "
		      "start %s --cold' discards it)", vm->name, vm->name);
	*size = vm->save.size;
	*seconds = mono_s() - t0;
	ret = 0;
out:
	vm_save_free(&f);
	/* the signal stays in sig_caught: the caller dies of it once it
	 * has cleaned up */
	sig_catch(old, 0);
	return ret;
}

/* ---- resume ---- */

int vm_uplink_recorded(const struct vm *vm, struct vm_nic *out)
{
	/* QEMU's command line, which the save's argv hash is of: `nook
	 * port` may have changed the running forwards since */
	const struct strvec *v = vm->launched.n ? &vm->launched : &vm->ports;
	struct net_port *p;
	size_t n = v->n;

	if (!n)
		return errorf("VM %s: its record names no forwards", vm->name);
	p = xmalloc(sizeof(*p) * n);
	for (size_t i = 0; i < n; i++)
		if (net_port_parse(v->v[i], &p[i]) < 0) {
			free(p);
			return -1;
		}
	vm_nic_user(out, vm->spec.nics[0].mac, p, n);
	free(p);
	return 0;
}

int vm_save_gone(const struct vm *vm)
{
	char *save = save_path(vm, 0);
	int gone = access(save, F_OK) < 0 && errno == ENOENT;

	free(save);
	return gone;
}

/* What would load the save now. */
static void facts_now(struct vm *vm, const struct strvec *argv,
		      const char *accel, struct vm_save *f)
{
	const char *ver[] = { argv->v[0], "--version", NULL };
	char *found = find_program(argv->v[0]);
	char *real = found ? realpath(found, NULL) : NULL;
	char *save = save_path(vm, 0);
	struct buf out = BUF_INIT, v = BUF_INIT;
	struct stat st;

	f->qemu = real;
	if (vm_run_bounded(ver, 10000, &out) == 0 &&
	    vm_qemu_version_parse(out.p, &v) == 0)
		f->version = v.p;
	else
		buf_free(&v);
	argv_facts((const char *const *)argv->v, argv->n, f);
	f->accel = xstrdup(accel);
	if (disk_facts(vm->paths.disk, f) < 0)
		f->disk_ino = 0;
	f->size = stat(save, &st) == 0 ? (uint64_t)st.st_size : 0;
	buf_free(&out);
	free(found);
	free(save);
}

/* Load the save into the QEMU waiting for it (-incoming defer), then let
 * it run. */
static int load_save(struct vm *vm, struct buf *why)
{
	struct qmp q = { -1, BUF_INIT, NULL };
	char *save = save_path(vm, 0);
	int fd = -1, ret = -1;

	if (qmp_open(&q, vm->paths.qmp, 5000) < 0) {
		buf_adds(why, qmp_error(&q));
		goto out;
	}
	fd = open(save, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		buf_addf(why, "cannot read %s: %s", save, strerror(errno));
		goto out;
	}
	if (give_fd(&q, fd, "nookload", why) < 0 ||
	    qmp_do(&q, "migrate-incoming",
		   json_pack("{s:s}", "uri", "fd:nookload"), why) < 0 ||
	    wait_migration(&q, migration_bound(vm->spec.memory), why) < 0 ||
	    qmp_do(&q, "cont", NULL, why) < 0)
		goto out;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	qmp_close(&q);
	free(save);
	return ret;
}

/* QEMU said why it gave up (a load that fails ends it): into why. */
static void qemu_said(struct vm *vm, struct buf *why)
{
	struct buf log = BUF_INIT;

	vm_qemu_messages(vm, &log);
	buf_trim_newlines(&log);
	if (log.len)
		buf_addf(why, " (QEMU: %s)", log.p);
	buf_free(&log);
}

/* A save made by a QEMU that an older nook started has no balloon in it
 * (VM_BALLOON_DEVICE): the same argv less that device may load it, and
 * the VM gets the balloon at its next boot. */
static void without_balloon(struct strvec *argv, struct vm_save *now)
{
	size_t n = 0;

	for (size_t i = 0; i < argv->n; i++) {
		if (!strcmp(argv->v[i], "-device") && i + 1 < argv->n &&
		    !strncmp(argv->v[i + 1], VM_BALLOON_DEVICE ",",
			     strlen(VM_BALLOON_DEVICE ","))) {
			free(argv->v[i]);
			free(argv->v[++i]);
			continue;
		}
		argv->v[n++] = argv->v[i];
	}
	argv->n = n;
	argv->v[n] = NULL;
	argv_hashes((const char *const *)argv->v, argv->n, now);
}

/* A resume whose QEMU would not start, or that was interrupted: no fault
 * of the save's, which stays, and the VM is suspended again with its
 * record as it was. */
struct aside {
	struct strvec ports, launched;
	struct vm_save save;
	long long console_at;
};

/* What the record of a suspended vm says, moved into a (the starting
 * record replaces it in vm). */
static void take_aside(struct vm *vm, struct aside *a)
{
	a->ports = vm->ports;
	a->launched = vm->launched;
	a->save = vm->save;
	a->console_at = vm->console_at;
	vm->ports = vm->launched = (struct strvec)STRVEC_INIT;
	memset(&vm->save, 0, sizeof(vm->save));
}

static void aside_free(struct aside *a)
{
	strvec_clear(&a->ports);
	strvec_clear(&a->launched);
	vm_save_free(&a->save);
}

static int still_suspended(struct vm *vm, struct aside *a)
{
	strvec_clear(&vm->ports);
	strvec_clear(&vm->launched);
	vm_save_free(&vm->save);
	vm->ports = a->ports;
	vm->launched = a->launched;
	vm->save = a->save;
	vm->has_save = 1;
	vm->console_at = a->console_at;
	memset(a, 0, sizeof(*a));
	return vm_record(vm, VM_SUSPENDED, 0, NULL, NULL);
}

/* QEMU would not start to load the save: said after what QEMU said (on
 * stderr above), which --json's error carries too. */
static void not_started(const struct vm *vm)
{
	char *cause = xstrdup(error_last());

	errorf("VM %s: QEMU would not start to load its saved state (said "
	       "above); the save is kept: 'nook local start %s' tries "
	       "again, with --cold it boots without it", vm->name, vm->name);
	error_add_cause(cause);
	free(cause);
}

/*
 * The save did not load into QEMU pid; that QEMU is ended. Interrupted
 * by a signal (-1) or a 'stop --force' (VM_LAUNCH_STOPPED; -1 when the
 * record could not be put back), the VM is suspended again with its
 * save, said. Else 0 with the reason in why: the save is at fault, and
 * the caller boots afresh.
 */
static int not_loaded(struct vm *vm, struct aside *was, pid_t pid,
		      struct buf *why)
{
	const char *how;

	if (sig_caught) {
		vm_stop_qemu(&vm->paths, 1, 0, &how, NULL);
		if (still_suspended(vm, was) == 0)
			errorf("VM %s: its resume was interrupted; it is "
			       "suspended, its save kept", vm->name);
		return -1;
	}
	if (vm_stop_marked(&vm->paths)) {
		/* a 'stop --force' ended the loading QEMU: no fault of the
		 * save's */
		vm_stop_qemu(&vm->paths, 1, 0, &how, NULL);
		if (still_suspended(vm, was) < 0)
			return -1;
		errorf("VM %s: stopped as its save loaded (nook local stop "
		       "--force); it is suspended, its save kept", vm->name);
		return VM_LAUNCH_STOPPED;
	}
	/* QEMU ends itself when a save will not load */
	if (!vm_pid_is_ours(pid, vm->paths.qmp_arg))
		buf_adds(why, "; QEMU refused the save and exited (damaged, "
			 "or made by another QEMU)");
	qemu_said(vm, why);
	vm_stop_qemu(&vm->paths, 1, 0, &how, NULL);
	return 0;
}

/* A resume's facts (path) could not be written beside the save, errno
 * says why: without them a resume cut off (SIGKILL, a power cut) would
 * lose the save, so none begins. Said, with what to do; -1. */
static int facts_unwritten(const struct vm *vm, const char *path)
{
	int e = errno;

	if (e == ENOSPC || e == EDQUOT)
		return errorf("VM %s was not resumed: the disk holding %s is "
			      "full (%s writing %s); free space there, then "
			      "'nook local start %s' resumes it (its save is "
			      "kept)", vm->name, vm->paths.dir, strerror(e),
			      path, vm->name);
	return errorf("VM %s was not resumed: cannot write %s (%s), which "
		      "keeps its save should the resume be cut off; its save "
		      "is kept: 'nook local start %s' tries again, with "
		      "--cold it boots without it", vm->name, path,
		      strerror(e), vm->name);
}

int vm_resume(struct vm *vm, struct strvec *argv, const char *accel,
	      int wait_s, const struct vm_nic *up, pid_t *pid, struct buf *why,
	      const struct net_port *movable, size_t n, struct net_port *taken)
{
	struct sigaction old[3];
	struct aside was;
	struct vm_save now;
	long long from, size;
	char *resuming;
	int gone, ret;

	memset(&now, 0, sizeof(now));
	facts_now(vm, argv, accel, &now);
	if (vm->has_save && !vm_save_argv_same(&vm->save, &now))
		without_balloon(argv, &now);
	gone = vm_save_gone(vm);
	if (!vm->has_save)
		buf_adds(why, "its record does not say what the save was "
			 "made with");
	else if (gone)
		buf_adds(why, "its save file is gone (removed since the "
			 "suspend)");
	if (!vm->has_save || gone || !vm_save_fits(&vm->save, &now, why)) {
		vm_save_free(&now);
		return 0;
	}
	vm_save_free(&now);
	/* what lets a resume cut off keep the save: none, no resume */
	resuming = resuming_path(vm);
	if (write_facts(resuming, &vm->save) < 0) {
		ret = facts_unwritten(vm, resuming);
		free(resuming);
		return ret;
	}
	strvec_push(argv, "-incoming");
	strvec_push(argv, "defer");
	/* the guest's output since its boot, which goes on from here: a
	 * kernel that panicked before the suspend spins on */
	from = vm->console_at;
	/* the record as it is, taken aside: the starting one names up's
	 * forwards and no save, and a QEMU that will not start puts it back */
	take_aside(vm, &was);
	/* ^C while the save loads: that QEMU ends, the VM is suspended
	 * again with its save, and the caller dies of the signal */
	sig_catch(old, 1);
	if (vm_record(vm, VM_STARTING, 0, NULL, up) < 0) {
		ret = -1;
		goto out;
	}
	size = file_size(vm->paths.console_log);
	vm->console_at = from >= 0 && from <= size ? from : size;
	if (sig_caught) {
		if (still_suspended(vm, &was) == 0)
			errorf("VM %s: its resume was interrupted; it is "
			       "suspended, its save kept", vm->name);
		ret = -1;
		goto out;
	}
	ret = vm_launch(&vm->paths, (const char *const *)argv->v, wait_s, pid,
			movable, n, taken);
	if (ret < 0) {
		if (still_suspended(vm, &was) < 0) {
			ret = -1;
			goto out;
		}
		if (ret == VM_LAUNCH_TAKEN)
			goto out;
		if (ret == VM_LAUNCH_STOPPED)
			errorf("VM %s: stopped as its resume started (nook "
			       "local stop --force); it is suspended, its save "
			       "kept", vm->name);
		else
			not_started(vm);
		goto out;
	}
	if (load_save(vm, why) < 0) {
		ret = not_loaded(vm, &was, *pid, why);
		goto out;
	}
	ret = -1;
	if (vm_record(vm, VM_RUNNING, *pid, accel, up) < 0)
		goto out;
	/* loaded: the guest has moved on from it, and so does its disk */
	vm_save_remove(vm);
	if (vm_clock_sync(vm) < 0)
		warnf("VM %s: resumed, but its clock is still the save's",
		      vm->name);
	ret = 1;
out:
	/* what came of the resume is recorded */
	unlink(resuming);
	free(resuming);
	aside_free(&was);
	/* the signal stays in sig_caught: the caller dies of it once it
	 * has cleaned up */
	sig_catch(old, 0);
	return ret;
}

int vm_discard_save(struct vm *vm)
{
	if (vm_take_lock(vm, "start") < 0)
		return -1;
	if (vm_state_held(vm) != VM_SUSPENDED)
		return 0;
	vm_save_remove(vm);
	return vm_record(vm, VM_STOPPED, 0, NULL, NULL) < 0 ? -1 : 1;
}

/* ---- pause ---- */

int vm_qemu_cpus(const struct vm_paths *p, int ms)
{
	struct qmp q = { -1, BUF_INIT, NULL };
	json_t *r = NULL;
	const char *st = NULL;
	int ret = -1;

	if (qmp_open(&q, p->qmp, ms) == 0 &&
	    qmp_execute(&q, "query-status", NULL, ms, &r) == 0)
		st = json_string_value(json_object_get(r, "status"));
	if (st && !strcmp(st, "running"))
		ret = VM_RUNNING;
	else if (st && !strcmp(st, "paused"))
		ret = VM_PAUSED;
	else if (st && !strcmp(st, "io-error"))
		ret = VM_QEMU_NO_ROOM;
	json_decref(r);
	qmp_close(&q);
	return ret;
}

void vm_pause_mend(struct vm *vm)
{
	char *mark = vm_mark_path(vm, VM_MARK_PAUSE), *accel = NULL;
	enum vm_state was = vm->recorded;
	pid_t pid;
	int now, no_room;

	if (access(mark, F_OK) < 0)
		goto out;
	pid = vm_pid_alive(vm->paths.pidfile, vm->paths.qmp_arg);
	/* its QEMU gone, or the VM recorded otherwise since: nothing of
	 * the pause's is left to put in step */
	if (vm->broken || !pid || (was != VM_RUNNING && was != VM_PAUSED)) {
		unlink(mark);
		goto out;
	}
	/* short waits: a 'stop --force' of a hung QEMU takes the lock
	 * too, and must not wait on it long */
	now = vm_qemu_cpus(&vm->paths, 1000);
	/* let run, and stopped since at a write with no room: running, as
	 * any other look has it (vm_get_info()), its clock not set (no ssh
	 * answers it) */
	no_room = now == VM_QEMU_NO_ROOM;
	if (no_room)
		now = VM_RUNNING;
	if (now < 0)
		goto out; /* the next look tries again */
	/* the record read anew frees rec_accel */
	accel = vm->rec_accel ? xstrdup(vm->rec_accel) : NULL;
	if ((enum vm_state)now != was &&
	    vm_record(vm, (enum vm_state)now, pid, accel, NULL) < 0)
		goto out;
	unlink(mark);
	if ((enum vm_state)now == was)
		goto out;
	if (now == VM_PAUSED)
		warnf("VM %s: a pause of it was cut off once QEMU had stopped "
		      "its CPUs; it is recorded paused, as QEMU says ('nook "
		      "local unpause %s' lets it run)", vm->name, vm->name);
	else if (!no_room && vm_clock_sync(vm) == 0)
		warnf("VM %s: an unpause of it was cut off once QEMU had "
		      "restarted its CPUs; it is recorded running, as QEMU "
		      "says, its clock set", vm->name);
	else
		warnf("VM %s: an unpause of it was cut off once QEMU had "
		      "restarted its CPUs; it is recorded running, as QEMU "
		      "says, its clock still the pause's", vm->name);
out:
	free(accel);
	free(mark);
}

/* QMP cmd on the running QEMU of vm, held in state from, then record to.
 * Between the two a mark says that they may be out of step: a pause
 * cut off (SIGKILL) leaves it, and the next nook under the lock records
 * QEMU's own word (vm_pause_mend()). */
static int pause_move(struct vm *vm, const char *cmd, enum vm_state from,
		      enum vm_state to)
{
	struct qmp q = { -1, BUF_INIT, NULL };
	enum vm_state held;
	char *mark;
	pid_t pid;
	int rc, fd;

	if (vm_take_lock(vm, strcmp(cmd, "stop") ? "unpause" : "pause") < 0)
		return -1;
	held = vm_state_held(vm);
	pid = vm_pid_alive(vm->paths.pidfile, vm->paths.qmp_arg);
	if (held != from || !pid)
		return errorf("VM %s is %s, not %s", vm->name,
			      vm_state_name(held), vm_state_name(from));
	mark = vm_mark_path(vm, VM_MARK_PAUSE);
	/* (none made, on a disk without an inode to spare: the window is
	 * a few milliseconds, not worth failing the pause for) */
	fd = open(mark, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	rc = qmp_open(&q, vm->paths.qmp, 5000);
	if (rc == 0)
		rc = qmp_execute(&q, cmd, NULL, 10000, NULL);
	if (rc < 0)
		errorf("VM %s: %s", vm->name, qmp_error(&q));
	qmp_close(&q);
	/* a QMP failure may come after QEMU did it: the mark stays, and
	 * the next look asks QEMU */
	if (rc == 0)
		rc = vm_record(vm, to, pid, vm->rec_accel, NULL);
	if (rc == 0)
		unlink(mark);
	free(mark);
	return rc;
}

int vm_pause(struct vm *vm)
{
	return pause_move(vm, "stop", VM_RUNNING, VM_PAUSED);
}

int vm_unpause(struct vm *vm)
{
	int now = -1, rc = 0;
	char left[32];

	if (vm_take_lock(vm, "unpause") < 0)
		return -1;
	if (vm_pid_alive(vm->paths.pidfile, vm->paths.qmp_arg))
		now = vm_qemu_cpus(&vm->paths, 5000);
	/* a guest QEMU stopped at a write with no room, its record running:
	 * QEMU makes the write again (paused too, the record says so: the
	 * pause left QEMU's word as it was) */
	if (now == VM_QEMU_NO_ROOM && vm_state_held(vm) == VM_RUNNING) {
		rc = vm_qmp_cont_checked(&vm->paths);
		if (rc < 0 && rc != VM_QEMU_NO_ROOM)
			return errorf("VM %s: QEMU did not take QMP's cont",
				      vm->name);
	} else if (pause_move(vm, "cont", VM_PAUSED, VM_RUNNING) < 0) {
		return -1;
	} else if (now == VM_QEMU_NO_ROOM && stops_again(&vm->paths)) {
		rc = VM_QEMU_NO_ROOM;
	}
	if (rc == VM_QEMU_NO_ROOM) {
		vm_room_left(vm->paths.dir, left, NULL);
		return errorf("VM %s: its guest stopped again at a write: the "
			      "disk holding %s still has no room for it%s%s%s; "
			      "free more space there, then unpause it again",
			      vm->name, vm->paths.dir, *left ? " (" : "",
			      left, *left ? " free)" : "");
	}
	if (vm_clock_sync(vm) < 0)
		warnf("VM %s: running, but its clock is still the one it "
		      "stopped with", vm->name);
	return 0;
}

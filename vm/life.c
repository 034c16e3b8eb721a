/* Making a VM's files, launching QEMU, and stopping it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cidata.h"
#include "images.h"
#include "ssh.h"
#include "internal.h"
#include "qmp.h"

static int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Run argv quietly; on failure say what it printed. */
static int run_tool(const char *const *argv, const char *what)
{
	struct buf out = BUF_INIT;
	int rc = run_capture(argv, &out);

	buf_trim_newlines(&out);
	if (rc > 0)
		errorf("%s failed (%s exit %d): %s", what, argv[0], rc,
		       out.p ? out.p : "");
	buf_free(&out);
	return rc == 0 ? 0 : -1;
}

int vm_disk_size(const char *path, uint64_t *size)
{
	json_t *j, *v;
	int ret = -1;

	if (img_disk_info(path, &j) < 0)
		return -1;
	v = json_object_get(j, "virtual-size");
	if (json_is_integer(v)) {
		*size = (uint64_t)json_integer_value(v);
		ret = 0;
	} else {
		errorf("qemu-img info %s: no virtual-size in its answer", path);
	}
	json_decref(j);
	return ret;
}

/* The overlay on the base image, of size s->disk (0: the base's). It
 * is made beside its final name, then renamed: a failed first start
 * never leaves a half-made disk. */
static int create_disk(const struct vm_spec *s, const struct vm_paths *p)
{
	char *tmp = xasprintf("%s/.disk.qcow2.tmp", p->dir);
	char size[32];
	const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2",
			       "-F", s->image.format, "-b", s->image.disk,
			       tmp, NULL, NULL };
	int rc;

	if (s->disk) {
		snprintf(size, sizeof(size), "%llu",
			 (unsigned long long)s->disk);
		argv[ARRAY_SIZE(argv) - 2] = size;
	}
	unlink(tmp);
	rc = run_tool(argv, "creating the VM's disk");
	if (rc == 0 && rename(tmp, p->disk) < 0)
		rc = error_errno("rename %s", tmp);
	if (rc < 0)
		unlink(tmp);
	free(tmp);
	return rc;
}

/* The overlay grown to size bytes. */
static int grow_disk(const struct vm_paths *p, uint64_t size)
{
	char arg[32];
	const char *argv[] = { "qemu-img", "resize", "-q", p->disk, arg,
			       NULL };

	snprintf(arg, sizeof(arg), "%llu", (unsigned long long)size);
	return run_tool(argv, "growing the VM's disk");
}

/* The overlay: made on the first start; grown when s->disk asks for
 * more than it has (a disk is never shrunk). */
static int prepare_disk(const struct vm_spec *s, const struct vm_paths *p)
{
	uint64_t have;

	if (!exists(p->disk))
		return create_disk(s, p);
	if (!s->disk)
		return 0;
	if (vm_disk_size(p->disk, &have) < 0)
		return -1;
	return s->disk > have ? grow_disk(p, s->disk) : 0;
}

static int prepare_key(const char *path, const char *comment)
{
	char *pub = xasprintf("%s.pub", path);
	int ret = 0;

	if (!exists(path) || !exists(pub)) {
		/* ssh-keygen asks before overwriting: clear a half-made pair */
		unlink(path);
		unlink(pub);
		ret = ssh_keygen(path, comment);
	}
	free(pub);
	return ret;
}

static int write_cidata(const struct vm_spec *s, const struct vm_paths *p,
			const struct strvec *hosts, long long seed)
{
	struct buf ud = BUF_INIT, md = BUF_INIT, vd = BUF_INIT, nc = BUF_INIT;
	struct buf key = BUF_INIT, hpriv = BUF_INIT, hpub = BUF_INIT;
	char *hpub_path = xasprintf("%s.pub", p->host_key);
	char *key_pub = xasprintf("%s.pub", p->key);
	struct cidata_file files[4];
	struct cidata_meta meta = { 0 };
	const char *keys[1];
	size_t n = 0;
	int ret = -1;

	if (read_file(key_pub, &key) < 0 ||
	    read_file(p->host_key, &hpriv) < 0 ||
	    read_file(hpub_path, &hpub) < 0)
		goto out;
	if (s->user_data) {
		if (read_file(s->user_data, &ud) < 0)
			goto out;
	} else {
		buf_adds(&ud, "#cloud-config\n{}\n");
	}
	keys[0] = key.p;
	key.p[strcspn(key.p, "\r\n")] = '\0';
	meta.instance_id = s->instance_id;
	meta.hostname = s->name;
	meta.keys = keys;
	meta.nkeys = 1;
	cidata_render_meta_data(&meta, &md);
	/* nook's own needs go beside (never inside) the user's user-data:
	 * the pinned host key, and a way in whatever users it makes */
	if (cidata_render_vendor_data(&(struct cidata_vendor){ hpriv.p,
			hpub.p, key.p, !strcmp(s->boot, "direct"),
			hosts ? (const char *const *)hosts->v : NULL,
			hosts ? hosts->n : 0, seed }, &vd) < 0)
		goto out;
	files[n++] = (struct cidata_file){ "user-data", ud.p, ud.len };
	files[n++] = (struct cidata_file){ "meta-data", md.p, md.len };
	files[n++] = (struct cidata_file){ "vendor-data", vd.p, vd.len };
	if (vm_node_network_config(s, &nc) < 0)
		goto out;
	if (nc.len)
		files[n++] = (struct cidata_file){ "network-config", nc.p,
						   nc.len };
	/* 0600: the seed carries the VM's private host key. One that holds
	 * these files already is kept: a restart with nothing changed needs
	 * no room for a second copy on a nearly full disk. (A cluster node's
	 * is new at each start, its seed ID with it: see vendor.c.) */
	if (cidata_iso_holds(p->cidata, files, n, 0600))
		ret = 1;
	else
		ret = cidata_write_iso(p->cidata, files, n, 0600);
out:
	buf_free(&ud);
	buf_free(&md);
	buf_free(&vd);
	buf_free(&nc);
	buf_free(&key);
	buf_free(&hpriv);
	buf_free(&hpub);
	free(hpub_path);
	free(key_pub);
	return ret;
}

int vm_prepare(const struct vm_spec *s, const struct vm_paths *p,
	       const struct strvec *hosts, long long seed)
{
	struct buf kh = BUF_INIT, pub = BUF_INIT;
	char *alias = vm_host_alias(s->name);
	char *pub_path = xasprintf("%s.pub", p->host_key);
	int ret = -1;

	if (mkdir_p(p->dir, 0700) < 0 || mkdir_private(p->run) < 0)
		goto out;
	if (chmod(p->dir, 0700) < 0) {
		error_errno("chmod %s", p->dir);
		goto out;
	}
	if (chmod(p->run, 0700) < 0) {
		error_errno("chmod %s", p->run);
		goto out;
	}
	if (prepare_disk(s, p) < 0 ||
	    prepare_key(p->key, alias) < 0 ||
	    prepare_key(p->host_key, alias) < 0)
		goto out;
	if (read_file(pub_path, &pub) < 0)
		goto out;
	ssh_known_hosts_line(alias, pub.p, &kh);
	if (write_file_atomic(p->known_hosts, kh.p, kh.len, 0600) < 0)
		goto out;
	ret = write_cidata(s, p, hosts, seed);
out:
	buf_free(&kh);
	buf_free(&pub);
	free(alias);
	free(pub_path);
	return ret;
}

/* 1 when a process listens on the unix socket at path (a QMP socket),
 * its pid in *pid (SO_PEERCRED). *pid is 0 when it cannot be told: a
 * listener whose backlog is full takes no connection. */
static int qmp_listening(const char *path, pid_t *pid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int fd = unix_connect(path, SOCK_NONBLOCK);

	*pid = 0;
	if (fd < 0)
		return errno == EAGAIN;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0)
		*pid = cr.pid;
	close(fd);
	return 1;
}

/* Leftovers of a QEMU that is gone: sockets, pid file, ssh master. A
 * QEMU that still listens on the QMP socket is not gone, whatever its
 * pid file says: then nothing is touched. */
void vm_clean_runtime(const struct vm_paths *p)
{
	pid_t other;

	if (qmp_listening(p->qmp, &other))
		return;
	if (exists(p->control)) {
		struct strvec argv = STRVEC_INIT;
		struct buf out = BUF_INIT;

		/* bounded: a stopped master answers nothing */
		ssh_master_check(p->control, SSH_MASTER_CHECK_MS, 1);
		ssh_master_exit_argv(p->control, &argv);
		run_capture_timeout((const char *const *)argv.v, &out,
				    SSH_MASTER_CHECK_MS);
		buf_free(&out);
		strvec_clear(&argv);
		unlink(p->control);
	}
	unlink(p->qmp);
	unlink(p->serial);
	unlink(p->pidfile);
	unlink(p->link);
}

/* A dying QEMU's command line empties a moment before its sockets
 * close. vm_clean_runtime() leaves a QMP socket that is still listened
 * on alone, so the socket's close is waited for too (5 s at most). */
int vm_wait_gone(pid_t pid, const struct vm_paths *p, int ms)
{
	pid_t other;

	for (int waited = 0; vm_pid_is_ours(pid, p->qmp_arg); waited += 100) {
		if (waited >= ms)
			return 0;
		sleep_ms(100);
	}
	for (int i = 0; i < 50 && qmp_listening(p->qmp, &other); i++)
		sleep_ms(100);
	return 1;
}

/*
 * Wait for c, QEMU's -daemonize parent, and return its exit status.
 * It exits once QEMU is set up: within seconds, unless QEMU is stuck
 * (a disk on a dead network file system). So the wait is bounded by
 * wait_s, or by LAUNCH_S when wait_s is 0 or more than it. Past that, c is
 * killed, and so is the QEMU it forked (which writes its pid file
 * before the setup that hangs): left alone, it would run on while the
 * VM is said to be killed. -1 having said why.
 */
#define LAUNCH_S 120
static int wait_daemonized(struct child *c, const struct vm_paths *p,
			   int wait_s)
{
	int s = wait_s > 0 && wait_s < LAUNCH_S ? wait_s : LAUNCH_S;
	long long deadline = mono_ms() + s * 1000LL;
	const char *bound = s < LAUNCH_S ? " (--timeout)" : "";
	pid_t qemu;
	int st;

	while (mono_ms() < deadline) {
		int r = child_poll(c, &st);

		if (r != 0)
			return r < 0 ? -1 : st;
		sleep_ms(20);
	}
	kill(c->pid, SIGKILL);
	child_wait(c);
	/* by the pid file and the QMP chardev in its command line, as a
	 * stop finds it: a recycled pid is some other program */
	qemu = vm_pid_alive(p->pidfile, p->qmp_arg);
	if (qemu && kill(qemu, SIGKILL) < 0 && errno != ESRCH)
		return error_errno("QEMU did not finish starting within %d "
				   "s%s, and cannot be killed (pid %d)", s,
				   bound, (int)qemu);
	if (qemu && !vm_wait_gone(qemu, p, 5000))
		return errorf("QEMU did not finish starting within %d s%s; "
			      "it was killed, but has not ended yet (pid %d: "
			      "stuck in the kernel, as on a dead network "
			      "file system)", s, bound, (int)qemu);
	return errorf("QEMU did not finish starting within %d s%s; it was "
		      "killed", s, bound);
}

/* Whether QEMU's output log says it could not forward one of
 * movable[0..n), that one in *taken. */
static int moved_away(const char *log, const struct net_port *movable,
		      size_t n, struct net_port *taken)
{
	if (!net_hostfwd_refused(log, taken))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (movable[i].host == taken->host &&
		    movable[i].udp == taken->udp &&
		    !strcmp(movable[i].addr, taken->addr))
			return 1;
	return 0;
}

/* 1 when pid is exiting, or gone already (reaped since it was seen). */
static int going(pid_t pid)
{
	return proc_exiting(pid) || (kill(pid, 0) < 0 && errno == ESRCH);
}

int vm_qmp_unclaimed(const struct vm_paths *p)
{
	pid_t other, seen = 0;
	int live = qmp_listening(p->qmp, &other);

	/* A QEMU killed a moment ago keeps its sockets until its last
	 * thread has given its memory back (well under a second for a few
	 * GiB): wait for it rather than refuse. It accepts no one
	 * meanwhile, so once its backlog is full, the pid an earlier look
	 * saw is the only name for it. A listener that is not going, or
	 * whose pid was never seen, is refused. */
	for (int i = 0; live && i < 100; i++) {
		if (other)
			seen = other;
		if (!seen || !going(seen))
			break;
		sleep_ms(50);
		live = qmp_listening(p->qmp, &other);
	}
	if (!live)
		return 0;
	if (!other)
		other = seen;
	if (other)
		return errorf("a QEMU (pid %d) still runs with this VM's QMP "
			      "socket %s, though no pid file names it: stop it "
			      "('kill %d') before starting the VM", (int)other,
			      p->qmp, (int)other);
	return errorf("a process still listens on this VM's QMP socket %s, "
		      "though no pid file names it: stop it before starting "
		      "the VM", p->qmp);
}

/* The launch failed with rc: QEMU's exit status (> 0), or -1 (said).
 * VM_LAUNCH_TAKEN or VM_LAUNCH_STOPPED, saying nothing (vm_launch()),
 * or -1 having said why. The runtime files are cleaned either way. */
static int launch_failed(const struct vm_paths *p, int rc,
			 const struct net_port *movable, size_t n,
			 struct net_port *taken)
{
	struct buf log = BUF_INIT;
	int ret = -1;

	read_file_quiet(p->qemu_log, &log);
	buf_trim_newlines(&log);
	if (rc > 0 && moved_away(log.p, movable, n, taken))
		ret = VM_LAUNCH_TAKEN;
	else if (vm_stop_marked(p))
		ret = VM_LAUNCH_STOPPED;
	else if (rc > 0)
		errorf("QEMU failed to start (exit %d): %s", rc,
		       log.len ? log.p : "(no message)");
	buf_free(&log);
	vm_clean_runtime(p);
	return ret;
}

int vm_launch(const struct vm_paths *p, const char *const *argv, int wait_s,
	      pid_t *pid, const struct net_port *movable, size_t n,
	      struct net_port *taken)
{
	struct child c = CHILD_INIT;
	int fd, rc;

	/* Another QEMU's sockets are not ours to wipe, nor its disk ours
	 * to boot. The start checked as it took the lock; this is the last
	 * look before the launch. */
	if (vm_qmp_unclaimed(p) < 0)
		return -1;
	vm_clean_runtime(p);
	fd = open(p->qemu_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return error_errno("cannot write %s", p->qemu_log);
	c.argv = argv;
	c.in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	c.out = fd;
	c.err = fd;
	/* -daemonize: this child exits once QEMU is set up (or has
	 * failed), and the VM runs on after nook exits. lasting: a nook
	 * killed before then does not take the VM with it. */
	c.lasting = 1;
	rc = child_start(&c);
	if (rc == 0)
		rc = wait_daemonized(&c, p, wait_s);
	close(fd);
	if (c.in >= 0)
		close(c.in);
	if (rc != 0)
		return launch_failed(p, rc, movable, n, taken);
	*pid = vm_pid_alive(p->pidfile, p->qmp_arg);
	if (!*pid) {
		vm_clean_runtime(p);
		if (vm_stop_marked(p))
			return VM_LAUNCH_STOPPED;
		return errorf("QEMU started but exited at once; see %s",
			      p->qemu_log);
	}
	return 0;
}

const char vm_not_running[] = "it was not running";

/*
 * Wait up to ms for QEMU pid to end once its guest heard the power
 * button. A guest that fills the disk as it shuts down is stopped by
 * QEMU at the write it has no room for (werror=enospc), and would never
 * power off: so QEMU is asked on q, once a second, and *no_room set
 * when it says so. 1 once QEMU is gone.
 */
static int wait_powered_off(struct qmp *q, pid_t pid,
			    const struct vm_paths *p, int ms, int *no_room)
{
	long long end = mono_ms() + ms, left;
	int unanswered = 0;

	while ((left = end - mono_ms()) > 0) {
		json_t *r = NULL;
		const char *st = NULL;

		if (vm_wait_gone(pid, p, left < 1000 ? (int)left : 1000))
			return 1;
		/* (a QEMU that did not answer three times in a row is on its
		 * way out, or stopped: not asked again) */
		if (unanswered < 3 &&
		    qmp_execute(q, "query-status", NULL, 1000, &r) == 0) {
			st = json_string_value(json_object_get(r, "status"));
			unanswered = 0;
		} else {
			unanswered++;
		}
		*no_room = st && !strcmp(st, "io-error");
		json_decref(r);
		if (*no_room)
			return 0;
	}
	return 0;
}

/*
 * Ask QEMU pid to end over QMP: the guest's power button (unless
 * force), then QMP quit. 1 once it is gone, *how saying which ended it.
 * Else 0, nothing said: why it still runs is appended to why (when not
 * NULL), for the caller's next step. One connection serves both asks:
 * QEMU takes one client at a time, and a busy QEMU is slow to take the
 * next.
 */
static int stop_by_qmp(const struct vm_paths *p, pid_t pid, int force,
		       int timeout_s, const char **how, struct buf *why)
{
	struct qmp q = { -1, BUF_INIT, NULL };
	const char *failed = NULL;
	int rc, gone = 0, no_room = 0;

	if (qmp_open(&q, p->qmp, 5000) < 0)
		goto out;
	if (!force &&
	    qmp_execute(&q, "system_powerdown", NULL, 5000, NULL) == 0) {
		*how = "the guest powered off (ACPI power button)";
		gone = wait_powered_off(&q, pid, p, timeout_s * 1000,
					&no_room);
		if (gone)
			goto out;
	}
	rc = qmp_quit(&q, 5000);
	/* QEMU dropped the connection before the quit (the write failed):
	 * once more, on a new one */
	if (rc < 0) {
		qmp_close(&q);
		rc = qmp_open(&q, p->qmp, 5000) == 0 ? qmp_quit(&q, 5000) : -1;
	}
	if (rc == 0) {
		*how = no_room ? "QEMU quit (QMP quit): as it shut down, the "
		       "guest stopped at a write the VM's disk had no room for "
		       "(that write is lost, as in a power cut)" :
		       "QEMU quit (QMP quit)";
		gone = vm_wait_gone(pid, p, 10000);
		failed = "it still ran 10 s after QMP quit";
	}
out:
	if (!gone && why)
		buf_adds(why, failed ? failed : qmp_error(&q));
	qmp_close(&q);
	return gone;
}

int vm_stop_qemu(const struct vm_paths *p, int force, int timeout_s,
		 const char **how, struct buf *why)
{
	pid_t pid = vm_pid_alive(p->pidfile, p->qmp_arg);

	*how = vm_not_running;
	if (!pid) {
		vm_clean_runtime(p);
		return 0;
	}
	/* each way that fails is passed over quietly for the next */
	if (stop_by_qmp(p, pid, force, timeout_s, how, why))
		goto done;
	*how = "QEMU was terminated (SIGTERM)";
	if (kill(pid, SIGTERM) == 0 && vm_wait_gone(pid, p, 5000))
		goto done;
	*how = "QEMU was killed (SIGKILL)";
	if (kill(pid, SIGKILL) < 0 && errno != ESRCH)
		return error_errno("cannot kill QEMU (pid %d)", (int)pid);
	if (!vm_wait_gone(pid, p, 5000))
		return errorf("QEMU (pid %d) survived SIGKILL", (int)pid);
done:
	vm_clean_runtime(p);
	return 0;
}

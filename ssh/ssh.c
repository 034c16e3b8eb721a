/* Keys, the ssh argv, quoting and the banner probe. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ssh.h"

int ssh_keygen(const char *path, const char *comment)
{
	const char *argv[] = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "",
			       "-C", comment, "-f", path, NULL };
	struct buf out = BUF_INIT;
	int rc;

	rc = run_capture(argv, &out);
	if (rc != 0) {
		if (rc > 0)
			errorf("ssh-keygen failed for %s (exit %d): %s", path,
			       rc, out.p);
		buf_free(&out);
		return -1;
	}
	buf_free(&out);
	if (chmod(path, 0600) < 0)
		return error_errno("chmod %s", path);
	return 0;
}

void ssh_quote(const char *s, struct buf *out)
{
	buf_adds(out, "'");
	for (; *s; s++) {
		if (*s == '\'')
			buf_adds(out, "'\\''");
		else
			buf_add(out, s, 1);
	}
	buf_adds(out, "'");
}

/*
 * One "Key=value" option with value quoted as OpenSSH's config parser
 * (argv_split, 8.7 and later) reads it: inside double quotes only '"' and
 * '\' need a backslash. tokens: the key expands %-tokens, so '%' doubles.
 */
static void push_quoted(struct strvec *out, const char *key, const char *val,
			int tokens)
{
	struct buf b = BUF_INIT;

	buf_addf(&b, "%s=\"", key);
	for (; *val; val++) {
		if (*val == '"' || *val == '\\')
			buf_adds(&b, "\\");
		else if (*val == '%' && tokens)
			buf_adds(&b, "%");
		buf_add(&b, val, 1);
	}
	buf_adds(&b, "\"");
	strvec_push(out, b.p);
	buf_free(&b);
}

void ssh_options(const struct ssh_target *t, struct strvec *out)
{
	strvec_pushf(out, "Port=%d", t->port);
	push_quoted(out, "User", t->user, 0);
	push_quoted(out, "IdentityFile", t->identity, 1);
	strvec_push(out, "IdentitiesOnly=yes");
	push_quoted(out, "UserKnownHostsFile", t->known_hosts, 1);
	strvec_push(out, "GlobalKnownHostsFile=/dev/null");
	push_quoted(out, "HostKeyAlias", t->alias, 0);
	strvec_push(out, "StrictHostKeyChecking=yes");
	strvec_push(out, "UpdateHostKeys=no");
	strvec_push(out, "CheckHostIP=no");
	strvec_push(out, "BatchMode=yes");
	strvec_push(out, "PasswordAuthentication=no");
	strvec_push(out, "ConnectTimeout=20");
	/* a dead VM must end the session, not hang it */
	strvec_push(out, "ServerAliveInterval=5");
	strvec_push(out, "ServerAliveCountMax=4");
	strvec_push(out, "LogLevel=ERROR");
	if (t->control) {
		strvec_push(out, "ControlMaster=auto");
		push_quoted(out, "ControlPath", t->control, 1);
		strvec_pushf(out, "ControlPersist=%d", t->persist);
	}
}

/* -1 naming what when val cannot pass through ssh's option parser intact:
 * a line break would end a config line, and "${" always expands. */
static int check_value(const char *what, const char *val, const char *bad)
{
	if (!val || !*val)
		return errorf("the ssh %s is empty", what);
	if (strpbrk(val, "\n\r"))
		return errorf("the ssh %s has a line break", what);
	if (strstr(val, "${"))
		return errorf("the ssh %s has '${', which ssh would expand: "
			      "%s", what, val);
	if (bad && strpbrk(val, bad))
		return errorf("the ssh %s '%s' is not a plain name", what,
			      val);
	return 0;
}

int ssh_target_check(const struct ssh_target *t)
{
	/* newer OpenSSH expands %-tokens and ${VAR} in User too */
	if (check_value("user", t->user, "%$ \t\"'\\") < 0 ||
	    check_value("host", t->host, "%$ \t\"'\\") < 0 ||
	    check_value("key path", t->identity, NULL) < 0 ||
	    check_value("known_hosts path", t->known_hosts, NULL) < 0 ||
	    check_value("host key alias", t->alias, NULL) < 0)
		return -1;
	if (t->control && check_value("control socket path", t->control,
				      NULL) < 0)
		return -1;
	return 0;
}

/* "ssh -F /dev/null -o K=V ...": everything before the destination. */
static void ssh_base_argv(const struct ssh_target *t, struct strvec *out)
{
	struct strvec opts = STRVEC_INIT;

	strvec_push(out, "ssh");
	strvec_push(out, "-F");
	strvec_push(out, "/dev/null");
	ssh_options(t, &opts);
	for (size_t i = 0; i < opts.n; i++) {
		strvec_push(out, "-o");
		strvec_push(out, opts.v[i]);
	}
	strvec_clear(&opts);
}

/* With --protect-args no shell sees DEST, so do its "~/" here. */
static const char *home_relative(const char *dest)
{
	if (dest[0] != '~' || (dest[1] != '\0' && dest[1] != '/'))
		return dest;
	for (dest++; *dest == '/'; dest++)
		;
	return *dest ? dest : ".";
}

/* dir as the remote cd takes it literally, quoted into b: "~" and "~/X"
 * are the home's (where a login starts; a quoted "~" would be a
 * directory named so), and one starting with '-' is no option ("-" no
 * OLDPWD). */
static void cd_word(const char *dir, struct buf *b)
{
	struct buf d = BUF_INIT;

	dir = home_relative(dir);
	if (dir[0] == '-')
		buf_adds(&d, "./");
	buf_adds(&d, dir);
	ssh_quote(d.p, b);
	buf_free(&d);
}

int ssh_is_line(const char *const *cmd)
{
	return cmd[0] && !cmd[1] && cmd[0][strcspn(cmd[0], " \t\n")];
}

void ssh_argv(const struct ssh_target *t, int tty, const char *workdir,
	      const char *const *cmd, struct strvec *out)
{
	struct buf remote = BUF_INIT;

	ssh_base_argv(t, out);
	if (tty > 0)
		strvec_push(out, "-tt");
	else if (tty < 0)
		strvec_push(out, "-T");
	strvec_push(out, t->host);
	if (!cmd && !workdir)
		return;
	if (cmd && t->tag) {
		buf_addf(&remote, "export %s=", SSH_TAG_VAR);
		ssh_quote(t->tag, &remote);
		buf_adds(&remote, ";");
	}
	/* ssh joins its arguments with spaces for the remote shell; quote
	 * each one so the guest gets exactly the words we were given. A
	 * shell line is one word for a shell of its own: whole after cd's
	 * && (bare, "a || b" would run b where cd failed), and tagged as
	 * it starts, so that a hang-up finds it (ssh_hangup_argv()). */
	if (workdir) {
		buf_adds(&remote, remote.len ? " cd " : "cd ");
		cd_word(workdir, &remote);
		buf_adds(&remote, cmd ? " &&" : " && exec \"$SHELL\" -l");
	}
	if (cmd && (workdir || ssh_is_line(cmd))) {
		if (remote.len)
			buf_adds(&remote, " ");
		buf_adds(&remote, ssh_is_line(cmd) ? "exec \"$SHELL\" -c --" :
			 "exec");
	}
	for (size_t i = 0; cmd && cmd[i]; i++) {
		if (remote.len)
			buf_adds(&remote, " ");
		ssh_quote(cmd[i], &remote);
	}
	strvec_push(out, "--");
	strvec_push(out, remote.p);
	buf_free(&remote);
}

void ssh_hangup_argv(const struct ssh_target *t, struct strvec *out)
{
	struct ssh_target plain = *t;
	struct buf script = BUF_INIT;
	const char *cmd[] = { "sh", "-c", NULL, NULL };

	/* /proc/PID/environ is what PID was started with: the tagged command
	 * and what it started, never this script. dash's kill takes no
	 * "--", so a group is "-PID" alone; one not led by PID fails. */
	plain.tag = NULL;
	buf_adds(&script, "for f in $(grep -lszxF ");
	buf_addf(&script, "%s=", SSH_TAG_VAR);
	ssh_quote(t->tag, &script);
	buf_adds(&script, " /proc/[0-9]*/environ); do p=${f#/proc/}; "
		 "p=${p%/environ}; kill -HUP -\"$p\"; kill -HUP \"$p\"; "
		 "done 2>/dev/null; exit 0");
	cmd[2] = script.p;
	ssh_argv(&plain, -1, NULL, cmd, out);
	buf_free(&script);
}

void ssh_master_exit_argv(const char *control, struct strvec *out)
{
	struct strvec opt = STRVEC_INIT;

	push_quoted(&opt, "ControlPath", control, 1);
	strvec_push(out, "ssh");
	strvec_push(out, "-F");
	strvec_push(out, "/dev/null");
	strvec_push(out, "-o");
	strvec_push(out, opt.v[0]);
	strvec_push(out, "-O");
	strvec_push(out, "exit");
	strvec_push(out, "nook");
	strvec_clear(&opt);
}

/* 1 when pid is the ssh master of control: OpenSSH titles its master
 * "ssh: CONTROL [mux]". */
static int is_master_of(pid_t pid, const char *control)
{
	char *title = xasprintf("ssh: %s [mux]", control);
	char path[64];
	struct buf b = BUF_INIT;
	int is = 0;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (read_file_quiet(path, &b) == 0)
		is = !strcmp(b.p, title);
	buf_free(&b);
	free(title);
	return is;
}

/* The inode of the unix socket that listens at path, from
 * /proc/net/unix ("Num RefCount Protocol Flags Type St Inode Path"); 0
 * when none is listed, and *many set when more than one is (one bound
 * there, unlinked, and another bound since: which is at the path now
 * cannot be told from there). */
static unsigned long listening_inode(const char *path, int *many)
{
	struct buf b = BUF_INIT;
	unsigned long found = 0;
	const char *line;

	*many = 0;
	if (read_file_quiet("/proc/net/unix", &b) < 0)
		return 0;
	for (line = b.p; line && *line && !*many;) {
		char *nl = strchr(line, '\n');
		unsigned long flags, ino;
		const char *name;
		size_t k = strlen(path);
		int at = 0;

		if (nl)
			*nl = '\0'; /* sscanf() reads one line, not the rest */
		name = line;
		/* __SO_ACCEPTCON (0x10000): a listening socket, bound at path
		 * or, as OpenSSH's master binds it before it links path to
		 * it, at path and "." and 16 random characters */
		if (sscanf(line, "%*s %*s %*s %lx %*s %*s %lu %n", &flags, &ino,
			   &at) == 2 && at > 0 && (flags & 0x10000)) {
			name = line + at;
			if (!strncmp(name, path, k) &&
			    (!name[k] || (name[k] == '.' &&
					  strlen(name + k) == 17))) {
				*many = found != 0;
				found = ino;
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	buf_free(&b);
	return found;
}

/* 1 when pid has socket inode ino among its open files. */
static int holds_socket(pid_t pid, unsigned long ino)
{
	char dir[64], want[64];
	DIR *d;
	int holds = 0;

	/* both fit: an int and an unsigned long in decimal */
	(void)snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	(void)snprintf(want, sizeof(want), "socket:[%lu]", ino);
	d = opendir(dir);
	while (d && !holds) {
		struct dirent *e = readdir(d);
		char link[sizeof(dir) + sizeof(e->d_name) + 1], got[64];
		ssize_t n;

		if (!e)
			break;
		snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
		n = readlink(link, got, sizeof(got) - 1);
		if (n > 0) {
			got[n] = '\0';
			holds = !strcmp(got, want);
		}
	}
	if (d)
		closedir(d);
	return holds;
}

/* Our user's ssh master of control, by its title, and the one that holds
 * the socket listening there when /proc/net/unix names it (not a stray
 * master whose socket was unlinked); 0 when none runs, or when two
 * sockets listen under that path and so the one there is not known.
 * (The socket's peer credentials name the process that listened, which
 * with ControlPersist is the first client, not the master it forked.) */
static pid_t find_master(const char *control)
{
	int many;
	unsigned long ino = listening_inode(control, &many);
	DIR *d = many ? NULL : opendir("/proc");
	pid_t found = 0;

	while (d && !found) {
		struct dirent *e = readdir(d);
		char *end, path[300];
		long pid;
		struct stat st;

		if (!e)
			break;
		pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 1)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld", pid);
		if (stat(path, &st) == 0 && st.st_uid == getuid() &&
		    is_master_of((pid_t)pid, control) &&
		    (!ino || holds_socket((pid_t)pid, ino)))
			found = (pid_t)pid;
	}
	if (d)
		closedir(d);
	return found;
}

/* The state letter of pid in /proc ('T' stopped), or 0. */
static char proc_state(pid_t pid)
{
	char path[64];
	struct buf b = BUF_INIT;
	const char *p;
	char st = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file_quiet(path, &b) == 0) {
		p = strrchr(b.p, ')');
		if (p && p[1] == ' ')
			st = p[2];
	}
	buf_free(&b);
	return st;
}

/* OpenSSH's PROTOCOL.mux: every message is a big-endian length, then a
 * type and its fields. */
#define MUX_MSG_HELLO 0x00000001
#define MUX_C_ALIVE_CHECK 0x10000004
#define MUX_S_ALIVE 0x80000005
#define MUX_VERSION 4

/* Read n bytes from fd before deadline (mono_ms): 0; MUX_LATE at the
 * deadline; MUX_GONE at an end or an error (the master went away). */
#define MUX_LATE (-1)
#define MUX_GONE (-2)
static int read_by(int fd, unsigned char *p, size_t n, long long deadline)
{
	while (n) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		long long left = deadline - mono_ms();
		ssize_t r;

		if (left <= 0 || poll(&pfd, 1, (int)left) == 0)
			return MUX_LATE;
		r = read(fd, p, n);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			return MUX_GONE;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* One mux message from fd into *type, its fields skipped: as read_by(). */
static int mux_read(int fd, uint32_t *type, long long deadline)
{
	unsigned char h[8], skip[256];
	uint32_t len;
	int rc = read_by(fd, h, 8, deadline);

	if (rc)
		return rc;
	len = get_u32(h);
	*type = get_u32(h + 4);
	if (len < 4 || len > 65536)
		return MUX_GONE; /* not a master we can talk to */
	for (len -= 4; len && !rc;) {
		size_t n = len < sizeof(skip) ? len : sizeof(skip);

		rc = read_by(fd, skip, n, deadline);
		len -= (uint32_t)n;
	}
	return rc;
}

/*
 * What "ssh -O check" asks, without starting ssh (a warm shell's cost):
 * a hello each way, then an alive check. 1 when the master at control
 * answered within timeout_ms; 0 when something listens there and does
 * not answer in time (a stopped or wedged master, a full backlog); -1
 * when nothing we can talk to is there (no listener, a master that went
 * away, a path too long for a socket): ssh deals with that itself.
 */
static int mux_alive(const char *control, int timeout_ms)
{
	long long deadline = mono_ms() + timeout_ms;
	unsigned char ask[24];
	uint32_t type = 0;
	int fd, rc = -1;

	put_u32(ask, 8);
	put_u32(ask + 4, MUX_MSG_HELLO);
	put_u32(ask + 8, MUX_VERSION);
	put_u32(ask + 12, 8);
	put_u32(ask + 16, MUX_C_ALIVE_CHECK);
	put_u32(ask + 20, 1); /* the request's id */
	fd = unix_connect(control, SOCK_NONBLOCK);
	if (fd < 0) /* EAGAIN: something listens, its backlog full */
		return errno == EAGAIN ? 0 : -1;
	/* 24 bytes fit any socket buffer: one send, never a SIGPIPE */
	if (send(fd, ask, sizeof(ask), MSG_NOSIGNAL) != (ssize_t)sizeof(ask))
		goto out;
	/* the master's hello, then its answer */
	rc = mux_read(fd, &type, deadline);
	if (!rc && type == MUX_MSG_HELLO)
		rc = mux_read(fd, &type, deadline);
	rc = rc == MUX_LATE ? 0 : !rc && type == MUX_S_ALIVE ? 1 : -1;
out:
	close(fd);
	return rc;
}

int ssh_master_check(const char *control, int timeout_ms, int end_busy)
{
	struct stat st;
	char state;
	pid_t pid;

	if (lstat(control, &st) < 0)
		return 0; /* no master: ssh makes one */
	switch (mux_alive(control, timeout_ms)) {
	case 1:
		return 2;
	case -1:
		return 0; /* gone: ssh replaces it */
	}
	pid = find_master(control);
	if (!pid) {
		/* some other program on the socket: not ours to end */
		warnf("%s does not answer and is no ssh master of ours: "
		      "connecting without it", control);
		return 1;
	}
	state = proc_state(pid);
	if (!end_busy && state != 'T' && state != 't') {
		/* running, only slow: its sessions are someone's work */
		warnf("the ssh master (pid %d) did not answer within %d s: "
		      "connecting without it", (int)pid, timeout_ms / 1000);
		return 1;
	}
	/* stopped: SIGKILL ends even a stopped process */
	kill(pid, SIGKILL);
	for (int i = 0; i < 50 && !kill(pid, 0) && is_master_of(pid, control);
	     i++)
		sleep_ms(20);
	unlink(control);
	warnf("the ssh master (pid %d) did not answer within %d s: ended "
	      "it; a fresh connection follows", (int)pid, timeout_ms / 1000);
	return 0;
}

/* A Host pattern cannot be quoted portably: keep it to a name's chars. */
static int alias_ok(const char *a)
{
	return *a && strspn(a, "abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
		     strlen(a);
}

int ssh_config_stanza(const struct ssh_target *t, struct buf *out)
{
	struct strvec opts = STRVEC_INIT;

	if (ssh_target_check(t) < 0)
		return -1;
	if (!alias_ok(t->alias))
		return errorf("'%s' cannot be an ssh Host name", t->alias);
	ssh_options(t, &opts);
	buf_addf(out, "Host %s\n  HostName \"%s\"\n", t->alias, t->host);
	for (size_t i = 0; i < opts.n; i++) {
		const char *eq = strchr(opts.v[i], '=');

		/* plain ssh may ask and may say why it failed */
		if (!strncmp(opts.v[i], "BatchMode=", 10) ||
		    !strncmp(opts.v[i], "LogLevel=", 9))
			continue;
		buf_addf(out, "  %.*s %s\n", (int)(eq - opts.v[i]), opts.v[i],
			 eq + 1);
	}
	strvec_clear(&opts);
	return 0;
}

/*
 * rsync splits its -e value itself (main.c, do_cmd): words end at spaces
 * only; '...' and "..." quote, and inside them the quote doubled stands
 * for itself; a backslash is an ordinary character. So: '...', with each
 * ' doubled.
 */
static void rsync_quote(const char *s, struct buf *out)
{
	buf_adds(out, "'");
	for (; *s; s++) {
		if (*s == '\'')
			buf_adds(out, "''");
		else
			buf_add(out, s, 1);
	}
	buf_adds(out, "'");
}


void ssh_rsync_argv(const struct ssh_target *t, const struct ssh_rsync_opts *o,
		    const char *src, const char *dest, struct strvec *out)
{
	struct strvec ssh = STRVEC_INIT;
	struct buf e = BUF_INIT;

	ssh_base_argv(t, &ssh);
	for (size_t i = 0; i < ssh.n; i++) {
		if (i)
			buf_adds(&e, " ");
		rsync_quote(ssh.v[i], &e);
	}
	strvec_clear(&ssh);
	strvec_push(out, "rsync");
	strvec_push(out, "-a");
	strvec_push(out, "--stats");
	if (o->progress)
		strvec_push(out, "--info=progress2");
	strvec_push(out, "-e");
	strvec_push(out, e.p);
	buf_free(&e);
	/* DEST travels in rsync's protocol, never through the guest's
	 * shell, whatever the host rsync's version does by default */
	strvec_push(out, "--protect-args");
	if (o->gitignore)
		strvec_push(out, "--filter=:- .gitignore");
	for (size_t i = 0; o->excludes && o->excludes[i]; i++)
		strvec_pushf(out, "--exclude=%s", o->excludes[i]);
	if (o->del)
		strvec_push(out, "--delete");
	if (o->dry_run)
		strvec_push(out, "--dry-run");
	if (o->chown) {
		strvec_pushf(out, "--chown=%s", o->chown);
		strvec_push(out, "--rsync-path=sudo rsync");
	}
	/* "SRC/" copies SRC's contents, not SRC itself, into DEST; one
	 * that starts with ':' is a directory, not "HOST::MODULE" (an
	 * rsync daemon's) */
	strvec_pushf(out, "%s/", src);
	dest = home_relative(dest);
	strvec_pushf(out, "%s:%s%s", t->host, dest[0] == ':' ? "./" : "",
		     dest);
}

/* Push path's components onto st: "" and "." skipped, ".." pops. */
static void push_components(const char *p, struct strvec *st)
{
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 2 && !strncmp(p, "..", 2)) {
			if (st->n) {
				free(st->v[st->n - 1]);
				st->v[--st->n] = NULL;
			}
		} else if (n && !(n == 1 && p[0] == '.')) {
			strvec_pushf(st, "%.*s", (int)n, p);
		}
		p += n;
		if (*p)
			p++;
	}
}

void ssh_realpath_argv(const struct ssh_target *t, const char *dest,
		       struct strvec *out)
{
	const char *cmd[] = { "realpath", "-m", "--", home_relative(dest), ".",
			      NULL };

	ssh_argv(t, -1, NULL, cmd, out);
}

int ssh_path_holds(const char *dest, const char *home)
{
	struct strvec d = STRVEC_INIT, h = STRVEC_INIT;
	int holds;

	dest = home_relative(dest);
	if (dest[0] != '/')
		push_components(home, &d);
	push_components(dest, &d);
	push_components(home, &h);
	holds = d.n <= h.n;
	for (size_t i = 0; holds && i < d.n; i++)
		holds = !strcmp(d.v[i], h.v[i]);
	strvec_clear(&d);
	strvec_clear(&h);
	return holds;
}

void ssh_known_hosts_line(const char *alias, const char *pub, struct buf *out)
{
	size_t len = strcspn(pub, "\r\n");
	const char *sp = memchr(pub, ' ', len);
	const char *end;

	/* keep "type base64", drop the comment */
	end = sp ? memchr(sp + 1, ' ', len - (size_t)(sp + 1 - pub)) : NULL;
	buf_addf(out, "%s %.*s\n", alias,
		 (int)(end ? (size_t)(end - pub) : len), pub);
}

int ssh_banner(const char *host, int port, int timeout_ms)
{
	return ssh_banner_ticking(host, port, timeout_ms, NULL, NULL);
}

#define TICK_MS 250

int ssh_banner_ticking(const char *host, int port, int timeout_ms,
		       void (*tick)(void *), void *arg)
{
	struct sockaddr_in sa;
	long long deadline = mono_ms() + timeout_ms;
	char line[256];
	size_t got = 0;
	int fd, ok = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
	    errno != EINPROGRESS) {
		ok = errno == ECONNREFUSED ? -1 : 0;
		goto out;
	}
	while (got < 4) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		long long left = deadline - mono_ms();
		ssize_t n;
		int rc;

		if (left <= 0)
			goto out;
		rc = poll(&pfd, 1, tick && left > TICK_MS ? TICK_MS : (int)left);
		if ((rc < 0 && errno == EINTR && !sig_caught) ||
		    (rc == 0 && tick && left > TICK_MS)) {
			if (rc == 0)
				tick(arg);
			continue;
		}
		if (rc <= 0)
			goto out;
		n = read(fd, line + got, sizeof(line) - got);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			/* closed, or refused: a non-blocking connect's
			 * error shows here */
			ok = !got && (n == 0 || errno == ECONNREFUSED ||
				      errno == ECONNRESET) ? -1 : 0;
			goto out;
		}
		got += (size_t)n;
	}
	ok = !memcmp(line, "SSH-", 4);
out:
	close(fd);
	return ok;
}

/* Keys, the ssh argv, quoting and the banner probe. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
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

void ssh_options(const struct ssh_target *t, struct strvec *out)
{
	strvec_pushf(out, "Port=%d", t->port);
	strvec_pushf(out, "User=%s", t->user);
	strvec_pushf(out, "IdentityFile=%s", t->identity);
	strvec_push(out, "IdentitiesOnly=yes");
	strvec_pushf(out, "UserKnownHostsFile=%s", t->known_hosts);
	strvec_push(out, "GlobalKnownHostsFile=/dev/null");
	strvec_pushf(out, "HostKeyAlias=%s", t->alias);
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
		strvec_pushf(out, "ControlPath=%s", t->control);
		strvec_pushf(out, "ControlPersist=%d", t->persist);
	}
}

void ssh_argv(const struct ssh_target *t, int tty, const char *workdir,
	      const char *const *cmd, struct strvec *out)
{
	struct strvec opts = STRVEC_INIT;
	struct buf remote = BUF_INIT;

	strvec_push(out, "ssh");
	strvec_push(out, "-F");
	strvec_push(out, "/dev/null");
	ssh_options(t, &opts);
	for (size_t i = 0; i < opts.n; i++) {
		strvec_push(out, "-o");
		strvec_push(out, opts.v[i]);
	}
	strvec_clear(&opts);
	if (tty > 0)
		strvec_push(out, "-tt");
	else if (tty < 0)
		strvec_push(out, "-T");
	strvec_push(out, t->host);
	if (!cmd && !workdir)
		return;
	/* ssh joins its arguments with spaces for the remote shell; quote
	 * each one so the guest gets exactly the words we were given. */
	if (workdir) {
		buf_adds(&remote, "cd ");
		ssh_quote(workdir, &remote);
		buf_adds(&remote, cmd ? " && exec" : " && exec \"$SHELL\" -l");
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
	    errno != EINPROGRESS)
		goto out;
	while (got < 4) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		long long left = deadline - mono_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			goto out;
		n = read(fd, line + got, sizeof(line) - got);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			goto out;
		got += (size_t)n;
	}
	ok = !memcmp(line, "SSH-", 4);
out:
	close(fd);
	return ok;
}

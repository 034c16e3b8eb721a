/*
 * ssh: the way into a VM. Key pairs made with ssh-keygen, the pinned
 * known_hosts line, the ssh and rsync argv (pure), quoting a command so it
 * reaches the guest exactly as given, and the SSH banner probe that tells
 * a listening sshd from slirp's early accept.
 *
 * Calling sequence: ssh_keygen() once per key when a VM is made; then
 * ssh_argv() for every connection. Functions return 0 or -1 having said
 * why.
 */
#ifndef NOOK_SSH_H
#define NOOK_SSH_H

#include "common.h"

/* Everything ssh needs to reach one VM with nothing trusted on first use. */
struct ssh_target {
	const char *user;
	const char *host;        /* "127.0.0.1" */
	int port;
	const char *identity;    /* the VM's private key */
	const char *known_hosts; /* holds the pinned host key under alias */
	const char *alias;       /* HostKeyAlias, "nook-NAME" */
	const char *control;     /* ControlPath, or NULL for no master */
	int persist;             /* ControlPersist seconds */
};

/* Make an ed25519 key pair at path and path.pub (0600 private). */
int ssh_keygen(const char *path, const char *comment);

/*
 * The ssh argv for target: options that ignore the user's ssh config and
 * pin the host key, then user@host, then (if cmd is not NULL) the command,
 * quoted as one remote string. tty: -1 never, 0 let ssh decide, 1 force.
 * workdir: run cmd there (NULL: the login directory).
 */
void ssh_argv(const struct ssh_target *t, int tty, const char *workdir,
	      const char *const *cmd, struct strvec *out);

/* The options alone, one "-o" value each (for rsync's -e, ssh-config). */
void ssh_options(const struct ssh_target *t, struct strvec *out);

/* Append s to out as one word for a POSIX shell ('...' quoting). */
void ssh_quote(const char *s, struct buf *out);

/* A known_hosts line pinning public key pub (an "ssh-ed25519 AAA.. c"
 * line) under alias. */
void ssh_known_hosts_line(const char *alias, const char *pub, struct buf *out);

/*
 * 1 when host:port answers with an "SSH-" banner within timeout_ms, 0 when
 * it does not (refused, closed, silent); never an error.
 */
int ssh_banner(const char *host, int port, int timeout_ms);

#endif

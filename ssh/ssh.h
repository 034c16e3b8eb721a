/*
 * ssh: the way into a VM. Key pairs made with ssh-keygen, the pinned
 * known_hosts line, the ssh and rsync argv (pure), quoting a command so it
 * reaches the guest exactly as given, and the SSH banner probe that tells
 * a listening sshd from slirp's early accept.
 *
 * Calling sequence: ssh_keygen() once per key when a VM is made; then
 * ssh_target_check() once per target and ssh_argv(), ssh_rsync_argv() or
 * ssh_config_stanza() for every use. Every value is quoted for the parser
 * that reads it (ssh's config parser, rsync's -e splitter, the guest's
 * shell). Functions return 0 or -1 having said why.
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
	const char *tag;         /* NULL, or hex: the command runs with
				  * SSH_TAG_VAR=tag in its environment */
	int master_up;           /* the master at control answered
				  * ssh_master_check() just now (vm_ssh()) */
};

/* The environment variable that tags a command for ssh_hangup_argv(). */
#define SSH_TAG_VAR "NOOK_SHELL"

/* Make an ed25519 key pair at path and path.pub (0600 private). */
int ssh_keygen(const char *path, const char *comment);

/*
 * 1 when cmd is a shell line: one word holding a blank (space, tab or
 * line break), such as "cd /srv && make". ssh itself hands any command
 * to the user's shell as a line; nook does so with this one alone.
 */
int ssh_is_line(const char *const *cmd);

/*
 * The ssh argv for target: options that ignore the user's ssh config and
 * pin the host key, then user@host, then (if cmd is not NULL) the command,
 * quoted as one remote string: its words exactly as given, or a shell
 * line (ssh_is_line()) for the user's shell ($SHELL -c). tty: -1 never,
 * 0 let ssh decide, 1 force. workdir: run cmd there (NULL: the login
 * directory); with no cmd, a login shell there, a remote command to ssh,
 * so it needs tty 1 for a terminal.
 */
void ssh_argv(const struct ssh_target *t, int tty, const char *workdir,
	      const char *const *cmd, struct strvec *out);

/*
 * 0 when every value of t passes through ssh's option parser intact; -1
 * naming the one that cannot (a line break, "${", an odd user or host).
 */
int ssh_target_check(const struct ssh_target *t);

/* The options alone, one "Key=value" each, values quoted for OpenSSH's
 * config parser (8.7 or later); for -o and for ssh-config. */
void ssh_options(const struct ssh_target *t, struct strvec *out);

/*
 * Make sure the ssh master at control, if there is one, answers (what
 * "ssh -O check" asks, over its socket, within timeout_ms; no process
 * started): one that does not would hang every ssh that
 * uses it. A stopped one (SIGSTOP, ^Z), or with end_busy any one, is
 * ended - when the process on the socket is our user's ssh master for
 * control, by its pid - and its socket removed, with a warning: 0, and
 * the next ssh makes a fresh master (0 too when there is no master). One
 * that runs but does not answer, or a socket no master of ours holds, is
 * left alone: 1, connect without a master. 2 when the master answered.
 * -1 having said why.
 */
int ssh_master_check(const char *control, int timeout_ms, int end_busy);
/* How long a master has to answer: it replies at once when it runs. */
#define SSH_MASTER_CHECK_MS 3000

/* "ssh -O exit" for the master listening at control. */
void ssh_master_exit_argv(const char *control, struct strvec *out);

/*
 * The ssh argv that hangs up t->tag's command in the guest: SIGHUP to
 * every process of t->user whose environment holds SSH_TAG_VAR=t->tag and
 * to each process group one of them leads - what sshd does for a
 * terminal's session when the connection ends, and nothing for one
 * without. t->tag must be set.
 */
void ssh_hangup_argv(const struct ssh_target *t, struct strvec *out);

/*
 * An OpenSSH config stanza "Host ALIAS" reaching t, for ~/.ssh/config or
 * ssh -F. -1 as ssh_target_check(), or when alias is no plain name.
 */
int ssh_config_stanza(const struct ssh_target *t, struct buf *out);

/* What one rsync run into a VM does besides copying. */
struct ssh_rsync_opts {
	const char *const *excludes; /* NULL-terminated, or NULL */
	const char *chown;           /* "USER:GROUP" (sudo in the guest) */
	int gitignore;               /* honour .gitignore files */
	int del;                     /* --delete */
	int dry_run;
	int progress;                /* --info=progress2 */
};

/*
 * rsync's argv copying src's contents into dest on t: -e is ssh_argv()'s
 * options quoted for rsync's own splitter; dest goes with --protect-args,
 * relative (and "~/...") to the login home.
 */
void ssh_rsync_argv(const struct ssh_target *t, const struct ssh_rsync_opts *o,
		    const char *src, const char *dest, struct strvec *out);

/* The ssh argv that prints, in the guest, where remote path dest (taken
 * as ssh_rsync_argv() takes it) leads and where the home does, a line
 * each, symlinks followed (realpath -m). */
void ssh_realpath_argv(const struct ssh_target *t, const char *dest,
		       struct strvec *out);
/*
 * 1 when remote path dest, taken as ssh_rsync_argv() takes it, names home
 * or a directory above it ("/" included); lexical, symlinks not followed.
 */
int ssh_path_holds(const char *dest, const char *home);

/* Append s to out as one word for a POSIX shell ('...' quoting). */
void ssh_quote(const char *s, struct buf *out);

/* A known_hosts line pinning public key pub (an "ssh-ed25519 AAA.. c"
 * line) under alias. */
void ssh_known_hosts_line(const char *alias, const char *pub, struct buf *out);

/*
 * 1 when host:port answers with an "SSH-" banner within timeout_ms; 0
 * when it says nothing in that time, or something else, or the connect
 * fails otherwise; -1 when the connection is refused, reset or closed
 * without a word. Never an error.
 */
int ssh_banner(const char *host, int port, int timeout_ms);
/* The same, calling tick(arg) about every 250 ms while it waits (a
 * progress line's clock). */
int ssh_banner_ticking(const char *host, int port, int timeout_ms,
		       void (*tick)(void *), void *arg);

#endif

/*
 * qmp: a small client for QEMU's JSON monitor, newline-delimited JSON over
 * a unix socket (or any connected stream socket, which is how the unit
 * tests drive it).
 *
 * Calling sequence: qmp_open() (or qmp_open_fd()) reads QEMU's greeting and
 * negotiates capabilities -> qmp_execute() as often as needed, or
 * qmp_quit() -> qmp_close(), which is due after a failed open as well.
 *
 * Errors: the functions print nothing. They return -1 and keep the reason
 * in q, for qmp_error(); a caller that recovers (say, by sending SIGTERM
 * instead) stays quiet, one that gives up reports it.
 */
#ifndef NOOK_QMP_H
#define NOOK_QMP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common.h"

/* A connection; the fields are the module's own. */
struct qmp {
	int fd;         /* -1 when closed */
	struct buf in;  /* bytes read past the last whole line */
	char *err;      /* why the last call failed, or NULL */
	uint32_t nonce;     /* this connection's, in each command's id */
	unsigned long sent; /* commands sent: the last one's number */
};

/* Connect to the socket at path and negotiate capabilities, within
 * timeout_ms. Fills all of *q. */
int qmp_open(struct qmp *q, const char *path, int timeout_ms);
/* The same over fd, an already connected stream socket; q owns fd from
 * here on, even when this fails. */
int qmp_open_fd(struct qmp *q, int fd, int timeout_ms);
/* Run command (with args or NULL); *ret gets "return" (caller decrefs),
 * ret may be NULL. Events are skipped. An error reply is -1 with its class
 * and description in qmp_error(). */
int qmp_execute(struct qmp *q, const char *command, json_t *args,
		int timeout_ms, json_t **ret);
/* Hand fd to QEMU under name (QMP getfd), for a later command that names
 * it ("fd:NAME" of migrate): the fd goes with SCM_RIGHTS on one blank,
 * which QMP's JSON parser skips, and getfd takes the fd QEMU received
 * last. fd stays the caller's to close. */
int qmp_send_fd(struct qmp *q, int fd, const char *name, int timeout_ms);
/*
 * Run a human monitor command line (QMP human-monitor-command). HMP says
 * what went wrong as text in its answer, not as an error: the answer is
 * taken as success when it is empty, or when ok is not NULL and the text
 * holds ok; anything else is -1 with that text in qmp_error(). The text
 * is appended to out (out may be NULL).
 */
int qmp_hmp(struct qmp *q, const char *cmdline, const char *ok,
	    int timeout_ms, struct buf *out);
/* Ask QEMU to quit and wait (up to timeout_ms) for it to close the
 * connection; -1 only when the command could not be sent. */
int qmp_quit(struct qmp *q, int timeout_ms);
/* Why the last call on q failed ("QMP ...: <why>"), or "" when it did not;
 * valid until the next call on q or qmp_close(). */
const char *qmp_error(const struct qmp *q);
/* Close the connection and free what q holds; q may be NULL. */
void qmp_close(struct qmp *q);

#endif

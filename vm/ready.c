/* Waiting for a guest to be really ready: banner, login, cloud-init. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cidata.h"
#include "internal.h"

const char *vm_phase_name(enum vm_phase ph)
{
	static const char *const names[] = { "booting (waiting for sshd)",
					      "logging in over ssh",
					      "running cloud-init", "ready" };

	return names[ph];
}

/*
 * An ssh child. Its stderr is kept for the reason it failed, its stdout
 * for the word that says it logged in; its stdin is ours, to wake the
 * wait script (see wait_script).
 */
struct probe {
	struct child c;
	struct strvec argv;
	int in_fd, out_fd, err_fd;
	struct buf out, err;
};

#define PROBE_INIT { CHILD_INIT, STRVEC_INIT, -1, -1, -1, BUF_INIT, BUF_INIT }

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * Start ssh running cmd on t, its stdout and stderr into non-blocking
 * pipes. With wake, its stdin is a socket whose other end we keep, to
 * wake the wait script. A socket, not a pipe: a write after ssh has
 * gone must fail, not raise SIGPIPE. Without wake, stdin is /dev/null.
 * -1 having said why.
 */
static int probe_start(struct probe *pr, const struct ssh_target *t,
		       const char *const *cmd, int wake)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int ok;

	strvec_clear(&pr->argv);
	buf_free(&pr->out); /* nothing of the last try's output stays */
	buf_free(&pr->err);
	ssh_argv(t, -1, NULL, cmd, &pr->argv);
	if (wake) {
		ok = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				in) == 0;
	} else {
		in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		ok = in[0] >= 0;
	}
	ok = ok && pipe2(out, O_CLOEXEC | O_NONBLOCK) == 0 &&
	     pipe2(err, O_CLOEXEC | O_NONBLOCK) == 0;
	if (!ok)
		error_errno("ssh's stdin, stdout or stderr");
	pr->c = (struct child)CHILD_INIT;
	pr->c.argv = (const char *const *)pr->argv.v;
	pr->c.in = in[0];
	pr->c.out = out[1];
	pr->c.err = err[1];
	if (ok && child_start(&pr->c) < 0)
		ok = 0;
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&err[1]);
	pr->in_fd = in[1];
	pr->out_fd = out[0];
	pr->err_fd = err[0];
	if (!ok) {
		close_fd(&pr->in_fd);
		close_fd(&pr->out_fd);
		close_fd(&pr->err_fd);
	}
	return ok ? 0 : -1;
}

/* Append to b what fd (non-blocking) holds now. */
static void drain(int fd, struct buf *b)
{
	char chunk[1024];

	while (fd >= 0) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n <= 0)
			break;
		buf_add(b, chunk, (size_t)n);
	}
}

/* -1 while it runs, else its exit status. */
static int probe_poll(struct probe *pr)
{
	int st;

	drain(pr->out_fd, &pr->out);
	drain(pr->err_fd, &pr->err);
	if (child_poll(&pr->c, &st) != 1)
		return -1;
	drain(pr->out_fd, &pr->out);
	drain(pr->err_fd, &pr->err);
	close_fd(&pr->in_fd);
	close_fd(&pr->out_fd);
	close_fd(&pr->err_fd);
	return st;
}

/* Wake the wait script for one look; a full buffer is a look pending. */
static void probe_wake(struct probe *pr)
{
	if (pr->in_fd >= 0 &&
	    send(pr->in_fd, "\n", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
	    errno != EAGAIN)
		close_fd(&pr->in_fd);
}

static void probe_stop(struct probe *pr)
{
	child_kill(&pr->c);
	close_fd(&pr->in_fd);
	close_fd(&pr->out_fd);
	close_fd(&pr->err_fd);
	strvec_clear(&pr->argv);
	buf_free(&pr->out);
	buf_free(&pr->err);
}

/*
 * The login and the wait for cloud-init, in one cheap ssh session.
 *
 * Why cheap: under TCG, every sshd session and every process in the
 * guest takes guest CPU that the boot still needs. A crowded cluster
 * node has no second CPU to spare. `cloud-init status --wait` is a
 * Python program whose imports alone take about 5 s.
 *
 * What it does: cloud-final writes /run/cloud-init/result.json when it
 * is done, with the errors of every stage (`cloud-init status` reads
 * the same file). The script:
 *  - prints LOGGED_IN on a line of its own, whatever the user's shell
 *    start-up printed before it;
 *  - looks for the file each time nook writes it a line (every half
 *    second). The read is a shell builtin: no process is started;
 *  - asks systemctl (costly to start) only every 20th look;
 *  - exits 0 when the file says there were no errors. Otherwise it
 *    exits 1 (errors), or 2 (cloud-init disabled, or the boot ended
 *    without a result). nook then runs `cloud-init status --wait` and
 *    reports its answer;
 *  - exits 3 when its stdin closes: nook has gone;
 *  - whatever it exits with, writes the guest's files back first (sync:
 *    20 to 30 ms, measured). A power cut soon after (QEMU killed, `stop
 *    --force`, a host crash) would lose the first boot's files
 *    otherwise: such a guest's cloud-init or sshd fails at every start.
 * Once done, it saves the start two more sessions. With $1 = 1 it
 * brings the other vCPUs online (the guest boots on one) and prints
 * CPUS_ONLINE. With $2 = 1 it compares the cluster's lines in
 * /etc/hosts with its arguments $3..., and prints HOSTS_OK when they
 * match.
 */
#define LOGGED_IN "nook-logged-in"
#define CPUS_ONLINE "nook-cpus-online"
#define HOSTS_OK "nook-hosts-ok"
static const char wait_script[] =
	"trap sync EXIT; echo " LOGGED_IN "; online=$1 hosts=$2; shift 2; "
	"r=/run/cloud-init/result.json n=0; "
	"while [ ! -e $r ]; do "
	"[ -e /run/cloud-init/disabled ] && exit 2; "
	"n=$((n + 1)); "
	"if [ $((n % 20)) = 0 ]; then "
	"case $(systemctl is-system-running 2>/dev/null) in "
	"running|degraded) [ -e $r ] || exit 2;; esac; fi; "
	"read -r _ || exit 3; done; "
	"grep -qF '\"errors\": []' $r || exit 1; "
	"[ $online = 1 ] && sudo -n sh -c '" CIDATA_ONLINE_CPUS_SH "' "
	"</dev/null >/dev/null 2>&1 && echo " CPUS_ONLINE "; "
	"[ $hosts = 1 ] && "
	"[ \"$(for l; do echo \"$l" CIDATA_HOSTS_MARK "\"; done)\" = "
	"\"$(grep '" CIDATA_HOSTS_MARK "$' /etc/hosts)\" ] && echo " HOSTS_OK "; "
	"exit 0";

#define LOOK_MS 500

/*
 * A guest kernel that panics does not stop QEMU: its vCPU spins, and
 * the wait would see only silence until --timeout. The panic's last
 * words are on the console, which QEMU appends to the console log. So
 * once a second we look at what this boot added to the log.
 *
 * A marker may straddle two looks. Each look therefore starts a
 * marker's length before where the last one ended (but never before
 * this boot's start). A panic line not yet ended is read again, whole,
 * on the next look. The same looks also note systemd's and cloud-init's
 * lines (see SLOW_BLIND_S).
 */
#define PANIC_MARK "Kernel panic - not syncing"
#define STATUS_MARK "  OK  "            /* systemd's status lines */
#define CI_NET_MARK "running 'init' at" /* cloud-init's network stage */
/* each look's overlap: systemd's line on sshd (SSHD_FAIL_MARK) whole */
#define LOOK_OVERLAP 160
_Static_assert(sizeof(STATUS_MARK) <= LOOK_OVERLAP &&
	       sizeof(CI_NET_MARK) <= LOOK_OVERLAP &&
	       sizeof(PANIC_MARK) <= LOOK_OVERLAP,
	       "a marker longer than the looks' overlap");

/*
 * A guest whose sshd fails to start never answers, and the wait would
 * see only silence until --timeout. A user-data that spoils sshd's
 * configuration does that, and so does a power cut soon after a first
 * boot: files the guest had not yet written back come back empty.
 * systemd says so on the console:
 *
 *   [FAILED] Failed to start ssh.servic… - OpenBSD Secure Shell server.
 *
 * the unit's name in colour codes, and cut to the console's width (the
 * ellipsis takes the escape of the code after it; "[0m" is left). It
 * tries again a few times first: "Stopped" when a try begins, then
 * "Starting", then "Started" or "Failed". A failure right after
 * "Stopped", with no "Starting", is systemd refusing to try again (its
 * limit on restarts), and ends the wait at once (once its line is
 * whole). A failure after a try ends it once SSHD_RETRY_S passed with no
 * new try: that is a unit that does not restart, or one that waits long
 * to. systemd says all this only while the guest boots (or shuts down):
 * a try after that is silent. So sshd's banner makes whatever failed
 * before moot, and a new boot (the kernel's first line) starts afresh.
 */
#define SSHD_FAIL_MARK "Failed to start "
#define SSHD_STOP_MARK "Stopped "
#define SSHD_RETRY_S 30

struct sshd_watch {
	int said;      /* VM_SSHD_*: systemd's last word on sshd, or 0 */
	off_t at;      /* ... where in the log (-1: none yet) */
	int stopped;   /* "Stopped" since the last "Starting" or "Started" */
	char stopped_unit[32]; /* ... of which unit (ssh.socket is not
				* ssh.service) */
	int gave_up;   /* the last failure came with no try before it */
	double since;  /* when it was seen */
	char line[160]; /* ... its words */
	int whole;     /* ... all of them: the line has ended */
};

#define SSHD_WATCH_INIT { 0, -1, 0, "", 0, 0, "", 0 }

struct console_watch {
	const char *path;
	off_t from;    /* where this boot's output starts */
	off_t seen;    /* bytes of the log looked at */
	double looked; /* when (the wait's clock) */
	int partial;   /* the last look found a line not yet ended */
	int status;    /* systemd's status lines: this is /dev/console */
	int ci_net;    /* cloud-init said its network stage runs */
	struct sshd_watch sshd;
};

/* The length of the UTF-8 character at p (n bytes left), or 0 when
 * what is there is not one as JSON takes it (no overlong form, no
 * surrogate, nothing past U+10FFFF). */
static size_t utf8_char(const unsigned char *p, size_t n)
{
	size_t len = p[0] < 0x80 ? 1 : p[0] >= 0xc2 && p[0] < 0xe0 ? 2 :
		     p[0] >= 0xe0 && p[0] < 0xf0 ? 3 :
		     p[0] >= 0xf0 && p[0] < 0xf5 ? 4 : 0;

	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
		return 0;
	return len;
}

/*
 * The n bytes at p in line, without colour codes (nor what an ellipsis
 * left of one, "[0m") or control characters. It is the guest's text, and
 * goes into JSON: a byte that is not part of a whole UTF-8 character is
 * a '?', and the line is cut between characters.
 */
static void clean_words(const char *p, size_t n, char *line, size_t size)
{
	size_t i = 0, o = 0;

	while (i < n) {
		size_t k = i + (p[i] == '\033'), j = k + 1, len;

		if (k < n && p[k] == '[') {
			while (j < n && (isdigit((unsigned char)p[j]) ||
					 p[j] == ';'))
				j++;
			if (j < n && p[j] == 'm' && (j > k + 1 || k > i)) {
				i = j + 1;
				continue;
			}
		}
		len = utf8_char((const unsigned char *)p + i, n - i);
		if (len == 1 && ((unsigned char)p[i] < ' ' || p[i] == 0x7f)) {
			i++;
			continue;
		}
		if (o + (len ? len : 1) >= size)
			break;
		if (len)
			memcpy(line + o, p + i, len);
		else
			line[o] = '?';
		o += len ? len : 1;
		i += len ? len : 1;
	}
	line[o] = '\0';
}

int vm_panic_line(const char *text, size_t len, char *line, size_t size)
{
	const char *m = memmem(text, len, PANIC_MARK, strlen(PANIC_MARK));
	size_t left, n;

	if (!m)
		return 0;
	left = (size_t)(text + len - m);
	n = strcspn(m, "\r\n"); /* text ends in a NUL */
	if (n > left)
		n = left;
	clean_words(m, n, line, size);
	return n < left ? 1 : 2;
}

/* The kernel's first line on the console, at every boot; and its last
 * on a panic it does not come back from (panic=0, Debian's default):
 * it prints nothing more, so this ends the log. A guest that prints the
 * panic's words itself (grep in a log) ends the log with something else. */
#define BOOT_MARK "Linux version "
#define END_MARK "---[ end Kernel panic"

/* The console log at path after offset from, its last VM_PANIC_TAIL
 * bytes, in b; the start there of its last boot's output, or of all of
 * it there is; NULL when none could be read. */
static char *last_boot(const char *path, long long from, struct buf *b)
{
	char *at, *next;

	if (from < 0 || read_file_tail(path, from, VM_PANIC_TAIL, b) < 0)
		return NULL;
	at = b->p;
	while (at && (next = memmem(at, b->len - (size_t)(at - b->p),
				    BOOT_MARK, strlen(BOOT_MARK))))
		at = next + 1;
	return at;
}

int vm_console_panicked(const char *path, long long from, char *line,
			size_t size)
{
	struct buf b = BUF_INIT;
	char *at = last_boot(path, from, &b), *last;
	int ret = 0;

	if (!at) {
		buf_free(&b);
		return 0;
	}
	/* the start of its last line that is not blank */
	while (b.len && strchr("\r\n \t", b.p[b.len - 1]))
		b.p[--b.len] = '\0';
	last = b.p + b.len;
	while (last > at && last[-1] != '\n')
		last--;
	if (memmem(last, b.len - (size_t)(last - b.p), END_MARK,
		   strlen(END_MARK)))
		ret = vm_panic_line(at, b.len - (size_t)(at - b.p), line,
				    size) != 0;
	buf_free(&b);
	return ret;
}

static const char *skip_colour(const char *s)
{
	while (s[0] == '\033' && s[1] == '[') {
		s += 2;
		while (isdigit((unsigned char)*s) || *s == ';')
			s++;
		if (*s)
			s++;
	}
	return s;
}

/* 1 when s, after its colour codes, names sshd's unit: ssh.* or sshd.*,
 * whole or cut short (ssh.servic…) */
static int names_sshd(const char *s)
{
	s = skip_colour(s);
	if (strncmp(s, "ssh", 3))
		return 0;
	s += 3;
	return *s == '.' || (*s == 'd' && s[1] == '.');
}


/* The first of mark in [p, end), followed by sshd's unit's name when
 * of_sshd, or NULL. */
static const char *sshd_mark(const char *p, const char *end,
			     const char *mark, int of_sshd)
{
	size_t n = strlen(mark);
	const char *w;

	while ((w = memmem(p, (size_t)(end - p), mark, n)))
		if (!of_sshd || names_sshd(w + n))
			return w;
		else
			p = w + 1;
	return NULL;
}

int vm_sshd_said(const char *text, size_t len, size_t *at, char *line,
		 size_t size)
{
	static const char *const marks[] = {
		[VM_SSHD_STARTING] = "Starting ",
		[VM_SSHD_STARTED] = "Started ",
		[VM_SSHD_STOPPED] = SSHD_STOP_MARK,
		[VM_SSHD_FAILED] = SSHD_FAIL_MARK,
		[VM_SSHD_BOOT] = BOOT_MARK,
	};
	const char *end = text + len, *first = NULL, *eol;
	int said = 0;

	if (*at >= len)
		return 0;
	for (int m = VM_SSHD_STARTING; m <= VM_SSHD_BOOT; m++) {
		const char *w = sshd_mark(text + *at, first ? first : end,
					  marks[m], m != VM_SSHD_BOOT);

		if (w) {
			first = w;
			said = m;
		}
	}
	if (!said)
		return 0;
	*at = (size_t)(first - text);
	eol = memchr(first, '\n', (size_t)(end - first));
	clean_words(first, (size_t)((eol ? eol : end) - first), line, size);
	return said;
}

/* The unit that words (cleaned, from their mark on: skip bytes) name,
 * in unit: up to a blank, without the ellipsis that cut it short. */
static void unit_of(const char *words, size_t skip, char *unit, size_t size)
{
	const char *u = strlen(words) > skip ? words + skip : "";
	size_t n = strcspn(u, " ");

	if (n >= 3 && !memcmp(u + n - 3, "\xe2\x80\xa6", 3))
		n -= 3;
	snprintf(unit, size, "%.*s", (int)n, u);
}

/* 1 when units a and b, either cut short, are the same as far as both
 * go (and that is far enough to tell: "ssh." at least). */
static int same_unit(const char *a, const char *b)
{
	size_t n = strlen(a) < strlen(b) ? strlen(a) : strlen(b);

	return n >= 4 && !strncmp(a, b, n);
}

/* What systemd said of sshd at pos in the log, in words (whole: their
 * line has ended), heard at now (see SSHD_RETRY_S), unless an earlier
 * look heard it. */
static void sshd_heard(struct sshd_watch *w, int said, off_t pos,
		       const char *words, int whole, double now)
{
	char unit[sizeof(w->stopped_unit)];

	if (pos < w->at)
		return;
	if (pos == w->at) {
		/* the same line again, now whole */
		if (said == VM_SSHD_FAILED) {
			snprintf(w->line, sizeof(w->line), "%s", words);
			w->whole = whole;
		}
		return;
	}
	w->at = pos;
	switch (said) {
	case VM_SSHD_BOOT:
		w->said = w->stopped = w->gave_up = 0;
		return;
	case VM_SSHD_STOPPED:
		w->stopped = 1;
		unit_of(words, strlen(SSHD_STOP_MARK), w->stopped_unit,
			sizeof(w->stopped_unit));
		return;
	case VM_SSHD_FAILED:
		unit_of(words, strlen(SSHD_FAIL_MARK), unit, sizeof(unit));
		w->gave_up = w->stopped && same_unit(w->stopped_unit, unit);
		w->since = now;
		snprintf(w->line, sizeof(w->line), "%s", words);
		w->whole = whole;
		break;
	}
	w->said = said;
	w->stopped = 0;
}

/* Each of systemd's words on sshd in text (n bytes, then a NUL, read at
 * from in the log), in turn. */
static void sshd_look(struct sshd_watch *w, const char *text, size_t n,
		      off_t from, double now)
{
	char line[sizeof(w->line)];
	size_t at = 0;
	int said;

	while ((said = vm_sshd_said(text, n, &at, line, sizeof(line)))) {
		sshd_heard(w, said, from + (off_t)at, line,
			   memchr(text + at, '\n', n - at) != NULL, now);
		at++;
	}
}

int vm_console_sshd_failed(const char *path, long long from, char *line,
			   size_t size)
{
	struct sshd_watch w = SSHD_WATCH_INIT;
	struct buf b = BUF_INIT;
	char *at = last_boot(path, from, &b);
	int ret = 0;

	if (at) {
		sshd_look(&w, at, b.len - (size_t)(at - b.p), 0, 0);
		ret = w.said == VM_SSHD_FAILED && w.gave_up;
	}
	if (ret)
		snprintf(line, size, "%s", w.line);
	buf_free(&b);
	return ret;
}

int vm_sshd_wait_ms(const char *console_log)
{
	return file_size(console_log) > 0 ? 5000 : 1000;
}

static int console_look(struct console_watch *w, char *line, size_t size)
{
	char chunk[4096 + 1];
	int fd = open(w->path, O_RDONLY | O_CLOEXEC);
	int found = 0;

	if (fd < 0)
		return 0;
	for (;;) {
		off_t from = w->seen - LOOK_OVERLAP;
		ssize_t n;
		int rc;

		if (from < w->from)
			from = w->from;
		n = pread(fd, chunk, sizeof(chunk) - 1, from);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || from + n <= w->seen)
			break;
		chunk[n] = '\0';
		w->seen = from + n;
		w->status |= !!memmem(chunk, (size_t)n, STATUS_MARK,
				      strlen(STATUS_MARK));
		w->ci_net |= !!memmem(chunk, (size_t)n, CI_NET_MARK,
				      strlen(CI_NET_MARK));
		sshd_look(&w->sshd, chunk, (size_t)n, from, w->looked);
		rc = vm_panic_line(chunk, (size_t)n, line, size);
		if (rc == 2 && !w->partial) {
			/* from the marker on the next look, whole */
			char *m = memmem(chunk, (size_t)n, PANIC_MARK,
					 strlen(PANIC_MARK));

			w->seen = w->from = from + (m - chunk);
			w->partial = 1;
			break;
		}
		if (rc) {
			found = 1;
			break;
		}
	}
	close(fd);
	return found;
}

/*
 * How often to probe for sshd's banner.
 *
 * slirp accepts a connection at once, long before sshd runs, and holds
 * it open while the guest says nothing. Only sshd's own banner means
 * the guest is up. While the guest's network is down, a probe sees
 * only silence, and ends after a second.
 *
 * Once the guest has refused a connection, its network is up but its
 * sshd is not yet. A connection it then keeps is almost surely sshd's,
 * and under TCG sshd can take seconds to send its banner. So the probe
 * waits for it (SLOW_BANNER_MS) rather than leave a half-started sshd
 * behind and start another, each taking guest CPU from the boot. The
 * progress line's clock ticks on while it waits.
 *
 * A probe into a guest whose network is down has a cost too. slirp
 * keeps sending the guest that connection's SYN for 75 s, backing off,
 * though nook has closed its end. Once sshd listens, it gets every one
 * of them, and starts an sshd for each that reads its keys and sends
 * its banner to no one: about 80 ms of guest CPU each (measured), and
 * a line in the guest's journal. Probing every 1.25 s from the start,
 * a lone boot's sshd got 13 such connections as it came up, while
 * cloud-init still needed the CPU.
 *
 * So until the guest's network is up, nook probes rarely:
 *  - every FAST_BLIND_S at first;
 *  - every SLOW_BLIND_S once systemd's status lines show that the
 *    serial console is the guest's /dev/console. cloud-init writes
 *    there too, so only an image without cloud-init waits longer;
 *  - every 1.25 s once cloud-init's network stage says it runs (sshd
 *    starts after it), or once the guest refuses a connection.
 */
#define FAST_BLIND_S 4
#define SLOW_BLIND_S 15
#define SLOW_BANNER_MS 5000

/*
 * How many refusals of nook's key end the wait. cloud-init sets up
 * users and keys before systemd starts sshd, so once sshd answers, a
 * refusal is final. Say so after a few tries rather than wait out the
 * whole timeout.
 */
#define MAX_DENIED 3

static void login_refused(const char *user, const char *ssh_said)
{
	const char *line = strstr(ssh_said, "Permission denied");
	int n;

	/* ssh's own line, not any warning printed before it */
	while (line > ssh_said && line[-1] != '\n')
		line--;
	n = (int)strcspn(line, "\r\n");

	errorf("the guest's sshd refused nook's key for user \"%s\": %.*s\n"
	       "Likely causes:\n"
	       "  - the user-data's users: list does not make \"%s\" (nook "
	       "logs in as the\n    image's default user, or as the first "
	       "user listed when the list has\n    no 'default')\n"
	       "  - the user-data turns off vendor-data (vendor_data: "
	       "{enabled: false}) or\n    its boothooks, through which nook "
	       "lets its key in for every user\n"
	       "  - the user-data changes sshd's AuthorizedKeysFile",
	       user, n, line, user);
}

/* The wait for sshd's banner (see FAST_BLIND_S). */
struct banner_wait {
	double probed; /* when it last probed, on the wait's clock */
	int net_up;    /* the guest has refused a connection */
};

/*
 * One step of the wait, el seconds into it, with left_s to go. When a
 * probe is due, probe, calling tick(arg) while it waits. A probe is due
 * every blind_s seconds while the guest's network looks down (0: now),
 * and at every step once it is up. Otherwise sleep a quarter second.
 * 1 when sshd answered.
 */
static int banner_step(struct banner_wait *bw, const struct ssh_target *t,
		       double el, double left_s, int blind_s,
		       void (*tick)(void *), void *arg)
{
	int ms = bw->net_up ? SLOW_BANNER_MS : 1000;
	int b;

	if (ms > left_s * 1000)
		ms = (int)(left_s * 1000) + 1;
	if (!bw->net_up && el - bw->probed < blind_s) {
		sleep_ms(250);
		return 0;
	}
	bw->probed = el;
	b = ssh_banner_ticking(t->host, t->port, ms, tick, arg);
	if (b == 1)
		return 1;
	bw->net_up |= b < 0;
	sleep_ms(250);
	return 0;
}

/* The progress line's clock while a banner probe waits. */
struct tick {
	struct vm_ready *r;
	double start; /* the wait's, on mono_s()'s clock */
};

static void banner_tick(void *arg)
{
	const struct tick *t = arg;

	t->r->progress(t->r->ctx, t->r->reached, mono_s() - t->start);
}

/* The guest's wait script's argv: whether to bring vCPUs online, then
 * the hosts lines to write. */
static void wait_argv(const struct vm_ready *r, struct strvec *wait)
{
	strvec_push(wait, "sh");
	strvec_push(wait, "-c");
	strvec_push(wait, wait_script);
	strvec_push(wait, "nook-wait");
	strvec_push(wait, r->online_cpus ? "1" : "0");
	strvec_push(wait, r->hosts ? "1" : "0");
	for (size_t i = 0; r->hosts && i < r->hosts->n; i++)
		strvec_push(wait, r->hosts->v[i]);
}

/* 1 when the wait must end el seconds in, whatever the guest says, with
 * the reason set in r: QEMU is gone, the guest's kernel panicked, its
 * sshd failed to start before nook logged in, QEMU stopped the guest at
 * a write the disk had no room for (the console and QEMU are looked at
 * once a second), time is up, or a signal came. */
static int wait_ended(struct vm_ready *r, struct console_watch *pw, double el)
{
	if (!vm_pid_is_ours(r->pid, r->paths->qmp_arg)) {
		r->crashed = 1;
		return 1;
	}
	if (el - pw->looked >= 1) {
		pw->looked = el;
		if (console_look(pw, r->panic, sizeof(r->panic))) {
			r->panicked = 1;
			return 1;
		}
		if (pw->sshd.said == VM_SSHD_FAILED &&
		    r->reached <= VM_PHASE_LOGIN &&
		    ((pw->sshd.gave_up && pw->sshd.whole) ||
		     el - pw->sshd.since >= SSHD_RETRY_S)) {
			snprintf(r->sshd_failed, sizeof(r->sshd_failed), "%s",
				 pw->sshd.line);
			return 1;
		}
		if (vm_qemu_cpus(r->paths, 1000) == VM_QEMU_NO_ROOM) {
			r->no_room = 1;
			return 1;
		}
	}
	if (el > r->timeout_s) {
		r->timed_out = 1;
		return 1;
	}
	if (sig_caught) {
		r->interrupted = 1;
		return 1;
	}
	return 0;
}

/* ssh exited 255: it could not log in, or not yet. 1 having said why
 * when that is final: a host key that is not ours, or nook's key
 * refused MAX_DENIED times in a row (counted in *denied). Else 0, after
 * a second's pause before the next try. */
static int login_failed(const struct vm_ready *r, const char *why,
			int *denied)
{
	if (strstr(why, "verification failed") ||
	    strstr(why, "IDENTIFICATION")) {
		errorf("the guest's SSH host key is not the one nook gave it; "
		       "refusing to connect:\n%s", why);
		return 1;
	}
	*denied = strstr(why, "Permission denied") ? *denied + 1 : 0;
	if (*denied >= MAX_DENIED) {
		login_refused(r->ssh->user, why);
		return 1;
	}
	sleep_ms(1000); /* sshd not yet taking logins: retry */
	return 0;
}

/* The login and cloud-init phases of vm_wait_ready(): one ssh session
 * running the wait script, or `cloud-init status --wait` once the
 * script found something wrong. */
struct login_wait {
	struct probe pr;
	struct strvec script; /* the wait script's argv (wait_argv()) */
	int slow_ci;          /* running `cloud-init status --wait` */
	int denied;           /* refusals of nook's key in a row */
	double woke;          /* when the script was last woken */
};

#define LOGIN_WAIT_INIT { PROBE_INIT, STRVEC_INIT, 0, 0, 0 }

/* One step of the login and cloud-init phases, el seconds into the
 * wait. 0 while the wait goes on; 1 when it is over: r->reached is
 * VM_PHASE_READY, or why not was said (or is in r->cloud_init_rc). */
static int login_step(struct vm_ready *r, struct login_wait *lw, double el)
{
	static const char *const ci[] = { "cloud-init", "status", "--wait",
					   NULL };
	struct probe *pr = &lw->pr;
	int st;

	if (pr->c.pid <= 0 && pr->err_fd < 0 &&
	    probe_start(pr, r->ssh, lw->slow_ci ? ci :
			(const char *const *)lw->script.v, !lw->slow_ci) < 0)
		return 1;
	st = probe_poll(pr);
	if (r->reached == VM_PHASE_LOGIN && pr->out.p &&
	    strstr(pr->out.p, LOGGED_IN "\n"))
		r->reached = VM_PHASE_CLOUD_INIT;
	if (st < 0) {
		/* none while ssh logs in: they would queue up */
		if (r->reached == VM_PHASE_CLOUD_INIT &&
		    el - lw->woke >= LOOK_MS / 1000.0) {
			probe_wake(pr);
			lw->woke = el;
		}
		sleep_ms(250);
		return 0;
	}
	if (st == 255)
		return login_failed(r, pr->err.p ? pr->err.p : "", &lw->denied);
	if (r->reached == VM_PHASE_LOGIN) {
		/* logged in, yet the shell never said so */
		errorf("ssh logged in, but a shell there could not run "
		       "(exit %d): %s", st, pr->err.p ? pr->err.p : "");
		return 1;
	}
	if (st != 0 && !lw->slow_ci) {
		lw->slow_ci = 1; /* let cloud-init itself say what happened */
		return 0;
	}
	r->cloud_init_rc = st;
	if (st == 0) {
		r->reached = VM_PHASE_READY;
		if (!lw->slow_ci && pr->out.p) {
			r->cpus_online = !!strstr(pr->out.p,
						  "\n" CPUS_ONLINE "\n");
			r->hosts_ok = !!strstr(pr->out.p, "\n" HOSTS_OK "\n");
		}
	}
	return 1;
}

/* r's results cleared for a new wait. */
static void ready_reset(struct vm_ready *r)
{
	r->reached = VM_PHASE_BOOT;
	r->crashed = r->timed_out = r->panicked = r->interrupted = 0;
	r->no_room = 0;
	r->panic[0] = r->sshd_failed[0] = '\0';
	r->cloud_init_rc = -1;
	r->cpus_online = r->hosts_ok = 0;
}

int vm_wait_ready(struct vm_ready *r)
{
	struct banner_wait bw = { 0 };
	struct login_wait lw = LOGIN_WAIT_INIT;
	struct console_watch pw = { .path = r->paths->console_log,
				    .looked = -1, .sshd = SSHD_WATCH_INIT };
	double start = mono_s();
	struct tick tk = { r, start };

	ready_reset(r);
	pw.from = pw.seen = r->console_from >= 0 ? r->console_from :
			    file_size(pw.path);
	/* a guest found running may be up already, its cloud-init's lines
	 * before where the watch starts: probe it as before */
	pw.ci_net = r->console_from < 0;
	wait_argv(r, &lw.script);
	for (;;) {
		double el = mono_s() - start;
		int blind;

		if (wait_ended(r, &pw, el))
			break;
		if (r->progress)
			r->progress(r->ctx, r->reached, el);
		if (r->reached != VM_PHASE_BOOT) {
			if (login_step(r, &lw, el))
				break;
			continue;
		}
		blind = pw.ci_net ? 0 : pw.status ? SLOW_BLIND_S : FAST_BLIND_S;
		if (banner_step(&bw, r->ssh, el, r->timeout_s - el, blind,
				r->progress ? banner_tick : NULL, &tk)) {
			r->reached = VM_PHASE_LOGIN;
			pw.sshd.said = 0; /* sshd answers: what failed is moot */
		}
	}
	probe_stop(&lw.pr);
	strvec_clear(&lw.script);
	return r->reached == VM_PHASE_READY ? 0 : -1;
}

/* vm_ssh_await()'s clock, for banner_step(): calls the caller's tick
 * with the seconds waited. */
struct await_clock {
	void (*tick)(void *arg, int waited_s);
	void *arg;
	double start;
};

static void await_tick(void *arg)
{
	const struct await_clock *c = arg;

	if (c->tick)
		c->tick(c->arg, (int)(mono_s() - c->start));
}

/* The wait is over: call the caller's tick(arg, -1) once, before
 * anything else is said, so a clock on a terminal is cleared. */
static void await_end(struct await_clock *c)
{
	if (c->tick)
		c->tick(c->arg, -1);
	c->tick = NULL;
}

/* error_before()'s hook during the wait: whatever is said (why it ends,
 * a VM record that cannot be read as well as await_over()'s reasons, or
 * a warning) is said on a line of its own, not after the clock; the
 * clock goes on below it while the wait does. */
static void await_said(void *arg)
{
	const struct await_clock *c = arg;

	if (c->tick)
		c->tick(c->arg, -1);
}

/* 0 while the wait for vm's sshd goes on. Else -1, having said why it
 * ended before sshd answered. pid is the QEMU the wait began with. */
static int await_over(struct vm *vm, pid_t pid, long long until)
{
	struct vm_info i;

	if (access(vm->paths.json, F_OK) < 0)
		return errorf("VM %s was deleted meanwhile", vm->name);
	if (vm_reload_state(vm) < 0)
		return -1;
	vm_get_info(vm, &i);
	if (i.state == VM_PAUSED)
		return errorf("VM %s was paused before its sshd answered; "
			      "'nook local unpause %s' lets it run", vm->name,
			      vm->name);
	if (i.state != VM_RUNNING && i.state != VM_STARTING)
		return errorf("VM %s: its QEMU ended before its sshd answered; "
			      "'nook local status %s' says how", vm->name,
			      vm->name);
	if (i.pid != pid)
		return errorf("VM %s was started again meanwhile; run the "
			      "command again", vm->name);
	if (i.panic)
		return errorf("VM %s: the guest's kernel panicked (%s); 'nook "
			      "local logs %s' shows the console", vm->name,
			      i.panic, vm->name);
	if (i.no_room)
		return errorf("VM %s: %s", vm->name, i.no_room);
	if (i.sshd_failed)
		return vm_sshd_failed_error(vm, i.sshd_failed);
	if (time(NULL) >= until)
		return errorf("VM %s: its sshd did not answer in its first "
			      "%lld s; 'nook local logs %s' shows its console",
			      vm->name, until - vm->since, vm->name);
	return 0;
}

int vm_ssh_await(struct vm *vm, const struct ssh_target *t, int timeout_s,
		 void (*tick)(void *arg, int waited_s), void *arg)
{
	/* the first probe at once: the guest may be up already */
	struct banner_wait bw = { -FAST_BLIND_S, 0 };
	struct await_clock ck = { tick, arg, mono_s() };
	long long until = vm->since + timeout_s;
	struct error_hook hook;
	struct vm_info i;
	int ret;

	if (t->master_up)
		return 0;
	vm_get_info(vm, &i);
	/* booted a while ago: its sshd is ssh's to find */
	if (!i.pid || time(NULL) >= until)
		return 0;
	hook = error_before(await_said, &ck);
	while ((ret = await_over(vm, i.pid, until)) == 0) {
		double el = mono_s() - ck.start;

		if (banner_step(&bw, t, el, (double)(until - time(NULL)),
				FAST_BLIND_S, await_tick, &ck))
			break;
		await_tick(&ck);
	}
	error_before_restore(hook);
	await_end(&ck);
	return ret;
}

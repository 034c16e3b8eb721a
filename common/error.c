/* Error reporting and allocation that cannot fail. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* The last error said, for --json's error object: the one piece of
 * process-wide state, as errno is. */
static char last[4096];
/* Where the errors being said are, when a caller set it (error_where()). */
static const char *where;

void error_where(const char *w)
{
	where = w;
}

/* What runs before a message is said (error_before()). */
static void (*before)(void *);
static void *before_arg;

struct error_hook error_before(void (*fn)(void *arg), void *arg)
{
	struct error_hook was = { before, before_arg };

	before = fn;
	before_arg = fn ? arg : NULL;
	return was;
}

void error_before_restore(struct error_hook was)
{
	before = was.fn;
	before_arg = was.arg;
}

/* Whether that error was a usage error (usage_errorf()). */
static int last_usage;

/* (common.h) */
size_t utf8_len(const unsigned char *p, size_t n, int *whole)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t want, k = 1;

	*whole = p[0] < 0x80;
	if (p[0] < 0xc2 || p[0] > 0xf4)
		return 1;
	want = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : 2;
	/* no overlong form, no surrogate, nothing past U+10FFFF */
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	for (; k < want && k < n && p[k] >= lo && p[k] <= hi; k++) {
		lo = 0x80;
		hi = 0xbf;
	}
	*whole = k == want ? 1 : k == n ? -1 : 0;
	return k;
}

void str_escape(struct buf *b, const char *s, int keep_nl)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = 1;
		int whole;

		if (*p >= 0x80) {
			/* a whole UTF-8 sequence passes, C1 controls not (the
			 * NUL ends a sequence: nothing past it is read) */
			n = utf8_len(p, SIZE_MAX, &whole);
			if (whole > 0 && !(*p == 0xc2 && p[1] < 0xa0)) {
				buf_add(b, p, n);
				p += n;
				continue;
			}
			n = 1;
		}
		if ((*p == '\n' || *p == '\t') && keep_nl)
			buf_add(b, p, 1);
		else if (*p < 0x20 || *p >= 0x7f)
			buf_addf(b, "\\x%02x", *p);
		else
			buf_add(b, p, 1);
		p += n;
	}
	buf_add(b, "", 0);
}

/* The length of an SGR sequence (ESC [ digits and ';' m: a colour) at
 * p[0..n); 0 when none is there, -1 when n cuts one that may be. */
static long sgr_len(const unsigned char *p, size_t n)
{
	size_t i = 2;

	if (n < 2)
		return -1;
	if (p[1] != '[')
		return 0;
	while (i < n && i < 32 && (isdigit(p[i]) || p[i] == ';'))
		i++;
	if (i == n)
		return n < 32 ? -1 : 0;
	return p[i] == 'm' ? (long)i + 1 : 0;
}

size_t term_escape(struct buf *b, const char *s, size_t n, int more)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		size_t k = 1;
		int whole = 1;
		long sgr;

		if (p[i] >= 0x80) {
			k = utf8_len(p + i, n - i, &whole);
			if (whole < 0 && more)
				break; /* the rest of it comes next */
			if (whole > 0 && !(p[i] == 0xc2 && p[i + 1] < 0xa0)) {
				buf_add(b, p + i, k);
				i += k;
				continue;
			}
			k = 1;
		}
		if (p[i] == 0x1b) {
			sgr = sgr_len(p + i, n - i);
			if (sgr < 0 && more)
				break;
			if (sgr > 0) {
				buf_add(b, p + i, (size_t)sgr);
				i += (size_t)sgr;
				continue;
			}
		}
		if (p[i] == '\n' || p[i] == '\t' || p[i] == '\r')
			buf_add(b, p + i, 1);
		else if (p[i] < 0x20 || p[i] >= 0x7f)
			buf_addf(b, "\\x%02x", p[i]);
		else
			buf_add(b, p + i, 1);
		i += k;
	}
	return i;
}

char *str_escaped(const char *s)
{
	struct buf b = BUF_INIT;

	if (!s)
		return NULL;
	str_escape(&b, s, 0);
	return b.p;
}

size_t msg_names(const char *msg, const char *name)
{
	size_t vm = strncmp(msg, "VM ", 3) ? 0 : 3, n = strlen(name);
	const char *p = msg + vm;

	/* not "dev-20" for dev-2: no more of a name follows */
	if (!n || strncmp(p, name, n) || isalnum((unsigned char)p[n]) ||
	    p[n] == '-')
		return 0;
	return vm + n;
}

const char *msg_after_name(const char *msg, const char *name)
{
	size_t k = msg_names(msg, name);

	return k && !strncmp(msg + k, ": ", 2) ? msg + k + 2 : msg;
}

/* keep_nl: the message may run over lines (a usage error is one line,
 * so a newline in what it quotes is shown as \x0a, not obeyed). */
static void vreport(const char *prefix, const char *fmt, va_list ap,
		    const char *suffix, int keep_nl)
{
	char raw[4096];
	struct buf msg = BUF_INIT;

	/* A message longer than raw is cut at a character boundary we own;
	 * vsnprintf always terminates, so nothing overruns. What it quotes
	 * (a name, a file's line) may hold any byte: no escape sequence
	 * reaches the terminal, control characters are shown as \xNN. */
	vsnprintf(raw, sizeof(raw), fmt, ap);
	if (before)
		before(before_arg);
	if (where && *where && !*prefix && !msg_names(raw, where)) {
		str_escape(&msg, where, 0);
		buf_adds(&msg, ": ");
	}
	str_escape(&msg, raw, keep_nl);
	fprintf(stderr, "nook: %s%s%s%s\n", prefix, msg.p, suffix ? ": " : "",
		suffix ? suffix : "");
	if (!*prefix) {
		size_t n = msg.len < sizeof(last) ? msg.len : sizeof(last) - 1;

		memcpy(last, msg.p, n);
		last[n] = '\0';
		last_usage = 0;
		if (suffix && n + 2 < sizeof(last))
			snprintf(last + n, sizeof(last) - n, ": %s", suffix);
	}
	buf_free(&msg);
}

int usage_errorf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("", fmt, ap, NULL, 0);
	va_end(ap);
	last_usage = 1;
	return -1;
}

void error_set_usage(const char *msg)
{
	if (msg)
		snprintf(last, sizeof(last), "%s", msg);
	last_usage = 1;
}

int error_last_usage(void)
{
	return last_usage;
}

const char *error_last(void)
{
	return last;
}

int error_add_cause(const char *cause)
{
	size_t n = strlen(last), k = cause ? strlen(cause) : 0;

	if (k && n + k + 4 <= sizeof(last))
		snprintf(last + n, sizeof(last) - n, " (%s)", cause);
	return -1;
}

int errorf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("", fmt, ap, NULL, 1);
	va_end(ap);
	return -1;
}

int error_errno(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vreport("", fmt, ap, strerror(saved), 1);
	va_end(ap);
	errno = saved;
	return -1;
}

void warnf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("warning: ", fmt, ap, NULL, 1);
	va_end(ap);
}

static void oom(void)
{
	fputs("nook: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		oom();
	return q;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		oom();
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (!p)
		oom();
	return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	va_list cp;
	char *p;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		oom();
	p = xmalloc((size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	return p;
}

/* Error reporting and allocation that cannot fail. */
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

static void vreport(const char *prefix, const char *fmt, va_list ap,
		    const char *suffix)
{
	char msg[4096];
	size_t at = 0;

	if (where && *where && !*prefix) {
		snprintf(msg, sizeof(msg) / 2, "%s: ", where);
		at = strlen(msg);
	}
	/* A message longer than msg is cut at a character boundary we own;
	 * vsnprintf always terminates, so nothing overruns. */
	vsnprintf(msg + at, sizeof(msg) - at, fmt, ap);
	fprintf(stderr, "nook: %s%s%s%s\n", prefix, msg, suffix ? ": " : "",
		suffix ? suffix : "");
	if (!*prefix) {
		size_t n = strlen(msg);

		memcpy(last, msg, n + 1);
		if (suffix && n + 2 < sizeof(last))
			snprintf(last + n, sizeof(last) - n, ": %s", suffix);
	}
}

const char *error_last(void)
{
	return last;
}

int errorf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("", fmt, ap, NULL);
	va_end(ap);
	return -1;
}

int error_errno(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vreport("", fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
	return -1;
}

void warnf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("warning: ", fmt, ap, NULL);
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

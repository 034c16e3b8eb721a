/* Helpers shared by the unit tests: capturing stderr, temporary dirs. */
#ifndef NOOK_TESTUTIL_H
#define NOOK_TESTUTIL_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static int saved_stderr = -1;
static FILE *captured;

/* Send stderr to a temporary file until stderr_end(). */
static inline void stderr_begin(void)
{
	fflush(stderr);
	captured = tmpfile();
	saved_stderr = dup(2);
	dup2(fileno(captured), 2);
}

/* Restore stderr; returns what was written to it (the caller frees). */
static inline char *stderr_end(void)
{
	struct buf b = BUF_INIT;
	char chunk[1024];
	size_t n;

	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	rewind(captured);
	while ((n = fread(chunk, 1, sizeof(chunk), captured)) > 0)
		buf_add(&b, chunk, n);
	fclose(captured);
	buf_add(&b, "", 0);
	return b.p;
}

/* A new empty directory under $TMPDIR or /tmp (the caller frees). */
static inline char *make_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	char *dir = xasprintf("%s/nook-test.XXXXXX", t && *t ? t : "/tmp");

	if (!mkdtemp(dir))
		abort();
	return dir;
}

/* How many entries (besides . and ..) a directory holds. */
static inline int count_entries(const char *dir)
{
	struct buf out = BUF_INIT;
	const char *argv[] = { "ls", "-A", dir, NULL };
	int n = 0;

	run_capture(argv, &out);
	for (size_t i = 0; i < out.len; i++)
		n += out.p[i] == '\n';
	buf_free(&out);
	return n;
}

#endif

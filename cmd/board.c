/* A terminal board for a cluster's start: one line per node, redrawn in
 * place as the nodes' own processes report their phase. They write
 * "NAME\tTEXT\n" lines (shorter than PIPE_BUF, so never interleaved) to
 * the board's pipe; a process of the board's own reads them and draws,
 * until every writer has closed the pipe. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"

#define BOARD_ROWS 64

struct row {
	char name[40];
	char text[160];
};

/* Take one "NAME\tTEXT" line into rows; the number of rows. */
static int board_take(struct row *rows, int n, char *line)
{
	char *tab = strchr(line, '\t');
	int i;

	if (!tab)
		return n;
	*tab = '\0';
	for (i = 0; i < n && strcmp(rows[i].name, line); i++)
		;
	if (i == n && n == BOARD_ROWS)
		return n;
	snprintf(rows[i].name, sizeof(rows[i].name), "%s", line);
	snprintf(rows[i].text, sizeof(rows[i].text), "%s", tab + 1);
	return i == n ? n + 1 : n;
}

static void board_draw(const struct row *rows, int n, int *drawn)
{
	int w = 16;

	/* a node's name may be 32 characters: the column fits the longest */
	for (int i = 0; i < n; i++)
		if ((int)strlen(rows[i].name) > w)
			w = (int)strlen(rows[i].name);
	if (*drawn)
		fprintf(stderr, "\033[%dA", *drawn);
	for (int i = 0; i < n; i++)
		fprintf(stderr, TTY_WIPE "%-*s %s\n", w, rows[i].name,
			rows[i].text);
	fflush(stderr);
	*drawn = n;
}

static void board_run(int fd)
{
	struct row rows[BOARD_ROWS];
	struct buf in = BUF_INIT;
	char chunk[4096];
	int n = 0, drawn = 0;
	ssize_t got;

	for (;;) {
		char *nl;

		got = read(fd, chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		buf_add(&in, chunk, (size_t)got);
		while ((nl = memchr(in.p, '\n', in.len))) {
			size_t len = (size_t)(nl - in.p) + 1;

			*nl = '\0';
			n = board_take(rows, n, in.p);
			memmove(in.p, in.p + len, in.len - len);
			in.len -= len;
		}
		board_draw(rows, n, &drawn);
	}
	buf_free(&in);
}

int board_start(struct board *b)
{
	int p[2];

	b->fd = -1;
	b->pid = -1;
	if (pipe2(p, O_CLOEXEC) < 0)
		return error_errno("cannot make the progress board's pipe");
	fflush(NULL);
	b->pid = fork();
	if (b->pid < 0) {
		close(p[0]);
		close(p[1]);
		return error_errno("cannot start the progress board");
	}
	if (b->pid == 0) {
		/* ^C ends the nodes' processes, which may be saying a line:
		 * we stay until they are gone (our pipe's end), lest one die
		 * of SIGPIPE before putting its QEMU back */
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		close(p[1]);
		board_run(p[0]);
		_exit(0);
	}
	close(p[0]);
	b->fd = p[1];
	return 0;
}

void board_say(const struct board *b, const char *name, const char *text)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "%s\t%s\n", name, text);

	if (b->fd < 0 || n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	/* a board that went away is only a display lost */
	if (write_all(b->fd, line, (size_t)n) < 0)
		return;
}

void board_end(struct board *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	while (b->pid > 0 && waitpid(b->pid, NULL, 0) < 0 && errno == EINTR)
		;
	b->pid = -1;
}

/*
 * benchrun: time two commands side by side, alternating, process for
 * process, and print the medians and their ratio.
 *
 *   nook-benchrun N NAME-A NAME-B --- A ARGS... --- B ARGS...
 *
 * ("---" separates the commands, so theirs may contain "--".)
 *
 * Each run is a posix_spawn and a waitpid timed with CLOCK_MONOTONIC;
 * stdout and stderr go to /dev/null. Alternating A and B exposes both to
 * the same background load. Exits 1 if any run fails.
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double run_once(char **argv, int devnull)
{
	posix_spawn_file_actions_t fa;
	struct timespec t0, t1;
	pid_t pid;
	int status;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, devnull, 1);
	posix_spawn_file_actions_adddup2(&fa, devnull, 2);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
		fprintf(stderr, "benchrun: cannot run %s\n", argv[0]);
		exit(1);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "benchrun: %s failed\n", argv[0]);
		exit(1);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	posix_spawn_file_actions_destroy(&fa);
	return (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	char **a, **b;
	double *ta, *tb, ma, mb, sa = 0, sb = 0;
	int n, i, devnull;

	if (argc < 8 || strcmp(argv[4], "---") != 0) {
		fprintf(stderr, "usage: nook-benchrun N NAME-A NAME-B --- A... --- B...\n");
		return 2;
	}
	n = (int)strtol(argv[1], NULL, 10);
	a = argv + 5;
	for (b = a; *b && strcmp(*b, "---") != 0; b++)
		;
	if (!*b || n < 1) {
		fprintf(stderr, "benchrun: need N >= 1 and two commands\n");
		return 2;
	}
	*b++ = NULL;
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	ta = calloc((size_t)n, sizeof(*ta));
	tb = calloc((size_t)n, sizeof(*tb));
	if (devnull < 0 || !ta || !tb)
		return 1;
	for (i = 0; i < n; i++) {
		ta[i] = run_once(a, devnull);
		tb[i] = run_once(b, devnull);
		sa += ta[i];
		sb += tb[i];
	}
	ma = median(ta, n);
	mb = median(tb, n);
	printf("%-14s %4d runs  median %8.2f ms  mean %8.2f ms\n", argv[2], n,
	       ma, sa / n);
	printf("%-14s %4d runs  median %8.2f ms  mean %8.2f ms\n", argv[3], n,
	       mb, sb / n);
	printf("ratio %s/%s: %.2fx faster (median), %.2fx (mean)\n", argv[3],
	       argv[2], mb / ma, sb / sa);
	printf("time ratio %s/%s (median): %.3f\n", argv[2], argv[3], ma / mb);
	free(ta);
	free(tb);
	close(devnull);
	return 0;
}

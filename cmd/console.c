/* nook console: the VM's serial port, attached to this terminal. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "vm.h"

static const char usage[] =
	"usage: nook console [NAME]\n"
	"\n"
	"Attaches to VM NAME's serial console. On a terminal: raw mode, and\n"
	"Ctrl-] detaches. Without one: stdin goes to the console and the\n"
	"console to stdout, until stdin ends and the console has been quiet\n"
	"for a second. Refused while another client holds the console. A\n"
	"cluster's NAME means its first node. NAME defaults to nook.yaml's\n"
	"name (found upward from here), else default.\n";

#define DETACH 0x1d /* Ctrl-] */

static struct termios saved;
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static int serial_connect(const char *path)
{
	int fd = unix_connect(path, 0);

	if (fd < 0)
		return error_errno("cannot connect to the console %s", path);
	return fd;
}

/* pump()'s end when QEMU closed the console (the VM ended). */
#define PUMP_CLOSED 1

/* Copy between fd and the terminal or pipes until detach or EOF: 0,
 * PUMP_CLOSED, or -1 said. The ending signals are blocked (attach()) but
 * inside ppoll(), which waits with the mask was: one that comes just
 * after the check of stop_signal still ends the wait at once, not at the
 * next byte or never. */
static int pump(int sock, int tty, const sigset_t *was)
{
	static const struct timespec quiet = { 1, 0 };
	char b[4096];
	int in_open = 1, waited = 0;

	while (!stop_signal) {
		/* stdin at its end is left out: a pipe's says POLLHUP for
		 * ever, asked or not, and the loop would spin on it */
		struct pollfd p[2] = { { sock, POLLIN, 0 },
				       { in_open ? STDIN_FILENO : -1, POLLIN,
					 0 } };
		int n = ppoll(p, 2, in_open || tty ? NULL : &quiet, was);
		ssize_t r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return error_errno("cannot wait on the console");
		if (n == 0) /* stdin done and the console quiet: finished */
			return 0;
		if (p[0].revents & (POLLIN | POLLHUP)) {
			r = read(sock, b, sizeof(b));
			if (r <= 0)
				return PUMP_CLOSED; /* QEMU went away */
			if (write_all(STDOUT_FILENO, b, (size_t)r) < 0) {
				/* stdout's reader gone: the SIGPIPE, held
				 * pending, ends us once the terminal is
				 * given back */
				if (errno == EPIPE &&
				    !sigismember(was, SIGPIPE))
					return 0;
				return error_errno("cannot write the console "
						   "to standard output");
			}
			if (!in_open) {
				waited++;
				if (waited > 10000)
					return 0;
			}
		}
		if (p[1].revents & (POLLIN | POLLHUP)) {
			char *detach;

			r = read(STDIN_FILENO, b, sizeof(b));
			if (r <= 0) {
				in_open = 0;
				continue;
			}
			/* what was typed before Ctrl-] goes first (a paste,
			 * "poweroff\r^]") */
			detach = tty ? memchr(b, DETACH, (size_t)r) : NULL;
			if (write_all(sock, b, detach ? (size_t)(detach - b) :
				      (size_t)r) < 0)
				return error_errno("console write");
			if (detach)
				return 0;
		}
	}
	return 0;
}

/* Copy between the terminal (raw, when it is one) and the console until
 * a detach, EOF or a signal; the terminal is always given back. */
static int attach(int sock, int tty, const char *name)
{
	/* each one that would end us, caught: a raw terminal must be given
	 * back first (a kill -INT, or stdout's reader gone: SIGPIPE) */
	static const int sigs[] = { SIGTERM, SIGHUP, SIGINT, SIGQUIT,
				    SIGPIPE };
	struct sigaction sa;
	struct termios raw;
	sigset_t ending, was;
	int rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&ending);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		sigaction(sigs[i], &sa, NULL);
		sigaddset(&ending, sigs[i]);
	}
	/* held but inside ppoll(): none comes between its check and the
	 * wait (see pump()) */
	sigprocmask(SIG_BLOCK, &ending, &was);
	if (tty) {
		if (tcgetattr(STDIN_FILENO, &saved) < 0) {
			error_errno("tcgetattr");
			sigprocmask(SIG_SETMASK, &was, NULL);
			return 1;
		}
		fprintf(stderr, "nook: attached to %s's console; Ctrl-] "
			"detaches\r\n", name);
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	rc = pump(sock, tty, &was);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
		if (rc == PUMP_CLOSED)
			fprintf(stderr, "\nnook: %s's console closed: its QEMU "
				"ended\n", name);
		else
			fprintf(stderr, "\nnook: detached from %s's "
				"console\n", name);
	}
	rc = rc < 0 ? 1 : 0;
	/* the terminal given back: one held pending (a SIGPIPE of the last
	 * write) now reaches on_signal() */
	sigprocmask(SIG_SETMASK, &was, NULL);
	if (stop_signal) {
		/* the terminal given back: end of the signal, as whoever
		 * sent it expects (143 for SIGTERM), not 0 */
		signal(stop_signal, SIG_DFL);
		raise(stop_signal);
	}
	return rc;
}

/* [NAME] and --help; 0, EXIT_USAGE, or -1 for --help (shown). */
static int parse(struct nook_ctx *ctx, int argc, char **argv,
		 const char **name)
{
	int rc = parse_help_only(argc, argv, usage, 1);

	if (rc == 0)
		*name = optind < argc ? argv[optind] : ctx_default_name(ctx);
	return rc == 0 && !*name ? ctx_project_exit(ctx) : rc;
}

int cmd_console(struct nook_ctx *ctx, int argc, char **argv)
{
	const struct nook_dirs *d;
	struct vm *vm = NULL;
	struct vm_info info;
	const char *arg = NULL;
	char *name = NULL, *lock = NULL;
	int tty = isatty(STDIN_FILENO), sock = -1, lfd = -1;
	int rc = parse(ctx, argc, argv, &arg);

	if (rc)
		return rc < 0 ? 0 : rc;
	rc = 1;
	d = ctx_dirs(ctx);
	if (d)
		name = shell_resolve(d, arg);
	if (!name || vm_open(d, name, 1, &vm) < 0)
		goto out;
	vm_get_info(vm, &info);
	if (!info.pid) {
		errorf("VM %s is not running; start it with 'nook local start "
		       "%s'", name, name);
		goto out;
	}
	/* QEMU serves one console client at a time and leaves a second one
	 * hanging: a lock beside the socket turns that into a message */
	lock = xasprintf("%s/console.lock", vm_run_dir(vm));
	lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0 || flock(lfd, LOCK_EX | LOCK_NB) < 0) {
		errorf("the console of %s is in use by another nook console",
		       name);
		goto out;
	}
	/* ... and a client not ours (socat, an old nook) the same */
	if (vm_console_taken(vm)) {
		errorf("the console of %s is in use by another program; end "
		       "it and try again", name);
		goto out;
	}
	sock = serial_connect(vm_serial_socket(vm));
	if (sock >= 0)
		rc = attach(sock, tty, name);
out:
	if (sock >= 0)
		close(sock);
	if (lfd >= 0)
		close(lfd);
	free(lock);
	free(name);
	vm_close(vm);
	return rc;
}

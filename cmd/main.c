/*
 * nook: a local cluster of cloud VMs in one command.
 * The entry point: one table of commands, help generated from it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "common.h"
#include "net.h"

static int cmd_help(struct nook_ctx *ctx, int argc, char **argv);

static const char usage_help[] =
	"usage: nook help [COMMAND [SUBCOMMAND]]\n"
	"\n"
	"Lists nook's commands, or shows the usage and options of one (or of\n"
	"its subcommand: nook help local start).\n";

static const struct command {
	const char *name;
	int (*fn)(struct nook_ctx *ctx, int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "cidata", cmd_cidata, "build or inspect a NoCloud cidata ISO" },
	{ "console", cmd_console, "attach to a VM's serial console" },
	{ "doctor", cmd_doctor, "check this host: programs, versions, KVM or TCG" },
	{ "export", cmd_export, "export a VM or a cluster to libvirt" },
	{ "help", cmd_help, "list the commands, or show one command's help" },
	{ "images", cmd_images, "build, pull, import, export, list, rm images" },
	{ "init", cmd_init, "write a starter nook.yaml in this directory" },
	{ "local", cmd_local, "start, stop, list, delete VMs on this host" },
	{ "port", cmd_port, "add, remove, list forwards, even while a VM runs" },
	{ "shell", cmd_shell, "a shell or a command in a VM, over ssh" },
	{ "ssh-config", cmd_ssh_config, "an OpenSSH config stanza for a VM" },
	{ "sync", cmd_sync, "rsync a project's files into a VM" },
	{ "version", cmd_version, "print nook's version" },
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void list_commands(FILE *f)
{
	fputs("usage: nook COMMAND [ARGS...]\n\ncommands:\n", f);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
	fputs("\n'nook help COMMAND' or 'nook COMMAND --help' shows a "
	      "command's options.\n", f);
}

/* Say that word is no nook command (escaped, as every error is), as a
 * usage error that --json gets too; with list, the commands after it. */
static int not_a_command(const char *word, int list)
{
	usage_errorf("'%s' is not a nook command; see 'nook help'", word);
	if (list)
		list_commands(stderr);
	return EXIT_USAGE;
}

static int cmd_help(struct nook_ctx *ctx, int argc, char **argv)
{
	const struct command *c;
	char help[] = "--help";
	char *sub[4] = { NULL, NULL, NULL, NULL };

	if (argc < 2) {
		list_commands(stdout);
		return 0;
	}
	/* a command and at most its subcommand: help local start */
	if (argc > 3)
		return usage_error(usage_help, "help takes a command and its "
				   "subcommand at most");
	c = find_command(argv[1]);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    (c && c->fn == cmd_help))
		return show_usage(usage_help);
	if (!c)
		return not_a_command(argv[1], 1);
	sub[0] = argv[1];
	sub[1] = argc > 2 ? argv[2] : help;
	sub[2] = argc > 2 ? help : NULL;
	return c->fn(ctx, argc, sub);
}

int cmd_version(struct nook_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	/* --help among other words shows the help, as getopt's commands
	 * do (nook help version extra) */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return show_usage("usage: nook version\n\n"
					  "Prints nook's version.\n");
	if (argc > 1)
		return usage_error("usage: nook version\n",
				   "version takes no arguments");
	printf("nook %s\n", NOOK_VERSION);
	return 0;
}

const struct nook_dirs *ctx_dirs(struct nook_ctx *ctx)
{
	if (!ctx->have_dirs && nook_dirs_from_environ(&ctx->dirs) < 0)
		return NULL;
	ctx->have_dirs = 1;
	return &ctx->dirs;
}

/*
 * Whether a command's words ask for --json: a word that spells it before
 * any "--" (after which they are a guest command's), unless getopt took
 * it as an option's value (sync --exclude --json). Words getopt never
 * reached (a parse that stopped at a bad option, a command not found)
 * are taken as typed.
 */
static int asks_json(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (cmd_option_value(argv[i]))
			continue;
		if (!strcmp(argv[i], "--"))
			break;
		/* getopt takes any unambiguous start of it (--js), and
		 * --json=V is a usage error of one who wants JSON */
		if ((strlen(argv[i]) > 2 &&
		     !strncmp("--json", argv[i], strlen(argv[i]))) ||
		    !strncmp(argv[i], "--json=", 7))
			return 1;
	}
	return 0;
}

/*
 * fds 0-2 that nook was started without (nook >&-) opened on /dev/null:
 * else the first file or socket opened takes one, and what is printed
 * goes into it (a lock file, a VM's disk, a socket). Not close-on-exec:
 * they are the children's too. -1 having said why.
 */
static int std_fds_open(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		int got;

		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		/* the lowest free fd: this one, those below being open */
		got = open("/dev/null", fd ? O_WRONLY : O_RDONLY);
		if (got == fd)
			continue;
		if (got >= 0)
			close(got);
		return error_errno("cannot open /dev/null for fd %d", fd);
	}
	return 0;
}

/* stream_waits()' write: cookie is the fd. fopencookie() wants the count
 * written, 0 on a failure (errno set). */
static ssize_t fd_write(void *cookie, const char *p, size_t n)
{
	int fd = (int)(intptr_t)cookie;

	return write_all(fd, p, n) < 0 ? 0 : (ssize_t)n;
}

/*
 * *stream (stdout or stderr) written through write_all() when a parent
 * made its fd non-blocking (a pipe it shares with us: the flag is its
 * own, not ours to clear). stdio takes EAGAIN for a failure and drops
 * what it held ("writing output"); write_all() waits until the reader
 * takes more. Buffered as stdio would: stderr not at all, stdout by line
 * on a terminal.
 */
static void stream_waits(FILE **stream, int fd)
{
	cookie_io_functions_t io = { .write = fd_write };
	int fl = fcntl(fd, F_GETFL);
	FILE *f;

	if (fl < 0 || !(fl & O_NONBLOCK))
		return;
	f = fopencookie((void *)(intptr_t)fd, "w", io);
	if (!f)
		return; /* stdio's own, as without this */
	if (fd == STDERR_FILENO)
		setvbuf(f, NULL, _IONBF, 0);
	else if (isatty(fd))
		setvbuf(f, NULL, _IOLBF, BUFSIZ);
	/* (fileno() of the new stream is -1: nook asks isatty() and
	 * the like of STDOUT_FILENO and STDERR_FILENO, never fileno()) */
	*stream = f;
}

int main(int argc, char **argv)
{
	struct nook_ctx ctx = { 0 };
	const struct command *c;
	int ret;

	if (std_fds_open() < 0)
		return 1;
	stream_waits(&stdout, STDOUT_FILENO);
	stream_waits(&stderr, STDERR_FILENO);
	if (argc < 2) {
		list_commands(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		list_commands(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version"))
		return cmd_version(&ctx, 1, argv);
	/* not a command: the cluster's switch, which net_switch_start() runs */
	if (argc == 3 && !strcmp(argv[1], NET_SWITCH_ARGV1))
		return net_switch_main(argv[2]);
	c = find_command(argv[1]);
	if (c) {
		getopt_reset();
		ret = c->fn(&ctx, argc - 1, argv + 1);
	} else {
		ret = not_a_command(argv[1], 0);
	}
	/* a failure that ends in a usage error (an invalid VM name, found
	 * wherever the name was first used) is one */
	if (ret == 1 && error_last_usage())
		ret = EXIT_USAGE;
	/* a script that asked for JSON gets it for any failure the command
	 * printed none for (a usage error, a bad project file), the usage
	 * and the messages on stderr as ever */
	if ((ret == 1 || ret == EXIT_USAGE) && !printed_json() &&
	    asks_json(argc, argv)) {
		if (ret == EXIT_USAGE)
			error_set_usage(NULL);
		print_json_error();
	}
	ctx_free(&ctx);
	/* a write that failed before (a command's own fflush(), its errno
	 * gone by now) leaves the stream's error flag: no success either */
	errno = 0;
	if ((fflush(stdout) != 0 || ferror(stdout)) && ret == 0) {
		if (errno)
			perror("nook: writing output");
		else
			errorf("writing output: a write to stdout failed "
			       "(a full disk, a closed stdout?)");
		ret = 1;
	}
	return ret;
}

/* nook shell and nook ssh-config: the way into a VM over ssh. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "vm.h"

static const char usage_shell[] =
	"usage: nook shell [NAME] [--user USER] [--workdir DIR] [-- COMMAND ARGS...]\n"
	"\n"
	"Without a command: a login shell in VM NAME (default: default), with\n"
	"a terminal when stdin is one. With one: runs it with its arguments\n"
	"exactly as given, passes stdin through, and exits with its status.\n"
	"Connections share one ssh master, so later ones are quick.\n"
	"\n"
	"  --user USER     log in as USER (default: the image's user)\n"
	"  --workdir DIR   run in DIR\n";

int cmd_shell(struct nook_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ "workdir", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *user = NULL, *workdir = NULL, *name = "default";
	struct strvec av = STRVEC_INIT;
	const struct nook_dirs *d;
	struct ssh_target t;
	struct vm *vm = NULL;
	char **cmd = NULL;
	int c, rc = 1;

	getopt_reset();
	/* '+': stop at the first non-option, so COMMAND's own options are
	 * never taken for ours; NAME may come before or after our options */
	for (int have_name = 0;;) {
		while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
			switch (c) {
			case 'u': user = optarg; break;
			case 'w': workdir = optarg; break;
			case 'h': return show_usage(usage_shell);
			default: return bad_option(usage_shell, argv, c);
			}
		}
		/* getopt has eaten the "--" that starts COMMAND */
		if (optind >= argc || !strcmp(argv[optind - 1], "--"))
			break;
		if (have_name || !strcmp(argv[optind], "--"))
			return usage_error(usage_shell, "put the command after "
					   "'--' (got '%s')", argv[optind]);
		name = argv[optind++];
		have_name = 1;
	}
	if (optind < argc)
		cmd = argv + optind;
	d = ctx_dirs(ctx);
	if (!d || vm_open(d, name, 1, &vm) < 0 || vm_ssh(vm, user, 1, &t) < 0)
		goto out;
	/* --workdir makes even a login shell a remote command, for which
	 * ssh gives no terminal unless forced */
	ssh_argv(&t, cmd ? -1 : isatty(STDIN_FILENO) ? 1 : 0, workdir,
		 (const char *const *)cmd, &av);
	fflush(NULL);
	/* ssh becomes us: the terminal, signals and the exit status are
	 * the remote command's, with nothing in between */
	execvp(av.v[0], av.v);
	error_errno("cannot run ssh");
out:
	strvec_clear(&av);
	vm_close(vm);
	return rc;
}

static const char usage_ssh_config[] =
	"usage: nook ssh-config [NAME]\n"
	"\n"
	"Prints an OpenSSH config stanza for VM NAME (host alias nook-NAME):\n"
	"append it to ~/.ssh/config, or pass it with 'ssh -F', and plain ssh,\n"
	"scp, rsync and editors reach the VM with its pinned host key.\n";

int cmd_ssh_config(struct nook_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const struct nook_dirs *d;
	struct buf stanza = BUF_INIT;
	struct ssh_target t;
	struct vm *vm = NULL;
	int c, rc = 1;

	getopt_reset();
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h')
			return show_usage(usage_ssh_config);
		return bad_option(usage_ssh_config, argv, c);
	}
	if (argc - optind > 1)
		return usage_error(usage_ssh_config, "unexpected argument '%s'",
				   argv[optind + 1]);
	d = ctx_dirs(ctx);
	/* the stanza is useful for a stopped VM too: it says where it
	 * will be once started on the same port */
	if (!d || vm_open(d, optind < argc ? argv[optind] : "default", 1,
			  &vm) < 0 || vm_ssh(vm, NULL, 0, &t) < 0 ||
	    ssh_config_stanza(&t, &stanza) < 0)
		goto out;
	fputs(stanza.p, stdout);
	rc = fflush(stdout) ? 1 : 0;
out:
	buf_free(&stanza);
	vm_close(vm);
	return rc;
}

/* nook shell and nook ssh-config: the way into a VM over ssh. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "vmcmd.h"

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
	(void)ctx;
	static const struct option longopts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ "workdir", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *user = NULL, *workdir = NULL, *name = "default";
	struct strvec av = STRVEC_INIT;
	struct vmcmd v;
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
	if (vmcmd_open(&v, name, 1) < 0 || vmcmd_ssh(&v, user) < 0)
		goto out;
	ssh_argv(&v.ssh, cmd ? -1 : 0, workdir, (const char *const *)cmd, &av);
	fflush(NULL);
	/* ssh becomes us: the terminal, signals and the exit status are
	 * the remote command's, with nothing in between */
	execvp(av.v[0], av.v);
	error_errno("cannot run ssh");
out:
	strvec_clear(&av);
	vmcmd_close(&v);
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
	(void)ctx;
	struct strvec opts = STRVEC_INIT;
	struct vmcmd v;
	const char *name = "default";
	int rc = 1;

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return show_usage(usage_ssh_config);
	if (argc > 2)
		return usage_error(usage_ssh_config, "unexpected argument '%s'",
				   argv[2]);
	if (argc == 2 && argv[1][0] == '-')
		return usage_error(usage_ssh_config, "unknown option '%s'",
				   argv[1]);
	if (argc == 2)
		name = argv[1];
	if (vmcmd_open(&v, name, 1) < 0)
		goto out;
	/* the stanza is useful for a stopped VM too: it says where it
	 * will be once started on the same port */
	v.ssh.user = v.spec.image.user;
	v.ssh.host = "127.0.0.1";
	v.ssh.port = v.spec.ssh_port;
	v.ssh.identity = v.paths.key;
	v.ssh.known_hosts = v.paths.known_hosts;
	v.ssh.alias = v.alias;
	v.ssh.control = v.paths.control;
	v.ssh.persist = 600;
	ssh_options(&v.ssh, &opts);
	printf("Host %s\n  HostName 127.0.0.1\n", v.alias);
	for (size_t i = 0; i < opts.n; i++) {
		char *eq = strchr(opts.v[i], '=');

		if (!strncmp(opts.v[i], "BatchMode", 9) ||
		    !strncmp(opts.v[i], "LogLevel", 8))
			continue;
		printf("  %.*s %s\n", (int)(eq - opts.v[i]), opts.v[i], eq + 1);
	}
	rc = fflush(stdout) ? 1 : 0;
out:
	strvec_clear(&opts);
	vmcmd_close(&v);
	return rc;
}

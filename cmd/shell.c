/* nook shell and nook ssh-config: the way into a VM over ssh. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"
#include "vm.h"

/* shell_stopped_now()'s words for ssh cut off by its VM's end */
#define SHELL_CUT "it stopped while ssh was connected"

static const char usage_shell[] =
	"usage: nook shell [NAME] [--user USER] [--workdir DIR] [-- COMMAND ARGS...]\n"
	"       nook shell --all [NAME] [--json] [--user U] [--workdir DIR]\n"
	"                  -- COMMAND...\n"
	"\n"
	"Without a command: a login shell in VM NAME (default: nook.yaml's\n"
	"name, else default), with a terminal when stdin is one. With one:\n"
	"runs it with its arguments exactly as given (one word holding a blank\n"
	"is a shell line, which the guest's shell runs, as ssh does: 'cd /srv\n"
	"&& make'), passes stdin through, and exits with its status (on a\n"
	"terminal when stdin and stdout are one, as ssh -t). A signal that\n"
	"ends nook shell or its ssh hangs the command up in the guest.\n"
	"Connections share one ssh master, so later ones are quick. A\n"
	"cluster's NAME means its first node.\n"
	"\n"
	"  --user USER     log in as USER (default: the image's user)\n"
	"  --workdir DIR   run in DIR (~ and ~/X: the home's)\n"
	"  --all           run COMMAND on every node of cluster NAME at once (a\n"
	"                  plain VM: on it alone), each output line prefixed\n"
	"                  with the node's name, stdin empty; exits with the\n"
	"                  highest status (a node not running, or whose\n"
	"                  record cannot be read, is named and counts as 1)\n"
	"  --json          with --all: once every node's command has\n"
	"                  ended, a JSON array on stdout, an object per\n"
	"                  node in order: name, exit (null, and signal\n"
	"                  such as \"TERM\", when a signal ended its ssh),\n"
	"                  stdout and stderr (strings: a byte sequence\n"
	"                  that is not UTF-8 becomes U+FFFD; past 16 MiB\n"
	"                  the rest is dropped, stdout_truncated or\n"
	"                  stderr_truncated true); for a node not run,\n"
	"                  name and error. A plain VM not run: one\n"
	"                  object, {\"name\", \"error\"}; a failure before\n"
	"                  any node runs: {\"error\"}. A signal that ends\n"
	"                  nook shell prints no JSON\n";

struct shell_opts {
	const char *user, *workdir, *name;
	char **cmd;               /* NULL: a login shell */
	int all, json;
};

/* The options into o; 0, EXIT_USAGE, or -1 for --help (shown). */
static int shell_parse(int argc, char **argv, struct shell_opts *o)
{
	static const struct option longopts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ "workdir", required_argument, NULL, 'w' },
		{ "all", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *value = NULL; /* the last option's value */
	int c;

	getopt_reset();
	/* '+': stop at the first non-option, so COMMAND's own options are
	 * never taken for ours; NAME may come before or after our options */
	for (int have_name = 0;;) {
		while ((c = cmd_getopt_long(argc, argv, "+:h", longopts,
					    NULL)) != -1) {
			switch (c) {
			case 'u': o->user = value = optarg; break;
			case 'w': o->workdir = value = optarg; break;
			case 'a': o->all = 1; break;
			case 'j': o->json = 1; break;
			case 'h': return show_usage(usage_shell) - 1;
			default: return bad_option(usage_shell, argv, c);
			}
		}
		/* getopt has eaten the "--" that starts COMMAND (not one
		 * that was an option's value: --workdir --) */
		if (optind >= argc || (!strcmp(argv[optind - 1], "--") &&
				       argv[optind - 1] != value))
			break;
		if (have_name || !strcmp(argv[optind], "--"))
			return usage_error(usage_shell, "put the command after "
					   "'--' (got '%s')", argv[optind]);
		o->name = argv[optind++];
		have_name = 1;
	}
	if (optind < argc)
		o->cmd = argv + optind;
	if (o->workdir && !*o->workdir)
		return usage_error(usage_shell, "--workdir needs a directory "
				   "(the home is where a shell starts)");
	if (o->all && !o->cmd)
		return usage_error(usage_shell, "--all runs a command: put it "
				   "after '--'");
	/* one VM's command: its output is its own, its status the result */
	if (o->json && !o->all)
		return usage_error(usage_shell, "--json goes with --all (one "
				   "VM's command prints its own output)");
	return 0;
}

char *shell_resolve(const struct nook_dirs *d, const char *name)
{
	char *vm_name = NULL;
	int is_cluster = 0;

	if (vm_resolve_name(d, name, &vm_name, &is_cluster) < 0)
		return NULL;
	if (is_cluster)
		fprintf(stderr, "nook: %s is a cluster: using its first node "
			"%s\n", name, vm_name);
	return vm_name;
}

int shell_nodes(const struct nook_dirs *d, const char *name,
		struct strvec *out, struct strvec *why)
{
	if (vm_name_check(name) < 0)
		return -1;
	if (!vm_cluster_exists(d, name)) {
		strvec_push(out, name);
		if (why)
			strvec_push(why, "");
		return 0;
	}
	return vm_cluster_nodes_why(d, name, out, why);
}

/* A wait for a booting VM's sshd, on stderr: a clock on a terminal,
 * cleared when the wait ends (before anything else is said), else one
 * line. */
struct await_line {
	const char *name;
	int tty, shown;
};

static void await_tick(void *arg, int waited_s)
{
	struct await_line *l = arg;

	if (waited_s < 0) {
		if (l->tty && l->shown)
			fputs(TTY_WIPE, stderr);
		return;
	}
	if (l->tty)
		fprintf(stderr, TTY_WIPE "VM %s is booting: waiting for its "
			"sshd (%d s)", l->name, waited_s);
	else if (!l->shown)
		fprintf(stderr, "VM %s is booting: waiting for its sshd\n",
			l->name);
	l->shown = 1;
}

char *shell_stopped_now(struct vm *vm, int labelled, const char *what)
{
	struct vm_info i;

	vm_get_info(vm, &i);
	if (i.pid)
		return NULL;
	return xasprintf("%s%s is %s now: %s", labelled ? "the VM" : "VM ",
			 labelled ? "" : i.name, vm_state_name(i.state), what);
}

int shell_reach(struct vm *vm, const char *user, struct ssh_target *t)
{
	struct await_line l = { vm_name(vm), isatty(STDERR_FILENO), 0 };

	if (vm_ssh(vm, user, 1, t) < 0 ||
	    vm_ssh_await(vm, t, SHELL_AWAIT_S, await_tick, &l) < 0)
		return -1;
	/* another user than the login user: one the guest lacks would
	 * get only ssh's "Permission denied" */
	return user ? vm_ssh_user_check(vm, user) : 0;
}

/* ssh_argv()'s tty for a login shell or a command: a terminal when stdin
 * is one (for a command, stdout too). */
static int shell_tty(int cmd)
{
	if (!isatty(STDIN_FILENO))
		return cmd ? -1 : 0;
	return !cmd || isatty(STDOUT_FILENO) ? 1 : -1;
}

/* ssh_target's tag: 32 hex digits and a NUL. */
#define TAG_SIZE 33

/* A fresh tag for ssh_target's tag. -1 having said why. */
static int make_tag(char tag[TAG_SIZE])
{
	unsigned char r[(TAG_SIZE - 1) / 2];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return error_errno("cannot tag the command for the guest: "
				   "getrandom");
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(tag + 2 * i, 3, "%02x", r[i]);
	return 0;
}

/* Send SIGHUP to t's tagged command in the guest (ssh_hangup_argv()).
 * When that fails, say so, naming the VM, unless quiet. */
static void hang_up(const struct ssh_target *t, const char *name, int quiet)
{
	struct strvec av = STRVEC_INIT;
	struct buf out = BUF_INIT;

	ssh_hangup_argv(t, &av);
	if (run_capture_timeout((const char *const *)av.v, &out, 10000) != 0 &&
	    !quiet)
		fprintf(stderr, "nook: could not hang up the command in %s: it "
			"may still run there\n", name);
	strvec_clear(&av);
	buf_free(&out);
}

/* Whether a job's ssh status st (128 + N when signal N ended it) may
 * have left its command running in the guest. That is when ssh died of
 * a signal, or exited 255: what ssh does when SIGINT, SIGTERM or SIGHUP
 * ends it, and when its connection fails. */
static int cut_off(int st)
{
	return st == 255 || st > 128;
}

/* The signal that shell_piped() caught, or 0. */
static volatile sig_atomic_t caught;

static void on_caught(int sig)
{
	caught = sig;
}

/* Catch SIGINT, SIGTERM and SIGHUP in on_caught(), and put them in *set
 * with SIGCHLD. One ignored when we started (nohup, ^C in a background
 * job) stays ignored. SIGCHLD must not be ignored, or ssh's status is
 * lost. */
static void catch_signals(sigset_t *set)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa = { .sa_handler = on_caught }, was;

	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		if (sigaction(sigs[i], NULL, &was) == 0 &&
		    was.sa_handler == SIG_IGN)
			continue;
		sigaction(sigs[i], &sa, NULL);
		sigaddset(set, sigs[i]);
	}
	signal(SIGCHLD, SIG_DFL);
}

/*
 * Wait for ssh, c, passing a signal we caught on to it once. Returns
 * its status as a shell says it (1 when it cannot be told), *killed 1
 * when a signal ended it. The signals in set are held meanwhile, so
 * each waits for sigwaitinfo(): none is lost between a look at ssh and
 * the wait.
 */
static int wait_ssh(const struct child *c, const sigset_t *set,
		    int *killed)
{
	sigset_t old;
	int st = 1, forwarded = 0;

	*killed = 0;
	sigprocmask(SIG_BLOCK, set, &old);
	for (;;) {
		int ws, got;
		pid_t r = waitpid(c->pid, &ws, WNOHANG);

		if (r == c->pid) {
			*killed = WIFSIGNALED(ws);
			st = WIFEXITED(ws) ? WEXITSTATUS(ws) :
			     *killed ? 128 + WTERMSIG(ws) : 1;
			break;
		}
		if (r < 0 && errno != EINTR) {
			error_errno("waiting for ssh");
			break;
		}
		/* ^C at a terminal reached ssh too; a kill of us alone
		 * is passed on */
		if (caught && !forwarded++)
			kill(c->pid, caught);
		got = sigwaitinfo(set, NULL);
		if (got > 0 && got != SIGCHLD)
			caught = got;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	return st;
}

/*
 * Run o->cmd without a terminal. sshd hangs up a session only when it
 * has a terminal, so a command fed by a pipe would go on in the guest
 * after a signal ended us or ssh. So ssh runs as our child, the command
 * tagged. When a signal ends either of us, the tagged processes get the
 * hang-up a terminal would have sent, and we die of our signal.
 * Otherwise ssh's exit status is ours.
 */
static int shell_piped(struct ssh_target *t, const char *name,
		       const struct shell_opts *o)
{
	struct strvec av = STRVEC_INIT;
	struct child c = CHILD_INIT;
	sigset_t set;
	char tag[TAG_SIZE];
	int st, killed;

	if (make_tag(tag) < 0)
		return 1;
	t->tag = tag;
	ssh_argv(t, -1, o->workdir, (const char *const *)o->cmd, &av);
	catch_signals(&set);
	fflush(NULL);
	c.argv = (const char *const *)av.v;
	if (child_start(&c) < 0) {
		strvec_clear(&av);
		return 1;
	}
	st = wait_ssh(&c, &set, &killed);
	strvec_clear(&av);
	if (caught || killed || st == 255)
		hang_up(t, name, !caught && !killed);
	if (caught) {
		signal(caught, SIG_DFL);
		raise(caught);
		return 128 + caught;
	}
	return st;
}

/* A login shell or o->cmd in one VM. ssh replaces us, or for a command
 * without a terminal runs as our child. Returns only on failure, 1. */
static int shell_one(const struct nook_dirs *d, const struct shell_opts *o)
{
	struct strvec av = STRVEC_INIT;
	struct ssh_target t;
	struct vm *vm = NULL;
	char *name = shell_resolve(d, o->name), *stopped;
	int tty = shell_tty(o->cmd != NULL), rc = 1;

	if (!name || vm_open(d, name, 1, &vm) < 0 ||
	    shell_reach(vm, o->user, &t) < 0)
		goto out;
	if (o->cmd && tty < 0) {
		rc = shell_piped(&t, name, o);
		stopped = rc == 255 ? shell_stopped_now(vm, 0, SHELL_CUT) :
				      NULL;
		if (stopped)
			errorf("%s", stopped);
		free(stopped);
		goto out;
	}
	/* With stdin a terminal, ssh is told to make one. --workdir makes
	 * even a login shell a remote command, which gets no terminal
	 * unless forced. A command typed at a terminal gets one too, as
	 * with ssh -t: its hang-up ends the command when this side is
	 * killed. Without a terminal, piped bytes pass through untouched. */
	ssh_argv(&t, tty, o->workdir, (const char *const *)o->cmd, &av);
	fflush(NULL);
	/* ssh becomes us: the terminal, signals and the exit status are
	 * the remote command's, with nothing in between */
	execvp(av.v[0], av.v);
	error_errno("cannot run ssh");
out:
	free(name);
	strvec_clear(&av);
	vm_close(vm);
	return rc;
}

/* Into av, the ssh argv that runs o->cmd, tagged tag, on VM name,
 * without a terminal. -1 having said why (no such VM, not running). */
static int node_argv(const struct nook_dirs *d, const char *name,
		     const struct shell_opts *o, const char *tag,
		     struct strvec *av)
{
	struct ssh_target t;
	struct vm *vm = NULL;
	int ret = -1;

	if (vm_open(d, name, 1, &vm) == 0 &&
	    shell_reach(vm, o->user, &t) == 0) {
		t.tag = tag;
		ssh_argv(&t, -1, o->workdir, (const char *const *)o->cmd, av);
		ret = 0;
	}
	vm_close(vm);
	return ret;
}

/*
 * Node name's ssh of o->cmd, tagged tag, was cut off: by a signal, or
 * it exited 255. If the node's VM stopped under it, say so, labelled as
 * the node's lines are (the command is gone with the VM), and keep the
 * words in *why for --json. Otherwise hang the command up; quiet:
 * without a warning when that fails.
 */
static void node_cut_off(const struct nook_dirs *d, const char *name,
			 const struct shell_opts *o, const char *tag,
			 int quiet, char **why)
{
	struct ssh_target t;
	struct vm *vm = NULL;

	error_where(name);
	if (vm_open(d, name, 1, &vm) == 0) {
		*why = shell_stopped_now(vm, 1, SHELL_CUT);
		if (*why) {
			errorf("%s", *why);
		} else if (vm_ssh(vm, o->user, 1, &t) == 0) {
			t.tag = tag;
			hang_up(&t, name, quiet);
		}
	}
	error_where(NULL);
	vm_close(vm);
}

/* o->cmd on every node of o->name at once; the highest exit status. */
static int shell_all(const struct nook_dirs *d, const struct shell_opts *o)
{
	struct strvec nodes = STRVEC_INIT, why = STRVEC_INIT;
	struct fanout_set s;
	char tag[TAG_SIZE];
	int rc, sig = 0, one;

	if (make_tag(tag) < 0 || shell_nodes(d, o->name, &nodes, &why) < 0) {
		strvec_clear(&nodes);
		strvec_clear(&why);
		return 1;
	}
	/* o->name is a VM's, not a cluster's */
	one = nodes.n == 1 && !strcmp(nodes.v[0], o->name);
	fanout_set_init(&s, &nodes);
	if (o->json)
		fanout_set_keep(&s);
	/* a node that cannot be reached, or whose record cannot be read, is
	 * named and counts as failed; the others run */
	for (size_t i = 0; i < s.nodes.n; i++) {
		if (*why.v[i]) {
			vm_cluster_node_broken(s.nodes.v[i]);
			error_add_cause(why.v[i]);
		} else if (node_argv(d, s.nodes.v[i], o, tag,
				     &s.avs[i]) == 0) {
			s.jobs[i].argv = (const char *const *)s.avs[i].v;
		}
		/* --json says it again, in the node's object */
		if (!s.jobs[i].argv)
			s.jobs[i].error = xstrdup(error_last());
	}
	strvec_clear(&why);
	if (o->json && one && s.jobs[0].error) {
		/* as any command's --json about one VM that fails */
		json_error_name(o->name);
		rc = 1;
		goto out;
	}
	rc = fanout_run(s.jobs, s.nodes.n, &sig);
	/* as shell_piped(): what a signal or ssh's end cut off is hung up */
	for (size_t i = 0; i < s.nodes.n; i++)
		if (s.jobs[i].argv && (sig || cut_off(s.jobs[i].status)))
			node_cut_off(d, s.nodes.v[i], o, tag,
				     !sig && s.jobs[i].status == 255,
				     &s.jobs[i].why);
	if (sig) {
		signal(sig, SIG_DFL);
		raise(sig);
	}
	if (o->json && fanout_print_json(&s, o->name, NULL) && !rc)
		rc = 1;
out:
	fanout_set_free(&s);
	return rc;
}

int cmd_shell(struct nook_ctx *ctx, int argc, char **argv)
{
	struct shell_opts o = { NULL, NULL, NULL, NULL, 0, 0 };
	const struct nook_dirs *d;
	int rc = shell_parse(argc, argv, &o);

	if (rc)
		return rc < 0 ? 0 : rc;
	if (!o.name)
		o.name = ctx_default_name(ctx);
	if (!o.name)
		return ctx_project_exit(ctx);
	d = ctx_dirs(ctx);
	if (!d)
		return 1;
	return o.all ? shell_all(d, &o) : shell_one(d, &o);
}

static const char usage_ssh_config[] =
	"usage: nook ssh-config [NAME] [--json]\n"
	"\n"
	"Prints an OpenSSH config stanza for VM NAME (host alias nook-NAME):\n"
	"put it in ~/.ssh/config before any 'Host *' (ssh keeps the first\n"
	"value it reads, and a 'Host *' above it would undo the pinned host\n"
	"key), or pass it with 'ssh -F', and plain ssh, scp, rsync and\n"
	"editors reach the VM with its pinned host key. For a cluster's\n"
	"NAME, a stanza per node (nook-NAME-1, ...). NAME defaults to\n"
	"nook.yaml's name (found upward from here), else default.\n"
	"\n"
	"  --json   the same as an object (an array of them for a cluster):\n"
	"           name, alias (the Host and HostKeyAlias), hostname, port,\n"
	"           user, identity_file, known_hosts_file, control_path\n";

/* What a stanza says, for --json: NULL having said why. */
static json_t *target_json(const char *name, const struct ssh_target *t)
{
	json_t *j = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:s?}",
			      "name", name, "alias", t->alias,
			      "hostname", t->host, "port", t->port,
			      "user", t->user, "identity_file", t->identity,
			      "known_hosts_file", t->known_hosts,
			      "control_path", t->control);

	if (!j)
		errorf("VM %s: its ssh settings cannot be written as JSON "
		       "(a path that is not UTF-8?)", name);
	return j;
}

/* VM name's stanza appended to out, or with json its object appended to
 * the array json; -1 having said why. */
static int node_stanza(const struct nook_dirs *d, const char *name,
		       struct buf *out, json_t *json)
{
	struct ssh_target t;
	struct vm *vm = NULL;
	json_t *j;
	int ret = -1;

	/* the stanza is useful for a stopped VM too: it says where it
	 * will be once started on the same port */
	if (vm_open(d, name, 1, &vm) < 0 || vm_ssh(vm, NULL, 0, &t) < 0)
		goto out;
	/* the stanza's checks (a Host name ssh takes) hold for both */
	ret = ssh_config_stanza(&t, out);
	if (ret == 0 && json) {
		j = target_json(name, &t);
		ret = j ? json_array_append_new(json, j) : -1;
	}
out:
	vm_close(vm);
	return ret;
}

int cmd_ssh_config(struct nook_ctx *ctx, int argc, char **argv)
{
	const struct nook_dirs *d;
	struct strvec nodes = STRVEC_INIT, why = STRVEC_INIT;
	struct buf stanzas = BUF_INIT;
	json_t *all = NULL;
	const char *name;
	int one, json;
	int rc = parse_json_only(argc, argv, usage_ssh_config, 1, &json);

	if (rc)
		return rc < 0 ? 0 : rc;
	name = optind < argc ? argv[optind] : ctx_default_name(ctx);
	if (!name)
		return ctx_project_exit(ctx);
	rc = 1;
	if (json)
		all = json_array();
	d = ctx_dirs(ctx);
	if (!d || shell_nodes(d, name, &nodes, &why) < 0)
		goto out;
	/* name is one VM's, not a cluster's */
	one = nodes.n == 1 && !strcmp(nodes.v[0], name);
	if (one)
		json_error_name(name);
	/* all or nothing: a part of a cluster's stanzas appended to a
	 * config would look complete (a broken node's too) */
	for (size_t i = 0; i < nodes.n; i++) {
		if (*why.v[i]) {
			vm_cluster_node_broken(nodes.v[i]);
			goto out;
		}
		if (i)
			buf_adds(&stanzas, "\n");
		if (node_stanza(d, nodes.v[i], &stanzas, all) < 0)
			goto out;
	}
	if (json) {
		/* a VM's object; a cluster's nodes' array */
		rc = print_json(json_incref(one ? json_array_get(all, 0) :
					    all));
		goto out;
	}
	fputs(stanzas.p, stdout);
	rc = fflush(stdout) ? 1 : 0;
out:
	if (json && rc && !printed_json())
		rc = print_json_error();
	json_decref(all);
	buf_free(&stanzas);
	strvec_clear(&nodes);
	strvec_clear(&why);
	return rc;
}

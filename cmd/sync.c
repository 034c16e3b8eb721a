/* nook sync: rsync the project's files into a VM over the VM's ssh. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "vm.h"

/* shell_stopped_now()'s words for a copy its VM's end cut off, or a
 * round of --watch that found it stopped */
#define SYNC_CUT "the copy into it could not finish"

static const char usage[] =
	"usage: nook sync [NAME] [SRC] [DEST] [OPTIONS]\n"
	"       nook sync --all [NAME] [SRC] [DEST] [--json] [OPTIONS]\n"
	"\n"
	"Copies SRC (default: the current directory) into VM NAME (default:\n"
	"nook.yaml's name, else default) at DEST (default: SRC's name in the\n"
	"login user's home; a relative DEST is taken from there; one with\n"
	"*, ? or [...] is refused: the guest's rsync would take it for a\n"
	"wildcard), with rsync over the VM's pinned ssh. The tree's\n"
	".gitignore files are honoured. A cluster's NAME means its first\n"
	"node. Without SRC inside a tree whose nook.yaml has sync rules,\n"
	"applies each rule (its src, dest and excludes, plus the options\n"
	"given here).\n"
	"\n"
	"  --all             copy into every node of cluster NAME at once (a\n"
	"                    plain VM: into it alone), rsync's lines prefixed\n"
	"                    with the node's name; exits with the highest\n"
	"                    rsync status (a node not running, or whose\n"
	"                    record cannot be read, counts as 1)\n"
	"  --json            with --all: once every node's copy has ended,\n"
	"                    a JSON array on stdout, an object per node in\n"
	"                    order: name, exit (rsync's status; null, and\n"
	"                    signal such as \"KILL\", when a signal ended\n"
	"                    it), error for a failed rsync (as said on\n"
	"                    stderr: its failure, or that the node's VM\n"
	"                    stopped during the copy), stdout and stderr\n"
	"                    (rsync's, as shell --all --json's); for a node\n"
	"                    not run, name and error. A plain VM not run:\n"
	"                    one object, {\"name\", \"error\"}; a failure\n"
	"                    before any node runs: {\"error\"}. Not with\n"
	"                    --watch\n"
	"  --exclude PAT     leave out files matching PAT (repeatable)\n"
	"  --no-gitignore    do not read .gitignore files\n"
	"  --delete          delete files in DEST that SRC no longer has\n"
	"                    (refused when DEST is the home or above it)\n"
	"  --chown USER:GROUP  owner of the copies (runs 'sudo rsync' in the\n"
	"                    guest: the login user must sudo without a\n"
	"                    password)\n"
	"  -n, --dry-run     say what would change, change nothing\n"
	"  --watch           after the first sync, sync again whenever SRC\n"
	"                    changes (once they settle), until interrupted\n";

struct sync_opts {
	struct strvec excludes;
	const char *chown;
	int gitignore, del, dry_run, watch, all, json;
};

/* Whether argv's rsync runs "sudo rsync" in the guest (--chown). */
static int runs_sudo(const char *const *argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		if (!strcmp(argv[i], "--rsync-path=sudo rsync"))
			return 1;
	return 0;
}

/* What rsync's exit codes mean, in words (rsync(1), EXIT VALUES); sudo:
 * it ran "sudo rsync" in the guest. A sudo that may not run without a
 * password, or that finds no rsync, exits 1 before rsync's protocol
 * starts: 12 to the host's rsync. A guest without sudo (or rsync) ends
 * its shell with 127, which rsync before 3.5 passed on and 3.5 says as
 * 12. No host rsync never gets this far: it is said as "cannot run
 * rsync". */
static const char *rsync_why(int rc, int sudo)
{
	if (sudo && rc == 12)
		return "--chown runs 'sudo rsync' in the guest, and it ended "
		       "at once: the login user may not sudo without a "
		       "password, or sudo or rsync is missing there (the "
		       "lines above say which)";
	if (sudo && rc == 127)
		return "sudo or rsync is not installed in the guest "
		       "(--chown runs 'sudo rsync' there)";
	switch (rc) {
	case 1: return "syntax or usage error";
	case 2: return "protocol incompatibility";
	case 3: return "errors selecting input/output files or directories";
	case 5: return "error starting the client-server protocol";
	case 10: return "error in socket I/O";
	case 11: return "error in file I/O in the guest: a DEST whose parent "
			"is missing, no permission, or a full disk (rsync's "
			"line above says which)";
	/* (rsync 3.5 says a guest without rsync so, too: its shell's
	 * 127) */
	case 12: return "error in the rsync protocol data stream (rsync may "
			"be missing in the guest: the lines above say)";
	case 20: return "interrupted";
	case 23: return "some files could not be transferred (rsync's lines "
			"above say which and why)";
	case 24: return "some source files vanished while copying";
	case 30: return "timeout in data send/receive";
	case 255: return "the ssh connection failed";
	case 127: return "rsync is not installed in the guest";
	default: return "see its message above";
	}
}

/* What is said of rsync argv that failed with status, sig the signal
 * that ended it (0: none): "rsync failed (exit 23: some files could not
 * be transferred...)". The caller frees. */
static char *rsync_failed(const char *const *argv, int status, int sig)
{
	const char *abbrev;

	if (!sig)
		return xasprintf("rsync failed (exit %d: %s)", status,
				 rsync_why(status, runs_sudo(argv)));
	/* 128 + the signal is no status of rsync's to explain */
	abbrev = sigabbrev_np(sig);
	return abbrev ? xasprintf("rsync failed (ended by SIG%s)", abbrev) :
			xasprintf("rsync failed (ended by signal %d)", sig);
}

/* What is said of a copy into vm (NULL: not known) whose rsync argv
 * failed with status, sig: that the VM stopped meanwhile, as shell says
 * it (labelled: on a line labelled with the VM's name), else
 * rsync_failed()'s. The caller frees. */
static char *copy_failed(struct vm *vm, int labelled,
			 const char *const *argv, int status, int sig)
{
	char *why = vm ? shell_stopped_now(vm, labelled, SYNC_CUT) : NULL;

	return why ? why : rsync_failed(argv, status, sig);
}

/* rsync's output less its --stats block: what it said went wrong. */
static void print_rsync_errors(const char *out)
{
	static const char *const stats[] = {
		"Number of ", "Total ", "Literal data", "Matched data",
		"File list ", "sent ", "total size is ",
	};

	while (out && *out) {
		size_t n = strcspn(out, "\n"), k = 0;

		while (k < ARRAY_SIZE(stats) &&
		       strncmp(out, stats[k], strlen(stats[k])))
			k++;
		if (n && k == ARRAY_SIZE(stats))
			fprintf(stderr, "%.*s\n", (int)n, out);
		out += n + (out[n] == '\n');
	}
}

/* "Number of regular files transferred: 12" -> 12 */
static long long stat_field(const char *out, const char *label)
{
	const char *p = out ? strstr(out, label) : NULL;
	long long v = 0;

	if (!p)
		return -1;
	for (p += strlen(label); *p == ' ' || *p == ':'; p++)
		;
	for (; *p; p++) {
		if (*p >= '0' && *p <= '9')
			v = v * 10 + (*p - '0');
		else if (*p != ',')
			break;
	}
	return v;
}


/* rsync run to its end, its output into out (NULL: straight to the
 * terminal, progress and all), *sig set to the signal that ended it (0:
 * none; its status is then 128 + that). A signal that would end nook
 * (^C, or a kill of nook alone) is passed on to rsync, and nook dies of
 * it once rsync has ended: the copy does not go on behind nook's back. */
static int run_rsync(const char *const *argv, struct buf *out, int *sig)
{
	struct sigaction old[3];
	struct child c = CHILD_INIT;
	int p[2] = { -1, -1 }, rc = -1;
	char chunk[4096];
	siginfo_t si;
	ssize_t n;

	*sig = 0;
	memset(&si, 0, sizeof(si));
	sig_catch(old, 1);
	c.argv = argv;
	if (out && pipe2(p, O_CLOEXEC) < 0) {
		error_errno("cannot make a pipe for rsync's output");
		goto out;
	}
	c.out = c.err = p[1];
	if (child_start(&c) < 0)
		goto out;
	sig_pass_on(&c.pid, 1);
	if (out) {
		close(p[1]);
		p[1] = -1;
		for (;;) {
			n = read(p[0], chunk, sizeof(chunk));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			buf_add(out, chunk, (size_t)n);
		}
		buf_add(out, "", 0);
	}
	/* ended, not reaped: until the signals stop going to its pid, no
	 * other process may have it */
	while (waitid(P_PID, (id_t)c.pid, &si, WEXITED | WNOWAIT) < 0 &&
	       errno == EINTR)
		;
	if (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED)
		*sig = si.si_status;
	sig_pass_on(NULL, 0);
	rc = child_wait(&c);
out:
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	sig_catch(old, 0);
	sig_rethrow();
	return rc;
}

/* The line that says --watch waits for a change under src. */
static void say_watching(const char *src)
{
	char *shown = str_escaped(src);

	printf("watching %s (Ctrl-C ends)\n", shown);
	free(shown);
}

/* sync_once()'s failure when the copy failed because the VM stopped. */
#define SYNC_VM_STOPPED -2

/* One sync into vm, named name: rsync's progress on a terminal, then a
 * summary line. 0; else -1, or SYNC_VM_STOPPED, having said why. */
static int sync_once(struct vm *vm, const struct ssh_target *t,
		     const char *name, const struct sync_opts *o,
		     const char *src, const char *dest)
{
	struct strvec argv = STRVEC_INIT;
	struct buf out = BUF_INIT;
	int tty = isatty(STDOUT_FILENO);
	double t0 = mono_s();
	char *shown, *why, *stopped;
	struct ssh_rsync_opts ro = {
		(const char *const *)o->excludes.v, o->chown, o->gitignore,
		o->del, o->dry_run, tty
	};
	int rc, sig;

	if (ssh_target_check(t) < 0)
		return -1;
	ssh_rsync_argv(t, &ro, src, dest, &argv);
	rc = run_rsync((const char *const *)argv.v, tty ? NULL : &out, &sig);
	if (rc != 0) {
		print_rsync_errors(out.p);
		buf_free(&out);
		stopped = rc > 0 ? shell_stopped_now(vm, 0, SYNC_CUT) : NULL;
		why = stopped ? stopped : rc > 0 ?
		      rsync_failed((const char *const *)argv.v, rc, sig) : NULL;
		if (why)
			errorf("%s", why);
		free(why);
		strvec_clear(&argv);
		return stopped ? SYNC_VM_STOPPED : -1;
	}
	strvec_clear(&argv);
	/* the guest's path may hold any byte: none drives the terminal */
	shown = str_escaped(dest);
	if (!tty)
		printf("%s %lld files, %lld bytes to %s:%s in %.1f s\n",
		       o->dry_run ? "would send" : "sent",
		       stat_field(out.p, "Number of regular files transferred"),
		       stat_field(out.p, "Total transferred file size"),
		       name, shown, mono_s() - t0);
	else
		printf("synced to %s:%s in %.1f s\n", name, shown,
		       mono_s() - t0);
	fflush(stdout);
	free(shown);
	buf_free(&out);
	return 0;
}

/* Where dest and the home lead in the guest, symlinks followed, into
 * *real and *home; -1 having said why. */
static int guest_realpaths(const struct ssh_target *t, const char *dest,
			   char **real, char **home)
{
	struct strvec argv = STRVEC_INIT;
	struct buf out = BUF_INIT, err = BUF_INIT;
	char *nl;
	int rc;

	ssh_realpath_argv(t, dest, &argv);
	rc = run_capture_split((const char *const *)argv.v, &out, &err);
	strvec_clear(&argv);
	nl = rc == 0 ? strchr(out.p, '\n') : NULL;
	if (nl && out.p[0] == '/' && nl[1] == '/' && strchr(nl + 1, '\n')) {
		*real = xstrndup(out.p, (size_t)(nl - out.p));
		*home = xstrndup(nl + 1, strcspn(nl + 1, "\n"));
	} else if (rc >= 0) {
		errorf("cannot tell where '%s' leads in the guest (realpath "
		       "exit %d%s%.*s), so --delete is not safe there", dest,
		       rc, err.len ? ": " : "", (int)strcspn(err.p ? err.p : "",
						"\n"), err.p ? err.p : "");
		rc = -1;
	}
	buf_free(&out);
	buf_free(&err);
	return rc == 0 ? 0 : -1;
}

/*
 * -1 saying why when --delete into dest would empty the login user's home
 * or a directory above it: as typed, and where it leads in the guest (a
 * symlink to the home is the home); -2 saying why it cannot tell.
 */
static int check_delete_dest(const struct ssh_target *t, const char *dest)
{
	char *home = strcmp(t->user, "root") ? xasprintf("/home/%s", t->user)
					     : xstrdup("/root");
	char *real = NULL, *real_home = NULL;
	int holds = ssh_path_holds(dest, home);

	if (!holds && guest_realpaths(t, dest, &real, &real_home) < 0)
		holds = -2;
	else if (!holds && ssh_path_holds(real, real_home))
		holds = 1;
	/* (errorf() shows the guest's bytes escaped) */
	if (holds > 0)
		errorf("refusing --delete into '%s': that is %s or above "
		       "it%s%s, and everything not in SRC (.ssh too) would be "
		       "deleted; name a directory below it", dest,
		       real ? real_home : home, real ? ", leading to " : "",
		       real ? real : "");
	free(real);
	free(real_home);
	free(home);
	return holds > 0 ? -1 : holds;
}

static int watch_fd = -1;

static int add_watch(const char *path, const struct stat *st, int type,
		     struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type != FTW_D)
		return 0;
	if (!strcmp(path + ftw->base, ".git"))
		return 0; /* nftw has no prune: .git is watched but cheap */
	/* 1, not -1: nftw() then returns it, said already */
	if (inotify_add_watch(watch_fd, path, IN_CLOSE_WRITE | IN_CREATE |
			      IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
			      IN_ATTRIB) < 0) {
		error_errno("cannot watch %s", path);
		return 1;
	}
	return 0;
}

/* Watch SRC for the round about to copy it: made before the copy, so
 * what changes while rsync runs (behind its walk) makes the next round;
 * made afresh each round, so new directories count. 0 or -1 said. */
static int watch_begin(const char *src)
{
	struct stat st;
	int rc;

	watch_fd = inotify_init1(IN_CLOEXEC);
	if (watch_fd < 0)
		return error_errno("inotify");
	rc = nftw(src, add_watch, 32, FTW_PHYS);
	if (rc == -1 && stat(src, &st) < 0)
		error_errno("--watch cannot follow %s any more", src);
	else if (rc == -1) /* a directory below it went as it was walked */
		error_errno("--watch cannot walk %s", src);
	if (rc == 0)
		return 0;
	close(watch_fd);
	watch_fd = -1;
	return -1;
}

/* The longest a round waits for SRC to settle: a file written more often
 * than settle_ms (a log, a build's output) would hold it back for good. */
#define SETTLE_MAX_MS 3000

/* Block until SRC, watched since watch_begin(), has changed and then
 * stayed quiet for settle_ms (or SETTLE_MAX_MS passed since the first
 * change); the watch ends. */
static int wait_change(const char *src, int settle_ms)
{
	char ev[8192];
	int ret = -1;
	long long first = -1; /* the first change's mono_ms() */

	for (;;) {
		struct pollfd p = { watch_fd, POLLIN, 0 };
		long long left = first < 0 ? -1 :
				 first + SETTLE_MAX_MS - mono_ms();
		int n;

		if (first >= 0 && left <= 0)
			break; /* changing still: copied as it is now */
		n = poll(&p, 1, first < 0 ? -1 :
			 left < settle_ms ? (int)left : settle_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error_errno("cannot wait for changes in %s", src);
			goto out;
		}
		if (n == 0)
			break; /* quiet long enough after a change */
		if (read(watch_fd, ev, sizeof(ev)) > 0 && first < 0)
			first = mono_ms();
	}
	ret = 0;
out:
	close(watch_fd);
	watch_fd = -1;
	return ret;
}

/* The options into o and up to three words into pos; 0, EXIT_USAGE, or
 * -1 for --help (shown). */
static int parse(int argc, char **argv, struct sync_opts *o,
		 const char *pos[3], int *npos)
{
	static const struct option longopts[] = {
		{ "exclude", required_argument, NULL, 'x' },
		{ "no-gitignore", no_argument, NULL, 'G' },
		{ "delete", no_argument, NULL, 'd' },
		{ "chown", required_argument, NULL, 'c' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "watch", no_argument, NULL, 'w' },
		{ "all", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	getopt_reset();
	while ((c = cmd_getopt_long(argc, argv, ":hn", longopts, NULL)) != -1) {
		switch (c) {
		case 'x': strvec_push(&o->excludes, optarg); break;
		case 'G': o->gitignore = 0; break;
		case 'd': o->del = 1; break;
		case 'n': o->dry_run = 1; break;
		case 'w': o->watch = 1; break;
		case 'a': o->all = 1; break;
		case 'j': o->json = 1; break;
		case 'c':
			if (!strchr(optarg, ':') || optarg[0] == ':')
				return usage_error(usage, "--chown wants "
						   "USER:GROUP, not '%s'", optarg);
			o->chown = optarg;
			break;
		case 'h': return show_usage(usage) - 1;
		default: return bad_option(usage, argv, c);
		}
	}
	for (*npos = 0; optind < argc; optind++) {
		if (*npos == 3)
			return usage_error(usage, "unexpected argument '%s'",
					   argv[optind]);
		/* rsync would take "" as the login home itself */
		if (!*argv[optind])
			return usage_error(usage, "an empty argument names no "
					   "directory; for the home directory "
					   "give '~' or '.'");
		pos[(*npos)++] = argv[optind];
	}
	/* one VM's sync prints its own summary line */
	if (o->json && !o->all)
		return usage_error(usage, "--json goes with --all (one VM's "
				   "sync says what it sent)");
	if (o->json && o->watch)
		return usage_error(usage, "--json prints once every node's copy "
				   "has ended; --watch copies again and again: "
				   "leave out one of them");
	return 0;
}

/* NAME is optional: the first of the words is a NAME when a VM or a
 * cluster of that name exists (or no such file does, or all three words
 * are given). NULL when none is given. */
static const char *take_name(const struct nook_dirs *d, const char *pos[3],
			     int *npos)
{
	const char *name = NULL;
	struct vm *probe = NULL;
	int is_vm;

	if (!*npos || (*npos < 3 && !vm_name_valid(pos[0])))
		return name;
	/* quietly: "no such VM" is an answer here, not an error; of three
	 * words the first is a NAME, a bad one then said as such */
	is_vm = vm_name_valid(pos[0]) &&
		((vm_open(d, pos[0], 0, &probe) == 0 && vm_exists(probe)) ||
		 vm_cluster_exists(d, pos[0]) || access(pos[0], F_OK) != 0);
	vm_close(probe);
	if (is_vm || *npos == 3) {
		name = pos[0];
		memmove(pos, pos + 1, sizeof(pos[0]) * 2);
		pos[2] = NULL;
		(*npos)--;
	}
	return name;
}

/* Sync into one VM (a cluster's first node), then again on every change
 * with --watch. The exit status. */
static int sync_one(const struct nook_dirs *d, const char *name,
		    const struct sync_opts *o, const char *src,
		    const char *dest)
{
	char *vm_name = shell_resolve(d, name);
	struct ssh_target t;
	struct vm *vm = NULL;
	int rc = 1;

	if (!vm_name || vm_open(d, vm_name, 1, &vm) < 0 ||
	    shell_reach(vm, NULL, &t) < 0)
		goto out;
	if (o->del) {
		int safe = check_delete_dest(&t, dest);

		if (safe < 0) {
			rc = safe == -1 ? 2 : 1;
			goto out;
		}
	}
	if ((o->watch && watch_begin(src) < 0) ||
	    sync_once(vm, &t, vm_name, o, src, dest) < 0)
		goto out;
	while (o->watch) {
		say_watching(src);
		fflush(stdout);
		if (wait_change(src, 300) < 0 || watch_begin(src) < 0)
			goto out;
		/* a failed round is reported; the watch goes on, unless
		 * the VM stopped (said): no round would reach it again */
		if (sync_once(vm, &t, vm_name, o, src, dest) ==
		    SYNC_VM_STOPPED)
			goto out;
	}
	rc = 0;
out:
	if (watch_fd >= 0)
		close(watch_fd);
	watch_fd = -1;
	free(vm_name);
	vm_close(vm);
	return rc;
}

/* The rsync argv into VM name (no progress bar) into av. 0; 2 when
 * --delete into dest is refused; < 0 having said why (not running...). */
static int node_rsync_argv(const struct nook_dirs *d, const char *name,
			   const struct sync_opts *o, const char *src,
			   const char *dest, struct strvec *av)
{
	struct ssh_rsync_opts ro = {
		(const char *const *)o->excludes.v, o->chown, o->gitignore,
		o->del, o->dry_run, 0
	};
	struct ssh_target t;
	struct vm *vm = NULL;
	int ret = -1;

	if (vm_open(d, name, 1, &vm) == 0 &&
	    shell_reach(vm, NULL, &t) == 0) {
		int safe = o->del ? check_delete_dest(&t, dest) : 0;

		ret = safe == -1 ? 2 : safe;
		if (!ret)
			ssh_rsync_argv(&t, &ro, src, dest, av);
	}
	vm_close(vm);
	return ret;
}

/* Into j->why, what is said of job j's rsync that failed: the VM of
 * node j->label (under d) stopped meanwhile, else "rsync failed (exit
 * 23: some files could not be transferred...)"; NULL when it worked or
 * did not run (fanout_run() said why). Said too, labelled. */
static void say_failure(const struct nook_dirs *d, struct fanout_job *j)
{
	struct vm *vm = NULL;

	free(j->why);
	j->why = NULL;
	if (!j->argv || j->error || !j->status)
		return;
	error_where(j->label);
	/* a record gone meanwhile is said, and then the rsync's failure */
	vm_open(d, j->label, 1, &vm);
	j->why = copy_failed(vm, 1, j->argv, j->status, j->signal);
	errorf("%s", j->why);
	error_where(NULL);
	vm_close(vm);
}

/* One rsync per node of s (name's, under d) at once, a line for each
 * failure and a summary, or with --json the nodes' array; the highest
 * exit status. */
static int sync_round(const struct nook_dirs *d, struct fanout_set *s,
		      const char *name, const struct sync_opts *o,
		      const char *dest)
{
	struct fanout_job *jobs = s->jobs;
	size_t ok = 0, n = s->nodes.n;
	double t0 = mono_s();
	int rc = fanout_run(jobs, n, NULL);
	char *shown;

	for (size_t i = 0; i < n; i++) {
		ok += jobs[i].status == 0;
		say_failure(d, &jobs[i]);
	}
	if (o->json)
		return fanout_print_json(s, name, NULL) && !rc ? 1 : rc;
	shown = str_escaped(dest);
	printf("%s %zu of %zu nodes at %s in %.1f s\n",
	       o->dry_run ? "dry run: would sync" : "synced", ok, n, shown,
	       mono_s() - t0);
	free(shown);
	fflush(stdout);
	return rc;
}

/* Whether the VM of any node of s still runs. */
static int any_node_runs(const struct nook_dirs *d,
			 const struct fanout_set *s)
{
	int runs = 0;

	for (size_t i = 0; i < s->nodes.n && !runs; i++) {
		struct vm *vm = NULL;
		struct vm_info info;

		if (vm_open(d, s->nodes.v[i], 1, &vm) == 0) {
			vm_get_info(vm, &info);
			runs = info.pid != 0;
		}
		vm_close(vm);
	}
	return runs;
}

/* Sync into every node of name at once (--all), then again on every
 * change with --watch. The exit status. */
static int sync_all(const struct nook_dirs *d, const char *name,
		    const struct sync_opts *o, const char *src,
		    const char *dest)
{
	struct strvec nodes = STRVEC_INIT, why = STRVEC_INIT;
	struct fanout_set s;
	int rc = 1, one;

	if (shell_nodes(d, name, &nodes, &why) < 0) {
		strvec_clear(&nodes);
		strvec_clear(&why);
		return 1;
	}
	/* name is a VM's, not a cluster's */
	one = nodes.n == 1 && !strcmp(nodes.v[0], name);
	fanout_set_init(&s, &nodes);
	if (o->json)
		fanout_set_keep(&s);
	for (size_t i = 0; i < s.nodes.n; i++) {
		int r = *why.v[i] ? vm_cluster_node_broken(s.nodes.v[i]) :
				    node_rsync_argv(d, s.nodes.v[i], o, src,
						    dest, &s.avs[i]);

		/* a refused --delete stops every node's copy; a node that
		 * cannot be reached, or whose record cannot be read, is
		 * named and counts as failed, and the others go on */
		if (r == 2) {
			rc = 2;
			goto out;
		}
		if (*why.v[i])
			error_add_cause(why.v[i]);
		/* --json says it again, in the node's object */
		if (r == 0)
			s.jobs[i].argv = (const char *const *)s.avs[i].v;
		else
			s.jobs[i].error = xstrdup(error_last());
	}
	if (o->json && one && s.jobs[0].error) {
		/* as any command's --json about one VM that fails */
		json_error_name(name);
		goto out;
	}
	if (o->watch && watch_begin(src) < 0)
		goto out;
	rc = sync_round(d, &s, name, o, dest);
	/* a round that failed with no node running is the last: the next
	 * would fail the same way */
	while (o->watch && (rc == 0 || any_node_runs(d, &s))) {
		say_watching(src);
		fflush(stdout);
		if (wait_change(src, 300) < 0 || watch_begin(src) < 0)
			break;
		rc = sync_round(d, &s, name, o, dest);
	}
out:
	if (watch_fd >= 0)
		close(watch_fd);
	watch_fd = -1;
	strvec_clear(&why);
	fanout_set_free(&s);
	return rc;
}

/* DEST when none is given: SRC's last name as typed (a symlink's own,
 * not its target's), or for ".", ".." and the like the real path's
 * (real, NULL: typed is real already); "root" for "/". */
static char *default_dest(const char *typed, const char *real)
{
	size_t n = strlen(typed);
	const char *end, *name;

	while (n > 1 && typed[n - 1] == '/')
		n--;
	end = typed + n;
	for (name = end; name > typed && name[-1] != '/'; name--)
		;
	n = (size_t)(end - name);
	/* (a directory named "~" goes to ~/~, not over the home) */
	if (n == 1 && name[0] == '~')
		return xstrdup("./~");
	if (n && !(n == 1 && name[0] == '.') &&
	    !(n == 2 && !strncmp(name, "..", 2)) && name[0] != '/')
		return xstrndup(name, n);
	if (real && real != typed)
		return default_dest(real, NULL);
	return xstrdup("root");
}

/* The first of dest's characters that the guest's rsync would take for
 * a wildcard, or 0. rsync globs the destination it is sent with
 * --protect-args, and no quoting stops it (a backslash stays in the
 * name): "hom[e]/u" is home/u (so a --delete into it would pass the
 * check of the home as typed), and "d*" the last of d1 and d2. A '['
 * with no ']' after it is no wildcard (an escape sequence's "\e[31m"). */
static char dest_wildcard(const char *dest)
{
	const char *w = strpbrk(dest, "*?[");

	for (; w; w = strpbrk(w + 1, "*?["))
		if (*w != '[' || strchr(w + 1, ']'))
			return *w;
	return 0;
}

static const char dest_wildcard_why[] =
	"the guest's rsync would take it for a wildcard (it cannot be "
	"quoted); name the directory without *, ? or [...]";

/* The project file's sync rules, when it has any. */
static const struct project *project_rules(struct nook_ctx *ctx)
{
	int bad;
	const struct project *p = ctx_project(ctx, &bad);

	return p && p->nsyncs ? p : NULL;
}

/* Every sync rule of p into name, one after another, each with the
 * command line's options and its own excludes; the highest status. */
static int sync_rules(const struct nook_dirs *d, const char *name,
		      const struct sync_opts *o, const struct project *p)
{
	int worst = 0;

	if (o->watch && p->nsyncs > 1)
		return usage_error(usage, "--watch follows one SRC; %s has %zu "
				   "sync rules: give SRC [DEST]", p->path,
				   p->nsyncs);
	/* an array per rule would not be one JSON document */
	if (o->json && p->nsyncs > 1)
		return usage_error(usage, "--json reports one SRC; %s has %zu "
				   "sync rules: give SRC [DEST]", p->path,
				   p->nsyncs);
	/* a rule that cannot be copied as written: none is */
	for (size_t i = 0; i < p->nsyncs; i++) {
		const struct project_sync *r = &p->syncs[i];
		char *dest = r->dest ? xstrdup(r->dest) :
			     default_dest(r->src, NULL);
		char w = dest_wildcard(dest);

		if (w)
			errorf("%s: the sync rule of %s: its dest '%s' has "
			       "'%c': %s", p->path, r->src, dest, w,
			       dest_wildcard_why);
		free(dest);
		if (w)
			return 1;
	}
	/* a VM that is not there is said once, not once per rule */
	if (!o->all) {
		char *vm_name = shell_resolve(d, name);
		struct vm *vm = NULL;
		int there = vm_name && vm_open(d, vm_name, 1, &vm) == 0;

		vm_close(vm);
		free(vm_name);
		if (!there)
			return 1;
	}
	for (size_t i = 0; i < p->nsyncs; i++) {
		const struct project_sync *r = &p->syncs[i];
		struct sync_opts ro = *o;
		char *dest = r->dest ? xstrdup(r->dest) :
			     default_dest(r->src, NULL);
		int rc;

		memset(&ro.excludes, 0, sizeof(ro.excludes));
		for (size_t k = 0; k < o->excludes.n; k++)
			strvec_push(&ro.excludes, o->excludes.v[k]);
		for (size_t k = 0; k < r->exclude.n; k++)
			strvec_push(&ro.excludes, r->exclude.v[k]);
		ro.del = o->del || r->del;
		rc = o->all ? sync_all(d, name, &ro, r->src, dest) :
			      sync_one(d, name, &ro, r->src, dest);
		if (rc > worst)
			worst = rc;
		strvec_clear(&ro.excludes);
		free(dest);
	}
	return worst;
}

int cmd_sync(struct nook_ctx *ctx, int argc, char **argv)
{
	struct sync_opts o = { STRVEC_INIT, NULL, 1, 0, 0, 0, 0, 0 };
	const char *pos[3] = { NULL, NULL, NULL };
	const struct nook_dirs *d;
	const char *name;
	char *src = NULL, *dest = NULL;
	struct stat st;
	int npos = 0, named, rc = parse(argc, argv, &o, pos, &npos);

	if (rc) {
		strvec_clear(&o.excludes);
		return rc < 0 ? 0 : rc;
	}
	rc = 1;
	d = ctx_dirs(ctx);
	if (!d)
		goto out;
	name = take_name(d, pos, &npos);
	named = name != NULL;
	/* no NAME, no SRC: the project file's rules, when it has any */
	if (!name && !npos && project_rules(ctx)) {
		name = ctx_default_name(ctx);
		rc = sync_rules(d, name, &o, project_rules(ctx));
		goto out;
	}
	if (!name)
		name = ctx_default_name(ctx);
	if (!name) {
		rc = ctx_project_exit(ctx);
		goto out;
	}
	src = realpath(pos[0] ? pos[0] : ".", NULL);
	/* a first word that no file has and no VM could: a typo of either
	 * (take_name() takes a valid name no file has for a NAME) */
	if (!src && (errno == ENOENT || errno == ENOTDIR) && !named &&
	    pos[0] && !vm_name_valid(pos[0]))
		usage_errorf("'%s' is neither a file (%s) nor a valid VM name",
			     pos[0], strerror(errno));
	else if (!src)
		error_errno("sync source %s", pos[0] ? pos[0] : ".");
	if (!src)
		goto out;
	/* rsync would copy SRC/ and fail half-way on a file or a FIFO */
	if (stat(src, &st) < 0 || !S_ISDIR(st.st_mode)) {
		errorf("sync source %s is not a directory: nook sync copies a "
		       "directory's tree (for one file, scp with 'nook "
		       "ssh-config')", pos[0] ? pos[0] : ".");
		goto out;
	}
	dest = pos[1] ? xstrdup(pos[1]) :
		default_dest(pos[0] ? pos[0] : ".", src);
	if (dest_wildcard(dest)) {
		rc = usage_error(usage, "DEST '%s' has '%c': %s%s", dest,
				 dest_wildcard(dest), dest_wildcard_why,
				 pos[1] ? "" :
				 " (give DEST: SRC's name has it)");
		goto out;
	}
	rc = o.all ? sync_all(d, name, &o, src, dest) :
		     sync_one(d, name, &o, src, dest);
out:
	free(src);
	free(dest);
	strvec_clear(&o.excludes);
	return rc;
}

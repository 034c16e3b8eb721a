/* Waiting for a guest to be really ready: banner, login, cloud-init. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

const char *vm_phase_name(enum vm_phase ph)
{
	static const char *const names[] = { "booting (waiting for sshd)",
					      "logging in over ssh",
					      "running cloud-init", "ready" };

	return names[ph];
}



/* An ssh child whose stderr we keep for the reason it failed. */
struct probe {
	struct child c;
	struct strvec argv;
	int err_fd;
	struct buf err;
};

static int probe_start(struct probe *pr, const struct ssh_target *t,
		       const char *const *cmd)
{
	int pfd[2];

	strvec_clear(&pr->argv);
	pr->err.len = 0;
	ssh_argv(t, -1, NULL, cmd, &pr->argv);
	if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0)
		return error_errno("pipe");
	pr->c = (struct child)CHILD_INIT;
	pr->c.argv = (const char *const *)pr->argv.v;
	pr->c.in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pr->c.out = pr->c.in >= 0 ? open("/dev/null", O_WRONLY | O_CLOEXEC) : -1;
	pr->c.err = pfd[1];
	if (child_start(&pr->c) < 0) {
		close(pfd[0]);
		pfd[0] = -1;
	}
	close(pfd[1]);
	if (pr->c.in >= 0)
		close(pr->c.in);
	if (pr->c.out >= 0)
		close(pr->c.out);
	pr->err_fd = pfd[0];
	return pfd[0] < 0 ? -1 : 0;
}

static void probe_drain(struct probe *pr)
{
	char chunk[1024];

	while (pr->err_fd >= 0) {
		ssize_t n = read(pr->err_fd, chunk, sizeof(chunk));

		if (n <= 0)
			break;
		buf_add(&pr->err, chunk, (size_t)n);
	}
}

/* -1 while it runs, else its exit status. */
static int probe_poll(struct probe *pr)
{
	int st;

	probe_drain(pr);
	if (child_poll(&pr->c, &st) != 1)
		return -1;
	probe_drain(pr);
	close(pr->err_fd);
	pr->err_fd = -1;
	return st;
}

static void probe_stop(struct probe *pr)
{
	child_kill(&pr->c);
	if (pr->err_fd >= 0)
		close(pr->err_fd);
	pr->err_fd = -1;
	strvec_clear(&pr->argv);
	buf_free(&pr->err);
}

/*
 * Waiting for cloud-init the cheap way. `cloud-init status --wait` is a
 * Python program: under TCG its imports alone take ~5 s of a guest CPU
 * while the boot it waits for still needs it. cloud-final writes
 * /run/cloud-init/result.json when it is done, with the errors of every
 * stage; `cloud-init status` reads the same file. So a shell loop waits
 * for it and says "done, no errors" (exit 0); it sleeps half a second
 * between looks and asks systemctl (a costly start) only every 10 s. Anything else - errors,
 * cloud-init disabled (exit 2), the boot over without a result (exit 2) -
 * goes to `cloud-init status --wait`, whose answer is the one we report.
 */
static const char fast_ci_script[] =
	"r=/run/cloud-init/result.json n=0; "
	"while [ ! -e $r ]; do "
	"[ -e /run/cloud-init/disabled ] && exit 2; "
	"n=$((n + 1)); "
	"if [ $((n % 20)) = 0 ]; then "
	"case $(systemctl is-system-running 2>/dev/null) in "
	"running|degraded) [ -e $r ] || exit 2;; esac; fi; "
	"sleep 0.5; done; "
	"grep -qF '\"errors\": []' $r";

/*
 * sshd answers and refuses nook's key. cloud-init sets up users and keys
 * before systemd starts sshd, so once it answers a refusal is final: say
 * so after a few tries instead of waiting out the whole timeout.
 */
#define MAX_DENIED 3

static void login_refused(const char *user, const char *ssh_said)
{
	const char *line = strstr(ssh_said, "Permission denied");
	int n;

	/* ssh's own line, not any warning printed before it */
	while (line > ssh_said && line[-1] != '\n')
		line--;
	n = (int)strcspn(line, "\r\n");

	errorf("the guest's sshd refused nook's key for user \"%s\": %.*s\n"
	       "Likely causes:\n"
	       "  - the user-data's users: list does not make \"%s\" (nook "
	       "logs in as the\n    image's default user, or as the first "
	       "user listed when the list has\n    no 'default')\n"
	       "  - the user-data turns off vendor-data (vendor_data: "
	       "{enabled: false}) or\n    its boothooks, through which nook "
	       "lets its key in for every user\n"
	       "  - the user-data changes sshd's AuthorizedKeysFile",
	       user, n, line, user);
}

int vm_wait_ready(struct vm_ready *r)
{
	static const char *const login[] = { "true", NULL };
	static const char *const fast_ci[] = { "sh", "-c", fast_ci_script,
						NULL };
	static const char *const ci[] = { "cloud-init", "status", "--wait",
					   NULL };
	int slow_ci = 0, denied = 0;
	struct probe pr = { CHILD_INIT, STRVEC_INIT, -1, BUF_INIT };
	double start = mono_s();
	int ret = -1;

	r->reached = VM_PHASE_BOOT;
	r->crashed = r->timed_out = 0;
	r->cloud_init_rc = -1;
	for (;;) {
		double el = mono_s() - start;
		int st;

		if (!vm_pid_is_ours(r->pid, r->paths->qmp_arg)) {
			r->crashed = 1;
			break;
		}
		if (el > r->timeout_s) {
			r->timed_out = 1;
			break;
		}
		if (r->progress)
			r->progress(r->ctx, r->reached, el);
		if (r->reached == VM_PHASE_BOOT) {
			/* slirp accepts at once, long before sshd runs: only
			 * sshd's own banner means the guest is up */
			if (ssh_banner(r->ssh->host, r->ssh->port, 1000))
				r->reached = VM_PHASE_LOGIN;
			else
				sleep_ms(250);
			continue;
		}
		if (pr.c.pid <= 0 && pr.err_fd < 0) {
			const char *const *cmd = r->reached == VM_PHASE_LOGIN ?
				login : slow_ci ? ci : fast_ci;

			if (probe_start(&pr, r->ssh, cmd) < 0)
				break;
		}
		st = probe_poll(&pr);
		if (st < 0) {
			sleep_ms(250);
			continue;
		}
		if (st == 255) {
			const char *why = pr.err.p ? pr.err.p : "";

			if (strstr(why, "verification failed") ||
			    strstr(why, "IDENTIFICATION")) {
				errorf("the guest's SSH host key is not the one "
				       "nook gave it; refusing to connect:\n%s",
				       why);
				break;
			}
			denied = strstr(why, "Permission denied") ? denied + 1 : 0;
			if (denied >= MAX_DENIED) {
				login_refused(r->ssh->user, why);
				break;
			}
			sleep_ms(1000); /* sshd not yet taking logins: retry */
			continue;
		}
		if (r->reached == VM_PHASE_LOGIN) {
			if (st != 0) {
				errorf("ssh login ran 'true' and got exit %d: %s",
				       st, pr.err.p ? pr.err.p : "");
				break;
			}
			r->reached = VM_PHASE_CLOUD_INIT;
			continue;
		}
		if (st != 0 && !slow_ci) {
			slow_ci = 1; /* let cloud-init itself say what happened */
			continue;
		}
		r->cloud_init_rc = st;
		if (st == 0) {
			r->reached = VM_PHASE_READY;
			ret = 0;
		}
		break;
	}
	probe_stop(&pr);
	return ret;
}

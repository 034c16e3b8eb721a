/*
 * cmd: the commands a user types. Each command file exports one
 * int cmd_NAME(struct nook_ctx *ctx, int argc, char **argv), where argv[0]
 * is the command's own name; it parses its options with getopt_long and
 * returns the exit status: 0 ok, 1 failure, 2 usage. Only this folder
 * decides exit statuses.
 */
#ifndef NOOK_CMD_H
#define NOOK_CMD_H

#include <getopt.h>
#include <sys/types.h>

#include <jansson.h>

#include "common.h"
#include "images.h"
#include "project.h"

#define EXIT_USAGE 2

/* A terminal's in-place line, wiped: back to its start, cleared to its
 * end (a progress line redrawn, or ended for what follows). */
#define TTY_WIPE "\r\033[K"

/* What main() hands every command: the directories, resolved from the
 * environment on first use (a command that needs none never fails on a
 * missing HOME). */
struct nook_ctx {
	struct nook_dirs dirs;
	int have_dirs;
	struct project project;
	int project_looked;       /* project_status is known */
	int project_status;       /* project_open()'s */
};
/* The resolved directories, or NULL having said why. */
const struct nook_dirs *ctx_dirs(struct nook_ctx *ctx);
/*
 * The project file (nook.yaml) of the tree the current directory is in,
 * found and loaded on first use (cmd/project.c): NULL when there is none,
 * or when it is bad (*bad set to the exit status, having said where and
 * what): a command then exits with it, before anything starts.
 */
const struct project *ctx_project(struct nook_ctx *ctx, int *bad);
/* A project file that is wrong (said), as far as it can be read: the
 * VM name it gives, or NULL (none, or a file that cannot be read);
 * *path set to how the file is named, or NULL. */
const char *ctx_project_wrong_name(const struct nook_ctx *ctx,
				   const char **path);
/* The exit status of a project file that was looked for and is bad:
 * EXIT_USAGE for wrong text, 1 for one that cannot be read or is not
 * trusted; 0 when it is fine, or none. */
int ctx_project_exit(const struct nook_ctx *ctx);
/* The NAME a command given none acts on: the project file's name, else
 * "default". NULL when the project file is bad (said): exit with
 * ctx_project_exit(). */
const char *ctx_default_name(struct nook_ctx *ctx);
/* Release what ctx holds. */
void ctx_free(struct nook_ctx *ctx);
int cmd_init(struct nook_ctx *ctx, int argc, char **argv);

int cmd_cidata(struct nook_ctx *ctx, int argc, char **argv);
int cmd_doctor(struct nook_ctx *ctx, int argc, char **argv);
int cmd_version(struct nook_ctx *ctx, int argc, char **argv);
int cmd_local(struct nook_ctx *ctx, int argc, char **argv);
int cmd_local_start(struct nook_ctx *ctx, int argc, char **argv);
int cmd_local_prune(struct nook_ctx *ctx, int argc, char **argv);
int cmd_local_snapshot(struct nook_ctx *ctx, int argc, char **argv);
int cmd_shell(struct nook_ctx *ctx, int argc, char **argv);
int cmd_ssh_config(struct nook_ctx *ctx, int argc, char **argv);
int cmd_sync(struct nook_ctx *ctx, int argc, char **argv);
int cmd_console(struct nook_ctx *ctx, int argc, char **argv);
int cmd_images(struct nook_ctx *ctx, int argc, char **argv);
int cmd_export(struct nook_ctx *ctx, int argc, char **argv);
int cmd_port(struct nook_ctx *ctx, int argc, char **argv);
/* An img_report_fn that prints an image operation's progress: a build's
 * and the default image's steps to arg, a FILE * (NULL: stdout); a pull's
 * lines and its bar (10% lines off a terminal) to stderr. In cmd/images.c. */
void images_report(const struct img_event *ev, void *arg);

/* Print "nook: <why>" and the usage to stderr; returns EXIT_USAGE. */
int usage_error(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* For getopt_long's '?' and ':' (optstring must start with ':'): say which
 * option was wrong; returns EXIT_USAGE. */
int bad_option(const char *usage, char **argv, int ret);
/* Print usage to stdout for --help; returns 0. */
int show_usage(const char *usage);
/* A command whose only option is --help, then at most max_words words
 * (from optind): 0, EXIT_USAGE, or -1 after showing the usage. */
int parse_help_only(int argc, char **argv, const char *usage, int max_words);
/* The same with --json too, which sets *json (json NULL: refused). */
int parse_json_only(int argc, char **argv, const char *usage, int max_words,
		    int *json);
/* A command's subcommands: run the one argv[1] names with argv + 1, or
 * say the usage (--help, -h, help) or what is wrong (EXIT_USAGE). */
struct subcommand {
	const char *name;
	int (*fn)(struct nook_ctx *ctx, int argc, char **argv);
};
int run_subcommand(struct nook_ctx *ctx, int argc, char **argv,
		   const struct subcommand *subs, size_t n, const char *usage);
/*
 * A terminal board of one line per cluster node (cmd/board.c):
 * board_start() before the nodes' processes start, board_say() from any
 * of them (a line of text for that node), board_end() once they are done.
 */
struct board {
	int fd;
	pid_t pid;
};
int board_start(struct board *b);
void board_say(const struct board *b, const char *name, const char *text);
void board_end(struct board *b);

/* Reset getopt for a fresh parse of a (sub)command's argv. */
void getopt_reset(void);
/*
 * getopt_long(), as every command calls it: the C library's, noting
 * each word it takes as an option's value, so that main() tells
 * "--exclude --json" (a value) from "--json" (the option) without
 * knowing each command's options.
 */
int cmd_getopt_long(int argc, char *const *argv, const char *optstring,
		    const struct option *longopts, int *longindex);
/* 1 when word (the argv string itself, not a copy) was taken as an
 * option's value by a cmd_getopt_long() so far. */
int cmd_option_value(const char *word);
/* Print j to stdout as indented JSON and free it. 0, or 1 on failure. */
int print_json(json_t *j);
/* print_json() of an array of n items, each made by item(i, ctx) in
 * turn and written (then freed) before the next is made: a long array
 * is never held whole. 0, or 1 on failure (an item NULL is one). */
int print_json_array(size_t n, json_t *(*item)(size_t, void *), void *ctx);
/* 1 once print_json() or print_json_array() has been called. */
int printed_json(void);
/* For --json: the failure as {"error": "<the last error said>"} on stdout
 * (it was said on stderr too), with the VM's "name" when the command is
 * about one (json_error_name()) and "usage": true for a usage error;
 * returns 1, the exit status. A usage error (exit 2) that printed no JSON
 * has main() print it so. */
int print_json_error(void);
/* The VM a command is about, for the "name" print_json_error() puts
 * before its "error": set where a command finds that its NAME means one
 * VM (NULL, or a name that is no VM's, sets none). */
void json_error_name(const char *name);

/*
 * Fan-out (cmd/fanout.c): run several commands at once, every line they
 * print labelled "LABEL: " (stdout lines to stdout, stderr lines to
 * stderr), for --all over a cluster's nodes.
 */
/* What a job printed on one of its outputs, kept apart (--json): the
 * first FANOUT_KEEP_MAX bytes read, as read (fanout_text_utf8() makes
 * them JSON's, up to 3 times as long: one output at a time). */
#define FANOUT_KEEP_MAX ((size_t)16 << 20)
struct fanout_text {
	struct buf b;
	int truncated;            /* more was printed, read and dropped */
};
struct fanout_job {
	const char *label;        /* the node's name */
	const char *const *argv;  /* NULL: not runnable (said why): status 1 */
	int status;               /* out: its exit status (1 if not run) */
	/* NULL: its lines labelled on our stdout and stderr; else its
	 * stdout kept in keep[0], its stderr in keep[1], nothing printed */
	struct fanout_text *keep;
	int signal;               /* out: the signal that ended it, or 0 */
	/* why it did not run, or NULL: without argv, the caller's (kept);
	 * with one, out: why it could not be started (status 1), freed by
	 * the next run. Freed by fanout_set_free() or the caller */
	char *error;
	/* the caller's words on why a job that ran failed (as said on
	 * stderr: --json's "error"), or NULL. Freed by fanout_set_free()
	 * or the caller */
	char *why;
};
/* t's bytes made valid UTF-8 in place: each invalid sequence one U+FFFD
 * (Python's "replace"), a character the cap cut at the end (truncated)
 * dropped. */
void fanout_text_utf8(struct fanout_text *t);
/* Run every job at once with stdin from /dev/null; a last line without
 * its newline gets one (a kept output stays as it was printed). Returns
 * the highest status (fanout_status()), at least 1 when a line could not
 * be written (said; the rest is dropped).
 * SIGINT, SIGTERM or SIGHUP meanwhile is passed on to every job; once
 * they have ended (what they printed until then labelled, their pipes not
 * waited for: a child of theirs may hold them) it is in *caught (0:
 * none), or with caught NULL we die of it. A reader of stdout that goes
 * (EPIPE) ends every job with SIGTERM and counts as a SIGPIPE caught. */
int fanout_run(struct fanout_job *jobs, size_t n, int *caught);
/*
 * Job j's object for --json, j->keep's texts made UTF-8 and freed one at
 * a time: {"name", "error"} for a job not run (j->error), else "name",
 * "exit" (null, and "signal" such as "TERM", when a signal ended it),
 * "error" (j->why, when set), what add(o, j) puts in (add NULL:
 * nothing), "stdout" and "stderr" (and "stdout_truncated",
 * "stderr_truncated" true past FANOUT_KEEP_MAX).
 * NULL only when even {"name", "error"} cannot be made.
 */
typedef void fanout_add_fn(json_t *o, const struct fanout_job *j);
json_t *fanout_job_json(struct fanout_job *j, fanout_add_fn *add);
/* One output of one job: lines read from in go to out labelled, or with
 * keep, what is read is kept there. */
struct fanout_stream {
	const char *label;
	int in;                   /* -1 once at its end (closed) */
	int out;
	struct buf part;          /* a line not yet ended */
	struct fanout_text *keep; /* NULL: labelled lines to out */
	int lost;                 /* out: a write to out failed (stderr) */
};
/* Copy every stream's in to its out, line by line, as they come (poll),
 * or keep it, until every in is at its end; closes the ins and frees the
 * parts (the kept texts are the caller's to buf_free()).
 * 0, or -1 having said why (a write failed: the rest is dropped; one
 * to stdout whose reader has gone is not said). A stream whose out is
 * stderr and fails is read on, its lines dropped, the others go on. */
int fanout_pump(struct fanout_stream *s, size_t n);
/* The status of a set: the highest; -1 (not run, not waited) counts 1. */
int fanout_status(const int *status, size_t n);
/* A job per name in nodes (whose strings it takes over; nodes is left
 * empty), each with an argv to fill in avs[i] (a job left without one
 * counts as failed). */
struct fanout_set {
	struct strvec nodes;
	struct strvec *avs;
	struct fanout_job *jobs;
	struct fanout_text *kept; /* fanout_set_keep()'s, 2 a job */
};
void fanout_set_init(struct fanout_set *s, struct strvec *nodes);
/* Every job's outputs kept (--json), not printed. */
void fanout_set_keep(struct fanout_set *s);
void fanout_set_free(struct fanout_set *s);
/* --json of a set that ran (keep): one array on stdout of each job's
 * fanout_job_json(job, add) in order, each made and written before the
 * next. 0, or 1 having said that the JSON of name's nodes could not be
 * written. */
int fanout_print_json(struct fanout_set *s, const char *name,
		      fanout_add_fn *add);

/*
 * Names (cmd/shell.c). The VM NAME means where one VM is expected: NAME,
 * or a cluster's first node (said on stderr). The caller frees; NULL
 * having said why.
 */
char *shell_resolve(const struct nook_dirs *d, const char *name);
/* The VMs NAME means for --all: a cluster's nodes in order, or NAME
 * itself, appended to out. With why (not NULL), also each node whose
 * record cannot be read (said as it is read), why getting each name's
 * error ("" for one that can be read). -1 having said why. */
int shell_nodes(const struct nook_dirs *d, const char *name,
		struct strvec *out, struct strvec *why);
/*
 * vm_ssh() of a VM that must be up as user (NULL: the login user) into
 * t, then, when it is still booting (started with --no-wait; its QEMU
 * younger than SHELL_AWAIT_S), a wait for its sshd, shown on stderr. -1
 * having said why.
 */
#define SHELL_AWAIT_S 300
struct vm;
struct ssh_target;
int shell_reach(struct vm *vm, const char *user, struct ssh_target *t);
/* After an ssh (or an rsync over it) that failed: when it was because
 * the VM stopped meanwhile (ssh itself says only that its connection
 * closed), the words that say so: "VM NAME is stopped now: WHAT", or
 * labelled (on a line labelled with the VM's name, --all's) "the VM is
 * stopped now: WHAT". NULL while its QEMU runs. The caller frees. */
char *shell_stopped_now(struct vm *vm, int labelled, const char *what);

#endif

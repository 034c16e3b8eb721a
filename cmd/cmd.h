/*
 * cmd: the commands a user types. Each command file exports one
 * int cmd_NAME(struct nook_ctx *ctx, int argc, char **argv), where argv[0]
 * is the command's own name; it parses its options with getopt_long and
 * returns the exit status: 0 ok, 1 failure, 2 usage. Only this folder
 * decides exit statuses.
 */
#ifndef NOOK_CMD_H
#define NOOK_CMD_H

#include <jansson.h>

#include "common.h"
#include "images.h"

#define EXIT_USAGE 2

/* What main() hands every command: the directories, resolved from the
 * environment on first use (a command that needs none never fails on a
 * missing HOME). */
struct nook_ctx {
	struct nook_dirs dirs;
	int have_dirs;
};
/* The resolved directories, or NULL having said why. */
const struct nook_dirs *ctx_dirs(struct nook_ctx *ctx);

int cmd_cidata(struct nook_ctx *ctx, int argc, char **argv);
int cmd_doctor(struct nook_ctx *ctx, int argc, char **argv);
int cmd_version(struct nook_ctx *ctx, int argc, char **argv);
int cmd_local(struct nook_ctx *ctx, int argc, char **argv);
int cmd_local_start(struct nook_ctx *ctx, int argc, char **argv);
int cmd_shell(struct nook_ctx *ctx, int argc, char **argv);
int cmd_ssh_config(struct nook_ctx *ctx, int argc, char **argv);
int cmd_sync(struct nook_ctx *ctx, int argc, char **argv);
int cmd_console(struct nook_ctx *ctx, int argc, char **argv);
int cmd_images(struct nook_ctx *ctx, int argc, char **argv);
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
/* Reset getopt for a fresh parse of a (sub)command's argv. */
void getopt_reset(void);
/* Print j to stdout as indented JSON and free it. 0, or 1 on failure. */
int print_json(json_t *j);
/* For --json: the failure as {"error": "<the last error said>"} on stdout
 * (it was said on stderr too); returns 1, the exit status. */
int print_json_error(void);

#endif

/*
 * cmd: the commands a user types. Each command file exports one
 * int cmd_NAME(int argc, char **argv), where argv[0] is the command's own
 * name; it parses its options with getopt_long and returns the exit status:
 * 0 ok, 1 failure, 2 usage. Only this folder decides exit statuses.
 */
#ifndef NOOK_CMD_H
#define NOOK_CMD_H

#include <jansson.h>

#define EXIT_USAGE 2

int cmd_cidata(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_local(int argc, char **argv);
int cmd_local_start(int argc, char **argv);
int cmd_shell(int argc, char **argv);
int cmd_ssh_config(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_console(int argc, char **argv);
int cmd_images(int argc, char **argv);
/* Build image name from its recipe (cached) into the store under data. */
int img_build(const char *data, const char *name, const char *cache);

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

#endif

/* What every command shares: usage messages, getopt and JSON output. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "common.h"
#include "vm.h"

int usage_error(const char *usage, const char *fmt, ...)
{
	struct buf msg = BUF_INIT;
	const char *end;
	va_list ap;
	char *raw;

	va_start(ap, fmt);
	raw = xvasprintf(fmt, ap);
	va_end(ap);
	/* it may quote what was typed: no escape sequence gets through, and
	 * no newline either (a usage error is one line) */
	str_escape(&msg, raw, 0);
	fprintf(stderr, "nook: %s", msg.p);
	/* for --json's error object (main()) */
	error_set_usage(msg.p);
	free(raw);
	buf_free(&msg);
	/* only the synopsis: the lines before the first blank one */
	end = strstr(usage, "\n\n");
	fprintf(stderr, "\n%.*s\n", end ? (int)(end - usage) : (int)strlen(usage),
		usage);
	return EXIT_USAGE;
}

int bad_option(const char *usage, char **argv, int ret)
{
	/* getopt_long with a leading ':' in optstring: ':' is a missing value,
	 * '?' an unknown option (optopt is 0 for a long one). */
	const char *word = argv[optind - 1];
	const char *eq = strchr(word, '=');

	if (ret == ':')
		return usage_error(usage, "option '%s' needs a value", word);
	/* a long option that takes none, given one: optopt is its value */
	if (optopt && !strncmp(word, "--", 2) && eq)
		return usage_error(usage, "option '%.*s' takes no value",
				   (int)(eq - word), word);
	if (optopt)
		return usage_error(usage, "unknown option '-%c'", optopt);
	return usage_error(usage, "unknown option '%s'", word);
}

int show_usage(const char *usage)
{
	fputs(usage, stdout);
	return 0;
}

void getopt_reset(void)
{
	optind = 0; /* glibc: 0 also resets its internal state */
	opterr = 0;
}

/* The option values getopt_long() took (cmd_option_value()): argv's
 * own strings, as many as there are words at most. */
static const char **values;
static size_t n_values, values_room;

int cmd_getopt_long(int argc, char *const *argv, const char *optstring,
		    const struct option *longopts, int *longindex)
{
	int c = getopt_long(argc, argv, optstring, longopts, longindex);

	if (c == -1 || c == '?' || c == ':' || !optarg)
		return c;
	if (n_values == values_room) {
		values_room = values_room ? 2 * values_room : 8;
		values = xrealloc(values, values_room * sizeof(*values));
	}
	values[n_values++] = optarg;
	return c;
}

int cmd_option_value(const char *word)
{
	for (size_t i = 0; i < n_values; i++)
		if (values[i] == word)
			return 1;
	return 0;
}

/* Whether print_json() has printed: main() prints a usage error's JSON
 * only when nothing else was. */
static int json_printed;

int printed_json(void)
{
	return json_printed;
}

int print_json(json_t *j)
{
	int ret = 0;

	json_printed = 1;
	/* written as it is made: shell --all --json's outputs, their
	 * control bytes 6 times as long as \u0001, need no string beside */
	if (!j || json_dumpf(j, stdout, JSON_INDENT(2) |
			     JSON_PRESERVE_ORDER) < 0 ||
	    putchar('\n') == EOF || fflush(stdout) != 0)
		ret = 1;
	json_decref(j);
	return ret;
}

/* json_dump_callback()'s writer: to stdout, each line indented two more
 * spaces (a JSON string holds no newline of its own) */
static int dump_indented(const char *p, size_t n, void *data)
{
	int *fail = data;

	for (size_t i = 0; i < n; i++)
		if (putchar(p[i]) == EOF ||
		    (p[i] == '\n' && fputs("  ", stdout) == EOF))
			*fail = 1;
	return *fail ? -1 : 0;
}

int print_json_array(size_t n, json_t *(*item)(size_t, void *), void *ctx)
{
	int fail = 0;

	json_printed = 1;
	if (!n)
		return print_json(json_array());
	fputs("[\n  ", stdout);
	for (size_t i = 0; i < n && !fail; i++) {
		json_t *j = item(i, ctx);

		if (i && fputs(",\n  ", stdout) == EOF)
			fail = 1;
		if (!j || json_dump_callback(j, dump_indented, &fail,
					     JSON_INDENT(2) |
					     JSON_PRESERVE_ORDER) < 0)
			fail = 1;
		json_decref(j);
	}
	if (fputs("\n]\n", stdout) == EOF || fflush(stdout) != 0)
		fail = 1;
	return fail;
}

/* The VM the command is about (json_error_name()); "" for none. A valid
 * name fits: none is cut. */
static char error_name[33];

void json_error_name(const char *name)
{
	error_name[0] = '\0';
	if (name && vm_name_valid(name))
		snprintf(error_name, sizeof(error_name), "%s", name);
}

int print_json_error(void)
{
	const char *why = error_last();
	json_t *j = json_object();

	/* first, as in a cluster node's {"name", "error"} */
	if (error_name[0])
		json_object_set_new(j, "name", json_string(error_name));
	json_object_set_new(j, "error", json_string(why[0] ? why : "failed"));
	if (error_last_usage())
		json_object_set_new(j, "usage", json_true());
	print_json(j);
	return 1;
}

int parse_json_only(int argc, char **argv, const char *usage, int max_words,
		    int *json)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	if (json)
		*json = 0;
	getopt_reset();
	while ((c = cmd_getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h')
			return show_usage(usage) - 1;
		if (c != 'j')
			return bad_option(usage, argv, c);
		if (!json)
			return usage_error(usage, "unknown option '%s'",
					   argv[optind - 1]);
		*json = 1;
	}
	if (argc - optind > max_words)
		return usage_error(usage, "unexpected argument '%s'",
				   argv[optind + max_words]);
	return 0;
}

int parse_help_only(int argc, char **argv, const char *usage, int max_words)
{
	return parse_json_only(argc, argv, usage, max_words, NULL);
}

int run_subcommand(struct nook_ctx *ctx, int argc, char **argv,
		   const struct subcommand *subs, size_t n, const char *usage)
{
	if (argc < 2)
		return usage_error(usage, "which subcommand?");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help"))
		return show_usage(usage);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(subs[i].name, argv[1]))
			return subs[i].fn(ctx, argc - 1, argv + 1);
	return usage_error(usage, "unknown subcommand '%s'", argv[1]);
}

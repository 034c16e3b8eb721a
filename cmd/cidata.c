/* nook cidata build|show: the NoCloud seed ISO on its own. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cidata.h"
#include "cmd.h"
#include "common.h"

static const char usage_cidata[] =
	"usage: nook cidata build -o OUT.iso --user-data FILE [options]\n"
	"       nook cidata build OUT.iso USER-DATA [META-DATA]\n"
	"       nook cidata show ISO [--file NAME] [--json]\n"
	"\n"
	"'nook cidata build --help' and 'nook cidata show --help' say more.\n";

static const char usage_build[] =
	"usage: nook cidata build -o OUT.iso --user-data FILE [options]\n"
	"       nook cidata build OUT.iso USER-DATA [META-DATA]\n"
	"\n"
	"Writes a NoCloud seed: an ISO9660 volume labelled cidata (Rock Ridge\n"
	"and Joliet) that cloud-init reads at first boot. Every input is checked\n"
	"first; OUT is replaced only when the whole ISO has been written.\n"
	"FILE may be '-' for standard input, OUT '-' for standard output (not\n"
	"a terminal; what was written is then said on stderr).\n"
	"\n"
	"  -o, --output OUT.iso          where to write the ISO\n"
	"  -u, --user-data FILE          #cloud-config, #! script, #include,\n"
	"                                #cloud-boothook, jinja, MIME, or gzip\n"
	"  -m, --meta-data FILE          use this meta-data as it is\n"
	"  -N, --network-config FILE     network config (v1 or v2 YAML)\n"
	"  -V, --vendor-data FILE        vendor-data (same forms as user-data)\n"
	"  -i, --instance-id ID          default: derived from the inputs\n"
	"  -H, --hostname NAME           local-hostname (default: nook)\n"
	"  -k, --ssh-authorized-key FILE a public key file; repeatable\n"
	"      --json                    print what was written as JSON\n"
	"\n"
	"Without --meta-data, nook writes meta-data with instance-id,\n"
	"local-hostname and public-keys.\n";

static const char usage_show[] =
	"usage: nook cidata show ISO [--file NAME] [--json]\n"
	"\n"
	"Reads an ISO with libiso9660: its volume id and each file with its\n"
	"size, or one file's bytes to standard output. Exits 1 when the ISO is\n"
	"not a cidata volume.\n"
	"\n"
	"  -f, --file NAME   write the file NAME to standard output\n"
	"      --json        print the listing as JSON\n";

/* The inputs of one build, as read from their files. */
struct build_input {
	const char *out;
	const char *path[4]; /* user-data, meta-data, network-config, vendor-data */
	struct buf data[4];
	const char *instance_id;
	const char *hostname;
	struct strvec key_files;
	int json;
};

enum { UD, MD, NC, VD };
static const char *const seed_name[4] = {
	"user-data", "meta-data", "network-config", "vendor-data"
};

/* As much of a seed file as cidata's checks take: a larger one (or one
 * that never ends, /dev/zero) is refused, not read until memory runs out. */
#define SEED_FILE_MAX ((size_t)16 << 20)

static int read_input(const char *path, struct buf *b)
{
	return read_file_max(strcmp(path, "-") ? path : "/dev/stdin", b,
			     SEED_FILE_MAX);
}

static const char *display(const char *path)
{
	return strcmp(path, "-") ? path : "(stdin)";
}

/* A warning for each key of input i (user-data or vendor-data, checked)
 * that cloud-init would skip as a typo. */
static void warn_typos(const struct build_input *in, int i)
{
	struct strvec typos = STRVEC_INIT;

	cidata_cloud_config_typos(display(in->path[i]), in->data[i].p ?
				  in->data[i].p : "", in->data[i].len, &typos);
	for (size_t k = 0; k < typos.n; k++)
		warnf("%s", typos.v[k]);
	strvec_clear(&typos);
}

static int check_inputs(struct build_input *in, const char **form)
{
	for (int i = 0; i < 4; i++)
		if (in->path[i] && read_input(in->path[i], &in->data[i]) < 0)
			return -1;
	if (cidata_check_user_data(display(in->path[UD]), in->data[UD].p,
				   in->data[UD].len, form) < 0)
		return -1;
	if (in->path[MD] && cidata_check_yaml(display(in->path[MD]),
					      in->data[MD].p, in->data[MD].len) < 0)
		return -1;
	if (in->path[NC] && cidata_check_yaml(display(in->path[NC]),
					      in->data[NC].p, in->data[NC].len) < 0)
		return -1;
	if (in->path[VD] && cidata_check_user_data(display(in->path[VD]),
						   in->data[VD].p,
						   in->data[VD].len, NULL) < 0)
		return -1;
	if (in->instance_id && cidata_check_instance_id(in->instance_id) < 0)
		return -1;
	if (in->hostname && cidata_check_hostname(in->hostname) < 0)
		return -1;
	warn_typos(in, UD);
	if (in->path[VD])
		warn_typos(in, VD);
	return 0;
}

/* Fill files[] in the order cloud-localds writes them; returns the count. */
static size_t collect_files(struct build_input *in, struct cidata_file *files)
{
	static const int order[] = { UD, MD, NC, VD };
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		int k = order[i];

		if (k != MD && !in->path[k])
			continue;
		files[n].name = seed_name[k];
		files[n].data = in->data[k].p;
		files[n].len = in->data[k].len;
		n++;
	}
	return n;
}

static int render_meta(struct build_input *in, char **iid_out)
{
	struct strvec keys = STRVEC_INIT;
	struct cidata_file files[4];
	struct cidata_meta meta;
	size_t n;
	int ret = -1;

	for (size_t i = 0; i < in->key_files.n; i++) {
		struct buf kb = BUF_INIT;
		int rc = read_input(in->key_files.v[i], &kb);

		if (rc == 0)
			rc = cidata_parse_public_keys(display(in->key_files.v[i]),
						      kb.p, kb.len, &keys);
		buf_free(&kb);
		if (rc < 0)
			goto out;
	}
	meta.hostname = in->hostname ? in->hostname : "nook";
	meta.keys = (const char *const *)keys.v;
	meta.nkeys = keys.n;
	if (in->instance_id) {
		*iid_out = xstrdup(in->instance_id);
	} else {
		/* meta-data is still empty here: the id covers the rest */
		n = collect_files(in, files);
		*iid_out = cidata_instance_id(files, n, &meta);
	}
	meta.instance_id = *iid_out;
	cidata_render_meta_data(&meta, &in->data[MD]);
	ret = 0;
out:
	strvec_clear(&keys);
	return ret;
}

/* s as JSON, or null when it is not UTF-8: a path or an ISO's file name
 * may be any bytes, and JSON carries UTF-8 only. */
static json_t *json_text(const char *s)
{
	json_t *j = json_string(s);

	return j ? j : json_null();
}

static int report(struct build_input *in, const struct cidata_file *files,
		  size_t n, const char *form, const char *iid)
{
	json_t *j, *arr;

	if (!in->json) {
		/* the ISO itself went to stdout for "-" */
		FILE *f = strcmp(in->out, "-") ? stdout : stderr;
		char *out = str_escaped(in->out);

		fprintf(f, "wrote %s: cidata volume, user-data is %s\n",
			strcmp(in->out, "-") ? out : "standard output", form);
		free(out);
		for (size_t i = 0; i < n; i++)
			fprintf(f, "  %-15s %8zu bytes\n", files[i].name,
				files[i].len);
		if (iid)
			fprintf(f, "  instance-id     %s\n", iid);
		return 0;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:s,s:I}", "name",
						     files[i].name, "size",
						     (json_int_t)files[i].len));
	j = json_pack("{s:o,s:s,s:s,s:o}", "path", json_text(in->out),
		      "user_data_form", form, "volume_id", "cidata", "files",
		      arr);
	if (iid)
		json_object_set_new(j, "instance_id", json_string(iid));
	return print_json(j);
}

static void build_input_free(struct build_input *in)
{
	for (int i = 0; i < 4; i++)
		buf_free(&in->data[i]);
	strvec_clear(&in->key_files);
}

/* The cloud-localds form, OUT USER-DATA [META-DATA], and what goes
 * together: 0 to go on, else the usage error's exit status. */
static int build_words(int argc, char **argv, struct build_input *in)
{
	if (optind < argc && !in->out)
		in->out = argv[optind++];
	if (optind < argc && !in->path[UD])
		in->path[UD] = argv[optind++];
	if (optind < argc && !in->path[MD])
		in->path[MD] = argv[optind++];
	if (optind < argc)
		return usage_error(usage_build, "unexpected argument '%s'",
				   argv[optind]);
	if (!in->out || !in->path[UD])
		return usage_error(usage_build, "%s is required",
				   in->out ? "--user-data" : "--output");
	if (in->json && !strcmp(in->out, "-"))
		return usage_error(usage_build, "--json and '-o -' both write "
				   "to standard output: give the ISO a file");
	if (in->path[MD] && (in->instance_id || in->hostname ||
			     in->key_files.n))
		return usage_error(usage_build, "--meta-data is used as it is: "
				   "put instance-id, hostname and keys in it "
				   "instead of --instance-id, --hostname or "
				   "--ssh-authorized-key");
	return 0;
}

/* 0 to go on, -1 after --help, else the usage error's exit status. */
static int build_parse(int argc, char **argv, struct build_input *in)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "user-data", required_argument, NULL, 'u' },
		{ "meta-data", required_argument, NULL, 'm' },
		{ "network-config", required_argument, NULL, 'N' },
		{ "vendor-data", required_argument, NULL, 'V' },
		{ "instance-id", required_argument, NULL, 'i' },
		{ "hostname", required_argument, NULL, 'H' },
		{ "ssh-authorized-key", required_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	getopt_reset();
	while ((c = cmd_getopt_long(argc, argv, ":o:u:m:N:V:i:H:k:h", opts,
				    NULL)) != -1) {
		switch (c) {
		case 'o': in->out = optarg; break;
		case 'u': in->path[UD] = optarg; break;
		case 'm': in->path[MD] = optarg; break;
		case 'N': in->path[NC] = optarg; break;
		case 'V': in->path[VD] = optarg; break;
		case 'i': in->instance_id = optarg; break;
		case 'H': in->hostname = optarg; break;
		case 'k': strvec_push(&in->key_files, optarg); break;
		case 'J': in->json = 1; break;
		case 'h': return show_usage(usage_build) - 1;
		default: return bad_option(usage_build, argv, c);
		}
	}
	return build_words(argc, argv, in);
}

static int cidata_build(struct nook_ctx *ctx, int argc, char **argv)
{
	struct build_input in = { 0 };
	struct cidata_file files[4];
	const char *form = NULL;
	char *iid = NULL;
	size_t n;
	int ret = build_parse(argc, argv, &in);

	(void)ctx;
	if (ret) {
		ret = ret < 0 ? 0 : ret;
		goto out;
	}
	ret = 1;
	/* a seed another user could swap would run their user-data */
	if (check_inputs(&in, &form) < 0 ||
	    (strcmp(in.out, "-") && path_unswappable(in.out, "the seed") < 0))
		goto out;
	if (!in.path[MD] && render_meta(&in, &iid) < 0)
		goto out;
	n = collect_files(&in, files);
	if (cidata_write_iso(in.out, files, n, 0644) < 0)
		goto out;
	ret = report(&in, files, n, form, iid);
out:
	if (ret == 1 && in.json)
		print_json_error();
	build_input_free(&in);
	free(iid);
	return ret;
}

static int show_listing(const char *iso, const struct cidata_listing *l,
			int json)
{
	json_t *arr;

	if (!json) {
		/* names from the ISO: anyone's bytes, shown escaped */
		char *s = str_escaped(l->volume_id);

		printf("volume  %s\n", s);
		free(s);
		for (size_t i = 0; i < l->n; i++) {
			s = str_escaped(l->entries[i].name);
			printf("  %-15s %8llu bytes\n", s,
			       (unsigned long long)l->entries[i].size);
			free(s);
		}
		return 0;
	}
	arr = json_array();
	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(arr, json_pack("{s:o,s:I}", "name",
			json_text(l->entries[i].name), "size",
			(json_int_t)l->entries[i].size));
	return print_json(json_pack("{s:o,s:s,s:o}", "path", json_text(iso),
				    "volume_id", l->volume_id, "files", arr));
}

/* cidata_iso_each()'s put: to stdout, file (arg) named if that fails. */
static int put_stdout(const void *p, size_t n, void *arg)
{
	if (write_all(STDOUT_FILENO, p, n) < 0)
		return error_errno("writing %s to standard output",
				   (const char *)arg);
	return 0;
}

/* Write file of iso to stdout as it is read (a file may claim 4 GiB).
 * 0 or -1. */
static int show_file(const char *iso, const char *file)
{
	return cidata_iso_each(iso, file, put_stdout, (void *)file);
}

static int cidata_show(struct nook_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cidata_listing l;
	const char *file = NULL, *iso;
	int c, json = 0, ret = 1;

	(void)ctx;
	getopt_reset();
	while ((c = cmd_getopt_long(argc, argv, ":f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': file = optarg; break;
		case 'J': json = 1; break;
		case 'h': return show_usage(usage_show);
		default: return bad_option(usage_show, argv, c);
		}
	}
	if (optind + 1 != argc)
		return usage_error(usage_show, optind == argc ? "which ISO?" :
				   "show takes one ISO");
	/* a file's bytes are no JSON, and --json would be silently lost */
	if (file && json)
		return usage_error(usage_show, "--file writes the file's bytes "
				   "as they are: --json is for the listing");
	iso = argv[optind];
	if (cidata_iso_list(iso, &l) < 0)
		return json ? print_json_error() : 1;
	if (!cidata_is_volume_id(l.volume_id))
		errorf("%s: not a cidata volume (its volume id is \"%s\"); "
		       "cloud-init's NoCloud looks for the label cidata", iso,
		       l.volume_id);
	else if (file)
		ret = show_file(iso, file) < 0 ? 1 : 0;
	else
		ret = show_listing(iso, &l, json);
	cidata_listing_free(&l);
	return ret == 1 && json ? print_json_error() : ret;
}

int cmd_cidata(struct nook_ctx *ctx, int argc, char **argv)
{
	static const struct subcommand subs[] = {
		{ "build", cidata_build },
		{ "show", cidata_show },
	};

	return run_subcommand(ctx, argc, argv, subs, ARRAY_SIZE(subs),
			      usage_cidata);
}

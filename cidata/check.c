/* Checking user-data, YAML files and public keys before anything is written. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>
#include <zlib.h>

#include "cidata.h"

/*
 * cloud-init's own limits are memory and time; these stop what would only
 * exhaust them: a gzip bomb, a file that never ends (/dev/zero), and
 * nesting that makes parsers crawl (libyaml's time grows with the square
 * of the depth: 100,000 levels take 25 s; PyYAML gives up near 5,000).
 * A NoCloud seed is small: 16 MiB is far more than any real one.
 */
#define SEED_MAX_BYTES (16u << 20)
#define MAX_GUNZIPPED SEED_MAX_BYTES
#define SEED_MAX_DEPTH 1000

static const char *node_kind(const yaml_node_t *n)
{
	return n->type == YAML_SEQUENCE_NODE ? "a list" : "a single value";
}

static int check_size(const char *name, size_t len)
{
	if (len > SEED_MAX_BYTES)
		return errorf("%s: %zu bytes, more than the %u MiB nook takes "
			      "for a seed file", name, len, SEED_MAX_BYTES >> 20);
	return 0;
}

/* The 1-based line and column (in characters) of byte offset off. */
static void line_col(const char *data, size_t len, size_t off, size_t *line,
		     size_t *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && i < len; i++) {
		unsigned char c = (unsigned char)data[i];

		if (c == '\n' || (c == '\r' && (i + 1 >= len ||
						 data[i + 1] != '\n'))) {
			(*line)++;
			*col = 1;
		} else if ((c & 0xc0) != 0x80) {
			(*col)++; /* not a UTF-8 continuation byte */
		}
	}
}

/* Say where and why the parser stopped. */
static int parse_error(const char *name, const char *data, size_t len,
		       const yaml_parser_t *p)
{
	size_t line = p->problem_mark.line + 1, col = p->problem_mark.column + 1;
	const char *problem = p->problem ? p->problem : "invalid YAML";

	/* the reader (bad bytes: NUL, other control characters, invalid
	 * UTF-8) leaves the mark at 0:0 and gives the offset instead */
	if (p->error == YAML_READER_ERROR) {
		line_col(data, len, p->problem_offset, &line, &col);
		if (p->problem_value >= 0)
			return errorf("%s:%zu:%zu: %s (byte 0x%02x)", name, line,
				      col, problem, (unsigned)p->problem_value);
	}
	if (p->context)
		return errorf("%s:%zu:%zu: %s %s", name, line, col, problem,
			      p->context);
	return errorf("%s:%zu:%zu: %s", name, line, col, problem);
}

int cidata_yaml_depth(const char *name, const char *data, size_t len,
		      int max, int whole_stream)
{
	yaml_parser_t p;
	yaml_event_t ev;
	int depth = 0, ret = 0, done = 0;

	if (!yaml_parser_initialize(&p))
		return errorf("%s: cannot start the YAML parser", name);
	yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
	while (!done && yaml_parser_parse(&p, &ev)) {
		if (ev.type == YAML_SEQUENCE_START_EVENT ||
		    ev.type == YAML_MAPPING_START_EVENT)
			depth++;
		else if (ev.type == YAML_SEQUENCE_END_EVENT ||
			 ev.type == YAML_MAPPING_END_EVENT)
			depth--;
		done = ev.type == YAML_STREAM_END_EVENT ||
		       (!whole_stream && ev.type == YAML_DOCUMENT_END_EVENT);
		if (depth > max) {
			ret = errorf("%s:%zu:%zu: nested more than %d levels "
				     "deep", name, ev.start_mark.line + 1,
				     ev.start_mark.column + 1, max);
			done = 1;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return ret;
}

int cidata_check_yaml(const char *name, const char *data, size_t len)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	int ret = 0;

	if (check_size(name, len) < 0 || cidata_yaml_depth(name, data, len, SEED_MAX_DEPTH, 0) < 0)
		return -1;
	if (!yaml_parser_initialize(&parser))
		return errorf("%s: cannot start the YAML parser", name);
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	if (!yaml_parser_load(&parser, &doc)) {
		ret = parse_error(name, data, len, &parser);
		yaml_parser_delete(&parser);
		return ret;
	}
	root = yaml_document_get_root_node(&doc);
	if (root && root->type != YAML_MAPPING_NODE &&
	    !(root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
		ret = errorf("%s:%zu:%zu: the top level must be a mapping "
			     "(key: value lines), not %s", name,
			     root->start_mark.line + 1,
			     root->start_mark.column + 1, node_kind(root));
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return ret;
}

static int gunzip(const char *name, const char *data, size_t len,
		  struct buf *out)
{
	z_stream z;
	char chunk[65536];
	int rc;

	memset(&z, 0, sizeof(z));
	/* 16 + MAX_WBITS: expect a gzip header, not a raw zlib stream. */
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return errorf("%s: cannot start gzip decompression", name);
	z.next_in = (unsigned char *)data;
	z.avail_in = (uInt)len;
	do {
		z.next_out = (unsigned char *)chunk;
		z.avail_out = sizeof(chunk);
		rc = inflate(&z, Z_NO_FLUSH);
		if (rc != Z_OK && rc != Z_STREAM_END) {
			inflateEnd(&z);
			return errorf("%s: gzip data is damaged (%s)", name,
				      z.msg ? z.msg : "truncated");
		}
		buf_add(out, chunk, sizeof(chunk) - z.avail_out);
		if (out->len > MAX_GUNZIPPED) {
			inflateEnd(&z);
			return errorf("%s: gzip data expands past %u MiB",
				      name, MAX_GUNZIPPED >> 20);
		}
	} while (rc != Z_STREAM_END && (z.avail_in > 0 || z.avail_out == 0));
	inflateEnd(&z);
	if (rc != Z_STREAM_END)
		return errorf("%s: gzip data is truncated", name);
	return 0;
}

enum form_kind { F_YAML, F_OPAQUE, F_JINJA };

/* cloud-init matches these prefixes case-insensitively after leading
 * white space; longer prefixes come before their own prefixes. */
static const struct form {
	const char *prefix;
	const char *what;
	enum form_kind kind;
} forms[] = {
	{ "#cloud-config-archive", "cloud-config archive", F_OPAQUE },
	{ "#cloud-config", "cloud-config", F_YAML },
	{ "#!", "script", F_OPAQUE },
	{ "#include-once", "include list", F_OPAQUE },
	{ "#include", "include list", F_OPAQUE },
	{ "#cloud-boothook", "boothook", F_OPAQUE },
	{ "#part-handler", "part handler", F_OPAQUE },
	{ "## template:", "jinja template", F_JINJA },
	{ "content-type:", "MIME multipart", F_OPAQUE },
	{ "mime-version:", "MIME multipart", F_OPAQUE },
};

static const char accepted[] =
	"user-data must start with one of:\n"
	"  #cloud-config        a YAML mapping of cloud-config modules\n"
	"  #!                   a script, run once at first boot\n"
	"  #include             URLs to include, one a line\n"
	"  #cloud-boothook      a script run early on every boot\n"
	"  ## template: jinja   then one of these on the next line\n"
	"  Content-Type: multipart/mixed  (MIME multipart)\n"
	"or be any of these compressed with gzip";

static const struct form *match_form(const char *p, const char *end)
{
	while (p < end && isspace((unsigned char)*p))
		p++;
	for (size_t i = 0; i < ARRAY_SIZE(forms); i++) {
		size_t n = strlen(forms[i].prefix);

		if ((size_t)(end - p) >= n && !strncasecmp(p, forms[i].prefix, n))
			return &forms[i];
	}
	return NULL;
}

/* The first line of data, for an error message: at most 40 bytes of it,
 * printable ASCII as it is and every other byte as \xNN, so that no
 * escape sequence in the file reaches the terminal. The caller frees. */
static char *first_line(const char *data, size_t len)
{
	struct buf b = BUF_INIT;

	for (size_t n = 0; n < len && n < 40; n++) {
		unsigned char c = (unsigned char)data[n];

		if (c == '\n' || c == '\r')
			break;
		if (c == '"' || c == '\\')
			buf_addf(&b, "\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			buf_add(&b, &data[n], 1);
		else
			buf_addf(&b, "\\x%02x", c);
	}
	buf_add(&b, "", 0);
	return b.p;
}

/* Does the line [p, eol) say "## template: jinja"? */
static int is_jinja_header(const char *p, const char *eol)
{
	const char *tag = "## template:";

	while (p < eol && isspace((unsigned char)*p))
		p++;
	p += strlen(tag); /* match_form() already saw the tag */
	while (p < eol && (*p == ' ' || *p == '\t'))
		p++;
	return eol - p >= 5 && !strncasecmp(p, "jinja", 5);
}

static int check_text(const char *name, const char *data, size_t len,
		      const char **what)
{
	const char *end = data + len;
	const struct form *f;
	const char *nl, *rest;

	if (len == 0) {
		*what = "empty";
		return 0;
	}
	f = match_form(data, end);
	if (!f) {
		char *line = first_line(data, len);

		errorf("%s:1: unrecognised user-data \"%s\"\n%s", name, line,
		       accepted);
		free(line);
		return -1;
	}
	*what = f->what;
	if (f->kind == F_YAML)
		return cidata_check_yaml(name, data, len);
	if (f->kind == F_OPAQUE)
		return 0;
	/* "## template: jinja": the rest is rendered in the guest, so only
	 * its form can be checked here, not its YAML. */
	nl = memchr(data, '\n', len);
	if (!nl)
		return errorf("%s:1: a jinja template needs one of the forms "
			      "below on its second line\n%s", name, accepted);
	rest = nl + 1;
	if (!is_jinja_header(data, nl))
		return errorf("%s:1: only \"## template: jinja\" templates "
			      "are supported", name);
	f = match_form(rest, end);
	if (!f || f->kind == F_JINJA)
		return errorf("%s:2: a jinja template must go on with one of "
			      "the forms below\n%s", name, accepted);
	*what = "jinja template";
	return 0;
}

int cidata_check_user_data(const char *name, const char *data, size_t len,
			   const char **form)
{
	const char *what = NULL;
	int ret;

	if (check_size(name, len) < 0)
		return -1;
	if (len >= 2 && (unsigned char)data[0] == 0x1f &&
	    (unsigned char)data[1] == 0x8b) {
		struct buf plain = BUF_INIT;
		char *inner = xasprintf("%s (gunzipped)", name);

		ret = gunzip(name, data, len, &plain);
		if (ret == 0)
			ret = check_text(inner, plain.p, plain.len, &what);
		free(inner);
		buf_free(&plain);
		if (ret == 0 && form)
			*form = "gzip";
		return ret;
	}
	ret = check_text(name, data, len, &what);
	if (ret == 0 && form)
		*form = what;
	return ret;
}

/*
 * The top-level keys of cloud-init's cloud-config schema
 * (schema-cloud-config-v1.json, Debian 12's 22.4 and upstream's at
 * 01a3bf2), deprecated ones too, and the settings of its own cloud.cfg that
 * user-data may also set. Only for telling a typo: a key missing here is
 * not refused.
 */
static const char *const cloud_config_keys[] = {
	"allow_public_ssh_keys", "allow_userdata", "ansible", "apk_repos",
	"apt", "apt_pipelining", "apt_reboot_if_required", "apt_update",
	"apt_upgrade", "authkey_hash", "autoinstall", "bootcmd",
	"byobu_by_default", "ca-certs", "ca_certs", "chef", "chpasswd",
	"cloud_config_modules", "cloud_final_modules", "cloud_init_modules",
	"create_hostname_file", "datasource", "datasource_list",
	"datasource_pkg_list", "def_log_file", "device_aliases",
	"disable_ec2_metadata", "disable_piwiz", "disable_root",
	"disable_root_opts", "disk_setup", "drivers", "enable_rpi_connect",
	"fan", "final_message", "fqdn", "fs_setup", "groups", "growpart",
	"grub-dpkg", "grub_dpkg", "hostname", "keyboard", "landscape",
	"launch-index", "locale", "locale_configfile", "log_basic", "log_cfgs",
	"logcfg", "lxd", "manage_etc_hosts", "manage_resolv_conf",
	"manual_cache_clean", "mcollective", "merge_how", "merge_type",
	"migrate", "mount_default_fields", "mounts", "no_ssh_fingerprints",
	"ntp", "output", "package_reboot_if_required", "package_update",
	"package_upgrade", "packages", "password", "phone_home", "power_state",
	"prefer_fqdn_over_hostname", "preserve_hostname", "puppet",
	"random_seed", "reporting", "resize_rootfs", "resolv_conf",
	"rh_subscription", "rpi_interfaces", "rpi_userconf", "rsyslog",
	"runcmd", "salt_minion", "snap", "spacewalk", "ssh",
	"ssh_authorized_keys", "ssh_deletekeys", "ssh_fp_console_blacklist",
	"ssh_genkeytypes", "ssh_import_id", "ssh_key_console_blacklist",
	"ssh_keys", "ssh_publish_hostkeys", "ssh_pwauth", "ssh_quiet_keygen",
	"swap", "syslog_fix_perms", "system_info", "timezone",
	"ubuntu_advantage", "ubuntu_pro", "updates", "user", "users",
	"vendor_data", "vendor_data2", "version", "wireguard", "write_files",
	"yum_repo_dir", "yum_repos", "zypper",
	NULL
};

/*
 * PyYAML's merge key (a plain "<<") brings the keys of the mapping it
 * holds (or of each in a list) up into its own: those are followed, so
 * deep. A file of more keys than cloud-init has is no cloud-config a
 * person typed: past KEYS_MAX its keys are not looked at (each look is
 * up to a hundred edit distances).
 */
#define MERGE_DEPTH 4
#define KEYS_MAX 1000

static void typos_in(const char *name, yaml_document_t *doc,
		     const yaml_node_t *map, int depth, size_t *looked,
		     struct strvec *out);

/* The keys a merge key's value v brings in: its own, or those of each
 * mapping in it. */
static void typos_merged(const char *name, yaml_document_t *doc,
			 const yaml_node_t *v, int depth, size_t *looked,
			 struct strvec *out)
{
	if (v->type == YAML_MAPPING_NODE) {
		typos_in(name, doc, v, depth, looked, out);
		return;
	}
	if (v->type != YAML_SEQUENCE_NODE)
		return;
	for (yaml_node_item_t *i = v->data.sequence.items.start;
	     i < v->data.sequence.items.top; i++) {
		yaml_node_t *m = yaml_document_get_node(doc, *i);

		if (m && m->type == YAML_MAPPING_NODE)
			typos_in(name, doc, m, depth, looked, out);
	}
}

/* A warning in out for each key of mapping map in doc that cloud-init
 * does not know but is a typo of one it does; *looked counts the keys
 * looked at. */
static void typos_in(const char *name, yaml_document_t *doc,
		     const yaml_node_t *map, int depth, size_t *looked,
		     struct strvec *out)
{
	const char *const *lists[] = { cloud_config_keys };

	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start;
	     pr < map->data.mapping.pairs.top && *looked < KEYS_MAX; pr++) {
		yaml_node_t *k = yaml_document_get_node(doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(doc, pr->value);
		const char *key, *near;
		char *shown;

		(*looked)++;
		if (!k || k->type != YAML_SCALAR_NODE)
			continue;
		key = (const char *)k->data.scalar.value;
		if (strlen(key) != k->data.scalar.length)
			continue; /* a NUL in it: no key of cloud-init's */
		if (!strcmp(key, "<<") && v && depth < MERGE_DEPTH &&
		    k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
			typos_merged(name, doc, v, depth + 1, looked, out);
			continue;
		}
		near = typo_of(key, lists, ARRAY_SIZE(lists));
		if (!near || !strcmp(near, key))
			continue;
		shown = str_escaped(key);
		strvec_pushf(out, "%s:%zu:%zu: cloud-init knows no key '%s' "
			     "and skips it: did you mean %s?", name,
			     k->start_mark.line + 1, k->start_mark.column + 1,
			     shown, near);
		free(shown);
	}
}

size_t cidata_cloud_config_typos(const char *name, const char *data,
				 size_t len, struct strvec *out)
{
	struct buf plain = BUF_INIT;
	char *inner = NULL;
	const struct form *f;
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	size_t before = out->n, looked = 0;

	if (len >= 2 && (unsigned char)data[0] == 0x1f &&
	    (unsigned char)data[1] == 0x8b) {
		if (gunzip(name, data, len, &plain) < 0)
			goto out;
		name = inner = xasprintf("%s (gunzipped)", name);
		data = plain.p;
		len = plain.len;
	}
	f = match_form(data, data + len);
	if (!f || f->kind != F_YAML || !yaml_parser_initialize(&parser))
		goto out;
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	if (yaml_parser_load(&parser, &doc)) {
		root = yaml_document_get_root_node(&doc);
		if (root && root->type == YAML_MAPPING_NODE)
			typos_in(name, &doc, root, 0, &looked, out);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
out:
	free(inner);
	buf_free(&plain);
	return out->n - before;
}

static int is_key_type(const char *p, size_t n)
{
	static const char *const types[] = { "ssh-", "ecdsa-", "sk-" };

	for (size_t i = 0; i < ARRAY_SIZE(types); i++)
		if (n > strlen(types[i]) && !strncmp(p, types[i], strlen(types[i])))
			return 1;
	return 0;
}

int cidata_parse_public_keys(const char *name, const char *data, size_t len,
			     struct strvec *keys)
{
	const char *p = data, *end = data + len;
	size_t lineno = 0, found = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		const char *s = p, *e = eol;

		lineno++;
		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		if (e - s >= 5 && !strncmp(s, "-----", 5))
			return errorf("%s:%zu: this is a private key; give the "
				      "public one (the .pub file)", name, lineno);
		if (s < e && *s != '#') {
			const char *sp = memchr(s, ' ', (size_t)(e - s));
			char *key;

			if (!sp || !is_key_type(s, (size_t)(sp - s)))
				return errorf("%s:%zu: not an SSH public key "
					      "(expected \"ssh-ed25519 AAAA...\")",
					      name, lineno);
			key = xasprintf("%.*s", (int)(e - s), s);
			strvec_push(keys, key);
			free(key);
			found++;
		}
		p = nl ? nl + 1 : end;
	}
	if (!found)
		return errorf("%s: holds no SSH public key", name);
	return 0;
}

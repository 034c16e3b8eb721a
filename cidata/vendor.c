/*
 * nook's vendor-data, and the user nook logs in as: pure functions.
 *
 * nook's login key goes in meta-data's public-keys, which cloud-init gives
 * to the default user only; user-data with its own users list and no
 * "default" makes no default user, and the key would land nowhere. So
 * vendor-data is a MIME multipart: the cloud-config nook always sent, and
 * a boothook that lists /etc/ssh/nook_authorized_keys (nook's key) in
 * sshd's AuthorizedKeysFile for every user. Boothooks run in cloud-init's
 * init stage, which systemd orders before sshd; the user's user-data is
 * left as it is. A cluster node's vendor-data has a second boothook: the
 * cluster's names in /etc/hosts from the first boot on, so user-data's
 * commands reach the other nodes by name; the per-boot script it leaves
 * also brings the vCPUs of a boot on one online (CIDATA_ONLINE_CPUS_ARG).
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "cidata.h"

#define BOUNDARY "nook-vendor-data-7f3a9c1e"

/* The cloud-config nook always sent as vendor-data. The host key is ours,
 * so the first ssh connection already knows it: nothing is trusted on
 * first use. */
static void render_cloud_config(const struct cidata_vendor *v,
				struct buf *out)
{
	buf_adds(out, "#cloud-config\n"
		      "# written by nook: the VM's pinned SSH host key, so no\n"
		      "# key is made at boot (RSA alone costs seconds under\n"
		      "# emulation) and none is printed to the console\n"
		      "ssh_deletekeys: true\n"
		      "ssh_genkeytypes: [ed25519]\n"
		      "no_ssh_fingerprints: true\n"
		      "ssh_fp_console_blacklist: [ssh-ed25519]\n"
		      "ssh_key_console_blacklist: [ssh-ed25519]\n"
		      "ssh_keys:\n"
		      "  ed25519_private: |\n");
	for (const char *l = v->host_key; *l;) {
		size_t n = strcspn(l, "\n");

		if (n)
			buf_addf(out, "    %.*s\n", (int)n, l);
		l += n;
		if (*l)
			l++;
	}
	buf_addf(out, "  ed25519_public: \"%.*s\"\n",
		 (int)strcspn(v->host_key_pub, "\r\n"), v->host_key_pub);
	/* A VM booted by QEMU's -kernel never runs its disk's boot loader:
	 * no need to tell grub's debconf where it lives (a perl run of
	 * debconf-set-selections, ~2.5 s under emulation). user-data can
	 * set it back. */
	if (v->direct_boot)
		buf_adds(out, "grub_dpkg:\n  enabled: false\n");
}

/* The boothook: a shell script run as root at every boot, before sshd.
 * nook's file comes first in AuthorizedKeysFile: sshd takes the first
 * file holding the key, and cloud-init's disable_root puts the same key
 * in root's own file behind a refusing command=. It also gives IPv6
 * duplicate address detection back to interfaces made from now on (see
 * CIDATA_NO_DAD_ARG). */
static void render_boothook(const char *key, struct buf *out)
{
	buf_adds(out, "#cloud-boothook\n"
		      "#!/bin/sh\n"
		      "# written by nook: its login key for whichever user the\n"
		      "# user-data makes (sshd reads this file for every user)\n"
		      "set -e\n"
		      "umask 022\n"
		      "mkdir -p /etc/ssh/sshd_config.d\n"
		      "cat > /etc/ssh/nook_authorized_keys.tmp <<'NOOK_EOF'\n");
	buf_addf(out, "%s\n", key);
	buf_adds(out, "NOOK_EOF\n"
		      "mv -f /etc/ssh/nook_authorized_keys.tmp "
		      "/etc/ssh/nook_authorized_keys\n"
		      "cat > /etc/ssh/sshd_config.d/00-nook.conf <<'NOOK_EOF'\n"
		      "# written by nook's vendor-data: its key, for any user\n"
		      "AuthorizedKeysFile /etc/ssh/nook_authorized_keys "
		      ".ssh/authorized_keys .ssh/authorized_keys2\n"
		      "# many commands at once (a script, shell --all): sshd's\n"
		      "# defaults refuse the 11th session on one connection\n"
		      "# and drop new ones past 10 in key exchange\n"
		      "MaxSessions 128\n"
		      "MaxStartups 128:30:256\n"
		      "NOOK_EOF\n"
		      "# booted with DAD off for the NICs it made (their MACs "
		      "are nook's own):\n"
		      "# interfaces made from now on do it again\n"
		      "read -r c < /proc/cmdline\n"
		      "case \" $c \" in *\" " CIDATA_NO_DAD_ARG " \"*)\n"
		      "\t{ echo 1 > /proc/sys/net/ipv6/conf/default/"
		      "accept_dad; } 2>/dev/null || :\n"
		      "esac\n");
}

/*
 * The state file's first line says where its names came from: "#seed
 * ID" from the seed ID (at boot, before sshd), "#ssh ID" from nook over
 * ssh since that seed's boot. A boot's seed (seed=ID set before the
 * script) leaves "#ssh ID" of its own ID as it is: the node rebooted on
 * its own, and the names written since are newer than its seed (a node
 * joined, or went). Any other state, a new seed's boot replaces. Over
 * ssh, nook names the seed it last wrote (its record's) with a first
 * argument "seed=ID", which the mark takes whatever the state said: it
 * matters where the state has none (from an older nook, empty) or an
 * older one (a memory snapshot's guest). Without it, the state's ID
 * stays.
 */
const char cidata_hosts_script[] =
	"hosts=/etc/hosts state=/var/lib/nook/hosts "
	"lock=/run/nook-hosts.lock\n"
	"r=0 was= own=\n"
	"case $1 in seed=*) own=${1#seed=}; shift;; esac\n"
	"exec 9> \"$lock\" && flock 9 || exit 1\n"
	"mkdir -p \"${state%/*}\" || exit 1\n"
	"[ -f \"$state\" ] && read -r was < \"$state\"\n"
	"if [ -n \"$seed\" ]; then\n"
	"\tmark=\"#seed $seed\"\n"
	"else\n"
	"\tcase $was in \"#seed \"*|\"#ssh \"*) mark=\"#ssh ${was#* }\";;\n"
	"\t*) mark=\"#ssh\";; esac\n"
	"\t[ -z \"$own\" ] || mark=\"#ssh $own\"\n"
	"fi\n"
	"if [ $# -gt 0 ] &&\n"
	"\t{ [ -z \"$seed\" ] || [ \"$was\" != \"#ssh $seed\" ]; }; then\n"
	"\tt=$(mktemp \"$state.XXXXXX\") || exit 1\n"
	"\t{ printf '%s\\n' \"$mark\"; for l; do printf '%s\\n' \"$l\"; done\n"
	"\t} > \"$t\" && mv -f \"$t\" \"$state\" || r=1\n"
	"\trm -f \"$t\"\n"
	"fi\n"
	"[ -f \"$state\" ] || exit $r\n"
	"t=$(mktemp \"$state.XXXXXX\") || exit 1\n"
	"{ grep -v '" CIDATA_HOSTS_MARK "$' \"$hosts\"; [ $? -le 1 ] &&\n"
	"\tsed -e '/^#/d' -e 's/$/" CIDATA_HOSTS_MARK "/' \"$state\"\n"
	"} > \"$t\" && cat \"$t\" > \"$hosts\" || r=1\n"
	"rm -f \"$t\"\n"
	"exit $r\n";

/* "ADDR NAME": an address and a name of letters, digits, '.', ':', '-'
 * and '_', nothing a shell's single quotes or a hosts file would take
 * otherwise. */
static int is_hosts_line(const char *l)
{
	size_t a = strspn(l, "0123456789abcdefABCDEF.:");

	if (!a || l[a] != ' ' || !l[a + 1])
		return 0;
	for (l += a + 1; *l; l++)
		if (!isalnum((unsigned char)*l) && !strchr(".-_", *l))
			return 0;
	return 1;
}

/* The second boothook, run at every boot before the init stage's
 * modules: the cluster's names as this start of the node knew them (a
 * start refreshes the seed), unless nook wrote newer ones since over ssh
 * (the cluster grew or shrank while the node ran, then it rebooted on
 * its own): those stay, and a node deleted meanwhile stays gone. It
 * also leaves a per-boot script that writes them again in the final
 * stage, before user-data's runcmd: with manage_etc_hosts, the init
 * stage's update_etc_hosts writes /etc/hosts afresh from its template
 * after the boothooks ran. The template, a dpkg conffile, is not
 * touched. */
static int render_hosts_hook(const struct cidata_vendor *v, struct buf *out)
{
	/* in the background, detached: cloud-init writes result.json once
	 * this script and the rest of its final stage are done */
	static const char online_cpus_later[] =
		"# booted on one vCPU (a crowded cluster's start): the others "
		"online once\n"
		"# cloud-init is done, also after a reboot of the node's own\n"
		"read -r c < /proc/cmdline\n"
		"case \" $c \" in *\" " CIDATA_ONLINE_CPUS_ARG " \"*)\n"
		"\t(n=0; while [ ! -e /run/cloud-init/result.json ] && "
		"[ $n -lt 900 ]; do\n"
		"\t\tn=$((n + 1)); sleep 1; done\n"
		"\t" CIDATA_ONLINE_CPUS_SH ") </dev/null >/dev/null 2>&1 &\n"
		"esac\n";

	buf_addf(out, "#cloud-boothook\n"
		      "#!/bin/sh\n"
		      "# written by nook: the names of this node's cluster, now "
		      "and in the final\n"
		      "# stage again\n"
		      "d=/var/lib/cloud/scripts/per-boot "
		      "t=/var/lib/nook/per-boot.tmp\n"
		      "mkdir -p \"$d\" \"${t%%/*}\" && cat > \"$t\" <<'NOOK_EOF' &&\n"
		      "#!/bin/sh\n"
		      "# written by nook's vendor-data: the cluster's names, "
		      "again after cloud-init's\n"
		      "# update_etc_hosts (manage_etc_hosts) wrote /etc/hosts\n"
		      "%s%s"
		      "NOOK_EOF\n"
		      "chmod 755 \"$t\" && mv -f \"$t\" \"$d/nook-cluster-hosts\"\n"
		      "seed=%lld\n"
		      "set --", online_cpus_later, cidata_hosts_script,
		 v->hosts_seed);
	for (size_t i = 0; i < v->nhosts; i++) {
		if (!is_hosts_line(v->hosts[i]))
			return errorf("vendor-data: '%s' is not an address "
				      "and a name", v->hosts[i]);
		buf_addf(out, " '%s'", v->hosts[i]);
	}
	buf_addf(out, "\n%s", cidata_hosts_script);
	return 0;
}

/* One part of the multipart; the newline before the next delimiter
 * belongs to the delimiter (RFC 2046), so each body keeps its own. */
static void add_part(struct buf *out, const char *type, const char *file,
		     const struct buf *body)
{
	buf_addf(out, "--" BOUNDARY "\n"
		      "Content-Type: %s; charset=\"us-ascii\"\n"
		      "Content-Disposition: attachment; filename=\"%s\"\n\n",
		 type, file);
	buf_add(out, body->p, body->len);
	buf_adds(out, "\n");
}

int cidata_render_vendor_data(const struct cidata_vendor *v, struct buf *out)
{
	struct strvec keys = STRVEC_INIT;
	struct buf cc = BUF_INIT, hook = BUF_INIT, names = BUF_INIT;
	int ret = -1;

	if (cidata_parse_public_keys("nook's login key", v->login_key,
				     strlen(v->login_key), &keys) < 0)
		goto out;
	if (keys.n != 1 || !strcmp(keys.v[0], "NOOK_EOF")) {
		errorf("nook's login key: expected one SSH public key line");
		goto out;
	}
	render_cloud_config(v, &cc);
	render_boothook(keys.v[0], &hook);
	if (v->nhosts && render_hosts_hook(v, &names) < 0)
		goto out;
	if (strstr(cc.p, BOUNDARY) || strstr(hook.p, BOUNDARY) ||
	    (names.p && strstr(names.p, BOUNDARY))) {
		errorf("vendor-data: a part holds the MIME boundary");
		goto out;
	}
	/* cloud-init takes it as multipart only with MIME-Version in its
	 * first 4 KiB */
	buf_adds(out, "MIME-Version: 1.0\n"
		      "Content-Type: multipart/mixed; boundary=\"" BOUNDARY
		      "\"\n\n");
	add_part(out, "text/cloud-config", "nook.cfg", &cc);
	add_part(out, "text/cloud-boothook", "nook-login-key.sh", &hook);
	if (v->nhosts)
		add_part(out, "text/cloud-boothook", "nook-cluster-hosts.sh",
			 &names);
	buf_adds(out, "--" BOUNDARY "--\n");
	ret = 0;
out:
	strvec_clear(&keys);
	buf_free(&cc);
	buf_free(&hook);
	buf_free(&names);
	return ret;
}

/* A scalar node's text, or NULL for any other node (or none). */
static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ?
		(const char *)n->data.scalar.value : NULL;
}

/* YAML's null: an empty value, ~ or null, unquoted. */
static int is_null(const yaml_node_t *n)
{
	const char *s = scalar(n);

	if (!n)
		return 1;
	if (!s || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	return !*s || !strcmp(s, "~") || !strcasecmp(s, "null");
}

/* What cloud-init's is_true() refuses: "alice: false" makes no alice. */
static int is_false(const yaml_node_t *n)
{
	static const char *const no[] = { "false", "no", "off", "0" };
	const char *s = scalar(n);

	for (size_t i = 0; s && i < ARRAY_SIZE(no); i++)
		if (!strcasecmp(s, no[i]))
			return 1;
	return 0;
}

static yaml_node_t *map_get(yaml_document_t *d, const yaml_node_t *map,
			    const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		const char *k = scalar(yaml_document_get_node(d, p->key));

		if (k && !strcmp(k, key))
			return yaml_document_get_node(d, p->value);
	}
	return NULL;
}

/* A name as a string or as a mapping's name:, else NULL. */
static const char *name_of(yaml_document_t *d, const yaml_node_t *n)
{
	if (n && n->type == YAML_MAPPING_NODE)
		n = map_get(d, n, "name");
	return is_null(n) ? NULL : scalar(n);
}

/* "alice, bob": the string form of a users list. */
static void push_words(const char *s, struct strvec *names)
{
	while (*s) {
		size_t n = strcspn(s, ",");
		const char *e = s + n;

		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		if (e > s)
			strvec_pushf(names, "%.*s", (int)(e - s), s);
		s += n;
		if (*s)
			s++;
	}
}

/* The names a users value makes, in order, as cloud-init reads its three
 * forms: a list (of names or mappings with name:), a comma-separated
 * string, a mapping of name to settings (or to a boolean). */
static void users_names(yaml_document_t *d, const yaml_node_t *users,
			struct strvec *names)
{
	if (users->type == YAML_SCALAR_NODE) {
		push_words(scalar(users), names);
	} else if (users->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *i = users->data.sequence.items.start;
		     i < users->data.sequence.items.top; i++) {
			const char *n = name_of(d, yaml_document_get_node(d, *i));

			if (n)
				strvec_push(names, n);
		}
	} else if (users->type == YAML_MAPPING_NODE) {
		for (yaml_node_pair_t *p = users->data.mapping.pairs.start;
		     p < users->data.mapping.pairs.top; p++) {
			const char *k = scalar(yaml_document_get_node(d, p->key));

			if (k && !is_false(yaml_document_get_node(d, p->value)))
				strvec_push(names, k);
		}
	}
}

/* The default user's name: user: (a name or a mapping with name:)
 * renames it, as does system_info: {default_user: {name: ...}}. */
static const char *default_user(yaml_document_t *d, const yaml_node_t *root,
				const char *image_user)
{
	const char *n = name_of(d, map_get(d, root, "user"));
	yaml_node_t *si;

	if (n)
		return n;
	si = map_get(d, root, "system_info");
	n = name_of(d, map_get(d, si, "default_user"));
	return n ? n : image_user;
}

/* The user cloud-init will have made, from the parsed user-data. */
static const char *pick_user(yaml_document_t *d, const yaml_node_t *root,
			     const char *image_user, struct strvec *names)
{
	const char *def = default_user(d, root, image_user);
	yaml_node_t *users = map_get(d, root, "users");

	/* user: puts the default user back into any users list */
	if (is_null(users) || name_of(d, map_get(d, root, "user")))
		return def;
	users_names(d, users, names);
	for (size_t i = 0; i < names->n; i++)
		if (!strcmp(names->v[i], "default"))
			return def;
	/* users: [] makes no one; root has nook's key all the same */
	return names->n ? names->v[0] : "root";
}

/* What useradd takes without --badname, near enough. */
static int user_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32 || *s == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]) &&
		    !(s[i] == '$' && i == n - 1))
			return 0;
	return 1;
}

/* #cloud-config, but not #cloud-config-archive or -jsonp. */
static int is_cloud_config(const char *data, size_t len)
{
	static const char tag[] = "#cloud-config";
	size_t i = 0, n = sizeof(tag) - 1;

	while (i < len && isspace((unsigned char)data[i]))
		i++;
	return len - i >= n && !strncasecmp(data + i, tag, n) &&
	       (len - i == n || data[i + n] != '-');
}

int cidata_login_user(const char *name, const char *data, size_t len,
		      const char *image_user, char **user)
{
	struct strvec names = STRVEC_INIT;
	yaml_parser_t parser;
	yaml_document_t doc;
	const char *pick;
	int ret = 0;

	*user = NULL;
	if (!data || !is_cloud_config(data, len)) {
		*user = xstrdup(image_user);
		return 0;
	}
	if (cidata_check_yaml(name, data, len) < 0)
		return -1;
	if (!yaml_parser_initialize(&parser))
		return errorf("%s: cannot start the YAML parser", name);
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	if (!yaml_parser_load(&parser, &doc)) {
		yaml_parser_delete(&parser);
		return errorf("%s: invalid YAML", name);
	}
	pick = pick_user(&doc, yaml_document_get_root_node(&doc), image_user,
			 &names);
	if (user_name_ok(pick))
		*user = xstrdup(pick);
	else
		ret = errorf("%s: the login user would be \"%s\", which is not "
			     "a user name nook can log in as", name, pick);
	strvec_clear(&names);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return ret;
}

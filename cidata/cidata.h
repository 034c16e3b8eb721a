/*
 * cidata: the NoCloud seed that cloud-init reads at first boot.
 *
 * Checking inputs (cidata_check_user_data, cidata_check_yaml) and rendering
 * meta-data (cidata_render_meta_data, cidata_instance_id), vendor-data
 * (cidata_render_vendor_data) and choosing the login user
 * (cidata_login_user) are pure: buffers in, buffers out.
 * cidata_write_iso() writes an ISO9660 volume labelled "cidata" (Rock Ridge
 * and Joliet, written with libarchive) into a temporary file renamed into
 * place; cidata_iso_list()/cidata_iso_read() read one back
 * with libcdio's libiso9660, and cidata_iso_holds() tells whether one
 * holds given files already.
 *
 * Every function returns 0 on success or -1 having printed what went wrong,
 * naming the input (a file name, with line and column where there is one).
 */
#ifndef NOOK_CIDATA_H
#define NOOK_CIDATA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common.h"

/* One file of the seed: its name on the volume and its bytes. */
struct cidata_file {
	const char *name;
	const char *data;
	size_t len;
};

/*
 * Check user-data the way cloud-init will take it: #cloud-config (must be a
 * YAML mapping), #! scripts, #include, #cloud-boothook, "## template: jinja"
 * followed by one of those, MIME multipart, and gzip of any of them. name
 * is used in messages. On success *form (if not NULL) is a static
 * description of what was found.
 */
int cidata_check_user_data(const char *name, const char *data, size_t len,
			   const char **form);

/*
 * Each top-level key of #cloud-config user-data (plain or gzipped, and
 * passed by cidata_check_user_data()) that cloud-init does not know but
 * is a typo of a key it does, as a warning in out: "NAME:LINE:COL: ...,
 * did you mean KEY?". cloud-init skips a key it does not know, saying so
 * at most in its log. Returns how many were added.
 */
size_t cidata_cloud_config_typos(const char *name, const char *data,
				 size_t len, struct strvec *out);

/* Walk data's YAML events (the first document's, or with whole_stream
 * every one's) and refuse nesting deeper than max, saying NAME:LINE:COL,
 * before a parser builds it (libyaml's time grows with the square of the
 * depth). A parse error is left for the caller's parser to say. */
int cidata_yaml_depth(const char *name, const char *data, size_t len,
		      int max, int whole_stream);
/*
 * Check that data parses as YAML whose top level is a mapping (an empty
 * document counts as an empty mapping). Errors read NAME:LINE:COLUMN: why.
 */
int cidata_check_yaml(const char *name, const char *data, size_t len);

/*
 * Check an authorized-keys style file: every line that is not blank or a
 * comment must be an SSH public key. Appends each key to keys.
 */
int cidata_parse_public_keys(const char *name, const char *data, size_t len,
			     struct strvec *keys);

/* What nook puts in meta-data when the user gives none. */
struct cidata_meta {
	const char *instance_id;
	const char *hostname;
	const char *const *keys;
	size_t nkeys;
};

/* Check an instance-id or a hostname given on the command line. */
int cidata_check_instance_id(const char *id);
int cidata_check_hostname(const char *name);

/* Render meta-data (YAML) for m, appending to out. */
void cidata_render_meta_data(const struct cidata_meta *m, struct buf *out);

/*
 * A deterministic instance-id for these inputs: "iid-" and 16 hex digits
 * of a hash over every file and the meta-data fields. The same inputs give
 * the same id, so rebuilding a seed does not re-provision a guest; a change
 * gives a new one. The caller frees the result.
 */
char *cidata_instance_id(const struct cidata_file *files, size_t n,
			 const struct cidata_meta *m);

/* What nook's vendor-data carries for a VM. */
struct cidata_vendor {
	const char *host_key;     /* the VM's ed25519 private host key */
	const char *host_key_pub; /* its public line */
	const char *login_key;    /* nook's public login key: one line */
	int direct_boot;          /* booted by QEMU -kernel: no grub */
	/* a cluster node's "ADDR NAME" lines for /etc/hosts, or none */
	const char *const *hosts;
	size_t nhosts;
	/* a number that names this seed among the node's seeds (nook
	 * takes the host's clock in microseconds): names nook writes over
	 * ssh after its boot win over it at a reboot of the node's own */
	long long hosts_seed;
};

/*
 * A boot on one vCPU (a crowded cluster's start) ends its kernel
 * arguments with maxcpus=1 and this: a cluster node's per-boot script,
 * seeing it, brings the other vCPUs online once cloud-init is done, so a
 * node that reboots on its own gets them back with nobody waiting for
 * it. Dotted, the kernel takes it for a module's and passes it over.
 */
#define CIDATA_ONLINE_CPUS_ARG "nook.online_cpus=1"
/* Brings every vCPU online; run as root. */
#define CIDATA_ONLINE_CPUS_SH \
	"for f in /sys/devices/system/cpu/cpu[0-9]*/online; do " \
	"read v < $f; [ \"$v\" = 1 ] || echo 1 > $f || exit 1; done"

/* The kernel argument a direct boot takes so that the NICs made at boot
 * skip IPv6 duplicate address detection; the login boothook sets the
 * default back for interfaces made later. */
#define CIDATA_NO_DAD_ARG "sysctl.net.ipv6.conf.default.accept_dad=0"

/* What ends each of the cluster's lines in /etc/hosts. */
#define CIDATA_HOSTS_MARK " # nook cluster"

/*
 * The shell script that makes its arguments, "ADDR NAME" lines, the
 * node's cluster names (kept in /var/lib/nook/hosts) and writes them into
 * /etc/hosts, each marked " # nook cluster", in place of the marked lines
 * there. With seed=ID set before it (a boot's seed), names written over
 * ssh since that seed's boot stay instead. Without arguments it writes
 * the kept names again.
 */
extern const char cidata_hosts_script[];

/*
 * Render nook's vendor-data, appending to out: a MIME multipart holding
 * the cloud-config (the pinned host key, no key generation), a boothook
 * that makes sshd accept login_key for every user, so nook gets in
 * whatever users the user-data makes, and for a cluster node a boothook
 * writing the cluster's names (cidata_hosts_script). -1 when login_key
 * is not one SSH public key, or a hosts line is not an address and a
 * name.
 */
int cidata_render_vendor_data(const struct cidata_vendor *v, struct buf *out);

/*
 * The user nook logs in as, for user-data data (name for messages; NULL
 * data: none) on an image whose default user is image_user: that user,
 * or as renamed by user: or system_info.default_user; but when users
 * lists no "default", its first user, and "root" for users: []. Only a
 * #cloud-config is read; other forms give image_user. *user is
 * allocated; the caller frees it.
 */
int cidata_login_user(const char *name, const char *data, size_t len,
		      const char *image_user, char **user);

/* Write files as a cidata ISO at path with mode (0600 when it holds
 * secrets); path is untouched on failure. */
int cidata_write_iso(const char *path, const struct cidata_file *files,
		     size_t n, mode_t mode);

/* What cidata_iso_list() found: the volume id and the root's files. */
struct cidata_entry {
	char *name;
	uint64_t size;
};
struct cidata_listing {
	char *volume_id;
	struct cidata_entry *entries;
	size_t n;
};
/* 1 when volume_id names a cidata volume (cloud-init ignores case). */
int cidata_is_volume_id(const char *volume_id);
/* List an ISO's volume id and root files. Free with cidata_listing_free(). */
int cidata_iso_list(const char *path, struct cidata_listing *l);
void cidata_listing_free(struct cidata_listing *l);
/* 1 when the file at path, of mode mode, is a cidata volume whose root
 * holds files (n of them, by name) and nothing else, each its bytes:
 * one that need not be written again. 0 otherwise (none there, another
 * volume, one that cannot be read), saying nothing. */
int cidata_iso_holds(const char *path, const struct cidata_file *files,
		     size_t n, mode_t mode);
/* Append the bytes of root file name of the ISO at path to out. */
int cidata_iso_read(const char *path, const char *name, struct buf *out);
/* Pass the bytes of root file name of the ISO at path to put, a block at
 * a time; put returns -1 having said why. 0, or -1 having said why. */
int cidata_iso_each(const char *path, const char *name,
		    int (*put)(const void *p, size_t n, void *arg), void *arg);

#endif

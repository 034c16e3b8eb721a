/*
 * images: the image store. Under DATA/images, each image is a directory
 * named by its digest (the SHA-256 of its manifest.json, which lists every
 * file with its own SHA-256), and names/NAME holds the digest a name points
 * at. Imports stage everything in images/.tmp-* and rename it into place
 * only after every checksum matched, so nothing is ever half-imported.
 *
 * Calling sequence: img_import_*(), img_pull(), img_build() or
 * img_ensure_default(); then img_resolve() to turn a name into a directory;
 * img_list(), img_remove(), img_export(). Functions return 0 or -1 having
 * said why. Nothing here prints to stdout: the long operations (pull, build)
 * say what they do through an img_report_fn the caller gives.
 */
#ifndef NOOK_IMAGES_H
#define NOOK_IMAGES_H

#include <jansson.h>

#include "common.h"

/*
 * What a long image operation says as it goes, for cmd/ to print. Which
 * fields are set depends on the kind; name (the image) always is.
 */
enum img_event_kind {
	IMG_EV_PULL_START,    /* path: the URL being downloaded */
	IMG_EV_PULL_BYTES,    /* have, total (-1: unknown), rate, tenth: the
				 transfer, at most 5 a second and at each
				 tenth of the total */
	IMG_EV_PULL_END,      /* the transfer ended, well or not */
	IMG_EV_PULL_VERIFIED, /* detail: "sha256" or "sha512" matched */
	IMG_EV_BUILD_CACHED,  /* path: the earlier build used; detail: its
				 recipe's hash */
	IMG_EV_BUILD_START,   /* path: the recipe being run (minutes) */
	IMG_EV_BUILD_DONE,    /* seconds: how long the recipe took */
	IMG_EV_DEFAULT_PULL,  /* the default image is not in the store:
				 pulling it */
	IMG_EV_DEFAULT_BUILD, /* its pull failed: building it instead */
};
struct img_event {
	enum img_event_kind kind;
	const char *name;
	const char *path;
	const char *detail;
	long long have, total; /* bytes, counting a resumed part */
	double rate;           /* bytes per second, this transfer */
	int tenth;             /* 1: have just reached a new tenth of total
				  (a line per 10% where no bar is drawn) */
	double seconds;
};
/* Hears each event of an operation; arg is the caller's own. */
typedef void img_report_fn(const struct img_event *ev, void *arg);

/* What qemu-img says of a disk (qemu-img info --output=json, -U so a
 * running VM's disk can be read): *info gets the object (caller decrefs). */
int img_disk_info(const char *path, json_t **info);

/*
 * A disk enters the store only when QEMU will open nothing but it: its
 * format is fmt ("qcow2" or "raw", as the manifest says) and qemu-img
 * agrees; a qcow2 has no backing file and no external data file (the
 * header is read before qemu-img is run, since qemu-img itself would open
 * them); a raw disk is a regular file of IMG_RAW_MIN bytes or more that does
 * not begin with text (an HTML page pulled by mistake) and carries no
 * other format's magic for QEMU's probe to find. 0, or -1 naming path and why.
 */
int img_disk_check(const char *path, const char *fmt);
#define IMG_RAW_MIN ((uint64_t)1 << 20)
/* A disk outside the store (a lone disk to import, an image named by
 * its path): its format from its first bytes (qcow2's magic, or raw) into
 * fmt, then held to img_disk_check(). */
int img_disk_probe(const char *disk, const char **fmt);
/* The pure part of img_disk_check(): head holds the first n bytes (up to
 * 4 KiB) of a file of size bytes; what names it in messages. */
int img_disk_sniff(const char *what, const char *fmt, const unsigned char *head,
		   size_t n, uint64_t size);

/* The backing file qcow2 disk's header names (caller frees), or NULL:
 * none, or no qcow2 that can be read (said). */
char *img_qcow2_backing(const char *disk);

/* 1 when name is usable as an image name: [a-z0-9][a-z0-9._-]{0,63}. */
int img_name_valid(const char *name);

/* The directory of image name in the store under data (caller frees), or
 * NULL having said nothing (*found 0; a name img_name_valid() refuses is
 * none) or why (-1 returned). */
int img_resolve(const char *data, const char *name, char **dir);

/*
 * Check a manifest's files against the directory holding them: every
 * file named plainly (no '/', no ".."), present, with the SHA-256 the
 * manifest says. 0 or -1 naming the first file that fails.
 */
int img_verify(const char *dir, const json_t *manifest);

/*
 * What an import did to its name: dir, the image directory the name points
 * at now; was, the one it pointed at before, when that was another that is
 * still there (NULL otherwise). Read under the store's lock as the name
 * moved, so two imports of one name each learn what they replaced. Every
 * img_import_*(), img_pull() and img_build() fills one when given it (NULL:
 * not wanted); img_named_free() frees it.
 */
struct img_named {
	char *dir;
	char *was;
};
#define IMG_NAMED_INIT { NULL, NULL }
void img_named_free(struct img_named *n);

/* Import an image directory (manifest.json and its files), copying.
 * Every import checks each disk with img_disk_check() before it is
 * committed, and refuses files that are not regular files. */
int img_import_dir(const char *data, const char *src, const char *name,
		   struct img_named *out);

/* Import a bare disk (qcow2 or raw), with an optional kernel, initrd and
 * default cmdline; nook writes the manifest, giving each file's size. */
int img_import_disk(const char *data, const char *disk, const char *kernel,
		    const char *initrd, const char *cmdline, const char *name,
		    struct img_named *out);

/*
 * Import a bundle: a tar (plain, gzip, xz or zstd) holding manifest.json
 * first, then the files it lists. Entries that are not plain files (links,
 * devices, FIFOs), absolute paths, "..", files the manifest does not list
 * and files whose size is not the one it gives ("size", in bytes) are
 * refused before they are read; so is a sparse file without a size (its
 * holes would be hashed as zeros, for as long as the header claims).
 */
int img_import_bundle(const char *data, const char *bundle, const char *name,
		      struct img_named *out);
/* 1 when path's file name is a bundle's: .tar, .tar.*, .tgz, .txz, .tzst,
 * in any case of letters. */
int img_bundle_name(const char *path);

/* Write image name as a bundle at out (atomically), compressed as its
 * name says: .tar.gz/.tgz gzip, .tar.xz/.txz xz, .tar none, another
 * .tar.EXT refused, else zstd; "-" is standard output (zstd; a terminal
 * is refused). */
int img_export(const char *data, const char *name, const char *out);

/*
 * Every image: [{name, digest, dir, size, boot, created}], the named ones
 * first, then with name null those no name points at (an import, pull or
 * build moved their name on while a VM still used them).
 */
json_t *img_list(const char *data);

/*
 * The store's lock, DATA/images/.lock. img_commit() takes it to rename an
 * image in and move its name. Whoever removes an image holds it from
 * looking for the image's users until the image is gone (img_remove() and
 * img_forget() want it held); a VM's first start holds it shared from
 * resolving its image until its record names that image, so a remove sees
 * the VM or the start sees no image. The fd for img_unlock(), or -1 having
 * said why; at most a minute is waited for another holder.
 */
int img_lock(const char *data, int shared);
void img_unlock(int fd);

/* Remove name; the image's files go when no other name points at them.
 * The store's lock held. */
int img_remove(const char *data, const char *name);

/* Remove image directory dir (images/<digest>) unless a name points at
 * it: 1 removed, 0 kept (named), -1 having said why. The store's lock
 * held, and no VM found using it under that lock. */
int img_forget(const char *data, const char *dir);

/* The image directory whose digest begins with prefix (12 to 64 lower-case
 * hex digits, as 'nook images list' shows 12) into *dir (caller frees), or
 * NULL for none or a prefix of another form; -1 when several begin so. */
int img_find_digest(const char *data, const char *prefix, char **dir);
/*
 * The store's leftovers, appended to out as paths: the staging directories
 * of imports that were killed (their pid gone) and partial downloads (and
 * the records of the files they came from) no pull is writing (a rerun of
 * the pull would resume one; a prune drops it). Returns how many.
 */
int img_stale(const char *data, struct strvec *out);

/* What to pull: filled by img_pull_resolve() from a URL or known name. */
struct img_pull {
	char *url;
	char *name;          /* the store name (default: from the URL) */
	char *checksums_url; /* a SHA256SUMS-style list, or NULL */
	const char *sha256;  /* expected digests, or NULL */
	const char *sha512;
	int insecure;
	img_report_fn *report; /* hears the pull's events; NULL: silent */
	void *report_arg;
	struct img_named *named; /* filled when the image is stored */
};
/*
 * Turn ref (a URL or a known name such as debian-12) into p->url, and for
 * a known name its vendor's checksum list; base_url points a known name at
 * a mirror. p->name is kept if set.
 */
int img_pull_resolve(const char *ref, const char *base_url,
		     struct img_pull *p);
/* Find file's checksum in a checksums list (coreutils or BSD style). The
 * caller frees *hex (lower-case). */
int img_find_checksum(const char *sums, const char *file, char **hex);
/*
 * Download p->url (resuming a partial download of the same URL when it
 * came from the same file, by its size and strong ETag or date, or with
 * a checksum through a redirect its size alone; else starting over, said
 * in a warning, the part kept until the new download's first byte),
 * verify
 * its checksum before anything enters the store (a mismatch deletes the
 * download), then import it as p->name. A plain http URL without a
 * checksum from the command line or over https is refused unless
 * p->insecure; without a checksum, a redirect may only go to https.
 */
int img_pull(const char *data, struct img_pull *p);

/* How a build runs: where its recipe is, where it keeps what it built, and
 * who hears of it. */
struct img_build_opts {
	const char *recipes;   /* directory of NAME.sh recipes (dirs.recipes) */
	const char *cache;     /* built images (dirs.cache, or --cache) */
	img_report_fn *report; /* NULL: silent */
	void *report_arg;
};
/*
 * Build image name with o->recipes/NAME.sh into o->cache, unless the cache
 * holds a build of this very recipe already (named by its SHA-256), then
 * import it into the store under data. Running a recipe needs root
 * (debootstrap); a failed build stores nothing.
 */
int img_build(const char *data, const char *name,
	      const struct img_build_opts *o, struct img_named *out);
/* The names of the recipes in dir (NAME of each NAME.sh that is a valid
 * image name), sorted, appended to out; none when dir cannot be read. */
void img_recipe_names(const char *dir, struct strvec *out);

/* The image a VM gets when none is asked for. */
#define IMG_DEFAULT "debian-12"
/*
 * Make sure IMG_DEFAULT is in the store under data: when it is not, pull
 * it from its vendor, and when the pull fails, build it with o's recipe
 * and cache. o->report hears each step (IMG_EV_DEFAULT_*, then the pull's
 * or the build's own events). 0 once it is there, or -1 having said why.
 */
int img_ensure_default(const char *data, const struct img_build_opts *o);

/* What a VM boots from an image directory, as its manifest.json says:
 * absolute paths (kernel, initrd NULL when it has none), the kernel
 * arguments and the login user (NULL when it names none). */
struct img_boot {
	char *disk, *kernel, *initrd, *cmdline, *user;
};
/* Read dir/manifest.json into b; -1 naming what is wrong (a login user
 * or kernel arguments that img_user_valid() or img_cmdline_valid()
 * refuse, too). The one place a manifest's boot fields are read. */
int img_boot_read(const char *dir, struct img_boot *b);
void img_boot_free(struct img_boot *b);
/* The login user of an image whose manifest names none: the default
 * image's. */
#define IMG_DEFAULT_USER "debian"
/* 1 when user is a plain user name ([a-z_][a-z0-9_-]{0,31}). */
int img_user_valid(const char *user);
/* x86 Linux's COMMAND_LINE_SIZE: the kernel arguments and their NUL. */
#define IMG_CMDLINE_MAX 2048
/* 1 when cmdline can be an image's kernel arguments: no control
 * character, shorter than IMG_CMDLINE_MAX; else 0, with why it cannot
 * appended to why ("has a control character ..."). */
int img_cmdline_valid(const char *cmdline, struct buf *why);

#endif

/*
 * images: the image store. Under DATA/images, each image is a directory
 * named by its digest (the SHA-256 of its manifest.json, which lists every
 * file with its own SHA-256), and names/NAME holds the digest a name points
 * at. Imports stage everything in images/.tmp-* and rename it into place
 * only after every checksum matched, so nothing is ever half-imported.
 *
 * Calling sequence: img_import_*() or img_build(); then img_resolve() to
 * turn a name into a directory; img_list(), img_remove(), img_export().
 * Functions return 0 or -1 having said why.
 */
#ifndef NOOK_IMAGES_H
#define NOOK_IMAGES_H

#include <jansson.h>

#include "common.h"

/* What qemu-img says of a disk (qemu-img info --output=json, -U so a
 * running VM's disk can be read): *info gets the object (caller decrefs). */
int img_disk_info(const char *path, json_t **info);

/* 1 when name is usable as an image name: [a-z0-9][a-z0-9._-]{0,63}. */
int img_name_valid(const char *name);

/* The directory of image name in the store under data (caller frees), or
 * NULL having said nothing (*found 0) or why (-1 returned). */
int img_resolve(const char *data, const char *name, char **dir);

/*
 * Check a manifest's files against the directory holding them: every
 * file named plainly (no '/', no ".."), present, with the SHA-256 the
 * manifest says. 0 or -1 naming the first file that fails.
 */
int img_verify(const char *dir, const json_t *manifest);

/* Import an image directory (manifest.json and its files), copying. */
int img_import_dir(const char *data, const char *src, const char *name);

/* Import a bare disk (qcow2 or raw), with an optional kernel, initrd and
 * default cmdline; nook writes the manifest. */
int img_import_disk(const char *data, const char *disk, const char *kernel,
		    const char *initrd, const char *cmdline, const char *name);

/*
 * Import a bundle: a tar (plain, gzip, xz or zstd) holding manifest.json
 * and its files. Entries that are not plain files (links, devices, FIFOs),
 * absolute paths and ".." are refused before anything is written.
 */
int img_import_bundle(const char *data, const char *bundle, const char *name);

/* Write image name as a tar.zst bundle at out (atomically). */
int img_export(const char *data, const char *name, const char *out);

/* Every named image: [{name, digest, dir, size, boot, created}]. */
json_t *img_list(const char *data);

/* Remove name; the image's files go when no other name points at them. */
int img_remove(const char *data, const char *name);

/* What to pull: filled by img_pull_resolve() from a URL or known name. */
struct img_pull {
	char *url;
	char *name;          /* the store name (default: from the URL) */
	char *checksums_url; /* a SHA256SUMS-style list, or NULL */
	const char *sha256;  /* expected digests, or NULL */
	const char *sha512;
	int insecure;
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
 * Download p->url (resuming a partial download of the same URL), verify
 * its checksum before anything enters the store (a mismatch deletes the
 * download), then import it as p->name. A plain http URL without a
 * checksum is refused unless p->insecure.
 */
int img_pull(const char *data, struct img_pull *p);

#endif

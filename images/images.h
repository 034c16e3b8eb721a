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

#endif

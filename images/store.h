/* Inside the images module: what store.c shares with bundle.c. */
#ifndef NOOK_IMAGES_STORE_H
#define NOOK_IMAGES_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "images.h"

/* 1 for a plain file name: no '/', not "." or "..", no leading dot. */
int img_plain_name(const char *name);
/* The most of a manifest.json nook reads, and of any one file. */
#define IMG_MANIFEST_MAX ((size_t)1 << 20)
#define IMG_FILE_MAX ((uint64_t)1 << 40)
/* Read and parse a manifest.json (at most IMG_MANIFEST_MAX bytes) into
 * *m (the caller decrefs): a JSON object whose "files" is an object of
 * objects. 0, or -1 saying what is wrong, naming where (NULL: path), so
 * that a staged manifest is named as the user knows it. */
int img_manifest_load(const char *path, const char *where, json_t **m);
/* img_boot_read() of manifest m, already loaded, of the image in dir;
 * where names m in messages. */
int img_boot_parse(const char *dir, const json_t *m, const char *where,
		   struct img_boot *b);
/*
 * Before reading a file of an image: name must be one manifest m lists
 * (manifest.json aside), of the size it gives if it gives one, no larger
 * than IMG_FILE_MAX, and given a size when it is sparse. where names the
 * source in messages. 0 or -1.
 */
int img_member_check(const char *where, const json_t *m, const char *name,
		     uint64_t size, int sparse);
/* A fresh staging directory in the store (caller frees), or NULL. */
char *img_stage(const char *data);
/*
 * Check stage's manifest against sums (file name -> the sha256 of each
 * file, manifest.json's too, taken as it was written into stage: nothing
 * is read again), rename stage to images/<digest> and point name at it.
 * from, what the user imports (a bundle, a directory, a disk), is what
 * the messages name. Takes stage: removed on failure, freed always. sums
 * stays the caller's.
 */
int img_commit(const char *data, char *stage, const char *from,
	       const char *name, const json_t *sums, struct img_named *out);

/*
 * Bundles (bundle.c), in two steps so that a bundle in memory reads as one
 * in a file: img_bundle_reader() is an archive reader for every form of
 * bundle (tar: plain, gzip, xz or zstd), the caller opens it and frees it
 * with archive_read_free(); img_bundle_extract() reads each member into
 * stage, checking it before reading it: *m gets the manifest (the caller
 * decrefs), sums each member's SHA-256. bundle names it in messages. 0 or
 * -1 having said why.
 */
struct archive;
struct archive *img_bundle_reader(void);
int img_bundle_extract(struct archive *a, const char *bundle,
		       const char *stage, json_t **m, json_t *sums);

#endif

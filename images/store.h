/* Inside the images module: what store.c shares with bundle.c. */
#ifndef NOOK_IMAGES_STORE_H
#define NOOK_IMAGES_STORE_H

#include <jansson.h>

/* 1 for a plain file name: no '/', not "." or "..", no leading dot. */
int img_plain_name(const char *name);
/* A fresh staging directory in the store (caller frees), or NULL. */
char *img_stage(const char *data);
/*
 * Check stage's manifest against sums (file name -> the sha256 of each
 * file, manifest.json's too, taken as it was written into stage: nothing
 * is read again), rename stage to images/<digest> and point name at it.
 * Takes stage: removed on failure, freed always. sums stays the caller's.
 */
int img_commit(const char *data, char *stage, const char *name,
	       const json_t *sums);

#endif

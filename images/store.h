/* Inside the images module: what store.c shares with bundle.c. */
#ifndef NOOK_IMAGES_STORE_H
#define NOOK_IMAGES_STORE_H

/* 1 for a plain file name: no '/', not "." or "..", no leading dot. */
int img_plain_name(const char *name);
/* A fresh staging directory in the store (caller frees), or NULL. */
char *img_stage(const char *data);
/* Verify stage's manifest and files, rename it to images/<digest> and
 * point name at it. Takes stage: removed on failure, freed always. */
int img_commit(const char *data, char *stage, const char *name);
/* Copy a file to a new dst. */
int img_copy_file(const char *src, const char *dst);

#endif

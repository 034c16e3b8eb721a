/* An image's manifest.json (images/manifest.c, images/store.c): the
 * store's loader, the boot fields a VM starts from, the checks of each
 * file a bundle or a directory brings and the verification of an image
 * directory against it. The input is the manifest; the directory holds
 * nothing else. */
#include <string.h>

#include "fuzz.h"
#include "images.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = fuzz_dir();
	char *path = xasprintf("%s/manifest.json", dir);
	struct img_boot b;
	struct buf why = BUF_INIT;
	json_t *m = NULL, *f;
	const char *key;

	fuzz_write(path, data, size);
	if (img_boot_read(dir, &b) == 0) {
		if (!b.disk || (b.user && !img_user_valid(b.user)) ||
		    (b.cmdline && !img_cmdline_valid(b.cmdline, &why)))
			abort();
		img_boot_free(&b);
	}
	buf_free(&why);
	if (img_manifest_load(path, NULL, &m) == 0) {
		json_object_foreach(json_object_get(m, "files"), key, f) {
			img_member_check(dir, m, key, 0, 0);
			img_member_check(dir, m, key, 1 << 20, 1);
		}
		img_verify(dir, m);
		json_decref(m);
	}
	free(path);
	return 0;
}

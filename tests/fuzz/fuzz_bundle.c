/* An image bundle (images/bundle.c): libarchive's tar reader (plain,
 * gzip, xz or zstd) and nook's checks of each member before it is read,
 * the manifest first. The input is the bundle; its members go into a
 * scratch staging directory, emptied after each run. The commit (which
 * runs qemu-img on the disks) is not fuzzed. */
#include <archive.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "images.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *stage = xasprintf("%s/stage", fuzz_dir());
	struct archive *a = img_bundle_reader();
	json_t *m = NULL, *sums = json_object();

	if (mkdir(stage, 0700) < 0)
		abort();
	if (archive_read_open_memory(a, data, size) == ARCHIVE_OK &&
	    img_bundle_extract(a, "fuzz.tar", stage, &m, sums) == 0 && !m)
		abort();
	json_decref(m);
	json_decref(sums);
	archive_read_free(a);
	remove_tree(stage);
	free(stage);
	return 0;
}

/* A seed ISO as 'nook cidata show' reads one back (cidata/iso_read.c,
 * libcdio's libiso9660 with Rock Ridge and Joliet): its volume id, its
 * root directory and each file in it. The input is the ISO image. */
#include "cidata.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *path = xasprintf("%s/seed.iso", fuzz_dir());
	struct cidata_listing l;
	struct buf b = BUF_INIT;

	fuzz_write(path, data, size);
	if (cidata_iso_list(path, &l) == 0) {
		for (size_t i = 0; i < l.n && i < 8; i++) {
			b.len = 0;
			cidata_iso_read(path, l.entries[i].name, &b);
		}
		cidata_listing_free(&l);
	}
	buf_free(&b);
	free(path);
	return 0;
}

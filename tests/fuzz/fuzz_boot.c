/* A kernel and an initrd from an image, as direct boot reads them
 * (vm/boot.c): the bzImage header and its payload, the ELF program
 * headers and notes for a PVH entry, the uncompressed cpio archives at an
 * initrd's start, and the unpacking of what follows (gzip, xz, zstd, lz4:
 * the seed lz4-zeros unpacks to 16 MiB). The same input is taken as a
 * kernel and as an initrd. */
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"

/* what a 4 MiB guest would take of an initrd: small, so that a bomb
 * (the seed regress-zstd-bomb, 2 MiB) is cut short quickly */
#define MAX ((size_t)1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf in = BUF_INIT, out = BUF_INIT;
	size_t off, len;

	if (vm_bzimage_payload(data, size, &off, &len) == 0 &&
	    (off > size || len > size - off || len == 0))
		abort();
	vm_elf_has_pvh(data, size);
	if (vm_cpio_prefix(data, size) > size)
		abort();
	buf_add(&in, data, size);
	vm_boot_unpack_kernel(&in, MAX, &out);
	if (out.len > MAX)
		abort();
	buf_free(&out);
	vm_boot_unpack_initrd(&in, MAX, &out);
	if (out.len > MAX)
		abort();
	buf_free(&out);
	buf_free(&in);
	return 0;
}

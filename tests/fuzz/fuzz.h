/* What the fuzz targets that need files share: one scratch directory per
 * process, removed at exit. */
#ifndef NOOK_FUZZ_H
#define NOOK_FUZZ_H

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *fuzz_scratch;

static void fuzz_scratch_remove(void)
{
	remove_tree(fuzz_scratch);
}

/* The scratch directory: $TMPDIR (else /tmp)/nook-fuzz-XXXXXX. */
static inline const char *fuzz_dir(void)
{
	if (!fuzz_scratch) {
		const char *tmp = getenv("TMPDIR");

		fuzz_scratch = xasprintf("%s/nook-fuzz-XXXXXX",
					 tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(fuzz_scratch))
			abort();
		atexit(fuzz_scratch_remove);
	}
	return fuzz_scratch;
}

/* Write len bytes of data to the file at path, replacing it (no fsync:
 * write_file_atomic()'s would cost a thousand runs a second). */
static inline void fuzz_write(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || write_all(fd, data, len) < 0 || close(fd) < 0)
		abort();
}

#endif

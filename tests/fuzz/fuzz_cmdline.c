/* The kernel command line merge (vm/qemu.c): an image's own arguments,
 * then the user's --append, the input split at its first newline into the
 * two. The merge of a merge with the same extra words adds nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xstrndup((const char *)data, size);
	char *nl = strchr(s, '\n');
	const char *extra = "";
	struct buf once = BUF_INIT, twice = BUF_INIT;

	if (nl) {
		*nl = '\0';
		extra = nl + 1;
	}
	vm_cmdline_merge(s, extra, &once);
	vm_cmdline_merge(once.p, extra, &twice);
	if (!once.p || strlen(once.p) != once.len || strcmp(once.p, twice.p))
		abort();
	buf_free(&once);
	buf_free(&twice);
	free(s);
	return 0;
}

/* Sizes and numbers from the command line and nook.yaml (common/parse.c):
 * parse_size() and parse_int() on any string. A success must hold what the
 * parsers promise: a size above zero, a number inside its bounds. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xstrndup((const char *)data, size);
	uint64_t bytes = 0;
	long v = 0;

	if (parse_size("size", s, &bytes) == 0 && bytes == 0)
		abort();
	if (parse_int("number", s, LONG_MIN, LONG_MAX, &v) < 0)
		v = 0;
	if (parse_int("port", s, 0, 65535, &v) == 0 && (v < 0 || v > 65535))
		abort();
	if (parse_int("count", s, -3, 3, &v) == 0 && (v < -3 || v > 3))
		abort();
	free(s);
	return 0;
}

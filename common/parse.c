/* Bounded number and size parsing: the one place strings become numbers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

int parse_int(const char *what, const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < min || v > max)
		return errorf("bad %s '%s': expected a whole number from %ld "
			      "to %ld", what, s, min, max);
	*out = v;
	return 0;
}

int parse_size(const char *what, const char *s, uint64_t *bytes)
{
	static const char units[] = "KMGT";
	const char *p = s, *u;
	uint64_t v = 0;
	int shift = 0;

	if (*p < '0' || *p > '9')
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			goto bad;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	u = *p ? strchr(units, *p & ~0x20) : NULL;
	if (u) {
		shift = 10 * (int)(u - units + 1);
		p++;
		if (*p == 'i')
			p++;
	}
	if (*p == 'B' || *p == 'b')
		p++;
	if (*p || v == 0 || v > (UINT64_MAX >> shift))
		goto bad;
	*bytes = v << shift;
	return 0;
bad:
	return errorf("bad %s '%s': expected a size such as 512M or 2G", what,
		      s);
}

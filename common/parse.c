/*
 * Strings and bytes become numbers here: bounded integer and size parsing
 * (strict: no spaces, no signs nor units beyond the documented ones), and
 * the FNV-1a hash.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int parse_int(const char *what, const char *s, long min, long max, long *out)
{
	const char *digits = s[0] == '-' ? s + 1 : s;
	char *end;
	long v;

	/* strtol() alone would take leading blanks and a '+' */
	errno = 0;
	v = is_digit(digits[0]) ? strtol(s, &end, 10) : 0;
	if (!is_digit(digits[0]) || *end || errno || v < min || v > max)
		return errorf("bad %s '%s': expected a whole number from %ld "
			      "to %ld", what, s, min, max);
	*out = v;
	return 0;
}

/* log2 of the multiplier unit letter c stands for; 0 when c is no unit. */
static int unit_shift(char c)
{
	static const char units[] = "KMGT";

	for (int i = 0; units[i]; i++)
		if (c == units[i] || c == units[i] + ('a' - 'A'))
			return 10 * (i + 1);
	return 0;
}

int parse_size(const char *what, const char *s, uint64_t *bytes)
{
	const char *p = s;
	uint64_t v = 0;
	int shift;

	if (!is_digit(*p))
		goto bad;
	for (; is_digit(*p); p++) {
		if (v > (UINT64_MAX - 9) / 10)
			goto bad;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	shift = unit_shift(*p);
	if (shift) {
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

uint64_t fnv1a64_add(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

uint64_t fnv1a64(const void *data, size_t len)
{
	return fnv1a64_add(0xcbf29ce484222325ULL, data, len);
}

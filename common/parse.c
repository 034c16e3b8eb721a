/*
 * Strings and bytes become numbers here: bounded integer and size parsing
 * (strict: no spaces, no signs nor units beyond the documented ones), the
 * FNV-1a hash, and the distance between words that finds a typo's word.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), *d, r;

	/* keys are short: a guess for anything long is no use anyway */
	if (la > 64 || lb > 64)
		return (size_t)-1;
	d = xmalloc((la + 1) * (lb + 1) * sizeof(*d));
#define D(i, j) d[(i) * (lb + 1) + (j)]
	for (size_t i = 0; i <= la; i++)
		D(i, 0) = i;
	for (size_t j = 0; j <= lb; j++)
		D(0, j) = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t best = D(i - 1, j - 1) + (a[i - 1] != b[j - 1]);

			if (D(i - 1, j) + 1 < best)
				best = D(i - 1, j) + 1;
			if (D(i, j - 1) + 1 < best)
				best = D(i, j - 1) + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && D(i - 2, j - 2) + 1 < best)
				best = D(i - 2, j - 2) + 1;
			D(i, j) = best;
		}
	r = D(la, lb);
#undef D
	free(d);
	return r;
}

const char *typo_of(const char *word, const char *const *const *lists,
		    size_t n)
{
	const char *best = NULL;
	size_t bd = (size_t)-1, len = strlen(word);

	for (size_t l = 0; l < n; l++)
		for (const char *const *k = lists[l]; k && *k; k++) {
			size_t kl = strlen(*k), d;

			if (!strcmp(word, *k))
				return *k;
			/* NAME for name: only the case is wrong; a word
			 * longer or shorter by three is three edits away */
			if (!strcasecmp(word, *k))
				d = 0;
			else if (len > kl + 2 || kl > len + 2)
				continue;
			else
				d = edit_distance(word, *k);
			if (d < bd) {
				bd = d;
				best = *k;
			}
		}
	/* a third of the word wrong, at most two edits: a typo. A word of
	 * three letters or fewer is a typo only in its case: one letter
	 * off, it is as likely a word of its own (app, ssl) */
	if (len <= 3)
		return bd == 0 ? best : NULL;
	return bd <= 2 && bd * 3 <= len + 1 ? best : NULL;
}

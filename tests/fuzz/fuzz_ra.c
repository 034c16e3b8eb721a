/* Frames a guest puts on its cluster's network (net/ra.c):
 * net_ra_answer() and net_ra_unasked() on any bytes, copied to a buffer
 * of their exact size (a read past them is ASan's). An answer fits where
 * it was written, is an advertisement to the sender or to all nodes, and
 * is itself never answered nor taken for a report (two responders must
 * not talk to each other forever); no frame is both a solicitation and a
 * report. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef size_t (*ra_fn)(const unsigned char *, size_t,
			const unsigned char[6], unsigned char *, size_t);

static void check(ra_fn fn, const unsigned char *in, size_t size)
{
	static const unsigned char mac[6] = { 0x02, 0x6e, 1, 2, 3, 4 };
	unsigned char out[128], again[128];
	size_t n = fn(in, size, mac, out, sizeof(out));

	if (!n)
		return;
	if (n != 78 || out[54] != 134 || out[21] != 255 ||
	    memcmp(out + 6, mac, 6) ||
	    (memcmp(out, in + 6, 6) && memcmp(out, "\x33\x33\0\0\0\1", 6)))
		abort();
	if (net_ra_answer(out, n, mac, again, sizeof(again)) ||
	    net_ra_unasked(out, n, mac, again, sizeof(again)))
		abort();
	/* too little room for the answer: none */
	if (fn(in, size, mac, again, n - 1))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char mac[6] = { 0x02, 0x6e, 1, 2, 3, 4 };
	unsigned char *in = malloc(size ? size : 1), out[128];

	if (!in)
		abort();
	memcpy(in, data, size);
	check(net_ra_answer, in, size);
	check(net_ra_unasked, in, size);
	if (net_ra_answer(in, size, mac, out, sizeof(out)) &&
	    net_ra_unasked(in, size, mac, out, sizeof(out)))
		abort();
	free(in);
	return 0;
}

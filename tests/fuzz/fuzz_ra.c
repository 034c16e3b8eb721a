/* Frames a guest puts on its cluster's network (net/ra.c):
 * net_ra_answer() on any bytes. An answer fits where it was written, is
 * an advertisement to the sender or to all nodes, and is itself never
 * answered (two responders must not talk to each other forever). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char mac[6] = { 0x02, 0x6e, 1, 2, 3, 4 };
	unsigned char out[128], again[128];
	size_t n = net_ra_answer(data, size, mac, out, sizeof(out));

	if (!n)
		return 0;
	if (n != 78 || out[54] != 134 || out[21] != 255 ||
	    memcmp(out + 6, mac, 6) ||
	    (memcmp(out, data + 6, 6) && memcmp(out, "\x33\x33\0\0\0\1", 6)))
		abort();
	if (net_ra_answer(out, n, mac, again, sizeof(again)))
		abort();
	/* too little room for the answer: none */
	if (net_ra_answer(data, size, mac, again, n - 1))
		abort();
	return 0;
}

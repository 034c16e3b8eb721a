/* shell --all --json's outputs made UTF-8 (cmd/fanout.c): any bytes, the
 * first byte saying whether the cap cut them (truncated). What comes out
 * is UTF-8 jansson takes, valid input is kept as it is, each input byte
 * gives at most one U+FFFD (3 bytes), a second pass changes nothing, and
 * a cut stream differs from a whole one only by a last U+FFFD. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* data made UTF-8 as a stream cut (or not) at the cap. */
static struct fanout_text utf8(const uint8_t *data, size_t size, int cut)
{
	struct fanout_text t = { BUF_INIT, cut };

	buf_add(&t.b, data, size);
	fanout_text_utf8(&t);
	return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fanout_text whole, cut, again;
	json_t *j;

	if (size < 1)
		return 0;
	whole = utf8(data + 1, size - 1, 0);
	cut = utf8(data + 1, size - 1, 1);
	j = json_stringn(whole.b.p, whole.b.len);
	if (!j || whole.b.len > 3 * (size - 1))
		abort();
	json_decref(j);
	j = json_stringn((const char *)data + 1, size - 1);
	if (j && (whole.b.len != size - 1 ||
		  memcmp(whole.b.p, data + 1, size - 1)))
		abort();
	json_decref(j);
	again = utf8((const uint8_t *)whole.b.p, whole.b.len, data[0] & 1);
	if (again.b.len != whole.b.len ||
	    memcmp(again.b.p, whole.b.p, whole.b.len))
		abort();
	if (cut.b.len != whole.b.len &&
	    (cut.b.len + 3 != whole.b.len ||
	     memcmp(cut.b.p, whole.b.p, cut.b.len) ||
	     memcmp(whole.b.p + cut.b.len, "\xef\xbf\xbd", 3)))
		abort();
	buf_free(&whole.b);
	buf_free(&cut.b);
	buf_free(&again.b);
	return 0;
}

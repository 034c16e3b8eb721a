/* Rendering meta-data and deriving an instance-id: pure functions. */
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "cidata.h"

/* Append s as a YAML double-quoted scalar, escaping what must be. */
static void yaml_quote(struct buf *out, const char *s)
{
	buf_adds(out, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			buf_addf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			buf_addf(out, "\\x%02x", c);
		else
			buf_add(out, s, 1);
	}
	buf_adds(out, "\"");
}

void cidata_render_meta_data(const struct cidata_meta *m, struct buf *out)
{
	buf_adds(out, "instance-id: ");
	yaml_quote(out, m->instance_id);
	buf_adds(out, "\nlocal-hostname: ");
	yaml_quote(out, m->hostname);
	buf_adds(out, "\n");
	if (m->nkeys == 0)
		return;
	buf_adds(out, "public-keys:\n");
	for (size_t i = 0; i < m->nkeys; i++) {
		buf_adds(out, "  - ");
		yaml_quote(out, m->keys[i]);
		buf_adds(out, "\n");
	}
}

int cidata_check_instance_id(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 128)
		return errorf("instance-id must be 1 to 128 characters");
	for (const char *p = id; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-_.:", *p))
			return errorf("instance-id \"%s\": only letters, digits "
				      "and - _ . : are allowed", id);
	return 0;
}

int cidata_check_hostname(const char *name)
{
	size_t label = 0, n = strlen(name);

	if (n == 0 || n > 253)
		return errorf("hostname must be 1 to 253 characters");
	for (const char *p = name; *p; p++) {
		if (*p == '.') {
			if (label == 0)
				return errorf("hostname \"%s\": empty label", name);
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-')
			return errorf("hostname \"%s\": only letters, digits, "
				      "'-' and '.' are allowed", name);
		if (++label > 63)
			return errorf("hostname \"%s\": a label is longer than "
				      "63 characters", name);
	}
	if (name[0] == '-' || label == 0)
		return errorf("hostname \"%s\" must start and end with a letter "
			      "or digit", name);
	return 0;
}

/* Hash a length before the bytes, so ("ab","c") and ("a","bc") differ.
 * FNV-1a: this id needs no secrecy, only to change when the inputs do. */
static uint64_t hash_field(uint64_t h, const char *data, size_t len)
{
	unsigned char n[8];

	for (int i = 0; i < 8; i++) /* little-endian: the same on any host */
		n[i] = (unsigned char)((uint64_t)len >> (8 * i));
	h = fnv1a64_add(h, n, sizeof(n));
	return fnv1a64_add(h, data, len);
}

char *cidata_instance_id(const struct cidata_file *files, size_t n,
			 const struct cidata_meta *m)
{
	uint64_t h = fnv1a64("", 0); /* FNV's offset basis */

	for (size_t i = 0; i < n; i++) {
		h = hash_field(h, files[i].name, strlen(files[i].name));
		h = hash_field(h, files[i].data, files[i].len);
	}
	h = hash_field(h, m->hostname, strlen(m->hostname));
	for (size_t i = 0; i < m->nkeys; i++)
		h = hash_field(h, m->keys[i], strlen(m->keys[i]));
	return xasprintf("iid-%016llx", (unsigned long long)h);
}

/* The user's cloud-init files as 'nook cidata' and 'nook local start'
 * check them before a guest sees them (cidata/check.c): user-data in each
 * of its forms (#cloud-config YAML, scripts, #include, boothooks, jinja,
 * MIME multipart, gzip of any) and cloud-config's typo'd keys, a YAML
 * file that must be a mapping (meta-data, network-config), and an
 * authorized-keys file. */
#include <stdint.h>
#include <stdlib.h>

#include "cidata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *form = NULL;
	struct strvec keys = STRVEC_INIT, typos = STRVEC_INIT;

	if (cidata_check_user_data("user-data", s, size, &form) == 0) {
		if (!form)
			abort();
		/* (its input must have passed the check) */
		cidata_cloud_config_typos("user-data", s, size, &typos);
		strvec_clear(&typos);
	}
	cidata_check_yaml("meta-data", s, size);
	cidata_parse_public_keys("keys", s, size, &keys);
	strvec_clear(&keys);
	return 0;
}

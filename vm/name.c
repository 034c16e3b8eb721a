/* VM names: they appear in paths and QEMU arguments, so only a safe set. */
#include <string.h>

#include "common.h"
#include "vm.h"

int vm_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 32 || name[0] < 'a' || name[0] > 'z')
		return 0;
	return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

int vm_name_check(const char *name)
{
	size_t n = strlen(name);

	if (n == 0)
		return errorf("a VM name cannot be empty");
	if (n > 32)
		return errorf("VM name \"%s\" is longer than 32 characters", name);
	if (name[0] < 'a' || name[0] > 'z')
		return errorf("VM name \"%s\" must start with a lower-case letter",
			      name);
	for (size_t i = 1; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return errorf("VM name \"%s\": '%c' is not allowed; use "
				      "a-z, 0-9 and '-'", name, c);
	}
	return 0;
}

/* VM names: they appear in paths and QEMU arguments, so only a safe set. */
#include <string.h>

#include "common.h"
#include "vm.h"

enum name_fault { NAME_OK, NAME_EMPTY, NAME_LONG, NAME_START, NAME_CHAR };

/* The one rule, [a-z][a-z0-9-]{0,31}: which part name breaks first (*bad
 * is the character for NAME_CHAR). */
static enum name_fault name_fault(const char *name, char *bad)
{
	size_t n = strlen(name), ok;

	if (n == 0)
		return NAME_EMPTY;
	if (n > 32)
		return NAME_LONG;
	if (name[0] < 'a' || name[0] > 'z')
		return NAME_START;
	ok = strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-");
	*bad = name[ok];
	return ok == n ? NAME_OK : NAME_CHAR;
}

int vm_name_valid(const char *name)
{
	char bad;

	return name_fault(name, &bad) == NAME_OK;
}

int vm_name_check(const char *name)
{
	char bad;

	switch (name_fault(name, &bad)) {
	case NAME_OK:
		return 0;
	case NAME_EMPTY:
		return usage_errorf("a VM name cannot be empty");
	case NAME_LONG:
		return usage_errorf("VM name \"%s\" is longer than 32 characters",
			      name);
	case NAME_START:
		return usage_errorf("VM name \"%s\" must start with a lower-case "
			      "letter", name);
	case NAME_CHAR:
		break;
	}
	return usage_errorf("VM name \"%s\": '%c' is not allowed; use a-z, 0-9 and "
		      "'-'", name, bad);
}

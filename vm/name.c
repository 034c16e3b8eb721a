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

/* name's fault said of a what ("VM", "cluster"); NAME_LONG is the
 * caller's to say. */
static int say_fault(const char *what, const char *name, enum name_fault f,
		     char bad)
{
	switch (f) {
	case NAME_OK:
		return 0;
	case NAME_EMPTY:
		return usage_errorf("a %s name cannot be empty", what);
	case NAME_LONG:
		return usage_errorf("%s name \"%s\" is longer than 32 "
				    "characters", what, name);
	case NAME_START:
		return usage_errorf("%s name \"%s\" must start with a "
				    "lower-case letter", what, name);
	case NAME_CHAR:
		break;
	}
	return usage_errorf("%s name \"%s\": '%c' is not allowed; use a-z, "
			    "0-9 and '-'", what, name, bad);
}

int vm_name_check(const char *name)
{
	char bad = 0;
	/* (apart: an argument's order of evaluation is not C's to say, and
	 * bad must be set before it is passed) */
	enum name_fault f = name_fault(name, &bad);

	return say_fault("VM", name, f, bad);
}

/* The most nodes a cluster named name can have: its longest node name
 * (NAME-N) is 32 characters; 0 when even NAME-1 is longer. */
static int most_nodes(const char *name)
{
	size_t len = strlen(name);
	int most = 0;

	for (size_t k = len + 2; k <= 32 && most < VM_CLUSTER_MAX_NODES; k++)
		most = most * 10 + 9;
	return most < VM_CLUSTER_MAX_NODES ? most : VM_CLUSTER_MAX_NODES;
}

int vm_cluster_name_check(const char *name, int nodes, int exists)
{
	char bad = 0;
	enum name_fault f = name_fault(name, &bad);
	int n = nodes > 0 ? nodes : 1, lo = 1, hi = 9;
	size_t most = 30; /* 32, less "-" and one digit */

	/* the faults of the name itself, whatever its nodes */
	if (f != NAME_OK && f != NAME_LONG)
		return say_fault("cluster", name, f, bad);
	while (hi < n) {
		lo = hi + 1;
		hi = hi * 10 + 9;
		most--;
	}
	if (hi > VM_CLUSTER_MAX_NODES)
		hi = VM_CLUSTER_MAX_NODES;
	if (strlen(name) <= most)
		return 0;
	if (exists)
		return usage_errorf("cluster %s cannot have %d nodes: its node "
				    "%s-%d would be a VM name of %zu "
				    "characters, past the 32 a VM name takes, "
				    "so a cluster of this name takes at most %d",
				    name, n, name, n, strlen(name) + 32 - most,
				    most_nodes(name));
	return usage_errorf("cluster name \"%s\" is too long for %d node%s: "
			    "its node %s-%d would be a VM name of %zu "
			    "characters, past the 32 a VM name takes; a "
			    "cluster of %d to %d nodes takes a name of at most "
			    "%zu characters: choose a shorter one", name, n,
			    n > 1 ? "s" : "", name, n,
			    strlen(name) + 32 - most, lo, hi, most);
}

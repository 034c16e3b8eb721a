/* A VM's record, vm.json (vm/vm.c, vm/spec.c, vm/save.c): vm_open() reads
 * it as every command does, then its status as 'nook local status' takes
 * it. What nook read it must write back in a form it reads again. The
 * input is DATA/vms/fz/vm.json. */
#include <string.h>

#include "fuzz.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct nook_dirs d;
	struct vm *vm = NULL;
	struct vm_info info;
	char *dir;

	if (!d.data) {
		d.data = xstrdup(fuzz_dir());
		d.run = xasprintf("%s/run", d.data);
		d.cache = xasprintf("%s/cache", d.data);
		d.recipes = xasprintf("%s/recipes", d.data);
		dir = xasprintf("%s/vms/fz", d.data);
		if (mkdir_p(dir, 0700) < 0)
			abort();
		free(dir);
	}
	dir = xasprintf("%s/vms/fz/vm.json", d.data);
	fuzz_write(dir, data, size);
	free(dir);
	if (vm_open(&d, "fz", 1, &vm) == 0) {
		json_t *j = vm_spec_to_json(&vm->spec);
		struct vm_spec again;

		vm_get_info(vm, &info);
		if (vm_spec_from_json(j, "again", &again) < 0)
			abort();
		vm_spec_free(&again);
		json_decref(j);
	}
	vm_close(vm);
	return 0;
}

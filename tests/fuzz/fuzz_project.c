/* nook.yaml, the project file (project/project.c): the YAML reader's
 * bounds, every key's check, groups and their nodes, sync rules; then
 * what a start makes of a file that passed: each node's name and
 * options. Relative paths point into the scratch directory, where none
 * of the files they name exist unless the input names the directory. */
#include "fuzz.h"
#include "project.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm_start_opts given = { 0 };
	struct project_nodes nodes;
	struct project p;

	if (project_parse((const char *)data, size, "nook.yaml", fuzz_dir(),
			  &p) == 0 && p.cluster) {
		project_nodes(&p, &given, &nodes);
		for (size_t i = 0; i < nodes.n; i++)
			if (!nodes.list[i].name || !*nodes.list[i].name)
				abort();
		project_nodes_free(&nodes);
	}
	project_free(&p);
	return 0;
}

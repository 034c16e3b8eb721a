/* nook local prune: what killed nook commands left behind. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "vm.h"

static const char usage_prune[] =
	"usage: nook local prune [--dry-run] [--json]\n"
	"\n"
	"Finds and removes what nook commands that were killed (SIGKILL, a\n"
	"crash, a power cut) left behind: temporary files of image imports\n"
	"and partial downloads no pull is writing, VM directories whose first\n"
	"start never finished (no vm.json, not in use), and QEMUs of this data\n"
	"directory whose VM directory is gone (ended by their verified pid),\n"
	"then a cluster's network with none of its nodes running (or with\n"
	"no cluster left: found by its runtime directory). Anything a\n"
	"running command is using is left alone.\n"
	"\n"
	"  --dry-run   list them, remove nothing\n"
	"  --json      as JSON: {\"dry_run\", \"items\": [{\"kind\": \"qemu\",\n"
	"              \"temp\", \"vm-dir\" or \"network\", \"path\", \"pid\",\n"
	"              \"removed\"}]}\n";

/* One leftover into the list, human or JSON; removed says whether it
 * went (or, dry, would go). */
static void note(json_t *list, int json, int dry, const char *kind,
		 const char *what, int pid, int ok)
{
	json_t *e;

	if (!json) {
		printf("%s %s %s\n", dry ? "would remove" : ok ? "removed" :
		       "could not remove", kind, what);
		return;
	}
	e = json_pack("{s:s,s:s,s:b}", "kind", kind, "path", what, "removed",
		      !dry && ok);
	if (pid)
		json_object_set_new(e, "pid", json_integer(pid));
	json_array_append_new(list, e);
}

int cmd_local_prune(struct nook_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct strvec temps = STRVEC_INIT, dirs = STRVEC_INIT;
	struct strvec nets = STRVEC_INIT, ending = STRVEC_INIT;
	struct vm_orphan *orph = NULL;
	const struct nook_dirs *d;
	json_t *list = json_array();
	int c, dry = 0, json = 0, rc = 0;
	size_t norph = 0, kept = 0;

	getopt_reset();
	while ((c = cmd_getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': dry = 1; break;
		case 'j': json = 1; break;
		case 'h': json_decref(list); return show_usage(usage_prune);
		default: json_decref(list); return bad_option(usage_prune, argv, c);
		}
	}
	if (optind < argc) {
		json_decref(list);
		return usage_error(usage_prune, "prune takes no name");
	}
	if (dry)
		vm_look_only();
	d = ctx_dirs(ctx);
	if (!d || vm_orphans(d, &orph, &norph) < 0) {
		json_decref(list);
		return json ? print_json_error() : 1;
	}
	img_stale(d->data, &temps);
	vm_half_made(d, &dirs);
	for (size_t i = 0; i < norph; i++) {
		char *what = xasprintf("VM %s (pid %d)", orph[i].name,
				       (int)orph[i].pid);
		int ok = dry || vm_orphan_kill(d, &orph[i]) == 0;

		note(list, json, dry, "qemu", what, (int)orph[i].pid, ok);
		rc |= !ok;
		free(what);
	}
	for (size_t i = 0; i < temps.n; i++) {
		int ok = dry || remove_tree(temps.v[i]) == 0;

		note(list, json, dry, "temp", temps.v[i], 0, ok);
		rc |= !ok;
	}
	for (size_t i = 0; i < dirs.n; i++) {
		int ok = dry || vm_half_made_remove(d, dirs.v[i]) == 0;

		note(list, json, dry, "vm-dir", dirs.v[i], 0, ok);
		rc |= !ok;
	}
	/* after the QEMUs above: a network their end left with no node (a
	 * dry run counts them as ended) */
	for (size_t i = 0; dry && i < norph; i++)
		strvec_push(&ending, orph[i].name);
	vm_idle_networks(d, &ending, &nets);
	strvec_clear(&ending);
	for (size_t i = 0; i < nets.n; i++) {
		char *what = xasprintf("cluster %s's network, no node running",
				       nets.v[i]);
		int got = dry ? 0 : vm_idle_network_stop(d, nets.v[i]);

		/* one in use after all is no leftover */
		if (got != 1)
			note(list, json, dry, "network", what, 0, got == 0);
		else
			kept++;
		rc |= got < 0;
		free(what);
	}
	if (json)
		rc |= print_json(json_pack("{s:b,s:o}", "dry_run", dry,
					   "items", list));
	else
		json_decref(list);
	if (!json && !norph && !temps.n && !dirs.n && nets.n == kept)
		printf("nothing to prune\n");
	free(orph);
	strvec_clear(&temps);
	strvec_clear(&dirs);
	strvec_clear(&nets);
	return rc ? 1 : 0;
}

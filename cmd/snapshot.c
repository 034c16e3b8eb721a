/* nook local snapshot: named snapshots inside a VM's overlay. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "vm.h"

static const char usage_snapshot[] =
	"usage: nook local snapshot save|restore|rm NAME TAG\n"
	"       nook local snapshot list [NAME] [--json]\n"
	"\n"
	"list's NAME defaults to the name in nook.yaml, else 'default'.\n"
	"Named snapshots of VM NAME, kept inside its qcow2 overlay (QEMU's\n"
	"internal snapshots; the base image is never touched), as Lima's\n"
	"'limactl snapshot'.\n"
	"\n"
	"  save     a running (or paused) VM's disk and memory, in seconds;\n"
	"           a stopped VM's disk\n"
	"  restore  bring it back: a running VM gets the disk and memory of a\n"
	"           snapshot saved running (its clock set right, a new ssh\n"
	"           master); a stopped VM gets the disk only and boots from it\n"
	"           on its next start (start it, then restore again, for the\n"
	"           memory too). A running VM cannot take a disk-only snapshot:\n"
	"           stop it first.\n"
	"  list     tag, date, size of the saved memory, whether memory is in\n"
	"           it (--json for scripts)\n"
	"  rm       remove one\n"
	"\n"
	"TAG: a letter, then up to 63 letters, digits, '.', '_' or '-'. A\n"
	"suspended VM is refused (resume it first, or start --cold).\n";


/* Open VM name, which must be one VM (a cluster's nodes are named one by
 * one); NULL having said why. */
static struct vm *open_one(struct nook_ctx *ctx, const char *name)
{
	const struct nook_dirs *d = ctx_dirs(ctx);
	struct vm *vm;

	if (!d || vm_name_check(name) < 0)
		return NULL;
	if (vm_cluster_exists(d, name)) {
		errorf("%s is a cluster: snapshots are a VM's; name one of its "
		       "nodes (%s-1 ...)", name, name);
		return NULL;
	}
	json_error_name(name);
	if (vm_open(d, name, 1, &vm) < 0)
		return NULL;
	return vm;
}

static void fmt_date(long long t, char *out, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) ||
	    !strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, size, "%lld", t);
}

static json_t *snapshot_json(const struct vm_snapshot *s)
{
	char date[32];

	fmt_date(s->date, date, sizeof(date));
	return json_pack("{s:s,s:s,s:I,s:I,s:b}", "tag", s->tag, "date", date,
			 "date_epoch", (json_int_t)s->date, "size",
			 (json_int_t)s->size, "memory", s->memory);
}

static int snap_list(struct vm *vm, int json)
{
	struct vm_snapshots l;

	if (vm_snapshot_list(vm, &l) < 0)
		return json ? print_json_error() : 1;
	if (json) {
		json_t *a = json_array();

		for (size_t i = 0; i < l.n; i++)
			json_array_append_new(a, snapshot_json(&l.v[i]));
		vm_snapshots_free(&l);
		return print_json(a);
	}
	if (!l.n)
		printf("VM %s has no snapshots\n", vm_name(vm));
	else
		printf("%-24s %-20s %8s %s\n", "TAG", "DATE", "SIZE", "MEMORY");
	for (size_t i = 0; i < l.n; i++) {
		/* (a tag made outside nook, by qemu-img, may hold any byte) */
		char *tag = str_escaped(l.v[i].tag);
		char date[32];

		fmt_date(l.v[i].date, date, sizeof(date));
		printf("%-24s %-20s %7lluM %s\n", tag, date,
		       (unsigned long long)(l.v[i].size >> 20),
		       l.v[i].memory ? "yes" : "no");
		free(tag);
	}
	vm_snapshots_free(&l);
	return 0;
}

static int snap_op(struct vm *vm, const char *op, const char *tag)
{
	double t0 = mono_s();
	int memory = 0;
	char *note;

	/* ^C ends this wait; a running QEMU's job goes on to its end */
	note = xasprintf("\nnook: interrupted: snapshot %s '%s' of VM %s may "
			 "still finish (QEMU's job goes on); 'nook local "
			 "snapshot list %s' shows what is there\n", op, tag,
			 vm_name(vm), vm_name(vm));
	sig_note(note);
	free(note);

	if (!strcmp(op, "save")) {
		struct vm_snapshot s;

		if (vm_snapshot_save(vm, tag, &s) < 0)
			return 1;
		if (s.memory)
			printf("VM %s: snapshot '%s' saved, disk and memory "
			       "(%lluM), in %.1f s\n", vm_name(vm), tag,
			       (unsigned long long)(s.size >> 20),
			       mono_s() - t0);
		else
			printf("VM %s: snapshot '%s' saved, the disk (the VM is "
			       "not running)\n", vm_name(vm), tag);
		free(s.tag);
		return 0;
	}
	if (!strcmp(op, "restore")) {
		if (vm_snapshot_restore(vm, tag, &memory) < 0)
			return 1;
		if (memory)
			printf("VM %s: snapshot '%s' restored, disk and memory, "
			       "in %.1f s\n", vm_name(vm), tag, mono_s() - t0);
		else
			printf("VM %s: snapshot '%s' restored, the disk; 'nook "
			       "local start %s' boots from it\n", vm_name(vm),
			       tag, vm_name(vm));
		return 0;
	}
	if (vm_snapshot_delete(vm, tag) < 0)
		return 1;
	printf("VM %s: snapshot '%s' removed\n", vm_name(vm), tag);
	return 0;
}

int cmd_local_snapshot(struct nook_ctx *ctx, int argc, char **argv)
{
	static const char *const ops[] = { "save", "restore", "list", "rm" };
	const char *op = NULL, *name, *tag;
	struct vm *vm;
	int json, words, rc;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return show_usage(usage_snapshot);
	if (argc < 2)
		return usage_error(usage_snapshot, "which snapshot subcommand?");
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
		if (!strcmp(ops[i], argv[1]))
			op = ops[i];
	if (!op)
		return usage_error(usage_snapshot, "unknown snapshot subcommand "
				   "'%s'", argv[1]);
	rc = parse_json_only(argc - 1, argv + 1, usage_snapshot, 2, &json);
	if (rc)
		return rc < 0 ? 0 : rc;
	argc--;
	argv++;
	words = argc - optind;
	if (json && strcmp(op, "list"))
		return usage_error(usage_snapshot, "--json is for list");
	if (!strcmp(op, "list") && words > 1)
		return usage_error(usage_snapshot, "unexpected argument '%s'",
				   argv[optind + 1]);
	if (strcmp(op, "list") && words < 2)
		return usage_error(usage_snapshot, "snapshot %s needs a VM NAME "
				   "and a TAG", op);
	name = words ? argv[optind] : ctx_default_name(ctx);
	if (!name)
		return ctx_project_exit(ctx);
	tag = words > 1 ? argv[optind + 1] : NULL;
	/* a usage error: said by the check */
	if (tag && vm_snapshot_tag_check(tag) < 0)
		return EXIT_USAGE;
	vm = open_one(ctx, name);
	if (!vm)
		return json ? print_json_error() : 1;
	rc = !strcmp(op, "list") ? snap_list(vm, json) : snap_op(vm, op, tag);
	vm_close(vm);
	return rc;
}

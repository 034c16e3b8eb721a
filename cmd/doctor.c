/* nook doctor: is this host ready to run VMs, and with which accelerator? */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "common.h"
#include "images.h"
#include "vm.h"

static const char usage_doctor[] =
	"usage: nook doctor [--json]\n"
	"\n"
	"Checks the programs nook drives (found? version?), whether KVM is\n"
	"usable and why not, where nook keeps its files and which image\n"
	"recipes it has. Exits 1 when a required program is missing or too\n"
	"old, naming the package to install, or when a start would refuse\n"
	"the runtime directory (another user's, or one its group or anyone\n"
	"may write on the way), saying why.\n"
	"\n"
	"      --json   print the findings as JSON\n";

static const struct program {
	const char *name;
	const char *version_arg; /* NULL: the program has no version option */
	const char *package;     /* Debian's */
	int min_major, min_minor;
} programs[] = {
	/* 5.1: the balloon's free page reporting */
	{ "qemu-system-x86_64", "--version", "qemu-system-x86", 5, 1 },
	{ "qemu-img", "--version", "qemu-utils", 4, 2 },
	{ "ssh", "-V", "openssh-client", 0, 0 },
	{ "ssh-keygen", NULL, "openssh-client", 0, 0 },
	{ "rsync", "--version", "rsync", 0, 0 },
};

struct finding {
	char *path;
	char *version;
	const char *problem; /* NULL when fine */
};

/*
 * The first version-looking word of a program's output: it starts at a
 * digit followed by ".digit" ("QEMU emulator version 7.2.19 (...)",
 * "OpenSSH_9.2p1 Debian-2", "rsync  version 3.2.7  protocol...").
 */
static char *version_of(const char *out)
{
	for (const char *p = out; *p; p++) {
		const char *e = p;

		if (!isdigit((unsigned char)*p) ||
		    (p > out && isalnum((unsigned char)p[-1]) && p[-1] != '_') )
			continue;
		while (isdigit((unsigned char)*e))
			e++;
		if (*e != '.' || !isdigit((unsigned char)e[1]))
			continue;
		while (isalnum((unsigned char)*e) || *e == '.' || *e == '+' ||
		       *e == '~' || *e == '-')
			e++;
		return xasprintf("%.*s", (int)(e - p), p);
	}
	return NULL;
}

static int too_old(const char *version, int major, int minor)
{
	char *end;
	long ma = strtol(version, &end, 10), mi = 0;

	if (*end == '.')
		mi = strtol(end + 1, NULL, 10);
	return ma < major || (ma == major && mi < minor);
}

static void check_program(const struct program *p, struct finding *f)
{
	const char *argv[] = { NULL, p->version_arg, NULL };
	struct buf out = BUF_INIT;

	memset(f, 0, sizeof(*f));
	f->path = find_program(p->name);
	if (!f->path) {
		f->problem = "not found";
		return;
	}
	if (!p->version_arg)
		return;
	argv[0] = f->path;
	if (run_capture(argv, &out) != 0)
		f->problem = "does not run";
	else
		f->version = version_of(out.p);
	buf_free(&out);
	if (!f->problem && p->min_major &&
	    (!f->version || too_old(f->version, p->min_major, p->min_minor)))
		f->problem = "too old";
}

static json_t *accel_json(const struct vm_accel_facts *af, enum vm_accel a,
			  const char *why)
{
	return json_pack("{s:s,s:s,s:b,s:b,s:b,s:b}", "accelerator",
			 a == VM_ACCEL_KVM ? "kvm" : "tcg", "reason", why,
			 "kvm_device", af->kvm_present, "kvm_device_rw",
			 af->kvm_rw, "cpu_vmx_or_svm", af->cpu_virt,
			 "qemu_lists_kvm", af->qemu_kvm);
}

static const char *yes(int b)
{
	return b ? "yes" : "no";
}

/* Where the image recipes are, and which there are. */
static void print_recipes(const char *dir)
{
	struct strvec names = STRVEC_INIT;

	img_recipe_names(dir, &names);
	printf("image recipes:     %s (", dir);
	for (size_t i = 0; i < names.n; i++)
		printf("%s%s", i ? ", " : "", names.v[i]);
	printf("%s)\n", names.n ? "" : "none there: set NOOK_RECIPES");
	strvec_clear(&names);
}

static json_t *recipes_json(const char *dir)
{
	struct strvec names = STRVEC_INIT;
	json_t *a = json_array();

	img_recipe_names(dir, &names);
	for (size_t i = 0; i < names.n; i++)
		json_array_append_new(a, json_string(names.v[i]));
	strvec_clear(&names);
	return a;
}

static void print_human(const struct finding *f,
			const struct vm_accel_facts *af,
			enum vm_accel a, const char *why,
			const struct nook_dirs *d)
{
	for (size_t i = 0; i < ARRAY_SIZE(programs); i++) {
		const struct program *p = &programs[i];

		if (f[i].problem && !f[i].path)
			printf("  MISSING  %-19s install: apt-get install %s\n",
			       p->name, p->package);
		else
			printf("  %-8s %-19s %-12s %s%s%s\n",
			       f[i].problem ? "PROBLEM" : "ok", p->name,
			       f[i].version ? f[i].version : "-", f[i].path,
			       f[i].problem ? "  " : "",
			       f[i].problem ? f[i].problem : "");
	}
	printf("\naccelerator: %s\n  %s\n", a == VM_ACCEL_KVM ? "kvm" : "tcg",
	       why);
	printf("  /dev/kvm present: %s, read-write: %s; CPU vmx/svm: %s; "
	       "QEMU lists kvm: %s\n", yes(af->kvm_present), yes(af->kvm_rw),
	       yes(af->cpu_virt), yes(af->qemu_kvm));
	if (d)
		printf("\ndata directory:    %s\nruntime directory: %s\n"
		       "image build cache: %s\n", d->data, d->run, d->cache);
	if (d)
		print_recipes(d->recipes);
}

/* The findings as one JSON object; when not ok, "error" says why. */
static int print_findings(const struct finding *f,
			  const struct vm_accel_facts *af, enum vm_accel a,
			  const char *why, const struct nook_dirs *d, int ok)
{
	json_t *progs = json_array(), *j;

	for (size_t i = 0; i < ARRAY_SIZE(programs); i++)
		json_array_append_new(progs, json_pack(
			"{s:s,s:b,s:s?,s:s?,s:s,s:s?}", "name",
			programs[i].name, "ok", !f[i].problem, "path",
			f[i].path, "version", f[i].version, "package",
			programs[i].package, "problem", f[i].problem));
	j = json_pack("{s:b,s:o,s:o,s:{s:s?,s:s?,s:s?,s:s?},s:o}", "ok", ok,
		      "programs", progs, "accel", accel_json(af, a, why),
		      "dirs", "data", d ? d->data : NULL, "run",
		      d ? d->run : NULL, "cache", d ? d->cache : NULL,
		      "recipes", d ? d->recipes : NULL, "recipes",
		      d ? recipes_json(d->recipes) : json_array());
	if (!ok)
		json_object_set_new(j, "error", json_string(error_last()));
	return print_json(j);
}

/* Say what is wrong with each program; 1 if anything is. */
static int say_problems(const struct finding *f)
{
	int bad = 0;

	for (size_t i = 0; i < ARRAY_SIZE(programs); i++) {
		if (!f[i].problem)
			continue;
		errorf("%s: %s; install it with: apt-get install %s",
		       programs[i].name, f[i].problem, programs[i].package);
		bad = 1;
	}
	return bad;
}

int cmd_doctor(struct nook_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct finding f[ARRAY_SIZE(programs)];
	struct vm_accel_facts af;
	const struct nook_dirs *dirs;
	const char *why;
	enum vm_accel a;
	int c, json = 0, ret = 0;

	getopt_reset();
	while ((c = cmd_getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'J': json = 1; break;
		case 'h': return show_usage(usage_doctor);
		default: return bad_option(usage_doctor, argv, c);
		}
	}
	if (optind < argc)
		return usage_error(usage_doctor, "doctor takes no arguments");
	for (size_t i = 0; i < ARRAY_SIZE(programs); i++)
		check_program(&programs[i], &f[i]);
	vm_accel_probe(&af, f[0].path);
	a = vm_accel_decide(&af, &why);
	dirs = ctx_dirs(ctx);
	if (!dirs)
		ret = 1;
	if (json) {
		/* said first, so that the object's "error" has it */
		if (say_problems(f) ||
		    (dirs && path_private_ok(dirs->run, 0) < 0))
			ret = 1;
		if (print_findings(f, &af, a, why, dirs, !ret))
			ret = 1;
	} else {
		print_human(f, &af, a, why, dirs);
		if (say_problems(f))
			ret = 1;
		/* what every start would refuse */
		if (dirs && path_private_ok(dirs->run, 0) < 0)
			ret = 1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(programs); i++) {
		free(f[i].path);
		free(f[i].version);
	}
	return ret;
}

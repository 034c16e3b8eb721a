/* nook images: the image store (build, import, pull, export, list, rm). */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "images.h"
#include "vm.h"

static const char usage[] =
	"usage: nook images SUBCOMMAND ...\n"
	"\n"
	"  build NAME [--cache DIR] [--json]\n"
	"                             build an image from its recipe (as root;\n"
	"                             cached by the recipe's hash)\n"
	"  import PATH [--name N] [--kernel K [--initrd I] [--cmdline ARGS]]\n"
	"       [--json]              an image directory, a qcow2/raw disk, or a\n"
	"                             bundle (tar, tar.gz, tar.xz, tar.zst);\n"
	"                             holes stay holes; ARGS: one line of\n"
	"                             text, under 2048 bytes\n"
	"  pull URL|NAME [--name N] [--sha256 HEX | --sha512 HEX |\n"
	"       --checksums URL] [--base-url URL] [--insecure] [--json]\n"
	"                             download an image (debian-12, debian-13,\n"
	"                             ubuntu-24.04, ubuntu-22.04, fedora-41 are\n"
	"                             known by name), verify it, store it;\n"
	"                             --insecure: no TLS checks, and plain http\n"
	"                             with no checksum from elsewhere\n"
	"  export NAME OUT.tar.zst    write an image as a bundle, holes kept\n"
	"                             (zstd, also for .tzst; gzip for\n"
	"                             .tar.gz/.tgz, xz for .tar.xz/.txz, none\n"
	"                             for .tar, in any case; another format's\n"
	"                             name is refused; '-': zstd to stdout)\n"
	"  list [--json]              the images in the store\n"
	"  rm NAME|DIGEST [--force]   remove an image (refused while a VM uses\n"
	"                             it, unless --force); an unnamed one (its\n"
	"                             name moved on while a VM used it) by the\n"
	"                             digest 'images list' shows\n"
	"\n"
	"build, import and pull with --json print the image stored (name,\n"
	"digest, dir, and the image the name left: replaced) as one object,\n"
	"their progress on stderr.\n"
	"\n"
	"Images live in DATA/images/<sha256>/ (the digest of their manifest,\n"
	"which lists every file's sha256); names point at digests. Builds are\n"
	"cached in --cache, else $NOOK_IMAGE_CACHE, else /var/cache/nook for\n"
	"root and $XDG_CACHE_HOME/nook (~/.cache/nook) otherwise.\n";

/* --- what the images module reports, printed ---------------------------- */

static void human(double b, char *out, size_t size)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;

	for (; b >= 1024 && i < 4; i++)
		b /= 1024;
	snprintf(out, size, "%.1f %s", b, u[i]);
}

/* A progress bar on a terminal; a line per 10% otherwise. */
static void say_bytes(const struct img_event *ev)
{
	double have = (double)ev->have, all = (double)ev->total;
	int pct = ev->total > 0 ? (int)(100 * have / all) : -1;
	char h[32], a[32], r[32];

	human(have, h, sizeof(h));
	human(ev->total > 0 ? all : 0, a, sizeof(a));
	human(ev->rate, r, sizeof(r));
	if (isatty(STDERR_FILENO)) {
		int bar = pct < 0 ? 0 : pct * 30 / 100;

		fprintf(stderr, TTY_WIPE "[%.*s%*s] %3d%% %s / %s  %s/s  "
			"ETA %.0f s",
			bar, "##############################", 30 - bar, "",
			pct < 0 ? 0 : pct, h, a, r,
			ev->rate > 0 && pct >= 0 ? (all - have) / ev->rate : 0.0);
	} else if (ev->tenth) {
		fprintf(stderr, "nook: downloaded %d%% (%s of %s, %s/s)\n", pct,
			h, a, r);
	}
}

/* A pull's own lines go to stderr, as its progress does. */
static void say_pull(const struct img_event *ev)
{
	switch (ev->kind) {
	case IMG_EV_PULL_START:
		fprintf(stderr, "nook: pulling %s\n", ev->path);
		break;
	case IMG_EV_PULL_BYTES:
		say_bytes(ev);
		break;
	case IMG_EV_PULL_END:
		if (isatty(STDERR_FILENO))
			fputs(TTY_WIPE, stderr);
		break;
	case IMG_EV_PULL_VERIFIED:
		fprintf(stderr, "nook: %s checksum matches\n", ev->detail);
		break;
	default:
		break;
	}
}

void images_report(const struct img_event *ev, void *arg)
{
	FILE *out = arg ? arg : stdout;

	switch (ev->kind) {
	case IMG_EV_BUILD_CACHED:
		fprintf(out, "image %s: recipe %.16s built before; using %s\n",
			ev->name, ev->detail, ev->path);
		break;
	case IMG_EV_BUILD_START:
		fprintf(out, "image %s: building with %s (a few minutes)\n",
			ev->name, ev->path);
		break;
	case IMG_EV_BUILD_DONE:
		fprintf(out, "image %s: built in %.0f s\n", ev->name,
			ev->seconds);
		break;
	case IMG_EV_DEFAULT_PULL:
		fprintf(out, "image %s is not in the store: pulling it\n",
			ev->name);
		break;
	case IMG_EV_DEFAULT_BUILD:
		fprintf(out, "the pull did not work; building %s here from "
			"Debian packages instead\n", ev->name);
		break;
	default:
		say_pull(ev);
		return;
	}
	/* the recipe writes to the same stdout as it runs */
	fflush(out);
}

/* --- the subcommands ---------------------------------------------------- */

/*
 * Remove image dir by its name, or (name NULL) dir itself unless a name
 * points at it, with what direct boots unpacked from it (found while dir
 * is there); the store's lock held. 1 when dir is gone, 0 when a name
 * keeps it, -1 having said why.
 */
static int drop_image(const struct nook_dirs *d, const char *name,
		      const char *dir)
{
	struct strvec unpacked = STRVEC_INIT;
	int rc;

	vm_image_unpacked(d, dir, &unpacked);
	if (name)
		rc = img_remove(d->data, name) < 0 ? -1 : access(dir, F_OK) < 0;
	else
		rc = img_forget(d->data, dir);
	if (rc == 1)
		for (size_t i = 0; i < unpacked.n; i++)
			unlink(unpacked.v[i]);
	strvec_clear(&unpacked);
	return rc;
}

/* The image an import moved name off (was): gone, unless a VM or another
 * name still holds it. Under the store's lock, so that no VM's first
 * start makes its disk on it between the look and the removal. 1 when
 * it is gone (said unless quiet). */
static int drop_replaced(const struct nook_dirs *d, const char *name,
			 const char *was, int quiet)
{
	const char *digest = strrchr(was, '/') + 1;
	struct strvec users = STRVEC_INIT;
	int gone = 0, lock = img_lock(d->data, 0);

	if (lock < 0) {
		warnf("the image %s named before, %.12s, stays ('nook images "
		      "rm %.12s' removes it)", name, digest, digest);
		return 0;
	}
	vm_users_of_image(d, was, &users);
	if (users.n)
		warnf("the image %s named before, %.12s, stays: VM %s%s uses "
		      "it ('nook images rm %.12s' once %s deleted)", name,
		      digest, users.v[0], users.n > 1 ? " and more" : "",
		      digest, users.n > 1 ? "they are" : "it is");
	else
		gone = drop_image(d, NULL, was) == 1;
	if (gone && !quiet)
		printf("image %s replaced; the image it named before (%.12s) "
		       "removed\n", name, digest);
	img_unlock(lock);
	strvec_clear(&users);
	return gone;
}

/*
 * After an import, pull or build of name (n: what it did to the name):
 * say where it is. The image the name pointed at before goes unless
 * another name or a VM holds it: a name moved on must not leave
 * gigabytes that nothing lists. With json, all that as one object
 * (its "replaced": the digest the name left, and whether it is gone).
 * Frees n.
 */
static int stored(const struct nook_dirs *d, const char *name,
		  struct img_named *n, int json)
{
	json_t *j, *dir;
	int gone = 0, rc = 0;

	if (!json)
		printf("image %s: %s\n", name, n->dir);
	if (n->was)
		gone = drop_replaced(d, name, n->was, json);
	if (json) {
		/* a NOOK_HOME may be any bytes; JSON carries UTF-8 only */
		dir = json_string(n->dir);
		j = json_pack("{s:s,s:s,s:o}", "name", name, "digest",
			      strrchr(n->dir, '/') + 1,
			      "dir", dir ? dir : json_null());
		json_object_set_new(j, "replaced", !n->was ? json_null() :
			json_pack("{s:s,s:b}", "digest",
				  strrchr(n->was, '/') + 1, "removed", gone));
		rc = print_json(j);
	}
	img_named_free(n);
	return rc;
}

/* Where an import, pull or build tells its progress: on stdout, unless
 * stdout is the JSON's. */
static FILE *progress_to(int json)
{
	return json ? stderr : stdout;
}

static int images_build(struct nook_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cache", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct img_build_opts o = { 0 };
	const struct nook_dirs *d;
	const char *cache = NULL;
	struct img_named n = IMG_NAMED_INIT;
	int c, json = 0;

	getopt_reset();
	while ((c = cmd_getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': cache = optarg; break;
		case 'j': json = 1; break;
		case 'h': return show_usage(usage);
		default: return bad_option(usage, argv, c);
		}
	}
	if (argc - optind != 1)
		return usage_error(usage, "images build takes one NAME");
	if (!img_name_valid(argv[optind]))
		return usage_error(usage, "bad image name '%s'", argv[optind]);
	d = ctx_dirs(ctx);
	if (!d)
		return 1;
	o.recipes = d->recipes;
	o.cache = cache ? cache : d->cache;
	o.report = images_report;
	o.report_arg = progress_to(json);
	return img_build(d->data, argv[optind], &o, &n) < 0 ? 1 :
	       stored(d, argv[optind], &n, json);
}

struct import_opts {
	const char *path, *name, *kernel, *initrd, *cmdline;
	int json;
};

/* 0 to go on, -1 after --help, else the usage error's exit status. */
static int import_parse(int argc, char **argv, struct import_opts *o)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	memset(o, 0, sizeof(*o));
	getopt_reset();
	while ((c = cmd_getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': o->name = optarg; break;
		case 'k': o->kernel = optarg; break;
		case 'i': o->initrd = optarg; break;
		case 'c': o->cmdline = optarg; break;
		case 'j': o->json = 1; break;
		case 'h': return show_usage(usage) - 1;
		default: return bad_option(usage, argv, c);
		}
	}
	if (argc - optind != 1)
		return usage_error(usage, "images import takes one PATH");
	o->path = argv[optind];
	return 0;
}

/* The file's name up to its first dot (debian-12.tar.zst -> debian-12);
 * a directory's whole name. The caller frees. */
static char *name_from_path(const char *path, int is_dir)
{
	const char *slash = strrchr(path, '/');
	char *base = xstrdup(slash && slash[1] ? slash + 1 : path);
	char *dot = strchr(base + 1, '.');

	if (dot && !is_dir)
		*dot = '\0';
	return base;
}

static int import_one(const char *data, const struct import_opts *o,
		      const struct stat *st, struct img_named *named)
{
	const char *p = o->path;

	if (S_ISDIR(st->st_mode))
		return img_import_dir(data, p, o->name, named);
	if (img_bundle_name(p))
		return img_import_bundle(data, p, o->name, named);
	return img_import_disk(data, p, o->kernel, o->initrd, o->cmdline,
			       o->name, named);
}

static int images_import(struct nook_ctx *ctx, int argc, char **argv)
{
	const struct nook_dirs *d;
	struct import_opts o;
	struct stat st;
	struct img_named n = IMG_NAMED_INIT;
	struct buf why = BUF_INIT;
	char *base = NULL;
	int rc = import_parse(argc, argv, &o);

	if (rc)
		return rc < 0 ? 0 : rc;
	if (stat(o.path, &st) < 0) {
		error_errno("cannot import %s", o.path);
		return 1;
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
		/* /dev/zero would be read for ever, a FIFO once and gone */
		errorf("cannot import %s: not a regular file or a directory",
		       o.path);
		return 1;
	}
	if (!o.name) {
		base = name_from_path(o.path, S_ISDIR(st.st_mode));
		o.name = base;
	}
	if (!img_name_valid(o.name)) {
		rc = usage_error(usage, "image name '%s': %s%s", o.name,
				 strlen(o.name) > 64 ? "at most 64 characters" :
				 "use a-z, 0-9, '.', '_' and '-', starting with "
				 "a letter or digit", base ? " (give --name)" :
				 "");
		goto out;
	}
	/* a bundle's own manifest says how it boots: they were dropped */
	if ((o.kernel || o.initrd || o.cmdline) &&
	    (!S_ISREG(st.st_mode) || img_bundle_name(o.path))) {
		rc = usage_error(usage, "--kernel, --initrd and --cmdline go "
				 "with a disk file (a bundle or an image "
				 "directory boots as its manifest says)");
		goto out;
	}
	/* ... and without a kernel, a disk boots as its own loader says */
	if ((o.initrd || o.cmdline) && !o.kernel) {
		rc = usage_error(usage, "--initrd and --cmdline go with "
				 "--kernel: a disk boot reads neither");
		goto out;
	}
	/* said as what was typed wrong, before a disk is copied; the
	 * manifest nook writes is held to the same check at commit */
	if (o.cmdline && !img_cmdline_valid(o.cmdline, &why)) {
		rc = usage_error(usage, "--cmdline %s", why.p);
		goto out;
	}
	d = ctx_dirs(ctx);
	if (!d) {
		rc = 1;
		goto out;
	}
	rc = import_one(d->data, &o, &st, &n) == 0 ?
		     stored(d, o.name, &n, o.json) : 1;
out:
	buf_free(&why);
	free(base);
	return rc;
}

static int is_hex(const char *s, size_t len)
{
	return strlen(s) == len && strspn(s, "0123456789abcdef") == len;
}

/* Fill p, *ref and *base from the options; returns as import_parse(). */
static int pull_parse(int argc, char **argv, struct img_pull *p,
		      const char **ref, const char **base, int *json)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "sha256", required_argument, NULL, '2' },
		{ "sha512", required_argument, NULL, '5' },
		{ "checksums", required_argument, NULL, 'c' },
		{ "base-url", required_argument, NULL, 'b' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c, given = 0;

	getopt_reset();
	while ((c = cmd_getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': free(p->name); p->name = xstrdup(optarg); break;
		case '2': p->sha256 = optarg; given++; break;
		case '5': p->sha512 = optarg; given++; break;
		case 'c':
			free(p->checksums_url);
			p->checksums_url = xstrdup(optarg);
			given++;
			break;
		case 'b': *base = optarg; break;
		case 'k': p->insecure = 1; break;
		case 'j': *json = 1; break;
		case 'h': return show_usage(usage) - 1;
		default: return bad_option(usage, argv, c);
		}
	}
	if (argc - optind != 1)
		return usage_error(usage, "images pull takes one URL or NAME");
	if (given > 1)
		return usage_error(usage, "give one of --sha256, --sha512, "
				   "--checksums");
	if ((p->sha256 && !is_hex(p->sha256, 64)) ||
	    (p->sha512 && !is_hex(p->sha512, 128)))
		return usage_error(usage, "a checksum is 64 (sha256) or 128 "
				   "(sha512) lower-case hex digits");
	*ref = argv[optind];
	return 0;
}

static int images_pull(struct nook_ctx *ctx, int argc, char **argv)
{
	const struct nook_dirs *d;
	struct img_pull p;
	const char *ref = NULL, *base = NULL;
	struct img_named n = IMG_NAMED_INIT;
	int rc, json = 0;

	memset(&p, 0, sizeof(p));
	rc = pull_parse(argc, argv, &p, &ref, &base, &json);
	if (rc) {
		rc = rc < 0 ? 0 : rc;
		goto out;
	}
	rc = 1;
	if (img_pull_resolve(ref, base, &p) < 0)
		goto out;
	if (!img_name_valid(p.name)) {
		rc = usage_error(usage, "image name '%s': give --name", p.name);
		goto out;
	}
	d = ctx_dirs(ctx);
	if (!d)
		goto out;
	p.report = images_report;
	p.report_arg = progress_to(json);
	p.named = &n;
	rc = img_pull(d->data, &p) < 0 ? 1 : stored(d, p.name, &n, json);
out:
	free(p.url);
	free(p.name);
	free(p.checksums_url);
	return rc;
}

/* Only --help, then exactly n words; returns as import_parse(). */
static int plain_parse(int argc, char **argv, int n, const char *what)
{
	int rc = parse_help_only(argc, argv, usage, n);

	if (rc == 0 && argc - optind != n)
		return usage_error(usage, "images %s takes %s", argv[0], what);
	return rc;
}

/* A NAME of the store that is none: a path would lead out of it. */
static int bad_name(const char *name)
{
	return usage_error(usage, "image name '%s': an image's name in the "
			   "store is a-z, 0-9, '.', '_' and '-', starting with a "
			   "letter or digit, at most 64 long ('nook images "
			   "list' shows them)", name);
}

static int images_export(struct nook_ctx *ctx, int argc, char **argv)
{
	const struct nook_dirs *d;
	int rc = plain_parse(argc, argv, 2, "NAME OUT");

	if (rc)
		return rc < 0 ? 0 : rc;
	if (!img_name_valid(argv[optind]))
		return bad_name(argv[optind]);
	d = ctx_dirs(ctx);
	if (!d || img_export(d->data, argv[optind], argv[optind + 1]) < 0)
		return 1;
	return 0;
}

static void print_table(json_t *all)
{
	json_t *e;
	size_t i;

	printf("%-16s %-14s %9s  %-12s %s\n", "NAME", "DIGEST", "SIZE", "BOOT",
	       "CREATED");
	json_array_foreach(all, i, e) {
		struct buf boot = BUF_INIT;
		json_t *b;
		size_t j;
		time_t t = (time_t)json_integer_value(json_object_get(e, "created"));
		const char *name = json_string_value(json_object_get(e, "name"));
		char when[32];

		json_array_foreach(json_object_get(e, "boot"), j, b)
			buf_addf(&boot, "%s%s", j ? "," : "", json_string_value(b));
		strftime(when, sizeof(when), "%F %R", localtime(&t));
		printf("%-16s %.12s   %7lldM  %-12s %s\n",
		       name ? name : "(unnamed)",
		       json_string_value(json_object_get(e, "digest")),
		       (long long)(json_integer_value(json_object_get(e, "size")) >> 20),
		       boot.p ? boot.p : "-", when);
		buf_free(&boot);
	}
}

static int images_list(struct nook_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const struct nook_dirs *d;
	json_t *all;
	int c, json = 0;

	getopt_reset();
	while ((c = cmd_getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 'h': return show_usage(usage);
		default: return bad_option(usage, argv, c);
		}
	}
	if (optind < argc)
		return usage_error(usage, "images list takes only --json");
	d = ctx_dirs(ctx);
	if (!d)
		return json ? print_json_error() : 1;
	all = img_list(d->data);
	if (json)
		return print_json(all);
	print_table(all);
	json_decref(all);
	return 0;
}

/* 1 (said) when a VM uses image dir and there is no force: images rm
 * of what (its name or digest) must not take a running VM's base. */
static int in_use(const struct nook_dirs *d, const char *what,
		  const char *dir, int force)
{
	struct strvec users = STRVEC_INIT;
	int refused;

	vm_users_of_image(d, dir, &users);
	refused = users.n && !force;
	if (refused)
		errorf("image %s is used by VM %s%s; delete the VM first or "
		       "use --force", what, users.v[0],
		       users.n > 1 ? " and more" : "");
	else if (users.n)
		warnf("VM %s%s cannot start again without image %s: its disk "
		      "is made on it (import the image again, or delete the "
		      "VM)", users.v[0], users.n > 1 ? " and more" : "", what);
	strvec_clear(&users);
	return refused;
}

/* 0 to go on (*force set), -1 after --help, else the exit status. */
static int rm_parse(int argc, char **argv, int *force)
{
	static const struct option longopts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	*force = 0;
	getopt_reset();
	while ((c = cmd_getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': *force = 1; break;
		case 'h': return show_usage(usage) - 1;
		default: return bad_option(usage, argv, c);
		}
	}
	if (argc - optind != 1)
		return usage_error(usage, "images rm takes a NAME");
	return 0;
}

/* images rm DIGEST: an image no name points at (its name moved on while
 * a VM used it), by the digest 'nook images list' shows; the store's lock
 * held. */
static int rm_unnamed(const struct nook_dirs *d, const char *prefix,
		      int force)
{
	char *dir = NULL;
	size_t n = strlen(prefix);
	int gone = -1;

	if (img_find_digest(d->data, prefix, &dir) < 0)
		return 1;
	if (!dir) {
		errorf("no image named '%s' in the store%s", prefix,
		       n < 12 && strspn(prefix, "0123456789abcdef") == n ?
			       " (a digest is given by 12 of its digits or "
			       "more)" : "");
		return 1;
	}
	if (!in_use(d, prefix, dir, force))
		gone = drop_image(d, NULL, dir);
	if (gone == 0)
		errorf("image %s has a name: remove it by that name ('nook "
		       "images list' shows it)", prefix);
	if (gone == 1)
		printf("image %s removed\n", prefix);
	free(dir);
	return gone == 1 ? 0 : 1;
}

/* images rm NAME|DIGEST, the store's lock held: a name first. */
static int rm_locked(const struct nook_dirs *d, const char *name, int force)
{
	char *dir = NULL;
	int rc = 1;

	if (img_resolve(d->data, name, &dir) < 0)
		return 1;
	if (!dir)
		return rm_unnamed(d, name, force);
	if (!in_use(d, name, dir, force) && drop_image(d, name, dir) >= 0) {
		printf("image %s removed\n", name);
		rc = 0;
	}
	free(dir);
	return rc;
}

static int images_rm(struct nook_ctx *ctx, int argc, char **argv)
{
	const struct nook_dirs *d;
	const char *name;
	int lock, force, rc = rm_parse(argc, argv, &force);

	if (rc)
		return rc < 0 ? 0 : rc;
	name = argv[optind];
	if (!img_name_valid(name))
		return bad_name(name);
	d = ctx_dirs(ctx);
	/* held from the look for users until the image is gone */
	lock = d ? img_lock(d->data, 0) : -1;
	if (lock < 0)
		return 1;
	rc = rm_locked(d, name, force);
	img_unlock(lock);
	return rc;
}

int cmd_images(struct nook_ctx *ctx, int argc, char **argv)
{
	static const struct subcommand subs[] = {
		{ "build", images_build },   { "import", images_import },
		{ "pull", images_pull },     { "export", images_export },
		{ "list", images_list },     { "rm", images_rm },
	};

	return run_subcommand(ctx, argc, argv, subs, ARRAY_SIZE(subs),
			      usage);
}

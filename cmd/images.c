/* nook images: the image store (build, import, export, list, rm). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "images.h"
#include "vmcmd.h"

#ifndef NOOK_RECIPES_DIR
#define NOOK_RECIPES_DIR "images/recipes"
#endif

static const char usage[] =
	"usage: nook images SUBCOMMAND ...\n"
	"\n"
	"  build NAME [--cache DIR]   build an image from its recipe (as root;\n"
	"                             cached by the recipe's hash)\n"
	"  import PATH [--name N] [--kernel K] [--initrd I] [--cmdline ARGS]\n"
	"                             an image directory, a qcow2/raw disk, or a\n"
	"                             bundle (tar, tar.gz, tar.xz, tar.zst)\n"
	"  pull URL|NAME [--name N] [--sha256 HEX | --sha512 HEX |\n"
	"       --checksums URL] [--base-url URL] [--insecure]\n"
	"                             download an image (debian-12, debian-13,\n"
	"                             ubuntu-24.04, ubuntu-22.04, fedora-41 are\n"
	"                             known by name), verify it, store it\n"
	"  export NAME OUT.tar.zst    write an image as a bundle\n"
	"  list [--json]              the images in the store\n"
	"  rm NAME [--force]          remove an image (refused while a VM uses\n"
	"                             it, unless --force)\n"
	"\n"
	"Images live in DATA/images/<sha256>/ (the digest of their manifest,\n"
	"which lists every file's sha256); names point at digests.\n";

static int data_dir(struct nook_dirs *d)
{
	return nook_dirs_from_environ(d);
}

/* The cache for built images: --cache, $NOOK_IMAGE_CACHE, else
 * /var/cache/nook for root and $XDG_CACHE_HOME/nook (~/.cache/nook)
 * otherwise. */
static char *cache_dir(const char *given)
{
	const char *env = getenv("NOOK_IMAGE_CACHE");
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");

	if (given)
		return xstrdup(given);
	if (env && *env)
		return xstrdup(env);
	if (getuid() == 0)
		return xstrdup("/var/cache/nook");
	if (xdg && *xdg)
		return xasprintf("%s/nook", xdg);
	return xasprintf("%s/.cache/nook", home ? home : "/tmp");
}


/*
 * Build image name with its recipe into the cache (unless the cache has
 * this recipe's build already), then import it into the store. The recipe
 * prints its phases; they are passed on as they come.
 */
int img_build(const char *data, const char *name, const char *cache_given)
{
	const char *rdir = getenv("NOOK_RECIPES");
	char *recipe = xasprintf("%s/%s.sh", rdir && *rdir ? rdir : NOOK_RECIPES_DIR,
				 name);
	char *cache = cache_dir(cache_given), *dir = NULL, *tmp = NULL;
	char *out = NULL, *manifest = NULL;
	char sum[65];
	struct stat st;
	double t0 = mono_s();
	int ret = -1;

	if (access(recipe, R_OK) < 0) {
		error_errno("no recipe for image '%s' (%s)", name, recipe);
		goto out;
	}
	if (sha256_file(recipe, sum) < 0)
		goto out;
	dir = xasprintf("%s/%s-%.16s", cache, name, sum);
	manifest = xasprintf("%s/manifest.json", dir);
	if (stat(manifest, &st) == 0) {
		printf("image %s: recipe %.16s built before; using %s\n", name,
		       sum, dir);
	} else {
		const char *argv[] = { "bash", recipe, NULL, NULL };
		struct child c = CHILD_INIT;
		int rc;

		if (getuid() != 0) {
			errorf("building image %s needs root (debootstrap); run "
			       "'nook images build %s' as root, or import an "
			       "image", name, name);
			goto out;
		}
		if (mkdir_p(cache, 0755) < 0)
			goto out;
		tmp = xasprintf("%s/.build-XXXXXX", cache);
		if (!mkdtemp(tmp)) {
			error_errno("cannot make a directory in %s", cache);
			free(tmp);
			tmp = NULL;
			goto out;
		}
		out = xasprintf("%s/out", tmp);
		argv[2] = out;
		printf("image %s: building with %s (a few minutes)\n", name,
		       recipe);
		fflush(stdout);
		c.argv = argv;
		rc = child_start(&c) == 0 ? child_wait(&c) : -1;
		if (rc != 0) {
			errorf("building image %s failed (recipe exit %d); "
			       "nothing was stored", name, rc);
			goto out;
		}
		if (rename(out, dir) < 0) {
			error_errno("cannot move the build to %s", dir);
			goto out;
		}
		printf("image %s: built in %.0f s\n", name, mono_s() - t0);
	}
	ret = img_import_dir(data, dir, name);
out:
	if (tmp)
		remove_tree(tmp);
	free(tmp);
	free(out);
	free(manifest);
	free(dir);
	free(cache);
	free(recipe);
	return ret;
}

/* Names of the VMs whose disk is an overlay on the image in dir. */
static void vms_using(const char *data, const char *dir, struct strvec *out)
{
	char *vms = xasprintf("%s/vms", data);
	DIR *d = opendir(vms);
	size_t n = strlen(dir);

	for (struct dirent *e = d ? readdir(d) : NULL; e; e = readdir(d)) {
		struct vmcmd v;

		if (!vm_name_valid(e->d_name))
			continue;
		if (vmcmd_open(&v, e->d_name, 0) == 0 && v.have_spec &&
		    !strncmp(v.spec.image.disk, dir, n) &&
		    v.spec.image.disk[n] == '/')
			strvec_push(out, e->d_name);
		vmcmd_close(&v);
	}
	if (d)
		closedir(d);
	free(vms);
}

static int sub_list(int argc, char **argv, const char *data)
{
	json_t *all, *e;
	size_t i;
	int json = argc == 2 && !strcmp(argv[1], "--json");

	if (argc > 2 || (argc == 2 && !json))
		return usage_error(usage, "images list takes only --json");
	all = img_list(data);
	if (json)
		return print_json(all);
	printf("%-16s %-14s %9s  %-12s %s\n", "NAME", "DIGEST", "SIZE", "BOOT",
	       "CREATED");
	json_array_foreach(all, i, e) {
		struct buf boot = BUF_INIT;
		json_t *b;
		size_t j;
		time_t t = (time_t)json_integer_value(json_object_get(e, "created"));
		char when[32];

		json_array_foreach(json_object_get(e, "boot"), j, b)
			buf_addf(&boot, "%s%s", j ? "," : "", json_string_value(b));
		strftime(when, sizeof(when), "%F %R", localtime(&t));
		printf("%-16s %.12s   %7lldM  %-12s %s\n",
		       json_string_value(json_object_get(e, "name")),
		       json_string_value(json_object_get(e, "digest")),
		       (long long)(json_integer_value(json_object_get(e, "size")) >> 20),
		       boot.p ? boot.p : "-", when);
		buf_free(&boot);
	}
	json_decref(all);
	return 0;
}

static int sub_import(int argc, char **argv, const char *data)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 }
	};
	const char *name = NULL, *kernel = NULL, *initrd = NULL, *cmdline = NULL;
	char *base = NULL;
	struct stat st;
	int c, rc;

	getopt_reset();
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': name = optarg; break;
		case 'k': kernel = optarg; break;
		case 'i': initrd = optarg; break;
		case 'c': cmdline = optarg; break;
		default: return bad_option(usage, argv, c);
		}
	}
	if (argc - optind != 1)
		return usage_error(usage, "images import takes one PATH");
	if (stat(argv[optind], &st) < 0) {
		error_errno("cannot import %s", argv[optind]);
		return 1;
	}
	if (!name) {
		/* the file's name up to its first dot: debian-12.tar.zst ->
		 * debian-12 */
		const char *slash = strrchr(argv[optind], '/');

		base = xstrdup(slash && slash[1] ? slash + 1 : argv[optind]);
		if (strchr(base + 1, '.') && !S_ISDIR(st.st_mode))
			*strchr(base + 1, '.') = '\0';
		name = base;
	}
	if (!img_name_valid(name)) {
		rc = usage_error(usage, "image name '%s': use a-z, 0-9, '.', "
				 "'_' and '-' (give --name)", name);
		free(base);
		return rc;
	}
	if ((kernel || initrd || cmdline) && !S_ISREG(st.st_mode)) {
		free(base);
		return usage_error(usage, "--kernel, --initrd and --cmdline go "
				   "with a disk file");
	}
	if (S_ISDIR(st.st_mode)) {
		rc = img_import_dir(data, argv[optind], name);
	} else {
		const char *p = argv[optind];
		size_t n = strlen(p);
		int tar = (n > 4 && !strcmp(p + n - 4, ".tar")) ||
			  strstr(p, ".tar.") || (n > 4 && !strcmp(p + n - 4, ".tgz"));

		rc = tar ? img_import_bundle(data, p, name) :
			   img_import_disk(data, p, kernel, initrd, cmdline,
					   name);
	}
	free(base);
	return rc < 0 ? 1 : 0;
}

static int sub_pull(int argc, char **argv, const char *data)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "sha256", required_argument, NULL, '2' },
		{ "sha512", required_argument, NULL, '5' },
		{ "checksums", required_argument, NULL, 'c' },
		{ "base-url", required_argument, NULL, 'b' },
		{ "insecure", no_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 }
	};
	struct img_pull p;
	const char *base = NULL;
	int c, given = 0, rc = 1;

	memset(&p, 0, sizeof(p));
	getopt_reset();
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': free(p.name); p.name = xstrdup(optarg); break;
		case '2': p.sha256 = optarg; given++; break;
		case '5': p.sha512 = optarg; given++; break;
		case 'c': p.checksums_url = xstrdup(optarg); given++; break;
		case 'b': base = optarg; break;
		case 'k': p.insecure = 1; break;
		default: rc = bad_option(usage, argv, c); goto out;
		}
	}
	if (argc - optind != 1) {
		rc = usage_error(usage, "images pull takes one URL or NAME");
		goto out;
	}
	if (given > 1) {
		rc = usage_error(usage, "give one of --sha256, --sha512, "
				 "--checksums");
		goto out;
	}
	if ((p.sha256 && (strlen(p.sha256) != 64 ||
			  strspn(p.sha256, "0123456789abcdef") != 64)) ||
	    (p.sha512 && (strlen(p.sha512) != 128 ||
			  strspn(p.sha512, "0123456789abcdef") != 128))) {
		rc = usage_error(usage, "a checksum is 64 (sha256) or 128 "
				 "(sha512) lower-case hex digits");
		goto out;
	}
	if (img_pull_resolve(argv[optind], base, &p) < 0)
		goto out;
	if (!img_name_valid(p.name)) {
		rc = usage_error(usage, "image name '%s': give --name", p.name);
		goto out;
	}
	rc = img_pull(data, &p) < 0 ? 1 : 0;
out:
	free(p.url);
	free(p.name);
	free(p.checksums_url);
	return rc;
}

static int sub_rm(int argc, char **argv, const char *data)
{
	struct strvec users = STRVEC_INIT, unpacked = STRVEC_INIT;
	struct vm_image img = { 0 };
	char *dir = NULL;
	int force = 0, rc = 1;
	const char *name = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--force"))
			force = 1;
		else if (argv[i][0] == '-' || name)
			return usage_error(usage, "unexpected argument '%s'",
					   argv[i]);
		else
			name = argv[i];
	}
	if (!name)
		return usage_error(usage, "images rm takes a NAME");
	if (img_resolve(data, name, &dir) < 0)
		return 1;
	if (!dir) {
		errorf("no image named '%s' in the store", name);
		return 1;
	}
	vms_using(data, dir, &users);
	if (users.n && !force) {
		errorf("image %s is used by VM %s%s; delete the VM first or use "
		       "--force", name, users.v[0], users.n > 1 ? " and more" : "");
		goto out;
	}
	/* what direct boots unpacked from it goes with it: named now,
	 * while its files can still be looked at */
	if (vm_image_resolve(data, dir, &img) == 0) {
		char *cache = xasprintf("%s/cache/boot", data);

		vm_boot_cached(cache, img.kernel, &unpacked);
		vm_boot_cached(cache, img.initrd, &unpacked);
		free(cache);
	}
	if (img_remove(data, name) < 0)
		goto out;
	if (access(dir, F_OK) < 0) /* not still there under another name */
		for (size_t i = 0; i < unpacked.n; i++)
			unlink(unpacked.v[i]);
	printf("image %s removed\n", name);
	rc = 0;
out:
	strvec_clear(&users);
	strvec_clear(&unpacked);
	vm_image_free(&img);
	free(dir);
	return rc;
}

int cmd_images(struct nook_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	struct nook_dirs d = { NULL, NULL };
	const char *sub = argc > 1 ? argv[1] : "";
	int rc = EXIT_USAGE;

	if (argc < 2)
		return usage_error(usage, "which subcommand?");
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h"))
		return show_usage(usage);
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return show_usage(usage);
	if (data_dir(&d) < 0)
		return 1;
	if (!strcmp(sub, "list")) {
		rc = sub_list(argc - 1, argv + 1, d.data);
	} else if (!strcmp(sub, "import")) {
		rc = sub_import(argc - 1, argv + 1, d.data);
	} else if (!strcmp(sub, "pull")) {
		rc = sub_pull(argc - 1, argv + 1, d.data);
	} else if (!strcmp(sub, "rm")) {
		rc = sub_rm(argc - 1, argv + 1, d.data);
	} else if (!strcmp(sub, "export")) {
		if (argc != 4)
			rc = usage_error(usage, "images export takes NAME OUT");
		else
			rc = img_export(d.data, argv[2], argv[3]) < 0 ? 1 : 0;
	} else if (!strcmp(sub, "build")) {
		const char *cache = NULL;

		if (argc == 5 && !strcmp(argv[3], "--cache"))
			cache = argv[4];
		if (argc != 3 && !cache)
			rc = usage_error(usage, "images build takes NAME "
					 "[--cache DIR]");
		else if (!img_name_valid(argv[2]))
			rc = usage_error(usage, "bad image name '%s'", argv[2]);
		else
			rc = img_build(d.data, argv[2], cache) < 0 ? 1 : 0;
	} else {
		rc = usage_error(usage, "unknown subcommand '%s'", sub);
	}
	nook_dirs_free(&d);
	return rc;
}

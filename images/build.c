/*
 * Building an image from its recipe (a bash script run as root that writes
 * an image directory), cached by the recipe's hash; and the default image's
 * way into the store: pulled, else built.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "images.h"

static void say(const struct img_build_opts *o, const struct img_event *ev)
{
	if (o && o->report)
		o->report(ev, o->report_arg);
}

/* Run recipe into a fresh directory of the cache, then rename what it
 * wrote to dir: a failed or interrupted build never looks like a done one. */
static int run_recipe(const char *name, const char *recipe, const char *dir,
		      const struct img_build_opts *o)
{
	const char *argv[] = { "bash", recipe, NULL, NULL };
	struct img_event ev = { .kind = IMG_EV_BUILD_START, .name = name,
				.path = recipe };
	struct child c = CHILD_INIT;
	char *tmp = NULL, *out = NULL, *old_tmpdir;
	double t0 = mono_s();
	int rc, ret = -1;

	if (getuid() != 0)
		return errorf("building image %s needs root (debootstrap); run "
			      "'nook images build %s' as root, or import an "
			      "image", name, name);
	if (mkdir_p(o->cache, 0755) < 0)
		return -1;
	/* a build that was killed left its directory: it goes first */
	tmp_sweep(o->cache, ".build-");
	tmp = xasprintf("%s/.build-%d-XXXXXX", o->cache, (int)getpid());
	if (!mkdtemp(tmp)) {
		error_errno("cannot make a directory in %s", o->cache);
		free(tmp);
		return -1;
	}
	out = xasprintf("%s/out", tmp);
	argv[2] = out;
	say(o, &ev);
	c.argv = argv;
	/* its lines are progress: nook's stdout is for results (--json) */
	c.out = STDERR_FILENO;
	/* debootstrap and dpkg under it end with us, even on a SIGKILL; a
	 * group of its own, so no terminal's stdin (a read would stop it) */
	c.group = 1;
	c.in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (c.in < 0) {
		error_errno("cannot open /dev/null");
		goto out;
	}
	/* its scratch (mktemp under TMPDIR) goes in our directory too: one
	 * a killed build could not remove is swept with it */
	old_tmpdir = getenv("TMPDIR") ? xstrdup(getenv("TMPDIR")) : NULL;
	setenv("TMPDIR", tmp, 1);
	rc = child_start(&c) == 0 ? child_wait(&c) : -1;
	if (old_tmpdir)
		setenv("TMPDIR", old_tmpdir, 1);
	else
		unsetenv("TMPDIR");
	free(old_tmpdir);
	close(c.in);
	if (rc != 0) {
		errorf("building image %s failed (recipe exit %d); nothing was "
		       "stored", name, rc);
		goto out;
	}
	if (rename(out, dir) < 0) {
		error_errno("cannot move the build to %s", dir);
		goto out;
	}
	ev.kind = IMG_EV_BUILD_DONE;
	ev.seconds = mono_s() - t0;
	say(o, &ev);
	ret = 0;
out:
	remove_tree(tmp);
	free(tmp);
	free(out);
	return ret;
}

int img_build(const char *data, const char *name,
	      const struct img_build_opts *o, struct img_named *out)
{
	char *recipe = NULL, *dir = NULL, *manifest = NULL;
	char sum[65];
	struct stat st;
	int ret = -1;

	if (!img_name_valid(name))
		return errorf("bad image name '%s'", name);
	if (!o || !o->recipes || !o->cache)
		return errorf("building image %s: no recipe or cache directory "
			      "given", name);
	recipe = xasprintf("%s/%s.sh", o->recipes, name);
	if (access(recipe, R_OK) < 0) {
		error_errno("no recipe for image '%s' (%s)", name, recipe);
		goto out;
	}
	if (sha256_file(recipe, sum) < 0)
		goto out;
	dir = xasprintf("%s/%s-%.16s", o->cache, name, sum);
	manifest = xasprintf("%s/manifest.json", dir);
	if (stat(manifest, &st) == 0) {
		struct img_event ev = { .kind = IMG_EV_BUILD_CACHED,
					.name = name, .path = dir,
					.detail = sum };

		say(o, &ev);
	} else if (run_recipe(name, recipe, dir, o) < 0) {
		goto out;
	}
	ret = img_import_dir(data, dir, name, out);
out:
	free(manifest);
	free(dir);
	free(recipe);
	return ret;
}

int img_ensure_default(const char *data, const struct img_build_opts *o)
{
	struct img_event ev = { .kind = IMG_EV_DEFAULT_PULL,
				.name = IMG_DEFAULT };
	struct img_pull p;
	char *dir = NULL;
	int rc = -1;

	if (img_resolve(data, IMG_DEFAULT, &dir) < 0)
		return -1;
	if (dir) {
		free(dir);
		return 0;
	}
	say(o, &ev);
	memset(&p, 0, sizeof(p));
	if (o) {
		p.report = o->report;
		p.report_arg = o->report_arg;
	}
	if (img_pull_resolve(IMG_DEFAULT, NULL, &p) == 0 &&
	    img_pull(data, &p) == 0)
		rc = 0;
	free(p.url);
	free(p.name);
	free(p.checksums_url);
	if (rc == 0)
		return 0;
	ev.kind = IMG_EV_DEFAULT_BUILD;
	ev.detail = error_last(); /* why the pull failed */
	say(o, &ev);
	return img_build(data, IMG_DEFAULT, o, NULL);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void img_recipe_names(const char *dir, struct strvec *out)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t had = out->n;

	while (d && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		char *name;

		if (n <= 3 || strcmp(e->d_name + n - 3, ".sh"))
			continue;
		name = xstrndup(e->d_name, n - 3);
		if (img_name_valid(name))
			strvec_push(out, name);
		free(name);
	}
	if (d)
		closedir(d);
	if (out->n > had)
		qsort(out->v + had, out->n - had, sizeof(*out->v), cmp_name);
}

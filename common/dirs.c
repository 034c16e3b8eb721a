/* Resolving nook's directories: data, runtime, image cache, recipes. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

/* The source tree's recipes, for the binary in the build tree; and
 * where an installed nook finds them when it cannot tell its own path. */
#ifndef NOOK_RECIPES_DIR
#define NOOK_RECIPES_DIR "images/recipes"
#endif
#ifndef NOOK_BUILD_DIR
#define NOOK_BUILD_DIR ""
#endif
#ifndef NOOK_INSTALLED_RECIPES
#define NOOK_INSTALLED_RECIPES "/usr/local/share/nook/recipes"
#endif

static int set(const char *s)
{
	return s && *s;
}

/* The XDG spec says relative paths are invalid and to be ignored. */
static int xdg_set(const char *s)
{
	return set(s) && s[0] == '/';
}

static int data_and_run(struct nook_dirs *d, const struct nook_env *env)
{
	unsigned h;

	if (set(env->nook_home)) {
		if (env->nook_home[0] != '/')
			return errorf("NOOK_HOME must be an absolute path, not "
				      "\"%s\"", env->nook_home);
		d->data = xstrdup(env->nook_home);
		d->run = xasprintf("%s/run", env->nook_home);
		return 0;
	}
	if (xdg_set(env->xdg_data_home))
		d->data = xasprintf("%s/nook", env->xdg_data_home);
	else if (set(env->home))
		d->data = xasprintf("%s/.local/share/nook", env->home);
	else
		return errorf("cannot find a data directory: set NOOK_HOME or "
			      "HOME");
	/* one runtime directory per data directory: two HOMEs under one
	 * XDG_RUNTIME_DIR (a script's HOME=$(mktemp -d)) must not see, stop
	 * or prune each other's VMs of the same name */
	h = (unsigned)(fnv1a64(d->data, strlen(d->data)) >> 32);
	if (xdg_set(env->xdg_runtime_dir))
		d->run = xasprintf("%s/nook/%08x", env->xdg_runtime_dir, h);
	else
		d->run = xasprintf("/tmp/nook-%u/%08x", env->uid, h);
	return 0;
}

static char *cache_dir(const struct nook_env *env)
{
	if (set(env->nook_image_cache))
		return xstrdup(env->nook_image_cache);
	if (env->uid == 0)
		return xstrdup("/var/cache/nook");
	if (xdg_set(env->xdg_cache_home))
		return xasprintf("%s/nook", env->xdg_cache_home);
	return xasprintf("%s/.cache/nook", set(env->home) ? env->home : "/tmp");
}

/* The recipes that go with the binary exe: PREFIX/bin/nook's are in
 * PREFIX/share/nook/recipes, the build tree's in the source tree. */
static char *recipes_dir(const struct nook_env *env)
{
	const char *exe = env->exe, *slash;
	size_t len;
	char *bin, *prefix, *r;

	if (set(env->nook_recipes))
		return xstrdup(env->nook_recipes);
	if (!set(exe) || exe[0] != '/')
		return xstrdup(NOOK_INSTALLED_RECIPES);
	slash = strrchr(exe, '/');
	bin = xstrndup(exe, (size_t)(slash - exe));
	if (NOOK_BUILD_DIR[0] && !strcmp(bin, NOOK_BUILD_DIR)) {
		free(bin);
		return xstrdup(NOOK_RECIPES_DIR);
	}
	slash = strrchr(bin, '/');
	len = slash ? (size_t)(slash - bin) : 0;
	prefix = xstrndup(bin, len);
	r = xasprintf("%s/share/nook/recipes", prefix);
	free(prefix);
	free(bin);
	return r;
}

int nook_dirs_resolve(struct nook_dirs *d, const struct nook_env *env)
{
	memset(d, 0, sizeof(*d));
	if (data_and_run(d, env) < 0) {
		nook_dirs_free(d);
		return -1;
	}
	d->cache = cache_dir(env);
	d->recipes = recipes_dir(env);
	return 0;
}

char *path_canonical(const char *path)
{
	char *part, *real, *tok;
	const char *rest;
	struct buf b = BUF_INIT;
	size_t n;

	if (path[0] != '/')
		return xstrdup(path);
	/* the longest leading part that exists ("/" does) */
	part = xstrdup(path);
	for (;;) {
		char *slash;

		real = realpath(part, NULL);
		if (real)
			break;
		slash = strrchr(part, '/');
		if (slash == part)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	buf_adds(&b, strcmp(real, "/") ? real : "");
	rest = path + strlen(part);
	free(real);
	free(part);
	/* the rest, which does not exist: made by nook as it is spelled */
	while (*rest) {
		while (*rest == '/')
			rest++;
		n = strcspn(rest, "/");
		tok = xstrndup(rest, n);
		rest += n;
		if (!strcmp(tok, "..")) {
			char *up = b.p ? strrchr(b.p, '/') : NULL;

			if (up) {
				b.len = (size_t)(up - b.p);
				b.p[b.len] = '\0';
			}
		} else if (*tok && strcmp(tok, ".")) {
			buf_addf(&b, "/%s", tok);
		}
		free(tok);
	}
	if (!b.len)
		buf_adds(&b, "/");
	return b.p;
}

/* path_canonical() of an environment variable's value, kept in *keep. */
static const char *canonical_env(const char *name, char **keep)
{
	const char *v = getenv(name);

	*keep = v && *v ? path_canonical(v) : NULL;
	return *keep ? *keep : v;
}

int nook_dirs_from_environ(struct nook_dirs *d)
{
	/* a VM's QEMU is known by the path of its socket in its argv: two
	 * spellings of one directory would each see the other's VMs
	 * crashed, and a start would wipe a running one's sockets */
	char *kept[4];
	int ret;
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	struct nook_env env = {
		.nook_home = canonical_env("NOOK_HOME", &kept[0]),
		.xdg_data_home = canonical_env("XDG_DATA_HOME", &kept[1]),
		.home = canonical_env("HOME", &kept[2]),
		.xdg_runtime_dir = canonical_env("XDG_RUNTIME_DIR", &kept[3]),
		.xdg_cache_home = getenv("XDG_CACHE_HOME"),
		.nook_image_cache = getenv("NOOK_IMAGE_CACHE"),
		.nook_recipes = getenv("NOOK_RECIPES"),
		.uid = (unsigned)getuid(),
	};

	if (n > 0 && (size_t)n < sizeof(exe) - 1) {
		exe[n] = '\0';
		env.exe = exe;
	}
	ret = nook_dirs_resolve(d, &env);
	for (size_t i = 0; i < ARRAY_SIZE(kept); i++)
		free(kept[i]);
	return ret;
}

void nook_dirs_free(struct nook_dirs *d)
{
	if (!d)
		return;
	free(d->data);
	free(d->run);
	free(d->cache);
	free(d->recipes);
	d->data = d->run = d->cache = d->recipes = NULL;
}

const char *nook_env_path(void)
{
	return getenv("PATH");
}

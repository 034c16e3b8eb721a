/* Resolving nook's data and runtime directories. */
#include <stdlib.h>
#include <unistd.h>

#include "common.h"

static int set(const char *s)
{
	return s && *s;
}

int nook_dirs_resolve(struct nook_dirs *d, const struct nook_env *env)
{
	d->data = d->run = NULL;
	if (set(env->nook_home)) {
		if (env->nook_home[0] != '/')
			return errorf("NOOK_HOME must be an absolute path, not "
				      "\"%s\"", env->nook_home);
		d->data = xstrdup(env->nook_home);
		d->run = xasprintf("%s/run", env->nook_home);
		return 0;
	}
	/* The XDG spec says relative paths are invalid and to be ignored. */
	if (set(env->xdg_data_home) && env->xdg_data_home[0] == '/')
		d->data = xasprintf("%s/nook", env->xdg_data_home);
	else if (set(env->home))
		d->data = xasprintf("%s/.local/share/nook", env->home);
	else
		return errorf("cannot find a data directory: set NOOK_HOME or "
			      "HOME");
	if (set(env->xdg_runtime_dir) && env->xdg_runtime_dir[0] == '/')
		d->run = xasprintf("%s/nook", env->xdg_runtime_dir);
	else
		d->run = xasprintf("/tmp/nook-%u", env->uid);
	return 0;
}

int nook_dirs_from_environ(struct nook_dirs *d)
{
	struct nook_env env = {
		.nook_home = getenv("NOOK_HOME"),
		.xdg_data_home = getenv("XDG_DATA_HOME"),
		.home = getenv("HOME"),
		.xdg_runtime_dir = getenv("XDG_RUNTIME_DIR"),
		.uid = (unsigned)getuid(),
	};

	return nook_dirs_resolve(d, &env);
}

void nook_dirs_free(struct nook_dirs *d)
{
	free(d->data);
	free(d->run);
	d->data = d->run = NULL;
}

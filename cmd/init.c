/* nook init: a commented starter nook.yaml in the current directory. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "vm.h"

static const char usage[] =
	"usage: nook init\n"
	"\n"
	"Writes a commented starter nook.yaml into the current directory (never\n"
	"over an existing one): a VM named after the directory, with the keys\n"
	"a project file takes. Inside the tree, 'nook local start', 'shell',\n"
	"'sync', 'console', 'ssh-config', 'local stop/status/delete/logs/\n"
	"suspend/pause/unpause' and 'local snapshot list' given no NAME act on\n"
	"what it describes.\n";

static const char starter[] =
	"# nook.yaml: the VM (or cluster) of this project. Commands run in\n"
	"# this tree without a NAME act on it: nook local start, nook shell,\n"
	"# nook sync, nook console, nook ssh-config, nook local\n"
	"# stop|status|delete|logs|suspend|pause|unpause, nook local snapshot\n"
	"# list.\n"
	"# Options on the command line override what is here. Paths are\n"
	"# relative to this file.\n"
	"# The VM's name, or the cluster's.\n"
	"name: %s\n"
	"image: debian-12         # a name in the image store, or a path\n"
	"cpus: 2\n"
	"memory: 1G\n"
	"# disk: 10G              # grow the VM's disk to this size\n"
	"# user-data: ci/common.yaml       # cloud-init user-data\n"
	"# network-config: ci/net.yaml     # cloud-init network-config\n"
	"# ports: [\"8080:80\"]     # [ADDR:]HOST:GUEST[/udp]; HOST 0: a free one\n"
	"# accel: auto            # auto, kvm or tcg\n"
	"# timeout: 900           # seconds to wait for the guest\n"
	"\n"
	"# A cluster instead of one VM: nodes NAME-GROUP-I on a private\n"
	"# network (node I of the list gets the subnet's address I).\n"
	"# subnet: 10.77.0.0/24\n"
	"# nodes:\n"
	"#   - group: cp          # %s-cp-1\n"
	"#     count: 1\n"
	"#     memory: 2G         # any VM key above can be set per group\n"
	"#     user-data: ci/cp.yaml\n"
	"#   - group: worker      # %s-worker-1, %s-worker-2\n"
	"#     count: 2\n"
	"\n"
	"# What 'nook sync' with no arguments copies into the VM.\n"
	"sync:\n"
	"  - src: .\n"
	"    # dest: src          # default: SRC's name in the login home\n"
	"    exclude: [.git/]\n";

/* Room left in a VM name for a cluster's "-GROUP-N" after the file's. */
#define INIT_NAME_MAX 24

/* A VM name made of the directory's name: lower case, every run of
 * other characters a '-', from its first letter on, at most
 * INIT_NAME_MAX characters (MyApp, my_app, api.v2 are myapp, my-app,
 * api-v2, not all "dev"); "dev" when no letter is left. */
static char *name_for(const char *cwd)
{
	char *copy = xstrdup(cwd), *base = basename(copy);
	char name[INIT_NAME_MAX + 1];
	size_t n = 0;

	for (const char *c = base; *c && n < INIT_NAME_MAX; c++) {
		char ch = *c >= 'A' && *c <= 'Z' ? (char)(*c - 'A' + 'a') : *c;

		if ((ch >= 'a' && ch <= 'z') || (n && ch >= '0' && ch <= '9'))
			name[n++] = ch;
		else if (n && name[n - 1] != '-')
			name[n++] = '-';
	}
	while (n && name[n - 1] == '-')
		n--;
	name[n] = '\0';
	free(copy);
	return xstrdup(n ? name : "dev");
}

/* The process's umask (reading it means setting it; set back at once). */
static mode_t mode_mask(void)
{
	mode_t m = umask(0);

	umask(m);
	return m;
}

/* Write text to a new file path, never over one: a temporary file
 * beside it (mode 0666 less the umask, as any new file), synced, then
 * linked to path (link fails on an existing name, where rename would
 * replace it), then the temporary removed. */
static int write_new(const char *path, const char *text)
{
	char tmp[] = ".nook.yaml.XXXXXX";
	int fd = mkostemp(tmp, O_CLOEXEC), ret = -1, dfd;

	if (fd < 0) {
		char *here = getcwd(NULL, 0);

		error_errno("cannot make a file in %s", here ? here : ".");
		free(here);
		return -1;
	}
	if (fchmod(fd, 0666 & ~mode_mask()) < 0 ||
	    write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0) {
		error_errno("cannot write %s", tmp);
		close(fd);
	} else if (close(fd) < 0) {
		error_errno("cannot write %s", tmp);
	} else if (link(tmp, path) == 0) {
		ret = 0;
	} else if (errno == EEXIST) {
		errorf("%s was made meanwhile: nook init never writes over it",
		       path);
	} else {
		error_errno("cannot make %s", path);
	}
	unlink(tmp);
	dfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		if (ret == 0 && fsync(dfd) < 0)
			ret = error_errno("cannot sync this directory");
		close(dfd);
	}
	return ret;
}

/* cwd's nook.yaml, as the user would name it ("/nook.yaml" in /). */
static char *file_in(const char *cwd)
{
	return xasprintf("%s%s" PROJECT_FILE, cwd, strcmp(cwd, "/") ? "/" :
			 "");
}

/* A project file above cwd: this one will be found first below here,
 * so say that it is nested. */
static void say_parent(const char *cwd)
{
	char *parent = xstrdup(cwd), *slash = strrchr(parent, '/');
	char *file = NULL, *shown = NULL;

	if (slash && strcmp(cwd, "/")) {
		*(slash == parent ? slash + 1 : slash) = '\0';
		if (project_find(parent, geteuid(), &file, &shown) > 0) {
			char *esc = str_escaped(file);

			printf("(inside the tree of %s: below here this file "
			       "is used instead of it)\n", esc);
			free(esc);
		}
	}
	free(file);
	free(shown);
	free(parent);
}

/* A VM or cluster of that name exists already: another project's,
 * maybe, which this file's start would then take over. */
static void say_taken(struct nook_ctx *ctx, const char *name)
{
	const struct nook_dirs *d = ctx_dirs(ctx);
	struct vm *vm = NULL;

	if (!d)
		return;
	if (vm_cluster_exists(d, name) ||
	    (vm_open(d, name, 0, &vm) == 0 && vm_exists(vm)))
		warnf("a VM or cluster named %s exists already (another "
		      "project's?): this file's start would use it; if it is "
		      "not this project's, change name: in nook.yaml", name);
	else if (vm && vm_plain_name_check(d, name) < 0)
		warnf("so this file's start would be refused: change name: in "
		      "nook.yaml");
	vm_close(vm);
}

int cmd_init(struct nook_ctx *ctx, int argc, char **argv)
{
	char *cwd = NULL, *name = NULL, *text = NULL, *file = NULL, *esc;
	struct stat st;
	int rc = parse_help_only(argc, argv, usage, 0), there;

	if (rc)
		return rc < 0 ? 0 : rc;
	rc = 1;
	cwd = getcwd(NULL, 0);
	if (!cwd) {
		error_errno("cannot tell the current directory");
		goto out;
	}
	file = file_in(cwd);
	/* lstat: a symlink, even a dangling one, is a file already there */
	there = lstat(PROJECT_FILE, &st) == 0;
	if (there || errno != ENOENT) {
		errorf("%s exists already%s: nook init never writes over it; "
		       "edit it, or remove it and run nook init again", file,
		       there && S_ISLNK(st.st_mode) ? " (a symlink)" : "");
		goto out;
	}
	name = name_for(cwd);
	text = xasprintf(starter, name, name, name, name);
	if (write_new(PROJECT_FILE, text) < 0)
		goto out;
	esc = str_escaped(file);
	printf("wrote %s for VM %s: edit it, then 'nook local start'\n", esc,
	       name);
	free(esc);
	say_taken(ctx, name);
	say_parent(cwd);
	rc = 0;
out:
	free(file);
	free(text);
	free(name);
	free(cwd);
	return rc;
}

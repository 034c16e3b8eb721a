/* Unit tests for project/: nook.yaml's keys, types, every error's
 * message and line:column, did-you-mean, groups' node names and
 * overrides, paths relative to the file, and the upward search. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>

#include "project.h"
#include "testutil.h"

/* A project directory with ci/common.yaml, ci/cp.yaml and src/. */
static char *dir;

static int setup(void **state)
{
	char *p;

	(void)state;
	dir = make_tmpdir();
	p = xasprintf("%s/ci", dir);
	mkdir(p, 0700);
	free(p);
	p = xasprintf("%s/src", dir);
	mkdir(p, 0700);
	free(p);
	p = xasprintf("%s/ci/common.yaml", dir);
	write_file_atomic(p, "#cloud-config\n{}\n", 17, 0600);
	free(p);
	p = xasprintf("%s/ci/cp.yaml", dir);
	write_file_atomic(p, "#cloud-config\n{}\n", 17, 0600);
	free(p);
	p = xasprintf("%s/ci/bad.yaml", dir);
	write_file_atomic(p, "#cloud-config\n- a list\n", 23, 0600);
	free(p);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	remove_tree(dir);
	free(dir);
	return 0;
}

static int parse(const char *text, struct project *p)
{
	return project_parse(text, strlen(text), "nook.yaml", dir, p);
}

/* text must be refused with exactly this message (after "nook: "). */
static void refused(const char *text, const char *msg)
{
	struct project p;
	char *err;
	int rc;

	stderr_begin();
	rc = parse(text, &p);
	err = stderr_end();
	project_free(&p);
	if (rc != -1 || !strstr(err, msg))
		fail_msg("for:\n%s\nwanted: %s\ngot (rc %d): %s", text, msg, rc,
			 err);
	free(err);
}

/* refused() of len bytes (a NUL inside) */
static void refused_len(const char *text, size_t len, const char *msg)
{
	struct project p;
	char *err;
	int rc;

	stderr_begin();
	rc = project_parse(text, len, "nook.yaml", dir, &p);
	err = stderr_end();
	project_free(&p);
	if (rc != -1 || !strstr(err, msg))
		fail_msg("for:\n%s\nwanted: %s\ngot (rc %d): %s", text, msg, rc,
			 err);
	free(err);
}

static const char example[] =
	"name: dev                  # the cluster's name\n"
	"image: debian-12\n"
	"cpus: 2\n"
	"memory: 1G\n"
	"disk: 10G\n"
	"user-data: ci/common.yaml\n"
	"ports: [\"0:80\"]\n"
	"subnet: 10.77.0.0/24\n"
	"nodes:\n"
	"  - group: cp\n"
	"    count: 1\n"
	"    memory: 2G\n"
	"    user-data: ci/cp.yaml\n"
	"  - group: worker\n"
	"    count: 2\n"
	"sync:\n"
	"  - src: src\n"
	"    dest: /home/debian/src\n"
	"    exclude: [build/, .git/]\n";

/* A file refused still tells its name when it has a valid one, wherever
 * the error is: a start of another VM goes on without it. */
static void test_wrong_keeps_name(void **state)
{
	static const struct {
		const char *text, *name;
	} cases[] = {
		{ "name: wv\nmemory: lots\n", "wv" },
		{ "memory: lots\nname: wv\n", "wv" },
		{ "name: wv\nfrobnicate: 1\n", "wv" },
		{ "name: Not_A_Name\nmemory: lots\n", NULL },
		{ "nme: wv\n", NULL },
		{ "name: [wv]\n", NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct project p;
		int rc;

		stderr_begin();
		rc = parse(cases[i].text, &p);
		free(stderr_end());
		assert_int_equal(rc, -1);
		if (cases[i].name)
			assert_string_equal(p.name, cases[i].name);
		else
			assert_null(p.name);
		project_free(&p);
	}
}

static void test_example(void **state)
{
	struct project p;
	const struct project_group *g;
	char *common = xasprintf("%s/ci/common.yaml", dir);
	char *cp = xasprintf("%s/ci/cp.yaml", dir);
	char *src = xasprintf("%s/src", dir);
	char *n;

	(void)state;
	assert_int_equal(parse(example, &p), 0);
	assert_string_equal(p.name, "dev");
	assert_string_equal(p.vm.image, "debian-12");
	assert_int_equal(p.vm.cpus, 2);
	assert_true(p.vm.memory == 1ULL << 30);
	assert_true(p.vm.disk == 10ULL << 30);
	assert_string_equal(p.vm.user_data, common);
	assert_int_equal(p.vm.nports, 1);
	assert_int_equal(p.vm.ports[0].guest, 80);
	assert_string_equal(p.subnet, "10.77.0.0/24");
	assert_true(p.cluster);
	assert_int_equal(p.ngroups, 2);
	assert_int_equal(project_node_count(&p), 3);
	/* names NAME-GROUP-I, in order */
	n = project_node_name(&p, 0, &g);
	assert_string_equal(n, "dev-cp-1");
	free(n);
	/* the group's own keys over the top level's */
	assert_true(g->vm.memory == 2ULL << 30);
	assert_string_equal(g->vm.user_data, cp);
	assert_int_equal(g->vm.cpus, 2);
	assert_true(g->vm.disk == 10ULL << 30);
	n = project_node_name(&p, 1, &g);
	assert_string_equal(n, "dev-worker-1");
	free(n);
	/* a group without its own keys has the top level's */
	assert_true(g->vm.memory == 1ULL << 30);
	assert_string_equal(g->vm.user_data, common);
	assert_int_equal(g->vm.nports, 1);
	n = project_node_name(&p, 2, NULL);
	assert_string_equal(n, "dev-worker-2");
	free(n);
	assert_null(project_node_name(&p, 3, NULL));
	/* sync: src from the file's directory */
	assert_int_equal(p.nsyncs, 1);
	assert_string_equal(p.syncs[0].src, src);
	assert_string_equal(p.syncs[0].dest, "/home/debian/src");
	assert_int_equal(p.syncs[0].exclude.n, 2);
	assert_string_equal(p.syncs[0].exclude.v[1], ".git/");
	project_free(&p);
	project_free(&p); /* twice is fine */
	free(common);
	free(cp);
	free(src);
}

static void test_single_and_counts(void **state)
{
	struct project p;
	char *n;

	(void)state;
	assert_int_equal(parse("name: web\n", &p), 0);
	assert_false(p.cluster);
	assert_int_equal(project_node_count(&p), 0);
	assert_int_equal(p.nsyncs, 0);
	assert_int_equal(p.vm.cpus, 0); /* not said: start's default */
	project_free(&p);
	/* nodes: N, as --nodes N */
	assert_int_equal(parse("name: k\nnodes: 3\nmemory: 512M\n", &p), 0);
	assert_int_equal(project_node_count(&p), 3);
	n = project_node_name(&p, 2, NULL);
	assert_string_equal(n, "k-3");
	free(n);
	assert_true(p.groups[0].vm.memory == 512ULL << 20);
	project_free(&p);
	/* count defaults to 1; a path with a '/' for image is the file's */
	assert_int_equal(parse("name: k\nimage: img/disk.qcow2\nnodes:\n"
			       "  - group: a\n", &p), 0);
	assert_int_equal(project_node_count(&p), 1);
	n = xasprintf("%s/img/disk.qcow2", dir);
	assert_string_equal(p.vm.image, n);
	free(n);
	project_free(&p);
	/* an absolute user-data path stays as it is */
	n = xasprintf("name: a\nuser-data: %s/ci/cp.yaml\nsync:\n  - dest: x\n"
		      "    exclude: build/\n    delete: true\n", dir);
	assert_int_equal(parse(n, &p), 0);
	free(n);
	n = xasprintf("%s/ci/cp.yaml", dir);
	assert_string_equal(p.vm.user_data, n);
	free(n);
	assert_string_equal(p.syncs[0].src, dir); /* src: the file's dir */
	assert_int_equal(p.syncs[0].del, 1);
	assert_string_equal(p.syncs[0].exclude.v[0], "build/");
	project_free(&p);
	/* boot options */
	assert_int_equal(parse("name: a\naccel: tcg\nboot: disk\ncpu: max\n"
			       "timeout: 30\nports: []\n", &p), 0);
	assert_string_equal(p.vm.accel, "tcg");
	assert_string_equal(p.vm.cpu, "max");
	assert_int_equal(p.vm.timeout_s, 30);
	assert_true(p.vm.ports_given);
	assert_int_equal(p.vm.nports, 0);
	project_free(&p);
}

static void test_errors(void **state)
{
	(void)state;
	/* unknown keys, with the closest known one */
	refused("name: a\nmemroy: 1G\n",
		"nook.yaml:2:1: unknown key 'memroy' in the top level: did you "
		"mean memory?");
	refused("name: a\nnodes:\n  - group: w\n    cont: 2\n",
		"nook.yaml:4:5: unknown key 'cont' in a group: did you mean "
		"count?");
	refused("name: a\nsync:\n  - src: .\n    exlude: [a]\n",
		"nook.yaml:4:5: unknown key 'exlude' in a sync rule: did you "
		"mean exclude?");
	refused("NAME: a\n",
		"nook.yaml:1:1: unknown key 'NAME' in the top level: did you "
		"mean name?");
	refused("name: a\nfrobnicate: 1\n",
		"nook.yaml:2:1: unknown key 'frobnicate' in the top level (see "
		"'nook init' for the keys)");
	refused("name: a\nnodes:\n  - group: w\n    subnet: 10.1.0.0/24\n",
		"nook.yaml:4:5: subnet is for the whole file, not a group");
	/* types */
	refused("name: a\ncpus: [2]\n",
		"nook.yaml:2:7: cpus: expected a whole number, not a list");
	refused("name: a\nmemory: 100000G\n",
		"nook.yaml:2:9: memory 100000G is more than the 4T a VM can "
		"have");
	refused("name: a\ndisk: 65T\n",
		"nook.yaml:2:7: disk 65T is more than the 64T a VM can have");
	refused("name: a\nmemory:\n  x: 1\n",
		"nook.yaml:3:3: memory: expected a size such as 2G, not a "
		"mapping");
	refused("name: a\nports: \"8080:80\"\n",
		"nook.yaml:2:8: ports: expected a list such as [\"8080:80\"], "
		"not a single value");
	refused("name: a\nnodes: {}\n",
		"nook.yaml:2:8: nodes: expected a number or a list of groups");
	refused("name: a\nsync:\n  - .\n",
		"nook.yaml:3:5: sync: each entry is a rule");
	refused("name: a\nsync:\n  - delete: maybe\n",
		"nook.yaml:3:13: delete: expected true or false, not 'maybe'");
	refused("name: a\naccel: fast\n",
		"nook.yaml:2:8: accel cannot be 'fast': one of auto, kvm, tcg");
	/* values through the shared parsers */
	refused("name: a\ncpus: 0\n",
		"nook.yaml:2:7: bad cpus '0': expected a whole number from 1 "
		"to 64");
	refused("name: a\nmemory: 1X\n",
		"nook.yaml:2:9: bad memory '1X': expected a size such as 512M "
		"or 2G");
	refused("name: a\nmemory: 64M\n",
		"nook.yaml:2:9: memory 64M is below the 128M a guest needs");
	refused("name: a\nports: [\"8080:80\", \"99999:1\"]\n",
		"nook.yaml:2:20: bad port spec '99999:1': host port must be "
		"0-65535");
	refused("name: a\nsubnet: 10.0.2.0/24\nnodes: 2\n",
		"nook.yaml:2:9: subnet '10.0.2.0/24' overlaps 10.0.2.0/24");
	refused("name: a\nsubnet: 10.9.0.0/24\n",
		"nook.yaml:2:9: subnet is for a cluster: add nodes");
	/* counts */
	refused("name: a\nnodes:\n  - group: w\n    count: -1\n",
		"nook.yaml:4:12: bad count '-1': expected a whole number from "
		"1 to 64");
	refused("name: a\nnodes:\n  - group: w\n    count: 0\n",
		"nook.yaml:4:12: bad count '0'");
	refused("name: a\nnodes: 0\n", "nook.yaml:2:8: bad nodes '0'");
	refused("name: a\nnodes:\n  - group: w\n    count: 40\n"
		"  - group: v\n    count: 40\n",
		"nook.yaml:3:3: nodes: 80 nodes; a cluster has at most 64");
	/* files */
	refused("name: a\nuser-data: ci/none.yaml\n",
		"nook.yaml:2:12: user-data: cannot read ci/none.yaml: No such "
		"file or directory (paths are relative to the directory of "
		"this file)");
	refused("name: a\nnodes:\n  - group: w\n    network-config: n.yaml\n",
		"nook.yaml:4:21: network-config: cannot read n.yaml");
	/* a seed file checked as start checks it, where the file names it */
	refused("name: a\nnodes:\n  - group: w\n    user-data: ci/bad.yaml\n",
		"nook.yaml:4:16: ci/bad.yaml:2:1: the top level must be a "
		"mapping");
	refused("name: a\nnetwork-config: ci/bad.yaml\n",
		"nook.yaml:2:17: ci/bad.yaml:2:1: the top level must be a "
		"mapping");
	refused("name: a\nsync:\n  - src: ci/cp.yaml\n",
		"nook.yaml:3:10: src: ci/cp.yaml is not a directory");
	/* duplicates */
	refused("name: a\ncpus: 1\ncpus: 2\n",
		"nook.yaml:3:1: duplicate key 'cpus' (first at line 2)");
	refused("name: a\nnodes:\n  - group: w\n  - group: v\n  - group: w\n",
		"nook.yaml:5:12: duplicate group 'w' (first at line 3)");
	refused("name: a\nnodes:\n  - group: w\n    count: 2\n"
		"    ports: [\"8080:80\"]\n",
		"nook.yaml:5:12: ports: host port 8080 would be forwarded to 2 "
		"nodes");
	/* names */
	refused("name: Dev\n",
		"nook.yaml:1:7: VM name \"Dev\" must start with a lower-case "
		"letter");
	refused("cpus: 1\n", "nook.yaml:1:1: no name: add 'name: NAME'");
	refused("name: a\nnodes:\n  - count: 1\n",
		"nook.yaml:3:5: a group needs its name: add 'group: NAME'");
	refused("name: a\nnodes:\n  - group: W\n",
		"nook.yaml:3:12: group 'W': a group's name is part of its "
		"nodes' VM names");
	refused("name: abcdefghijklmnopqrstuvwxyz12\nnodes:\n  - group: grp\n",
		"nook.yaml:3:12: node abcdefghijklmnopqrstuvwxyz12-grp-1 is not "
		"a valid VM name");
	/* the shape of the file */
	refused("", "nook.yaml:1:1: empty: it needs at least 'name: NAME'");
	refused("# only a comment\n", "nook.yaml:1:1: empty");
	refused("- a\n- b\n", "nook.yaml:1:1: the top level must be a mapping "
		"(key: value lines), not a list");
	refused("name: a\n[x\n", "nook.yaml:3:1: ");
	refused("name: a\n---\nname: b\n",
		"nook.yaml:3:1: a second document: nook.yaml holds one");
	refused("name: a\n? [x]\n: 1\n",
		"nook.yaml:2:3: a key in the top level must be a word, not a "
		"list");
}

/* What the review found: every message at its own place, nothing a
 * terminal acts on echoed, values YAML calls nothing refused. */
static void test_review(void **state)
{
	struct buf many = BUF_INIT;

	(void)state;
	/* each group's own entry, not the first one's */
	refused("name: a\nnodes:\n  - group: w\n  - group: abcdefghijklmnopqrst"
		"uvwxyz12345\n",
		"nook.yaml:4:12: node a-abcdefghijklmnopqrstuvwxyz12345-1 is "
		"not a valid VM name");
	refused("name: a\nnodes:\n  - group: w\n  - group: v\n    count: 2\n"
		"    ports: [\"8080:80\"]\n",
		"nook.yaml:6:12: ports: host port 8080 would be forwarded to 2 "
		"nodes");
	/* the reader's errors where they are, not at 1:1 */
	refused_len("name: a\ncpus: \0\n", 16,
		    "nook.yaml:2:7: control characters are not allowed");
	refused("name: a\ncpus: \xff\n",
		"nook.yaml:2:7: invalid leading UTF-8 octet");
	/* escapes are shown, not sent to the terminal */
	refused("name: dev\nmemory: \"\\e]0;owned\\a\\e[2J\"\n",
		"nook.yaml:2:9: memory: a control character in "
		"'\\x1b]0;owned\\x07\\x1b[2J'");
	refused("name: dev\n\"me\\u009bmory\": 1G\n",
		"unknown key 'me\\u009bmory'");
	refused("name: dev\n? |\n  a\n  b\n: 1\n",
		"nook.yaml:2:3: unknown key 'a\\x0ab\\x0a' in the top level");
	refused_len("name: dev\n\"cp\\0us\": 1\n", 20,
		    "nook.yaml:2:1: a key in the top level holds a NUL");
	/* tags and nothing */
	refused("name: a\nmemory: !custom 1G\n",
		"nook.yaml:2:9: memory: an unknown tag !custom");
	refused("name: a\nimage: ~\n",
		"nook.yaml:2:8: image: expected an image name or path, not "
		"nothing");
	/* kernel is a file */
	refused("name: a\nkernel: ci\n", "nook.yaml:2:9: kernel: ci is not a "
		"file");
	/* ports: one forward of a host port per VM; bounded */
	refused("name: a\nports: [\"8080:80\", \"8080:81\"]\n",
		"nook.yaml:2:20: ports: host port 8080 is forwarded twice");
	refused("name: a\nports: [\"127.0.0.1:8080:80\", \"0.0.0.0:8080:81\"]"
		"\n", "nook.yaml:2:30: ports: 0.0.0.0:8080:81 forwards from "
		"0.0.0.0: a project file forwards only from loopback");
	refused("name: a\nnodes:\n  - group: w\n    ports: [\"192.168.1.5:80:80"
		"\"]\n", "to open it, give it as --port");
	buf_adds(&many, "name: a\nports: [");
	for (int i = 0; i <= PROJECT_MAX_PORTS; i++)
		buf_addf(&many, "%s\"%d:80\"", i ? ", " : "", 1000 + i);
	buf_adds(&many, "]\n");
	refused(many.p, "nook.yaml:2:8: ports: 65 forwards; a VM has at most "
		"64");
	buf_free(&many);
	buf_adds(&many, "name: a\nsync:\n  - exclude: [");
	for (int i = 0; i <= PROJECT_MAX_EXCLUDES; i++)
		buf_addf(&many, "%sx%d", i ? ", " : "", i);
	buf_adds(&many, "]\n");
	refused(many.p, "nook.yaml:3:14: exclude: 257 patterns; a rule has at "
		"most 256");
	buf_free(&many);
}

/* Ports on other addresses are other ports; sync sources are resolved
 * ("." is the directory itself). */
static void test_review_accepted(void **state)
{
	struct project p;
	char *real = realpath(dir, NULL), *ci = xasprintf("%s/ci", real);

	(void)state;
	assert_int_equal(parse("name: a\nnodes:\n  - group: w\n    ports: "
			       "[\"127.0.0.1:8080:80\"]\n  - group: v\n    "
			       "ports: [\"127.0.0.2:8080:80\"]\n", &p), 0);
	project_free(&p);
	assert_int_equal(parse("name: a\nsync:\n  - src: .\n  - src: ci/\n"
			       "  - src: ci/..\n", &p), 0);
	assert_int_equal(p.nsyncs, 3);
	assert_string_equal(p.syncs[0].src, real);
	assert_string_equal(p.syncs[1].src, ci);
	assert_string_equal(p.syncs[2].src, real);
	project_free(&p);
	free(real);
	free(ci);
}

/* Paths that lead out of the project (a cloned repository's file
 * naming ~/.ssh): refused, by where they lead, symlinks followed. */
static void test_outside(void **state)
{
	char *out = make_tmpdir(), *f, *t;
	struct project p;

	(void)state;
	f = xasprintf("%s/secret.yaml", out);
	write_file_atomic(f, "#cloud-config\n{}\n", 17, 0600);
	t = xasprintf("%s/ci/link.yaml", dir);
	assert_int_equal(symlink(f, t), 0);
	free(t);
	t = xasprintf("%s/ci/alias.yaml", dir);
	assert_int_equal(symlink("common.yaml", t), 0);
	free(t);
	t = xasprintf("%s/ci/away", dir);
	assert_int_equal(symlink(out, t), 0);
	free(t);

	refused("name: a\nsync:\n  - src: ..\n",
		"nook.yaml:3:10: src: .. leads outside this project (");
	refused("name: a\nsync:\n  - src: /\n", "to copy it, give it to "
		"'nook sync SRC DEST'");
	refused("name: a\nsync:\n  - src: ci/away\n", "src: ci/away leads "
		"outside this project");
	t = xasprintf("name: a\nuser-data: %s\n", f);
	refused(t, "user-data: ");
	refused(t, "to use it, give it as --user-data");
	free(t);
	refused("name: a\nuser-data: ci/link.yaml\n",
		"nook.yaml:2:12: user-data: ci/link.yaml leads outside");
	refused("name: a\nnodes:\n  - group: w\n    network-config: "
		"ci/away/secret.yaml\n", "give it as --network-config");
	t = xasprintf("name: a\nkernel: %s\n", f);
	refused(t, "give it as --kernel");
	free(t);
	t = xasprintf("name: a\nimage: %s/disk.qcow2\n", out);
	refused(t, "import it ('nook images import PATH --name NAME')");
	free(t);
	refused("name: a\nimage: ci/away/disk.qcow2\n", "image: ci/away/"
		"disk.qcow2 leads outside");
	/* a path not there yet: by its nearest directory; one that climbs
	 * past what is missing cannot be placed */
	refused("name: a\nimage: img/no/../../../disk.qcow2\n",
		"leads outside");
	refused("name: a\nimage: img/no/../disk.qcow2\n", "leads outside");
	assert_int_equal(parse("name: a\nimage: img/new/./disk.qcow2\n",
			       &p), 0);
	project_free(&p);
	/* a link realpath cannot follow (a deleted file's /proc/self/fd/N)
	 * opens, yet is no file of the project */
	{
		char *tmp = xasprintf("%s/gone", out), *fd;
		int h = open(tmp, O_RDWR | O_CREAT, 0600);

		assert_true(h >= 0);
		assert_int_equal(unlink(tmp), 0);
		fd = xasprintf("/proc/self/fd/%d", h);
		t = xasprintf("%s/ci/fd.yaml", dir);
		assert_int_equal(symlink(fd, t), 0);
		refused("name: a\nuser-data: ci/fd.yaml\n",
			"user-data: cannot tell where ci/fd.yaml leads");
		unlink(t);
		close(h);
		free(t);
		free(fd);
		free(tmp);
	}
	/* a symlink that stays inside, and a store name, are taken */
	assert_int_equal(parse("name: a\nuser-data: ci/alias.yaml\n"
			       "image: debian-12\n", &p), 0);
	assert_string_equal(p.vm.image, "debian-12");
	project_free(&p);
	/* the project reached through a symlink: its own files are in it */
	t = xasprintf("%s/proj", out);
	assert_int_equal(symlink(dir, t), 0);
	assert_int_equal(project_parse("name: a\nuser-data: ci/cp.yaml\n"
				       "sync:\n  - src: src\n", 49,
				       "nook.yaml", t, &p), 0);
	project_free(&p);
	free(t);
	free(f);
	remove_tree(out);
	free(out);
}

/* A start's options from the file: the command line's over the top
 * level's or the group's; the nodes NAME-GROUP-I with theirs; the checks
 * a start makes applied to what is merged. */
static void test_start_opts(void **state)
{
	struct vm_start_opts o, given;
	struct project_nodes nodes;
	struct project p;
	char *cp = xasprintf("%s/ci/cp.yaml", dir), *err;

	(void)state;
	assert_int_equal(parse(example, &p), 0);
	memset(&given, 0, sizeof(given));
	given.cpus = 4;
	o = given;
	project_fill_opts(&o, &p.vm);
	assert_int_equal(o.cpus, 4);
	assert_true(o.memory == 1ULL << 30);
	assert_string_equal(o.image, "debian-12");
	assert_int_equal(o.nports, 1);
	project_nodes(&p, &given, &nodes);
	assert_int_equal(nodes.n, 3);
	assert_string_equal(nodes.list[0].name, "dev-cp-1");
	assert_string_equal(nodes.list[2].name, "dev-worker-2");
	assert_ptr_equal(nodes.list[1].o, &nodes.opts[1]);
	assert_true(nodes.opts[0].memory == 2ULL << 30);
	assert_string_equal(nodes.opts[0].user_data, cp);
	assert_true(nodes.opts[1].memory == 1ULL << 30);
	assert_int_equal(nodes.opts[0].cpus, 4);
	project_nodes_free(&nodes);
	project_free(&p);
	/* kernel: in the file, boot disk on the command line: refused once
	 * merged (each alone is fine) */
	assert_int_equal(parse("name: a\nkernel: ci/cp.yaml\n", &p), 0);
	memset(&o, 0, sizeof(o));
	o.boot = "disk";
	project_fill_opts(&o, &p.vm);
	stderr_begin();
	assert_int_equal(vm_start_opts_check(&o), -1);
	err = stderr_end();
	assert_non_null(strstr(err, "a kernel is for direct boot, not boot "
			       "disk"));
	free(err);
	project_free(&p);
	assert_int_equal(parse("name: a\ninitrd: ci/cp.yaml\n", &p), 0);
	memset(&o, 0, sizeof(o));
	project_fill_opts(&o, &p.vm);
	stderr_begin();
	assert_int_equal(vm_start_opts_check(&o), -1);
	err = stderr_end();
	assert_non_null(strstr(err, "an initrd goes with a kernel"));
	free(err);
	project_free(&p);
	free(cp);
}

static void test_bounds(void **state)
{
	struct buf deep = BUF_INIT;
	struct project p;
	char *err, *big;

	(void)state;
	buf_adds(&deep, "name: a\nsync: ");
	for (int i = 0; i < 100000; i++)
		buf_adds(&deep, "[");
	stderr_begin();
	assert_int_equal(project_parse(deep.p, deep.len, "nook.yaml", dir, &p),
			 -1);
	err = stderr_end();
	assert_non_null(strstr(err, "nook.yaml:2:"));
	assert_non_null(strstr(err, "nested more than 16 levels deep"));
	free(err);
	project_free(&p);
	buf_free(&deep);
	big = xmalloc(PROJECT_MAX_BYTES + 2);
	memset(big, '#', PROJECT_MAX_BYTES + 1);
	big[PROJECT_MAX_BYTES + 1] = '\0';
	stderr_begin();
	assert_int_equal(project_parse(big, PROJECT_MAX_BYTES + 1,
				       "nook.yaml", dir, &p), -1);
	err = stderr_end();
	assert_non_null(strstr(err, "more than the 1024 KiB"));
	free(err);
	free(big);
	project_free(&p);
	/* an anchor inside its own list does not loop: the alias is read
	 * once, and its entry (a mapping) is no pattern */
	refused("name: a\nsync: &s\n  - exclude: *s\n",
		"nook.yaml:3:5: exclude: expected a pattern, not a mapping");
	/* an alias bomb: a 100 KB file whose one rule of 200 patterns of
	 * 400 bytes is named 40 times would be 3 MB of values; refused
	 * before it is copied */
	buf_adds(&deep, "name: a\nsync:\n  - &s {src: ., exclude: [&p ");
	for (int i = 0; i < 400; i++)
		buf_adds(&deep, "x");
	for (int i = 1; i < 200; i++)
		buf_adds(&deep, ", *p");
	buf_adds(&deep, "]}\n");
	for (int i = 0; i < 40; i++)
		buf_adds(&deep, "  - *s\n");
	refused(deep.p, "with its aliases (*name) repeated");
	buf_free(&deep);
	/* 60,000 groups in a 1 MiB file: refused by their number, not
	 * after each is read and compared with every one before it (17 s
	 * of CPU) */
	buf_adds(&deep, "name: a\nnodes:\n");
	for (int i = 0; i < 60000; i++)
		buf_addf(&deep, "- group: g%d\n", i);
	refused(deep.p, "nook.yaml:3:1: nodes: 60000 groups; a cluster has "
		"at most 64 nodes");
	buf_free(&deep);
	/* one group more than nodes: said as groups */
	buf_adds(&deep, "name: a\nnodes:\n");
	for (int i = 0; i < 65; i++)
		buf_addf(&deep, "- group: g%d\n", i);
	refused(deep.p, "nodes: 65 groups; a cluster has at most 64 nodes");
	buf_free(&deep);
}

/* Unknown keys get the known one they are a typo of, if any. */
static void test_key_typos(void **state)
{
	(void)state;
	/* a far word gets no guess */
	refused("name: a\nzz: 1\n", "unknown key 'zz' in the top level (see");
	refused("name: a\nuserdata: x\n", "did you mean user-data?");
	refused("name: a\nCPUS: 1\n", "unknown key 'CPUS'");
}

/* A file, then project_find() and project_load() from below it. */
static void test_find_and_load(void **state)
{
	char *sub = xasprintf("%s/src/a/b", dir);
	char *file = xasprintf("%s/nook.yaml", dir);
	char *found = NULL, *shown = NULL;
	struct project p;

	(void)state;
	assert_int_equal(mkdir_p(sub, 0700), 0);
	assert_int_equal(write_file_atomic(file, example, strlen(example),
					   0600), 0);
	assert_int_equal(project_find(sub, getuid(), &found, &shown), 1);
	assert_string_equal(found, file);
	assert_string_equal(shown, "../../../nook.yaml");
	free(found);
	free(shown);
	assert_int_equal(project_find(dir, getuid(), &found, &shown), 1);
	assert_string_equal(shown, "nook.yaml");
	free(found);
	free(shown);
	/* the relative paths are from the file's directory wherever the
	 * search started */
	assert_int_equal(project_load(file, "../nook.yaml", getuid(), &p),
			 PROJECT_LOADED);
	assert_string_equal(p.dir, dir);
	assert_string_equal(p.path, "../nook.yaml");
	assert_int_equal(strncmp(p.vm.user_data, dir, strlen(dir)), 0);
	project_free(&p);
	unlink(file);
	/* none up to the root (a fresh tmp tree has none above it, unless
	 * someone left one in /tmp or /) */
	if (access("/tmp/nook.yaml", F_OK) != 0 &&
	    access("/nook.yaml", F_OK) != 0) {
		assert_int_equal(project_find(sub, getuid(), &found, &shown), 0);
		assert_null(found);
	}
	free(sub);
	free(file);
}

/* As git refuses another user's repository: a nook.yaml another user
 * owns, or found through a directory another user owns, is refused,
 * naming the file and why. */
static void test_trust(void **state)
{
	char *top = xasprintf("%s/trust", dir), *sub, *file;
	char *found = NULL, *shown = NULL, *err;
	uid_t me = getuid(), other = 65534;
	struct project p;

	(void)state;
	sub = xasprintf("%s/sub", top);
	file = xasprintf("%s/nook.yaml", top);
	assert_int_equal(mkdir_p(sub, 0755), 0);
	assert_int_equal(write_file_atomic(file, "name: a\n", 8, 0644), 0);
	/* not root: the files are mine, and "me" is someone else */
	if (me != 0) {
		other = me;
		me = me + 1;
	} else {
		assert_int_equal(chown(file, other, other), 0);
	}
	stderr_begin();
	assert_int_equal(project_find(sub, me, &found, &shown), -1);
	err = stderr_end();
	assert_null(found);
	assert_non_null(strstr(err, file));
	assert_non_null(strstr(err, "is owned by"));
	assert_non_null(strstr(err, "not by you"));
	free(err);
	/* project_load() checks the owner against the same me */
	stderr_begin();
	assert_int_equal(project_load(file, "nook.yaml", me, &p),
			 PROJECT_UNREADABLE);
	err = stderr_end();
	assert_non_null(strstr(err, "is owned by"));
	free(err);
	project_free(&p);
	/* and loads the file of the me it is given */
	assert_int_equal(project_load(file, "nook.yaml", other, &p),
			 PROJECT_LOADED);
	project_free(&p);
	if (getuid() == 0) {
		/* root's file in a directory another user owns */
		assert_int_equal(chown(file, 0, 0), 0);
		assert_int_equal(chown(top, other, other), 0);
		stderr_begin();
		assert_int_equal(project_find(sub, 0, &found, &shown), -1);
		err = stderr_end();
		assert_non_null(strstr(err, "not used"));
		assert_non_null(strstr(err, top));
		free(err);
		/* and below it, a directory of mine: the same */
		assert_int_equal(chown(top, 0, 0), 0);
		assert_int_equal(chown(sub, other, other), 0);
		stderr_begin();
		assert_int_equal(project_find(sub, 0, &found, &shown), -1);
		err = stderr_end();
		assert_non_null(strstr(err, sub));
		free(err);
		assert_int_equal(chown(sub, 0, 0), 0);
		/* all root's: used */
		assert_int_equal(project_find(sub, 0, &found, &shown), 1);
		assert_string_equal(found, file);
		free(found);
		free(shown);
	}
	remove_tree(top);
	free(top);
	free(sub);
	free(file);
}

/* Not a regular file: said what it is, never read (a FIFO would block),
 * never skipped for a parent's file. */
static void test_not_a_file(void **state)
{
	char *top = xasprintf("%s/odd", dir), *sub, *file, *err;
	char *found = NULL, *shown = NULL;
	struct project p;

	(void)state;
	sub = xasprintf("%s/sub", top);
	file = xasprintf("%s/nook.yaml", sub);
	assert_int_equal(mkdir_p(sub, 0700), 0);
	/* a parent's good file must not be used instead */
	free(file);
	file = xasprintf("%s/nook.yaml", top);
	assert_int_equal(write_file_atomic(file, example, strlen(example),
					   0600), 0);
	free(file);
	file = xasprintf("%s/nook.yaml", sub);
	assert_int_equal(symlink("missing.yaml", file), 0);
	assert_int_equal(project_find(sub, getuid(), &found, &shown), 1);
	assert_string_equal(found, file);
	stderr_begin();
	assert_int_equal(project_load(found, shown, getuid(), &p),
			 PROJECT_UNREADABLE);
	err = stderr_end();
	assert_non_null(strstr(err, "is a symlink to missing.yaml, which does "
			       "not exist"));
	free(err);
	free(found);
	free(shown);
	project_free(&p);
	unlink(file);
	assert_int_equal(mkfifo(file, 0600), 0);
	stderr_begin();
	assert_int_equal(project_load(file, "nook.yaml", getuid(), &p),
			 PROJECT_UNREADABLE);
	err = stderr_end();
	assert_non_null(strstr(err, "it is a FIFO, not a file"));
	free(err);
	project_free(&p);
	unlink(file);
	assert_int_equal(mkdir(file, 0700), 0);
	stderr_begin();
	assert_int_equal(project_load(file, "nook.yaml", getuid(), &p),
			 PROJECT_UNREADABLE);
	err = stderr_end();
	assert_non_null(strstr(err, "it is a directory, not a file"));
	free(err);
	project_free(&p);
	rmdir(file);
	/* a FIFO named as user-data: refused, not waited on */
	free(file);
	file = xasprintf("%s/ci/fifo", dir);
	assert_int_equal(mkfifo(file, 0600), 0);
	refused("name: a\nuser-data: ci/fifo\n",
		"nook.yaml:2:12: cannot read");
	refused("name: a\nuser-data: ci/fifo\n", "it is a FIFO, not a file");
	unlink(file);
	remove_tree(top);
	free(top);
	free(sub);
	free(file);
}

/* project_load() of a file swapped after project_find() looked at it
 * (as a user who may write its directory could): it checks what it
 * opens, and reads that, not what was found. */
static void swapped(const char *found, const char *want)
{
	struct project p;
	char *err;

	stderr_begin();
	assert_int_equal(project_load(found, "nook.yaml", getuid(), &p),
			 PROJECT_UNREADABLE);
	err = stderr_end();
	if (!strstr(err, want))
		fail_msg("wanted: %s\ngot: %s", want, err);
	free(err);
	project_free(&p);
}

static void test_swap_after_find(void **state)
{
	char *top = xasprintf("%s/swap", dir), *file, *other;
	char *found = NULL, *shown = NULL;

	(void)state;
	file = xasprintf("%s/nook.yaml", top);
	other = xasprintf("%s/theirs.yaml", top);
	assert_int_equal(mkdir_p(top, 0700), 0);
	assert_int_equal(write_file_atomic(file, "name: a\n", 8, 0600), 0);
	assert_int_equal(project_find(top, getuid(), &found, &shown), 1);
	/* one anyone may write */
	assert_int_equal(write_file_atomic(other, "name: b\n", 8, 0600), 0);
	assert_int_equal(chmod(other, 0666), 0);
	assert_int_equal(rename(other, file), 0);
	swapped(found, "nook.yaml: not used: it has mode 0666");
	if (getuid() == 0) {
		/* another user's */
		assert_int_equal(write_file_atomic(other, "name: b\n", 8,
						   0644), 0);
		assert_int_equal(chown(other, 65534, 65534), 0);
		assert_int_equal(rename(other, file), 0);
		swapped(found, "nook.yaml: not used: ");
		swapped(found, "nook.yaml is owned by");
		/* a symlink of mine to another user's */
		assert_int_equal(write_file_atomic(other, "name: b\n", 8,
						   0644), 0);
		assert_int_equal(chown(other, 65534, 65534), 0);
		assert_int_equal(unlink(file), 0);
		assert_int_equal(symlink("theirs.yaml", file), 0);
		swapped(found, "not used: the file it links to is owned by");
	}
	remove_tree(top);
	free(found);
	free(shown);
	free(other);
	free(file);
	free(top);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_wrong_keeps_name),
		cmocka_unit_test(test_single_and_counts),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_review),
		cmocka_unit_test(test_review_accepted),
		cmocka_unit_test(test_start_opts),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_key_typos),
		cmocka_unit_test(test_find_and_load),
		cmocka_unit_test(test_trust),
		cmocka_unit_test(test_outside),
		cmocka_unit_test(test_not_a_file),
		cmocka_unit_test(test_swap_after_find),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

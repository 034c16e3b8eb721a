/*
 * project: nook.yaml, the project file. A tree that holds one describes
 * its VM, or its cluster of VMs in groups, and the files to sync into it;
 * commands given no NAME inside the tree act on what it describes.
 *
 * Calling sequence: project_open() finds nook.yaml upward from the
 * current directory (as git finds .git) and loads it, or project_load()
 * one file, or project_parse() a buffer; then the struct's fields; then
 * project_free(). Every check (keys, types, sizes, ports, names, that the
 * files it names can be read) is made while parsing, so nothing starts
 * from a file that is wrong. Errors come back as -1 having said
 * "PATH:LINE:COLUMN: what was wrong" through errorf().
 */
#ifndef NOOK_PROJECT_H
#define NOOK_PROJECT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common.h"
#include "net.h"
#include "vm.h"

#define PROJECT_FILE "nook.yaml"
/* A project file is a few dozen lines; these stop a wrong file given by
 * mistake (a disk image, /dev/zero) and nesting that makes parsers crawl. */
#define PROJECT_MAX_BYTES ((size_t)1 << 20)
#define PROJECT_MAX_DEPTH 16
#define PROJECT_MAX_NODES VM_CLUSTER_MAX_NODES
#define PROJECT_MAX_PORTS 64      /* forwards per VM */
#define PROJECT_MAX_EXCLUDES 256  /* patterns per sync rule */

/* What a VM is given, at the top or for a group; 0/NULL: not said. */
struct project_vm {
	char *image;            /* a store name, or a path made absolute */
	char *within;           /* the project's directory (resolved) */
	char *user_data;        /* paths: absolute, readable when parsed */
	char *network_config;
	char *kernel, *initrd;
	char *boot;             /* "disk" or "direct" */
	char *append;
	char *accel;            /* "auto", "kvm" or "tcg" */
	char *cpu;
	int cpus;
	uint64_t memory, disk;
	int timeout_s;
	struct net_port *ports;
	size_t nports;
	int ports_given;
};

/* A group of nodes: NAME-GROUP-1..NAME-GROUP-COUNT, or for "nodes: N"
 * one group without a name: NAME-1..NAME-N. */
struct project_group {
	char *name;             /* NULL: the unnamed group of "nodes: N" */
	int count;
	struct project_vm vm;   /* the top level's, the group's own on top */
};

/* A sync rule: rsync SRC into DEST leaving out the exclude patterns. */
struct project_sync {
	char *src;              /* absolute */
	char *dest;             /* NULL: SRC's name in the login home */
	struct strvec exclude;
	int del;                /* delete: true */
};

struct project {
	char *path;             /* the file as the user would find it */
	char *dir;              /* the file's directory, absolute */
	char *name;             /* the VM's, or the cluster's */
	struct project_vm vm;
	char *subnet;           /* a cluster's, or NULL */
	int cluster;            /* "nodes" was given */
	struct project_group *groups;
	size_t ngroups;
	struct project_sync *syncs;
	size_t nsyncs;
};

/*
 * Parse len bytes of buf, a nook.yaml, into *p (freed with
 * project_free(), also on failure). path names the file in messages; dir
 * (absolute) is where its relative paths start. 0, or -1 having said
 * where and what was wrong; then p->path is set, and p->name too when
 * the file's name could be read (a file wrong elsewhere still tells
 * which VM it is of), else NULL.
 */
int project_parse(const char *buf, size_t len, const char *path,
		  const char *dir, struct project *p);

/* What project_load() and project_open() come back with. */
enum project_status {
	PROJECT_NONE = 0,        /* no nook.yaml in the tree */
	PROJECT_LOADED = 1,
	PROJECT_INVALID = -1,    /* its text is wrong (said): a usage error */
	PROJECT_UNREADABLE = -2, /* it cannot be read, or is not trusted
				  * (said) */
};

/* Read file, a regular file of at most PROJECT_MAX_BYTES, and parse it;
 * shown names it in messages. Its owner (and that of what a symlink leads
 * to) must be me or root, as project_find() checks: the caller's
 * geteuid(), passed in so that the check can be tested. PROJECT_LOADED,
 * PROJECT_INVALID or PROJECT_UNREADABLE. */
int project_load(const char *file, const char *shown, uid_t me,
		 struct project *p);

/*
 * The nook.yaml of the tree dir is in: dir's, else its parent's ... up
 * to the root (a symlink or a directory by that name is found too, to be
 * refused when read). 1 with *file (absolute) and *shown (relative to
 * dir when above it: "../nook.yaml") allocated; 0 when there is none; -1
 * having said why when the file, or a directory from dir up to it, is
 * owned by another user than me or root (as git refuses such a
 * repository).
 */
int project_find(const char *dir, uid_t me, char **file, char **shown);

/* Find the current directory's project file and load it (saying on
 * stderr which file when it is above the current directory): a
 * project_status; PROJECT_NONE with p empty. */
int project_open(struct project *p);

void project_free(struct project *p);

/*
 * A start's options from the project: what o (the command line's) leaves
 * unset is taken from v (the file's top level, or a group's). Strings
 * and ports point into o and v, which must outlive o.
 */
void project_fill_opts(struct vm_start_opts *o, const struct project_vm *v);

/* A cluster's nodes as vm_cluster_start() takes them. */
struct project_nodes {
	struct vm_cluster_node *list;
	struct vm_start_opts *opts;  /* list[i].o: node i's own */
	struct strvec names;         /* list[i].name */
	size_t n;
};

/* p's nodes (p->cluster), NAME-GROUP-I in group order, each with the
 * options given (the command line's) over its group's. */
void project_nodes(const struct project *p, const struct vm_start_opts *given,
		   struct project_nodes *out);
void project_nodes_free(struct project_nodes *nodes);

/* How many nodes p's groups make (0: a single VM). */
size_t project_node_count(const struct project *p);
/* The name of node i (0-based, in group order) and its group; the
 * caller frees. NULL when i is out of range. */
char *project_node_name(const struct project *p, size_t i,
			const struct project_group **group);

#endif

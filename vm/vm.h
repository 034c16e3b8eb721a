/*
 * vm: a VM's whole life on this host. A VM is an opaque struct vm opened
 * by name; vm/ alone reads and writes its record (vms/NAME/vm.json), moves
 * it through its states (one table of legal transitions, vm/state.c),
 * builds its QEMU argv from its list of NICs, starts, waits for, stops and
 * deletes it. cmd/ parses options into a struct vm_start_opts and prints
 * what the callbacks and the results say.
 *
 * Calling sequence: vm_open() -> vm_start() | vm_stop() | vm_delete() |
 * vm_get_info() | vm_ssh() ... -> vm_close(). Functions return 0 or -1
 * having said why through errorf(); they never print to stdout.
 */
#ifndef NOOK_VM_H
#define NOOK_VM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cidata.h"
#include "common.h"
#include "images.h"
#include "net.h"
#include "ssh.h"

/* 0 when name matches [a-z][a-z0-9-]{0,31}; else -1, saying what is wrong. */
int vm_name_check(const char *name);
/* 1 when name is acceptable, 0 otherwise; says nothing. */
int vm_name_valid(const char *name);
/* 0 when a cluster name can have nodes nodes, whose names (NAME-N) are
 * VM names; else -1, saying what is wrong of the cluster's name and the
 * longest name that many nodes allow, or (exists: the cluster is made)
 * the most nodes its name allows (a usage error). */
int vm_cluster_name_check(const char *name, int nodes, int exists);

/* The facts that decide whether KVM can work on this host. */
struct vm_accel_facts {
	int kvm_present;   /* /dev/kvm exists */
	int kvm_rw;        /* ... and we may open it read-write */
	int cpu_virt;      /* the CPU flags offer vmx or svm */
	int qemu_kvm;      /* qemu-system-x86_64 -accel help lists kvm */
};

enum vm_accel { VM_ACCEL_TCG, VM_ACCEL_KVM };

/* 1 when a /proc/cpuinfo text lists vmx or svm among a CPU's flags. */
int vm_cpuinfo_has_virt(const char *cpuinfo);

/*
 * The accelerator these facts allow: KVM only when all four hold. *why is
 * set to a static sentence giving the reason (for TCG, the first fact that
 * failed).
 */
enum vm_accel vm_accel_decide(const struct vm_accel_facts *f, const char **why);

/* Gather the facts on this host, asking qemu (a program name or path). */
void vm_accel_probe(struct vm_accel_facts *f, const char *qemu);

/* The most memory a VM is given: 4 TiB, what its record holds (more than
 * QEMU's x86-64 guests address with their usual 40 physical bits). */
#define VM_MEMORY_MAX (1ULL << 42)
/* The largest disk a VM is grown to: 64 TiB, what its record holds. */
#define VM_DISK_MAX (1ULL << 46)

/* This host's memory as the kernel counts it when QEMU asks for a
 * guest's RAM. */
struct vm_host_mem {
	uint64_t ram, swap;   /* bytes (MemTotal, SwapTotal); ram 0: unknown */
	int overcommit;       /* vm.overcommit_memory: 0 heuristic, 1 always,
			       * 2 never */
};

/* m from a /proc/meminfo text and an overcommit_memory one (NULL: 0). */
void vm_host_mem_parse(const char *meminfo, const char *overcommit,
		       struct vm_host_mem *m);
/* m of this host (ram 0 when /proc/meminfo cannot be read). */
void vm_host_mem_probe(struct vm_host_mem *m);

enum vm_mem_fit {
	VM_MEM_FITS,      /* within the host's RAM (or it is unknown) */
	VM_MEM_OVER_RAM,  /* more than its RAM: the guest may swap, or be
			   * OOM-killed once it uses it */
	VM_MEM_REFUSED,   /* more than its RAM and swap, which the kernel
			   * refuses QEMU at once (unless it overcommits
			   * always) */
};
/* How a guest of memory bytes fits host m. */
enum vm_mem_fit vm_host_mem_fit(const struct vm_host_mem *m,
				uint64_t memory);

/*
 * The states a VM can be in. paused: QEMU runs, its vCPUs stopped;
 * suspended: no QEMU, its memory and devices saved in vms/NAME/suspend.save.
 */
enum vm_state { VM_STOPPED, VM_STARTING, VM_RUNNING, VM_CRASHED, VM_PAUSED,
		VM_SUSPENDED, VM_NSTATES };
const char *vm_state_name(enum vm_state st);

/* How the wait for a ready guest is going. */
enum vm_phase { VM_PHASE_BOOT, VM_PHASE_LOGIN, VM_PHASE_CLOUD_INIT,
		VM_PHASE_READY };
const char *vm_phase_name(enum vm_phase ph);

struct vm;

/*
 * Open VM name under d (which must outlive the VM). must_exist: fail
 * saying so when it has never been made; VM_OPEN_BROKEN: also open one
 * whose record cannot be read (for delete --force). *out is freed with
 * vm_close().
 */
#define VM_OPEN_BROKEN 2
int vm_open(const struct nook_dirs *d, const char *name, int must_exist,
	    struct vm **out);
/* From now on this process only looks (prune --dry-run): what reading
 * would mend, a cluster record rebuilt from its nodes or a suspend cut
 * off, is used as mended in memory or left for the next command, and
 * nothing is written. */
void vm_look_only(void);
/* Release the VM (and its lock, if held). vm_close(NULL) is fine. */
void vm_close(struct vm *vm);
/* 1 when the VM has a record (it was made). */
int vm_exists(const struct vm *vm);
const char *vm_name(const struct vm *vm);

struct vm_start_result;
struct vm_node;

/* What a start asks for; zero/NULL fields keep what the VM has. */
/*
 * The checks of a start's options that need no VM: they go together
 * (an initrd with a kernel, a kernel or kernel arguments with direct
 * boot) and no host port is forwarded twice. Applied to the options as
 * they are merged (command line over nook.yaml), by vm_start() and by a
 * plan; 0 or -1 having said what is wrong.
 */
struct vm_start_opts;
int vm_start_opts_check(const struct vm_start_opts *o);

struct vm_start_opts {
	const char *image;        /* store name or path; NULL: debian-12 */
	const char *image_within; /* a project's: see vm_image_resolve() */
	const char *kernel_within; /* a project's kernel: its directory */
	const char *user_data;    /* files, read and checked before anything */
	const char *network_config;
	const char *boot;         /* "disk" or "direct" */
	const char *kernel, *initrd, *append;
	const char *accel;        /* "auto", "kvm" or "tcg" */
	const char *cpu;
	int cpus;
	uint64_t memory, disk;    /* bytes */
	const struct net_port *ports;
	size_t nports;
	int ports_given;          /* replace the forwards (even with none) */
	int reprovision;          /* a new instance-id */
	int cold;                 /* a suspended VM: discard its save, boot */
	int no_wait;              /* return once QEMU runs */
	int timeout_s;
	/* a line for the user (what changes, the accelerator and why) */
	void (*say)(void *ctx, struct vm *vm, const char *line);
	/* about four times a second while waiting */
	void (*progress)(void *ctx, struct vm *vm, enum vm_phase ph,
			 double elapsed);
	void *ctx;
	/* the default image's pull or build, when a first start needs it */
	img_report_fn *image_report;
	void *image_ctx;
	/* a start that launched QEMU and then failed: what it reached */
	void (*failed)(void *ctx, struct vm *vm,
		       const struct vm_start_result *r);
	const struct vm_node *node; /* set by a cluster's start */
	/* set by a cluster's start when its vCPUs outnumber the host's
	 * cores: a TCG direct boot runs on one vCPU and brings the others
	 * online once ready (VM_ONE_CPU_ARG) */
	int boot_one_cpu;
};

/* The kernel arguments a boot on one vCPU adds (the second tells the
 * guest to bring the others online itself after a reboot of its own);
 * vm_argv_hash() leaves them out, as they change nothing a saved state
 * depends on. */
#define VM_ONE_CPU_ARG "maxcpus=1 " CIDATA_ONLINE_CPUS_ARG

/* A cluster node's place, for vm_start() of a node (NULL otherwise). */
struct vm_node {
	const char *cluster;
	int node;                 /* 1..N */
	const char *subnet;       /* the cluster's, CIDR */
	const struct strvec *hosts; /* its names, "ADDR NAME": the start
				     * says if /etc/hosts has them */
	const char *like;         /* a node still to be made: the node whose
				   * image and settings it takes where the
				   * start's options say nothing (NULL: a
				   * new VM's defaults) */
};

/* How a start went. */
struct vm_start_result {
	int launched;             /* QEMU was started */
	pid_t pid;
	enum vm_accel accel;
	enum vm_phase reached;
	int crashed;              /* QEMU went away while waiting */
	int stopped;              /* ... ended by 'local stop --force' */
	int timed_out;
	int cloud_init_rc;        /* cloud-init's exit code, or -1 */
	int timeout_s;            /* from QEMU's launch to ready */
	long long launch_ms;      /* when the launch began (mono_ms()) */
	int resumed;              /* a suspended VM came back from its save */
	int found_running;        /* a cluster's node that ran already */
	int hosts_ok;             /* ready, with node->hosts in /etc/hosts */
	int cpus_online;          /* booted on one vCPU, the rest online */
	int panicked;             /* the guest's kernel panicked: QEMU ended */
	char panic[160];          /* ... the console's panic line */
	const char *no_room;      /* QEMU stopped the guest at a write the
				   * disk had no room for: what to say
				   * (the VM keeps it), else NULL */
	char sshd_failed[160];    /* the guest's sshd failed to start and
				   * was not started again: systemd's
				   * words, else "" */
	long long console_at;     /* the console log's size when this start
				   * launched QEMU; -1 when it did not */
	int signal;               /* one that came as QEMU launched: the
				   * start ends with it once QEMU runs */
};

/*
 * Start the VM, making it on its first start: take its lock, apply o to
 * its spec (saying what changes), make its files, launch QEMU, and unless
 * o->no_wait wait until the guest is ready. 0 when it is; -1 otherwise,
 * with r telling how far it got. A first start that fails before QEMU
 * runs leaves nothing behind.
 */
int vm_start(struct vm *vm, const struct vm_start_opts *o,
	     struct vm_start_result *r);
/* The files o names (user-data, network-config, kernel, initrd) read and
 * checked as vm_start() does: a cluster's, once for all its nodes. 0, or
 * -1 having said why. */
int vm_start_check_files(const struct vm_start_opts *o);
/* What a start of VM name with o would refuse before it makes anything,
 * said without making anything (--plan): its files, its image (or, made
 * like node like, that node's), a disk that would shrink or move, an
 * accelerator this host lacks. A cluster's node (node 1) that runs is
 * only waited for: nothing is refused. 0, or -1 having said why. */
int vm_start_plan_check(const struct nook_dirs *d, const char *name,
			const struct vm_start_opts *o, int node,
			const char *like);

/*
 * Stop the VM: ACPI power button and wait timeout_s (skipped by force),
 * then QMP quit, SIGTERM, SIGKILL, each bounded. *how says which step
 * ended it and, for a signal, why QMP did not (or that it was not
 * running); it is valid until vm_close().
 */
int vm_stop(struct vm *vm, int force, int timeout_s, const char **how);

/*
 * Suspend a running (or paused) VM: its memory and device state go to
 * vms/NAME/suspend.save and QEMU exits. The next vm_start() resumes it
 * when the save still fits, else boots it cold saying why. A suspend that fails leaves the VM running as it
 * was. timeout_s bounds the save (0: a minute and a second per 8 MiB
 * of memory). *size and *seconds tell the save's bytes and how long it
 * took. SIGINT, SIGTERM or SIGHUP meanwhile cancels it (the VM runs on),
 * or comes after the save is kept; either way it is left in sig_caught
 * for the caller to die of (sig_rethrow()), as one during vm_start()'s
 * resume is.
 */
int vm_suspend(struct vm *vm, int timeout_s, uint64_t *size,
	       double *seconds);
/* Stop a running VM's vCPUs (QMP stop); its memory stays. */
int vm_pause(struct vm *vm);
/* Let a paused VM run again, setting its clock to the host's (a failure
 * to set it is warned about, not an error). */
int vm_unpause(struct vm *vm);
/* A suspended VM: remove its save and record it stopped, so the next
 * start boots cold. 1 when there was one, 0 when not suspended. */
int vm_discard_save(struct vm *vm);

/*
 * Named snapshots (vm/snapshot.c), kept inside the VM's qcow2 overlay as
 * QEMU's internal snapshots; the base image is never touched. A running
 * (or paused) VM's hold its disk and memory (QMP snapshot-save, a job);
 * a stopped VM's its disk only (qemu-img snapshot). A suspended VM is
 * refused: its save would no longer match its disk.
 */
struct vm_snapshot {
	char *tag;
	long long date;           /* when it was made (epoch s) */
	uint64_t size;            /* the memory saved with it (bytes) */
	int memory;               /* 1: memory and devices are in it */
};
struct vm_snapshots {
	struct vm_snapshot *v;
	size_t n;
};
void vm_snapshots_free(struct vm_snapshots *s);
/* 0 when tag is [A-Za-z][A-Za-z0-9._-]{0,63} (a tag of digits would
 * mean a snapshot's id to QEMU); else -1 saying what is wrong. */
int vm_snapshot_tag_check(const char *tag);
/* The VM's snapshots, in the order they were made, into *out (the caller
 * frees it with vm_snapshots_free()). */
int vm_snapshot_list(struct vm *vm, struct vm_snapshots *out);
/* Make snapshot tag (refused when the VM has one by that name); *made
 * tells what it holds (the caller frees made->tag). */
int vm_snapshot_save(struct vm *vm, const char *tag, struct vm_snapshot *made);
/*
 * Bring snapshot tag back: a running or paused VM gets its disk and
 * memory (a snapshot without memory is refused while QEMU runs), and a
 * running one a clock set right and a new ssh master; a stopped VM gets
 * the disk only and boots from it on its next start. *memory: 1 when the
 * memory was loaded.
 */
int vm_snapshot_restore(struct vm *vm, const char *tag, int *memory);
/* Remove snapshot tag (its disk blocks are freed in the overlay). */
int vm_snapshot_delete(struct vm *vm, const char *tag);

/* Remove the VM's files; a running VM is refused unless force. The
 * running nodes of its cluster get the cluster's names again: a deleted
 * last node's leaves their /etc/hosts. */
int vm_delete(struct vm *vm, int force);

/* What status shows. Strings point into vm; valid until vm_close(). */
struct vm_info {
	const char *name;
	enum vm_state state;
	pid_t pid;                /* 0 when not running */
	const char *accel;        /* of the running QEMU, or NULL */
	long long since;          /* when that QEMU started (epoch s) */
	const char *image;        /* the image as named at the first start */
	const char *base_disk;    /* its absolute path */
	int cpus;
	uint64_t memory;
	uint64_t resident;        /* up: its QEMU's resident bytes, or 0 */
	int ssh_port;
	const char *user;         /* the login user */
	const struct strvec *ports; /* the user's forwards, as running */
	const char *dir;          /* vms/NAME */
	const char *cluster;      /* the cluster it is a node of, or NULL */
	const char *address;      /* its address on the cluster's network */
	int network_up;           /* a node: its cluster's network runs */
	int network_cut;          /* ... but its QEMU was plugged into one
				   * that ended: cut off until it restarts */
	int network_paused;       /* ... but it is stopped (SIGSTOP): it
				   * passes nothing until SIGCONT */
	const char *panic;        /* up, its guest kernel panicked: the
				   * console's line (QEMU spins on) */
	const char *no_room;      /* up, but QEMU stopped its guest at a
				   * write the disk had no room for: what
				   * to say (vm_no_room()), or NULL */
	const char *sshd_failed;  /* up, but systemd gave up starting its
				   * guest's sshd: its words, or NULL */
	const char *delete_cut;   /* a delete of it was killed: the name it
				   * was given (finishing it), or NULL */
	uint64_t save_size;       /* suspended: its save's bytes, else 0 */
	long long saved_at;       /* ... and when it was made (epoch s) */
	int save_gone;            /* ... and its file is not there: the
				   * next start boots afresh */
};
void vm_get_info(struct vm *vm, struct vm_info *i);

/*
 * Fill t to reach the VM over ssh as user (NULL: the login user), with
 * its key, pinned host key and shared master; pointers into vm.
 * must_run: -1 saying so when the VM is not up.
 */
int vm_ssh(struct vm *vm, const char *user, int must_run,
	   struct ssh_target *t);
/* -1 saying so when the running guest has no user named user (asked as
 * the login user, through its master); 0 when it has, and when it cannot
 * be told (ssh's own errors follow then). For a user other than the login
 * user, whose refusal would be a bare "Permission denied". */
int vm_ssh_user_check(struct vm *vm, const char *user);

/*
 * A VM started with --no-wait (or by another nook still waiting on it)
 * boots before its sshd answers: while its QEMU is younger than
 * timeout_s, wait for that (sshd's banner; cloud-init need not be done),
 * calling tick(arg, seconds waited) as the wait goes on and tick(arg, -1)
 * once it ends. 0 at once when t goes through a live master, or for a VM
 * that booted longer ago (ssh's own errors say what is wrong then). -1
 * saying why: QEMU ended, was paused or started again, its kernel
 * panicked, the VM was deleted, no answer in time.
 */
int vm_ssh_await(struct vm *vm, const struct ssh_target *t, int timeout_s,
		 void (*tick)(void *arg, int waited_s), void *arg);

/*
 * Forwards on a VM, running or not (vm/port.c). A running VM's change
 * goes through QEMU's monitor at once (*live set); every change is kept
 * in the record, so the next start has it. The --port rules: HOST 0
 * picks a free port, a port taken on the host or forwarded by the VM
 * already is refused. Each takes the VM's lock; -1 saying why.
 */
/* Add forward p; *made is it as made (HOST picked). The port is kept,
 * not picked again at the next start. */
int vm_port_add(struct vm *vm, const struct net_port *p,
		struct net_port *made, int *live);
/* Remove the forward from host port host (udp: 1), ssh's excepted; with
 * host 0, the HOST 0 forward to guest port guest (and the port it runs
 * on now, if it does). *gone is the forward removed. */
int vm_port_remove(struct vm *vm, int host, int guest, int udp,
		   struct net_port *gone, int *live);
/* One forward: active, QEMU forwards it now; kept, the record brings it
 * back at the next start (a kept forward of HOST 0 gets a free port
 * then). */
struct vm_forward {
	struct net_port port;
	int active, kept;
};
/* The VM's forwards (not ssh's): running ones first; *out is the
 * caller's to free. */
void vm_port_list(struct vm *vm, struct vm_forward **out, size_t *n);

/* Paths for the commands that read a VM's files or sockets. */
const char *vm_console_log(const struct vm *vm);
const char *vm_serial_socket(const struct vm *vm);
/* 1 when a client holds the running vm's serial console (QEMU serves one
 * and leaves the next waiting unseen); 0 when it is free, and when QEMU's
 * monitor cannot tell now (another nook holds it: a suspend, say). */
int vm_console_taken(struct vm *vm);
const char *vm_run_dir(const struct vm *vm);

/* The last n lines of the console log into out (appended). */
void vm_console_tail(const struct vm *vm, int n, struct buf *out);
/* QEMU's own messages of its last launch into out (appended). */
void vm_qemu_messages(const struct vm *vm, struct buf *out);
/* Run cmd in the guest over ssh; its output into out. The exit status,
 * or -1 having said why (not even run, or no answer in VM_GUEST_RUN_MS). */
#define VM_GUEST_RUN_MS 60000
int vm_guest_run(struct vm *vm, const char *const *cmd, struct buf *out);

/* The names of every VM made under d, sorted: each with a record, one
 * that cannot be read too (a directory without a record is a first start
 * that never got that far: not listed). */
void vm_list(const struct nook_dirs *d, struct strvec *names);
/* 1 when VM name has a record (read or not), as vm_list() lists it. */
int vm_list_has(const struct nook_dirs *d, const char *name);

/*
 * Leftovers (vm/prune.c). An orphan is a QEMU of this data directory (its
 * command line has exactly the QMP chardev nook gives VM name) whose VM
 * directory is gone, or has no vm.json and no start holding its lock (a
 * QEMU is launched only once its record is written). vm_orphans() fills *out (the caller frees it) with
 * every one; vm_orphan_kill() ends one by its verified pid (SIGTERM, then
 * SIGKILL) and removes its runtime files, under the VM's lock. vm_half_made()
 * appends the VM directories a first start never finished (or whose
 * vm.json was removed): no vm.json, not locked; a QEMU of one is an
 * orphan, to be ended first.
 */
struct vm_orphan {
	pid_t pid;
	char name[33];
};
int vm_orphans(const struct nook_dirs *d, struct vm_orphan **out, size_t *n);
int vm_orphan_kill(const struct nook_dirs *d, const struct vm_orphan *o);
void vm_half_made(const struct nook_dirs *d, struct strvec *out);
/* Remove dir, one of vm_half_made()'s, and the VM's runtime directory,
 * under the VM's lock and only when it is still half made; -1 having said
 * why not. */
int vm_half_made_remove(const struct nook_dirs *d, const char *dir);
/* Clusters whose network runs while none of their nodes does (their
 * QEMUs ended by a prune, their records removed by hand; the VMs named
 * in ending, whose QEMUs a prune ends, count as not running), or that
 * left a network directory with no cluster left at all: names into
 * *out. vm_idle_network_stop() ends one: 0; 1 when it is kept after all
 * (a node has started meanwhile, another nook holds the cluster); or -1
 * having said why. */
void vm_idle_networks(const struct nook_dirs *d, const struct strvec *ending,
		      struct strvec *out);
int vm_idle_network_stop(const struct nook_dirs *d, const char *name);

/*
 * Clusters: VMs NAME-1..NAME-N (or named by the caller, NAME-GROUP-I for
 * a nook.yaml's groups), each a full VM with a second NIC on the
 * cluster's private network (DATA/clusters/NAME.json records them: a
 * record without "members" is NAME-1..NAME-nodes). A node's number gives
 * its address (the subnet's + number) and MAC: numbers follow the list's
 * order at the first start, and a node added later takes the next one,
 * so no node's address moves as a cluster grows.
 */
/* The most nodes a cluster has (--nodes, nook.yaml, the record). */
#define VM_CLUSTER_MAX_NODES 64
/* A node a start asks for: its name and its own options (NULL: the
 * start's). */
struct vm_cluster_node {
	const char *name;
	const struct vm_start_opts *o;
};
/* The name of node i (1-based) of cluster, in group (NULL: none):
 * CLUSTER-I or CLUSTER-GROUP-I. The caller frees. */
char *vm_cluster_node_name(const char *cluster, const char *group, int i);
/* The options node name starts with: its own in list, else o. */
const struct vm_start_opts *vm_cluster_node_opts(
	const struct vm_start_opts *o, const struct vm_cluster_node *list,
	size_t n, const char *name);
/*
 * Start cluster name with the n nodes of list (n 0: the nodes it has, or
 * NAME-1 for a new one; nodes it lacks are added; a node it has that is
 * not listed is refused) on subnet (NULL: the default, or the
 * cluster's), each node with its options, in parallel. o's callbacks run
 * in each node's own process. The nodes that did not get ready go into
 * failed, beside each the last error it said into why (a node may fail
 * before it is made, and then is no member). 0 when all did.
 */
int vm_cluster_start(const struct nook_dirs *d, const char *name,
		     const struct vm_cluster_node *list, size_t n,
		     const char *subnet, const struct vm_start_opts *o,
		     struct strvec *failed, struct strvec *why);
/* What such a start would do, node by node in number order, checked as
 * the start checks it; nothing is made or locked. */
struct vm_cluster_plan_node {
	char *name;
	int node;
	char address[16];
	int is_new;               /* the VM is still to be made */
	int cpus;                 /* as the start would leave them */
	uint64_t memory, disk;    /* bytes; disk 0: the image's size */
	char *like;               /* a new node made like this node */
	char *image;              /* its record's image, or its like node's
				   (NULL: --image's or the default) */
	char *cluster;            /* the cluster it is a node of (NULL: none) */
};
struct vm_cluster_plan {
	int is_new;               /* the cluster is still to be made */
	char subnet[24];
	struct vm_cluster_plan_node *nodes;
	size_t n;
};
int vm_cluster_plan(const struct nook_dirs *d, const char *name,
		    const struct vm_cluster_node *list, size_t n,
		    const char *subnet, const struct vm_start_opts *o,
		    struct vm_cluster_plan *out);
void vm_cluster_plan_free(struct vm_cluster_plan *p);
/* Fill p's is_new, cpus, memory and disk as a start of VM name with o
 * would leave them: o's, else the VM's own, else (a new VM) those of
 * node like (NULL: none), else a new VM's; and p->like and p->image.
 * A node made already: p->cluster, and p->node and p->address when they
 * are unset (0, ""), from its record. The caller frees like, image and
 * cluster. */
void vm_plan_sizes(const struct nook_dirs *d, const char *name,
		   const struct vm_start_opts *o, const char *like,
		   struct vm_cluster_plan_node *p);
/* What each node's process said in a command run on every node of a
 * cluster, in the cluster's order: what the command wrote to its buffer,
 * else its error when it failed ("" for none, as for a gap in the node
 * numbers, which is left alone). A node whose record cannot be read
 * fails with what is wrong with it in its words. */
struct vm_cluster_said {
	struct strvec nodes, words;
	unsigned char failed[VM_CLUSTER_MAX_NODES];
};
#define VM_CLUSTER_SAID_INIT { STRVEC_INIT, STRVEC_INIT, { 0 } }
/* Free what s holds; s is as VM_CLUSTER_SAID_INIT made it. */
void vm_cluster_said_clear(struct vm_cluster_said *s);
/* Stop every node (in parallel), then the network; report hears how
 * each node stopped (in that node's process); with said, what each node
 * said (how it stopped) comes back there too. */
int vm_cluster_stop(const struct nook_dirs *d, const char *name, int force,
		    int timeout_s,
		    void (*report)(const char *node, const char *how),
		    struct vm_cluster_said *said);
/* Run fn(d, node, arg, words) (0: done, else failed) for every node of
 * cluster name at once, each in a process of its own, under the
 * cluster's lock (saying in it doing: "suspend", "pause"); then stop
 * the network if no node runs any more (a suspended cluster). fn's
 * output is its own; what it puts in words reaches said (may be NULL).
 * The number of nodes for which fn failed, or -1 saying why. */
int vm_cluster_each(const struct nook_dirs *d, const char *name,
		    const char *doing,
		    int (*fn)(const struct nook_dirs *d, const char *node,
			      const void *arg, struct buf *words),
		    const void *arg, struct vm_cluster_said *said);
/* Delete every node, the network and the cluster's record, all or
 * nothing: every node is refused (none deleted) when one is (it runs
 * without force, or is busy). With said, each node's outcome comes back
 * there ("deleted", or its error, or why it was not deleted), unless the
 * delete failed before any node was looked at. */
int vm_cluster_delete(const struct nook_dirs *d, const char *name, int force,
		      struct vm_cluster_said *said);
/* 1 when name is a cluster under d. */
int vm_cluster_exists(const struct nook_dirs *d, const char *name);
/* The clusters under d with a record and no node (a first start cut
 * short, or every node deleted one by one), sorted, appended to out;
 * with broken (not NULL), those whose record cannot be read and that no
 * VM says it is a node of, and those whose record (or, for a cluster in
 * named, the VMs that say they are its nodes) cannot be had at all,
 * sorted, appended to broken, each with what is wrong and what mends or
 * forgets it appended to why. named: the clusters VMs say they are nodes
 * of (NULL: none). */
void vm_clusters_empty(const struct nook_dirs *d, const struct strvec *named,
		       struct strvec *out, struct strvec *broken,
		       struct strvec *why);
/* What to do with such a cluster, in a sentence (the caller frees it). */
char *vm_cluster_no_nodes_text(const char *name);
/* 0 when a new plain VM may be called name; -1 saying why when a
 * cluster's node would be (NAME-N of cluster NAME). */
int vm_plain_name_check(const struct nook_dirs *d, const char *name);
/* The node names of cluster name, in order, appended to out; -1 saying
 * so when name is no cluster, or one with no node left. */
int vm_cluster_nodes(const struct nook_dirs *d, const char *name,
		     struct strvec *out);
/* As vm_cluster_nodes(), also each node whose record cannot be read
 * (said as it is read): why gets, for each name, its error ("" for a
 * node that can be read). */
int vm_cluster_nodes_why(const struct nook_dirs *d, const char *name,
			 struct strvec *out, struct strvec *why);
/* Say that node's record cannot be read (its error was said as it was
 * read) and the way out; -1. */
int vm_cluster_node_broken(const char *node);
/*
 * The VM a name means where one VM is expected: the name itself, or when
 * it is a cluster's, its first node (*is_cluster set). *vm_name is
 * allocated; the caller frees. -1 saying why.
 */
int vm_resolve_name(const struct nook_dirs *d, const char *name,
		    char **vm_name, int *is_cluster);

/*
 * Base images: `images rm` asks which VMs use image directory dir, and
 * which files direct boots unpacked from it (to remove them with it).
 */
void vm_users_of_image(const struct nook_dirs *d, const char *dir,
		       struct strvec *users);
void vm_image_unpacked(const struct nook_dirs *d, const char *dir,
		       struct strvec *files);

/*
 * Export to libvirt (vm/export.c): VM name, or every node of cluster name
 * and its network, as libvirt domains (the same CPUs, memory, machine
 * type, MACs, PCI slots, boot and cidata seed; the serial console a pty
 * logged to a file) with the disk flattened from overlay and base into
 * one qcow2. Either written to o->outdir (XML, disks, seeds, kernels and
 * define.sh), or defined on o->connect through virsh (volumes uploaded
 * into o->pool). A running VM, a name taken on the target or in the
 * directory, an unreachable URI are refused before anything is made; a
 * failure part way undoes what was made. The VMs stay locked throughout.
 */
struct vm_export_opts {
	const char *outdir;     /* -o DIR, or NULL */
	const char *connect;    /* a libvirt URI, or NULL */
	const char *pool;       /* --connect's storage pool */
	const char *uplink;     /* a libvirt network's name, or "user" */
	const char *virt_type;  /* "kvm", "qemu", or "auto"/NULL */
	const char *log_dir;    /* --connect: where the serial logs go */
	int start;              /* --connect: start the domains */
	/* a line for the user: progress, then how to reach them */
	void (*say)(void *ctx, const char *line);
	void *ctx;
};
int vm_export_libvirt(const struct nook_dirs *d, const char *name,
		      const struct vm_export_opts *o);

#endif

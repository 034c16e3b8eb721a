/*
 * vm: a VM's name, files and state, the QEMU argv, launching and stopping
 * QEMU, the QMP client, and the host's accelerator.
 *
 * Calling sequence for a start: vm_paths_init() -> vm_lock() ->
 * vm_spec_load() (or a new spec) -> vm_image_resolve() -> vm_prepare()
 * (overlay, keys, cidata) -> vm_launch() -> vm_wait_ready(). Stop:
 * vm_lock() -> vm_stop(). The pure parts (vm_qemu_argv, vm_cmdline_merge,
 * vm_state_decide, the JSON of a spec) are what the unit tests hit.
 * Functions return 0 or -1 having said why.
 */
#ifndef NOOK_VM_H
#define NOOK_VM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "common.h"
#include "net.h"
#include "ssh.h"

/* 0 when name matches [a-z][a-z0-9-]{0,31}; else -1, saying what is wrong. */
int vm_name_check(const char *name);
/* 1 when name is acceptable, 0 otherwise; says nothing. */
int vm_name_valid(const char *name);

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


/* A base image: a disk, and for direct boot a kernel, initrd and cmdline. */
struct vm_image {
	char *ref;     /* what the user named: a store name or a path */
	char *disk;    /* absolute path of the base disk */
	char *format;  /* "qcow2" or "raw" */
	char *kernel;  /* absolute paths, or NULL */
	char *initrd;
	char *cmdline; /* the image's own kernel arguments, or NULL */
	char *user;    /* the login user cloud-init makes */
};
void vm_image_free(struct vm_image *img);
/*
 * Resolve ref: a directory with a manifest.json, a disk image file, or the
 * name of an image in the store under datadir/images. Reads the disk's
 * format with qemu-img.
 */
int vm_image_resolve(const char *datadir, const char *ref, struct vm_image *img);

/* What a VM is: remembered in vm.json from its first start on. */
struct vm_spec {
	char *name;
	struct vm_image image;
	char *boot;        /* "direct" or "disk" */
	char *kernel;      /* --kernel/--initrd/--append, or NULL */
	char *initrd;
	char *append;
	int cpus;
	uint64_t memory;   /* bytes */
	uint64_t disk;     /* bytes; 0: the base image's size */
	struct net_port *ports;
	size_t nports;
	char *accel;       /* "auto", "kvm" or "tcg" */
	char *cpu;         /* QEMU -cpu model, or NULL for the default */
	char *instance_id;
	char *user_data;   /* a copy of the user's user-data file, or NULL */
	char *network_config;
	int ssh_port;      /* the host port last used for ssh */
};
void vm_spec_init(struct vm_spec *s);
void vm_spec_free(struct vm_spec *s);
json_t *vm_spec_to_json(const struct vm_spec *s);
/* Fill s from j (as written by vm_spec_to_json); name for messages. */
int vm_spec_from_json(const json_t *j, const char *name, struct vm_spec *s);

/* Where one VM's files are. Sockets are checked against sun_path. */
struct vm_paths {
	char *dir;         /* data: vms/NAME */
	char *json, *disk, *cidata, *key, *host_key, *known_hosts;
	char *console_log, *qemu_log, *lock;
	char *run;         /* runtime: RUN/NAME, mode 0700 */
	char *qmp, *serial, *pidfile, *control;
	int run_fallback;  /* 1 when RUN was too long and /tmp was used */
};
/* Compute the paths of VM name; makes nothing. */
int vm_paths_init(struct vm_paths *p, const struct nook_dirs *d,
		  const char *name);
void vm_paths_free(struct vm_paths *p);

/*
 * Merge kernel arguments: start from base, then add each word of extra.
 * A word whose key (the part before '=') is already there replaces it,
 * except console=, which may repeat; an exact duplicate is dropped.
 * Appends the result to out.
 */
void vm_cmdline_merge(const char *base, const char *extra, struct buf *out);

/*
 * Direct boot without the guest's decompression (vm/boot.c): the kernel
 * unpacked to an ELF vmlinux with a PVH entry, the initrd to plain cpio,
 * both kept in cache (DATA/cache/boot); and qboot as the firmware. Each
 * is NULL where the original (or QEMU's default firmware) is to be used.
 */
struct vm_boot {
	char *kernel, *initrd, *bios;
};
void vm_boot_prepare(const char *cache, const char *qemu, const char *kernel,
		     const char *initrd, uint64_t memory, struct vm_boot *b);
void vm_boot_free(struct vm_boot *b);
/* Append to out the two cache paths for what vm_boot_prepare() unpacks
 * from file (nothing when file is unreadable): `images rm` names them
 * while the image is there and removes them with it. */
void vm_boot_cached(const char *cache, const char *file, struct strvec *out);
/* The pieces, pure: where a bzImage's compressed payload is (-1: not a
 * bzImage we read); whether an ELF image has a PVH entry note; how many
 * leading bytes of an initrd are uncompressed cpio archives. */
int vm_bzimage_payload(const unsigned char *p, size_t n, size_t *off,
		       size_t *len);
int vm_elf_has_pvh(const unsigned char *p, size_t n);
size_t vm_cpio_prefix(const unsigned char *p, size_t n);

/* What the argv builder needs beyond the spec: decided at launch. */
struct vm_launch {
	enum vm_accel accel;
	const char *qemu;     /* the program */
	const char *cmdline;  /* merged, for direct boot */
	const struct vm_boot *boot; /* direct boot's prepared files, or NULL */
	const struct net_port *ports; /* ssh first, then the user's; host
				       * ports resolved */
	size_t nports;
	char mac[18];
};
/* The -cpu model: the spec's, else "host" under KVM and "qemu64" under
 * TCG (the fastest to emulate). */
const char *vm_cpu_model(const struct vm_spec *s, enum vm_accel a);
/* The kernel and initrd a direct boot of s uses: --kernel's, else the
 * image's (either may be NULL). */
void vm_spec_kernel(const struct vm_spec *s, const char **kernel,
		    const char **initrd);
/* The whole QEMU argv for spec s with paths p. Pure. */
void vm_qemu_argv(const struct vm_spec *s, const struct vm_paths *p,
		  const struct vm_launch *l, struct strvec *out);

/* The states a VM can be in, as status reports them. */
enum vm_state { VM_STOPPED, VM_STARTING, VM_RUNNING, VM_CRASHED };
const char *vm_state_name(enum vm_state st);
/*
 * The pure rule: recorded is what vm.json says nook last did ("running",
 * "starting", "stopped" or NULL); alive: the pid file names a live QEMU of
 * this VM; busy: another nook holds the VM's lock; powered_off: the
 * console shows the guest powered itself off.
 */
enum vm_state vm_state_decide(const char *recorded, int alive, int busy,
			      int powered_off);

/*
 * The pid in pidfile when it is a live QEMU running this VM (its command
 * line names qmp_path); 0 when the file is missing, stale, or names
 * another program. Never an error.
 */
pid_t vm_pid_alive(const char *pidfile, const char *qmp_path);

/* 1 when pid is a live QEMU whose command line names qmp_path. */
int vm_pid_is_ours(pid_t pid, const char *qmp_path);

/* Take the VM's lock (flock, non-blocking) into *fd; -1 saying it is busy. */
int vm_lock(const struct vm_paths *p, const char *name, int *fd);
/* 1 when someone holds the lock now. */
int vm_lock_busy(const struct vm_paths *p);

/* A QMP connection (QEMU's JSON monitor). */
struct qmp {
	int fd;
	struct buf in;
};
/* Connect to path and negotiate capabilities, within timeout_ms. */
int qmp_open(struct qmp *q, const char *path, int timeout_ms);
/* Run command (with args or NULL); *ret gets "return" (caller decrefs),
 * ret may be NULL. Events are skipped. */
int qmp_execute(struct qmp *q, const char *command, json_t *args,
		int timeout_ms, json_t **ret);
/* Ask QEMU to quit and wait (up to timeout_ms) for it to close the
 * connection; says nothing when it goes away mid-answer. */
int qmp_quit(struct qmp *q, int timeout_ms);
void qmp_close(struct qmp *q);

/*
 * Make or refresh what a start needs under p: the directories (0700), the
 * qcow2 overlay on the base image (grown to s->disk), the VM's key pair and
 * host key pair, known_hosts pinning the host key, and the cidata ISO.
 */
int vm_prepare(const struct vm_spec *s, const struct vm_paths *p);

/* The virtual size of a disk image, from qemu-img. */
int vm_disk_size(const char *path, uint64_t *size);

/*
 * Launch QEMU with argv (which must -daemonize and write p->pidfile);
 * QEMU's own messages go to p->qemu_log and are shown when it fails.
 * *pid is the running QEMU.
 */
int vm_launch(const struct vm_paths *p, const char *const *argv, pid_t *pid);

/* Remove what a gone QEMU leaves: sockets, pid file, the ssh master. */
void vm_clean_runtime(const struct vm_paths *p);

/*
 * Stop the VM: QMP system_powerdown and wait timeout_s (skipped by force),
 * then QMP quit, SIGTERM, SIGKILL, each bounded. *how says which step
 * ended it (or that it was not running).
 */
int vm_stop(const struct vm_paths *p, int force, int timeout_s,
	    const char **how);

/* How the wait for a ready guest is going, for the caller to show. */
enum vm_phase { VM_PHASE_BOOT, VM_PHASE_LOGIN, VM_PHASE_CLOUD_INIT,
		VM_PHASE_READY };
const char *vm_phase_name(enum vm_phase ph);
struct vm_ready {
	const struct ssh_target *ssh;
	const struct vm_paths *paths;
	pid_t pid;
	int timeout_s;
	/* called about four times a second */
	void (*progress)(void *ctx, enum vm_phase ph, double elapsed);
	void *ctx;
	/* results */
	enum vm_phase reached;
	int crashed;       /* QEMU went away */
	int timed_out;
	int cloud_init_rc; /* cloud-init status --wait's exit code */
};
/*
 * Wait until the guest answers with an SSH banner, ssh logs in with the
 * VM's key against the pinned host key, and cloud-init says done. 0 when
 * ready; -1 otherwise, with r's results telling which phase stopped.
 */
int vm_wait_ready(struct vm_ready *r);

#endif

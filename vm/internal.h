/*
 * vm/internal.h: the pieces of vm/ that its own files and its unit tests
 * share; cmd/ uses vm.h only. The pure parts (vm_qemu_argv,
 * vm_cmdline_merge, vm_state_decide, vm_state_up, vm_transition_ok, the
 * JSON of a spec) are what the unit tests hit.
 */
#ifndef NOOK_VM_INTERNAL_H
#define NOOK_VM_INTERNAL_H

#include <jansson.h>

#include "vm.h"

struct vm_paths;
/* A base image: a disk, and for direct boot a kernel, initrd and cmdline. */
struct vm_image {
	char *ref;     /* what the user named: a store name or a path */
	char *disk;    /* absolute path of the base disk */
	char *format;  /* "qcow2" or "raw" */
	char *kernel;  /* absolute paths, or NULL */
	char *initrd;
	char *cmdline; /* the image's own kernel arguments, or NULL */
	char *user;    /* the login user cloud-init makes */
	char *within;  /* a project's path: the project's directory, where
			* its files must stay at every start; else NULL */
};
void vm_image_free(struct vm_image *img);
/* A copy of src into dst (which owns nothing yet). */
void vm_image_copy(struct vm_image *dst, const struct vm_image *src);
/* An image as a start finds it now: its files still there (a store's
 * image can be removed under its VMs), and a project's still in the
 * project, its disk still opening no other file (a project's files can
 * change under a VM made from them: a 'git pull'). -1 having said why. */
int vm_image_recheck(const struct vm_image *img);

/*
 * Resolve ref: a directory with a manifest.json, a disk image file, or the
 * name of an image in the store under datadir/images. Reads the disk's
 * format with qemu-img. within, the directory of the project file that
 * names ref (else NULL): a ref without '/' is a store name only (never a
 * file in the current directory), and a path is held to an import's
 * checks (its disk opens no other file; a directory's files are in it,
 * symlinks followed) and kept in img->within for vm_image_recheck().
 */
int vm_image_resolve(const char *datadir, const char *ref,
		     const char *within, struct vm_image *img);

/* A network card: user-mode networking (slirp) with its forwards, or a
 * cluster node's NIC on the cluster's private network (net/: the
 * switch, the address plan, the MACs). */
enum vm_nic_kind { VM_NIC_USER, VM_NIC_CLUSTER };
struct vm_nic {
	enum vm_nic_kind kind;
	char mac[18];            /* stable: see net_mac() */
	struct net_port *ports;  /* VM_NIC_USER: forwards (HOST 0: pick) */
	size_t nports;
};
/* Set nic to a user-mode NIC with a copy of ports. */
void vm_nic_user(struct vm_nic *nic, const char *mac,
		 const struct net_port *ports, size_t n);
void vm_nic_free(struct vm_nic *nic);

/* What a VM is: remembered in vm.json from its first start on. */
struct vm_spec {
	char *name;
	struct vm_image image;
	char *boot;        /* "direct" or "disk" */
	char *kernel;      /* --kernel/--initrd/--append, or NULL */
	char *initrd;
	char *kernel_within; /* a project's kernel and initrd: its directory,
			      * where they must stay at every start */
	char *append;
	int cpus;
	uint64_t memory;   /* bytes */
	uint64_t disk;     /* bytes; 0: the base image's size */
	struct vm_nic *nics; /* the first is the user-mode uplink */
	size_t nnics;
	char *cluster;     /* the cluster this VM is node `node` of, or NULL */
	int node;
	char *address;     /* its address on the cluster's network */
	int prefix;
	char *accel;       /* "auto", "kvm" or "tcg" */
	char *cpu;         /* QEMU -cpu model, or NULL for the default */
	char *instance_id;
	char *user;        /* the login user (its user-data's, or NULL: the
			    * image's) */
	char *user_data;   /* a copy of the user's user-data file, or NULL */
	char *network_config;
	int ssh_port;      /* the host port last used for ssh */
};
/* s's kernel and initrd, when a project named them, still in the
 * project, as vm_image_recheck() for an image. */
int vm_kernel_recheck(const struct vm_spec *s);
void vm_spec_init(struct vm_spec *s);
void vm_spec_free(struct vm_spec *s);
/* The user nook logs in as: the user-data's (the first of a users: list
 * without 'default'), else the image's. */
const char *vm_spec_login(const struct vm_spec *s);
json_t *vm_spec_to_json(const struct vm_spec *s);
/* Fill s from j (as written by vm_spec_to_json, or by an earlier nook:
 * its "ports" become the uplink's, its MAC the one it always had); name
 * for messages. */
int vm_spec_from_json(const json_t *j, const char *name, struct vm_spec *s);

/* Where one VM's files are. Sockets are checked against sun_path. */
struct vm_paths {
	char *dir;         /* data: vms/NAME */
	char *json, *disk, *cidata, *key, *host_key, *known_hosts;
	char *console_log, *qemu_log, *lock;
	char *run;         /* runtime: RUN/NAME, mode 0700 */
	char *qmp, *serial, *pidfile, *control;
	char *link;        /* a node's: the pid of the network process its
			    * QEMU was plugged into */
	char *qmp_arg;     /* QEMU's -chardev value for qmp: names a QEMU
			    * as this VM's, exactly */
	int run_fallback;  /* 1 when RUN was too long and /tmp was used */
};
/* Compute the paths of VM name; makes nothing. */
int vm_paths_init(struct vm_paths *p, const struct nook_dirs *d,
		  const char *name);
void vm_paths_free(struct vm_paths *p);

/* The HostKeyAlias that pins VM name's host key: "nook-NAME". The one
 * place it is made; the caller frees. */
char *vm_host_alias(const char *name);

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
/* Append to out the cache paths vm_boot_prepare() may write for file:
 * its unpacked kernel, its unpacked initrd, each followed by its ".none"
 * note of a failure (nothing when file is unreadable). */
void vm_boot_cached(const char *cache, const char *file, struct strvec *out);
/* The pieces, pure: where a bzImage's compressed payload is (-1: not a
 * bzImage we read); whether an ELF image has a PVH entry note; how many
 * leading bytes of an initrd are uncompressed cpio archives. */
int vm_bzimage_payload(const unsigned char *p, size_t n, size_t *off,
		       size_t *len);
int vm_elf_has_pvh(const unsigned char *p, size_t n);
size_t vm_cpio_prefix(const unsigned char *p, size_t n);
/* What vm_boot_prepare() keeps in its cache, from a file's bytes in in,
 * never more than max bytes of it: the kernel's vmlinux (1 when out has an
 * ELF with a PVH entry), the initrd's plain cpio (1 when out has it); 0 to
 * use the file as it is, -1 (initrd) when its compressed part is broken
 * or unpacks to more than max. */
int vm_boot_unpack_kernel(const struct buf *in, size_t max, struct buf *out);
int vm_boot_unpack_initrd(const struct buf *in, size_t max, struct buf *out);

/* What the argv builder needs beyond the spec: decided at launch. */
struct vm_launch {
	enum vm_accel accel;
	const char *qemu;     /* the program */
	const char *cmdline;  /* merged, for direct boot */
	const struct vm_boot *boot; /* direct boot's prepared files, or NULL */
	const struct vm_nic *nics;  /* the spec's, host ports resolved; the
				     * uplink's first forward is ssh's */
	size_t nnics;
	const char *switch_dir;     /* a cluster node's: its network's */
	const char *machine;        /* the versioned type; NULL: "q35" */
};
/* The -cpu model: the spec's, else "host" under KVM and "qemu64,svm=off"
 * under TCG (the fastest to emulate). */
const char *vm_cpu_model(const struct vm_spec *s, enum vm_accel a);
/* The kernel and initrd a direct boot of s uses: --kernel's, else the
 * image's (either may be NULL). */
void vm_spec_kernel(const struct vm_spec *s, const char **kernel,
		    const char **initrd);
/* The kernel arguments of a direct boot of s under accel: the image's,
 * then nook's, then --append's. Pure. */
void vm_kernel_args(const struct vm_spec *s, enum vm_accel accel,
		    struct buf *out);
/* QEMU's -chardev value for the QMP socket at path (commas doubled, as
 * QEMU's option syntax wants). */
void vm_qmp_chardev(const char *path, struct buf *out);
/* The root bus's slots, from this one on: each NIC, the rng, the disk,
 * the seed, the balloon. The same order in QEMU's argv and in libvirt's
 * XML keeps the guest's interface names and its vda. */
#define VM_PCI_FIRST_SLOT 1
#define VM_BALLOON_SLOT(nnics) (VM_PCI_FIRST_SLOT + (nnics) + 3)
/* The balloon's -device, which only takes the guest's free page reports
 * (since 2026-12-04: a save made without it loads without it). */
#define VM_BALLOON_DEVICE "virtio-balloon-pci"
/* the serial console's chardev: a unix socket server, one client at a
 * time (vm/qemu.c; asked by vm_console_taken()) */
#define VM_SERIAL_CHARDEV "serial0"
/* The whole QEMU argv for spec s with paths p. Pure. */
void vm_qemu_argv(const struct vm_spec *s, const struct vm_paths *p,
		  const struct vm_launch *l, struct strvec *out);

/*
 * The state rule, pure. recorded: the state vm.json holds; alive: the pid
 * file names a live QEMU of this VM; busy: another nook holds the VM's
 * lock; powered_off: the console shows the guest powered itself off;
 * ending: the state the nook holding the lock records once the QEMU it
 * ends is gone (a stop's stopped, a whole save's suspended), or -1.
 */
enum vm_state vm_state_decide(enum vm_state recorded, int alive, int busy,
			      int powered_off, int ending);
/* 1 when a VM may go from one state to the other (the table in
 * vm/state.c); 0 otherwise. */
int vm_transition_ok(enum vm_state from, enum vm_state to);
/* 1 for a state whose record names a QEMU (starting, running, paused). */
int vm_state_up(enum vm_state st);
/* The state named s ("running"...), or -1. */
int vm_state_parse(const char *s);

/*
 * The pid in pidfile when it is a live QEMU running this VM (one of its
 * arguments is exactly qmp_arg); 0 when the file is missing, stale, or
 * names another program. Never an error.
 */
pid_t vm_pid_alive(const char *pidfile, const char *qmp_arg);
/* 1 when pid is a live process with qmp_arg as one of its arguments. */
int vm_pid_is_ours(pid_t pid, const char *qmp_arg);

/*
 * For a crowded boot (more vCPUs than cores, under TCG): with on, every
 * thread of QEMU pid is put in SCHED_BATCH with a 10 ms slice (the slice
 * on Linux 6.12 and later), its nice value kept; with off, every thread
 * so put goes back to SCHED_OTHER and the default slice (one a user put
 * in another policy or slice is left alone). The number of threads
 * changed; never an error (a thread gone, a kernel that refuses: the
 * boot is only slower).
 */
int vm_sched_boot(pid_t pid, int on);

/* 1 after vm_look_only(). */
int vm_looking_only(void);
/* Take the VM's lock (flock; a look's momentary hold waited out) into
 * *fd, saying in it what this nook does (a word vm_doing_words() knows);
 * -1 saying it is busy and, when the holder said, who holds it and why,
 * or that a delete removed the VM meanwhile. "mend" (a look's) takes it
 * only when free, and says nothing. */
int vm_lock(const struct vm_paths *p, const char *name, const char *doing,
	    int *fd);
/* The words of a holder's word ("stop": "stopping"), or NULL. */
const char *vm_doing_words(const char *doing);
/* Who holds lock file lock, appended to b: "another nook (pid N) is
 * stopping it", or "another nook command holds it" when it did not say. */
void vm_busy_holder(const char *lock, struct buf *b);
/* 1 when someone holds the lock now. */
int vm_lock_busy(const struct vm_paths *p);
/* A suspend's save in the VM's directory (vm/save.c): NAME, and .NAME.tmp
 * and .NAME.facts while it is made */
#define VM_SAVE_NAME "suspend.save"
/* The state another nook holding the VM's lock records once the QEMU it
 * ends is gone, from the word it said (a stop or delete: stopped) or a
 * save it made whole (suspended); -1 when neither says. */
int vm_lock_ending(const struct vm_paths *p);
/* 1 when a VM of d has no record while a nook holds its lock (a first
 * start at work, or one whose record went by hand): what it runs may be
 * on a network no record names. */
int vm_unrecorded_busy(const struct nook_dirs *d);
/* The mark a 'stop --force' leaves for the start holding the lock:
 * DIR/stop-forced. */
char *vm_stop_mark(const struct vm_paths *p);
/* 1 when that mark is there: the QEMU of the start holding the lock was
 * ended by a 'stop --force'. */
int vm_stop_marked(const struct vm_paths *p);
/* The mark a delete leaves while it works, DIR/delete-begun, holding
 * the name it was given (the VM's, or its cluster's): a delete killed
 * then is said as such, its VM not taken for crashed. */
char *vm_delete_mark(const struct vm_paths *p);
/* What that mark names (a VM name), or NULL; freed by the caller. */
char *vm_delete_marked(const struct vm_paths *p);
/* Remove that mark, as the lock's holder does once it has seen it: 1
 * when there was one. */
int vm_take_stop_mark(const struct vm_paths *p);

/*
 * Make or refresh what a start needs under p: the directories (0700), the
 * qcow2 overlay on the base image (grown to s->disk), the VM's key pair and
 * host key pair, known_hosts pinning the host key, and the cidata ISO,
 * its seed numbered seed (cidata_vendor's hosts_seed); a cluster node's
 * with its lines of /etc/hosts in hosts (NULL or none for a plain VM).
 * 0 when the seed was written, 1 when the one there held the same files
 * already and was kept (the record's seed ID stays), -1 having said
 * why.
 */
int vm_prepare(const struct vm_spec *s, const struct vm_paths *p,
	       const struct strvec *hosts, long long seed);

/* The virtual size of a disk image, from qemu-img. */
int vm_disk_size(const char *path, uint64_t *size);

/*
 * Launch QEMU with argv (which must -daemonize and write p->pidfile);
 * QEMU's own messages go to p->qemu_log and are shown when it fails.
 * Its launch may take wait_s seconds (at most 2 minutes; 0: those):
 * then it fails, said, its launching process killed, and the QEMU that
 * daemonized (its pid file's) too.
 * *pid is the running QEMU. When QEMU fails because it could not forward
 * one of the host ports in movable[0..n) (another program took it since
 * it was found free), it says nothing, sets *taken to that port and
 * returns VM_LAUNCH_TAKEN: the caller may pick another and launch again.
 * When a 'stop --force' ended it as it started (its mark is there), it
 * says nothing and returns VM_LAUNCH_STOPPED: the caller reports a stop.
 */
#define VM_LAUNCH_TAKEN (-2)
#define VM_LAUNCH_STOPPED (-3)
int vm_launch(const struct vm_paths *p, const char *const *argv, int wait_s,
	      pid_t *pid, const struct net_port *movable, size_t n,
	      struct net_port *taken);

/* 1 once pid is no QEMU of p's VM and its QMP socket is closed, within
 * ms (the socket a moment more); 0 when it still runs then. */
int vm_wait_gone(pid_t pid, const struct vm_paths *p, int ms);
/* Remove what a gone QEMU leaves: sockets, pid file, the ssh master. */
void vm_clean_runtime(const struct vm_paths *p);
/* -1 saying so when a QEMU still listens on p's QMP socket though no pid
 * file names it (a pid file garbled, or written by a nook that spelled
 * the data directory another way): its VM is not to be started, nor its
 * sockets wiped. 0 when nothing listens there, once a QEMU killed a
 * moment ago has let go of it (waited for up to 5 s). */
int vm_qmp_unclaimed(const struct vm_paths *p);

/* Stop QEMU: the steps of vm_stop() on the paths alone. When it took a
 * signal, why QMP did not end it goes into why (if not NULL). *how is
 * vm_not_running itself when no QEMU ran: nothing was ended. */
int vm_stop_qemu(const struct vm_paths *p, int force, int timeout_s,
		 const char **how, struct buf *why);
extern const char vm_not_running[];

/* The wait for a ready guest. */
struct vm_ready {
	const struct ssh_target *ssh;
	const struct vm_paths *paths;
	pid_t pid;
	int timeout_s;
	void (*progress)(void *ctx, enum vm_phase ph, double elapsed);
	void *ctx;
	int online_cpus;                /* bring the other vCPUs online */
	const struct strvec *hosts;     /* NULL, or "ADDR NAME" lines to
					 * look for in /etc/hosts */
	long long console_from;         /* where this boot's console output
					 * starts in the log; -1: its end */
	/* results */
	enum vm_phase reached;
	int crashed;       /* QEMU went away */
	int timed_out;
	int interrupted;   /* sig_caught: a signal ended the wait */
	int cloud_init_rc; /* cloud-init status --wait's exit code */
	int cpus_online;   /* online_cpus done */
	int hosts_ok;      /* /etc/hosts has hosts, and no other nook line */
	int panicked;      /* the console shows a kernel panic */
	char panic[160];   /* ... its line */
	int no_room;       /* QEMU stopped the guest at a write the disk had
			    * no room for (VM_QEMU_NO_ROOM) */
	char sshd_failed[160]; /* the guest's sshd failed to start and was
				* not started again: systemd's words on
				* the console, else "" */
};
/*
 * Wait until the guest answers with an SSH banner, ssh logs in with the
 * VM's key against the pinned host key, and cloud-init says done; then,
 * in the same session, what online_cpus and hosts ask. 0 when
 * ready; -1 otherwise, with r's results telling which phase stopped.
 */
int vm_wait_ready(struct vm_ready *r);
/* 1 when text (len bytes, then a NUL) shows a guest kernel's panic, with
 * the panic's line in line; 2 when that line runs to text's end (not yet
 * ended: the rest may follow); else 0. Pure. */
int vm_panic_line(const char *text, size_t len, char *line, size_t size);
/* 1 with the line in line when the console log at path, after offset
 * from, ends with a kernel panic's last line (the kernel spins on; a
 * panic=N kernel boots again instead), the panic's first line since the
 * last boot in line; else 0. Only the log's last VM_PANIC_TAIL bytes are
 * read: a panicked kernel says nothing more. */
#define VM_PANIC_TAIL (64 * 1024)
/* The first of systemd's words on the guest's sshd's unit (ssh.service,
 * sshd.service, ssh.socket ...) in text (len bytes, then a NUL) at or
 * after *at: VM_SSHD_STARTING ("Starting ..."), _STARTED, _STOPPED,
 * _FAILED ("Failed to start ..."), or _BOOT for a kernel's first line
 * (a new boot); 0 when there are none. With an answer, *at is where the
 * words begin, and line holds them to their line's end, cleaned of
 * colour codes. Pure. */
enum { VM_SSHD_STARTING = 1, VM_SSHD_STARTED, VM_SSHD_STOPPED,
       VM_SSHD_FAILED, VM_SSHD_BOOT };
int vm_sshd_said(const char *text, size_t len, size_t *at, char *line,
		 size_t size);
/* 1 when systemd says, on the console log at path after offset from
 * (its last VM_PANIC_TAIL bytes), that it gave up on the last boot's
 * sshd: a failure to start it with no try before it, and no later word
 * on it; its words in line. Else 0. (systemd says nothing of a start
 * by hand after the boot: the caller asks sshd itself too.) */
int vm_console_sshd_failed(const char *path, long long from, char *line,
			   size_t size);
int vm_console_panicked(const char *path, long long from, char *line,
			size_t size);
/* How long to wait for the banner of the sshd of a guest whose console
 * log is console_log. Under TCG an sshd child can take 2 s to send it:
 * 5 s. But a guest that has written nothing on its console (a blank
 * disk, the firmware finding nothing to boot) runs no Linux: 1 s. Such a
 * guest does not even refuse the connection, so each probe would wait it
 * all out. */
int vm_sshd_wait_ms(const char *console_log);

/*
 * Suspend and resume (vm/save.c). What tells that a save still fits the
 * QEMU that would load it: recorded at suspend in vm.json's state, checked
 * before every resume. Strings owned; vm_save_free() clears them.
 */
struct vm_save {
	char *qemu;               /* the binary's real path */
	char *version;            /* "7.2.22 (Debian 1:7.2+dfsg-7...)" */
	char *machine;            /* the versioned type, "pc-q35-7.2" */
	char *accel;              /* "tcg" or "kvm" */
	char *cpu;                /* the -cpu model */
	char *argv_hash;          /* vm_argv_hash() of QEMU's argv */
	char *argv_exact;         /* now's vm_argv_hash_exact(), not kept */
	uint64_t disk_size;       /* the overlay at save time */
	long long disk_mtime_ns;
	unsigned long long disk_ino;
	uint64_t size;            /* the save file's bytes */
	long long saved_at;       /* epoch seconds */
};
void vm_save_free(struct vm_save *s);
json_t *vm_save_to_json(const struct vm_save *s);
/* Fill s from j; -1 (saying nothing) when a field is missing. */
int vm_save_from_json(const json_t *j, struct vm_save *s);
/* 1 when a save recorded as rec can be loaded where now holds; else 0
 * with the first difference, in words, appended to why. Pure. */
int vm_save_fits(const struct vm_save *rec, const struct vm_save *now,
		 struct buf *why);
/* The machine type alias (e.g. "q35") stands for in the text of `qemu
 * -machine help`, appended to out; -1 when it is no alias there. Pure. */
int vm_machine_alias(const char *help, const char *alias, struct buf *out);
/* The version in the text of `qemu --version` ("7.2.22 (Debian ...)"),
 * appended to out; -1 when there is none. Pure. */
int vm_qemu_version_parse(const char *text, struct buf *out);
/* The SHA-256 (hex) of argv[0..n), each argument NUL-terminated, leaving
 * out "-incoming" and its value (a resumed QEMU's argv is the one it was
 * saved from plus that), -append's value, and the host port of each
 * hostfwd (user-mode forwards are not in the migrated state, and a HOST
 * 0 forward gets another port at each start). Pure. */
void vm_argv_hash(const char *const *argv, size_t n, char out[65]);
/* The same with the host ports in: what saves and snapshots made before
 * 2026-12-05 recorded. */
void vm_argv_hash_exact(const char *const *argv, size_t n, char out[65]);
/* Whether now's argv (either hash) is the one rec was made with. */
int vm_save_argv_same(const struct vm_save *rec, const struct vm_save *now);
/* The versioned machine type q35 means for qemu now ("q35" when it cannot
 * be told); the caller frees. */
char *vm_machine_pinned(const char *qemu);
/* The value after option opt in argv, or NULL. Pure. */
const char *vm_argv_value(const char *const *argv, size_t n, const char *opt);

/* One VM, open: what vm.h's struct vm is. Only vm/ sees inside. */
struct vm {
	char *name;
	const struct nook_dirs *dirs;
	struct vm_paths paths;
	struct vm_spec spec;
	int exists;             /* vm.json was read (or written) */
	int broken;             /* it is there and cannot be read */
	char *broken_why;       /* broken: why, as said when it was read */
	char *delete_cut;       /* a delete of it was cut short: what it
				 * deleted (the VM's name or its cluster's),
				 * as vm_get_info() found it, or NULL */
	enum vm_state recorded; /* the state vm.json holds */
	pid_t rec_pid;          /* the QEMU it names, or 0 */
	char *rec_accel;
	long long since;        /* when that QEMU started */
	long long console_at;   /* where its output starts in the console
				 * log, or -1 when not known */
	long long seed;         /* the ID of its cidata's seed (the names
				 * of its cluster), or 0 when not known */
	char panic[160];        /* vm_get_info(): its kernel's panic line */
	char sshd_failed[160];  /* vm_get_info(): systemd's words giving up
				 * on its sshd */
	char *no_room;          /* vm_get_info(): vm_no_room()'s words */
	struct strvec ports;    /* its forwards as running; ssh's first */
	struct strvec launched; /* those on QEMU's command line, when `nook
				 * port` changed the running ones since
				 * (else empty: the same as ports) */
	int lock_fd;            /* held by this process, or -1 */
	int image_lock;         /* the image store's, shared, from resolving
				 * a new image until the record names it
				 * (img_lock()), or -1 */
	int cluster_held;       /* the caller holds its cluster's lock, and
				 * keeps the record itself */
	char *alias;            /* the HostKeyAlias */
	struct vm_save save;    /* suspended: what its save was made with */
	int has_save;
	char *how;              /* what vm_stop() last said, when made up */
	int net_gc;             /* a node that stopped or went: its cluster's
				 * network is looked at once its lock is let
				 * go (vm_close()), so that of two nodes that
				 * stop at once the last one stops it */
};

/*
 * Move vm's record to state to, checked against the table (an illegal
 * move is an error and writes nothing), with the running QEMU's pid,
 * accelerator ("kvm"/"tcg" or NULL) and resolved uplink (or NULL), and
 * the spec as it is now. The caller holds the lock.
 */
int vm_record(struct vm *vm, enum vm_state to, pid_t pid, const char *accel,
	      const struct vm_nic *uplink);
/* Write vm's record again with its spec as it is now and its state as
 * recorded (vm->ports and vm->launched as they are now). The caller
 * holds the lock. */
int vm_record_spec(struct vm *vm);
/* The state as the holder of the lock sees it. */
enum vm_state vm_state_held(struct vm *vm);
/* Take vm's lock; -1 saying the VM is busy. */
int vm_take_lock(struct vm *vm, const char *doing);
/* Mark vm, locked, as being deleted as what (vm_delete_mark()); with
 * what NULL, take the mark off again (a delete that leaves it). Best
 * effort: a mark not written only leaves a killed delete unsaid. */
void vm_delete_begin(struct vm *vm, const char *what);
/* Let go of the image store's lock a first start took (image_lock). */
void vm_image_unlock(struct vm *vm);
/* Read the record's state again (another nook may have changed it),
 * leaving the spec, into which an ssh_target points; -1 saying why. */
int vm_reload_state(struct vm *vm);

/* The argv a launch of vm under accel with uplink (and a node's switch
 * directory, or NULL) runs (vm/start.c); one_cpu: the kernel brings up
 * one vCPU (VM_ONE_CPU_ARG). */
void vm_build_argv(struct vm *vm, enum vm_accel accel,
		   const struct vm_nic *uplink, const char *switch_dir,
		   int one_cpu, struct strvec *argv);
/* The uplink as the record says it ran (ssh's forward first), for a
 * resume: the same ports again, as on QEMU's command line. -1 saying
 * why. */
int vm_uplink_recorded(const struct vm *vm, struct vm_nic *out);
/*
 * Resume suspended vm with argv (vm_build_argv()'s, for the uplink up),
 * its QEMU's launch bounded by wait_s (vm_launch()):
 * 1 when it runs again, recorded running, its clock set; 0 when its save
 * does not fit or would not load (why says which, no QEMU is left, the
 * record is as it was); -1 on an error that stops the start (a QEMU that
 * would not start: the save is kept, the VM suspended again). *pid is
 * the new QEMU. VM_LAUNCH_TAKEN, nothing said, the VM suspended again,
 * when QEMU found one of movable[0..n) taken (vm_launch());
 * VM_LAUNCH_STOPPED, said, the VM suspended again with its save, when a
 * 'stop --force' ended its QEMU.
 */
int vm_resume(struct vm *vm, struct strvec *argv, const char *accel,
	      int wait_s, const struct vm_nic *up, pid_t *pid, struct buf *why,
	      const struct net_port *movable, size_t n, struct net_port *taken);
/* s into path (0600), atomically (path.tmp, renamed over it, the
 * directory synced), quietly: 0, or -1 with errno set, nothing said and
 * no temporary file left; for a file whose loss the caller decides on
 * (write_file_atomic() says). A path.tmp a nook killed as it wrote left
 * goes with the save (vm_save_remove()) or the next write. */
int vm_write_quiet(const char *path, const char *s);
/* 1 when vm's save file is not there (not one of another size, which
 * vm_save_fits() tells). */
int vm_save_gone(const struct vm *vm);
/* Remove vm's save file (and a half-written one); the record is the
 * caller's to change. */
void vm_save_remove(struct vm *vm);
/* A suspend cut off (SIGKILL) leaves its temporary save, and QEMU
 * stopped for a migration that may have ended, under a record that says
 * running (or paused). With the VM's lock held (no suspend at work): a
 * guest the record says runs runs again, a paused one is paused as a
 * suspend can take it, one whose QEMU had ended is recorded stopped, and
 * the file goes (kept, for the next look, when QEMU does not answer);
 * each said. */
void vm_suspend_mend(struct vm *vm);
/* 1 when the temporary save of a suspend is there, or the facts of one
 * whole but not yet recorded: a suspend at work, or one cut off. */
int vm_suspend_cut_off(const struct vm *vm);
/* A resume cut off (SIGKILL) leaves its QEMU waiting for the save under
 * a record that says starting and names no save. With the VM's lock held
 * (no resume at work): that QEMU ended and the VM suspended again with
 * its save, or, when its guest ran on already, recorded running; said. */
void vm_resume_mend(struct vm *vm);
/* 1 when the record says starting with a resume's facts beside the save:
 * a resume at work, or one cut off. */
int vm_resume_cut_off(const struct vm *vm);
/* A pause or unpause cut off (SIGKILL) between QMP's stop or cont and
 * its record leaves QEMU's CPUs and the record out of step, and a mark
 * saying so. With the VM's lock held (no pause at work): recorded as
 * QEMU says they are, said; the mark kept when QEMU does not answer. */
void vm_pause_mend(struct vm *vm);
/* QMP cont on the QEMU at p's socket; 0, or -1 saying nothing (the
 * caller goes on another way). */
int vm_qmp_cont(const struct vm_paths *p);
/* vm_qmp_cont(), then a second's look that QEMU did not stop its guest
 * again at a write with no room: 0, -1 (the cont failed, nothing said),
 * or VM_QEMU_NO_ROOM. */
int vm_qmp_cont_checked(const struct vm_paths *p);
/* After a resume (vm/port.c): the resumed QEMU has the forwards of its
 * command line; make them the recorded ones through QEMU's monitor
 * (those `nook port` changed while it ran or while it was suspended).
 * A failure is said, and the rest goes on. */
void vm_port_reconcile(struct vm *vm);
/* A `port add` or `port rm` cut off (SIGKILL) between QEMU's hostfwd
 * change and its record leaves QEMU's forwards and the record out of
 * step, and a mark saying so. With the VM's lock held: QEMU's put back
 * as recorded, said; the mark kept when QEMU does not answer. */
void vm_port_mend(struct vm *vm);

/*
 * Marks: files beside the record that a command leaves across a window
 * in which QEMU and the record may be out of step, removed once the
 * record is written. A command cut off (SIGKILL) then leaves its mark,
 * and the next nook under the VM's lock (status and list too) mends
 * what it says:
 * - VM_MARK_PAUSE: QMP's stop or cont done, not yet recorded
 *   (vm_pause_mend());
 * - VM_MARK_PORT: QEMU's hostfwd changed, not yet recorded; it holds
 *   "add SPEC" or "rm SPEC", SPEC the forward's canonical form
 *   (vm_port_mend());
 * - VM_MARK_STOP: a stop ends QEMU and records that (stop_mend(): the
 *   VM recorded stopped, not crashed).
 */
#define VM_MARK_PAUSE "pause-begun"
#define VM_MARK_PORT "port-begun"
#define VM_MARK_STOP "stop-begun"
/* The path of mark name; the caller frees. */
char *vm_mark_path(const struct vm *vm, const char *name);
/* 1 when mark name is there: its command at work, or one cut off. */
int vm_marked(const struct vm *vm, const char *name);
/* What QEMU at p says of its guest's CPUs, each wait at most ms:
 * VM_RUNNING, VM_PAUSED (QMP's "paused": stopped by a `stop`),
 * VM_QEMU_NO_ROOM, or -1 when it does not answer or is in another state
 * (a panicked guest, an ended migration's "postmigrate"). */
int vm_qemu_cpus(const struct vm_paths *p, int ms);
/* QMP's "io-error": QEMU stopped the guest at a write its disk could not
 * take. Its default for a write error (werror=enospc, which nook keeps)
 * stops it for ENOSPC alone, and hands the guest any other: the disk
 * holding the overlay is, or was, full. */
#define VM_QEMU_NO_ROOM (-2)
/* The room left on the disk holding dir for what nook runs as (root's
 * includes the reserve), in bytes, with "12K" or "300M" in s; *no_inode
 * (when not NULL) 1 when no inode is left there. -1 when statvfs()
 * fails (errno set), s then "". */
long long vm_room_left(const char *dir, char s[32], int *no_inode);
/* What to say of vm when its QEMU stopped the guest at a write with no
 * room (VM_QEMU_NO_ROOM), kept in vm: how much is free now and what to
 * do. */
const char *vm_no_room(struct vm *vm);
/* -1, having said that systemd gave up on vm's guest's sshd (words: its
 * line), and the ways on. */
int vm_sshd_failed_error(const struct vm *vm, const char *words);
/* Set the guest's clock to the host's over ssh (a master first, so the
 * command runs within a fraction of a second of the time it carries). */
int vm_clock_sync(struct vm *vm);

/* Run argv, its stdout and stderr into out, for at most ms: the exit
 * status, or -1 (killed at the deadline, or not started) having said
 * why. */
int vm_run_bounded(const char *const *argv, int ms, struct buf *out);
/* Flush the running guest's file systems (sync over ssh) before its disk
 * is saved; a guest whose sshd does not answer is warned about. */
void vm_guest_sync(struct vm *vm);
/* A VM's snapshots as QEMU lists them (the "snapshots" array of qemu-img
 * info's JSON, or of QMP query-block's image), appended to out. Pure. */
int vm_snapshots_parse(const json_t *arr, struct vm_snapshots *out);

/* RUN/NAME, or a short /tmp directory of our own when a socket there
 * would not fit sun_path; NULL having said why. The caller frees. */
char *vm_run_path(const struct nook_dirs *d, const char *name, int *fell);
/* The runtime directory of cluster name's network; the caller frees. */
char *vm_cluster_switch_dir(const struct nook_dirs *d, const char *name);
/* The network-config a node's seed carries: its NICs', merged with the
 * user's (s->network_config) when there is one. */
int vm_node_network_config(const struct vm_spec *s, struct buf *out);
/* "ADDR NAME" of every node of cluster, made or to be made, into out;
 * -1, saying nothing, when the cluster has no record. */
int vm_cluster_host_lines(const struct nook_dirs *d, const char *cluster,
			  struct strvec *out);
/* Write the names and addresses of the cluster's nodes into /etc/hosts
 * of each running node whose sshd answers; a warning when it cannot. */
void vm_cluster_hosts(const struct nook_dirs *d, const char *cluster);
/* vm_delete() without writing the names of the cluster's other nodes:
 * for a cluster's delete, which takes them all. */
int vm_remove(struct vm *vm, int force);
/* The cluster whose node name would be name (NAME-N of cluster NAME),
 * in buf, or NULL. */
const char *vm_cluster_claiming(const struct nook_dirs *d, const char *name,
				char *buf, size_t size);
/* Node node of cluster was deleted: the record shrinks when it was the
 * last. */
void vm_cluster_node_gone(const struct nook_dirs *d, const char *cluster,
			  int node);
/* Stop cluster's network when none of its nodes runs or is being
 * started (its lock held by another nook). */
void vm_cluster_network_gc(const struct nook_dirs *d, const char *cluster);

/* libvirt's view of a VM being exported (vm/export.c): its domain type,
 * machine, uplink network (NULL: user-mode), and where libvirt finds
 * the serial log, the disk, the seed, and a direct boot's kernel and
 * initrd. */
struct vm_lv_domain {
	const char *type;     /* "kvm" or "qemu" */
	const char *machine;
	const char *uplink;
	const char *log;
	const char *disk, *seed, *kernel, *initrd;
};
/* Append s as text or an attribute value of XML, escaped (newline,
 * return and tab as references). -1 when s holds another control
 * character, which XML cannot carry (it is left out). Pure. */
int vm_xml_escape(const char *s, struct buf *out);
/* Append the libvirt domain XML of s with t (vm/libvirt_xml.c). -1
 * having said why when s cannot be said in it: a control character, a
 * -cpu property that is no CPU feature. */
int vm_libvirt_domain_xml(const struct vm_spec *s,
			  const struct vm_lv_domain *t, struct buf *out);
/* Append the XML of cluster name's isolated network. 0 or -1. */
int vm_libvirt_network_xml(const char *name, const char *subnet,
			   struct buf *out);
/* Cluster name's subnet from its record, canonical "A.B.C.D/P"; NULL
 * having said why. Free it. */
char *vm_cluster_subnet(const struct nook_dirs *d, const char *name);

#endif

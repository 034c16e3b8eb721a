/*
 * What the VM commands (local, shell, sync, console, ssh-config) share:
 * opening a VM by name, its saved spec and last state, and how to reach it
 * over ssh.
 */
#ifndef NOOK_VMCMD_H
#define NOOK_VMCMD_H

#include <jansson.h>

#include "common.h"
#include "vm.h"

struct vmcmd {
	const char *name;
	struct nook_dirs dirs;
	struct vm_paths paths;
	struct vm_spec spec;
	int have_spec;  /* vm.json was read */
	json_t *state;  /* the "state" object of vm.json (owned) */
	int lock_fd;
	char *alias;    /* "nook-NAME" */
	struct ssh_target ssh;
};

/*
 * Open VM name: check the name, resolve directories and paths, and read
 * vm.json when there is one. must_exist: fail with a clear message when the
 * VM has never been started. 0 or -1.
 */
int vmcmd_open(struct vmcmd *v, const char *name, int must_exist);
void vmcmd_close(struct vmcmd *v);

/* Write vm.json: the spec and the given state (status string etc.). */
int vmcmd_save(struct vmcmd *v, const char *status, pid_t pid,
	       const char *accel, const struct net_port *ports, size_t nports);

/* The VM's state now, with the pid of its QEMU when it runs. */
enum vm_state vmcmd_state(struct vmcmd *v, pid_t *pid);

/* Fill v->ssh from the spec and state; -1 saying so when the VM is not
 * running. */
int vmcmd_ssh(struct vmcmd *v, const char *user);

/* Print the last n lines of the console log to stderr, indented. */
void vmcmd_console_tail(const struct vmcmd *v, int n);

#endif

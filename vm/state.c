/* A VM's states: their names, the rule that reads one from what is seen,
 * and the one table of the moves between them. */
#include <string.h>

#include "internal.h"

static const char *const names[VM_NSTATES] = {
	[VM_STOPPED] = "stopped", [VM_STARTING] = "starting",
	[VM_RUNNING] = "running", [VM_CRASHED] = "crashed",
	[VM_PAUSED] = "paused", [VM_SUSPENDED] = "suspended",
};

const char *vm_state_name(enum vm_state st)
{
	return st < VM_NSTATES ? names[st] : "unknown";
}

int vm_state_parse(const char *s)
{
	for (int i = 0; s && i < VM_NSTATES; i++)
		if (!strcmp(names[i], s))
			return i;
	return -1;
}

/*
 * Every move a VM's record may make; vm.json changes only along these.
 * Staying stopped is a stop of a stopped VM; starting -> starting records
 * the pid of the QEMU just launched; crashed -> crashed records a crash
 * seen by the holder of the lock (vm_state_held() already says crashed
 * once the QEMU a record names is gone). A pause keeps its QEMU: paused
 * goes back to running, or on to suspended, stopped or crashed. A
 * suspended VM has no QEMU: it resumes through starting (back to
 * suspended when that QEMU would not start), or its save is discarded
 * (start --cold, a save that no longer fits) and it is stopped.
 */
static const unsigned char legal[VM_NSTATES][VM_NSTATES] = {
	[VM_STOPPED] = { [VM_STOPPED] = 1, [VM_STARTING] = 1 },
	[VM_STARTING] = { [VM_STARTING] = 1, [VM_RUNNING] = 1,
			  [VM_STOPPED] = 1, [VM_CRASHED] = 1,
			  [VM_SUSPENDED] = 1 },
	[VM_RUNNING] = { [VM_STOPPED] = 1, [VM_CRASHED] = 1,
			 [VM_PAUSED] = 1, [VM_SUSPENDED] = 1 },
	[VM_CRASHED] = { [VM_CRASHED] = 1, [VM_STOPPED] = 1,
			 [VM_STARTING] = 1 },
	[VM_PAUSED] = { [VM_RUNNING] = 1, [VM_SUSPENDED] = 1,
			[VM_STOPPED] = 1, [VM_CRASHED] = 1 },
	[VM_SUSPENDED] = { [VM_STARTING] = 1, [VM_STOPPED] = 1 },
};

int vm_transition_ok(enum vm_state from, enum vm_state to)
{
	return from < VM_NSTATES && to < VM_NSTATES && legal[from][to];
}

int vm_state_up(enum vm_state st)
{
	return st == VM_RUNNING || st == VM_STARTING || st == VM_PAUSED;
}

enum vm_state vm_state_decide(enum vm_state recorded, int alive, int busy,
			      int powered_off, int ending)
{
	int was_up = vm_state_up(recorded);

	/* QEMU gone under the nook that ended it (a stop, a delete, a
	 * suspend whose save is whole), about to record what it made of
	 * the VM: that, not a crash */
	if (!alive && was_up && ending >= 0 && ending < VM_NSTATES)
		return (enum vm_state)ending;
	if (alive && recorded == VM_PAUSED)
		return VM_PAUSED;
	if (alive)
		return busy && recorded == VM_STARTING ? VM_STARTING :
							 VM_RUNNING;
	/* QEMU is gone. If nook did not stop it and the guest did not power
	 * itself off, it died: say so rather than "stopped". A suspended VM
	 * has no QEMU by design. */
	if (recorded == VM_STARTING && busy)
		return VM_STARTING; /* a start before QEMU runs */
	if (recorded == VM_SUSPENDED)
		return VM_SUSPENDED;
	if (recorded == VM_PAUSED)
		return VM_CRASHED; /* a paused guest cannot power off */
	if (was_up)
		return powered_off ? VM_STOPPED : VM_CRASHED;
	return recorded == VM_CRASHED ? VM_CRASHED : VM_STOPPED;
}

/*
 * vm: a VM's name, files and state, and the host's accelerator.
 *
 * So far this holds what every VM command checks first: whether a name is
 * acceptable (vm_name_check) and which accelerator QEMU can use here
 * (vm_accel_probe gathers the facts, vm_accel_decide is the pure rule).
 * Functions return 0 or -1 having said why.
 */
#ifndef NOOK_VM_H
#define NOOK_VM_H

#include <stddef.h>

/* 0 when name matches [a-z][a-z0-9-]{0,31}; else -1, saying what is wrong. */
int vm_name_check(const char *name);

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

#endif

/* Which accelerator can QEMU use here? KVM, or else TCG, and why. And
 * how much memory this host can give a guest. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "vm.h"

/* Is word one of the words (split at blanks, newlines and ':') of [p, end)? */
static int has_word(const char *p, const char *end, const char *word)
{
	size_t n = strlen(word);

	while (p < end) {
		const char *s = p;

		while (s < end && strchr(" \t\n:", *s))
			s++;
		p = s;
		while (p < end && !strchr(" \t\n", *p))
			p++;
		if ((size_t)(p - s) == n && !memcmp(s, word, n))
			return 1;
	}
	return 0;
}

int vm_cpuinfo_has_virt(const char *cpuinfo)
{
	const char *line = cpuinfo;

	while (line && *line) {
		const char *nl = strchr(line, '\n');
		const char *end = nl ? nl : line + strlen(line);

		/* x86 says "flags", the same word on every CPU's stanza */
		if (!strncmp(line, "flags", 5)) {
			const char *colon = memchr(line, ':', (size_t)(end - line));

			if (colon && (has_word(colon + 1, end, "vmx") ||
				      has_word(colon + 1, end, "svm")))
				return 1;
		}
		line = nl ? nl + 1 : NULL;
	}
	return 0;
}

enum vm_accel vm_accel_decide(const struct vm_accel_facts *f, const char **why)
{
	if (!f->kvm_present)
		*why = "/dev/kvm does not exist (no KVM module loaded)";
	else if (!f->kvm_rw)
		*why = "/dev/kvm is not readable and writable by this user "
		       "(join the kvm group)";
	else if (!f->cpu_virt)
		*why = "the CPU flags offer neither vmx nor svm (nested "
		       "virtualization is not enabled for this machine)";
	else if (!f->qemu_kvm)
		*why = "qemu-system-x86_64 does not list the kvm accelerator";
	else {
		*why = "/dev/kvm is usable, the CPU offers hardware "
		       "virtualization and QEMU lists kvm";
		return VM_ACCEL_KVM;
	}
	return VM_ACCEL_TCG;
}

void vm_accel_probe(struct vm_accel_facts *f, const char *qemu)
{
	struct buf cpuinfo = BUF_INIT;
	struct buf out = BUF_INIT;
	const char *argv[] = { qemu, "-accel", "help", NULL };
	int fd;

	memset(f, 0, sizeof(*f));
	f->kvm_present = access("/dev/kvm", F_OK) == 0;
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	f->kvm_rw = fd >= 0;
	if (fd >= 0)
		close(fd);
	/* The flags are the reliable signal: on a host without nested
	 * virtualization /dev/kvm opens fine, yet a guest hangs. */
	if (read_file("/proc/cpuinfo", &cpuinfo) == 0)
		f->cpu_virt = vm_cpuinfo_has_virt(cpuinfo.p);
	buf_free(&cpuinfo);
	if (qemu && run_capture(argv, &out) == 0)
		f->qemu_kvm = has_word(out.p, out.p + out.len, "kvm");
	buf_free(&out);
}

/* meminfo's "KEY:   N kB" in bytes; 0 when it has no such line. */
static uint64_t meminfo_kb(const char *meminfo, const char *key)
{
	size_t n = strlen(key);
	const char *p = meminfo;
	uint64_t v = 0;

	while (p && *p && strncmp(p, key, n)) {
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	if (!p || !*p)
		return 0;
	for (p += n; *p == ' ' || *p == '\t'; p++)
		;
	for (; *p >= '0' && *p <= '9' && v < (UINT64_MAX >> 14); p++)
		v = v * 10 + (uint64_t)(*p - '0');
	return v << 10;
}

void vm_host_mem_parse(const char *meminfo, const char *overcommit,
		       struct vm_host_mem *m)
{
	m->ram = meminfo ? meminfo_kb(meminfo, "MemTotal:") : 0;
	m->swap = meminfo ? meminfo_kb(meminfo, "SwapTotal:") : 0;
	m->overcommit = overcommit && (*overcommit == '1' ||
				       *overcommit == '2') ?
			*overcommit - '0' : 0;
}

void vm_host_mem_probe(struct vm_host_mem *m)
{
	struct buf mi = BUF_INIT, oc = BUF_INIT;

	read_file_quiet("/proc/meminfo", &mi);
	read_file_quiet("/proc/sys/vm/overcommit_memory", &oc);
	vm_host_mem_parse(mi.p, oc.p, m);
	buf_free(&mi);
	buf_free(&oc);
}

enum vm_mem_fit vm_host_mem_fit(const struct vm_host_mem *m,
				uint64_t memory)
{
	if (!m->ram || memory <= m->ram)
		return VM_MEM_FITS;
	/* QEMU's RAM is a mapping the kernel accounts for: its heuristic
	 * (0) refuses one bigger than RAM and swap, its strict mode (2)
	 * refuses sooner still */
	if (m->overcommit != 1 && memory - m->ram > m->swap)
		return VM_MEM_REFUSED;
	return VM_MEM_OVER_RAM;
}

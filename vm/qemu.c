/* The QEMU argv and the kernel command line: pure functions of the spec. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Length of the key of word w ("root" of "root=/dev/vda1", or all of w). */
static size_t key_len(const char *w, size_t len)
{
	const char *eq = memchr(w, '=', len);

	return eq ? (size_t)(eq - w) : len;
}

struct word {
	const char *p;
	size_t len;
};

static size_t split(const char *s, struct word **out)
{
	size_t n = 0, alloc = 8;
	struct word *w = xmalloc(sizeof(*w) * alloc);

	while (s && *s) {
		size_t len;

		s += strspn(s, " \t\n");
		len = strcspn(s, " \t\n");
		if (!len)
			break;
		if (n == alloc) {
			alloc *= 2;
			w = xrealloc(w, sizeof(*w) * alloc);
		}
		w[n].p = s;
		w[n++].len = len;
		s += len;
	}
	*out = w;
	return n;
}

static int same(const struct word *a, const struct word *b)
{
	return a->len == b->len && !memcmp(a->p, b->p, a->len);
}

void vm_cmdline_merge(const char *base, const char *extra, struct buf *out)
{
	struct word *r, *e;
	size_t nr = split(base, &r), ne = split(extra, &e);
	size_t start = out->len;

	r = xrealloc(r, sizeof(*r) * (nr + ne + 1));
	for (size_t i = 0; i < ne; i++) {
		size_t k = key_len(e[i].p, e[i].len);
		int multi = k == 7 && !memcmp(e[i].p, "console", 7);
		size_t j;

		for (j = 0; j < nr; j++) {
			if (same(&r[j], &e[i]))
				break;
			/* a single-valued key set again: the later one wins */
			if (!multi && key_len(r[j].p, r[j].len) == k &&
			    !memcmp(r[j].p, e[i].p, k)) {
				r[j] = e[i];
				break;
			}
		}
		if (j == nr)
			r[nr++] = e[i];
	}
	for (size_t j = 0; j < nr; j++) {
		if (out->len > start)
			buf_adds(out, " ");
		buf_add(out, r[j].p, r[j].len);
	}
	if (!out->p)
		buf_add(out, "", 0);
	free(r);
	free(e);
}

/* QEMU's -drive and -chardev take comma-separated options; a comma in a
 * path is written twice. */
static void add_path(struct buf *b, const char *path)
{
	for (; *path; path++) {
		if (*path == ',')
			buf_adds(b, ",");
		buf_add(b, path, 1);
	}
}

static void push_buf(struct strvec *out, struct buf *b)
{
	strvec_push(out, b->p);
	buf_free(b);
}

const char *vm_cpu_model(const struct vm_spec *s, enum vm_accel a)
{
	if (s->cpu)
		return s->cpu;
	/* Under TCG, the baseline x86-64 model boots a cloud guest faster
	 * than "max" or "Nehalem" (measured here: ~83 s against ~94 s and
	 * ~104 s to cloud-init done): with SSE4.2 and AVX on offer, glibc
	 * picks string functions whose instructions TCG emulates in slow
	 * helpers. Guests that need x86-64-v2 take --cpu. Without svm: a
	 * hypervisor inside an emulated CPU is of no use, and the guest
	 * would load kvm_amd (and kvm, ccp) at boot for nothing. */
	return a == VM_ACCEL_KVM ? "host" : "qemu64,svm=off";
}

void vm_spec_kernel(const struct vm_spec *s, const char **kernel,
		    const char **initrd)
{
	/* --kernel comes with its own --initrd (or none) */
	*kernel = s->kernel ? s->kernel : s->image.kernel;
	*initrd = s->kernel ? s->initrd : s->image.initrd;
}

void vm_kernel_args(const struct vm_spec *s, enum vm_accel accel,
		    struct buf *out)
{
	struct buf merged = BUF_INIT;

	/* Keep the image's root and device arguments; add what a local boot
	 * needs: the serial console, the hint that the seed is NoCloud (no
	 * datasource probing), and no e2scrub_reap, which looks for LVM
	 * snapshots a fresh VM never has while cloud-init waits for CPU.
	 * Under TCG (measured here, QEMU 7.2) also:
	 * - tsc=reliable: every vCPU's TSC reads the host's one clock, so
	 *   they agree; but the guest's sync check, timed under emulation,
	 *   finds them apart and falls back to the HPET, whose every read
	 *   is an emulated MMIO access. ~4.5 s of a first boot.
	 * - norandmaps: TCG keys the code it has translated by virtual
	 *   address, so with ASLR every new process translates ld.so and
	 *   libc afresh: a fork+exec of /bin/true took 51 ms, 17 ms
	 *   without; a warm `nook shell -- true` 160 ms, 71 ms without.
	 *   The price is the guest's address space randomization; user-data
	 *   can turn it back on (sysctl kernel.randomize_va_space=2).
	 * - no_timer_check: at boot the kernel checks that the timer ticks
	 *   within a few busy-waited milliseconds, and panics ("IO-APIC +
	 *   timer doesn't work!") when none came. Under TCG on a loaded
	 *   host QEMU's main loop, which raises the timer's interrupt, may
	 *   not get a core in that window (seen here: a crowded cluster's
	 *   node, batch slices of 30 ms); Linux skips the check by itself
	 *   on KVM, not under emulation.
	 * Under any accelerator, no IPv6 duplicate address detection for
	 * the interfaces the kernel makes at boot, nook's NICs: DAD holds a
	 * new link-local address ~1 s, during which systemd-networkd does
	 * not call the link configured, so wait-online and cloud-init's
	 * network stage sat idle (measured here: IPv6LL 1.25 s after the
	 * DHCP lease; 20 ms after carrier without DAD). Each NIC's MAC is
	 * nook's own, on a link whose only other hosts are slirp or the
	 * cluster's nodes, each with its own MAC: no duplicate can answer.
	 * vendor-data's boothook sets the default back, so an interface
	 * made later (a container's veth) does DAD. The kernel applies
	 * sysctl arguments after its built-in drivers' probes: a --kernel
	 * with virtio_net built in keeps DAD on its NICs (Debian's kernels
	 * have it as a module, loaded later). */
#define VM_ARGS "console=ttyS0 ds=nocloud " \
		"systemd.mask=e2scrub_reap.service " CIDATA_NO_DAD_ARG
	const char *extra = accel == VM_ACCEL_TCG ?
		VM_ARGS " tsc=reliable norandmaps no_timer_check" : VM_ARGS;
#undef VM_ARGS

	vm_cmdline_merge(s->kernel ? "" : s->image.cmdline, extra, &merged);
	vm_cmdline_merge(merged.p, s->append, out);
	buf_free(&merged);
}

void vm_qmp_chardev(const char *path, struct buf *out)
{
	buf_adds(out, "socket,id=qmp0,path=");
	add_path(out, path);
	buf_adds(out, ",server=on,wait=off");
}

/* -netdev and -device for NIC number i. */
static void nic_argv(const struct vm_spec *s, const struct vm_launch *l,
		     size_t i, struct strvec *out)
{
	const struct vm_nic *nic = &l->nics[i];
	struct buf b = BUF_INIT;
	char id[32];

	snprintf(id, sizeof(id), "net%zu", i);
	if (nic->kind == VM_NIC_CLUSTER)
		net_switch_netdev(l->switch_dir, s->node, id, &b);
	else
		buf_addf(&b, "user,id=%s", id);
	for (size_t j = 0; j < nic->nports; j++) {
		buf_adds(&b, ",");
		net_port_hostfwd(&nic->ports[j], &b);
	}
	strvec_push(out, "-netdev");
	push_buf(out, &b);
	strvec_push(out, "-device");
	/* romfile=: no iPXE option ROM for the firmware to run; nook never
	 * boots from the network */
	strvec_pushf(out, "virtio-net-pci,netdev=net%zu,mac=%s,romfile=", i,
		     nic->mac);
}

void vm_qemu_argv(const struct vm_spec *s, const struct vm_paths *p,
		  const struct vm_launch *l, struct strvec *out)
{
	struct buf b = BUF_INIT;
	const struct vm_boot *bt = l->boot;
	const char *kernel, *initrd;

	vm_spec_kernel(s, &kernel, &initrd);
	if (bt && bt->kernel)
		kernel = bt->kernel;
	if (bt && bt->initrd && initrd)
		initrd = bt->initrd;

	strvec_push(out, l->qemu);
	strvec_push(out, "-name");
	strvec_pushf(out, "nook-%s", s->name);
	strvec_push(out, "-machine");
	strvec_push(out, l->machine ? l->machine : "q35");
	strvec_push(out, "-accel");
	strvec_push(out, l->accel == VM_ACCEL_KVM ? "kvm" : "tcg,thread=multi");
	strvec_push(out, "-cpu");
	strvec_push(out, vm_cpu_model(s, l->accel));
	strvec_push(out, "-smp");
	strvec_pushf(out, "%d", s->cpus);
	strvec_push(out, "-m");
	strvec_pushf(out, "%lluM", (unsigned long long)(s->memory >> 20));
	strvec_push(out, "-nodefaults");
	strvec_push(out, "-display");
	strvec_push(out, "none");
	if (!strcmp(s->boot, "direct")) {
		if (bt && bt->bios) {
			strvec_push(out, "-bios");
			strvec_push(out, bt->bios);
		}
		strvec_push(out, "-kernel");
		strvec_push(out, kernel);
		if (initrd) {
			strvec_push(out, "-initrd");
			strvec_push(out, initrd);
		}
		strvec_push(out, "-append");
		strvec_push(out, l->cmdline);
	}
	/* The root disk must be the first virtio drive: the guest's vda. */
	buf_adds(&b, "file=");
	add_path(&b, p->disk);
	buf_adds(&b, ",if=virtio,format=qcow2,discard=unmap");
	strvec_push(out, "-drive");
	push_buf(out, &b);
	buf_adds(&b, "file=");
	add_path(&b, p->cidata);
	buf_adds(&b, ",if=virtio,format=raw,readonly=on");
	strvec_push(out, "-drive");
	push_buf(out, &b);
	for (size_t i = 0; i < l->nnics; i++)
		nic_argv(s, l, i, out);
	/* Entropy from the host: the guest's crng is ready at once. */
	strvec_push(out, "-device");
	strvec_push(out, "virtio-rng-pci");
	/* Free page reporting: the guest hands back memory it has freed, in
	 * 2 MiB blocks a few seconds later, so QEMU's resident size follows
	 * what the guest uses, not the most it ever touched (its initrd, the
	 * unpacked initramfs). Placed after the NICs, the rng and the two
	 * disks, which QEMU gives the slots after the -devices': they keep
	 * theirs. */
	strvec_push(out, "-device");
	strvec_pushf(out, VM_BALLOON_DEVICE ",free-page-reporting=on,"
		     "addr=0x%x", VM_BALLOON_SLOT((unsigned)l->nnics));
	buf_adds(&b, "socket,id=" VM_SERIAL_CHARDEV ",path=");
	add_path(&b, p->serial);
	buf_adds(&b, ",server=on,wait=off,logfile=");
	add_path(&b, p->console_log);
	buf_adds(&b, ",logappend=on");
	strvec_push(out, "-chardev");
	push_buf(out, &b);
	strvec_push(out, "-serial");
	strvec_push(out, "chardev:" VM_SERIAL_CHARDEV);
	strvec_push(out, "-chardev");
	strvec_push(out, p->qmp_arg);
	strvec_push(out, "-mon");
	strvec_push(out, "chardev=qmp0,mode=control");
	strvec_push(out, "-pidfile");
	strvec_push(out, p->pidfile);
	strvec_push(out, "-daemonize");
}

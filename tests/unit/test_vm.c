/* Unit tests for vm/: names and the accelerator rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lzma.h>

#include "testutil.h"
#include "internal.h"

static void test_names(void **state)
{
	static const char *const good[] = {
		"default", "a", "web-1", "a0", "abcdefghijabcdefghijabcdefghijab",
	};
	static const char *const bad[] = {
		"", "1vm", "-vm", "Vm", "vm_1", "vm.1", "vm/..", "vm 1", "vm\n",
		"abcdefghijabcdefghijabcdefghijabc", "é",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		assert_int_equal(vm_name_check(good[i]), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *err;

		stderr_begin();
		assert_int_equal(vm_name_check(bad[i]), -1);
		err = stderr_end();
		assert_true(!strncmp(err, "nook: ", 6));
		free(err);
	}
}

/* A cluster's name leaves its nodes' names (NAME-N) VM names. */
static void test_cluster_names(void **state)
{
	static const struct {
		const char *name;
		int nodes, exists, ok;
	} t[] = {
		{ "abcdefghijabcdefghijabcdefghij", 9, 0, 1 },
		{ "abcdefghijabcdefghijabcdefghij", 10, 0, 0 },
		{ "abcdefghijabcdefghijabcdefghij", 10, 1, 0 },
		{ "abcdefghijabcdefghijabcdefghi", 64, 0, 1 },
		{ "abcdefghijabcdefghijabcdefghija", 1, 0, 0 },
		{ "1", 2, 0, 0 }, { "k_", 2, 0, 0 }, { "k", 64, 0, 1 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		char *err;

		stderr_begin();
		assert_int_equal(vm_cluster_name_check(t[i].name, t[i].nodes,
						       t[i].exists),
				 t[i].ok ? 0 : -1);
		err = stderr_end();
		if (!t[i].ok)
			assert_non_null(strstr(err, t[i].exists ?
					       "nook: cluster " :
					       "nook: cluster name \""));
		free(err);
	}
}

static void test_host_mem(void **state)
{
	static const char meminfo[] =
		"MemTotal:       24731400 kB\nMemFree:  100 kB\n"
		"SwapTotal:       1048576 kB\n";
	struct vm_host_mem m;
	uint64_t ram = 24731400ULL << 10;

	(void)state;
	vm_host_mem_parse(meminfo, "0\n", &m);
	assert_true(m.ram == ram);
	assert_true(m.swap == 1ULL << 30);
	assert_int_equal(m.overcommit, 0);
	assert_int_equal(vm_host_mem_fit(&m, ram), VM_MEM_FITS);
	/* more than RAM, within RAM and swap: runs, said */
	assert_int_equal(vm_host_mem_fit(&m, ram + 1), VM_MEM_OVER_RAM);
	assert_int_equal(vm_host_mem_fit(&m, ram + (1ULL << 30)),
			 VM_MEM_OVER_RAM);
	/* more than both: the kernel refuses QEMU's mapping */
	assert_int_equal(vm_host_mem_fit(&m, ram + (1ULL << 30) + 1),
			 VM_MEM_REFUSED);
	vm_host_mem_parse(meminfo, "2\n", &m);
	assert_int_equal(vm_host_mem_fit(&m, 100ULL << 30), VM_MEM_REFUSED);
	/* always overcommitting: any amount runs until it is used */
	vm_host_mem_parse(meminfo, "1\n", &m);
	assert_int_equal(vm_host_mem_fit(&m, 4ULL << 40), VM_MEM_OVER_RAM);
	/* nothing known: nothing said */
	vm_host_mem_parse(NULL, NULL, &m);
	assert_int_equal(vm_host_mem_fit(&m, 4ULL << 40), VM_MEM_FITS);
	vm_host_mem_parse("MemFree: 1 kB\n", "0", &m);
	assert_true(m.ram == 0);
}

static void test_cpuinfo(void **state)
{
	(void)state;
	assert_true(vm_cpuinfo_has_virt("processor\t: 0\nflags\t\t: fpu vme "
					"vmx sse\n"));
	assert_true(vm_cpuinfo_has_virt("flags\t\t: fpu svm\n"));
	assert_false(vm_cpuinfo_has_virt("flags\t\t: fpu vmxe svmx sse\n"));
	assert_false(vm_cpuinfo_has_virt("model name\t: vmx svm\n"
					 "flags\t\t: fpu sse\n"));
	assert_false(vm_cpuinfo_has_virt(""));
}

static void test_accel_decide(void **state)
{
	struct vm_accel_facts all = { 1, 1, 1, 1 };
	struct vm_accel_facts f;
	const char *why;

	(void)state;
	assert_int_equal(vm_accel_decide(&all, &why), VM_ACCEL_KVM);
	/* each missing fact alone means TCG, and the reason names it */
	f = all; f.kvm_present = 0; f.kvm_rw = 0;
	assert_int_equal(vm_accel_decide(&f, &why), VM_ACCEL_TCG);
	assert_non_null(strstr(why, "does not exist"));
	f = all; f.kvm_rw = 0;
	assert_int_equal(vm_accel_decide(&f, &why), VM_ACCEL_TCG);
	assert_non_null(strstr(why, "readable and writable"));
	f = all; f.cpu_virt = 0; /* the case of these build machines */
	assert_int_equal(vm_accel_decide(&f, &why), VM_ACCEL_TCG);
	assert_non_null(strstr(why, "vmx nor svm"));
	f = all; f.qemu_kvm = 0;
	assert_int_equal(vm_accel_decide(&f, &why), VM_ACCEL_TCG);
	assert_non_null(strstr(why, "kvm accelerator"));
}

static void test_cmdline_merge(void **state)
{
	static const struct {
		const char *base, *extra, *want;
	} cases[] = {
		{ "root=LABEL=r ro console=ttyS0", "console=ttyS0 ds=nocloud",
		  "root=LABEL=r ro console=ttyS0 ds=nocloud" },
		{ "root=/dev/vda1 rw", "console=ttyS0 ds=nocloud",
		  "root=/dev/vda1 rw console=ttyS0 ds=nocloud" },
		{ "root=/dev/vda1 console=tty0", "console=ttyS0",
		  "root=/dev/vda1 console=tty0 console=ttyS0" },
		{ "root=/dev/vda1 quiet", "root=/dev/vdb1 quiet",
		  "root=/dev/vdb1 quiet" },
		{ "ds=nocloud-net;s=http://x/", "ds=nocloud", "ds=nocloud" },
		{ NULL, "console=ttyS0", "console=ttyS0" },
		{ "  a   b  ", "", "a b" },
		{ "a", "b b c", "a b c" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf b = BUF_INIT;

		vm_cmdline_merge(cases[i].base, cases[i].extra, &b);
		assert_string_equal(b.p, cases[i].want);
		buf_free(&b);
	}
}

static void make_spec(struct vm_spec *s, struct vm_paths *p);

/* Each boot skips DAD on the NICs it makes, under either accelerator;
 * the user's --append of the same key wins. */
static void test_kernel_args(void **state)
{
	static const enum vm_accel accels[] = { VM_ACCEL_TCG, VM_ACCEL_KVM };
	struct vm_spec s;
	struct vm_paths p;

	(void)state;
	make_spec(&s, &p);
	for (size_t i = 0; i < ARRAY_SIZE(accels); i++) {
		struct buf b = BUF_INIT;

		vm_kernel_args(&s, accels[i], &b);
		assert_non_null(strstr(b.p, " " CIDATA_NO_DAD_ARG));
		assert_true(!strstr(b.p, "norandmaps") ==
			    (accels[i] == VM_ACCEL_KVM));
		buf_free(&b);
	}
	s.append = xstrdup("sysctl.net.ipv6.conf.default.accept_dad=1");
	{
		struct buf b = BUF_INIT;

		vm_kernel_args(&s, VM_ACCEL_TCG, &b);
		assert_null(strstr(b.p, CIDATA_NO_DAD_ARG));
		assert_non_null(strstr(b.p, " " "sysctl.net.ipv6.conf.default."
				       "accept_dad=1"));
		buf_free(&b);
	}
	vm_spec_free(&s);
	vm_paths_free(&p);
}

static int argv_has(const struct strvec *v, const char *a, const char *b)
{
	for (size_t i = 0; i + 1 < v->n; i++)
		if (!strcmp(v->v[i], a) && (!b || !strcmp(v->v[i + 1], b)))
			return 1;
	return 0;
}

static const char *after(const struct strvec *v, const char *opt, int nth)
{
	for (size_t i = 0; i + 1 < v->n; i++)
		if (!strcmp(v->v[i], opt) && nth-- == 0)
			return v->v[i + 1];
	return NULL;
}

static void make_spec(struct vm_spec *s, struct vm_paths *p)
{
	struct nook_dirs d = { "/data", "/run/nook" };

	vm_spec_init(s);
	s->name = xstrdup("web");
	s->accel = xstrdup("auto");
	s->image.ref = xstrdup("debian-12");
	s->image.disk = xstrdup("/img/disk.qcow2");
	s->image.format = xstrdup("qcow2");
	s->image.kernel = xstrdup("/img/vmlinuz");
	s->image.initrd = xstrdup("/img/initrd.img");
	s->boot = xstrdup("direct");
	s->cpus = 3;
	s->memory = 2048ULL << 20;
	s->instance_id = xstrdup("iid-x");
	assert_int_equal(vm_paths_init(p, &d, "web"), 0);
}

static void test_qemu_argv(void **state)
{
	struct vm_spec s;
	struct vm_paths p;
	struct net_port ports[2];
	struct vm_nic nic;
	struct vm_launch l = { VM_ACCEL_TCG, "qemu-system-x86_64",
			       "root=LABEL=r console=ttyS0", NULL, &nic, 1 };
	struct vm_boot boot = { "/cache/k.vmlinux", "/cache/i.cpio",
				"/usr/share/qemu/qboot.rom" };
	struct strvec v = STRVEC_INIT;
	char mac[18];

	(void)state;
	make_spec(&s, &p);
	assert_int_equal(net_port_parse("127.0.0.1:2222:22", &ports[0]), 0);
	assert_int_equal(net_port_parse("8080:80/udp", &ports[1]), 0);
	net_mac("", "web", 0, mac);
	vm_nic_user(&nic, mac, ports, 2);
	vm_qemu_argv(&s, &p, &l, &v);
	assert_string_equal(v.v[0], "qemu-system-x86_64");
	assert_true(argv_has(&v, "-machine", "q35"));
	assert_true(argv_has(&v, "-accel", "tcg,thread=multi"));
	strvec_clear(&v);
	/* the versioned machine type, when the launch pinned one */
	l.machine = "pc-q35-7.2";
	vm_qemu_argv(&s, &p, &l, &v);
	assert_true(argv_has(&v, "-machine", "pc-q35-7.2"));
	l.machine = NULL;
	assert_true(argv_has(&v, "-cpu", "qemu64,svm=off"));
	assert_true(argv_has(&v, "-smp", "3"));
	assert_true(argv_has(&v, "-m", "2048M"));
	assert_true(argv_has(&v, "-kernel", "/img/vmlinuz"));
	assert_true(argv_has(&v, "-initrd", "/img/initrd.img"));
	assert_true(argv_has(&v, "-append", "root=LABEL=r console=ttyS0"));
	/* the root disk is the first drive, the seed read-only after it */
	assert_string_equal(after(&v, "-drive", 0), "file=/data/vms/web/disk.qcow2,"
			    "if=virtio,format=qcow2,discard=unmap");
	assert_string_equal(after(&v, "-drive", 1), "file=/data/vms/web/cidata.iso,"
			    "if=virtio,format=raw,readonly=on");
	assert_string_equal(after(&v, "-netdev", 0), "user,id=net0,"
			    "hostfwd=tcp:127.0.0.1:2222-:22,"
			    "hostfwd=udp:127.0.0.1:8080-:80");
	assert_non_null(strstr(after(&v, "-device", 0), mac));
	assert_null(after(&v, "-netdev", 1)); /* one NIC, one netdev */
	assert_non_null(strstr(after(&v, "-chardev", 0),
			       "path=/run/nook/web/serial.sock,server=on,wait=off"));
	assert_string_equal(after(&v, "-chardev", 1), "socket,id=qmp0,"
			    "path=/run/nook/web/qmp.sock,server=on,wait=off");
	/* what tells this VM's QEMU from any other: that exact argument */
	assert_string_equal(after(&v, "-chardev", 1), p.qmp_arg);
	assert_true(argv_has(&v, "-mon", "chardev=qmp0,mode=control"));
	assert_true(argv_has(&v, "-pidfile", "/run/nook/web/qemu.pid"));
	assert_string_equal(v.v[v.n - 1], "-daemonize");
	/* the firmware runs no network boot ROM */
	assert_non_null(strstr(after(&v, "-device", 0), ",romfile="));
	assert_false(argv_has(&v, "-bios", NULL));
	/* freed guest memory goes back to the host; the balloon's slot is
	 * the one after the NIC (1), the rng (2), the disk and the seed */
	assert_true(argv_has(&v, "-device", "virtio-balloon-pci,"
			     "free-page-reporting=on,addr=0x5"));
	strvec_clear(&v);

	/* unpacked kernel and initrd, and qboot, where boot.c found them */
	l.boot = &boot;
	vm_qemu_argv(&s, &p, &l, &v);
	assert_true(argv_has(&v, "-kernel", "/cache/k.vmlinux"));
	assert_true(argv_has(&v, "-initrd", "/cache/i.cpio"));
	assert_true(argv_has(&v, "-bios", "/usr/share/qemu/qboot.rom"));
	strvec_clear(&v);
	boot.kernel = boot.initrd = NULL; /* nothing unpacked: the originals */
	vm_qemu_argv(&s, &p, &l, &v);
	assert_true(argv_has(&v, "-kernel", "/img/vmlinuz"));
	assert_true(argv_has(&v, "-initrd", "/img/initrd.img"));
	strvec_clear(&v);

	/* disk boot: no kernel; KVM: the host's CPU */
	free(s.boot);
	s.boot = xstrdup("disk");
	l.accel = VM_ACCEL_KVM;
	vm_qemu_argv(&s, &p, &l, &v);
	assert_false(argv_has(&v, "-kernel", NULL));
	assert_false(argv_has(&v, "-append", NULL));
	assert_false(argv_has(&v, "-bios", NULL)); /* SeaBIOS boots disks */
	assert_true(argv_has(&v, "-accel", "kvm"));
	assert_true(argv_has(&v, "-cpu", "host"));
	strvec_clear(&v);
	/* a model given by the user wins under either accelerator */
	s.cpu = xstrdup("Nehalem-v2");
	vm_qemu_argv(&s, &p, &l, &v);
	assert_true(argv_has(&v, "-cpu", "Nehalem-v2"));
	strvec_clear(&v);
	vm_nic_free(&nic);
	vm_spec_free(&s);
	vm_paths_free(&p);
}

/* Two NICs: each its own netdev and device, in order, with its MAC and
 * only its own forwards. */
static void test_qemu_argv_two_nics(void **state)
{
	struct vm_spec s;
	struct vm_paths p;
	struct net_port port;
	struct vm_nic nics[2];
	struct vm_launch l = { VM_ACCEL_TCG, "qemu-system-x86_64", "", NULL,
			       nics, 2 };
	struct strvec v = STRVEC_INIT;
	char mac0[18], mac1[18];

	(void)state;
	make_spec(&s, &p);
	assert_int_equal(net_port_parse("127.0.0.1:2222:22", &port), 0);
	net_mac("", "web", 0, mac0);
	net_mac("", "web", 1, mac1);
	assert_string_not_equal(mac0, mac1);
	vm_nic_user(&nics[0], mac0, &port, 1);
	vm_nic_user(&nics[1], mac1, NULL, 0);
	vm_qemu_argv(&s, &p, &l, &v);
	assert_string_equal(after(&v, "-netdev", 0),
			    "user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22");
	assert_string_equal(after(&v, "-netdev", 1), "user,id=net1");
	assert_null(after(&v, "-netdev", 2));
	/* device 0 is the first NIC; the RNG comes after the NICs */
	assert_non_null(strstr(after(&v, "-device", 0), "netdev=net0,"));
	assert_non_null(strstr(after(&v, "-device", 0), mac0));
	assert_non_null(strstr(after(&v, "-device", 1), "netdev=net1,"));
	assert_non_null(strstr(after(&v, "-device", 1), mac1));
	assert_string_equal(after(&v, "-device", 2), "virtio-rng-pci");
	/* the balloon after the rng, the disk and the seed: slot 6, as in
	 * the libvirt export's XML (test_libvirt_xml) */
	assert_string_equal(after(&v, "-device", 3), "virtio-balloon-pci,"
			    "free-page-reporting=on,addr=0x6");
	strvec_clear(&v);
	vm_nic_free(&nics[0]);
	vm_nic_free(&nics[1]);
	vm_spec_free(&s);
	vm_paths_free(&p);
}

/* A cluster node: the uplink with its forwards, then the cluster NIC on
 * the network's switch, with the node's own MAC. */
static void test_qemu_argv_node(void **state)
{
	struct vm_spec s;
	struct vm_paths p;
	struct net_port port;
	struct vm_nic nics[2];
	struct vm_launch l = { VM_ACCEL_TCG, "qemu-system-x86_64", "", NULL,
			       nics, 2, "/run/nook/dev.net" };
	struct strvec v = STRVEC_INIT;
	char up[18], node[18];

	(void)state;
	make_spec(&s, &p);
	s.cluster = xstrdup("dev");
	s.node = 2;
	s.address = xstrdup("10.77.0.2");
	s.prefix = 24;
	assert_int_equal(net_port_parse("127.0.0.1:2222:22", &port), 0);
	net_mac("", "dev-2", 0, up);
	net_node_mac("dev", 2, node);
	assert_string_not_equal(up, node);
	vm_nic_user(&nics[0], up, &port, 1);
	vm_nic_user(&nics[1], node, NULL, 0);
	nics[1].kind = VM_NIC_CLUSTER;
	vm_qemu_argv(&s, &p, &l, &v);
	assert_string_equal(after(&v, "-netdev", 0),
			    "user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22");
	assert_non_null(strstr(after(&v, "-netdev", 1), "vde,id=net1,sock="));
	assert_non_null(strstr(after(&v, "-netdev", 1), "/run/nook/dev.net/"));
	assert_null(strstr(after(&v, "-netdev", 1), "hostfwd"));
	assert_non_null(strstr(after(&v, "-device", 1), node));
	strvec_clear(&v);
	vm_nic_free(&nics[0]);
	vm_nic_free(&nics[1]);
	vm_spec_free(&s);
	vm_paths_free(&p);
}

/* A minimal x86-64 ELF whose one PT_NOTE holds a Xen note of type t
 * (18: the PVH entry). */
static size_t make_elf(unsigned char *p, uint32_t t)
{
	static const unsigned char note[] = { 4, 0, 0, 0, 4, 0, 0, 0,
					      0, 0, 0, 0, 'X', 'e', 'n', 0,
					      0, 0, 0, 1 };
	unsigned char *ph = p + 64;

	memset(p, 0, 64 + 56 + sizeof(note));
	memcpy(p, "\177ELF\2\1\1", 7);
	p[16] = 2;             /* ET_EXEC */
	p[18] = 62;            /* EM_X86_64 */
	p[32] = 64;            /* e_phoff */
	p[54] = 56;            /* e_phentsize */
	p[56] = 1;             /* e_phnum */
	ph[0] = 4;             /* PT_NOTE */
	ph[8] = 64 + 56;       /* p_offset */
	ph[32] = sizeof(note); /* p_filesz */
	memcpy(p + 120, note, sizeof(note));
	p[120 + 8] = (unsigned char)t;
	return 120 + sizeof(note);
}

static size_t xz(const void *in, size_t n, unsigned char *out, size_t cap)
{
	size_t pos = 0;

	assert_int_equal(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL,
						 in, n, out, &pos, cap),
			 LZMA_OK);
	return pos;
}

/* The lz4 "legacy" frame a kernel build writes (Debian's cloud kernel):
 * the magic, then each block after its size; here one block holding only
 * literals, which is valid lz4. */
static size_t lz4_legacy(const void *in, size_t n, unsigned char *out,
			 size_t cap)
{
	size_t pos = 9, left = n - 15;

	assert_true(n >= 15 && cap >= n + n / 255 + 10);
	memcpy(out, "\x02\x21\x4c\x18", 4);
	out[8] = 0xf0; /* 15 or more literals, no match */
	for (; left >= 255; left -= 255)
		out[pos++] = 255;
	out[pos++] = (unsigned char)left;
	memcpy(out + pos, in, n);
	pos += n;
	out[4] = (unsigned char)(pos - 8);
	out[5] = (unsigned char)((pos - 8) >> 8);
	out[6] = out[7] = 0;
	return pos;
}

/* One newc cpio archive with file name and its data, and the trailer. */
static void cpio_add(struct buf *b, const char *name, const char *data)
{
	const char *names[] = { name, "TRAILER!!!" };
	const char *datas[] = { data, "" };

	for (int i = 0; i < 2; i++) {
		buf_addf(b, "070701%08x%08x%08x%08x%08x%08x%08zx%08x%08x%08x%08x"
			 "%08zx%08x", i, 0100644, 0, 0, 1, 0, strlen(datas[i]),
			 0, 0, 0, 0, strlen(names[i]) + 1, 0);
		buf_add(b, names[i], strlen(names[i]) + 1);
		while (b->len % 4)
			buf_add(b, "", 1);
		buf_adds(b, datas[i]);
		while (b->len % 4)
			buf_add(b, "", 1);
	}
}

static void test_boot_pieces(void **state)
{
	unsigned char elf[256], bz[4096];
	size_t n, off, len;
	struct buf c = BUF_INIT;

	(void)state;
	n = make_elf(elf, 18);
	assert_true(vm_elf_has_pvh(elf, n));
	assert_false(vm_elf_has_pvh(elf, n - 4));  /* the note cut short */
	make_elf(elf, 17);
	assert_false(vm_elf_has_pvh(elf, n));      /* another Xen note */
	make_elf(elf, 18);
	elf[18] = 3;
	assert_false(vm_elf_has_pvh(elf, n));      /* not x86-64 */

	memset(bz, 0, sizeof(bz));
	bz[0x1f1] = 2;                             /* setup sectors */
	memcpy(bz + 0x202, "HdrS", 4);
	bz[0x206] = 0x0f, bz[0x207] = 0x02;        /* protocol 2.15 */
	bz[0x248] = 0x10;                          /* payload_offset */
	bz[0x24c] = 0x20;                          /* payload_length */
	assert_int_equal(vm_bzimage_payload(bz, sizeof(bz), &off, &len), 0);
	assert_int_equal(off, 3 * 512 + 0x10);
	assert_int_equal(len, 0x20);
	bz[0x24d] = 0x10;                          /* runs past the end */
	assert_int_equal(vm_bzimage_payload(bz, sizeof(bz), &off, &len), -1);
	bz[0x24d] = 0;
	bz[0x206] = 0x06;                          /* protocol 2.06 */
	assert_int_equal(vm_bzimage_payload(bz, sizeof(bz), &off, &len), -1);

	cpio_add(&c, "kernel/x86/microcode/GenuineIntel.bin", "ucode");
	n = c.len;
	assert_int_equal(vm_cpio_prefix((unsigned char *)c.p, c.len), n);
	buf_add(&c, "\0\0\0\0", 4);                /* padding between */
	buf_add(&c, "\3757zXZ\0 rest", 12);        /* then compressed */
	assert_int_equal(vm_cpio_prefix((unsigned char *)c.p, c.len), n + 4);
	assert_int_equal(vm_cpio_prefix((unsigned char *)"\3757zXZ", 5), 0);
	buf_free(&c);
}

/* Write kernel: a bzImage around an ELF whose note is of type t (18: a
 * PVH entry), xz'd as Debian's generic kernel is or lz4'd as its cloud
 * kernel is. */
static void write_bzimage_as(const char *kernel, uint32_t t, int lz4)
{
	unsigned char elf[256], bz[8192], packed[4096];
	size_t n = make_elf(elf, t);
	size_t pl = lz4 ? lz4_legacy(elf, n, packed, sizeof(packed)) :
			  xz(elf, n, packed, sizeof(packed));

	memcpy(packed + pl, (unsigned char[]){ (unsigned char)n, 0, 0, 0 }, 4);
	pl += 4; /* the kernel build appends the unpacked size */
	memset(bz, 0, sizeof(bz));
	bz[0x1f1] = 1;
	memcpy(bz + 0x202, "HdrS", 4);
	bz[0x206] = 0x0f, bz[0x207] = 0x02;
	bz[0x24c] = (unsigned char)pl, bz[0x24d] = (unsigned char)(pl >> 8);
	memcpy(bz + 1024, packed, pl);
	assert_int_equal(write_file_atomic(kernel, bz, 1024 + pl, 0644), 0);
}

static void write_bzimage(const char *kernel, uint32_t t)
{
	write_bzimage_as(kernel, t, 0);
}

static void test_boot_prepare(void **state)
{
	char dir[] = "/tmp/nook-test-boot.XXXXXX";
	unsigned char elf[256], packed[4096];
	struct buf c = BUF_INIT, inner = BUF_INIT, got = BUF_INIT;
	struct vm_boot b;
	struct strvec names = STRVEC_INIT;
	size_t n, pl;
	char *kernel, *initrd, *cache;

	(void)state;
	assert_non_null(mkdtemp(dir));
	kernel = xasprintf("%s/vmlinuz", dir);
	initrd = xasprintf("%s/initrd.img", dir);
	cache = xasprintf("%s/cache", dir);

	/* a bzImage around an xz'd PVH ELF; an initrd of an uncompressed
	 * microcode archive and an xz'd main archive */
	write_bzimage(kernel, 18);
	cpio_add(&c, "early.bin", "microcode");
	n = c.len;
	cpio_add(&inner, "init", "#!/bin/sh\necho hello\n");
	pl = xz(inner.p, inner.len, packed, sizeof(packed));
	buf_add(&c, packed, pl);
	assert_int_equal(write_file_atomic(initrd, c.p, c.len, 0644), 0);

	vm_boot_prepare(cache, "qemu-system-x86_64", kernel, initrd,
			1ULL << 30, &b);
	assert_non_null(b.kernel);
	assert_int_equal(read_file(b.kernel, &got), 0);
	assert_int_equal(got.len, make_elf(elf, 18));
	assert_memory_equal(got.p, elf, got.len);
	got.len = 0;
	assert_non_null(b.initrd);
	assert_int_equal(read_file(b.initrd, &got), 0);
	assert_int_equal(got.len, n + inner.len);
	assert_memory_equal(got.p, c.p, n);
	assert_memory_equal(got.p + n, inner.p, inner.len);
	if (b.bios)
		assert_int_equal(access(b.bios, R_OK), 0);
	vm_boot_free(&b);

	/* an lz4 kernel (Debian's cloud flavour) is unpacked too */
	write_bzimage_as(kernel, 18, 1);
	vm_boot_prepare(cache, "qemu-system-x86_64", kernel, initrd,
			1ULL << 30, &b);
	assert_non_null(b.kernel);
	got.len = 0;
	assert_int_equal(read_file(b.kernel, &got), 0);
	assert_int_equal(got.len, make_elf(elf, 18));
	assert_memory_equal(got.p, elf, got.len);

	/* the cache paths named for each original are the ones used */
	vm_boot_cached(cache, kernel, &names);
	vm_boot_cached(cache, initrd, &names);
	vm_boot_cached(cache, "/no/such/file", &names);
	assert_int_equal(names.n, 8);
	assert_string_equal(names.v[0], b.kernel);
	assert_string_equal(names.v[6], b.initrd);
	vm_boot_free(&b);

	/* too little memory for an unpacked initrd: the packed one */
	vm_boot_prepare(cache, "qemu-system-x86_64", kernel, initrd, 64, &b);
	assert_non_null(b.kernel);
	assert_null(b.initrd);
	vm_boot_free(&b);

	/* a kernel without a PVH note, an initrd not compressed: as given */
	write_bzimage(kernel, 17);
	assert_int_equal(write_file_atomic(initrd, inner.p, inner.len, 0644), 0);
	vm_boot_prepare(cache, "qemu-system-x86_64", kernel, initrd,
			1ULL << 30, &b);
	assert_null(b.kernel);
	assert_null(b.initrd);
	vm_boot_free(&b);
	/* ... and noted so, for the next start not to try again */
	strvec_clear(&names);
	vm_boot_cached(cache, kernel, &names);
	assert_int_equal(access(names.v[0], F_OK), -1);
	buf_free(&got);
	assert_int_equal(read_file(names.v[1], &got), 0);
	assert_int_equal(strtoull(got.p, NULL, 10), 1ULL << 30);
	got.len = 0;

	/* a start that finds another unpacking (a cluster's nodes) waits
	 * for it and takes its file instead of unpacking the same again */
	write_bzimage(kernel, 18);
	strvec_clear(&names);
	vm_boot_cached(cache, kernel, &names);
	assert_int_equal(access(names.v[0], F_OK), -1);
	{
		char *lockpath = xasprintf("%s/.lock", cache);
		int lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		int status, go[2];
		pid_t child;
		char byte;

		assert_true(lock >= 0);
		assert_int_equal(flock_wait(lock, 0), 0);
		assert_int_equal(pipe(go), 0);
		child = fork();
		assert_true(child >= 0);
		if (child == 0) {
			struct buf mine = BUF_INIT;
			long long t0;

			close(lock); /* the parent's: shared, not released */
			close(go[0]);
			t0 = mono_ms();
			if (write(go[1], "w", 1) != 1)
				_exit(2);
			vm_boot_prepare(cache, "qemu-system-x86_64", kernel,
					NULL, 1ULL << 30, &b);
			/* handed over, not given up on after the wait */
			_exit(mono_ms() - t0 >= 10000 || !b.kernel ||
			      strcmp(b.kernel, names.v[0]) ||
			      read_file(b.kernel, &mine) < 0 ||
			      strcmp(mine.p, "the holder's"));
		}
		close(go[1]);
		assert_int_equal(read(go[0], &byte, 1), 1);
		close(go[0]);
		sleep_ms(200); /* the child is at the lock by now */
		assert_int_equal(write_file_atomic(names.v[0], "the holder's",
						   13, 0644), 0);
		close(lock);
		assert_int_equal(waitpid(child, &status, 0), child);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
		free(lockpath);
	}

	assert_int_equal(remove_tree(dir), 0);
	strvec_clear(&names);
	buf_free(&c);
	buf_free(&inner);
	buf_free(&got);
	free(kernel);
	free(initrd);
	free(cache);
}

/* A zstd frame of blocks RLE blocks of 128 KiB of zeros each (4 bytes a
 * block): a few KiB that unpack to hundreds of MiB. */
static void zstd_bomb(struct buf *b, size_t blocks)
{
	/* magic; frame header: no content size, a 128 KiB window */
	buf_add(b, "\x28\xb5\x2f\xfd\x00\x38", 6);
	for (size_t i = 0; i < blocks; i++) {
		uint32_t h = 131072u << 3 | 1u << 1 | (i + 1 == blocks);
		unsigned char blk[4] = { h & 0xff, h >> 8 & 0xff, h >> 16, 0 };

		buf_add(b, blk, 4);
	}
}

/* An initrd (or kernel) that unpacks to more than the guest could hold
 * is used as it is, and unpacking it stops at the bound: neither memory
 * nor the cache gets its hundreds of MiB. (Fuzzing found no crash here;
 * this was found writing the boot target.) */
static void test_boot_bomb(void **state)
{
	char dir[] = "/tmp/nook-test-bomb.XXXXXX";
	struct buf bomb = BUF_INIT, out = BUF_INIT;
	struct strvec names = STRVEC_INIT;
	struct vm_boot b;
	char *initrd, *cache;

	(void)state;
	assert_non_null(mkdtemp(dir));
	initrd = xasprintf("%s/initrd.img", dir);
	cache = xasprintf("%s/cache", dir);
	zstd_bomb(&bomb, 2048); /* 256 MiB */
	/* the frame is good: unbounded, it is all there */
	assert_int_equal(vm_boot_unpack_initrd(&bomb, SIZE_MAX, &out), 1);
	assert_int_equal(out.len, (size_t)256 << 20);
	buf_free(&out);
	assert_int_equal(vm_boot_unpack_initrd(&bomb, 1 << 20, &out), -1);
	assert_true(out.len <= 1 << 20);
	buf_free(&out);

	assert_int_equal(write_file_atomic(initrd, bomb.p, bomb.len, 0644), 0);
	vm_boot_prepare(cache, "qemu-system-x86_64", "/no/such/vmlinuz", initrd,
			128ULL << 20, &b);
	assert_null(b.initrd);
	vm_boot_free(&b);
	vm_boot_cached(cache, initrd, &names);
	assert_int_equal(names.n, 4);
	assert_int_not_equal(access(names.v[2], F_OK), 0); /* nothing cached */
	assert_int_equal(access(names.v[3], F_OK), 0); /* but that it failed */

	assert_int_equal(remove_tree(dir), 0);
	strvec_clear(&names);
	buf_free(&bomb);
	free(initrd);
	free(cache);
}

static void test_paths_socket_limit(void **state)
{
	char longdir[200];
	struct nook_dirs d = { "/data", longdir };
	struct vm_paths p;

	(void)state;
	memset(longdir, 'x', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[sizeof(longdir) - 1] = '\0';
	assert_int_equal(vm_paths_init(&p, &d, "web"), 0);
	assert_int_equal(p.run_fallback, 1);
	assert_true(strlen(p.serial) < 108);
	assert_true(strlen(p.qmp) < 108);
	assert_null(strstr(p.qmp, "xxxx"));
	{
		/* another data directory with as long a RUN gets its own
		 * fallback: its VM "web" is another VM */
		struct nook_dirs d2 = { "/data2", longdir };
		struct vm_paths p2;

		assert_int_equal(vm_paths_init(&p2, &d2, "web"), 0);
		assert_int_equal(p2.run_fallback, 1);
		assert_string_not_equal(p.run, p2.run);
		vm_paths_free(&p2);
	}
	vm_paths_free(&p);
	/* RUN/web of 84 characters: ssh.sock fits, but not the name ssh's
	 * master binds first (ssh.sock and 17 more), so not every ssh would
	 * work there */
	longdir[80] = '\0';
	assert_int_equal(vm_paths_init(&p, &d, "web"), 0);
	assert_int_equal(p.run_fallback, 1);
	assert_true(strlen(p.control) + 17 < 108);
	vm_paths_free(&p);
	longdir[80] = 'x';
	longdir[60] = '\0'; /* fits: used as it is */
	assert_int_equal(vm_paths_init(&p, &d, "web"), 0);
	assert_int_equal(p.run_fallback, 0);
	assert_non_null(strstr(p.qmp, longdir));
	vm_paths_free(&p);
}

static void test_state_decide(void **state)
{
	static const struct {
		enum vm_state recorded;
		int alive, busy, off, ending;
		enum vm_state want;
	} t[] = {
		{ VM_RUNNING, 1, 0, 0, -1, VM_RUNNING },
		{ VM_STARTING, 1, 1, 0, -1, VM_STARTING },
		/* a start that died with its lock released: QEMU runs on */
		{ VM_STARTING, 1, 0, 0, -1, VM_RUNNING },
		{ VM_RUNNING, 0, 0, 0, -1, VM_CRASHED },
		{ VM_STARTING, 0, 0, 0, -1, VM_CRASHED },
		{ VM_STARTING, 0, 1, 0, -1, VM_STARTING },
		{ VM_RUNNING, 0, 0, 1, -1, VM_STOPPED },
		{ VM_STOPPED, 0, 0, 0, -1, VM_STOPPED },
		{ VM_CRASHED, 0, 0, 0, -1, VM_CRASHED },
		/* paused while its QEMU lives; crashed when it is gone */
		{ VM_PAUSED, 1, 0, 0, -1, VM_PAUSED },
		{ VM_PAUSED, 0, 0, 0, -1, VM_CRASHED },
		{ VM_PAUSED, 0, 0, 1, -1, VM_CRASHED },
		/* suspended: no QEMU by design */
		{ VM_SUSPENDED, 0, 0, 0, -1, VM_SUSPENDED },
		{ VM_SUSPENDED, 0, 1, 0, -1, VM_SUSPENDED },
		/* QEMU gone under a stop, or a suspend whose save is whole,
		 * not yet recorded: what that nook records, not a crash */
		{ VM_RUNNING, 0, 1, 0, VM_STOPPED, VM_STOPPED },
		{ VM_PAUSED, 0, 1, 0, VM_STOPPED, VM_STOPPED },
		{ VM_RUNNING, 0, 1, 0, VM_SUSPENDED, VM_SUSPENDED },
		{ VM_PAUSED, 0, 1, 0, VM_SUSPENDED, VM_SUSPENDED },
		/* while QEMU runs, the record's word */
		{ VM_RUNNING, 1, 1, 0, VM_STOPPED, VM_RUNNING },
	};

	(void)state;
	/* the states whose record names a QEMU */
	for (int s = 0; s < VM_NSTATES; s++)
		assert_int_equal(vm_state_up((enum vm_state)s),
				 s == VM_STARTING || s == VM_RUNNING ||
				 s == VM_PAUSED);
	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		assert_int_equal(vm_state_decide(t[i].recorded, t[i].alive,
						 t[i].busy, t[i].off,
						 t[i].ending),
				 t[i].want);
}

static void test_machine_alias(void **state)
{
	static const char help[] =
		"Supported machines are:\n"
		"microvm              microvm (i386)\n"
		"pc                   Standard PC (i440FX + PIIX, 1996) (alias "
		"of pc-i440fx-7.2)\n"
		"pc-i440fx-7.2        Standard PC (i440FX + PIIX, 1996) "
		"(default)\n"
		"q35                  Standard PC (Q35 + ICH9, 2009) (alias of "
		"pc-q35-7.2)\n"
		"pc-q35-7.2           Standard PC (Q35 + ICH9, 2009)\n";
	struct buf b = BUF_INIT;

	(void)state;
	assert_int_equal(vm_machine_alias(help, "q35", &b), 0);
	assert_string_equal(b.p, "pc-q35-7.2");
	buf_free(&b);
	assert_int_equal(vm_machine_alias(help, "pc", &b), 0);
	assert_string_equal(b.p, "pc-i440fx-7.2");
	buf_free(&b);
	/* a prefix of another name is not that name; no alias, no answer */
	assert_int_equal(vm_machine_alias(help, "q3", &b), -1);
	assert_int_equal(vm_machine_alias(help, "microvm", &b), -1);
	assert_int_equal(vm_machine_alias("", "q35", &b), -1);
	assert_int_equal(vm_machine_alias("q35 x (alias of pc-q35", "q35",
					  &b), -1);
	assert_null(b.p);
}

static void test_qemu_version(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	assert_int_equal(vm_qemu_version_parse(
		"QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"
		"\nCopyright (c) 2003-2022 Fabrice Bellard\n", &b), 0);
	assert_string_equal(b.p, "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)");
	buf_free(&b);
	assert_int_equal(vm_qemu_version_parse("QEMU emulator version 8.0.0\n",
					       &b), 0);
	assert_string_equal(b.p, "8.0.0");
	buf_free(&b);
	assert_int_equal(vm_qemu_version_parse("no such thing", &b), -1);
	assert_int_equal(vm_qemu_version_parse(NULL, &b), -1);
	assert_int_equal(vm_qemu_version_parse("a version x", &b), -1);
}

static void test_argv_hash(void **state)
{
	const char *a[] = { "qemu", "-machine", "pc-q35-7.2", "-m", "1024M" };
	const char *b[] = { "qemu", "-machine", "pc-q35-7.2", "-m", "1024M",
			    "-incoming", "defer" };
	const char *c[] = { "qemu", "-machine", "pc-q35-7.2", "-m", "2048M" };
	/* the arguments' boundaries count: "ab" "c" is not "a" "bc" */
	const char *d[] = { "ab", "c" }, *e[] = { "a", "bc" };
	char ha[65], hb[65], hc[65], hd[65], he[65];

	(void)state;
	vm_argv_hash(a, 5, ha);
	vm_argv_hash(b, 7, hb);
	vm_argv_hash(c, 5, hc);
	vm_argv_hash(d, 2, hd);
	vm_argv_hash(e, 2, he);
	assert_int_equal(strlen(ha), 64);
	assert_string_equal(ha, hb); /* a resumed QEMU is the saved one */
	assert_string_not_equal(ha, hc);
	assert_string_not_equal(hd, he);
	/* other kernel arguments (a boot on one vCPU, the user's, nook's
	 * own of another version) are the same machine; a direct boot is
	 * not a boot from the disk, nor is another argument's value */
	{
		const char *f[] = { "qemu", "-append", "ro norandmaps" };
		const char *g[] = { "qemu", "-append",
				    "ro norandmaps " VM_ONE_CPU_ARG };
		const char *h[] = { "qemu", "-append", "ro nosmp", "-m", "1G" };
		const char *h2[] = { "qemu", "-append", "ro", "-m", "2G" };
		const char *h3[] = { "qemu", "-append", "ro", "-m", "1G" };
		const char *i[] = { "qemu", "-name", "x " VM_ONE_CPU_ARG };
		const char *j[] = { "qemu", "-name", "x" };
		const char *k[] = { "qemu" };
		char hf[65], hg[65], hh[65], hh2[65], hh3[65], hi[65], hj[65];
		char hk[65];

		vm_argv_hash(f, 3, hf);
		vm_argv_hash(g, 3, hg);
		vm_argv_hash(h, 5, hh);
		vm_argv_hash(h2, 5, hh2);
		vm_argv_hash(h3, 5, hh3);
		vm_argv_hash(i, 3, hi);
		vm_argv_hash(j, 3, hj);
		vm_argv_hash(k, 1, hk);
		assert_string_equal(hf, hg);
		assert_string_equal(hh, hh3);
		assert_string_not_equal(hh, hh2); /* -m's value still counts */
		assert_string_not_equal(hf, hk);
		assert_string_not_equal(hi, hj); /* only -append's */
	}
	/* a forward's host port is not the machine's (a HOST 0 forward
	 * gets another at each start); its guest port and address are */
	{
		const char *f1[] = { "qemu", "-netdev", "user,id=up,hostfwd=tcp:"
				     "127.0.0.1:2222-:22,hostfwd=udp:127.0.0.1:"
				     "53-:53" };
		const char *f2[] = { "qemu", "-netdev", "user,id=up,hostfwd=tcp:"
				     "127.0.0.1:40001-:22,hostfwd=udp:127.0.0.1:"
				     "5353-:53" };
		const char *f3[] = { "qemu", "-netdev", "user,id=up,hostfwd=tcp:"
				     "127.0.0.1:2222-:23,hostfwd=udp:127.0.0.1:"
				     "53-:53" };
		const char *f4[] = { "qemu", "-netdev", "user,id=up,hostfwd=tcp:"
				     "127.0.0.2:2222-:22,hostfwd=udp:127.0.0.1:"
				     "53-:53" };
		const char *f5[] = { "qemu", "-netdev", "user,id=up,hostfwd=tcp:" };
		char h1[65], h2[65], h3[65], h4[65], x1[65], x2[65], h5[65];

		vm_argv_hash(f1, 3, h1);
		vm_argv_hash(f2, 3, h2);
		vm_argv_hash(f3, 3, h3);
		vm_argv_hash(f4, 3, h4);
		vm_argv_hash(f5, 3, h5); /* cut short: hashed, not overrun */
		vm_argv_hash_exact(f1, 3, x1);
		vm_argv_hash_exact(f2, 3, x2);
		assert_string_equal(h1, h2);
		assert_string_not_equal(h1, h3);
		assert_string_not_equal(h1, h4);
		assert_string_not_equal(x1, x2); /* what older saves recorded */
		assert_int_equal(strlen(h5), 64);
	}
	assert_string_equal(vm_argv_value(a, 5, "-machine"), "pc-q35-7.2");
	assert_null(vm_argv_value(a, 5, "-cpu"));
	assert_null(vm_argv_value(a, 5, "1024M")); /* the last has no value */
}

static void save_example(struct vm_save *s)
{
	memset(s, 0, sizeof(*s));
	s->qemu = xstrdup("/usr/bin/qemu-system-x86_64");
	s->version = xstrdup("7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)");
	s->machine = xstrdup("pc-q35-7.2");
	s->accel = xstrdup("tcg");
	s->cpu = xstrdup("qemu64,svm=off");
	s->argv_hash = xstrdup("ab12");
	s->disk_size = 1 << 20;
	s->disk_mtime_ns = 1733100000123456789LL;
	s->disk_ino = 42;
	s->size = 391 << 20;
	s->saved_at = 1733100000;
}

/* Each recorded fact that differs is the reason, in words. */
static void test_save_fits(void **state)
{
	static const struct {
		size_t off;
		const char *said;
	} strs[] = {
		{ offsetof(struct vm_save, qemu), "the QEMU binary changed" },
		{ offsetof(struct vm_save, version), "QEMU's version changed" },
		{ offsetof(struct vm_save, machine), "the machine type" },
		{ offsetof(struct vm_save, accel), "the accelerator" },
		{ offsetof(struct vm_save, cpu), "the CPU model" },
		{ offsetof(struct vm_save, argv_hash), "command line" },
	};
	struct vm_save rec, now;
	struct buf why = BUF_INIT;
	json_t *j;

	(void)state;
	save_example(&rec);
	save_example(&now);
	assert_int_equal(vm_save_fits(&rec, &now, &why), 1);
	assert_null(why.p);
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++) {
		char **f = (char **)((char *)&now + strs[i].off);
		char *keep = *f;

		*f = xstrdup("other");
		assert_int_equal(vm_save_fits(&rec, &now, &why), 0);
		assert_non_null(strstr(why.p, strs[i].said));
		free(*f);
		*f = NULL; /* unknown now is no fit either */
		assert_int_equal(vm_save_fits(&rec, &now, &why), 0);
		*f = keep;
		buf_free(&why);
	}
	now.disk_mtime_ns++;
	assert_int_equal(vm_save_fits(&rec, &now, &why), 0);
	assert_non_null(strstr(why.p, "disk changed"));
	buf_free(&why);
	now.disk_mtime_ns--;
	now.disk_ino++;
	assert_int_equal(vm_save_fits(&rec, &now, &why), 0);
	buf_free(&why);
	now.disk_ino--;
	now.size -= 4096;
	assert_int_equal(vm_save_fits(&rec, &now, &why), 0);
	assert_non_null(strstr(why.p, "truncated"));
	buf_free(&why);
	vm_save_free(&now);
	/* the record round-trips; one missing field is no record */
	j = vm_save_to_json(&rec);
	assert_int_equal(vm_save_from_json(j, &now), 0);
	assert_int_equal(vm_save_fits(&rec, &now, &why), 1);
	vm_save_free(&now);
	json_object_del(j, "cpu");
	assert_int_equal(vm_save_from_json(j, &now), -1);
	assert_null(now.qemu);
	assert_int_equal(vm_save_from_json(NULL, &now), -1);
	json_decref(j);
	vm_save_free(&rec);
}

/* Snapshot tags: what QEMU and paths can take, nothing it would read as
 * an id; said on stderr when refused. */
static void test_snapshot_tags(void **state)
{
	static const char *const good[] = { "a", "before-upgrade", "v1.2_x",
		"Z9", "a123456789012345678901234567890123456789012345678901234567"
		"89012" };
	static const char *const bad[] = { "", "1", "42abc", "-a", ".a",
		"a b", "a/b", "a,b", "a\nb", "é", "a;rm",
		"a1234567890123456789012345678901234567890123456789012345678901"
		"234" };
	char *err;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		assert_int_equal(vm_snapshot_tag_check(good[i]), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		stderr_begin();
		assert_int_equal(vm_snapshot_tag_check(bad[i]), -1);
		err = stderr_end();
		assert_non_null(strstr(err, "tag"));
		free(err);
	}
}

/* The snapshots array of qemu-img info / query-block, as QEMU 7.2 writes
 * it. */
static void test_snapshots_parse(void **state)
{
	const char *text = "[{\"icount\": 0, \"vm-clock-nsec\": 905, "
		"\"name\": \"warm\", \"date-sec\": 1796193445, "
		"\"date-nsec\": 1, \"vm-clock-sec\": 9, \"id\": \"1\", "
		"\"vm-state-size\": 1372229}, {\"vm-clock-nsec\": 0, "
		"\"name\": \"cold\", \"date-sec\": 1796193500, "
		"\"date-nsec\": 0, \"vm-clock-sec\": 0, \"id\": \"2\", "
		"\"vm-state-size\": 0}]";
	json_t *j = json_loads(text, 0, NULL);
	struct vm_snapshots l = { NULL, 0 };
	char *err;

	(void)state;
	assert_non_null(j);
	assert_int_equal(vm_snapshots_parse(j, &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].tag, "warm");
	assert_int_equal(l.v[0].size, 1372229);
	assert_int_equal(l.v[0].memory, 1);
	assert_int_equal(l.v[0].date, 1796193445);
	assert_string_equal(l.v[1].tag, "cold");
	assert_int_equal(l.v[1].memory, 0);
	vm_snapshots_free(&l);
	assert_null(l.v);
	/* none: qemu-img leaves the array out */
	assert_int_equal(vm_snapshots_parse(NULL, &l), 0);
	assert_int_equal(l.n, 0);
	/* an entry without its name is refused, not guessed */
	json_object_del(json_array_get(j, 1), "name");
	stderr_begin();
	assert_int_equal(vm_snapshots_parse(j, &l), -1);
	err = stderr_end();
	assert_non_null(strstr(err, "entry 2"));
	free(err);
	vm_snapshots_free(&l);
	vm_snapshots_free(NULL);
	json_decref(j);
}

/* Every move the table allows, and every other one refused. */
static void test_state_machine(void **state)
{
	static const struct { enum vm_state from, to; } legal[] = {
		{ VM_STOPPED, VM_STOPPED },   { VM_STOPPED, VM_STARTING },
		{ VM_STARTING, VM_STARTING }, { VM_STARTING, VM_RUNNING },
		{ VM_STARTING, VM_STOPPED },  { VM_STARTING, VM_CRASHED },
		{ VM_RUNNING, VM_STOPPED },   { VM_RUNNING, VM_CRASHED },
		{ VM_CRASHED, VM_STOPPED },   { VM_CRASHED, VM_STARTING },
		{ VM_CRASHED, VM_CRASHED },
		{ VM_RUNNING, VM_PAUSED },    { VM_RUNNING, VM_SUSPENDED },
		{ VM_PAUSED, VM_RUNNING },    { VM_PAUSED, VM_SUSPENDED },
		{ VM_PAUSED, VM_STOPPED },    { VM_PAUSED, VM_CRASHED },
		{ VM_SUSPENDED, VM_STARTING }, { VM_SUSPENDED, VM_STOPPED },
		/* a resume whose QEMU would not start keeps the save */
		{ VM_STARTING, VM_SUSPENDED },
	};
	int n = 0;

	(void)state;
	for (int f = 0; f < VM_NSTATES; f++)
		for (int t = 0; t < VM_NSTATES; t++) {
			int want = 0;

			for (size_t i = 0; i < ARRAY_SIZE(legal); i++)
				if (legal[i].from == (enum vm_state)f &&
				    legal[i].to == (enum vm_state)t)
					want = 1;
			assert_int_equal(vm_transition_ok((enum vm_state)f,
							  (enum vm_state)t),
					 want);
			n += want;
		}
	assert_int_equal(n, (int)ARRAY_SIZE(legal));
	/* a running VM is never "started" again over itself, a stopped one
	 * never jumps to running without starting */
	assert_false(vm_transition_ok(VM_RUNNING, VM_STARTING));
	assert_false(vm_transition_ok(VM_STOPPED, VM_RUNNING));
	assert_false(vm_transition_ok(VM_NSTATES, VM_STOPPED));
	/* a suspended VM has no QEMU: it never jumps to running or paused */
	assert_false(vm_transition_ok(VM_SUSPENDED, VM_RUNNING));
	assert_false(vm_transition_ok(VM_SUSPENDED, VM_PAUSED));
	assert_false(vm_transition_ok(VM_STOPPED, VM_SUSPENDED));
	/* names round-trip */
	for (int i = 0; i < VM_NSTATES; i++)
		assert_int_equal(vm_state_parse(vm_state_name(
				 (enum vm_state)i)), i);
	assert_int_equal(vm_state_parse("exploded"), -1);
	assert_int_equal(vm_state_parse(NULL), -1);
}

static void *sleeper(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

/* Field name of /proc/PID/task/TID/sched, or -1 when the kernel shows
 * no such field. */
static long long sched_field(pid_t pid, const char *tid, const char *name)
{
	char *path = xasprintf("/proc/%d/task/%s/sched", (int)pid, tid);
	char line[256];
	long long v = -1;
	FILE *f = fopen(path, "r");

	free(path);
	while (f && fgets(line, sizeof(line), f)) {
		size_t n = strlen(name);

		if (!strncmp(line, name, n) && line[n] == ' ')
			v = strtoll(strchr(line, ':') + 1, NULL, 10);
	}
	if (f)
		fclose(f);
	return v;
}

/* Linux 6.12 and later take a fair thread's slice from sched_runtime. */
static int custom_slices(void)
{
	struct utsname u;
	int major = 0, minor = 0;

	return uname(&u) == 0 &&
	       sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
	       (major > 6 || (major == 6 && minor >= 12));
}

/* A kernel's panic on the console, found with its line; a boot's
 * ordinary lines, a marker cut off, and a log that merely mentions the
 * word "panic" are not one. */
static void test_panic_line(void **state)
{
	static const char boot[] =
		"[    0.2] printk: console [ttyS0] enabled\r\n"
		"[    0.3] Kernel command line: panic=10\r\n";
	static const char panic[] =
		"[    2.4] VFS: Cannot open root device\r\n"
		"[    2.4] Kernel panic - not syncing: VFS: Unable to mount "
		"root fs on unknown-block(0,0)\r\n[    2.4] CPU: 1 PID: 1\r\n";
	static const char cut[] = "[    2.4] Kernel panic - not sync";
	static const char last[] = "Kernel panic - not syncing: Attempted";
	char line[160] = "";
	char small[20];

	(void)state;
	assert_int_equal(vm_panic_line(boot, strlen(boot), line,
				       sizeof(line)), 0);
	assert_int_equal(vm_panic_line(cut, strlen(cut), line, sizeof(line)),
			 0);
	assert_int_equal(vm_panic_line(panic, strlen(panic), line,
				       sizeof(line)), 1);
	assert_string_equal(line, "Kernel panic - not syncing: VFS: Unable "
			    "to mount root fs on unknown-block(0,0)");
	/* a line not yet ended: as far as the text goes, said with 2 */
	assert_int_equal(vm_panic_line(last, strlen(last), line,
				       sizeof(line)), 2);
	assert_string_equal(line, last);
	/* cut to the caller's buffer */
	assert_int_equal(vm_panic_line(panic, strlen(panic), small,
				       sizeof(small)), 1);
	assert_string_equal(small, "Kernel panic - not ");
}

/* The words of text on sshd, one letter each (see sshd_events()'s
 * callers), with the last failure's line in line. */
static void sshd_events(const char *text, char *events, char *line)
{
	static const char letter[] = " +=-!B";
	char words[160];
	size_t at = 0, n = 0;
	int said;

	while ((said = vm_sshd_said(text, strlen(text), &at, words,
				    sizeof(words)))) {
		events[n++] = letter[said];
		if (said == VM_SSHD_FAILED)
			snprintf(line, 160, "%s", words);
		at++;
	}
	events[n] = '\0';
}

/* systemd's words on the guest's sshd, as Debian 12's console has them:
 * colour codes, the unit's name cut by an ellipsis that ate an escape;
 * each in turn, and where it is. Other units' lines, and a line that
 * merely mentions ssh.service, are not sshd's. */
static void test_sshd_said(void **state)
{
#define ST "         Starting \033[0;1;39mssh.service\033[0m - OpenBSD " \
	   "Secure Shell server...\r\r\n"
#define FAILED "[\033[0;1;31mFAILED\033[0m] Failed to start \033[0;1;39m" \
	       "ssh.servic\xe2\x80\xa6[0m - OpenBSD Secure Shell server.\r\r\n"
#define SEE "See 'systemctl status ssh.service' for details.\r\r\n"
#define STOPPED "[\033[0;32m  OK  \033[0m] Stopped \033[0;1;39mssh.service" \
		"\033[0m - OpenBSD Secure Shell server.\r\r\n"
#define OTHER "[\033[0;1;31mFAILED\033[0m] Failed to start \033[0;1;39m" \
	      "sshguard.service\033[0m - SSHGuard.\r\r\n"
	/* two tries, then systemd's limit */
	static const char tries[] = ST FAILED SEE STOPPED ST FAILED SEE
		STOPPED FAILED SEE;
	static const char works[] = ST FAILED SEE STOPPED ST
		"[\033[0;32m  OK  \033[0m] Started \033[0;1;39msshd.service"
		"\033[0m - OpenSSH server daemon.\r\r\n";
	static const char others[] = SEE OTHER "Starting sshd-keygen\r\n";
	static const char reboot[] = ST FAILED "[    0.0] Linux version 6.1\r\n"
		ST;
	char line[160] = "", events[16], cut[128];
	size_t at = 0;

	(void)state;
	sshd_events(tries, events, line);
	assert_string_equal(events, "+!-+!-!");
	assert_string_equal(line, "Failed to start ssh.servic\xe2\x80\xa6 - "
			    "OpenBSD Secure Shell server.");
	sshd_events(works, events, line);
	assert_string_equal(events, "+!-+=");
	sshd_events(others, events, line);
	assert_string_equal(events, "");
	sshd_events(reboot, events, line);
	assert_string_equal(events, "+!B+");
	/* where: from *at on */
	at = strlen(ST) + 1;
	assert_int_equal(vm_sshd_said(tries, strlen(tries), &at, line,
				      sizeof(line)), VM_SSHD_FAILED);
	assert_int_equal(at, strlen(ST "[\033[0;1;31mFAILED\033[0m] "));
	at = strlen(tries);
	assert_int_equal(vm_sshd_said(tries, strlen(tries), &at, line,
				      sizeof(line)), 0);
	/* a line not yet ended: its words so far; cut to the buffer */
	snprintf(cut, sizeof(cut), "%.*s", (int)strlen(FAILED) - 40, FAILED);
	at = 0;
	assert_int_equal(vm_sshd_said(cut, strlen(cut), &at, line,
				      sizeof(line)), VM_SSHD_FAILED);
	assert_string_equal(line, "Failed to start ssh.servic");
	at = 0;
	assert_int_equal(vm_sshd_said(FAILED, strlen(FAILED), &at, line, 12),
			 VM_SSHD_FAILED);
	assert_string_equal(line, "Failed to s");
	/* cut before the unit's name is whole: not yet known to be sshd's */
	cut[strlen(cut) - 9] = '\0';
	at = 0;
	assert_int_equal(vm_sshd_said(cut, strlen(cut), &at, line,
				      sizeof(line)), 0);
	/* the guest's bytes go into JSON: whole UTF-8 characters only, a
	 * '?' for each other byte, cut between characters */
	at = 0;
	snprintf(cut, sizeof(cut), "Failed to start ssh.service \xff\xc3\xa9"
		 "\xed\xa0\x80 end\n");
	assert_int_equal(vm_sshd_said(cut, strlen(cut), &at, line,
				      sizeof(line)), VM_SSHD_FAILED);
	assert_string_equal(line, "Failed to start ssh.service ?\xc3\xa9??? end");
	at = 0;
	assert_int_equal(vm_sshd_said("Failed to start ssh.service \xc3\xa9"
				      "\xc3\xa9", 32, &at, line, 31),
			 VM_SSHD_FAILED);
	assert_string_equal(line, "Failed to start ssh.service \xc3\xa9");
#undef ST
#undef FAILED
#undef SEE
#undef STOPPED
#undef OTHER
}

/* A running guest whose sshd systemd gave up on, as status and shell
 * find it on the console log: the last boot's words only, a give-up
 * only (a failed try may yet be followed by another). */
static void test_console_sshd_failed(void **state)
{
#define BOOT "[    0.0] Linux version 6.1.0-28-cloud-amd64 (gcc 12.2.0)\r\n"
#define ST "         Starting \033[0;1;39mssh.service\033[0m - OpenBSD " \
	   "Secure Shell server...\r\r\n"
#define FAILED "[\033[0;1;31mFAILED\033[0m] Failed to start \033[0;1;39m" \
	       "ssh.servic\xe2\x80\xa6[0m - OpenBSD Secure Shell server.\r\r\n"
#define STOPPED "[\033[0;32m  OK  \033[0m] Stopped \033[0;1;39mssh.service" \
		"\033[0m - OpenBSD Secure Shell server.\r\r\n"
#define STARTED "[\033[0;32m  OK  \033[0m] Started \033[0;1;39mssh.service" \
		"\033[0m - OpenBSD Secure Shell server.\r\r\n"
	static const char gave_up[] = BOOT ST FAILED STOPPED ST FAILED
		STOPPED FAILED "\r\nDebian GNU/Linux 12 u3 ttyS0\r\n";
	char *dir = make_tmpdir(), *log = xasprintf("%s/console.log", dir);
	char line[160] = "";
	struct buf b = BUF_INIT;

	(void)state;
	assert_int_equal(vm_console_sshd_failed(log, 0, line, sizeof(line)), 0);
	assert_int_equal(write_file_atomic(log, gave_up, strlen(gave_up),
					   0600), 0);
	assert_int_equal(vm_console_sshd_failed(log, 0, line, sizeof(line)), 1);
	assert_string_equal(line, "Failed to start ssh.servic\xe2\x80\xa6 - "
			    "OpenBSD Secure Shell server.");
	/* not known where this QEMU's output begins, or after the words */
	assert_int_equal(vm_console_sshd_failed(log, -1, line, sizeof(line)),
			 0);
	assert_int_equal(vm_console_sshd_failed(log, (long long)strlen(BOOT ST
			 FAILED STOPPED ST FAILED STOPPED FAILED), line,
			 sizeof(line)), 0);
	/* from just after the last "Stopped": its failure is no give-up */
	assert_int_equal(vm_console_sshd_failed(log, (long long)strlen(BOOT ST
			 FAILED STOPPED ST FAILED STOPPED), line,
			 sizeof(line)), 0);
	/* a try that failed, none since: not given up (yet) */
	buf_adds(&b, BOOT ST FAILED);
	assert_int_equal(write_file_atomic(log, b.p, b.len, 0600), 0);
	assert_int_equal(vm_console_sshd_failed(log, 0, line, sizeof(line)), 0);
	/* "Stopped", then a start whose "Starting" the log lacks: a later
	 * failure is a try's, not a give-up */
	buf_free(&b);
	buf_adds(&b, BOOT ST FAILED STOPPED STARTED FAILED);
	assert_int_equal(write_file_atomic(log, b.p, b.len, 0600), 0);
	assert_int_equal(vm_console_sshd_failed(log, 0, line, sizeof(line)), 0);
	/* another unit of sshd's stopped (its socket), then the service
	 * failed: a try's failure, not a give-up */
	buf_free(&b);
	buf_adds(&b, BOOT ST FAILED "[  OK  ] Stopped ssh.socket - OpenBSD "
		 "Secure Shell server socket.\r\n" FAILED);
	assert_int_equal(write_file_atomic(log, b.p, b.len, 0600), 0);
	assert_int_equal(vm_console_sshd_failed(log, 0, line, sizeof(line)), 0);
	/* given up, then started again while the guest still boots (a
	 * restart of it by cloud-init, say): no failure now */
	buf_free(&b);
	buf_adds(&b, gave_up);
	buf_adds(&b, ST STARTED);
	assert_int_equal(write_file_atomic(log, b.p, b.len, 0600), 0);
	assert_int_equal(vm_console_sshd_failed(log, 0, line, sizeof(line)), 0);
	/* given up in a boot before the last: not this boot's */
	buf_free(&b);
	buf_adds(&b, gave_up);
	buf_adds(&b, BOOT "[    9.0] systemd[1]: Reached target\r\n");
	assert_int_equal(write_file_atomic(log, b.p, b.len, 0600), 0);
	assert_int_equal(vm_console_sshd_failed(log, 0, line, sizeof(line)), 0);
	buf_free(&b);
	remove_tree(dir);
	free(dir);
	free(log);
#undef BOOT
#undef ST
#undef FAILED
#undef STOPPED
#undef STARTED
}

/* A probe of sshd waits 5 s for its banner, 1 s where the guest never
 * wrote its console (no Linux there to run an sshd). */
static void test_sshd_wait_ms(void **state)
{
	char *dir = make_tmpdir(), *log = xasprintf("%s/console.log", dir);

	(void)state;
	assert_int_equal(vm_sshd_wait_ms(log), 1000);
	assert_int_equal(write_file_atomic(log, "", 0, 0600), 0);
	assert_int_equal(vm_sshd_wait_ms(log), 1000);
	assert_int_equal(write_file_atomic(log, "\r\n", 2, 0600), 0);
	assert_int_equal(vm_sshd_wait_ms(log), 5000);
	remove_tree(dir);
	free(dir);
	free(log);
}

/* A console log that ends with a kernel's panic since a QEMU's output
 * began, with no boot after it: what status, shell and a start that
 * finds the VM running go by. */
static void test_console_panicked(void **state)
{
	static const char boot[] =
		"[    0.0] Linux version 6.1.0-28-cloud-amd64 (gcc 12.2.0)\r\n"
		"[    0.2] printk: console [ttyS0] enabled\r\n";
	static const char panic[] =
		"[    2.4] Kernel panic - not syncing: VFS: Unable to mount "
		"root fs\r\n[    2.4] CPU: 1 PID: 1\r\n"
		"[    2.5] ---[ end Kernel panic - not syncing: VFS: Unable to "
		"mount root fs ]---\r\n";
	char *dir = make_tmpdir(), *log = xasprintf("%s/console.log", dir);
	char line[160] = "";
	struct buf b = BUF_INIT;
	long long second;

	(void)state;
	/* no log, no offset known, an offset at the log's end */
	assert_int_equal(vm_console_panicked(log, 0, line, sizeof(line)), 0);
	buf_adds(&b, boot);
	buf_adds(&b, "[    9.0] systemd[1]: Started ssh.service\r\n");
	assert_int_equal(write_file_atomic(log, b.p, b.len, 0600), 0);
	assert_int_equal(vm_console_panicked(log, 0, line, sizeof(line)), 0);
	/* this QEMU's boot panics: its first line, not the trailer's */
	second = (long long)b.len;
	buf_adds(&b, boot);
	buf_adds(&b, panic);
	assert_int_equal(write_file_atomic(log, b.p, b.len, 0600), 0);
	assert_int_equal(vm_console_panicked(log, second, line, sizeof(line)),
			 1);
	assert_string_equal(line, "Kernel panic - not syncing: VFS: Unable to "
			    "mount root fs");
	assert_int_equal(vm_console_panicked(log, -1, line, sizeof(line)), 0);
	assert_int_equal(vm_console_panicked(log, (long long)b.len, line,
					     sizeof(line)), 0);
	/* the panic's words in a program's output (a grep of an old log):
	 * the kernel did not stop there */
	buf_adds(&b, "debian@t4:~$ journalctl -k -b -1 | grep panic\r\n");
	assert_int_equal(write_file_atomic(log, b.p, b.len, 0600), 0);
	assert_int_equal(vm_console_panicked(log, second, line, sizeof(line)),
			 0);
	b.len -= strlen("debian@t4:~$ journalctl -k -b -1 | grep panic\r\n");
	b.p[b.len] = '\0';
	/* a kernel that boots again after its panic (panic=N) */
	buf_adds(&b, boot);
	assert_int_equal(write_file_atomic(log, b.p, b.len, 0600), 0);
	assert_int_equal(vm_console_panicked(log, second, line, sizeof(line)),
			 0);
	/* a panic of an earlier QEMU, before this one's output */
	buf_free(&b);
	buf_adds(&b, boot);
	buf_adds(&b, panic);
	second = (long long)b.len;
	buf_adds(&b, "[   30.0] a resumed guest says something\r\n");
	assert_int_equal(write_file_atomic(log, b.p, b.len, 0600), 0);
	assert_int_equal(vm_console_panicked(log, second, line, sizeof(line)),
			 0);
	/* a long log: the panic at its end is found past VM_PANIC_TAIL */
	buf_free(&b);
	buf_adds(&b, boot);
	while (b.len < 3 * VM_PANIC_TAIL)
		buf_adds(&b, "[ 12.3] cloud-init[512]: a line of output\r\n");
	buf_adds(&b, panic);
	assert_int_equal(write_file_atomic(log, b.p, b.len, 0600), 0);
	assert_int_equal(vm_console_panicked(log, 0, line, sizeof(line)), 1);
	buf_free(&b);
	remove_tree(dir);
	free(dir);
	free(log);
}

static void test_sched_boot(void **state)
{
	struct sched_param idle = { 0 };
	char *dir, *t[2] = { NULL, NULL };
	struct dirent *e;
	pid_t child;
	DIR *d;
	int n = 0, want;

	(void)state;
	child = fork();
	if (child == 0) {
		pthread_t th;

		alarm(60); /* gone even if the test fails half-way */
		(void)!nice(5); /* both threads; nook must keep it */
		pthread_create(&th, NULL, sleeper, NULL);
		pause();
		_exit(0);
	}
	dir = xasprintf("/proc/%d/task", (int)child);
	for (int i = 0; i < 500 && n < 2; i++) {
		usleep(10000);
		n = 0;
		d = opendir(dir);
		while (d && (e = readdir(d)))
			if (e->d_name[0] != '.' && n < 2)
				t[n++] = xstrdup(e->d_name);
		if (d)
			closedir(d);
		if (n < 2)
			for (int k = 0; k < n; k++)
				free(t[k]);
	}
	assert_int_equal(n, 2);
	/* both threads, the one that made the other included; their nice
	 * (5 over the test's own, which 'nice ctest' raises) kept */
	errno = 0;
	want = 120 + getpriority(PRIO_PROCESS, (id_t)child);
	assert_int_equal(errno, 0);
	assert_int_equal(vm_sched_boot(child, 1), 2);
	for (int k = 0; k < 2; k++) {
		assert_int_equal(sched_field(child, t[k], "policy"), 3);
		assert_int_equal(sched_field(child, t[k], "prio"), want);
		if (custom_slices())
			assert_int_equal(sched_field(child, t[k], "se.slice"),
					 10000000);
	}
	/* one a user has put elsewhere meanwhile is left there */
	assert_int_equal(sched_setscheduler((pid_t)strtol(t[1], NULL, 10),
					    SCHED_IDLE, &idle), 0);
	assert_int_equal(vm_sched_boot(child, 0), 1);
	assert_int_equal(sched_field(child, t[0], "policy"), 0);
	assert_int_equal(sched_field(child, t[0], "prio"), want);
	if (custom_slices())
		assert_int_not_equal(sched_field(child, t[0], "se.slice"),
				     10000000);
	assert_int_equal(sched_field(child, t[1], "policy"), 5);
	free(t[0]);
	free(t[1]);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	/* gone: nothing to change, no error */
	assert_int_equal(vm_sched_boot(child, 1), 0);
	free(dir);
}

static void test_stale_pidfile(void **state)
{
	char *dir = make_tmpdir();
	char *pf = xasprintf("%s/qemu.pid", dir);
	char buf[32];
	pid_t child;

	(void)state;
	/* missing file */
	assert_int_equal(vm_pid_alive(pf, "/x/qmp.sock"), 0);
	/* our own pid: alive, but not a QEMU of this VM */
	snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	assert_int_equal(write_file_atomic(pf, buf, strlen(buf), 0600), 0);
	assert_int_equal(vm_pid_alive(pf, "/x/qmp.sock"), 0);
	/* a process that names the socket: trusted */
	child = fork();
	if (child == 0) {
		/* sh keeps its own argv, which names the socket, while it
		 * waits for sleep; neither holds the test's output open */
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(null, 2);
		execlp("sh", "sh", "-c", "sleep 30; :", "/x/qmp.sock",
		       (char *)NULL);
		_exit(127);
	}
	snprintf(buf, sizeof(buf), "%d\n", (int)child);
	assert_int_equal(write_file_atomic(pf, buf, strlen(buf), 0600), 0);
	for (int i = 0; i < 100 && !vm_pid_alive(pf, "/x/qmp.sock"); i++)
		usleep(10000);
	assert_int_equal(vm_pid_alive(pf, "/x/qmp.sock"), child);
	/* an argument that merely contains another VM's is not this VM's */
	assert_int_equal(vm_pid_alive(pf, "/x/qmp.so"), 0);
	assert_int_equal(vm_pid_alive(pf, "qmp.sock"), 0);
	/* killed: a zombie or gone is not alive */
	kill(child, SIGKILL);
	for (int i = 0; i < 500 && vm_pid_alive(pf, "/x/qmp.sock"); i++)
		usleep(10000);
	assert_int_equal(vm_pid_alive(pf, "/x/qmp.sock"), 0); /* a zombie */
	waitpid(child, NULL, 0);
	assert_int_equal(vm_pid_alive(pf, "/x/qmp.sock"), 0);
	/* junk */
	assert_int_equal(write_file_atomic(pf, "12ab\n", 5, 0600), 0);
	assert_int_equal(vm_pid_alive(pf, "/x/qmp.sock"), 0);
	remove_tree(dir);
	free(pf);
	free(dir);
}

static void test_spec_json(void **state)
{
	struct vm_spec s, t;
	struct vm_paths p;
	json_t *j, *k;

	(void)state;
	make_spec(&s, &p);
	s.nics = xmalloc(sizeof(*s.nics));
	s.nnics = 1;
	vm_nic_user(&s.nics[0], "02:6e:01:02:03:04", NULL, 0);
	s.nics[0].ports = xrealloc(s.nics[0].ports, sizeof(struct net_port));
	assert_int_equal(net_port_parse("0:80", &s.nics[0].ports[0]), 0);
	s.nics[0].nports = 1;
	s.ssh_port = 4022;
	j = vm_spec_to_json(&s);
	assert_int_equal(vm_spec_from_json(j, "test", &t), 0);
	k = vm_spec_to_json(&t);
	assert_true(json_equal(j, k));
	assert_int_equal(t.ssh_port, 4022);
	assert_int_equal(t.nnics, 1);
	assert_int_equal(t.nics[0].nports, 1);
	assert_string_equal(t.nics[0].mac, "02:6e:01:02:03:04");
	json_decref(k);
	vm_spec_free(&t);
	/* a vm.json from before NICs: its ports and its name's MAC kept */
	json_object_del(j, "nics");
	json_object_set_new(j, "ports", json_pack("[s,s]", "127.0.0.1:8080:80/tcp",
						  "127.0.0.1:0:53/udp"));
	assert_int_equal(vm_spec_from_json(j, "old", &t), 0);
	{
		char mac[18];

		net_mac("", "web", 0, mac);
		assert_int_equal(t.nnics, 1);
		assert_string_equal(t.nics[0].mac, mac);
		assert_int_equal(t.nics[0].nports, 2);
		assert_int_equal(t.nics[0].ports[0].host, 8080);
		assert_int_equal(t.nics[0].ports[1].udp, 1);
	}
	vm_spec_free(&t);
	json_decref(j);
	/* a document that is not a spec */
	j = json_pack("{s:s}", "name", "x");
	stderr_begin();
	assert_int_equal(vm_spec_from_json(j, "bad.json", &t), -1);
	free(stderr_end());
	vm_spec_free(&t);
	json_decref(j);
	vm_spec_free(&s);
	vm_paths_free(&p);
}

/* The libvirt XML of a cluster node: escaped text, nook's NICs in order
 * on the uplink's and the cluster's networks with nook's PCI slots, the
 * disks and the balloon after them, TCG's CPU model as libvirt features. */
static void test_libvirt_xml(void **state)
{
	struct vm_spec s;
	struct vm_paths p;
	struct vm_nic nics[2];
	struct vm_lv_domain t = { "qemu", "pc-q35-7.2", "default",
				  "/log/a&b.log", "/p/d.qcow2", "/p/s.iso",
				  "/p/k", NULL };
	struct buf b = BUF_INIT;
	const char *nic1, *nic2, *rng, *disk;
	char up[18], node[18];

	(void)state;
	make_spec(&s, &p);
	s.cluster = xstrdup("dev");
	s.address = xstrdup("10.77.0.2");
	s.prefix = 24;
	free(s.image.cmdline);
	s.image.cmdline = xstrdup("root=LABEL=r x=\"<'&'>\"");
	net_mac("", "web", 0, up);
	net_node_mac("dev", 2, node);
	vm_nic_user(&nics[0], up, NULL, 0);
	vm_nic_user(&nics[1], node, NULL, 0);
	nics[1].kind = VM_NIC_CLUSTER;
	s.nics = nics;
	s.nnics = 2;
	assert_int_equal(vm_xml_escape("a<b>&\"c'", &b), 0);
	assert_string_equal(b.p, "a&lt;b&gt;&amp;&quot;c&apos;");
	b.len = 0;
	vm_libvirt_domain_xml(&s, &t, &b);
	assert_non_null(strstr(b.p, "<domain type='qemu'>\n  <name>web</name>"));
	assert_non_null(strstr(b.p, "<memory unit='KiB'>2097152</memory>"));
	assert_non_null(strstr(b.p, "<vcpu placement='static'>3</vcpu>"));
	assert_non_null(strstr(b.p, "machine='pc-q35-7.2'>hvm</type>"));
	assert_non_null(strstr(b.p, "<kernel>/p/k</kernel>\n    <cmdline>"
			"root=LABEL=r x=&quot;&lt;&apos;&amp;&apos;&gt;&quot; "
			"console=ttyS0 ds=nocloud"));
	assert_null(strstr(b.p, "<initrd>"));
	assert_non_null(strstr(b.p, "<model>qemu64</model>\n    <feature "
			"policy='disable' name='svm'/>"));
	assert_non_null(strstr(b.p, "<log file='/log/a&amp;b.log' "
			"append='on'/>"));
	nic1 = strstr(b.p, up);
	nic2 = strstr(b.p, node);
	rng = strstr(b.p, "<rng");
	disk = strstr(b.p, "<source file='/p/d.qcow2'/>");
	assert_true(nic1 && nic2 && rng && disk);
	assert_true(nic1 < nic2 && nic2 < rng && rng < disk);
	assert_non_null(strstr(nic1, "<source network='default'/>"));
	assert_non_null(strstr(nic2, "<source network='dev'/>"));
	assert_non_null(strstr(nic2, "slot='0x02'"));
	assert_true(strstr(nic2, "slot='0x02'") < rng);
	assert_non_null(strstr(disk, "slot='0x04'"));
	/* the balloon after the seed, as QEMU has it: free page reporting */
	assert_non_null(strstr(disk, "<memballoon model='virtio' "
			       "freePageReporting='on'>\n      <address "
			       "type='pci' domain='0x0000' bus='0x00' "
			       "slot='0x06'"));
	assert_non_null(strstr(disk, "<source file='/p/s.iso'/>\n      "
			"<target dev='vdb' bus='virtio'/>\n      <readonly/>"));
	/* user-mode uplink, KVM, a CPU of the user's */
	t.uplink = NULL;
	t.type = "kvm";
	s.cpu = xstrdup("Haswell,-hle,+pcid,x2apic=on");
	free(s.boot);
	s.boot = xstrdup("disk");
	b.len = 0;
	vm_libvirt_domain_xml(&s, &t, &b);
	assert_non_null(strstr(b.p, "<interface type='user'>"));
	assert_non_null(strstr(b.p, "<boot dev='hd'/>"));
	assert_null(strstr(b.p, "<kernel>"));
	assert_non_null(strstr(b.p, "<model>Haswell</model>\n"
		"    <feature policy='disable' name='hle'/>\n"
		"    <feature policy='require' name='pcid'/>\n"
		"    <feature policy='require' name='x2apic'/>"));
	b.len = 0;
	vm_libvirt_network_xml("dev", "10.77.0.0/24", &b);
	assert_non_null(strstr(b.p, "<name>dev</name>"));
	assert_null(strstr(b.p, "<forward"));
	assert_null(strstr(b.p, "<ip"));
	/* a name with "--" stays out of the comment, where XML forbids it */
	b.len = 0;
	assert_int_equal(vm_libvirt_network_xml("a--b", "10.77.0.0/24", &b), 0);
	assert_non_null(strstr(b.p, "<name>a--b</name>"));
	{
		const char *c = strstr(b.p, "<!--"), *e = strstr(b.p, "-->");

		assert_true(c && e && c < e);
		assert_true(strstr(c + 4, "--") == e);
	}
	/* newline, return, tab as references; other C0 refused */
	b.len = 0;
	assert_int_equal(vm_xml_escape("a\nb\tc\rd", &b), 0);
	assert_string_equal(b.p, "a&#10;b&#9;c&#13;d");
	b.len = 0;
	assert_int_equal(vm_xml_escape("a\001b", &b), -1);
	assert_null(strchr(b.p, '\001'));
	/* UTF-8 passes; a byte that is not (XML is UTF-8) is refused */
	b.len = 0;
	assert_int_equal(vm_xml_escape("caf\303\251", &b), 0);
	assert_string_equal(b.p, "caf\303\251");
	b.len = 0;
	assert_int_equal(vm_xml_escape("caf\351/d", &b), -1);
	assert_null(strchr(b.p, '\351'));
	b.len = 0;
	t.disk = "/p/new\nline.qcow2";
	assert_int_equal(vm_libvirt_domain_xml(&s, &t, &b), 0);
	assert_non_null(strstr(b.p, "<source file='/p/new&#10;line.qcow2'/>"));
	t.disk = "/p/d.qcow2";
	free(s.image.cmdline);
	s.image.cmdline = xstrdup("root=x \001");
	free(s.boot);
	s.boot = xstrdup("direct");
	t.kernel = "/p/k";
	b.len = 0;
	assert_int_equal(vm_libvirt_domain_xml(&s, &t, &b), -1);
	free(s.boot);
	s.boot = xstrdup("disk");
	/* -cpu host and max keep their features; properties are refused */
	free(s.cpu);
	s.cpu = xstrdup("host,-vmx,+pcid");
	b.len = 0;
	assert_int_equal(vm_libvirt_domain_xml(&s, &t, &b), 0);
	assert_non_null(strstr(b.p, "<cpu mode='host-passthrough' "
			"check='none'>\n"
			"    <feature policy='disable' name='vmx'/>\n"
			"    <feature policy='require' name='pcid'/>\n"
			"  </cpu>"));
	free(s.cpu);
	s.cpu = xstrdup("max");
	b.len = 0;
	assert_int_equal(vm_libvirt_domain_xml(&s, &t, &b), 0);
	assert_non_null(strstr(b.p, "<cpu mode='maximum' check='none'>\n"
			"  </cpu>"));
	for (size_t i = 0; i < 3; i++) {
		static const char *const bad[] = { "Haswell,level=13",
			"Haswell,model-id=x y", "Haswell,hv-relaxed=on" };

		free(s.cpu);
		s.cpu = xstrdup(bad[i]);
		b.len = 0;
		assert_int_equal(vm_libvirt_domain_xml(&s, &t, &b), -1);
	}
	buf_free(&b);
	s.nics = NULL;
	s.nnics = 0;
	vm_nic_free(&nics[0]);
	vm_nic_free(&nics[1]);
	vm_spec_free(&s);
	vm_paths_free(&p);
}

/* --- export -o DIR: a directory another makes first ------------------ */

/* __wrap_mkdir(): the path another user (or process) makes, of mode and
 * owner race_uid (-1: ours), between nook's look and its own mkdir */
static const char *race_at;
static mode_t race_mode;
static uid_t race_uid = (uid_t)-1;

int __real_mkdir(const char *path, mode_t mode);
int __wrap_mkdir(const char *path, mode_t mode);
int __wrap_mkdir(const char *path, mode_t mode)
{
	if (!race_at || strcmp(path, race_at))
		return __real_mkdir(path, mode);
	if (__real_mkdir(path, 0700) < 0 || chmod(path, race_mode) < 0 ||
	    (race_uid != (uid_t)-1 && chown(path, race_uid, race_uid) < 0))
		abort();
	errno = EEXIST;
	return -1;
}

/* A stopped VM "ex" in d on a blank raw disk, for an export. */
static void make_export_vm(const struct nook_dirs *d, const char *disk)
{
	struct vm_spec s;
	struct vm_paths p;
	json_t *j;
	char *text;
	int fd;

	fd = open(disk, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	vm_spec_init(&s);
	s.name = xstrdup("ex");
	s.accel = xstrdup("tcg");
	s.image.ref = xstrdup(disk);
	s.image.disk = xstrdup(disk);
	s.image.format = xstrdup("raw");
	s.boot = xstrdup("disk");
	s.cpus = 1;
	s.memory = 256ULL << 20;
	s.instance_id = xstrdup("iid-ex");
	s.nics = xmalloc(sizeof(*s.nics));
	s.nnics = 1;
	vm_nic_user(&s.nics[0], "02:6e:01:02:03:05", NULL, 0);
	assert_int_equal(vm_paths_init(&p, d, "ex"), 0);
	assert_int_equal(mkdir_p(p.dir, 0700), 0);
	j = vm_spec_to_json(&s);
	text = json_dumps(j, 0);
	assert_int_equal(write_file_atomic(p.json, text, strlen(text), 0600),
			 0);
	free(text);
	json_decref(j);
	vm_spec_free(&s);
	vm_paths_free(&p);
}

/* export -o out, where race_at appears meanwhile: it fails, saying want */
static void export_raced(const struct nook_dirs *d, const char *out,
			 const char *want)
{
	struct vm_export_opts o;
	char *err;
	int rc;

	memset(&o, 0, sizeof(o));
	o.outdir = out;
	o.virt_type = "qemu";
	o.uplink = "default";
	stderr_begin();
	rc = vm_export_libvirt(d, "ex", &o);
	err = stderr_end();
	race_at = NULL;
	if (rc != -1 || !strstr(err, want))
		fail_msg("export -o %s: %d, wanted: %s\ngot: %s", out, rc,
			 want, err);
	free(err);
}

/* A directory of -o DIR's that another makes between nook's look and
 * its mkdir is one that was there: it gets the checks an -o DIR there
 * before gets, and is never removed as one nook made. */
static void test_export_outdir_race(void **state)
{
	char *top = make_tmpdir(), *disk = xasprintf("%s/disk.img", top);
	char *data = xasprintf("%s/data", top), *run = xasprintf("%s/run", top);
	struct nook_dirs d = { data, run, NULL, NULL };
	char *out = xasprintf("%s/o1", top);
	char *mid = xasprintf("%s/o2/a", top), *deep = xasprintf("%s/b", mid);

	(void)state;
	make_export_vm(&d, disk);
	/* DIR itself, writable by anyone: refused, and left where it is */
	race_at = out;
	race_mode = 0777;
	export_raced(&d, out, "writable by anyone");
	assert_int_equal(access(out, F_OK), 0);
	/* one on the way to it, where anyone may swap DIR */
	race_at = mid;
	export_raced(&d, deep, "another user could swap");
	assert_int_equal(access(mid, F_OK), 0);
	assert_int_equal(access(deep, F_OK), -1);
	/* DIR, ours and private (another export's): taken, and never
	 * removed as one made (the export fails later: the VM has no disk) */
	free(out);
	out = xasprintf("%s/o4/in", top);
	race_at = out;
	race_mode = 0700;
	export_raced(&d, out, "flattening ex's disk");
	assert_int_equal(access(out, F_OK), 0);
	if (geteuid() == 0) {
		/* DIR, private but another user's */
		free(out);
		out = xasprintf("%s/o3", top);
		race_at = out;
		race_uid = 65534;
		export_raced(&d, out, "someone else's");
		race_uid = (uid_t)-1;
	}
	remove_tree(top);
	free(top);
	free(disk);
	free(data);
	free(run);
	free(out);
	free(mid);
	free(deep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_cluster_names),
		cmocka_unit_test(test_cpuinfo),
		cmocka_unit_test(test_host_mem),
		cmocka_unit_test(test_accel_decide),
		cmocka_unit_test(test_cmdline_merge),
		cmocka_unit_test(test_kernel_args),
		cmocka_unit_test(test_qemu_argv),
		cmocka_unit_test(test_qemu_argv_two_nics),
		cmocka_unit_test(test_qemu_argv_node),
		cmocka_unit_test(test_boot_pieces),
		cmocka_unit_test(test_boot_prepare),
		cmocka_unit_test(test_boot_bomb),
		cmocka_unit_test(test_paths_socket_limit),
		cmocka_unit_test(test_state_decide),
		cmocka_unit_test(test_state_machine),
		cmocka_unit_test(test_machine_alias),
		cmocka_unit_test(test_qemu_version),
		cmocka_unit_test(test_argv_hash),
		cmocka_unit_test(test_save_fits),
		cmocka_unit_test(test_snapshot_tags),
		cmocka_unit_test(test_snapshots_parse),
		cmocka_unit_test(test_stale_pidfile),
		cmocka_unit_test(test_panic_line),
		cmocka_unit_test(test_console_panicked),
		cmocka_unit_test(test_sshd_said),
		cmocka_unit_test(test_console_sshd_failed),
		cmocka_unit_test(test_sshd_wait_ms),
		cmocka_unit_test(test_sched_boot),
		cmocka_unit_test(test_spec_json),
		cmocka_unit_test(test_libvirt_xml),
		cmocka_unit_test(test_export_outdir_race),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

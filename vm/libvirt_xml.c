/*
 * libvirt's XML of a VM being exported and of a cluster's network: pure
 * functions of the spec and of where the pieces are on the target (the
 * files and virsh are vm/export.c's). What cannot be said in libvirt XML
 * (a control character, a -cpu property that is no CPU feature) is
 * refused, so that it is refused before anything is made.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int vm_xml_escape(const char *s, struct buf *out)
{
	int ret = 0;

	for (; s && *s; s++) {
		if ((unsigned char)*s >= 0x80) {
			int whole;
			size_t n = utf8_len((const unsigned char *)s, SIZE_MAX,
					    &whole);

			/* an XML document is UTF-8: libvirt's parser stops
			 * at a byte that is not */
			if (whole > 0)
				buf_add(out, s, n);
			else
				ret = -1;
			s += n - 1;
			continue;
		}
		switch (*s) {
		case '&': buf_adds(out, "&amp;"); break;
		case '<': buf_adds(out, "&lt;"); break;
		case '>': buf_adds(out, "&gt;"); break;
		case '"': buf_adds(out, "&quot;"); break;
		case '\'': buf_adds(out, "&apos;"); break;
		/* as references: a parser turns them raw into spaces */
		case '\n': buf_adds(out, "&#10;"); break;
		case '\r': buf_adds(out, "&#13;"); break;
		case '\t': buf_adds(out, "&#9;"); break;
		default:
			/* XML 1.0 has no other C0 control character, not
			 * even as a reference */
			if ((unsigned char)*s < 0x20 || *s == 0x7f)
				ret = -1;
			else
				buf_add(out, s, 1);
		}
	}
	return ret;
}

/* The XML being made, and the first field that cannot be said in it
 * (its name, and a copy of its value: some are made for the XML alone,
 * and freed before the XML is done). */
struct xml {
	struct buf *b;
	const char *bad;
	char *bad_value;
};

static void text(struct xml *x, const char *what, const char *s)
{
	if (vm_xml_escape(s, x->b) < 0 && !x->bad) {
		x->bad = what;
		x->bad_value = xstrdup(s);
	}
}

/* Append "<tag>text</tag>\n" at indent, text escaped. */
static void elem(struct xml *x, int indent, const char *tag, const char *s)
{
	buf_addf(x->b, "%*s<%s>", indent, "", tag);
	text(x, tag, s);
	buf_addf(x->b, "</%s>\n", tag);
}

/* Append " name='value'" with value escaped. */
static void attr(struct xml *x, const char *name, const char *value)
{
	buf_addf(x->b, " %s='", name);
	text(x, name, value);
	buf_adds(x->b, "'");
}

/* On the root bus as nook's QEMU has them (VM_PCI_FIRST_SLOT): the same
 * slots keep the guest's interface names (cloud-init's first network
 * config matched them) and its vda. */
static void pci_slot(struct xml *x, int slot)
{
	buf_addf(x->b, "      <address type='pci' domain='0x0000' bus='0x00' "
		 "slot='0x%02x' function='0x0'/>\n", slot);
}

/* One FEAT, +FEAT, -FEAT or FEAT=on|off|true|false of -cpu as a libvirt
 * <feature>; -1 for a property (level=13, model-id=...) or a Hyper-V
 * enlightenment, which are no CPU features. */
static int cpu_feature(struct xml *x, const char *f, size_t len)
{
	size_t klen = strcspn(f, "=");
	int off = 0;
	char *feat;

	if (klen > len)
		klen = len;

	if (klen < len) {
		const char *v = f + klen + 1;
		size_t vlen = len - klen - 1;

		if ((vlen == 3 && !strncmp(v, "off", 3)) ||
		    (vlen == 5 && !strncmp(v, "false", 5)))
			off = 1;
		else if (!(vlen == 2 && !strncmp(v, "on", 2)) &&
			 !(vlen == 4 && !strncmp(v, "true", 4)))
			return -1;
	} else if (*f == '+' || *f == '-') {
		/* QEMU's older +feat / -feat */
		off = *f == '-';
		f++;
		klen--;
	}
	if (!klen || !strncmp(f, "hv-", 3) || !strncmp(f, "hv_", 3))
		return -1;
	feat = xstrndup(f, klen);
	buf_addf(x->b, "    <feature policy='%s'", off ? "disable" : "require");
	attr(x, "name", feat);
	buf_adds(x->b, "/>\n");
	free(feat);
	return 0;
}

/* -cpu MODEL[,FEAT...] as libvirt's <cpu>: host and max keep their
 * features too. */
static int cpu_xml(struct xml *x, const char *vm, const char *model)
{
	size_t n = strcspn(model, ",");
	char *name = xstrndup(model, n);
	const char *f = model[n] ? model + n + 1 : NULL;
	int host = !strcmp(name, "host"), max = !strcmp(name, "max");

	if (host || max)
		buf_addf(x->b, "  <cpu mode='%s' check='none'>\n",
			 host ? "host-passthrough" : "maximum");
	else
		buf_adds(x->b, "  <cpu mode='custom' match='exact' "
			 "check='none'>\n");
	if (!host && !max)
		elem(x, 4, "model", name);
	free(name);
	while (f && *f) {
		size_t len = strcspn(f, ",");

		if (len && cpu_feature(x, f, len) < 0)
			return errorf("VM %s's CPU '%s': '%.*s' is not a CPU "
				      "feature libvirt's <cpu> can take (only "
				      "FEAT, +FEAT, -FEAT, FEAT=on|off); "
				      "nothing was exported", vm, model,
				      (int)len, f);
		f += len;
		if (*f)
			f++;
	}
	buf_adds(x->b, "  </cpu>\n");
	return 0;
}

static void disk_xml(struct xml *x, const char *path, const char *format,
		     const char *dev, int readonly, int slot)
{
	buf_adds(x->b, "    <disk type='file' device='disk'>\n");
	buf_addf(x->b, "      <driver name='qemu' type='%s'%s/>\n", format,
		 readonly ? "" : " discard='unmap'");
	buf_adds(x->b, "      <source");
	attr(x, "file", path);
	buf_adds(x->b, "/>\n");
	buf_addf(x->b, "      <target dev='%s' bus='virtio'/>\n", dev);
	if (readonly)
		buf_adds(x->b, "      <readonly/>\n");
	pci_slot(x, slot);
	buf_adds(x->b, "    </disk>\n");
}

static void nic_xml(struct xml *x, const struct vm_nic *nic,
		    const char *network, int slot)
{
	buf_addf(x->b, "    <interface type='%s'>\n", network ? "network" :
		 "user");
	buf_adds(x->b, "      <mac");
	attr(x, "address", nic->mac);
	buf_adds(x->b, "/>\n");
	if (network) {
		buf_adds(x->b, "      <source");
		attr(x, "network", network);
		buf_adds(x->b, "/>\n");
	}
	buf_adds(x->b, "      <model type='virtio'/>\n");
	/* no iPXE option ROM, as nook's romfile= */
	buf_adds(x->b, "      <rom enabled='no'/>\n");
	pci_slot(x, slot);
	buf_adds(x->b, "    </interface>\n");
}

/* <os>: the machine, and disk boot or the direct boot's kernel. */
static void os_xml(struct xml *x, const struct vm_spec *s,
		   const struct vm_lv_domain *t)
{
	enum vm_accel accel = strcmp(t->type, "kvm") ? VM_ACCEL_TCG :
			      VM_ACCEL_KVM;

	buf_adds(x->b, "  <os>\n    <type arch='x86_64'");
	attr(x, "machine", t->machine);
	buf_adds(x->b, ">hvm</type>\n");
	if (!strcmp(s->boot, "direct")) {
		struct buf cmdline = BUF_INIT;

		vm_kernel_args(s, accel, &cmdline);
		elem(x, 4, "kernel", t->kernel);
		if (t->initrd)
			elem(x, 4, "initrd", t->initrd);
		elem(x, 4, "cmdline", cmdline.p);
		buf_free(&cmdline);
	} else {
		buf_adds(x->b, "    <boot dev='hd'/>\n");
	}
	buf_adds(x->b, "  </os>\n");
}

static void devices_xml(struct xml *x, const struct vm_spec *s,
			const struct vm_lv_domain *t)
{
	int slot = VM_PCI_FIRST_SLOT;

	buf_adds(x->b, "  <devices>\n");
	for (size_t i = 0; i < s->nnics; i++)
		nic_xml(x, &s->nics[i], s->nics[i].kind == VM_NIC_CLUSTER ?
			s->cluster : t->uplink, slot++);
	buf_adds(x->b, "    <rng model='virtio'>\n"
		 "      <backend model='random'>/dev/urandom</backend>\n");
	pci_slot(x, slot++);
	buf_adds(x->b, "    </rng>\n");
	disk_xml(x, t->disk, "qcow2", "vda", 0, slot++);
	disk_xml(x, t->seed, "raw", "vdb", 1, slot++);
	buf_adds(x->b, "    <serial type='pty'>\n      <log");
	attr(x, "file", t->log);
	buf_adds(x->b, " append='on'/>\n"
		 "      <target port='0'/>\n"
		 "    </serial>\n"
		 "    <console type='pty'>\n"
		 "      <target type='serial' port='0'/>\n"
		 "    </console>\n"
		 "    <controller type='usb' model='none'/>\n"
		 "    <memballoon model='virtio' freePageReporting='on'>\n");
	pci_slot(x, slot++);
	buf_adds(x->b, "    </memballoon>\n"
		 "  </devices>\n");
}

int vm_libvirt_domain_xml(const struct vm_spec *s,
			  const struct vm_lv_domain *t, struct buf *out)
{
	struct xml x = { out, NULL, NULL };
	enum vm_accel accel = strcmp(t->type, "kvm") ? VM_ACCEL_TCG :
			      VM_ACCEL_KVM;
	int ret = 0;

	buf_addf(out, "<domain type='%s'>\n", t->type);
	elem(&x, 2, "name", s->name);
	buf_adds(out, "  <description>exported by nook from ");
	text(&x, "name", s->name);
	if (s->instance_id) {
		buf_adds(out, " (instance-id ");
		text(&x, "instance-id", s->instance_id);
		buf_adds(out, ")");
	}
	buf_adds(out, "</description>\n");
	buf_addf(out, "  <memory unit='KiB'>%llu</memory>\n",
		 (unsigned long long)(s->memory >> 10));
	buf_addf(out, "  <vcpu placement='static'>%d</vcpu>\n", s->cpus);
	os_xml(&x, s, t);
	buf_adds(out, "  <features>\n    <acpi/>\n    <apic/>\n  </features>\n");
	if (cpu_xml(&x, s->name, vm_cpu_model(s, accel)) < 0) {
		free(x.bad_value);
		return -1;
	}
	buf_adds(out, "  <clock offset='utc'/>\n"
		 "  <on_poweroff>destroy</on_poweroff>\n"
		 "  <on_reboot>restart</on_reboot>\n"
		 "  <on_crash>destroy</on_crash>\n");
	devices_xml(&x, s, t);
	buf_adds(out, "</domain>\n");
	if (x.bad)
		ret = errorf("VM %s: its %s '%s' holds a control character or "
			     "a byte that is not UTF-8, which libvirt's XML "
			     "cannot carry", s->name, x.bad, x.bad_value);
	free(x.bad_value);
	return ret;
}

int vm_libvirt_network_xml(const char *name, const char *subnet,
			   struct buf *out)
{
	struct xml x = { out, NULL, NULL };

	/* Isolated (no <forward>) and without an <ip>: the host takes no
	 * address on it and runs no DHCP or DNS there, as nook's switch;
	 * the nodes' seeds give them their static addresses. No name in
	 * the comment: "--" may not be in one, and a name may hold it. */
	buf_adds(out, "<network>\n");
	elem(&x, 2, "name", name);
	buf_adds(out, "  <!-- a nook cluster's network, subnet ");
	/* canonical A.B.C.D/P: no "--" */
	text(&x, "subnet", subnet);
	buf_adds(out, ": static addresses from the nodes' seeds -->\n"
		 "  <bridge stp='off' delay='0'/>\n"
		 "</network>\n");
	free(x.bad_value);
	if (x.bad)
		return errorf("cluster %s: its %s holds a control character "
			      "or a byte that is not UTF-8", name, x.bad);
	return 0;
}

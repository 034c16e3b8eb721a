/*
 * Forwards added to and removed from a VM, running or not. A running
 * QEMU changes them through its monitor (HMP hostfwd_add/hostfwd_remove
 * on the uplink, netdev net0); the record (the uplink's forwards in the
 * spec) keeps them for the next start.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "qmp.h"

/* the uplink's netdev id: NIC number 0 (vm/qemu.c) */
#define UPLINK_NETDEV "net0"

/* 1 when QEMU runs (its vCPUs may be paused): its monitor answers. */
static int qemu_up(struct vm *vm)
{
	enum vm_state st = vm_state_held(vm);

	return st == VM_RUNNING || st == VM_PAUSED;
}

/* hmp()'s failure when QEMU did not answer: the change may be made */
#define HMP_UNANSWERED -2

/* Run one HMP command line on vm's QEMU: 0; -1 when QEMU refused it, or
 * HMP_UNANSWERED; said unless mending (a look's mend, which says what
 * came of it, and waits 1 s at most: a 'stop --force' of a hung QEMU
 * takes the lock too). */
static int hmp(struct vm *vm, const char *line, const char *ok,
	       int mending)
{
	int ms = mending ? 1000 : 5000;
	struct buf out = BUF_INIT;
	struct qmp q;
	int rc = qmp_open(&q, vm->paths.qmp, ms);

	if (rc == 0)
		rc = qmp_hmp(&q, line, ok, ms, &out);
	if (rc < 0 && !mending)
		errorf("VM %s: %s", vm->name, qmp_error(&q));
	if (rc < 0 && !out.len)
		rc = HMP_UNANSWERED;
	qmp_close(&q);
	buf_free(&out);
	return rc;
}

static int hmp_add(struct vm *vm, const struct net_port *p, int mending)
{
	char *line = xasprintf("hostfwd_add " UPLINK_NETDEV " %s:%s:%d-:%d",
			       net_proto(p->udp), p->addr, p->host, p->guest);
	int rc = hmp(vm, line, NULL, mending);

	free(line);
	return rc;
}

/* QEMU says "host forwarding rule for ... removed" or "not found" */
static int hmp_remove(struct vm *vm, const struct net_port *p, int mending)
{
	char *line = xasprintf("hostfwd_remove " UPLINK_NETDEV " %s:%s:%d",
			       net_proto(p->udp), p->addr, p->host);
	int rc = hmp(vm, line, " removed", mending);

	free(line);
	return rc;
}

/* (none made, on a disk without room: the window is a few milliseconds,
 * not worth failing the command for) */
static void mark_begun(struct vm *vm, const char *op, const struct net_port *p)
{
	char *mark = vm_mark_path(vm, VM_MARK_PORT);
	struct buf b = BUF_INIT;

	buf_addf(&b, "%s ", op);
	net_port_format(p, &b);
	vm_write_quiet(mark, b.p);
	buf_free(&b);
	free(mark);
}

static void mark_done(struct vm *vm)
{
	char *mark = vm_mark_path(vm, VM_MARK_PORT);
	char *tmp = xasprintf("%s.tmp", mark);

	unlink(mark);
	/* vm_write_quiet()'s, of a command killed as it wrote the mark */
	unlink(tmp);
	free(tmp);
	free(mark);
}

/* The running forward from host/udp: its index in v (0 is ssh's), its
 * spec in *out; -1 when there is none. */
static int find_running(const struct strvec *v, int host, int udp,
			struct net_port *out)
{
	for (size_t i = 0; i < v->n; i++) {
		struct net_port p;

		if (net_port_parse(v->v[i], &p) == 0 && p.host == host &&
		    p.udp == udp) {
			*out = p;
			return (int)i;
		}
	}
	return -1;
}

/* The recorded forward from host/udp, or -1. */
static int find_spec(const struct vm_nic *up, int host, int udp)
{
	for (size_t i = 0; i < up->nports; i++)
		if (up->ports[i].host == host && up->ports[i].udp == udp)
			return (int)i;
	return -1;
}

/* A recorded forward with HOST 0 (picked at each start) that became the
 * running forward r, or -1. */
static int find_spec_picked(const struct vm_nic *up, const struct net_port *r)
{
	for (size_t i = 0; i < up->nports; i++) {
		const struct net_port *s = &up->ports[i];

		if (!s->host && s->guest == r->guest && s->udp == r->udp &&
		    !strcmp(s->addr, r->addr))
			return (int)i;
	}
	return -1;
}

/* The recorded forward that running forward r is, not one of used
 * (used[i] set when forward i is matched already): the same host port,
 * or one of HOST 0 that got r's port. -1 when none is. */
static int match_spec(const struct vm_nic *up, const struct net_port *r,
		      const char *used)
{
	for (size_t i = 0; i < up->nports; i++)
		if (!used[i] && up->ports[i].host == r->host &&
		    up->ports[i].udp == r->udp)
			return (int)i;
	for (size_t i = 0; i < up->nports; i++) {
		const struct net_port *s = &up->ports[i];

		if (!used[i] && !s->host && s->guest == r->guest &&
		    s->udp == r->udp && !strcmp(s->addr, r->addr))
			return (int)i;
	}
	return -1;
}

/* The running forwards are about to change: keep those on QEMU's
 * command line, once, for a resume (vm_uplink_recorded()). */
static void keep_launched(struct vm *vm)
{
	if (vm->launched.n)
		return;
	for (size_t i = 0; i < vm->ports.n; i++)
		strvec_push(&vm->launched, vm->ports.v[i]);
}

/* -1 saying so when host/udp is forwarded by vm already (running or
 * recorded, ssh's included). */
static int check_unused(struct vm *vm, int live, int host, int udp)
{
	struct net_port r;
	int i = live ? find_running(&vm->ports, host, udp, &r) : -1;

	if (i == 0 || (!udp && !live && host == vm->spec.ssh_port))
		return errorf("host port %d is VM %s's ssh forward; pick "
			      "another (or 0 for a free one)", host, vm->name);
	if (i > 0 || find_spec(&vm->spec.nics[0], host, udp) >= 0)
		return errorf("VM %s already forwards host port %d/%s; 'nook "
			      "port rm %s %d%s' removes it first", vm->name,
			      host, net_proto(udp), vm->name, host,
			      udp ? "/udp" : "");
	return 0;
}

/* Pick p's host port: free on its address, and none that vm forwards
 * already (running when live, or recorded, ssh's included). */
static int pick(struct vm *vm, int live, struct net_port *p)
{
	const struct vm_nic *up = &vm->spec.nics[0];
	struct net_port *f = xmalloc(sizeof(*f) *
				     (up->nports + 1 + vm->ports.n));
	size_t n = up->nports;
	int rc;

	memcpy(f, up->ports, sizeof(*f) * n);
	memset(&f[n], 0, sizeof(*f));
	f[n++].host = vm->spec.ssh_port;
	for (size_t i = 0; live && i < vm->ports.n; i++)
		if (net_port_parse(vm->ports.v[i], &f[n]) == 0)
			n++;
	rc = net_port_pick(p, f, n);
	free(f);
	return rc;
}

int vm_port_add(struct vm *vm, const struct net_port *want,
		struct net_port *made, int *live)
{
	struct net_port p = *want;
	struct buf b = BUF_INIT;
	struct vm_nic *up;
	int rc;

	/* the lock reads the record again: the spec is the one read now */
	if (vm_take_lock(vm, "port") < 0)
		return -1;
	up = &vm->spec.nics[0];
	*live = qemu_up(vm);
	if (p.host && check_unused(vm, *live, p.host, p.udp) < 0)
		return -1;
	if (p.host && net_port_check(p.addr, p.host, p.udp) < 0)
		return -1;
	if (!p.host && pick(vm, *live, &p) < 0)
		return -1;
	if (*live) {
		mark_begun(vm, "add", &p);
		rc = hmp_add(vm, &p, 0);
		if (rc < 0) {
			/* kept when QEMU did not answer: it may have made it */
			if (rc != HMP_UNANSWERED)
				mark_done(vm);
			return -1;
		}
	}
	up->ports = xrealloc(up->ports, sizeof(*up->ports) * (up->nports + 1));
	up->ports[up->nports++] = p;
	if (*live) {
		keep_launched(vm);
		net_port_format(&p, &b);
		strvec_push(&vm->ports, b.p);
		buf_free(&b);
	}
	if (vm_record_spec(vm) < 0) {
		/* undone; else the mark has the next look try again */
		if (*live && hmp_remove(vm, &p, 0) < 0)
			warnf("VM %s forwards host port %d for now",
			      vm->name, p.host);
		else
			mark_done(vm);
		return -1;
	}
	mark_done(vm);
	*made = p;
	return 0;
}

static void strvec_remove(struct strvec *v, size_t i)
{
	free(v->v[i]);
	memmove(&v->v[i], &v->v[i + 1], sizeof(*v->v) * (v->n - i));
	v->n--;
}

/* The recorded HOST 0 forward to guest/udp, and (*ri, r) the running
 * forward it became, if any; -1 having said so when there is none. */
static int find_host0(struct vm *vm, int guest, int udp, int live, int *ri,
		      struct net_port *r)
{
	const struct vm_nic *up = &vm->spec.nics[0];
	int si = -1;

	for (size_t i = 0; si < 0 && i < up->nports; i++)
		if (!up->ports[i].host && up->ports[i].guest == guest &&
		    up->ports[i].udp == udp)
			si = (int)i;
	/* one 'port add 0:GUEST' made has the port it picked, kept */
	for (size_t i = 0; si < 0 && i < up->nports; i++)
		if (up->ports[i].guest == guest && up->ports[i].udp == udp)
			return errorf("VM %s's forward to guest port %d/%s is "
				      "from host port %d, not a free one picked "
				      "at each start: 'nook port rm %s %d%s' "
				      "removes it", vm->name, guest,
				      net_proto(udp), up->ports[i].host,
				      vm->name, up->ports[i].host,
				      udp ? "/udp" : "");
	if (si < 0)
		return errorf("VM %s has no forward from HOST 0 to guest port "
			      "%d/%s; 'nook port list %s' shows its forwards",
			      vm->name, guest, net_proto(udp), vm->name);
	for (size_t i = 1; live && *ri < 0 && i < vm->ports.n; i++)
		if (net_port_parse(vm->ports.v[i], r) == 0 &&
		    find_spec_picked(up, r) == si)
			*ri = (int)i;
	return si;
}

int vm_port_remove(struct vm *vm, int host, int guest, int udp,
		   struct net_port *gone, int *live)
{
	struct vm_nic *up;
	struct net_port r;
	int ri = -1, si, ret;

	if (vm_take_lock(vm, "port") < 0)
		return -1;
	up = &vm->spec.nics[0];
	*live = qemu_up(vm);
	if (!host) {
		si = find_host0(vm, guest, udp, *live, &ri, &r);
		if (si < 0)
			return -1;
		goto remove;
	}
	if (*live)
		ri = find_running(&vm->ports, host, udp, &r);
	if (ri == 0)
		return errorf("host port %d is VM %s's ssh forward, which nook "
			      "needs; it cannot be removed", host, vm->name);
	si = find_spec(up, host, udp);
	if (si < 0 && ri > 0)
		si = find_spec_picked(up, &r);
	if (ri < 0 && si < 0)
		return errorf("VM %s has no forward from host port %d/%s; "
			      "'nook port list %s' shows its forwards",
			      vm->name, host, net_proto(udp), vm->name);
remove:
	if (ri > 0) {
		mark_begun(vm, "rm", &r);
		ret = hmp_remove(vm, &r, 0);
		if (ret < 0) {
			/* kept when QEMU did not answer: it may have done it */
			if (ret != HMP_UNANSWERED)
				mark_done(vm);
			return -1;
		}
	}
	*gone = ri > 0 ? r : up->ports[si];
	if (si >= 0) {
		memmove(&up->ports[si], &up->ports[si + 1],
			sizeof(*up->ports) * (up->nports - (size_t)si - 1));
		up->nports--;
	}
	if (ri > 0) {
		keep_launched(vm);
		strvec_remove(&vm->ports, (size_t)ri);
	}
	ret = vm_record_spec(vm);
	/* (a record that failed: QEMU no longer forwards a port the record
	 * still lists; the mark has the next look put it back) */
	if (ret == 0)
		mark_done(vm);
	return ret;
}

void vm_port_list(struct vm *vm, struct vm_forward **out, size_t *n)
{
	const struct vm_nic *up = &vm->spec.nics[0];
	struct vm_info info;
	struct vm_forward *f;
	char *used = xmalloc(up->nports + 1);
	size_t k = 0;

	vm_get_info(vm, &info);
	memset(used, 0, up->nports + 1);
	f = xmalloc(sizeof(*f) * (vm->ports.n + up->nports + 1));
	/* running: what QEMU forwards now (ssh's, the first, is not the
	 * user's), each matched with the record that brings it back */
	for (size_t i = 1; info.pid && i < vm->ports.n; i++) {
		struct net_port r;
		int s;

		if (net_port_parse(vm->ports.v[i], &r) < 0)
			continue;
		s = match_spec(up, &r, used);
		if (s >= 0)
			used[s] = 1;
		f[k].port = r;
		f[k].active = 1;
		f[k].kept = s >= 0;
		k++;
	}
	for (size_t i = 0; i < up->nports; i++) {
		if (used[i])
			continue;
		f[k].port = up->ports[i];
		f[k].active = 0;
		f[k].kept = 1;
		k++;
	}
	free(used);
	*out = f;
	*n = k;
}

void vm_port_reconcile(struct vm *vm)
{
	const struct vm_nic *up = &vm->spec.nics[0];
	char *used = xmalloc(up->nports + 1);
	struct buf b = BUF_INIT;
	int changed = 0;

	memset(used, 0, up->nports + 1);
	/* running, and no longer recorded: removed (ssh's, the first, stays) */
	for (size_t i = 1; i < vm->ports.n;) {
		struct net_port r;
		int s = -1;

		if (net_port_parse(vm->ports.v[i], &r) < 0) {
			i++;
			continue;
		}
		s = match_spec(up, &r, used);
		if (s >= 0)
			used[s] = 1;
		if (s >= 0 || hmp_remove(vm, &r, 0) < 0) {
			i++;
			continue;
		}
		keep_launched(vm);
		strvec_remove(&vm->ports, i);
		changed = 1;
	}
	/* recorded, and not running: added */
	for (size_t i = 0; i < up->nports; i++) {
		struct net_port p = up->ports[i];

		if (used[i] ||
		    (!p.host && pick(vm, 1, &p) < 0) ||
		    hmp_add(vm, &p, 0) < 0)
			continue;
		keep_launched(vm);
		buf_free(&b);
		net_port_format(&p, &b);
		strvec_push(&vm->ports, b.p);
		changed = 1;
	}
	if (changed && vm_record_spec(vm) < 0)
		warnf("VM %s: its record misses its forwards' changes",
		      vm->name);
	buf_free(&b);
	free(used);
}

void vm_port_mend(struct vm *vm)
{
	char *mark = vm_mark_path(vm, VM_MARK_PORT);
	struct buf b = BUF_INIT;
	struct net_port p, r;
	int add, ri, rc;

	if (read_file_quiet(mark, &b) < 0) {
		/* no mark: vm_write_quiet()'s temporary file of one, if any,
		 * is a command's killed as it wrote it */
		if (errno == ENOENT)
			mark_done(vm);
		goto out;
	}
	add = !strncmp(b.p, "add ", 4);
	/* QEMU gone, or the mark unreadable: nothing to put in step (the
	 * next start forwards what is recorded) */
	if (!qemu_up(vm) || (!add && strncmp(b.p, "rm ", 3)) ||
	    net_port_parse(b.p + (add ? 4 : 3), &p) < 0) {
		mark_done(vm);
		goto out;
	}
	ri = find_running(&vm->ports, p.host, p.udp, &r);
	/* (QEMU's answer to a remove may be "not found": the cut came
	 * before QEMU took it; one that does not answer is tried again by
	 * the next look) */
	if (add && ri < 0) {
		/* QEMU may forward a port the record does not: it goes */
		if (hmp_remove(vm, &p, 1) == HMP_UNANSWERED)
			goto out;
		warnf("VM %s: a 'nook port add' of it was cut off before it "
		      "was recorded; host port %d is not forwarded ('nook "
		      "port add' again forwards it)", vm->name, p.host);
	} else if (!add && ri > 0) {
		/* QEMU may have dropped a forward the record keeps: back */
		if (hmp_remove(vm, &r, 1) == HMP_UNANSWERED)
			goto out;
		rc = hmp_add(vm, &r, 1);
		if (rc == HMP_UNANSWERED)
			goto out;
		if (rc == 0) {
			warnf("VM %s: a 'nook port rm' of it was cut off "
			      "before it was recorded; host port %d is "
			      "forwarded still, as recorded ('nook port rm' "
			      "again removes it)", vm->name, r.host);
		} else {
			keep_launched(vm);
			strvec_remove(&vm->ports, (size_t)ri);
			if (vm_record_spec(vm) < 0)
				goto out;
			warnf("VM %s: a 'nook port rm' of it was cut off "
			      "before it was recorded; host port %d is not "
			      "forwarded now (the next start forwards it "
			      "again, as recorded)", vm->name, r.host);
		}
	}
	mark_done(vm);
out:
	buf_free(&b);
	free(mark);
}

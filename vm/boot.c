/*
 * Direct boot without the guest's own decompression.
 *
 * Under TCG every instruction is emulated, and a distribution kernel
 * spends its first seconds decompressing itself: ~4 s for Debian's xz
 * bzImage here (its cloud kernel's is lz4), then ~2 s for the zstd
 * initramfs, before init runs. The host does the same work in a third of
 * a second. So nook unpacks both once, keeps them in DATA/cache/boot, and
 * boots the ELF vmlinux through its PVH entry point (QEMU loads an ELF
 * kernel with a PVH note directly, no decompressor, no real-mode setup).
 * With a kernel that has no PVH note, a compression we do not read, or
 * anything odd, the original files are used: this is a speed-up, never a
 * reason for a start to fail.
 *
 * The firmware: for a direct boot QEMU's default SeaBIOS only hands over
 * to the kernel, after ~2 s of POST under TCG. qboot (shipped with QEMU)
 * does the hand-over alone, with the same ACPI tables from QEMU.
 */
#include <archive.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static uint32_t le32(const unsigned char *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

int vm_bzimage_payload(const unsigned char *p, size_t n, size_t *off,
		       size_t *len)
{
	size_t setup;

	/* The x86 boot protocol: "HdrS" at 0x202, version at 0x206;
	 * payload_offset/length (from 2.08) at 0x248/0x24c, counted from
	 * the protected-mode code after the setup sectors. */
	if (n < 0x250 || memcmp(p + 0x202, "HdrS", 4) ||
	    (p[0x206] | p[0x207] << 8) < 0x208)
		return -1;
	setup = (size_t)(p[0x1f1] ? p[0x1f1] : 4) + 1;
	*off = setup * 512 + le32(p + 0x248);
	*len = le32(p + 0x24c);
	if (*len == 0 || *off > n || *len > n - *off)
		return -1;
	return 0;
}

int vm_elf_has_pvh(const unsigned char *p, size_t n)
{
	uint64_t phoff;
	unsigned phnum, phentsize;

	/* a 64-bit little-endian x86-64 ELF with a PT_NOTE holding Xen's
	 * XEN_ELFNOTE_PHYS32_ENTRY (18): the PVH entry point */
	if (n < 64 || memcmp(p, "\177ELF", 4) || p[4] != 2 || p[5] != 1 ||
	    (p[18] | p[19] << 8) != 62)
		return 0;
	phoff = le64(p + 32);
	phentsize = p[54] | p[55] << 8;
	phnum = p[56] | p[57] << 8;
	if (phentsize < 56 || phoff > n || (uint64_t)phnum * phentsize > n - phoff)
		return 0;
	for (unsigned i = 0; i < phnum; i++) {
		const unsigned char *ph = p + phoff + (uint64_t)i * phentsize;
		uint64_t o = le64(ph + 8), sz = le64(ph + 32);

		if (le32(ph) != 4 /* PT_NOTE */ || o > n || sz > n - o)
			continue;
		for (uint64_t q = o; q + 12 <= o + sz;) {
			uint32_t nsz = le32(p + q), dsz = le32(p + q + 4);
			uint64_t next = q + 12 + ((nsz + 3ull) & ~3ull) +
					((dsz + 3ull) & ~3ull);

			if (next > o + sz)
				break;
			if (le32(p + q + 8) == 18 && nsz == 4 &&
			    !memcmp(p + q + 12, "Xen", 4))
				return 1;
			q = next;
		}
	}
	return 0;
}

static int hexval(const unsigned char *s, size_t n, uint32_t *v)
{
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		int c = s[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			d = (c | 0x20) - 'a' + 10;
		else
			return -1;
		*v = *v << 4 | (uint32_t)d;
	}
	return 0;
}

size_t vm_cpio_prefix(const unsigned char *p, size_t n)
{
	size_t pos = 0, end = 0;

	/* uncompressed "newc" archives (early microcode, say), each ending
	 * in TRAILER!!!, with zero padding between them */
	for (;;) {
		uint32_t fsz, nsz;

		while (pos < n && p[pos] == 0)
			pos++;
		if (pos + 110 > n || memcmp(p + pos, "07070", 5) ||
		    (p[pos + 5] != '1' && p[pos + 5] != '2') ||
		    hexval(p + pos + 54, 8, &fsz) < 0 ||
		    hexval(p + pos + 94, 8, &nsz) < 0)
			return end;
		if (nsz > n - pos - 110)
			return end;
		{
			int trailer = nsz == 11 &&
				      !memcmp(p + pos + 110, "TRAILER!!!", 11);
			size_t data = (pos + 110 + nsz + 3) & ~(size_t)3;

			if (data > n || fsz > n - data)
				return end;
			pos = (data + fsz + 3) & ~(size_t)3;
			if (pos > n)
				pos = n;
			if (trailer) {
				while (pos < n && p[pos] == 0)
					pos++;
				end = pos;
			}
		}
	}
}

/* Decompress one gzip, xz, zstd or lz4 stream with libarchive's raw reader,
 * into at most max bytes of out in all. 1 done, 0 not compressed in a way
 * we read, -1 broken, followed by bytes that are no stream or larger than
 * max (out then has what came before): a few KiB of zstd can claim
 * gigabytes. */
static int unpack(const void *p, size_t n, size_t max, struct buf *out)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	char chunk[65536];
	la_ssize_t got;
	int ret = -1;

	archive_read_support_filter_gzip(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_lz4(a);
	archive_read_support_format_raw(a);
	if (archive_read_open_memory(a, p, n) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK)
		goto out;
	if (archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE) {
		ret = 0;
		goto out;
	}
	while ((got = archive_read_data(a, chunk, sizeof(chunk))) > 0) {
		if ((size_t)got > max || out->len > max - (size_t)got)
			goto out;
		buf_add(out, chunk, (size_t)got);
	}
	ret = got == 0 ? 1 : -1;
out:
	archive_read_free(a);
	return ret;
}

/* DATA/cache/boot/KEY.SUFFIX: KEY from the file's identity and age, so a
 * replaced file is unpacked again. */
static char *cache_path(const char *cache, const char *file,
			const struct stat *st, const char *suffix)
{
	struct sha256 s;
	char hex[65];
	char *id = xasprintf("%s\n%llu\n%llu\n%lld.%09ld\n", file,
			     (unsigned long long)st->st_ino,
			     (unsigned long long)st->st_size,
			     (long long)st->st_mtim.tv_sec,
			     st->st_mtim.tv_nsec);

	/* a few bytes: the built-in code, which cannot fail, rather than
	 * loading libcrypto for them */
	sha256_init_builtin(&s);
	sha256_update(&s, id, strlen(id));
	if (sha256_hex(&s, hex) < 0)
		hex[0] = '\0';
	free(id);
	return xasprintf("%s/%.32s.%s", cache, hex, suffix);
}

/* The nodes of a cluster start at once, and on a first start each would
 * unpack the same files (~2 CPU-s each, on cores their guests need): one
 * unpacks under DATA/cache/boot/.lock, the others wait for it and find
 * its files. Bounded: past UNPACK_WAIT_MS each goes on by itself. */
#define UNPACK_WAIT_MS 30000

static int unpack_lock(const char *cache)
{
	char *path = xasprintf("%s/.lock", cache);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd >= 0 && flock_wait(fd, UNPACK_WAIT_MS) < 0) {
		close(fd);
		fd = -1;
	}
	free(path);
	return fd;
}

/* A file that could not be unpacked within max bytes (a kernel without
 * a PVH note, an initrd too large) leaves PATH.none holding max, so that
 * the nodes waiting on the lock do not each try again in turn: 1 when
 * one says it failed at max or more. */
static int failed_before(const char *path, size_t max)
{
	char *none = xasprintf("%s.none", path);
	struct buf b = BUF_INIT;
	unsigned long long at;
	int ret = read_file_quiet(none, &b) == 0 &&
		  sscanf(b.p, "%llu", &at) == 1 && at >= max;

	buf_free(&b);
	free(none);
	return ret;
}

static void note_failed(const char *path, size_t max)
{
	char *none = xasprintf("%s.none", path);
	char *at = xasprintf("%zu\n", max);

	write_file_atomic(none, at, strlen(at), 0644);
	free(at);
	free(none);
}

static char *cached(const char *cache, const char *file, const char *suffix,
		    size_t max,
		    int (*make)(const struct buf *in, size_t max, struct buf *out))
{
	struct buf in = BUF_INIT, out = BUF_INIT;
	struct stat st;
	char *path = NULL, *ret = NULL;
	int lock = -1;

	if (stat(file, &st) < 0)
		return NULL;
	path = cache_path(cache, file, &st, suffix);
	if (access(path, R_OK) == 0)
		goto found;
	if (mkdir_p(cache, 0700) < 0)
		goto out;
	lock = unpack_lock(cache);
	/* looked at again: the holder may have made it, or failed to */
	if (access(path, R_OK) == 0)
		goto found;
	if (failed_before(path, max) || read_file_quiet(file, &in) < 0)
		goto out;
	if (make(&in, max, &out) <= 0) {
		note_failed(path, max);
		goto out;
	}
	if (write_file_atomic(path, out.p, out.len, 0644) < 0)
		goto out;
found:
	ret = path;
	path = NULL;
out:
	if (lock >= 0)
		close(lock);
	free(path);
	buf_free(&in);
	buf_free(&out);
	return ret;
}

int vm_boot_unpack_kernel(const struct buf *in, size_t max, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)in->p;
	size_t off, len;

	uint32_t size;

	/* the payload ends in the unpacked size (le32): appended after an
	 * xz, zstd or lz4 stream, the last field of a gzip one */
	if (vm_bzimage_payload(p, in->len, &off, &len) < 0 || len < 4)
		return 0;
	size = le32(p + off + len - 4);
	if (size > max)
		return 0;
	if (unpack(p + off, len - 4, size, out) != 1 || out->len != size) {
		out->len = 0;
		if (unpack(p + off, len, size, out) != 1 || out->len != size)
			return 0;
	}
	return vm_elf_has_pvh((const unsigned char *)out->p, out->len);
}

int vm_boot_unpack_initrd(const struct buf *in, size_t max, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)in->p;
	size_t pre = vm_cpio_prefix(p, in->len);

	if (pre == in->len)
		return 0; /* not compressed at all: use it as it is */
	if (pre > max)
		return 0;
	buf_add(out, p, pre);
	return unpack(p + pre, in->len - pre, max, out);
}

void vm_boot_cached(const char *cache, const char *file, struct strvec *out)
{
	static const char *const suffixes[] = { "vmlinux", "cpio" };
	struct stat st;

	if (!file || stat(file, &st) < 0)
		return;
	for (size_t i = 0; i < 2; i++) {
		char *path = cache_path(cache, file, &st, suffixes[i]);
		char *none = xasprintf("%s.none", path);

		strvec_push(out, path);
		strvec_push(out, none);
		free(none);
		free(path);
	}
}

/* qboot.rom beside QEMU's other firmware: PREFIX/share/qemu for
 * PREFIX/bin/qemu-system-x86_64. */
static char *find_qboot(const char *qemu)
{
	char *prog = find_program(qemu), *real, *slash, *path = NULL;

	if (!prog)
		return NULL;
	real = realpath(prog, NULL);
	free(prog);
	slash = real ? strrchr(real, '/') : NULL;
	if (slash) {
		*slash = 0;
		path = xasprintf("%s/../share/qemu/qboot.rom", real);
		if (access(path, R_OK) < 0) {
			free(path);
			path = NULL;
		}
	}
	free(real);
	return path;
}

void vm_boot_prepare(const char *cache, const char *qemu, const char *kernel,
		     const char *initrd, uint64_t memory, struct vm_boot *b)
{
	/* nothing is unpacked past what the guest could hold: a kernel
	 * larger than its memory, an initrd above a quarter of it */
	size_t kmax = memory < SIZE_MAX ? (size_t)memory : SIZE_MAX;
	size_t imax = kmax / 4;
	struct stat st;

	memset(b, 0, sizeof(*b));
	b->kernel = cached(cache, kernel, "vmlinux", kmax,
			   vm_boot_unpack_kernel);
	/* the guest holds the unpacked initrd and what it unpacks to at
	 * once: only where that leaves plenty of the VM's memory */
	if (initrd) {
		b->initrd = cached(cache, initrd, "cpio", imax,
				   vm_boot_unpack_initrd);
		if (b->initrd && (stat(b->initrd, &st) < 0 ||
				  (uint64_t)st.st_size > memory / 4)) {
			free(b->initrd);
			b->initrd = NULL;
		}
	}
	b->bios = find_qboot(qemu);
}

void vm_boot_free(struct vm_boot *b)
{
	free(b->kernel);
	free(b->initrd);
	free(b->bios);
	memset(b, 0, sizeof(*b));
}

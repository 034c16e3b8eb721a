/*
 * SHA-256 and SHA-512 (FIPS 180-4): image digests and download checksums.
 *
 * OpenSSL's libcrypto does the work (SHA-NI and AVX2: about five times the
 * built-in code's speed over a gigabyte disk). Like libcurl in
 * images/pull.c it is loaded with dlopen() on the first hash, so commands
 * that hash nothing never pay for loading it. nook's own code below stays
 * as the fallback when libcrypto.so.3 cannot be loaded (said once, as a
 * warning): hashing then still cannot fail, so sha*_init/update need no
 * error path in any caller.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

/* The few calls of OpenSSL 3's EVP interface nook makes, declared here
 * (with the opaque types of openssl/types.h) so that building needs no
 * libssl-dev: the ABI is libcrypto.so.3's. */
typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_md_st EVP_MD;
typedef struct engine_st ENGINE;

struct crypto_api {
	int tried;
	void *lib;
	EVP_MD_CTX *(*ctx_new)(void);
	void (*ctx_free)(EVP_MD_CTX *);
	const EVP_MD *(*sha256)(void);
	const EVP_MD *(*sha512)(void);
	int (*init)(EVP_MD_CTX *, const EVP_MD *, ENGINE *);
	int (*update)(EVP_MD_CTX *, const void *, size_t);
	int (*final)(EVP_MD_CTX *, unsigned char *, unsigned int *);
};

/* The process's one libcrypto, loaded once and never unloaded (OpenSSL
 * registers exit handlers): state of the process, as the dynamic loader's
 * own is, not of any caller. */
static struct crypto_api crypto;

static int crypto_syms(struct crypto_api *c)
{
	*(void **)&c->ctx_new = dlsym(c->lib, "EVP_MD_CTX_new");
	*(void **)&c->ctx_free = dlsym(c->lib, "EVP_MD_CTX_free");
	*(void **)&c->sha256 = dlsym(c->lib, "EVP_sha256");
	*(void **)&c->sha512 = dlsym(c->lib, "EVP_sha512");
	*(void **)&c->init = dlsym(c->lib, "EVP_DigestInit_ex");
	*(void **)&c->update = dlsym(c->lib, "EVP_DigestUpdate");
	*(void **)&c->final = dlsym(c->lib, "EVP_DigestFinal_ex");
	return c->ctx_new && c->ctx_free && c->sha256 && c->sha512 &&
	       c->init && c->update && c->final ? 0 : -1;
}

/* libcrypto, loaded on the first call; NULL when it cannot be. */
static const struct crypto_api *crypto_get(void)
{
	if (crypto.tried)
		return crypto.lib ? &crypto : NULL;
	crypto.tried = 1;
	crypto.lib = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
	if (!crypto.lib) {
		warnf("%s: hashing with nook's slower built-in SHA code "
		      "(install the libssl3 package)", dlerror());
		return NULL;
	}
	if (crypto_syms(&crypto) < 0) {
		warnf("libcrypto.so.3 lacks the EVP digest calls: hashing "
		      "with nook's slower built-in SHA code");
		dlclose(crypto.lib);
		crypto.lib = NULL;
		return NULL;
	}
	return &crypto;
}

/* A libcrypto context for SHA-<bits>, or NULL: the built-in code then. */
static EVP_MD_CTX *evp_start(int bits)
{
	const struct crypto_api *c = crypto_get();
	EVP_MD_CTX *ctx;

	if (!c)
		return NULL;
	ctx = c->ctx_new();
	if (ctx && c->init(ctx, bits == 256 ? c->sha256() : c->sha512(),
			   NULL) == 1)
		return ctx;
	c->ctx_free(ctx);
	return NULL;
}

/* Finish *ctx into md (n bytes) and free it. 0, or -1 having said why. */
static int evp_finish(void **ctx, int failed, unsigned char *md, size_t n)
{
	unsigned int len = 0;
	int ok = !failed && crypto.final(*ctx, md, &len) == 1 && len == n;

	crypto.ctx_free(*ctx);
	*ctx = NULL;
	return ok ? 0 : errorf("libcrypto failed to compute a SHA-%zu",
			       n * 8);
}

static void to_hex(const unsigned char *md, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[2 * n] = '\0';
}

/* nook's own SHA-256: the fallback. */
static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void block256(uint32_t h[8], const unsigned char *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, k;

	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^
			      (w[i - 15] >> 3);
		uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^
			      (w[i - 2] >> 10);

		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = h[0]; b = h[1]; c = h[2]; d = h[3];
	e = h[4]; f = h[5]; g = h[6]; k = h[7];
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) +
			      ((e & f) ^ (~e & g)) + K[i] + w[i];
		uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) +
			      ((a & b) ^ (a & c) ^ (b & c));

		k = g; g = f; f = e; e = d + t1;
		d = c; c = b; b = a; a = t1 + t2;
	}
	h[0] += a; h[1] += b; h[2] += c; h[3] += d;
	h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

static void b256_update(struct sha256 *s, const void *data, size_t n)
{
	const unsigned char *p = data;

	s->len += n;
	if (s->fill) {
		size_t take = 64 - s->fill < n ? 64 - s->fill : n;

		memcpy(s->buf + s->fill, p, take);
		s->fill += take;
		p += take;
		n -= take;
		if (s->fill < 64)
			return;
		block256(s->h, s->buf);
		s->fill = 0;
	}
	for (; n >= 64; p += 64, n -= 64)
		block256(s->h, p);
	memcpy(s->buf, p, n);
	s->fill = n;
}

static void b256_final(struct sha256 *s, unsigned char md[32])
{
	uint64_t bits = s->len * 8;
	unsigned char pad[72] = { 0x80 };
	size_t padlen = (s->fill < 56 ? 56 : 120) - s->fill;

	for (int i = 0; i < 8; i++)
		pad[padlen + i] = (unsigned char)(bits >> (56 - 8 * i));
	b256_update(s, pad, padlen + 8);
	for (int i = 0; i < 32; i++)
		md[i] = (unsigned char)(s->h[i / 4] >> (24 - 8 * (i % 4)));
}

/* nook's own SHA-512: the fallback. */
static const uint64_t K512[80] = {
	0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL, 0xb5c0fbcfec4d3b2fULL,
	0xe9b5dba58189dbbcULL, 0x3956c25bf348b538ULL, 0x59f111f1b605d019ULL,
	0x923f82a4af194f9bULL, 0xab1c5ed5da6d8118ULL, 0xd807aa98a3030242ULL,
	0x12835b0145706fbeULL, 0x243185be4ee4b28cULL, 0x550c7dc3d5ffb4e2ULL,
	0x72be5d74f27b896fULL, 0x80deb1fe3b1696b1ULL, 0x9bdc06a725c71235ULL,
	0xc19bf174cf692694ULL, 0xe49b69c19ef14ad2ULL, 0xefbe4786384f25e3ULL,
	0x0fc19dc68b8cd5b5ULL, 0x240ca1cc77ac9c65ULL, 0x2de92c6f592b0275ULL,
	0x4a7484aa6ea6e483ULL, 0x5cb0a9dcbd41fbd4ULL, 0x76f988da831153b5ULL,
	0x983e5152ee66dfabULL, 0xa831c66d2db43210ULL, 0xb00327c898fb213fULL,
	0xbf597fc7beef0ee4ULL, 0xc6e00bf33da88fc2ULL, 0xd5a79147930aa725ULL,
	0x06ca6351e003826fULL, 0x142929670a0e6e70ULL, 0x27b70a8546d22ffcULL,
	0x2e1b21385c26c926ULL, 0x4d2c6dfc5ac42aedULL, 0x53380d139d95b3dfULL,
	0x650a73548baf63deULL, 0x766a0abb3c77b2a8ULL, 0x81c2c92e47edaee6ULL,
	0x92722c851482353bULL, 0xa2bfe8a14cf10364ULL, 0xa81a664bbc423001ULL,
	0xc24b8b70d0f89791ULL, 0xc76c51a30654be30ULL, 0xd192e819d6ef5218ULL,
	0xd69906245565a910ULL, 0xf40e35855771202aULL, 0x106aa07032bbd1b8ULL,
	0x19a4c116b8d2d0c8ULL, 0x1e376c085141ab53ULL, 0x2748774cdf8eeb99ULL,
	0x34b0bcb5e19b48a8ULL, 0x391c0cb3c5c95a63ULL, 0x4ed8aa4ae3418acbULL,
	0x5b9cca4f7763e373ULL, 0x682e6ff3d6b2b8a3ULL, 0x748f82ee5defb2fcULL,
	0x78a5636f43172f60ULL, 0x84c87814a1f0ab72ULL, 0x8cc702081a6439ecULL,
	0x90befffa23631e28ULL, 0xa4506cebde82bde9ULL, 0xbef9a3f7b2c67915ULL,
	0xc67178f2e372532bULL, 0xca273eceea26619cULL, 0xd186b8c721c0c207ULL,
	0xeada7dd6cde0eb1eULL, 0xf57d4f7fee6ed178ULL, 0x06f067aa72176fbaULL,
	0x0a637dc5a2c898a6ULL, 0x113f9804bef90daeULL, 0x1b710b35131c471bULL,
	0x28db77f523047d84ULL, 0x32caab7b40c72493ULL, 0x3c9ebe0a15c9bebcULL,
	0x431d67c49c100d4cULL, 0x4cc5d4becb3e42b6ULL, 0x597f299cfc657e2aULL,
	0x5fcb6fab3ad6faecULL, 0x6c44198c4a475817ULL,
};

#define ROR64(x, n) (((x) >> (n)) | ((x) << (64 - (n))))

static void block512(uint64_t h[8], const unsigned char *p)
{
	uint64_t w[80], v[8];

	for (int i = 0; i < 16; i++) {
		w[i] = 0;
		for (int j = 0; j < 8; j++)
			w[i] = w[i] << 8 | p[8 * i + j];
	}
	for (int i = 16; i < 80; i++) {
		uint64_t s0 = ROR64(w[i - 15], 1) ^ ROR64(w[i - 15], 8) ^
			      (w[i - 15] >> 7);
		uint64_t s1 = ROR64(w[i - 2], 19) ^ ROR64(w[i - 2], 61) ^
			      (w[i - 2] >> 6);

		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	memcpy(v, h, sizeof(v));
	for (int i = 0; i < 80; i++) {
		uint64_t t1 = v[7] + (ROR64(v[4], 14) ^ ROR64(v[4], 18) ^
				      ROR64(v[4], 41)) +
			      ((v[4] & v[5]) ^ (~v[4] & v[6])) + K512[i] + w[i];
		uint64_t t2 = (ROR64(v[0], 28) ^ ROR64(v[0], 34) ^
			       ROR64(v[0], 39)) +
			      ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));

		memmove(v + 1, v, sizeof(v[0]) * 7);
		v[4] += t1;
		v[0] = t1 + t2;
	}
	for (int i = 0; i < 8; i++)
		h[i] += v[i];
}

static void b512_update(struct sha512 *s, const void *data, size_t n)
{
	const unsigned char *p = data;

	s->len += n;
	if (s->fill) {
		size_t take = 128 - s->fill < n ? 128 - s->fill : n;

		memcpy(s->buf + s->fill, p, take);
		s->fill += take;
		p += take;
		n -= take;
		if (s->fill < 128)
			return;
		block512(s->h, s->buf);
		s->fill = 0;
	}
	for (; n >= 128; p += 128, n -= 128)
		block512(s->h, p);
	memcpy(s->buf, p, n);
	s->fill = n;
}

static void b512_final(struct sha512 *s, unsigned char md[64])
{
	uint64_t bits = s->len * 8;
	unsigned char pad[144] = { 0x80 };
	size_t padlen = (s->fill < 112 ? 112 : 240) - s->fill;

	/* a 128-bit length: the top 64 bits are zero for any real input */
	for (int i = 0; i < 8; i++)
		pad[padlen + 8 + i] = (unsigned char)(bits >> (56 - 8 * i));
	b512_update(s, pad, padlen + 16);
	for (int i = 0; i < 64; i++)
		md[i] = (unsigned char)(s->h[i / 8] >> (56 - 8 * (i % 8)));
}

/* The API: libcrypto when it is there, the code above otherwise. */
void sha256_init_builtin(struct sha256 *s)
{
	static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372,
					0xa54ff53a, 0x510e527f, 0x9b05688c,
					0x1f83d9ab, 0x5be0cd19 };

	memcpy(s->h, iv, sizeof(iv));
	s->len = 0;
	s->fill = 0;
	s->evp = NULL;
	s->failed = 0;
}

void sha256_init(struct sha256 *s)
{
	sha256_init_builtin(s);
	s->evp = evp_start(256);
}

void sha256_update(struct sha256 *s, const void *data, size_t n)
{
	if (s->evp)
		s->failed |= crypto.update(s->evp, data, n) != 1;
	else
		b256_update(s, data, n);
}

int sha256_hex(struct sha256 *s, char out[65])
{
	unsigned char md[32];

	out[0] = '\0';
	if (!s->evp)
		b256_final(s, md);
	else if (evp_finish(&s->evp, s->failed, md, sizeof(md)) < 0)
		return -1;
	to_hex(md, sizeof(md), out);
	return 0;
}

void sha256_free(struct sha256 *s)
{
	if (s && s->evp) {
		crypto.ctx_free(s->evp);
		s->evp = NULL;
	}
}

void sha512_init_builtin(struct sha512 *s)
{
	static const uint64_t iv[8] = {
		0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL,
		0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
		0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL,
		0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
	};

	memcpy(s->h, iv, sizeof(iv));
	s->len = 0;
	s->fill = 0;
	s->evp = NULL;
	s->failed = 0;
}

void sha512_init(struct sha512 *s)
{
	sha512_init_builtin(s);
	s->evp = evp_start(512);
}

void sha512_update(struct sha512 *s, const void *data, size_t n)
{
	if (s->evp)
		s->failed |= crypto.update(s->evp, data, n) != 1;
	else
		b512_update(s, data, n);
}

int sha512_hex(struct sha512 *s, char out[129])
{
	unsigned char md[64];

	out[0] = '\0';
	if (!s->evp)
		b512_final(s, md);
	else if (evp_finish(&s->evp, s->failed, md, sizeof(md)) < 0)
		return -1;
	to_hex(md, sizeof(md), out);
	return 0;
}

void sha512_free(struct sha512 *s)
{
	if (s && s->evp) {
		crypto.ctx_free(s->evp);
		s->evp = NULL;
	}
}

/* Reading: one loop for every file nook hashes, copying or not. */
typedef void add_fn(void *hash, const void *data, size_t n);

static void add256(void *hash, const void *data, size_t n)
{
	sha256_update(hash, data, n);
}

static void add512(void *hash, const void *data, size_t n)
{
	sha512_update(hash, data, n);
}

/* 1 when the n bytes at p are all zero. */
static int all_zero(const char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

/* Write the n bytes at p to out (dst), or, when out is sparse (a regular
 * file) and they are all zero, seek over them: a hole reads back as the
 * zeros it stands for. 0, or -1 having said why. */
static int put(int out, const char *dst, int sparse, const char *p,
	       size_t n)
{
	if (sparse && all_zero(p, n)) {
		if (lseek(out, (off_t)n, SEEK_CUR) < 0)
			return error_errno("cannot write %s", dst);
		return 0;
	}
	if (write_all(out, p, n) < 0)
		return error_errno("cannot write %s", dst);
	return 0;
}

/* A sparse copy that ends in a hole has seeked past its last write: give
 * the file its whole size. */
static int end_sparse(int out, const char *dst)
{
	off_t end = lseek(out, 0, SEEK_CUR);

	if (end < 0 || ftruncate(out, end) < 0)
		return error_errno("cannot write %s", dst);
	return 0;
}

/* 1 when out can take holes: a regular file (a pipe cannot seek) not
 * opened to append (its writes would land at the end, not the offset). */
static int can_hole(int out)
{
	struct stat st;

	return out >= 0 && fstat(out, &st) == 0 && S_ISREG(st.st_mode) &&
	       !(fcntl(out, F_GETFL) & O_APPEND);
}

/* Read in (src) to its end, each chunk added to hash and, when out >= 0,
 * written to out (dst), an all-zero chunk as a hole when out is a regular
 * file. 0, or -1 having said which side failed and why. */
static int pass(int in, const char *src, int out, const char *dst,
		add_fn *add, void *hash)
{
	const size_t size = 256 * 1024; /* fewer syscalls than 64K, still L2 */
	char *chunk = xmalloc(size);
	int ret = -1, sparse = can_hole(out);

	/* mere advice (twice the read-ahead): its failure changes nothing */
	(void)posix_fadvise(in, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (;;) {
		ssize_t n = read(in, chunk, size);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error_errno("cannot read %s", src);
			goto out;
		}
		if (n == 0)
			break;
		add(hash, chunk, (size_t)n);
		if (out >= 0 && put(out, dst, sparse, chunk, (size_t)n) < 0)
			goto out;
	}
	if (sparse && end_sparse(out, dst) < 0)
		goto out;
	ret = 0;
out:
	free(chunk);
	return ret;
}

int sha256_fd(struct sha256 *s, int in, const char *src, int out,
	      const char *dst)
{
	return pass(in, src, out, dst, add256, s);
}

/* Hash the file at path into hash. 0, or -1 naming the path. */
static int hash_path(const char *path, add_fn *add, void *hash)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return error_errno("cannot read %s", path);
	ret = pass(fd, path, -1, NULL, add, hash);
	close(fd); /* read-only: nothing to lose */
	return ret;
}

int sha256_file(const char *path, char out[65])
{
	struct sha256 s;

	sha256_init(&s);
	if (hash_path(path, add256, &s) < 0) {
		sha256_free(&s);
		return -1;
	}
	return sha256_hex(&s, out);
}

int sha512_file(const char *path, char out[129])
{
	struct sha512 s;

	sha512_init(&s);
	if (hash_path(path, add512, &s) < 0) {
		sha512_free(&s);
		return -1;
	}
	return sha512_hex(&s, out);
}

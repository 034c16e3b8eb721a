/*
 * Pulling an image over the network with libcurl. libcurl is loaded with
 * dlopen() on the first pull only: linked in, it would load TLS, HTTP/2,
 * LDAP and Kerberos libraries into every nook command.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "images.h"

struct curl_api {
	void *lib;
	CURL *(*init)(void);
	CURLcode (*setopt)(CURL *, CURLoption, ...);
	CURLcode (*perform)(CURL *);
	CURLcode (*getinfo)(CURL *, CURLINFO, ...);
	void (*cleanup)(CURL *);
	const char *(*strerror)(CURLcode);
	/* the ETag a resumed part is checked by, and its If-Range */
	CURLHcode (*header)(CURL *, const char *, size_t, unsigned int, int,
			    struct curl_header **);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
};

static int curl_load(struct curl_api *c)
{
	c->lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!c->lib)
		return errorf("pulling images needs libcurl: %s (install the "
			      "libcurl4 package)", dlerror());
	*(void **)&c->init = dlsym(c->lib, "curl_easy_init");
	*(void **)&c->setopt = dlsym(c->lib, "curl_easy_setopt");
	*(void **)&c->perform = dlsym(c->lib, "curl_easy_perform");
	*(void **)&c->getinfo = dlsym(c->lib, "curl_easy_getinfo");
	*(void **)&c->cleanup = dlsym(c->lib, "curl_easy_cleanup");
	*(void **)&c->strerror = dlsym(c->lib, "curl_easy_strerror");
	*(void **)&c->header = dlsym(c->lib, "curl_easy_header");
	*(void **)&c->slist_append = dlsym(c->lib, "curl_slist_append");
	*(void **)&c->slist_free_all = dlsym(c->lib, "curl_slist_free_all");
	/* curl_easy_header came in 7.84; fetch_setup() wants 7.85 anyway */
	if (!c->init || !c->setopt || !c->perform || !c->getinfo ||
	    !c->cleanup || !c->strerror || !c->header || !c->slist_append ||
	    !c->slist_free_all)
		return errorf("libcurl.so.4 lacks the easy interface (7.85 or "
			      "later has it)");
	return 0;
}

/* The vendors' images nook knows by name, and their checksum files. */
static const struct known {
	const char *name, *url, *sums;
} known[] = {
	{ "debian-12", "https://cloud.debian.org/images/cloud/bookworm/latest/"
	  "debian-12-genericcloud-amd64.qcow2", "SHA512SUMS" },
	{ "debian-13", "https://cloud.debian.org/images/cloud/trixie/latest/"
	  "debian-13-genericcloud-amd64.qcow2", "SHA512SUMS" },
	{ "ubuntu-24.04", "https://cloud-images.ubuntu.com/noble/current/"
	  "noble-server-cloudimg-amd64.img", "SHA256SUMS" },
	{ "ubuntu-22.04", "https://cloud-images.ubuntu.com/jammy/current/"
	  "jammy-server-cloudimg-amd64.img", "SHA256SUMS" },
	{ "fedora-41", "https://download.fedoraproject.org/pub/fedora/linux/"
	  "releases/41/Cloud/x86_64/images/"
	  "Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2",
	  "Fedora-Cloud-41-1.4-x86_64-CHECKSUM" },
};

int img_pull_resolve(const char *ref, const char *base_url,
		     struct img_pull *p)
{
	const char *file;

	for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
		if (strcmp(known[i].name, ref))
			continue;
		file = strrchr(known[i].url, '/') + 1;
		if (base_url) {
			size_t n = strlen(base_url);
			int slash = n && base_url[n - 1] == '/';

			p->url = xasprintf("%s%s%s", base_url, slash ? "" : "/",
					   file);
			if (!p->checksums_url && !p->sha256 && !p->sha512)
				p->checksums_url = xasprintf("%s%s%s", base_url,
							     slash ? "" : "/",
							     known[i].sums);
		} else {
			p->url = xstrdup(known[i].url);
			if (!p->checksums_url && !p->sha256 && !p->sha512)
				p->checksums_url = xasprintf("%.*s%s",
					(int)(file - known[i].url),
					known[i].url, known[i].sums);
		}
		if (!p->name)
			p->name = xstrdup(ref);
		return 0;
	}
	if (!strstr(ref, "://")) {
		struct buf names = BUF_INIT;

		for (size_t i = 0; i < ARRAY_SIZE(known); i++)
			buf_addf(&names, "%s%s", i ? ", " : "", known[i].name);
		errorf("'%s' is neither a URL nor a known image (%s)", ref,
		       names.p);
		buf_free(&names);
		return -1;
	}
	if (base_url)
		return errorf("--base-url goes with a known image name, not "
			      "a URL");
	p->url = xstrdup(ref);
	if (!p->name) {
		/* the file name up to its first dot */
		const char *f = strrchr(ref, '/') + 1;

		p->name = xstrndup(f, strcspn(f, "."));
	}
	return 0;
}

int img_find_checksum(const char *sums, const char *file, char **hex)
{
	for (const char *l = sums; *l;) {
		size_t n = strcspn(l, "\n");
		char *line = xstrndup(l, n);
		char *p = line, *h = NULL, *name = NULL;

		l += n + (l[n] != '\0');
		/* "HEX  file", "HEX *file" (coreutils) or "ALGO (file) = HEX"
		 * (BSD style, as Fedora writes) */
		if (!strncmp(p, "SHA256 (", 8) || !strncmp(p, "SHA512 (", 8)) {
			char *close = strstr(p, ") = ");

			if (close) {
				*close = '\0';
				name = p + 8;
				h = close + 4;
			}
		} else {
			size_t hl = strspn(p, "0123456789abcdefABCDEF");

			if ((hl == 64 || hl == 128) && p[hl] == ' ') {
				p[hl] = '\0';
				h = p;
				name = p + hl + 1;
				name += *name == ' ' || *name == '*';
			}
		}
		if (h && name && !strcmp(name, file) &&
		    (strlen(h) == 64 || strlen(h) == 128) &&
		    strspn(h, "0123456789abcdefABCDEF") == strlen(h)) {
			*hex = xstrdup(h);
			for (char *c = *hex; *c; c++)
				if (*c >= 'A' && *c <= 'F')
					*c = (char)(*c - 'A' + 'a');
			free(line);
			return 0;
		}
		free(line);
	}
	return errorf("the checksums list names no '%s'", file);
}

/* What tells apart the files a URL may give: their size, and their
 * strong ETag or, without one, their date (Last-Modified; a local file's
 * mtime). A part is resumed only from the file it came from: appended to
 * by another, it would be a splice that no checksum may be there to catch.
 * With a checksum to catch one, the size alone will do for an answer
 * that came through a redirect: a mirror service sends each request to
 * another server, whose ETag (and date, often) is its own. */
struct source {
	long long size; /* -1: unknown */
	long long time; /* seconds since the epoch; -1: unknown */
	char etag[256]; /* "": none */
};

/* Whether an answer is of the file a part came from: it is; it is
 * another (its validators say so); or it does not say. */
enum same { UNTOLD, SAME, DIFFERS };

struct xfer {
	FILE *f;
	curl_off_t offset; /* bytes we had before this transfer */
	const struct img_pull *p; /* whose report hears the progress */
	const char *url;
	double t0, last; /* when it began, when it last told */
	int last_pct;    /* the percentage at the last tenth told */
	struct curl_api *c;
	CURL *h;
	const char *meta;         /* where a transfer from zero records its
				     source; NULL: nowhere */
	const struct source *was; /* resuming: the part's source */
	int by_size;              /* a checksum checks the bytes */
	int known;                /* the source is recorded or checked: the
				     body may be written */
	int said;                 /* the transfer was ended, having said why */
	enum same same;           /* after known, with was: the answer's */
	int whole;                /* a 416 said the part is whole */
	const char *changed;      /* why the part is not the source's head,
				     or why that cannot be told */
	curl_off_t max, got;      /* the most that may come (0: no bound),
				     what came */
};

/* Tell p's report (if any) of a step of the pull. */
static void tell(const struct img_pull *p, enum img_event_kind kind,
		 const char *path, const char *detail)
{
	struct img_event ev = { .kind = kind, .name = p->name, .path = path,
				.detail = detail, .have = 0, .total = -1 };

	if (p->report)
		p->report(&ev, p->report_arg);
}

/* What the response on h says of its file, whose bytes from offset on it
 * brings. */
static void source_get(struct curl_api *c, CURL *h, curl_off_t offset,
		       struct source *s)
{
	curl_off_t len = -1, t = -1;
	struct curl_header *e;

	memset(s, 0, sizeof(*s));
	c->getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
	c->getinfo(h, CURLINFO_FILETIME_T, &t);
	s->size = len >= 0 ? (long long)(offset + len) : -1;
	s->time = t >= 0 ? (long long)t : -1;
	if (c->header(h, "ETag", 0, CURLH_HEADER, -1, &e) == CURLHE_OK &&
	    strlen(e->value) < sizeof(s->etag) && !strpbrk(e->value, "\r\n"))
		memcpy(s->etag, e->value, strlen(e->value) + 1);
}

/* Record s at path (atomically): 0, or -1 having said why. */
static int source_save(const char *path, const struct source *s)
{
	struct buf b = BUF_INIT;
	int ret;

	buf_addf(&b, "size %lld\ntime %lld\netag %s\n", s->size, s->time,
		 s->etag);
	ret = write_file_atomic(path, b.p, b.len, 0644);
	buf_free(&b);
	return ret;
}

/* The source recorded at path into s: 0, or -1 when there is no record
 * or it is not one source_save() wrote. */
static int source_load(const char *path, struct source *s)
{
	struct buf b = BUF_INIT;
	char *end, *etag;
	int ret = -1;

	memset(s, 0, sizeof(*s));
	if (read_file_quiet(path, &b) < 0)
		return -1;
	if (strncmp(b.p, "size ", 5))
		goto out;
	s->size = strtoll(b.p + 5, &end, 10);
	if (strncmp(end, "\ntime ", 6))
		goto out;
	s->time = strtoll(end + 6, &end, 10);
	if (strncmp(end, "\netag ", 6))
		goto out;
	etag = end + 6;
	end = strchr(etag, '\n');
	if (!end || end[1] || (size_t)(end - etag) >= sizeof(s->etag))
		goto out;
	memcpy(s->etag, etag, (size_t)(end - etag));
	ret = 0;
out:
	buf_free(&b);
	return ret;
}

static const char no_tell[] = "the server gave no size, or no strong "
			      "ETag or date, to tell the file by";

/* 1 when etag is a strong entity tag, the one kind that tells identical
 * bytes (RFC 9110 8.8.3): a weak one (W/"...") counts as none */
static int etag_strong(const char *etag)
{
	return etag[0] == '"';
}

/* 1 when s tells its file from another: a size, and (unless by_size) a
 * strong ETag or a date */
static int source_told(const struct source *s, int by_size)
{
	return s->size >= 0 &&
	       (by_size || etag_strong(s->etag) || s->time >= 0);
}

/* Whether now is the file was is: the same size and (unless by_size) the
 * same strong ETag or, with one side lacking it, date. DIFFERS takes a
 * validator of now's (a size, even, is one only beside an ETag or a
 * date: a captive portal's page tells none); *why says how, or why it
 * cannot be told. */
static enum same source_cmp(const struct source *was,
			    const struct source *now, int by_size,
			    const char **why)
{
	int told = etag_strong(now->etag) || now->time >= 0;

	*why = NULL;
	if (now->size < 0) {
		*why = "the server no longer tells its size";
		return UNTOLD;
	}
	if (now->size != was->size) {
		*why = told ? "the file changed: its size" :
			      "the answer tells no ETag or date of its file";
		return told ? DIFFERS : UNTOLD;
	}
	if (by_size)
		return SAME;
	if (etag_strong(was->etag) && etag_strong(now->etag)) {
		*why = strcmp(now->etag, was->etag) ?
			       "the file changed: its ETag" : NULL;
		return *why ? DIFFERS : SAME;
	}
	if (was->time >= 0 && now->time >= 0) {
		*why = now->time != was->time ? "the file changed: its date" :
						NULL;
		return *why ? DIFFERS : SAME;
	}
	*why = "the server no longer tells the file's ETag or date";
	return UNTOLD;
}

/* The If-Range header for a part from was, into out: its ETag when
 * strong, its date when it has no ETag at all (RFC 9110 13.1.5 allows no
 * weak ETag, and no date beside an ETag); "" when neither may be sent. */
static void if_range(const struct source *was, char *out, size_t n)
{
	time_t t = (time_t)was->time;
	struct tm tm;
	size_t at = strlen("If-Range: ");

	*out = '\0';
	if (n <= at)
		return;
	memcpy(out, "If-Range: ", at + 1);
	if (etag_strong(was->etag) && strlen(was->etag) < n - at)
		memcpy(out + at, was->etag, strlen(was->etag) + 1);
	else if (*was->etag || was->time < 0 || !gmtime_r(&t, &tm) ||
		 !strftime(out + at, n - at, "%a, %d %b %Y %H:%M:%S GMT",
			   &tm))
		*out = '\0';
}

/* 1 when the size alone tells x's answer's file: a checksum checks the
 * bytes, and the answer came through a redirect (a mirror's, maybe) or
 * the part's record has nothing else */
static int size_tells(struct xfer *x)
{
	long n = 0;

	if (!x->by_size)
		return 0;
	if (!source_told(x->was, 0))
		return 1;
	return x->c->getinfo(x->h, CURLINFO_REDIRECT_COUNT, &n) ==
		       CURLE_OK && n > 0;
}

/* At a transfer's first bytes (or its end, when none came), its source:
 * for a download from zero, the bytes the file held before go only now
 * (a transfer that fails before this keeps them), then the source is
 * recorded (before any new byte lands); for a resume, it is checked
 * against the record of the part. -1 ends the transfer. */
static int source_first(struct xfer *x)
{
	struct source now;

	x->known = 1;
	source_get(x->c, x->h, x->offset, &now);
	if (!x->was) {
		if (ftruncate(fileno(x->f), 0) < 0) {
			x->said = 1;
			return error_errno("cannot empty the download of %s",
					   x->url);
		}
		if (x->meta && source_save(x->meta, &now) < 0) {
			x->said = 1;
			return -1;
		}
		return 0;
	}
	x->same = source_cmp(x->was, &now, size_tells(x), &x->changed);
	return x->same == SAME ? 0 : -1;
}

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
	struct xfer *x = ctx;

	if (!x->known && source_first(x) < 0)
		return 0; /* curl ends the transfer (CURLE_WRITE_ERROR) */
	x->got += (curl_off_t)(size * n);
	if (x->max && x->got > x->max) {
		errorf("%s is over %lld MiB, which no checksums list is: is "
		       "it the image's URL?", x->url,
		       (long long)(x->max >> 20));
		x->said = 1;
		return 0;
	}
	return fwrite(p, size, n, x->f) * size;
}

/* Pass the transfer's progress on, at most 5 times a second and at each
 * new tenth of the total; the caller draws it. Nothing is told of a
 * resumed transfer until its source is known to be the part's. */
static int on_progress(void *ctx, curl_off_t total, curl_off_t now,
		       curl_off_t ut, curl_off_t un)
{
	struct xfer *x = ctx;
	double t = mono_s(), el = t - x->t0;
	long long have = (long long)(now + x->offset);
	long long all = total > 0 ? (long long)(total + x->offset) : -1;
	int pct = all > 0 ? (int)(100.0 * (double)have / (double)all) : -1;
	int tenth = pct / 10 != x->last_pct / 10;
	struct img_event ev = {
		.kind = IMG_EV_PULL_BYTES, .name = x->p->name, .path = x->url,
		.have = have, .total = all, .tenth = tenth && pct >= 0,
		.rate = el > 0 ? (double)now / el : 0,
	};

	(void)ut;
	(void)un;
	if ((x->was && (!x->known || x->changed)) ||
	    (!tenth && t - x->last < 0.2))
		return 0;
	x->last = t;
	if (tenth)
		x->last_pct = pct;
	x->p->report(&ev, x->p->report_arg);
	return 0;
}

/* Lock path (made when missing, never truncated here) for the whole of a
 * pull: a second pull of the URL, or a prune, keeps its hands off it
 * until the download is checked and imported. The fd, or -1 having said
 * why. */
static int hold(const char *path, const char *url)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		return error_errno("cannot write %s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return errorf("%s is being downloaded by another nook", url);
	}
	return fd;
}

/* 1 when url's transport vouches for what it brings: TLS, or a file of
 * this host's; not http (anyone on the path may change it). */
static int url_vouched(const char *url)
{
	return !strncasecmp(url, "https://", 8) ||
	       !strncasecmp(url, "file://", 7);
}

/* 1 when url is one a pull may start from (PULL_PROTOCOLS) */
static int url_pullable(const char *url)
{
	return url_vouched(url) || !strncasecmp(url, "http://", 7);
}

/* The transports a pull may start from, and where a server's redirect
 * may take it: https only when nothing but TLS vouches for the file (an
 * https URL sent on to http would be a plain download no one checks);
 * never to a file of this host. */
#define PULL_PROTOCOLS "http,https,file"
#define REDIRECT_PLAIN "http,https"
#define REDIRECT_TLS "https"
/* The longest checksums list taken (a distribution's has a few lines:
 * more is an image given as the list by mistake) */
#define SUMS_MAX ((curl_off_t)8 << 20)

/* One download: url into path (held by the caller: hold()). */
struct fetch_req {
	const char *url, *path;
	const char *meta; /* where a download from zero records its source
			     (source_save()); NULL: nowhere */
	const struct source *was; /* set: resume path, which came from was */
	int by_size; /* a checksum checks the download: through a
			redirect (a mirror), its size tells its file */
	int size_only; /* resume with no If-Range (another mirror's
			  validator would bring the whole file) */
	int resumed; /* out: the download resumed a part */
	int insecure;
	int tls_only; /* redirects stay on https (what the fetch brings is
			 checked against nothing else) */
	const struct img_pull *progress; /* whose report hears it, or NULL */
	curl_off_t max; /* more bytes than this are refused (0: no bound) */
};

/* h's options for r, x its transfer: 0, or -1 having said why. */
static int fetch_setup(struct curl_api *c, CURL *h,
		       const struct fetch_req *r, struct xfer *x)
{
	c->setopt(h, CURLOPT_URL, r->url);
	/* a libcurl before 7.85 knows neither: it would follow anywhere */
	if (c->setopt(h, CURLOPT_PROTOCOLS_STR, PULL_PROTOCOLS) != CURLE_OK ||
	    c->setopt(h, CURLOPT_REDIR_PROTOCOLS_STR,
		      r->tls_only ? REDIRECT_TLS : REDIRECT_PLAIN) != CURLE_OK)
		return errorf("cannot download %s: this libcurl cannot limit "
			      "where a redirect leads (7.85 or later can)",
			      r->url);
	c->setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	c->setopt(h, CURLOPT_FAILONERROR, 1L);
	c->setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	c->setopt(h, CURLOPT_WRITEDATA, x);
	c->setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	/* a stalled transfer ends (and can be resumed) rather than hang */
	c->setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	c->setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
	c->setopt(h, CURLOPT_USERAGENT, "nook/" NOOK_VERSION);
	/* Last-Modified, or a local file's mtime: how a part is told */
	c->setopt(h, CURLOPT_FILETIME, 1L);
	if (r->insecure) {
		c->setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		c->setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (x->offset)
		c->setopt(h, CURLOPT_RESUME_FROM_LARGE, x->offset);
	if (r->progress && r->progress->report) {
		c->setopt(h, CURLOPT_NOPROGRESS, 0L);
		c->setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		c->setopt(h, CURLOPT_XFERINFODATA, x);
	}
	return 0;
}

/* The N of a 416's Content-Range: bytes STAR/N (how long the file is),
 * or -1. */
static long long range_total(struct xfer *x)
{
	struct curl_header *e;
	const char *v;
	char *end;
	long long n;

	if (x->c->header(x->h, "Content-Range", 0, CURLH_HEADER, -1, &e) !=
	    CURLHE_OK)
		return -1;
	v = e->value;
	if (strncmp(v, "bytes */", 8) || v[8] < '0' || v[8] > '9')
		return -1;
	errno = 0;
	n = strtoll(v + 8, &end, 10);
	return errno || *end ? -1 : n;
}

/* A 416 to a resume: no byte of the file lies past the part's end. A
 * part as long as its file was is whole (the pull was killed checking
 * or importing it): 0, x->whole set. Else 1, why says it. */
static int resume_416(struct xfer *x, struct buf *why)
{
	struct source now;
	const char *d;

	source_get(x->c, x->h, 0, &now);
	now.size = range_total(x);
	if (now.size < 0)
		now.size = (long long)x->offset; /* at most that */
	if (now.size < x->was->size) {
		buf_adds(why, "the file is shorter now");
		return 1;
	}
	/* a changed file would have come whole (If-Range), or is caught by
	 * the checksum (by_size); a 416 seldom tells validators, but when
	 * it does they are heeded */
	if ((long long)x->offset != x->was->size ||
	    now.size != x->was->size ||
	    source_cmp(x->was, &now, size_tells(x), &d) == DIFFERS) {
		buf_adds(why, "the server would not send the rest (416)");
		return 1;
	}
	x->whole = 1;
	return 0;
}

/* After a transfer that resumed a part and ended with rc and HTTP code:
 * 0 when it brought the rest, found the part whole, or failed on the way
 * (rc says); 2 when a mirror sent the whole file for its If-Range: the
 * part is to be resumed without; 1 when the part is to be downloaded
 * again from zero: the answer is of another file, or of the same from a
 * server that sends no parts (why says which); -1 having said why when
 * the answer does not tell its file (a captive portal's page, say): the
 * part is kept. */
static int resume_check(struct xfer *x, const struct fetch_req *r,
			CURLcode rc, long code, struct buf *why)
{
	struct source now;

	if (!x->was || (x->known && x->same == SAME))
		return 0;
	if (rc == CURLE_BAD_DOWNLOAD_RESUME) {
		buf_adds(why, "the file is shorter now");
		return 1;
	}
	/* libcurl 7.88 fails a 416 to a resume (FAILONERROR); some
	 * versions let it pass */
	if (!x->known && code == 416 &&
	    (rc == CURLE_OK || rc == CURLE_HTTP_RETURNED_ERROR))
		return resume_416(x, why);
	if (!x->known && rc != CURLE_OK && rc != CURLE_RANGE_ERROR)
		return 0;
	if (!x->known) {
		/* no byte came: the whole file instead of its rest
		 * (CURLE_RANGE_ERROR), or nothing past the part's end (a
		 * local file, or a whole file as long as the part) */
		source_get(x->c, x->h, 0, &now);
		if (rc == CURLE_OK)
			now.size = (long long)x->offset;
		x->same = source_cmp(x->was, &now, size_tells(x), &x->changed);
	}
	if (x->same == SAME && rc == CURLE_OK)
		return 0;
	/* a mirror's answer to another's If-Range: ask it again without */
	if (x->same == SAME && size_tells(x) && !r->size_only)
		return 2;
	if (x->same == SAME) {
		/* the server ignores Range: on a rerun it would again; the
		 * whole file is the one way to it */
		buf_adds(why, "the server sends the whole file, not the rest");
		return 1;
	}
	if (x->same == DIFFERS) {
		buf_adds(why, x->changed);
		return 1;
	}
	return errorf("cannot tell whether %s is still the file the %lld "
		      "bytes downloaded before came from (%s): they are kept; "
		      "run the pull again (nook local prune drops them)",
		      r->url, (long long)x->offset, x->changed);
}

/* Say why the download rc ended (not well). */
static void fetch_failed(const struct fetch_req *r, CURLcode rc,
			 struct curl_api *c)
{
	int kept = rc == CURLE_PARTIAL_FILE ||
		   rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_RECV_ERROR;

	if (rc == CURLE_UNSUPPORTED_PROTOCOL)
		errorf("download of %s failed: it leads to a scheme this pull "
		       "may not follow (%s; %s)", r->url, c->strerror(rc),
		       r->tls_only ?
			       "with no checksum to check it, https only" :
			       "http, https, or a file for the URL given");
	else
		errorf("download of %s failed: %s%s", r->url, c->strerror(rc),
		       kept ? " (what arrived is kept: run the pull again to "
			      "resume)" : "");
}

/* Remove a partial download, and its record (meta; NULL: none). */
static void drop_part(const char *meta, const char *part)
{
	if (meta)
		unlink(meta);
	unlink(part);
}

/* Open r->path to write: at its end when resuming (offset), else at its
 * start, not emptied yet (source_first() does at the first byte). */
static FILE *fetch_open(const struct fetch_req *r, curl_off_t offset)
{
	int fd = open(r->path, O_WRONLY | O_CREAT | O_CLOEXEC |
				       (offset ? O_APPEND : 0), 0644);
	FILE *f;

	if (fd < 0) {
		error_errno("cannot write %s", r->path);
		return NULL;
	}
	/* fdopen's "w" never truncates */
	f = fdopen(fd, offset ? "ab" : "wb");
	if (!f) {
		error_errno("cannot write %s", r->path);
		close(fd);
	}
	return f;
}

/* GET r->url into r->path, from its end when r->was is set. 0; -1 having
 * said why (what the part held is kept); 1 (why says it) when the part
 * cannot be resumed: what it holds is as it was, to be replaced; 2 when
 * it is to be resumed without If-Range (resume_check()). */
static int fetch(struct curl_api *c, const struct fetch_req *r,
		 struct buf *why)
{
	struct xfer x = { .p = r->progress, .url = r->url, .last_pct = -10,
			  .c = c, .meta = r->meta, .was = r->was,
			  .by_size = r->by_size, .max = r->max };
	char ifr[320];
	struct curl_slist *hdrs = NULL;
	struct stat st;
	long code = 0;
	CURLcode rc;
	int ret = -1;

	if (r->was && stat(r->path, &st) == 0)
		x.offset = st.st_size;
	x.f = fetch_open(r, x.offset);
	if (!x.f)
		return -1;
	x.t0 = mono_s();
	x.h = c->init();
	if (!x.h) {
		errorf("cannot download %s: libcurl would not start", r->url);
		goto out;
	}
	if (fetch_setup(c, x.h, r, &x) < 0)
		goto out;
	if (x.offset && !r->size_only) {
		/* a changed file answers in whole, not with a range */
		if_range(r->was, ifr, sizeof(ifr));
		if (*ifr)
			hdrs = c->slist_append(NULL, ifr);
		if (hdrs)
			c->setopt(x.h, CURLOPT_HTTPHEADER, hdrs);
	}
	rc = c->perform(x.h);
	c->getinfo(x.h, CURLINFO_RESPONSE_CODE, &code);
	if (r->progress)
		tell(r->progress, IMG_EV_PULL_END, r->url, NULL);
	/* a download from zero of a file with no bytes: it is that */
	if (rc == CURLE_OK && !x.known && !x.was && source_first(&x) < 0)
		goto out;
	if (fflush(x.f) != 0 || fsync(fileno(x.f)) < 0) {
		error_errno("cannot write %s", r->path);
		goto out;
	}
	ret = resume_check(&x, r, rc, code, why);
	if (ret)
		goto out;
	ret = -1;
	if (x.whole)
		rc = CURLE_OK;
	if (rc != CURLE_OK && !x.said)
		fetch_failed(r, rc, c);
	if (rc != CURLE_OK)
		goto out;
	ret = 0;
out:
	/* nothing arrived (refused, not found): nothing to resume */
	if (ret < 0 && fstat(fileno(x.f), &st) == 0 && st.st_size == 0)
		drop_part(r->meta, r->path);
	fclose(x.f);
	if (hdrs)
		c->slist_free_all(hdrs);
	if (x.h)
		c->cleanup(x.h);
	return ret;
}

/* Download r->url into r->path, resuming what the part holds when its
 * record (r->meta) says it came from the same file, and starting from zero
 * (said in a line) when it did not, cannot be told, or cannot be resumed;
 * the part is kept until the new download's first byte. 0, or -1 having
 * said why. */
static int fetch_part(struct curl_api *c, struct fetch_req *r)
{
	struct source was;
	struct buf why = BUF_INIT;
	struct stat st;
	int ret = 0;

	r->was = NULL;
	r->resumed = 0;
	if (stat(r->path, &st) == 0 && st.st_size > 0) {
		if (source_load(r->meta, &was) < 0)
			buf_adds(&why, "no record of the file it came from");
		else if (!source_told(&was, r->by_size))
			buf_adds(&why, no_tell);
		else
			r->was = &was;
	}
	if (!why.len)
		ret = fetch(c, r, &why);
	if (ret == 2) {
		r->size_only = 1;
		ret = fetch(c, r, &why);
		r->size_only = 0;
	}
	r->resumed = r->was && ret == 0;
	if (why.len) {
		warnf("the %lld bytes of %s downloaded before are not "
		      "resumed (%s): downloading it again from the start",
		      (long long)st.st_size, r->url, why.p);
		r->was = NULL;
		ret = fetch(c, r, &why);
	}
	r->was = NULL; /* was is gone with this frame */
	buf_free(&why);
	return ret > 0 ? -1 : ret;
}

/* The hex SHA-256 or SHA-512 of path, as hexlen (64 or 128) asks. */
static int file_digest(const char *path, size_t hexlen, char *out)
{
	return hexlen == 64 ? sha256_file(path, out) : sha512_file(path, out);
}

/* 1 when name is the temp file of a record (.meta) that a killed
 * write_file_atomic() left: .KEY.meta.PID-XXXXXX, PID gone. */
static int stale_meta_tmp(const char *name)
{
	const char *at = name[0] == '.' ? strstr(name, ".meta.") : NULL;
	char *end;
	long pid;

	if (!at || at[6] < '1' || at[6] > '9')
		return 0;
	errno = 0;
	pid = strtol(at + 6, &end, 10);
	if (errno || *end != '-' || pid > 1 << 22)
		return 0;
	return (pid_t)pid != getpid() && !pid_alive((pid_t)pid);
}

/* 1 when dir/name is a partial download's file that no pull holds: a
 * .part or .sums itself unlocked, a .meta whose .part is, a .meta's temp
 * file whose writer is gone. */
static int stale_download(const char *dir, const char *name)
{
	size_t len = strlen(name);
	const char *ext = len > 5 ? name + len - 5 : "";
	char *path;
	int fd, ret;

	if (stale_meta_tmp(name))
		return 1;
	if (strcmp(ext, ".part") && strcmp(ext, ".sums") &&
	    strcmp(ext, ".meta"))
		return 0;
	/* a pull at work holds its .part and .sums locked (hold()) */
	path = strcmp(ext, ".meta") ? xasprintf("%s/%s", dir, name) :
		xasprintf("%s/%.*s.part", dir, (int)(len - 5), name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		ret = errno == ENOENT && !strcmp(ext, ".meta");
	else
		ret = flock(fd, LOCK_EX | LOCK_NB) == 0;
	if (fd >= 0)
		close(fd);
	free(path);
	return ret;
}

int img_stale(const char *data, struct strvec *out)
{
	char *images = xasprintf("%s/images", data);
	char *dl = xasprintf("%s/.downloads", images);
	DIR *d;
	struct dirent *e;
	int n = tmp_stale(images, ".tmp-", out);

	d = opendir(dl);
	while (d && (e = readdir(d))) {
		if (!stale_download(dl, e->d_name))
			continue;
		strvec_pushf(out, "%s/%s", dl, e->d_name);
		n++;
	}
	if (d)
		closedir(d);
	free(dl);
	free(images);
	return n;
}

/* 0 when p's URLs may be pulled; else -1 saying why: a scheme other than
 * https, http and file, or plain http with nothing vouching for what
 * arrives (checked: a checksum given, or a list over https or file://)
 * and no --insecure. */
static int pull_allowed(const struct img_pull *p, int checked)
{
	if (!url_pullable(p->url) ||
	    (p->checksums_url && !url_pullable(p->checksums_url)))
		return errorf("cannot pull %s: only https://, http:// and "
			      "file:// URLs", !url_pullable(p->url) ? p->url :
			      p->checksums_url);
	if (checked || url_vouched(p->url) || p->insecure)
		return 0;
	if (p->checksums_url)
		return errorf("refusing %s: it and its checksum list (%s) "
			      "both come over plain http, which anyone on the "
			      "path could change together; give --sha256 or "
			      "--sha512, a list over https, or --insecure",
			      p->url, p->checksums_url);
	return errorf("refusing %s: plain http and no checksum to check it "
		      "against; give --sha256, --sha512 or --checksums (or "
		      "--insecure)", p->url);
}

/* The download part against want (a sha256 or sha512 in hex; NULL: no
 * checksum, warned of unless the URL is a local file's and no --insecure
 * was given): -1 saying why when its digest cannot be taken, or, the part
 * and its record (meta) deleted, on a mismatch. resumed: the download
 * resumed a part (checked by its size alone, it may have been another
 * file's head). */
static int verify_part(const struct img_pull *p, const char *part,
		       const char *meta, const char *want, int resumed)
{
	char got[129];

	if (!want) {
		if (p->insecure)
			warnf("no checksum given for %s: not verified "
			      "(--insecure)", p->url);
		else if (strncasecmp(p->url, "file://", 7))
			warnf("no checksum given for %s: only TLS vouches for "
			      "it (--sha256, --sha512 or --checksums check it)",
			      p->url);
		return 0;
	}
	if (file_digest(part, strlen(want), got) < 0)
		return -1;
	if (strcmp(got, want)) {
		drop_part(meta, part);
		return errorf("checksum mismatch for %s: got %s, expected %s; "
			      "the download was deleted%s", p->url, got, want,
			      resumed ? " (it had resumed an earlier part: "
					"the next pull starts from zero)" : "");
	}
	tell(p, IMG_EV_PULL_VERIFIED, p->url,
	     strlen(want) == 64 ? "sha256" : "sha512");
	return 0;
}

int img_pull(const char *data, struct img_pull *p)
{
	struct curl_api c = { 0 };
	char *dl = xasprintf("%s/images/.downloads", data);
	char *part = NULL, *meta = NULL, *sums_path = NULL, *want = NULL;
	struct buf sums = BUF_INIT;
	char key[65];
	struct sha256 k;
	struct fetch_req r = { 0 };
	const char *trust;
	int ret = -1, part_fd = -1, sums_fd = -1, checked;

	if (p->sha256)
		want = xstrdup(p->sha256);
	else if (p->sha512)
		want = xstrdup(p->sha512);
	/* a checksum someone on the path could not have changed as well */
	checked = want || (p->checksums_url && url_vouched(p->checksums_url));
	if (pull_allowed(p, checked) < 0 || curl_load(&c) < 0 ||
	    mkdir_p(dl, 0755) < 0)
		goto out;
	/* the partial download is named by its URL, so a rerun resumes it,
	 * and by what vouches for it: a part that an --insecure or
	 * unchecked pull fetched is never resumed by a stricter one */
	trust = p->insecure ? "\ninsecure" : checked ? "\nchecked" : "\ntls";
	sha256_init(&k);
	sha256_update(&k, p->url, strlen(p->url));
	sha256_update(&k, trust, strlen(trust));
	if (sha256_hex(&k, key) < 0)
		goto out;
	part = xasprintf("%s/%.16s.part", dl, key);
	/* what the part came from: it is resumed from no other file */
	meta = xasprintf("%s/%.16s.meta", dl, key);
	part_fd = hold(part, p->url);
	if (part_fd < 0)
		goto out;
	if (!want && p->checksums_url) {
		const char *file = strrchr(p->url, '/') + 1;

		sums_path = xasprintf("%s/%.16s.sums", dl, key);
		sums_fd = hold(sums_path, p->checksums_url);
		r.url = p->checksums_url;
		r.path = sums_path;
		r.insecure = p->insecure;
		r.tls_only = !p->insecure && url_vouched(p->checksums_url);
		/* a list of a few lines: not gigabytes given by mistake */
		r.max = SUMS_MAX;
		if (sums_fd < 0 || fetch(&c, &r, NULL) < 0 ||
		    read_file_max(sums_path, &sums, SUMS_MAX) < 0 ||
		    img_find_checksum(sums.p, file, &want) < 0)
			goto out;
	}
	tell(p, IMG_EV_PULL_START, p->url, NULL);
	r.url = p->url;
	r.path = part;
	r.meta = meta;
	r.insecure = p->insecure;
	r.tls_only = !p->insecure && !checked;
	r.max = 0;
	r.by_size = want != NULL;
	r.progress = p;
	if (fetch_part(&c, &r) < 0 ||
	    verify_part(p, part, meta, want, r.resumed) < 0)
		goto out;
	/* complete: whether it is imported or refused (an HTML page, say),
	 * there is nothing left to resume */
	ret = img_import_disk(data, part, NULL, NULL, NULL, p->name,
			      p->named);
	drop_part(meta, part);
	if (ret < 0)
		goto out;
	ret = 0;
out:
	if (sums_fd >= 0)
		unlink(sums_path);
	if (sums_fd >= 0)
		close(sums_fd);
	if (part_fd >= 0) {
		struct stat st;

		/* nothing arrived: nothing to resume */
		if (fstat(part_fd, &st) == 0 && st.st_size == 0)
			drop_part(meta, part);
		close(part_fd);
	}
	if (c.lib)
		dlclose(c.lib);
	buf_free(&sums);
	free(sums_path);
	free(meta);
	free(part);
	free(want);
	free(dl);
	return ret;
}

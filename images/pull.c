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
	if (!c->init || !c->setopt || !c->perform || !c->getinfo ||
	    !c->cleanup || !c->strerror)
		return errorf("libcurl.so.4 lacks the easy interface");
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
		return errorf("--base-url goes with a known image name, not a URL");
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

struct xfer {
	FILE *f;
	curl_off_t offset; /* bytes we had before this transfer */
	const struct img_pull *p; /* whose report hears the progress */
	const char *url;
	double t0, last; /* when it began, when it last told */
	int last_pct;    /* the percentage at the last tenth told */
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

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
	struct xfer *x = ctx;

	return fwrite(p, size, n, x->f) * size;
}

/* Pass the transfer's progress on, at most 5 times a second and at each
 * new tenth of the total; the caller draws it. */
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
	if (!tenth && t - x->last < 0.2)
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

/* GET url into path (held by the caller: hold()); resume from what path
 * holds when resume is set. tls_only: redirects stay on https (what the
 * fetch brings is checked against nothing else). progress: whose report
 * hears the transfer, or NULL. */
static int fetch(struct curl_api *c, const char *url, const char *path,
		 int resume, int insecure, int tls_only,
		 const struct img_pull *progress)
{
	struct xfer x = { NULL, 0, progress, url, 0, 0, -10 };
	struct stat st;
	long code = 0;
	CURL *h;
	CURLcode rc;
	int ret = -1;

	if (resume && stat(path, &st) == 0)
		x.offset = st.st_size;
	x.f = fopen(path, x.offset ? "abe" : "wbe");
	if (!x.f)
		return error_errno("cannot write %s", path);
	x.t0 = mono_s();
	h = c->init();
	c->setopt(h, CURLOPT_URL, url);
	/* a libcurl before 7.85 knows neither: it would follow anywhere */
	if (c->setopt(h, CURLOPT_PROTOCOLS_STR, PULL_PROTOCOLS) != CURLE_OK ||
	    c->setopt(h, CURLOPT_REDIR_PROTOCOLS_STR,
		      tls_only ? REDIRECT_TLS : REDIRECT_PLAIN) != CURLE_OK) {
		errorf("cannot download %s: this libcurl cannot limit where "
		       "a redirect leads (7.85 or later can)", url);
		goto out;
	}
	c->setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	c->setopt(h, CURLOPT_FAILONERROR, 1L);
	c->setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	c->setopt(h, CURLOPT_WRITEDATA, &x);
	c->setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	/* a stalled transfer ends (and can be resumed) rather than hang */
	c->setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	c->setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
	c->setopt(h, CURLOPT_USERAGENT, "nook/" NOOK_VERSION);
	if (insecure) {
		c->setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		c->setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (x.offset)
		c->setopt(h, CURLOPT_RESUME_FROM_LARGE, x.offset);
	if (progress && progress->report) {
		c->setopt(h, CURLOPT_NOPROGRESS, 0L);
		c->setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		c->setopt(h, CURLOPT_XFERINFODATA, &x);
	}
	rc = c->perform(h);
	c->getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (progress)
		tell(progress, IMG_EV_PULL_END, url, NULL);
	if (fflush(x.f) != 0 || fsync(fileno(x.f)) < 0) {
		error_errno("cannot write %s", path);
		goto out;
	}
	if (rc == CURLE_RANGE_ERROR || (x.offset && rc == CURLE_OK && code == 200)) {
		/* the server ignored the range: what we got is the whole file
		 * appended to the old part; start over */
		fclose(x.f);
		x.f = NULL;
		c->cleanup(h);
		unlink(path);
		return fetch(c, url, path, 0, insecure, tls_only, progress);
	}
	if (rc == CURLE_UNSUPPORTED_PROTOCOL) {
		errorf("download of %s failed: it leads to a scheme this pull "
		       "may not follow (%s; %s)", url, c->strerror(rc),
		       tls_only ? "with no checksum to check it, https only" :
				  "http, https, or a file for the URL given");
		goto out;
	}
	if (rc != CURLE_OK) {
		errorf("download of %s failed: %s%s", url, c->strerror(rc),
		       rc == CURLE_PARTIAL_FILE || rc == CURLE_OPERATION_TIMEDOUT ||
		       rc == CURLE_RECV_ERROR ?
			       " (what arrived is kept: run the pull again to "
			       "resume)" : "");
		goto out;
	}
	ret = 0;
out:
	/* nothing arrived (refused, not found): nothing to resume */
	if (ret < 0 && x.f && fstat(fileno(x.f), &st) == 0 && st.st_size == 0)
		unlink(path);
	if (x.f)
		fclose(x.f);
	c->cleanup(h);
	return ret;
}

/* The hex SHA-256 or SHA-512 of path, as hexlen (64 or 128) asks. */
static int file_digest(const char *path, size_t hexlen, char *out)
{
	return hexlen == 64 ? sha256_file(path, out) : sha512_file(path, out);
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
		size_t len = strlen(e->d_name);
		char *path;
		int fd;

		if (!(len > 5 && !strcmp(e->d_name + len - 5, ".part")) &&
		    !(len > 5 && !strcmp(e->d_name + len - 5, ".sums")))
			continue;
		path = xasprintf("%s/%s", dl, e->d_name);
		/* a pull at work holds its file locked (fetch()) */
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
			strvec_push(out, path);
			n++;
		}
		if (fd >= 0)
			close(fd);
		free(path);
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
 * deleted, on a mismatch. */
static int verify_part(const struct img_pull *p, const char *part,
		       const char *want)
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
		unlink(part);
		return errorf("checksum mismatch for %s: got %s, expected %s; "
			      "the download was deleted", p->url, got, want);
	}
	tell(p, IMG_EV_PULL_VERIFIED, p->url,
	     strlen(want) == 64 ? "sha256" : "sha512");
	return 0;
}

int img_pull(const char *data, struct img_pull *p)
{
	struct curl_api c = { 0 };
	char *dl = xasprintf("%s/images/.downloads", data);
	char *part = NULL, *sums_path = NULL, *want = NULL;
	struct buf sums = BUF_INIT;
	char key[65];
	struct sha256 k;
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
	part_fd = hold(part, p->url);
	if (part_fd < 0)
		goto out;
	if (!want && p->checksums_url) {
		const char *file = strrchr(p->url, '/') + 1;

		sums_path = xasprintf("%s/%.16s.sums", dl, key);
		sums_fd = hold(sums_path, p->checksums_url);
		if (sums_fd < 0 ||
		    fetch(&c, p->checksums_url, sums_path, 0, p->insecure,
			  !p->insecure && url_vouched(p->checksums_url),
			  NULL) < 0 ||
		    read_file(sums_path, &sums) < 0 ||
		    img_find_checksum(sums.p, file, &want) < 0)
			goto out;
	}
	tell(p, IMG_EV_PULL_START, p->url, NULL);
	if (fetch(&c, p->url, part, 1, p->insecure, !p->insecure && !checked,
		  p) < 0)
		goto out;
	if (verify_part(p, part, want) < 0)
		goto out;
	/* complete: whether it is imported or refused (an HTML page, say),
	 * there is nothing left to resume */
	ret = img_import_disk(data, part, NULL, NULL, NULL, p->name,
			      p->named);
	unlink(part);
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
			unlink(part);
		close(part_fd);
	}
	if (c.lib)
		dlclose(c.lib);
	buf_free(&sums);
	free(sums_path);
	free(part);
	free(want);
	free(dl);
	return ret;
}

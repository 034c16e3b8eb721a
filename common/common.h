/*
 * common: the few helpers every module needs and that depend on nothing of
 * nook's own: error reporting, a string vector, a string buffer, spawning a
 * child from an argv vector, reading files and atomic file writes.
 *
 * Errors: functions return 0 (or a count) on success and -1 on failure, having
 * already printed "nook: <what>: <why>" through errorf(); callers just pass the
 * -1 up. Only cmd/ turns a -1 into an exit status.
 */
#ifndef NOOK_COMMON_H
#define NOOK_COMMON_H

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NOOK_VERSION "0.1.0"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Print "nook: <message>" to stderr; always returns -1. */
int errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* As errorf(), with ": <strerror(errno)>" appended. */
int error_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The message of the last errorf()/error_errno() ("" before any): what
 * --json puts in its error object. */
const char *error_last(void);
/* Add " (cause)" to the last error, for --json's object only: an error
 * that stderr said after its cause ("(said above)") carries the cause
 * there too. cause is an error_last() kept (NULL or "": nothing added,
 * nor is what would not fit). Returns -1. */
int error_add_cause(const char *cause);
/* Until called again with NULL, every errorf()/error_errno() message
 * starts with "<w>: " (say, "nook.yaml:3:9"), so a parser of a file can
 * reuse the checks that say what is wrong with a value, and a cluster's
 * node names its errors. A message that starts by naming w already ("w:
 * ...", "VM w: ...", "w is ...") is left as it is. w must outlive its
 * use. */
void error_where(const char *w);
/* Until put back, fn(arg) runs before each message that errorf(),
 * error_errno(), usage_errorf() or warnf() prints: a line left open on
 * the terminal (a wait's clock) is wiped first, whichever code says what
 * went wrong. arg must outlive its use. Returns the hook it replaces,
 * for the caller to put back with error_before_restore() when its wait
 * ends (a wait inside another's keeps the outer one's). */
struct error_hook {
	void (*fn)(void *arg);
	void *arg;
};
struct error_hook error_before(void (*fn)(void *arg), void *arg);
void error_before_restore(struct error_hook was);
/* The length of "VM NAME" or "NAME" at msg's start when msg starts by
 * naming name ("VM dev-2: ...", "dev-2 is ...", not "dev-20 ..."), else
 * 0: a prefix of name before msg would say it twice. */
size_t msg_names(const char *msg, const char *name);
/* msg less a leading "VM NAME: " or "NAME: ", for a line shown after
 * name already (a cluster's progress line, a node's row). */
const char *msg_after_name(const char *msg, const char *name);
/* As errorf(), for a mistake in what the user typed (an invalid VM
 * name): cmd/ turns the failure it ends in into exit status 2. */
int usage_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* 1 when the last error said came from usage_errorf(). */
int error_last_usage(void);
/* Make msg (said already, escaped; NULL: the last error's) the last
 * error, a usage one. */
void error_set_usage(const char *msg);
/* Append s to b with every control character, DEL and byte that is not
 * UTF-8 as \xNN (keep_nl: newlines and tabs stay), so that text from a
 * file or a name cannot drive the terminal that shows it. */
struct buf;
void str_escape(struct buf *b, const char *s, int keep_nl);
/*
 * s[0..n) as a terminal may be shown it, into b: what a hostile guest's
 * console could make a terminal do (set its title, write the clipboard,
 * type an answer into the user's input) shown as \xNN, while colours
 * (SGR: ESC [ digits m), newlines, tabs, carriage returns and whole
 * UTF-8 characters pass. With more, a sequence that n cuts is left for
 * the next call (more bytes follow). The bytes taken.
 */
size_t term_escape(struct buf *b, const char *s, size_t n, int more);
/* The length of the UTF-8 sequence at p (n bytes there; strict: no
 * overlong form, surrogate or code past U+10FFFF), or of the longest
 * start of one there (what one U+FFFD replaces); *whole 1 for a
 * sequence, 0 for an invalid one, -1 for a start that n cuts. */
size_t utf8_len(const unsigned char *p, size_t n, int *whole);
/* s escaped as str_escape() does (not keeping newlines), for printing a
 * name or path that may hold any byte; NULL for NULL. The caller frees. */
char *str_escaped(const char *s);
/* Print "nook: warning: <message>" to stderr. */
void warnf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* malloc/realloc/strdup that never return NULL (they abort on OOM). */
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* A newly allocated formatted string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap);

/* A NULL-terminated vector of owned strings, ready to be an argv. */
struct strvec {
	char **v;
	size_t n;
	size_t alloc;
};
#define STRVEC_INIT { NULL, 0, 0 }
void strvec_push(struct strvec *sv, const char *s);
void strvec_pushf(struct strvec *sv, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void strvec_clear(struct strvec *sv);
/* The index of the first string equal to s in sv, or -1. */
ssize_t strvec_index(const struct strvec *sv, const char *s);

/* A growable byte buffer, always NUL-terminated after len bytes. */
struct buf {
	char *p;
	size_t len;
	size_t alloc;
};
#define BUF_INIT { NULL, 0, 0 }
void buf_add(struct buf *b, const void *data, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_addf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void buf_free(struct buf *b);
/* b without the line ends (\n, \r) it ends with: a program's output,
 * quoted in a message. */
void buf_trim_newlines(struct buf *b);

/*
 * Read a whole file into *b (appending), at most max bytes of it: a file
 * that goes on past max (/dev/zero, a huge file given by mistake) is
 * refused with EFBIG once max + 1 bytes are in, never read to its end.
 * Returns 0, or -1 having said why, naming the path; then *b is as it
 * was (not allocated, if it was empty).
 */
int read_file_max(const char *path, struct buf *b, size_t max);
/* read_file_max() with READ_FILE_MAX: nothing nook reads whole (state,
 * keys, seeds, checksum lists) comes near it. */
#define READ_FILE_MAX ((size_t)64 << 20)
int read_file(const char *path, struct buf *b);
/* The same, saying nothing on failure (errno tells why), of a regular
 * file only (one of nook's own, or in /proc): anything else, a FIFO
 * say, fails with EINVAL without a wait. */
int read_file_quiet(const char *path, struct buf *b);
/* path's size in bytes; 0 when it is not there. */
long long file_size(const char *path);
/* The bytes of path from offset from on (a log's part since then), only
 * its last max when there are more, appended to b, quietly: 0, or -1
 * (errno). What is appended to the file meanwhile is not read. */
int read_file_tail(const char *path, long long from, size_t max,
		   struct buf *b);
/* read_file_max() of a regular file only: a FIFO (that would block), a
 * directory or a device is refused, saying what it is. */
int read_file_regular(const char *path, struct buf *b, size_t max);
/* read_file_regular() of fd, open on path (named in messages): what a
 * caller reads after checking the open file (nook.yaml's owner). Its
 * O_NONBLOCK, if set for the open, is cleared (fd is one the caller
 * opened, shared with no one); fd is left open. */
int read_fd_regular(int fd, const char *path, struct buf *b, size_t max);

/* write(2) all of buf, looping over short writes, EINTR and EAGAIN (a
 * non-blocking fd: waited on until it takes more). 0 or -1 (errno). */
int write_all(int fd, const void *buf, size_t len);

/*
 * A stream socket connected to the unix socket at path: its fd
 * (close-on-exec), or -1 with errno. flags is 0 or SOCK_NONBLOCK; with
 * SOCK_NONBLOCK, EAGAIN means something listens there but its backlog is
 * full (a stopped QEMU accepts nobody), and the fd stays non-blocking. A
 * path too long for sun_path fails with ENAMETOOLONG.
 */
int unix_connect(const char *path, int flags);

/*
 * An atomic replacement of a file: tmpfile_open() makes ".<base>.XXXXXX"
 * beside path (so the rename stays on one file system); write to t->fd;
 * tmpfile_commit() fsyncs, closes, renames over path and fsyncs the
 * directory; tmpfile_abort() removes the temporary file. After either, the
 * struct holds nothing. A crash leaves at worst a stray ".*.XXXXXX" file,
 * never a half-written path.
 *
 * What path is decides how: a new name or a regular file is replaced as
 * above (a symlink is followed, so its target is replaced, not the link);
 * a character device or a FIFO (/dev/null, /dev/stdout on a pipe) is
 * written into as cp would, never replaced (t->tmp is NULL, t->direct 1,
 * mode unused, and a failure may leave part written); a directory, a
 * block device or a socket is refused.
 */
struct tmpfile {
	char *path;
	char *tmp;
	int fd;
	int direct;
};
int tmpfile_open(struct tmpfile *t, const char *path, mode_t mode);
/* tmpfile_open(), and for path "-" standard output: written into directly
 * (no temporary file, no rename: a failure leaves what was written, as a
 * FIFO's), a terminal refused. For a command's OUT argument. */
int tmpfile_open_out(struct tmpfile *t, const char *path, mode_t mode);
int tmpfile_commit(struct tmpfile *t);
void tmpfile_abort(struct tmpfile *t);
/* Atomically replace path with len bytes of data; a file of ours that
 * holds them already, with this mode, is left as it is. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* flock(fd, LOCK_EX), waiting at most ms for another holder: 0, or -1
 * with errno (EWOULDBLOCK once the wait has run out). */
int flock_wait(int fd, int ms);
/* The same for LOCK_SH: held beside other shared holders. */
int flock_wait_shared(int fd, int ms);
/* Write into the lock file fd, just locked, what its holder does (a
 * word: "stop", "suspend") and its pid, for a command that finds the lock
 * busy (lock_holder_said()). Never an error: a lock whose word cannot be
 * written is held all the same. */
void lock_say(int fd, const char *doing);
/* The pid of the holder of lock file path, as it said (lock_say()), its
 * word copied into doing (n bytes); 0, doing "", when the file says
 * nothing (an older nook), cannot be read, or names a process gone. For
 * a lock found busy: any taker says who it is at once. */
pid_t lock_holder_said(const char *path, char *doing, size_t n);

/*
 * A child process from an argv vector, never a shell. in/out/err are fds
 * to give the child (-1: inherit). A child serves the command that runs
 * it (tar, qemu-img, rsync, ssh) and is killed when nook's process ends,
 * however it ends (SIGKILL too), so that none goes on alone. lasting: a
 * program that starts a daemon meant to outlive nook (QEMU -daemonize),
 * left alone: its daemon, once forked, is free anyway. group: a program
 * that runs others (a recipe's bash, debootstrap under it): it leads a
 * process group of its own, and a watcher ends that whole group once
 * nook ends, however (the parent-death signal reaches the child alone).
 */
struct child {
	const char *const *argv;
	int in;
	int out;
	int err;
	pid_t pid;
	int lasting;
	int group;
	pid_t watcher;            /* group: the watcher, and the pipe whose */
	int watch;                /* end (ours) it waits for */
};
#define CHILD_INIT { NULL, -1, -1, -1, -1, 0, 0, -1, -1 }
/* Start the child; -1 with the reason said when it cannot be spawned
 * (a program not found, or not to be run, included). */
int child_start(struct child *c);
/* Wait for it; returns its exit status, 128+signal, or -1. */
int child_wait(struct child *c);
/* As child_wait(), with *sig the signal that ended it (0: none): the
 * status alone cannot tell, as 128 + N may be an exit status too. */
int child_wait_signal(struct child *c, int *sig);
/* 1 with *status set when the child has ended, 0 while it runs, -1. */
int child_poll(struct child *c, int *status);
/* SIGTERM the child (if it runs) and reap it. */
void child_kill(struct child *c);
/*
 * Run argv to completion, collecting its stdout and stderr together into
 * *out (appending). Returns the exit status as child_wait(), or -1.
 */
int run_capture(const char *const *argv, struct buf *out);
/* As run_capture(), but stdout into *out and stderr into *err apart: for
 * a child whose output is data and whose stderr may carry anything. */
int run_capture_split(const char *const *argv, struct buf *out,
		      struct buf *err);
/* As run_capture(), but a child still running after timeout_ms is killed
 * (SIGKILL) and RUN_TIMED_OUT returned, nothing said. */
#define RUN_TIMED_OUT (-2)
int run_capture_timeout(const char *const *argv, struct buf *out,
			int timeout_ms);

/* pid's state letter ('R', 'S', 'T', 'Z', ...; '?' unparsable) and its
 * kernel flags from /proc/PID/stat; -1 with errno when it cannot be read. */
int proc_stat(pid_t pid, char *state, unsigned long *flags);
/* 1 when pid is a live (not zombie) process one of whose arguments is
 * exactly arg (a substring would adopt any process that mentions it). */
int proc_has_arg(pid_t pid, const char *arg);
/* 1 when pid is dying: a zombie, or exiting (PF_EXITING). Its other
 * threads may still hold its files a moment: a killed QEMU's last thread
 * gives its memory back before its sockets. */
int proc_exiting(pid_t pid);
/* 1 when pid is stopped (SIGSTOP, SIGTSTP) or held by a tracer. */
int proc_stopped(pid_t pid);
/* pid's resident memory in bytes (VmRSS, top's RES); 0 when it cannot
 * be read. */
uint64_t proc_resident(pid_t pid);
/* The pid in pidfile when it is such a process; 0 when the file is
 * missing, junk, stale or names another program. Never an error. */
pid_t pidfile_owner(const char *pidfile, const char *arg);

/*
 * The full path of program name found on $PATH, or NULL. The caller frees.
 */
char *find_program(const char *name);

/*
 * Parse a size: digits with an optional K, M, G or T suffix (powers of
 * 1024; a trailing "iB" or "B" is accepted); no suffix means bytes.
 * -1 on junk, zero or overflow, naming what.
 */
int parse_size(const char *what, const char *s, uint64_t *bytes);
/* Parse a decimal integer in [min, max]; -1 naming what otherwise. */
int parse_int(const char *what, const char *s, long min, long max, long *out);

/* The 64-bit FNV-1a hash of len bytes: stable and well known, for ids and
 * MACs, never for secrets. fnv1a64_add() goes on from h, an earlier result,
 * so pieces hash as their concatenation does. */
uint64_t fnv1a64(const void *data, size_t len);
uint64_t fnv1a64_add(uint64_t h, const void *data, size_t len);
/* The distance between a and b in edits (insert, delete, substitute,
 * swap two neighbours); (size_t)-1 when either is over 64 bytes. */
size_t edit_distance(const char *a, const char *b);
/* The word of lists (n arrays, each ending in NULL) that word is, or is
 * a typo of: the same but for case, or (for a word of four letters or
 * more) the nearest within two edits and a third of its length. NULL
 * when none is that near. */
const char *typo_of(const char *word, const char *const *const *lists,
		    size_t n);

/*
 * SHA-256 and SHA-512, for image digests and checksums: OpenSSL's libcrypto,
 * loaded on the first hash, or nook's own code when it cannot be loaded.
 * Calling sequence: x_init(), x_update() any number of times, x_hex() to
 * finish; a hash given up before x_hex() is released with x_free().
 * init and update cannot fail; hex returns 0, or -1 having said why (it
 * has freed the hash either way).
 */
struct sha256 {
	void *evp;	/* libcrypto's EVP_MD_CTX; NULL: nook's code, below */
	int failed;	/* libcrypto refused an update */
	uint32_t h[8];
	uint64_t len;
	unsigned char buf[64];
	size_t fill;
};
void sha256_init(struct sha256 *s);
/* As sha256_init(), but always nook's own code (what runs without
 * libcrypto), so that the tests can hold the two against each other. */
void sha256_init_builtin(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t n);
/* Finish and write 64 lower-case hex digits and a NUL. */
int sha256_hex(struct sha256 *s, char out[65]);
/* Release an unfinished hash; s may be NULL or finished already. */
void sha256_free(struct sha256 *s);
/*
 * Read fd in to its end into s and, when out >= 0, write every byte to out
 * as well: a copy that hashes as it goes, reading the file once. When out
 * is a regular file, an all-zero chunk becomes a hole (seeked over, the
 * size set at the end), so a sparse disk stays sparse: out must then be
 * empty from its offset on. src and dst name the two in errors. 0, or -1
 * having said why; s stays unfinished.
 */
int sha256_fd(struct sha256 *s, int in, const char *src, int out,
	      const char *dst);
/* The hex SHA-256 of a file's bytes. 0 or -1 naming the path. */
int sha256_file(const char *path, char out[65]);
/* SHA-512, for the checksum files some vendors publish: as SHA-256. */
struct sha512 {
	void *evp;
	int failed;
	uint64_t h[8];
	uint64_t len;
	unsigned char buf[128];
	size_t fill;
};
void sha512_init(struct sha512 *s);
void sha512_init_builtin(struct sha512 *s);
void sha512_update(struct sha512 *s, const void *data, size_t n);
int sha512_hex(struct sha512 *s, char out[129]);
void sha512_free(struct sha512 *s);
int sha512_file(const char *path, char out[129]);

/* The monotonic clock in milliseconds or seconds; the wall clock in
 * microseconds; sleep ms, past EINTR. */
long long mono_ms(void);
double mono_s(void);
long long real_us(void);
void sleep_ms(int ms);

/*
 * Temporary files and directories (common/cleanup.c). Each is named
 * PREFIX<pid>-XXXXXX (or PREFIX<pid>.XXXXXX) by the process that makes it.
 * tmp_register() it once made: SIGINT, SIGTERM and SIGHUP then remove it
 * (a directory with the files in it) before nook dies of the signal, as
 * it would have; tmp_unregister() once it is renamed or removed.
 * tmp_stale() appends dir/NAME for each PREFIX<pid>... in dir whose pid is
 * gone (SIGKILL, a crash) and returns how many; tmp_sweep() removes them.
 */
void tmp_register(const char *path);
/* tmp_register() of a directory made for what goes in it (an output's
 * parents): a signal removes it only while empty, never what another
 * process put there. Paths are removed newest first. */
void tmp_register_dir(const char *path);
void tmp_unregister(const char *path);
/* mkdtemp() and mkostemp() that register what they make, with those
 * signals held until it is registered. */
char *tmp_mkdtemp(char *tmpl);
int tmp_mkostemp(char *tmpl, int flags);
/* A message written to stderr when one of those signals ends nook (what
 * state it leaves and what to do); NULL: none. */
void sig_note(const char *msg);
/*
 * A wait or a step that must end cleanly: while on, SIGINT, SIGTERM and
 * SIGHUP only set sig_caught (an ignored one, nohup's, stays ignored);
 * sig_catch(old, 0) puts the handlers back, and sig_rethrow() then ends
 * nook as that signal would have (130 for ^C), through any handler above.
 */
/* SIGINT, SIGTERM and SIGHUP held (blocked), the mask before in *was,
 * until sig_release(was): a step they must not cut in two. */
void sig_hold(sigset_t *was);
void sig_release(const sigset_t *was);
extern volatile sig_atomic_t sig_caught;
void sig_catch(struct sigaction old[3], int on);
void sig_rethrow(void);
/* While caught, the first signal is also passed on to pids (n of them,
 * those <= 0 skipped) from the handler, so none is lost between a look
 * at sig_caught and a wait. The caller does not reap them until it has
 * called sig_pass_on(NULL, 0): a reaped pid may be another's. */
void sig_pass_on(pid_t *pids, size_t n);
int tmp_stale(const char *dir, const char *prefix, struct strvec *out);
void tmp_sweep(const char *dir, const char *prefix);
/* 1 while pid is a live process (not a zombie), any owner's. */
int pid_alive(pid_t pid);

/* rm -rf path (symlinks removed, not followed); a missing path is fine. */
int remove_tree(const char *path);

/* path made absolute from the current directory, its symlinks kept (a
 * /boot/vmlinuz stays that link); the caller frees. NULL (errno) when the
 * current directory cannot be told. */
char *path_absolute(const char *path);
/* mkdir -p with the given mode for the directories it makes. 0 or -1
 * (an empty path is refused). */
int mkdir_p(const char *path, mode_t mode);
/* A step of mkdir_each(): dir, made by it (made 1) or there already
 * (made 0: mkdir said EEXIST, so perhaps made by another meanwhile).
 * For a directory made, called with SIGINT, SIGTERM and SIGHUP held
 * (sig_hold()), so that it is registered (tmp_register_dir()) before a
 * signal can come. 0 to go on, or -1 having said why. */
typedef int (*mkdir_step_fn)(const char *dir, int made, void *ctx);
/* mkdir -p path, each directory it makes of mode; with step, each
 * directory on the way, outermost first, made or found, is passed to
 * step(dir, made, ctx) before anything is made in it. 0 or -1 having
 * said why (an empty path is refused). */
int mkdir_each(const char *path, mode_t mode, mkdir_step_fn step, void *ctx);
/* mkdir -p path with mode 0700, for sockets and pid files: path, a
 * directory of ours with no access for others, and each directory above
 * it (and each symlink on the way, and where it leads) owned by us or
 * root, and not writable by its group (a user private group aside) or
 * by all unless sticky (/tmp), so that no other user can swap a directory
 * on the way (a /tmp/nook-UID made first by someone else). Each directory
 * is checked before anything is made in it. 0 or -1 having said why. */
int mkdir_private(const char *path);
/* mkdir_private()'s checks of the part of path that exists, making
 * nothing: 0, or -1 having said why (quiet: saying nothing). */
int path_private_ok(const char *path, int quiet);
/* 0 when no other user can swap what path names (a file or directory
 * a command writes, there or not yet) for one of theirs: neither path
 * nor a directory above it, as given or where its symlinks lead, is
 * writable by all without the sticky bit (/tmp is fine). Else -1, having
 * said so with what (e.g. "the bundle") and what to do. */
int path_unswappable(const char *path, const char *what);
/* 1 when real (a resolved path) is root (resolved) or below it. */
int path_under(const char *root, const char *real);
/* Copy src's bytes to dst, a new file (O_EXCL) of mode, fsynced; a
 * failure removes dst. 0 or -1 having said why. */
int copy_file(const char *src, const char *dst, mode_t mode);

/*
 * Where nook keeps things. data: $NOOK_HOME, else $XDG_DATA_HOME/nook, else
 * $HOME/.local/share/nook. run (sockets, pid files): $NOOK_HOME/run, else
 * $XDG_RUNTIME_DIR/nook, else /tmp/nook-<uid>. cache (built images, by
 * recipe hash): $NOOK_IMAGE_CACHE, else /var/cache/nook for root, else
 * $XDG_CACHE_HOME/nook, else $HOME/.cache/nook. recipes (image build
 * recipes): $NOOK_RECIPES, else the ones installed with nook, found from
 * the running binary: PREFIX/bin/nook's are PREFIX/share/nook/recipes (the
 * source tree's for the binary in its build tree). Relative XDG paths are
 * ignored, as the XDG spec says. nook_dirs_resolve() is pure: it takes the
 * environment's values (NULL or "" when unset).
 */
struct nook_dirs {
	char *data;
	char *run;
	char *cache;
	char *recipes;
};
struct nook_env {
	const char *nook_home;
	const char *xdg_data_home;
	const char *home;
	const char *xdg_runtime_dir;
	const char *xdg_cache_home;
	const char *nook_image_cache;
	const char *nook_recipes;
	const char *exe;   /* the running binary's real path, or NULL */
	unsigned uid;
};
/* Fill *d (free it with nook_dirs_free()); -1 having said why, *d empty. */
int nook_dirs_resolve(struct nook_dirs *d, const struct nook_env *env);
/* The same from this process's environment, its directories spelled as
 * path_canonical() spells them. */
int nook_dirs_from_environ(struct nook_dirs *d);
/* An absolute path as every nook spells it however it was typed
 * ("/a//b/./", "/a/b/" through a symlink): its longest part that exists
 * through realpath(), the rest with empty and "." parts dropped and ".."
 * taking the part before it. A relative path is returned as it is. The
 * caller frees it. */
char *path_canonical(const char *path);
/* Free what *d holds; d may be NULL, and freed fields are cleared. */
void nook_dirs_free(struct nook_dirs *d);
/* $PATH, for finding programs: the environment is read in this one file. */
const char *nook_env_path(void);

#endif

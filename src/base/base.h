/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * base — the ground floor every other module stands on: allocation that never
 * fails, bounded buffers, small string helpers, the error type and XDG paths.
 *
 * Everything here is thread-safe unless a comment says otherwise, and nothing
 * here talks to the human: errors are values (struct fm_error) that only ui/
 * and cli/ turn into text on a screen.
 */
#ifndef FULMAR_BASE_H
#define FULMAR_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libintl.h>

/* Translation markers. _() translates now, N_() marks a string for xgettext
 * that is translated later (tables). */
#define _(s) gettext(s)
#define N_(s) (s)

#define FM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__GNUC__)
#define FM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define FM_NORETURN __attribute__((noreturn))
#else
#define FM_PRINTF(f, a)
#define FM_NORETURN
#endif

/* ------------------------------------------------------------------------
 * Allocation that never fails: on exhaustion these print one line to stderr
 * and abort(), so callers never check for NULL. Sizes are checked for
 * overflow. Free with free().
 */
void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* realloc(ptr, nmemb * size), aborting on multiplication overflow. */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
/* Copies at most n bytes of s and terminates the copy. */
char *xstrndup(const char *s, size_t n);
/* A newly allocated formatted string; the caller frees it. */
char *xasprintf(const char *fmt, ...) FM_PRINTF(1, 2);
char *xvasprintf(const char *fmt, va_list ap) FM_PRINTF(1, 0);

/* Overwrites len bytes at p in a way the compiler may not elide; for
 * passwords and tokens before they are freed. NULL-safe. */
void fm_wipe(void *p, size_t len);
/* fm_wipe() of a NUL-terminated string, then free(); NULL-safe. Sets *s to
 * NULL. */
void fm_free_secret(char **s);

/* ------------------------------------------------------------------------
 * Bounded, growable byte buffer. Every buffer a peer can fill has a maximum:
 * appends that would pass it fail and leave the buffer unchanged. The data is
 * always NUL-terminated (the terminator is not counted in len and not in max).
 * A zero-initialised struct is not valid: call fm_buf_init().
 */
struct fm_buf {
	char *data; /* owned; never NULL after init */
	size_t len; /* bytes used, without the terminator */
	size_t cap; /* bytes allocated, with the terminator */
	size_t max; /* the most len may ever be */
};

void fm_buf_init(struct fm_buf *buf, size_t max);
/* Frees the storage; the struct may be initialised again. */
void fm_buf_free(struct fm_buf *buf);
/* Empties the buffer without freeing storage. */
void fm_buf_reset(struct fm_buf *buf);
/* Appends len bytes; -1 (nothing appended) if len would pass max. */
int fm_buf_append(struct fm_buf *buf, const void *data, size_t len);
int fm_buf_append_str(struct fm_buf *buf, const char *s);
int fm_buf_append_char(struct fm_buf *buf, char c);
int fm_buf_printf(struct fm_buf *buf, const char *fmt, ...) FM_PRINTF(2, 3);
int fm_buf_vprintf(struct fm_buf *buf, const char *fmt, va_list ap)
    FM_PRINTF(2, 0);
/* Drops the first n bytes (n <= len). */
void fm_buf_consume(struct fm_buf *buf, size_t n);
/* Hands the data to the caller (who frees it); the buffer is left freed, as
 * after fm_buf_free(). */
char *fm_buf_steal(struct fm_buf *buf);

/* ------------------------------------------------------------------------
 * Strings. All take NUL-terminated input unless they take a length.
 */
/* Copies src into dst of size dstsize, always terminating when dstsize > 0.
 * Returns strlen(src); truncation happened if that is >= dstsize. */
size_t fm_strlcpy(char *dst, const char *src, size_t dstsize);
/* Strict decimal parse of the whole string into [min, max]: no sign unless
 * min < 0, no spaces, no trailing text. 0 on success, -1 otherwise. */
int fm_parse_long(const char *s, long min, long max, long *value_r);
/* Returns s without leading/trailing ASCII white space, in place. */
char *fm_str_trim(char *s);
bool fm_str_has_prefix(const char *s, const char *prefix);
/* ASCII case-insensitive equality. */
bool fm_str_ieq(const char *a, const char *b);
/* Equality, NULL reading as "". */
bool fm_str_same(const char *a, const char *b);
/* A hash of len bytes for in-memory tables (it may change between
 * versions: never store it). */
uint32_t fm_hash_mem(const void *data, size_t len);
/* Levenshtein distance, capped at 100; for "did you mean" suggestions. */
unsigned fm_str_distance(const char *a, const char *b);
/* Copies text from a peer (a server's reply) into dst for showing to a
 * human on one line: line breaks and tabs become spaces, other control
 * characters '?', and a cut is marked with "...".
 * Never fails; dst is always terminated when dstsize > 0. */
void fm_str_printable(const char *src, char *dst, size_t dstsize);

/* ------------------------------------------------------------------------
 * Time.
 */
/* Milliseconds on the monotonic clock (for durations and timeouts). */
uint64_t fm_now_ms(void);

/* ------------------------------------------------------------------------
 * Errors. Fallible functions return 0 / -1 and fill a struct fm_error. The
 * class says what the caller should do next; the sentence is for the user
 * (already translated); the detail is for the log.
 */
enum fm_error_class {
	FM_ERR_NONE = 0,
	FM_ERR_TEMPORARY,   /* retry later: network down, server busy */
	FM_ERR_CREDENTIALS, /* fix the password or token; do not retry */
	FM_ERR_TLS,         /* fix TLS trust (pin, CA file); do not retry */
	FM_ERR_CONFIG,      /* fix the configuration */
	FM_ERR_PROTOCOL,    /* the server broke the protocol or was hostile */
	FM_ERR_PERMANENT,   /* the server refused for good (e.g. 5xx) */
	FM_ERR_LOCAL,       /* local I/O or resource failure */
	FM_ERR_CANCELLED,   /* stopped on request */
	FM_ERR_USAGE,       /* bad command line */
};

#define FM_ERROR_USER_MAX 512
#define FM_ERROR_DETAIL_MAX 512

struct fm_error {
	enum fm_error_class cls;
	char user[FM_ERROR_USER_MAX];     /* translated, for the human */
	char detail[FM_ERROR_DETAIL_MAX]; /* untranslated, for the log */
};

/* Clears err (NULL-safe). */
void fm_error_clear(struct fm_error *err);
/* Sets class and user sentence, clearing the detail; NULL-safe. Returns -1 so
 * callers can write `return fm_error_set(...)`. */
int fm_error_set(struct fm_error *err, enum fm_error_class cls, const char *fmt,
                 ...) FM_PRINTF(3, 4);
/* Sets the detail (for the log); NULL-safe. Returns -1. */
int fm_error_detail(struct fm_error *err, const char *fmt, ...) FM_PRINTF(2, 3);
/* Sets class and user sentence with ": strerror(errnum)" appended. */
int fm_error_errno(struct fm_error *err, enum fm_error_class cls, int errnum,
                   const char *fmt, ...) FM_PRINTF(4, 5);
/* A short stable name for the class ("temporary", "credentials", ...). */
const char *fm_error_class_name(enum fm_error_class cls);
/* The process exit status for a class (sysexits.h values; see doc/HACKING). */
int fm_error_exit_status(enum fm_error_class cls);

/* ------------------------------------------------------------------------
 * Paths (XDG base directories). Returned strings are newly allocated.
 */
/* dir + "/" + name, without doubling a slash. */
char *fm_path_join(const char *dir, const char *name);
/* $XDG_CONFIG_HOME/fulmar, or $HOME/.config/fulmar. */
char *fm_path_config_dir(void);
/* $XDG_DATA_HOME/fulmar, or $HOME/.local/share/fulmar. */
char *fm_path_data_dir(void);
/* $XDG_STATE_HOME/fulmar, or $HOME/.local/state/fulmar. */
char *fm_path_state_dir(void);
/* Creates dir and its missing parents with the given mode; 0 or -1 (err). */
int fm_path_mkdirs(const char *dir, unsigned mode, struct fm_error *err);

/* ------------------------------------------------------------------------
 * Durable files.
 */
struct iovec;
/* Writes all len bytes to fd, retrying short writes and EINTR; 0, or -1
 * with errno set. */
int fm_write_all(int fd, const void *data, size_t len);
/* fsync()s a directory (after creating, renaming or removing in it), so
 * the change survives a crash. err may be NULL. */
int fm_fsync_dir(const char *dir, struct fm_error *err);
/* fm_fsync_dir() of the directory holding path. */
int fm_fsync_parent(const char *path, struct fm_error *err);
/* Checksummed record files (state, summaries): one record per line, fields
 * separated by single spaces. */
/* Appends str as one field: "-" for NULL or empty; bytes up to space, '%'
 * and DEL as %XX. */
void fm_record_put(struct fm_buf *b, const char *str);
/* Appends v in base 10 or 16 (lowercase), as fm_record_parse_u64() reads
 * it; without printf, because record files are written in bulk. */
void fm_record_put_u64(struct fm_buf *b, uint64_t v, int base);
/* Undoes fm_record_put() in place: *out_r = str (or NULL for "-"). -1 on
 * anything fm_record_put() would not write. */
int fm_record_unescape(char *str, char **out_r);
/* Splits line in place at single spaces into exactly n fields. */
int fm_record_split(char *line, char **fields, int n);
/* Strict unsigned parse in base 10 or 16 (lowercase): no sign, no leading
 * zeros but "0", at most max. */
int fm_record_parse_u64(const char *str, int base, uint64_t max,
                        uint64_t *value_r);
/* The checksum of data for a record file's header ("crc32:%08x"). */
void fm_record_digest(const void *data, size_t len, char out[65]);
/* Reads a whole file of at most max bytes (NUL-terminated copy, caller
 * frees). Returns 1 if the file does not exist, 0 when read, -1 with
 * FM_ERR_LOCAL otherwise. */
int fm_record_read_file(const char *path, size_t max, char **data_r,
                        size_t *len_r, struct fm_error *err);

/* Change logs. A large record file that changes a little at a time is not
 * rewritten whole: its owner appends the changed records to PATH.log, in
 * checksummed chunks, and writes a new snapshot (fm_file_replace, then
 * fm_reclog_remove) once the log has grown. The log's first line names the
 * snapshot it follows (ID, e.g. the snapshot's header fields): a log
 * that follows another snapshot (a crash between a new snapshot's rename
 * and the log's removal) is stale and ignored. A chunk a crash cut short,
 * and anything after it, is ignored too, and the next append writes over
 * it. Records are the owner's; a reader applies them in order. */
/* Reads PATH.log if it follows the snapshot id: *data_r receives the valid
 * chunks' records (NUL-terminated, caller frees; NULL when there is no
 * usable log), *end_r the length of the log's valid part (0: none; pass it
 * to the next append). -1 with FM_ERR_LOCAL if it cannot be read. */
int fm_reclog_read(const char *path, const char *id, size_t max, char **data_r,
                   size_t *len_r, size_t *end_r, struct fm_error *err);
/* Appends one chunk of records (body, len) to PATH.log at *end (0: starts
 * a new log following the snapshot id), makes it durable when durable
 * (fdatasync; the directory too when new: a derived file's log, which a
 * loss only makes older, goes without) and moves *end past it.
 * FM_ERR_LOCAL on failure, and *end stays. */
int fm_reclog_append(const char *path, const char *id, size_t *end,
                     const void *body, size_t len, bool durable,
                     struct fm_error *err);
/* fm_reclog_append() while the log stays within a quarter of its snapshot
 * (snap_bytes, the snapshot's body): 1 when appended, 0 when a new
 * snapshot is due instead (nothing written), -1 on failure. */
int fm_reclog_append_small(const char *path, const char *id, size_t *end,
                           size_t snap_bytes, const void *body, size_t len,
                           bool durable, struct fm_error *err);
/* Removes PATH.log: after a new snapshot took its changes in. */
void fm_reclog_remove(const char *path);
/* The length of PATH.log in bytes, 0 when there is none, -1 if it cannot
 * be looked at. */
int64_t fm_reclog_size(const char *path);

/* Replaces path atomically with the bytes of iov: writes PATH.tmp, fsyncs
 * it, renames it over path and fsyncs the directory. After a crash, path
 * holds the old bytes or the new ones, never a mix; a stray PATH.tmp may
 * remain (callers remove it when they open). FM_ERR_LOCAL on failure, with
 * PATH.tmp removed. */
int fm_file_replace(const char *path, const struct iovec *iov, int iovcnt,
                    struct fm_error *err);
/* The same without fsync, for a cache that proves itself when it is read
 * (a crash may leave the old bytes, the new ones or none, never a mix). */
int fm_file_replace_cache(const char *path, const void *data, size_t len,
                          struct fm_error *err);

#endif

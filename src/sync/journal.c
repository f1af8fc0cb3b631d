/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/base.h"
#include "sync/journal.h"
#include "sync/state.h"

#define HEADER_LEN 57
#define HSUM_AT 48
#define PAYLOAD_MAX 65536
/* A journal this large is not one fulmar wrote (compaction keeps it to
 * the pending records). */
#define JOURNAL_FILE_MAX ((uint64_t)1 << 30)
#define NSTRINGS 6

/* Head and acknowledgement records; never handed to callers. */
#define OP_HEAD 'H'
#define OP_ACK 'A'

struct fm_journal {
	char *path;
	int fd;       /* -1 once broken: reopen to go on */
	uint64_t end; /* bytes of intact records */
	bool torn;    /* bytes past end to cut off */
	uint64_t last_seq;
	uint64_t acked;
	uint64_t *pending; /* sequence numbers of pending records, ascending */
	size_t npending, cap;
};

/* One parsed record: the public part plus the bookkeeping fields. */
struct rec {
	struct fm_journal_record r;
	char op;
	uint64_t mark; /* ACK: acknowledged seq; HEAD: last seq used */
	const char *s[NSTRINGS];
	size_t slen[NSTRINGS];
	size_t size; /* bytes in the file, header to final newline */
};

static void
sha256_hex(const void *data, size_t len, char *out, size_t nhex)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	static const char hex[] = "0123456789abcdef";
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		abort(); /* cannot fail short of a broken libcrypto */
	for (size_t i = 0; i < nhex; i++)
		out[i] = hex[(md[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
}

/* ------------------------------------------------------------------------
 * Encoding.
 */

static bool
is_change(char op)
{
	return op == FM_JOURNAL_FLAGS || op == FM_JOURNAL_MOVE ||
	       op == FM_JOURNAL_DELETE || op == FM_JOURNAL_NEW;
}

static void
put_ns(struct fm_buf *b, const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	fm_buf_printf(b, "%zu:", n);
	fm_buf_append(b, s != NULL ? s : "", n);
	fm_buf_append_char(b, ',');
}

static void
encode(struct fm_buf *out, uint64_t seq, char op, int64_t t,
       const struct fm_journal_record *r, uint64_t mark)
{
	struct fm_buf p;
	fm_buf_init(&p, PAYLOAD_MAX);
	fm_buf_printf(&p, "%c %lld %x %x %llu ", op, (long long)t,
	              r != NULL ? (unsigned)r->flags_add : 0u,
	              r != NULL ? (unsigned)r->flags_del : 0u,
	              (unsigned long long)mark);
	const char *s[NSTRINGS] = {0};
	if (r != NULL) {
		s[0] = r->folder;
		s[1] = r->base;
		s[2] = r->to_folder;
		s[3] = r->to_base;
		s[4] = r->keywords_add;
		s[5] = r->keywords_del;
	}
	for (int i = 0; i < NSTRINGS; i++)
		put_ns(&p, s[i]);
	char psum[16], header[HEADER_LEN + 1];
	sha256_hex(p.data, p.len, psum, sizeof(psum));
	snprintf(header, sizeof(header), "FMJ1 %016llx %08zx %.16s ",
	         (unsigned long long)seq, p.len, psum);
	sha256_hex(header, HSUM_AT, header + HSUM_AT, 8);
	header[HEADER_LEN - 1] = '\n';
	fm_buf_append(out, header, HEADER_LEN);
	fm_buf_append(out, p.data, p.len);
	fm_buf_append_char(out, '\n');
	fm_buf_free(&p);
}

/* ------------------------------------------------------------------------
 * Decoding.
 */

static bool
hex_at(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static uint64_t
hex_val(const char *s, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 4 |
		    (uint64_t)(s[i] <= '9' ? s[i] - '0' : s[i] - 'a' + 10);
	return v;
}

/* Does b (n bytes, n <= HEADER_LEN) match the shape of a header? */
static bool
header_shape(const char *b, size_t n)
{
	static const char shape[] = "FMJ1 xxxxxxxxxxxxxxxx xxxxxxxx "
	                            "xxxxxxxxxxxxxxxx xxxxxxxx\n";
	for (size_t i = 0; i < n; i++) {
		if (shape[i] == 'x' ? !hex_at(b + i, 1) : b[i] != shape[i])
			return false;
	}
	return true;
}

static bool
all_zero(const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != '\0')
			return false;
	return true;
}

/* The value of digit c in base 10 or 16 (lowercase), or -1. */
static int
digit(char c, int base)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (base == 16 && c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Parses an unsigned number that ends at the delimiter stop (no sign, no
 * leading zero, at most 19 digits) and advances *p past the delimiter. */
static int
take_num(const char **p, const char *end, int base, char stop, uint64_t *v_r)
{
	const char *s = *p;
	uint64_t v = 0;
	size_t n = 0;
	for (; s < end && *s != stop; s++, n++) {
		int d = digit(*s, base);
		if (d < 0 || n >= 19 || (n > 0 && v == 0))
			return -1;
		v = v * (uint64_t)base + (uint64_t)d;
	}
	if (n == 0 || s >= end)
		return -1;
	*p = s + 1;
	*v_r = v;
	return 0;
}

static int
parse_payload(const char *p, size_t len, struct rec *rc)
{
	const char *end = p + len;
	uint64_t t, fa, fd, mark;
	if (len < 2 || p[1] != ' ')
		return -1;
	rc->op = p[0];
	p += 2;
	if (take_num(&p, end, 10, ' ', &t) < 0 ||
	    take_num(&p, end, 16, ' ', &fa) < 0 || fa > UINT32_MAX ||
	    take_num(&p, end, 16, ' ', &fd) < 0 || fd > UINT32_MAX ||
	    take_num(&p, end, 10, ' ', &mark) < 0)
		return -1;
	for (int i = 0; i < NSTRINGS; i++) {
		uint64_t n;
		if (take_num(&p, end, 10, ':', &n) < 0)
			return -1;
		if (n > FM_JOURNAL_STRING_MAX || (uint64_t)(end - p) < n + 1 ||
		    p[n] != ',' || memchr(p, '\0', n) != NULL)
			return -1;
		rc->s[i] = p;
		rc->slen[i] = n;
		p += n + 1;
	}
	if (p != end)
		return -1;
	rc->r.op = (enum fm_journal_op)rc->op;
	rc->r.time = (int64_t)t;
	rc->r.flags_add = (uint32_t)fa;
	rc->r.flags_del = (uint32_t)fd;
	rc->mark = mark;
	if (is_change(rc->op))
		return rc->slen[0] > 0 && rc->slen[1] > 0 &&
		               (rc->op != FM_JOURNAL_MOVE || rc->slen[2] > 0)
		           ? 0
		           : -1;
	return rc->op == OP_HEAD || rc->op == OP_ACK ? 0 : -1;
}

enum parse_result { REC_OK, REC_TORN, REC_BAD };

/* Parses the record at b (avail bytes to the end of the file). */
static enum parse_result
parse_record(const char *b, size_t avail, struct rec *rc, const char **why)
{
	memset(rc, 0, sizeof(*rc));
	if (avail < HEADER_LEN) {
		if (header_shape(b, avail) || all_zero(b, avail))
			return REC_TORN;
		*why = "bad record header";
		return REC_BAD;
	}
	char hsum[8];
	sha256_hex(b, HSUM_AT, hsum, sizeof(hsum));
	if (!header_shape(b, HEADER_LEN) || memcmp(hsum, b + HSUM_AT, 8) != 0) {
		if (all_zero(b, avail))
			return REC_TORN;
		*why = "bad record header";
		return REC_BAD;
	}
	rc->r.seq = hex_val(b + 5, 16);
	size_t len = (size_t)hex_val(b + 22, 8);
	if (len > PAYLOAD_MAX) {
		*why = "record too long";
		return REC_BAD;
	}
	if (avail < HEADER_LEN + len + 1)
		return REC_TORN;
	char psum[16];
	sha256_hex(b + HEADER_LEN, len, psum, sizeof(psum));
	if (memcmp(psum, b + 31, 16) != 0 || b[HEADER_LEN + len] != '\n') {
		*why = "record checksum mismatch";
		return REC_BAD;
	}
	if (parse_payload(b + HEADER_LEN, len, rc) < 0) {
		*why = "malformed record";
		return REC_BAD;
	}
	rc->size = HEADER_LEN + len + 1;
	return REC_OK;
}

/* What a scan of the whole file found. */
struct scan {
	uint64_t end, last_seq, acked;
	bool torn;
};

static int
damaged(const char *path, uint64_t off, const char *why, struct fm_error *err)
{
	fm_error_set(err, FM_ERR_LOCAL,
	             _("The change journal %s is damaged at byte %llu; "
	               "changes from there on cannot be trusted."),
	             path, (unsigned long long)off);
	return fm_error_detail(err, "%s: %s at offset %llu", path, why,
	                       (unsigned long long)off);
}

/* Checks every record of data and fills sc. */
static int
scan(const char *path, const char *data, size_t len, struct scan *sc,
     struct fm_error *err)
{
	memset(sc, 0, sizeof(*sc));
	uint64_t off = 0, prev = 0;
	while (off < len) {
		struct rec rc;
		const char *why = NULL;
		enum parse_result pr =
		    parse_record(data + off, len - off, &rc, &why);
		if (pr == REC_TORN) {
			sc->torn = true;
			break;
		}
		if (pr == REC_BAD)
			return damaged(path, off, why, err);
		uint64_t seq = rc.r.seq;
		if (rc.op == OP_HEAD) {
			if (off != 0 || rc.mark < seq)
				return damaged(path, off, "misplaced head",
				               err);
			sc->acked = seq;
			sc->last_seq = rc.mark;
		} else {
			if (seq <= prev || seq == 0)
				return damaged(path, off,
				               "sequence out of order", err);
			if (rc.op == OP_ACK) {
				if (rc.mark >= seq)
					return damaged(path, off, "bad ack",
					               err);
				if (rc.mark > sc->acked)
					sc->acked = rc.mark;
			}
		}
		prev = seq;
		if (seq > sc->last_seq)
			sc->last_seq = seq;
		off += rc.size;
	}
	sc->end = off;
	return 0;
}

/* Copies a record's string out for a callback; NULL if empty. */
static char *
rec_string(const struct rec *rc, int i)
{
	return rc->slen[i] == 0 ? NULL : xstrndup(rc->s[i], rc->slen[i]);
}

/* Calls fn (if not NULL) for each pending record of an already scanned
 * buffer, and appends each record's bytes to copy (if not NULL). */
static int
walk_pending(const char *data, const struct scan *sc, fm_journal_replay_fn *fn,
             void *ctx, struct fm_buf *copy, struct fm_journal *j,
             struct fm_error *err)
{
	for (uint64_t off = 0; off < sc->end;) {
		struct rec rc;
		const char *why;
		parse_record(data + off, sc->end - off, &rc, &why);
		off += rc.size;
		if (!is_change(rc.op) || rc.r.seq <= sc->acked)
			continue;
		if (copy != NULL)
			fm_buf_append(copy, data + off - rc.size, rc.size);
		if (j != NULL) {
			if (j->npending == j->cap) {
				j->cap = j->cap == 0 ? 64 : j->cap * 2;
				j->pending = xreallocarray(j->pending, j->cap,
				                           sizeof(uint64_t));
			}
			j->pending[j->npending++] = rc.r.seq;
		}
		if (fn == NULL)
			continue;
		char *s[NSTRINGS];
		for (int i = 0; i < NSTRINGS; i++)
			s[i] = rec_string(&rc, i);
		rc.r.folder = s[0];
		rc.r.base = s[1];
		rc.r.to_folder = s[2];
		rc.r.to_base = s[3];
		rc.r.keywords_add = s[4];
		rc.r.keywords_del = s[5];
		int r = fn(ctx, &rc.r, err);
		for (int i = 0; i < NSTRINGS; i++)
			free(s[i]);
		if (r < 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Files.
 */

static int
read_fd(int fd, const char *path, char **data_r, size_t *len_r,
        struct fm_error *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return fm_error_errno(err, FM_ERR_LOCAL, errno,
		                      _("Cannot read the file %s"), path);
	if ((uint64_t)st.st_size > JOURNAL_FILE_MAX)
		return fm_error_errno(err, FM_ERR_LOCAL, EFBIG,
		                      _("Cannot read the file %s"), path);
	size_t size = (size_t)st.st_size, got = 0;
	char *data = xmalloc(size + 1);
	while (got < size) {
		ssize_t n = pread(fd, data + got, size - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(data);
			return fm_error_errno(err, FM_ERR_LOCAL, e,
			                      _("Cannot read the file %s"),
			                      path);
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	data[got] = '\0';
	*data_r = data;
	*len_r = got;
	return 0;
}

/* (Re)opens the file and rebuilds the in-memory view from it. */
static int
load(struct fm_journal *j, struct fm_error *err)
{
	if (j->fd >= 0)
		close(j->fd);
	j->npending = 0;
	j->fd = open(j->path, O_RDWR | O_CLOEXEC);
	if (j->fd < 0 && errno == ENOENT) {
		j->fd =
		    open(j->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (j->fd >= 0 && fm_fsync_parent(j->path, NULL) < 0) {
			fm_error_errno(err, FM_ERR_LOCAL, errno,
			               _("Cannot create the file %s"), j->path);
			goto broken;
		}
	}
	if (j->fd < 0) {
		fm_error_errno(err, FM_ERR_LOCAL, errno,
		               _("Cannot open the file %s"), j->path);
		return -1;
	}
	char *data;
	size_t len;
	struct scan sc;
	if (read_fd(j->fd, j->path, &data, &len, err) < 0)
		goto broken;
	if (scan(j->path, data, len, &sc, err) < 0) {
		free(data);
		goto broken;
	}
	walk_pending(data, &sc, NULL, NULL, NULL, j, err);
	free(data);
	j->end = sc.end;
	j->torn = sc.torn;
	j->last_seq = sc.last_seq;
	j->acked = sc.acked;
	return 0;
broken:
	close(j->fd);
	j->fd = -1;
	return -1;
}

int
fm_journal_open(const char *path, struct fm_journal **journal_r,
                struct fm_error *err)
{
	*journal_r = NULL;
	struct fm_journal *j = xcalloc(1, sizeof(*j));
	j->path = xstrdup(path);
	j->fd = -1;
	/* A compaction that did not reach its rename left this behind; the
	 * journal itself is still the whole truth. */
	char *tmp = xasprintf("%s.tmp", path);
	unlink(tmp);
	free(tmp);
	if (load(j, err) < 0) {
		fm_journal_close(&j);
		return -1;
	}
	*journal_r = j;
	return 0;
}

void
fm_journal_close(struct fm_journal **journal)
{
	if (journal == NULL || *journal == NULL)
		return;
	struct fm_journal *j = *journal;
	if (j->fd >= 0)
		close(j->fd);
	free(j->pending);
	free(j->path);
	free(j);
	*journal = NULL;
}

static int
broken_error(struct fm_journal *j, struct fm_error *err)
{
	return fm_error_set(err, FM_ERR_LOCAL,
	                    _("The change journal %s could not be written "
	                      "and must be opened again"),
	                    j->path);
}

/* Appends bytes with one write and one fsync; cuts the file back on
 * failure. */
static int
append_bytes(struct fm_journal *j, const struct fm_buf *b, struct fm_error *err)
{
	if (j->fd < 0)
		return broken_error(j, err);
	if (j->torn) {
		if (ftruncate(j->fd, (off_t)j->end) < 0)
			return fm_error_errno(err, FM_ERR_LOCAL, errno,
			                      _("Cannot write the file %s"),
			                      j->path);
		j->torn = false;
	}
	ssize_t n = pwrite(j->fd, b->data, b->len, (off_t)j->end);
	int e = n < 0 ? errno : ENOSPC;
	if (n == (ssize_t)b->len && fdatasync(j->fd) == 0)
		return 0;
	if (n == (ssize_t)b->len)
		e = errno;
	fm_error_errno(err, FM_ERR_LOCAL, e, _("Cannot write the file %s"),
	               j->path);
	/* Take back whatever reached the file, so that a record the caller
	 * was told failed is never replayed. If even that fails, stop. */
	if (ftruncate(j->fd, (off_t)j->end) < 0 || fdatasync(j->fd) < 0) {
		close(j->fd);
		j->fd = -1;
	}
	return -1;
}

static bool
str_ok(const char *s, bool required)
{
	return s == NULL ? !required
	                 : (!required || s[0] != '\0') &&
	                       strlen(s) <= FM_JOURNAL_STRING_MAX;
}

int
fm_journal_append(struct fm_journal *j, struct fm_journal_record *recs,
                  size_t n, struct fm_error *err)
{
	for (size_t i = 0; i < n; i++) {
		const struct fm_journal_record *r = &recs[i];
		if (!is_change((char)r->op) || r->time < 0 ||
		    !str_ok(r->folder, true) || !str_ok(r->base, true) ||
		    !str_ok(r->to_folder, r->op == FM_JOURNAL_MOVE) ||
		    !str_ok(r->to_base, false) ||
		    !str_ok(r->keywords_add, false) ||
		    !str_ok(r->keywords_del, false)) {
			fm_error_set(err, FM_ERR_LOCAL,
			             _("Internal error: a bad journal record"));
			return fm_error_detail(err, "record %zu of %zu", i, n);
		}
	}
	struct fm_buf b;
	fm_buf_init(&b, (size_t)JOURNAL_FILE_MAX);
	int64_t now = (int64_t)time(NULL);
	for (size_t i = 0; i < n; i++) {
		struct fm_journal_record *r = &recs[i];
		encode(&b, j->last_seq + 1 + i, (char)r->op,
		       r->time != 0 ? r->time : now, r, 0);
	}
	int rc = append_bytes(j, &b, err);
	size_t written = b.len;
	fm_buf_free(&b);
	if (rc < 0)
		return -1;
	j->end += written;
	for (size_t i = 0; i < n; i++) {
		recs[i].seq = ++j->last_seq;
		if (recs[i].time == 0)
			recs[i].time = now;
		if (j->npending == j->cap) {
			j->cap = j->cap == 0 ? 64 : j->cap * 2;
			j->pending =
			    xreallocarray(j->pending, j->cap, sizeof(uint64_t));
		}
		j->pending[j->npending++] = recs[i].seq;
	}
	return 0;
}

int
fm_journal_replay(struct fm_journal *j, fm_journal_replay_fn *fn, void *ctx,
                  struct fm_error *err)
{
	int fd = open(j->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fm_error_errno(err, FM_ERR_LOCAL, errno,
		                      _("Cannot open the file %s"), j->path);
	char *data;
	size_t len;
	struct scan sc;
	int rc = read_fd(fd, j->path, &data, &len, err);
	close(fd);
	if (rc < 0)
		return -1;
	rc = scan(j->path, data, len, &sc, err);
	if (rc == 0)
		rc = walk_pending(data, &sc, fn, ctx, NULL, NULL, err);
	free(data);
	return rc;
}

int
fm_journal_ack(struct fm_journal *j, uint64_t seq, struct fm_error *err)
{
	if (seq <= j->acked)
		return 0;
	if (seq > j->last_seq) {
		fm_error_set(err, FM_ERR_LOCAL,
		             _("Internal error: a bad journal record"));
		return fm_error_detail(err,
		                       "ack of %llu past the last "
		                       "sequence %llu",
		                       (unsigned long long)seq,
		                       (unsigned long long)j->last_seq);
	}
	struct fm_buf b;
	fm_buf_init(&b, PAYLOAD_MAX * 2);
	encode(&b, j->last_seq + 1, OP_ACK, (int64_t)time(NULL), NULL, seq);
	int rc = append_bytes(j, &b, err);
	size_t written = b.len;
	fm_buf_free(&b);
	if (rc < 0)
		return -1;
	j->end += written;
	j->last_seq++;
	j->acked = seq;
	size_t k = 0;
	while (k < j->npending && j->pending[k] <= seq)
		k++;
	memmove(j->pending, j->pending + k,
	        (j->npending - k) * sizeof(*j->pending));
	j->npending -= k;
	return 0;
}

int
fm_journal_compact(struct fm_journal *j, struct fm_error *err)
{
	if (j->fd < 0)
		return broken_error(j, err);
	char *data;
	size_t len;
	struct scan sc;
	if (read_fd(j->fd, j->path, &data, &len, err) < 0)
		return -1;
	if (scan(j->path, data, len, &sc, err) < 0) {
		free(data);
		return -1;
	}
	struct fm_buf b;
	fm_buf_init(&b, (size_t)JOURNAL_FILE_MAX);
	encode(&b, sc.acked, OP_HEAD, (int64_t)time(NULL), NULL, sc.last_seq);
	walk_pending(data, &sc, NULL, NULL, &b, NULL, err);
	free(data);
	struct iovec iov = {.iov_base = b.data, .iov_len = b.len};
	int rc = fm_file_replace(j->path, &iov, 1, err);
	fm_buf_free(&b);
	/* Whichever file is in place now, read it again: the handle must
	 * follow the file at path, not the inode it had open. */
	struct fm_error again;
	if (load(j, rc < 0 ? &again : err) < 0 && rc == 0)
		rc = -1;
	return rc;
}

uint64_t
fm_journal_last_seq(const struct fm_journal *j)
{
	return j->last_seq;
}

uint64_t
fm_journal_acked(const struct fm_journal *j)
{
	return j->acked;
}

size_t
fm_journal_pending(const struct fm_journal *j)
{
	return j->npending;
}

uint64_t
fm_journal_size(const struct fm_journal *j)
{
	return j->end;
}

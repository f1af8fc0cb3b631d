/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "store/maildir.h"
#include "store/summary.h"

#define SUMMARY_MAGIC "fulmar-summary"
#define SUMMARY_VERSION 1
#define SUMMARY_FIELDS 12
/* A summary this large is not one fulmar wrote. */
#define SUMMARY_FILE_MAX ((size_t)1 << 31)
#define TOMBSTONE UINT32_MAX

struct entry {
	struct fm_summary_entry e;
	bool owned; /* strings malloc'ed (else they live in s->buf or logbuf) */
	bool dirty; /* changed since the file was last written */
};

struct fm_summary {
	struct entry *v;
	size_t n, cap;
	char *buf;    /* the loaded file; loaded entries point into it */
	char *logbuf; /* the records of its change log, likewise */
	/* The snapshot on disk ("COUNT BYTES DIGEST" of its header; NULL:
	 * none known) and its change log (see base.h): its valid length, and
	 * the entries removed since the last write. */
	char *snap_id;
	size_t snap_bytes, log_end;
	char **removed;
	size_t n_removed;
	/* base name -> index + 1; 0 empty, TOMBSTONE deleted. */
	uint32_t *slots;
	size_t nslots, used; /* used: live + tombstones */
	int64_t stamp_cur, stamp_new;
};

static uint64_t
hash_str(const char *s)
{
	return fm_hash_mem(s, strlen(s));
}

static void
slots_rebuild(struct fm_summary *s, size_t want)
{
	size_t nslots = 64;
	while (nslots < 2 * want)
		nslots *= 2;
	free(s->slots);
	s->slots = xcalloc(nslots, sizeof(*s->slots));
	s->nslots = nslots;
	s->used = s->n;
	for (size_t i = 0; i < s->n; i++) {
		size_t k = hash_str(s->v[i].e.base) & (nslots - 1);
		while (s->slots[k] != 0)
			k = (k + 1) & (nslots - 1);
		s->slots[k] = (uint32_t)i + 1;
	}
}

/* The slot holding base, or SIZE_MAX. */
static size_t
slot_of(const struct fm_summary *s, const char *base)
{
	if (s->nslots == 0)
		return SIZE_MAX;
	for (size_t k = hash_str(base) & (s->nslots - 1);;
	     k = (k + 1) & (s->nslots - 1)) {
		uint32_t v = s->slots[k];
		if (v == 0)
			return SIZE_MAX;
		if (v != TOMBSTONE && strcmp(s->v[v - 1].e.base, base) == 0)
			return k;
	}
}

static void
slot_add(struct fm_summary *s, size_t idx)
{
	if (2 * (s->used + 1) > s->nslots)
		slots_rebuild(s, s->n + 1);
	size_t k = hash_str(s->v[idx].e.base) & (s->nslots - 1);
	while (s->slots[k] != 0 && s->slots[k] != TOMBSTONE)
		k = (k + 1) & (s->nslots - 1);
	if (s->slots[k] == 0)
		s->used++;
	s->slots[k] = (uint32_t)idx + 1;
}

struct fm_summary *
fm_summary_new(void)
{
	struct fm_summary *s = xcalloc(1, sizeof(*s));
	slots_rebuild(s, 0);
	return s;
}

static void
entry_free(struct entry *en)
{
	if (!en->owned)
		return;
	free((char *)en->e.base);
	free((char *)en->e.file);
	free((char *)en->e.indexed);
	free((char *)en->e.from);
	free((char *)en->e.to);
	free((char *)en->e.subject);
	free((char *)en->e.message_id);
	free((char *)en->e.in_reply_to);
	free((char *)en->e.references);
}

void
fm_summary_free(struct fm_summary **sp)
{
	struct fm_summary *s = *sp;
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		entry_free(&s->v[i]);
	free(s->v);
	free(s->buf);
	free(s->logbuf);
	free(s->snap_id);
	for (size_t i = 0; i < s->n_removed; i++)
		free(s->removed[i]);
	free(s->removed);
	free(s->slots);
	free(s);
	*sp = NULL;
}

size_t
fm_summary_count(const struct fm_summary *s)
{
	return s->n;
}

const struct fm_summary_entry *
fm_summary_at(const struct fm_summary *s, size_t i)
{
	return i < s->n ? &s->v[i].e : NULL;
}

const struct fm_summary_entry *
fm_summary_find(struct fm_summary *s, const char *base)
{
	size_t k = slot_of(s, base);
	return k == SIZE_MAX ? NULL : &s->v[s->slots[k] - 1].e;
}

static char *
dup_or_null(const char *str)
{
	return str != NULL && str[0] != '\0' ? xstrdup(str) : NULL;
}

void
fm_summary_put(struct fm_summary *s, const struct fm_summary_entry *in)
{
	struct entry en = {.e = *in, .owned = true, .dirty = true};
	en.e.base = xstrdup(in->base);
	en.e.file = xstrdup(in->file);
	en.e.indexed = dup_or_null(in->indexed);
	en.e.from = dup_or_null(in->from);
	en.e.to = dup_or_null(in->to);
	en.e.subject = dup_or_null(in->subject);
	en.e.message_id = dup_or_null(in->message_id);
	en.e.in_reply_to = dup_or_null(in->in_reply_to);
	en.e.references = dup_or_null(in->references);
	size_t k = slot_of(s, in->base);
	if (k != SIZE_MAX) {
		struct entry *old = &s->v[s->slots[k] - 1];
		entry_free(old);
		*old = en;
		return;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
	}
	s->v[s->n] = en;
	slot_add(s, s->n);
	s->n++;
}

bool
fm_summary_remove(struct fm_summary *s, const char *base)
{
	size_t k = slot_of(s, base);
	if (k == SIZE_MAX)
		return false;
	size_t i = s->slots[k] - 1;
	s->slots[k] = TOMBSTONE;
	s->removed =
	    xreallocarray(s->removed, s->n_removed + 1, sizeof(*s->removed));
	s->removed[s->n_removed++] = xstrdup(base);
	entry_free(&s->v[i]);
	size_t last = s->n - 1;
	if (i != last) {
		/* The last entry moves into the hole: repoint its slot. */
		size_t kl = slot_of(s, s->v[last].e.base);
		s->v[i] = s->v[last];
		s->slots[kl] = (uint32_t)i + 1;
	}
	s->n--;
	if (s->used > 3 * (s->n + 16))
		slots_rebuild(s, s->n);
	return true;
}

bool
fm_summary_set_file(struct fm_summary *s, const char *base, const char *file,
                    uint32_t flags)
{
	size_t k = slot_of(s, base);
	if (k == SIZE_MAX)
		return false;
	struct entry *en = &s->v[s->slots[k] - 1];
	if (en->owned) {
		free((char *)en->e.file);
		en->e.file = xstrdup(file);
		en->dirty = true;
	} else {
		/* Strings in the load buffer stay; take copies of all so the
		 * entry owns a consistent set. */
		struct fm_summary_entry e = en->e;
		e.file = file;
		e.flags = flags;
		fm_summary_put(s, &e);
		return true;
	}
	en->e.flags = flags;
	return true;
}

void
fm_summary_set_indexed(struct fm_summary *s, const char *base,
                       const char *indexed_file)
{
	size_t k = slot_of(s, base);
	if (k == SIZE_MAX)
		return;
	struct entry *en = &s->v[s->slots[k] - 1];
	if (!en->owned) {
		struct fm_summary_entry e = en->e;
		e.indexed = indexed_file;
		fm_summary_put(s, &e);
		return;
	}
	free((char *)en->e.indexed);
	en->e.indexed = dup_or_null(indexed_file);
	en->dirty = true;
}

static int
cmp_date_desc(const void *a, const void *b, void *ctx)
{
	const struct fm_summary *s = ctx;
	const struct fm_summary_entry *x = &s->v[*(const size_t *)a].e;
	const struct fm_summary_entry *y = &s->v[*(const size_t *)b].e;
	if (x->date != y->date)
		return x->date > y->date ? -1 : 1;
	return strcmp(x->base, y->base);
}

size_t *
fm_summary_by_date(const struct fm_summary *s)
{
	size_t *idx = xmalloc((s->n ? s->n : 1) * sizeof(*idx));
	for (size_t i = 0; i < s->n; i++)
		idx[i] = i;
	qsort_r(idx, s->n, sizeof(*idx), cmp_date_desc, (void *)s);
	return idx;
}

/* ------------------------------------------------------------------------
 * Files.
 */

/* Appends e as one record line. */
static void
put_record(struct fm_buf *b, const struct fm_summary_entry *e)
{
	fm_record_put(b, e->base);
	fm_buf_append_char(b, ' ');
	fm_record_put(b, e->file);
	fm_buf_append_char(b, ' ');
	fm_record_put_u64(b, e->flags, 16);
	fm_buf_append_char(b, ' ');
	fm_record_put_u64(b, (uint64_t)(e->date > 0 ? e->date : 0), 10);
	fm_buf_append_char(b, ' ');
	fm_record_put_u64(b, e->size, 10);
	fm_buf_append_char(b, ' ');
	fm_record_put(b, e->indexed);
	fm_buf_append_char(b, ' ');
	const char *strs[] = {e->from,       e->to,          e->subject,
	                      e->message_id, e->in_reply_to, e->references};
	for (size_t k = 0; k < FM_ARRAY_LEN(strs); k++) {
		if (k > 0)
			fm_buf_append_char(b, ' ');
		fm_record_put(b, strs[k]);
	}
	fm_buf_append_char(b, '\n');
}

/* Everything is on disk now. */
static void
written(struct fm_summary *s)
{
	for (size_t i = 0; i < s->n; i++)
		s->v[i].dirty = false;
	for (size_t i = 0; i < s->n_removed; i++)
		free(s->removed[i]);
	free(s->removed);
	s->removed = NULL;
	s->n_removed = 0;
}

/* Appends what changed since the last write to the change log, while the
 * log stays under a quarter of the snapshot: 1 when it did, 0 when a new
 * snapshot is due instead. Without fdatasync: the summary is derived, and
 * a chunk lost to a power cut leaves it older than cur/ and new/, whose
 * change times then differ from its stamp, so the folder is listed again
 * (fm_summary_rescan). */
static int
save_changes(struct fm_summary *s, const char *path, struct fm_error *err)
{
	if (s->snap_id == NULL)
		return 0;
	struct fm_buf chunk;
	fm_buf_init(&chunk, SUMMARY_FILE_MAX);
	fm_buf_printf(&chunk, "stamp %lld %lld\n", (long long)s->stamp_cur,
	              (long long)s->stamp_new);
	for (size_t i = 0; i < s->n_removed; i++) {
		fm_buf_append(&chunk, "- ", 2);
		fm_record_put(&chunk, s->removed[i]);
		fm_buf_append_char(&chunk, '\n');
	}
	for (size_t i = 0; i < s->n; i++) {
		if (!s->v[i].dirty)
			continue;
		fm_buf_append(&chunk, "+ ", 2);
		put_record(&chunk, &s->v[i].e);
	}
	int r =
	    fm_reclog_append_small(path, s->snap_id, &s->log_end, s->snap_bytes,
	                           chunk.data, chunk.len, false, err);
	if (r == 1)
		written(s);
	fm_buf_free(&chunk);
	return r;
}

int
fm_summary_save(struct fm_summary *s, const char *path, struct fm_error *err)
{
	int r = save_changes(s, path, err);
	if (r != 0)
		return r < 0 ? -1 : 0;
	struct fm_buf body;
	fm_buf_init(&body, SUMMARY_FILE_MAX);
	fm_buf_printf(&body, "stamp %lld %lld\n", (long long)s->stamp_cur,
	              (long long)s->stamp_new);
	for (size_t i = 0; i < s->n; i++)
		put_record(&body, &s->v[i].e);
	if (fm_buf_append_char(&body, '\n') < 0) {
		fm_buf_free(&body);
		return fm_error_set(err, FM_ERR_LOCAL,
		                    _("the summary for %s is too large"), path);
	}
	body.len--; /* the probe */
	char digest[65], header[256];
	fm_record_digest(body.data, body.len, digest);
	int hl =
	    snprintf(header, sizeof(header), "%s %d %zu %zu %s\n",
	             SUMMARY_MAGIC, SUMMARY_VERSION, s->n, body.len, digest);
	struct iovec iov[2] = {{header, (size_t)hl}, {body.data, body.len}};
	int ret = fm_file_replace(path, iov, 2, err);
	if (ret == 0) {
		/* The log's changes are in the new snapshot. */
		fm_reclog_remove(path);
		free(s->snap_id);
		s->snap_id = xasprintf("%zu %zu %s", s->n, body.len, digest);
		s->snap_bytes = body.len;
		s->log_end = 0;
		written(s);
	}
	fm_buf_free(&body);
	return ret;
}

static int
damaged(const char *path, const char *why, size_t line, struct fm_error *err)
{
	fm_error_set(err, FM_ERR_LOCAL,
	             _("The folder summary %s is damaged; it will be rebuilt "
	               "from the mail folder."),
	             path);
	return fm_error_detail(err, "%s: %s (line %zu)", path, why, line);
}

/* Parses one record line (NUL-terminated, in place) into en, whose
 * strings then point into it. */
static int
parse_record(char *p, struct entry *en)
{
	char *f[SUMMARY_FIELDS];
	uint64_t flags, date, size;
	char *str[8], *indexed;
	if (fm_record_split(p, f, SUMMARY_FIELDS) < 0 ||
	    fm_record_unescape(f[0], &str[0]) < 0 || str[0] == NULL ||
	    fm_record_unescape(f[1], &str[1]) < 0 || str[1] == NULL ||
	    fm_record_parse_u64(f[2], 16, UINT32_MAX, &flags) < 0 ||
	    fm_record_parse_u64(f[3], 10, INT64_MAX, &date) < 0 ||
	    fm_record_parse_u64(f[4], 10, INT64_MAX, &size) < 0 ||
	    fm_record_unescape(f[5], &indexed) < 0)
		return -1;
	for (int k = 0; k < 6; k++)
		if (fm_record_unescape(f[6 + k], &str[2 + k]) < 0)
			return -1;
	*en = (struct entry){
	    .e =
	        {
	            .base = str[0],
	            .file = str[1],
	            .flags = (uint32_t)flags,
	            .date = (int64_t)date,
	            .size = size,
	            .indexed = indexed,
	            .from = str[2],
	            .to = str[3],
	            .subject = str[4],
	            .message_id = str[5],
	            .in_reply_to = str[6],
	            .references = str[7],
	        },
	    .owned = false,
	};
	return 0;
}

/* Parses "BASE FILE FLAGS" (in place) into e's base, file and flags. */
static int
parse_file_change(char *p, struct fm_summary_entry *e)
{
	char *f[3], *base, *file;
	uint64_t flags;
	if (fm_record_split(p, f, 3) < 0 ||
	    fm_record_unescape(f[0], &base) < 0 || base == NULL ||
	    fm_record_unescape(f[1], &file) < 0 || file == NULL ||
	    fm_record_parse_u64(f[2], 16, UINT32_MAX, &flags) < 0)
		return -1;
	*e = (struct fm_summary_entry){
	    .base = base, .file = file, .flags = (uint32_t)flags};
	return 0;
}

/* Parses a "stamp CUR NEW" line (in place). */
static int
parse_stamp(char *p, struct fm_summary *s)
{
	char *f[3];
	uint64_t a, b;
	if (fm_record_split(p, f, 3) < 0 || strcmp(f[0], "stamp") != 0 ||
	    fm_record_parse_u64(f[1], 10, INT64_MAX, &a) < 0 ||
	    fm_record_parse_u64(f[2], 10, INT64_MAX, &b) < 0)
		return -1;
	s->stamp_cur = (int64_t)a;
	s->stamp_new = (int64_t)b;
	return 0;
}

/* Parses the body (NUL-terminated, in s->buf) into entries that point
 * into it. */
static int
parse_body(struct fm_summary *s, char *p, size_t count, const char *path,
           struct fm_error *err)
{
	size_t lineno = 1;
	char *nl = strchr(p, '\n');
	if (nl == NULL)
		return damaged(path, "no stamp", lineno, err);
	*nl = '\0';
	if (parse_stamp(p, s) < 0)
		return damaged(path, "bad stamp", lineno, err);
	p = nl + 1;
	s->cap = count ? count : 1;
	s->v = xcalloc(s->cap, sizeof(*s->v));
	while (*p != '\0') {
		lineno++;
		nl = strchr(p, '\n');
		if (nl == NULL)
			return damaged(path, "unterminated line", lineno, err);
		*nl = '\0';
		struct entry en;
		if (s->n >= count || parse_record(p, &en) < 0)
			return damaged(path, "bad record", lineno, err);
		if (slot_of(s, en.e.base) != SIZE_MAX)
			return damaged(path, "duplicate entry", lineno, err);
		s->v[s->n] = en;
		slot_add(s, s->n);
		s->n++;
		p = nl + 1;
	}
	if (s->n != count)
		return damaged(path, "entry count", lineno, err);
	return 0;
}

/* Applies the change log's records (NUL-terminated, in s->logbuf). */
static int
apply_log(struct fm_summary *s, char *p, const char *path, struct fm_error *err)
{
	size_t lineno = 0;
	while (*p != '\0') {
		lineno++;
		char *nl = strchr(p, '\n');
		if (nl == NULL)
			return damaged(path, "log: unterminated line", lineno,
			               err);
		*nl = '\0';
		if (p[0] == '-' && p[1] == ' ') {
			char *base;
			if (fm_record_unescape(p + 2, &base) < 0 ||
			    base == NULL)
				return damaged(path, "log: bad removal", lineno,
				               err);
			fm_summary_remove(s, base);
		} else if (p[0] == '+' && p[1] == ' ') {
			struct entry en;
			if (parse_record(p + 2, &en) < 0)
				return damaged(path, "log: bad record", lineno,
				               err);
			size_t k = slot_of(s, en.e.base);
			if (k != SIZE_MAX) {
				struct entry *old = &s->v[s->slots[k] - 1];
				entry_free(old);
				*old = en;
			} else {
				if (s->n == s->cap) {
					s->cap = s->cap ? 2 * s->cap : 64;
					s->v = xreallocarray(s->v, s->cap,
					                     sizeof(*s->v));
				}
				s->v[s->n] = en;
				slot_add(s, s->n);
				s->n++;
			}
		} else if (p[0] == '=' && p[1] == ' ') {
			struct fm_summary_entry e;
			if (parse_file_change(p + 2, &e) < 0)
				return damaged(path, "log: bad file change",
				               lineno, err);
			fm_summary_set_file(s, e.base, e.file, e.flags);
		} else if (parse_stamp(p, s) < 0) {
			return damaged(path, "log: bad line", lineno, err);
		}
		p = nl + 1;
	}
	/* What the log holds is on disk. */
	written(s);
	return 0;
}

/* Parses the header line (NUL-terminated, in place); NULL when it is
 * good, else what is wrong with it. *digest_r points into line. */
static const char *
parse_header(char *line, uint64_t *count_r, uint64_t *bytes_r,
             const char **digest_r)
{
	char *f[5];
	uint64_t version;
	if (fm_record_split(line, f, 5) < 0 ||
	    strcmp(f[0], SUMMARY_MAGIC) != 0 ||
	    fm_record_parse_u64(f[1], 10, 1000, &version) < 0 ||
	    fm_record_parse_u64(f[2], 10, SUMMARY_FILE_MAX, count_r) < 0 ||
	    fm_record_parse_u64(f[3], 10, SUMMARY_FILE_MAX, bytes_r) < 0)
		return "bad header";
	if (version != SUMMARY_VERSION)
		return "unknown version";
	*digest_r = f[4];
	return NULL;
}

int
fm_summary_load(const char *path, struct fm_summary **s_r, struct fm_error *err)
{
	*s_r = NULL;
	char *data = NULL;
	size_t len = 0;
	int r = fm_record_read_file(path, SUMMARY_FILE_MAX, &data, &len, err);
	if (r < 0)
		return -1;
	struct fm_summary *s = fm_summary_new();
	if (r == 1) {
		*s_r = s; /* no summary yet: empty, and stale */
		return 0;
	}
	s->buf = data;
	char *nl = memchr(data, '\n', len);
	uint64_t count, bytes;
	const char *want;
	char digest[65];
	int ret = -1;
	if (nl == NULL) {
		damaged(path, "no header", 1, err);
		goto out;
	}
	*nl = '\0';
	const char *why = parse_header(data, &count, &bytes, &want);
	if (why != NULL) {
		damaged(path, why, 1, err);
		goto out;
	}
	char *body = nl + 1;
	size_t body_len = len - (size_t)(body - data);
	if (body_len != bytes || memchr(body, '\0', body_len) != NULL) {
		damaged(path, "length", 1, err);
		goto out;
	}
	fm_record_digest(body, body_len, digest);
	if (strcmp(digest, want) != 0) {
		damaged(path, "checksum", 1, err);
		goto out;
	}
	ret = parse_body(s, body, (size_t)count, path, err);
	if (ret == 0) {
		s->snap_id =
		    xasprintf("%zu %zu %s", (size_t)count, body_len, digest);
		s->snap_bytes = body_len;
		size_t log_len;
		ret = fm_reclog_read(path, s->snap_id, SUMMARY_FILE_MAX,
		                     &s->logbuf, &log_len, &s->log_end, err);
		if (ret == 0 && s->logbuf != NULL)
			ret = apply_log(s, s->logbuf, path, err);
	}
out:
	if (ret < 0) {
		fm_summary_free(&s);
		return -1;
	}
	*s_r = s;
	return 0;
}

/* ------------------------------------------------------------------------
 * Changes made while the summary is not loaded.
 */

void
fm_summary_change_init(struct fm_summary_change *c,
                       enum fm_summary_change_kind kind,
                       const struct fm_summary_entry *e)
{
	*c = (struct fm_summary_change){.kind = kind};
	c->e.base = xstrdup(e->base);
	if (kind == FM_SUMMARY_REMOVE)
		return;
	c->e.file = xstrdup(e->file);
	c->e.flags = e->flags;
	if (kind == FM_SUMMARY_FILE)
		return;
	c->e.date = e->date;
	c->e.size = e->size;
	c->e.indexed = dup_or_null(e->indexed);
	c->e.from = dup_or_null(e->from);
	c->e.to = dup_or_null(e->to);
	c->e.subject = dup_or_null(e->subject);
	c->e.message_id = dup_or_null(e->message_id);
	c->e.in_reply_to = dup_or_null(e->in_reply_to);
	c->e.references = dup_or_null(e->references);
}

void
fm_summary_change_free(struct fm_summary_change *c)
{
	struct entry en = {.e = c->e, .owned = true};
	entry_free(&en);
	memset(c, 0, sizeof(*c));
}

void
fm_summary_apply(struct fm_summary *s, const struct fm_summary_change *v,
                 size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct fm_summary_entry *e = &v[i].e;
		switch (v[i].kind) {
		case FM_SUMMARY_PUT:
			fm_summary_put(s, e);
			break;
		case FM_SUMMARY_FILE:
			fm_summary_set_file(s, e->base, e->file, e->flags);
			break;
		case FM_SUMMARY_REMOVE:
			fm_summary_remove(s, e->base);
			break;
		}
	}
}

/* The id of the snapshot at path ("COUNT BYTES DIGEST") and the length
 * of its body, from its header line alone; NULL if there is no readable
 * snapshot. */
static char *
snapshot_id(const char *path, size_t *bytes_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char line[512];
	ssize_t got = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (got <= 0)
		return NULL;
	line[got] = '\0';
	char *nl = strchr(line, '\n');
	if (nl == NULL)
		return NULL;
	*nl = '\0';
	uint64_t count, bytes;
	const char *digest;
	if (parse_header(line, &count, &bytes, &digest) != NULL)
		return NULL;
	*bytes_r = (size_t)bytes;
	return xasprintf("%zu %zu %s", (size_t)count, (size_t)bytes, digest);
}

int
fm_summary_append(const char *path, const struct fm_summary_change *v, size_t n,
                  struct fm_error *err)
{
	if (n == 0)
		return 1;
	size_t snap_bytes = 0, log_len = 0, log_end = 0;
	char *id = snapshot_id(path, &snap_bytes);
	if (id == NULL)
		return 0;
	char *old = NULL;
	if (fm_reclog_read(path, id, SUMMARY_FILE_MAX, &old, &log_len, &log_end,
	                   err) < 0) {
		free(id);
		return -1;
	}
	free(old);
	struct fm_buf chunk;
	fm_buf_init(&chunk, SUMMARY_FILE_MAX);
	for (size_t i = 0; i < n; i++) {
		const struct fm_summary_entry *e = &v[i].e;
		switch (v[i].kind) {
		case FM_SUMMARY_PUT:
			fm_buf_append(&chunk, "+ ", 2);
			put_record(&chunk, e);
			break;
		case FM_SUMMARY_FILE:
			fm_buf_append(&chunk, "= ", 2);
			fm_record_put(&chunk, e->base);
			fm_buf_append_char(&chunk, ' ');
			fm_record_put(&chunk, e->file);
			fm_buf_append_char(&chunk, ' ');
			fm_record_put_u64(&chunk, e->flags, 16);
			fm_buf_append_char(&chunk, '\n');
			break;
		case FM_SUMMARY_REMOVE:
			fm_buf_append(&chunk, "- ", 2);
			fm_record_put(&chunk, e->base);
			fm_buf_append_char(&chunk, '\n');
			break;
		}
	}
	int r = fm_reclog_append_small(path, id, &log_end, snap_bytes,
	                               chunk.data, chunk.len, false, err);
	fm_buf_free(&chunk);
	free(id);
	return r;
}

/* ------------------------------------------------------------------------
 * Agreement with the maildir.
 */

static int64_t
dir_stamp(const char *dir)
{
	struct stat st;
	if (stat(dir, &st) < 0)
		return -1;
	return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

struct found {
	char *sub_name; /* "cur/NAME" */
	size_t base_len;
};

static int
list_dir(const char *folder_dir, const char *sub, struct found **v, size_t *n,
         size_t *cap, struct fm_error *err)
{
	char *dir = fm_path_join(folder_dir, sub);
	DIR *d = opendir(dir);
	if (d == NULL) {
		int e = errno;
		free(dir);
		if (e == ENOENT)
			return 0;
		return fm_error_errno(err, FM_ERR_LOCAL, e,
		                      _("cannot read the folder %s"),
		                      folder_dir);
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (*n == *cap) {
			*cap = *cap ? 2 * *cap : 256;
			*v = xreallocarray(*v, *cap, sizeof(**v));
		}
		size_t base_len;
		fm_maildir_base(de->d_name, &base_len);
		(*v)[*n].sub_name = xasprintf("%s/%s", sub, de->d_name);
		(*v)[*n].base_len = base_len;
		(*n)++;
	}
	closedir(d);
	free(dir);
	return 0;
}

char *
fm_summary_saved_id(const struct fm_summary *s)
{
	if (s->snap_id == NULL)
		return NULL;
	return xasprintf("%s %zu %lld %lld", s->snap_id, s->log_end,
	                 (long long)s->stamp_cur, (long long)s->stamp_new);
}

char *
fm_summary_disk_id(const char *path, const char *folder_dir)
{
	size_t bytes;
	char *id = snapshot_id(path, &bytes);
	if (id == NULL)
		return NULL;
	int64_t log = fm_reclog_size(path);
	char *cur = fm_path_join(folder_dir, "cur");
	char *new = fm_path_join(folder_dir, "new");
	int64_t sc = dir_stamp(cur), sn = dir_stamp(new);
	free(cur);
	free(new);
	char *out = log < 0 ? NULL
	                    : xasprintf("%s %lld %lld %lld", id, (long long)log,
	                                (long long)sc, (long long)sn);
	free(id);
	return out;
}

int
fm_summary_rescan(struct fm_summary *s, const char *folder_dir, bool force,
                  fm_summary_parse_fn *parse, void *ctx, bool *changed_r,
                  struct fm_error *err)
{
	*changed_r = false;
	char *cur = fm_path_join(folder_dir, "cur");
	char *new = fm_path_join(folder_dir, "new");
	int64_t sc = dir_stamp(cur), sn = dir_stamp(new);
	free(cur);
	free(new);
	if (!force && sc == s->stamp_cur && sn == s->stamp_new)
		return 0;

	struct found *v = NULL;
	size_t n = 0, cap = 0;
	if (list_dir(folder_dir, "new", &v, &n, &cap, err) < 0 ||
	    list_dir(folder_dir, "cur", &v, &n, &cap, err) < 0) {
		for (size_t i = 0; i < n; i++)
			free(v[i].sub_name);
		free(v);
		return -1;
	}
	bool *seen = xcalloc(s->n + n + 1, sizeof(*seen));
	for (size_t i = 0; i < n; i++) {
		const char *name = v[i].sub_name + 4;
		char *base = xstrndup(name, v[i].base_len);
		size_t k = slot_of(s, base);
		if (k != SIZE_MAX) {
			size_t idx = s->slots[k] - 1;
			seen[idx] = true;
			if (strcmp(s->v[idx].e.file, v[i].sub_name) != 0) {
				fm_summary_set_file(
				    s, base, v[i].sub_name,
				    fm_maildir_flags_parse(name));
				*changed_r = true;
			}
		} else {
			char *path = fm_path_join(folder_dir, v[i].sub_name);
			struct fm_summary_entry e = {0};
			if (parse(ctx, path, &e) == 0) {
				e.base = base;
				e.file = v[i].sub_name;
				e.flags = fm_maildir_flags_parse(name);
				e.indexed = NULL;
				fm_summary_put(s, &e);
				/* put appends: the new entry is present. */
				seen[s->n - 1] = true;
				*changed_r = true;
			}
			free(path);
		}
		free(base);
	}
	/* Entries whose files are gone: collect first, removal reorders. */
	size_t n_gone = 0;
	char **gone = xcalloc(s->n + 1, sizeof(*gone));
	for (size_t i = 0; i < s->n; i++)
		if (!seen[i])
			gone[n_gone++] = xstrdup(s->v[i].e.base);
	for (size_t i = 0; i < n_gone; i++) {
		fm_summary_remove(s, gone[i]);
		free(gone[i]);
		*changed_r = true;
	}
	free(gone);
	free(seen);
	for (size_t i = 0; i < n; i++)
		free(v[i].sub_name);
	free(v);
	if (s->stamp_cur != sc || s->stamp_new != sn)
		*changed_r = true;
	s->stamp_cur = sc;
	s->stamp_new = sn;
	return 0;
}

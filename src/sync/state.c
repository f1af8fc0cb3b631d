/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "sync/state.h"

#define STATE_MAGIC "fulmar-state"
#define STATE_VERSION 1
/* A state file this large is not one fulmar wrote. */
#define STATE_FILE_MAX ((size_t)1 << 30)
#define HEADER_MAX 256

/*
 * Entries live in one array (strings owned, hence the casts when freeing).
 * Two open-addressing tables with linear probing map the key and the base
 * name to an index: a slot holds index + 1, 0 is empty. Deleting shifts the
 * following cluster back instead of leaving tombstones.
 */
struct fm_state {
	enum fm_state_kind kind;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	struct fm_state_entry *v;
	size_t n, cap;
	bool sorted;      /* v is in key order */
	uint32_t *by_key; /* nslots each */
	uint32_t *by_base;
	size_t nslots; /* a power of two, at least 2 * n */
	/* The snapshot on disk ("KIND COUNT BYTES DIGEST" of its header;
	 * NULL: none, or a new one is due) and the valid length of its change
	 * log (base.h), and the keys put or removed since the last write:
	 * UIDs (IMAP) or UIDLs (POP3). */
	char *snap_id;
	size_t snap_bytes, log_end;
	uint32_t *chg_uid;
	char **chg_uidl;
	size_t n_chg;
};

/* ------------------------------------------------------------------------
 * Hashing.
 */

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h ^ (h >> 29);
}

static uint64_t
hash_uid(uint32_t uid)
{
	uint64_t h = uid * 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 32);
}

static uint64_t
key_hash(const struct fm_state *s, const struct fm_state_entry *e)
{
	return s->kind == FM_STATE_IMAP ? hash_uid(e->uid) : hash_str(e->uidl);
}

typedef uint64_t slot_hash_fn(const struct fm_state *s, uint32_t idx);

static uint64_t
slot_key_hash(const struct fm_state *s, uint32_t idx)
{
	return key_hash(s, &s->v[idx]);
}

static uint64_t
slot_base_hash(const struct fm_state *s, uint32_t idx)
{
	return hash_str(s->v[idx].base);
}

static void
table_insert(struct fm_state *s, uint32_t *slots, uint64_t h, size_t idx)
{
	size_t mask = s->nslots - 1, i = h & mask;
	while (slots[i] != 0)
		i = (i + 1) & mask;
	slots[i] = (uint32_t)idx + 1;
}

/* The slot holding idx, searched from its home h. */
static size_t
table_slot_of(const struct fm_state *s, const uint32_t *slots, uint64_t h,
              size_t idx)
{
	size_t mask = s->nslots - 1, i = h & mask;
	while (slots[i] != idx + 1) {
		if (slots[i] == 0)
			abort(); /* the tables lost an entry: a bug */
		i = (i + 1) & mask;
	}
	return i;
}

/* Removes idx (whose home is h) and shifts the cluster after it back. */
static void
table_delete(struct fm_state *s, uint32_t *slots, uint64_t h, size_t idx,
             slot_hash_fn *hf)
{
	size_t mask = s->nslots - 1, i = table_slot_of(s, slots, h, idx);
	for (;;) {
		slots[i] = 0;
		size_t j = i;
		for (;;) {
			j = (j + 1) & mask;
			if (slots[j] == 0)
				return;
			size_t k = hf(s, slots[j] - 1) & mask;
			/* Stays if its home lies cyclically in (i, j]. */
			bool stays =
			    i <= j ? (i < k && k <= j) : (i < k || k <= j);
			if (!stays) {
				slots[i] = slots[j];
				i = j;
				break;
			}
		}
	}
}

static void
tables_rebuild(struct fm_state *s, size_t nslots)
{
	free(s->by_key);
	free(s->by_base);
	s->nslots = nslots;
	s->by_key = xcalloc(nslots, sizeof(*s->by_key));
	s->by_base = xcalloc(nslots, sizeof(*s->by_base));
	for (size_t i = 0; i < s->n; i++) {
		table_insert(s, s->by_key, key_hash(s, &s->v[i]), i);
		if (s->v[i].base != NULL)
			table_insert(s, s->by_base, hash_str(s->v[i].base), i);
	}
}

static struct fm_state_entry *
find_key(const struct fm_state *s, uint32_t uid, const char *uidl)
{
	if (s->n == 0)
		return NULL;
	size_t mask = s->nslots - 1;
	size_t i =
	    (s->kind == FM_STATE_IMAP ? hash_uid(uid) : hash_str(uidl)) & mask;
	for (; s->by_key[i] != 0; i = (i + 1) & mask) {
		struct fm_state_entry *e = &s->v[s->by_key[i] - 1];
		if (s->kind == FM_STATE_IMAP ? e->uid == uid
		                             : strcmp(e->uidl, uidl) == 0)
			return e;
	}
	return NULL;
}

/* ------------------------------------------------------------------------
 * Life cycle and accessors.
 */

/* Remembers that the entry with this key changed. Past a quarter of the
 * entries a new snapshot is cheaper than a log: stop counting. */
static void
changed(struct fm_state *s, uint32_t uid, const char *uidl)
{
	if (s->snap_id == NULL)
		return;
	if (s->n_chg > s->n / 4 + 64) {
		free(s->snap_id);
		s->snap_id = NULL;
		return;
	}
	if (s->kind == FM_STATE_IMAP) {
		s->chg_uid = xreallocarray(s->chg_uid, s->n_chg + 1,
		                           sizeof(*s->chg_uid));
		s->chg_uid[s->n_chg++] = uid;
	} else {
		s->chg_uidl = xreallocarray(s->chg_uidl, s->n_chg + 1,
		                            sizeof(*s->chg_uidl));
		s->chg_uidl[s->n_chg++] = xstrdup(uidl);
	}
}

static void
changes_clear(struct fm_state *s)
{
	for (size_t i = 0; s->chg_uidl != NULL && i < s->n_chg; i++)
		free(s->chg_uidl[i]);
	free(s->chg_uidl);
	free(s->chg_uid);
	s->chg_uidl = NULL;
	s->chg_uid = NULL;
	s->n_chg = 0;
}

struct fm_state *
fm_state_new(enum fm_state_kind kind)
{
	struct fm_state *s = xcalloc(1, sizeof(*s));
	s->kind = kind;
	s->sorted = true;
	tables_rebuild(s, 16);
	return s;
}

static void
entry_free_strings(struct fm_state_entry *e)
{
	free((char *)e->uidl);
	free((char *)e->base);
	free((char *)e->keywords);
}

void
fm_state_clear(struct fm_state *s)
{
	for (size_t i = 0; i < s->n; i++)
		entry_free_strings(&s->v[i]);
	s->n = 0;
	s->sorted = true;
	/* Everything changed: the next save writes a snapshot. */
	free(s->snap_id);
	s->snap_id = NULL;
	changes_clear(s);
	memset(s->by_key, 0, s->nslots * sizeof(*s->by_key));
	memset(s->by_base, 0, s->nslots * sizeof(*s->by_base));
}

void
fm_state_free(struct fm_state **state)
{
	if (state == NULL || *state == NULL)
		return;
	struct fm_state *s = *state;
	fm_state_clear(s);
	free(s->v);
	free(s->by_key);
	free(s->by_base);
	free(s);
	*state = NULL;
}

enum fm_state_kind
fm_state_kind(const struct fm_state *s)
{
	return s->kind;
}

uint32_t
fm_state_uidvalidity(const struct fm_state *s)
{
	return s->uidvalidity;
}

uint32_t
fm_state_uidnext(const struct fm_state *s)
{
	return s->uidnext;
}

uint64_t
fm_state_highestmodseq(const struct fm_state *s)
{
	return s->highestmodseq;
}

void
fm_state_set_uidvalidity(struct fm_state *s, uint32_t v)
{
	s->uidvalidity = v;
}

void
fm_state_set_uidnext(struct fm_state *s, uint32_t v)
{
	s->uidnext = v;
}

void
fm_state_set_highestmodseq(struct fm_state *s, uint64_t v)
{
	s->highestmodseq = v;
}

size_t
fm_state_count(const struct fm_state *s)
{
	return s->n;
}

const struct fm_state_entry *
fm_state_find_uid(const struct fm_state *s, uint32_t uid)
{
	return s->kind == FM_STATE_IMAP ? find_key(s, uid, NULL) : NULL;
}

const struct fm_state_entry *
fm_state_find_uidl(const struct fm_state *s, const char *uidl)
{
	return s->kind == FM_STATE_POP3 ? find_key(s, 0, uidl) : NULL;
}

const struct fm_state_entry *
fm_state_find_base(const struct fm_state *s, const char *base)
{
	if (s->n == 0 || base == NULL)
		return NULL;
	size_t mask = s->nslots - 1;
	for (size_t i = hash_str(base) & mask; s->by_base[i] != 0;
	     i = (i + 1) & mask) {
		struct fm_state_entry *e = &s->v[s->by_base[i] - 1];
		if (strcmp(e->base, base) == 0)
			return e;
	}
	return NULL;
}

/* ------------------------------------------------------------------------
 * Changes.
 */

static int
cmp_uid(const void *a, const void *b)
{
	uint32_t x = ((const struct fm_state_entry *)a)->uid;
	uint32_t y = ((const struct fm_state_entry *)b)->uid;
	return x < y ? -1 : x > y;
}

static int
cmp_uidl(const void *a, const void *b)
{
	return strcmp(((const struct fm_state_entry *)a)->uidl,
	              ((const struct fm_state_entry *)b)->uidl);
}

static bool
string_ok(const char *str)
{
	return str == NULL || strlen(str) <= FM_STATE_STRING_MAX;
}

/* Strings as an entry keeps them: NULL for none or empty. */
static const char *
dup_check(const char *str)
{
	return str != NULL && str[0] != '\0' ? str : NULL;
}

static bool
str_same(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static char *
dup_or_null(const char *str)
{
	return str == NULL || str[0] == '\0' ? NULL : xstrdup(str);
}

int
fm_state_put(struct fm_state *s, const struct fm_state_entry *in_,
             struct fm_error *err)
{
	/* A copy: in_ may point into s->v, which may move below. */
	const struct fm_state_entry in_copy = *in_, *in = &in_copy;
	bool imap = s->kind == FM_STATE_IMAP;
	if ((imap && (in->uid == 0 || in->uidl != NULL)) ||
	    (!imap &&
	     (in->uidl == NULL || in->uidl[0] == '\0' || in->uid != 0)) ||
	    in->first_seen < 0 || !string_ok(in->uidl) ||
	    !string_ok(in->base) || !string_ok(in->keywords)) {
		fm_error_set(err, FM_ERR_LOCAL,
		             _("Internal error: a bad sync state entry"));
		return fm_error_detail(err, "state put: key/kind mismatch or "
		                            "string too long");
	}
	const char *base =
	    in->base != NULL && in->base[0] != '\0' ? in->base : NULL;
	struct fm_state_entry *old = find_key(s, in->uid, in->uidl);
	if (old == NULL || old->flags != in->flags ||
	    old->first_seen != in->first_seen || !str_same(old->base, base) ||
	    !str_same(old->keywords, dup_check(in->keywords)))
		changed(s, in->uid, in->uidl);
	const struct fm_state_entry *owner = fm_state_find_base(s, base);
	if (owner != NULL && owner != old) {
		fm_error_set(err, FM_ERR_LOCAL,
		             _("Internal error: the message file %s belongs "
		               "to two server messages"),
		             base);
		return fm_error_detail(err, "state put: duplicate base name");
	}
	if (old == NULL) {
		if ((s->n + 1) * 2 > s->nslots)
			tables_rebuild(s, s->nslots * 2);
		if (s->n == s->cap) {
			s->cap = s->cap == 0 ? 64 : s->cap * 2;
			s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
		}
		struct fm_state_entry *e = &s->v[s->n];
		*e = (struct fm_state_entry){
		    .uid = in->uid,
		    .uidl = imap ? NULL : xstrdup(in->uidl),
		    .first_seen = in->first_seen,
		    .base = dup_or_null(base),
		    .flags = in->flags,
		    .keywords = dup_or_null(in->keywords),
		};
		if (s->n > 0 && (imap ? cmp_uid : cmp_uidl)(e - 1, e) > 0)
			s->sorted = false;
		table_insert(s, s->by_key, key_hash(s, e), s->n);
		if (e->base != NULL)
			table_insert(s, s->by_base, hash_str(e->base), s->n);
		s->n++;
		return 0;
	}
	size_t idx = (size_t)(old - s->v);
	if (old->base != NULL && (base == NULL || strcmp(old->base, base))) {
		table_delete(s, s->by_base, hash_str(old->base), idx,
		             slot_base_hash);
		free((char *)old->base);
		old->base = NULL;
	}
	if (old->base == NULL && base != NULL) {
		old->base = xstrdup(base);
		table_insert(s, s->by_base, hash_str(base), idx);
	}
	/* in may hand back this entry's own strings: copy before freeing. */
	char *keywords = dup_or_null(in->keywords);
	free((char *)old->keywords);
	old->keywords = keywords;
	old->first_seen = in->first_seen;
	old->flags = in->flags;
	return 0;
}

static bool
remove_entry(struct fm_state *s, struct fm_state_entry *e)
{
	if (e == NULL)
		return false;
	changed(s, e->uid, e->uidl);
	size_t idx = (size_t)(e - s->v), last = s->n - 1;
	table_delete(s, s->by_key, key_hash(s, e), idx, slot_key_hash);
	if (e->base != NULL)
		table_delete(s, s->by_base, hash_str(e->base), idx,
		             slot_base_hash);
	entry_free_strings(e);
	if (idx != last) {
		/* The last entry takes the hole; repoint its slots. */
		struct fm_state_entry *l = &s->v[last];
		s->by_key[table_slot_of(s, s->by_key, key_hash(s, l), last)] =
		    (uint32_t)idx + 1;
		if (l->base != NULL)
			s->by_base[table_slot_of(s, s->by_base,
			                         hash_str(l->base), last)] =
			    (uint32_t)idx + 1;
		s->v[idx] = *l;
		s->sorted = false;
	}
	s->n--;
	return true;
}

bool
fm_state_remove_uid(struct fm_state *s, uint32_t uid)
{
	return s->kind == FM_STATE_IMAP &&
	       remove_entry(s, find_key(s, uid, NULL));
}

bool
fm_state_remove_uidl(struct fm_state *s, const char *uidl)
{
	return s->kind == FM_STATE_POP3 &&
	       remove_entry(s, find_key(s, 0, uidl));
}

const struct fm_state_entry *
fm_state_entry_at(struct fm_state *s, size_t i)
{
	if (!s->sorted) {
		qsort(s->v, s->n, sizeof(*s->v),
		      s->kind == FM_STATE_IMAP ? cmp_uid : cmp_uidl);
		tables_rebuild(s, s->nslots);
		s->sorted = true;
	}
	return i < s->n ? &s->v[i] : NULL;
}

/* ------------------------------------------------------------------------
 * Atomic replacement.
 */

/* ------------------------------------------------------------------------
 * Saving.
 */

static void
put_counters(struct fm_buf *b, const struct fm_state *s)
{
	fm_buf_printf(b, "uidvalidity %u\nuidnext %u\nhighestmodseq %llu\n",
	              (unsigned)s->uidvalidity, (unsigned)s->uidnext,
	              (unsigned long long)s->highestmodseq);
}

static void
put_key(struct fm_buf *b, const struct fm_state *s, uint32_t uid,
        const char *uidl)
{
	if (s->kind == FM_STATE_IMAP)
		fm_record_put_u64(b, uid, 10);
	else
		fm_record_put(b, uidl);
}

static void
put_entry(struct fm_buf *b, const struct fm_state *s,
          const struct fm_state_entry *e)
{
	put_key(b, s, e->uid, e->uidl);
	if (e->first_seen >= 0) {
		fm_buf_append_char(b, ' ');
		fm_record_put_u64(b, (uint64_t)e->first_seen, 10);
		fm_buf_append_char(b, ' ');
	} else {
		fm_buf_printf(b, " %lld ", (long long)e->first_seen);
	}
	fm_record_put_u64(b, e->flags, 16);
	fm_buf_append_char(b, ' ');
	fm_record_put(b, e->base);
	fm_buf_append_char(b, ' ');
	fm_record_put(b, e->keywords);
	fm_buf_append_char(b, '\n');
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int
cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the changed entries (each key once, as it is now: "+ ENTRY" or
 * "- KEY") after the counters to the change log, while the log stays
 * under a quarter of the snapshot: 1 when it did, 0 when a new snapshot
 * is due. */
static int
save_changes(struct fm_state *s, const char *path, struct fm_error *err)
{
	if (s->snap_id == NULL)
		return 0;
	bool imap = s->kind == FM_STATE_IMAP;
	if (s->n_chg > 0 && imap)
		qsort(s->chg_uid, s->n_chg, sizeof(*s->chg_uid), cmp_u32);
	else if (s->n_chg > 0)
		qsort(s->chg_uidl, s->n_chg, sizeof(*s->chg_uidl), cmp_strp);
	struct fm_buf chunk;
	fm_buf_init(&chunk, STATE_FILE_MAX);
	put_counters(&chunk, s);
	for (size_t i = 0; i < s->n_chg; i++) {
		uint32_t uid = imap ? s->chg_uid[i] : 0;
		const char *uidl = imap ? NULL : s->chg_uidl[i];
		if (i > 0 && (imap ? uid == s->chg_uid[i - 1]
		                   : strcmp(uidl, s->chg_uidl[i - 1]) == 0))
			continue;
		const struct fm_state_entry *e = find_key(s, uid, uidl);
		if (e != NULL) {
			fm_buf_append(&chunk, "+ ", 2);
			put_entry(&chunk, s, e);
		} else {
			fm_buf_append(&chunk, "- ", 2);
			put_key(&chunk, s, uid, uidl);
			fm_buf_append_char(&chunk, '\n');
		}
	}
	int r =
	    fm_reclog_append_small(path, s->snap_id, &s->log_end, s->snap_bytes,
	                           chunk.data, chunk.len, err);
	if (r == 1)
		changes_clear(s);
	fm_buf_free(&chunk);
	return r;
}

int
fm_state_save(struct fm_state *s, const char *path, struct fm_error *err)
{
	int r = save_changes(s, path, err);
	if (r != 0)
		return r < 0 ? -1 : 0;
	struct fm_buf body;
	fm_buf_init(&body, STATE_FILE_MAX);
	put_counters(&body, s);
	for (size_t i = 0; i < s->n; i++) {
		/* An entry takes at most 3 escaped strings and 3 numbers. */
		if (body.len + 9 * FM_STATE_STRING_MAX + 64 > body.max) {
			fm_buf_free(&body);
			return fm_error_set(err, FM_ERR_LOCAL,
			                    _("The sync state for %s is too "
			                      "large"),
			                    path);
		}
		put_entry(&body, s, fm_state_entry_at(s, i));
	}
	char digest[65];
	fm_record_digest(body.data, body.len, digest);
	const char *kind = s->kind == FM_STATE_IMAP ? "imap" : "pop3";
	char header[HEADER_MAX];
	int hlen =
	    snprintf(header, sizeof(header), "%s %d %s %zu %zu %s\n",
	             STATE_MAGIC, STATE_VERSION, kind, s->n, body.len, digest);
	struct iovec iov[2] = {
	    {.iov_base = header, .iov_len = (size_t)hlen},
	    {.iov_base = body.data, .iov_len = body.len},
	};
	int rc = fm_file_replace(path, iov, 2, err);
	if (rc == 0) {
		/* The log's changes are in the new snapshot. */
		fm_reclog_remove(path);
		free(s->snap_id);
		s->snap_id =
		    xasprintf("%s %zu %zu %s", kind, s->n, body.len, digest);
		s->snap_bytes = body.len;
		s->log_end = 0;
		changes_clear(s);
	}
	fm_buf_free(&body);
	return rc;
}

/* ------------------------------------------------------------------------
 * Loading.
 */

static int
damaged(const char *path, struct fm_error *err, const char *why, size_t line)
{
	fm_error_set(err, FM_ERR_LOCAL,
	             _("The sync state file %s is damaged; it will be rebuilt "
	               "from the mail folder and the server."),
	             path);
	if (line > 0)
		return fm_error_detail(err, "%s: %s at body line %zu", path,
		                       why, line);
	return fm_error_detail(err, "%s: %s", path, why);
}

/* Parses one entry line (in place; e's strings point into it). */
static int
parse_entry(const struct fm_state *s, char *line, struct fm_state_entry *e)
{
	char *f[5];
	uint64_t uid = 0, flags, seen;
	char *uidl = NULL, *base, *keywords;
	if (fm_record_split(line, f, 5) < 0 ||
	    (s->kind == FM_STATE_IMAP
	         ? fm_record_parse_u64(f[0], 10, UINT32_MAX, &uid) < 0
	         : fm_record_unescape(f[0], &uidl) < 0 || uidl == NULL) ||
	    fm_record_parse_u64(f[1], 10, INT64_MAX, &seen) < 0 ||
	    fm_record_parse_u64(f[2], 16, UINT32_MAX, &flags) < 0 ||
	    fm_record_unescape(f[3], &base) < 0 ||
	    fm_record_unescape(f[4], &keywords) < 0)
		return -1;
	*e = (struct fm_state_entry){
	    .uid = (uint32_t)uid,
	    .uidl = uidl,
	    .first_seen = (int64_t)seen,
	    .base = base,
	    .flags = (uint32_t)flags,
	    .keywords = keywords,
	};
	return 0;
}

/* Parses "NAME N" into *v (at most max). */
static int
parse_counter(char *line, const char *name, uint64_t max, uint64_t *v)
{
	char *f[2];
	return fm_record_split(line, f, 2) < 0 || strcmp(f[0], name) != 0 ||
	               fm_record_parse_u64(f[1], 10, max, v) < 0
	           ? -1
	           : 0;
}

static const char *const counter_names[] = {"uidvalidity", "uidnext",
                                            "highestmodseq"};
static const uint64_t counter_maxes[] = {UINT32_MAX, UINT32_MAX, INT64_MAX};

static int
parse_body(struct fm_state *s, char *body, size_t len, size_t count,
           const char *path, struct fm_error *err)
{
	uint64_t values[3];
	char *p = body, *end = body + len;
	size_t lineno = 0, entries = 0;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			return damaged(path, err, "last line unterminated",
			               lineno + 1);
		*nl = '\0';
		if (memchr(p, '\0', (size_t)(nl - p)) != NULL)
			return damaged(path, err, "NUL byte", lineno + 1);
		char *line = p;
		p = nl + 1;
		lineno++;
		if (lineno <= 3) {
			if (parse_counter(line, counter_names[lineno - 1],
			                  counter_maxes[lineno - 1],
			                  &values[lineno - 1]) < 0)
				return damaged(path, err, "bad counter",
				               lineno);
			continue;
		}
		struct fm_state_entry e;
		if (parse_entry(s, line, &e) < 0)
			return damaged(path, err, "bad entry", lineno);
		if (fm_state_put(s, &e, NULL) < 0)
			return damaged(path, err, "invalid or duplicate entry",
			               lineno);
		entries++;
	}
	if (lineno < 3 || entries != count)
		return damaged(path, err, "entry count differs from header", 0);
	s->uidvalidity = (uint32_t)values[0];
	s->uidnext = (uint32_t)values[1];
	s->highestmodseq = values[2];
	return 0;
}

/* Applies one chunk of the change log: its counters, then its entries
 * (each key once): every old version goes first, so entries that traded
 * base names cannot collide. */
static int
apply_chunk(struct fm_state *s, char **lines, size_t n)
{
	uint64_t values[3];
	if (n < 3)
		return -1;
	for (size_t i = 0; i < 3; i++)
		if (parse_counter(lines[i], counter_names[i], counter_maxes[i],
		                  &values[i]) < 0)
			return -1;
	s->uidvalidity = (uint32_t)values[0];
	s->uidnext = (uint32_t)values[1];
	s->highestmodseq = values[2];
	struct fm_state_entry *put = xcalloc(n, sizeof(*put));
	size_t np = 0;
	int ret = 0;
	for (size_t i = 3; i < n && ret == 0; i++) {
		char *l = lines[i];
		if (l[0] == '+' && l[1] == ' ' &&
		    parse_entry(s, l + 2, &put[np]) == 0) {
			remove_entry(s, find_key(s, put[np].uid, put[np].uidl));
			np++;
		} else if (l[0] == '-' && l[1] == ' ') {
			uint64_t uid = 0;
			char *uidl = NULL;
			if (s->kind == FM_STATE_IMAP
			        ? fm_record_parse_u64(l + 2, 10, UINT32_MAX,
			                              &uid) < 0
			        : fm_record_unescape(l + 2, &uidl) < 0 ||
			              uidl == NULL)
				ret = -1;
			else
				remove_entry(s,
				             find_key(s, (uint32_t)uid, uidl));
		} else {
			ret = -1;
		}
	}
	for (size_t i = 0; i < np && ret == 0; i++)
		if (fm_state_put(s, &put[i], NULL) < 0)
			ret = -1;
	free(put);
	return ret;
}

/* Applies the change log's records (NUL-terminated; chunks begin with
 * their uidvalidity line). */
static int
apply_log(struct fm_state *s, char *p, const char *path, struct fm_error *err)
{
	char **lines = NULL;
	size_t n = 0, cap = 0, chunks = 0;
	int ret = 0;
	while (*p != '\0' && ret == 0) {
		char *nl = strchr(p, '\n');
		if (nl == NULL) {
			ret = damaged(path, err, "change log line unterminated",
			              0);
			break;
		}
		*nl = '\0';
		if (strncmp(p, "uidvalidity ", 12) == 0 && n > 0) {
			if (apply_chunk(s, lines, n) < 0)
				ret = damaged(path, err, "bad change log chunk",
				              chunks + 1);
			chunks++;
			n = 0;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			lines = xreallocarray(lines, cap, sizeof(*lines));
		}
		lines[n++] = p;
		p = nl + 1;
	}
	if (ret == 0 && n > 0 && apply_chunk(s, lines, n) < 0)
		ret = damaged(path, err, "bad change log chunk", chunks + 1);
	free(lines);
	return ret;
}

int
fm_state_load(const char *path, enum fm_state_kind kind,
              struct fm_state **state_r, bool *damaged_r, struct fm_error *err)
{
	*state_r = NULL;
	if (damaged_r != NULL)
		*damaged_r = false;
	char *data = NULL;
	size_t len = 0;
	int r = fm_record_read_file(path, STATE_FILE_MAX, &data, &len, err);
	if (r < 0)
		return -1;
	if (r == 1) {
		*state_r = fm_state_new(kind);
		return 0;
	}
	struct fm_state *s = fm_state_new(kind);
	char *nl = memchr(data, '\n', len < HEADER_MAX ? len : HEADER_MAX);
	char *f[6];
	uint64_t version, count, body_len;
	char digest[65];
	int rc = -1;
	if (nl == NULL) {
		damaged(path, err, "no header line", 0);
		goto out;
	}
	*nl = '\0';
	if (memchr(data, '\0', (size_t)(nl - data)) != NULL ||
	    fm_record_split(data, f, 6) < 0 || strcmp(f[0], STATE_MAGIC) != 0 ||
	    fm_record_parse_u64(f[1], 10, 1000, &version) < 0) {
		damaged(path, err, "bad header", 0);
		goto out;
	}
	if (version != STATE_VERSION) {
		damaged(path, err, "unsupported version", 0);
		goto out;
	}
	if (strcmp(f[2], kind == FM_STATE_IMAP ? "imap" : "pop3") != 0 ||
	    fm_record_parse_u64(f[3], 10, UINT32_MAX, &count) < 0 ||
	    fm_record_parse_u64(f[4], 10, STATE_FILE_MAX, &body_len) < 0 ||
	    strlen(f[5]) != 14) {
		damaged(path, err, "bad header", 0);
		goto out;
	}
	char *body = nl + 1;
	size_t have = len - (size_t)(body - data);
	if (have != body_len) {
		char why[128];
		snprintf(why, sizeof(why),
		         "body is %zu bytes, header says %llu", have,
		         (unsigned long long)body_len);
		damaged(path, err, why, 0);
		goto out;
	}
	fm_record_digest(body, have, digest);
	if (strcmp(digest, f[5]) != 0) {
		damaged(path, err, "checksum mismatch", 0);
		goto out;
	}
	if (parse_body(s, body, have, (size_t)count, path, err) < 0)
		goto out;
	char *snap_id = xasprintf("%s %llu %zu %s", f[2],
	                          (unsigned long long)count, have, digest);
	char *log = NULL;
	size_t log_len, log_end;
	int lr = fm_reclog_read(path, snap_id, STATE_FILE_MAX, &log, &log_len,
	                        &log_end, err);
	if (lr == 0 && log != NULL)
		lr = apply_log(s, log, path, err);
	free(log);
	if (lr < 0) {
		free(snap_id);
		goto out;
	}
	s->snap_id = snap_id;
	s->snap_bytes = have;
	s->log_end = log_end;
	rc = 0;
	*state_r = s;
	s = NULL;
out:
	if (rc < 0 && damaged_r != NULL)
		*damaged_r = true;
	fm_state_free(&s);
	free(data);
	return rc;
}

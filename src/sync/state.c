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
/* The shortest entry line: "1 0 0 - -\n". */
#define ENTRY_MIN 10

/*
 * Entries live in one array of items: the entry handed out, the hash of
 * its base name and which of its strings it owns. A loaded state keeps
 * its file and its change log in memory, and the entries read from them
 * point into them (escapes undone in place): a load allocates nothing per
 * entry, while fm_state_put() copies what it is given. Two
 * open-addressing tables with linear probing map the key and the base
 * name to an index: a slot holds index + 1, 0 is empty. Deleting shifts
 * the following cluster back instead of leaving tombstones.
 */
struct item {
	struct fm_state_entry e; /* first: handed out as &item->e */
	uint32_t base_hash;      /* hash_str(e.base), if e.base != NULL */
	uint8_t bits;            /* ITEM_* */
};

enum {
	/* The string is malloc'ed; else it lives in buf or logbuf. */
	ITEM_OWN_UIDL = 1,
	ITEM_OWN_BASE = 2,
	ITEM_OWN_KEYWORDS = 4,
	/* Removed by the change log being loaded, and in no table: dropped
	 * at the end of the load, so that the others keep their order. */
	ITEM_DEAD = 8,
};

struct fm_state {
	enum fm_state_kind kind;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	struct item *v;
	size_t n, cap;
	size_t n_dead;    /* ITEM_DEAD items in v (only during a load) */
	bool sorted;      /* v is in key order */
	uint32_t *by_key; /* nslots each */
	uint32_t *by_base;
	size_t nslots; /* a power of two, at least 2 * (n - n_dead) */
	/* The loaded file and the records of its change log (NULL: none, or
	 * cleared), which loaded entries point into. */
	char *buf, *logbuf;
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
 * Hashing. Only the tables in memory depend on it.
 */

static uint32_t
hash_str(const char *s)
{
	return fm_hash_mem(s, strlen(s));
}

static uint32_t
hash_uid(uint32_t uid)
{
	uint64_t h = uid * 0x9e3779b97f4a7c15ull;
	return (uint32_t)(h ^ (h >> 32));
}

static uint32_t
key_hash(const struct fm_state *s, const struct fm_state_entry *e)
{
	return s->kind == FM_STATE_IMAP ? hash_uid(e->uid) : hash_str(e->uidl);
}

typedef uint32_t slot_hash_fn(const struct fm_state *s, uint32_t idx);

static uint32_t
slot_key_hash(const struct fm_state *s, uint32_t idx)
{
	return key_hash(s, &s->v[idx].e);
}

static uint32_t
slot_base_hash(const struct fm_state *s, uint32_t idx)
{
	return s->v[idx].base_hash;
}

static void
table_insert(struct fm_state *s, uint32_t *slots, uint32_t h, size_t idx)
{
	size_t mask = s->nslots - 1, i = h & mask;
	while (slots[i] != 0)
		i = (i + 1) & mask;
	slots[i] = (uint32_t)idx + 1;
}

/* The slot holding idx, searched from its home h. */
static size_t
table_slot_of(const struct fm_state *s, const uint32_t *slots, uint32_t h,
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
table_delete(struct fm_state *s, uint32_t *slots, uint32_t h, size_t idx,
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

/* New tables of nslots holding v[0, upto). */
static void
tables_fill(struct fm_state *s, size_t nslots, size_t upto)
{
	free(s->by_key);
	free(s->by_base);
	s->nslots = nslots;
	s->by_key = xcalloc(nslots, sizeof(*s->by_key));
	s->by_base = xcalloc(nslots, sizeof(*s->by_base));
	for (size_t i = 0; i < upto; i++) {
		const struct item *it = &s->v[i];
		if (it->bits & ITEM_DEAD)
			continue;
		table_insert(s, s->by_key, key_hash(s, &it->e), i);
		if (it->e.base != NULL)
			table_insert(s, s->by_base, it->base_hash, i);
	}
}

static void
tables_rebuild(struct fm_state *s, size_t nslots)
{
	tables_fill(s, nslots, s->n);
}

static struct item *
find_key(const struct fm_state *s, uint32_t uid, const char *uidl)
{
	if (s->n == 0)
		return NULL;
	size_t mask = s->nslots - 1;
	if (s->kind == FM_STATE_IMAP) {
		for (size_t i = hash_uid(uid) & mask; s->by_key[i] != 0;
		     i = (i + 1) & mask) {
			struct item *it = &s->v[s->by_key[i] - 1];
			if (it->e.uid == uid)
				return it;
		}
		return NULL;
	}
	for (size_t i = hash_str(uidl) & mask; s->by_key[i] != 0;
	     i = (i + 1) & mask) {
		struct item *it = &s->v[s->by_key[i] - 1];
		if (strcmp(it->e.uidl, uidl) == 0)
			return it;
	}
	return NULL;
}

/* The item whose base name is base (hash h). */
static struct item *
find_base(const struct fm_state *s, const char *base, uint32_t h)
{
	size_t mask = s->nslots - 1;
	for (size_t i = h & mask; s->by_base[i] != 0; i = (i + 1) & mask) {
		struct item *it = &s->v[s->by_base[i] - 1];
		if (it->base_hash == h && strcmp(it->e.base, base) == 0)
			return it;
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
item_free_strings(struct item *it)
{
	if (it->bits & ITEM_OWN_UIDL)
		free((char *)it->e.uidl);
	if (it->bits & ITEM_OWN_BASE)
		free((char *)it->e.base);
	if (it->bits & ITEM_OWN_KEYWORDS)
		free((char *)it->e.keywords);
	it->bits &=
	    (uint8_t) ~(ITEM_OWN_UIDL | ITEM_OWN_BASE | ITEM_OWN_KEYWORDS);
}

void
fm_state_clear(struct fm_state *s)
{
	for (size_t i = 0; i < s->n; i++)
		item_free_strings(&s->v[i]);
	s->n = 0;
	s->n_dead = 0;
	s->sorted = true;
	/* No entry points into the loaded files any more. */
	free(s->buf);
	free(s->logbuf);
	s->buf = NULL;
	s->logbuf = NULL;
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
	struct item *it =
	    s->kind == FM_STATE_IMAP ? find_key(s, uid, NULL) : NULL;
	return it != NULL ? &it->e : NULL;
}

const struct fm_state_entry *
fm_state_find_uidl(const struct fm_state *s, const char *uidl)
{
	struct item *it =
	    s->kind == FM_STATE_POP3 ? find_key(s, 0, uidl) : NULL;
	return it != NULL ? &it->e : NULL;
}

const struct fm_state_entry *
fm_state_find_base(const struct fm_state *s, const char *base)
{
	if (s->n == 0 || base == NULL)
		return NULL;
	struct item *it = find_base(s, base, hash_str(base));
	return it != NULL ? &it->e : NULL;
}

/* ------------------------------------------------------------------------
 * Changes.
 */

static int
cmp_uid(const void *a, const void *b)
{
	uint32_t x = ((const struct item *)a)->e.uid;
	uint32_t y = ((const struct item *)b)->e.uid;
	return x < y ? -1 : x > y;
}

static int
cmp_uidl(const void *a, const void *b)
{
	return strcmp(((const struct item *)a)->e.uidl,
	              ((const struct item *)b)->e.uidl);
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

/* str as an entry keeps it (NULL for none or empty): a copy, with own set
 * in *bits, unless borrowed from the file being loaded. */
static const char *
keep(const char *str, bool borrow, uint8_t *bits, uint8_t own)
{
	if (str == NULL || str[0] == '\0')
		return NULL;
	if (borrow)
		return str;
	*bits |= own;
	return xstrdup(str);
}

/* fm_state_put(), which copies the strings, or, borrow, the load's, which
 * keeps strings that live as long as the state's buffers (and never hands
 * back an entry's own strings: none is malloc'ed during a load). */
static int
put_item(struct fm_state *s, const struct fm_state_entry *in_, bool borrow,
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
	uint32_t bh = base != NULL ? hash_str(base) : 0;
	struct item *old = find_key(s, in->uid, in->uidl);
	if (old == NULL || old->e.flags != in->flags ||
	    old->e.first_seen != in->first_seen ||
	    !str_same(old->e.base, base) ||
	    !str_same(old->e.keywords, dup_check(in->keywords)))
		changed(s, in->uid, in->uidl);
	const struct item *owner = base != NULL ? find_base(s, base, bh) : NULL;
	if (owner != NULL && owner != old) {
		fm_error_set(err, FM_ERR_LOCAL,
		             _("Internal error: the message file %s belongs "
		               "to two server messages"),
		             base);
		return fm_error_detail(err, "state put: duplicate base name");
	}
	if (old == NULL) {
		if ((s->n - s->n_dead + 1) * 2 > s->nslots)
			tables_rebuild(s, s->nslots * 2);
		if (s->n == s->cap) {
			s->cap = s->cap == 0 ? 64 : s->cap * 2;
			s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
		}
		struct item *it = &s->v[s->n];
		*it = (struct item){.base_hash = bh};
		it->e = (struct fm_state_entry){
		    .uid = in->uid,
		    .uidl =
		        imap ? NULL
		             : keep(in->uidl, borrow, &it->bits, ITEM_OWN_UIDL),
		    .first_seen = in->first_seen,
		    .base = keep(base, borrow, &it->bits, ITEM_OWN_BASE),
		    .flags = in->flags,
		    .keywords = keep(in->keywords, borrow, &it->bits,
		                     ITEM_OWN_KEYWORDS),
		};
		if (s->n > 0 && (imap ? cmp_uid : cmp_uidl)(it - 1, it) > 0)
			s->sorted = false;
		table_insert(s, s->by_key, key_hash(s, &it->e), s->n);
		if (base != NULL)
			table_insert(s, s->by_base, bh, s->n);
		s->n++;
		return 0;
	}
	size_t idx = (size_t)(old - s->v);
	if (old->e.base != NULL &&
	    (base == NULL || strcmp(old->e.base, base) != 0)) {
		table_delete(s, s->by_base, old->base_hash, idx,
		             slot_base_hash);
		if (old->bits & ITEM_OWN_BASE)
			free((char *)old->e.base);
		old->bits &= (uint8_t)~ITEM_OWN_BASE;
		old->e.base = NULL;
	}
	if (old->e.base == NULL && base != NULL) {
		old->e.base = keep(base, borrow, &old->bits, ITEM_OWN_BASE);
		old->base_hash = bh;
		table_insert(s, s->by_base, bh, idx);
	}
	/* in may hand back this entry's own strings: copy before freeing. */
	uint8_t own = 0;
	const char *keywords =
	    keep(in->keywords, borrow, &own, ITEM_OWN_KEYWORDS);
	if (old->bits & ITEM_OWN_KEYWORDS)
		free((char *)old->e.keywords);
	old->bits = (uint8_t)((old->bits & ~ITEM_OWN_KEYWORDS) | own);
	old->e.keywords = keywords;
	old->e.first_seen = in->first_seen;
	old->e.flags = in->flags;
	return 0;
}

int
fm_state_put(struct fm_state *s, const struct fm_state_entry *in,
             struct fm_error *err)
{
	return put_item(s, in, false, err);
}

static bool
remove_item(struct fm_state *s, struct item *it)
{
	if (it == NULL)
		return false;
	changed(s, it->e.uid, it->e.uidl);
	size_t idx = (size_t)(it - s->v), last = s->n - 1;
	table_delete(s, s->by_key, key_hash(s, &it->e), idx, slot_key_hash);
	if (it->e.base != NULL)
		table_delete(s, s->by_base, it->base_hash, idx, slot_base_hash);
	item_free_strings(it);
	if (idx != last) {
		/* The last entry takes the hole; repoint its slots. */
		struct item *l = &s->v[last];
		s->by_key[table_slot_of(s, s->by_key, key_hash(s, &l->e),
		                        last)] = (uint32_t)idx + 1;
		if (l->e.base != NULL)
			s->by_base[table_slot_of(s, s->by_base, l->base_hash,
			                         last)] = (uint32_t)idx + 1;
		*it = *l;
		s->sorted = false;
	}
	s->n--;
	return true;
}

bool
fm_state_remove_uid(struct fm_state *s, uint32_t uid)
{
	return s->kind == FM_STATE_IMAP &&
	       remove_item(s, find_key(s, uid, NULL));
}

bool
fm_state_remove_uidl(struct fm_state *s, const char *uidl)
{
	return s->kind == FM_STATE_POP3 && remove_item(s, find_key(s, 0, uidl));
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
	return i < s->n ? &s->v[i].e : NULL;
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
		const struct item *it = find_key(s, uid, uidl);
		if (it != NULL) {
			fm_buf_append(&chunk, "+ ", 2);
			put_entry(&chunk, s, &it->e);
		} else {
			fm_buf_append(&chunk, "- ", 2);
			put_key(&chunk, s, uid, uidl);
			fm_buf_append_char(&chunk, '\n');
		}
	}
	int r =
	    fm_reclog_append_small(path, s->snap_id, &s->log_end, s->snap_bytes,
	                           chunk.data, chunk.len, true, err);
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
 * Loading. Entries of a file fulmar wrote come in key order, each after
 * the last; they take a faster way in than fm_state_put(), which the
 * others still go through. The strings stay in the loaded buffers.
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

/* Parses the number field at *pp, which ends at a space, as
 * fm_record_parse_u64() would (base 10 or 16, no leading zeros, at most
 * max, which must be below 10^19), and moves *pp past the space. */
static int
scan_u64(char **pp, unsigned base, uint64_t max, uint64_t *v_r)
{
	const char *start = *pp, *p = start;
	uint64_t v = 0;
	for (;; p++) {
		unsigned d;
		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = (unsigned)(*p - 'a' + 10);
		else
			break;
		v = v * base + d; /* wraps past 19 or 16 digits: refused */
	}
	size_t digits = (size_t)(p - start);
	if (*p != ' ' || digits == 0 || digits > (base == 16 ? 16 : 19) ||
	    (digits > 1 && *start == '0') || v > max)
		return -1;
	*pp = (char *)p + 1;
	*v_r = v;
	return 0;
}

/* Whether a word of 8 bytes holds a byte up to ' ', DEL or '%': the
 * bytes that end a field, are refused or start an escape. Exact for the
 * word as a whole (the bit trick may flag more bytes after a true one). */
static bool
word_special(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ull, high = ones * 0x80;
	uint64_t del = w ^ (ones * 0x7f), pct = w ^ (ones * '%');
	return (((w - ones * 0x21) & ~w) | ((del - ones) & ~del) |
	        ((pct - ones) & ~pct)) &
	       high;
}

/* Cuts the string field at *pp in place: up to the next space (and moves
 * *pp past it) or, for the last field, to end, the end of the line (a
 * NUL). Undoes the escapes as fm_record_unescape() does: *str_r is NULL
 * for "-", *len_r its length. -1 on anything fm_record_put() would not
 * write. */
static int
scan_str(char **pp, const char *end, bool last, const char **str_r,
         size_t *len_r)
{
	char *start = *pp, *p = start;
	bool escaped = false;
	/* Plain bytes 8 at a time, then byte by byte from the first word
	 * that holds anything else. */
	for (uint64_t w; end - p >= 8; p += 8) {
		memcpy(&w, p, 8);
		if (word_special(w))
			break;
	}
	for (;; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c == 0x7f)
			break;
		escaped |= c == '%';
	}
	if (*p != (last ? '\0' : ' ') || p == start)
		return -1;
	*p = '\0';
	*pp = p + 1;
	size_t len = (size_t)(p - start);
	if (len == 1 && start[0] == '-') {
		*str_r = NULL;
		*len_r = 0;
		return 0;
	}
	if (escaped) {
		char *out;
		if (fm_record_unescape(start, &out) < 0)
			return -1;
		len = strlen(out);
	}
	*str_r = start;
	*len_r = len;
	return 0;
}

/* Parses one entry line ("KEY FIRST-SEEN FLAGS BASE KEYWORDS", ended by a
 * NUL at end) in place; e's strings point into it, and lens[] receives the
 * lengths of its UIDL, base name and keywords. */
static int
parse_entry(const struct fm_state *s, char *line, const char *end,
            struct fm_state_entry *e, size_t lens[3])
{
	char *p = line;
	uint64_t uid = 0, seen, flags;
	const char *uidl = NULL, *base, *keywords;
	lens[0] = 0;
	if ((s->kind == FM_STATE_IMAP
	         ? scan_u64(&p, 10, UINT32_MAX, &uid) < 0
	         : scan_str(&p, end, false, &uidl, &lens[0]) < 0 ||
	               uidl == NULL) ||
	    scan_u64(&p, 10, INT64_MAX, &seen) < 0 ||
	    scan_u64(&p, 16, UINT32_MAX, &flags) < 0 ||
	    scan_str(&p, end, false, &base, &lens[1]) < 0 ||
	    scan_str(&p, end, true, &keywords, &lens[2]) < 0)
		return -1;
	/* Field by field: a compound literal here became a slow string
	 * instruction. */
	e->uid = (uint32_t)uid;
	e->uidl = uidl;
	e->first_seen = (int64_t)seen;
	e->base = base;
	e->flags = (uint32_t)flags;
	e->keywords = keywords;
	return 0;
}

/* Whether the entry parsed into v[n] may skip put_item() on its way in:
 * its key comes after every key so far, so it is new, and its strings
 * are not too long. */
static bool
load_in_order(const struct fm_state *s, const size_t lens[3])
{
	const struct fm_state_entry *e = &s->v[s->n].e;
	if (lens[0] > FM_STATE_STRING_MAX || lens[1] > FM_STATE_STRING_MAX ||
	    lens[2] > FM_STATE_STRING_MAX)
		return false;
	if (s->n == 0)
		return s->kind != FM_STATE_IMAP || e->uid != 0;
	const struct fm_state_entry *last = &s->v[s->n - 1].e;
	return s->kind == FM_STATE_IMAP ? e->uid > last->uid
	                                : strcmp(e->uidl, last->uidl) > 0;
}

/* Puts the entries loaded in order (v[0, n), whose base_hash holds the
 * base name's length) into the empty tables, all in one go: in one loop
 * the hashing and probing of several entries overlap. The index of the
 * first entry whose base name an earlier one has, or SIZE_MAX. */
static size_t
load_index(struct fm_state *s)
{
	size_t nslots = s->nslots;
	while (s->n * 2 > nslots)
		nslots *= 2;
	if (nslots != s->nslots)
		tables_fill(s, nslots, 0);
	size_t mask = s->nslots - 1;
	for (size_t i = 0; i < s->n; i++) {
		struct item *it = &s->v[i];
		table_insert(s, s->by_key, key_hash(s, &it->e), i);
		if (it->e.base == NULL)
			continue;
		uint32_t h = fm_hash_mem(it->e.base, it->base_hash);
		size_t k = h & mask;
		for (; s->by_base[k] != 0; k = (k + 1) & mask) {
			const struct item *o = &s->v[s->by_base[k] - 1];
			if (o->base_hash == h &&
			    strcmp(o->e.base, it->e.base) == 0)
				return i;
		}
		s->by_base[k] = (uint32_t)i + 1;
		it->base_hash = h;
	}
	return SIZE_MAX;
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

/* Parses the body. Entries in key order, as fulmar writes them, are
 * parsed into v and go into the tables together at the end; from the
 * first that is not, each goes through put_item(). A fault is named at
 * the first line that has one, as line by line. */
static int
parse_body(struct fm_state *s, char *body, size_t len, size_t count,
           const char *path, struct fm_error *err)
{
	uint64_t values[3];
	char *p = body, *end = body + len;
	/* The first NUL byte: the line that holds it is damaged. */
	const char *nul = memchr(body, '\0', len);
	size_t lineno = 0, entries = 0;
	/* While in_order, v[0, n) are not in the tables yet, and v[i] is
	 * on line i + 4, after the counters. */
	bool in_order = true;
	const char *why = NULL;
	while (p < end && why == NULL) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		lineno++;
		if (nl == NULL) {
			why = "last line unterminated";
			break;
		}
		if (nul != NULL && nul < nl) {
			why = "NUL byte";
			break;
		}
		*nl = '\0';
		char *line = p;
		p = nl + 1;
		if (lineno <= 3) {
			if (parse_counter(line, counter_names[lineno - 1],
			                  counter_maxes[lineno - 1],
			                  &values[lineno - 1]) < 0)
				why = "bad counter";
			continue;
		}
		/* Parsed in place, just past the last entry. */
		if (s->n == s->cap) {
			s->cap = s->cap == 0 ? 64 : s->cap * 2;
			s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
		}
		struct item *it = &s->v[s->n];
		size_t lens[3];
		if (parse_entry(s, line, nl, &it->e, lens) < 0) {
			why = "bad entry";
			break;
		}
		entries++;
		if (in_order && load_in_order(s, lens)) {
			it->base_hash = (uint32_t)lens[1];
			it->bits = 0;
			s->n++;
			continue;
		}
		if (in_order) {
			in_order = false;
			size_t dup = load_index(s);
			if (dup != SIZE_MAX)
				return damaged(path, err,
				               "invalid or duplicate entry",
				               dup + 4);
		}
		if (put_item(s, &it->e, true, NULL) < 0)
			why = "invalid or duplicate entry";
	}
	if (in_order) {
		/* Their lines come before any other fault's. */
		size_t dup = load_index(s);
		if (dup != SIZE_MAX)
			return damaged(path, err, "invalid or duplicate entry",
			               dup + 4);
	}
	if (why != NULL)
		return damaged(path, err, why, lineno);
	if (lineno < 3 || entries != count)
		return damaged(path, err, "entry count differs from header", 0);
	s->uidvalidity = (uint32_t)values[0];
	s->uidnext = (uint32_t)values[1];
	s->highestmodseq = values[2];
	return 0;
}

/* Makes room in v for n entries in all. */
static void
reserve(struct fm_state *s, size_t n)
{
	if (n > s->cap) {
		s->v = xreallocarray(s->v, n, sizeof(*s->v));
		s->cap = n;
	}
}

/* Removes the entry with this key during a load: out of the tables at
 * once, out of v at its end (drop_dead). */
static void
kill_item(struct fm_state *s, struct item *it)
{
	if (it == NULL)
		return;
	size_t idx = (size_t)(it - s->v);
	table_delete(s, s->by_key, key_hash(s, &it->e), idx, slot_key_hash);
	if (it->e.base != NULL)
		table_delete(s, s->by_base, it->base_hash, idx, slot_base_hash);
	it->bits |= ITEM_DEAD;
	s->n_dead++;
}

/* Drops the items kill_item() marked, keeping the others in order, and
 * moves the tables' indexes with them (their slots stay). */
static void
drop_dead(struct fm_state *s)
{
	if (s->n_dead == 0)
		return;
	/* to[old index + 1] = new index + 1, to[0] = 0: a slot's new value. */
	uint32_t *to = xmalloc((s->n + 1) * sizeof(*to));
	to[0] = 0;
	size_t w = 0, run = 0; /* the live items from run on move to w */
	for (size_t r = 0; r <= s->n; r++) {
		if (r < s->n && !(s->v[r].bits & ITEM_DEAD)) {
			to[r + 1] = (uint32_t)(w + (r - run)) + 1;
			continue;
		}
		if (run != w)
			memmove(&s->v[w], &s->v[run],
			        (r - run) * sizeof(*s->v));
		w += r - run;
		run = r + 1;
		if (r < s->n)
			item_free_strings(&s->v[r]);
	}
	for (size_t i = 0; i < s->nslots; i++) {
		s->by_key[i] = to[s->by_key[i]];
		s->by_base[i] = to[s->by_base[i]];
	}
	free(to);
	s->n = w;
	s->n_dead = 0;
}

/* Applies one chunk of the change log: its counters, then its entries
 * (each key once): every old version goes first, so entries that traded
 * base names cannot collide. An entry put again keeps its place (only its
 * base name leaves the table), one removed is dropped at the end of the
 * load: the entries stay in key order. */
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
		size_t lens[3];
		if (l[0] == '+' && l[1] == ' ' &&
		    parse_entry(s, l + 2, l + strlen(l), &put[np], lens) == 0) {
			struct item *old =
			    find_key(s, put[np].uid, put[np].uidl);
			if (old != NULL && old->e.base != NULL) {
				table_delete(s, s->by_base, old->base_hash,
				             (size_t)(old - s->v),
				             slot_base_hash);
				if (old->bits & ITEM_OWN_BASE)
					free((char *)old->e.base);
				old->bits &= (uint8_t)~ITEM_OWN_BASE;
				old->e.base = NULL;
			}
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
				kill_item(s, find_key(s, (uint32_t)uid, uidl));
		} else {
			ret = -1;
		}
	}
	for (size_t i = 0; i < np && ret == 0; i++)
		if (put_item(s, &put[i], true, NULL) < 0)
			ret = -1;
	free(put);
	return ret;
}

/* Applies the change log's records (len bytes, NUL-terminated; chunks
 * begin with their uidvalidity line). */
static int
apply_log(struct fm_state *s, char *p, size_t len, const char *path,
          struct fm_error *err)
{
	char *end = p + len;
	/* Each line adds at most one entry. */
	size_t room = s->n;
	for (const char *q = p; (q = memchr(q, '\n', (size_t)(end - q))); q++)
		room++;
	reserve(s, room);
	char **lines = NULL;
	size_t n = 0, cap = 0, chunks = 0;
	int ret = 0;
	while (p < end && ret == 0) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
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
	if (ret == 0)
		drop_dead(s);
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
	s->buf = data; /* the entries will point into it */
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
	/* Sized once, for as many entries as the body can hold (the count
	 * is checked when they have been read), and v for a quarter more,
	 * what the change log may add: growing it then would copy it all,
	 * while room never written to takes no memory. */
	size_t room =
	    count < have / ENTRY_MIN ? (size_t)count : have / ENTRY_MIN;
	reserve(s, room + room / 4 + 16);
	size_t nslots = s->nslots;
	while (nslots < 2 * room)
		nslots *= 2;
	tables_rebuild(s, nslots);
	if (parse_body(s, body, have, (size_t)count, path, err) < 0)
		goto out;
	char *snap_id = xasprintf("%s %llu %zu %s", f[2],
	                          (unsigned long long)count, have, digest);
	size_t log_len, log_end;
	int lr = fm_reclog_read(path, snap_id, STATE_FILE_MAX, &s->logbuf,
	                        &log_len, &log_end, err);
	if (lr == 0 && s->logbuf != NULL)
		lr = apply_log(s, s->logbuf, log_len, path, err);
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
	return rc;
}

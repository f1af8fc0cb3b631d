/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "store/maildir.h"
#include "sync/plan.h"

/*
 * The views arrive as arrays in any order. The planner sorts arrays of
 * pointers to them (remote and state by UID, local and state by base, the
 * move sets by base), finds partners by binary search, and keeps one "done"
 * mark per local and remote message, so every message gets exactly one
 * decision: O(n log n) overall.
 */

struct fm_plan {
	struct fm_plan_action *v;
	size_t n, cap;
	struct fm_plan_summary sum;
};

/* A keyword: a slice of the caller's string. */
struct kw {
	const char *s;
	size_t len;
};

struct kwset {
	struct kw *v;
	size_t n, cap;
};

struct planner {
	const struct fm_plan_input *in;
	struct fm_plan *plan;
	uint32_t sync_mask; /* the flags that travel */
	bool void_state;    /* a UIDVALIDITY change voided the state */
	const struct fm_plan_remote **remote; /* by UID */
	const struct fm_plan_local **local;   /* by base */
	const struct fm_state_entry **state;  /* by UID */
	ptrdiff_t *state_li; /* state[i]'s position in local, or -1 */
	size_t n_state;
	const char **away, **moved_in; /* by strcmp() */
	size_t n_away, n_moved_in;
	bool *rdone, *ldone;
	struct kwset kb, kl, kr;
	struct fm_buf out, radd, rdel, ladd, ldel;
};

/* ------------------------------------------------------------------------
 * Sorting and finding.
 */

static int
cmp_remote_uid(const void *a, const void *b)
{
	uint32_t x = (*(const struct fm_plan_remote *const *)a)->uid;
	uint32_t y = (*(const struct fm_plan_remote *const *)b)->uid;
	return (x > y) - (x < y);
}

static int
cmp_local_base(const void *a, const void *b)
{
	return strcmp((*(const struct fm_plan_local *const *)a)->base,
	              (*(const struct fm_plan_local *const *)b)->base);
}

static int
cmp_state_uid(const void *a, const void *b)
{
	uint32_t x = (*(const struct fm_state_entry *const *)a)->uid;
	uint32_t y = (*(const struct fm_state_entry *const *)b)->uid;
	return (x > y) - (x < y);
}

static int
cmp_state_base(const void *a, const void *b)
{
	return strcmp((*(const struct fm_state_entry *const *)a)->base,
	              (*(const struct fm_state_entry *const *)b)->base);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool
has_str(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* Message-ID, then size, then UID or base: the pairing order. */
static int
cmp_key(const char *ma, uint64_t sa, const char *mb, uint64_t sb)
{
	int c = strcmp(ma, mb);
	if (c != 0)
		return c;
	return (sa > sb) - (sa < sb);
}

static int
cmp_local_key(const void *a, const void *b)
{
	const struct fm_plan_local *x = *(const struct fm_plan_local *const *)a;
	const struct fm_plan_local *y = *(const struct fm_plan_local *const *)b;
	int c = cmp_key(x->msgid, x->size, y->msgid, y->size);
	return c != 0 ? c : strcmp(x->base, y->base);
}

static int
cmp_remote_key(const void *a, const void *b)
{
	const struct fm_plan_remote *x =
	    *(const struct fm_plan_remote *const *)a;
	const struct fm_plan_remote *y =
	    *(const struct fm_plan_remote *const *)b;
	int c = cmp_key(x->msgid, x->size, y->msgid, y->size);
	return c != 0 ? c : (x->uid > y->uid) - (x->uid < y->uid);
}

static ptrdiff_t
find_remote(const struct planner *p, uint32_t uid)
{
	size_t lo = 0, hi = p->in->n_remote;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t u = p->remote[mid]->uid;
		if (u == uid)
			return (ptrdiff_t)mid;
		if (u < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static ptrdiff_t
find_local(const struct planner *p, const char *base)
{
	size_t lo = 0, hi = p->in->n_local;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(p->local[mid]->base, base);
		if (c == 0)
			return (ptrdiff_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static bool
find_state_uid(const struct planner *p, uint32_t uid)
{
	size_t lo = 0, hi = p->n_state;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t u = p->state[mid]->uid;
		if (u == uid)
			return true;
		if (u < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static bool
in_set(const char **set, size_t n, const char *base)
{
	return n > 0 && bsearch(&base, set, n, sizeof(*set), cmp_str) != NULL;
}

/* A sorted copy of a set of bases, without NULLs. */
static const char **
sorted_set(const char *const *v, size_t n, size_t *n_r)
{
	const char **set = xcalloc(n + 1, sizeof(*set));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i] != NULL)
			set[k++] = v[i];
	qsort(set, k, sizeof(*set), cmp_str);
	*n_r = k;
	return set;
}

/* ------------------------------------------------------------------------
 * Keywords: sets of space-separated words, compared ASCII
 * case-insensitively.
 */

static int
kw_cmp(const struct kw *a, const struct kw *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a->s[i];
		unsigned char y = (unsigned char)b->s[i];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
		if (x != y)
			return x < y ? -1 : 1;
	}
	return (a->len > b->len) - (a->len < b->len);
}

static int
kw_qcmp(const void *a, const void *b)
{
	return kw_cmp(a, b);
}

/* Splits s into set, sorted and without duplicates. */
static void
kw_parse(struct kwset *set, const char *s)
{
	set->n = 0;
	if (s == NULL)
		return;
	while (*s != '\0') {
		while (*s == ' ')
			s++;
		const char *start = s;
		while (*s != '\0' && *s != ' ')
			s++;
		if (s == start)
			break;
		if (set->n == set->cap) {
			set->cap = set->cap ? 2 * set->cap : 16;
			set->v =
			    xreallocarray(set->v, set->cap, sizeof(*set->v));
		}
		set->v[set->n++] = (struct kw){start, (size_t)(s - start)};
	}
	if (set->n < 2)
		return;
	qsort(set->v, set->n, sizeof(*set->v), kw_qcmp);
	size_t k = 1;
	for (size_t i = 1; i < set->n; i++)
		if (kw_cmp(&set->v[i], &set->v[k - 1]) != 0)
			set->v[k++] = set->v[i];
	set->n = k;
}

/* Whether two keyword strings name different sets. */
static bool
kw_differ(struct planner *p, const char *a, const char *b)
{
	if (fm_str_same(a, b))
		return false;
	kw_parse(&p->kl, a);
	kw_parse(&p->kr, b);
	if (p->kl.n != p->kr.n)
		return true;
	for (size_t i = 0; i < p->kl.n; i++)
		if (kw_cmp(&p->kl.v[i], &p->kr.v[i]) != 0)
			return true;
	return false;
}

static void
kw_put(struct fm_buf *b, const struct kw *k)
{
	/* The buffers have no practical maximum: appends cannot fail. */
	if (b->len > 0)
		(void)fm_buf_append_char(b, ' ');
	(void)fm_buf_append(b, k->s, k->len);
}

/* Merges keywords as flags are merged (see plan.h): three-way when
 * with_base, otherwise set beats clear. Leaves the result in p->out and the
 * differences in p->radd, rdel, ladd, ldel; returns whether there are any. */
static bool
kw_merge(struct planner *p, bool with_base, const char *b, const char *l,
         const char *r)
{
	fm_buf_reset(&p->out);
	fm_buf_reset(&p->radd);
	fm_buf_reset(&p->rdel);
	fm_buf_reset(&p->ladd);
	fm_buf_reset(&p->ldel);
	kw_parse(&p->kb, with_base ? b : NULL);
	kw_parse(&p->kl, l);
	kw_parse(&p->kr, r);
	size_t i = 0, j = 0, k = 0;
	while (i < p->kb.n || j < p->kl.n || k < p->kr.n) {
		const struct kw *min = NULL;
		if (i < p->kb.n)
			min = &p->kb.v[i];
		if (j < p->kl.n &&
		    (min == NULL || kw_cmp(&p->kl.v[j], min) < 0))
			min = &p->kl.v[j];
		if (k < p->kr.n &&
		    (min == NULL || kw_cmp(&p->kr.v[k], min) < 0))
			min = &p->kr.v[k];
		bool hb = i < p->kb.n && kw_cmp(&p->kb.v[i], min) == 0;
		bool hl = j < p->kl.n && kw_cmp(&p->kl.v[j], min) == 0;
		bool hr = k < p->kr.n && kw_cmp(&p->kr.v[k], min) == 0;
		bool has = with_base ? hb ^ ((hl ^ hb) | (hr ^ hb)) : hl || hr;
		/* The server's spelling first, then ours. */
		const struct kw *w = hr   ? &p->kr.v[k]
		                     : hl ? &p->kl.v[j]
		                          : &p->kb.v[i];
		if (has)
			kw_put(&p->out, w);
		if (has && !hr)
			kw_put(&p->radd, w);
		if (!has && hr)
			kw_put(&p->rdel, &p->kr.v[k]);
		if (has && !hl)
			kw_put(&p->ladd, w);
		if (!has && hl)
			kw_put(&p->ldel, &p->kl.v[j]);
		i += hb;
		j += hl;
		k += hr;
	}
	return p->radd.len + p->rdel.len + p->ladd.len + p->ldel.len > 0;
}

static const char *
buf_dup(const struct fm_buf *b)
{
	return b->len > 0 ? xstrndup(b->data, b->len) : NULL;
}

/* The keywords of one side, normalised, as a new string or NULL. */
static const char *
kw_normal(struct planner *p, const char *s)
{
	kw_merge(p, false, NULL, s, NULL);
	return buf_dup(&p->out);
}

/* ------------------------------------------------------------------------
 * Actions.
 */

static struct fm_plan_action *
add(struct planner *p, enum fm_plan_op op, uint32_t uid, const char *base)
{
	struct fm_plan *plan = p->plan;
	if (plan->n == plan->cap) {
		plan->cap = plan->cap ? 2 * plan->cap : 64;
		plan->v = xreallocarray(plan->v, plan->cap, sizeof(*plan->v));
	}
	struct fm_plan_action *a = &plan->v[plan->n++];
	memset(a, 0, sizeof(*a));
	a->op = op;
	a->uid = uid;
	a->base = base != NULL ? xstrdup(base) : NULL;
	return a;
}

/* One message on both sides: FLAGS (with a state entry b, only if
 * something differs) or LINK (without one, always). */
static void
merge(struct planner *p, const struct fm_state_entry *b,
      const struct fm_plan_local *l, const struct fm_plan_remote *r,
      enum fm_plan_link link)
{
	uint32_t m = p->sync_mask;
	uint32_t lf = l->flags;
	/* Flags the server cannot keep read as ours on every side. */
	uint32_t rf = (r->flags & m) | (lf & ~m);
	uint32_t t, bf = 0;
	if (b != NULL) {
		bf = (b->flags & m) | (lf & ~m);
		/* A flag changed on either side flips once: two sides that
		 * differ from the same base agree. */
		t = bf ^ ((lf ^ bf) | (rf ^ bf));
	} else {
		const uint32_t del = FM_MAILDIR_TRASHED;
		t = ((lf | rf) & ~del) | (lf & rf & del);
	}
	bool kw_same = b != NULL ? fm_str_same(b->keywords, l->keywords) &&
	                               fm_str_same(b->keywords, r->keywords)
	                         : fm_str_same(l->keywords, r->keywords);
	if (b != NULL && t == lf && t == rf && t == bf && kw_same)
		return;
	bool kw_change = kw_merge(p, b != NULL, b != NULL ? b->keywords : NULL,
	                          l->keywords, r->keywords);
	const char *kw = buf_dup(&p->out);
	/* Both sides agree: nothing to do unless the state differs from
	 * them. Then a FLAGS action that changes neither side records it:
	 * an engine that narrows the server's listing (CONDSTORE) takes the
	 * state's flags for the server's, and a state left behind (a pass
	 * killed between a change and its recording) would read as a change
	 * made here once the server's counters have moved past it. */
	if (b != NULL && t == lf && t == rf && !kw_change && t == bf &&
	    !kw_differ(p, b->keywords, kw)) {
		free((char *)kw);
		return;
	}
	struct fm_plan_action *a =
	    add(p, b != NULL ? FM_PLAN_FLAGS : FM_PLAN_LINK, r->uid, l->base);
	a->link = link;
	a->flags = t;
	a->local_flags = lf;
	a->remote_add = t & ~rf;
	a->remote_del = rf & ~t;
	a->keywords = kw;
	a->kw_remote_add = buf_dup(&p->radd);
	a->kw_remote_del = buf_dup(&p->rdel);
	a->kw_local_add = buf_dup(&p->ladd);
	a->kw_local_del = buf_dup(&p->ldel);
}

/* Every state entry: FLAGS, EXPUNGE_LOCAL, EXPUNGE_REMOTE, FORGET, or
 * nothing. */
static void
plan_state(struct planner *p)
{
	uint32_t m = p->sync_mask;
	for (size_t s = 0; s < p->n_state; s++) {
		const struct fm_state_entry *e = p->state[s];
		ptrdiff_t ri = find_remote(p, e->uid);
		ptrdiff_t li = p->state_li[s];
		if (ri >= 0)
			p->rdone[ri] = true;
		if (li >= 0)
			p->ldone[li] = true;
		if (e->base != NULL && in_set(p->away, p->n_away, e->base))
			continue; /* the move's replay owns it */
		const struct fm_plan_remote *r = ri >= 0 ? p->remote[ri] : NULL;
		const struct fm_plan_local *l = li >= 0 ? p->local[li] : NULL;
		if (e->base == NULL || (l == NULL && r == NULL)) {
			if (r == NULL)
				add(p, FM_PLAN_FORGET, e->uid, e->base);
		} else if (l != NULL && r != NULL) {
			merge(p, e, l, r, FM_PLAN_LINK_NONE);
		} else if (l != NULL) {
			struct fm_plan_action *a =
			    add(p, FM_PLAN_EXPUNGE_LOCAL, e->uid, e->base);
			a->flags = a->local_flags = l->flags;
			a->lost_change = l->flags != e->flags ||
			                 kw_differ(p, l->keywords, e->keywords);
		} else {
			struct fm_plan_action *a =
			    add(p, FM_PLAN_EXPUNGE_REMOTE, e->uid, e->base);
			a->flags = r->flags;
			a->lost_change = ((r->flags ^ e->flags) & m) != 0 ||
			                 kw_differ(p, r->keywords, e->keywords);
		}
	}
}

/* Local files whose delivery tag names a UID no state entry has. */
static void
plan_tags(struct planner *p)
{
	const struct fm_plan_input *in = p->in;
	if (p->void_state || in->state_uidvalidity == 0)
		return;
	for (size_t i = 0; i < in->n_local; i++) {
		const struct fm_plan_local *l = p->local[i];
		if (p->ldone[i] || l->uid_hint == 0 ||
		    find_state_uid(p, l->uid_hint))
			continue;
		ptrdiff_t ri = find_remote(p, l->uid_hint);
		if (ri < 0) {
			struct fm_plan_action *a =
			    add(p, FM_PLAN_EXPUNGE_LOCAL, l->uid_hint, l->base);
			a->flags = a->local_flags = l->flags;
			p->ldone[i] = true;
		} else if (!p->rdone[ri]) {
			merge(p, NULL, l, p->remote[ri], FM_PLAN_LINK_TAG);
			p->ldone[i] = p->rdone[ri] = true;
		}
	}
}

/* The rest, paired by (Message-ID, size) where possible. */
static void
plan_msgid(struct planner *p)
{
	const struct fm_plan_input *in = p->in;
	const struct fm_plan_local **lv = xcalloc(in->n_local + 1, sizeof(*lv));
	const struct fm_plan_remote **rv =
	    xcalloc(in->n_remote + 1, sizeof(*rv));
	size_t nl = 0, nr = 0;
	for (size_t i = 0; i < in->n_local; i++)
		if (!p->ldone[i] && has_str(p->local[i]->msgid))
			lv[nl++] = p->local[i];
	for (size_t i = 0; i < in->n_remote; i++)
		if (!p->rdone[i] && has_str(p->remote[i]->msgid))
			rv[nr++] = p->remote[i];
	qsort(lv, nl, sizeof(*lv), cmp_local_key);
	qsort(rv, nr, sizeof(*rv), cmp_remote_key);
	size_t i = 0, j = 0;
	while (i < nl && j < nr) {
		int c = cmp_key(lv[i]->msgid, lv[i]->size, rv[j]->msgid,
		                rv[j]->size);
		if (c < 0) {
			i++;
		} else if (c > 0) {
			j++;
		} else {
			merge(p, NULL, lv[i], rv[j], FM_PLAN_LINK_MSGID);
			p->ldone[find_local(p, lv[i]->base)] = true;
			p->rdone[find_remote(p, rv[j]->uid)] = true;
			i++;
			j++;
		}
	}
	free(lv);
	free(rv);
}

static void
plan_new(struct planner *p)
{
	const struct fm_plan_input *in = p->in;
	for (size_t i = 0; i < in->n_local; i++) {
		const struct fm_plan_local *l = p->local[i];
		if (p->ldone[i] || in_set(p->moved_in, p->n_moved_in, l->base))
			continue;
		struct fm_plan_action *a = add(p, FM_PLAN_UPLOAD, 0, l->base);
		a->flags = a->local_flags = l->flags;
		a->remote_add = l->flags & p->sync_mask;
		a->keywords = kw_normal(p, l->keywords);
	}
	for (size_t i = 0; i < in->n_remote; i++) {
		const struct fm_plan_remote *r = p->remote[i];
		if (p->rdone[i])
			continue;
		struct fm_plan_action *a =
		    add(p, FM_PLAN_DOWNLOAD, r->uid, NULL);
		a->flags = r->flags & p->sync_mask;
		a->keywords = kw_normal(p, r->keywords);
	}
}

static int
cmp_action(const void *a, const void *b)
{
	const struct fm_plan_action *x = a, *y = b;
	if (x->op != y->op)
		return x->op < y->op ? -1 : 1;
	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	if (x->base == NULL || y->base == NULL)
		return (x->base != NULL) - (y->base != NULL);
	return strcmp(x->base, y->base);
}

static bool
guard_trips(size_t deletes, size_t total)
{
	return deletes > FM_PLAN_GUARD_MIN &&
	       deletes * 100 > total * FM_PLAN_GUARD_PERCENT;
}

static void
summarise(struct planner *p)
{
	const struct fm_plan_input *in = p->in;
	struct fm_plan_summary *s = &p->plan->sum;
	s->uidvalidity_reset = p->void_state && in->state_uidvalidity != 0;
	s->local_total = in->n_local + in->n_unchanged;
	s->remote_total = in->n_remote + in->n_unchanged;
	for (size_t i = 0; i < p->plan->n; i++) {
		switch (p->plan->v[i].op) {
		case FM_PLAN_FORGET:
			s->forgets++;
			break;
		case FM_PLAN_EXPUNGE_LOCAL:
			s->local_deletes++;
			break;
		case FM_PLAN_EXPUNGE_REMOTE:
			s->remote_deletes++;
			break;
		case FM_PLAN_LINK:
			s->links++;
			break;
		case FM_PLAN_FLAGS:
			s->flag_changes++;
			break;
		case FM_PLAN_DOWNLOAD:
			s->downloads++;
			break;
		case FM_PLAN_UPLOAD:
			s->uploads++;
			break;
		}
	}
	bool trips = guard_trips(s->local_deletes, s->local_total) ||
	             guard_trips(s->remote_deletes, s->remote_total);
	s->needs_confirmation = trips && !in->force;
	s->forced = trips && in->force;
	s->uidvalidity = in->uidvalidity;
	s->uidnext = in->uidnext;
	if (in->n_remote > 0) {
		uint32_t top = p->remote[in->n_remote - 1]->uid;
		if (top != UINT32_MAX && top + 1 > s->uidnext)
			s->uidnext = top + 1;
	}
}

/* ------------------------------------------------------------------------
 * Checking the input.
 */

static int
check_input(struct planner *p, struct fm_error *err)
{
	const struct fm_plan_input *in = p->in;
	if (in->uidvalidity == 0)
		return fm_error_set(
		    err, FM_ERR_PROTOCOL,
		    _("The server reported a UIDVALIDITY of 0."));
	for (size_t i = 0; i < in->n_remote; i++) {
		uint32_t uid = p->remote[i]->uid;
		if (uid == 0)
			return fm_error_set(err, FM_ERR_PROTOCOL,
			                    _("The server listed a message "
			                      "with UID 0."));
		if (i > 0 && p->remote[i - 1]->uid == uid)
			return fm_error_set(err, FM_ERR_PROTOCOL,
			                    _("The server listed UID %lu "
			                      "twice."),
			                    (unsigned long)uid);
	}
	for (size_t i = 0; i < in->n_local; i++)
		if (!has_str(in->local[i].base))
			return fm_error_set(err, FM_ERR_LOCAL,
			                    _("A local message has no name."));
	qsort(p->local, in->n_local, sizeof(*p->local), cmp_local_base);
	for (size_t i = 1; i < in->n_local; i++)
		if (strcmp(p->local[i - 1]->base, p->local[i]->base) == 0)
			return fm_error_set(err, FM_ERR_LOCAL,
			                    _("The local message %s is listed "
			                      "twice."),
			                    p->local[i]->base);
	if (p->void_state)
		return 0;
	for (size_t i = 0; i < p->n_state; i++) {
		uint32_t uid = p->state[i]->uid;
		if (uid == 0)
			return fm_error_set(err, FM_ERR_LOCAL,
			                    _("The sync state holds an entry "
			                      "with UID 0."));
		if (i > 0 && p->state[i - 1]->uid == uid)
			return fm_error_set(err, FM_ERR_LOCAL,
			                    _("The sync state holds UID %lu "
			                      "twice."),
			                    (unsigned long)uid);
	}
	/* A base in two entries: two entries find the same local file, or,
	 * among the bases not here (usually few), two are equal. */
	const struct fm_state_entry **absent =
	    xcalloc(p->n_state + 1, sizeof(*absent));
	size_t n_absent = 0;
	const char *dup = NULL;
	for (size_t i = 0; i < p->n_state && dup == NULL; i++) {
		const char *base = p->state[i]->base;
		ptrdiff_t li = base != NULL ? find_local(p, base) : -1;
		p->state_li[i] = li;
		if (li >= 0 && p->ldone[li])
			dup = base;
		else if (li >= 0)
			p->ldone[li] = true;
		else if (base != NULL)
			absent[n_absent++] = p->state[i];
	}
	qsort(absent, n_absent, sizeof(*absent), cmp_state_base);
	for (size_t i = 1; i < n_absent && dup == NULL; i++)
		if (strcmp(absent[i - 1]->base, absent[i]->base) == 0)
			dup = absent[i]->base;
	int rc = 0;
	if (dup != NULL)
		rc = fm_error_set(err, FM_ERR_LOCAL,
		                  _("The sync state gives the local message %s "
		                    "two UIDs."),
		                  dup);
	free(absent);
	memset(p->ldone, 0, in->n_local * sizeof(*p->ldone));
	return rc;
}

/* ------------------------------------------------------------------------
 * The API.
 */

int
fm_plan_make(const struct fm_plan_input *in, struct fm_plan **plan_r,
             struct fm_error *err)
{
	struct planner p = {.in = in};
	*plan_r = NULL;
	p.plan = xcalloc(1, sizeof(*p.plan));
	p.sync_mask = ~in->local_only_flags;
	p.void_state = in->state_uidvalidity != in->uidvalidity;
	p.remote = xcalloc(in->n_remote + 1, sizeof(*p.remote));
	for (size_t i = 0; i < in->n_remote; i++)
		p.remote[i] = &in->remote[i];
	qsort(p.remote, in->n_remote, sizeof(*p.remote), cmp_remote_uid);
	p.local = xcalloc(in->n_local + 1, sizeof(*p.local));
	for (size_t i = 0; i < in->n_local; i++)
		p.local[i] = &in->local[i];
	p.n_state = p.void_state ? 0 : in->n_synced;
	p.state = xcalloc(p.n_state + 1, sizeof(*p.state));
	for (size_t i = 0; i < p.n_state; i++)
		p.state[i] = &in->synced[i];
	qsort(p.state, p.n_state, sizeof(*p.state), cmp_state_uid);
	p.state_li = xcalloc(p.n_state + 1, sizeof(*p.state_li));
	p.away = sorted_set(in->moved_away, in->n_moved_away, &p.n_away);
	p.moved_in = sorted_set(in->moved_in, in->n_moved_in, &p.n_moved_in);
	p.rdone = xcalloc(in->n_remote + 1, sizeof(*p.rdone));
	p.ldone = xcalloc(in->n_local + 1, sizeof(*p.ldone));
	fm_buf_init(&p.out, SIZE_MAX / 4);
	fm_buf_init(&p.radd, SIZE_MAX / 4);
	fm_buf_init(&p.rdel, SIZE_MAX / 4);
	fm_buf_init(&p.ladd, SIZE_MAX / 4);
	fm_buf_init(&p.ldel, SIZE_MAX / 4);

	int rc = check_input(&p, err);
	if (rc == 0) {
		/* A file moved away but still here is left alone too. */
		for (size_t i = 0; i < in->n_local; i++)
			if (in_set(p.away, p.n_away, p.local[i]->base))
				p.ldone[i] = true;
		plan_state(&p);
		plan_tags(&p);
		plan_msgid(&p);
		plan_new(&p);
		if (p.plan->n > 1)
			qsort(p.plan->v, p.plan->n, sizeof(*p.plan->v),
			      cmp_action);
		summarise(&p);
		*plan_r = p.plan;
		p.plan = NULL;
	}
	fm_plan_free(&p.plan);
	free(p.remote);
	free(p.local);
	free(p.state);
	free(p.state_li);
	free(p.away);
	free(p.moved_in);
	free(p.rdone);
	free(p.ldone);
	free(p.kb.v);
	free(p.kl.v);
	free(p.kr.v);
	fm_buf_free(&p.out);
	fm_buf_free(&p.radd);
	fm_buf_free(&p.rdel);
	fm_buf_free(&p.ladd);
	fm_buf_free(&p.ldel);
	return rc;
}

void
fm_plan_free(struct fm_plan **plan)
{
	if (plan == NULL || *plan == NULL)
		return;
	struct fm_plan *pl = *plan;
	for (size_t i = 0; i < pl->n; i++) {
		struct fm_plan_action *a = &pl->v[i];
		free((char *)a->base);
		free((char *)a->keywords);
		free((char *)a->kw_remote_add);
		free((char *)a->kw_remote_del);
		free((char *)a->kw_local_add);
		free((char *)a->kw_local_del);
	}
	free(pl->v);
	free(pl);
	*plan = NULL;
}

size_t
fm_plan_count(const struct fm_plan *plan)
{
	return plan->n;
}

const struct fm_plan_action *
fm_plan_action_at(const struct fm_plan *plan, size_t i)
{
	return i < plan->n ? &plan->v[i] : NULL;
}

const struct fm_plan_summary *
fm_plan_summary(const struct fm_plan *plan)
{
	return &plan->sum;
}

const char *
fm_plan_op_name(enum fm_plan_op op)
{
	switch (op) {
	case FM_PLAN_FORGET:
		return "forget";
	case FM_PLAN_EXPUNGE_LOCAL:
		return "expunge-local";
	case FM_PLAN_EXPUNGE_REMOTE:
		return "expunge-remote";
	case FM_PLAN_LINK:
		return "link";
	case FM_PLAN_FLAGS:
		return "flags";
	case FM_PLAN_DOWNLOAD:
		return "download";
	case FM_PLAN_UPLOAD:
		return "upload";
	}
	return "?";
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Step 4's server listing of one folder: the remote list a folder run
 * plans with, from UID FETCH answers (narrowed by CONDSTORE and QRESYNC,
 * see doc/HACKING, "IMAP synchronisation"), and the helpers the pipeline
 * (prefetch.c) builds the same list with. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "log/log.h"
#include "sync/state.h"

struct remote *
imap_remote_add(struct folder_run *fr, uint32_t uid)
{
	if (fr->rn == fr->rcap) {
		fr->rcap = fr->rcap != 0 ? 2 * fr->rcap : 256;
		fr->rv = xreallocarray(fr->rv, fr->rcap, sizeof(*fr->rv));
	}
	struct remote *r = &fr->rv[fr->rn++];
	memset(r, 0, sizeof(*r));
	r->uid = uid;
	return r;
}

void
imap_remote_take_flags(struct remote *rm, struct imap_fetched *fx)
{
	if (fx->have_flags) {
		free(rm->keywords);
		rm->flags = fx->flags;
		rm->keywords = fx->keywords;
		rm->have_flags = true;
	} else {
		free(fx->keywords);
	}
	fx->keywords = NULL;
}

static int
cmp_remote(const void *a, const void *b)
{
	const struct remote *x = a, *y = b;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

struct remote *
imap_remote_find(struct folder_run *fr, uint32_t uid)
{
	struct remote key = {.uid = uid};
	return bsearch(&key, fr->rv, fr->rn, sizeof(*fr->rv), cmp_remote);
}

size_t
imap_remote_lower(const struct folder_run *fr, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (fr->rv[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Marks the remote entries whose UIDs the set names as gone; fr->rv is
 * sorted by UID. */
static void
mark_vanished(struct folder_run *fr, const struct mailimap_set *set)
{
	if (set == NULL || set->set_list == NULL)
		return;
	for (clistiter *it = clist_begin(set->set_list); it != NULL;
	     it = clist_next(it)) {
		const struct mailimap_set_item *si = clist_content(it);
		/* 0 is "*", not allowed here; read it as the largest. */
		uint32_t a = si->set_first != 0 ? si->set_first : UINT32_MAX;
		uint32_t b = si->set_last != 0 ? si->set_last : UINT32_MAX;
		if (a > b) {
			uint32_t t = a;
			a = b;
			b = t;
		}
		for (size_t i = imap_remote_lower(fr, fr->rn, a);
		     i < fr->rn && fr->rv[i].uid <= b; i++)
			fr->rv[i].gone = true;
	}
}

/* The UIDs a VANISHED response names, or NULL if ed is none. */
static const struct mailimap_set *
vanished_of(const struct mailimap_extension_data *ed)
{
	if (ed->ext_extension->ext_id != MAILIMAP_EXTENSION_QRESYNC ||
	    ed->ext_type != MAILIMAP_QRESYNC_TYPE_VANISHED ||
	    ed->ext_data == NULL)
		return NULL;
	const struct mailimap_qresync_vanished *v = ed->ext_data;
	return v->qr_known_uids;
}

/* Drops from the remote list every UID that a VANISHED response of the
 * last command names (QRESYNC): first is the one libetpan handed out (it
 * hands out one only; the others stay in the response's extension list),
 * freed here. Expunges the server reports while the command runs
 * (VANISHED without EARLIER) count as well: those messages are gone too.
 */
bool
imap_drop_vanished(struct folder_run *fr,
                   struct mailimap_qresync_vanished *first)
{
	const struct mailimap_response_info *ri = fr->p->s->imap_response_info;
	clistiter *ext = ri != NULL && ri->rsp_extension_list != NULL
	                     ? clist_begin(ri->rsp_extension_list)
	                     : NULL;
	bool any = first != NULL;
	for (clistiter *it = ext; it != NULL && !any; it = clist_next(it))
		any = vanished_of(clist_content(it)) != NULL;
	if (!any)
		return false;
	qsort(fr->rv, fr->rn, sizeof(*fr->rv), cmp_remote);
	if (first != NULL) {
		mark_vanished(fr, first->qr_known_uids);
		mailimap_qresync_vanished_free(first);
	}
	for (clistiter *it = ext; it != NULL; it = clist_next(it))
		mark_vanished(fr, vanished_of(clist_content(it)));
	size_t k = 0;
	for (size_t i = 0; i < fr->rn; i++) {
		if (fr->rv[i].gone) {
			free(fr->rv[i].keywords);
			free(fr->rv[i].msgid);
			continue;
		}
		fr->rv[k++] = fr->rv[i];
	}
	fr->rn = k;
	return true;
}

/* Puts a listing's FETCH responses (res, may be NULL) into the remote
 * list; see list_range. merge: entries may exist already (sorted). */
static void
take_listing(struct folder_run *fr, clist *res, uint32_t first, uint32_t last,
             bool identity, bool merge)
{
	for (clistiter *it = res != NULL ? clist_begin(res) : NULL; it != NULL;
	     it = clist_next(it)) {
		struct imap_fetched fx;
		imap_parse_att(clist_content(it), &fx);
		if (fx.uid == 0 || fx.uid < first ||
		    (last != 0 && fx.uid > last)) {
			free(fx.keywords);
			free(fx.msgid);
			continue;
		}
		struct remote *rm = merge ? imap_remote_find(fr, fx.uid) : NULL;
		if (rm == NULL)
			rm = imap_remote_add(fr, fx.uid);
		imap_remote_take_flags(rm, &fx);
		if (identity) {
			rm->size = fx.size;
			free(rm->msgid);
			rm->msgid = fx.msgid;
		} else {
			free(fx.msgid);
		}
	}
}

/* UID FETCH first:last (last 0: "*") of flags, and with identity also
 * size and Message-ID, into the remote list; only UIDs >= first count
 * (a range "N:*" past the end names the last message). With changedsince
 * only messages changed since that modseq come back; with QRESYNC
 * enabled the command also asks for the UIDs expunged since (VANISHED),
 * and those leave the list. */
static int
list_range(struct folder_run *fr, uint32_t first, uint32_t last, bool identity,
           uint64_t changedsince, struct fm_error *err)
{
	struct pass *p = fr->p;
	struct mailimap_set *set =
	    mailimap_set_new_interval(first, last); /* last 0 means '*' */
	struct mailimap_fetch_type *ft = imap_fetch_type(true, identity, false);
	clist *res = NULL;
	struct mailimap_qresync_vanished *gone = NULL;
	bool vanished = changedsince > 0 && p->qresync;
	int r;
	if (vanished)
		r = mailimap_uid_fetch_qresync(p->s, set, ft, changedsince,
		                               &res, &gone);
	else if (changedsince > 0)
		r = mailimap_uid_fetch_changedsince(p->s, set, ft, changedsince,
		                                    &res);
	else
		r = mailimap_uid_fetch(p->s, set, ft, &res);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR) {
		char what[512];
		snprintf(what, sizeof(what), _("listing the messages of %s"),
		         fr->f->local);
		return fm_imap_fail(p->imap, what, err);
	}
	take_listing(fr, res, first, last, identity, changedsince > 0);
	if (res != NULL)
		mailimap_fetch_list_free(res);
	if (vanished)
		imap_drop_vanished(fr, gone);
	return 0;
}

/* The remote list as the state knows it: its messages below next, with
 * their flags. */
void
imap_remote_from_state(struct folder_run *fr, uint32_t next)
{
	for (size_t i = 0; i < fm_state_count(fr->st); i++) {
		const struct fm_state_entry *e = fm_state_entry_at(fr->st, i);
		if (e->uid >= next)
			break;
		struct remote *rm = imap_remote_add(fr, e->uid);
		rm->flags = e->flags;
		bool had;
		rm->keywords = imap_kw_strip(e->keywords, &had);
		rm->have_flags = true;
	}
}

/* Sorts the remote list by UID. A UID listed twice would make the plan
 * fail: the first stays. */
void
imap_listing_done(struct folder_run *fr)
{
	qsort(fr->rv, fr->rn, sizeof(*fr->rv), cmp_remote);
	size_t k = 0;
	for (size_t i = 0; i < fr->rn; i++) {
		if (k > 0 && fr->rv[k - 1].uid == fr->rv[i].uid) {
			free(fr->rv[i].keywords);
			free(fr->rv[i].msgid);
			continue;
		}
		fr->rv[k++] = fr->rv[i];
	}
	fr->rn = k;
}

static size_t
old_entries(struct fm_state *st, uint32_t below)
{
	size_t n = 0;
	for (size_t i = 0; i < fm_state_count(st); i++)
		n += fm_state_entry_at(st, i)->uid < below;
	return n;
}

int
imap_list_remote(struct folder_run *fr, struct fm_error *err)
{
	struct fm_state *st = fr->st;
	bool known =
	    fm_state_uidvalidity(st) == fr->validity && fm_state_count(st) > 0;
	uint32_t next = known ? fm_state_uidnext(st) : 1;
	if (next == 0)
		next = 1;
	if (fr->exists == 0)
		return 0;
	if (!known)
		return list_range(fr, 1, 0, true, 0, err);
	size_t old = old_entries(st, next);
	/* Messages the state knows: their flags. */
	bool narrow = fr->p->condstore && fm_state_highestmodseq(st) > 0 &&
	              fr->modseq > 0 && next > 1;
	if (narrow) /* Start from the state, then apply what changed. */
		imap_remote_from_state(fr, next);
	size_t before_new = fr->rn;
	if (fr->uidnext == 0 || fr->uidnext > next) {
		/* New messages (or, without UIDNEXT, maybe some). */
		if (list_range(fr, next, 0, true, 0, err) < 0)
			return -1;
	}
	size_t n_new = fr->rn - before_new;
	if (narrow) {
		bool untouched = fr->modseq == fm_state_highestmodseq(st);
		bool no_expunge = fr->exists == old + n_new;
		if (no_expunge && untouched)
			goto sorted;
		if (no_expunge || fr->p->qresync) {
			/* What changed since; with QRESYNC also what was
			 * expunged (VANISHED), so expunges need no full
			 * listing either. */
			qsort(fr->rv, fr->rn, sizeof(*fr->rv), cmp_remote);
			if (list_range(fr, 1, next - 1, false,
			               fm_state_highestmodseq(st), err) < 0)
				return -1;
			if (fr->rn == fr->exists)
				goto sorted;
			/* The count disagrees with SELECT's: the folder
			 * changed while it was listed, or the state is out
			 * of step with the server. */
			fm_log_debug("%s/%s: %zu messages listed, %u exist; "
			             "listing them all",
			             fr->p->acct->name, fr->f->local, fr->rn,
			             fr->exists);
		}
		/* Something was expunged: the full listing says what. */
		for (size_t i = 0; i < fr->rn; i++)
			if (fr->rv[i].uid < next) {
				free(fr->rv[i].keywords);
				fr->rv[i].keywords = NULL;
				fr->rv[i].uid = 0;
			}
		size_t k = 0;
		for (size_t i = 0; i < fr->rn; i++)
			if (fr->rv[i].uid != 0)
				fr->rv[k++] = fr->rv[i];
		fr->rn = k;
	}
	if (list_range(fr, 1, next - 1, false, 0, err) < 0)
		return -1;
sorted:
	imap_listing_done(fr);
	return 0;
}

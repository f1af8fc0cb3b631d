/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Step 3 of an IMAP pass (see sync.c): the journal's moves replayed on the
 * server, and its deletions of messages the folders' states do not know.
 *
 * The records are taken per message (a base name), for their net effect:
 * the message is to end up where its last move took it, or deleted. Its
 * server copy is looked for in every folder the records name, in their
 * order: by its state entry; else, as the folder's plan would pair it, by
 * its delivery tag or by Message-ID and size among the UIDs the state
 * cannot vouch for. A copy the state does not know is there after a kill:
 * a download not recorded yet (with no state file at all, or a void one,
 * when the first pass of the folder was killed), or a message a pass put
 * there whose new UID was lost (an APPEND, or a move replayed here, also
 * one whose pass died before the journal heard of it, so that its records
 * come again). While the local file is in the folder, its plan pairs the
 * two; once the user has moved or deleted the file, only this step can:
 * left alone, the copy comes down again where it was, and a moved message
 * is also uploaded where it went. Message-ID and size come from the file
 * where it went, or from the folders' lists of what passes put there
 * (uploads.c), which a move extends before the copy moves.
 *
 * A state entry whose UID the server no longer has (the copy moved on by a
 * pass that died before recording it) is dropped once the copy is found
 * elsewhere; its flags stay the base of the three-way merge where the copy
 * ends up. A deletion of a copy a state knows is left to that folder's
 * plan (EXPUNGE_REMOTE), which does many at once. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "log/log.h"
#include "store/maildir.h"
#include "sync/journal.h"

/* One message the pending records move or delete. */
struct chain {
	char *base;        /* its base name (a move keeps it) */
	char **folders;    /* every folder the records name, first where it
	                    * was, without repeats */
	uint32_t *tag_uid; /* per folder: the UID its delivery tag names */
	bool *tag_done;    /* per folder: tag_uid was looked for */
	size_t n;
	char *final; /* where it is to be; NULL: deleted */
	bool skip;   /* nothing for this step to do */
};

struct replay {
	struct chain *v;
	size_t n;
	uint64_t last_seq;
};

static size_t
chain_folder(struct chain *c, const char *folder)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->folders[i], folder) == 0)
			return i;
	c->folders = xreallocarray(c->folders, c->n + 1, sizeof(*c->folders));
	c->tag_uid = xreallocarray(c->tag_uid, c->n + 1, sizeof(*c->tag_uid));
	c->tag_done =
	    xreallocarray(c->tag_done, c->n + 1, sizeof(*c->tag_done));
	c->folders[c->n] = xstrdup(folder);
	c->tag_uid[c->n] = 0;
	c->tag_done[c->n] = false;
	return c->n++;
}

static int
collect_record(void *ctx, const struct fm_journal_record *r,
               struct fm_error *err)
{
	(void)err;
	struct replay *rp = ctx;
	rp->last_seq = r->seq;
	if (r->op != FM_JOURNAL_MOVE && r->op != FM_JOURNAL_DELETE)
		return 0;
	/* The message's chain: the one whose message is now where this
	 * record finds it. */
	struct chain *c = NULL;
	for (size_t i = rp->n; c == NULL && i-- > 0;)
		if (rp->v[i].final != NULL &&
		    strcmp(rp->v[i].base, r->base) == 0 &&
		    strcmp(rp->v[i].final, r->folder) == 0)
			c = &rp->v[i];
	if (c == NULL) {
		rp->v = xreallocarray(rp->v, rp->n + 1, sizeof(*rp->v));
		c = &rp->v[rp->n++];
		memset(c, 0, sizeof(*c));
		c->base = xstrdup(r->base);
		chain_folder(c, r->folder);
	}
	free(c->final);
	c->final = NULL;
	if (r->op == FM_JOURNAL_MOVE) {
		const char *to_base = r->to_base != NULL ? r->to_base : r->base;
		if (strcmp(to_base, c->base) != 0) {
			free(c->base);
			c->base = xstrdup(to_base);
		}
		c->final = xstrdup(r->to_folder);
		chain_folder(c, r->to_folder);
	}
	return 0;
}

static void
replay_free(struct replay *rp)
{
	for (size_t i = 0; i < rp->n; i++) {
		struct chain *c = &rp->v[i];
		for (size_t k = 0; k < c->n; k++)
			free(c->folders[k]);
		free(c->folders);
		free(c->tag_uid);
		free(c->tag_done);
		free(c->base);
		free(c->final);
	}
	free(rp->v);
}

static bool
has_tag(const char *base)
{
	size_t tl;
	return fm_maildir_base_tag(base, &tl) != NULL && tl == 32;
}

struct wanted_tag {
	char tag[32];
	uint32_t *uid;
};

static int
cmp_wanted(const void *a, const void *b)
{
	return memcmp(((const struct wanted_tag *)a)->tag,
	              ((const struct wanted_tag *)b)->tag, 32);
}

/* For every chain through folder whose base carries a delivery tag: the
 * UID in [lo, hi) whose download into folder under validity gave it that
 * tag. One walk over the range serves them all. */
static void
find_tags(struct pass *p, struct replay *rp, const char *folder,
          uint32_t validity, uint32_t lo, uint32_t hi)
{
	struct wanted_tag *w = NULL;
	size_t n = 0;
	for (size_t i = 0; i < rp->n; i++) {
		struct chain *c = &rp->v[i];
		for (size_t k = 0; k < c->n; k++) {
			if (c->tag_done[k] ||
			    strcmp(c->folders[k], folder) != 0)
				continue;
			c->tag_done[k] = true;
			size_t tl;
			const char *t = fm_maildir_base_tag(c->base, &tl);
			if (t == NULL || tl != 32)
				continue;
			w = xreallocarray(w, n + 1, sizeof(*w));
			memcpy(w[n].tag, t, 32);
			w[n++].uid = &c->tag_uid[k];
		}
	}
	if (n > 1)
		qsort(w, n, sizeof(*w), cmp_wanted);
	for (uint32_t u = lo; n > 0 && u < hi; u++) {
		struct wanted_tag key;
		char tag[33];
		char *k = imap_key_of(validity, u);
		fm_store_key_tag(p->acct->name, folder, k, tag);
		free(k);
		memcpy(key.tag, tag, 32);
		size_t a = 0, b = n;
		while (a < b) {
			size_t mid = a + (b - a) / 2;
			if (cmp_wanted(&w[mid], &key) < 0)
				a = mid + 1;
			else
				b = mid;
		}
		for (; a < n && cmp_wanted(&w[a], &key) == 0; a++)
			if (*w[a].uid == 0)
				*w[a].uid = u;
	}
	free(w);
}

/* A Message-ID that goes into a SEARCH as an atom or a quoted string. */
static bool
searchable(const char *msgid)
{
	size_t n = 0;
	for (const unsigned char *c = (const unsigned char *)msgid; *c != '\0';
	     c++, n++)
		if (*c <= ' ' || *c >= 0x7f || *c == '"' || *c == '\\')
			return false;
	return n > 0 && n < 1000;
}

/* The Message-ID and size (as the server counts them) of the chain's
 * message: from its file where it went, else from a list of what passes
 * put into one of its folders. *msgid_r NULL when neither tells. */
static void
identity(struct pass *p, const struct chain *c, char **msgid_r,
         uint64_t *size_r)
{
	*msgid_r = NULL;
	*size_r = 0;
	struct fm_store_msg *lv = NULL;
	size_t ln = 0;
	struct fm_error e;
	fm_error_clear(&e);
	struct folder *f =
	    c->final != NULL ? imap_folder_by_local(p, c->final) : NULL;
	if (f != NULL && f->on_local &&
	    fm_store_folder_msgs(p->store, p->acct->name, c->final, &lv, &ln,
	                         &e) == 0) {
		for (size_t i = 0; i < ln && *msgid_r == NULL; i++) {
			if (strcmp(lv[i].base, c->base) != 0 ||
			    lv[i].message_id == NULL)
				continue;
			char *path = imap_folder_path(p, c->final, lv[i].file);
			*size_r = imap_crlf_size(path, lv[i].size);
			free(path);
			*msgid_r = xstrdup(lv[i].message_id);
		}
		fm_store_msgs_free(lv, ln);
	}
	for (size_t k = 0; k < c->n && *msgid_r == NULL; k++) {
		struct imap_uploads up;
		imap_uploads_load(p, c->folders[k], &up);
		const struct imap_upload *u = imap_uploads_find(&up, c->base);
		if (u != NULL && u->msgid != NULL) {
			*msgid_r = xstrdup(u->msgid);
			*size_r = u->size;
		}
		imap_uploads_free(&up);
	}
}

/* Whether a list of what passes put into one of the chain's folders names
 * its message. */
static bool
listed(struct pass *p, const struct chain *c)
{
	bool found = false;
	for (size_t k = 0; k < c->n && !found; k++) {
		struct imap_uploads up;
		imap_uploads_load(p, c->folders[k], &up);
		found = imap_uploads_find(&up, c->base) != NULL;
		imap_uploads_free(&up);
	}
	return found;
}

/* UID FETCH of uid's Message-ID and size in the selected folder: 1 when
 * the server has it (*msgid_r may still be NULL), 0 when it does not. */
static int
fetch_identity(struct pass *p, uint32_t uid, char **msgid_r, uint64_t *size_r,
               struct fm_error *err)
{
	*msgid_r = NULL;
	*size_r = 0;
	uint32_t one = uid;
	struct mailimap_set *set = imap_uid_set(&one, 1);
	struct mailimap_fetch_type *ft = imap_fetch_type(false, true, false);
	clist *fl = NULL;
	int r = mailimap_uid_fetch(p->s, set, ft, &fl);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	bool have = false;
	for (clistiter *it =
	         r == MAILIMAP_NO_ERROR && fl != NULL ? clist_begin(fl) : NULL;
	     it != NULL; it = clist_next(it)) {
		struct imap_fetched fx;
		imap_parse_att(clist_content(it), &fx);
		free(fx.keywords);
		if (fx.uid == uid && !have) {
			have = true;
			*msgid_r = fx.msgid;
			*size_r = fx.size;
		} else {
			free(fx.msgid);
		}
	}
	if (fl != NULL)
		mailimap_fetch_list_free(fl);
	if (r != MAILIMAP_NO_ERROR && fm_net_failed(fm_imap_conn(p->imap)))
		return fm_imap_fail(p->imap, _("moving a message"), err);
	return have;
}

/* The UID of a message in the selected folder with that Message-ID and
 * size, paired as the folder's plan pairs: at lo or above, and not a UID
 * the state knows (valid: the state's UIDs are the server's). 0 if there
 * is none. */
static int
uid_by_msgid(struct pass *p, const char *msgid, uint64_t size,
             const struct fm_state *st, bool valid, uint32_t lo,
             uint32_t *uid_r, struct fm_error *err)
{
	*uid_r = 0;
	if (msgid == NULL || !searchable(msgid))
		return 0;
	struct mailimap_search_key *key =
	    mailimap_search_key_new_multiple_empty();
	mailimap_search_key_multiple_add(
	    key, mailimap_search_key_new_uid(mailimap_set_new_interval(lo, 0)));
	mailimap_search_key_multiple_add(
	    key, mailimap_search_key_new_header(xstrdup("Message-ID"),
	                                        xstrdup(msgid)));
	clist *res = NULL;
	int r = mailimap_uid_search(p->s, NULL, key, &res);
	mailimap_search_key_free(key);
	uint32_t *uids = NULL;
	size_t n = 0;
	for (clistiter *it = r == MAILIMAP_NO_ERROR && res != NULL
	                         ? clist_begin(res)
	                         : NULL;
	     it != NULL; it = clist_next(it)) {
		uint32_t u = *(uint32_t *)clist_content(it);
		/* "lo:*" names the last message even below lo. */
		if (u < lo || (valid && fm_state_find_uid(st, u) != NULL))
			continue;
		uids = xreallocarray(uids, n + 1, sizeof(*uids));
		uids[n++] = u;
	}
	if (res != NULL)
		mailimap_search_result_free(res);
	clist *fl = NULL;
	if (r == MAILIMAP_NO_ERROR && n > 0) {
		struct mailimap_set *set = imap_uid_set(uids, n);
		struct mailimap_fetch_type *ft =
		    imap_fetch_type(false, true, false);
		r = mailimap_uid_fetch(p->s, set, ft, &fl);
		mailimap_fetch_type_free(ft);
		mailimap_set_free(set);
	}
	free(uids);
	for (clistiter *it =
	         r == MAILIMAP_NO_ERROR && fl != NULL ? clist_begin(fl) : NULL;
	     it != NULL; it = clist_next(it)) {
		struct imap_fetched fx;
		imap_parse_att(clist_content(it), &fx);
		if (fx.uid >= lo && fx.msgid != NULL &&
		    strcmp(fx.msgid, msgid) == 0 && fx.size == size &&
		    (*uid_r == 0 || fx.uid < *uid_r))
			*uid_r = fx.uid;
		free(fx.keywords);
		free(fx.msgid);
	}
	if (fl != NULL)
		mailimap_fetch_list_free(fl);
	if (r != MAILIMAP_NO_ERROR && fm_net_failed(fm_imap_conn(p->imap)))
		return fm_imap_fail(
		    p->imap, _("looking for a message on the server"), err);
	return 0; /* a refusal: no pairing, as before */
}

/* The UID in dest (a COPYUID result): the single UID of the set. */
static uint32_t
single_uid(struct mailimap_set *set)
{
	if (set == NULL || clist_count(set->set_list) != 1)
		return 0;
	const struct mailimap_set_item *it =
	    clist_content(clist_begin(set->set_list));
	return it->set_first == it->set_last ? it->set_first : 0;
}

static void
refused(struct pass *p, const char *what)
{
	char text[256];
	fm_str_printable(p->s->imap_response != NULL ? p->s->imap_response : "",
	                 text, sizeof(text));
	fm_log_warn("%s (%s)", what, text);
}

/* Deletes the server copy uid, in the selected folder local, of a message
 * deleted here that the state st did not know: \Deleted and UID EXPUNGE,
 * or without UIDPLUS \Deleted alone and an entry without a local copy in
 * st (when valid), as the plan does (EXPUNGE_REMOTE). */
static int
delete_copy(struct pass *p, const char *local, struct fm_state *st, bool valid,
            uint32_t uid, struct fm_error *err)
{
	if (!p->uidplus && !valid)
		return 0; /* nowhere to remember that it goes */
	uint32_t one = uid;
	struct mailimap_set *set = imap_uid_set(&one, 1);
	struct mailimap_flag_list *fl =
	    imap_flag_list(FM_MAILDIR_TRASHED, NULL);
	struct mailimap_store_att_flags *sa =
	    mailimap_store_att_flags_new_add_flags_silent(fl);
	int r = mailimap_uid_store(p->s, set, sa);
	mailimap_store_att_flags_free(sa);
	if (r == MAILIMAP_NO_ERROR && p->uidplus)
		r = mailimap_uid_expunge(p->s, set);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR) {
		if (fm_net_failed(fm_imap_conn(p->imap)))
			return fm_imap_fail(p->imap, _("deleting a message"),
			                    err);
		char what[512];
		snprintf(
		    what, sizeof(what),
		    _("%s: could not delete a message in %s on the server"),
		    p->acct->name, local);
		refused(p, what);
		return 0;
	}
	p->stats->expunged_remote++;
	if (p->uidplus)
		return 0;
	struct fm_state_entry e = {.uid = uid, .flags = FM_MAILDIR_TRASHED};
	if (fm_state_put(st, &e, err) < 0 ||
	    imap_save_state(p, local, st, err) < 0)
		return -1;
	return 0;
}

/* Where the search for a chain's copy stands. */
struct found {
	/* The copy: uid in folders[at] (0: not found yet), whether that
	 * folder's state knows it, and its Message-ID and size. */
	uint32_t uid;
	size_t at;
	bool recorded;
	char *msgid;
	uint64_t size;
	/* The flags and keywords both sides last agreed on, from the first
	 * state entry of the message met. */
	bool have_flags;
	uint32_t flags;
	char *kw;
	/* Per folder: its state names the message under a UID the server
	 * no longer has. */
	bool *stale;
	/* identity(), asked once. */
	bool ident_done;
	char *ident_msgid;
	uint64_t ident_size;
};

/* Whether the server still has uid in folders[k], selected: then it is
 * the copy, its identity fetched into *fd (1); 0 if not, -1 on failure. */
static int
found_at(struct pass *p, struct found *fd, uint32_t uid, size_t k,
         bool recorded, struct fm_error *err)
{
	free(fd->msgid);
	int r = fetch_identity(p, uid, &fd->msgid, &fd->size, err);
	if (r == 1) {
		fd->uid = uid;
		fd->at = k;
		fd->recorded = recorded;
	}
	return r;
}

/* Looks for the chain's copy in folders[k], selected, with its state st;
 * fills *fd when it is there. */
static int
search_folder(struct pass *p, struct replay *rp, struct chain *c, size_t k,
              struct fm_state *st, bool valid, struct found *fd,
              struct fm_error *err)
{
	const struct mailimap_selection_info *si = p->s->imap_selection_info;
	const struct fm_state_entry *se =
	    valid ? fm_state_find_base(st, c->base) : NULL;
	if (se != NULL) {
		if (!fd->have_flags) {
			fd->have_flags = true;
			fd->flags = se->flags;
			fd->kw =
			    se->keywords != NULL ? xstrdup(se->keywords) : NULL;
		}
		int r = found_at(p, fd, se->uid, k, true, err);
		if (r != 0)
			return r < 0 ? -1 : 0;
		fd->stale[k] = true;
	}
	uint32_t lo, hi;
	imap_tag_range(valid ? fm_state_uidnext(st) : 1, si->sel_uidnext, &lo,
	               &hi);
	find_tags(p, rp, c->folders[k], si->sel_uidvalidity, lo, hi);
	uint32_t uid = c->tag_uid[k];
	if (uid != 0 && !(valid && fm_state_find_uid(st, uid) != NULL)) {
		int r = found_at(p, fd, uid, k, false, err);
		if (r != 0)
			return r < 0 ? -1 : 0;
	}
	if (!fd->ident_done) {
		fd->ident_done = true;
		identity(p, c, &fd->ident_msgid, &fd->ident_size);
	}
	int r = uid_by_msgid(p, fd->ident_msgid, fd->ident_size, st, valid, lo,
	                     &uid, err);
	if (r == 0 && uid != 0) {
		free(fd->msgid);
		fd->msgid = xstrdup(fd->ident_msgid);
		fd->size = fd->ident_size;
		fd->uid = uid;
		fd->at = k;
	}
	return r;
}

/* Drops the entries of the chain's message whose UIDs the server no longer
 * has, from the states of the folders that had them: its copy is
 * elsewhere. */
static int
drop_stale(struct pass *p, const struct chain *c, const struct found *fd,
           struct fm_error *err)
{
	for (size_t k = 0; k < c->n; k++) {
		if (!fd->stale[k])
			continue;
		struct fm_state *st = NULL;
		if (imap_load_state(p, c->folders[k], &st, err) < 0)
			return -1;
		const struct fm_state_entry *se =
		    fm_state_find_base(st, c->base);
		int r = 0;
		if (se != NULL && fm_state_remove_uid(st, se->uid))
			r = imap_save_state(p, c->folders[k], st, err);
		fm_state_free(&st);
		if (r < 0)
			return -1;
	}
	return 0;
}

/* Records the copy uid of the chain's message in the state of local (under
 * validity) with the flags both sides last agreed on; without them (a copy
 * no state knew), the folder's plan pairs it by Message-ID and size. */
static int
record_copy(struct pass *p, const struct chain *c, const struct found *fd,
            const char *local, uint32_t validity, uint32_t uid,
            struct fm_error *err)
{
	if (uid == 0 || !fd->have_flags)
		return 0;
	struct fm_state *st = NULL;
	if (imap_load_state(p, local, &st, err) < 0)
		return -1;
	int ret = 0;
	if (fm_state_uidvalidity(st) == validity &&
	    fm_state_find_uid(st, uid) == NULL &&
	    fm_state_find_base(st, c->base) == NULL) {
		struct fm_state_entry e = {.uid = uid,
		                           .base = c->base,
		                           .flags = fd->flags,
		                           .keywords = fd->kw};
		if (fm_state_put(st, &e, err) < 0 ||
		    imap_save_state(p, local, st, err) < 0)
			ret = -1;
	}
	fm_state_free(&st);
	return ret;
}

/* Moves the copy fd->uid from the selected folders[fd->at] (state st) to
 * the chain's final folder. */
static int
move_copy(struct pass *p, const struct chain *c, struct found *fd,
          struct fm_state *st, bool valid, struct fm_error *err)
{
	const char *from = c->folders[fd->at];
	struct folder *to = imap_folder_by_local(p, c->final);
	/* Listed where it goes before it moves: should the pass die before
	 * its new UID is recorded, and the user delete the file, Message-ID
	 * and size still find it. */
	struct imap_upload u = {
	    .base = c->base, .msgid = fd->msgid, .size = fd->size};
	if (fd->msgid != NULL &&
	    imap_uploads_append(p, c->final, &u, 1, err) < 0)
		return -1;
	uint32_t one = fd->uid;
	struct mailimap_set *set = imap_uid_set(&one, 1);
	uint32_t dst_validity = 0;
	struct mailimap_set *srcs = NULL, *dsts = NULL;
	int r;
	if (p->move)
		r = mailimap_uidplus_uid_move(p->s, set, to->server,
		                              &dst_validity, &srcs, &dsts);
	else
		r = mailimap_uidplus_uid_copy(p->s, set, to->server,
		                              &dst_validity, &srcs, &dsts);
	if (r == MAILIMAP_NO_ERROR && !p->move) {
		struct mailimap_flag_list *fl =
		    imap_flag_list(FM_MAILDIR_TRASHED, NULL);
		struct mailimap_store_att_flags *sa =
		    mailimap_store_att_flags_new_add_flags_silent(fl);
		r = mailimap_uid_store(p->s, set, sa);
		mailimap_store_att_flags_free(sa);
		if (r == MAILIMAP_NO_ERROR && p->uidplus)
			r = mailimap_uid_expunge(p->s, set);
	}
	mailimap_set_free(set);
	uint32_t new_uid = single_uid(dsts);
	if (srcs != NULL)
		mailimap_set_free(srcs);
	if (dsts != NULL)
		mailimap_set_free(dsts);
	if (r != MAILIMAP_NO_ERROR) {
		if (fm_net_failed(fm_imap_conn(p->imap)))
			return fm_imap_fail(p->imap, _("moving a message"),
			                    err);
		char what[512];
		snprintf(what, sizeof(what),
		         _("%s: could not move a message from %s to %s on the "
		           "server; the local copy will be uploaded instead"),
		         p->acct->name, from, c->final);
		refused(p, what);
		return 0;
	}
	p->stats->moved++;
	/* The copy is where it goes now; no state may name it elsewhere. */
	if (valid) {
		const struct fm_state_entry *se =
		    fm_state_find_uid(st, fd->uid);
		bool save = false;
		if (!p->move && !p->uidplus) {
			/* \Deleted alone: the UID stays known, without a
			 * local copy, so it is never downloaded again (as
			 * EXPUNGE_REMOTE does without UIDPLUS). */
			struct fm_state_entry e = {
			    .uid = fd->uid,
			    .flags = (se != NULL ? se->flags : 0) |
			             FM_MAILDIR_TRASHED};
			if (fm_state_put(st, &e, err) < 0)
				return -1;
			save = true;
		} else if (se != NULL) {
			save = fm_state_remove_uid(st, fd->uid);
		}
		if (save && imap_save_state(p, from, st, err) < 0)
			return -1;
	}
	if (drop_stale(p, c, fd, err) < 0)
		return -1;
	return record_copy(p, c, fd, c->final, dst_validity, new_uid, err);
}

/* Marks the deletions alone of messages a state knows (the plan expunges
 * them, many at once), or of ones that cannot have reached the server:
 * nothing for this step, not even a SELECT. Each folder's state is read
 * once. */
static void
mark_plain_deletes(struct pass *p, struct replay *rp)
{
	bool *seen = xcalloc(rp->n + 1, sizeof(*seen));
	for (size_t i = 0; i < rp->n; i++) {
		struct chain *c = &rp->v[i];
		if (c->final != NULL || c->n != 1 || seen[i])
			continue;
		const char *folder = c->folders[0];
		struct folder *f = imap_folder_by_local(p, folder);
		struct fm_state *st = NULL;
		struct fm_error e;
		fm_error_clear(&e);
		if (f != NULL && f->on_server &&
		    imap_load_state(p, folder, &st, &e) < 0)
			st = NULL; /* unreadable: leave it to the search */
		for (size_t k = i; k < rp->n; k++) {
			struct chain *d = &rp->v[k];
			if (d->final != NULL || d->n != 1 ||
			    strcmp(d->folders[0], folder) != 0)
				continue;
			seen[k] = true;
			d->skip = f == NULL || !f->on_server ||
			          (st != NULL &&
			           fm_state_find_base(st, d->base) != NULL) ||
			          (!has_tag(d->base) && !listed(p, d));
		}
		fm_state_free(&st);
	}
	free(seen);
}

/* Brings one message's server copy where its records say. */
static int
replay_chain(struct pass *p, struct replay *rp, struct chain *c,
             struct fm_error *err)
{
	if (c->skip)
		return 0;
	if (c->final != NULL) {
		struct folder *to = imap_folder_by_local(p, c->final);
		if (to == NULL || !to->on_server)
			return 0; /* the destination's plan uploads it */
	}
	struct found fd = {.stale = xcalloc(c->n, sizeof(bool))};
	struct fm_state *st = NULL;
	bool valid = false;
	int ret = 0;
	for (size_t k = 0; k < c->n && ret == 0 && fd.uid == 0; k++) {
		struct folder *f = imap_folder_by_local(p, c->folders[k]);
		if (f == NULL || !f->on_server || !f->selectable)
			continue;
		fm_state_free(&st);
		uint64_t modseq;
		if (imap_load_state(p, c->folders[k], &st, err) < 0 ||
		    imap_select_folder(p, f, &modseq, err) < 0) {
			ret = -1;
			break;
		}
		/* With another UIDVALIDITY (or none: no state yet) the
		 * state's UIDs are void, and every UID may be the copy. */
		uint32_t v = p->s->imap_selection_info->sel_uidvalidity;
		valid = v != 0 && fm_state_uidvalidity(st) == v;
		ret = search_folder(p, rp, c, k, st, valid, &fd, err);
	}
	if (ret == 0 && fd.uid != 0) {
		const char *at = c->folders[fd.at];
		if (c->final == NULL)
			/* A copy its state knows: the plan expunges it. */
			ret = fd.recorded
			          ? 0
			          : delete_copy(p, at, st, valid, fd.uid, err);
		else if (strcmp(at, c->final) != 0)
			ret = move_copy(p, c, &fd, st, valid, err);
		else if (drop_stale(p, c, &fd, err) < 0)
			ret = -1;
		else if (!fd.recorded)
			/* Where it is to be, unknown to its state (and maybe
			 * named there by a stale entry, dropped now, which
			 * would have cost the file): recorded with the flags
			 * last agreed on, else its plan pairs it. */
			ret = valid ? record_copy(p, c, &fd, at,
			                          p->s->imap_selection_info
			                              ->sel_uidvalidity,
			                          fd.uid, err)
			            : 0;
	}
	fm_state_free(&st);
	free(fd.kw);
	free(fd.msgid);
	free(fd.ident_msgid);
	free(fd.stale);
	return ret;
}

int
imap_replay_moves(struct pass *p, struct fm_error *err)
{
	struct fm_journal *j = fm_store_journal(p->store, p->acct->name);
	if (j == NULL || fm_journal_pending(j) == 0)
		return 0;
	struct replay rp = {0};
	int ret = fm_journal_replay(j, collect_record, &rp, err);
	if (ret == 0)
		mark_plain_deletes(p, &rp);
	for (size_t i = 0; ret == 0 && i < rp.n; i++)
		ret = replay_chain(p, &rp, &rp.v[i], err);
	/* Flag changes, deletions of known messages and new messages need
	 * no replay: each folder's plan sees them by comparing with the
	 * state. */
	if (ret == 0 && rp.last_seq > 0)
		ret = fm_journal_ack(j, rp.last_seq, err);
	replay_free(&rp);
	return ret;
}

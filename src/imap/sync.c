/* SPDX-License-Identifier: GPL-3.0-or-later */
/* One IMAP send/receive pass: the folders of an account brought into
 * agreement with the local store, both ways.
 *
 * The pass, in order:
 *   1. LIST: the server's folders, their delimiter, special use and
 *      subscription; the folders the pass takes (`folders`, or those
 *      named on the command line).
 *   2. Folders missing on one side are created there, and those made
 *      here subscribed (a local folder that was synced before and is gone
 *      from the server is kept, not recreated: somebody deleted it on
 *      purpose).
 *   3. The journal's moves are replayed as server moves (UID MOVE, or
 *      COPY + \Deleted + UID EXPUNGE), so a message moved offline is never
 *      downloaded or uploaded again; a deletion is replayed only for a
 *      message no state knows (see replay.c); the other journal records
 *      need no replay, because the three-way plan sees their effect.
 *   4. Every folder: SELECT, the server's listing (CONDSTORE narrows it to
 *      what changed, QRESYNC also past expunges), the local listing,
 *      fm_plan_make(), and the actions. Folders only the server changed
 *      go first, all in one pipeline (prefetch.c).
 * Steps 1 and 2 are in folders.c, step 3 in replay.c; this file has the
 * driver and step 4, whose server listing is in listing.c, its downloads
 * in download.c and its pipeline in prefetch.c.
 *
 * Crash safety comes from the order of writes. A download is fsynced in
 * the maildir, tagged with its key "imap:UIDVALIDITY:UID", before its UID
 * enters the state; a crash in between finds the file again by its tag. An
 * upload whose APPENDUID was lost is paired with its server copy by
 * Message-ID and size at the next pass (listed first in the folder's
 * uploads, uploads.c, for when the user moves or deletes it before that
 * pass: step 3). Flag changes are recorded only after both sides have
 * them. UIDNEXT and HIGHESTMODSEQ are recorded only when a folder's plan
 * ran to its end, so an interrupted pass looks at everything again next
 * time. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>

#include "imap/imap_int.h"
#include "log/log.h"
#include "store/maildir.h"
#include "store/store.h"
#include "sync/journal.h"
#include "sync/plan.h"
#include "sync/state.h"

enum {
	/* Save the state at least this often during a long folder. */
	SAVE_INTERVAL_MS = 2000,
};

/* What a folder looked like after a sync that left both sides in
 * agreement: the server's counters, a fingerprint of the maildir's file
 * names and the change times of cur/ and new/. When both are the same at
 * the next pass, the folder is skipped without loading its state or
 * summary. A cache: missing or damaged, the folder is simply synced in
 * full. */

/* ------------------------------------------------------------------------
 * The pass.
 */

int
imap_load_state(struct pass *p, const char *local, struct fm_state **st_r,
                struct fm_error *err)
{
	char *path = imap_state_path(p, local);
	bool damaged = false;
	int r = fm_state_load(path, FM_STATE_IMAP, st_r, &damaged, err);
	free(path);
	if (r < 0 && damaged) {
		/* Rebuilt by pairing: tags and Message-IDs find every
		 * message the cache has. */
		fm_log_warn("%s", err->user);
		fm_error_clear(err);
		*st_r = fm_state_new(FM_STATE_IMAP);
		r = 0;
	}
	return r;
}

int
imap_save_state(struct pass *p, const char *local, struct fm_state *st,
                struct fm_error *err)
{
	/* What the state records must be on disk first: the renames of
	 * fm_store_sync_flags() become durable here. */
	if (fm_store_commit(p->store, err) < 0)
		return -1;
	char *path = imap_state_path(p, local);
	int r = fm_state_save(st, path, err);
	free(path);
	return r;
}

int
imap_send(struct pass *p, const char *cmd, const char *what,
          struct fm_error *err)
{
	struct fm_net_conn *conn = fm_imap_conn(p->imap);
	if (mailimap_send_current_tag(p->s) != MAILIMAP_NO_ERROR)
		return fm_net_error(conn, what, err);
	return fm_net_write(conn, p->s->imap_stream, cmd, strlen(cmd), err);
}

int
imap_read_answer(struct pass *p, int tag, bool bad_ok, bool *ok_r,
                 const char *what, struct fm_error *err)
{
	mailimap *s = p->s;
	struct mailimap_response *resp = NULL;
	*ok_r = false;
	s->imap_tag = tag;
	int r = mailimap_read_line(s) == NULL
	            ? MAILIMAP_ERROR_STREAM
	            : mailimap_parse_response(s, &resp);
	if (r == MAILIMAP_ERROR_PROTOCOL && bad_ok)
		return 0;
	if (r != MAILIMAP_NO_ERROR)
		return fm_imap_fail(p->imap, what, err);
	const struct mailimap_response_done *done = resp->rsp_resp_done;
	*ok_r = done->rsp_type == MAILIMAP_RESP_DONE_TYPE_TAGGED &&
	        done->rsp_data.rsp_tagged->rsp_cond_state->rsp_type ==
	            MAILIMAP_RESP_COND_STATE_OK;
	mailimap_response_free(resp);
	return 0;
}

int
imap_select_folder(struct pass *p, const struct folder *f, uint64_t *modseq_r,
                   struct fm_error *err)
{
	*modseq_r = 0;
	int r = p->condstore
	            ? mailimap_select_condstore(p->s, f->server, modseq_r)
	            : mailimap_select(p->s, f->server);
	if (r != MAILIMAP_NO_ERROR) {
		char what[512];
		snprintf(what, sizeof(what), _("selecting the folder %s"),
		         f->local);
		return fm_imap_fail(p->imap, what, err);
	}
	if (p->s->imap_selection_info == NULL)
		return fm_error_set(err, FM_ERR_PROTOCOL,
		                    _("%s sent no folder status for %s"),
		                    p->acct->host, f->local);
	return 0;
}

/* The UIDs a download may have had without being recorded: from the
 * state's UIDNEXT (every UID below it was recorded by a finished pass) to
 * the server's. Bounded, so a hostile UIDNEXT cannot make it endless. */
enum { TAG_SEARCH_MAX = 1000000 };

void
imap_tag_range(uint32_t state_next, uint32_t server_next, uint32_t *lo_r,
               uint32_t *hi_r)
{
	uint32_t lo = state_next > 0 ? state_next : 1;
	uint32_t hi = server_next > lo ? server_next : lo;
	if (hi - lo > TAG_SEARCH_MAX)
		lo = hi - TAG_SEARCH_MAX;
	*lo_r = lo;
	*hi_r = hi;
}

/* ------------------------------------------------------------------------
 * Step 4: one folder.
 */

static char *
folder_file(struct folder_run *fr, const char *file)
{
	return imap_folder_path(fr->p, fr->f->local, file);
}

char *
imap_key_of(uint32_t validity, uint32_t uid)
{
	return xasprintf("imap:%u:%u", validity, uid);
}

void
imap_progress(struct folder_run *fr)
{
	const struct fm_imap_progress *pr = fr->p->so->progress;
	if (pr != NULL && pr->transfer != NULL)
		pr->transfer(pr->ctx, fr->f->local, fr->done, fr->total,
		             fr->bytes);
}

int
imap_maybe_save(struct folder_run *fr, bool force, struct fm_error *err)
{
	if (!fr->state_dirty || fr->hold)
		return 0;
	uint64_t now = fm_now_ms();
	if (!force && now - fr->saved_ms < SAVE_INTERVAL_MS)
		return 0;
	if (imap_save_state(fr->p, fr->f->local, fr->st, err) < 0)
		return -1;
	fr->saved_ms = now;
	fr->state_dirty = false;
	return 0;
}

/* Records (uid, base, flags, keywords) in the state. partial: whether the
 * local copy is headers only (IMAP_KEEP_PARTIAL: as the entry says now). */
int
imap_record(struct folder_run *fr, uint32_t uid, const char *base,
            uint32_t flags, const char *keywords, int partial,
            struct fm_error *err)
{
	const struct fm_state_entry *old = fm_state_find_uid(fr->st, uid);
	if (partial == IMAP_KEEP_PARTIAL) {
		bool had = false;
		char *x = old != NULL && old->base != NULL && base != NULL &&
		                  strcmp(old->base, base) == 0
		              ? imap_kw_strip(old->keywords, &had)
		              : NULL;
		free(x);
		partial = had;
	}
	char *kw = NULL;
	if (partial)
		kw = keywords != NULL ? xasprintf("%s %s", keywords, PARTIAL)
		                      : xstrdup(PARTIAL);
	struct fm_state_entry e = {.uid = uid,
	                           .base = base,
	                           .flags = flags,
	                           .keywords = partial ? kw : keywords};
	/* A base recorded under another UID (a server copy that replaced
	 * it) lets go of the old entry first. */
	const struct fm_state_entry *other =
	    base != NULL ? fm_state_find_base(fr->st, base) : NULL;
	if (other != NULL && other->uid != uid)
		fm_state_remove_uid(fr->st, other->uid);
	int r = fm_state_put(fr->st, &e, err);
	free(kw);
	if (r < 0)
		return -1;
	fr->state_dirty = true;
	return 0;
}

/* UID STORE +FLAGS.SILENT / -FLAGS.SILENT on a set. */
static int
store_flags(struct folder_run *fr, uint32_t *uids, size_t n, bool add,
            uint32_t bits, const char *keywords, struct fm_error *err)
{
	struct mailimap_flag_list *fl = imap_flag_list(bits, keywords);
	if (fl == NULL || n == 0) {
		if (fl != NULL)
			mailimap_flag_list_free(fl);
		return 0;
	}
	struct mailimap_store_att_flags *sa =
	    add ? mailimap_store_att_flags_new_add_flags_silent(fl)
	        : mailimap_store_att_flags_new_remove_flags_silent(fl);
	struct mailimap_set *set = imap_uid_set(uids, n);
	int r = mailimap_uid_store(fr->p->s, set, sa);
	mailimap_set_free(set);
	mailimap_store_att_flags_free(sa);
	if (r != MAILIMAP_NO_ERROR) {
		char what[512];
		snprintf(what, sizeof(what),
		         _("changing flags of messages in %s"), fr->f->local);
		return fm_imap_fail(fr->p->imap, what, err);
	}
	return 0;
}

/* Server flag changes, grouped by what they change. */
struct flag_group {
	uint32_t add, del;
	const char *kw_add, *kw_del;
	uint32_t *uids;
	size_t n;
};

static bool
same_kw(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	       (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int
push_flags(struct folder_run *fr, const struct fm_plan *plan,
           struct fm_error *err)
{
	struct flag_group *g = NULL;
	size_t ng = 0;
	for (size_t i = 0; i < fm_plan_count(plan); i++) {
		const struct fm_plan_action *a = fm_plan_action_at(plan, i);
		if (a->op != FM_PLAN_FLAGS && a->op != FM_PLAN_LINK)
			continue;
		if (a->remote_add == 0 && a->remote_del == 0 &&
		    a->kw_remote_add == NULL && a->kw_remote_del == NULL)
			continue;
		size_t k = 0;
		while (k < ng && !(g[k].add == a->remote_add &&
		                   g[k].del == a->remote_del &&
		                   same_kw(g[k].kw_add, a->kw_remote_add) &&
		                   same_kw(g[k].kw_del, a->kw_remote_del)))
			k++;
		if (k == ng) {
			g = xreallocarray(g, ng + 1, sizeof(*g));
			g[ng++] = (struct flag_group){
			    .add = a->remote_add,
			    .del = a->remote_del,
			    .kw_add = a->kw_remote_add,
			    .kw_del = a->kw_remote_del,
			};
		}
		g[k].uids =
		    xreallocarray(g[k].uids, g[k].n + 1, sizeof(*g[k].uids));
		g[k].uids[g[k].n++] = a->uid;
		fr->p->stats->flags_remote++;
		fr->remote_changes++;
	}
	int ret = 0;
	for (size_t k = 0; k < ng; k++) {
		if (ret == 0)
			ret = store_flags(fr, g[k].uids, g[k].n, true, g[k].add,
			                  g[k].kw_add, err);
		if (ret == 0)
			ret = store_flags(fr, g[k].uids, g[k].n, false,
			                  g[k].del, g[k].kw_del, err);
		free(g[k].uids);
	}
	free(g);
	return ret;
}

static int
expunge_remote(struct folder_run *fr, const struct fm_plan *plan,
               struct fm_error *err)
{
	uint32_t *uids = NULL;
	size_t n = 0;
	for (size_t i = 0; i < fm_plan_count(plan); i++) {
		const struct fm_plan_action *a = fm_plan_action_at(plan, i);
		if (a->op != FM_PLAN_EXPUNGE_REMOTE)
			continue;
		uids = xreallocarray(uids, n + 1, sizeof(*uids));
		uids[n++] = a->uid;
		if (a->lost_change)
			fm_log_info(_("%s/%s: a message deleted here had new "
			              "flags on the server; it is deleted "
			              "there too"),
			            fr->p->acct->name, fr->f->local);
	}
	int ret = 0;
	if (n > 0)
		ret = store_flags(fr, uids, n, true, FM_MAILDIR_TRASHED, NULL,
		                  err);
	if (ret == 0 && n > 0 && fr->p->uidplus) {
		struct mailimap_set *set = imap_uid_set(uids, n);
		if (mailimap_uid_expunge(fr->p->s, set) != MAILIMAP_NO_ERROR) {
			char what[512];
			snprintf(what, sizeof(what),
			         _("expunging messages in %s"), fr->f->local);
			ret = fm_imap_fail(fr->p->imap, what, err);
		}
		mailimap_set_free(set);
	}
	for (size_t i = 0; ret == 0 && i < n; i++) {
		if (fr->p->uidplus) {
			fm_state_remove_uid(fr->st, uids[i]);
		} else {
			/* Without UID EXPUNGE only \Deleted is set: another
			 * client's EXPUNGE removes it. Remember the UID with
			 * no local copy, so it is never downloaded again. */
			const struct fm_state_entry *e =
			    fm_state_find_uid(fr->st, uids[i]);
			uint32_t fl =
			    (e != NULL ? e->flags : 0) | FM_MAILDIR_TRASHED;
			if (imap_record(fr, uids[i], NULL, fl, NULL, IMAP_WHOLE,
			                err) < 0)
				ret = -1;
		}
		fr->state_dirty = true;
		fr->p->stats->expunged_remote++;
	}
	free(uids);
	return ret;
}

static int
cmp_msg_base(const void *a, const void *b)
{
	return strcmp(((const struct fm_store_msg *)a)->base,
	              ((const struct fm_store_msg *)b)->base);
}

/* The local message base (fr->lv is sorted by base), or NULL. */
static struct fm_store_msg *
local_find(struct folder_run *fr, const char *base)
{
	struct fm_store_msg key = {.base = (char *)base};
	return bsearch(&key, fr->lv, fr->ln, sizeof(*fr->lv), cmp_msg_base);
}

/* The flags of the local message base as this run knows them; *have_r
 * (if not NULL) false when there is none. */
static uint32_t
local_flags(struct folder_run *fr, const char *base, bool *have_r)
{
	bool have;
	uint32_t flags = 0;
	if (fr->quick) {
		const struct fm_state_entry *e =
		    fm_state_find_base(fr->st, base);
		have = e != NULL;
		flags = have ? e->flags : 0;
	} else {
		const struct fm_store_msg *m = local_find(fr, base);
		have = m != NULL;
		flags = have ? m->flags : 0;
	}
	if (have_r != NULL)
		*have_r = have;
	return flags;
}

static int
upload(struct folder_run *fr, const struct fm_plan_action *a,
       struct fm_error *err)
{
	const struct fm_store_msg *m = local_find(fr, a->base);
	if (m == NULL)
		return 0; /* gone since the listing */
	char *path = folder_file(fr, m->file);
	char *data = NULL;
	size_t len = 0;
	int r = imap_read_crlf(path, &data, &len, err);
	free(path);
	if (r < 0)
		return -1;
	struct mailimap_flag_list *fl =
	    imap_flag_list(a->remote_add, a->keywords);
	if (fl == NULL)
		fl = mailimap_flag_list_new_empty();
	uint32_t validity = 0, uid = 0;
	if (fr->p->uidplus)
		r = mailimap_uidplus_append(fr->p->s, fr->f->server, fl, NULL,
		                            data, len, &validity, &uid);
	else
		r = mailimap_append(fr->p->s, fr->f->server, fl, NULL, data,
		                    len);
	mailimap_flag_list_free(fl);
	free(data);
	if (r != MAILIMAP_NO_ERROR) {
		char what[512];
		snprintf(what, sizeof(what), _("uploading a message to %s"),
		         fr->f->local);
		if (fm_net_failed(fm_imap_conn(fr->p->imap)))
			return fm_imap_fail(fr->p->imap, what, err);
		/* The server refused this one message: it stays here and is
		 * offered again next time; the rest of the folder goes on. */
		struct fm_error e;
		fm_error_clear(&e);
		fm_imap_fail(fr->p->imap, what, &e);
		fm_log_warn(_("%s/%s: %s; the message stays here"),
		            fr->p->acct->name, fr->f->local, e.user);
		fr->refused++;
		return 0;
	}
	fr->p->stats->uploaded++;
	fr->p->stats->bytes += len;
	fr->bytes += len;
	fr->done++;
	imap_progress(fr);
	/* Without APPENDUID the next pass pairs the two copies by
	 * Message-ID and size. */
	if (uid != 0 && validity == fr->validity)
		return imap_record(fr, uid, a->base, a->flags, a->keywords,
		                   IMAP_WHOLE, err);
	return 0;
}

/* A download batch. */
/* Adds the plan's uploads to the folder's list of uploads the state may
 * lack, and makes it durable before the first APPEND (see uploads.c). */
static int
note_uploads(struct folder_run *fr, const struct fm_plan *plan,
             struct fm_error *err)
{
	struct imap_upload *add = NULL;
	size_t n = 0;
	for (size_t i = 0; i < fm_plan_count(plan); i++) {
		const struct fm_plan_action *a = fm_plan_action_at(plan, i);
		const struct fm_store_msg *m =
		    a->op == FM_PLAN_UPLOAD ? local_find(fr, a->base) : NULL;
		if (m == NULL)
			continue;
		const struct fm_plan_local *l = &fr->lin[m - fr->lv];
		if (l->msgid == NULL || l->msgid[0] == '\0' ||
		    !imap_uploads_add(&fr->up, a->base, l->msgid, l->size))
			continue; /* listed as it is already */
		add = xreallocarray(add, n + 1, sizeof(*add));
		add[n++] = (struct imap_upload){.base = (char *)a->base,
		                                .msgid = (char *)l->msgid,
		                                .size = l->size};
	}
	int r = imap_uploads_append(fr->p, fr->f->local, add, n, err);
	free(add);
	return r;
}

/* After a plan ran to its end: the list keeps only the uploads the state
 * still lacks whose file is here (the server named no UID for them); the
 * others are recorded, or step 3 dealt with them. */
static void
prune_uploads(struct folder_run *fr)
{
	if (fr->up.n == 0)
		return;
	struct imap_uploads keep = {0};
	for (size_t i = 0; i < fr->up.n; i++) {
		const struct imap_upload *u = &fr->up.v[i];
		if (local_find(fr, u->base) != NULL &&
		    fm_state_find_base(fr->st, u->base) == NULL)
			imap_uploads_add(&keep, u->base, u->msgid, u->size);
	}
	struct fm_error e;
	fm_error_clear(&e);
	if (keep.n < fr->up.n &&
	    imap_uploads_save(fr->p, fr->f->local, &keep, &e) < 0)
		fm_log_warn("%s", e.user);
	imap_uploads_free(&keep);
}

/* Runs a plan's actions in its order. */
static int
run_plan(struct folder_run *fr, const struct fm_plan *plan,
         struct fm_error *err)
{
	struct pass *p = fr->p;
	const struct fm_plan_summary *sum = fm_plan_summary(plan);
	if (sum->uidvalidity_reset) {
		fm_log_info(_("%s/%s: the server renumbered the folder "
		              "(UIDVALIDITY changed); matching messages by "
		              "Message-ID and size"),
		            p->acct->name, fr->f->local);
		fm_state_clear(fr->st);
		fm_state_set_highestmodseq(fr->st, 0);
		fm_state_set_uidnext(fr->st, 0);
		fr->state_dirty = true;
	}
	if (fm_state_uidvalidity(fr->st) != sum->uidvalidity) {
		fm_state_set_uidvalidity(fr->st, sum->uidvalidity);
		fr->state_dirty = true;
		/* Saved before anything is stored: a pass killed after its
		 * first downloads leaves a state with this UIDVALIDITY, so
		 * the next one believes their delivery tags (plan.h), and a
		 * message the server expunged meanwhile goes here too rather
		 * than being uploaded back as a new local one. */
		if (imap_maybe_save(fr, true, err) < 0)
			return -1;
	}
	fr->total = sum->downloads + sum->uploads;
	if (p->so->progress != NULL && p->so->progress->folder != NULL)
		p->so->progress->folder(p->so->progress->ctx, fr->f->local,
		                        fm_plan_count(plan));
	/* Server-side changes first, in as few commands as possible. */
	if (expunge_remote(fr, plan, err) < 0 || push_flags(fr, plan, err) < 0)
		return -1;
	if (sum->uploads > 0 && note_uploads(fr, plan, err) < 0)
		return -1;
	for (size_t i = 0; i < fm_plan_count(plan); i++) {
		const struct fm_plan_action *a = fm_plan_action_at(plan, i);
		switch (a->op) {
		case FM_PLAN_FORGET:
			fm_state_remove_uid(fr->st, a->uid);
			fr->state_dirty = true;
			break;
		case FM_PLAN_EXPUNGE_LOCAL: {
			int r = fm_store_sync_remove(
			    p->store, p->acct->name, fr->f->local, a->base,
			    local_flags(fr, a->base, NULL), err);
			if (r < 0)
				return -1;
			if (r == 1) {
				/* Not as the state says (quick): left for
				 * the next pass, which compares all. */
				fr->unsure++;
				break;
			}
			if (a->uid != 0)
				fm_state_remove_uid(fr->st, a->uid);
			fr->state_dirty = true;
			p->stats->expunged_local++;
			break;
		}
		case FM_PLAN_LINK:
		case FM_PLAN_FLAGS: {
			bool have;
			uint32_t was = local_flags(fr, a->base, &have);
			if (have && was != a->flags) {
				int r = fm_store_sync_flags(
				    p->store, p->acct->name, fr->f->local,
				    a->base, was, a->flags, fr->local_only,
				    err);
				if (r < 0)
					return -1;
				if (r == 1) {
					fr->unsure++;
					break; /* unrecorded, as above */
				}
				p->stats->flags_local++;
			}
			if (imap_record(fr, a->uid, a->base, a->flags,
			                a->keywords, IMAP_KEEP_PARTIAL,
			                err) < 0)
				return -1;
			break;
		}
		case FM_PLAN_UPLOAD:
			if (upload(fr, a, err) < 0)
				return -1;
			if (imap_maybe_save(fr, false, err) < 0)
				return -1;
			break;
		default:
			break; /* EXPUNGE_REMOTE done above, DOWNLOAD below */
		}
	}
	/* Uploads are saved before the downloads start. Flags, links and
	 * removals need not be: both sides agree on them already, so a crash
	 * before the next save costs the next pass a comparison, never a
	 * change (the state only lags, and the plan of the next pass that
	 * lists the message brings it up to date). */
	if (imap_maybe_save(fr, sum->uploads > 0, err) < 0)
		return -1;
	return imap_downloads(fr, plan, err);
}

/* Flags the server cannot keep, from PERMANENTFLAGS. */
uint32_t
imap_local_only_flags(const struct pass *p)
{
	uint32_t keep = ~FM_MAILDIR_STANDARD_FLAGS; /* keyword letters */
	const struct mailimap_selection_info *si = p->s->imap_selection_info;
	if (si == NULL || si->sel_perm_flags == NULL)
		return keep;
	uint32_t perm = 0;
	for (clistiter *it = clist_begin(si->sel_perm_flags); it != NULL;
	     it = clist_next(it)) {
		const struct mailimap_flag_perm *fp = clist_content(it);
		if (fp->fl_type == MAILIMAP_FLAG_PERM_ALL) {
			perm |= FM_MAILDIR_PASSED;
			continue;
		}
		if (fp->fl_flag == NULL)
			continue;
		switch (fp->fl_flag->fl_type) {
		case MAILIMAP_FLAG_ANSWERED:
			perm |= FM_MAILDIR_REPLIED;
			break;
		case MAILIMAP_FLAG_FLAGGED:
			perm |= FM_MAILDIR_FLAGGED;
			break;
		case MAILIMAP_FLAG_DELETED:
			perm |= FM_MAILDIR_TRASHED;
			break;
		case MAILIMAP_FLAG_SEEN:
			perm |= FM_MAILDIR_SEEN;
			break;
		case MAILIMAP_FLAG_DRAFT:
			perm |= FM_MAILDIR_DRAFT;
			break;
		case MAILIMAP_FLAG_KEYWORD:
			if (fp->fl_flag->fl_data.fl_keyword != NULL &&
			    fm_str_ieq(fp->fl_flag->fl_data.fl_keyword,
			               "$Forwarded"))
				perm |= FM_MAILDIR_PASSED;
			break;
		default:
			break;
		}
	}
	return keep | (FM_MAILDIR_STANDARD_FLAGS & ~perm);
}

/* A local file's delivery tag, for the hint search. */
struct tagged {
	char tag[33];
	size_t index; /* into the local listing */
};

static int
cmp_tagged(const void *a, const void *b)
{
	return memcmp(((const struct tagged *)a)->tag,
	              ((const struct tagged *)b)->tag, 32);
}

static int
cmp_entry_uid(const void *a, const void *b)
{
	uint32_t x = ((const struct fm_state_entry *)a)->uid;
	uint32_t y = ((const struct fm_state_entry *)b)->uid;
	return x < y ? -1 : x > y;
}

/* The planner's view of the local messages (fr->lv): the state's plain
 * keywords for those it knows, and for the others their Message-ID and
 * size, and the UID a delivery tag names (a download a crash left
 * unrecorded). known: the state's UIDVALIDITY is the server's. */
static struct fm_plan_local *
local_input(struct folder_run *fr, bool known,
            const struct fm_state_entry *synced, size_t ns)
{
	struct fm_plan_local *lin =
	    xcalloc(fr->ln > 0 ? fr->ln : 1, sizeof(*lin));
	/* Which local messages the state knows, looked up once. */
	bool *in_state = xcalloc(fr->ln > 0 ? fr->ln : 1, sizeof(*in_state));
	for (size_t i = 0; i < fr->ln; i++) {
		const struct fm_store_msg *m = &fr->lv[i];
		const struct fm_state_entry *se =
		    known ? fm_state_find_base(fr->st, m->base) : NULL;
		in_state[i] = se != NULL;
		const char *kw = NULL;
		if (se != NULL) {
			/* the same entry's plain keywords (synced is in
			 * UID order) */
			struct fm_state_entry key = {.uid = se->uid};
			const struct fm_state_entry *x = bsearch(
			    &key, synced, ns, sizeof(*synced), cmp_entry_uid);
			kw = x != NULL ? x->keywords : NULL;
		}
		lin[i] = (struct fm_plan_local){
		    .base = m->base,
		    .flags = m->flags,
		    .keywords = kw,
		};
		if (se == NULL) {
			lin[i].msgid = m->message_id;
			char *path = folder_file(fr, m->file);
			lin[i].size = imap_crlf_size(path, m->size);
			free(path);
		}
	}
	if (known) {
		/* Tags name the UIDs of downloads not recorded yet, also of
		 * those the server expunged since (then the file goes). */
		struct tagged *tv = NULL;
		size_t tn = 0;
		for (size_t k = 0; k < fr->ln; k++) {
			size_t tl;
			const char *t =
			    fm_maildir_base_tag(fr->lv[k].base, &tl);
			if (t == NULL || tl != 32 || in_state[k])
				continue;
			tv = xreallocarray(tv, tn + 1, sizeof(*tv));
			memcpy(tv[tn].tag, t, 32);
			tv[tn].tag[32] = '\0';
			tv[tn++].index = k;
		}
		if (tn > 0) {
			qsort(tv, tn, sizeof(*tv), cmp_tagged);
			uint32_t lo, hi;
			imap_tag_range(fm_state_uidnext(fr->st), fr->uidnext,
			               &lo, &hi);
			for (size_t i = 0; i < fr->rn; i++)
				if (fr->rv[i].uid >= hi)
					hi = fr->rv[i].uid + 1;
			for (uint32_t u = lo; u < hi; u++) {
				if (fm_state_find_uid(fr->st, u) != NULL)
					continue;
				struct tagged key;
				char *k = imap_key_of(fr->validity, u);
				fm_store_key_tag(fr->p->acct->name,
				                 fr->f->local, k, key.tag);
				free(k);
				const struct tagged *hit = bsearch(
				    &key, tv, tn, sizeof(*tv), cmp_tagged);
				if (hit != NULL)
					lin[hit->index].uid_hint = u;
			}
		}
		free(tv);
	}
	free(in_state);
	return lin;
}

/* The same for a quick run: every local message is a state entry with a
 * base, as the state says (one without has no local copy by design). */
static struct fm_plan_local *
quick_input(const struct fm_state_entry *synced, size_t ns, size_t *n_r)
{
	struct fm_plan_local *lin = xcalloc(ns > 0 ? ns : 1, sizeof(*lin));
	size_t n = 0;
	for (size_t i = 0; i < ns; i++)
		if (synced[i].base != NULL)
			lin[n++] = (struct fm_plan_local){
			    .base = synced[i].base,
			    .flags = synced[i].flags,
			    .keywords = synced[i].keywords,
			};
	*n_r = n;
	return lin;
}

/* What the plan would need the server for, beyond what a prefetched
 * folder (prefetch.c) already has: a command of its own, which the
 * pipeline in flight cannot take. */
static bool
needs_server(struct folder_run *fr, const struct fm_plan *plan)
{
	for (size_t i = 0; i < fm_plan_count(plan); i++) {
		const struct fm_plan_action *a = fm_plan_action_at(plan, i);
		switch (a->op) {
		case FM_PLAN_EXPUNGE_REMOTE:
		case FM_PLAN_UPLOAD:
			return true;
		case FM_PLAN_FLAGS:
		case FM_PLAN_LINK:
			if (a->remote_add != 0 || a->remote_del != 0 ||
			    a->kw_remote_add != NULL ||
			    a->kw_remote_del != NULL)
				return true;
			break;
		case FM_PLAN_DOWNLOAD:
			if (imap_staged_for(fr, a->uid, a->flags) == NULL)
				return true;
			break;
		default:
			break;
		}
	}
	return false;
}

int
imap_settle(struct folder_run *fr, struct fm_error *err)
{
	struct pass *p = fr->p;
	struct folder *f = fr->f;
	struct fm_plan *plan = NULL;
	struct fm_plan_remote *rin = NULL;
	struct fm_plan_local *lin = NULL;
	struct fm_state_entry *synced = NULL;
	char **kw_plain = NULL;
	size_t ns = 0;
	int ret = -1;
	if (!fr->quick &&
	    fm_store_folder_msgs(p->store, p->acct->name, f->local, &fr->lv,
	                         &fr->ln, err) < 0)
		goto out;
	if (fr->ln > 0)
		qsort(fr->lv, fr->ln, sizeof(*fr->lv), cmp_msg_base);

	bool known = fm_state_uidvalidity(fr->st) == fr->validity;
	struct fm_plan_input in = {
	    .state_uidvalidity = fm_state_uidvalidity(fr->st),
	    .uidvalidity = fr->validity,
	    .uidnext = fr->uidnext,
	    .local_only_flags = fr->local_only,
	    .force = p->so->force,
	};
	size_t n_state = fm_state_count(fr->st);
	synced = xcalloc(n_state > 0 ? n_state : 1, sizeof(*synced));
	/* The planner sees keywords without the local PARTIAL marker. */
	kw_plain = xcalloc(n_state > 0 ? n_state : 1, sizeof(*kw_plain));
	/* A quick run's local side is the state: a message the server
	 * lists as the state has it needs nothing, and the plan is made
	 * of the others alone (INBOX: a few hundred of many thousands). */
	bool *same =
	    fr->quick && known ? xcalloc(fr->rn + 1, sizeof(*same)) : NULL;
	for (size_t i = 0; i < n_state; i++) {
		const struct fm_state_entry *e = fm_state_entry_at(fr->st, i);
		bool had;
		char *kw = imap_kw_strip(e->keywords, &had);
		struct remote *rm = same != NULL && e->base != NULL
		                        ? imap_remote_find(fr, e->uid)
		                        : NULL;
		if (rm != NULL && rm->have_flags && !rm->gone &&
		    rm->flags == e->flags && fm_str_same(rm->keywords, kw)) {
			same[rm - fr->rv] = true;
			in.n_unchanged++;
			free(kw);
			continue;
		}
		synced[ns] = *e;
		synced[ns].keywords = kw_plain[ns] = kw;
		ns++;
	}
	in.synced = synced;
	in.n_synced = ns;
	rin = xcalloc(fr->rn > 0 ? fr->rn : 1, sizeof(*rin));
	for (size_t i = 0; i < fr->rn; i++)
		if (same == NULL || !same[i])
			rin[in.n_remote++] = (struct fm_plan_remote){
			    .uid = fr->rv[i].uid,
			    .flags = fr->rv[i].flags,
			    .keywords = fr->rv[i].keywords,
			    .msgid = fr->rv[i].msgid,
			    .size = fr->rv[i].size};
	free(same);
	in.remote = rin;
	if (fr->quick) {
		lin = quick_input(synced, ns, &in.n_local);
	} else {
		lin = local_input(fr, known, synced, ns);
		in.n_local = fr->ln;
	}
	in.local = lin;
	fr->lin = lin;
	if (fm_plan_make(&in, &plan, err) < 0)
		goto out;
	if (fr->prefetched && needs_server(fr, plan)) {
		/* Left to the usual way, after the pipeline. */
		fr->deferred = true;
		ret = 0;
		goto out;
	}
	const struct fm_plan_summary *sum = fm_plan_summary(plan);
	if (sum->needs_confirmation) {
		p->stats->guarded++;
		char *text = xasprintf(
		    _("%s/%s: this sync would delete %zu of %zu messages "
		      "here and %zu of %zu on the server; nothing was "
		      "changed in this folder. If that is what you want, run "
		      "`fulmar sync --force %s/%s`"),
		    p->acct->name, f->local, sum->local_deletes,
		    sum->local_total, sum->remote_deletes, sum->remote_total,
		    p->acct->name, f->local);
		fm_log_warn("%s", text);
		if (p->guarded == NULL) {
			p->guarded = xstrdup(f->local);
			p->guard_text = text;
		} else {
			free(text);
		}
		ret = 0;
		goto out;
	}
	if (run_plan(fr, plan, err) < 0)
		goto out;
	/* The whole plan ran: the counters can move on; but changes left
	 * unapplied (unsure) must be listed again by the next pass. */
	uint64_t modseq =
	    fr->unsure == 0 ? fr->modseq : fm_state_highestmodseq(fr->st);
	if (fm_state_uidnext(fr->st) != sum->uidnext ||
	    fm_state_highestmodseq(fr->st) != modseq) {
		fm_state_set_uidnext(fr->st, sum->uidnext);
		fm_state_set_highestmodseq(fr->st, modseq);
		fr->state_dirty = true;
	}
	if (imap_maybe_save(fr, true, err) < 0)
		goto out;
	prune_uploads(fr);
	f->has_state = true;
	p->stats->folders++;
	/* Downloads and local changes leave the server's counters as SELECT
	 * reported them; a STORE, EXPUNGE or APPEND moves them on. */
	uint64_t seen[ST_N] = {fr->validity, fr->uidnext, fr->modseq,
	                       fr->exists};
	if (fr->modseq > 0 && fr->uidnext > 0 && sum->remote_deletes == 0 &&
	    sum->uploads == 0 && fr->remote_changes == 0 && fr->refused == 0 &&
	    fr->unsure == 0) {
		if (fr->hold)
			memcpy(fr->stamp, seen, sizeof(seen));
		else
			imap_stamp_write(p, f->local, seen);
	}
	ret = 0;
out:
	fm_plan_free(&plan);
	for (size_t i = 0; kw_plain != NULL && i < ns; i++)
		free(kw_plain[i]);
	free(kw_plain);
	free(synced);
	free(rin);
	free(lin);
	fr->lin = NULL;
	return ret;
}

int
imap_run_release(struct folder_run *fr, struct fm_error *err)
{
	fr->hold = false;
	if (imap_maybe_save(fr, true, err) < 0)
		return -1;
	if (fr->stamp[0] != 0)
		imap_stamp_write(fr->p, fr->f->local, fr->stamp);
	return 0;
}

void
imap_run_end(struct folder_run *fr, int ret)
{
	if (ret < 0 && fr->st != NULL && fr->state_dirty) {
		/* Keep what was done. */
		struct fm_error ignore;
		fm_error_clear(&ignore);
		imap_save_state(fr->p, fr->f->local, fr->st, &ignore);
	}
	for (size_t i = 0; i < fr->rn; i++) {
		free(fr->rv[i].keywords);
		free(fr->rv[i].msgid);
	}
	free(fr->rv);
	fm_store_msgs_free(fr->lv, fr->ln);
	fm_state_free(&fr->st);
	imap_uploads_free(&fr->up);
	for (size_t i = 0; i < fr->n_staged; i++)
		free(fr->staged[i].base);
	free(fr->staged);
	memset(fr, 0, sizeof(*fr));
}

static int
sync_folder(struct pass *p, struct folder *f, struct fm_error *err)
{
	/* Read once: the checks below and the quick pass's share it. */
	struct imap_stamp stamp;
	imap_stamp_read(p, f->local, &stamp);
	if (f->has_status && f->st_modseq > 0 && f->st_uidnext > 0) {
		uint64_t now[ST_N] = {f->st_validity, f->st_uidnext,
		                      f->st_modseq, f->st_messages};
		if (imap_stamp_matches(p, f->local, &stamp, now)) {
			/* Neither side changed: not even a SELECT. */
			p->stats->folders++;
			return 0;
		}
	}
	struct folder_run fr = {.p = p, .f = f, .saved_ms = fm_now_ms()};
	int ret = -1;
	if (imap_select_folder(p, f, &fr.modseq, err) < 0)
		return -1;
	const struct mailimap_selection_info *si = p->s->imap_selection_info;
	fr.validity = si->sel_uidvalidity;
	fr.uidnext = si->sel_uidnext;
	fr.exists = si->sel_exists;
	if (fr.validity == 0) {
		fm_error_set(err, FM_ERR_PROTOCOL,
		             _("%s gave the folder %s no UIDVALIDITY; it "
		               "cannot be synced safely"),
		             p->acct->host, f->local);
		goto out;
	}
	uint64_t seen[ST_N] = {fr.validity, fr.uidnext, fr.modseq, fr.exists};
	if (fr.modseq > 0 && fr.uidnext > 0 &&
	    imap_stamp_matches(p, f->local, &stamp, seen)) {
		/* Neither side changed since a sync that left them equal. */
		p->stats->folders++;
		ret = 0;
		goto out;
	}
	/* Only the server changed since a pass that left both sides as the
	 * state says? Then the state stands for the local side. */
	const uint64_t *old = stamp.v;
	bool local_same = stamp.have && old[ST_VALIDITY] == fr.validity &&
	                  imap_stamp_local_same(p, f->local, &stamp);
	/* From here on the folder may change: the stamp no longer holds. */
	imap_stamp_write(p, f->local, NULL);
	if (imap_load_state(p, f->local, &fr.st, err) < 0)
		goto out;
	imap_uploads_load(p, f->local, &fr.up);
	fr.local_only = imap_local_only_flags(p);
	fr.quick = local_same && imap_quick_state(&fr, &stamp);
	if (fr.quick &&
	    fm_store_quick(p->store, p->acct->name, f->local, err) < 0) {
		/* The usual way then, which says what is wrong if it is. */
		fr.quick = false;
		fm_error_clear(err);
	}
	if (imap_list_remote(&fr, err) < 0)
		goto out;
	ret = imap_settle(&fr, err);
out:
	imap_run_end(&fr, ret);
	return ret;
}

/* Whether the state is as the stamp's pass left it, with no upload
 * pending: then, with the stamp's local half holding, it stands for the
 * local side (a quick run). */
bool
imap_quick_state(const struct folder_run *fr, const struct imap_stamp *stamp)
{
	const uint64_t *old = stamp->v;
	return stamp->have && fr->up.n == 0 &&
	       fm_state_uidvalidity(fr->st) == old[ST_VALIDITY] &&
	       fm_state_uidnext(fr->st) == old[ST_UIDNEXT] &&
	       fm_state_highestmodseq(fr->st) == old[ST_MODSEQ] &&
	       fm_state_count(fr->st) == old[ST_EXISTS];
}

static bool
taken(const struct folder *f)
{
	return f->on_server && f->on_local && f->selectable && f->wanted;
}

size_t
imap_folders_taken(const struct pass *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n_folders; i++)
		n += taken(&p->folders[i]);
	return n;
}

int
imap_session_again(struct pass *p, struct fm_error *err)
{
	fm_imap_close(&p->imap);
	p->s = NULL;
	p->logged_out = false;
	if (fm_imap_open(p->acct, p->o, &p->imap, err) < 0)
		return -1;
	p->s = fm_imap_session(p->imap);
	bool was = p->qresync;
	p->qresync = false;
	return was ? fm_imap_enable(p->imap, "QRESYNC", &p->qresync, err) : 0;
}

int
fm_imap_sync(const struct fm_account *acct, struct fm_store *store,
             const struct fm_session_opts *o,
             const struct fm_imap_sync_opts *so, struct fm_imap_stats *stats,
             struct fm_error *err)
{
	memset(stats, 0, sizeof(*stats));
	struct pass p = {
	    .acct = acct, .store = store, .so = so, .stats = stats, .o = o};
	int ret = -1;
	if (fm_imap_open(acct, o, &p.imap, err) < 0)
		return -1;
	p.s = fm_imap_session(p.imap);
	p.uidplus = fm_imap_has_cap(p.imap, "UIDPLUS");
	p.move = fm_imap_has_cap(p.imap, "MOVE");
	p.condstore = fm_imap_has_cap(p.imap, "CONDSTORE") ||
	              fm_imap_has_cap(p.imap, "QRESYNC");
	if (imap_list_server(&p, err) < 0 || imap_list_local(&p, err) < 0)
		goto out;
	for (size_t i = 0; i < so->n_folders && so->folders != NULL; i++)
		if (imap_folder_by_local(&p, so->folders[i]) == NULL) {
			fm_error_set(err, FM_ERR_USAGE,
			             _("account %s has no folder %s, here or "
			               "on the server"),
			             acct->name, so->folders[i]);
			goto out;
		}
	imap_choose_folders(&p);
	if (imap_create_folders(&p, err) < 0)
		goto out;
	imap_save_roles(&p);
	bool asked = false;
	if (imap_replay_moves(&p, err) < 0)
		goto out;
	imap_prefetch_prepare(&p);
	if ((!imap_prefetch_blind(&p) &&
	     imap_list_status_ask(&p, &asked, err) < 0) ||
	    (asked && imap_list_status_read(&p, err) < 0) ||
	    imap_prefetch(&p, err) < 0)
		goto out;
	for (size_t i = 0; i < p.n_folders; i++) {
		struct folder *f = &p.folders[i];
		if (!taken(f) || f->synced)
			continue;
		if ((p.logged_out && imap_session_again(&p, err) < 0) ||
		    sync_folder(&p, f, err) < 0)
			goto out;
	}
	if (p.guarded != NULL) {
		fm_error_set(err, FM_ERR_PERMANENT, "%s", p.guard_text);
		goto out;
	}
	ret = 0;
out:
	imap_prefetch_free(&p);
	if (ret < 0 && p.imap != NULL && fm_net_failed(fm_imap_conn(p.imap)))
		fm_imap_abort(&p.imap);
	fm_imap_close(&p.imap);
	/* Folders that were synced are stamped, also after a failure; the
	 * clock ticked on while the session closed. */
	imap_stamps_flush(&p);
	free(p.guarded);
	free(p.guard_text);
	imap_folders_free(&p);
	return ret;
}

int
fm_imap_fetch_body(const struct fm_account *acct, struct fm_store *store,
                   const struct fm_session_opts *o, const char *folder,
                   const char *base, struct fm_error *err)
{
	struct pass p = {.acct = acct, .store = store};
	struct fm_state *st = NULL;
	if (imap_load_state(&p, folder, &st, err) < 0)
		return -1;
	const struct fm_state_entry *e = fm_state_find_base(st, base);
	bool partial = false;
	char *plain = e != NULL ? imap_kw_strip(e->keywords, &partial) : NULL;
	free(plain);
	if (e == NULL || !partial) {
		fm_state_free(&st);
		return 0; /* whole already, or not from the server */
	}
	uint32_t uid = e->uid;
	int ret = -1;
	char *name = NULL;
	clist *res = NULL;
	struct fm_buf lf;
	fm_buf_init(&lf, SIZE_MAX / 2);
	if (fm_imap_open(acct, o, &p.imap, err) < 0)
		goto out;
	p.s = fm_imap_session(p.imap);
	if (fm_imap_server_name(p.imap, folder, &name, err) < 0)
		goto out;
	if (mailimap_examine(p.s, name) != MAILIMAP_NO_ERROR) {
		char what[512];
		snprintf(what, sizeof(what), _("opening the folder %s"),
		         folder);
		fm_imap_fail(p.imap, what, err);
		goto out;
	}
	if (p.s->imap_selection_info == NULL ||
	    p.s->imap_selection_info->sel_uidvalidity !=
	        fm_state_uidvalidity(st)) {
		fm_error_set(err, FM_ERR_TEMPORARY,
		             _("%s renumbered the folder %s; run `fulmar sync "
		               "%s/%s` first"),
		             acct->host, folder, acct->name, folder);
		goto out;
	}
	uint32_t one = uid;
	struct mailimap_set *set = imap_uid_set(&one, 1);
	struct mailimap_fetch_type *ft = imap_fetch_type(false, false, true);
	int r = mailimap_uid_fetch(p.s, set, ft, &res);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR) {
		fm_imap_fail(p.imap, _("downloading the message"), err);
		res = NULL;
		goto out;
	}
	const char *body = NULL;
	size_t body_len = 0;
	for (clistiter *it = res != NULL ? clist_begin(res) : NULL; it != NULL;
	     it = clist_next(it)) {
		struct imap_fetched fx;
		imap_parse_att(clist_content(it), &fx);
		free(fx.keywords);
		free(fx.msgid);
		if (fx.uid == uid && fx.body != NULL) {
			body = fx.body;
			body_len = fx.body_len;
		}
	}
	if (body == NULL) {
		fm_error_set(err, FM_ERR_PERMANENT,
		             _("the server no longer has this message; it "
		               "goes at the next sync"));
		goto out;
	}
	imap_to_lf(&lf, body, body_len);
	if (fm_store_replace(store, acct->name, folder, base, lf.data, lf.len,
	                     err) < 0)
		goto out;
	/* Whole now: the entry loses its marker. */
	struct fm_state_entry ne = *e;
	plain = imap_kw_strip(e->keywords, &partial);
	ne.keywords = plain;
	r = fm_state_put(st, &ne, err);
	free(plain);
	if (r < 0 || imap_save_state(&p, folder, st, err) < 0)
		goto out;
	ret = 0;
out:
	if (res != NULL)
		mailimap_fetch_list_free(res);
	fm_buf_free(&lf);
	free(name);
	if (ret < 0 && p.imap != NULL && fm_net_failed(fm_imap_conn(p.imap)))
		fm_imap_abort(&p.imap);
	fm_imap_close(&p.imap);
	fm_state_free(&st);
	return ret;
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Step 4 pipelined, for the folders only the server changed.
 *
 * A folder whose stamp's local half still holds and whose state is as
 * that stamp's pass left it is a quick run (the state stands for the
 * maildir), and everything it asks the server is known from the stamp
 * before any answer: SELECT, the flags changed since the state's
 * HIGHESTMODSEQ with the UIDs expunged since (QRESYNC's VANISHED), and
 * the new messages, whole, from the state's UIDNEXT on.
 *
 * With a few such folders the pass goes blind: their commands all go out
 * at once, without LIST-STATUS, and each SELECT tells whether the folder
 * changed (LIST-STATUS would look at every folder once more on the
 * server). With many, LIST-STATUS says which changed, and only those are
 * sent, the one the server changed most first. The states are loaded
 * while the server answers; a folder whose state is not as the stamp
 * says has its answers dropped, but for its new messages. Each folder's
 * answers are read and its plan run while the server already answers
 * for the next ones, so neither side waits for the other.
 *
 * New messages are staged in the store as they arrive, under their
 * delivery keys, and the folder's downloads take them from there. A
 * folder the pipeline cannot finish is left to the usual way, after the
 * pipeline: its SELECT failed or told other counters than LIST-STATUS,
 * its listing disagrees with the count, or its plan needs commands of its
 * own (to change the server, or to fetch what was not staged). Its stamp
 * is gone by then, so that run compares everything, and a message staged
 * here is found by its key, never fetched twice.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "log/log.h"
#include "store/maildir.h"
#include "store/store.h"
#include "sync/state.h"

enum {
	/* More new messages than this in a folder: the usual way, which
	 * commits its downloads in batches. */
	PREFETCH_NEW_MAX = 1000,
	/* More folders than this to look at: LIST-STATUS tells which of
	 * them changed, in one command, instead of a SELECT each. */
	BLIND_FOLDERS_MAX = 32,
};

/* Blind (no LIST-STATUS), CMD_REST lists the new messages past the
 * first PREFETCH_NEW_MAX UIDs, without their bodies. */
enum { CMD_SELECT, CMD_CHANGED, CMD_NEW, CMD_REST, CMD_N };

struct prefetch {
	struct folder_run fr;
	struct imap_stamp stamp;
	uint32_t next;    /* the state's UIDNEXT */
	uint64_t since;   /* the state's HIGHESTMODSEQ */
	int tag[CMD_N];   /* of the commands sent; 0: not sent */
	size_t n_old;     /* fr.rv[0..n_old) are the UIDs below next */
	bool unchanged;   /* blind: SELECT told the stamp's counters */
	bool selected;    /* SELECT succeeded, as the state knows it */
	bool stage_only;  /* not quick: only new messages are kept, staged */
	bool usual;       /* left to the usual way */
	bool settled;     /* its plan ran, held (imap_run_release) */
	struct fm_buf lf; /* a message with LF line ends */
	int ret;          /* of staging, in the handler */
	struct fm_error err;
};

/* The local half, while LIST-STATUS is on its way: whether f's stamp's
 * local half still holds. */
static bool
prepare(struct pass *p, struct folder *f, struct prefetch *pf)
{
	if (!f->on_server || !f->on_local || !f->selectable || !f->wanted ||
	    f->server == NULL)
		return false;
	struct imap_stamp *sp = &pf->stamp;
	imap_stamp_read(p, f->local, sp);
	if (!sp->have || !imap_stamp_local_same(p, f->local, sp))
		return false;
	pf->fr = (struct folder_run){.p = p, .f = f};
	return true;
}

/* Blind: every folder whose stamp's local half holds is sent with the
 * stamp's counters, and its SELECT tells whether it changed. */
static bool
from_stamp(struct prefetch *pf)
{
	const uint64_t *old = pf->stamp.v;
	if (old[ST_UIDNEXT] == 0 || old[ST_UIDNEXT] > UINT32_MAX ||
	    old[ST_VALIDITY] == 0)
		return false;
	pf->next = (uint32_t)old[ST_UIDNEXT];
	pf->since = old[ST_MODSEQ];
	return true;
}

/* Once LIST-STATUS answered, from the stamp alone: f changed on the
 * server since the stamp, and not too much for one go. Its commands can
 * then go out at once: when the run is quick, the stamp's counters are
 * the state's (quick() looks, while the server answers). */
static bool
changed(const struct folder *f, struct prefetch *pf)
{
	const uint64_t *old = pf->stamp.v;
	if (!f->has_status || f->st_modseq == 0 || f->st_uidnext == 0 ||
	    f->st_validity != old[ST_VALIDITY] || old[ST_UIDNEXT] <= 1 ||
	    old[ST_MODSEQ] == 0 || old[ST_EXISTS] == 0)
		return false;
	const uint64_t now[ST_FILES] = {f->st_validity, f->st_uidnext,
	                                f->st_modseq, f->st_messages};
	/* Unchanged on the server: the usual way skips it at once. */
	if (imap_stamp_server_same(&pf->stamp, now) ||
	    f->st_uidnext < old[ST_UIDNEXT] ||
	    f->st_uidnext - old[ST_UIDNEXT] > PREFETCH_NEW_MAX)
		return false;
	return from_stamp(pf);
}

/* While the server answers: fr.quick if the state is as the stamp's
 * pass left it with nothing waiting to be uploaded (a quick run). Loads
 * the state. If not, the answers are read and dropped, and the folder
 * goes the usual way. */
static void
quick(struct pass *p, struct prefetch *pf)
{
	struct folder_run *fr = &pf->fr;
	struct fm_error e;
	fm_error_clear(&e);
	if (imap_load_state(p, fr->f->local, &fr->st, &e) < 0)
		return; /* the usual way says what is wrong */
	imap_uploads_load(p, fr->f->local, &fr->up);
	if (!imap_quick_state(fr, &pf->stamp) ||
	    fm_store_quick(p->store, p->acct->name, fr->f->local, &e) < 0)
		return;
	fr->quick = true;
	fr->prefetched = true;
	fr->saved_ms = fm_now_ms();
}

static int
send_command(struct pass *p, const char *cmd, int *tag_r, struct fm_error *err)
{
	int r = imap_send(p, cmd, _("sending commands"), err);
	*tag_r = p->s->imap_tag;
	return r;
}

/* After the SELECT, without LIST-STATUS: whatever may have changed since
 * the stamp. The new messages' range is bounded (a UID range holds no
 * more messages than UIDs), never "*", which names the last message
 * when there is no new one; those past it are only listed, and make the
 * folder go the usual way. */
static int
send_blind(struct pass *p, struct prefetch *pf, struct fm_error *err)
{
	int r = 0;
	char *cmd;
	if (pf->next > 1) {
		cmd = xasprintf("UID FETCH 1:%u (UID FLAGS) (CHANGEDSINCE %llu "
		                "VANISHED)\r\n",
		                pf->next - 1, (unsigned long long)pf->since);
		r = send_command(p, cmd, &pf->tag[CMD_CHANGED], err);
		free(cmd);
	}
	uint32_t last = pf->next <= UINT32_MAX - PREFETCH_NEW_MAX
	                    ? pf->next + PREFETCH_NEW_MAX - 1
	                    : UINT32_MAX;
	if (r == 0) {
		cmd = xasprintf("UID FETCH %u:%u (UID FLAGS RFC822.SIZE "
		                "BODY.PEEK[])\r\n",
		                pf->next, last);
		r = send_command(p, cmd, &pf->tag[CMD_NEW], err);
		free(cmd);
	}
	if (r == 0 && last < UINT32_MAX) {
		cmd = xasprintf("UID FETCH %u:%u (UID FLAGS RFC822.SIZE)\r\n",
		                last + 1, UINT32_MAX);
		r = send_command(p, cmd, &pf->tag[CMD_REST], err);
		free(cmd);
	}
	return r;
}

/* The folder's commands, after the ones already sent. */
static int
send_folder(struct pass *p, struct prefetch *pf, const char *quoted,
            struct fm_error *err)
{
	const struct folder *f = pf->fr.f;
	char *cmd = xasprintf("SELECT %s (CONDSTORE)\r\n", quoted);
	int r = send_command(p, cmd, &pf->tag[CMD_SELECT], err);
	free(cmd);
	if (p->blind)
		return r == 0 ? send_blind(p, pf, err) : r;
	if (r == 0 && f->st_modseq != pf->since) {
		cmd = xasprintf("UID FETCH 1:%u (UID FLAGS) (CHANGEDSINCE %llu "
		                "VANISHED)\r\n",
		                pf->next - 1, (unsigned long long)pf->since);
		r = send_command(p, cmd, &pf->tag[CMD_CHANGED], err);
		free(cmd);
	}
	if (r == 0 && f->st_uidnext > pf->next) {
		cmd = xasprintf("UID FETCH %u:* (UID FLAGS RFC822.SIZE "
		                "BODY.PEEK[])\r\n",
		                pf->next);
		r = send_command(p, cmd, &pf->tag[CMD_NEW], err);
		free(cmd);
	}
	return r;
}

/* HIGHESTMODSEQ of the SELECT just read, or 0. */
static uint64_t
selected_modseq(const mailimap *s)
{
	const struct mailimap_response_info *ri = s->imap_response_info;
	uint64_t modseq = 0;
	for (clistiter *it = ri != NULL && ri->rsp_extension_list != NULL
	                         ? clist_begin(ri->rsp_extension_list)
	                         : NULL;
	     it != NULL; it = clist_next(it)) {
		const struct mailimap_extension_data *ed = clist_content(it);
		if (ed->ext_extension->ext_id != MAILIMAP_EXTENSION_CONDSTORE ||
		    ed->ext_type != MAILIMAP_CONDSTORE_TYPE_RESP_TEXT_CODE ||
		    ed->ext_data == NULL)
			continue;
		const struct mailimap_condstore_resptextcode *c = ed->ext_data;
		if (c->cs_type == MAILIMAP_CONDSTORE_RESPTEXTCODE_HIGHESTMODSEQ)
			modseq = c->cs_data.cs_modseq_value;
	}
	return modseq;
}

static int
read_select(struct pass *p, struct prefetch *pf, struct fm_error *err)
{
	mailimap *s = p->s;
	struct folder_run *fr = &pf->fr;
	if (s->imap_selection_info != NULL)
		mailimap_selection_info_free(s->imap_selection_info);
	s->imap_selection_info = mailimap_selection_info_new();
	bool ok;
	if (imap_read_answer(p, pf->tag[CMD_SELECT], false, &ok,
	                     _("reading the server's answers"), err) < 0)
		return -1;
	s->imap_state =
	    ok ? MAILIMAP_STATE_SELECTED : MAILIMAP_STATE_AUTHENTICATED;
	if (!ok || s->imap_selection_info == NULL)
		return 0;
	const struct mailimap_selection_info *si = s->imap_selection_info;
	fr->validity = si->sel_uidvalidity;
	fr->uidnext = si->sel_uidnext;
	fr->exists = si->sel_exists;
	fr->modseq = selected_modseq(s);
	fr->local_only = imap_local_only_flags(p);
	if (p->blind) {
		/* As the usual way skips a folder: a stamp that only a
		 * listing of the names proved is renewed. */
		uint64_t now[ST_N] = {fr->validity, fr->uidnext, fr->modseq,
		                      fr->exists};
		pf->unchanged =
		    fr->modseq > 0 && fr->uidnext > 0 &&
		    imap_stamp_matches(p, fr->f->local, &pf->stamp, now);
		if (pf->unchanged)
			return 0;
		/* From here on the folder may change. */
		imap_stamp_write(p, fr->f->local, NULL);
		quick(p, pf);
	}
	/* What was sent must cover what changed. */
	pf->selected = fr->quick &&
	               fr->validity == fm_state_uidvalidity(fr->st) &&
	               fr->modseq > 0 && fr->uidnext > 0 &&
	               (fr->modseq == pf->since || pf->tag[CMD_CHANGED] != 0) &&
	               (fr->uidnext <= pf->next || pf->tag[CMD_NEW] != 0);
	pf->stage_only = !fr->quick && fr->validity == pf->stamp.v[ST_VALIDITY];
	return 0;
}

/* The listed message below next, or NULL. */
static struct remote *
find_old(struct prefetch *pf, uint32_t uid)
{
	size_t lo = imap_remote_lower(&pf->fr, pf->n_old, uid);
	return lo < pf->n_old && pf->fr.rv[lo].uid == uid ? &pf->fr.rv[lo]
	                                                  : NULL;
}

/* One FETCH response. The server may answer the listing and the new
 * messages at the same time (Dovecot does), so either command's data may
 * come under the other's: the UID tells which it is. Below next: changed
 * flags. From next on: a new message, staged when it came whole. */
static void
take_fetch(struct mailimap_msg_att *att, void *ctx)
{
	struct prefetch *pf = ctx;
	struct folder_run *fr = &pf->fr;
	struct imap_fetched fx;
	imap_parse_att(att, &fx);
	free(fx.msgid);
	if ((!pf->selected && !pf->stage_only) || pf->ret < 0 || fx.uid == 0) {
		free(fx.keywords);
		return;
	}
	/* As the plan's download will have it. */
	uint32_t flags = fx.flags & ~fr->local_only & FM_MAILDIR_STANDARD_FLAGS;
	char *base = NULL;
	if (!pf->selected) {
		/* Not a quick run after all: the new messages are still of
		 * use, staged under their keys, where the usual way finds
		 * them. */
		free(fx.keywords);
		if (fx.uid >= pf->next && fx.body != NULL && fx.have_flags) {
			pf->ret = imap_stage(fr, &pf->lf, &fx, flags, &base,
			                     &pf->err);
			free(base);
		}
		return;
	}
	struct remote *rm = fx.uid < pf->next ? find_old(pf, fx.uid) : NULL;
	if (rm == NULL)
		rm = imap_remote_add(fr, fx.uid);
	imap_remote_take_flags(rm, &fx);
	if (fx.uid < pf->next || !fx.have_size)
		return;
	rm->size = fx.size;
	if (fx.body == NULL || !fx.have_flags)
		return; /* the plan fetches it, the usual way */
	pf->ret = imap_stage(fr, &pf->lf, &fx, flags, &base, &pf->err);
	if (pf->ret < 0)
		return;
	fr->staged =
	    xreallocarray(fr->staged, fr->n_staged + 1, sizeof(*fr->staged));
	fr->staged[fr->n_staged++] = (struct imap_staged){
	    .uid = fx.uid, .flags = flags, .whole = true, .base = base};
}

/* Reads one folder's answers into its run. */
static int
read_folder(struct pass *p, struct prefetch *pf, struct fm_error *err)
{
	mailimap *s = p->s;
	struct folder_run *fr = &pf->fr;
	if (read_select(p, pf, err) < 0)
		return -1;
	bool bad_ok = s->imap_state != MAILIMAP_STATE_SELECTED;
	if (pf->selected) {
		imap_remote_from_state(fr, pf->next);
		pf->n_old = fr->rn;
	}
	fm_buf_init(&pf->lf, SIZE_MAX / 2);
	fm_error_clear(&pf->err);
	imap_take_messages(s, take_fetch, pf);
	int r = 0;
	for (int c = CMD_CHANGED; c < CMD_N && r == 0; c++) {
		bool ok;
		if (pf->tag[c] == 0 ||
		    (r = imap_read_answer(p, pf->tag[c], bad_ok, &ok,
		                          _("reading the server's answers"),
		                          err)) < 0)
			continue;
		pf->selected = pf->selected && ok;
		if (pf->selected && imap_drop_vanished(fr, NULL)) {
			/* Sorted and fewer now: find the old ones again. */
			pf->n_old = imap_remote_lower(fr, fr->rn, pf->next);
		}
	}
	imap_take_messages(s, NULL, NULL);
	fm_buf_free(&pf->lf);
	if (r < 0)
		return -1;
	if (pf->ret < 0) {
		*err = pf->err;
		return -1;
	}
	/* Anything else was expunged or added meanwhile: the usual way
	 * lists it all. */
	pf->usual = !pf->selected;
	if (pf->selected) {
		imap_listing_done(fr);
		imap_staged_sort(fr);
		pf->usual = fr->rn != fr->exists;
	}
	return 0;
}

static bool
takes(const struct pass *p)
{
	return p->qresync && p->acct->download == FM_DOWNLOAD_FULL;
}

void
imap_prefetch_prepare(struct pass *p)
{
	if (!takes(p))
		return;
	p->pre = xcalloc(p->n_folders + 1, sizeof(*p->pre));
	for (size_t i = 0; i < p->n_folders; i++)
		p->n_pre += prepare(p, &p->folders[i], &p->pre[p->n_pre]);
}

bool
imap_prefetch_blind(struct pass *p)
{
	p->blind = takes(p) && p->n_pre <= BLIND_FOLDERS_MAX;
	return p->blind;
}

void
imap_prefetch_free(struct pass *p)
{
	for (size_t i = 0; i < p->n_pre; i++)
		if (p->pre[i].fr.p != NULL)
			imap_run_end(&p->pre[i].fr, 0);
	free(p->pre);
	p->pre = NULL;
	p->n_pre = 0;
}

/* The folder the server changed most goes first: the local work of each
 * folder overlaps the server's for the ones after it, and the last one's
 * overlaps nothing. */
static uint64_t
server_changes(const struct prefetch *pf)
{
	const struct folder *f = pf->fr.f;
	const uint64_t *old = pf->stamp.v;
	uint64_t added = f->st_uidnext > old[ST_UIDNEXT]
	                     ? f->st_uidnext - old[ST_UIDNEXT]
	                     : 0;
	uint64_t changed =
	    f->st_modseq > old[ST_MODSEQ] ? f->st_modseq - old[ST_MODSEQ] : 0;
	return added + changed;
}

static int
cmp_most_changed(const void *a, const void *b)
{
	uint64_t x = server_changes(a), y = server_changes(b);
	return x > y ? -1 : x < y;
}

/* Blind, what changed is not known: INBOX, which changes most often,
 * goes first, then the folders with the most messages. */
static int
cmp_inbox_first(const void *a, const void *b)
{
	const struct prefetch *x = a, *y = b;
	bool xi = strcmp(x->fr.f->local, "INBOX") == 0;
	bool yi = strcmp(y->fr.f->local, "INBOX") == 0;
	if (xi != yi)
		return xi ? -1 : 1;
	uint64_t nx = x->stamp.v[ST_EXISTS], ny = y->stamp.v[ST_EXISTS];
	return nx > ny ? -1 : nx < ny;
}

int
imap_prefetch(struct pass *p, struct fm_error *err)
{
	struct prefetch *pv = p->pre;
	size_t n = 0;
	int ret = 0;
	if (p->n_pre > 1)
		qsort(pv, p->n_pre, sizeof(*pv),
		      p->blind ? cmp_inbox_first : cmp_most_changed);
	/* The folders that changed (blind: every one), each sent at once. */
	for (size_t i = 0; i < p->n_pre; i++) {
		struct prefetch *pf = &pv[i];
		const struct folder *f = pf->fr.f;
		char *quoted = ret == 0 ? imap_quoted(f->server) : NULL;
		if (quoted == NULL ||
		    !(p->blind ? from_stamp(pf) : changed(f, pf))) {
			imap_run_end(&pf->fr, 0);
			free(quoted);
			continue;
		}
		/* From here on the folder may change (blind: once SELECT
		 * says it did). */
		if (!p->blind)
			imap_stamp_write(p, f->local, NULL);
		if (i != n) {
			pv[n] = *pf;
			pf->fr.p = NULL;
		}
		ret = send_folder(p, &pv[n++], quoted, err);
		free(quoted);
	}
	p->n_pre = n;
	/* Every folder the pass takes is in the pipeline: unless the server
	 * surprises one of them, nothing after it needs the session, so
	 * LOGOUT goes out behind it; its answer is there when the pass ends,
	 * a round trip sooner. A surprise costs a new session. */
	if (ret == 0 && p->blind && n > 0 && n == imap_folders_taken(p) &&
	    (ret = fm_imap_logout_send(p->imap, err)) == 0)
		p->logged_out = true;
	for (size_t i = 0; i < n && ret == 0 && !p->blind; i++)
		quick(p, &pv[i]);
	for (size_t i = 0; i < n && ret == 0; i++) {
		struct prefetch *pf = &pv[i];
		ret = read_folder(p, pf, err);
		if (ret == 0 && pf->unchanged) {
			/* Neither side changed since the stamp. */
			pf->fr.f->synced = true;
			p->stats->folders++;
		} else if (ret == 0 && !pf->usual) {
			/* Its new messages are all written: to disk with them
			 * while the plan runs and the next folders are read. */
			if (pf->fr.n_staged > 0)
				fm_store_write_ahead(p->store);
			pf->fr.hold = true;
			ret = imap_settle(&pf->fr, err);
			pf->settled = ret == 0 && !pf->fr.deferred;
		}
		if (!pf->settled)
			imap_run_end(&pf->fr, ret);
	}
	/* One commit for every folder settled above (the first save makes
	 * it), then their states and stamps; after a failure, what was done
	 * is saved all the same. */
	for (size_t i = 0; i < n; i++) {
		struct prefetch *pf = &pv[i];
		if (!pf->settled)
			continue;
		if (ret == 0)
			ret = imap_run_release(&pf->fr, err);
		pf->fr.f->synced = ret == 0;
		if (ret == 0)
			fm_log_debug("%s/%s: synced in the pipeline",
			             p->acct->name, pf->fr.f->local);
		imap_run_end(&pf->fr, ret);
	}
	imap_prefetch_free(p);
	return ret;
}

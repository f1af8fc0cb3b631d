/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Step 4's downloads: a folder plan's new messages, fetched in pipelined
 * batches and staged in the store as they arrive (see doc/HACKING,
 * "IMAP synchronisation"). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "store/maildir.h"

enum {
	/* A download batch: this many messages or bytes per UID FETCH. */
	BATCH_MESSAGES = 200,
	BATCH_BYTES = 4 << 20,
};

struct dl {
	uint32_t uid;
	uint32_t flags;
	const char *keywords;
	uint64_t size;
	bool whole; /* the whole message, or its header only */
	size_t order;
	char *base; /* after delivery */
	bool have;  /* stored before (found by its tag) */
};

/* Downloads run in batches, pipelined: the next batch's UID FETCH is sent
 * as soon as the last one's answer is read, before that batch is committed
 * and recorded, so the server streams while the disk flushes. Each
 * message is staged as libetpan finishes parsing it
 * (mailimap_set_msg_att_handler), so writing files overlaps the rest of
 * the transfer and a parsed batch is never held whole. */
struct batch {
	struct folder_run *fr;
	struct dl *v;
	size_t n;
	bool whole;
	uint32_t *want; /* the UIDs to fetch: not stored before */
	size_t nw;
	bool sent;
	struct fm_buf lf; /* a message with LF line ends */
	int ret;          /* of storing, in the handler */
	struct fm_error err;
	size_t taken; /* messages stored from the answer (counted done) */
};

int
imap_stage(struct folder_run *fr, struct fm_buf *lf,
           const struct imap_fetched *fx, uint32_t flags, char **base_r,
           struct fm_error *err)
{
	struct pass *p = fr->p;
	imap_to_lf(lf, fx->body, fx->body_len);
	char *key = imap_key_of(fr->validity, fx->uid);
	int r = fm_store_deliver_staged(
	    p->store, p->acct->name, fr->f->local, key,
	    lf->data != NULL ? lf->data : "", lf->len,
	    flags & FM_MAILDIR_STANDARD_FLAGS, base_r, err);
	free(key);
	p->stats->downloaded++;
	p->stats->bytes += fx->body_len;
	fr->bytes += fx->body_len;
	return r;
}

static void
take_message(struct mailimap_msg_att *att, void *ctx)
{
	struct batch *b = ctx;
	struct folder_run *fr = b->fr;
	struct imap_fetched fx;
	imap_parse_att(att, &fx);
	free(fx.keywords);
	free(fx.msgid);
	if (b->ret < 0 || fx.uid == 0 || fx.body == NULL)
		return;
	struct dl *d = NULL;
	for (size_t i = 0; i < b->n && d == NULL; i++)
		if (b->v[i].uid == fx.uid && b->v[i].base == NULL)
			d = &b->v[i];
	if (d == NULL)
		return;
	b->ret = imap_stage(fr, &b->lf, &fx, d->flags, &d->base, &b->err);
	/* Progress message by message: the answer may take a while. */
	b->taken++;
	fr->done++;
	imap_progress(fr);
}

/* libetpan 1.9.4 calls a message handler only while a progress function
 * is set as well (mailimap_parse_response). */
static void
no_progress(size_t current, size_t maximum, void *ctx)
{
	(void)current;
	(void)maximum;
	(void)ctx;
}

void
imap_take_messages(mailimap *s, mailimap_msg_att_handler *handler, void *ctx)
{
	/* libetpan hands FETCH responses to the handler only while a
	 * progress callback is set. */
	mailimap_set_progress_callback(s, handler != NULL ? no_progress : NULL,
	                               NULL, NULL);
	mailimap_set_msg_att_handler(s, handler, ctx);
}

/* Looks up what the batch needs: a message stored before but not
 * recorded (a crash) is found by its tag and not fetched again. */
static void
batch_prepare(struct batch *b)
{
	struct pass *p = b->fr->p;
	b->want = xcalloc(b->n > 0 ? b->n : 1, sizeof(*b->want));
	for (size_t i = 0; i < b->n; i++) {
		struct dl *d = &b->v[i];
		/* Staged by the pipeline as the plan wants it: this pass
		 * downloaded it (counted then). */
		const struct imap_staged *sg =
		    imap_staged_for(b->fr, d->uid, d->flags);
		if (sg != NULL) {
			d->base = xstrdup(sg->base);
			continue;
		}
		/* A quick run knows every local file: none is unrecorded. */
		char *key =
		    b->fr->quick ? NULL : imap_key_of(b->fr->validity, d->uid);
		d->base = key == NULL
		              ? NULL
		              : fm_store_find_key(p->store, p->acct->name,
		                                  b->fr->f->local, key);
		free(key);
		d->have = d->base != NULL;
		if (d->base == NULL)
			b->want[b->nw++] = d->uid;
	}
	fm_buf_init(&b->lf, SIZE_MAX / 2);
	fm_error_clear(&b->err);
}

static int
batch_fail(struct batch *b, struct fm_error *err)
{
	char what[512];
	snprintf(what, sizeof(what), _("downloading messages of %s"),
	         b->fr->f->local);
	return fm_imap_fail(b->fr->p->imap, what, err);
}

/* Sends the batch's UID FETCH, by hand: libetpan would wait for the
 * answer. */
static int
batch_send(struct batch *b, struct fm_error *err)
{
	if (b->nw == 0)
		return 0;
	struct pass *p = b->fr->p;
	char *set = imap_uid_set_text(b->want, b->nw);
	char *cmd = xasprintf("UID FETCH %s (UID BODY.PEEK[%s])\r\n", set,
	                      b->whole ? "" : "HEADER");
	free(set);
	int r = imap_send(p, cmd, _("sending commands"), err);
	free(cmd);
	if (r < 0)
		return batch_fail(b, err);
	b->sent = true;
	return 0;
}

/* Reads the answer of a batch sent, storing each message as it comes. A
 * NO (messages expunged meanwhile) is no failure: what came is kept, the
 * rest is not there. */
static int
batch_receive(struct batch *b, struct fm_error *err)
{
	if (!b->sent)
		return 0;
	mailimap *s = b->fr->p->s;
	struct mailimap_response *resp = NULL;
	imap_take_messages(s, take_message, b);
	int r = mailimap_read_line(s) == NULL
	            ? MAILIMAP_ERROR_STREAM
	            : mailimap_parse_response(s, &resp);
	imap_take_messages(s, NULL, NULL);
	if (s->imap_response_info != NULL &&
	    s->imap_response_info->rsp_fetch_list != NULL) {
		mailimap_fetch_list_free(s->imap_response_info->rsp_fetch_list);
		s->imap_response_info->rsp_fetch_list = NULL;
	}
	int state = resp != NULL ? resp->rsp_resp_done->rsp_data.rsp_tagged
	                               ->rsp_cond_state->rsp_type
	                         : MAILIMAP_RESP_COND_STATE_BAD;
	if (resp != NULL)
		mailimap_response_free(resp);
	if (b->ret < 0) {
		*err = b->err;
		return -1;
	}
	if (r != MAILIMAP_NO_ERROR || state == MAILIMAP_RESP_COND_STATE_BAD)
		return batch_fail(b, err);
	return 0;
}

/* Makes what the batch staged durable and records it: even after a
 * failure, so the next pass need not fetch it again. ret: the pass's
 * result so far; the first failure is kept in err. */
static int
batch_finish(struct batch *b, int ret, struct fm_error *err)
{
	struct folder_run *fr = b->fr;
	struct pass *p = fr->p;
	bool committed = true;
	struct fm_error cerr;
	fm_error_clear(&cerr);
	/* Held, the records wait in memory: the state is saved only after
	 * the commit that makes them true. */
	if (!fr->hold && fm_store_commit(p->store, &cerr) < 0) {
		committed = false;
		if (ret == 0) {
			*err = cerr;
			ret = -1;
		}
	}
	for (size_t i = 0; i < b->n; i++) {
		/* A message expunged meanwhile is simply not there; the
		 * next pass forgets it. One that was staged and committed is
		 * recorded even after a failure: the state must know it. */
		struct dl *d = &b->v[i];
		struct fm_error rerr;
		fm_error_clear(&rerr);
		if (committed && d->base != NULL &&
		    imap_record(fr, d->uid, d->base, d->flags, d->keywords,
		                d->have ? IMAP_KEEP_PARTIAL : !b->whole,
		                &rerr) < 0 &&
		    ret == 0) {
			*err = rerr;
			ret = -1;
		}
		const struct fm_imap_progress *pr = p->so->progress;
		if (committed && d->base != NULL && !d->have && pr != NULL &&
		    pr->stored != NULL)
			pr->stored(pr->ctx, fr->f->local, d->base);
		free(d->base);
		d->base = NULL;
	}
	fr->done += b->n - b->taken;
	imap_progress(fr);
	if (ret == 0)
		ret = imap_maybe_save(fr, false, err);
	fm_buf_free(&b->lf);
	free(b->want);
	b->want = NULL;
	return ret;
}

static int
cmp_staged(const void *a, const void *b)
{
	uint32_t x = ((const struct imap_staged *)a)->uid;
	uint32_t y = ((const struct imap_staged *)b)->uid;
	return x < y ? -1 : x > y;
}

void
imap_staged_sort(struct folder_run *fr)
{
	if (fr->n_staged > 1)
		qsort(fr->staged, fr->n_staged, sizeof(*fr->staged),
		      cmp_staged);
}

static const struct imap_staged *
staged_find(const struct folder_run *fr, uint32_t uid)
{
	struct imap_staged key = {.uid = uid};
	return fr->n_staged == 0 ? NULL
	                         : bsearch(&key, fr->staged, fr->n_staged,
	                                   sizeof(key), cmp_staged);
}

static uint64_t
remote_size(struct folder_run *fr, uint32_t uid)
{
	struct remote *rm = imap_remote_find(fr, uid);
	return rm != NULL ? rm->size : 0;
}

/* Whether a new message comes whole or as its headers (download). */
static bool
wants_whole(const struct fm_account *a, uint64_t size)
{
	switch (a->download) {
	case FM_DOWNLOAD_HEADERS:
		return false;
	case FM_DOWNLOAD_MAX:
		return size <= a->download_max;
	default:
		return true;
	}
}

const struct imap_staged *
imap_staged_for(struct folder_run *fr, uint32_t uid, uint32_t flags)
{
	const struct imap_staged *sg = staged_find(fr, uid);
	bool whole = wants_whole(fr->p->acct, remote_size(fr, uid));
	return sg != NULL && sg->whole == whole &&
	               sg->flags == (flags & FM_MAILDIR_STANDARD_FLAGS)
	           ? sg
	           : NULL;
}

static int
cmp_dl_kind(const void *a, const void *b)
{
	const struct dl *x = a, *y = b;
	if (x->whole != y->whole)
		return x->whole ? 1 : -1;
	return (x->order > y->order) - (x->order < y->order);
}

int
imap_downloads(struct folder_run *fr, const struct fm_plan *plan,
               struct fm_error *err)
{
	/* Header stubs first (quick to show), then whole messages. */
	size_t n = 0;
	struct dl *all = NULL;
	for (size_t i = 0; i < fm_plan_count(plan); i++) {
		const struct fm_plan_action *a = fm_plan_action_at(plan, i);
		if (a->op != FM_PLAN_DOWNLOAD)
			continue;
		all = xreallocarray(all, n + 1, sizeof(*all));
		uint64_t size = remote_size(fr, a->uid);
		all[n++] = (struct dl){.uid = a->uid,
		                       .flags = a->flags,
		                       .keywords = a->keywords,
		                       .size = size,
		                       .whole = wants_whole(fr->p->acct, size)};
	}
	if (n == 0)
		return 0;
	/* qsort is not stable: order keeps the plan's within a kind. */
	for (size_t i = 0; i < n; i++)
		all[i].order = i;
	qsort(all, n, sizeof(*all), cmp_dl_kind);
	int ret = 0;
	struct batch bt[2], *prev = NULL;
	size_t next = 0;
	for (int k = 0;; k ^= 1) {
		struct batch *cur = NULL;
		if (ret == 0 && next < n) {
			cur = &bt[k];
			*cur = (struct batch){.fr = fr,
			                      .v = &all[next],
			                      .whole = all[next].whole};
			uint64_t bytes = 0;
			while (next < n && cur->n < BATCH_MESSAGES &&
			       all[next].whole == cur->whole &&
			       (cur->n == 0 || bytes < BATCH_BYTES)) {
				bytes += cur->whole ? all[next].size : 0;
				cur->n++;
				next++;
			}
			batch_prepare(cur);
			ret = batch_send(cur, err);
		}
		if (prev != NULL)
			ret = batch_finish(prev, ret, err);
		if (cur == NULL)
			break;
		struct fm_error rerr;
		fm_error_clear(&rerr);
		if (batch_receive(cur, &rerr) < 0 && ret == 0) {
			*err = rerr;
			ret = -1;
		}
		prev = cur;
	}
	free(all);
	return ret;
}

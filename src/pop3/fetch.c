/* SPDX-License-Identifier: GPL-3.0-or-later */
/* One POP3 send/receive pass: list, download what is new, complete header
 * stubs, apply the deletion policy, QUIT. The order of writes is what
 * makes it crash-safe: a message is fsynced in the maildir (tagged with
 * its UIDL and size) before its UIDL enters the sync state, and DELE is
 * sent only for messages whose whole body is stored; POP3 forgets every
 * DELE of a session that ends without QUIT, so a cut link deletes
 * nothing.
 *
 * The pass runs in three phases, each one pipelined (wire.c): the new
 * messages (RETR, or TOP n 0 for headers), then with download = headers
 * the bodies of the stubs, then the DELEs. A pass that finds nothing new
 * asks STAT and UIDL, finds them as the last complete pass left them
 * (seen.c) and ends; only otherwise it reads LIST and the state, where
 * the size LIST gave at download time tells a reused UIDL without
 * opening the folder's summary. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"
#include "pop3/pop3_int.h"
#include "store/store.h"
#include "sync/journal.h"
#include "sync/state.h"

#define FOLDER "INBOX"
/* The record of the last complete pass (seen.c). */
#define SEEN_FILE ".fulmar-pop3-seen"
/* Downloads are made durable in batches: one flush per batch of messages
 * or of bytes, not one per message. */
enum {
	SAVE_EVERY = 200,
	SAVE_INTERVAL_MS = 2000,
	BATCH_MESSAGES = 100,
	BATCH_BYTES = 16 << 20,
};

/* A message staged in the store, waiting for the batch's commit before
 * its UIDL may enter the sync state. */
struct staged {
	char *uidl;
	char *base;
	struct pop3_kw kw;
	bool fresh; /* downloaded now, not found stored from before */
};

struct pass {
	const struct fm_account *acct;
	struct fm_store *store;
	struct fm_pop3 *session;
	struct fm_state *state;
	char *state_path;
	unsigned changes; /* since the last save */
	struct fm_pop3_stats *stats;
	int64_t now;
	uint64_t saved_ms;
	struct staged *staged;
	size_t n_staged;
	uint64_t staged_bytes;
	struct pop3_msg *msgs;
	size_t n;
	bool *fresh;        /* per message: new in this pass */
	size_t *req;        /* the current phase's messages (indexes) */
	bool *req_whole;    /* per request: RETR (true) or TOP n 0 */
	struct fm_buf data; /* the message being received */
	const struct fm_pop3_progress *progress;
	size_t done, total;
};

/* The delivery key: the UIDL and the size, so a reused UIDL with another
 * message behind it is another key. */
static char *
key_of(const struct pop3_msg *m)
{
	return xasprintf("pop3:%s:%llu", m->uidl, (unsigned long long)m->size);
}

/* Saves the state when forced, or now and then during a pass: not after
 * every batch, since rewriting a large state costs, and a state that lags
 * behind loses nothing (the tags in the file names say what is stored). */
static int
save_state(struct pass *p, bool force, struct fm_error *err)
{
	if (p->changes == 0 ||
	    (!force && (p->changes < SAVE_EVERY ||
	                fm_now_ms() - p->saved_ms < SAVE_INTERVAL_MS)))
		return 0;
	if (fm_state_save(p->state, p->state_path, err) < 0)
		return -1;
	p->changes = 0;
	p->saved_ms = fm_now_ms();
	return 0;
}

/* Records an entry for uidl with its keywords. */
static int
put_entry(struct pass *p, const char *uidl, int64_t first_seen,
          const char *base, const struct pop3_kw *kw, struct fm_error *err)
{
	char *keywords = pop3_kw_format(kw);
	struct fm_state_entry e = {
	    .uidl = uidl,
	    .first_seen = first_seen,
	    .base = base,
	    .keywords = keywords,
	};
	int r = fm_state_put(p->state, &e, err);
	free(keywords);
	if (r == 0)
		p->changes++;
	return r;
}

static bool
wants_whole(const struct fm_account *a, const struct pop3_msg *m)
{
	switch (a->download) {
	case FM_DOWNLOAD_FULL:
		return true;
	case FM_DOWNLOAD_HEADERS:
		return false;
	case FM_DOWNLOAD_MAX:
		return m->size <= a->download_max;
	}
	return true;
}

/* Makes the staged messages durable, then records their UIDLs. */
static int
commit(struct pass *p, struct fm_error *err)
{
	int ret = p->n_staged > 0 ? fm_store_commit(p->store, err) : 0;
	for (size_t i = 0; i < p->n_staged; i++) {
		struct staged *st = &p->staged[i];
		if (ret == 0 &&
		    put_entry(p, st->uidl, p->now, st->base, &st->kw, err) < 0)
			ret = -1;
		if (ret == 0 && st->fresh && p->progress != NULL &&
		    p->progress->stored != NULL)
			p->progress->stored(p->progress->ctx, FOLDER, st->base);
		free(st->uidl);
		free(st->base);
	}
	p->n_staged = 0;
	p->staged_bytes = 0;
	if (ret < 0)
		return -1;
	return save_state(p, false, err);
}

static void
stage(struct pass *p, const struct pop3_msg *m, char *base,
      const struct pop3_kw *kw)
{
	p->staged =
	    xreallocarray(p->staged, p->n_staged + 1, sizeof(*p->staged));
	p->staged[p->n_staged++] =
	    (struct staged){.uidl = xstrdup(m->uidl), .base = base, .kw = *kw};
}

static void
tell_progress(struct pass *p)
{
	p->done++;
	if (p->progress != NULL && p->progress->fn != NULL)
		p->progress->fn(p->progress->ctx, p->done, p->total,
		                p->stats->bytes);
}

/* ------------------------------------------------------------------------
 * Phase 1: new messages.
 */

static int
new_send(void *ctx, size_t i, struct fm_error *err)
{
	struct pass *p = ctx;
	const struct pop3_msg *m = &p->msgs[p->req[i]];
	return p->req_whole[i] ? pop3_send(p->session, err, "RETR %u", m->num)
	                       : pop3_send(p->session, err, "TOP %u 0", m->num);
}

/* Receives one message (RETR or TOP) into p->data. */
static int
receive(struct pass *p, bool whole, struct fm_error *err)
{
	const char *what = whole ? "RETR" : "TOP";
	int r = pop3_status(p->session, what, err);
	if (r <= 0)
		return r < 0 ? -1 : pop3_refused(p->session, what, err);
	fm_buf_reset(&p->data);
	if (pop3_body(p->session, what, &p->data, err) < 0)
		return -1;
	p->stats->bytes += p->data.len;
	return 0;
}

static int
new_recv(void *ctx, size_t i, struct fm_error *err)
{
	struct pass *p = ctx;
	const struct pop3_msg *m = &p->msgs[p->req[i]];
	bool whole = p->req_whole[i];
	if (receive(p, whole, err) < 0)
		return -1;
	char *key = key_of(m);
	char *base = NULL;
	int r =
	    fm_store_deliver_staged(p->store, p->acct->name, FOLDER, key,
	                            p->data.data, p->data.len, 0, &base, err);
	free(key);
	if (r < 0)
		return -1;
	struct pop3_kw kw = {
	    .partial = !whole, .has_size = true, .size = m->size};
	stage(p, m, base, &kw);
	p->staged[p->n_staged - 1].fresh = true;
	p->staged_bytes += p->data.len;
	p->stats->downloaded++;
	tell_progress(p);
	if (p->n_staged >= BATCH_MESSAGES || p->staged_bytes >= BATCH_BYTES)
		return commit(p, err);
	return 0;
}

/* ------------------------------------------------------------------------
 * Phase 2: bodies for header stubs.
 */

static int
stub_send(void *ctx, size_t i, struct fm_error *err)
{
	struct pass *p = ctx;
	return pop3_send(p->session, err, "RETR %u", p->msgs[p->req[i]].num);
}

static int
stub_recv(void *ctx, size_t i, struct fm_error *err)
{
	struct pass *p = ctx;
	const struct pop3_msg *m = &p->msgs[p->req[i]];
	if (receive(p, true, err) < 0)
		return -1;
	const struct fm_state_entry *se = fm_state_find_uidl(p->state, m->uidl);
	if (se == NULL || se->base == NULL)
		return 0;
	if (fm_store_replace(p->store, p->acct->name, FOLDER, se->base,
	                     p->data.data, p->data.len, err) < 0)
		return -1;
	struct pop3_kw kw;
	pop3_kw_parse(se->keywords, &kw);
	kw.partial = false;
	char *base = xstrdup(se->base);
	int r = put_entry(p, m->uidl, se->first_seen, base, &kw, err);
	free(base);
	if (r < 0)
		return -1;
	p->stats->completed++;
	return save_state(p, false, err);
}

/* ------------------------------------------------------------------------
 * Phase 3: deletions.
 */

static int
dele_send(void *ctx, size_t i, struct fm_error *err)
{
	struct pass *p = ctx;
	return pop3_send(p->session, err, "DELE %u", p->msgs[p->req[i]].num);
}

static int
dele_recv(void *ctx, size_t i, struct fm_error *err)
{
	struct pass *p = ctx;
	int r = pop3_status(p->session, "DELE", err);
	if (r <= 0)
		return r < 0 ? -1 : pop3_refused(p->session, "DELE", err);
	p->msgs[p->req[i]].deleted = true;
	p->stats->deleted++;
	return 0;
}

/* The journal's DELETE records for INBOX, for delete_when_deleted_locally;
 * every record is acknowledged after a good QUIT (a POP3 server has no
 * flags or folders to give the others to). */
struct local_deletes {
	char **bases; /* sorted once collected */
	size_t n;
	uint64_t last_seq;
};

static int
collect_delete(void *ctx, const struct fm_journal_record *r,
               struct fm_error *err)
{
	(void)err;
	struct local_deletes *d = ctx;
	d->last_seq = r->seq;
	if (r->op == FM_JOURNAL_DELETE && strcmp(r->folder, FOLDER) == 0) {
		d->bases = xreallocarray(d->bases, d->n + 1, sizeof(*d->bases));
		d->bases[d->n++] = xstrdup(r->base);
	}
	return 0;
}

static int
cmp_strp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
cmp_ptr(const void *a, const void *b)
{
	const void *x = *(const void *const *)a, *y = *(const void *const *)b;
	return x < y ? -1 : x > y;
}

static bool
deleted_locally(const struct local_deletes *d, const char *base)
{
	return base != NULL && d->n > 0 &&
	       bsearch(&base, d->bases, d->n, sizeof(*d->bases), cmp_strp) !=
	           NULL;
}

/* Whether the policy deletes message m from the server now. Only a
 * message whose whole body is stored goes, except one the user deleted
 * locally, stub or not. */
static bool
policy_deletes(const struct pass *p, const struct local_deletes *dels, size_t i,
               const struct fm_state_entry *se)
{
	const struct fm_account *a = p->acct;
	struct pop3_kw kw;
	pop3_kw_parse(se->keywords, &kw);
	if (a->delete_when_deleted_locally && deleted_locally(dels, se->base))
		return true;
	if (kw.partial)
		return false;
	if (!a->keep_on_server)
		return true;
	return !p->fresh[i] && a->delete_after_days > 0 &&
	       p->now - se->first_seen >= (int64_t)a->delete_after_days * 86400;
}

/* ------------------------------------------------------------------------
 * The pass.
 */

/* Checks a known message against its entry: false when the server reuses
 * the UIDL for another message (another size). Entries written before
 * the size was kept are checked against the stored file once and get the
 * size recorded. */
static int
same_message(struct pass *p, const struct pop3_msg *m,
             const struct fm_state_entry *se, bool *same_r,
             struct fm_error *err)
{
	struct pop3_kw kw;
	pop3_kw_parse(se->keywords, &kw);
	*same_r = true;
	if (kw.has_size) {
		*same_r = kw.size == m->size;
		return 0;
	}
	struct fm_store_info li;
	int have = fm_store_lookup(p->store, p->acct->name, FOLDER, se->base,
	                           &li, err);
	if (have < 0)
		return -1;
	free(li.file);
	if (have == 1 && !kw.partial && li.size != m->size) {
		*same_r = false;
		return 0;
	}
	kw.has_size = true;
	kw.size = m->size;
	char *base = xstrdup(se->base);
	char *uidl = xstrdup(se->uidl);
	int r = put_entry(p, uidl, se->first_seen, base, &kw, err);
	free(base);
	free(uidl);
	return r;
}

/* A new message that is stored already (a crash after its delivery, or a
 * lost state file): the tag in its file name says so. It is recorded
 * without fetching; a copy smaller than the message is a header stub. */
static int
stored_before(struct pass *p, const struct pop3_msg *m, bool *found_r,
              struct fm_error *err)
{
	char *key = key_of(m);
	char *base = fm_store_find_key(p->store, p->acct->name, FOLDER, key);
	free(key);
	*found_r = base != NULL;
	if (base == NULL)
		return 0;
	struct fm_store_info li;
	int have =
	    fm_store_lookup(p->store, p->acct->name, FOLDER, base, &li, err);
	if (have < 0) {
		free(base);
		return -1;
	}
	free(li.file);
	struct pop3_kw kw = {
	    .partial = have == 1 && li.size != m->size,
	    .has_size = true,
	    .size = m->size,
	};
	stage(p, m, base, &kw);
	return 0;
}

/* Forgets the entries of messages the server no longer lists. Cheap when
 * every entry was seen in the listing (the usual case): then nothing is
 * sorted. */
static void
prune(struct pass *p)
{
	const struct fm_state_entry **seen =
	    xcalloc(p->n ? p->n : 1, sizeof(*seen));
	size_t n_seen = 0;
	for (size_t i = 0; i < p->n; i++) {
		if (p->msgs[i].uidl == NULL || p->msgs[i].deleted)
			continue;
		const struct fm_state_entry *se =
		    fm_state_find_uidl(p->state, p->msgs[i].uidl);
		if (se != NULL)
			seen[n_seen++] = se;
	}
	/* Listed UIDLs are distinct (wire.c checks numbers, the state keys):
	 * count distinct entries by address. */
	size_t distinct = n_seen;
	if (n_seen > 1) {
		qsort(seen, n_seen, sizeof(*seen), cmp_ptr);
		distinct = 1;
		for (size_t i = 1; i < n_seen; i++)
			distinct += seen[i] != seen[i - 1];
	}
	free(seen);
	if (distinct == fm_state_count(p->state))
		return;
	const char **listed = xcalloc(p->n ? p->n : 1, sizeof(*listed));
	size_t n_listed = 0;
	for (size_t i = 0; i < p->n; i++)
		if (p->msgs[i].uidl != NULL && !p->msgs[i].deleted)
			listed[n_listed++] = p->msgs[i].uidl;
	qsort(listed, n_listed, sizeof(*listed), cmp_strp);
	for (size_t i = fm_state_count(p->state); i > 0; i--) {
		const struct fm_state_entry *se =
		    fm_state_entry_at(p->state, i - 1);
		if (bsearch(&se->uidl, listed, n_listed, sizeof(*listed),
		            cmp_strp) == NULL) {
			char *uidl = xstrdup(se->uidl);
			fm_state_remove_uidl(p->state, uidl);
			free(uidl);
			p->changes++;
		}
	}
	free(listed);
}

char *
pop3_state_path(struct fm_store *store, const struct fm_account *acct)
{
	char *dir =
	    fm_store_folder_dir(fm_store_data_dir(store), acct->name, FOLDER);
	char *path = fm_path_join(dir, ".fulmar-state");
	free(dir);
	return path;
}

int
pop3_state_folder(struct fm_store *store, const struct fm_account *acct,
                  struct fm_error *err)
{
	/* The folder must exist for its state file; asking the store only
	 * when it does not yet spares reading its summary. */
	char *dir =
	    fm_store_folder_dir(fm_store_data_dir(store), acct->name, FOLDER);
	bool exists = access(dir, F_OK) == 0;
	free(dir);
	if (!exists &&
	    fm_store_ensure_folder(store, acct->name, FOLDER, err) < 0)
		return -1;
	return 0;
}

int
pop3_state_loaded(int r, bool damaged, struct fm_state **state_r,
                  struct fm_error *err)
{
	if (r == 0)
		return 0;
	if (!damaged)
		return -1;
	/* The UIDL list is lost; the tags in the file names still say what
	 * was downloaded, so nothing comes twice. */
	fm_log_warn("%s", err->user);
	fm_error_clear(err);
	*state_r = fm_state_new(FM_STATE_POP3);
	return 0;
}

int
pop3_state_open(struct fm_store *store, const struct fm_account *acct,
                const char *path, struct fm_state **state_r,
                struct fm_error *err)
{
	if (pop3_state_folder(store, acct, err) < 0)
		return -1;
	bool damaged = false;
	int r = fm_state_load(path, FM_STATE_POP3, state_r, &damaged, err);
	return pop3_state_loaded(r, damaged, state_r, err);
}

/* Loading the state on a helper thread while the main one connects: a
 * big state takes about as long to parse as TLS and login take, and
 * neither needs the other. The thread touches nothing but the file and
 * its own fields. */
struct loader {
	pthread_t thread;
	bool started, threaded;
	const char *path;
	struct fm_state *state;
	bool damaged;
	int ret;
	struct fm_error err;
};

static void *
loader_main(void *arg)
{
	struct loader *l = arg;
	l->ret = fm_state_load(l->path, FM_STATE_POP3, &l->state, &l->damaged,
	                       &l->err);
	return NULL;
}

static void
loader_start(struct loader *l)
{
	l->started = true;
	l->threaded = pthread_create(&l->thread, NULL, loader_main, l) == 0;
	if (!l->threaded)
		loader_main(l);
}

/* Waits for the load; idempotent. */
static void
loader_finish(struct loader *l)
{
	if (l->threaded)
		pthread_join(l->thread, NULL);
	l->threaded = false;
}

const char *
pop3_folder(void)
{
	return FOLDER;
}

/* Decides, message by message, what is new and what is known; new ones
 * stored before are recorded at once. Fills p->req with the messages to
 * fetch. */
static int
plan_new(struct pass *p, struct fm_error *err)
{
	size_t n_req = 0;
	bool warned = false;
	for (size_t i = 0; i < p->n; i++) {
		const struct pop3_msg *m = &p->msgs[i];
		if (m->uidl == NULL) {
			/* Listed by LIST, not by UIDL: gone meanwhile, or a
			 * broken server; it comes next time if it is real. */
			if (!warned)
				fm_log_warn("%s: UIDL does not name message "
				            "%u; skipping it",
				            p->acct->host, m->num);
			warned = true;
			continue;
		}
		const struct fm_state_entry *se =
		    fm_state_find_uidl(p->state, m->uidl);
		if (se != NULL && se->base != NULL) {
			bool same;
			if (same_message(p, m, se, &same, err) < 0)
				return -1;
			if (!same) {
				fm_log_warn("%s reuses the UIDL %s for another "
				            "message; downloading it as new",
				            p->acct->host, m->uidl);
				fm_state_remove_uidl(p->state, m->uidl);
				p->changes++;
				se = NULL;
			}
		}
		if (se != NULL)
			continue;
		p->fresh[i] = true;
		bool found;
		if (stored_before(p, m, &found, err) < 0)
			return -1;
		if (found)
			continue;
		p->req_whole[n_req] = wants_whole(p->acct, m);
		p->req[n_req++] = i;
	}
	return (int)n_req;
}

/* The stubs to complete with download = headers: every listed message
 * stored as headers whose stub is still in the folder. */
static size_t
plan_stubs(struct pass *p, struct fm_error *err)
{
	size_t n_req = 0;
	for (size_t i = 0; i < p->n; i++) {
		const struct pop3_msg *m = &p->msgs[i];
		if (m->uidl == NULL)
			continue;
		const struct fm_state_entry *se =
		    fm_state_find_uidl(p->state, m->uidl);
		if (se == NULL || se->base == NULL || se->keywords == NULL)
			continue;
		struct pop3_kw kw;
		pop3_kw_parse(se->keywords, &kw);
		if (!kw.partial)
			continue;
		struct fm_store_info li;
		int have = fm_store_lookup(p->store, p->acct->name, FOLDER,
		                           se->base, &li, err);
		free(li.file);
		if (have < 0)
			return SIZE_MAX;
		if (have == 1)
			p->req[n_req++] = i;
	}
	return n_req;
}

/* The first time delete_after_days deletes one of the listed messages
 * (INT64_MAX: never). */
static int64_t
deadline(struct pass *p)
{
	int64_t first = INT64_MAX;
	if (p->acct->delete_after_days == 0)
		return first;
	int64_t after = (int64_t)p->acct->delete_after_days * 86400;
	for (size_t i = 0; i < p->n; i++) {
		if (p->msgs[i].uidl == NULL || p->msgs[i].deleted)
			continue;
		const struct fm_state_entry *se =
		    fm_state_find_uidl(p->state, p->msgs[i].uidl);
		struct pop3_kw kw;
		if (se == NULL)
			continue;
		pop3_kw_parse(se->keywords, &kw);
		if (!kw.partial && se->first_seen + after < first)
			first = se->first_seen + after;
	}
	return first;
}

int
fm_pop3_sync(const struct fm_account *acct, struct fm_store *store,
             const struct fm_session_opts *o, int64_t now,
             const struct fm_pop3_progress *progress,
             struct fm_pop3_stats *stats, struct fm_error *err)
{
	memset(stats, 0, sizeof(*stats));
	struct pass p = {.acct = acct,
	                 .store = store,
	                 .stats = stats,
	                 .now = now,
	                 .progress = progress};
	struct local_deletes dels = {0};
	fm_buf_init(&p.data, o->limits.max_literal);
	p.state_path = pop3_state_path(store, acct);
	int ret = -1;
	struct fm_journal *journal = fm_store_journal(store, acct->name);
	struct loader ld = {.path = p.state_path};
	fm_error_clear(&ld.err);
	struct pop3_quick quick = {0};
	char *dir =
	    fm_store_folder_dir(fm_store_data_dir(store), acct->name, FOLDER);
	char *seen_path = fm_path_join(dir, SEEN_FILE);
	free(dir);
	bool have_uidl;
	if (pop3_state_folder(store, acct, err) < 0)
		goto out;
	/* Nothing new since the last complete pass? Then the state need not
	 * be read at all; else it is read on a helper thread while the
	 * session opens and the server prepares the listing. */
	char seen[65];
	bool maybe_fast = pop3_seen_check(seen_path, p.state_path, now, seen) &&
	                  (!acct->delete_when_deleted_locally ||
	                   journal == NULL || fm_journal_pending(journal) == 0);
	if (!maybe_fast)
		loader_start(&ld);
	if (fm_pop3_open(acct, o, &p.session, err) < 0)
		goto out;
	char digest[65];
	if (maybe_fast) {
		/* The quick look: STAT and UIDL against the record. */
		if (pop3_quick_ask(p.session, err) < 0 ||
		    pop3_quick_read(p.session, &quick, err) < 0)
			goto out;
		if (quick.have_uidl) {
			pop3_seen_digest(acct, quick.msgs, quick.n, quick.count,
			                 quick.octets, digest);
			if (strcmp(digest, seen) == 0) {
				stats->on_server = (size_t)quick.count;
				if (pop3_quit(p.session, err) < 0)
					goto out;
				ret = 0;
				goto out;
			}
		}
		loader_start(&ld);
		have_uidl = quick.have_uidl;
		if (pop3_listing_after_quick(p.session, &quick, &p.msgs, &p.n,
		                             err) < 0)
			goto out;
	} else if (pop3_listing_ask(p.session, err) < 0 ||
	           pop3_listing_read(p.session, &p.msgs, &p.n, &have_uidl,
	                             err) < 0) {
		goto out;
	}
	stats->on_server = p.n;
	if (!have_uidl) {
		if (acct->pop3_no_uidl != FM_POP3_NO_UIDL_MESSAGE_ID) {
			pop3_err_no_uidl(p.session, err);
			goto out;
		}
		if (pop3_keys_from_headers(p.session, p.msgs, p.n, NULL, err) <
		    0)
			goto out;
	}
	/* The long way: this pass is complete only if it ends well. */
	pop3_seen_forget(seen_path);
	if (!ld.started)
		loader_start(&ld);
	loader_finish(&ld);
	p.state = ld.state;
	ld.state = NULL;
	if (pop3_state_loaded(ld.ret, ld.damaged, &p.state, &ld.err) < 0) {
		*err = ld.err;
		goto out;
	}
	if (acct->delete_when_deleted_locally && journal != NULL) {
		if (fm_journal_replay(journal, collect_delete, &dels, err) < 0)
			goto out;
		if (dels.n > 1)
			qsort(dels.bases, dels.n, sizeof(*dels.bases),
			      cmp_strp);
	}
	size_t cap = p.n ? p.n : 1;
	p.fresh = xcalloc(cap, sizeof(*p.fresh));
	p.req = xcalloc(cap, sizeof(*p.req));
	p.req_whole = xcalloc(cap, sizeof(*p.req_whole));

	/* 1: what is new. */
	int n_new = plan_new(&p, err);
	if (n_new < 0)
		goto out;
	p.total = (size_t)n_new;
	if (pop3_run(p.session, (size_t)n_new, new_send, new_recv, &p, err) <
	        0 ||
	    commit(&p, err) < 0)
		goto out;

	/* 2: headers first: with download = headers every new message is a
	 * stub now, listed with its sender and subject; the bodies come
	 * after all of them. (With max SIZE, big ones stay stubs until they
	 * are opened.) */
	if (acct->download == FM_DOWNLOAD_HEADERS) {
		size_t n_stubs = plan_stubs(&p, err);
		if (n_stubs == SIZE_MAX ||
		    pop3_run(p.session, n_stubs, stub_send, stub_recv, &p,
		             err) < 0)
			goto out;
	}

	/* 3: the deletion policy, for stored messages only. DELE takes
	 * effect at QUIT, which comes after everything is recorded. */
	size_t n_dele = 0;
	bool may_delete = !acct->keep_on_server ||
	                  acct->delete_after_days > 0 ||
	                  acct->delete_when_deleted_locally;
	for (size_t i = 0; may_delete && i < p.n; i++) {
		if (p.msgs[i].uidl == NULL)
			continue;
		const struct fm_state_entry *se =
		    fm_state_find_uidl(p.state, p.msgs[i].uidl);
		if (se != NULL && policy_deletes(&p, &dels, i, se))
			p.req[n_dele++] = i;
	}
	if (pop3_run(p.session, n_dele, dele_send, dele_recv, &p, err) < 0)
		goto out;

	/* Everything stored is recorded before QUIT commits the deletions. */
	if (save_state(&p, true, err) < 0 || pop3_quit(p.session, err) < 0)
		goto out;
	/* QUIT done: the deleted messages are gone from the server. */
	for (size_t i = 0; i < p.n; i++) {
		if (p.msgs[i].deleted) {
			fm_state_remove_uidl(p.state, p.msgs[i].uidl);
			p.changes++;
		}
	}
	/* Entries for messages the server no longer has are history. */
	prune(&p);
	if (save_state(&p, true, err) < 0)
		goto out;
	if (journal != NULL && dels.last_seq > 0 &&
	    fm_journal_ack(journal, dels.last_seq, err) < 0)
		goto out;
	/* What this pass leaves (the DELEd are gone), for the next quick
	 * look; with keys made from headers there is no quick look. */
	if (have_uidl) {
		uint64_t count = 0, octets = 0;
		for (size_t i = 0; i < p.n; i++) {
			if (!p.msgs[i].deleted) {
				count++;
				octets += p.msgs[i].size;
			}
		}
		pop3_seen_digest(acct, p.msgs, p.n, count, octets, digest);
		pop3_seen_write(seen_path, p.state_path, digest, deadline(&p));
	}
	ret = 0;
out:
	loader_finish(&ld);
	fm_state_free(&ld.state);
	pop3_quick_free(&quick);
	free(seen_path);
	if (ret < 0) {
		/* No QUIT after a failure: the server forgets this session's
		 * DELEs, and what was staged but not committed is dropped. */
		fm_pop3_abort(&p.session);
		for (size_t i = 0; i < p.n_staged; i++) {
			free(p.staged[i].uidl);
			free(p.staged[i].base);
		}
		if (p.state != NULL) {
			/* Keep what was stored: the state is worth saving. */
			struct fm_error ignore;
			fm_error_clear(&ignore);
			save_state(&p, true, &ignore);
		}
	}
	free(p.staged);
	fm_pop3_close(&p.session);
	fm_state_free(&p.state);
	pop3_msgs_free(p.msgs, p.n);
	free(p.fresh);
	free(p.req);
	free(p.req_whole);
	fm_buf_free(&p.data);
	for (size_t i = 0; i < dels.n; i++)
		free(dels.bases[i]);
	free(dels.bases);
	free(p.state_path);
	return ret;
}

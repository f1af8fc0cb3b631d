/* SPDX-License-Identifier: GPL-3.0-or-later */
/* One POP3 send/receive pass: list, download what is new, complete header
 * stubs, apply the deletion policy, QUIT. The order of writes is what
 * makes it crash-safe: a message is fsynced in the maildir (tagged with
 * its UIDL and size) before its UIDL enters the sync state, and DELE is
 * sent only for stored messages; POP3 forgets every DELE of a session that
 * ends without QUIT, so a cut link deletes nothing. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "pop3/pop3.h"
#include "store/store.h"
#include "sync/journal.h"
#include "sync/state.h"

#define FOLDER "INBOX"
/* The state keyword of a message stored as headers only. */
#define PARTIAL "fulmar:partial"
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
	bool partial;
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
	const struct fm_pop3_progress *progress;
};

/* The delivery key: the UIDL and the size, so a reused UIDL with another
 * message behind it is another key. */
static char *
key_of(const struct mailpop3_msg_info *m)
{
	return xasprintf("pop3:%s:%u", m->msg_uidl, m->msg_size);
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

static int
server_error(struct pass *p, const char *what, struct fm_error *err)
{
	mailpop3 *pop = fm_pop3_session(p->session);
	char text[256];
	fm_str_printable(pop->pop3_response ? pop->pop3_response : "", text,
	                 sizeof(text));
	return fm_error_set(err, FM_ERR_PROTOCOL,
	                    _("%s refused %s (it said: %s)"), p->acct->host,
	                    what, text);
}

/* Fetches message m whole (RETR) or its header (TOP n 0). */
static int
fetch(struct pass *p, const struct mailpop3_msg_info *m, bool whole,
      char **data_r, size_t *len_r, struct fm_error *err)
{
	mailpop3 *pop = fm_pop3_session(p->session);
	int r = whole ? mailpop3_retr(pop, m->msg_index, data_r, len_r)
	              : mailpop3_top(pop, m->msg_index, 0, data_r, len_r);
	if (r != MAILPOP3_NO_ERROR) {
		if (r == MAILPOP3_ERROR_STREAM)
			return fm_error_set(
			    err, FM_ERR_TEMPORARY,
			    _("the connection to %s broke while "
			      "downloading"),
			    p->acct->host);
		return server_error(p, whole ? "RETR" : "TOP", err);
	}
	p->stats->bytes += *len_r;
	return 0;
}

static bool
wants_whole(const struct fm_account *a, const struct mailpop3_msg_info *m)
{
	switch (a->download) {
	case FM_DOWNLOAD_FULL:
		return true;
	case FM_DOWNLOAD_HEADERS:
		return false;
	case FM_DOWNLOAD_MAX:
		return m->msg_size <= a->download_max;
	}
	return true;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Makes the staged messages durable, then records their UIDLs. */
static int
commit(struct pass *p, struct fm_error *err)
{
	int ret = fm_store_commit(p->store, err);
	for (size_t i = 0; i < p->n_staged; i++) {
		struct staged *st = &p->staged[i];
		if (ret == 0) {
			struct fm_state_entry e = {
			    .uidl = st->uidl,
			    .first_seen = p->now,
			    .base = st->base,
			    .keywords = st->partial ? PARTIAL : NULL,
			};
			if (fm_state_put(p->state, &e, err) < 0)
				ret = -1;
			p->changes++;
			if (st->fresh && p->progress != NULL &&
			    p->progress->stored != NULL)
				p->progress->stored(p->progress->ctx, FOLDER,
				                    st->base);
		}
		free(st->uidl);
		free(st->base);
	}
	p->n_staged = 0;
	p->staged_bytes = 0;
	if (ret < 0)
		return -1;
	return save_state(p, false, err);
}

/* Stores message m (whole, or its headers) unless it is stored already;
 * its UIDL enters the state when its batch is committed. */
static int
download(struct pass *p, const struct mailpop3_msg_info *m,
         struct fm_error *err)
{
	bool whole = wants_whole(p->acct, m);
	char *key = key_of(m);
	/* Stored before, but not in the state (a crash, a lost state file):
	 * the tag in its file name says so. Record it; fetch nothing. */
	char *have = fm_store_find_key(p->store, p->acct->name, FOLDER, key);
	if (have != NULL) {
		free(key);
		p->staged = xreallocarray(p->staged, p->n_staged + 1,
		                          sizeof(*p->staged));
		p->staged[p->n_staged++] =
		    (struct staged){.uidl = xstrdup(m->msg_uidl),
		                    .base = have,
		                    .partial = false};
		return 0;
	}
	char *data = NULL;
	size_t len = 0;
	if (fetch(p, m, whole, &data, &len, err) < 0) {
		free(key);
		return -1;
	}
	char *base = NULL;
	int r = fm_store_deliver_staged(p->store, p->acct->name, FOLDER, key,
	                                data, len, 0, &base, err);
	free(key);
	if (whole)
		mailpop3_retr_free(data);
	else
		mailpop3_top_free(data);
	if (r < 0)
		return -1;
	p->staged =
	    xreallocarray(p->staged, p->n_staged + 1, sizeof(*p->staged));
	p->staged[p->n_staged++] = (struct staged){.uidl = xstrdup(m->msg_uidl),
	                                           .base = base,
	                                           .partial = !whole,
	                                           .fresh = true};
	p->staged_bytes += len;
	p->stats->downloaded++;
	if (p->n_staged >= BATCH_MESSAGES || p->staged_bytes >= BATCH_BYTES)
		return commit(p, err);
	return 0;
}

/* Replaces the header stub of an entry with the whole message. */
static int
complete(struct pass *p, const struct mailpop3_msg_info *m,
         const struct fm_state_entry *se, struct fm_error *err)
{
	char *data = NULL;
	size_t len = 0;
	if (fetch(p, m, true, &data, &len, err) < 0)
		return -1;
	int r = fm_store_replace(p->store, p->acct->name, FOLDER, se->base,
	                         data, len, err);
	mailpop3_retr_free(data);
	if (r < 0)
		return -1;
	struct fm_state_entry e = *se;
	e.keywords = NULL;
	if (fm_state_put(p->state, &e, err) < 0)
		return -1;
	p->changes++;
	p->stats->completed++;
	return save_state(p, false, err);
}

/* The journal's DELETE records for INBOX, for delete_when_deleted_locally;
 * every record is acknowledged after a good QUIT (a POP3 server has no
 * flags or folders to give the others to). */
struct local_deletes {
	char **bases;
	size_t n;
	uint64_t last_seq;
};

static int
collect_delete(void *ctx, const struct fm_journal_record *r,
               struct fm_error *err)
{
	struct local_deletes *d = ctx;
	d->last_seq = r->seq;
	if (r->op == FM_JOURNAL_DELETE && strcmp(r->folder, FOLDER) == 0) {
		d->bases = xreallocarray(d->bases, d->n + 1, sizeof(*d->bases));
		d->bases[d->n++] = xstrdup(r->base);
	}
	return 0;
}

static bool
deleted_locally(const struct local_deletes *d, const char *base)
{
	for (size_t i = 0; base != NULL && i < d->n; i++)
		if (strcmp(d->bases[i], base) == 0)
			return true;
	return false;
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
	struct mailpop3_msg_info *msgs = NULL;
	size_t n = 0;
	char *dir =
	    fm_store_folder_dir(fm_store_data_dir(store), acct->name, FOLDER);
	p.state_path = fm_path_join(dir, ".fulmar-state");
	free(dir);
	int ret = -1;
	bool damaged = false;
	/* The folder must exist for its state file. */
	if (fm_store_ensure_folder(store, acct->name, FOLDER, err) < 0)
		goto out;
	if (fm_state_load(p.state_path, FM_STATE_POP3, &p.state, &damaged,
	                  err) < 0) {
		if (!damaged)
			goto out;
		/* The UIDL list is lost; the tags in the file names still
		 * say what was downloaded, so nothing comes twice. */
		fm_log_warn("%s", err->user);
		fm_error_clear(err);
		p.state = fm_state_new(FM_STATE_POP3);
	}
	struct fm_journal *journal = fm_store_journal(store, acct->name);
	if (acct->delete_when_deleted_locally && journal != NULL &&
	    fm_journal_replay(journal, collect_delete, &dels, err) < 0)
		goto out;

	if (fm_pop3_open(acct, o, &p.session, err) < 0)
		goto out;
	mailpop3 *pop = fm_pop3_session(p.session);
	carray *list = NULL;
	if (mailpop3_list(pop, &list) != MAILPOP3_NO_ERROR) {
		server_error(&p, "LIST", err);
		goto out;
	}
	/* Our own copy: libetpan frees its list at QUIT. */
	n = carray_count(list);
	msgs = xcalloc(n ? n : 1, sizeof(*msgs));
	for (size_t i = 0; i < n; i++) {
		const struct mailpop3_msg_info *m =
		    carray_get(list, (unsigned)i);
		msgs[i] = *m;
		msgs[i].msg_uidl = m->msg_uidl ? xstrdup(m->msg_uidl) : NULL;
	}
	stats->on_server = n;
	/* What to fetch: new messages, and stubs to complete when the
	 * account wants bodies in the background. */
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		const struct mailpop3_msg_info *m = &msgs[i];
		if (m->msg_uidl == NULL) {
			fm_error_set(err, FM_ERR_PERMANENT,
			             _("%s does not support UIDL, so fulmar "
			               "cannot tell which messages it already "
			               "has; ask the provider, or use IMAP"),
			             acct->host);
			goto out;
		}
		if (fm_state_find_uidl(p.state, m->msg_uidl) == NULL)
			total++;
	}
	size_t done = 0;
	for (size_t i = 0; i < n; i++) {
		struct mailpop3_msg_info *m = &msgs[i];
		const struct fm_state_entry *se =
		    fm_state_find_uidl(p.state, m->msg_uidl);
		if (se != NULL && se->base != NULL) {
			/* A UIDL reused by the server for another message
			 * (another size) is a new message. */
			struct fm_store_info li;
			int have = fm_store_lookup(store, acct->name, FOLDER,
			                           se->base, &li, err);
			if (have < 0)
				goto out;
			bool partial = se->keywords != NULL &&
			               strcmp(se->keywords, PARTIAL) == 0;
			if (have == 1 && !partial && li.size != m->msg_size) {
				fm_log_warn("%s reuses the UIDL %s for another "
				            "message; downloading it as new",
				            acct->host, m->msg_uidl);
				fm_state_remove_uidl(p.state, m->msg_uidl);
				se = NULL;
				total++;
			} else if (have == 1 && partial &&
			           acct->download == FM_DOWNLOAD_HEADERS) {
				if (complete(&p, m, se, err) < 0) {
					free(li.file);
					goto out;
				}
			}
			free(li.file);
		}
		bool fresh = se == NULL;
		if (fresh) {
			if (download(&p, m, err) < 0)
				goto out;
			done++;
			if (progress != NULL && progress->fn != NULL)
				progress->fn(progress->ctx, done, total,
				             stats->bytes);
		}
		/* The deletion policy, for stored messages only. A message
		 * staged in this pass counts: DELE takes effect at QUIT, and
		 * QUIT comes only after its batch is committed. */
		se = fm_state_find_uidl(p.state, m->msg_uidl);
		if (se == NULL && !fresh)
			continue;
		bool dele =
		    fresh
		        ? !acct->keep_on_server
		        : !acct->keep_on_server ||
		              (acct->delete_after_days > 0 &&
		               now - se->first_seen >=
		                   (int64_t)acct->delete_after_days * 86400) ||
		              (acct->delete_when_deleted_locally &&
		               deleted_locally(&dels, se->base));
		if (dele) {
			if (mailpop3_dele(pop, m->msg_index) !=
			    MAILPOP3_NO_ERROR) {
				server_error(&p, "DELE", err);
				goto out;
			}
			/* Ours to track: libetpan's list dies at QUIT. */
			m->msg_deleted = 1;
			stats->deleted++;
		}
	}
	if (commit(&p, err) < 0)
		goto out;
	/* Headers first: with download = headers every new message is a
	 * stub now, listed with its sender and subject; the bodies come
	 * after all of them. (With max SIZE, big ones stay stubs until
	 * they are opened.) */
	if (acct->download == FM_DOWNLOAD_HEADERS) {
		for (size_t i = 0; i < n; i++) {
			const struct fm_state_entry *se =
			    fm_state_find_uidl(p.state, msgs[i].msg_uidl);
			if (se != NULL && se->base != NULL &&
			    !msgs[i].msg_deleted && se->keywords != NULL &&
			    strcmp(se->keywords, PARTIAL) == 0 &&
			    complete(&p, &msgs[i], se, err) < 0)
				goto out;
		}
	}
	/* Everything stored is recorded before QUIT commits the deletions. */
	if (save_state(&p, true, err) < 0)
		goto out;
	if (mailpop3_quit(pop) != MAILPOP3_NO_ERROR) {
		fm_error_set(err, FM_ERR_TEMPORARY,
		             _("%s did not confirm the end of the session; "
		               "messages marked for deletion stay on the "
		               "server until the next pass"),
		             acct->host);
		goto out;
	}
	/* QUIT done: the deleted messages are gone from the server. */
	if (stats->deleted > 0) {
		for (size_t i = 0; i < n; i++) {
			const struct mailpop3_msg_info *m = &msgs[i];
			if (m->msg_deleted)
				fm_state_remove_uidl(p.state, m->msg_uidl);
		}
		p.changes++;
	}
	/* Entries for messages the server no longer has are history. */
	const char **listed_v = xcalloc(n ? n : 1, sizeof(*listed_v));
	size_t n_listed = 0;
	for (size_t k = 0; k < n; k++)
		if (!msgs[k].msg_deleted)
			listed_v[n_listed++] = msgs[k].msg_uidl;
	qsort(listed_v, n_listed, sizeof(*listed_v), cmp_str);
	for (size_t i = fm_state_count(p.state); i > 0; i--) {
		const struct fm_state_entry *se =
		    fm_state_entry_at(p.state, i - 1);
		bool listed = bsearch(&se->uidl, listed_v, n_listed,
		                      sizeof(*listed_v), cmp_str) != NULL;
		if (!listed) {
			char *uidl = xstrdup(se->uidl);
			fm_state_remove_uidl(p.state, uidl);
			free(uidl);
			p.changes++;
		}
	}
	free(listed_v);
	if (save_state(&p, true, err) < 0)
		goto out;
	if (journal != NULL && dels.last_seq > 0 &&
	    fm_journal_ack(journal, dels.last_seq, err) < 0)
		goto out;
	ret = 0;
out:
	if (ret < 0) {
		/* No QUIT after a failure: the server forgets this session's
		 * DELEs. */
		fm_pop3_abort(&p.session);
		/* What was downloaded before the failure (or a cancel) is
		 * kept: committed and recorded, while the server keeps it
		 * too (no QUIT, no DELE). Left staged, it would linger in
		 * the store's summary without its file. */
		if (p.state != NULL && p.n_staged > 0) {
			struct fm_error ignore;
			fm_error_clear(&ignore);
			if (commit(&p, &ignore) < 0)
				fm_log_warn("%s", ignore.user);
		}
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
	for (size_t i = 0; i < n; i++)
		free(msgs[i].msg_uidl);
	free(msgs);
	for (size_t i = 0; i < dels.n; i++)
		free(dels.bases[i]);
	free(dels.bases);
	free(p.state_path);
	return ret;
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The store's single writer. Every change is journaled (fsync) first and
 * then applied to the maildir; at open, journal records not yet confirmed
 * by the server are applied again, idempotently, so a crash between the
 * two steps loses nothing and applies nothing twice. Downloads carry a tag
 * in their file name so a crash between delivery and bookkeeping cannot
 * fetch a message twice. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "log/log.h"
#include "store/index.h"
#include "store/lock.h"
#include "store/maildir.h"
#include "store/store_int.h"
#include "sync/journal.h"

static struct account *
find_account(struct fm_store *s, const char *name, struct fm_error *err)
{
	for (size_t i = 0; i < s->n_accounts; i++)
		if (strcmp(s->accounts[i].name, name) == 0)
			return &s->accounts[i];
	fm_error_set(err, FM_ERR_USAGE, _("there is no account named %s"),
	             name);
	return NULL;
}

/* The tags index: every download is looked up by its tag before it is
 * fetched, so this is a hash (open addressing), not a scan. */
#define TAG_GONE UINT32_MAX

static uint64_t
tag_hash(const char *tag, size_t len)
{
	return fm_hash_mem(tag, len);
}

/* The slot holding tag (len bytes), or SIZE_MAX. */
static size_t
tag_slot(const struct folder *f, const char *tag, size_t len)
{
	if (f->tag_nslots == 0)
		return SIZE_MAX;
	size_t mask = f->tag_nslots - 1;
	for (size_t k = tag_hash(tag, len) & mask;; k = (k + 1) & mask) {
		uint32_t v = f->tag_slots[k];
		if (v == 0)
			return SIZE_MAX;
		if (v != TAG_GONE &&
		    strncmp(f->tag_keys[v - 1], tag, len) == 0 &&
		    f->tag_keys[v - 1][len] == '\0')
			return k;
	}
}

static void
tag_slots_rebuild(struct folder *f)
{
	size_t n = 64;
	while (n < 2 * (f->tag_n + 1))
		n *= 2;
	free(f->tag_slots);
	f->tag_slots = xcalloc(n, sizeof(*f->tag_slots));
	f->tag_nslots = n;
	f->tag_used = f->tag_n;
	for (size_t i = 0; i < f->tag_n; i++) {
		const char *t = f->tag_keys[i];
		size_t k = tag_hash(t, strlen(t)) & (n - 1);
		while (f->tag_slots[k] != 0)
			k = (k + 1) & (n - 1);
		f->tag_slots[k] = (uint32_t)i + 1;
	}
}

static void
tags_add(struct folder *f, const char *base)
{
	size_t tl;
	const char *tag = fm_maildir_base_tag(base, &tl);
	if (tag == NULL || tag_slot(f, tag, tl) != SIZE_MAX)
		return;
	if (f->tag_n == f->tag_cap) {
		f->tag_cap = f->tag_cap ? 2 * f->tag_cap : 64;
		f->tag_keys = xreallocarray(f->tag_keys, f->tag_cap,
		                            sizeof(*f->tag_keys));
		f->tag_bases = xreallocarray(f->tag_bases, f->tag_cap,
		                             sizeof(*f->tag_bases));
	}
	f->tag_keys[f->tag_n] = xstrndup(tag, tl);
	f->tag_bases[f->tag_n] = xstrdup(base);
	f->tag_n++;
	if (2 * (f->tag_used + 1) > f->tag_nslots) {
		tag_slots_rebuild(f);
		return;
	}
	size_t mask = f->tag_nslots - 1;
	size_t k = tag_hash(tag, tl) & mask;
	while (f->tag_slots[k] != 0 && f->tag_slots[k] != TAG_GONE)
		k = (k + 1) & mask;
	if (f->tag_slots[k] == 0)
		f->tag_used++;
	f->tag_slots[k] = (uint32_t)f->tag_n;
}

static void
tags_remove(struct folder *f, const char *base)
{
	size_t tl;
	const char *tag = fm_maildir_base_tag(base, &tl);
	size_t k = tag != NULL ? tag_slot(f, tag, tl) : SIZE_MAX;
	if (k == SIZE_MAX)
		return;
	size_t i = f->tag_slots[k] - 1;
	f->tag_slots[k] = TAG_GONE;
	free(f->tag_keys[i]);
	free(f->tag_bases[i]);
	f->tag_n--;
	if (i != f->tag_n) {
		/* The last entry fills the hole: repoint its slot. */
		f->tag_keys[i] = f->tag_keys[f->tag_n];
		f->tag_bases[i] = f->tag_bases[f->tag_n];
		const char *t = f->tag_keys[i];
		f->tag_slots[tag_slot(f, t, strlen(t))] = (uint32_t)i + 1;
	}
}

static const char *
tags_find(const struct folder *f, const char *tag)
{
	size_t k = tag_slot(f, tag, strlen(tag));
	return k == SIZE_MAX ? NULL : f->tag_bases[f->tag_slots[k] - 1];
}

/* Forgets the changes kept for a folder without its summary. */
static void
changes_clear(struct folder *f)
{
	for (size_t i = 0; i < f->n_changes; i++)
		fm_summary_change_free(&f->changes[i]);
	free(f->changes);
	f->changes = NULL;
	f->n_changes = 0;
}

void
store_folder_free(struct folder *f)
{
	changes_clear(f);
	fm_maildir_batch_free(&f->batch);
	store_strv_free(f->staged, f->n_staged);
	fm_summary_free(&f->sum);
	store_strv_free(f->tag_keys, f->tag_n);
	store_strv_free(f->tag_bases, f->tag_n);
	free(f->tag_slots);
	free(f->indexed_id);
	free(f->name);
	free(f->dir);
	free(f);
}

/* Reads a folder's summary: the maildir as it is now, then the changes
 * made without the summary since (those of staged deliveries are not in
 * the maildir yet); and its tags. */
static int
materialize(struct folder *f, struct fm_error *err)
{
	bool changed;
	if (store_summary_open(f->dir, &f->sum, &changed, err) < 0)
		return -1;
	fm_summary_apply(f->sum, f->changes, f->n_changes);
	for (size_t i = 0; i < fm_summary_count(f->sum); i++)
		tags_add(f, fm_summary_at(f->sum, i)->base);
	f->dirty = changed || f->n_changes > 0;
	changes_clear(f);
	f->lazy = false;
	return 0;
}

static struct folder *
folder_new(const char *name, char *dir)
{
	struct folder *f = xcalloc(1, sizeof(*f));
	f->name = xstrdup(name);
	f->dir = dir;
	return f;
}

static void
folder_attach(struct account *a, struct folder *f)
{
	a->folders =
	    xreallocarray(a->folders, a->n_folders + 1, sizeof(*a->folders));
	a->folders[a->n_folders++] = f;
}

/* The folder as this store has it (loaded or lazy), or NULL. */
struct folder *
store_folder_find(const struct account *a, const char *name)
{
	for (size_t i = 0; i < a->n_folders; i++)
		if (strcmp(a->folders[i]->name, name) == 0)
			return a->folders[i];
	return NULL;
}

/* The folder, loaded (and created when create). NULL with err set. */
struct folder *
store_get_folder(struct account *a, const char *name, bool create,
                 struct fm_error *err)
{
	struct folder *f = store_folder_find(a, name);
	if (f != NULL)
		return !f->lazy || materialize(f, err) == 0 ? f : NULL;
	if (name[0] == '\0' || name[0] == '.' || strstr(name, "..") != NULL ||
	    name[0] == '/') {
		fm_error_set(err, FM_ERR_USAGE, _("invalid folder name %s"),
		             name);
		return NULL;
	}
	char *dir = fm_path_join(a->dir, name);
	if (create) {
		if (fm_maildir_create(dir, err) < 0) {
			free(dir);
			return NULL;
		}
	} else if (access(dir, F_OK) < 0) {
		fm_error_set(err, FM_ERR_USAGE,
		             _("account %s has no folder %s"), a->name, name);
		free(dir);
		return NULL;
	}
	f = folder_new(name, dir);
	if (materialize(f, err) < 0) {
		store_folder_free(f);
		return NULL;
	}
	folder_attach(a, f);
	return f;
}

/* The folder as it is: loaded, or worked on without its summary. */
static struct folder *
get_folder_any(struct account *a, const char *name, bool create,
               struct fm_error *err)
{
	struct folder *f = store_folder_find(a, name);
	return f != NULL ? f : store_get_folder(a, name, create, err);
}

/* Notes a change to a folder without its summary. */
static void
lazy_change(struct folder *f, enum fm_summary_change_kind kind,
            const struct fm_summary_entry *e)
{
	f->changes =
	    xreallocarray(f->changes, f->n_changes + 1, sizeof(*f->changes));
	fm_summary_change_init(&f->changes[f->n_changes++], kind, e);
}

/* Forgets the delivery of base (staged, never committed). */
static void
forget_staged(struct folder *f, const char *base)
{
	if (!f->lazy) {
		tags_remove(f, base);
		fm_summary_remove(f->sum, base);
		return;
	}
	for (size_t i = f->n_changes; i-- > 0;)
		if (f->changes[i].kind == FM_SUMMARY_PUT &&
		    strcmp(f->changes[i].e.base, base) == 0) {
			fm_summary_change_free(&f->changes[i]);
			memmove(&f->changes[i], &f->changes[i + 1],
			        (f->n_changes - i - 1) * sizeof(*f->changes));
			f->n_changes--;
			break;
		}
}

/* ------------------------------------------------------------------------
 * Journal replay at open: user changes not yet confirmed by the server are
 * applied to the maildir again, idempotently.
 */

struct replay_ctx {
	struct fm_store *s;
	struct account *a;
};

static int apply_flags(struct fm_store *s, struct folder *f, const char *base,
                       uint32_t add, uint32_t del, bool defer,
                       struct fm_error *err);
static int apply_move(struct fm_store *s, struct account *a, struct folder *f,
                      const char *base, const char *to, struct fm_error *err);
static int apply_delete(struct fm_store *s, struct account *a, struct folder *f,
                        const char *base, struct fm_error *err);

static int
replay_one(void *ctx, const struct fm_journal_record *r, struct fm_error *err)
{
	struct replay_ctx *c = ctx;
	struct fm_error ignore;
	fm_error_clear(&ignore);
	struct folder *f = store_get_folder(c->a, r->folder, false, &ignore);
	if (f == NULL || fm_summary_find(f->sum, r->base) == NULL)
		return 0; /* already moved or deleted: nothing to redo */
	switch (r->op) {
	case FM_JOURNAL_FLAGS:
		return apply_flags(c->s, f, r->base, r->flags_add, r->flags_del,
		                   false, err);
	case FM_JOURNAL_MOVE:
		return apply_move(c->s, c->a, f, r->base, r->to_folder, err);
	case FM_JOURNAL_DELETE:
		return apply_delete(c->s, c->a, f, r->base, err);
	case FM_JOURNAL_NEW:
		break;
	}
	return 0;
}

struct wait_ctx {
	const struct fm_store_opts *o;
	const char *account;
};

static void
lock_waiting(void *ctx, pid_t holder)
{
	const struct wait_ctx *wc = ctx;
	if (wc->o->on_wait != NULL)
		wc->o->on_wait(wc->o->ctx, wc->account, holder);
}

static int
open_account(struct fm_store *s, struct account *a, const char *name,
             const struct fm_store_opts *o, struct fm_error *err)
{
	a->name = xstrdup(name);
	a->dir = xasprintf("%s/%s", s->mail_root, name);
	char *meta = fm_path_join(a->dir, STORE_ACCOUNT_DIR);
	char *lock = fm_path_join(meta, "lock");
	char *journal = fm_path_join(meta, "journal");
	char *outbox = fm_path_join(a->dir, FM_STORE_OUTBOX);
	int ret = -1;
	if (fm_path_mkdirs(meta, 0700, err) < 0 ||
	    fm_maildir_create(outbox, err) < 0)
		goto out;
	struct wait_ctx wc = {o, name};
	if (fm_lock_take(lock, o->wait_for_lock, lock_waiting, &wc, &a->lock,
	                 err) < 0)
		goto out;
	if (fm_journal_open(journal, &a->journal, err) < 0)
		goto out;
	struct replay_ctx rc = {s, a};
	ret = fm_journal_replay(a->journal, replay_one, &rc, err);
out:
	free(meta);
	free(lock);
	free(journal);
	free(outbox);
	return ret;
}

int
fm_store_open(const struct fm_store_opts *o, struct fm_store **store_r,
              struct fm_error *err)
{
	*store_r = NULL;
	struct fm_store *s = xcalloc(1, sizeof(*s));
	s->ahead_fd = -1;
	s->data_dir =
	    o->data_dir != NULL ? xstrdup(o->data_dir) : fm_path_data_dir();
	s->mail_root = fm_store_mail_root(s->data_dir);
	if (fm_path_mkdirs(s->mail_root, 0700, err) < 0)
		goto fail;
	s->accounts = xcalloc(o->cfg->n_accounts + 1, sizeof(*s->accounts));
	for (size_t i = 0; i < o->cfg->n_accounts; i++) {
		s->n_accounts++;
		if (open_account(s, &s->accounts[i], o->cfg->accounts[i].name,
		                 o, err) < 0)
			goto fail;
	}
	if (o->index) {
		char *db = fm_store_index_dir(s->data_dir);
		int r = fm_path_mkdirs(db, 0700, err) < 0
		            ? -1
		            : fm_index_writer_open(db, s->mail_root, &s->index,
		                                   err);
		free(db);
		if (r < 0 && o->index_required)
			goto fail;
		if (r < 0) {
			/* The index is derived: mail still comes and goes
			 * without it, and a later open catches it up. */
			fm_log_warn("%s", err->user);
			fm_error_clear(err);
			s->index = NULL;
		}
	}
	*store_r = s;
	return 0;
fail:
	fm_store_close(&s);
	return -1;
}

/* Drops what was staged and never committed: its tmp files, and its
 * summary entries and tags, which would otherwise make the message look
 * delivered when its file was never renamed into place. */
static void
rollback_staged(struct folder *f)
{
	if (f->n_staged == 0)
		return;
	for (size_t j = 0; j < f->n_staged; j++)
		forget_staged(f, f->staged[j]);
	fm_maildir_batch_free(&f->batch);
	store_strv_free(f->staged, f->n_staged);
	f->staged = NULL;
	f->n_staged = 0;
	f->dirty = true;
}

int
fm_store_flush(struct fm_store *s, struct fm_error *err)
{
	int ret = 0;
	for (size_t i = 0; i < s->n_accounts; i++) {
		struct account *a = &s->accounts[i];
		for (size_t k = 0; k < a->n_folders; k++) {
			struct folder *f = a->folders[k];
			rollback_staged(f);
			if (fm_maildir_sync_dirs(f->dir, &f->unsynced, err) < 0)
				ret = -1;
			if (f->lazy) {
				/* Appended as they are, unless a new summary
				 * is due: then it is read and written. */
				char *path =
				    fm_path_join(f->dir, STORE_SUMMARY_FILE);
				int r = fm_summary_append(path, f->changes,
				                          f->n_changes, err);
				free(path);
				if (r < 0 ||
				    (r == 0 && materialize(f, err) < 0)) {
					ret = -1;
					continue;
				}
				if (r == 1) {
					changes_clear(f);
					continue;
				}
			}
			if (!f->dirty) {
				store_note_indexed(s, f);
				continue;
			}
			/* Our own writes changed cur/ and new/: look again
			 * (a listing; nothing known is read) so the saved
			 * stamps match and the next open reads no directory. */
			struct store_parser sp;
			bool changed;
			store_parser_init(&sp);
			int r = fm_summary_rescan(f->sum, f->dir, false,
			                          store_parse_file, &sp,
			                          &changed, err);
			store_parser_done(&sp);
			if (r < 0) {
				ret = -1;
				continue;
			}
			char *path = fm_path_join(f->dir, STORE_SUMMARY_FILE);
			if (fm_summary_save(f->sum, path, err) < 0) {
				ret = -1;
			} else {
				f->dirty = false;
				store_note_indexed(s, f);
			}
			free(path);
		}
	}
	return ret;
}

static void *
write_ahead(void *arg)
{
	(void)syncfs(*(const int *)arg);
	return NULL;
}

void
fm_store_write_ahead(struct fm_store *s)
{
	if (s->ahead_fd >= 0)
		return;
	s->ahead_fd = open(s->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->ahead_fd >= 0 &&
	    pthread_create(&s->ahead, NULL, write_ahead, &s->ahead_fd) != 0) {
		close(s->ahead_fd);
		s->ahead_fd = -1;
	}
}

static void
ahead_wait(struct fm_store *s)
{
	if (s->ahead_fd < 0)
		return;
	pthread_join(s->ahead, NULL);
	close(s->ahead_fd);
	s->ahead_fd = -1;
}

void
fm_store_close(struct fm_store **sp)
{
	struct fm_store *s = *sp;
	if (s == NULL)
		return;
	struct fm_error err;
	fm_error_clear(&err);
	ahead_wait(s);
	if (fm_store_flush(s, &err) < 0)
		fm_log_error("%s", err.user);
	for (size_t i = 0; i < s->n_accounts; i++) {
		struct account *a = &s->accounts[i];
		for (size_t k = 0; k < a->n_folders; k++)
			store_folder_free(a->folders[k]);
		free(a->folders);
		fm_journal_close(&a->journal);
		fm_lock_release(&a->lock);
		free(a->name);
		free(a->dir);
	}
	free(s->accounts);
	fm_index_writer_free(&s->index);
	store_strv_free(s->forget, s->n_forget);
	free(s->data_dir);
	free(s->mail_root);
	free(s);
	*sp = NULL;
}

struct fm_journal *
fm_store_journal(struct fm_store *s, const char *account)
{
	struct fm_error err;
	struct account *a = find_account(s, account, &err);
	return a != NULL ? a->journal : NULL;
}

/* ------------------------------------------------------------------------
 * Delivery.
 */

/* The tag for key in ACCOUNT/FOLDER: 128 bits of SHA-256, in hex. */
static void
make_tag(const char *account, const char *folder, const char *key, char tag[33])
{
	char *text = xasprintf("%s\n%s\n%s", account, folder, key);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL);
	free(text);
	for (int i = 0; i < 16; i++)
		snprintf(tag + 2 * i, 3, "%02x", md[i]);
}

void
fm_store_key_tag(const char *account, const char *folder, const char *key,
                 char tag[33])
{
	make_tag(account, folder, key, tag);
}

char *
fm_store_find_key(struct fm_store *s, const char *account, const char *folder,
                  const char *key)
{
	struct fm_error err;
	struct account *a = find_account(s, account, &err);
	struct folder *f =
	    a != NULL ? store_get_folder(a, folder, false, &err) : NULL;
	if (f == NULL)
		return NULL;
	char tag[33];
	make_tag(account, folder, key, tag);
	const char *base = tags_find(f, tag);
	return base != NULL ? xstrdup(base) : NULL;
}

static int
deliver(struct fm_store *s, const char *account, const char *folder,
        const char *key, const void *data, size_t len, uint32_t flags,
        bool staged, char **base_r, struct fm_error *err)
{
	if (base_r != NULL)
		*base_r = NULL;
	struct account *a = find_account(s, account, err);
	struct folder *f =
	    a != NULL ? get_folder_any(a, folder, true, err) : NULL;
	if (f == NULL)
		return -1;
	char tag[33];
	if (key != NULL) {
		make_tag(account, folder, key, tag);
		/* Without the summary, the caller vouches there is none. */
		const char *have = f->lazy ? NULL : tags_find(f, tag);
		if (have != NULL) {
			if (base_r != NULL)
				*base_r = xstrdup(have);
			return 0;
		}
	}
	char *rel = NULL;
	int r;
	if (staged) {
		if (f->batch == NULL)
			f->batch = fm_maildir_batch_new(f->dir);
		r = fm_maildir_batch_add(f->batch, key != NULL ? tag : NULL,
		                         data, len, flags != 0, flags, &rel,
		                         err);
	} else if (key != NULL) {
		r = fm_maildir_deliver_tagged(f->dir, tag, data, len,
		                              flags != 0, flags, &rel, err);
	} else {
		r = flags != 0
		        ? fm_maildir_deliver_cur(f->dir, data, len, flags, &rel,
		                                 err)
		        : fm_maildir_deliver(f->dir, data, len, &rel, err);
	}
	if (r < 0)
		return -1;
	size_t bl;
	const char *b = fm_maildir_base(rel + 4, &bl);
	char *base = xstrndup(b, bl);
	struct store_parser p;
	store_parser_init(&p);
	struct fm_envelope *env = NULL;
	fm_mime_envelope_parse(data, len, &env, NULL);
	struct fm_summary_entry e = {0};
	store_entry_from_envelope(&p, env, &e);
	e.base = base;
	e.file = rel;
	e.flags = flags;
	if (f->lazy) {
		lazy_change(f, FM_SUMMARY_PUT, &e);
	} else {
		fm_summary_put(f->sum, &e);
		tags_add(f, base);
		f->dirty = true;
	}
	fm_envelope_free(&env);
	store_parser_done(&p);
	if (staged) {
		f->staged = xreallocarray(f->staged, f->n_staged + 1,
		                          sizeof(*f->staged));
		f->staged[f->n_staged++] = xstrdup(base);
	}
	free(rel);
	if (base_r != NULL)
		*base_r = base;
	else
		free(base);
	return 0;
}

int
fm_store_deliver(struct fm_store *s, const char *account, const char *folder,
                 const char *key, const void *data, size_t len, uint32_t flags,
                 char **base_r, struct fm_error *err)
{
	return deliver(s, account, folder, key, data, len, flags, false, base_r,
	               err);
}

int
fm_store_deliver_staged(struct fm_store *s, const char *account,
                        const char *folder, const char *key, const void *data,
                        size_t len, uint32_t flags, char **base_r,
                        struct fm_error *err)
{
	return deliver(s, account, folder, key, data, len, flags, true, base_r,
	               err);
}

/* One syncfs(2) for each file system that holds staged messages, not
 * one per folder: true if all went well (else each batch flushes, and
 * says what failed). */
static bool
flush_staged(struct fm_store *s)
{
	dev_t done[8];
	size_t n_done = 0;
	bool ok = true;
	for (size_t i = 0; i < s->n_accounts && ok; i++) {
		struct account *a = &s->accounts[i];
		for (size_t k = 0; k < a->n_folders && ok; k++) {
			struct folder *f = a->folders[k];
			if (f->n_staged == 0)
				continue;
			int fd =
			    open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			struct stat st;
			ok = fd >= 0 && fstat(fd, &st) == 0;
			bool seen = false;
			for (size_t j = 0; ok && j < n_done && !seen; j++)
				seen = done[j] == st.st_dev;
			if (ok && !seen) {
				ok = syncfs(fd) == 0;
				if (ok && n_done < FM_ARRAY_LEN(done))
					done[n_done++] = st.st_dev;
			}
			if (fd >= 0)
				close(fd);
		}
	}
	return ok;
}

int
fm_store_commit(struct fm_store *s, struct fm_error *err)
{
	int ret = 0;
	/* What it wrote is on disk or on its way: this flush waits less. */
	ahead_wait(s);
	bool flushed = flush_staged(s);
	for (size_t i = 0; i < s->n_accounts; i++) {
		struct account *a = &s->accounts[i];
		for (size_t k = 0; k < a->n_folders; k++) {
			struct folder *f = a->folders[k];
			if (fm_maildir_sync_dirs(f->dir, &f->unsynced, err) < 0)
				ret = -1;
			if (f->n_staged == 0)
				continue;
			if (fm_maildir_batch_commit(f->batch, flushed, err) <
			    0) {
				/* Nothing staged survived: forget it all. */
				for (size_t j = 0; j < f->n_staged; j++)
					forget_staged(f, f->staged[j]);
				ret = -1;
			}
			store_strv_free(f->staged, f->n_staged);
			f->staged = NULL;
			f->n_staged = 0;
		}
	}
	return ret;
}

static void forget_indexed(struct fm_store *s, struct account *a,
                           struct folder *f, const struct fm_summary_entry *e);
static int no_message(const struct folder *f, const char *base,
                      struct fm_error *err);
static int locate(struct fm_store *s, const char *account, const char *folder,
                  const char *base, struct account **a_r, struct folder **f_r,
                  const struct fm_summary_entry **e_r, struct fm_error *err);

int
fm_store_ensure_folder(struct fm_store *s, const char *account,
                       const char *folder, struct fm_error *err)
{
	struct account *a = find_account(s, account, err);
	return a != NULL && store_get_folder(a, folder, true, err) != NULL ? 0
	                                                                   : -1;
}

const char *
fm_store_data_dir(const struct fm_store *s)
{
	return s->data_dir;
}

int
fm_store_lookup(struct fm_store *s, const char *account, const char *folder,
                const char *base, struct fm_store_info *info_r,
                struct fm_error *err)
{
	memset(info_r, 0, sizeof(*info_r));
	struct account *a = find_account(s, account, err);
	struct folder *f =
	    a != NULL ? get_folder_any(a, folder, true, err) : NULL;
	if (f == NULL)
		return -1;
	const struct fm_summary_entry *e = NULL;
	/* A message delivered without the summary: its whole entry is the
	 * last change to it. */
	for (size_t i = f->lazy ? f->n_changes : 0; i-- > 0;)
		if (strcmp(f->changes[i].e.base, base) == 0) {
			if (f->changes[i].kind == FM_SUMMARY_PUT)
				e = &f->changes[i].e;
			break;
		}
	if (e == NULL && f->lazy && materialize(f, err) < 0)
		return -1;
	if (e == NULL)
		e = fm_summary_find(f->sum, base);
	if (e == NULL)
		return 0;
	info_r->file = xstrdup(e->file);
	info_r->flags = e->flags;
	info_r->size = e->size;
	return 1;
}

int
fm_store_replace(struct fm_store *s, const char *account, const char *folder,
                 const char *base, const void *data, size_t len,
                 struct fm_error *err)
{
	struct account *a;
	struct folder *f;
	const struct fm_summary_entry *e;
	if (locate(s, account, folder, base, &a, &f, &e, err) < 0)
		return -1;
	char *rel = NULL;
	if (fm_maildir_replace(f->dir, e->file, data, len, &rel, err) < 0)
		return -1;
	struct store_parser p;
	store_parser_init(&p);
	struct fm_envelope *env = NULL;
	fm_mime_envelope_parse(data, len, &env, NULL);
	struct fm_summary_entry ne = {0};
	store_entry_from_envelope(&p, env, &ne);
	ne.base = base;
	ne.file = rel;
	ne.flags = e->flags;
	ne.indexed = NULL; /* the index must read the whole message */
	forget_indexed(s, a, f, e);
	fm_summary_put(f->sum, &ne);
	fm_envelope_free(&env);
	store_parser_done(&p);
	f->dirty = true;
	free(rel);
	return 0;
}

/* ------------------------------------------------------------------------
 * User actions.
 */

static int
no_message(const struct folder *f, const char *base, struct fm_error *err)
{
	return fm_error_set(err, FM_ERR_USAGE,
	                    _("there is no message %s in %s"), base, f->name);
}

/* The account, folder and summary entry of ACCOUNT/FOLDER/BASE; -1 with
 * err, FM_ERR_USAGE when one of them does not exist. */
static int
locate(struct fm_store *s, const char *account, const char *folder,
       const char *base, struct account **a_r, struct folder **f_r,
       const struct fm_summary_entry **e_r, struct fm_error *err)
{
	struct account *a = find_account(s, account, err);
	struct folder *f =
	    a != NULL ? store_get_folder(a, folder, false, err) : NULL;
	if (f == NULL)
		return -1;
	const struct fm_summary_entry *e = fm_summary_find(f->sum, base);
	if (e == NULL)
		return no_message(f, base, err);
	*a_r = a;
	*f_r = f;
	if (e_r != NULL)
		*e_r = e;
	return 0;
}

static int
apply_flags(struct fm_store *s, struct folder *f, const char *base,
            uint32_t add, uint32_t del, bool defer, struct fm_error *err)
{
	const struct fm_summary_entry *e = fm_summary_find(f->sum, base);
	if (e == NULL)
		return no_message(f, base, err);
	uint32_t flags = (e->flags | add) & ~del;
	if (flags == e->flags && strncmp(e->file, "cur/", 4) == 0)
		return 0;
	/* defer: the directory is fsynced at the next commit or flush (a
	 * sync records the change in its state only after
	 * fm_store_commit()). A user's change is durable at once, so an
	 * acknowledged journal record never outlives its rename. */
	char *rel = NULL;
	if (fm_maildir_set_flags(f->dir, e->file, flags,
	                         defer ? &f->unsynced : NULL, &rel, err) < 0)
		return -1;
	fm_summary_set_file(f->sum, base, rel, flags);
	f->dirty = true;
	free(rel);
	return 0;
}

static int
journal(struct account *a, struct fm_journal_record *r, struct fm_error *err)
{
	return fm_journal_append(a->journal, r, 1, err);
}

int
fm_store_set_flags(struct fm_store *s, const char *account, const char *folder,
                   const char *base, uint32_t add, uint32_t del,
                   struct fm_error *err)
{
	struct account *a;
	struct folder *f;
	const struct fm_summary_entry *e;
	if (locate(s, account, folder, base, &a, &f, &e, err) < 0)
		return -1;
	if (((e->flags | add) & ~del) == e->flags)
		return 0; /* already so: nothing to do, nothing to journal */
	struct fm_journal_record r = {
	    .op = FM_JOURNAL_FLAGS,
	    .folder = folder,
	    .base = base,
	    .flags_add = add,
	    .flags_del = del,
	};
	if (journal(a, &r, err) < 0)
		return -1;
	return apply_flags(s, f, base, add, del, false, err);
}

/* Remembers that the index knew a file that is going away. */
static void
forget_indexed(struct fm_store *s, struct account *a, struct folder *f,
               const struct fm_summary_entry *e)
{
	if (e->indexed == NULL || s->index == NULL)
		return;
	s->forget =
	    xreallocarray(s->forget, s->n_forget + 1, sizeof(*s->forget));
	s->forget[s->n_forget++] =
	    xasprintf("%s/%s/%s", a->name, f->name, e->indexed);
}

static int
apply_move(struct fm_store *s, struct account *a, struct folder *f,
           const char *base, const char *to, struct fm_error *err)
{
	struct folder *t = store_get_folder(a, to, true, err);
	if (t == NULL)
		return -1;
	if (t == f)
		return 0;
	const struct fm_summary_entry *e = fm_summary_find(f->sum, base);
	if (e == NULL)
		return no_message(f, base, err);
	char *rel = NULL;
	if (fm_maildir_move(f->dir, e->file, t->dir, &rel, err) < 0)
		return -1;
	struct fm_summary_entry moved = *e;
	moved.file = rel;
	moved.indexed = NULL;
	char *keep_base = xstrdup(base);
	forget_indexed(s, a, f, e);
	fm_summary_put(t->sum, &moved); /* copies before e goes */
	fm_summary_remove(f->sum, keep_base);
	tags_remove(f, keep_base);
	tags_add(t, keep_base);
	f->dirty = t->dirty = true;
	free(keep_base);
	free(rel);
	return 0;
}

int
fm_store_move(struct fm_store *s, const char *account, const char *folder,
              const char *base, const char *to_folder, struct fm_error *err)
{
	struct account *a;
	struct folder *f;
	if (locate(s, account, folder, base, &a, &f, NULL, err) < 0)
		return -1;
	if (strcmp(folder, to_folder) == 0)
		return 0;
	struct fm_journal_record r = {
	    .op = FM_JOURNAL_MOVE,
	    .folder = folder,
	    .base = base,
	    .to_folder = to_folder,
	    .to_base = base,
	};
	if (journal(a, &r, err) < 0)
		return -1;
	return apply_move(s, a, f, base, to_folder, err);
}

int
fm_store_move_local(struct fm_store *s, const char *account, const char *folder,
                    const char *base, const char *to_folder,
                    struct fm_error *err)
{
	struct account *a;
	struct folder *f;
	if (locate(s, account, folder, base, &a, &f, NULL, err) < 0)
		return -1;
	return apply_move(s, a, f, base, to_folder, err);
}

static int
apply_delete(struct fm_store *s, struct account *a, struct folder *f,
             const char *base, struct fm_error *err)
{
	const struct fm_summary_entry *e = fm_summary_find(f->sum, base);
	if (e == NULL)
		return no_message(f, base, err);
	if (fm_maildir_remove(f->dir, e->file, err) < 0)
		return -1;
	forget_indexed(s, a, f, e);
	tags_remove(f, base);
	fm_summary_remove(f->sum, base);
	f->dirty = true;
	return 0;
}

int
fm_store_delete(struct fm_store *s, const char *account, const char *folder,
                const char *base, struct fm_error *err)
{
	struct account *a;
	struct folder *f;
	if (locate(s, account, folder, base, &a, &f, NULL, err) < 0)
		return -1;
	struct fm_journal_record r = {
	    .op = FM_JOURNAL_DELETE,
	    .folder = folder,
	    .base = base,
	};
	if (journal(a, &r, err) < 0)
		return -1;
	return apply_delete(s, a, f, base, err);
}

int
fm_store_delete_local(struct fm_store *s, const char *account,
                      const char *folder, const char *base,
                      struct fm_error *err)
{
	struct account *a;
	struct folder *f;
	if (locate(s, account, folder, base, &a, &f, NULL, err) < 0)
		return -1;
	return apply_delete(s, a, f, base, err);
}

/* ------------------------------------------------------------------------
 * The sync engines' side: no journal.
 */

int
fm_store_folder_msgs(struct fm_store *s, const char *account,
                     const char *folder, struct fm_store_msg **msgs_r,
                     size_t *n_r, struct fm_error *err)
{
	*msgs_r = NULL;
	*n_r = 0;
	struct account *a = find_account(s, account, err);
	struct folder *f =
	    a != NULL ? store_get_folder(a, folder, true, err) : NULL;
	if (f == NULL)
		return -1;
	size_t n = fm_summary_count(f->sum);
	struct fm_store_msg *v = xcalloc(n > 0 ? n : 1, sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		const struct fm_summary_entry *e = fm_summary_at(f->sum, i);
		v[i].base = xstrdup(e->base);
		v[i].file = xstrdup(e->file);
		v[i].flags = e->flags;
		v[i].size = e->size;
		v[i].message_id =
		    e->message_id != NULL ? xstrdup(e->message_id) : NULL;
	}
	*msgs_r = v;
	*n_r = n;
	return 0;
}

void
fm_store_msgs_free(struct fm_store_msg *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(msgs[i].base);
		free(msgs[i].file);
		free(msgs[i].message_id);
	}
	free(msgs);
}

int
fm_store_account_folders(struct fm_store *s, const char *account,
                         char ***folders_r, size_t *n_r, struct fm_error *err)
{
	*folders_r = NULL;
	*n_r = 0;
	struct account *a = find_account(s, account, err);
	if (a == NULL)
		return -1;
	return store_list_folders(a->dir, folders_r, n_r, err);
}

int
fm_store_quick(struct fm_store *s, const char *account, const char *folder,
               struct fm_error *err)
{
	struct account *a = find_account(s, account, err);
	if (a == NULL)
		return -1;
	if (store_folder_find(a, folder) != NULL)
		return 0;
	if (s->index != NULL)
		return store_get_folder(a, folder, true, err) != NULL ? 0 : -1;
	char *dir = fm_path_join(a->dir, folder);
	if (access(dir, F_OK) < 0) {
		free(dir);
		return store_get_folder(a, folder, true, err) != NULL ? 0 : -1;
	}
	struct folder *f = folder_new(folder, dir);
	f->lazy = true;
	folder_attach(a, f);
	return 0;
}

/* Where a folder without its summary keeps base if its flags are was:
 * "cur/BASE:2,FLAGS", or for no flags also "new/BASE" (a message
 * delivered unseen). Sets *n_r to how many names. */
static void
lazy_names(const char *base, uint32_t was, char *names[2], size_t *n_r)
{
	char info[FM_MAILDIR_INFO_MAX];
	fm_maildir_flags_format(was, info);
	*n_r = 0;
	if (was == 0)
		names[(*n_r)++] = xasprintf("new/%s", base);
	names[(*n_r)++] = xasprintf("cur/%s%s", base, info);
}

/* Renames base from where was says to cur/ with flags, without the
 * summary: 1 done, 0 not found there, -1 failed. */
static int
lazy_set_flags(struct folder *f, const char *base, uint32_t was, uint32_t flags,
               struct fm_error *err)
{
	char *names[2];
	size_t n;
	lazy_names(base, was, names, &n);
	char info[FM_MAILDIR_INFO_MAX];
	fm_maildir_flags_format(flags, info);
	char *to_rel = xasprintf("cur/%s%s", base, info);
	char *to = fm_path_join(f->dir, to_rel);
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++) {
		char *from = fm_path_join(f->dir, names[i]);
		struct stat st;
		int r = strcmp(names[i], to_rel) == 0 ? stat(from, &st)
		                                      : rename(from, to);
		int e = errno;
		free(from);
		if (r == 0) {
			if (strcmp(names[i], to_rel) != 0)
				f->unsynced |=
				    FM_MAILDIR_DIR_CUR |
				    (names[i][0] == 'n' ? FM_MAILDIR_DIR_NEW
				                        : 0u);
			struct fm_summary_entry ch = {
			    .base = base, .file = to_rel, .flags = flags};
			lazy_change(f, FM_SUMMARY_FILE, &ch);
			ret = 1;
		} else if (e != ENOENT) {
			ret = fm_error_errno(err, FM_ERR_LOCAL, e,
			                     _("Cannot rename the message "
			                       "%s in %s"),
			                     names[i], f->dir);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(to_rel);
	free(to);
	return ret;
}

int
fm_store_sync_flags(struct fm_store *s, const char *account, const char *folder,
                    const char *base, uint32_t was, uint32_t flags,
                    uint32_t keep, struct fm_error *err)
{
	struct account *a = find_account(s, account, err);
	struct folder *f =
	    a != NULL ? get_folder_any(a, folder, false, err) : NULL;
	if (f == NULL)
		return -1;
	if (f->lazy) {
		/* Not where the caller said: the folder is not as it
		 * believes; leave the message alone. */
		int r = lazy_set_flags(f, base, was,
		                       (was & keep) | (flags & ~keep), err);
		return r < 0 ? -1 : r == 1 ? 0 : 1;
	}
	const struct fm_summary_entry *e = fm_summary_find(f->sum, base);
	if (e == NULL)
		return no_message(f, base, err);
	uint32_t want = (e->flags & keep) | (flags & ~keep);
	return apply_flags(s, f, base, want, ~want, true, err);
}

int
fm_store_sync_remove(struct fm_store *s, const char *account,
                     const char *folder, const char *base, uint32_t was,
                     struct fm_error *err)
{
	struct account *a = find_account(s, account, err);
	struct folder *f =
	    a != NULL ? get_folder_any(a, folder, true, err) : NULL;
	if (f == NULL)
		return -1;
	if (f->lazy) {
		char *names[2];
		size_t n;
		lazy_names(base, was, names, &n);
		int ret = 0;
		for (size_t i = 0; i < n && ret == 0; i++) {
			char *path = fm_path_join(f->dir, names[i]);
			if (unlink(path) == 0) {
				f->unsynced |= names[i][0] == 'n'
				                   ? FM_MAILDIR_DIR_NEW
				                   : FM_MAILDIR_DIR_CUR;
				struct fm_summary_entry ch = {.base = base};
				lazy_change(f, FM_SUMMARY_REMOVE, &ch);
				ret = 1;
			} else if (errno != ENOENT) {
				ret = fm_error_errno(
				    err, FM_ERR_LOCAL, errno,
				    _("Cannot remove the message %s in %s"),
				    names[i], f->dir);
			}
			free(path);
		}
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		return ret < 0 ? -1 : ret == 1 ? 0 : 1;
	}
	if (fm_summary_find(f->sum, base) == NULL)
		return 0;
	return apply_delete(s, a, f, base, err);
}

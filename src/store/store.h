/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * store — the local cache, offline first: maildirs, per-folder summaries
 * and sync state, the per-account change journal, and the notmuch index.
 *
 * Layout under the data directory ($XDG_DATA_HOME/fulmar):
 *   mail/ACCOUNT/FOLDER/{tmp,new,cur}   the messages (FOLDER may nest)
 *   mail/ACCOUNT/FOLDER/.fulmar-summary  envelope summary (derived)
 *   mail/ACCOUNT/FOLDER/.fulmar-state    sync state (UIDs, last flags)
 *   mail/ACCOUNT/.fulmar/lock            one writing process per account
 *   mail/ACCOUNT/.fulmar/journal         local changes not yet on the server
 *   index/                               notmuch (derived)
 * The maildirs and the state files are the truth; summaries and the index
 * are derived and rebuilt by fm_store_reindex().
 *
 * Two sides:
 * - struct fm_store is the single writer. One per process, used by one
 *   thread (the store thread, or a headless command's main thread); it
 *   holds every account's lock for as long as it is open. Every change is
 *   applied to the maildir at once and journaled (fsync) before the call
 *   returns.
 * - struct fm_store_reader reads (summaries, messages, search). Any number,
 *   one per thread, no locks taken; it never writes a file.
 */
#ifndef FULMAR_STORE_H
#define FULMAR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/base.h"
#include "conf/conf.h"

/* Every account's folder for outgoing mail, created by fm_store_open. */
#define FM_STORE_OUTBOX "Outbox"
/* A hierarchy kept on this machine only (e.g. "Local only/Sent"). */
#define FM_STORE_LOCAL_ONLY "Local only"
/* Whether a folder never leaves this machine: the Outbox and the
 * FM_STORE_LOCAL_ONLY hierarchy. Sync engines and push skip them. */
bool fm_store_local_only(const char *folder);

/* The data directory's parts. Newly allocated. */
char *fm_store_mail_root(const char *data_dir);
char *fm_store_index_dir(const char *data_dir);
/* The folder's maildir: mail/ACCOUNT/FOLDER. */
char *fm_store_folder_dir(const char *data_dir, const char *account,
                          const char *folder);

struct fm_store_opts {
	const struct fm_config *cfg;
	const char *data_dir; /* NULL: $XDG_DATA_HOME/fulmar */
	/* Another process writes an account: wait for it (after telling
	 * on_wait once), or fail at once with FM_ERR_TEMPORARY. */
	bool wait_for_lock;
	void (*on_wait)(void *ctx, const char *account, pid_t holder);
	void *ctx;
	/* Keep the notmuch index (fm_store_index_pending); false leaves it
	 * alone (tests, benchmarks, commands that do not search). An index
	 * that cannot be opened fails the open only with index_required;
	 * otherwise it is said and left behind (it is derived: a later open
	 * catches it up). */
	bool index;
	bool index_required;
};

struct fm_store;

/* Opens the store for writing: creates what is missing (every account's
 * directory and its Outbox), takes every account's lock, and opens the
 * journals. FM_ERR_TEMPORARY when an account is locked and the caller does
 * not wait; FM_ERR_LOCAL for I/O. */
int fm_store_open(const struct fm_store_opts *opts, struct fm_store **store_r,
                  struct fm_error *err);
/* Saves what is unsaved (fm_store_flush), lets go of the locks. NULL-safe;
 * sets *store to NULL. */
void fm_store_close(struct fm_store **store);

/* Delivers a message into ACCOUNT/FOLDER (created if missing) with maildir
 * flags, into cur/ (with flags) or new/ (flags 0). key names what is
 * delivered (e.g. "uid:UIDVALIDITY:UID") or is NULL: a key already
 * delivered is not delivered again — even after a crash between delivery
 * and saving the state — and *base_r then names the existing copy.
 * *base_r (may be NULL) receives the message's base name; caller frees. */
int fm_store_deliver(struct fm_store *store, const char *account,
                     const char *folder, const char *key, const void *data,
                     size_t len, uint32_t flags, char **base_r,
                     struct fm_error *err);
/* As fm_store_deliver(), but the message is only staged (in tmp/, not
 * fsynced): it is in the folder and durable once fm_store_commit()
 * returns. Downloads stage a batch and commit it with one flush. Until the
 * commit, the message counts as delivered for its key. */
int fm_store_deliver_staged(struct fm_store *store, const char *account,
                            const char *folder, const char *key,
                            const void *data, size_t len, uint32_t flags,
                            char **base_r, struct fm_error *err);
/* Makes every staged message durable and visible (fm_maildir_batch_commit)
 * and updates the summaries; on failure nothing staged remains. Renames
 * made since the last commit (fm_store_sync_flags) are durable too. */
int fm_store_commit(struct fm_store *store, struct fm_error *err);
/* Starts writing what is staged to disk on a thread of its own (a
 * syncfs(2)) and returns at once, so that the next fm_store_commit(),
 * which waits for it, has less left to flush. It guarantees nothing by
 * itself. */
void fm_store_write_ahead(struct fm_store *store);

/* The delivery tag of key delivered into ACCOUNT/FOLDER: the hex digits
 * that follow 'K' in the file's base name (see fm_maildir_base_tag). The
 * tag stays with a message that is moved, so it still names the folder
 * and key it came from. */
void fm_store_key_tag(const char *account, const char *folder, const char *key,
                      char tag[33]);

/* The base name delivered for key, or NULL (newly allocated). */
char *fm_store_find_key(struct fm_store *store, const char *account,
                        const char *folder, const char *key);

/* User actions: applied to the maildir at once and journaled for the
 * server before they return. A change that is already in effect (the flags
 * are already so) is not journaled again, so a retry after a crash applies
 * nothing twice. FM_ERR_USAGE when the message does not exist. */
int fm_store_set_flags(struct fm_store *store, const char *account,
                       const char *folder, const char *base, uint32_t add,
                       uint32_t del, struct fm_error *err);
/* Moves a message to another folder of the same account (one rename: the
 * base name stays); *new_file_r (may be NULL) gets its new relative file. */
int fm_store_move(struct fm_store *store, const char *account,
                  const char *folder, const char *base, const char *to_folder,
                  struct fm_error *err);
int fm_store_delete(struct fm_store *store, const char *account,
                    const char *folder, const char *base, struct fm_error *err);

/* Local bookkeeping the server must never hear of (the Outbox, which
 * exists only here): as fm_store_move() and fm_store_delete(), but
 * nothing is journaled. A message moved into a synchronised folder this
 * way (a sent message filed in Sent) is a new local message there, which
 * the sync engine uploads like any other. */
int fm_store_move_local(struct fm_store *store, const char *account,
                        const char *folder, const char *base,
                        const char *to_folder, struct fm_error *err);
int fm_store_delete_local(struct fm_store *store, const char *account,
                          const char *folder, const char *base,
                          struct fm_error *err);

/* Writes every changed summary and state file (atomically). Deliveries
 * staged and not committed are dropped first. */
int fm_store_flush(struct fm_store *store, struct fm_error *err);

/* Brings up to max messages that the index does not know yet (or knows
 * under an old file name) into it, in one atomic batch. *done_r: how many.
 * A no-op when the store was opened without the index. */
int fm_store_index_pending(struct fm_store *store, size_t max, size_t *done_r,
                           struct fm_error *err);
/* Rebuilds the summaries (and, if the store keeps it, the index) of one
 * account (NULL: all) from the maildirs. *messages_r: how many messages. */
int fm_store_reindex(struct fm_store *store, const char *account,
                     size_t *messages_r, struct fm_error *err);

/* Creates ACCOUNT/FOLDER if it does not exist yet. */
int fm_store_ensure_folder(struct fm_store *store, const char *account,
                           const char *folder, struct fm_error *err);

/* The data directory (borrowed). */
const char *fm_store_data_dir(const struct fm_store *store);

/* What the store knows about one message. */
struct fm_store_info {
	char *file; /* relative to the folder ("cur/..."); caller frees */
	uint32_t flags;
	uint64_t size;
};
/* Looks up ACCOUNT/FOLDER/BASE: 1 and *info_r when it is there, 0 when it
 * is not, -1 with err on failure. */
int fm_store_lookup(struct fm_store *store, const char *account,
                    const char *folder, const char *base,
                    struct fm_store_info *info_r, struct fm_error *err);
/* Replaces a message's content atomically, keeping its name and flags
 * (a header stub completed by its body), and updates the summary. */
int fm_store_replace(struct fm_store *store, const char *account,
                     const char *folder, const char *base, const void *data,
                     size_t len, struct fm_error *err);

/* ------------------------------------------------------------------------
 * The sync engines' side. Changes made here come from the server (or were
 * just made on it): they are applied to the maildir at once and not
 * journaled, because the engine records them in the folder's sync state.
 */

/* One message of a folder as the store knows it now. */
struct fm_store_msg {
	char *base;
	char *file; /* relative to the folder ("cur/BASE:2,S") */
	uint32_t flags;
	uint64_t size;    /* bytes in the file */
	char *message_id; /* without the angle brackets, or NULL */
};

/* Every message of ACCOUNT/FOLDER (created if missing), in no particular
 * order; the caller frees them with fm_store_msgs_free(). */
int fm_store_folder_msgs(struct fm_store *store, const char *account,
                         const char *folder, struct fm_store_msg **msgs_r,
                         size_t *n_r, struct fm_error *err);
void fm_store_msgs_free(struct fm_store_msg *msgs, size_t n);

/* The account's folders (maildirs) as relative paths, INBOX first then
 * sorted; the caller frees each string, then the array. */
int fm_store_account_folders(struct fm_store *store, const char *account,
                             char ***folders_r, size_t *n_r,
                             struct fm_error *err);

/* The local folder the server marks with a special use (role "Sent",
 * "Drafts", "Trash", "Junk", "Archive"), as the last IMAP sync found it
 * (mail/ACCOUNT/.fulmar/special-use, one "ROLE<TAB>FOLDER" per line), or
 * NULL. Newly allocated. Any thread. */
char *fm_store_special_use(const char *data_dir, const char *account,
                           const char *role);
/* Records the special uses (roles[i] is folders[i]) an IMAP sync found,
 * replacing the last record (atomically). */
int fm_store_set_special_use(const char *data_dir, const char *account,
                             const char *const *roles,
                             const char *const *folders, size_t n,
                             struct fm_error *err);

/* Lets a sync work on ACCOUNT/FOLDER without reading its summary, for a
 * folder of many messages of which few change. The caller believes it
 * knows every message file in the folder and its flags (its sync state
 * agrees with the folder, as a stamp proved). Deliveries are then not
 * checked against earlier ones by key, and fm_store_sync_flags() and
 * fm_store_sync_remove() find a file by the flags the caller says it has;
 * what they do is appended to the summary's change log at the next flush.
 * Anything else asked of the folder loads the summary as usual. A folder
 * already loaded stays so, and with a search index every folder is loaded
 * (the index must learn what changes). */
int fm_store_quick(struct fm_store *store, const char *account,
                   const char *folder, struct fm_error *err);
/* Gives BASE the maildir flags flags, but keeps the bits in keep as the
 * file has them; was: the flags the caller believes the file has now. The
 * rename is durable once fm_store_commit() (or a flush) returns: record it
 * only after that. In a folder worked on with fm_store_quick() a message
 * not found by was is left alone and 1 returned: the folder changed in a
 * way the caller does not know. Else 0, or -1 with err. */
int fm_store_sync_flags(struct fm_store *store, const char *account,
                        const char *folder, const char *base, uint32_t was,
                        uint32_t flags, uint32_t keep, struct fm_error *err);
/* Removes BASE (the server expunged it); was and the result as above
 * (gone already counts as done in a loaded folder). Durable once
 * fm_store_commit() returns. */
int fm_store_sync_remove(struct fm_store *store, const char *account,
                         const char *folder, const char *base, uint32_t was,
                         struct fm_error *err);

/* The journal of an account, for the worker that replays it (borrowed). */
struct fm_journal *fm_store_journal(struct fm_store *store,
                                    const char *account);

/* ------------------------------------------------------------------------
 * The store thread: the single writer as a service. Other threads hand it
 * work and wait for the answer; when idle it brings the index up to date
 * in batches and saves what changed, so nothing waits for notmuch.
 */
struct fm_store_service;

/* Opens the store (fm_store_open with opts, copied) on a new thread.
 * Fails as fm_store_open() does. */
int fm_store_service_start(const struct fm_store_opts *opts,
                           struct fm_store_service **svc_r,
                           struct fm_error *err);
/* Runs fn(store, ctx, err) on the store thread and returns its result;
 * fn must not keep pointers into the store past its return. Any thread;
 * calls are served in order. */
typedef int fm_store_fn(struct fm_store *store, void *ctx,
                        struct fm_error *err);
int fm_store_call(struct fm_store_service *svc, fm_store_fn *fn, void *ctx,
                  struct fm_error *err);
/* How many index batches the thread has committed (for tests and the
 * status line). */
unsigned long fm_store_service_batches(struct fm_store_service *svc);
/* Finishes the call in progress, saves, closes the store and joins the
 * thread. NULL-safe; sets *svc to NULL. */
void fm_store_service_stop(struct fm_store_service **svc);

/* ------------------------------------------------------------------------
 * Reading.
 */

struct fm_store_reader;

/* Opens a reader on the data directory (NULL: the default). Never takes a
 * lock or writes; summaries that are out of date are brought up to date in
 * memory only. The index is opened on first search. */
int fm_store_reader_open(const struct fm_config *cfg, const char *data_dir,
                         struct fm_store_reader **reader_r,
                         struct fm_error *err);
void fm_store_reader_free(struct fm_store_reader **reader);

struct fm_store_folder {
	char *account;
	char *folder; /* "INBOX", "Lists/fulmar" */
	size_t total;
	size_t unread;
};
/* Every folder of one account (NULL: all), accounts in config order,
 * folders sorted with INBOX first. Free with fm_store_folders_free(). */
int fm_store_folders(struct fm_store_reader *reader, const char *account,
                     struct fm_store_folder **folders_r, size_t *n_r,
                     struct fm_error *err);
void fm_store_folders_free(struct fm_store_folder *folders, size_t n);

/* One row of a folder view or a search. Strings belong to the page. */
struct fm_store_row {
	const char *account;
	const char *folder;
	const char *base;
	const char *path; /* absolute path of the message file */
	int64_t date;
	uint32_t flags;
	uint64_t size;
	const char *from;
	const char *to;
	const char *subject;
	const char *message_id;
	unsigned depth; /* thread depth in a threaded view, else 0 */
};

struct fm_store_page {
	struct fm_store_row *rows;
	size_t n;
	size_t total; /* rows in the whole view */
	void *priv;   /* owns the strings */
};

enum fm_store_order { FM_STORE_BY_DATE, FM_STORE_THREADS };

/* A page of a folder view: newest first, or as conversations (newest
 * conversation first). FM_ERR_USAGE for a folder that does not exist. */
int fm_store_view(struct fm_store_reader *reader, const char *account,
                  const char *folder, enum fm_store_order order, size_t offset,
                  size_t limit, struct fm_store_page *page,
                  struct fm_error *err);
/* A page of a notmuch search, newest first. FM_ERR_USAGE for a bad
 * query. */
int fm_store_search(struct fm_store_reader *reader, const char *query,
                    size_t offset, size_t limit, struct fm_store_page *page,
                    struct fm_error *err);
void fm_store_page_free(struct fm_store_page *page);

/* The path of the message named by id: "ACCOUNT/FOLDER/BASE" or
 * "id:MESSAGE-ID" (searched in the summaries). Newly allocated. */
int fm_store_locate(struct fm_store_reader *reader, const char *id,
                    char **path_r, struct fm_error *err);

#endif

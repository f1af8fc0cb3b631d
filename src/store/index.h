/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * index — fulmar's notmuch layer: the search index over the maildir cache.
 *
 * The index is derived: the maildirs and the sync state are the truth, and
 * `fulmar reindex` rebuilds the index from them. It lives in its own
 * directory (DB_PATH, normally $XDG_DATA_HOME/fulmar/index) apart from the
 * mail root (MAIL_ROOT, normally $XDG_DATA_HOME/fulmar/mail); both are
 * passed in by the caller, and nothing here reads the environment or the
 * user's own notmuch configuration.
 *
 * One writer, many readers. notmuch allows a single read-write handle per
 * database, and a second read-write open waits for the lock forever, even
 * in the same process; so only the store thread opens a writer, and a
 * lock of fulmar's own refuses a second one at once. Any other thread
 * opens its own reader; a handle, and everything it hands out, belongs to
 * the thread that opened it.
 *
 * Readers see the newest committed state. notmuch 0.37 (Debian 12) aborts
 * the process when a reader walks an old snapshot that the writer has
 * since overwritten (an uncaught Xapian::DatabaseModifiedError in
 * notmuch_messages_get), so instead of keeping a snapshot between calls,
 * every reader call first moves its handle to the newest committed
 * revision (a cheap no-op when nothing changed), and the writer's commits
 * wait for in-process readers that are copying results. Each result
 * carries the revision it was read at.
 *
 * Files are named by absolute paths under MAIL_ROOT or by paths relative
 * to it ("acct/INBOX/cur/BASE:2,S"). notmuch's folder: and path: terms are
 * relative to MAIL_ROOT: `folder:acct/INBOX` finds the messages with a
 * file in acct/INBOX/cur or acct/INBOX/new.
 *
 * Tags and maildir flags: indexing a file sets the tags its maildir flags
 * call for (D draft, F flagged, P passed, R replied, no S unread), like
 * `notmuch new` with synchronize_flags. The other way round, this module
 * never renames a file (the store owns every rename): fm_index_tag()
 * returns the flags the new tags call for, the store renames the files and
 * reports the renames through fm_index_apply().
 *
 * libnotmuch is not linked: the first fm_index_writer_open() or
 * fm_index_reader_open() of the process loads it (store/nmlib.h), so that
 * a fulmar that never opens the index never pays for loading it. Without
 * a loadable libnotmuch every open fails with FM_ERR_LOCAL and a sentence
 * that names the package to install; nothing else here needs it.
 *
 * Errors: -1 and err filled. A database that cannot be opened, read or
 * written is FM_ERR_LOCAL, and the sentence says the index can be rebuilt
 * with `fulmar reindex`; a query notmuch cannot parse is FM_ERR_USAGE with
 * the query in the sentence; a bad argument (a path outside MAIL_ROOT, an
 * empty tag) is FM_ERR_USAGE. Allocation never fails.
 */
#ifndef FULMAR_STORE_INDEX_H
#define FULMAR_STORE_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* The maildir flags kept in step with tags, as bits of enum fm_maildir_flag
 * (store/maildir.h): D, F, P, R and S. T and the keyword letters have no
 * tag and are the store's alone. */
#define FM_INDEX_SYNCED_FLAGS 0x1fu

/* ------------------------------------------------------------------------
 * The writer: the store thread's read-write handle.
 */
struct fm_index_writer;

/* Opens the index at db_path for writing, creating db_path (mode 0700) and
 * an empty database (in db_path/.notmuch) if there is none, and records
 * mail_root (absolute; trailing slashes are ignored) in the database so
 * that readers resolve folder: and path: against it. On success
 * *writer_r is the handle; free it with fm_index_writer_free(). Store
 * thread, once per process.
 *
 * notmuch itself would make a second writer wait forever for the first
 * one's lock; fulmar's own lock (db_path/writer.lock) refuses it at once
 * instead, in this process or another: FM_ERR_TEMPORARY, with the holder's
 * process id in the sentence. Other failures: FM_ERR_LOCAL when the
 * directory cannot be made or the database cannot be opened or created;
 * FM_ERR_USAGE for a relative path. */
int fm_index_writer_open(const char *db_path, const char *mail_root,
                         struct fm_index_writer **writer_r,
                         struct fm_error *err);

/* Commits and closes the database and frees the handle; sets *writer to
 * NULL. NULL-safe. Store thread. */
void fm_index_writer_free(struct fm_index_writer **writer);

/* The revision of the last committed batch. It only grows while this
 * database exists (a rebuilt index starts again from 0: compare revisions
 * for equality, not order, across a reindex). Store thread. */
unsigned long fm_index_writer_revision(const struct fm_index_writer *writer);

/* What one entry of a batch does. */
enum fm_index_op_kind {
	FM_INDEX_ADD,    /* index the file path */
	FM_INDEX_REMOVE, /* forget the file path (it is gone from disk) */
	FM_INDEX_RENAME, /* path was renamed to new_path (flags or folder) */
};

/* What became of one entry, set by fm_index_apply(). */
enum fm_index_outcome {
	FM_INDEX_PENDING = 0, /* not applied (the batch failed) */
	FM_INDEX_NEW,         /* a message the index did not have */
	FM_INDEX_MERGED,      /* the file joined a message already indexed
	                       * (the same Message-ID in another file, or the
	                       * same file again) */
	FM_INDEX_NOT_EMAIL,   /* the file is not an email; skipped */
	FM_INDEX_UNREADABLE,  /* the file could not be read; skipped */
	FM_INDEX_KEPT,        /* removed; the message lives on in its other
	                       * files */
	FM_INDEX_GONE,        /* removed the message's last file: the message
	                       * and its tags are gone */
	FM_INDEX_UNKNOWN,     /* REMOVE of a file the index never had */
};

/* One entry of a batch. The strings belong to the caller and are only read
 * during fm_index_apply(). */
struct fm_index_op {
	enum fm_index_op_kind kind;
	const char *path;     /* ADD, REMOVE: the file; RENAME: its old name */
	const char *new_path; /* RENAME: its new name; otherwise NULL */
	enum fm_index_outcome outcome; /* out */
};

/* Applies n operations in one atomic transaction: either all of them are
 * committed (and readers can see them when this returns) or none is.
 *
 * ADD indexes the file and then sets the message's flag tags from the
 * maildir flags of all its files (a flag counts when any file has it; a
 * file in new/ without info has no flags, so it is unread). A file whose
 * Message-ID is already indexed joins that message (FM_INDEX_MERGED): one
 * message, two files. A file that is not an email (FM_INDEX_NOT_EMAIL) or
 * cannot be read (FM_INDEX_UNREADABLE) is skipped and the batch goes on.
 *
 * REMOVE forgets a file; the message disappears with its last file
 * (FM_INDEX_GONE), otherwise its flag tags are set again from the files
 * that remain (FM_INDEX_KEPT).
 *
 * RENAME adds new_path before it removes path, so the message and the tags
 * that no flag carries (a user's "todo") survive even when path was its
 * only file; then the flag tags are set from the new name. Its outcome is
 * that of adding new_path (normally FM_INDEX_MERGED; FM_INDEX_NEW when path
 * was not indexed).
 *
 * Every path must be under the mail root (FM_ERR_USAGE before anything
 * changes, ops untouched). On an error from the database (FM_ERR_LOCAL)
 * the whole batch is rolled back and every outcome is FM_INDEX_PENDING;
 * the writer stays usable. On success *revision_r (if not NULL) is the
 * new revision. Store thread. */
int fm_index_apply(struct fm_index_writer *writer, struct fm_index_op *ops,
                   size_t n, unsigned long *revision_r, struct fm_error *err);

/* What fm_index_tag() leaves for the store to do. */
struct fm_index_tagged {
	uint32_t flags; /* the FM_INDEX_SYNCED_FLAGS bits the message's tags
	                 * now call for: D draft, F flagged, P passed,
	                 * R replied, S when not unread */
	char **paths;   /* the message's files, absolute, NULL-terminated */
	size_t npaths;
	unsigned long revision; /* after the change */
};

/* Adds the tags in add and removes those in remove (both NULL-terminated,
 * either may be NULL; a tag in both ends up added) on the message with
 * message_id (with or without the angle brackets), in one atomic
 * transaction. Nothing is renamed: result_r
 * tells the store which flags the message's files should now carry; the
 * store renames them (keeping T and keywords: new = (old &
 * ~FM_INDEX_SYNCED_FLAGS) | flags) and reports each rename through
 * fm_index_apply(), which sets the same tags again from the new names.
 * Free *result_r with fm_index_tagged_free(). Fails with FM_ERR_USAGE for
 * an empty tag or one longer than notmuch allows (200 bytes), FM_ERR_LOCAL
 * when no message has that Message-ID or the database fails (nothing
 * changed). Store thread. */
int fm_index_tag(struct fm_index_writer *writer, const char *message_id,
                 const char *const *add, const char *const *remove,
                 struct fm_index_tagged *result_r, struct fm_error *err);

/* Frees what a fm_index_tagged holds (not the struct); NULL-safe. */
void fm_index_tagged_free(struct fm_index_tagged *result);

/* ------------------------------------------------------------------------
 * Readers: read-only handles for any thread, one per thread.
 */
struct fm_index_reader;

/* One message of a search, copied out of notmuch. */
struct fm_index_message {
	char *message_id; /* without angle brackets */
	char *thread_id;
	char *path;    /* its first file, absolute */
	char *folder;  /* that file's folder relative to the mail root
	                * ("acct/INBOX"); "" outside a maildir */
	int64_t date;  /* the Date: header, seconds since the epoch */
	char *from;    /* decoded (UTF-8); "" when missing */
	char *subject; /* decoded (UTF-8); "" when missing */
	char **tags;   /* sorted, NULL-terminated */
	size_t ntags;
	unsigned nfiles; /* how many files hold this message */
};

/* A page of messages. */
struct fm_index_messages {
	struct fm_index_message *items;
	size_t count;
	unsigned long revision; /* the revision the page was read at */
};

/* One thread of a thread search. */
struct fm_index_thread {
	char *thread_id;
	char *subject;    /* of its newest matching message, without a
	                   * leading "Re: " (or "Aw: ", "Vs: ", "Sv: ") */
	char *authors;    /* notmuch's form: the matching messages' authors,
	                   * then "| " and the others; "" when none */
	int64_t oldest;   /* the dates of its oldest and newest matching */
	int64_t newest;   /* messages, seconds since the epoch */
	unsigned total;   /* messages in the thread */
	unsigned matched; /* of those, how many match the query */
	char **tags;      /* of all its messages, sorted, NULL-terminated */
	size_t ntags;
};

struct fm_index_threads {
	struct fm_index_thread *items;
	size_t count;
	unsigned long revision;
};

/* Opens the index at db_path read-only. The mail root is the one the
 * writer recorded. On success *reader_r is the handle; free it with
 * fm_index_reader_free(). Any thread (the handle then belongs to it);
 * works while the writer is open. Fails (FM_ERR_LOCAL) when there is no
 * database yet (the store creates it at start) or it cannot be read. */
int fm_index_reader_open(const char *db_path, struct fm_index_reader **reader_r,
                         struct fm_error *err);

/* Closes the database and frees the handle; sets *reader to NULL.
 * NULL-safe. The reader's thread. */
void fm_index_reader_free(struct fm_index_reader **reader);

/* Moves the handle to the newest committed revision. Every search does
 * this first, so callers only need it to learn the revision (for instance
 * after the store announced one). *changed_r (if not NULL) tells whether
 * the revision moved. FM_ERR_LOCAL when the database cannot be read. The
 * reader's thread. */
int fm_index_reader_reopen(struct fm_index_reader *reader, bool *changed_r,
                           struct fm_error *err);

/* The revision the handle last read at. The reader's thread. */
unsigned long fm_index_reader_revision(const struct fm_index_reader *reader);

/* Searches messages with a notmuch query ("" or "*" for all), newest
 * first, and copies out the page of at most limit messages (0: no limit)
 * that starts offset messages in. On success *page_r holds the copies
 * (free with fm_index_messages_free()). A query notmuch cannot parse is
 * FM_ERR_USAGE; a failing database FM_ERR_LOCAL (after one reopen and
 * retry). *page_r is empty on failure. The reader's thread. */
int fm_index_search(struct fm_index_reader *reader, const char *query,
                    size_t offset, size_t limit,
                    struct fm_index_messages *page_r, struct fm_error *err);

/* Frees what a page holds (not the struct) and empties it; NULL-safe. */
void fm_index_messages_free(struct fm_index_messages *page);

/* Counts the messages a query matches. Fails like fm_index_search(). The
 * reader's thread. */
int fm_index_count(struct fm_index_reader *reader, const char *query,
                   unsigned *count_r, struct fm_error *err);

/* Searches threads: every thread with a message that matches, newest
 * first (by its newest matching message), paged like fm_index_search().
 * Free *page_r with fm_index_threads_free(). Fails like fm_index_search().
 * The reader's thread. */
int fm_index_search_threads(struct fm_index_reader *reader, const char *query,
                            size_t offset, size_t limit,
                            struct fm_index_threads *page_r,
                            struct fm_error *err);

/* Frees what a thread page holds (not the struct) and empties it;
 * NULL-safe. */
void fm_index_threads_free(struct fm_index_threads *page);

#endif

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Internal to store/: what the writer and the readers share. */
#ifndef FULMAR_STORE_INT_H
#define FULMAR_STORE_INT_H

#include <pthread.h>

#include "mime/mime.h"
#include "store/store.h"
#include "store/summary.h"

#define STORE_SUMMARY_FILE ".fulmar-summary"
/* Says the folder's summary was wholly indexed as it is (its identity,
 * fm_summary_saved_id()); see fm_store_index_pending(). */
#define STORE_INDEXED_FILE ".fulmar-indexed"
#define STORE_ACCOUNT_DIR ".fulmar"

/* Reads envelopes for fm_summary_rescan(): the strings it hands out live
 * until the next call or store_parser_done(). */
struct store_parser {
	struct fm_envelope *env;
	struct fm_buf from, to, refs;
};
void store_parser_init(struct store_parser *p);
void store_parser_done(struct store_parser *p);
/* Fills e from an envelope (strings in p). */
void store_entry_from_envelope(struct store_parser *p, struct fm_envelope *env,
                               struct fm_summary_entry *e);
/* fm_summary_parse_fn over a struct store_parser. */
int store_parse_file(void *ctx, const char *path, struct fm_summary_entry *e);

/* Loads a folder's summary and brings it up to date with the maildir (in
 * memory). *changed_r: whether it differs from the file now. A damaged
 * summary file is rebuilt from the maildir (reported through the log). */
int store_summary_open(const char *folder_dir, struct fm_summary **sum_r,
                       bool *changed_r, struct fm_error *err);

/* ------------------------------------------------------------------------
 * The writer's state: store.c, and the index catch-up (catchup.c).
 */

/* One folder the writer has touched. */
struct folder {
	char *name;
	char *dir;
	struct fm_summary *sum;
	bool dirty;
	/* delivery tag -> base name; built from the base names on open */
	char **tag_keys, **tag_bases;
	size_t tag_n, tag_cap;
	uint32_t *tag_slots; /* tag -> index + 1; 0 empty, TAG_GONE deleted */
	size_t tag_nslots, tag_used;
	/* staged deliveries (fm_store_deliver_staged) */
	struct fm_maildir_batch *batch;
	char **staged;
	size_t n_staged;
	/* directories renames left to fsync (enum fm_maildir_dirs) */
	unsigned unsynced;
	/* Worked on without its summary (fm_store_quick): sum is NULL, and
	 * the changes wait for the next flush. */
	bool lazy;
	struct fm_summary_change *changes;
	size_t n_changes;
	/* the identity STORE_INDEXED_FILE holds, as last written or read */
	char *indexed_id;
};

struct account {
	char *name;
	char *dir; /* mail/ACCOUNT */
	struct fm_lock *lock;
	struct fm_journal *journal;
	struct folder **folders;
	size_t n_folders;
};

struct fm_store {
	char *data_dir;
	char *mail_root;
	struct account *accounts;
	size_t n_accounts;
	struct fm_index_writer *index;
	/* Files the index must forget (deleted messages), relative to the
	 * mail root. */
	char **forget;
	size_t n_forget;
	/* fm_store_write_ahead(): a syncfs(2) of this descriptor's file
	 * system on a thread of its own, or -1 */
	int ahead_fd;
	pthread_t ahead;
};

/* The loaded folder of that name, or NULL. */
struct folder *store_folder_find(const struct account *a, const char *name);
/* The folder, loaded (its summary read) if it was not; created when
 * create. NULL on failure (err set). */
struct folder *store_get_folder(struct account *a, const char *name,
                                bool create, struct fm_error *err);
void store_folder_free(struct folder *f);
/* After a flush, with the index in use: records that every message of f
 * is indexed, when that is so (catchup.c). */
void store_note_indexed(struct fm_store *s, struct folder *f);

/* The folders (maildirs) under an account's directory, as relative paths
 * ("INBOX", "Lists/fulmar"), INBOX first then sorted. */
int store_list_folders(const char *account_dir, char ***folders_r, size_t *n_r,
                       struct fm_error *err);
void store_strv_free(char **v, size_t n);

#endif

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Internal to store/: what the writer and the readers share. */
#ifndef FULMAR_STORE_INT_H
#define FULMAR_STORE_INT_H

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

/* The folders (maildirs) under an account's directory, as relative paths
 * ("INBOX", "Lists/fulmar"), INBOX first then sorted. */
int store_list_folders(const char *account_dir, char ***folders_r, size_t *n_r,
                       struct fm_error *err);
void store_strv_free(char **v, size_t n);

#endif

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The index catch-up: the search index is brought up to date after the
 * fact, in batches (fm_store_index_pending), from the folders' summaries,
 * which record what each message was indexed as. A folder whose messages
 * are all indexed says so in a side file (STORE_INDEXED_FILE) holding its
 * summary's identity, so a catch-up need not read it while it stays as it
 * is. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"
#include "store/index.h"
#include "store/store_int.h"

/* Whether every message of the summary is in the index as its file is
 * named now. */
static bool
all_indexed(const struct fm_summary *sum)
{
	for (size_t i = 0; i < fm_summary_count(sum); i++) {
		const struct fm_summary_entry *e = fm_summary_at(sum, i);
		if (e->indexed == NULL || strcmp(e->indexed, e->file) != 0)
			return false;
	}
	return true;
}

/* What STORE_INDEXED_FILE of the folder in dir holds, or NULL. */
static char *
read_indexed(const char *dir)
{
	char *path = fm_path_join(dir, STORE_INDEXED_FILE);
	char *data = NULL;
	size_t len = 0;
	struct fm_error e;
	fm_error_clear(&e);
	if (fm_record_read_file(path, 4096, &data, &len, &e) != 0)
		data = NULL;
	free(path);
	if (data != NULL && len > 0 && data[len - 1] == '\n')
		data[len - 1] = '\0';
	return data;
}

/* After a flush, with the index in use: a folder whose messages are all
 * indexed says so with its summary's identity, so the next catch-up need
 * not read it while it stays as it is. A cache: written without fsync,
 * and a failure only costs that read. */
void
store_note_indexed(struct fm_store *s, struct folder *f)
{
	if (s->index == NULL || f->lazy || f->sum == NULL)
		return;
	if (f->indexed_id == NULL)
		f->indexed_id = read_indexed(f->dir);
	char *id = fm_summary_saved_id(f->sum);
	if (id == NULL ||
	    (f->indexed_id != NULL && strcmp(f->indexed_id, id) == 0) ||
	    !all_indexed(f->sum)) {
		free(id);
		return;
	}
	char *path = fm_path_join(f->dir, STORE_INDEXED_FILE);
	char *line = xasprintf("%s\n", id);
	struct fm_error e;
	fm_error_clear(&e);
	if (fm_file_replace_cache(path, line, strlen(line), &e) < 0) {
		free(id);
	} else {
		free(f->indexed_id);
		f->indexed_id = id;
	}
	free(line);
	free(path);
}

/* Whether the folder in dir, not loaded, is as it was when all its
 * messages were indexed. */
static bool
indexed_on_disk(const char *dir)
{
	char *had = read_indexed(dir);
	if (had == NULL)
		return false;
	char *path = fm_path_join(dir, STORE_SUMMARY_FILE);
	char *now = fm_summary_disk_id(path, dir);
	bool same = now != NULL && strcmp(had, now) == 0;
	free(path);
	free(now);
	free(had);
	return same;
}

/* ------------------------------------------------------------------------
 * The index: brought up to date in batches, after the fact.
 */

struct pending {
	struct folder *f;
	char *base;
	char *file;
	char *abs, *old_abs;
};

/* Loads every folder of the account, so the index sees all of them. */
static int
load_all_folders(struct account *a, struct fm_error *err)
{
	char **names;
	size_t n;
	if (store_list_folders(a->dir, &names, &n, err) < 0)
		return -1;
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++)
		if (store_get_folder(a, names[i], false, err) == NULL)
			ret = -1;
	store_strv_free(names, n);
	return ret;
}

int
fm_store_index_pending(struct fm_store *s, size_t max, size_t *done_r,
                       struct fm_error *err)
{
	*done_r = 0;
	if (s->index == NULL || max == 0)
		return 0;
	size_t cap = max + s->n_forget;
	struct fm_index_op *ops = xcalloc(cap, sizeof(*ops));
	struct pending *pend = xcalloc(cap, sizeof(*pend));
	size_t n = 0;
	for (size_t i = 0; i < s->n_forget; i++) {
		pend[n].abs = fm_path_join(s->mail_root, s->forget[i]);
		ops[n].kind = FM_INDEX_REMOVE;
		ops[n].path = pend[n].abs;
		n++;
	}
	size_t n_forget = n;
	int ret = 0;
	size_t n_read = 0, n_known = 0;
	for (size_t i = 0; i < s->n_accounts && n < cap && ret == 0; i++) {
		struct account *a = &s->accounts[i];
		char **names;
		size_t nn;
		if (store_list_folders(a->dir, &names, &nn, err) < 0) {
			ret = -1;
			break;
		}
		for (size_t k = 0; k < nn && n < cap && ret == 0; k++) {
			/* A folder not loaded and as it was when it was
			 * wholly indexed is not read. */
			char *dir = fm_path_join(a->dir, names[k]);
			bool known = store_folder_find(a, names[k]) == NULL &&
			             indexed_on_disk(dir);
			free(dir);
			if (known) {
				n_known++;
				continue;
			}
			struct folder *f =
			    store_get_folder(a, names[k], false, err);
			if (f == NULL) {
				ret = -1;
				break;
			}
			n_read++;
			for (size_t j = 0;
			     j < fm_summary_count(f->sum) && n < cap; j++) {
				const struct fm_summary_entry *e =
				    fm_summary_at(f->sum, j);
				if (e->indexed != NULL &&
				    strcmp(e->indexed, e->file) == 0)
					continue;
				struct pending *p = &pend[n];
				p->f = f;
				p->base = xstrdup(e->base);
				p->file = xstrdup(e->file);
				p->abs = fm_path_join(f->dir, e->file);
				ops[n].path = p->abs;
				if (e->indexed == NULL) {
					ops[n].kind = FM_INDEX_ADD;
				} else {
					p->old_abs =
					    fm_path_join(f->dir, e->indexed);
					ops[n].kind = FM_INDEX_RENAME;
					ops[n].path = p->old_abs;
					ops[n].new_path = p->abs;
				}
				n++;
			}
		}
		store_strv_free(names, nn);
	}
	fm_log_debug("index: %zu folders read, %zu known to be indexed", n_read,
	             n_known);
	unsigned long rev;
	if (ret == 0 && n > 0)
		ret = fm_index_apply(s->index, ops, n, &rev, err);
	if (ret == 0) {
		for (size_t i = n_forget; i < n; i++) {
			if (ops[i].outcome == FM_INDEX_PENDING)
				continue;
			/* Not an email or unreadable: known, not retried. */
			fm_summary_set_indexed(pend[i].f->sum, pend[i].base,
			                       pend[i].file);
			pend[i].f->dirty = true;
		}
		store_strv_free(s->forget, s->n_forget);
		s->forget = NULL;
		s->n_forget = 0;
		*done_r = n - n_forget;
	}
	for (size_t i = 0; i < n; i++) {
		free(pend[i].base);
		free(pend[i].file);
		free(pend[i].abs);
		free(pend[i].old_abs);
	}
	free(pend);
	free(ops);
	return ret;
}

int
fm_store_reindex(struct fm_store *s, const char *account, size_t *messages_r,
                 struct fm_error *err)
{
	*messages_r = 0;
	for (size_t i = 0; i < s->n_accounts; i++) {
		struct account *a = &s->accounts[i];
		if (account != NULL && strcmp(a->name, account) != 0)
			continue;
		/* Forget what is loaded; remove the summaries, so every
		 * folder is read again from its maildir. */
		for (size_t k = 0; k < a->n_folders; k++)
			store_folder_free(a->folders[k]);
		a->n_folders = 0;
		char **names;
		size_t n;
		if (store_list_folders(a->dir, &names, &n, err) < 0)
			return -1;
		for (size_t k = 0; k < n; k++) {
			char *dir = fm_path_join(a->dir, names[k]);
			char *path = fm_path_join(dir, STORE_SUMMARY_FILE);
			unlink(path);
			free(path);
			free(dir);
		}
		store_strv_free(names, n);
		if (load_all_folders(a, err) < 0)
			return -1;
		for (size_t k = 0; k < a->n_folders; k++) {
			a->folders[k]->dirty = true;
			*messages_r += fm_summary_count(a->folders[k]->sum);
		}
	}
	if (fm_store_flush(s, err) < 0)
		return -1;
	size_t done;
	do {
		if (fm_store_index_pending(s, 500, &done, err) < 0)
			return -1;
	} while (done > 0);
	return fm_store_flush(s, err);
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Reading the store: folders with counts, folder views from the summaries
 * (never waiting for the index), search through the index. A reader never
 * writes: a summary that is behind its maildir is brought up to date in
 * memory only; the writer saves it on its next pass. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/index.h"
#include "store/maildir.h"
#include "store/store_int.h"
#include "store/thread.h"

struct fm_store_reader {
	const struct fm_config *cfg;
	char *data_dir;
	char *mail_root;
	struct fm_index_reader *index; /* opened on first search */
};

int
fm_store_reader_open(const struct fm_config *cfg, const char *data_dir,
                     struct fm_store_reader **reader_r, struct fm_error *err)
{
	struct fm_store_reader *r = xcalloc(1, sizeof(*r));
	r->cfg = cfg;
	r->data_dir = data_dir != NULL ? xstrdup(data_dir) : fm_path_data_dir();
	r->mail_root = fm_store_mail_root(r->data_dir);
	*reader_r = r;
	return 0;
}

void
fm_store_reader_free(struct fm_store_reader **rp)
{
	struct fm_store_reader *r = *rp;
	if (r == NULL)
		return;
	fm_index_reader_free(&r->index);
	free(r->data_dir);
	free(r->mail_root);
	free(r);
	*rp = NULL;
}

static bool
known_account(const struct fm_store_reader *r, const char *account)
{
	for (size_t i = 0; i < r->cfg->n_accounts; i++)
		if (strcmp(r->cfg->accounts[i].name, account) == 0)
			return true;
	return false;
}

int
fm_store_folders(struct fm_store_reader *r, const char *account,
                 struct fm_store_folder **folders_r, size_t *n_r,
                 struct fm_error *err)
{
	*folders_r = NULL;
	*n_r = 0;
	if (account != NULL && !known_account(r, account))
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("there is no account named %s"), account);
	struct fm_store_folder *out = NULL;
	size_t n = 0;
	for (size_t i = 0; i < r->cfg->n_accounts; i++) {
		const char *name = r->cfg->accounts[i].name;
		if (account != NULL && strcmp(account, name) != 0)
			continue;
		char *dir = fm_path_join(r->mail_root, name);
		char **folders;
		size_t nf;
		int ret = store_list_folders(dir, &folders, &nf, err);
		for (size_t k = 0; k < nf && ret == 0; k++) {
			char *fdir = fm_path_join(dir, folders[k]);
			struct fm_summary *sum;
			bool changed;
			ret = store_summary_open(fdir, &sum, &changed, err);
			free(fdir);
			if (ret < 0)
				break;
			size_t unread = 0, total = fm_summary_count(sum);
			for (size_t j = 0; j < total; j++)
				if (!(fm_summary_at(sum, j)->flags &
				      FM_MAILDIR_SEEN))
					unread++;
			fm_summary_free(&sum);
			out = xreallocarray(out, n + 1, sizeof(*out));
			out[n++] = (struct fm_store_folder){
			    .account = xstrdup(name),
			    .folder = xstrdup(folders[k]),
			    .total = total,
			    .unread = unread,
			};
		}
		store_strv_free(folders, nf);
		free(dir);
		if (ret < 0) {
			fm_store_folders_free(out, n);
			return -1;
		}
	}
	*folders_r = out;
	*n_r = n;
	return 0;
}

void
fm_store_folders_free(struct fm_store_folder *folders, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(folders[i].account);
		free(folders[i].folder);
	}
	free(folders);
}

/* What a page owns. */
struct page_priv {
	struct fm_summary *sum;          /* folder views */
	struct fm_index_messages search; /* searches */
	char **strings;                  /* paths, accounts, folders */
	size_t n_strings;
};

static const char *
keep(struct page_priv *pp, char *s)
{
	pp->strings =
	    xreallocarray(pp->strings, pp->n_strings + 1, sizeof(*pp->strings));
	pp->strings[pp->n_strings++] = s;
	return s;
}

void
fm_store_page_free(struct fm_store_page *page)
{
	struct page_priv *pp = page->priv;
	if (pp != NULL) {
		fm_summary_free(&pp->sum);
		fm_index_messages_free(&pp->search);
		store_strv_free(pp->strings, pp->n_strings);
		free(pp);
	}
	free(page->rows);
	memset(page, 0, sizeof(*page));
}

int
fm_store_view(struct fm_store_reader *r, const char *account,
              const char *folder, enum fm_store_order order, size_t offset,
              size_t limit, struct fm_store_page *page, struct fm_error *err)
{
	memset(page, 0, sizeof(*page));
	if (!known_account(r, account))
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("there is no account named %s"), account);
	char *dir = fm_store_folder_dir(r->data_dir, account, folder);
	char *cur = fm_path_join(dir, "cur");
	bool exists = access(cur, F_OK) == 0 && strstr(folder, "..") == NULL;
	free(cur);
	if (!exists) {
		free(dir);
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("account %s has no folder %s"), account,
		                    folder);
	}
	struct page_priv *pp = xcalloc(1, sizeof(*pp));
	page->priv = pp;
	bool changed;
	if (store_summary_open(dir, &pp->sum, &changed, err) < 0) {
		free(dir);
		fm_store_page_free(page);
		return -1;
	}
	size_t n = fm_summary_count(pp->sum);
	size_t *idx = NULL;
	unsigned *depth = NULL;
	if (order == FM_STORE_THREADS) {
		struct fm_thread_msg *tm = xcalloc(n ? n : 1, sizeof(*tm));
		for (size_t i = 0; i < n; i++) {
			const struct fm_summary_entry *e =
			    fm_summary_at(pp->sum, i);
			tm[i] =
			    (struct fm_thread_msg){e->message_id, e->references,
			                           e->in_reply_to, e->date};
		}
		struct fm_thread_row *rows;
		fm_thread_build(tm, n, &rows);
		idx = xmalloc((n ? n : 1) * sizeof(*idx));
		depth = xmalloc((n ? n : 1) * sizeof(*depth));
		for (size_t i = 0; i < n; i++) {
			idx[i] = rows[i].msg;
			depth[i] = rows[i].depth;
		}
		free(rows);
		free(tm);
	} else {
		idx = fm_summary_by_date(pp->sum);
	}
	page->total = n;
	size_t start = offset < n ? offset : n;
	size_t count = n - start;
	if (limit > 0 && count > limit)
		count = limit;
	page->rows = xcalloc(count ? count : 1, sizeof(*page->rows));
	const char *acct = keep(pp, xstrdup(account));
	const char *fold = keep(pp, xstrdup(folder));
	for (size_t i = 0; i < count; i++) {
		const struct fm_summary_entry *e =
		    fm_summary_at(pp->sum, idx[start + i]);
		page->rows[i] = (struct fm_store_row){
		    .account = acct,
		    .folder = fold,
		    .base = e->base,
		    .path = keep(pp, fm_path_join(dir, e->file)),
		    .date = e->date,
		    .flags = e->flags,
		    .size = e->size,
		    .from = e->from,
		    .to = e->to,
		    .subject = e->subject,
		    .message_id = e->message_id,
		    .depth = depth != NULL ? depth[start + i] : 0,
		};
	}
	page->n = count;
	free(idx);
	free(depth);
	free(dir);
	return 0;
}

int
fm_store_search(struct fm_store_reader *r, const char *query, size_t offset,
                size_t limit, struct fm_store_page *page, struct fm_error *err)
{
	memset(page, 0, sizeof(*page));
	if (r->index == NULL) {
		char *db = fm_store_index_dir(r->data_dir);
		int ret = fm_index_reader_open(db, &r->index, err);
		free(db);
		if (ret < 0)
			return -1;
	}
	struct page_priv *pp = xcalloc(1, sizeof(*pp));
	page->priv = pp;
	if (fm_index_search(r->index, query, offset, limit, &pp->search, err) <
	    0) {
		fm_store_page_free(page);
		return -1;
	}
	size_t n = pp->search.count;
	page->rows = xcalloc(n ? n : 1, sizeof(*page->rows));
	for (size_t i = 0; i < n; i++) {
		const struct fm_index_message *m = &pp->search.items[i];
		/* folder is "ACCOUNT/FOLDER": split it for the row. */
		const char *slash = strchr(m->folder, '/');
		const char *acct = keep(
		    pp, slash != NULL
		            ? xstrndup(m->folder, (size_t)(slash - m->folder))
		            : xstrdup(m->folder));
		const char *base = strrchr(m->path, '/');
		base = base != NULL ? base + 1 : m->path;
		size_t bl;
		fm_maildir_base(base, &bl);
		uint32_t flags = fm_maildir_flags_parse(base);
		page->rows[i] = (struct fm_store_row){
		    .account = acct,
		    .folder = slash != NULL ? slash + 1 : "",
		    .base = keep(pp, xstrndup(base, bl)),
		    .path = m->path,
		    .date = m->date,
		    .flags = flags,
		    .from = m->from,
		    .subject = m->subject,
		    .message_id = m->message_id,
		};
	}
	page->n = n;
	return 0;
}

int
fm_store_locate(struct fm_store_reader *r, const char *id, char **path_r,
                struct fm_error *err)
{
	*path_r = NULL;
	bool by_msgid = strncmp(id, "id:", 3) == 0;
	const char *want = by_msgid ? id + 3 : NULL;
	char *account = NULL, *folder = NULL, *base = NULL;
	if (!by_msgid) {
		const char *first = strchr(id, '/'), *last = strrchr(id, '/');
		if (first == NULL || first == last)
			return fm_error_set(
			    err, FM_ERR_USAGE,
			    _("'%s' names no message: use "
			      "ACCOUNT/FOLDER/ID (as fulmar list "
			      "--ids shows) or id:MESSAGE-ID"),
			    id);
		account = xstrndup(id, (size_t)(first - id));
		folder = xstrndup(first + 1, (size_t)(last - first - 1));
		base = xstrdup(last + 1);
	}
	struct fm_store_folder *folders;
	size_t nf;
	int ret = fm_store_folders(r, account, &folders, &nf, err);
	for (size_t i = 0; i < nf && ret == 0 && *path_r == NULL; i++) {
		if (folder != NULL && strcmp(folders[i].folder, folder) != 0)
			continue;
		char *dir = fm_store_folder_dir(r->data_dir, folders[i].account,
		                                folders[i].folder);
		struct fm_summary *sum;
		bool changed;
		ret = store_summary_open(dir, &sum, &changed, err);
		for (size_t j = 0; ret == 0 && j < fm_summary_count(sum); j++) {
			const struct fm_summary_entry *e =
			    fm_summary_at(sum, j);
			bool hit = by_msgid
			               ? e->message_id != NULL &&
			                     strcmp(e->message_id, want) == 0
			               : strcmp(e->base, base) == 0;
			if (hit) {
				*path_r = fm_path_join(dir, e->file);
				break;
			}
		}
		if (ret == 0)
			fm_summary_free(&sum);
		free(dir);
	}
	fm_store_folders_free(folders, nf);
	if (ret == 0 && *path_r == NULL)
		ret = fm_error_set(err, FM_ERR_USAGE,
		                   _("there is no message %s"), id);
	free(account);
	free(folder);
	free(base);
	return ret;
}

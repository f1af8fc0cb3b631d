/* SPDX-License-Identifier: GPL-3.0-or-later */
/* What the store's writer and readers share: paths, folder discovery, and
 * summaries kept in agreement with the maildirs. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log/log.h"
#include "store/store_int.h"

char *
fm_store_mail_root(const char *data_dir)
{
	return fm_path_join(data_dir, "mail");
}

char *
fm_store_index_dir(const char *data_dir)
{
	return fm_path_join(data_dir, "index");
}

char *
fm_store_folder_dir(const char *data_dir, const char *account,
                    const char *folder)
{
	return xasprintf("%s/mail/%s/%s", data_dir, account, folder);
}

void
store_parser_init(struct store_parser *p)
{
	p->env = NULL;
	fm_buf_init(&p->from, 4096);
	fm_buf_init(&p->to, 16384);
	fm_buf_init(&p->refs, 65536);
}

void
store_parser_done(struct store_parser *p)
{
	fm_envelope_free(&p->env);
	fm_buf_free(&p->from);
	fm_buf_free(&p->to);
	fm_buf_free(&p->refs);
}

/* "Name <addr>", or the address alone; bounded (a cut list is fine). */
static void
put_address(struct fm_buf *b, const struct fm_mime_address *a)
{
	if (a->name != NULL && a->name[0] != '\0')
		fm_buf_printf(b, "%s <%s>", a->name, a->addr);
	else
		fm_buf_append_str(b, a->addr);
}

void
store_entry_from_envelope(struct store_parser *p, struct fm_envelope *env,
                          struct fm_summary_entry *e)
{
	fm_buf_reset(&p->from);
	fm_buf_reset(&p->to);
	fm_buf_reset(&p->refs);
	put_address(&p->from, &env->from);
	for (size_t i = 0; i < env->to_count; i++) {
		if (i > 0 && fm_buf_append_str(&p->to, ", ") < 0)
			break;
		put_address(&p->to, &env->to[i]);
	}
	for (size_t i = 0; i < env->references_count; i++)
		if (fm_buf_printf(&p->refs, "%s%s", i ? " " : "",
		                  env->references[i]) < 0)
			break;
	e->date = env->date_valid ? (int64_t)env->date : 0;
	e->size = env->size;
	e->from = p->from.data;
	e->to = p->to.data;
	e->subject = env->subject;
	e->message_id = env->message_id;
	e->in_reply_to = env->in_reply_to;
	e->references = p->refs.data;
}

int
store_parse_file(void *ctx, const char *path, struct fm_summary_entry *e)
{
	struct store_parser *p = ctx;
	fm_envelope_free(&p->env);
	struct fm_error err;
	fm_error_clear(&err);
	if (fm_mime_envelope_read(path, &p->env, &err) < 0) {
		/* Gone between listing and reading (or unreadable): the next
		 * rescan sees it again if it is still there. */
		fm_log_info("%s", err.user);
		return -1;
	}
	store_entry_from_envelope(p, p->env, e);
	return 0;
}

int
store_summary_open(const char *folder_dir, struct fm_summary **sum_r,
                   bool *changed_r, struct fm_error *err)
{
	char *path = fm_path_join(folder_dir, STORE_SUMMARY_FILE);
	struct fm_summary *sum = NULL;
	bool force = false;
	if (fm_summary_load(path, &sum, err) < 0) {
		if (err->cls != FM_ERR_LOCAL || access(path, F_OK) < 0) {
			free(path);
			return -1;
		}
		/* Derived data: say so, and rebuild it from the maildir. */
		fm_log_warn("%s", err->user);
		fm_error_clear(err);
		sum = fm_summary_new();
		force = true;
	}
	free(path);
	struct store_parser p;
	store_parser_init(&p);
	int ret = fm_summary_rescan(sum, folder_dir, force, store_parse_file,
	                            &p, changed_r, err);
	store_parser_done(&p);
	if (ret < 0) {
		fm_summary_free(&sum);
		return -1;
	}
	*sum_r = sum;
	return 0;
}

void
store_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool
is_maildir(const char *dir)
{
	static const char *const subs[] = {"cur", "new", "tmp"};
	for (size_t i = 0; i < FM_ARRAY_LEN(subs); i++) {
		char *p = fm_path_join(dir, subs[i]);
		struct stat st;
		bool ok = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
		free(p);
		if (!ok)
			return false;
	}
	return true;
}

struct strv {
	char **v;
	size_t n, cap;
};

static void
strv_push(struct strv *sv, char *s)
{
	if (sv->n == sv->cap) {
		sv->cap = sv->cap ? 2 * sv->cap : 16;
		sv->v = xreallocarray(sv->v, sv->cap, sizeof(*sv->v));
	}
	sv->v[sv->n++] = s;
}

/* Walks dir (depth-limited) for maildirs; rel is the path so far. */
static void
walk(const char *dir, const char *rel, unsigned depth, struct strv *out)
{
	if (depth > 32)
		return;
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		if (name[0] == '.')
			continue;
		if (depth > 0 &&
		    (strcmp(name, "cur") == 0 || strcmp(name, "new") == 0 ||
		     strcmp(name, "tmp") == 0))
			continue;
		char *sub = fm_path_join(dir, name);
		struct stat st;
		if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
			char *r = rel[0] ? xasprintf("%s/%s", rel, name)
			                 : xstrdup(name);
			if (is_maildir(sub))
				strv_push(out, xstrdup(r));
			walk(sub, r, depth + 1, out);
			free(r);
		}
		free(sub);
	}
	closedir(d);
}

static int
cmp_folder(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	bool ix = strcmp(x, "INBOX") == 0, iy = strcmp(y, "INBOX") == 0;
	if (ix != iy)
		return ix ? -1 : 1;
	return strcmp(x, y);
}

int
store_list_folders(const char *account_dir, char ***folders_r, size_t *n_r,
                   struct fm_error *err)
{
	struct strv sv = {0};
	walk(account_dir, "", 0, &sv);
	qsort(sv.v, sv.n, sizeof(*sv.v), cmp_folder);
	*folders_r = sv.v;
	*n_r = sv.n;
	return 0;
}

bool
fm_store_local_only(const char *folder)
{
	size_t n = strlen(FM_STORE_LOCAL_ONLY);
	return strcmp(folder, FM_STORE_OUTBOX) == 0 ||
	       (strncmp(folder, FM_STORE_LOCAL_ONLY, n) == 0 &&
	        (folder[n] == '\0' || folder[n] == '/'));
}

static char *
special_use_path(const char *data_dir, const char *account)
{
	char *root = fm_store_mail_root(data_dir);
	char *path =
	    xasprintf("%s/%s/%s/special-use", root, account, STORE_ACCOUNT_DIR);
	free(root);
	return path;
}

int
fm_store_set_special_use(const char *data_dir, const char *account,
                         const char *const *roles, const char *const *folders,
                         size_t n, struct fm_error *err)
{
	struct fm_buf b;
	fm_buf_init(&b, SIZE_MAX / 2);
	for (size_t i = 0; i < n; i++)
		fm_buf_printf(&b, "%s\t%s\n", roles[i], folders[i]);
	char *path = special_use_path(data_dir, account);
	/* Every pass says it again: written (and fsynced) only when it
	 * changed. */
	char *had = NULL;
	size_t had_len = 0;
	struct fm_error rerr;
	fm_error_clear(&rerr);
	bool same =
	    fm_record_read_file(path, 1 << 20, &had, &had_len, &rerr) == 0 &&
	    had_len == b.len && (b.len == 0 || memcmp(had, b.data, b.len) == 0);
	free(had);
	struct iovec iov = {.iov_base = b.data, .iov_len = b.len};
	int r = same ? 0 : fm_file_replace(path, &iov, 1, err);
	free(path);
	fm_buf_free(&b);
	return r;
}

char *
fm_store_special_use(const char *data_dir, const char *account,
                     const char *role)
{
	char *path = special_use_path(data_dir, account);
	char *data = NULL;
	size_t len = 0;
	struct fm_error err;
	fm_error_clear(&err);
	int r = fm_record_read_file(path, 1 << 20, &data, &len, &err);
	free(path);
	if (r != 0)
		return NULL;
	char *found = NULL;
	size_t rl = strlen(role);
	for (char *line = data; found == NULL && line < data + len;) {
		char *nl = memchr(line, '\n', (size_t)(data + len - line));
		if (nl == NULL)
			nl = data + len;
		if ((size_t)(nl - line) > rl + 1 &&
		    strncmp(line, role, rl) == 0 && line[rl] == '\t')
			found = xstrndup(line + rl + 1,
			                 (size_t)(nl - line) - rl - 1);
		line = nl + 1;
	}
	free(data);
	return found;
}

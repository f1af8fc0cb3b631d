/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The spool: a message written while another fulmar holds the account.
 * One file per message in mail/ACCOUNT/.fulmar/spool/, written with
 * fm_file_replace (whole or not at all, fsynced):
 *
 *   fulmar-spool 1
 *   from ADDR
 *   rcpt ADDR            (one line per recipient)
 *                        (an empty line)
 *   the message, as it will be queued
 *
 * The file name is the Outbox id it will get, so an import that a crash
 * cut between queueing and removing the file does not queue it twice. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log/log.h"
#include "smtp/smtp.h"
#include "store/store.h"

#define SPOOL_MAGIC "fulmar-spool 1\n"
/* The most a spool file may hold: the Outbox's limit and an envelope. */
#define SPOOL_MAX ((size_t)64 << 20)

static char *
spool_dir(const char *data_dir, const char *account)
{
	char *root = fm_store_mail_root(data_dir);
	char *dir = xasprintf("%s/%s/.fulmar/spool", root, account);
	free(root);
	return dir;
}

static bool
id_ok(const char *id)
{
	return id[0] != '\0' && id[0] != '.' &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789.-") ==
	           strlen(id) &&
	       strlen(id) < 64;
}

int
fm_smtp_spool(const char *data_dir, const struct fm_account *acct,
              const char *from, const char *const *rcpts, size_t n_rcpts,
              const char *data, size_t len, char **id_r, struct fm_error *err)
{
	if (id_r != NULL)
		*id_r = NULL;
	if (fm_smtp_address_check(from, err) < 0)
		return -1;
	for (size_t i = 0; i < n_rcpts; i++)
		if (fm_smtp_address_check(rcpts[i], err) < 0)
			return -1;
	if (n_rcpts == 0)
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("the message has no recipients"));
	char *dir = spool_dir(data_dir, acct->name);
	if (fm_path_mkdirs(dir, 0700, err) < 0) {
		free(dir);
		return -1;
	}
	unsigned char r[6];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		memset(r, 0, sizeof(r));
	char *id = xasprintf("s%llx-%02x%02x%02x%02x%02x%02x",
	                     (unsigned long long)fm_now_ms(), r[0], r[1], r[2],
	                     r[3], r[4], r[5]);
	struct fm_buf head;
	fm_buf_init(&head, SPOOL_MAX);
	fm_buf_append_str(&head, SPOOL_MAGIC);
	fm_buf_printf(&head, "from %s\n", from);
	for (size_t i = 0; i < n_rcpts; i++)
		fm_buf_printf(&head, "rcpt %s\n", rcpts[i]);
	fm_buf_append_char(&head, '\n');
	struct iovec iov[2] = {
	    {.iov_base = head.data, .iov_len = head.len},
	    {.iov_base = (void *)data, .iov_len = len},
	};
	char *path = fm_path_join(dir, id);
	int ret = fm_file_replace(path, iov, 2, err);
	free(path);
	fm_buf_free(&head);
	free(dir);
	if (ret == 0 && id_r != NULL)
		*id_r = id;
	else
		free(id);
	return ret;
}

/* Queues one spool file; 0 also when it is not one (it is left, named in
 * the log: the user decides). */
static int
import_one(const struct fm_account *acct, struct fm_store *store,
           const char *dir, const char *id, struct fm_error *err)
{
	char *path = fm_path_join(dir, id);
	char *data = NULL;
	size_t len = 0;
	int r = fm_record_read_file(path, SPOOL_MAX, &data, &len, err);
	if (r != 0) {
		free(path);
		return r > 0 ? 0 : -1;
	}
	const char *from = NULL;
	const char **rcpts = xcalloc(len / 6 + 1, sizeof(*rcpts));
	size_t n = 0;
	char *body = NULL;
	bool ok = len >= strlen(SPOOL_MAGIC) &&
	          memcmp(data, SPOOL_MAGIC, strlen(SPOOL_MAGIC)) == 0;
	char *p = data + (ok ? strlen(SPOOL_MAGIC) : 0);
	while (ok) {
		char *nl = memchr(p, '\n', (size_t)(data + len - p));
		if (nl == NULL) {
			ok = false;
			break;
		}
		*nl = '\0';
		if (p == nl) {
			body = nl + 1;
			break;
		}
		if (strncmp(p, "from ", 5) == 0)
			from = p + 5;
		else if (strncmp(p, "rcpt ", 5) == 0)
			rcpts[n++] = p + 5;
		else
			ok = false;
		p = nl + 1;
	}
	int ret = 0;
	if (!ok || from == NULL || n == 0 || body == NULL) {
		fm_log_warn(_("%s: %s is not a spooled message; it is left "
		              "where it is"),
		            acct->name, path);
	} else {
		ret = fm_smtp_queue_as(acct, store, id, from, rcpts, n, body,
		                       (size_t)(data + len - body), err);
		if (ret == 0 && unlink(path) < 0 && errno != ENOENT)
			ret = fm_error_set(err, FM_ERR_LOCAL,
			                   _("cannot remove %s: %s"), path,
			                   strerror(errno));
	}
	free(rcpts);
	free(data);
	free(path);
	return ret;
}

int
fm_smtp_spool_import(const struct fm_account *acct, struct fm_store *store,
                     size_t *n_r, struct fm_error *err)
{
	if (n_r != NULL)
		*n_r = 0;
	char *dir = spool_dir(fm_store_data_dir(store), acct->name);
	DIR *d = opendir(dir);
	if (d == NULL) {
		int e = errno;
		int r = e == ENOENT ? 0
		                    : fm_error_set(err, FM_ERR_LOCAL,
		                                   _("cannot read %s: %s"), dir,
		                                   strerror(e));
		free(dir);
		return r;
	}
	char **ids = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		/* fm_file_replace's leftovers end in ".tmp". */
		size_t l = strlen(de->d_name);
		if (!id_ok(de->d_name) ||
		    (l > 4 && strcmp(de->d_name + l - 4, ".tmp") == 0))
			continue;
		ids = xreallocarray(ids, n + 1, sizeof(*ids));
		ids[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	int ret = 0;
	for (size_t i = 0; i < n; i++) {
		if (ret == 0 && import_one(acct, store, dir, ids[i], err) < 0)
			ret = -1;
		else if (ret == 0 && n_r != NULL)
			(*n_r)++;
		free(ids[i]);
	}
	free(ids);
	if (n > 0 && ret == 0 && fm_fsync_dir(dir, err) < 0)
		ret = -1;
	free(dir);
	return ret;
}

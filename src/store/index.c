/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/index.h"
#include "store/maildir.h"
#include "store/nmlib.h"

_Static_assert((FM_MAILDIR_DRAFT | FM_MAILDIR_FLAGGED | FM_MAILDIR_PASSED |
                FM_MAILDIR_REPLIED | FM_MAILDIR_SEEN) == FM_INDEX_SYNCED_FLAGS,
               "FM_INDEX_SYNCED_FLAGS are the flags notmuch maps to tags");

/*
 * The commit gate. notmuch 0.37 has no NOTMUCH_STATUS_OPERATION_INVALIDATED
 * (it came with 0.40): when the writer commits while a reader walks its
 * results, Xapian throws DatabaseModifiedError out of notmuch_messages_get(),
 * nobody catches it, and the process aborts. Xapian's glass backend keeps
 * the blocks of the newest committed revision intact until the next commit
 * (only then may the writer reuse them), so a reader that moved to the
 * newest revision is safe as long as no commit happens while it reads.
 * Readers hold the gate shared from their reopen until their results are
 * copied (milliseconds); the writer holds it exclusively only to commit,
 * never while it indexes. The lock is process-wide because one process has
 * one writer, and it guards no data: it is synchronisation, not state.
 * Readers in another process (a `fulmar search` beside a running fulmar)
 * are not covered; they reopen right before reading, which leaves them the
 * short window of two commits during one search.
 */
#ifdef PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP
static pthread_rwlock_t commit_gate =
    PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
#else
static pthread_rwlock_t commit_gate = PTHREAD_RWLOCK_INITIALIZER;
#endif

/* notmuch keeps its database in DB_PATH/.notmuch when opened with an
 * explicit path and no config file. */
#define INDEX_SUBDIR ".notmuch"

/* Beside .notmuch: the lock that keeps a second writer out (see
 * writer_lock()). */
#define WRITER_LOCK "writer.lock"

/* query_prepare() adds this tag as an exclusion only to make notmuch parse
 * the query; exclusions are turned off, so it excludes nothing. */
#define PARSE_PROBE_TAG "fulmar-parse-probe"

struct fm_index_writer {
	const struct fm_nm *nm; /* libnotmuch, loaded by the open */
	notmuch_database_t *db; /* NULL after a failed rollback */
	char *db_path;
	char *mail_root; /* without trailing slashes */
	size_t root_len;
	unsigned long revision;
	int lock_fd; /* holds the flock on WRITER_LOCK */
};

struct fm_index_reader {
	const struct fm_nm *nm;
	notmuch_database_t *db;
	char *db_path;
	char *mail_root; /* as the writer recorded it */
	size_t root_len;
	unsigned long revision;
};

/* ------------------------------------------------------------------------
 * Errors.
 */

/* A failing database: FM_ERR_LOCAL with the way out in the sentence. what
 * is a translated past participle ("opened", "updated", "read"). notmuch's
 * last log line goes to the detail; it may belong to an earlier failure
 * (notmuch logs some errors only once per handle), hence "last". */
static int
db_error(const struct fm_nm *nm, struct fm_error *err, const char *db_path,
         const char *what, notmuch_status_t st, notmuch_database_t *db,
         const char *msg)
{
	fm_error_set(err, FM_ERR_LOCAL,
	             _("The search index in %s could not be %s (%s). The index "
	               "is derived from the mail and can be rebuilt with "
	               "\"fulmar reindex\"."),
	             db_path, what, nm->status_to_string(st));
	if (msg == NULL && db != NULL)
		msg = nm->database_status_string(db);
	char line[FM_ERROR_DETAIL_MAX];
	fm_str_printable(msg != NULL ? msg : "", line, sizeof(line));
	return fm_error_detail(err, "notmuch: %s; last notmuch message: %s",
	                       nm->status_to_string(st), line);
}

/* ------------------------------------------------------------------------
 * Small helpers.
 */

static char *
strip_slashes(const char *path)
{
	size_t len = strlen(path);
	while (len > 1 && path[len - 1] == '/')
		len--;
	return xstrndup(path, len);
}

static void
strv_free(char **v)
{
	if (v == NULL)
		return;
	for (char **p = v; *p != NULL; p++)
		free(*p);
	free(v);
}

/* Copies a notmuch tag list into a NULL-terminated array (sorted: notmuch
 * reads tags from Xapian terms, which are in order). */
static char **
tags_copy(const struct fm_nm *nm, notmuch_tags_t *tags, size_t *n_r)
{
	size_t n = 0, cap = 4;
	char **v = xreallocarray(NULL, cap, sizeof(*v));
	for (; tags != NULL && nm->tags_valid(tags);
	     nm->tags_move_to_next(tags)) {
		if (n + 1 >= cap) {
			cap *= 2;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[n++] = xstrdup(nm->tags_get(tags));
	}
	v[n] = NULL;
	if (tags != NULL)
		nm->tags_destroy(tags);
	*n_r = n;
	return v;
}

/* A Message-ID as notmuch keeps it: without the angle brackets. */
static char *
bare_message_id(const char *id)
{
	size_t len = strlen(id);
	if (len >= 2 && id[0] == '<' && id[len - 1] == '>')
		return xstrndup(id + 1, len - 2);
	return xstrdup(id);
}

/* The part of path below the mail root, or NULL when an absolute path is
 * not under it. Relative paths are already relative to the root. */
static const char *
relative_path(const char *root, size_t root_len, const char *path)
{
	if (path[0] != '/')
		return path;
	if (strncmp(path, root, root_len) != 0 || path[root_len] != '/')
		return NULL;
	path += root_len;
	while (*path == '/')
		path++;
	return path;
}

/* A file notmuch may be told about: under the mail root, not empty, no
 * ".." level that would climb out of it. */
static bool
path_ok(const struct fm_index_writer *w, const char *path)
{
	if (path == NULL)
		return false;
	const char *rel = relative_path(w->mail_root, w->root_len, path);
	if (rel == NULL || *rel == '\0')
		return false;
	for (const char *p = rel; *p != '\0';) {
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p += len;
		while (*p == '/')
			p++;
	}
	return true;
}

/* The folder of a file relative to the mail root: its directory without
 * the trailing cur/ or new/; "" when the file is not in a maildir under
 * the root. */
static char *
folder_of(const char *root, size_t root_len, const char *path)
{
	const char *rel = relative_path(root, root_len, path);
	if (rel == NULL)
		return xstrdup("");
	const char *slash = strrchr(rel, '/');
	if (slash == NULL)
		return xstrdup("");
	/* The directory must end in the level "cur" or "new": either it is
	 * just that (a maildir at the root, folder "") or ".../cur". */
	size_t dir_len = (size_t)(slash - rel);
	if (dir_len < 3 || (strncmp(slash - 3, "cur", 3) != 0 &&
	                    strncmp(slash - 3, "new", 3) != 0))
		return xstrdup("");
	if (dir_len == 3)
		return xstrdup("");
	if (slash[-4] != '/')
		return xstrdup("");
	return xstrndup(rel, dir_len - 4);
}

/* ------------------------------------------------------------------------
 * The writer.
 */

static void
gate_lock_write(void)
{
	pthread_rwlock_wrlock(&commit_gate);
}

static void
gate_unlock(void)
{
	pthread_rwlock_unlock(&commit_gate);
}

static void
gate_lock_read(void)
{
	pthread_rwlock_rdlock(&commit_gate);
}

/* Closes the database: commits what was committed with end_atomic and
 * discards an open transaction (notmuch_database_close() does that when
 * called inside an atomic section). Closing commits, so it takes the
 * gate. */
static void
writer_close(struct fm_index_writer *w)
{
	const struct fm_nm *nm = w->nm;
	if (w->db == NULL)
		return;
	gate_lock_write();
	nm->database_destroy(w->db);
	gate_unlock();
	w->db = NULL;
}

/*
 * Opens or creates the database and makes sure it carries fulmar's two
 * settings, both stored in the database itself (config path "" means no
 * file is read):
 *
 * - database.mail_root. With an explicit database path and no config file,
 *   notmuch 0.37 takes the mail root to be the database path itself; here
 *   the mail lives beside the index, not in it. notmuch reads the key from
 *   the database's own config at every open (readers included) before it
 *   falls back to that default, and resolves every file name, folder: and
 *   path: against it.
 *
 * - database.autocommit = 1. notmuch_database_end_atomic() commits a Xapian
 *   transaction without flushing it; only every database.autocommit-th
 *   (default 8000) atomic section is flushed, so readers would not see a
 *   batch for a long time. With 1, every batch is flushed and visible when
 *   fm_index_apply() returns. notmuch reads the value at open only, hence
 *   the close and second open after setting it.
 */
static int
writer_connect(struct fm_index_writer *w, struct fm_error *err)
{
	const struct fm_nm *nm = w->nm;
	char *dot = fm_path_join(w->db_path, INDEX_SUBDIR);
	struct stat st_buf;
	bool exists = stat(dot, &st_buf) == 0;
	int stat_errno = errno;
	free(dot);
	if (!exists && stat_errno != ENOENT)
		return fm_error_errno(err, FM_ERR_LOCAL, stat_errno,
		                      _("Cannot open the search index in %s"),
		                      w->db_path);

	for (int round = 0; round < 2; round++) {
		notmuch_database_t *db = NULL;
		char *msg = NULL;
		notmuch_status_t st;
		if (exists)
			st = nm->database_open_with_config(
			    w->db_path, NOTMUCH_DATABASE_MODE_READ_WRITE, "",
			    NULL, &db, &msg);
		else
			st = nm->database_create_with_config(w->db_path, "",
			                                     NULL, &db, &msg);
		if (st != NOTMUCH_STATUS_SUCCESS) {
			db_error(nm, err, w->db_path,
			         exists ? _("opened") : _("created"), st, NULL,
			         msg);
			free(msg);
			return -1;
		}
		free(msg);
		exists = true;

		const char *root = nm->config_get(db, NOTMUCH_CONFIG_MAIL_ROOT);
		const char *autocommit =
		    nm->config_get(db, NOTMUCH_CONFIG_AUTOCOMMIT);
		if (root != NULL && strcmp(root, w->mail_root) == 0 &&
		    autocommit != NULL && strcmp(autocommit, "1") == 0) {
			w->db = db;
			w->revision = nm->database_get_revision(db, NULL);
			return 0;
		}
		if (round == 1) {
			nm->database_destroy(db);
			fm_error_set(
			    err, FM_ERR_LOCAL,
			    _("The search index in %s does not keep "
			      "its settings. The index is derived from "
			      "the mail and can be rebuilt with "
			      "\"fulmar reindex\"."),
			    w->db_path);
			return fm_error_detail(
			    err,
			    "mail_root %s, autocommit %s after setting them",
			    root != NULL ? root : "(none)",
			    autocommit != NULL ? autocommit : "(none)");
		}
		st = nm->config_set(db, NOTMUCH_CONFIG_MAIL_ROOT, w->mail_root);
		if (st == NOTMUCH_STATUS_SUCCESS)
			st = nm->config_set(db, NOTMUCH_CONFIG_AUTOCOMMIT, "1");
		if (st != NOTMUCH_STATUS_SUCCESS) {
			db_error(nm, err, w->db_path, _("set up"), st, db,
			         NULL);
			nm->database_destroy(db);
			return -1;
		}
		w->db = db;
		writer_close(w);
	}
	return -1; /* not reached */
}

/*
 * notmuch opens the database with Xapian's DB_RETRY_LOCK: a second writer,
 * in this process or another (a `fulmar sync` from cron beside a running
 * fulmar), would wait for the lock forever. fulmar takes its own lock
 * first, without waiting, and says who holds it. flock() locks belong to
 * the open file, so a second writer in the same process is refused too.
 */
static int
writer_lock(struct fm_index_writer *w, struct fm_error *err)
{
	char *path = fm_path_join(w->db_path, WRITER_LOCK);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		fm_error_errno(err, FM_ERR_LOCAL, e, _("Cannot open %s"), path);
		free(path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		char buf[32];
		ssize_t got =
		    e == EWOULDBLOCK ? pread(fd, buf, sizeof(buf) - 1, 0) : -1;
		close(fd);
		long pid = 0;
		if (got > 0) {
			buf[got] = '\0';
			buf[strcspn(buf, "\n")] = '\0';
			if (fm_parse_long(buf, 1, 0x7fffffffL, &pid) < 0)
				pid = 0;
		}
		if (e != EWOULDBLOCK) {
			fm_error_errno(err, FM_ERR_LOCAL, e,
			               _("Cannot lock %s"), path);
		} else if (pid != 0) {
			fm_error_set(
			    err, FM_ERR_TEMPORARY,
			    _("The search index in %s is being updated "
			      "by another fulmar (process %ld)."),
			    w->db_path, pid);
		} else {
			fm_error_set(
			    err, FM_ERR_TEMPORARY,
			    _("The search index in %s is being updated "
			      "by another fulmar."),
			    w->db_path);
		}
		free(path);
		return -1;
	}
	free(path);
	char pid[32];
	int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
		/* Only the sentence for the next writer suffers. */
	}
	w->lock_fd = fd;
	return 0;
}

int
fm_index_writer_open(const char *db_path, const char *mail_root,
                     struct fm_index_writer **writer_r, struct fm_error *err)
{
	*writer_r = NULL;
	if (db_path[0] != '/' || mail_root[0] != '/')
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("The search index (%s) and the mail (%s) "
		                      "need absolute paths."),
		                    db_path, mail_root);
	/* libnotmuch is loaded here, at the first use of the index, not at
	 * every start of fulmar (nmlib.h). */
	const struct fm_nm *nm = fm_nm_load(err);
	if (nm == NULL)
		return -1;
	if (fm_path_mkdirs(db_path, 0700, err) < 0)
		return -1;
	struct fm_index_writer *w = xcalloc(1, sizeof(*w));
	w->nm = nm;
	w->db_path = strip_slashes(db_path);
	w->mail_root = strip_slashes(mail_root);
	w->root_len = strlen(w->mail_root);
	w->lock_fd = -1;
	if (writer_lock(w, err) < 0 || writer_connect(w, err) < 0) {
		if (w->lock_fd >= 0)
			close(w->lock_fd);
		free(w->db_path);
		free(w->mail_root);
		free(w);
		return -1;
	}
	*writer_r = w;
	return 0;
}

void
fm_index_writer_free(struct fm_index_writer **writer)
{
	struct fm_index_writer *w = *writer;
	if (w == NULL)
		return;
	writer_close(w);
	/* The lock goes last: the database is closed and committed. */
	close(w->lock_fd);
	free(w->db_path);
	free(w->mail_root);
	free(w);
	*writer = NULL;
}

unsigned long
fm_index_writer_revision(const struct fm_index_writer *writer)
{
	return writer->revision;
}

static int
writer_ready(struct fm_index_writer *w, struct fm_error *err)
{
	if (w->db != NULL)
		return 0;
	/* A rollback could not open the database again: try once more. */
	return writer_connect(w, err);
}

/* Throws away the open transaction by closing the database, and opens it
 * again so that the writer stays usable. err already says what failed; a
 * failing reopen is left for the next call (writer_ready()). */
static void
writer_rollback(struct fm_index_writer *w)
{
	writer_close(w);
	struct fm_error ignored;
	fm_error_clear(&ignored);
	(void)writer_connect(w, &ignored);
}

/* Commits the atomic section opened by writer_begin(). */
static notmuch_status_t
writer_commit(struct fm_index_writer *w)
{
	const struct fm_nm *nm = w->nm;
	gate_lock_write();
	notmuch_status_t st = nm->database_end_atomic(w->db);
	gate_unlock();
	if (st == NOTMUCH_STATUS_SUCCESS)
		w->revision = nm->database_get_revision(w->db, NULL);
	return st;
}

/* Sets the flag tags of the message with id from the maildir flags of its
 * files, if the message still exists. */
static notmuch_status_t
resync_flags(struct fm_index_writer *w, const char *id)
{
	const struct fm_nm *nm = w->nm;
	notmuch_message_t *m = NULL;
	notmuch_status_t st = nm->database_find_message(w->db, id, &m);
	if (st != NOTMUCH_STATUS_SUCCESS || m == NULL)
		return st;
	st = nm->message_maildir_flags_to_tags(m);
	nm->message_destroy(m);
	return st;
}

/* The Message-ID of the message that has the file path, or NULL (also on
 * error: *st_r says which). */
static char *
id_of_file(struct fm_index_writer *w, const char *path, notmuch_status_t *st_r)
{
	const struct fm_nm *nm = w->nm;
	notmuch_message_t *m = NULL;
	*st_r = nm->database_find_message_by_filename(w->db, path, &m);
	if (*st_r != NOTMUCH_STATUS_SUCCESS || m == NULL)
		return NULL;
	const char *id = nm->message_get_message_id(m);
	char *copy = id != NULL ? xstrdup(id) : NULL;
	if (id == NULL)
		*st_r = NOTMUCH_STATUS_XAPIAN_EXCEPTION;
	nm->message_destroy(m);
	return copy;
}

/* Indexes one file and, with flags, sets its message's flag tags. *id_r
 * (if not NULL) receives the message's id, or NULL when the file was
 * skipped. */
static notmuch_status_t
add_file(struct fm_index_writer *w, const char *path, bool flags,
         enum fm_index_outcome *outcome_r, char **id_r)
{
	const struct fm_nm *nm = w->nm;
	notmuch_message_t *m = NULL;
	if (id_r != NULL)
		*id_r = NULL;
	notmuch_status_t st = nm->database_index_file(w->db, path, NULL, &m);
	switch (st) {
	case NOTMUCH_STATUS_SUCCESS:
		*outcome_r = FM_INDEX_NEW;
		break;
	case NOTMUCH_STATUS_DUPLICATE_MESSAGE_ID:
		/* The file was added to the message notmuch returns, and that
		 * object's file list was refreshed by the addition. */
		*outcome_r = FM_INDEX_MERGED;
		break;
	case NOTMUCH_STATUS_FILE_NOT_EMAIL:
		*outcome_r = FM_INDEX_NOT_EMAIL;
		return NOTMUCH_STATUS_SUCCESS;
	case NOTMUCH_STATUS_FILE_ERROR:
		*outcome_r = FM_INDEX_UNREADABLE;
		return NOTMUCH_STATUS_SUCCESS;
	default:
		return st;
	}
	/* index_file() applies no maildir flags and no new-mail tags. */
	if (flags)
		st = nm->message_maildir_flags_to_tags(m);
	else
		st = NOTMUCH_STATUS_SUCCESS;
	if (st == NOTMUCH_STATUS_SUCCESS && id_r != NULL) {
		const char *id = nm->message_get_message_id(m);
		if (id != NULL)
			*id_r = xstrdup(id);
		else
			st = NOTMUCH_STATUS_XAPIAN_EXCEPTION;
	}
	nm->message_destroy(m);
	return st;
}

static notmuch_status_t
remove_file(struct fm_index_writer *w, const char *path,
            enum fm_index_outcome *outcome_r)
{
	const struct fm_nm *nm = w->nm;
	notmuch_status_t st;
	char *id = id_of_file(w, path, &st);
	if (st != NOTMUCH_STATUS_SUCCESS)
		return st;
	if (id == NULL) {
		*outcome_r = FM_INDEX_UNKNOWN;
		return NOTMUCH_STATUS_SUCCESS;
	}
	st = nm->database_remove_message(w->db, path);
	if (st == NOTMUCH_STATUS_SUCCESS) {
		*outcome_r = FM_INDEX_GONE;
	} else if (st == NOTMUCH_STATUS_DUPLICATE_MESSAGE_ID) {
		/* Other files remain; the flags they carry are now all the
		 * message has. */
		*outcome_r = FM_INDEX_KEPT;
		st = resync_flags(w, id);
	}
	free(id);
	return st;
}

/*
 * A rename is an addition and a removal, in that order: removing first
 * would delete a message whose only file this is, with its tags, and the
 * addition would then create a new message without them. Adding first
 * makes the new name a second file of the same message (DUPLICATE), after
 * which removing the old name leaves the message alone.
 */
static notmuch_status_t
rename_file(struct fm_index_writer *w, const char *from, const char *to,
            enum fm_index_outcome *outcome_r)
{
	const struct fm_nm *nm = w->nm;
	notmuch_status_t st;
	const char *rel_from = relative_path(w->mail_root, w->root_len, from);
	const char *rel_to = relative_path(w->mail_root, w->root_len, to);
	if (strcmp(rel_from, rel_to) == 0)
		return add_file(w, to, true, outcome_r, NULL);

	char *old_id = id_of_file(w, from, &st);
	if (st != NOTMUCH_STATUS_SUCCESS)
		return st;
	char *new_id = NULL;
	/* No flag tags yet: the message has both names until the old one
	 * goes, and its tags follow the names that remain, below. */
	st = add_file(w, to, false, outcome_r, &new_id);
	if (st == NOTMUCH_STATUS_SUCCESS && old_id != NULL) {
		st = nm->database_remove_message(w->db, from);
		if (st == NOTMUCH_STATUS_DUPLICATE_MESSAGE_ID)
			st = NOTMUCH_STATUS_SUCCESS;
	}
	/* The tags follow the files that remain: the new name's message,
	 * and the old one if the file now holds another message. */
	if (st == NOTMUCH_STATUS_SUCCESS && new_id != NULL)
		st = resync_flags(w, new_id);
	if (st == NOTMUCH_STATUS_SUCCESS && old_id != NULL &&
	    (new_id == NULL || strcmp(old_id, new_id) != 0))
		st = resync_flags(w, old_id);
	free(old_id);
	free(new_id);
	return st;
}

int
fm_index_apply(struct fm_index_writer *w, struct fm_index_op *ops, size_t n,
               unsigned long *revision_r, struct fm_error *err)
{
	const struct fm_nm *nm = w->nm;
	for (size_t i = 0; i < n; i++) {
		bool ok = path_ok(w, ops[i].path) &&
		          (ops[i].kind != FM_INDEX_RENAME ||
		           path_ok(w, ops[i].new_path));
		if (!ok) {
			const char *bad = ops[i].path;
			if (bad != NULL && path_ok(w, bad))
				bad = ops[i].new_path;
			return fm_error_set(err, FM_ERR_USAGE,
			                    _("The file %s is not in the mail "
			                      "directory %s."),
			                    bad != NULL ? bad : "(null)",
			                    w->mail_root);
		}
	}
	for (size_t i = 0; i < n; i++)
		ops[i].outcome = FM_INDEX_PENDING;
	if (writer_ready(w, err) < 0)
		return -1;
	if (n == 0) {
		if (revision_r != NULL)
			*revision_r = w->revision;
		return 0;
	}

	notmuch_status_t st = nm->database_begin_atomic(w->db);
	if (st != NOTMUCH_STATUS_SUCCESS)
		return db_error(nm, err, w->db_path, _("updated"), st, w->db,
		                NULL);
	for (size_t i = 0; i < n && st == NOTMUCH_STATUS_SUCCESS; i++) {
		struct fm_index_op *op = &ops[i];
		switch (op->kind) {
		case FM_INDEX_ADD:
			st = add_file(w, op->path, true, &op->outcome, NULL);
			break;
		case FM_INDEX_REMOVE:
			st = remove_file(w, op->path, &op->outcome);
			break;
		case FM_INDEX_RENAME:
			st = rename_file(w, op->path, op->new_path,
			                 &op->outcome);
			break;
		default:
			st = NOTMUCH_STATUS_ILLEGAL_ARGUMENT;
			break;
		}
	}
	if (st == NOTMUCH_STATUS_SUCCESS)
		st = writer_commit(w);
	if (st != NOTMUCH_STATUS_SUCCESS) {
		db_error(nm, err, w->db_path, _("updated"), st, w->db, NULL);
		writer_rollback(w);
		for (size_t i = 0; i < n; i++)
			ops[i].outcome = FM_INDEX_PENDING;
		return -1;
	}
	if (revision_r != NULL)
		*revision_r = w->revision;
	return 0;
}

static int
check_tags(const char *const *tags, struct fm_error *err)
{
	for (size_t i = 0; tags != NULL && tags[i] != NULL; i++) {
		size_t len = strlen(tags[i]);
		if (len == 0 || len > NOTMUCH_TAG_MAX) {
			char shown[64];
			fm_str_printable(tags[i], shown, sizeof(shown));
			return fm_error_set(
			    err, FM_ERR_USAGE,
			    _("The tag \"%s\" is empty or longer "
			      "than %d bytes."),
			    shown, NOTMUCH_TAG_MAX);
		}
	}
	return 0;
}

/* The maildir flags a message's tags call for (notmuch's table). */
static uint32_t
flags_of_tags(char *const *tags)
{
	uint32_t flags = FM_MAILDIR_SEEN;
	for (size_t i = 0; tags[i] != NULL; i++) {
		if (strcmp(tags[i], "draft") == 0)
			flags |= FM_MAILDIR_DRAFT;
		else if (strcmp(tags[i], "flagged") == 0)
			flags |= FM_MAILDIR_FLAGGED;
		else if (strcmp(tags[i], "passed") == 0)
			flags |= FM_MAILDIR_PASSED;
		else if (strcmp(tags[i], "replied") == 0)
			flags |= FM_MAILDIR_REPLIED;
		else if (strcmp(tags[i], "unread") == 0)
			flags &= ~(uint32_t)FM_MAILDIR_SEEN;
	}
	return flags;
}

static notmuch_status_t
tag_message(const struct fm_nm *nm, notmuch_message_t *m,
            const char *const *add, const char *const *remove,
            struct fm_index_tagged *result)
{
	notmuch_status_t st = nm->message_freeze(m);
	if (st != NOTMUCH_STATUS_SUCCESS)
		return st;
	for (size_t i = 0; remove != NULL && remove[i] != NULL && !st; i++)
		st = nm->message_remove_tag(m, remove[i]);
	for (size_t i = 0; add != NULL && add[i] != NULL && !st; i++)
		st = nm->message_add_tag(m, add[i]);
	if (st == NOTMUCH_STATUS_SUCCESS)
		st = nm->message_thaw(m);
	if (st != NOTMUCH_STATUS_SUCCESS)
		return st;

	size_t ntags;
	char **tags = tags_copy(nm, nm->message_get_tags(m), &ntags);
	result->flags = flags_of_tags(tags);
	strv_free(tags);

	notmuch_filenames_t *files = nm->message_get_filenames(m);
	if (files == NULL)
		return NOTMUCH_STATUS_XAPIAN_EXCEPTION;
	size_t cap = 2;
	result->paths = xreallocarray(NULL, cap, sizeof(char *));
	for (; nm->filenames_valid(files); nm->filenames_move_to_next(files)) {
		if (result->npaths + 1 >= cap) {
			cap *= 2;
			result->paths =
			    xreallocarray(result->paths, cap, sizeof(char *));
		}
		result->paths[result->npaths++] =
		    xstrdup(nm->filenames_get(files));
	}
	result->paths[result->npaths] = NULL;
	nm->filenames_destroy(files);
	return NOTMUCH_STATUS_SUCCESS;
}

int
fm_index_tag(struct fm_index_writer *w, const char *message_id,
             const char *const *add, const char *const *remove,
             struct fm_index_tagged *result_r, struct fm_error *err)
{
	const struct fm_nm *nm = w->nm;
	memset(result_r, 0, sizeof(*result_r));
	if (check_tags(add, err) < 0 || check_tags(remove, err) < 0)
		return -1;
	if (writer_ready(w, err) < 0)
		return -1;

	char *id = bare_message_id(message_id);
	notmuch_status_t st = nm->database_begin_atomic(w->db);
	if (st != NOTMUCH_STATUS_SUCCESS) {
		free(id);
		return db_error(nm, err, w->db_path, _("updated"), st, w->db,
		                NULL);
	}
	notmuch_message_t *m = NULL;
	st = nm->database_find_message(w->db, id, &m);
	if (st == NOTMUCH_STATUS_SUCCESS && m == NULL) {
		/* Nothing changed: close the empty section. */
		st = writer_commit(w);
		if (st == NOTMUCH_STATUS_SUCCESS) {
			char shown[256];
			fm_str_printable(id, shown, sizeof(shown));
			free(id);
			return fm_error_set(err, FM_ERR_LOCAL,
			                    _("No message with the Message-ID "
			                      "<%s> is in the search index."),
			                    shown);
		}
	}
	if (st == NOTMUCH_STATUS_SUCCESS)
		st = tag_message(nm, m, add, remove, result_r);
	if (m != NULL)
		nm->message_destroy(m);
	if (st == NOTMUCH_STATUS_SUCCESS)
		st = writer_commit(w);
	free(id);
	if (st != NOTMUCH_STATUS_SUCCESS) {
		db_error(nm, err, w->db_path, _("updated"), st, w->db, NULL);
		writer_rollback(w);
		fm_index_tagged_free(result_r);
		return -1;
	}
	result_r->revision = w->revision;
	return 0;
}

void
fm_index_tagged_free(struct fm_index_tagged *result)
{
	if (result == NULL)
		return;
	strv_free(result->paths);
	memset(result, 0, sizeof(*result));
}

/* ------------------------------------------------------------------------
 * Readers.
 */

int
fm_index_reader_open(const char *db_path, struct fm_index_reader **reader_r,
                     struct fm_error *err)
{
	*reader_r = NULL;
	const struct fm_nm *nm = fm_nm_load(err);
	if (nm == NULL)
		return -1;
	notmuch_database_t *db = NULL;
	char *msg = NULL;
	notmuch_status_t st = nm->database_open_with_config(
	    db_path, NOTMUCH_DATABASE_MODE_READ_ONLY, "", NULL, &db, &msg);
	if (st != NOTMUCH_STATUS_SUCCESS) {
		db_error(nm, err, db_path, _("opened"), st, NULL, msg);
		free(msg);
		return -1;
	}
	free(msg);
	struct fm_index_reader *r = xcalloc(1, sizeof(*r));
	r->nm = nm;
	r->db = db;
	r->db_path = xstrdup(db_path);
	const char *root = nm->config_get(db, NOTMUCH_CONFIG_MAIL_ROOT);
	r->mail_root = strip_slashes(root != NULL ? root : "/");
	r->root_len = strlen(r->mail_root);
	r->revision = nm->database_get_revision(db, NULL);
	*reader_r = r;
	return 0;
}

void
fm_index_reader_free(struct fm_index_reader **reader)
{
	struct fm_index_reader *r = *reader;
	if (r == NULL)
		return;
	r->nm->database_destroy(r->db);
	free(r->db_path);
	free(r->mail_root);
	free(r);
	*reader = NULL;
}

unsigned long
fm_index_reader_revision(const struct fm_index_reader *reader)
{
	return reader->revision;
}

/* Moves to the newest committed revision; the caller holds the gate. */
static notmuch_status_t
reader_refresh(struct fm_index_reader *r, bool *changed_r)
{
	const struct fm_nm *nm = r->nm;
	notmuch_status_t st =
	    nm->database_reopen(r->db, NOTMUCH_DATABASE_MODE_READ_ONLY);
	if (st != NOTMUCH_STATUS_SUCCESS)
		return st;
	unsigned long rev = nm->database_get_revision(r->db, NULL);
	if (changed_r != NULL)
		*changed_r = rev != r->revision;
	r->revision = rev;
	return NOTMUCH_STATUS_SUCCESS;
}

int
fm_index_reader_reopen(struct fm_index_reader *r, bool *changed_r,
                       struct fm_error *err)
{
	const struct fm_nm *nm = r->nm;
	gate_lock_read();
	notmuch_status_t st = reader_refresh(r, changed_r);
	gate_unlock();
	if (st != NOTMUCH_STATUS_SUCCESS)
		return db_error(nm, err, r->db_path, _("read"), st, r->db,
		                NULL);
	return 0;
}

/* What a reader operation runs once the query is ready; it copies its
 * results into ctx and returns a notmuch status. */
typedef notmuch_status_t (*reader_fn)(struct fm_index_reader *r,
                                      notmuch_query_t *q, void *ctx);
/* Throws away what a failed attempt copied. */
typedef void (*reader_reset_fn)(void *ctx);

/*
 * Creates the query and parses it at once. notmuch parses lazily and
 * reports a syntax error as NOTMUCH_STATUS_XAPIAN_EXCEPTION (not
 * BAD_QUERY_SYNTAX, which is for the S-expression syntax), the same status
 * a broken database gives. notmuch_query_add_tag_exclude() parses and does
 * nothing else (its documentation names the parse as its likely failure),
 * so it tells the two apart; with exclusions turned off the probe tag has
 * no effect on the results.
 */
static notmuch_status_t
query_prepare(struct fm_index_reader *r, const char *query,
              notmuch_query_t **q_r, bool *syntax_r)
{
	const struct fm_nm *nm = r->nm;
	*syntax_r = false;
	*q_r = nm->query_create(r->db, query);
	if (*q_r == NULL)
		return NOTMUCH_STATUS_OUT_OF_MEMORY;
	nm->query_set_sort(*q_r, NOTMUCH_SORT_NEWEST_FIRST);
	nm->query_set_omit_excluded(*q_r, NOTMUCH_EXCLUDE_FALSE);
	notmuch_status_t st = nm->query_add_tag_exclude(*q_r, PARSE_PROBE_TAG);
	if (st == NOTMUCH_STATUS_IGNORED)
		st = NOTMUCH_STATUS_SUCCESS;
	if (st != NOTMUCH_STATUS_SUCCESS) {
		*syntax_r = st == NOTMUCH_STATUS_XAPIAN_EXCEPTION;
		nm->query_destroy(*q_r);
		*q_r = NULL;
	}
	return st;
}

/* Runs fn under the gate on the newest revision; a database error gets one
 * reopen and retry (another process may have moved the database on since
 * the reopen). */
static int
reader_run(struct fm_index_reader *r, const char *query, reader_fn fn,
           reader_reset_fn reset, void *ctx, struct fm_error *err)
{
	const struct fm_nm *nm = r->nm;
	int ret = -1;
	if (query == NULL)
		query = "";
	gate_lock_read();
	for (int attempt = 0; attempt < 2; attempt++) {
		notmuch_status_t st = reader_refresh(r, NULL);
		if (st != NOTMUCH_STATUS_SUCCESS) {
			db_error(nm, err, r->db_path, _("read"), st, r->db,
			         NULL);
			break;
		}
		notmuch_query_t *q = NULL;
		bool syntax = false;
		st = query_prepare(r, query, &q, &syntax);
		if (syntax) {
			char shown[256];
			fm_str_printable(query, shown, sizeof(shown));
			fm_error_set(err, FM_ERR_USAGE,
			             _("The search query \"%s\" is not valid "
			               "notmuch query syntax."),
			             shown);
			fm_error_detail(err, "notmuch: %s",
			                nm->status_to_string(st));
			break;
		}
		if (st == NOTMUCH_STATUS_SUCCESS) {
			st = fn(r, q, ctx);
			nm->query_destroy(q);
		}
		if (st == NOTMUCH_STATUS_SUCCESS) {
			ret = 0;
			break;
		}
		reset(ctx);
		if (attempt == 1 || st != NOTMUCH_STATUS_XAPIAN_EXCEPTION)
			db_error(nm, err, r->db_path, _("read"), st, r->db,
			         NULL);
		if (st != NOTMUCH_STATUS_XAPIAN_EXCEPTION)
			break;
	}
	gate_unlock();
	return ret;
}

/* Message search. */
struct search_ctx {
	size_t offset, limit;
	struct fm_index_messages *page;
	size_t cap;
};

static void
message_clear(struct fm_index_message *m)
{
	free(m->message_id);
	free(m->thread_id);
	free(m->path);
	free(m->folder);
	free(m->from);
	free(m->subject);
	strv_free(m->tags);
}

static notmuch_status_t
message_copy(struct fm_index_reader *r, notmuch_message_t *m,
             struct fm_index_message *out)
{
	const struct fm_nm *nm = r->nm;
	const char *id = nm->message_get_message_id(m);
	const char *thread = nm->message_get_thread_id(m);
	const char *path = nm->message_get_filename(m);
	if (id == NULL || thread == NULL || path == NULL)
		return NOTMUCH_STATUS_XAPIAN_EXCEPTION;
	const char *from = nm->message_get_header(m, "from");
	const char *subject = nm->message_get_header(m, "subject");
	memset(out, 0, sizeof(*out));
	out->message_id = xstrdup(id);
	out->thread_id = xstrdup(thread);
	out->path = xstrdup(path);
	out->folder = folder_of(r->mail_root, r->root_len, path);
	out->date = (int64_t)nm->message_get_date(m);
	out->from = xstrdup(from != NULL ? from : "");
	out->subject = xstrdup(subject != NULL ? subject : "");
	out->tags = tags_copy(nm, nm->message_get_tags(m), &out->ntags);
	out->nfiles = nm->message_count_files(m);
	return NOTMUCH_STATUS_SUCCESS;
}

static notmuch_status_t
search_fn(struct fm_index_reader *r, notmuch_query_t *q, void *vctx)
{
	const struct fm_nm *nm = r->nm;
	struct search_ctx *ctx = vctx;
	struct fm_index_messages *page = ctx->page;
	notmuch_messages_t *msgs = NULL;
	notmuch_status_t st = nm->query_search_messages(q, &msgs);
	if (st != NOTMUCH_STATUS_SUCCESS)
		return st;
	/* Skipping with move_to_next() only steps the match set; a message
	 * is read from the database only by notmuch_messages_get(). */
	size_t index = 0;
	for (; nm->messages_valid(msgs);
	     nm->messages_move_to_next(msgs), index++) {
		if (index < ctx->offset)
			continue;
		if (ctx->limit != 0 && page->count >= ctx->limit)
			break;
		notmuch_message_t *m = nm->messages_get(msgs);
		if (m == NULL) {
			st = NOTMUCH_STATUS_XAPIAN_EXCEPTION;
			break;
		}
		if (page->count == ctx->cap) {
			ctx->cap = ctx->cap != 0 ? 2 * ctx->cap : 16;
			page->items = xreallocarray(page->items, ctx->cap,
			                            sizeof(*page->items));
		}
		st = message_copy(r, m, &page->items[page->count]);
		nm->message_destroy(m);
		if (st != NOTMUCH_STATUS_SUCCESS)
			break;
		page->count++;
	}
	nm->messages_destroy(msgs);
	return st;
}

static void
search_reset(void *vctx)
{
	struct search_ctx *ctx = vctx;
	fm_index_messages_free(ctx->page);
	ctx->cap = 0;
}

int
fm_index_search(struct fm_index_reader *r, const char *query, size_t offset,
                size_t limit, struct fm_index_messages *page_r,
                struct fm_error *err)
{
	memset(page_r, 0, sizeof(*page_r));
	struct search_ctx ctx = {
	    .offset = offset, .limit = limit, .page = page_r};
	if (reader_run(r, query, search_fn, search_reset, &ctx, err) < 0)
		return -1;
	page_r->revision = r->revision;
	return 0;
}

void
fm_index_messages_free(struct fm_index_messages *page)
{
	if (page == NULL)
		return;
	for (size_t i = 0; i < page->count; i++)
		message_clear(&page->items[i]);
	free(page->items);
	memset(page, 0, sizeof(*page));
}

/* Counting. */
static notmuch_status_t
count_fn(struct fm_index_reader *r, notmuch_query_t *q, void *ctx)
{
	return r->nm->query_count_messages(q, ctx);
}

static void
count_reset(void *ctx)
{
	*(unsigned *)ctx = 0;
}

int
fm_index_count(struct fm_index_reader *r, const char *query, unsigned *count_r,
               struct fm_error *err)
{
	*count_r = 0;
	return reader_run(r, query, count_fn, count_reset, count_r, err);
}

/* Thread search. */
struct threads_ctx {
	size_t offset, limit;
	struct fm_index_threads *page;
	size_t cap;
};

static void
thread_clear(struct fm_index_thread *t)
{
	free(t->thread_id);
	free(t->subject);
	free(t->authors);
	strv_free(t->tags);
}

static notmuch_status_t
thread_copy(const struct fm_nm *nm, notmuch_thread_t *nt,
            struct fm_index_thread *out)
{
	const char *id = nm->thread_get_thread_id(nt);
	if (id == NULL)
		return NOTMUCH_STATUS_XAPIAN_EXCEPTION;
	const char *subject = nm->thread_get_subject(nt);
	const char *authors = nm->thread_get_authors(nt);
	memset(out, 0, sizeof(*out));
	out->thread_id = xstrdup(id);
	out->subject = xstrdup(subject != NULL ? subject : "");
	out->authors = xstrdup(authors != NULL ? authors : "");
	out->oldest = (int64_t)nm->thread_get_oldest_date(nt);
	out->newest = (int64_t)nm->thread_get_newest_date(nt);
	out->total = (unsigned)nm->thread_get_total_messages(nt);
	out->matched = (unsigned)nm->thread_get_matched_messages(nt);
	out->tags = tags_copy(nm, nm->thread_get_tags(nt), &out->ntags);
	return NOTMUCH_STATUS_SUCCESS;
}

static notmuch_status_t
threads_fn(struct fm_index_reader *r, notmuch_query_t *q, void *vctx)
{
	const struct fm_nm *nm = r->nm;
	struct threads_ctx *ctx = vctx;
	struct fm_index_threads *page = ctx->page;
	notmuch_threads_t *threads = NULL;
	notmuch_status_t st = nm->query_search_threads(q, &threads);
	if (st != NOTMUCH_STATUS_SUCCESS)
		return st;
	/* Unlike messages, threads cannot be skipped unread: notmuch builds
	 * each thread to learn which matches it swallows. */
	size_t index = 0;
	for (; nm->threads_valid(threads);
	     nm->threads_move_to_next(threads), index++) {
		if (ctx->limit != 0 && page->count >= ctx->limit)
			break;
		notmuch_thread_t *nt = nm->threads_get(threads);
		if (nt == NULL) {
			st = NOTMUCH_STATUS_XAPIAN_EXCEPTION;
			break;
		}
		if (index >= ctx->offset) {
			if (page->count == ctx->cap) {
				ctx->cap = ctx->cap != 0 ? 2 * ctx->cap : 16;
				page->items =
				    xreallocarray(page->items, ctx->cap,
				                  sizeof(*page->items));
			}
			st = thread_copy(nm, nt, &page->items[page->count]);
			if (st == NOTMUCH_STATUS_SUCCESS)
				page->count++;
		}
		nm->thread_destroy(nt);
		if (st != NOTMUCH_STATUS_SUCCESS)
			break;
	}
	nm->threads_destroy(threads);
	return st;
}

static void
threads_reset(void *vctx)
{
	struct threads_ctx *ctx = vctx;
	fm_index_threads_free(ctx->page);
	ctx->cap = 0;
}

int
fm_index_search_threads(struct fm_index_reader *r, const char *query,
                        size_t offset, size_t limit,
                        struct fm_index_threads *page_r, struct fm_error *err)
{
	memset(page_r, 0, sizeof(*page_r));
	struct threads_ctx ctx = {
	    .offset = offset, .limit = limit, .page = page_r};
	if (reader_run(r, query, threads_fn, threads_reset, &ctx, err) < 0)
		return -1;
	page_r->revision = r->revision;
	return 0;
}

void
fm_index_threads_free(struct fm_index_threads *page)
{
	if (page == NULL)
		return;
	for (size_t i = 0; i < page->count; i++)
		thread_clear(&page->items[i]);
	free(page->items);
	memset(page, 0, sizeof(*page));
}

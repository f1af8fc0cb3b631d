/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The messages a pass puts into a folder on the server, by APPEND or by
 * replaying a local move, that the folder's state may not record: listed
 * durably before the first APPEND of a pass, and before each move, so that
 * a copy the server got but the state never heard of (a kill between the
 * command and the state's save, or a server without UIDPLUS, which names
 * no UID) can still be found by Message-ID and size after the user deleted
 * the local file. While the file is there, the folder's plan pairs the two
 * copies itself; once it is gone, only this list says what to look for
 * (folders.c, step 3). A pass that ran to its end keeps only what its
 * state still lacks and has a file for (sync.c).
 *
 * FOLDER/.fulmar-uploads; entries are appended (fdatasync), so a bulk of
 * moves costs no rewrites, and the list is rewritten whole when a pass
 * prunes it:
 *
 *     fulmar-uploads 1\n
 *     BASE SIZE MESSAGE-ID\n        (fm_record_put fields; SIZE decimal)
 *
 * A later line of a base replaces an earlier one; a line a crash cut short
 * is ended by the next append and, like any line that does not parse,
 * ignored.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "imap/imap_int.h"
#include "log/log.h"

#define UPLOADS_FILE ".fulmar-uploads"
#define UPLOADS_MAGIC "fulmar-uploads 1\n"
/* Far more than one pass's uploads ever describe. */
#define UPLOADS_MAX ((size_t)64 << 20)

static char *
uploads_path(struct pass *p, const char *local)
{
	return imap_folder_path(p, local, UPLOADS_FILE);
}

void
imap_uploads_free(struct imap_uploads *u)
{
	for (size_t i = 0; i < u->n; i++) {
		free(u->v[i].base);
		free(u->v[i].msgid);
	}
	free(u->v);
	u->v = NULL;
	u->n = 0;
}

const struct imap_upload *
imap_uploads_find(const struct imap_uploads *u, const char *base)
{
	for (size_t i = 0; i < u->n; i++)
		if (strcmp(u->v[i].base, base) == 0)
			return &u->v[i];
	return NULL;
}

bool
imap_uploads_add(struct imap_uploads *u, const char *base, const char *msgid,
                 uint64_t size)
{
	if (msgid != NULL && msgid[0] == '\0')
		msgid = NULL;
	struct imap_upload *have =
	    (struct imap_upload *)imap_uploads_find(u, base);
	if (have != NULL) {
		if (have->size == size &&
		    (have->msgid == NULL
		         ? msgid == NULL
		         : msgid != NULL && strcmp(have->msgid, msgid) == 0))
			return false;
		free(have->msgid);
		have->msgid = msgid != NULL ? xstrdup(msgid) : NULL;
		have->size = size;
		return true;
	}
	u->v = xreallocarray(u->v, u->n + 1, sizeof(*u->v));
	u->v[u->n++] = (struct imap_upload){
	    .base = xstrdup(base),
	    .msgid = msgid != NULL ? xstrdup(msgid) : NULL,
	    .size = size,
	};
	return true;
}

void
imap_uploads_load(struct pass *p, const char *local, struct imap_uploads *u)
{
	memset(u, 0, sizeof(*u));
	char *path = uploads_path(p, local);
	char *data = NULL;
	size_t len = 0;
	struct fm_error e;
	fm_error_clear(&e);
	int r = fm_record_read_file(path, UPLOADS_MAX, &data, &len, &e);
	size_t ml = strlen(UPLOADS_MAGIC);
	if (r < 0) {
		fm_log_warn("%s", e.user);
	} else if (r == 0 &&
	           (len < ml || memcmp(data, UPLOADS_MAGIC, ml) != 0)) {
		fm_log_warn(_("%s is not a list of uploads; ignoring it"),
		            path);
	} else if (r == 0) {
		char *line = data + ml;
		for (char *nl; (nl = strchr(line, '\n')) != NULL;
		     line = nl + 1) {
			*nl = '\0';
			char *f[3], *base, *msgid;
			uint64_t size;
			if (fm_record_split(line, f, 3) < 0 ||
			    fm_record_unescape(f[0], &base) < 0 ||
			    base == NULL ||
			    fm_record_parse_u64(f[1], 10, UINT64_MAX, &size) <
			        0 ||
			    fm_record_unescape(f[2], &msgid) < 0)
				continue; /* a line it did not write */
			imap_uploads_add(u, base, msgid, size);
		}
	}
	free(data);
	free(path);
}

static void
put_line(struct fm_buf *b, const struct imap_upload *u)
{
	fm_record_put(b, u->base);
	fm_buf_append_char(b, ' ');
	fm_record_put_u64(b, u->size, 10);
	fm_buf_append_char(b, ' ');
	fm_record_put(b, u->msgid);
	fm_buf_append_char(b, '\n');
}

int
imap_uploads_append(struct pass *p, const char *local,
                    const struct imap_upload *v, size_t n, struct fm_error *err)
{
	if (n == 0)
		return 0;
	char *path = uploads_path(p, local);
	int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	struct stat st;
	int r = fd < 0 || fstat(fd, &st) < 0 ? -1 : 0;
	size_t ml = strlen(UPLOADS_MAGIC);
	bool fresh = r == 0 && (size_t)st.st_size < ml;
	char last = '\n';
	if (r == 0 && fresh)
		r = ftruncate(fd, 0);
	else if (r == 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
		r = -1;
	struct fm_buf b;
	fm_buf_init(&b, UPLOADS_MAX);
	if (fresh)
		fm_buf_append_str(&b, UPLOADS_MAGIC);
	else if (last != '\n')
		fm_buf_append_char(&b, '\n'); /* ends a torn line */
	for (size_t i = 0; i < n; i++)
		put_line(&b, &v[i]);
	if (r == 0)
		r = fm_write_all(fd, b.data, b.len);
	if (r == 0)
		r = fdatasync(fd);
	int e = errno;
	if (fd >= 0 && close(fd) < 0 && r == 0) {
		r = -1;
		e = errno;
	}
	fm_buf_free(&b);
	if (r < 0)
		fm_error_errno(err, FM_ERR_LOCAL, e,
		               _("Cannot write the file %s"), path);
	else if (fresh)
		r = fm_fsync_parent(path, err);
	free(path);
	return r;
}

int
imap_uploads_save(struct pass *p, const char *local,
                  const struct imap_uploads *u, struct fm_error *err)
{
	char *path = uploads_path(p, local);
	int r = 0;
	if (u->n == 0) {
		if (unlink(path) < 0 && errno != ENOENT)
			r = fm_error_errno(err, FM_ERR_LOCAL, errno,
			                   _("Cannot remove the file %s"),
			                   path);
		free(path);
		return r;
	}
	struct fm_buf b;
	fm_buf_init(&b, UPLOADS_MAX);
	fm_buf_append_str(&b, UPLOADS_MAGIC);
	for (size_t i = 0; i < u->n; i++)
		put_line(&b, &u->v[i]);
	struct iovec iov = {.iov_base = b.data, .iov_len = b.len};
	r = fm_file_replace(path, &iov, 1, err);
	fm_buf_free(&b);
	free(path);
	return r;
}

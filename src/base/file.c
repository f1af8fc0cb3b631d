/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Durable file writes: everything fulmar keeps (messages, state, journal,
 * summaries) is written new, fsynced, renamed into place and its directory
 * fsynced, so a crash leaves either the old file or the new one. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/base.h"

int
fm_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
fm_fsync_dir(const char *dir, struct fm_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fm_error_errno(err, FM_ERR_LOCAL, errno,
		                      _("Cannot open the folder %s"), dir);
	/* Some file systems cannot fsync a directory (EINVAL): nothing more
	 * can be done there. */
	if (fsync(fd) < 0 && errno != EINVAL) {
		int e = errno;
		close(fd);
		return fm_error_errno(err, FM_ERR_LOCAL, e,
		                      _("Cannot write the folder %s to disk"),
		                      dir);
	}
	close(fd);
	return 0;
}

int
fm_fsync_parent(const char *path, struct fm_error *err)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash == NULL   ? xstrdup(".")
	            : slash == path ? xstrdup("/")
	                            : xstrndup(path, (size_t)(slash - path));
	int rc = fm_fsync_dir(dir, err);
	free(dir);
	return rc;
}

/* Writes PATH.tmp, renames it over path; durable: fsyncs the file before
 * and the directory after. */
static int
replace(const char *path, const struct iovec *iov, int iovcnt, bool durable,
        struct fm_error *err)
{
	char *tmp = xasprintf("%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		fm_error_errno(err, FM_ERR_LOCAL, errno,
		               _("Cannot create the file %s"), tmp);
		free(tmp);
		return -1;
	}
	int rc = 0;
	for (int i = 0; i < iovcnt && rc == 0; i++)
		rc = fm_write_all(fd, iov[i].iov_base, iov[i].iov_len);
	if (rc == 0 && durable)
		rc = fsync(fd);
	int e = errno;
	if (close(fd) < 0 && rc == 0) {
		rc = -1;
		e = errno;
	}
	if (rc == 0 && rename(tmp, path) < 0) {
		rc = -1;
		e = errno;
	}
	if (rc < 0) {
		fm_error_errno(err, FM_ERR_LOCAL, e,
		               _("Cannot write the file %s"), path);
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return durable ? fm_fsync_parent(path, err) : 0;
}

int
fm_file_replace(const char *path, const struct iovec *iov, int iovcnt,
                struct fm_error *err)
{
	return replace(path, iov, iovcnt, true, err);
}

int
fm_file_replace_cache(const char *path, const void *data, size_t len,
                      struct fm_error *err)
{
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
	return replace(path, &iov, 1, false, err);
}

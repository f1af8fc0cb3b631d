/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "store/lock.h"

struct fm_lock {
	int fd;
	char *path;
};

/* Reads the PID written in the file; 0 if none. */
static pid_t
read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *nl = strchr(buf, '\n');
	if (nl != NULL)
		*nl = '\0';
	long pid;
	if (fm_parse_long(buf, 1, 0x7fffffff, &pid) < 0)
		return 0;
	return (pid_t)pid;
}

pid_t
fm_lock_holder(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	pid_t pid = 0;
	/* Held if we cannot take a shared lock without waiting. */
	if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK)
		pid = read_pid(fd);
	else
		flock(fd, LOCK_UN);
	close(fd);
	return pid;
}

int
fm_lock_take(const char *path, bool wait,
             void (*on_wait)(void *ctx, pid_t holder), void *ctx,
             struct fm_lock **lock_r, struct fm_error *err)
{
	*lock_r = NULL;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return fm_error_errno(err, FM_ERR_LOCAL, errno,
		                      _("cannot open the lock file %s"), path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK) {
			int e = errno;
			close(fd);
			return fm_error_errno(err, FM_ERR_LOCAL, e,
			                      _("cannot lock %s"), path);
		}
		pid_t holder = read_pid(fd);
		if (!wait) {
			close(fd);
			return fm_error_set(
			    err, FM_ERR_TEMPORARY,
			    _("another fulmar (pid %ld) is writing this "
			      "account (lock %s); try again when it is "
			      "done"),
			    (long)holder, path);
		}
		if (on_wait != NULL)
			on_wait(ctx, holder);
		while (flock(fd, LOCK_EX) < 0) {
			if (errno != EINTR) {
				int e = errno;
				close(fd);
				return fm_error_errno(err, FM_ERR_LOCAL, e,
				                      _("cannot lock %s"),
				                      path);
			}
		}
	}
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		int e = errno;
		close(fd);
		return fm_error_errno(err, FM_ERR_LOCAL, e,
		                      _("cannot write the lock file %s"), path);
	}
	struct fm_lock *l = xcalloc(1, sizeof(*l));
	l->fd = fd;
	l->path = xstrdup(path);
	*lock_r = l;
	return 0;
}

void
fm_lock_release(struct fm_lock **lock)
{
	struct fm_lock *l = *lock;
	if (l == NULL)
		return;
	if (ftruncate(l->fd, 0) < 0) {
		/* Harmless: the flock is what counts. */
	}
	flock(l->fd, LOCK_UN);
	close(l->fd);
	free(l->path);
	free(l);
	*lock = NULL;
}

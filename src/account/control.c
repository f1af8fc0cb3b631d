/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The control socket: only one process writes an account (the store's
 * lock), so a `fulmar sync` that finds a running fulmar asks it for the
 * pass instead of waiting for it. The socket lives in the data directory,
 * which both processes must agree on anyway; it is created mode 0600 and
 * a connecting peer of another user is turned away all the same. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "account/account.h"

#define SOCKET_NAME "control"

/* The address of DATA_DIR/control. A path too long for sun_path is
 * reached through the directory's descriptor in /proc/self/fd; *dirfd_r
 * (or -1) must be closed after bind/connect. */
static int
address_of(const char *data_dir, struct sockaddr_un *sa, int *dirfd_r,
           struct fm_error *err)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	*dirfd_r = -1;
	char *path = fm_path_join(data_dir, SOCKET_NAME);
	size_t len = strlen(path);
	free(path);
	if (len < sizeof(sa->sun_path)) {
		char *p = fm_path_join(data_dir, SOCKET_NAME);
		fm_strlcpy(sa->sun_path, p, sizeof(sa->sun_path));
		free(p);
		return 0;
	}
	int dfd = open(data_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return fm_error_errno(err, FM_ERR_LOCAL, errno,
		                      _("cannot open %s"), data_dir);
	snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s", dfd,
	         SOCKET_NAME);
	*dirfd_r = dfd;
	return 0;
}

int
fm_control_listen(const char *data_dir, int *fd_r, struct fm_error *err)
{
	*fd_r = -1;
	struct sockaddr_un sa;
	int dfd;
	if (address_of(data_dir, &sa, &dfd, err) < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		if (dfd >= 0)
			close(dfd);
		return fm_error_errno(err, FM_ERR_LOCAL, e,
		                      _("cannot create the control socket"));
	}
	/* The caller holds every account's lock: a socket left behind is a
	 * dead process's. */
	unlink(sa.sun_path);
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	umask(old);
	if (r == 0 && listen(fd, 16) < 0) {
		r = -1;
		e = errno;
	}
	if (dfd >= 0)
		close(dfd);
	if (r < 0) {
		close(fd);
		return fm_error_errno(err, FM_ERR_LOCAL, e,
		                      _("cannot listen on the control socket "
		                        "in %s"),
		                      data_dir);
	}
	*fd_r = fd;
	return 0;
}

void
fm_control_unlink(const char *data_dir)
{
	char *path = fm_path_join(data_dir, SOCKET_NAME);
	unlink(path);
	free(path);
}

int
fm_control_connect(const char *data_dir, int *fd_r, struct fm_error *err)
{
	*fd_r = -1;
	struct sockaddr_un sa;
	int dfd;
	if (address_of(data_dir, &sa, &dfd, err) < 0)
		return errno == ENOENT ? 1 : -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		if (dfd >= 0)
			close(dfd);
		return fm_error_errno(err, FM_ERR_LOCAL, e,
		                      _("cannot create a socket"));
	}
	int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	if (dfd >= 0)
		close(dfd);
	if (r < 0) {
		close(fd);
		if (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR)
			return 1;
		return fm_error_errno(err, FM_ERR_LOCAL, e,
		                      _("cannot reach the running fulmar "
		                        "through %s/%s"),
		                      data_dir, SOCKET_NAME);
	}
	if (!fm_control_peer_ok(fd)) {
		close(fd);
		return fm_error_set(err, FM_ERR_LOCAL,
		                    _("the control socket in %s belongs to "
		                      "another user"),
		                    data_dir);
	}
	*fd_r = fd;
	return 0;
}

bool
fm_control_peer_ok(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	return cred.uid == getuid();
}

/* ------------------------------------------------------------------------
 * The lines.
 */

char *
fm_control_format_request(char *const *accounts, size_t n)
{
	struct fm_buf b;
	fm_buf_init(&b, SIZE_MAX / 2);
	fm_buf_append_str(&b, "sync");
	for (size_t i = 0; i < n; i++) {
		fm_buf_append_char(&b, ' ');
		fm_record_put(&b, accounts[i]);
	}
	fm_buf_append_char(&b, '\n');
	return fm_buf_steal(&b);
}

int
fm_control_parse_request(char *line, char ***names_r, size_t *n_r)
{
	*names_r = NULL;
	*n_r = 0;
	if (strcmp(line, "sync") == 0)
		return 0;
	if (strncmp(line, "sync ", 5) != 0)
		return -1;
	char **names = NULL;
	size_t n = 0;
	char *p = line + 5;
	for (;;) {
		char *sp = strchr(p, ' ');
		if (sp != NULL)
			*sp = '\0';
		char *name;
		if (fm_record_unescape(p, &name) < 0 || name == NULL) {
			free(names);
			return -1;
		}
		names = xreallocarray(names, n + 1, sizeof(*names));
		names[n++] = name;
		if (sp == NULL)
			break;
		p = sp + 1;
	}
	*names_r = names;
	*n_r = n;
	return 0;
}

char *
fm_control_format_reply(const char *account, const struct fm_pass_result *res,
                        const struct fm_error *err)
{
	struct fm_buf b;
	fm_buf_init(&b, SIZE_MAX / 2);
	fm_buf_append_str(&b, "pass ");
	fm_record_put(&b, account);
	if (err == NULL || err->cls == FM_ERR_NONE) {
		fm_buf_printf(&b, " ok %zu %llu %zu %zu %zu %llu\n",
		              res->downloaded, (unsigned long long)res->bytes,
		              res->completed, res->deleted, res->on_server,
		              (unsigned long long)res->ms);
	} else {
		fm_buf_printf(&b, " error %s ", fm_error_class_name(err->cls));
		fm_record_put(&b, err->user);
		fm_buf_append_char(&b, '\n');
	}
	return fm_buf_steal(&b);
}

void
fm_control_reply_free(struct fm_control_reply *r)
{
	free(r->account);
	memset(r, 0, sizeof(*r));
}

static enum fm_error_class
class_by_name(const char *name)
{
	for (int c = FM_ERR_TEMPORARY; c <= FM_ERR_USAGE; c++)
		if (strcmp(fm_error_class_name((enum fm_error_class)c), name) ==
		    0)
			return (enum fm_error_class)c;
	return FM_ERR_LOCAL;
}

static int
parse_size(const char *s, size_t *v)
{
	uint64_t x;
	if (fm_record_parse_u64(s, 10, SIZE_MAX, &x) < 0)
		return -1;
	*v = (size_t)x;
	return 0;
}

int
fm_control_next_reply(int fd, struct fm_buf *in, struct fm_control_reply *r)
{
	for (;;) {
		char *nl = memchr(in->data, '\n', in->len);
		if (nl == NULL) {
			char chunk[4096];
			ssize_t n = read(fd, chunk, sizeof(chunk));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || fm_buf_append(in, chunk, (size_t)n) < 0)
				return 1;
			continue;
		}
		*nl = '\0';
		char *line = xstrdup(in->data);
		fm_buf_consume(in, (size_t)(nl - in->data) + 1);
		int k = fm_control_parse_reply(line, r);
		free(line);
		if (k >= 0)
			return k;
	}
}

int
fm_control_parse_reply(const char *line, struct fm_control_reply *r)
{
	memset(r, 0, sizeof(*r));
	if (strcmp(line, "end") == 0)
		return 1;
	char *copy = xstrdup(line);
	char *f[9];
	int ret = -1;
	char *name;
	if (strncmp(copy, "pass ", 5) != 0)
		goto out;
	if (fm_record_split(copy, f, 9) == 0 && strcmp(f[2], "ok") == 0) {
		uint64_t bytes, ms;
		if (fm_record_unescape(f[1], &name) < 0 || name == NULL ||
		    parse_size(f[3], &r->result.downloaded) < 0 ||
		    fm_record_parse_u64(f[4], 10, UINT64_MAX, &bytes) < 0 ||
		    parse_size(f[5], &r->result.completed) < 0 ||
		    parse_size(f[6], &r->result.deleted) < 0 ||
		    parse_size(f[7], &r->result.on_server) < 0 ||
		    fm_record_parse_u64(f[8], 10, UINT64_MAX, &ms) < 0)
			goto out;
		r->result.bytes = bytes;
		r->result.ms = ms;
		r->ok = true;
		r->account = xstrdup(name);
		ret = 0;
		goto out;
	}
	free(copy);
	copy = xstrdup(line);
	char *text;
	if (fm_record_split(copy, f, 5) == 0 && strcmp(f[2], "error") == 0 &&
	    fm_record_unescape(f[1], &name) == 0 && name != NULL &&
	    fm_record_unescape(f[4], &text) == 0) {
		r->account = xstrdup(name);
		fm_error_set(&r->err, class_by_name(f[3]), "%s",
		             text != NULL ? text : "");
		ret = 0;
	}
out:
	free(copy);
	if (ret < 0)
		fm_control_reply_free(r);
	return ret;
}

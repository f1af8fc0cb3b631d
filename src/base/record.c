/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Checksummed record files: the shared grammar of fulmar's state and
 * summary files. A header line names the format, its version, the entry
 * count, the body's length and its CRC-32; the body is one record per
 * line, fields separated by single spaces, each field escaped so it holds
 * no space, control byte or '%' of its own. Anything a writer would not
 * have produced is refused, so truncation and damage are detected. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <zlib.h>

#include "base/base.h"

static int
hexdig(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void
fm_record_put(struct fm_buf *b, const char *str)
{
	if (str == NULL || str[0] == '\0') {
		fm_buf_append_char(b, '-');
		return;
	}
	if (strcmp(str, "-") == 0) {
		fm_buf_append_str(b, "%2D");
		return;
	}
	/* Runs of plain bytes go in one append; escapes are rare. */
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *run = (const unsigned char *)str;
	for (const unsigned char *p = run;; p++) {
		if (*p != '\0' && *p > ' ' && *p != '%' && *p != 0x7f)
			continue;
		fm_buf_append(b, run, (size_t)(p - run));
		if (*p == '\0')
			break;
		char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
		fm_buf_append(b, esc, 3);
		run = p + 1;
	}
}

void
fm_record_put_u64(struct fm_buf *b, uint64_t v, int base)
{
	static const char digits[] = "0123456789abcdef";
	char tmp[24];
	size_t n = sizeof(tmp);
	unsigned ub = base == 16 ? 16 : 10;
	do {
		tmp[--n] = digits[v % ub];
		v /= ub;
	} while (v > 0);
	fm_buf_append(b, tmp + n, sizeof(tmp) - n);
}

/* Undoes fm_record_put() in place; -1 on anything fm_record_put() would not
 * write. */
int
fm_record_unescape(char *str, char **out_r)
{
	if (strcmp(str, "-") == 0) {
		*out_r = NULL;
		return 0;
	}
	/* Most fields have nothing escaped: check them in one tight pass. */
	if (strchr(str, '%') == NULL) {
		const unsigned char *q = (const unsigned char *)str;
		for (; *q != '\0'; q++)
			if (*q <= ' ' || *q == 0x7f)
				return -1;
		*out_r = str;
		return q == (const unsigned char *)str ? -1 : 0;
	}
	char *w = str;
	for (const char *p = str; *p != '\0'; p++) {
		if (*p == '%') {
			int hi = hexdig(p[1]), lo = hi < 0 ? -1 : hexdig(p[2]);
			if (lo < 0 || (hi << 4 | lo) == 0)
				return -1;
			*w++ = (char)(hi << 4 | lo);
			p += 2;
		} else if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			return -1;
		} else {
			*w++ = *p;
		}
	}
	*w = '\0';
	*out_r = str;
	return w == str ? -1 : 0;
}

/* Splits the line at single spaces into exactly n fields. */
int
fm_record_split(char *line, char **f, int n)
{
	for (int i = 0; i < n; i++) {
		f[i] = line;
		char *sp = strchr(line, ' ');
		if ((sp == NULL) != (i == n - 1))
			return -1;
		if (sp != NULL) {
			*sp = '\0';
			line = sp + 1;
		}
	}
	return 0;
}

/* Strict unsigned parse of the whole string in base 10 or 16 (lowercase),
 * no sign, no leading zeros but "0" itself. */
int
fm_record_parse_u64(const char *str, int base, uint64_t max, uint64_t *v_r)
{
	uint64_t v = 0;
	if (str[0] == '\0' || (str[0] == '0' && str[1] != '\0'))
		return -1;
	for (const char *p = str; *p != '\0'; p++) {
		int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else
			return -1;
		if (v > (max - (uint64_t)d) / (uint64_t)base)
			return -1;
		v = v * (uint64_t)base + (uint64_t)d;
	}
	*v_r = v;
	return 0;
}

void
fm_record_digest(const void *data, size_t len, char out[65])
{
	/* CRC-32 (zlib): these files need damage detected, not forgery, and
	 * a CRC finds every burst of up to 32 bits at a cycle a byte or so —
	 * SHA-256 cost ten times that on every folder open. */
	uLong crc = crc32(0L, Z_NULL, 0);
	const Bytef *p = data;
	while (len > 0) {
		uInt n = len > 0x40000000u ? 0x40000000u : (uInt)len;
		crc = crc32(crc, p, n);
		p += n;
		len -= n;
	}
	snprintf(out, 65, "crc32:%08lx", (unsigned long)crc);
}

/* Reads a whole file of at most max bytes. 1 if missing, 0 if read. */
int
fm_record_read_file(const char *path, size_t max, char **data_r, size_t *len_r,
                    struct fm_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		return fm_error_errno(err, FM_ERR_LOCAL, errno,
		                      _("Cannot read the file %s"), path);
	}
	struct stat st;
	int e = 0;
	if (fstat(fd, &st) < 0)
		e = errno;
	else if ((uint64_t)st.st_size > max)
		e = EFBIG;
	if (e != 0) {
		close(fd);
		return fm_error_errno(err, FM_ERR_LOCAL, e,
		                      _("Cannot read the file %s"), path);
	}
	size_t size = (size_t)st.st_size, got = 0;
	char *data = xmalloc(size + 1);
	while (got < size) {
		ssize_t n = read(fd, data + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			e = errno;
		if (n <= 0)
			break; /* an error, or the file shrank */
		got += (size_t)n;
	}
	close(fd);
	if (e != 0) {
		free(data);
		return fm_error_errno(err, FM_ERR_LOCAL, e,
		                      _("Cannot read the file %s"), path);
	}
	data[got] = '\0';
	*data_r = data;
	*len_r = got;
	return 0;
}

/* ------------------------------------------------------------------------
 * Change logs (PATH.log): "fulmar-log 1 ID\n", then chunks, each
 * "chunk BYTES CRC\n" and BYTES bytes of records.
 */

#define RECLOG_MAGIC "fulmar-log 1 "

static char *
reclog_path(const char *path)
{
	return xasprintf("%s.log", path);
}

int
fm_reclog_read(const char *path, const char *id, size_t max, char **data_r,
               size_t *len_r, size_t *end_r, struct fm_error *err)
{
	*data_r = NULL;
	*len_r = 0;
	*end_r = 0;
	char *lpath = reclog_path(path);
	char *data = NULL;
	size_t len = 0;
	int r = fm_record_read_file(lpath, max, &data, &len, err);
	free(lpath);
	if (r != 0)
		return r < 0 ? -1 : 0;
	size_t ml = strlen(RECLOG_MAGIC), il = strlen(id);
	if (len < ml + il + 1 || memcmp(data, RECLOG_MAGIC, ml) != 0 ||
	    memcmp(data + ml, id, il) != 0 || data[ml + il] != '\n') {
		free(data); /* follows another snapshot: stale */
		return 0;
	}
	size_t pos = ml + il + 1, out = 0;
	for (;;) {
		char *nl = memchr(data + pos, '\n', len - pos);
		if (nl == NULL)
			break;
		*nl = '\0';
		char *f[3];
		uint64_t bytes;
		char digest[65];
		size_t body = (size_t)(nl - data) + 1;
		if (fm_record_split(data + pos, f, 3) < 0 ||
		    strcmp(f[0], "chunk") != 0 ||
		    fm_record_parse_u64(f[1], 10, len, &bytes) < 0 ||
		    bytes > len - body)
			break;
		fm_record_digest(data + body, (size_t)bytes, digest);
		if (strcmp(digest, f[2]) != 0 ||
		    memchr(data + body, '\0', (size_t)bytes) != NULL)
			break;
		/* The bodies, gathered at the front of the buffer. */
		memmove(data + out, data + body, (size_t)bytes);
		out += (size_t)bytes;
		pos = body + (size_t)bytes;
	}
	data[out] = '\0';
	*data_r = data;
	*len_r = out;
	*end_r = pos;
	return 0;
}

int
fm_reclog_append(const char *path, const char *id, size_t *end,
                 const void *body, size_t len, bool durable,
                 struct fm_error *err)
{
	char *lpath = reclog_path(path);
	bool fresh = *end == 0;
	int fd =
	    open(lpath, O_WRONLY | O_CREAT | O_CLOEXEC | (fresh ? O_TRUNC : 0),
	         0600);
	char head[128], chunk[128], digest[65];
	fm_record_digest(body, len, digest);
	int hl = fresh
	             ? snprintf(head, sizeof(head), "%s%s\n", RECLOG_MAGIC, id)
	             : 0;
	int cl = snprintf(chunk, sizeof(chunk), "chunk %zu %s\n", len, digest);
	int rc = fd < 0 || hl < 0 || (size_t)hl >= sizeof(head) ? -1 : 0;
	int e = fd < 0 ? errno : EOVERFLOW;
	/* A chunk a crash cut short goes; the new one takes its place. */
	off_t at = (off_t)*end;
	if (rc == 0 && !fresh && ftruncate(fd, at) < 0) {
		rc = -1;
		e = errno;
	}
	struct iovec iov[3] = {
	    {head, (size_t)hl}, {chunk, (size_t)cl}, {(void *)body, len}};
	size_t want = (size_t)hl + (size_t)cl + len;
	if (rc == 0) {
		ssize_t n = pwritev(fd, iov, 3, at);
		if (n < 0 || (size_t)n != want) {
			rc = -1;
			e = n < 0 ? errno : EIO;
		}
	}
	if (rc == 0 && durable && fdatasync(fd) < 0) {
		rc = -1;
		e = errno;
	}
	if (fd >= 0 && close(fd) < 0 && rc == 0) {
		rc = -1;
		e = errno;
	}
	if (rc == 0 && fresh && durable)
		rc = fm_fsync_parent(lpath, err);
	else if (rc < 0)
		fm_error_errno(err, FM_ERR_LOCAL, e,
		               _("Cannot write the file %s"), lpath);
	free(lpath);
	if (rc == 0)
		*end = (size_t)at + want;
	return rc;
}

int
fm_reclog_append_small(const char *path, const char *id, size_t *end,
                       size_t snap_bytes, const void *body, size_t len,
                       bool durable, struct fm_error *err)
{
	if (*end + len > snap_bytes / 4)
		return 0;
	return fm_reclog_append(path, id, end, body, len, durable, err) < 0 ? -1
	                                                                    : 1;
}

int64_t
fm_reclog_size(const char *path)
{
	char *lpath = reclog_path(path);
	struct stat st;
	int r = stat(lpath, &st);
	free(lpath);
	if (r < 0)
		return errno == ENOENT ? 0 : -1;
	return (int64_t)st.st_size;
}

void
fm_reclog_remove(const char *path)
{
	char *lpath = reclog_path(path);
	unlink(lpath);
	free(lpath);
}

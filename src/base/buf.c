/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Bounded buffers: anything a peer can fill has a ceiling, so a hostile
 * server or a broken file costs an error, never unbounded memory. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

void
fm_buf_init(struct fm_buf *buf, size_t max)
{
	buf->cap = 64;
	buf->data = xmalloc(buf->cap);
	buf->data[0] = '\0';
	buf->len = 0;
	buf->max = max;
}

void
fm_buf_free(struct fm_buf *buf)
{
	free(buf->data);
	buf->data = NULL;
	buf->len = buf->cap = 0;
}

void
fm_buf_reset(struct fm_buf *buf)
{
	buf->len = 0;
	buf->data[0] = '\0';
}

/* Makes room for extra more bytes plus the terminator; -1 past max. */
static int
reserve(struct fm_buf *buf, size_t extra)
{
	if (extra > buf->max || buf->len > buf->max - extra)
		return -1;
	size_t need = buf->len + extra + 1;
	if (need <= buf->cap)
		return 0;
	size_t cap = buf->cap;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	buf->data = xrealloc(buf->data, cap);
	buf->cap = cap;
	return 0;
}

int
fm_buf_append(struct fm_buf *buf, const void *data, size_t len)
{
	if (reserve(buf, len) < 0)
		return -1;
	if (len > 0)
		memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
	return 0;
}

int
fm_buf_append_str(struct fm_buf *buf, const char *s)
{
	return fm_buf_append(buf, s, strlen(s));
}

int
fm_buf_append_char(struct fm_buf *buf, char c)
{
	return fm_buf_append(buf, &c, 1);
}

int
fm_buf_vprintf(struct fm_buf *buf, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || reserve(buf, (size_t)n) < 0)
		return -1;
	vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
	buf->len += (size_t)n;
	return 0;
}

int
fm_buf_printf(struct fm_buf *buf, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int ret = fm_buf_vprintf(buf, fmt, ap);
	va_end(ap);
	return ret;
}

void
fm_buf_consume(struct fm_buf *buf, size_t n)
{
	if (n >= buf->len) {
		fm_buf_reset(buf);
		return;
	}
	memmove(buf->data, buf->data + n, buf->len - n);
	buf->len -= n;
	buf->data[buf->len] = '\0';
}

char *
fm_buf_steal(struct fm_buf *buf)
{
	char *data = buf->data;
	buf->data = NULL;
	buf->len = buf->cap = 0;
	return data;
}

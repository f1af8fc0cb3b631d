/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Header blocks, clean UTF-8 text, charsets and the envelope.
 *
 * Every byte from a message goes through a "sink" before it reaches a
 * string we hand out: the sink validates UTF-8 (an invalid byte becomes
 * U+FFFD), replaces control characters, and respects the maximum of the
 * buffer it fills. Structured fields are cleaned first and parsed after, so
 * libetpan only ever sees one line of valid UTF-8.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <langinfo.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libetpan/libetpan.h>

#include "mime/mime.h"

static const char REPLACEMENT[] = "\xef\xbf\xbd"; /* U+FFFD */

/* ------------------------------------------------------------------------
 * UTF-8.
 */

/* Length of the valid UTF-8 sequence at s (at most len bytes) and its code
 * point in *cp, or 0 when the bytes there are not valid UTF-8. */
static size_t
utf8_char(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t v, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		n = 2, v = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3, v = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

bool
fm_mime_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		uint32_t cp;
		size_t n = p[i] < 0x80 ? 1 : utf8_char(p + i, len - i, &cp);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

/* ------------------------------------------------------------------------
 * The sink: clean UTF-8 into a bounded buffer.
 */

enum sink_mode {
	SINK_BODY, /* keep '\n' and '\t', drop '\r' */
	SINK_LINE, /* one line: white space folded to single spaces */
};

struct sink {
	struct fm_buf *buf;
	enum sink_mode mode;
	bool full;  /* the buffer's maximum was reached: ignore the rest */
	bool space; /* SINK_LINE: the last byte out was a space (or none) */
	size_t n;
	char chunk[1024];
};

static void
sink_init(struct sink *s, struct fm_buf *buf, enum sink_mode mode)
{
	s->buf = buf;
	s->mode = mode;
	s->full = false;
	s->space = true;
	s->n = 0;
}

static void
sink_flush(struct sink *s)
{
	if (s->n == 0 || s->full) {
		s->n = 0;
		return;
	}
	if (fm_buf_append(s->buf, s->chunk, s->n) < 0) {
		/* Keep what fits, cut at a character boundary. */
		size_t room = s->buf->max - s->buf->len;
		size_t k = room < s->n ? room : s->n;
		while (k > 0 && ((unsigned char)s->chunk[k] & 0xc0) == 0x80)
			k--;
		fm_buf_append(s->buf, s->chunk, k);
		s->full = true;
	}
	s->n = 0;
}

static void
sink_put(struct sink *s, const char *p, size_t n)
{
	if (s->n + n > sizeof(s->chunk))
		sink_flush(s);
	memcpy(s->chunk + s->n, p, n);
	s->n += n;
	s->space = false;
}

static void
sink_space(struct sink *s)
{
	if (!s->space) {
		sink_put(s, " ", 1);
		s->space = true;
	}
}

static void
sink_text(struct sink *s, const char *text, size_t len)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t i = 0;
	while (i < len && !s->full) {
		unsigned char c = p[i];
		if (c >= 0x20 && c < 0x7f) {
			if (c == ' ' && s->mode == SINK_LINE)
				sink_space(s);
			else
				sink_put(s, (const char *)p + i, 1);
			i++;
			continue;
		}
		if (c == '\n' || c == '\t' || c == '\r') {
			if (s->mode == SINK_LINE)
				sink_space(s);
			else if (c != '\r')
				sink_put(s, (const char *)p + i, 1);
			i++;
			continue;
		}
		uint32_t cp = 0;
		size_t n = c < 0x80 ? 0 : utf8_char(p + i, len - i, &cp);
		if (n == 0 || (cp >= 0x80 && cp <= 0x9f)) {
			/* Invalid bytes, C0 and C1 controls, DEL. */
			sink_put(s, REPLACEMENT, 3);
			i += n == 0 ? 1 : n;
		} else {
			sink_put(s, (const char *)p + i, n);
			i += n;
		}
	}
}

/* Flushes; in SINK_LINE mode also drops a trailing space. Returns -1 when
 * the buffer's maximum cut the text. */
static int
sink_finish(struct sink *s)
{
	sink_flush(s);
	if (s->mode == SINK_LINE && s->buf->len > 0 &&
	    s->buf->data[s->buf->len - 1] == ' ')
		s->buf->data[--s->buf->len] = '\0';
	return s->full ? -1 : 0;
}

/* len bytes of text as one clean line, in a new string of at most max
 * bytes. */
static char *
clean_line(const char *text, size_t len, size_t max)
{
	struct fm_buf buf;
	struct sink s;
	fm_buf_init(&buf, max);
	sink_init(&s, &buf, SINK_LINE);
	sink_text(&s, text, len);
	sink_finish(&s);
	return fm_buf_steal(&buf);
}

/* ------------------------------------------------------------------------
 * Charsets.
 */

/* Windows-1252 0x80..0x9f; 0 where the code page has a hole. */
static const uint16_t CP1252_HIGH[32] = {
    0x20ac, 0,      0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
    0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017d, 0,
    0,      0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
    0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0,      0x017e, 0x0178,
};

static void
sink_cp1252(struct sink *s, const char *text, size_t len)
{
	for (size_t i = 0; i < len && !s->full; i++) {
		unsigned char c = (unsigned char)text[i];
		uint32_t cp = c;
		if (c < 0x80) {
			sink_text(s, text + i, 1);
			continue;
		}
		if (c < 0xa0)
			cp = CP1252_HIGH[c - 0x80];
		if (cp == 0) {
			sink_put(s, REPLACEMENT, 3);
			continue;
		}
		char u[3];
		size_t n;
		if (cp < 0x800) {
			u[0] = (char)(0xc0 | (cp >> 6));
			u[1] = (char)(0x80 | (cp & 0x3f));
			n = 2;
		} else {
			u[0] = (char)(0xe0 | (cp >> 12));
			u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
			u[2] = (char)(0x80 | (cp & 0x3f));
			n = 3;
		}
		sink_put(s, u, n);
	}
}

enum charset_kind { CS_UTF8, CS_ASCII, CS_CP1252, CS_ICONV, CS_UNKNOWN };

/* Names mail uses that iconv lacks or that are better read as a superset
 * (as mail clients and browsers do). */
static const struct {
	const char *mail;
	const char *iconv;
} CHARSET_ALIASES[] = {
    {"gb2312", "GB18030"},
    {"gbk", "GB18030"},
    {"x-gbk", "GB18030"},
    {"gb_2312-80", "GB18030"},
    {"euc-cn", "GB18030"},
    {"cn-gb", "GB18030"},
    {"shift_jis", "CP932"},
    {"shift-jis", "CP932"},
    {"sjis", "CP932"},
    {"x-sjis", "CP932"},
    {"ms_kanji", "CP932"},
    {"iso-2022-jp", "ISO-2022-JP-2"},
    {"ks_c_5601-1987", "CP949"},
    {"euc-kr", "CP949"},
    {"iso-8859-8-i", "ISO-8859-8"},
    {"iso-8859-8-e", "ISO-8859-8"},
    {"x-mac-roman", "MACINTOSH"},
    {"unicode-1-1-utf-7", "UTF-7"},
};

/* Classifies charset; for CS_ICONV stores the name to give iconv in name
 * (size namesize). */
static enum charset_kind
charset_resolve(const char *charset, char *name, size_t namesize)
{
	if (charset == NULL || charset[0] == '\0')
		return CS_ASCII;
	char low[64];
	size_t n = 0;
	for (const char *p = charset; *p != '\0'; p++) {
		char c = *p;
		if (n + 1 >= sizeof(low))
			return CS_UNKNOWN;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		/* Only what charset names are made of: a name is handed to
		 * iconv_open(), which also parses "//" suffixes. */
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == ':' || c == '+'))
			return CS_UNKNOWN;
		low[n++] = c;
	}
	low[n] = '\0';
	if (strcmp(low, "utf-8") == 0 || strcmp(low, "utf8") == 0)
		return CS_UTF8;
	if (strcmp(low, "us-ascii") == 0 || strcmp(low, "ascii") == 0 ||
	    strcmp(low, "ansi_x3.4-1968") == 0)
		return CS_ASCII;
	if (strcmp(low, "iso-8859-1") == 0 || strcmp(low, "iso8859-1") == 0 ||
	    strcmp(low, "iso_8859-1") == 0 || strcmp(low, "latin1") == 0 ||
	    strcmp(low, "windows-1252") == 0 || strcmp(low, "cp1252") == 0)
		return CS_CP1252;
	for (size_t i = 0; i < FM_ARRAY_LEN(CHARSET_ALIASES); i++) {
		if (strcmp(low, CHARSET_ALIASES[i].mail) == 0) {
			fm_strlcpy(name, CHARSET_ALIASES[i].iconv, namesize);
			return CS_ICONV;
		}
	}
	fm_strlcpy(name, low, namesize);
	return CS_ICONV;
}

/* glibc unloads a gconv module (dlclose) once no descriptor uses it and two
 * other look-ups have passed, so mail mixing charsets loads and unloads a
 * module for nearly every encoded word or part: that was 70% of the
 * envelope time (170 us instead of 2 us per iconv_open). One descriptor per
 * charset seen, held for the life of the process, keeps its module loaded.
 * This registry is the module's one piece of shared state: append-only,
 * bounded, behind a mutex, and invisible in results. */
#define PINS_MAX 32
static pthread_mutex_t pins_lock = PTHREAD_MUTEX_INITIALIZER;
static char pin_names[PINS_MAX][32];
static iconv_t pin_cds[PINS_MAX];
static size_t pins_n;

/* At exit, so leak checkers see the descriptors closed. */
static void
pins_release(void)
{
	pthread_mutex_lock(&pins_lock);
	for (size_t i = 0; i < pins_n; i++)
		iconv_close(pin_cds[i]);
	pins_n = 0;
	pthread_mutex_unlock(&pins_lock);
}

static void
pins_init(void)
{
	atexit(pins_release);
}

static void
charset_pin(const char *name)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	if (strlen(name) >= sizeof(pin_names[0]))
		return;
	pthread_once(&once, pins_init);
	pthread_mutex_lock(&pins_lock);
	bool have = false;
	for (size_t i = 0; i < pins_n && !have; i++)
		have = strcasecmp(pin_names[i], name) == 0;
	if (!have && pins_n < PINS_MAX) {
		iconv_t cd = iconv_open("UTF-8", name);
		if (cd != (iconv_t)-1) {
			fm_strlcpy(pin_names[pins_n], name,
			           sizeof(pin_names[0]));
			pin_cds[pins_n++] = cd;
		}
	}
	pthread_mutex_unlock(&pins_lock);
}

/* Pins the charsets of the encoded words in s, by the names libetpan's
 * charconv() will give iconv_open(). */
static void
charset_pin_words(const char *s, size_t len)
{
	static const struct {
		const char *mail, *iconv;
	} etpan[] = {{"gb2312", "GBK"},
	             {"gb_2312-80", "GBK"},
	             {"iso-8859-8-i", "ISO-8859-8"},
	             {"iso-8859-8-e", "ISO-8859-8"},
	             {"ks_c_5601-1987", "EUCKR"},
	             {"iso-2022-jp", "ISO-2022-JP-2"},
	             {"utf-8", NULL},
	             {"us-ascii", NULL}};
	const char *end = s + len, *p = s;
	while (p < end) {
		const char *q = memmem(p, (size_t)(end - p), "=?", 2);
		if (q == NULL)
			return;
		q += 2;
		char name[32];
		size_t n = 0;
		while (q + n < end && q[n] != '?' && n + 1 < sizeof(name)) {
			name[n] = q[n];
			n++;
		}
		p = q + n;
		if (q + n >= end || q[n] != '?' || n == 0)
			continue;
		name[n] = '\0';
		char dummy[64];
		if (charset_resolve(name, dummy, sizeof(dummy)) == CS_UNKNOWN)
			continue;
		const char *use = name;
		for (size_t i = 0; i < FM_ARRAY_LEN(etpan); i++)
			if (strcasecmp(name, etpan[i].mail) == 0)
				use = etpan[i].iconv;
		if (use != NULL)
			charset_pin(use);
	}
}

/* Runs iconv from cd over the text into the sink; invalid input becomes
 * U+FFFD. */
static void
sink_iconv(struct sink *s, iconv_t cd, const char *text, size_t len)
{
	char out[4096];
	char *in = (char *)text;
	size_t inleft = len;
	while (inleft > 0 && !s->full) {
		char *o = out;
		size_t oleft = sizeof(out);
		size_t r = iconv(cd, &in, &inleft, &o, &oleft);
		int e = errno;
		sink_text(s, out, (size_t)(o - out));
		if (r != (size_t)-1 || e == E2BIG)
			continue;
		sink_put(s, REPLACEMENT, 3);
		if (e != EILSEQ)
			break; /* EINVAL: a character cut at the end */
		in++;
		inleft--;
	}
	char *o = out;
	size_t oleft = sizeof(out);
	iconv(cd, NULL, NULL, &o, &oleft);
	sink_text(s, out, (size_t)(o - out));
}

/* Text in charset into the sink (see fm_mime_text_to_utf8()). */
static void
sink_charset(struct sink *s, const char *charset, const char *text, size_t len,
             bool *unknown_r)
{
	char name[64];
	enum charset_kind kind = charset_resolve(charset, name, sizeof(name));
	iconv_t cd = (iconv_t)-1;
	if (kind == CS_ICONV) {
		cd = iconv_open("UTF-8", name);
		if (cd == (iconv_t)-1)
			kind = CS_UNKNOWN;
		else
			charset_pin(name);
	}
	switch (kind) {
	case CS_UTF8:
		sink_text(s, text, len);
		break;
	case CS_CP1252:
		sink_cp1252(s, text, len);
		break;
	case CS_ICONV:
		sink_iconv(s, cd, text, len);
		iconv_close(cd);
		break;
	case CS_ASCII:
	case CS_UNKNOWN:
		/* Unlabelled 8-bit text and unknown charsets: UTF-8 if it
		 * is valid UTF-8 (it nearly always is today), else the
		 * Windows superset of ISO-8859-1. */
		if (fm_mime_utf8_valid(text, len)) {
			sink_text(s, text, len);
			if (kind == CS_UNKNOWN && unknown_r != NULL)
				*unknown_r = true;
		} else {
			sink_cp1252(s, text, len);
			if (unknown_r != NULL)
				*unknown_r = true;
		}
		break;
	}
}

int
fm_mime_text_to_utf8(const char *charset, const char *data, size_t len,
                     struct fm_buf *out, bool *unknown_r)
{
	struct sink s;
	sink_init(&s, out, SINK_BODY);
	sink_charset(&s, charset, data, len, unknown_r);
	return sink_finish(&s);
}

/* ------------------------------------------------------------------------
 * RFC 2047.
 */

/* How deeply parentheses nest in s, counted without regard to quotes (an
 * over-estimate). libetpan parses comments recursively, so deeply nested
 * ones must not reach it. */
static bool
parens_shallow(const char *s, size_t len)
{
	int depth = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '(' && ++depth > 16)
			return false;
		if (s[i] == ')' && depth > 0)
			depth--;
	}
	return true;
}

/* Raw header text is cut here before decoding: a longer value is junk or
 * an attack, and in any real one the first 64 KiB give more than the
 * FM_MIME_TEXT_MAX bytes kept. */
#define DECODE_RAW_MAX (8 * FM_MIME_TEXT_MAX)

/* Decodes a cleaned line (valid UTF-8, no controls). */
static char *
decode_words(const char *clean, size_t len)
{
	struct fm_buf buf;
	struct sink s;
	fm_buf_init(&buf, FM_MIME_TEXT_MAX);
	sink_init(&s, &buf, SINK_LINE);
	size_t idx = 0;
	char *dec = NULL;
	/* Raw words are converted "from" UTF-8, which they are after
	 * cleaning; encoded words from their own charset (libetpan falls
	 * back to ISO-8859-1 for an unknown one). */
	bool words = len > 0 && memmem(clean, len, "=?", 2) != NULL;
	if (words)
		charset_pin_words(clean, len);
	if (words &&
	    mailmime_encoded_phrase_parse("utf-8", clean, len, &idx, "utf-8",
	                                  &dec) == MAILIMF_NO_ERROR) {
		sink_text(&s, dec, strlen(dec));
		free(dec);
		/* libetpan may stop early; keep the rest as it is. */
		if (idx < len) {
			sink_space(&s);
			sink_text(&s, clean + idx, len - idx);
		}
	} else {
		sink_text(&s, clean, len);
	}
	sink_finish(&s);
	return fm_buf_steal(&buf);
}

char *
fm_mime_decode_header(const char *value, size_t len)
{
	if (len > DECODE_RAW_MAX)
		len = DECODE_RAW_MAX;
	char *clean = clean_line(value, len, DECODE_RAW_MAX * 3);
	char *dec = decode_words(clean, strlen(clean));
	free(clean);
	return dec;
}

/* ------------------------------------------------------------------------
 * Header blocks.
 */

void
fm_mime_header_iter_init(struct fm_mime_header_iter *it, const char *data,
                         size_t len)
{
	it->data = data;
	it->len = len;
	it->pos = 0;
	it->limit = FM_MIME_HEADER_MAX;
	it->body = len;
	it->ended = false;
	it->cut = false;
}

/* End of the line starting at pos: the index of its '\n', or len. */
static size_t
line_end(const struct fm_mime_header_iter *it, size_t pos)
{
	const char *nl = memchr(it->data + pos, '\n', it->len - pos);
	return nl == NULL ? it->len : (size_t)(nl - it->data);
}

static bool
line_empty(const struct fm_mime_header_iter *it, size_t pos, size_t end)
{
	return end == pos || (end == pos + 1 && it->data[pos] == '\r');
}

/* The block ends at the line at pos: the body starts after it when it is
 * empty, at it otherwise. */
static bool
iter_end(struct fm_mime_header_iter *it, size_t pos, bool empty)
{
	if (empty) {
		size_t end = line_end(it, pos);
		it->body = end < it->len ? end + 1 : it->len;
		it->ended = true;
	} else {
		it->body = pos;
	}
	it->pos = it->len;
	return false;
}

/* Past the limit: only look for the empty line that ends the block. */
static bool
iter_skip_rest(struct fm_mime_header_iter *it, size_t pos)
{
	it->cut = true;
	while (pos < it->len) {
		size_t end = line_end(it, pos);
		if (line_empty(it, pos, end))
			return iter_end(it, pos, true);
		pos = end < it->len ? end + 1 : it->len;
	}
	it->body = it->len;
	it->pos = it->len;
	return false;
}

bool
fm_mime_header_next(struct fm_mime_header_iter *it, const char **name_r,
                    size_t *name_len_r, const char **value_r,
                    size_t *value_len_r)
{
	const char *d = it->data;
	for (;;) {
		size_t pos = it->pos;
		if (pos >= it->len) {
			it->body = it->len;
			return false;
		}
		size_t end = line_end(it, pos);
		size_t next = end < it->len ? end + 1 : it->len;
		if (line_empty(it, pos, end))
			return iter_end(it, pos, true);
		if (pos >= it->limit)
			return iter_skip_rest(it, pos);
		if (d[pos] == ' ' || d[pos] == '\t') {
			/* A continuation of nothing we returned. */
			it->pos = next;
			continue;
		}
		size_t colon = pos;
		while (colon < end && d[colon] != ':' &&
		       (unsigned char)d[colon] > 32 &&
		       (unsigned char)d[colon] < 127)
			colon++;
		size_t name_end = colon;
		while (colon < end && (d[colon] == ' ' || d[colon] == '\t'))
			colon++;
		if (colon >= end || d[colon] != ':' || name_end == pos) {
			if (pos == 0 && end - pos >= 5 &&
			    memcmp(d, "From ", 5) == 0) {
				it->pos = next; /* an mbox separator */
				continue;
			}
			return iter_end(it, pos, false);
		}
		/* The value runs over continuation lines. */
		size_t vend = end;
		while (next < it->len && (d[next] == ' ' || d[next] == '\t')) {
			vend = line_end(it, next);
			next = vend < it->len ? vend + 1 : it->len;
		}
		if (vend > pos && d[vend - 1] == '\r')
			vend--;
		if (vend > it->limit) {
			vend = it->limit;
			it->cut = true;
		}
		*name_r = d + pos;
		*name_len_r = name_end - pos;
		*value_r = d + colon + 1;
		*value_len_r = vend > colon + 1 ? vend - colon - 1 : 0;
		it->pos = next;
		return true;
	}
}

/* ------------------------------------------------------------------------
 * Addresses.
 */

struct addr_list {
	struct fm_mime_address *v;
	size_t n, cap, max;
};

static void
addr_add(struct addr_list *l, char *name, char *addr)
{
	if (l->n >= l->max) {
		free(name);
		free(addr);
		return;
	}
	if (l->n == l->cap) {
		l->cap = l->cap == 0 ? 4 : l->cap * 2;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	l->v[l->n].name = name;
	l->v[l->n].addr = addr;
	l->v[l->n].group = NULL;
	l->n++;
}

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && *p == ' ')
		p++;
	return p;
}

static const char *
trim_ws(const char *p, const char *end)
{
	while (end > p && end[-1] == ' ')
		end--;
	return end;
}

/* An addr-spec we keep: no white space or angle brackets, not empty. */
static bool
addr_sane(const char *a)
{
	return a[0] != '\0' && strpbrk(a, " <>\"") == NULL;
}

/* Without libetpan: "Name <addr", "addr", or just a name. */
static void
addr_fallback(const char *p, const char *end, struct addr_list *l)
{
	size_t len = (size_t)(end - p);
	const char *lt = memchr(p, '<', len);
	if (lt == NULL) {
		if (memchr(p, '@', len) != NULL)
			addr_add(l, xstrdup(""),
			         clean_line(p, len, FM_MIME_TEXT_MAX));
		else
			addr_add(l, fm_mime_decode_header(p, len), xstrdup(""));
		return;
	}
	/* The address: from '<' to '>' (or the end, or a space). */
	size_t a = (size_t)(lt - p) + 1;
	while (a < len && p[a] == ' ')
		a++;
	size_t aend = a;
	while (aend < len && p[aend] != '>' && p[aend] != ' ')
		aend++;
	/* The name: before '<', without its quotes. */
	size_t n0 = 0, n1 = (size_t)(lt - p);
	while (n1 > n0 && p[n1 - 1] == ' ')
		n1--;
	if (n0 < n1 && p[n0] == '"')
		n0++;
	if (n0 < n1 && p[n1 - 1] == '"')
		n1--;
	addr_add(l, fm_mime_decode_header(p + n0, n1 - n0),
	         clean_line(p + a, aend - a, FM_MIME_TEXT_MAX));
}

/* One mailbox, p..end already trimmed. */
static void
addr_piece(const char *p, const char *end, struct addr_list *l)
{
	size_t len = (size_t)(end - p);
	struct mailimf_mailbox *mb = NULL;
	size_t idx = 0;
	if (!parens_shallow(p, len) ||
	    mailimf_mailbox_parse(p, len, &idx, &mb) != MAILIMF_NO_ERROR) {
		addr_fallback(p, end, l);
		return;
	}
	const char *rest = skip_ws(p + idx, end);
	bool comment = rest < end && *rest == '(' && end[-1] == ')';
	/* libetpan takes "just a name" for the address "justaname". */
	bool local = strchr(mb->mb_addr_spec, '@') == NULL;
	if (!addr_sane(mb->mb_addr_spec) || (rest < end && !comment) ||
	    (local && memchr(p, ' ', len) != NULL)) {
		mailimf_mailbox_free(mb);
		addr_fallback(p, end, l);
		return;
	}
	char *name;
	if (mb->mb_display_name != NULL)
		name = fm_mime_decode_header(mb->mb_display_name,
		                             strlen(mb->mb_display_name));
	else if (comment) /* the old "addr (Name)" */
		name =
		    fm_mime_decode_header(rest + 1, (size_t)(end - rest - 2));
	else
		name = xstrdup("");
	addr_add(l, name,
	         clean_line(mb->mb_addr_spec, strlen(mb->mb_addr_spec),
	                    FM_MIME_TEXT_MAX));
	mailimf_mailbox_free(mb);
}

/* An address list: split at top-level commas (and group punctuation) by
 * hand, so one broken address loses only itself, then each mailbox through
 * libetpan. s is a cleaned line. */
static void
addr_parse(const char *s, size_t len, struct addr_list *l)
{
	/* An unbalanced quote would swallow the rest of the list: then quotes
	 * are ordinary characters. */
	size_t quotes = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			quotes++;
	}
	bool honour_quotes = quotes % 2 == 0;
	/* Likewise a '<' that no '>' closes. */
	const char *gt = NULL;
	for (const char *q = s + len; q > s && gt == NULL; q--)
		if (q[-1] == '>')
			gt = q - 1;
	size_t last_gt = gt == NULL ? 0 : (size_t)(gt - s);
	bool quote = false, angle = false;
	int comment = 0, bracket = 0;
	size_t start = 0;
	for (size_t i = 0; i < len && l->n < l->max; i++) {
		char c = s[i];
		if (quote) {
			if (c == '\\')
				i++;
			else if (c == '"')
				quote = false;
			continue;
		}
		if (comment > 0) {
			if (c == '\\')
				i++;
			else if (c == '(')
				comment++;
			else if (c == ')')
				comment--;
			continue;
		}
		if (c == '"')
			quote = honour_quotes;
		else if (c == '(')
			comment = 1;
		else if (c == '<')
			angle = true;
		else if (c == '>')
			angle = false;
		else if (c == '[')
			bracket++;
		else if (c == ']' && bracket > 0)
			bracket--;
		if ((angle && i < last_gt) || bracket > 0)
			continue;
		if (c == ':') {
			start = i + 1; /* a group's name goes */
		} else if (c == ',' || c == ';') {
			const char *p = skip_ws(s + start, s + i);
			const char *end = trim_ws(p, s + i);
			if (p < end)
				addr_piece(p, end, l);
			start = i + 1;
			angle = false;
		}
	}
	/* The last one, even when a quote or bracket was left open. */
	if (start < len && l->n < l->max) {
		const char *p = skip_ws(s + start, s + len);
		const char *end = trim_ws(p, s + len);
		if (p < end)
			addr_piece(p, end, l);
	}
}

/* ------------------------------------------------------------------------
 * Message ids. Parsed by hand rather than with mailimf_msg_id_list_parse(),
 * which gives up on the first malformed id: real References fields carry
 * comments, missing brackets and junk, and threading wants whatever ids they
 * hold, normalised the same way for all three fields.
 */

#define MSG_ID_MAX 998

struct id_list {
	char **v;   /* v[0] is the first id; v[1..] a ring of the last ones */
	size_t n;   /* ids kept */
	size_t max; /* ids to keep */
	size_t seen;
};

static void
id_add(struct id_list *l, const char *p, size_t len)
{
	char *id = xmalloc(len + 1);
	size_t k = 0;
	for (size_t i = 0; i < len; i++)
		if (p[i] != ' ')
			id[k++] = p[i];
	id[k] = '\0';
	if (k == 0 || k > MSG_ID_MAX) {
		free(id);
		return;
	}
	if (l->n >= l->max && l->max < 2) {
		free(id);
		return;
	}
	if (l->n < l->max) {
		if (l->v == NULL)
			l->v = xcalloc(l->max, sizeof(*l->v));
		l->v[l->n++] = id;
	} else {
		/* Full: drop the oldest after the first. */
		size_t slot = 1 + (l->seen - 1) % (l->max - 1);
		free(l->v[slot]);
		l->v[slot] = id;
	}
	l->seen++;
}

/* Restores message order in a ring that wrapped. */
static void
id_unring(struct id_list *l)
{
	if (l->seen <= l->max || l->max <= 2)
		return;
	size_t ring = l->max - 1;
	size_t oldest = 1 + (l->seen - 1) % ring;
	char **tmp = xcalloc(ring, sizeof(*tmp));
	for (size_t i = 0; i < ring; i++)
		tmp[i] = l->v[1 + (oldest - 1 + i) % ring];
	memcpy(l->v + 1, tmp, ring * sizeof(*tmp));
	free(tmp);
}

static void
ids_parse(const char *s, size_t len, struct id_list *l)
{
	const char *end = s + len;
	if (memchr(s, '<', len) != NULL) {
		const char *p = s;
		while (p < end && (l->max > 1 || l->n == 0)) {
			const char *lt = memchr(p, '<', (size_t)(end - p));
			if (lt == NULL)
				break;
			const char *gt =
			    memchr(lt + 1, '>', (size_t)(end - lt - 1));
			const char *lt2 =
			    memchr(lt + 1, '<', (size_t)(end - lt - 1));
			if (gt == NULL)
				break;
			if (lt2 != NULL && lt2 < gt) { /* "<junk <id>" */
				p = lt2;
				continue;
			}
			id_add(l, lt + 1, (size_t)(gt - lt - 1));
			p = gt + 1;
		}
		return;
	}
	/* No brackets: the words that look like ids. */
	const char *p = s;
	while (p < end && (l->max > 1 || l->n == 0)) {
		while (p < end && (*p == ' ' || *p == ','))
			p++;
		const char *w = p;
		while (p < end && *p != ' ' && *p != ',')
			p++;
		if (p > w && memchr(w, '@', (size_t)(p - w)) != NULL)
			id_add(l, w, (size_t)(p - w));
	}
}

/* The first id in s, or NULL. */
static char *
id_first(const char *s, size_t len)
{
	struct id_list l = {.max = 1};
	ids_parse(s, len, &l);
	char *id = l.n > 0 ? l.v[0] : NULL;
	free(l.v);
	return id;
}

/* ------------------------------------------------------------------------
 * The envelope.
 */

static bool
name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

static void
envelope_field(struct fm_envelope *env, const char *name, size_t nlen,
               const char *value, size_t vlen, struct addr_list *to,
               struct addr_list *cc, struct id_list *refs, bool *seen_date)
{
	char *clean;
	if (name_is(name, nlen, "subject")) {
		if (env->subject == NULL)
			env->subject = fm_mime_decode_header(value, vlen);
		return;
	}
	bool from = name_is(name, nlen, "from");
	bool date = name_is(name, nlen, "date");
	bool mid = name_is(name, nlen, "message-id");
	bool irt = name_is(name, nlen, "in-reply-to");
	bool is_to = name_is(name, nlen, "to");
	bool is_cc = name_is(name, nlen, "cc");
	bool ref = name_is(name, nlen, "references");
	if ((from && env->from.addr != NULL) || (date && *seen_date) ||
	    (mid && env->message_id != NULL) ||
	    (irt && env->in_reply_to != NULL) || (ref && refs->seen > 0))
		return;
	if (!(from || date || mid || irt || is_to || is_cc || ref))
		return;
	clean = clean_line(value, vlen, FM_MIME_HEADER_MAX * 3);
	size_t len = strlen(clean);
	if (date) {
		*seen_date = true;
		env->date_valid = fm_mime_parse_date(clean, len, &env->date);
		if (!env->date_valid)
			env->date = 0;
	} else if (from) {
		struct addr_list l = {.max = 1};
		addr_parse(clean, len, &l);
		if (l.n > 0) {
			env->from = l.v[0];
		} else {
			env->from.name = xstrdup("");
			env->from.addr = xstrdup("");
		}
		free(l.v);
	} else if (is_to || is_cc) {
		addr_parse(clean, len, is_to ? to : cc);
	} else if (mid) {
		env->message_id = id_first(clean, len);
	} else if (irt) {
		env->in_reply_to = id_first(clean, len);
	} else {
		ids_parse(clean, len, refs);
	}
	free(clean);
}

static struct fm_envelope *
envelope_from(const char *data, size_t len, uint64_t size)
{
	struct fm_envelope *env = xcalloc(1, sizeof(*env));
	struct addr_list to = {.max = FM_MIME_ADDRESSES_MAX};
	struct addr_list cc = {.max = FM_MIME_ADDRESSES_MAX};
	struct id_list refs = {.max = FM_MIME_REFERENCES_MAX};
	bool seen_date = false;
	struct fm_mime_header_iter it;
	const char *name, *value;
	size_t nlen, vlen;
	fm_mime_header_iter_init(&it, data, len);
	while (fm_mime_header_next(&it, &name, &nlen, &value, &vlen))
		envelope_field(env, name, nlen, value, vlen, &to, &cc, &refs,
		               &seen_date);
	if (it.cut)
		env->flags |= FM_ENVELOPE_HEADER_CUT;
	if (!it.ended)
		env->flags |= FM_ENVELOPE_NO_BODY;
	if (env->subject == NULL)
		env->subject = xstrdup("");
	if (env->from.addr == NULL) {
		env->from.name = xstrdup("");
		env->from.addr = xstrdup("");
	}
	env->to = to.v;
	env->to_count = to.n;
	env->cc = cc.v;
	env->cc_count = cc.n;
	id_unring(&refs);
	env->references = refs.v;
	env->references_count = refs.n;
	env->size = size;
	return env;
}

int
fm_mime_envelope_parse(const char *data, size_t len, struct fm_envelope **env_r,
                       struct fm_error *err)
{
	(void)err;
	*env_r = envelope_from(data, len, len);
	return 0;
}

/* The header block ends within the len bytes at p (searching from from). */
static bool
has_header_end(const char *p, size_t len, size_t from)
{
	from = from >= 2 ? from - 2 : 0;
	for (size_t i = from; i + 1 < len; i++) {
		if (p[i] != '\n')
			continue;
		if (p[i + 1] == '\n' ||
		    (p[i + 1] == '\r' && i + 2 < len && p[i + 2] == '\n'))
			return true;
	}
	return false;
}

int
fm_mime_envelope_read(const char *path, struct fm_envelope **env_r,
                      struct fm_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fm_error_errno(err, FM_ERR_LOCAL, errno,
		                      _("Cannot open the message %s"), path);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return fm_error_errno(err, FM_ERR_LOCAL, e,
		                      _("Cannot read the message %s"), path);
	}
	/* Most header blocks are a few KiB: read in steps until the empty
	 * line shows up. */
	size_t cap = 16 * 1024, len = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			free(buf);
			return fm_error_errno(err, FM_ERR_LOCAL, e,
			                      _("Cannot read the message %s"),
			                      path);
		}
		if (r == 0)
			break;
		size_t old = len;
		len += (size_t)r;
		if (has_header_end(buf, len, old))
			break;
		if (len == cap) {
			if (cap >= FM_MIME_HEADER_MAX)
				break;
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
	}
	close(fd);
	*env_r = envelope_from(buf, len, (uint64_t)st.st_size);
	free(buf);
	return 0;
}

static void
address_free(struct fm_mime_address *a)
{
	free(a->name);
	free(a->addr);
}

void
fm_envelope_free(struct fm_envelope **envp)
{
	struct fm_envelope *env = *envp;
	if (env == NULL)
		return;
	address_free(&env->from);
	for (size_t i = 0; i < env->to_count; i++)
		address_free(&env->to[i]);
	for (size_t i = 0; i < env->cc_count; i++)
		address_free(&env->cc[i]);
	for (size_t i = 0; i < env->references_count; i++)
		free(env->references[i]);
	free(env->to);
	free(env->cc);
	free(env->references);
	free(env->subject);
	free(env->message_id);
	free(env->in_reply_to);
	free(env);
	*envp = NULL;
}

const char *
fm_envelope_thread_parent(const struct fm_envelope *env)
{
	if (env->references_count > 0)
		return env->references[env->references_count - 1];
	return env->in_reply_to;
}

/* ------------------------------------------------------------------------
 * The terminal.
 */

static bool
codeset_is_utf8(const char *cs)
{
	return strcasecmp(cs, "UTF-8") == 0 || strcasecmp(cs, "UTF8") == 0;
}

char *
fm_mime_to_locale(const char *utf8)
{
	size_t len = strlen(utf8);
	struct fm_buf clean;
	struct sink s;
	fm_buf_init(&clean, SIZE_MAX / 2);
	sink_init(&s, &clean, SINK_BODY);
	sink_text(&s, utf8, len);
	sink_finish(&s);
	const char *cs = nl_langinfo(CODESET);
	if (cs == NULL || codeset_is_utf8(cs))
		return fm_buf_steal(&clean);

	char to[96];
	snprintf(to, sizeof(to), "%s//TRANSLIT", cs);
	iconv_t cd = iconv_open(to, "UTF-8");
	struct fm_buf out;
	fm_buf_init(&out, SIZE_MAX / 2);
	char *in = clean.data;
	size_t inleft = clean.len;
	char tmp[4096];
	while (inleft > 0) {
		if (cd == (iconv_t)-1) {
			/* No converter at all: ASCII, '?' for the rest. */
			unsigned char c = (unsigned char)*in;
			uint32_t cp;
			size_t n = c < 0x80 ? 1
			                    : utf8_char((unsigned char *)in,
			                                inleft, &cp);
			n = n == 0 ? 1 : n;
			fm_buf_append_char(&out, c < 0x80 ? (char)c : '?');
			in += n;
			inleft -= n;
			continue;
		}
		char *o = tmp;
		size_t oleft = sizeof(tmp);
		size_t r = iconv(cd, &in, &inleft, &o, &oleft);
		int e = errno;
		fm_buf_append(&out, tmp, (size_t)(o - tmp));
		if (r != (size_t)-1 || e == E2BIG)
			continue;
		/* Not representable even transliterated: one '?' for the
		 * whole character (the input is valid UTF-8 here). */
		uint32_t cp;
		size_t n = utf8_char((unsigned char *)in, inleft, &cp);
		n = n == 0 ? 1 : n;
		fm_buf_append_char(&out, '?');
		in += n;
		inleft -= n;
	}
	if (cd != (iconv_t)-1) {
		char *o = tmp;
		size_t oleft = sizeof(tmp);
		iconv(cd, NULL, NULL, &o, &oleft);
		fm_buf_append(&out, tmp, (size_t)(o - tmp));
		iconv_close(cd);
	}
	fm_buf_free(&clean);
	return fm_buf_steal(&out);
}

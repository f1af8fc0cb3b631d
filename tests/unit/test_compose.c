/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The message builder: every message it makes is read back with the
 * project's own reader (envelope, render, header decoding), a strict
 * test-only QP and base64 decoder, and libetpan's decoder. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libetpan/libetpan.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "mime/mime.h"

/* ------------------------------------------------------------------------
 * Helpers: reading a built message back.
 */

/* The invariants of every built message: LF line ends, lines of at most
 * 998 octets, 7-bit, no NUL, a final line end; in the header block every
 * encoded word is at most 75 characters and decodes to whole UTF-8
 * characters on its own. */
static void
assert_wellformed(const char *d, size_t len)
{
	assert_true(len > 0);
	assert_int_equal(d[len], '\0');
	assert_int_equal(d[len - 1], '\n');
	size_t line = 0, lineno = 1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c == '\n') {
			line = 0;
			lineno++;
			continue;
		}
		if (c == '\r' || c == '\0' || c >= 0x80)
			fail_msg("byte 0x%02x on line %zu", c, lineno);
		if (++line > 998)
			fail_msg("line %zu is longer than 998", lineno);
	}
	const char *end = strstr(d, "\n\n");
	assert_non_null(end);
	for (const char *p = d; p < end;) {
		const char *ew = strstr(p, "=?");
		if (ew == NULL || ew >= end)
			break;
		/* "=?UTF-8?Q?" has two more '?' before its end. */
		const char *e = ew + 2;
		for (int k = 0; k < 2 && e != NULL; k++)
			e = strchr(e, '?') != NULL ? strchr(e, '?') + 1 : NULL;
		assert_non_null(e);
		const char *q = strstr(e, "?=");
		assert_non_null(q);
		size_t n = (size_t)(q + 2 - ew);
		if (n > 75)
			fail_msg("encoded word of %zu characters: %.*s", n,
			         (int)n, ew);
		char *one = fm_mime_decode_header(ew, n);
		if (strstr(one, "\xef\xbf\xbd") != NULL)
			fail_msg("encoded word splits a character: %.*s",
			         (int)n, ew);
		free(one);
		p = q + 2;
	}
}

/* Header lines are folded at white space: a line passes 78 characters
 * only when it holds a single token (a quoted string counts as one). */
static void
assert_folded(const char *d)
{
	const char *end = strstr(d, "\n\n");
	for (const char *p = d; p < end;) {
		const char *nl = strchr(p, '\n');
		size_t n = (size_t)(nl - p);
		const char *t = p + 1;
		if (*p != ' ') { /* skip "Name: " */
			t = memchr(p, ':', n);
			assert_non_null(t);
			t += 2;
		}
		bool quote = false, spaced = false;
		for (const char *q = t; q < nl; q++) {
			if (*q == '"' && q[-1] != '\\')
				quote = !quote;
			spaced |= *q == ' ' && !quote;
		}
		if (n > 78 && spaced)
			fail_msg("line of %zu not folded: %.*s", n, (int)n, p);
		p = nl + 1;
	}
}

static char *
compose_ok(const struct fm_compose *c, size_t *len_r)
{
	char *d = NULL;
	size_t len = 0;
	struct fm_error err;
	fm_error_clear(&err);
	if (fm_mime_compose(c, &d, &len, &err) != 0)
		fail_msg("compose failed: %s", err.user);
	assert_non_null(d);
	assert_int_equal(strlen(d), len);
	assert_wellformed(d, len);
	assert_folded(d);
	*len_r = len;
	return d;
}

static void
compose_fails(const struct fm_compose *c, enum fm_error_class cls,
              const char *want)
{
	char *d = (char *)"untouched";
	size_t len = 7;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_mime_compose(c, &d, &len, &err), -1);
	assert_string_equal(d, "untouched");
	assert_int_equal(len, 7);
	assert_int_equal(err.cls, cls);
	if (strstr(err.user, want) == NULL)
		fail_msg("message '%s' lacks '%s'", err.user, want);
}

/* The raw value of the first field name in the header of d (unfolded:
 * line ends removed), or NULL. */
static char *
raw_field(const char *d, size_t len, const char *name)
{
	struct fm_mime_header_iter it;
	const char *n, *v;
	size_t nl, vl;
	fm_mime_header_iter_init(&it, d, len);
	while (fm_mime_header_next(&it, &n, &nl, &v, &vl)) {
		if (strlen(name) != nl || strncasecmp(n, name, nl) != 0)
			continue;
		char *out = xmalloc(vl + 1);
		size_t o = 0;
		for (size_t i = 0; i < vl; i++)
			if (v[i] != '\n')
				out[o++] = v[i];
		out[o] = '\0';
		return out;
	}
	return NULL;
}

static size_t
count_fields(const char *d, size_t len, const char *name)
{
	struct fm_mime_header_iter it;
	const char *n, *v;
	size_t nl, vl, count = 0;
	fm_mime_header_iter_init(&it, d, len);
	while (fm_mime_header_next(&it, &n, &nl, &v, &vl))
		count += strlen(name) == nl && strncasecmp(n, name, nl) == 0;
	return count;
}

/* The body after the header block. */
static const char *
body_of(const char *d, size_t len, size_t *blen_r)
{
	struct fm_mime_header_iter it;
	const char *n, *v;
	size_t nl, vl;
	fm_mime_header_iter_init(&it, d, len);
	while (fm_mime_header_next(&it, &n, &nl, &v, &vl))
		;
	assert_true(it.ended);
	*blen_r = len - it.body;
	return d + it.body;
}

static int
hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* lower case is not what we write */
}

/* A strict quoted-printable decoder: fails on anything RFC 2045 does not
 * allow, on lines over 76 characters and on white space at a line end. */
static char *
qp_decode(const char *s, size_t n, size_t *len_r)
{
	char *out = xmalloc(n + 1);
	size_t o = 0, col = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '\n') {
			if (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t'))
				fail_msg("QP: white space at a line end");
			out[o++] = '\n';
			col = 0;
			continue;
		}
		if (++col > 76)
			fail_msg("QP: line over 76 characters");
		if (c != '=') {
			if ((unsigned char)c < 0x20 && c != '\t')
				fail_msg("QP: raw control character");
			out[o++] = c;
			continue;
		}
		if (i + 1 < n && s[i + 1] == '\n') {
			i++; /* soft line break */
			col = 0;
			continue;
		}
		if (i + 2 >= n || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0)
			fail_msg("QP: bad escape at %zu", i);
		out[o++] = (char)(hex(s[i + 1]) * 16 + hex(s[i + 2]));
		i += 2;
		col += 2;
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}

/* A strict base64 decoder: lines of 76 characters but the last, the
 * alphabet and padding only. */
static char *
b64_decode(const char *s, size_t n, size_t *len_r)
{
	static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
	                          "opqrstuvwxyz0123456789+/";
	char *out = xmalloc(n + 1);
	size_t o = 0, col = 0, lines = 0;
	unsigned v = 0;
	int bits = 0, pad = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '\n') {
			lines++;
			if (col != 76 && i + 1 < n)
				fail_msg("base64: line %zu has %zu characters",
				         lines, col);
			col = 0;
			continue;
		}
		col++;
		if (c == '=') {
			pad++;
			continue;
		}
		const char *p = strchr(B64, c);
		if (p == NULL || c == '\0' || pad > 0)
			fail_msg("base64: bad character 0x%02x", c);
		v = v << 6 | (unsigned)(p - B64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)(v >> bits & 0xff);
		}
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}

/* The same through libetpan, for a second opinion. */
static char *
etpan_decode(const char *s, size_t n, int mechanism, size_t *len_r)
{
	size_t idx = 0, dlen = 0;
	char *dec = NULL;
	assert_int_equal(
	    mailmime_part_parse(s, n, &idx, mechanism, &dec, &dlen),
	    MAILIMF_NO_ERROR);
	char *out = xmalloc(dlen + 1);
	memcpy(out, dec, dlen);
	out[dlen] = '\0';
	mailmime_decoded_part_free(dec);
	*len_r = dlen;
	return out;
}

/* Decodes a text part's body by its Content-Transfer-Encoding. */
static char *
decode_body(const char *cte, const char *s, size_t n, size_t *len_r)
{
	if (strcmp(cte, "7bit") == 0) {
		*len_r = n;
		return xstrndup(s, n);
	}
	if (strcmp(cte, "quoted-printable") == 0)
		return qp_decode(s, n, len_r);
	assert_string_equal(cte, "base64");
	return b64_decode(s, n, len_r);
}

struct part {
	char *head; /* the part's header block, NUL-terminated */
	size_t head_len;
	const char *body; /* into the message */
	size_t body_len;
};

/* The parts of a multipart message built by us, by its boundary. */
static size_t
split_parts(const char *d, size_t len, struct part *parts, size_t max,
            char **boundary_r)
{
	char *ct = raw_field(d, len, "Content-Type");
	assert_non_null(ct);
	const char *b = strstr(ct, "boundary=\"");
	assert_non_null(b);
	b += 10;
	char *boundary = xstrndup(b, (size_t)(strchr(b, '"') - b));
	free(ct);
	char *delim = xasprintf("--%s", boundary);
	size_t dl = strlen(delim);
	size_t blen;
	const char *body = body_of(d, len, &blen);
	assert_true(blen > dl && memcmp(body, delim, dl) == 0);
	const char *p = body + dl;
	const char *end = body + blen;
	size_t n = 0;
	for (;;) {
		assert_int_equal(*p, '\n');
		p++;
		char *nd = xasprintf("\n%s", delim);
		const char *next = memmem(p, (size_t)(end - p), nd, dl + 1);
		free(nd);
		assert_non_null(next);
		assert_true(n < max);
		const char *sep = memmem(p, (size_t)(next - p), "\n\n", 2);
		assert_non_null(sep);
		parts[n].head = xstrndup(p, (size_t)(sep - p) + 1);
		parts[n].head_len = (size_t)(sep - p) + 1;
		parts[n].body = sep + 2;
		parts[n].body_len = (size_t)(next - sep - 2);
		n++;
		p = next + 1 + dl;
		if (end - p >= 2 && memcmp(p, "--", 2) == 0) {
			assert_true(end - p == 3 && p[2] == '\n');
			break;
		}
	}
	free(delim);
	*boundary_r = boundary;
	return n;
}

static void
parts_free(struct part *parts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(parts[i].head);
}

static struct fm_envelope *
envelope(const char *d, size_t len)
{
	struct fm_envelope *env = NULL;
	assert_int_equal(fm_mime_envelope_parse(d, len, &env, NULL), 0);
	assert_int_equal(env->flags, 0);
	return env;
}

/* text with white space runs as one space, trimmed: what a reader shows
 * of a one-line header text. */
static char *
squeezed(const char *text)
{
	char *out = xstrdup(text);
	size_t o = 0;
	for (const char *p = text; *p != '\0'; p++) {
		bool ws = *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n';
		if (ws && (o == 0 || out[o - 1] == ' '))
			continue;
		out[o++] = ws ? ' ' : *p;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	return out;
}

/* ------------------------------------------------------------------------
 * A plain message, byte for byte.
 */

static void
test_plain(void **state)
{
	const struct fm_compose_header ua[] = {
	    {"User-Agent", "fulmar/0.1.0"},
	    {"X-Empty", ""},
	    {"X-Null", NULL},
	};
	struct fm_compose c = {
	    .from_name = "Alice Example",
	    .from_addr = "alice@example.org",
	    .to = "Bob <bob@example.net>, carol@example.net",
	    .cc = "\"Doe, John\" <john@example.com>",
	    .bcc = "secret@example.org",
	    .subject = "Lunch on Friday?",
	    .date = 1678782410, /* 2023-03-14 08:26:50 UTC */
	    .utc_offset = 3600,
	    .message_id = "<m1@example.org>",
	    .headers = ua,
	    .header_count = FM_ARRAY_LEN(ua),
	    .body = "Hi Bob,\r\n\r\nsee you.",
	};
	size_t len;
	char *d = compose_ok(&c, &len);
	assert_string_equal(d, "Date: Tue, 14 Mar 2023 09:26:50 +0100\n"
	                       "From: Alice Example <alice@example.org>\n"
	                       "To: Bob <bob@example.net>, carol@example.net\n"
	                       "Cc: \"Doe, John\" <john@example.com>\n"
	                       "Bcc: secret@example.org\n"
	                       "Subject: Lunch on Friday?\n"
	                       "Message-ID: <m1@example.org>\n"
	                       "User-Agent: fulmar/0.1.0\n"
	                       "MIME-Version: 1.0\n"
	                       "Content-Type: text/plain; charset=us-ascii\n"
	                       "Content-Transfer-Encoding: 7bit\n"
	                       "\n"
	                       "Hi Bob,\n"
	                       "\n"
	                       "see you.\n");
	/* The project's reader agrees. */
	struct fm_envelope *e = envelope(d, len);
	assert_true(e->date_valid);
	assert_int_equal(e->date, 1678782410);
	assert_string_equal(e->from.name, "Alice Example");
	assert_string_equal(e->from.addr, "alice@example.org");
	assert_int_equal(e->to_count, 2);
	assert_string_equal(e->to[0].name, "Bob");
	assert_string_equal(e->to[1].addr, "carol@example.net");
	assert_string_equal(e->cc[0].name, "Doe, John");
	assert_string_equal(e->subject, "Lunch on Friday?");
	assert_string_equal(e->message_id, "m1@example.org");
	fm_envelope_free(&e);
	/* The sending side's view: all recipients, and no Bcc on the
	 * wire. */
	struct fm_mime_addresses l;
	assert_int_equal(fm_mime_recipients(d, len, &l, NULL), 0);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.items[3].addr, "secret@example.org");
	fm_mime_addresses_free(&l);
	size_t slen;
	char *wire = fm_mime_strip_bcc(d, len, &slen);
	assert_int_equal(slen, len - strlen("Bcc: secret@example.org\n"));
	assert_null(strstr(wire, "secret"));
	free(wire);
	free(d);

	/* Negative offsets, minutes, no Cc/Bcc/Subject, an empty body. */
	struct fm_compose m = {
	    .from_addr = "Bob <bob@example.net>",
	    .to = "alice@example.org",
	    .date = 1678782410,
	    .utc_offset = -(4 * 3600 + 30 * 60),
	    .message_id = "x@y",
	};
	d = compose_ok(&m, &len);
	assert_string_equal(d, "Date: Tue, 14 Mar 2023 03:56:50 -0430\n"
	                       "From: Bob <bob@example.net>\n"
	                       "To: alice@example.org\n"
	                       "Message-ID: <x@y>\n"
	                       "MIME-Version: 1.0\n"
	                       "Content-Type: text/plain; charset=us-ascii\n"
	                       "Content-Transfer-Encoding: 7bit\n"
	                       "\n");
	free(d);
	/* date 0 is now, in the local zone. */
	m.date = 0;
	time_t before = time(NULL);
	d = compose_ok(&m, &len);
	e = envelope(d, len);
	assert_true(e->date_valid);
	assert_true(e->date >= before && e->date <= time(NULL));
	fm_envelope_free(&e);
	free(d);
}

/* ------------------------------------------------------------------------
 * Header encoding.
 */

static void
test_subjects(void **state)
{
	char *long_ascii = xmalloc(5001);
	memset(long_ascii, 'a', 5000);
	long_ascii[5000] = '\0';
	char *long_word = xmalloc(801);
	memset(long_word, 'w', 800);
	long_word[800] = '\0';
	struct fm_buf mixed;
	fm_buf_init(&mixed, 1 << 20);
	for (int i = 0; i < 60; i++)
		fm_buf_append_str(&mixed, i % 3 == 0   ? "Grüße "
		                          : i % 3 == 1 ? "und "
		                                       : "日本語テキスト ");
	const char *subjects[] = {
	    "Lunch on Friday?",
	    "Grüße aus München",
	    "Re: [fulmar] Ümlaut in the middle of a sentence, then ASCII",
	    "日本語の件名",
	    "Emoji 🎉🎉🎉 party, 4-byte characters: 𝄞𝄞𝄞",
	    "Русский текст в теме письма, довольно длинный, чтобы его "
	    "пришлось разбить на несколько закодированных слов",
	    "Looks encoded: =?UTF-8?Q?x?= but is not",
	    "Spaces   and\ttabs\r\nand line breaks",
	    "  leading and trailing  ",
	    "=?",
	    "a_b=c?d",
	    long_ascii,
	    long_word,
	    mixed.data,
	    "x",
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(subjects); i++) {
		struct fm_compose c = {
		    .from_addr = "a@example.org",
		    .date = 1,
		    .message_id = "m@x",
		    .subject = subjects[i],
		};
		size_t len;
		char *d = compose_ok(&c, &len);
		struct fm_envelope *e = envelope(d, len);
		char *want = squeezed(subjects[i]);
		if (strcmp(e->subject, want) != 0)
			fail_msg("subject '%s' came back as '%s'", want,
			         e->subject);
		free(want);
		fm_envelope_free(&e);
		free(d);
	}
	/* What the words look like. */
	struct fm_compose c = {.from_addr = "a@example.org",
	                       .date = 1,
	                       .message_id = "m@x",
	                       .subject = "Re: Grüße aus München"};
	size_t len;
	char *d = compose_ok(&c, &len);
	assert_non_null(strstr(d, "\nSubject: Re: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= "
	                          "aus =?UTF-8?Q?M=C3=BCnchen?=\n"));
	free(d);
	c.subject = "日本語の件名";
	d = compose_ok(&c, &len);
	assert_non_null(
	    strstr(d, "\nSubject: =?UTF-8?B?5pel5pys6Kqe44Gu5Lu25ZCN?=\n"));
	free(d);
	free(long_ascii);
	free(long_word);
	fm_buf_free(&mixed);
}

static void
test_addresses(void **state)
{
	char *long_name = xmalloc(5001);
	for (int i = 0; i < 5000; i++)
		long_name[i] = i % 7 == 6 ? ' ' : 'n';
	long_name[5000] = '\0';
	struct fm_compose c = {
	    .from_name = "Jörg Müller",
	    .from_addr = "joerg@münchen.de",
	    .to = "=?ISO-8859-1?Q?Andr=E9?= Pirard <andre@example.be>, "
	          "\"Doe, John\" <john@example.com>, "
	          "\"Say \\\"hi\\\"\" <hi@example.com>",
	    .cc = "Team: =?UTF-8?B?5bGx55Sw5aSq6YOO?= <taro@example.jp>, "
	          "x@example.org;, \"=?not encoded?=\" <ne@example.org>, "
	          "John Q. Public <jqp@example.com>",
	    .bcc = "\"Ünïcödé, the Second\" <u@Bücher.example>",
	    .reply_to = "list@example.org (The List)",
	    .date = 1,
	    .message_id = "m@x",
	};
	size_t len;
	char *d = compose_ok(&c, &len);
	char *from = raw_field(d, len, "From");
	assert_string_equal(from, " =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= "
	                          "<joerg@xn--mnchen-3ya.de>");
	free(from);
	char *rt = raw_field(d, len, "Reply-To");
	assert_string_equal(rt, " The List <list@example.org>");
	free(rt);
	/* Every field reads back through the strict parser with the same
	 * names, addresses and groups. */
	struct fm_mime_addresses l;
	struct fm_error err;
	fm_error_clear(&err);
	if (fm_mime_recipients(d, len, &l, &err) != 0)
		fail_msg("%s", err.user);
	assert_int_equal(l.n, 8);
	static const char *const names[] = {
	    "André Pirard",
	    "Doe, John",
	    "Say \"hi\"",
	    "山田太郎",
	    NULL,
	    "=?not encoded?=",
	    "John Q. Public",
	    "Ünïcödé, the Second",
	};
	static const char *const addrs[] = {
	    "andre@example.be", "john@example.com",        "hi@example.com",
	    "taro@example.jp",  "x@example.org",           "ne@example.org",
	    "jqp@example.com",  "u@xn--bcher-kva.example",
	};
	for (size_t i = 0; i < l.n; i++) {
		if (names[i] == NULL)
			assert_null(l.items[i].name);
		else
			assert_string_equal(l.items[i].name, names[i]);
		assert_string_equal(l.items[i].addr, addrs[i]);
		if (i == 3 || i == 4)
			assert_string_equal(l.items[i].group, "Team");
		else
			assert_null(l.items[i].group);
	}
	fm_mime_addresses_free(&l);
	char *cc = raw_field(d, len, "Cc");
	assert_non_null(strstr(cc, " Team: =?UTF-8?B?5bGx55Sw5aSq6YOO?= "
	                           "<taro@example.jp>, x@example.org;,"));
	free(cc);
	/* The envelope reader agrees on the visible names. */
	struct fm_envelope *e = envelope(d, len);
	assert_string_equal(e->from.name, "Jörg Müller");
	assert_string_equal(e->to[0].name, "André Pirard");
	assert_string_equal(e->to[2].name, "Say \"hi\"");
	free(d);
	fm_envelope_free(&e);

	/* A 5000-character name, and 300 recipients, stay within the line
	 * limit and come back whole. */
	struct fm_buf many;
	fm_buf_init(&many, 1 << 20);
	for (int i = 0; i < 300; i++)
		fm_buf_printf(&many, "%sÜser %d <u%d@example.org>",
		              i > 0 ? ", " : "", i, i);
	struct fm_compose big = {
	    .from_name = long_name,
	    .from_addr = "a@example.org",
	    .to = many.data,
	    .date = 1,
	    .message_id = "m@x",
	};
	d = compose_ok(&big, &len);
	e = envelope(d, len);
	assert_string_equal(e->from.name, long_name);
	assert_int_equal(e->to_count, 300);
	assert_string_equal(e->to[299].name, "Üser 299");
	assert_string_equal(e->to[299].addr, "u299@example.org");
	fm_envelope_free(&e);
	free(d);
	fm_buf_free(&many);
	free(long_name);
}

/* ------------------------------------------------------------------------
 * The text body.
 */

static void
check_body(const char *body, const char *want_cte, const char *want_charset)
{
	struct fm_compose c = {.from_addr = "a@example.org",
	                       .date = 1,
	                       .message_id = "m@x",
	                       .body = body};
	size_t len;
	char *d = compose_ok(&c, &len);
	char *cte = raw_field(d, len, "Content-Transfer-Encoding");
	char *ct = raw_field(d, len, "Content-Type");
	char *want_ct = xasprintf(" text/plain; charset=%s", want_charset);
	if (want_cte != NULL)
		assert_string_equal(cte + 1, want_cte);
	assert_string_equal(ct, want_ct);
	/* LF line ends and a final one. */
	struct fm_buf norm;
	fm_buf_init(&norm, SIZE_MAX / 2);
	for (size_t i = 0; body[i] != '\0'; i++) {
		if (body[i] == '\r' && body[i + 1] == '\n')
			continue;
		fm_buf_append_char(&norm, body[i] == '\r' ? '\n' : body[i]);
	}
	if (norm.len > 0 && norm.data[norm.len - 1] != '\n')
		fm_buf_append_char(&norm, '\n');
	size_t blen, dlen;
	const char *b = body_of(d, len, &blen);
	/* No line of the encoded text starts with mbox's "From ". */
	for (size_t i = 0; strcmp(cte + 1, "7bit") != 0 && i + 5 <= blen; i++)
		if ((i == 0 || b[i - 1] == '\n') &&
		    memcmp(b + i, "From ", 5) == 0)
			fail_msg("an encoded line starts with From");
	char *dec = decode_body(cte + 1, b, blen, &dlen);
	assert_int_equal(dlen, norm.len);
	assert_memory_equal(dec, norm.data, dlen);
	free(dec);
	/* libetpan decodes it the same (its QP decoder gives CRLF). */
	if (strcmp(cte + 1, "7bit") != 0) {
		int mech = strcmp(cte + 1, "base64") == 0
		               ? MAILMIME_MECHANISM_BASE64
		               : MAILMIME_MECHANISM_QUOTED_PRINTABLE;
		dec = etpan_decode(b, blen, mech, &dlen);
		size_t o = 0;
		for (size_t i = 0; i < dlen; i++)
			if (!(dec[i] == '\r' && i + 1 < dlen &&
			      dec[i + 1] == '\n'))
				dec[o++] = dec[i];
		assert_int_equal(o, norm.len);
		assert_memory_equal(dec, norm.data, o);
		free(dec);
	}
	/* And the renderer shows the text. */
	struct fm_mime_render *r = fm_mime_render(d, len);
	assert_int_equal(r->notes & FM_MIME_NOTE_BROKEN, 0);
	/* The first line of the text is there (when it has nothing the
	 * renderer would replace). */
	char *first = xstrndup(norm.data, strcspn(norm.data, "\n"));
	bool printable = strlen(first) < 2000;
	for (const char *p = first; *p != '\0'; p++)
		printable &= (unsigned char)*p >= 0x20 && *p != 0x7f;
	if (printable)
		assert_non_null(strstr(r->text, first));
	free(first);
	fm_mime_render_free(&r);
	fm_buf_free(&norm);
	free(want_ct);
	free(cte);
	free(ct);
	free(d);
}

static void
test_body(void **state)
{
	check_body("plain ASCII\n\twith a tab\f and a form feed\n", "7bit",
	           "us-ascii");
	check_body("", "7bit", "us-ascii");
	check_body("no final line end", "7bit", "us-ascii");
	check_body("CRLF\r\nand lone CR\rend\r\n", "7bit", "us-ascii");
	check_body("Grüße aus München,\nbis bald!\n", "quoted-printable",
	           "utf-8");
	check_body("Привет! Это письмо написано по-русски, почти без "
	           "латинских букв.\nВторая строка.\n",
	           "base64", "utf-8");
	check_body("日本語のテキストです。\n", "base64", "utf-8");
	/* libetpan 1.9.4 doubles this trailing white space: we must not. */
	check_body("trailing space \ntrailing tab\t\nü\n", "quoted-printable",
	           "utf-8");
	check_body("From the start\nFrom here\n=3D is not an escape\n.\n",
	           "7bit", "us-ascii");
	check_body("From me, ü\n.\n..\n", "quoted-printable", "utf-8");
	check_body("a control \x01 character\n", "quoted-printable",
	           "us-ascii");
	/* The 998 limit: a 5000-character line goes quoted-printable. */
	char *line = xmalloc(5002);
	memset(line, 'x', 5000);
	line[5000] = '\n';
	line[5001] = '\0';
	check_body(line, "quoted-printable", "us-ascii");
	line[998] = '\n';
	line[999] = '\0';
	check_body(line, "7bit", "us-ascii");
	line[998] = 'x';
	check_body(line, "quoted-printable", "us-ascii");
	free(line);
	/* Random text: every encoding reads back exactly. */
	static const char *const pieces[] = {
	    "a",
	    "b",
	    " ",
	    "\t",
	    "\n",
	    "=",
	    ".",
	    "From ",
	    "ü",
	    "€",
	    "𝄞",
	    "?",
	    "_",
	    "\r\n",
	    "  \n",
	    "日",
	    "xxxxxxxxxxxxxxxxxxxxxxx",
	};
	srand(7);
	for (int round = 0; round < 300; round++) {
		struct fm_buf b;
		fm_buf_init(&b, 1 << 20);
		int n = rand() % 400;
		for (int i = 0; i < n; i++)
			fm_buf_append_str(
			    &b, pieces[rand() % (int)FM_ARRAY_LEN(pieces)]);
		check_body(b.data, NULL,
		           strpbrk(b.data, "\x80\x81\x82\x83\x84\x85\x86\x87"
		                           "\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f"
		                           "\x90\x91\x92\x93\x94\x95\x96\x97"
		                           "\x98\x99\x9a\x9b\x9c\x9d\x9e\x9f"
		                           "\xa0\xa1\xa2\xa3\xa4\xa5\xa6\xa7"
		                           "\xa8\xa9\xaa\xab\xac\xad\xae\xaf"
		                           "\xb0\xb1\xb2\xb3\xb4\xb5\xb6\xb7"
		                           "\xb8\xb9\xba\xbb\xbc\xbd\xbe\xbf")
		               ? "utf-8"
		               : "us-ascii");
		fm_buf_free(&b);
	}
	struct fm_compose c = {.from_addr = "a@example.org",
	                       .body = "bad \xff UTF-8\n"};
	compose_fails(&c, FM_ERR_USAGE, "not valid UTF-8");
}

/* ------------------------------------------------------------------------
 * Attachments.
 */

struct tmp {
	char dir[256];
	char *paths[8];
	size_t n;
};

static const char *
tmp_file(struct tmp *t, const char *name, const void *data, size_t len)
{
	char *path = xasprintf("%s/%s", t->dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	t->paths[t->n++] = path;
	return path;
}

static void
tmp_init(struct tmp *t)
{
	const char *base = getenv("TMPDIR");
	snprintf(t->dir, sizeof(t->dir), "%s/fulmar-compose-XXXXXX",
	         base != NULL && base[0] != '\0' ? base : "/tmp");
	assert_non_null(mkdtemp(t->dir));
	t->n = 0;
}

static void
tmp_free(struct tmp *t)
{
	for (size_t i = 0; i < t->n; i++) {
		unlink(t->paths[i]);
		free(t->paths[i]);
	}
	rmdir(t->dir);
}

/* The value of a parameter in a part's header, as written. */
static char *
part_field(const struct part *p, const char *name)
{
	return raw_field(p->head, p->head_len + 1, name);
}

/* Percent-decodes an RFC 2231 section. */
static char *
pct_decode(const char *s, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			assert_true(i + 2 < n + 1 && hex(s[i + 1]) >= 0 &&
			            hex(s[i + 2]) >= 0);
			out[o++] = (char)(hex(s[i + 1]) * 16 + hex(s[i + 2]));
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

static void
test_attachments(void **state)
{
	struct tmp t;
	tmp_init(&t);
	/* Random bytes, and a text that holds would-be boundaries. */
	size_t blen = 100000;
	unsigned char *bin = xmalloc(blen);
	srand(11);
	for (size_t i = 0; i < blen; i++)
		bin[i] = (unsigned char)(rand() & 0xff);
	const char *p_bin = tmp_file(&t, "data.bin", bin, blen);
	const char pdf[] = "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< >>\n"
	                   "endobj\ntrailer\n<< >>\n%%EOF\n";
	const char *long_name = "Grüße – Bericht 2024 für das Team mit einem "
	                        "sehr langen Namen, der umbrochen wird.pdf";
	const char *p_pdf = tmp_file(&t, "report.pdf", pdf, sizeof(pdf) - 1);
	const char *p_txt = tmp_file(&t, "notes.txt", "hello\n", 6);
	const char *p_empty = tmp_file(&t, "empty", "", 0);
	const char png[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
	const char *p_png = tmp_file(&t, "x.png", png, sizeof(png) - 1);
	const struct fm_compose_attachment att[] = {
	    {p_bin, NULL, NULL},
	    {p_pdf, long_name, NULL},
	    {p_txt, NULL, NULL},
	    {p_empty, NULL, NULL},
	    {p_png, "Bild \"ü\".png", "image/png"},
	};
	struct fm_compose c = {
	    .from_addr = "a@example.org",
	    .to = "b@example.org",
	    .subject = "Files",
	    .date = 1,
	    .message_id = "m@x",
	    .body = "Here they are.\n--=_fulmar_ is in the text, and so is\n"
	            "--=_fulmar_aaaaaaaaaaaaaaaaaaaaaaaa--\n",
	    .attachments = att,
	    .attachment_count = FM_ARRAY_LEN(att),
	};
	size_t len;
	char *d = compose_ok(&c, &len);
	struct part parts[8];
	char *boundary = NULL;
	size_t n = split_parts(d, len, parts, 8, &boundary);
	assert_int_equal(n, 6);
	assert_true(fm_str_has_prefix(boundary, "=_fulmar_"));
	/* The boundary occurs nowhere but in the delimiters. */
	size_t count = 0;
	for (const char *p = d; (p = strstr(p, boundary)) != NULL; p++)
		count++;
	assert_int_equal(count, 1 + 6 + 1); /* header, 6 delimiters, close */
	/* The text part. */
	char *cte = part_field(&parts[0], "Content-Transfer-Encoding");
	assert_string_equal(cte, " 7bit");
	free(cte);
	assert_int_equal(parts[0].body_len, strlen(c.body));
	assert_memory_equal(parts[0].body, c.body, parts[0].body_len);
	/* Each attachment: base64, bytes equal after decoding (ours and
	 * libetpan's decoder). */
	const struct {
		const void *data;
		size_t len;
		const char *type;
	} want[] = {
	    {bin, blen, " application/octet-stream; name=\"data.bin\""},
	    {pdf, sizeof(pdf) - 1, NULL},
	    {"hello\n", 6, " text/plain; charset=us-ascii; name=\"notes.txt\""},
	    {"", 0, " application/octet-stream; name=\"empty\""},
	    {png, sizeof(png) - 1, " image/png; name=\"Bild ___.png\""},
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(want); i++) {
		const struct part *p = &parts[i + 1];
		cte = part_field(p, "Content-Transfer-Encoding");
		assert_string_equal(cte, " base64");
		free(cte);
		if (want[i].type != NULL) {
			char *ct = part_field(p, "Content-Type");
			assert_string_equal(ct, want[i].type);
			free(ct);
		}
		size_t dl;
		char *dec = b64_decode(p->body, p->body_len, &dl);
		assert_int_equal(dl, want[i].len);
		assert_memory_equal(dec, want[i].data, dl);
		free(dec);
		dec = etpan_decode(p->body, p->body_len,
		                   MAILMIME_MECHANISM_BASE64, &dl);
		assert_int_equal(dl, want[i].len);
		assert_memory_equal(dec, want[i].data, dl);
		free(dec);
	}
	/* The long non-ASCII name: a plain fallback, then RFC 2231
	 * sections that each hold whole characters. */
	char *cd = part_field(&parts[2], "Content-Disposition");
	assert_true(fm_str_has_prefix(cd, " attachment; filename=\"Gr__e _ "));
	assert_non_null(strstr(cd, "filename*0*=UTF-8''Gr%C3%BC%C3%9Fe"));
	assert_non_null(strstr(cd, "; filename*1*="));
	struct fm_buf whole;
	fm_buf_init(&whole, 1 << 16);
	for (int k = 0;; k++) {
		char *key = xasprintf("filename*%d*=", k);
		const char *s = strstr(cd, key);
		free(key);
		if (s == NULL)
			break;
		s = strchr(s, '=') + 1;
		if (k == 0) {
			assert_true(fm_str_has_prefix(s, "UTF-8''"));
			s += 7;
		}
		size_t sl = strcspn(s, "; ");
		assert_true(sl <= 60);
		char *sec = pct_decode(s, sl);
		assert_true(fm_mime_utf8_valid(sec, strlen(sec)));
		fm_buf_append_str(&whole, sec);
		free(sec);
	}
	assert_string_equal(whole.data, long_name);
	fm_buf_free(&whole);
	free(cd);
	/* A short name that needs quoting goes RFC 2231 too. */
	cd = part_field(&parts[5], "Content-Disposition");
	assert_string_equal(cd, " attachment; filename=\"Bild ___.png\"; "
	                        "filename*=UTF-8''Bild%20%22%C3%BC%22.png");
	free(cd);
	cd = part_field(&parts[3], "Content-Disposition");
	assert_string_equal(cd, " attachment; filename=\"notes.txt\"");
	free(cd);
	/* The renderer reads it all back: names decoded, types, sizes. */
	struct fm_mime_render *r = fm_mime_render(d, len);
	assert_int_equal(r->notes, 0);
	assert_non_null(strstr(r->text, "Here they are."));
	assert_int_equal(r->attachment_count, 5);
	assert_string_equal(r->attachments[0].filename, "data.bin");
	assert_string_equal(r->attachments[0].type, "application/octet-stream");
	assert_int_equal(r->attachments[0].size, blen);
	assert_string_equal(r->attachments[1].filename, long_name);
	assert_string_equal(r->attachments[1].type, "application/pdf");
	assert_string_equal(r->attachments[2].type, "text/plain");
	assert_string_equal(r->attachments[4].filename, "Bild \"ü\".png");
	assert_string_equal(r->attachments[4].type, "image/png");
	fm_mime_render_free(&r);
	parts_free(parts, n);
	free(boundary);
	free(d);

	/* A body with non-ASCII goes QP inside the multipart too. */
	c.body = "Grüße\n";
	c.attachment_count = 1;
	d = compose_ok(&c, &len);
	n = split_parts(d, len, parts, 8, &boundary);
	assert_int_equal(n, 2);
	cte = part_field(&parts[0], "Content-Transfer-Encoding");
	assert_string_equal(cte, " quoted-printable");
	free(cte);
	size_t dl;
	char *dec = qp_decode(parts[0].body, parts[0].body_len, &dl);
	assert_string_equal(dec, "Grüße\n");
	free(dec);
	parts_free(parts, n);
	free(boundary);
	free(d);

	/* Errors name the file. */
	struct fm_compose_attachment bad = {.path = "/nonexistent/file.pdf"};
	c.attachments = &bad;
	compose_fails(&c, FM_ERR_USAGE, "/nonexistent/file.pdf");
	bad.path = t.dir;
	compose_fails(&c, FM_ERR_USAGE, "not a regular file");
	bad.path = p_txt;
	bad.content_type = "text/plain\r\nBcc: evil@example.org";
	compose_fails(&c, FM_ERR_USAGE, "not a content type");
	bad.content_type = "nosubtype";
	compose_fails(&c, FM_ERR_USAGE, "not a content type");
	bad.content_type = NULL;
	bad.filename = "bad\x01name";
	compose_fails(&c, FM_ERR_USAGE, "control character");
	bad.filename = "";
	compose_fails(&c, FM_ERR_USAGE, "no file name");
	free(bin);
	tmp_free(&t);
}

/* ------------------------------------------------------------------------
 * Message ids and replies.
 */

static void
test_ids(void **state)
{
	struct fm_compose c = {.from_addr = "Me <me@Bücher.example>",
	                       .date = 1700000000,
	                       .in_reply_to = "parent@example.org"};
	size_t len;
	char *d = compose_ok(&c, &len);
	char *mid = raw_field(d, len, "Message-ID");
	/* " <" + 24 random + "." + time + "@" + domain + ">" */
	assert_int_equal(strlen(mid), 2 + 24 + 1 + 10 + 1 +
	                                  strlen("xn--bcher-kva.example") + 1);
	assert_non_null(strstr(mid, ".1700000000@xn--bcher-kva.example>"));
	for (size_t i = 2; i < 26; i++)
		assert_true(strchr("0123456789abcdefghijklmnopqrstuvwxyz"
		                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
		                   mid[i]) != NULL);
	char *irt = raw_field(d, len, "In-Reply-To");
	assert_string_equal(irt, " <parent@example.org>");
	free(irt);
	char *d2 = compose_ok(&c, &len);
	char *mid2 = raw_field(d2, len, "Message-ID");
	assert_string_not_equal(mid, mid2);
	free(mid);
	free(mid2);
	free(d);
	free(d2);

	/* A reply to a message with a long thread. */
	struct fm_buf p;
	fm_buf_init(&p, 1 << 20);
	fm_buf_append_str(&p, "From: x@example.org\nReferences:");
	for (int i = 0; i < 30; i++)
		fm_buf_printf(&p, " <ref%d@example.org>", i);
	fm_buf_append_str(&p, "\nIn-Reply-To: <ref29@example.org>\n"
	                      "Message-ID: <parent@example.org>\n\nbody\n");
	struct fm_envelope *parent = envelope(p.data, p.len);
	char *refs = fm_mime_reply_references(parent);
	assert_non_null(refs);
	assert_true(fm_str_has_prefix(refs, "<ref0@example.org> "
	                                    "<ref12@example.org> "));
	assert_true(strstr(refs, "<ref11@") == NULL);
	assert_true(strstr(refs, "<ref29@example.org> <parent@example.org>") !=
	            NULL);
	struct fm_compose r = {.from_addr = "me@example.org",
	                       .date = 1,
	                       .message_id = "reply@example.org",
	                       .subject = "Re: thread",
	                       .in_reply_to = parent->message_id,
	                       .references = refs};
	d = compose_ok(&r, &len);
	struct fm_envelope *e = envelope(d, len);
	assert_int_equal(e->references_count, FM_COMPOSE_REFERENCES_MAX);
	assert_string_equal(e->references[0], "ref0@example.org");
	assert_string_equal(e->references[19], "parent@example.org");
	assert_string_equal(e->in_reply_to, "parent@example.org");
	assert_string_equal(fm_envelope_thread_parent(e), "parent@example.org");
	/* Folded: no References line past 78. */
	const char *s = strstr(d, "\nReferences:") + 1;
	for (const char *nl; (nl = strchr(s, '\n')) != NULL; s = nl + 1) {
		assert_true(nl - s <= 78);
		if (nl[1] != ' ')
			break;
	}
	fm_envelope_free(&e);
	free(d);
	free(refs);
	fm_envelope_free(&parent);
	fm_buf_free(&p);

	/* Shorter families. */
	const char *only_irt = "In-Reply-To: <a@x>\nMessage-ID: <b@x>\n\n";
	parent = envelope(only_irt, strlen(only_irt));
	refs = fm_mime_reply_references(parent);
	assert_string_equal(refs, "<a@x> <b@x>");
	free(refs);
	fm_envelope_free(&parent);
	const char *only_mid = "Message-ID: <b@x>\nReferences: <b@x>\n\n";
	parent = envelope(only_mid, strlen(only_mid));
	refs = fm_mime_reply_references(parent);
	assert_string_equal(refs, "<b@x>");
	free(refs);
	fm_envelope_free(&parent);
	const char *none = "Subject: no ids\n\n";
	parent = envelope(none, strlen(none));
	assert_null(fm_mime_reply_references(parent));
	fm_envelope_free(&parent);

	/* Ids that are no ids. */
	struct fm_compose b = {.from_addr = "me@example.org", .date = 1};
	b.message_id = "<a@x> <b@x>";
	compose_fails(&b, FM_ERR_USAGE, "only one message id");
	b.message_id = "<a b@x>";
	compose_fails(&b, FM_ERR_USAGE, "not a message id");
	b.message_id = "<a@x";
	compose_fails(&b, FM_ERR_USAGE, "not a message id");
	b.message_id = "a@x";
	b.in_reply_to = "<ok@x> <bad\x01@x>";
	compose_fails(&b, FM_ERR_USAGE, "In-Reply-To");
	b.in_reply_to = NULL;
	b.references = "<ok@x>\r\nBcc: evil@example.org";
	compose_fails(&b, FM_ERR_USAGE, "References");
}

/* ------------------------------------------------------------------------
 * Errors and injection.
 */

static void
test_errors(void **state)
{
	struct fm_compose c = {.date = 1, .message_id = "m@x"};
	compose_fails(&c, FM_ERR_USAGE, "no From address");
	c.from_addr = "a@example.org, b@example.org";
	compose_fails(&c, FM_ERR_USAGE, "is not one address");
	c.from_addr = "root";
	compose_fails(&c, FM_ERR_USAGE,
	              "From: 'root' is not a valid address: it has no "
	              "@domain");
	c.from_addr = "a@example.org";
	c.from_name = "Evil\x1b[31m";
	compose_fails(&c, FM_ERR_USAGE, "control character");
	c.from_name = NULL;
	c.to = "bob";
	compose_fails(&c, FM_ERR_USAGE,
	              "To: 'bob' is not a valid address: it has no @domain");
	c.to = "a@example.org\r\nBcc: evil@example.org";
	compose_fails(&c, FM_ERR_USAGE, "line break");
	c.to = NULL;
	c.cc = "<x@example.org";
	compose_fails(&c, FM_ERR_USAGE, "Cc: ");
	c.cc = NULL;
	c.subject = "bell \a";
	compose_fails(&c, FM_ERR_USAGE, "the subject contains a control");
	c.subject = "\xc3";
	compose_fails(&c, FM_ERR_USAGE, "the subject is not valid UTF-8");
	c.subject = NULL;
	c.utc_offset = 86400;
	compose_fails(&c, FM_ERR_USAGE, "time zone");
	c.utc_offset = 0;
	struct fm_compose_header h = {"From", "x"};
	c.headers = &h;
	c.header_count = 1;
	compose_fails(&c, FM_ERR_USAGE, "cannot be set");
	h.name = "content-type";
	compose_fails(&c, FM_ERR_USAGE, "cannot be set");
	h.name = "X-Bad:Name";
	compose_fails(&c, FM_ERR_USAGE, "not a header field name");
	h.name = "X Bad";
	compose_fails(&c, FM_ERR_USAGE, "not a header field name");
	h.name = "";
	compose_fails(&c, FM_ERR_USAGE, "not a header field name");

	/* Line breaks in text fields become spaces: nothing a user types
	 * into a subject or an extra field becomes a field of its own. */
	h.name = "X-Note";
	h.value = "one\r\nBcc: evil1@example.org";
	c.subject = "hi\nBcc: evil2@example.org\n\nbody";
	c.to = "a@example.org";
	size_t len;
	char *d = compose_ok(&c, &len);
	assert_int_equal(count_fields(d, len, "Bcc"), 0);
	struct fm_mime_addresses l;
	assert_int_equal(fm_mime_recipients(d, len, &l, NULL), 0);
	assert_int_equal(l.n, 1);
	fm_mime_addresses_free(&l);
	struct fm_envelope *e = envelope(d, len);
	assert_string_equal(e->subject, "hi Bcc: evil2@example.org body");
	fm_envelope_free(&e);
	free(d);
}

int
main(void)
{
	setlocale(LC_ALL, "C.UTF-8");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain),       cmocka_unit_test(test_subjects),
	    cmocka_unit_test(test_addresses),   cmocka_unit_test(test_body),
	    cmocka_unit_test(test_attachments), cmocka_unit_test(test_ids),
	    cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

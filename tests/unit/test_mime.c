/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"
#include "mime/mime.h"

/* ------------------------------------------------------------------------
 * Helpers.
 */

static const char *const CORPUS[] = {
    "plain-ascii.eml",      "utf8-qp.eml",         "latin1-8bit.eml",
    "shift-jis.eml",        "gb2312.eml",          "encoded-words.eml",
    "alternative.eml",      "mixed-pdf.eml",       "related.eml",
    "html-only.eml",        "no-date.eml",         "truncated-header.eml",
    "missing-boundary.eml", "unknown-charset.eml", "esc-subject.eml",
    "long-header.eml",      "forward-rfc822.eml",
};

static char *
corpus_path(const char *name)
{
	const char *src = getenv("FM_SRCDIR");
	return xasprintf("%s/tests/corpus/%s", src != NULL ? src : ".", name);
}

static char *
load(const char *name, size_t *len_r)
{
	char *path = corpus_path(name);
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s: %s (set FM_SRCDIR)", path,
		         strerror(errno));
	struct fm_buf b;
	fm_buf_init(&b, 64 * 1024 * 1024);
	char tmp[65536];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		assert_int_equal(fm_buf_append(&b, tmp, n), 0);
	fclose(f);
	free(path);
	*len_r = b.len;
	return fm_buf_steal(&b);
}

/* Valid UTF-8, no control characters (C0 but '\n' and '\t' when
 * multiline, DEL, C1). */
static void
assert_clean(const char *s, bool multiline)
{
	size_t len = strlen(s);
	if (!fm_mime_utf8_valid(s, len))
		fail_msg("not UTF-8: %s", s);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (multiline && (c == '\n' || c == '\t'))
			continue;
		if (c < 0x20 || c == 0x7f)
			fail_msg("control 0x%02x at %zu in: %s", c, i, s);
		if (c == 0xc2 && (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9f)
			fail_msg("C1 control at %zu in: %s", i, s);
	}
}

static void
assert_envelope_clean(const struct fm_envelope *e)
{
	assert_clean(e->subject, false);
	assert_clean(e->from.name, false);
	assert_clean(e->from.addr, false);
	for (size_t i = 0; i < e->to_count; i++) {
		assert_clean(e->to[i].name, false);
		assert_clean(e->to[i].addr, false);
	}
	for (size_t i = 0; i < e->cc_count; i++) {
		assert_clean(e->cc[i].name, false);
		assert_clean(e->cc[i].addr, false);
	}
	if (e->message_id != NULL)
		assert_clean(e->message_id, false);
	if (e->in_reply_to != NULL)
		assert_clean(e->in_reply_to, false);
	assert_true(e->references_count <= FM_MIME_REFERENCES_MAX);
	for (size_t i = 0; i < e->references_count; i++)
		assert_clean(e->references[i], false);
	assert_true(e->to_count <= FM_MIME_ADDRESSES_MAX);
	assert_true(strlen(e->subject) <= FM_MIME_TEXT_MAX);
}

static void
assert_render_clean(const struct fm_mime_render *r)
{
	assert_non_null(r->text);
	assert_int_equal(strlen(r->text), r->len);
	assert_clean(r->text, true);
	for (size_t i = 0; i < r->attachment_count; i++) {
		if (r->attachments[i].filename != NULL)
			assert_clean(r->attachments[i].filename, false);
		assert_clean(r->attachments[i].type, false);
	}
}

static struct fm_envelope *
envelope_of(const char *name)
{
	size_t len;
	char *data = load(name, &len);
	struct fm_envelope *env = NULL;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_mime_envelope_parse(data, len, &env, &err), 0);
	assert_non_null(env);
	assert_int_equal(env->size, len);
	assert_envelope_clean(env);
	free(data);
	return env;
}

static struct fm_mime_render *
render_of(const char *name)
{
	size_t len;
	char *data = load(name, &len);
	struct fm_mime_render *r = fm_mime_render(data, len);
	assert_render_clean(r);
	free(data);
	return r;
}

static struct fm_envelope *
envelope_str(const char *msg)
{
	struct fm_envelope *env = NULL;
	assert_int_equal(fm_mime_envelope_parse(msg, strlen(msg), &env, NULL),
	                 0);
	assert_envelope_clean(env);
	return env;
}

static struct fm_mime_render *
render_str(const char *msg, size_t len)
{
	struct fm_mime_render *r = fm_mime_render(msg, len);
	assert_render_clean(r);
	return r;
}

/* ------------------------------------------------------------------------
 * Envelopes of the corpus.
 */

static void
test_envelope_plain(void **state)
{
	struct fm_envelope *e = envelope_of("plain-ascii.eml");
	assert_true(e->date_valid);
	assert_int_equal(e->date, 1678782410); /* 2023-03-14 08:26:50 UTC */
	assert_string_equal(e->from.name, "Alice Example");
	assert_string_equal(e->from.addr, "alice@example.org");
	assert_int_equal(e->to_count, 2);
	assert_string_equal(e->to[0].name, "Bob");
	assert_string_equal(e->to[0].addr, "bob@example.net");
	assert_string_equal(e->to[1].name, "");
	assert_string_equal(e->to[1].addr, "carol@example.net");
	assert_int_equal(e->cc_count, 1);
	assert_string_equal(e->cc[0].name, "Doe, John");
	assert_string_equal(e->cc[0].addr, "john.doe@example.com");
	assert_string_equal(e->subject, "Lunch on Friday?");
	assert_string_equal(e->message_id, "20230314082650.GA1234@example.org");
	assert_null(e->in_reply_to);
	assert_int_equal(e->references_count, 0);
	assert_null(fm_envelope_thread_parent(e));
	assert_int_equal(e->flags, 0);
	fm_envelope_free(&e);
	assert_null(e);
	fm_envelope_free(&e); /* NULL-safe */
}

static void
test_envelope_utf8(void **state)
{
	struct fm_envelope *e = envelope_of("utf8-qp.eml");
	assert_int_equal(e->date, 1675299900);
	assert_string_equal(e->from.name, "Jörg Müller");
	assert_string_equal(e->from.addr, "joerg@example.de");
	assert_int_equal(e->to_count, 1);
	assert_string_equal(e->to[0].name, "山田太郎");
	assert_string_equal(e->subject, "Grüße aus Köln");
	assert_string_equal(e->message_id, "abc.123@example.de");
	assert_string_equal(e->in_reply_to, "parent@example.net");
	assert_int_equal(e->references_count, 3);
	assert_string_equal(e->references[0], "root@example.net");
	assert_string_equal(e->references[1], "middle@example.net");
	assert_string_equal(e->references[2], "parent@example.net");
	assert_string_equal(fm_envelope_thread_parent(e), "parent@example.net");
	fm_envelope_free(&e);
}

static void
test_envelope_charsets(void **state)
{
	struct fm_envelope *e = envelope_of("latin1-8bit.eml");
	assert_int_equal(e->date, 1654416000);
	assert_string_equal(e->from.name, "François Pérez");
	assert_string_equal(e->subject, "Café crème");
	fm_envelope_free(&e);

	e = envelope_of("shift-jis.eml");
	assert_int_equal(e->date, 1681089330);
	assert_string_equal(e->from.name, "山田太郎");
	assert_string_equal(e->from.addr, "yamada@example.jp");
	assert_string_equal(e->subject, "会議の件");
	fm_envelope_free(&e);

	e = envelope_of("gb2312.eml");
	assert_int_equal(e->date, 1684564200);
	assert_string_equal(e->from.name, "王小明");
	assert_string_equal(e->subject, "你好，世界");
	fm_envelope_free(&e);
}

static void
test_envelope_encoded_words(void **state)
{
	struct fm_envelope *e = envelope_of("encoded-words.eml");
	assert_int_equal(e->date, 1698969599);
	/* Adjacent encoded words join without the space between them; the
	 * broken last word (no "?=") is decoded as far as libetpan can, and
	 * like an encoded word it loses the space before it. */
	assert_string_equal(e->subject,
	                    "Hello, world and café au laitbroken word");
	/* An encoded word inside quotes is decoded too (everyone does). */
	assert_string_equal(e->from.name, "Anna Åberg");
	/* "undisclosed-recipients:;" is an empty group. */
	assert_int_equal(e->to_count, 0);
	/* An empty element, an unbalanced quote and an unclosed '<' lose
	 * only themselves. */
	assert_int_equal(e->cc_count, 3);
	assert_string_equal(e->cc[0].addr, "a@example.com");
	assert_string_equal(e->cc[1].name, "Broken");
	assert_string_equal(e->cc[1].addr, "b@example.com");
	assert_string_equal(e->cc[2].name, "");
	assert_string_equal(e->cc[2].addr, "c@example.com");
	fm_envelope_free(&e);
}

static void
test_envelope_damaged(void **state)
{
	struct fm_envelope *e = envelope_of("no-date.eml");
	assert_false(e->date_valid);
	assert_int_equal(e->date, 0);
	assert_string_equal(e->subject, "No date here");
	fm_envelope_free(&e);

	e = envelope_of("truncated-header.eml");
	assert_int_equal(e->flags, FM_ENVELOPE_NO_BODY);
	assert_true(e->date_valid);
	assert_string_equal(e->from.name, "Trunc");
	assert_string_equal(e->message_id, "trunc@example.org");
	assert_string_equal(e->subject, "Truncat");
	fm_envelope_free(&e);

	/* The 300 KB line passes the header cap: the fields before it are
	 * read, In-Reply-To after it is not. */
	e = envelope_of("long-header.eml");
	assert_int_equal(e->flags, FM_ENVELOPE_HEADER_CUT);
	assert_string_equal(e->subject, "A very long header line");
	assert_string_equal(e->message_id, "long@example.org");
	assert_null(e->in_reply_to);
	fm_envelope_free(&e);

	e = envelope_of("esc-subject.eml");
	assert_string_equal(e->subject, "\xef\xbf\xbd]0;pwned\xef\xbf\xbdHello "
	                                "\xef\xbf\xbd[2Jclear \xef\xbf\xbd"
	                                "1mC1");
	assert_string_equal(e->from.name, "Evil \xef\xbf\xbd[31mRed");
	fm_envelope_free(&e);
}

static void
test_envelope_read(void **state)
{
	struct fm_error err;
	fm_error_clear(&err);
	for (size_t i = 0; i < FM_ARRAY_LEN(CORPUS); i++) {
		char *path = corpus_path(CORPUS[i]);
		struct fm_envelope *a = envelope_of(CORPUS[i]), *b = NULL;
		assert_int_equal(fm_mime_envelope_read(path, &b, &err), 0);
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(b->size, (uint64_t)st.st_size);
		assert_int_equal(a->date, b->date);
		assert_string_equal(a->subject, b->subject);
		assert_string_equal(a->from.addr, b->from.addr);
		assert_int_equal(a->to_count, b->to_count);
		assert_int_equal(a->references_count, b->references_count);
		if (a->message_id != NULL)
			assert_string_equal(a->message_id, b->message_id);
		fm_envelope_free(&a);
		fm_envelope_free(&b);
		free(path);
	}
	struct fm_envelope *e = NULL;
	assert_int_equal(
	    fm_mime_envelope_read("/nonexistent/fulmar/msg", &e, &err), -1);
	assert_null(e);
	assert_int_equal(err.cls, FM_ERR_LOCAL);
	assert_non_null(strstr(err.user, "/nonexistent/fulmar/msg"));
}

static void
test_dates(void **state)
{
	static const struct {
		const char *date;
		bool valid;
		long long t;
	} cases[] = {
	    {"Mon, 2 Jan 2006 15:04:05 -0700", true, 1136239445},
	    {"2 Jan 2006 15:04:05 -0700", true, 1136239445},
	    {"Mon, 02 Jan 2006 22:04:05 +0000 (UTC)", true, 1136239445},
	    {"Mon, 2 Jan 2006 22:04 GMT", true, 1136239440},
	    {"Mon, 2 Jan 06 22:04:05 GMT", true, 1136239445},
	    {"Mon, 2 Jan 2006 17:04:05 EST", true, 1136239445},
	    {"Mon, 2 Jan 2006 22:04:05", true, 1136239445},
	    {"Mon Jan  2 22:04:05 2006", true, 1136239445},
	    {"2006-01-02T15:04:05-07:00", true, 1136239445},
	    {"2006-01-02 22:04:05Z", true, 1136239445},
	    {"Monday, January 2, 2006 3:04:05 PM -0700", true, 1136239445},
	    {"Mon, 2 Jan 2006 10:04:05 pm +00", true, 1136239445},
	    {"Sun, 29 Feb 2004 00:00:00 +0000", true, 1078012800},
	    {"Thu, 1 Jan 1970 00:00:00 +0000", true, 0},
	    {"Wed, 31 Dec 1969 23:59:59 +0000", true, -1},
	    {"Sat, 29 Feb 2003 00:00:00 +0000", false, 0},
	    {"Mon, 32 Jan 2006 15:04:05 -0700", false, 0},
	    {"Mon, 2 Jan 2006 25:04:05 -0700", false, 0},
	    {"Mon, 2 Foo 2006 15:04:05 -0700", false, 0},
	    {"Mon, 2 Jan 2006 15:04:05 +9999", false, 0},
	    {"yesterday", false, 0},
	    {"", false, 0},
	    {"((((((((((((((((((((((((((((((((((((((((((((((((((", false, 0},
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(cases); i++) {
		char *msg = xasprintf("Date: %s\n\n", cases[i].date);
		struct fm_envelope *e = envelope_str(msg);
		if (e->date_valid != cases[i].valid ||
		    (long long)e->date != cases[i].t)
			fail_msg("%s: valid %d date %lld, want %d %lld",
			         cases[i].date, e->date_valid,
			         (long long)e->date, cases[i].valid,
			         cases[i].t);
		fm_envelope_free(&e);
		free(msg);
	}
	/* Directly: a failure leaves the time alone. */
	time_t t = 42;
	assert_true(fm_mime_parse_date("2 Jan 2006 15:04:05 -0700", 25, &t));
	assert_int_equal(t, 1136239445);
	t = 42;
	assert_false(fm_mime_parse_date("2 Jan\0 2006", 11, &t));
	assert_int_equal(t, 42);
}

static void
test_addresses(void **state)
{
	static const struct {
		const char *to;
		const char *want; /* "name|addr;name|addr" */
	} cases[] = {
	    {"a@example.com", "|a@example.com"},
	    {"  A  B  <a@example.com>  ", "A B|a@example.com"},
	    {"\"Q, R\" <q@example.com>, s@example.com",
	     "Q, R|q@example.com;|s@example.com"},
	    {"t@example.com (Tee Comment)", "Tee Comment|t@example.com"},
	    {"Team: u@example.com, \"V\" <v@example.com>;, w@example.com",
	     "|u@example.com;V|v@example.com;|w@example.com"},
	    {"=?ISO-8859-1?Q?Andr=E9?= <andre@example.fr>",
	     "André|andre@example.fr"},
	    {"Jörg <j@example.de>", "Jörg|j@example.de"},
	    {"x@[IPv6:2001:db8::1], y@example.com",
	     "|x@[IPv6:2001:db8::1];|y@example.com"},
	    {"Broken Name <broken@example.com",
	     "Broken Name|broken@example.com"},
	    {"just a name", "just a name|"},
	    {"root", "|root"},
	    {"<>", "|"},
	    {",,,", ""},
	    {"(((((((((((((((((((((((((((((( <deep@example.com>",
	     "((((((((((((((((((((((((((((((|deep@example.com"},
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(cases); i++) {
		char *msg = xasprintf("To: %s\n\n", cases[i].to);
		struct fm_envelope *e = envelope_str(msg);
		struct fm_buf got;
		fm_buf_init(&got, 4096);
		for (size_t k = 0; k < e->to_count; k++)
			fm_buf_printf(&got, "%s%s|%s", k > 0 ? ";" : "",
			              e->to[k].name, e->to[k].addr);
		if (strcmp(got.data, cases[i].want) != 0)
			fail_msg("To: %s\n got  %s\n want %s", cases[i].to,
			         got.data, cases[i].want);
		fm_buf_free(&got);
		fm_envelope_free(&e);
		free(msg);
	}

	/* At most FM_MIME_ADDRESSES_MAX addresses. */
	struct fm_buf big;
	fm_buf_init(&big, 1 << 20);
	fm_buf_append_str(&big, "To: ");
	for (int i = 0; i < 1500; i++)
		fm_buf_printf(&big, "u%d@example.com,\n ", i);
	fm_buf_append_str(&big, "\n\n");
	struct fm_envelope *e = envelope_str(big.data);
	assert_int_equal(e->to_count, FM_MIME_ADDRESSES_MAX);
	assert_string_equal(e->to[999].addr, "u999@example.com");
	fm_envelope_free(&e);
	fm_buf_free(&big);
}

static void
test_message_ids(void **state)
{
	struct fm_envelope *e = envelope_str(
	    "Message-ID: <a b@example.com> (comment)\n"
	    "In-Reply-To: Your message of \"Mon\" <p@example.com>\n"
	    "References: junk <r1@example.com>,<r2@example.com>\n"
	    " <bro<r3@example.com> <unterminated@example.com\n"
	    "Message-ID: <second@example.com>\n\n");
	assert_string_equal(e->message_id, "ab@example.com");
	assert_string_equal(e->in_reply_to, "p@example.com");
	assert_int_equal(e->references_count, 3);
	assert_string_equal(e->references[0], "r1@example.com");
	assert_string_equal(e->references[2], "r3@example.com");
	assert_string_equal(fm_envelope_thread_parent(e), "r3@example.com");
	fm_envelope_free(&e);

	/* Without brackets: words with an '@'. */
	e = envelope_str("Message-ID: bare@example.com\n"
	                 "References: one@example.com two@example.com\n\n");
	assert_string_equal(e->message_id, "bare@example.com");
	assert_int_equal(e->references_count, 2);
	fm_envelope_free(&e);

	/* In-Reply-To alone is the parent. */
	e = envelope_str("In-Reply-To: <only@example.com>\n\n");
	assert_string_equal(fm_envelope_thread_parent(e), "only@example.com");
	fm_envelope_free(&e);

	/* 300 References: the first and the last 255, in order. */
	struct fm_buf big;
	fm_buf_init(&big, 1 << 20);
	fm_buf_append_str(&big, "References:");
	for (int i = 0; i < 300; i++)
		fm_buf_printf(&big, " <id%d@example.com>\n", i);
	fm_buf_append_str(&big, "\n");
	e = envelope_str(big.data);
	assert_int_equal(e->references_count, FM_MIME_REFERENCES_MAX);
	assert_string_equal(e->references[0], "id0@example.com");
	assert_string_equal(e->references[1], "id45@example.com");
	assert_string_equal(e->references[2], "id46@example.com");
	assert_string_equal(e->references[255], "id299@example.com");
	fm_envelope_free(&e);
	fm_buf_free(&big);
}

static void
test_decode_header(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"plain  text\r\n\t folded ", "plain text folded"},
	    {"=?UTF-8?B?SGVsbG8s?=  \r\n =?UTF-8?B?IHdvcmxk?=", "Hello, world"},
	    {"=?utf-8?q?a_b?= c =?utf-8?q?d?=", "a b c d"},
	    {"=?x-unknown?Q?caf=E9?=", "café"},
	    {"=?UTF-8?X?bad?= rest", "=?UTF-8?X?bad?= rest"},
	    {"price =?x?", "price =?x?"},
	    {"raw caf\xe9 latin", "raw caf\xef\xbf\xbd latin"},
	    {"nul\x01\x7f", "nul\xef\xbf\xbd\xef\xbf\xbd"},
	    {"=?UTF-8?Q?line=0Abreak=09tab?=", "line break tab"},
	    {"", ""},
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(cases); i++) {
		char *got =
		    fm_mime_decode_header(cases[i].in, strlen(cases[i].in));
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("%s: got [%s] want [%s]", cases[i].in, got,
			         cases[i].want);
		free(got);
	}
	/* NULs inside are not an end. */
	char *got = fm_mime_decode_header("a\0b", 3);
	assert_string_equal(got, "a\xef\xbf\xbd"
	                         "b");
	free(got);
	/* Long values are cut at a character boundary. */
	size_t n = 3 * FM_MIME_TEXT_MAX;
	char *big = xmalloc(n);
	for (size_t i = 0; i < n; i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	got = fm_mime_decode_header(big, n);
	assert_int_equal(strlen(got), FM_MIME_TEXT_MAX);
	assert_clean(got, false);
	free(got);
	free(big);
}

/* ------------------------------------------------------------------------
 * Rendering the corpus.
 */

static void
test_render_plain(void **state)
{
	struct fm_mime_render *r = render_of("plain-ascii.eml");
	assert_string_equal(r->text,
	                    "Date: Tue, 14 Mar 2023 09:26:50 +0100\n"
	                    "From: Alice Example <alice@example.org>\n"
	                    "To: Bob <bob@example.net>, carol@example.net\n"
	                    "Cc: \"Doe, John\" <john.doe@example.com>\n"
	                    "Subject: Lunch on Friday?\n"
	                    "\n"
	                    "Hi Bob,\n"
	                    "\n"
	                    "are we still on for lunch on Friday?\n"
	                    "\n"
	                    "-- \n"
	                    "Alice\n");
	assert_int_equal(r->notes, 0);
	assert_int_equal(r->attachment_count, 0);
	fm_mime_render_free(&r);
	assert_null(r);
	fm_mime_render_free(&r);
}

static void
test_render_alternative(void **state)
{
	struct fm_mime_render *r = render_of("alternative.eml");
	assert_string_equal(r->text, "Date: Fri, 15 Sep 2023 12:00:00 +0000\n"
	                             "From: Newsletter <news@example.com>\n"
	                             "To: reader@example.net\n"
	                             "Subject: Alternative\n"
	                             "\n"
	                             "The plain text version.\n");
	assert_int_equal(r->notes, 0);
	assert_int_equal(r->attachment_count, 0);

	/* The same with CRLF line ends, as stored by some servers. */
	size_t len;
	char *lf = load("mixed-pdf.eml", &len);
	struct fm_buf crlf;
	fm_buf_init(&crlf, 4 * len);
	for (size_t i = 0; i < len; i++) {
		if (lf[i] == '\n')
			fm_buf_append_char(&crlf, '\r');
		fm_buf_append_char(&crlf, lf[i]);
	}
	struct fm_mime_render *a = render_str(lf, len);
	struct fm_mime_render *b = render_str(crlf.data, crlf.len);
	assert_string_equal(a->text, b->text);
	assert_int_equal(b->attachment_count, 3);
	assert_int_equal(b->attachments[0].size, 3000);
	fm_mime_render_free(&a);
	fm_mime_render_free(&b);
	fm_buf_free(&crlf);
	free(lf);
	fm_mime_render_free(&r);
}

static void
test_render_mixed(void **state)
{
	struct fm_mime_render *r = render_of("mixed-pdf.eml");
	assert_string_equal(
	    r->text,
	    "Date: Tue, 28 Feb 2023 16:45:12 +0100\n"
	    "From: Buchhaltung <rechnung@example.de>\n"
	    "To: kunde@example.com\n"
	    "Subject: Ihre Rechnung\n"
	    "\n"
	    "Anbei die Rechnung für März.\n"
	    "\n"
	    "[attachment 2: Rechnung März.pdf, application/pdf, 3 KB]\n"
	    "[attachment 3: Bild €.png, image/png, 70 B]\n"
	    "[attachment 4: Notizen zur Rechnung.txt, text/plain, 15 B]\n");
	assert_int_equal(r->attachment_count, 3);
	assert_int_equal(r->attachments[0].number, 2);
	assert_string_equal(r->attachments[0].filename, "Rechnung März.pdf");
	assert_string_equal(r->attachments[0].type, "application/pdf");
	assert_int_equal(r->attachments[0].size, 3000);
	assert_string_equal(r->attachments[1].filename, "Bild €.png");
	assert_int_equal(r->attachments[1].size, 70);
	assert_string_equal(r->attachments[2].filename,
	                    "Notizen zur Rechnung.txt");
	assert_int_equal(r->notes, 0);
	fm_mime_render_free(&r);
}

static void
test_render_related(void **state)
{
	struct fm_mime_render *r = render_of("related.eml");
	assert_string_equal(r->text,
	                    "Date: Sun, 1 Oct 2023 09:00:00 +0200\n"
	                    "From: Photo Club <club@example.org>\n"
	                    "To: members@example.org\n"
	                    "Subject: Nested related\n"
	                    "\n"
	                    "See the picture below.\n"
	                    "\n"
	                    "[attachment 3: dot.gif, image/gif, 42 B]\n"
	                    "[attachment 4: photos.zip, application/zip, "
	                    "22 B]\n");
	assert_int_equal(r->notes, 0);
	fm_mime_render_free(&r);

	r = render_of("forward-rfc822.eml");
	assert_string_equal(r->text,
	                    "Date: Sun, 19 Mar 2023 14:00:00 +0000\n"
	                    "From: fwd@example.org\n"
	                    "To: receiver@example.net\n"
	                    "Subject: Fwd: Original\n"
	                    "\n"
	                    "See below.\n"
	                    "\n"
	                    "----- message/rfc822 (part 2) -----\n"
	                    "Date: Sat, 18 Mar 2023 08:00:00 +0000\n"
	                    "From: Original Sender <orig@example.com>\n"
	                    "To: fwd@example.org\n"
	                    "Subject: Original\n"
	                    "\n"
	                    "The original text.\n");
	fm_mime_render_free(&r);
}

static void
test_render_html(void **state)
{
	struct fm_mime_render *r = render_of("html-only.eml");
	assert_string_equal(r->text,
	                    "Date: Mon, 6 Nov 2023 07:30:00 -0500\n"
	                    "From: Shop <noreply@shop.example>\n"
	                    "To: buyer@example.net\n"
	                    "Subject: Your order\n"
	                    "\n"
	                    "Thank you!\n"
	                    "\n"
	                    "Your order № 42 costs € 10 & ships soon.\n"
	                    "\n"
	                    "* Book\n"
	                    "* Pen <blue>\n"
	                    "\n"
	                    "Café ☺\n"
	                    "\n"
	                    "[attachment 2: logo.gif, image/gif, 42 B]\n");
	assert_int_equal(r->notes, FM_MIME_NOTE_HTML);
	fm_mime_render_free(&r);
}

/* The body of a rendering: after the first empty line. */
static const char *
body_of(const struct fm_mime_render *r)
{
	const char *b = strstr(r->text, "\n\n");
	assert_non_null(b);
	return b + 2;
}

static void
test_render_charsets(void **state)
{
	struct fm_mime_render *r = render_of("utf8-qp.eml");
	assert_string_equal(body_of(r),
	                    "Hallo zusammen,\n\nschöne Grüße aus Köln — das "
	                    "Wetter ist gut und der Dom steht noch.\n\nJörg\n");
	assert_int_equal(r->notes, 0);
	fm_mime_render_free(&r);

	r = render_of("latin1-8bit.eml");
	/* iso-8859-1 is read as Windows-1252: 0x92 is a quote. */
	assert_string_equal(body_of(r), "Bonjour Marie,\n\nÇa coûte trois "
	                                "francs. Très bien.\nC'est l’été.\n");
	fm_mime_render_free(&r);

	r = render_of("shift-jis.eml");
	assert_string_equal(body_of(r), "明日の会議は10時からです。\n"
	                                "よろしくお願いします。\n");
	assert_non_null(strstr(r->text, "Subject: 会議の件\n"));
	fm_mime_render_free(&r);

	r = render_of("gb2312.eml");
	assert_string_equal(body_of(r), "这是一封测试邮件。\n谢谢！\n");
	assert_non_null(strstr(r->text, "From: 王小明 <wang@example.cn>\n"));
	fm_mime_render_free(&r);

	r = render_of("unknown-charset.eml");
	assert_string_equal(body_of(r), "Grüße in Latin-1.\n\n"
	                                "Grüße in UTF-8.\n");
	assert_int_equal(r->notes, FM_MIME_NOTE_UNKNOWN_CHARSET);
	fm_mime_render_free(&r);
}

static void
test_render_broken(void **state)
{
	struct fm_mime_render *r = render_of("missing-boundary.eml");
	assert_string_equal(body_of(r), "The text survives.\n\n"
	                                "[attachment 2: cut.bin, "
	                                "application/octet-stream, 51 B]\n");
	assert_int_equal(r->notes, FM_MIME_NOTE_BROKEN);
	fm_mime_render_free(&r);

	r = render_of("no-date.eml");
	assert_string_equal(r->text, "From: nodate@example.org\n"
	                             "To: someone@example.net\n"
	                             "Subject: No date here\n"
	                             "\n"
	                             "A message without a Date field.\n");
	assert_int_equal(r->notes, FM_MIME_NOTE_NO_DATE);
	fm_mime_render_free(&r);

	r = render_of("truncated-header.eml");
	assert_string_equal(r->text, "Date: Tue, 14 Mar 2023 09:26:50 +0100\n"
	                             "From: Trunc <trunc@example.org>\n"
	                             "To: someone@example.net\n"
	                             "Subject: Truncat\n"
	                             "\n");
	fm_mime_render_free(&r);

	r = render_of("long-header.eml");
	assert_string_equal(body_of(r),
	                    "The body after a 300 KB header line.\n");
	fm_mime_render_free(&r);

	r = render_of("esc-subject.eml");
	assert_null(strchr(r->text, '\x1b'));
	assert_string_equal(body_of(r),
	                    "Body \xef\xbf\xbd[5mblink\xef\xbf\xbd[0m and "
	                    "\xef\xbf\xbd"
	                    "31m CSI, NUL \xef\xbf\xbd and a bell "
	                    "\xef\xbf\xbd.\n");
	fm_mime_render_free(&r);

	/* A multipart without boundary, one whose boundary never comes. */
	static const char no_boundary[] =
	    "Content-Type: multipart/mixed\n\nJust text.\n";
	r = render_str(no_boundary, sizeof(no_boundary) - 1);
	assert_string_equal(r->text, "\nJust text.\n");
	assert_int_equal(r->notes, FM_MIME_NOTE_BROKEN | FM_MIME_NOTE_NO_DATE);
	fm_mime_render_free(&r);
	static const char lost_boundary[] =
	    "Content-Type: multipart/mixed; boundary=zz\n\n--z\nText.\n";
	r = render_str(lost_boundary, sizeof(lost_boundary) - 1);
	assert_string_equal(r->text, "\n--z\nText.\n");
	assert_true(r->notes & FM_MIME_NOTE_BROKEN);
	fm_mime_render_free(&r);

	/* Nothing at all, and not a message at all. */
	r = render_str("", 0);
	assert_string_equal(r->text, "\n");
	fm_mime_render_free(&r);
	static const char binary[] = "\x00\xff\xfe\x1b[2J\n\n\x80\x00";
	r = render_str(binary, sizeof(binary) - 1);
	fm_mime_render_free(&r);
}

static void
test_render_filenames(void **state)
{
	static const struct {
		const char *fields, *want;
	} cases[] = {
	    {"Content-Disposition: attachment; filename=\"plain.txt\"",
	     "plain.txt"},
	    {"Content-Disposition: attachment;\n"
	     " filename*=iso-8859-1'fr'caf%E9%20%zz%4.txt",
	     "café %zz%4.txt"},
	    /* Sections in any order; encoded and plain ones mixed. */
	    {"Content-Disposition: attachment; filename*1=\"two \";\n"
	     " filename*2*=%E2%82%AC.pdf; filename*0*=UTF-8''one%20",
	     "one two €.pdf"},
	    /* RFC 2231 wins over the plain name, the disposition over the
	     * type's name. */
	    {"Content-Disposition: attachment; filename=old.txt;\n"
	     " filename*=UTF-8''new.txt",
	     "new.txt"},
	    {"Content-Type: application/octet-stream; name=type.bin\n"
	     "Content-Disposition: attachment; filename=disp.bin",
	     "disp.bin"},
	    {"Content-Type: application/octet-stream;\n"
	     " name=\"=?UTF-8?Q?K=C3=B6ln.bin?=\"",
	     "Köln.bin"},
	    /* A charset nobody knows, control characters, nothing. */
	    {"Content-Disposition: attachment; filename*=x-bogus''%C3%A9", "é"},
	    {"Content-Disposition: attachment; filename*=UTF-8''%1B[2J.txt",
	     "\xef\xbf\xbd[2J.txt"},
	    {"Content-Disposition: attachment; filename=\"\"", NULL},
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(cases); i++) {
		char *msg = xasprintf("Content-Type: multipart/mixed; "
		                      "boundary=b\n\n--b\n%s\n"
		                      "Content-Type: application/x-test\n\n"
		                      "data\n--b--\n",
		                      cases[i].fields);
		struct fm_mime_render *r = render_str(msg, strlen(msg));
		assert_int_equal(r->attachment_count, 1);
		const char *got = r->attachments[0].filename;
		if (cases[i].want == NULL
		        ? got != NULL
		        : got == NULL || strcmp(got, cases[i].want) != 0)
			fail_msg("%s: got [%s]", cases[i].fields,
			         got != NULL ? got : "(null)");
		fm_mime_render_free(&r);
		free(msg);
	}
}

/* A multipart nested depth times. */
static char *
nested(int depth, const char *type, size_t *len_r)
{
	struct fm_buf b;
	fm_buf_init(&b, 64 * 1024 * 1024);
	for (int i = 0; i < depth; i++) {
		if (strcmp(type, "message/rfc822") == 0)
			fm_buf_printf(&b,
			              "Subject: level %d\n"
			              "Content-Type: message/rfc822\n\n",
			              i);
		else
			fm_buf_printf(&b,
			              "Content-Type: %s; boundary=\"b%d\"\n\n"
			              "--b%d\n",
			              type, i, i);
	}
	fm_buf_append_str(&b, "Content-Type: text/plain\n\nDeep text.\n");
	if (strcmp(type, "message/rfc822") != 0)
		for (int i = depth - 1; i >= 0; i--)
			fm_buf_printf(&b, "--b%d--\n", i);
	*len_r = b.len;
	return fm_buf_steal(&b);
}

static void
test_render_limits(void **state)
{
	size_t len;
	/* Within the limit the text is found... */
	char *msg = nested(FM_MIME_DEPTH_MAX, "multipart/mixed", &len);
	struct fm_mime_render *r = render_str(msg, len);
	assert_non_null(strstr(r->text, "\nDeep text.\n"));
	assert_false(r->notes & FM_MIME_NOTE_TOO_DEEP);
	fm_mime_render_free(&r);
	free(msg);
	/* ...past it not, and 20,000 levels cost neither stack nor time. */
	static const char *const types[] = {
	    "multipart/mixed", "multipart/alternative", "message/rfc822"};
	for (size_t t = 0; t < FM_ARRAY_LEN(types); t++) {
		msg = nested(20000, types[t], &len);
		uint64_t start = fm_now_ms();
		r = render_str(msg, len);
		assert_true(fm_now_ms() - start < 10000);
		assert_null(strstr(r->text, "Deep text."));
		assert_true(r->notes & FM_MIME_NOTE_TOO_DEEP);
		fm_mime_render_free(&r);
		struct fm_envelope *e = NULL;
		fm_mime_envelope_parse(msg, len, &e, NULL);
		fm_envelope_free(&e);
		free(msg);
	}

	/* 5,000 parts: the first FM_MIME_PARTS_MAX are looked at. */
	struct fm_buf b;
	fm_buf_init(&b, 64 * 1024 * 1024);
	fm_buf_append_str(&b, "Content-Type: multipart/mixed; boundary=p\n\n");
	for (int i = 0; i < 5000; i++)
		fm_buf_printf(&b, "--p\nContent-Type: image/png\n\nx\n");
	fm_buf_append_str(&b, "--p--\n");
	r = render_str(b.data, b.len);
	assert_true(r->notes & FM_MIME_NOTE_CUT);
	assert_int_equal(r->attachment_count, FM_MIME_PARTS_MAX - 1);
	fm_mime_render_free(&r);
	fm_buf_free(&b);

	/* A 300 KB Subject, a 300 KB From, a 1 MB body line. */
	fm_buf_init(&b, 64 * 1024 * 1024);
	fm_buf_append_str(&b, "Subject: ");
	for (int i = 0; i < 30000; i++)
		fm_buf_append_str(&b, "=?utf-8?q?=C3=A9?= ");
	fm_buf_append_str(&b, "\nFrom: ");
	for (int i = 0; i < 30000; i++)
		fm_buf_append_str(&b, "((((((((((");
	fm_buf_append_str(&b, "\n\n");
	for (int i = 0; i < 100000; i++)
		fm_buf_append_str(&b, "0123456789");
	uint64_t start = fm_now_ms();
	struct fm_envelope *e = NULL;
	fm_mime_envelope_parse(b.data, b.len, &e, NULL);
	assert_envelope_clean(e);
	assert_true(strlen(e->subject) <= FM_MIME_TEXT_MAX);
	assert_true(fm_str_has_prefix(e->subject, "éé"));
	fm_envelope_free(&e);
	r = render_str(b.data, b.len);
	assert_true(fm_now_ms() - start < 10000);
	fm_mime_render_free(&r);
	fm_buf_free(&b);
}

/* ------------------------------------------------------------------------
 * Text helpers.
 */

static void
test_text_to_utf8(void **state)
{
	static const struct {
		const char *charset, *in, *want;
		bool unknown;
	} cases[] = {
	    {"utf-8", "a\r\nb\tc\rd", "a\nb\tcd", false},
	    /* Overlong, surrogate, past U+10FFFF, cut sequence. */
	    {"UTF-8", "\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xe2\x82",
	     "\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
	     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
	     "\xef\xbf\xbd\xef\xbf\xbd",
	     false},
	    {NULL, "plain", "plain", false},
	    {"us-ascii", "caf\xc3\xa9", "café", false},
	    {"us-ascii", "caf\xe9", "café", true},
	    {"ISO-8859-15", "\xa4", "€", false},
	    {"koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4", "Привет", false},
	    {"iso-2022-jp", "\x1b$B$3$s$K$A$O\x1b(B!", "こんにちは!", false},
	    {"shift_jis", "\x82\xa0\x82", "あ\xef\xbf\xbd", false},
	    {"x-no-such-charset", "\xe9t\xe9", "été", true},
	    {"utf-8//TRANSLIT", "ok", "ok", true},
	    {"windows-1252", "\x81\x80", "\xef\xbf\xbd€", false},
	    {"utf-8", "esc\x1b[0m\xc2\x9b", "esc\xef\xbf\xbd[0m\xef\xbf\xbd",
	     false},
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(cases); i++) {
		struct fm_buf out;
		bool unknown = false;
		fm_buf_init(&out, 1024);
		assert_int_equal(
		    fm_mime_text_to_utf8(cases[i].charset, cases[i].in,
		                         strlen(cases[i].in), &out, &unknown),
		    0);
		if (strcmp(out.data, cases[i].want) != 0 ||
		    unknown != cases[i].unknown)
			fail_msg("%s [%s]: got [%s] unknown %d",
			         cases[i].charset ? cases[i].charset : "NULL",
			         cases[i].in, out.data, unknown);
		fm_buf_free(&out);
	}
	/* The buffer's maximum cuts at a character boundary. */
	struct fm_buf out;
	fm_buf_init(&out, 5);
	assert_int_equal(fm_mime_text_to_utf8("utf-8", "ééé", 6, &out, NULL),
	                 -1);
	assert_string_equal(out.data, "éé");
	fm_buf_free(&out);
}

static void
test_utf8_valid(void **state)
{
	assert_true(fm_mime_utf8_valid("", 0));
	assert_true(fm_mime_utf8_valid("aé€😀", strlen("aé€😀")));
	assert_true(fm_mime_utf8_valid("a\0b", 3));
	assert_false(fm_mime_utf8_valid("\xc0\x80", 2));
	assert_false(fm_mime_utf8_valid("\xe0\x80\x80", 3));
	assert_false(fm_mime_utf8_valid("\xed\xbf\xbf", 3));
	assert_false(fm_mime_utf8_valid("\xf4\x90\x80\x80", 4));
	assert_false(fm_mime_utf8_valid("\xe2\x82", 2));
	assert_false(fm_mime_utf8_valid("\x80", 1));
	assert_false(fm_mime_utf8_valid("\xff", 1));
}

static void
test_to_locale(void **state)
{
	assert_non_null(setlocale(LC_CTYPE, "C.UTF-8"));
	char *s = fm_mime_to_locale("Grüße\t\x1b[31mred\x1b]0;x\x07\n"
	                            "\xc2\x9b"
	                            "1m\r\x7f\xff");
	assert_string_equal(s, "Grüße\t\xef\xbf\xbd[31mred\xef\xbf\xbd]0;x"
	                       "\xef\xbf\xbd\n\xef\xbf\xbd"
	                       "1m\xef\xbf\xbd\xef\xbf\xbd");
	free(s);

	assert_non_null(setlocale(LC_CTYPE, "C"));
	s = fm_mime_to_locale("Gr\xc3\xbc\xc3\x9f"
	                      "e \xe2\x80\x9cq\xe2\x80\x9d \x1b[2J 山\n");
	/* ASCII only, nothing below 0x20 but the line break, and the ESC
	 * gone. */
	for (const char *p = s; *p != '\0'; p++) {
		assert_true((unsigned char)*p < 0x80);
		assert_true(*p >= 0x20 || *p == '\n');
	}
	assert_true(fm_str_has_prefix(s, "Gr"));
	assert_non_null(strstr(s, "[2J"));
	assert_int_equal(s[strlen(s) - 1], '\n');
	free(s);
	setlocale(LC_CTYPE, "C.UTF-8");
}

static void
test_header_iter(void **state)
{
	static const char msg[] =
	    "From MAILER-DAEMON Mon Jan  2 15:04:05 2006\n"
	    "Subject : one\r\n"
	    "\ttwo\r\n"
	    "X-Empty:\n"
	    "bad line\n"
	    "To: after@example.com\n"
	    "\n"
	    "body";
	struct fm_mime_header_iter it;
	const char *name, *value;
	size_t nlen, vlen;
	fm_mime_header_iter_init(&it, msg, sizeof(msg) - 1);
	assert_true(fm_mime_header_next(&it, &name, &nlen, &value, &vlen));
	assert_int_equal(nlen, 7);
	assert_memory_equal(name, "Subject", 7);
	assert_int_equal(vlen, 10);
	assert_memory_equal(value, " one\r\n\ttwo", 10);
	assert_true(fm_mime_header_next(&it, &name, &nlen, &value, &vlen));
	assert_memory_equal(name, "X-Empty", 7);
	assert_int_equal(vlen, 0);
	/* A line that is no field ends the block; the body starts there. */
	assert_false(fm_mime_header_next(&it, &name, &nlen, &value, &vlen));
	assert_false(it.ended);
	assert_string_equal(msg + it.body, "bad line\nTo: after@example.com\n"
	                                   "\nbody");
	assert_false(fm_mime_header_next(&it, &name, &nlen, &value, &vlen));

	static const char crlf[] = "A: 1\r\n\r\nbody\r\n";
	fm_mime_header_iter_init(&it, crlf, sizeof(crlf) - 1);
	assert_true(fm_mime_header_next(&it, &name, &nlen, &value, &vlen));
	assert_false(fm_mime_header_next(&it, &name, &nlen, &value, &vlen));
	assert_true(it.ended);
	assert_string_equal(crlf + it.body, "body\r\n");
}

/* ------------------------------------------------------------------------
 * Mutations of the corpus through both parsers: nothing may crash, leak
 * (the sanitizers watch) or come out unclean.
 */

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void
test_fuzz(void **state)
{
	static const char special[] = "\n\r-=?<>()\"';:\\ \t\x1b\x00\xff\xc3";
	char *data[FM_ARRAY_LEN(CORPUS) + 1];
	size_t lens[FM_ARRAY_LEN(CORPUS) + 1];
	for (size_t i = 0; i < FM_ARRAY_LEN(CORPUS); i++)
		data[i] = load(CORPUS[i], &lens[i]);
	size_t nfiles = FM_ARRAY_LEN(CORPUS);
	data[nfiles] = nested(40, "multipart/mixed", &lens[nfiles]);
	nfiles++;

	uint64_t seed = 0x9e3779b97f4a7c15ull;
	for (int iter = 0; iter < 2000; iter++) {
		size_t f = rnd(&seed) % nfiles;
		struct fm_buf m;
		fm_buf_init(&m, 64 * 1024 * 1024);
		fm_buf_append(&m, data[f], lens[f]);
		int edits = 1 + (int)(rnd(&seed) % 8);
		for (int k = 0; k < edits && m.len > 0; k++) {
			size_t at = rnd(&seed) % m.len;
			switch (rnd(&seed) % 6) {
			case 0: /* flip */
				m.data[at] ^= (char)(1 << (rnd(&seed) % 8));
				break;
			case 1: /* a byte that matters to parsers */
				m.data[at] =
				    special[rnd(&seed) % (sizeof(special) - 1)];
				break;
			case 2: /* truncate */
				m.len = at;
				break;
			case 3: { /* cut a piece out */
				size_t n = rnd(&seed) % 64;
				if (n > m.len - at)
					n = m.len - at;
				memmove(m.data + at, m.data + at + n,
				        m.len - at - n);
				m.len -= n;
				break;
			}
			case 4: { /* repeat a piece */
				size_t n = rnd(&seed) % 64;
				if (n > m.len - at)
					n = m.len - at;
				char *piece = xmalloc(n + 1);
				memcpy(piece, m.data + at, n);
				fm_buf_append(&m, piece, n);
				free(piece);
				break;
			}
			default: /* random byte */
				m.data[at] = (char)rnd(&seed);
				break;
			}
		}
		struct fm_envelope *e = NULL;
		fm_mime_envelope_parse(m.data, m.len, &e, NULL);
		assert_envelope_clean(e);
		fm_envelope_free(&e);
		struct fm_mime_render *r = fm_mime_render(m.data, m.len);
		assert_render_clean(r);
		fm_mime_render_free(&r);
		fm_buf_free(&m);
	}
	for (size_t i = 0; i < nfiles; i++)
		free(data[i]);
}

int
main(void)
{
	setlocale(LC_ALL, "C.UTF-8");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_envelope_plain),
	    cmocka_unit_test(test_envelope_utf8),
	    cmocka_unit_test(test_envelope_charsets),
	    cmocka_unit_test(test_envelope_encoded_words),
	    cmocka_unit_test(test_envelope_damaged),
	    cmocka_unit_test(test_envelope_read),
	    cmocka_unit_test(test_dates),
	    cmocka_unit_test(test_addresses),
	    cmocka_unit_test(test_message_ids),
	    cmocka_unit_test(test_decode_header),
	    cmocka_unit_test(test_render_plain),
	    cmocka_unit_test(test_render_alternative),
	    cmocka_unit_test(test_render_mixed),
	    cmocka_unit_test(test_render_related),
	    cmocka_unit_test(test_render_html),
	    cmocka_unit_test(test_render_charsets),
	    cmocka_unit_test(test_render_broken),
	    cmocka_unit_test(test_render_filenames),
	    cmocka_unit_test(test_render_limits),
	    cmocka_unit_test(test_text_to_utf8),
	    cmocka_unit_test(test_utf8_valid),
	    cmocka_unit_test(test_to_locale),
	    cmocka_unit_test(test_header_iter),
	    cmocka_unit_test(test_fuzz),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

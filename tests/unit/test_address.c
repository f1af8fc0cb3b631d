/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Address lists for sending (fm_mime_addresses_parse), the recipients of a
 * finished message and its copy without Bcc. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "mime/mime.h"

/* One expected mailbox; NULL name or group mean none. */
struct want {
	const char *name;
	const char *addr;
	const char *group;
};

#define WANT_MAX 8

struct good_case {
	const char *value;
	size_t n;
	struct want want[WANT_MAX];
};

static void
assert_opt_string(const char *got, const char *want, const char *value)
{
	if (want == NULL && got == NULL)
		return;
	if (want == NULL || got == NULL || strcmp(got, want) != 0)
		fail_msg("%s: got '%s', want '%s'", value,
		         got != NULL ? got : "(null)",
		         want != NULL ? want : "(null)");
}

static void
check_good(const struct good_case *c)
{
	struct fm_mime_addresses l;
	struct fm_error err;
	fm_error_clear(&err);
	if (fm_mime_addresses_parse(c->value, &l, &err) != 0)
		fail_msg("%s: %s", c->value, err.user);
	if (l.n != c->n)
		fail_msg("%s: %zu addresses, want %zu", c->value, l.n, c->n);
	for (size_t i = 0; i < c->n; i++) {
		assert_opt_string(l.items[i].name, c->want[i].name, c->value);
		assert_opt_string(l.items[i].addr, c->want[i].addr, c->value);
		assert_opt_string(l.items[i].group, c->want[i].group, c->value);
	}
	fm_mime_addresses_free(&l);
	assert_null(l.items);
	assert_int_equal(l.n, 0);
}

static void
test_parse_shapes(void **state)
{
	static const struct good_case cases[] = {
	    {"alice@example.org", 1, {{NULL, "alice@example.org", NULL}}},
	    {"  alice@example.org  ", 1, {{NULL, "alice@example.org", NULL}}},
	    {"Alice Example <alice@example.org>",
	     1,
	     {{"Alice Example", "alice@example.org", NULL}}},
	    {"<alice@example.org>", 1, {{NULL, "alice@example.org", NULL}}},
	    {"\"Doe, John\" <john.doe@example.com>, bob@example.net",
	     2,
	     {{"Doe, John", "john.doe@example.com", NULL},
	      {NULL, "bob@example.net", NULL}}},
	    {"\"Jane \\\"JJ\\\" Roe\" <jane@example.com>",
	     1,
	     {{"Jane \"JJ\" Roe", "jane@example.com", NULL}}},
	    {"\"Giant; \\\"Big\\\" Box\" <sysservices@example.net>",
	     1,
	     {{"Giant; \"Big\" Box", "sysservices@example.net", NULL}}},
	    /* RFC 5322 A.1.2 */
	    {"Mary Smith <mary@x.test>, jdoe@example.org, Who? "
	     "<one@y.test>",
	     3,
	     {{"Mary Smith", "mary@x.test", NULL},
	      {NULL, "jdoe@example.org", NULL},
	      {"Who?", "one@y.test", NULL}}},
	    /* The old "addr (Name)" and comments everywhere (A.5). */
	    {"bob@example.net (Bob Smith)",
	     1,
	     {{"Bob Smith", "bob@example.net", NULL}}},
	    {"Bob (at work) <bob@example.net>",
	     1,
	     {{"Bob", "bob@example.net", NULL}}},
	    {"Pete(A nice \\) chap) <pete(his account)@silly.test(his "
	     "host)>",
	     1,
	     {{"Pete", "pete@silly.test", NULL}}},
	    /* obs-phrase with a dot, obs-route, empty list elements. */
	    {"John Q. Public <JQP@example.com>",
	     1,
	     {{"John Q. Public", "JQP@example.com", NULL}}},
	    {"<@route1.example,@route2.example:joe@example.org>",
	     1,
	     {{NULL, "joe@example.org", NULL}}},
	    {"a@example.org,, ,b@example.org,",
	     2,
	     {{NULL, "a@example.org", NULL}, {NULL, "b@example.org", NULL}}},
	    /* Folded as in a header, LF or CRLF. */
	    {"Alice <alice@example.org>,\r\n\tBob\r\n <bob@example.net>\r\n",
	     2,
	     {{"Alice", "alice@example.org", NULL},
	      {"Bob", "bob@example.net", NULL}}},
	    {"\"folded\n quoted\" <q@example.org>",
	     1,
	     {{"folded quoted", "q@example.org", NULL}}},
	    /* Encoded words, raw UTF-8. */
	    {"=?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>",
	     1,
	     {{"Jörg Müller", "joerg@example.de", NULL}}},
	    {"=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>",
	     1,
	     {{"André Pirard", "PIRARD@vm1.ulg.ac.be", NULL}}},
	    {"=?utf-8?b?5bGx55Sw5aSq6YOO?= <taro@example.jp>",
	     1,
	     {{"山田太郎", "taro@example.jp", NULL}}},
	    {"Jörg Müller <joerg@example.de>",
	     1,
	     {{"Jörg Müller", "joerg@example.de", NULL}}},
	    /* IDN domains become punycode (TR46 maps case first). */
	    {"user@münchen.de", 1, {{NULL, "user@xn--mnchen-3ya.de", NULL}}},
	    {"Info <info@Bücher.example>",
	     1,
	     {{"Info", "info@xn--bcher-kva.example", NULL}}},
	    {"x@xn--mnchen-3ya.de", 1, {{NULL, "x@xn--mnchen-3ya.de", NULL}}},
	    /* Quoted local parts: kept quoted only when they must be. */
	    {"\"john doe\"@example.org",
	     1,
	     {{NULL, "\"john doe\"@example.org", NULL}}},
	    {"\"john.doe\"@example.org",
	     1,
	     {{NULL, "john.doe@example.org", NULL}}},
	    {"\"a\\\"b\"@example.org",
	     1,
	     {{NULL, "\"a\\\"b\"@example.org", NULL}}},
	    {"alice@[192.0.2.1]", 1, {{NULL, "alice@[192.0.2.1]", NULL}}},
	    {"x@[IPv6:2001:db8::1]", 1, {{NULL, "x@[IPv6:2001:db8::1]", NULL}}},
	    /* An address typed as the name, unquoted. */
	    {"alice@example.org <alice@example.org>",
	     1,
	     {{"alice@example.org", "alice@example.org", NULL}}},
	    {"\"\" <x@example.org>", 1, {{NULL, "x@example.org", NULL}}},
	    /* Groups (RFC 5322 A.1.3), flattened. */
	    {"A Group:Ed Jones <c@a.test>,joe@where.test,John "
	     "<jdoe@one.test>;",
	     3,
	     {{"Ed Jones", "c@a.test", "A Group"},
	      {NULL, "joe@where.test", "A Group"},
	      {"John", "jdoe@one.test", "A Group"}}},
	    {"Friends: alice@example.org, Bob <bob@example.net>;, "
	     "carol@example.com",
	     3,
	     {{NULL, "alice@example.org", "Friends"},
	      {"Bob", "bob@example.net", "Friends"},
	      {NULL, "carol@example.com", NULL}}},
	    {"=?UTF-8?Q?Gr=C3=BCppe?=: a@example.org;",
	     1,
	     {{NULL, "a@example.org", "Grüppe"}}},
	    {"undisclosed-recipients:;", 0, {{0}}},
	    {"undisclosed-recipients:", 0, {{0}}},
	    {"Undisclosed recipients:;, a@example.org",
	     1,
	     {{NULL, "a@example.org", NULL}}},
	    {"", 0, {{0}}},
	    {" \t ", 0, {{0}}},
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(cases); i++)
		check_good(&cases[i]);
}

struct bad_case {
	const char *value;
	const char *part; /* the quoted part of the message */
	const char *why;  /* a piece of the reason */
};

static void
test_parse_errors(void **state)
{
	static const struct bad_case cases[] = {
	    {"alice", "'alice'", "no @domain"},
	    {"a@example.org, bob", "'bob'", "no @domain"},
	    {"Doe, John <j@example.org>", "'Doe'", "no @domain"},
	    {"<root>", "'<root>'", "no @domain"},
	    {"John Doe john@example.org", "'John Doe john@example.org'",
	     "angle brackets"},
	    {"a@example.org b@example.org", "'a@example.org b@example.org'",
	     "comma is missing"},
	    {"<alice@example.org", "'<alice@example.org'", "not closed"},
	    {"alice@example.org>", "'alice@example.org>'", "'>'"},
	    {"<a@example.org b>", "'<a@example.org b>'", "after the address"},
	    {"\"unterminated <a@example.org>", "'\"unterminated",
	     "quotation mark"},
	    {"(unclosed a@example.org", "'(unclosed", "'('"},
	    {"a)b@example.org", "'a)b@example.org'", "')'"},
	    {"a@", "'a@'", "nothing after"},
	    {"@example.org", "'@example.org'", "before the '@'"},
	    {"a..b@example.org", "'a..b@example.org'", "before the '@'"},
	    {"a@-bad-.example", "'a@-bad-.example'", "domain"},
	    {"a@exa$mple.org", "'a@exa$mple.org'", "domain"},
	    {"a@example.org.", "'a@example.org.'", "domain"},
	    {"a@[1.2.3.4 x\\]", "'a@[1.2.3.4", "domain literal"},
	    {"a@[1.2.3.4", "'a@[1.2.3.4'", "'['"},
	    {"a@xn--ab\xc3\xa9.example", "'a@xn--ab\xc3\xa9.example'",
	     "internationalised"},
	    {"jörg@example.de", "'jörg@example.de'", "not ASCII"},
	    {"\xff@example.org", "", "UTF-8"},
	    {"g1: g2: a@example.org;;", "'g1: g2: a@example.org;;'",
	     "another group"},
	    {": a@example.org;", "': a@example.org;'", "name"},
	    {"a\\b@example.org", "'a\\b@example.org'", "backslash"},
	    {"x@example.org; y@example.org", "'x@example.org; y@example.org'",
	     "comma is missing"},
	    /* Injection attempts: nothing with a line break, a control
	     * character or an angle bracket gets into an address. */
	    {"<a@example.org\r\nRCPT TO:<evil@example.net>>",
	     "'<a@example.org RCPT TO:<evil@example.net>>'", "line break"},
	    {"a@example.org\nRCPT TO:<evil@example.net>",
	     "'a@example.org RCPT TO:<evil@example.net>'", "line break"},
	    {"a@example.org\rRCPT TO:<evil@example.net>",
	     "'a@example.org RCPT TO:<evil@example.net>'", "line break"},
	    {"\"a\r\nRCPT TO:<evil@example.net>\"@example.org", "'\"a RCPT",
	     "line break"},
	    {"\"a\\\r\nb\"@example.org", "'\"a\\ b\"@example.org'",
	     "control character"},
	    {"a\x01"
	     "b@example.org",
	     "'a?b@example.org'", "control character"},
	    {"a@example.org\x7f", "'a@example.org?'", "control character"},
	    {"\"a\\\x01\"@example.org", "'\"a\\?\"@example.org'",
	     "control character"},
	    {"\"a<b\"@example.org", "'\"a<b\"@example.org'", "cannot be sent"},
	    {"\"a>b\"@example.org", "'\"a>b\"@example.org'", "cannot be sent"},
	    {"<\"a>\"@example.org>", "'<\"a>\"@example.org>'",
	     "cannot be sent"},
	    {"\"x\x00y\"@example.org", "'\"x'", "quotation mark"},
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(cases); i++) {
		const struct bad_case *c = &cases[i];
		struct fm_mime_addresses l = {(void *)1, 99};
		struct fm_error err;
		fm_error_clear(&err);
		if (fm_mime_addresses_parse(c->value, &l, &err) == 0)
			fail_msg("accepted: %s (%zu: %s)", c->value, l.n,
			         l.n > 0 ? l.items[0].addr : "");
		assert_int_equal(err.cls, FM_ERR_USAGE);
		assert_null(l.items);
		assert_int_equal(l.n, 0);
		if (strstr(err.user, c->part) == NULL ||
		    strstr(err.user, c->why) == NULL)
			fail_msg("%s: message '%s' lacks '%s' or '%s'",
			         c->value, err.user, c->part, c->why);
		/* The sentence itself never carries a line break or
		 * control character. */
		for (const char *p = err.user; *p != '\0'; p++)
			assert_false((unsigned char)*p < 0x20);
	}
	/* The exact sentence of the most common mistake. */
	struct fm_mime_addresses l;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_mime_addresses_parse("alice", &l, &err), -1);
	assert_string_equal(err.user,
	                    "'alice' is not a valid address: it has no "
	                    "@domain");
	/* A long bad element is quoted in part. */
	char longv[300];
	memset(longv, 'x', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	assert_int_equal(fm_mime_addresses_parse(longv, &l, &err), -1);
	assert_non_null(strstr(err.user, "xxx...'"));
	assert_true(strlen(err.user) < 150);
}

static void
test_parse_limits(void **state)
{
	struct fm_mime_addresses l;
	struct fm_error err;
	char buf[600];
	/* 64 characters before the '@' are allowed, 65 are not. */
	memset(buf, 'a', 64);
	snprintf(buf + 64, sizeof(buf) - 64, "@example.org");
	assert_int_equal(fm_mime_addresses_parse(buf, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].addr, buf);
	fm_mime_addresses_free(&l);
	memset(buf, 'a', 65);
	snprintf(buf + 65, sizeof(buf) - 65, "@example.org");
	assert_int_equal(fm_mime_addresses_parse(buf, &l, &err), -1);
	assert_non_null(strstr(err.user, "64"));
	/* A domain label of 64 characters is not valid; a whole address
	 * past 254 is refused. */
	memset(buf, 'b', 64);
	snprintf(buf + 64, sizeof(buf) - 64, ".example");
	char *v = xasprintf("a@%s", buf);
	assert_int_equal(fm_mime_addresses_parse(v, &l, &err), -1);
	free(v);
	struct fm_buf d;
	fm_buf_init(&d, 1000);
	fm_buf_append_str(&d, "a@");
	for (int i = 0; i < 5; i++)
		fm_buf_append_str(
		    &d, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
		        ".");
	fm_buf_append_str(&d, "org");
	assert_int_equal(fm_mime_addresses_parse(d.data, &l, &err), -1);
	assert_int_equal(err.cls, FM_ERR_USAGE);
	fm_buf_free(&d);
	/* Many addresses in one list. */
	struct fm_buf many;
	fm_buf_init(&many, 1 << 20);
	for (int i = 0; i < 2000; i++)
		fm_buf_printf(&many, "%sUser %d <u%d@example.org>",
		              i > 0 ? ",\n " : "", i, i);
	assert_int_equal(fm_mime_addresses_parse(many.data, &l, &err), 0);
	assert_int_equal(l.n, 2000);
	assert_string_equal(l.items[1999].name, "User 1999");
	assert_string_equal(l.items[1999].addr, "u1999@example.org");
	fm_mime_addresses_free(&l);
	fm_buf_free(&many);
	fm_mime_addresses_free(NULL); /* NULL-safe */
}

/* ------------------------------------------------------------------------
 * Finished messages.
 */

static void
assert_addrs(const struct fm_mime_addresses *l, const char *const *want,
             size_t n)
{
	if (l->n != n)
		fail_msg("%zu recipients, want %zu (first %s)", l->n, n,
		         l->n > 0 ? l->items[0].addr : "-");
	for (size_t i = 0; i < n; i++)
		assert_string_equal(l->items[i].addr, want[i]);
}

static void
test_recipients(void **state)
{
	const char *msg = "From: me@example.org\n"
	                  "To: A <a@example.org>, b@example.org\n"
	                  "Subject: To: not@example.org\n"
	                  "CC: B@Example.ORG,\n"
	                  "\tc@example.org\n"
	                  "Bcc: d@example.org,\n"
	                  " e@example.org\n"
	                  "to: Team: f@example.org, A@EXAMPLE.ORG;\n"
	                  "bcc: g@example.org\n"
	                  "\n"
	                  "To: body@example.org\n"
	                  "Bcc: body2@example.org\n";
	static const char *const want[] = {
	    "a@example.org", "b@example.org", "c@example.org", "d@example.org",
	    "e@example.org", "f@example.org", "g@example.org",
	};
	struct fm_mime_addresses l;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_mime_recipients(msg, strlen(msg), &l, &err), 0);
	assert_addrs(&l, want, FM_ARRAY_LEN(want));
	assert_string_equal(l.items[0].name, "A");
	assert_string_equal(l.items[5].group, "Team");
	fm_mime_addresses_free(&l);

	/* CRLF, and a header with no recipients at all. */
	const char *crlf = "From: me@example.org\r\nTo: x@example.org\r\n"
	                   "Cc: undisclosed-recipients:;\r\n\r\nbody\r\n";
	static const char *const want2[] = {"x@example.org"};
	assert_int_equal(fm_mime_recipients(crlf, strlen(crlf), &l, &err), 0);
	assert_addrs(&l, want2, 1);
	fm_mime_addresses_free(&l);
	const char *none = "From: me@example.org\nSubject: hi\n\nTo: a@b\n";
	assert_int_equal(fm_mime_recipients(none, strlen(none), &l, &err), 0);
	assert_int_equal(l.n, 0);
	assert_null(l.items);

	/* A bad address fails the whole message, naming the field. */
	const char *bad = "To: a@example.org\nCc: Doe, John <j@example.org>\n"
	                  "\nbody\n";
	assert_int_equal(fm_mime_recipients(bad, strlen(bad), &l, &err), -1);
	assert_int_equal(err.cls, FM_ERR_USAGE);
	assert_string_equal(err.user, "the Cc field: 'Doe' is not a valid "
	                              "address: it has no @domain");
	assert_null(l.items);
	/* A line break that would inject a command ends the field (the next
	 * line is neither a continuation nor a field, so the header block
	 * ends there), and what is left is refused. */
	const char *inj =
	    "To: <a@example.org\r\nRCPT TO:<evil@example.net>>\r\n"
	    "\r\nbody\r\n";
	assert_int_equal(fm_mime_recipients(inj, strlen(inj), &l, &err), -1);
	assert_non_null(strstr(err.user, "'<a@example.org'"));
	assert_non_null(strstr(err.user, "not closed"));
	/* A NUL inside a field cannot hide an address. */
	const char nul[] = "To: a@example.org\0, b@example.org\n\nx\n";
	assert_int_equal(fm_mime_recipients(nul, sizeof(nul) - 1, &l, &err),
	                 -1);
	assert_non_null(strstr(err.user, "NUL"));
	/* Fields past the envelope's header limit still count. */
	struct fm_buf big;
	fm_buf_init(&big, 2 * FM_MIME_HEADER_MAX);
	fm_buf_append_str(&big, "To: a@example.org\n");
	while (big.len < FM_MIME_HEADER_MAX + 1000)
		fm_buf_append_str(&big,
		                  "X-Filler: "
		                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		                  "xxxxxxxxxxxxxxxxxxxx\n");
	fm_buf_append_str(&big, "Bcc: late@example.org\n\nbody\n");
	static const char *const want3[] = {"a@example.org",
	                                    "late@example.org"};
	assert_int_equal(fm_mime_recipients(big.data, big.len, &l, &err), 0);
	assert_addrs(&l, want3, 2);
	fm_mime_addresses_free(&l);
	size_t n;
	char *s = fm_mime_strip_bcc(big.data, big.len, &n);
	assert_int_equal(n, big.len - strlen("Bcc: late@example.org\n"));
	assert_null(strstr(s, "late@"));
	free(s);
	fm_buf_free(&big);
}

static void
check_strip(const char *in, const char *want)
{
	size_t n = 0;
	char *out = fm_mime_strip_bcc(in, strlen(in), &n);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
	free(out);
}

static void
test_strip_bcc(void **state)
{
	/* Folded, several, upper case, with a space before the colon. */
	check_strip("From: me@example.org\n"
	            "To: a@example.org\n"
	            "Bcc: b@example.org,\n"
	            "  c@example.org,\n"
	            "\td@example.org\n"
	            "Subject: hi\n"
	            "BCC: e@example.org\n"
	            "Bcc : f@example.org\n"
	            "X-Bcc: stays\n"
	            "Resent-Bcc: stays too\n"
	            "\n"
	            "Bcc: in the body\n",
	            "From: me@example.org\n"
	            "To: a@example.org\n"
	            "Subject: hi\n"
	            "X-Bcc: stays\n"
	            "Resent-Bcc: stays too\n"
	            "\n"
	            "Bcc: in the body\n");
	/* Bcc as the first and the last field, CRLF. */
	check_strip("Bcc: a@example.org\r\n"
	            "To: b@example.org\r\n"
	            "Bcc: c@example.org,\r\n"
	            " d@example.org\r\n"
	            "\r\n"
	            "body\r\n",
	            "To: b@example.org\r\n"
	            "\r\n"
	            "body\r\n");
	/* The last line of a message without body or final newline. */
	check_strip("To: b@example.org\nBcc: c@example.org",
	            "To: b@example.org\n");
	check_strip("To: b@example.org\nBcc: c@example.org\n\n",
	            "To: b@example.org\n\n");
	/* Nothing to strip: the same bytes, odd ones included. */
	const char *same = "From x  Mon Jan  1 00:00:00 2024\n"
	                   "To: a@example.org\n"
	                   "Subject: =?UTF-8?Q?caf=C3=A9?=\n"
	                   "\n"
	                   "\xff\xfe body\r\n";
	check_strip(same, same);
	check_strip("", "");
	check_strip("Bcc: x@example.org\n", "");
	/* An empty Bcc is a Bcc too. */
	check_strip("To: a@example.org\nBcc:\nSubject: s\n\nb\n",
	            "To: a@example.org\nSubject: s\n\nb\n");
}

int
main(void)
{
	setlocale(LC_ALL, "C.UTF-8");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_shapes),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_parse_limits),
	    cmocka_unit_test(test_recipients),
	    cmocka_unit_test(test_strip_bcc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

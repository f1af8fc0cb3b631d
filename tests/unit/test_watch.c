/* SPDX-License-Identifier: GPL-3.0-or-later */
/* What push makes of a server response (imap_watch_parse) and of a line
 * that announces a literal (imap_watch_literal): the responses Dovecot
 * sends with NOTIFY and IDLE, and hostile ones, which must never crash,
 * overrun or be taken for news they are not. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"

static struct imap_watch_resp
parse(const char *s)
{
	struct imap_watch_resp r;
	imap_watch_parse(s, &r);
	return r;
}

static void
test_selected_news(void **state)
{
	(void)state;
	assert_int_equal(parse("* 3 EXISTS").kind, IMAP_WATCH_SELECTED);
	assert_int_equal(parse("* 12 exists").kind, IMAP_WATCH_SELECTED);
	assert_int_equal(parse("* 1 EXPUNGE").kind, IMAP_WATCH_SELECTED);
	assert_int_equal(parse("* 1 FETCH (FLAGS (\\Flagged \\Recent))").kind,
	                 IMAP_WATCH_SELECTED);
	assert_int_equal(parse("* 3 FETCH (UID 3 MODSEQ (12))").kind,
	                 IMAP_WATCH_SELECTED);
	assert_int_equal(parse("* VANISHED (EARLIER) 1:3").kind,
	                 IMAP_WATCH_SELECTED);
	/* Not news. */
	assert_int_equal(parse("* 3 RECENT").kind, IMAP_WATCH_OTHER);
	assert_int_equal(parse("* OK Still here").kind, IMAP_WATCH_OTHER);
	assert_int_equal(parse("* OK [HIGHESTMODSEQ 7] Highest").kind,
	                 IMAP_WATCH_OTHER);
	assert_int_equal(parse("* ENABLED CONDSTORE").kind, IMAP_WATCH_OTHER);
	assert_int_equal(parse("* EXISTS").kind, IMAP_WATCH_OTHER);
	assert_int_equal(parse("* 3EXISTS").kind, IMAP_WATCH_OTHER);
	assert_int_equal(parse("* 3 EXISTSX").kind, IMAP_WATCH_OTHER);
	assert_int_equal(parse("* 3 FETCHED").kind, IMAP_WATCH_OTHER);
	assert_int_equal(parse("*3 EXISTS").kind, IMAP_WATCH_OTHER);
	assert_int_equal(parse("").kind, IMAP_WATCH_OTHER);
	assert_int_equal(parse("*").kind, IMAP_WATCH_OTHER);
	assert_int_equal(parse("* ").kind, IMAP_WATCH_OTHER);
}

static void
test_other_kinds(void **state)
{
	(void)state;
	assert_int_equal(parse("+ idling").kind, IMAP_WATCH_CONTINUE);
	assert_int_equal(parse("+").kind, IMAP_WATCH_CONTINUE);
	assert_int_equal(parse("* BYE Logging out").kind, IMAP_WATCH_BYE);
	assert_int_equal(parse("* BYE").kind, IMAP_WATCH_BYE);
	assert_int_equal(parse("* BYEBYE").kind, IMAP_WATCH_OTHER);
	assert_int_equal(
	    parse("* OK [NOTIFICATIONOVERFLOW] too many changes").kind,
	    IMAP_WATCH_OVERFLOW);
	assert_int_equal(parse("* ok [notificationoverflow]").kind,
	                 IMAP_WATCH_OVERFLOW);
	assert_int_equal(parse("* NO [NOTIFICATIONOVERFLOW]").kind,
	                 IMAP_WATCH_OTHER);

	struct imap_watch_resp r = parse("fmw3 OK Idle completed");
	assert_int_equal(r.kind, IMAP_WATCH_TAGGED);
	assert_string_equal(r.tag, "fmw3");
	assert_true(r.ok);
	r = parse("fmw12 NO [CANNOT] no NOTIFY for you");
	assert_int_equal(r.kind, IMAP_WATCH_TAGGED);
	assert_string_equal(r.tag, "fmw12");
	assert_false(r.ok);
	r = parse("fmw1 BAD");
	assert_false(r.ok);
	r = parse("fmw1 OKAY");
	assert_false(r.ok);
	/* No room for a tag that long, no tag at all, no status. */
	assert_int_equal(
	    parse("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa OK").kind,
	    IMAP_WATCH_OTHER);
	assert_int_equal(parse(" OK").kind, IMAP_WATCH_OTHER);
	assert_int_equal(parse("fmw1").kind, IMAP_WATCH_OTHER);
}

static void
test_status_dovecot(void **state)
{
	(void)state;
	struct imap_watch_resp r =
	    parse("* STATUS Lists (MESSAGES 4 UIDNEXT 6 UNSEEN 3 "
	          "HIGHESTMODSEQ 10)");
	assert_int_equal(r.kind, IMAP_WATCH_STATUS);
	assert_true(r.named);
	assert_string_equal(r.mailbox, "Lists");
	assert_int_equal(r.st_have, (1u << IMAP_ST_MESSAGES) |
	                                (1u << IMAP_ST_UIDNEXT) |
	                                (1u << IMAP_ST_UNSEEN) |
	                                (1u << IMAP_ST_HIGHESTMODSEQ));
	assert_int_equal(r.st[IMAP_ST_MESSAGES], 4);
	assert_int_equal(r.st[IMAP_ST_UIDNEXT], 6);
	assert_int_equal(r.st[IMAP_ST_UNSEEN], 3);
	assert_int_equal(r.st[IMAP_ST_HIGHESTMODSEQ], 10);

	r = parse("* STATUS \"Sp ace\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY "
	          "1795319967 UNSEEN 1 HIGHESTMODSEQ 2)");
	assert_string_equal(r.mailbox, "Sp ace");
	assert_int_equal(r.st[IMAP_ST_UIDVALIDITY], 1795319967);

	r = parse("* STATUS \"q\\\"uo\\\\te\" (MESSAGES 1)");
	assert_string_equal(r.mailbox, "q\"uo\\te");
	assert_int_equal(r.st_have, 1u << IMAP_ST_MESSAGES);

	/* A flag change elsewhere, with CONDSTORE enabled. */
	r = parse("* STATUS Lists (HIGHESTMODSEQ 8)");
	assert_int_equal(r.st_have, 1u << IMAP_ST_HIGHESTMODSEQ);
	assert_int_equal(r.st[IMAP_ST_HIGHESTMODSEQ], 8);

	/* A literal name as the reader inlines it (UTF-8 from Dovecot). */
	r = parse("* STATUS \"J\xc3\xbcrgen\" (MESSAGES 1 UIDNEXT 2)");
	assert_true(r.named);
	assert_string_equal(r.mailbox, "J\xc3\xbcrgen");

	/* Any case; attributes fulmar does not use are skipped. */
	r = parse("* status INBOX (messages 2 SIZE 4096 APPENDLIMIT NIL "
	          "X-GUID 7 uidnext 9)");
	assert_string_equal(r.mailbox, "INBOX");
	assert_int_equal(r.st_have,
	                 (1u << IMAP_ST_MESSAGES) | (1u << IMAP_ST_UIDNEXT));
	assert_int_equal(r.st[IMAP_ST_UIDNEXT], 9);
	r = parse("* STATUS a/b ()");
	assert_true(r.named);
	assert_int_equal(r.st_have, 0);
}

static void
test_status_hostile(void **state)
{
	(void)state;
	/* The name does not parse: news somewhere, no name. */
	static const char *const unnamed[] = {
	    "* STATUS ",
	    "* STATUS",
	    "* STATUS \"unterminated (MESSAGES 1)",
	    "* STATUS \"ends in a backslash\\",
	    "* STATUS {} (MESSAGES 1)",
	    "* STATUS (MESSAGES 1)",
	    "* STATUS \x01\x02 (MESSAGES 1)",
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(unnamed); i++) {
		struct imap_watch_resp r = parse(unnamed[i]);
		assert_int_equal(r.kind, IMAP_WATCH_STATUS);
		assert_false(r.named);
		assert_int_equal(r.st_have, 0);
	}
	/* A name, but the values do not parse: none is taken. */
	static const char *const valueless[] = {
	    "* STATUS Lists",
	    "* STATUS Lists MESSAGES 1",
	    "* STATUS Lists (MESSAGES",
	    "* STATUS Lists (MESSAGES 1",
	    "* STATUS Lists (MESSAGES 1 UIDNEXT)",
	    "* STATUS Lists (MESSAGES -1)",
	    "* STATUS Lists (MESSAGES 1x)",
	    "* STATUS Lists (MESSAGES 1  UIDNEXT 2)",
	    "* STATUS Lists (MESSAGES 99999999999999999999)",
	    "* STATUS Lists (MESSAGES 184467440737095516160)",
	    "* STATUS Lists (MESSAGES 1) trailing",
	    "* STATUS Lists ((MESSAGES 1))",
	    "* STATUS Lists (MESSAGES (1))",
	    "* STATUS Lists ( MESSAGES 1)",
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(valueless); i++) {
		struct imap_watch_resp r = parse(valueless[i]);
		assert_int_equal(r.kind, IMAP_WATCH_STATUS);
		assert_true(r.named);
		assert_string_equal(r.mailbox, "Lists");
		assert_int_equal(r.st_have, 0);
	}
	/* The largest number that fits. */
	struct imap_watch_resp r =
	    parse("* STATUS Lists (HIGHESTMODSEQ 18446744073709551615)");
	assert_int_equal(r.st_have, 1u << IMAP_ST_HIGHESTMODSEQ);
	assert_true(r.st[IMAP_ST_HIGHESTMODSEQ] == UINT64_MAX);

	/* A name longer than fulmar keeps is no name. */
	size_t n = IMAP_WATCH_NAME_MAX + 10;
	char *big = malloc(n + 64);
	memcpy(big, "* STATUS ", 9);
	memset(big + 9, 'x', n);
	memcpy(big + 9 + n, " (MESSAGES 1)", 14);
	r = parse(big);
	assert_false(r.named);
	/* Exactly the maximum is kept. */
	memcpy(big + 9 + IMAP_WATCH_NAME_MAX, " (MESSAGES 1)", 14);
	r = parse(big);
	assert_true(r.named);
	assert_int_equal(strlen(r.mailbox), IMAP_WATCH_NAME_MAX);
	/* A quoted one too. */
	big[9] = '"';
	memset(big + 10, 'y', n);
	memcpy(big + 10 + n, "\" (MESSAGES 1)", 15);
	r = parse(big);
	assert_false(r.named);
	/* Thousands of attributes: parsed in one pass, nothing kept. */
	size_t atts = 5000;
	size_t size = 32 + atts * 12, len;
	char *many = malloc(size);
	len = (size_t)snprintf(many, size, "* STATUS Lists (");
	for (size_t i = 0; i < atts; i++)
		len += (size_t)snprintf(many + len, size - len, "%sX-%zu 1",
		                        i ? " " : "", i);
	snprintf(many + len, size - len, ")");
	r = parse(many);
	assert_true(r.named);
	assert_int_equal(r.st_have, 0);
	free(many);
	free(big);
}

static void
test_literal(void **state)
{
	(void)state;
	uint64_t n = 0;
	size_t at = 0;
	const char *l = "* STATUS {7}";
	assert_true(imap_watch_literal(l, strlen(l), &n, &at));
	assert_int_equal(n, 7);
	assert_int_equal(at, 9);
	l = "* 1 FETCH (BODY[] ~{0}";
	assert_true(imap_watch_literal(l, strlen(l), &n, &at));
	assert_int_equal(n, 0);
	assert_int_equal(at, strlen("* 1 FETCH (BODY[] "));
	l = "{99999999999999999999999}";
	assert_true(imap_watch_literal(l, strlen(l), &n, &at));
	assert_true(n == UINT64_MAX);
	assert_int_equal(at, 0);
	static const char *const none[] = {
	    "",
	    "}",
	    "{}",
	    "* STATUS {7",
	    "* STATUS 7}",
	    "* STATUS {7+}",
	    "* STATUS {x}",
	    "* OK {7} not at the end",
	    "{-1}",
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(none); i++)
		assert_false(
		    imap_watch_literal(none[i], strlen(none[i]), &n, &at));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_selected_news),
	    cmocka_unit_test(test_other_kinds),
	    cmocka_unit_test(test_status_dovecot),
	    cmocka_unit_test(test_status_hostile),
	    cmocka_unit_test(test_literal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Pure logic of net/: base64, the SASL mechanisms' exact bytes, mechanism
 * choice, and the guard that bounds what a server may send. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_int.h"

static char *
decode(const char *b64, size_t *len_r)
{
	char *out = NULL;
	size_t len = 0;
	assert_int_equal(fm_base64_decode(b64, &out, &len), 0);
	if (len_r != NULL)
		*len_r = len;
	return out;
}

static void
test_base64(void **state)
{
	char *e = fm_base64_encode("hello", 5);
	assert_string_equal(e, "aGVsbG8=");
	free(e);
	e = fm_base64_encode("", 0);
	assert_string_equal(e, "");
	free(e);
	size_t len;
	char *d = decode("aGVsbG8=", &len);
	assert_int_equal(len, 5);
	assert_memory_equal(d, "hello", 5);
	free(d);
	d = decode("AGFsaWNlAHNlY3JldA==", &len);
	assert_int_equal(len, 13);
	assert_memory_equal(d, "\0alice\0secret", 13);
	free(d);
	d = decode("", &len);
	assert_int_equal(len, 0);
	free(d);
	char *bad = NULL;
	assert_int_equal(fm_base64_decode("abc", &bad, &len), -1);
	assert_int_equal(fm_base64_decode("ab=c", &bad, &len), -1);
	assert_int_equal(fm_base64_decode("a!bc", &bad, &len), -1);
	assert_int_equal(fm_base64_decode("ab\r\n", &bad, &len), -1);
	assert_null(bad);
}

static void
test_sasl_plain(void **state)
{
	struct fm_sasl *s =
	    fm_sasl_new(FM_AUTH_PLAIN, "alice", "s3cret", "h", 993);
	char *ir = fm_sasl_initial_response(s);
	size_t len;
	char *d = decode(ir, &len);
	assert_int_equal(len, 13);
	assert_memory_equal(d, "\0alice\0s3cret", 13);
	free(d);
	fm_free_secret(&ir);
	/* Two-step form: an empty challenge asks for the same message. */
	char *resp = NULL;
	assert_int_equal(fm_sasl_step(s, "", &resp, NULL), 0);
	d = decode(resp, &len);
	assert_memory_equal(d, "\0alice\0s3cret", 13);
	free(d);
	fm_free_secret(&resp);
	/* A second challenge is out of protocol. */
	assert_int_equal(fm_sasl_step(s, "", &resp, NULL), -1);
	fm_sasl_free(&s);
	assert_null(s);
}

static void
test_sasl_login(void **state)
{
	struct fm_sasl *s =
	    fm_sasl_new(FM_AUTH_LOGIN, "alice", "s3cret", "h", 993);
	assert_null(fm_sasl_initial_response(s));
	char *resp = NULL;
	assert_int_equal(fm_sasl_step(s, "VXNlcm5hbWU6", &resp, NULL), 0);
	assert_string_equal(resp, "YWxpY2U="); /* alice */
	fm_free_secret(&resp);
	assert_int_equal(fm_sasl_step(s, "UGFzc3dvcmQ6", &resp, NULL), 0);
	assert_string_equal(resp, "czNjcmV0"); /* s3cret */
	fm_free_secret(&resp);
	assert_int_equal(fm_sasl_step(s, "", &resp, NULL), -1);
	/* Not base64: refused. */
	fm_sasl_free(&s);
	s = fm_sasl_new(FM_AUTH_LOGIN, "alice", "s3cret", "h", 993);
	assert_int_equal(fm_sasl_step(s, "not base64!", &resp, NULL), -1);
	fm_sasl_free(&s);
}

static void
test_sasl_oauth(void **state)
{
	struct fm_sasl *s =
	    fm_sasl_new(FM_AUTH_XOAUTH2, "alice@x.org", "tok", "h", 993);
	char *ir = fm_sasl_initial_response(s);
	char *d = decode(ir, NULL);
	assert_string_equal(d, "user=alice@x.org\001auth=Bearer tok\001\001");
	free(d);
	fm_free_secret(&ir);
	/* The server's JSON error report is handed back and answered with
	 * an empty line. */
	char *resp = NULL, *report = NULL;
	assert_int_equal(
	    fm_sasl_step(s, "eyJzdGF0dXMiOiI0MDEifQ==", &resp, &report), 0);
	assert_string_equal(resp, "");
	assert_string_equal(report, "{\"status\":\"401\"}");
	free(resp);
	free(report);
	fm_sasl_free(&s);

	s = fm_sasl_new(FM_AUTH_OAUTHBEARER, "alice@x.org", "tok", "imap.x.org",
	                993);
	ir = fm_sasl_initial_response(s);
	d = decode(ir, NULL);
	assert_string_equal(d, "n,a=alice@x.org,\001host=imap.x.org\001"
	                       "port=993\001auth=Bearer tok\001\001");
	free(d);
	fm_free_secret(&ir);
	assert_int_equal(fm_sasl_step(s, "e30=", &resp, &report), 0);
	d = decode(resp, NULL);
	assert_string_equal(d, "\001");
	free(d);
	free(resp);
	free(report);
	fm_sasl_free(&s);
}

static void
test_sasl_choose(void **state)
{
	enum fm_auth_mech m;
	struct fm_error err;
	fm_error_clear(&err);
	const char *both[] = {"LOGIN", "plain"};
	assert_int_equal(fm_sasl_choose(FM_AUTH_AUTO, both, 2, &m, &err), 0);
	assert_int_equal(m, FM_AUTH_PLAIN);
	const char *login[] = {"CRAM-MD5", "LOGIN"};
	assert_int_equal(fm_sasl_choose(FM_AUTH_AUTO, login, 2, &m, &err), 0);
	assert_int_equal(m, FM_AUTH_LOGIN);
	assert_int_equal(fm_sasl_choose(FM_AUTH_XOAUTH2, login, 2, &m, &err),
	                 -1);
	assert_int_equal(err.cls, FM_ERR_CONFIG);
	assert_non_null(strstr(err.user, "auth = XOAUTH2"));
	assert_non_null(strstr(err.user, "CRAM-MD5 LOGIN"));
	const char *cram[] = {"CRAM-MD5"};
	assert_int_equal(fm_sasl_choose(FM_AUTH_AUTO, cram, 1, &m, &err), -1);
	assert_non_null(strstr(err.user, "oauth_token_cmd"));
	assert_int_equal(fm_sasl_choose(FM_AUTH_PLAIN, NULL, 0, &m, &err), -1);
	assert_non_null(strstr(err.user, "nothing"));
}

static struct fm_net_conn *
guard_conn(bool imap, size_t max_line, uint64_t max_literal)
{
	struct fm_net_conn *c = xcalloc(1, sizeof(*c));
	c->guard.imap = imap;
	c->limits.max_line = max_line;
	c->limits.max_literal = max_literal;
	return c;
}

static void
test_guard_lines(void **state)
{
	struct fm_net_conn *c = guard_conn(false, 10, 0);
	assert_int_equal(net_guard_feed(c, "+OK 12345\r\n", 11), 0);
	/* Exactly the limit (CR included) is fine, one more is not. */
	assert_int_equal(net_guard_feed(c, "123456789\r\n", 11), 0);
	assert_int_equal(net_guard_feed(c, "1234567890\r", 11), -1);
	assert_int_equal(c->fail, NET_LINE);
	free(c);
	/* An endless line in small pieces fails just the same. */
	c = guard_conn(true, 1000, 1000);
	int ret = 0;
	for (int i = 0; i < 200 && ret == 0; i++)
		ret = net_guard_feed(c, "xxxxxxxxxx", 10);
	assert_int_equal(ret, -1);
	assert_int_equal(c->fail, NET_LINE);
	free(c);
}

static void
test_guard_literals(void **state)
{
	struct fm_net_conn *c = guard_conn(true, 100, 50);
	/* Literal bytes do not count as line bytes; the response goes on
	 * after the literal. */
	const char *ok = "* 1 FETCH (BODY[] {40}\r\n"
	                 "0123456789012345678901234567890123456789"
	                 ")\r\n";
	assert_int_equal(net_guard_feed(c, ok, strlen(ok)), 0);
	assert_int_equal(c->guard.line_bytes, 0);
	/* Byte by byte, CRLF split, too. */
	for (size_t i = 0; ok[i] != '\0'; i++)
		assert_int_equal(net_guard_feed(c, ok + i, 1), 0);
	/* A 4 GB literal is refused at its announcement. */
	const char *huge = "* 1 FETCH (BODY[] {4294967296}\r\n";
	assert_int_equal(net_guard_feed(c, huge, strlen(huge)), -1);
	assert_int_equal(c->fail, NET_LITERAL);
	assert_string_equal(c->fail_detail, "4294967296");
	free(c);
	/* Leading zeros hide nothing. */
	c = guard_conn(true, 100, 50);
	const char *zeros =
	    "* 1 FETCH (BODY[] {00000000000000000000000000051}\r\n";
	assert_int_equal(net_guard_feed(c, zeros, strlen(zeros)), -1);
	assert_int_equal(c->fail, NET_LITERAL);
	free(c);
	/* A number too big for 64 bits is refused, not wrapped. */
	c = guard_conn(true, 100, 50);
	const char *wrap = "* 1 FETCH (BODY[] {99999999999999999999999}\r\n";
	assert_int_equal(net_guard_feed(c, wrap, strlen(wrap)), -1);
	assert_int_equal(c->fail, NET_LITERAL);
	free(c);
	/* Many small literals in one response add up. */
	c = guard_conn(true, 1000, 50);
	int ret = 0;
	for (int i = 0; i < 20 && ret == 0; i++)
		ret = net_guard_feed(c, "a {10}\r\n0123456789", 18);
	assert_int_equal(ret, -1);
	assert_int_equal(c->fail, NET_LITERAL);
	free(c);
	/* POP3 and SMTP have no literals: "{N}" is just text. */
	c = guard_conn(false, 100, 0);
	const char *pop = "+OK {4294967296}\r\n+OK\r\n";
	assert_int_equal(net_guard_feed(c, pop, strlen(pop)), 0);
	free(c);
}

static void
test_fingerprint_hex(void **state)
{
	uint8_t fp[32];
	for (int i = 0; i < 32; i++)
		fp[i] = (uint8_t)(i * 8 + 1);
	char out[96];
	fm_net_fingerprint_hex(fp, out);
	assert_int_equal(strlen(out), 95);
	assert_true(strncmp(out, "01:09:11:19", 11) == 0);
	assert_true(strcmp(out + 87, "e9:f1:f9") == 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_base64),
	    cmocka_unit_test(test_sasl_plain),
	    cmocka_unit_test(test_sasl_login),
	    cmocka_unit_test(test_sasl_oauth),
	    cmocka_unit_test(test_sasl_choose),
	    cmocka_unit_test(test_guard_lines),
	    cmocka_unit_test(test_guard_literals),
	    cmocka_unit_test(test_fingerprint_hex),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"

/* A sink that keeps every line it was given. */
struct capture {
	char lines[16][512];
	enum fm_log_level levels[16];
	int n;
};

static void
capture_sink(void *ctx, enum fm_log_level level, const char *line)
{
	struct capture *c = ctx;
	if (c->n < 16) {
		snprintf(c->lines[c->n], sizeof(c->lines[0]), "%s", line);
		c->levels[c->n] = level;
	}
	c->n++;
}

static int
setup(void **state)
{
	struct capture *c = calloc(1, sizeof(*c));
	fm_log_set_sink(capture_sink, c);
	fm_log_set_level(FM_LOG_DEBUG);
	*state = c;
	return 0;
}

static int
teardown(void **state)
{
	fm_log_set_sink(NULL, NULL);
	fm_log_set_level(FM_LOG_WARN);
	fm_log_clear_secrets();
	free(*state);
	return 0;
}

static void
test_levels(void **state)
{
	struct capture *c = *state;
	fm_log_set_level(FM_LOG_WARN);
	fm_log_info("not shown");
	fm_log_debug("not shown either");
	fm_log_warn("shown %d", 1);
	fm_log_error("shown %d", 2);
	assert_int_equal(c->n, 2);
	assert_string_equal(c->lines[0], "shown 1");
	assert_int_equal(c->levels[0], FM_LOG_WARN);
	assert_string_equal(c->lines[1], "shown 2");
	assert_int_equal(c->levels[1], FM_LOG_ERROR);
}

static void
test_control_characters_cannot_forge_lines(void **state)
{
	struct capture *c = *state;
	fm_log_error("server said: %s", "OK\r\nfulmar: error: forged\x1b[2J\n");
	assert_int_equal(c->n, 1);
	assert_null(strchr(c->lines[0], '\n'));
	assert_null(strchr(c->lines[0], '\x1b'));
	assert_string_equal(c->lines[0],
	                    "server said: OK??fulmar: error: forged?[2J");
}

static void
test_secret_never_reaches_sink(void **state)
{
	struct capture *c = *state;
	const char *pw = "hunter2-secret";
	fm_log_add_secret(pw);
	fm_log_error("password %s", pw);
	fm_log_error("%sprefix and suffix%s", pw, pw);
	fm_log_error("embedded:%s:in the middle", pw);
	assert_int_equal(c->n, 3);
	for (int i = 0; i < c->n; i++)
		assert_null(strstr(c->lines[i], pw));
	assert_string_equal(c->lines[0], "password <redacted>");
	assert_string_equal(c->lines[1],
	                    "<redacted>prefix and suffix<redacted>");
	assert_string_equal(c->lines[2], "embedded:<redacted>:in the middle");

	/* The longest secret wins where two overlap. */
	fm_log_add_secret("hunter2");
	fm_log_error("x%sy", pw);
	assert_string_equal(c->lines[3], "x<redacted>y");

	/* Removed: shown again. Short ones are never registered. */
	fm_log_remove_secret(pw);
	fm_log_remove_secret("hunter2");
	fm_log_add_secret("abc");
	fm_log_error("%s abc", pw);
	assert_string_equal(c->lines[4], "hunter2-secret abc");
}

static void
test_scrub(void **state)
{
	fm_log_add_secret("tok.en/123");
	char *s = fm_log_scrub("Bearer tok.en/123 and tok.en/12");
	assert_string_equal(s, "Bearer <redacted> and tok.en/12");
	free(s);
}

/* Feeds a transcript through a session's redactor and checks each line. */
struct step {
	enum fm_trace_dir dir;
	const char *line;
	const char *expect;
};

static void
run_steps(enum fm_trace_proto proto, const struct step *steps, size_t n)
{
	struct fm_trace_session *s = fm_trace_session_new(NULL, proto, "t");
	for (size_t i = 0; i < n; i++) {
		char *out = fm_trace_redact(s, steps[i].dir, steps[i].line);
		if (strcmp(out, steps[i].expect) != 0)
			fail_msg("step %zu: '%s' became '%s', expected '%s'", i,
			         steps[i].line, out, steps[i].expect);
		free(out);
	}
	fm_trace_session_free(&s);
	assert_null(s);
}

#define C FM_TRACE_SEND
#define S FM_TRACE_RECV

static void
test_redact_imap(void **state)
{
	const struct step steps[] = {
	    {S, "* OK ready", "* OK ready"},
	    {C, "a1 CAPABILITY", "a1 CAPABILITY"},
	    {S, "a1 OK done", "a1 OK done"},
	    {C, "a2 LOGIN alice \"p w\"", "a2 LOGIN <redacted>"},
	    {S, "a2 OK logged in", "a2 OK logged in"},
	    {C, "a3 login {5}", "a3 login <redacted>"},
	    {S, "+ go ahead", "+ go ahead"},
	    {C, "alice {6}", "<redacted>"},
	    {S, "+ go ahead", "+ go ahead"},
	    {C, "secret", "<redacted>"},
	    {S, "* CAPABILITY IMAP4rev1", "* CAPABILITY IMAP4rev1"},
	    {S, "a3 NO [AUTHENTICATIONFAILED] no",
	     "a3 NO [AUTHENTICATIONFAILED] no"},
	    {C, "a4 SELECT INBOX", "a4 SELECT INBOX"},
	    {C, "a5 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==",
	     "a5 AUTHENTICATE PLAIN <redacted>"},
	    {S, "a5 OK", "a5 OK"},
	    {C, "a6 AUTHENTICATE XOAUTH2", "a6 AUTHENTICATE XOAUTH2"},
	    {S, "+ ", "+ "},
	    {C, "dXNlcj1hbGljZQFhdXRoPUJlYXJlciB0b2tlbgEB", "<redacted>"},
	    {S, "+ eyJzdGF0dXMiOiI0MDEifQ==", "+ eyJzdGF0dXMiOiI0MDEifQ=="},
	    {C, "", "<redacted>"},
	    {S, "a6 NO failed", "a6 NO failed"},
	    {C, "a7 LIST \"\" *", "a7 LIST \"\" *"},
	};
	run_steps(FM_TRACE_IMAP, steps, FM_ARRAY_LEN(steps));
}

static void
test_redact_pop3(void **state)
{
	const struct step steps[] = {
	    {S, "+OK ready", "+OK ready"},
	    {C, "USER alice", "USER alice"},
	    {S, "+OK", "+OK"},
	    {C, "PASS hunter2 with spaces", "PASS <redacted>"},
	    {S, "-ERR auth failed", "-ERR auth failed"},
	    {C, "APOP alice c4c9334bac560ecc979e58001b3e22fb",
	     "APOP <redacted>"},
	    {C, "AUTH PLAIN", "AUTH PLAIN"},
	    {S, "+ ", "+ "},
	    {C, "AGFsaWNlAHNlY3JldA==", "<redacted>"},
	    {S, "+OK logged in", "+OK logged in"},
	    {C, "STAT", "STAT"},
	    {C, "AUTH XOAUTH2 dXNlcj1h", "AUTH XOAUTH2 <redacted>"},
	    {S, "+", "+"},
	    {C, "", "<redacted>"},
	    {S, "-ERR", "-ERR"},
	    {C, "UIDL", "UIDL"},
	};
	run_steps(FM_TRACE_POP3, steps, FM_ARRAY_LEN(steps));
}

static void
test_redact_smtp(void **state)
{
	const struct step steps[] = {
	    {S, "220 localhost ESMTP", "220 localhost ESMTP"},
	    {C, "EHLO me", "EHLO me"},
	    {S, "250-AUTH PLAIN LOGIN", "250-AUTH PLAIN LOGIN"},
	    {C, "AUTH LOGIN", "AUTH LOGIN"},
	    {S, "334 VXNlcm5hbWU6", "334 VXNlcm5hbWU6"},
	    {C, "YWxpY2U=", "<redacted>"},
	    {S, "334 UGFzc3dvcmQ6", "334 UGFzc3dvcmQ6"},
	    {C, "c2VjcmV0", "<redacted>"},
	    {S, "235 2.7.0 Authentication successful",
	     "235 2.7.0 Authentication successful"},
	    {C, "MAIL FROM:<alice@example.org>",
	     "MAIL FROM:<alice@example.org>"},
	    {C, "auth plain AGFsaWNlAHNlY3JldA==", "auth plain <redacted>"},
	    {S, "535 5.7.8 failed", "535 5.7.8 failed"},
	    {C, "QUIT", "QUIT"},
	};
	run_steps(FM_TRACE_SMTP, steps, FM_ARRAY_LEN(steps));
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char *buf = calloc(1, 1 << 16);
	size_t n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
test_trace_file_never_holds_secrets(void **state)
{
	char path[] = "/tmp/fm-trace-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	struct fm_trace *t = NULL;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_trace_open(path, &t, &err), 0);
	assert_non_null(t);
	/* The password is also registered, so it is caught even where the
	 * protocol rules would not see it (here: echoed by a server). */
	fm_log_add_secret("Sup3r-Secret!");
	struct fm_trace_session *s =
	    fm_trace_session_new(t, FM_TRACE_IMAP, "work/imap");
	const char *in = "* OK hi\r\n";
	const char *out = "a1 LOGIN alice Sup3r-Secret!\r\n";
	/* Byte by byte: partial lines must wait for their end. */
	for (size_t i = 0; in[i] != '\0'; i++)
		fm_trace_session_data(s, FM_TRACE_RECV, in + i, 1);
	for (size_t i = 0; out[i] != '\0'; i++)
		fm_trace_session_data(s, FM_TRACE_SEND, out + i, 1);
	const char *echo = "* BAD you said Sup3r-Secret!\r\na1 OK\r\n";
	fm_trace_session_data(s, FM_TRACE_RECV, echo, strlen(echo));
	fm_trace_session_note(s, "TLS %s", "TLSv1.3");
	/* An endless line is cut at 4 KiB, not buffered without bound. */
	char *big = malloc(100000);
	memset(big, 'x', 100000);
	fm_trace_session_data(s, FM_TRACE_RECV, big, 100000);
	fm_trace_session_data(s, FM_TRACE_RECV, "\r\n* OK after\r\n", 14);
	free(big);
	fm_trace_session_free(&s);
	fm_trace_close(&t);
	assert_null(t);

	char *text = slurp(path);
	assert_null(strstr(text, "Sup3r-Secret!"));
	assert_non_null(strstr(text, " work/imap S: * OK hi\n"));
	assert_non_null(strstr(text, " work/imap C: a1 LOGIN <redacted>\n"));
	assert_non_null(
	    strstr(text, " work/imap S: * BAD you said <redacted>\n"));
	assert_non_null(strstr(text, " work/imap == TLS TLSv1.3\n"));
	assert_non_null(strstr(text, "[line truncated]\n"));
	assert_non_null(strstr(text, " work/imap S: * OK after\n"));
	/* Timestamped: YYYY-MM-DD HH:MM:SS.mmm */
	assert_true(text[4] == '-' && text[10] == ' ' && text[19] == '.');
	assert_true(strlen(text) < 4096 + 1024);
	free(text);
	unlink(path);

	/* No path: no trace, and sessions on it are silent no-ops. */
	assert_int_equal(fm_trace_open(NULL, &t, &err), 0);
	assert_null(t);
	s = fm_trace_session_new(t, FM_TRACE_SMTP, "x");
	fm_trace_session_data(s, FM_TRACE_SEND, "AUTH PLAIN x\r\n", 14);
	fm_trace_session_free(&s);
}

static void
test_trace_open_error(void **state)
{
	struct fm_trace *t = NULL;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_trace_open("/nonexistent/dir/trace", &t, &err), -1);
	assert_int_equal(err.cls, FM_ERR_LOCAL);
	assert_non_null(strstr(err.user, "/nonexistent/dir/trace"));
	assert_null(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_control_characters_cannot_forge_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_secret_never_reaches_sink,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scrub, setup, teardown),
	    cmocka_unit_test(test_redact_imap),
	    cmocka_unit_test(test_redact_pop3),
	    cmocka_unit_test(test_redact_smtp),
	    cmocka_unit_test_setup_teardown(test_trace_file_never_holds_secrets,
	                                    setup, teardown),
	    cmocka_unit_test(test_trace_open_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

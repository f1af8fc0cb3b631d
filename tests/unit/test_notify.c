/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Notifications: notify_cmd placeholders that mail cannot turn into shell
 * code (checked by running the commands), batching and rate limiting, the
 * terminal title; and the control socket's request and reply lines. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "account/account.h"

static void
expect_command(const char *tmpl, const char *want)
{
	char *got = fm_notify_command(tmpl);
	if (strcmp(got, want) != 0)
		fail_msg("template %s\ngot  %s\nwant %s", tmpl, got, want);
	free(got);
}

static void
test_command_quoting(void **state)
{
	(void)state;
	expect_command(
	    "notify-send %a %s",
	    "notify-send \"${FULMAR_ACCOUNT}\" \"${FULMAR_SUBJECT}\"");
	expect_command("x \"%F: %s\"",
	               "x \"${FULMAR_FROM}: ${FULMAR_SUBJECT}\"");
	expect_command("x '%s'", "x ''\"${FULMAR_SUBJECT}\"''");
	expect_command("x 'say \"%f\"'", "x 'say \"'\"${FULMAR_FOLDER}\"'\"'");
	expect_command("x \"it's %s\"", "x \"it's ${FULMAR_SUBJECT}\"");
	expect_command("100%% %n %x %", "100% \"${FULMAR_COUNT}\" %x %");
	expect_command("x \\%s \\\" \\'", "x \"${FULMAR_SUBJECT}\" \\\" \\'");
	expect_command("", "");
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return xstrdup("<missing>");
	char buf[4096];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return xstrdup(buf);
}

static void
run(const char *tmpl, const struct fm_notify_vars *v)
{
	pid_t pid;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_notify_spawn(tmpl, v, &pid, &err), 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* Whatever a sender puts in From and Subject reaches the command as text:
 * bare, inside double quotes and inside single quotes. */
static void
test_hostile_values_stay_text(void **state)
{
	(void)state;
	char dir[] = "/tmp/fm-notify.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *pwned = xasprintf("%s/PWNED", dir);
	char *out = xasprintf("%s/out", dir);
	char *subject =
	    xasprintf("$(touch %s) `touch %s`; touch %s \" ' *  two  spaces",
	              pwned, pwned, pwned);
	char *from = xasprintf("a'b\"c $HOME ${IFS} \\\" %s", "$((1+1))");
	struct fm_notify_vars v = {
	    .account = "acc'; touch PWNED #",
	    .folder = "Lists/\"x\"",
	    .from = from,
	    .subject = subject,
	    .count = 3,
	};
	setenv("FULMAR_SUBJECT", "from the parent", 1);
	const char *forms[] = {
	    "printf '[%%s]\\n' %s %F %a %f %n > '%s'",
	    "printf '[%%s]\\n' \"%s\" \"%F\" \"%a\" \"%f\" \"%n\" > '%s'",
	    "printf '[%%s]\\n' '%s' '%F' '%a' '%f' '%n' > '%s'",
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(forms); i++) {
		/* The output file is the one '%s' left for the test. */
		char *at = strstr(forms[i], "> '%s'");
		char *tmpl = xasprintf("%.*s> '%s'", (int)(at - forms[i]),
		                       forms[i], out);
		unlink(out);
		run(tmpl, &v);
		char *got = slurp(out);
		char *want = xasprintf("[%s]\n[%s]\n[%s]\n[%s]\n[3]\n", subject,
		                       from, v.account, v.folder);
		if (strcmp(got, want) != 0)
			fail_msg("form %zu: %s\ngot:\n%s\nwant:\n%s", i, tmpl,
			         got, want);
		free(got);
		free(want);
		free(tmpl);
		struct stat st;
		assert_int_not_equal(stat(pwned, &st), 0);
		assert_int_not_equal(stat("PWNED", &st), 0);
	}
	unsetenv("FULMAR_SUBJECT");
	unlink(out);
	rmdir(dir);
	free(pwned);
	free(out);
	free(subject);
	free(from);
}

static void
test_env(void **state)
{
	(void)state;
	struct fm_notify_vars v = {"work", "INBOX", "Ann", "Hi", 12};
	char **env = fm_notify_env(&v);
	assert_string_equal(env[0], "FULMAR_ACCOUNT=work");
	assert_string_equal(env[1], "FULMAR_FOLDER=INBOX");
	assert_string_equal(env[2], "FULMAR_FROM=Ann");
	assert_string_equal(env[3], "FULMAR_SUBJECT=Hi");
	assert_string_equal(env[4], "FULMAR_COUNT=12");
	assert_null(env[5]);
	fm_notify_env_free(env);
}

static void
test_spawn_failure_of_command_is_its_status(void **state)
{
	(void)state;
	struct fm_notify_vars v = {"a", "b", "c", "d", 1};
	pid_t pid;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_notify_spawn("exit 7", &v, &pid, &err), 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(WEXITSTATUS(st), 7);
}

/* ------------------------------------------------------------------------
 * Batching.
 */

static void
test_batch_first_message_and_count(void **state)
{
	(void)state;
	struct fm_notifier *n = fm_notifier_new(10000);
	struct fm_notify_batch b;
	uint64_t wait;
	assert_false(fm_notifier_take(n, 1000, &b, &wait));
	assert_true(wait == FM_SCHED_NEVER);
	/* One pass found 5 messages: one notification. */
	fm_notifier_add(n, "work", "INBOX", "Ann", "First", 5);
	assert_true(fm_notifier_take(n, 1000, &b, &wait));
	assert_string_equal(b.account, "work");
	assert_string_equal(b.folder, "INBOX");
	assert_string_equal(b.from, "Ann");
	assert_string_equal(b.subject, "First");
	assert_int_equal(b.count, 5);
	fm_notify_batch_free(&b);
	assert_false(fm_notifier_take(n, 1000, &b, &wait));
	/* Two passes within the interval: held, then told together with
	 * the first of them. */
	fm_notifier_add(n, "work", "Lists", "Bob", "Second", 1);
	fm_notifier_add(n, "work", "INBOX", "Cy", "Third", 2);
	assert_false(fm_notifier_take(n, 4000, &b, &wait));
	assert_int_equal(wait, 7000);
	assert_false(fm_notifier_take(n, 10999, &b, &wait));
	assert_int_equal(wait, 1);
	assert_true(fm_notifier_take(n, 11000, &b, &wait));
	assert_string_equal(b.folder, "Lists");
	assert_string_equal(b.from, "Bob");
	assert_string_equal(b.subject, "Second");
	assert_int_equal(b.count, 3);
	fm_notify_batch_free(&b);
	/* Nothing new, nothing told; count 0 is nothing. */
	fm_notifier_add(n, "work", "INBOX", "x", "y", 0);
	assert_false(fm_notifier_take(n, 50000, &b, &wait));
	fm_notifier_free(&n);
	assert_null(n);
}

static void
test_batch_accounts_apart(void **state)
{
	(void)state;
	struct fm_notifier *n = fm_notifier_new(60000);
	struct fm_notify_batch b;
	uint64_t wait;
	fm_notifier_add(n, "a", "INBOX", "1", "s1", 1);
	assert_true(fm_notifier_take(n, 0, &b, &wait));
	fm_notify_batch_free(&b);
	/* b is not held back by a's interval. */
	fm_notifier_add(n, "b", "INBOX", "2", "s2", 1);
	fm_notifier_add(n, "a", "INBOX", "3", "s3", 1);
	assert_true(fm_notifier_take(n, 5, &b, &wait));
	assert_string_equal(b.account, "b");
	fm_notify_batch_free(&b);
	assert_false(fm_notifier_take(n, 5, &b, &wait));
	assert_int_equal(wait, 59995);
	/* Pending batches are freed with the notifier. */
	fm_notifier_free(&n);
}

/* ------------------------------------------------------------------------
 * The terminal title.
 */

static void
test_title(void **state)
{
	(void)state;
	char buf[128];
	struct fm_title_count none[] = {{"work", 0}, {"home", 0}};
	fm_title_format(none, 2, buf, sizeof(buf));
	assert_string_equal(buf, "fulmar");
	fm_title_format(NULL, 0, buf, sizeof(buf));
	assert_string_equal(buf, "fulmar");
	struct fm_title_count c[] = {{"work", 2}, {"old", 0}, {"home", 1}};
	fm_title_format(c, 3, buf, sizeof(buf));
	assert_string_equal(buf, "fulmar: 3 unread (work 2, home 1)");
	/* Cut at an account, and the parenthesis still closes. */
	char small[27];
	fm_title_format(c, 3, small, sizeof(small));
	assert_string_equal(small, "fulmar: 3 unread (work 2)");
	char tiny[8];
	fm_title_format(c, 3, tiny, sizeof(tiny));
	assert_true(strlen(tiny) < sizeof(tiny));
}

static void
test_title_escape(void **state)
{
	(void)state;
	char buf[64];
	fm_title_escape("fulmar: 3 unread", buf, sizeof(buf));
	assert_string_equal(buf, "\033]2;fulmar: 3 unread\a");
	/* An account name cannot end the sequence and start another. */
	fm_title_escape("a\a\033]2;pwn\x7f\xc2\x9b"
	                "b",
	                buf, sizeof(buf));
	assert_string_equal(buf, "\033]2;a]2;pwnb\a");
	/* Cut before an incomplete UTF-8 sequence, never inside one. */
	char small[10];
	fm_title_escape("ab\xc3\xa9\xc3\xa9", small, sizeof(small));
	assert_string_equal(small, "\033]2;ab\xc3\xa9\a");
	char smaller[9];
	fm_title_escape("ab\xc3\xa9\xc3\xa9", smaller, sizeof(smaller));
	assert_string_equal(smaller, "\033]2;ab\a");
}

/* ------------------------------------------------------------------------
 * The control socket's lines.
 */

static void
test_control_request(void **state)
{
	(void)state;
	char *names[] = {"work", "my home", "-"};
	char *line = fm_control_format_request(names, 3);
	assert_string_equal(line, "sync work my%20home %2D\n");
	line[strlen(line) - 1] = '\0';
	char **got;
	size_t n;
	assert_int_equal(fm_control_parse_request(line, &got, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(got[0], "work");
	assert_string_equal(got[1], "my home");
	assert_string_equal(got[2], "-");
	free(got);
	free(line);
	line = fm_control_format_request(NULL, 0);
	assert_string_equal(line, "sync\n");
	line[4] = '\0';
	assert_int_equal(fm_control_parse_request(line, &got, &n), 0);
	assert_int_equal(n, 0);
	free(line);
	char bad1[] = "rm -rf", bad2[] = "sync  x", bad3[] = "sync a%0";
	assert_int_equal(fm_control_parse_request(bad1, &got, &n), -1);
	assert_int_equal(fm_control_parse_request(bad2, &got, &n), -1);
	assert_int_equal(fm_control_parse_request(bad3, &got, &n), -1);
}

static void
test_control_reply(void **state)
{
	(void)state;
	struct fm_pass_result res = {.downloaded = 3,
	                             .bytes = 123456,
	                             .completed = 1,
	                             .deleted = 2,
	                             .on_server = 9,
	                             .ms = 321};
	char *line = fm_control_format_reply("my home", &res, NULL);
	assert_string_equal(line, "pass my%20home ok 3 123456 1 2 9 321\n");
	line[strlen(line) - 1] = '\0';
	struct fm_control_reply r;
	assert_int_equal(fm_control_parse_reply(line, &r), 0);
	assert_true(r.ok);
	assert_string_equal(r.account, "my home");
	assert_int_equal(r.result.downloaded, 3);
	assert_int_equal(r.result.bytes, 123456);
	assert_int_equal(r.result.completed, 1);
	assert_int_equal(r.result.deleted, 2);
	assert_int_equal(r.result.on_server, 9);
	assert_int_equal(r.result.ms, 321);
	fm_control_reply_free(&r);
	free(line);

	struct fm_error err;
	fm_error_clear(&err);
	fm_error_set(&err, FM_ERR_TLS, "pin it:\ntls_fingerprint = 100%% ab");
	line = fm_control_format_reply("w", NULL, &err);
	assert_string_equal(line, "pass w error tls pin%20it:%0Atls_"
	                          "fingerprint%20=%20100%25%20ab\n");
	line[strlen(line) - 1] = '\0';
	assert_int_equal(fm_control_parse_reply(line, &r), 0);
	assert_false(r.ok);
	assert_int_equal(r.err.cls, FM_ERR_TLS);
	assert_string_equal(r.err.user, "pin it:\ntls_fingerprint = 100% ab");
	fm_control_reply_free(&r);
	free(line);

	assert_int_equal(fm_control_parse_reply("end", &r), 1);
	assert_int_equal(fm_control_parse_reply("pass w ok 1 2", &r), -1);
	assert_int_equal(fm_control_parse_reply("pass w ok 1 2 3 4 5 x", &r),
	                 -1);
	assert_int_equal(fm_control_parse_reply("hello", &r), -1);
	assert_int_equal(fm_control_parse_reply("pass w error", &r), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_command_quoting),
	    cmocka_unit_test(test_hostile_values_stay_text),
	    cmocka_unit_test(test_env),
	    cmocka_unit_test(test_spawn_failure_of_command_is_its_status),
	    cmocka_unit_test(test_batch_first_message_and_count),
	    cmocka_unit_test(test_batch_accounts_apart),
	    cmocka_unit_test(test_title),
	    cmocka_unit_test(test_title_escape),
	    cmocka_unit_test(test_control_request),
	    cmocka_unit_test(test_control_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"

static void
test_buf_bounded(void **state)
{
	struct fm_buf b;
	fm_buf_init(&b, 10);
	assert_int_equal(fm_buf_append_str(&b, "hello"), 0);
	assert_int_equal(fm_buf_append_str(&b, "world"), 0);
	assert_int_equal(b.len, 10);
	/* One byte past the maximum fails and changes nothing. */
	assert_int_equal(fm_buf_append_char(&b, '!'), -1);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "helloworld");
	assert_int_equal(fm_buf_printf(&b, "%d", 1), -1);
	fm_buf_consume(&b, 5);
	assert_string_equal(b.data, "world");
	assert_int_equal(fm_buf_printf(&b, "%03d!", 7), 0);
	assert_string_equal(b.data, "world007!");
	fm_buf_consume(&b, 100);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	fm_buf_free(&b);
}

static void
test_buf_grows_and_steals(void **state)
{
	struct fm_buf b;
	fm_buf_init(&b, 1 << 20);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(fm_buf_append(&b, "abcdefgh", 8), 0);
	assert_int_equal(b.len, 80000);
	assert_int_equal(b.data[b.len], '\0');
	char *s = fm_buf_steal(&b);
	assert_int_equal(strlen(s), 80000);
	assert_null(b.data);
	free(s);
	/* Overflowing sizes are refused, not wrapped. */
	fm_buf_init(&b, 16);
	assert_int_equal(fm_buf_append(&b, "x", SIZE_MAX), -1);
	fm_buf_free(&b);
}

static void
test_strlcpy(void **state)
{
	char small[4];
	assert_int_equal(fm_strlcpy(small, "abcdef", sizeof(small)), 6);
	assert_string_equal(small, "abc");
	assert_int_equal(fm_strlcpy(small, "ab", sizeof(small)), 2);
	assert_string_equal(small, "ab");
}

static void
test_parse_long(void **state)
{
	long v = -1;
	assert_int_equal(fm_parse_long("993", 1, 65535, &v), 0);
	assert_int_equal(v, 993);
	assert_int_equal(fm_parse_long("0", 1, 65535, &v), -1);
	assert_int_equal(fm_parse_long("65536", 1, 65535, &v), -1);
	assert_int_equal(fm_parse_long(" 5", 0, 10, &v), -1);
	assert_int_equal(fm_parse_long("+5", 0, 10, &v), -1);
	assert_int_equal(fm_parse_long("5x", 0, 10, &v), -1);
	assert_int_equal(fm_parse_long("", 0, 10, &v), -1);
	assert_int_equal(fm_parse_long("-3", 0, 10, &v), -1);
	assert_int_equal(fm_parse_long("-3", -5, 10, &v), 0);
	assert_int_equal(v, -3);
	assert_int_equal(fm_parse_long("99999999999999999999999", 0, 10, &v),
	                 -1);
}

static void
test_str_helpers(void **state)
{
	char s[] = "  \t padded value \r\n";
	assert_string_equal(fm_str_trim(s), "padded value");
	assert_true(fm_str_ieq("STARTTLS", "starttls"));
	assert_false(fm_str_ieq("starttls", "starttl"));
	assert_true(fm_str_has_prefix("sha256:ab", "sha256:"));
	assert_int_equal(fm_str_distance("pasword_cmd", "password_cmd"), 1);
	assert_int_equal(fm_str_distance("host", "host"), 0);
	assert_int_equal(fm_str_distance("", "abc"), 3);
	assert_int_equal(fm_str_distance("smtp_prot", "smtp_port"), 2);
}

static void
test_error(void **state)
{
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(err.cls, FM_ERR_NONE);
	assert_int_equal(fm_error_set(&err, FM_ERR_CREDENTIALS,
	                              "wrong password for %s", "alice"),
	                 -1);
	assert_int_equal(err.cls, FM_ERR_CREDENTIALS);
	assert_string_equal(err.user, "wrong password for alice");
	assert_int_equal(fm_error_detail(&err, "NO [AUTHENTICATIONFAILED]"),
	                 -1);
	assert_string_equal(err.detail, "NO [AUTHENTICATIONFAILED]");
	assert_int_equal(fm_error_exit_status(FM_ERR_CONFIG), 78);
	assert_int_equal(fm_error_exit_status(FM_ERR_TEMPORARY), 75);
	assert_int_equal(fm_error_exit_status(FM_ERR_CREDENTIALS), 77);
	assert_int_equal(fm_error_exit_status(FM_ERR_TLS), 79);
	assert_int_equal(fm_error_exit_status(FM_ERR_NONE), 0);
	assert_string_equal(fm_error_class_name(FM_ERR_TLS), "tls");
	/* Every class has a name and a non-zero status. */
	for (int c = FM_ERR_TEMPORARY; c <= FM_ERR_USAGE; c++) {
		assert_string_not_equal(fm_error_class_name(c), "unknown");
		assert_true(fm_error_exit_status(c) > 0);
	}
	fm_error_errno(&err, FM_ERR_LOCAL, ENOENT, "cannot open %s", "x");
	assert_string_equal(err.user,
	                    "cannot open x: No such file or directory");
	/* NULL is accepted so callers may ignore errors explicitly. */
	assert_int_equal(fm_error_set(NULL, FM_ERR_LOCAL, "x"), -1);
	/* Long sentences are cut, never overflow. */
	char big[2000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	fm_error_set(&err, FM_ERR_LOCAL, "%s", big);
	assert_int_equal(strlen(err.user), FM_ERROR_USER_MAX - 1);
}

static void
test_paths(void **state)
{
	char *p = fm_path_join("/a/b/", "/c");
	assert_string_equal(p, "/a/b/c");
	free(p);
	p = fm_path_join("/", "c");
	assert_string_equal(p, "/c");
	free(p);

	setenv("HOME", "/home/tester", 1);
	setenv("XDG_CONFIG_HOME", "/xdg/config", 1);
	p = fm_path_config_dir();
	assert_string_equal(p, "/xdg/config/fulmar");
	free(p);
	/* A relative XDG value is invalid per the spec and ignored. */
	setenv("XDG_CONFIG_HOME", "relative", 1);
	p = fm_path_config_dir();
	assert_string_equal(p, "/home/tester/.config/fulmar");
	free(p);
	unsetenv("XDG_DATA_HOME");
	p = fm_path_data_dir();
	assert_string_equal(p, "/home/tester/.local/share/fulmar");
	free(p);
	setenv("XDG_STATE_HOME", "/s", 1);
	p = fm_path_state_dir();
	assert_string_equal(p, "/s/fulmar");
	free(p);
}

static void
test_mkdirs(void **state)
{
	char tmpl[] = "/tmp/fm-test-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	char *deep = xasprintf("%s/a/b/c", tmpl);
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_path_mkdirs(deep, 0700, &err), 0);
	struct stat st;
	assert_int_equal(stat(deep, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* Again: already there is fine. */
	assert_int_equal(fm_path_mkdirs(deep, 0700, &err), 0);
	/* A file in the way is an error with the path in the sentence. */
	char *file = xasprintf("%s/f", tmpl);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	char *under = xasprintf("%s/sub", file);
	assert_int_equal(fm_path_mkdirs(under, 0700, &err), -1);
	assert_int_equal(err.cls, FM_ERR_LOCAL);
	assert_non_null(strstr(err.user, file));
	unlink(file);
	char *cmd = xasprintf("rm -rf '%s'", tmpl);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(under);
	free(file);
	free(deep);
}

static void
test_xalloc(void **state)
{
	char *s = xasprintf("%s-%d", "x", 42);
	assert_string_equal(s, "x-42");
	free(s);
	s = xstrndup("abcdef", 3);
	assert_string_equal(s, "abc");
	fm_free_secret(&s);
	assert_null(s);
	int *a = xreallocarray(NULL, 100, sizeof(int));
	a[99] = 1;
	free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buf_bounded),
	    cmocka_unit_test(test_buf_grows_and_steals),
	    cmocka_unit_test(test_strlcpy),
	    cmocka_unit_test(test_parse_long),
	    cmocka_unit_test(test_str_helpers),
	    cmocka_unit_test(test_error),
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_mkdirs),
	    cmocka_unit_test(test_xalloc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Unit tests for conf/: every key (valid and each kind of invalid value),
 * every default, every diagnostic with its exact line, continuation lines,
 * fm_config_write() round trips and fm_conf_run_secret_cmd().
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/base.h"
#include "conf/conf-int.h"
#include "conf/conf.h"
#include "log/log.h"

/* The smallest valid account; it fills lines 1-3, so a key added after it
 * is on line 4. */
#define ACCT "[account a]\nemail = me@example.com\nhost = imap.example.com\n"
#define POP3 ACCT "protocol = pop3\n" /* the next line is 5 */

struct result {
	int rc;
	char *path;
	struct fm_config *cfg;
	struct fm_conf_diags diags;
	struct fm_error err;
};

static char *
temp_file(const void *data, size_t len, mode_t mode)
{
	const char *dir = getenv("TMPDIR");
	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	char *path = xasprintf("%s/test_conf.XXXXXX", dir);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static void
load_bytes(struct result *r, const void *data, size_t len, mode_t mode)
{
	memset(r, 0, sizeof(*r));
	r->path = temp_file(data, len, mode);
	r->rc = fm_config_load(r->path, &r->cfg, &r->diags, &r->err);
	unlink(r->path);
}

static void
load(struct result *r, const char *text)
{
	load_bytes(r, text, strlen(text), 0600);
}

static void
result_free(struct result *r)
{
	fm_config_free(&r->cfg);
	fm_conf_diags_free(&r->diags);
	free(r->path);
}

static void
dump(const struct result *r)
{
	for (size_t i = 0; i < r->diags.n; i++) {
		const struct fm_conf_diag *d = &r->diags.items[i];
		print_message("#   %u: %s: %s: %s\n", d->line,
		              d->severity == FM_CONF_ERROR ? "error"
		                                           : "warning",
		              d->key, d->message);
	}
}

static void
expect_diag_at(const struct result *r, enum fm_conf_severity sev, unsigned line,
               const char *key, const char *text, const char *file,
               int src_line)
{
	for (size_t i = 0; i < r->diags.n; i++) {
		const struct fm_conf_diag *d = &r->diags.items[i];
		if (d->severity == sev && d->line == line &&
		    strcmp(d->key, key) == 0 && strstr(d->message, text))
			return;
	}
	dump(r);
	fail_msg("%s:%d: no %s on line %u, key '%s': %s", file, src_line,
	         sev == FM_CONF_ERROR ? "error" : "warning", line, key, text);
}

#define expect_error(r, line, key, text)                                       \
	expect_diag_at(r, FM_CONF_ERROR, line, key, text, __FILE__, __LINE__)
#define expect_warning(r, line, key, text)                                     \
	expect_diag_at(r, FM_CONF_WARNING, line, key, text, __FILE__, __LINE__)

static void
expect_counts_at(const struct result *r, size_t n, size_t n_errors,
                 const char *file, int line)
{
	if (r->diags.n == n && r->diags.n_errors == n_errors &&
	    (r->rc == 0) == (n_errors == 0))
		return;
	dump(r);
	fail_msg("%s:%d: expected %zu diagnostics (%zu errors), got %zu (%zu), "
	         "rc %d",
	         file, line, n, n_errors, r->diags.n, r->diags.n_errors, r->rc);
}

#define expect_counts(r, n, e) expect_counts_at(r, n, e, __FILE__, __LINE__)

static const struct fm_account *
account_at(const struct result *r, size_t i)
{
	assert_non_null(r->cfg);
	assert_true(i < r->cfg->n_accounts);
	return &r->cfg->accounts[i];
}

static unsigned
key_line(const struct fm_account *a, const char *key)
{
	return a->key_lines[conf_key_id(CONF_SECT_ACCOUNT, key)];
}

/* ------------------------------------------------------------------------
 * Defaults.
 */

static void
test_defaults(void **state)
{
	struct result r;
	load(&r, ACCT);
	expect_counts(&r, 0, 0);
	const struct fm_general *g = &r.cfg->general;
	assert_null(g->log_protocol);
	assert_null(g->notify_cmd);
	assert_false(g->bell);
	assert_false(g->title);
	assert_int_equal(g->connect_timeout, 30);
	assert_int_equal(g->timeout, 60);
	assert_int_equal(g->max_line_kib, 4096);
	assert_int_equal(g->max_literal_mib, 512);
	assert_int_equal(r.cfg->n_accounts, 1);
	const struct fm_account *a = account_at(&r, 0);
	assert_string_equal(a->name, "a");
	assert_int_equal(a->line, 1);
	assert_string_equal(a->email, "me@example.com");
	assert_null(a->real_name);
	assert_int_equal(a->protocol, FM_PROTO_IMAP);
	assert_string_equal(a->host, "imap.example.com");
	assert_int_equal(a->port, 993);
	assert_int_equal(a->tls, FM_TLS_IMPLICIT);
	assert_null(a->tls_ca_file);
	assert_false(a->has_fingerprint);
	assert_false(a->allow_plaintext_login);
	assert_string_equal(a->user, "me@example.com");
	assert_null(a->password);
	assert_null(a->password_cmd);
	assert_int_equal(a->auth, FM_AUTH_AUTO);
	assert_null(a->oauth_token_cmd);
	assert_true(a->folders_subscribed);
	assert_int_equal(a->n_folders, 0);
	assert_null(a->folders[0]);
	assert_true(a->schedule.startup);
	assert_int_equal(a->schedule.every_seconds, 600);
	assert_true(a->idle);
	assert_true(a->imap_notify);
	assert_int_equal(a->max_connections, 5);
	assert_int_equal(a->download, FM_DOWNLOAD_FULL);
	assert_true(a->keep_on_server);
	assert_int_equal(a->delete_after_days, 0);
	assert_false(a->delete_when_deleted_locally);
	assert_int_equal(a->pop3_no_uidl, FM_POP3_NO_UIDL_ERROR);
	assert_null(a->smtp_host);
	assert_int_equal(a->smtp_port, 587);
	assert_int_equal(a->smtp_tls, FM_TLS_STARTTLS);
	assert_string_equal(a->smtp_user, "me@example.com");
	assert_int_equal(a->save_sent, FM_SAVE_SENT_SERVER);
	assert_null(a->notify_cmd);
	assert_false(a->is_default);
	for (size_t i = 0; i < conf_n_keys; i++) {
		unsigned want = 0;
		if (strcmp(conf_keys[i].name, "email") == 0 &&
		    conf_keys[i].sect == CONF_SECT_ACCOUNT)
			want = 2;
		if (strcmp(conf_keys[i].name, "host") == 0)
			want = 3;
		assert_int_equal(a->key_lines[i], want);
		assert_int_equal(g->key_lines[i], 0);
	}
	assert_ptr_equal(fm_config_default_account(r.cfg), a);
	assert_ptr_equal(fm_config_find_account(r.cfg, "a"), a);
	assert_null(fm_config_find_account(r.cfg, "b"));
	result_free(&r);
}

static void
test_defaults_pop3(void **state)
{
	struct result r;
	load(&r, POP3);
	expect_counts(&r, 0, 0);
	const struct fm_account *a = account_at(&r, 0);
	assert_int_equal(a->protocol, FM_PROTO_POP3);
	assert_int_equal(a->port, 995);
	assert_int_equal(a->tls, FM_TLS_IMPLICIT);
	assert_int_equal(a->save_sent, FM_SAVE_SENT_LOCAL);
	assert_false(a->idle);
	assert_true(a->keep_on_server);
	result_free(&r);
}

/* Defaults that follow other keys: port from tls and the other way. */
static void
test_defaults_ports(void **state)
{
	static const struct {
		const char *keys;
		unsigned port;
		enum fm_tls_mode tls;
		unsigned smtp_port;
		enum fm_tls_mode smtp_tls;
	} cases[] = {
	    {"", 993, FM_TLS_IMPLICIT, 587, FM_TLS_STARTTLS},
	    {"port = 143\n", 143, FM_TLS_STARTTLS, 587, FM_TLS_STARTTLS},
	    {"port = 587\n", 587, FM_TLS_STARTTLS, 587, FM_TLS_STARTTLS},
	    {"port = 1993\n", 1993, FM_TLS_IMPLICIT, 587, FM_TLS_STARTTLS},
	    {"tls = starttls\n", 143, FM_TLS_STARTTLS, 587, FM_TLS_STARTTLS},
	    {"tls = none\n", 143, FM_TLS_NONE, 587, FM_TLS_STARTTLS},
	    {"protocol = pop3\ntls = starttls\n", 110, FM_TLS_STARTTLS, 587,
	     FM_TLS_STARTTLS},
	    {"protocol = pop3\nport = 110\n", 110, FM_TLS_STARTTLS, 587,
	     FM_TLS_STARTTLS},
	    {"protocol = pop3\ntls = none\n", 110, FM_TLS_NONE, 587,
	     FM_TLS_STARTTLS},
	    {"smtp_host = smtp.example.com\nsmtp_port = 465\n", 993,
	     FM_TLS_IMPLICIT, 465, FM_TLS_IMPLICIT},
	    {"smtp_host = smtp.example.com\nsmtp_tls = implicit\n", 993,
	     FM_TLS_IMPLICIT, 465, FM_TLS_IMPLICIT},
	    {"smtp_host = smtp.example.com\nsmtp_port = 25\n", 993,
	     FM_TLS_IMPLICIT, 25, FM_TLS_STARTTLS},
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(cases); i++) {
		char *text = xasprintf(ACCT "%s", cases[i].keys);
		struct result r;
		load(&r, text);
		expect_counts(&r, 0, 0);
		const struct fm_account *a = account_at(&r, 0);
		assert_int_equal(a->port, cases[i].port);
		assert_int_equal(a->tls, cases[i].tls);
		assert_int_equal(a->smtp_port, cases[i].smtp_port);
		assert_int_equal(a->smtp_tls, cases[i].smtp_tls);
		result_free(&r);
		free(text);
	}
}

/* ------------------------------------------------------------------------
 * Valid values for every key.
 */

static const uint8_t fp_bytes[32] = {
    0x3a, 0xf1, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
    0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13,
    0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0xfe, 0xff};
#define FP_COLONS                                                              \
	"3A:F1:00:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10:11:12:13:"   \
	"14:15:16:17:18:19:1a:1b:fe:ff"
#define FP_PLAIN                                                               \
	"3af100010203040506070809"                                             \
	"0a0b0c0d0e0f101112131415161718191a1bfeff"

static char *ca_file; /* a readable file for tls_ca_file */

static int
setup_ca(void **state)
{
	ca_file = temp_file("pem\n", 4, 0644);
	return 0;
}

static int
teardown_ca(void **state)
{
	unlink(ca_file);
	free(ca_file);
	fm_log_clear_secrets();
	return 0;
}

/* Two configs that together set every key of the table: an IMAP account
 * and a POP3 one (each kind has keys the other warns about). */
static char *
full_imap_text(void)
{
	return xasprintf("[general]\n"
	                 "log_protocol = /tmp/trace.log\n"
	                 "notify_cmd = notify-send mail\n"
	                 "bell = yes\n"
	                 "title = on\n"
	                 "connect_timeout = 5\n"
	                 "timeout = 120\n"
	                 "max_line_kib = 64\n"
	                 "max_literal_mib = 4095\n"
	                 "[account work]\n"
	                 "email = me@work.example\n"
	                 "name = Me Myself\n"
	                 "protocol = IMAP\n"
	                 "host = mail.work.example\n"
	                 "port = 1143\n"
	                 "tls = starttls\n"
	                 "tls_ca_file = %s\n"
	                 "tls_fingerprint = sha256:" FP_COLONS "\n"
	                 "allow_plaintext_login = no\n"
	                 "user = me\n"
	                 "password_cmd = pass show work\n"
	                 "auth = xoauth2\n"
	                 "oauth_token_cmd = oauth2 work\n"
	                 "folders = INBOX, Lists/* !Spam \"Sent Items\"\n"
	                 "schedule = startup, every 2h\n"
	                 "idle = no\n"
	                 "imap_notify = no\n"
	                 "max_connections = 20\n"
	                 "download = max 10M\n"
	                 "smtp_host = smtp.work.example\n"
	                 "smtp_port = 2525\n"
	                 "smtp_tls = starttls\n"
	                 "smtp_user = me-smtp\n"
	                 "save_sent = local\n"
	                 "notify_cmd =\n"
	                 "default = yes\n",
	                 ca_file);
}

static const char full_pop3_text[] = "[account home]\n"
                                     "email = me@home.example\n"
                                     "protocol = pop3\n"
                                     "host = pop.home.example\n"
                                     "password = s3cret-pw\n"
                                     "auth = plain\n"
                                     "keep_on_server = yes\n"
                                     "delete_after_days = 30\n"
                                     "delete_when_deleted_locally = true\n"
                                     "pop3_no_uidl = Message-ID\n"
                                     "save_sent = no\n"
                                     "download = headers\n"
                                     "schedule = manual\n";

static void
test_full_imap(void **state)
{
	char *text = full_imap_text();
	struct result r;
	load(&r, text);
	expect_counts(&r, 0, 0);
	const struct fm_general *g = &r.cfg->general;
	assert_string_equal(g->log_protocol, "/tmp/trace.log");
	assert_string_equal(g->notify_cmd, "notify-send mail");
	assert_true(g->bell);
	assert_true(g->title);
	assert_int_equal(g->connect_timeout, 5);
	assert_int_equal(g->timeout, 120);
	assert_int_equal(g->max_line_kib, 64);
	assert_int_equal(g->max_literal_mib, 4095);
	const struct fm_account *a = account_at(&r, 0);
	assert_string_equal(a->name, "work");
	assert_int_equal(a->line, 10);
	assert_string_equal(a->email, "me@work.example");
	assert_string_equal(a->real_name, "Me Myself");
	assert_int_equal(a->protocol, FM_PROTO_IMAP);
	assert_string_equal(a->host, "mail.work.example");
	assert_int_equal(a->port, 1143);
	assert_int_equal(a->tls, FM_TLS_STARTTLS);
	assert_string_equal(a->tls_ca_file, ca_file);
	assert_true(a->has_fingerprint);
	assert_memory_equal(a->tls_fingerprint, fp_bytes, 32);
	assert_false(a->allow_plaintext_login);
	assert_string_equal(a->user, "me");
	assert_string_equal(a->password_cmd, "pass show work");
	assert_int_equal(a->auth, FM_AUTH_XOAUTH2);
	assert_string_equal(a->oauth_token_cmd, "oauth2 work");
	assert_false(a->folders_subscribed);
	assert_int_equal(a->n_folders, 4);
	assert_string_equal(a->folders[0], "INBOX");
	assert_string_equal(a->folders[1], "Lists/*");
	assert_string_equal(a->folders[2], "!Spam");
	assert_string_equal(a->folders[3], "Sent Items");
	assert_null(a->folders[4]);
	assert_true(a->schedule.startup);
	assert_int_equal(a->schedule.every_seconds, 7200);
	assert_false(a->idle);
	assert_false(a->imap_notify);
	assert_int_equal(a->max_connections, 20);
	assert_int_equal(key_line(a, "max_connections"), 28);
	assert_int_equal(a->download, FM_DOWNLOAD_MAX);
	assert_int_equal(a->download_max, 10 * 1024 * 1024);
	assert_string_equal(a->smtp_host, "smtp.work.example");
	assert_int_equal(a->smtp_port, 2525);
	assert_int_equal(a->smtp_tls, FM_TLS_STARTTLS);
	assert_string_equal(a->smtp_user, "me-smtp");
	assert_int_equal(a->save_sent, FM_SAVE_SENT_LOCAL);
	assert_string_equal(a->notify_cmd, "");
	assert_true(a->is_default);
	assert_int_equal(key_line(a, "default"), 36);
	result_free(&r);
	free(text);
}

static void
test_full_pop3(void **state)
{
	struct result r;
	load(&r, full_pop3_text);
	expect_counts(&r, 0, 0);
	const struct fm_account *a = account_at(&r, 0);
	assert_string_equal(a->password, "s3cret-pw");
	assert_int_equal(a->auth, FM_AUTH_PLAIN);
	assert_true(a->keep_on_server);
	assert_int_equal(a->delete_after_days, 30);
	assert_true(a->delete_when_deleted_locally);
	assert_int_equal(a->pop3_no_uidl, FM_POP3_NO_UIDL_MESSAGE_ID);
	assert_int_equal(a->save_sent, FM_SAVE_SENT_NO);
	assert_int_equal(a->download, FM_DOWNLOAD_HEADERS);
	assert_false(a->schedule.startup);
	assert_int_equal(a->schedule.every_seconds, 0);
	/* The password is now masked in every log line. */
	char *s = fm_log_scrub("login with s3cret-pw failed");
	assert_string_equal(s, "login with " FM_REDACTED " failed");
	free(s);
	result_free(&r);
}

/* A key added to the table without a test fails here. */
static void
test_every_key_covered(void **state)
{
	char *text = full_imap_text();
	struct result r1, r2;
	load(&r1, text);
	load(&r2, full_pop3_text);
	expect_counts(&r1, 0, 0);
	expect_counts(&r2, 0, 0);
	for (size_t i = 0; i < conf_n_keys; i++) {
		bool set = r1.cfg->general.key_lines[i] != 0 ||
		           account_at(&r1, 0)->key_lines[i] != 0 ||
		           account_at(&r2, 0)->key_lines[i] != 0;
		if (!set)
			fail_msg("key %s is set by no test config",
			         conf_keys[i].name);
	}
	result_free(&r1);
	result_free(&r2);
	free(text);
}

static void
test_bool_spellings(void **state)
{
	static const struct {
		const char *text;
		bool value;
	} cases[] = {
	    {"yes", true}, {"YES", true}, {"true", true},   {"On", true},
	    {"1", true},   {"no", false}, {"False", false}, {"off", false},
	    {"0", false},  {"nO", false},
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(cases); i++) {
		char *text =
		    xasprintf("[general]\nbell = %s\n" ACCT, cases[i].text);
		struct result r;
		load(&r, text);
		expect_counts(&r, 0, 0);
		assert_int_equal(r.cfg->general.bell, cases[i].value);
		assert_int_equal(
		    r.cfg->general
		        .key_lines[conf_key_id(CONF_SECT_GENERAL, "bell")],
		    2);
		result_free(&r);
		free(text);
	}
}

static void
test_value_forms(void **state)
{
	static const struct {
		const char *line;
		const char *field; /* what to check */
		uint64_t value;
	} cases[] = {
	    {"tls_fingerprint = sha256:" FP_PLAIN, "fp", 0},
	    {"tls_fingerprint = SHA256:" FP_COLONS, "fp", 0},
	    {"tls_fingerprint = sha256:3af1:00010203:0405060708090a0b0c0d"
	     "0e0f101112131415161718191a1bfeff",
	     "fp", 0},
	    {"schedule = every 90 s", "every", 90},
	    {"schedule = EVERY 5M", "every", 300},
	    {"schedule = startup", "every", 0},
	    {"schedule = every 1h, startup", "every", 3600},
	    {"download = max 512k", "max", 512 * 1024},
	    {"download = max 1G", "max", 1024 * 1024 * 1024},
	    {"download = max 100", "max", 100},
	    {"download = MAX 3 M", "max", 3 * 1024 * 1024},
	    {"download = Full", "full", 0},
	    {"folders = !Spam, !Trash", "folders", 2},
	    {"folders = INBOX", "folders", 1},
	    {"folders = *", "folders", 1},
	    {"folders = subscribed", "folders", 0},
	    {"folders = Lists/% subscribed", "folders", 1},
	    {"folders = \"subscribed\"", "folders", 1},
	    {"folders = subscribed, subscribed, !\"subscribed\"", "folders", 1},
	    {"port = 65535", "port", 65535},
	    {"port = 1", "port", 1},
	    {"Port = 2", "port", 2},
	    {"port: 3", "port", 3},
	    {"port = 4 ; the old server", "port", 4},
	    {"port = 5  # default", "port", 5},
	    {"host = [::1]", "host", 0},
	    {"host = fe80::1", "host", 0},
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(cases); i++) {
		bool is_host = strcmp(cases[i].field, "host") == 0;
		char *text = is_host
		                 ? xasprintf("[account a]\nemail = a@b\n%s\n",
		                             cases[i].line)
		                 : xasprintf(ACCT "%s\n", cases[i].line);
		struct result r;
		load(&r, text);
		if (r.rc != 0 || r.diags.n != 0)
			print_message("# case: %s\n", cases[i].line);
		expect_counts(&r, 0, 0);
		const struct fm_account *a = account_at(&r, 0);
		const char *f = cases[i].field;
		if (strcmp(f, "fp") == 0) {
			assert_true(a->has_fingerprint);
			assert_memory_equal(a->tls_fingerprint, fp_bytes, 32);
		} else if (strcmp(f, "every") == 0) {
			assert_int_equal(a->schedule.every_seconds,
			                 cases[i].value);
		} else if (strcmp(f, "max") == 0) {
			assert_int_equal(a->download, FM_DOWNLOAD_MAX);
			assert_int_equal(a->download_max, cases[i].value);
		} else if (strcmp(f, "full") == 0) {
			assert_int_equal(a->download, FM_DOWNLOAD_FULL);
		} else if (strcmp(f, "folders") == 0) {
			assert_int_equal(a->n_folders, cases[i].value);
		} else if (strcmp(f, "port") == 0) {
			assert_int_equal(a->port, cases[i].value);
			assert_int_equal(key_line(a, "port"), 4);
		}
		result_free(&r);
		free(text);
	}
	/* Only exclusions are taken from the default, subscribed. */
	struct result r;
	load(&r, ACCT "folders = !Spam, !Trash\n");
	const struct fm_account *a = account_at(&r, 0);
	assert_true(a->folders_subscribed);
	assert_string_equal(a->folders[0], "!Spam");
	assert_string_equal(a->folders[1], "!Trash");
	assert_null(a->folders[2]);
	result_free(&r);
	/* The bare word is the subscriptions, wherever it stands; quoted,
	 * a folder of that name. */
	static const struct {
		const char *line;
		bool subscribed;
		const char *first;
	} words[] = {
	    {"folders = subscribed", true, NULL},
	    {"folders = Lists/%, subscribed", true, "Lists/%"},
	    {"folders = \"subscribed\"", false, "subscribed"},
	    {"folders = Subscribed", false, "Subscribed"},
	    {"folders = subscribed/x", false, "subscribed/x"},
	    {"folders = !\"subscribed\"", true, "!subscribed"},
	    {"folders = *", false, "*"},
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(words); i++) {
		char *text = xasprintf(ACCT "%s\n", words[i].line);
		load(&r, text);
		expect_counts(&r, 0, 0);
		a = account_at(&r, 0);
		if (a->folders_subscribed != words[i].subscribed)
			fail_msg("%s: subscribed is %d", words[i].line,
			         a->folders_subscribed);
		if (words[i].first == NULL)
			assert_null(a->folders[0]);
		else
			assert_string_equal(a->folders[0], words[i].first);
		result_free(&r);
		free(text);
	}
}

/* ------------------------------------------------------------------------
 * Invalid values: each case is one line in [general] or an account, and
 * must give exactly one error, on that line, for that key.
 */

struct bad_case {
	const char *line;
	const char *key;
	const char *message;
};

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const struct bad_case bad_general[] = {
    {"bell = maybe", "bell", "expected yes or no, got 'maybe'"},
    {"title = 2", "title", "expected yes or no, got '2'"},
    {"connect_timeout = 0", "connect_timeout", "a number of seconds"},
    {"timeout = 3601", "timeout", "a number of seconds"},
    {"timeout = 1m", "timeout", "a number of seconds"},
    {"max_line_kib = 63", "max_line_kib", "a size in KiB"},
    {"max_literal_mib = 4096", "max_literal_mib", "a size in MiB"},
    {"bell =", "bell", "empty value"},
    {"log_protocol = trace.log", "log_protocol",
     "'trace.log' is a relative path"},
    {"log_protocol =", "log_protocol", "empty value"},
};

static const struct bad_case bad_account[] = {
    {"email = me", "email", "'me' is not an email address"},
    {"email = @example.com", "email", "is not an email address"},
    {"email = me@", "email", "is not an email address"},
    {"email = a@b@example.com", "email", "is not an email address"},
    {"email = me @example.com", "email", "is not an email address"},
    {"email = <me@example.com>", "email", "is not an email address"},
    {"email = Me me@example.com", "email", "is not an email address"},
    {"email =", "email", "empty value"},
    {"name =", "name", "empty value"},
    {"protocol = smtp", "protocol", "expected imap or pop3, got 'smtp'"},
    {"host = imap://imap.example.com", "host", "is a URL"},
    {"host = imap.example.com:993", "host",
     "put the port into its own key (port or smtp_port = 993)"},
    {"host = imap example.com", "host", "contains a space"},
    {"host = imap.example.com/x", "host", "is not a host name"},
    {"host =", "host", "empty value"},
    {"port = 0", "port", "expected a port number from 1 to 65535, got '0'"},
    {"port = 65536", "port", "got '65536'"},
    {"port = imaps", "port", "got 'imaps'"},
    {"port = -1", "port", "got '-1'"},
    {"port = +993", "port", "got '+993'"},
    {"port = 99 3", "port", "got '99 3'"},
    {"port = 993 # imaps", "port", "got '993 # imaps'"},
    {"tls = ssl", "tls", "expected implicit, starttls or none, got 'ssl'"},
    {"tls_ca_file = /nonexistent/ca.pem", "tls_ca_file",
     "cannot read /nonexistent/ca.pem: No such file"},
    {"tls_ca_file = ca.pem", "tls_ca_file", "is a relative path"},
    {"tls_ca_file = /", "tls_ca_file", "/ is not a regular file"},
    {"tls_fingerprint = sha1:0123456789abcdef0123456789abcdef01234567",
     "tls_fingerprint", "expected sha256: and 64 hex digits"},
    {"tls_fingerprint = sha256:" H64 "0", "tls_fingerprint",
     "expected sha256: and 64 hex digits"},
    {"tls_fingerprint = sha256:" H64 "01", "tls_fingerprint",
     "expected sha256: and 64 hex digits"},
    {"tls_fingerprint = sha256:0" H64, "tls_fingerprint",
     "expected sha256: and 64 hex digits"},
    {"tls_fingerprint = sha256:zz" H64, "tls_fingerprint",
     "expected sha256: and 64 hex digits"},
    {"tls_fingerprint = sha256:01::23" H64, "tls_fingerprint",
     "expected sha256: and 64 hex digits"},
    {"tls_fingerprint = sha256:0:1" H64, "tls_fingerprint",
     "expected sha256: and 64 hex digits"},
    {"tls_fingerprint = " H64, "tls_fingerprint",
     "write the fingerprint as sha256:" H64},
    {"allow_plaintext_login = maybe", "allow_plaintext_login",
     "expected yes or no, got 'maybe'"},
    {"user =", "user", "empty value"},
    {"password =", "password", "empty value"},
    {"password_cmd =", "password_cmd", "empty value"},
    {"auth = cram-md5", "auth",
     "expected auto, plain, login, xoauth2 or oauthbearer, got 'cram-md5'"},
    {"oauth_token_cmd =", "oauth_token_cmd", "empty value"},
    {"folders = ,", "folders",
     "no folder patterns; use subscribed for the subscribed folders or * "
     "for all folders"},
    {"folders = !subscribed", "folders",
     "!subscribed excludes nothing: leave subscribed out, or write "
     "!\"subscribed\" for a folder of that name"},
    {"folders = INBOX, !subscribed", "folders", "!subscribed excludes"},
    {"folders =", "folders", "empty value"},
    {"folders = INBOX, !", "folders", "'!' needs a folder pattern"},
    {"folders = \"Sent Items", "folders", "has no closing '\"'"},
    {"folders = Sent\"Items\"", "folders", "quote a whole folder name"},
    {"folders = \"Sent\"x", "folders", "put a comma after the closing"},
    {"folders = INBOX, \"\"", "folders", "empty folder name"},
    {"schedule = every 10", "schedule",
     "add a unit: s, m or h (like every 10m)"},
    {"schedule = manual, startup", "schedule",
     "manual cannot be combined with other entries"},
    {"schedule = every 5m, manual", "schedule", "manual cannot be combined"},
    {"schedule = every", "schedule", "expected every N followed by s, m or h"},
    {"schedule = every 0m", "schedule",
     "the interval must be a whole number from 1 to 999999, got '0'"},
    {"schedule = every 10x", "schedule", "unknown unit 'x'; use s, m or h"},
    {"schedule = every -5m", "schedule", "expected every N"},
    {"schedule = hourly", "schedule",
     "expected manual, startup or every N followed by s, m or h, got "
     "'hourly'"},
    {"schedule = every 5m, every 10m", "schedule",
     "more than one 'every' interval"},
    {"schedule = startup,,every 5m", "schedule", "empty schedule entry"},
    {"schedule =", "schedule", "empty value"},
    {"idle = sometimes", "idle", "expected yes or no, got 'sometimes'"},
    {"imap_notify = auto", "imap_notify", "expected yes or no, got 'auto'"},
    {"max_connections = 0", "max_connections",
     "expected a number of connections from 1 to 20, got '0'"},
    {"max_connections = 21", "max_connections", "from 1 to 20, got '21'"},
    {"max_connections = five", "max_connections", "got 'five'"},
    {"max_connections =", "max_connections", "empty value"},
    {"download = partial", "download",
     "expected full, headers or max SIZE (like max 10M), got 'partial'"},
    {"download = max", "download", "expected full, headers or max SIZE"},
    {"download = max 0", "download", "expected a size above 0 after max"},
    {"download = max 10X", "download", "got '10X'"},
    {"download = max 10MB", "download", "got '10MB'"},
    {"download = max -1", "download", "got '-1'"},
    {"download = max 99999999999G", "download", "got '99999999999G'"},
    {"keep_on_server = perhaps", "keep_on_server", "expected yes or no"},
    {"delete_after_days = 36501", "delete_after_days",
     "expected a number of days from 0 to 36500, got '36501'"},
    {"delete_after_days = -1", "delete_after_days", "got '-1'"},
    {"delete_after_days = 1.5", "delete_after_days", "got '1.5'"},
    {"delete_when_deleted_locally = x", "delete_when_deleted_locally",
     "expected yes or no, got 'x'"},
    {"pop3_no_uidl = size", "pop3_no_uidl",
     "expected error or message-id, got 'size'"},
    {"smtp_host = smtp://smtp.example.com", "smtp_host", "is a URL"},
    {"smtp_host = smtp.example.com:587", "smtp_host",
     "put the port into its own key"},
    {"smtp_port = 70000", "smtp_port",
     "expected a port number from 1 to 65535, got '70000'"},
    {"smtp_tls = ssl", "smtp_tls",
     "expected implicit, starttls or none, got 'ssl'"},
    {"smtp_user =", "smtp_user", "empty value"},
    {"save_sent = maybe", "save_sent",
     "expected server, local or no, got 'maybe'"},
    {"default = x", "default", "expected yes or no, got 'x'"},
};

static void
check_bad(const struct bad_case *c, bool general)
{
	char *text;
	if (general)
		text = xasprintf("[general]\n%s\n" ACCT, c->line);
	else
		text = xasprintf(
		    "[account a]\n%s\n%s%s", c->line,
		    strcmp(c->key, "email") != 0 ? "email = me@example.com\n"
		                                 : "",
		    strcmp(c->key, "host") != 0 ? "host = imap.example.com\n"
		                                : "");
	struct result r;
	load(&r, text);
	if (r.diags.n != 1)
		print_message("# case: %s\n", c->line);
	expect_counts(&r, 1, 1);
	expect_error(&r, 2, c->key, c->message);
	assert_null(r.cfg);
	assert_int_equal(r.err.cls, FM_ERR_CONFIG);
	assert_non_null(strstr(r.err.user, " has 1 error"));
	result_free(&r);
	free(text);
}

static void
test_bad_values(void **state)
{
	for (size_t i = 0; i < FM_ARRAY_LEN(bad_general); i++)
		check_bad(&bad_general[i], true);
	for (size_t i = 0; i < FM_ARRAY_LEN(bad_account); i++)
		check_bad(&bad_account[i], false);
	/* Every key of the table has at least one bad case. */
	for (size_t i = 0; i < conf_n_keys; i++) {
		const struct conf_key *k = &conf_keys[i];
		const struct bad_case *list =
		    k->sect == CONF_SECT_GENERAL ? bad_general : bad_account;
		size_t n = k->sect == CONF_SECT_GENERAL
		               ? FM_ARRAY_LEN(bad_general)
		               : FM_ARRAY_LEN(bad_account);
		bool found = k->flags & CONF_KF_EMPTY_OK;
		for (size_t j = 0; j < n && !found; j++)
			found = strcmp(list[j].key, k->name) == 0;
		if (!found)
			fail_msg("no bad value tested for %s", k->name);
	}
}

/* An empty notify_cmd is allowed: it turns notifications off. */
static void
test_empty_notify(void **state)
{
	struct result r;
	load(&r, "[general]\nnotify_cmd =\n" ACCT "notify_cmd =\n");
	expect_counts(&r, 0, 0);
	assert_string_equal(r.cfg->general.notify_cmd, "");
	assert_string_equal(account_at(&r, 0)->notify_cmd, "");
	result_free(&r);
}

static void
test_home_expansion(void **state)
{
	char *old = getenv("HOME") ? xstrdup(getenv("HOME")) : NULL;
	setenv("HOME", "/home/tester", 1);
	struct result r;
	load(&r, "[general]\nlog_protocol = ~/fulmar.trace\n" ACCT);
	expect_counts(&r, 0, 0);
	assert_string_equal(r.cfg->general.log_protocol,
	                    "/home/tester/fulmar.trace");
	result_free(&r);
	if (old != NULL)
		setenv("HOME", old, 1);
	free(old);
}

static void
test_schedule_warning(void **state)
{
	struct result r;
	load(&r, ACCT "schedule = startup, every 10s\n");
	expect_counts(&r, 1, 0);
	expect_warning(&r, 4, "schedule", "servers may throttle");
	assert_int_equal(account_at(&r, 0)->schedule.every_seconds, 10);
	result_free(&r);
	load(&r, ACCT "schedule = every 30s\n");
	expect_counts(&r, 0, 0);
	result_free(&r);
}

/* ------------------------------------------------------------------------
 * Sections and keys.
 */

static void
test_sections(void **state)
{
	struct result r;
	load(&r, "[generl]\n"        /* 1 */
	         "bell = yes\n"      /* 2: skipped */
	         "[acount x]\n"      /* 3 */
	         "[foo]\n"           /* 4 */
	         "[general extra]\n" /* 5 */
	         "[account]\n"       /* 6 */
	         "[account    ]\n"   /* 7 */
	         "[account a/b]\n"   /* 8 */
	         "email = me@example.com\n"
	         "host = imap.example.com\n"
	         "[account .hidden]\n" /* 11 */
	         "email = me@example.com\n"
	         "host = imap.example.com\n"
	         "[account b\n"          /* 14 */
	         "[general] bell = no\n" /* 15 */
	         "[general] ; fine\n");  /* 16 */
	expect_error(&r, 1, "",
	             "unknown section [generl]; did you mean "
	             "[general]?");
	expect_error(&r, 3, "",
	             "unknown section [acount x]; did you mean "
	             "[account NAME]?");
	expect_error(&r, 4, "",
	             "unknown section [foo]; expected [general], "
	             "[account NAME], [keys] or [colors]");
	expect_error(&r, 5, "", "unknown section [general extra]");
	expect_error(&r, 6, "", "an account section needs a name");
	expect_error(&r, 7, "", "an account section needs a name");
	expect_error(&r, 8, "", "account name 'a/b' may not contain '/'");
	expect_error(&r, 11, "", "may not start with '.'");
	expect_error(&r, 14, "", "the section header has no closing ']'");
	expect_error(&r, 15, "", "unexpected text after ']'");
	expect_counts(&r, 10, 10);
	char *want = xasprintf("%s has 10 errors", r.path);
	assert_string_equal(r.err.user, want);
	free(want);
	result_free(&r);
}

static void
test_reserved_sections(void **state)
{
	struct result r;
	load(&r, "[keys]\n" /* 1 */
	         "q = quit\n"
	         "[colors]\n" /* 3 */
	         "whatever goes = here\n"
	         "[keys]\n" /* 5: no second warning */
	     ACCT);
	expect_counts(&r, 2, 0);
	expect_warning(&r, 1, "",
	               "[keys] is not supported by this version "
	               "yet; ignored");
	expect_warning(&r, 3, "", "[colors] is not supported");
	assert_int_equal(account_at(&r, 0)->line, 6);
	result_free(&r);
}

static void
test_keys(void **state)
{
	struct result r;
	load(&r, "bell = yes\n" /* 1 */
	         "[general]\n"
	         "bell = yes\n"             /* 3 */
	         "bell = no\n"              /* 4 */
	         "email = me@example.com\n" /* 5 */
	         "[account a]\n"            /* 6 */
	         "email = me@example.com\n"
	         "host = imap.example.com\n"
	         "pasword_cmd = pass\n"       /* 9 */
	         "xyzzy = 1\n"                /* 10 */
	         "bell = yes\n"               /* 11 */
	         "HOST = other.example.com\n" /* 12 */
	         "= value\n"                  /* 13 */
	         "[general]\n"
	         "bell = no\n" /* 15 */
	         "title = yes\n");
	expect_error(&r, 1, "bell", "outside any section");
	expect_error(&r, 4, "bell", "already set on line 3");
	expect_error(&r, 5, "email", "belongs in an [account NAME] section");
	expect_error(&r, 9, "pasword_cmd",
	             "unknown key; did you mean 'password_cmd'?");
	expect_error(&r, 10, "xyzzy", "unknown key; fulmar.conf(5) lists");
	expect_error(&r, 11, "bell", "belongs in [general]");
	expect_error(&r, 12, "host", "already set on line 8");
	expect_error(&r, 13, "", "missing key name before '='");
	expect_error(&r, 15, "bell", "already set on line 3");
	expect_counts(&r, 9, 9);
	result_free(&r);
}

static void
test_duplicate_account(void **state)
{
	struct result r;
	load(&r, ACCT "\n" ACCT);
	expect_counts(&r, 1, 1);
	expect_error(&r, 5, "", "account 'a' is already defined on line 1");
	result_free(&r);
}

static void
test_missing_required(void **state)
{
	struct result r;
	load(&r, "[account a]\n" /* 1 */
	         "name = Me\n"
	         "[account b]\n" /* 3 */
	         "email = me@example.com\n"
	         "[account c]\n" /* 5 */
	         "host = imap.example.com\n");
	expect_error(&r, 1, "email", "required key missing; add email = ");
	expect_error(&r, 1, "host", "required key missing; add host = ");
	expect_error(&r, 3, "host", "to [account b]");
	expect_error(&r, 5, "email", "to [account c]");
	expect_counts(&r, 4, 4);
	result_free(&r);
}

/* ------------------------------------------------------------------------
 * Rules between keys.
 */

static void
test_contradictions(void **state)
{
	static const struct {
		const char *keys; /* from line 4 */
		enum fm_conf_severity sev;
		unsigned line;
		const char *key;
		const char *message;
	} cases[] = {
	    {"password = hunter22\npassword_cmd = pass\n", FM_CONF_ERROR, 5,
	     "password_cmd",
	     "password and password_cmd are both set (the other on line 4)"},
	    {"password_cmd = pass\npassword = hunter22\n", FM_CONF_ERROR, 5,
	     "password", "both set (the other on line 4)"},
	    {"password = hunter22\ntls = none\n", FM_CONF_ERROR, 5, "tls",
	     "with tls = none the password would cross the network "
	     "unencrypted; use tls = starttls or tls = implicit, or set "
	     "allow_plaintext_login = yes"},
	    {"tls = none\npassword_cmd = pass\n", FM_CONF_ERROR, 4, "tls",
	     "unencrypted"},
	    {"tls = none\nauth = xoauth2\noauth_token_cmd = tok\n",
	     FM_CONF_ERROR, 4, "tls", "unencrypted"},
	    {"smtp_host = smtp.example.com\nsmtp_tls = none\n"
	     "password_cmd = pass\n",
	     FM_CONF_ERROR, 5, "smtp_tls",
	     "with smtp_tls = none the password would cross"},
	    {"tls = none\ntls_fingerprint = sha256:" FP_PLAIN "\n",
	     FM_CONF_ERROR, 5, "tls_fingerprint",
	     "nothing to verify: tls = none turns TLS off"},
	    {"tls = none\ntls_ca_file = /etc/passwd\n", FM_CONF_ERROR, 5,
	     "tls_ca_file", "nothing to verify"},
	    {"auth = xoauth2\n", FM_CONF_ERROR, 4, "auth",
	     "auth = xoauth2 needs oauth_token_cmd"},
	    {"auth = oauthbearer\n", FM_CONF_ERROR, 4, "auth",
	     "auth = oauthbearer needs oauth_token_cmd"},
	    {"oauth_token_cmd = tok\nauth = plain\n", FM_CONF_WARNING, 4,
	     "oauth_token_cmd", "ignored: auth = plain logs in"},
	    {"auth = login\noauth_token_cmd = tok\n", FM_CONF_WARNING, 5,
	     "oauth_token_cmd", "auth = login"},
	    {"keep_on_server = no\n", FM_CONF_WARNING, 4, "keep_on_server",
	     "applies to POP3 accounts only; ignored"},
	    {"delete_after_days = 3\n", FM_CONF_WARNING, 4, "delete_after_days",
	     "applies to POP3 accounts only"},
	    {"delete_when_deleted_locally = yes\n", FM_CONF_WARNING, 4,
	     "delete_when_deleted_locally", "applies to POP3 accounts only"},
	    {"pop3_no_uidl = message-id\n", FM_CONF_WARNING, 4, "pop3_no_uidl",
	     "applies to POP3 accounts only"},
	    {"protocol = pop3\nidle = yes\n", FM_CONF_WARNING, 5, "idle",
	     "POP3 has no IDLE; ignored"},
	    {"protocol = pop3\nsave_sent = server\n", FM_CONF_ERROR, 5,
	     "save_sent", "a POP3 server has no folders"},
	    {"protocol = pop3\nkeep_on_server = no\ndelete_after_days = 7\n",
	     FM_CONF_WARNING, 6, "delete_after_days",
	     "nothing is left to delete"},
	    {"smtp_port = 465\n", FM_CONF_WARNING, 4, "smtp_port",
	     "smtp_host is not set, so this account cannot send; ignored"},
	    {"smtp_tls = implicit\n", FM_CONF_WARNING, 4, "smtp_tls",
	     "smtp_host is not set"},
	    {"smtp_user = me\n", FM_CONF_WARNING, 4, "smtp_user",
	     "smtp_host is not set"},
	    {"tls = implicit\nport = 143\n", FM_CONF_WARNING, 4, "tls",
	     "tls = implicit with port 143 is probably wrong"},
	    {"port = 110\nprotocol = pop3\ntls = implicit\n", FM_CONF_WARNING,
	     6, "tls", "with port 110 is probably wrong"},
	    {"port = 993\ntls = starttls\n", FM_CONF_WARNING, 5, "tls",
	     "tls = starttls with port 993 is probably wrong"},
	    {"protocol = pop3\ntls = starttls\nport = 995\n", FM_CONF_WARNING,
	     5, "tls", "with port 995"},
	    {"smtp_host = smtp.example.com\nsmtp_tls = starttls\n"
	     "smtp_port = 465\n",
	     FM_CONF_WARNING, 5, "smtp_tls",
	     "smtp_tls = starttls with smtp_port 465 is probably wrong"},
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(cases); i++) {
		char *text = xasprintf(ACCT "%s", cases[i].keys);
		struct result r;
		load(&r, text);
		if (r.diags.n != 1)
			print_message("# case %zu\n", i);
		bool error = cases[i].sev == FM_CONF_ERROR;
		expect_counts(&r, 1, error ? 1 : 0);
		expect_diag_at(&r, cases[i].sev, cases[i].line, cases[i].key,
		               cases[i].message, __FILE__, __LINE__);
		result_free(&r);
		free(text);
	}
}

/* The combinations above that are fine when said on purpose. */
static void
test_no_contradictions(void **state)
{
	static const char *const cases[] = {
	    "tls = none\npassword = hunter22\nallow_plaintext_login = yes\n",
	    "tls = none\n",
	    "smtp_tls = none\npassword_cmd = pass\n"
	    "smtp_host = smtp.example.com\nallow_plaintext_login = on\n",
	    "auth = oauthbearer\noauth_token_cmd = tok\n",
	    "auth = auto\noauth_token_cmd = tok\npassword_cmd = pass\n",
	    "protocol = pop3\nidle = no\n",
	    "protocol = pop3\nkeep_on_server = no\n",
	    "protocol = pop3\ndelete_after_days = 7\n",
	    "port = 143\ntls = starttls\n",
	    "port = 993\ntls = implicit\n",
	    "smtp_host = smtp.example.com\nsmtp_port = 587\nsmtp_tls = "
	    "starttls\nsmtp_user = x\n",
	    "default = yes\n",
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(cases); i++) {
		char *text = xasprintf(ACCT "%s", cases[i]);
		struct result r;
		load(&r, text);
		if (r.diags.n != 0)
			print_message("# case %zu\n", i);
		expect_counts(&r, 0, 0);
		result_free(&r);
		free(text);
	}
}

static void
test_two_defaults(void **state)
{
	struct result r;
	load(&r, "[account a]\nemail = a@example.com\nhost = h\n"
	         "default = yes\n" /* 4 */
	         "[account b]\nemail = b@example.com\nhost = h\n"
	         "[account c]\nemail = c@example.com\nhost = h\n"
	         "default = yes\n"); /* 11 */
	expect_counts(&r, 1, 1);
	expect_error(&r, 11, "default",
	             "account 'a' (line 4) is already the "
	             "default; only one account can be");
	result_free(&r);

	load(&r, "[account a]\nemail = a@example.com\nhost = h\n"
	         "[account b]\nemail = b@example.com\nhost = h\n"
	         "default = yes\n");
	expect_counts(&r, 0, 0);
	assert_string_equal(fm_config_default_account(r.cfg)->name, "b");
	assert_string_equal(fm_config_find_account(r.cfg, "a")->email,
	                    "a@example.com");
	result_free(&r);
}

static void
test_password_permissions(void **state)
{
	static const char text[] = ACCT "password = hunter22\n";
	struct result r;
	load_bytes(&r, text, strlen(text), 0644);
	expect_counts(&r, 1, 0);
	char *msg = xasprintf("the file is readable by other users; chmod 600 "
	                      "%s or use password_cmd",
	                      r.path);
	expect_warning(&r, 4, "password", msg);
	free(msg);
	assert_string_equal(account_at(&r, 0)->password, "hunter22");
	result_free(&r);
	load_bytes(&r, text, strlen(text), 0640);
	expect_counts(&r, 1, 0);
	result_free(&r);
	load_bytes(&r, text, strlen(text), 0600);
	expect_counts(&r, 0, 0);
	result_free(&r);
}

static void
test_no_accounts(void **state)
{
	struct result r;
	load(&r, "; nothing yet\n[general]\nbell = yes\n");
	expect_counts(&r, 0, 0);
	assert_int_equal(r.cfg->n_accounts, 0);
	assert_null(fm_config_default_account(r.cfg));
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	fm_config_write(r.cfg, f);
	fclose(f);
	assert_int_equal(len, 0);
	free(out);
	result_free(&r);
	load(&r, "");
	expect_counts(&r, 0, 0);
	result_free(&r);
}

static void
test_missing_file(void **state)
{
	struct fm_config *cfg = (void *)1;
	struct fm_conf_diags diags;
	struct fm_error err;
	const char *path = "/nonexistent/fulmar/config";
	assert_int_equal(fm_config_load(path, &cfg, &diags, &err), -1);
	assert_null(cfg);
	assert_int_equal(err.cls, FM_ERR_CONFIG);
	assert_string_equal(err.user, "/nonexistent/fulmar/config: no such "
	                              "file; create it (see fulmar.conf(5))");
	assert_int_equal(diags.n, 1);
	assert_int_equal(diags.n_errors, 1);
	assert_int_equal(diags.items[0].line, 0);
	assert_string_equal(diags.items[0].key, "");
	assert_string_equal(diags.items[0].message,
	                    "no such file; create it (see fulmar.conf(5))");
	fm_conf_diags_free(&diags);
	assert_int_equal(fm_config_load("/", &cfg, &diags, &err), -1);
	assert_non_null(strstr(err.user, "not a regular file"));
	fm_conf_diags_free(&diags);
}

/* ------------------------------------------------------------------------
 * Lines: comments, blanks, continuations, BOM, CRLF, long lines.
 */

static const char lines_text[] = "; comment\n"                    /* 1 */
                                 "# comment\n"                    /* 2 */
                                 "\n"                             /* 3 */
                                 "[account a]\n"                  /* 4 */
                                 "email = me@example.com\n"       /* 5 */
                                 "password_cmd = gpg --decrypt\n" /* 6 */
                                 "    --quiet ~/.pw.gpg ; note\n" /* 7 */
                                 "\t--batch\n"                    /* 8 */
                                 "   ; indented comment\n"        /* 9 */
                                 "\n"                             /* 10 */
                                 "host = imap.example.com\n"      /* 11 */
                                 "port = x\n";                    /* 12 */

static void
check_lines(const char *data, size_t len)
{
	struct result r;
	load_bytes(&r, data, len, 0600);
	expect_counts(&r, 1, 1);
	expect_error(&r, 12, "port", "got 'x'");
	result_free(&r);
	/* Without the bad line, the value is joined with single spaces. */
	load_bytes(&r, data,
	           len - strlen("port = x\n") - (data[len - 2] == '\r' ? 1 : 0),
	           0600);
	expect_counts(&r, 0, 0);
	const struct fm_account *a = account_at(&r, 0);
	assert_int_equal(a->line, 4);
	assert_string_equal(a->password_cmd,
	                    "gpg --decrypt --quiet ~/.pw.gpg --batch");
	assert_int_equal(key_line(a, "password_cmd"), 6);
	assert_int_equal(key_line(a, "host"), 11);
	result_free(&r);
}

static void
test_line_numbers(void **state)
{
	check_lines(lines_text, strlen(lines_text));
	/* The same with a byte order mark. */
	char *bom = xasprintf("\xEF\xBB\xBF%s", lines_text);
	check_lines(bom, strlen(bom));
	free(bom);
	/* The same with CRLF line ends. */
	struct fm_buf crlf;
	fm_buf_init(&crlf, 4096);
	for (const char *p = lines_text; *p != '\0'; p++) {
		if (*p == '\n')
			fm_buf_append_char(&crlf, '\r');
		fm_buf_append_char(&crlf, *p);
	}
	check_lines(crlf.data, crlf.len);
	fm_buf_free(&crlf);
	/* A BOM before a section header. */
	struct result r;
	load(&r, "\xEF\xBB\xBF[general]\nbell = x\n");
	expect_counts(&r, 1, 1);
	expect_error(&r, 2, "bell", "expected yes or no");
	result_free(&r);
	/* No newline at the end of the file. */
	load(&r, ACCT "port = 0");
	expect_error(&r, 4, "port", "got '0'");
	result_free(&r);
}

static void
test_continuations(void **state)
{
	struct result r;
	/* Indented key lines (git style) are keys, not continuations; a
	 * line indented deeper continues the key above. */
	load(&r, "[account a]\n"
	         "\temail = me@example.com\n"
	         "\thost = imap.example.com\n"
	         "\tpassword_cmd = pass\n"
	         "\t\tshow work\n"
	         "  name = Me\n");
	expect_counts(&r, 0, 0);
	assert_string_equal(account_at(&r, 0)->password_cmd, "pass show work");
	assert_string_equal(account_at(&r, 0)->real_name, "Me");
	result_free(&r);

	/* After a blank line or a comment an indented line starts anew. */
	load(&r, ACCT "name = Me\n" /* 4 */
	              "\n"
	              "  port = 143\n" /* 6 */
	              "# comment\n"
	              "  Myself\n" /* 8 */
	              "tls = starttls\n"
	              "  ; comment\n"
	              "\n");
	expect_counts(&r, 1, 1);
	expect_error(&r, 8, "",
	             "expected key = value, a [section] header or "
	             "a comment");
	result_free(&r);
	load(&r, ACCT "name = Me\n\n  port = 143\n");
	expect_counts(&r, 0, 0);
	assert_string_equal(account_at(&r, 0)->real_name, "Me");
	assert_int_equal(account_at(&r, 0)->port, 143);
	result_free(&r);

	/* An empty value may be given on the next line. */
	load(&r, ACCT "password_cmd =\n  pass show x\n");
	expect_counts(&r, 0, 0);
	assert_string_equal(account_at(&r, 0)->password_cmd, "pass show x");
	result_free(&r);

	/* A continuation is validated with the whole value. */
	load(&r, ACCT "schedule = startup,\n  every 10\n");
	expect_counts(&r, 1, 1);
	expect_error(&r, 4, "schedule", "add a unit");
	result_free(&r);

	/* Continuations of ignored or broken keys are dropped quietly. */
	load(&r, ACCT "nope = 1\n  more\n[keys]\nq = quit\n  more\n");
	expect_counts(&r, 2, 1);
	expect_error(&r, 4, "nope", "unknown key");
	result_free(&r);

	/* Values are bounded. */
	struct fm_buf b;
	fm_buf_init(&b, 100000);
	fm_buf_append_str(&b, ACCT "password_cmd = x\n");
	for (int i = 0; i < 30; i++)
		fm_buf_printf(&b, "  %0180d\n", i);
	fm_buf_append_str(&b, "port = 0\n");
	load(&r, b.data);
	expect_counts(&r, 2, 2);
	expect_error(&r, 4, "password_cmd", "the value is longer than 4096");
	expect_error(&r, 35, "port", "got '0'");
	result_free(&r);
	fm_buf_free(&b);
}

static void
test_long_lines(void **state)
{
	struct result r;
	char *name199 = xasprintf("name = %0192d", 7); /* 199 bytes */
	char *text = xasprintf(ACCT "%s\n", name199);
	load(&r, text);
	expect_counts(&r, 0, 0);
	assert_int_equal(strlen(account_at(&r, 0)->real_name), 192);
	result_free(&r);
	free(text);
	/* 199 bytes before a CRLF are fine too. */
	text = xasprintf(ACCT "%s\r\n", name199);
	load(&r, text);
	expect_counts(&r, 0, 0);
	result_free(&r);
	free(text);

	text = xasprintf(ACCT "%s0\n"            /* 4: 200 bytes */
	                      "port = 0\n"       /* 5 */
	                      "name = %05000d\n" /* 6: very long */
	                      "  continued\n"
	                      "tls = x\n", /* 8 */
	                 name199, 1);
	load(&r, text);
	expect_counts(&r, 4, 4);
	expect_error(&r, 4, "",
	             "line is longer than 199 bytes; wrap a long "
	             "value onto indented continuation lines");
	expect_error(&r, 5, "port", "got '0'");
	expect_error(&r, 6, "", "line is longer than 199 bytes");
	expect_error(&r, 8, "tls", "got 'x'");
	result_free(&r);
	free(text);
	free(name199);
}

static void
test_syntax_errors(void **state)
{
	struct result r;
	load(&r, "[account a]\n"
	         "email me@example.com\n" /* 2 */
	         "host = imap.example.com\n"
	         "port ; = 143\n"); /* 4 */
	expect_error(&r, 2, "", "expected key = value");
	expect_error(&r, 4, "", "expected key = value");
	expect_error(&r, 1, "email", "required key missing");
	expect_counts(&r, 3, 3);
	result_free(&r);

	static const char nul[] = "[general]\nbe\0ll = no\ntitle = 5\n";
	load_bytes(&r, nul, sizeof(nul) - 1, 0600);
	expect_counts(&r, 2, 2);
	expect_error(&r, 2, "", "NUL byte");
	expect_error(&r, 3, "title", "got '5'");
	result_free(&r);
}

/* All problems at once, in line order, whenever they were found. */
static void
test_all_problems_sorted(void **state)
{
	struct result r;
	load(&r, "[account a]\n" /* 1: no host */
	         "email = me@example.com\n"
	         "tls = none\n"          /* 3 */
	         "password_cmd = pass\n" /* 4 */
	         "idle = maybe\n"        /* 5 */
	         "smtp_user = u\n"       /* 6 */
	         "[account b]\n"         /* 7 */
	         "email = nope\n"        /* 8 */
	         "host = h\n");
	expect_counts(&r, 5, 4);
	static const unsigned lines[] = {1, 3, 5, 6, 8};
	for (size_t i = 0; i < FM_ARRAY_LEN(lines); i++)
		assert_int_equal(r.diags.items[i].line, lines[i]);
	expect_error(&r, 1, "host", "required key missing");
	expect_error(&r, 3, "tls", "unencrypted");
	expect_warning(&r, 6, "smtp_user", "smtp_host is not set");
	char *want = xasprintf("%s has 4 errors", r.path);
	assert_string_equal(r.err.user, want);
	free(want);
	result_free(&r);
}

/* ------------------------------------------------------------------------
 * fm_config_write().
 */

/* Not inlined: GCC 12 at -O2 without sanitizers then takes pointers into
 * the result for pointers to this frame's variable (-Wdangling-pointer). */
__attribute__((noinline)) static char *
write_config(const struct fm_config *cfg)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	fm_config_write(cfg, f);
	fclose(f);
	return out;
}

static void
test_write(void **state)
{
	struct result r;
	load(&r, ACCT "password = hunter2-pw\n"
	              "tls_fingerprint = sha256:" FP_PLAIN "\n"
	              "download = max 10240K\n"
	              "schedule = every 90s, startup\n"
	              "folders = INBOX \"Sent Items\" !Junk subscribed "
	              "\"subscribed\"\n");
	expect_counts(&r, 0, 0);
	char *out = write_config(r.cfg);
	static const char *const want[] = {
	    "[general]\n",
	    "# log_protocol = (not set)\n",
	    "bell = no  # default\n",
	    "\n[account a]\n",
	    "email = me@example.com\n",
	    "# name = (not set)\n",
	    "protocol = imap  # default\n",
	    "port = 993  # default\n",
	    "tls = implicit  # default\n",
	    "tls_fingerprint = sha256:3a:f1:00:01:02:03:04:05:06:07:08:09:"
	    "0a:0b:0c:0d:0e:0f:10:11:12:13:14:15:16:17:18:19:1a:1b:fe:ff\n",
	    "user = me@example.com  # default\n",
	    "# password = <set, hidden>\n",
	    "folders = subscribed, INBOX, \"Sent Items\", !Junk, "
	    "\"subscribed\"\n",
	    "schedule = startup, every 90s\n",
	    "download = max 10M\n",
	    "# keep_on_server = yes  # ignored: POP3 only\n",
	    "# smtp_port = 587  # ignored: no smtp_host\n",
	    "save_sent = server  # default\n",
	    "default = no  # default\n",
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(want); i++)
		if (strstr(out, want[i]) == NULL)
			fail_msg("missing '%s' in:\n%s", want[i], out);
	assert_null(strstr(out, "hunter2-pw"));
	/* Every key is there, in table order. */
	const char *at = strstr(out, "[account a]");
	for (size_t i = 0; i < conf_n_keys; i++) {
		if (conf_keys[i].sect != CONF_SECT_ACCOUNT)
			continue;
		char *a = xasprintf("\n%s = ", conf_keys[i].name);
		char *c = xasprintf("\n# %s = ", conf_keys[i].name);
		const char *pa = strstr(at, a), *pc = strstr(at, c);
		const char *p = pa != NULL && (pc == NULL || pa < pc) ? pa : pc;
		if (p == NULL || p < at)
			fail_msg("key %s missing or out of order in:\n%s",
			         conf_keys[i].name, out);
		at = p;
		free(a);
		free(c);
	}
	free(out);
	result_free(&r);
	/* The effective default. */
	load(&r, ACCT);
	out = write_config(r.cfg);
	if (strstr(out, "\nfolders = subscribed  # default\n") == NULL)
		fail_msg("no default folders line in:\n%s", out);
	free(out);
	result_free(&r);
}

/* Compares every key of two configs (secrets aside) in their text form. */
static void
assert_same_settings(const struct fm_config *x, const struct fm_config *y)
{
	assert_int_equal(x->n_accounts, y->n_accounts);
	for (size_t i = 0; i < conf_n_keys; i++) {
		const struct conf_key *k = &conf_keys[i];
		if (k->flags & CONF_KF_SECRET)
			continue;
		for (size_t j = 0;
		     j < (k->sect == CONF_SECT_GENERAL ? 1 : x->n_accounts);
		     j++) {
			const void *ox = k->sect == CONF_SECT_GENERAL
			                     ? (const void *)&x->general
			                     : (const void *)&x->accounts[j];
			const void *oy = k->sect == CONF_SECT_GENERAL
			                     ? (const void *)&y->general
			                     : (const void *)&y->accounts[j];
			struct fm_buf bx, by;
			fm_buf_init(&bx, 10000);
			fm_buf_init(&by, 10000);
			bool hx = conf_key_format(k, ox, &bx);
			bool hy = conf_key_format(k, oy, &by);
			if (hx != hy || strcmp(bx.data, by.data) != 0)
				fail_msg("%s differs: '%s' vs '%s'", k->name,
				         bx.data, by.data);
			fm_buf_free(&bx);
			fm_buf_free(&by);
		}
	}
}

static void
test_write_round_trip(void **state)
{
	char *imap = full_imap_text();
	struct fm_buf long_cmd;
	fm_buf_init(&long_cmd, 10000);
	for (int i = 0; i < 40; i++)
		fm_buf_printf(&long_cmd, "%sword%02d", i ? " " : "", i);
	char *text = xasprintf("%s"
	                       "[account home]\n"
	                       "email = me@home.example\n"
	                       "protocol = pop3\n"
	                       "host = pop.home.example\n"
	                       "password_cmd = %.146s\n"
	                       "  %s\n"
	                       "keep_on_server = no\n"
	                       "delete_when_deleted_locally = yes\n"
	                       "schedule = manual\n"
	                       "download = headers\n"
	                       "folders = !\"Deleted Items\"\n"
	                       "[account third]\n"
	                       "email = third@example.com\n"
	                       "host = 192.0.2.1\n"
	                       "tls = none\n"
	                       "password = pw-third\n"
	                       "allow_plaintext_login = yes\n"
	                       "smtp_host = 192.0.2.2\n"
	                       "smtp_port = 465\n",
	                       imap, long_cmd.data, long_cmd.data + 147);
	struct result r1, r2;
	load(&r1, text);
	expect_counts(&r1, 0, 0);
	char *out = write_config(r1.cfg);
	/* Written lines are short enough to read back. */
	for (const char *p = out; *p != '\0';) {
		size_t n = strcspn(p, "\n");
		assert_true(n <= CONF_LINE_MAX);
		p += n + (p[n] == '\n');
	}
	load(&r2, out);
	if (r2.diags.n != 0)
		print_message("# written:\n%s", out);
	expect_counts(&r2, 0, 0);
	assert_same_settings(r1.cfg, r2.cfg);
	assert_string_equal(account_at(&r2, 1)->password_cmd, long_cmd.data);
	assert_null(account_at(&r2, 2)->password);
	/* A second round changes nothing but the "# default" marks. */
	char *out2 = write_config(r2.cfg);
	struct result r3;
	load(&r3, out2);
	expect_counts(&r3, 0, 0);
	assert_same_settings(r2.cfg, r3.cfg);
	free(out2);
	result_free(&r3);
	free(out);
	result_free(&r1);
	result_free(&r2);
	free(text);
	free(imap);
	fm_buf_free(&long_cmd);
}

static void
test_default_path(void **state)
{
	char *old = getenv("XDG_CONFIG_HOME")
	                ? xstrdup(getenv("XDG_CONFIG_HOME"))
	                : NULL;
	setenv("XDG_CONFIG_HOME", "/x/cfg", 1);
	char *p = fm_config_default_path();
	assert_string_equal(p, "/x/cfg/fulmar/config");
	free(p);
	if (old != NULL)
		setenv("XDG_CONFIG_HOME", old, 1);
	else
		unsetenv("XDG_CONFIG_HOME");
	free(old);
}

/* ------------------------------------------------------------------------
 * fm_conf_run_secret_cmd().
 */

static long long
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* No child may be left behind, reaped or not. */
static void
assert_no_children(void)
{
	errno = 0;
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

static void
run_ok(const char *cmd, const char *want)
{
	char *secret = (char *)"junk";
	struct fm_error err;
	fm_error_clear(&err);
	int rc =
	    fm_conf_run_secret_cmd("password_cmd", cmd, 5000, &secret, &err);
	if (rc != 0)
		fail_msg("%s: %s", cmd, err.user);
	assert_string_equal(secret, want);
	fm_free_secret(&secret);
	assert_null(secret);
	assert_no_children();
}

static void
run_fail(const char *cmd, unsigned timeout_ms, const char *want)
{
	char *secret = (char *)"junk";
	struct fm_error err;
	fm_error_clear(&err);
	int rc = fm_conf_run_secret_cmd("password_cmd", cmd, timeout_ms,
	                                &secret, &err);
	assert_int_equal(rc, -1);
	assert_null(secret);
	assert_int_equal(err.cls, FM_ERR_CONFIG);
	if (strstr(err.user, want) == NULL)
		fail_msg("%s: '%s' lacks '%s'", cmd, err.user, want);
	assert_no_children();
}

static void
test_secret_cmd(void **state)
{
	run_ok("echo hunter22", "hunter22");
	run_ok("printf 'first line\\nsecond\\n'", "first line");
	run_ok("printf 'crlf-pw\\r\\n'", "crlf-pw");
	run_ok("printf 'no-newline'", "no-newline");
	run_ok("echo to-stderr >&2; echo pw-1", "pw-1");
	/* Exactly 64 KiB is allowed. */
	char *big = xmalloc(65537);
	memset(big, 'a', 65536);
	big[65536] = '\0';
	run_ok("head -c 65536 /dev/zero | tr '\\0' a", big);
	free(big);
	/* The secret is masked in logs from now on. */
	run_ok("echo token-5150", "token-5150");
	char *s = fm_log_scrub("got token-5150");
	assert_string_equal(s, "got " FM_REDACTED);
	free(s);
}

static void
test_secret_cmd_failures(void **state)
{
	run_fail("exit 1", 5000, "password_cmd exited with status 1");
	run_fail("echo pw; exit 3", 5000, "password_cmd exited with status 3");
	run_fail("true", 5000, "password_cmd printed nothing");
	run_fail("echo", 5000, "printed nothing");
	/* stdin is /dev/null, not the terminal. */
	run_fail("cat", 5000, "printed nothing");
	run_fail("no-such-command-fulmar", 5000,
	         "exited with status 127 (command not found)");
	run_fail("kill -9 $$", 5000, "password_cmd was killed by signal 9");
	run_fail("head -c 100000 /dev/zero | tr '\\0' a", 5000,
	         "password_cmd printed more than 64 KiB");
	run_fail("yes", 5000, "printed more than 64 KiB");

	long long t0 = mono_ms();
	run_fail("sleep 10", 200, "password_cmd did not finish within 200 ms");
	assert_true(mono_ms() - t0 < 3000);
	/* Output first, then hang: still a timeout. */
	t0 = mono_ms();
	run_fail("echo pw; exec >&-; sleep 10", 300, "within 300 ms");
	assert_true(mono_ms() - t0 < 3000);
	run_fail("sleep 10", 1000, "did not finish within 1 s");

	struct fm_error err;
	char *secret;
	assert_int_equal(fm_conf_run_secret_cmd("oauth_token_cmd", "exit 2",
	                                        1000, &secret, &err),
	                 -1);
	assert_string_equal(err.user, "oauth_token_cmd exited with status 2");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_defaults_pop3),
	    cmocka_unit_test(test_defaults_ports),
	    cmocka_unit_test(test_full_imap),
	    cmocka_unit_test(test_full_pop3),
	    cmocka_unit_test(test_every_key_covered),
	    cmocka_unit_test(test_bool_spellings),
	    cmocka_unit_test(test_value_forms),
	    cmocka_unit_test(test_bad_values),
	    cmocka_unit_test(test_empty_notify),
	    cmocka_unit_test(test_home_expansion),
	    cmocka_unit_test(test_schedule_warning),
	    cmocka_unit_test(test_sections),
	    cmocka_unit_test(test_reserved_sections),
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_duplicate_account),
	    cmocka_unit_test(test_missing_required),
	    cmocka_unit_test(test_contradictions),
	    cmocka_unit_test(test_no_contradictions),
	    cmocka_unit_test(test_two_defaults),
	    cmocka_unit_test(test_password_permissions),
	    cmocka_unit_test(test_no_accounts),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_line_numbers),
	    cmocka_unit_test(test_continuations),
	    cmocka_unit_test(test_long_lines),
	    cmocka_unit_test(test_syntax_errors),
	    cmocka_unit_test(test_all_problems_sorted),
	    cmocka_unit_test(test_write),
	    cmocka_unit_test(test_write_round_trip),
	    cmocka_unit_test(test_default_path),
	    cmocka_unit_test(test_secret_cmd),
	    cmocka_unit_test(test_secret_cmd_failures),
	};
	return cmocka_run_group_tests(tests, setup_ca, teardown_ca);
}

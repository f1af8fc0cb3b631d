/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A sync working on a folder without its summary (fm_store_quick): the
 * renames, removals and deliveries land in the maildir and in the
 * summary's change log alone (the snapshot is not rewritten), a file not
 * where the caller said is left alone (and once the summary is loaded, the
 * flags the caller cannot know are kept), and a staged delivery never
 * committed leaves no entry behind. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "store/maildir.h"
#include "store/store.h"
#include "store/summary.h"

enum { N = 60 }; /* enough for a change log within a quarter */

struct fixture {
	char *dir;
	struct fm_config *cfg;
	char *folder; /* the INBOX maildir */
	char *summary;
	char *base[N + 1];
};

static const uint32_t SEEN = FM_MAILDIR_SEEN;

/* Message i: unseen (new/) when i is even, seen otherwise; message N-1
 * also carries the keyword letter a, which no server knows. */
static uint32_t
first_flags(int i)
{
	uint32_t f = i % 2 == 0 ? 0 : SEEN;
	return i == N - 1 ? f | FM_MAILDIR_KEYWORD('a') : f;
}

static struct fm_store *
open_store(struct fixture *fx)
{
	struct fm_store_opts o = {
	    .cfg = fx->cfg, .data_dir = fx->dir, .wait_for_lock = false};
	struct fm_store *s = NULL;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_store_open(&o, &s, &err), 0);
	return s;
}

static char *
message(int i)
{
	return xasprintf("From: Q <q@example.org>\r\nSubject: quick %d\r\n"
	                 "Message-ID: <%d@quick>\r\n\r\nbody %d\r\n",
	                 i, i, i);
}

static int
setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	char tmpl[] = "/tmp/fm-quick-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	fx->dir = xstrdup(tmpl);
	char *conf = xasprintf("%s/config", tmpl);
	FILE *f = fopen(conf, "w");
	fputs("[account acct]\nemail = a@example.org\nhost = h.example.org\n",
	      f);
	fclose(f);
	struct fm_conf_diags diags;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_config_load(conf, &fx->cfg, &diags, &err), 0);
	fm_conf_diags_free(&diags);
	free(conf);
	fx->folder = fm_store_folder_dir(fx->dir, "acct", "INBOX");
	fx->summary = fm_path_join(fx->folder, ".fulmar-summary");
	struct fm_store *s = open_store(fx);
	for (int i = 0; i < N; i++) {
		char key[16];
		snprintf(key, sizeof(key), "k%d", i);
		char *m = message(i);
		assert_int_equal(fm_store_deliver(s, "acct", "INBOX", key, m,
		                                  strlen(m), first_flags(i),
		                                  &fx->base[i], &err),
		                 0);
		free(m);
	}
	assert_int_equal(fm_store_flush(s, &err), 0);
	fm_store_close(&s);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	char *cmd = xasprintf("rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	for (int i = 0; i <= N; i++)
		free(fx->base[i]);
	fm_config_free(&fx->cfg);
	free(fx->folder);
	free(fx->summary);
	free(fx->dir);
	free(fx);
	return 0;
}

/* The file of base in the maildir ("cur/NAME" or "new/NAME"), or NULL. */
static char *
file_of(const struct fixture *fx, const char *base)
{
	char *found = NULL;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_maildir_find(fx->folder, base, &found, &err), 0);
	return found;
}

static char *
slurp(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *buf = xmalloc(1 << 20);
	*len_r = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

/* The summary file and its log, as they are on disk (no rescan), agree
 * with the maildir: every file once, with its flags. */
static void
summary_matches_maildir(const struct fixture *fx, size_t want)
{
	struct fm_summary *sum = NULL;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_summary_load(fx->summary, &sum, &err), 0);
	assert_int_equal(fm_summary_count(sum), want);
	for (size_t i = 0; i < fm_summary_count(sum); i++) {
		const struct fm_summary_entry *e = fm_summary_at(sum, i);
		char *file = file_of(fx, e->base);
		if (file == NULL || strcmp(file, e->file) != 0)
			fail_msg("%s: summary says %s, maildir has %s", e->base,
			         e->file, file ? file : "nothing");
		assert_int_equal(e->flags, fm_maildir_flags_parse(file));
		free(file);
	}
	fm_summary_free(&sum);
}

static void
test_quick_changes_go_to_the_log(void **state)
{
	struct fixture *fx = *state;
	size_t snap_len;
	char *snap = slurp(fx->summary, &snap_len);
	struct fm_store *s = open_store(fx);
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_store_quick(s, "acct", "INBOX", &err), 0);
	uint32_t keep = ~FM_MAILDIR_STANDARD_FLAGS;
	/* Seen to flagged, in cur/; unseen to seen, out of new/; a flag
	 * change to what the file has already. */
	assert_int_equal(fm_store_sync_flags(s, "acct", "INBOX", fx->base[1],
	                                     SEEN, SEEN | FM_MAILDIR_FLAGGED,
	                                     keep, &err),
	                 0);
	assert_int_equal(fm_store_sync_flags(s, "acct", "INBOX", fx->base[2], 0,
	                                     SEEN, keep, &err),
	                 0);
	assert_int_equal(fm_store_sync_flags(s, "acct", "INBOX", fx->base[3],
	                                     SEEN, SEEN, keep, &err),
	                 0);
	/* Expunged on the server: one unseen (new/), one seen (cur/). */
	assert_int_equal(
	    fm_store_sync_remove(s, "acct", "INBOX", fx->base[4], 0, &err), 0);
	assert_int_equal(
	    fm_store_sync_remove(s, "acct", "INBOX", fx->base[5], SEEN, &err),
	    0);
	/* A download, staged and committed, then looked up. */
	char *m = message(N);
	assert_int_equal(fm_store_deliver_staged(s, "acct", "INBOX", "kN", m,
	                                         strlen(m), SEEN, &fx->base[N],
	                                         &err),
	                 0);
	free(m);
	assert_int_equal(fm_store_commit(s, &err), 0);
	struct fm_store_info info;
	assert_int_equal(
	    fm_store_lookup(s, "acct", "INBOX", fx->base[N], &info, &err), 1);
	char *want = file_of(fx, fx->base[N]);
	assert_string_equal(info.file, want);
	free(want);
	free(info.file);
	assert_int_equal(fm_store_flush(s, &err), 0);

	/* The snapshot is as it was: everything went to its log. */
	size_t now_len;
	char *now = slurp(fx->summary, &now_len);
	assert_int_equal(now_len, snap_len);
	assert_memory_equal(now, snap, snap_len);
	free(now);
	free(snap);
	char *file = file_of(fx, fx->base[1]);
	assert_int_equal(fm_maildir_flags_parse(file),
	                 SEEN | FM_MAILDIR_FLAGGED);
	free(file);
	file = file_of(fx, fx->base[2]);
	assert_true(strncmp(file, "cur/", 4) == 0);
	assert_int_equal(fm_maildir_flags_parse(file), SEEN);
	free(file);
	assert_null(file_of(fx, fx->base[4]));
	assert_null(file_of(fx, fx->base[5]));
	summary_matches_maildir(fx, N - 1);
	fm_store_close(&s);

	/* The store, opened again, sees the same. */
	s = open_store(fx);
	struct fm_store_msg *v;
	size_t n;
	assert_int_equal(fm_store_folder_msgs(s, "acct", "INBOX", &v, &n, &err),
	                 0);
	assert_int_equal(n, N - 1);
	fm_store_msgs_free(v, n);
	fm_store_close(&s);
}

static void
test_quick_wrong_flags_left_alone(void **state)
{
	struct fixture *fx = *state;
	struct fm_store *s = open_store(fx);
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_store_quick(s, "acct", "INBOX", &err), 0);
	uint32_t keep = ~FM_MAILDIR_STANDARD_FLAGS;
	/* The caller does not know the keyword letter: the file is not
	 * where it says, so the store leaves it alone and says so. */
	const char *b = fx->base[N - 1];
	char *before = file_of(fx, b);
	assert_int_equal(fm_store_sync_flags(s, "acct", "INBOX", b, SEEN,
	                                     SEEN | FM_MAILDIR_REPLIED, keep,
	                                     &err),
	                 1);
	assert_int_equal(
	    fm_store_sync_remove(s, "acct", "INBOX", b, SEEN, &err), 1);
	char *after = file_of(fx, b);
	assert_string_equal(after, before);
	free(after);
	/* Loaded (a lookup needs the summary): the caller's flags are
	 * applied, keeping the letter. */
	struct fm_store_info info;
	assert_int_equal(fm_store_lookup(s, "acct", "INBOX", b, &info, &err),
	                 1);
	assert_string_equal(info.file, before);
	free(info.file);
	free(before);
	assert_int_equal(fm_store_sync_flags(s, "acct", "INBOX", b, SEEN,
	                                     SEEN | FM_MAILDIR_REPLIED, keep,
	                                     &err),
	                 0);
	char *file = file_of(fx, b);
	assert_int_equal(fm_maildir_flags_parse(file),
	                 SEEN | FM_MAILDIR_REPLIED | FM_MAILDIR_KEYWORD('a'));
	free(file);
	assert_int_equal(
	    fm_store_sync_remove(s, "acct", "INBOX", fx->base[0], SEEN, &err),
	    0);
	assert_null(file_of(fx, fx->base[0]));
	assert_int_equal(fm_store_flush(s, &err), 0);
	fm_store_close(&s);
	summary_matches_maildir(fx, N - 1);
}

static void
test_quick_staged_rollback(void **state)
{
	struct fixture *fx = *state;
	struct fm_store *s = open_store(fx);
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_store_quick(s, "acct", "INBOX", &err), 0);
	char *m = message(N);
	assert_int_equal(fm_store_deliver_staged(s, "acct", "INBOX", "kN", m,
	                                         strlen(m), 0, &fx->base[N],
	                                         &err),
	                 0);
	free(m);
	/* Never committed: the flush drops it. */
	assert_int_equal(fm_store_flush(s, &err), 0);
	assert_null(file_of(fx, fx->base[N]));
	fm_store_close(&s);
	summary_matches_maildir(fx, N);
	char *tmp = fm_path_join(fx->folder, "tmp");
	DIR *d = opendir(tmp);
	assert_non_null(d);
	struct dirent *de;
	int left = 0;
	while ((de = readdir(d)) != NULL)
		left += de->d_name[0] != '.';
	closedir(d);
	free(tmp);
	assert_int_equal(left, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_quick_changes_go_to_the_log,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_quick_wrong_flags_left_alone,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_quick_staged_rollback, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

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
#include <sys/stat.h>
#include <unistd.h>

#include "store/maildir.h"
#include "store/summary.h"

static char *
tmpdir(void)
{
	char tmpl[] = "/tmp/fm-summary-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	return xstrdup(tmpl);
}

static void
rmrf(const char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void
put(struct fm_summary *s, const char *base, int64_t date, const char *subj)
{
	char file[128];
	snprintf(file, sizeof(file), "cur/%s:2,S", base);
	struct fm_summary_entry e = {
	    .base = base,
	    .file = file,
	    .flags = FM_MAILDIR_SEEN,
	    .date = date,
	    .size = 1234,
	    .from = "Zoë Ångström <zoe@example.org>",
	    .to = "a@b, c@d",
	    .subject = subj,
	    .message_id = "<m@x>",
	    .references = "<a@x> <b@x>",
	};
	fm_summary_put(s, &e);
}

/* Entries m000 .. m(n-1), dated by their number. */
static void
fill(struct fm_summary *s, int n)
{
	char base[32];
	for (int i = 0; i < n; i++) {
		snprintf(base, sizeof(base), "m%03d", i);
		put(s, base, i, "a subject long enough to make records count");
	}
}

static void
test_round_trip(void **state)
{
	char *dir = tmpdir();
	char *path = fm_path_join(dir, "summary");
	struct fm_summary *s = fm_summary_new();
	put(s, "b1", 100, "first subject with spaces");
	put(s, "b2", 300, "");
	put(s, "b3", 200, "100% % and\ttab");
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_summary_save(s, path, &err), 0);
	fm_summary_free(&s);
	assert_int_equal(fm_summary_load(path, &s, &err), 0);
	assert_int_equal(fm_summary_count(s), 3);
	const struct fm_summary_entry *e = fm_summary_find(s, "b3");
	assert_non_null(e);
	assert_string_equal(e->subject, "100% % and\ttab");
	assert_string_equal(e->from, "Zoë Ångström <zoe@example.org>");
	assert_string_equal(e->file, "cur/b3:2,S");
	assert_int_equal(e->date, 200);
	assert_int_equal(e->size, 1234);
	assert_int_equal(e->flags, FM_MAILDIR_SEEN);
	assert_null(e->in_reply_to);
	assert_null(fm_summary_find(s, "b2")->subject);
	size_t *order = fm_summary_by_date(s);
	assert_string_equal(fm_summary_at(s, order[0])->base, "b2");
	assert_string_equal(fm_summary_at(s, order[1])->base, "b3");
	assert_string_equal(fm_summary_at(s, order[2])->base, "b1");
	free(order);
	/* Changes to loaded entries, then save and load again. */
	assert_true(fm_summary_set_file(s, "b1", "cur/b1:2,FS",
	                                FM_MAILDIR_SEEN | FM_MAILDIR_FLAGGED));
	assert_true(fm_summary_remove(s, "b2"));
	assert_false(fm_summary_remove(s, "b2"));
	fm_summary_set_indexed(s, "b3", "cur/b3:2,S");
	assert_int_equal(fm_summary_save(s, path, &err), 0);
	fm_summary_free(&s);
	assert_int_equal(fm_summary_load(path, &s, &err), 0);
	assert_int_equal(fm_summary_count(s), 2);
	assert_string_equal(fm_summary_find(s, "b1")->file, "cur/b1:2,FS");
	assert_string_equal(fm_summary_find(s, "b3")->indexed, "cur/b3:2,S");
	assert_null(fm_summary_find(s, "b1")->indexed);
	assert_null(fm_summary_find(s, "b2"));
	fm_summary_free(&s);
	/* Missing: empty, not an error. */
	char *missing = fm_path_join(dir, "nope");
	assert_int_equal(fm_summary_load(missing, &s, &err), 0);
	assert_int_equal(fm_summary_count(s), 0);
	fm_summary_free(&s);
	free(missing);
	free(path);
	rmrf(dir);
	free(dir);
}

static void
test_every_truncation_and_flip(void **state)
{
	char *dir = tmpdir();
	char *path = fm_path_join(dir, "summary");
	struct fm_summary *s = fm_summary_new();
	put(s, "x1", 1, "one");
	put(s, "x2", 2, "two");
	struct fm_error err;
	assert_int_equal(fm_summary_save(s, path, &err), 0);
	fm_summary_free(&s);
	size_t len;
	char *data;
	assert_int_equal(fm_record_read_file(path, 1 << 20, &data, &len, &err),
	                 0);
	char *cut = fm_path_join(dir, "cut");
	for (size_t n = 0; n < len; n++) {
		FILE *f = fopen(cut, "w");
		fwrite(data, 1, n, f);
		fclose(f);
		fm_error_clear(&err);
		if (fm_summary_load(cut, &s, &err) == 0)
			fail_msg("a summary cut at %zu of %zu bytes loaded", n,
			         len);
		assert_int_equal(err.cls, FM_ERR_LOCAL);
		assert_non_null(strstr(err.user, cut));
	}
	for (size_t i = 0; i < len; i++) {
		data[i] ^= 0x20;
		FILE *f = fopen(cut, "w");
		fwrite(data, 1, len, f);
		fclose(f);
		data[i] ^= 0x20;
		if (fm_summary_load(cut, &s, &err) == 0) {
			/* Only a flip that leaves the file meaningful and
			 * identical in checksum could load: none may. */
			fail_msg("a summary with byte %zu flipped loaded", i);
		}
	}
	free(data);
	free(cut);
	free(path);
	rmrf(dir);
	free(dir);
}

static char *
slurp_file(const char *path, size_t *len_r)
{
	struct fm_error err;
	char *data = NULL;
	if (fm_record_read_file(path, 1 << 24, &data, len_r, &err) != 0)
		return NULL;
	return data;
}

static void
spit_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Small changes go to the change log; the snapshot stays as it was. */
static void
test_change_log(void **state)
{
	char *dir = tmpdir();
	char *path = fm_path_join(dir, "summary");
	char *log = fm_path_join(dir, "summary.log");
	struct fm_error err;
	fm_error_clear(&err);
	struct fm_summary *s = fm_summary_new();
	char base[32];
	fill(s, 200);
	assert_int_equal(fm_summary_save(s, path, &err), 0);
	assert_int_equal(access(log, F_OK), -1);
	size_t snap_len;
	char *snap = slurp_file(path, &snap_len);
	assert_non_null(snap);

	/* Chunk 1: a rename, a removal, a new entry. */
	assert_true(fm_summary_set_file(s, "m005", "cur/m005:2,FS",
	                                FM_MAILDIR_SEEN | FM_MAILDIR_FLAGGED));
	assert_true(fm_summary_remove(s, "m007"));
	put(s, "n001", 999, "new one");
	assert_int_equal(fm_summary_save(s, path, &err), 0);
	assert_int_equal(access(log, F_OK), 0);
	size_t len;
	char *now = slurp_file(path, &len);
	assert_int_equal(len, snap_len);
	assert_memory_equal(now, snap, len);
	free(now);
	size_t log1_len;
	char *log1 = slurp_file(log, &log1_len);
	fm_summary_free(&s);

	/* Loaded back: snapshot plus log. Chunk 2 from the loaded copy:
	 * the new entry goes again, an old one changes. */
	assert_int_equal(fm_summary_load(path, &s, &err), 0);
	assert_int_equal(fm_summary_count(s), 200);
	assert_string_equal(fm_summary_find(s, "m005")->file, "cur/m005:2,FS");
	assert_null(fm_summary_find(s, "m007"));
	assert_string_equal(fm_summary_find(s, "n001")->subject, "new one");
	assert_true(fm_summary_remove(s, "n001"));
	fm_summary_set_indexed(s, "m010", "cur/m010:2,S");
	assert_int_equal(fm_summary_save(s, path, &err), 0);
	fm_summary_free(&s);
	size_t log2_len;
	char *log2 = slurp_file(log, &log2_len);
	assert_true(log2_len > log1_len);
	assert_memory_equal(log2, log1, log1_len);
	assert_int_equal(fm_summary_load(path, &s, &err), 0);
	assert_int_equal(fm_summary_count(s), 199);
	assert_null(fm_summary_find(s, "n001"));
	assert_string_equal(fm_summary_find(s, "m010")->indexed,
	                    "cur/m010:2,S");
	fm_summary_free(&s);

	/* A log cut anywhere loads: whole chunks count, a torn one not. */
	for (size_t n = 0; n <= log2_len; n++) {
		spit_file(log, log2, n);
		fm_error_clear(&err);
		if (fm_summary_load(path, &s, &err) != 0)
			fail_msg("a log cut at %zu of %zu: %s", n, log2_len,
			         err.user);
		size_t want = n < log1_len ? 200 : n < log2_len ? 200 : 199;
		assert_int_equal(fm_summary_count(s), want);
		bool chunk1 = fm_summary_find(s, "n001") != NULL;
		assert_true(chunk1 == (n >= log1_len && n < log2_len));
		fm_summary_free(&s);
	}
	/* A torn second chunk is written over by the next save. */
	spit_file(log, log2, log1_len + (log2_len - log1_len) / 2);
	assert_int_equal(fm_summary_load(path, &s, &err), 0);
	assert_non_null(fm_summary_find(s, "n001"));
	put(s, "n002", 5, "after the tear");
	assert_int_equal(fm_summary_save(s, path, &err), 0);
	fm_summary_free(&s);
	assert_int_equal(fm_summary_load(path, &s, &err), 0);
	assert_non_null(fm_summary_find(s, "n001"));
	assert_string_equal(fm_summary_find(s, "n002")->subject,
	                    "after the tear");
	assert_int_equal(fm_summary_count(s), 201);

	/* Many changes: a new snapshot, and the log goes. */
	for (int i = 0; i < 150; i++) {
		snprintf(base, sizeof(base), "m%03d", i);
		fm_summary_set_indexed(s, base, "cur/x");
	}
	assert_int_equal(fm_summary_save(s, path, &err), 0);
	assert_int_equal(access(log, F_OK), -1);
	fm_summary_free(&s);
	/* A log of an older snapshot (a crash before its removal) is
	 * ignored. */
	spit_file(log, log2, log2_len);
	assert_int_equal(fm_summary_load(path, &s, &err), 0);
	assert_int_equal(fm_summary_count(s), 201);
	assert_string_equal(fm_summary_find(s, "m100")->indexed, "cur/x");
	assert_non_null(fm_summary_find(s, "n001"));
	fm_summary_free(&s);

	free(log1);
	free(log2);
	free(snap);
	free(log);
	free(path);
	rmrf(dir);
	free(dir);
}

/* Changes appended without loading the summary load as if applied, after
 * log chunks of a loaded save, and are refused when no snapshot exists or
 * the log would outgrow it. */
static void
test_append_unloaded(void **state)
{
	(void)state;
	char *dir = tmpdir();
	char *path = fm_path_join(dir, "summary");
	char *log = fm_path_join(dir, "summary.log");
	struct fm_error err;
	fm_error_clear(&err);
	struct fm_summary_change ch[4];
	struct fm_summary_entry e = {.base = "n001",
	                             .file = "cur/n001:2,S",
	                             .flags = FM_MAILDIR_SEEN,
	                             .date = 7,
	                             .size = 99,
	                             .subject = "delivered unloaded",
	                             .message_id = "<n@x>"};
	fm_summary_change_init(&ch[0], FM_SUMMARY_PUT, &e);
	/* No snapshot yet: the caller must load and save. */
	assert_int_equal(fm_summary_append(path, ch, 1, &err), 0);
	assert_int_equal(access(log, F_OK), -1);

	struct fm_summary *s = fm_summary_new();
	fill(s, 200);
	assert_int_equal(fm_summary_save(s, path, &err), 0);
	/* A chunk from a loaded save first. */
	assert_true(fm_summary_remove(s, "m001"));
	assert_int_equal(fm_summary_save(s, path, &err), 0);
	fm_summary_free(&s);

	struct fm_summary_entry f = {.base = "m005",
	                             .file = "cur/m005:2,FS",
	                             .flags =
	                                 FM_MAILDIR_SEEN | FM_MAILDIR_FLAGGED};
	fm_summary_change_init(&ch[1], FM_SUMMARY_FILE, &f);
	struct fm_summary_entry r = {.base = "m007"};
	fm_summary_change_init(&ch[2], FM_SUMMARY_REMOVE, &r);
	/* A file change for an entry the summary lacks is skipped. */
	struct fm_summary_entry g = {
	    .base = "zzz", .file = "cur/zzz:2,", .flags = 0};
	fm_summary_change_init(&ch[3], FM_SUMMARY_FILE, &g);
	assert_int_equal(fm_summary_append(path, ch, 4, &err), 1);

	assert_int_equal(fm_summary_load(path, &s, &err), 0);
	assert_int_equal(fm_summary_count(s), 199);
	assert_null(fm_summary_find(s, "m001"));
	assert_null(fm_summary_find(s, "m007"));
	assert_null(fm_summary_find(s, "zzz"));
	const struct fm_summary_entry *got = fm_summary_find(s, "m005");
	assert_string_equal(got->file, "cur/m005:2,FS");
	assert_int_equal(got->flags, FM_MAILDIR_SEEN | FM_MAILDIR_FLAGGED);
	assert_string_equal(got->subject,
	                    "a subject long enough to make records count");
	got = fm_summary_find(s, "n001");
	assert_non_null(got);
	assert_string_equal(got->subject, "delivered unloaded");
	assert_int_equal(got->size, 99);
	assert_int_equal(got->date, 7);
	/* The same changes applied to a loaded copy agree. */
	struct fm_summary *t = fm_summary_new();
	fill(t, 200);
	fm_summary_remove(t, "m001");
	fm_summary_apply(t, ch, 4);
	assert_int_equal(fm_summary_count(t), fm_summary_count(s));
	for (size_t i = 0; i < fm_summary_count(t); i++) {
		const struct fm_summary_entry *a = fm_summary_at(t, i);
		const struct fm_summary_entry *b = fm_summary_find(s, a->base);
		assert_non_null(b);
		assert_string_equal(a->file, b->file);
		assert_int_equal(a->flags, b->flags);
	}
	fm_summary_free(&t);
	fm_summary_free(&s);

	/* A log that would outgrow a quarter of the snapshot: refused, and
	 * nothing written. */
	size_t before;
	free(slurp_file(log, &before));
	enum { MANY = 200 };
	struct fm_summary_change *big = calloc(MANY, sizeof(*big));
	for (int i = 0; i < MANY; i++) {
		char b[32], fl[48];
		snprintf(b, sizeof(b), "m%03d", i);
		snprintf(fl, sizeof(fl), "cur/m%03d:2,FRS", i);
		struct fm_summary_entry x = {.base = b, .file = fl, .flags = 1};
		fm_summary_change_init(&big[i], FM_SUMMARY_PUT, &x);
	}
	assert_int_equal(fm_summary_append(path, big, MANY, &err), 0);
	size_t after;
	free(slurp_file(log, &after));
	assert_int_equal(after, before);
	for (int i = 0; i < MANY; i++)
		fm_summary_change_free(&big[i]);
	free(big);
	for (int i = 0; i < 4; i++)
		fm_summary_change_free(&ch[i]);
	free(log);
	free(path);
	rmrf(dir);
	free(dir);
}

/* A stand-in header reader: the Subject line, the date from the file. */
static int
parse_stub(void *ctx, const char *path, struct fm_summary_entry *e)
{
	int *calls = ctx;
	(*calls)++;
	static char subject[256];
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	subject[0] = '\0';
	char line[256];
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "Subject: ", 9) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(subject, sizeof(subject), "%s", line + 9);
		}
	fclose(f);
	e->subject = subject;
	e->date = 42;
	return 0;
}

static void
test_rescan_follows_the_maildir(void **state)
{
	char *dir = tmpdir();
	char *folder = fm_path_join(dir, "INBOX");
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_maildir_create(folder, &err), 0);
	char *p1, *p2, *p3;
	const char *m1 = "Subject: one\n\nbody\n", *m2 = "Subject: two\n\nb\n";
	assert_int_equal(fm_maildir_deliver(folder, m1, strlen(m1), &p1, &err),
	                 0);
	assert_int_equal(fm_maildir_deliver_cur(folder, m2, strlen(m2),
	                                        FM_MAILDIR_SEEN, &p2, &err),
	                 0);
	struct fm_summary *s = fm_summary_new();
	int calls = 0;
	bool changed;
	assert_int_equal(fm_summary_rescan(s, folder, false, parse_stub, &calls,
	                                   &changed, &err),
	                 0);
	assert_true(changed);
	assert_int_equal(calls, 2);
	assert_int_equal(fm_summary_count(s), 2);
	size_t bl;
	const char *b2 = fm_maildir_base(p2 + 4, &bl);
	char *base2 = xstrndup(b2, bl);
	assert_string_equal(fm_summary_find(s, base2)->subject, "two");
	assert_int_equal(fm_summary_find(s, base2)->flags, FM_MAILDIR_SEEN);
	/* Nothing changed: nothing read. */
	assert_int_equal(fm_summary_rescan(s, folder, false, parse_stub, &calls,
	                                   &changed, &err),
	                 0);
	assert_false(changed);
	assert_int_equal(calls, 2);
	/* Flags changed elsewhere (a rename), a message removed, one added:
	 * only the new one is read. */
	assert_int_equal(fm_maildir_set_flags(
	                     folder, p2, FM_MAILDIR_SEEN | FM_MAILDIR_FLAGGED,
	                     NULL, &p3, &err),
	                 0);
	char *full1 = fm_path_join(folder, p1);
	assert_int_equal(unlink(full1), 0);
	free(full1);
	char *p4;
	const char *m4 = "Subject: four\n\nb\n";
	/* Directory times have nanoseconds; still, make the change
	 * unmistakable on coarse file systems. */
	usleep(10000);
	assert_int_equal(fm_maildir_deliver(folder, m4, strlen(m4), &p4, &err),
	                 0);
	assert_int_equal(fm_summary_rescan(s, folder, false, parse_stub, &calls,
	                                   &changed, &err),
	                 0);
	assert_true(changed);
	assert_int_equal(calls, 3);
	assert_int_equal(fm_summary_count(s), 2);
	assert_int_equal(fm_summary_find(s, base2)->flags,
	                 FM_MAILDIR_SEEN | FM_MAILDIR_FLAGGED);
	assert_string_equal(fm_summary_find(s, base2)->file, p3);
	free(base2);
	free(p1);
	free(p2);
	free(p3);
	free(p4);
	fm_summary_free(&s);
	free(folder);
	rmrf(dir);
	free(dir);
}

static void
test_many(void **state)
{
	enum { N = 50000 };
	struct fm_summary *s = fm_summary_new();
	char base[32];
	for (int i = 0; i < N; i++) {
		snprintf(base, sizeof(base), "m%d", i);
		put(s, base, i % 977, "subject");
	}
	for (int i = 0; i < N; i += 2) {
		snprintf(base, sizeof(base), "m%d", i);
		assert_true(fm_summary_remove(s, base));
	}
	assert_int_equal(fm_summary_count(s), N / 2);
	for (int i = 1; i < N; i += 2) {
		snprintf(base, sizeof(base), "m%d", i);
		assert_non_null(fm_summary_find(s, base));
	}
	fm_summary_free(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_every_truncation_and_flip),
	    cmocka_unit_test(test_change_log),
	    cmocka_unit_test(test_append_unloaded),
	    cmocka_unit_test(test_rescan_follows_the_maildir),
	    cmocka_unit_test(test_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

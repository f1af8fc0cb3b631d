/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "sync/journal.h"

struct fixture {
	char *dir;
	char *path;
	char *tmp;
};

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	const char *t = getenv("TMPDIR");
	f->dir = xasprintf("%s/fm-journal-XXXXXX",
	                   t != NULL && t[0] == '/' ? t : "/tmp");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->path = fm_path_join(f->dir, "journal");
	f->tmp = xasprintf("%s.tmp", f->path);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	unlink(f->path);
	unlink(f->tmp);
	rmdir(f->dir);
	free(f->dir);
	free(f->path);
	free(f->tmp);
	free(f);
	return 0;
}

static char *
read_all(const char *path, size_t *len_r)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	char *data = xmalloc((size_t)st.st_size + 1);
	assert_int_equal(read(fd, data, (size_t)st.st_size), st.st_size);
	close(fd);
	*len_r = (size_t)st.st_size;
	return data;
}

static void
write_all(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static off_t
file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* ------------------------------------------------------------------------
 * Records: the i-th test record, and a copy of what replay hands back.
 */

struct copy {
	uint64_t seq;
	int op;
	int64_t time;
	char *s[6];
	uint32_t add, del;
};

struct collected {
	struct copy *v;
	size_t n, cap;
	int stop_after; /* -1: never */
};

static char *
dup_or_null(const char *s)
{
	return s == NULL ? NULL : xstrdup(s);
}

static int
collect(void *ctx, const struct fm_journal_record *r, struct fm_error *err)
{
	struct collected *c = ctx;
	if (c->stop_after >= 0 && c->n == (size_t)c->stop_after)
		return fm_error_set(err, FM_ERR_CANCELLED, "stop");
	if (c->n == c->cap) {
		c->cap = c->cap == 0 ? 16 : c->cap * 2;
		c->v = xreallocarray(c->v, c->cap, sizeof(*c->v));
	}
	struct copy *k = &c->v[c->n++];
	k->seq = r->seq;
	k->op = r->op;
	k->time = r->time;
	k->s[0] = dup_or_null(r->folder);
	k->s[1] = dup_or_null(r->base);
	k->s[2] = dup_or_null(r->to_folder);
	k->s[3] = dup_or_null(r->to_base);
	k->s[4] = dup_or_null(r->keywords_add);
	k->s[5] = dup_or_null(r->keywords_del);
	k->add = r->flags_add;
	k->del = r->flags_del;
	return 0;
}

static void
collected_free(struct collected *c)
{
	for (size_t i = 0; i < c->n; i++)
		for (int j = 0; j < 6; j++)
			free(c->v[i].s[j]);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/* Test record i: the ops rotate; strings carry spaces, commas, colons,
 * digits and UTF-8 so the framing is exercised. */
struct sample {
	struct fm_journal_record r;
	char folder[64], base[64], to_folder[64], to_base[64], kw[64];
};

static void
sample(struct sample *s, unsigned i)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->folder, sizeof(s->folder), "Archiv/Entw\u00fcrfe %u",
	         i % 5);
	snprintf(s->base, sizeof(s->base), "%u.M%uP7Q%u,x:y.host",
	         1700000000u + i, i, i);
	snprintf(s->to_folder, sizeof(s->to_folder), "Trash");
	snprintf(s->to_base, sizeof(s->to_base), "12:%u,", i);
	snprintf(s->kw, sizeof(s->kw), "$Label%u $Junk", i % 3);
	static const enum fm_journal_op ops[] = {
	    FM_JOURNAL_FLAGS, FM_JOURNAL_MOVE, FM_JOURNAL_DELETE,
	    FM_JOURNAL_NEW};
	s->r.op = ops[i % 4];
	s->r.folder = s->folder;
	s->r.base = s->base;
	s->r.time = 1700000000 + (int64_t)i;
	switch (s->r.op) {
	case FM_JOURNAL_FLAGS:
		s->r.flags_add = i & 0x3f;
		s->r.flags_del = (i >> 3) & 0x3f & ~s->r.flags_add;
		s->r.keywords_add = i % 8 == 0 ? s->kw : NULL;
		s->r.keywords_del = i % 8 == 4 ? s->kw : NULL;
		break;
	case FM_JOURNAL_MOVE:
		s->r.to_folder = s->to_folder;
		s->r.to_base = i % 2 == 0 ? s->to_base : NULL;
		break;
	default:
		break;
	}
}

static void
assert_str_eq_or_null(const char *got, const char *want)
{
	if (want == NULL)
		assert_null(got);
	else
		assert_string_equal(got, want);
}

/* The copy c is test record i with sequence number seq. */
static void
assert_sample(const struct copy *c, unsigned i, uint64_t seq)
{
	struct sample s;
	sample(&s, i);
	assert_int_equal(c->seq, seq);
	assert_int_equal(c->op, s.r.op);
	assert_int_equal(c->time, s.r.time);
	assert_str_eq_or_null(c->s[0], s.r.folder);
	assert_str_eq_or_null(c->s[1], s.r.base);
	assert_str_eq_or_null(c->s[2], s.r.to_folder);
	assert_str_eq_or_null(c->s[3], s.r.to_base);
	assert_str_eq_or_null(c->s[4], s.r.keywords_add);
	assert_str_eq_or_null(c->s[5], s.r.keywords_del);
	assert_int_equal(c->add, s.r.flags_add);
	assert_int_equal(c->del, s.r.flags_del);
}

static void
append_sample(struct fm_journal *j, unsigned i, uint64_t want_seq)
{
	struct sample s;
	sample(&s, i);
	struct fm_error err;
	assert_int_equal(fm_journal_append(j, &s.r, 1, &err), 0);
	assert_int_equal(s.r.seq, want_seq);
}

/* Replays path through a fresh handle, expecting test records
 * first..first+n-1 with sequence numbers seq0, seq0+1, ... */
static void
assert_replay(struct fm_journal *j, unsigned first, size_t n, uint64_t seq0)
{
	struct collected c = {.stop_after = -1};
	struct fm_error err;
	assert_int_equal(fm_journal_replay(j, collect, &c, &err), 0);
	assert_int_equal(c.n, n);
	for (size_t k = 0; k < n; k++)
		assert_sample(&c.v[k], first + (unsigned)k, seq0 + k);
	collected_free(&c);
	assert_int_equal(fm_journal_pending(j), n);
}

/* ------------------------------------------------------------------------ */

static void
test_append_replay_1000(void **state)
{
	struct fixture *f = *state;
	struct fm_journal *j = NULL;
	struct fm_error err;
	assert_int_equal(fm_journal_open(f->path, &j, &err), 0);
	assert_int_equal(fm_journal_last_seq(j), 0);
	assert_int_equal(fm_journal_pending(j), 0);
	assert_int_equal(file_size(f->path), 0);
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* 500 one at a time, then batches of 50 (one write, one fsync). */
	for (unsigned i = 0; i < 500; i++)
		append_sample(j, i, i + 1);
	for (unsigned i = 500; i < 1000; i += 50) {
		struct sample s[50];
		struct fm_journal_record r[50];
		for (unsigned k = 0; k < 50; k++) {
			sample(&s[k], i + k);
			r[k] = s[k].r;
		}
		assert_int_equal(fm_journal_append(j, r, 50, &err), 0);
		for (unsigned k = 0; k < 50; k++)
			assert_int_equal(r[k].seq, i + k + 1);
	}
	assert_int_equal(fm_journal_last_seq(j), 1000);
	assert_int_equal((off_t)fm_journal_size(j), file_size(f->path));
	assert_replay(j, 0, 1000, 1);

	/* A callback that stops stops the replay with its error. */
	struct collected c = {.stop_after = 3};
	assert_int_equal(fm_journal_replay(j, collect, &c, &err), -1);
	assert_int_equal(err.cls, FM_ERR_CANCELLED);
	assert_int_equal(c.n, 3);
	collected_free(&c);

	/* Reopened: the same records, numbering goes on. */
	fm_journal_close(&j);
	assert_null(j);
	assert_int_equal(fm_journal_open(f->path, &j, &err), 0);
	assert_int_equal(fm_journal_last_seq(j), 1000);
	assert_replay(j, 0, 1000, 1);
	append_sample(j, 1000, 1001);
	assert_replay(j, 0, 1001, 1);

	/* Time 0 is filled in; bad records write nothing. */
	struct sample s;
	sample(&s, 3);
	s.r.time = 0;
	assert_int_equal(fm_journal_append(j, &s.r, 1, &err), 0);
	assert_true(s.r.time > 1700000000);
	assert_int_equal(s.r.seq, 1002);
	off_t before = file_size(f->path);
	struct fm_journal_record bad[2];
	sample(&s, 1);
	bad[0] = s.r;
	bad[1] = s.r;
	bad[1].to_folder = NULL; /* a move needs a target */
	assert_int_equal(fm_journal_append(j, bad, 2, &err), -1);
	assert_int_equal(err.cls, FM_ERR_LOCAL);
	bad[1] = s.r;
	bad[1].base = "";
	assert_int_equal(fm_journal_append(j, bad, 2, &err), -1);
	bad[1] = s.r;
	bad[1].op = (enum fm_journal_op)'A'; /* not for callers */
	assert_int_equal(fm_journal_append(j, bad, 2, &err), -1);
	char *huge = xmalloc(FM_JOURNAL_STRING_MAX + 2);
	memset(huge, 'k', FM_JOURNAL_STRING_MAX + 1);
	huge[FM_JOURNAL_STRING_MAX + 1] = '\0';
	bad[1] = s.r;
	bad[1].keywords_del = huge;
	assert_int_equal(fm_journal_append(j, bad, 2, &err), -1);
	free(huge);
	assert_int_equal(file_size(f->path), before);
	assert_int_equal(fm_journal_last_seq(j), 1002);
	fm_journal_close(&j);
}

static void
test_torn_tail_every_offset(void **state)
{
	struct fixture *f = *state;
	struct fm_journal *j = NULL;
	struct fm_error err;
	assert_int_equal(fm_journal_open(f->path, &j, &err), 0);
	for (unsigned i = 0; i < 4; i++)
		append_sample(j, i, i + 1);
	size_t intact = (size_t)file_size(f->path);
	append_sample(j, 4, 5);
	fm_journal_close(&j);
	size_t len;
	char *data = read_all(f->path, &len);
	assert_true(len > intact + 60);

	for (size_t cut = intact; cut < len; cut++) {
		write_all(f->path, data, cut);
		assert_int_equal(fm_journal_open(f->path, &j, &err), 0);
		assert_int_equal(fm_journal_last_seq(j), 4);
		assert_int_equal(fm_journal_size(j), intact);
		assert_replay(j, 0, 4, 1);
		/* The next append cuts the torn bytes away first. */
		append_sample(j, 9, 5);
		struct collected c = {.stop_after = -1};
		assert_int_equal(fm_journal_replay(j, collect, &c, &err), 0);
		assert_int_equal(c.n, 5);
		assert_sample(&c.v[3], 3, 4);
		assert_sample(&c.v[4], 9, 5);
		collected_free(&c);
		assert_int_equal(file_size(f->path), (off_t)fm_journal_size(j));
		fm_journal_close(&j);
		/* And it all reads back after a reopen. */
		assert_int_equal(fm_journal_open(f->path, &j, &err), 0);
		assert_int_equal(fm_journal_pending(j), 5);
		fm_journal_close(&j);
	}

	/* A tail of zero bytes (the size reached the disk, the data did
	 * not) is a torn append too. */
	char *zeros = xcalloc(1, intact + 300);
	memcpy(zeros, data, intact);
	write_all(f->path, zeros, intact + 300);
	assert_int_equal(fm_journal_open(f->path, &j, &err), 0);
	assert_replay(j, 0, 4, 1);
	fm_journal_close(&j);
	free(zeros);
	free(data);
}

static void
test_damage_in_the_middle(void **state)
{
	struct fixture *f = *state;
	struct fm_journal *j = NULL;
	struct fm_error err;
	assert_int_equal(fm_journal_open(f->path, &j, &err), 0);
	size_t starts[6];
	for (unsigned i = 0; i < 5; i++) {
		starts[i] = (size_t)file_size(f->path);
		append_sample(j, i, i + 1);
	}
	starts[5] = (size_t)file_size(f->path);
	size_t len;
	char *data = read_all(f->path, &len);
	char offtext[64];

	/* Every byte of the middle record, flipped: the handle that is open
	 * refuses to replay, a new open refuses to open, both name the
	 * file and the offset of the record. */
	snprintf(offtext, sizeof(offtext), "at byte %zu", starts[2]);
	for (size_t i = starts[2]; i < starts[3]; i++) {
		data[i] ^= 0x01;
		write_all(f->path, data, len);
		struct collected c = {.stop_after = -1};
		fm_error_clear(&err);
		assert_int_equal(fm_journal_replay(j, collect, &c, &err), -1);
		assert_int_equal(c.n, 0);
		assert_int_equal(err.cls, FM_ERR_LOCAL);
		assert_non_null(strstr(err.user, f->path));
		assert_non_null(strstr(err.user, offtext));
		struct fm_journal *k = (struct fm_journal *)1;
		assert_int_equal(fm_journal_open(f->path, &k, &err), -1);
		assert_null(k);
		assert_non_null(strstr(err.user, f->path));
		assert_non_null(strstr(err.user, offtext));
		data[i] ^= 0x01;
	}
	/* A damaged last record is damage too, not a torn tail: it was
	 * complete and fsynced once. */
	snprintf(offtext, sizeof(offtext), "at byte %zu", starts[4]);
	for (size_t i = starts[4]; i < len; i += 7) {
		data[i] ^= 0x80;
		write_all(f->path, data, len);
		struct fm_journal *k = NULL;
		assert_int_equal(fm_journal_open(f->path, &k, &err), -1);
		assert_non_null(strstr(err.user, offtext));
		data[i] ^= 0x80;
	}
	/* Junk after the last record that is no record header. */
	char *junk = xmalloc(len + 10);
	memcpy(junk, data, len);
	memcpy(junk + len, "garbage!!\n", 10);
	write_all(f->path, junk, len + 10);
	snprintf(offtext, sizeof(offtext), "at byte %zu", len);
	struct fm_journal *k = NULL;
	assert_int_equal(fm_journal_open(f->path, &k, &err), -1);
	assert_non_null(strstr(err.user, offtext));
	free(junk);
	/* Intact again: all five. */
	write_all(f->path, data, len);
	assert_int_equal(fm_journal_open(f->path, &k, &err), 0);
	assert_replay(k, 0, 5, 1);
	fm_journal_close(&k);
	fm_journal_close(&j);
	free(data);
}

static void
test_ack_compact_crash(void **state)
{
	struct fixture *f = *state;
	struct fm_journal *j = NULL;
	struct fm_error err;
	assert_int_equal(fm_journal_open(f->path, &j, &err), 0);
	for (unsigned i = 0; i < 10; i++)
		append_sample(j, i, i + 1);
	assert_int_equal(fm_journal_ack(j, 4, &err), 0);
	assert_int_equal(fm_journal_acked(j), 4);
	assert_int_equal(fm_journal_last_seq(j), 11); /* the ack record */
	assert_replay(j, 4, 6, 5);
	/* Going back does nothing; going past the end is a bug. */
	assert_int_equal(fm_journal_ack(j, 2, &err), 0);
	assert_int_equal(fm_journal_acked(j), 4);
	assert_int_equal(fm_journal_ack(j, 12, &err), -1);
	assert_int_equal(err.cls, FM_ERR_LOCAL);

	/* The watermark survives a reopen (a crash after the ack). */
	fm_journal_close(&j);
	assert_int_equal(fm_journal_open(f->path, &j, &err), 0);
	assert_int_equal(fm_journal_acked(j), 4);
	assert_int_equal(fm_journal_last_seq(j), 11);
	assert_replay(j, 4, 6, 5);

	size_t old_len, new_len;
	char *old = read_all(f->path, &old_len);
	assert_int_equal(fm_journal_compact(j, &err), 0);
	char *new = read_all(f->path, &new_len);
	assert_true(new_len < old_len);
	assert_int_equal(access(f->tmp, F_OK), -1);
	assert_int_equal(fm_journal_acked(j), 4);
	assert_int_equal(fm_journal_last_seq(j), 11);
	assert_replay(j, 4, 6, 5);
	fm_journal_close(&j);

	/* Crash points of a compaction, each followed by a restart, which
	 * must replay records 5..10 exactly once and number on from 12:
	 * 1. tmp fully written, not renamed; 2. tmp half written;
	 * 3. renamed, directory not synced (the new file is in place) and
	 * the tmp name reused by nothing. */
	struct {
		const char *file;
		size_t file_len;
		const char *tmp;
		size_t tmp_len;
	} crashes[] = {
	    {old, old_len, new, new_len},
	    {old, old_len, new, new_len / 2},
	    {new, new_len, NULL, 0},
	    {old, old_len, "", 0},
	};
	for (size_t k = 0; k < FM_ARRAY_LEN(crashes); k++) {
		write_all(f->path, crashes[k].file, crashes[k].file_len);
		if (crashes[k].tmp != NULL)
			write_all(f->tmp, crashes[k].tmp, crashes[k].tmp_len);
		assert_int_equal(fm_journal_open(f->path, &j, &err), 0);
		assert_int_equal(access(f->tmp, F_OK), -1);
		assert_int_equal(fm_journal_acked(j), 4);
		assert_replay(j, 4, 6, 5);
		append_sample(j, 42, 12);
		struct collected c = {.stop_after = -1};
		assert_int_equal(fm_journal_replay(j, collect, &c, &err), 0);
		assert_int_equal(c.n, 7);
		assert_sample(&c.v[0], 4, 5);
		assert_sample(&c.v[6], 42, 12);
		collected_free(&c);
		fm_journal_close(&j);
	}

	/* Everything acknowledged and compacted: an empty journal that
	 * still knows where numbering stands. */
	write_all(f->path, new, new_len);
	assert_int_equal(fm_journal_open(f->path, &j, &err), 0);
	append_sample(j, 50, 12);
	assert_int_equal(fm_journal_ack(j, 12, &err), 0);
	assert_int_equal(fm_journal_pending(j), 0);
	assert_int_equal(fm_journal_compact(j, &err), 0);
	assert_replay(j, 0, 0, 0);
	assert_int_equal(fm_journal_last_seq(j), 13);
	fm_journal_close(&j);
	assert_int_equal(fm_journal_open(f->path, &j, &err), 0);
	assert_int_equal(fm_journal_last_seq(j), 13);
	assert_int_equal(fm_journal_acked(j), 12);
	assert_replay(j, 0, 0, 0);
	append_sample(j, 51, 14);
	assert_replay(j, 51, 1, 14);
	/* Compacting twice in a row changes nothing. */
	assert_int_equal(fm_journal_compact(j, &err), 0);
	assert_int_equal(fm_journal_compact(j, &err), 0);
	assert_replay(j, 51, 1, 14);
	fm_journal_close(&j);
	free(old);
	free(new);
}

static void
test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct fm_journal *j = (struct fm_journal *)1;
	struct fm_error err;
	char *nodir = fm_path_join(f->dir, "missing/journal");
	assert_int_equal(fm_journal_open(nodir, &j, &err), -1);
	assert_null(j);
	assert_int_equal(err.cls, FM_ERR_LOCAL);
	assert_non_null(strstr(err.user, nodir));
	free(nodir);
	/* A head record anywhere but at the start is damage. */
	assert_int_equal(fm_journal_open(f->path, &j, &err), 0);
	append_sample(j, 0, 1);
	assert_int_equal(fm_journal_ack(j, 1, &err), 0);
	assert_int_equal(fm_journal_compact(j, &err), 0);
	fm_journal_close(&j);
	size_t len;
	char *head = read_all(f->path, &len);
	char *twice = xmalloc(2 * len);
	memcpy(twice, head, len);
	memcpy(twice + len, head, len);
	write_all(f->path, twice, 2 * len);
	assert_int_equal(fm_journal_open(f->path, &j, &err), -1);
	assert_non_null(strstr(err.detail, "misplaced head"));
	free(twice);
	free(head);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_append_replay_1000, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_torn_tail_every_offset, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_damage_in_the_middle, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_ack_compact_crash, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

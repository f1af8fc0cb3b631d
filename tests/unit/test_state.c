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
#include "sync/state.h"

struct fixture {
	char *dir;
	char *path;
};

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	const char *t = getenv("TMPDIR");
	f->dir = xasprintf("%s/fm-state-XXXXXX",
	                   t != NULL && t[0] == '/' ? t : "/tmp");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->path = fm_path_join(f->dir, "INBOX.state");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char *tmp = xasprintf("%s.tmp", f->path);
	unlink(f->path);
	unlink(tmp);
	free(tmp);
	rmdir(f->dir);
	free(f->dir);
	free(f->path);
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

static void
put_ok(struct fm_state *s, uint32_t uid, const char *uidl, const char *base,
       uint32_t flags, const char *kw)
{
	struct fm_error err;
	struct fm_state_entry e = {
	    .uid = uid,
	    .uidl = uidl,
	    .first_seen = uidl != NULL ? 1700000000 + (int64_t)flags : 0,
	    .base = base,
	    .flags = flags,
	    .keywords = kw,
	};
	assert_int_equal(fm_state_put(s, &e, &err), 0);
}

static void
assert_str_or_null(const char *got, const char *want)
{
	if (want == NULL || want[0] == '\0')
		assert_null(got);
	else
		assert_string_equal(got, want);
}

/* Checks that a load of path fails as damaged, naming the file. */
static void
assert_damaged(const char *path, enum fm_state_kind kind)
{
	struct fm_state *s = (struct fm_state *)1;
	struct fm_error err;
	bool damaged = false;
	fm_error_clear(&err);
	assert_int_equal(fm_state_load(path, kind, &s, &damaged, &err), -1);
	assert_null(s);
	assert_true(damaged);
	assert_int_equal(err.cls, FM_ERR_LOCAL);
	assert_non_null(strstr(err.user, path));
	assert_non_null(strstr(err.user, "rebuilt"));
}

/* ------------------------------------------------------------------------ */

static void
test_missing_is_empty(void **state)
{
	struct fixture *f = *state;
	struct fm_state *s = NULL;
	struct fm_error err;
	bool damaged = true;
	assert_int_equal(
	    fm_state_load(f->path, FM_STATE_IMAP, &s, &damaged, &err), 0);
	assert_false(damaged);
	assert_non_null(s);
	assert_int_equal(fm_state_count(s), 0);
	assert_int_equal(fm_state_uidvalidity(s), 0);
	assert_int_equal(fm_state_kind(s), FM_STATE_IMAP);
	assert_null(fm_state_entry_at(s, 0));
	fm_state_free(&s);
	assert_null(s);
	fm_state_free(&s);
}

static void
test_round_trip_100000(void **state)
{
	enum { N = 100000 };
	struct fixture *f = *state;
	struct fm_state *s = fm_state_new(FM_STATE_IMAP);
	fm_state_set_uidvalidity(s, 4000000001u);
	fm_state_set_uidnext(s, 3 * N + 5);
	fm_state_set_highestmodseq(s, 9000000000000000001ull);
	/* Insert in a scrambled order; UIDs have gaps. */
	for (uint32_t k = 0; k < N; k++) {
		uint32_t i = (uint32_t)(((uint64_t)k * 7919) % N);
		char base[64], kw[64];
		snprintf(base, sizeof(base), "%u.M%uP1Q%u.host", 1700000000 + i,
		         i, i);
		snprintf(kw, sizeof(kw), "$Forwarded $Label%u", i % 7);
		put_ok(s, 3 * i + 1, NULL, base, (i * 2654435761u) & 0xffffffu,
		       i % 3 == 0 ? kw : NULL);
	}
	/* Strings that need escaping, and a message with no local file. */
	put_ok(s, 3 * N + 1, NULL, "odd %base-with space\ttab", 1, "-");
	put_ok(s, 3 * N + 2, NULL, "-", 2, "100%\x7f");
	put_ok(s, 3 * N + 3, NULL, NULL, 3, "");
	assert_int_equal(fm_state_count(s), N + 3);
	struct fm_error err;
	assert_int_equal(fm_state_save(s, f->path, &err), 0);

	struct fm_state *t = NULL;
	bool damaged = true;
	assert_int_equal(
	    fm_state_load(f->path, FM_STATE_IMAP, &t, &damaged, &err), 0);
	assert_false(damaged);
	assert_int_equal(fm_state_count(t), N + 3);
	assert_int_equal(fm_state_uidvalidity(t), 4000000001u);
	assert_int_equal(fm_state_uidnext(t), 3 * N + 5);
	assert_true(fm_state_highestmodseq(t) == 9000000000000000001ull);
	for (uint32_t i = 0; i < N; i++) {
		const struct fm_state_entry *a =
		    fm_state_find_uid(s, 3 * i + 1);
		const struct fm_state_entry *b =
		    fm_state_find_uid(t, 3 * i + 1);
		assert_non_null(a);
		assert_non_null(b);
		assert_int_equal(b->uid, 3 * i + 1);
		assert_string_equal(a->base, b->base);
		assert_int_equal(a->flags, b->flags);
		assert_str_or_null(b->keywords, a->keywords);
		assert_ptr_equal(fm_state_find_base(t, b->base), b);
		assert_null(fm_state_find_uid(t, 3 * i + 2));
	}
	const struct fm_state_entry *e = fm_state_find_uid(t, 3 * N + 1);
	assert_string_equal(e->base, "odd %base-with space\ttab");
	assert_string_equal(e->keywords, "-");
	e = fm_state_find_uid(t, 3 * N + 2);
	assert_string_equal(e->base, "-");
	assert_string_equal(e->keywords, "100%\x7f");
	e = fm_state_find_uid(t, 3 * N + 3);
	assert_null(e->base);
	assert_null(e->keywords);
	assert_null(fm_state_find_base(t, "nope"));
	/* Key order. */
	for (size_t i = 1; i < fm_state_count(t); i++)
		assert_true(fm_state_entry_at(t, i - 1)->uid <
		            fm_state_entry_at(t, i)->uid);
	/* Saving the loaded state gives the same bytes. */
	size_t len1, len2;
	char *one = read_all(f->path, &len1);
	assert_int_equal(fm_state_save(t, f->path, &err), 0);
	char *two = read_all(f->path, &len2);
	assert_int_equal(len1, len2);
	assert_memory_equal(one, two, len1);
	free(one);
	free(two);
	fm_state_free(&s);
	fm_state_free(&t);
}

static void
test_pop3_round_trip(void **state)
{
	struct fixture *f = *state;
	struct fm_state *s = fm_state_new(FM_STATE_POP3);
	put_ok(s, 0, "whqtswO00WBw418f9t5JxYwZ", "b1", 0x10, NULL);
	put_ok(s, 0, "-", "b2", 0, NULL);
	put_ok(s, 0, "uidl with %", NULL, 0, NULL); /* deleted locally */
	struct fm_error err;
	/* The wrong kind of key is refused and changes nothing. */
	struct fm_state_entry bad = {.uid = 5, .base = "b9"};
	assert_int_equal(fm_state_put(s, &bad, &err), -1);
	assert_int_equal(err.cls, FM_ERR_LOCAL);
	bad = (struct fm_state_entry){.uidl = "", .base = "b9"};
	assert_int_equal(fm_state_put(s, &bad, &err), -1);
	bad = (struct fm_state_entry){.uidl = "x", .first_seen = -1};
	assert_int_equal(fm_state_put(s, &bad, &err), -1);
	assert_int_equal(fm_state_count(s), 3);
	assert_int_equal(fm_state_save(s, f->path, &err), 0);

	struct fm_state *t = NULL;
	assert_int_equal(fm_state_load(f->path, FM_STATE_POP3, &t, NULL, &err),
	                 0);
	assert_int_equal(fm_state_kind(t), FM_STATE_POP3);
	assert_int_equal(fm_state_count(t), 3);
	const struct fm_state_entry *e =
	    fm_state_find_uidl(t, "whqtswO00WBw418f9t5JxYwZ");
	assert_non_null(e);
	assert_int_equal(e->first_seen, 1700000000 + 0x10);
	assert_string_equal(e->base, "b1");
	assert_int_equal(e->flags, 0x10);
	e = fm_state_find_uidl(t, "-");
	assert_string_equal(e->base, "b2");
	e = fm_state_find_uidl(t, "uidl with %");
	assert_null(e->base);
	assert_null(fm_state_find_uid(t, 1));
	/* strcmp order. */
	assert_string_equal(fm_state_entry_at(t, 0)->uidl, "-");
	assert_string_equal(fm_state_entry_at(t, 2)->uidl,
	                    "whqtswO00WBw418f9t5JxYwZ");
	/* An IMAP reader refuses a POP3 file. */
	assert_damaged(f->path, FM_STATE_IMAP);
	fm_state_free(&s);
	fm_state_free(&t);
}

static void
test_put_replace_remove(void **state)
{
	enum { N = 20000 };
	struct fm_state *s = fm_state_new(FM_STATE_IMAP);
	struct fm_error err;
	char base[32];
	for (uint32_t i = 1; i <= N; i++) {
		snprintf(base, sizeof(base), "b%u", i);
		put_ok(s, i, NULL, base, i, NULL);
	}
	/* Remove every third, in a scrambled order, to exercise the
	 * probing tables' back-shift. */
	for (uint32_t k = 0; k < N; k++) {
		uint32_t i = (uint32_t)(((uint64_t)k * 7919) % N) + 1;
		if (i % 3 == 0)
			assert_true(fm_state_remove_uid(s, i));
	}
	assert_false(fm_state_remove_uid(s, 3));
	assert_false(fm_state_remove_uidl(s, "x"));
	assert_int_equal(fm_state_count(s), N - N / 3);
	for (uint32_t i = 1; i <= N; i++) {
		snprintf(base, sizeof(base), "b%u", i);
		const struct fm_state_entry *e = fm_state_find_uid(s, i);
		if (i % 3 == 0) {
			assert_null(e);
			assert_null(fm_state_find_base(s, base));
		} else {
			assert_non_null(e);
			assert_int_equal(e->flags, i);
			assert_ptr_equal(fm_state_find_base(s, base), e);
		}
	}
	/* Replace: new flags and a new base; the old base is free again. */
	put_ok(s, 1, NULL, "renamed", 0x55, "$Junk");
	assert_int_equal(fm_state_count(s), N - N / 3);
	assert_null(fm_state_find_base(s, "b1"));
	const struct fm_state_entry *e = fm_state_find_base(s, "renamed");
	assert_non_null(e);
	assert_int_equal(e->uid, 1);
	assert_int_equal(e->flags, 0x55);
	assert_string_equal(e->keywords, "$Junk");
	put_ok(s, 1, NULL, NULL, 0, NULL);
	assert_null(fm_state_find_base(s, "renamed"));
	assert_null(fm_state_find_uid(s, 1)->base);
	/* A base name owned by another UID is refused. */
	struct fm_state_entry dup = {.uid = 2, .base = "b4"};
	assert_int_equal(fm_state_put(s, &dup, &err), -1);
	assert_int_equal(err.cls, FM_ERR_LOCAL);
	assert_non_null(strstr(err.user, "b4"));
	assert_string_equal(fm_state_find_uid(s, 2)->base, "b2");
	/* UID 0 and too long strings are refused. */
	struct fm_state_entry zero = {.uid = 0, .base = "z"};
	assert_int_equal(fm_state_put(s, &zero, &err), -1);
	char *huge = xmalloc(FM_STATE_STRING_MAX + 2);
	memset(huge, 'h', FM_STATE_STRING_MAX + 1);
	huge[FM_STATE_STRING_MAX + 1] = '\0';
	struct fm_state_entry big = {.uid = 99999, .base = huge};
	assert_int_equal(fm_state_put(s, &big, &err), -1);
	free(huge);
	/* Sorted iteration after removals. */
	size_t n = fm_state_count(s);
	for (size_t i = 1; i < n; i++)
		assert_true(fm_state_entry_at(s, i - 1)->uid <
		            fm_state_entry_at(s, i)->uid);
	/* Lookups still work after the sort rebuilt the tables. */
	assert_int_equal(fm_state_find_uid(s, N - 1)->flags, N - 1);
	fm_state_clear(s);
	assert_int_equal(fm_state_count(s), 0);
	assert_null(fm_state_find_uid(s, 2));
	assert_null(fm_state_find_base(s, "b2"));
	put_ok(s, 2, NULL, "b2", 0, NULL);
	assert_non_null(fm_state_find_base(s, "b2"));
	fm_state_free(&s);
}

static char *
small_file(const char *path, size_t *len_r)
{
	struct fm_state *s = fm_state_new(FM_STATE_IMAP);
	fm_state_set_uidvalidity(s, 1234);
	fm_state_set_uidnext(s, 12);
	fm_state_set_highestmodseq(s, 777);
	put_ok(s, 3, NULL, "1700000000.M1P2Q1R00.host", 0x10, NULL);
	put_ok(s, 5, NULL, "1700000000.M1P2Q2R00.host", 0x12, "$Junk x");
	put_ok(s, 11, NULL, NULL, 0, NULL);
	struct fm_error err;
	assert_int_equal(fm_state_save(s, path, &err), 0);
	fm_state_free(&s);
	return read_all(path, len_r);
}

static void
test_every_truncation(void **state)
{
	struct fixture *f = *state;
	size_t len;
	char *data = small_file(f->path, &len);
	assert_true(len > 100);
	for (size_t n = 0; n < len; n++) {
		write_all(f->path, data, n);
		assert_damaged(f->path, FM_STATE_IMAP);
	}
	/* Trailing junk is damage too. */
	char *more = xmalloc(len + 1);
	memcpy(more, data, len);
	more[len] = '\n';
	write_all(f->path, more, len + 1);
	assert_damaged(f->path, FM_STATE_IMAP);
	free(more);
	/* The whole file loads. */
	write_all(f->path, data, len);
	struct fm_state *s = NULL;
	struct fm_error err;
	assert_int_equal(fm_state_load(f->path, FM_STATE_IMAP, &s, NULL, &err),
	                 0);
	assert_int_equal(fm_state_count(s), 3);
	assert_int_equal(fm_state_uidnext(s), 12);
	assert_int_equal(fm_state_highestmodseq(s), 777);
	assert_string_equal(fm_state_find_uid(s, 5)->keywords, "$Junk x");
	fm_state_free(&s);
	free(data);
}

static void
test_every_flipped_byte(void **state)
{
	struct fixture *f = *state;
	size_t len;
	char *data = small_file(f->path, &len);
	static const unsigned char masks[] = {0x01, 0x20, 0x80, 0xff};
	for (size_t i = 0; i < len; i++) {
		for (size_t m = 0; m < FM_ARRAY_LEN(masks); m++) {
			data[i] ^= (char)masks[m];
			write_all(f->path, data, len);
			assert_damaged(f->path, FM_STATE_IMAP);
			data[i] ^= (char)masks[m];
		}
	}
	free(data);
}

static void
test_bad_versions(void **state)
{
	struct fixture *f = *state;
	/* A well-formed file of another version is refused, not guessed. */
	static const char v2[] = "fulmar-state 2 imap 0 0 crc32:00000000\n";
	write_all(f->path, v2, sizeof(v2) - 1);
	assert_damaged(f->path, FM_STATE_IMAP);
	/* A body without the counters, checksum right. */
	static const char empty[] = "fulmar-state 1 imap 0 0 crc32:00000000\n";
	write_all(f->path, empty, sizeof(empty) - 1);
	assert_damaged(f->path, FM_STATE_IMAP);
	struct fm_error err;
	bool damaged = true;
	struct fm_state *s = NULL;
	/* A directory is an I/O error, not damage. */
	assert_int_equal(
	    fm_state_load(f->dir, FM_STATE_IMAP, &s, &damaged, &err), -1);
	assert_false(damaged);
	assert_null(s);
	assert_int_equal(err.cls, FM_ERR_LOCAL);
}

static void
test_atomic_write(void **state)
{
	struct fixture *f = *state;
	size_t len_a;
	char *a = small_file(f->path, &len_a);
	char *tmp = xasprintf("%s.tmp", f->path);

	/* A save that died before its rename leaves FILE.tmp (whole or
	 * half written) and the old FILE, which still loads. */
	struct fm_state *b = fm_state_new(FM_STATE_IMAP);
	fm_state_set_uidnext(b, 99);
	put_ok(b, 42, NULL, "new-base", 0, NULL);
	write_all(tmp, "fulmar-state 1 imap 1 9", 23);
	struct fm_state *s = NULL;
	struct fm_error err;
	assert_int_equal(fm_state_load(f->path, FM_STATE_IMAP, &s, NULL, &err),
	                 0);
	assert_int_equal(fm_state_uidnext(s), 12);
	assert_int_equal(fm_state_count(s), 3);
	fm_state_free(&s);

	/* The next save goes over the stray tmp and leaves none. */
	assert_int_equal(fm_state_save(b, f->path, &err), 0);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(fm_state_load(f->path, FM_STATE_IMAP, &s, NULL, &err),
	                 0);
	assert_int_equal(fm_state_uidnext(s), 99);
	assert_int_equal(fm_state_count(s), 1);
	assert_string_equal(fm_state_find_uid(s, 42)->base, "new-base");
	fm_state_free(&s);

	/* A save that cannot write fails, names the file and leaves the
	 * old one alone. */
	char *nodir = fm_path_join(f->dir, "missing/INBOX.state");
	assert_int_equal(fm_state_save(b, nodir, &err), -1);
	assert_int_equal(err.cls, FM_ERR_LOCAL);
	assert_non_null(strstr(err.user, nodir));
	free(nodir);
	assert_int_equal(chmod(f->dir, 0500), 0);
	if (access(f->dir, W_OK) != 0) { /* root may write anyway */
		assert_int_equal(fm_state_save(b, f->path, &err), -1);
		assert_non_null(strstr(err.user, f->path));
	}
	assert_int_equal(chmod(f->dir, 0700), 0);
	assert_int_equal(fm_state_load(f->path, FM_STATE_IMAP, &s, NULL, &err),
	                 0);
	assert_int_equal(fm_state_uidnext(s), 99);
	fm_state_free(&s);
	fm_state_free(&b);
	free(tmp);
	free(a);
}

/* The state as text, for comparing two of them. */
static char *
dump(struct fm_state *s)
{
	struct fm_buf b;
	fm_buf_init(&b, SIZE_MAX / 2);
	fm_buf_printf(&b, "%u %u %llu\n", fm_state_uidvalidity(s),
	              fm_state_uidnext(s),
	              (unsigned long long)fm_state_highestmodseq(s));
	for (size_t i = 0; i < fm_state_count(s); i++) {
		const struct fm_state_entry *e = fm_state_entry_at(s, i);
		fm_buf_printf(&b, "%u %s %lld %x %s %s\n", e->uid,
		              e->uidl ? e->uidl : "-", (long long)e->first_seen,
		              e->flags, e->base ? e->base : "-",
		              e->keywords ? e->keywords : "-");
	}
	return b.data;
}

static char *
dump_loaded(const char *path)
{
	struct fm_state *s = NULL;
	struct fm_error err;
	fm_error_clear(&err);
	bool dmg;
	if (fm_state_load(path, FM_STATE_IMAP, &s, &dmg, &err) != 0)
		fail_msg("load: %s", err.user);
	char *d = dump(s);
	fm_state_free(&s);
	return d;
}

/* Small changes go to the change log, which a crash may cut anywhere:
 * the state loads as it was after some whole number of saves. */
static void
test_change_log(void **state)
{
	struct fixture *f = *state;
	char *log = xasprintf("%s.log", f->path);
	struct fm_error err;
	fm_error_clear(&err);
	struct fm_state *s = fm_state_new(FM_STATE_IMAP);
	fm_state_set_uidvalidity(s, 7);
	fm_state_set_uidnext(s, 1001);
	char base[32];
	for (uint32_t u = 1; u <= 1000; u++) {
		snprintf(base, sizeof(base), "b%u", u);
		put_ok(s, u, NULL, base, 0, u % 10 == 0 ? "$Junk" : NULL);
	}
	assert_int_equal(fm_state_save(s, f->path, &err), 0);
	assert_int_equal(access(log, F_OK), -1);
	size_t snap_len, len;
	char *snap = read_all(f->path, &snap_len);
	char *d0 = dump(s);

	/* Save 1: flags, a removal, a new entry, counters. */
	put_ok(s, 5, NULL, "b5", 1, NULL);
	assert_true(fm_state_remove_uid(s, 6));
	put_ok(s, 1001, NULL, "b1001", 2, "x y");
	fm_state_set_uidnext(s, 1002);
	fm_state_set_highestmodseq(s, 99);
	assert_int_equal(fm_state_save(s, f->path, &err), 0);
	char *now = read_all(f->path, &len);
	assert_int_equal(len, snap_len);
	assert_memory_equal(now, snap, len);
	free(now);
	char *d1 = dump(s);
	size_t log1_len;
	char *log1 = read_all(log, &log1_len);
	/* Save 2: two entries trade base names, and one changes back. */
	assert_true(fm_state_remove_uid(s, 8));
	assert_true(fm_state_remove_uid(s, 9));
	put_ok(s, 8, NULL, "b9", 0, NULL);
	put_ok(s, 9, NULL, "b8", 0, NULL);
	put_ok(s, 5, NULL, "b5", 0, NULL);
	assert_int_equal(fm_state_save(s, f->path, &err), 0);
	char *d2 = dump(s);
	size_t log2_len;
	char *log2 = read_all(log, &log2_len);
	assert_true(log2_len > log1_len);
	fm_state_free(&s);
	char *got = dump_loaded(f->path);
	assert_string_equal(got, d2);
	free(got);

	for (size_t n = 0; n <= log2_len; n++) {
		write_all(log, log2, n);
		got = dump_loaded(f->path);
		const char *want = n < log1_len ? d0 : n < log2_len ? d1 : d2;
		if (strcmp(got, want) != 0)
			fail_msg("a log cut at %zu of %zu loads wrongly", n,
			         log2_len);
		free(got);
	}
	/* A save after a torn chunk writes over it. */
	write_all(log, log2, log1_len + 5);
	bool dmg;
	assert_int_equal(fm_state_load(f->path, FM_STATE_IMAP, &s, &dmg, &err),
	                 0);
	put_ok(s, 2000, NULL, "b2000", 0, NULL);
	char *d3 = dump(s);
	assert_int_equal(fm_state_save(s, f->path, &err), 0);
	got = dump_loaded(f->path);
	assert_string_equal(got, d3);
	free(got);
	/* A cleared state (a new UIDVALIDITY) is written whole. */
	fm_state_clear(s);
	put_ok(s, 1, NULL, "b1", 0, NULL);
	assert_int_equal(fm_state_save(s, f->path, &err), 0);
	assert_int_equal(access(log, F_OK), -1);
	char *d4 = dump(s);
	fm_state_free(&s);
	/* A log of an older snapshot is ignored. */
	write_all(log, log2, log2_len);
	got = dump_loaded(f->path);
	assert_string_equal(got, d4);
	free(got);
	unlink(log);

	free(d0);
	free(d1);
	free(d2);
	free(d3);
	free(d4);
	free(log1);
	free(log2);
	free(snap);
	free(log);
}

/* ------------------------------------------------------------------------
 * Files written by hand, checksums right: what a load accepts and how it
 * says what it refuses.
 */

static const char counters[] = "uidvalidity 1\nuidnext 9\nhighestmodseq 0\n";

/* Writes a snapshot of kind (e.g. "imap") with count entries and the
 * body (len bytes; -1: strlen); returns its change log's id. */
static char *
write_snapshot(const char *path, const char *kind, unsigned count,
               const char *body, size_t len)
{
	if (len == (size_t)-1)
		len = strlen(body);
	char digest[65];
	fm_record_digest(body, len, digest);
	char *head = xasprintf("fulmar-state 1 %s %u %zu %s\n", kind, count,
	                       len, digest);
	size_t hl = strlen(head);
	char *all = xmalloc(hl + len);
	memcpy(all, head, hl);
	memcpy(all + hl, body, len);
	write_all(path, all, hl + len);
	free(all);
	free(head);
	return xasprintf("%s %u %zu %s", kind, count, len, digest);
}

/* Writes path's change log following id, one chunk per string of chunks
 * (NULL-terminated). */
static void
write_log(const char *path, const char *id, const char *const *chunks)
{
	struct fm_buf b;
	fm_buf_init(&b, SIZE_MAX / 2);
	fm_buf_printf(&b, "fulmar-log 1 %s\n", id);
	for (size_t i = 0; chunks[i] != NULL; i++) {
		char digest[65];
		fm_record_digest(chunks[i], strlen(chunks[i]), digest);
		fm_buf_printf(&b, "chunk %zu %s\n%s", strlen(chunks[i]), digest,
		              chunks[i]);
	}
	char *log = xasprintf("%s.log", path);
	write_all(log, b.data, b.len);
	free(log);
	fm_buf_free(&b);
}

/* Checks that every entry of s is found by its key and its base name. */
static void
assert_findable(struct fm_state *s)
{
	for (size_t i = 0; i < fm_state_count(s); i++) {
		const struct fm_state_entry *e = fm_state_entry_at(s, i);
		if (fm_state_kind(s) == FM_STATE_IMAP)
			assert_ptr_equal(fm_state_find_uid(s, e->uid), e);
		else
			assert_ptr_equal(fm_state_find_uidl(s, e->uidl), e);
		if (e->base != NULL)
			assert_ptr_equal(fm_state_find_base(s, e->base), e);
	}
}

/* What a load of path makes of it: "ok" and the state as text, or
 * "damaged: " and the detail without the path. */
static char *
load_result(const char *path, enum fm_state_kind kind)
{
	struct fm_state *s = NULL;
	struct fm_error err;
	fm_error_clear(&err);
	bool dmg = false;
	if (fm_state_load(path, kind, &s, &dmg, &err) < 0) {
		assert_true(dmg);
		assert_null(s);
		size_t pl = strlen(path);
		assert_int_equal(strncmp(err.detail, path, pl), 0);
		assert_memory_equal(err.detail + pl, ": ", 2);
		return xasprintf("damaged: %s", err.detail + pl + 2);
	}
	assert_findable(s);
	char *d = dump(s);
	char *r = xasprintf("ok\n%s", d);
	free(d);
	fm_state_free(&s);
	return r;
}

struct load_case {
	const char *kind; /* "imap" or "pop3" */
	unsigned count;
	const char *entries; /* after the counters */
	const char *want;    /* load_result() without its "ok\n" */
};

static void
check_case(const char *path, const struct load_case *c)
{
	char *body = xasprintf("%s%s", counters, c->entries);
	free(write_snapshot(path, c->kind, c->count, body, (size_t)-1));
	free(body);
	char *got = load_result(
	    path, strcmp(c->kind, "imap") == 0 ? FM_STATE_IMAP : FM_STATE_POP3);
	const char *g = strncmp(got, "ok\n", 3) == 0 ? got + 3 : got;
	if (strcmp(g, c->want) != 0)
		fail_msg("%s %u \"%s\": got \"%s\", want \"%s\"", c->kind,
		         c->count, c->entries, g, c->want);
	free(got);
}

static void
test_hand_written_bodies(void **state)
{
	struct fixture *f = *state;
	static const struct load_case cases[] = {
	    {"imap", 0, "", "1 9 0\n"},
	    {"imap", 2, "1 0 0 a -\n2 0 1f b k%20w\n",
	     "1 9 0\n1 - 0 0 a -\n2 - 0 1f b k w\n"},
	    {"imap", 1, "4294967295 0 ffffffff %2D %25\n",
	     "1 9 0\n4294967295 - 0 ffffffff - %\n"},
	    /* IMAP entries may carry a first-seen time. */
	    {"imap", 1, "1 9223372036854775807 0 a -\n",
	     "1 9 0\n1 - 9223372036854775807 0 a -\n"},
	    /* Out of order: loaded, and handed out in order. */
	    {"imap", 3, "5 0 0 a -\n2 0 0 b -\n9 0 0 - -\n",
	     "1 9 0\n2 - 0 0 b -\n5 - 0 0 a -\n9 - 0 0 - -\n"},
	    /* A key twice: the later line wins (the count is of lines). */
	    {"imap", 3, "1 0 0 a -\n2 0 0 b -\n1 0 3 c x\n",
	     "1 9 0\n1 - 0 3 c x\n2 - 0 0 b -\n"},
	    {"imap", 2, "1 0 0 a -\n1 0 0 a -\n", "1 9 0\n1 - 0 0 a -\n"},
	    /* Bad numbers. */
	    {"imap", 1, "01 0 0 a -\n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "4294967296 0 0 a -\n",
	     "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 9223372036854775808 0 a -\n",
	     "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 12345678901234567890 0 a -\n",
	     "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 00 0 a -\n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 0 1F a -\n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 0 100000000 a -\n",
	     "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 0 -1 a -\n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "+1 0 0 a -\n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "x 0 0 a -\n", "damaged: bad entry at body line 4"},
	    /* Fields: too few, too many, empty. */
	    {"imap", 1, "1 0 0 a\n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 0 0 a - x\n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 0 0 a - \n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "1  0 0 a -\n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 0 0  -\n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 0 0 a \n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "\n", "damaged: bad entry at body line 4"},
	    /* Strings fm_record_put() would not write. */
	    {"imap", 1, "1 0 0 a\tb -\n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 0 0 a\rb -\n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 0 0 a\x7f -\n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 0 0 a%2 -\n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 0 0 a% -\n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 0 0 a%00 -\n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 0 0 a%2d -\n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 0 0 a%G0 -\n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 0 0 a -%\n", "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 0 0 %41%e2%82%ac -\n",
	     "damaged: bad entry at body line 4"},
	    {"imap", 1, "1 0 0 %41%E2%82%AC%2D -\n",
	     "1 9 0\n1 - 0 0 A\xe2\x82\xac- -\n"},
	    {"imap", 1, "1 0 0 \xc3\xa9t\xc3\xa9 \xff\n",
	     "1 9 0\n1 - 0 0 \xc3\xa9t\xc3\xa9 \xff\n"},
	    /* Well formed, but no entry fm_state_put() takes. */
	    {"imap", 1, "0 0 0 a -\n",
	     "damaged: invalid or duplicate entry at body line 4"},
	    {"imap", 2, "1 0 0 a -\n2 0 0 a -\n",
	     "damaged: invalid or duplicate entry at body line 5"},
	    {"imap", 2, "2 0 0 a -\n1 0 0 a -\n",
	     "damaged: invalid or duplicate entry at body line 5"},
	    {"imap", 3, "1 0 0 a -\n2 0 0 b -\n1 0 0 b -\n",
	     "damaged: invalid or duplicate entry at body line 6"},
	    /* The first fault found is the one named. */
	    {"imap", 2, "1 0 0 a -\n2 0 0 a -\n01 0 0 c -\n",
	     "damaged: invalid or duplicate entry at body line 5"},
	    {"imap", 2, "1 0 0 a -\n01 0 0 a -\n",
	     "damaged: bad entry at body line 5"},
	    /* Lines and counts. */
	    {"imap", 2, "1 0 0 a -\n2 0 0 b -",
	     "damaged: last line unterminated at body line 5"},
	    {"imap", 2, "1 0 0 a -\n01 0 0 b -",
	     "damaged: last line unterminated at body line 5"},
	    {"imap", 3, "1 0 0 a -\n2 0 0 b -\n",
	     "damaged: entry count differs from header"},
	    {"imap", 1, "1 0 0 a -\n2 0 0 b -\n",
	     "damaged: entry count differs from header"},
	    /* A count no body of this size can hold. */
	    {"imap", 4000000000u, "1 0 0 a -\n",
	     "damaged: entry count differs from header"},
	    /* POP3: the key is an escaped UIDL. */
	    {"pop3", 3, "b%20c 1700000000 10 b1 -\nab 0 0 - -\n%2D 5 0 b2 k\n",
	     "1 9 0\n0 - 5 0 b2 k\n0 ab 0 0 - -\n0 b c 1700000000 10 b1 -\n"},
	    {"pop3", 2, "a 0 0 x -\na 0 1 y -\n", "1 9 0\n0 a 0 1 y -\n"},
	    {"pop3", 1, "- 0 0 x -\n", "damaged: bad entry at body line 4"},
	    {"pop3", 1, "a%0 0 0 x -\n", "damaged: bad entry at body line 4"},
	    {"pop3", 1, "1 0 x -\n", "damaged: bad entry at body line 4"},
	    {"pop3", 2, "a 0 0 x -\nb 0 0 x -\n",
	     "damaged: invalid or duplicate entry at body line 5"},
	    /* The other kind's file. */
	    {"pop3", 1, "1 0 0 a -\n", "1 9 0\n0 1 0 0 a -\n"},
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(cases); i++)
		check_case(f->path, &cases[i]);
	free(write_snapshot(f->path, "imap", 0, counters, (size_t)-1));
	char *got = load_result(f->path, FM_STATE_POP3);
	assert_string_equal(got, "damaged: bad header");
	free(got);
}

/* Counter lines, NUL bytes and strings at the length limit. */
static void
test_hand_written_edges(void **state)
{
	struct fixture *f = *state;
#define RAW(count, body, want)                                                 \
	{                                                                      \
		count, body, sizeof(body) - 1, want                            \
	}
	static const struct {
		unsigned count;
		const char *body;
		size_t len;
		const char *want;
	} raw[] = {
	    RAW(0, "uidvalidity 1\nuidnxt 9\nhighestmodseq 0\n",
	        "damaged: bad counter at body line 2"),
	    RAW(0, "uidvalidity 1\nuidnext 9\n",
	        "damaged: entry count differs from header"),
	    RAW(0, "uidvalidity 4294967296\nuidnext 9\nhighestmodseq 0\n",
	        "damaged: bad counter at body line 1"),
	    RAW(0,
	        "uidvalidity 1\nuidnext 9\nhighestmodseq 9223372036854775807\n",
	        "ok\n1 9 9223372036854775807\n"),
	    RAW(0, "uidvalidity 1\nuidnext 9\nhighestmodseq 0 \n",
	        "damaged: bad counter at body line 3"),
	    RAW(1, "uidvalidity 1\nuidnext 9\nhighestmodseq 0\n1 0 0 a\0 -\n",
	        "damaged: NUL byte at body line 4"),
	    RAW(1, "uidvalidity 1\nuidnext 9\nhighestmodseq 0\n1 0 0 a -\0",
	        "damaged: last line unterminated at body line 4"),
	    RAW(1, "uidvalidity 1\nuidnext 9\nhighestmodseq 0\n1 0 0 a -\0\n",
	        "damaged: NUL byte at body line 4"),
	    RAW(2,
	        "uidvalidity 1\nuidnext 9\nhighestmodseq 0\n01 0 0 a -\n"
	        "2 0 0 b\0 -\n",
	        "damaged: bad entry at body line 4"),
	    RAW(2,
	        "uidvalidity 1\nuidnext 9\nhighestmodseq 0\n1 0 0 a -\n"
	        "2 0 0 b\0 -\n3 0 0 b -\n",
	        "damaged: NUL byte at body line 5"),
	    RAW(0, "uidvalidity 1\0\nuidnext 9\nhighestmodseq 0\n",
	        "damaged: NUL byte at body line 1"),
	};
#undef RAW
	for (size_t i = 0; i < FM_ARRAY_LEN(raw); i++) {
		free(write_snapshot(f->path, "imap", raw[i].count, raw[i].body,
		                    raw[i].len));
		char *got = load_result(f->path, FM_STATE_IMAP);
		if (strcmp(got, raw[i].want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, got,
			         raw[i].want);
		free(got);
	}
	/* FM_STATE_STRING_MAX bytes are fine, as written or escaped; one
	 * more is not an entry fm_state_put() takes. */
	enum { M = FM_STATE_STRING_MAX };
	char *plain = xmalloc(M + 2), *esc = xmalloc(3 * M + 4);
	memset(plain, 'p', M + 1);
	plain[M + 1] = '\0';
	for (size_t i = 0; i <= M; i++)
		memcpy(esc + 3 * i, "%25", 3);
	esc[3 * M + 3] = '\0';
	for (int over = 0; over <= 1; over++) {
		char *cut = xstrdup(plain), *ecut = xstrdup(esc);
		cut[M + over] = '\0';
		ecut[3 * (M + over)] = '\0';
		char *body = xasprintf("%s1 0 0 %s %s\n2 0 0 - %s\n", counters,
		                       cut, ecut, cut);
		free(write_snapshot(f->path, "imap", 2, body, (size_t)-1));
		char *got = load_result(f->path, FM_STATE_IMAP);
		if (over)
			assert_string_equal(got, "damaged: invalid or "
			                         "duplicate entry at body "
			                         "line 4");
		else
			assert_int_equal(strncmp(got, "ok\n", 3), 0);
		free(got);
		free(body);
		free(cut);
		free(ecut);
	}
	free(plain);
	free(esc);
}

struct log_case {
	const char *chunks[4];
	const char *want;
};

/* Change logs written by hand over one snapshot. */
static void
test_hand_written_logs(void **state)
{
	struct fixture *f = *state;
	static const char snap[] = "uidvalidity 1\nuidnext 9\nhighestmodseq 0\n"
	                           "1 0 0 b1 -\n2 0 0 b2 -\n3 0 0 b3 k\n"
	                           "4 0 0 b4 -\n5 0 0 b5 -\n";
	static const char base[] = "1 9 0\n1 - 0 0 b1 -\n2 - 0 0 b2 -\n"
	                           "3 - 0 0 b3 k\n4 - 0 0 b4 -\n"
	                           "5 - 0 0 b5 -\n";
	static const struct log_case cases[] = {
	    {{"uidvalidity 1\nuidnext 12\nhighestmodseq 7\n"
	      "+ 2 0 1 b2 kw\n- 3\n+ 11 0 0 b11 -\n",
	      NULL},
	     "1 12 7\n1 - 0 0 b1 -\n2 - 0 1 b2 kw\n4 - 0 0 b4 -\n"
	     "5 - 0 0 b5 -\n11 - 0 0 b11 -\n"},
	    /* Two entries trade base names; one gives its name away. */
	    {{"uidvalidity 1\nuidnext 9\nhighestmodseq 0\n"
	      "+ 1 0 0 b2 -\n+ 2 0 0 b1 -\n+ 4 0 0 - -\n+ 5 0 0 b4 -\n",
	      NULL},
	     "1 9 0\n1 - 0 0 b2 -\n2 - 0 0 b1 -\n3 - 0 0 b3 k\n"
	     "4 - 0 0 - -\n5 - 0 0 b4 -\n"},
	    /* A name still taken. */
	    {{"uidvalidity 1\nuidnext 9\nhighestmodseq 0\n+ 4 0 0 b1 -\n",
	      NULL},
	     "damaged: bad change log chunk at body line 1"},
	    {{"uidvalidity 1\nuidnext 9\nhighestmodseq 0\n+ 9 0 0 b1 -\n",
	      NULL},
	     "damaged: bad change log chunk at body line 1"},
	    /* Freed in one chunk, taken in the next. */
	    {{"uidvalidity 1\nuidnext 9\nhighestmodseq 0\n+ 3 0 0 - k\n- 4\n",
	      "uidvalidity 1\nuidnext 9\nhighestmodseq 0\n+ 1 0 0 b3 -\n"
	      "+ 6 0 0 b4 -\n+ 4 0 0 b1 -\n",
	      NULL},
	     "1 9 0\n1 - 0 0 b3 -\n2 - 0 0 b2 -\n3 - 0 0 - k\n"
	     "4 - 0 0 b1 -\n5 - 0 0 b5 -\n6 - 0 0 b4 -\n"},
	    /* A key twice in a chunk, or put and removed: as written. */
	    {{"uidvalidity 1\nuidnext 9\nhighestmodseq 0\n"
	      "+ 2 0 1 x -\n+ 2 0 2 y -\n+ 3 0 3 z -\n- 3\n- 4\n+ 4 0 4 b4 -\n",
	      NULL},
	     "1 9 0\n1 - 0 0 b1 -\n2 - 0 2 y -\n3 - 0 3 z -\n"
	     "4 - 0 4 b4 -\n5 - 0 0 b5 -\n"},
	    /* Removed, put back, removed again over three chunks. */
	    {{"uidvalidity 1\nuidnext 9\nhighestmodseq 0\n- 1\n- 5\n",
	      "uidvalidity 1\nuidnext 9\nhighestmodseq 0\n+ 1 0 1 b5 -\n"
	      "+ 7 0 0 b1 -\n",
	      "uidvalidity 1\nuidnext 9\nhighestmodseq 1\n- 2\n- 7\n- 99\n",
	      NULL},
	     "1 9 1\n1 - 0 1 b5 -\n3 - 0 0 b3 k\n4 - 0 0 b4 -\n"},
	    /* Everything removed, then new entries below the old ones. */
	    {{"uidvalidity 2\nuidnext 9\nhighestmodseq 0\n- 1\n- 2\n- 3\n"
	      "- 4\n- 5\n+ 8 0 0 b1 -\n",
	      "uidvalidity 2\nuidnext 9\nhighestmodseq 0\n+ 7 0 0 b2 -\n",
	      NULL},
	     "2 9 0\n7 - 0 0 b2 -\n8 - 0 0 b1 -\n"},
	    /* Lines a writer does not write. */
	    {{"uidvalidity 1\nuidnext 9\nhighestmodseq 0\n* 1\n", NULL},
	     "damaged: bad change log chunk at body line 1"},
	    {{"uidvalidity 1\nuidnext 9\nhighestmodseq 0\n- 01\n", NULL},
	     "damaged: bad change log chunk at body line 1"},
	    {{"uidvalidity 1\nuidnext 9\nhighestmodseq 0\n-  1\n", NULL},
	     "damaged: bad change log chunk at body line 1"},
	    {{"uidvalidity 1\nuidnext 9\nhighestmodseq 0\n+ 0 0 0 z -\n", NULL},
	     "damaged: bad change log chunk at body line 1"},
	    {{"uidvalidity 1\nuidnext 9\nhighestmodseq 0\n+ 1 0 0 z\n", NULL},
	     "damaged: bad change log chunk at body line 1"},
	    {{"uidvalidity 1\nuidnext 9\nhighestmodseq 0\n- 2\n",
	      "uidvalidity 1\nuidnext 9\n", NULL},
	     "damaged: bad change log chunk at body line 2"},
	    {{"uidvalidity 1\nuidnext 9\nhighestmodseq 0\n- 2\n",
	      "uidvalidity 1\nuidnext 9\nhighestmodseq 0\n- 3", NULL},
	     "damaged: change log line unterminated"},
	    {{"uidvalidity 1\nuidnxt 9\nhighestmodseq 0\n", NULL},
	     "damaged: bad change log chunk at body line 1"},
	    /* "- 0" names no entry. */
	    {{"uidvalidity 1\nuidnext 9\nhighestmodseq 0\n- 0\n", NULL}, base},
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(cases); i++) {
		char *id = write_snapshot(f->path, "imap", 5, snap, (size_t)-1);
		write_log(f->path, id, cases[i].chunks);
		free(id);
		char *got = load_result(f->path, FM_STATE_IMAP);
		const char *g = strncmp(got, "ok\n", 3) == 0 ? got + 3 : got;
		if (strcmp(g, cases[i].want) != 0)
			fail_msg("log case %zu: got \"%s\", want \"%s\"", i, g,
			         cases[i].want);
		free(got);
	}
	fm_reclog_remove(f->path);
}

/* A loaded state changed every way: entries from the snapshot, from its
 * log and new ones are replaced, given their own strings back, removed
 * and cleared, and what is saved loads the same. */
static void
test_loaded_then_changed(void **state)
{
	struct fixture *f = *state;
	static const char snap[] = "uidvalidity 1\nuidnext 9\nhighestmodseq 0\n"
	                           "1 0 0 b1 -\n2 0 0 b2 k2\n3 0 0 b3 k3\n"
	                           "4 0 0 b4 -\n5 0 0 b5 -\n6 0 0 b6 k6\n";
	static const char *const chunks[] = {
	    "uidvalidity 1\nuidnext 9\nhighestmodseq 0\n+ 2 0 1 b2x k2x\n"
	    "+ 7 0 0 b7 k7\n- 6\n",
	    NULL};
	char *id = write_snapshot(f->path, "imap", 6, snap, (size_t)-1);
	write_log(f->path, id, chunks);
	free(id);
	struct fm_state *s = NULL;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_state_load(f->path, FM_STATE_IMAP, &s, NULL, &err),
	                 0);
	/* Handed back as they are, and with new flags. */
	for (uint32_t u = 1; u <= 7; u++) {
		const struct fm_state_entry *e = fm_state_find_uid(s, u);
		if (e == NULL)
			continue;
		struct fm_state_entry copy = *e;
		copy.flags |= 0x100;
		assert_int_equal(fm_state_put(s, &copy, &err), 0);
		e = fm_state_find_uid(s, u);
		assert_int_equal(e->flags & 0x100, 0x100);
		assert_ptr_equal(fm_state_find_base(s, e->base), e);
	}
	/* New strings over loaded ones, from the snapshot and the log. */
	put_ok(s, 1, NULL, "n1", 1, "nk1");
	put_ok(s, 2, NULL, "n2", 2, NULL);
	put_ok(s, 7, NULL, NULL, 7, "nk7");
	/* One entry's own keywords become another's, then it goes. */
	struct fm_state_entry three = *fm_state_find_uid(s, 3);
	put_ok(s, 8, NULL, "n8", 8, three.keywords);
	assert_true(fm_state_remove_uid(s, 3));
	assert_true(fm_state_remove_uid(s, 1));
	assert_true(fm_state_remove_uid(s, 4));
	put_ok(s, 4, NULL, "b4", 4, "back");
	put_ok(s, 9, NULL, "b1", 9, NULL);
	assert_null(fm_state_find_uid(s, 6));
	char *want = dump(s);
	assert_int_equal(fm_state_save(s, f->path, &err), 0);
	char *got = dump_loaded(f->path);
	assert_string_equal(got, want);
	assert_non_null(strstr(want, "8 - 0 8 n8 k3\n"));
	free(got);
	free(want);
	/* Changes logged after a load, then loaded again. */
	put_ok(s, 5, NULL, "b5", 0x55, "k5");
	assert_true(fm_state_remove_uid(s, 2));
	want = dump(s);
	assert_int_equal(fm_state_save(s, f->path, &err), 0);
	got = dump_loaded(f->path);
	assert_string_equal(got, want);
	free(got);
	free(want);
	fm_state_clear(s);
	assert_null(fm_state_find_base(s, "b5"));
	put_ok(s, 5, NULL, "b5", 0, NULL);
	assert_int_equal(fm_state_count(s), 1);
	fm_state_free(&s);
	fm_reclog_remove(f->path);
}

/* A change log that adds more entries than the snapshot had and removes
 * some of both: the tables grow and lose entries while it is applied. */
static void
test_log_grows_the_state(void **state)
{
	struct fixture *f = *state;
	enum { SNAP = 100, ADD = 300, MORE = 200 };
	struct fm_buf b, c, d, e;
	fm_buf_init(&b, SIZE_MAX / 2);
	fm_buf_init(&c, SIZE_MAX / 2);
	fm_buf_init(&d, SIZE_MAX / 2);
	fm_buf_init(&e, SIZE_MAX / 2);
	fm_buf_printf(&b, "%s", counters);
	for (unsigned u = 1; u <= SNAP; u++)
		fm_buf_printf(&b, "%u 0 0 b%u -\n", 2 * u, 2 * u);
	/* New entries between the old ones and after them, and every 5th
	 * old entry takes a new name; then every 7th UID up to the last old
	 * one goes, old or new; then more come, so that the tables grow
	 * while removed entries wait to be dropped, and two removed UIDs
	 * come back. */
	fm_buf_printf(&c, "%s", counters);
	for (unsigned u = 1; u <= ADD; u++)
		fm_buf_printf(&c, "+ %u 0 1 n%u k\n", 2 * u - 1, u);
	for (unsigned u = 5; u <= SNAP; u += 5)
		fm_buf_printf(&c, "+ %u 0 2 r%u -\n", 2 * u, u);
	fm_buf_printf(&d, "%s", counters);
	for (unsigned u = 7; u <= 2 * SNAP; u += 7)
		fm_buf_printf(&d, "- %u\n", u);
	fm_buf_printf(&e, "%s", counters);
	for (unsigned u = 2 * ADD + 1; u <= 2 * ADD + MORE; u++)
		fm_buf_printf(&e, "+ %u 0 3 m%u -\n", u, u);
	fm_buf_printf(&e, "+ 7 0 3 m7 -\n+ 70 0 3 m70 -\n");
	char *id = write_snapshot(f->path, "imap", SNAP, b.data, b.len);
	const char *const chunks[] = {c.data, d.data, e.data, NULL};
	write_log(f->path, id, chunks);
	free(id);
	struct fm_state *s = NULL;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_state_load(f->path, FM_STATE_IMAP, &s, NULL, &err),
	                 0);
	assert_findable(s);
	size_t want = 0;
	for (uint32_t u = 1; u <= 2 * ADD + MORE; u++) {
		const struct fm_state_entry *en = fm_state_find_uid(s, u);
		if (u > 2 * ADD || u == 7 || u == 70) {
			char name[32];
			snprintf(name, sizeof(name), "m%u", u);
			assert_non_null(en);
			assert_string_equal(en->base, name);
			want++;
			continue;
		}
		bool old = u % 2 == 0 && u <= 2 * SNAP;
		bool gone = u % 7 == 0 && u <= 2 * SNAP;
		if (gone || (!old && u % 2 == 0)) {
			assert_null(en);
			continue;
		}
		want++;
		assert_non_null(en);
		char name[32];
		if (old && (u / 2) % 5 == 0)
			snprintf(name, sizeof(name), "r%u", u / 2);
		else if (old)
			snprintf(name, sizeof(name), "b%u", u);
		else
			snprintf(name, sizeof(name), "n%u", (u + 1) / 2);
		assert_string_equal(en->base, name);
		assert_int_equal(en->flags,
		                 old ? ((u / 2) % 5 == 0 ? 2 : 0) : 1);
	}
	assert_int_equal(fm_state_count(s), want);
	for (size_t i = 1; i < fm_state_count(s); i++)
		assert_true(fm_state_entry_at(s, i - 1)->uid <
		            fm_state_entry_at(s, i)->uid);
	fm_state_free(&s);
	fm_buf_free(&b);
	fm_buf_free(&c);
	fm_buf_free(&d);
	fm_buf_free(&e);
	fm_reclog_remove(f->path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_missing_is_empty, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_round_trip_100000, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_pop3_round_trip, setup,
	                                    teardown),
	    cmocka_unit_test(test_put_replace_remove),
	    cmocka_unit_test_setup_teardown(test_every_truncation, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_every_flipped_byte, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_versions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_atomic_write, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_change_log, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hand_written_bodies, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_hand_written_edges, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_hand_written_logs, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_loaded_then_changed, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_log_grows_the_state, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

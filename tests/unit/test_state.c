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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

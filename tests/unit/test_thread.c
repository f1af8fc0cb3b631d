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

#include "base/base.h"
#include "store/thread.h"

/* Renders rows as "msg:depth" words for exact comparison. */
static char *
render(const struct fm_thread_row *rows, size_t n)
{
	struct fm_buf b;
	fm_buf_init(&b, 1 << 20);
	for (size_t i = 0; i < n; i++)
		fm_buf_printf(&b, "%s%zu:%u", i ? " " : "", rows[i].msg,
		              rows[i].depth);
	return fm_buf_steal(&b);
}

static void
expect(const struct fm_thread_msg *msgs, size_t n, const char *want)
{
	struct fm_thread_row *rows;
	fm_thread_build(msgs, n, &rows);
	char *got = render(rows, n);
	if (strcmp(got, want) != 0)
		fail_msg("got  '%s'\nwant '%s'", got, want);
	free(got);
	free(rows);
}

static void
test_conversations(void **state)
{
	const struct fm_thread_msg m[] = {
	    /* 0 */ {"<a>", NULL, NULL, 100},
	    /* 1 */ {"<b>", "<a>", "<a>", 200},
	    /* 2 */ {"<c>", "<a> <b>", "<b>", 300},
	    /* 3 */ {"<d>", "<a>", NULL, 150},
	    /* 4 */ {"<x>", NULL, NULL, 250},
	    /* 5 */ {"<y>", NULL, "<x>", 260},
	};
	/* Conversation a (newest 300) before x (newest 260); replies
	 * oldest first: d (150) before b (200). */
	expect(m, FM_ARRAY_LEN(m), "0:0 3:1 1:1 2:2 4:0 5:1");
}

static void
test_missing_parent_hangs_from_nearest(void **state)
{
	const struct fm_thread_msg m[] = {
	    {"<root>", NULL, NULL, 10},
	    /* Its parent <gone> is not here: the nearest present ancestor,
	     * <root>, takes it. */
	    {"<r2>", "<root> <gone>", "<gone>", 20},
	    /* No ancestor present at all: a conversation of its own. */
	    {"<lone>", "<nowhere>", "<nowhere>", 5},
	};
	expect(m, FM_ARRAY_LEN(m), "0:0 1:1 2:0");
}

static void
test_loops_and_duplicates(void **state)
{
	const struct fm_thread_msg m[] = {
	    {"<p>", "<q>", NULL, 10},  /* p says its parent is q ... */
	    {"<q>", "<p>", NULL, 20},  /* ... and q says p: a loop */
	    {"<s>", "<s>", "<s>", 30}, /* its own parent */
	    {"<p>", NULL, NULL, 40},   /* a duplicate id */
	    {NULL, NULL, NULL, 5},     {"", "<p>", NULL, 6},
	};
	struct fm_thread_row *rows;
	fm_thread_build(m, FM_ARRAY_LEN(m), &rows);
	/* Every message exactly once, whatever the loops. */
	int seen[FM_ARRAY_LEN(m)] = {0};
	for (size_t i = 0; i < FM_ARRAY_LEN(m); i++)
		seen[rows[i].msg]++;
	for (size_t i = 0; i < FM_ARRAY_LEN(m); i++)
		assert_int_equal(seen[i], 1);
	free(rows);
	/* The loop p <-> q is cut where it closes: p starts the conversation,
	 * q and the reply to p hang from it, oldest first. */
	expect(m, FM_ARRAY_LEN(m), "3:0 2:0 0:0 5:1 1:1 4:0");
}

static void
test_deep_chain_and_scale(void **state)
{
	/* 100,000 messages each replying to the one before: no recursion,
	 * no quadratic walk. */
	enum { N = 100000 };
	struct fm_thread_msg *m = xcalloc(N, sizeof(*m));
	char(*ids)[24] = xcalloc(N, sizeof(*ids));
	for (size_t i = 0; i < N; i++) {
		snprintf(ids[i], sizeof(ids[i]), "<%zu@x>", i);
		m[i].message_id = ids[i];
		m[i].in_reply_to = i > 0 ? ids[i - 1] : NULL;
		m[i].date = (int64_t)i;
	}
	uint64_t t0 = fm_now_ms();
	struct fm_thread_row *rows;
	fm_thread_build(m, N, &rows);
	uint64_t took = fm_now_ms() - t0;
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(rows[i].msg, i);
		assert_int_equal(rows[i].depth, i);
		assert_int_equal(rows[i].thread, 0);
	}
	/* A loose bound: linear work takes milliseconds even under ASan. */
	assert_true(took < 5000);
	free(rows);
	free(ids);
	free(m);
}

static void
test_empty(void **state)
{
	struct fm_thread_row *rows = NULL;
	fm_thread_build(NULL, 0, &rows);
	assert_non_null(rows);
	free(rows);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_conversations),
	    cmocka_unit_test(test_missing_parent_hangs_from_nearest),
	    cmocka_unit_test(test_loops_and_duplicates),
	    cmocka_unit_test(test_deep_chain_and_scale),
	    cmocka_unit_test(test_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

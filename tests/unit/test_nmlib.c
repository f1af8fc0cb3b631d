/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Loading libnotmuch at the first use of the index (store/nmlib.h): the
 * first use comes from several threads at once, as it can in fulmar (the
 * store thread's writer and readers on other threads), and every thread
 * gets the one complete table. This program is not linked with libnotmuch;
 * the cases run in order, and the first one is the process's first use.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "store/index.h"
#include "store/nmlib.h"

#define THREADS 8

struct first_use {
	int n;
	pthread_barrier_t *start;
	const char *db_path;
	const struct fm_nm *nm;
	int open_ret;
	struct fm_error err;
};

static void *
first_use_thread(void *arg)
{
	struct first_use *u = arg;
	pthread_barrier_wait(u->start);
	/* Half the threads come in through the index API, half ask for the
	 * table itself first. */
	struct fm_index_reader *r = NULL;
	fm_error_clear(&u->err);
	if (u->n % 2 == 0) {
		u->open_ret = fm_index_reader_open(u->db_path, &r, &u->err);
		u->nm = fm_nm_load(&u->err);
	} else {
		u->nm = fm_nm_load(&u->err);
		u->open_ret = fm_index_reader_open(u->db_path, &r, &u->err);
	}
	fm_index_reader_free(&r);
	return NULL;
}

/* Eight threads use the index for the first time at once. The database
 * does not exist, so each open fails, but with notmuch's own sentence:
 * each thread called into the loaded library. */
static void
test_first_use_from_threads(void **state)
{
	const char *t = getenv("TMPDIR");
	char *scratch = xasprintf("%s/fm-nmlib-XXXXXX",
	                          t != NULL && t[0] == '/' ? t : "/tmp");
	assert_non_null(mkdtemp(scratch));
	char *dir = fm_path_join(scratch, "no-index-here");
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, THREADS);
	struct first_use u[THREADS];
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++) {
		u[i] =
		    (struct first_use){.n = i, .start = &start, .db_path = dir};
		assert_int_equal(
		    pthread_create(&th[i], NULL, first_use_thread, &u[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < THREADS; i++) {
		assert_non_null(u[i].nm);
		assert_ptr_equal(u[i].nm, u[0].nm);
		assert_int_equal(u[i].open_ret, -1);
		assert_int_equal(u[i].err.cls, FM_ERR_LOCAL);
		assert_non_null(strstr(u[i].err.user, "could not be opened"));
		assert_null(strstr(u[i].err.user, "needs"));
	}
	assert_int_equal(rmdir(scratch), 0);
	free(dir);
	free(scratch);
}

/* Every function in the table is resolved, and they are notmuch's. */
static void
test_table_is_complete(void **state)
{
	struct fm_error err;
	fm_error_clear(&err);
	const struct fm_nm *nm = fm_nm_load(&err);
	assert_non_null(nm);
	assert_ptr_equal(fm_nm_load(&err), nm);
	size_t n = 0;
#define COUNT_RESOLVED(name) n += nm->name != NULL;
	FM_NM_FUNCTIONS(COUNT_RESOLVED)
#undef COUNT_RESOLVED
	assert_int_equal(n, sizeof(*nm) / sizeof(void (*)(void)));
	assert_string_equal(nm->status_to_string(NOTMUCH_STATUS_SUCCESS),
	                    "No error occurred");
	assert_string_equal(nm->status_to_string(NOTMUCH_STATUS_FILE_NOT_EMAIL),
	                    "File is not an email");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    /* First: it is the process's first use of libnotmuch. */
	    cmocka_unit_test(test_first_use_from_threads),
	    cmocka_unit_test(test_table_is_complete),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

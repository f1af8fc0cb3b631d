/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The store thread: calls from several threads are served one at a time
 * by the single writer, and the index catches up by itself while the
 * thread is idle, so a reader finds what was delivered without anyone
 * asking for indexing. */
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

#include "conf/conf.h"
#include "store/store.h"

enum { THREADS = 4, PER_THREAD = 25 };

struct deliver_ctx {
	int n;
	char *msg;
};

static int
deliver(struct fm_store *store, void *ctx, struct fm_error *err)
{
	struct deliver_ctx *d = ctx;
	char key[32];
	snprintf(key, sizeof(key), "k%d", d->n);
	return fm_store_deliver(store, "acct", "INBOX", key, d->msg,
	                        strlen(d->msg), 0, NULL, err);
}

struct worker {
	struct fm_store_service *svc;
	int first;
	int failures;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		int n = w->first + i;
		struct deliver_ctx d = {n, NULL};
		d.msg = xasprintf("From: T%d <t@example.org>\r\n"
		                  "Subject: service test %d\r\n"
		                  "Message-ID: <%d@svc>\r\n\r\nbody\r\n",
		                  n % THREADS, n, n);
		struct fm_error err;
		fm_error_clear(&err);
		if (fm_store_call(w->svc, deliver, &d, &err) < 0)
			w->failures++;
		free(d.msg);
	}
	return NULL;
}

static void
test_calls_and_background_index(void **state)
{
	char tmpl[] = "/tmp/fm-service-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	char *conf = xasprintf("%s/config", tmpl);
	FILE *f = fopen(conf, "w");
	fputs("[account acct]\nemail = a@example.org\nhost = h.example.org\n",
	      f);
	fclose(f);
	struct fm_config *cfg;
	struct fm_conf_diags diags;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_config_load(conf, &cfg, &diags, &err), 0);
	fm_conf_diags_free(&diags);
	struct fm_store_opts o = {.cfg = cfg,
	                          .data_dir = tmpl,
	                          .wait_for_lock = false,
	                          .index = true};
	struct fm_store_service *svc = NULL;
	assert_int_equal(fm_store_service_start(&o, &svc, &err), 0);

	pthread_t th[THREADS];
	struct worker w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){svc, i * PER_THREAD, 0};
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}

	/* A second writer in this process is refused at once: the account
	 * lock is held by the store thread. */
	struct fm_store *second = NULL;
	assert_int_equal(fm_store_open(&o, &second, &err), -1);
	assert_int_equal(err.cls, FM_ERR_TEMPORARY);
	assert_non_null(strstr(err.user, "another fulmar"));

	/* The folder view sees everything at once ... */
	struct fm_store_reader *reader;
	assert_int_equal(fm_store_reader_open(cfg, tmpl, &reader, &err), 0);
	struct fm_store_page page;
	assert_int_equal(fm_store_view(reader, "acct", "INBOX",
	                               FM_STORE_BY_DATE, 0, 0, &page, &err),
	                 0);
	/* (the summary may not be saved yet; the reader reads the maildir) */
	assert_int_equal(page.total, THREADS * PER_THREAD);
	fm_store_page_free(&page);

	/* ... and the index catches up on its own within a few seconds. */
	size_t found = 0;
	for (int tries = 0; tries < 100 && found < THREADS * PER_THREAD;
	     tries++) {
		usleep(100 * 1000);
		fm_error_clear(&err);
		if (fm_store_search(reader, "subject:service", 0, 0, &page,
		                    &err) == 0) {
			found = page.n;
			fm_store_page_free(&page);
		}
	}
	assert_int_equal(found, THREADS * PER_THREAD);
	assert_true(fm_store_service_batches(svc) >= 1);
	fm_store_reader_free(&reader);
	fm_store_service_stop(&svc);
	assert_null(svc);

	/* Stopped: the lock is free, and the summary was saved. */
	assert_int_equal(fm_store_open(&o, &second, &err), 0);
	fm_store_close(&second);
	char *sum = xasprintf("%s/mail/acct/INBOX/.fulmar-summary", tmpl);
	assert_int_equal(access(sum, F_OK), 0);
	free(sum);
	char *cmd = xasprintf("rm -rf '%s'", tmpl);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(conf);
	fm_config_free(&cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_calls_and_background_index),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The workers' plumbing with a real store thread and no server: the IMAP
 * accounts point at a closed port on 127.0.0.1, so every pass fails at
 * once as offline, which is enough to see startup and manual passes,
 * their numbers, the typed messages and the stop. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "account/account.h"
#include "store/store.h"

struct env {
	char dir[64];
	struct fm_config *cfg;
	struct fm_store_service *svc;
	struct fm_workers *w;
};

static int
setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/fm-workers.XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	char *conf = xasprintf("%s/config", e->dir);
	FILE *f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "[account early]\nemail = a@example.org\nprotocol = imap\n"
	           "host = 127.0.0.1\nport = 1\npassword = secret-a\n"
	           "schedule = startup\n\n"
	           "[account later]\nemail = b@example.org\nprotocol = imap\n"
	           "host = 127.0.0.1\nport = 1\npassword = secret-b\n"
	           "schedule = manual\n");
	fclose(f);
	chmod(conf, 0600);
	struct fm_conf_diags diags;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_config_load(conf, &e->cfg, &diags, &err), 0);
	fm_conf_diags_free(&diags);
	free(conf);
	struct fm_store_opts so = {.cfg = e->cfg, .data_dir = e->dir};
	assert_int_equal(fm_store_service_start(&so, &e->svc, &err), 0);
	struct fm_workers_opts wo = {.cfg = e->cfg, .store = e->svc};
	fm_sched_params_default(&wo.params);
	assert_int_equal(fm_workers_start(&wo, &e->w, &err), 0);
	*state = e;
	return 0;
}

static void
count_msg(void *ctx, struct fm_account_msg *m)
{
	(*(int *)ctx)++;
	fm_account_msg_free(&m);
}

static int
teardown(void **state)
{
	struct env *e = *state;
	int left = 0;
	fm_workers_stop(&e->w, count_msg, &left);
	assert_null(e->w);
	fm_store_service_stop(&e->svc);
	fm_config_free(&e->cfg);
	char *cmd = xasprintf("rm -rf '%s'", e->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(e);
	return 0;
}

/* The next FM_MSG_PASS, within 10 s; the other messages are skipped
 * (their kinds are recorded in seen). */
static struct fm_account_msg *
next_pass(struct env *e, unsigned *seen)
{
	for (int i = 0; i < 100; i++) {
		struct fm_account_msg *m;
		while ((m = fm_workers_next(e->w)) != NULL) {
			if (m->kind == FM_MSG_PASS)
				return m;
			*seen |= 1u << m->kind;
			fm_account_msg_free(&m);
		}
		struct pollfd pfd = {.fd = fm_workers_fd(e->w),
		                     .events = POLLIN};
		poll(&pfd, 1, 100);
	}
	fail_msg("no pass within 10 s");
	return NULL;
}

static void
test_startup_then_manual(void **state)
{
	struct env *e = *state;
	unsigned seen = 0;
	struct fm_account_msg *m = next_pass(e, &seen);
	/* The startup pass of "early"; "later" is manual and stays
	 * quiet. */
	assert_string_equal(m->name, "early");
	assert_int_equal(m->account, 0);
	assert_int_equal(m->seq, 1);
	assert_int_equal(m->reason, FM_PASS_STARTUP);
	assert_int_equal(m->err.cls, FM_ERR_TEMPORARY);
	assert_false(m->result.reached);
	assert_int_equal(m->state, FM_ACCOUNT_OFFLINE);
	assert_true(m->verdict.changed);
	assert_true(seen & (1u << FM_MSG_STATE));
	fm_account_msg_free(&m);

	/* A manual pass of the manual account: its first, number 1. */
	uint64_t seq = 0;
	assert_int_equal(fm_workers_request(e->w, 1, &seq), 0);
	assert_int_equal(seq, 1);
	m = next_pass(e, &seen);
	assert_string_equal(m->name, "later");
	assert_int_equal(m->seq, 1);
	assert_int_equal(m->reason, FM_PASS_MANUAL);
	fm_account_msg_free(&m);

	/* The offline account runs when asked; the same trouble is not
	 * news. */
	assert_int_equal(fm_workers_request(e->w, 0, &seq), 0);
	assert_int_equal(seq, 2);
	m = next_pass(e, &seen);
	assert_string_equal(m->name, "early");
	assert_int_equal(m->seq, 2);
	assert_int_equal(m->reason, FM_PASS_MANUAL);
	assert_false(m->verdict.changed);
	fm_account_msg_free(&m);

	assert_int_equal(fm_workers_request(e->w, 7, &seq), -1);

	/* Push: a pass of its own kind, at once even for an offline
	 * account (the push connection has just reached the server). */
	assert_int_equal(fm_workers_push(e->w, 1), 0);
	m = next_pass(e, &seen);
	assert_string_equal(m->name, "later");
	assert_int_equal(m->seq, 2);
	assert_int_equal(m->reason, FM_PASS_PUSH);
	fm_account_msg_free(&m);
	assert_int_equal(fm_workers_push(e->w, 0), 0);
	m = next_pass(e, &seen);
	assert_string_equal(m->name, "early");
	assert_int_equal(m->seq, 3);
	assert_int_equal(m->reason, FM_PASS_PUSH);
	fm_account_msg_free(&m);
	assert_int_equal(fm_workers_push(e->w, 7), -1);
	/* Nothing else is due: no pass comes by itself. */
	struct pollfd pfd = {.fd = fm_workers_fd(e->w), .events = POLLIN};
	poll(&pfd, 1, 300);
	while ((m = fm_workers_next(e->w)) != NULL) {
		assert_int_not_equal(m->kind, FM_MSG_PASS);
		fm_account_msg_free(&m);
	}
}

/* A store call that holds the store thread until a byte arrives on
 * release, after writing one to entered: a pass (itself a store call)
 * cannot end meanwhile. */
struct hold {
	struct fm_store_service *svc;
	int release[2], entered[2];
};

static int
hold_store(struct fm_store *store, void *ctx, struct fm_error *err)
{
	(void)store;
	(void)err;
	struct hold *h = ctx;
	char c = 'x';
	if (write(h->entered[1], &c, 1) != 1 || read(h->release[0], &c, 1) != 1)
		return -1;
	return 0;
}

static void *
hold_main(void *arg)
{
	struct hold *h = arg;
	struct fm_error err;
	fm_error_clear(&err);
	fm_store_call(h->svc, hold_store, h, &err);
	return NULL;
}

static void
test_requests_coalesce(void **state)
{
	struct env *e = *state;
	unsigned seen = 0;
	struct fm_account_msg *m = next_pass(e, &seen); /* the startup */
	fm_account_msg_free(&m);
	/* Three requests while no pass can end (the store is held): the
	 * worker may have taken the first, never more than one pass for the
	 * other two. */
	struct hold h = {.svc = e->svc};
	assert_int_equal(pipe(h.release), 0);
	assert_int_equal(pipe(h.entered), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, hold_main, &h), 0);
	char ch;
	assert_int_equal(read(h.entered[0], &ch, 1), 1);
	uint64_t a, b, c;
	assert_int_equal(fm_workers_request(e->w, 1, &a), 0);
	assert_int_equal(fm_workers_request(e->w, 1, &b), 0);
	assert_int_equal(fm_workers_request(e->w, 1, &c), 0);
	assert_int_equal(write(h.release[1], "x", 1), 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	for (int i = 0; i < 2; i++) {
		close(h.release[i]);
		close(h.entered[i]);
	}
	assert_int_equal(a, 1);
	assert_true(b <= 2 && c <= 2);
	m = next_pass(e, &seen);
	assert_int_equal(m->seq, 1);
	assert_int_equal(m->reason, FM_PASS_MANUAL);
	fm_account_msg_free(&m);
	if (c == 2) {
		/* The worker had taken the first request already: the
		 * others are answered by the next pass, one for both. */
		m = next_pass(e, &seen);
		assert_int_equal(m->seq, 2);
		fm_account_msg_free(&m);
	}
	struct pollfd pfd = {.fd = fm_workers_fd(e->w), .events = POLLIN};
	poll(&pfd, 1, 300);
	while ((m = fm_workers_next(e->w)) != NULL) {
		assert_int_not_equal(m->kind, FM_MSG_PASS);
		fm_account_msg_free(&m);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_startup_then_manual, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_requests_coalesce, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

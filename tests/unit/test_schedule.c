/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The schedule of one account, driven by a fake clock: startup, every N,
 * manual, back-off with jitter, failures by class, offline and the network
 * coming back, and the suspend/resume jump of the wall clock. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account/account.h"

struct fake {
	uint64_t mono;
	int64_t wall;
	uint32_t rnd;
	unsigned rnd_calls;
};

static uint64_t
f_mono(void *ctx)
{
	return ((struct fake *)ctx)->mono;
}

static int64_t
f_wall(void *ctx)
{
	return ((struct fake *)ctx)->wall;
}

static uint32_t
f_random(void *ctx)
{
	struct fake *f = ctx;
	f->rnd_calls++;
	return f->rnd;
}

struct fixture {
	struct fake f;
	struct fm_clock clock;
	struct fm_sched s;
};

static struct fixture *
fixture(bool startup, unsigned every)
{
	struct fixture *x = calloc(1, sizeof(*x));
	x->f.mono = 1000000;
	x->f.wall = 1790000000000;
	x->clock = (struct fm_clock){f_mono, f_wall, f_random, &x->f};
	struct fm_schedule sch = {.startup = startup, .every_seconds = every};
	fm_sched_init(&x->s, &sch, NULL, &x->clock);
	return x;
}

/* Both clocks move together, as when the machine is awake. */
static void
advance(struct fixture *x, uint64_t ms)
{
	x->f.mono += ms;
	x->f.wall += (int64_t)ms;
}

/* Advances in steps no longer than the schedule asks to sleep, as a
 * worker would, until a pass is due or limit ms passed; returns the ms
 * waited, or UINT64_MAX when nothing came. */
static uint64_t
sleep_until_due(struct fixture *x, uint64_t limit,
                enum fm_pass_reason *reason_r)
{
	uint64_t waited = 0;
	for (;;) {
		uint64_t wait;
		if (fm_sched_poll(&x->s, reason_r, &wait))
			return waited;
		assert_true(wait > 0);
		assert_true(wait <= x->s.params.tick_ms);
		if (waited + wait > limit)
			return UINT64_MAX;
		advance(x, wait);
		waited += wait;
	}
}

static void
pass(struct fixture *x, uint64_t took, enum fm_error_class cls, bool reached,
     struct fm_sched_verdict *v)
{
	fm_sched_begin(&x->s);
	assert_int_equal(fm_sched_get_state(&x->s), FM_SCHED_RUNNING);
	advance(x, took);
	fm_sched_end(&x->s, cls, reached, v);
}

static void
expect_due(struct fixture *x, enum fm_pass_reason want)
{
	enum fm_pass_reason r;
	uint64_t wait;
	if (!fm_sched_poll(&x->s, &r, &wait))
		fail_msg("no pass due; wait %llu", (unsigned long long)wait);
	assert_string_equal(fm_pass_reason_name(r), fm_pass_reason_name(want));
}

static void
expect_not_due(struct fixture *x)
{
	enum fm_pass_reason r;
	uint64_t wait;
	assert_false(fm_sched_poll(&x->s, &r, &wait));
}

static void
test_startup_only(void **state)
{
	(void)state;
	struct fixture *x = fixture(true, 0);
	expect_due(x, FM_PASS_STARTUP);
	struct fm_sched_verdict v;
	pass(x, 300, FM_ERR_NONE, true, &v);
	assert_int_equal(v.state, FM_SCHED_WAITING);
	assert_true(v.next_ms == FM_SCHED_NEVER);
	enum fm_pass_reason r;
	assert_true(sleep_until_due(x, 3 * 86400000ull, &r) == UINT64_MAX);
	free(x);
}

static void
test_every_interval(void **state)
{
	(void)state;
	struct fixture *x = fixture(false, 600);
	enum fm_pass_reason r;
	uint64_t wait;
	assert_false(fm_sched_poll(&x->s, &r, &wait));
	assert_int_equal(wait, 5000); /* the tick, not 10 minutes */
	advance(x, 599000);
	assert_false(fm_sched_poll(&x->s, &r, &wait));
	assert_int_equal(wait, 1000); /* never past the due time */
	advance(x, 999);
	expect_not_due(x);
	advance(x, 1);
	expect_due(x, FM_PASS_SCHEDULE);
	struct fm_sched_verdict v;
	pass(x, 3000, FM_ERR_NONE, true, &v);
	/* The grid starts with the pass, not at its end. */
	assert_int_equal(v.next_ms, 597000);
	assert_int_equal(sleep_until_due(x, 700000, &r), 597000);
	assert_int_equal(r, FM_PASS_SCHEDULE);
	free(x);
}

static void
test_startup_and_every(void **state)
{
	(void)state;
	struct fixture *x = fixture(true, 120);
	expect_due(x, FM_PASS_STARTUP);
	struct fm_sched_verdict v;
	pass(x, 500, FM_ERR_NONE, true, &v);
	enum fm_pass_reason r;
	assert_int_equal(sleep_until_due(x, 200000, &r), 119500);
	assert_int_equal(r, FM_PASS_SCHEDULE);
	free(x);
}

static void
test_long_pass_skips_ticks(void **state)
{
	(void)state;
	struct fixture *x = fixture(true, 10);
	expect_due(x, FM_PASS_STARTUP);
	struct fm_sched_verdict v;
	/* 25 s for a 10 s interval: the next pass at 30 s, not at once. */
	pass(x, 25000, FM_ERR_NONE, true, &v);
	assert_int_equal(v.next_ms, 5000);
	free(x);
}

static void
test_manual(void **state)
{
	(void)state;
	struct fixture *x = fixture(false, 0);
	enum fm_pass_reason r;
	assert_true(sleep_until_due(x, 7 * 86400000ull, &r) == UINT64_MAX);
	fm_sched_request(&x->s);
	expect_due(x, FM_PASS_MANUAL);
	struct fm_sched_verdict v;
	pass(x, 100, FM_ERR_NONE, true, &v);
	assert_true(v.next_ms == FM_SCHED_NEVER);
	expect_not_due(x);
	free(x);
}

/* Push: at once when waiting or offline, after the back-off when
 * retrying, never when stopped. */
static void
test_push(void **state)
{
	(void)state;
	struct fixture *x = fixture(true, 600);
	expect_due(x, FM_PASS_STARTUP);
	struct fm_sched_verdict v;
	pass(x, 100, FM_ERR_NONE, true, &v);
	expect_not_due(x);
	fm_sched_push(&x->s);
	expect_due(x, FM_PASS_PUSH);
	pass(x, 100, FM_ERR_PROTOCOL, true, &v);
	assert_int_equal(v.state, FM_SCHED_RETRYING);
	/* Retrying: news does not cut the back-off short. */
	fm_sched_push(&x->s);
	expect_not_due(x);
	enum fm_pass_reason r;
	assert_int_equal(sleep_until_due(x, 600000, &r), v.next_ms);
	assert_int_equal(r, FM_PASS_RETRY);
	pass(x, 100, FM_ERR_TEMPORARY, false, &v);
	assert_int_equal(v.state, FM_SCHED_OFFLINE);
	/* Offline: the push connection reached the server just now. */
	fm_sched_push(&x->s);
	expect_due(x, FM_PASS_PUSH);
	pass(x, 100, FM_ERR_NONE, true, &v);
	expect_not_due(x);
	/* Stopped: news never retries a wrong password. */
	fm_sched_request(&x->s);
	expect_due(x, FM_PASS_MANUAL);
	pass(x, 100, FM_ERR_CREDENTIALS, true, &v);
	assert_int_equal(v.state, FM_SCHED_STOPPED);
	fm_sched_push(&x->s);
	expect_not_due(x);
	assert_true(sleep_until_due(x, 86400000ull, &r) == UINT64_MAX);
	fm_sched_request(&x->s);
	expect_due(x, FM_PASS_MANUAL);
	pass(x, 100, FM_ERR_NONE, true, &v);
	/* The manual pass took the old news along. */
	expect_not_due(x);
	assert_string_equal(fm_pass_reason_name(FM_PASS_PUSH), "push");
	free(x);
}

/* The resume detector on its own. */
static void
test_clock_jumped(void **state)
{
	(void)state;
	struct fake f = {.mono = 5000, .wall = 1790000000000};
	struct fm_clock c = {f_mono, f_wall, f_random, &f};
	struct fm_clock_watch cw = {0};
	assert_false(fm_clock_jumped(&cw, &c, 10000)); /* first look */
	f.mono += 5000;
	f.wall += 5000;
	assert_false(fm_clock_jumped(&cw, &c, 10000));
	f.mono += 5000;
	f.wall += 15000; /* ahead by the limit, not more */
	assert_false(fm_clock_jumped(&cw, &c, 10000));
	f.mono += 5000;
	f.wall += 15001;
	assert_true(fm_clock_jumped(&cw, &c, 10000));
	/* The jump is told once; a clock set back is no resume. */
	assert_false(fm_clock_jumped(&cw, &c, 10000));
	f.wall -= 3600000;
	assert_false(fm_clock_jumped(&cw, &c, 10000));
	f.mono += 8 * 3600000ull;
	f.wall += 8 * 3600000;
	assert_false(fm_clock_jumped(&cw, &c, 10000));
}

/* Exact back-off delays: with random 0 each wait is the lower end (half
 * the nominal delay); with random = half it is the nominal delay. */
static void
test_backoff_doubles_capped_and_resets(void **state)
{
	(void)state;
	struct fixture *x = fixture(true, 3600);
	expect_due(x, FM_PASS_STARTUP);
	const uint64_t nominal[] = {2000,   4000,   8000,   16000,
	                            32000,  64000,  128000, 256000,
	                            512000, 600000, 600000, 600000};
	struct fm_sched_verdict v;
	for (size_t i = 0; i < FM_ARRAY_LEN(nominal); i++) {
		/* Lower half or full delay, alternately. */
		x->f.rnd = i % 2 ? (uint32_t)(nominal[i] - nominal[i] / 2) : 0;
		pass(x, 0, FM_ERR_TEMPORARY, true, &v);
		uint64_t want = i % 2 ? nominal[i] : nominal[i] / 2;
		if (v.next_ms != want)
			fail_msg("failure %zu: waits %llu, want %llu", i + 1,
			         (unsigned long long)v.next_ms,
			         (unsigned long long)want);
		assert_int_equal(v.state, FM_SCHED_RETRYING);
		advance(x, want - 1);
		expect_not_due(x);
		advance(x, 1);
		expect_due(x, FM_PASS_RETRY);
	}
	/* Success resets the back-off and returns to the schedule. */
	pass(x, 0, FM_ERR_NONE, true, &v);
	assert_int_equal(v.state, FM_SCHED_WAITING);
	assert_true(v.changed);
	assert_int_equal(v.next_ms, 3600000);
	advance(x, 3600000);
	expect_due(x, FM_PASS_SCHEDULE);
	x->f.rnd = 0;
	pass(x, 0, FM_ERR_TEMPORARY, true, &v);
	assert_int_equal(v.next_ms, 1000);
	free(x);
}

static void
test_jitter_spreads(void **state)
{
	(void)state;
	struct fixture *x = fixture(true, 0);
	expect_due(x, FM_PASS_STARTUP);
	struct fm_sched_verdict v;
	/* Three failures: nominal 8 s, so any wait in [4 s, 8 s]. */
	pass(x, 0, FM_ERR_TEMPORARY, true, &v);
	advance(x, v.next_ms);
	pass(x, 0, FM_ERR_TEMPORARY, true, &v);
	advance(x, v.next_ms);
	x->f.rnd = 1234;
	pass(x, 0, FM_ERR_TEMPORARY, true, &v);
	assert_int_equal(v.next_ms, 4000 + 1234);
	x->f.rnd = 4000;
	advance(x, v.next_ms);
	pass(x, 0, FM_ERR_TEMPORARY, true, &v);
	/* Fourth: nominal 16 s, random 4000 → 8000 + 4000. */
	assert_int_equal(v.next_ms, 12000);
	assert_int_equal(x->f.rnd_calls, 4);
	free(x);
}

static void
test_credentials_stop_until_manual_or_reload(void **state)
{
	(void)state;
	struct fixture *x = fixture(true, 60);
	expect_due(x, FM_PASS_STARTUP);
	struct fm_sched_verdict v;
	pass(x, 100, FM_ERR_CREDENTIALS, true, &v);
	assert_int_equal(v.state, FM_SCHED_STOPPED);
	assert_true(v.changed);
	assert_true(v.next_ms == FM_SCHED_NEVER);
	enum fm_pass_reason r;
	/* No retry at all, for a week, and not after a resume either. */
	assert_true(sleep_until_due(x, 7 * 86400000ull, &r) == UINT64_MAX);
	x->f.wall += 3600000;
	expect_not_due(x);
	/* A manual pass tries; the same failure is not news. */
	fm_sched_request(&x->s);
	expect_due(x, FM_PASS_MANUAL);
	pass(x, 100, FM_ERR_CREDENTIALS, true, &v);
	assert_int_equal(v.state, FM_SCHED_STOPPED);
	assert_false(v.changed);
	assert_true(sleep_until_due(x, 86400000ull, &r) == UINT64_MAX);
	/* A reload gives it a pass at once and its schedule back. */
	struct fm_schedule sch = {.every_seconds = 60};
	fm_sched_reload(&x->s, &sch);
	assert_int_equal(sleep_until_due(x, 1000, &r), 0);
	pass(x, 100, FM_ERR_NONE, true, &v);
	assert_true(v.changed);
	assert_int_equal(v.state, FM_SCHED_WAITING);
	assert_int_equal(v.next_ms, 59900);
	free(x);
}

static void
test_tls_and_config_and_permanent_stop(void **state)
{
	(void)state;
	const enum fm_error_class stops[] = {FM_ERR_TLS, FM_ERR_CONFIG,
	                                     FM_ERR_PERMANENT};
	for (size_t i = 0; i < FM_ARRAY_LEN(stops); i++) {
		struct fixture *x = fixture(true, 30);
		expect_due(x, FM_PASS_STARTUP);
		struct fm_sched_verdict v;
		pass(x, 10, stops[i], true, &v);
		assert_int_equal(v.state, FM_SCHED_STOPPED);
		enum fm_pass_reason r;
		assert_true(sleep_until_due(x, 86400000ull, &r) == UINT64_MAX);
		free(x);
	}
}

static void
test_protocol_and_local_retry(void **state)
{
	(void)state;
	struct fixture *x = fixture(true, 0);
	expect_due(x, FM_PASS_STARTUP);
	struct fm_sched_verdict v;
	pass(x, 0, FM_ERR_PROTOCOL, true, &v);
	assert_int_equal(v.state, FM_SCHED_RETRYING);
	assert_int_equal(v.next_ms, 1000);
	advance(x, 1000);
	expect_due(x, FM_PASS_RETRY);
	pass(x, 0, FM_ERR_LOCAL, true, &v);
	assert_int_equal(v.state, FM_SCHED_RETRYING);
	assert_int_equal(v.next_ms, 2000);
	/* Another class is news, the same state or not. */
	assert_true(v.changed);
	advance(x, 2000);
	pass(x, 0, FM_ERR_LOCAL, true, &v);
	assert_false(v.changed);
	free(x);
}

static void
test_offline_backoff_and_network_return(void **state)
{
	(void)state;
	struct fixture *x = fixture(true, 1);
	expect_due(x, FM_PASS_STARTUP);
	struct fm_sched_verdict v;
	/* Not reached: offline, and the every-1s schedule is not kept. */
	pass(x, 5, FM_ERR_TEMPORARY, false, &v);
	assert_int_equal(v.state, FM_SCHED_OFFLINE);
	assert_true(v.changed);
	unsigned attempts = 1;
	uint64_t t0 = x->f.mono;
	enum fm_pass_reason r;
	while (x->f.mono - t0 < 600000) {
		uint64_t w = sleep_until_due(x, 600000, &r);
		if (w == UINT64_MAX)
			break;
		assert_int_equal(r, FM_PASS_RETRY);
		pass(x, 5, FM_ERR_TEMPORARY, false, &v);
		assert_false(v.changed);
		assert_true(v.next_ms <= 120000); /* the offline cap */
		attempts++;
	}
	/* rnd 0: waits of 1, 2, 4, ... 32 s, then 60 s (half of the 2 min
	 * cap): 16 attempts in 10 minutes, not 600. */
	if (attempts != 16)
		fail_msg("%u attempts in 10 minutes", attempts);
	/* The network changes: a try after the settle time, not at once. */
	fm_sched_network_changed(&x->s);
	fm_sched_network_changed(&x->s);
	uint64_t w = sleep_until_due(x, 5000, &r);
	assert_int_equal(w, 1000);
	assert_int_equal(r, FM_PASS_NETWORK);
	pass(x, 5, FM_ERR_NONE, true, &v);
	assert_int_equal(v.state, FM_SCHED_WAITING);
	assert_true(v.changed);
	/* A network change means nothing to an account that is online. */
	fm_sched_network_changed(&x->s);
	assert_int_equal(sleep_until_due(x, 5000, &r), 995);
	assert_int_equal(r, FM_PASS_SCHEDULE);
	free(x);
}

static void
test_resume_from_suspend(void **state)
{
	(void)state;
	struct fixture *x = fixture(true, 3600);
	expect_due(x, FM_PASS_STARTUP);
	struct fm_sched_verdict v;
	pass(x, 100, FM_ERR_NONE, true, &v);
	expect_not_due(x);
	/* Suspended for 8 hours: the monotonic clock stood still. */
	x->f.mono += 2;
	x->f.wall += 8 * 3600000;
	expect_due(x, FM_PASS_RESUME);
	pass(x, 100, FM_ERR_NONE, true, &v);
	assert_int_equal(v.next_ms, 3599900);
	expect_not_due(x);
	free(x);
}

static void
test_resume_resets_backoff(void **state)
{
	(void)state;
	struct fixture *x = fixture(true, 0);
	expect_due(x, FM_PASS_STARTUP);
	struct fm_sched_verdict v;
	for (int i = 0; i < 6; i++) {
		pass(x, 0, FM_ERR_TEMPORARY, false, &v);
		advance(x, v.next_ms);
	}
	pass(x, 0, FM_ERR_TEMPORARY, false, &v);
	assert_int_equal(v.next_ms, 60000);
	expect_not_due(x);
	x->f.wall += 600000; /* 10 minutes asleep */
	expect_due(x, FM_PASS_RESUME);
	pass(x, 0, FM_ERR_TEMPORARY, false, &v);
	assert_int_equal(v.next_ms, 1000);
	free(x);
}

static void
test_clock_drift_is_not_a_resume(void **state)
{
	(void)state;
	struct fixture *x = fixture(false, 600);
	expect_not_due(x);
	/* NTP slews a few seconds; the clock is set back an hour. */
	x->f.wall += 9000;
	expect_not_due(x);
	x->f.wall -= 3600000;
	expect_not_due(x);
	advance(x, 5000);
	expect_not_due(x);
	free(x);
}

static void
test_cancelled_changes_nothing(void **state)
{
	(void)state;
	struct fixture *x = fixture(true, 0);
	expect_due(x, FM_PASS_STARTUP);
	struct fm_sched_verdict v;
	pass(x, 0, FM_ERR_TEMPORARY, false, &v);
	advance(x, v.next_ms);
	expect_due(x, FM_PASS_RETRY);
	pass(x, 10, FM_ERR_CANCELLED, false, &v);
	assert_int_equal(v.state, FM_SCHED_OFFLINE);
	assert_false(v.changed);
	free(x);
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(fm_sched_state_name(FM_SCHED_OFFLINE), "offline");
	assert_string_equal(fm_pass_reason_name(FM_PASS_RESUME), "resume");
	assert_string_equal(fm_account_state_name(FM_ACCOUNT_AUTHENTICATING),
	                    "authenticating");
}

static void
test_system_clock(void **state)
{
	(void)state;
	const struct fm_clock *c = fm_clock_system();
	uint64_t m1 = c->mono_ms(c->ctx);
	int64_t w = c->wall_ms(c->ctx);
	assert_true(w > 1700000000000);
	assert_true(c->mono_ms(c->ctx) >= m1);
	/* 32 random draws that are all equal would be a broken source. */
	uint32_t first = c->random(c->ctx);
	bool differ = false;
	for (int i = 0; i < 32; i++)
		differ |= c->random(c->ctx) != first;
	assert_true(differ);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_startup_only),
	    cmocka_unit_test(test_every_interval),
	    cmocka_unit_test(test_startup_and_every),
	    cmocka_unit_test(test_long_pass_skips_ticks),
	    cmocka_unit_test(test_manual),
	    cmocka_unit_test(test_push),
	    cmocka_unit_test(test_clock_jumped),
	    cmocka_unit_test(test_backoff_doubles_capped_and_resets),
	    cmocka_unit_test(test_jitter_spreads),
	    cmocka_unit_test(test_credentials_stop_until_manual_or_reload),
	    cmocka_unit_test(test_tls_and_config_and_permanent_stop),
	    cmocka_unit_test(test_protocol_and_local_retry),
	    cmocka_unit_test(test_offline_backoff_and_network_return),
	    cmocka_unit_test(test_resume_from_suspend),
	    cmocka_unit_test(test_resume_resets_backoff),
	    cmocka_unit_test(test_clock_drift_is_not_a_resume),
	    cmocka_unit_test(test_cancelled_changes_nothing),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_system_clock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* When an account's next pass is due, and what a failure does to it. Pure:
 * the time comes from the injected clock and nothing else is read, so the
 * tests can run hours of schedule in microseconds. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "account/account.h"

/* ------------------------------------------------------------------------
 * The system clock.
 */

static uint64_t
sys_mono(void *ctx)
{
	(void)ctx;
	return fm_now_ms();
}

static int64_t
sys_wall(void *ctx)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t
sys_random(void *ctx)
{
	(void)ctx;
	uint32_t r;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t)sizeof(r))
		return r;
	/* Jitter only spreads retries; the time will do. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)ts.tv_nsec * 2654435761u;
}

static const struct fm_clock system_clock = {sys_mono, sys_wall, sys_random,
                                             NULL};

const struct fm_clock *
fm_clock_system(void)
{
	return &system_clock;
}

/* ------------------------------------------------------------------------
 * The schedule.
 */

void
fm_sched_params_default(struct fm_sched_params *p)
{
	*p = (struct fm_sched_params){
	    .retry_first_ms = 2000,
	    .retry_max_ms = 10 * 60 * 1000,
	    .offline_max_ms = 2 * 60 * 1000,
	    .jump_ms = 10000,
	    .tick_ms = 5000,
	    .settle_ms = 1000,
	};
}

const char *
fm_pass_reason_name(enum fm_pass_reason reason)
{
	static const char *const names[] = {
	    [FM_PASS_STARTUP] = "startup", [FM_PASS_SCHEDULE] = "schedule",
	    [FM_PASS_RETRY] = "retry",     [FM_PASS_RESUME] = "resume",
	    [FM_PASS_NETWORK] = "network", [FM_PASS_MANUAL] = "manual",
	    [FM_PASS_PUSH] = "push",
	};
	return (unsigned)reason < FM_ARRAY_LEN(names) ? names[reason] : "?";
}

const char *
fm_sched_state_name(enum fm_sched_state state)
{
	static const char *const names[] = {
	    [FM_SCHED_WAITING] = "waiting",   [FM_SCHED_RUNNING] = "running",
	    [FM_SCHED_RETRYING] = "retrying", [FM_SCHED_OFFLINE] = "offline",
	    [FM_SCHED_STOPPED] = "stopped",
	};
	return (unsigned)state < FM_ARRAY_LEN(names) ? names[state] : "?";
}

static uint64_t
now_mono(const struct fm_sched *s)
{
	return s->clock->mono_ms(s->clock->ctx);
}

static uint64_t
every_ms(const struct fm_sched *s)
{
	return (uint64_t)s->schedule.every_seconds * 1000;
}

void
fm_sched_init(struct fm_sched *s, const struct fm_schedule *schedule,
              const struct fm_sched_params *p, const struct fm_clock *clock)
{
	memset(s, 0, sizeof(*s));
	s->schedule = *schedule;
	if (p != NULL)
		s->params = *p;
	else
		fm_sched_params_default(&s->params);
	if (s->params.tick_ms == 0)
		s->params.tick_ms = 1;
	s->clock = clock;
	s->state = s->settled = FM_SCHED_WAITING;
	s->network_due = FM_SCHED_NEVER;
	uint64_t now = now_mono(s);
	s->startup = schedule->startup;
	if (schedule->startup)
		s->due = now;
	else if (schedule->every_seconds > 0)
		s->due = now + every_ms(s);
	else
		s->due = FM_SCHED_NEVER;
}

bool
fm_clock_jumped(struct fm_clock_watch *cw, const struct fm_clock *c,
                uint64_t jump_ms)
{
	uint64_t mono = c->mono_ms(c->ctx);
	int64_t wall = c->wall_ms(c->ctx);
	bool jumped = false;
	if (cw->have) {
		int64_t dm = (int64_t)(mono - cw->mono);
		int64_t dw = wall - cw->wall;
		jumped = dw - dm > (int64_t)jump_ms;
	}
	cw->have = true;
	cw->mono = mono;
	cw->wall = wall;
	return jumped;
}

/* Compares how far the two clocks moved since the last look: the wall
 * clock running ahead means the machine slept (the monotonic clock stops
 * during suspend) or the clock was set forward. Either way connections
 * are likely dead and mail has waited: pass at once. */
static void
observe_clocks(struct fm_sched *s)
{
	if (fm_clock_jumped(&s->clocks, s->clock, s->params.jump_ms) &&
	    s->state != FM_SCHED_STOPPED && s->state != FM_SCHED_RUNNING)
		s->resume = true;
}

static uint64_t
min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

bool
fm_sched_poll(struct fm_sched *s, enum fm_pass_reason *reason_r,
              uint64_t *wait_ms_r)
{
	uint64_t now = now_mono(s);
	observe_clocks(s);
	*wait_ms_r = s->params.tick_ms;
	if (s->state == FM_SCHED_RUNNING)
		return false;
	if (s->manual) {
		*reason_r = FM_PASS_MANUAL;
		return true;
	}
	if (s->resume) {
		*reason_r = FM_PASS_RESUME;
		return true;
	}
	if (s->state == FM_SCHED_STOPPED)
		return false;
	if (s->push &&
	    (s->state == FM_SCHED_WAITING || s->state == FM_SCHED_OFFLINE)) {
		*reason_r = FM_PASS_PUSH;
		return true;
	}
	if (s->state == FM_SCHED_OFFLINE && s->network_due <= now) {
		*reason_r = FM_PASS_NETWORK;
		return true;
	}
	if (s->due <= now) {
		if (s->state == FM_SCHED_RETRYING ||
		    s->state == FM_SCHED_OFFLINE)
			*reason_r = FM_PASS_RETRY;
		else if (s->startup)
			*reason_r = FM_PASS_STARTUP;
		else
			*reason_r = FM_PASS_SCHEDULE;
		return true;
	}
	uint64_t next = s->due;
	if (s->state == FM_SCHED_OFFLINE)
		next = min_u64(next, s->network_due);
	*wait_ms_r = min_u64(next - now, s->params.tick_ms);
	return false;
}

void
fm_sched_begin(struct fm_sched *s)
{
	if (s->state != FM_SCHED_RUNNING)
		s->settled = s->state;
	if (s->resume)
		s->failures = 0;
	s->state = FM_SCHED_RUNNING;
	s->started = now_mono(s);
	s->manual = s->push = s->resume = s->startup = false;
	s->network_due = FM_SCHED_NEVER;
}

/* The wait after the n-th failure in a row: first, 2 first, 4 first, ...
 * up to cap, then a random point in its upper half, so that accounts (and
 * users) that failed together do not retry together. */
static uint64_t
backoff(const struct fm_sched *s, unsigned n, uint64_t cap)
{
	uint64_t d = s->params.retry_first_ms;
	if (d == 0)
		d = 1;
	for (unsigned i = 1; i < n && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	uint64_t half = d / 2;
	uint32_t r = s->clock->random(s->clock->ctx);
	return half + (uint64_t)r % (d - half + 1);
}

void
fm_sched_end(struct fm_sched *s, enum fm_error_class cls, bool reached,
             struct fm_sched_verdict *v)
{
	uint64_t now = now_mono(s);
	enum fm_sched_state before = s->settled;
	enum fm_error_class before_cls = s->last_cls;
	switch (cls) {
	case FM_ERR_NONE:
		s->failures = 0;
		s->state = FM_SCHED_WAITING;
		if (s->schedule.every_seconds > 0) {
			/* The next point on the grid that started with this
			 * pass: a pass longer than the interval skips the
			 * ticks it overran instead of running back to back. */
			uint64_t e = every_ms(s);
			uint64_t k = (now - s->started) / e + 1;
			s->due = s->started + k * e;
		} else {
			s->due = FM_SCHED_NEVER;
		}
		break;
	case FM_ERR_CANCELLED:
		s->state = s->settled;
		s->due = now;
		break;
	case FM_ERR_TEMPORARY:
	case FM_ERR_PROTOCOL:
	case FM_ERR_LOCAL: {
		bool offline = cls == FM_ERR_TEMPORARY && !reached;
		s->failures++;
		s->state = offline ? FM_SCHED_OFFLINE : FM_SCHED_RETRYING;
		uint64_t cap =
		    offline ? s->params.offline_max_ms : s->params.retry_max_ms;
		s->due = now + backoff(s, s->failures, cap);
		break;
	}
	case FM_ERR_CREDENTIALS:
	case FM_ERR_TLS:
	case FM_ERR_CONFIG:
	case FM_ERR_PERMANENT:
	case FM_ERR_USAGE:
	default:
		s->state = FM_SCHED_STOPPED;
		s->due = FM_SCHED_NEVER;
		break;
	}
	if (cls != FM_ERR_CANCELLED)
		s->last_cls = cls;
	s->settled = s->state;
	v->state = s->state;
	v->changed = cls != FM_ERR_CANCELLED &&
	             (s->state != before || cls != before_cls);
	v->next_ms = s->due == FM_SCHED_NEVER ? FM_SCHED_NEVER
	             : s->due > now           ? s->due - now
	                                      : 0;
}

void
fm_sched_request(struct fm_sched *s)
{
	s->manual = true;
}

void
fm_sched_push(struct fm_sched *s)
{
	s->push = true;
}

void
fm_sched_network_changed(struct fm_sched *s)
{
	if (s->state != FM_SCHED_OFFLINE)
		return;
	uint64_t at = now_mono(s) + s->params.settle_ms;
	/* A flapping link moves nothing closer than the first change. */
	if (s->network_due == FM_SCHED_NEVER)
		s->network_due = at;
}

void
fm_sched_reload(struct fm_sched *s, const struct fm_schedule *schedule)
{
	s->schedule = *schedule;
	uint64_t now = now_mono(s);
	if (s->state == FM_SCHED_STOPPED) {
		/* last_cls stays: the first good pass is news. */
		s->state = s->settled = FM_SCHED_WAITING;
		s->failures = 0;
		s->due = now;
	} else if (s->state == FM_SCHED_WAITING) {
		s->due = schedule->every_seconds > 0 ? now + every_ms(s)
		                                     : FM_SCHED_NEVER;
	}
}

enum fm_sched_state
fm_sched_get_state(const struct fm_sched *s)
{
	return s->state;
}

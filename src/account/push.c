/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Push for IMAP accounts with idle = yes: connections that wait for the
 * server to report news (src/imap/watch.c) and then ask the account's
 * worker for a pass (fm_workers_push). They touch no store and no shared
 * state beyond that.
 *
 * Every account starts with one thread, the first connection, which
 * chooses the way once it sees the server's capabilities:
 *  - NOTIFY (unless imap_notify = no, or the server refused it before):
 *    this one connection watches every folder; no other is opened.
 *  - IDLE: this connection IDLEs on INBOX and starts the pool, one
 *    thread and connection per further watched folder, max_connections
 *    in all; folders beyond that are asked for their STATUS every minute
 *    by the last connection of the pool.
 *  - neither: this connection asks every watched folder's STATUS every
 *    minute.
 * The first thread owns the pool's threads and joins them.
 *
 * Each connection renews its IDLE before RFC 2177's 29 minutes, checks
 * that the link still answers after a network change, reconnects at once
 * after a suspend (the wall clock ran ahead of the monotonic one) and
 * with back-off after a failure, and then asks for a pass: mail may have
 * come while nobody listened. A cancel (the pool stopping) ends every
 * wait at once. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "account/account.h"
#include "imap/imap.h"
#include "log/log.h"
#include "store/store.h"

enum {
	/* An IDLE is renewed after this long (RFC 2177: servers may end
	 * one after 29 minutes of silence from the client). */
	PUSH_IDLE_MS = 25 * 60 * 1000,
	/* Folders without a connection of their own (or every folder, on
	 * a server without IDLE) are asked for their STATUS this often. */
	PUSH_POLL_MS = 60 * 1000,
	/* Waits are cut into slices this long to look at the clocks and
	 * for network changes. */
	PUSH_SLICE_MS = 5000,
	/* The wall clock ahead of the monotonic one by more than this
	 * within one slice: the machine was asleep. */
	PUSH_JUMP_MS = 10000,
	/* A link that lives answers DONE within this. */
	PUSH_ALIVE_MS = 10000,
	/* A connection waiting out its back-off tries this soon after the
	 * network changed. */
	PUSH_SETTLE_MS = 1000,
	BACKOFF_FIRST_MS = 1000,
	BACKOFF_MAX_MS = 5 * 60 * 1000,
	/* A connection that lasted this long starts the back-off afresh;
	 * one that fails sooner (a server that logs in and hangs up) waits
	 * longer each time. */
	PUSH_STEADY_MS = 60 * 1000,
	/* NOTIFY that overflows this often within an hour is given up for
	 * the IDLE pool (each overflow costs a reconnect and a pass). */
	NOTIFY_OVERFLOWS = 3,
	NOTIFY_OVERFLOW_WINDOW_MS = 60 * 60 * 1000,
};

enum role { ROLE_NOTIFY, ROLE_IDLE, ROLE_POLL };

struct push_account;

/* One connection and its thread. */
struct pusher {
	struct push_account *pa;
	size_t slot;             /* 0: the account's first */
	const char *folder;      /* IDLE on this one */
	const char *const *poll; /* and STATUS for these */
	size_t n_poll;
	char *label; /* in the protocol trace */
	enum role role;
	pthread_t thread;
	bool started;
	struct fm_creds *creds;
	struct fm_clock_watch clocks;
	unsigned net_seen;
};

struct push_account {
	struct fm_push_pool *pool;
	const struct fm_account *acct;
	size_t index;   /* the account's, for fm_workers_push */
	char **folders; /* watched, INBOX first */
	size_t n_folders;
	bool every; /* folders = *: NOTIFY watches every personal one */
	struct pusher *slots; /* [0] runs from the start, the others once
	                         the pool is needed; all slot 0's */
	size_t n_slots;
	bool pool_started;   /* slot 0's */
	bool notify_refused; /* slot 0's */
	unsigned overflows;  /* slot 0's: NOTIFY overflows in the window */
	uint64_t overflow_window;
};

struct fm_push_pool {
	struct fm_workers *workers;
	struct fm_trace *trace;
	struct fm_net_limits limits;
	const struct fm_clock *clock;
	int cancel_fd;       /* an eventfd: readable = stop */
	atomic_uint net_gen; /* counts network changes */
	struct push_account *accounts;
	size_t n_accounts;
};

static uint64_t
min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Sleeps ms, or less when the pool stops; true when it stops. */
static bool
sleep_or_stop(int cancel_fd, unsigned ms)
{
	struct pollfd pfd = {.fd = cancel_fd, .events = POLLIN};
	int r;
	do
		r = poll(&pfd, 1, (int)ms);
	while (r < 0 && errno == EINTR);
	return r > 0;
}

static bool
network_changed(struct pusher *ps)
{
	unsigned gen = atomic_load(&ps->pa->pool->net_gen);
	if (gen == ps->net_seen)
		return false;
	ps->net_seen = gen;
	return true;
}

/* The back-off: true when the pool stops. Ends early after a resume, and
 * soon after a network change. */
static bool
back_off(struct pusher *ps, unsigned ms)
{
	struct fm_push_pool *pool = ps->pa->pool;
	uint64_t until = fm_now_ms() + ms;
	for (;;) {
		uint64_t now = fm_now_ms();
		if (now >= until)
			return false;
		if (sleep_or_stop(
		        pool->cancel_fd,
		        (unsigned)min_u64(PUSH_SLICE_MS, until - now)))
			return true;
		if (fm_clock_jumped(&ps->clocks, pool->clock, PUSH_JUMP_MS))
			return false;
		if (network_changed(ps))
			until = min_u64(until, fm_now_ms() + PUSH_SETTLE_MS);
	}
}

static void
on_news(void *ctx, const char *folder)
{
	struct pusher *ps = ctx;
	fm_log_debug("%s: news in %s", ps->pa->acct->name,
	             folder != NULL ? folder : "(some folder)");
	fm_workers_push(ps->pa->pool->workers, ps->pa->index);
}

static void *push_main(void *arg);

/* Slot 0 chose IDLE: the other connections start. */
static void
start_pool(struct push_account *pa)
{
	if (pa->pool_started)
		return;
	pa->pool_started = true;
	for (size_t i = 1; i < pa->n_slots; i++) {
		struct pusher *ps = &pa->slots[i];
		if (pthread_create(&ps->thread, NULL, push_main, ps) == 0)
			ps->started = true;
		else
			fm_log_warn(_("%s: cannot start push for %s"),
			            pa->acct->name, ps->folder);
	}
}

/* After the login: what this connection does, set up. */
static int
setup(struct pusher *ps, struct fm_imap_watch *w, struct fm_error *err)
{
	struct push_account *pa = ps->pa;
	if (ps->slot > 0) {
		ps->role = ROLE_IDLE;
		if (fm_imap_watch_examine(w, ps->folder, err) < 0)
			return -1;
		return fm_imap_watch_poll(w, ps->poll, ps->n_poll, err);
	}
	unsigned caps = fm_imap_watch_caps(w);
	if (!pa->pool_started && !pa->notify_refused && pa->acct->imap_notify &&
	    (caps & FM_WATCH_CAN_NOTIFY)) {
		int r = fm_imap_watch_notify(
		    w, pa->every ? NULL : (const char *const *)pa->folders,
		    pa->n_folders, err);
		if (r < 0)
			return -1;
		if (r == 0) {
			ps->role = ROLE_NOTIFY;
			return 0;
		}
		fm_log_warn(_("%s: %s; watching the folders with IDLE "
		              "instead"),
		            pa->acct->name, err->user);
		fm_error_clear(err);
		pa->notify_refused = true;
	}
	if (caps & FM_WATCH_CAN_IDLE) {
		ps->role = ROLE_IDLE;
		start_pool(pa);
		if (fm_imap_watch_examine(w, ps->folder, err) < 0)
			return -1;
		return fm_imap_watch_poll(w, ps->poll, ps->n_poll, err);
	}
	ps->role = ROLE_POLL;
	return fm_imap_watch_poll(w, (const char *const *)pa->folders,
	                          pa->n_folders, err);
}

/* Waits for news until the link fails or the pool stops (-1 with err;
 * *resumed when the machine was asleep). */
static int
run(struct pusher *ps, struct fm_imap_watch *w, bool *resumed,
    struct fm_error *err)
{
	struct push_account *pa = ps->pa;
	struct fm_push_pool *pool = pa->pool;
	bool idle = ps->role != ROLE_POLL;
	/* NOTIFY tells about every folder: nothing to poll. */
	const char *const *poll =
	    idle ? ps->poll : (const char *const *)pa->folders;
	size_t n_poll = ps->role == ROLE_NOTIFY ? 0
	                : idle                  ? ps->n_poll
	                                        : pa->n_folders;
	uint64_t period = n_poll > 0 ? PUSH_POLL_MS : PUSH_IDLE_MS;
	for (;;) {
		if (idle && fm_imap_watch_idle(w, err) < 0)
			return -1;
		uint64_t until = fm_now_ms() + period;
		for (;;) {
			uint64_t now = fm_now_ms();
			if (now >= until || (idle && !fm_imap_watch_idling(w)))
				break;
			unsigned slice =
			    (unsigned)min_u64(PUSH_SLICE_MS, until - now);
			if (fm_imap_watch_wait(w, slice, err) < 0)
				return -1;
			if (fm_clock_jumped(&ps->clocks, pool->clock,
			                    PUSH_JUMP_MS)) {
				*resumed = true;
				return fm_error_set(err, FM_ERR_TEMPORARY,
				                    _("the computer was "
				                      "asleep"));
			}
			/* After a network change, ending the IDLE shows
			 * whether the link still answers. */
			if (network_changed(ps))
				break;
		}
		if (idle && fm_imap_watch_done(w, PUSH_ALIVE_MS, err) < 0)
			return -1;
		if (fm_imap_watch_poll(w, poll, n_poll, err) < 0)
			return -1;
	}
}

/* NOTIFY overflowed (the server gave up telling): too often, and the
 * account falls back to the IDLE pool. Slot 0. */
static void
count_overflow(struct push_account *pa)
{
	uint64_t now = fm_now_ms();
	if (pa->overflows == 0 ||
	    now - pa->overflow_window > NOTIFY_OVERFLOW_WINDOW_MS) {
		pa->overflows = 0;
		pa->overflow_window = now;
	}
	if (++pa->overflows < NOTIFY_OVERFLOWS || pa->notify_refused)
		return;
	fm_log_warn(_("%s: the server's NOTIFY overflowed %d times within "
	              "an hour; watching the folders with IDLE instead"),
	            pa->acct->name, NOTIFY_OVERFLOWS);
	pa->notify_refused = true;
}

static void *
push_main(void *arg)
{
	struct pusher *ps = arg;
	struct push_account *pa = ps->pa;
	struct fm_push_pool *pool = pa->pool;
	unsigned backoff = BACKOFF_FIRST_MS;
	bool said = false, first = true;
	ps->creds = fm_creds_new(pa->acct);
	ps->net_seen = atomic_load(&pool->net_gen);
	for (;;) {
		struct fm_session_opts o = {
		    .trace = pool->trace,
		    .cancel_fd = pool->cancel_fd,
		    .limits = pool->limits,
		    .creds = ps->creds,
		    .label = ps->label,
		};
		struct fm_error err;
		fm_error_clear(&err);
		struct fm_imap_watch *w = NULL;
		bool resumed = false;
		int r = fm_imap_watch_open(pa->acct, &o, on_news, ps, &w, &err);
		if (r == 0)
			r = setup(ps, w, &err);
		if (r == 0) {
			if (said)
				fm_log_info(_("%s: push works again"),
				            ps->label);
			said = false;
			/* Mail may have come while nobody listened. */
			if (!first)
				fm_workers_push(pool->workers, pa->index);
			uint64_t up = fm_now_ms();
			r = run(ps, w, &resumed, &err);
			if (fm_now_ms() - up >= PUSH_STEADY_MS)
				backoff = BACKOFF_FIRST_MS;
		}
		if (w != NULL && fm_imap_watch_overflowed(w))
			count_overflow(pa);
		fm_imap_watch_close(&w);
		first = false;
		if (err.cls == FM_ERR_CANCELLED)
			break;
		if (resumed) {
			fm_log_info(_("%s: the computer was asleep; "
			              "reconnecting"),
			            ps->label);
			continue;
		}
		if (!said)
			fm_log_info(_("%s: push stopped (%s); trying again"),
			            ps->label, err.user);
		said = true;
		/* Credentials and trust problems are the worker's to report;
		 * push only waits longer for them. */
		if (err.cls == FM_ERR_CREDENTIALS || err.cls == FM_ERR_TLS ||
		    err.cls == FM_ERR_CONFIG)
			backoff = BACKOFF_MAX_MS;
		if (err.cls == FM_ERR_CREDENTIALS) {
			/* password_cmd is asked again next time. */
			fm_creds_free(&ps->creds);
			ps->creds = fm_creds_new(pa->acct);
		}
		if (back_off(ps, backoff))
			break;
		backoff =
		    backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	fm_creds_free(&ps->creds);
	if (ps->slot == 0)
		for (size_t i = 1; i < pa->n_slots; i++)
			if (pa->slots[i].started)
				pthread_join(pa->slots[i].thread, NULL);
	return NULL;
}

/* Where a folder comes in the order of watching: 0 for INBOX, 1 for
 * ordinary folders, more for the special uses, whose news matters least
 * (they change mostly through this very client). */
static int
rank(const char *folder, char *const *special, size_t n_special)
{
	if (strcmp(folder, "INBOX") == 0)
		return 0;
	for (size_t i = 0; i < n_special; i++)
		if (special[i] != NULL && strcmp(special[i], folder) == 0)
			return 2 + (int)i;
	return 1;
}

/* The folders to watch: INBOX (it may not be synced yet), then the
 * account's other folders as the store has them, ordinary ones before
 * special uses (which get a connection of their own last); and the plan
 * of the connections for the IDLE pool. */
static void
plan_account(struct push_account *pa, const char *data_dir,
             struct fm_store_reader *reader)
{
	static const char *const roles[] = {"Archive", "Junk", "Sent", "Drafts",
	                                    "Trash"};
	enum { N_ROLES = FM_ARRAY_LEN(roles) };
	const struct fm_account *a = pa->acct;
	char *special[N_ROLES];
	for (size_t i = 0; i < N_ROLES; i++)
		special[i] = fm_store_special_use(data_dir, a->name, roles[i]);
	pa->folders = xcalloc(1, sizeof(*pa->folders));
	pa->folders[pa->n_folders++] = xstrdup("INBOX");
	struct fm_store_folder *fv = NULL;
	size_t nf = 0;
	struct fm_error err;
	fm_error_clear(&err);
	if (reader != NULL &&
	    fm_store_folders(reader, a->name, &fv, &nf, &err) < 0)
		nf = 0;
	for (int want = 1; want < 2 + N_ROLES; want++)
		for (size_t k = 0; k < nf; k++) {
			if (rank(fv[k].folder, special, N_ROLES) != want ||
			    fm_store_local_only(fv[k].folder))
				continue;
			pa->folders =
			    xreallocarray(pa->folders, pa->n_folders + 1,
			                  sizeof(*pa->folders));
			pa->folders[pa->n_folders++] = xstrdup(fv[k].folder);
		}
	fm_store_folders_free(fv, nf);
	for (size_t i = 0; i < N_ROLES; i++)
		free(special[i]);
	pa->every = a->n_folders == 1 && strcmp(a->folders[0], "*") == 0;

	size_t max = a->max_connections > 0 ? a->max_connections : 1;
	pa->n_slots = pa->n_folders < max ? pa->n_folders : max;
	pa->slots = xcalloc(pa->n_slots, sizeof(*pa->slots));
	for (size_t i = 0; i < pa->n_slots; i++) {
		struct pusher *ps = &pa->slots[i];
		ps->pa = pa;
		ps->slot = i;
		ps->folder = pa->folders[i];
		ps->label =
		    i == 0 ? xasprintf("%s/push", a->name)
		           : xasprintf("%s/push %s", a->name, pa->folders[i]);
	}
	if (pa->n_folders > pa->n_slots) {
		struct pusher *last = &pa->slots[pa->n_slots - 1];
		last->poll = (const char *const *)&pa->folders[pa->n_slots];
		last->n_poll = pa->n_folders - pa->n_slots;
	}
}

int
fm_push_pool_start(const struct fm_config *cfg, const char *data_dir,
                   struct fm_workers *workers, struct fm_trace *trace,
                   struct fm_push_pool **pool_r, struct fm_error *err)
{
	*pool_r = NULL;
	struct fm_push_pool *pool = xcalloc(1, sizeof(*pool));
	pool->workers = workers;
	pool->trace = trace;
	pool->clock = fm_clock_system();
	atomic_init(&pool->net_gen, 0);
	fm_net_limits_from_config(&cfg->general, &pool->limits);
	pool->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pool->cancel_fd < 0) {
		free(pool);
		return fm_error_set(err, FM_ERR_LOCAL,
		                    _("cannot make an eventfd: %s"),
		                    strerror(errno));
	}
	struct fm_store_reader *reader = NULL;
	struct fm_error rerr;
	fm_error_clear(&rerr);
	if (fm_store_reader_open(cfg, data_dir, &reader, &rerr) < 0)
		fm_log_warn("%s", rerr.user);
	pool->accounts = xcalloc(cfg->n_accounts ? cfg->n_accounts : 1,
	                         sizeof(*pool->accounts));
	for (size_t i = 0; i < cfg->n_accounts; i++) {
		const struct fm_account *a = &cfg->accounts[i];
		if (a->protocol != FM_PROTO_IMAP || !a->idle)
			continue;
		struct push_account *pa = &pool->accounts[pool->n_accounts++];
		pa->pool = pool;
		pa->acct = a;
		pa->index = i;
		plan_account(pa, data_dir, reader);
	}
	fm_store_reader_free(&reader);
	for (size_t k = 0; k < pool->n_accounts; k++) {
		struct pusher *ps = &pool->accounts[k].slots[0];
		if (pthread_create(&ps->thread, NULL, push_main, ps) == 0)
			ps->started = true;
		else
			fm_log_warn(_("%s: cannot start push"),
			            pool->accounts[k].acct->name);
	}
	*pool_r = pool;
	return 0;
}

void
fm_push_pool_network_changed(struct fm_push_pool *pool)
{
	if (pool != NULL)
		atomic_fetch_add(&pool->net_gen, 1);
}

void
fm_push_pool_stop(struct fm_push_pool **pool_p)
{
	struct fm_push_pool *pool = *pool_p;
	if (pool == NULL)
		return;
	uint64_t one = 1;
	if (write(pool->cancel_fd, &one, sizeof(one)) < 0)
		fm_log_warn("push: %s", strerror(errno));
	for (size_t k = 0; k < pool->n_accounts; k++) {
		struct push_account *pa = &pool->accounts[k];
		/* Slot 0 joins the others. */
		if (pa->slots[0].started)
			pthread_join(pa->slots[0].thread, NULL);
		for (size_t i = 0; i < pa->n_slots; i++)
			free(pa->slots[i].label);
		free(pa->slots);
		for (size_t i = 0; i < pa->n_folders; i++)
			free(pa->folders[i]);
		free(pa->folders);
	}
	free(pool->accounts);
	close(pool->cancel_fd);
	free(pool);
	*pool_p = NULL;
}

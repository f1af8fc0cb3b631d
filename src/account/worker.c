/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The account workers: one thread per account runs its schedule, hands
 * each pass to the store thread (the single writer) and reports through a
 * queue of typed messages. A worker sleeps in poll() on its wake eventfd,
 * so a request, a network change or the stop reaches it at once; a pass
 * under way is stopped through the cancel eventfd that every wait of its
 * session watches. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "account/account.h"
#include "log/log.h"
#include "store/store.h"

/* Progress messages are sent at most this often during a pass. */
enum { PROGRESS_EVERY_MS = 250 };

struct worker {
	struct fm_workers *ws;
	size_t index;
	const struct fm_account *acct;
	pthread_t thread;
	bool started;
	int wake_fd;
	int cancel_fd;
	/* Shared with the other threads, under lock. */
	pthread_mutex_t lock;
	bool stop, manual, push, network;
	uint64_t started_seq; /* passes begun */
	/* The worker thread's own. */
	struct fm_sched sched;
	struct fm_creds *creds;
	enum fm_account_state shown;
	uint64_t progress_ms;
};

struct fm_workers {
	struct fm_workers_opts opts;
	struct fm_net_limits limits;
	struct worker *w;
	size_t n;
	/* The queue of messages to the owner. */
	pthread_mutex_t qlock;
	struct fm_account_msg *head, *tail;
	int qfd;
};

const char *
fm_account_state_name(enum fm_account_state state)
{
	static const char *const names[] = {
	    [FM_ACCOUNT_WAITING] = "waiting",
	    [FM_ACCOUNT_CONNECTING] = "connecting",
	    [FM_ACCOUNT_AUTHENTICATING] = "authenticating",
	    [FM_ACCOUNT_SYNCING] = "syncing",
	    [FM_ACCOUNT_RETRYING] = "retrying",
	    [FM_ACCOUNT_OFFLINE] = "offline",
	    [FM_ACCOUNT_STOPPED] = "stopped",
	};
	return (unsigned)state < FM_ARRAY_LEN(names) ? names[state] : "?";
}

void
fm_account_msg_free(struct fm_account_msg **msg)
{
	struct fm_account_msg *m = *msg;
	if (m == NULL)
		return;
	free(m->folder);
	free(m->from);
	free(m->subject);
	fm_pass_result_free(&m->result);
	free(m);
	*msg = NULL;
}

static void
efd_signal(int fd)
{
	uint64_t one = 1;
	while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void
efd_drain(int fd)
{
	uint64_t v;
	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

static struct fm_account_msg *
msg_new(struct worker *w, enum fm_account_msg_kind kind)
{
	struct fm_account_msg *m = xcalloc(1, sizeof(*m));
	m->kind = kind;
	m->account = w->index;
	m->name = w->acct->name;
	return m;
}

/* Any thread (progress comes from the store thread). */
static void
post(struct fm_workers *ws, struct fm_account_msg *m)
{
	pthread_mutex_lock(&ws->qlock);
	if (ws->tail != NULL)
		ws->tail->next = m;
	else
		ws->head = m;
	ws->tail = m;
	efd_signal(ws->qfd);
	pthread_mutex_unlock(&ws->qlock);
}

static void
show_state(struct worker *w, enum fm_account_state state)
{
	if (w->shown == state)
		return;
	w->shown = state;
	struct fm_account_msg *m = msg_new(w, FM_MSG_STATE);
	m->state = state;
	post(w->ws, m);
}

static enum fm_account_state
state_of(enum fm_sched_state s)
{
	switch (s) {
	case FM_SCHED_RETRYING:
		return FM_ACCOUNT_RETRYING;
	case FM_SCHED_OFFLINE:
		return FM_ACCOUNT_OFFLINE;
	case FM_SCHED_STOPPED:
		return FM_ACCOUNT_STOPPED;
	case FM_SCHED_RUNNING:
		return FM_ACCOUNT_SYNCING;
	case FM_SCHED_WAITING:
	default:
		return FM_ACCOUNT_WAITING;
	}
}

/* ------------------------------------------------------------------------
 * A pass, on the store thread.
 */

struct run {
	struct worker *w;
	struct fm_pass_result res;
};

static void
hook_progress(void *ctx, const char *folder, size_t done, size_t total,
              uint64_t bytes)
{
	struct worker *w = ctx;
	uint64_t now = fm_now_ms();
	if (now - w->progress_ms < PROGRESS_EVERY_MS && done < total)
		return;
	w->progress_ms = now;
	struct fm_account_msg *m = msg_new(w, FM_MSG_PROGRESS);
	m->folder = xstrdup(folder);
	m->done = done;
	m->total = total;
	m->bytes = bytes;
	post(w->ws, m);
}

/* The state line follows the session's steps. */
static void
hook_step(void *ctx, const char *step, bool ok)
{
	struct worker *w = ctx;
	if (!ok)
		return;
	if (strcmp(step, "greeting") == 0)
		show_state(w, FM_ACCOUNT_AUTHENTICATING);
	else if (strcmp(step, "login") == 0)
		show_state(w, FM_ACCOUNT_SYNCING);
}

static bool
cancelled(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	return poll(&pfd, 1, 0) > 0;
}

static int
run_pass(struct fm_store *store, void *ctx, struct fm_error *err)
{
	struct run *r = ctx;
	struct worker *w = r->w;
	/* Waiting in line behind another account's pass while fulmar was
	 * asked to stop: do not start. */
	if (cancelled(w->cancel_fd))
		return fm_error_set(err, FM_ERR_CANCELLED,
		                    _("the pass was cancelled"));
	struct fm_session_opts o = {
	    .trace = w->ws->opts.trace,
	    .cancel_fd = w->cancel_fd,
	    .limits = w->ws->limits,
	    .creds = w->creds,
	};
	struct fm_pass_hooks hooks = {hook_progress, hook_step, w};
	return fm_account_pass(w->acct, store, &o, &hooks, &r->res, err);
}

/* ------------------------------------------------------------------------
 * The worker thread.
 */

static void
do_pass(struct worker *w, enum fm_pass_reason reason, uint64_t seq)
{
	fm_sched_begin(&w->sched);
	show_state(w, FM_ACCOUNT_CONNECTING);
	w->progress_ms = 0;
	struct run r = {.w = w};
	struct fm_error err;
	fm_error_clear(&err);
	int ret = fm_store_call(w->ws->opts.store, run_pass, &r, &err);
	if (ret == 0)
		fm_error_clear(&err);
	else if (err.cls == FM_ERR_NONE)
		err.cls = FM_ERR_LOCAL;
	struct fm_sched_verdict v;
	fm_sched_end(&w->sched, err.cls, r.res.reached, &v);
	if (err.cls == FM_ERR_CREDENTIALS) {
		/* The next try (a manual one) asks password_cmd again: the
		 * user may have fixed the password in the meantime. */
		fm_creds_free(&w->creds);
		w->creds = fm_creds_new(w->acct);
	}
	for (size_t i = 0; i < r.res.n_news; i++) {
		const struct fm_new_mail *n = &r.res.news[i];
		struct fm_account_msg *m = msg_new(w, FM_MSG_NEW_MAIL);
		m->folder = xstrdup(n->folder);
		m->from = xstrdup(n->from);
		m->subject = xstrdup(n->subject);
		post(w->ws, m);
	}
	struct fm_account_msg *m = msg_new(w, FM_MSG_PASS);
	m->seq = seq;
	m->reason = reason;
	m->result = r.res;
	m->err = err;
	m->verdict = v;
	m->state = state_of(v.state);
	w->shown = m->state;
	post(w->ws, m);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	w->creds = fm_creds_new(w->acct);
	for (;;) {
		enum fm_pass_reason reason;
		uint64_t wait = 0, seq = 0;
		pthread_mutex_lock(&w->lock);
		bool stop = w->stop;
		if (w->manual)
			fm_sched_request(&w->sched);
		if (w->push)
			fm_sched_push(&w->sched);
		if (w->network)
			fm_sched_network_changed(&w->sched);
		w->manual = w->push = w->network = false;
		bool due = !stop && fm_sched_poll(&w->sched, &reason, &wait);
		if (due)
			seq = ++w->started_seq;
		pthread_mutex_unlock(&w->lock);
		if (stop)
			break;
		if (due) {
			do_pass(w, reason, seq);
			continue;
		}
		show_state(w, state_of(fm_sched_get_state(&w->sched)));
		struct pollfd pfd = {.fd = w->wake_fd, .events = POLLIN};
		int ms = wait > 60000 ? 60000 : (int)wait;
		if (poll(&pfd, 1, ms) > 0)
			efd_drain(w->wake_fd);
	}
	fm_creds_free(&w->creds);
	return NULL;
}

/* ------------------------------------------------------------------------
 * The owner's side.
 */

static void
worker_free(struct worker *w)
{
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	if (w->cancel_fd >= 0)
		close(w->cancel_fd);
	pthread_mutex_destroy(&w->lock);
}

int
fm_workers_start(const struct fm_workers_opts *opts, struct fm_workers **w_r,
                 struct fm_error *err)
{
	*w_r = NULL;
	const struct fm_config *cfg = opts->cfg;
	struct fm_workers *ws = xcalloc(1, sizeof(*ws));
	ws->opts = *opts;
	ws->opts.enabled = NULL;
	if (ws->opts.clock == NULL)
		ws->opts.clock = fm_clock_system();
	fm_net_limits_from_config(&cfg->general, &ws->limits);
	pthread_mutex_init(&ws->qlock, NULL);
	ws->qfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ws->w = xcalloc(cfg->n_accounts ? cfg->n_accounts : 1, sizeof(*ws->w));
	int ret = 0;
	if (ws->qfd < 0)
		ret = fm_error_errno(err, FM_ERR_LOCAL, errno,
		                     _("cannot create an event fd"));
	for (size_t i = 0; ret == 0 && i < cfg->n_accounts; i++) {
		if (opts->enabled != NULL && !opts->enabled[i])
			continue;
		struct worker *w = &ws->w[ws->n++];
		w->ws = ws;
		w->index = i;
		w->acct = &cfg->accounts[i];
		w->shown = FM_ACCOUNT_WAITING;
		pthread_mutex_init(&w->lock, NULL);
		w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		w->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (w->wake_fd < 0 || w->cancel_fd < 0) {
			ret = fm_error_errno(err, FM_ERR_LOCAL, errno,
			                     _("cannot create an event fd"));
			break;
		}
		fm_sched_init(&w->sched, &w->acct->schedule, &ws->opts.params,
		              ws->opts.clock);
	}
	for (size_t i = 0; ret == 0 && i < ws->n; i++) {
		struct worker *w = &ws->w[i];
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			ret = fm_error_set(err, FM_ERR_LOCAL,
			                   _("cannot start the worker of "
			                     "account %s"),
			                   w->acct->name);
			break;
		}
		w->started = true;
	}
	if (ret < 0) {
		fm_workers_stop(&ws, NULL, NULL);
		return -1;
	}
	*w_r = ws;
	return 0;
}

int
fm_workers_fd(const struct fm_workers *ws)
{
	return ws->qfd;
}

struct fm_account_msg *
fm_workers_next(struct fm_workers *ws)
{
	pthread_mutex_lock(&ws->qlock);
	struct fm_account_msg *m = ws->head;
	if (m != NULL) {
		ws->head = m->next;
		if (ws->head == NULL)
			ws->tail = NULL;
		m->next = NULL;
	}
	if (ws->head == NULL)
		efd_drain(ws->qfd);
	pthread_mutex_unlock(&ws->qlock);
	return m;
}

static struct worker *
find_worker(struct fm_workers *ws, size_t account)
{
	for (size_t i = 0; i < ws->n; i++)
		if (ws->w[i].index == account)
			return &ws->w[i];
	return NULL;
}

int
fm_workers_request(struct fm_workers *ws, size_t account, uint64_t *seq_r)
{
	struct worker *w = find_worker(ws, account);
	if (w == NULL)
		return -1;
	pthread_mutex_lock(&w->lock);
	w->manual = true;
	*seq_r = w->started_seq + 1;
	pthread_mutex_unlock(&w->lock);
	efd_signal(w->wake_fd);
	return 0;
}

int
fm_workers_push(struct fm_workers *ws, size_t account)
{
	struct worker *w = find_worker(ws, account);
	if (w == NULL)
		return -1;
	pthread_mutex_lock(&w->lock);
	w->push = true;
	pthread_mutex_unlock(&w->lock);
	efd_signal(w->wake_fd);
	return 0;
}

void
fm_workers_network_changed(struct fm_workers *ws)
{
	for (size_t i = 0; i < ws->n; i++) {
		struct worker *w = &ws->w[i];
		pthread_mutex_lock(&w->lock);
		w->network = true;
		pthread_mutex_unlock(&w->lock);
		efd_signal(w->wake_fd);
	}
}

void
fm_workers_stop(struct fm_workers **wsp,
                void (*on_msg)(void *ctx, struct fm_account_msg *m), void *ctx)
{
	struct fm_workers *ws = *wsp;
	if (ws == NULL)
		return;
	/* Every pass is cancelled first, so that a worker waiting for the
	 * store thread is not kept behind another account's pass. */
	for (size_t i = 0; i < ws->n; i++) {
		struct worker *w = &ws->w[i];
		if (!w->started)
			continue;
		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_mutex_unlock(&w->lock);
		efd_signal(w->cancel_fd);
		efd_signal(w->wake_fd);
	}
	for (size_t i = 0; i < ws->n; i++) {
		if (ws->w[i].started)
			pthread_join(ws->w[i].thread, NULL);
		worker_free(&ws->w[i]);
	}
	struct fm_account_msg *m;
	while ((m = ws->head) != NULL) {
		ws->head = m->next;
		m->next = NULL;
		if (on_msg != NULL)
			on_msg(ctx, m);
		else
			fm_account_msg_free(&m);
	}
	if (ws->qfd >= 0)
		close(ws->qfd);
	pthread_mutex_destroy(&ws->qlock);
	free(ws->w);
	free(ws);
	*wsp = NULL;
}

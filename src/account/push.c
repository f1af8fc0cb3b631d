/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Push for IMAP accounts with idle = yes: one thread per watched folder
 * holds its own session in IDLE (src/imap/idle.c) and, when the server
 * reports news, asks the account's worker for a pass. The threads touch
 * no store and no shared state: their only way out is
 * fm_workers_request(). A lost link is reconnected with back-off; a
 * cancel (the pool stopping) ends every wait at once. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "account/account.h"
#include "imap/imap.h"
#include "log/log.h"
#include "store/store.h"

enum {
	/* Folders watched per account: INBOX first, then the others. */
	PUSH_FOLDERS_MAX = 5,
	/* Each IDLE lasts at most this long before it is renewed. */
	PUSH_WAIT_MS = 25 * 60 * 1000,
	BACKOFF_FIRST_MS = 1000,
	BACKOFF_MAX_MS = 5 * 60 * 1000,
};

struct pusher {
	struct fm_push_pool *pool;
	const struct fm_account *acct;
	size_t index; /* the account's, for fm_workers_request */
	char *folder;
	pthread_t thread;
	bool started;
};

struct fm_push_pool {
	struct fm_workers *workers;
	struct fm_trace *trace;
	struct fm_net_limits limits;
	int cancel_fd; /* an eventfd: readable = stop */
	struct pusher *v;
	size_t n;
};

/* Sleeps ms, or less when the pool stops; true when it stops. */
static bool
pause_or_stop(int cancel_fd, unsigned ms)
{
	struct pollfd pfd = {.fd = cancel_fd, .events = POLLIN};
	int r;
	do
		r = poll(&pfd, 1, (int)ms);
	while (r < 0 && errno == EINTR);
	return r > 0;
}

static void *
push_main(void *arg)
{
	struct pusher *ps = arg;
	struct fm_push_pool *pool = ps->pool;
	unsigned backoff = BACKOFF_FIRST_MS;
	bool said = false;
	for (;;) {
		struct fm_session_opts o = {
		    .trace = pool->trace,
		    .cancel_fd = pool->cancel_fd,
		    .limits = pool->limits,
		    .creds = fm_creds_new(ps->acct),
		};
		struct fm_error err;
		fm_error_clear(&err);
		struct fm_imap_watch *w = NULL;
		int r = fm_imap_watch_open(ps->acct, &o, ps->folder, &w, &err);
		while (r == 0) {
			said = false;
			backoff = BACKOFF_FIRST_MS;
			r = fm_imap_watch_wait(w, PUSH_WAIT_MS, &err);
			if (r == 1) {
				uint64_t seq;
				fm_workers_request(pool->workers, ps->index,
				                   &seq);
				r = 0;
			}
		}
		fm_imap_watch_close(&w);
		fm_creds_free(&o.creds);
		if (err.cls == FM_ERR_CANCELLED)
			break;
		if (!said)
			fm_log_info(_("%s/%s: push stopped (%s); trying again"),
			            ps->acct->name, ps->folder, err.user);
		said = true;
		/* Credentials and trust problems are the worker's to report;
		 * push only waits longer for them. */
		if (err.cls == FM_ERR_CREDENTIALS || err.cls == FM_ERR_TLS ||
		    err.cls == FM_ERR_CONFIG)
			backoff = BACKOFF_MAX_MS;
		if (pause_or_stop(pool->cancel_fd, backoff))
			break;
		backoff =
		    backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	return NULL;
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
	for (size_t i = 0; i < cfg->n_accounts; i++) {
		const struct fm_account *a = &cfg->accounts[i];
		if (a->protocol != FM_PROTO_IMAP || !a->idle)
			continue;
		/* INBOX always (it may not be synced yet), then the
		 * account's other folders as the store has them. */
		const char *names[PUSH_FOLDERS_MAX];
		size_t nn = 0;
		names[nn++] = "INBOX";
		struct fm_store_folder *fv = NULL;
		size_t nf = 0;
		if (reader != NULL &&
		    fm_store_folders(reader, a->name, &fv, &nf, &rerr) < 0)
			nf = 0;
		for (size_t k = 0; k < nf && nn < PUSH_FOLDERS_MAX; k++)
			if (strcmp(fv[k].folder, "INBOX") != 0 &&
			    !fm_store_local_only(fv[k].folder))
				names[nn++] = fv[k].folder;
		for (size_t k = 0; k < nn; k++) {
			pool->v = xreallocarray(pool->v, pool->n + 1,
			                        sizeof(*pool->v));
			struct pusher *ps = &pool->v[pool->n++];
			memset(ps, 0, sizeof(*ps));
			ps->acct = a;
			ps->index = i;
			ps->folder = xstrdup(names[k]);
		}
		fm_store_folders_free(fv, nf);
	}
	fm_store_reader_free(&reader);
	for (size_t k = 0; k < pool->n; k++) {
		pool->v[k].pool = pool;
		if (pthread_create(&pool->v[k].thread, NULL, push_main,
		                   &pool->v[k]) == 0)
			pool->v[k].started = true;
		else
			fm_log_warn(_("%s/%s: cannot start push"),
			            pool->v[k].acct->name, pool->v[k].folder);
	}
	*pool_r = pool;
	return 0;
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
	for (size_t k = 0; k < pool->n; k++) {
		if (pool->v[k].started)
			pthread_join(pool->v[k].thread, NULL);
		free(pool->v[k].folder);
	}
	free(pool->v);
	close(pool->cancel_fd);
	free(pool);
	*pool_p = NULL;
}

size_t
fm_push_pool_size(const struct fm_push_pool *pool)
{
	return pool != NULL ? pool->n : 0;
}

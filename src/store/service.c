/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The store thread. A queue of calls guarded by one mutex; each call
 * carries its own completion, so callers on any thread simply wait for
 * their answer. Between calls the thread indexes in small batches (a
 * batch is one notmuch transaction), so a call waits for at most one
 * batch, never for the whole index. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "store/store.h"

enum { INDEX_BATCH = 200, FLUSH_EVERY_MS = 2000 };

struct call {
	fm_store_fn *fn;
	void *ctx;
	struct fm_error *err;
	int result;
	bool done;
	struct call *next;
};

struct fm_store_service {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the thread: a call or stop arrived */
	pthread_cond_t done; /* callers: some call finished */
	struct call *head, *tail;
	bool stopping;
	struct fm_store *store;
	bool index_idle; /* nothing left to index */
	unsigned long batches;
	/* start-up */
	struct fm_store_opts opts;
	bool started;
	int start_result;
	struct fm_error start_err;
};

static void *
service_main(void *arg)
{
	struct fm_store_service *svc = arg;
	int r = fm_store_open(&svc->opts, &svc->store, &svc->start_err);
	pthread_mutex_lock(&svc->lock);
	svc->started = true;
	svc->start_result = r;
	pthread_cond_broadcast(&svc->done);
	pthread_mutex_unlock(&svc->lock);
	if (r < 0)
		return NULL;
	uint64_t last_flush = fm_now_ms();
	pthread_mutex_lock(&svc->lock);
	for (;;) {
		while (svc->head == NULL && !svc->stopping && svc->index_idle) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&svc->wake, &svc->lock, &ts);
			if (fm_now_ms() - last_flush >= FLUSH_EVERY_MS)
				break;
		}
		struct call *c = svc->head;
		if (c != NULL) {
			svc->head = c->next;
			if (svc->head == NULL)
				svc->tail = NULL;
		}
		bool stopping = svc->stopping;
		pthread_mutex_unlock(&svc->lock);
		struct fm_error err;
		fm_error_clear(&err);
		if (c != NULL) {
			c->result = c->fn(svc->store, c->ctx, c->err);
			/* New work may want indexing. */
			svc->index_idle = false;
		} else if (!svc->index_idle && !stopping) {
			size_t done = 0;
			if (fm_store_index_pending(svc->store, INDEX_BATCH,
			                           &done, &err) < 0) {
				fm_log_warn("%s", err.user);
				done = 0;
			}
			if (done > 0)
				__atomic_add_fetch(&svc->batches, 1,
				                   __ATOMIC_RELAXED);
			svc->index_idle = done == 0;
		}
		if (fm_now_ms() - last_flush >= FLUSH_EVERY_MS ||
		    (c == NULL && svc->index_idle)) {
			if (fm_store_flush(svc->store, &err) < 0)
				fm_log_warn("%s", err.user);
			last_flush = fm_now_ms();
		}
		pthread_mutex_lock(&svc->lock);
		if (c != NULL) {
			c->done = true;
			pthread_cond_broadcast(&svc->done);
		}
		if (stopping && svc->head == NULL)
			break;
	}
	pthread_mutex_unlock(&svc->lock);
	fm_store_close(&svc->store);
	return NULL;
}

int
fm_store_service_start(const struct fm_store_opts *opts,
                       struct fm_store_service **svc_r, struct fm_error *err)
{
	*svc_r = NULL;
	struct fm_store_service *svc = xcalloc(1, sizeof(*svc));
	pthread_mutex_init(&svc->lock, NULL);
	pthread_cond_init(&svc->wake, NULL);
	pthread_cond_init(&svc->done, NULL);
	svc->opts = *opts;
	svc->index_idle = !opts->index;
	if (pthread_create(&svc->thread, NULL, service_main, svc) != 0) {
		free(svc);
		return fm_error_set(err, FM_ERR_LOCAL,
		                    _("cannot start the store thread"));
	}
	pthread_mutex_lock(&svc->lock);
	while (!svc->started)
		pthread_cond_wait(&svc->done, &svc->lock);
	pthread_mutex_unlock(&svc->lock);
	if (svc->start_result < 0) {
		pthread_join(svc->thread, NULL);
		if (err != NULL)
			*err = svc->start_err;
		pthread_mutex_destroy(&svc->lock);
		pthread_cond_destroy(&svc->wake);
		pthread_cond_destroy(&svc->done);
		free(svc);
		return -1;
	}
	*svc_r = svc;
	return 0;
}

int
fm_store_call(struct fm_store_service *svc, fm_store_fn *fn, void *ctx,
              struct fm_error *err)
{
	struct call c = {.fn = fn, .ctx = ctx, .err = err};
	pthread_mutex_lock(&svc->lock);
	if (svc->tail != NULL)
		svc->tail->next = &c;
	else
		svc->head = &c;
	svc->tail = &c;
	pthread_cond_signal(&svc->wake);
	while (!c.done)
		pthread_cond_wait(&svc->done, &svc->lock);
	pthread_mutex_unlock(&svc->lock);
	return c.result;
}

unsigned long
fm_store_service_batches(struct fm_store_service *svc)
{
	return __atomic_load_n(&svc->batches, __ATOMIC_RELAXED);
}

void
fm_store_service_stop(struct fm_store_service **svcp)
{
	struct fm_store_service *svc = *svcp;
	if (svc == NULL)
		return;
	pthread_mutex_lock(&svc->lock);
	svc->stopping = true;
	pthread_cond_signal(&svc->wake);
	pthread_mutex_unlock(&svc->lock);
	pthread_join(svc->thread, NULL);
	pthread_mutex_destroy(&svc->lock);
	pthread_cond_destroy(&svc->wake);
	pthread_cond_destroy(&svc->done);
	free(svc);
	*svcp = NULL;
}

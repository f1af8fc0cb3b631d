/* SPDX-License-Identifier: GPL-3.0-or-later */
/* One send/receive pass of one account: the single place where a protocol
 * engine is chosen: the Outbox goes out, then IMAP syncs or POP3
 * downloads. */
#include "config.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "account/account.h"
#include "imap/imap.h"
#include "log/log.h"
#include "mime/mime.h"
#include "pop3/pop3.h"
#include "smtp/smtp.h"
#include "store/store.h"

struct pass_ctx {
	const struct fm_account *acct;
	const struct fm_session_opts *outer;
	const struct fm_pass_hooks *hooks;
	struct fm_pass_result *res;
	/* What arrived, by base name, until the pass is over (none kept
	 * when only counted). */
	bool counts_only;
	char **folders;
	char **bases;
	size_t n;
};

void
fm_pass_result_free(struct fm_pass_result *res)
{
	if (res == NULL)
		return;
	for (size_t i = 0; i < res->n_news; i++) {
		free(res->news[i].folder);
		free(res->news[i].base);
		free(res->news[i].from);
		free(res->news[i].subject);
	}
	free(res->news);
	memset(res, 0, sizeof(*res));
}

/* Every step of the session goes to the caller's observer, and the TCP
 * step tells whether the server could be reached at all. */
static void
on_step(void *ctx, const char *step, unsigned ms, bool ok, const char *detail)
{
	struct pass_ctx *p = ctx;
	if (ok && strcmp(step, "TCP") == 0)
		p->res->reached = true;
	if (p->hooks != NULL && p->hooks->step != NULL)
		p->hooks->step(p->hooks->ctx, step, ok);
	const struct fm_net_observer *obs = p->outer->observer;
	if (obs != NULL && obs->step != NULL)
		obs->step(obs->ctx, step, ms, ok, detail);
}

static void
on_progress(void *ctx, size_t done, size_t total, uint64_t bytes)
{
	struct pass_ctx *p = ctx;
	if (p->hooks != NULL && p->hooks->progress != NULL)
		p->hooks->progress(p->hooks->ctx, "INBOX", done, total, bytes);
}

static void
on_stored(void *ctx, const char *folder, const char *base)
{
	struct pass_ctx *p = ctx;
	p->res->n_new++;
	if (p->counts_only || p->n >= FM_PASS_NEW_MAX)
		return;
	p->folders = xreallocarray(p->folders, p->n + 1, sizeof(*p->folders));
	p->bases = xreallocarray(p->bases, p->n + 1, sizeof(*p->bases));
	p->folders[p->n] = xstrdup(folder);
	p->bases[p->n] = xstrdup(base);
	p->n++;
}

/* Sender and subject of each message that arrived, from its stored
 * header. A message that cannot be read is still counted, without them. */
static void
describe_news(struct pass_ctx *p, struct fm_store *store)
{
	struct fm_pass_result *res = p->res;
	res->news = xcalloc(p->n ? p->n : 1, sizeof(*res->news));
	for (size_t i = 0; i < p->n; i++) {
		struct fm_new_mail *m = &res->news[res->n_news++];
		m->folder = p->folders[i];
		m->base = p->bases[i];
		struct fm_store_info info;
		struct fm_error err;
		fm_error_clear(&err);
		struct fm_envelope *env = NULL;
		if (fm_store_lookup(store, p->acct->name, m->folder, m->base,
		                    &info, &err) == 1) {
			char *dir = fm_store_folder_dir(
			    fm_store_data_dir(store), p->acct->name, m->folder);
			char *path = fm_path_join(dir, info.file);
			if (fm_mime_envelope_read(path, &env, &err) < 0)
				fm_log_warn("%s", err.user);
			free(path);
			free(dir);
			free(info.file);
		}
		if (env != NULL) {
			m->from =
			    xstrdup(env->from.name[0] != '\0' ? env->from.name
			                                      : env->from.addr);
			m->subject = xstrdup(env->subject);
			fm_envelope_free(&env);
		} else {
			m->from = xstrdup("");
			m->subject = xstrdup("");
		}
	}
	free(p->folders);
	free(p->bases);
	p->folders = p->bases = NULL;
	p->n = 0;
}

int
fm_account_fetch_body(const struct fm_account *acct, struct fm_store *store,
                      const struct fm_session_opts *o, const char *folder,
                      const char *base, struct fm_error *err)
{
	switch (acct->protocol) {
	case FM_PROTO_POP3:
		return fm_pop3_fetch_body(acct, store, o, folder, base, err);
	case FM_PROTO_IMAP:
		return fm_imap_fetch_body(acct, store, o, folder, base, err);
	}
	return 0;
}

static void
on_imap_transfer(void *ctx, const char *folder, size_t done, size_t total,
                 uint64_t bytes)
{
	struct pass_ctx *p = ctx;
	if (p->hooks != NULL && p->hooks->progress != NULL)
		p->hooks->progress(p->hooks->ctx, folder, done, total, bytes);
}

int
fm_account_pass(const struct fm_account *acct, struct fm_store *store,
                const struct fm_session_opts *o,
                const struct fm_pass_hooks *hooks, struct fm_pass_result *res,
                struct fm_error *err)
{
	return fm_account_pass_opts(acct, store, o, hooks, NULL, res, err);
}

int
fm_account_pass_opts(const struct fm_account *acct, struct fm_store *store,
                     const struct fm_session_opts *o,
                     const struct fm_pass_hooks *hooks,
                     const struct fm_pass_opts *po, struct fm_pass_result *res,
                     struct fm_error *err)
{
	memset(res, 0, sizeof(*res));
	uint64_t t0 = fm_now_ms();
	struct pass_ctx p = {.acct = acct,
	                     .outer = o,
	                     .hooks = hooks,
	                     .res = res,
	                     .counts_only = po != NULL && po->counts_only};
	struct fm_net_observer obs = {on_step, &p};
	struct fm_session_opts opts = *o;
	opts.observer = &obs;
	int ret;
	/* Sending first: what was written offline goes out. */
	struct fm_error send_err;
	fm_error_clear(&send_err);
	bool send_failed = false;
	if (acct->smtp_host != NULL) {
		/* What `fulmar send` spooled while this process held the
		 * account joins the Outbox first. */
		if (fm_smtp_spool_import(acct, store, NULL, &send_err) < 0)
			send_failed = true;
		struct fm_smtp_flush_opts fo = {0};
		struct fm_smtp_stats sst;
		memset(&sst, 0, sizeof(sst));
		struct fm_error ferr;
		fm_error_clear(&ferr);
		if (fm_smtp_flush_outbox(acct, store, &opts, &fo, &sst, &ferr) <
		        0 &&
		    !send_failed) {
			send_err = ferr;
			send_failed = true;
		}
		res->sent = sst.sent;
		if (send_failed && send_err.cls == FM_ERR_CANCELLED) {
			*err = send_err;
			describe_news(&p, store);
			res->ms = fm_now_ms() - t0;
			return -1;
		}
	}
	switch (acct->protocol) {
	case FM_PROTO_POP3: {
		struct fm_pop3_progress progress = {
		    .fn = on_progress, .ctx = &p, .stored = on_stored};
		struct fm_pop3_stats st;
		ret = fm_pop3_sync(acct, store, &opts, (int64_t)time(NULL),
		                   &progress, &st, err);
		res->on_server = st.on_server;
		res->downloaded = st.downloaded;
		res->completed = st.completed;
		res->deleted = st.deleted;
		res->bytes = st.bytes;
		break;
	}
	case FM_PROTO_IMAP:
	default: {
		struct fm_imap_progress ip = {.transfer = on_imap_transfer,
		                              .stored = on_stored,
		                              .ctx = &p};
		struct fm_imap_sync_opts so = {.progress = &ip};
		if (po != NULL) {
			so.folders = po->folders;
			so.n_folders = po->n_folders;
			so.force = po->force;
		}
		struct fm_imap_stats st;
		ret = fm_imap_sync(acct, store, &opts, &so, &st, err);
		res->imap = true;
		res->folders = st.folders;
		res->downloaded = st.downloaded;
		res->uploaded = st.uploaded;
		res->moved = st.moved;
		res->flags_local = st.flags_local;
		res->flags_remote = st.flags_remote;
		res->expunged_local = st.expunged_local;
		res->expunged_remote = st.expunged_remote;
		res->bytes = st.bytes;
		break;
	}
	}
	if (ret == 0 && send_failed) {
		*err = send_err;
		ret = -1;
	}
	/* A cancel cuts the session wherever it is; the protocol code may
	 * see only a broken connection. */
	if (ret < 0 && err->cls != FM_ERR_CANCELLED && o->cancel_fd >= 0) {
		struct pollfd pfd = {.fd = o->cancel_fd, .events = POLLIN};
		if (poll(&pfd, 1, 0) > 0)
			fm_error_set(err, FM_ERR_CANCELLED,
			             _("the pass was cancelled"));
	}
	/* Messages stored before a failure have arrived all the same. */
	describe_news(&p, store);
	res->ms = fm_now_ms() - t0;
	return ret;
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* `fulmar sync`: one send/receive pass, headless. When a fulmar is running
 * already (`fulmar watch`, the UI) it writes the accounts, so sync asks it
 * for the passes through its control socket and reports what they did;
 * otherwise sync runs them itself through fm_account_pass(). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "account/account.h"
#include "cli/cli.h"
#include "log/log.h"
#include "store/store.h"

/* The longest reply line a running fulmar may send; how often to look
 * again while another process holds the lock. */
enum { REPLY_MAX = 64 * 1024, LOCK_POLL_MS = 200 };

struct progress_ctx {
	const char *account;
	bool tty;
	uint64_t last_ms;
};

static void
on_progress(void *ctx, const char *folder, size_t done, size_t total,
            uint64_t bytes)
{
	struct progress_ctx *p = ctx;
	uint64_t now = fm_now_ms();
	if (!p->tty || (now - p->last_ms < 100 && done < total))
		return;
	p->last_ms = now;
	fprintf(stderr, _("\r%s/%s: %zu/%zu messages, %.1f MB "), p->account,
	        folder, done, total, (double)bytes / 1e6);
	fflush(stderr);
}

void
fm_cli_print_pass(FILE *out, const char *account,
                  const struct fm_pass_result *res)
{
	if (res->sent > 0)
		fprintf(out, _("%s: %zu sent from the Outbox\n"), account,
		        res->sent);
	if (res->imap) {
		fprintf(out,
		        _("%s: %zu folders, %zu new (%.1f MB), %zu uploaded, "
		          "%zu moved, flags %zu here / %zu there, %zu removed "
		          "here, %zu expunged there, in %.1f s\n"),
		        account, res->folders, res->downloaded,
		        (double)res->bytes / 1e6, res->uploaded, res->moved,
		        res->flags_local, res->flags_remote,
		        res->expunged_local, res->expunged_remote,
		        (double)res->ms / 1000.0);
		return;
	}
	fprintf(out,
	        _("%s: %zu new (%.1f MB), %zu completed, %zu deleted on the "
	          "server, %zu there, in %.1f s\n"),
	        account, res->downloaded, (double)res->bytes / 1e6,
	        res->completed, res->deleted, res->on_server,
	        (double)res->ms / 1000.0);
}

static int
print_error(const struct fm_cli_ctx *ctx, const char *account,
            const struct fm_error *err)
{
	fprintf(stderr, "fulmar: %s: %s\n", account, err->user);
	if (ctx->verbosity > 0 && err->detail[0] != '\0')
		fprintf(stderr, "fulmar: (%s)\n", err->detail);
	return fm_error_exit_status(err->cls);
}

/* Hands the passes to the running fulmar on fd and prints what it says,
 * as if they had run here. The accounts it did not answer for (it was
 * stopping) are marked in *left (indexes into cfg->accounts), for the
 * caller to run here once the lock is free. */
static int
forward(struct fm_cli_ctx *ctx, int fd, char **names, size_t n, bool *left)
{
	const struct fm_config *cfg = ctx->cfg;
	for (size_t i = 0; i < cfg->n_accounts; i++) {
		left[i] = n == 0;
		for (size_t k = 0; k < n; k++)
			left[i] |= strcmp(names[k], cfg->accounts[i].name) == 0;
	}
	if (ctx->verbosity >= 0)
		fprintf(stderr, _("fulmar: a running fulmar writes these "
		                  "accounts; it does the pass\n"));
	char *req = fm_control_format_request(names, n);
	int w = fm_write_all(fd, req, strlen(req));
	free(req);
	if (w < 0)
		return 0;
	struct fm_buf in;
	fm_buf_init(&in, REPLY_MAX);
	int status = 0;
	struct fm_control_reply r;
	while (fm_control_next_reply(fd, &in, &r) == 0) {
		const struct fm_account *a =
		    fm_config_find_account(cfg, r.account);
		bool cancelled = !r.ok && r.err.cls == FM_ERR_CANCELLED;
		if (a != NULL && !cancelled)
			left[a - cfg->accounts] = false;
		if (r.ok) {
			if (ctx->verbosity >= 0)
				fm_cli_print_pass(stdout, r.account, &r.result);
		} else if (!cancelled) {
			int s = print_error(ctx, r.account, &r.err);
			if (status == 0)
				status = s;
		}
		fm_control_reply_free(&r);
	}
	fm_buf_free(&in);
	return status;
}

/* The passes, here: the accounts named (n_names 0: all), or those marked
 * in only (when not NULL). When another process holds an account's lock
 * nothing runs: *locked_r is set and lock_err says who holds it. */
/* What the command line asked beyond account names. */
struct sync_args {
	const char *const *targets; /* "ACCOUNT" or "ACCOUNT/FOLDER" */
	size_t n_targets;
	bool force;
};

/* The folders of account named in the targets ("ACCOUNT/FOLDER"); NULL
 * (and *n_r 0) when the whole account is meant. Caller frees the array. */
static const char **
folders_of(const struct sync_args *sa, const char *account, size_t *n_r)
{
	size_t al = strlen(account), n = 0;
	bool whole = sa->n_targets == 0;
	const char **v = xcalloc(sa->n_targets + 1, sizeof(*v));
	for (size_t i = 0; i < sa->n_targets; i++) {
		const char *t = sa->targets[i];
		if (strcmp(t, account) == 0)
			whole = true;
		else if (strncmp(t, account, al) == 0 && t[al] == '/' &&
		         t[al + 1] != '\0')
			v[n++] = t + al + 1;
	}
	if (whole || n == 0) {
		free(v);
		*n_r = 0;
		return NULL;
	}
	*n_r = n;
	return v;
}

static int
run_here(struct fm_cli_ctx *ctx, const struct sync_args *sa, char **names,
         size_t n_names, const bool *only, bool *locked_r,
         struct fm_error *lock_err)
{
	*locked_r = false;
	const struct fm_config *cfg = ctx->cfg;
	struct fm_error err;
	fm_error_clear(&err);
	struct fm_trace *trace = NULL;
	if (fm_trace_open(ctx->log_protocol != NULL ? ctx->log_protocol
	                                            : cfg->general.log_protocol,
	                  &trace, &err) < 0)
		return fm_cli_report(ctx, &err);
	/* Keep a search index current if the user has one. */
	char *data_dir = fm_path_data_dir();
	char *index_dir = fm_store_index_dir(data_dir);
	char *notmuch = fm_path_join(index_dir, ".notmuch");
	bool have_index = access(notmuch, F_OK) == 0;
	free(notmuch);
	free(index_dir);
	free(data_dir);
	struct fm_store_opts so = {
	    .cfg = cfg,
	    .wait_for_lock = false,
	    .index = have_index,
	};
	struct fm_store *store = NULL;
	if (fm_store_open(&so, &store, &err) < 0) {
		fm_trace_close(&trace);
		if (err.cls == FM_ERR_TEMPORARY) {
			*locked_r = true;
			*lock_err = err;
			return 0;
		}
		return fm_cli_report(ctx, &err);
	}
	struct fm_net_limits limits;
	fm_net_limits_from_config(&cfg->general, &limits);
	int status = 0;
	for (size_t i = 0; i < cfg->n_accounts; i++) {
		const struct fm_account *a = &cfg->accounts[i];
		bool wanted = n_names == 0;
		for (size_t k = 0; k < n_names; k++)
			wanted |= strcmp(names[k], a->name) == 0;
		if (only != NULL)
			wanted = only[i];
		if (!wanted)
			continue;
		struct progress_ctx pc = {a->name,
		                          isatty(2) && ctx->verbosity >= 0, 0};
		struct fm_pass_hooks hooks = {.progress = on_progress,
		                              .ctx = &pc};
		struct fm_session_opts o = {
		    .trace = trace,
		    .cancel_fd = -1,
		    .limits = limits,
		    .creds = fm_creds_new(a),
		};
		struct fm_pass_result res;
		fm_error_clear(&err);
		size_t nf = 0;
		const char **folders = folders_of(sa, a->name, &nf);
		struct fm_pass_opts po = {.folders = folders,
		                          .n_folders = nf,
		                          .force = sa->force,
		                          .counts_only = true};
		int r =
		    fm_account_pass_opts(a, store, &o, &hooks, &po, &res, &err);
		free(folders);
		fm_creds_free(&o.creds);
		if (pc.tty && pc.last_ms != 0)
			fputc('\n', stderr);
		if (r < 0) {
			int s = print_error(ctx, a->name, &err);
			if (status == 0)
				status = s;
		} else if (ctx->verbosity >= 0) {
			fm_cli_print_pass(stdout, a->name, &res);
		}
		fm_pass_result_free(&res);
	}
	if (fm_store_flush(store, &err) < 0 && status == 0)
		status = fm_cli_report(ctx, &err);
	if (have_index) {
		size_t done;
		do {
			if (fm_store_index_pending(store, 500, &done, &err) <
			    0) {
				fm_log_warn("%s", err.user);
				break;
			}
		} while (done > 0);
	}
	fm_store_close(&store);
	fm_trace_close(&trace);
	return status;
}

int
fm_cmd_sync(struct fm_cli_ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
	    {"force", no_argument, NULL, 'f'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct sync_args sa = {0};
	int c;
	while ((c = getopt_long(argc, argv, "fqh", options, NULL)) != -1) {
		switch (c) {
		case 'f':
			sa.force = true;
			break;
		case 'q':
			ctx->verbosity = -1;
			break;
		case 'h':
			printf(
			    _("usage: fulmar sync [--force] [--quiet] "
			      "[ACCOUNT[/FOLDER]]...\n"
			      "One send/receive pass for the accounts or "
			      "folders named (all by default).\n"
			      "  --force  run past the mass-deletion guard\n"
			      "  --quiet  print nothing but errors\n"
			      "If a fulmar is running (fulmar watch), it does "
			      "the pass and sync reports its outcome.\n"));
			return 0;
		default:
			return 64;
		}
	}
	int ret = fm_cli_load_config(ctx);
	if (ret != 0)
		return ret;
	const struct fm_config *cfg = ctx->cfg;
	size_t n_names = (size_t)(argc - optind);
	/* Account names (without "/FOLDER"), for forwarding and the loop. */
	char **names = xcalloc(n_names + 1, sizeof(*names));
	for (size_t i = 0; i < n_names; i++) {
		const char *arg = argv[optind + (int)i];
		const char *slash = strchr(arg, '/');
		names[i] = slash != NULL ? xstrndup(arg, (size_t)(slash - arg))
		                         : xstrdup(arg);
		const struct fm_account *a =
		    fm_config_find_account(cfg, names[i]);
		if (a == NULL ||
		    (slash != NULL && a->protocol != FM_PROTO_IMAP &&
		     strcmp(slash + 1, "INBOX") != 0)) {
			if (a == NULL)
				fprintf(stderr,
				        _("fulmar sync: no account named '%s' "
				          "in %s\n"),
				        names[i], cfg->path);
			else
				fprintf(stderr,
				        _("fulmar sync: %s is a POP3 account: "
				          "it has only INBOX\n"),
				        a->name);
			for (size_t k = 0; k <= i; k++)
				free(names[k]);
			free(names);
			return 64;
		}
	}
	sa.targets = (const char *const *)(argv + optind);
	sa.n_targets = n_names;
	char *data_dir = fm_path_data_dir();
	bool *left = NULL;
	bool said = false;
	int status = 0;
	/* Whoever holds the lock may be a fulmar that is starting (its
	 * control socket comes a moment after its lock) or another sync:
	 * ask for the socket again while waiting for the lock. */
	for (;;) {
		struct fm_error err;
		fm_error_clear(&err);
		int fd = -1;
		int k =
		    left == NULL ? fm_control_connect(data_dir, &fd, &err) : 1;
		if (k < 0) {
			status = fm_cli_report(ctx, &err);
			break;
		}
		if (k == 0) {
			left = xcalloc(cfg->n_accounts + 1, sizeof(*left));
			status = forward(ctx, fd, names, n_names, left);
			close(fd);
			bool any = false;
			for (size_t i = 0; i < cfg->n_accounts; i++)
				any |= left[i];
			if (!any)
				break;
			/* It stopped before it answered: the lock will be
			 * free in a moment. */
			if (ctx->verbosity >= 0)
				fprintf(stderr,
				        _("fulmar: the running fulmar is "
				          "stopping; doing the pass here\n"));
			continue;
		}
		bool locked;
		int s = run_here(ctx, &sa, names, n_names, left, &locked, &err);
		if (!locked) {
			if (status == 0)
				status = s;
			break;
		}
		if (!said && ctx->verbosity >= 0)
			fprintf(stderr,
			        _("fulmar: %s\nfulmar: waiting for it to "
			          "finish...\n"),
			        err.user);
		said = true;
		poll(NULL, 0, LOCK_POLL_MS);
	}
	free(left);
	free(data_dir);
	for (size_t i = 0; i < n_names; i++)
		free(names[i]);
	free(names);
	return status;
}

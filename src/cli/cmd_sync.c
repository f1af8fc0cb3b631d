/* SPDX-License-Identifier: GPL-3.0-or-later */
/* `fulmar sync`: one send/receive pass, headless. POP3 accounts download
 * into the local store; IMAP synchronisation comes with its own engine. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "log/log.h"
#include "pop3/pop3.h"
#include "store/store.h"

struct progress_ctx {
	const char *account;
	bool tty;
	uint64_t last_ms;
};

static void
on_progress(void *ctx, size_t done, size_t total, uint64_t bytes)
{
	struct progress_ctx *p = ctx;
	uint64_t now = fm_now_ms();
	if (!p->tty || (now - p->last_ms < 100 && done < total))
		return;
	p->last_ms = now;
	fprintf(stderr, _("\r%s: %zu/%zu messages, %.1f MB "), p->account, done,
	        total, (double)bytes / 1e6);
	fflush(stderr);
}

static void
say_waiting(void *ctx, const char *account, pid_t holder)
{
	fprintf(stderr,
	        _("fulmar: account %s is being written by another fulmar "
	          "(pid %ld); waiting for it to finish...\n"),
	        account, (long)holder);
}

int
fm_cmd_sync(struct fm_cli_ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		if (c == 'h') {
			printf(_("usage: fulmar sync [ACCOUNT]...\n"
			         "One send/receive pass for the accounts named "
			         "(all by default).\n"));
			return 0;
		}
		return 64;
	}
	int ret = fm_cli_load_config(ctx);
	if (ret != 0)
		return ret;
	const struct fm_config *cfg = ctx->cfg;
	for (int i = optind; i < argc; i++) {
		if (fm_config_find_account(cfg, argv[i]) == NULL) {
			fprintf(stderr,
			        _("fulmar sync: no account named '%s' in %s\n"),
			        argv[i], cfg->path);
			return 64;
		}
	}
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
	    .wait_for_lock = true,
	    .on_wait = say_waiting,
	    .index = have_index,
	};
	struct fm_store *store = NULL;
	if (fm_store_open(&so, &store, &err) < 0) {
		fm_trace_close(&trace);
		return fm_cli_report(ctx, &err);
	}
	struct fm_net_limits limits;
	fm_net_limits_from_config(&cfg->general, &limits);
	int status = 0;
	for (size_t i = 0; i < cfg->n_accounts; i++) {
		const struct fm_account *a = &cfg->accounts[i];
		bool wanted = optind >= argc;
		for (int k = optind; k < argc; k++)
			wanted |= strcmp(argv[k], a->name) == 0;
		if (!wanted)
			continue;
		if (a->protocol == FM_PROTO_IMAP) {
			fprintf(
			    stderr,
			    _("fulmar sync: %s: IMAP synchronisation is not "
			      "part of this version yet\n"),
			    a->name);
			if (status == 0)
				status = fm_error_exit_status(FM_ERR_PERMANENT);
			continue;
		}
		struct progress_ctx pc = {a->name,
		                          isatty(2) && ctx->verbosity >= 0, 0};
		struct fm_pop3_progress progress = {on_progress, &pc};
		struct fm_session_opts o = {
		    .trace = trace,
		    .cancel_fd = -1,
		    .limits = limits,
		    .creds = fm_creds_new(a),
		};
		struct fm_pop3_stats st;
		uint64_t t0 = fm_now_ms();
		fm_error_clear(&err);
		int r = fm_pop3_sync(a, store, &o, (int64_t)time(NULL),
		                     &progress, &st, &err);
		fm_creds_free(&o.creds);
		if (pc.tty && pc.last_ms != 0)
			fputc('\n', stderr);
		if (r < 0) {
			fprintf(stderr, "fulmar: %s: %s\n", a->name, err.user);
			if (ctx->verbosity > 0 && err.detail[0] != '\0')
				fprintf(stderr, "fulmar: (%s)\n", err.detail);
			if (status == 0)
				status = fm_error_exit_status(err.cls);
			continue;
		}
		if (ctx->verbosity >= 0)
			printf(
			    _("%s: %zu new (%.1f MB), %zu completed, %zu "
			      "deleted on the server, %zu there, in %.1f s\n"),
			    a->name, st.downloaded, (double)st.bytes / 1e6,
			    st.completed, st.deleted, st.on_server,
			    (double)(fm_now_ms() - t0) / 1000.0);
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

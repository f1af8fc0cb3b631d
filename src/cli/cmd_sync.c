/* SPDX-License-Identifier: GPL-3.0-or-later */
/* `fulmar sync`: one send/receive pass, headless. IMAP accounts are
 * synced both ways folder by folder; POP3 accounts download into INBOX. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "log/log.h"
#include "imap/imap.h"
#include "pop3/pop3.h"
#include "store/store.h"

struct progress_ctx {
	const char *account;
	const char *folder;
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

static void
imap_folder(void *ctx, const char *folder, size_t actions)
{
	struct progress_ctx *p = ctx;
	if (p->tty && p->last_ms != 0)
		fputc('\n', stderr);
	p->last_ms = 0;
	p->folder = folder;
	(void)actions;
}

static void
imap_transfer(void *ctx, const char *folder, size_t done, size_t total,
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

/* "ACCOUNT" or "ACCOUNT/FOLDER" arguments. */
struct target {
	const struct fm_account *acct;
	const char *folder; /* NULL: the whole account */
};

static int
run_imap(struct fm_cli_ctx *ctx, const struct fm_account *a,
         struct fm_store *store, struct fm_session_opts *o,
         const char *const *folders, size_t n_folders, bool force,
         struct progress_ctx *pc, struct fm_error *err)
{
	struct fm_imap_progress pr = {imap_folder, imap_transfer, pc};
	struct fm_imap_sync_opts so = {
	    .folders = folders,
	    .n_folders = n_folders,
	    .force = force,
	    .progress = &pr,
	};
	struct fm_imap_stats st;
	uint64_t t0 = fm_now_ms();
	int r = fm_imap_sync(a, store, o, &so, &st, err);
	if (pc->tty && pc->last_ms != 0)
		fputc('\n', stderr);
	if (ctx->verbosity >= 0 && (r == 0 || st.folders > 0))
		printf(_("%s: %zu folders, %zu new (%.1f MB), %zu sent up, "
		         "%zu moved, flags %zu here / %zu there, %zu removed "
		         "here, %zu expunged there, in %.1f s\n"),
		       a->name, st.folders, st.downloaded,
		       (double)st.bytes / 1e6, st.uploaded, st.moved,
		       st.flags_local, st.flags_remote, st.expunged_local,
		       st.expunged_remote, (double)(fm_now_ms() - t0) / 1000.0);
	return r;
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
	bool force = false;
	int c;
	while ((c = getopt_long(argc, argv, "fqh", options, NULL)) != -1) {
		switch (c) {
		case 'f':
			force = true;
			break;
		case 'q':
			ctx->verbosity = -1;
			break;
		case 'h':
			printf(_("usage: fulmar sync [--force] [--quiet] "
			         "[ACCOUNT[/FOLDER]]...\n"
			         "One send/receive pass for the accounts or "
			         "folders named (all by default).\n"
			         "  --force  run past the mass-deletion guard\n"
			         "  --quiet  print nothing but errors\n"));
			return 0;
		default:
			return 64;
		}
	}
	int ret = fm_cli_load_config(ctx);
	if (ret != 0)
		return ret;
	const struct fm_config *cfg = ctx->cfg;
	size_t n_targets = (size_t)(argc - optind);
	struct target *targets = xcalloc(n_targets + 1, sizeof(*targets));
	for (size_t i = 0; i < n_targets; i++) {
		const char *arg = argv[optind + (int)i];
		const char *slash = strchr(arg, '/');
		char *name = slash != NULL
		                 ? xstrndup(arg, (size_t)(slash - arg))
		                 : xstrdup(arg);
		targets[i].acct = fm_config_find_account(cfg, name);
		free(name);
		if (targets[i].acct == NULL) {
			fprintf(stderr,
			        _("fulmar sync: no account named '%s' in %s\n"),
			        arg, cfg->path);
			free(targets);
			return 64;
		}
		targets[i].folder =
		    slash != NULL && slash[1] != '\0' ? slash + 1 : NULL;
		if (slash != NULL &&
		    targets[i].acct->protocol != FM_PROTO_IMAP &&
		    targets[i].folder != NULL &&
		    strcmp(targets[i].folder, "INBOX") != 0) {
			fprintf(stderr,
			        _("fulmar sync: %s is a POP3 account: it has "
			          "only INBOX on the server\n"),
			        targets[i].acct->name);
			free(targets);
			return 64;
		}
	}
	struct fm_error err;
	fm_error_clear(&err);
	struct fm_trace *trace = NULL;
	if (fm_trace_open(ctx->log_protocol != NULL ? ctx->log_protocol
	                                            : cfg->general.log_protocol,
	                  &trace, &err) < 0) {
		free(targets);
		return fm_cli_report(ctx, &err);
	}
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
		free(targets);
		return fm_cli_report(ctx, &err);
	}
	struct fm_net_limits limits;
	fm_net_limits_from_config(&cfg->general, &limits);
	int status = 0;
	for (size_t i = 0; i < cfg->n_accounts; i++) {
		const struct fm_account *a = &cfg->accounts[i];
		bool wanted = n_targets == 0, whole = n_targets == 0;
		const char **folders = xcalloc(n_targets + 1, sizeof(*folders));
		size_t n_folders = 0;
		for (size_t k = 0; k < n_targets; k++) {
			if (targets[k].acct != a)
				continue;
			wanted = true;
			if (targets[k].folder == NULL)
				whole = true;
			else
				folders[n_folders++] = targets[k].folder;
		}
		if (!wanted) {
			free(folders);
			continue;
		}
		struct progress_ctx pc = {a->name, NULL,
		                          isatty(2) && ctx->verbosity >= 0, 0};
		struct fm_session_opts o = {
		    .trace = trace,
		    .cancel_fd = -1,
		    .limits = limits,
		    .creds = fm_creds_new(a),
		};
		fm_error_clear(&err);
		int r;
		if (a->protocol == FM_PROTO_IMAP) {
			r = run_imap(ctx, a, store, &o, whole ? NULL : folders,
			             whole ? 0 : n_folders, force, &pc, &err);
		} else {
			struct fm_pop3_progress progress = {on_progress, &pc};
			struct fm_pop3_stats st;
			uint64_t t0 = fm_now_ms();
			r = fm_pop3_sync(a, store, &o, (int64_t)time(NULL),
			                 &progress, &st, &err);
			if (pc.tty && pc.last_ms != 0)
				fputc('\n', stderr);
			if (r == 0 && ctx->verbosity >= 0)
				printf(
				    _("%s: %zu new (%.1f MB), %zu completed, "
				      "%zu deleted on the server, %zu there, "
				      "in %.1f s\n"),
				    a->name, st.downloaded,
				    (double)st.bytes / 1e6, st.completed,
				    st.deleted, st.on_server,
				    (double)(fm_now_ms() - t0) / 1000.0);
		}
		fm_creds_free(&o.creds);
		free(folders);
		if (r < 0) {
			fprintf(stderr, "fulmar: %s: %s\n", a->name, err.user);
			if (ctx->verbosity > 0 && err.detail[0] != '\0')
				fprintf(stderr, "fulmar: (%s)\n", err.detail);
			if (status == 0)
				status = fm_error_exit_status(err.cls);
		}
	}
	free(targets);
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

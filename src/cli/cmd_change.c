/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Changing mail headless: fulmar flag, move and delete. Each change goes
 * through the single writer (struct fm_store), which applies it to the
 * maildir at once and journals it, so the next sync replays it to the
 * server; offline it simply waits in the journal. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "store/maildir.h"
#include "store/store.h"

/* The flags a user names, and their maildir letters. */
static const struct {
	const char *name;
	uint32_t bit;
} flag_names[] = {
    {"seen", FM_MAILDIR_SEEN},        {"flagged", FM_MAILDIR_FLAGGED},
    {"answered", FM_MAILDIR_REPLIED}, {"draft", FM_MAILDIR_DRAFT},
    {"deleted", FM_MAILDIR_TRASHED},  {"forwarded", FM_MAILDIR_PASSED},
};

/* A message named on the command line, resolved to the store's terms. */
struct target {
	char *account;
	char *folder;
	char *base;
};

static void
targets_free(struct target *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(t[i].account);
		free(t[i].folder);
		free(t[i].base);
	}
	free(t);
}

/* Splits the path of a message file under mail_root
 * (MAIL_ROOT/ACCOUNT/FOLDER/{cur,new}/FILE) into its three parts. */
static int
split_path(const char *mail_root, const char *path, const char *id,
           struct target *t, struct fm_error *err)
{
	size_t root_len = strlen(mail_root);
	const char *rest = path + root_len;
	const char *first = strchr(rest + 1, '/');
	const char *file = strrchr(path, '/');
	const char *sub = file;
	if (sub != NULL && sub > path) {
		sub--;
		while (sub > path && *sub != '/')
			sub--;
	}
	if (strncmp(path, mail_root, root_len) != 0 || rest[0] != '/' ||
	    first == NULL || sub == NULL || sub <= first)
		return fm_error_set(err, FM_ERR_LOCAL,
		                    _("cannot tell where %s is kept (%s)"), id,
		                    path);
	size_t base_len;
	const char *base = fm_maildir_base(file + 1, &base_len);
	t->account = xstrndup(rest + 1, (size_t)(first - rest - 1));
	t->folder = xstrndup(first + 1, (size_t)(sub - first - 1));
	t->base = xstrndup(base, base_len);
	return 0;
}

/* Resolves every ID (ACCOUNT/FOLDER/BASE or id:MESSAGE-ID) before anything
 * changes, so a typo in the last one changes nothing. */
static int
resolve(struct fm_cli_ctx *ctx, char **ids, size_t n, struct target **t_r)
{
	struct fm_error err;
	fm_error_clear(&err);
	struct fm_store_reader *reader = NULL;
	if (fm_store_reader_open(ctx->cfg, NULL, &reader, &err) < 0)
		return fm_cli_report(ctx, &err);
	char *data_dir = fm_path_data_dir();
	char *mail_root = fm_store_mail_root(data_dir);
	free(data_dir);
	struct target *t = xcalloc(n, sizeof(*t));
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++) {
		char *path = NULL;
		if (fm_store_locate(reader, ids[i], &path, &err) < 0 ||
		    split_path(mail_root, path, ids[i], &t[i], &err) < 0)
			ret = fm_cli_report(ctx, &err);
		free(path);
	}
	free(mail_root);
	fm_store_reader_free(&reader);
	if (ret != 0) {
		targets_free(t, n);
		return ret;
	}
	*t_r = t;
	return 0;
}

static void
say_waiting(void *ctx, const char *account, pid_t holder)
{
	fprintf(stderr,
	        _("fulmar: account %s is being written by another fulmar "
	          "(pid %ld); waiting for it to finish...\n"),
	        account, (long)holder);
}

/* The store, opened for writing; it keeps a search index current only if
 * the user has one, as fulmar sync does. */
static int
open_store(struct fm_cli_ctx *ctx, struct fm_store **store_r,
           bool *have_index_r)
{
	char *data_dir = fm_path_data_dir();
	char *index_dir = fm_store_index_dir(data_dir);
	char *notmuch = fm_path_join(index_dir, ".notmuch");
	*have_index_r = access(notmuch, F_OK) == 0;
	free(notmuch);
	free(index_dir);
	free(data_dir);
	struct fm_store_opts o = {
	    .cfg = ctx->cfg,
	    .wait_for_lock = true,
	    .on_wait = say_waiting,
	    .index = *have_index_r,
	};
	struct fm_error err;
	fm_error_clear(&err);
	if (fm_store_open(&o, store_r, &err) < 0)
		return fm_cli_report(ctx, &err);
	return 0;
}

/* Saves the summaries, brings the index along, closes the store. status:
 * what the command has to report so far. */
static int
close_store(struct fm_cli_ctx *ctx, struct fm_store **store, bool have_index,
            int status)
{
	struct fm_error err;
	fm_error_clear(&err);
	if (fm_store_flush(*store, &err) < 0 && status == 0)
		status = fm_cli_report(ctx, &err);
	if (have_index && status == 0) {
		size_t done;
		do {
			if (fm_store_index_pending(*store, 500, &done, &err) <
			    0) {
				/* The maildir is right; reindex mends this. */
				fm_cli_report(ctx, &err);
				break;
			}
		} while (done > 0);
	}
	fm_store_close(store);
	return status;
}

enum change_op { CHANGE_FLAG, CHANGE_MOVE, CHANGE_DELETE };

struct change {
	enum change_op op;
	uint32_t add, del;     /* CHANGE_FLAG */
	const char *to_folder; /* CHANGE_MOVE */
	bool create;           /* CHANGE_MOVE: the folder may be new */
};

/* Whether ACCOUNT/FOLDER exists in the local cache. */
static int
folder_exists(struct fm_cli_ctx *ctx, const char *account, const char *folder,
              bool *exists_r)
{
	struct fm_error err;
	fm_error_clear(&err);
	struct fm_store_reader *reader = NULL;
	struct fm_store_folder *f = NULL;
	size_t n = 0;
	if (fm_store_reader_open(ctx->cfg, NULL, &reader, &err) < 0 ||
	    fm_store_folders(reader, account, &f, &n, &err) < 0) {
		fm_store_reader_free(&reader);
		return fm_cli_report(ctx, &err);
	}
	*exists_r = false;
	for (size_t i = 0; i < n; i++)
		*exists_r |= strcmp(f[i].folder, folder) == 0;
	fm_store_folders_free(f, n);
	fm_store_reader_free(&reader);
	return 0;
}

/* Resolves ids, then applies the change to each message in order. */
static int
run_change(struct fm_cli_ctx *ctx, const char *cmd, char **ids, size_t n,
           const struct change *c)
{
	struct fm_store *store = NULL;
	bool have_index = false;
	int ret = open_store(ctx, &store, &have_index);
	if (ret != 0)
		return ret;
	/* Resolved under the lock: no sync moves them meanwhile. */
	struct target *t = NULL;
	ret = resolve(ctx, ids, n, &t);
	for (size_t i = 0;
	     ret == 0 && c->op == CHANGE_MOVE && !c->create && i < n; i++) {
		bool exists = false;
		ret = folder_exists(ctx, t[i].account, c->to_folder, &exists);
		if (ret == 0 && !exists) {
			fprintf(stderr,
			        _("fulmar %s: account %s has no folder '%s' "
			          "(--create makes it)\n"),
			        cmd, t[i].account, c->to_folder);
			ret = 64;
		}
	}
	struct fm_error err;
	fm_error_clear(&err);
	for (size_t i = 0; ret == 0 && i < n; i++) {
		int r = 0;
		switch (c->op) {
		case CHANGE_FLAG:
			r = fm_store_set_flags(store, t[i].account, t[i].folder,
			                       t[i].base, c->add, c->del, &err);
			break;
		case CHANGE_MOVE:
			r = fm_store_move(store, t[i].account, t[i].folder,
			                  t[i].base, c->to_folder, &err);
			break;
		case CHANGE_DELETE:
			r = fm_store_delete(store, t[i].account, t[i].folder,
			                    t[i].base, &err);
			break;
		}
		if (r < 0)
			ret = fm_cli_report(ctx, &err);
		else if (ctx->verbosity > 0)
			fprintf(stderr, "fulmar %s: %s/%s/%s\n", cmd,
			        t[i].account, t[i].folder, t[i].base);
	}
	if (t != NULL)
		targets_free(t, n);
	return close_store(ctx, &store, have_index, ret);
}

static bool
is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

/* Parses "+NAME" or "-NAME" into c; false if arg is not a flag change. */
static bool
parse_flag(const char *arg, struct change *c)
{
	if (arg[0] != '+' && arg[0] != '-')
		return false;
	for (size_t i = 0; i < FM_ARRAY_LEN(flag_names); i++) {
		if (strcmp(arg + 1, flag_names[i].name) != 0)
			continue;
		if (arg[0] == '+') {
			c->add |= flag_names[i].bit;
			c->del &= ~flag_names[i].bit;
		} else {
			c->del |= flag_names[i].bit;
			c->add &= ~flag_names[i].bit;
		}
		return true;
	}
	return false;
}

int
fm_cmd_flag(struct fm_cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] =
	    N_("usage: fulmar flag ID... (+|-)FLAG...\n");
	struct change c = {.op = CHANGE_FLAG};
	char **ids = xcalloc((size_t)argc, sizeof(*ids));
	size_t n = 0, changes = 0;
	bool only_ids = false;
	/* No getopt: "-seen" is a flag change, not five options. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!only_ids && is_help(a)) {
			printf(_(usage));
			printf(_("Sets (+) or clears (-) flags on messages in "
			         "the local cache; the next sync\n"
			         "takes the change to the server. FLAG: seen, "
			         "flagged, answered, draft, deleted,\n"
			         "forwarded. ID is ACCOUNT/FOLDER/ID as fulmar "
			         "list --ids prints it, or\n"
			         "id:MESSAGE-ID.\n"));
			free(ids);
			return 0;
		}
		if (!only_ids && strcmp(a, "--") == 0) {
			only_ids = true;
		} else if (!only_ids && parse_flag(a, &c)) {
			changes++;
		} else if (!only_ids && (a[0] == '+' || a[0] == '-')) {
			fprintf(stderr,
			        _("fulmar flag: unknown flag '%s' (seen, "
			          "flagged, answered, draft, deleted, "
			          "forwarded)\n"),
			        a);
			free(ids);
			return 64;
		} else {
			ids[n++] = argv[i];
		}
	}
	if (n == 0 || changes == 0) {
		fputs(_(usage), stderr);
		free(ids);
		return 64;
	}
	int ret = fm_cli_load_config(ctx);
	if (ret == 0)
		ret = run_change(ctx, "flag", ids, n, &c);
	free(ids);
	return ret;
}

/* Options for move and delete: --help, --create (move only), "--". Fills
 * words with the rest; returns -1 to go on, else the exit status. */
static int
parse_plain(int argc, char **argv, const char *usage, const char *help,
            bool *create, char **words, size_t *n_r)
{
	bool only_words = false;
	size_t n = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (only_words || a[0] != '-' || a[1] == '\0') {
			words[n++] = argv[i];
		} else if (strcmp(a, "--") == 0) {
			only_words = true;
		} else if (is_help(a)) {
			fputs(_(usage), stdout);
			fputs(_(help), stdout);
			return 0;
		} else if (create != NULL && strcmp(a, "--create") == 0) {
			*create = true;
		} else {
			fputs(_(usage), stderr);
			return 64;
		}
	}
	*n_r = n;
	return -1;
}

int
fm_cmd_move(struct fm_cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] =
	    N_("usage: fulmar move [--create] ID... FOLDER\n");
	static const char help[] =
	    N_("Moves messages to another folder of their account in the local "
	       "cache; the next\n"
	       "sync moves them on the server. The message keeps its ID "
	       "(ACCOUNT/FOLDER/ID\n"
	       "with the new folder). --create makes a folder that does not "
	       "exist yet.\n");
	struct change c = {.op = CHANGE_MOVE};
	char **words = xcalloc((size_t)argc, sizeof(*words));
	size_t n = 0;
	int ret = parse_plain(argc, argv, usage, help, &c.create, words, &n);
	if (ret < 0 && n < 2) {
		fputs(_(usage), stderr);
		ret = 64;
	}
	if (ret < 0) {
		c.to_folder = words[n - 1];
		ret = fm_cli_load_config(ctx);
		if (ret == 0)
			ret = run_change(ctx, "move", words, n - 1, &c);
	}
	free(words);
	return ret;
}

int
fm_cmd_delete(struct fm_cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = N_("usage: fulmar delete ID...\n");
	static const char help[] =
	    N_("Deletes messages from the local cache; the next sync "
	       "expunges them on the\n"
	       "server.\n");
	struct change c = {.op = CHANGE_DELETE};
	char **words = xcalloc((size_t)argc, sizeof(*words));
	size_t n = 0;
	int ret = parse_plain(argc, argv, usage, help, NULL, words, &n);
	if (ret < 0 && n == 0) {
		fputs(_(usage), stderr);
		ret = 64;
	}
	if (ret < 0) {
		ret = fm_cli_load_config(ctx);
		if (ret == 0)
			ret = run_change(ctx, "delete", words, n, &c);
	}
	free(words);
	return ret;
}

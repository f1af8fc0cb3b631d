/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Reading mail headless: fulmar list, show, search and reindex, straight
 * from the store (summaries and the index), offline. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "account/account.h"
#include "cli/cli.h"
#include "mime/mime.h"
#include "pop3/pop3.h"
#include "store/maildir.h"
#include "store/store.h"

/* JSON string, escaped per RFC 8259 (the text is UTF-8 already). */
static void
json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;
	     p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", out);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

/* Prints UTF-8 text in the terminal's charset, padded or cut to width
 * columns (0: as is). */
static void
put_cell(FILE *out, const char *utf8, int width)
{
	char *loc = fm_mime_to_locale(utf8 != NULL ? utf8 : "");
	if (width <= 0) {
		fputs(loc, out);
		free(loc);
		return;
	}
	mbstate_t st;
	memset(&st, 0, sizeof(st));
	const char *p = loc;
	int used = 0;
	while (*p != '\0') {
		wchar_t wc;
		size_t n = mbrtowc(&wc, p, MB_CUR_MAX, &st);
		if (n == (size_t)-1 || n == (size_t)-2 || n == 0)
			break;
		int w = wcwidth(wc);
		if (w < 0)
			w = 1;
		if (used + w > width)
			break;
		fwrite(p, 1, n, out);
		used += w;
		p += n;
	}
	for (; used < width; used++)
		fputc(' ', out);
	free(loc);
}

/* The sender as an index shows it: the name when there is one. */
static char *
sender(const char *from)
{
	if (from == NULL)
		return xstrdup("");
	const char *lt = strstr(from, " <");
	if (lt != NULL && lt > from && from[strlen(from) - 1] == '>')
		return xstrndup(from, (size_t)(lt - from));
	return xstrdup(from);
}

static void
flags_string(uint32_t flags, char out[6])
{
	out[0] = flags & FM_MAILDIR_SEEN ? ' ' : 'N';
	out[1] = flags & FM_MAILDIR_FLAGGED ? 'F' : ' ';
	out[2] = flags & FM_MAILDIR_REPLIED ? 'r' : ' ';
	out[3] = flags & FM_MAILDIR_DRAFT ? 'D' : ' ';
	out[4] = flags & FM_MAILDIR_TRASHED ? 'T' : ' ';
	out[5] = '\0';
}

static void
print_rows(const struct fm_store_page *page, bool json, bool ids)
{
	if (json)
		fputs("[", stdout);
	for (size_t i = 0; i < page->n; i++) {
		const struct fm_store_row *r = &page->rows[i];
		char flags[6], date[32] = "";
		flags_string(r->flags, flags);
		if (r->date > 0) {
			time_t t = (time_t)r->date;
			struct tm tm;
			localtime_r(&t, &tm);
			strftime(date, sizeof(date), "%Y-%m-%d %H:%M", &tm);
		}
		if (json) {
			printf("%s\n {\"id\": ", i ? "," : "");
			char *id = xasprintf("%s/%s/%s", r->account, r->folder,
			                     r->base);
			json_string(stdout, id);
			free(id);
			printf(", \"date\": %lld, \"flags\": ",
			       (long long)r->date);
			json_string(stdout, fm_str_trim(flags));
			fputs(", \"from\": ", stdout);
			json_string(stdout, r->from);
			fputs(", \"to\": ", stdout);
			json_string(stdout, r->to);
			fputs(", \"subject\": ", stdout);
			json_string(stdout, r->subject);
			fputs(", \"message_id\": ", stdout);
			json_string(stdout, r->message_id);
			printf(", \"size\": %llu, \"depth\": %u, \"file\": ",
			       (unsigned long long)r->size, r->depth);
			json_string(stdout, r->path);
			fputs("}", stdout);
			continue;
		}
		if (ids)
			printf("%s/%s/%s  ", r->account, r->folder, r->base);
		printf("%-16s %s ", date, flags);
		char *who = sender(r->from);
		put_cell(stdout, who, 24);
		free(who);
		fputs("  ", stdout);
		for (unsigned d = 0; d < r->depth && d < 12; d++)
			fputs("  ", stdout);
		put_cell(stdout, r->subject, 0);
		fputc('\n', stdout);
	}
	if (json)
		fputs(page->n ? "\n]\n" : "]\n", stdout);
}

static int
open_reader(struct fm_cli_ctx *ctx, struct fm_store_reader **reader_r)
{
	int ret = fm_cli_load_config(ctx);
	if (ret != 0)
		return ret;
	struct fm_error err;
	fm_error_clear(&err);
	if (fm_store_reader_open(ctx->cfg, NULL, reader_r, &err) < 0)
		return fm_cli_report(ctx, &err);
	return 0;
}

static const struct option list_options[] = {
    {"limit", required_argument, NULL, 'n'},
    {"threads", no_argument, NULL, 't'},
    {"json", no_argument, NULL, 'j'},
    {"ids", no_argument, NULL, 'i'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int
fm_cmd_list(struct fm_cli_ctx *ctx, int argc, char **argv)
{
	long limit = 0;
	bool threads = false, json = false, ids = false;
	int c;
	while ((c = getopt_long(argc, argv, "n:tjih", list_options, NULL)) !=
	       -1) {
		switch (c) {
		case 'n':
			if (fm_parse_long(optarg, 0, 100000000, &limit) < 0) {
				fprintf(stderr, _("fulmar list: --limit takes "
				                  "a number\n"));
				return 64;
			}
			break;
		case 't':
			threads = true;
			break;
		case 'j':
			json = true;
			break;
		case 'i':
			ids = true;
			break;
		case 'h':
			printf(
			    _("usage: fulmar list [ACCOUNT[/FOLDER]] [--limit "
			      "N] [--threads] [--json] [--ids]\n"
			      "Without a folder: the folders with their "
			      "message and unread counts.\n"
			      "With one: its messages, newest first (or as "
			      "conversations), from the local cache.\n"));
			return 0;
		default:
			return 64;
		}
	}
	if (argc - optind > 1) {
		fprintf(stderr, _("usage: fulmar list [ACCOUNT[/FOLDER]] "
		                  "[--limit N] [--threads] [--json]\n"));
		return 64;
	}
	struct fm_store_reader *reader = NULL;
	int ret = open_reader(ctx, &reader);
	if (ret != 0)
		return ret;
	const char *what = optind < argc ? argv[optind] : NULL;
	const char *slash = what != NULL ? strchr(what, '/') : NULL;
	struct fm_error err;
	fm_error_clear(&err);
	if (slash == NULL) {
		struct fm_store_folder *f;
		size_t n;
		if (fm_store_folders(reader, what, &f, &n, &err) < 0) {
			ret = fm_cli_report(ctx, &err);
		} else {
			for (size_t i = 0; i < n; i++) {
				if (json) {
					printf("%s {\"account\": ",
					       i ? ",\n" : "[\n");
					json_string(stdout, f[i].account);
					fputs(", \"folder\": ", stdout);
					json_string(stdout, f[i].folder);
					printf(", \"total\": %zu, \"unread\": "
					       "%zu}",
					       f[i].total, f[i].unread);
				} else {
					printf("%s/%s\t%zu\t%zu %s\n",
					       f[i].account, f[i].folder,
					       f[i].total, f[i].unread,
					       _("unread"));
				}
			}
			if (json)
				fputs(n ? "\n]\n" : "[]\n", stdout);
			fm_store_folders_free(f, n);
		}
	} else {
		char *account = xstrndup(what, (size_t)(slash - what));
		struct fm_store_page page;
		if (fm_store_view(reader, account, slash + 1,
		                  threads ? FM_STORE_THREADS : FM_STORE_BY_DATE,
		                  0, (size_t)limit, &page, &err) < 0) {
			ret = fm_cli_report(ctx, &err);
		} else {
			print_rows(&page, json, ids);
			fm_store_page_free(&page);
		}
		free(account);
	}
	fm_store_reader_free(&reader);
	return ret;
}

int
fm_cmd_search(struct fm_cli_ctx *ctx, int argc, char **argv)
{
	long limit = 0;
	bool json = false, ids = false;
	int c;
	while ((c = getopt_long(argc, argv, "n:jih", list_options, NULL)) !=
	       -1) {
		switch (c) {
		case 'n':
			if (fm_parse_long(optarg, 0, 100000000, &limit) < 0)
				return 64;
			break;
		case 'j':
			json = true;
			break;
		case 'i':
			ids = true;
			break;
		case 'h':
			printf(_("usage: fulmar search QUERY [--limit N] "
			         "[--json] [--ids]\n"
			         "Searches the index (notmuch query syntax: "
			         "from:, subject:, folder:ACCOUNT/FOLDER, "
			         "tag:unread, date:...).\n"));
			return 0;
		default:
			return 64;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, _("usage: fulmar search QUERY [--limit N] "
		                  "[--json]\n"));
		return 64;
	}
	/* The query is every remaining word, as notmuch takes it. */
	struct fm_buf q;
	fm_buf_init(&q, 65536);
	for (int i = optind; i < argc; i++)
		fm_buf_printf(&q, "%s%s", i > optind ? " " : "", argv[i]);
	struct fm_store_reader *reader = NULL;
	int ret = open_reader(ctx, &reader);
	if (ret == 0) {
		struct fm_error err;
		fm_error_clear(&err);
		struct fm_store_page page;
		if (fm_store_search(reader, q.data, 0, (size_t)limit, &page,
		                    &err) < 0) {
			ret = fm_cli_report(ctx, &err);
		} else {
			print_rows(&page, json, ids);
			fm_store_page_free(&page);
		}
		fm_store_reader_free(&reader);
	}
	fm_buf_free(&q);
	return ret;
}

/* ACCOUNT, FOLDER and BASE of a message file under mail_root
 * (MAIL_ROOT/ACCOUNT/FOLDER/{cur,new}/FILE); false for any other path. */
static bool
split_message_path(const char *mail_root, const char *path, char **account_r,
                   char **folder_r, char **base_r)
{
	size_t rl = strlen(mail_root);
	if (strncmp(path, mail_root, rl) != 0 || path[rl] != '/')
		return false;
	const char *rel = path + rl + 1;
	const char *slash = strchr(rel, '/');
	const char *file = strrchr(rel, '/');
	if (slash == NULL || file == NULL || file - slash < 5)
		return false;
	const char *sub = file - 4; /* "/cur/FILE" or "/new/FILE" */
	if (strncmp(sub, "/cur", 4) != 0 && strncmp(sub, "/new", 4) != 0)
		return false;
	if (sub <= slash + 1)
		return false;
	size_t bl;
	const char *b = fm_maildir_base(file + 1, &bl);
	if (b == NULL || bl == 0)
		return false;
	*account_r = xstrndup(rel, (size_t)(slash - rel));
	*folder_r = xstrndup(slash + 1, (size_t)(sub - (slash + 1)));
	*base_r = xstrndup(b, bl);
	return true;
}

/* Opening a header stub fetches its body (fm_account_fetch_body). When that
 * cannot be done now, *note_r gets why (newly allocated), and the stub is
 * shown as it is. *path_r is updated if the file moved. */
static void
fetch_stub_body(struct fm_cli_ctx *ctx, char **path_r, char **note_r)
{
	const struct fm_config *cfg = ctx->cfg;
	char *data_dir = fm_path_data_dir();
	char *mail_root = fm_store_mail_root(data_dir);
	char *index_dir = fm_store_index_dir(data_dir);
	char *notmuch = fm_path_join(index_dir, ".notmuch");
	bool have_index = access(notmuch, F_OK) == 0;
	free(notmuch);
	free(index_dir);
	char *account = NULL, *folder = NULL, *base = NULL;
	bool ours =
	    split_message_path(mail_root, *path_r, &account, &folder, &base);
	free(mail_root);
	const struct fm_account *a =
	    ours ? fm_config_find_account(cfg, account) : NULL;
	if (a == NULL || !fm_mail_is_partial(data_dir, a, folder, base))
		goto out;
	struct fm_error err;
	fm_error_clear(&err);
	/* Never wait for a sync that holds the account: show what is
	 * here. */
	struct fm_store_opts so = {
	    .cfg = cfg, .wait_for_lock = false, .index = have_index};
	struct fm_store *store = NULL;
	if (fm_store_open(&so, &store, &err) < 0) {
		*note_r = xstrdup(err.user);
		goto out;
	}
	struct fm_trace *trace = NULL;
	if (fm_trace_open(ctx->log_protocol != NULL ? ctx->log_protocol
	                                            : cfg->general.log_protocol,
	                  &trace, &err) < 0) {
		*note_r = xstrdup(err.user);
		fm_store_close(&store);
		goto out;
	}
	struct fm_session_opts o = {
	    .trace = trace,
	    .cancel_fd = -1,
	    .creds = fm_creds_new(a),
	};
	fm_net_limits_from_config(&cfg->general, &o.limits);
	if (fm_account_fetch_body(a, store, &o, folder, base, &err) < 0) {
		*note_r = xstrdup(err.user);
	} else {
		struct fm_store_info li;
		if (fm_store_lookup(store, account, folder, base, &li, &err) ==
		    1) {
			char *dir = fm_store_folder_dir(
			    fm_store_data_dir(store), account, folder);
			free(*path_r);
			*path_r = fm_path_join(dir, li.file);
			free(dir);
			free(li.file);
		}
		size_t done;
		if (have_index)
			fm_store_index_pending(store, 500, &done, &err);
	}
	fm_creds_free(&o.creds);
	fm_store_close(&store);
	fm_trace_close(&trace);
out:
	free(data_dir);
	free(account);
	free(folder);
	free(base);
}

int
fm_cmd_show(struct fm_cli_ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"raw", no_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *file = NULL;
	bool raw = false;
	int c;
	while ((c = getopt_long(argc, argv, "f:rh", options, NULL)) != -1) {
		switch (c) {
		case 'f':
			file = optarg;
			break;
		case 'r':
			raw = true;
			break;
		case 'h':
			printf(_("usage: fulmar show [--raw] ID | --file PATH\n"
			         "Shows a message as text: its headers and "
			         "text decoded, attachments listed.\n"
			         "ID is ACCOUNT/FOLDER/ID as fulmar list --ids "
			         "prints it, or id:MESSAGE-ID.\n"));
			return 0;
		default:
			return 64;
		}
	}
	if ((file == NULL) == (optind >= argc) || argc - optind > 1) {
		fprintf(stderr,
		        _("usage: fulmar show [--raw] ID | --file PATH\n"));
		return 64;
	}
	struct fm_error err;
	fm_error_clear(&err);
	char *path = NULL;
	if (file == NULL) {
		struct fm_store_reader *reader = NULL;
		int ret = open_reader(ctx, &reader);
		if (ret != 0)
			return ret;
		ret = fm_store_locate(reader, argv[optind], &path, &err);
		fm_store_reader_free(&reader);
		if (ret < 0)
			return fm_cli_report(ctx, &err);
	} else {
		path = xstrdup(file);
	}
	char *data = NULL;
	size_t len = 0;
	int r = fm_record_read_file(path, (size_t)1 << 31, &data, &len, &err);
	/* A header stub (download = headers, or max SIZE) gets its body
	 * when it is opened, if the server can be reached. */
	char *note = NULL;
	if (r == 0 && file == NULL && fm_mail_looks_partial(data, len)) {
		fetch_stub_body(ctx, &path, &note);
		if (note == NULL) {
			free(data);
			r = fm_record_read_file(path, (size_t)1 << 31, &data,
			                        &len, &err);
		}
	}
	if (r != 0) {
		if (r == 1)
			fm_error_set(&err, FM_ERR_USAGE, _("no such file: %s"),
			             path);
		free(path);
		return fm_cli_report(ctx, &err);
	}
	free(path);
	if (raw) {
		fwrite(data, 1, len, stdout);
	} else {
		struct fm_mime_render *rd = fm_mime_render(data, len);
		put_cell(stdout, rd->text, 0);
		if (rd->len > 0 && rd->text[rd->len - 1] != '\n')
			fputc('\n', stdout);
		fm_mime_render_free(&rd);
	}
	if (note != NULL) {
		/* One line, after the headers; with --raw on stderr, so the
		 * message's bytes stay as they are. */
		fprintf(raw ? stderr : stdout,
		        _("[fulmar: the body of this message is not downloaded "
		          "yet: %s]\n"),
		        note);
		free(note);
	}
	free(data);
	return fflush(stdout) == 0 ? 0 : 74;
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
fm_cmd_reindex(struct fm_cli_ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
	    {"summaries-only", no_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool summaries_only = false;
	int c;
	while ((c = getopt_long(argc, argv, "sh", options, NULL)) != -1) {
		if (c == 's') {
			summaries_only = true;
		} else if (c == 'h') {
			printf(_("usage: fulmar reindex [--summaries-only] "
			         "[ACCOUNT]\n"
			         "Rebuilds the folder summaries and the search "
			         "index from the maildirs\n"
			         "(with --summaries-only, only the summaries: "
			         "quick, and enough for fulmar list).\n"));
			return 0;
		} else {
			return 64;
		}
	}
	if (argc - optind > 1) {
		fprintf(stderr, _("usage: fulmar reindex [--summaries-only] "
		                  "[ACCOUNT]\n"));
		return 64;
	}
	int ret = fm_cli_load_config(ctx);
	if (ret != 0)
		return ret;
	const char *account = optind < argc ? argv[optind] : NULL;
	if (account != NULL &&
	    fm_config_find_account(ctx->cfg, account) == NULL) {
		fprintf(stderr, _("fulmar reindex: no account named '%s'\n"),
		        account);
		return 64;
	}
	struct fm_store_opts o = {
	    .cfg = ctx->cfg,
	    .wait_for_lock = true,
	    .on_wait = say_waiting,
	    .index = !summaries_only,
	    .index_required = !summaries_only,
	};
	struct fm_store *store = NULL;
	struct fm_error err;
	fm_error_clear(&err);
	uint64_t t0 = fm_now_ms();
	size_t n = 0;
	if (fm_store_open(&o, &store, &err) < 0 ||
	    fm_store_reindex(store, account, &n, &err) < 0) {
		fm_store_close(&store);
		return fm_cli_report(ctx, &err);
	}
	fm_store_close(&store);
	if (ctx->verbosity >= 0)
		printf(_("reindexed %zu messages in %.1f s\n"), n,
		       (double)(fm_now_ms() - t0) / 1000.0);
	return 0;
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* `fulmar send`: a sendmail-compatible entry point (git send-email, cron,
 * scripts, other mail programs) and the Outbox's command line: --queue,
 * --flush, --retry, --drop. A message is queued in the Outbox first and
 * tried at once; success means "safely queued" unless --wait asks for
 * the server's answer. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "account/account.h"
#include "cli/cli.h"
#include "log/log.h"
#include "mime/mime.h"
#include "smtp/smtp.h"
#include "store/store.h"

#define MESSAGE_MAX (256u << 20)

enum mode { MODE_SEND, MODE_QUEUE, MODE_FLUSH, MODE_RETRY, MODE_DROP };

struct send_opts {
	enum mode mode;
	const char *account;
	const char *from;
	const char *file;
	const char *id;
	bool from_headers; /* -t */
	bool dots_ok;      /* -i, -oi: a lone "." does not end the input */
	bool wait;
};

static void
usage_text(void)
{
	printf(_("usage: fulmar send [-a ACCOUNT] [-f FROM] [-t] [-i] [--file "
	         "PATH] [--wait] [RECIPIENT]...\n"
	         "       fulmar send --queue | --flush [-a ACCOUNT]\n"
	         "       fulmar send --retry ID | --drop ID [-a ACCOUNT]\n"
	         "Queues the message on standard input (or in PATH) in the "
	         "account's Outbox\n"
	         "and sends it at once; it is safe once queued, and goes at "
	         "the next\n"
	         "--flush or sync if the server cannot be reached now.\n\n"
	         "  -a, --account NAME  send from this account (default: the "
	         "one whose\n"
	         "                      address is in From, else the default "
	         "account)\n"
	         "  -f FROM             the envelope sender (default: the "
	         "account's address)\n"
	         "  -t                  recipients from the To, Cc and Bcc "
	         "headers too\n"
	         "  -i, -oi             a line with a single '.' does not end "
	         "the message\n"
	         "      --file PATH     read the message from PATH\n"
	         "      --wait          wait for the server's answer; exit "
	         "with its class\n"
	         "      --queue         list the Outbox: each message's state "
	         "and reason\n"
	         "      --flush         send everything queued or deferred "
	         "now\n"
	         "      --retry ID      send a failed, held or possibly sent "
	         "message again\n"
	         "      --drop ID       remove a message from the Outbox\n"
	         "Other sendmail options (-oX, -F, -B, -N, -v) are accepted "
	         "and ignored.\n"));
}

static void
say_waiting(void *ctx, const char *account, pid_t holder)
{
	(void)ctx;
	fprintf(stderr,
	        _("fulmar: account %s is being written by another fulmar "
	          "(pid %ld); waiting for it to finish...\n"),
	        account, (long)holder);
}

/* ------------------------------------------------------------------------
 * The message.
 */

/* Reads the whole message; without -i, a line holding a single '.' ends
 * it (as sendmail does). */
static int
read_message(FILE *in, bool dots_ok, struct fm_buf *msg, struct fm_error *err)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int ret = 0;
	while ((n = getline(&line, &cap, in)) > 0) {
		if (!dots_ok &&
		    (strcmp(line, ".\n") == 0 || strcmp(line, ".\r\n") == 0 ||
		     strcmp(line, ".") == 0))
			break;
		if (fm_buf_append(msg, line, (size_t)n) < 0) {
			ret = fm_error_set(err, FM_ERR_USAGE,
			                   _("the message is larger than %u "
			                     "MB"),
			                   MESSAGE_MAX >> 20);
			break;
		}
	}
	if (ret == 0 && ferror(in))
		ret = fm_error_errno(err, FM_ERR_LOCAL, errno,
		                     _("cannot read the message"));
	free(line);
	return ret;
}

/* The raw value of the first header field called name, or NULL. */
static char *
header_value(const char *data, size_t len, const char *name)
{
	struct fm_mime_header_iter it;
	fm_mime_header_iter_init(&it, data, len);
	const char *n, *v;
	size_t nl, vl;
	while (fm_mime_header_next(&it, &n, &nl, &v, &vl))
		if (nl == strlen(name) && strncasecmp(n, name, nl) == 0)
			return xstrndup(v, vl);
	return NULL;
}

/* Adds what a submitted message must have and a sendmail adds when it is
 * missing: From, Date, Message-ID. The copy in Sent then has them too. */
static void
complete_headers(struct fm_buf *msg, const struct fm_account *a)
{
	struct fm_buf add;
	fm_buf_init(&add, 4096);
	const char *eol = strstr(msg->data, "\r\n") != NULL ? "\r\n" : "\n";
	char *v;
	if ((v = header_value(msg->data, msg->len, "From")) == NULL)
		fm_buf_printf(&add, "From: %s%s", a->email, eol);
	free(v);
	if ((v = header_value(msg->data, msg->len, "Date")) == NULL) {
		char date[64];
		time_t now = time(NULL);
		struct tm tm;
		localtime_r(&now, &tm);
		/* RFC 5322 wants English names whatever the locale. */
		static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
		                                   "Thu", "Fri", "Sat"};
		static const char *const months[] = {
		    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
		    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
		long off = tm.tm_gmtoff / 60;
		snprintf(date, sizeof(date),
		         "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld",
		         days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
		         tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
		         off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
		fm_buf_printf(&add, "Date: %s%s", date, eol);
	}
	free(v);
	if ((v = header_value(msg->data, msg->len, "Message-ID")) == NULL) {
		const char *at = strrchr(a->email, '@');
		unsigned char r[12];
		if (getentropy(r, sizeof(r)) != 0)
			memset(r, 0, sizeof(r));
		char hex[25];
		for (size_t i = 0; i < sizeof(r); i++)
			snprintf(hex + 2 * i, 3, "%02x", r[i]);
		fm_buf_printf(&add, "Message-ID: <%lld.%s@%s>%s",
		              (long long)time(NULL), hex,
		              at != NULL ? at + 1 : "fulmar.invalid", eol);
	}
	free(v);
	if (add.len > 0) {
		struct fm_buf out;
		fm_buf_init(&out, msg->max + add.len);
		fm_buf_append(&out, add.data, add.len);
		fm_buf_append(&out, msg->data, msg->len);
		fm_buf_free(msg);
		*msg = out;
	}
	fm_buf_free(&add);
}

/* The account: -a, else the one whose address is in From, else the
 * default. */
static const struct fm_account *
pick_account(const struct fm_config *cfg, const struct send_opts *so,
             const char *data, size_t len, struct fm_error *err)
{
	if (so->account != NULL) {
		const struct fm_account *a =
		    fm_config_find_account(cfg, so->account);
		if (a == NULL)
			fm_error_set(err, FM_ERR_USAGE,
			             _("no account named '%s' in %s"),
			             so->account, cfg->path);
		return a;
	}
	char *from = header_value(data, len, "From");
	if (from != NULL) {
		struct fm_mime_addresses list = {0};
		struct fm_error ignore;
		if (fm_mime_addresses_parse(from, &list, &ignore) == 0 &&
		    list.n > 0) {
			for (size_t i = 0; i < cfg->n_accounts; i++)
				if (strcasecmp(cfg->accounts[i].email,
				               list.items[0].addr) == 0) {
					fm_mime_addresses_free(&list);
					free(from);
					return &cfg->accounts[i];
				}
		}
		fm_mime_addresses_free(&list);
		free(from);
	}
	const struct fm_account *a = fm_config_default_account(cfg);
	if (a == NULL)
		fm_error_set(err, FM_ERR_CONFIG, _("%s has no account"),
		             cfg->path);
	return a;
}

/* Adds the addresses of value (one argument or a header's list) to the
 * envelope, without duplicates. */
static int
add_recipients(const char *value, char ***rcpts, size_t *n,
               struct fm_error *err)
{
	struct fm_mime_addresses list = {0};
	if (fm_mime_addresses_parse(value, &list, err) < 0)
		return -1;
	for (size_t i = 0; i < list.n; i++) {
		bool dup = false;
		for (size_t k = 0; k < *n && !dup; k++)
			dup = strcasecmp((*rcpts)[k], list.items[i].addr) == 0;
		if (dup)
			continue;
		*rcpts = xreallocarray(*rcpts, *n + 2, sizeof(**rcpts));
		(*rcpts)[(*n)++] = xstrdup(list.items[i].addr);
		(*rcpts)[*n] = NULL;
	}
	fm_mime_addresses_free(&list);
	return 0;
}

/* ------------------------------------------------------------------------
 * Opening what every mode needs.
 */

struct env {
	struct fm_cli_ctx *ctx;
	struct fm_trace *trace;
	struct fm_store *store;
	struct fm_net_limits limits;
};

/* try_lock: fail with FM_ERR_TEMPORARY at once when another process
 * holds an account, instead of waiting for it. */
static int
env_open(struct fm_cli_ctx *ctx, struct env *env, bool try_lock,
         struct fm_error *err)
{
	memset(env, 0, sizeof(*env));
	env->ctx = ctx;
	const struct fm_config *cfg = ctx->cfg;
	if (fm_trace_open(ctx->log_protocol != NULL ? ctx->log_protocol
	                                            : cfg->general.log_protocol,
	                  &env->trace, err) < 0)
		return -1;
	struct fm_store_opts so = {
	    .cfg = cfg,
	    .wait_for_lock = !try_lock,
	    .on_wait = say_waiting,
	};
	if (fm_store_open(&so, &env->store, err) < 0) {
		fm_trace_close(&env->trace);
		return -1;
	}
	fm_net_limits_from_config(&cfg->general, &env->limits);
	return 0;
}

static int
env_close(struct env *env, struct fm_error *err)
{
	int ret = 0;
	if (env->store != NULL && fm_store_flush(env->store, err) < 0)
		ret = -1;
	fm_store_close(&env->store);
	fm_trace_close(&env->trace);
	return ret;
}

/* The account is held by another process: the message goes into the
 * spool (durable once this returns), and a running fulmar is asked for a
 * pass, which queues and sends it. Exit 0 once spooled; with --wait, the
 * pass's outcome. */
static int
hand_over(struct fm_cli_ctx *ctx, const struct send_opts *so,
          const struct fm_account *a, const char *from, char **rcpts,
          size_t n_rcpts, const struct fm_buf *msg)
{
	struct fm_error err;
	fm_error_clear(&err);
	char *data_dir = fm_path_data_dir();
	char *id = NULL;
	if (fm_smtp_spool(data_dir, a, from, (const char *const *)rcpts,
	                  n_rcpts, msg->data, msg->len, &id, &err) < 0) {
		free(data_dir);
		return fm_cli_report(ctx, &err);
	}
	int status = 0;
	int fd = -1;
	int k = fm_control_connect(data_dir, &fd, &err);
	if (k != 0) {
		if (ctx->verbosity >= 0)
			fprintf(
			    stderr,
			    _("fulmar: %s: another fulmar writes this "
			      "account; the message (%s) goes with its next "
			      "send/receive pass\n"),
			    a->name, id);
		if (so->wait)
			status = fm_error_exit_status(FM_ERR_TEMPORARY);
		goto out;
	}
	char *name = xstrdup(a->name);
	char *req = fm_control_format_request(&name, 1);
	int w = fm_write_all(fd, req, strlen(req));
	free(req);
	free(name);
	struct fm_buf in;
	fm_buf_init(&in, 1 << 16);
	bool answered = false;
	struct fm_control_reply r;
	if (w == 0 && fm_control_next_reply(fd, &in, &r) == 0) {
		answered = true;
		if (!r.ok) {
			if (ctx->verbosity >= 0 || so->wait)
				fprintf(stderr,
				        _("fulmar: %s: queued as %s, not sent "
				          "yet: %s\n"),
				        a->name, id, r.err.user);
			if (so->wait)
				status = fm_error_exit_status(r.err.cls);
		} else if (ctx->verbosity > 0) {
			printf(_("%s: handed to the running fulmar as %s\n"),
			       a->name, id);
		}
		fm_control_reply_free(&r);
	}
	if (!answered && ctx->verbosity >= 0)
		fprintf(stderr,
		        _("fulmar: %s: the message (%s) is spooled for the "
		          "running fulmar\n"),
		        a->name, id);
	fm_buf_free(&in);
	close(fd);
out:
	free(id);
	free(data_dir);
	return status;
}

struct report_ctx {
	const struct fm_cli_ctx *ctx;
	const char *account;
	const char *watch_id; /* the message just queued, or NULL */
	bool watched_seen;
	enum fm_outbox_state watched_state;
	struct fm_error watched_err;
	struct fm_error first_err; /* the first failure, for the status */
};

static void
on_report(void *c, const struct fm_outbox_entry *e, const struct fm_error *err)
{
	struct report_ctx *r = c;
	bool watched = r->watch_id != NULL && strcmp(e->id, r->watch_id) == 0;
	if (watched) {
		r->watched_seen = true;
		r->watched_state = e->state;
		if (err != NULL)
			r->watched_err = *err;
	}
	if (err != NULL && r->first_err.cls == FM_ERR_NONE)
		r->first_err = *err;
	if (r->ctx->verbosity < 0)
		return;
	if (err == NULL) {
		if (r->ctx->verbosity > 0 || r->watch_id == NULL)
			printf(_("%s: %s sent\n"), r->account, e->id);
		return;
	}
	/* The message just queued is reported by the caller. */
	if (!watched)
		fprintf(stderr, _("fulmar: %s: %s %s: %s\n"), r->account, e->id,
		        fm_outbox_state_name(e->state), err->user);
}

static int
flush_account(struct env *env, const struct fm_account *a, bool force,
              struct report_ctx *rc, struct fm_smtp_stats *st,
              struct fm_error *err)
{
	struct fm_session_opts o = {
	    .trace = env->trace,
	    .cancel_fd = -1,
	    .limits = env->limits,
	    .creds = fm_creds_new(a),
	};
	struct fm_smtp_flush_opts fo = {
	    .force = force,
	    .report = on_report,
	    .ctx = rc,
	};
	int r = fm_smtp_flush_outbox(a, env->store, &o, &fo, st, err);
	fm_creds_free(&o.creds);
	return r;
}

/* ------------------------------------------------------------------------
 * The modes.
 */

static int
do_send(struct fm_cli_ctx *ctx, const struct send_opts *so, int argc,
        char **argv)
{
	struct fm_error err;
	fm_error_clear(&err);
	struct fm_buf msg;
	fm_buf_init(&msg, MESSAGE_MAX);
	char **rcpts = NULL;
	size_t n_rcpts = 0;
	char *id = NULL;
	int status = 0;
	struct env env = {0};
	FILE *in = stdin;
	if (so->file != NULL && (in = fopen(so->file, "rb")) == NULL) {
		fm_error_errno(&err, FM_ERR_USAGE, errno, _("cannot open %s"),
		               so->file);
		goto fail;
	}
	int r = read_message(in, so->dots_ok || so->file != NULL, &msg, &err);
	if (in != stdin)
		fclose(in);
	if (r < 0)
		goto fail;
	if (msg.len == 0) {
		fm_error_set(&err, FM_ERR_USAGE, _("the message is empty"));
		goto fail;
	}
	const struct fm_account *a =
	    pick_account(ctx->cfg, so, msg.data, msg.len, &err);
	if (a == NULL)
		goto fail;
	for (int i = 0; i < argc; i++)
		if (add_recipients(argv[i], &rcpts, &n_rcpts, &err) < 0)
			goto fail;
	if (so->from_headers) {
		struct fm_mime_addresses list = {0};
		if (fm_mime_recipients(msg.data, msg.len, &list, &err) < 0)
			goto fail;
		for (size_t i = 0; i < list.n; i++)
			if (add_recipients(list.items[i].addr, &rcpts, &n_rcpts,
			                   &err) < 0) {
				fm_mime_addresses_free(&list);
				goto fail;
			}
		fm_mime_addresses_free(&list);
	}
	if (n_rcpts == 0) {
		fm_error_set(&err, FM_ERR_USAGE,
		             so->from_headers
		                 ? _("the message names no recipient (To, Cc "
		                     "or Bcc) and none was given")
		                 : _("no recipient given (name them, or use "
		                     "-t to take them from the message)"));
		goto fail;
	}
	complete_headers(&msg, a);
	const char *from = so->from != NULL ? so->from : a->email;
	if (env_open(ctx, &env, true, &err) < 0) {
		if (err.cls != FM_ERR_TEMPORARY)
			goto fail;
		/* Another fulmar holds the account (fulmar watch, the UI):
		 * spool the message for it and ask it for a pass. */
		status = hand_over(ctx, so, a, from, rcpts, n_rcpts, &msg);
		goto out;
	}
	if (fm_smtp_queue(a, env.store, from, (const char *const *)rcpts,
	                  n_rcpts, msg.data, msg.len, &id, &err) < 0)
		goto fail;
	if (ctx->verbosity > 0)
		printf(_("%s: queued as %s\n"), a->name, id);
	/* Safe now. Try at once; what is due besides goes too. */
	struct report_ctx rc = {.ctx = ctx, .account = a->name, .watch_id = id};
	struct fm_smtp_stats st;
	fm_error_clear(&err);
	r = flush_account(&env, a, false, &rc, &st, &err);
	if (rc.watched_seen && rc.watched_state != FM_OUTBOX_SENT) {
		const struct fm_error *w = &rc.watched_err;
		bool for_good = rc.watched_state == FM_OUTBOX_FAILED;
		if (ctx->verbosity >= 0 || for_good || so->wait)
			fprintf(stderr,
			        for_good
			            ? _("fulmar: %s: not sent: %s\n")
			            : _("fulmar: %s: queued as %s, not sent "
			                "yet: %s\n"),
			        a->name, for_good ? w->user : id,
			        for_good ? "" : w->user);
		if (for_good || so->wait)
			status = fm_error_exit_status(
			    w->cls != FM_ERR_NONE ? w->cls : FM_ERR_TEMPORARY);
	} else if (r < 0 && !rc.watched_seen) {
		/* The pass stopped before our message (a broken link, a
		 * local failure): it is queued all the same. */
		if (ctx->verbosity >= 0)
			fprintf(stderr,
			        _("fulmar: %s: queued as %s, not sent yet: "
			          "%s\n"),
			        a->name, id, err.user);
		if (so->wait)
			status = fm_error_exit_status(err.cls);
	}
	fm_error_clear(&err);
	if (env_close(&env, &err) < 0 && status == 0)
		status = fm_cli_report(ctx, &err);
	goto out;
fail:
	status = fm_cli_report(ctx, &err);
	fm_error_clear(&err);
	env_close(&env, &err);
out:
	free(id);
	for (size_t i = 0; i < n_rcpts; i++)
		free(rcpts[i]);
	free(rcpts);
	fm_buf_free(&msg);
	return status;
}

static bool
wanted(const struct send_opts *so, const struct fm_account *a)
{
	return so->account == NULL || strcmp(so->account, a->name) == 0;
}

static void
print_entry(const struct fm_outbox_entry *e)
{
	char when[32] = "";
	struct tm tm;
	time_t t = (time_t)e->queued_at;
	if (localtime_r(&t, &tm) != NULL)
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
	char *subject = NULL;
	if (e->path != NULL) {
		struct fm_envelope *env = NULL;
		struct fm_error ignore;
		if (fm_mime_envelope_read(e->path, &env, &ignore) == 0) {
			subject = fm_mime_to_locale(env->subject);
			fm_envelope_free(&env);
		}
	}
	printf("  %-12s  %-13s  %s  %s\n", e->id,
	       fm_outbox_state_name(e->state), when,
	       subject != NULL ? subject : "");
	free(subject);
	if (e->n_rcpts > 0) {
		printf(_("      from %s to"), e->from);
		for (size_t i = 0; i < e->n_rcpts; i++)
			printf("%s %s", i ? "," : "", e->rcpts[i]);
		putchar('\n');
	}
	if (e->state == FM_OUTBOX_DEFERRED) {
		char next[32] = "";
		t = (time_t)e->next_try;
		if (localtime_r(&t, &tm) != NULL)
			strftime(next, sizeof(next), "%H:%M:%S", &tm);
		printf(ngettext("      %u attempt, next after %s\n",
		                "      %u attempts, next after %s\n",
		                e->attempts),
		       e->attempts, next);
	}
	if (e->state == FM_OUTBOX_HELD)
		printf(_("      no envelope record: check it, then --retry "
		         "(recipients from its headers) or --drop\n"));
	if (e->reply != NULL) {
		char *r = fm_mime_to_locale(e->reply);
		printf("      %s\n", r);
		free(r);
	}
}

static int
do_queue(struct fm_cli_ctx *ctx, const struct send_opts *so)
{
	struct fm_error err;
	fm_error_clear(&err);
	struct env env;
	if (env_open(ctx, &env, false, &err) < 0)
		return fm_cli_report(ctx, &err);
	int status = 0;
	for (size_t i = 0; i < ctx->cfg->n_accounts; i++) {
		const struct fm_account *a = &ctx->cfg->accounts[i];
		if (!wanted(so, a))
			continue;
		struct fm_outbox_entry *e = NULL;
		size_t n = 0;
		if (fm_smtp_outbox_list(a, env.store, &e, &n, &err) < 0) {
			status = fm_cli_report(ctx, &err);
			break;
		}
		if (n == 0)
			printf(_("%s: the Outbox is empty\n"), a->name);
		else
			printf(ngettext("%s: %zu message in the Outbox\n",
			                "%s: %zu messages in the Outbox\n", n),
			       a->name, n);
		for (size_t k = 0; k < n; k++)
			print_entry(&e[k]);
		fm_outbox_entries_free(e, n);
	}
	fm_error_clear(&err);
	if (env_close(&env, &err) < 0 && status == 0)
		status = fm_cli_report(ctx, &err);
	return status;
}

static int
do_flush(struct fm_cli_ctx *ctx, const struct send_opts *so)
{
	struct fm_error err;
	fm_error_clear(&err);
	struct env env;
	if (env_open(ctx, &env, false, &err) < 0)
		return fm_cli_report(ctx, &err);
	int status = 0;
	for (size_t i = 0; i < ctx->cfg->n_accounts; i++) {
		const struct fm_account *a = &ctx->cfg->accounts[i];
		if (!wanted(so, a) || (a->smtp_host == NULL && !so->account))
			continue;
		struct report_ctx rc = {.ctx = ctx, .account = a->name};
		struct fm_smtp_stats st;
		uint64_t t0 = fm_now_ms();
		fm_error_clear(&err);
		int r = flush_account(&env, a, true, &rc, &st, &err);
		if (r < 0) {
			fprintf(stderr, "fulmar: %s: %s\n", a->name, err.user);
			if (status == 0)
				status = fm_error_exit_status(err.cls);
		} else if (rc.first_err.cls != FM_ERR_NONE && status == 0) {
			status = fm_error_exit_status(rc.first_err.cls);
		}
		if (ctx->verbosity >= 0)
			printf(
			    _("%s: %zu sent, %zu deferred, %zu failed, %zu "
			      "possibly sent, %zu left in the Outbox, in %.1f "
			      "s\n"),
			    a->name, st.sent, st.deferred, st.failed,
			    st.possibly_sent, st.left,
			    (double)(fm_now_ms() - t0) / 1000.0);
	}
	fm_error_clear(&err);
	if (env_close(&env, &err) < 0 && status == 0)
		status = fm_cli_report(ctx, &err);
	return status;
}

static int
do_decide(struct fm_cli_ctx *ctx, const struct send_opts *so)
{
	struct fm_error err;
	fm_error_clear(&err);
	struct env env;
	if (env_open(ctx, &env, false, &err) < 0)
		return fm_cli_report(ctx, &err);
	int status = -1;
	for (size_t i = 0; i < ctx->cfg->n_accounts && status < 0; i++) {
		const struct fm_account *a = &ctx->cfg->accounts[i];
		if (!wanted(so, a))
			continue;
		fm_error_clear(&err);
		int r = so->mode == MODE_RETRY
		            ? fm_smtp_outbox_retry(a, env.store, so->id, &err)
		            : fm_smtp_outbox_drop(a, env.store, so->id, &err);
		if (r == 0) {
			status = 0;
			if (ctx->verbosity >= 0)
				printf(
				    so->mode == MODE_RETRY
				        ? _("%s: %s queued again; it goes "
				            "with the next --flush or sync\n")
				        : _("%s: %s dropped from the "
				            "Outbox\n"),
				    a->name, so->id);
		} else if (err.cls != FM_ERR_USAGE) {
			status = fm_cli_report(ctx, &err);
		}
	}
	if (status < 0) {
		fm_error_set(&err, FM_ERR_USAGE,
		             _("no Outbox has a message %s; see 'fulmar send "
		               "--queue'"),
		             so->id);
		status = fm_cli_report(ctx, &err);
	}
	fm_error_clear(&err);
	if (env_close(&env, &err) < 0 && status == 0)
		status = fm_cli_report(ctx, &err);
	return status;
}

int
fm_cmd_send(struct fm_cli_ctx *ctx, int argc, char **argv)
{
	enum {
		OPT_QUEUE = 256,
		OPT_FLUSH,
		OPT_RETRY,
		OPT_DROP,
		OPT_WAIT,
		OPT_FILE,
	};
	static const struct option options[] = {
	    {"account", required_argument, NULL, 'a'},
	    {"file", required_argument, NULL, OPT_FILE},
	    {"wait", no_argument, NULL, OPT_WAIT},
	    {"queue", no_argument, NULL, OPT_QUEUE},
	    {"flush", no_argument, NULL, OPT_FLUSH},
	    {"retry", required_argument, NULL, OPT_RETRY},
	    {"drop", required_argument, NULL, OPT_DROP},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct send_opts so = {.mode = MODE_SEND};
	int modes = 0;
	int c;
	while ((c = getopt_long(argc, argv, "a:f:tio:F:B:N:vh", options,
	                        NULL)) != -1) {
		switch (c) {
		case 'a':
			so.account = optarg;
			break;
		case 'f':
			so.from = optarg;
			break;
		case 't':
			so.from_headers = true;
			break;
		case 'i':
			so.dots_ok = true;
			break;
		case 'o':
			/* -oi as -i; -oem, -odb and the like mean nothing
			 * here. */
			if (strcmp(optarg, "i") == 0)
				so.dots_ok = true;
			break;
		case 'F':
		case 'B':
		case 'N':
		case 'v':
			break;
		case OPT_FILE:
			so.file = optarg;
			break;
		case OPT_WAIT:
			so.wait = true;
			break;
		case OPT_QUEUE:
			so.mode = MODE_QUEUE;
			modes++;
			break;
		case OPT_FLUSH:
			so.mode = MODE_FLUSH;
			modes++;
			break;
		case OPT_RETRY:
			so.mode = MODE_RETRY;
			so.id = optarg;
			modes++;
			break;
		case OPT_DROP:
			so.mode = MODE_DROP;
			so.id = optarg;
			modes++;
			break;
		case 'h':
			usage_text();
			return 0;
		default:
			fprintf(stderr, _("Try 'fulmar send --help'.\n"));
			return 64;
		}
	}
	if (modes > 1 || (so.mode != MODE_SEND && optind < argc)) {
		fprintf(stderr,
		        _("fulmar send: --queue, --flush, --retry and --drop "
		          "go alone (with -a ACCOUNT at most)\n"));
		return 64;
	}
	int ret = fm_cli_load_config(ctx);
	if (ret != 0)
		return ret;
	if (so.account != NULL &&
	    fm_config_find_account(ctx->cfg, so.account) == NULL) {
		fprintf(stderr, _("fulmar send: no account named '%s' in %s\n"),
		        so.account, ctx->cfg->path);
		return 64;
	}
	switch (so.mode) {
	case MODE_QUEUE:
		return do_queue(ctx, &so);
	case MODE_FLUSH:
		return do_flush(ctx, &so);
	case MODE_RETRY:
	case MODE_DROP:
		return do_decide(ctx, &so);
	case MODE_SEND:
		break;
	}
	return do_send(ctx, &so, argc - optind, argv + optind);
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* `fulmar check`: the connectivity doctor. For every account, incoming and
 * outgoing, each step on its own line with its time — DNS, TCP, TLS (with
 * the certificate), capabilities, STARTTLS, login, a harmless command — and
 * on failure a sentence that says what to do. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "imap/imap.h"
#include "log/log.h"
#include "net/net.h"
#include "pop3/pop3.h"
#include "smtp/smtp.h"

enum { WRAP = 100, DETAIL_COL = 34 };

/* Prints text indented at DETAIL_COL, one line per '\n', long lines
 * wrapped at spaces. */
static void
print_detail(const char *text, bool first_on_line)
{
	const char *p = text;
	bool first = first_on_line;
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		while (len > 0) {
			size_t take = len;
			size_t width = WRAP - DETAIL_COL;
			if (take > width) {
				take = width;
				while (take > 20 && p[take] != ' ')
					take--;
				/* A long word (a fingerprint) stays whole. */
				if (p[take] != ' ')
					take = len;
			}
			if (!first)
				printf("%*s", DETAIL_COL, "");
			printf("%.*s\n", (int)take, p);
			first = false;
			p += take;
			len -= take;
			while (len > 0 && *p == ' ') {
				p++;
				len--;
			}
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	if (first)
		printf("\n");
}

static void
on_step(void *ctx, const char *step, unsigned ms, bool ok, const char *detail)
{
	printf("    %-5s %-13s %5u ms  ", ok ? "ok" : "FAIL", step, ms);
	print_detail(detail, true);
	fflush(stdout);
}

static const char *
tls_name(enum fm_tls_mode tls)
{
	switch (tls) {
	case FM_TLS_IMPLICIT:
		return _("implicit TLS");
	case FM_TLS_STARTTLS:
		return "STARTTLS";
	case FM_TLS_NONE:
		return _("no TLS (plain text)");
	}
	return "?";
}

/* Runs the incoming checks of one account; 0 or -1 with err. */
static int
check_incoming(const struct fm_account *a, const struct fm_session_opts *o,
               struct fm_error *err)
{
	bool imap = a->protocol == FM_PROTO_IMAP;
	printf(_("  incoming: %s %s:%u, %s\n"), imap ? "IMAP" : "POP3", a->host,
	       a->port, tls_name(a->tls));
	if (imap) {
		struct fm_imap *s = NULL;
		if (fm_imap_open(a, o, &s, err) < 0)
			return -1;
		int ret = fm_imap_check(s, o, err);
		fm_imap_close(&s);
		return ret;
	}
	struct fm_pop3 *s = NULL;
	if (fm_pop3_open(a, o, &s, err) < 0)
		return -1;
	int ret = fm_pop3_check(s, o, err);
	fm_pop3_close(&s);
	return ret;
}

static int
check_outgoing(const struct fm_account *a, const struct fm_session_opts *o,
               struct fm_error *err)
{
	if (a->smtp_host == NULL) {
		printf(_("  outgoing: none (no smtp_host): this account "
		         "cannot send\n"));
		return 0;
	}
	printf(_("  outgoing: SMTP %s:%u, %s\n"), a->smtp_host, a->smtp_port,
	       tls_name(a->smtp_tls));
	struct fm_smtp *s = NULL;
	if (fm_smtp_open(a, o, &s, err) < 0)
		return -1;
	int ret = fm_smtp_check(s, o, err);
	fm_smtp_close(&s);
	return ret;
}

static int
usage(FILE *f)
{
	fprintf(f, _("usage: fulmar check [--timeout SECONDS] [ACCOUNT]...\n"
	             "Tests every connection of the accounts named (all by "
	             "default), step by step.\n"));
	return f == stdout ? 0 : 64;
}

int
fm_cmd_check(struct fm_cli_ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
	    {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	long timeout_s = 0;
	int c;
	while ((c = getopt_long(argc, argv, "t:h", options, NULL)) != -1) {
		switch (c) {
		case 't':
			if (fm_parse_long(optarg, 1, 3600, &timeout_s) < 0) {
				fprintf(stderr,
				        _("fulmar check: --timeout takes "
				          "seconds, 1 to 3600\n"));
				return 64;
			}
			break;
		case 'h':
			return usage(stdout);
		default:
			return usage(stderr);
		}
	}
	int ret = fm_cli_load_config(ctx);
	if (ret != 0)
		return ret;
	const struct fm_config *cfg = ctx->cfg;
	struct fm_net_limits limits;
	fm_net_limits_from_config(&cfg->general, &limits);
	if (timeout_s > 0) {
		limits.connect_timeout_ms = (unsigned)timeout_s * 1000;
		limits.io_timeout_ms = (unsigned)timeout_s * 1000;
	}
	for (int i = optind; i < argc; i++) {
		if (fm_config_find_account(cfg, argv[i]) == NULL) {
			fprintf(stderr,
			        _("fulmar check: no account named '%s' in "
			          "%s\n"),
			        argv[i], cfg->path);
			return 64;
		}
	}
	if (cfg->n_accounts == 0) {
		fprintf(stderr, _("fulmar check: %s has no accounts\n"),
		        cfg->path);
		return 78;
	}
	struct fm_error err;
	struct fm_trace *trace = NULL;
	const char *trace_path = ctx->log_protocol != NULL
	                             ? ctx->log_protocol
	                             : cfg->general.log_protocol;
	fm_error_clear(&err);
	if (fm_trace_open(trace_path, &trace, &err) < 0)
		return fm_cli_report(ctx, &err);

	struct fm_net_observer observer = {.step = on_step};
	int status = 0;
	for (size_t i = 0; i < cfg->n_accounts; i++) {
		const struct fm_account *a = &cfg->accounts[i];
		bool wanted = optind >= argc;
		for (int k = optind; k < argc; k++)
			if (strcmp(argv[k], a->name) == 0)
				wanted = true;
		if (!wanted)
			continue;
		printf(_("%s (%s)\n"), a->name, a->email);
		struct fm_session_opts o = {
		    .trace = trace,
		    .cancel_fd = -1,
		    .limits = limits,
		    .creds = fm_creds_new(a),
		    .observer = &observer,
		};
		int results[2];
		struct fm_error errs[2];
		fm_error_clear(&errs[0]);
		fm_error_clear(&errs[1]);
		results[0] = check_incoming(a, &o, &errs[0]);
		results[1] = check_outgoing(a, &o, &errs[1]);
		fm_creds_free(&o.creds);
		for (int k = 0; k < 2; k++) {
			if (results[k] == 0)
				continue;
			if (status == 0)
				status = fm_error_exit_status(errs[k].cls);
			if (ctx->verbosity > 0 && errs[k].detail[0] != '\0')
				printf("    (%s: %s)\n",
				       fm_error_class_name(errs[k].cls),
				       errs[k].detail);
		}
		printf(_("  result: incoming %s, outgoing %s\n"),
		       results[0] == 0 ? _("ok") : _("FAILED"),
		       results[1] == 0 ? _("ok") : _("FAILED"));
	}
	fm_trace_close(&trace);
	return status;
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* What the protocol sessions share: connection targets from an account,
 * step reports for observers, and the account's credentials. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_int.h"

void
fm_net_report(const struct fm_session_opts *o, const char *step, unsigned ms,
              bool ok, const char *fmt, ...)
{
	if (o == NULL || o->observer == NULL || o->observer->step == NULL)
		return;
	char detail[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	o->observer->step(o->observer->ctx, step, ms, ok, detail);
}

void
fm_net_report_tls(const struct fm_session_opts *o,
                  const struct fm_net_conn *conn)
{
	const struct fm_tls_info *info = fm_net_tls_info(conn);
	if (info == NULL)
		return;
	char fp[96];
	fm_net_fingerprint_hex(info->fingerprint, fp);
	fm_net_report(o, "TLS", conn->timing.tls_ms, info->verified,
	              "%s %s%s\nsubject: %s\nissuer:  %s\nnames:   %s\n"
	              "valid:   %s to %s\nsha256:  %s",
	              info->protocol, info->cipher,
	              info->pinned ? _(" (pinned certificate)") : "",
	              info->subject, info->issuer, info->names,
	              info->not_before, info->not_after, fp);
}

void
fm_net_report_connect(const struct fm_session_opts *o,
                      const struct fm_net_conn *conn)
{
	fm_net_report(o, "DNS", conn->timing.dns_ms, true, "%s", conn->host);
	fm_net_report(o, "TCP", conn->timing.tcp_ms, true, _("connected to %s"),
	              conn->timing.address);
	if (conn->tls_mode == FM_TLS_IMPLICIT)
		fm_net_report_tls(o, conn);
}

static void
target_common(const struct fm_account *acct, const struct fm_session_opts *o,
              struct fm_net_target *t)
{
	memset(t, 0, sizeof(*t));
	t->ca_file = acct->tls_ca_file;
	t->fingerprint = acct->has_fingerprint ? acct->tls_fingerprint : NULL;
	t->trace = o->trace;
	t->cancel_fd = o->cancel_fd;
	t->limits = o->limits;
}

void
fm_net_target_incoming(const struct fm_account *acct,
                       const struct fm_session_opts *o, struct fm_net_target *t)
{
	target_common(acct, o, t);
	t->host = acct->host;
	t->port = acct->port;
	t->tls = acct->tls;
	t->proto =
	    acct->protocol == FM_PROTO_IMAP ? FM_TRACE_IMAP : FM_TRACE_POP3;
}

void
fm_net_target_smtp(const struct fm_account *acct,
                   const struct fm_session_opts *o, struct fm_net_target *t)
{
	target_common(acct, o, t);
	t->host = acct->smtp_host;
	t->port = acct->smtp_port;
	t->tls = acct->smtp_tls;
	t->proto = FM_TRACE_SMTP;
}

/* ------------------------------------------------------------------------
 * Credentials.
 */

struct fm_creds {
	const struct fm_account *acct;
	char *password;
	char *token;
};

/* A password_cmd may wait for a passphrase typed into pinentry. */
enum { SECRET_CMD_TIMEOUT_MS = 120000 };

struct fm_creds *
fm_creds_new(const struct fm_account *acct)
{
	struct fm_creds *c = xcalloc(1, sizeof(*c));
	c->acct = acct;
	return c;
}

void
fm_creds_free(struct fm_creds **creds)
{
	struct fm_creds *c = *creds;
	if (c == NULL)
		return;
	if (c->password != NULL)
		fm_log_remove_secret(c->password);
	if (c->token != NULL)
		fm_log_remove_secret(c->token);
	fm_free_secret(&c->password);
	fm_free_secret(&c->token);
	free(c);
	*creds = NULL;
}

int
fm_creds_password(struct fm_creds *c, const char **password_r,
                  struct fm_error *err)
{
	if (c->acct->password != NULL) {
		*password_r = c->acct->password;
		return 0;
	}
	if (c->password == NULL) {
		if (c->acct->password_cmd == NULL)
			return fm_error_set(
			    err, FM_ERR_CREDENTIALS,
			    _("account %s has no password: set "
			      "password_cmd (or password) in the config"),
			    c->acct->name);
		if (fm_conf_run_secret_cmd(
		        "password_cmd", c->acct->password_cmd,
		        SECRET_CMD_TIMEOUT_MS, &c->password, err) < 0)
			return -1;
		fm_log_add_secret(c->password);
	}
	*password_r = c->password;
	return 0;
}

int
fm_creds_token(struct fm_creds *c, const char **token_r, struct fm_error *err)
{
	if (c->token == NULL) {
		if (c->acct->oauth_token_cmd == NULL)
			return fm_error_set(err, FM_ERR_CONFIG,
			                    _("account %s has no "
			                      "oauth_token_cmd"),
			                    c->acct->name);
		if (fm_conf_run_secret_cmd(
		        "oauth_token_cmd", c->acct->oauth_token_cmd,
		        SECRET_CMD_TIMEOUT_MS, &c->token, err) < 0)
			return -1;
		fm_log_add_secret(c->token);
	}
	*token_r = c->token;
	return 0;
}

void
fm_creds_forget_token(struct fm_creds *c)
{
	if (c->token != NULL)
		fm_log_remove_secret(c->token);
	fm_free_secret(&c->token);
}

/* ------------------------------------------------------------------------
 * Shared failure sentences.
 */

int
fm_net_err_no_starttls(const struct fm_net_conn *conn, unsigned implicit_port,
                       struct fm_error *err)
{
	return fm_error_set(err, FM_ERR_TLS,
	                    _("%s:%u does not offer STARTTLS, and fulmar never "
	                      "falls back to an unencrypted connection; if "
	                      "the server has implicit TLS, use tls = "
	                      "implicit (port %u)"),
	                    conn->host, conn->port, implicit_port);
}

int
fm_net_err_starttls_refused(const struct fm_net_conn *conn,
                            const char *server_text, struct fm_error *err)
{
	return fm_error_set(err, FM_ERR_TLS,
	                    _("%s:%u refused STARTTLS (it said: %s); fulmar "
	                      "never falls back to an unencrypted connection"),
	                    conn->host, conn->port, server_text);
}

int
fm_net_err_injection(const struct fm_net_conn *conn, struct fm_error *err)
{
	return fm_error_set(err, FM_ERR_PROTOCOL,
	                    _("%s:%u sent data after its STARTTLS reply, "
	                      "before TLS began: this is how a "
	                      "man-in-the-middle injects responses "
	                      "(CVE-2020-15953); fulmar stopped"),
	                    conn->host, conn->port);
}

int
fm_net_err_starttls_failed(const struct fm_net_conn *conn,
                           const mailstream *stream, const char *server_text,
                           struct fm_error *err)
{
	if (stream != NULL && stream->read_buffer_len > 0)
		return fm_net_err_injection(conn, err);
	if (fm_net_failed(conn))
		return fm_net_error(conn, _("starting TLS"), err);
	return fm_net_err_starttls_refused(conn, server_text, err);
}

int
fm_net_err_login_failed(const struct fm_net_conn *conn, const char *user,
                        bool oauth, const char *server_text, const char *report,
                        struct fm_error *err)
{
	if (oauth)
		return fm_error_set(
		    err, FM_ERR_CREDENTIALS,
		    _("%s rejected the OAuth token for %s (it said: %s%s%s); "
		      "the token may have expired or lack the mail scope: "
		      "check oauth_token_cmd"),
		    conn->host, user, server_text, report[0] ? "; " : "",
		    report);
	return fm_error_set(
	    err, FM_ERR_CREDENTIALS,
	    _("%s rejected the password for %s (it said: %s). Check user "
	      "and password; if they are right, the provider may have "
	      "turned off password (basic) authentication: use an app "
	      "password, or auth = xoauth2 with oauth_token_cmd"),
	    conn->host, user, server_text);
}

int
fm_net_open(const struct fm_net_target *t, const struct fm_session_opts *o,
            mailstream **stream_r, struct fm_net_conn **conn_r,
            struct fm_error *err)
{
	if (fm_net_connect(t, stream_r, conn_r, err) < 0) {
		/* Say which step failed. */
		const char *step = err->cls == FM_ERR_TLS ? "TLS" : "TCP";
		if (strstr(err->detail, "getaddrinfo") != NULL)
			step = "DNS";
		fm_net_report(o, step, 0, false, "%s", err->user);
		return -1;
	}
	fm_net_report_connect(o, *conn_r);
	return 0;
}

void
fm_net_session_end(struct fm_net_conn *conn, mailstream **stream_slot,
                   bool healthy, void (*goodbye)(void *session), void *session)
{
	if (healthy && *stream_slot != NULL && !fm_net_failed(conn))
		goodbye(session);
	if (*stream_slot != NULL) {
		mailstream_close(*stream_slot);
		*stream_slot = NULL;
	}
}

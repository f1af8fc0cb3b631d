/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Opening an SMTP submission session: connect, greeting, EHLO, STARTTLS
 * (never skipped), EHLO again (libetpan keeps what was said in clear), then
 * AUTH — over TLS only, unless the account allows otherwise. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "smtp/smtp.h"

struct fm_smtp {
	const struct fm_account *acct;
	mailsmtp *smtp;
	mailstream *stream;
	struct fm_net_conn *conn;
	bool healthy;
};

mailsmtp *
fm_smtp_session(struct fm_smtp *s)
{
	return s->smtp;
}

static const char *
server_text(const struct fm_smtp *s, char *buf, size_t size)
{
	const char *t = s->smtp->response;
	fm_str_printable(t != NULL && t[0] != '\0' ? t : "(no text)", buf,
	                 size);
	/* libetpan ends each line of a reply with a newline. */
	fm_str_trim(buf);
	return buf;
}

/* The extensions of the last EHLO reply, one line after the other, and
 * the words of its AUTH line. */
static void
ehlo_lines(const struct fm_smtp *s, char *shown, size_t shown_size, char *auth,
           size_t auth_size)
{
	struct fm_buf b;
	fm_buf_init(&b, shown_size > 4 ? shown_size - 4 : 0);
	auth[0] = '\0';
	const char *resp = s->smtp->response != NULL ? s->smtp->response : "";
	/* The first line is the server's name; the rest are extensions. */
	const char *p = strchr(resp, '\n');
	while (p != NULL && *p != '\0') {
		p++;
		const char *end = strchr(p, '\n');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len > 0) {
			char line[512];
			snprintf(line, sizeof(line), "%.*s", (int)len, p);
			if (strncasecmp(line, "AUTH ", 5) == 0 ||
			    strncasecmp(line, "AUTH=", 5) == 0)
				fm_strlcpy(auth, line + 5, auth_size);
			fm_buf_printf(&b, "%s%s", b.len ? " " : "", line);
		}
		p = end;
	}
	fm_str_printable(b.data, shown, shown_size);
	fm_buf_free(&b);
}

static int
ehlo(struct fm_smtp *s, const struct fm_session_opts *o, const char *step,
     struct fm_error *err)
{
	uint64_t t0 = fm_now_ms();
	int r = mailesmtp_ehlo(s->smtp);
	unsigned ms = (unsigned)(fm_now_ms() - t0);
	if (r != MAILSMTP_NO_ERROR) {
		char text[256];
		if (fm_net_failed(s->conn))
			fm_net_error(s->conn, _("saying EHLO"), err);
		else
			fm_error_set(err, FM_ERR_PROTOCOL,
			             _("%s:%u refused EHLO (it said: %s); "
			               "is this a submission port?"),
			             s->acct->smtp_host, s->acct->smtp_port,
			             server_text(s, text, sizeof(text)));
		fm_net_report(o, step, ms, false, "%s", err->user);
		return -1;
	}
	char shown[1024], auth[256];
	ehlo_lines(s, shown, sizeof(shown), auth, sizeof(auth));
	fm_net_report(o, step, ms, true, "%s", shown);
	return 0;
}

static int
starttls(struct fm_smtp *s, const struct fm_session_opts *o,
         struct fm_error *err)
{
	uint64_t t0 = fm_now_ms();
	if (!(s->smtp->esmtp & MAILSMTP_ESMTP_STARTTLS)) {
		fm_net_err_no_starttls(s->conn, 465, err);
		goto fail;
	}
	if (mailesmtp_starttls(s->smtp) != MAILSMTP_NO_ERROR) {
		char text[256];
		fm_net_err_starttls_failed(s->conn, s->stream,
		                           server_text(s, text, sizeof(text)),
		                           err);
		goto fail;
	}
	if (fm_net_start_tls(s->conn, s->stream, err) < 0)
		goto fail;
	fm_net_report(o, "STARTTLS", (unsigned)(fm_now_ms() - t0), true, "%s",
	              _("upgraded"));
	fm_net_report_tls(o, s->conn);
	return 0;
fail:
	fm_net_report(o, "STARTTLS", (unsigned)(fm_now_ms() - t0), false, "%s",
	              err->user);
	return -1;
}

static int
login(struct fm_smtp *s, const struct fm_session_opts *o, struct fm_error *err)
{
	uint64_t t0 = fm_now_ms();
	const struct fm_account *a = s->acct;
	bool oauth =
	    a->auth == FM_AUTH_XOAUTH2 || a->auth == FM_AUTH_OAUTHBEARER;
	const char *secret = NULL;
	char final[256] = "", report[256] = "";
	bool ok = false;
	char shown[1024], auth[256];
	ehlo_lines(s, shown, sizeof(shown), auth, sizeof(auth));
	const char *offered[32];
	size_t n = 0;
	char *save = NULL;
	for (char *w = strtok_r(auth, " ", &save);
	     w != NULL && n < FM_ARRAY_LEN(offered);
	     w = strtok_r(NULL, " ", &save))
		offered[n++] = w;
	enum fm_auth_mech mech;

	if (fm_net_may_send_credentials(s->conn, a, err) < 0)
		goto fail;
	if (n == 0) {
		fm_error_set(err, FM_ERR_CONFIG,
		             _("%s:%u offers no authentication (no AUTH in "
		               "its EHLO reply); is this the submission "
		               "port (587 or 465)?"),
		             a->smtp_host, a->smtp_port);
		goto fail;
	}
	if (fm_sasl_choose(a->auth, offered, n, &mech, err) < 0)
		goto fail;
	if (oauth ? fm_creds_token(o->creds, &secret, err) < 0
	          : fm_creds_password(o->creds, &secret, err) < 0)
		goto fail;
	if (fm_net_sasl_lines(s->conn, s->stream, FM_TRACE_SMTP, mech,
	                      a->smtp_user, secret, &ok, final, sizeof(final),
	                      report, sizeof(report), err) < 0)
		goto fail;
	if (!ok) {
		if (oauth)
			fm_creds_forget_token(o->creds);
		fm_net_err_login_failed(s->conn, a->smtp_user, oauth, final,
		                        report, err);
		goto fail;
	}
	fm_net_report(o, "login", (unsigned)(fm_now_ms() - t0), true,
	              _("%s as %s"), fm_sasl_mech_name(mech), a->smtp_user);
	return 0;
fail:
	fm_net_report(o, "login", (unsigned)(fm_now_ms() - t0), false, "%s",
	              err->user);
	return -1;
}

int
fm_smtp_open(const struct fm_account *acct, const struct fm_session_opts *o,
             struct fm_smtp **smtp_r, struct fm_error *err)
{
	*smtp_r = NULL;
	if (acct->smtp_host == NULL)
		return fm_error_set(err, FM_ERR_CONFIG,
		                    _("account %s cannot send: set smtp_host "
		                      "in the config"),
		                    acct->name);
	struct fm_net_target t;
	fm_net_target_smtp(acct, o, &t);
	char label[128];
	snprintf(label, sizeof(label), "%s/smtp", acct->name);
	t.label = o->label != NULL ? o->label : label;
	struct fm_smtp *s = xcalloc(1, sizeof(*s));
	s->acct = acct;
	if (fm_net_open(&t, o, &s->stream, &s->conn, err) < 0) {
		free(s);
		return -1;
	}
	uint64_t t0 = fm_now_ms();
	s->smtp = mailsmtp_new(0, NULL);
	char text[256];
	/* On failure libetpan closes the stream itself. */
	int r = mailsmtp_connect(s->smtp, s->stream);
	if (r != MAILSMTP_NO_ERROR) {
		s->stream = NULL;
		if (fm_net_failed(s->conn))
			fm_net_error(s->conn, _("reading the greeting"), err);
		else if (r == MAILSMTP_ERROR_SERVICE_NOT_AVAILABLE)
			fm_error_set(err, FM_ERR_TEMPORARY,
			             _("%s:%u does not accept mail now (it "
			               "said: %s)"),
			             acct->smtp_host, acct->smtp_port,
			             server_text(s, text, sizeof(text)));
		else
			fm_error_set(err, FM_ERR_PROTOCOL,
			             _("%s:%u sent a greeting that is not "
			               "SMTP; is this the submission port?"),
			             acct->smtp_host, acct->smtp_port);
		fm_net_report(o, "greeting", (unsigned)(fm_now_ms() - t0),
		              false, "%s", err->user);
		goto fail;
	}
	fm_net_report(o, "greeting", (unsigned)(fm_now_ms() - t0), true, "%s",
	              server_text(s, text, sizeof(text)));
	if (ehlo(s, o, "capabilities", err) < 0)
		goto fail;
	if (acct->smtp_tls == FM_TLS_STARTTLS) {
		if (starttls(s, o, err) < 0)
			goto fail;
		if (ehlo(s, o, "capabilities", err) < 0)
			goto fail;
	}
	if (login(s, o, err) < 0)
		goto fail;
	s->healthy = true;
	*smtp_r = s;
	return 0;
fail:
	fm_smtp_close(&s);
	return -1;
}

static void
smtp_goodbye(void *session)
{
	mailsmtp_quit(session);
}

void
fm_smtp_close(struct fm_smtp **smtp)
{
	struct fm_smtp *s = *smtp;
	if (s == NULL)
		return;
	if (s->smtp != NULL) {
		fm_net_session_end(s->conn, &s->smtp->stream, s->healthy,
		                   smtp_goodbye, s->smtp);
		mailsmtp_free(s->smtp);
	} else if (s->stream != NULL) {
		mailstream_close(s->stream);
	}
	fm_net_conn_free(&s->conn);
	free(s);
	*smtp = NULL;
}

int
fm_smtp_check(struct fm_smtp *s, const struct fm_session_opts *o,
              struct fm_error *err)
{
	return ehlo(s, o, "EHLO", err);
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Opening a POP3 session: connect, greeting, CAPA, STLS (never skipped),
 * CAPA again, then USER/PASS or SASL — over TLS only, unless the account
 * allows otherwise. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "pop3/pop3_int.h"

/* libetpan's POP3 states are private; TRANSACTION is the one after a
 * successful login, which a hand-made AUTH must set itself. */
enum { LIBETPAN_POP3_STATE_TRANSACTION = 2 };

static const char *
server_text(const struct fm_pop3 *s, char *buf, size_t size)
{
	const char *t = s->pop3->pop3_response;
	fm_str_printable(t != NULL && t[0] != '\0' ? t : "(no text)", buf,
	                 size);
	return buf;
}

static void
free_caps(struct fm_pop3 *s)
{
	for (size_t i = 0; i < s->n_caps; i++)
		free(s->caps[i]);
	free(s->caps);
	s->caps = NULL;
	s->n_caps = 0;
}

/* The CAPA line whose name is name, or NULL. */
static const char *
find_cap(const struct fm_pop3 *s, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < s->n_caps; i++)
		if (strncasecmp(s->caps[i], name, n) == 0 &&
		    (s->caps[i][n] == '\0' || s->caps[i][n] == ' '))
			return s->caps[i];
	return NULL;
}

/* CAPA; a server without it (RFC 1939 only) has an empty list. */
static int
ask_caps(struct fm_pop3 *s, const struct fm_session_opts *o,
         struct fm_error *err)
{
	uint64_t t0 = fm_now_ms();
	free_caps(s);
	clist *list = NULL;
	int r = mailpop3_capa(s->pop3, &list);
	unsigned ms = (unsigned)(fm_now_ms() - t0);
	if (r != MAILPOP3_NO_ERROR) {
		if (fm_net_failed(s->conn)) {
			fm_net_error(s->conn, _("asking for capabilities"),
			             err);
			fm_net_report(o, "capabilities", ms, false, "%s",
			              err->user);
			return -1;
		}
		fm_net_report(o, "capabilities", ms, true, "%s",
		              _("(the server has no CAPA)"));
		return 0;
	}
	struct fm_buf all;
	fm_buf_init(&all, 1000);
	for (clistiter *it = clist_begin(list); it != NULL;
	     it = clist_next(it)) {
		const struct mailpop3_capa *c = clist_content(it);
		struct fm_buf line;
		fm_buf_init(&line, 1024);
		fm_buf_append_str(&line, c->cap_name);
		for (clistiter *p = clist_begin(c->cap_param); p != NULL;
		     p = clist_next(p))
			fm_buf_printf(&line, " %s", (char *)clist_content(p));
		s->caps =
		    xreallocarray(s->caps, s->n_caps + 2, sizeof(*s->caps));
		s->caps[s->n_caps++] = fm_buf_steal(&line);
		s->caps[s->n_caps] = NULL;
		fm_buf_printf(&all, "%s%s", all.len ? ", " : "",
		              s->caps[s->n_caps - 1]);
	}
	mailpop3_capa_resp_free(list);
	char shown[1024];
	fm_str_printable(all.data, shown, sizeof(shown));
	fm_buf_free(&all);
	fm_net_report(o, "capabilities", ms, true, "%s", shown);
	return 0;
}

static int
stls(struct fm_pop3 *s, const struct fm_session_opts *o, bool have_capa,
     struct fm_error *err)
{
	uint64_t t0 = fm_now_ms();
	if (have_capa && find_cap(s, "STLS") == NULL) {
		fm_net_err_no_starttls(s->conn, 995, err);
		goto fail;
	}
	if (mailpop3_stls(s->pop3) != MAILPOP3_NO_ERROR) {
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

/* The SASL mechanisms named in CAPA's SASL line. */
static size_t
sasl_mechs(const struct fm_pop3 *s, char *copy, size_t copy_size,
           const char **out, size_t max)
{
	const char *line = find_cap(s, "SASL");
	if (line == NULL)
		return 0;
	fm_strlcpy(copy, line + 4, copy_size);
	size_t n = 0;
	char *save = NULL;
	for (char *w = strtok_r(copy, " ", &save); w != NULL && n < max;
	     w = strtok_r(NULL, " ", &save))
		out[n++] = w;
	return n;
}

static int
login(struct fm_pop3 *s, const struct fm_session_opts *o, struct fm_error *err)
{
	uint64_t t0 = fm_now_ms();
	const struct fm_account *a = s->acct;
	bool oauth =
	    a->auth == FM_AUTH_XOAUTH2 || a->auth == FM_AUTH_OAUTHBEARER;
	const char *secret = NULL;
	const char *how = "USER/PASS";
	char final[256] = "", report[256] = "";
	bool ok = false;

	if (fm_net_may_send_credentials(s->conn, a, err) < 0)
		goto fail;
	if (oauth ? fm_creds_token(o->creds, &secret, err) < 0
	          : fm_creds_password(o->creds, &secret, err) < 0)
		goto fail;
	char copy[512];
	const char *offered[32];
	size_t n =
	    sasl_mechs(s, copy, sizeof(copy), offered, FM_ARRAY_LEN(offered));
	enum fm_auth_mech mech = a->auth;
	bool use_user_pass = false;
	if (a->auth == FM_AUTH_AUTO || a->auth == FM_AUTH_LOGIN) {
		/* AUTH PLAIN (auto) or AUTH LOGIN (login) when CAPA offers
		 * it, else USER/PASS, POP3's own login that every server
		 * has. */
		enum fm_auth_mech want =
		    a->auth == FM_AUTH_AUTO ? FM_AUTH_PLAIN : FM_AUTH_LOGIN;
		use_user_pass = true;
		for (size_t i = 0; i < n; i++)
			if (fm_str_ieq(offered[i], fm_sasl_mech_name(want))) {
				mech = want;
				use_user_pass = false;
			}
	} else if (fm_sasl_choose(a->auth, offered, n, &mech, err) < 0) {
		goto fail;
	}
	if (use_user_pass) {
		int r = mailpop3_user(s->pop3, a->user);
		if (r == MAILPOP3_NO_ERROR)
			r = mailpop3_pass(s->pop3, secret);
		if (r == MAILPOP3_NO_ERROR)
			ok = true;
		else if (fm_net_failed(s->conn)) {
			fm_net_error(s->conn, _("logging in"), err);
			goto fail;
		}
		server_text(s, final, sizeof(final));
	} else {
		how = fm_sasl_mech_name(mech);
		if (fm_net_sasl_lines(s->conn, s->stream, FM_TRACE_POP3, mech,
		                      a->user, secret, &ok, final,
		                      sizeof(final), report, sizeof(report),
		                      err) < 0)
			goto fail;
		if (ok)
			s->pop3->pop3_state = LIBETPAN_POP3_STATE_TRANSACTION;
	}
	if (!ok) {
		if (oauth)
			fm_creds_forget_token(o->creds);
		fm_net_err_login_failed(s->conn, a->user, oauth, final, report,
		                        err);
		goto fail;
	}
	fm_net_report(o, "login", (unsigned)(fm_now_ms() - t0), true,
	              _("%s as %s"), how, a->user);
	return 0;
fail:
	fm_net_report(o, "login", (unsigned)(fm_now_ms() - t0), false, "%s",
	              err->user);
	return -1;
}

int
fm_pop3_open(const struct fm_account *acct, const struct fm_session_opts *o,
             struct fm_pop3 **pop3_r, struct fm_error *err)
{
	*pop3_r = NULL;
	struct fm_net_target t;
	fm_net_target_incoming(acct, o, &t);
	char label[128];
	snprintf(label, sizeof(label), "%s/pop3", acct->name);
	t.label = o->label != NULL ? o->label : label;
	struct fm_pop3 *s = xcalloc(1, sizeof(*s));
	s->acct = acct;
	s->in = xmalloc(POP3_IN_SIZE);
	s->max_body = o->limits.max_literal;
	if (fm_net_open(&t, o, &s->stream, &s->conn, err) < 0) {
		free(s->in);
		free(s);
		return -1;
	}
	uint64_t t0 = fm_now_ms();
	s->pop3 = mailpop3_new(0, NULL);
	char text[256];
	if (mailpop3_connect(s->pop3, s->stream) != MAILPOP3_NO_ERROR) {
		if (fm_net_failed(s->conn))
			fm_net_error(s->conn, _("reading the greeting"), err);
		else
			fm_error_set(err, FM_ERR_PROTOCOL,
			             _("%s:%u sent a greeting that is not "
			               "POP3 (%s); is this the POP3 port?"),
			             acct->host, acct->port,
			             server_text(s, text, sizeof(text)));
		fm_net_report(o, "greeting", (unsigned)(fm_now_ms() - t0),
		              false, "%s", err->user);
		goto fail;
	}
	fm_net_report(o, "greeting", (unsigned)(fm_now_ms() - t0), true, "%s",
	              server_text(s, text, sizeof(text)));
	if (ask_caps(s, o, err) < 0)
		goto fail;
	if (acct->tls == FM_TLS_STARTTLS) {
		if (stls(s, o, s->n_caps > 0, err) < 0)
			goto fail;
		if (ask_caps(s, o, err) < 0)
			goto fail;
	}
	if (login(s, o, err) < 0)
		goto fail;
	s->healthy = true;
	*pop3_r = s;
	return 0;
fail:
	fm_pop3_close(&s);
	return -1;
}

static void
pop3_goodbye(void *session)
{
	mailpop3_quit(session);
}

void
fm_pop3_close(struct fm_pop3 **pop3)
{
	struct fm_pop3 *s = *pop3;
	if (s == NULL)
		return;
	if (s->pop3 != NULL) {
		fm_net_session_end(s->conn, &s->pop3->pop3_stream, s->healthy,
		                   pop3_goodbye, s->pop3);
		/* libetpan frees its LIST only at QUIT: after a failure or a
		 * cancel there was none. */
		carray *tab = s->pop3->pop3_msg_tab;
		for (unsigned i = 0; tab != NULL && i < carray_count(tab);
		     i++) {
			struct mailpop3_msg_info *m = carray_get(tab, i);
			if (m != NULL) {
				free(m->msg_uidl);
				free(m);
			}
		}
		if (tab != NULL)
			carray_free(tab);
		s->pop3->pop3_msg_tab = NULL;
		mailpop3_free(s->pop3);
	} else if (s->stream != NULL) {
		mailstream_close(s->stream);
	}
	fm_net_conn_free(&s->conn);
	free_caps(s);
	free(s->in);
	free(s);
	*pop3 = NULL;
}

void
fm_pop3_abort(struct fm_pop3 **pop3)
{
	if (*pop3 != NULL)
		(*pop3)->healthy = false;
	fm_pop3_close(pop3);
}

int
fm_pop3_check(struct fm_pop3 *s, const struct fm_session_opts *o,
              struct fm_error *err)
{
	uint64_t t0 = fm_now_ms();
	struct mailpop3_stat_response *st = NULL;
	if (mailpop3_stat(s->pop3, &st) != MAILPOP3_NO_ERROR) {
		char text[256];
		if (fm_net_failed(s->conn))
			fm_net_error(s->conn, _("asking for STAT"), err);
		else
			fm_error_set(err, FM_ERR_PROTOCOL,
			             _("%s refused STAT (it said: %s)"),
			             s->acct->host,
			             server_text(s, text, sizeof(text)));
		fm_net_report(o, "STAT", (unsigned)(fm_now_ms() - t0), false,
		              "%s", err->user);
		return -1;
	}
	fm_net_report(o, "STAT", (unsigned)(fm_now_ms() - t0), true,
	              _("%u messages, %u bytes"), st->msgs_count,
	              (unsigned)st->msgs_size);
	mailpop3_stat_resp_free(st);
	return 0;
}

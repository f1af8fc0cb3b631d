/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Opening an IMAP session the secure way, one explicit step after the
 * other: connect (TLS verified first when implicit), greeting, CAPABILITY,
 * STARTTLS (never skipped, never a fall-back), CAPABILITY again, then
 * authentication — and only over TLS unless the account allows otherwise.
 *
 * Each step that waits for the server costs a round trip, which on a
 * real link is most of a pass with nothing new. So the capabilities a
 * greeting names (as [CAPABILITY ...]) are taken without asking again,
 * except after STARTTLS, where what came in clear means nothing; and
 * those after login are the ones the login's answer names (RFC 3501
 * lets a server send them there), asked for only when it named none. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap.h"
#include "log/log.h"
#include "store/maildir.h"

struct fm_imap {
	const struct fm_account *acct;
	mailimap *imap;
	struct fm_net_conn *conn;
	mailstream *stream;
	bool healthy;   /* opened fine: worth a polite LOGOUT */
	int logout_tag; /* LOGOUT already sent with this tag; 0: not yet */
};

mailimap *
fm_imap_session(struct fm_imap *s)
{
	return s->imap;
}

struct fm_net_conn *
fm_imap_conn(struct fm_imap *s)
{
	return s->conn;
}

/* The server's last response text, safe to show. */
static const char *
server_text(const struct fm_imap *s, char *buf, size_t size)
{
	const char *t = s->imap->imap_response;
	fm_str_printable(t != NULL && t[0] != '\0' ? t : "(no text)", buf,
	                 size);
	return buf;
}

bool
fm_imap_has_cap(const struct fm_imap *s, const char *name)
{
	const struct mailimap_connection_info *ci =
	    s->imap->imap_connection_info;
	if (ci == NULL || ci->imap_capability == NULL)
		return false;
	for (clistiter *it = clist_begin(ci->imap_capability->cap_list);
	     it != NULL; it = clist_next(it)) {
		const struct mailimap_capability *c = clist_content(it);
		if (c->cap_type == MAILIMAP_CAPABILITY_NAME &&
		    fm_str_ieq(c->cap_data.cap_name, name))
			return true;
	}
	return false;
}

int
fm_imap_enable(struct fm_imap *s, const char *name, bool *on_r,
               struct fm_error *err)
{
	*on_r = false;
	if (!fm_imap_has_cap(s, "ENABLE") || !fm_imap_has_cap(s, name))
		return 0;
	clist *want = clist_new();
	clist_append(want, mailimap_capability_new(MAILIMAP_CAPABILITY_NAME,
	                                           NULL, xstrdup(name)));
	struct mailimap_capability_data *cd =
	    mailimap_capability_data_new(want);
	struct mailimap_capability_data *got = NULL;
	int r = mailimap_enable(s->imap, cd, &got);
	mailimap_capability_data_free(cd);
	if (r == MAILIMAP_ERROR_EXTENSION)
		return 0; /* a NO or BAD: not enabled */
	if (r != MAILIMAP_NO_ERROR) {
		char what[128];
		snprintf(what, sizeof(what), _("enabling %s"), name);
		return fm_imap_fail(s, what, err);
	}
	for (clistiter *it = clist_begin(got->cap_list); it != NULL;
	     it = clist_next(it)) {
		const struct mailimap_capability *c = clist_content(it);
		if (c->cap_type == MAILIMAP_CAPABILITY_NAME &&
		    fm_str_ieq(c->cap_data.cap_name, name))
			*on_r = true;
	}
	mailimap_capability_data_free(got);
	return 0;
}

int
fm_imap_fail(const struct fm_imap *s, const char *what, struct fm_error *err)
{
	if (fm_net_failed(s->conn))
		return fm_net_error(s->conn, what, err);
	char text[256];
	return fm_error_set(err, FM_ERR_PROTOCOL,
	                    _("%s refused %s (it said: %s)"), s->acct->host,
	                    what, server_text(s, text, sizeof(text)));
}

int
fm_imap_mailbox_name(const char *local, char delim, char **name_r,
                     struct fm_error *err)
{
	*name_r = NULL;
	if (strcmp(local, "INBOX") == 0) {
		*name_r = xstrdup("INBOX");
		return 0;
	}
	char *utf8 = NULL;
	if (fm_maildir_folder_name(local, delim, &utf8, err) < 0)
		return -1;
	int r = fm_utf8_to_mutf7(utf8, name_r, err);
	free(utf8);
	return r;
}

int
fm_imap_server_name(struct fm_imap *s, const char *local, char **name_r,
                    struct fm_error *err)
{
	*name_r = NULL;
	char delim = '/';
	if (strcmp(local, "INBOX") != 0) {
		/* LIST "" "" names the hierarchy delimiter. */
		clist *list = NULL;
		if (mailimap_list(s->imap, "", "", &list) != MAILIMAP_NO_ERROR)
			return fm_imap_fail(
			    s, _("asking for the hierarchy delimiter"), err);
		if (list != NULL && clist_begin(list) != NULL) {
			const struct mailimap_mailbox_list *mb =
			    clist_content(clist_begin(list));
			if (mb->mb_delimiter != '\0')
				delim = mb->mb_delimiter;
		}
		if (list != NULL)
			mailimap_list_result_free(list);
	}
	return fm_imap_mailbox_name(local, delim, name_r, err);
}

/* The AUTH= mechanisms offered, borrowed from libetpan's capability
 * list; at most max. */
static size_t
auth_mechs(const struct fm_imap *s, const char **out, size_t max)
{
	const struct mailimap_connection_info *ci =
	    s->imap->imap_connection_info;
	size_t n = 0;
	if (ci == NULL || ci->imap_capability == NULL)
		return 0;
	for (clistiter *it = clist_begin(ci->imap_capability->cap_list);
	     it != NULL && n < max; it = clist_next(it)) {
		const struct mailimap_capability *c = clist_content(it);
		if (c->cap_type == MAILIMAP_CAPABILITY_AUTH_TYPE)
			out[n++] = c->cap_data.cap_auth_type;
	}
	return n;
}

static void
caps_string(const struct fm_imap *s, char *out, size_t size)
{
	struct fm_buf b;
	fm_buf_init(&b, size > 4 ? size - 4 : 0);
	const struct mailimap_connection_info *ci =
	    s->imap->imap_connection_info;
	if (ci != NULL && ci->imap_capability != NULL) {
		for (clistiter *it = clist_begin(ci->imap_capability->cap_list);
		     it != NULL; it = clist_next(it)) {
			const struct mailimap_capability *c = clist_content(it);
			bool auth =
			    c->cap_type == MAILIMAP_CAPABILITY_AUTH_TYPE;
			if (fm_buf_printf(&b, "%s%s%s", b.len ? " " : "",
			                  auth ? "AUTH=" : "",
			                  auth ? c->cap_data.cap_auth_type
			                       : c->cap_data.cap_name) < 0) {
				fm_buf_append_str(&b, " ...");
				break;
			}
		}
	}
	fm_str_printable(b.data, out, size);
	fm_buf_free(&b);
}

static void
report_caps(struct fm_imap *s, const struct fm_session_opts *o, unsigned ms)
{
	char caps[1024];
	caps_string(s, caps, sizeof(caps));
	fm_net_report(o, "capabilities", ms, true, "%s", caps);
}

/* Asks CAPABILITY (libetpan keeps what it learnt in connection_info). */
static int
ask_caps(struct fm_imap *s, const struct fm_session_opts *o,
         struct fm_error *err)
{
	uint64_t t0 = fm_now_ms();
	struct mailimap_capability_data *cap = NULL;
	int r = mailimap_capability(s->imap, &cap);
	if (cap != NULL)
		mailimap_capability_data_free(cap);
	unsigned ms = (unsigned)(fm_now_ms() - t0);
	if (r != MAILIMAP_NO_ERROR) {
		fm_net_error(s->conn, _("asking for capabilities"), err);
		fm_net_report(o, "capabilities", ms, false, "%s", err->user);
		return -1;
	}
	report_caps(s, o, ms);
	return 0;
}

/* The capabilities libetpan holds, taken away: what the server says from
 * here on lands in an empty list, so told() can tell whether it said
 * anything. */
static struct mailimap_capability_data *
caps_take(struct fm_imap *s)
{
	struct mailimap_connection_info *ci = s->imap->imap_connection_info;
	if (ci == NULL)
		return NULL;
	struct mailimap_capability_data *c = ci->imap_capability;
	ci->imap_capability = NULL;
	return c;
}

/* Whether libetpan holds a capability list (from a greeting, a response
 * code or a CAPABILITY response). */
static bool
told(const struct fm_imap *s)
{
	const struct mailimap_connection_info *ci =
	    s->imap->imap_connection_info;
	return ci != NULL && ci->imap_capability != NULL &&
	       clist_begin(ci->imap_capability->cap_list) != NULL;
}

/* After the exchange caps_take() came before: the list taken is put back
 * when the server named none meanwhile, else dropped. */
static void
caps_settle(struct fm_imap *s, struct mailimap_capability_data *taken)
{
	struct mailimap_connection_info *ci = s->imap->imap_connection_info;
	if (ci != NULL && !told(s)) {
		if (ci->imap_capability != NULL)
			mailimap_capability_data_free(ci->imap_capability);
		ci->imap_capability = taken;
	} else if (taken != NULL) {
		mailimap_capability_data_free(taken);
	}
}

static int
starttls(struct fm_imap *s, const struct fm_session_opts *o,
         struct fm_error *err)
{
	uint64_t t0 = fm_now_ms();
	if (!fm_imap_has_cap(s, "STARTTLS")) {
		fm_net_err_no_starttls(s->conn, 993, err);
		goto fail;
	}
	if (mailimap_starttls(s->imap) != MAILIMAP_NO_ERROR) {
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
	if (fm_net_tls_info(s->conn) != NULL && err->cls == FM_ERR_TLS)
		fm_net_report_tls(o, s->conn);
	return -1;
}

/* One SASL exchange by hand: libetpan's own AUTHENTICATE goes through
 * Cyrus SASL (and prefers CRAM-MD5), and has no OAUTHBEARER. Returns 0
 * with *ok telling whether the server accepted. */
static int
authenticate(struct fm_imap *s, enum fm_auth_mech mech, const char *user,
             const char *secret, bool sasl_ir, bool *ok, char *server_error,
             size_t size, struct fm_error *err)
{
	*ok = false;
	server_error[0] = '\0';
	struct fm_sasl *sasl = fm_sasl_new(
	    mech, user, secret, fm_net_host(s->conn), fm_net_port(s->conn));
	char *ir = fm_sasl_initial_response(sasl);
	bool inline_ir = ir != NULL && sasl_ir;
	int ret = -1;
	struct fm_buf cmd;
	fm_buf_init(&cmd, 64 * 1024);
	if (mailimap_send_current_tag(s->imap) != MAILIMAP_NO_ERROR) {
		fm_net_error(s->conn, _("authenticating"), err);
		goto out;
	}
	fm_buf_printf(&cmd, "AUTHENTICATE %s%s%s\r\n", fm_sasl_mech_name(mech),
	              inline_ir ? " " : "", inline_ir ? ir : "");
	if (fm_net_write(s->conn, s->stream, cmd.data, cmd.len, err) < 0)
		goto out;
	bool ir_pending = ir != NULL && !inline_ir;
	for (int round = 0;; round++) {
		char *line = mailimap_read_line(s->imap);
		if (line == NULL) {
			fm_net_error(s->conn, _("authenticating"), err);
			goto out;
		}
		if (line[0] != '+')
			break;
		if (round >= 8) {
			fm_error_set(err, FM_ERR_PROTOCOL,
			             _("%s:%u keeps asking during "
			               "authentication"),
			             fm_net_host(s->conn),
			             fm_net_port(s->conn));
			goto out;
		}
		char *challenge = fm_str_trim(line + 1);
		char *resp = NULL, *report = NULL;
		if (ir_pending && challenge[0] == '\0') {
			resp = xstrdup(ir);
			ir_pending = false;
		} else if (fm_sasl_step(sasl, challenge, &resp, &report) < 0) {
			/* Cancel the exchange; the tagged NO follows. */
			resp = xstrdup("*");
		}
		if (report != NULL) {
			fm_str_printable(report, server_error, size);
			free(report);
		}
		fm_buf_reset(&cmd);
		fm_buf_printf(&cmd, "%s\r\n", resp);
		fm_free_secret(&resp);
		int w =
		    fm_net_write(s->conn, s->stream, cmd.data, cmd.len, err);
		fm_wipe(cmd.data, cmd.len);
		if (w < 0)
			goto out;
	}
	struct mailimap_response *response = NULL;
	if (mailimap_parse_response(s->imap, &response) != MAILIMAP_NO_ERROR) {
		fm_net_error(s->conn, _("authenticating"), err);
		goto out;
	}
	struct mailimap_response_done *done = response->rsp_resp_done;
	if (done->rsp_type == MAILIMAP_RESP_DONE_TYPE_TAGGED &&
	    done->rsp_data.rsp_tagged->rsp_cond_state->rsp_type ==
	        MAILIMAP_RESP_COND_STATE_OK) {
		*ok = true;
		s->imap->imap_state = MAILIMAP_STATE_AUTHENTICATED;
	}
	mailimap_response_free(response);
	ret = 0;
out:
	fm_wipe(cmd.data, cmd.cap);
	fm_buf_free(&cmd);
	fm_free_secret(&ir);
	fm_sasl_free(&sasl);
	return ret;
}

static int
login(struct fm_imap *s, const struct fm_session_opts *o, struct fm_error *err)
{
	uint64_t t0 = fm_now_ms();
	const struct fm_account *a = s->acct;
	const char *user = a->user;
	const char *secret = NULL;
	bool oauth =
	    a->auth == FM_AUTH_XOAUTH2 || a->auth == FM_AUTH_OAUTHBEARER;
	enum fm_auth_mech mech = a->auth;
	char report[256] = "";
	bool ok = false;
	const char *how = "";
	bool use_login_cmd = false;

	if (fm_net_may_send_credentials(s->conn, a, err) < 0)
		goto fail;
	if (!oauth && fm_imap_has_cap(s, "LOGINDISABLED")) {
		if (!fm_net_is_tls(s->conn))
			fm_error_set(err, FM_ERR_CONFIG,
			             _("%s refuses to log in over an "
			               "unencrypted connection "
			               "(LOGINDISABLED): use tls = starttls "
			               "or tls = implicit"),
			             a->host);
		else
			fm_error_set(err, FM_ERR_PERMANENT,
			             _("%s does not allow logging in with a "
			               "password (LOGINDISABLED)"),
			             a->host);
		goto fail;
	}
	const char *offered[32];
	size_t n_offered = auth_mechs(s, offered, FM_ARRAY_LEN(offered));
	if (oauth) {
		if (fm_sasl_choose(a->auth, offered, n_offered, &mech, err) < 0)
			goto fail;
		if (fm_creds_token(o->creds, &secret, err) < 0)
			goto fail;
	} else {
		if (fm_creds_password(o->creds, &secret, err) < 0)
			goto fail;
		/* auto: AUTHENTICATE PLAIN when offered; login: AUTHENTICATE
		 * LOGIN when offered; either falls back to the LOGIN
		 * command, which every IMAP server has. */
		if (a->auth == FM_AUTH_AUTO || a->auth == FM_AUTH_LOGIN) {
			enum fm_auth_mech want = a->auth == FM_AUTH_AUTO
			                             ? FM_AUTH_PLAIN
			                             : FM_AUTH_LOGIN;
			use_login_cmd = true;
			for (size_t i = 0; i < n_offered; i++)
				if (fm_str_ieq(offered[i],
				               fm_sasl_mech_name(want))) {
					mech = want;
					use_login_cmd = false;
				}
		} else if (fm_sasl_choose(a->auth, offered, n_offered, &mech,
		                          err) < 0) {
			goto fail;
		}
	}
	/* From here on, the capabilities the server names are those after
	 * login (SASL-IR is the last one looked at before). */
	bool sasl_ir = fm_imap_has_cap(s, "SASL-IR");
	struct mailimap_capability_data *before = caps_take(s);
	int r;
	if (use_login_cmd) {
		how = _("the LOGIN command");
		int lr = mailimap_login(s->imap, user, secret);
		ok = lr == MAILIMAP_NO_ERROR;
		r = ok || lr == MAILIMAP_ERROR_LOGIN
		        ? 0
		        : fm_net_error(s->conn, _("logging in"), err);
	} else {
		how = fm_sasl_mech_name(mech);
		r = authenticate(s, mech, user, secret, sasl_ir, &ok, report,
		                 sizeof(report), err);
	}
	bool fresh = ok && told(s);
	caps_settle(s, before);
	if (r < 0)
		goto fail;
	if (!ok) {
		if (oauth)
			fm_creds_forget_token(o->creds);
		char text[256];
		fm_net_err_login_failed(s->conn, user, oauth,
		                        server_text(s, text, sizeof(text)),
		                        report, err);
		goto fail;
	}
	fm_net_report(o, "login", (unsigned)(fm_now_ms() - t0), true,
	              _("%s as %s"), how, user);
	/* Named with the login's answer (Dovecot does), or asked now: what
	 * was offered before login may be less. */
	return fresh ? 0 : ask_caps(s, o, err);
fail:
	fm_net_report(o, "login", (unsigned)(fm_now_ms() - t0), false, "%s",
	              err->user);
	return -1;
}

int
fm_imap_open(const struct fm_account *acct, const struct fm_session_opts *o,
             struct fm_imap **imap_r, struct fm_error *err)
{
	*imap_r = NULL;
	struct fm_net_target t;
	fm_net_target_incoming(acct, o, &t);
	char label[128];
	snprintf(label, sizeof(label), "%s/imap", acct->name);
	t.label = o->label != NULL ? o->label : label;

	struct fm_imap *s = xcalloc(1, sizeof(*s));
	s->acct = acct;
	if (fm_net_open(&t, o, &s->stream, &s->conn, err) < 0) {
		free(s);
		return -1;
	}

	uint64_t t0 = fm_now_ms();
	s->imap = mailimap_new(0, NULL);
	int r = mailimap_connect(s->imap, s->stream);
	char text[256];
	if (r != MAILIMAP_NO_ERROR && r != MAILIMAP_NO_ERROR_AUTHENTICATED &&
	    r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED) {
		if (fm_net_failed(s->conn))
			fm_net_error(s->conn, _("reading the greeting"), err);
		else if (r == MAILIMAP_ERROR_DONT_ACCEPT_CONNECTION)
			fm_error_set(err, FM_ERR_TEMPORARY,
			             _("%s:%u does not accept connections "
			               "now (it said: %s)"),
			             acct->host, acct->port,
			             server_text(s, text, sizeof(text)));
		else
			fm_error_set(err, FM_ERR_PROTOCOL,
			             _("%s:%u sent a greeting that is not "
			               "IMAP; is this the IMAP port?"),
			             acct->host, acct->port);
		fm_net_report(o, "greeting", (unsigned)(fm_now_ms() - t0),
		              false, "%s", err->user);
		goto fail;
	}
	bool preauth = r == MAILIMAP_NO_ERROR_AUTHENTICATED;
	if (preauth && acct->tls == FM_TLS_STARTTLS) {
		/* Already logged in before TLS: STARTTLS is impossible now,
		 * and everything would travel in clear. */
		fm_error_set(err, FM_ERR_TLS,
		             _("%s:%u greeted with PREAUTH on a connection "
		               "that must first switch to TLS; fulmar "
		               "refuses to go on unencrypted"),
		             acct->host, acct->port);
		fm_net_report(o, "greeting", (unsigned)(fm_now_ms() - t0),
		              false, "%s", err->user);
		goto fail;
	}
	fm_net_report(o, "greeting", (unsigned)(fm_now_ms() - t0), true, "%s",
	              server_text(s, text, sizeof(text)));

	if (told(s))
		report_caps(s, o, 0); /* the greeting named them */
	else if (ask_caps(s, o, err) < 0)
		goto fail;
	if (acct->tls == FM_TLS_STARTTLS) {
		if (starttls(s, o, err) < 0)
			goto fail;
		/* libetpan keeps the old list: what was said in clear means
		 * nothing now. */
		if (ask_caps(s, o, err) < 0)
			goto fail;
	}
	if (!preauth && login(s, o, err) < 0)
		goto fail;
	s->healthy = true;
	*imap_r = s;
	return 0;
fail:
	fm_imap_close(&s);
	return -1;
}

static void
imap_goodbye(void *session)
{
	struct fm_imap *s = session;
	if (s->logout_tag == 0) {
		mailimap_logout(s->imap);
		return;
	}
	/* BYE and the tagged OK, already on their way. */
	struct mailimap_response *resp = NULL;
	s->imap->imap_tag = s->logout_tag;
	if (mailimap_read_line(s->imap) != NULL &&
	    mailimap_parse_response(s->imap, &resp) == MAILIMAP_NO_ERROR)
		mailimap_response_free(resp);
}

int
fm_imap_logout_send(struct fm_imap *s, struct fm_error *err)
{
	static const char cmd[] = "LOGOUT\r\n";
	if (mailimap_send_current_tag(s->imap) != MAILIMAP_NO_ERROR)
		return fm_net_error(s->conn, _("logging out"), err);
	if (fm_net_write(s->conn, s->stream, cmd, sizeof(cmd) - 1, err) < 0)
		return -1;
	s->logout_tag = s->imap->imap_tag;
	return 0;
}

void
fm_imap_close(struct fm_imap **imap)
{
	struct fm_imap *s = *imap;
	if (s == NULL)
		return;
	if (s->imap != NULL) {
		fm_net_session_end(s->conn, &s->imap->imap_stream, s->healthy,
		                   imap_goodbye, s);
		mailimap_free(s->imap);
	} else if (s->stream != NULL) {
		mailstream_close(s->stream);
	}
	fm_net_conn_free(&s->conn);
	free(s);
	*imap = NULL;
}

void
fm_imap_abort(struct fm_imap **imap)
{
	if (*imap != NULL)
		(*imap)->healthy = false;
	fm_imap_close(imap);
}

int
fm_imap_check(struct fm_imap *s, const struct fm_session_opts *o,
              struct fm_error *err)
{
	uint64_t t0 = fm_now_ms();
	clist *list = NULL;
	int r = mailimap_list(s->imap, "", "*", &list);
	if (r != MAILIMAP_NO_ERROR) {
		if (fm_net_failed(s->conn))
			fm_net_error(s->conn, _("listing folders"), err);
		else
			fm_error_set(err, FM_ERR_PROTOCOL,
			             _("%s refused to list folders"),
			             s->acct->host);
		goto fail;
	}
	int folders = list != NULL ? clist_count(list) : 0;
	if (list != NULL)
		mailimap_list_result_free(list);

	struct mailimap_status_att_list *atts =
	    mailimap_status_att_list_new_empty();
	mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_MESSAGES);
	mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_UNSEEN);
	struct mailimap_mailbox_data_status *status = NULL;
	r = mailimap_status(s->imap, "INBOX", atts, &status);
	mailimap_status_att_list_free(atts);
	if (r != MAILIMAP_NO_ERROR) {
		if (fm_net_failed(s->conn))
			fm_net_error(s->conn, _("asking for INBOX status"),
			             err);
		else
			fm_error_set(err, FM_ERR_PROTOCOL,
			             _("%s refused STATUS INBOX"),
			             s->acct->host);
		goto fail;
	}
	uint32_t messages = 0, unseen = 0;
	for (clistiter *it = clist_begin(status->st_info_list); it != NULL;
	     it = clist_next(it)) {
		const struct mailimap_status_info *si = clist_content(it);
		if (si->st_att == MAILIMAP_STATUS_ATT_MESSAGES)
			messages = si->st_value;
		else if (si->st_att == MAILIMAP_STATUS_ATT_UNSEEN)
			unseen = si->st_value;
	}
	mailimap_mailbox_data_status_free(status);
	fm_net_report(o, "LIST+STATUS", (unsigned)(fm_now_ms() - t0), true,
	              _("%d folders; INBOX: %u messages, %u unseen"), folders,
	              messages, unseen);
	return 0;
fail:
	fm_net_report(o, "LIST+STATUS", (unsigned)(fm_now_ms() - t0), false,
	              "%s", err->user);
	return -1;
}

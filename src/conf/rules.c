/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Diagnostics, defaults, and the rules that tie keys together. They run once
 * a section is complete, since a key's default or validity can depend on
 * keys below it (port follows tls, tls follows port). Each problem is
 * reported on the line of the key that makes the combination wrong, or on
 * the section header when a key is missing.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "conf/conf-int.h"
#include "conf/conf.h"

/* ------------------------------------------------------------------------
 * Diagnostics.
 */

void
conf_diag_add(struct fm_conf_diags *diags, enum fm_conf_severity sev,
              unsigned line, const char *key, const char *fmt, ...)
{
	if (diags == NULL)
		abort(); /* a default failed to parse: a bug in the table */
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	/* Insert after every item on the same or an earlier line, so the
	 * list stays sorted and problems on one line keep their order. */
	size_t at = diags->n;
	while (at > 0 && diags->items[at - 1].line > line)
		at--;
	diags->items =
	    xreallocarray(diags->items, diags->n + 1, sizeof(*diags->items));
	memmove(diags->items + at + 1, diags->items + at,
	        (diags->n - at) * sizeof(*diags->items));
	diags->items[at] = (struct fm_conf_diag){
	    .severity = sev,
	    .line = line,
	    .key = xstrdup(key),
	    .message = msg,
	};
	diags->n++;
	if (sev == FM_CONF_ERROR)
		diags->n_errors++;
}

int
conf_report_error(const struct conf_report *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	conf_diag_add(r->diags, FM_CONF_ERROR, r->line, r->key, "%s", msg);
	free(msg);
	return -1;
}

void
conf_report_warning(const struct conf_report *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	conf_diag_add(r->diags, FM_CONF_WARNING, r->line, r->key, "%s", msg);
	free(msg);
}

void
fm_conf_diags_free(struct fm_conf_diags *diags)
{
	if (diags == NULL)
		return;
	for (size_t i = 0; i < diags->n; i++) {
		free(diags->items[i].key);
		free(diags->items[i].message);
	}
	free(diags->items);
	diags->items = NULL;
	diags->n = diags->n_errors = 0;
}

/* ------------------------------------------------------------------------
 * Rules.
 */

static void
diag(struct fm_conf_diags *d, enum fm_conf_severity sev, unsigned line,
     const char *key, const char *msg)
{
	conf_diag_add(d, sev, line, key, "%s", msg);
}

static unsigned
account_line_of(const struct fm_account *a, const char *key)
{
	return a->key_lines[conf_key_id(CONF_SECT_ACCOUNT, key)];
}

void
conf_apply_defaults(enum conf_sect sect, void *obj, const unsigned *lines)
{
	for (size_t i = 0; i < conf_n_keys; i++) {
		const struct conf_key *k = &conf_keys[i];
		if (k->sect != sect || k->def == NULL || lines[i] != 0)
			continue;
		/* NULL diags: a default that does not parse aborts. */
		struct conf_report r = {NULL, 0, k->name};
		conf_key_set(k, obj, k->def, &r);
	}
}

static void
warn_at(struct fm_conf_diags *d, const struct fm_account *a, const char *key,
        enum fm_conf_severity sev, const char *msg)
{
	unsigned line = account_line_of(a, key);
	diag(d, sev, line != 0 ? line : a->line, key, msg);
}

static bool
is_port(unsigned port, unsigned a, unsigned b, unsigned c)
{
	return port == a || port == b || port == c;
}

/* tls/port pairs that are probably a mistake (both set explicitly). */
static void
check_tls_port(struct fm_conf_diags *d, const struct fm_account *a,
               const char *tls_key, enum fm_tls_mode tls, const char *port_key,
               unsigned port)
{
	if (account_line_of(a, tls_key) == 0 ||
	    account_line_of(a, port_key) == 0)
		return;
	char *msg = NULL;
	if (tls == FM_TLS_IMPLICIT && is_port(port, 143, 110, 587))
		msg = xasprintf(_("%s = implicit with %s %u is probably "
		                  "wrong: that port normally uses starttls"),
		                tls_key, port_key, port);
	else if (tls == FM_TLS_STARTTLS && is_port(port, 993, 995, 465))
		msg = xasprintf(_("%s = starttls with %s %u is probably "
		                  "wrong: that port normally uses implicit "
		                  "TLS"),
		                tls_key, port_key, port);
	if (msg != NULL)
		warn_at(d, a, tls_key, FM_CONF_WARNING, msg);
	free(msg);
}

static void
check_plaintext(struct fm_conf_diags *d, const struct fm_account *a,
                const char *tls_key, enum fm_tls_mode tls)
{
	bool token = a->oauth_token_cmd != NULL && a->auth != FM_AUTH_PLAIN &&
	             a->auth != FM_AUTH_LOGIN;
	bool creds = a->password != NULL || a->password_cmd != NULL || token;
	if (tls != FM_TLS_NONE || !creds || a->allow_plaintext_login)
		return;
	char *msg = xasprintf(
	    _("with %s = none the password would cross the network "
	      "unencrypted; use %s = starttls or %s = implicit, or set "
	      "allow_plaintext_login = yes if you really mean it"),
	    tls_key, tls_key, tls_key);
	warn_at(d, a, tls_key, FM_CONF_ERROR, msg);
	free(msg);
}

static void
finish_ports(struct fm_conf_diags *d, struct fm_account *a)
{
	bool pop3 = a->protocol == FM_PROTO_POP3;
	if (account_line_of(a, "tls") == 0)
		a->tls = account_line_of(a, "port") != 0 &&
		                 is_port(a->port, 143, 110, 587)
		             ? FM_TLS_STARTTLS
		             : FM_TLS_IMPLICIT;
	if (account_line_of(a, "port") == 0)
		a->port = a->tls == FM_TLS_IMPLICIT ? (pop3 ? 995 : 993)
		                                    : (pop3 ? 110 : 143);
	if (account_line_of(a, "smtp_tls") == 0)
		a->smtp_tls =
		    account_line_of(a, "smtp_port") != 0 && a->smtp_port == 465
		        ? FM_TLS_IMPLICIT
		        : FM_TLS_STARTTLS;
	if (account_line_of(a, "smtp_port") == 0)
		a->smtp_port = a->smtp_tls == FM_TLS_IMPLICIT ? 465 : 587;

	check_tls_port(d, a, "tls", a->tls, "port", a->port);
	if (a->smtp_host != NULL)
		check_tls_port(d, a, "smtp_tls", a->smtp_tls, "smtp_port",
		               a->smtp_port);
}

static void
finish_tls(struct fm_conf_diags *d, struct fm_account *a)
{
	check_plaintext(d, a, "tls", a->tls);
	if (a->smtp_host != NULL)
		check_plaintext(d, a, "smtp_tls", a->smtp_tls);
	if (a->tls != FM_TLS_NONE)
		return;
	static const char *const verify[] = {"tls_ca_file", "tls_fingerprint"};
	for (size_t i = 0; i < FM_ARRAY_LEN(verify); i++) {
		if (account_line_of(a, verify[i]) == 0)
			continue;
		char *msg = xasprintf(_("nothing to verify: tls = none turns "
		                        "TLS off; remove %s or use tls = "
		                        "starttls or implicit"),
		                      verify[i]);
		warn_at(d, a, verify[i], FM_CONF_ERROR, msg);
		free(msg);
	}
}

static void
finish_auth(struct fm_conf_diags *d, struct fm_account *a)
{
	unsigned pw = account_line_of(a, "password");
	unsigned pw_cmd = account_line_of(a, "password_cmd");
	if (pw != 0 && pw_cmd != 0) {
		char *msg =
		    xasprintf(_("password and password_cmd are both set "
		                "(the other on line %u); keep one"),
		              pw < pw_cmd ? pw : pw_cmd);
		warn_at(d, a, pw < pw_cmd ? "password_cmd" : "password",
		        FM_CONF_ERROR, msg);
		free(msg);
	}
	bool oauth =
	    a->auth == FM_AUTH_XOAUTH2 || a->auth == FM_AUTH_OAUTHBEARER;
	if (oauth && a->oauth_token_cmd == NULL) {
		char *msg = xasprintf(
		    _("auth = %s needs oauth_token_cmd, the "
		      "command that prints a token"),
		    a->auth == FM_AUTH_XOAUTH2 ? "xoauth2" : "oauthbearer");
		warn_at(d, a, "auth", FM_CONF_ERROR, msg);
		free(msg);
	}
	if (a->oauth_token_cmd != NULL &&
	    (a->auth == FM_AUTH_PLAIN || a->auth == FM_AUTH_LOGIN)) {
		char *msg =
		    xasprintf(_("ignored: auth = %s logs in with the "
		                "password, not a token"),
		              a->auth == FM_AUTH_PLAIN ? "plain" : "login");
		warn_at(d, a, "oauth_token_cmd", FM_CONF_WARNING, msg);
		free(msg);
	}
	if (a->user == NULL && a->email != NULL)
		a->user = xstrdup(a->email);
	if (a->smtp_user == NULL && a->user != NULL)
		a->smtp_user = xstrdup(a->user);
}

static void
finish_protocol(struct fm_conf_diags *d, struct fm_account *a)
{
	bool pop3 = a->protocol == FM_PROTO_POP3;
	for (size_t i = 0; i < conf_n_keys; i++) {
		const struct conf_key *k = &conf_keys[i];
		if (k->sect != CONF_SECT_ACCOUNT || a->key_lines[i] == 0)
			continue;
		if ((k->flags & CONF_KF_POP3) && !pop3)
			warn_at(d, a, k->name, FM_CONF_WARNING,
			        _("applies to POP3 accounts only; ignored"));
		if ((k->flags & CONF_KF_SMTP) && a->smtp_host == NULL)
			warn_at(d, a, k->name, FM_CONF_WARNING,
			        _("smtp_host is not set, so this account "
			          "cannot send; ignored"));
	}
	if (pop3 && a->idle && account_line_of(a, "idle") != 0)
		warn_at(d, a, "idle", FM_CONF_WARNING,
		        _("POP3 has no IDLE; ignored"));
	if (pop3)
		a->idle = false;
	if (pop3 && a->delete_after_days > 0 && !a->keep_on_server)
		warn_at(d, a, "delete_after_days", FM_CONF_WARNING,
		        _("keep_on_server = no removes messages from the "
		          "server once they are downloaded, so nothing is "
		          "left to delete later"));
	if (account_line_of(a, "save_sent") == 0)
		a->save_sent = pop3 ? FM_SAVE_SENT_LOCAL : FM_SAVE_SENT_SERVER;
	else if (pop3 && a->save_sent == FM_SAVE_SENT_SERVER)
		warn_at(d, a, "save_sent", FM_CONF_ERROR,
		        _("a POP3 server has no folders to save sent mail "
		          "in; use save_sent = local or no"));
}

void
conf_finish_account(struct fm_account *a, const unsigned *seen,
                    struct fm_conf_diags *d)
{
	conf_apply_defaults(CONF_SECT_ACCOUNT, a, a->key_lines);
	for (size_t i = 0; i < conf_n_keys; i++) {
		const struct conf_key *k = &conf_keys[i];
		/* A key with a bad value has been reported already. */
		if (k->sect != CONF_SECT_ACCOUNT ||
		    !(k->flags & CONF_KF_REQUIRED) || seen[i] != 0)
			continue;
		char *msg = xasprintf(_("required key missing; add %s = … "
		                        "to [account %s]"),
		                      k->name, a->name);
		diag(d, FM_CONF_ERROR, a->line, k->name, msg);
		free(msg);
	}
	finish_ports(d, a);
	finish_auth(d, a);
	finish_tls(d, a);
	finish_protocol(d, a);
}

void
conf_check_accounts(const struct fm_config *cfg, struct fm_conf_diags *d)
{
	const struct fm_account *first = NULL;
	for (size_t i = 0; i < cfg->n_accounts; i++) {
		const struct fm_account *a = &cfg->accounts[i];
		if (!a->is_default)
			continue;
		if (first == NULL) {
			first = a;
			continue;
		}
		char *msg =
		    xasprintf(_("account '%s' (line %u) is already the "
		                "default; only one account can be"),
		              first->name, account_line_of(first, "default"));
		warn_at(d, a, "default", FM_CONF_ERROR, msg);
		free(msg);
	}
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* One message through an open submission session: MAIL FROM, RCPT TO for
 * each recipient, DATA; and the server's replies turned into sentences
 * that say what to do.
 *
 * libetpan traps met here (1.9.4):
 * - MAIL FROM and RCPT TO are formatted into a 513-byte buffer with the
 *   address pasted in unchecked: a CR or LF injects commands, and a long
 *   address silently loses the command's CRLF. fm_smtp_address_check()
 *   runs before every command.
 * - mailsmtp_data_message() dot-stuffs, turns bare LF and bare CR into
 *   CRLF, and then always writes "\r\n.\r\n". A message that ends with its
 *   own line break would gain an empty line at its end, so that line
 *   break is taken off first (transmit_length()).
 * - No BODY=8BITMIME or SMTPUTF8 parameter can be given: addresses must
 *   be ASCII; 8-bit bodies go out as they are (servers take them).
 * - The reply text (session->response) is the lines of the reply without
 *   their codes, each ended by '\n'; response_code is the number.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log/log.h"
#include "smtp/smtp.h"

/* RFC 5321 4.5.3.1.3: a path holds at most 256 octets with its angle
 * brackets. */
#define ADDRESS_MAX 254

int
fm_smtp_address_check(const char *addr, struct fm_error *err)
{
	char shown[128];
	fm_str_printable(addr, shown, sizeof(shown));
	size_t len = strlen(addr);
	if (len == 0)
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("an empty address cannot be sent to"));
	if (len > ADDRESS_MAX)
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("the address %s is longer than SMTP "
		                      "allows (%d characters)"),
		                    shown, ADDRESS_MAX);
	for (const unsigned char *p = (const unsigned char *)addr; *p; p++) {
		if (*p == '\r' || *p == '\n' || *p < 0x20 || *p == 0x7f ||
		    *p == '<' || *p == '>' || *p == ' ')
			return fm_error_set(
			    err, FM_ERR_USAGE,
			    _("the address %s contains a character an SMTP "
			      "envelope must not hold (a line break, space, "
			      "'<', '>' or a control character)"),
			    shown);
		if (*p >= 0x80)
			return fm_error_set(
			    err, FM_ERR_USAGE,
			    _("the address %s is not ASCII; sending to it "
			      "needs SMTPUTF8, which fulmar cannot use yet"),
			    shown);
	}
	const char *at = strrchr(addr, '@');
	if (at == NULL || at == addr || at[1] == '\0')
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("%s is not a mail address (no "
		                      "local@domain)"),
		                    shown);
	return 0;
}

void
fm_smtp_result_free(struct fm_smtp_result *res)
{
	for (size_t i = 0; i < res->n_rcpts; i++) {
		free(res->rcpts[i].addr);
		free(res->rcpts[i].reply);
	}
	free(res->rcpts);
	res->rcpts = NULL;
	res->n_rcpts = 0;
}

/* The server's last reply on one line: "550 5.1.1 <x@y>: User unknown". */
static void
last_reply(mailsmtp *m, char *out, size_t size)
{
	char text[400];
	fm_str_printable(m->response != NULL ? m->response : "", text,
	                 sizeof(text));
	fm_str_trim(text);
	snprintf(out, size, "%d %s", m->response_code, text);
}

/* The enhanced status code (RFC 3463) at the start of the reply text:
 * class, subject, detail; all 0 when there is none. */
static void
enhanced_code(const char *text, int code[3])
{
	code[0] = code[1] = code[2] = 0;
	if (text == NULL)
		return;
	int c, s, d, n = 0;
	if (sscanf(text, "%1d.%3d.%3d%n", &c, &s, &d, &n) == 3 && n > 0 &&
	    (c == 2 || c == 4 || c == 5)) {
		code[0] = c;
		code[1] = s;
		code[2] = d;
	}
}

static bool
contains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = hay; p != NULL && *p != '\0'; p++)
		if (strncasecmp(p, needle, n) == 0)
			return true;
	return false;
}

enum stage { STAGE_MAIL, STAGE_RCPT, STAGE_DATA, STAGE_END };

/* "12.3 MB", or "17 KB" under a megabyte. */
static const char *
human_size(size_t bytes, char *buf, size_t size)
{
	if (bytes >= 1024 * 1024)
		snprintf(buf, size, _("%.1f MB"),
		         (double)bytes / (1024.0 * 1024.0));
	else
		snprintf(buf, size, _("%zu KB"), (bytes + 1023) / 1024);
	return buf;
}

/* Turns a reply that is not a success into the result's class and
 * sentence. The message stays in the Outbox either way; the sentence
 * says what the user can do about it. */
static void
map_reply(const struct fm_account *a, mailsmtp *m, enum stage stage,
          size_t size, struct fm_smtp_result *res)
{
	int code = m->response_code;
	int ec[3];
	enhanced_code(m->response, ec);
	char reply[512];
	last_reply(m, reply, sizeof(reply));
	fm_strlcpy(res->reply, reply, sizeof(res->reply));
	res->code = code;
	const char *h = a->smtp_host;
	unsigned port = a->smtp_port;
	struct fm_error *err = &res->err;
	res->outcome = code >= 500 ? FM_SMTP_FAILED : FM_SMTP_DEFERRED;

	if (code == 530 || (ec[0] == 5 && ec[1] == 7 && ec[2] == 0 &&
	                    contains(m->response, "auth"))) {
		/* The message is fine; the account is not. */
		res->outcome = FM_SMTP_DEFERRED;
		if (contains(m->response, "STARTTLS"))
			fm_error_set(err, FM_ERR_CONFIG,
			             _("%s:%u wants STARTTLS before it takes "
			               "mail (it said: %s): set smtp_tls = "
			               "starttls with smtp_port = 587, or "
			               "smtp_tls = implicit with smtp_port = "
			               "465"),
			             h, port, reply);
		else
			fm_error_set(err, FM_ERR_CREDENTIALS,
			             _("%s:%u wants you to log in before it "
			               "takes mail (it said: %s): check "
			               "smtp_user and its password, or use "
			               "auth = xoauth2 with oauth_token_cmd"),
			             h, port, reply);
		return;
	}
	if (code == 535 || (ec[0] == 5 && ec[1] == 7 && ec[2] == 8)) {
		res->outcome = FM_SMTP_DEFERRED;
		fm_error_set(err, FM_ERR_CREDENTIALS,
		             _("%s:%u rejected the credentials of %s (it "
		               "said: %s). Check smtp_user and the password; "
		               "if they are right, the provider may have "
		               "turned off password (basic) authentication: "
		               "use auth = xoauth2 with oauth_token_cmd"),
		             h, port, a->smtp_user, reply);
		return;
	}
	if (code >= 500 && (contains(m->response, "SendAsDenied") ||
	                    (ec[0] == 5 && ec[1] == 7 && ec[2] == 60) ||
	                    (stage == STAGE_MAIL &&
	                     (code == 550 || code == 553) && ec[1] == 7))) {
		fm_error_set(err, FM_ERR_PERMANENT,
		             _("%s will not send as this sender (it said: "
		               "%s): the From address must be the account's "
		               "own (%s) or one it may send as; change From "
		               "(or -f), or ask the provider for send-as "
		               "rights"),
		             h, reply, a->email);
		return;
	}
	if ((code == 552 && stage != STAGE_RCPT) || code == 523 ||
	    (ec[0] == 5 &&
	     ((ec[1] == 3 && ec[2] == 4) || (ec[1] == 2 && ec[2] == 3)))) {
		size_t limit = m->smtp_max_msg_size;
		char have[32], most[32];
		human_size(size, have, sizeof(have));
		res->outcome = FM_SMTP_FAILED;
		if (limit > 0)
			fm_error_set(
			    err, FM_ERR_PERMANENT,
			    _("the message (%s) is larger than %s accepts: "
			      "at most %s (SIZE %zu in its EHLO reply; it "
			      "said: %s); send big files another way, such as "
			      "a link to a file share"),
			    have, h, human_size(limit, most, sizeof(most)),
			    limit, reply);
		else
			fm_error_set(err, FM_ERR_PERMANENT,
			             _("the message (%s) is larger than %s "
			               "accepts (it said: %s; it announced no "
			               "SIZE limit); send big files another "
			               "way, such as a link to a file share"),
			             have, h, reply);
		return;
	}
	if (stage == STAGE_MAIL && code >= 500) {
		fm_error_set(err, FM_ERR_PERMANENT,
		             _("%s refused the sender address (it said: %s): "
		               "the envelope sender must be the account's own "
		               "address (%s) or one it may send as"),
		             h, reply, a->email);
		return;
	}
	if (code >= 500)
		fm_error_set(err, FM_ERR_PERMANENT,
		             _("%s refused the message (it said: %s)"), h,
		             reply);
	else
		fm_error_set(err, FM_ERR_TEMPORARY,
		             _("%s cannot take the message now (it said: %s); "
		               "it stays in the Outbox and is tried again "
		               "later"),
		             h, reply);
}

/* The link broke (or timed out) during a command. */
static void
broken(const struct fm_account *a, const char *what, bool possibly_sent,
       struct fm_smtp_result *res)
{
	res->outcome = possibly_sent ? FM_SMTP_UNKNOWN : FM_SMTP_DEFERRED;
	res->code = 0;
	res->reply[0] = '\0';
	if (possibly_sent)
		fm_error_set(&res->err, FM_ERR_TEMPORARY,
		             _("the connection to %s:%u broke or timed out "
		               "after the message was handed over, before "
		               "the server confirmed it: it may have been "
		               "sent. See 'fulmar send --queue'"),
		             a->smtp_host, a->smtp_port);
	else
		fm_error_set(&res->err, FM_ERR_TEMPORARY,
		             _("the connection to %s:%u broke or timed out "
		               "while %s; the message stays in the Outbox"),
		             a->smtp_host, a->smtp_port, what);
}

/* The bytes of data to hand to libetpan: without the final line break,
 * since libetpan ends the data with "\r\n.\r\n" itself. */
static size_t
transmit_length(const char *data, size_t len)
{
	if (len > 0 && data[len - 1] == '\n')
		len--;
	if (len > 0 && data[len - 1] == '\r')
		len--;
	return len;
}

/* Size on the wire (bare LFs become CRLF), for MAIL FROM's SIZE=. */
static size_t
wire_size(const char *data, size_t len)
{
	size_t n = len + 2;
	for (size_t i = 0; i < len; i++)
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			n++;
	return n;
}

int
fm_smtp_submit(struct fm_smtp *smtp, const struct fm_account *acct,
               const char *from, const char *const *rcpts, size_t n_rcpts,
               const char *data, size_t len,
               fm_smtp_before_data_fn *before_data, void *ctx,
               struct fm_smtp_result *res)
{
	memset(res, 0, sizeof(*res));
	fm_error_clear(&res->err);
	mailsmtp *m = fm_smtp_session(smtp);
	if (m == NULL || m->stream == NULL) {
		broken(acct, _("starting the next message"), false, res);
		return -1;
	}
	/* The envelope was checked when queued; a state file edited by
	 * hand must not inject commands all the same. */
	if (n_rcpts == 0) {
		res->outcome = FM_SMTP_FAILED;
		fm_error_set(&res->err, FM_ERR_USAGE,
		             _("the message has no recipients"));
		return 0;
	}
	if (fm_smtp_address_check(from, &res->err) < 0) {
		res->outcome = FM_SMTP_FAILED;
		return 0;
	}
	for (size_t i = 0; i < n_rcpts; i++)
		if (fm_smtp_address_check(rcpts[i], &res->err) < 0) {
			res->outcome = FM_SMTP_FAILED;
			return 0;
		}
	size_t tlen = transmit_length(data, len);
	size_t size = wire_size(data, tlen);

	int r = mailesmtp_mail_size(m, from, 0, NULL, size);
	if (r == MAILSMTP_ERROR_STREAM) {
		broken(acct, _("giving the sender (MAIL FROM)"), false, res);
		return -1;
	}
	if (r != MAILSMTP_NO_ERROR) {
		map_reply(acct, m, STAGE_MAIL, size, res);
		mailsmtp_reset(m);
		return 0;
	}
	res->rcpts = xcalloc(n_rcpts, sizeof(*res->rcpts));
	res->n_rcpts = n_rcpts;
	size_t refused = 0, refused_for_good = 0;
	for (size_t i = 0; i < n_rcpts; i++) {
		struct fm_smtp_rcpt *rc = &res->rcpts[i];
		rc->addr = xstrdup(rcpts[i]);
		r = mailesmtp_rcpt(m, rcpts[i], 0, NULL);
		if (r == MAILSMTP_ERROR_STREAM) {
			broken(acct, _("giving the recipients (RCPT TO)"),
			       false, res);
			return -1;
		}
		char reply[512];
		last_reply(m, reply, sizeof(reply));
		rc->code = m->response_code;
		rc->reply = xstrdup(reply);
		if (r != MAILSMTP_NO_ERROR) {
			refused++;
			if (rc->code >= 500)
				refused_for_good++;
		}
	}
	if (refused > 0) {
		/* Nobody gets it unless everybody can: sending to some and
		 * retrying the rest later would send twice to the first. */
		struct fm_buf who;
		fm_buf_init(&who, 1024);
		const char *first = NULL;
		int first_code = 0;
		for (size_t i = 0; i < n_rcpts; i++) {
			const struct fm_smtp_rcpt *rc = &res->rcpts[i];
			bool bad = refused_for_good ? rc->code >= 500
			                            : rc->code >= 400;
			if (!bad)
				continue;
			if (first == NULL) {
				first = rc->reply;
				first_code = rc->code;
			}
			fm_buf_printf(&who, "%s%s", who.len ? ", " : "",
			              rc->addr);
		}
		fm_strlcpy(res->reply, first, sizeof(res->reply));
		res->code = first_code;
		if (refused_for_good) {
			res->outcome = FM_SMTP_FAILED;
			fm_error_set(
			    &res->err, FM_ERR_PERMANENT,
			    ngettext("%s rejected the recipient %s "
			             "(it said: %s); nothing was sent: "
			             "fix or remove that address and "
			             "send again",
			             "%s rejected the recipients %s "
			             "(it said first: %s); nothing was "
			             "sent: fix or remove those "
			             "addresses and send again",
			             refused_for_good),
			    acct->smtp_host, who.data, first);
		} else {
			res->outcome = FM_SMTP_DEFERRED;
			fm_error_set(&res->err, FM_ERR_TEMPORARY,
			             _("%s cannot take mail for %s now (it "
			               "said: %s); the message stays in the "
			               "Outbox and is tried again later"),
			             acct->smtp_host, who.data, first);
		}
		fm_buf_free(&who);
		mailsmtp_reset(m);
		return 0;
	}
	if (before_data != NULL && before_data(ctx, &res->err) < 0) {
		res->outcome = FM_SMTP_DEFERRED;
		mailsmtp_reset(m);
		return -1;
	}
	r = mailsmtp_data(m);
	if (r == MAILSMTP_ERROR_STREAM) {
		/* No byte of the message went out: the server cannot have
		 * it. */
		broken(acct, _("starting the data (DATA)"), false, res);
		return -1;
	}
	if (r != MAILSMTP_NO_ERROR) {
		map_reply(acct, m, STAGE_DATA, size, res);
		mailsmtp_reset(m);
		return 0;
	}
	r = mailsmtp_data_message(m, data, tlen);
	if (r == MAILSMTP_ERROR_STREAM) {
		broken(acct, NULL, true, res);
		return -1;
	}
	if (r != MAILSMTP_NO_ERROR) {
		map_reply(acct, m, STAGE_END, size, res);
		return 0;
	}
	last_reply(m, res->reply, sizeof(res->reply));
	res->code = m->response_code;
	res->outcome = FM_SMTP_SENT;
	return 0;
}

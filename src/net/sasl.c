/* SPDX-License-Identifier: GPL-3.0-or-later */
/* SASL client mechanisms, the same for IMAP, POP3 and SMTP: PLAIN (RFC
 * 4616), LOGIN, XOAUTH2 (Google/Microsoft) and OAUTHBEARER (RFC 7628).
 * fulmar frames them itself instead of going through Cyrus SASL, so every
 * protocol gets every mechanism (POP3 XOAUTH2 included) and the mechanism
 * is exactly the one chosen. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "net/net.h"

struct fm_sasl {
	enum fm_auth_mech mech;
	char *user;
	char *secret;
	char *host;
	unsigned port;
	unsigned step; /* challenges answered so far */
	bool done;
};

static const char *const mech_names[] = {
    [FM_AUTH_AUTO] = "AUTO",
    [FM_AUTH_PLAIN] = "PLAIN",
    [FM_AUTH_LOGIN] = "LOGIN",
    [FM_AUTH_XOAUTH2] = "XOAUTH2",
    [FM_AUTH_OAUTHBEARER] = "OAUTHBEARER",
};

const char *
fm_sasl_mech_name(enum fm_auth_mech mech)
{
	return mech_names[mech];
}

char *
fm_base64_encode(const void *data, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

int
fm_base64_decode(const char *text, char **data_r, size_t *len_r)
{
	size_t n = strlen(text);
	if (n % 4 != 0)
		return -1;
	/* Padding: at most two '=', only at the very end. */
	size_t pad = 0;
	while (pad < 2 && pad < n && text[n - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < n - pad; i++) {
		char c = text[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		          (c >= '0' && c <= '9') || c == '+' || c == '/';
		if (!ok)
			return -1;
	}
	char *out = xmalloc(n / 4 * 3 + 1);
	int len = n > 0 ? EVP_DecodeBlock((unsigned char *)out,
	                                  (const unsigned char *)text, (int)n)
	                : 0;
	if (len < 0) {
		free(out);
		return -1;
	}
	/* EVP_DecodeBlock counts padding as data. */
	len -= (int)pad;
	out[len] = '\0';
	*data_r = out;
	*len_r = (size_t)len;
	return 0;
}

struct fm_sasl *
fm_sasl_new(enum fm_auth_mech mech, const char *user, const char *secret,
            const char *host, unsigned port)
{
	struct fm_sasl *s = xcalloc(1, sizeof(*s));
	s->mech = mech;
	s->user = xstrdup(user);
	s->secret = xstrdup(secret);
	s->host = xstrdup(host);
	s->port = port;
	return s;
}

void
fm_sasl_free(struct fm_sasl **sasl)
{
	struct fm_sasl *s = *sasl;
	if (s == NULL)
		return;
	fm_free_secret(&s->user);
	fm_free_secret(&s->secret);
	free(s->host);
	free(s);
	*sasl = NULL;
}

/* Encodes a message that holds the secret, wiping the clear copy. */
static char *
encode_secret(char *clear, size_t len)
{
	char *b64 = fm_base64_encode(clear, len);
	fm_wipe(clear, len);
	free(clear);
	return b64;
}

static char *
initial_message(const struct fm_sasl *s)
{
	size_t ul = strlen(s->user), pl = strlen(s->secret);
	switch (s->mech) {
	case FM_AUTH_PLAIN: {
		/* authzid NUL authcid NUL passwd, authzid empty. */
		size_t len = 1 + ul + 1 + pl;
		char *m = xmalloc(len);
		m[0] = '\0';
		memcpy(m + 1, s->user, ul);
		m[1 + ul] = '\0';
		memcpy(m + 2 + ul, s->secret, pl);
		return encode_secret(m, len);
	}
	case FM_AUTH_XOAUTH2: {
		char *m = xasprintf("user=%s\001auth=Bearer %s\001\001",
		                    s->user, s->secret);
		return encode_secret(m, strlen(m));
	}
	case FM_AUTH_OAUTHBEARER: {
		char *m = xasprintf("n,a=%s,\001host=%s\001port=%u\001"
		                    "auth=Bearer %s\001\001",
		                    s->user, s->host, s->port, s->secret);
		return encode_secret(m, strlen(m));
	}
	case FM_AUTH_LOGIN:
	case FM_AUTH_AUTO:
		break;
	}
	return NULL;
}

char *
fm_sasl_initial_response(struct fm_sasl *s)
{
	return initial_message(s);
}

int
fm_sasl_step(struct fm_sasl *s, const char *challenge, char **response_r,
             char **server_error_r)
{
	*response_r = NULL;
	if (server_error_r != NULL)
		*server_error_r = NULL;
	if (s->done)
		return -1;
	char *decoded = NULL;
	size_t dlen = 0;
	if (fm_base64_decode(challenge, &decoded, &dlen) < 0)
		return -1;
	int ret = 0;
	switch (s->mech) {
	case FM_AUTH_LOGIN:
		/* "Username:" then "Password:"; servers word them
		 * differently, so go by order. */
		if (s->step == 0)
			*response_r =
			    fm_base64_encode(s->user, strlen(s->user));
		else if (s->step == 1)
			*response_r =
			    fm_base64_encode(s->secret, strlen(s->secret));
		else
			ret = -1;
		if (s->step == 1)
			s->done = true;
		break;
	case FM_AUTH_PLAIN:
		/* An empty challenge asks for the initial response (the
		 * two-step form); anything else is out of protocol. */
		if (s->step == 0 && dlen == 0)
			*response_r = initial_message(s);
		else
			ret = -1;
		break;
	case FM_AUTH_XOAUTH2:
	case FM_AUTH_OAUTHBEARER:
		if (s->step == 0 && dlen == 0) {
			/* Two-step form (Office 365's POP3): the server
			 * asks for the initial response. */
			*response_r = initial_message(s);
		} else {
			/* A JSON error report: answer with an empty line
			 * (XOAUTH2) or ^A (OAUTHBEARER) so the server
			 * ends with its failure reply. */
			if (server_error_r != NULL)
				*server_error_r = xstrndup(decoded, dlen);
			*response_r = s->mech == FM_AUTH_XOAUTH2
			                  ? xstrdup("")
			                  : fm_base64_encode("\001", 1);
			s->done = true;
		}
		break;
	case FM_AUTH_AUTO:
		ret = -1;
		break;
	}
	s->step++;
	free(decoded);
	return ret;
}

int
fm_sasl_choose(enum fm_auth_mech configured, const char *const *offered,
               size_t n_offered, enum fm_auth_mech *mech_r,
               struct fm_error *err)
{
	static const enum fm_auth_mech order[] = {FM_AUTH_PLAIN, FM_AUTH_LOGIN};
	bool have[FM_ARRAY_LEN(mech_names)] = {false};
	for (size_t i = 0; i < n_offered; i++)
		for (size_t m = 1; m < FM_ARRAY_LEN(mech_names); m++)
			if (fm_str_ieq(offered[i], mech_names[m]))
				have[m] = true;
	if (configured != FM_AUTH_AUTO) {
		if (have[configured]) {
			*mech_r = configured;
			return 0;
		}
	} else {
		for (size_t i = 0; i < FM_ARRAY_LEN(order); i++) {
			if (have[order[i]]) {
				*mech_r = order[i];
				return 0;
			}
		}
	}
	struct fm_buf list;
	fm_buf_init(&list, 512);
	for (size_t i = 0; i < n_offered; i++)
		fm_buf_printf(&list, "%s%s", i ? " " : "", offered[i]);
	if (configured != FM_AUTH_AUTO)
		fm_error_set(err, FM_ERR_CONFIG,
		             _("the server does not offer auth = %s (it "
		               "offers: %s)"),
		             mech_names[configured],
		             list.len ? list.data : _("nothing"));
	else
		fm_error_set(err, FM_ERR_CONFIG,
		             _("the server offers no password mechanism "
		               "fulmar knows (it offers: %s); if it wants "
		               "OAuth, set auth = xoauth2 or oauthbearer "
		               "and oauth_token_cmd"),
		             list.len ? list.data : _("nothing"));
	fm_buf_free(&list);
	return -1;
}

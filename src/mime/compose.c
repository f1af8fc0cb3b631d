/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Building messages to send: header fields encoded and folded, the text as
 * 7bit, quoted-printable or base64, attachments in a multipart/mixed.
 *
 * The encoders are our own rather than libetpan's writers: in 1.9.4
 * mailmime_quoted_printable_write_mem() doubles the white space at the end
 * of a line ("a \n" decodes as "a  \n"), its writers produce CRLF where
 * the maildir wants LF, and they allocate in ways that can fail.
 *
 * Every line written is bounded by construction: a header line holds its
 * field name (at most 76 bytes) and tokens that are each at most ~900
 * bytes, folded before a token that would pass 78 columns; body lines are
 * at most 998 (7bit) or 76 (quoted-printable, base64).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "mime/mime.h"

/* Header lines are folded before this column when they can be. */
#define LINE_SOFT 78
/* The hard limit of RFC 5322 section 2.1.1, without the line end. */
#define LINE_MAX_OCTETS 998
/* "=?UTF-8?Q?" + payload + "?=" stays within RFC 2047's 75 characters. */
#define EW_PAYLOAD_Q 63
#define EW_PAYLOAD_B_BYTES 45 /* 60 characters of base64 */
/* A plain word (or quoted name) longer than this is encoded instead, so
 * that its line stays under LINE_MAX_OCTETS. */
#define PLAIN_MAX 800
/* Message ids, extra field names, file names, content types. */
#define ID_MAX 900
#define FIELD_NAME_MAX 76
#define NAME_BYTES_MAX 1000
#define TYPE_MAX 200
/* Characters of a percent-encoded RFC 2231 section, and of the ASCII
 * fallback file name. */
#define PARAM_CHUNK 60
#define BOUNDARY_RANDOM 24

#define BUF_MAX (SIZE_MAX / 4)

/* ------------------------------------------------------------------------
 * Small helpers.
 */

static bool
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static bool
is_atext(unsigned char c)
{
	return is_alnum(c) ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* A MIME token character (RFC 2045 section 5.1). */
static bool
is_token(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* The byte length of the UTF-8 character starting with c (valid input). */
static size_t
utf8_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c >= 0xf0)
		return 4;
	if (c >= 0xe0)
		return 3;
	return 2;
}

static int
random_bytes(void *buf, size_t n, struct fm_error *err)
{
	unsigned char *p = buf;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return fm_error_errno(err, FM_ERR_LOCAL, errno,
			                      _("no random bytes for the "
			                        "message"));
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* n random letters and digits into out (n + 1 bytes). */
static int
random_text(char *out, size_t n, struct fm_error *err)
{
	static const char ALNUM[] = "0123456789abcdefghijklmnopqrstuvwxyz"
	                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
	unsigned char r[64];
	if (n > sizeof(r) || random_bytes(r, n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		out[i] = ALNUM[r[i] % (sizeof(ALNUM) - 1)];
	out[n] = '\0';
	return 0;
}

/* One-line text the user gave for a header field (or a name): valid UTF-8
 * without control characters; tabs and line breaks count as spaces. */
static int
check_text(const char *s, const char *what, struct fm_error *err)
{
	size_t len = strlen(s);
	if (!fm_mime_utf8_valid(s, len))
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("the %s is not valid UTF-8"), what);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') ||
		    c == 0x7f)
			return fm_error_set(err, FM_ERR_USAGE,
			                    _("the %s contains a control "
			                      "character"),
			                    what);
	}
	return 0;
}

/* s with every run of white space (tabs and line breaks too) as one
 * space, trimmed. */
static char *
squeeze(const char *s)
{
	size_t len = strlen(s);
	char *out = xmalloc(len + 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			if (o > 0 && out[o - 1] != ' ')
				out[o++] = ' ';
		} else {
			out[o++] = c;
		}
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	return out;
}

static bool
blank(const char *s)
{
	if (s == NULL)
		return true;
	for (; *s != '\0'; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
			return false;
	return true;
}

/* ------------------------------------------------------------------------
 * Header fields: tokens, folding, encoded words.
 */

struct hdr {
	struct fm_buf *b;
	size_t col;
	bool fresh; /* nothing on this line yet but the name or the fold */
};

static void
hdr_begin(struct hdr *h, struct fm_buf *b, const char *name)
{
	h->b = b;
	fm_buf_printf(b, "%s:", name);
	h->col = strlen(name) + 1;
	h->fresh = true;
}

/* Appends a token. space: white space separates it from what precedes
 * (the line may be folded there); else it is glued on (",", ";"). */
static void
hdr_token(struct hdr *h, const char *s, size_t n, bool space)
{
	if (space) {
		if (!h->fresh && h->col + 1 + n > LINE_SOFT) {
			fm_buf_append_str(h->b, "\n ");
			h->col = 1;
		} else {
			fm_buf_append_char(h->b, ' ');
			h->col++;
		}
	}
	fm_buf_append(h->b, s, n);
	h->col += n;
	h->fresh = false;
}

static void
hdr_str(struct hdr *h, const char *s, bool space)
{
	hdr_token(h, s, strlen(s), space);
}

static void
hdr_end(struct hdr *h)
{
	fm_buf_append_char(h->b, '\n');
}

/* Q encoding's characters that stand for themselves, in any header
 * context, phrases included (RFC 2047 section 5, rule 3). */
static bool
q_literal(unsigned char c)
{
	return is_alnum(c) || (c != '\0' && strchr("!*+-/", c) != NULL);
}

/* The length of character c in Q encoding. */
static size_t
q_cost(unsigned char c)
{
	return q_literal(c) || c == ' ' ? 1 : 3;
}

/* The UTF-8 text s (n bytes) as encoded words, each a token of at most 75
 * characters holding whole characters only, in Q, or B when that is much
 * shorter;
 * the space between two encoded words is not part of the text, so spaces
 * inside s are encoded too. */
static void
encoded_words(struct hdr *h, const char *s, size_t n, bool space)
{
	static const char HEX[] = "0123456789ABCDEF";
	static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
	                          "opqrstuvwxyz0123456789+/";
	size_t qlen = 0;
	for (size_t i = 0; i < n; i++)
		qlen += q_cost((unsigned char)s[i]);
	/* Q keeps mostly-ASCII text legible: B only when a quarter shorter. */
	bool use_b = (n + 2) / 3 * 4 * 4 < qlen * 3;
	size_t limit = use_b ? EW_PAYLOAD_B_BYTES : EW_PAYLOAD_Q;
	size_t i = 0;
	bool first = true;
	while (i < n) {
		char w[80];
		size_t o = (size_t)snprintf(w, sizeof(w), "=?UTF-8?%c?",
		                            use_b ? 'B' : 'Q');
		/* As many whole characters as fit. */
		size_t start = i, used = 0;
		while (i < n) {
			size_t cl = utf8_len((unsigned char)s[i]);
			if (cl > n - i)
				cl = n - i;
			size_t cost = use_b ? cl : 0;
			for (size_t k = 0; k < cl && !use_b; k++)
				cost += q_cost((unsigned char)s[i + k]);
			if (i > start && used + cost > limit)
				break;
			for (size_t k = 0; k < cl && !use_b; k++) {
				unsigned char c = (unsigned char)s[i + k];
				if (c == ' ') {
					w[o++] = '_';
				} else if (q_literal(c)) {
					w[o++] = (char)c;
				} else {
					w[o++] = '=';
					w[o++] = HEX[c >> 4];
					w[o++] = HEX[c & 15];
				}
			}
			used += cost;
			i += cl;
		}
		const unsigned char *p = (const unsigned char *)s + start;
		size_t len = use_b ? i - start : 0;
		for (size_t k = 0; k < len; k += 3) {
			unsigned v = (unsigned)p[k] << 16;
			if (k + 1 < len)
				v |= (unsigned)p[k + 1] << 8;
			if (k + 2 < len)
				v |= p[k + 2];
			w[o++] = B64[v >> 18 & 63];
			w[o++] = B64[v >> 12 & 63];
			w[o++] = k + 1 < len ? B64[v >> 6 & 63] : '=';
			w[o++] = k + 2 < len ? B64[v & 63] : '=';
		}
		w[o++] = '?';
		w[o++] = '=';
		hdr_token(h, w, o, first ? space : true);
		first = false;
	}
}

/* A word that can go into a header as it is. */
static bool
word_plain(const char *w, size_t n)
{
	if (n > PLAIN_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)w[i];
		if (c <= 0x20 || c >= 0x7f)
			return false;
		if (c == '=' && i + 1 < n && w[i + 1] == '?')
			return false; /* would read as an encoded word */
	}
	return true;
}

/* Unstructured text (Subject, extra fields): plain words as they are,
 * each run of words that need it as encoded words. text is checked. */
static void
unstructured(struct hdr *h, const char *text)
{
	char *s = squeeze(text);
	size_t len = strlen(s);
	size_t i = 0;
	while (i < len) {
		size_t e = i;
		while (e < len && s[e] != ' ')
			e++;
		if (word_plain(s + i, e - i)) {
			hdr_token(h, s + i, e - i, true);
			i = e + (e < len);
			continue;
		}
		/* The run of words that need encoding, with the spaces
		 * between them. */
		size_t run_end = e;
		while (run_end < len) {
			size_t ws = run_end + 1, we = ws;
			while (we < len && s[we] != ' ')
				we++;
			if (word_plain(s + ws, we - ws))
				break;
			run_end = we;
		}
		encoded_words(h, s + i, run_end - i, true);
		i = run_end + (run_end < len);
	}
	free(s);
}

/* A display name (a phrase): atoms as they are, else one quoted string,
 * else (non-ASCII, or too long) encoded words. name is checked. */
static void
phrase_out(struct hdr *h, const char *name)
{
	char *s = squeeze(name);
	size_t len = strlen(s);
	bool ascii = len <= PLAIN_MAX, atoms = true;
	for (size_t i = 0; i < len && ascii; i++) {
		unsigned char c = (unsigned char)s[i];
		ascii = c >= 0x20 && c < 0x7f &&
		        !(c == '=' && i + 1 < len && s[i + 1] == '?');
		atoms &= c == ' ' || is_atext(c);
	}
	if (!ascii) {
		encoded_words(h, s, len, true);
	} else if (atoms) {
		for (size_t i = 0; i < len;) {
			size_t e = i;
			while (e < len && s[e] != ' ')
				e++;
			hdr_token(h, s + i, e - i, true);
			i = e + 1;
		}
	} else {
		struct fm_buf q;
		fm_buf_init(&q, BUF_MAX);
		fm_buf_append_char(&q, '"');
		for (size_t i = 0; i < len; i++) {
			if (s[i] == '"' || s[i] == '\\')
				fm_buf_append_char(&q, '\\');
			fm_buf_append_char(&q, s[i]);
		}
		fm_buf_append_char(&q, '"');
		hdr_token(h, q.data, q.len, true);
		fm_buf_free(&q);
	}
	free(s);
}

static void
mailbox_out(struct hdr *h, const char *name, const char *addr)
{
	if (name == NULL || blank(name)) {
		hdr_str(h, addr, true);
		return;
	}
	phrase_out(h, name);
	char *a = xasprintf("<%s>", addr);
	hdr_str(h, a, true);
	free(a);
}

/* An address field from a parsed list; groups are written back as
 * groups. Writes nothing for an empty list. */
static void
address_list_out(struct fm_buf *out, const char *field,
                 const struct fm_mime_addresses *l)
{
	if (l->n == 0)
		return;
	struct hdr h;
	hdr_begin(&h, out, field);
	const char *open = NULL;
	for (size_t i = 0; i < l->n; i++) {
		const struct fm_mime_address *a = &l->items[i];
		if (open != NULL &&
		    (a->group == NULL || strcmp(open, a->group) != 0)) {
			hdr_str(&h, ";", false);
			open = NULL;
		}
		if (i > 0)
			hdr_str(&h, ",", false);
		if (a->group != NULL && open == NULL) {
			phrase_out(&h, a->group);
			hdr_str(&h, ":", false);
			open = a->group;
		}
		mailbox_out(&h, a->name, a->addr);
	}
	if (open != NULL)
		hdr_str(&h, ";", false);
	hdr_end(&h);
}

static int
address_field(struct fm_buf *out, const char *field, const char *value,
              struct fm_error *err)
{
	if (blank(value))
		return 0;
	struct fm_mime_addresses l;
	struct fm_error sub = {0};
	if (fm_mime_addresses_parse(value, &l, &sub) < 0)
		return fm_error_set(err, sub.cls, _("%s: %s"), field, sub.user);
	address_list_out(out, field, &l);
	fm_mime_addresses_free(&l);
	return 0;
}

/* ------------------------------------------------------------------------
 * Fields with message ids, and the date.
 */

/* An id as RFC 5322 has it, left "@" right, in printable ASCII without
 * angle brackets. */
static bool
id_ok(const char *s, size_t n)
{
	const char *at = memchr(s, '@', n);
	if (n == 0 || n > ID_MAX || at == NULL || at == s || at == s + n - 1)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>')
			return false;
	}
	return true;
}

/* The ids in value (with or without angle brackets, separated by white
 * space or commas) as "<id>" tokens of field. Fails for anything that is
 * not an id. With one set, exactly one id is allowed. */
static int
ids_field(struct fm_buf *out, const char *field, const char *value, bool one,
          struct fm_error *err)
{
	struct fm_buf ids;
	fm_buf_init(&ids, BUF_MAX);
	size_t count = 0;
	const char *p = value;
	int r = 0;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' ||
		       *p == ',')
			p++;
		if (*p == '\0')
			break;
		const char *s = p, *e;
		if (*p == '<') {
			e = strchr(p, '>');
			s = p + 1;
			if (e == NULL) { /* an unclosed '<': not an id */
				s = p;
				e = p + strlen(p);
				p = e;
			} else {
				p = e + 1;
			}
		} else {
			e = p;
			while (*e != '\0' && *e != ' ' && *e != '\t' &&
			       *e != '\r' && *e != '\n' && *e != ',')
				e++;
			p = e;
		}
		if (!id_ok(s, (size_t)(e - s)) || (one && count > 0)) {
			char shown[80];
			char *raw = xstrndup(s, (size_t)(e - s));
			fm_str_printable(raw, shown, sizeof(shown));
			free(raw);
			r = fm_error_set(
			    err, FM_ERR_USAGE,
			    one && count > 0
			        ? _("%s: only one message id is "
			            "allowed")
			        : _("%s: '%s' is not a message id"),
			    field, shown);
			break;
		}
		fm_buf_printf(&ids, "%s<%.*s>", count > 0 ? " " : "",
		              (int)(e - s), s);
		count++;
	}
	if (r == 0 && count > 0) {
		struct hdr h;
		hdr_begin(&h, out, field);
		for (char *t = ids.data; *t != '\0';) {
			char *sp = strchr(t, ' ');
			size_t n = sp != NULL ? (size_t)(sp - t) : strlen(t);
			hdr_token(&h, t, n, true);
			t += n + (sp != NULL);
		}
		hdr_end(&h);
	} else if (r == 0 && one) {
		r = fm_error_set(err, FM_ERR_USAGE,
		                 _("%s: there is no message id"), field);
	}
	fm_buf_free(&ids);
	return r;
}

static int
date_field(struct fm_buf *out, const struct fm_compose *c, time_t *t_r,
           struct fm_error *err)
{
	static const char *const DAYS[] = {"Sun", "Mon", "Tue", "Wed",
	                                   "Thu", "Fri", "Sat"};
	static const char *const MONTHS[] = {"Jan", "Feb", "Mar", "Apr",
	                                     "May", "Jun", "Jul", "Aug",
	                                     "Sep", "Oct", "Nov", "Dec"};
	time_t t = c->date;
	long off = c->utc_offset;
	struct tm tm;
	if (t == 0) {
		t = time(NULL);
		if (localtime_r(&t, &tm) == NULL)
			return fm_error_set(err, FM_ERR_LOCAL,
			                    _("the current time is not known"));
		off = tm.tm_gmtoff;
	}
	if (off <= -86400 || off >= 86400)
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("the time zone offset %ld s is not "
		                      "valid"),
		                    off);
	time_t local = t + off;
	if (gmtime_r(&local, &tm) == NULL || tm.tm_year < 0 ||
	    tm.tm_year > 9999 - 1900)
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("the date is out of range"));
	long a = off < 0 ? -off : off;
	fm_buf_printf(out, "Date: %s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld\n",
	              DAYS[tm.tm_wday], tm.tm_mday, MONTHS[tm.tm_mon],
	              tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
	              off < 0 ? '-' : '+', a / 3600, a % 3600 / 60);
	*t_r = t;
	return 0;
}

char *
fm_mime_reply_references(const struct fm_envelope *parent)
{
	const char *ids[FM_MIME_REFERENCES_MAX + 2];
	size_t n = 0;
	if (parent->references_count > 0) {
		for (size_t i = 0;
		     i < parent->references_count && i < FM_MIME_REFERENCES_MAX;
		     i++)
			ids[n++] = parent->references[i];
	} else if (parent->in_reply_to != NULL) {
		ids[n++] = parent->in_reply_to;
	}
	if (parent->message_id != NULL)
		ids[n++] = parent->message_id;
	/* Without ids we could not write again, and without repeats. */
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		bool keep = id_ok(ids[i], strlen(ids[i]));
		for (size_t j = 0; j < k && keep; j++)
			keep = strcmp(ids[j], ids[i]) != 0;
		if (keep)
			ids[k++] = ids[i];
	}
	if (k == 0)
		return NULL;
	/* The first id roots the thread; the newest ones place the reply. */
	size_t from = k > FM_COMPOSE_REFERENCES_MAX
	                  ? k - (FM_COMPOSE_REFERENCES_MAX - 1)
	                  : 1;
	struct fm_buf b;
	fm_buf_init(&b, BUF_MAX);
	fm_buf_printf(&b, "<%s>", ids[0]);
	for (size_t i = from; i < k; i++)
		fm_buf_printf(&b, " <%s>", ids[i]);
	return fm_buf_steal(&b);
}

/* ------------------------------------------------------------------------
 * Body encodings.
 */

/* Quoted-printable (RFC 2045 section 6.7) of text with LF line ends:
 * lines of at most 76 characters, white space before a line end and the
 * "From " of mbox encoded. */
static void
qp_encode(struct fm_buf *out, const char *s, size_t n)
{
	static const char HEX[] = "0123456789ABCDEF";
	size_t col = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n') {
			fm_buf_append_char(out, '\n');
			col = 0;
			continue;
		}
		bool at_end = i + 1 == n || s[i + 1] == '\n';
		bool lit = (c >= 33 && c <= 126 && c != '=') ||
		           ((c == ' ' || c == '\t') && !at_end);
		size_t w = lit ? 1 : 3;
		/* A soft line break: 75 characters and '='. */
		if (col + w > 75) {
			fm_buf_append_str(out, "=\n");
			col = 0;
		}
		if (lit && c == 'F' && col == 0 && n - i >= 5 &&
		    memcmp(s + i, "From ", 5) == 0) {
			lit = false;
			w = 3;
		}
		if (lit) {
			fm_buf_append_char(out, (char)c);
		} else {
			char e[3] = {'=', HEX[c >> 4], HEX[c & 15]};
			fm_buf_append(out, e, 3);
		}
		col += w;
	}
}

/* Base64 in lines of 76 characters, each ending in LF. */
static void
base64_encode(struct fm_buf *out, const unsigned char *p, size_t n)
{
	static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
	                          "opqrstuvwxyz0123456789+/";
	char line[80];
	for (size_t i = 0; i < n; i += 57) {
		size_t len = n - i < 57 ? n - i : 57, o = 0;
		for (size_t k = 0; k < len; k += 3) {
			unsigned v = (unsigned)p[i + k] << 16;
			if (k + 1 < len)
				v |= (unsigned)p[i + k + 1] << 8;
			if (k + 2 < len)
				v |= p[i + k + 2];
			line[o++] = B64[v >> 18 & 63];
			line[o++] = B64[v >> 12 & 63];
			line[o++] = k + 1 < len ? B64[v >> 6 & 63] : '=';
			line[o++] = k + 2 < len ? B64[v & 63] : '=';
		}
		line[o++] = '\n';
		fm_buf_append(out, line, o);
	}
}

/* The text part: its Content-Type and Content-Transfer-Encoding lines in
 * head, its encoded body in content. */
static int
text_part(const char *body, struct fm_buf *head, struct fm_buf *content,
          struct fm_error *err)
{
	const char *s = body != NULL ? body : "";
	size_t len = strlen(s);
	if (!fm_mime_utf8_valid(s, len))
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("the text is not valid UTF-8"));
	/* Line ends to LF, and a last one. */
	struct fm_buf t;
	fm_buf_init(&t, BUF_MAX);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\r') {
			if (i + 1 < len && s[i + 1] == '\n')
				continue;
			fm_buf_append_char(&t, '\n');
		} else {
			fm_buf_append_char(&t, s[i]);
		}
	}
	if (t.len > 0 && t.data[t.len - 1] != '\n')
		fm_buf_append_char(&t, '\n');
	bool ascii = true, seven = true;
	size_t line = 0;
	for (size_t i = 0; i < t.len; i++) {
		unsigned char c = (unsigned char)t.data[i];
		if (c == '\n') {
			line = 0;
			continue;
		}
		if (++line > LINE_MAX_OCTETS)
			seven = false;
		if (c >= 0x80)
			ascii = seven = false;
		else if ((c < 0x20 && c != '\t' && c != '\f') || c == 0x7f)
			seven = false;
	}
	const char *cte;
	if (seven) {
		fm_buf_append(content, t.data, t.len);
		cte = "7bit";
	} else {
		struct fm_buf qp;
		fm_buf_init(&qp, BUF_MAX);
		qp_encode(&qp, t.data, t.len);
		size_t b64 = (t.len + 2) / 3 * 4 + (t.len + 56) / 57;
		/* Quoted-printable keeps mostly-ASCII text legible: base64
		 * only when it is a quarter shorter. */
		if (b64 * 4 < qp.len * 3) {
			base64_encode(content, (unsigned char *)t.data, t.len);
			cte = "base64";
		} else {
			fm_buf_append(content, qp.data, qp.len);
			cte = "quoted-printable";
		}
		fm_buf_free(&qp);
	}
	fm_buf_printf(head,
	              "Content-Type: text/plain; charset=%s\n"
	              "Content-Transfer-Encoding: %s\n",
	              ascii ? "us-ascii" : "utf-8", cte);
	fm_buf_free(&t);
	return 0;
}

/* ------------------------------------------------------------------------
 * Attachments.
 */

static int
read_file(const char *path, struct fm_buf *out, struct fm_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fm_error_errno(
		    err, errno == ENOENT ? FM_ERR_USAGE : FM_ERR_LOCAL, errno,
		    _("cannot attach %s"), path);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return fm_error_errno(err, FM_ERR_LOCAL, e,
		                      _("cannot attach %s"), path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("cannot attach %s: not a regular file"),
		                    path);
	}
	fm_buf_init(out, FM_COMPOSE_ATTACHMENT_MAX);
	char tmp[65536];
	for (;;) {
		ssize_t r = read(fd, tmp, sizeof(tmp));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			fm_buf_free(out);
			return fm_error_errno(err, FM_ERR_LOCAL, e,
			                      _("cannot read %s"), path);
		}
		if (r == 0)
			break;
		if (fm_buf_append(out, tmp, (size_t)r) < 0) {
			close(fd);
			fm_buf_free(out);
			return fm_error_set(err, FM_ERR_USAGE,
			                    _("cannot attach %s: it is larger "
			                      "than %d MiB"),
			                    path,
			                    FM_COMPOSE_ATTACHMENT_MAX >> 20);
		}
	}
	close(fd);
	return 0;
}

/* "type/subtype" in MIME tokens, optionally followed by parameters in
 * printable ASCII. */
static bool
type_ok(const char *t)
{
	size_t len = strlen(t), i = 0;
	if (len == 0 || len > TYPE_MAX)
		return false;
	while (i < len && is_token((unsigned char)t[i]))
		i++;
	if (i == 0 || i >= len || t[i] != '/')
		return false;
	size_t sub = ++i;
	while (i < len && is_token((unsigned char)t[i]))
		i++;
	if (i == sub)
		return false;
	if (i < len && t[i] != ';' && t[i] != ' ')
		return false;
	for (; i < len; i++)
		if ((unsigned char)t[i] < 0x20 || (unsigned char)t[i] >= 0x7f)
			return false;
	return true;
}

/* The content type of data by libmagic, with the charset for text; the
 * magic handle is opened on first use and kept in *m. */
static char *
guess_type(magic_t *m, const char *data, size_t len)
{
	static const char FALLBACK[] = "application/octet-stream";
	if (len == 0)
		return xstrdup(FALLBACK);
	if (*m == NULL) {
		*m = magic_open(MAGIC_MIME_TYPE);
		if (*m != NULL && magic_load(*m, NULL) != 0) {
			magic_close(*m);
			*m = NULL;
		}
		if (*m == NULL)
			return xstrdup(FALLBACK);
	}
	magic_setflags(*m, MAGIC_MIME_TYPE);
	const char *t = magic_buffer(*m, data, len);
	if (t == NULL || !type_ok(t) || strchr(t, ';') != NULL ||
	    strcmp(t, "application/x-empty") == 0)
		return xstrdup(FALLBACK);
	char *type = xstrdup(t);
	if (strncmp(type, "text/", 5) != 0)
		return type;
	magic_setflags(*m, MAGIC_MIME_ENCODING);
	const char *cs = magic_buffer(*m, data, len);
	if (cs == NULL || strcmp(cs, "binary") == 0 ||
	    strcmp(cs, "unknown-8bit") == 0 || strlen(cs) > 40)
		return type;
	for (const char *p = cs; *p != '\0'; p++)
		if (!is_token((unsigned char)*p))
			return type;
	char *with = xasprintf("%s; charset=%s", type, cs);
	free(type);
	return with;
}

/* RFC 2231 attribute characters, which need no percent-encoding. */
static bool
attr_char(unsigned char c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$&+-.^_`|~", c) != NULL);
}

/* An ASCII stand-in for name, for readers without RFC 2231: non-ASCII
 * characters, quotes and backslashes as '_', cut to PARAM_CHUNK bytes with
 * the extension kept. */
static char *
fallback_name(const char *name)
{
	struct fm_buf b;
	fm_buf_init(&b, BUF_MAX);
	for (size_t i = 0; name[i] != '\0';) {
		unsigned char c = (unsigned char)name[i];
		size_t cl = utf8_len(c);
		fm_buf_append_char(
		    &b, c < 0x80 && c != '"' && c != '\\' ? (char)c : '_');
		i += cl;
	}
	if (b.len > PARAM_CHUNK) {
		const char *dot = strrchr(b.data, '.');
		size_t ext = dot != NULL ? strlen(dot) : 0;
		if (ext > 10)
			ext = 0;
		memmove(b.data + PARAM_CHUNK - ext, b.data + b.len - ext, ext);
		b.len = PARAM_CHUNK;
		b.data[b.len] = '\0';
	}
	return fm_buf_steal(&b);
}

/* The file name parameters: name="..." for ASCII names that need nothing
 * else, else the ASCII fallback and the RFC 2231 form, in sections of at
 * most PARAM_CHUNK characters that never split a character. */
static void
filename_params(struct hdr *h, const char *name)
{
	size_t len = strlen(name);
	bool simple = len <= PARAM_CHUNK;
	for (size_t i = 0; i < len && simple; i++) {
		unsigned char c = (unsigned char)name[i];
		simple = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
	}
	char *fb = fallback_name(name);
	char *tok = xasprintf("filename=\"%s\"%s", fb, simple ? "" : ";");
	hdr_str(h, tok, true);
	free(tok);
	free(fb);
	if (simple)
		return;
	/* Percent-encoded, in sections that split no character. */
	size_t total = 0;
	for (size_t i = 0; i < len; i++)
		total += attr_char((unsigned char)name[i]) ? 1 : 3;
	bool one = total <= PARAM_CHUNK;
	struct fm_buf sec;
	fm_buf_init(&sec, BUF_MAX);
	size_t k = 0;
	for (size_t i = 0; i <= len;) {
		char enc[16];
		size_t o = 0, cl = 0;
		if (i < len) {
			cl = utf8_len((unsigned char)name[i]);
			for (size_t j = 0; j < cl && i + j < len; j++) {
				unsigned char c = (unsigned char)name[i + j];
				if (attr_char(c))
					enc[o++] = (char)c;
				else
					o += (size_t)snprintf(enc + o,
					                      sizeof(enc) - o,
					                      "%%%02X", c);
			}
		}
		if (i == len || (!one && sec.len + o > PARAM_CHUNK)) {
			char *p;
			if (one) {
				p = xasprintf("filename*=UTF-8''%s", sec.data);
			} else {
				if (k > 0)
					hdr_str(h, ";", false);
				p = xasprintf("filename*%zu*=%s%s", k,
				              k == 0 ? "UTF-8''" : "",
				              sec.data);
			}
			hdr_str(h, p, true);
			free(p);
			fm_buf_reset(&sec);
			k++;
			if (i == len)
				break;
		}
		fm_buf_append(&sec, enc, o);
		i += cl;
	}
	fm_buf_free(&sec);
}

/* One attachment as a MIME part (header and base64 body) in out. */
static int
attachment_part(const struct fm_compose_attachment *a, magic_t *m,
                struct fm_buf *out, struct fm_error *err)
{
	if (a->path == NULL || a->path[0] == '\0')
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("an attachment has no file"));
	const char *name = a->filename;
	if (name == NULL) {
		const char *slash = strrchr(a->path, '/');
		name = slash != NULL ? slash + 1 : a->path;
	}
	if (blank(name))
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("the attachment %s has no file name"),
		                    a->path);
	if (check_text(name, _("attachment's file name"), err) < 0)
		return -1;
	if (strlen(name) > NAME_BYTES_MAX)
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("the attachment's file name is longer "
		                      "than %d bytes"),
		                    NAME_BYTES_MAX);
	if (a->content_type != NULL && !type_ok(a->content_type))
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("'%s' is not a content type"),
		                    a->content_type);
	struct fm_buf data;
	if (read_file(a->path, &data, err) < 0)
		return -1;
	/* Tabs and line breaks (check_text() let them through) as spaces. */
	char *clean = xstrdup(name);
	for (char *q = clean; *q != '\0'; q++)
		if (*q == '\t' || *q == '\r' || *q == '\n')
			*q = ' ';
	char *type = a->content_type != NULL
	                 ? xstrdup(a->content_type)
	                 : guess_type(m, data.data, data.len);
	struct hdr h;
	hdr_begin(&h, out, "Content-Type");
	char *t = xasprintf("%s;", type);
	hdr_str(&h, t, true);
	free(t);
	char *fb = fallback_name(clean);
	t = xasprintf("name=\"%s\"", fb);
	hdr_str(&h, t, true);
	free(t);
	free(fb);
	hdr_end(&h);
	hdr_begin(&h, out, "Content-Disposition");
	hdr_str(&h, "attachment;", true);
	filename_params(&h, clean);
	hdr_end(&h);
	fm_buf_append_str(out, "Content-Transfer-Encoding: base64\n\n");
	base64_encode(out, (unsigned char *)data.data, data.len);
	free(type);
	free(clean);
	fm_buf_free(&data);
	return 0;
}

/* ------------------------------------------------------------------------
 * The message.
 */

static const char *const OWN_FIELDS[] = {
    "date",       "from",        "sender",     "reply-to",
    "to",         "cc",          "bcc",        "subject",
    "message-id", "in-reply-to", "references", "mime-version",
};

static int
extra_field(struct fm_buf *out, const struct fm_compose_header *x,
            struct fm_error *err)
{
	const char *n = x->name != NULL ? x->name : "";
	size_t len = strlen(n);
	bool ok = len > 0 && len <= FIELD_NAME_MAX;
	for (size_t i = 0; i < len && ok; i++)
		ok = n[i] > 0x20 && n[i] < 0x7f && n[i] != ':';
	if (!ok) {
		char shown[100];
		fm_str_printable(n, shown, sizeof(shown));
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("'%s' is not a header field name"),
		                    shown);
	}
	bool own = strncasecmp(n, "content-", 8) == 0;
	for (size_t i = 0; i < FM_ARRAY_LEN(OWN_FIELDS) && !own; i++)
		own = strcasecmp(n, OWN_FIELDS[i]) == 0;
	if (own)
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("the %s field cannot be set as an extra "
		                      "header"),
		                    n);
	if (blank(x->value))
		return 0;
	char *what = xasprintf(_("%s field"), n);
	int r = check_text(x->value, what, err);
	free(what);
	if (r < 0)
		return -1;
	struct hdr h;
	hdr_begin(&h, out, n);
	unstructured(&h, x->value);
	hdr_end(&h);
	return 0;
}

static int
from_field(struct fm_buf *out, const struct fm_compose *c, char **domain_r,
           struct fm_error *err)
{
	if (blank(c->from_addr))
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("the message has no From address"));
	struct fm_mime_addresses l;
	struct fm_error sub = {0};
	if (fm_mime_addresses_parse(c->from_addr, &l, &sub) < 0)
		return fm_error_set(err, sub.cls, _("From: %s"), sub.user);
	if (l.n != 1 || l.items[0].group != NULL) {
		fm_mime_addresses_free(&l);
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("From: '%s' is not one address"),
		                    c->from_addr);
	}
	if (!blank(c->from_name)) {
		if (check_text(c->from_name, _("sender's name"), err) < 0) {
			fm_mime_addresses_free(&l);
			return -1;
		}
		free(l.items[0].name);
		l.items[0].name = xstrdup(c->from_name);
	}
	address_list_out(out, "From", &l);
	*domain_r = xstrdup(strrchr(l.items[0].addr, '@') + 1);
	fm_mime_addresses_free(&l);
	return 0;
}

static int
headers(struct fm_buf *out, const struct fm_compose *c, struct fm_error *err)
{
	time_t t = 0;
	char *domain = NULL;
	if (date_field(out, c, &t, err) < 0 ||
	    from_field(out, c, &domain, err) < 0)
		return -1;
	int r = -1;
	if (address_field(out, "Reply-To", c->reply_to, err) < 0 ||
	    address_field(out, "To", c->to, err) < 0 ||
	    address_field(out, "Cc", c->cc, err) < 0 ||
	    address_field(out, "Bcc", c->bcc, err) < 0)
		goto out;
	if (!blank(c->subject)) {
		if (check_text(c->subject, _("subject"), err) < 0)
			goto out;
		struct hdr h;
		hdr_begin(&h, out, "Subject");
		unstructured(&h, c->subject);
		hdr_end(&h);
	}
	if (c->message_id != NULL) {
		if (ids_field(out, "Message-ID", c->message_id, true, err) < 0)
			goto out;
	} else {
		char rnd[BOUNDARY_RANDOM + 1];
		if (random_text(rnd, BOUNDARY_RANDOM, err) < 0)
			goto out;
		fm_buf_printf(out, "Message-ID: <%s.%lld@%s>\n", rnd,
		              (long long)t, domain);
	}
	if (!blank(c->in_reply_to) &&
	    ids_field(out, "In-Reply-To", c->in_reply_to, false, err) < 0)
		goto out;
	if (!blank(c->references) &&
	    ids_field(out, "References", c->references, false, err) < 0)
		goto out;
	for (size_t i = 0; i < c->header_count; i++)
		if (extra_field(out, &c->headers[i], err) < 0)
			goto out;
	fm_buf_append_str(out, "MIME-Version: 1.0\n");
	r = 0;
out:
	free(domain);
	return r;
}

int
fm_mime_compose(const struct fm_compose *c, char **data_r, size_t *len_r,
                struct fm_error *err)
{
	struct fm_buf out, text_head, text;
	fm_buf_init(&out, BUF_MAX);
	fm_buf_init(&text_head, BUF_MAX);
	fm_buf_init(&text, BUF_MAX);
	struct fm_buf *parts = xcalloc(c->attachment_count + 1, sizeof(*parts));
	size_t nparts = 0;
	magic_t magic = NULL;
	int r = -1;
	if (headers(&out, c, err) < 0 ||
	    text_part(c->body, &text_head, &text, err) < 0)
		goto out;
	for (size_t i = 0; i < c->attachment_count; i++) {
		fm_buf_init(&parts[nparts], BUF_MAX);
		nparts++;
		if (attachment_part(&c->attachments[i], &magic,
		                    &parts[nparts - 1], err) < 0)
			goto out;
	}
	if (nparts == 0) {
		fm_buf_append(&out, text_head.data, text_head.len);
		fm_buf_append_char(&out, '\n');
		fm_buf_append(&out, text.data, text.len);
		r = 0;
		goto out;
	}
	/* A boundary that occurs in no part. ("=_" cannot occur in base64
	 * or quoted-printable, but the text may be 7bit.) */
	char boundary[BOUNDARY_RANDOM + 16];
	for (int tries = 0;; tries++) {
		char rnd[BOUNDARY_RANDOM + 1];
		if (tries == 16) { /* 62^24 says this does not happen */
			fm_error_set(err, FM_ERR_LOCAL,
			             _("no MIME boundary could be found"));
			goto out;
		}
		if (random_text(rnd, BOUNDARY_RANDOM, err) < 0)
			goto out;
		snprintf(boundary, sizeof(boundary), "=_fulmar_%s", rnd);
		bool found = memmem(text.data, text.len, boundary,
		                    strlen(boundary)) != NULL;
		for (size_t i = 0; i < nparts && !found; i++)
			found = memmem(parts[i].data, parts[i].len, boundary,
			               strlen(boundary)) != NULL;
		if (!found)
			break;
	}
	fm_buf_printf(&out,
	              "Content-Type: multipart/mixed;\n boundary=\"%s\"\n\n",
	              boundary);
	/* The line end before each delimiter belongs to the delimiter:
	 * every part keeps its own last line end. */
	fm_buf_printf(&out, "--%s\n", boundary);
	fm_buf_append(&out, text_head.data, text_head.len);
	fm_buf_append_char(&out, '\n');
	fm_buf_append(&out, text.data, text.len);
	for (size_t i = 0; i < nparts; i++) {
		fm_buf_printf(&out, "\n--%s\n", boundary);
		fm_buf_append(&out, parts[i].data, parts[i].len);
	}
	fm_buf_printf(&out, "\n--%s--\n", boundary);
	r = 0;
out:
	if (magic != NULL)
		magic_close(magic);
	for (size_t i = 0; i < nparts; i++)
		fm_buf_free(&parts[i]);
	free(parts);
	fm_buf_free(&text_head);
	fm_buf_free(&text);
	if (r == 0) {
		*len_r = out.len;
		*data_r = fm_buf_steal(&out);
	} else {
		fm_buf_free(&out);
	}
	return r;
}

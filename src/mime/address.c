/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Address lists for sending: RFC 5322 section 3.4 parsed strictly enough
 * that what comes out can go into an SMTP envelope, and leniently enough
 * for what people type and old mail carries (obsolete phrases with dots,
 * routes, empty list elements, "addr (Name)", a group without its ';').
 *
 * libetpan's mailimf_address_list_parse() is not used: in 1.9.4 it reads
 * "John Doe john@x.org" as the address "JohnDoejohn@x.org", stops at a line
 * break inside "<a@b\r\nRCPT TO:<x>>" and reports success with the address
 * "<a@b", takes "<@r1,@r2:a@b>" for two addresses "<@r1" and "@r2", and
 * drops the comment of "a@b (Name)". Its errors carry no position either.
 * Here the value is cut into tokens first (atoms, quoted strings, comments,
 * domain literals, specials), then a small recursive-descent parser reads
 * the list, and every error names the list element it is about.
 *
 * The results are safe for an SMTP command by construction: an addr is an
 * ASCII dot-atom or quoted local part, '@', and an ASCII domain (IDNA via
 * libidn2) or domain literal, checked once more at the end for CR, LF,
 * '<', '>' and control characters.
 */
#include "config.h"

#include <idn2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"
#include "mime/mime.h"

/* RFC 5321 section 4.5.3.1: the longest local part and path. */
#define LOCAL_MAX 64
#define ADDR_MAX 254
/* How much of a bad list element an error message quotes. */
#define SNIPPET_MAX 60

/* ------------------------------------------------------------------------
 * Error messages: they quote the list element the error is in.
 */

static bool
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* The list element around pos: from the comma before it to the comma
 * after it, at the top level (outside quotes, comments, brackets), as a
 * printable one-line string of at most SNIPPET_MAX bytes. */
static void
snippet(const char *value, size_t pos, char *out, size_t outsize)
{
	size_t len = strlen(value);
	size_t start = 0, end = len;
	bool quote = false, escape = false;
	int depth = 0;
	for (size_t i = 0; i < len; i++) {
		char c = value[i];
		if (escape) {
			escape = false;
			continue;
		}
		if (c == '\\' && (quote || depth > 0)) {
			escape = true;
		} else if (quote) {
			quote = c != '"';
		} else if (c == '"') {
			quote = true;
		} else if (c == '(' || c == '<' || c == '[') {
			depth++;
		} else if ((c == ')' || c == '>' || c == ']') && depth > 0) {
			depth--;
		} else if (c == ',' && depth == 0) {
			if (i < pos) {
				start = i + 1;
			} else {
				end = i;
				break;
			}
		}
	}
	while (start < end && (value[start] == ' ' || value[start] == '\t' ||
	                       value[start] == '\r' || value[start] == '\n'))
		start++;
	while (end > start &&
	       (value[end - 1] == ' ' || value[end - 1] == '\t' ||
	        value[end - 1] == '\r' || value[end - 1] == '\n'))
		end--;
	/* Cut at a character boundary and mark the cut. */
	bool cut = end - start > SNIPPET_MAX;
	if (cut) {
		end = start + SNIPPET_MAX - 3;
		while (end > start &&
		       ((unsigned char)value[end] & 0xc0) == 0x80)
			end--;
	}
	/* One line: white space runs (line breaks too) as one space, other
	 * control characters as '?'. */
	struct fm_buf b;
	fm_buf_init(&b, SNIPPET_MAX);
	for (size_t i = start; i < end; i++) {
		unsigned char c = (unsigned char)value[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			if (b.len == 0 || b.data[b.len - 1] != ' ')
				fm_buf_append_char(&b, ' ');
		} else {
			fm_buf_append_char(&b, is_ctl(c) ? '?' : (char)c);
		}
	}
	if (cut)
		fm_buf_append_str(&b, "...");
	fm_strlcpy(out, b.data, outsize);
	fm_buf_free(&b);
}

/* ------------------------------------------------------------------------
 * Tokens.
 */

enum tok_kind {
	T_END,
	T_ATOM,    /* text: the atom (ASCII atext and 8-bit bytes) */
	T_QUOTED,  /* text: the content, unescaped and unfolded */
	T_COMMENT, /* text: the content, unescaped, nested parens kept */
	T_LITERAL, /* text: "[...]" without white space */
	T_SPECIAL, /* c: one of ( ) < > [ ] : ; @ , . */
};

struct tok {
	enum tok_kind kind;
	char c;
	bool space;  /* white space or a comment came before it */
	size_t pos;  /* offset in the value */
	char *text;  /* owned; NULL for T_END and T_SPECIAL */
	size_t tlen; /* strlen(text) */
};

struct toks {
	struct tok *v;
	size_t n, cap;
};

static struct tok *
tok_add(struct toks *t, enum tok_kind kind, size_t pos, bool space)
{
	if (t->n == t->cap) {
		t->cap = t->cap == 0 ? 16 : t->cap * 2;
		t->v = xreallocarray(t->v, t->cap, sizeof(*t->v));
	}
	struct tok *k = &t->v[t->n++];
	*k = (struct tok){.kind = kind, .pos = pos, .space = space};
	return k;
}

static void
toks_free(struct toks *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].text);
	free(t->v);
}

static bool
is_atext(unsigned char c)
{
	if (c >= 0x80)
		return true; /* UTF-8 (RFC 6532); validated as a whole */
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* A line break at value[*i] ('\r' or '\n'): folding white space when a
 * space or tab follows it, or the very end of the value. Steps *i over it
 * and returns true then. */
static bool
fold(const char *value, size_t len, size_t *i)
{
	size_t k = *i;
	if (value[k] == '\r' && k + 1 < len && value[k + 1] == '\n')
		k++;
	if (value[k] != '\n')
		return false;
	k++;
	if (k < len && value[k] != ' ' && value[k] != '\t')
		return false;
	*i = k - 1; /* the caller's loop steps past the '\n' */
	return true;
}

static int
bad(const char *value, size_t pos, struct fm_error *err, const char *what)
{
	char part[SNIPPET_MAX + 8];
	snippet(value, pos, part, sizeof(part));
	return fm_error_set(err, FM_ERR_USAGE,
	                    _("'%s' is not a valid address: %s"), part, what);
}

/* The quoted string or comment that starts at value[*i] (the opening '"'
 * or '('), up to its closing character, into out; *i ends on the closing
 * character. */
static int
delimited(const char *value, size_t len, size_t *i, struct fm_buf *out,
          struct fm_error *err)
{
	size_t start = *i;
	bool comment = value[start] == '(';
	int depth = 1;
	for (size_t k = start + 1; k < len; k++) {
		unsigned char c = (unsigned char)value[k];
		if (c == '\r' || c == '\n') {
			if (!fold(value, len, &k))
				return bad(value, start, err,
				           _("it contains a line break"));
			continue;
		}
		if (c == '\\') {
			if (k + 1 >= len)
				break;
			c = (unsigned char)value[++k];
			if (is_ctl(c) && c != '\t')
				return bad(
				    value, start, err,
				    _("it contains a control character"));
			fm_buf_append_char(out, (char)c);
			continue;
		}
		if (is_ctl(c) && c != '\t')
			return bad(value, start, err,
			           _("it contains a control character"));
		if (comment && c == '(') {
			depth++;
		} else if (comment && c == ')' && --depth == 0) {
			*i = k;
			return 0;
		} else if (!comment && c == '"') {
			*i = k;
			return 0;
		}
		fm_buf_append_char(out, (char)c);
	}
	return bad(value, start, err,
	           comment ? _("a '(' is not closed")
	                   : _("a quotation mark is not closed"));
}

static int
tokenize(const char *value, struct toks *t, struct fm_error *err)
{
	size_t len = strlen(value);
	bool space = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];
		if (c == ' ' || c == '\t') {
			space = true;
			continue;
		}
		if (c == '\r' || c == '\n') {
			if (!fold(value, len, &i))
				return bad(value, i, err,
				           _("it contains a line break"));
			space = true;
			continue;
		}
		if (c == '"' || c == '(') {
			struct fm_buf b;
			fm_buf_init(&b, len);
			size_t pos = i;
			if (delimited(value, len, &i, &b, err) < 0) {
				fm_buf_free(&b);
				return -1;
			}
			struct tok *k = tok_add(
			    t, c == '"' ? T_QUOTED : T_COMMENT, pos, space);
			k->tlen = b.len;
			k->text = fm_buf_steal(&b);
			space = c == '(';
			continue;
		}
		if (c == '[') {
			/* A domain literal: dtext, folding white space dropped.
			 */
			struct fm_buf b;
			fm_buf_init(&b, len + 1);
			fm_buf_append_char(&b, '[');
			size_t k = i + 1;
			for (; k < len && value[k] != ']'; k++) {
				unsigned char d = (unsigned char)value[k];
				if (d == ' ' || d == '\t')
					continue;
				if ((d == '\r' || d == '\n') &&
				    fold(value, len, &k))
					continue;
				if (is_ctl(d) || d >= 0x80 || d == '[' ||
				    d == '\\') {
					fm_buf_free(&b);
					return bad(
					    value, i, err,
					    _("its domain literal holds "
					      "a character that does not "
					      "belong there"));
				}
				fm_buf_append_char(&b, (char)d);
			}
			if (k >= len) {
				fm_buf_free(&b);
				return bad(value, i, err,
				           _("a '[' is not closed"));
			}
			fm_buf_append_char(&b, ']');
			struct tok *tk = tok_add(t, T_LITERAL, i, space);
			tk->tlen = b.len;
			tk->text = fm_buf_steal(&b);
			i = k;
			space = false;
			continue;
		}
		if (strchr(")<>]:;@,.", c) != NULL && c != '\0') {
			if (c == ')')
				return bad(value, i, err,
				           _("a ')' has no '(' before it"));
			if (c == ']')
				return bad(value, i, err,
				           _("a ']' has no '[' before it"));
			struct tok *k = tok_add(t, T_SPECIAL, i, space);
			k->c = (char)c;
			space = false;
			continue;
		}
		if (is_atext(c)) {
			size_t k = i;
			while (k < len && is_atext((unsigned char)value[k]))
				k++;
			struct tok *tk = tok_add(t, T_ATOM, i, space);
			tk->text = xstrndup(value + i, k - i);
			tk->tlen = k - i;
			i = k - 1;
			space = false;
			continue;
		}
		if (c == '\\')
			return bad(value, i, err,
			           _("a backslash is only allowed inside "
			             "quotation marks"));
		return bad(value, i, err, _("it contains a control character"));
	}
	tok_add(t, T_END, len, space);
	return 0;
}

/* ------------------------------------------------------------------------
 * The parser.
 */

struct parser {
	const char *value;
	struct toks t;
	size_t i; /* the next token */
	struct fm_mime_addresses *out;
	size_t cap;
	struct fm_error *err;
};

/* The next token that is not a comment (T_END at the end). */
static struct tok *
peek(struct parser *ps)
{
	while (ps->t.v[ps->i].kind == T_COMMENT)
		ps->i++;
	return &ps->t.v[ps->i];
}

static bool
is_special(const struct tok *k, char c)
{
	return k->kind == T_SPECIAL && k->c == c;
}

static bool
is_word(const struct tok *k)
{
	return k->kind == T_ATOM || k->kind == T_QUOTED;
}

/* A phrase (display name) of tokens [from, to): words joined by single
 * spaces, dots kept (obs-phrase), comments left out, then decoded
 * (RFC 2047) to UTF-8. NULL when it comes out empty. */
static char *
phrase(struct parser *ps, size_t from, size_t to)
{
	struct fm_buf b;
	fm_buf_init(&b, SIZE_MAX / 2);
	bool first = true;
	for (size_t k = from; k < to; k++) {
		const struct tok *tk = &ps->t.v[k];
		if (tk->kind == T_COMMENT)
			continue;
		if (!first && tk->space)
			fm_buf_append_char(&b, ' ');
		if (tk->kind == T_SPECIAL)
			fm_buf_append_char(&b, tk->c);
		else
			fm_buf_append(&b, tk->text, tk->tlen);
		first = false;
	}
	char *name = fm_mime_decode_header(b.data, b.len);
	fm_buf_free(&b);
	if (name[0] == '\0') {
		free(name);
		return NULL;
	}
	return name;
}

static bool
dot_atom_text(const char *s, size_t len)
{
	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.' ? s[i + 1] == '.' : !is_atext(c) || c >= 0x80)
			return false;
	}
	return true;
}

/* local-part: word *("." word), read from tokens [*k, ...) up to the '@'.
 * The result is the SMTP form: a dot-atom, or a quoted string when the
 * unquoted text is not one. */
static int
local_part(struct parser *ps, size_t from, size_t to, size_t pos,
           struct fm_buf *addr)
{
	struct fm_buf raw;
	fm_buf_init(&raw, SIZE_MAX / 2);
	bool want_word = true;
	const char *problem = NULL;
	for (size_t k = from; k < to && problem == NULL; k++) {
		const struct tok *tk = &ps->t.v[k];
		if (tk->kind == T_COMMENT)
			continue;
		if (want_word && is_word(tk)) {
			fm_buf_append(&raw, tk->text, tk->tlen);
			want_word = false;
		} else if (!want_word && is_special(tk, '.')) {
			fm_buf_append_char(&raw, '.');
			want_word = true;
		} else if (!want_word && is_word(tk)) {
			problem = _("put the address in angle brackets "
			            "after the name: Name <user@example.org>");
		} else {
			problem = _("its part before the '@' is not valid");
		}
	}
	if (problem == NULL && (want_word || raw.len == 0))
		problem = _("its part before the '@' is not valid");
	for (size_t k = 0; k < raw.len && problem == NULL; k++) {
		unsigned char c = (unsigned char)raw.data[k];
		if (c >= 0x80)
			problem = _("its part before the '@' is not ASCII, "
			            "which mail servers do not accept");
		else if (is_ctl(c) || c == '<' || c == '>')
			problem = _("its part before the '@' holds a character "
			            "that cannot be sent");
	}
	if (problem == NULL && raw.len > LOCAL_MAX)
		problem = _("its part before the '@' is longer than 64 "
		            "characters");
	if (problem != NULL) {
		fm_buf_free(&raw);
		return bad(ps->value, pos, ps->err, problem);
	}
	if (dot_atom_text(raw.data, raw.len)) {
		fm_buf_append(addr, raw.data, raw.len);
	} else {
		fm_buf_append_char(addr, '"');
		for (size_t k = 0; k < raw.len; k++) {
			if (raw.data[k] == '"' || raw.data[k] == '\\')
				fm_buf_append_char(addr, '\\');
			fm_buf_append_char(addr, raw.data[k]);
		}
		fm_buf_append_char(addr, '"');
	}
	fm_buf_free(&raw);
	return 0;
}

static bool
label_ok(const char *s, size_t len)
{
	if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* domain: atoms separated by dots, or a domain literal; non-ASCII names
 * go through IDNA 2008 (with TR46 mapping, so "Bücher.DE" works). */
static int
domain(struct parser *ps, size_t pos, struct fm_buf *addr)
{
	struct tok *tk = peek(ps);
	if (tk->kind == T_LITERAL) {
		for (size_t k = 1; k + 1 < tk->tlen; k++) {
			char c = tk->text[k];
			if (!((c >= 'a' && c <= 'z') ||
			      (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '.' || c == ':' ||
			      c == '-'))
				return bad(ps->value, pos, ps->err,
				           _("its domain literal is not an "
				             "address"));
		}
		fm_buf_append(addr, tk->text, tk->tlen);
		ps->i++;
		return 0;
	}
	struct fm_buf d;
	fm_buf_init(&d, SIZE_MAX / 2);
	bool eight = false;
	for (;;) {
		tk = peek(ps);
		if (tk->kind != T_ATOM)
			break;
		for (size_t k = 0; k < tk->tlen; k++)
			eight |= (unsigned char)tk->text[k] >= 0x80;
		fm_buf_append(&d, tk->text, tk->tlen);
		ps->i++;
		/* Look past comments for a dot without consuming them: a
		 * comment after the domain may be the name. */
		size_t k = ps->i;
		while (ps->t.v[k].kind == T_COMMENT)
			k++;
		if (!is_special(&ps->t.v[k], '.'))
			break;
		fm_buf_append_char(&d, '.');
		ps->i = k + 1;
	}
	if (d.len == 0) {
		fm_buf_free(&d);
		return bad(ps->value, pos, ps->err,
		           _("it has nothing after the '@'"));
	}
	char *ascii = NULL;
	if (eight) {
		char *idn = NULL;
		int r = idn2_to_ascii_8z(d.data, &idn,
		                         IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
		if (r != IDN2_OK) {
			fm_buf_free(&d);
			return bad(ps->value, pos, ps->err,
			           _("its domain is not a valid "
			             "internationalised domain name"));
		}
		ascii = xstrdup(idn);
		idn2_free(idn);
	} else {
		ascii = xstrdup(d.data);
	}
	fm_buf_free(&d);
	bool ok = strlen(ascii) <= 253;
	for (const char *p = ascii; ok;) {
		const char *dot = strchr(p, '.');
		size_t n = dot != NULL ? (size_t)(dot - p) : strlen(p);
		ok = label_ok(p, n);
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	if (!ok) {
		free(ascii);
		return bad(ps->value, pos, ps->err,
		           _("its domain is not a valid domain name"));
	}
	fm_buf_append_str(addr, ascii);
	free(ascii);
	return 0;
}

static void
add(struct parser *ps, char *name, char *addr, const char *group)
{
	struct fm_mime_addresses *l = ps->out;
	if (l->n == ps->cap) {
		ps->cap = ps->cap == 0 ? 4 : ps->cap * 2;
		l->items = xreallocarray(l->items, ps->cap, sizeof(*l->items));
	}
	l->items[l->n++] = (struct fm_mime_address){
	    .name = name,
	    .addr = addr,
	    .group = group != NULL ? xstrdup(group) : NULL,
	};
}

/* The final guard before an address leaves: nothing in it can end or
 * extend an SMTP command. */
static bool
addr_safe(const char *a)
{
	size_t len = strlen(a);
	if (len == 0 || len > ADDR_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)a[i];
		if (is_ctl(c) || c >= 0x80 || c == '<' || c == '>')
			return false;
	}
	return true;
}

/* local-part "@" domain from the local-part tokens [from, to), the '@'
 * being the next token. Stores the address in *addr_r. */
static int
addr_spec(struct parser *ps, size_t from, size_t to, size_t pos, char **addr_r)
{
	struct fm_buf a;
	fm_buf_init(&a, SIZE_MAX / 2);
	if (local_part(ps, from, to, pos, &a) < 0) {
		fm_buf_free(&a);
		return -1;
	}
	fm_buf_append_char(&a, '@');
	ps->i = to + 1; /* past the '@' */
	if (domain(ps, pos, &a) < 0) {
		fm_buf_free(&a);
		return -1;
	}
	if (!addr_safe(a.data)) {
		fm_buf_free(&a);
		return bad(ps->value, pos, ps->err,
		           _("it is longer than 254 characters"));
	}
	*addr_r = fm_buf_steal(&a);
	return 0;
}

/* Skips an obsolete route ("@a,@b:") at the start of an angle-addr. */
static int
obs_route(struct parser *ps, size_t pos)
{
	if (!is_special(peek(ps), '@'))
		return 0;
	for (;;) {
		struct tok *tk = peek(ps);
		if (is_special(tk, ':')) {
			ps->i++;
			return 0;
		}
		if (tk->kind == T_END || is_special(tk, '>'))
			return bad(ps->value, pos, ps->err,
			           _("its route has no ':'"));
		ps->i++;
	}
}

/* "<" [route] addr-spec ">", the '<' being the next token. */
static int
angle_addr(struct parser *ps, size_t pos, char **addr_r)
{
	ps->i++;
	if (obs_route(ps, pos) < 0)
		return -1;
	size_t from = ps->i;
	size_t k = from;
	while (ps->t.v[k].kind != T_END && !is_special(&ps->t.v[k], '@') &&
	       !is_special(&ps->t.v[k], '>'))
		k++;
	if (!is_special(&ps->t.v[k], '@'))
		return bad(ps->value, pos, ps->err,
		           k == from || is_special(&ps->t.v[k], '>')
		               ? _("it has no @domain")
		               : _("a '<' is not closed"));
	if (addr_spec(ps, from, k, pos, addr_r) < 0)
		return -1;
	if (!is_special(peek(ps), '>')) {
		free(*addr_r);
		*addr_r = NULL;
		return bad(ps->value, pos, ps->err,
		           peek(ps)->kind == T_END
		               ? _("a '<' is not closed")
		               : _("it has text after the address inside "
		                   "'<' and '>'"));
	}
	ps->i++;
	return 0;
}

/* The error for a token that follows an address where a comma belongs. */
static int
stray(struct parser *ps, const struct tok *tk)
{
	return bad(ps->value, tk->pos, ps->err,
	           is_special(tk, '>') ? _("a '>' has no '<' before it")
	                               : _("a comma is missing after it"));
}

/* One mailbox (name-addr or addr-spec), or with group allowed a group.
 * group is the name of the group being read, or NULL. */
static int
address(struct parser *ps, const char *group)
{
	size_t from = ps->i;
	size_t pos = peek(ps)->pos;
	/* The phrase, or the local part: words, dots, comments. */
	size_t k = ps->i;
	while (ps->t.v[k].kind == T_COMMENT || is_word(&ps->t.v[k]) ||
	       is_special(&ps->t.v[k], '.'))
		k++;
	const struct tok *stop = &ps->t.v[k];
	if (is_special(stop, '@')) {
		/* "user@example.org <user@example.org>": an address typed
		 * as the name, unquoted. Read it as the name when a '<'
		 * follows before the end of the element. */
		size_t m = k;
		while (ps->t.v[m].kind == T_COMMENT || is_word(&ps->t.v[m]) ||
		       is_special(&ps->t.v[m], '.') ||
		       is_special(&ps->t.v[m], '@'))
			m++;
		if (is_special(&ps->t.v[m], '<')) {
			k = m;
			stop = &ps->t.v[k];
		}
	}
	if (is_special(stop, '<')) {
		char *name = phrase(ps, from, k);
		char *addr = NULL;
		ps->i = k;
		if (angle_addr(ps, pos, &addr) < 0) {
			free(name);
			return -1;
		}
		add(ps, name, addr, group);
		return 0;
	}
	if (is_special(stop, '@')) {
		char *addr = NULL;
		if (addr_spec(ps, from, k, pos, &addr) < 0)
			return -1;
		/* "user@example.org (Name)": the comment is the name. */
		char *name = NULL;
		for (size_t c = ps->i; ps->t.v[c].kind == T_COMMENT; c++)
			if (name == NULL)
				name = fm_mime_decode_header(ps->t.v[c].text,
				                             ps->t.v[c].tlen);
		if (name != NULL && name[0] == '\0') {
			free(name);
			name = NULL;
		}
		add(ps, name, addr, group);
		return 0;
	}
	if (is_special(stop, ':')) {
		if (group != NULL)
			return bad(ps->value, pos, ps->err,
			           _("a group cannot contain another group"));
		char *gname = phrase(ps, from, k);
		if (gname == NULL)
			return bad(ps->value, pos, ps->err,
			           _("a group needs a name before its ':'"));
		ps->i = k + 1;
		int r = 0;
		for (;;) {
			struct tok *tk = peek(ps);
			if (is_special(tk, ';')) {
				ps->i++;
				break;
			}
			if (tk->kind == T_END) /* the ';' is missing */
				break;
			if (is_special(tk, ',')) {
				ps->i++;
				continue;
			}
			if ((r = address(ps, gname)) < 0)
				break;
			tk = peek(ps);
			if (!is_special(tk, ',') && !is_special(tk, ';') &&
			    tk->kind != T_END) {
				r = stray(ps, tk);
				break;
			}
		}
		free(gname);
		return r;
	}
	if (k > from && (stop->kind == T_END || is_special(stop, ',') ||
	                 is_special(stop, ';')))
		return bad(ps->value, pos, ps->err, _("it has no @domain"));
	if (is_special(stop, '>'))
		return bad(ps->value, stop->pos, ps->err,
		           _("a '>' has no '<' before it"));
	return bad(ps->value, stop->pos, ps->err,
	           _("it has a character that does not belong there"));
}

int
fm_mime_addresses_parse(const char *value, struct fm_mime_addresses *list,
                        struct fm_error *err)
{
	*list = (struct fm_mime_addresses){0};
	if (!fm_mime_utf8_valid(value, strlen(value)))
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("the address list is not valid UTF-8"));
	struct parser ps = {.value = value, .out = list, .err = err};
	if (tokenize(value, &ps.t, err) < 0) {
		toks_free(&ps.t);
		return -1;
	}
	int r = 0;
	for (;;) {
		struct tok *tk = peek(&ps);
		if (tk->kind == T_END)
			break;
		if (is_special(tk, ',')) { /* obs-addr-list: empty elements */
			ps.i++;
			continue;
		}
		if ((r = address(&ps, NULL)) < 0)
			break;
		tk = peek(&ps);
		if (tk->kind != T_END && !is_special(tk, ',')) {
			r = stray(&ps, tk);
			break;
		}
	}
	toks_free(&ps.t);
	if (r < 0)
		fm_mime_addresses_free(list);
	return r;
}

void
fm_mime_addresses_free(struct fm_mime_addresses *list)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < list->n; i++) {
		free(list->items[i].name);
		free(list->items[i].addr);
		free(list->items[i].group);
	}
	free(list->items);
	list->items = NULL;
	list->n = 0;
}

/* ------------------------------------------------------------------------
 * Finished messages.
 */

static bool
field_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

int
fm_mime_recipients(const char *data, size_t len, struct fm_mime_addresses *list,
                   struct fm_error *err)
{
	*list = (struct fm_mime_addresses){0};
	size_t cap = 0;
	struct fm_mime_header_iter it;
	const char *name, *value;
	size_t nlen, vlen;
	fm_mime_header_iter_init(&it, data, len);
	it.limit = len; /* every field counts, however long the header */
	while (fm_mime_header_next(&it, &name, &nlen, &value, &vlen)) {
		if (!field_is(name, nlen, "to") &&
		    !field_is(name, nlen, "cc") && !field_is(name, nlen, "bcc"))
			continue;
		struct fm_mime_addresses one;
		struct fm_error sub = {0};
		int r;
		if (memchr(value, '\0', vlen) != NULL) {
			r = fm_error_set(&sub, FM_ERR_USAGE,
			                 _("it contains a NUL byte"));
		} else {
			char *v = xstrndup(value, vlen);
			r = fm_mime_addresses_parse(v, &one, &sub);
			free(v);
		}
		if (r < 0) {
			fm_mime_addresses_free(list);
			return fm_error_set(err, sub.cls,
			                    _("the %.*s field: %s"), (int)nlen,
			                    name, sub.user);
		}
		for (size_t i = 0; i < one.n; i++) {
			bool dup = false;
			for (size_t j = 0; j < list->n && !dup; j++)
				dup = strcasecmp(list->items[j].addr,
				                 one.items[i].addr) == 0;
			if (dup) {
				free(one.items[i].name);
				free(one.items[i].addr);
				free(one.items[i].group);
				continue;
			}
			if (list->n == cap) {
				cap = cap == 0 ? 8 : cap * 2;
				list->items = xreallocarray(
				    list->items, cap, sizeof(*list->items));
			}
			list->items[list->n++] = one.items[i];
		}
		free(one.items);
	}
	return 0;
}

char *
fm_mime_strip_bcc(const char *data, size_t len, size_t *len_r)
{
	struct fm_buf out;
	fm_buf_init(&out, len);
	struct fm_mime_header_iter it;
	const char *name, *value;
	size_t nlen, vlen;
	size_t copied = 0;
	fm_mime_header_iter_init(&it, data, len);
	it.limit = len;
	for (;;) {
		/* The field about to be returned starts at it.pos or after
		 * lines the iterator skips; name points at its first byte,
		 * and it.pos ends up after its last continuation line. */
		if (!fm_mime_header_next(&it, &name, &nlen, &value, &vlen))
			break;
		if (!field_is(name, nlen, "bcc"))
			continue;
		size_t start = (size_t)(name - data);
		fm_buf_append(&out, data + copied, start - copied);
		copied = it.pos;
	}
	fm_buf_append(&out, data + copied, len - copied);
	*len_r = out.len;
	return fm_buf_steal(&out);
}

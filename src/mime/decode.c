/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Dates, and rendering a message as text: the MIME tree walked with bounded
 * nesting and part counts, parts decoded (libetpan's mailmime_part_parse()
 * for base64 and quoted-printable, iconv for charsets), one alternative
 * chosen, the rest listed as attachments.
 *
 * The tree is split here rather than by mailmime_parse(): libetpan 1.9.4
 * recurses once per nesting level without a limit (a few hundred KiB of
 * nested multiparts overflow the stack), rescans the rest of the message at
 * every level, and frees the parent's MIME fields in the message/rfc822
 * error path. libetpan still parses every header field here.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>

#include "mime/mime.h"

/* Whether parentheses in s nest at most 16 deep, counted without regard to
 * quotes (an over-estimate). libetpan parses comments recursively, so
 * deeply nested ones must not reach it. */
static bool
parens_ok(const char *s, size_t len)
{
	int depth = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '(' && ++depth > 16)
			return false;
		if (s[i] == ')' && depth > 0)
			depth--;
	}
	return true;
}

/* ------------------------------------------------------------------------
 * Dates.
 */

static int64_t
days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Validates the fields and computes UTC; zone as +hhmm in an int. */
static bool
date_make(int year, int mon, int day, int hh, int mi, int ss, int zone,
          time_t *t)
{
	static const int mdays[12] = {31, 29, 31, 30, 31, 30,
	                              31, 31, 30, 31, 30, 31};
	/* RFC 5322 4.3: two-digit years. */
	if (year >= 0 && year < 50)
		year += 2000;
	else if (year >= 50 && year < 1000)
		year += 1900;
	if (year < 1900 || year > 9999 || mon < 1 || mon > 12 || day < 1 ||
	    day > mdays[mon - 1] || hh < 0 || hh > 23 || mi < 0 || mi > 59 ||
	    ss < 0 || ss > 60 || zone < -2359 || zone > 2359)
		return false;
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (mon == 2 && day == 29 && !leap)
		return false;
	int az = zone < 0 ? -zone : zone;
	if (az % 100 > 59)
		return false;
	int64_t off = (int64_t)(az / 100) * 3600 + (az % 100) * 60;
	int64_t secs = days_from_civil(year, mon, day) * 86400 + hh * 3600 +
	               mi * 60 + ss - (zone < 0 ? -off : off);
	*t = (time_t)secs;
	return true;
}

static int
month_of(const char *w, size_t n)
{
	static const char names[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	if (n < 3)
		return 0;
	for (int m = 0; m < 12; m++)
		if (strncasecmp(w, names + 3 * m, 3) == 0)
			return m + 1;
	return 0;
}

static bool
zone_of(const char *w, size_t n, int *zone)
{
	static const struct {
		const char *name;
		int zone;
	} zones[] = {{"ut", 0},     {"utc", 0},    {"gmt", 0},
	             {"z", 0},      {"est", -500}, {"edt", -400},
	             {"cst", -600}, {"cdt", -500}, {"mst", -700},
	             {"mdt", -600}, {"pst", -800}, {"pdt", -700}};
	for (size_t i = 0; i < FM_ARRAY_LEN(zones); i++) {
		if (strlen(zones[i].name) == n &&
		    strncasecmp(w, zones[i].name, n) == 0) {
			*zone = zones[i].zone;
			return true;
		}
	}
	return false;
}

/* Reads up to max digits at s[*i]; -1 if there are none. */
static int
digits(const char *s, size_t len, size_t *i, int max, int *ndigits)
{
	int v = 0, k = 0;
	while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
		if (k < max)
			v = v * 10 + (s[*i] - '0');
		k++;
		(*i)++;
	}
	if (ndigits != NULL)
		*ndigits = k;
	return k == 0 || k > max ? -1 : v;
}

/* For what libetpan refuses: asctime() dates, ISO 8601, missing commas and
 * the like. Picks a month name, day, year, h:m[:s] and zone out of the
 * words, in any order. */
static bool
date_lenient(const char *s, size_t len, time_t *t)
{
	int year = -1, mon = 0, day = -1, hh = -1, mi = -1, ss = 0, zone = 0;
	size_t i = 0;
	int n;
	/* ISO 8601: 2006-01-02[T ]15:04[:05][Z|+hh[:]mm] */
	if (len >= 10 && s[4] == '-' && s[7] == '-') {
		year = digits(s, len, &i, 4, NULL);
		i++;
		mon = digits(s, len, &i, 2, NULL);
		i++;
		day = digits(s, len, &i, 2, NULL);
		if (i < len && (s[i] == 'T' || s[i] == ' '))
			i++;
	}
	while (i < len) {
		char c = s[i];
		if (c >= '0' && c <= '9') {
			int v = digits(s, len, &i, 9, &n);
			if (i < len && s[i] == ':' && hh < 0) {
				hh = v;
				i++;
				mi = digits(s, len, &i, 2, NULL);
				if (i < len && s[i] == ':') {
					i++;
					ss = digits(s, len, &i, 2, NULL);
				}
				if (i < len && s[i] == '.') { /* fractions */
					i++;
					digits(s, len, &i, 9, NULL);
				}
			} else if (n == 4 && year < 0) {
				year = v;
			} else if (n <= 2 && day < 0) {
				day = v;
			} else if (n <= 2 && year < 0) {
				year = v;
			}
		} else if ((c == '+' || c == '-') && hh >= 0 && i + 1 < len &&
		           s[i + 1] >= '0' && s[i + 1] <= '9') {
			/* +hhmm, +hh:mm or +hh */
			i++;
			int v = digits(s, len, &i, 4, &n);
			if (n == 2 && i + 1 < len && s[i] == ':') {
				i++;
				int m = digits(s, len, &i, 2, NULL);
				v = m < 0 ? -1 : v * 100 + m;
			} else if (n == 2) {
				v *= 100;
			} else if (n != 4) {
				v = -1;
			}
			if (v < 0)
				return false;
			zone = c == '-' ? -v : v;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
			size_t w = i;
			while (i < len && ((s[i] >= 'a' && s[i] <= 'z') ||
			                   (s[i] >= 'A' && s[i] <= 'Z')))
				i++;
			int m = month_of(s + w, i - w);
			bool am =
			    i - w == 2 && strncasecmp(s + w, "am", 2) == 0;
			bool pm =
			    i - w == 2 && strncasecmp(s + w, "pm", 2) == 0;
			if (m > 0 && mon == 0 && i - w <= 9)
				mon = m;
			else if (am && hh == 12)
				hh = 0;
			else if (pm && hh >= 1 && hh < 12)
				hh += 12;
			else if (hh >= 0)
				zone_of(s + w, i - w, &zone);
		} else {
			i++;
		}
	}
	if (year < 0 || mon <= 0 || day < 0 || hh < 0 || mi < 0 || ss < 0)
		return false;
	return date_make(year, mon, day, hh, mi, ss, zone, t);
}

bool
fm_mime_parse_date(const char *s, size_t len, time_t *t_r)
{
	if (!parens_ok(s, len))
		return date_lenient(s, len, t_r);
	size_t idx = 0;
	struct mailimf_date_time *dt = NULL;
	if (mailimf_date_time_parse(s, len, &idx, &dt) != MAILIMF_NO_ERROR)
		return date_lenient(s, len, t_r);
	bool ok = date_make(dt->dt_year, dt->dt_month, dt->dt_day, dt->dt_hour,
	                    dt->dt_min, dt->dt_sec, dt->dt_zone, t_r);
	mailimf_date_time_free(dt);
	/* libetpan succeeds on a prefix ("10:04:05 pm" is 10:04:05 with no
	 * zone): when more than a comment follows, the lenient reading of
	 * the whole is the better one. */
	while (idx < len && s[idx] == ' ')
		idx++;
	if (ok && (idx == len || s[idx] == '('))
		return true;
	time_t lenient;
	if (date_lenient(s, len, &lenient)) {
		*t_r = lenient;
		return true;
	}
	return ok;
}

/* ------------------------------------------------------------------------
 * One part's MIME header.
 */

struct param {
	const char *name;
	const char *value;
};

struct part {
	char type[128];  /* "type/subtype", lower case */
	char *charset;   /* raw, or NULL */
	char *boundary;  /* raw, or NULL */
	char *filename;  /* decoded, or NULL */
	bool attachment; /* Content-Disposition other than inline */
	int encoding;    /* MAILMIME_MECHANISM_* */
	size_t body;     /* offset of the body in the part */
};

static bool
type_is(const struct part *p, const char *prefix)
{
	return fm_str_has_prefix(p->type, prefix);
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes RFC 2231 text into out; a '%' without two hex digits
 * stays as it is. */
static void
pct_decode(const char *s, struct fm_buf *out)
{
	for (; *s != '\0'; s++) {
		char c = *s;
		if (c == '%' && s[1] != '\0' && hex_value(s[1]) >= 0 &&
		    hex_value(s[2]) >= 0) {
			c = (char)(hex_value(s[1]) * 16 + hex_value(s[2]));
			s += 2;
		}
		fm_buf_append_char(out, c);
	}
}

#define SECTIONS_MAX 64

/* The value of parameter key, decoded to one line of UTF-8: RFC 2231
 * (key*=charset'lang'text, or sections key*0*, key*1, ...) preferred, else
 * the plain value with RFC 2047 words decoded. NULL when absent. */
static char *
param_value(const struct param *ps, size_t n, const char *key)
{
	size_t klen = strlen(key);
	const char *sec[SECTIONS_MAX] = {NULL};
	bool enc[SECTIONS_MAX] = {false};
	const char *plain = NULL;
	for (size_t i = 0; i < n; i++) {
		const char *name = ps[i].name;
		if (strncasecmp(name, key, klen) != 0)
			continue;
		const char *t = name + klen;
		if (*t == '\0') {
			if (plain == NULL)
				plain = ps[i].value;
		} else if (t[0] == '*' && t[1] == '\0') {
			sec[0] = ps[i].value; /* key*= wins over sections */
			enc[0] = true;
			break;
		} else if (t[0] == '*' && t[1] >= '0' && t[1] <= '9') {
			long k = 0;
			t++;
			while (*t >= '0' && *t <= '9' && k < SECTIONS_MAX)
				k = k * 10 + (*t++ - '0');
			bool e = *t == '*';
			if (e)
				t++;
			if (*t == '\0' && k < SECTIONS_MAX && sec[k] == NULL) {
				sec[k] = ps[i].value;
				enc[k] = e;
			}
		}
	}
	if (sec[0] == NULL)
		return plain == NULL
		           ? NULL
		           : fm_mime_decode_header(plain, strlen(plain));
	struct fm_buf raw, utf8;
	char charset[64] = "";
	fm_buf_init(&raw, 4 * FM_MIME_TEXT_MAX);
	for (size_t k = 0; k < SECTIONS_MAX && sec[k] != NULL; k++) {
		const char *v = sec[k];
		if (k == 0 && enc[0]) {
			/* charset'language'text */
			const char *q1 = strchr(v, '\'');
			const char *q2 =
			    q1 != NULL ? strchr(q1 + 1, '\'') : NULL;
			if (q2 != NULL) {
				size_t cl = (size_t)(q1 - v);
				if (cl < sizeof(charset)) {
					memcpy(charset, v, cl);
					charset[cl] = '\0';
				}
				v = q2 + 1;
			}
		}
		if (enc[k])
			pct_decode(v, &raw);
		else
			fm_buf_append_str(&raw, v);
	}
	fm_buf_init(&utf8, 12 * FM_MIME_TEXT_MAX);
	fm_mime_text_to_utf8(charset, raw.data, raw.len, &utf8, NULL);
	char *out = fm_mime_decode_header(utf8.data, utf8.len);
	fm_buf_free(&raw);
	fm_buf_free(&utf8);
	return out;
}

static const char *
discrete_name(const struct mailmime_discrete_type *d)
{
	switch (d->dt_type) {
	case MAILMIME_DISCRETE_TYPE_TEXT:
		return "text";
	case MAILMIME_DISCRETE_TYPE_IMAGE:
		return "image";
	case MAILMIME_DISCRETE_TYPE_AUDIO:
		return "audio";
	case MAILMIME_DISCRETE_TYPE_VIDEO:
		return "video";
	case MAILMIME_DISCRETE_TYPE_APPLICATION:
		return "application";
	default:
		return d->dt_extension != NULL ? d->dt_extension : "unknown";
	}
}

static const char *
composite_name(const struct mailmime_composite_type *c)
{
	switch (c->ct_type) {
	case MAILMIME_COMPOSITE_TYPE_MESSAGE:
		return "message";
	case MAILMIME_COMPOSITE_TYPE_MULTIPART:
		return "multipart";
	default:
		return c->ct_token != NULL ? c->ct_token : "unknown";
	}
}

/* Writes "type/subtype" in lower case, printable ASCII only. */
static void
set_type(struct part *p, const char *type, const char *subtype)
{
	snprintf(p->type, sizeof(p->type), "%s/%s", type, subtype);
	for (char *t = p->type; *t != '\0'; t++) {
		if (*t >= 'A' && *t <= 'Z')
			*t = (char)(*t - 'A' + 'a');
		else if ((unsigned char)*t <= ' ' || (unsigned char)*t >= 127)
			*t = '?';
	}
}

/* Content-Type: type, charset, boundary; the name parameter in *name_r. */
static void
part_content_type(struct part *p, const char *v, size_t len, char **name_r)
{
	struct mailmime_content *ct = NULL;
	size_t idx = 0;
	if (!parens_ok(v, len) ||
	    mailmime_content_parse(v, len, &idx, &ct) != MAILIMF_NO_ERROR)
		return; /* keep the default */
	const struct mailmime_type *t = ct->ct_type;
	const char *major = t->tp_type == MAILMIME_TYPE_COMPOSITE_TYPE
	                        ? composite_name(t->tp_data.tp_composite_type)
	                        : discrete_name(t->tp_data.tp_discrete_type);
	set_type(p, major, ct->ct_subtype != NULL ? ct->ct_subtype : "unknown");
	struct param ps[SECTIONS_MAX * 2];
	size_t n = 0;
	for (clistiter *it = clist_begin(ct->ct_parameters); it != NULL;
	     it = clist_next(it)) {
		struct mailmime_parameter *pa = clist_content(it);
		if (n < FM_ARRAY_LEN(ps))
			ps[n++] = (struct param){pa->pa_name, pa->pa_value};
		if (strcasecmp(pa->pa_name, "charset") == 0 &&
		    p->charset == NULL)
			p->charset = xstrdup(pa->pa_value);
		if (strcasecmp(pa->pa_name, "boundary") == 0 &&
		    p->boundary == NULL && pa->pa_value[0] != '\0')
			p->boundary = xstrdup(pa->pa_value);
	}
	*name_r = param_value(ps, n, "name");
	mailmime_content_free(ct);
}

static void
part_disposition(struct part *p, const char *v, size_t len)
{
	struct mailmime_disposition *dsp = NULL;
	size_t idx = 0;
	if (!parens_ok(v, len) ||
	    mailmime_disposition_parse(v, len, &idx, &dsp) != MAILIMF_NO_ERROR)
		return;
	/* RFC 2183: an unknown disposition is treated as attachment. */
	p->attachment =
	    dsp->dsp_type->dsp_type != MAILMIME_DISPOSITION_TYPE_INLINE;
	struct param ps[SECTIONS_MAX * 2];
	size_t n = 0;
	for (clistiter *it = clist_begin(dsp->dsp_parms); it != NULL;
	     it = clist_next(it)) {
		struct mailmime_disposition_parm *pa = clist_content(it);
		if (n >= FM_ARRAY_LEN(ps))
			break;
		if (pa->pa_type == MAILMIME_DISPOSITION_PARM_FILENAME)
			ps[n++] =
			    (struct param){"filename", pa->pa_data.pa_filename};
		else if (pa->pa_type == MAILMIME_DISPOSITION_PARM_PARAMETER)
			ps[n++] =
			    (struct param){pa->pa_data.pa_parameter->pa_name,
			                   pa->pa_data.pa_parameter->pa_value};
	}
	free(p->filename);
	p->filename = param_value(ps, n, "filename");
	mailmime_disposition_free(dsp);
}

static void
part_encoding(struct part *p, const char *v, size_t len)
{
	struct mailmime_mechanism *m = NULL;
	size_t idx = 0;
	/* libetpan reads " base64" as an error and "\tbase64" as an unknown
	 * token: it wants the value without leading white space. */
	while (len > 0 && (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n'))
		v++, len--;
	if (parens_ok(v, len) &&
	    mailmime_encoding_parse(v, len, &idx, &m) == MAILIMF_NO_ERROR) {
		p->encoding = m->enc_type;
		mailmime_mechanism_free(m);
	}
}

static bool
field_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* Reads the MIME fields of the part in data; the first of each counts. */
static void
part_parse(const char *data, size_t len, const char *default_type,
           struct part *p)
{
	memset(p, 0, sizeof(*p));
	fm_strlcpy(p->type, default_type, sizeof(p->type));
	p->encoding = MAILMIME_MECHANISM_8BIT;
	bool seen_ct = false, seen_cd = false, seen_cte = false;
	char *name = NULL;
	struct fm_mime_header_iter it;
	const char *fname, *value;
	size_t nlen, vlen;
	fm_mime_header_iter_init(&it, data, len);
	while (fm_mime_header_next(&it, &fname, &nlen, &value, &vlen)) {
		if (!seen_ct && field_is(fname, nlen, "content-type")) {
			seen_ct = true;
			part_content_type(p, value, vlen, &name);
		} else if (!seen_cd &&
		           field_is(fname, nlen, "content-disposition")) {
			seen_cd = true;
			part_disposition(p, value, vlen);
		} else if (!seen_cte &&
		           field_is(fname, nlen, "content-transfer-encoding")) {
			seen_cte = true;
			part_encoding(p, value, vlen);
		}
	}
	p->body = it.body;
	if (p->filename == NULL || p->filename[0] == '\0') {
		free(p->filename);
		p->filename = name;
	} else {
		free(name);
	}
	if (p->filename != NULL && p->filename[0] == '\0') {
		free(p->filename);
		p->filename = NULL;
	}
}

static void
part_free(struct part *p)
{
	free(p->charset);
	free(p->boundary);
	free(p->filename);
}

/* ------------------------------------------------------------------------
 * Multipart bodies.
 */

struct span {
	size_t start, end;
};

/* Whether the line at body[ls] (after "--boundary", at ls + blen) is a
 * delimiter; *close for the closing one. */
static bool
delimiter_at(const char *body, size_t len, size_t after, bool *close)
{
	*close =
	    after + 1 < len && body[after] == '-' && body[after + 1] == '-';
	if (*close)
		return true;
	for (size_t i = after; i < len && body[i] != '\n'; i++)
		if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r')
			return false;
	return true;
}

/* Splits a multipart body at its delimiters into at most max spans; returns
 * how many, *closed when the closing delimiter was seen. */
static size_t
multipart_split(const char *body, size_t len, const char *boundary,
                struct span *spans, size_t max, bool *closed)
{
	size_t blen = strlen(boundary);
	char *needle = xasprintf("\n--%s", boundary);
	size_t count = 0, start = 0, pos = 0;
	bool open = false;
	*closed = false;
	for (;;) {
		size_t ls; /* where the "--" is */
		if (pos == 0 && len >= blen + 2 && body[0] == '-' &&
		    body[1] == '-' && memcmp(body + 2, boundary, blen) == 0) {
			ls = 0;
		} else {
			const char *hit =
			    memmem(body + pos, len - pos, needle, blen + 3);
			if (hit == NULL)
				break;
			ls = (size_t)(hit - body) + 1;
		}
		bool close;
		pos = ls + 1;
		if (!delimiter_at(body, len, ls + 2 + blen, &close))
			continue;
		if (open && count < max) {
			size_t end = ls;
			if (end > start && body[end - 1] == '\n')
				end--;
			if (end > start && body[end - 1] == '\r')
				end--;
			spans[count++] = (struct span){start, end};
		}
		if (close) {
			*closed = true;
			break;
		}
		if (count >= max)
			break;
		const char *nl = memchr(body + ls, '\n', len - ls);
		start = nl != NULL ? (size_t)(nl - body) + 1 : len;
		pos = start > 0 ? start - 1 : 0;
		open = true;
	}
	if (open && !*closed && count < max)
		spans[count++] = (struct span){start, len};
	free(needle);
	return count;
}

/* ------------------------------------------------------------------------
 * HTML, crudely: tags dropped, block tags as line breaks, the common
 * entities decoded, script and style skipped. Enough to read a message that
 * came without a text/plain part, nothing more: no tables, no links.
 */

struct html_out {
	struct fm_buf *buf;
	bool pending_space;
	int newlines; /* trailing line breaks written */
	bool pre;
};

static void
html_put(struct html_out *h, const char *s, size_t n)
{
	if (h->pending_space && h->newlines == 0)
		fm_buf_append_char(h->buf, ' ');
	h->pending_space = false;
	fm_buf_append(h->buf, s, n);
	h->newlines = 0;
}

static void
html_break(struct html_out *h, int n)
{
	h->pending_space = false;
	while (h->newlines < n) {
		fm_buf_append_char(h->buf, '\n');
		h->newlines++;
	}
}

static void
put_utf8(struct html_out *h, uint32_t cp)
{
	char u[4];
	size_t n;
	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) {
		u[0] = (char)cp, n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
	}
	html_put(h, u, n);
}

/* An entity at s[0] == '&'; returns the bytes consumed (1 if none). */
static size_t
html_entity(struct html_out *h, const char *s, size_t len)
{
	static const struct {
		const char *name;
		uint32_t cp;
	} names[] = {{"amp", '&'},      {"lt", '<'},        {"gt", '>'},
	             {"quot", '"'},     {"apos", '\''},     {"nbsp", ' '},
	             {"copy", 0xa9},    {"reg", 0xae},      {"mdash", 0x2014},
	             {"ndash", 0x2013}, {"hellip", 0x2026}, {"laquo", 0xab},
	             {"raquo", 0xbb},   {"euro", 0x20ac},   {"trade", 0x2122},
	             {"lsquo", 0x2018}, {"rsquo", 0x2019},  {"ldquo", 0x201c},
	             {"rdquo", 0x201d}, {"bull", 0x2022},   {"middot", 0xb7},
	             {"shy", 0x00ad},   {"zwnj", 0x200c},   {"agrave", 0xe0},
	             {"aacute", 0xe1},  {"auml", 0xe4},     {"ccedil", 0xe7},
	             {"egrave", 0xe8},  {"eacute", 0xe9},   {"ouml", 0xf6},
	             {"uuml", 0xfc},    {"szlig", 0xdf},    {"Auml", 0xc4},
	             {"Ouml", 0xd6},    {"Uuml", 0xdc},     {"Eacute", 0xc9}};
	size_t end = 1;
	while (end < len && end < 12 && s[end] != ';')
		end++;
	if (end >= len || s[end] != ';')
		goto literal;
	if (s[1] == '#') {
		uint32_t cp = 0;
		bool hex = end > 2 && (s[2] == 'x' || s[2] == 'X');
		size_t i = hex ? 3 : 2;
		if (i >= end)
			goto literal;
		for (; i < end; i++) {
			char c = s[i];
			int d = c >= '0' && c <= '9'   ? c - '0'
			        : !hex                 ? -1
			        : c >= 'a' && c <= 'f' ? c - 'a' + 10
			        : c >= 'A' && c <= 'F' ? c - 'A' + 10
			                               : -1;
			if (d < 0)
				goto literal;
			cp = cp * (hex ? 16 : 10) + (uint32_t)d;
			if (cp > 0x10ffff)
				cp = 0x110000;
		}
		put_utf8(h, cp);
		return end + 1;
	}
	for (size_t k = 0; k < FM_ARRAY_LEN(names); k++) {
		if (strlen(names[k].name) == end - 1 &&
		    memcmp(s + 1, names[k].name, end - 1) == 0) {
			put_utf8(h, names[k].cp);
			return end + 1;
		}
	}
literal:
	html_put(h, "&", 1);
	return 1;
}

/* Skips to after the closing tag </name ...> (or the end). */
static size_t
html_skip_element(const char *s, size_t len, size_t i, const char *name)
{
	size_t nl = strlen(name);
	while (i < len) {
		const char *lt = memchr(s + i, '<', len - i);
		if (lt == NULL)
			return len;
		i = (size_t)(lt - s) + 1;
		if (i + nl < len && s[i] == '/' &&
		    strncasecmp(s + i + 1, name, nl) == 0) {
			const char *gt = memchr(s + i, '>', len - i);
			return gt == NULL ? len : (size_t)(gt - s) + 1;
		}
	}
	return len;
}

static bool
tag_in(const char *tag, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(tag, *list) == 0)
			return true;
	return false;
}

/* A tag at s[i] == '<'; returns the index after it. */
static size_t
html_tag(struct html_out *h, const char *s, size_t len, size_t i)
{
	static const char *const para[] = {
	    "p",  "h1", "h2", "h3", "h4",         "h5",    "h6",
	    "ul", "ol", "dl", "hr", "blockquote", "table", NULL};
	static const char *const line[] = {"br", "div", "tr", "li",
	                                   "dt", "dd",  NULL};
	static const char *const skip[] = {"script", "style", "head", "title",
	                                   NULL};
	if (len - i >= 4 && memcmp(s + i, "<!--", 4) == 0) {
		const char *e = memmem(s + i + 4, len - i - 4, "-->", 3);
		return e == NULL ? len : (size_t)(e - s) + 3;
	}
	size_t j = i + 1;
	bool closing = j < len && s[j] == '/';
	if (closing)
		j++;
	char tag[16];
	size_t n = 0;
	while (j < len && n + 1 < sizeof(tag) &&
	       ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') ||
	        (s[j] >= '0' && s[j] <= '9')))
		tag[n++] = (char)(s[j++] | 0x20);
	tag[n] = '\0';
	if (n == 0 && !closing) {
		html_put(h, "<", 1); /* not a tag: "a < b" */
		return i + 1;
	}
	/* The end of the tag, over quoted attribute values. */
	char quote = 0;
	while (j < len && (quote != 0 || s[j] != '>')) {
		if (quote == 0 && (s[j] == '"' || s[j] == '\''))
			quote = s[j];
		else if (quote != 0 && s[j] == quote)
			quote = 0;
		j++;
	}
	j = j < len ? j + 1 : len;
	if (!closing && tag_in(tag, skip))
		return html_skip_element(s, len, j, tag);
	if (strcmp(tag, "pre") == 0) {
		h->pre = !closing;
		html_break(h, 2);
	} else if (tag_in(tag, para)) {
		html_break(h, 2);
	} else if (tag_in(tag, line)) {
		html_break(h, 1);
		if (!closing && strcmp(tag, "li") == 0)
			html_put(h, "* ", 2);
	} else if (strcmp(tag, "td") == 0 || strcmp(tag, "th") == 0) {
		h->pending_space = true;
	}
	return j;
}

static void
html_to_text(const char *s, size_t len, struct fm_buf *out)
{
	struct html_out h = {.buf = out, .newlines = 2};
	size_t i = 0;
	while (i < len) {
		char c = s[i];
		if (c == '<') {
			i = html_tag(&h, s, len, i);
		} else if (c == '&') {
			i += html_entity(&h, s + i, len - i);
		} else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			if (!h.pre)
				h.pending_space = true;
			else if (c == '\n')
				html_break(&h, h.newlines + 1);
			else if (c != '\r')
				html_put(&h, &c, 1);
			i++;
		} else {
			size_t k = i;
			while (k < len && s[k] != '<' && s[k] != '&' &&
			       s[k] != ' ' && s[k] != '\t' && s[k] != '\r' &&
			       s[k] != '\n')
				k++;
			html_put(&h, s + i, k - i);
			i = k;
		}
	}
}

/* ------------------------------------------------------------------------
 * The walk.
 */

enum show {
	SHOW,   /* text parts shown, others listed */
	ATTACH, /* listed only */
	SKIP,   /* an alternative not chosen: numbered, not shown */
};

struct walk {
	struct fm_buf text; /* headers and text parts */
	struct fm_mime_attachment *att;
	size_t natt, catt;
	unsigned notes;
	unsigned number; /* the last leaf number given */
	unsigned parts;  /* parts looked at */
};

static void walk_part(struct walk *w, const char *data, size_t len, bool digest,
                      int depth, enum show show);

static void
text_append(struct walk *w, const char *s, size_t n)
{
	if (fm_buf_append(&w->text, s, n) < 0)
		w->notes |= FM_MIME_NOTE_CUT;
}

/* Ends the text so far with a line break, and an empty line if asked. */
static void
text_separate(struct walk *w, bool blank)
{
	struct fm_buf *t = &w->text;
	if (t->len > 0 && t->data[t->len - 1] != '\n')
		text_append(w, "\n", 1);
	if (blank && t->len > 1 && t->data[t->len - 2] != '\n')
		text_append(w, "\n", 1);
}

static void
format_address(struct fm_buf *b, const struct fm_mime_address *a)
{
	if (a->name[0] == '\0') {
		fm_buf_append_str(b, a->addr);
		return;
	}
	if (strpbrk(a->name, ",;:<>@\"()[]\\") != NULL) {
		fm_buf_append_char(b, '"');
		for (const char *p = a->name; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				fm_buf_append_char(b, '\\');
			fm_buf_append_char(b, *p);
		}
		fm_buf_append_char(b, '"');
	} else {
		fm_buf_append_str(b, a->name);
	}
	if (a->addr[0] != '\0')
		fm_buf_printf(b, " <%s>", a->addr);
}

static void
header_addresses(struct walk *w, const char *label,
                 const struct fm_mime_address *v, size_t n)
{
	if (n == 0 || (n == 1 && v[0].name[0] == '\0' && v[0].addr[0] == '\0'))
		return;
	struct fm_buf b;
	fm_buf_init(&b, FM_MIME_RENDER_MAX);
	fm_buf_printf(&b, "%s: ", label);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			fm_buf_append_str(&b, ", ");
		format_address(&b, &v[i]);
	}
	fm_buf_append_char(&b, '\n');
	text_append(w, b.data, b.len);
	fm_buf_free(&b);
}

/* Date, From, To, Cc, Subject of the message (or attached message) in
 * data. */
static void
render_headers(struct walk *w, const char *data, size_t len, bool top)
{
	struct fm_envelope *env;
	fm_mime_envelope_parse(data, len, &env, NULL);
	struct fm_mime_header_iter it;
	const char *name, *value;
	size_t nlen, vlen;
	fm_mime_header_iter_init(&it, data, len);
	while (fm_mime_header_next(&it, &name, &nlen, &value, &vlen)) {
		if (field_is(name, nlen, "date")) {
			char *date = fm_mime_decode_header(value, vlen);
			text_append(w, "Date: ", 6);
			text_append(w, date, strlen(date));
			text_append(w, "\n", 1);
			free(date);
			break;
		}
	}
	if (top && !env->date_valid)
		w->notes |= FM_MIME_NOTE_NO_DATE;
	header_addresses(w, "From", &env->from, 1);
	header_addresses(w, "To", env->to, env->to_count);
	header_addresses(w, "Cc", env->cc, env->cc_count);
	if (env->subject[0] != '\0') {
		text_append(w, "Subject: ", 9);
		text_append(w, env->subject, strlen(env->subject));
		text_append(w, "\n", 1);
	}
	fm_envelope_free(&env);
}

static uint64_t
base64_size(const char *s, size_t len)
{
	uint64_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/')
			n++;
	}
	return n * 3 / 4;
}

static void
list_attachment(struct walk *w, const struct part *p, unsigned number,
                const char *body, size_t blen)
{
	if (w->natt == w->catt) {
		w->catt = w->catt == 0 ? 8 : w->catt * 2;
		w->att = xreallocarray(w->att, w->catt, sizeof(*w->att));
	}
	struct fm_mime_attachment *a = &w->att[w->natt++];
	a->number = number;
	a->filename = p->filename != NULL ? xstrdup(p->filename) : NULL;
	a->type = xstrdup(p->type);
	a->size = p->encoding == MAILMIME_MECHANISM_BASE64
	              ? base64_size(body, blen)
	              : blen;
}

static bool
shown_inline(const struct part *p)
{
	static const char *const types[] = {
	    "text/plain",   "text/html",           "text/x-diff",
	    "text/x-patch", "text/rfc822-headers", NULL};
	return !p->attachment && tag_in(p->type, types);
}

/* A text part, decoded, converted and appended. */
static void
render_text(struct walk *w, const struct part *p, const char *body, size_t blen)
{
	char *dec = NULL;
	size_t dlen = blen, idx = 0;
	const char *text = body;
	if ((p->encoding == MAILMIME_MECHANISM_BASE64 ||
	     p->encoding == MAILMIME_MECHANISM_QUOTED_PRINTABLE) &&
	    mailmime_part_parse(body, blen, &idx, p->encoding, &dec, &dlen) ==
	        MAILIMF_NO_ERROR)
		text = dec;
	else
		dlen = blen;
	bool unknown = false;
	text_separate(w, true);
	if (strcmp(p->type, "text/html") == 0) {
		struct fm_buf utf8, plain;
		fm_buf_init(&utf8, FM_MIME_RENDER_MAX);
		fm_buf_init(&plain, FM_MIME_RENDER_MAX);
		fm_mime_text_to_utf8(p->charset, text, dlen, &utf8, &unknown);
		html_to_text(utf8.data, utf8.len, &plain);
		if (fm_mime_text_to_utf8("utf-8", plain.data, plain.len,
		                         &w->text, NULL) < 0)
			w->notes |= FM_MIME_NOTE_CUT;
		w->notes |= FM_MIME_NOTE_HTML;
		fm_buf_free(&utf8);
		fm_buf_free(&plain);
	} else if (fm_mime_text_to_utf8(p->charset, text, dlen, &w->text,
	                                &unknown) < 0) {
		w->notes |= FM_MIME_NOTE_CUT;
	}
	if (unknown)
		w->notes |= FM_MIME_NOTE_UNKNOWN_CHARSET;
	if (dec != NULL)
		mmap_string_unref(dec);
}

/* Which child of a multipart/alternative to show: the first text/plain,
 * else the first multipart (which may hold one), else the first text/html,
 * else the last (the richest, says RFC 2046). */
static size_t
choose_alternative(const char *body, const struct span *spans, size_t n)
{
	size_t multi = n, html = n;
	for (size_t i = 0; i < n; i++) {
		struct part p;
		part_parse(body + spans[i].start, spans[i].end - spans[i].start,
		           "text/plain", &p);
		bool plain = strcmp(p.type, "text/plain") == 0 && !p.attachment;
		if (type_is(&p, "multipart/") && multi == n)
			multi = i;
		if (strcmp(p.type, "text/html") == 0 && html == n)
			html = i;
		part_free(&p);
		if (plain)
			return i;
	}
	return multi < n ? multi : html < n ? html : n - 1;
}

/* Walks the children; false (nothing walked) when the body has no
 * delimiter line at all. */
static bool
walk_multipart(struct walk *w, const struct part *p, const char *body,
               size_t blen, int depth, enum show show)
{
	size_t max = FM_MIME_PARTS_MAX - w->parts;
	struct span *spans = xcalloc(max + 1, sizeof(*spans));
	bool closed;
	size_t n =
	    multipart_split(body, blen, p->boundary, spans, max + 1, &closed);
	if (n == 0) {
		free(spans);
		return false;
	}
	if (n > max) {
		n = max;
		w->notes |= FM_MIME_NOTE_CUT;
	}
	if (!closed)
		w->notes |= FM_MIME_NOTE_BROKEN;
	bool alternative = strcmp(p->type, "multipart/alternative") == 0;
	bool related = strcmp(p->type, "multipart/related") == 0;
	bool digest = strcmp(p->type, "multipart/digest") == 0;
	size_t chosen = alternative && show == SHOW && n > 0
	                    ? choose_alternative(body, spans, n)
	                    : n;
	for (size_t i = 0; i < n; i++) {
		enum show s = show;
		if (alternative && show == SHOW)
			s = i == chosen ? SHOW : SKIP;
		else if (related && show == SHOW && i > 0)
			s = ATTACH;
		walk_part(w, body + spans[i].start,
		          spans[i].end - spans[i].start, digest, depth + 1, s);
	}
	free(spans);
	return true;
}

static void
walk_message(struct walk *w, const struct part *p, const char *body,
             size_t blen, int depth, unsigned number)
{
	text_separate(w, true);
	char *line = xasprintf("----- %s (part %u) -----\n", p->type, number);
	text_append(w, line, strlen(line));
	free(line);
	render_headers(w, body, blen, false);
	text_append(w, "\n", 1);
	walk_part(w, body, blen, false, depth + 1, SHOW);
}

static void
walk_part(struct walk *w, const char *data, size_t len, bool digest, int depth,
          enum show show)
{
	if (w->parts >= FM_MIME_PARTS_MAX) {
		w->notes |= FM_MIME_NOTE_CUT;
		return;
	}
	if (depth > FM_MIME_DEPTH_MAX) {
		w->notes |= FM_MIME_NOTE_TOO_DEEP;
		return;
	}
	w->parts++;
	struct part p;
	part_parse(data, len, digest ? "message/rfc822" : "text/plain", &p);
	const char *body = data + p.body;
	size_t blen = len - p.body;
	bool encoded = p.encoding == MAILMIME_MECHANISM_BASE64 ||
	               p.encoding == MAILMIME_MECHANISM_QUOTED_PRINTABLE;
	if (type_is(&p, "multipart/")) {
		if (p.boundary != NULL && !encoded &&
		    walk_multipart(w, &p, body, blen, depth, show)) {
			part_free(&p);
			return;
		}
		/* No boundary, or no delimiter: show the body as text. */
		w->notes |= FM_MIME_NOTE_BROKEN;
		fm_strlcpy(p.type, "text/plain", sizeof(p.type));
	}
	unsigned number = ++w->number;
	if (strcmp(p.type, "message/rfc822") == 0 && !encoded && show == SHOW)
		walk_message(w, &p, body, blen, depth, number);
	else if (show == SHOW && shown_inline(&p))
		render_text(w, &p, body, blen);
	else if (show != SKIP)
		list_attachment(w, &p, number, body, blen);
	part_free(&p);
}

/* ------------------------------------------------------------------------
 * The result.
 */

static void
format_size(uint64_t n, char *buf, size_t size)
{
	if (n < 1024)
		snprintf(buf, size, "%llu B", (unsigned long long)n);
	else if (n < 1024 * 1024)
		snprintf(buf, size, "%llu KB",
		         (unsigned long long)((n + 512) / 1024));
	else
		snprintf(buf, size, "%.1f MB", (double)n / (1024.0 * 1024.0));
}

struct fm_mime_render *
fm_mime_render(const char *data, size_t len)
{
	struct walk w = {0};
	fm_buf_init(&w.text, FM_MIME_RENDER_MAX);
	render_headers(&w, data, len, true);
	text_append(&w, "\n", 1);
	size_t body_start = w.text.len;
	walk_part(&w, data, len, false, 0, SHOW);
	/* One line break after the body, no trailing empty lines. */
	while (w.text.len > body_start && w.text.data[w.text.len - 1] == '\n')
		w.text.data[--w.text.len] = '\0';
	if (w.text.len > body_start)
		text_append(&w, "\n", 1);

	struct fm_buf list;
	fm_buf_init(&list, FM_MIME_RENDER_MAX);
	if (w.natt > 0 && w.text.len > body_start)
		fm_buf_append_char(&list, '\n');
	for (size_t i = 0; i < w.natt; i++) {
		const struct fm_mime_attachment *a = &w.att[i];
		char size[32];
		format_size(a->size, size, sizeof(size));
		if (a->filename != NULL)
			fm_buf_printf(&list, "[attachment %u: %s, %s, %s]\n",
			              a->number, a->filename, a->type, size);
		else
			fm_buf_printf(&list, "[attachment %u: %s, %s]\n",
			              a->number, a->type, size);
	}

	struct fm_mime_render *r = xcalloc(1, sizeof(*r));
	r->len = w.text.len + list.len;
	r->text = xmalloc(r->len + 1);
	memcpy(r->text, w.text.data, w.text.len);
	memcpy(r->text + w.text.len, list.data, list.len);
	r->text[r->len] = '\0';
	r->attachments = w.att;
	r->attachment_count = w.natt;
	r->notes = w.notes;
	fm_buf_free(&w.text);
	fm_buf_free(&list);
	return r;
}

void
fm_mime_render_free(struct fm_mime_render **rp)
{
	struct fm_mime_render *r = *rp;
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->attachment_count; i++) {
		free(r->attachments[i].filename);
		free(r->attachments[i].type);
	}
	free(r->attachments);
	free(r->text);
	free(r);
	*rp = NULL;
}

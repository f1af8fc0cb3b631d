/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The POP3 transaction layer: commands out, responses in, straight on the
 * session's stream (see pop3_int.h for why not through libetpan). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "log/log.h"
#include "mime/mime.h"
#include "pop3/pop3_int.h"

bool
pop3_has_cap(const struct fm_pop3 *s, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < s->n_caps; i++)
		if (strncasecmp(s->caps[i], name, n) == 0 &&
		    (s->caps[i][n] == '\0' || s->caps[i][n] == ' '))
			return true;
	return false;
}

int
pop3_send(struct fm_pop3 *s, struct fm_error *err, const char *fmt, ...)
{
	char line[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		abort(); /* our own command lines are short */
	line[n++] = '\r';
	line[n++] = '\n';
	if (mailstream_write(s->stream, line, (size_t)n) != n) {
		s->healthy = false;
		return fm_net_error(s->conn, _("sending a command"), err);
	}
	return 0;
}

int
pop3_flush(struct fm_pop3 *s, struct fm_error *err)
{
	if (mailstream_flush(s->stream) < 0) {
		s->healthy = false;
		return fm_net_error(s->conn, _("sending a command"), err);
	}
	return 0;
}

/* Reads more into the read-ahead, keeping what is unread. At most one
 * read of the connection: bytes already in the stream's buffer are taken
 * alone, so that a pipelined response never waits for the next one. */
static int
fill(struct fm_pop3 *s, const char *cmd, struct fm_error *err)
{
	if (s->in_pos > 0) {
		memmove(s->in, s->in + s->in_pos, s->in_len - s->in_pos);
		s->in_len -= s->in_pos;
		s->in_pos = 0;
	}
	size_t want = POP3_IN_SIZE - s->in_len;
	if (s->stream->read_buffer_len > 0 && want > s->stream->read_buffer_len)
		want = s->stream->read_buffer_len;
	ssize_t r = mailstream_read(s->stream, s->in + s->in_len, want);
	if (r <= 0) {
		/* The sentence is made only now: gettext costs, and this
		 * runs for every read. */
		char what[96];
		snprintf(what, sizeof(what), _("reading the answer to %s"),
		         cmd);
		s->healthy = false;
		if (fm_net_failed(s->conn))
			return fm_net_error(s->conn, what, err);
		return fm_error_set(err, FM_ERR_TEMPORARY,
		                    _("the connection to %s broke while %s"),
		                    s->acct->host, what);
	}
	s->in_len += (size_t)r;
	return 0;
}

/* One line without its line end, NUL-terminated in place; valid until
 * the next read. cmd: the command answered, for errors. */
static int
read_line(struct fm_pop3 *s, const char *cmd, char **line_r,
          struct fm_error *err)
{
	size_t scanned = 0;
	for (;;) {
		char *p = s->in + s->in_pos;
		size_t n = s->in_len - s->in_pos;
		char *nl = memchr(p + scanned, '\n', n - scanned);
		if (nl != NULL) {
			size_t len = (size_t)(nl - p);
			s->in_pos += len + 1;
			if (len > 0 && p[len - 1] == '\r')
				len--;
			p[len] = '\0';
			*line_r = p;
			return 0;
		}
		if (n >= POP3_LINE_MAX) {
			s->healthy = false;
			return fm_error_set(
			    err, FM_ERR_PROTOCOL,
			    _("%s sent a line longer than %d bytes in answer "
			      "to %s; fulmar stopped"),
			    s->acct->host, POP3_LINE_MAX, cmd);
		}
		scanned = n;
		if (fill(s, cmd, err) < 0)
			return -1;
	}
}

int
pop3_refused(struct fm_pop3 *s, const char *what, struct fm_error *err)
{
	return fm_error_set(err, FM_ERR_PROTOCOL,
	                    _("%s refused %s (it said: %s)"), s->acct->host,
	                    what, s->text[0] ? s->text : "-");
}

int
pop3_status(struct fm_pop3 *s, const char *what, struct fm_error *err)
{
	char *line;
	if (read_line(s, what, &line, err) < 0)
		return -1;
	int ok;
	const char *text;
	if (strncmp(line, "+OK", 3) == 0) {
		ok = 1;
		text = line + 3;
	} else if (strncmp(line, "-ERR", 4) == 0) {
		ok = 0;
		text = line + 4;
	} else {
		s->healthy = false;
		char shown[128];
		fm_str_printable(line, shown, sizeof(shown));
		return fm_error_set(err, FM_ERR_PROTOCOL,
		                    _("%s answered %s with \"%s\", which is "
		                      "not a POP3 status line"),
		                    s->acct->host, what, shown);
	}
	if (*text == ' ')
		text++;
	fm_str_printable(text, s->text, sizeof(s->text));
	return ok;
}

int
pop3_body(struct fm_pop3 *s, const char *what, struct fm_buf *out,
          struct fm_error *err)
{
	bool bol = true; /* at the start of a line */
	for (;;) {
		if (s->in_pos == s->in_len && fill(s, what, err) < 0)
			return -1;
		char *p = s->in + s->in_pos;
		size_t n = s->in_len - s->in_pos;
		if (bol && p[0] == '.') {
			/* The end (".CRLF"), or a dot-stuffed line. */
			if (n < 2 || (p[1] == '\r' && n < 3)) {
				if (fill(s, what, err) < 0)
					return -1;
				continue;
			}
			if (p[1] == '\n' || (p[1] == '\r' && p[2] == '\n')) {
				s->in_pos += p[1] == '\n' ? 2 : 3;
				return 0;
			}
			p++;
			n--;
			s->in_pos++;
		}
		/* Everything up to the next line that starts with a dot (or
		 * up to what is here) goes in one piece. */
		size_t take = 0;
		bol = false;
		for (;;) {
			const char *nl = memchr(p + take, '\n', n - take);
			if (nl == NULL) {
				take = n;
				break;
			}
			take = (size_t)(nl - p) + 1;
			if (take == n || p[take] == '.') {
				bol = true;
				break;
			}
		}
		if (fm_buf_append(out, p, take) < 0) {
			s->healthy = false;
			return fm_error_set(
			    err, FM_ERR_PROTOCOL,
			    _("%s sent more than %llu MiB in answer to %s; "
			      "fulmar stopped (max_literal_mib bounds it)"),
			    s->acct->host, (unsigned long long)(out->max >> 20),
			    what);
		}
		s->in_pos += take;
	}
}

int
pop3_quit(struct fm_pop3 *s, struct fm_error *err)
{
	if (pop3_send(s, err, "QUIT") < 0 || pop3_flush(s, err) < 0)
		return -1;
	int r = pop3_status(s, "QUIT", err);
	/* Whatever the answer, nothing more is said on this link. */
	s->healthy = false;
	s->quit_done = r >= 0;
	if (r == 0)
		return fm_error_set(err, FM_ERR_TEMPORARY,
		                    _("%s did not confirm the end of the "
		                      "session (it said: %s); messages marked "
		                      "for deletion stay on the server until "
		                      "the next pass"),
		                    s->acct->host, s->text);
	return r < 0 ? -1 : 0;
}

int
pop3_run(struct fm_pop3 *s, size_t n, pop3_req_fn *send, pop3_req_fn *recv,
         void *ctx, struct fm_error *err)
{
	size_t window = pop3_has_cap(s, "PIPELINING") ? POP3_WINDOW : 1;
	size_t sent = 0;
	for (size_t done = 0; done < n; done++) {
		if (sent < n && sent - done < window) {
			while (sent < n && sent - done < window)
				if (send(ctx, sent++, err) < 0)
					return -1;
			if (pop3_flush(s, err) < 0)
				return -1;
		}
		if (recv(ctx, done, err) < 0) {
			/* Answers still in flight: the link is out of step. */
			s->healthy = false;
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * The listing.
 */

/* The next line of a multiline listing: 1 with the line, 0 at the end. */
static int
listing_line(struct fm_pop3 *s, const char *what, char **line_r,
             struct fm_error *err)
{
	char *line;
	if (read_line(s, what, &line, err) < 0)
		return -1;
	if (line[0] == '.') {
		if (line[1] == '\0')
			return 0;
		line++;
	}
	*line_r = line;
	return 1;
}

static int
bad_listing(struct fm_pop3 *s, const char *what, const char *line,
            struct fm_error *err)
{
	char shown[128];
	fm_str_printable(line, shown, sizeof(shown));
	s->healthy = false;
	return fm_error_set(err, FM_ERR_PROTOCOL,
	                    _("%s sent a %s line fulmar cannot read: \"%s\""),
	                    s->acct->host, what, shown);
}

/* "N REST": the number, and REST (after single spaces). */
static bool
split_number(char *line, unsigned *num_r, char **rest_r)
{
	char *end;
	if (line[0] < '1' || line[0] > '9')
		return false;
	unsigned long long v = strtoull(line, &end, 10);
	if (end == line || *end != ' ' || v > UINT32_MAX)
		return false;
	while (*end == ' ')
		end++;
	*num_r = (unsigned)v;
	*rest_r = end;
	return true;
}

static int
cmp_num(const void *a, const void *b)
{
	unsigned x = ((const struct pop3_msg *)a)->num;
	unsigned y = ((const struct pop3_msg *)b)->num;
	return x < y ? -1 : x > y;
}

static struct pop3_msg *
find_num(struct pop3_msg *msgs, size_t n, unsigned num)
{
	if (n == 0)
		return NULL;
	struct pop3_msg key = {.num = num};
	return bsearch(&key, msgs, n, sizeof(*msgs), cmp_num);
}

/* RFC 1939: 1 to 70 characters from 0x21 to 0x7E; we take up to 512. */
static bool
valid_uidl(const char *u)
{
	size_t n = strlen(u);
	if (n == 0 || n > 512)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] < 0x21 || (unsigned char)u[i] > 0x7e)
			return false;
	return true;
}

static int
read_list(struct fm_pop3 *s, struct pop3_msg **msgs_r, size_t *n_r,
          struct fm_error *err)
{
	int r = pop3_status(s, "LIST", err);
	if (r <= 0)
		return r < 0 ? -1 : pop3_refused(s, "LIST", err);
	struct pop3_msg *msgs = NULL;
	size_t n = 0, cap = 0;
	bool sorted = true;
	char *line;
	while ((r = listing_line(s, "LIST", &line, err)) > 0) {
		unsigned num;
		char *rest, *end;
		if (!split_number(line, &num, &rest) || rest[0] < '0' ||
		    rest[0] > '9') {
			r = bad_listing(s, "LIST", line, err);
			break;
		}
		unsigned long long size = strtoull(rest, &end, 10);
		if (*end != '\0' && *end != ' ') {
			r = bad_listing(s, "LIST", line, err);
			break;
		}
		if (n == POP3_MAX_MESSAGES) {
			s->healthy = false;
			r = fm_error_set(err, FM_ERR_PROTOCOL,
			                 _("%s lists more than %d messages; "
			                   "fulmar stopped"),
			                 s->acct->host, POP3_MAX_MESSAGES);
			break;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 1024;
			msgs = xreallocarray(msgs, cap, sizeof(*msgs));
		}
		if (n > 0 && num <= msgs[n - 1].num)
			sorted = false;
		msgs[n++] = (struct pop3_msg){.num = num, .size = size};
	}
	if (r < 0) {
		free(msgs);
		return -1;
	}
	if (!sorted)
		qsort(msgs, n, sizeof(*msgs), cmp_num);
	for (size_t i = 1; i < n; i++) {
		if (msgs[i].num == msgs[i - 1].num) {
			unsigned num = msgs[i].num;
			free(msgs);
			s->healthy = false;
			return fm_error_set(err, FM_ERR_PROTOCOL,
			                    _("%s lists message %u twice"),
			                    s->acct->host, num);
		}
	}
	*msgs_r = msgs;
	*n_r = n;
	return 0;
}

static int
read_uidl(struct fm_pop3 *s, struct pop3_msg *msgs, size_t n, bool *have_uidl_r,
          struct fm_error *err)
{
	int r = pop3_status(s, "UIDL", err);
	*have_uidl_r = r == 1;
	if (r <= 0)
		return r;
	char *line;
	size_t i = 0;
	while ((r = listing_line(s, "UIDL", &line, err)) > 0) {
		unsigned num;
		char *uidl;
		if (!split_number(line, &num, &uidl) || !valid_uidl(uidl))
			return bad_listing(s, "UIDL", line, err);
		/* Usually in the order of LIST. */
		struct pop3_msg *m = i < n && msgs[i].num == num
		                         ? &msgs[i]
		                         : find_num(msgs, n, num);
		if (m == NULL) /* not in LIST: deleted meanwhile; skip */
			continue;
		i = (size_t)(m - msgs) + 1;
		if (m->uidl != NULL) {
			s->healthy = false;
			return fm_error_set(
			    err, FM_ERR_PROTOCOL,
			    _("%s names message %u twice in its "
			      "UIDL list"),
			    s->acct->host, num);
		}
		m->uidl = xstrdup(uidl);
	}
	return r;
}

int
pop3_listing_ask(struct fm_pop3 *s, struct fm_error *err)
{
	bool pipelining = pop3_has_cap(s, "PIPELINING");
	if (pop3_send(s, err, "LIST") < 0 ||
	    (pipelining && pop3_send(s, err, "UIDL") < 0) ||
	    pop3_flush(s, err) < 0)
		return -1;
	return 0;
}

int
pop3_listing_read(struct fm_pop3 *s, struct pop3_msg **msgs_r, size_t *n_r,
                  bool *have_uidl_r, struct fm_error *err)
{
	*msgs_r = NULL;
	*n_r = 0;
	*have_uidl_r = false;
	bool pipelining = pop3_has_cap(s, "PIPELINING");
	struct pop3_msg *msgs = NULL;
	size_t n = 0;
	if (read_list(s, &msgs, &n, err) < 0)
		return -1;
	if ((!pipelining &&
	     (pop3_send(s, err, "UIDL") < 0 || pop3_flush(s, err) < 0)) ||
	    read_uidl(s, msgs, n, have_uidl_r, err) < 0) {
		pop3_msgs_free(msgs, n);
		return -1;
	}
	*msgs_r = msgs;
	*n_r = n;
	return 0;
}

int
pop3_quick_ask(struct fm_pop3 *s, struct fm_error *err)
{
	bool pipelining = pop3_has_cap(s, "PIPELINING");
	if (pop3_send(s, err, "STAT") < 0 ||
	    (pipelining && pop3_send(s, err, "UIDL") < 0) ||
	    pop3_flush(s, err) < 0)
		return -1;
	return 0;
}

int
pop3_quick_read(struct fm_pop3 *s, struct pop3_quick *q, struct fm_error *err)
{
	memset(q, 0, sizeof(*q));
	int r = pop3_status(s, "STAT", err);
	if (r <= 0)
		return r < 0 ? -1 : pop3_refused(s, "STAT", err);
	/* "+OK COUNT OCTETS [text]" */
	char *end, *octets;
	q->count = strtoull(s->text, &end, 10);
	bool ok = end != s->text && *end == ' ';
	if (ok) {
		octets = end + 1;
		q->octets = strtoull(octets, &end, 10);
		ok = end != octets && (*end == '\0' || *end == ' ');
	}
	if (!ok)
		return bad_listing(s, "STAT", s->text, err);
	if (!pop3_has_cap(s, "PIPELINING") &&
	    (pop3_send(s, err, "UIDL") < 0 || pop3_flush(s, err) < 0))
		return -1;
	r = pop3_status(s, "UIDL", err);
	q->have_uidl = r == 1;
	if (r <= 0)
		return r;
	size_t cap = 0;
	char *line;
	while ((r = listing_line(s, "UIDL", &line, err)) > 0) {
		unsigned num;
		char *uidl;
		if (!split_number(line, &num, &uidl) || !valid_uidl(uidl)) {
			r = bad_listing(s, "UIDL", line, err);
			break;
		}
		if (q->n == POP3_MAX_MESSAGES) {
			s->healthy = false;
			r = fm_error_set(err, FM_ERR_PROTOCOL,
			                 _("%s lists more than %d messages; "
			                   "fulmar stopped"),
			                 s->acct->host, POP3_MAX_MESSAGES);
			break;
		}
		if (q->n == cap) {
			cap = cap ? 2 * cap : 1024;
			q->msgs = xreallocarray(q->msgs, cap, sizeof(*q->msgs));
		}
		q->msgs[q->n++] =
		    (struct pop3_msg){.num = num, .uidl = xstrdup(uidl)};
	}
	return r < 0 ? -1 : 0;
}

int
pop3_listing_after_quick(struct fm_pop3 *s, struct pop3_quick *q,
                         struct pop3_msg **msgs_r, size_t *n_r,
                         struct fm_error *err)
{
	*msgs_r = NULL;
	*n_r = 0;
	struct pop3_msg *msgs = NULL;
	size_t n = 0;
	if (pop3_send(s, err, "LIST") < 0 || pop3_flush(s, err) < 0 ||
	    read_list(s, &msgs, &n, err) < 0)
		return -1;
	/* The UIDLs already read, by number (LIST and UIDL name the same
	 * messages: a session's maildrop does not change). */
	qsort(q->msgs, q->n, sizeof(*q->msgs), cmp_num);
	for (size_t i = 0; i < q->n; i++) {
		struct pop3_msg *m = find_num(msgs, n, q->msgs[i].num);
		if (m == NULL || m->uidl != NULL)
			continue;
		m->uidl = q->msgs[i].uidl;
		q->msgs[i].uidl = NULL;
	}
	*msgs_r = msgs;
	*n_r = n;
	return 0;
}

void
pop3_quick_free(struct pop3_quick *q)
{
	pop3_msgs_free(q->msgs, q->n);
	memset(q, 0, sizeof(*q));
}

int
pop3_listing(struct fm_pop3 *s, struct pop3_msg **msgs_r, size_t *n_r,
             bool *have_uidl_r, struct fm_error *err)
{
	*msgs_r = NULL;
	*n_r = 0;
	*have_uidl_r = false;
	if (pop3_listing_ask(s, err) < 0)
		return -1;
	return pop3_listing_read(s, msgs_r, n_r, have_uidl_r, err);
}

void
pop3_msgs_free(struct pop3_msg *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(msgs[i].uidl);
	free(msgs);
}

int
pop3_err_no_uidl(const struct fm_pop3 *s, struct fm_error *err)
{
	return fm_error_set(err, FM_ERR_PERMANENT,
	                    _("%s does not support UIDL, so fulmar cannot "
	                      "tell which messages it already has; ask the "
	                      "provider, use IMAP, or set pop3_no_uidl = "
	                      "message-id (see fulmar.conf(5))"),
	                    s->acct->host);
}

/* ------------------------------------------------------------------------
 * Keys for a server without UIDL.
 */

/* Same key: listing order. */
static int
cmp_key(const void *a, const void *b)
{
	const struct pop3_msg *x = *(const struct pop3_msg *const *)a;
	const struct pop3_msg *y = *(const struct pop3_msg *const *)b;
	int c = strcmp(x->uidl, y->uidl);
	return c != 0 ? c : x < y ? -1 : x > y;
}

static void
hex_digest(const void *data, size_t len, char out[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

struct keys_ctx {
	struct fm_pop3 *s;
	struct pop3_msg *msgs;
	size_t *todo; /* indexes into msgs */
	struct fm_buf head;
};

static int
keys_send(void *ctx, size_t i, struct fm_error *err)
{
	struct keys_ctx *k = ctx;
	return pop3_send(k->s, err, "TOP %u 0", k->msgs[k->todo[i]].num);
}

static int
keys_recv(void *ctx, size_t i, struct fm_error *err)
{
	struct keys_ctx *k = ctx;
	struct pop3_msg *m = &k->msgs[k->todo[i]];
	int r = pop3_status(k->s, "TOP", err);
	if (r <= 0)
		return r < 0 ? -1
		             : fm_error_set(err, FM_ERR_PERMANENT,
		                            _("%s has neither UIDL nor TOP "
		                              "(it said: %s), so fulmar cannot "
		                              "tell its messages apart; use "
		                              "IMAP"),
		                            k->s->acct->host, k->s->text);
	fm_buf_reset(&k->head);
	if (pop3_body(k->s, "TOP", &k->head, err) < 0)
		return -1;
	struct fm_envelope *env = NULL;
	fm_mime_envelope_parse(k->head.data, k->head.len, &env, NULL);
	char hex[33];
	const char *kind = "mid";
	if (env->message_id != NULL && env->message_id[0] != '\0') {
		hex_digest(env->message_id, strlen(env->message_id), hex);
	} else {
		kind = "hdr";
		hex_digest(k->head.data, k->head.len, hex);
	}
	fm_envelope_free(&env);
	m->uidl =
	    xasprintf("%s:%s:%llu", kind, hex, (unsigned long long)m->size);
	return 0;
}

int
pop3_keys_from_headers(struct fm_pop3 *s, struct pop3_msg *msgs, size_t n,
                       const uint64_t *only, struct fm_error *err)
{
	struct keys_ctx k = {.s = s, .msgs = msgs};
	k.todo = xcalloc(n ? n : 1, sizeof(*k.todo));
	size_t n_todo = 0;
	for (size_t i = 0; i < n; i++)
		if (only == NULL || msgs[i].size == *only)
			k.todo[n_todo++] = i;
	fm_buf_init(&k.head, s->max_body);
	int ret = pop3_run(s, n_todo, keys_send, keys_recv, &k, err);
	fm_buf_free(&k.head);
	free(k.todo);
	if (ret < 0)
		return -1;
	/* The same key twice (the same message delivered twice): number the
	 * repeats in listing order, so each is a message of its own. */
	struct pop3_msg **by_key = xcalloc(n ? n : 1, sizeof(*by_key));
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (msgs[i].uidl != NULL)
			by_key[m++] = &msgs[i];
	qsort(by_key, m, sizeof(*by_key), cmp_key);
	size_t first = 0; /* the first of the current run keeps its key */
	for (size_t i = 1; i < m; i++) {
		if (strcmp(by_key[i]->uidl, by_key[first]->uidl) != 0) {
			first = i;
			continue;
		}
		char *u = xasprintf("%s#%zu", by_key[i]->uidl, i - first + 1);
		free(by_key[i]->uidl);
		by_key[i]->uidl = u;
	}
	free(by_key);
	return 0;
}

/* ------------------------------------------------------------------------
 * Keywords of a state entry.
 */

void
pop3_kw_parse(const char *keywords, struct pop3_kw *kw)
{
	memset(kw, 0, sizeof(*kw));
	const char *p = keywords;
	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ' ');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		size_t pl = strlen(POP3_KW_PARTIAL), sl = strlen(POP3_KW_SIZE);
		if (len == pl && strncmp(p, POP3_KW_PARTIAL, pl) == 0) {
			kw->partial = true;
		} else if (len > sl && len < sl + 21 &&
		           strncmp(p, POP3_KW_SIZE, sl) == 0) {
			char num[24];
			memcpy(num, p + sl, len - sl);
			num[len - sl] = '\0';
			char *e;
			unsigned long long v = strtoull(num, &e, 10);
			if (*e == '\0' && num[0] >= '0' && num[0] <= '9') {
				kw->has_size = true;
				kw->size = v;
			}
		}
		p = end != NULL ? end + 1 : NULL;
	}
}

char *
pop3_kw_format(const struct pop3_kw *kw)
{
	if (!kw->partial && !kw->has_size)
		return NULL;
	if (!kw->has_size)
		return xstrdup(POP3_KW_PARTIAL);
	return xasprintf("%s%s%llu", kw->partial ? POP3_KW_PARTIAL " " : "",
	                 POP3_KW_SIZE, (unsigned long long)kw->size);
}

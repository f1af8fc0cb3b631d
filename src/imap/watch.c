/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Push: sessions that wait for the server to say that something changed
 * (NOTIFY, IDLE, or STATUS polling; see imap.h). Everything after the
 * login and the EXAMINE is written and read here by hand: libetpan has no
 * NOTIFY, and its mailimap_idle() loses a response that precedes
 * "+ idling" and then waits for its stream to time out.
 *
 * What Dovecot 2.3 does with NOTIFY (tried against the suite's server):
 *  - Notifications come about half a second after the change, whether or
 *    not a command (IDLE) is running; they are sent outside IDLE too. IDLE
 *    is still used: it keeps the session from being logged out for
 *    inactivity (Dovecot says "* OK Still here" every 2 minutes in it).
 *  - The selected mailbox reports "* N EXISTS" (and RECENT), "* N
 *    EXPUNGE" and "* N FETCH (FLAGS ...)"; the others "* STATUS name
 *    (MESSAGES n UIDNEXT n UNSEEN n)", sometimes twice for one change.
 *  - A flag change in a mailbox that is not selected is reported only once
 *    CONDSTORE is enabled, as "* STATUS name (HIGHESTMODSEQ n)" (with
 *    UNSEEN when \Seen changed).
 *  - A mailbox whose name has non-ASCII characters is sent as a literal
 *    holding the name in UTF-8, not modified UTF-7 ("* STATUS {7}" and
 *    "Jürgen (...)" on the next line): literals must be read, and a name
 *    with 8-bit bytes is taken as UTF-8.
 *  - It accepts FlagChange for "personal" and "mailboxes", names that do
 *    not exist, and MessageNew without MessageExpunge.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "log/log.h"
#include "store/maildir.h"

enum {
	/* The start of a response as kept for parsing (literals inlined):
	 * enough for every response a watch acts on. */
	RESP_MAX = 8192,
	/* Literals in one response, at most. */
	RESP_LITERALS = 16,
	/* IDLEs started within a minute before the server counts as
	 * ending them at once on purpose. */
	IDLE_BURST = 30,
	/* The longest NOTIFY command that names mailboxes; beyond, every
	 * personal mailbox is watched instead. */
	NOTIFY_CMD_MAX = 64 * 1024,
	/* STATUS commands sent before reading their answers. */
	POLL_BATCH = 64,
	/* LOGOUT at the end waits this long for its answer. */
	LOGOUT_MS = 1000,
};

/* A folder watched by STATUS, and what the last answer said. */
struct polled {
	char *local;
	char *server; /* modified UTF-7 */
	bool known;
	unsigned have;
	uint64_t v[IMAP_ST_N];
};

struct fm_imap_watch {
	struct fm_imap *imap;
	mailimap *s;
	struct fm_net_conn *conn;
	fm_imap_news_fn news;
	void *ctx;
	char delim; /* the server's hierarchy delimiter */
	bool have_delim;
	bool condstore;
	char *selected;  /* local name of the EXAMINEd folder, or NULL */
	bool notifying;  /* NOTIFY SET was accepted */
	bool overflowed; /* ... and the server gave it up */
	bool idling;     /* "+" seen, DONE not sent yet */
	unsigned tag;
	char idle_tag[16];
	uint64_t burst_start;
	unsigned burst;
	struct polled *polled;
	size_t n_polled;
	struct fm_buf resp; /* the response being handled */
};

/* ------------------------------------------------------------------------
 * Parsing, pure.
 */

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* p starts with word (any case), followed by a space or the end. */
static bool
word_is(const char *p, const char *word)
{
	size_t n = strlen(word);
	return strncasecmp(p, word, n) == 0 && (p[n] == ' ' || p[n] == '\0');
}

bool
imap_watch_literal(const char *line, size_t len, uint64_t *n_r, size_t *at_r)
{
	if (len < 3 || line[len - 1] != '}')
		return false;
	size_t end = len - 1, i = end;
	while (i > 0 && is_digit(line[i - 1]))
		i--;
	if (i == end || i == 0 || line[i - 1] != '{')
		return false;
	uint64_t n = 0;
	for (size_t k = i; k < end; k++) {
		unsigned d = (unsigned)(line[k] - '0');
		n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
	}
	i--;
	if (i > 0 && line[i - 1] == '~')
		i--;
	*n_r = n;
	*at_r = i;
	return true;
}

/* A number of 1 to 20 digits that fits 64 bits, at *pp. */
static bool
read_number(const char **pp, uint64_t *v_r)
{
	const char *p = *pp;
	uint64_t v = 0;
	size_t n = 0;
	for (; is_digit(*p); p++, n++) {
		unsigned d = (unsigned)(*p - '0');
		if (n >= 20 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (n == 0)
		return false;
	*pp = p;
	*v_r = v;
	return true;
}

/* "name (ATT value ATT value ...)" after "* STATUS ". */
static void
parse_status(const char *q, struct imap_watch_resp *r)
{
	static const char *const atts[IMAP_ST_N] = {
	    [IMAP_ST_MESSAGES] = "MESSAGES",
	    [IMAP_ST_UIDNEXT] = "UIDNEXT",
	    [IMAP_ST_UIDVALIDITY] = "UIDVALIDITY",
	    [IMAP_ST_UNSEEN] = "UNSEEN",
	    [IMAP_ST_HIGHESTMODSEQ] = "HIGHESTMODSEQ",
	};
	r->kind = IMAP_WATCH_STATUS;
	if (!imap_read_astring(&q, r->mailbox, sizeof(r->mailbox))) {
		r->mailbox[0] = '\0';
		return;
	}
	r->named = true;
	if (q[0] != ' ' || q[1] != '(')
		return;
	q += 2;
	unsigned have = 0;
	uint64_t v[IMAP_ST_N];
	while (*q != ')') {
		size_t kl = 0;
		while ((q[kl] >= 'A' && q[kl] <= 'Z') ||
		       (q[kl] >= 'a' && q[kl] <= 'z') || q[kl] == '-' ||
		       (kl > 0 && is_digit(q[kl])))
			kl++;
		if (kl == 0 || q[kl] != ' ')
			return;
		const char *val = q + kl + 1;
		uint64_t x;
		if (read_number(&val, &x)) {
			for (int k = 0; k < IMAP_ST_N; k++)
				if (strlen(atts[k]) == kl &&
				    strncasecmp(q, atts[k], kl) == 0) {
					v[k] = x;
					have |= 1u << k;
				}
		} else if (strncasecmp(val, "NIL", 3) == 0) {
			val += 3; /* APPENDLIMIT may be NIL */
		} else {
			return;
		}
		q = val;
		if (*q == ' ')
			q++;
		else if (*q != ')')
			return;
	}
	if (q[1] != '\0')
		return;
	r->st_have = have;
	for (int k = 0; k < IMAP_ST_N; k++)
		if (have & (1u << k))
			r->st[k] = v[k];
}

void
imap_watch_parse(const char *p, struct imap_watch_resp *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = IMAP_WATCH_OTHER;
	if (p[0] == '+') {
		r->kind = IMAP_WATCH_CONTINUE;
		return;
	}
	if (p[0] != '*') {
		size_t tl = strcspn(p, " ");
		if (tl == 0 || tl >= sizeof(r->tag) || p[tl] != ' ')
			return;
		memcpy(r->tag, p, tl);
		r->tag[tl] = '\0';
		r->kind = IMAP_WATCH_TAGGED;
		r->ok = word_is(p + tl + 1, "OK");
		return;
	}
	if (p[1] != ' ')
		return;
	p += 2;
	if (word_is(p, "BYE")) {
		r->kind = IMAP_WATCH_BYE;
	} else if (word_is(p, "OK")) {
		if (strncasecmp(p + 2, " [NOTIFICATIONOVERFLOW]", 23) == 0)
			r->kind = IMAP_WATCH_OVERFLOW;
	} else if (word_is(p, "STATUS")) {
		parse_status(p[6] == ' ' ? p + 7 : p + 6, r);
	} else if (word_is(p, "VANISHED")) {
		r->kind = IMAP_WATCH_SELECTED;
	} else {
		size_t n = strspn(p, "0123456789");
		if (n > 0 && p[n] == ' ' &&
		    (word_is(p + n + 1, "EXISTS") ||
		     word_is(p + n + 1, "EXPUNGE") ||
		     strncasecmp(p + n + 1, "FETCH ", 6) == 0))
			r->kind = IMAP_WATCH_SELECTED;
	}
}

/* ------------------------------------------------------------------------
 * Reading.
 */

static mailstream *
stream_of(struct fm_imap_watch *w)
{
	return w->s->imap_stream;
}

static int
lost(struct fm_imap_watch *w, const char *what, struct fm_error *err)
{
	return fm_net_error(w->conn, what, err);
}

/* Appends what fits. */
static void
put(struct fm_buf *b, const char *s, size_t n)
{
	size_t room = b->max - b->len;
	fm_buf_append(b, s, n < room ? n : room);
}

/* Reads a literal of n bytes (the guard bounds n): a short one without
 * line breaks or NULs goes into the response as a quoted string, anything
 * else as "{}". */
static int
read_literal(struct fm_imap_watch *w, uint64_t n, struct fm_error *err)
{
	char keep[IMAP_WATCH_NAME_MAX];
	bool safe = n <= sizeof(keep);
	uint64_t left = n;
	size_t kept = 0;
	char chunk[4096];
	while (left > 0) {
		size_t want =
		    left < sizeof(chunk) ? (size_t)left : sizeof(chunk);
		ssize_t got = mailstream_read(stream_of(w), chunk, want);
		if (got <= 0) {
			if (fm_net_failed(w->conn))
				return lost(w, _("reading a literal"), err);
			return fm_error_set(err, FM_ERR_TEMPORARY,
			                    _("%s closed the connection"),
			                    fm_net_host(w->conn));
		}
		for (ssize_t i = 0; safe && i < got; i++) {
			if (chunk[i] == '\0' || chunk[i] == '\r' ||
			    chunk[i] == '\n')
				safe = false;
			else
				keep[kept++] = chunk[i];
		}
		left -= (uint64_t)got;
	}
	if (!safe) {
		put(&w->resp, "{}", 2);
		return 0;
	}
	put(&w->resp, "\"", 1);
	for (size_t i = 0; i < kept; i++) {
		if (keep[i] == '"' || keep[i] == '\\')
			put(&w->resp, "\\", 1);
		put(&w->resp, &keep[i], 1);
	}
	put(&w->resp, "\"", 1);
	return 0;
}

/* One whole response into w->resp (its start, literals inlined). */
static int
read_response(struct fm_imap_watch *w, struct fm_error *err)
{
	fm_buf_reset(&w->resp);
	for (unsigned lits = 0;; lits++) {
		char *line = fm_net_read_line(w->conn, stream_of(w));
		if (line == NULL)
			return lost(w, _("waiting for new mail"), err);
		size_t len = strlen(line), at;
		uint64_t n;
		bool lit = imap_watch_literal(line, len, &n, &at);
		put(&w->resp, line, lit ? at : len);
		free(line);
		if (!lit)
			return 0;
		if (lits >= RESP_LITERALS)
			return fm_error_set(err, FM_ERR_PROTOCOL,
			                    _("%s sent a response with more "
			                      "than %d literals"),
			                    fm_net_host(w->conn),
			                    RESP_LITERALS);
		if (read_literal(w, n, err) < 0)
			return -1;
	}
}

/* The local folder of a mailbox name from the server, or NULL. */
static char *
local_of(struct fm_imap_watch *w, const char *server)
{
	if (fm_str_ieq(server, "INBOX"))
		return xstrdup("INBOX");
	bool ascii = true;
	for (const char *p = server; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			ascii = false;
	struct fm_error e;
	fm_error_clear(&e);
	char *utf8 = NULL, *local = NULL;
	if (!ascii)
		utf8 = xstrdup(server); /* Dovecot's NOTIFY: see the top */
	else if (fm_mutf7_to_utf8(server, &utf8, &e) < 0)
		return NULL;
	int r = fm_maildir_folder_path(utf8, w->have_delim ? w->delim : '/',
	                               &local, &e);
	free(utf8);
	if (r < 0 || fm_store_local_only(local)) {
		free(local);
		return NULL;
	}
	return local;
}

static void
tell(struct fm_imap_watch *w, const char *folder)
{
	w->news(w->ctx, folder);
}

/* A STATUS answer for a polled folder: news if a value moved. */
static bool
take_polled(struct fm_imap_watch *w, const struct imap_watch_resp *r)
{
	for (size_t i = 0; i < w->n_polled; i++) {
		struct polled *p = &w->polled[i];
		if (strcmp(p->server, r->mailbox) != 0)
			continue;
		bool changed = false;
		for (int k = 0; k < IMAP_ST_N; k++) {
			unsigned bit = 1u << k;
			if (!(r->st_have & bit))
				continue;
			if (p->known && (p->have & bit) && p->v[k] != r->st[k])
				changed = true;
			p->v[k] = r->st[k];
			p->have |= bit;
		}
		p->known = true;
		if (changed)
			tell(w, p->local);
		return true;
	}
	return false;
}

/* Acts on one response: news, or the end of the session. */
static int
handle(struct fm_imap_watch *w, const struct imap_watch_resp *r,
       struct fm_error *err)
{
	char shown[256];
	switch (r->kind) {
	case IMAP_WATCH_SELECTED:
		if (w->selected != NULL)
			tell(w, w->selected);
		return 0;
	case IMAP_WATCH_STATUS:
		if (r->named && take_polled(w, r))
			return 0;
		if (w->notifying) {
			char *local = r->named ? local_of(w, r->mailbox) : NULL;
			if (local != NULL || !r->named)
				tell(w, local);
			free(local);
		}
		return 0;
	case IMAP_WATCH_OVERFLOW:
		if (!w->notifying)
			return 0;
		w->overflowed = true;
		tell(w, NULL);
		return fm_error_set(err, FM_ERR_TEMPORARY,
		                    _("%s stopped its notifications (NOTIFY "
		                      "overflow)"),
		                    fm_net_host(w->conn));
	case IMAP_WATCH_BYE:
		fm_str_printable(w->resp.data, shown, sizeof(shown));
		return fm_error_set(err, FM_ERR_TEMPORARY,
		                    _("%s closed the connection (it said: %s)"),
		                    fm_net_host(w->conn), shown);
	case IMAP_WATCH_TAGGED:
		if (w->idling && strcmp(r->tag, w->idle_tag) == 0)
			w->idling = false; /* the server ended the IDLE */
		return 0;
	case IMAP_WATCH_CONTINUE:
	case IMAP_WATCH_OTHER:
	default:
		return 0;
	}
}

/* Reads, parses and handles the next response. */
static int
next(struct fm_imap_watch *w, struct imap_watch_resp *r, struct fm_error *err)
{
	if (read_response(w, err) < 0)
		return -1;
	imap_watch_parse(w->resp.data, r);
	return handle(w, r, err);
}

/* Sends "TAG cmd" with a tag of its own (into tag, 16 bytes). */
static int
send_cmd(struct fm_imap_watch *w, const char *cmd, char tag[16],
         struct fm_error *err)
{
	snprintf(tag, 16, "fmw%u", ++w->tag);
	char *line = xasprintf("%s %s\r\n", tag, cmd);
	int r = fm_net_write(w->conn, stream_of(w), line, strlen(line), err);
	free(line);
	return r;
}

/* Reads up to the tagged answer for tag: 0 and *ok_r, with the server's
 * words in text. */
static int
await(struct fm_imap_watch *w, const char *tag, bool *ok_r, char *text,
      size_t size, struct fm_error *err)
{
	for (;;) {
		struct imap_watch_resp r;
		if (next(w, &r, err) < 0)
			return -1;
		if (r.kind == IMAP_WATCH_TAGGED && strcmp(r.tag, tag) == 0) {
			*ok_r = r.ok;
			fm_str_printable(w->resp.data, text, size);
			return 0;
		}
	}
}

/* ------------------------------------------------------------------------
 * The session.
 */

int
fm_imap_watch_open(const struct fm_account *acct,
                   const struct fm_session_opts *o, fm_imap_news_fn news,
                   void *ctx, struct fm_imap_watch **w_r, struct fm_error *err)
{
	*w_r = NULL;
	struct fm_imap *imap = NULL;
	if (fm_imap_open(acct, o, &imap, err) < 0)
		return -1;
	struct fm_imap_watch *w = xcalloc(1, sizeof(*w));
	w->imap = imap;
	w->s = fm_imap_session(imap);
	w->conn = fm_imap_conn(imap);
	w->news = news;
	w->ctx = ctx;
	w->condstore = fm_imap_has_cap(imap, "CONDSTORE");
	fm_buf_init(&w->resp, RESP_MAX);
	*w_r = w;
	return 0;
}

void
fm_imap_watch_close(struct fm_imap_watch **wp)
{
	struct fm_imap_watch *w = *wp;
	if (w == NULL)
		return;
	if (!w->idling && !fm_net_failed(w->conn)) {
		/* A polite LOGOUT, but no waiting on a server that does not
		 * answer: this may be a reconnect after trouble. */
		char tag[16];
		struct fm_error err;
		fm_error_clear(&err);
		uint64_t until = fm_now_ms() + LOGOUT_MS;
		if (send_cmd(w, "LOGOUT", tag, &err) == 0) {
			struct imap_watch_resp r;
			while (fm_now_ms() < until &&
			       fm_net_wait_readable(
			           w->conn, stream_of(w),
			           (unsigned)(until - fm_now_ms())) == 1 &&
			       read_response(w, &err) == 0) {
				imap_watch_parse(w->resp.data, &r);
				if (r.kind == IMAP_WATCH_TAGGED &&
				    strcmp(r.tag, tag) == 0)
					break;
			}
		}
	}
	fm_imap_abort(&w->imap);
	for (size_t i = 0; i < w->n_polled; i++) {
		free(w->polled[i].local);
		free(w->polled[i].server);
	}
	free(w->polled);
	free(w->selected);
	fm_buf_free(&w->resp);
	free(w);
	*wp = NULL;
}

unsigned
fm_imap_watch_caps(const struct fm_imap_watch *w)
{
	unsigned caps = 0;
	if (fm_imap_has_cap(w->imap, "IDLE"))
		caps |= FM_WATCH_CAN_IDLE;
	if (fm_imap_has_cap(w->imap, "NOTIFY"))
		caps |= FM_WATCH_CAN_NOTIFY;
	return caps;
}

bool
fm_imap_watch_idling(const struct fm_imap_watch *w)
{
	return w->idling;
}

bool
fm_imap_watch_overflowed(const struct fm_imap_watch *w)
{
	return w->overflowed;
}

/* The hierarchy delimiter, from LIST "" "" (before any IDLE). */
static int
learn_delim(struct fm_imap_watch *w, struct fm_error *err)
{
	if (w->have_delim)
		return 0;
	clist *list = NULL;
	if (mailimap_list(w->s, "", "", &list) != MAILIMAP_NO_ERROR)
		return fm_imap_fail(
		    w->imap, _("asking for the hierarchy delimiter"), err);
	w->delim = '/';
	if (list != NULL && clist_begin(list) != NULL) {
		const struct mailimap_mailbox_list *mb =
		    clist_content(clist_begin(list));
		if (mb->mb_delimiter != '\0')
			w->delim = mb->mb_delimiter;
	}
	if (list != NULL)
		mailimap_list_result_free(list);
	w->have_delim = true;
	return 0;
}

/* The server's name of a local folder as a quoted string for a command
 * (newly allocated), and the name itself in *server_r if asked; NULL if
 * it has none that can be written so. */
static char *
quoted_mailbox(struct fm_imap_watch *w, const char *local, char **server_r)
{
	char *name = NULL;
	struct fm_error e;
	fm_error_clear(&e);
	if (fm_imap_mailbox_name(local, w->delim, &name, &e) < 0)
		return NULL;
	char *q = imap_quoted(name);
	if (q == NULL) {
		free(name);
		return NULL;
	}
	if (server_r != NULL)
		*server_r = name;
	else
		free(name);
	return q;
}

static int
examine(struct fm_imap_watch *w, const char *folder, struct fm_error *err)
{
	char *name = NULL;
	if (fm_imap_mailbox_name(folder, w->delim, &name, err) < 0)
		return -1;
	int r = mailimap_examine(w->s, name);
	free(name);
	if (r != MAILIMAP_NO_ERROR) {
		char what[512];
		snprintf(what, sizeof(what), _("opening the folder %s"),
		         folder);
		return fm_imap_fail(w->imap, what, err);
	}
	free(w->selected);
	w->selected = xstrdup(folder);
	return 0;
}

int
fm_imap_watch_examine(struct fm_imap_watch *w, const char *folder,
                      struct fm_error *err)
{
	if (learn_delim(w, err) < 0)
		return -1;
	return examine(w, folder, err);
}

/* "NOTIFY SET (selected EVENTS) [(OTHERS EVENTS)]". */
static char *
notify_command(struct fm_imap_watch *w, const char *const *folders, size_t n,
               bool flags_elsewhere)
{
	static const char all[] = "(MessageNew MessageExpunge FlagChange)";
	const char *events =
	    flags_elsewhere ? all : "(MessageNew MessageExpunge)";
	struct fm_buf b;
	fm_buf_init(&b, NOTIFY_CMD_MAX);
	fm_buf_printf(&b, "NOTIFY SET (selected %s)", all);
	if (folders == NULL) {
		fm_buf_printf(&b, " (personal %s)", events);
		return fm_buf_steal(&b);
	}
	/* Room for the rest of the command is kept aside. */
	struct fm_buf names;
	fm_buf_init(&names, NOTIFY_CMD_MAX - 256);
	bool fits = true;
	for (size_t i = 0; i < n && fits; i++) {
		if (strcmp(folders[i], "INBOX") == 0)
			continue;
		char *q = quoted_mailbox(w, folders[i], NULL);
		if (q == NULL) {
			fm_log_debug("NOTIFY: %s has no name to send",
			             folders[i]);
			continue;
		}
		fits =
		    (names.len == 0 || fm_buf_append_char(&names, ' ') == 0) &&
		    fm_buf_append_str(&names, q) == 0;
		free(q);
	}
	if (!fits)
		fm_buf_printf(&b, " (personal %s)", events);
	else if (names.len > 0)
		fm_buf_printf(&b, " (mailboxes (%s) %s)", names.data, events);
	fm_buf_free(&names);
	return fm_buf_steal(&b);
}

int
fm_imap_watch_notify(struct fm_imap_watch *w, const char *const *folders,
                     size_t n, struct fm_error *err)
{
	if (learn_delim(w, err) < 0 || examine(w, "INBOX", err) < 0)
		return -1;
	char tag[16], text[256];
	bool ok;
	if (w->condstore && (send_cmd(w, "ENABLE CONDSTORE", tag, err) < 0 ||
	                     await(w, tag, &ok, text, sizeof(text), err) < 0))
		return -1;
	for (int round = 0; round < 2; round++) {
		char *cmd = notify_command(w, folders, n, round == 0);
		int r = send_cmd(w, cmd, tag, err);
		free(cmd);
		if (r < 0 || await(w, tag, &ok, text, sizeof(text), err) < 0)
			return -1;
		if (ok) {
			w->notifying = true;
			return 0;
		}
	}
	fm_error_set(err, FM_ERR_PROTOCOL, _("%s refused NOTIFY (it said: %s)"),
	             fm_net_host(w->conn), text);
	return 1;
}

static struct polled *
polled_of(struct fm_imap_watch *w, const char *local)
{
	for (size_t i = 0; i < w->n_polled; i++)
		if (strcmp(w->polled[i].local, local) == 0)
			return &w->polled[i];
	return NULL;
}

int
fm_imap_watch_poll(struct fm_imap_watch *w, const char *const *folders,
                   size_t n, struct fm_error *err)
{
	if (n == 0)
		return 0;
	if (learn_delim(w, err) < 0)
		return -1;
	const char *atts = w->condstore
	                       ? "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN "
	                         "HIGHESTMODSEQ)"
	                       : "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)";
	struct fm_buf cmds;
	fm_buf_init(&cmds, POLL_BATCH * (2 * IMAP_WATCH_NAME_MAX + 128));
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0;) {
		fm_buf_reset(&cmds);
		char tag[16] = "";
		size_t sent = 0;
		for (; i < n && sent < POLL_BATCH; i++) {
			struct polled *p = polled_of(w, folders[i]);
			char *server = NULL;
			char *q = quoted_mailbox(w, folders[i],
			                         p == NULL ? &server : NULL);
			if (q == NULL)
				continue;
			if (p == NULL) {
				w->polled =
				    xreallocarray(w->polled, w->n_polled + 1,
				                  sizeof(*w->polled));
				p = &w->polled[w->n_polled++];
				memset(p, 0, sizeof(*p));
				p->local = xstrdup(folders[i]);
				p->server = server;
			}
			char next_tag[16];
			snprintf(next_tag, sizeof(next_tag), "fmw%u",
			         w->tag + 1);
			if (fm_buf_printf(&cmds, "%s STATUS %s %s\r\n",
			                  next_tag, q, atts) == 0) {
				w->tag++;
				memcpy(tag, next_tag, sizeof(tag));
				sent++;
			}
			free(q);
		}
		if (sent == 0)
			continue;
		bool ok;
		char text[256];
		if (fm_net_write(w->conn, stream_of(w), cmds.data, cmds.len,
		                 err) < 0 ||
		    await(w, tag, &ok, text, sizeof(text), err) < 0)
			ret = -1;
	}
	fm_buf_free(&cmds);
	return ret;
}

int
fm_imap_watch_idle(struct fm_imap_watch *w, struct fm_error *err)
{
	uint64_t now = fm_now_ms();
	if (now - w->burst_start > 60000) {
		w->burst_start = now;
		w->burst = 0;
	}
	if (++w->burst > IDLE_BURST)
		return fm_error_set(err, FM_ERR_PROTOCOL,
		                    _("%s keeps ending IDLE at once"),
		                    fm_net_host(w->conn));
	if (send_cmd(w, "IDLE", w->idle_tag, err) < 0)
		return -1;
	/* Until "+ idling": untagged responses may come first (the reason
	 * libetpan's own IDLE is not used). */
	for (;;) {
		struct imap_watch_resp r;
		if (next(w, &r, err) < 0)
			return -1;
		if (r.kind == IMAP_WATCH_CONTINUE) {
			w->idling = true;
			return 0;
		}
		if (r.kind == IMAP_WATCH_TAGGED &&
		    strcmp(r.tag, w->idle_tag) == 0) {
			if (r.ok)
				return 0; /* over before it began */
			char shown[256];
			fm_str_printable(w->resp.data, shown, sizeof(shown));
			return fm_error_set(err, FM_ERR_PROTOCOL,
			                    _("%s refused IDLE: %s"),
			                    fm_net_host(w->conn), shown);
		}
	}
}

int
fm_imap_watch_wait(struct fm_imap_watch *w, unsigned ms, struct fm_error *err)
{
	int r = fm_net_wait_readable(w->conn, stream_of(w), ms);
	if (r < 0)
		return lost(w, _("waiting for new mail"), err);
	if (r == 0)
		return 0;
	struct imap_watch_resp resp;
	return next(w, &resp, err) < 0 ? -1 : 1;
}

int
fm_imap_watch_done(struct fm_imap_watch *w, unsigned ms, struct fm_error *err)
{
	if (!w->idling)
		return 0;
	if (fm_net_write(w->conn, stream_of(w), "DONE\r\n", 6, err) < 0)
		return -1;
	uint64_t until = fm_now_ms() + ms;
	while (w->idling) {
		uint64_t now = fm_now_ms();
		int r = now < until
		            ? fm_net_wait_readable(w->conn, stream_of(w),
		                                   (unsigned)(until - now))
		            : 0;
		if (r < 0)
			return lost(w, _("ending IDLE"), err);
		if (r == 0)
			return fm_error_set(err, FM_ERR_TEMPORARY,
			                    _("%s did not answer within %u s; "
			                      "the connection seems lost"),
			                    fm_net_host(w->conn), ms / 1000);
		struct imap_watch_resp resp;
		if (next(w, &resp, err) < 0)
			return -1;
	}
	return 0;
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The Outbox: queued messages in the account's Outbox maildir, their
 * envelopes and states in one record file beside them, and the pass that
 * sends what is due over one session.
 *
 * Where the state lives. One record file per Outbox (Outbox/.fulmar-outbox,
 * replaced atomically with fm_file_replace), not flags in the maildir file
 * names: a state needs more than a flag can say (the envelope, which for
 * `fulmar send` with recipient arguments is not in the headers; the
 * server's reply; the back-off), maildir flags are the user's and the
 * server's (the sync engine journals them), and one file lets a single
 * write record two steps at once: "message N sent" together with "message
 * N+1 sending", which is the write a pass must make before every DATA
 * anyway. The file stays small (one line per queued message).
 *
 * The order of writes is what makes it crash-safe:
 * - Queueing writes the record (queued) first, then delivers the message
 *   tagged with the record's id. A record whose message is missing was
 *   never queued (the caller got no success): it is dropped.
 * - Sending records "sending" before DATA. A record found "sending" at the
 *   next open is "possibly sent": never sent again without the user.
 * - After the 250, "sent" is recorded (with the next message's "sending",
 *   or at the end of the pass), then the message is filed in Sent (a
 *   rename in the store, not journaled: the Outbox exists only here), then
 *   the record goes. A "sent" record found at open is finished then.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"
#include "mime/mime.h"
#include "smtp/smtp.h"
#include "store/maildir.h"
#include "store/store.h"

#define OUTBOX FM_STORE_OUTBOX
#define STATE_FILE ".fulmar-outbox"
#define MAGIC "fulmar-outbox"
#define STATE_VERSION 1
#define STATE_MAX (64u << 20)
/* The largest message fulmar queues or reads back. */
#define MESSAGE_MAX (256u << 20)
/* Back-off: one minute, doubled per attempt, at most four hours; after
 * five days a message that still cannot go fails. */
#define BACKOFF_FIRST 60
#define BACKOFF_MAX (4 * 3600)
#define GIVE_UP_AFTER (5 * 86400)

static const char *const state_names[] = {
    [FM_OUTBOX_QUEUED] = "queued", [FM_OUTBOX_SENDING] = "sending",
    [FM_OUTBOX_SENT] = "sent",     [FM_OUTBOX_DEFERRED] = "deferred",
    [FM_OUTBOX_FAILED] = "failed", [FM_OUTBOX_POSSIBLY_SENT] = "possibly-sent",
    [FM_OUTBOX_HELD] = "held",
};

const char *
fm_outbox_state_name(enum fm_outbox_state state)
{
	return (size_t)state < FM_ARRAY_LEN(state_names) ? state_names[state]
	                                                 : "?";
}

char *
fm_smtp_sent_folder(const struct fm_account *acct, const char *data_dir)
{
	if (acct->save_sent == FM_SAVE_SENT_NO)
		return NULL;
	if (acct->protocol != FM_PROTO_IMAP)
		return xstrdup("Sent");
	if (acct->save_sent == FM_SAVE_SENT_LOCAL)
		return xstrdup(FM_STORE_LOCAL_ONLY "/Sent");
	char *f = fm_store_special_use(data_dir, acct->name, "Sent");
	return f != NULL ? f : xstrdup("Sent");
}

static void
entry_clear(struct fm_outbox_entry *e)
{
	free(e->id);
	free(e->from);
	for (size_t i = 0; i < e->n_rcpts; i++)
		free(e->rcpts[i]);
	free(e->rcpts);
	free(e->reply);
	free(e->base);
	free(e->path);
	memset(e, 0, sizeof(*e));
}

void
fm_outbox_entries_free(struct fm_outbox_entry *entries, size_t n)
{
	for (size_t i = 0; i < n; i++)
		entry_clear(&entries[i]);
	free(entries);
}

static void
entry_copy(struct fm_outbox_entry *dst, const struct fm_outbox_entry *src)
{
	*dst = *src;
	dst->id = xstrdup(src->id);
	dst->from = src->from ? xstrdup(src->from) : NULL;
	dst->rcpts = xcalloc(src->n_rcpts + 1, sizeof(*dst->rcpts));
	for (size_t i = 0; i < src->n_rcpts; i++)
		dst->rcpts[i] = xstrdup(src->rcpts[i]);
	dst->reply = src->reply ? xstrdup(src->reply) : NULL;
	dst->base = src->base ? xstrdup(src->base) : NULL;
	dst->path = src->path ? xstrdup(src->path) : NULL;
}

static void
set_reply(struct fm_outbox_entry *e, const char *text)
{
	free(e->reply);
	e->reply = text != NULL && text[0] != '\0' ? xstrdup(text) : NULL;
}

/* ------------------------------------------------------------------------
 * The record file.
 */

struct outbox {
	const struct fm_account *acct;
	struct fm_store *store;
	char *dir;  /* the Outbox maildir */
	char *path; /* its record file */
	struct fm_outbox_entry *e;
	size_t n;
};

static void
outbox_free(struct outbox *ob)
{
	fm_outbox_entries_free(ob->e, ob->n);
	free(ob->dir);
	free(ob->path);
	memset(ob, 0, sizeof(*ob));
}

static char *
key_of(const char *id)
{
	return xasprintf("outbox:%s", id);
}

static int
outbox_save(struct outbox *ob, struct fm_error *err)
{
	struct fm_buf body;
	fm_buf_init(&body, STATE_MAX);
	size_t count = 0;
	int ret = -1;
	for (size_t i = 0; i < ob->n; i++) {
		const struct fm_outbox_entry *e = &ob->e[i];
		if (e->state == FM_OUTBOX_HELD)
			continue; /* found again at every open */
		struct fm_buf rc;
		fm_buf_init(&rc, STATE_MAX);
		for (size_t k = 0; k < e->n_rcpts; k++)
			fm_buf_printf(&rc, "%s%s", k ? "\n" : "", e->rcpts[k]);
		size_t before = body.len;
		fm_record_put(&body, e->id);
		fm_buf_printf(&body, " %s %u %lld %lld ",
		              fm_outbox_state_name(e->state), e->attempts,
		              (long long)e->queued_at, (long long)e->next_try);
		fm_record_put(&body, e->base);
		fm_buf_append_char(&body, ' ');
		fm_record_put(&body, e->from);
		fm_buf_append_char(&body, ' ');
		fm_record_put(&body, rc.data);
		fm_buf_append_char(&body, ' ');
		fm_record_put(&body, e->reply);
		int full = fm_buf_append_char(&body, '\n');
		fm_buf_free(&rc);
		if (full < 0 || body.len == before) {
			fm_error_set(err, FM_ERR_LOCAL,
			             _("the Outbox of %s holds too much to "
			               "record"),
			             ob->acct->name);
			goto out;
		}
		count++;
	}
	char digest[65];
	fm_record_digest(body.data, body.len, digest);
	char header[160];
	int hlen = snprintf(header, sizeof(header), "%s %d %zu %zu %s\n", MAGIC,
	                    STATE_VERSION, count, body.len, digest);
	struct iovec iov[2] = {
	    {.iov_base = header, .iov_len = (size_t)hlen},
	    {.iov_base = body.data, .iov_len = body.len},
	};
	ret = fm_file_replace(ob->path, iov, 2, err);
out:
	fm_buf_free(&body);
	return ret;
}

static int
parse_state(const char *s, enum fm_outbox_state *state_r)
{
	for (size_t i = 0; i < FM_ARRAY_LEN(state_names); i++)
		if (i != FM_OUTBOX_HELD && strcmp(s, state_names[i]) == 0) {
			*state_r = (enum fm_outbox_state)i;
			return 0;
		}
	return -1;
}

static int
parse_line(char *line, struct fm_outbox_entry *e)
{
	char *f[9];
	char *id, *base, *from, *rcpts, *reply;
	uint64_t attempts, queued, next;
	memset(e, 0, sizeof(*e));
	if (fm_record_split(line, f, 9) < 0 || fm_record_unescape(f[0], &id) ||
	    id == NULL || parse_state(f[1], &e->state) < 0 ||
	    fm_record_parse_u64(f[2], 10, 1000000, &attempts) < 0 ||
	    fm_record_parse_u64(f[3], 10, INT64_MAX, &queued) < 0 ||
	    fm_record_parse_u64(f[4], 10, INT64_MAX, &next) < 0 ||
	    fm_record_unescape(f[5], &base) < 0 ||
	    fm_record_unescape(f[6], &from) < 0 || from == NULL ||
	    fm_record_unescape(f[7], &rcpts) < 0 || rcpts == NULL ||
	    fm_record_unescape(f[8], &reply) < 0)
		return -1;
	e->id = xstrdup(id);
	e->attempts = (unsigned)attempts;
	e->queued_at = (int64_t)queued;
	e->next_try = (int64_t)next;
	e->base = base ? xstrdup(base) : NULL;
	e->from = xstrdup(from);
	e->reply = reply ? xstrdup(reply) : NULL;
	for (char *p = rcpts; p != NULL;) {
		char *nl = strchr(p, '\n');
		if (nl != NULL)
			*nl = '\0';
		e->rcpts =
		    xreallocarray(e->rcpts, e->n_rcpts + 2, sizeof(*e->rcpts));
		e->rcpts[e->n_rcpts++] = xstrdup(p);
		e->rcpts[e->n_rcpts] = NULL;
		p = nl != NULL ? nl + 1 : NULL;
	}
	return 0;
}

/* Reads the record file; 0, or -1 with damaged set when it cannot be
 * trusted (then nothing is loaded). */
static int
outbox_read(struct outbox *ob, bool *damaged, struct fm_error *err)
{
	*damaged = false;
	char *data = NULL;
	size_t len = 0;
	int r = fm_record_read_file(ob->path, STATE_MAX, &data, &len, err);
	if (r < 0)
		return -1;
	if (r == 1)
		return 0;
	char *nl = memchr(data, '\n', len);
	char *h[5];
	uint64_t version, count, body_len;
	size_t want = 0;
	if (nl == NULL)
		goto bad;
	*nl = '\0';
	if (fm_record_split(data, h, 5) < 0 || strcmp(h[0], MAGIC) != 0 ||
	    fm_record_parse_u64(h[1], 10, 1000, &version) < 0 ||
	    version != STATE_VERSION ||
	    fm_record_parse_u64(h[2], 10, UINT32_MAX, &count) < 0 ||
	    fm_record_parse_u64(h[3], 10, STATE_MAX, &body_len) < 0)
		goto bad;
	char *body = nl + 1;
	size_t have = len - (size_t)(body - data);
	char digest[65];
	fm_record_digest(body, have, digest);
	if (have != body_len || strcmp(digest, h[4]) != 0)
		goto bad;
	want = (size_t)count;
	for (char *line = body; *line != '\0';) {
		char *end = strchr(line, '\n');
		if (end == NULL)
			goto bad;
		*end = '\0';
		struct fm_outbox_entry e;
		if (parse_line(line, &e) < 0) {
			entry_clear(&e);
			goto bad;
		}
		ob->e = xreallocarray(ob->e, ob->n + 1, sizeof(*ob->e));
		ob->e[ob->n++] = e;
		line = end + 1;
	}
	if (ob->n != want)
		goto bad;
	free(data);
	return 0;
bad:
	free(data);
	fm_outbox_entries_free(ob->e, ob->n);
	ob->e = NULL;
	ob->n = 0;
	*damaged = true;
	return fm_error_set(err, FM_ERR_LOCAL,
	                    _("the Outbox record %s is damaged"), ob->path);
}

/* ------------------------------------------------------------------------
 * Opening: recovery after a crash, and messages without a record.
 */

/* Finds the entry's message in the store; sets base and path. */
static int
locate_message(struct outbox *ob, struct fm_outbox_entry *e,
               struct fm_error *err)
{
	free(e->path);
	e->path = NULL;
	if (e->base == NULL) {
		char *key = key_of(e->id);
		e->base =
		    fm_store_find_key(ob->store, ob->acct->name, OUTBOX, key);
		free(key);
		if (e->base == NULL)
			return 0;
	}
	struct fm_store_info info;
	int r = fm_store_lookup(ob->store, ob->acct->name, OUTBOX, e->base,
	                        &info, err);
	if (r < 0)
		return -1;
	if (r == 1)
		e->path = fm_path_join(ob->dir, info.file);
	free(info.file);
	return 0;
}

/* Files a sent message (Sent, or nowhere with save_sent = no) and takes
 * it out of the Outbox. Idempotent: a message already gone is done. */
static int
file_sent(struct outbox *ob, struct fm_outbox_entry *e, struct fm_error *err)
{
	if (e->path == NULL)
		return 0;
	char *sent =
	    fm_smtp_sent_folder(ob->acct, fm_store_data_dir(ob->store));
	int r = sent != NULL ? fm_store_move_local(ob->store, ob->acct->name,
	                                           OUTBOX, e->base, sent, err)
	                     : fm_store_delete_local(ob->store, ob->acct->name,
	                                             OUTBOX, e->base, err);
	free(sent);
	if (r < 0)
		return -1;
	free(e->path);
	e->path = NULL;
	return 0;
}

static void
remove_entry(struct outbox *ob, size_t i)
{
	entry_clear(&ob->e[i]);
	memmove(&ob->e[i], &ob->e[i + 1], (ob->n - i - 1) * sizeof(*ob->e));
	ob->n--;
}

static int
cmp_base(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Messages in the Outbox that no record names: held for the user. */
static int
find_orphans(struct outbox *ob, struct fm_error *err)
{
	char **known = xcalloc(ob->n + 1, sizeof(*known));
	size_t n_known = 0;
	for (size_t i = 0; i < ob->n; i++)
		if (ob->e[i].base != NULL)
			known[n_known++] = ob->e[i].base;
	qsort(known, n_known, sizeof(*known), cmp_base);
	int ret = 0;
	static const char *const subs[] = {"cur", "new"};
	for (size_t s = 0; s < 2 && ret == 0; s++) {
		char *sub = fm_path_join(ob->dir, subs[s]);
		DIR *d = opendir(sub);
		if (d == NULL) {
			if (errno != ENOENT)
				ret = fm_error_errno(err, FM_ERR_LOCAL, errno,
				                     _("cannot read %s"), sub);
			free(sub);
			continue;
		}
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			size_t bl;
			const char *b = fm_maildir_base(de->d_name, &bl);
			char *base = xstrndup(b, bl);
			if (bsearch(&base, known, n_known, sizeof(*known),
			            cmp_base) != NULL) {
				free(base);
				continue;
			}
			char *path = xasprintf("%s/%s", sub, de->d_name);
			struct stat st;
			struct fm_outbox_entry e = {
			    .id = xstrdup(base),
			    .state = FM_OUTBOX_HELD,
			    .queued_at =
			        stat(path, &st) == 0 ? (int64_t)st.st_mtime : 0,
			    .base = base,
			    .path = path,
			    .rcpts = xcalloc(1, sizeof(char *)),
			};
			ob->e = xreallocarray(ob->e, ob->n + 1, sizeof(*ob->e));
			ob->e[ob->n++] = e;
		}
		closedir(d);
		free(sub);
	}
	free(known);
	return ret;
}

static int
outbox_open(const struct fm_account *acct, struct fm_store *store,
            struct outbox *ob, struct fm_error *err)
{
	memset(ob, 0, sizeof(*ob));
	ob->acct = acct;
	ob->store = store;
	ob->dir =
	    fm_store_folder_dir(fm_store_data_dir(store), acct->name, OUTBOX);
	ob->path = fm_path_join(ob->dir, STATE_FILE);
	if (fm_store_ensure_folder(store, acct->name, OUTBOX, err) < 0)
		goto fail;
	char *tmp = xasprintf("%s.tmp", ob->path);
	unlink(tmp);
	free(tmp);
	bool damaged = false;
	if (outbox_read(ob, &damaged, err) < 0) {
		if (!damaged)
			goto fail;
		/* Keep it for a human; every message becomes held, so that
		 * nothing is sent twice on a guess. */
		char *aside = xasprintf("%s.damaged", ob->path);
		fm_log_warn("%s; kept as %s, and the messages of the Outbox "
		            "are held until you decide",
		            err->user, aside);
		rename(ob->path, aside);
		free(aside);
		fm_error_clear(err);
	}
	bool dirty = false;
	for (size_t i = 0; i < ob->n;) {
		struct fm_outbox_entry *e = &ob->e[i];
		if (locate_message(ob, e, err) < 0)
			goto fail;
		if (e->state == FM_OUTBOX_SENT) {
			if (file_sent(ob, e, err) < 0)
				goto fail;
			remove_entry(ob, i);
			dirty = true;
			continue;
		}
		if (e->path == NULL) {
			/* Never queued (the queueing died before the
			 * message was written), or deleted by the user. */
			if (e->state != FM_OUTBOX_QUEUED)
				fm_log_info("outbox %s: message %s is gone; "
				            "forgetting it",
				            acct->name, e->id);
			remove_entry(ob, i);
			dirty = true;
			continue;
		}
		if (e->state == FM_OUTBOX_SENDING) {
			e->state = FM_OUTBOX_POSSIBLY_SENT;
			set_reply(e, _("fulmar stopped while the message was "
			               "being handed to the server: it may "
			               "have been sent. Check the recipients' "
			               "copy or your Sent folder on the "
			               "server, then send it again (--retry) "
			               "or drop it (--drop)"));
			dirty = true;
		}
		i++;
	}
	if (find_orphans(ob, err) < 0)
		goto fail;
	if (dirty && outbox_save(ob, err) < 0)
		goto fail;
	return 0;
fail:
	outbox_free(ob);
	return -1;
}

static struct fm_outbox_entry *
outbox_find(struct outbox *ob, const char *id, struct fm_error *err)
{
	for (size_t i = 0; i < ob->n; i++)
		if (strcmp(ob->e[i].id, id) == 0)
			return &ob->e[i];
	fm_error_set(err, FM_ERR_USAGE,
	             _("the Outbox of %s has no message %s; see 'fulmar send "
	               "--queue'"),
	             ob->acct->name, id);
	return NULL;
}

/* ------------------------------------------------------------------------
 * Queueing, listing, the user's decisions.
 */

static char *
new_id(void)
{
	unsigned char r[6];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		uint64_t t = fm_now_ms() ^ ((uint64_t)getpid() << 20);
		memcpy(r, &t, sizeof(r));
	}
	char *id = xmalloc(2 * sizeof(r) + 1);
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(id + 2 * i, 3, "%02x", r[i]);
	return id;
}

static int queue_as(const struct fm_account *acct, struct fm_store *store,
                    char *id, const char *from, const char *const *rcpts,
                    size_t n_rcpts, const char *data, size_t len, char **id_r,
                    struct fm_error *err);

int
fm_smtp_queue(const struct fm_account *acct, struct fm_store *store,
              const char *from, const char *const *rcpts, size_t n_rcpts,
              const char *data, size_t len, char **id_r, struct fm_error *err)
{
	return queue_as(acct, store, new_id(), from, rcpts, n_rcpts, data, len,
	                id_r, err);
}

int
fm_smtp_queue_as(const struct fm_account *acct, struct fm_store *store,
                 const char *id, const char *from, const char *const *rcpts,
                 size_t n_rcpts, const char *data, size_t len,
                 struct fm_error *err)
{
	return queue_as(acct, store, xstrdup(id), from, rcpts, n_rcpts, data,
	                len, NULL, err);
}

/* Takes id. An id already in the Outbox is queued already: 0. */
static int
queue_as(const struct fm_account *acct, struct fm_store *store, char *id,
         const char *from, const char *const *rcpts, size_t n_rcpts,
         const char *data, size_t len, char **id_r, struct fm_error *err)
{
	if (id_r != NULL)
		*id_r = NULL;
	int bad = 0;
	if (n_rcpts == 0)
		bad = fm_error_set(err, FM_ERR_USAGE,
		                   _("the message has no recipients"));
	else if (len > MESSAGE_MAX)
		bad = fm_error_set(err, FM_ERR_USAGE,
		                   _("the message is larger than %u MB"),
		                   MESSAGE_MAX >> 20);
	else if (fm_smtp_address_check(from, err) < 0)
		bad = -1;
	for (size_t i = 0; bad == 0 && i < n_rcpts; i++)
		if (fm_smtp_address_check(rcpts[i], err) < 0)
			bad = -1;
	if (bad < 0) {
		free(id);
		return -1;
	}
	struct outbox ob;
	if (outbox_open(acct, store, &ob, err) < 0) {
		free(id);
		return -1;
	}
	for (size_t i = 0; i < ob.n; i++)
		if (strcmp(ob.e[i].id, id) == 0) {
			/* Queued already (an import run again). */
			free(id);
			outbox_free(&ob);
			return 0;
		}
	struct fm_outbox_entry e = {
	    .id = id,
	    .state = FM_OUTBOX_QUEUED,
	    .queued_at = (int64_t)time(NULL),
	    .from = xstrdup(from),
	    .rcpts = xcalloc(n_rcpts + 1, sizeof(char *)),
	    .n_rcpts = n_rcpts,
	};
	for (size_t i = 0; i < n_rcpts; i++)
		e.rcpts[i] = xstrdup(rcpts[i]);
	ob.e = xreallocarray(ob.e, ob.n + 1, sizeof(*ob.e));
	ob.e[ob.n++] = e;
	struct fm_outbox_entry *ne = &ob.e[ob.n - 1];
	int ret = -1;
	/* The record first: a record without its message is dropped at the
	 * next open; a message without its record would be held. */
	if (outbox_save(&ob, err) < 0)
		goto out;
	char *key = key_of(ne->id);
	char *base = NULL;
	int r = fm_store_deliver(store, acct->name, OUTBOX, key, data, len,
	                         FM_MAILDIR_SEEN, &base, err);
	free(key);
	if (r < 0)
		goto out;
	ne->base = base;
	if (id_r != NULL)
		*id_r = xstrdup(ne->id);
	ret = 0;
out:
	outbox_free(&ob);
	return ret;
}

static int
cmp_entry(const void *a, const void *b)
{
	const struct fm_outbox_entry *x = a, *y = b;
	if (x->queued_at != y->queued_at)
		return x->queued_at < y->queued_at ? -1 : 1;
	return strcmp(x->id, y->id);
}

int
fm_smtp_outbox_list(const struct fm_account *acct, struct fm_store *store,
                    struct fm_outbox_entry **entries_r, size_t *n_r,
                    struct fm_error *err)
{
	*entries_r = NULL;
	*n_r = 0;
	struct outbox ob;
	if (outbox_open(acct, store, &ob, err) < 0)
		return -1;
	if (ob.n > 1)
		qsort(ob.e, ob.n, sizeof(*ob.e), cmp_entry);
	*entries_r = ob.e;
	*n_r = ob.n;
	ob.e = NULL;
	ob.n = 0;
	outbox_free(&ob);
	return 0;
}

/* A held message adopted: recipients from its headers, sender the
 * account's address. */
static int
adopt(struct outbox *ob, struct fm_outbox_entry *e, struct fm_error *err)
{
	char *data = NULL;
	size_t len = 0;
	int r = fm_record_read_file(e->path, MESSAGE_MAX, &data, &len, err);
	if (r != 0) {
		if (r == 1)
			fm_error_set(err, FM_ERR_LOCAL, _("%s is gone"),
			             e->path);
		return -1;
	}
	struct fm_mime_addresses list = {0};
	r = fm_mime_recipients(data, len, &list, err);
	free(data);
	if (r < 0)
		return -1;
	if (list.n == 0) {
		fm_mime_addresses_free(&list);
		return fm_error_set(err, FM_ERR_USAGE,
		                    _("message %s names no recipient in To, "
		                      "Cc or Bcc"),
		                    e->id);
	}
	for (size_t i = 0; i < list.n; i++)
		if (fm_smtp_address_check(list.items[i].addr, err) < 0) {
			fm_mime_addresses_free(&list);
			return -1;
		}
	e->rcpts = xreallocarray(e->rcpts, list.n + 1, sizeof(*e->rcpts));
	for (size_t i = 0; i < list.n; i++)
		e->rcpts[i] = xstrdup(list.items[i].addr);
	e->rcpts[list.n] = NULL;
	e->n_rcpts = list.n;
	fm_mime_addresses_free(&list);
	free(e->from);
	e->from = xstrdup(ob->acct->email);
	free(e->id);
	e->id = new_id();
	e->queued_at = (int64_t)time(NULL);
	return 0;
}

int
fm_smtp_outbox_retry(const struct fm_account *acct, struct fm_store *store,
                     const char *id, struct fm_error *err)
{
	struct outbox ob;
	if (outbox_open(acct, store, &ob, err) < 0)
		return -1;
	int ret = -1;
	struct fm_outbox_entry *e = outbox_find(&ob, id, err);
	if (e == NULL)
		goto out;
	if (e->state == FM_OUTBOX_HELD && adopt(&ob, e, err) < 0)
		goto out;
	e->state = FM_OUTBOX_QUEUED;
	e->next_try = 0;
	ret = outbox_save(&ob, err);
out:
	outbox_free(&ob);
	return ret;
}

int
fm_smtp_outbox_drop(const struct fm_account *acct, struct fm_store *store,
                    const char *id, struct fm_error *err)
{
	struct outbox ob;
	if (outbox_open(acct, store, &ob, err) < 0)
		return -1;
	int ret = -1;
	struct fm_outbox_entry *e = outbox_find(&ob, id, err);
	if (e == NULL)
		goto out;
	/* The message first: a record without it is dropped at open. */
	if (e->path != NULL &&
	    fm_store_delete_local(store, acct->name, OUTBOX, e->base, err) < 0)
		goto out;
	remove_entry(&ob, (size_t)(e - ob.e));
	ret = outbox_save(&ob, err);
out:
	outbox_free(&ob);
	return ret;
}

/* ------------------------------------------------------------------------
 * Sending.
 */

/* Notes, for the sentence, that the TCP step failed: a connect time-out
 * on a submission port is usually a network that blocks it. */
struct watch {
	const struct fm_net_observer *inner;
	bool tcp_failed;
};

static void
watch_step(void *ctx, const char *step, unsigned ms, bool ok,
           const char *detail)
{
	struct watch *w = ctx;
	if (!ok && strcmp(step, "TCP") == 0)
		w->tcp_failed = true;
	if (w->inner != NULL && w->inner->step != NULL)
		w->inner->step(w->inner->ctx, step, ms, ok, detail);
}

static int
open_session(const struct fm_account *a, const struct fm_session_opts *o,
             struct fm_smtp **smtp_r, struct fm_error *err)
{
	struct watch w = {o->observer, false};
	struct fm_net_observer obs = {watch_step, &w};
	struct fm_session_opts so = *o;
	so.observer = &obs;
	uint64_t t0 = fm_now_ms();
	if (fm_smtp_open(a, &so, smtp_r, err) == 0)
		return 0;
	unsigned limit = o->limits.connect_timeout_ms;
	if (w.tcp_failed && err->cls == FM_ERR_TEMPORARY && limit > 0 &&
	    fm_now_ms() - t0 >= limit - limit / 10 &&
	    !(a->smtp_port == 465 && a->smtp_tls == FM_TLS_IMPLICIT))
		fm_error_set(err, FM_ERR_TEMPORARY,
		             _("connecting to %s:%u timed out after %u s: "
		               "this network may block port %u (many block "
		               "mail ports); try smtp_port = 465 with "
		               "smtp_tls = implicit. The message stays in "
		               "the Outbox"),
		             a->smtp_host, a->smtp_port, limit / 1000,
		             a->smtp_port);
	return -1;
}

/* A temporary failure: tried again after a back-off, until it is too
 * old. */
static void
defer(struct fm_outbox_entry *e, const struct fm_error *why, int64_t now)
{
	e->attempts++;
	if (now - e->queued_at >= GIVE_UP_AFTER) {
		e->state = FM_OUTBOX_FAILED;
		char *text =
		    xasprintf(_("could not be sent for %d days; the last "
		                "reason: %s"),
		              GIVE_UP_AFTER / 86400, why->user);
		set_reply(e, text);
		free(text);
		return;
	}
	unsigned shift = e->attempts > 1 ? e->attempts - 1 : 0;
	int64_t delay =
	    shift >= 16 ? BACKOFF_MAX : (int64_t)BACKOFF_FIRST << shift;
	if (delay > BACKOFF_MAX)
		delay = BACKOFF_MAX;
	e->state = FM_OUTBOX_DEFERRED;
	e->next_try = now + delay;
	set_reply(e, why->user);
}

struct sending {
	struct outbox *ob;
	struct fm_outbox_entry *e;
};

/* Right before DATA: "sending" on disk, together with every state
 * changed since the last write. */
static int
before_data(void *ctx, struct fm_error *err)
{
	struct sending *s = ctx;
	enum fm_outbox_state was = s->e->state;
	s->e->state = FM_OUTBOX_SENDING;
	if (outbox_save(s->ob, err) < 0) {
		s->e->state = was;
		return -1;
	}
	return 0;
}

static bool
is_due(const struct fm_outbox_entry *e, bool force, int64_t now)
{
	return e->state == FM_OUTBOX_QUEUED ||
	       (e->state == FM_OUTBOX_DEFERRED &&
	        (force || e->next_try <= now));
}

int
fm_smtp_flush_outbox(const struct fm_account *acct, struct fm_store *store,
                     const struct fm_session_opts *o,
                     const struct fm_smtp_flush_opts *fo,
                     struct fm_smtp_stats *stats, struct fm_error *err)
{
	static const struct fm_smtp_flush_opts none = {0};
	if (fo == NULL)
		fo = &none;
	memset(stats, 0, sizeof(*stats));
	int64_t now = fo->now != 0 ? fo->now : (int64_t)time(NULL);
	struct outbox ob;
	if (outbox_open(acct, store, &ob, err) < 0)
		return -1;
	if (ob.n > 1)
		qsort(ob.e, ob.n, sizeof(*ob.e), cmp_entry);
	/* Ids, not pointers: entries move when others are removed. */
	char **due = xcalloc(ob.n + 1, sizeof(*due));
	size_t n_due = 0;
	for (size_t i = 0; i < ob.n; i++)
		if (is_due(&ob.e[i], fo->force, now))
			due[n_due++] = xstrdup(ob.e[i].id);
	/* What each message tried came to, for the report. */
	struct fm_outbox_entry *tried = xcalloc(n_due + 1, sizeof(*tried));
	struct fm_error *why = xcalloc(n_due + 1, sizeof(*why));
	size_t n_tried = 0;
	struct fm_smtp *smtp = NULL;
	int ret = -1;
	struct fm_error ignore;
	if (n_due == 0) {
		ret = 0;
		goto out;
	}
	if (acct->smtp_host == NULL) {
		fm_error_set(err, FM_ERR_CONFIG,
		             _("account %s cannot send: set smtp_host in the "
		               "config"),
		             acct->name);
		goto out;
	}
	if (open_session(acct, o, &smtp, err) < 0) {
		/* Nothing went out: every message due waits, with the
		 * reason. */
		for (size_t k = 0; k < n_due; k++) {
			struct fm_outbox_entry *e =
			    outbox_find(&ob, due[k], &ignore);
			if (e == NULL)
				continue;
			defer(e, err, now);
			if (e->state == FM_OUTBOX_FAILED)
				stats->failed++;
			else
				stats->deferred++;
			entry_copy(&tried[n_tried], e);
			why[n_tried++] = *err;
		}
		fm_error_clear(&ignore);
		if (outbox_save(&ob, &ignore) < 0)
			fm_log_warn("%s", ignore.user);
		goto out;
	}
	bool stopped = false;
	for (size_t k = 0; k < n_due && !stopped; k++) {
		struct fm_outbox_entry *e = outbox_find(&ob, due[k], &ignore);
		if (e == NULL || e->path == NULL)
			continue;
		char *data = NULL;
		size_t len = 0;
		int r =
		    fm_record_read_file(e->path, MESSAGE_MAX, &data, &len, err);
		if (r != 0) {
			if (r == 1)
				continue; /* gone meanwhile */
			goto out;
		}
		size_t clen = 0;
		char *copy = fm_mime_strip_bcc(data, len, &clen);
		free(data);
		struct sending sc = {&ob, e};
		struct fm_smtp_result res;
		r = fm_smtp_submit(smtp, acct, e->from,
		                   (const char *const *)e->rcpts, e->n_rcpts,
		                   copy, clen, before_data, &sc, &res);
		free(copy);
		if (r < 0 && res.err.cls == FM_ERR_LOCAL) {
			/* "sending" could not be recorded: stop, untried. */
			*err = res.err;
			fm_smtp_result_free(&res);
			goto out;
		}
		switch (res.outcome) {
		case FM_SMTP_SENT:
			e->state = FM_OUTBOX_SENT;
			e->attempts++;
			set_reply(e, res.reply);
			stats->sent++;
			break;
		case FM_SMTP_DEFERRED:
			defer(e, &res.err, now);
			if (e->state == FM_OUTBOX_FAILED)
				stats->failed++;
			else
				stats->deferred++;
			break;
		case FM_SMTP_FAILED:
			e->state = FM_OUTBOX_FAILED;
			e->attempts++;
			set_reply(e, res.err.user);
			stats->failed++;
			break;
		case FM_SMTP_UNKNOWN:
			e->state = FM_OUTBOX_POSSIBLY_SENT;
			e->attempts++;
			set_reply(e, res.err.user);
			stats->possibly_sent++;
			break;
		}
		entry_copy(&tried[n_tried], e);
		why[n_tried++] = res.err;
		if (r < 0) {
			/* The link broke: the rest waits for the next
			 * pass. */
			*err = res.err;
			stopped = true;
		}
		fm_smtp_result_free(&res);
	}
	fm_smtp_close(&smtp);
	/* "sent" on disk before the messages move: a crash in between
	 * finishes the filing at the next open. */
	if (outbox_save(&ob, err) < 0)
		goto out;
	for (size_t i = 0; i < ob.n;) {
		if (ob.e[i].state != FM_OUTBOX_SENT) {
			i++;
			continue;
		}
		if (file_sent(&ob, &ob.e[i], err) < 0)
			goto out;
		remove_entry(&ob, i);
	}
	if (outbox_save(&ob, err) < 0)
		goto out;
	ret = stopped ? -1 : 0;
out:
	fm_smtp_close(&smtp);
	for (size_t i = 0; i < n_tried; i++) {
		if (fo->report != NULL)
			fo->report(fo->ctx, &tried[i],
			           tried[i].state == FM_OUTBOX_SENT ? NULL
			                                            : &why[i]);
		entry_clear(&tried[i]);
	}
	free(tried);
	free(why);
	for (size_t k = 0; k < n_due; k++)
		free(due[k]);
	free(due);
	stats->left = ob.n;
	outbox_free(&ob);
	return ret;
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Internal to pop3/: the session struct and the transaction layer that
 * session.c, fetch.c and body.c share.
 *
 * libetpan opens the session (greeting, CAPA, STLS, login); after that
 * every command goes through wire.c, which writes commands and reads the
 * responses straight from the stream: message bodies are dot-unstuffed
 * with memchr into one reusable buffer (libetpan reads a body line by
 * line into a fresh string per message), and with PIPELINING (RFC 2449)
 * several commands are in flight at once, so the server sends the next
 * message while fulmar stores the last one. Everything is bounded: a
 * response line by POP3_LINE_MAX, a body by the connection's
 * max_literal, a listing by POP3_MAX_MESSAGES; the connection's guard
 * bounds every line underneath. */
#ifndef FULMAR_POP3_INT_H
#define FULMAR_POP3_INT_H

#include "pop3/pop3.h"

/* The longest status or listing line we accept (RFC 2449 allows 512). */
#define POP3_LINE_MAX 4096
/* The most messages a listing may name. */
#define POP3_MAX_MESSAGES 1000000
/* Read-ahead: more than the stream's own buffer, so that big reads go
 * from the connection into it without a copy in between. */
#define POP3_IN_SIZE (128 * 1024)

struct fm_pop3 {
	const struct fm_account *acct;
	mailpop3 *pop3;
	mailstream *stream;
	struct fm_net_conn *conn;
	char **caps; /* CAPA lines (name and parameters), NULL-terminated */
	size_t n_caps;
	bool healthy;
	/* The transaction layer (wire.c). */
	char *in; /* read-ahead: in[in_pos, in_len) is unread */
	size_t in_pos, in_len;
	uint64_t max_body; /* bound on one multiline response */
	char text[256];    /* the last status line's text, printable */
	bool quit_done;    /* QUIT answered: nothing more to say */
};

/* Whether CAPA named the capability (case-insensitive). */
bool pop3_has_cap(const struct fm_pop3 *s, const char *name);

/* Queues one command line (CRLF added); pop3_flush() sends what is
 * queued. The commands are protocol words and numbers, never server
 * data. */
int pop3_send(struct fm_pop3 *s, struct fm_error *err, const char *fmt, ...)
    FM_PRINTF(3, 4);
int pop3_flush(struct fm_pop3 *s, struct fm_error *err);
/* Reads one status line: 1 for +OK, 0 for -ERR (its text, printable, in
 * s->text), -1 with err when the link failed or the line is not a status
 * line. what names the command for the error ("RETR"). */
int pop3_status(struct fm_pop3 *s, const char *what, struct fm_error *err);
/* Reads the rest of a multiline response (after its +OK) up to the
 * terminating dot line, dot-unstuffed, appending it to out, whose max
 * must not exceed s->max_body: a longer response fails (FM_ERR_PROTOCOL)
 * before more is held. */
int pop3_body(struct fm_pop3 *s, const char *what, struct fm_buf *out,
              struct fm_error *err);
/* Requests in flight at once when the server has PIPELINING. */
#define POP3_WINDOW 8
/* Runs n requests in order: send(ctx, i, err) queues the command of
 * request i, recv(ctx, i, err) reads its answer. With PIPELINING up to
 * POP3_WINDOW are in flight, else one at a time. Stops at the first
 * failure (the session is then out of step: abort it). */
typedef int pop3_req_fn(void *ctx, size_t i, struct fm_error *err);
int pop3_run(struct fm_pop3 *s, size_t n, pop3_req_fn *send, pop3_req_fn *recv,
             void *ctx, struct fm_error *err);
/* Sends QUIT and reads its answer. 0 when the server confirmed (its
 * deletions are done), -1 with err otherwise. The session is over
 * either way. */
int pop3_quit(struct fm_pop3 *s, struct fm_error *err);
/* The error for a -ERR to what: "HOST refused WHAT (it said: ...)". */
int pop3_refused(struct fm_pop3 *s, const char *what, struct fm_error *err);

/* One message as LIST and UIDL name it in this session. */
struct pop3_msg {
	unsigned num;  /* message number */
	uint64_t size; /* octets, as LIST says */
	char *uidl;    /* the UIDL, or NULL if UIDL did not name it; with
	                * pop3_no_uidl = message-id, the key derived from the
	                * headers (pop3_keys_from_headers) */
	bool deleted;  /* DELE sent in this session */
};

/* LIST and UIDL (pipelined when the server allows): the messages in
 * number order. *have_uidl_r is false when the server refused UIDL (then
 * every uidl is NULL). Free with pop3_msgs_free(). */
int pop3_listing(struct fm_pop3 *s, struct pop3_msg **msgs_r, size_t *n_r,
                 bool *have_uidl_r, struct fm_error *err);
/* The same in two steps, so that the caller can work while the server
 * prepares the listing: _ask sends the commands, _read reads the
 * answers. */
int pop3_listing_ask(struct fm_pop3 *s, struct fm_error *err);
int pop3_listing_read(struct fm_pop3 *s, struct pop3_msg **msgs_r, size_t *n_r,
                      bool *have_uidl_r, struct fm_error *err);
void pop3_msgs_free(struct pop3_msg *msgs, size_t n);

/* The quick look of a pass that expects nothing new: STAT and UIDL
 * (pipelined when allowed), which servers answer faster than LIST, and
 * enough to compare with the record of the last pass (pop3_seen_*). If
 * the pass must go on, pop3_listing_after_quick() asks LIST and gives
 * the listing pop3_listing() would, with the UIDLs already read. */
struct pop3_quick {
	uint64_t count, octets; /* STAT */
	struct pop3_msg *msgs;  /* UIDL, in its order; sizes 0 */
	size_t n;
	bool have_uidl;
};
int pop3_quick_ask(struct fm_pop3 *s, struct fm_error *err);
int pop3_quick_read(struct fm_pop3 *s, struct pop3_quick *q,
                    struct fm_error *err);
int pop3_listing_after_quick(struct fm_pop3 *s, struct pop3_quick *q,
                             struct pop3_msg **msgs_r, size_t *n_r,
                             struct fm_error *err);
void pop3_quick_free(struct pop3_quick *q);

/* For a server without UIDL and pop3_no_uidl = message-id: fetches the
 * header of every message (TOP n 0, pipelined) and names each by its
 * Message-ID and size ("mid:HASH:SIZE"; "hdr:HASH:SIZE" from the whole
 * header block when it has no Message-ID; a repeat of the same key in
 * one listing gets "#2", "#3"...). A server without TOP fails with
 * FM_ERR_PERMANENT. only: if not NULL, only messages of that size are
 * named (the others keep a NULL uidl). */
int pop3_keys_from_headers(struct fm_pop3 *s, struct pop3_msg *msgs, size_t n,
                           const uint64_t *only, struct fm_error *err);
/* The sentence for a server without UIDL when the account has no
 * fallback. */
int pop3_err_no_uidl(const struct fm_pop3 *s, struct fm_error *err);

/* The keywords fulmar keeps in a POP3 state entry (sync/state.h): PARTIAL
 * when the local copy is the header stub; SIZE_PREFIX and the size LIST
 * gave when it was downloaded, to tell a reused UIDL without reading the
 * folder. */
#define POP3_KW_PARTIAL "fulmar:partial"
#define POP3_KW_SIZE "fulmar:size="
struct pop3_kw {
	bool partial;
	bool has_size;
	uint64_t size;
};
void pop3_kw_parse(const char *keywords, struct pop3_kw *kw);
/* The keywords string for kw (newly allocated; NULL when empty). */
char *pop3_kw_format(const struct pop3_kw *kw);

/* The POP3 folder's state: its path (newly allocated), and loading it
 * (creating the folder if missing; a damaged file is reported in the log
 * and replaced by an empty state, since the tags in the file names still
 * say what is stored). The store must hold the account. */
struct fm_store;
struct fm_state;
char *pop3_state_path(struct fm_store *store, const struct fm_account *acct);
/* The two halves of pop3_state_open(): making sure the folder exists (on
 * the store's thread), and, after fm_state_load() returned r (any
 * thread), turning a damaged file into an empty state with a warning. */
int pop3_state_folder(struct fm_store *store, const struct fm_account *acct,
                      struct fm_error *err);
int pop3_state_loaded(int r, bool damaged, struct fm_state **state_r,
                      struct fm_error *err);
int pop3_state_open(struct fm_store *store, const struct fm_account *acct,
                    const char *path, struct fm_state **state_r,
                    struct fm_error *err);
/* The record of the last complete pass (seen.c): when a pass finds the
 * same listing under the same policy, the state unchanged since, no
 * deletion due and nothing in the journal, there is nothing to do and
 * the state need not be read. pop3_seen_digest() sums up the policy,
 * the UIDLs in order (of the messages not deleted) and what STAT says
 * (count and octets; the sizes of single messages are left out so that
 * the quick look needs no LIST: a reused UIDL shows in the total, and
 * only reuses whose sizes cancel out would wait for the next listing
 * that changes, which compares every size); pop3_seen_check() is true when the
 * record at seen_path is intact, names the state file as it is now and its
 * deadline is after now, and then gives the digest it holds; pop3_seen_write()
 * records a complete pass (best effort: a cache, not fsynced);
 * pop3_seen_forget() removes the record. */
void pop3_seen_digest(const struct fm_account *acct,
                      const struct pop3_msg *msgs, size_t n, uint64_t count,
                      uint64_t octets, char out[65]);
bool pop3_seen_check(const char *seen_path, const char *state_path, int64_t now,
                     char digest_r[65]);
void pop3_seen_write(const char *seen_path, const char *state_path,
                     const char *digest, int64_t deadline);
void pop3_seen_forget(const char *seen_path);

/* The one folder POP3 downloads into. */
const char *pop3_folder(void);

#endif

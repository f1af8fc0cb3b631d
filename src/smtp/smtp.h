/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * smtp — SMTP submission over libetpan: a session opened the secure way
 * (greeting, EHLO, STARTTLS, EHLO again, AUTH), the harmless check for
 * `fulmar check`, one message's transaction (MAIL, RCPT, DATA) with the
 * server's replies turned into sentences, and the Outbox: the queue of
 * messages waiting to be sent, kept in the account's Outbox maildir.
 *
 * A session belongs to one thread (the account worker's). The Outbox
 * functions take the store, and so belong to the thread that holds it.
 */
#ifndef FULMAR_SMTP_H
#define FULMAR_SMTP_H

#include <libetpan/libetpan.h>

#include "conf/conf.h"
#include "net/net.h"

struct fm_smtp;

/* Connects to the account's submission server (smtp_host, smtp_port,
 * smtp_tls) and authenticates as smtp_user. Refuses what fm_imap_open()
 * refuses. Steps go to o->observer. */
int fm_smtp_open(const struct fm_account *acct, const struct fm_session_opts *o,
                 struct fm_smtp **smtp_r, struct fm_error *err);
/* QUIT if healthy, then frees. NULL-safe; sets *smtp to NULL. */
void fm_smtp_close(struct fm_smtp **smtp);
/* The harmless check: EHLO again after authentication, reported as one
 * step with the extensions offered (SIZE, PIPELINING, ...). */
int fm_smtp_check(struct fm_smtp *smtp, const struct fm_session_opts *o,
                  struct fm_error *err);
mailsmtp *fm_smtp_session(struct fm_smtp *smtp);

/* ------------------------------------------------------------------------
 * One message.
 */

/* Whether addr may go into MAIL FROM or RCPT TO: local@domain, ASCII
 * (libetpan cannot ask for SMTPUTF8), at most 254 bytes, and none of CR,
 * LF, space, '<', '>' or another control character (libetpan pastes the
 * address into the command unchecked: these would inject commands).
 * FM_ERR_USAGE with a sentence naming the address otherwise. */
int fm_smtp_address_check(const char *addr, struct fm_error *err);

enum fm_smtp_outcome {
	FM_SMTP_SENT,     /* the server took it (250 after the data) */
	FM_SMTP_DEFERRED, /* not sent; try again later */
	FM_SMTP_FAILED,   /* refused for good: do not retry as it is */
	FM_SMTP_UNKNOWN,  /* the link broke after the data went out: the
	                   * server may have taken it */
};

/* What the server said to one RCPT TO. */
struct fm_smtp_rcpt {
	char *addr;
	int code;    /* reply code; 250 when accepted */
	char *reply; /* "550 5.1.1 ...", printable, one line */
};

struct fm_smtp_result {
	enum fm_smtp_outcome outcome;
	struct fm_error err;        /* unless SENT: what happened, what to do */
	int code;                   /* the deciding reply's code, 0 if none */
	char reply[512];            /* that reply on one line ("" if none) */
	struct fm_smtp_rcpt *rcpts; /* one per recipient, in order, once
	                             * MAIL FROM was accepted */
	size_t n_rcpts;
};
void fm_smtp_result_free(struct fm_smtp_result *res);

/* Called once every recipient is accepted, right before DATA: the
 * Outbox records "sending" there. Failing it stops the message (RSET). */
typedef int fm_smtp_before_data_fn(void *ctx, struct fm_error *err);

/* Sends one message on an open session: MAIL FROM:<from> (with SIZE= when
 * the server announced SIZE), RCPT TO for each recipient, then DATA with
 * data (len bytes, LF or CRLF line ends; sent as it is, so Bcc must be
 * gone already). A recipient refused makes the whole message refused
 * (RSET; nobody gets it), with every refused address named. Fills *res
 * (free it with fm_smtp_result_free()). Returns 0 when the session can
 * carry the next message, -1 when it cannot (the link broke; or
 * before_data failed, then res->err says why). */
int fm_smtp_submit(struct fm_smtp *smtp, const struct fm_account *acct,
                   const char *from, const char *const *rcpts, size_t n_rcpts,
                   const char *data, size_t len,
                   fm_smtp_before_data_fn *before_data, void *ctx,
                   struct fm_smtp_result *res);

/* ------------------------------------------------------------------------
 * The Outbox. Every outgoing message is first written into the account's
 * Outbox maildir, with its envelope in a state record beside it
 * (Outbox/.fulmar-outbox), and only then sent. A message moves through
 * queued -> sending -> sent (then filed in Sent and gone from the Outbox)
 * or deferred (a temporary failure: tried again with back-off) or failed
 * (refused for good: kept with the server's reply until the user acts).
 * "sending" is recorded durably before DATA; a message found "sending"
 * when the Outbox is opened again (fulmar died, the machine crashed) may
 * or may not have reached the server, so it becomes "possibly sent" and
 * is never sent again unless the user says so (fm_smtp_outbox_retry).
 * A message in the Outbox without a record (put there by something else,
 * or after the record file was damaged) is "held" for the user too.
 *
 * Every function takes the store (which holds the account's lock: one
 * writer per account) and belongs to the store's thread.
 */
struct fm_store;

enum fm_outbox_state {
	FM_OUTBOX_QUEUED,
	FM_OUTBOX_SENDING,
	FM_OUTBOX_SENT,
	FM_OUTBOX_DEFERRED,
	FM_OUTBOX_FAILED,
	FM_OUTBOX_POSSIBLY_SENT,
	FM_OUTBOX_HELD,
};
/* "queued", "sending", "sent", "deferred", "failed", "possibly-sent",
 * "held". */
const char *fm_outbox_state_name(enum fm_outbox_state state);

/* One message of the Outbox. Strings belong to the entry. */
struct fm_outbox_entry {
	char *id; /* what the user names it by (--retry ID) */
	enum fm_outbox_state state;
	unsigned attempts;
	int64_t queued_at; /* seconds since the epoch */
	int64_t next_try;  /* deferred: not before this */
	char *from;        /* envelope sender */
	char **rcpts;      /* envelope recipients */
	size_t n_rcpts;
	char *reply; /* the last failure's sentence and server reply, or
	              * NULL */
	char *base;  /* the message's base name in Outbox; NULL if gone */
	char *path;  /* its file, absolute; NULL if gone */
};
void fm_outbox_entries_free(struct fm_outbox_entry *entries, size_t n);

/* The folder that receives the copy of each sent message, per save_sent,
 * or NULL for save_sent = no. `server` on an IMAP account: the folder the
 * server marks \Sent (as the last sync found it, else "Sent"); the sync
 * engine uploads the copy. `local` on an IMAP account: "Local only/Sent", in
 * the local-only "Local only" hierarchy the sync engine never touches. POP3
 * accounts: "Sent". Newly allocated. */
char *fm_smtp_sent_folder(const struct fm_account *acct, const char *data_dir);

/* Queues a message: the envelope record first (durable), then the
 * message into the Outbox (durable, flagged seen, so that its Sent copy
 * is too). Addresses are checked with fm_smtp_address_check(); data is
 * kept as it is (Bcc included: it is stripped when sending). *id_r (may
 * be NULL) gets the new entry's id; caller frees. */
int fm_smtp_queue(const struct fm_account *acct, struct fm_store *store,
                  const char *from, const char *const *rcpts, size_t n_rcpts,
                  const char *data, size_t len, char **id_r,
                  struct fm_error *err);

/* fm_smtp_queue() under a given id (letters, digits, '.', '-'); a
 * message whose id is in the Outbox already is not queued again, so an
 * import that a crash interrupted can run again. */
int fm_smtp_queue_as(const struct fm_account *acct, struct fm_store *store,
                     const char *id, const char *from, const char *const *rcpts,
                     size_t n_rcpts, const char *data, size_t len,
                     struct fm_error *err);

/* The spool: how a message reaches the Outbox while another fulmar holds
 * the account (fulmar watch, the UI). fm_smtp_spool() writes it, with its
 * envelope, atomically into mail/ACCOUNT/.fulmar/spool/ without the store;
 * the holder's next send/receive pass moves it into the Outbox
 * (fm_smtp_spool_import, under the store) before it flushes. *id_r (may
 * be NULL) gets its id; caller frees. */
int fm_smtp_spool(const char *data_dir, const struct fm_account *acct,
                  const char *from, const char *const *rcpts, size_t n_rcpts,
                  const char *data, size_t len, char **id_r,
                  struct fm_error *err);
/* Queues every spooled message of acct (fm_smtp_queue_as, under its spool
 * id), then removes its spool file. *n_r (may be NULL): how many. */
int fm_smtp_spool_import(const struct fm_account *acct, struct fm_store *store,
                         size_t *n_r, struct fm_error *err);

/* Every message in the account's Outbox, oldest first. */
int fm_smtp_outbox_list(const struct fm_account *acct, struct fm_store *store,
                        struct fm_outbox_entry **entries_r, size_t *n_r,
                        struct fm_error *err);

/* The user's decisions. Retry: a failed, deferred, possibly-sent or held
 * message goes back to queued, due now (a held one takes its recipients
 * from its To, Cc and Bcc headers and its sender from the account).
 * Drop: the message leaves the Outbox for good. FM_ERR_USAGE when no
 * message has that id. */
int fm_smtp_outbox_retry(const struct fm_account *acct, struct fm_store *store,
                         const char *id, struct fm_error *err);
int fm_smtp_outbox_drop(const struct fm_account *acct, struct fm_store *store,
                        const char *id, struct fm_error *err);

struct fm_smtp_flush_opts {
	/* Deferred messages are due only after their back-off; force sends
	 * them now (the user asked). */
	bool force;
	int64_t now; /* seconds since the epoch; 0: the clock */
	/* Told about each message tried, after its new state is recorded.
	 * err: why it was not sent (NULL when sent). */
	void (*report)(void *ctx, const struct fm_outbox_entry *e,
	               const struct fm_error *err);
	void *ctx;
};

struct fm_smtp_stats {
	size_t sent;
	size_t deferred;
	size_t failed;
	size_t possibly_sent;
	size_t left; /* still in the Outbox afterwards, any state */
};

/* Sends what is due in the account's Outbox over one session: queued
 * messages, and deferred ones whose back-off is over. Each sent message
 * is filed in fm_smtp_sent_folder() (or dropped with save_sent = no)
 * only after the server's 250. Returns 0 when every message tried got
 * an answer (sent, deferred or failed, see stats); -1 with err when the
 * pass stopped early: the session could not open (the messages due are
 * deferred with that reason: offline, credentials...), the link broke,
 * or a local write failed. The sync pass calls this for every account
 * with smtp_host; store must hold the account. */
int fm_smtp_flush_outbox(const struct fm_account *acct, struct fm_store *store,
                         const struct fm_session_opts *o,
                         const struct fm_smtp_flush_opts *fo,
                         struct fm_smtp_stats *stats, struct fm_error *err);

#endif

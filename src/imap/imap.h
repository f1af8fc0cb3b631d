/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * imap — IMAP4 sessions over libetpan. This first part opens a session the
 * secure way (greeting, capabilities, STARTTLS, authentication) and runs
 * the harmless commands `fulmar check` uses; synchronisation builds on it.
 *
 * A session belongs to one thread (the account worker's).
 */
#ifndef FULMAR_IMAP_H
#define FULMAR_IMAP_H

#include <libetpan/libetpan.h>

#include "conf/conf.h"
#include "net/net.h"

struct fm_imap;

/* Connects to the account's IMAP server and authenticates. Refuses, with
 * an error whose class says what to do: a missing or refused STARTTLS, data
 * injected before TLS, a PREAUTH greeting where TLS was required, an
 * untrusted certificate, credentials on an unencrypted link (unless
 * allow_plaintext_login), LOGINDISABLED. Each step is reported to
 * o->observer. On success *imap_r is the session (free with
 * fm_imap_close). */
int fm_imap_open(const struct fm_account *acct, const struct fm_session_opts *o,
                 struct fm_imap **imap_r, struct fm_error *err);

/* Says LOGOUT if the connection is healthy, then frees everything.
 * NULL-safe; sets *imap to NULL. After fm_imap_logout_send(), it reads the
 * answer instead of asking again. */
void fm_imap_close(struct fm_imap **imap);

/* Sends LOGOUT behind commands whose answers are still to be read, so
 * that its answer is already there when fm_imap_close() wants it; the
 * session takes no command after it. */
int fm_imap_logout_send(struct fm_imap *imap, struct fm_error *err);

/* Closes without LOGOUT (after a failure); NULL-safe. */
void fm_imap_abort(struct fm_imap **imap);

/* The harmless check: LIST "" "*" and STATUS INBOX (MESSAGES UNSEEN),
 * reported to o->observer as one step. */
int fm_imap_check(struct fm_imap *imap, const struct fm_session_opts *o,
                  struct fm_error *err);

/* The libetpan session, for the modules built on this one. */
mailimap *fm_imap_session(struct fm_imap *imap);
struct fm_net_conn *fm_imap_conn(struct fm_imap *imap);

/* Whether the server offers the capability name (case-insensitive). */
bool fm_imap_has_cap(const struct fm_imap *imap, const char *name);

/* ENABLE name (RFC 5161) when the server offers both ENABLE and name;
 * *on_r says whether the server enabled it. A refusal (NO, BAD) is no failure:
 * the session goes on without; -1 when the link failed or the answer did
 * not parse. Authenticated
 * state only, before the first SELECT. Enabling changes what the server
 * says for the rest of the session: after ENABLE QRESYNC an expunge comes
 * as VANISHED, which libetpan 1.9.4 does not count in sel_exists, so only
 * a session that reads EXISTS nowhere but straight after a SELECT may
 * enable it (the sync pass does; check, fetch_body and watch do not). */
int fm_imap_enable(struct fm_imap *imap, const char *name, bool *on_r,
                   struct fm_error *err);

/* Fills err for a command that failed: the network's sentence when the
 * link failed, else FM_ERR_PROTOCOL naming what (a gerund phrase such as
 * "selecting INBOX") and the server's text. Returns -1. */
int fm_imap_fail(const struct fm_imap *imap, const char *what,
                 struct fm_error *err);

/* The server's name (modified UTF-7) of a local folder path ("a/b"),
 * given the server's hierarchy delimiter; INBOX stays INBOX. */
int fm_imap_mailbox_name(const char *local, char delim, char **name_r,
                         struct fm_error *err);
/* The same, asking the server for its delimiter (LIST "" ""). */
int fm_imap_server_name(struct fm_imap *imap, const char *local, char **name_r,
                        struct fm_error *err);

/* ------------------------------------------------------------------------
 * Synchronisation (sync.c): one send/receive pass over an account's
 * folders, both ways, on top of the pure planner (sync/plan.h).
 */

struct fm_store;

/* Progress of a pass, for a terminal or the UI. */
struct fm_imap_progress {
	/* A folder starts (total: actions planned for it). */
	void (*folder)(void *ctx, const char *folder, size_t actions);
	/* Messages moved so far in the current folder, and their bytes. */
	void (*transfer)(void *ctx, const char *folder, size_t done,
	                 size_t total, uint64_t bytes);
	/* A new server message is durable here (may be NULL). */
	void (*stored)(void *ctx, const char *folder, const char *base);
	void *ctx;
};

struct fm_imap_sync_opts {
	/* Local folder names to sync ("INBOX", "Lists/fulmar"); NULL: every
	 * folder the account's `folders` patterns select. */
	const char *const *folders;
	size_t n_folders;
	bool force; /* run plans past the mass-deletion guard */
	const struct fm_imap_progress *progress;
};

struct fm_imap_stats {
	size_t folders;         /* folders synced */
	size_t downloaded;      /* messages fetched whole */
	size_t uploaded;        /* APPENDed */
	size_t moved;           /* local moves replayed on the server */
	size_t flags_local;     /* messages whose local flags changed */
	size_t flags_remote;    /* messages whose server flags changed */
	size_t expunged_local;  /* removed here (gone on the server) */
	size_t expunged_remote; /* expunged on the server (gone here) */
	size_t created;         /* folders created on either side */
	size_t guarded;         /* folders stopped by the deletion guard */
	uint64_t bytes;         /* message bytes moved either way */
};

/* One pass over acct's folders with the store (which must have acct):
 * replays local moves from the journal as server moves, creates folders
 * missing on either side, then plans and runs each folder. A folder the
 * guard stops is left unchanged and the pass goes on with the others; the
 * pass then fails with FM_ERR_PERMANENT naming it and `--force`. Network
 * and server failures end the pass (FM_ERR_TEMPORARY etc.); what was done
 * until then is recorded, and the next pass converges. Account worker
 * thread (the store must not be used by another thread meanwhile). */
int fm_imap_sync(const struct fm_account *acct, struct fm_store *store,
                 const struct fm_session_opts *o,
                 const struct fm_imap_sync_opts *so,
                 struct fm_imap_stats *stats, struct fm_error *err);

/* Completes a message stored as headers only (download = headers, or
 * max SIZE): fetches it whole and replaces the stub atomically. A whole
 * message, or one that never came from the server, is left alone
 * (returns 0). */
int fm_imap_fetch_body(const struct fm_account *acct, struct fm_store *store,
                       const struct fm_session_opts *o, const char *folder,
                       const char *base, struct fm_error *err);

/* ------------------------------------------------------------------------
 * Push (watch.c): a session that waits for the server to say that
 * something changed, in one of three ways:
 *  - NOTIFY (RFC 5465): INBOX selected, every other watched folder
 *    reported by untagged STATUS; one connection for the whole account;
 *  - IDLE (RFC 2177) on one EXAMINEd folder, optionally with other
 *    folders asked for their STATUS now and then;
 *  - STATUS polling alone, for servers without IDLE.
 * IDLE is run by hand (libetpan 1.9.4's mailimap_idle loses responses
 * that precede "+ idling") and waits count data already buffered by
 * libetpan or OpenSSL. Everything the server says is read as hostile:
 * lines are bounded by the connection's guard, literals are skipped (a
 * short one may name a mailbox), responses that do not parse are ignored.
 * One thread per watch; fm_net_cancel on the session's cancel_fd ends any
 * wait at once (FM_ERR_CANCELLED).
 */
struct fm_imap_watch;

/* News, told on the watching thread as soon as a response says it:
 * folder is the local name of the folder that changed, or NULL when the
 * server said that something changed but not where (a STATUS whose
 * mailbox does not parse, a NOTIFY overflow). A folder fulmar does not
 * sync (a name it cannot map, a local-only name) is no news. The same
 * news may be told more than once (EXISTS and FETCH for one message). */
typedef void (*fm_imap_news_fn)(void *ctx, const char *folder);

/* Connects and authenticates (o->label names it in the trace); news
 * and ctx are kept for the watch's life. */
int fm_imap_watch_open(const struct fm_account *acct,
                       const struct fm_session_opts *o, fm_imap_news_fn news,
                       void *ctx, struct fm_imap_watch **w_r,
                       struct fm_error *err);
/* Says LOGOUT when the link is sound and no IDLE is running (without
 * waiting long for the answer), then frees everything. NULL-safe; sets *w
 * to NULL. */
void fm_imap_watch_close(struct fm_imap_watch **w);

enum {
	FM_WATCH_CAN_IDLE = 1u << 0,
	FM_WATCH_CAN_NOTIFY = 1u << 1,
};
/* What the server offers, as FM_WATCH_CAN_* bits. */
unsigned fm_imap_watch_caps(const struct fm_imap_watch *w);

/* NOTIFY mode: EXAMINE INBOX, ENABLE CONDSTORE (when offered, so that
 * flag changes in other folders show as a new HIGHESTMODSEQ), then
 * NOTIFY SET with MessageNew, MessageExpunge and FlagChange for INBOX and
 * for the folders (local names; INBOX among them is skipped), or for
 * every personal folder when folders is NULL. If the server refuses
 * FlagChange for the other folders, they are asked for without it.
 * 0: notifications are on; 1: the server refused NOTIFY (err says what
 * it said; INBOX stays EXAMINEd, so the session may IDLE on it); -1: the
 * link failed. */
int fm_imap_watch_notify(struct fm_imap_watch *w, const char *const *folders,
                         size_t n, struct fm_error *err);
/* EXAMINEs a local folder, to IDLE on it. */
int fm_imap_watch_examine(struct fm_imap_watch *w, const char *folder,
                          struct fm_error *err);
/* Asks the STATUS of the folders (local names; pipelined) and compares
 * each with what the same watch saw last time: a difference is news. The
 * first answer for a folder is only remembered. A folder the server does
 * not know is skipped. Not during IDLE. */
int fm_imap_watch_poll(struct fm_imap_watch *w, const char *const *folders,
                       size_t n, struct fm_error *err);

/* Starts IDLE (reading what comes before the server's "+"). Fails with
 * FM_ERR_PROTOCOL when the server refuses, or ends IDLE at once too
 * often to be of use. */
int fm_imap_watch_idle(struct fm_imap_watch *w, struct fm_error *err);
/* Waits up to ms for one response and handles it: 1 when one came, 0
 * when the time passed quietly, -1 with err when the link failed, the
 * server said BYE, a NOTIFY overflowed (reconnect) or the wait was
 * cancelled. Also outside IDLE (a server may talk at any time). */
int fm_imap_watch_wait(struct fm_imap_watch *w, unsigned ms,
                       struct fm_error *err);
/* Whether an IDLE is running (the server may end one on its own). */
bool fm_imap_watch_idling(const struct fm_imap_watch *w);
/* Whether the server gave up its NOTIFY ("* OK [NOTIFICATIONOVERFLOW]",
 * which also ends the wait with an error). */
bool fm_imap_watch_overflowed(const struct fm_imap_watch *w);
/* Ends the IDLE (DONE) and reads up to the server's answer, which must
 * come within ms: a link that does not answer fails (FM_ERR_TEMPORARY),
 * which makes DONE the check that a connection still lives. */
int fm_imap_watch_done(struct fm_imap_watch *w, unsigned ms,
                       struct fm_error *err);

#endif

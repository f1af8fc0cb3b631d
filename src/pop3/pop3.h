/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * pop3 — POP3 over libetpan and our own transaction layer: a session is
 * opened the secure way (greeting, CAPA, STLS, USER/PASS or AUTH) by
 * libetpan; listing, downloading and deleting read the stream directly,
 * pipelined when the server allows (src/pop3/pop3_int.h says why).
 *
 * A session belongs to one thread (the account worker's).
 */
#ifndef FULMAR_POP3_H
#define FULMAR_POP3_H

#include <libetpan/libetpan.h>

#include "conf/conf.h"
#include "net/net.h"

struct fm_pop3;

/* Connects to the account's POP3 server and authenticates, refusing what
 * fm_imap_open() refuses (missing/refused STLS, injection, untrusted
 * certificates, credentials in clear). Steps go to o->observer. */
int fm_pop3_open(const struct fm_account *acct, const struct fm_session_opts *o,
                 struct fm_pop3 **pop3_r, struct fm_error *err);
/* QUIT if healthy, then frees. NULL-safe; sets *pop3 to NULL. Note that
 * QUIT commits deletions (POP3's UPDATE state). */
void fm_pop3_close(struct fm_pop3 **pop3);
/* Drops the connection without QUIT, so the server forgets every DELE of
 * the session (after any failure, before everything is stored). */
void fm_pop3_abort(struct fm_pop3 **pop3);
/* The harmless check: STAT, reported as one step. */
int fm_pop3_check(struct fm_pop3 *pop3, const struct fm_session_opts *o,
                  struct fm_error *err);

/* ------------------------------------------------------------------------
 * Downloading: one send/receive pass of a POP3 account into the store.
 */
struct fm_store;

struct fm_pop3_stats {
	size_t on_server;  /* messages the server lists */
	size_t downloaded; /* new messages stored (whole or as headers) */
	size_t completed;  /* header stubs completed by their body */
	size_t deleted;    /* deleted on the server (applied at QUIT) */
	uint64_t bytes;    /* bytes downloaded */
};

/* Told after each message; total is what this pass will fetch. Called on
 * the syncing thread. */
struct fm_pop3_progress {
	void (*fn)(void *ctx, size_t done, size_t total, uint64_t bytes);
	void *ctx;
	/* May be NULL: told of each new message (by its base name in the
	 * folder) once it is durable, for new-mail notifications. */
	void (*stored)(void *ctx, const char *folder, const char *base);
};

/* Downloads what is new into ACCOUNT/INBOX and applies the account's
 * policy: keep_on_server, delete_after_days (counted from the download,
 * now being the current time), delete_when_deleted_locally (from the
 * store's journal), download = full | headers | max SIZE. A message's UIDL
 * enters the folder's sync state only after the message is fsynced in the
 * maildir, and DELE goes only to messages whose whole body is stored (or
 * that the user deleted locally); POP3 applies DELE at QUIT, so a pass
 * cut short deletes nothing. With download = headers the pass stores
 * every new message as headers first, then fetches the bodies of all
 * stubs (this pass's and older ones) before it ends; with max SIZE big
 * messages stay stubs until opened (fm_account_fetch_body). A UIDL the
 * server reuses for another message (another size than when it was
 * downloaded) is taken as a new message. A server without UIDL is an
 * error (FM_ERR_PERMANENT) unless the account says pop3_no_uidl =
 * message-id: then messages are told apart by Message-ID and size,
 * which costs a TOP per message and pass. store must hold the account
 * (fm_store_open). Called on the account's thread. */
int fm_pop3_sync(const struct fm_account *acct, struct fm_store *store,
                 const struct fm_session_opts *o, int64_t now,
                 const struct fm_pop3_progress *progress,
                 struct fm_pop3_stats *stats, struct fm_error *err);

/* Completes a POP3 header stub in ACCOUNT/FOLDER/BASE: finds the message
 * on the server by its UIDL (and the size it had), RETRs it and replaces
 * the stub atomically (fm_store_replace), then records it whole. A whole
 * message, or one that did not come from the server, is left alone
 * (returns 0). FM_ERR_PERMANENT when the server no longer has the
 * message (or its UIDL now names another one); the errors of
 * fm_pop3_sync() otherwise. store must hold the account. */
int fm_pop3_fetch_body(const struct fm_account *acct, struct fm_store *store,
                       const struct fm_session_opts *o, const char *folder,
                       const char *base, struct fm_error *err);

/* ------------------------------------------------------------------------
 * Opening a message, for any protocol (the front ends call this; it
 * lives here until the account layer exists).
 */

/* Whether a message's content looks like a header stub: nothing after
 * its header block. Cheap; a whole message with an empty body looks the
 * same, so this only says when fm_mail_is_partial() is worth a call. */
bool fm_mail_looks_partial(const char *data, size_t len);
/* Whether the folder's sync state marks ACCOUNT/FOLDER/BASE as a header
 * stub (the keyword fulmar:partial, which POP3 and IMAP states share).
 * Reads the state file of the data directory without any lock (state
 * files are replaced whole); false when there is none. Any thread. */
bool fm_mail_is_partial(const char *data_dir, const struct fm_account *acct,
                        const char *folder, const char *base);

#endif

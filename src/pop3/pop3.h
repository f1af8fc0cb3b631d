/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * pop3 — POP3 sessions over libetpan. This first part opens a session the
 * secure way (greeting, CAPA, STLS, USER/PASS or AUTH) and runs the
 * harmless STAT for `fulmar check`; downloading builds on it.
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
mailpop3 *fm_pop3_session(struct fm_pop3 *pop3);

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
 * maildir, and DELE goes only to messages stored; POP3 applies DELE at
 * QUIT, so a pass cut short deletes nothing. A UIDL the server reuses for
 * another message (another size) is taken as a new message. A server
 * without UIDL is an error (FM_ERR_PERMANENT). store must hold the
 * account (fm_store_open). */
int fm_pop3_sync(const struct fm_account *acct, struct fm_store *store,
                 const struct fm_session_opts *o, int64_t now,
                 const struct fm_pop3_progress *progress,
                 struct fm_pop3_stats *stats, struct fm_error *err);

#endif

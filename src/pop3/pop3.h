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
/* The harmless check: STAT, reported as one step. */
int fm_pop3_check(struct fm_pop3 *pop3, const struct fm_session_opts *o,
                  struct fm_error *err);
mailpop3 *fm_pop3_session(struct fm_pop3 *pop3);

#endif

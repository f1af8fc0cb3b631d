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
 * NULL-safe; sets *imap to NULL. */
void fm_imap_close(struct fm_imap **imap);

/* The harmless check: LIST "" "*" and STATUS INBOX (MESSAGES UNSEEN),
 * reported to o->observer as one step. */
int fm_imap_check(struct fm_imap *imap, const struct fm_session_opts *o,
                  struct fm_error *err);

/* The libetpan session, for the modules built on this one. */
mailimap *fm_imap_session(struct fm_imap *imap);
struct fm_net_conn *fm_imap_conn(struct fm_imap *imap);

#endif

/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * smtp — SMTP submission over libetpan. This first part opens a session
 * the secure way (greeting, EHLO, STARTTLS, EHLO again, AUTH) and runs the
 * harmless check (EHLO after authentication; nothing is sent); the outbox
 * builds on it.
 *
 * A session belongs to one thread (the account worker's).
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

#endif

/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * net — the one connection layer every protocol rides on: TCP with timeouts
 * and cancellation, TLS with OpenSSL (verified before the first command),
 * STARTTLS, a guard that bounds everything a server sends, the protocol
 * trace, and SASL.
 *
 * A connection is a libetpan mailstream whose low-level driver is ours:
 * libetpan parses the protocols, we own the bytes. Debian's libetpan does TLS
 * with GnuTLS and verifies nothing, so its own TLS entry points are never
 * used.
 *
 * Threads: a connection belongs to the thread that opened it. Only
 * fm_net_cancel() (through the cancel eventfd) may come from another thread.
 */
#ifndef FULMAR_NET_H
#define FULMAR_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libetpan/libetpan.h>

#include "base/base.h"
#include "conf/conf.h"
#include "log/log.h"

/* Bounds on what a server may send, and how long it may take. */
struct fm_net_limits {
	unsigned connect_timeout_ms; /* per address tried */
	unsigned io_timeout_ms;      /* per read or write that waits */
	size_t max_line;             /* longest line outside literals */
	uint64_t max_literal;        /* largest IMAP literal {N} accepted */
};

/* The defaults: 30 s connect, 60 s I/O, 4 MiB lines, 512 MiB literals. */
void fm_net_limits_default(struct fm_net_limits *limits);
/* The limits [general] sets (connect_timeout, timeout, max_line_kib,
 * max_literal_mib). */
void fm_net_limits_from_config(const struct fm_general *general,
                               struct fm_net_limits *limits);

/* Where and how to connect. Strings are borrowed for the call. */
struct fm_net_target {
	const char *host;
	unsigned port;
	enum fm_tls_mode tls;
	const char *ca_file;        /* NULL: the system's CAs */
	const uint8_t *fingerprint; /* 32 bytes (SHA-256 pin) or NULL */
	enum fm_trace_proto proto;  /* IMAP enables the literal guard */
	const char *label;          /* "work/imap", for traces and logs */
	struct fm_trace *trace;     /* NULL: no protocol trace */
	int cancel_fd;              /* readable = cancel; -1 for none */
	struct fm_net_limits limits;
};

/* What the TLS handshake found; filled whether or not it was trusted, so
 * `fulmar check` can show it and suggest a pin. */
struct fm_tls_info {
	char protocol[16]; /* "TLSv1.3" */
	char cipher[64];
	char subject[256]; /* one line, RFC 2253 */
	char issuer[256];
	char not_before[32]; /* "2026-11-21 10:00:00 UTC" */
	char not_after[32];
	char names[512]; /* DNS and IP names the certificate presents */
	uint8_t fingerprint[32];
	bool verified; /* chain and name checked, or the pin matched */
	bool pinned;   /* trusted through tls_fingerprint */
};

/* Milliseconds each step took, for `fulmar check`. */
struct fm_net_timing {
	unsigned dns_ms;
	unsigned tcp_ms;
	unsigned tls_ms;
	char address[64]; /* the address that answered, "127.0.0.1:993" */
};

struct fm_net_conn;

/* Resolves, connects (every address in turn, IPv6 and IPv4) and, for
 * FM_TLS_IMPLICIT, completes and verifies the TLS handshake. On success the
 * new stream is in *stream_r — hand it to mailimap_connect() and friends,
 * which take ownership of it — and the connection is in *conn_r. The
 * connection belongs to the caller and outlives the stream: libetpan may
 * close the stream on its own (SMTP does on a bad greeting), after which
 * the connection still explains what happened. Free it with
 * fm_net_conn_free() after the libetpan session is gone. On failure nothing
 * is left open and err says which step failed and what the user can do
 * (TEMPORARY for network trouble, TLS for trust, CANCELLED). */
int fm_net_connect(const struct fm_net_target *target, mailstream **stream_r,
                   struct fm_net_conn **conn_r, struct fm_error *err);
/* NULL-safe; sets *conn to NULL. Only once its stream is freed. */
void fm_net_conn_free(struct fm_net_conn **conn);

/* Before the upgrade after a successful STARTTLS/STLS reply: fails with
 * FM_ERR_PROTOCOL if the server sent anything beyond that reply (response
 * injection, CVE-2020-15953), else runs the handshake on the same socket and
 * verifies the certificate. */
int fm_net_start_tls(struct fm_net_conn *conn, mailstream *stream,
                     struct fm_error *err);

bool fm_net_is_tls(const struct fm_net_conn *conn);
/* NULL before a handshake. */
const struct fm_tls_info *fm_net_tls_info(const struct fm_net_conn *conn);
const struct fm_net_timing *fm_net_timing(const struct fm_net_conn *conn);
const char *fm_net_host(const struct fm_net_conn *conn);
unsigned fm_net_port(const struct fm_net_conn *conn);

/* After a libetpan call failed on this connection: turns what the low
 * level saw (timeout, cancel, a limit, TLS failure, the server closing) into
 * err, with `what` naming the step ("reading the greeting"). Returns -1.
 * If the low level saw nothing wrong the error is a PROTOCOL one. */
int fm_net_error(const struct fm_net_conn *conn, const char *what,
                 struct fm_error *err);
/* True when the low level failed (as opposed to the protocol). */
bool fm_net_failed(const struct fm_net_conn *conn);

/* Writes raw bytes (already framed by the caller) through the stream and
 * flushes; the trace sees them. For commands libetpan cannot send. */
int fm_net_write(struct fm_net_conn *conn, mailstream *stream, const char *data,
                 size_t len, struct fm_error *err);

/* ------------------------------------------------------------------------
 * Credentials policy and SASL.
 */

/* May credentials be sent on this connection? Only over TLS, unless the
 * account says allow_plaintext_login = yes. Returns 0 or -1 with a
 * FM_ERR_CONFIG error that says how to fix it. */
int fm_net_may_send_credentials(const struct fm_net_conn *conn,
                                const struct fm_account *acct,
                                struct fm_error *err);

/* One SASL client exchange. */
struct fm_sasl;

/* Starts an exchange for mech (not FM_AUTH_AUTO) with user and secret (a
 * password or an OAuth token). host/port go into OAUTHBEARER. The strings
 * are copied; the copies are wiped on free. */
struct fm_sasl *fm_sasl_new(enum fm_auth_mech mech, const char *user,
                            const char *secret, const char *host,
                            unsigned port);
void fm_sasl_free(struct fm_sasl **sasl);
/* The IANA name: "PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER". */
const char *fm_sasl_mech_name(enum fm_auth_mech mech);
/* The initial response, base64 (newly allocated, a secret: free with
 * fm_free_secret), or NULL if the mechanism has none (LOGIN). */
char *fm_sasl_initial_response(struct fm_sasl *sasl);
/* Answers a server challenge (base64, possibly empty). *response_r is the
 * base64 answer (a secret). For XOAUTH2/OAUTHBEARER a challenge is the
 * server's error report: the answer is the empty string that ends the
 * exchange, and *server_error_r (if not NULL) gets the decoded report.
 * -1 for a challenge that is not valid base64 or comes after the end. */
int fm_sasl_step(struct fm_sasl *sasl, const char *challenge, char **response_r,
                 char **server_error_r);

/* Picks the mechanism: the configured one if the server offers it, else
 * for FM_AUTH_AUTO the first of PLAIN, LOGIN offered (offered: a list of
 * names, case-insensitive). Returns -1 if none fits, with err explaining
 * what the server offers. */
int fm_sasl_choose(enum fm_auth_mech configured, const char *const *offered,
                   size_t n_offered, enum fm_auth_mech *mech_r,
                   struct fm_error *err);

/* Base64 helpers (RFC 4648, no line breaks). Decoding rejects invalid
 * input with -1. Results are newly allocated and NUL-terminated. */
char *fm_base64_encode(const void *data, size_t len);
int fm_base64_decode(const char *text, char **data_r, size_t *len_r);

/* Lowercase hex with colons, "ab:cd:…", of a SHA-256 fingerprint. */
void fm_net_fingerprint_hex(const uint8_t fp[32], char out[96]);

/* ------------------------------------------------------------------------
 * What every protocol session needs to open: the shared trace, the cancel
 * fd, limits, credentials, and an optional observer told about each step
 * (for `fulmar check` and the UI's status line).
 */
struct fm_creds;

struct fm_net_observer {
	/* One step ("DNS", "TCP", "TLS", "greeting", "capabilities",
	 * "STARTTLS", "login", ...) finished, ok or not, after ms
	 * milliseconds; detail is one or more lines for the human. Called on
	 * the session's thread. */
	void (*step)(void *ctx, const char *step, unsigned ms, bool ok,
	             const char *detail);
	void *ctx;
};

struct fm_session_opts {
	struct fm_trace *trace; /* NULL: no trace */
	int cancel_fd;          /* -1: not cancellable */
	struct fm_net_limits limits;
	struct fm_creds *creds; /* where passwords and tokens come from */
	const struct fm_net_observer *observer; /* NULL: nobody listens */
	/* The session's name in the protocol trace ("work/push"); NULL:
	 * ACCOUNT/PROTOCOL ("work/imap"). Borrowed for the session's life. */
	const char *label;
};

/* Reports a step to the observer, if any. */
void fm_net_report(const struct fm_session_opts *o, const char *step,
                   unsigned ms, bool ok, const char *fmt, ...) FM_PRINTF(5, 6);
/* Reports DNS, TCP and (if done) TLS of a fresh connection. */
void fm_net_report_connect(const struct fm_session_opts *o,
                           const struct fm_net_conn *conn);
/* Reports the TLS step of a connection (after STARTTLS). */
void fm_net_report_tls(const struct fm_session_opts *o,
                       const struct fm_net_conn *conn);
/* The connection target for an account's incoming or SMTP server. */
void fm_net_target_incoming(const struct fm_account *acct,
                            const struct fm_session_opts *o,
                            struct fm_net_target *t);
void fm_net_target_smtp(const struct fm_account *acct,
                        const struct fm_session_opts *o,
                        struct fm_net_target *t);

/* Credentials of one account for one worker (or one `fulmar check`): the
 * password and the OAuth token are fetched once (password_cmd and
 * oauth_token_cmd run at most once each), kept in memory only, registered
 * with the log so they never appear in it, and wiped on free. One thread. */
struct fm_creds *fm_creds_new(const struct fm_account *acct);
void fm_creds_free(struct fm_creds **creds);
/* The password (borrowed, valid until fm_creds_free). Errors:
 * FM_ERR_CREDENTIALS when the account has none, FM_ERR_CONFIG when
 * password_cmd fails. */
int fm_creds_password(struct fm_creds *creds, const char **password_r,
                      struct fm_error *err);
/* The OAuth token from oauth_token_cmd (borrowed). */
int fm_creds_token(struct fm_creds *creds, const char **token_r,
                   struct fm_error *err);
/* Forgets the token so the next call runs oauth_token_cmd again (after the
 * server rejected an expired one). */
void fm_creds_forget_token(struct fm_creds *creds);

/* The sentences every protocol shares, so a failure reads the same for
 * IMAP, POP3 and SMTP. Each sets err and returns -1. */
int fm_net_err_no_starttls(const struct fm_net_conn *conn,
                           unsigned implicit_port, struct fm_error *err);
int fm_net_err_starttls_refused(const struct fm_net_conn *conn,
                                const char *server_text, struct fm_error *err);
int fm_net_err_injection(const struct fm_net_conn *conn, struct fm_error *err);
/* The server rejected the password or token of user. report: the
 * decoded SASL error report of an OAuth server, or "". */
int fm_net_err_login_failed(const struct fm_net_conn *conn, const char *user,
                            bool oauth, const char *server_text,
                            const char *report, struct fm_error *err);
/* After a failed STARTTLS command: injection when bytes are buffered, the
 * low level's failure if any, else the refusal. */
int fm_net_err_starttls_failed(const struct fm_net_conn *conn,
                               const mailstream *stream,
                               const char *server_text, struct fm_error *err);

/* One SASL exchange on a line protocol: POP3 (AUTH, "+ " challenges,
 * "+OK"/"-ERR" at the end; always the two-step form, which Office 365
 * needs) or SMTP (AUTH with the initial response inline, "334"
 * challenges, "235" for success). Returns 0 when the exchange ran to its
 * end, with *ok telling whether the server accepted; the server's last
 * line goes (printable) into final, and an OAuth error report into
 * report. -1 when the connection failed or the server broke the
 * protocol. */
int fm_net_sasl_lines(struct fm_net_conn *conn, mailstream *stream,
                      enum fm_trace_proto proto, enum fm_auth_mech mech,
                      const char *user, const char *secret, bool *ok,
                      char *final, size_t final_size, char *report,
                      size_t report_size, struct fm_error *err);
/* Waits up to timeout_ms for the server to say something (IDLE): 1 when
 * bytes are ready — already in libetpan's buffer or OpenSSL's, or on the
 * socket — 0 when the time passed quietly, -1 when cancelled or the socket
 * failed (then fm_net_error() explains). */
int fm_net_wait_readable(struct fm_net_conn *conn, mailstream *stream,
                         unsigned timeout_ms);

/* Reads one line (bounded by the connection's guard) without its CRLF
 * into a new string; NULL on failure (then fm_net_error explains). */
char *fm_net_read_line(struct fm_net_conn *conn, mailstream *stream);

/* fm_net_connect() plus the observer's DNS, TCP and TLS steps, the failed
 * one included. */
int fm_net_open(const struct fm_net_target *target,
                const struct fm_session_opts *o, mailstream **stream_r,
                struct fm_net_conn **conn_r, struct fm_error *err);

/* Ends a libetpan session the same way for every protocol: when it opened
 * fine and the link is sound, goodbye(session) says LOGOUT/QUIT; a stream
 * the session still holds (*stream_slot) is then closed without another
 * round trip and the slot cleared. The caller frees the session itself
 * and then the connection. */
void fm_net_session_end(struct fm_net_conn *conn, mailstream **stream_slot,
                        bool healthy, void (*goodbye)(void *session),
                        void *session);

#endif

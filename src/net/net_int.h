/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Internal to net/: the connection struct shared by its files. */
#ifndef FULMAR_NET_INT_H
#define FULMAR_NET_INT_H

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "net/net.h"

/* Why the low level failed; kept so fm_net_error() can explain a libetpan
 * failure, which itself only says "stream error". */
enum net_fail {
	NET_OK,
	NET_TIMEOUT,
	NET_CANCELLED,
	NET_EOF,
	NET_IO,      /* errno in fail_errno */
	NET_TLS,     /* OpenSSL error in fail_detail */
	NET_LINE,    /* a line past limits.max_line */
	NET_LITERAL, /* a literal past limits.max_literal */
};

/* Watches the bytes a server sends: lines (outside literals) and literals
 * are bounded per response, so libetpan, which would buffer them without
 * limit, never sees more than the limits allow. */
struct net_guard {
	bool imap;              /* literals exist */
	size_t line_bytes;      /* non-literal bytes of the current response */
	uint64_t literal_left;  /* bytes of a literal still to come */
	uint64_t literal_bytes; /* literal bytes of the current response */
	/* Recognising "{N}" CRLF at the end of a line: */
	enum { LIT_NONE, LIT_DIGITS, LIT_CLOSED, LIT_CR } lit_state;
	uint64_t lit_value; /* saturates at UINT64_MAX */
	unsigned lit_digits;
};

struct fm_net_conn {
	char *host;
	unsigned port;
	char *label;
	int fd;
	int cancel_fd;
	enum fm_tls_mode tls_mode;
	char *ca_file;
	bool has_fingerprint;
	uint8_t fingerprint[32];
	struct fm_net_limits limits;

	SSL_CTX *ssl_ctx;
	SSL *ssl;
	bool has_tls_info;
	struct fm_tls_info tls_info;
	struct fm_net_timing timing;

	struct fm_trace_session *trace;
	struct net_guard guard;

	enum net_fail fail;
	int fail_errno;
	char fail_detail[256];
};

/* Waits until fd is ready for events (POLLIN/POLLOUT) or the deadline
 * passes or the cancel fd fires; sets conn->fail on failure. 0 / -1. */
int net_wait(struct fm_net_conn *conn, short events, uint64_t deadline_ms);
/* The TLS handshake and verification on conn->fd (tls.c). */
int net_tls_handshake(struct fm_net_conn *conn, struct fm_error *err);
void net_tls_free(struct fm_net_conn *conn);
/* Feeds received bytes through the guard; -1 (conn->fail set) when a
 * limit is passed. */
int net_guard_feed(struct fm_net_conn *conn, const char *data, size_t len);

#endif

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* TCP connections as libetpan streams: connect with timeouts, our own
 * mailstream_low driver (plain or TLS), the guard on received bytes, and
 * turning low-level failures into errors a user can act on. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "net/net_int.h"

void
fm_net_limits_default(struct fm_net_limits *limits)
{
	limits->connect_timeout_ms = 30000;
	limits->io_timeout_ms = 60000;
	limits->max_line = 4u << 20;
	limits->max_literal = 512u << 20;
}

void
fm_net_limits_from_config(const struct fm_general *g,
                          struct fm_net_limits *limits)
{
	limits->connect_timeout_ms = g->connect_timeout * 1000;
	limits->io_timeout_ms = g->timeout * 1000;
	limits->max_line = (size_t)g->max_line_kib << 10;
	limits->max_literal = (uint64_t)g->max_literal_mib << 20;
}

int
net_wait(struct fm_net_conn *conn, short events, uint64_t deadline_ms)
{
	for (;;) {
		uint64_t now = fm_now_ms();
		if (now >= deadline_ms) {
			conn->fail = NET_TIMEOUT;
			return -1;
		}
		uint64_t left = deadline_ms - now;
		struct pollfd pfd[2] = {
		    {.fd = conn->fd, .events = events},
		    {.fd = conn->cancel_fd, .events = POLLIN},
		};
		int n = poll(pfd, conn->cancel_fd >= 0 ? 2 : 1,
		             left > 1000000 ? 1000000 : (int)left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			conn->fail = NET_IO;
			conn->fail_errno = errno;
			return -1;
		}
		if (conn->cancel_fd >= 0 && (pfd[1].revents & POLLIN)) {
			conn->fail = NET_CANCELLED;
			return -1;
		}
		if (pfd[0].revents != 0)
			return 0;
	}
}

int
fm_net_wait_readable(struct fm_net_conn *conn, mailstream *stream,
                     unsigned timeout_ms)
{
	if (stream != NULL && stream->read_buffer_len > 0)
		return 1;
	/* Bytes OpenSSL read ahead count, even before a record is whole. */
	if (conn->ssl != NULL && SSL_has_pending(conn->ssl))
		return 1;
	if (net_wait(conn, POLLIN, fm_now_ms() + timeout_ms) == 0)
		return 1;
	if (conn->fail == NET_TIMEOUT) {
		conn->fail = NET_OK;
		return 0;
	}
	return -1;
}

/* ------------------------------------------------------------------------
 * The guard.
 */

/* Follows "{N}" CRLF, the announcement of a server literal, byte by byte
 * (a state machine rather than a look back, so leading zeros or a long
 * number cannot hide one). Returns true when c ends an announcement. */
static bool
literal_step(struct net_guard *g, char c)
{
	switch (g->lit_state) {
	case LIT_DIGITS:
		if (c >= '0' && c <= '9') {
			unsigned d = (unsigned)(c - '0');
			g->lit_value = g->lit_value > (UINT64_MAX - d) / 10
			                   ? UINT64_MAX
			                   : g->lit_value * 10 + d;
			g->lit_digits++;
			return false;
		}
		if (c == '}' && g->lit_digits > 0) {
			g->lit_state = LIT_CLOSED;
			return false;
		}
		break;
	case LIT_CLOSED:
		if (c == '\r') {
			g->lit_state = LIT_CR;
			return false;
		}
		if (c == '\n')
			return true;
		break;
	case LIT_CR:
		if (c == '\n')
			return true;
		break;
	case LIT_NONE:
		break;
	}
	g->lit_state = LIT_NONE;
	if (c == '{') {
		g->lit_state = LIT_DIGITS;
		g->lit_value = 0;
		g->lit_digits = 0;
	}
	return false;
}

/* Without literals (POP3, SMTP) only line lengths matter: memchr finds
 * the line ends, so the guard costs next to nothing on big downloads. */
static int
guard_lines(struct fm_net_conn *conn, const char *data, size_t len)
{
	struct net_guard *g = &conn->guard;
	size_t i = 0;
	while (i < len) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t seg = nl != NULL ? (size_t)(nl - (data + i)) : len - i;
		if (g->line_bytes + seg > conn->limits.max_line) {
			conn->fail = NET_LINE;
			return -1;
		}
		if (nl == NULL) {
			g->line_bytes += seg;
			break;
		}
		g->line_bytes = 0;
		i += seg + 1;
	}
	return 0;
}

int
net_guard_feed(struct fm_net_conn *conn, const char *data, size_t len)
{
	struct net_guard *g = &conn->guard;
	if (!g->imap)
		return guard_lines(conn, data, len);
	for (size_t i = 0; i < len; i++) {
		if (g->literal_left > 0) {
			/* Skip the literal in one step. */
			uint64_t take = len - i;
			if (take > g->literal_left)
				take = g->literal_left;
			g->literal_left -= take;
			i += (size_t)take - 1;
			continue;
		}
		char c = data[i];
		bool literal = g->imap && literal_step(g, c);
		if (literal) {
			uint64_t n = g->lit_value;
			g->lit_state = LIT_NONE;
			if (n > conn->limits.max_literal ||
			    g->literal_bytes > conn->limits.max_literal - n) {
				conn->fail = NET_LITERAL;
				if (n == UINT64_MAX)
					fm_strlcpy(conn->fail_detail,
					           "more than 2^64",
					           sizeof(conn->fail_detail));
				else
					snprintf(conn->fail_detail,
					         sizeof(conn->fail_detail),
					         "%llu", (unsigned long long)n);
				return -1;
			}
			g->literal_left = n;
			g->literal_bytes += n;
			continue;
		}
		if (c == '\n') {
			/* The response is complete. */
			g->line_bytes = 0;
			g->literal_bytes = 0;
			continue;
		}
		if (++g->line_bytes > conn->limits.max_line) {
			conn->fail = NET_LINE;
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * The mailstream_low driver.
 */

static ssize_t
low_read(mailstream_low *low, void *buf, size_t count)
{
	struct fm_net_conn *conn = low->data;
	if (conn->fail != NET_OK)
		return -1;
	uint64_t deadline = fm_now_ms() + conn->limits.io_timeout_ms;
	ssize_t n;
	for (;;) {
		if (conn->ssl != NULL) {
			ERR_clear_error();
			int r = SSL_read(conn->ssl, buf,
			                 count > INT32_MAX ? INT32_MAX
			                                   : (int)count);
			if (r > 0) {
				n = r;
				break;
			}
			int e = SSL_get_error(conn->ssl, r);
			if (e == SSL_ERROR_WANT_READ) {
				if (net_wait(conn, POLLIN, deadline) < 0)
					return -1;
				continue;
			}
			if (e == SSL_ERROR_WANT_WRITE) {
				if (net_wait(conn, POLLOUT, deadline) < 0)
					return -1;
				continue;
			}
			if (e == SSL_ERROR_ZERO_RETURN ||
			    (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 &&
			     errno == 0)) {
				conn->fail = NET_EOF;
				return 0;
			}
			if (e == SSL_ERROR_SSL &&
			    ERR_GET_REASON(ERR_peek_error()) ==
			        SSL_R_UNEXPECTED_EOF_WHILE_READING) {
				conn->fail = NET_EOF;
				return 0;
			}
			conn->fail = NET_TLS;
			ERR_error_string_n(ERR_get_error(), conn->fail_detail,
			                   sizeof(conn->fail_detail));
			return -1;
		}
		n = recv(conn->fd, buf, count, 0);
		if (n > 0)
			break;
		if (n == 0) {
			conn->fail = NET_EOF;
			return 0;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			if (net_wait(conn, POLLIN, deadline) < 0)
				return -1;
			continue;
		}
		conn->fail = NET_IO;
		conn->fail_errno = errno;
		return -1;
	}
	fm_trace_session_data(conn->trace, FM_TRACE_RECV, buf, (size_t)n);
	if (net_guard_feed(conn, buf, (size_t)n) < 0)
		return -1;
	return n;
}

static ssize_t
low_write(mailstream_low *low, const void *buf, size_t count)
{
	struct fm_net_conn *conn = low->data;
	if (conn->fail != NET_OK)
		return -1;
	uint64_t deadline = fm_now_ms() + conn->limits.io_timeout_ms;
	size_t done = 0;
	while (done < count) {
		const char *p = (const char *)buf + done;
		size_t left = count - done;
		ssize_t n;
		if (conn->ssl != NULL) {
			ERR_clear_error();
			int r =
			    SSL_write(conn->ssl, p,
			              left > INT32_MAX ? INT32_MAX : (int)left);
			if (r > 0) {
				n = r;
			} else {
				int e = SSL_get_error(conn->ssl, r);
				short ev = e == SSL_ERROR_WANT_READ    ? POLLIN
				           : e == SSL_ERROR_WANT_WRITE ? POLLOUT
				                                       : 0;
				if (ev == 0) {
					conn->fail = NET_TLS;
					ERR_error_string_n(
					    ERR_get_error(), conn->fail_detail,
					    sizeof(conn->fail_detail));
					return -1;
				}
				if (net_wait(conn, ev, deadline) < 0)
					return -1;
				continue;
			}
		} else {
			n = send(conn->fd, p, left, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR) {
					if (net_wait(conn, POLLOUT, deadline) <
					    0)
						return -1;
					continue;
				}
				conn->fail = NET_IO;
				conn->fail_errno = errno;
				return -1;
			}
		}
		done += (size_t)n;
	}
	fm_trace_session_data(conn->trace, FM_TRACE_SEND, buf, count);
	return (ssize_t)count;
}

static int
low_close(mailstream_low *low)
{
	struct fm_net_conn *conn = low->data;
	net_tls_free(conn);
	if (conn->fd >= 0) {
		close(conn->fd);
		conn->fd = -1;
	}
	return 0;
}

static int
low_get_fd(mailstream_low *low)
{
	struct fm_net_conn *conn = low->data;
	return conn->fd;
}

static void
conn_free(struct fm_net_conn *conn)
{
	net_tls_free(conn);
	if (conn->fd >= 0)
		close(conn->fd);
	fm_trace_session_free(&conn->trace);
	free(conn->host);
	free(conn->label);
	free(conn->ca_file);
	free(conn);
}

static void
low_free(mailstream_low *low)
{
	/* The connection outlives its stream (see fm_net_connect). */
	low_close(low);
	free(low);
}

void
fm_net_conn_free(struct fm_net_conn **conn)
{
	if (*conn == NULL)
		return;
	conn_free(*conn);
	*conn = NULL;
}

static void
low_cancel(mailstream_low *low)
{
	/* Cancellation comes through the connection's eventfd. */
}

static struct mailstream_cancel *
low_get_cancel(mailstream_low *low)
{
	return NULL;
}

static carray *
low_get_certificate_chain(mailstream_low *low)
{
	return NULL;
}

static mailstream_low_driver net_driver = {
    .mailstream_read = low_read,
    .mailstream_write = low_write,
    .mailstream_close = low_close,
    .mailstream_get_fd = low_get_fd,
    .mailstream_free = low_free,
    .mailstream_cancel = low_cancel,
    .mailstream_get_cancel = low_get_cancel,
    .mailstream_get_certificate_chain = low_get_certificate_chain,
    .mailstream_setup_idle = NULL,
    .mailstream_unsetup_idle = NULL,
    .mailstream_interrupt_idle = NULL,
};

/* ------------------------------------------------------------------------
 * Connecting.
 */

static void
format_address(const struct sockaddr *sa, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(out, size, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(out, size, "[%s]:%u", host, port);
	} else {
		snprintf(out, size, "?");
	}
}

/* Tries one address; 0 with conn->fd set, or -1 with conn->fail set. */
static int
try_address(struct fm_net_conn *conn, const struct addrinfo *ai)
{
	int fd = socket(ai->ai_family,
	                ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                ai->ai_protocol);
	if (fd < 0) {
		conn->fail = NET_IO;
		conn->fail_errno = errno;
		return -1;
	}
	conn->fd = fd;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			conn->fail = NET_IO;
			conn->fail_errno = errno;
			goto fail;
		}
		uint64_t deadline =
		    fm_now_ms() + conn->limits.connect_timeout_ms;
		if (net_wait(conn, POLLOUT, deadline) < 0)
			goto fail;
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr != 0) {
			conn->fail = NET_IO;
			conn->fail_errno = soerr;
			goto fail;
		}
	}
	int one = 1;
	/* Commands are small and pipelined: don't let Nagle hold them. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	return 0;
fail:
	close(fd);
	conn->fd = -1;
	return -1;
}

static int
tcp_error(struct fm_net_conn *conn, struct fm_error *err)
{
	const char *h = conn->host;
	unsigned p = conn->port;
	switch (conn->fail) {
	case NET_CANCELLED:
		return fm_error_set(err, FM_ERR_CANCELLED,
		                    _("connecting to %s:%u was cancelled"), h,
		                    p);
	case NET_TIMEOUT:
		return fm_error_set(
		    err, FM_ERR_TEMPORARY,
		    _("connecting to %s:%u timed out after %u s: a "
		      "firewall may block port %u, or the host is down"),
		    h, p, conn->limits.connect_timeout_ms / 1000, p);
	default:
		break;
	}
	int e = conn->fail_errno;
	if (e == ECONNREFUSED)
		return fm_error_set(
		    err, FM_ERR_TEMPORARY,
		    _("%s refused the connection on port %u: no server "
		      "listens there; check port (and host) in the "
		      "config, or whether the server is up"),
		    h, p);
	if (e == ENETUNREACH || e == EHOSTUNREACH || e == ENETDOWN)
		return fm_error_set(err, FM_ERR_TEMPORARY,
		                    _("cannot reach %s:%u: %s (are you "
		                      "offline?)"),
		                    h, p, strerror(e));
	return fm_error_errno(err, FM_ERR_TEMPORARY, e,
	                      _("cannot connect to %s:%u"), h, p);
}

static struct fm_net_conn *
conn_new(const struct fm_net_target *t)
{
	struct fm_net_conn *conn = xcalloc(1, sizeof(*conn));
	conn->host = xstrdup(t->host);
	conn->port = t->port;
	conn->label = xstrdup(t->label != NULL ? t->label : t->host);
	conn->fd = -1;
	conn->cancel_fd = t->cancel_fd;
	conn->tls_mode = t->tls;
	conn->ca_file = t->ca_file != NULL ? xstrdup(t->ca_file) : NULL;
	if (t->fingerprint != NULL) {
		conn->has_fingerprint = true;
		memcpy(conn->fingerprint, t->fingerprint, 32);
	}
	conn->limits = t->limits;
	if (conn->limits.io_timeout_ms == 0)
		fm_net_limits_default(&conn->limits);
	conn->guard.imap = t->proto == FM_TRACE_IMAP;
	conn->trace = fm_trace_session_new(t->trace, t->proto, conn->label);
	return conn;
}

int
fm_net_connect(const struct fm_net_target *t, mailstream **stream_r,
               struct fm_net_conn **conn_r, struct fm_error *err)
{
	*stream_r = NULL;
	*conn_r = NULL;
	struct fm_net_conn *conn = conn_new(t);
	char port[16];
	snprintf(port, sizeof(port), "%u", t->port);
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC,
	    .ai_socktype = SOCK_STREAM,
	    .ai_protocol = IPPROTO_TCP,
	};
	struct addrinfo *res = NULL;
	uint64_t t0 = fm_now_ms();
	int gai = getaddrinfo(t->host, port, &hints, &res);
	conn->timing.dns_ms = (unsigned)(fm_now_ms() - t0);
	if (gai != 0) {
		if (gai == EAI_NONAME || gai == EAI_NODATA)
			fm_error_set(err, FM_ERR_TEMPORARY,
			             _("cannot find the host %s (DNS): check "
			               "the host name, or whether you are "
			               "online"),
			             t->host);
		else
			fm_error_set(err, FM_ERR_TEMPORARY,
			             _("cannot look up %s: %s"), t->host,
			             gai_strerror(gai));
		fm_error_detail(err, "getaddrinfo: %s", gai_strerror(gai));
		conn_free(conn);
		return -1;
	}
	t0 = fm_now_ms();
	int ret = -1;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		conn->fail = NET_OK;
		if (try_address(conn, ai) == 0) {
			format_address(ai->ai_addr, conn->timing.address,
			               sizeof(conn->timing.address));
			ret = 0;
			break;
		}
		if (conn->fail == NET_CANCELLED)
			break;
	}
	freeaddrinfo(res);
	conn->timing.tcp_ms = (unsigned)(fm_now_ms() - t0);
	if (ret < 0) {
		tcp_error(conn, err);
		conn_free(conn);
		return -1;
	}
	fm_trace_session_note(conn->trace, "connected to %s (%s:%u)",
	                      conn->timing.address, conn->host, conn->port);
	if (t->tls == FM_TLS_IMPLICIT && net_tls_handshake(conn, err) < 0) {
		conn_free(conn);
		return -1;
	}
	mailstream_low *low = mailstream_low_new(conn, &net_driver);
	/* Big reads: a TLS record is up to 16 KiB, a download many MB. */
	mailstream *stream = mailstream_new(low, 65536);
	*stream_r = stream;
	*conn_r = conn;
	return 0;
}

int
fm_net_start_tls(struct fm_net_conn *conn, mailstream *stream,
                 struct fm_error *err)
{
	/* Anything the server sent after its "go ahead" was sent in clear
	 * and would be read as if it came over TLS: response injection. Look
	 * in libetpan's buffer and in the socket. */
	char peek;
	ssize_t n = recv(conn->fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT);
	if (stream->read_buffer_len > 0 || n > 0) {
		fm_net_err_injection(conn, err);
		return fm_error_detail(err, "%zu bytes buffered",
		                       stream->read_buffer_len);
	}
	if (net_tls_handshake(conn, err) < 0)
		return -1;
	/* A new protocol stream begins on the TLS layer. */
	bool imap = conn->guard.imap;
	memset(&conn->guard, 0, sizeof(conn->guard));
	conn->guard.imap = imap;
	return 0;
}

bool
fm_net_is_tls(const struct fm_net_conn *conn)
{
	return conn->ssl != NULL;
}

const struct fm_tls_info *
fm_net_tls_info(const struct fm_net_conn *conn)
{
	return conn->has_tls_info ? &conn->tls_info : NULL;
}

const struct fm_net_timing *
fm_net_timing(const struct fm_net_conn *conn)
{
	return &conn->timing;
}

const char *
fm_net_host(const struct fm_net_conn *conn)
{
	return conn->host;
}

unsigned
fm_net_port(const struct fm_net_conn *conn)
{
	return conn->port;
}

bool
fm_net_failed(const struct fm_net_conn *conn)
{
	return conn->fail != NET_OK;
}

int
fm_net_error(const struct fm_net_conn *conn, const char *what,
             struct fm_error *err)
{
	const char *h = conn->host;
	unsigned p = conn->port;
	switch (conn->fail) {
	case NET_OK:
		return fm_error_set(err, FM_ERR_PROTOCOL,
		                    _("%s:%u answered something fulmar could "
		                      "not understand while %s"),
		                    h, p, what);
	case NET_TIMEOUT:
		return fm_error_set(err, FM_ERR_TEMPORARY,
		                    _("%s:%u did not answer within %u s while "
		                      "%s"),
		                    h, p, conn->limits.io_timeout_ms / 1000,
		                    what);
	case NET_CANCELLED:
		return fm_error_set(err, FM_ERR_CANCELLED,
		                    _("cancelled while %s"), what);
	case NET_EOF:
		return fm_error_set(err, FM_ERR_TEMPORARY,
		                    _("%s:%u closed the connection while %s"),
		                    h, p, what);
	case NET_IO:
		return fm_error_errno(err, FM_ERR_TEMPORARY, conn->fail_errno,
		                      _("connection to %s:%u failed while %s"),
		                      h, p, what);
	case NET_TLS:
		fm_error_set(err, FM_ERR_TEMPORARY,
		             _("the TLS connection to %s:%u failed while %s"),
		             h, p, what);
		return fm_error_detail(err, "%s", conn->fail_detail);
	case NET_LINE:
		return fm_error_set(err, FM_ERR_PROTOCOL,
		                    _("%s:%u sent a response longer than %zu "
		                      "bytes while %s; fulmar stopped reading "
		                      "(a broken or hostile server)"),
		                    h, p, conn->limits.max_line, what);
	case NET_LITERAL:
		return fm_error_set(
		    err, FM_ERR_PROTOCOL,
		    _("%s:%u announced %s bytes of data while "
		      "%s, more than the limit of %llu; "
		      "fulmar stopped reading (a broken or "
		      "hostile server)"),
		    h, p, conn->fail_detail, what,
		    (unsigned long long)conn->limits.max_literal);
	}
	return -1;
}

int
fm_net_write(struct fm_net_conn *conn, mailstream *stream, const char *data,
             size_t len, struct fm_error *err)
{
	if (mailstream_write(stream, data, len) != (ssize_t)len ||
	    mailstream_flush(stream) != 0)
		return fm_net_error(conn, _("sending a command"), err);
	return 0;
}

int
fm_net_may_send_credentials(const struct fm_net_conn *conn,
                            const struct fm_account *acct, struct fm_error *err)
{
	if (fm_net_is_tls(conn) || acct->allow_plaintext_login)
		return 0;
	return fm_error_set(
	    err, FM_ERR_CONFIG,
	    _("fulmar will not send the password for %s over the "
	      "unencrypted connection to %s:%u; use tls = starttls or "
	      "tls = implicit, or set allow_plaintext_login = yes if you "
	      "really mean it"),
	    acct->name, conn->host, conn->port);
}

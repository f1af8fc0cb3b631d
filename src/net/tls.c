/* SPDX-License-Identifier: GPL-3.0-or-later */
/* TLS with OpenSSL: the handshake on a connected socket, then verification
 * (chain and host name, or a pinned fingerprint) before a single protocol
 * byte goes out. Verification runs with SSL_VERIFY_NONE and is judged after
 * the handshake, so a failure can show the user what the server presented
 * (names, issuer, dates, fingerprint) and how to pin it. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "net/net_int.h"

void
fm_net_fingerprint_hex(const uint8_t fp[32], char out[96])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 0; i < 32; i++) {
		if (i > 0)
			out[o++] = ':';
		out[o++] = hex[fp[i] >> 4];
		out[o++] = hex[fp[i] & 15];
	}
	out[o] = '\0';
}

void
net_tls_free(struct fm_net_conn *conn)
{
	if (conn->ssl != NULL) {
		SSL_free(conn->ssl);
		conn->ssl = NULL;
	}
	if (conn->ssl_ctx != NULL) {
		SSL_CTX_free(conn->ssl_ctx);
		conn->ssl_ctx = NULL;
	}
}

static bool
is_ip_literal(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, host, buf) == 1 ||
	       inet_pton(AF_INET6, host, buf) == 1;
}

static void
name_to_string(X509_NAME *name, char *out, size_t size)
{
	out[0] = '\0';
	BIO *bio = BIO_new(BIO_s_mem());
	if (bio == NULL)
		return;
	X509_NAME_print_ex(bio, name, 0,
	                   XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
	int n = BIO_read(bio, out, (int)size - 1);
	out[n > 0 ? n : 0] = '\0';
	BIO_free(bio);
}

static void
time_to_string(const ASN1_TIME *t, char *out, size_t size)
{
	struct tm tm;
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
		fm_strlcpy(out, "?", size);
		return;
	}
	strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* The names a certificate presents: its DNS and IP subjectAltNames, or
 * its common name when it has none. */
static void
cert_names(X509 *cert, char *out, size_t size)
{
	struct fm_buf b;
	fm_buf_init(&b, size - 1);
	GENERAL_NAMES *sans =
	    X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	int n = sans != NULL ? sk_GENERAL_NAME_num(sans) : 0;
	for (int i = 0; i < n; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		char ip[INET6_ADDRSTRLEN];
		if (gn->type == GEN_DNS) {
			const unsigned char *s =
			    ASN1_STRING_get0_data(gn->d.dNSName);
			int len = ASN1_STRING_length(gn->d.dNSName);
			fm_buf_printf(&b, "%sDNS:%.*s", b.len ? ", " : "", len,
			              (const char *)s);
		} else if (gn->type == GEN_IPADD) {
			int len = ASN1_STRING_length(gn->d.iPAddress);
			const unsigned char *s =
			    ASN1_STRING_get0_data(gn->d.iPAddress);
			int af = len == 4 ? AF_INET : len == 16 ? AF_INET6 : -1;
			if (af > 0 && inet_ntop(af, s, ip, sizeof(ip)) != NULL)
				fm_buf_printf(&b, "%sIP:%s", b.len ? ", " : "",
				              ip);
		}
	}
	GENERAL_NAMES_free(sans);
	if (b.len == 0) {
		char cn[256] = "";
		X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
		                          NID_commonName, cn, sizeof(cn));
		if (cn[0] != '\0')
			fm_buf_printf(&b, "CN:%s", cn);
	}
	fm_strlcpy(out, b.data, size);
	fm_buf_free(&b);
}

static void
fill_info(struct fm_net_conn *conn, X509 *cert)
{
	struct fm_tls_info *info = &conn->tls_info;
	memset(info, 0, sizeof(*info));
	fm_strlcpy(info->protocol, SSL_get_version(conn->ssl),
	           sizeof(info->protocol));
	fm_strlcpy(info->cipher, SSL_get_cipher_name(conn->ssl),
	           sizeof(info->cipher));
	if (cert != NULL) {
		name_to_string(X509_get_subject_name(cert), info->subject,
		               sizeof(info->subject));
		name_to_string(X509_get_issuer_name(cert), info->issuer,
		               sizeof(info->issuer));
		time_to_string(X509_get0_notBefore(cert), info->not_before,
		               sizeof(info->not_before));
		time_to_string(X509_get0_notAfter(cert), info->not_after,
		               sizeof(info->not_after));
		cert_names(cert, info->names, sizeof(info->names));
		unsigned len = 0;
		X509_digest(cert, EVP_sha256(), info->fingerprint, &len);
	}
	conn->has_tls_info = true;
}

static int
ssl_failure(struct fm_net_conn *conn, const char *what, struct fm_error *err)
{
	char detail[256] = "";
	unsigned long e = ERR_get_error();
	if (e != 0)
		ERR_error_string_n(e, detail, sizeof(detail));
	if (conn->fail == NET_TIMEOUT)
		return fm_error_set(err, FM_ERR_TEMPORARY,
		                    _("the TLS handshake with %s:%u timed "
		                      "out"),
		                    conn->host, conn->port);
	if (conn->fail == NET_CANCELLED)
		return fm_error_set(err, FM_ERR_CANCELLED,
		                    _("the TLS handshake was cancelled"));
	if (ERR_GET_REASON(e) == SSL_R_UNSUPPORTED_PROTOCOL ||
	    ERR_GET_REASON(e) == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION)
		fm_error_set(err, FM_ERR_TLS,
		             _("%s:%u only speaks a TLS version older than "
		               "1.2, which fulmar refuses as insecure"),
		             conn->host, conn->port);
	else
		fm_error_set(err, FM_ERR_TLS,
		             _("the TLS handshake with %s:%u failed (%s); "
		               "is this port really TLS? For a port that "
		               "starts in plain text, use tls = starttls"),
		             conn->host, conn->port, what);
	return fm_error_detail(err, "%s", detail);
}

/* Turns a verification failure into what the user should do. */
static int
verify_failure(struct fm_net_conn *conn, long result, struct fm_error *err)
{
	const struct fm_tls_info *info = &conn->tls_info;
	char fp[96];
	fm_net_fingerprint_hex(info->fingerprint, fp);
	const char *h = conn->host;
	switch (result) {
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		fm_error_set(err, FM_ERR_TLS,
		             _("certificate name mismatch: %s:%u presents a "
		               "certificate for %s, but fulmar connected to "
		               "%s; use one of the certificate's names as "
		               "host, or ask the provider for the right "
		               "server name"),
		             h, conn->port, info->names, h);
		break;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		fm_error_set(err, FM_ERR_TLS,
		             _("the certificate of %s:%u expired on %s; the "
		               "server's administrator must renew it (or "
		               "check your computer's clock)"),
		             h, conn->port, info->not_after);
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		fm_error_set(err, FM_ERR_TLS,
		             _("the certificate of %s:%u is not valid before "
		               "%s; check your computer's clock"),
		             h, conn->port, info->not_before);
		break;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
		fm_error_set(err, FM_ERR_TLS,
		             _("the certificate of %s:%u is %s, issued by "
		               "'%s', which fulmar does not trust. If you "
		               "know this certificate is right, pin it in "
		               "the account:\ntls_fingerprint = sha256:%s\n"
		               "(or name the issuing CA with tls_ca_file)"),
		             h, conn->port,
		             result == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
		                 ? _("self-signed")
		                 : _("from an unknown issuer"),
		             info->issuer, fp);
		break;
	default:
		fm_error_set(err, FM_ERR_TLS,
		             _("the certificate of %s:%u cannot be trusted: "
		               "%s"),
		             h, conn->port,
		             X509_verify_cert_error_string(result));
		break;
	}
	return fm_error_detail(err, "verify result %ld: %s", result,
	                       X509_verify_cert_error_string(result));
}

int
net_tls_handshake(struct fm_net_conn *conn, struct fm_error *err)
{
	uint64_t t0 = fm_now_ms();
	conn->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (conn->ssl_ctx == NULL)
		return fm_error_set(err, FM_ERR_LOCAL,
		                    _("cannot set up TLS (OpenSSL)"));
	SSL_CTX_set_min_proto_version(conn->ssl_ctx, TLS1_2_VERSION);
	/* Read what the socket has, not a record header then its body:
	 * a download of many records takes a tenth of the system calls.
	 * Waits must then ask SSL_has_pending() (fm_net_wait_readable). */
	SSL_CTX_set_read_ahead(conn->ssl_ctx, 1);
	SSL_CTX_set_default_read_buffer_len(conn->ssl_ctx, 1 << 17);
	SSL_CTX_set_verify(conn->ssl_ctx, SSL_VERIFY_NONE, NULL);
	if (conn->ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(conn->ssl_ctx, conn->ca_file,
		                                  NULL) != 1) {
			fm_error_set(err, FM_ERR_CONFIG,
			             _("cannot load the CA certificates in "
			               "tls_ca_file %s"),
			             conn->ca_file);
			return fm_error_detail(
			    err, "%s", ERR_error_string(ERR_get_error(), NULL));
		}
	} else if (SSL_CTX_set_default_verify_paths(conn->ssl_ctx) != 1) {
		return fm_error_set(err, FM_ERR_LOCAL,
		                    _("cannot load the system's CA "
		                      "certificates (install "
		                      "ca-certificates)"));
	}
	conn->ssl = SSL_new(conn->ssl_ctx);
	if (conn->ssl == NULL || SSL_set_fd(conn->ssl, conn->fd) != 1)
		return fm_error_set(err, FM_ERR_LOCAL,
		                    _("cannot set up TLS (OpenSSL)"));
	X509_VERIFY_PARAM *param = SSL_get0_param(conn->ssl);
	if (is_ip_literal(conn->host)) {
		X509_VERIFY_PARAM_set1_ip_asc(param, conn->host);
	} else {
		SSL_set_tlsext_host_name(conn->ssl, conn->host);
		/* RFC 6125/7817: a wildcard only as the whole leftmost
		 * label. */
		X509_VERIFY_PARAM_set_hostflags(
		    param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		X509_VERIFY_PARAM_set1_host(param, conn->host, 0);
	}

	uint64_t deadline = fm_now_ms() + conn->limits.io_timeout_ms;
	for (;;) {
		ERR_clear_error();
		int r = SSL_connect(conn->ssl);
		if (r == 1)
			break;
		int e = SSL_get_error(conn->ssl, r);
		short ev = e == SSL_ERROR_WANT_READ    ? POLLIN
		           : e == SSL_ERROR_WANT_WRITE ? POLLOUT
		                                       : 0;
		if (ev == 0 || net_wait(conn, ev, deadline) < 0) {
			int ret = ssl_failure(conn,
			                      e == SSL_ERROR_SYSCALL ||
			                              e == SSL_ERROR_ZERO_RETURN
			                          ? _("the server closed the "
			                              "connection")
			                          : _("protocol error"),
			                      err);
			net_tls_free(conn);
			return ret;
		}
	}
	conn->timing.tls_ms = (unsigned)(fm_now_ms() - t0);

	X509 *cert = SSL_get1_peer_certificate(conn->ssl);
	fill_info(conn, cert);
	int ret = 0;
	if (cert == NULL) {
		ret = fm_error_set(err, FM_ERR_TLS,
		                   _("%s:%u presented no certificate"),
		                   conn->host, conn->port);
	} else if (conn->has_fingerprint) {
		/* A pin replaces CA trust and names: it names this exact
		 * certificate. */
		if (memcmp(conn->fingerprint, conn->tls_info.fingerprint, 32) ==
		    0) {
			conn->tls_info.verified = true;
			conn->tls_info.pinned = true;
		} else {
			char got[96], want[96];
			fm_net_fingerprint_hex(conn->tls_info.fingerprint, got);
			fm_net_fingerprint_hex(conn->fingerprint, want);
			ret = fm_error_set(
			    err, FM_ERR_TLS,
			    _("the certificate of %s:%u does not match the "
			      "pinned tls_fingerprint: the server presents "
			      "sha256:%s, the config pins sha256:%s. If "
			      "the server's certificate was renewed, "
			      "update the pin"),
			    conn->host, conn->port, got, want);
		}
	} else {
		long result = SSL_get_verify_result(conn->ssl);
		if (result == X509_V_OK)
			conn->tls_info.verified = true;
		else
			ret = verify_failure(conn, result, err);
	}
	X509_free(cert);
	fm_trace_session_note(conn->trace, "TLS %s %s, certificate %s (%s)",
	                      conn->tls_info.protocol, conn->tls_info.cipher,
	                      conn->tls_info.subject,
	                      conn->tls_info.verified ? "trusted"
	                                              : "NOT trusted");
	if (ret < 0) {
		/* Say nothing more to an untrusted peer. */
		net_tls_free(conn);
	}
	return ret;
}

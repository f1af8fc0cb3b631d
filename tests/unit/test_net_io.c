/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The connection layer's time and cancellation promises, against sockets
 * this test opens on 127.0.0.1: a silent peer ends in a timeout error, a
 * cancel from another thread ends a blocked read at once, a peer that
 * closes mid-line is reported as such, and an endless line is cut by the
 * guard. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"

/* A listening socket on 127.0.0.1; the kernel completes connections even
 * if nobody accepts them, which makes a perfectly silent server. */
static int
listen_local(unsigned *port_r)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 8), 0);
	socklen_t len = sizeof(sin);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	*port_r = ntohs(sin.sin_port);
	return fd;
}

static void
target_for(struct fm_net_target *t, unsigned port, int cancel_fd,
           unsigned timeout_ms)
{
	memset(t, 0, sizeof(*t));
	t->host = "127.0.0.1";
	t->port = port;
	t->tls = FM_TLS_NONE;
	t->proto = FM_TRACE_IMAP;
	t->label = "test";
	t->cancel_fd = cancel_fd;
	fm_net_limits_default(&t->limits);
	t->limits.io_timeout_ms = timeout_ms;
	t->limits.max_line = 1 << 16;
}

/* Reads one line through libetpan's stream, as the protocols do. */
static int
read_line(struct fm_net_conn *conn, mailstream *stream, struct fm_error *err)
{
	char *line = fm_net_read_line(conn, stream);
	if (line == NULL)
		return fm_net_error(conn, "reading the greeting", err);
	free(line);
	return 0;
}

static void
test_silent_server_times_out(void **state)
{
	unsigned port;
	int lfd = listen_local(&port);
	struct fm_net_target t;
	target_for(&t, port, -1, 300);
	mailstream *stream;
	struct fm_net_conn *conn;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_net_connect(&t, &stream, &conn, &err), 0);
	uint64_t t0 = fm_now_ms();
	assert_int_equal(read_line(conn, stream, &err), -1);
	uint64_t took = fm_now_ms() - t0;
	assert_true(took >= 290 && took < 2000);
	assert_int_equal(err.cls, FM_ERR_TEMPORARY);
	assert_non_null(strstr(err.user, "did not answer within"));
	mailstream_close(stream);
	fm_net_conn_free(&conn);
	close(lfd);
}

static void
test_connect_timeout_names_the_port(void **state)
{
	/* A listener that never accepts, its queue full: the kernel drops
	 * further SYNs, just as a firewall that drops packets would. */
	unsigned port;
	int lfd = listen_local(&port);
	listen(lfd, 0);
	int fill[8];
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons((uint16_t)port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < 8; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		connect(fill[i], (struct sockaddr *)&sin, sizeof(sin));
	}
	usleep(100 * 1000);
	struct fm_net_target t;
	target_for(&t, port, -1, 5000);
	t.limits.connect_timeout_ms = 300;
	mailstream *stream = NULL;
	struct fm_net_conn *conn = NULL;
	struct fm_error err;
	fm_error_clear(&err);
	uint64_t t0 = fm_now_ms();
	int ret = fm_net_connect(&t, &stream, &conn, &err);
	uint64_t took = fm_now_ms() - t0;
	for (int i = 0; i < 8; i++)
		close(fill[i]);
	close(lfd);
	if (ret == 0) {
		/* The kernel let this one through after all: nothing to
		 * assert about timeouts on this machine. */
		mailstream_close(stream);
		fm_net_conn_free(&conn);
		skip();
	}
	assert_int_equal(ret, -1);
	assert_true(took >= 290 && took < 3000);
	assert_int_equal(err.cls, FM_ERR_TEMPORARY);
	char want[64];
	snprintf(want, sizeof(want), "firewall may block port %u", port);
	assert_non_null(strstr(err.user, want));
	assert_null(stream);
	assert_null(conn);
}

struct canceller {
	int efd;
	unsigned after_ms;
};

static void *
cancel_later(void *arg)
{
	struct canceller *c = arg;
	usleep(c->after_ms * 1000);
	uint64_t one = 1;
	ssize_t n = write(c->efd, &one, sizeof(one));
	(void)n;
	return NULL;
}

static void
test_cancel_from_another_thread(void **state)
{
	unsigned port;
	int lfd = listen_local(&port);
	int efd = eventfd(0, EFD_CLOEXEC);
	struct fm_net_target t;
	target_for(&t, port, efd, 60000);
	mailstream *stream;
	struct fm_net_conn *conn;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_net_connect(&t, &stream, &conn, &err), 0);
	struct canceller c = {.efd = efd, .after_ms = 100};
	pthread_t th;
	pthread_create(&th, NULL, cancel_later, &c);
	uint64_t t0 = fm_now_ms();
	assert_int_equal(read_line(conn, stream, &err), -1);
	uint64_t took = fm_now_ms() - t0;
	pthread_join(th, NULL);
	/* Stopped at once, not after the 60 s timeout. */
	assert_true(took < 1000);
	assert_int_equal(err.cls, FM_ERR_CANCELLED);
	mailstream_close(stream);
	fm_net_conn_free(&conn);
	close(efd);
	close(lfd);
}

struct peer {
	int lfd;
	const char *send;
	size_t repeat; /* send this many times */
	bool close_after;
};

static void *
peer_main(void *arg)
{
	struct peer *p = arg;
	int fd = accept(p->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	for (size_t i = 0; i < p->repeat; i++)
		if (send(fd, p->send, strlen(p->send), MSG_NOSIGNAL) < 0)
			break;
	if (!p->close_after)
		usleep(500 * 1000);
	close(fd);
	return NULL;
}

static void
test_close_in_mid_line(void **state)
{
	unsigned port;
	struct peer p = {
	    .send = "* OK half a gree", .repeat = 1, .close_after = true};
	p.lfd = listen_local(&port);
	pthread_t th;
	pthread_create(&th, NULL, peer_main, &p);
	struct fm_net_target t;
	target_for(&t, port, -1, 5000);
	mailstream *stream;
	struct fm_net_conn *conn;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_net_connect(&t, &stream, &conn, &err), 0);
	assert_int_equal(read_line(conn, stream, &err), -1);
	assert_int_equal(err.cls, FM_ERR_TEMPORARY);
	assert_non_null(strstr(err.user, "closed the connection"));
	pthread_join(th, NULL);
	mailstream_close(stream);
	fm_net_conn_free(&conn);
	close(p.lfd);
}

static void
test_endless_line_is_cut(void **state)
{
	unsigned port;
	/* 64 KiB limit, 4 MiB offered without a line end. */
	static char chunk[4097];
	memset(chunk, 'x', 4096);
	struct peer p = {.send = chunk, .repeat = 1024, .close_after = true};
	p.lfd = listen_local(&port);
	pthread_t th;
	pthread_create(&th, NULL, peer_main, &p);
	struct fm_net_target t;
	target_for(&t, port, -1, 5000);
	mailstream *stream;
	struct fm_net_conn *conn;
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_net_connect(&t, &stream, &conn, &err), 0);
	assert_int_equal(read_line(conn, stream, &err), -1);
	assert_int_equal(err.cls, FM_ERR_PROTOCOL);
	assert_non_null(strstr(err.user, "longer than 65536 bytes"));
	mailstream_close(stream);
	fm_net_conn_free(&conn);
	pthread_join(th, NULL);
	close(p.lfd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_silent_server_times_out),
	    cmocka_unit_test(test_connect_timeout_names_the_port),
	    cmocka_unit_test(test_cancel_from_another_thread),
	    cmocka_unit_test(test_close_in_mid_line),
	    cmocka_unit_test(test_endless_line_is_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* `fulmar watch`: every account's schedule, headless, until SIGTERM or
 * SIGINT. The main thread is one poll() loop over a signalfd, the workers'
 * message queue, the control socket and its clients, and the kernel's
 * network changes; the workers decide when to pass and the store thread
 * runs the passes. One line per pass goes to stdout. SIGHUP reads the
 * configuration again; SIGUSR1 asks every account for a pass. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "account/account.h"
#include "cli/cli.h"
#include "log/log.h"
#include "store/store.h"

enum {
	/* An account is told about new mail at most this often. */
	NOTIFY_INTERVAL_MS = 10000,
	/* Notification commands running at once; more are skipped. */
	MAX_CHILDREN = 16,
	/* A control client must send its request within this time. */
	CLIENT_TIMEOUT_MS = 5000,
	REQUEST_MAX = 16 * 1024,
	MAX_CLIENTS = 32,
};

/* A `fulmar sync` waiting for its passes. */
struct client {
	int fd;
	struct fm_buf in;
	uint64_t deadline; /* for the request line */
	bool asked;
	size_t n;         /* accounts asked for */
	size_t *accounts; /* indexes */
	uint64_t *seqs;   /* the pass number that answers */
	bool *done;
	size_t n_done;
};

struct watch {
	struct fm_cli_ctx *ctx;
	char *data_dir;
	struct fm_sched_params params;
	struct fm_trace *trace;
	struct fm_store_service *svc;
	struct fm_workers *workers;
	struct fm_push_pool *push; /* push for idle = yes */
	struct fm_notifier *notifier;
	int sfd, lfd, nlfd;
	struct client *clients;
	size_t n_clients;
	pid_t children[MAX_CHILDREN];
	size_t n_children;
	bool tty;
};

/* ------------------------------------------------------------------------
 * Output.
 */

static void
stamp(char *buf, size_t size)
{
	time_t t = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
}

static void
format_delay(uint64_t ms, char *buf, size_t size)
{
	uint64_t s = (ms + 999) / 1000;
	if (s < 120)
		snprintf(buf, size, "%llu s", (unsigned long long)s);
	else
		snprintf(buf, size, "%llu min", (unsigned long long)(s / 60));
}

static void
log_pass(struct watch *wa, const struct fm_account_msg *m)
{
	char ts[32], delay[32];
	stamp(ts, sizeof(ts));
	format_delay(m->verdict.next_ms, delay, sizeof(delay));
	const char *why = fm_pass_reason_name(m->reason);
	if (m->err.cls == FM_ERR_NONE) {
		if (wa->ctx->verbosity < 0)
			return;
		printf("%s [%s] ", ts, why);
		fm_cli_print_pass(stdout, m->name, &m->result);
		return;
	}
	if (m->err.cls == FM_ERR_CANCELLED) {
		if (wa->ctx->verbosity >= 0)
			printf(_("%s [%s] %s: cancelled\n"), ts, why, m->name);
		return;
	}
	/* The sentence once; a repeat of the same trouble in one line. */
	const char *sentence = m->verdict.changed ? m->err.user : NULL;
	switch (m->verdict.state) {
	case FM_SCHED_OFFLINE:
		if (sentence != NULL)
			printf(_("%s [%s] %s: offline: %s; next try in %s\n"),
			       ts, why, m->name, sentence, delay);
		else
			printf(_("%s [%s] %s: still offline; next try in "
			         "%s\n"),
			       ts, why, m->name, delay);
		break;
	case FM_SCHED_RETRYING:
		if (sentence != NULL)
			printf(_("%s [%s] %s: %s; next try in %s\n"), ts, why,
			       m->name, sentence, delay);
		else
			printf(_("%s [%s] %s: failed again (%s); next try in "
			         "%s\n"),
			       ts, why, m->name,
			       fm_error_class_name(m->err.cls), delay);
		break;
	case FM_SCHED_STOPPED:
	default:
		printf(_("%s [%s] %s: %s\n"), ts, why, m->name, m->err.user);
		if (m->verdict.changed)
			printf(_("%s %s: stopped until you fix this: then run "
			         "'fulmar sync %s' or send fulmar watch a "
			         "SIGHUP\n"),
			       ts, m->name, m->name);
		break;
	}
	if (wa->ctx->verbosity > 0 && m->err.detail[0] != '\0')
		printf("%s %s: (%s)\n", ts, m->name, m->err.detail);
}

/* ------------------------------------------------------------------------
 * Notifications.
 */

static void
reap_children(struct watch *wa)
{
	for (size_t i = 0; i < wa->n_children;) {
		int st;
		pid_t r = waitpid(wa->children[i], &st, WNOHANG);
		if (r == wa->children[i] || (r < 0 && errno == ECHILD)) {
			if (r > 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
				fm_log_warn("notify_cmd failed (status %d)",
				            WIFEXITED(st) ? WEXITSTATUS(st)
				                          : 128 + WTERMSIG(st));
			wa->children[i] = wa->children[--wa->n_children];
		} else {
			i++;
		}
	}
}

static void
tell(struct watch *wa, const struct fm_notify_batch *b)
{
	const struct fm_config *cfg = wa->ctx->cfg;
	const struct fm_account *a = fm_config_find_account(cfg, b->account);
	const char *cmd = a != NULL && a->notify_cmd != NULL
	                      ? a->notify_cmd
	                      : cfg->general.notify_cmd;
	if (cfg->general.bell && wa->tty) {
		fputc('\a', stdout);
		fflush(stdout);
	}
	/* An empty notify_cmd (an account's too) means none. */
	if (cmd == NULL || cmd[0] == '\0')
		return;
	reap_children(wa);
	if (wa->n_children >= MAX_CHILDREN) {
		fm_log_warn("%d notify_cmd commands are still running; "
		            "skipping one for %s",
		            MAX_CHILDREN, b->account);
		return;
	}
	struct fm_notify_vars v = {
	    .account = b->account,
	    .folder = b->folder,
	    .from = b->from,
	    .subject = b->subject,
	    .count = b->count,
	};
	struct fm_error err;
	fm_error_clear(&err);
	pid_t pid;
	if (fm_notify_spawn(cmd, &v, &pid, &err) < 0) {
		fm_log_warn("%s", err.user);
		return;
	}
	wa->children[wa->n_children++] = pid;
}

static uint64_t
notify_due(struct watch *wa)
{
	struct fm_notify_batch b;
	uint64_t wait;
	while (fm_notifier_take(wa->notifier, fm_now_ms(), &b, &wait)) {
		tell(wa, &b);
		fm_notify_batch_free(&b);
	}
	return wait;
}

/* ------------------------------------------------------------------------
 * Control clients.
 */

static void
client_send(struct client *c, const char *line)
{
	if (c->fd < 0)
		return;
	if (send(c->fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		close(c->fd);
		c->fd = -1;
	}
}

static void
client_free(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	fm_buf_free(&c->in);
	free(c->accounts);
	free(c->seqs);
	free(c->done);
}

static void
client_finish_if_done(struct client *c)
{
	if (c->asked && c->n_done == c->n) {
		client_send(c, "end\n");
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
	}
}

static void
client_answer(struct client *c, size_t i, const char *name,
              const struct fm_pass_result *res, const struct fm_error *err)
{
	char *line = fm_control_format_reply(name, res, err);
	client_send(c, line);
	free(line);
	c->done[i] = true;
	c->n_done++;
}

/* The request line arrived: ask the workers for the passes. */
static void
client_request(struct watch *wa, struct client *c, char *line)
{
	const struct fm_config *cfg = wa->ctx->cfg;
	char **names;
	size_t n;
	c->asked = true;
	if (fm_control_parse_request(line, &names, &n) < 0) {
		close(c->fd);
		c->fd = -1;
		return;
	}
	size_t count = n > 0 ? n : cfg->n_accounts;
	c->accounts = xcalloc(count ? count : 1, sizeof(*c->accounts));
	c->seqs = xcalloc(count ? count : 1, sizeof(*c->seqs));
	c->done = xcalloc(count ? count : 1, sizeof(*c->done));
	c->n = count;
	for (size_t i = 0; i < count; i++) {
		const struct fm_account *a =
		    n > 0 ? fm_config_find_account(cfg, names[i])
		          : &cfg->accounts[i];
		struct fm_error err;
		fm_error_clear(&err);
		if (a == NULL) {
			fm_error_set(&err, FM_ERR_USAGE,
			             _("the running fulmar has no account "
			               "named '%s'"),
			             names[i]);
			client_answer(c, i, names[i], NULL, &err);
			continue;
		}
		c->accounts[i] = (size_t)(a - cfg->accounts);
		if (fm_workers_request(wa->workers, c->accounts[i],
		                       &c->seqs[i]) < 0) {
			fm_error_set(&err, FM_ERR_LOCAL,
			             _("the running fulmar does not run "
			               "account %s"),
			             a->name);
			client_answer(c, i, a->name, NULL, &err);
		}
	}
	free(names);
	if (wa->ctx->verbosity > 0) {
		char ts[32];
		stamp(ts, sizeof(ts));
		printf(_("%s a manual pass was asked for through the control "
		         "socket\n"),
		       ts);
	}
	client_finish_if_done(c);
}

static void
client_read(struct watch *wa, struct client *c)
{
	char buf[4096];
	ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* Gone. A client that asked still gets its passes. */
		close(c->fd);
		c->fd = -1;
		return;
	}
	if (c->asked)
		return; /* one request per connection */
	if (fm_buf_append(&c->in, buf, (size_t)n) < 0) {
		close(c->fd);
		c->fd = -1;
		return;
	}
	char *nl = memchr(c->in.data, '\n', c->in.len);
	if (nl == NULL)
		return;
	*nl = '\0';
	client_request(wa, c, c->in.data);
}

static void
accept_client(struct watch *wa)
{
	int fd = accept4(wa->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if (!fm_control_peer_ok(fd) || wa->n_clients >= MAX_CLIENTS) {
		close(fd);
		return;
	}
	wa->clients =
	    xreallocarray(wa->clients, wa->n_clients + 1, sizeof(*wa->clients));
	struct client *c = &wa->clients[wa->n_clients++];
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	fm_buf_init(&c->in, REQUEST_MAX);
	c->deadline = fm_now_ms() + CLIENT_TIMEOUT_MS;
}

/* Drops clients that are answered, gone before asking, or too slow. */
static void
prune_clients(struct watch *wa)
{
	uint64_t now = fm_now_ms();
	for (size_t i = 0; i < wa->n_clients;) {
		struct client *c = &wa->clients[i];
		if (!c->asked && c->fd >= 0 && now >= c->deadline) {
			close(c->fd);
			c->fd = -1;
		}
		bool over = c->fd < 0 && (!c->asked || c->n_done == c->n);
		if (over) {
			client_free(c);
			wa->clients[i] = wa->clients[--wa->n_clients];
		} else {
			i++;
		}
	}
}

/* Answers every open question with err (shutting down, reloading). */
static void
answer_all(struct watch *wa, const struct fm_error *err)
{
	const struct fm_config *cfg = wa->ctx->cfg;
	for (size_t i = 0; i < wa->n_clients; i++) {
		struct client *c = &wa->clients[i];
		for (size_t k = 0; c->asked && k < c->n; k++)
			if (!c->done[k])
				client_answer(
				    c, k, cfg->accounts[c->accounts[k]].name,
				    NULL, err);
		client_finish_if_done(c);
	}
	prune_clients(wa);
}

/* ------------------------------------------------------------------------
 * Messages from the workers.
 */

static void
on_message(struct watch *wa, struct fm_account_msg *m)
{
	char ts[32];
	switch (m->kind) {
	case FM_MSG_STATE:
		if (wa->ctx->verbosity > 0) {
			stamp(ts, sizeof(ts));
			printf("%s %s: %s\n", ts, m->name,
			       fm_account_state_name(m->state));
		}
		break;
	case FM_MSG_PROGRESS:
		if (wa->ctx->verbosity > 1) {
			stamp(ts, sizeof(ts));
			printf(_("%s %s: %s: %zu/%zu messages\n"), ts, m->name,
			       m->folder, m->done, m->total);
		}
		break;
	case FM_MSG_NEW_MAIL:
		if (wa->ctx->verbosity > 0) {
			stamp(ts, sizeof(ts));
			printf(_("%s %s: new in %s from %s: %s\n"), ts, m->name,
			       m->folder, m->from, m->subject);
		}
		break;
	case FM_MSG_PASS: {
		log_pass(wa, m);
		const struct fm_pass_result *r = &m->result;
		if (r->n_new > 0)
			fm_notifier_add(wa->notifier, m->name,
			                r->n_news ? r->news[0].folder : "",
			                r->n_news ? r->news[0].from : "",
			                r->n_news ? r->news[0].subject : "",
			                r->n_new);
		for (size_t i = 0; i < wa->n_clients; i++) {
			struct client *c = &wa->clients[i];
			for (size_t k = 0; c->asked && k < c->n; k++)
				if (!c->done[k] &&
				    c->accounts[k] == m->account &&
				    m->seq >= c->seqs[k])
					client_answer(c, k, m->name, r,
					              &m->err);
			client_finish_if_done(c);
		}
		break;
	}
	}
	fflush(stdout);
}

/* ------------------------------------------------------------------------
 * Start, stop, reload.
 */

static int
start(struct watch *wa, struct fm_error *err)
{
	const struct fm_config *cfg = wa->ctx->cfg;
	char *index_dir = fm_store_index_dir(wa->data_dir);
	char *notmuch = fm_path_join(index_dir, ".notmuch");
	bool have_index = access(notmuch, F_OK) == 0;
	free(notmuch);
	free(index_dir);
	struct fm_store_opts so = {
	    .cfg = cfg,
	    .data_dir = wa->data_dir,
	    .wait_for_lock = false,
	    .index = have_index,
	};
	if (fm_store_service_start(&so, &wa->svc, err) < 0)
		return -1;
	struct fm_workers_opts wo = {
	    .cfg = cfg,
	    .store = wa->svc,
	    .trace = wa->trace,
	    .params = wa->params,
	};
	if (fm_workers_start(&wo, &wa->workers, err) < 0) {
		fm_store_service_stop(&wa->svc);
		return -1;
	}
	if (fm_push_pool_start(cfg, wa->data_dir, wa->workers, wa->trace,
	                       &wa->push, err) < 0) {
		fm_workers_stop(&wa->workers, NULL, NULL);
		fm_store_service_stop(&wa->svc);
		return -1;
	}
	return 0;
}

static void
take_message(void *ctx, struct fm_account_msg *m)
{
	on_message(ctx, m);
	fm_account_msg_free(&m);
}

static void
stop(struct watch *wa, const char *why)
{
	/* Push asks the workers for passes: it goes first. */
	fm_push_pool_stop(&wa->push);
	/* The cancelled passes are logged and answered like any other. */
	fm_workers_stop(&wa->workers, take_message, wa);
	struct fm_error err;
	fm_error_clear(&err);
	fm_error_set(&err, FM_ERR_CANCELLED, "%s", why);
	answer_all(wa, &err);
	fm_store_service_stop(&wa->svc);
}

/* SIGHUP: the new configuration replaces the old one if it loads; the
 * store and the workers start again with it (stopped accounts get their
 * chance again). */
static int
reload(struct watch *wa)
{
	struct fm_cli_ctx *ctx = wa->ctx;
	struct fm_config *old = ctx->cfg;
	ctx->cfg = NULL;
	char ts[32];
	stamp(ts, sizeof(ts));
	if (fm_cli_load_config(ctx) != 0) {
		fm_config_free(&ctx->cfg);
		ctx->cfg = old;
		fprintf(stderr, _("fulmar watch: the configuration has errors; "
		                  "keeping the one in use\n"));
		return 0;
	}
	struct fm_config *fresh = ctx->cfg;
	ctx->cfg = old;
	stop(wa, _("the configuration was reloaded"));
	ctx->cfg = fresh;
	fm_config_free(&old);
	struct fm_error err;
	fm_error_clear(&err);
	if (start(wa, &err) < 0)
		return fm_cli_report(ctx, &err);
	if (ctx->verbosity >= 0)
		printf(_("%s configuration reloaded: %zu accounts\n"), ts,
		       ctx->cfg->n_accounts);
	return 0;
}

/* ------------------------------------------------------------------------
 * The loop.
 */

/* SIGUSR1: a manual pass of every account, nobody waiting for it. */
static void
pass_all(struct watch *wa)
{
	for (size_t i = 0; i < wa->ctx->cfg->n_accounts; i++) {
		uint64_t seq;
		fm_workers_request(wa->workers, i, &seq);
	}
}

static int
parse_duration(const char *s, uint64_t *ms_r)
{
	size_t nd = strspn(s, "0123456789");
	char digits[16];
	if (nd == 0 || nd >= sizeof(digits))
		return -1;
	memcpy(digits, s, nd);
	digits[nd] = '\0';
	long n;
	if (fm_parse_long(digits, 1, 999999, &n) < 0)
		return -1;
	const char *unit = s + nd;
	uint64_t mult;
	if (strcmp(unit, "") == 0 || strcmp(unit, "s") == 0)
		mult = 1000;
	else if (strcmp(unit, "m") == 0)
		mult = 60000;
	else if (strcmp(unit, "h") == 0)
		mult = 3600000;
	else
		return -1;
	*ms_r = (uint64_t)n * mult;
	return 0;
}

static int
loop(struct watch *wa)
{
	int status = 0;
	for (;;) {
		uint64_t wait = notify_due(wa);
		prune_clients(wa);
		uint64_t now = fm_now_ms();
		for (size_t i = 0; i < wa->n_clients; i++) {
			const struct client *c = &wa->clients[i];
			if (!c->asked && c->deadline > now &&
			    c->deadline - now < wait)
				wait = c->deadline - now;
		}
		size_t nfds = 4 + wa->n_clients;
		struct pollfd *pfd = xcalloc(nfds, sizeof(*pfd));
		pfd[0] = (struct pollfd){.fd = wa->sfd, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = fm_workers_fd(wa->workers),
		                         .events = POLLIN};
		pfd[2] = (struct pollfd){.fd = wa->lfd, .events = POLLIN};
		pfd[3] = (struct pollfd){.fd = wa->nlfd, .events = POLLIN};
		for (size_t i = 0; i < wa->n_clients; i++)
			pfd[4 + i] = (struct pollfd){.fd = wa->clients[i].fd,
			                             .events = POLLIN};
		int timeout = wait >= 60000 ? 60000 : (int)wait;
		int n = poll(pfd, (nfds_t)nfds, timeout);
		if (n < 0 && errno != EINTR) {
			free(pfd);
			struct fm_error err;
			fm_error_errno(&err, FM_ERR_LOCAL, errno, "poll");
			return fm_cli_report(wa->ctx, &err);
		}
		bool quit = false, hup = false;
		if (n > 0 && (pfd[0].revents & POLLIN)) {
			struct signalfd_siginfo si;
			while (read(wa->sfd, &si, sizeof(si)) ==
			       (ssize_t)sizeof(si)) {
				if (si.ssi_signo == SIGTERM ||
				    si.ssi_signo == SIGINT)
					quit = true;
				else if (si.ssi_signo == SIGHUP)
					hup = true;
				else if (si.ssi_signo == SIGUSR1)
					pass_all(wa);
				else if (si.ssi_signo == SIGCHLD)
					reap_children(wa);
			}
		}
		if (n > 0 && (pfd[1].revents & POLLIN)) {
			struct fm_account_msg *m;
			while ((m = fm_workers_next(wa->workers)) != NULL) {
				on_message(wa, m);
				fm_account_msg_free(&m);
			}
		}
		if (n > 0 && (pfd[2].revents & POLLIN))
			accept_client(wa);
		if (n > 0 && wa->nlfd >= 0 && (pfd[3].revents & POLLIN) &&
		    fm_netwatch_read(wa->nlfd)) {
			fm_workers_network_changed(wa->workers);
			fm_push_pool_network_changed(wa->push);
		}
		/* Only the clients polled: accept_client may have added
		 * one (and moved the array). */
		for (size_t i = 0; n > 0 && i + 4 < nfds; i++)
			if (pfd[4 + i].revents & (POLLIN | POLLHUP | POLLERR))
				client_read(wa, &wa->clients[i]);
		free(pfd);
		if (quit)
			break;
		if (hup && (status = reload(wa)) != 0)
			break;
	}
	return status;
}

int
fm_cmd_watch(struct fm_cli_ctx *ctx, int argc, char **argv)
{
	enum { OPT_MAX_BACKOFF = 256 };
	static const struct option options[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"max-backoff", required_argument, NULL, OPT_MAX_BACKOFF},
	    {NULL, 0, NULL, 0},
	};
	struct watch wa = {.ctx = ctx, .sfd = -1, .lfd = -1, .nlfd = -1};
	fm_sched_params_default(&wa.params);
	int c;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case 'h':
			printf(_("usage: fulmar watch [--max-backoff "
			         "DURATION]\n"
			         "Runs every account's schedule until SIGTERM "
			         "or SIGINT; SIGHUP reloads the config,\n"
			         "SIGUSR1 asks every account for a pass.\n"
			         "  --max-backoff DURATION  the longest wait "
			         "between retries after a failure\n"
			         "                          (default 10m, 2m "
			         "while offline; like 30s, 5m)\n"));
			return 0;
		case OPT_MAX_BACKOFF: {
			uint64_t ms;
			if (parse_duration(optarg, &ms) < 0) {
				fprintf(stderr,
				        _("fulmar watch: --max-backoff wants a "
				          "duration like 30s or 5m, got "
				          "'%s'\n"),
				        optarg);
				return 64;
			}
			wa.params.retry_max_ms = ms;
			if (wa.params.offline_max_ms > ms)
				wa.params.offline_max_ms = ms;
			if (wa.params.retry_first_ms > ms)
				wa.params.retry_first_ms = ms;
			break;
		}
		default:
			return 64;
		}
	}
	if (optind < argc) {
		fprintf(stderr, _("usage: fulmar watch [--max-backoff "
		                  "DURATION]\n"));
		return 64;
	}
	int ret = fm_cli_load_config(ctx);
	if (ret != 0)
		return ret;
	setvbuf(stdout, NULL, _IOLBF, 0);
	wa.tty = isatty(1);
	struct fm_error err;
	fm_error_clear(&err);
	if (fm_trace_open(ctx->log_protocol != NULL
	                      ? ctx->log_protocol
	                      : ctx->cfg->general.log_protocol,
	                  &wa.trace, &err) < 0)
		return fm_cli_report(ctx, &err);
	wa.data_dir = fm_path_data_dir();
	/* The signals are read from a signalfd; blocked before any thread
	 * starts, so that every thread inherits the mask. */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	wa.sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	int status = 0;
	if (wa.sfd < 0) {
		fm_error_errno(&err, FM_ERR_LOCAL, errno,
		               _("cannot read signals"));
		status = fm_cli_report(ctx, &err);
		goto out;
	}
	if (fm_path_mkdirs(wa.data_dir, 0700, &err) < 0 ||
	    start(&wa, &err) < 0) {
		status = fm_cli_report(ctx, &err);
		goto out;
	}
	/* The store holds every account's lock now: the socket is ours. */
	if (fm_control_listen(wa.data_dir, &wa.lfd, &err) < 0) {
		stop(&wa, "");
		status = fm_cli_report(ctx, &err);
		goto out;
	}
	wa.nlfd = fm_netwatch_open();
	wa.notifier = fm_notifier_new(NOTIFY_INTERVAL_MS);
	if (ctx->verbosity >= 0) {
		char ts[32];
		stamp(ts, sizeof(ts));
		printf(_("%s fulmar watch (pid %ld): %zu accounts\n"), ts,
		       (long)getpid(), ctx->cfg->n_accounts);
	}
	status = loop(&wa);
	/* Stop taking requests first, then cancel the passes. */
	close(wa.lfd);
	wa.lfd = -1;
	fm_control_unlink(wa.data_dir);
	stop(&wa, _("fulmar watch is stopping"));
	/* What fits in a moment is still told. */
	notify_due(&wa);
	reap_children(&wa);
	if (ctx->verbosity >= 0 && status == 0) {
		char ts[32];
		stamp(ts, sizeof(ts));
		printf(_("%s fulmar watch stopped\n"), ts);
	}
out:
	for (size_t i = 0; i < wa.n_clients; i++)
		client_free(&wa.clients[i]);
	free(wa.clients);
	fm_notifier_free(&wa.notifier);
	if (wa.nlfd >= 0)
		close(wa.nlfd);
	if (wa.lfd >= 0)
		close(wa.lfd);
	if (wa.sfd >= 0)
		close(wa.sfd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	free(wa.data_dir);
	fm_trace_close(&wa.trace);
	return status;
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Push: one session per watched folder that waits for the server to say
 * something changed. IDLE is run by hand, not with mailimap_idle():
 * libetpan 1.9.4 drops an untagged response that arrives before
 * "+ idling" and then waits for its stream to time out. Before waiting on
 * the socket, data already buffered (libetpan's or OpenSSL's) counts. A
 * server without IDLE is polled with NOOP. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap.h"
#include "log/log.h"

/* RFC 2177: re-issue IDLE at least every 29 minutes. */
#define IDLE_MAX_MS (28u * 60u * 1000u)
/* Without IDLE: how often to ask. */
#define POLL_MS (60u * 1000u)

struct fm_imap_watch {
	struct fm_imap *imap;
	char *folder; /* local name, for messages */
	bool idle;
	unsigned tag;
	uint32_t exists, uidnext;
};

const char *
fm_imap_watch_folder(const struct fm_imap_watch *w)
{
	return w->folder;
}

int
fm_imap_watch_open(const struct fm_account *acct,
                   const struct fm_session_opts *o, const char *folder,
                   struct fm_imap_watch **w_r, struct fm_error *err)
{
	*w_r = NULL;
	struct fm_imap *imap = NULL;
	if (fm_imap_open(acct, o, &imap, err) < 0)
		return -1;
	char *name = NULL;
	if (fm_imap_server_name(imap, folder, &name, err) < 0)
		goto fail;
	if (mailimap_examine(fm_imap_session(imap), name) !=
	    MAILIMAP_NO_ERROR) {
		char what[512];
		snprintf(what, sizeof(what), _("opening the folder %s"),
		         folder);
		fm_imap_fail(imap, what, err);
		free(name);
		goto fail;
	}
	free(name);
	struct fm_imap_watch *w = xcalloc(1, sizeof(*w));
	w->imap = imap;
	w->folder = xstrdup(folder);
	w->idle = fm_imap_has_cap(imap, "IDLE");
	const struct mailimap_selection_info *si =
	    fm_imap_session(imap)->imap_selection_info;
	if (si != NULL) {
		w->exists = si->sel_exists;
		w->uidnext = si->sel_uidnext;
	}
	*w_r = w;
	return 0;
fail:
	fm_imap_abort(&imap);
	return -1;
}

void
fm_imap_watch_close(struct fm_imap_watch **w)
{
	if (*w == NULL)
		return;
	fm_imap_close(&(*w)->imap);
	free((*w)->folder);
	free(*w);
	*w = NULL;
}

/* Does an untagged response say the folder changed? */
static bool
is_news(const char *line)
{
	if (strncmp(line, "* ", 2) != 0)
		return false;
	const char *p = line + 2;
	if (fm_str_has_prefix(p, "VANISHED"))
		return true;
	p += strspn(p, "0123456789");
	if (p == line + 2 || *p != ' ')
		return false;
	p++;
	return strncmp(p, "EXISTS", 6) == 0 || strncmp(p, "EXPUNGE", 7) == 0 ||
	       strncmp(p, "FETCH", 5) == 0;
}

static int
lost(struct fm_imap_watch *w, const char *what, struct fm_error *err)
{
	return fm_net_error(fm_imap_conn(w->imap), what, err);
}

/* Polling for servers without IDLE: wait (cancellable), then NOOP. */
static int
poll_noop(struct fm_imap_watch *w, unsigned max_ms, struct fm_error *err)
{
	mailimap *s = fm_imap_session(w->imap);
	struct fm_net_conn *conn = fm_imap_conn(w->imap);
	unsigned wait = max_ms < POLL_MS ? max_ms : POLL_MS;
	if (fm_net_wait_readable(conn, s->imap_stream, wait) < 0)
		return lost(w, _("waiting for new mail"), err);
	if (mailimap_noop(s) != MAILIMAP_NO_ERROR)
		return fm_imap_fail(w->imap, _("asking for new mail (NOOP)"),
		                    err);
	const struct mailimap_selection_info *si = s->imap_selection_info;
	if (si == NULL)
		return 0;
	bool news = si->sel_exists != w->exists;
	w->exists = si->sel_exists;
	return news ? 1 : 0;
}

int
fm_imap_watch_wait(struct fm_imap_watch *w, unsigned max_ms,
                   struct fm_error *err)
{
	if (!w->idle)
		return poll_noop(w, max_ms, err);
	mailimap *s = fm_imap_session(w->imap);
	struct fm_net_conn *conn = fm_imap_conn(w->imap);
	mailstream *st = s->imap_stream;
	if (max_ms > IDLE_MAX_MS)
		max_ms = IDLE_MAX_MS;
	char tag[32], cmd[48];
	snprintf(tag, sizeof(tag), "fmw%u", ++w->tag);
	int n = snprintf(cmd, sizeof(cmd), "%s IDLE\r\n", tag);
	if (fm_net_write(conn, st, cmd, (size_t)n, err) < 0)
		return -1;
	bool news = false, idling = false;
	/* Until "+ idling": untagged responses may come first (the reason
	 * libetpan's own IDLE is not used). */
	while (!idling) {
		char *line = fm_net_read_line(conn, st);
		if (line == NULL)
			return lost(w, _("starting IDLE"), err);
		if (line[0] == '+')
			idling = true;
		else if (fm_str_has_prefix(line, tag) &&
		         line[strlen(tag)] == ' ') {
			char shown[256];
			fm_str_printable(line, shown, sizeof(shown));
			free(line);
			return fm_error_set(err, FM_ERR_PROTOCOL,
			                    _("%s refused IDLE: %s"),
			                    fm_net_host(conn), shown);
		} else if (fm_str_has_prefix(line, "* BYE")) {
			free(line);
			return fm_error_set(err, FM_ERR_TEMPORARY,
			                    _("%s closed the connection"),
			                    fm_net_host(conn));
		}
		news |= is_news(line);
		free(line);
	}
	uint64_t deadline = fm_now_ms() + max_ms;
	while (!news) {
		uint64_t now = fm_now_ms();
		if (now >= deadline)
			break;
		int r =
		    fm_net_wait_readable(conn, st, (unsigned)(deadline - now));
		if (r < 0)
			return lost(w, _("waiting for new mail"), err);
		if (r == 0)
			break;
		char *line = fm_net_read_line(conn, st);
		if (line == NULL)
			return lost(w, _("waiting for new mail"), err);
		bool bye = fm_str_has_prefix(line, "* BYE");
		news |= is_news(line); /* "* OK Still here" is not */
		free(line);
		if (bye)
			return fm_error_set(err, FM_ERR_TEMPORARY,
			                    _("%s closed the connection"),
			                    fm_net_host(conn));
	}
	if (fm_net_write(conn, st, "DONE\r\n", 6, err) < 0)
		return -1;
	for (;;) {
		char *line = fm_net_read_line(conn, st);
		if (line == NULL)
			return lost(w, _("ending IDLE"), err);
		bool done =
		    fm_str_has_prefix(line, tag) && line[strlen(tag)] == ' ';
		if (!done)
			news |= is_news(line);
		free(line);
		if (done)
			break;
	}
	return news ? 1 : 0;
}

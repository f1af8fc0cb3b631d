/* SPDX-License-Identifier: GPL-3.0-or-later */
/* New-mail notifications: the user's notify_cmd with placeholders that no
 * sender can turn into shell code, gathered and rate-limited per account;
 * and the terminal title with unread counts. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "account/account.h"

extern char **environ;

/* ------------------------------------------------------------------------
 * The command line. The template is scanned as the shell will read it, so
 * each placeholder can be written as an expansion of its variable that is
 * one double-quoted word wherever it stands: bare it becomes "${V}", inside
 * "..." ${V}, inside '...' it closes the single quotes for '"${V}"'. The
 * shell never parses the result of an expansion, so a value like
 * `$(rm -rf ~)` stays text.
 */

static const char *
var_of(char c)
{
	switch (c) {
	case 'a':
		return "FULMAR_ACCOUNT";
	case 'f':
		return "FULMAR_FOLDER";
	case 'F':
		return "FULMAR_FROM";
	case 's':
		return "FULMAR_SUBJECT";
	case 'n':
		return "FULMAR_COUNT";
	default:
		return NULL;
	}
}

char *
fm_notify_command(const char *tmpl)
{
	enum { OUT, SQ, DQ } q = OUT;
	struct fm_buf b;
	fm_buf_init(&b, SIZE_MAX / 2);
	for (const char *p = tmpl; *p != '\0'; p++) {
		char c = *p;
		if (c == '%') {
			const char *var = var_of(p[1]);
			if (p[1] == '%') {
				fm_buf_append_char(&b, '%');
				p++;
			} else if (var != NULL) {
				if (q == OUT)
					fm_buf_printf(&b, "\"${%s}\"", var);
				else if (q == DQ)
					fm_buf_printf(&b, "${%s}", var);
				else
					fm_buf_printf(&b, "'\"${%s}\"'", var);
				p++;
			} else {
				fm_buf_append_char(&b, '%');
			}
			continue;
		}
		if (c == '\\' && q != SQ) {
			/* An escaped character is copied with its backslash;
			 * a backslash before a placeholder is dropped, as it
			 * would escape the quote the placeholder begins with.
			 */
			if (p[1] == '%')
				continue;
			fm_buf_append_char(&b, c);
			if (p[1] != '\0')
				fm_buf_append_char(&b, *++p);
			continue;
		}
		if (q == OUT && c == '\'')
			q = SQ;
		else if (q == OUT && c == '"')
			q = DQ;
		else if ((q == SQ && c == '\'') || (q == DQ && c == '"'))
			q = OUT;
		fm_buf_append_char(&b, c);
	}
	return fm_buf_steal(&b);
}

char **
fm_notify_env(const struct fm_notify_vars *v)
{
	char **env = xcalloc(6, sizeof(*env));
	env[0] = xasprintf("FULMAR_ACCOUNT=%s", v->account ? v->account : "");
	env[1] = xasprintf("FULMAR_FOLDER=%s", v->folder ? v->folder : "");
	env[2] = xasprintf("FULMAR_FROM=%s", v->from ? v->from : "");
	env[3] = xasprintf("FULMAR_SUBJECT=%s", v->subject ? v->subject : "");
	env[4] = xasprintf("FULMAR_COUNT=%zu", v->count);
	return env;
}

void
fm_notify_env_free(char **env)
{
	if (env == NULL)
		return;
	for (char **e = env; *e != NULL; e++)
		free(*e);
	free(env);
}

int
fm_notify_spawn(const char *tmpl, const struct fm_notify_vars *vars,
                pid_t *pid_r, struct fm_error *err)
{
	char *cmd = fm_notify_command(tmpl);
	char **ours = fm_notify_env(vars);
	/* The environment: ours first, then the process's own without any
	 * FULMAR_* it may carry. */
	size_t n = 0;
	while (environ != NULL && environ[n] != NULL)
		n++;
	char **envp = xcalloc(n + 6, sizeof(*envp));
	size_t k = 0;
	for (char **e = ours; *e != NULL; e++)
		envp[k++] = *e;
	for (size_t i = 0; i < n; i++)
		if (!fm_str_has_prefix(environ[i], "FULMAR_"))
			envp[k++] = environ[i];
	envp[k] = NULL;

	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawnattr_init(&attr);
	/* Its own process group, the default signal mask and dispositions:
	 * the caller blocks signals it reads through a signalfd. */
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
	                                    POSIX_SPAWN_SETSIGDEF |
	                                    POSIX_SPAWN_SETPGROUP);
	char *argv[] = {"sh", "-c", cmd, NULL};
	int r = posix_spawn(pid_r, "/bin/sh", &fa, &attr, argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	fm_notify_env_free(ours);
	free(cmd);
	if (r != 0)
		return fm_error_errno(err, FM_ERR_LOCAL, r,
		                      _("cannot run notify_cmd"));
	return 0;
}

/* ------------------------------------------------------------------------
 * Batching.
 */

struct pending {
	struct fm_notify_batch b;
	bool have;        /* something to tell */
	bool told;        /* told before: last_ms counts */
	uint64_t last_ms; /* when it was last told */
};

struct fm_notifier {
	uint64_t min_interval_ms;
	struct pending *items;
	size_t n;
};

struct fm_notifier *
fm_notifier_new(uint64_t min_interval_ms)
{
	struct fm_notifier *n = xcalloc(1, sizeof(*n));
	n->min_interval_ms = min_interval_ms;
	return n;
}

void
fm_notify_batch_free(struct fm_notify_batch *b)
{
	free(b->account);
	free(b->folder);
	free(b->from);
	free(b->subject);
	memset(b, 0, sizeof(*b));
}

void
fm_notifier_free(struct fm_notifier **np)
{
	struct fm_notifier *n = *np;
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n; i++)
		fm_notify_batch_free(&n->items[i].b);
	free(n->items);
	free(n);
	*np = NULL;
}

static struct pending *
find(struct fm_notifier *n, const char *account)
{
	for (size_t i = 0; i < n->n; i++)
		if (strcmp(n->items[i].b.account, account) == 0)
			return &n->items[i];
	n->items = xreallocarray(n->items, n->n + 1, sizeof(*n->items));
	struct pending *p = &n->items[n->n++];
	memset(p, 0, sizeof(*p));
	p->b.account = xstrdup(account);
	return p;
}

void
fm_notifier_add(struct fm_notifier *n, const char *account, const char *folder,
                const char *from, const char *subject, size_t count)
{
	if (count == 0)
		return;
	struct pending *p = find(n, account);
	if (!p->have) {
		p->b.folder = xstrdup(folder != NULL ? folder : "");
		p->b.from = xstrdup(from != NULL ? from : "");
		p->b.subject = xstrdup(subject != NULL ? subject : "");
		p->b.count = 0;
		p->have = true;
	}
	p->b.count += count;
}

bool
fm_notifier_take(struct fm_notifier *n, uint64_t now_ms,
                 struct fm_notify_batch *b, uint64_t *wait_ms_r)
{
	uint64_t wait = FM_SCHED_NEVER;
	for (size_t i = 0; i < n->n; i++) {
		struct pending *p = &n->items[i];
		if (!p->have)
			continue;
		uint64_t at = p->told ? p->last_ms + n->min_interval_ms : 0;
		if (at <= now_ms) {
			*b = p->b;
			b->account = xstrdup(p->b.account);
			p->b.folder = p->b.from = p->b.subject = NULL;
			p->b.count = 0;
			p->have = false;
			p->told = true;
			p->last_ms = now_ms;
			return true;
		}
		if (at - now_ms < wait)
			wait = at - now_ms;
	}
	*wait_ms_r = wait;
	return false;
}

/* ------------------------------------------------------------------------
 * The terminal title.
 */

void
fm_title_format(const struct fm_title_count *counts, size_t n, char *buf,
                size_t size)
{
	if (size == 0)
		return;
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += counts[i].unread;
	if (total == 0) {
		fm_strlcpy(buf, "fulmar", size);
		return;
	}
	struct fm_buf b;
	fm_buf_init(&b, size - 1);
	/* Appends that do not fit leave the buffer as it was, so the title
	 * ends at the last account that fitted whole. */
	if (fm_buf_printf(&b, _("fulmar: %zu unread"), total) < 0)
		fm_buf_printf(&b, "%zu", total);
	const char *sep = " (";
	bool open = false;
	for (size_t i = 0; i < n; i++) {
		if (counts[i].unread == 0)
			continue;
		if (fm_buf_printf(&b, "%s%s %zu", sep, counts[i].account,
		                  counts[i].unread) < 0)
			break;
		sep = ", ";
		open = true;
	}
	if (open && fm_buf_append_char(&b, ')') < 0 && b.len > 0) {
		/* No room for the parenthesis: close it instead of the last
		 * character. */
		b.data[b.len - 1] = ')';
	}
	fm_strlcpy(buf, b.data, size);
	fm_buf_free(&b);
}

void
fm_title_escape(const char *text, char *buf, size_t size)
{
	if (size == 0)
		return;
	struct fm_buf b;
	fm_buf_init(&b, size - 1);
	fm_buf_append_str(&b, "\033]2;");
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		/* C0, DEL and the C1 controls' UTF-8 form (C2 80..9F). */
		if (*p < 0x20 || *p == 0x7f)
			continue;
		if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			p++;
			continue;
		}
		/* Keep room for the terminator. */
		if (b.len + 2 > b.max)
			break;
		fm_buf_append_char(&b, (char)*p);
	}
	/* Never end inside a UTF-8 sequence: drop an incomplete last one. */
	size_t start = b.len, cont = 0;
	while (start > 4 && cont < 3 &&
	       ((unsigned char)b.data[start - 1] & 0xc0) == 0x80) {
		start--;
		cont++;
	}
	if (start > 4) {
		unsigned char lead = (unsigned char)b.data[start - 1];
		size_t want = lead >= 0xf0   ? 3
		              : lead >= 0xe0 ? 2
		              : lead >= 0xc0 ? 1
		                             : 0;
		if (want > cont)
			b.len = start - 1;
	}
	b.data[b.len] = '\0';
	fm_buf_append_char(&b, '\a');
	fm_strlcpy(buf, b.data, size);
	fm_buf_free(&b);
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The protocol trace: every line both ways, with authentication arguments
 * replaced before anything is written. Redaction is stateful because SASL
 * exchanges span several lines: once a client starts authenticating, every
 * client line is secret until the server ends the exchange. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"

enum { TRACE_LINE_MAX = 4096 };

struct fm_trace {
	pthread_mutex_t lock;
	FILE *file;
};

struct fm_trace_session {
	struct fm_trace *trace; /* may be NULL: redaction only */
	enum fm_trace_proto proto;
	char *label;
	bool in_auth; /* client lines are secret until the server ends it */
	char tag[32]; /* IMAP: the tag of the LOGIN/AUTHENTICATE command */
	struct fm_buf partial[2]; /* an unfinished line per direction */
	bool skipping[2];         /* dropping the rest of an overlong line */
};

int
fm_trace_open(const char *path, struct fm_trace **trace_r, struct fm_error *err)
{
	*trace_r = NULL;
	if (path == NULL)
		return 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return fm_error_errno(err, FM_ERR_LOCAL, errno,
		                      _("cannot open the protocol log %s"),
		                      path);
	struct fm_trace *t = xcalloc(1, sizeof(*t));
	t->file = fdopen(fd, "a");
	if (t->file == NULL) {
		int e = errno;
		close(fd);
		free(t);
		return fm_error_errno(err, FM_ERR_LOCAL, e,
		                      _("cannot open the protocol log %s"),
		                      path);
	}
	pthread_mutex_init(&t->lock, NULL);
	*trace_r = t;
	return 0;
}

void
fm_trace_close(struct fm_trace **trace)
{
	struct fm_trace *t = *trace;
	if (t == NULL)
		return;
	fclose(t->file);
	pthread_mutex_destroy(&t->lock);
	free(t);
	*trace = NULL;
}

struct fm_trace_session *
fm_trace_session_new(struct fm_trace *trace, enum fm_trace_proto proto,
                     const char *label)
{
	struct fm_trace_session *s = xcalloc(1, sizeof(*s));
	s->trace = trace;
	s->proto = proto;
	s->label = xstrdup(label);
	fm_buf_init(&s->partial[0], TRACE_LINE_MAX);
	fm_buf_init(&s->partial[1], TRACE_LINE_MAX);
	return s;
}

void
fm_trace_session_free(struct fm_trace_session **sess)
{
	struct fm_trace_session *s = *sess;
	if (s == NULL)
		return;
	/* Partial lines may hold secrets on their way out. */
	for (int i = 0; i < 2; i++) {
		fm_wipe(s->partial[i].data, s->partial[i].cap);
		fm_buf_free(&s->partial[i]);
	}
	free(s->label);
	free(s);
	*sess = NULL;
}

/* Length of the word at s (up to a space or the end). */
static size_t
word_len(const char *s)
{
	size_t n = 0;
	while (s[n] != '\0' && s[n] != ' ')
		n++;
	return n;
}

static bool
word_is(const char *s, size_t len, const char *word)
{
	return len == strlen(word) && strncasecmp(s, word, len) == 0;
}

/* "PREFIX ARG ..." → "PREFIX <redacted>" when there are arguments after
 * keep_words words. */
static char *
redact_after(const char *line, unsigned keep_words)
{
	const char *p = line;
	for (unsigned i = 0; i < keep_words; i++) {
		p += word_len(p);
		if (*p == '\0')
			return xstrdup(line);
		p++;
	}
	if (*p == '\0')
		return xstrdup(line);
	return xasprintf("%.*s%s", (int)(p - line), line, FM_REDACTED);
}

static char *
redact_imap_send(struct fm_trace_session *s, const char *line)
{
	size_t tl = word_len(line);
	if (line[tl] != ' ')
		return NULL;
	const char *cmd = line + tl + 1;
	size_t cl = word_len(cmd);
	bool login = word_is(cmd, cl, "LOGIN");
	bool authenticate = word_is(cmd, cl, "AUTHENTICATE");
	if (!login && !authenticate)
		return NULL;
	s->in_auth = true;
	snprintf(s->tag, sizeof(s->tag), "%.*s", (int)tl, line);
	/* LOGIN: user and password both go; AUTHENTICATE: the mechanism
	 * stays, an initial response goes. */
	return redact_after(line, login ? 2 : 3);
}

static char *
redact_pop3_send(struct fm_trace_session *s, const char *line)
{
	size_t cl = word_len(line);
	if (word_is(line, cl, "PASS") || word_is(line, cl, "APOP"))
		return redact_after(line, 1);
	if (word_is(line, cl, "AUTH") && line[cl] == ' ') {
		s->in_auth = true;
		return redact_after(line, 2);
	}
	return NULL;
}

static char *
redact_smtp_send(struct fm_trace_session *s, const char *line)
{
	size_t cl = word_len(line);
	if (word_is(line, cl, "AUTH") && line[cl] == ' ') {
		s->in_auth = true;
		return redact_after(line, 2);
	}
	return NULL;
}

/* Does this server line end an authentication exchange? */
static bool
ends_auth(const struct fm_trace_session *s, const char *line)
{
	switch (s->proto) {
	case FM_TRACE_IMAP: {
		size_t tl = strlen(s->tag);
		return strncmp(line, s->tag, tl) == 0 && line[tl] == ' ';
	}
	case FM_TRACE_POP3:
		/* "+ challenge" continues; "+OK" / "-ERR" end. */
		return !(line[0] == '+' && (line[1] == ' ' || line[1] == '\0'));
	case FM_TRACE_SMTP:
		return strncmp(line, "334", 3) != 0;
	}
	return true;
}

char *
fm_trace_redact(struct fm_trace_session *s, enum fm_trace_dir dir,
                const char *line)
{
	char *out = NULL;
	if (dir == FM_TRACE_RECV) {
		if (s->in_auth && ends_auth(s, line))
			s->in_auth = false;
	} else if (s->in_auth) {
		/* A SASL response or the rest of a LOGIN literal. */
		out = xstrdup(FM_REDACTED);
	} else {
		switch (s->proto) {
		case FM_TRACE_IMAP:
			out = redact_imap_send(s, line);
			break;
		case FM_TRACE_POP3:
			out = redact_pop3_send(s, line);
			break;
		case FM_TRACE_SMTP:
			out = redact_smtp_send(s, line);
			break;
		}
	}
	if (out == NULL)
		out = xstrdup(line);
	/* Registered secrets go too, wherever they appear. */
	char *clean = fm_log_scrub(out);
	free(out);
	return clean;
}

static void
format_time(char *buf, size_t size)
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%03ld", (long)(tv.tv_usec / 1000));
}

static void
write_line(struct fm_trace_session *s, const char *who, const char *text)
{
	char when[64];
	format_time(when, sizeof(when));
	pthread_mutex_lock(&s->trace->lock);
	fprintf(s->trace->file, "%s %s %s %s\n", when, s->label, who, text);
	fflush(s->trace->file);
	pthread_mutex_unlock(&s->trace->lock);
}

static void
emit(struct fm_trace_session *s, enum fm_trace_dir dir, struct fm_buf *line,
     bool truncated)
{
	/* Drop the CR of CRLF and make control bytes visible but harmless. */
	if (line->len > 0 && line->data[line->len - 1] == '\r')
		line->data[--line->len] = '\0';
	for (size_t i = 0; i < line->len; i++) {
		unsigned char c = (unsigned char)line->data[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			line->data[i] = '?';
	}
	char *text = fm_trace_redact(s, dir, line->data);
	const char *who = dir == FM_TRACE_SEND ? "C:" : "S:";
	if (truncated) {
		char *t = xasprintf("%s [line truncated]", text);
		write_line(s, who, t);
		free(t);
	} else {
		write_line(s, who, text);
	}
	free(text);
	fm_wipe(line->data, line->len);
	fm_buf_reset(line);
}

void
fm_trace_session_data(struct fm_trace_session *s, enum fm_trace_dir dir,
                      const void *data, size_t len)
{
	if (s == NULL || s->trace == NULL)
		return;
	struct fm_buf *line = &s->partial[dir];
	const char *p = data;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\n') {
			if (s->skipping[dir])
				s->skipping[dir] = false;
			else
				emit(s, dir, line, false);
			continue;
		}
		if (s->skipping[dir])
			continue;
		if (fm_buf_append_char(line, p[i]) < 0) {
			emit(s, dir, line, true);
			s->skipping[dir] = true;
		}
	}
}

void
fm_trace_session_note(struct fm_trace_session *s, const char *fmt, ...)
{
	if (s == NULL || s->trace == NULL)
		return;
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	char *clean = fm_log_scrub(text);
	write_line(s, "==", clean);
	free(clean);
}

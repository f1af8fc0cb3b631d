/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"

/* The sink and level are set at start-up; the secret list changes at run
 * time (a password_cmd runs when a session starts), so it and every write
 * to a sink are guarded by one lock. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static fm_log_sink_fn *log_sink;
static void *log_sink_ctx;
static enum fm_log_level log_level = FM_LOG_WARN;

struct secret {
	char *text;
	size_t len;
};
static struct secret *secrets;
static size_t n_secrets;

enum { MIN_SECRET_LEN = 4, MAX_LINE = 8192 };

static const char *const level_names[] = {
    [FM_LOG_ERROR] = "error",
    [FM_LOG_WARN] = "warning",
    [FM_LOG_INFO] = "info",
    [FM_LOG_DEBUG] = "debug",
};

static void
default_sink(void *ctx, enum fm_log_level level, const char *line)
{
	fprintf(stderr, "fulmar: %s: %s\n", level_names[level], line);
}

void
fm_log_set_sink(fm_log_sink_fn *sink, void *ctx)
{
	pthread_mutex_lock(&log_lock);
	log_sink = sink;
	log_sink_ctx = ctx;
	pthread_mutex_unlock(&log_lock);
}

void
fm_log_set_level(enum fm_log_level level)
{
	log_level = level;
}

enum fm_log_level
fm_log_get_level(void)
{
	return log_level;
}

/* Caller holds log_lock. */
static char *
scrub_locked(const char *text)
{
	struct fm_buf out;
	fm_buf_init(&out, SIZE_MAX / 2);
	const char *p = text;
	while (*p != '\0') {
		size_t best = 0;
		for (size_t i = 0; i < n_secrets; i++) {
			if (secrets[i].len > best &&
			    strncmp(p, secrets[i].text, secrets[i].len) == 0)
				best = secrets[i].len;
		}
		if (best > 0) {
			fm_buf_append_str(&out, FM_REDACTED);
			p += best;
		} else {
			fm_buf_append_char(&out, *p++);
		}
	}
	return fm_buf_steal(&out);
}

char *
fm_log_scrub(const char *text)
{
	pthread_mutex_lock(&log_lock);
	char *s = scrub_locked(text);
	pthread_mutex_unlock(&log_lock);
	return s;
}

void
fm_log_add_secret(const char *secret)
{
	size_t len = strlen(secret);
	if (len < MIN_SECRET_LEN)
		return;
	pthread_mutex_lock(&log_lock);
	for (size_t i = 0; i < n_secrets; i++) {
		if (strcmp(secrets[i].text, secret) == 0) {
			pthread_mutex_unlock(&log_lock);
			return;
		}
	}
	secrets = xreallocarray(secrets, n_secrets + 1, sizeof(*secrets));
	secrets[n_secrets].text = xstrdup(secret);
	secrets[n_secrets].len = len;
	n_secrets++;
	pthread_mutex_unlock(&log_lock);
}

void
fm_log_remove_secret(const char *secret)
{
	pthread_mutex_lock(&log_lock);
	for (size_t i = 0; i < n_secrets; i++) {
		if (strcmp(secrets[i].text, secret) != 0)
			continue;
		fm_free_secret(&secrets[i].text);
		secrets[i] = secrets[--n_secrets];
		break;
	}
	pthread_mutex_unlock(&log_lock);
}

void
fm_log_clear_secrets(void)
{
	pthread_mutex_lock(&log_lock);
	for (size_t i = 0; i < n_secrets; i++)
		fm_free_secret(&secrets[i].text);
	free(secrets);
	secrets = NULL;
	n_secrets = 0;
	pthread_mutex_unlock(&log_lock);
}

void
fm_log(enum fm_log_level level, const char *fmt, ...)
{
	if (level > log_level)
		return;
	char line[MAX_LINE];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	size_t n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	/* A line is a line: control characters (from a server, say) must not
	 * forge extra log lines or drive the terminal. */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 && c != '\t')
			line[i] = '?';
		else if (c == 0x7f)
			line[i] = '?';
	}
	pthread_mutex_lock(&log_lock);
	char *clean = scrub_locked(line);
	if (log_sink != NULL)
		log_sink(log_sink_ctx, level, clean);
	else
		default_sink(NULL, level, clean);
	pthread_mutex_unlock(&log_lock);
	free(clean);
}

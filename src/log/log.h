/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * log — diagnostic logging with a pluggable sink, and the protocol trace.
 *
 * Two promises: a line reaches the sink whole (one call per line, under a
 * lock, so threads never interleave), and no registered secret ever reaches
 * a sink: every line is scrubbed of them first. The protocol trace also knows
 * each protocol's authentication commands and replaces their arguments with
 * "<redacted>" before anything is written.
 */
#ifndef FULMAR_LOG_H
#define FULMAR_LOG_H

#include <stddef.h>
#include <stdio.h>

#include "base/base.h"

enum fm_log_level {
	FM_LOG_ERROR,
	FM_LOG_WARN,
	FM_LOG_INFO,
	FM_LOG_DEBUG,
};

#define FM_REDACTED "<redacted>"

/* A sink receives one complete, already scrubbed line without a newline.
 * Called with the log lock held, from whichever thread logged: it must not
 * log itself. */
typedef void fm_log_sink_fn(void *ctx, enum fm_log_level level,
                            const char *line);

/* Installs the sink (NULL restores the default: stderr, "fulmar: LEVEL:
 * line"). Start-up only, before threads exist. */
void fm_log_set_sink(fm_log_sink_fn *sink, void *ctx);
/* Lines above this level are dropped. Default FM_LOG_WARN. Start-up only. */
void fm_log_set_level(enum fm_log_level level);
enum fm_log_level fm_log_get_level(void);

/* Logs one line (a trailing newline is dropped; embedded newlines and other
 * control characters are shown as '?'). Any thread. */
void fm_log(enum fm_log_level level, const char *fmt, ...) FM_PRINTF(2, 3);
#define fm_log_error(...) fm_log(FM_LOG_ERROR, __VA_ARGS__)
#define fm_log_warn(...) fm_log(FM_LOG_WARN, __VA_ARGS__)
#define fm_log_info(...) fm_log(FM_LOG_INFO, __VA_ARGS__)
#define fm_log_debug(...) fm_log(FM_LOG_DEBUG, __VA_ARGS__)

/* Registers a secret (password, token, their base64 forms are the caller's
 * to add): from now on every occurrence in a log or trace line is replaced
 * by "<redacted>". Secrets shorter than 4 bytes are ignored (they would
 * mangle ordinary text and are not worth hiding). The log keeps its own
 * copy, wiped on removal. Any thread. */
void fm_log_add_secret(const char *secret);
/* Forgets a secret registered before. Any thread. */
void fm_log_remove_secret(const char *secret);
/* Forgets every secret (tests, shutdown). */
void fm_log_clear_secrets(void);
/* Returns a new string: text with every registered secret replaced. */
char *fm_log_scrub(const char *text);

/* ------------------------------------------------------------------------
 * Protocol trace: `--log-protocol FILE`. One file per process, shared by all
 * sessions; each session has a label ("work/imap") and its own redaction
 * state.
 */
enum fm_trace_proto { FM_TRACE_IMAP, FM_TRACE_POP3, FM_TRACE_SMTP };
enum fm_trace_dir { FM_TRACE_SEND, FM_TRACE_RECV };

struct fm_trace;
struct fm_trace_session;

/* Opens (appending, mode 0600) the trace file. NULL path: tracing off, and
 * *trace_r = NULL, which every function below accepts. */
int fm_trace_open(const char *path, struct fm_trace **trace_r,
                  struct fm_error *err);
void fm_trace_close(struct fm_trace **trace);

/* A session's trace. trace may be NULL (then every call is a no-op). The
 * session is used by one thread at a time. */
struct fm_trace_session *fm_trace_session_new(struct fm_trace *trace,
                                              enum fm_trace_proto proto,
                                              const char *label);
void fm_trace_session_free(struct fm_trace_session **sess);
/* Records bytes sent or received; lines are split on LF, redacted and
 * written with a timestamp; a partial line waits for its end (bounded: a
 * line over 4 KiB is written truncated). */
void fm_trace_session_data(struct fm_trace_session *sess, enum fm_trace_dir dir,
                           const void *data, size_t len);
/* Writes an event line ("TLS established: ...") into the trace. */
void fm_trace_session_note(struct fm_trace_session *sess, const char *fmt, ...)
    FM_PRINTF(2, 3);

/* The pure redaction step, exposed for tests: the redacted form of one
 * line (without CR/LF) as seen in a session of the given protocol, updating
 * the session's authentication state. Returns a new string. */
char *fm_trace_redact(struct fm_trace_session *sess, enum fm_trace_dir dir,
                      const char *line);

#endif

/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Threading a folder's messages into conversations from their Message-ID,
 * References and In-Reply-To headers, as mail readers show them: newest
 * conversation first, each one depth-first with replies in date order.
 * Pure and thread-safe.
 */
#ifndef FULMAR_STORE_THREAD_H
#define FULMAR_STORE_THREAD_H

#include <stddef.h>
#include <stdint.h>

/* One message as threading sees it; strings are borrowed. */
struct fm_thread_msg {
	const char *message_id;  /* "<id@host>" or NULL/"" */
	const char *references;  /* the References header's ids, in order,
	                            or NULL */
	const char *in_reply_to; /* or NULL */
	int64_t date;            /* seconds since the epoch */
};

/* One row of the threaded view. */
struct fm_thread_row {
	size_t msg;     /* index into the input */
	unsigned depth; /* 0 for a conversation's first message */
	size_t thread;  /* conversation number, 0 = newest conversation */
};

/* Threads n messages. *rows_r (newly allocated, n rows, free() it) lists
 * every message exactly once: conversations ordered by their newest
 * message, newest first; within one, parents before replies, replies
 * oldest first. A message whose parent is missing hangs from the nearest
 * ancestor that is present (References, then In-Reply-To), else starts a
 * conversation. Duplicate Message-IDs and reference loops are tolerated.
 * Never fails. */
void fm_thread_build(const struct fm_thread_msg *msgs, size_t n,
                     struct fm_thread_row **rows_r);

#endif

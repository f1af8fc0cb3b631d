/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * journal — an account's changes that the server has not confirmed yet.
 *
 * Every local change (flags, move, delete, a new draft or outgoing message)
 * is appended here, and fsynced, before the store tells anyone it happened;
 * the account worker replays the pending records to the server when it can
 * and then acknowledges them, and the store compacts the file now and then.
 * A crash at any point loses no record that an append reported as written,
 * and an acknowledged record is never replayed again.
 *
 * File format, version 1: a sequence of records, each
 *
 *     "FMJ1 " SEQ(16 hex) " " LEN(8 hex) " " PSUM(16 hex) " " HSUM(8 hex) "\n"
 *     PAYLOAD (LEN bytes) "\n"
 *
 * where PSUM is the start of the SHA-256 of the payload and HSUM the start of
 * the SHA-256 of the header's first 48 bytes (everything before HSUM), so a
 * damaged length is caught before it is believed. The payload is text:
 *
 *     OP TIME FLAGS-ADD FLAGS-DEL WATERMARK NSNSNSNSNSNS
 *
 * OP one letter (F flags, M move, D delete, N new local message, A ack,
 * H head), TIME decimal Unix seconds, flags lowercase hex, WATERMARK
 * decimal, then directly six netstrings ("LEN:BYTES,") for folder, base,
 * to-folder, to-base, keywords added, keywords removed (LEN decimal). Sequence
 * numbers strictly increase through the file. Acknowledgements are records too
 * ("A" with the acknowledged sequence as WATERMARK), so the watermark is as
 * durable as any change; compaction writes a new file that starts with an "H"
 * record (its SEQ is the watermark, its WATERMARK field the last sequence used,
 * so numbering goes on where it was), followed by the pending records copied
 * byte for byte, and renames it over the journal.
 *
 * A file that ends inside a record (or in zero bytes where a record should
 * begin) ends in a torn append: the records before it are the journal, the
 * torn tail is ignored and cut off by the next append. Anything else that
 * does not check out is damage, reported with the file and the byte offset.
 *
 * Threads: a journal handle belongs to the store thread.
 */
#ifndef FULMAR_SYNC_JOURNAL_H
#define FULMAR_SYNC_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

enum fm_journal_op {
	FM_JOURNAL_FLAGS = 'F',  /* folder, base, flags_add/del, keywords */
	FM_JOURNAL_MOVE = 'M',   /* folder, base -> to_folder, to_base */
	FM_JOURNAL_DELETE = 'D', /* folder, base */
	FM_JOURNAL_NEW = 'N',    /* folder, base: a draft or outgoing message */
};

/* The longest string a record may hold. */
#define FM_JOURNAL_STRING_MAX 4096

/* One change. Strings are UTF-8 without NUL; an empty string and NULL are
 * the same (replay hands back NULL). In a replay callback the strings
 * belong to the journal and are valid during the call only. */
struct fm_journal_record {
	uint64_t seq; /* set by append; increases strictly */
	enum fm_journal_op op;
	int64_t time;             /* Unix seconds; append fills in 0 */
	const char *folder;       /* required: the folder (relative path) */
	const char *base;         /* required: the message's maildir base */
	const char *to_folder;    /* MOVE: required */
	const char *to_base;      /* MOVE: the base name in to_folder */
	uint32_t flags_add;       /* FLAGS: maildir flag bits set */
	uint32_t flags_del;       /* FLAGS: maildir flag bits cleared */
	const char *keywords_add; /* FLAGS: space-separated, or NULL */
	const char *keywords_del;
};

struct fm_journal;

/* Opens (creating it, mode 0600, if missing) the journal at path and checks
 * every record. A stray PATH.tmp from an interrupted compaction is removed.
 * A torn tail is accepted (and cut off at the next append). Damage is
 * FM_ERR_LOCAL with a sentence naming the file and the byte offset; so is
 * any I/O failure. *journal_r is NULL after a failure. */
int fm_journal_open(const char *path, struct fm_journal **journal_r,
                    struct fm_error *err);
/* Closes the journal and sets *journal to NULL; NULL-safe. */
void fm_journal_close(struct fm_journal **journal);

/* Appends n records with one write() and one fsync(); when it returns 0
 * they are on disk, and recs[i].seq holds each one's sequence number (and
 * recs[i].time is filled in if it was 0). A record with a missing required
 * field or a string longer than FM_JOURNAL_STRING_MAX fails the whole
 * call before anything is written. An I/O failure (FM_ERR_LOCAL) cuts the
 * file back to where it was, so nothing of the failed call is replayed. */
int fm_journal_append(struct fm_journal *journal,
                      struct fm_journal_record *recs, size_t n,
                      struct fm_error *err);

/* Called once per pending record, in order. Returning -1 (with err set)
 * stops the replay, which then returns -1. */
typedef int fm_journal_replay_fn(void *ctx, const struct fm_journal_record *rec,
                                 struct fm_error *err);

/* Reads the file again and calls fn for every record not acknowledged yet,
 * in sequence order. A torn tail ends the replay quietly; damage is
 * FM_ERR_LOCAL naming the file and offset, and fn is not called at all. */
int fm_journal_replay(struct fm_journal *journal, fm_journal_replay_fn *fn,
                      void *ctx, struct fm_error *err);

/* Acknowledges every record with a sequence number up to seq: appends an
 * acknowledgement record (fsynced), after which replays skip them. A seq at
 * or below the current watermark does nothing; a seq past the last record
 * appended is a caller's bug (FM_ERR_LOCAL). */
int fm_journal_ack(struct fm_journal *journal, uint64_t seq,
                   struct fm_error *err);

/* Rewrites the journal without acknowledged records and acknowledgements:
 * a new file (watermark, last sequence, pending records) is written to
 * PATH.tmp, fsynced, renamed over the journal, and the directory fsynced.
 * A crash anywhere leaves the old or the new file, which replay the same
 * records. */
int fm_journal_compact(struct fm_journal *journal, struct fm_error *err);

/* The last sequence number used (0 for a new journal), the watermark, the
 * number of pending records and the file's intact size in bytes. */
uint64_t fm_journal_last_seq(const struct fm_journal *journal);
uint64_t fm_journal_acked(const struct fm_journal *journal);
size_t fm_journal_pending(const struct fm_journal *journal);
uint64_t fm_journal_size(const struct fm_journal *journal);

#endif

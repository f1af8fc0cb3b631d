/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * state — what fulmar last agreed with the server about one folder:
 * UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and, per message, the server's key
 * (an IMAP UID, or a POP3 UIDL with the time it was first seen), the
 * maildir base name of the local copy and the flags both sides had when
 * they were last in agreement. The sync planner compares this with the
 * folder now and the server now to tell who changed what.
 *
 * The file is the truth the next sync starts from, so it is never torn:
 * it is written whole to FILE.tmp, fsynced and renamed over FILE, and it
 * carries its own length and CRC-32, so a truncated or damaged file is
 * detected on load and reported with its path instead of being half-read.
 * A save that changes few entries appends them to FILE.log instead (the
 * change log of base.h: "+ ENTRY" for an entry as it now is, "- KEY" for
 * one removed, after the three counter lines), until the log outgrows a
 * quarter of FILE; then FILE is written whole and the log removed.
 *
 * File format, version 1 (text, one header line, then the body):
 *
 *     fulmar-state 1 imap|pop3 ENTRIES BODY-BYTES CRC32-OF-BODY\n
 *     uidvalidity N\n
 *     uidnext N\n
 *     highestmodseq N\n
 *     KEY FIRST-SEEN FLAGS BASE KEYWORDS\n      (ENTRIES lines, key order)
 *
 * KEY is the UID in decimal or the escaped UIDL, FIRST-SEEN decimal Unix
 * seconds (0 for IMAP), FLAGS lowercase hex. Strings are escaped: the empty
 * string is "-", a lone "-" is "%2D", and '%', bytes up to ' ' and DEL are
 * %XX. A reader of a different version refuses the file.
 *
 * Threads: a struct fm_state belongs to one thread at a time (the store, or
 * a worker it lent it to); the functions keep no global state.
 */
#ifndef FULMAR_SYNC_STATE_H
#define FULMAR_SYNC_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/base.h"

enum fm_state_kind {
	FM_STATE_IMAP = 1, /* entries are keyed by UID */
	FM_STATE_POP3 = 2, /* entries are keyed by UIDL */
};

/* The longest string (UIDL, base name, keyword list) an entry may hold. */
#define FM_STATE_STRING_MAX 4096

/* One message. As an argument, the strings are the caller's (they are
 * copied); as a result, they belong to the state and stay valid until the
 * state next changes (put, remove, clear, free) or is sorted by
 * fm_state_entry_at(). */
struct fm_state_entry {
	uint32_t uid;         /* IMAP: the UID, > 0. POP3: 0 */
	const char *uidl;     /* POP3: the UIDL, non-empty. IMAP: NULL */
	int64_t first_seen;   /* POP3: Unix seconds first seen. IMAP: 0 */
	const char *base;     /* maildir base name of the local copy, or
	                       * NULL if there is none (a POP3 message the
	                       * user deleted but the server keeps) */
	uint32_t flags;       /* last-synced flags; the store uses the
	                       * FM_MAILDIR_* bits of store/maildir.h */
	const char *keywords; /* last-synced keywords, space-separated, or
	                       * NULL; stored as given */
};

struct fm_state;

/* An empty state of the given kind (all counters 0). Never fails. */
struct fm_state *fm_state_new(enum fm_state_kind kind);
/* Frees the state and sets *state to NULL; NULL-safe. */
void fm_state_free(struct fm_state **state);

enum fm_state_kind fm_state_kind(const struct fm_state *state);

/* The folder's counters (IMAP; a POP3 state keeps them at 0). */
uint32_t fm_state_uidvalidity(const struct fm_state *state);
uint32_t fm_state_uidnext(const struct fm_state *state);
uint64_t fm_state_highestmodseq(const struct fm_state *state);
void fm_state_set_uidvalidity(struct fm_state *state, uint32_t v);
void fm_state_set_uidnext(struct fm_state *state, uint32_t v);
void fm_state_set_highestmodseq(struct fm_state *state, uint64_t v);

/* Adds an entry, or replaces the one with the same key (UID or UIDL). The
 * strings are copied. Fails (FM_ERR_LOCAL; a caller's bug) when the key
 * does not fit the kind, a string is longer than FM_STATE_STRING_MAX, or
 * the base name already belongs to another key; the state is then
 * unchanged. O(1) on average. */
int fm_state_put(struct fm_state *state, const struct fm_state_entry *entry,
                 struct fm_error *err);

/* Lookups, O(1) on average. NULL if absent. See struct fm_state_entry for
 * how long the result stays valid. */
const struct fm_state_entry *fm_state_find_uid(const struct fm_state *state,
                                               uint32_t uid);
const struct fm_state_entry *fm_state_find_uidl(const struct fm_state *state,
                                                const char *uidl);
const struct fm_state_entry *fm_state_find_base(const struct fm_state *state,
                                                const char *base);

/* Removes the entry with that key; false if there was none. */
bool fm_state_remove_uid(struct fm_state *state, uint32_t uid);
bool fm_state_remove_uidl(struct fm_state *state, const char *uidl);
/* Removes every entry (a new UIDVALIDITY); the counters stay. */
void fm_state_clear(struct fm_state *state);

/* The number of entries, and entry i in key order (UIDs ascending, UIDLs
 * in strcmp() order; the state sorts itself on the first call after a
 * change, O(n log n)). */
size_t fm_state_count(const struct fm_state *state);
const struct fm_state_entry *fm_state_entry_at(struct fm_state *state,
                                               size_t i);

/* Loads the state file at path into a new state (*state_r; the caller frees
 * it). A missing file is an empty state of kind kind, not an error. A file
 * that is truncated, damaged, of another version or of the other kind is
 * FM_ERR_LOCAL with a sentence naming the file and saying it will be
 * rebuilt, and *damaged_r (if not NULL) is set to true: the caller rebuilds
 * it from the maildir and the server. Any other failure (permissions, I/O)
 * leaves *damaged_r false. *state_r is NULL after a failure. */
int fm_state_load(const char *path, enum fm_state_kind kind,
                  struct fm_state **state_r, bool *damaged_r,
                  struct fm_error *err);

/* Writes the state to path atomically (see fm_file_replace in base.h): after a
 * failure or a crash, path holds the previous state or this one, whole.
 * Sorts the entries (see fm_state_entry_at). */
int fm_state_save(struct fm_state *state, const char *path,
                  struct fm_error *err);

#endif

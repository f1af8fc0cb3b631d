/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The per-folder envelope summary: one line per message with what a folder
 * view needs (date, from, to, subject, flags, size, Message-ID, In-Reply-To,
 * References, file), so listing, sorting and threading a folder never wait
 * for the full-text index. Written by the store thread whenever messages
 * arrive or change; derived from the maildir, so a damaged or missing
 * summary is rebuilt from it (fm_summary_rescan).
 *
 * File: a header line "fulmar-summary 1 COUNT BYTES CRC32", then a line
 * "stamp CUR NEW" (the maildir's cur/ and new/ change times it matches),
 * then one record per message (see base.h's record grammar). A save that
 * changes little appends to the change log FILE.log instead (base.h):
 * "stamp CUR NEW", then "- BASE" per entry removed and "+ RECORD" per
 * entry added or changed, until the log outgrows a quarter of the file.
 * Changes made while the summary is not loaded (fm_summary_append) add
 * "= BASE FILE FLAGS" for an entry whose file and flags changed; they
 * carry no stamp, so the next load lists the maildir.
 *
 * A struct fm_summary belongs to one thread at a time.
 */
#ifndef FULMAR_STORE_SUMMARY_H
#define FULMAR_STORE_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

struct fm_summary_entry {
	const char *base;        /* maildir unique name: the id in the folder */
	const char *file;        /* relative to the folder: "cur/BASE:2,S" */
	uint32_t flags;          /* FM_MAILDIR_* bits, keywords included */
	int64_t date;            /* seconds since the epoch, UTC; 0 unknown */
	uint64_t size;           /* bytes */
	const char *indexed;     /* the file as the index knows it ("cur/.."),
	                            or NULL when not indexed yet */
	const char *from;        /* "Name <addr>", decoded UTF-8, or NULL */
	const char *to;          /* decoded UTF-8, or NULL */
	const char *subject;     /* decoded UTF-8, or NULL */
	const char *message_id;  /* "<id>", or NULL */
	const char *in_reply_to; /* or NULL */
	const char *references;  /* ids separated by spaces, or NULL */
};

struct fm_summary;

struct fm_summary *fm_summary_new(void);
void fm_summary_free(struct fm_summary **s);

/* Loads path. A missing file is an empty summary (returns 0, stale set).
 * A damaged one (truncated, checksum, grammar) returns -1 with
 * FM_ERR_LOCAL naming the path; the caller rebuilds it with
 * fm_summary_rescan(). */
int fm_summary_load(const char *path, struct fm_summary **s_r,
                    struct fm_error *err);
/* Writes the summary to path atomically (fm_file_replace). */
int fm_summary_save(struct fm_summary *s, const char *path,
                    struct fm_error *err);

size_t fm_summary_count(const struct fm_summary *s);
/* The i-th entry (insertion order after load/put); borrowed until the next
 * change to s. */
const struct fm_summary_entry *fm_summary_at(const struct fm_summary *s,
                                             size_t i);
/* The entry with that base name, or NULL. */
const struct fm_summary_entry *fm_summary_find(struct fm_summary *s,
                                               const char *base);
/* Adds or replaces (same base) an entry; the strings are copied. */
void fm_summary_put(struct fm_summary *s, const struct fm_summary_entry *e);
/* Removes the entry with that base; false if there was none. */
bool fm_summary_remove(struct fm_summary *s, const char *base);
/* Updates the file and flags of an entry; false if there is none. */
bool fm_summary_set_file(struct fm_summary *s, const char *base,
                         const char *file, uint32_t flags);
/* Records the file the index now knows for base (NULL: not indexed). */
void fm_summary_set_indexed(struct fm_summary *s, const char *base,
                            const char *indexed_file);

/* Entry indexes sorted by date, newest first (ties by base name), in a new
 * array of fm_summary_count() elements; free() it. */
size_t *fm_summary_by_date(const struct fm_summary *s);

/* Brings the summary into agreement with the maildir at folder_dir: files
 * that are gone are dropped, new files are read (headers only, through
 * parse) and added, renamed files (flags changed elsewhere) are followed.
 * Cheap when nothing changed: the stamp of cur/ and new/ is compared first
 * unless force. *changed_r tells whether anything was updated (then save
 * it). parse reads the file at path into e (strings owned by the callee
 * until the next call); it returns -1 to skip a file. */
/* Changes to a summary that is not loaded: a whole entry added or
 * replaced (PUT), an entry's file and flags (FILE), an entry removed
 * (REMOVE). The store keeps them while it works on a folder without
 * reading its summary, then appends them to the summary's change log or
 * applies them to the loaded summary. */
enum fm_summary_change_kind {
	FM_SUMMARY_PUT,
	FM_SUMMARY_FILE,
	FM_SUMMARY_REMOVE
};
struct fm_summary_change {
	enum fm_summary_change_kind kind;
	/* PUT: all of it; FILE: base, file and flags; REMOVE: base. The
	 * strings are the change's own. */
	struct fm_summary_entry e;
};
/* Fills c with a copy of what kind needs of e. */
void fm_summary_change_init(struct fm_summary_change *c,
                            enum fm_summary_change_kind kind,
                            const struct fm_summary_entry *e);
void fm_summary_change_free(struct fm_summary_change *c);
/* Applies changes in order to a loaded summary (they are saved with it). A
 * FILE or REMOVE change for an entry it does not have is skipped. */
void fm_summary_apply(struct fm_summary *s, const struct fm_summary_change *v,
                      size_t n);
/* Appends changes to the change log of the summary at path without
 * loading it: 1 when appended (durable), 0 when the summary must be
 * loaded, changed (fm_summary_apply) and saved instead: there is no
 * snapshot to follow, or the log would outgrow a quarter of it. -1 with
 * FM_ERR_LOCAL on failure. */
int fm_summary_append(const char *path, const struct fm_summary_change *v,
                      size_t n, struct fm_error *err);

typedef int fm_summary_parse_fn(void *ctx, const char *path,
                                struct fm_summary_entry *e);
/* What the summary is on disk as of its last load or save: its snapshot's
 * id, the end of its change log and the change times of cur/ and new/ it
 * was made from (newly allocated; NULL before it was ever on disk). */
char *fm_summary_saved_id(const struct fm_summary *s);
/* The same for what is on disk now at path, with folder_dir's times now;
 * NULL when there is no readable snapshot. Equal to a saved id, the folder
 * and its summary are as they were then: a snapshot has one content, its
 * log only grows, and a change to cur/ or new/ changes their times. */
char *fm_summary_disk_id(const char *path, const char *folder_dir);
int fm_summary_rescan(struct fm_summary *s, const char *folder_dir, bool force,
                      fm_summary_parse_fn *parse, void *ctx, bool *changed_r,
                      struct fm_error *err);

#endif

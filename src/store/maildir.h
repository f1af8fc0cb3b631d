/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * maildir — the primitives of the local cache: folders, crash-safe delivery,
 * flags in the file name, and the mapping from IMAP folder names to paths.
 *
 * A message lives in FOLDER/new/BASE or FOLDER/cur/BASE:2,FLAGS. BASE, the
 * unique name given at delivery, never changes while the message stays in
 * the store: it is the message's stable id (sync state and journal refer to
 * it), while the info after ":2," changes with every flag change. Paths
 * handed back are relative to the folder ("new/BASE", "cur/BASE:2,S").
 *
 * Threads: every function here is safe to call from any thread, but only the
 * store thread may change a folder (deliver, set flags, move, remove) so that
 * renames never race. Nothing here talks to notmuch.
 *
 * Errors: fallible functions return 0 or -1 and fill err; local file system
 * failures are FM_ERR_LOCAL with a sentence naming the path, malformed names
 * from a server are FM_ERR_PROTOCOL.
 */
#ifndef FULMAR_STORE_MAILDIR_H
#define FULMAR_STORE_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* Maildir flags as a bitmask. The six letters the maildir specification
 * defines take the low bits; the lowercase letters a..z, which some clients
 * (Dovecot) use for keywords, take the 26 bits above them and are kept as
 * they are. Characters outside these 32 are not flags and are dropped. */
enum fm_maildir_flag {
	FM_MAILDIR_DRAFT = 1u << 0,   /* D */
	FM_MAILDIR_FLAGGED = 1u << 1, /* F */
	FM_MAILDIR_PASSED = 1u << 2,  /* P: forwarded, bounced, resent */
	FM_MAILDIR_REPLIED = 1u << 3, /* R */
	FM_MAILDIR_SEEN = 1u << 4,    /* S */
	FM_MAILDIR_TRASHED = 1u << 5, /* T: to be expunged */
};
#define FM_MAILDIR_STANDARD_FLAGS 0x3fu
/* The bit of keyword letter c, 'a' <= c <= 'z'. */
#define FM_MAILDIR_KEYWORD(c) (1u << (6 + ((unsigned)(c) - 'a')))
/* ":2," + 32 letters + NUL. */
#define FM_MAILDIR_INFO_MAX 36

/* ------------------------------------------------------------------------
 * Folders and files.
 */

/* Creates folder (and its missing parents) with tmp/, new/ and cur/, all
 * mode 0700, and syncs the new directory entries to disk. Succeeds if they
 * exist already. Store thread. */
int fm_maildir_create(const char *folder, struct fm_error *err);

/* Delivers len bytes of data as a new message: writes tmp/BASE with a fresh
 * unique BASE (seconds, microseconds, pid, a per-process counter, 64 random
 * bits and the host name, '/' and ':' escaped), fsyncs it, renames it into
 * new/ and fsyncs new/. On success *relpath_r is "new/BASE" (the caller
 * frees it). On any failure nothing is left behind in the folder and
 * *relpath_r is NULL. Store thread (or a worker delivering into a folder the
 * store does not touch at the same time: delivery never renames an existing
 * file). */
int fm_maildir_deliver(const char *folder, const void *data, size_t len,
                       char **relpath_r, struct fm_error *err);
/* The same, but the message goes straight to cur/BASE:2,FLAGS (a message
 * fetched with its flags, a draft we wrote). */
int fm_maildir_deliver_cur(const char *folder, const void *data, size_t len,
                           uint32_t flags, char **relpath_r,
                           struct fm_error *err);

/* The base name of a file name or relative path: what follows the last '/'
 * up to the first ':' (or the end). Returns a pointer into name and sets
 * *len_r to its length. Never fails. */
const char *fm_maildir_base(const char *name, size_t *len_r);

/* The flags in the info of a file name or relative path: the letters after
 * ":2," (duplicates and order do not matter). A name without info, or with
 * the experimental ":1," info, has no flags (0). Never fails. */
uint32_t fm_maildir_flags_parse(const char *name);

/* Writes ":2," and the letters of flags in ASCII order into info. Never
 * fails. */
void fm_maildir_flags_format(uint32_t flags, char info[FM_MAILDIR_INFO_MAX]);

/* Finds the current file of the message with base name base in folder
 * (its flags may have changed since the caller last looked): looks in cur/,
 * then new/. On success *relpath_r is the relative path (the caller frees
 * it), or NULL if no file has that base name. Fails (-1) only when a
 * directory cannot be read. Any thread; O(files in the folder). */
int fm_maildir_find(const char *folder, const char *base, char **relpath_r,
                    struct fm_error *err);

/* The directories of a folder a rename left to be fsynced. */
enum fm_maildir_dirs { FM_MAILDIR_DIR_CUR = 1, FM_MAILDIR_DIR_NEW = 2 };

/* Gives the message at folder/relpath the flags flags: renames it atomically
 * to cur/BASE:2,FLAGS (moving it from new/ to cur/ if needed). With
 * unsynced_r NULL the directories touched are fsynced; otherwise they are
 * added to *unsynced_r (enum fm_maildir_dirs) and the caller fsyncs them
 * (fm_maildir_sync_dirs) before it relies on the rename, so many renames
 * share one flush. If relpath no longer exists, the message is looked up
 * by its base name first. On success *relpath_r is the new relative path
 * (the caller frees it; it may equal relpath if nothing changed). A message
 * that cannot be found at all is FM_ERR_LOCAL. Store thread. */
int fm_maildir_set_flags(const char *folder, const char *relpath,
                         uint32_t flags, unsigned *unsynced_r, char **relpath_r,
                         struct fm_error *err);
/* Fsyncs the directories of folder named in *dirs (enum fm_maildir_dirs)
 * and clears them; those that failed stay set. */
int fm_maildir_sync_dirs(const char *folder, unsigned *dirs,
                         struct fm_error *err);

/* Moves the message at from_folder/relpath into to_folder/cur/, keeping its
 * base name and flags (same file system: a rename), and fsyncs both
 * directories. *relpath_r is its path relative to to_folder (caller frees).
 * Store thread. */
int fm_maildir_move(const char *from_folder, const char *relpath,
                    const char *to_folder, char **relpath_r,
                    struct fm_error *err);

/* Removes the message at folder/relpath and fsyncs its directory. A file
 * that is already gone is not an error. Store thread. */
int fm_maildir_remove(const char *folder, const char *relpath,
                      struct fm_error *err);

/* ------------------------------------------------------------------------
 * Folder names. IMAP folder names arrive in modified UTF-7 (RFC 3501
 * 5.1.3); fulmar keeps them in UTF-8 on disk.
 */

/* Decodes modified UTF-7 into UTF-8. Malformed input (bytes outside
 * printable ASCII, an unterminated or empty shift, bad base64, leftover
 * bits, null shifts "-&", printable ASCII or NUL encoded in base64, broken
 * surrogates) is FM_ERR_PROTOCOL. *utf8_r is newly allocated. Any thread. */
int fm_mutf7_to_utf8(const char *mutf7, char **utf8_r, struct fm_error *err);

/* Encodes UTF-8 into modified UTF-7. Invalid UTF-8 (overlong forms,
 * surrogates, past U+10FFFF) and NUL are FM_ERR_PROTOCOL. *mutf7_r is newly
 * allocated. Any thread. */
int fm_utf8_to_mutf7(const char *utf8, char **mutf7_r, struct fm_error *err);

/* Maps a folder name (UTF-8, already decoded) whose hierarchy delimiter is
 * delim ('\0' for a flat name space) to a relative path with '/' as the
 * hierarchy, safe to join under the mail root: a hostile server cannot make
 * fulmar write outside it. Refused (FM_ERR_PROTOCOL): invalid UTF-8, control
 * characters, empty names and levels (a leading, trailing or doubled
 * delimiter), levels "." and "..", levels that start with '.' (reserved
 * for fulmar's own files), a level longer than 255 bytes. A '/' inside a
 * level (when delim is not '/'), a '%', and levels named tmp, new or cur
 * (which would land inside the parent's maildir) are percent-escaped, so
 * the mapping is one-to-one. A first level equal to INBOX in any case
 * becomes "INBOX". *relpath_r is newly allocated. Any thread. */
int fm_maildir_folder_path(const char *name, char delim, char **relpath_r,
                           struct fm_error *err);

/* The inverse of fm_maildir_folder_path(): a relative path back to the
 * folder name with delimiter delim. Fails (FM_ERR_LOCAL) on a path that
 * fm_maildir_folder_path() would not produce. *name_r is newly allocated. */
int fm_maildir_folder_name(const char *relpath, char delim, char **name_r,
                           struct fm_error *err);

/* The number of files in folder's cur/ and new/ and an order-independent
 * hash of their names: any delivery, rename (flag change), move or
 * removal changes it. false if a directory cannot be read. */
bool fm_maildir_fingerprint(const char *folder, uint64_t *files_r,
                            uint64_t *hash_r);

/* The longest delivery tag (hex digits). */
#define FM_MAILDIR_TAG_MAX 32

/* Delivers like fm_maildir_deliver() (to_cur false) or
 * fm_maildir_deliver_cur() (to_cur true, with flags), with tag (1 to
 * FM_MAILDIR_TAG_MAX lowercase hex digits) written into the unique name as
 * "K<tag>". A tag names what was delivered (a hash of the account, folder
 * and server UID): after a crash between delivery and recording it, the
 * file is found again by its tag instead of being fetched twice. */
int fm_maildir_deliver_tagged(const char *folder, const char *tag,
                              const void *data, size_t len, bool to_cur,
                              uint32_t flags, char **relpath_r,
                              struct fm_error *err);
/* The tag in a base name (not NUL-terminated; its length in *len_r), or
 * NULL when the name has none. */
const char *fm_maildir_base_tag(const char *base, size_t *len_r);

/* Replaces the content of the message at relpath (relative to folder; if
 * its flags changed meanwhile it is found by base name) with data,
 * atomically: written to tmp/, fsynced, renamed over the old file, the
 * directory fsynced. The name, and so the flags, stay. For a downloaded
 * header stub replaced by the whole message. *relpath_r (may be NULL)
 * gets the file's current relative path. */
int fm_maildir_replace(const char *folder, const char *relpath,
                       const void *data, size_t len, char **relpath_r,
                       struct fm_error *err);

/* Batched delivery, for downloads: fm_maildir_batch_add() writes a
 * message into tmp/ without an fsync and names the file it will become;
 * fm_maildir_batch_commit() makes every staged file durable with one
 * syncfs(2) (none when flushed: the caller's ran after the last add),
 * renames them into place and fsyncs the directory once. Until
 * the commit returns, nothing staged is in new/ or cur/; a batch freed
 * uncommitted removes its tmp files. One folder per batch; one thread. */
struct fm_maildir_batch;
struct fm_maildir_batch *fm_maildir_batch_new(const char *folder);
/* tag as for fm_maildir_deliver_tagged() (NULL: none). *relpath_r gets
 * the final relative path ("new/BASE" or "cur/BASE:2,FLAGS"). */
int fm_maildir_batch_add(struct fm_maildir_batch *batch, const char *tag,
                         const void *data, size_t len, bool to_cur,
                         uint32_t flags, char **relpath_r,
                         struct fm_error *err);
size_t fm_maildir_batch_count(const struct fm_maildir_batch *batch);
int fm_maildir_batch_commit(struct fm_maildir_batch *batch, bool flushed,
                            struct fm_error *err);
void fm_maildir_batch_free(struct fm_maildir_batch **batch);

#endif

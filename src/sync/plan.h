/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * plan — the pure sync planner for one IMAP folder. It compares three views
 * and says what must happen so that both sides agree again:
 *
 *   - the state: what both sides agreed on last time (UID <-> maildir base,
 *     flags, keywords; see sync/state.h), with its UIDVALIDITY;
 *   - the local side now: the maildir's messages (base -> flags);
 *   - the remote side now: the server's messages (UID -> flags), with the
 *     folder's UIDVALIDITY and UIDNEXT.
 *
 * The planner does no I/O and keeps no state: the IMAP engine gathers the
 * views, calls fm_plan_make(), runs the actions and updates the state after
 * each confirmed one. Every view is a plain array, sorted inside, so a plan
 * costs O(n log n) in the number of messages.
 *
 * Flags are the 32 FM_MAILDIR_* bits of store/maildir.h on both sides (the
 * engine maps \Seen <-> S, \Answered <-> R, \Flagged <-> F, \Deleted <-> T,
 * \Draft <-> D, $Forwarded <-> P, and whatever keywords it keeps as maildir
 * letters). IMAP keywords can also travel as strings: a space-separated set
 * per message, compared ASCII case-insensitively, merged exactly like flags.
 *
 * What each combination means (S: in the state, L: present locally, R:
 * present on the server):
 *
 *   S L R   three-way flag merge; an action only if something differs,
 *           the state included: when both sides agree but the state does
 *           not (both made the same change, or a pass was killed between
 *           a change and its recording), FLAGS changes neither side and
 *           only records, so the state can stand for the server's flags
 *           of messages a CONDSTORE listing leaves out.
 *   S L -   the server expunged it: remove the local copy (EXPUNGE_LOCAL).
 *   S - R   the local copy was deleted: \Deleted and UID EXPUNGE on the
 *           server (EXPUNGE_REMOTE).
 *   S - -   gone on both sides: drop the state entry (FORGET).
 *   - L R   a local message and a server message no state entry connects:
 *           paired (LINK) when the file's delivery tag names the UID or when
 *           Message-ID and size match; otherwise an UPLOAD and a DOWNLOAD.
 *   - L -   a new local message (a draft, a message filed offline): UPLOAD;
 *           but a file whose delivery tag names a UID the server no longer
 *           has was downloaded and then expunged before it was recorded:
 *           EXPUNGE_LOCAL.
 *   - - R   a new server message: DOWNLOAD.
 *
 * Conflict rules. They are chosen so that nothing the user marked is lost
 * without a trace, and nothing is expunged that nobody asked to expunge.
 *
 *  1. With a state entry, each flag and each keyword is merged three-way: a
 *     side that differs from the state changed it, and its value wins. A
 *     flag has two values, so two sides that both differ from the same state
 *     entry hold the same value: a single flag cannot change in opposite
 *     directions on both sides since the last sync, and with a common base
 *     there is no conflict to resolve. (A flag set and cleared again on one
 *     side between two syncs is no change at all.) Different flags changed
 *     on different sides are all kept: one FLAGS action pushes some and
 *     pulls others.
 *  2. Without a state entry (a pairing by delivery tag or by Message-ID,
 *     after a crash, a lost state file or a UIDVALIDITY change) nobody knows
 *     which side changed what. Then "set beats clear" for every flag and
 *     keyword except \Deleted: a message seen, flagged, answered, forwarded
 *     or tagged on either side is so on both afterwards, so no mark the user
 *     made is silently dropped. For \Deleted (maildir T) "clear beats set":
 *     \Deleted only ever spreads from an explicit action, because pushing it
 *     from a guess could let another client's EXPUNGE destroy a message
 *     nobody deleted here.
 *  3. Deletion beats a flag change. A message expunged on the server is
 *     removed locally even if its flags changed here since the last sync,
 *     and a message deleted here is expunged on the server even if another
 *     client changed its flags: the deletion is an explicit act on one whole
 *     message, a flag change is not a reason to resurrect it, and the
 *     mass-deletion guard (below) catches accidents. Such actions carry
 *     lost_change so the engine can say what was dropped.
 *  4. Flags the server cannot keep (input.local_only_flags, from
 *     PERMANENTFLAGS) are never pushed or pulled; the local value stands.
 *
 * Moves. A local move is replayed from the journal as a server-side UID
 * MOVE, never as a deletion plus an upload. input.moved_away lists the bases
 * moved out of this folder and not yet replayed: their state entries get no
 * action at all (the move's replay owns them). input.moved_in lists the
 * bases moved into this folder: they are never uploaded, but they may be
 * paired with a new server message by Message-ID and size (the copy the
 * server MOVE made, when the server did not report its UID).
 *
 * Mass-deletion guard. If the plan would remove more than
 * FM_PLAN_GUARD_PERCENT percent of a side's messages, and more than
 * FM_PLAN_GUARD_MIN of them, it needs confirmation (unless input.force):
 * the engine runs none of it and asks, as `fulmar sync --force` proceeds.
 *
 * Delivery tags (input.local[].uid_hint) are believed only while the
 * state's UIDVALIDITY equals the server's: a tag from another UIDVALIDITY,
 * or one seen with an empty state, might name somebody else's UID.
 *
 * UIDVALIDITY. When the server's UIDVALIDITY differs from the state's, every
 * UID the state holds is void, and so are delivery tags (they name UIDs).
 * The planner then ignores the state's entries and pairs local and remote
 * messages by (Message-ID, size) alone, so nothing the cache already has is
 * downloaded again or uploaded twice; equal keys pair off in UID order and
 * base order, and a size that differs is a different message. What stays
 * unpaired is planned as for a folder never synced: server messages are
 * downloaded, and local messages are uploaded — also those the old state
 * had seen on the server. After a reset nobody can tell whether the server
 * lost them or somebody deleted them; ours may be the only copy, and an
 * upload can be undone by deleting again while a local removal cannot. One
 * case cannot be recovered: a message deleted locally since the last sync
 * whose server copy survives the reset is downloaded again, because the
 * only thing that connected the two was the voided UID.
 *
 * Threads: any thread; nothing is shared. Allocation never fails.
 */
#ifndef FULMAR_SYNC_PLAN_H
#define FULMAR_SYNC_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "sync/state.h"

/* The guard: more than this percentage of a side's messages ... */
#define FM_PLAN_GUARD_PERCENT 25
/* ... and more than this many of them, and the plan needs confirmation. */
#define FM_PLAN_GUARD_MIN 5

/* A message in the maildir now. Strings are the caller's; the planner copies
 * what it keeps. */
struct fm_plan_local {
	const char *base;     /* its maildir base name; required, unique */
	uint32_t flags;       /* FM_MAILDIR_* bits from its file name */
	const char *keywords; /* space-separated, or NULL */
	uint32_t uid_hint;    /* the UID its delivery tag names, when the
	                       * engine recognises the tag; 0 otherwise */
	const char *msgid;    /* Message-ID (or a substitute derived the same
	                       * way on both sides), or NULL: not matchable */
	uint64_t size;        /* as the server counts it (CRLF line ends) */
};

/* A message on the server now. */
struct fm_plan_remote {
	uint32_t uid;         /* > 0, unique */
	uint32_t flags;       /* FM_MAILDIR_* bits mapped from its FLAGS */
	const char *keywords; /* space-separated, or NULL */
	const char *msgid;    /* as in struct fm_plan_local */
	uint64_t size;        /* RFC822.SIZE */
};

/* Everything a plan is made from. The arrays are read during
 * fm_plan_make() only, in any order. msgid and size are needed for the
 * messages no state entry covers: the new ones, and all of them after a
 * UIDVALIDITY change or with an empty state. The remote array must list
 * every message in the folder (an engine resyncing with CONDSTORE fills in
 * the unchanged ones from the state), with one exception: a message whose
 * state entry, local file and server copy all agree (the same flags, the
 * same keywords) needs no action, and may be left out of all three arrays
 * at once if n_unchanged counts it. */
struct fm_plan_input {
	uint32_t state_uidvalidity;          /* 0: never synced */
	const struct fm_state_entry *synced; /* IMAP entries (uid > 0); a NULL
	                                      * base means "no local copy by
	                                      * design": never downloaded or
	                                      * deleted, only forgotten */
	size_t n_synced;
	uint32_t uidvalidity; /* the server's now; > 0 */
	uint32_t uidnext;     /* the server's now */
	const struct fm_plan_remote *remote;
	size_t n_remote;
	const struct fm_plan_local *local;
	size_t n_local;
	const char *const *moved_away; /* bases; see "Moves" above */
	size_t n_moved_away;
	const char *const *moved_in;
	size_t n_moved_in;
	uint32_t local_only_flags; /* bits the server cannot keep */
	bool force;                /* run past the mass-deletion guard */
	size_t n_unchanged;        /* left out as above; counted in totals */
};

/* Actions, in the order a plan lists them. */
enum fm_plan_op {
	/* Gone on both sides: drop the state entry (uid; base may be NULL). */
	FM_PLAN_FORGET = 1,
	/* The server no longer has uid: remove the local file base, then drop
	 * the state entry (if any: a file found by its delivery tag has
	 * none). flags: the local flags now. */
	FM_PLAN_EXPUNGE_LOCAL,
	/* The local file base is gone: STORE +FLAGS (\Deleted) on uid and
	 * UID EXPUNGE it (plain EXPUNGE only without UIDPLUS, and only if no
	 * other message carries \Deleted), then drop the state entry. flags:
	 * the server's flags now. */
	FM_PLAN_EXPUNGE_REMOTE,
	/* uid and base, which no state entry connected, are one message (see
	 * link): make both sides' flags equal to flags and keywords as in
	 * FM_PLAN_FLAGS, then record (uid, base, flags, keywords). */
	FM_PLAN_LINK,
	/* STORE +FLAGS remote_add / -FLAGS remote_del (and the kw_remote_*
	 * keywords) on uid; give the local file base the flags flags (and the
	 * keywords keywords); then record flags and keywords in the state.
	 * Record only after both sides are done: a state recorded first would
	 * make a half-done change look like a change of the other side. */
	FM_PLAN_FLAGS,
	/* Fetch uid into the maildir with flags and keywords, then record
	 * (uid, new base, flags, keywords). */
	FM_PLAN_DOWNLOAD,
	/* APPEND the local file base with the flags remote_add and the
	 * keywords keywords, then record (new uid, base, flags, keywords). */
	FM_PLAN_UPLOAD,
};

/* How a LINK paired its two messages. */
enum fm_plan_link {
	FM_PLAN_LINK_NONE = 0, /* not a LINK */
	FM_PLAN_LINK_TAG,      /* the file's delivery tag names the UID */
	FM_PLAN_LINK_MSGID,    /* same Message-ID and size */
};

/* One action. Strings belong to the plan. */
struct fm_plan_action {
	enum fm_plan_op op;
	enum fm_plan_link link;
	uint32_t uid;              /* 0 for UPLOAD */
	const char *base;          /* NULL for DOWNLOAD (and some FORGETs) */
	uint32_t flags;            /* see the op; for LINK and FLAGS the flags
	                            * both sides have afterwards */
	uint32_t local_flags;      /* the local file's flags now (0 if none) */
	uint32_t remote_add;       /* flags to set on the server */
	uint32_t remote_del;       /* flags to clear on the server */
	const char *keywords;      /* the keywords afterwards: sorted, unique,
	                            * space-separated; NULL for none */
	const char *kw_remote_add; /* keywords to set on the server, or NULL */
	const char *kw_remote_del; /* ... to clear on the server, or NULL */
	const char *kw_local_add;  /* ... to set locally, or NULL */
	const char *kw_local_del;  /* ... to clear locally, or NULL */
	bool lost_change; /* EXPUNGE_*: the removed copy's other side had
	                   * changed flags or keywords since the last sync */
};

/* What a plan amounts to, for the guard, progress and logs. */
struct fm_plan_summary {
	bool uidvalidity_reset;  /* the state's UIDs were void: clear the
	                          * state and record uidvalidity before
	                          * running any action */
	bool needs_confirmation; /* the guard tripped; run nothing, ask */
	bool forced;             /* the guard would have tripped, but force */
	size_t local_total;      /* messages in the maildir now */
	size_t remote_total;     /* messages on the server now */
	size_t local_deletes;    /* EXPUNGE_LOCAL actions */
	size_t remote_deletes;   /* EXPUNGE_REMOTE actions */
	size_t forgets, links, flag_changes, downloads, uploads;
	uint32_t uidvalidity; /* to record in the state */
	uint32_t uidnext;     /* to record once every action is done: the
	                       * server's UIDNEXT, or past its highest UID */
};

struct fm_plan;

/* Compares the three views in input and makes a plan (*plan_r; the caller
 * frees it with fm_plan_free()). Nothing in input is kept. Any thread.
 * Fails, with *plan_r NULL and no partial plan, on input no sync should act
 * on: a remote UID that is 0 or listed twice, or a UIDVALIDITY of 0
 * (FM_ERR_PROTOCOL: the server's listing is wrong); a local message without
 * a base, a base listed twice, a state entry with UID 0, a UID or a base
 * in two state entries (FM_ERR_LOCAL: the caller's bug or a damaged
 * state). A plan that needs confirmation is a success: see the summary. */
int fm_plan_make(const struct fm_plan_input *input, struct fm_plan **plan_r,
                 struct fm_error *err);

/* Frees the plan and its strings and sets *plan to NULL; NULL-safe. */
void fm_plan_free(struct fm_plan **plan);

/* The number of actions, and action i (NULL when i >= count). Actions are
 * sorted by op (in enum order), then UID, then base; the pointer is valid
 * until the plan is freed. Any thread that holds the plan. */
size_t fm_plan_count(const struct fm_plan *plan);
const struct fm_plan_action *fm_plan_action_at(const struct fm_plan *plan,
                                               size_t i);

/* The plan's summary; valid until the plan is freed. */
const struct fm_plan_summary *fm_plan_summary(const struct fm_plan *plan);

/* A short stable name for an op ("download", "expunge-local", ...), for
 * logs and tests; "?" for a value outside the enum. */
const char *fm_plan_op_name(enum fm_plan_op op);

#endif

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Internal to imap/: what the sync pass (sync.c), its folder steps
 * (folders.c) and the conversions between libetpan's structures and
 * fulmar's (convert.c) share. */
#ifndef FULMAR_IMAP_INT_H
#define FULMAR_IMAP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "imap/imap.h"
#include "store/store.h"
#include "sync/plan.h"
#include "sync/state.h"

#define STATE_FILE ".fulmar-state"
/* The state keyword of a message stored as headers only (download =
 * headers, or max SIZE). It lives only in the local state: the planner
 * never sees it, so it never reaches the server. */
#define PARTIAL "fulmar:partial"

/* A server or local folder. */
struct folder {
	char *local;  /* relative path in the store ("INBOX", "a/b") */
	char *server; /* the server's name (modified UTF-7), or NULL */
	char delim;
	bool selectable;
	bool on_server, on_local, has_state;
	bool subscribed; /* the server lists it as subscribed */
	bool wanted;     /* this pass syncs it (imap_choose_folders) */
	char *role;      /* "Sent", "Drafts", ... (special use), or NULL */
	/* The server's STATUS from LIST-STATUS, when it gave one. */
	bool has_status;
	uint32_t st_validity, st_uidnext, st_messages;
	uint64_t st_modseq;
	bool synced; /* by the pipeline already (prefetch.c) */
};

struct pass {
	const struct fm_account *acct;
	struct fm_store *store;
	struct fm_imap *imap;
	mailimap *s;
	const struct fm_imap_sync_opts *so;
	struct fm_imap_stats *stats;
	struct folder *folders;
	size_t n_folders;
	char delim; /* the server's hierarchy delimiter */
	bool uidplus, move, condstore;
	/* QRESYNC is enabled on this session: expunges come as VANISHED
	 * (and sel_exists no longer counts them down). */
	bool qresync;
	bool subs_known; /* the folders' `subscribed` came from the server */
	/* the first folder stopped by the guard, for the pass's error */
	char *guarded;
	char *guard_text;
	/* the folders prefetch.c looked at before the server was asked */
	struct prefetch *pre;
	size_t n_pre;
	/* no LIST-STATUS: each of them is SELECTed to tell (prefetch.c) */
	bool blind;
	/* stamps waiting for the clock to pass their times (stamp.c) */
	struct imap_pending_stamp *pending;
	size_t n_pending;
	/* LOGOUT went out behind the pipeline: a folder that still needs the
	 * server after it needs a session of its own (imap_session_again) */
	bool logged_out;
	const struct fm_session_opts *o;
};

/* ------------------------------------------------------------------------
 * convert.c
 */

/* What one FETCH response says about one message. */
struct imap_fetched {
	uint32_t uid;
	bool have_flags;
	uint32_t flags;
	char *keywords;
	uint64_t size;
	bool have_size;
	const char *body; /* borrowed from the response */
	size_t body_len;
	char *msgid;
};

/* keywords without PARTIAL (newly allocated, NULL when nothing is left);
 * *had_r says whether it was there. */
char *imap_kw_strip(const char *keywords, bool *had_r);
/* An IMAP flag list for maildir bits and a space-separated keyword list;
 * NULL when both are empty. */
struct mailimap_flag_list *imap_flag_list(uint32_t bits, const char *keywords);
/* A set of the n UIDs (sorted here), merged into ranges. */
struct mailimap_set *imap_uid_set(uint32_t *uids, size_t n);
/* The same as text ("3:7,9"), for a command sent by hand. */
char *imap_uid_set_text(uint32_t *uids, size_t n);
/* s as a quoted string for a command (newly allocated); NULL when it
 * holds a control or non-ASCII byte. */
char *imap_quoted(const char *s);
/* An astring (atom or quoted string) at *pp into out, *pp moved past it;
 * false if it is none (a literal, say), or longer than out. */
bool imap_read_astring(const char **pp, char *out, size_t size);
/* What one FETCH response says; the strings in *out are the caller's to
 * free (body is borrowed from the response). */
void imap_parse_att(const struct mailimap_msg_att *att,
                    struct imap_fetched *out);
/* UID, and FLAGS, RFC822.SIZE + Message-ID (identity), BODY.PEEK[]. */
struct mailimap_fetch_type *imap_fetch_type(bool flags, bool identity,
                                            bool body);
/* A message file with CRLF line ends, for APPEND. */
int imap_read_crlf(const char *path, char **data_r, size_t *len_r,
                   struct fm_error *err);
/* A local file's size as the server counts it (CRLF line ends); size when
 * it cannot be read. */
uint64_t imap_crlf_size(const char *path, uint64_t size);
/* CRLF -> LF into out (emptied first). */
void imap_to_lf(struct fm_buf *out, const char *s, size_t left);

/* ------------------------------------------------------------------------
 * folders.c: steps 1 to 3 of a pass.
 */

void imap_folders_free(struct pass *p);
struct folder *imap_folder_by_local(struct pass *p, const char *local);
/* LIST (with the subscriptions when the account's `folders` needs them:
 * LIST-EXTENDED's RETURN (SUBSCRIBED), else LSUB). */
int imap_list_server(struct pass *p, struct fm_error *err);
int imap_list_local(struct pass *p, struct fm_error *err);
/* Sets each folder's wanted: the folders the pass was asked for, else
 * those the account's `folders` selects. After both listings. */
void imap_choose_folders(struct pass *p);
void imap_save_roles(struct pass *p);
int imap_create_folders(struct pass *p, struct fm_error *err);
/* LIST-STATUS, when offered: every folder's counters (has_status). Asked
 * first (*asked_r false when it was not), its answer read later, so the
 * pass can work meanwhile. */
int imap_list_status_ask(struct pass *p, bool *asked_r, struct fm_error *err);
int imap_list_status_read(struct pass *p, struct fm_error *err);
/* The path of name in the local folder's maildir directory ("cur/..", or
 * a file of ours), or of the directory itself when name is NULL. */
char *imap_folder_path(struct pass *p, const char *local, const char *name);
char *imap_state_path(struct pass *p, const char *local);

/* ------------------------------------------------------------------------
 * stamp.c: the unchanged-folder stamp.
 */

enum {
	ST_VALIDITY,
	ST_UIDNEXT,
	ST_MODSEQ,
	ST_EXISTS,
	ST_FILES, /* the maildir's names: how many, and their hash */
	ST_HASH,
	ST_CUR, /* cur/ and new/ change times (ns) */
	ST_NEW,
	ST_TRUST, /* 1: the times alone tell a change (see imap_stamp_write) */
	ST_N
};

/* A folder's stamp as read, and what was found of its local half. */
struct imap_stamp {
	bool have; /* read and well-formed */
	uint64_t v[ST_N];
	int local_same; /* -1: not looked at yet; else as below */
	bool listed;    /* the names were listed to tell */
};
/* Reads the folder's stamp (st->have false if there is none). */
void imap_stamp_read(struct pass *p, const char *local, struct imap_stamp *st);
/* Whether the maildir holds the names it held when the stamp was written:
 * told by the directories' change times when the stamp trusts them, else
 * listed. Looked at once per struct imap_stamp. */
bool imap_stamp_local_same(struct pass *p, const char *local,
                           struct imap_stamp *st);
/* Whether the server's counters now (the values before ST_FILES) are the
 * stamp's. */
bool imap_stamp_server_same(const struct imap_stamp *st, const uint64_t *now);
/* Whether the folder is exactly as its stamp says: the server's counters
 * now (the values before ST_FILES) and the maildir's names. A listing that
 * agrees renews the stamp. */
bool imap_stamp_matches(struct pass *p, const char *local,
                        struct imap_stamp *st, uint64_t now[ST_N]);
/* Writes the stamp (v[ST_FILES] and on are filled here), or removes it
 * when v is NULL or the folder cannot be stamped. A stamp whose times the
 * clock has not passed yet waits for imap_stamps_flush(). */
void imap_stamp_write(struct pass *p, const char *local, uint64_t v[ST_N]);
/* Writes the waiting stamps once the clock has passed their times; a
 * folder changed meanwhile gets none. At the end of a pass. */
void imap_stamps_flush(struct pass *p);

struct imap_pending_stamp {
	char *local;
	uint64_t v[ST_N];
};

/* ------------------------------------------------------------------------
 * replay.c: step 3 of a pass.
 */

/* The journal's moves, and its deletions of messages no state knows,
 * replayed on the server; then the journal acknowledged. */
int imap_replay_moves(struct pass *p, struct fm_error *err);

/* ------------------------------------------------------------------------
 * uploads.c: what a pass put into a folder on the server (APPEND, or a
 * replayed move) that the folder's state may not record.
 */

struct imap_upload {
	char *base;
	char *msgid;   /* its Message-ID, or NULL */
	uint64_t size; /* as the server counts it (CRLF line ends) */
};

struct imap_uploads {
	struct imap_upload *v;
	size_t n;
};

/* Loads the folder's list into *u (empty when there is none; one that
 * cannot be read is only warned about: the list is a hint). */
void imap_uploads_load(struct pass *p, const char *local,
                       struct imap_uploads *u);
/* Adds the n uploads v to the folder's list, durably. FM_ERR_LOCAL on
 * failure. */
int imap_uploads_append(struct pass *p, const char *local,
                        const struct imap_upload *v, size_t n,
                        struct fm_error *err);
/* Replaces the folder's list with *u, durably; removes it when u is empty.
 * FM_ERR_LOCAL on failure. */
int imap_uploads_save(struct pass *p, const char *local,
                      const struct imap_uploads *u, struct fm_error *err);
/* Adds an upload, or updates the one of that base; whether *u changed. */
bool imap_uploads_add(struct imap_uploads *u, const char *base,
                      const char *msgid, uint64_t size);
const struct imap_upload *imap_uploads_find(const struct imap_uploads *u,
                                            const char *base);
void imap_uploads_free(struct imap_uploads *u);

/* ------------------------------------------------------------------------
 * watch.c: what one server response during a watch says. Pure, for the
 * unit tests.
 */

enum imap_watch_kind {
	IMAP_WATCH_OTHER,    /* nothing to act on ("* OK Still here") */
	IMAP_WATCH_CONTINUE, /* "+ idling" */
	IMAP_WATCH_SELECTED, /* EXISTS, EXPUNGE, FETCH, VANISHED */
	IMAP_WATCH_STATUS,   /* "* STATUS mailbox (...)" */
	IMAP_WATCH_OVERFLOW, /* "* OK [NOTIFICATIONOVERFLOW]" */
	IMAP_WATCH_BYE,      /* "* BYE" */
	IMAP_WATCH_TAGGED,   /* "TAG OK|NO|BAD ..." */
};

enum imap_status_att {
	IMAP_ST_MESSAGES,
	IMAP_ST_UIDNEXT,
	IMAP_ST_UIDVALIDITY,
	IMAP_ST_UNSEEN,
	IMAP_ST_HIGHESTMODSEQ,
	IMAP_ST_N
};

/* The longest mailbox name a watch takes from a response. */
#define IMAP_WATCH_NAME_MAX 1000

struct imap_watch_resp {
	enum imap_watch_kind kind;
	/* IMAP_WATCH_STATUS: the mailbox as the server wrote it (quotes
	 * and escapes removed) when it parsed, and the values of the
	 * attributes in st_have (a bit per enum imap_status_att; 0 when
	 * the list did not parse). */
	bool named;
	char mailbox[IMAP_WATCH_NAME_MAX + 1];
	unsigned st_have;
	uint64_t st[IMAP_ST_N];
	/* IMAP_WATCH_TAGGED */
	char tag[32];
	bool ok;
};

/* Classifies one response: its first line, with each literal replaced by
 * a quoted string of its contents, or by "{}" when it was long or held
 * CR, LF or NUL. Never fails: what does not parse is IMAP_WATCH_OTHER (or
 * a STATUS without a name). */
void imap_watch_parse(const char *resp, struct imap_watch_resp *r);
/* Whether a line ends in a literal's announcement "{N}" (or "~{N}"): its
 * size (UINT64_MAX when too large to say) and where it starts. */
bool imap_watch_literal(const char *line, size_t len, uint64_t *n_r,
                        size_t *at_r);

/* ------------------------------------------------------------------------
 * sync.c
 */

int imap_load_state(struct pass *p, const char *local, struct fm_state **st_r,
                    struct fm_error *err);
int imap_save_state(struct pass *p, const char *local, struct fm_state *st,
                    struct fm_error *err);
/* Sends a command libetpan cannot send: its next tag (then in
 * p->s->imap_tag), and cmd, CRLF included, written by hand. The answer is
 * the caller's to read. */
int imap_send(struct pass *p, const char *cmd, const char *what,
              struct fm_error *err);
/* Reads the answer to the command sent with tag, its untagged data left
 * in p->s->imap_response_info; *ok_r: whether it was OK. A NO is no
 * failure; neither is a BAD when bad_ok. what names the step in an
 * error. */
int imap_read_answer(struct pass *p, int tag, bool bad_ok, bool *ok_r,
                     const char *what, struct fm_error *err);
int imap_select_folder(struct pass *p, const struct folder *f,
                       uint64_t *modseq_r, struct fm_error *err);
/* The delivery key of a download: "imap:UIDVALIDITY:UID". */
char *imap_key_of(uint32_t validity, uint32_t uid);
/* The UIDs an unrecorded download may have: [*lo_r, *hi_r). */
void imap_tag_range(uint32_t state_next, uint32_t server_next, uint32_t *lo_r,
                    uint32_t *hi_r);

/* ------------------------------------------------------------------------
 * Step 4, one folder's run (sync.c, download.c)
 */

/* A message on the server, as the listing saw it. */
struct remote {
	uint32_t uid;
	uint32_t flags;
	char *keywords;
	char *msgid;
	uint64_t size;
	bool have_flags;
	bool gone; /* named by VANISHED (drop_vanished) */
};

struct folder_run {
	struct pass *p;
	struct folder *f;
	struct fm_state *st;
	uint32_t validity, uidnext, exists;
	uint64_t modseq;
	struct remote *rv;
	size_t rn, rcap;
	struct fm_store_msg *lv;
	size_t ln;
	const struct fm_plan_local *lin; /* the planner's view of lv[i] */
	struct imap_uploads up;          /* uploads the state may lack */
	/* The local side is as the state says (a stamp proved it): lv is
	 * empty, the state stands for it, and the store works on the folder
	 * without reading its summary (fm_store_quick). */
	bool quick;
	uint32_t local_only; /* flag bits the server cannot keep */
	size_t unsure;       /* quick: files not as the state said */
	uint64_t saved_ms;
	bool state_dirty;
	size_t remote_changes; /* STOREs sent */
	size_t refused;        /* uploads the server refused */
	/* transfer progress */
	size_t done, total;
	uint64_t bytes;
	/* Listed and downloaded by the pipeline (prefetch.c): staged holds
	 * the new messages already staged in the store, by UID; deferred
	 * says the plan needs commands of its own. */
	bool prefetched, deferred;
	struct imap_staged *staged;
	size_t n_staged;
	/* Held (the pipeline's): nothing is committed, the state is not
	 * saved and the stamp not written until imap_run_release(), so one
	 * commit serves every folder of the pipeline. stamp: the counters
	 * the stamp is to have (stamp[0] 0: no stamp). */
	bool hold;
	uint64_t stamp[ST_N];
};

/* A download the pipeline staged. */
struct imap_staged {
	uint32_t uid;
	uint32_t flags; /* the maildir flags it was staged with */
	bool whole;
	char *base;
};

/* Partial: whether the local copy is headers only, or as the state entry
 * says now. */
enum { IMAP_KEEP_PARTIAL = -1, IMAP_WHOLE = 0, IMAP_HEADERS_ONLY = 1 };

/* The listed message with that UID, or NULL (the listing is sorted). */
struct remote *imap_remote_find(struct folder_run *fr, uint32_t uid);
/* Reports the folder's transfer progress. */
void imap_progress(struct folder_run *fr);
/* Saves the state if it changed: at once when force, else at most every
 * few seconds; never while the run is held. */
int imap_maybe_save(struct folder_run *fr, bool force, struct fm_error *err);
/* Records (uid, base, flags, keywords) in the state; partial as above. */
int imap_record(struct folder_run *fr, uint32_t uid, const char *base,
                uint32_t flags, const char *keywords, int partial,
                struct fm_error *err);
/* Downloads the plan's new messages (download.c). */
int imap_downloads(struct folder_run *fr, const struct fm_plan *plan,
                   struct fm_error *err);
/* Has libetpan hand each FETCH response of the next answers to handler
 * as it is parsed (and free it after), or stop that (handler NULL). */
void imap_take_messages(mailimap *s, mailimap_msg_att_handler *handler,
                        void *ctx);
/* Stages a message fetched whole or as its headers (fx->body) in the
 * folder under its delivery key, with those maildir flags (lf: scratch
 * space), and counts it downloaded (download.c). */
int imap_stage(struct folder_run *fr, struct fm_buf *lf,
               const struct imap_fetched *fx, uint32_t flags, char **base_r,
               struct fm_error *err);
/* Sorts fr->staged by UID, as imap_staged_for() looks in it. */
void imap_staged_sort(struct folder_run *fr);
/* The staged download of uid if it is what the plan's download of uid
 * with flags wants (whole or not, as `download` says, and those maildir
 * flags), else NULL: then the download fetches it (download.c). */
const struct imap_staged *imap_staged_for(struct folder_run *fr, uint32_t uid,
                                          uint32_t flags);

struct remote *imap_remote_add(struct folder_run *fr, uint32_t uid);
/* Takes a FETCH response's flags and keywords (fx->keywords moves to rm)
 * when it had them. */
void imap_remote_take_flags(struct remote *rm, struct imap_fetched *fx);
/* The first of fr->rv[0..n) (sorted) with a UID >= uid, or n. */
size_t imap_remote_lower(const struct folder_run *fr, size_t n, uint32_t uid);
/* Drops the UIDs that VANISHED responses of the last command name; first
 * (may be NULL) is freed. Whether there were any: then the list is
 * sorted. */
bool imap_drop_vanished(struct folder_run *fr,
                        struct mailimap_qresync_vanished *first);
/* The remote list as the state has it: its UIDs below next. */
void imap_remote_from_state(struct folder_run *fr, uint32_t next);
/* Sorts the remote list; a UID listed twice stays once. */
void imap_listing_done(struct folder_run *fr);
/* The server's listing of the selected folder: every message with its
 * flags, and size and Message-ID for those the state does not know. */
int imap_list_remote(struct folder_run *fr, struct fm_error *err);
/* Flags the server cannot keep (PERMANENTFLAGS of the selected folder). */
uint32_t imap_local_only_flags(const struct pass *p);
/* Whether the state is as the stamp's pass left it, nothing waiting to
 * be uploaded: with the stamp's local half holding, a quick run. */
bool imap_quick_state(const struct folder_run *fr,
                      const struct imap_stamp *stamp);
/* A folder's run once both listings are in: the plan, its actions, the
 * state and the stamp. 0 also when the guard stopped it, or (prefetched)
 * when it was deferred. */
int imap_settle(struct folder_run *fr, struct fm_error *err);
/* Frees the run; after a failure (ret < 0) saves what it recorded. */
void imap_run_end(struct folder_run *fr, int ret);
/* Ends the hold of a run imap_settle() finished: saves its state (the
 * first such save commits what every held run staged) and writes its
 * stamp. */
int imap_run_release(struct folder_run *fr, struct fm_error *err);

/* ------------------------------------------------------------------------
 * prefetch.c
 */

/* The local half of a quick run for each folder (its stamp), looked at
 * before the server is asked which folders changed. */
void imap_prefetch_prepare(struct pass *p);
/* Whether to go blind: SELECT every prepared folder in the pipeline
 * instead of asking LIST-STATUS first; sets p->blind. */
bool imap_prefetch_blind(struct pass *p);
/* Syncs, pipelined, the folders only the server changed since a quick
 * run is possible (see the file). The others are left as they were. */
int imap_prefetch(struct pass *p, struct fm_error *err);
/* How many folders the pass syncs (on both sides, selectable, wanted). */
size_t imap_folders_taken(const struct pass *p);
/* A session again after fm_imap_logout_send(): the old one closed, a new
 * one opened, QRESYNC enabled again if it was. */
int imap_session_again(struct pass *p, struct fm_error *err);
/* Frees what imap_prefetch_prepare() kept (when imap_prefetch() did not
 * run). */
void imap_prefetch_free(struct pass *p);

#endif

/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * account — what makes mail move on its own: the send/receive pass of one
 * account (the one dispatch point for every protocol), the schedule that
 * says when the next pass is due and how failures are retried, the worker
 * threads that run the schedules, new-mail notifications, and the control
 * socket through which a second fulmar asks the running one for a pass.
 *
 * Threads: one worker thread per account decides when to pass; the pass
 * itself runs on the store thread (fm_store_call), because struct fm_store
 * is the single writer and not thread-safe: passes of different accounts
 * are therefore serialised, one at a time, in the order they were asked
 * for. Workers talk to the rest only through typed messages (struct
 * fm_account_msg) whose payload belongs to the receiver.
 *
 * The schedule and the notification batching are pure: time comes from an
 * injected clock (struct fm_clock), so tests drive them minute by minute.
 */
#ifndef FULMAR_ACCOUNT_H
#define FULMAR_ACCOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/base.h"
#include "conf/conf.h"
#include "net/net.h"

struct fm_store;
struct fm_store_service;
struct fm_trace;

/* ------------------------------------------------------------------------
 * One send/receive pass.
 */

/* The most new messages a pass describes one by one (all are counted). */
#define FM_PASS_NEW_MAX 100

/* One message that arrived. Strings are owned by the result; from and
 * subject are UTF-8 without control characters (fm_mime). */
struct fm_new_mail {
	char *folder;
	char *base;    /* the store's name for it */
	char *from;    /* display name, else address; "" if none */
	char *subject; /* "" if none */
};

struct fm_pass_result {
	bool imap;       /* the IMAP fields below apply */
	size_t folders;  /* IMAP: folders synced */
	size_t uploaded; /* IMAP: messages APPENDed */
	size_t moved;    /* IMAP: local moves replayed */
	size_t flags_local, flags_remote;
	size_t expunged_local, expunged_remote;
	size_t sent;       /* messages sent from the Outbox */
	size_t on_server;  /* messages the server lists (POP3) */
	size_t downloaded; /* new messages stored */
	size_t completed;  /* header stubs completed by their body */
	size_t deleted;    /* deleted on the server */
	uint64_t bytes;    /* bytes downloaded */
	uint64_t ms;       /* how long the pass took */
	/* The server answered (TCP connected). false with a TEMPORARY error
	 * means it could not be reached at all: the account is offline. */
	bool reached;
	size_t n_new;             /* messages that arrived */
	struct fm_new_mail *news; /* the first FM_PASS_NEW_MAX of them */
	size_t n_news;            /* entries in news (<= n_new) */
};

/* Frees what a result owns and zeroes it. NULL-safe. */
void fm_pass_result_free(struct fm_pass_result *res);

/* Told during a pass, on the thread that runs it. Any member may be NULL. */
struct fm_pass_hooks {
	/* done of total messages of folder, bytes so far. */
	void (*progress)(void *ctx, const char *folder, size_t done,
	                 size_t total, uint64_t bytes);
	/* A protocol step finished (see struct fm_net_observer): "TCP",
	 * "login", ... for the state line. */
	void (*step)(void *ctx, const char *step, bool ok);
	void *ctx;
};

/* One send/receive pass of acct into store: the Outbox is flushed (when
 * the account has smtp_host), then an IMAP sync both ways (fm_imap_sync)
 * or a POP3 download (fm_pop3_sync). A sending failure does not stop the
 * receiving half; the pass then fails with the sending error. res is filled in
 * both cases (zeroed first; free it with fm_pass_result_free) and says whether
 * the server was reached and what arrived (from the stored headers). Runs on
 * the thread that owns store; o->cancel_fd stops it at once (FM_ERR_CANCELLED),
 * and what a cancelled pass wrote is whole (see fm_pop3_sync). */
int fm_account_pass(const struct fm_account *acct, struct fm_store *store,
                    const struct fm_session_opts *o,
                    const struct fm_pass_hooks *hooks,
                    struct fm_pass_result *res, struct fm_error *err);

/* If ACCOUNT/FOLDER/BASE is stored as headers only, downloads its body
 * from the account's server and replaces the stub atomically: the one
 * place that picks fm_pop3_fetch_body() or fm_imap_fetch_body(). Returns
 * 0 when the message is whole now (or was, or has no server copy to
 * complete it from); -1 with err when the body could not be fetched (the
 * stub stays). store must hold the account; called on the thread that
 * owns store. */
int fm_account_fetch_body(const struct fm_account *acct, struct fm_store *store,
                          const struct fm_session_opts *o, const char *folder,
                          const char *base, struct fm_error *err);

/* What `fulmar sync` may ask of one pass beyond the default. */
struct fm_pass_opts {
	const char *const *folders; /* IMAP: only these (NULL: all) */
	size_t n_folders;
	bool force; /* IMAP: past the mass-deletion guard */
	/* The new messages are counted, not told: res->news stays empty, and
	 * none is read again to tell who wrote it. */
	bool counts_only;
};
/* fm_account_pass() with options (po NULL: the defaults). */
int fm_account_pass_opts(const struct fm_account *acct, struct fm_store *store,
                         const struct fm_session_opts *o,
                         const struct fm_pass_hooks *hooks,
                         const struct fm_pass_opts *po,
                         struct fm_pass_result *res, struct fm_error *err);

/* ------------------------------------------------------------------------
 * Clocks. Two clocks, because suspending the machine stops the monotonic
 * one and not the wall clock: their drift is how a resume is noticed.
 */
struct fm_clock {
	uint64_t (*mono_ms)(void *ctx); /* monotonic milliseconds */
	int64_t (*wall_ms)(void *ctx);  /* milliseconds since the epoch */
	uint32_t (*random)(void *ctx);  /* uniform 32 bits, for jitter */
	void *ctx;
};

/* CLOCK_MONOTONIC, CLOCK_REALTIME and getrandom(). Thread-safe. */
const struct fm_clock *fm_clock_system(void);

/* Notices a resume from suspend: embedded by value, zeroed to start. */
struct fm_clock_watch {
	bool have;
	uint64_t mono;
	int64_t wall;
};
/* Reads both clocks: true when, since the last look, the wall clock ran
 * ahead of the monotonic one by more than jump_ms (the monotonic clock
 * stops while the machine sleeps). A wall clock set back, or NTP slewing
 * less than jump_ms, is no resume. The first look only remembers. Pure
 * given the clock; one thread per watch. */
bool fm_clock_jumped(struct fm_clock_watch *cw, const struct fm_clock *c,
                     uint64_t jump_ms);

/* ------------------------------------------------------------------------
 * The schedule of one account: pure logic, one thread (its worker).
 */
#define FM_SCHED_NEVER UINT64_MAX

struct fm_sched_params {
	uint64_t retry_first_ms; /* first retry after a failure: 2 s */
	uint64_t retry_max_ms;   /* back-off cap: 10 min */
	uint64_t offline_max_ms; /* back-off cap while offline: 2 min */
	uint64_t jump_ms;        /* wall clock ahead of the monotonic one by
	                            more than this = a resume: 10 s */
	uint64_t tick_ms;        /* the longest sleep, so a resume is seen
	                            soon: 5 s */
	uint64_t settle_ms;      /* after a network change, wait this long
	                            before an offline account tries: 1 s */
};

void fm_sched_params_default(struct fm_sched_params *p);

enum fm_sched_state {
	FM_SCHED_WAITING,  /* healthy: the next pass comes on schedule */
	FM_SCHED_RUNNING,  /* a pass is under way */
	FM_SCHED_RETRYING, /* a pass failed: retried with back-off */
	FM_SCHED_OFFLINE,  /* the server could not be reached: retried with
	                      back-off, and soon after the network changes */
	FM_SCHED_STOPPED,  /* needs the user (credentials, TLS trust,
	                      config, a permanent refusal): no pass until a
	                      manual one or a config reload */
};

enum fm_pass_reason {
	FM_PASS_STARTUP,  /* schedule = startup */
	FM_PASS_SCHEDULE, /* every N */
	FM_PASS_RETRY,    /* back-off after a failure */
	FM_PASS_RESUME,   /* the clocks jumped apart: resumed from suspend */
	FM_PASS_NETWORK,  /* the network changed while offline */
	FM_PASS_MANUAL,   /* asked for (fulmar sync, the UI) */
	FM_PASS_PUSH,     /* the server said something changed (IDLE, NOTIFY) */
};

/* A short English word for logs: "startup", "schedule", ... */
const char *fm_pass_reason_name(enum fm_pass_reason reason);
const char *fm_sched_state_name(enum fm_sched_state state);

/* Embedded by value; the fields are private to schedule.c. */
struct fm_sched {
	struct fm_schedule schedule;
	struct fm_sched_params params;
	const struct fm_clock *clock;
	enum fm_sched_state state;
	enum fm_sched_state settled; /* the state before the running pass */
	enum fm_error_class last_cls;
	uint64_t due;         /* monotonic ms of the next pass, or NEVER */
	uint64_t network_due; /* offline: try at this time, or NEVER */
	uint64_t started;     /* when the running pass began */
	unsigned failures;    /* in a row */
	bool startup;         /* the startup pass is still to come */
	bool manual;          /* a manual pass was asked for */
	bool push;            /* the server reported news */
	bool resume;          /* a resume was noticed */
	struct fm_clock_watch clocks;
};

/* Starts the schedule at the clock's now: with startup the first pass is
 * due at once, with every N after N, with neither (manual) never. p NULL:
 * the defaults. The clock must outlive the schedule. */
void fm_sched_init(struct fm_sched *s, const struct fm_schedule *schedule,
                   const struct fm_sched_params *p,
                   const struct fm_clock *clock);

/* Reads the clocks. true: a pass is due now, for *reason_r (call
 * fm_sched_begin). false: *wait_ms_r is how long the caller may sleep
 * before asking again (never past the due time, never over tick_ms). */
bool fm_sched_poll(struct fm_sched *s, enum fm_pass_reason *reason_r,
                   uint64_t *wait_ms_r);

/* A pass starts now. */
void fm_sched_begin(struct fm_sched *s);

/* What the schedule made of a pass's end. */
struct fm_sched_verdict {
	enum fm_sched_state state; /* the new state */
	/* The state (or the error class that put it there) is new: tell the
	 * user. A failure repeated in the same state is not told again. */
	bool changed;
	uint64_t next_ms; /* from now to the next automatic pass, or NEVER */
};

/* The pass begun last ended with cls (FM_ERR_NONE: success); reached as
 * in struct fm_pass_result. TEMPORARY, PROTOCOL and LOCAL errors retry
 * with exponential back-off (doubling from retry_first_ms, capped,
 * jittered down to half), OFFLINE when the server was not reached;
 * CREDENTIALS, TLS, CONFIG, PERMANENT and USAGE stop the account;
 * CANCELLED changes nothing. Success resets the back-off and puts the next
 * pass on the every-N grid. */
void fm_sched_end(struct fm_sched *s, enum fm_error_class cls, bool reached,
                  struct fm_sched_verdict *v);

/* A manual pass is wanted: due at once, also for a stopped account. */
void fm_sched_request(struct fm_sched *s);
/* The server reported news (push): a pass is due at once when the account
 * is waiting or offline (the push connection just reached the server);
 * a retrying account keeps its back-off, and a stopped one stays stopped
 * (new mail must not retry a wrong password into a lock-out). */
void fm_sched_push(struct fm_sched *s);
/* The network changed (an address or route appeared): an offline account
 * tries again after settle_ms. */
void fm_sched_network_changed(struct fm_sched *s);
/* The configuration was read again: a stopped account is given another
 * chance (a pass at once), the schedule is replaced. */
void fm_sched_reload(struct fm_sched *s, const struct fm_schedule *schedule);
enum fm_sched_state fm_sched_get_state(const struct fm_sched *s);

/* ------------------------------------------------------------------------
 * Notifications.
 *
 * notify_cmd is a shell command line written by the user. The values that
 * come from mail (sender, subject, folder) are never pasted into it: each
 * placeholder becomes a quoted reference to an environment variable set
 * for the command alone, so the shell expands it without parsing it:
 *   %a FULMAR_ACCOUNT   %f FULMAR_FOLDER   %F FULMAR_FROM
 *   %s FULMAR_SUBJECT   %n FULMAR_COUNT    %% a percent sign
 * A placeholder inside '...' or "..." or bare all expand to the value as
 * one word. Any other %x is left as it is.
 */
struct fm_notify_vars {
	const char *account;
	const char *folder;
	const char *from;
	const char *subject;
	size_t count;
};

/* The command line to hand to /bin/sh -c for template tmpl. Newly
 * allocated. Never fails. Pure. */
char *fm_notify_command(const char *tmpl);
/* The FULMAR_*=value strings for vars: a NULL-terminated array of newly
 * allocated strings; free with fm_notify_env_free(). */
char **fm_notify_env(const struct fm_notify_vars *vars);
void fm_notify_env_free(char **env);
/* Starts /bin/sh -c on the command for tmpl with the FULMAR_* variables
 * added to the environment, stdin from /dev/null, in its own process
 * group. Does not wait: the caller reaps *pid_r (waitpid). FM_ERR_LOCAL
 * when it cannot start. Any thread. */
int fm_notify_spawn(const char *tmpl, const struct fm_notify_vars *vars,
                    pid_t *pid_r, struct fm_error *err);

/* Batching and rate limiting, pure: new mail is gathered per account until
 * the pass that found it ends, then told as one notification (count, and
 * the first message's folder, sender and subject); an account is told at
 * most once per min_interval_ms, what comes in between is added to the
 * next notification. One thread. */
struct fm_notifier;

struct fm_notify_batch {
	char *account;
	char *folder;
	char *from;
	char *subject;
	size_t count;
};

struct fm_notifier *fm_notifier_new(uint64_t min_interval_ms);
void fm_notifier_free(struct fm_notifier **n);
/* count messages arrived for account; folder, from and subject describe
 * the first of them (copied; used if the batch has none yet). The batch
 * may be told from now on. */
void fm_notifier_add(struct fm_notifier *n, const char *account,
                     const char *folder, const char *from, const char *subject,
                     size_t count);
/* The next notification due at now_ms: true and *b (free it with
 * fm_notify_batch_free), else false and *wait_ms_r until one is due (or
 * FM_SCHED_NEVER). */
bool fm_notifier_take(struct fm_notifier *n, uint64_t now_ms,
                      struct fm_notify_batch *b, uint64_t *wait_ms_r);
void fm_notify_batch_free(struct fm_notify_batch *b);

/* The terminal title with unread counts, for `title = yes`: "fulmar" when
 * nothing is unread, else "fulmar: N unread (ACCOUNT N, ...)" listing the
 * accounts with unread mail. Cut to size; pure. */
struct fm_title_count {
	const char *account;
	size_t unread;
};
void fm_title_format(const struct fm_title_count *counts, size_t n, char *buf,
                     size_t size);
/* The escape sequence (OSC 2) that sets the terminal title to text, with
 * control characters dropped so the text cannot end it early. */
void fm_title_escape(const char *text, char *buf, size_t size);

/* ------------------------------------------------------------------------
 * Workers: one thread per account runs its schedule and asks the store
 * thread for its passes.
 */

/* The state an account shows (status line, `fulmar watch` log). */
enum fm_account_state {
	FM_ACCOUNT_WAITING,
	FM_ACCOUNT_CONNECTING,
	FM_ACCOUNT_AUTHENTICATING,
	FM_ACCOUNT_SYNCING,
	FM_ACCOUNT_RETRYING,
	FM_ACCOUNT_OFFLINE,
	FM_ACCOUNT_STOPPED,
};
const char *fm_account_state_name(enum fm_account_state state);

enum fm_account_msg_kind {
	FM_MSG_STATE,    /* state */
	FM_MSG_PROGRESS, /* folder, done, total, bytes */
	FM_MSG_NEW_MAIL, /* folder, from, subject: one message arrived */
	FM_MSG_PASS,     /* a pass ended: everything from seq on */
};

/* A message from a worker. Owned by the receiver: free it with
 * fm_account_msg_free(). */
struct fm_account_msg {
	enum fm_account_msg_kind kind;
	size_t account;   /* index into cfg->accounts */
	const char *name; /* the account's name, borrowed from the config */
	enum fm_account_state state;
	char *folder;
	size_t done, total;
	uint64_t bytes;
	char *from, *subject;
	/* FM_MSG_PASS */
	uint64_t seq; /* the account's pass number, from 1 */
	enum fm_pass_reason reason;
	struct fm_pass_result result;
	struct fm_error err; /* cls FM_ERR_NONE on success */
	struct fm_sched_verdict verdict;
	struct fm_account_msg *next; /* private to the queue */
};

void fm_account_msg_free(struct fm_account_msg **msg);

struct fm_workers_opts {
	const struct fm_config *cfg;
	struct fm_store_service *store; /* where passes run */
	struct fm_trace *trace;         /* may be NULL */
	const struct fm_clock *clock;   /* NULL: the system clock */
	struct fm_sched_params params;
	/* Which accounts get a worker (indexes into cfg->accounts); NULL:
	 * all. */
	const bool *enabled;
};

struct fm_workers;

/* Starts one worker thread per enabled account. Threads that create
 * threads later must block the signals they handle before this call (the
 * workers inherit the mask). FM_ERR_LOCAL if a thread cannot start. */
int fm_workers_start(const struct fm_workers_opts *opts,
                     struct fm_workers **w_r, struct fm_error *err);
/* Readable (eventfd) while messages wait. */
int fm_workers_fd(const struct fm_workers *w);
/* The oldest waiting message, or NULL. Any one thread. */
struct fm_account_msg *fm_workers_next(struct fm_workers *w);
/* Asks account (an index) for a manual pass; *seq_r is the number the
 * pass will have: its FM_MSG_PASS carries a seq >= *seq_r. A pass under
 * way does not count (it may have started before the request). -1 if the
 * account has no worker. */
int fm_workers_request(struct fm_workers *w, size_t account, uint64_t *seq_r);
/* The server told account (an index) about news: a pass as
 * fm_sched_push() allows. -1 if the account has no worker. Any thread. */
int fm_workers_push(struct fm_workers *w, size_t account);
/* Every worker's offline account tries soon (fm_sched_network_changed). */
void fm_workers_network_changed(struct fm_workers *w);
/* Cancels every pass under way (through the sessions' cancel fds) and
 * waits for the threads; the messages they sent that were not taken yet
 * (the cancelled passes' among them) go to on_msg, which owns them (NULL:
 * dropped). NULL-safe; sets *w to NULL. */
void fm_workers_stop(struct fm_workers **w,
                     void (*on_msg)(void *ctx, struct fm_account_msg *m),
                     void *ctx);

/* ------------------------------------------------------------------------
 * The control socket: DATA_DIR/control (mode 0600, owner only), through
 * which `fulmar sync` asks a running fulmar for passes. One request line,
 * "sync [ACCOUNT]..." (fields as fm_record_put writes them), answered by
 * one line per account as its pass ends and "end":
 *   pass ACCOUNT ok DOWNLOADED BYTES COMPLETED DELETED ON_SERVER MS
 *   pass ACCOUNT error CLASS SENTENCE
 */

/* Binds and listens (non-blocking, close-on-exec), replacing a stale
 * socket: only call it holding the store's locks. *fd_r is the listening
 * socket. FM_ERR_LOCAL on failure. */
int fm_control_listen(const char *data_dir, int *fd_r, struct fm_error *err);
/* Removes the socket file (at exit). */
void fm_control_unlink(const char *data_dir);
/* Connects to a running fulmar: 0 and *fd_r, 1 when none listens, -1
 * (FM_ERR_LOCAL) on other failures. */
int fm_control_connect(const char *data_dir, int *fd_r, struct fm_error *err);
/* True when the peer of a connected socket runs as our user. */
bool fm_control_peer_ok(int fd);

/* One reply line as a parsed record. */
struct fm_control_reply {
	char *account;
	bool ok;
	struct fm_pass_result result; /* counts only, when ok */
	struct fm_error err;          /* when not ok */
};
/* The reply line for a finished pass (newly allocated, ends in "\n"). */
char *fm_control_format_reply(const char *account,
                              const struct fm_pass_result *res,
                              const struct fm_error *err);
/* Parses a reply line (without its newline): 0, 1 for "end", -1 for
 * anything else. Free the reply with fm_control_reply_free(). */
int fm_control_parse_reply(const char *line, struct fm_control_reply *r);
void fm_control_reply_free(struct fm_control_reply *r);
/* The next reply a running fulmar sends on fd: 0 and *r (free it with
 * fm_control_reply_free), or 1 when there are no more (the end line, the
 * peer closed, a read failed). in holds what was read ahead: an fm_buf
 * with a maximum (a longer line ends the replies), kept between calls.
 * Lines that are not replies are skipped. */
int fm_control_next_reply(int fd, struct fm_buf *in,
                          struct fm_control_reply *r);

/* The request line for accounts (n 0: all); newly allocated. */
char *fm_control_format_request(char *const *accounts, size_t n);
/* Parses a request line in place: 0 and the account names (pointers into
 * line; *names_r newly allocated, n 0 meaning all), -1 if it is not a
 * request. */
int fm_control_parse_request(char *line, char ***names_r, size_t *n_r);

/* ------------------------------------------------------------------------
 * Network changes (Linux rtnetlink): a socket that becomes readable when
 * an address, a route or a link comes or goes, so offline accounts try
 * again when the network returns instead of waiting out their back-off.
 */
/* -1 when the system offers no such notification (fulmar then relies on
 * the back-off alone). Non-blocking, close-on-exec. */
int fm_netwatch_open(void);
/* Reads what is waiting; true if the network changed. */
bool fm_netwatch_read(int fd);

/* ------------------------------------------------------------------------
 * Push (push.c): for every IMAP account with idle = yes, connections that
 * wait for the server to report news and then ask the account's worker
 * for a pass (fm_workers_push). One connection for the whole account when
 * the server offers NOTIFY (and imap_notify = yes); else one IDLE
 * connection per watched folder (INBOX, then the account's other local
 * folders), max_connections in all, the last of which asks the folders
 * left over for their STATUS every minute; else one connection that asks
 * every watched folder's STATUS every minute. Reconnects with back-off,
 * at once after a suspend, and checks its links after a network change.
 * Threads of its own; the owner's thread calls these.
 */
struct fm_push_pool;
/* Starts push for cfg's accounts (the watched folders as the store in
 * data_dir lists them now). The config, workers and trace must outlive
 * the pool. */
int fm_push_pool_start(const struct fm_config *cfg, const char *data_dir,
                       struct fm_workers *workers, struct fm_trace *trace,
                       struct fm_push_pool **pool_r, struct fm_error *err);
/* The network changed: connections waiting to retry try soon, the others
 * check that their link still answers. NULL-safe. */
void fm_push_pool_network_changed(struct fm_push_pool *pool);
/* Cancels every wait at once and joins the threads. NULL-safe; sets
 * *pool to NULL. */
void fm_push_pool_stop(struct fm_push_pool **pool);

#endif

/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * conf — the configuration file: parsing (inih), defaults, validation with
 * FILE:LINE diagnostics, and secrets from commands.
 *
 * The file is INI: a [general] section, one [account NAME] section per
 * account, and the reserved [keys] and [colors] sections. doc/fulmar.conf.5
 * lists every key. The loaded struct fm_config is immutable after
 * fm_config_load() and may be read from any thread; it is the one config
 * struct passed down to every module (no globals).
 */
#ifndef FULMAR_CONF_H
#define FULMAR_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

enum fm_protocol { FM_PROTO_IMAP, FM_PROTO_POP3 };
enum fm_tls_mode { FM_TLS_IMPLICIT, FM_TLS_STARTTLS, FM_TLS_NONE };
enum fm_auth_mech {
	FM_AUTH_AUTO,
	FM_AUTH_PLAIN,
	FM_AUTH_LOGIN,
	FM_AUTH_XOAUTH2,
	FM_AUTH_OAUTHBEARER,
};
enum fm_download { FM_DOWNLOAD_FULL, FM_DOWNLOAD_HEADERS, FM_DOWNLOAD_MAX };
/* What a POP3 account does with a server that has no UIDL. */
enum fm_pop3_no_uidl { FM_POP3_NO_UIDL_ERROR, FM_POP3_NO_UIDL_MESSAGE_ID };
enum fm_save_sent { FM_SAVE_SENT_SERVER, FM_SAVE_SENT_LOCAL, FM_SAVE_SENT_NO };

/* When an account runs a send/receive pass on its own. */
struct fm_schedule {
	bool startup;           /* once when fulmar starts */
	unsigned every_seconds; /* 0: no periodic pass */
};

/* Where a value came from, for `fulmar config` and for diagnostics that
 * point at a key after parsing (contradictions). line 0: the default. */
struct fm_conf_origin {
	unsigned line;
};

/* One [account NAME] section, with every default filled in. Strings are
 * owned by the config; NULL means "not set" where a comment says so. */
struct fm_account {
	char *name;    /* the NAME of [account NAME]; unique */
	unsigned line; /* line of the section header */

	char *email;     /* required */
	char *real_name; /* `name`; NULL if not set */
	enum fm_protocol protocol;
	char *host;    /* required */
	unsigned port; /* default from protocol and tls */
	enum fm_tls_mode tls;
	char *tls_ca_file; /* NULL: system CAs */
	bool has_fingerprint;
	uint8_t tls_fingerprint[32]; /* SHA-256 of the DER certificate */
	bool allow_plaintext_login;
	char *user;         /* default: email */
	char *password;     /* NULL if not set; never logged or printed */
	char *password_cmd; /* NULL if not set */
	enum fm_auth_mech auth;
	char *oauth_token_cmd; /* NULL if not set */
	/* `folders`: the word `subscribed` (the server's subscriptions,
	 * INBOX and the special-use folders; the default) and patterns,
	 * exclusions starting with '!'. folders is NULL-terminated; it may
	 * be empty (n_folders 0) when folders_subscribed is set. */
	bool folders_subscribed;
	char **folders;
	size_t n_folders;
	struct fm_schedule schedule;
	bool idle;
	bool imap_notify;         /* use NOTIFY (RFC 5465) when offered */
	unsigned max_connections; /* the IDLE pool, INBOX's included */
	enum fm_download download;
	uint64_t download_max; /* bytes, for FM_DOWNLOAD_MAX */
	bool keep_on_server;
	unsigned delete_after_days; /* 0: never */
	bool delete_when_deleted_locally;
	enum fm_pop3_no_uidl pop3_no_uidl;
	char *smtp_host; /* NULL: this account cannot send */
	unsigned smtp_port;
	enum fm_tls_mode smtp_tls;
	char *smtp_user; /* default: user */
	enum fm_save_sent save_sent;
	char *notify_cmd; /* NULL: use [general] notify_cmd */
	bool is_default;

	/* Line of each key that was set (0 = default), indexed by key id;
	 * private to conf/ and `fulmar config`. */
	unsigned *key_lines;
};

struct fm_general {
	char *log_protocol; /* path, or NULL */
	char *notify_cmd;   /* NULL if not set */
	bool bell;
	bool title;
	unsigned connect_timeout; /* seconds, per address tried */
	unsigned timeout;         /* seconds a server may stay silent */
	unsigned max_line_kib;    /* longest response outside literals */
	unsigned max_literal_mib; /* largest IMAP literal */

	/* Line of each key that was set (0 = default), indexed by key id, as
	 * in struct fm_account; private to conf/. */
	unsigned *key_lines;
};

struct fm_config {
	char *path; /* the file that was read */
	struct fm_general general;
	struct fm_account *accounts; /* in file order */
	size_t n_accounts;
};

enum fm_conf_severity { FM_CONF_WARNING, FM_CONF_ERROR };

/* One problem found in the file: printed by cli/ as
 * "FILE:LINE: KEY: MESSAGE" (KEY omitted when empty). */
struct fm_conf_diag {
	enum fm_conf_severity severity;
	unsigned line; /* 0 when the problem is not tied to a line */
	char *key;     /* owned; "" when not about one key */
	char *message; /* owned; translated */
};

struct fm_conf_diags {
	struct fm_conf_diag *items;
	size_t n;
	size_t n_errors;
};

/* Reads and validates the file at path. On success (no errors; warnings are
 * allowed) returns 0 and a new config in *cfg_r. On failure returns -1 with
 * err->cls = FM_ERR_CONFIG and *cfg_r = NULL. In both cases diags_r receives
 * every warning and error in line order (the caller frees it with
 * fm_conf_diags_free()). A missing file is an error with line 0.
 * A password found in the file is registered with fm_log_add_secret().
 * Any thread; the result belongs to the caller. */
int fm_config_load(const char *path, struct fm_config **cfg_r,
                   struct fm_conf_diags *diags_r, struct fm_error *err);
/* Frees the config, wiping any secret it holds. NULL-safe; sets *cfg to
 * NULL. */
void fm_config_free(struct fm_config **cfg);
void fm_conf_diags_free(struct fm_conf_diags *diags);

/* The default config file path: $XDG_CONFIG_HOME/fulmar/config. Newly
 * allocated. */
char *fm_config_default_path(void);

/* The account with that name, or NULL. */
const struct fm_account *fm_config_find_account(const struct fm_config *cfg,
                                                const char *name);
/* The account marked `default = yes`, else the first, else NULL. */
const struct fm_account *fm_config_default_account(const struct fm_config *cfg);

/* Writes the effective settings of every account (and [general]) as INI to
 * out, one `key = value` line each, defaults marked with a trailing
 * "# default" comment and secrets shown as "<set, hidden>". Uses the
 * caller's FILE: cli/ owns the terminal. fm_config_load() reads the output
 * back to the same settings (bar the password): the password, unset keys
 * and keys that do not apply to the account (POP3-only keys of an IMAP
 * account, smtp_* without smtp_host) are written as comment lines, and
 * long values are wrapped onto continuation lines. Without accounts it
 * writes nothing. */
#include <stdio.h>
void fm_config_write(const struct fm_config *cfg, FILE *out);

/* Runs the shell command cmd (/bin/sh -c) with no stdin and returns the first
 * line of its standard output (without the newline) in *secret_r, which the
 * caller frees with fm_free_secret(). Fails (FM_ERR_CONFIG, naming the
 * key) if the command exits non-zero, prints nothing, or exceeds timeout_ms;
 * output past 64 KiB is an error. stderr of the command is passed through.
 * Never logs the secret, and registers it with fm_log_add_secret(). The
 * child is killed and reaped before this returns. Any thread. */
int fm_conf_run_secret_cmd(const char *key, const char *cmd,
                           unsigned timeout_ms, char **secret_r,
                           struct fm_error *err);

#endif

/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * conf internals: the key table and the value parsers (keys.c), shared with
 * the loader (conf.c), the rules (rules.c) and the writer (write.c).
 * Nothing here is public.
 */
#ifndef FULMAR_CONF_INT_H
#define FULMAR_CONF_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/base.h"
#include "conf/conf.h"

/* The longest physical line inih can take: INI_MAX_LINE (200) minus the
 * terminator. */
#define CONF_LINE_MAX 199
/* The longest value, continuation lines included. */
#define CONF_VALUE_MAX 4096

enum conf_sect { CONF_SECT_GENERAL, CONF_SECT_ACCOUNT };

/* How a value is parsed and printed. The generic types store into the field
 * at the key's offset; CONF_T_CUSTOM uses the key's parse/format hooks. */
enum conf_type {
	CONF_T_STRING, /* char *; NULL when not set */
	CONF_T_PATH,   /* char *; "~/" expanded, must be absolute */
	CONF_T_BOOL,   /* bool */
	CONF_T_ENUM,   /* an enum (unsigned-sized), names[] indexed by value */
	CONF_T_UINT,   /* unsigned in [min, max] */
	CONF_T_CUSTOM, /* parse/format hooks */
};

enum conf_key_flags {
	CONF_KF_REQUIRED = 1 << 0, /* an account without it is an error */
	CONF_KF_SECRET = 1 << 1,   /* never printed; wiped; masked in logs */
	CONF_KF_POP3 = 1 << 2,     /* applies to POP3 accounts only */
	CONF_KF_IMAP = 1 << 3,     /* applies to IMAP accounts only */
	CONF_KF_SMTP = 1 << 4,     /* needs smtp_host */
	CONF_KF_EMPTY_OK = 1 << 5, /* an empty value is meaningful */
};

/* Where a value parser reports a problem: the line and key of the value
 * being parsed. diags may not be NULL. */
struct conf_report {
	struct fm_conf_diags *diags;
	unsigned line;
	const char *key;
};

struct conf_key;
/* Parses value (trimmed, non-empty unless CONF_KF_EMPTY_OK) into obj (a
 * struct fm_general or fm_account). On success stores it, replacing and
 * freeing any earlier value, and returns 0; otherwise reports an error
 * through r, leaves obj unchanged and returns -1. May report warnings. */
typedef int conf_parse_fn(const struct conf_key *key, void *obj,
                          const char *value, const struct conf_report *r);
/* Appends the value's text form (what the parser accepts back) to out. */
typedef void conf_format_fn(const struct conf_key *key, const void *obj,
                            struct fm_buf *out);

/* One key. The table in keys.c is the single list of every key: adding a
 * key whose type exists is one line there (plus its meaning in
 * doc/fulmar.conf.5). */
struct conf_key {
	const char *name;
	enum conf_sect sect;
	enum conf_type type;
	size_t offset;            /* of the field in the section's struct */
	unsigned flags;           /* enum conf_key_flags */
	const char *def;          /* default, parsed like a value; NULL when
	                             computed from other keys or unset */
	const char *const *names; /* CONF_T_ENUM: NULL-terminated */
	unsigned min, max;        /* CONF_T_UINT */
	const char *what;         /* CONF_T_UINT: "a port number" (N_()) */
	/* Extra validation for CONF_T_STRING/CONF_T_PATH; NULL: none. Returns
	 * 0, or -1 after reporting through r. */
	int (*check)(const char *value, const struct conf_report *r);
	conf_parse_fn *parse;       /* CONF_T_CUSTOM */
	conf_format_fn *format;     /* CONF_T_CUSTOM */
	void (*release)(void *obj); /* CONF_T_CUSTOM: frees what it owns */
};

extern const struct conf_key conf_keys[];
extern const size_t conf_n_keys;

/* The id (index in conf_keys) of name in sect, compared without regard to
 * ASCII case; -1 if there is none. */
int conf_key_find(enum conf_sect sect, const char *name);
/* Like conf_key_find() for names the code itself uses; aborts if the key
 * does not exist (a bug). */
size_t conf_key_id(enum conf_sect sect, const char *name);

/* Parses value into obj with the key's type (see conf_parse_fn). */
int conf_key_set(const struct conf_key *key, void *obj, const char *value,
                 const struct conf_report *r);
/* Appends the key's current value in obj to out; a NULL string appends
 * nothing and returns false. */
bool conf_key_format(const struct conf_key *key, const void *obj,
                     struct fm_buf *out);
/* Frees whatever the key's field in obj owns (secrets wiped). */
void conf_key_free(const struct conf_key *key, void *obj);

/* Adds a diagnostic, keeping the list in line order (stable). */
void conf_diag_add(struct fm_conf_diags *diags, enum fm_conf_severity sev,
                   unsigned line, const char *key, const char *fmt, ...)
    FM_PRINTF(5, 6);
/* An error through r; returns -1. */
int conf_report_error(const struct conf_report *r, const char *fmt, ...)
    FM_PRINTF(2, 3);
void conf_report_warning(const struct conf_report *r, const char *fmt, ...)
    FM_PRINTF(2, 3);

/* Parses the table default of every key of sect in obj whose line in lines
 * is 0 (not set). */
void conf_apply_defaults(enum conf_sect sect, void *obj, const unsigned *lines);
/* Completes an account once its section has ended: defaults, defaults that
 * follow other keys, and the rules between keys. seen holds the line of
 * every key given in the section, valid or not (so a bad value is not also
 * reported as missing). */
void conf_finish_account(struct fm_account *a, const unsigned *seen,
                         struct fm_conf_diags *diags);
/* Rules across accounts (only one default). */
void conf_check_accounts(const struct fm_config *cfg,
                         struct fm_conf_diags *diags);

/* Seconds as the shortest exact "10m", "1h", "90s". */
void conf_format_interval(unsigned seconds, struct fm_buf *out);

#endif

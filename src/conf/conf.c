/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Loading the configuration file.
 *
 * inih splits "key = value" lines and strips inline comments, but the
 * Debian build gives the handler no line numbers, cuts lines at 199 bytes
 * and joins any indented line onto the previous key, even across blank
 * lines. So inih reads through read_line(), which hands it one physical
 * line per call and keeps everything inih does not: the line count, the
 * current section (headers are parsed here, so names are not cut at 50
 * bytes), and continuation lines, which it joins itself and never shows to
 * inih. A value is complete when the next line that is not its
 * continuation arrives; only then is it parsed (commit_pending()).
 *
 * All problems are collected in one pass; rules that tie keys together run
 * when an account's section ends (rules.c).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "conf/conf-int.h"
#include "conf/conf.h"
#include "log/log.h"

/* ------------------------------------------------------------------------
 * The parser.
 */

enum line_kind {
	LK_START,
	LK_BLANK,
	LK_COMMENT,
	LK_SECTION,
	LK_KEY,
	LK_CONT,
	LK_BAD, /* too long or binary: indented lines after it are dropped */
};

enum sect_state {
	SS_NONE, /* before the first section header */
	SS_GENERAL,
	SS_ACCOUNT,
	SS_IGNORED, /* reserved, unknown or broken header: keys are skipped */
};

struct parser {
	const char *path;
	FILE *fp;
	bool readable_by_others;
	struct fm_config *cfg;
	struct fm_conf_diags *diags;

	unsigned line;               /* the physical line just read */
	char raw[CONF_LINE_MAX + 8]; /* that line, cut if too long */
	enum line_kind prev_kind;
	size_t key_indent; /* columns before the last key line */

	enum sect_state sect;
	size_t acct;            /* the current account, SS_ACCOUNT */
	unsigned *seen;         /* key id -> line, in this section */
	unsigned *general_seen; /* [general] may appear twice */
	unsigned *acct_seen;    /* reset for each account */
	bool warned_keys, warned_colors;

	/* The key line whose value may still grow by continuation lines. */
	bool pending;
	int pend_key; /* -1: the key is being ignored */
	unsigned pend_line;
	bool pend_overflow;
	size_t pend_len;
	char pend_value[CONF_VALUE_MAX + 1];
};

static void
diag(struct parser *p, enum fm_conf_severity sev, unsigned line,
     const char *key, const char *msg)
{
	conf_diag_add(p->diags, sev, line, key, "%s", msg);
}

/* Removes the "# default" that fm_config_write() puts after defaults, so
 * its output reads back. */
static void
strip_default_marker(char *v)
{
	static const char marker[] = "default";
	size_t n = strlen(v), m = sizeof(marker) - 1;
	if (n < m + 2 || memcmp(v + n - m, marker, m) != 0)
		return;
	size_t i = n - m;
	while (i > 0 && (v[i - 1] == ' ' || v[i - 1] == '\t'))
		i--;
	if (i < 2 || v[i - 1] != '#' || (v[i - 2] != ' ' && v[i - 2] != '\t'))
		return;
	v[i - 1] = '\0';
	fm_str_trim(v);
}

static void
commit_value(struct parser *p)
{
	const struct conf_key *k = &conf_keys[p->pend_key];
	struct conf_report r = {p->diags, p->pend_line, k->name};
	if (p->pend_overflow) {
		conf_report_error(&r, _("the value is longer than %d bytes"),
		                  CONF_VALUE_MAX);
		return;
	}
	char *v = fm_str_trim(p->pend_value);
	strip_default_marker(v);
	if (*v == '\0' && !(k->flags & CONF_KF_EMPTY_OK)) {
		conf_report_error(&r, _("empty value; set a value or remove "
		                        "the line to use the default"));
		return;
	}
	void *obj;
	unsigned *lines;
	if (k->sect == CONF_SECT_GENERAL) {
		obj = &p->cfg->general;
		lines = p->cfg->general.key_lines;
	} else {
		obj = &p->cfg->accounts[p->acct];
		lines = p->cfg->accounts[p->acct].key_lines;
	}
	if (conf_key_set(k, obj, v, &r) < 0)
		return;
	lines[p->pend_key] = p->pend_line;
	if (k->flags & CONF_KF_SECRET) {
		fm_log_add_secret(v);
		if (p->readable_by_others)
			conf_report_warning(
			    &r,
			    _("the file is readable by other users; "
			      "chmod 600 %s or use password_cmd"),
			    p->path);
	}
}

static void
commit_pending(struct parser *p)
{
	if (!p->pending)
		return;
	p->pending = false;
	if (p->pend_key >= 0)
		commit_value(p);
	fm_wipe(p->pend_value, sizeof(p->pend_value));
	p->pend_len = 0;
}

/* A ';' after white space starts a comment, as inih has it. */
static void
cut_inline_comment(char *s)
{
	bool was_space = false;
	for (; *s != '\0'; s++) {
		if (was_space && *s == ';') {
			*s = '\0';
			return;
		}
		was_space = *s == ' ' || *s == '\t';
	}
}

static void
append_continuation(struct parser *p, char *text)
{
	if (!p->pending || p->pend_key < 0)
		return;
	cut_inline_comment(text);
	text = fm_str_trim(text);
	size_t n = strlen(text);
	if (p->pend_len + 1 + n > CONF_VALUE_MAX) {
		p->pend_overflow = true;
		return;
	}
	p->pend_value[p->pend_len++] = ' ';
	memcpy(p->pend_value + p->pend_len, text, n + 1);
	p->pend_len += n;
}

/* Does the key line have the '=' or ':' inih splits it at (before any
 * inline comment)? */
static bool
has_separator(const char *s)
{
	bool was_space = false;
	for (; *s != '\0'; s++) {
		if (*s == '=' || *s == ':')
			return true;
		if (was_space && *s == ';')
			return false;
		was_space = *s == ' ' || *s == '\t';
	}
	return false;
}

static void
finish_account(struct parser *p)
{
	conf_finish_account(&p->cfg->accounts[p->acct], p->acct_seen, p->diags);
}

static void
open_account(struct parser *p, const char *name)
{
	struct fm_config *cfg = p->cfg;
	unsigned first = 0;
	for (size_t i = 0; i < cfg->n_accounts && first == 0; i++)
		if (strcmp(cfg->accounts[i].name, name) == 0)
			first = cfg->accounts[i].line;

	char *msg = NULL;
	if (first != 0)
		msg = xasprintf(_("account '%s' is already defined on line "
		                  "%u; account names must be unique"),
		                name, first);
	else if (strchr(name, '/') != NULL)
		msg = xasprintf(_("account name '%s' may not contain '/'; it "
		                  "becomes a folder name"),
		                name);
	else if (name[0] == '.')
		msg = xasprintf(_("account name '%s' may not start with '.'; "
		                  "it becomes a folder name"),
		                name);
	else
		for (const char *c = name; *c != '\0' && msg == NULL; c++)
			if ((unsigned char)*c < ' ' || *c == 0x7f)
				msg = xstrdup(_("the account name contains a "
				                "control character"));
	if (msg != NULL) {
		diag(p, FM_CONF_ERROR, p->line, "", msg);
		free(msg);
	}

	/* Even a bad account is parsed, so its keys are checked too: the
	 * load fails anyway, and the user sees every problem at once. */
	cfg->accounts = xreallocarray(cfg->accounts, cfg->n_accounts + 1,
	                              sizeof(*cfg->accounts));
	struct fm_account *a = &cfg->accounts[cfg->n_accounts];
	*a = (struct fm_account){
	    .name = xstrdup(name),
	    .line = p->line,
	    .key_lines = xcalloc(conf_n_keys, sizeof(unsigned)),
	};
	p->acct = cfg->n_accounts++;
	memset(p->acct_seen, 0, conf_n_keys * sizeof(unsigned));
	p->seen = p->acct_seen;
	p->sect = SS_ACCOUNT;
}

static void
unknown_section(struct parser *p, const char *word, const char *text)
{
	static const char *const known[] = {"general", "account", "keys",
	                                    "colors"};
	const char *best = NULL;
	unsigned best_d = 3;
	for (size_t i = 0; i < FM_ARRAY_LEN(known); i++) {
		unsigned d = fm_str_distance(word, known[i]);
		if (d < best_d) {
			best_d = d;
			best = known[i];
		}
	}
	char *msg;
	if (best != NULL && strcmp(best, "account") == 0)
		msg = xasprintf(_("unknown section [%s]; did you mean "
		                  "[account NAME]?"),
		                text);
	else if (best != NULL)
		msg = xasprintf(_("unknown section [%s]; did you mean [%s]?"),
		                text, best);
	else
		msg = xasprintf(_("unknown section [%s]; expected [general], "
		                  "[account NAME], [keys] or [colors]"),
		                text);
	diag(p, FM_CONF_ERROR, p->line, "", msg);
	free(msg);
}

/* A "[...]" line; t points at the '['. */
static void
section_header(struct parser *p, const char *t)
{
	if (p->sect == SS_ACCOUNT)
		finish_account(p);
	p->sect = SS_IGNORED;
	const char *close = strchr(t, ']');
	if (close == NULL) {
		diag(p, FM_CONF_ERROR, p->line, "",
		     _("the section header has no closing ']'"));
		return;
	}
	const char *after = close + 1;
	while (*after == ' ' || *after == '\t')
		after++;
	if (*after != '\0' && *after != ';' && *after != '#')
		diag(p, FM_CONF_ERROR, p->line, "",
		     _("unexpected text after ']'; put comments on their own "
		       "line"));

	char text[sizeof(p->raw)];
	fm_strlcpy(text, t + 1, (size_t)(close - t));
	char *s = fm_str_trim(text);
	size_t wlen = strcspn(s, " \t");
	char *rest = fm_str_trim(s + wlen);
	char word[sizeof(p->raw)];
	fm_strlcpy(word, s, wlen + 1);

	if (fm_str_ieq(word, "account")) {
		if (*rest == '\0')
			diag(p, FM_CONF_ERROR, p->line, "",
			     _("an account section needs a name: "
			       "[account NAME]"));
		else
			open_account(p, rest);
	} else if (fm_str_ieq(word, "general") && *rest == '\0') {
		p->sect = SS_GENERAL;
		p->seen = p->general_seen;
	} else if ((fm_str_ieq(word, "keys") || fm_str_ieq(word, "colors")) &&
	           *rest == '\0') {
		bool *warned = fm_str_ieq(word, "keys") ? &p->warned_keys
		                                        : &p->warned_colors;
		if (!*warned) {
			char *msg = xasprintf(_("[%s] is not supported by this "
			                        "version yet; ignored"),
			                      word);
			diag(p, FM_CONF_WARNING, p->line, "", msg);
			free(msg);
		}
		*warned = true;
	} else {
		unknown_section(p, word, s);
	}
}

/* The width of the leading white space in columns, tabs stopping every 8
 * columns as on a terminal, so tabs and spaces compare as they look. */
static size_t
indent_width(const char *s, size_t n)
{
	size_t col = 0;
	for (size_t i = 0; i < n; i++)
		col = s[i] == '\t' ? (col / 8 + 1) * 8 : col + 1;
	return col;
}

/* The inih reader: one physical line per call (see the top of the file).
 * Returns what inih should see of the line, or NULL at the end. */
static char *
read_line(char *str, int num, void *stream)
{
	struct parser *p = stream;
	size_t len = 0, total = 0;
	bool any = false, nul = false;
	int c, last = 0;
	while ((c = getc(p->fp)) != EOF) {
		any = true;
		if (c == '\n')
			break;
		nul |= c == '\0';
		if (len < sizeof(p->raw) - 1)
			p->raw[len++] = (char)c;
		total++;
		last = c;
	}
	if (!any) {
		commit_pending(p);
		return NULL;
	}
	p->line++;
	if (last == '\r') {
		if (len == total)
			len--;
		total--;
	}
	p->raw[len] = '\0';
	char *s = p->raw;
	if (p->line == 1 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
		s += 3;
		total -= 3;
	}
	str[0] = '\0';

	size_t ws = strspn(s, " \t");
	size_t indent = indent_width(s, ws);
	char *t = s + ws;
	bool text = *t != '\0' && *t != ';' && *t != '#';
	bool cont = indent > 0 && text &&
	            (p->prev_kind == LK_BAD ||
	             ((p->prev_kind == LK_KEY || p->prev_kind == LK_CONT) &&
	              indent > p->key_indent));

	if (total > CONF_LINE_MAX || nul) {
		if (cont)
			p->pend_key = -1; /* its value is lost: skip it */
		else
			commit_pending(p);
		if (!cont && *t == '[')
			p->sect = SS_IGNORED;
		diag(p, FM_CONF_ERROR, p->line, "",
		     nul ? _("the line contains a NUL byte; is this a text "
		             "file?")
		         : _("line is longer than 199 bytes; wrap a long value "
		             "onto indented continuation lines"));
		p->prev_kind = LK_BAD;
		return str;
	}
	if (cont) {
		if (p->prev_kind != LK_BAD) {
			append_continuation(p, t);
			p->prev_kind = LK_CONT;
		}
		return str;
	}
	commit_pending(p);
	if (!text) {
		p->prev_kind = *t == '\0' ? LK_BLANK : LK_COMMENT;
		return str;
	}
	if (*t == '[') {
		section_header(p, t);
		p->prev_kind = LK_SECTION;
	} else {
		p->prev_kind = LK_KEY;
		p->key_indent = indent;
		if (!has_separator(t))
			diag(p, FM_CONF_ERROR, p->line, "",
			     _("expected key = value, a [section] header or a "
			       "comment; to continue a value, indent the line "
			       "and put it right below"));
	}
	fm_strlcpy(str, t, (size_t)num);
	return str;
}

static void
unknown_key(struct parser *p, enum conf_sect sect, const char *name)
{
	char lower[sizeof(p->raw)];
	size_t i;
	for (i = 0; name[i] != '\0' && i < sizeof(lower) - 1; i++)
		lower[i] = name[i] >= 'A' && name[i] <= 'Z'
		               ? (char)(name[i] - 'A' + 'a')
		               : name[i];
	lower[i] = '\0';
	const char *best = NULL;
	unsigned best_d = 3;
	for (size_t k = 0; k < conf_n_keys; k++) {
		if (conf_keys[k].sect != sect)
			continue;
		unsigned d = fm_str_distance(lower, conf_keys[k].name);
		if (d < best_d) {
			best_d = d;
			best = conf_keys[k].name;
		}
	}
	enum conf_sect other =
	    sect == CONF_SECT_GENERAL ? CONF_SECT_ACCOUNT : CONF_SECT_GENERAL;
	char *msg;
	if (best != NULL)
		msg = xasprintf(_("unknown key; did you mean '%s'?"), best);
	else if (conf_key_find(other, name) >= 0)
		msg = xstrdup(sect == CONF_SECT_ACCOUNT
		                  ? _("this key belongs in [general], not "
		                      "in an account")
		                  : _("this key belongs in an [account "
		                      "NAME] section, not in [general]"));
	else
		msg = xstrdup(_("unknown key; fulmar.conf(5) lists the keys"));
	diag(p, FM_CONF_ERROR, p->line, name, msg);
	free(msg);
}

/* The inih handler: a "key = value" line (continuations never get here). */
static int
on_value(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	p->pending = true;
	p->pend_key = -1;
	p->pend_line = p->line;
	p->pend_overflow = false;
	p->pend_len = 0;
	if (p->sect == SS_IGNORED)
		return 1;
	if (p->sect == SS_NONE) {
		diag(p, FM_CONF_ERROR, p->line, name,
		     _("this key is outside any section; put it below "
		       "[general] or an [account NAME] header"));
		return 1;
	}
	if (*name == '\0') {
		diag(p, FM_CONF_ERROR, p->line, "",
		     _("missing key name before '='"));
		return 1;
	}
	enum conf_sect sect =
	    p->sect == SS_GENERAL ? CONF_SECT_GENERAL : CONF_SECT_ACCOUNT;
	int id = conf_key_find(sect, name);
	if (id < 0) {
		unknown_key(p, sect, name);
		return 1;
	}
	if (p->seen[id] != 0) {
		char *msg = xasprintf(_("already set on line %u; keep one of "
		                        "them"),
		                      p->seen[id]);
		diag(p, FM_CONF_ERROR, p->line, conf_keys[id].name, msg);
		free(msg);
		return 1;
	}
	p->seen[id] = p->line;
	p->pend_key = id;
	p->pend_len = fm_strlcpy(p->pend_value, value, sizeof(p->pend_value));
	if (p->pend_len >= sizeof(p->pend_value))
		p->pend_overflow = true;
	return 1;
}

/* ------------------------------------------------------------------------
 * Public functions.
 */

static struct fm_config *
config_new(const char *path)
{
	struct fm_config *cfg = xcalloc(1, sizeof(*cfg));
	cfg->path = xstrdup(path);
	cfg->general.key_lines = xcalloc(conf_n_keys, sizeof(unsigned));
	return cfg;
}

static int
load_failed(const char *path, struct fm_conf_diags *diags, struct fm_error *err,
            const char *what)
{
	conf_diag_add(diags, FM_CONF_ERROR, 0, "", "%s", what);
	return fm_error_set(err, FM_ERR_CONFIG, "%s: %s", path, what);
}

static void
parse_file(struct parser *p)
{
	int rc = ini_parse_stream(read_line, p, on_value, p);
	commit_pending(p);
	if (ferror(p->fp)) {
		char *msg = xasprintf(_("read error: %s"), strerror(errno));
		diag(p, FM_CONF_ERROR, p->line, "", msg);
		free(msg);
	}
	if (p->sect == SS_ACCOUNT)
		finish_account(p);
	conf_apply_defaults(CONF_SECT_GENERAL, &p->cfg->general,
	                    p->cfg->general.key_lines);
	conf_check_accounts(p->cfg, p->diags);
	/* inih reports the first line it could not parse; read_line() has
	 * normally said more about it already. */
	if (rc != 0) {
		bool known = false;
		for (size_t i = 0; i < p->diags->n; i++)
			known |= p->diags->items[i].line == (unsigned)rc &&
			         p->diags->items[i].severity == FM_CONF_ERROR;
		if (!known)
			diag(p, FM_CONF_ERROR, rc > 0 ? (unsigned)rc : 0, "",
			     _("syntax error"));
	}
}

int
fm_config_load(const char *path, struct fm_config **cfg_r,
               struct fm_conf_diags *diags_r, struct fm_error *err)
{
	*cfg_r = NULL;
	*diags_r = (struct fm_conf_diags){0};
	fm_error_clear(err);

	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		char *what =
		    e == ENOENT
		        ? xstrdup(_("no such file; create it (see "
		                    "fulmar.conf(5))"))
		        : xasprintf(_("cannot read the file: %s"), strerror(e));
		load_failed(path, diags_r, err, what);
		free(what);
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return load_failed(path, diags_r, err, _("not a regular file"));
	}
	FILE *fp = fdopen(fd, "r");
	if (fp == NULL) {
		close(fd);
		return load_failed(path, diags_r, err, strerror(errno));
	}
	/* The file may hold a password: keep stdio's copy in a buffer that
	 * is wiped afterwards. */
	char iobuf[4096];
	setvbuf(fp, iobuf, _IOFBF, sizeof(iobuf));

	struct parser *p = xcalloc(1, sizeof(*p));
	p->path = path;
	p->fp = fp;
	p->readable_by_others = (st.st_mode & (S_IRGRP | S_IROTH)) != 0;
	p->cfg = config_new(path);
	p->diags = diags_r;
	p->general_seen = xcalloc(conf_n_keys, sizeof(unsigned));
	p->acct_seen = xcalloc(conf_n_keys, sizeof(unsigned));
	p->sect = SS_NONE;
	parse_file(p);

	fclose(fp);
	fm_wipe(iobuf, sizeof(iobuf));
	struct fm_config *cfg = p->cfg;
	free(p->general_seen);
	free(p->acct_seen);
	fm_wipe(p, sizeof(*p));
	free(p);

	if (diags_r->n_errors > 0) {
		fm_config_free(&cfg);
		return fm_error_set(err, FM_ERR_CONFIG,
		                    ngettext("%s has %zu error",
		                             "%s has %zu errors",
		                             diags_r->n_errors),
		                    path, diags_r->n_errors);
	}
	*cfg_r = cfg;
	return 0;
}

void
fm_config_free(struct fm_config **cfgp)
{
	struct fm_config *cfg = *cfgp;
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->n_accounts; i++) {
		struct fm_account *a = &cfg->accounts[i];
		for (size_t k = 0; k < conf_n_keys; k++)
			if (conf_keys[k].sect == CONF_SECT_ACCOUNT)
				conf_key_free(&conf_keys[k], a);
		free(a->name);
		free(a->key_lines);
	}
	for (size_t k = 0; k < conf_n_keys; k++)
		if (conf_keys[k].sect == CONF_SECT_GENERAL)
			conf_key_free(&conf_keys[k], &cfg->general);
	free(cfg->general.key_lines);
	free(cfg->accounts);
	free(cfg->path);
	free(cfg);
	*cfgp = NULL;
}

char *
fm_config_default_path(void)
{
	char *dir = fm_path_config_dir();
	char *path = fm_path_join(dir, "config");
	free(dir);
	return path;
}

const struct fm_account *
fm_config_find_account(const struct fm_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_accounts; i++)
		if (strcmp(cfg->accounts[i].name, name) == 0)
			return &cfg->accounts[i];
	return NULL;
}

const struct fm_account *
fm_config_default_account(const struct fm_config *cfg)
{
	for (size_t i = 0; i < cfg->n_accounts; i++)
		if (cfg->accounts[i].is_default)
			return &cfg->accounts[i];
	return cfg->n_accounts > 0 ? &cfg->accounts[0] : NULL;
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The key table and the value parsers. Every key of every section is one
 * line of conf_keys[]; its type says how a value is parsed and printed, and
 * its default is written as the text a user would write, parsed by the same
 * code. Rules that tie keys together (defaults that follow other keys,
 * contradictions) live in rules.c, which runs after a section is read.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "conf/conf-int.h"
#include "conf/conf.h"

/* Enums are stored through an unsigned pointer: GCC and Clang give enums
 * without negative constants the type unsigned int. */
_Static_assert(sizeof(enum fm_tls_mode) == sizeof(unsigned),
               "enums must be unsigned-sized");

static const char *const protocol_names[] = {"imap", "pop3", NULL};
static const char *const tls_names[] = {"implicit", "starttls", "none", NULL};
static const char *const auth_names[] = {"auto",    "plain",       "login",
                                         "xoauth2", "oauthbearer", NULL};
static const char *const pop3_no_uidl_names[] = {"error", "message-id", NULL};
static const char *const save_sent_names[] = {"server", "local", "no", NULL};

static int check_email(const char *value, const struct conf_report *r);
static int check_host(const char *value, const struct conf_report *r);
static int check_readable_file(const char *value, const struct conf_report *r);
static conf_parse_fn parse_fingerprint, parse_folders, parse_schedule,
    parse_download;
static conf_format_fn format_fingerprint, format_folders, format_schedule,
    format_download;
static void release_folders(void *obj);

#define GEN(field)                                                             \
	.sect = CONF_SECT_GENERAL, .offset = offsetof(struct fm_general, field)
#define ACC(field)                                                             \
	.sect = CONF_SECT_ACCOUNT, .offset = offsetof(struct fm_account, field)
#define CUSTOM(fn) .parse = parse_##fn, .format = format_##fn

/* Table order is the order `fulmar config` prints keys in. Keys whose
 * default depends on other keys have def = NULL; rules.c fills them in. */
const struct conf_key conf_keys[] = {
    {"log_protocol", GEN(log_protocol), .type = CONF_T_PATH},
    {"notify_cmd", GEN(notify_cmd), .type = CONF_T_STRING,
     .flags = CONF_KF_EMPTY_OK},
    {"bell", GEN(bell), .type = CONF_T_BOOL, .def = "no"},
    {"title", GEN(title), .type = CONF_T_BOOL, .def = "no"},
    {"connect_timeout", GEN(connect_timeout), .type = CONF_T_UINT, .min = 1,
     .max = 600, .def = "30", .what = N_("a number of seconds")},
    {"timeout", GEN(timeout), .type = CONF_T_UINT, .min = 1, .max = 3600,
     .def = "60", .what = N_("a number of seconds")},
    {"max_line_kib", GEN(max_line_kib), .type = CONF_T_UINT, .min = 64,
     .max = 1048576, .def = "4096", .what = N_("a size in KiB")},
    {"max_literal_mib", GEN(max_literal_mib), .type = CONF_T_UINT, .min = 1,
     .max = 4095, .def = "512", .what = N_("a size in MiB")},

    {"email", ACC(email), .type = CONF_T_STRING, .flags = CONF_KF_REQUIRED,
     .check = check_email},
    {"name", ACC(real_name), .type = CONF_T_STRING},
    {"protocol", ACC(protocol), .type = CONF_T_ENUM, .names = protocol_names,
     .def = "imap"},
    {"host", ACC(host), .type = CONF_T_STRING, .flags = CONF_KF_REQUIRED,
     .check = check_host},
    {"port", ACC(port), .type = CONF_T_UINT, .min = 1, .max = 65535,
     .what = N_("a port number")},
    {"tls", ACC(tls), .type = CONF_T_ENUM, .names = tls_names},
    {"tls_ca_file", ACC(tls_ca_file), .type = CONF_T_PATH,
     .check = check_readable_file},
    {"tls_fingerprint", ACC(tls_fingerprint), .type = CONF_T_CUSTOM,
     CUSTOM(fingerprint)},
    {"allow_plaintext_login", ACC(allow_plaintext_login), .type = CONF_T_BOOL,
     .def = "no"},
    {"user", ACC(user), .type = CONF_T_STRING},
    {"password", ACC(password), .type = CONF_T_STRING, .flags = CONF_KF_SECRET},
    {"password_cmd", ACC(password_cmd), .type = CONF_T_STRING},
    {"auth", ACC(auth), .type = CONF_T_ENUM, .names = auth_names,
     .def = "auto"},
    {"oauth_token_cmd", ACC(oauth_token_cmd), .type = CONF_T_STRING},
    {"folders", ACC(folders), .type = CONF_T_CUSTOM, .def = "subscribed",
     CUSTOM(folders), .release = release_folders},
    {"schedule", ACC(schedule), .type = CONF_T_CUSTOM,
     .def = "startup, every 10m", CUSTOM(schedule)},
    {"idle", ACC(idle), .type = CONF_T_BOOL, .flags = CONF_KF_IMAP,
     .def = "yes"},
    {"imap_notify", ACC(imap_notify), .type = CONF_T_BOOL,
     .flags = CONF_KF_IMAP, .def = "yes"},
    {"max_connections", ACC(max_connections), .type = CONF_T_UINT,
     .flags = CONF_KF_IMAP, .min = 1, .max = 20, .def = "5",
     .what = N_("a number of connections")},
    {"download", ACC(download), .type = CONF_T_CUSTOM, .def = "full",
     CUSTOM(download)},
    {"keep_on_server", ACC(keep_on_server), .type = CONF_T_BOOL,
     .flags = CONF_KF_POP3, .def = "yes"},
    {"delete_after_days", ACC(delete_after_days), .type = CONF_T_UINT,
     .flags = CONF_KF_POP3, .def = "0", .min = 0, .max = 36500,
     .what = N_("a number of days")},
    {"delete_when_deleted_locally", ACC(delete_when_deleted_locally),
     .type = CONF_T_BOOL, .flags = CONF_KF_POP3, .def = "no"},
    {"pop3_no_uidl", ACC(pop3_no_uidl), .type = CONF_T_ENUM,
     .names = pop3_no_uidl_names, .flags = CONF_KF_POP3, .def = "error"},
    {"smtp_host", ACC(smtp_host), .type = CONF_T_STRING, .check = check_host},
    {"smtp_port", ACC(smtp_port), .type = CONF_T_UINT, .flags = CONF_KF_SMTP,
     .min = 1, .max = 65535, .what = N_("a port number")},
    {"smtp_tls", ACC(smtp_tls), .type = CONF_T_ENUM, .names = tls_names,
     .flags = CONF_KF_SMTP},
    {"smtp_user", ACC(smtp_user), .type = CONF_T_STRING, .flags = CONF_KF_SMTP},
    {"save_sent", ACC(save_sent), .type = CONF_T_ENUM,
     .names = save_sent_names},
    {"notify_cmd", ACC(notify_cmd), .type = CONF_T_STRING,
     .flags = CONF_KF_EMPTY_OK},
    {"default", ACC(is_default), .type = CONF_T_BOOL, .def = "no"},
};
const size_t conf_n_keys = FM_ARRAY_LEN(conf_keys);

int
conf_key_find(enum conf_sect sect, const char *name)
{
	for (size_t i = 0; i < conf_n_keys; i++)
		if (conf_keys[i].sect == sect &&
		    fm_str_ieq(conf_keys[i].name, name))
			return (int)i;
	return -1;
}

size_t
conf_key_id(enum conf_sect sect, const char *name)
{
	int id = conf_key_find(sect, name);
	if (id < 0)
		abort(); /* a key the code names is missing from the table */
	return (size_t)id;
}

/* The field of key in obj. */
static void *
field(const struct conf_key *key, void *obj)
{
	return (char *)obj + key->offset;
}

static const void *
cfield(const struct conf_key *key, const void *obj)
{
	return (const char *)obj + key->offset;
}

/* ------------------------------------------------------------------------
 * Checks for string values.
 */

static bool
has_space_or_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return true;
	return false;
}

static int
check_email(const char *value, const struct conf_report *r)
{
	const char *at = strchr(value, '@');
	if (at == NULL || at == value || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL || has_space_or_ctl(value) ||
	    strpbrk(value, "<>") != NULL)
		return conf_report_error(
		    r,
		    _("'%s' is not an email address; write it as "
		      "you@example.com, without spaces, <> or a name"),
		    value);
	return 0;
}

static int
check_host(const char *value, const struct conf_report *r)
{
	if (strstr(value, "://") != NULL)
		return conf_report_error(
		    r,
		    _("'%s' is a URL; give only the host name, like "
		      "imap.example.com, and set the port and tls keys"),
		    value);
	if (has_space_or_ctl(value))
		return conf_report_error(
		    r, _("'%s' contains a space; give one host name"), value);
	if (strpbrk(value, "/@") != NULL)
		return conf_report_error(
		    r,
		    _("'%s' is not a host name; give one like "
		      "imap.example.com"),
		    value);
	/* One colon followed by digits is "host:port"; IPv6 addresses have
	 * several colons. */
	const char *colon = strchr(value, ':');
	if (colon != NULL && strchr(colon + 1, ':') == NULL) {
		long port;
		if (fm_parse_long(colon + 1, 0, 65535, &port) == 0)
			return conf_report_error(
			    r,
			    _("put the port into its own key (port or "
			      "smtp_port = %ld), not into the host name"),
			    port);
	}
	return 0;
}

static int
check_readable_file(const char *value, const struct conf_report *r)
{
	int fd = open(value, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return conf_report_error(r, _("cannot read %s: %s"), value,
		                         strerror(errno));
	struct stat st;
	int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	close(fd);
	if (!ok)
		return conf_report_error(r, _("%s is not a regular file"),
		                         value);
	return 0;
}

/* ------------------------------------------------------------------------
 * Generic types.
 */

static int
parse_bool(const char *value, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	for (size_t i = 0; i < FM_ARRAY_LEN(yes); i++) {
		if (fm_str_ieq(value, yes[i])) {
			*out = true;
			return 0;
		}
		if (fm_str_ieq(value, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* "a, b or c" from a NULL-terminated list. */
static char *
join_names(const char *const *names)
{
	struct fm_buf b;
	fm_buf_init(&b, 1024);
	for (size_t i = 0; names[i] != NULL; i++) {
		if (i > 0)
			fm_buf_append_str(&b, names[i + 1] == NULL ? _(" or ")
			                                           : ", ");
		fm_buf_append_str(&b, names[i]);
	}
	return fm_buf_steal(&b);
}

/* "~" and "~/x" become $HOME and $HOME/x; other paths are kept. NULL when
 * the path needs a home directory that is not known. */
static char *
expand_home(const char *value)
{
	if (value[0] != '~' || (value[1] != '\0' && value[1] != '/'))
		return xstrdup(value);
	const char *home = getenv("HOME");
	if (home == NULL || home[0] != '/')
		return NULL;
	return value[1] == '\0' ? xstrdup(home) : fm_path_join(home, value + 2);
}

static void
set_string(const struct conf_key *key, void *obj, char *value)
{
	char **slot = field(key, obj);
	if (key->flags & CONF_KF_SECRET)
		fm_free_secret(slot);
	else
		free(*slot);
	*slot = value;
}

int
conf_key_set(const struct conf_key *key, void *obj, const char *value,
             const struct conf_report *r)
{
	switch (key->type) {
	case CONF_T_STRING:
		if (key->check != NULL && key->check(value, r) < 0)
			return -1;
		set_string(key, obj, xstrdup(value));
		return 0;
	case CONF_T_PATH: {
		char *path = expand_home(value);
		if (path == NULL)
			return conf_report_error(
			    r, _("cannot expand '~': HOME is not set"));
		if (path[0] != '/') {
			free(path);
			return conf_report_error(
			    r,
			    _("'%s' is a relative path; use an absolute "
			      "one, or one starting with ~/"),
			    value);
		}
		if (key->check != NULL && key->check(path, r) < 0) {
			free(path);
			return -1;
		}
		set_string(key, obj, path);
		return 0;
	}
	case CONF_T_BOOL:
		if (parse_bool(value, field(key, obj)) < 0)
			return conf_report_error(
			    r, _("expected yes or no, got '%s'"), value);
		return 0;
	case CONF_T_ENUM:
		for (unsigned i = 0; key->names[i] != NULL; i++) {
			if (fm_str_ieq(value, key->names[i])) {
				*(unsigned *)field(key, obj) = i;
				return 0;
			}
		}
		char *list = join_names(key->names);
		conf_report_error(r, _("expected %s, got '%s'"), list, value);
		free(list);
		return -1;
	case CONF_T_UINT: {
		long v;
		if (fm_parse_long(value, key->min, key->max, &v) < 0)
			return conf_report_error(
			    r, _("expected %s from %u to %u, got '%s'"),
			    _(key->what), key->min, key->max, value);
		*(unsigned *)field(key, obj) = (unsigned)v;
		return 0;
	}
	case CONF_T_CUSTOM:
		return key->parse(key, obj, value, r);
	}
	abort();
}

bool
conf_key_format(const struct conf_key *key, const void *obj, struct fm_buf *out)
{
	switch (key->type) {
	case CONF_T_STRING:
	case CONF_T_PATH: {
		const char *s = *(char *const *)cfield(key, obj);
		if (s == NULL)
			return false;
		fm_buf_append_str(out, s);
		return true;
	}
	case CONF_T_BOOL:
		fm_buf_append_str(out, *(const bool *)cfield(key, obj) ? "yes"
		                                                       : "no");
		return true;
	case CONF_T_ENUM:
		fm_buf_append_str(
		    out, key->names[*(const unsigned *)cfield(key, obj)]);
		return true;
	case CONF_T_UINT:
		fm_buf_printf(out, "%u", *(const unsigned *)cfield(key, obj));
		return true;
	case CONF_T_CUSTOM:
		key->format(key, obj, out);
		return true;
	}
	abort();
}

void
conf_key_free(const struct conf_key *key, void *obj)
{
	if (key->type == CONF_T_STRING || key->type == CONF_T_PATH)
		set_string(key, obj, NULL);
	else if (key->release != NULL)
		key->release(obj);
}

/* ------------------------------------------------------------------------
 * tls_fingerprint = sha256:HEX
 */

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 32 bytes of hex, each pair optionally separated from the next by ':'. */
static int
parse_hex32(const char *s, uint8_t out[32])
{
	for (size_t i = 0; i < 32; i++) {
		if (i > 0 && *s == ':')
			s++;
		int hi = hex_digit(s[0]);
		int lo = hi < 0 ? -1 : hex_digit(s[1]);
		if (lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
		s += 2;
	}
	return *s == '\0' ? 0 : -1;
}

static int
parse_fingerprint(const struct conf_key *key, void *obj, const char *value,
                  const struct conf_report *r)
{
	struct fm_account *a = obj;
	uint8_t fp[32];
	if (strncasecmp(value, "sha256:", 7) == 0) {
		if (parse_hex32(value + 7, fp) == 0) {
			memcpy(a->tls_fingerprint, fp, sizeof(fp));
			a->has_fingerprint = true;
			return 0;
		}
	} else if (parse_hex32(value, fp) == 0) {
		return conf_report_error(
		    r, _("write the fingerprint as sha256:%s"), value);
	}
	return conf_report_error(
	    r,
	    _("expected sha256: and 64 hex digits (colons between pairs "
	      "are allowed), like sha256:3a:f1:…, got '%s'"),
	    value);
}

static void
format_fingerprint(const struct conf_key *key, const void *obj,
                   struct fm_buf *out)
{
	const struct fm_account *a = obj;
	if (!a->has_fingerprint)
		return;
	fm_buf_append_str(out, "sha256:");
	for (size_t i = 0; i < 32; i++)
		fm_buf_printf(out, i > 0 ? ":%02x" : "%02x",
		              a->tls_fingerprint[i]);
}

/* ------------------------------------------------------------------------
 * folders = subscribed, Lists/%, !Spam, "Sent Items"
 *
 * The bare word `subscribed` stands for what the server lists as
 * subscribed (plus INBOX and the special-use folders, see the IMAP
 * engine); a folder of that name is written quoted. Exclusions alone
 * are taken from the default, `subscribed`.
 */

#define FOLDERS_SUBSCRIBED "subscribed"

static bool
is_list_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t';
}

static void
release_folders(void *obj)
{
	struct fm_account *a = obj;
	a->folders_subscribed = false;
	if (a->folders == NULL)
		return;
	for (size_t i = 0; i < a->n_folders; i++)
		free(a->folders[i]);
	free(a->folders);
	a->folders = NULL;
	a->n_folders = 0;
}

static void
free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static int
parse_folders(const struct conf_key *key, void *obj, const char *value,
              const struct conf_report *r)
{
	char **list = xcalloc(1, sizeof(*list));
	size_t n = 0;
	bool any_include = false, subscribed = false;
	const char *s = value;
	for (;;) {
		while (is_list_sep(*s))
			s++;
		if (*s == '\0')
			break;
		bool exclude = *s == '!';
		if (exclude)
			s++;
		bool quoted = *s == '"';
		const char *start = s, *end;
		if (quoted) {
			start = ++s;
			end = strchr(s, '"');
			if (end == NULL) {
				free_list(list, n);
				return conf_report_error(
				    r, _("a quoted folder name has no "
				         "closing '\"'"));
			}
			s = end + 1;
			if (*s != '\0' && !is_list_sep(*s)) {
				free_list(list, n);
				return conf_report_error(
				    r, _("put a comma after the closing "
				         "'\"' of a folder name"));
			}
		} else {
			while (*s != '\0' && !is_list_sep(*s) && *s != '"')
				s++;
			end = s;
			if (*s == '"') {
				free_list(list, n);
				return conf_report_error(
				    r, _("quote a whole folder name, like "
				         "\"Sent Items\""));
			}
		}
		if (end == start) {
			free_list(list, n);
			return conf_report_error(
			    r, exclude ? _("'!' needs a folder pattern "
			                   "after it, like !Spam")
			               : _("empty folder name"));
		}
		bool word =
		    !quoted &&
		    (size_t)(end - start) == strlen(FOLDERS_SUBSCRIBED) &&
		    memcmp(start, FOLDERS_SUBSCRIBED, (size_t)(end - start)) ==
		        0;
		if (word && exclude) {
			free_list(list, n);
			return conf_report_error(
			    r, _("!subscribed excludes nothing: leave "
			         "subscribed out, or write !\"subscribed\" "
			         "for a folder of that name"));
		}
		if (word) {
			subscribed = true;
			continue;
		}
		any_include |= !exclude;
		list = xreallocarray(list, n + 2, sizeof(*list));
		list[n++] = xasprintf("%s%.*s", exclude ? "!" : "",
		                      (int)(end - start), start);
		list[n] = NULL;
	}
	if (n == 0 && !subscribed) {
		free_list(list, n);
		return conf_report_error(
		    r, _("no folder patterns; use subscribed for the "
		         "subscribed folders or * for all folders"));
	}
	struct fm_account *a = obj;
	release_folders(a);
	/* Only exclusions: they are taken from the default. */
	a->folders_subscribed = subscribed || !any_include;
	a->folders = list;
	a->n_folders = n;
	return 0;
}

static void
format_folders(const struct conf_key *key, const void *obj, struct fm_buf *out)
{
	const struct fm_account *a = obj;
	if (a->folders_subscribed)
		fm_buf_append_str(out, FOLDERS_SUBSCRIBED);
	for (size_t i = 0; i < a->n_folders; i++) {
		const char *p = a->folders[i];
		if (i > 0 || a->folders_subscribed)
			fm_buf_append_str(out, ", ");
		if (*p == '!')
			fm_buf_append_char(out, *p++);
		if (strpbrk(p, " \t,") != NULL ||
		    strcmp(p, FOLDERS_SUBSCRIBED) == 0)
			fm_buf_printf(out, "\"%s\"", p);
		else
			fm_buf_append_str(out, p);
	}
}

/* ------------------------------------------------------------------------
 * schedule = manual | startup, every 10m
 */

/* Parses "every N<unit>"'s "N<unit>" (spaces allowed between). */
static int
parse_interval(char *text, unsigned *seconds_r, const struct conf_report *r)
{
	size_t ndigits = strspn(text, "0123456789");
	char *unit = fm_str_trim(text + ndigits);
	char digits[16];
	if (ndigits == 0 || ndigits >= sizeof(digits))
		return conf_report_error(
		    r,
		    _("expected every N followed by s, m or h, like every "
		      "10m, got 'every %s'"),
		    text);
	memcpy(digits, text, ndigits);
	digits[ndigits] = '\0';
	long n;
	if (fm_parse_long(digits, 1, 999999, &n) < 0)
		return conf_report_error(
		    r,
		    _("the interval must be a whole number from 1 to "
		      "999999, got '%s'"),
		    digits);
	unsigned mult;
	if (*unit == '\0')
		return conf_report_error(
		    r, _("add a unit: s, m or h (like every %sm)"), digits);
	if (fm_str_ieq(unit, "s"))
		mult = 1;
	else if (fm_str_ieq(unit, "m"))
		mult = 60;
	else if (fm_str_ieq(unit, "h"))
		mult = 3600;
	else
		return conf_report_error(
		    r, _("unknown unit '%s'; use s, m or h"), unit);
	*seconds_r = (unsigned)n * mult;
	return 0;
}

static int
parse_schedule(const struct conf_key *key, void *obj, const char *value,
               const struct conf_report *r)
{
	struct fm_schedule sch = {0};
	bool manual = false, have_every = false;
	char *copy = xstrdup(value);
	int ret = 0;
	char *rest = copy;
	while (ret == 0 && rest != NULL) {
		char *comma = strchr(rest, ',');
		if (comma != NULL)
			*comma = '\0';
		char *item = fm_str_trim(rest);
		rest = comma != NULL ? comma + 1 : NULL;
		if (*item == '\0') {
			ret = conf_report_error(r, _("empty schedule entry "
			                             "between commas"));
		} else if (fm_str_ieq(item, "manual")) {
			manual = true;
		} else if (fm_str_ieq(item, "startup")) {
			sch.startup = true;
		} else if ((item[5] == ' ' || item[5] == '\t' ||
		            item[5] == '\0') &&
		           strncasecmp(item, "every", 5) == 0) {
			if (have_every)
				ret = conf_report_error(
				    r, _("more than one 'every' interval; "
				         "keep one"));
			else
				ret = parse_interval(fm_str_trim(item + 5),
				                     &sch.every_seconds, r);
			have_every = true;
		} else {
			ret = conf_report_error(
			    r,
			    _("expected manual, startup or every N "
			      "followed by s, m or h, got '%s'"),
			    item);
		}
	}
	free(copy);
	if (ret < 0)
		return -1;
	if (manual && (sch.startup || have_every))
		return conf_report_error(
		    r, _("manual cannot be combined with other entries; "
		         "use manual alone or remove it"));
	if (have_every && sch.every_seconds < 30)
		conf_report_warning(
		    r, _("an interval under 30 s is very short; servers may "
		         "throttle or block accounts that check this often"));
	struct fm_account *a = obj;
	a->schedule = sch;
	return 0;
}

void
conf_format_interval(unsigned seconds, struct fm_buf *out)
{
	if (seconds % 3600 == 0)
		fm_buf_printf(out, "%uh", seconds / 3600);
	else if (seconds % 60 == 0)
		fm_buf_printf(out, "%um", seconds / 60);
	else
		fm_buf_printf(out, "%us", seconds);
}

static void
format_schedule(const struct conf_key *key, const void *obj, struct fm_buf *out)
{
	const struct fm_account *a = obj;
	if (a->schedule.startup)
		fm_buf_append_str(out, "startup");
	if (a->schedule.every_seconds > 0) {
		fm_buf_append_str(out,
		                  a->schedule.startup ? ", every " : "every ");
		conf_format_interval(a->schedule.every_seconds, out);
	}
	if (!a->schedule.startup && a->schedule.every_seconds == 0)
		fm_buf_append_str(out, "manual");
}

/* ------------------------------------------------------------------------
 * download = full | headers | max SIZE
 */

static int
parse_size(const char *text, uint64_t *size_r)
{
	size_t ndigits = strspn(text, "0123456789");
	char digits[24];
	long n;
	if (ndigits == 0 || ndigits >= sizeof(digits))
		return -1;
	memcpy(digits, text, ndigits);
	digits[ndigits] = '\0';
	if (fm_parse_long(digits, 1, LONG_MAX, &n) < 0)
		return -1;
	const char *unit = text + ndigits;
	while (*unit == ' ' || *unit == '\t')
		unit++;
	uint64_t mult = 1;
	if (*unit != '\0') {
		const char *units = "KMG";
		const char *u = strchr(units, *unit & ~0x20);
		if (u == NULL || unit[1] != '\0')
			return -1;
		for (const char *p = units; p <= u; p++)
			mult *= 1024;
	}
	if ((uint64_t)n > UINT64_MAX / mult)
		return -1;
	*size_r = (uint64_t)n * mult;
	return 0;
}

static int
parse_download(const struct conf_key *key, void *obj, const char *value,
               const struct conf_report *r)
{
	struct fm_account *a = obj;
	if (fm_str_ieq(value, "full")) {
		a->download = FM_DOWNLOAD_FULL;
		a->download_max = 0;
		return 0;
	}
	if (fm_str_ieq(value, "headers")) {
		a->download = FM_DOWNLOAD_HEADERS;
		a->download_max = 0;
		return 0;
	}
	uint64_t size;
	if (strncasecmp(value, "max", 3) == 0 &&
	    (value[3] == ' ' || value[3] == '\t')) {
		const char *s = value + 3;
		while (*s == ' ' || *s == '\t')
			s++;
		if (parse_size(s, &size) == 0) {
			a->download = FM_DOWNLOAD_MAX;
			a->download_max = size;
			return 0;
		}
		return conf_report_error(
		    r,
		    _("expected a size above 0 after max, with an "
		      "optional K, M or G, like max 10M, got '%s'"),
		    s);
	}
	return conf_report_error(
	    r,
	    _("expected full, headers or max SIZE (like max 10M), got "
	      "'%s'"),
	    value);
}

static void
format_download(const struct conf_key *key, const void *obj, struct fm_buf *out)
{
	const struct fm_account *a = obj;
	switch (a->download) {
	case FM_DOWNLOAD_FULL:
		fm_buf_append_str(out, "full");
		return;
	case FM_DOWNLOAD_HEADERS:
		fm_buf_append_str(out, "headers");
		return;
	case FM_DOWNLOAD_MAX:
		break;
	}
	static const char units[] = "GMK";
	uint64_t v = a->download_max;
	for (size_t i = 0; i < 3; i++) {
		uint64_t m = (uint64_t)1 << (10 * (3 - i));
		if (v >= m && v % m == 0) {
			fm_buf_printf(out, "max %llu%c",
			              (unsigned long long)(v / m), units[i]);
			return;
		}
	}
	fm_buf_printf(out, "max %llu", (unsigned long long)v);
}

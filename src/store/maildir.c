/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/base.h"
#include "store/maildir.h"

/* The per-process delivery counter of the unique name. Atomic so that a
 * worker and the store can both deliver; it carries no other state. */
static atomic_ulong delivery_counter;

static const char flag_letters[] = "DFPRST";

/* ------------------------------------------------------------------------
 * Small file helpers.
 */

/* rename() that refuses to replace an existing file where the file system
 * can say so; a unique name must never clobber a message. */
static int
rename_noreplace(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	return rename(from, to);
}

/* "cur/BASE:2,S" -> folder + "/cur" */
static char *
subdir_of(const char *folder, const char *relpath)
{
	const char *slash = strrchr(relpath, '/');
	if (slash == NULL)
		return xstrdup(folder);
	char *sub = xstrndup(relpath, (size_t)(slash - relpath));
	char *dir = fm_path_join(folder, sub);
	free(sub);
	return dir;
}

/* ------------------------------------------------------------------------
 * Folders and delivery.
 */

int
fm_maildir_create(const char *folder, struct fm_error *err)
{
	static const char *const subs[] = {"tmp", "new", "cur"};
	if (fm_path_mkdirs(folder, 0700, err) < 0)
		return -1;
	for (size_t i = 0; i < FM_ARRAY_LEN(subs); i++) {
		char *dir = fm_path_join(folder, subs[i]);
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			fm_error_errno(err, FM_ERR_LOCAL, errno,
			               _("Cannot create the folder %s"), dir);
			free(dir);
			return -1;
		}
		free(dir);
	}
	return fm_fsync_dir(folder, err);
}

/* Appends the host name with '/' and ':' escaped as the maildir
 * specification asks ("\057", "\072"). */
static void
append_host(struct fm_buf *b)
{
	char host[256];
	if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
		fm_strlcpy(host, "localhost", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	for (const char *p = host; *p != '\0'; p++) {
		if (*p == '/')
			fm_buf_append_str(b, "\\057");
		else if (*p == ':')
			fm_buf_append_str(b, "\\072");
		else
			fm_buf_append_char(b, *p);
	}
}

static char *
unique_name(const char *tag)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	unsigned long n = atomic_fetch_add(&delivery_counter, 1) + 1;
	uint64_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd = ((uint64_t)tv.tv_usec << 32) ^ (uint64_t)n ^
		      ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)&tv;
	struct fm_buf b;
	fm_buf_init(&b, 1024);
	fm_buf_printf(&b, "%lld.M%06ldP%ldQ%luR%016llx", (long long)tv.tv_sec,
	              (long)tv.tv_usec, (long)getpid(), n,
	              (unsigned long long)rnd);
	if (tag != NULL)
		fm_buf_printf(&b, "K%s", tag);
	fm_buf_append_char(&b, '.');
	append_host(&b);
	return fm_buf_steal(&b);
}

static int
deliver(const char *folder, const char *tag, const void *data, size_t len,
        bool to_cur, uint32_t flags, char **relpath_r, struct fm_error *err)
{
	*relpath_r = NULL;
	char *base = NULL, *tmp = NULL;
	int fd = -1;
	for (int attempt = 0; attempt < 5 && fd < 0; attempt++) {
		free(base);
		free(tmp);
		base = unique_name(tag);
		char *rel = xasprintf("tmp/%s", base);
		tmp = fm_path_join(folder, rel);
		free(rel);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		fm_error_errno(err, FM_ERR_LOCAL, errno,
		               _("Cannot create a message file in %s"), folder);
		free(base);
		free(tmp);
		return -1;
	}
	char *rel = NULL, *final = NULL;
	if (fm_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		fm_error_errno(err, FM_ERR_LOCAL, errno,
		               _("Cannot write the message file %s"), tmp);
		close(fd);
		goto fail;
	}
	if (close(fd) < 0) {
		fm_error_errno(err, FM_ERR_LOCAL, errno,
		               _("Cannot write the message file %s"), tmp);
		goto fail;
	}
	if (to_cur) {
		char info[FM_MAILDIR_INFO_MAX];
		fm_maildir_flags_format(flags, info);
		rel = xasprintf("cur/%s%s", base, info);
	} else {
		rel = xasprintf("new/%s", base);
	}
	final = fm_path_join(folder, rel);
	if (rename_noreplace(tmp, final) < 0) {
		fm_error_errno(err, FM_ERR_LOCAL, errno,
		               _("Cannot move the message file %s into place"),
		               tmp);
		goto fail;
	}
	char *dir = subdir_of(folder, rel);
	int rc = fm_fsync_dir(dir, err);
	free(dir);
	if (rc < 0) {
		/* Not durable: take it back so the caller's retry cannot
		 * leave two copies. */
		unlink(final);
		goto fail_final;
	}
	free(base);
	free(tmp);
	free(final);
	*relpath_r = rel;
	return 0;
fail:
	unlink(tmp);
fail_final:
	free(base);
	free(tmp);
	free(rel);
	free(final);
	return -1;
}

int
fm_maildir_deliver(const char *folder, const void *data, size_t len,
                   char **relpath_r, struct fm_error *err)
{
	return deliver(folder, NULL, data, len, false, 0, relpath_r, err);
}

int
fm_maildir_deliver_cur(const char *folder, const void *data, size_t len,
                       uint32_t flags, char **relpath_r, struct fm_error *err)
{
	return deliver(folder, NULL, data, len, true, flags, relpath_r, err);
}

/* ------------------------------------------------------------------------
 * Names and flags.
 */

const char *
fm_maildir_base(const char *name, size_t *len_r)
{
	const char *slash = strrchr(name, '/');
	const char *base = slash != NULL ? slash + 1 : name;
	*len_r = strcspn(base, ":");
	return base;
}

uint32_t
fm_maildir_flags_parse(const char *name)
{
	size_t len;
	const char *base = fm_maildir_base(name, &len);
	const char *info = base + len;
	if (strncmp(info, ":2,", 3) != 0)
		return 0;
	uint32_t flags = 0;
	for (const char *p = info + 3; *p != '\0'; p++) {
		const char *l = strchr(flag_letters, *p);
		if (*p >= 'a' && *p <= 'z')
			flags |= FM_MAILDIR_KEYWORD(*p);
		else if (l != NULL)
			flags |= 1u << (l - flag_letters);
	}
	return flags;
}

void
fm_maildir_flags_format(uint32_t flags, char info[FM_MAILDIR_INFO_MAX])
{
	size_t n = 0;
	info[n++] = ':';
	info[n++] = '2';
	info[n++] = ',';
	for (int i = 0; flag_letters[i] != '\0'; i++)
		if (flags & (1u << i))
			info[n++] = flag_letters[i];
	for (char c = 'a'; c <= 'z'; c++)
		if (flags & FM_MAILDIR_KEYWORD(c))
			info[n++] = c;
	info[n] = '\0';
}

static int
find_in(const char *folder, const char *sub, const char *base, char **rel_r,
        struct fm_error *err)
{
	char *dir = fm_path_join(folder, sub);
	DIR *d = opendir(dir);
	if (d == NULL) {
		int e = errno;
		if (e == ENOENT) {
			free(dir);
			return 0;
		}
		fm_error_errno(err, FM_ERR_LOCAL, e,
		               _("Cannot read the folder %s"), dir);
		free(dir);
		return -1;
	}
	size_t blen = strlen(base);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, base, blen) == 0 &&
		    (de->d_name[blen] == ':' || de->d_name[blen] == '\0')) {
			*rel_r = xasprintf("%s/%s", sub, de->d_name);
			break;
		}
	}
	closedir(d);
	free(dir);
	return 0;
}

int
fm_maildir_find(const char *folder, const char *base, char **relpath_r,
                struct fm_error *err)
{
	*relpath_r = NULL;
	if (base[0] == '\0' || base[0] == '.' || strpbrk(base, "/:") != NULL)
		return 0;
	if (find_in(folder, "cur", base, relpath_r, err) < 0)
		return -1;
	if (*relpath_r == NULL &&
	    find_in(folder, "new", base, relpath_r, err) < 0)
		return -1;
	return 0;
}

int
fm_maildir_set_flags(const char *folder, const char *relpath, uint32_t flags,
                     unsigned *unsynced_r, char **relpath_r,
                     struct fm_error *err)
{
	*relpath_r = NULL;
	size_t blen;
	const char *bp = fm_maildir_base(relpath, &blen);
	char *base = xstrndup(bp, blen);
	char info[FM_MAILDIR_INFO_MAX];
	fm_maildir_flags_format(flags, info);
	char *to_rel = xasprintf("cur/%s%s", base, info);
	char *cur = xstrdup(relpath);
	char *to = fm_path_join(folder, to_rel);
	int rc = -1;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (strcmp(cur, to_rel) == 0) {
			struct stat st;
			if (stat(to, &st) == 0) {
				rc = 0;
				break;
			}
		} else {
			char *from = fm_path_join(folder, cur);
			int r = rename(from, to);
			int e = errno;
			free(from);
			if (r == 0) {
				rc = 1;
				break;
			}
			if (e != ENOENT) {
				fm_error_errno(err, FM_ERR_LOCAL, e,
				               _("Cannot rename the message "
				                 "%s in %s"),
				               cur, folder);
				goto out;
			}
		}
		/* Gone: its flags changed under us, or it moved from new/. */
		char *found = NULL;
		if (fm_maildir_find(folder, base, &found, err) < 0)
			goto out;
		if (found == NULL)
			break;
		free(cur);
		cur = found;
	}
	if (rc < 0) {
		fm_error_set(err, FM_ERR_LOCAL,
		             _("The message %s is no longer in %s"), base,
		             folder);
		goto out;
	}
	if (rc == 1) {
		unsigned dirs = FM_MAILDIR_DIR_CUR;
		if (strncmp(cur, "new/", 4) == 0)
			dirs |= FM_MAILDIR_DIR_NEW;
		if (unsynced_r != NULL)
			*unsynced_r |= dirs;
		else if (fm_maildir_sync_dirs(folder, &dirs, err) < 0)
			goto out;
	}
	*relpath_r = to_rel;
	to_rel = NULL;
	rc = 0;
out:
	free(base);
	free(to_rel);
	free(cur);
	free(to);
	return rc;
}

int
fm_maildir_sync_dirs(const char *folder, unsigned *dirs, struct fm_error *err)
{
	static const struct {
		unsigned bit;
		const char *name;
	} sub[] = {{FM_MAILDIR_DIR_CUR, "cur"}, {FM_MAILDIR_DIR_NEW, "new"}};
	for (size_t i = 0; i < FM_ARRAY_LEN(sub); i++) {
		if ((*dirs & sub[i].bit) == 0)
			continue;
		char *dir = fm_path_join(folder, sub[i].name);
		int r = fm_fsync_dir(dir, err);
		free(dir);
		if (r < 0)
			return -1;
		*dirs &= ~sub[i].bit;
	}
	return 0;
}

int
fm_maildir_move(const char *from_folder, const char *relpath,
                const char *to_folder, char **relpath_r, struct fm_error *err)
{
	*relpath_r = NULL;
	const char *slash = strrchr(relpath, '/');
	const char *name = slash != NULL ? slash + 1 : relpath;
	const char *sub = strncmp(relpath, "new/", 4) == 0 ? "new" : "cur";
	char *to_rel = xasprintf("%s/%s", sub, name);
	char *from = fm_path_join(from_folder, relpath);
	char *to = fm_path_join(to_folder, to_rel);
	int rc = rename_noreplace(from, to);
	if (rc < 0) {
		fm_error_errno(err, FM_ERR_LOCAL, errno,
		               _("Cannot move the message %s from %s to %s"),
		               relpath, from_folder, to_folder);
		goto out;
	}
	char *dir = fm_path_join(to_folder, sub);
	rc = fm_fsync_dir(dir, err);
	free(dir);
	if (rc == 0) {
		dir = subdir_of(from_folder, relpath);
		rc = fm_fsync_dir(dir, err);
		free(dir);
	}
	if (rc == 0) {
		*relpath_r = to_rel;
		to_rel = NULL;
	}
out:
	free(to_rel);
	free(from);
	free(to);
	return rc;
}

int
fm_maildir_remove(const char *folder, const char *relpath, struct fm_error *err)
{
	char *path = fm_path_join(folder, relpath);
	if (unlink(path) < 0 && errno != ENOENT) {
		fm_error_errno(err, FM_ERR_LOCAL, errno,
		               _("Cannot remove the message file %s"), path);
		free(path);
		return -1;
	}
	free(path);
	char *dir = subdir_of(folder, relpath);
	int rc = fm_fsync_dir(dir, err);
	free(dir);
	return rc;
}

/* ------------------------------------------------------------------------
 * UTF-8 and modified UTF-7.
 */

/* Decodes one code point at *p and advances; -1 on invalid UTF-8 (overlong,
 * surrogates, past U+10FFFF, truncated). */
static int
utf8_next(const unsigned char **p, uint32_t *cp_r)
{
	const unsigned char *s = *p;
	uint32_t cp;
	int extra;
	if (s[0] < 0x80) {
		cp = s[0];
		extra = 0;
	} else if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		cp = s[0] & 0x1f;
		extra = 1;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		cp = s[0] & 0x0f;
		extra = 2;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		cp = s[0] & 0x07;
		extra = 3;
	} else {
		return -1;
	}
	for (int i = 1; i <= extra; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
	if (cp < min[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*p = s + 1 + extra;
	*cp_r = cp;
	return 0;
}

static void
utf8_put(struct fm_buf *b, uint32_t cp)
{
	char s[4];
	size_t n;
	if (cp < 0x80) {
		s[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		s[0] = (char)(0xc0 | (cp >> 6));
		s[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		s[0] = (char)(0xe0 | (cp >> 12));
		s[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		s[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		s[0] = (char)(0xf0 | (cp >> 18));
		s[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		s[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		s[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	fm_buf_append(b, s, n);
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* Folder names are short; anything longer is hostile. */
#define NAME_MAX_BYTES 16384

static int
mutf7_bad(const char *in, struct fm_buf *b, struct fm_error *err,
          const char *why)
{
	char shown[128];
	fm_str_printable(in, shown, sizeof(shown));
	fm_buf_free(b);
	fm_error_set(err, FM_ERR_PROTOCOL,
	             _("The server sent a malformed folder name: %s"), shown);
	return fm_error_detail(err, "modified UTF-7: %s", why);
}

int
fm_mutf7_to_utf8(const char *mutf7, char **utf8_r, struct fm_error *err)
{
	*utf8_r = NULL;
	struct fm_buf b;
	fm_buf_init(&b, NAME_MAX_BYTES * 2);
	if (strlen(mutf7) > NAME_MAX_BYTES)
		return mutf7_bad(mutf7, &b, err, "too long");
	const char *p = mutf7;
	bool after_shift = false;
	while (*p != '\0') {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c > 0x7e)
			return mutf7_bad(mutf7, &b, err, "not printable ASCII");
		if (c != '&') {
			fm_buf_append_char(&b, (char)c);
			p++;
			after_shift = false;
			continue;
		}
		p++;
		if (*p == '-') {
			fm_buf_append_char(&b, '&');
			p++;
			after_shift = false;
			continue;
		}
		if (after_shift)
			return mutf7_bad(mutf7, &b, err, "null shift");
		uint32_t bits = 0, high = 0;
		int nbits = 0, units = 0;
		for (;; p++) {
			if (*p == '\0')
				return mutf7_bad(mutf7, &b, err,
				                 "unterminated");
			if (*p == '-')
				break;
			const char *v = strchr(b64, *p);
			if (v == NULL)
				return mutf7_bad(mutf7, &b, err, "bad base64");
			bits = (bits << 6) | (uint32_t)(v - b64);
			nbits += 6;
			if (nbits < 16)
				continue;
			nbits -= 16;
			uint32_t u = (bits >> nbits) & 0xffff;
			bits &= (1u << nbits) - 1;
			units++;
			if (high != 0) {
				if (u < 0xdc00 || u > 0xdfff)
					return mutf7_bad(mutf7, &b, err,
					                 "lone high surrogate");
				utf8_put(&b, 0x10000 + ((high - 0xd800) << 10) +
				                 (u - 0xdc00));
				high = 0;
			} else if (u >= 0xd800 && u <= 0xdbff) {
				high = u;
			} else if (u >= 0xdc00 && u <= 0xdfff) {
				return mutf7_bad(mutf7, &b, err,
				                 "lone low surrogate");
			} else if (u == 0 || (u >= 0x20 && u <= 0x7e)) {
				return mutf7_bad(mutf7, &b, err,
				                 "ASCII in base64");
			} else {
				utf8_put(&b, u);
			}
		}
		p++; /* the '-' */
		if (units == 0 || nbits >= 6 || bits != 0 || high != 0)
			return mutf7_bad(mutf7, &b, err, "bad shift end");
		after_shift = true;
	}
	*utf8_r = fm_buf_steal(&b);
	return 0;
}

static void
b64_flush(struct fm_buf *b, uint32_t *bits, int *nbits, bool final)
{
	while (*nbits >= 6) {
		*nbits -= 6;
		fm_buf_append_char(b, b64[(*bits >> *nbits) & 0x3f]);
	}
	*bits &= (1u << *nbits) - 1;
	if (final && *nbits > 0) {
		fm_buf_append_char(b, b64[(*bits << (6 - *nbits)) & 0x3f]);
		*bits = 0;
		*nbits = 0;
	}
}

int
fm_utf8_to_mutf7(const char *utf8, char **mutf7_r, struct fm_error *err)
{
	*mutf7_r = NULL;
	struct fm_buf b;
	fm_buf_init(&b, NAME_MAX_BYTES * 4);
	if (strlen(utf8) > NAME_MAX_BYTES)
		return mutf7_bad(utf8, &b, err, "too long");
	const unsigned char *p = (const unsigned char *)utf8;
	bool shifted = false;
	uint32_t bits = 0;
	int nbits = 0;
	while (*p != '\0') {
		uint32_t cp;
		if (utf8_next(&p, &cp) < 0)
			return mutf7_bad(utf8, &b, err, "invalid UTF-8");
		if (cp >= 0x20 && cp <= 0x7e) {
			if (shifted) {
				b64_flush(&b, &bits, &nbits, true);
				fm_buf_append_char(&b, '-');
				shifted = false;
			}
			fm_buf_append_str(
			    &b, cp == '&' ? "&-" : (char[]){(char)cp, 0});
			continue;
		}
		if (!shifted) {
			fm_buf_append_char(&b, '&');
			shifted = true;
		}
		uint32_t units[2] = {cp, 0};
		int n = 1;
		if (cp >= 0x10000) {
			units[0] = 0xd800 + ((cp - 0x10000) >> 10);
			units[1] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
			n = 2;
		}
		for (int i = 0; i < n; i++) {
			bits = (bits << 16) | units[i];
			nbits += 16;
			b64_flush(&b, &bits, &nbits, false);
		}
	}
	if (shifted) {
		b64_flush(&b, &bits, &nbits, true);
		fm_buf_append_char(&b, '-');
	}
	*mutf7_r = fm_buf_steal(&b);
	return 0;
}

/* ------------------------------------------------------------------------
 * Folder names to paths.
 */

#define LEVEL_MAX 255
#define RELPATH_MAX 4000

static int
name_bad(const char *name, struct fm_error *err, const char *why)
{
	char shown[128];
	fm_str_printable(name, shown, sizeof(shown));
	fm_error_set(err, FM_ERR_PROTOCOL,
	             _("Refusing the folder name %s: it cannot be stored "
	               "safely"),
	             shown);
	return fm_error_detail(err, "folder name: %s", why);
}

static int
append_level(struct fm_buf *out, const char *level, size_t len, bool first,
             const char *name, struct fm_error *err)
{
	if (len == 0)
		return name_bad(name, err, "empty level");
	if (level[0] == '.')
		return name_bad(name, err, "level starts with '.'");
	if (out->len > 0)
		fm_buf_append_char(out, '/');
	size_t start = out->len;
	if (first && len == 5 && strncasecmp(level, "INBOX", 5) == 0) {
		fm_buf_append_str(out, "INBOX");
		return 0;
	}
	bool reserved = len == 3 && (strncmp(level, "tmp", 3) == 0 ||
	                             strncmp(level, "new", 3) == 0 ||
	                             strncmp(level, "cur", 3) == 0);
	for (size_t i = 0; i < len; i++) {
		char c = level[i];
		if (c == '%' || c == '/' || (reserved && i == 0))
			fm_buf_printf(out, "%%%02X", (unsigned char)c);
		else
			fm_buf_append_char(out, c);
	}
	if (out->len - start > LEVEL_MAX)
		return name_bad(name, err, "level too long");
	return 0;
}

int
fm_maildir_folder_path(const char *name, char delim, char **relpath_r,
                       struct fm_error *err)
{
	*relpath_r = NULL;
	if (name[0] == '\0')
		return name_bad(name, err, "empty");
	if (strlen(name) > RELPATH_MAX)
		return name_bad(name, err, "too long");
	if ((unsigned char)delim >= 0x80 ||
	    (delim != '\0' && (unsigned char)delim < 0x20))
		return name_bad(name, err, "bad delimiter");
	const unsigned char *p = (const unsigned char *)name;
	while (*p != '\0') {
		uint32_t cp;
		if (utf8_next(&p, &cp) < 0)
			return name_bad(name, err, "invalid UTF-8");
		if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
			return name_bad(name, err, "control character");
	}
	struct fm_buf out;
	fm_buf_init(&out, RELPATH_MAX * 3 + 16);
	const char *level = name;
	for (bool first = true;; first = false) {
		const char *end = delim != '\0' ? strchr(level, delim) : NULL;
		size_t len =
		    end != NULL ? (size_t)(end - level) : strlen(level);
		if (append_level(&out, level, len, first, name, err) < 0) {
			fm_buf_free(&out);
			return -1;
		}
		if (end == NULL)
			break;
		level = end + 1;
	}
	if (out.len > RELPATH_MAX) {
		fm_buf_free(&out);
		return name_bad(name, err, "too long");
	}
	*relpath_r = fm_buf_steal(&out);
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
fm_maildir_folder_name(const char *relpath, char delim, char **name_r,
                       struct fm_error *err)
{
	*name_r = NULL;
	struct fm_buf b;
	fm_buf_init(&b, RELPATH_MAX + 16);
	bool ok = relpath[0] != '\0';
	for (const char *p = relpath; ok && *p != '\0'; p++) {
		if (*p == '/') {
			ok =
			    delim != '\0' && fm_buf_append_char(&b, delim) == 0;
		} else if (*p == '%') {
			int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
			ok = lo >= 0 && (hi << 4 | lo) != 0 &&
			     fm_buf_append_char(&b, (char)(hi << 4 | lo)) == 0;
			if (ok)
				p += 2;
		} else {
			ok = fm_buf_append_char(&b, *p) == 0;
		}
	}
	/* Only the canonical form maps back: map the result again. */
	char *again = NULL;
	if (ok && fm_maildir_folder_path(b.data, delim, &again, NULL) == 0 &&
	    strcmp(again, relpath) == 0) {
		free(again);
		*name_r = fm_buf_steal(&b);
		return 0;
	}
	free(again);
	fm_buf_free(&b);
	return fm_error_set(err, FM_ERR_LOCAL,
	                    _("The folder path %s was not made by fulmar"),
	                    relpath);
}

int
fm_maildir_deliver_tagged(const char *folder, const char *tag, const void *data,
                          size_t len, bool to_cur, uint32_t flags,
                          char **relpath_r, struct fm_error *err)
{
	size_t n = strlen(tag);
	if (n == 0 || n > FM_MAILDIR_TAG_MAX ||
	    strspn(tag, "0123456789abcdef") != n)
		return fm_error_set(err, FM_ERR_LOCAL,
		                    _("invalid delivery tag '%s'"), tag);
	return deliver(folder, tag, data, len, to_cur, flags, relpath_r, err);
}

const char *
fm_maildir_base_tag(const char *base, size_t *len_r)
{
	/* The unique part ends at the first '.' after the time; a tag is
	 * "K" and hex right before it. */
	const char *dot = strchr(base, '.');
	if (dot == NULL)
		return NULL;
	const char *end = strchr(dot + 1, '.');
	if (end == NULL)
		return NULL;
	const char *k = end;
	while (k > dot + 1 && strchr("0123456789abcdef", k[-1]) != NULL &&
	       k[-1] != '\0')
		k--;
	if (k == end || k <= dot + 1 || k[-1] != 'K')
		return NULL;
	*len_r = (size_t)(end - k);
	return k;
}

int
fm_maildir_replace(const char *folder, const char *relpath, const void *data,
                   size_t len, char **relpath_r, struct fm_error *err)
{
	if (relpath_r != NULL)
		*relpath_r = NULL;
	char *cur = xstrdup(relpath);
	char *path = fm_path_join(folder, cur);
	if (access(path, F_OK) < 0) {
		/* Renamed since (flags changed): find it by its base. */
		const char *slash = strrchr(relpath, '/');
		size_t bl;
		const char *b =
		    fm_maildir_base(slash ? slash + 1 : relpath, &bl);
		char *base = xstrndup(b, bl);
		free(cur);
		free(path);
		cur = NULL;
		int r = fm_maildir_find(folder, base, &cur, err);
		free(base);
		if (r < 0)
			return -1;
		path = fm_path_join(folder, cur);
	}
	char *tmp = NULL;
	char *base = unique_name(NULL);
	char *rel = xasprintf("tmp/%s", base);
	tmp = fm_path_join(folder, rel);
	free(rel);
	free(base);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int ret = -1;
	if (fd < 0) {
		fm_error_errno(err, FM_ERR_LOCAL, errno,
		               _("Cannot create a message file in %s"), folder);
		goto out;
	}
	if (fm_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		fm_error_errno(err, FM_ERR_LOCAL, errno,
		               _("Cannot write the message file %s"), tmp);
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		fm_error_errno(err, FM_ERR_LOCAL, errno,
		               _("Cannot move the message file %s into place"),
		               tmp);
		unlink(tmp);
		goto out;
	}
	char *dir = subdir_of(folder, cur);
	ret = fm_fsync_dir(dir, err);
	free(dir);
	if (ret == 0 && relpath_r != NULL) {
		*relpath_r = cur;
		cur = NULL;
	}
out:
	free(tmp);
	free(path);
	free(cur);
	return ret;
}

struct staged {
	char *tmp;   /* absolute */
	char *final; /* absolute */
};

struct fm_maildir_batch {
	char *folder;
	struct staged *v;
	size_t n, cap;
	int dirfd; /* for syncfs: any fd on the file system */
};

struct fm_maildir_batch *
fm_maildir_batch_new(const char *folder)
{
	struct fm_maildir_batch *b = xcalloc(1, sizeof(*b));
	b->folder = xstrdup(folder);
	b->dirfd = -1;
	return b;
}

size_t
fm_maildir_batch_count(const struct fm_maildir_batch *b)
{
	return b->n;
}

int
fm_maildir_batch_add(struct fm_maildir_batch *b, const char *tag,
                     const void *data, size_t len, bool to_cur, uint32_t flags,
                     char **relpath_r, struct fm_error *err)
{
	*relpath_r = NULL;
	if (tag != NULL &&
	    (strlen(tag) == 0 || strlen(tag) > FM_MAILDIR_TAG_MAX ||
	     strspn(tag, "0123456789abcdef") != strlen(tag)))
		return fm_error_set(err, FM_ERR_LOCAL,
		                    _("invalid delivery tag '%s'"), tag);
	char *base = unique_name(tag);
	char *rel = xasprintf("tmp/%s", base);
	char *tmp = fm_path_join(b->folder, rel);
	free(rel);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || fm_write_all(fd, data, len) < 0) {
		fm_error_errno(err, FM_ERR_LOCAL, errno,
		               _("Cannot write the message file %s"), tmp);
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		free(tmp);
		free(base);
		return -1;
	}
	close(fd);
	if (to_cur) {
		char info[FM_MAILDIR_INFO_MAX];
		fm_maildir_flags_format(flags, info);
		rel = xasprintf("cur/%s%s", base, info);
	} else {
		rel = xasprintf("new/%s", base);
	}
	free(base);
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 64;
		b->v = xreallocarray(b->v, b->cap, sizeof(*b->v));
	}
	b->v[b->n].tmp = tmp;
	b->v[b->n].final = fm_path_join(b->folder, rel);
	b->n++;
	*relpath_r = rel;
	return 0;
}

static void
batch_clear(struct fm_maildir_batch *b, bool unlink_tmp)
{
	for (size_t i = 0; i < b->n; i++) {
		if (unlink_tmp)
			unlink(b->v[i].tmp);
		free(b->v[i].tmp);
		free(b->v[i].final);
	}
	b->n = 0;
}

int
fm_maildir_batch_commit(struct fm_maildir_batch *b, bool flushed,
                        struct fm_error *err)
{
	if (b->n == 0)
		return 0;
	/* One flush for the whole batch instead of one per message. */
	if (!flushed) {
		int fd = open(b->folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int e = fd < 0 || syncfs(fd) < 0 ? errno : 0;
		if (fd >= 0)
			close(fd);
		if (e != 0) {
			fm_error_errno(err, FM_ERR_LOCAL, e,
			               _("Cannot write the folder %s to disk"),
			               b->folder);
			batch_clear(b, true);
			return -1;
		}
	}
	bool to_new = false, to_cur = false;
	for (size_t i = 0; i < b->n; i++) {
		if (rename_noreplace(b->v[i].tmp, b->v[i].final) < 0) {
			fm_error_errno(err, FM_ERR_LOCAL, errno,
			               _("Cannot move the message file %s into "
			                 "place"),
			               b->v[i].tmp);
			/* Take back what moved: the caller retries all. */
			for (size_t k = 0; k < i; k++)
				unlink(b->v[k].final);
			batch_clear(b, true);
			return -1;
		}
		const char *rel = b->v[i].final + strlen(b->folder) + 1;
		if (strncmp(rel, "new/", 4) == 0)
			to_new = true;
		else
			to_cur = true;
	}
	int ret = 0;
	char *dir;
	if (ret == 0 && to_new) {
		dir = fm_path_join(b->folder, "new");
		ret = fm_fsync_dir(dir, err);
		free(dir);
	}
	if (ret == 0 && to_cur) {
		dir = fm_path_join(b->folder, "cur");
		ret = fm_fsync_dir(dir, err);
		free(dir);
	}
	batch_clear(b, false);
	return ret;
}

void
fm_maildir_batch_free(struct fm_maildir_batch **bp)
{
	struct fm_maildir_batch *b = *bp;
	if (b == NULL)
		return;
	batch_clear(b, true);
	free(b->v);
	free(b->folder);
	free(b);
	*bp = NULL;
}

/* The number of files in cur/ and new/ and an order-independent hash of
 * their names (FNV-1a per name, summed): any delivery, rename (flag
 * change), move or removal changes it. */
bool
fm_maildir_fingerprint(const char *dir, uint64_t *files_r, uint64_t *hash_r)
{
	uint64_t files = 0, sum = 0;
	for (int k = 0; k < 2; k++) {
		char *sub = fm_path_join(dir, k == 0 ? "cur" : "new");
		DIR *d = opendir(sub);
		free(sub);
		if (d == NULL)
			return false;
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			uint64_t h = 1469598103934665603ull ^ (uint64_t)k;
			for (const char *c = de->d_name; *c != '\0'; c++)
				h = (h ^ (unsigned char)*c) * 1099511628211ull;
			sum += h;
			files++;
		}
		closedir(d);
	}
	*files_r = files;
	*hash_r = sum;
	return true;
}

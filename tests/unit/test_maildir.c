/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "store/maildir.h"

/* ------------------------------------------------------------------------
 * Helpers.
 */

static char *
make_tmpdir_in(const char *parent)
{
	char *tmpl = xasprintf("%s/fm-maildir-XXXXXX", parent);
	assert_non_null(mkdtemp(tmpl));
	return tmpl;
}

static char *
make_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	return make_tmpdir_in(t != NULL && t[0] == '/' ? t : "/tmp");
}

static void
rm_rf(const char *path)
{
	DIR *d = opendir(path);
	if (d != NULL) {
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			char *sub = fm_path_join(path, de->d_name);
			rm_rf(sub);
			free(sub);
		}
		closedir(d);
		assert_int_equal(rmdir(path), 0);
	} else {
		assert_int_equal(unlink(path), 0);
	}
}

/* Number of entries in folder/sub (without . and ..). */
static size_t
count_dir(const char *folder, const char *sub)
{
	char *dir = fm_path_join(folder, sub);
	DIR *d = opendir(dir);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	free(dir);
	return n;
}

static char *
slurp(const char *folder, const char *rel, size_t *len_r)
{
	char *path = fm_path_join(folder, rel);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	char *data = xmalloc((size_t)st.st_size + 1);
	assert_int_equal(read(fd, data, (size_t)st.st_size), st.st_size);
	close(fd);
	free(path);
	*len_r = (size_t)st.st_size;
	return data;
}

static bool
exists(const char *folder, const char *rel)
{
	char *path = fm_path_join(folder, rel);
	struct stat st;
	bool r = stat(path, &st) == 0;
	free(path);
	return r;
}

/* ------------------------------------------------------------------------
 * Delivery.
 */

static void
test_create_and_deliver(void **state)
{
	char *root = make_tmpdir();
	char *folder = fm_path_join(root, "acct/INBOX/Sub");
	struct fm_error err;
	assert_int_equal(fm_maildir_create(folder, &err), 0);
	/* Creating again is fine. */
	assert_int_equal(fm_maildir_create(folder, &err), 0);
	char *d = fm_path_join(folder, "cur");
	struct stat st;
	assert_int_equal(stat(d, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	free(d);

	/* Binary content, with NUL bytes and CRLF, comes back byte for
	 * byte. */
	char msg[3000];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (char)(i * 7 + (i >> 8));
	memcpy(msg, "From: a@b\r\n\r\n\0x", 16);
	char *rel = NULL;
	assert_int_equal(
	    fm_maildir_deliver(folder, msg, sizeof(msg), &rel, &err), 0);
	assert_non_null(rel);
	assert_true(fm_str_has_prefix(rel, "new/"));
	assert_null(strchr(rel + 4, '/'));
	assert_null(strchr(rel + 4, ':'));
	size_t len;
	char *back = slurp(folder, rel, &len);
	assert_int_equal(len, sizeof(msg));
	assert_memory_equal(back, msg, sizeof(msg));
	free(back);
	assert_int_equal(count_dir(folder, "tmp"), 0);
	assert_int_equal(count_dir(folder, "new"), 1);

	/* Straight to cur/ with flags. */
	char *rel2 = NULL;
	assert_int_equal(fm_maildir_deliver_cur(
	                     folder, "x", 1,
	                     FM_MAILDIR_SEEN | FM_MAILDIR_FLAGGED, &rel2, &err),
	                 0);
	assert_true(fm_str_has_prefix(rel2, "cur/"));
	size_t blen;
	const char *b = fm_maildir_base(rel2, &blen);
	assert_string_equal(b + blen, ":2,FS");
	assert_int_equal(count_dir(folder, "tmp"), 0);
	assert_int_equal(count_dir(folder, "cur"), 1);
	/* An empty message is a message too. */
	char *rel3 = NULL;
	assert_int_equal(fm_maildir_deliver(folder, "", 0, &rel3, &err), 0);
	back = slurp(folder, rel3, &len);
	assert_int_equal(len, 0);
	free(back);

	free(rel);
	free(rel2);
	free(rel3);
	free(folder);
	rm_rf(root);
	free(root);
}

static void
test_deliver_failure_leaves_nothing(void **state)
{
	char *root = make_tmpdir();
	struct fm_error err;
	char *rel = (char *)"untouched";

	/* No maildir at all: fails, names the folder. */
	char *missing = fm_path_join(root, "nothing");
	assert_int_equal(fm_maildir_deliver(missing, "x", 1, &rel, &err), -1);
	assert_null(rel);
	assert_int_equal(err.cls, FM_ERR_LOCAL);
	assert_non_null(strstr(err.user, missing));
	free(missing);

	/* new/ is gone: the tmp file is written, the rename fails, and the
	 * tmp file must not stay behind. */
	char *folder = fm_path_join(root, "f");
	assert_int_equal(fm_maildir_create(folder, &err), 0);
	char *newdir = fm_path_join(folder, "new");
	assert_int_equal(rmdir(newdir), 0);
	assert_int_equal(fm_maildir_deliver(folder, "hello", 5, &rel, &err),
	                 -1);
	assert_null(rel);
	assert_int_equal(err.cls, FM_ERR_LOCAL);
	char *tmpdir = fm_path_join(folder, "tmp/");
	assert_non_null(strstr(err.user, tmpdir));
	free(tmpdir);
	assert_int_equal(count_dir(folder, "tmp"), 0);
	free(newdir);
	free(folder);
	rm_rf(root);
	free(root);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
test_unique_names(void **state)
{
	enum { N = 10000 };
	/* 20,000 fsyncs take many seconds on a disk and prove nothing about
	 * names: use tmpfs where there is one. */
	char *root = access("/dev/shm", W_OK) == 0 ? make_tmpdir_in("/dev/shm")
	                                           : make_tmpdir();
	struct fm_error err;
	assert_int_equal(fm_maildir_create(root, &err), 0);
	char **names = xcalloc(N, sizeof(*names));
	for (int i = 0; i < N; i++) {
		char body[32];
		int n = snprintf(body, sizeof(body), "message %d\n", i);
		assert_int_equal(
		    fm_maildir_deliver(root, body, (size_t)n, &names[i], &err),
		    0);
	}
	/* The name carries seconds, microseconds, pid, counter, random. */
	char pid[32];
	snprintf(pid, sizeof(pid), "P%ld", (long)getpid());
	assert_non_null(strstr(names[0], ".M"));
	assert_non_null(strstr(names[0], pid));
	assert_non_null(strstr(names[0], "Q"));
	assert_non_null(strstr(names[0], "R"));
	qsort(names, N, sizeof(*names), cmp_str);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(names[i - 1], names[i]);
	assert_int_equal(count_dir(root, "new"), N);
	assert_int_equal(count_dir(root, "tmp"), 0);
	for (int i = 0; i < N; i++)
		free(names[i]);
	free(names);
	rm_rf(root);
	free(root);
}

/* ------------------------------------------------------------------------
 * Flags.
 */

static void
test_flags_format_parse(void **state)
{
	char info[FM_MAILDIR_INFO_MAX];
	fm_maildir_flags_format(0, info);
	assert_string_equal(info, ":2,");
	fm_maildir_flags_format(FM_MAILDIR_STANDARD_FLAGS, info);
	assert_string_equal(info, ":2,DFPRST");
	fm_maildir_flags_format(FM_MAILDIR_SEEN | FM_MAILDIR_DRAFT |
	                            FM_MAILDIR_KEYWORD('z') |
	                            FM_MAILDIR_KEYWORD('a'),
	                        info);
	assert_string_equal(info, ":2,DSaz");
	fm_maildir_flags_format(UINT32_MAX, info);
	assert_string_equal(info, ":2,DFPRSTabcdefghijklmnopqrstuvwxyz");
	assert_int_equal(strlen(info) + 1, FM_MAILDIR_INFO_MAX);

	/* Odd input. */
	assert_int_equal(fm_maildir_flags_parse("123.M1P2.host"), 0);
	assert_int_equal(fm_maildir_flags_parse("123.M1P2.host:2,"), 0);
	assert_int_equal(fm_maildir_flags_parse("123.host:1,FS"), 0);
	assert_int_equal(fm_maildir_flags_parse("123.host:2"), 0);
	assert_int_equal(fm_maildir_flags_parse("cur/123.host:2,SSFFS"),
	                 FM_MAILDIR_SEEN | FM_MAILDIR_FLAGGED);
	assert_int_equal(fm_maildir_flags_parse("123:2,TSRPFD"),
	                 FM_MAILDIR_STANDARD_FLAGS);
	assert_int_equal(fm_maildir_flags_parse("123:2,Sba1X,"),
	                 FM_MAILDIR_SEEN | FM_MAILDIR_KEYWORD('a') |
	                     FM_MAILDIR_KEYWORD('b'));
	/* Only the last path component counts. */
	assert_int_equal(fm_maildir_flags_parse("dir:2,S/123"), 0);
	/* Out-of-order and duplicate letters come back sorted, once. */
	uint32_t f = fm_maildir_flags_parse("x:2,zSaSDz");
	fm_maildir_flags_format(f, info);
	assert_string_equal(info, ":2,DSaz");

	/* Every combination of the six standard flags, and keywords. */
	for (uint32_t m = 0; m <= FM_MAILDIR_STANDARD_FLAGS; m++) {
		char name[64];
		fm_maildir_flags_format(m, info);
		snprintf(name, sizeof(name), "base%s", info);
		assert_int_equal(fm_maildir_flags_parse(name), m);
	}
	uint32_t k = 1;
	for (int i = 0; i < 40; i++, k = k * 2654435761u + 12345u) {
		char name[64];
		fm_maildir_flags_format(k, info);
		snprintf(name, sizeof(name), "new/base%s", info);
		assert_int_equal(fm_maildir_flags_parse(name), k);
	}

	size_t len;
	const char *b = fm_maildir_base("cur/abc.M1:2,S", &len);
	assert_int_equal(len, 6);
	assert_memory_equal(b, "abc.M1", 6);
	b = fm_maildir_base("new/abc", &len);
	assert_string_equal(b, "abc");
	assert_int_equal(len, 3);
	b = fm_maildir_base("abc:1,x", &len);
	assert_int_equal(len, 3);
}

static void
test_set_flags_and_find(void **state)
{
	char *root = make_tmpdir();
	struct fm_error err;
	assert_int_equal(fm_maildir_create(root, &err), 0);
	char *rel = NULL;
	assert_int_equal(fm_maildir_deliver(root, "body", 4, &rel, &err), 0);
	size_t blen;
	const char *bp = fm_maildir_base(rel, &blen);
	char *base = xstrndup(bp, blen);

	/* new/ -> cur/ with flags. */
	char *rel2 = NULL;
	assert_int_equal(
	    fm_maildir_set_flags(root, rel, FM_MAILDIR_SEEN, NULL, &rel2, &err),
	    0);
	char *want = xasprintf("cur/%s:2,S", base);
	assert_string_equal(rel2, want);
	free(want);
	assert_int_equal(count_dir(root, "new"), 0);
	assert_int_equal(count_dir(root, "cur"), 1);
	size_t len;
	char *data = slurp(root, rel2, &len);
	assert_int_equal(len, 4);
	assert_memory_equal(data, "body", 4);
	free(data);

	/* The same flags again: nothing to do, same name. */
	char *rel3 = NULL;
	assert_int_equal(fm_maildir_set_flags(root, rel2, FM_MAILDIR_SEEN, NULL,
	                                      &rel3, &err),
	                 0);
	assert_string_equal(rel3, rel2);
	free(rel3);

	/* Flags change within cur/, the directory left to the caller to
	 * fsync. */
	unsigned unsynced = 0;
	assert_int_equal(fm_maildir_set_flags(root, rel2,
	                                      FM_MAILDIR_SEEN |
	                                          FM_MAILDIR_FLAGGED |
	                                          FM_MAILDIR_KEYWORD('c'),
	                                      &unsynced, &rel3, &err),
	                 0);
	assert_int_equal(unsynced, FM_MAILDIR_DIR_CUR);
	assert_int_equal(fm_maildir_sync_dirs(root, &unsynced, &err), 0);
	assert_int_equal(unsynced, 0);
	want = xasprintf("cur/%s:2,FSc", base);
	assert_string_equal(rel3, want);
	free(want);
	assert_false(exists(root, rel2));
	assert_true(exists(root, rel3));

	/* Find it by base name although its flags changed. */
	char *found = NULL;
	assert_int_equal(fm_maildir_find(root, base, &found, &err), 0);
	assert_string_equal(found, rel3);
	free(found);
	/* A prefix of the base is not the base. */
	char *prefix = xstrndup(base, blen - 1);
	assert_int_equal(fm_maildir_find(root, prefix, &found, &err), 0);
	assert_null(found);
	free(prefix);
	assert_int_equal(fm_maildir_find(root, "../cur", &found, &err), 0);
	assert_null(found);

	/* A stale path (the old new/ name) still works: found by base. */
	char *rel4 = NULL;
	assert_int_equal(fm_maildir_set_flags(root, rel, FM_MAILDIR_REPLIED,
	                                      &unsynced, &rel4, &err),
	                 0);
	want = xasprintf("cur/%s:2,R", base);
	assert_string_equal(rel4, want);
	assert_int_equal(unsynced, FM_MAILDIR_DIR_CUR);
	/* A directory that cannot be fsynced stays named. */
	char *gone_dir = fm_path_join(root, "nowhere");
	unsynced = FM_MAILDIR_DIR_CUR | FM_MAILDIR_DIR_NEW;
	assert_int_equal(fm_maildir_sync_dirs(gone_dir, &unsynced, &err), -1);
	assert_int_equal(unsynced, FM_MAILDIR_DIR_CUR | FM_MAILDIR_DIR_NEW);
	free(gone_dir);
	free(want);
	assert_int_equal(count_dir(root, "cur"), 1);

	/* Move to another folder keeps base and flags. */
	char *other = fm_path_join(root, "Other");
	assert_int_equal(fm_maildir_create(other, &err), 0);
	char *moved = NULL;
	assert_int_equal(fm_maildir_move(root, rel4, other, &moved, &err), 0);
	assert_string_equal(moved, rel4);
	assert_true(exists(other, moved));
	assert_false(exists(root, rel4));

	/* Gone from root: set_flags names the message, find says NULL. */
	char *rel5 = (char *)"x";
	assert_int_equal(fm_maildir_set_flags(root, rel4, FM_MAILDIR_SEEN, NULL,
	                                      &rel5, &err),
	                 -1);
	assert_null(rel5);
	assert_int_equal(err.cls, FM_ERR_LOCAL);
	assert_non_null(strstr(err.user, base));
	assert_int_equal(fm_maildir_find(root, base, &found, &err), 0);
	assert_null(found);

	/* Remove, twice (the second is not an error). */
	assert_int_equal(fm_maildir_remove(other, moved, &err), 0);
	assert_false(exists(other, moved));
	assert_int_equal(fm_maildir_remove(other, moved, &err), 0);

	free(moved);
	free(other);
	free(rel);
	free(rel2);
	free(rel3);
	free(rel4);
	free(base);
	rm_rf(root);
	free(root);
}

/* ------------------------------------------------------------------------
 * Modified UTF-7.
 */

static void
check_mutf7(const char *mutf7, const char *utf8)
{
	struct fm_error err;
	char *out = NULL;
	assert_int_equal(fm_mutf7_to_utf8(mutf7, &out, &err), 0);
	assert_string_equal(out, utf8);
	free(out);
	assert_int_equal(fm_utf8_to_mutf7(utf8, &out, &err), 0);
	assert_string_equal(out, mutf7);
	free(out);
}

static void
test_mutf7_valid(void **state)
{
	/* RFC 3501 5.1.3. */
	check_mutf7("~peter/mail/&U,BTFw-/&ZeVnLIqe-",
	            "~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e");
	check_mutf7("&-", "&");
	check_mutf7("Tom &- Jerry &-&-", "Tom & Jerry &&");
	check_mutf7("Entw&APw-rfe", "Entw\u00fcrfe");
	check_mutf7("&2D3eAA-", "\U0001F600");
	check_mutf7("&AOkA6QDp-t&AOk-", "\u00e9\u00e9\u00e9t\u00e9");
	check_mutf7("", "");
	check_mutf7("INBOX", "INBOX");
	/* Non-printing ASCII must be encoded; it decodes. */
	check_mutf7("a&AAE-b", "a\x01"
	                       "b");
	/* Two leftover zero bits are fine. */
	check_mutf7("&U,A-", "\u53f0");
	/* A base64 section right after a literal "&-" is not a null shift. */
	check_mutf7("&-&U,A-", "&\u53f0");
}

static void
check_mutf7_bad(const char *mutf7)
{
	struct fm_error err;
	char *out = (char *)"x";
	fm_error_clear(&err);
	assert_int_equal(fm_mutf7_to_utf8(mutf7, &out, &err), -1);
	assert_null(out);
	assert_int_equal(err.cls, FM_ERR_PROTOCOL);
	assert_non_null(strstr(err.user, "folder name"));
}

static void
test_mutf7_invalid(void **state)
{
	check_mutf7_bad("&");                  /* unterminated */
	check_mutf7_bad("&U,BTFw");            /* unterminated */
	check_mutf7_bad("&U,B-");              /* leftover bits not 0 */
	check_mutf7_bad("&U,BTF-");            /* 6+ leftover bits */
	check_mutf7_bad("&A-");                /* no whole unit */
	check_mutf7_bad("&AGE-");              /* 'a' in base64 */
	check_mutf7_bad("&AAA-");              /* NUL */
	check_mutf7_bad("&2D0-");              /* lone high surrogate */
	check_mutf7_bad("&3AA-");              /* lone low surrogate */
	check_mutf7_bad("&U,BTFw-&ZeVnLIqe-"); /* null shift */
	check_mutf7_bad("&U/A-");              /* '/' is not modified b64 */
	check_mutf7_bad("&Jjo!-");             /* bad base64 */
	check_mutf7_bad("a\x01z");             /* raw control */
	check_mutf7_bad("caf\xc3\xa9");        /* raw 8-bit */
	check_mutf7_bad("tab\there");

	struct fm_error err;
	char *out = (char *)"x";
	assert_int_equal(fm_utf8_to_mutf7("\xc0\xaf", &out, &err), -1);
	assert_null(out);
	assert_int_equal(err.cls, FM_ERR_PROTOCOL);
	assert_int_equal(fm_utf8_to_mutf7("\xed\xa0\x80", &out, &err), -1);
	assert_int_equal(fm_utf8_to_mutf7("\xf4\x90\x80\x80", &out, &err), -1);
	assert_int_equal(fm_utf8_to_mutf7("ab\xe6\x97", &out, &err), -1);
	assert_int_equal(fm_utf8_to_mutf7("\xff", &out, &err), -1);
}

/* ------------------------------------------------------------------------
 * Folder names to paths.
 */

static void
check_path(const char *name, char delim, const char *want)
{
	struct fm_error err;
	char *rel = NULL;
	assert_int_equal(fm_maildir_folder_path(name, delim, &rel, &err), 0);
	assert_string_equal(rel, want);
	char *back = NULL;
	assert_int_equal(fm_maildir_folder_name(rel, delim, &back, &err), 0);
	/* INBOX comes back canonical. */
	if (fm_str_has_prefix(want, "INBOX"))
		assert_true(strncasecmp(back, name, 5) == 0 &&
		            strcmp(back + 5, name + 5) == 0);
	else
		assert_string_equal(back, name);
	free(back);
	free(rel);
}

static void
check_path_bad(const char *name, char delim)
{
	struct fm_error err;
	char *rel = (char *)"x";
	fm_error_clear(&err);
	assert_int_equal(fm_maildir_folder_path(name, delim, &rel, &err), -1);
	assert_null(rel);
	assert_int_equal(err.cls, FM_ERR_PROTOCOL);
	assert_non_null(strstr(err.user, "folder name"));
}

static void
test_folder_path(void **state)
{
	check_path("INBOX", '/', "INBOX");
	check_path("inbox", '/', "INBOX");
	check_path("inbox.Sent", '.', "INBOX/Sent");
	check_path("Archive/2023", '/', "Archive/2023");
	check_path("Archive.2023.Q1", '.', "Archive/2023/Q1");
	check_path("a/b", '.', "a%2Fb");
	check_path("a/b.c", '.', "a%2Fb/c");
	check_path("a.b/c", '\0', "a.b%2Fc");
	check_path("50%", '/', "50%25");
	check_path("%2F", '/', "%252F");
	check_path("INBOX/new", '/', "INBOX/%6Eew");
	check_path("cur", '/', "%63ur");
	check_path("tmp/x", '/', "%74mp/x");
	check_path("news/newer", '/', "news/newer");
	check_path("Sub.INBOX", '.', "Sub/INBOX");
	check_path("\u53f0\u5317/\u65e5\u672c\u8a9e", '/',
	           "\u53f0\u5317/\u65e5\u672c\u8a9e");
	check_path("a..b", '/', "a..b");
	check_path("trailing.", '/', "trailing.");

	check_path_bad("", '/');
	check_path_bad("..", '/');
	check_path_bad("../etc", '/');
	check_path_bad("a/../../etc", '/');
	check_path_bad("a/./b", '/');
	check_path_bad(".", '/');
	check_path_bad(".hidden", '/');
	check_path_bad("a/.b", '/');
	check_path_bad("a..b", '.'); /* an empty level */
	check_path_bad("..", '.');
	check_path_bad("/etc/passwd", '/'); /* leading delimiter */
	check_path_bad("a//b", '/');
	check_path_bad("a/", '/');
	check_path_bad("a\x01z", '/');
	check_path_bad("a\x7fz", '/');
	check_path_bad("a\xc2\x85z", '/'); /* C1 control (NEL) */
	check_path_bad("caf\xe9", '/');    /* Latin-1, not UTF-8 */
	check_path_bad("a", '\x80');
	char long_level[300];
	memset(long_level, 'x', sizeof(long_level) - 1);
	long_level[sizeof(long_level) - 1] = '\0';
	check_path_bad(long_level, '/');
	/* 255 bytes is still a file name. */
	long_level[255] = '\0';
	check_path(long_level, '/', long_level);

	/* Paths fulmar did not make do not map back. */
	struct fm_error err;
	char *name = (char *)"x";
	assert_int_equal(fm_maildir_folder_name("a/../b", '/', &name, &err),
	                 -1);
	assert_null(name);
	assert_int_equal(err.cls, FM_ERR_LOCAL);
	assert_non_null(strstr(err.user, "a/../b"));
	assert_int_equal(fm_maildir_folder_name("%2E%2E", '/', &name, &err),
	                 -1);
	assert_int_equal(fm_maildir_folder_name("%2f", '/', &name, &err), -1);
	assert_int_equal(fm_maildir_folder_name("%61", '/', &name, &err), -1);
	assert_int_equal(fm_maildir_folder_name("a%", '/', &name, &err), -1);
	assert_int_equal(fm_maildir_folder_name("new", '/', &name, &err), -1);
	assert_int_equal(fm_maildir_folder_name("a/b", '\0', &name, &err), -1);
	assert_int_equal(fm_maildir_folder_name("a.b/c", '.', &name, &err), -1);
	assert_int_equal(fm_maildir_folder_name("", '/', &name, &err), -1);
}

static void
test_tagged_delivery(void **state)
{
	char *dir = make_tmpdir();
	char *folder = fm_path_join(dir, "INBOX");
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_maildir_create(folder, &err), 0);
	char *rel = NULL;
	assert_int_equal(fm_maildir_deliver_tagged(folder, "00ff9a", "x\n", 2,
	                                           true, FM_MAILDIR_SEEN, &rel,
	                                           &err),
	                 0);
	assert_true(strncmp(rel, "cur/", 4) == 0);
	assert_non_null(strstr(rel, ":2,S"));
	size_t bl, tl;
	const char *base = fm_maildir_base(rel + 4, &bl);
	char *b = xstrndup(base, bl);
	const char *tag = fm_maildir_base_tag(b, &tl);
	assert_non_null(tag);
	assert_int_equal(tl, 6);
	assert_memory_equal(tag, "00ff9a", 6);
	free(b);
	free(rel);
	/* Untagged names have none; bad tags are refused. */
	assert_int_equal(fm_maildir_deliver(folder, "y\n", 2, &rel, &err), 0);
	base = fm_maildir_base(rel + 4, &bl);
	b = xstrndup(base, bl);
	assert_null(fm_maildir_base_tag(b, &tl));
	free(b);
	free(rel);
	assert_null(fm_maildir_base_tag("1.M1P1Q1Rabc.host", &tl));
	assert_null(fm_maildir_base_tag("nodots", &tl));
	assert_int_equal(fm_maildir_deliver_tagged(folder, "XYZ", "z", 1, false,
	                                           0, &rel, &err),
	                 -1);
	assert_int_equal(
	    fm_maildir_deliver_tagged(folder, "", "z", 1, false, 0, &rel, &err),
	    -1);
	free(folder);
	rm_rf(dir);
	free(dir);
}

static size_t
count_files(const char *folder, const char *sub)
{
	char *dir = fm_path_join(folder, sub);
	DIR *d = opendir(dir);
	size_t n = 0;
	struct dirent *de;
	while (d != NULL && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	if (d != NULL)
		closedir(d);
	free(dir);
	return n;
}

static void
test_batch(void **state)
{
	char *dir = make_tmpdir();
	char *folder = fm_path_join(dir, "INBOX");
	struct fm_error err;
	fm_error_clear(&err);
	assert_int_equal(fm_maildir_create(folder, &err), 0);
	struct fm_maildir_batch *b = fm_maildir_batch_new(folder);
	char *rel[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(fm_maildir_batch_add(
		                     b, i == 0 ? "abc" : NULL, "m\n", 2, i == 2,
		                     FM_MAILDIR_SEEN, &rel[i], &err),
		                 0);
	/* Staged: nothing in new/ or cur/ yet. */
	assert_int_equal(fm_maildir_batch_count(b), 3);
	assert_int_equal(count_files(folder, "tmp"), 3);
	assert_int_equal(
	    count_files(folder, "new") + count_files(folder, "cur"), 0);
	assert_int_equal(fm_maildir_batch_commit(b, false, &err), 0);
	assert_int_equal(count_files(folder, "new"), 2);
	assert_int_equal(count_files(folder, "cur"), 1);
	assert_int_equal(count_files(folder, "tmp"), 0);
	for (int i = 0; i < 3; i++) {
		char *path = fm_path_join(folder, rel[i]);
		assert_int_equal(access(path, F_OK), 0);
		free(path);
		free(rel[i]);
	}
	/* A batch dropped before its commit leaves nothing behind. */
	assert_int_equal(
	    fm_maildir_batch_add(b, NULL, "x", 1, false, 0, &rel[0], &err), 0);
	free(rel[0]);
	fm_maildir_batch_free(&b);
	assert_null(b);
	assert_int_equal(count_files(folder, "tmp"), 0);
	assert_int_equal(count_files(folder, "new"), 2);
	free(folder);
	rm_rf(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_and_deliver),
	    cmocka_unit_test(test_deliver_failure_leaves_nothing),
	    cmocka_unit_test(test_unique_names),
	    cmocka_unit_test(test_flags_format_parse),
	    cmocka_unit_test(test_set_flags_and_find),
	    cmocka_unit_test(test_mutf7_valid),
	    cmocka_unit_test(test_mutf7_invalid),
	    cmocka_unit_test(test_folder_path),
	    cmocka_unit_test(test_tagged_delivery),
	    cmocka_unit_test(test_batch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

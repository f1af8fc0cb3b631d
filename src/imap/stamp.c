/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The unchanged-folder stamp, FOLDER/.fulmar-unchanged: the server's
 * counters and the maildir's state after a pass that left both sides
 * equal (see doc/HACKING, "IMAP synchronisation"). */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "imap/imap_int.h"
#include "log/log.h"
#include "store/maildir.h"

#define STAMP_FILE ".fulmar-unchanged"
#define STAMP_MAGIC "fulmar-unchanged 2 "

/* The change times of dir/cur and dir/new, in ns; false if unreadable. */
static bool
dir_times(const char *dir, uint64_t *cur_r, uint64_t *new_r)
{
	const char *subs[2] = {"cur", "new"};
	uint64_t *out[2] = {cur_r, new_r};
	for (int k = 0; k < 2; k++) {
		char *sub = fm_path_join(dir, subs[k]);
		struct stat st;
		int r = stat(sub, &st);
		free(sub);
		if (r < 0)
			return false;
		*out[k] = (uint64_t)st.st_mtim.tv_sec * 1000000000u +
		          (uint64_t)st.st_mtim.tv_nsec;
	}
	return true;
}

void
imap_stamp_read(struct pass *p, const char *local, struct imap_stamp *st)
{
	*st = (struct imap_stamp){.local_same = -1};
	char *path = imap_folder_path(p, local, STAMP_FILE);
	char *data = NULL;
	size_t len = 0;
	struct fm_error e;
	fm_error_clear(&e);
	bool ok = fm_record_read_file(path, 4096, &data, &len, &e) == 0;
	free(path);
	if (ok) {
		char *f[ST_N];
		char *nl = memchr(data, '\n', len);
		if (nl != NULL)
			*nl = '\0';
		size_t ml = strlen(STAMP_MAGIC);
		ok = strncmp(data, STAMP_MAGIC, ml) == 0 &&
		     fm_record_split(data + ml, f, ST_N) == 0;
		for (int i = 0; ok && i < ST_N; i++)
			ok = fm_record_parse_u64(f[i], 10, UINT64_MAX,
			                         &st->v[i]) == 0;
	}
	free(data);
	st->have = ok;
}

bool
imap_stamp_local_same(struct pass *p, const char *local, struct imap_stamp *st)
{
	if (!st->have)
		return false;
	if (st->local_same >= 0)
		return st->local_same == 1;
	const uint64_t *v = st->v;
	char *dir = imap_folder_path(p, local, NULL);
	bool same;
	if (v[ST_TRUST] == 1) {
		/* The times alone: the same when nothing was renamed, added
		 * or removed since (the stamp has no names). */
		uint64_t cur, new;
		same = dir_times(dir, &cur, &new) && cur == v[ST_CUR] &&
		       new == v[ST_NEW];
	} else {
		uint64_t files, hash;
		same = fm_maildir_fingerprint(dir, &files, &hash) &&
		       files == v[ST_FILES] && hash == v[ST_HASH];
		st->listed = true;
	}
	free(dir);
	st->local_same = same;
	return same;
}

bool
imap_stamp_server_same(const struct imap_stamp *st, const uint64_t *now)
{
	bool same = st->have;
	for (int i = 0; same && i < ST_FILES; i++)
		same = st->v[i] == now[i];
	return same;
}

bool
imap_stamp_matches(struct pass *p, const char *local, struct imap_stamp *st,
                   uint64_t now[ST_N])
{
	bool same = imap_stamp_server_same(st, now) &&
	            imap_stamp_local_same(p, local, st);
	if (same && st->listed)
		imap_stamp_write(p, local, now);
	return same;
}

static uint64_t
coarse_now(void)
{
	struct timespec now;
	if (clock_gettime(CLOCK_REALTIME_COARSE, &now) < 0)
		return 0;
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static void
put(const char *path, const uint64_t v[ST_N])
{
	struct fm_buf line;
	fm_buf_init(&line, 1024);
	fm_buf_append_str(&line, STAMP_MAGIC);
	for (int i = 0; i < ST_N; i++)
		fm_buf_printf(&line, i > 0 ? " %llu" : "%llu",
		              (unsigned long long)v[i]);
	fm_buf_append_char(&line, '\n');
	struct fm_error e;
	fm_error_clear(&e);
	if (fm_file_replace_cache(path, line.data, line.len, &e) < 0)
		fm_log_warn("%s", e.user);
	fm_buf_free(&line);
}

static void
unpend(struct pass *p, const char *local)
{
	size_t k = 0;
	for (size_t i = 0; i < p->n_pending; i++) {
		if (strcmp(p->pending[i].local, local) == 0)
			free(p->pending[i].local);
		else
			p->pending[k++] = p->pending[i];
	}
	p->n_pending = k;
}

/* Writes the stamp (v[ST_FILES] and on filled here), or removes it when
 * v is NULL. The stamp is a cache that proves itself (any change to
 * either side changes what it compares), so it is written without fsync.
 *
 * The change times are trusted only when the coarse clock has moved past
 * them: a file system stamps changes with that clock's ticks, so a change
 * in the same tick as the last one could leave the time as it was; once
 * the clock is past it, any later change gets a later time. Times the
 * clock has not passed yet (the folder just changed) wait for the end of
 * the pass, imap_stamps_flush(), which waits the rest of the tick once for
 * all folders; whole-second times (a file system without finer ones) would
 * mean waiting a second, so then the names are listed instead. */
void
imap_stamp_write(struct pass *p, const char *local, uint64_t v[ST_N])
{
	char *dir = imap_folder_path(p, local, NULL);
	char *path = fm_path_join(dir, STAMP_FILE);
	unpend(p, local);
	uint64_t t = 0;
	bool ok = v != NULL && dir_times(dir, &v[ST_CUR], &v[ST_NEW]) &&
	          (t = coarse_now()) != 0;
	if (ok) {
		v[ST_TRUST] = t > v[ST_CUR] && t > v[ST_NEW];
		/* Trusted times need no names: when they differ, the
		 * folder is synced. */
		v[ST_FILES] = v[ST_HASH] = 0;
		if (!v[ST_TRUST] && v[ST_CUR] % 1000000000u != 0 &&
		    v[ST_NEW] % 1000000000u != 0) {
			p->pending = xreallocarray(p->pending, p->n_pending + 1,
			                           sizeof(*p->pending));
			struct imap_pending_stamp *ps =
			    &p->pending[p->n_pending++];
			ps->local = xstrdup(local);
			memcpy(ps->v, v, sizeof(ps->v));
			/* The old stamp no longer holds meanwhile. */
			v = NULL;
			ok = false;
		} else if (!v[ST_TRUST]) {
			ok = fm_maildir_fingerprint(dir, &v[ST_FILES],
			                            &v[ST_HASH]);
		}
	}
	if (ok)
		put(path, v);
	else if (unlink(path) < 0 && errno != ENOENT)
		fm_log_warn("%s: %s", path, strerror(errno));
	free(path);
	free(dir);
}

void
imap_stamps_flush(struct pass *p)
{
	uint64_t latest = 0;
	for (size_t i = 0; i < p->n_pending; i++)
		for (int k = ST_CUR; k <= ST_NEW; k++)
			if (p->pending[i].v[k] > latest)
				latest = p->pending[i].v[k];
	/* A tick is a few milliseconds; a clock that does not move in
	 * 50 ms is not trusted at all. */
	uint64_t t = coarse_now();
	for (int i = 0; p->n_pending > 0 && t <= latest && i < 50; i++) {
		struct timespec ms = {0, 1000000};
		nanosleep(&ms, NULL);
		t = coarse_now();
	}
	for (size_t i = 0; i < p->n_pending; i++) {
		struct imap_pending_stamp *ps = &p->pending[i];
		char *dir = imap_folder_path(p, ps->local, NULL);
		char *path = fm_path_join(dir, STAMP_FILE);
		uint64_t cur, new;
		/* Not changed since: its times are its own now. */
		if (t > latest && dir_times(dir, &cur, &new) &&
		    cur == ps->v[ST_CUR] && new == ps->v[ST_NEW]) {
			ps->v[ST_TRUST] = 1;
			put(path, ps->v);
		}
		free(path);
		free(dir);
		free(ps->local);
	}
	free(p->pending);
	p->pending = NULL;
	p->n_pending = 0;
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Drives the store for the crash tests (tests/store/crash.test):
 *
 *   store-driver deliver DATA_DIR CONFIG N   deliver messages 0..N-1
 *   store-driver change DATA_DIR CONFIG N    change message i: flag (i%3==0),
 *                                            move to Archive (1), mark seen (2)
 *   store-driver check DATA_DIR CONFIG N MODE   verify (MODE deliver|change)
 *   store-driver age-state STATE_FILE DAYS  move a POP3 state's download
 *                                           times DAYS days back
 *   store-driver rm DATA_DIR CONFIG ACCOUNT FOLDER ID   delete a message
 *                                           as the user would (journaled)
 *
 * deliver and change may be killed at any moment and run again: they carry
 * on where the store says things stand, and print "done I" after each step
 * the store confirmed. check reads the maildirs directly (not the store's
 * own summaries) and exits 1 with a reason on the first violation. */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "store/maildir.h"
#include "store/store.h"
#include "sync/state.h"

static const char *account = "acct";

static char *
message(long i)
{
	return xasprintf("From: Crash Test <crash@example.org>\r\n"
	                 "To: you@example.org\r\n"
	                 "Subject: message %ld\r\n"
	                 "Date: Sat, 21 Nov 2026 12:%02ld:%02ld +0000\r\n"
	                 "Message-ID: <%ld@crash.test>\r\n"
	                 "\r\n"
	                 "Body of message %ld.\r\n",
	                 i, (i / 60) % 60, i % 60, i, i);
}

static int
die(const struct fm_error *err)
{
	fprintf(stderr, "store-driver: %s (%s)\n", err->user, err->detail);
	return 2;
}

static char *
key_of(long i)
{
	return xasprintf("crash:%ld", i);
}

/* Where message i lives now: INBOX or Archive (by its delivery tag). */
static const char *
where(struct fm_store *s, long i, char **base_r)
{
	char *key = key_of(i);
	/* Tags name what was delivered to INBOX; a move keeps the name. */
	char *base = fm_store_find_key(s, account, "INBOX", key);
	free(key);
	*base_r = base;
	return base != NULL ? "INBOX" : NULL;
}

static int
age_state(const char *path, long days)
{
	struct fm_state *st;
	bool damaged;
	struct fm_error err;
	fm_error_clear(&err);
	if (fm_state_load(path, FM_STATE_POP3, &st, &damaged, &err) < 0)
		return die(&err);
	for (size_t i = 0; i < fm_state_count(st); i++) {
		struct fm_state_entry e = *fm_state_entry_at(st, i);
		e.first_seen -= (int64_t)days * 86400;
		if (fm_state_put(st, &e, &err) < 0)
			return die(&err);
	}
	int r = fm_state_save(st, path, &err) < 0 ? die(&err) : 0;
	fm_state_free(&st);
	return r;
}

static int
remove_message(const char *data_dir, const char *conf, const char *account_,
               const char *folder, const char *base)
{
	struct fm_config *cfg = NULL;
	struct fm_conf_diags diags;
	struct fm_error err;
	fm_error_clear(&err);
	if (fm_config_load(conf, &cfg, &diags, &err) < 0)
		return die(&err);
	fm_conf_diags_free(&diags);
	struct fm_store_opts o = {
	    .cfg = cfg, .data_dir = data_dir, .wait_for_lock = true};
	struct fm_store *s = NULL;
	int r = fm_store_open(&o, &s, &err) < 0 ||
	                fm_store_delete(s, account_, folder, base, &err) < 0
	            ? die(&err)
	            : 0;
	fm_store_close(&s);
	fm_config_free(&cfg);
	return r;
}

int
main(int argc, char **argv)
{
	long days;
	if (argc == 4 && strcmp(argv[1], "age-state") == 0 &&
	    fm_parse_long(argv[3], 0, 100000, &days) == 0)
		return age_state(argv[2], days);
	if (argc == 7 && strcmp(argv[1], "rm") == 0)
		return remove_message(argv[2], argv[3], argv[4], argv[5],
		                      argv[6]);
	if (argc < 5)
		return 64;
	const char *mode = argv[1], *data_dir = argv[2], *conf = argv[3];
	long n;
	if (fm_parse_long(argv[4], 1, 1000000, &n) < 0)
		return 64;
	struct fm_config *cfg = NULL;
	struct fm_conf_diags diags;
	struct fm_error err;
	fm_error_clear(&err);
	if (fm_config_load(conf, &cfg, &diags, &err) < 0)
		return die(&err);
	fm_conf_diags_free(&diags);
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct fm_store_opts o = {
	    .cfg = cfg, .data_dir = data_dir, .wait_for_lock = true};
	struct fm_store *s = NULL;
	if (strcmp(mode, "check") != 0 && fm_store_open(&o, &s, &err) < 0)
		return die(&err);
	int ret = 0;
	if (strcmp(mode, "deliver") == 0) {
		for (long i = 0; i < n && ret == 0; i++) {
			char *msg = message(i), *key = key_of(i);
			if (fm_store_deliver(s, account, "INBOX", key, msg,
			                     strlen(msg), 0, NULL, &err) < 0)
				ret = die(&err);
			else
				printf("done %ld\n", i);
			free(msg);
			free(key);
			if (i % 100 == 99 && fm_store_flush(s, &err) < 0)
				ret = die(&err);
		}
	} else if (strcmp(mode, "change") == 0) {
		for (long i = 0; i < n && ret == 0; i++) {
			char *base = NULL;
			const char *folder = where(s, i, &base);
			int r = 0;
			if (folder == NULL) {
				/* Not in INBOX: moved already (i % 3 == 1). */
				printf("done %ld\n", i);
				continue;
			}
			switch (i % 3) {
			case 0:
				r = fm_store_set_flags(s, account, folder, base,
				                       FM_MAILDIR_FLAGGED, 0,
				                       &err);
				break;
			case 1:
				r = fm_store_move(s, account, folder, base,
				                  "Archive", &err);
				break;
			case 2:
				r = fm_store_set_flags(s, account, folder, base,
				                       FM_MAILDIR_SEEN, 0,
				                       &err);
				break;
			}
			free(base);
			if (r < 0)
				ret = die(&err);
			else
				printf("done %ld\n", i);
			if (i % 100 == 99 && fm_store_flush(s, &err) < 0)
				ret = die(&err);
		}
	} else if (strcmp(mode, "check") == 0 && argc == 6) {
		/* Count every message by its Message-ID, straight from the
		 * files, in INBOX and Archive, with its flags. */
		long *count = calloc((size_t)n, sizeof(*count));
		char *where_v = calloc((size_t)n, 1);
		uint32_t *flags = calloc((size_t)n, sizeof(*flags));
		const char *folders[] = {"INBOX", "Archive"};
		for (int fi = 0; fi < 2; fi++) {
			for (int sub = 0; sub < 2; sub++) {
				char *dir = xasprintf(
				    "%s/mail/%s/%s/%s", data_dir, account,
				    folders[fi], sub ? "cur" : "new");
				DIR *d = opendir(dir);
				struct dirent *de;
				while (d != NULL && (de = readdir(d)) != NULL) {
					if (de->d_name[0] == '.')
						continue;
					char *p = fm_path_join(dir, de->d_name);
					FILE *f = fopen(p, "r");
					char line[256];
					long id = -1;
					while (f != NULL &&
					       fgets(line, sizeof(line), f)) {
						if (strncmp(line,
						            "Message-ID: <",
						            13) == 0) {
							char *end;
							id = strtol(line + 13,
							            &end, 10);
						}
					}
					if (f != NULL)
						fclose(f);
					free(p);
					if (id < 0 || id >= n) {
						printf("stray file %s/%s\n",
						       dir, de->d_name);
						ret = 1;
						continue;
					}
					count[id]++;
					where_v[id] = (char)fi;
					flags[id] =
					    fm_maildir_flags_parse(de->d_name);
				}
				if (d != NULL)
					closedir(d);
				free(dir);
			}
		}
		bool change = strcmp(argv[5], "change") == 0;
		for (long i = 0; i < n; i++) {
			if (count[i] != 1) {
				printf("message %ld is there %ld times\n", i,
				       count[i]);
				ret = 1;
				continue;
			}
			if (!change)
				continue;
			uint32_t want = i % 3 == 0   ? FM_MAILDIR_FLAGGED
			                : i % 3 == 2 ? FM_MAILDIR_SEEN
			                             : 0;
			int want_where = i % 3 == 1 ? 1 : 0;
			if (where_v[i] != want_where || flags[i] != want) {
				printf("message %ld: in %s with flags %x, "
				       "expected %s with %x\n",
				       i, folders[(int)where_v[i]], flags[i],
				       folders[want_where], want);
				ret = 1;
			}
		}
		free(count);
		free(where_v);
		free(flags);
		if (ret == 0)
			printf("ok: %ld messages, each exactly once\n", n);
	} else {
		ret = 64;
	}
	fm_store_close(&s);
	fm_config_free(&cfg);
	return ret;
}

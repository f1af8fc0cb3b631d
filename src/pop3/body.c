/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Opening a message whose body is still on the server: a header stub
 * (download = headers, or max SIZE) gets its body when it is opened.
 * fm_account_fetch_body() is the protocol-neutral entry; the POP3 part finds
 * the message by its UIDL (or its Message-ID key), checks that the server
 * still has the same message behind it, RETRs it and replaces the stub
 * atomically. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "mime/mime.h"
#include "pop3/pop3_int.h"
#include "store/store.h"
#include "sync/state.h"

bool
fm_mail_looks_partial(const char *data, size_t len)
{
	/* The header block ends at the first empty line; a stub has
	 * nothing after it (or has no empty line at all). */
	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n')
			continue;
		size_t k = i + 1;
		if (k < len && data[k] == '\r')
			k++;
		if (k < len && data[k] == '\n')
			return k + 1 == len;
		if (k >= len)
			return true;
	}
	return true;
}

bool
fm_mail_is_partial(const char *data_dir, const struct fm_account *acct,
                   const char *folder, const char *base)
{
	/* Both kinds of state mark a stub with the same local keyword, and
	 * a state file is only ever replaced whole: reading it without the
	 * account's lock is safe. */
	char *dir = fm_store_folder_dir(data_dir, acct->name, folder);
	char *path = fm_path_join(dir, ".fulmar-state");
	free(dir);
	struct fm_state *st = NULL;
	struct fm_error err;
	fm_error_clear(&err);
	bool partial = false;
	if (fm_state_load(path,
	                  acct->protocol == FM_PROTO_POP3 ? FM_STATE_POP3
	                                                  : FM_STATE_IMAP,
	                  &st, NULL, &err) == 0) {
		const struct fm_state_entry *e = fm_state_find_base(st, base);
		struct pop3_kw kw;
		pop3_kw_parse(e != NULL ? e->keywords : NULL, &kw);
		partial = kw.partial;
		fm_state_free(&st);
	}
	free(path);
	return partial;
}

/* The Message-ID of the message in the store, or NULL. */
static char *
stored_message_id(struct fm_store *store, const char *account,
                  const char *folder, const char *base)
{
	struct fm_error err;
	fm_error_clear(&err);
	struct fm_store_info li;
	if (fm_store_lookup(store, account, folder, base, &li, &err) != 1)
		return NULL;
	char *dir =
	    fm_store_folder_dir(fm_store_data_dir(store), account, folder);
	char *path = fm_path_join(dir, li.file);
	free(dir);
	free(li.file);
	struct fm_envelope *env = NULL;
	char *id = NULL;
	if (fm_mime_envelope_read(path, &env, &err) == 0) {
		if (env->message_id != NULL)
			id = xstrdup(env->message_id);
		fm_envelope_free(&env);
	}
	free(path);
	return id;
}

static int
gone(const struct fm_account *acct, struct fm_error *err)
{
	return fm_error_set(err, FM_ERR_PERMANENT,
	                    _("%s no longer has this message, so its body "
	                      "cannot be downloaded"),
	                    acct->host);
}

int
fm_pop3_fetch_body(const struct fm_account *acct, struct fm_store *store,
                   const struct fm_session_opts *o, const char *folder,
                   const char *base, struct fm_error *err)
{
	if (strcmp(folder, pop3_folder()) != 0)
		return 0; /* not from the server */
	char *state_path = pop3_state_path(store, acct);
	struct fm_state *st = NULL;
	struct fm_pop3 *s = NULL;
	struct pop3_msg *msgs = NULL;
	size_t n = 0;
	char *uidl = NULL, *stub_id = NULL;
	struct fm_buf data;
	fm_buf_init(&data, o->limits.max_literal);
	int ret = -1;
	if (pop3_state_open(store, acct, state_path, &st, err) < 0)
		goto out;
	const struct fm_state_entry *e = fm_state_find_base(st, base);
	struct pop3_kw kw = {0};
	if (e != NULL)
		pop3_kw_parse(e->keywords, &kw);
	if (e == NULL || !kw.partial) {
		ret = 0; /* whole already, or not from the server */
		goto out;
	}
	uidl = xstrdup(e->uidl);
	int64_t first_seen = e->first_seen;

	bool have_uidl;
	if (fm_pop3_open(acct, o, &s, err) < 0 ||
	    pop3_listing(s, &msgs, &n, &have_uidl, err) < 0)
		goto out;
	if (!have_uidl) {
		if (acct->pop3_no_uidl != FM_POP3_NO_UIDL_MESSAGE_ID) {
			pop3_err_no_uidl(s, err);
			goto out;
		}
		if (pop3_keys_from_headers(
		        s, msgs, n, kw.has_size ? &kw.size : NULL, err) < 0)
			goto out;
	}
	const struct pop3_msg *m = NULL;
	for (size_t i = 0; i < n && m == NULL; i++)
		if (msgs[i].uidl != NULL && strcmp(msgs[i].uidl, uidl) == 0)
			m = &msgs[i];
	/* Gone, or the UIDL now names another message. */
	if (m == NULL || (kw.has_size && m->size != kw.size)) {
		gone(acct, err);
		goto out;
	}
	if (pop3_send(s, err, "RETR %u", m->num) < 0 || pop3_flush(s, err) < 0)
		goto out;
	int r = pop3_status(s, "RETR", err);
	if (r <= 0) {
		if (r == 0)
			pop3_refused(s, "RETR", err);
		goto out;
	}
	if (pop3_body(s, "RETR", &data, err) < 0)
		goto out;
	/* A server that reuses UIDLs without a size change: the headers
	 * tell. */
	stub_id = stored_message_id(store, acct->name, folder, base);
	if (stub_id != NULL) {
		struct fm_envelope *env = NULL;
		fm_mime_envelope_parse(data.data, data.len, &env, NULL);
		bool other = env->message_id == NULL ||
		             strcmp(env->message_id, stub_id) != 0;
		fm_envelope_free(&env);
		if (other) {
			gone(acct, err);
			goto out;
		}
	}
	if (fm_store_replace(store, acct->name, folder, base, data.data,
	                     data.len, err) < 0)
		goto out;
	kw.partial = false;
	char *keywords = pop3_kw_format(&kw);
	struct fm_state_entry ne = {
	    .uidl = uidl,
	    .first_seen = first_seen,
	    .base = base,
	    .keywords = keywords,
	};
	r = fm_state_put(st, &ne, err);
	free(keywords);
	if (r < 0 || fm_state_save(st, state_path, err) < 0)
		goto out;
	/* The body is stored; a QUIT that fails costs nothing (no DELE was
	 * sent). */
	struct fm_error ignore;
	fm_error_clear(&ignore);
	pop3_quit(s, &ignore);
	ret = 0;
out:
	if (ret < 0)
		fm_pop3_abort(&s);
	fm_pop3_close(&s);
	pop3_msgs_free(msgs, n);
	fm_state_free(&st);
	fm_buf_free(&data);
	free(uidl);
	free(stub_id);
	free(state_path);
	return ret;
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Steps 1 and 2 of an IMAP pass (see sync.c): the folders on both sides
 * (LIST, special use, subscriptions, the local maildirs) and which of them
 * the pass takes, folders created where they are missing and subscribed,
 * and LIST-STATUS. Step 3 is in replay.c. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imap/imap_int.h"
#include "log/log.h"
#include "store/maildir.h"

void
imap_folders_free(struct pass *p)
{
	for (size_t i = 0; i < p->n_folders; i++) {
		free(p->folders[i].local);
		free(p->folders[i].server);
		free(p->folders[i].role);
	}
	free(p->folders);
	p->folders = NULL;
	p->n_folders = 0;
}

struct folder *
imap_folder_by_local(struct pass *p, const char *local)
{
	for (size_t i = 0; i < p->n_folders; i++)
		if (strcmp(p->folders[i].local, local) == 0)
			return &p->folders[i];
	return NULL;
}

static struct folder *
folder_add(struct pass *p, const char *local)
{
	struct folder *f = imap_folder_by_local(p, local);
	if (f != NULL)
		return f;
	p->folders =
	    xreallocarray(p->folders, p->n_folders + 1, sizeof(*p->folders));
	f = &p->folders[p->n_folders++];
	memset(f, 0, sizeof(*f));
	f->local = xstrdup(local);
	f->selectable = true;
	return f;
}

char *
imap_folder_path(struct pass *p, const char *local, const char *name)
{
	char *dir = fm_store_folder_dir(fm_store_data_dir(p->store),
	                                p->acct->name, local);
	if (name == NULL)
		return dir;
	char *path = fm_path_join(dir, name);
	free(dir);
	return path;
}

char *
imap_state_path(struct pass *p, const char *local)
{
	return imap_folder_path(p, local, STATE_FILE);
}

/* `folders` patterns: '*' matches anything, '%' anything but '/'. */
static bool
glob(const char *pat, const char *s)
{
	if (*pat == '\0')
		return *s == '\0';
	if (*pat == '*' || *pat == '%') {
		for (const char *t = s;; t++) {
			if (glob(pat + 1, t))
				return true;
			if (*t == '\0' || (*pat == '%' && *t == '/'))
				return false;
		}
	}
	return *s != '\0' && *pat == *s && glob(pat + 1, s + 1);
}

enum verdict { PATTERN_NONE, PATTERN_MATCH, PATTERN_EXCLUDED };

/* What the account's `folders` patterns say about a local folder: an
 * exclusion wins over any pattern that matches. */
static enum verdict
patterns(const struct fm_account *a, const char *local)
{
	bool match = false;
	for (size_t i = 0; i < a->n_folders; i++) {
		const char *pat = a->folders[i];
		if (pat[0] == '!') {
			if (glob(pat + 1, local))
				return PATTERN_EXCLUDED;
		} else if (glob(pat, local)) {
			match = true;
		}
	}
	return match ? PATTERN_MATCH : PATTERN_NONE;
}

static const char *const ROLES[] = {"Sent",    "Drafts", "Trash",  "Junk",
                                    "Archive", "All",    "Flagged"};
/* The first N_FILING_ROLES are the special uses `subscribed` always
 * takes: folders fulmar files mail into. All and Flagged are views of
 * mail kept elsewhere. */
enum { N_FILING_ROLES = 5 };

static bool
filing_role(const char *role)
{
	for (size_t r = 0; role != NULL && r < N_FILING_ROLES; r++)
		if (strcmp(role, ROLES[r]) == 0)
			return true;
	return false;
}

static bool
role_listed(const struct pass *p, const char *role)
{
	for (size_t i = 0; i < p->n_folders; i++)
		if (p->folders[i].on_server && p->folders[i].role != NULL &&
		    strcmp(p->folders[i].role, role) == 0)
			return true;
	return false;
}

/* Whether `subscribed` takes the folder: INBOX; what the server lists as
 * subscribed; the special-use folders fulmar files into (for a use the
 * server marks on no folder, the folder of that name, where fulmar files
 * then); and a local folder never synced: one made here, which step 2
 * creates on the server if need be and subscribes. A synced folder gone
 * from the server is taken too, for step 2's warning. */
static bool
in_subscribed(const struct pass *p, const struct folder *f)
{
	if (strcmp(f->local, "INBOX") == 0)
		return true;
	if (f->on_local && (!f->on_server || !f->has_state))
		return true;
	if (!f->on_server)
		return false;
	if (f->subscribed || filing_role(f->role))
		return true;
	for (size_t r = 0; r < N_FILING_ROLES; r++)
		if (strcmp(f->local, ROLES[r]) == 0 &&
		    !role_listed(p, ROLES[r]))
			return true;
	return false;
}

static bool
requested(const struct fm_imap_sync_opts *so, const char *local)
{
	for (size_t i = 0; i < so->n_folders; i++)
		if (strcmp(so->folders[i], local) == 0)
			return true;
	return false;
}

void
imap_choose_folders(struct pass *p)
{
	for (size_t i = 0; i < p->n_folders; i++) {
		struct folder *f = &p->folders[i];
		if (p->so->folders != NULL) {
			/* Named on the command line: subscribed or not. */
			f->wanted = requested(p->so, f->local);
			continue;
		}
		enum verdict v = patterns(p->acct, f->local);
		f->wanted = v == PATTERN_MATCH ||
		            (v == PATTERN_NONE && p->acct->folders_subscribed &&
		             in_subscribed(p, f));
	}
}

/* Reads the answer to ENABLE QRESYNC sent with tag: p->qresync when the
 * server says ENABLED QRESYNC. A NO or BAD only leaves it off. */
static int
read_enabled(struct pass *p, int tag, struct fm_error *err)
{
	bool ok;
	if (imap_read_answer(p, tag, true, &ok, _("enabling QRESYNC"), err) < 0)
		return -1;
	const struct mailimap_response_info *ri = p->s->imap_response_info;
	for (clistiter *it = ok && ri != NULL && ri->rsp_extension_list != NULL
	                         ? clist_begin(ri->rsp_extension_list)
	                         : NULL;
	     it != NULL; it = clist_next(it)) {
		const struct mailimap_extension_data *ed = clist_content(it);
		const struct mailimap_capability_data *cd = ed->ext_data;
		if (ed->ext_extension->ext_id != MAILIMAP_EXTENSION_ENABLE ||
		    cd == NULL)
			continue;
		for (clistiter *c = clist_begin(cd->cap_list); c != NULL;
		     c = clist_next(c)) {
			const struct mailimap_capability *cap =
			    clist_content(c);
			if (cap->cap_type == MAILIMAP_CAPABILITY_NAME &&
			    fm_str_ieq(cap->cap_data.cap_name, "QRESYNC"))
				p->qresync = true;
		}
	}
	return 0;
}

/* LIST "" "*" RETURN (SUBSCRIBED SPECIAL-USE) (RFC 5258, 6154): every
 * folder and whether it is subscribed, in the one round trip a plain LIST
 * takes. libetpan has no API for return options, but its LIST parser
 * takes \Subscribed like any other flag. Subscribed folders that do not
 * exist are not listed (there is no SUBSCRIBED selection option). With
 * enable, ENABLE QRESYNC goes right before it, without waiting for its
 * answer: the LIST does not depend on it, and the pass saves a round
 * trip. */
static int
list_extended(struct pass *p, bool enable, clist **list_r, struct fm_error *err)
{
	*list_r = NULL;
	int tag_enable = 0;
	if (enable) {
		if (imap_send(p, "ENABLE QRESYNC\r\n", _("enabling QRESYNC"),
		              err) < 0)
			return -1;
		tag_enable = p->s->imap_tag;
	}
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "LIST \"\" \"*\" RETURN (SUBSCRIBED%s)\r\n",
	         fm_imap_has_cap(p->imap, "SPECIAL-USE") ? " SPECIAL-USE" : "");
	if (imap_send(p, cmd, _("listing folders"), err) < 0)
		return -1;
	int tag_list = p->s->imap_tag;
	bool ok;
	if ((enable && read_enabled(p, tag_enable, err) < 0) ||
	    imap_read_answer(p, tag_list, false, &ok, _("listing folders"),
	                     err) < 0)
		return -1;
	clist *list = p->s->imap_response_info->rsp_mailbox_list;
	p->s->imap_response_info->rsp_mailbox_list = NULL;
	if (!ok) {
		if (list != NULL)
			mailimap_list_result_free(list);
		return fm_imap_fail(p->imap, _("listing folders"), err);
	}
	*list_r = list;
	return 0;
}

/* Without LIST-EXTENDED: LSUB "" "*" marks the listed folders that are
 * subscribed. LSUB also names subscriptions of folders that do not
 * exist: they change nothing. */
static int
list_subscribed(struct pass *p, struct fm_error *err)
{
	clist *list = NULL;
	if (mailimap_lsub(p->s, "", "*", &list) != MAILIMAP_NO_ERROR)
		return fm_imap_fail(p->imap, _("listing subscribed folders"),
		                    err);
	for (clistiter *it = list != NULL ? clist_begin(list) : NULL;
	     it != NULL; it = clist_next(it)) {
		const struct mailimap_mailbox_list *mb = clist_content(it);
		for (size_t i = 0; mb->mb_name != NULL && i < p->n_folders;
		     i++) {
			struct folder *f = &p->folders[i];
			if (f->server != NULL &&
			    strcmp(f->server, mb->mb_name) == 0)
				f->subscribed = true;
		}
	}
	if (list != NULL)
		mailimap_list_result_free(list);
	p->subs_known = true;
	return 0;
}

/* Step 1: the server's folders, with their special use and, when the
 * server can tell in the same command or the account's `folders` needs
 * it, their subscription. QRESYNC is enabled on the way, for this session
 * alone: it reads EXISTS only straight after a SELECT, which states it
 * afresh, never after an expunge (which would come as VANISHED,
 * uncounted by libetpan). */
int
imap_list_server(struct pass *p, struct fm_error *err)
{
	clist *list = NULL;
	bool enable = fm_imap_has_cap(p->imap, "ENABLE") &&
	              fm_imap_has_cap(p->imap, "QRESYNC");
	if (fm_imap_has_cap(p->imap, "LIST-EXTENDED")) {
		if (list_extended(p, enable, &list, err) < 0)
			return -1;
		p->subs_known = true;
	} else if (enable &&
	           fm_imap_enable(p->imap, "QRESYNC", &p->qresync, err) < 0) {
		return -1;
	} else if (mailimap_list(p->s, "", "*", &list) != MAILIMAP_NO_ERROR) {
		return fm_imap_fail(p->imap, _("listing folders"), err);
	}
	for (clistiter *it = list != NULL ? clist_begin(list) : NULL;
	     it != NULL; it = clist_next(it)) {
		const struct mailimap_mailbox_list *mb = clist_content(it);
		if (mb->mb_name == NULL)
			continue;
		bool selectable = true, subscribed = false;
		const char *role = NULL;
		const struct mailimap_mbx_list_flags *fl = mb->mb_flag;
		if (fl != NULL &&
		    fl->mbf_type == MAILIMAP_MBX_LIST_FLAGS_SFLAG &&
		    fl->mbf_sflag == MAILIMAP_MBX_LIST_SFLAG_NOSELECT)
			selectable = false;
		for (clistiter *o = fl != NULL && fl->mbf_oflags != NULL
		                        ? clist_begin(fl->mbf_oflags)
		                        : NULL;
		     o != NULL; o = clist_next(o)) {
			const struct mailimap_mbx_list_oflag *of =
			    clist_content(o);
			if (of->of_type != MAILIMAP_MBX_LIST_OFLAG_FLAG_EXT ||
			    of->of_flag_ext == NULL)
				continue;
			const char *x = of->of_flag_ext;
			x += x[0] == '\\';
			if (fm_str_ieq(x, "NonExistent") ||
			    fm_str_ieq(x, "Noselect"))
				selectable = false;
			if (fm_str_ieq(x, "Subscribed"))
				subscribed = true;
			for (size_t r = 0; r < FM_ARRAY_LEN(ROLES); r++)
				if (fm_str_ieq(x, ROLES[r]))
					role = ROLES[r];
		}
		char *utf8 = NULL, *local = NULL;
		struct fm_error e2;
		fm_error_clear(&e2);
		if (fm_mutf7_to_utf8(mb->mb_name, &utf8, &e2) < 0 ||
		    fm_maildir_folder_path(utf8, mb->mb_delimiter, &local,
		                           &e2) < 0) {
			char shown[128];
			fm_str_printable(mb->mb_name, shown, sizeof(shown));
			fm_log_warn(_("%s: skipping the server folder %s: %s"),
			            p->acct->name, shown, e2.user);
			free(utf8);
			continue;
		}
		free(utf8);
		if (fm_store_local_only(local)) {
			fm_log_warn(_("%s: the server folder %s is not synced: "
			              "fulmar keeps local-only mail under that "
			              "name"),
			            p->acct->name, local);
			free(local);
			continue;
		}
		if (strcmp(local, "INBOX") == 0 || p->delim == '\0')
			p->delim = mb->mb_delimiter;
		struct folder *f = folder_add(p, local);
		free(local);
		if (f->on_server)
			continue; /* listed twice */
		f->on_server = true;
		f->server = xstrdup(mb->mb_name);
		f->delim = mb->mb_delimiter;
		f->selectable = selectable;
		f->subscribed = subscribed;
		f->role = role != NULL ? xstrdup(role) : NULL;
	}
	if (list != NULL)
		mailimap_list_result_free(list);
	/* Subscriptions matter only to `subscribed`, and not when the
	 * folders to sync were named. */
	if (!p->subs_known && p->acct->folders_subscribed &&
	    p->so->folders == NULL)
		return list_subscribed(p, err);
	return 0;
}

/* Local folders, and whether they were synced before. */
int
imap_list_local(struct pass *p, struct fm_error *err)
{
	char **names = NULL;
	size_t n = 0;
	if (fm_store_account_folders(p->store, p->acct->name, &names, &n, err) <
	    0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!fm_store_local_only(names[i]))
			folder_add(p, names[i])->on_local = true;
		free(names[i]);
	}
	free(names);
	for (size_t i = 0; i < p->n_folders; i++) {
		struct folder *f = &p->folders[i];
		char *path = imap_state_path(p, f->local);
		f->has_state = f->on_local && access(path, F_OK) == 0;
		free(path);
	}
	return 0;
}

/* Remembers which local folder has which special use, for the sending
 * side (the Sent copy) and the UI (fm_store_set_special_use). */
void
imap_save_roles(struct pass *p)
{
	const char **roles = xcalloc(p->n_folders + 1, sizeof(*roles));
	const char **names = xcalloc(p->n_folders + 1, sizeof(*names));
	size_t n = 0;
	for (size_t i = 0; i < p->n_folders; i++)
		if (p->folders[i].role != NULL && p->folders[i].on_server) {
			roles[n] = p->folders[i].role;
			names[n++] = p->folders[i].local;
		}
	struct fm_error e;
	fm_error_clear(&e);
	if (fm_store_set_special_use(fm_store_data_dir(p->store), p->acct->name,
	                             roles, names, n, &e) < 0)
		fm_log_warn("%s", e.user);
	free(roles);
	free(names);
}

/* The server name (modified UTF-7) for a local folder path. */
static int
server_name(struct pass *p, const char *local, char **name_r,
            struct fm_error *err)
{
	return fm_imap_mailbox_name(local, p->delim != '\0' ? p->delim : '/',
	                            name_r, err);
}

/* SUBSCRIBE: a folder made here keeps being synced under `subscribed`,
 * and other clients show it. A refusal is only a warning: the folder is
 * synced now all the same. */
static int
subscribe(struct pass *p, struct folder *f, struct fm_error *err)
{
	if (mailimap_subscribe(p->s, f->server) == MAILIMAP_NO_ERROR) {
		f->subscribed = true;
		return 0;
	}
	if (fm_net_failed(fm_imap_conn(p->imap))) {
		char what[512];
		snprintf(what, sizeof(what), _("subscribing to the folder %s"),
		         f->local);
		return fm_imap_fail(p->imap, what, err);
	}
	char text[256];
	fm_str_printable(p->s->imap_response != NULL ? p->s->imap_response : "",
	                 text, sizeof(text));
	fm_log_warn(_("%s: the server refused to subscribe to %s (%s); "
	              "with folders = subscribed, later passes leave it "
	              "out"),
	            p->acct->name, f->local, text);
	return 0;
}

/* Step 2: folders missing on one side; folders made here subscribed. */
int
imap_create_folders(struct pass *p, struct fm_error *err)
{
	for (size_t i = 0; i < p->n_folders; i++) {
		struct folder *f = &p->folders[i];
		if (!f->wanted) {
			if (f->on_server && f->on_local && f->has_state &&
			    p->so->folders == NULL)
				fm_log_info(_("%s: the folders setting leaves "
				              "out %s now; its local copy is "
				              "kept as it is"),
				            p->acct->name, f->local);
			continue;
		}
		if (f->on_server && !f->on_local && f->selectable) {
			if (fm_store_ensure_folder(p->store, p->acct->name,
			                           f->local, err) < 0)
				return -1;
			f->on_local = true;
			p->stats->created++;
		} else if (!f->on_server && f->on_local && !f->has_state) {
			char *name = NULL;
			if (server_name(p, f->local, &name, err) < 0)
				return -1;
			if (mailimap_create(p->s, name) != MAILIMAP_NO_ERROR) {
				free(name);
				char what[512];
				snprintf(what, sizeof(what),
				         _("creating the folder %s"), f->local);
				return fm_imap_fail(p->imap, what, err);
			}
			f->server = name;
			f->delim = p->delim;
			f->on_server = true;
			p->stats->created++;
			if (subscribe(p, f, err) < 0)
				return -1;
		} else if (f->on_server && f->on_local && !f->has_state &&
		           f->selectable && !f->subscribed &&
		           strcmp(f->local, "INBOX") != 0) {
			/* Made here under a name the server has: ours now
			 * (INBOX needs no subscription to be taken). */
			if (subscribe(p, f, err) < 0)
				return -1;
		} else if (!f->on_server && f->on_local && f->has_state) {
			fm_log_warn(_("%s: the folder %s is gone from the "
			              "server; its local copy is kept and no "
			              "longer synced"),
			            p->acct->name, f->local);
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * LIST-STATUS (RFC 5819): every folder's counters in one command, so a
 * folder whose stamp still holds is skipped without a SELECT. libetpan
 * has no API for it: the command is written and its answer read by hand,
 * between two libetpan commands (its buffer is empty then). A folder
 * name sent as a literal, or anything unexpected, just leaves that
 * folder without a status: it is then SELECTed as usual.
 */

#define LIST_STATUS_TAG "fmls1"

/* "* STATUS name (MESSAGES n UIDNEXT n UIDVALIDITY n HIGHESTMODSEQ n)" */
static void
take_status(struct pass *p, const char *line)
{
	const char *q = line + strlen("* STATUS ");
	char name[1024];
	if (!imap_read_astring(&q, name, sizeof(name)) ||
	    strncmp(q, " (", 2) != 0)
		return;
	q += 2;
	uint64_t v[4] = {0, 0, 0, 0};
	bool have[4] = {false, false, false, false};
	static const char *const keys[4] = {"MESSAGES", "UIDNEXT",
	                                    "UIDVALIDITY", "HIGHESTMODSEQ"};
	while (*q != '\0' && *q != ')') {
		size_t kl = strcspn(q, " )");
		const char *num = q + kl;
		if (*num != ' ')
			return;
		num++;
		char *end;
		errno = 0;
		unsigned long long x = strtoull(num, &end, 10);
		if (end == num || errno != 0)
			return;
		for (int k = 0; k < 4; k++)
			if (strlen(keys[k]) == kl &&
			    strncmp(q, keys[k], kl) == 0) {
				v[k] = x;
				have[k] = true;
			}
		q = end;
		q += *q == ' ';
	}
	if (!have[0] || !have[1] || !have[2] || !have[3] || v[1] > UINT32_MAX ||
	    v[2] > UINT32_MAX || v[0] > UINT32_MAX)
		return;
	for (size_t i = 0; i < p->n_folders; i++) {
		struct folder *f = &p->folders[i];
		if (f->server != NULL && strcmp(f->server, name) == 0) {
			f->has_status = true;
			f->st_messages = (uint32_t)v[0];
			f->st_uidnext = (uint32_t)v[1];
			f->st_validity = (uint32_t)v[2];
			f->st_modseq = v[3];
		}
	}
}

int
imap_list_status_ask(struct pass *p, bool *asked_r, struct fm_error *err)
{
	*asked_r = false;
	if (!p->condstore || !fm_imap_has_cap(p->imap, "LIST-STATUS"))
		return 0;
	static const char cmd[] =
	    LIST_STATUS_TAG " LIST \"\" \"*\" RETURN "
	                    "(STATUS (MESSAGES UIDNEXT UIDVALIDITY "
	                    "HIGHESTMODSEQ))\r\n";
	mailstream *st = p->s->imap_stream;
	if (st->read_buffer_len > 0)
		return 0; /* not between two commands: leave it */
	if (fm_net_write(fm_imap_conn(p->imap), st, cmd, strlen(cmd), err) < 0)
		return -1;
	*asked_r = true;
	return 0;
}

int
imap_list_status_read(struct pass *p, struct fm_error *err)
{
	static const char tag[] = LIST_STATUS_TAG;
	struct fm_net_conn *conn = fm_imap_conn(p->imap);
	mailstream *st = p->s->imap_stream;
	for (;;) {
		char *line = fm_net_read_line(conn, st);
		if (line == NULL)
			return fm_net_error(conn, _("listing folder status"),
			                    err);
		bool done = strncmp(line, tag, strlen(tag)) == 0 &&
		            line[strlen(tag)] == ' ';
		if (done) {
			if (strncmp(line + strlen(tag), " OK", 3) != 0)
				for (size_t i = 0; i < p->n_folders; i++)
					p->folders[i].has_status = false;
			free(line);
			return 0;
		}
		if (strncmp(line, "* STATUS ", 9) == 0)
			take_status(p, line);
		free(line);
	}
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Between libetpan's IMAP structures and fulmar's: flags and keywords,
 * UID sets, FETCH responses, and line ends. */
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

/* ------------------------------------------------------------------------
 * Flags: IMAP <-> maildir bits, keywords as sorted strings.
 */

struct kwset {
	char **v;
	size_t n;
};

static void
kwset_add(struct kwset *k, const char *kw)
{
	for (size_t i = 0; i < k->n; i++)
		if (fm_str_ieq(k->v[i], kw))
			return;
	k->v = xreallocarray(k->v, k->n + 1, sizeof(*k->v));
	k->v[k->n++] = xstrdup(kw);
}

static int
cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The set as "a b c" (sorted), or NULL when empty; frees the set. */
static char *
kwset_take(struct kwset *k)
{
	if (k->n == 0) {
		free(k->v);
		return NULL;
	}
	qsort(k->v, k->n, sizeof(*k->v), cmp_strp);
	struct fm_buf b;
	fm_buf_init(&b, SIZE_MAX / 2);
	for (size_t i = 0; i < k->n; i++) {
		if (i > 0)
			fm_buf_append_char(&b, ' ');
		fm_buf_append_str(&b, k->v[i]);
		free(k->v[i]);
	}
	free(k->v);
	return fm_buf_steal(&b);
}

/* A keyword worth keeping: an IMAP atom of printable ASCII. */
static bool
keyword_ok(const char *kw)
{
	if (kw[0] == '\0' || strlen(kw) > 256)
		return false;
	for (const char *c = kw; *c != '\0'; c++)
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f ||
		    strchr("(){%*\"\\]", *c) != NULL)
			return false;
	return true;
}

/* keywords without PARTIAL (newly allocated, NULL when nothing is left);
 * *had_r says whether it was there. */
char *
imap_kw_strip(const char *keywords, bool *had_r)
{
	*had_r = false;
	if (keywords == NULL)
		return NULL;
	struct fm_buf b;
	fm_buf_init(&b, SIZE_MAX / 2);
	for (const char *p = keywords; *p != '\0';) {
		size_t n = strcspn(p, " ");
		if (n == strlen(PARTIAL) && strncmp(p, PARTIAL, n) == 0) {
			*had_r = true;
		} else if (n > 0) {
			if (b.len > 0)
				fm_buf_append_char(&b, ' ');
			fm_buf_append(&b, p, n);
		}
		p += n;
		p += strspn(p, " ");
	}
	if (b.len == 0) {
		fm_buf_free(&b);
		return NULL;
	}
	return fm_buf_steal(&b);
}

/* Maildir bits and keywords of an IMAP flag list (FETCH FLAGS). */
static uint32_t
flags_from_fetch(clist *list, char **keywords_r)
{
	uint32_t f = 0;
	struct kwset kw = {0};
	for (clistiter *it = list != NULL ? clist_begin(list) : NULL;
	     it != NULL; it = clist_next(it)) {
		const struct mailimap_flag_fetch *ff = clist_content(it);
		if (ff->fl_type != MAILIMAP_FLAG_FETCH_OTHER ||
		    ff->fl_flag == NULL)
			continue;
		const struct mailimap_flag *fl = ff->fl_flag;
		switch (fl->fl_type) {
		case MAILIMAP_FLAG_ANSWERED:
			f |= FM_MAILDIR_REPLIED;
			break;
		case MAILIMAP_FLAG_FLAGGED:
			f |= FM_MAILDIR_FLAGGED;
			break;
		case MAILIMAP_FLAG_DELETED:
			f |= FM_MAILDIR_TRASHED;
			break;
		case MAILIMAP_FLAG_SEEN:
			f |= FM_MAILDIR_SEEN;
			break;
		case MAILIMAP_FLAG_DRAFT:
			f |= FM_MAILDIR_DRAFT;
			break;
		case MAILIMAP_FLAG_KEYWORD:
			if (fl->fl_data.fl_keyword == NULL)
				break;
			if (fm_str_ieq(fl->fl_data.fl_keyword, "$Forwarded"))
				f |= FM_MAILDIR_PASSED;
			else if (keyword_ok(fl->fl_data.fl_keyword) &&
			         !fm_str_ieq(fl->fl_data.fl_keyword, PARTIAL))
				kwset_add(&kw, fl->fl_data.fl_keyword);
			break;
		default:
			break; /* \Recent, unknown \Extensions */
		}
	}
	*keywords_r = kwset_take(&kw);
	return f;
}

/* An IMAP flag list for bits and a space-separated keyword list (either
 * may be empty); NULL when both are. */
struct mailimap_flag_list *
imap_flag_list(uint32_t bits, const char *keywords)
{
	if ((bits & FM_MAILDIR_STANDARD_FLAGS) == 0 &&
	    (keywords == NULL || keywords[0] == '\0'))
		return NULL;
	struct mailimap_flag_list *fl = mailimap_flag_list_new_empty();
	if (bits & FM_MAILDIR_REPLIED)
		mailimap_flag_list_add(fl, mailimap_flag_new_answered());
	if (bits & FM_MAILDIR_FLAGGED)
		mailimap_flag_list_add(fl, mailimap_flag_new_flagged());
	if (bits & FM_MAILDIR_TRASHED)
		mailimap_flag_list_add(fl, mailimap_flag_new_deleted());
	if (bits & FM_MAILDIR_SEEN)
		mailimap_flag_list_add(fl, mailimap_flag_new_seen());
	if (bits & FM_MAILDIR_DRAFT)
		mailimap_flag_list_add(fl, mailimap_flag_new_draft());
	if (bits & FM_MAILDIR_PASSED)
		mailimap_flag_list_add(
		    fl, mailimap_flag_new_flag_keyword(xstrdup("$Forwarded")));
	for (const char *p = keywords; p != NULL && *p != '\0';) {
		size_t n = strcspn(p, " ");
		if (n > 0)
			mailimap_flag_list_add(
			    fl, mailimap_flag_new_flag_keyword(xstrndup(p, n)));
		p += n;
		p += strspn(p, " ");
	}
	return fl;
}

/* ------------------------------------------------------------------------
 * UID sets.
 */

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* uids (sorted here) as a sequence set: "3:7,9". */
char *
imap_uid_set_text(uint32_t *uids, size_t n)
{
	qsort(uids, n, sizeof(*uids), cmp_u32);
	struct fm_buf b;
	fm_buf_init(&b, SIZE_MAX / 2);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && uids[j + 1] <= uids[j] + 1)
			j++;
		if (i > 0)
			fm_buf_append_char(&b, ',');
		if (uids[i] == uids[j])
			fm_buf_printf(&b, "%u", (unsigned)uids[i]);
		else
			fm_buf_printf(&b, "%u:%u", (unsigned)uids[i],
			              (unsigned)uids[j]);
		i = j + 1;
	}
	return b.data;
}

/* A set of the n UIDs (sorted here), merged into ranges. */
struct mailimap_set *
imap_uid_set(uint32_t *uids, size_t n)
{
	qsort(uids, n, sizeof(*uids), cmp_u32);
	struct mailimap_set *set = mailimap_set_new_empty();
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && uids[j + 1] <= uids[j] + 1)
			j++;
		if (uids[i] == uids[j])
			mailimap_set_add_single(set, uids[i]);
		else
			mailimap_set_add_interval(set, uids[i], uids[j]);
		i = j + 1;
	}
	return set;
}

/* The Message-ID in a "Message-ID: <...>" header block, without its
 * brackets, or NULL. */
static char *
msgid_from_header(const char *h, size_t len)
{
	const char *lt = memchr(h, '<', len);
	if (lt == NULL)
		return NULL;
	const char *gt = memchr(lt, '>', len - (size_t)(lt - h));
	if (gt == NULL || gt - lt > 998)
		return NULL;
	for (const char *c = lt; c <= gt; c++)
		if ((unsigned char)*c <= ' ')
			return NULL;
	/* As the store's summaries keep it: without the brackets. */
	return gt > lt + 1 ? xstrndup(lt + 1, (size_t)(gt - lt) - 1) : NULL;
}

char *
imap_quoted(const char *s)
{
	struct fm_buf b;
	fm_buf_init(&b, 2 * strlen(s) + 3);
	fm_buf_append_char(&b, '"');
	for (const char *p = s; *p != '\0'; p++) {
		if ((unsigned char)*p < ' ' || (unsigned char)*p >= 0x7f) {
			fm_buf_free(&b);
			return NULL;
		}
		if (*p == '"' || *p == '\\')
			fm_buf_append_char(&b, '\\');
		fm_buf_append_char(&b, *p);
	}
	fm_buf_append_char(&b, '"');
	return fm_buf_steal(&b);
}

void
imap_parse_att(const struct mailimap_msg_att *att, struct imap_fetched *out)
{
	memset(out, 0, sizeof(*out));
	for (clistiter *it = clist_begin(att->att_list); it != NULL;
	     it = clist_next(it)) {
		const struct mailimap_msg_att_item *item = clist_content(it);
		if (item->att_type == MAILIMAP_MSG_ATT_ITEM_DYNAMIC) {
			out->have_flags = true;
			free(out->keywords);
			out->flags = flags_from_fetch(
			    item->att_data.att_dyn->att_list, &out->keywords);
			continue;
		}
		if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
			continue;
		const struct mailimap_msg_att_static *sa =
		    item->att_data.att_static;
		switch (sa->att_type) {
		case MAILIMAP_MSG_ATT_UID:
			out->uid = sa->att_data.att_uid;
			break;
		case MAILIMAP_MSG_ATT_RFC822_SIZE:
			out->size = sa->att_data.att_rfc822_size;
			out->have_size = true;
			break;
		case MAILIMAP_MSG_ATT_BODY_SECTION: {
			const struct mailimap_msg_att_body_section *bs =
			    sa->att_data.att_body_section;
			out->body = bs->sec_body_part;
			out->body_len = bs->sec_length;
			if (bs->sec_section != NULL &&
			    bs->sec_section->sec_spec != NULL &&
			    bs->sec_body_part != NULL) {
				free(out->msgid);
				out->msgid = msgid_from_header(
				    bs->sec_body_part, bs->sec_length);
			}
			break;
		}
		default:
			break;
		}
	}
}

struct mailimap_fetch_type *
imap_fetch_type(bool flags, bool identity, bool body)
{
	struct mailimap_fetch_type *ft =
	    mailimap_fetch_type_new_fetch_att_list_empty();
	mailimap_fetch_type_new_fetch_att_list_add(
	    ft, mailimap_fetch_att_new_uid());
	if (flags)
		mailimap_fetch_type_new_fetch_att_list_add(
		    ft, mailimap_fetch_att_new_flags());
	if (identity) {
		mailimap_fetch_type_new_fetch_att_list_add(
		    ft, mailimap_fetch_att_new_rfc822_size());
		clist *names = clist_new();
		clist_append(names, xstrdup("MESSAGE-ID"));
		struct mailimap_section *sec =
		    mailimap_section_new_header_fields(
		        mailimap_header_list_new(names));
		mailimap_fetch_type_new_fetch_att_list_add(
		    ft, mailimap_fetch_att_new_body_peek_section(sec));
	}
	if (body)
		mailimap_fetch_type_new_fetch_att_list_add(
		    ft, mailimap_fetch_att_new_body_peek_section(
		            mailimap_section_new(NULL)));
	return ft;
}

/* Reads a message file and gives it CRLF line ends for APPEND. */
int
imap_read_crlf(const char *path, char **data_r, size_t *len_r,
               struct fm_error *err)
{
	char *raw = NULL;
	size_t len = 0;
	int r = fm_record_read_file(path, SIZE_MAX / 4, &raw, &len, err);
	if (r != 0) {
		if (r > 0)
			fm_error_set(err, FM_ERR_LOCAL,
			             _("%s disappeared while it was uploaded"),
			             path);
		return -1;
	}
	struct fm_buf out;
	fm_buf_init(&out, SIZE_MAX / 2);
	char prev = '\0';
	for (size_t i = 0; i < len; i++) {
		if (raw[i] == '\n' && prev != '\r')
			fm_buf_append_char(&out, '\r');
		fm_buf_append_char(&out, raw[i]);
		prev = raw[i];
	}
	free(raw);
	*len_r = out.len;
	*data_r = fm_buf_steal(&out);
	return 0;
}

uint64_t
imap_crlf_size(const char *path, uint64_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return size;
	char buf[65536];
	uint64_t total = 0, bare = 0;
	char prev = '\0';
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n' && prev != '\r')
				bare++;
			prev = buf[i];
		}
		total += (uint64_t)n;
	}
	close(fd);
	return total + bare;
}

/* CRLF -> LF into out (emptied first): maildir files use the local
 * convention. A CR not before LF stays. */
void
imap_to_lf(struct fm_buf *out, const char *s, size_t left)
{
	fm_buf_reset(out);
	while (left > 0) {
		const char *cr = memchr(s, '\r', left);
		if (cr == NULL) {
			fm_buf_append(out, s, left);
			break;
		}
		size_t k = (size_t)(cr - s);
		fm_buf_append(out, s, k);
		if (!(k + 1 < left && cr[1] == '\n'))
			fm_buf_append_char(out, '\r');
		s = cr + 1;
		left -= k + 1;
	}
}

bool
imap_read_astring(const char **pp, char *out, size_t size)
{
	const char *p = *pp;
	size_t n = 0;
	if (*p == '"') {
		for (p++; *p != '"'; p++) {
			if (*p == '\\')
				p++;
			if (*p == '\0' || n + 1 >= size)
				return false;
			out[n++] = *p;
		}
		p++;
	} else {
		for (; (unsigned char)*p > ' ' && *p != 0x7f && *p != '(' &&
		       *p != ')' && *p != '{' && *p != '"' && *p != '\\';
		     p++) {
			if (n + 1 >= size)
				return false;
			out[n++] = *p;
		}
		if (n == 0)
			return false;
	}
	out[n] = '\0';
	*pp = p;
	return true;
}

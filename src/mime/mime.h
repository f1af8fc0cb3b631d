/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * mime — reading messages: the envelope summary of a message's header (for
 * folder listings and threading) and a plain-text rendering of a whole
 * message (for `fulmar show` and the pager).
 *
 * Input is never trusted. Every function here accepts arbitrary bytes —
 * truncated headers, NULs, missing boundaries, wrong or unknown charsets,
 * megabyte header lines, deeply nested multiparts — and degrades gracefully:
 * it returns what it could make sense of, never crashes, hangs or allocates
 * without bound. The limits below say where it stops looking.
 *
 * Every string handed out is valid UTF-8 (invalid bytes become U+FFFD) and
 * carries no control characters other than '\n' and '\t' (and those only in
 * rendered bodies): a hostile message cannot drive a terminal through us. The
 * only conversion left to the caller is from UTF-8 to the terminal's charset,
 * fm_mime_to_locale().
 *
 * Threads: every function may be called from any thread at the same time.
 * Results depend on the input alone (fm_mime_to_locale() also on the
 * locale). The one piece of shared state is hidden: a bounded, mutex-guarded
 * set of iconv descriptors that keeps glibc's charset modules loaded (see
 * header.c). libetpan's parsers (mailimf, mailmime) and glibc's iconv do the
 * decoding; the MIME tree is walked here so that nesting and part counts
 * stay bounded (libetpan's own mailmime_parse() recurses without a limit).
 *
 * Errors: nearly everything degrades instead of failing. Only reading a file
 * can fail (FM_ERR_LOCAL).
 */
#ifndef FULMAR_MIME_MIME_H
#define FULMAR_MIME_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/base.h"

/* Fields are looked for in the first FM_MIME_HEADER_MAX bytes of a header
 * block (the message's or a part's); fields past it are ignored, though the
 * end of the block is still found so the body can be read. */
#define FM_MIME_HEADER_MAX (256 * 1024)
/* Multiparts and attached messages nested deeper than this are not opened. */
#define FM_MIME_DEPTH_MAX 32
/* At most this many MIME parts of one message are looked at. */
#define FM_MIME_PARTS_MAX 1000
/* Decoded one-line header texts (subject, names, file names) are cut here,
 * at a character boundary. */
#define FM_MIME_TEXT_MAX (8 * 1024)
/* The most addresses kept per address field (To, Cc). */
#define FM_MIME_ADDRESSES_MAX 1000
/* The most References kept: the first one and the last ones, which are the
 * ones threading needs. */
#define FM_MIME_REFERENCES_MAX 256
/* A rendered message is cut at this many bytes. */
#define FM_MIME_RENDER_MAX (16 * 1024 * 1024)

/* ------------------------------------------------------------------------
 * The envelope: what a folder listing and threading need, from the header
 * block alone.
 */

/* One mailbox, UTF-8, its strings owned by the envelope or address list
 * that holds it. Two producers with different contracts share it:
 * - in an envelope, name and addr are never NULL: name is "" when there is
 *   none, and addr is the address as written ("user@example.org") or ""
 *   when the field held no recognisable address; group is always NULL;
 * - from fm_mime_addresses_parse() (below), see there. */
struct fm_mime_address {
	char *name;  /* the display name, decoded */
	char *addr;  /* local@domain */
	char *group; /* the group it was listed in, or NULL */
};

enum fm_envelope_flag {
	/* The header block was longer than FM_MIME_HEADER_MAX: fields past
	 * the limit were not read. */
	FM_ENVELOPE_HEADER_CUT = 1u << 0,
	/* No empty line ended the header block: the message is truncated or
	 * not a message at all. */
	FM_ENVELOPE_NO_BODY = 1u << 1,
};

/* A read-only record; every pointer in it is owned by it, and it is freed
 * as a whole with fm_envelope_free(). Message ids are kept without their
 * angle brackets and with white space removed, so that ids from Message-ID,
 * In-Reply-To and References compare equal byte for byte. */
struct fm_envelope {
	time_t date;     /* Date: in seconds since the epoch, UTC */
	bool date_valid; /* false: Date: missing or unparsable, date is 0 */
	struct fm_mime_address from; /* the first mailbox of From: */
	struct fm_mime_address *to;  /* To: (all To: fields), in order */
	size_t to_count;
	struct fm_mime_address *cc; /* Cc:, in order */
	size_t cc_count;
	char *subject;     /* decoded, white space folded; "" when absent */
	char *message_id;  /* NULL when absent */
	char *in_reply_to; /* the first id of In-Reply-To:; NULL if none */
	char **references; /* References:, oldest first */
	size_t references_count;
	uint64_t size;  /* the message's size in bytes */
	unsigned flags; /* enum fm_envelope_flag */
};

/* Reads the envelope from the header block of the message in data (len
 * bytes; it need not be NUL-terminated and may contain NULs). Only the
 * header block is looked at. Stores a new envelope in *env_r (free it with
 * fm_envelope_free()); size is len.
 * Never fails on any input: a missing or broken field is left empty, a
 * missing or unparsable Date leaves date_valid false. Returns 0; err is
 * untouched (it is there for symmetry with fm_mime_envelope_read()). */
int fm_mime_envelope_parse(const char *data, size_t len,
                           struct fm_envelope **env_r, struct fm_error *err);

/* As fm_mime_envelope_parse() for the message in the file at path, reading
 * only its header block (at most FM_MIME_HEADER_MAX bytes); size is the
 * file's size. Returns 0, or -1 with FM_ERR_LOCAL in err when the file
 * cannot be opened or read (*env_r is then left alone). */
int fm_mime_envelope_read(const char *path, struct fm_envelope **env_r,
                          struct fm_error *err);

/* Frees *env and everything in it and sets *env to NULL; NULL-safe. */
void fm_envelope_free(struct fm_envelope **env);

/* The id of the message this one answers, for threading: the last id of
 * References:, else the first of In-Reply-To:, else NULL. The string
 * belongs to env. */
const char *fm_envelope_thread_parent(const struct fm_envelope *env);

/* ------------------------------------------------------------------------
 * Rendering a whole message as text, for reading.
 */

/* One part of the message that is not shown as text. */
struct fm_mime_attachment {
	unsigned number; /* the part's number: leaf parts are numbered from 1
	                  * in the order they appear in the message */
	char *filename;  /* decoded (RFC 2231 or 2047); NULL when unnamed.
	                  * For showing only: it may contain '/' or "..". */
	char *type;      /* "type/subtype", lower case */
	uint64_t size;   /* decoded size in bytes (exact for well-formed
	                  * base64, the encoded size otherwise) */
};

enum fm_mime_note {
	/* The text shown was converted from HTML: no text/plain part. */
	FM_MIME_NOTE_HTML = 1u << 0,
	/* A text part named a charset iconv does not know: it was shown as
	 * UTF-8 when it was valid UTF-8, else as Windows-1252 (the superset
	 * of ISO-8859-1 that mail really uses). */
	FM_MIME_NOTE_UNKNOWN_CHARSET = 1u << 1,
	/* The MIME structure was broken (a multipart without boundary, with
	 * no delimiter, or without its closing delimiter); what could be
	 * found was shown. */
	FM_MIME_NOTE_BROKEN = 1u << 2,
	/* Parts nested deeper than FM_MIME_DEPTH_MAX were not opened. */
	FM_MIME_NOTE_TOO_DEEP = 1u << 3,
	/* The text hit FM_MIME_RENDER_MAX or the message had more than
	 * FM_MIME_PARTS_MAX parts: the rest was left out. */
	FM_MIME_NOTE_CUT = 1u << 4,
	/* The message has no Date: or one that could not be read. */
	FM_MIME_NOTE_NO_DATE = 1u << 5,
};

struct fm_mime_render {
	/* The message as text, NUL-terminated UTF-8: the header lines Date,
	 * From, To, Cc and Subject (those present, decoded), an empty line,
	 * the text parts (text/plain preferred; multipart/alternative shows
	 * one alternative), then one line per attachment:
	 * "[attachment 2: report.pdf, application/pdf, 120 KB]". */
	char *text;
	size_t len;                             /* strlen(text) */
	struct fm_mime_attachment *attachments; /* in message order */
	size_t attachment_count;
	unsigned notes; /* enum fm_mime_note */
};

/* Renders the message in data (len bytes, any bytes at all) as text. The
 * result is newly allocated; free it with fm_mime_render_free(). Never fails
 * and never returns NULL: a message with broken MIME still renders its
 * headers and whatever text can be found, and notes say what went wrong.
 * (For a raw view the caller shows data itself.) */
struct fm_mime_render *fm_mime_render(const char *data, size_t len);

/* Frees *render and sets it to NULL; NULL-safe. */
void fm_mime_render_free(struct fm_mime_render **render);

/* ------------------------------------------------------------------------
 * Text helpers, also for the composer (quoting, replies).
 */

/* Header block iteration. Initialise with fm_mime_header_iter_init(), then
 * call fm_mime_header_next() until it returns false. Lines end in LF or
 * CRLF; a leading mbox "From " line is skipped; a line that is neither a
 * field nor a continuation ends the block (as an empty line does). The
 * iterator holds pointers into data and allocates nothing. */
struct fm_mime_header_iter {
	const char *data;
	size_t len;
	size_t pos;   /* start of the next line */
	size_t limit; /* fields starting past here are not returned */
	size_t body;  /* after the end: where the body starts (len if none) */
	bool ended;   /* after the end: an empty line ended the block */
	bool cut;     /* after the end: fields past limit were skipped */
};

void fm_mime_header_iter_init(struct fm_mime_header_iter *it, const char *data,
                              size_t len);

/* The next field: its name (without the colon) and raw value (after the
 * colon, still folded, CRLFs included; cut at the iterator's limit), both
 * pointing into the data. Returns false at the end of the header block,
 * with it->body, it->ended and it->cut set. */
bool fm_mime_header_next(struct fm_mime_header_iter *it, const char **name_r,
                         size_t *name_len_r, const char **value_r,
                         size_t *value_len_r);

/* Decodes an unstructured header value (Subject:, a display name): unfolds
 * it, decodes RFC 2047 encoded words (adjacent ones joined, unknown charsets
 * read as ISO-8859-1), folds white space to single spaces and trims it.
 * Raw 8-bit bytes that are not UTF-8 become U+FFFD, control characters too.
 * Returns a new string (at most FM_MIME_TEXT_MAX bytes; the caller frees
 * it); never fails. */
char *fm_mime_decode_header(const char *value, size_t len);

/* Appends len bytes of text in charset (NULL or "" for US-ASCII) to out as
 * UTF-8 with line ends as '\n', and every invalid sequence or control
 * character other than '\n' and '\t' as U+FFFD. A charset iconv does not
 * know is read as UTF-8 when the text is valid UTF-8, else as Windows-1252,
 * and sets *unknown_r (if not NULL) to true. US-ASCII text with 8-bit bytes
 * is read the same way, and sets *unknown_r only when they are not UTF-8.
 * Returns 0, or -1 when out's maximum cut the text (what fit is kept, cut at
 * a character boundary). */
int fm_mime_text_to_utf8(const char *charset, const char *data, size_t len,
                         struct fm_buf *out, bool *unknown_r);

/* Reads a Date: value (RFC 5322, obsolete forms included, and what mail
 * really carries: asctime() dates, ISO 8601, AM/PM, named zones, trailing
 * junk) into seconds since the epoch, UTC, in *t_r. Returns false, leaving
 * *t_r alone, when s holds no valid date (Feb 30 is none). */
bool fm_mime_parse_date(const char *s, size_t len, time_t *t_r);

/* Whether len bytes at s are valid UTF-8 (no overlong forms, surrogates or
 * code points past U+10FFFF). */
bool fm_mime_utf8_valid(const char *s, size_t len);

/* Converts UTF-8 text for showing on the terminal: to the character set of
 * the current LC_CTYPE locale (nl_langinfo(CODESET)), transliterating what
 * that charset cannot represent (//TRANSLIT) and writing '?' for what cannot
 * be transliterated. Control characters other than '\n' and '\t' (ESC, BEL,
 * CR, DEL, the C1 range) and invalid UTF-8 become U+FFFD first, which a
 * non-UTF-8 terminal gets as '?': no escape sequence reaches the terminal.
 * Returns a new string (the caller frees it); never fails. Thread-safe as
 * long as no thread calls setlocale() at the same time. */
char *fm_mime_to_locale(const char *utf8);

/* ------------------------------------------------------------------------
 * Addresses (RFC 5322 section 3.4): mailbox lists with display names,
 * quoted strings, comments, groups and encoded words.
 */

/* A list of mailboxes (struct fm_mime_address, above). Its strings are
 * UTF-8 and belong to the list: name is the display name, decoded, or NULL
 * if none; addr is local@domain with the domain in ASCII (IDNA) form, never
 * NULL; group is the group's display name for mailboxes listed in a group,
 * else NULL. */
struct fm_mime_addresses {
	struct fm_mime_address *items;
	size_t n;
};

/* Parses a header value (To, Cc, Bcc, From, Reply-To; unfolded or not)
 * into its mailboxes, in order; groups are flattened (an empty group adds
 * nothing). FM_ERR_USAGE, with a sentence naming the bad part, for input
 * that is not an address list, or for an address that contains CR, LF,
 * '<', '>' or a control character in its addr (these would let a crafted
 * address inject SMTP commands). The caller frees *list with
 * fm_mime_addresses_free(). Any thread. */
int fm_mime_addresses_parse(const char *value, struct fm_mime_addresses *list,
                            struct fm_error *err);
void fm_mime_addresses_free(struct fm_mime_addresses *list);

/* Every recipient of a finished message, for sendmail's -t: the addresses
 * of its To, Cc and Bcc headers (all occurrences), in order, without
 * duplicates (compared case-insensitively). Errors as
 * fm_mime_addresses_parse(); an empty list is not an error. */
int fm_mime_recipients(const char *data, size_t len,
                       struct fm_mime_addresses *list, struct fm_error *err);

/* The copy of a finished message to transmit: the same bytes without its
 * Bcc header fields (with their continuation lines). Newly allocated, its
 * length in *len_r. */
char *fm_mime_strip_bcc(const char *data, size_t len, size_t *len_r);

#endif

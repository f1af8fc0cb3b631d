/* SPDX-License-Identifier: GPL-3.0-or-later */
/* SASL over the line protocols, POP3 and SMTP, which frame it alike:
 * a command, then challenge/response lines, then a final reply. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_int.h"

char *
fm_net_read_line(struct fm_net_conn *conn, mailstream *stream)
{
	MMAPString *buf = mmap_string_new("");
	if (buf == NULL)
		return NULL;
	/* libetpan hands back a partial line when the peer closes in the
	 * middle of it: that is no line. */
	char *line = mailstream_read_line(stream, buf);
	char *copy = NULL;
	if (line != NULL && buf->len > 0 && buf->str[buf->len - 1] == '\n') {
		size_t n = buf->len - 1;
		if (n > 0 && buf->str[n - 1] == '\r')
			n--;
		copy = xstrndup(buf->str, n);
	}
	mmap_string_free(buf);
	if (copy == NULL && conn->fail == NET_OK)
		conn->fail = NET_EOF;
	return copy;
}

/* Is this line a challenge, the end of a success, or of a failure? */
enum line_kind { LINE_CHALLENGE, LINE_OK, LINE_FAIL, LINE_MORE };

static enum line_kind
classify(enum fm_trace_proto proto, const char *line, const char **payload)
{
	if (proto == FM_TRACE_POP3) {
		if (line[0] == '+' && (line[1] == ' ' || line[1] == '\0')) {
			*payload = line[1] == ' ' ? line + 2 : line + 1;
			return LINE_CHALLENGE;
		}
		return strncmp(line, "+OK", 3) == 0 ? LINE_OK : LINE_FAIL;
	}
	/* SMTP: "334 challenge", "235 ok", "535-more" / "535 end". */
	if (strlen(line) >= 3 && line[3] == '-')
		return LINE_MORE;
	if (strncmp(line, "334", 3) == 0) {
		*payload = line[3] == ' ' ? line + 4 : line + 3;
		return LINE_CHALLENGE;
	}
	return line[0] == '2' ? LINE_OK : LINE_FAIL;
}

static int
send_line(struct fm_net_conn *conn, mailstream *stream, const char *text,
          struct fm_error *err)
{
	char *line = xasprintf("%s\r\n", text);
	int ret = fm_net_write(conn, stream, line, strlen(line), err);
	fm_free_secret(&line);
	return ret;
}

int
fm_net_sasl_lines(struct fm_net_conn *conn, mailstream *stream,
                  enum fm_trace_proto proto, enum fm_auth_mech mech,
                  const char *user, const char *secret, bool *ok, char *final,
                  size_t final_size, char *report, size_t report_size,
                  struct fm_error *err)
{
	*ok = false;
	final[0] = report[0] = '\0';
	struct fm_sasl *sasl =
	    fm_sasl_new(mech, user, secret, conn->host, conn->port);
	char *ir = fm_sasl_initial_response(sasl);
	bool inline_ir = ir != NULL && proto == FM_TRACE_SMTP;
	bool ir_pending = ir != NULL && !inline_ir;
	char *cmd = xasprintf("AUTH %s%s%s", fm_sasl_mech_name(mech),
	                      inline_ir ? " " : "", inline_ir ? ir : "");
	int ret = send_line(conn, stream, cmd, err);
	fm_free_secret(&cmd);
	for (int round = 0; ret == 0; round++) {
		char *line = fm_net_read_line(conn, stream);
		if (line == NULL) {
			ret = fm_net_error(conn, _("authenticating"), err);
			break;
		}
		const char *payload = "";
		enum line_kind kind = classify(proto, line, &payload);
		if (kind == LINE_MORE) {
			free(line);
			continue;
		}
		if (kind != LINE_CHALLENGE) {
			*ok = kind == LINE_OK;
			fm_str_printable(line, final, final_size);
			free(line);
			break;
		}
		if (round >= 8) {
			free(line);
			ret = fm_error_set(err, FM_ERR_PROTOCOL,
			                   _("%s:%u keeps asking during "
			                     "authentication"),
			                   conn->host, conn->port);
			break;
		}
		char *resp = NULL, *rep = NULL;
		if (ir_pending && payload[0] == '\0') {
			resp = xstrdup(ir);
			ir_pending = false;
		} else if (fm_sasl_step(sasl, payload, &resp, &rep) < 0) {
			resp = xstrdup("*"); /* cancel; the failure follows */
		}
		if (rep != NULL) {
			fm_str_printable(rep, report, report_size);
			free(rep);
		}
		free(line);
		ret = send_line(conn, stream, resp, err);
		fm_free_secret(&resp);
	}
	fm_free_secret(&ir);
	fm_sasl_free(&sasl);
	return ret;
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * fm_config_write(): the effective settings as INI that fm_config_load()
 * reads back. Every key is printed in table order; defaults carry a
 * "# default" comment (which the loader ignores), and what cannot or should
 * not be read back is a comment line: unset keys, the hidden password, and
 * keys that do not apply to the account.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "conf/conf-int.h"
#include "conf/conf.h"

/* Writes "key = value" (commented out when comment is set) and the suffix,
 * wrapping a long value at spaces onto indented continuation lines so no
 * line passes CONF_LINE_MAX. */
static void
write_line(FILE *out, bool comment, const char *key, const char *value,
           const char *suffix)
{
	const char *lead = comment ? "# " : "";
	size_t limit = CONF_LINE_MAX - strlen(suffix);
	struct fm_buf line;
	fm_buf_init(&line, CONF_VALUE_MAX * 2);
	fm_buf_printf(&line, "%s%s =", lead, key);
	size_t words = 0;
	const char *p = value;
	while (*p != '\0' || words == 0) {
		size_t n = strcspn(p, " ");
		if (words > 0 && line.len + 1 + n > limit) {
			fprintf(out, "%s\n", line.data);
			fm_buf_reset(&line);
			fm_buf_printf(&line, "%s   ", lead);
		}
		if (n > 0 || *p != '\0')
			fm_buf_append_char(&line, ' ');
		fm_buf_append(&line, p, n);
		words++;
		p += n;
		if (*p == ' ')
			p++;
	}
	fprintf(out, "%s%s\n", line.data, suffix);
	fm_wipe(line.data, line.len);
	fm_buf_free(&line);
}

static void
write_key(FILE *out, const struct conf_key *k, const void *obj, bool explicit,
          const struct fm_account *a)
{
	if (k->flags & CONF_KF_SECRET) {
		const char *s = *(char *const *)((const char *)obj + k->offset);
		fprintf(out, "# %s = %s\n", k->name,
		        s != NULL ? "<set, hidden>" : "(not set)");
		return;
	}
	struct fm_buf v;
	fm_buf_init(&v, CONF_VALUE_MAX * 2);
	bool has = conf_key_format(k, obj, &v);
	if (has && v.len == 0 && !(k->flags & CONF_KF_EMPTY_OK))
		has = false;

	const char *why = NULL;
	if (a != NULL && (k->flags & CONF_KF_POP3) &&
	    a->protocol != FM_PROTO_POP3)
		why = _("ignored: POP3 only");
	else if (a != NULL && (k->flags & CONF_KF_IMAP) &&
	         a->protocol != FM_PROTO_IMAP)
		why = _("ignored: IMAP only");
	else if (a != NULL && (k->flags & CONF_KF_SMTP) && a->smtp_host == NULL)
		why = _("ignored: no smtp_host");

	if (!has) {
		fprintf(out, "# %s = (not set)\n", k->name);
	} else if (why != NULL) {
		char *suffix = xasprintf("  # %s", why);
		write_line(out, true, k->name, v.data, suffix);
		free(suffix);
	} else {
		write_line(out, false, k->name, v.data,
		           explicit ? "" : "  # default");
	}
	fm_buf_free(&v);
}

static void
write_section(FILE *out, enum conf_sect sect, const void *obj,
              const unsigned *lines, const struct fm_account *a)
{
	for (size_t i = 0; i < conf_n_keys; i++)
		if (conf_keys[i].sect == sect)
			write_key(out, &conf_keys[i], obj, lines[i] != 0, a);
}

void
fm_config_write(const struct fm_config *cfg, FILE *out)
{
	/* Without accounts there is nothing to show. */
	if (cfg->n_accounts == 0)
		return;
	fputs("[general]\n", out);
	write_section(out, CONF_SECT_GENERAL, &cfg->general,
	              cfg->general.key_lines, NULL);
	for (size_t i = 0; i < cfg->n_accounts; i++) {
		const struct fm_account *a = &cfg->accounts[i];
		fprintf(out, "\n[account %s]\n", a->name);
		write_section(out, CONF_SECT_ACCOUNT, a, a->key_lines, a);
	}
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libetpan/libetpan_version.h>
#include <ncurses.h>
#include <notmuch.h>
#include <openssl/crypto.h>

#include "cli/cli.h"
#include "log/log.h"

enum { EXIT_USAGE = 64, EXIT_UNAVAILABLE = 69 };

static void
print_version(void)
{
	printf("fulmar %s\n", PACKAGE_VERSION);
	printf(_("built with libetpan %d.%d, libnotmuch %d.%d.%d, %s, %s\n"),
	       LIBETPAN_VERSION_MAJOR, LIBETPAN_VERSION_MINOR,
	       LIBNOTMUCH_MAJOR_VERSION, LIBNOTMUCH_MINOR_VERSION,
	       LIBNOTMUCH_MICRO_VERSION, OpenSSL_version(OPENSSL_VERSION),
	       curses_version());
}

static void
print_help(const struct fm_cli_command *cmds, size_t n)
{
	printf(_("usage: fulmar [OPTION]... [COMMAND [ARG]...]\n"
	         "A terminal mail client that works offline first.\n\n"
	         "Without a command, fulmar opens its terminal interface.\n\n"
	         "Commands:\n"));
	for (size_t i = 0; i < n; i++) {
		char left[64];
		snprintf(left, sizeof(left), "%s %s", cmds[i].name,
		         _(cmds[i].args));
		printf("  %-24s %s\n", left, _(cmds[i].summary));
	}
	printf(
	    _("\nOptions:\n"
	      "  -c, --config FILE        read FILE instead of "
	      "$XDG_CONFIG_HOME/fulmar/config\n"
	      "      --log-protocol FILE  record every protocol line in FILE "
	      "(secrets redacted)\n"
	      "  -v, --verbose            say more (repeat for debug "
	      "detail)\n"
	      "  -q, --quiet              print only errors\n"
	      "  -h, --help               show this help and exit\n"
	      "  -V, --version            show the version and exit\n\n"
	      "Exit status: 0 success, 64 usage, 69 refused by the server "
	      "for good,\n"
	      "74 local I/O, 75 temporary failure (try again later), 76 "
	      "protocol error,\n"
	      "77 credentials, 78 configuration, 79 TLS trust.\n"
	      "See fulmar(1) and fulmar.conf(5).\n"));
}

int
fm_cli_usage(const struct fm_cli_command *cmd)
{
	fprintf(stderr, _("usage: fulmar %s %s\n"), cmd->name, _(cmd->args));
	return EXIT_USAGE;
}

int
fm_cli_report(const struct fm_cli_ctx *ctx, const struct fm_error *err)
{
	fprintf(stderr, "fulmar: %s\n", err->user);
	if (ctx->verbosity > 0 && err->detail[0] != '\0')
		fprintf(stderr, "fulmar: (%s: %s)\n",
		        fm_error_class_name(err->cls), err->detail);
	return fm_error_exit_status(err->cls);
}

static void
print_diag(const char *path, const struct fm_conf_diag *d)
{
	fprintf(stderr, "%s:", path);
	if (d->line > 0)
		fprintf(stderr, "%u:", d->line);
	fputc(' ', stderr);
	if (d->key[0] != '\0')
		fprintf(stderr, "%s: ", d->key);
	if (d->severity == FM_CONF_WARNING)
		fprintf(stderr, _("warning: "));
	fprintf(stderr, "%s\n", d->message);
}

int
fm_cli_load_config(struct fm_cli_ctx *ctx)
{
	char *def = NULL;
	const char *path = ctx->config_path;
	if (path == NULL)
		path = def = fm_config_default_path();
	struct fm_conf_diags diags;
	struct fm_error err;
	fm_error_clear(&err);
	int ret = fm_config_load(path, &ctx->cfg, &diags, &err);
	/* The summary repeats nothing a diagnostic said already. */
	bool said = false;
	for (size_t i = 0; i < diags.n; i++) {
		if (ctx->verbosity >= 0 ||
		    diags.items[i].severity == FM_CONF_ERROR)
			print_diag(path, &diags.items[i]);
		if (strstr(err.user, diags.items[i].message) != NULL)
			said = true;
	}
	fm_conf_diags_free(&diags);
	free(def);
	if (ret < 0)
		return said ? fm_error_exit_status(err.cls)
		            : fm_cli_report(ctx, &err);
	return 0;
}

int
fm_cli_main(const struct fm_cli_command *cmds, size_t n_cmds, int argc,
            char **argv)
{
	enum { OPT_LOG_PROTOCOL = 256 };
	static const struct option options[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"log-protocol", required_argument, NULL, OPT_LOG_PROTOCOL},
	    {"verbose", no_argument, NULL, 'v'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct fm_cli_ctx ctx = {.argv0 = argv[0]};
	int c;
	/* '+': options end at the command name; the command parses the
	 * rest. */
	while ((c = getopt_long(argc, argv, "+c:vqhV", options, NULL)) != -1) {
		switch (c) {
		case 'c':
			ctx.config_path = optarg;
			break;
		case OPT_LOG_PROTOCOL:
			ctx.log_protocol = optarg;
			break;
		case 'v':
			if (ctx.verbosity >= 0)
				ctx.verbosity++;
			break;
		case 'q':
			ctx.verbosity = -1;
			break;
		case 'h':
			print_help(cmds, n_cmds);
			return 0;
		case 'V':
			print_version();
			return 0;
		default:
			fprintf(stderr, _("Try 'fulmar --help'.\n"));
			return EXIT_USAGE;
		}
	}
	if (ctx.verbosity >= 2)
		fm_log_set_level(FM_LOG_DEBUG);
	else if (ctx.verbosity == 1)
		fm_log_set_level(FM_LOG_INFO);
	else if (ctx.verbosity < 0)
		fm_log_set_level(FM_LOG_ERROR);

	if (optind >= argc) {
		fprintf(stderr,
		        _("fulmar: the terminal interface is not part of this "
		          "version yet; see 'fulmar --help' for the commands "
		          "there are.\n"));
		return EXIT_UNAVAILABLE;
	}
	const char *name = argv[optind];
	for (size_t i = 0; i < n_cmds; i++) {
		if (strcmp(cmds[i].name, name) != 0)
			continue;
		/* Reset getopt for the command's own parsing. */
		int sub_argc = argc - optind;
		char **sub_argv = argv + optind;
		optind = 0;
		int ret = cmds[i].run(&ctx, sub_argc, sub_argv);
		fm_config_free(&ctx.cfg);
		return ret;
	}
	fprintf(stderr,
	        _("fulmar: unknown command '%s'; try 'fulmar --help'.\n"),
	        name);
	return EXIT_USAGE;
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/* `fulmar config`: the effective settings of every account, defaults
 * marked and secrets hidden, so a user can see what fulmar will really do. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"

int
fm_cmd_config(struct fm_cli_ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		if (c == 'h') {
			printf(_("usage: fulmar config\n"
			         "Checks the config file and prints the "
			         "effective settings of every account:\n"
			         "defaults marked '# default', passwords "
			         "hidden.\n"));
			return 0;
		}
		fprintf(stderr, _("usage: fulmar config\n"));
		return 64;
	}
	if (optind < argc) {
		fprintf(stderr, _("usage: fulmar config\n"));
		return 64;
	}
	int ret = fm_cli_load_config(ctx);
	if (ret != 0)
		return ret;
	fm_config_write(ctx->cfg, stdout);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("fulmar: stdout");
		return 74;
	}
	return 0;
}

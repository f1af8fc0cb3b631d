/* SPDX-License-Identifier: GPL-3.0-or-later */
/* fulmar — a terminal mail client that works offline first.
 * main() sets up the process and hands over to the command table. */
#include "config.h"

#include <locale.h>
#include <signal.h>

#include "cli/cli.h"

/* Every command fulmar has; later commands add one row each. */
static const struct fm_cli_command commands[] = {
    {"check", fm_cmd_check, N_("[ACCOUNT]..."),
     N_("test every connection, step by step, and say what to fix")},
    {"config", fm_cmd_config, "",
     N_("check the config file and print the effective settings")},
};

int
main(int argc, char **argv)
{
	setlocale(LC_ALL, "");
	bindtextdomain(PACKAGE, LOCALEDIR);
	textdomain(PACKAGE);
	/* A peer closing a socket must be an error return, not a death. */
	signal(SIGPIPE, SIG_IGN);
	return fm_cli_main(commands, FM_ARRAY_LEN(commands), argc, argv);
}

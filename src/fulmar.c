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
    {"list", fm_cmd_list, N_("[ACCOUNT[/FOLDER]] [--threads] [--json]"),
     N_("list folders, or a folder's messages, from the local cache")},
    {"reindex", fm_cmd_reindex, N_("[ACCOUNT]"),
     N_("rebuild the summaries and the search index from the maildirs")},
    {"search", fm_cmd_search, N_("QUERY [--json]"),
     N_("search the local cache (notmuch query syntax)")},
    {"show", fm_cmd_show, N_("ID | --file PATH"), N_("show a message as text")},
    {"sync", fm_cmd_sync, N_("[ACCOUNT]..."),
     N_("one send/receive pass (POP3 accounts in this version)")},
    {"watch", fm_cmd_watch, N_("[--max-backoff DURATION]"),
     N_("run every account's schedule headless until stopped")},
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

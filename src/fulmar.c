/* SPDX-License-Identifier: GPL-3.0-or-later */
/* fulmar — a terminal mail client that works offline first.
 * main() sets up the process and hands over to the command table. */
#include "config.h"

#include <locale.h>
#include <malloc.h>
#include <signal.h>

#include "cli/cli.h"

/* Every command fulmar has; later commands add one row each. */
static const struct fm_cli_command commands[] = {
    {"check", fm_cmd_check, N_("[ACCOUNT]..."),
     N_("test every connection, step by step, and say what to fix")},
    {"config", fm_cmd_config, "",
     N_("check the config file and print the effective settings")},
    {"delete", fm_cmd_delete, N_("ID..."),
     N_("delete messages locally; the next sync deletes them on the server")},
    {"flag", fm_cmd_flag, N_("ID... (+|-)FLAG..."),
     N_("set or clear flags (seen, flagged, answered, draft, deleted, "
        "forwarded)")},
    {"list", fm_cmd_list, N_("[ACCOUNT[/FOLDER]] [--threads] [--json]"),
     N_("list folders, or a folder's messages, from the local cache")},
    {"move", fm_cmd_move, N_("[--create] ID... FOLDER"),
     N_("move messages to another folder of their account")},
    {"reindex", fm_cmd_reindex, N_("[ACCOUNT]"),
     N_("rebuild the summaries and the search index from the maildirs")},
    {"search", fm_cmd_search, N_("QUERY [--json]"),
     N_("search the local cache (notmuch query syntax)")},
    {"send", fm_cmd_send,
     N_("[-t] [-f FROM] [RECIPIENT]... | --queue | --flush"),
     N_("queue a message (sendmail style) and send it; the Outbox")},
    {"show", fm_cmd_show, N_("ID | --file PATH"), N_("show a message as text")},
    {"sync", fm_cmd_sync, N_("[--force] [--quiet] [ACCOUNT[/FOLDER]]..."),
     N_("one send/receive pass: IMAP both ways, POP3 downloads")},
    {"watch", fm_cmd_watch, N_("[--max-backoff DURATION]"),
     N_("run every account's schedule headless until stopped")},
};

int
main(int argc, char **argv)
{
	/* Big buffers (a batch of downloaded messages, a message being
	 * parsed) go back to the system when freed: glibc's default raises
	 * the mmap threshold to the largest block ever freed, after which a
	 * long sync keeps every batch's high-water mark resident. */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	setlocale(LC_ALL, "");
	bindtextdomain(PACKAGE, LOCALEDIR);
	textdomain(PACKAGE);
	/* A peer closing a socket must be an error return, not a death. */
	signal(SIGPIPE, SIG_IGN);
	return fm_cli_main(commands, FM_ARRAY_LEN(commands), argc, argv);
}

/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cli — the headless front end: global options, the command table's
 * dispatcher, and every word fulmar prints outside the curses UI.
 *
 * Only cli/ and ui/ talk to the human; commands get a context holding the
 * parsed global options and, once loaded, the one config struct.
 */
#ifndef FULMAR_CLI_H
#define FULMAR_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "base/base.h"
#include "conf/conf.h"

struct fm_cli_ctx {
	const char *argv0;
	const char *config_path;  /* -c FILE, or NULL for the default */
	const char *log_protocol; /* --log-protocol FILE, or NULL */
	int verbosity;            /* -v count; -1 with --quiet */
	struct fm_config *cfg;    /* set by fm_cli_load_config() */
};

/* A command runs with argv[0] = its own name and returns the process exit
 * status (0, or fm_error_exit_status() of what went wrong). */
typedef int fm_cli_fn(struct fm_cli_ctx *ctx, int argc, char **argv);

struct fm_cli_command {
	const char *name;
	fm_cli_fn *run;
	const char *args;    /* usage after the name, N_()-marked */
	const char *summary; /* one line for --help, N_()-marked */
};

/* Parses the global options, then runs the named command from the table
 * (sorted or not; first match wins). Returns the exit status. */
int fm_cli_main(const struct fm_cli_command *cmds, size_t n_cmds, int argc,
                char **argv);

/* Loads the config named by ctx (or the default path) into ctx->cfg,
 * printing every diagnostic as FILE:LINE: KEY: MESSAGE on stderr. Returns 0,
 * or the exit status to end with (78 for a bad config). */
int fm_cli_load_config(struct fm_cli_ctx *ctx);

/* Prints "fulmar: SENTENCE" on stderr, and the detail when -v was given;
 * returns the exit status for the error's class. */
int fm_cli_report(const struct fm_cli_ctx *ctx, const struct fm_error *err);

/* Prints "usage: fulmar NAME ARGS" for a command on stderr; returns 64. */
int fm_cli_usage(const struct fm_cli_command *cmd);

struct fm_pass_result;
/* Prints the one-line summary of a pass ("ACCOUNT: N new (M MB), ...") the
 * way `fulmar sync` shows it. */
void fm_cli_print_pass(FILE *out, const char *account,
                       const struct fm_pass_result *res);

/* Commands. */
int fm_cmd_check(struct fm_cli_ctx *ctx, int argc, char **argv);
int fm_cmd_config(struct fm_cli_ctx *ctx, int argc, char **argv);
int fm_cmd_delete(struct fm_cli_ctx *ctx, int argc, char **argv);
int fm_cmd_flag(struct fm_cli_ctx *ctx, int argc, char **argv);
int fm_cmd_list(struct fm_cli_ctx *ctx, int argc, char **argv);
int fm_cmd_move(struct fm_cli_ctx *ctx, int argc, char **argv);
int fm_cmd_reindex(struct fm_cli_ctx *ctx, int argc, char **argv);
int fm_cmd_search(struct fm_cli_ctx *ctx, int argc, char **argv);
int fm_cmd_send(struct fm_cli_ctx *ctx, int argc, char **argv);
int fm_cmd_show(struct fm_cli_ctx *ctx, int argc, char **argv);
int fm_cmd_sync(struct fm_cli_ctx *ctx, int argc, char **argv);
int fm_cmd_watch(struct fm_cli_ctx *ctx, int argc, char **argv);

#endif

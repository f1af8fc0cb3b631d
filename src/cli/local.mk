# SPDX-License-Identifier: GPL-3.0-or-later
src_libfulmar_a_SOURCES += \
	src/cli/cli.h \
	src/cli/cli.c \
	src/cli/cmd_change.c \
	src/cli/cmd_check.c \
	src/cli/cmd_config.c \
	src/cli/cmd_mail.c \
	src/cli/cmd_send.c \
	src/cli/cmd_sync.c \
	src/cli/cmd_watch.c

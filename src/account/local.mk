# SPDX-License-Identifier: GPL-3.0-or-later
src_libfulmar_a_SOURCES += \
	src/account/account.h \
	src/account/control.c \
	src/account/netwatch.c \
	src/account/notify.c \
	src/account/pass.c \
	src/account/push.c \
	src/account/schedule.c \
	src/account/worker.c
# The systemd user unit that runs `fulmar watch`.
EXTRA_DIST += contrib/fulmar-watch.service

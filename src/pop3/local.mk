# SPDX-License-Identifier: GPL-3.0-or-later
src_libfulmar_a_SOURCES += \
	src/pop3/pop3.h \
	src/pop3/pop3_int.h \
	src/pop3/body.c \
	src/pop3/fetch.c \
	src/pop3/seen.c \
	src/pop3/session.c \
	src/pop3/wire.c

# SPDX-License-Identifier: GPL-3.0-or-later
src_libfulmar_a_SOURCES += \
	src/net/net.h \
	src/net/net_int.h \
	src/net/conn.c \
	src/net/sasl.c \
	src/net/sasl_lines.c \
	src/net/session.c \
	src/net/tls.c

# SPDX-License-Identifier: GPL-3.0-or-later
src_libfulmar_a_SOURCES += \
	src/smtp/smtp.h \
	src/smtp/outbox.c \
	src/smtp/session.c \
	src/smtp/spool.c \
	src/smtp/submit.c

# SPDX-License-Identifier: GPL-3.0-or-later
src_libfulmar_a_SOURCES += \
	src/log/log.h \
	src/log/log.c \
	src/log/trace.c

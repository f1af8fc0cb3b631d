# SPDX-License-Identifier: GPL-3.0-or-later
src_libfulmar_a_SOURCES += \
	src/sync/state.h \
	src/sync/state.c \
	src/sync/journal.h \
	src/sync/journal.c

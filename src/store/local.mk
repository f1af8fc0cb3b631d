# SPDX-License-Identifier: GPL-3.0-or-later
src_libfulmar_a_SOURCES += \
	src/store/lock.h \
	src/store/lock.c \
	src/store/maildir.h \
	src/store/maildir.c \
	src/store/summary.h \
	src/store/summary.c \
	src/store/thread.h \
	src/store/thread.c

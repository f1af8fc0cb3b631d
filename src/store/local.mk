# SPDX-License-Identifier: GPL-3.0-or-later
src_libfulmar_a_SOURCES += \
	src/store/store.h \
	src/store/store_int.h \
	src/store/catchup.c \
	src/store/common.c \
	src/store/index.h \
	src/store/index.c \
	src/store/lock.h \
	src/store/lock.c \
	src/store/maildir.h \
	src/store/maildir.c \
	src/store/nmlib.h \
	src/store/nmlib.c \
	src/store/reader.c \
	src/store/service.c \
	src/store/store.c \
	src/store/summary.h \
	src/store/summary.c \
	src/store/thread.h \
	src/store/thread.c

# SPDX-License-Identifier: GPL-3.0-or-later
src_libfulmar_a_SOURCES += \
	src/base/base.h \
	src/base/buf.c \
	src/base/error.c \
	src/base/file.c \
	src/base/path.c \
	src/base/record.c \
	src/base/str.c \
	src/base/xalloc.c

# SPDX-License-Identifier: GPL-3.0-or-later
src_libfulmar_a_SOURCES += \
	src/imap/imap.h \
	src/imap/imap_int.h \
	src/imap/convert.c \
	src/imap/download.c \
	src/imap/folders.c \
	src/imap/listing.c \
	src/imap/replay.c \
	src/imap/watch.c \
	src/imap/session.c \
	src/imap/prefetch.c \
	src/imap/stamp.c \
	src/imap/sync.c \
	src/imap/uploads.c

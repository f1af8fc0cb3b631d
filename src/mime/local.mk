# SPDX-License-Identifier: GPL-3.0-or-later
src_libfulmar_a_SOURCES += \
	src/mime/mime.h \
	src/mime/address.c \
	src/mime/decode.c \
	src/mime/header.c

# SPDX-License-Identifier: GPL-3.0-or-later
src_libfulmar_a_SOURCES += \
	src/conf/conf.h \
	src/conf/conf-int.h \
	src/conf/conf.c \
	src/conf/keys.c \
	src/conf/rules.c \
	src/conf/secret.c \
	src/conf/write.c

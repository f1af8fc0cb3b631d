# SPDX-License-Identifier: GPL-3.0-or-later
# The pure sync planner: local vs remote vs last-synced, no I/O.
src_libfulmar_a_SOURCES += \
	src/sync/plan.h \
	src/sync/plan.c

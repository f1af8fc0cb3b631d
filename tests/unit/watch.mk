# SPDX-License-Identifier: GPL-3.0-or-later
# Push: what a server response during IDLE or NOTIFY says, hostile ones
# included. Include after tests/unit/local.mk (it defines UNIT_CFLAGS and
# UNIT_LDADD).
WATCH_TESTS = tests/unit/test_watch
check_PROGRAMS += $(WATCH_TESTS)
TESTS += $(WATCH_TESTS)
tests_unit_test_watch_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_watch_LDADD = $(UNIT_LDADD)

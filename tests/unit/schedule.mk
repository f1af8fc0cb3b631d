# SPDX-License-Identifier: GPL-3.0-or-later
# The account module: schedules and back-off on a fake clock; notification
# commands, batching and the terminal title; the control socket's lines;
# the workers with a real store thread (IMAP accounts, no network).
# Include after tests/unit/local.mk (it defines UNIT_CFLAGS and UNIT_LDADD).
SCHEDULE_TESTS = \
	tests/unit/test_schedule \
	tests/unit/test_notify \
	tests/unit/test_workers
check_PROGRAMS += $(SCHEDULE_TESTS)
TESTS += $(SCHEDULE_TESTS)
tests_unit_test_schedule_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_schedule_LDADD = $(UNIT_LDADD)
tests_unit_test_notify_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_notify_LDADD = $(UNIT_LDADD)
tests_unit_test_workers_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_workers_LDADD = $(UNIT_LDADD)

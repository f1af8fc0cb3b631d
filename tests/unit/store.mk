# SPDX-License-Identifier: GPL-3.0-or-later
# cmocka unit tests of the store's foundations: maildir, sync state, journal.
# Include after tests/unit/local.mk (it defines UNIT_CFLAGS and UNIT_LDADD).
STORE_TESTS = \
	tests/unit/test_maildir \
	tests/unit/test_state \
	tests/unit/test_journal \
	tests/unit/test_thread \
	tests/unit/test_summary \
	tests/unit/test_store_quick \
	tests/unit/test_service
check_PROGRAMS += $(STORE_TESTS)
TESTS += $(STORE_TESTS)

tests_unit_test_maildir_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_maildir_LDADD = $(UNIT_LDADD)
tests_unit_test_state_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_state_LDADD = $(UNIT_LDADD)
tests_unit_test_journal_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_journal_LDADD = $(UNIT_LDADD)
tests_unit_test_thread_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_thread_LDADD = $(UNIT_LDADD)
tests_unit_test_summary_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_summary_LDADD = $(UNIT_LDADD)
tests_unit_test_store_quick_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_store_quick_LDADD = $(UNIT_LDADD)
tests_unit_test_service_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_service_LDADD = $(UNIT_LDADD)

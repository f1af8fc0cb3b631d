# SPDX-License-Identifier: GPL-3.0-or-later
# cmocka unit tests: pure logic, no network, no servers.
UNIT_TESTS = \
	tests/unit/test_base \
	tests/unit/test_log \
	tests/unit/test_net \
	tests/unit/test_net_io \
	tests/unit/test_conf
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)
UNIT_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
UNIT_LDADD = $(FULMAR_LIBS) $(CMOCKA_LIBS)

tests_unit_test_base_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_base_LDADD = $(UNIT_LDADD)
tests_unit_test_log_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_log_LDADD = $(UNIT_LDADD)
tests_unit_test_conf_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_conf_LDADD = $(UNIT_LDADD)
tests_unit_test_net_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_net_LDADD = $(UNIT_LDADD)
tests_unit_test_net_io_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_net_io_LDADD = $(UNIT_LDADD)

# SPDX-License-Identifier: GPL-3.0-or-later
# Writing mail: address lists, recipients and Bcc for sending, and the
# message builder.
COMPOSE_TESTS = tests/unit/test_address
check_PROGRAMS += $(COMPOSE_TESTS)
TESTS += $(COMPOSE_TESTS)
tests_unit_test_address_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_address_LDADD = $(UNIT_LDADD)

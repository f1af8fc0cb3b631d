# SPDX-License-Identifier: GPL-3.0-or-later
# The sync planner: every combination, the conflict rules, the guard,
# UIDVALIDITY recovery, and 100,000-message plans (timed, never asserted).
# Include after tests/unit/local.mk (it defines UNIT_CFLAGS and UNIT_LDADD).
PLAN_TESTS = tests/unit/test_plan
check_PROGRAMS += $(PLAN_TESTS)
TESTS += $(PLAN_TESTS)
tests_unit_test_plan_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_plan_LDADD = $(UNIT_LDADD)

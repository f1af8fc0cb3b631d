# SPDX-License-Identifier: GPL-3.0-or-later
# The notmuch layer against a real notmuch database in a scratch directory.
# FM_INDEX_BENCH=1 adds a measurement case (printed, never timed).
INDEX_TESTS = tests/unit/test_index
check_PROGRAMS += $(INDEX_TESTS)
TESTS += $(INDEX_TESTS)
tests_unit_test_index_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_index_LDADD = $(UNIT_LDADD)

# Loading libnotmuch at the first use, from several threads at once.
NMLIB_TESTS = tests/unit/test_nmlib
check_PROGRAMS += $(NMLIB_TESTS)
TESTS += $(NMLIB_TESTS)
tests_unit_test_nmlib_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_nmlib_LDADD = $(UNIT_LDADD)

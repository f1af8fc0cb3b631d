# SPDX-License-Identifier: GPL-3.0-or-later
# The store under kill -9: store-driver does the work, crash.test kills it
# at random moments and checks that nothing was lost or done twice.
check_PROGRAMS += tests/store/store-driver
tests_store_store_driver_CFLAGS = $(AM_CFLAGS)
tests_store_store_driver_LDADD = $(FULMAR_LIBS)
TESTS += tests/store/crash.test
EXTRA_DIST += tests/store/crash.test

# SPDX-License-Identifier: GPL-3.0-or-later
TESTS += tests/style/style.test
EXTRA_DIST += tests/style/style.test

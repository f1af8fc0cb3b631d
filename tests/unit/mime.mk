# SPDX-License-Identifier: GPL-3.0-or-later
# The mime module: envelopes and rendering, over the message corpus (found
# through FM_SRCDIR).
MIME_TESTS = tests/unit/test_mime
check_PROGRAMS += $(MIME_TESTS)
TESTS += $(MIME_TESTS)
tests_unit_test_mime_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_mime_LDADD = $(UNIT_LDADD)
EXTRA_DIST += \
	tests/corpus/alternative.eml \
	tests/corpus/encoded-words.eml \
	tests/corpus/esc-subject.eml \
	tests/corpus/forward-rfc822.eml \
	tests/corpus/gb2312.eml \
	tests/corpus/html-only.eml \
	tests/corpus/latin1-8bit.eml \
	tests/corpus/long-header.eml \
	tests/corpus/missing-boundary.eml \
	tests/corpus/mixed-pdf.eml \
	tests/corpus/no-date.eml \
	tests/corpus/plain-ascii.eml \
	tests/corpus/related.eml \
	tests/corpus/shift-jis.eml \
	tests/corpus/truncated-header.eml \
	tests/corpus/unknown-charset.eml \
	tests/corpus/utf8-qp.eml

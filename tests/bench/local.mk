# SPDX-License-Identifier: GPL-3.0-or-later
# Benchmarks are run by hand (tests/bench/README), never by make check.
EXTRA_DIST += \
	tests/bench/lib.sh \
	tests/bench/README \
	tests/bench/gen-corpus.py \
	tests/bench/neomutt-open.sh \
	tests/bench/fulmar-prep.sh \
	tests/bench/run.sh
EXTRA_DIST += tests/bench/pop3.sh
EXTRA_DIST += \
	tests/bench/send.sh \
	tests/bench/imap.sh \
	tests/bench/imap-floor.py \
	tests/bench/imap-mailbox.py

# SPDX-License-Identifier: GPL-3.0-or-later
# Integration tests run against real servers started once per run:
# start.test first, stop.test last, ordered through their .log targets so
# that `make -j check` keeps the order and a failed test still stops them.
INTEGRATION_TESTS = \
	tests/integration/servers.test \
	tests/integration/change.test \
	tests/integration/check.test \
	tests/integration/cli.test \
	tests/integration/imap-crash.test \
	tests/integration/imap-folders.test \
	tests/integration/imap-push.test \
	tests/integration/imap-push-net.test \
	tests/integration/imap-recover.test \
	tests/integration/imap-resync.test \
	tests/integration/imap-sync.test \
	tests/integration/index-lazy.test \
	tests/integration/mail.test \
	tests/integration/pop3.test \
	tests/integration/send.test \
	tests/integration/watch.test
TESTS += tests/servers/start.test $(INTEGRATION_TESTS) tests/servers/stop.test
$(INTEGRATION_TESTS:.test=.log): tests/servers/start.log
tests/servers/stop.log: $(INTEGRATION_TESTS:.test=.log)

EXTRA_DIST += \
	tests/servers/servers.sh \
	tests/servers/start.test \
	tests/servers/stop.test \
	tests/integration/lib.sh \
	tests/integration/watch-relay.py \
	$(INTEGRATION_TESTS)
CLEANFILES = tests/servers/env

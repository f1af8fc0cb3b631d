# SPDX-License-Identifier: GPL-3.0-or-later
# Scripted hostile servers (see tests/hostile/README). Tests that take their
# certificates from the private servers (need_servers, $FM_SERVER_CERT ...)
# must be ordered after tests/servers/start.log like the integration tests.
EXTRA_DIST += \
	tests/hostile/README \
	tests/hostile/hostile.py \
	tests/hostile/lib_hostile.sh

HOSTILE_TESTS = tests/hostile/hostile.test tests/hostile/pop3-broken.test \
	tests/hostile/pop3-uidl.test tests/hostile/push.test \
	tests/hostile/send.test
TESTS += $(HOSTILE_TESTS)
$(HOSTILE_TESTS:.test=.log): tests/servers/start.log
tests/servers/stop.log: $(HOSTILE_TESTS:.test=.log)
EXTRA_DIST += $(HOSTILE_TESTS)

# SPDX-License-Identifier: GPL-3.0-or-later
#
# Tiny TAP helpers for shell integration tests (automake's TAP driver).
# Use:  . "$(dirname "$0")/lib.sh"; plan 3; check "desc" cmd args...
# Results are in the TAP lines; the script's exit status stays 0 unless
# it bails out (automake reports a non-zero status as an extra ERROR).

_tap_n=0

plan() { echo "1..$1"; }

# diag MSG... : each line of MSG as a TAP comment.
diag() { printf '%s\n' "$*" | sed 's/^/# /'; }

bail_out() {
	echo "Bail out! $*"
	exit 1
}

pass() {
	_tap_n=$((_tap_n + 1))
	echo "ok $_tap_n - $1"
}

# fail DESC [DIAG...]
fail() {
	_tap_n=$((_tap_n + 1))
	echo "not ok $_tap_n - $1"
	shift
	if (($#)); then diag "$@"; fi
	return 0
}

# skip DESC [COUNT] : COUNT results skipped for reason DESC.
skip() {
	local i
	for ((i = 0; i < ${2:-1}; i++)); do
		_tap_n=$((_tap_n + 1))
		echo "ok $_tap_n # SKIP $1"
	done
}

# check DESC CMD... : ok if CMD succeeds; its output as diagnostics if not.
check() {
	local desc=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	if ((rc == 0)); then pass "$desc"; else fail "$desc" "exit $rc: $*" "$out"; fi
}

# check_fails DESC CMD... : ok if CMD fails (for "must be refused" checks).
check_fails() {
	local desc=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	if ((rc != 0)); then pass "$desc"; else fail "$desc" "unexpected success: $*" "$out"; fi
}

# is GOT EXPECTED DESC
is() {
	if [[ $1 == "$2" ]]; then
		pass "$3"
	else
		fail "$3" "got:      '$1'" "expected: '$2'"
	fi
}

# wait_for SECONDS CMD... : poll CMD every 0.1 s until it succeeds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

# Load the settings of the servers that tests/servers/start.test started.
need_servers() {
	local env=${FM_SERVERS_ENV:-tests/servers/env}
	[[ -r $env ]] ||
		bail_out "no test servers: $env missing (tests/servers/start.test must run first; set FM_SERVERS_ENV)"
	# shellcheck source=/dev/null
	. "$env"
	[[ -n ${FM_SERVERS_DIR:-} && -d $FM_SERVERS_DIR ]] ||
		bail_out "test servers in $env are gone (FM_SERVERS_DIR=${FM_SERVERS_DIR:-})"
}

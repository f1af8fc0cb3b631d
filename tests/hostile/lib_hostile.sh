# SPDX-License-Identifier: GPL-3.0-or-later
# shellcheck shell=bash
#
# Helpers for TAP tests against the scripted servers of hostile.py.
#
#   . "$(dirname "$0")/lib_hostile.sh"
#   need_servers    # only for the certificates ($FM_SERVER_CERT ...)
#   plan 2
#   hostile_start imap-starttls-inject \
#   	--cert "$FM_SERVER_CERT" --key "$FM_SERVER_KEY" || bail_out "no server"
#   check_fails "injected STARTTLS reply refused" fulmar ... "$HOSTILE_PORT"
#   check_fails "no credentials in clear" hostile_credentials_in_clear
#   hostile_stop
#
# Every server gets its own directory (port, record, log) under $HOSTILE_DIR,
# a fresh temporary directory unless set; it is removed at exit unless
# HOSTILE_KEEP=1. Servers still running at exit are stopped. A test that
# sets its own EXIT trap must call hostile_stop_all in it.

# shellcheck source=../integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"

_hostile_py=$(dirname "${BASH_SOURCE[0]}")/hostile.py
_hostile_n=0
_hostile_pids=()
_hostile_own_dir=''

# The system python: a pyenv shim costs ~100 ms per call, and runs python
# as its child, so $! would not be the server's PID.
_hostile_python=/usr/bin/python3
[[ -x $_hostile_python ]] || _hostile_python=$(command -v python3)

# True if PID is running and not a zombie (kill -0 succeeds on zombies).
_hostile_alive() {
	local stat
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# hostile_start SCENARIO [ARG...] : start hostile.py for SCENARIO with the
# extra ARGs (--cert/--key, --connections, --lifetime, --implicit; they
# override the defaults). Waits up to 5 s for its port, then sets and
# exports HOSTILE_PORT, HOSTILE_RECORD (the client's bytes), HOSTILE_LOG
# (the server's own log) and HOSTILE_PID. Returns 1, with the log as TAP
# diagnostics, if the server did not come up.
hostile_start() {
	local scenario=$1 dir i port=''
	shift
	if [[ -z ${HOSTILE_DIR:-} ]]; then
		HOSTILE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/hostile.XXXXXX") || return 1
		_hostile_own_dir=$HOSTILE_DIR
	fi
	_hostile_n=$((_hostile_n + 1))
	dir=$HOSTILE_DIR/$_hostile_n-$scenario
	mkdir -p "$dir" || return 1
	# stdout to /dev/null: a server holding it would block a $(...) that
	# called us until the server exits.
	"$_hostile_python" "$_hostile_py" --scenario "$scenario" \
		--port-file "$dir/port" --record "$dir/record" \
		--lifetime "${HOSTILE_LIFETIME:-60}" "$@" \
		</dev/null >/dev/null 2>"$dir/log" &
	HOSTILE_PID=$!
	_hostile_pids+=("$HOSTILE_PID")
	HOSTILE_RECORD=$dir/record
	HOSTILE_LOG=$dir/log
	for ((i = 0; i < 100; i++)); do
		[[ -s $dir/port ]] && { read -r port <"$dir/port" || true; }
		[[ $port =~ ^[0-9]+$ ]] && break
		_hostile_alive "$HOSTILE_PID" || break
		sleep 0.05
	done
	if ! [[ $port =~ ^[0-9]+$ ]]; then
		diag "hostile.py $scenario did not start:" "$(cat "$dir/log")"
		hostile_stop "$HOSTILE_PID"
		return 1
	fi
	HOSTILE_PORT=$port
	export HOSTILE_PORT HOSTILE_RECORD HOSTILE_LOG HOSTILE_PID
}

# hostile_stop [PID] : stop one server (default: the last one started),
# SIGKILL after 5 s if SIGTERM did not do it, and reap it.
hostile_stop() {
	local pid=${1:-${HOSTILE_PID:-}} i p rest=()
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		_hostile_alive "$pid" || break
		sleep 0.05
	done
	if _hostile_alive "$pid"; then
		diag "hostile.py (pid $pid) ignored SIGTERM, killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	for p in "${_hostile_pids[@]}"; do
		[[ $p == "$pid" ]] || rest+=("$p")
	done
	_hostile_pids=("${rest[@]}")
	return 0
}

# hostile_stop_all : stop every server still running; remove our scratch
# directory unless HOSTILE_KEEP=1.
hostile_stop_all() {
	local p
	for p in "${_hostile_pids[@]}"; do
		hostile_stop "$p"
	done
	if [[ -n $_hostile_own_dir && ${HOSTILE_KEEP:-0} != 1 ]]; then
		rm -rf "$_hostile_own_dir"
		_hostile_own_dir=''
	fi
}

trap hostile_stop_all EXIT
# Make a signal end the script through exit, so the EXIT trap runs.
trap 'exit 130' INT
trap 'exit 143' TERM

# hostile_cleartext [RECORD] : what each connection sent before its TLS
# handshake completed (all of it if it never did), markers included.
hostile_cleartext() {
	LC_ALL=C awk '
		/^=== connection [0-9]+ ===$/ { conn = $3; next }
		/^=== TLS ===$/ { tls[conn] = 1; next }
		!tls[conn]
	' "${1:-$HOSTILE_RECORD}"
}

# hostile_credentials_in_clear [RECORD] : true if the client sent a password
# or token before TLS: hostile.py marks every LOGIN, PASS, AUTH... it
# parsed; the raw grep catches bytes it did not parse (pipelined after
# STARTTLS, or sent where a TLS handshake was expected).
hostile_credentials_in_clear() {
	local rec=${1:-$HOSTILE_RECORD}
	grep -aq '^=== credentials in clear: ' "$rec" && return 0
	hostile_cleartext "$rec" | grep -aqF -e alice-pw-1 -e tok-123
}

# hostile_tls_done [RECORD] : true if some TLS handshake completed.
hostile_tls_done() {
	grep -aqx '=== TLS ===' "${1:-$HOSTILE_RECORD}"
}

# hostile_diag : the last server's log and record as TAP diagnostics.
hostile_diag() {
	diag "hostile.py log:" "$(cat "$HOSTILE_LOG" 2>/dev/null)"
	diag "client bytes:" "$(LC_ALL=C tr -c '[:print:]\n' '?' <"$HOSTILE_RECORD" 2>/dev/null | head -c 4000)"
}

#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The sending benchmark of issue 6: 200 queued messages of 10 KB through
# the private Postfix (submission with STARTTLS + AUTH, delivering into the
# private Dovecot), side by side in one run:
#   fulmar   `fulmar send --flush`: one session for the whole queue, each
#            message recorded "sending" before DATA and filed in Sent
#            after the 250 (queued beforehand, untimed)
#   msmtp    called once per message, as msmtpq flushes its queue: a
#            process, a connection, TLS and AUTH per message
# Several runs, interleaved; medians and the fulmar/msmtp ratio printed
# (target <= 1.0). See README, section "Sending".
#
#   send.sh [-n COUNT] [-r RUNS] [-s KB]
#
# Environment: FULMAR (default: src/fulmar of this tree; benchmark a build
# without sanitizers), FM_BENCH_DIR (default /tmp/fm-bench; results go
# there). Needs root (tests/servers starts Postfix), msmtp, python3.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
servers=$top/tests/servers/servers.sh
fulmar=${FULMAR:-$top/src/fulmar}
dir=${FM_BENCH_DIR:-/tmp/fm-bench}
count=200 runs=5 kb=10

while (($#)); do
	case $1 in
	-n) count=$2; shift 2 ;;
	-r) runs=$2; shift 2 ;;
	-s) kb=$2; shift 2 ;;
	*)
		sed -n '/^#   send.sh/p' "$0" | sed 's/^# *//' >&2
		exit 2
		;;
	esac
done
for v in "$count" "$runs" "$kb"; do
	[[ $v =~ ^[1-9][0-9]*$ ]] || { echo "send.sh: -n, -r and -s take numbers" >&2; exit 2; }
done
((EUID == 0)) || { echo "send.sh: needs root (tests/servers starts Postfix)" >&2; exit 2; }
command -v msmtp >/dev/null || { echo "send.sh: msmtp is missing (contrib/deps installs it)" >&2; exit 2; }
[[ -x $fulmar ]] || { echo "send.sh: no fulmar at $fulmar (set FULMAR)" >&2; exit 2; }

mkdir -p "$dir" || exit 1
stamp=$(date +%Y%m%d-%H%M%S)
log=$dir/send-$stamp.log
note() { echo "$@" | tee -a "$log"; }

srv='' work=''
cleanup() {
	[[ -n $srv ]] && "$servers" stop "$srv" >/dev/null 2>&1
	[[ -n $srv ]] && rm -rf "$srv"
	[[ -n $work ]] && rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

srv=$(mktemp -d /tmp/fm-bsend.XXXXXX) || exit 1
work=$(mktemp -d "$dir/send-work.XXXXXX") || exit 1
FM_SERVERS_WATCHDOG_SECONDS=7200 "$servers" start "$srv" >>"$log" 2>&1 ||
	{ echo "send.sh: the servers did not start (see $log)" >&2; exit 1; }
# shellcheck source=/dev/null
. "$srv/env"

# The messages: COUNT files of about KB kilobytes, to bob.
mkdir -p "$work/msgs"
/usr/bin/python3 - "$work/msgs" "$count" "$kb" "$FM_USER1" "$FM_USER2" <<'PY'
import random, sys
out, n, kb, frm, to = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
rnd = random.Random(6)
words = "the a mail queue server message offline send fulmar outbox sent reply".split()
for i in range(n):
    body, size = [], 0
    while size < kb * 1024 - 300:
        line = " ".join(rnd.choice(words) for _ in range(11))
        body.append(line)
        size += len(line) + 1
    with open("%s/%04d.eml" % (out, i), "w") as f:
        f.write("From: Alice <%s>\nTo: Bob <%s>\nSubject: bench %d\n"
                "Date: Sun, 22 Nov 2026 10:00:00 +0000\n"
                "Message-ID: <bench.%d@fulmar.test>\n\n%s\n" % (frm, to, i, i, "\n".join(body)))
PY

cat >"$work/msmtprc" <<EOF
defaults
logfile -
account bench
host 127.0.0.1
port $FM_SUBMISSION_PORT
tls on
tls_starttls on
tls_trust_file $FM_CA_FILE
auth plain
user $FM_USER1
password $FM_PASS1
from $FM_USER1
account default : bench
EOF
chmod 600 "$work/msmtprc"

closed=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
write_conf() { # PORT FILE
	cat >"$2" <<EOF
[account bench]
email = $FM_USER1
host = 127.0.0.1
port = $FM_IMAPS_PORT
tls_ca_file = $FM_CA_FILE
password = $FM_PASS1
smtp_host = 127.0.0.1
smtp_port = $1
smtp_tls = starttls
EOF
	chmod 600 "$2"
}
write_conf "$closed" "$work/offline.conf"
write_conf "$FM_SUBMISSION_PORT" "$work/online.conf"

now() { printf '%s' "${EPOCHREALTIME/[.,]/}"; }
ms_since() { echo $((($(now) - $1) / 1000)); }
delivered() { find "$FM_MAILDIR2"/new "$FM_MAILDIR2"/cur -type f | wc -l; }
empty_bob() { $FM_DOVEADM expunge -u "$FM_USER2" mailbox INBOX all >/dev/null 2>&1; }
wait_delivered() { # COUNT
	local i
	for ((i = 0; i < 600; i++)); do
		(($(delivered) >= $1)) && return 0
		sleep 0.1
	done
	return 1
}

run_msmtp() {
	local t0 f
	t0=$(now)
	for f in "$work"/msgs/*.eml; do
		msmtp -C "$work/msmtprc" "$FM_USER2" <"$f" >>"$work/msmtp.out" 2>&1 ||
			{ echo "send.sh: msmtp failed on $f" >&2; return 1; }
	done
	ms_since "$t0"
}

run_fulmar() {
	local data=$work/fulmar-data f t0 out
	rm -rf "$data"
	for f in "$work"/msgs/*.eml; do
		XDG_DATA_HOME=$data "$fulmar" -c "$work/offline.conf" send "$FM_USER2" <"$f" 2>/dev/null ||
			{ echo "send.sh: fulmar send (queueing) failed on $f" >&2; return 1; }
	done
	sync
	t0=$(now)
	out=$(XDG_DATA_HOME=$data "$fulmar" -c "$work/online.conf" send --flush 2>&1)
	local ms
	ms=$(ms_since "$t0")
	grep -q "^bench: $count sent, 0 deferred, 0 failed" <<<"$out" ||
		{ echo "send.sh: fulmar did not send all: $out" >&2; return 1; }
	echo "$ms"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

note "send.sh: $count messages of ~$kb KB, $runs runs, fulmar $fulmar ($(msmtp --version | head -n 1))"
m_times=() f_times=()
for ((r = 1; r <= runs; r++)); do
	empty_bob
	sync
	m=$(run_msmtp) || exit 1
	wait_delivered "$count" || { echo "send.sh: msmtp's messages did not all arrive" >&2; exit 1; }
	empty_bob
	f=$(run_fulmar) || exit 1
	wait_delivered "$count" || { echo "send.sh: fulmar's messages did not all arrive" >&2; exit 1; }
	m_times+=("$m") f_times+=("$f")
	note "run $r: msmtp ${m} ms, fulmar ${f} ms (load $(cut -d' ' -f1-3 /proc/loadavg))"
done
mm=$(printf '%s\n' "${m_times[@]}" | median)
fm=$(printf '%s\n' "${f_times[@]}" | median)
note "median: msmtp $mm ms ($((mm * 1000 / count)) us/message), fulmar $fm ms ($((fm * 1000 / count)) us/message)"
note "$(awk -v f="$fm" -v m="$mm" 'BEGIN { printf "ratio fulmar/msmtp: %.3f (target <= 1.0)", f / m }')"

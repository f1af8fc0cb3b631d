#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The POP3 download benchmark of issue 7: fulmar against fetchmail, side
# by side, on a private Dovecot (POP3S on 127.0.0.1) holding N realistic
# messages, keep on server. See README, section "POP3 download".
#
#   pop3.sh [-r RUNS] [-n COUNT]
#
# Environment:
#   FM_BENCH_DIR     corpora and results (default /tmp/fm-bench; shared
#                    with run.sh, whose corpora are reused)
#   FM_POP3_COUNT    messages in the mailbox (default 10000; -n overrides)
#   FM_POP3_RUNS     timed runs per tool and phase (default 5; -r overrides)
#   FM_BENCH_SEED    corpus seed (default 1)
#   FM_FETCHMAIL_RETR=1  make fetchmail use RETR instead of TOP (see README)
#   FULMAR_SYNC_CMD  the fulmar command to time, one simple command (words,
#                    quotes and $VARIABLES are expanded; no pipes), e.g.
#                    'fulmar -c $FULMAR_CONFIG sync $FULMAR_ACCOUNT'.
#                    Unset: only fetchmail is measured.
#   The command sees FULMAR_CONFIG (a config with the account, written by
#   write_fulmar_config), FULMAR_ACCOUNT (its name), FULMAR_DATA (a fresh
#   data dir per full download, the same one for the nothing-new run after
#   it; also XDG_DATA_HOME) and XDG_CONFIG_HOME (holds FULMAR_CONFIG as
#   fulmar/config, so the command works without -c too).
#
# Per run, interleaved: fetchmail full, fulmar full, fetchmail nothing new,
# fulmar nothing new. Needs root (the private Postfix/Dovecot of
# tests/servers), fetchmail, GNU time and python3.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
servers=$top/tests/servers/servers.sh
dir=${FM_BENCH_DIR:-/tmp/fm-bench}
count=${FM_POP3_COUNT:-10000}
runs=${FM_POP3_RUNS:-5}
seed=${FM_BENCH_SEED:-1}
account=bench

while (($#)); do
	case $1 in
	-r) runs=$2; shift 2 ;;
	-n) count=$2; shift 2 ;;
	*)
		sed -n '/^#   pop3.sh/,/^# tests\/servers/p' "$0" | sed 's/^# \{0,1\}//' >&2
		exit 2
		;;
	esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "pop3.sh: RUNS must be a number" >&2; exit 2; }
[[ $count =~ ^[1-9][0-9]*$ ]] || { echo "pop3.sh: COUNT must be a number" >&2; exit 2; }

((EUID == 0)) || { echo "pop3.sh: needs root (tests/servers starts Postfix)" >&2; exit 2; }
for tool in fetchmail python3 dovecot postfix openssl; do
	command -v "$tool" >/dev/null || {
		echo "pop3.sh: $tool is missing (apt-get install fetchmail time python3 dovecot-imapd dovecot-pop3d dovecot-lmtpd postfix)" >&2
		exit 2
	}
done
[[ -x /usr/bin/time ]] || { echo "pop3.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 2; }

mkdir -p "$dir" || exit 1
dir=$(cd "$dir" && pwd)
if [[ $dir/ == "$top"/* ]]; then
	echo "pop3.sh: FM_BENCH_DIR=$dir is inside the source tree; use a path outside it" >&2
	exit 2
fi

stamp=$(date +%Y%m%d-%H%M%S)
log=$dir/pop3-$stamp.log
table=$dir/pop3-$stamp.txt
note() { echo "$@" | tee -a "$log"; }
secs_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }'; }

# ------------------------------------------------------------ cleanup ----
# Everything this run creates besides the results and the corpus: the
# server instance (a short path under /tmp: unix sockets) and $work.

srv='' work=''
cleanup() {
	if [[ -n $srv && -e $srv/.fulmar-servers ]]; then
		"$servers" stop "$srv" >>"$log" 2>&1 || echo "pop3.sh: could not stop the servers in $srv" >&2
		rm -rf -- "$srv"
	elif [[ -n $srv ]]; then
		rmdir -- "$srv" 2>/dev/null
	fi
	[[ -n $work ]] && rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------- corpus ----

# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"
# ------------------------------------------------------------- fulmar ----

# write_fulmar_config FILE: a config with one POP3 account, $account, for
# alice on the private Dovecot (needs the servers' env sourced). Mode 600:
# it holds the password.
write_fulmar_config() {
	mkdir -p "$(dirname "$1")" || return 1
	(
		umask 077
		cat >"$1" <<EOF
# Written by tests/bench/pop3.sh for the POP3 benchmark.
[account $account]
email = $FM_USER1
user = $FM_USER1
password = $FM_PASS1
protocol = pop3
host = 127.0.0.1
port = $FM_POP3S_PORT
tls = implicit
tls_ca_file = $FM_CA_FILE
keep_on_server = yes
schedule = manual
EOF
	)
}

# stored DATA_DIR: messages fulmar holds in the account's INBOX.
stored() {
	local m=$1/fulmar/mail/$account/INBOX
	find "$m/cur" "$m/new" -maxdepth 1 -type f 2>/dev/null | wc -l
}

# ------------------------------------------------------------- timing ----

# fetchmail_run IDFILE BSMTP OUT: one poll; prints timed's line.
fetchmail_run() {
	FETCHMAILHOME=$work/fetchmail timed "$3" \
		fetchmail -f "$work/fetchmail/rc" --idfile "$1" --bsmtp "$2" -k -U
}

# fulmar_run DATA OUT: FULMAR_SYNC_CMD once with FULMAR_DATA=DATA.
fulmar_run() {
	local -a cmd
	export FULMAR_DATA=$1 XDG_DATA_HOME=$1
	mkdir -p "$1"
	eval "cmd=($FULMAR_SYNC_CMD)"
	timed "$2" "${cmd[@]}"
}

fail() {
	echo "pop3.sh: $*" >&2
	echo "pop3.sh: $*" >>"$log"
	exit 1
}

# ---------------------------------------------------------------- main ----

note "fm-bench pop3 $stamp on $(uname -n): $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
note "fetchmail $(fetchmail --version 2>/dev/null | sed -n 's/^This is fetchmail release \([^+ ]*\).*/\1/p'), $(dovecot --version | sed 's/^/dovecot /')"
note "results: $table, every run: $log"
fulmar=no
if [[ -n ${FULMAR_SYNC_CMD:-} ]]; then
	fulmar=yes
else
	note "fulmar side: not measured (set FULMAR_SYNC_CMD)"
fi

c=$(corpus "$count" "$seed") || exit 1
work=$(mktemp -d "$dir/pop3-work.XXXXXX") || exit 1
srv=$(mktemp -d /tmp/fm-bpop3.XXXXXX) || exit 1
# Long runs must outlive servers.sh's watchdog (45 min by default).
FM_SERVERS_WATCHDOG_SECONDS=${FM_SERVERS_WATCHDOG_SECONDS:-14400} \
	"$servers" start "$srv" >>"$log" 2>&1 || fail "servers did not start (see $log)"
# shellcheck source=/dev/null
source "$srv/env"
note "servers: $srv, POP3S on 127.0.0.1:$FM_POP3S_PORT"

# Fill alice's mailbox: copy the corpus files (cur/ and new/ as they are)
# straight into her maildir, owned by the mail uid; Dovecot finds them.
note "filling alice's INBOX with $count messages ..."
t0=$EPOCHREALTIME
if ! { cp -r --preserve=timestamps "$c/cur/." "$FM_MAILDIR1/cur/" &&
	cp -r --preserve=timestamps "$c/new/." "$FM_MAILDIR1/new/" &&
	chown -R --reference="$FM_MAILDIR1" "$FM_MAILDIR1"; }; then
	fail "could not fill $FM_MAILDIR1"
fi
note "  copied in $(secs_since "$t0")"
t0=$EPOCHREALTIME
n=$($FM_DOVEADM mailbox status -u "$FM_USER1" messages INBOX 2>>"$log") || fail "doveadm mailbox status failed"
note "  doveadm: $n (after $(secs_since "$t0"))"
[[ $n == *" messages=$count" ]] || fail "Dovecot sees $n, expected $count"

mkdir -p "$work/fetchmail"
(
	umask 077
	# sslcommonname: fetchmail checks the certificate's DNS names and CN
	# only, not its IP address entries (the cert has IP:127.0.0.1).
	cat >"$work/fetchmail/rc" <<EOF
set no syslog
set no bouncemail
poll 127.0.0.1 port $FM_POP3S_PORT protocol pop3 uidl
  user "$FM_USER1" password "$FM_PASS1"
  ssl sslcertfile "$FM_CA_FILE" sslcertck sslcommonname localhost
  keep
EOF
)
if [[ ${FM_FETCHMAIL_RETR:-0} == 1 ]]; then
	export FETCHMAIL_POP3_FORCE_RETR=1
	note "fetchmail: FETCHMAIL_POP3_FORCE_RETR=1 (RETR instead of TOP)"
fi
if [[ $fulmar == yes ]]; then
	export XDG_CONFIG_HOME=$work/fulmar-config
	export XDG_CACHE_HOME=$work/fulmar-cache XDG_STATE_HOME=$work/fulmar-state
	export FULMAR_CONFIG=$XDG_CONFIG_HOME/fulmar/config FULMAR_ACCOUNT=$account
	write_fulmar_config "$FULMAR_CONFIG" || fail "could not write $FULMAR_CONFIG"
	note "fulmar: FULMAR_SYNC_CMD=$FULMAR_SYNC_CMD, FULMAR_CONFIG=$FULMAR_CONFIG"
fi

# check_full TOOL RESULT IDFILE|DATA: the full run succeeded and got
# every message.
check_fetchmail() { # RESULT IDFILE OUT PHASE
	local st=${1##* } got
	got=$(wc -l <"$2" 2>/dev/null || echo 0)
	if [[ $4 == full ]]; then
		((st == 0)) || fail "fetchmail full download: status $st; $(tail -n 3 "$3")"
		((got == count)) || fail "fetchmail full download: $got UIDs in the idfile, expected $count"
	else
		# 1 is fetchmail's "no mail".
		((st == 1)) || fail "fetchmail nothing-new: status $st (1 = no mail expected); $(tail -n 3 "$3")"
	fi
}
check_fulmar() { # RESULT DATA OUT PHASE
	local st=${1##* } got
	((st == 0)) || fail "FULMAR_SYNC_CMD ($4): status $st; $(tail -n 5 "$3")"
	got=$(stored "$2")
	((got == count)) || fail "fulmar ($4): $got messages in $2/fulmar/mail/$account/INBOX, expected $count"
}

# Warm-up, discarded: the first POP3 session makes Dovecot read every
# message once (sizes for LIST/STAT, kept in dovecot-uidlist as W=) and
# move new/ to cur/; it also warms the page cache for both tools.
note "warm-up: one fetchmail full download (discarded) ..."
rm -f "$work/ids" "$work/out.bsmtp"
r=$(fetchmail_run "$work/ids" "$work/out.bsmtp" "$work/fetchmail.out")
check_fetchmail "$r" "$work/ids" "$work/fetchmail.out" full
note "  fetchmail ms, RSS KB, CPU ms, status: $r; BSMTP file $(du -m "$work/out.bsmtp" | cut -f1) MB," \
	"$(grep -c '^MAIL FROM:' "$work/out.bsmtp") messages"
rm -f "$work/ids" "$work/out.bsmtp"
if [[ $fulmar == yes ]]; then
	note "warm-up: one fulmar full download (discarded) ..."
	rm -rf "$work/data"
	r=$(fulmar_run "$work/data" "$work/fulmar.out")
	check_fulmar "$r" "$work/data" "$work/fulmar.out" full
	note "  fulmar ms, RSS KB, CPU ms, status: $r; stored $(stored "$work/data") messages; output:"
	head -n 3 "$work/fulmar.out" | cut -c1-120 | sed 's/^/    /' | tee -a "$log"
	rm -rf "$work/data"
fi

for f in fetchmail-full fetchmail-new fulmar-full fulmar-new; do
	: >"$work/$f.runs"
done
for ((i = 1; i <= runs; i++)); do
	# sync: the previous run's dirty pages are not written on this one's time.
	sync
	a=$(fetchmail_run "$work/ids" "$work/out.bsmtp" "$work/fetchmail.out")
	check_fetchmail "$a" "$work/ids" "$work/fetchmail.out" full
	rm -f "$work/out.bsmtp"
	echo "$a" >>"$work/fetchmail-full.runs"
	line="run $i/$runs: full: fetchmail $a"
	if [[ $fulmar == yes ]]; then
		sync
		b=$(fulmar_run "$work/data" "$work/fulmar.out")
		check_fulmar "$b" "$work/data" "$work/fulmar.out" full
		echo "$b" >>"$work/fulmar-full.runs"
		line+="; fulmar $b"
	fi
	sync
	a=$(fetchmail_run "$work/ids" "$work/out.bsmtp" "$work/fetchmail.out")
	check_fetchmail "$a" "$work/ids" "$work/fetchmail.out" new
	[[ -s $work/out.bsmtp ]] && fail "fetchmail nothing-new wrote messages"
	rm -f "$work/ids" "$work/out.bsmtp"
	echo "$a" >>"$work/fetchmail-new.runs"
	line+="; nothing new: fetchmail $a"
	if [[ $fulmar == yes ]]; then
		b=$(fulmar_run "$work/data" "$work/fulmar.out")
		check_fulmar "$b" "$work/data" "$work/fulmar.out" nothing-new
		echo "$b" >>"$work/fulmar-new.runs"
		line+="; fulmar $b"
		rm -rf "$work/data"
	fi
	note "$line; load $(cut -d' ' -f1 /proc/loadavg)"
done

printf '%-9s %-11s %8s %4s %9s %8s %8s %8s %7s\n' tool phase messages runs \
	"median ms" "min ms" "max ms" "CPU ms" "RSS MB" >"$table"
row() { # TOOL PHASE RUNSFILE
	local med min max rss cpu
	read -r med min max <<<"$(stats "$3" 1)"
	read -r rss _ _ <<<"$(stats "$3" 2)"
	read -r cpu _ _ <<<"$(stats "$3" 3)"
	printf '%-9s %-11s %8d %4d %9.1f %8.1f %8.1f %8.1f %7.1f\n' "$1" "$2" "$count" "$runs" \
		"$med" "$min" "$max" "$cpu" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" >>"$table"
}
ratio() { # PHASE FULMAR_RUNS FETCHMAIL_RUNS
	local fm nm fr nr
	read -r fm _ _ <<<"$(stats "$2" 1)"
	read -r nm _ _ <<<"$(stats "$3" 1)"
	read -r fr _ _ <<<"$(stats "$2" 2)"
	read -r nr _ _ <<<"$(stats "$3" 2)"
	awk -v p="$1" -v f="$fm" -v n="$nm" -v fr="$fr" -v nr="$nr" 'BEGIN {
		t = (n > 0) ? f / n : 0
		printf "ratio     %-11s fulmar/fetchmail: time %.3f (target <= 1.0: %s), RSS %.3f\n",
			p, t, ((t <= 1) ? "met" : "NOT met"), ((nr > 0) ? fr / nr : 0)
	}' >>"$table"
}
row fetchmail full "$work/fetchmail-full.runs"
row fetchmail nothing-new "$work/fetchmail-new.runs"
if [[ $fulmar == yes ]]; then
	row fulmar full "$work/fulmar-full.runs"
	row fulmar nothing-new "$work/fulmar-new.runs"
	ratio full "$work/fulmar-full.runs" "$work/fetchmail-full.runs"
	ratio nothing-new "$work/fulmar-new.runs" "$work/fetchmail-new.runs"
else
	echo "fulmar side: not measured (set FULMAR_SYNC_CMD)" >>"$table"
fi

echo
tee -a "$log" <"$table"
echo "median/min/max ms: wall time, launch to exit; CPU ms: user+system of the"
echo "client alone (not Dovecot), median; RSS MB: peak RSS, median."
echo "Load during the runs: see $log"

#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The IMAP sync benchmark of issue 5: fulmar against mbsync (isync), side
# by side in one run, on a private Dovecot (IMAPS on 127.0.0.1) seeded with
# 10,000 INBOX messages plus 2,000 in three folders (mean ~45 KB). See
# README, section "IMAP sync".
#
#   imap.sh [-r RUNS]
#
# Environment:
#   FM_BENCH_DIR     corpora and results (default /tmp/fm-bench; shared
#                    with run.sh and pop3.sh, whose corpora are reused)
#   FM_IMAP_RUNS     timed runs per tool and case (default 5; -r overrides)
#   FM_BENCH_SEED    corpus seed (default 1; the folders and the new
#                    messages use SEED+1 and SEED+2)
#   FM_IMAP_WAN_MS   one-way delay of the distant-server cases (default 20,
#                    a 40 ms round trip); 0 leaves them out
#   FULMAR           the fulmar binary to time; it must be built without
#                    sanitizers. Unset: the script builds the tracked files
#                    of this tree (as they are on disk) with a plain
#                    `./configure CFLAGS=-O2` in its work directory.
#                    "none": measure mbsync and the floor only.
#
# Cases, per run, interleaved (the order of the tools alternates):
#   floor     imap-floor.py: one pipelined UID FETCH 1:* BODY.PEEK[] of
#             INBOX over the same TLS link, bodies dropped (also: all
#             folders, for reference)
#   initial   sync into an empty cache (peak RSS from GNU time)
#   nothing   resync, nothing changed on the server
#   changes   resync after 100 new messages and 100 flag changes on the
#             server (imap-mailbox.py change), reverted after each tool's
#             run, so both tools see the same changes; its floor,
#             imap-floor.py --changes, is the least a client asks (SELECT,
#             changed flags, new bodies, per mailbox) with no local work
#   wan-nothing, wan-changes
#             the same two resyncs with a distant server: through a relay
#             (tests/integration/watch-relay.py --delay) that holds what
#             either side sends for FM_IMAP_WAN_MS; before wan-nothing,
#             an untimed resync on the direct link catches the revert up.
#             No target of issue 5 is on them: they show what the round
#             trips cost, which the direct link (no delay) hides
#
# Durability, left as each tool ships it (nothing is turned off):
#   mbsync    FSync yes, its default: every stored message file and every
#             state journal/state file is fsynced.
#   fulmar    its store's own rules (doc/HACKING, "The store").
# The warm-up runs count each tool's fsync-family calls with strace, and the
# table prints them.
#
# Needs root (the private Postfix/Dovecot of tests/servers), mbsync, GNU
# time, strace and python3.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
servers=$top/tests/servers/servers.sh
dir=${FM_BENCH_DIR:-/tmp/fm-bench}
runs=${FM_IMAP_RUNS:-5}
seed=${FM_BENCH_SEED:-1}
wan_ms=${FM_IMAP_WAN_MS:-20}
account=bench
n_inbox=10000
folder_names=Lists,Work,Family
folder_split=1000,600,400
n_folders=2000
n_delta=100
# Targets of issue 5: fulmar/mbsync at most this.
target_initial=0.7 target_rss=2.0 target_nothing=0.5 target_changes=0.5

while (($#)); do
	case $1 in
	-r) runs=$2; shift 2 ;;
	*)
		sed -n '/^#   imap.sh/,/^# Needs root/p' "$0" | sed 's/^# \{0,1\}//' >&2
		exit 2
		;;
	esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "imap.sh: RUNS must be a number" >&2; exit 2; }
[[ $wan_ms =~ ^[0-9]+$ ]] || { echo "imap.sh: FM_IMAP_WAN_MS must be a number of milliseconds" >&2; exit 2; }

((EUID == 0)) || { echo "imap.sh: needs root (tests/servers starts Postfix)" >&2; exit 2; }
for tool in mbsync strace dovecot postfix openssl; do
	command -v "$tool" >/dev/null || {
		echo "imap.sh: $tool is missing (apt-get install isync strace time python3 dovecot-imapd dovecot-lmtpd postfix)" >&2
		exit 2
	}
done
[[ -x /usr/bin/time ]] || { echo "imap.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 2; }
# The system python: a pyenv shim costs ~100 ms per start, which the floor
# would pay.
py=/usr/bin/python3
[[ -x $py ]] || py=$(command -v python3) || { echo "imap.sh: python3 is missing" >&2; exit 2; }

mkdir -p "$dir" || exit 1
dir=$(cd "$dir" && pwd)
if [[ $dir/ == "$top"/* ]]; then
	echo "imap.sh: FM_BENCH_DIR=$dir is inside the source tree; use a path outside it" >&2
	exit 2
fi

stamp=$(date +%Y%m%d-%H%M%S)
log=$dir/imap-$stamp.log
table=$dir/imap-$stamp.txt
note() { echo "$@" | tee -a "$log"; }
secs_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }'; }
fail() {
	echo "imap.sh: $*" >&2
	echo "imap.sh: $*" >>"$log"
	exit 1
}

# ------------------------------------------------------------ cleanup ----
# Everything this run creates besides the results and the corpora: the
# server instance (a short path under /tmp: unix sockets) and $work (the
# caches of both tools, the fulmar build).

srv='' work='' relay_pid=''
cleanup() {
	[[ -n $relay_pid ]] && kill "$relay_pid" 2>/dev/null
	if [[ -n $srv && -e $srv/.fulmar-servers ]]; then
		"$servers" stop "$srv" >>"$log" 2>&1 || echo "imap.sh: could not stop the servers in $srv" >&2
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
# ------------------------------------------------------------- timing ----

# mbsync's maildir driver sleeps a second when it scans a folder whose
# cur/ or new/ changed within the current second (a timestamp race guard).
# A resync right after the previous sync would pay that for nothing, so
# every tool run starts at least 1.5 s after the same tool's last run
# ended (untimed; with both tools interleaved this rarely waits).
declare -A last_end=()
gap() { # TOOL
	local wait
	[[ -n ${last_end[$1]:-} ]] || return 0
	wait=$(awk -v e="${last_end[$1]}" -v n="$EPOCHREALTIME" 'BEGIN { w = e + 1.5 - n; if (w > 0) printf "%.3f", w }')
	[[ -n $wait ]] && sleep "$wait"
	return 0
}

# ------------------------------------------------------------- mbsync ----

write_mbsync_config() { # FILE CACHE [PORT]
	(
		umask 077
		# Host localhost: mbsync checks DNS names only, not the certificate's
		# IP:127.0.0.1 entry (localhost resolves to 127.0.0.1 alone here;
		# checked below). The rest: defaults, which are the fast ones
		# (pipelining unlimited, no COMPRESS offered by the server).
		cat >"$1" <<EOF
# Written by tests/bench/imap.sh for the IMAP sync benchmark.
FSync yes

IMAPAccount bench
Host localhost
Port ${3:-$FM_IMAPS_PORT}
User $FM_USER1
Pass $FM_PASS1
SSLType IMAPS
CertificateFile $FM_CA_FILE

IMAPStore bench-far
Account bench

MaildirStore bench-near
Path $2/
Inbox $2/INBOX
SubFolders Verbatim

Channel bench
Far :bench-far:
Near :bench-near:
Patterns *
Create Both
Expunge Both
Sync All
SyncState *
EOF
	)
}

# mbsync_run CACHE OUT [WRAPPER...]: one sync into CACHE (made if
# missing); prints timed's line. With via set, through that port.
via=''
mbsync_run() {
	local cache=$1 out=$2
	shift 2
	mkdir -p "$cache"
	write_mbsync_config "$work/mbsyncrc" "$cache" "$via"
	timed "$out" "$@" mbsync -c "$work/mbsyncrc" bench
}

# ------------------------------------------------------------- fulmar ----

write_fulmar_config() { # FILE [PORT]
	mkdir -p "$(dirname "$1")" || return 1
	(
		umask 077
		cat >"$1" <<EOF
# Written by tests/bench/imap.sh for the IMAP sync benchmark.
[account $account]
email = $FM_USER1
user = $FM_USER1
password = $FM_PASS1
protocol = imap
host = 127.0.0.1
port = ${2:-$FM_IMAPS_PORT}
tls = implicit
tls_ca_file = $FM_CA_FILE
folders = *
download = full
schedule = manual
EOF
	)
}

# fulmar_run DATA OUT [WRAPPER...]: `fulmar -c CONFIG sync bench` with
# XDG_DATA_HOME=DATA; prints timed's line. With via set, through the
# relay (the config naming its port).
fulmar_run() {
	local data=$1 out=$2 config=$fulmar_config
	shift 2
	[[ -n $via ]] && config=$fulmar_wan_config
	mkdir -p "$data"
	timed "$out" "$@" env XDG_DATA_HOME="$data" "$fulmar" -c "$config" sync "$account"
}

fulmar_cache() { echo "$1/fulmar/mail/$account"; }

# build_fulmar: a plain -O2 build of this tree's tracked files, in $work.
build_fulmar() {
	local b=$work/build t0=$EPOCHREALTIME
	mkdir -p "$b"
	note "fulmar: building a plain -O2 copy of $top in $b ..."
	(cd "$top" && git ls-files -z | tar --null -T - -cf -) | tar -xf - -C "$b" ||
		fail "could not copy the source tree"
	if ! (cd "$b" && autoreconf -fi && ./configure CFLAGS=-O2 &&
		make -j2) >"$work/build.log" 2>&1; then
		tail -n 20 "$work/build.log" >&2
		fail "the fulmar build failed (see above)"
	fi
	fulmar=$b/src/fulmar
	note "  built in $(secs_since "$t0"): $(grep -m 1 '^CFLAGS = ' "$b/Makefile")," \
		"git $(git -C "$top" describe --always --dirty 2>/dev/null)"
}

# --------------------------------------------------- checks, counting ----

mailbox() { "$py" "$here/imap-mailbox.py" "$@"; }

# check RESULT OUT CACHE EXPECTED WHAT: the run exited 0, the cache holds
# what the server holds ("messages seen flagged", summed over all folders),
# and the server was not changed by the run.
check() {
	local st=${1##* } got now
	((st == 0)) || fail "$5: exit status $st; $(tail -n 5 "$2")"
	got=$(mailbox local-counts "$3") || fail "$5: cannot count $3"
	[[ $got == "$4" ]] || fail "$5: the cache holds $got (messages seen flagged), the server $4"
	now=$(mailbox server-counts) || fail "cannot count the server's messages"
	[[ $now == "$4" ]] || fail "$5: the server changed during the run: $now, expected $4"
}

# fsyncs OUT: "N fsync, M fdatasync, ..." from strace -c output.
fsyncs() {
	awk '$NF ~ /^(fsync|fdatasync|syncfs|sync_file_range|sync|msync)$/ { printf "%s%s %s", sep, $4, $NF; sep = ", " }
		END { if (!sep) printf "none" }' "$1"
}

strace_wrap() { # OUT: sets wrap, the words that wrap a warm-up run
	wrap=(strace -f -c -o "$1" --seccomp-bpf
		-e "trace=fsync,fdatasync,syncfs,sync_file_range,sync,msync")
}

# ---------------------------------------------------------------- main ----

note "fm-bench imap $stamp on $(uname -n): $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
note "$(mbsync --version 2>&1 | head -n 1), $(dovecot --version | sed 's/^/dovecot /'), $("$py" --version)"
note "results: $table, every run: $log"
[[ $(getent ahosts localhost | awk '{ print $1 }' | sort -u) == 127.0.0.1 ]] ||
	fail "localhost must resolve to 127.0.0.1 only (mbsync connects to it)"

ci=$(corpus "$n_inbox" "$seed") || exit 1
cf=$(corpus "$n_folders" "$((seed + 1))") || exit 1
cd_=$(corpus "$n_delta" "$((seed + 2))") || exit 1
work=$(mktemp -d "$dir/imap-work.XXXXXX") || exit 1

fulmar=${FULMAR:-}
fulmar_state=yes # yes | none | unavailable
if [[ $fulmar == none ]]; then
	fulmar_state=none
elif [[ -z $fulmar ]]; then
	build_fulmar
fi
if [[ $fulmar_state == yes ]]; then
	[[ -x $fulmar ]] || fail "FULMAR=$fulmar is not an executable"
	fulmar=$(readlink -f "$fulmar")
	if ldd "$fulmar" 2>/dev/null | grep -q 'lib[at]san\|libubsan'; then
		fail "$fulmar is built with sanitizers; benchmark a plain build (see README)"
	fi
	note "fulmar: $fulmar"
fi

srv=$(mktemp -d /tmp/fm-bimap.XXXXXX) || exit 1
# Long runs must outlive servers.sh's watchdog (45 min by default).
FM_SERVERS_WATCHDOG_SECONDS=${FM_SERVERS_WATCHDOG_SECONDS:-14400} \
	"$servers" start "$srv" >>"$log" 2>&1 || fail "servers did not start (see $log)"
# shellcheck source=/dev/null
source "$srv/env"
note "servers: $srv, IMAPS on 127.0.0.1:$FM_IMAPS_PORT"

# Seed: the folders made (and subscribed) by doveadm, the files copied
# straight into Dovecot's maildirs, then one force-resync gives them UIDs.
# Measured on this machine: ~6 s for 10,000 messages, page cache cold;
# doveadm import of the same maildir took 35 s, doveadm save ~70 ms per
# message (12 minutes).
note "seeding: INBOX $n_inbox, folders ${folder_names//,/ } ${folder_split//,/ } ..."
t0=$EPOCHREALTIME
# shellcheck disable=SC2086
$FM_DOVEADM mailbox create -s -u "$FM_USER1" ${folder_names//,/ } >>"$log" 2>&1 ||
	fail "doveadm mailbox create failed"
mailbox seed --maildir "$FM_MAILDIR1" --inbox "$ci" --folders "$cf" \
	--names "$folder_names" --split "$folder_split" | tee -a "$log" ||
	fail "seeding failed"
note "  copied in $(secs_since "$t0")"
t0=$EPOCHREALTIME
$FM_DOVEADM force-resync -u "$FM_USER1" '*' >>"$log" 2>&1 || fail "doveadm force-resync failed"
# shellcheck disable=SC2094 # stderr and tee both append
$FM_DOVEADM mailbox status -u "$FM_USER1" messages '*' 2>>"$log" | sed 's/^/  /' | tee -a "$log"
note "  force-resync and status in $(secs_since "$t0")"
base=$(mailbox server-counts -v 2>>"$log") || fail "cannot count the server's messages"
note "server: $base (messages seen flagged, all folders)"
[[ ${base%% *} == $((n_inbox + n_folders)) ]] || fail "the server holds ${base%% *} messages, expected $((n_inbox + n_folders))"

# The change set, applied once to learn the expected counts, then reverted.
mailbox change --state "$work/change.json" --delta "$cd_" | tee -a "$log" || fail "change failed"
changed=$(mailbox server-counts) || fail "cannot count the server's messages"
mailbox revert --state "$work/change.json" >>"$log" || fail "revert failed"
[[ $(mailbox server-counts) == "$base" ]] || fail "revert did not restore the server"
note "server after the changes: $changed"

fulmar_config=$work/fulmar-config/fulmar/config
export XDG_CONFIG_HOME=$work/fulmar-config
export XDG_CACHE_HOME=$work/fulmar-cache XDG_STATE_HOME=$work/fulmar-state
write_fulmar_config "$fulmar_config" || fail "could not write $fulmar_config"

# The distant server: a relay that holds each chunk wan_ms in either
# direction.
wan_cases=()
if ((wan_ms > 0)); then
	"$py" "$top/tests/integration/watch-relay.py" tcp:0 "tcp:$FM_IMAPS_PORT" \
		--port-file "$work/wan.port" --delay "$wan_ms" --lifetime 86400 \
		>>"$log" 2>&1 &
	relay_pid=$!
	for _ in $(seq 50); do [[ -s $work/wan.port ]] && break; sleep 0.1; done
	wan_port=$(cat "$work/wan.port" 2>/dev/null) || fail "the delay relay did not start"
	fulmar_wan_config=$work/fulmar-config/fulmar/config-wan
	write_fulmar_config "$fulmar_wan_config" "$wan_port" || fail "could not write $fulmar_wan_config"
	wan_cases=(wan-nothing wan-changes)
	note "distant server: relay on 127.0.0.1:$wan_port, ${wan_ms} ms each way"
fi

# Warm-up, discarded: one initial sync per tool (Dovecot moves new/ to
# cur/, fills its index cache with what each tool asks for, and the page
# cache holds the mailboxes), under strace counting fsync-family calls,
# and one floor run.
note "warm-up: one mbsync initial sync (discarded, under strace) ..."
strace_wrap "$work/mbsync.strace"
r=$(mbsync_run "$work/mbsync-warm" "$work/mbsync.out" "${wrap[@]}")
check "$r" "$work/mbsync.out" "$work/mbsync-warm" "$base" "mbsync warm-up"
mbsync_sync=$(fsyncs "$work/mbsync.strace")
note "  mbsync ms, RSS KB, CPU ms, status: $r (strace on); $mbsync_sync"
grep -v '^Maildir notice: no UIDVALIDITY' "$work/mbsync.out" | head -n 5 | sed 's/^/    /' | tee -a "$log"
rm -rf "$work/mbsync-warm"
if [[ $fulmar_state == yes ]]; then
	note "warm-up: one fulmar initial sync (discarded, under strace) ..."
	strace_wrap "$work/fulmar.strace"
	r=$(fulmar_run "$work/fulmar-warm" "$work/fulmar.out" "${wrap[@]}")
	if [[ ${r##* } == 69 ]] && grep -q 'not part of this version' "$work/fulmar.out"; then
		fulmar_state=unavailable
		note "  fulmar: IMAP sync not available in this build (exit 69: $(head -n 1 "$work/fulmar.out"))"
	else
		check "$r" "$work/fulmar.out" "$(fulmar_cache "$work/fulmar-warm")" "$base" "fulmar warm-up"
		fulmar_sync=$(fsyncs "$work/fulmar.strace")
		note "  fulmar ms, RSS KB, CPU ms, status: $r (strace on); $fulmar_sync; output:"
		head -n 5 "$work/fulmar.out" | cut -c1-120 | sed 's/^/    /' | tee -a "$log"
	fi
	rm -rf "$work/fulmar-warm"
fi
note "warm-up: one floor run (discarded) ..."
r=$(timed "$work/floor.out" "$py" "$here/imap-floor.py")
note "  floor INBOX: $r; $(tail -n 1 "$work/floor.out")"

tools=(mbsync)
[[ $fulmar_state == yes ]] && tools+=(fulmar)
for f in floor floor-all floor-changes; do : >"$work/$f.runs"; done
for t in "${tools[@]}"; do
	for c in initial nothing changes "${wan_cases[@]}"; do : >"$work/$t-$c.runs"; done
done

# one TOOL CASE RUN: the tool's timed run of that case, checked; appends
# to TOOL-CASE.runs and leaves "TOOL MS RSS CPU" in $res.
one() {
	local t=$1 c=$2 i=$3 cache out=$work/$1.out r expect=$base
	if [[ $t == mbsync ]]; then cache=$work/mbsync-$i; else cache=$work/fulmar-$i; fi
	[[ $c == wan-nothing ]] && one "$t" catch-up "$i" # untimed
	[[ $c == *changes ]] && {
		mailbox change --state "$work/change.json" --delta "$cd_" >>"$log" || fail "change failed"
		expect=$changed
	}
	[[ $c == initial ]] && rm -rf "$cache"
	sync
	gap "$t"
	via=''
	[[ $c == wan-* ]] && via=$wan_port
	if [[ $t == mbsync ]]; then
		r=$(mbsync_run "$cache" "$out")
		check "$r" "$out" "$cache" "$expect" "mbsync $c (run $i)"
		grep -q 'sleeping due to recent' "$out" && echo "  (mbsync $c run $i: slept a second on a recent directory change)" >>"$log"
	else
		r=$(fulmar_run "$cache" "$out")
		check "$r" "$out" "$(fulmar_cache "$cache")" "$expect" "fulmar $c (run $i)"
	fi
	via=''
	last_end[$t]=$EPOCHREALTIME
	[[ $c == *changes ]] && { mailbox revert --state "$work/change.json" >>"$log" || fail "revert failed"; }
	[[ $c == catch-up ]] && return 0
	echo "$r" >>"$work/$t-$c.runs"
	res="$t ${r% *}"
}

for ((i = 1; i <= runs; i++)); do
	order=("${tools[@]}")
	((i % 2 == 0 && ${#tools[@]} == 2)) && order=(fulmar mbsync)
	line="run $i/$runs:"
	r=$(timed "$work/floor.out" "$py" "$here/imap-floor.py")
	[[ ${r##* } == 0 && $(head -n 1 "$work/floor.out") == "INBOX $n_inbox "* ]] ||
		fail "floor run: $r; $(cat "$work/floor.out")"
	echo "$r" >>"$work/floor.runs"
	r=$(timed "$work/floor.out" "$py" "$here/imap-floor.py" --all)
	[[ ${r##* } == 0 && $(tail -n 1 "$work/floor.out") == "total $((n_inbox + n_folders)) "* ]] ||
		fail "floor run (all folders): $r; $(cat "$work/floor.out")"
	echo "$r" >>"$work/floor-all.runs"
	# The changes floor: counters marked, the changes made, then the
	# protocol alone (the client's own clock, without Python's start).
	"$py" "$here/imap-floor.py" --mark "$work/marks" >>"$log" 2>&1 ||
		fail "floor run (changes): cannot mark the mailboxes"
	mailbox change --state "$work/change.json" --delta "$cd_" >>"$log" || fail "change failed"
	sync
	r=$(timed "$work/floor.out" "$py" "$here/imap-floor.py" --changes "$work/marks")
	mailbox revert --state "$work/change.json" >>"$log" || fail "revert failed"
	last=$(tail -n 1 "$work/floor.out")
	[[ ${r##* } == 0 && $last == "changes $n_delta "* ]] ||
		fail "floor run (changes): $r; $(cat "$work/floor.out")"
	awk '{ printf "%.1f 0 0 0\n", $4 * 1000 }' <<<"$last" >>"$work/floor-changes.runs"
	line+=" floor $(tail -n 1 "$work/floor.runs" | cut -d' ' -f1) ms,"
	line+=" all folders $(tail -n 1 "$work/floor-all.runs" | cut -d' ' -f1) ms,"
	line+=" changes $(tail -n 1 "$work/floor-changes.runs" | cut -d' ' -f1) ms;"
	for c in initial nothing changes "${wan_cases[@]}"; do
		line+=" $c:"
		for t in "${order[@]}"; do
			one "$t" "$c" "$i"
			line+=" $res;"
		done
	done
	rm -rf "$work/mbsync-$i" "$work/fulmar-$i"
	note "$line load $(cut -d' ' -f1 /proc/loadavg)"
done

# ------------------------------------------------------------- table ----

na="fulmar: IMAP sync not available in this build"
[[ $fulmar_state == none ]] && na="fulmar: not measured (FULMAR=none)"
{
	printf 'IMAP sync, %d INBOX + %d in %s; %d runs, medians; wall ms, CPU ms (client only), peak RSS MB\n' \
		"$n_inbox" "$n_folders" "${folder_names//,/ }" "$runs"
	printf '%-7s %-11s %9s %9s %9s %9s %7s\n' tool case "median ms" "min ms" "max ms" "CPU ms" "RSS MB"
} >"$table"
row() { # TOOL CASE RUNSFILE
	local med min max rss cpu
	read -r med min max <<<"$(stats "$3" 1)"
	read -r rss _ _ <<<"$(stats "$3" 2)"
	read -r cpu _ _ <<<"$(stats "$3" 3)"
	printf '%-7s %-11s %9.0f %9.0f %9.0f %9.0f %7.1f\n' "$1" "$2" "$med" "$min" "$max" \
		"$cpu" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" >>"$table"
}
row floor INBOX "$work/floor.runs"
row floor all "$work/floor-all.runs"
row floor changes "$work/floor-changes.runs"
for c in initial nothing changes "${wan_cases[@]}"; do
	row mbsync "$c" "$work/mbsync-$c.runs"
	if [[ $fulmar_state == yes ]]; then
		row fulmar "$c" "$work/fulmar-$c.runs"
	else
		printf '%-7s %-11s %s\n' fulmar "$c" "$na" >>"$table"
	fi
done
ratio() { # LABEL COLUMN CASE TARGET
	local f m
	if [[ $fulmar_state != yes ]]; then
		printf 'ratio %-16s fulmar/mbsync   target <= %s   %s\n' "$1" "$4" "$na" >>"$table"
		return
	fi
	read -r f _ _ <<<"$(stats "$work/fulmar-$3.runs" "$2")"
	read -r m _ _ <<<"$(stats "$work/mbsync-$3.runs" "$2")"
	awk -v l="$1" -v f="$f" -v m="$m" -v t="$4" 'BEGIN {
		r = (m > 0) ? f / m : 0
		printf "ratio %-16s fulmar/mbsync %6.3f   target <= %s   %s\n", l, r, t, (r <= t) ? "PASS" : "MISS"
	}' >>"$table"
}
{
	echo
	ratio "initial time" 1 initial "$target_initial"
	ratio "initial RSS" 2 initial "$target_rss"
	ratio "nothing changed" 1 nothing "$target_nothing"
	ratio "after changes" 1 changes "$target_changes"
	if ((wan_ms > 0)) && [[ $fulmar_state == yes ]]; then
		echo "with the server ${wan_ms} ms away each way (no target; see the header):"
		for c in "${wan_cases[@]}"; do
			awk -v c="$c" -v f="$(stats "$work/fulmar-$c.runs" 1 | cut -d' ' -f1)" \
				-v m="$(stats "$work/mbsync-$c.runs" 1 | cut -d' ' -f1)" \
				'BEGIN { printf "ratio %-16s fulmar/mbsync %6.3f\n", c, (m > 0) ? f / m : 0 }'
		done
	fi
	echo
	awk -v f="$(stats "$work/floor-all.runs" 1 | cut -d' ' -f1)" \
		-v m="$(stats "$work/mbsync-initial.runs" 1 | cut -d' ' -f1)" \
		'BEGIN { printf "mbsync initial / floor (all folders): %.2f\n", m / f }'
	if [[ $fulmar_state == yes ]]; then
		awk -v f="$(stats "$work/floor-all.runs" 1 | cut -d' ' -f1)" \
			-v m="$(stats "$work/fulmar-initial.runs" 1 | cut -d' ' -f1)" \
			'BEGIN { printf "fulmar initial / floor (all folders): %.2f\n", m / f }'
	fi
	for t in "${tools[@]}"; do
		awk -v t="$t" -v f="$(stats "$work/floor-changes.runs" 1 | cut -d' ' -f1)" \
			-v m="$(stats "$work/$t-changes.runs" 1 | cut -d' ' -f1)" \
			'BEGIN { printf "%s changes / floor (changes): %.2f\n", t, m / f }'
	done
	awk -v f="$(stats "$work/floor-changes.runs" 1 | cut -d' ' -f1)" \
		-v m="$(stats "$work/mbsync-changes.runs" 1 | cut -d' ' -f1)" -v t="$target_changes" \
		'BEGIN { printf "floor (changes) / mbsync changes: %.2f (the target is %s)\n", f / m, t }'
	echo "durability, fsync-family calls in one initial sync (strace, warm-up):"
	echo "  mbsync (FSync yes, its default): $mbsync_sync"
	if [[ $fulmar_state == yes ]]; then
		echo "  fulmar (its store's defaults): $fulmar_sync"
	fi
} >>"$table"

echo
tee -a "$log" <"$table"
echo "Every run, with the load: $log"

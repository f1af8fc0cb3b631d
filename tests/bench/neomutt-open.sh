#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# How long neomutt takes to open a maildir and draw its index, with a warm
# header cache, in a tmux pane of fixed size; and its peak RSS.
#
#   neomutt-open.sh [-r RUNS] [-s COLSxROWS] [-c HCACHE_DIR] [-t SECONDS]
#                   [--no-warm | --warm-only] [--raw] MAILDIR
#
#   -r RUNS        timed runs (default 10)
#   -s COLSxROWS   pane size (default 200x50: 47 index lines)
#   -c DIR         header cache directory to use and keep (default: a
#                  temporary one, removed at the end)
#   -t SECONDS     give up on one run after this long (default 600: the
#                  first run on a cold 50,000-message cache is slow)
#   --no-warm      skip the warm-up runs: the cache in -c is already warm
#   --warm-only    only warm the cache in -c (and the page cache), time nothing
#   --raw          print one line per run, "DRAWN_MS EXIT_MS RSS_KB CPU_MS", and
#                  nothing else on stdout (for run.sh)
#
# One run: a detached tmux session (private server on a socket in our temp
# directory) runs a bash that records the time and then runs
# `/usr/bin/time -f %M neomutt -n -F RC -f MAILDIR`. tmux pipes everything
# the pane prints to a small watcher (pipe-pane) that notes the moment the
# status line appears: the status format is "FMBENCH-STATUS <count> msgs",
# and the status line is the last line neomutt draws, after every index
# line. That moment is "drawn". The script then checks the screen
# (capture-pane: the status line shows the full message count and the last
# index line is filled), sends `q` and waits for neomutt to exit: "exit".
# Both times count from the moment just before neomutt is started, so tmux's
# own start-up is not charged to neomutt. RSS is neomutt's peak (max RSS
# from /usr/bin/time, in KB). CPU is neomutt's user + system time over its
# whole life (bash's `times`): waiting for the q costs none, so it is the
# work of opening, drawing and quitting, and it suffers less than the
# wall-clock times when other processes share the CPUs.
#
# Why a watcher and not a loop over `tmux capture-pane`: on a 2-core machine
# that loop (a tmux client every ~7 ms) slowed neomutt down by half (10,000
# messages: "drawn" at ~500 ms when polled, while a whole unpolled open,
# draw and quit took ~265 ms). The watcher sleeps in read() until tmux
# hands it output.
#
# The configuration gives neomutt its fastest honest path, so that a ratio
# against it is conservative: header cache on and warm,
# maildir_header_cache_verify=no (no stat() of every message file), no
# progress messages (read_inc=0), no sidebar, no mailcap, no new-mail
# checks on other folders. mark_old=no keeps
# neomutt from moving new/ messages to cur/ on exit, so the maildir is the
# same for every run (checked before and after). Sorting is reverse-date,
# newest first, as `fulmar list` sorts.
#
# Needs: neomutt, tmux, time (/usr/bin/time), python3. Installs nothing.
set -uo pipefail

runs=10
size=200x50
hcache=
timeout_s=600
warm=yes
raw=no

usage() {
	sed -n '/^#   neomutt-open.sh/,/^#   --raw/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

while (($#)); do
	case $1 in
	-r) runs=$2; shift 2 ;;
	-s) size=$2; shift 2 ;;
	-c) hcache=$2; shift 2 ;;
	-t) timeout_s=$2; shift 2 ;;
	--no-warm) warm=no; shift ;;
	--warm-only) warm=only; shift ;;
	--raw) raw=yes; shift ;;
	-h | --help) usage ;;
	-*) echo "neomutt-open.sh: unknown option $1" >&2; usage ;;
	*) break ;;
	esac
done
(($# == 1)) || usage
maildir=$(cd "$1" 2>/dev/null && pwd) || {
	echo "neomutt-open.sh: no such directory: $1" >&2
	exit 2
}
[[ -d $maildir/cur && -d $maildir/new ]] || {
	echo "neomutt-open.sh: $maildir is not a maildir (no cur/ and new/)" >&2
	exit 2
}
[[ $runs =~ ^[0-9]+$ && $size =~ ^([0-9]+)x([0-9]+)$ ]] || usage
cols=${BASH_REMATCH[1]}
rows=${BASH_REMATCH[2]}
if [[ $warm != yes && -z $hcache ]]; then
	echo "neomutt-open.sh: --no-warm and --warm-only need -c DIR" >&2
	exit 2
fi

missing=
for tool in neomutt tmux python3 timeout; do
	command -v "$tool" >/dev/null || missing+=" $tool"
done
[[ -x /usr/bin/time ]] || missing+=" time"
if [[ -n $missing ]]; then
	echo "neomutt-open.sh: missing:$missing (apt-get install neomutt tmux time python3)" >&2
	exit 2
fi

say() { [[ $raw == yes ]] || echo "$@"; }

# Everything this script creates lives in $tmp, removed on exit, and in the
# tmux server on $tmp/tmux.sock, killed on exit. -c DIR is the caller's.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fm-neomutt.XXXXXX") || exit 1
sock=$tmp/tmux.sock
tmx() { tmux -S "$sock" -f /dev/null "$@"; }
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	tmx kill-server 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z $hcache ]]; then
	hcache=$tmp/hcache
fi
mkdir -p "$hcache" || exit 1
hcache=$(cd "$hcache" && pwd)

count=$(find "$maildir/cur" "$maildir/new" -maxdepth 1 -type f | wc -l)
marker="FMBENCH-STATUS $count msgs"
listing() { (cd "$maildir" && find cur new -maxdepth 1 -type f | LC_ALL=C sort | md5sum); }
before=$(listing)

# folder, spoolfile, record and the rest point nowhere, or neomutt asks
# whether to create ~/Mail and waits for an answer.
cat >"$tmp/neomuttrc" <<EOF
set folder="$tmp"
set spoolfile=""
set record=""
set postponed=""
set mbox=""
set trash=""
set header_cache="$hcache/"
set mbox_type=Maildir
set maildir_header_cache_verify=no
set sort=reverse-date
set sort_aux=reverse-date
set use_threads=no
set sidebar_visible=no
set mailcap_path=""
set mail_check_stats=no
set quit=yes
set mark_old=no
set read_inc=0
set write_inc=0
set status_format="$marker %f"
EOF

# The watcher: reads what the pane prints, writes the wall-clock time at
# which MARKER went by, wakes the script, then drains the pipe until the
# pane is gone. It tells the pane to start (channel go) only once it reads.
cat >"$tmp/watch.py" <<'EOF'
import os, subprocess, sys, time
marker, out, sock, chan = sys.argv[1].encode(), sys.argv[2], sys.argv[3], sys.argv[4]
tmux = ["tmux", "-S", sock, "wait-for", "-S"]
subprocess.run(tmux + ["go-" + chan], check=True)
tail = b""
seen = False
while True:
    data = os.read(0, 65536)
    if not data:
        break
    if not seen:
        now = time.time()
        buf = tail + data
        if marker in buf:
            with open(out, "w") as f:
                f.write("%.6f\n" % now)
            subprocess.run(tmux + ["drawn-" + chan], check=True)
            seen = True
        else:
            tail = buf[-len(marker):]
EOF

# A session that does nothing keeps the server up between runs.
tmx new-session -d -s keep -x "$cols" -y "$rows" 'exec sleep 1000000' || exit 1

# one_run N LIMIT: prints "DRAWN_MS EXIT_MS RSS_KB CPU_MS"; on failure shows the
# screen and fails.
one_run() {
	local n=$1 limit=$2 d=$tmp/run$1
	mkdir -p "$d"
	cat >"$d/pane.sh" <<EOF
tmux -S '$sock' wait-for go-$n
export LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=tmux-256color
echo \$EPOCHREALTIME >'$d/t0'
/usr/bin/time -f %M -o '$d/rss' neomutt -n -F '$tmp/neomuttrc' -f '$maildir' 2>'$d/err'
echo \$? >'$d/status'
times >'$d/times'
echo \$EPOCHREALTIME >'$d/t1'
tmux -S '$sock' wait-for -S exit-$n
EOF
	tmx new-session -d -s "r$n" -x "$cols" -y "$rows" "exec bash '$d/pane.sh'" &&
		tmx pipe-pane -O -t "r$n" "exec python3 '$tmp/watch.py' '$marker' '$d/drawn' '$sock' $n" ||
		return 1
	if ! timeout "$limit" tmux -S "$sock" wait-for "drawn-$n"; then
		echo "neomutt-open.sh: run $n: no index after ${limit}s; the screen:" >&2
		tmx capture-pane -p -t "r$n" >&2
		cat "$d/err" >&2 2>/dev/null
		tmx kill-session -t "r$n" 2>/dev/null
		return 1
	fi
	# The watcher saw the status line go by; check the screen agrees: the
	# full count in the status line, the last index line filled.
	local screen last full=yes
	screen=$(tmx capture-pane -p -t "r$n")
	last=$(sed -n "$((rows - 2))p" <<<"$screen")
	[[ $screen == *"$marker"* ]] || full=no
	if ((count >= rows - 3)) && [[ -z ${last// /} ]]; then
		full=no
	fi
	if [[ $full == no ]]; then
		echo "neomutt-open.sh: run $n: the screen is not a full index:" >&2
		echo "$screen" >&2
		tmx kill-session -t "r$n" 2>/dev/null
		return 1
	fi
	tmx send-keys -t "r$n" q
	if ! timeout 60 tmux -S "$sock" wait-for "exit-$n"; then
		echo "neomutt-open.sh: run $n: neomutt did not quit on q:" >&2
		tmx capture-pane -p -t "r$n" >&2
		tmx kill-session -t "r$n" 2>/dev/null
		return 1
	fi
	if [[ $(cat "$d/status") != 0 ]]; then
		echo "neomutt-open.sh: run $n: neomutt exited with status $(cat "$d/status"):" >&2
		cat "$d/err" >&2
		return 1
	fi
	# times: the second line is the children's user and system time.
	local cpu
	cpu=$(sed -n 2p "$d/times" | tr 'ms' '  ' |
		awk '{ printf "%.1f", ($1 * 60 + $2 + $3 * 60 + $4) * 1000 }')
	awk -v t0="$(cat "$d/t0")" -v td="$(cat "$d/drawn")" -v t1="$(cat "$d/t1")" \
		-v rss="$(tail -n 1 "$d/rss")" -v cpu="$cpu" \
		'BEGIN { printf "%.1f %.1f %d %.1f\n", (td - t0) * 1000, (t1 - t0) * 1000, rss, cpu }'
}

# median FILE COLUMN
median() {
	awk -v c="$2" '{ print $c }' "$1" | sort -g | awk '
		{ v[NR] = $1 }
		END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

n=0
if [[ $warm != no ]]; then
	# The first run fills the header cache (slow: every file is parsed),
	# the second reads it back once so that it sits in the page cache.
	say "warming the header cache in $hcache ($count messages)..."
	for _ in 1 2; do
		n=$((n + 1))
		r=$(one_run $n "$timeout_s") || exit 1
		say "  warm-up: drawn ${r%% *} ms (discarded)"
	done
fi
if [[ $warm == only ]]; then
	runs=0
fi

: >"$tmp/results"
for ((i = 1; i <= runs; i++)); do
	n=$((n + 1))
	r=$(one_run $n "$timeout_s") || exit 1
	echo "$r" >>"$tmp/results"
	if [[ $raw == yes ]]; then
		echo "$r"
	else
		read -r drawn ex rss cpu <<<"$r"
		printf 'run %2d: drawn %7.1f ms   exit %7.1f ms   CPU %7.1f ms   peak RSS %7d KB\n' \
			"$i" "$drawn" "$ex" "$cpu" "$rss"
	fi
done

after=$(listing)
if [[ $before != "$after" ]]; then
	echo "neomutt-open.sh: warning: the file names in $maildir changed during the runs" >&2
fi

if ((runs > 0)) && [[ $raw == no ]]; then
	printf 'median (%d runs, %d messages, %s): drawn %.1f ms, exit %.1f ms, CPU %.1f ms, peak RSS %d KB\n' \
		"$runs" "$count" "$size" "$(median "$tmp/results" 1)" \
		"$(median "$tmp/results" 2)" "$(median "$tmp/results" 4)" \
		"$(median "$tmp/results" 3)"
fi
exit 0

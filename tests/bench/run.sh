#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The folder-open benchmark of issue 4: `fulmar list FOLDER --limit 50`
# against neomutt opening the same maildir and drawing its index (warm
# header cache), on corpora of 10,000 and 50,000 messages. See README.
#
#   run.sh [-r RUNS] [-n "SIZE..."]
#
# Environment:
#   FM_BENCH_DIR   where corpora, header caches, fulmar homes and results
#                  go (default /tmp/fm-bench); keep it out of the git tree
#   FM_BENCH_SIZES corpus sizes (default "10000 50000"; -n overrides)
#   FM_BENCH_RUNS  timed runs per tool and size (default 10; -r overrides)
#   FM_BENCH_SEED  corpus seed (default 1)
#   FULMAR_PREP    optional, run once per corpus before timing: brings the
#                  corpus into a fulmar data dir (e.g. copy and reindex)
#   FULMAR_CMD     the fulmar command to time, one simple command (words,
#                  quotes and $VARIABLES are expanded; no pipes or
#                  redirections). Unset: the fulmar side is not measured.
#   Both hooks see CORPUS (the maildir), CORPUS_SIZE and BENCH_HOME (an
#   empty directory per corpus, made by this script, for fulmar's
#   XDG_DATA_HOME / XDG_CONFIG_HOME).
#
# The two tools run interleaved, neomutt then fulmar, run after run, so
# that a burst of load on the machine hits both.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dir=${FM_BENCH_DIR:-/tmp/fm-bench}
sizes=${FM_BENCH_SIZES:-10000 50000}
runs=${FM_BENCH_RUNS:-10}
seed=${FM_BENCH_SEED:-1}

while (($#)); do
	case $1 in
	-r) runs=$2; shift 2 ;;
	-n) sizes=$2; shift 2 ;;
	*)
		sed -n '/^#   run.sh/,/^#   XDG_CONFIG/p' "$0" | sed 's/^# \{0,1\}//' >&2
		exit 2
		;;
	esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: RUNS must be a number" >&2; exit 2; }

top=$(cd "$here/../.." && pwd)
mkdir -p "$dir" || exit 1
dir=$(cd "$dir" && pwd)
if [[ $dir/ == "$top"/* ]]; then
	echo "run.sh: FM_BENCH_DIR=$dir is inside the source tree; use a path outside it" >&2
	exit 2
fi

for tool in neomutt tmux python3; do
	command -v "$tool" >/dev/null || {
		echo "run.sh: $tool is missing (apt-get install neomutt tmux time python3)" >&2
		exit 2
	}
done
[[ -x /usr/bin/time ]] || { echo "run.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 2; }

stamp=$(date +%Y%m%d-%H%M%S)
log=$dir/results-$stamp.log
table=$dir/results-$stamp.txt
note() { echo "$@" | tee -a "$log"; }

note "fm-bench $stamp on $(uname -n): $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
note "$(neomutt -v | head -n 1), $(tmux -V)"
note "results: $table, every run: $log"
if [[ -z ${FULMAR_CMD:-} ]]; then
	note "fulmar side: not measured (fulmar list not built yet; set FULMAR_CMD)"
fi

# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

# fulmar_once OUT: runs FULMAR_CMD once; prints "MS RSS_KB CPU_MS". Call
# it in a subshell ($(...)): `times` counts every child of the shell.
fulmar_once() {
	local out=$1 t0 t1 st cpu
	local -a cmd
	eval "cmd=($FULMAR_CMD)"
	t0=$EPOCHREALTIME
	/usr/bin/time -f '%M %U %S' -o "$out.rss" "${cmd[@]}" >"$out" 2>"$out.err"
	st=$?
	t1=$EPOCHREALTIME
	# GNU time: peak RSS in KB, then user and system seconds.
	cpu=$(tail -n 1 "$out.rss" | awk '{ printf "%.1f", ($2 + $3) * 1000 }')
	if ((st != 0)); then
		echo "run.sh: FULMAR_CMD failed (status $st):" >&2
		cat "$out.err" >&2
		return 1
	fi
	awk -v a="$t0" -v b="$t1" -v r="$(tail -n 1 "$out.rss" | cut -d' ' -f1)" -v c="$cpu" \
		'BEGIN { printf "%.1f %d %.1f\n", (b - a) * 1000, r, c }'
}

printf '%-8s %8s %4s %9s %8s %8s %8s %8s %8s\n' tool messages runs \
	"median ms" "min ms" "max ms" "exit ms" "CPU ms" "RSS MB" >"$table"

for n in $sizes; do
	c=$(corpus "$n" "$seed") || continue
	export CORPUS=$c CORPUS_SIZE=$n
	hc=$dir/hcache-$n-s$seed
	mkdir -p "$hc"
	nm=$dir/neomutt-$n-$stamp.runs
	fm=$dir/fulmar-$n-$stamp.runs
	: >"$nm"

	note "neomutt $n: warming header and page cache ..."
	"$here/neomutt-open.sh" --warm-only -c "$hc" "$c" | sed 's/^/  /' | tee -a "$log"

	fulmar=no
	if [[ -n ${FULMAR_CMD:-} ]]; then
		fulmar=yes
		export BENCH_HOME=$dir/home-$n-s$seed
		mkdir -p "$BENCH_HOME"
		: >"$fm"
		if [[ -n ${FULMAR_PREP:-} ]]; then
			note "fulmar $n: FULMAR_PREP ..."
			t0=$EPOCHREALTIME
			bash -c "$FULMAR_PREP" 2>&1 | tail -n 5 | sed 's/^/  /' | tee -a "$log"
			if ((PIPESTATUS[0] != 0)); then
				echo "run.sh: FULMAR_PREP failed; fulmar not measured for $n" >&2
				fulmar=failed
			fi
			note "  took $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }')"
		fi
		if [[ $fulmar == yes ]]; then
			# One discarded run warms the page cache for fulmar too; show
			# what it printed, so nobody times a command that did nothing.
			if fulmar_once "$dir/fulmar-out" >/dev/null; then
				note "fulmar $n: warm-up printed $(wc -l <"$dir/fulmar-out") lines, first ones:"
				head -n 3 "$dir/fulmar-out" | cut -c1-120 | sed 's/^/  /' | tee -a "$log"
			else
				fulmar=failed
			fi
		fi
	fi

	for ((i = 1; i <= runs; i++)); do
		r=$("$here/neomutt-open.sh" --no-warm --raw -r 1 -c "$hc" "$c") || {
			echo "run.sh: the neomutt run failed; stopping" >&2
			exit 1
		}
		echo "$r" >>"$nm"
		line="run $i/$runs, $n msgs: neomutt drawn/exit ms, RSS KB, CPU ms: $r"
		if [[ $fulmar == yes ]]; then
			f=$(fulmar_once "$dir/fulmar-out") || exit 1
			echo "$f" >>"$fm"
			line+="; fulmar ms, RSS KB, CPU ms: $f"
		fi
		line+="; load $(cut -d' ' -f1 /proc/loadavg)"
		note "$line"
	done

	read -r nmed nmin nmax <<<"$(stats "$nm" 1)"
	read -r nex _ _ <<<"$(stats "$nm" 2)"
	read -r nrss _ _ <<<"$(stats "$nm" 3)"
	read -r ncpu _ _ <<<"$(stats "$nm" 4)"
	printf '%-8s %8d %4d %9.1f %8.1f %8.1f %8.1f %8.1f %8.1f\n' neomutt "$n" "$runs" \
		"$nmed" "$nmin" "$nmax" "$nex" "$ncpu" "$(awk -v k="$nrss" 'BEGIN { print k / 1024 }')" >>"$table"
	if [[ $fulmar == yes ]]; then
		read -r fmed fmin fmax <<<"$(stats "$fm" 1)"
		read -r frss _ _ <<<"$(stats "$fm" 2)"
		read -r fcpu _ _ <<<"$(stats "$fm" 3)"
		printf '%-8s %8d %4d %9.1f %8.1f %8.1f %8s %8.1f %8.1f\n' fulmar "$n" "$runs" \
			"$fmed" "$fmin" "$fmax" - "$fcpu" "$(awk -v k="$frss" 'BEGIN { print k / 1024 }')" >>"$table"
		awk -v f="$fmed" -v n="$nmed" -v fc="$fcpu" -v nc="$ncpu" \
			-v fr="$frss" -v nr="$nrss" -v sz="$n" 'BEGIN {
			printf "ratio    %8d  fulmar/neomutt: time %.3f (target <= 0.333: %s), CPU %.3f",
				sz, f / n, (f / n <= 1 / 3) ? "met" : "NOT met", (nc > 0 ? fc / nc : 0)
			printf ", RSS %.3f", fr / nr
			if (sz >= 50000) printf " (target <= 0.5: %s)", (fr / nr <= 0.5) ? "met" : "NOT met"
			printf "\n"
		}' >>"$table"
	elif [[ $fulmar == failed ]]; then
		echo "fulmar   $n: not measured (FULMAR_PREP or FULMAR_CMD failed, see $log)" >>"$table"
	else
		echo "fulmar   $n: not measured (fulmar list not built yet: set FULMAR_CMD)" >>"$table"
	fi
done

echo
tee -a "$log" <"$table"
echo "median/min/max ms: neomutt launch to index drawn, fulmar launch to exit;"
echo "exit ms: neomutt launch to exit after q; CPU ms: user+system, median;"
echo "RSS MB: peak RSS, median. Load during the runs: see $log"

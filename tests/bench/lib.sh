# SPDX-License-Identifier: GPL-3.0-or-later
# shellcheck shell=bash
#
# What the benchmark scripts share; sourced after they set here (this
# directory), dir (the results and corpora), log, and note().
# shellcheck disable=SC2154 # here, dir and log are the sourcing script's

# The corpora ($dir/corpus-N-sSEED, vouched for by the .stamp file), so
# every script reuses what another generated.
gen_sum=$(md5sum <"$here/gen-corpus.py" | cut -d' ' -f1)

# corpus COUNT SEED: prints the corpus directory, generating it first
# when it is missing or was made by another generator.
corpus() {
	local n=$1 sd=$2 c=$dir/corpus-$1-s$2 s=$dir/corpus-$1-s$2.stamp
	local want="gen-corpus.py $gen_sum count $n seed $sd"
	if [[ -d $c && -f $s && $(head -n 1 "$s") == "$want" ]]; then
		note "corpus $n (seed $sd): reusing $c" >&2
		echo "$c"
		return 0
	fi
	if [[ -e $c && ! -f $s ]]; then
		echo "${0##*/}: $c exists but was not made by the benchmarks (no $s); move it away" >&2
		return 1
	fi
	if [[ -e $c ]]; then
		note "corpus $n (seed $sd): generator changed, regenerating" >&2
		rm -rf "$c" "$dir/hcache-$n-s$sd" "$dir/home-$n-s$sd"
	fi
	rm -f "$s"
	# ~45 KB a message; ask for 60 KB a message of headroom.
	local need=$((n * 60)) avail
	avail=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
	if ((avail < need)); then
		echo "${0##*/}: corpus $n needs ~$((need / 1024)) MB, $dir has $((avail / 1024)) MB free" >&2
		return 1
	fi
	note "corpus $n (seed $sd): generating into $c ..." >&2
	local t0=$EPOCHREALTIME out
	out=$("${py:-python3}" "$here/gen-corpus.py" --quiet --count "$n" --seed "$sd" --out "$c") || return 1
	{
		echo "$want"
		echo "$out"
		echo "wall time: $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }')"
		echo "disk used: $(du -sh "$c" | cut -f1)"
	} >"$s"
	sed 1d "$s" | sed 's/^/  /' | tee -a "$log" >&2
	echo "$c"
}

# timed OUT CMD...: runs CMD with stdout and stderr to OUT; prints
# "MS RSS_KB CPU_MS STATUS". GNU time gives peak RSS, user and system time.
timed() {
	local out=$1 t0 t1 st
	shift
	t0=$EPOCHREALTIME
	/usr/bin/time -f '%M %U %S' -o "$out.time" "$@" >"$out" 2>&1
	st=$?
	t1=$EPOCHREALTIME
	awk -v a="$t0" -v b="$t1" -v st="$st" '
		{ r = $1; c = ($2 + $3) * 1000 }
		END { printf "%.1f %d %.1f %d\n", (b - a) * 1000, r, c, st }' \
		<(tail -n 1 "$out.time")
}

# stats FILE COLUMN: "median min max" of a column of numbers.
stats() {
	awk -v c="$2" '{ print $c }' "$1" | sort -g | awk '
		{ v[NR] = $1 }
		END {
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.1f %.1f %.1f\n", m, v[1], v[NR]
		}'
}

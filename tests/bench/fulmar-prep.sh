#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# FULMAR_PREP for run.sh: brings the corpus into a fulmar data directory
# under $BENCH_HOME (hard links, so the corpus stays untouched), declares an
# account "bench", and builds the folder summaries, which is what fulmar
# list reads. FULMAR (default: src/fulmar) is the binary to use: benchmark
# a build without sanitizers.
set -euo pipefail
: "${CORPUS:?}" "${BENCH_HOME:?}"
fulmar=${FULMAR:-src/fulmar}
mkdir -p "$BENCH_HOME/data/fulmar/mail/bench" "$BENCH_HOME/config/fulmar"
[[ -e $BENCH_HOME/data/fulmar/mail/bench/INBOX ]] ||
	cp -al "$CORPUS" "$BENCH_HOME/data/fulmar/mail/bench/INBOX"
printf '[account bench]\nemail = bench@example.org\nhost = imap.example.org\n' \
	>"$BENCH_HOME/config/fulmar/config"
chmod 600 "$BENCH_HOME/config/fulmar/config"
XDG_DATA_HOME=$BENCH_HOME/data XDG_CONFIG_HOME=$BENCH_HOME/config \
	"$fulmar" reindex --summaries-only bench

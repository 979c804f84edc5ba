#!/usr/bin/env bash
# Benchmark: small files of a continuous archive, and compaction.
#
#   bench/compaction.sh [MILLIONS] [TWEETS_PER_SECOND] [INTERVAL_SECONDS]     (default 2 50 10)
#
# A continuous archive writes one file per partition (3) every
# `--batch-interval`: at TWEETS_PER_SECOND, about rate × interval / 3 rows per
# file. The same MILLIONS million synthetic tweets are written twice into a
# master dataset: in such small files, and in large ones. Timed:
# `tweetlambda batch --complete --force` on the small files, `tweetlambda
# compact` (the archive's defaults: fanout 10, small below 100,000 rows),
# the batch after it (incremental: nothing to recompute) and again with
# `--force`, and the batch on the large files.
#
# Writes the figures to BENCHMARKS.md between the `compaction` markers.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/steal.sh
source bench/steal.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tweetlambda/target}"
TL_HOME="${TL_HOME:-$HOME/.cache/tweetlambda}"
MILLIONS="${1:-2}"
RATE="${2:-50}"
INTERVAL="${3:-10}"
TWEETS=$((MILLIONS * 1000000))
ROWS_PER_FILE=$(python3 -c "print(max(1, round($RATE * $INTERVAL / 3)))")
WORK="$TL_HOME/bench/compaction"
rm -rf "$WORK" && mkdir -p "$WORK"

cargo build --release --locked -p tweetlambda >&2
TL="$CARGO_TARGET_DIR/release/tweetlambda"

# Runs a command under /usr/bin/time; prints "seconds peak_rss_mib", keeps
# its output in $WORK/out.
timed() {
  local out t rss
  out=$( { /usr/bin/time -f "TIME %e %M" "$@" >"$WORK/out"; } 2>&1 )
  read -r t rss < <(awk '/^TIME/ {print $2, int($3 / 1024)}' <<<"$out")
  echo "$t $rss"
}

files() {
  find "$1" -path '*/date=*' -name '*.parquet' | wc -l
}

steal_start
"$TL" generate --master "$WORK/small" --tweets "$TWEETS" --rate "$RATE" \
  --rows-per-file "$ROWS_PER_FILE" >&2
"$TL" generate --master "$WORK/large" --tweets "$TWEETS" --rate "$RATE" >&2
small_files=$(files "$WORK/small")
large_files=$(files "$WORK/large")

read -r small_s small_rss < <(timed "$TL" batch --master "$WORK/small" --views "$WORK/views" --complete --force)
read -r compact_s compact_rss < <(timed "$TL" compact --master "$WORK/small")
compact_out=$(cat "$WORK/out")
rewritten=$(sed -n 's/.*(\([0-9]*\) rows rewritten).*/\1/p' <<<"$compact_out")
compacted_files=$(files "$WORK/small")
read -r inc_s _ < <(timed "$TL" batch --master "$WORK/small" --views "$WORK/views" --complete)
inc_out=$(cat "$WORK/out")
computed=$(sed -n 's/.* \([0-9]*\) dates computed.*/\1/p' <<<"$inc_out")
read -r after_s after_rss < <(timed "$TL" batch --master "$WORK/small" --views "$WORK/views" --complete --force)
read -r large_s large_rss < <(timed "$TL" batch --master "$WORK/large" --views "$WORK/views-large" --complete --force)
amplification=$(python3 -c "print(f'{$rewritten / $TWEETS:.2f}')")
slowdown=$(python3 -c "print(f'{$small_s / $large_s:.2f}')")
recovered=$(python3 -c "print(f'{$after_s / $large_s:.2f}')")
rm -rf "$WORK"

table=$(
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, by \`bench/compaction.sh $MILLIONS $RATE $INTERVAL\` (CPU steal by the hypervisor during the run: $(steal_percent)%)."
  echo "$MILLIONS million synthetic tweets at $RATE tweets/s of event time, as a continuous archive with a ${INTERVAL} s \`--batch-interval\` writes them"
  echo "(3 partitions, $ROWS_PER_FILE rows per file), and the same tweets in large files; release build, wall time and peak RSS by \`/usr/bin/time\`."
  echo
  echo "| run | data files | seconds | peak RSS MiB |"
  echo "|---|---:|---:|---:|"
  echo "| \`batch --force\`, small files | $small_files | $small_s | $small_rss |"
  echo "| \`compact\` (fanout 10) | $small_files → $compacted_files | $compact_s | $compact_rss |"
  echo "| \`batch\` after it ($computed dates recomputed: compaction keeps a date's identity) | $compacted_files | $inc_s | |"
  echo "| \`batch --force\`, compacted | $compacted_files | $after_s | $after_rss |"
  echo "| \`batch --force\`, large files | $large_files | $large_s | $large_rss |"
  echo
  echo "Small files cost the batch **${slowdown}×** the time on large files; after compaction **${recovered}×**."
  echo "Compaction rewrote $rewritten rows, **${amplification}** per tweet (one per level)."
)
python3 bench/section.py compaction "Master dataset: small files and compaction" "$table"
echo "$table"

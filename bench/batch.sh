#!/usr/bin/env bash
# Benchmark: the batch job, master dataset -> views, beside DuckDB and Spark.
#
#   bench/batch.sh [TWEETS]        (default 10000000)
#
# Writes TWEETS synthetic tweets (Zipf hashtags, bursts, 30% retweets) into
# a master dataset once (`tweetlambda generate --master`, the archive's file
# format), then runs `tweetlambda batch`, the same views in DuckDB and in
# Spark (pyspark, local mode) on the same files (bench/batch_bench.py), and
# writes the figures to BENCHMARKS.md between the `batch` markers.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/steal.sh
source bench/steal.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tweetlambda/target}"
TL_HOME="${TL_HOME:-$HOME/.cache/tweetlambda}"
N="${1:-10000000}"
MASTER="$TL_HOME/bench/master-$N"
WORK="$TL_HOME/bench/batch-work"

cargo build --release --locked -p tweetlambda >&2
TL="$CARGO_TARGET_DIR/release/tweetlambda"
VENV="$TL_HOME/venv"
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q duckdb pyspark >&2

if [[ ! -f "$MASTER/.complete" ]]; then
  rm -rf "$MASTER"
  "$TL" generate --master "$MASTER" --tweets "$N" >&2
  touch "$MASTER/.complete"
fi
steal_start
rm -rf "$WORK" && mkdir -p "$WORK"
body=$("$VENV/bin/python" bench/batch_bench.py "$TL" "$MASTER" "$WORK")
rm -rf "$WORK"

table=$(
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, by \`bench/batch.sh $N\` (CPU steal by the hypervisor during the run: $(steal_percent)%)."
  echo "Each engine reads the same master dataset, deduplicates tweets by id, computes the four views"
  echo "(hashtag_counts and its hour and day rollups, tweet_scores with retweets and text) and writes them as Parquet;"
  echo "wall time is process start to exit (Spark's includes starting its JVM), one engine at a time."
  echo
  echo "$body"
)
python3 bench/section.py batch "Batch: master dataset to views" "$table"
echo "$table"

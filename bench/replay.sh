#!/usr/bin/env bash
# Benchmark: replay throughput, MySQL -> broker, `--speed max`.
#
#   bench/replay.sh [TWEETS]        (default 1000000)
#
# Generates TWEETS synthetic tweets (Zipf hashtags, bursts, 30% retweets)
# into a bench database once, then replays them into fresh topics on Tansu
# with memory storage and with SQLite storage, and writes the figures to
# BENCHMARKS.md between the `replay` markers.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tweetlambda/target}"
TL_HOME="${TL_HOME:-$HOME/.cache/tweetlambda}"
N="${1:-1000000}"
DB="tl_bench_$N"

cargo build --release --locked -p tweetlambda >&2
TL="$CARGO_TARGET_DIR/release/tweetlambda"
sock="$TL_HOME/bench/run/mariadb.sock"
results=()
calc() { python3 -c "print($1)"; }
now() { python3 -c "import time; print(time.time())"; }

for storage in memory sqlite; do
  scripts/services.sh --profile bench down >/dev/null 2>&1 || true
  rm -rf "$TL_HOME/bench/tansu"
  TL_KAFKA_STORAGE=$storage scripts/services.sh --profile bench up >&2
  eval "$(scripts/services.sh --profile bench env | sed 's/^/export /')"
  have=$(mariadb --no-defaults --socket="$sock" -uroot -N -e "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='$DB' AND table_name='tweet_meta'")
  if [[ "$have" == 0 ]] || [[ $(mariadb --no-defaults --socket="$sock" -uroot -N "$DB" -e "SELECT COUNT(*) FROM tweets") != "$N" ]]; then
    mariadb --no-defaults --socket="$sock" -uroot -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
    start=$(now)
    "$TL" generate --mysql-url "$TWEETLAMBDA_MYSQL_URL/$DB" --tweets "$N" >&2
    gen_secs=$(calc "round($(now) - $start, 1)")
    echo "generated $N tweets in $gen_secs s" >&2
  fi
  links=$(mariadb --no-defaults --socket="$sock" -uroot -N "$DB" -e "SELECT COUNT(*) FROM tweet_hashtags")
  # Warm the index pass and the buffer pool once, so that the figure is the replay's.
  mariadb --no-defaults --socket="$sock" -uroot -N "$DB" -e "SELECT COUNT(*) FROM tweet_meta FORCE INDEX (event_time) WHERE event_time_ms > 0" >/dev/null
  run="b$(date +%s)"
  start=$(now)
  out=$("$TL" replay --mysql-url "$TWEETLAMBDA_MYSQL_URL/$DB" --brokers "$TWEETLAMBDA_BROKERS" \
    --tweets-topic "$run.tweets" --hashtags-topic "$run.hashtags" --dead-letter-topic "$run.dead" \
    --checkpoint "$run" --speed max)
  secs=$(calc "$(now) - $start")
  echo "$out" >&2
  rate=$(calc "int($N / $secs)")
  msgs=$(calc "int(($N + $links) / $secs)")
  results+=("| Tansu 0.6.0, $storage storage | $N | $links | $(printf '%.1f' "$secs") | $rate | $msgs |")
done
scripts/services.sh --profile bench down >&2

table=$(
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, by \`bench/replay.sh $N\`."
  echo "Wall time of \`tweetlambda replay --speed max\` (release build), process start to exit,"
  echo "MariaDB and the broker on the same machine; each tweet is one message on \`tweets\` plus one per hashtag on \`hashtags\`."
  echo
  echo "| broker | tweets | hashtag messages | seconds | tweets/s | messages/s |"
  echo "|---|---:|---:|---:|---:|---:|"
  printf '%s\n' "${results[@]}"
)
python3 bench/section.py replay "Replay: MySQL → broker" "$table"
echo "$table"

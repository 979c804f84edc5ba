#!/usr/bin/env bash
# Benchmark: the serving layer's top-10 queries under load, beside DuckDB.
#
#   bench/serve.sh [TWEETS]        (default 3000000)
#
# Writes TWEETS synthetic tweets spread over 30 days into a master dataset
# once, runs the batch job over it, starts `tweetlambda serve` (release
# build) and loads it with wrk (Debian package) on 127.0.0.1: top-10
# hashtags and top-10 tweets over the last 1 hour, 1 day and 30 days, with
# 1 and then 16 connections, wrk on one thread (`-t1`, pinned to one core
# with taskset) so that the server keeps the other. The same top-10s
# answered by DuckDB over the batch views (bench/serve_duckdb.py), with as
# many queries in flight, are measured beside each line. Writes the
# figures to BENCHMARKS.md between the `serve` markers.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/steal.sh
source bench/steal.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tweetlambda/target}"
TL_HOME="${TL_HOME:-$HOME/.cache/tweetlambda}"
N="${1:-3000000}"
MASTER="$TL_HOME/bench/master-30d-$N"
VIEWS="$TL_HOME/bench/views-30d-$N"
PORT=28080
SECONDS_PER_RUN=10
CONCURRENCY="1 16"

cargo build --release --locked -p tweetlambda >&2
TL="$CARGO_TARGET_DIR/release/tweetlambda"
command -v wrk >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
VENV="$TL_HOME/venv"
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q duckdb >&2

# 30 days of event time: TWEETS / (30 * 86400) tweets per second.
if [[ ! -f "$MASTER/.complete" ]]; then
  rm -rf "$MASTER"
  rate=$(python3 -c "print($N / (30 * 86400))")
  "$TL" generate --master "$MASTER" --tweets "$N" --rate "$rate" --start 2021-08-01T00:00:00Z >&2
  touch "$MASTER/.complete"
fi
steal_start
rm -rf "$VIEWS"
"$TL" batch --master "$MASTER" --views "$VIEWS" --complete >&2

# No broker is needed: the realtime view is empty (a topic that does not
# exist), so every answer comes from the batch views — the expensive side.
"$TL" serve --brokers 127.0.0.1:1 --view-topic none --views "$VIEWS" --listen "127.0.0.1:$PORT" >/dev/null 2>"$TL_HOME/bench/serve.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$PORT/api/status" >/dev/null && break
  sleep 0.5
done
span_days=$(python3 -c "import json; m = json.load(open('$VIEWS/manifest.json')); print(round((m['boundary_ms'] - 1627776000000) / 86400000, 1))")
rss_mib=$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$server/status")

rows=()
for c in $CONCURRENCY; do
  for what in hashtags tweets; do
    for last in 1h 1d 30d; do
      url="http://127.0.0.1:$PORT/api/top/$what?n=10&last=$last"
      curl -sf "$url" >/dev/null
      out=$(taskset -c 0 wrk -t1 -c"$c" -d"${SECONDS_PER_RUN}s" --latency "$url")
      qps=$(awk '/Requests\/sec/ {print int($2)}' <<<"$out")
      p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
      p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
      errors=$(grep -c "Non-2xx\|Socket errors" <<<"$out" || true)
      rows+=("| tweetlambda serve | $c | top-10 $what, last $last | $qps | $p50 | $p99 | $errors |")
    done
  done
done
kill $server 2>/dev/null || true

duck=()
for c in $CONCURRENCY; do
  while IFS= read -r line; do duck+=("$line"); done < <("$VENV/bin/python" bench/serve_duckdb.py "$VIEWS" "$c" "$SECONDS_PER_RUN")
done

table=$(
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, by \`bench/serve.sh $N\` (CPU steal by the hypervisor during the run: $(steal_percent)%)."
  echo "$N synthetic tweets from 2021-08-01 over $span_days days of event time (generated at TWEETS / 30 days per second; the bursts shorten the span), batch views only (no realtime part)."
  echo "Server RSS after loading: $rss_mib MiB, $(python3 -c "print(round($rss_mib / ($N / 1e6)))") MiB per million tweets."
  echo "wrk: one thread pinned to one core (\`taskset -c 0 wrk -t1\`), 1 or 16 connections, ${SECONDS_PER_RUN} s per line, on the same machine as the server."
  echo "DuckDB: in-memory tables of the same views, as many Python threads as connections (one cursor each), ${SECONDS_PER_RUN} s and at least 20 queries per line."
  echo
  echo "| engine | in flight | query | queries/s | p50 | p99 | error lines |"
  echo "|---|---:|---|---:|---:|---:|---:|"
  for c in $CONCURRENCY; do
    printf '%s\n' "${rows[@]}" | awk -F' [|] ' -v c="$c" '$2 == c'
    printf '%s\n' "${duck[@]}" | awk -F' [|] ' -v c="$c" '$2 == c'
  done
)
python3 bench/section.py serve "Serving: top-N queries" "$table"
echo "$table"

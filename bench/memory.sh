#!/usr/bin/env bash
# Benchmark: peak memory of each long-running process against the size of
# its input, to check the bounds README.md states ("Memory").
#
#   bench/memory.sh [TWEETS...]        (default 200000 800000)
#
# For each size: TWEETS synthetic tweets at 100 tweets/s of event time in
# MariaDB (so 200,000 span 33 minutes and 800,000 span 2.2 hours, past
# the speed layer's 1-hour window), replayed into fresh topics of Tansu
# (SQLite storage); then, one after the other and each to the end of that
# input: the speed layer (`--exit-when-idle`), the archive (`--once`), the
# batch job, the indexer (`--once`, into noida-db) and the server (batch
# views and the realtime view, measured once both are loaded). Peak RSS by
# /usr/bin/time (the server's by /proc, VmHWM). Writes the figures to
# BENCHMARKS.md between the `memory` markers.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/steal.sh
source bench/steal.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tweetlambda/target}"
TL_HOME="${TL_HOME:-$HOME/.cache/tweetlambda}"
SIZES=("$@")
[[ ${#SIZES[@]} -gt 0 ]] || SIZES=(200000 800000)
RATE=100
WORK="$TL_HOME/bench/memory"
SERVE_PORT=28082

cargo build --release --locked -p tweetlambda >&2
TL="$CARGO_TARGET_DIR/release/tweetlambda"
command -v /usr/bin/time >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }

steal_start
scripts/services.sh --profile bench down >/dev/null 2>&1 || true
rm -rf "$TL_HOME/bench/tansu" "$TL_HOME/bench/elasticsearch" "$WORK"
mkdir -p "$WORK"
TL_KAFKA_STORAGE=sqlite scripts/services.sh --profile bench up >&2
eval "$(scripts/services.sh --profile bench env | sed 's/^/export /')"
sock="$TL_HOME/bench/run/mariadb.sock"
sql() { mariadb --no-defaults --socket="$sock" -uroot -N "$@"; }

# Runs a command under /usr/bin/time; appends "NAME SIZE PEAK_KIB SECONDS".
measure() {
  local name=$1 size=$2
  shift 2
  /usr/bin/time -f "%M %e" -o "$WORK/time" "$@" >"$WORK/$name-$size.log" 2>&1 \
    || { echo "$name failed, see $WORK/$name-$size.log" >&2; tail -20 "$WORK/$name-$size.log" >&2; exit 1; }
  echo "$name $size $(cat "$WORK/time")" >> "$WORK/figures"
}

for N in "${SIZES[@]}"; do
  DB="tl_memory_$N"
  if [[ $(sql -e "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='$DB' AND table_name='tweet_meta'") == 0 ]]; then
    sql -e "CREATE DATABASE IF NOT EXISTS $DB"
    "$TL" generate --mysql-url "$TWEETLAMBDA_MYSQL_URL/$DB" --tweets "$N" --rate "$RATE" >&2
  fi
  run="m$N-$(date +%s)"
  measure replay "$N" "$TL" replay --mysql-url "$TWEETLAMBDA_MYSQL_URL/$DB" --brokers "$TWEETLAMBDA_BROKERS" \
    --tweets-topic "$run.tweets" --hashtags-topic "$run.hashtags" --dead-letter-topic "$run.dead" \
    --checkpoint "$run" --restart --speed max
  measure speed "$N" "$TL" speed --brokers "$TWEETLAMBDA_BROKERS" --tweets-topic "$run.tweets" \
    --hashtags-topic "$run.hashtags" --topic-prefix "$run." --group "$run.speed" \
    --metrics-listen 127.0.0.1:19472 --exit-when-idle --idle-timeout 5s
  measure archive "$N" "$TL" archive --brokers "$TWEETLAMBDA_BROKERS" --tweets-topic "$run.tweets" \
    --master "$WORK/master-$N" --once
  measure batch "$N" "$TL" batch --master "$WORK/master-$N" --tweets-topic "$run.tweets" \
    --views "$WORK/views-$N" --complete
  measure index "$N" "$TL" index --brokers "$TWEETLAMBDA_BROKERS" --es-url "$TWEETLAMBDA_ES_URL" \
    --tweets-topic "$run.tweets" --index "memory-$N" --group "$run.index" \
    --dead-letter-topic "$run.index-dead" --metrics-listen 127.0.0.1:19473 --once
  # The server: loaded once it has a batch version and has read the
  # realtime view to its end.
  "$TL" serve --brokers "$TWEETLAMBDA_BROKERS" --views "$WORK/views-$N" --view-topic "$run.speed.view" \
    --listen "127.0.0.1:$SERVE_PORT" >"$WORK/serve-$N.log" 2>&1 &
  serve=$!
  status=""
  for _ in $(seq 1 600); do
    sleep 0.5
    status=$(curl -fsS "http://127.0.0.1:$SERVE_PORT/api/status" 2>/dev/null) || continue
    if python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s["batch"] and s["realtime"]["caught_up"] else 1)' <<< "$status"; then
      break
    fi
    status=""
  done
  [[ -n "$status" ]] || { echo "serve did not load, see $WORK/serve-$N.log" >&2; kill "$serve"; exit 1; }
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$serve/status")
  buckets=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["realtime"]["buckets"])' <<< "$status")
  echo "serve $N $hwm 0 $buckets" >> "$WORK/figures"
  kill "$serve"
  wait "$serve" || true
done
scripts/services.sh --profile bench down >&2

python3 - "$WORK/figures" "$RATE" "$(steal_percent)" "${SIZES[*]}" <<'PY'
import pathlib, re, subprocess, sys
rows = [line.split() for line in open(sys.argv[1])]
rate, steal, sizes = int(sys.argv[2]), sys.argv[3], [int(s) for s in sys.argv[4].split()]
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
date = subprocess.run(["date", "-u", "+%Y-%m-%d"], capture_output=True, text=True).stdout.strip()
peak = {(r[0], int(r[1])): int(r[2]) / 1024 for r in rows}
secs = {(r[0], int(r[1])): float(r[3]) for r in rows}
buckets = {int(r[1]): r[4] for r in rows if r[0] == "serve"}
WHAT = [
    ("replay", "`replay --speed max` (MariaDB to `tweets` and `hashtags`)", "3 pages of `--fetch-size` rows (10,000) and librdkafka's queue (at most 1M messages or 1 GiB)"),
    ("speed", "`speed --exit-when-idle` (catch-up to the end, then idle)", "the buckets from the watermark minus the largest window and the lateness to the newest event read, times their keys; 100,000 view records per tick"),
    ("archive", "`archive --once` (into the master dataset)", "one batch of `--batch-rows` rows (100,000) per partition"),
    ("batch", "`batch --complete` (views of the whole master dataset)", "the largest date"),
    ("index", "`index --once` (into noida-db)", "bulk requests in flight (2 × 1,000 documents or 5 MiB)"),
    ("serve", "`serve`, loaded (batch views and the realtime view read to its end)", "the batch version's rows, the realtime buckets from B on, and the keys before B until their tombstones are out"),
]
head = "| process | bound (README, \"Memory\") | " + " | ".join(f"{n:,} tweets ({n / rate / 3600:.1f} h)" for n in sizes) + " | growth |"
lines = [head, "|---|---|" + "---:|" * len(sizes) + "---:|"]
for name, what, bound in WHAT:
    cells = []
    for n in sizes:
        cell = f"{peak[(name, n)]:.0f} MiB"
        if name != "serve":
            cell += f", {secs[(name, n)]:.1f} s"
        cells.append(cell)
    growth = peak[(name, sizes[-1])] / max(peak[(name, sizes[0])], 1)
    lines.append(f"| {what} | {bound} | " + " | ".join(cells) + f" | {growth:.2f}× |")
text = f"""Measured {date} on {cores} cores by `bench/memory.sh {' '.join(map(str, sizes))}` (CPU steal by the hypervisor during the run: {steal}%).
Synthetic tweets at {rate} tweets/s of event time (span in brackets), replayed into Tansu 0.6.0 (SQLite storage); each process run
to the end of that input, one after the other; peak RSS (VmHWM) and wall time by `/usr/bin/time`; growth: peak at {sizes[-1]:,} over peak
at {sizes[0]:,} tweets ({sizes[-1] / sizes[0]:.0f}× the tweets). The server held {', '.join(f'{buckets[n]} realtime buckets at {n:,}' for n in sizes)}.

""" + "\n".join(lines)
path = pathlib.Path("BENCHMARKS.md")
doc = path.read_text()
block = "<!-- memory:start -->\n" + text + "\n<!-- memory:end -->"
if "<!-- memory:start -->" in doc:
    doc = re.sub(r"<!-- memory:start -->.*?<!-- memory:end -->", lambda _: block, doc, flags=re.S)
else:
    doc = doc.rstrip("\n") + "\n\n## Memory of each process\n\n" + block + "\n"
path.write_text(doc)
print(text)
PY

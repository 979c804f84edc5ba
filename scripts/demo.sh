#!/usr/bin/env bash
# The demo (README, "Quick start"): starts the local services, loads the seed
# MySQL dump as a user would (`mariadb DB < dump.sql`), replays it into Kafka,
# shows what the topics hold, runs the speed layer, the archive and the batch
# job over it, indexes it into the Elasticsearch API, and ends with the
# serving layer running (dashboard and API on 127.0.0.1:8080;
# TWEETLAMBDA_LISTEN to change it). Each run starts from an
# empty demo database and empty demo topics.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tweetlambda/target}"
TL_HOME="${TL_HOME:-$HOME/.cache/tweetlambda}"
# The seed dump: bundled in data/, or tweet_hashtags_db.sql (plain) in the
# folder TWEETLAMBDA_SHARED_DATA names.
if [[ -n "${TWEETLAMBDA_SHARED_DATA:-}" ]]; then
  SEED_DUMP=(cat "$TWEETLAMBDA_SHARED_DATA/tweet_hashtags_db.sql")
else
  SEED_DUMP=(gzip -dc data/tweet_hashtags_db.sql.gz)
fi
DB=tweetlambda_demo

# Each step says how long the one before it took; the total is at the end.
step_started=$SECONDS
step_name=""
step() {
  local took=$((SECONDS - step_started))
  [[ -n "$step_name" ]] && printf '    (%s: %dm%02ds)\n' "$step_name" $((took / 60)) $((took % 60))
  step_name="$1"
  step_started=$SECONDS
  printf '\n==> %s\n' "$*"
}

# The debug build: the one scripts/test.sh builds too, so that the second
# command of the quick start reuses it (a release build would take about
# 18 minutes more on 2 cores, and the demo's data is small). The benchmarks
# build their own release binary.
step "building tweetlambda (debug, shared with the tests)"
cargo build --locked -p tweetlambda
TL="$CARGO_TARGET_DIR/debug/tweetlambda"

step "starting MariaDB, Tansu and the Elasticsearch API (demo profile; logs in $TL_HOME/demo/logs)"
scripts/services.sh --profile demo down >/dev/null 2>&1 || true
rm -rf "$TL_HOME/demo/tansu" # empty topics for every demo run
scripts/services.sh --profile demo up
eval "$(scripts/services.sh --profile demo env | sed 's/^/export /')"

step "loading the seed dump: ${SEED_DUMP[*]} | mariadb $DB"
sock="$TL_HOME/demo/run/mariadb.sock"
mariadb --no-defaults --socket="$sock" -uroot -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB CHARACTER SET utf8mb4"
"${SEED_DUMP[@]}" | mariadb --no-defaults --socket="$sock" -uroot "$DB"
mariadb --no-defaults --socket="$sock" -uroot "$DB" -e \
  "SELECT (SELECT COUNT(*) FROM tweets) tweets, (SELECT COUNT(*) FROM hashtags) hashtags, (SELECT COUNT(*) FROM tweet_hashtags) tweet_hashtags"

step "replaying MySQL -> Kafka in event-time order (--speed max)"
"$TL" replay --mysql-url "$TWEETLAMBDA_MYSQL_URL/$DB" --brokers "$TWEETLAMBDA_BROKERS" --speed max

step "what the topics hold"
"$TL" peek --brokers "$TWEETLAMBDA_BROKERS" -n 1 tweets hashtags tweets.dead-letter

step "speed layer: rolling top hashtags in event time (windows 1m, 5m; exits when the input is idle)"
"$TL" speed --brokers "$TWEETLAMBDA_BROKERS" --windows 1m,5m --idle-timeout 2s --emit-interval 500ms \
  --metrics-listen none --exit-when-idle
echo "final top hashtags of each 5-minute window of the seed dump:"
"$TL" finals --brokers "$TWEETLAMBDA_BROKERS" --topic top_hashtags --window 5m -n 5
echo "final top tweets (score = distinct hashtags for the seed dump) of the first 5-minute windows:"
"$TL" finals --brokers "$TWEETLAMBDA_BROKERS" --topic top_tweets --window 5m -n 3 | head -3

step "archive: the master dataset (Parquet by event date) for the batch layer"
MASTER="$TL_HOME/demo/master"
rm -rf "$MASTER"
"$TL" archive --brokers "$TWEETLAMBDA_BROKERS" --master "$MASTER" --once
find "$MASTER" -name '*.parquet' | sort | sed "s|$MASTER/|  |"

step "batch: the views recomputed from the master dataset (the cron job)"
VIEWS="$TL_HOME/demo/views"
rm -rf "$VIEWS"
# B follows the archive: the last bucket stays with the speed layer.
"$TL" batch --master "$MASTER" --views "$VIEWS" --show-top 5
echo "manifest: $VIEWS/manifest.json"

step "serving layer: batch views before B merged with the speed layer's realtime view"
LISTEN="${TWEETLAMBDA_LISTEN:-127.0.0.1:8080}"
SERVE_LOG="$TL_HOME/demo/logs/serve.log"
pkill -f "tweetlambda serve --brokers $TWEETLAMBDA_BROKERS" 2>/dev/null || true
setsid -f "$TL" serve --brokers "$TWEETLAMBDA_BROKERS" --views "$VIEWS" --listen "$LISTEN" >"$SERVE_LOG" 2>&1
for _ in $(seq 1 100); do
  curl -sf "http://$LISTEN/api/status" | grep -q '"caught_up":true' && break
  sleep 0.2
done
"$TL" query --server "http://$LISTEN" top-hashtags --last 10m -n 10
echo
"$TL" query --server "http://$LISTEN" top-tweets --last 10m -n 3

step "Elasticsearch: the tweets indexed for Kibana (index tweets), top hashtags as Elasticsearch counts them"
curl -s -X DELETE "$TWEETLAMBDA_ES_URL/tweets" >/dev/null # a fresh index for every demo run
"$TL" index --brokers "$TWEETLAMBDA_BROKERS" --es-url "$TWEETLAMBDA_ES_URL" --once --metrics-listen none
curl -s -X POST "$TWEETLAMBDA_ES_URL/tweets/_refresh" >/dev/null
curl -s -H 'Content-Type: application/json' "$TWEETLAMBDA_ES_URL/tweets/_search" \
  -d '{"size":0,"aggs":{"top":{"terms":{"field":"hashtags","size":10}}}}' |
  python3 -c '
import json, sys
answer = json.load(sys.stdin)
print("Elasticsearch, terms on hashtags over", answer["hits"]["total"]["value"], "tweets:")
for i, b in enumerate(answer["aggregations"]["top"]["buckets"], 1):
    key, count = b["key"], b["doc_count"]
    print(f"{i:>4}  {key:<30} {count:>6}")'
echo "the serving layer, the same range (the whole dump):"
"$TL" query --server "http://$LISTEN" top-hashtags --last 10m -n 10

step "done"
echo "the demo took $((SECONDS / 60))m$(printf '%02d' $((SECONDS % 60)))s"
echo "MySQL: $TWEETLAMBDA_MYSQL_URL/$DB   Kafka: $TWEETLAMBDA_BROKERS   Elasticsearch API: $TWEETLAMBDA_ES_URL"
echo "Dashboard: http://$LISTEN/   API: http://$LISTEN/api/top/hashtags?last=10m   (server log: $SERVE_LOG)"
echo "Stop the server with: pkill -f 'tweetlambda serve'; the services with: scripts/services.sh --profile demo down"

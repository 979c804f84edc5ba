#!/usr/bin/env bash
# Benchmark of the Elasticsearch indexer; writes BENCHMARKS.md between the
# `index` markers.
#
#   bench/index.sh [TWEETS]        (default 200000)
#
# TWEETS synthetic tweets are replayed into a fresh `tweets` topic on Tansu
# (SQLite storage: the memory storage's end offsets stop short of the last
# batch, and both indexers read to the end), then bench/index_bench.py indexes them into the local
# Elasticsearch API (noida-db) three ways, one after the other, in one run:
# `tweetlambda index --once`, a Python consumer with
# elasticsearch.helpers.bulk, and the same consumer with one request per
# document.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tweetlambda/target}"
TL_HOME="${TL_HOME:-$HOME/.cache/tweetlambda}"
N="${1:-200000}"
DB="tl_bench_$N"

cargo build --release --locked -p tweetlambda >&2
TL="$CARGO_TARGET_DIR/release/tweetlambda"

scripts/services.sh --profile bench down >/dev/null 2>&1 || true
rm -rf "$TL_HOME/bench/tansu" "$TL_HOME/bench/elasticsearch"
TL_KAFKA_STORAGE=sqlite scripts/services.sh --profile bench up >&2
eval "$(scripts/services.sh --profile bench env | sed 's/^/export /')"
sock="$TL_HOME/bench/run/mariadb.sock"
if [[ $(mariadb --no-defaults --socket="$sock" -uroot -N -e "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='$DB' AND table_name='tweet_meta'") == 0 ]]; then
  mariadb --no-defaults --socket="$sock" -uroot -e "CREATE DATABASE IF NOT EXISTS $DB"
  "$TL" generate --mysql-url "$TWEETLAMBDA_MYSQL_URL/$DB" --tweets "$N" >&2
fi
run="i$(date +%s)"
"$TL" replay --mysql-url "$TWEETLAMBDA_MYSQL_URL/$DB" --brokers "$TWEETLAMBDA_BROKERS" \
  --tweets-topic "$run.tweets" --hashtags-topic "$run.hashtags" --dead-letter-topic "$run.dead" \
  --checkpoint "$run" --speed max >&2
tweets=$(mariadb --no-defaults --socket="$sock" -uroot -N "$DB" -e "SELECT COUNT(*) FROM tweet_meta WHERE event_time_ms IS NOT NULL")

VENV="$TL_HOME/venv"
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q confluent-kafka 'elasticsearch>=8,<9' >&2
figures=$("$VENV/bin/python" bench/index_bench.py --tl "$TL" --brokers "$TWEETLAMBDA_BROKERS" \
  --es-url "$TWEETLAMBDA_ES_URL" --tweets "$run.tweets" --expected "$tweets")
echo "$figures" >&2
client=$("$VENV/bin/python" -c 'import elasticsearch; print(elasticsearch.__versionstr__)')
scripts/services.sh --profile bench down >&2

python3 - "$figures" "$N" "$client" <<'PY'
import json, subprocess, sys
f, n, client = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
date = subprocess.run(["date", "-u", "+%Y-%m-%d"], capture_output=True, text=True).stdout.strip()
text = f"""Measured {date} on {cores} cores by `bench/index.sh {n}`: {f['tl_docs']:,} synthetic tweets on one
`tweets` topic (Tansu, SQLite storage), indexed into noida-db 0.2.3 (the local Elasticsearch API) on
127.0.0.1, three ways one after the other, each into a fresh index with the same mapping; every index's
document count checked equal to the tweets.

| indexer | documents | seconds | documents/s | ratio |
|---|---:|---:|---:|---:|
| `tweetlambda index --once` (bulk of 1,000 documents or 5 MiB, 2 in flight) | {f['tl_docs']:,} | {f['tl_seconds']} | {f['tl_docs_per_sec']:,} | 1 |
| peer: Python consumer + `elasticsearch.helpers.bulk` (client {client}, chunks of 500) | {f['bulk_docs']:,} | {f['bulk_seconds']} | {f['bulk_docs_per_sec']:,} | {f['tl_docs_per_sec'] / max(f['bulk_docs_per_sec'], 1):.2f}× |
| peer: Python consumer, one `index` request per document (first {f['single_docs']:,} tweets) | {f['single_docs']:,} | {f['single_seconds']} | {f['single_docs_per_sec']:,} | {f['tl_docs_per_sec'] / max(f['single_docs_per_sec'], 1):.1f}× |

Ratio: tweetlambda's documents/s over the peer's. The server is one process on the same 2 cores as the
indexer and the broker, so these figures measure the pair, not Elasticsearch; tweetlambda's time
includes its start-up (reachability checks, index creation, the consumer's assignment) and its
summary was `{f['tl_summary']}`."""
subprocess.run(["python3", "bench/section.py", "index", "Elasticsearch indexing", text], check=True)
PY
echo "BENCHMARKS.md updated (section index)" >&2

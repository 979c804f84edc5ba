#!/usr/bin/env bash
# Benchmarks of the speed layer; writes BENCHMARKS.md between the `speed`
# markers.
#
#   bench/speed.sh [TWEETS]        (default 1000000)
#
# 1. The aggregation engine in-process (cargo bench, no broker).
# 2. Through Tansu (memory storage) on 127.0.0.1: TWEETS synthetic tweets are
#    replayed into fresh topics, then bench/speed_bench.py measures the speed
#    layer catching up on them, the peer (a Python Counter consumer) on the
#    same hashtags topic, latency at 5,000 tweets/s, and under the same load
#    the broker alone (one trip to a plain consumer, no speed layer).
# 3. Latency and the broker alone again, through a fresh Tansu with SQLite
#    storage (the demo's and the tests').
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/steal.sh
source bench/steal.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tweetlambda/target}"
TL_HOME="${TL_HOME:-$HOME/.cache/tweetlambda}"
N="${1:-1000000}"
DB="tl_bench_$N"

cargo build --release --locked -p tweetlambda >&2
TL="$CARGO_TARGET_DIR/release/tweetlambda"

steal_start
engine_fast=$(cargo bench --locked -p tweetlambda-speed --bench engine -- 5000000 5000 1000000 2>/dev/null | grep '^engine')
engine_busy=$(cargo bench --locked -p tweetlambda-speed --bench engine -- 5000000 5000 100000 2>/dev/null | grep '^engine')
echo "$engine_fast" >&2
echo "$engine_busy" >&2

scripts/services.sh --profile bench down >/dev/null 2>&1 || true
rm -rf "$TL_HOME/bench/tansu"
TL_KAFKA_STORAGE=memory scripts/services.sh --profile bench up >&2
eval "$(scripts/services.sh --profile bench env | sed 's/^/export /')"
sock="$TL_HOME/bench/run/mariadb.sock"
if [[ $(mariadb --no-defaults --socket="$sock" -uroot -N -e "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='$DB' AND table_name='tweet_meta'") == 0 ]]; then
  mariadb --no-defaults --socket="$sock" -uroot -e "CREATE DATABASE IF NOT EXISTS $DB"
  "$TL" generate --mysql-url "$TWEETLAMBDA_MYSQL_URL/$DB" --tweets "$N" >&2
fi
links=$(mariadb --no-defaults --socket="$sock" -uroot -N "$DB" -e "SELECT COUNT(*) FROM tweet_hashtags")
run="s$(date +%s)"
"$TL" replay --mysql-url "$TWEETLAMBDA_MYSQL_URL/$DB" --brokers "$TWEETLAMBDA_BROKERS" \
  --tweets-topic "$run.tweets" --hashtags-topic "$run.hashtags" --dead-letter-topic "$run.dead" \
  --checkpoint "$run" --speed max >&2

VENV="$TL_HOME/venv"
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q confluent-kafka >&2
figures=$("$VENV/bin/python" bench/speed_bench.py --tl "$TL" --brokers "$TWEETLAMBDA_BROKERS" \
  --tweets "$run.tweets" --hashtags "$run.hashtags" --expected-events "$((N + links))" --hashtag-messages "$links")
echo "$figures" >&2
scripts/services.sh --profile bench down >&2

# Latency again through a fresh broker with SQLite storage, the storage of
# the demo and test profiles.
rm -rf "$TL_HOME/bench/tansu"
TL_KAFKA_STORAGE=sqlite scripts/services.sh --profile bench up >&2
sqlite_figures=$("$VENV/bin/python" bench/speed_bench.py --tl "$TL" --brokers "$TWEETLAMBDA_BROKERS" \
  --tweets "$run.tweets" --hashtags "$run.hashtags" --expected-events "$((N + links))" --hashtag-messages "$links" \
  --only latency broker)
echo "$sqlite_figures" >&2
scripts/services.sh --profile bench down >&2

python3 - "$engine_fast" "$engine_busy" "$figures" "$N" "$links" "$(steal_percent)" "$sqlite_figures" <<'PY'
import json, pathlib, re, subprocess, sys
def kv(line):
    return dict(p.split("=", 1) for p in line.split()[1:])
STAGES = [
    ("input", "producer timestamp to the speed layer's poll (producer batching, broker, fetch wait)"),
    ("apply", "decode and apply the messages of one tick"),
    ("wait", "the oldest message of a tick waiting for the tick"),
    ("markers", "end offsets, failed deliveries sent again, the wait until they and the re-keyed retweets are acknowledged, position markers"),
    ("tick", "the engine's tick (window updates, finals, view records)"),
    ("produce", "queueing the tick's outputs"),
    ("flush", "until the broker acknowledged them"),
    ("commit", "queueing the offset commit"),
]
fast, busy, f, n, links = kv(sys.argv[1]), kv(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
lite = json.loads(sys.argv[7])
def trips(storage, g):
    """The latency table's two lines for one broker storage."""
    return "\n".join(
        f"| {storage} | {what} | {g[k + '_rate_tweets_per_sec']:,} | {g[k + '_probes_seen']} of {g[k + '_probes']} "
        f"| **{g[k + '_p50_ms']}** | **{g[k + '_p99_ms']}** | {g[k + '_max_ms']} | {g[k + '_acks_p50_ms']} | {g[k + '_acks_p99_ms']} |"
        for k, what in [("latency", "the speed layer: input to its realtime-view record (two trips)"),
                        ("broker", "the broker alone: input to a plain consumer (one trip)")])
def written(storage, g):
    r = g["latency_records"]
    inputs = r.get("tweets", 0) + r.get("hashtags", 0)
    outputs = {k: v for k, v in sorted(r.items()) if k not in ("tweets", "hashtags")}
    return (f"{storage}: the load {inputs:,} (tweets and hashtags), the speed layer {sum(outputs.values()):,} "
            f"({', '.join(f'`{k}` {v:,}' for k, v in outputs.items())})")
def stage(g, name, q):
    return g["latency_stages_ms"].get(name, {}).get(q, "–")
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
date = subprocess.run(["date", "-u", "+%Y-%m-%d"], capture_output=True, text=True).stdout.strip()
speedup = f["catchup_events_per_sec"] / max(f["peer_messages_per_sec"], 1)
text = f"""Measured {date} on {cores} cores by `bench/speed.sh {n}` (CPU steal by the hypervisor during the run: {sys.argv[6]}%).

**Engine, in-process** (one thread; Zipf hashtags, windows 1m/5m/15m/1h, events carry 1–3 hashtags):

| ticks (publish updates, finals, view) | events | events/s | of which ticks | buckets held | RSS growth |
|---|---:|---:|---:|---:|---:|
| every {int(fast['events_per_tick']):,} events (1 s emit interval at 1M events/s) | {int(fast['events']):,} | {int(fast['events_per_sec']):,} | {fast['ticks_seconds']} s of {fast['seconds']} s | {fast['buckets_held']} | {fast['rss_growth_mib']} MiB |
| every {int(busy['events_per_tick']):,} events (100 ms emit interval at 1M events/s) | {int(busy['events']):,} | {int(busy['events_per_sec']):,} | {busy['ticks_seconds']} s of {busy['seconds']} s | {busy['buckets_held']} | {busy['rss_growth_mib']} MiB |

**Through Tansu 0.6.0 (memory storage) on 127.0.0.1**, {n:,} synthetic tweets and {links:,} hashtag messages already in the topics:

| what | messages | seconds | messages/s |
|---|---:|---:|---:|
| `tweetlambda speed` catching up (tweets + hashtags + re-keyed retweets, exact dedup, 4 windows, view and top-N published), from its first event (start-up and group join before it: {f['catchup_startup_seconds']} s) | {f['catchup_events']:,} | {f['catchup_seconds']} | {f['catchup_events_per_sec']:,} |
| ceiling: a plain consumer (confluent-kafka, partitions assigned directly) reading both input topics and only counting messages, from its first message | {f['raw_messages']:,} | {f['raw_seconds']} | {f['raw_messages_per_sec']:,} |
| peer: Python consumer (confluent-kafka, partitions assigned directly, no group) with a `Counter` per minute, hashtags topic only, no dedup | {f['peer_messages']:,} | {f['peer_seconds']} | {f['peer_messages_per_sec']:,} |

Speed layer / ceiling, messages per second: **{f['catchup_events_per_sec'] / max(f['raw_messages_per_sec'], 1):.2f}** (target ≥ 0.9); speed layer / peer: **{speedup:.1f}×** (the speed layer reads both topics and publishes its outputs; the peer only counts).
Peak RSS of the speed layer in that run (VmHWM): {f['speed_peak_rss_mib']} MiB, holding the buckets of the 1-hour window plus the allowed lateness; the event time of the data spans {n / 500 / 60:.0f} minutes.

**Latency at 5,000 tweets/s** (2 hashtags each, event time = now; the speed layer with `--emit-interval 50ms`), through Tansu 0.6.0 with each storage (memory: the broker of the catch-up above, holding its topics; SQLite: a fresh broker): from the produce call of a probe tweet to the arrival of the first output that includes it, its realtime-view record; the broker alone, with no speed layer, under the same producer loop: from the produce call to the arrival of the probe itself at a plain consumer with the same settings (`fetch.wait.max.ms` 5, each message timed as soon as it is polled). A probe every 20 ms, for 30 s. Producer acknowledgements: every 50th tweet, from its produce call.

| storage | what | tweets/s | probes seen | p50 ms | p99 ms | max ms | acks p50 ms | acks p99 ms |
|---|---|---:|---:|---:|---:|---:|---:|---:|
{trips("memory (after the catch-up above)", f)}
{trips("SQLite", lite)}

Records written in each latency run (high minus low watermark of each topic after it): {written("memory", f)}; {written("SQLite", lite)}.

Where the time goes, as the speed layer timed each stage of its loop in those runs (its `speed_stage_*_seconds` metrics; per message for input, per tick for the rest; the output's trip to the reader is the remainder):

| stage | memory p50 ms | memory p99 ms | SQLite p50 ms | SQLite p99 ms |
|---|---:|---:|---:|---:|
""" + "\n".join(f"| {name}: {what} | {stage(f, name, 'p50')} | {stage(f, name, 'p99')} | {stage(lite, name, 'p50')} | {stage(lite, name, 'p99')} |" for name, what in STAGES)
path = pathlib.Path("BENCHMARKS.md")
doc = path.read_text()
block = "<!-- speed:start -->\n" + text + "\n<!-- speed:end -->"
doc = re.sub(r"<!-- speed:start -->.*?<!-- speed:end -->", lambda _: block, doc, flags=re.S)
path.write_text(doc)
print(text)
PY

"""End-to-end benchmarks of the speed layer through the broker, and the peer.

Run by bench/speed.sh, which starts the services, fills the input topics and
passes their names. Prints one JSON object of figures on stdout.

  catchup  The speed layer reads the filled `tweets` and `hashtags` topics
           from the beginning; events/s from the first event counted to the
           last (read from its /metrics; start-up and the consumer-group join
           are reported apart), and its peak RSS (VmHWM).
  peer     The seed projects' approach on the same `hashtags` topic: a Python
           consumer (confluent-kafka) counting hashtags per minute with a
           collections.Counter; messages/s.
  latency  Tweets produced at a steady rate with the current time as event
           time; every 20 ms a probe tweet carries a hashtag of its own. The
           latency of a probe is the time from its produce call to the arrival
           of the realtime-view record of its hashtag, i.e. the first output
           of the speed layer that includes it. Afterwards, the records of
           each of the run's topics: what the load and the speed layer wrote.
  broker   The floor under that figure: the same load produced the same way,
           with no speed layer; a plain consumer (confluent-kafka, the
           latency reader's settings) of the tweets topic reports each
           probe's arrival, so one trip through the broker is measured, and
           the producer's acknowledgements of every 50th tweet. The speed
           layer's latency needs two such trips (its input and its output).
"""

import argparse
import collections
import json
import multiprocessing
import os
import queue
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition


def metric(url, name):
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


def vm_hwm_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def start_speed(tl, brokers, tweets, hashtags, prefix, metrics, extra=()):
    args = [tl, "speed", "--brokers", brokers, "--tweets-topic", tweets, "--hashtags-topic", hashtags,
            "--topic-prefix", prefix, "--group", prefix + "group", "--metrics-listen", metrics, *extra]
    log = open(f"/tmp/{prefix}speed.log", "w")
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, env={**os.environ, "TWEETLAMBDA_LOG": "info"})


def catchup(a):
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    metrics = "127.0.0.1:19470"
    url = f"http://{metrics}/metrics"
    started = time.time()
    p = start_speed(a.tl, a.brokers, a.tweets, a.hashtags, prefix, metrics, ["--emit-interval", "1s"])
    total = a.expected_events
    seen = 0.0
    first = None  # when the first event was counted: after start-up and the group join
    try:
        while time.time() - started < 600:
            time.sleep(0.05)
            try:
                seen = metric(url, "speed_events_in_total")
            except OSError:
                continue
            if seen > 0 and first is None:
                first = time.time()
            if seen >= total:
                break
        done = time.time()
        elapsed = done - (first or started)
        startup = (first or started) - started
        rss = vm_hwm_mib(p.pid)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
    return {"catchup_events": int(seen), "catchup_seconds": round(elapsed, 2), "catchup_startup_seconds": round(startup, 2),
            "catchup_events_per_sec": int(seen / elapsed), "speed_peak_rss_mib": round(rss, 1)}


def raw(a):
    """The ceiling: a plain consumer that reads both input topics through the
    same broker (partitions assigned directly, large fetches) and only counts
    the messages."""
    c = Consumer({"bootstrap.servers": a.brokers, "group.id": "raw" + uuid.uuid4().hex[:8],
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    assigned = []
    for topic in (a.tweets, a.hashtags):
        md = c.list_topics(topic, timeout=10)
        assigned += [TopicPartition(topic, p, 0) for p in md.topics[topic].partitions]
    c.assign(assigned)
    total = a.expected_events
    n = 0
    started = None
    idle_since = time.time()
    while n < total and time.time() - idle_since < 10:
        msgs = c.consume(num_messages=10000, timeout=0.5)
        if not msgs:
            continue
        if started is None:
            started = time.time()
        idle_since = time.time()
        n += sum(1 for m in msgs if not m.error())
    elapsed = time.time() - (started or time.time())
    c.close()
    return {"raw_messages": n, "raw_seconds": round(elapsed, 2), "raw_messages_per_sec": int(n / max(elapsed, 1e-9))}


def peer(a):
    """A Counter per minute bucket, fed by a plain consumer loop."""
    c = Consumer({"bootstrap.servers": a.brokers, "group.id": "peer" + uuid.uuid4().hex[:8],
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    md = c.list_topics(a.hashtags, timeout=10)
    parts = list(md.topics[a.hashtags].partitions)
    c.assign([TopicPartition(a.hashtags, p, 0) for p in parts])
    counters = collections.defaultdict(collections.Counter)
    n = 0
    started = time.time()
    idle_since = time.time()
    while n < a.hashtag_messages and time.time() - idle_since < 10:
        msgs = c.consume(num_messages=10000, timeout=0.5)
        if not msgs:
            continue
        idle_since = time.time()
        for m in msgs:
            if m.error():
                continue
            v = json.loads(m.value())
            bucket = v["created_at"][:16]  # YYYY-MM-DDTHH:MM, one minute
            counters[bucket][v["hashtag"]] += 1
            n += 1
    elapsed = time.time() - started
    c.close()
    return {"peer_messages": n, "peer_seconds": round(elapsed, 2), "peer_messages_per_sec": int(n / elapsed)}


def reader_settings(brokers):
    return {"bootstrap.servers": brokers, "group.id": "lat" + uuid.uuid4().hex[:8],
            "enable.auto.commit": False, "auto.offset.reset": "latest",
            # the observer must not add its own fetch wait to what it measures
            "fetch.wait.max.ms": 5}


def ready(consumer):
    """The messages that have arrived, as soon as one has (at most 0.2 s
    without any). `consume(num_messages=N, timeout=T)` alone waits until N
    messages or T have passed, which would add up to T to every arrival
    time measured after it."""
    first = consumer.poll(0.2)
    if first is None:
        return []
    return [first] + consumer.consume(num_messages=1000, timeout=0)


def read_view(brokers, topic, arrivals, stop):
    """Reports the arrival time of the first view record of each probe hashtag."""
    view = Consumer(reader_settings(brokers))
    view.subscribe([topic])
    seen = set()
    while not stop.is_set():
        for m in ready(view):
            if m.error() or not m.key():
                continue
            tag = m.key().decode().rsplit("/", 1)[-1]
            if tag.startswith("probe") and tag not in seen:
                seen.add(tag)
                arrivals.put((tag, time.time()))
    view.close()


def read_tweets(brokers, topic, arrivals, stop):
    """Reports the arrival time of each probe tweet itself."""
    c = Consumer(reader_settings(brokers))
    c.subscribe([topic])
    while not stop.is_set():
        for m in ready(c):
            if m.error() or b"probe" not in m.value():
                continue
            for tag in json.loads(m.value())["hashtags"]:
                arrivals.put((tag, time.time()))
    c.close()


def quantiles(values):
    """p50, p99 and max of `values` (ms), rounded."""
    values = sorted(values)
    q = statistics.quantiles(values, n=100) if len(values) > 1 else [float("nan")] * 99
    return round(q[49], 1), round(q[98], 1), round(values[-1], 1) if values else None


def probe_load(a, brokers, tweets, hashtags, read, topic):
    """Produces `a.rate` tweets/s (2 hashtags each, a probe every 20 ms) for
    `a.latency_seconds` while `read` (in a process of its own, so that it
    does not compete with the producer loop for the interpreter) reports
    arrivals from `topic`. Returns the latencies of the probes seen (ms),
    the probes sent, the producer's acknowledgement times (ms) of every
    50th tweet, and the rate achieved."""
    arrivals = multiprocessing.Queue()
    stop = multiprocessing.Event()
    reader = multiprocessing.Process(target=read, args=(brokers, topic, arrivals, stop), daemon=True)
    reader.start()
    sent = {}
    arrived = {}
    acks = []
    time.sleep(2)
    prod = Producer({"bootstrap.servers": brokers, "linger.ms": 1, "enable.idempotence": True})

    def acked(err, msg):
        if err is None:
            acks.append(time.time() * 1000 - msg.timestamp()[1])

    rate, seconds = a.rate, a.latency_seconds
    tags = [f"tag{i}" for i in range(2000)]
    start = time.time()
    i = 0
    probe = 0
    next_probe = start
    while time.time() - start < seconds:
        target = start + i / rate
        now = time.time()
        if target > now:
            time.sleep(target - now)
        now = time.time()
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
        tid = str(10**15 + i)
        hs = [tags[i % 2000], tags[(i * 7) % 2000]]
        if now >= next_probe:
            hs = [f"probe{probe}"]
            sent[f"probe{probe}"] = now
            probe += 1
            next_probe += 0.02
        tweet = {"id": tid, "created_at": created, "text": "bench " + " ".join("#" + h for h in hs), "hashtags": hs}
        prod.produce(tweets, key=tid, value=json.dumps(tweet), on_delivery=acked if i % 50 == 0 else None)
        for h in hs:
            prod.produce(hashtags, key=h, value=json.dumps({"tweet_id": tid, "hashtag": h, "created_at": created}))
        prod.poll(0)
        i += 1
    prod.flush(30)
    achieved = i / (time.time() - start)
    time.sleep(3)
    stop.set()
    while True:
        try:
            tag, t = arrivals.get(timeout=2)
        except queue.Empty:
            break
        arrived.setdefault(tag, t)
    reader.join(timeout=10)
    lat = [(arrived[k] - sent[k]) * 1000 for k in sent if k in arrived]
    return lat, len(sent), acks, achieved


def records(brokers, prefix):
    """Records held by each topic whose name starts with `prefix` (high
    minus low watermark, summed over its partitions)."""
    c = Consumer({"bootstrap.servers": brokers, "group.id": "count" + uuid.uuid4().hex[:8]})
    counts = {}
    for name, topic in c.list_topics(timeout=10).topics.items():
        if name.startswith(prefix):
            counts[name[len(prefix):]] = sum(
                high - low for low, high in
                (c.get_watermark_offsets(TopicPartition(name, p), timeout=10) for p in topic.partitions))
    c.close()
    return counts


def latency(a):
    prefix = f"lat{uuid.uuid4().hex[:8]}."
    tweets, hashtags = prefix + "tweets", prefix + "hashtags"
    metrics = "127.0.0.1:19471"
    p = start_speed(a.tl, a.brokers, tweets, hashtags, prefix, metrics,
                    ["--emit-interval", "50ms", "--windows", "1m,5m", "--idle-timeout", "1h"])
    time.sleep(3)  # topics created, group joined
    lat, sent, acks, achieved = probe_load(a, a.brokers, tweets, hashtags, read_view, prefix + "speed.view")
    # The speed layer's own timing of each stage of its loop (summaries
    # over the whole run, from its metrics endpoint).
    text = urllib.request.urlopen(f"http://{metrics}/metrics", timeout=5).read().decode()
    if os.environ.get("SPEED_BENCH_DEBUG"):
        print("\n".join(l for l in text.splitlines() if "seconds{" in l), file=sys.stderr)
    stages = {}
    for line in text.splitlines():
        m = re.match(r'speed_stage_(\w+)_seconds\{quantile="(0\.5|0\.99)"\} (\S+)', line)
        if m:
            stages.setdefault(m.group(1), {})["p50" if m.group(2) == "0.5" else "p99"] = round(float(m.group(3)) * 1000, 2)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    # What the load and the speed layer wrote to the broker in that run.
    written = records(a.brokers, prefix)
    p50, p99, worst = quantiles(lat)
    a50, a99, _ = quantiles(acks)
    return {"latency_records": written, "latency_rate_tweets_per_sec": int(achieved), "latency_probes": sent, "latency_probes_seen": len(lat),
            "latency_p50_ms": p50, "latency_p99_ms": p99, "latency_max_ms": worst,
            "latency_acks_p50_ms": a50, "latency_acks_p99_ms": a99, "latency_stages_ms": stages}


def broker(a):
    prefix = f"trip{uuid.uuid4().hex[:8]}."
    tweets, hashtags = prefix + "tweets", prefix + "hashtags"
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": a.brokers})
    # As the speed layer creates its input topics: 3 partitions each.
    for f in admin.create_topics([NewTopic(t, 3, 1) for t in (tweets, hashtags)]).values():
        f.result()
    time.sleep(3)
    lat, sent, acks, achieved = probe_load(a, a.brokers, tweets, hashtags, read_tweets, tweets)
    p50, p99, worst = quantiles(lat)
    a50, a99, _ = quantiles(acks)
    return {"broker_rate_tweets_per_sec": int(achieved), "broker_probes": sent, "broker_probes_seen": len(lat),
            "broker_p50_ms": p50, "broker_p99_ms": p99, "broker_max_ms": worst,
            "broker_acks_p50_ms": a50, "broker_acks_p99_ms": a99}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tl", required=True)
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--tweets", required=True)
    ap.add_argument("--hashtags", required=True)
    ap.add_argument("--expected-events", type=int, required=True)
    ap.add_argument("--hashtag-messages", type=int, required=True)
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--latency-seconds", type=int, default=30)
    ap.add_argument("--only", nargs="+", choices=["catchup", "raw", "peer", "latency", "broker"],
                    help="run only these parts")
    a = ap.parse_args()
    out = {}
    for name, part in [("catchup", catchup), ("raw", raw), ("peer", peer), ("latency", latency), ("broker", broker)]:
        if a.only is None or name in a.only:
            out.update(part(a))
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()

"""Indexing throughput into the Elasticsearch API: tweetlambda index against
the seed projects' approach, on the same `tweets` topic and the same server.

Run by bench/index.sh, which starts the services and fills the topic. Prints
one JSON object of figures on stdout.

  tweetlambda  `tweetlambda index --once` into a fresh index: documents/s
               over the whole command (start-up and the final commit
               included).
  bulk         A Python consumer (confluent-kafka) that builds the same
               documents and indexes them with elasticsearch.helpers.bulk
               (chunks of 500, the default), as the first seed does.
  single       The same consumer indexing one document per request
               (es.index), as the second seed does; over the first
               --single-limit tweets only (it is slow), documents/s.

Each run's index is checked afterwards: its document count must equal the
number of distinct tweets indexed.
"""

import argparse
import json
import subprocess
import time
import urllib.request
import uuid

from confluent_kafka import Consumer, TopicPartition
from elasticsearch import Elasticsearch, helpers


def es_count(url, index):
    urllib.request.urlopen(urllib.request.Request(f"{url}/{index}/_refresh", method="POST"), timeout=60).read()
    return json.loads(urllib.request.urlopen(f"{url}/{index}/_count", timeout=60).read())["count"]


def messages(brokers, topic, limit):
    """The topic's messages from the beginning, up to `limit` (or its end)."""
    c = Consumer({"bootstrap.servers": brokers, "group.id": "peer" + uuid.uuid4().hex[:8],
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    md = c.list_topics(topic, timeout=10)
    parts = list(md.topics[topic].partitions)
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    left = {p for p, end in ends.items() if end > 0}
    n = 0
    while left and n < limit:
        for m in c.consume(num_messages=1000, timeout=1.0):
            if m.error():
                continue
            if m.offset() + 1 >= ends[m.partition()]:
                left.discard(m.partition())
            yield m.value()
            n += 1
            if n >= limit:
                break
    c.close()


def document(raw):
    """The document tweetlambda indexes, built the seeds' way (json.loads)."""
    t = json.loads(raw)
    rc, fc = t.get("retweet_count"), t.get("favorite_count")
    cap = 10**12  # MAX_REPORTED_COUNT of tweetlambda-core
    score = (len(t.get("hashtags", [])) if rc is None and fc is None
             else min(max(rc or 0, 0), cap) + min(max(fc or 0, 0), cap))
    doc = {k: t[k] for k in ("id", "created_at", "text", "hashtags", "lang", "user", "retweet_count",
                             "favorite_count", "retweet_of", "quote_of", "place", "country_code") if k in t}
    doc["score"] = score
    if "geo" in t:
        doc["location"] = t["geo"]
    return doc


def create_index(es, index, like):
    """A fresh index with the mapping tweetlambda gave index `like`."""
    mapping = es.indices.get_mapping(index=like)[like]["mappings"]
    es.indices.create(index=index, mappings=mapping)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tl", required=True)
    p.add_argument("--brokers", required=True)
    p.add_argument("--es-url", required=True)
    p.add_argument("--tweets", required=True)
    p.add_argument("--expected", type=int, required=True)
    p.add_argument("--single-limit", type=int, default=20000)
    a = p.parse_args()
    es = Elasticsearch(a.es_url, request_timeout=120)
    figures = {}

    index = tl_index = "bench-tl-" + uuid.uuid4().hex[:8]
    started = time.time()
    out = subprocess.run([a.tl, "index", "--once", "--brokers", a.brokers, "--tweets-topic", a.tweets,
                          "--es-url", a.es_url, "--index", index, "--group", index,
                          "--metrics-listen", "none"], capture_output=True, text=True, check=True)
    elapsed = time.time() - started
    count = es_count(a.es_url, index)
    assert count == a.expected, (count, a.expected, out.stdout, out.stderr[-2000:])
    figures.update(tl_docs=count, tl_seconds=round(elapsed, 2), tl_docs_per_sec=int(count / elapsed),
                   tl_summary=out.stdout.strip())

    index = "bench-bulk-" + uuid.uuid4().hex[:8]
    create_index(es, index, tl_index)
    started = time.time()
    actions = ({"_index": index, "_id": d["id"], "_source": d} for d in map(document, messages(a.brokers, a.tweets, 1 << 62)))
    ok, errors = helpers.bulk(es, actions, chunk_size=500, raise_on_error=True)
    elapsed = time.time() - started
    count = es_count(a.es_url, index)
    assert count == a.expected, (count, a.expected)
    figures.update(bulk_docs=count, bulk_seconds=round(elapsed, 2), bulk_docs_per_sec=int(count / elapsed))

    index = "bench-single-" + uuid.uuid4().hex[:8]
    create_index(es, index, tl_index)
    started = time.time()
    n, seen = 0, set()
    for raw in messages(a.brokers, a.tweets, a.single_limit):
        d = document(raw)
        es.index(index=index, id=d["id"], document=d)
        seen.add(d["id"])
        n += 1
    elapsed = time.time() - started
    count = es_count(a.es_url, index)
    assert count == len(seen), (count, len(seen))
    figures.update(single_docs=n, single_seconds=round(elapsed, 2), single_docs_per_sec=int(n / elapsed))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

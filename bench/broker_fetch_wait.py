"""How long the broker holds a fetch: one message at a time, produce → consume
end to end, for several `fetch.wait.max.ms` settings (confluent-kafka).

  python bench/broker_fetch_wait.py [BROKERS]      (default 127.0.0.1:29092)

Start the broker first (scripts/services.sh --profile bench up). A broker
that answers a fetch as soon as data is there shows about the same latency
for every setting; one that holds fetches for the full wait shows the wait.
"""

import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

brokers = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:29092"
topic = "fetchwait" + uuid.uuid4().hex[:6]
admin = AdminClient({"bootstrap.servers": brokers})  # kept alive until the topic exists
admin.create_topics([NewTopic(topic, 1, 1)])[topic].result()
time.sleep(1)
p = Producer({"bootstrap.servers": brokers, "linger.ms": 1})
p.produce(topic, b"0", partition=0)
p.flush(10)
for wait_ms in (5, 20, 100):
    c = Consumer({"bootstrap.servers": brokers, "group.id": f"g{topic}{wait_ms}",
                  "fetch.wait.max.ms": wait_ms, "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    while c.poll(0.5) is not None:  # read what is there already
        pass
    lat = []
    for _ in range(100):
        sent = time.time()
        p.produce(topic, str(sent).encode(), partition=0)
        p.flush(1)
        while True:
            m = c.poll(1)
            if m is not None and not m.error():
                lat.append((time.time() - float(m.value())) * 1000)
                break
        time.sleep(0.01)
    lat.sort()
    print(f"fetch.wait.max.ms={wait_ms}: end to end p50 {lat[50]:.1f} ms, p99 {lat[98]:.1f} ms")
    c.close()

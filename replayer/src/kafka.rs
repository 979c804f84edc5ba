//! Kafka client settings and the few broker operations the replayer needs:
//! a reachability check, topic creation, end offsets and reading a tail.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::error::{Error, Result};

/// Where the brokers are and any librdkafka settings to pass through
/// (`security.protocol`, `sasl.mechanism`, `sasl.username`, `ssl.ca.location`, …).
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// Bootstrap servers, `HOST:PORT[,HOST:PORT…]`.
    pub brokers: String,
    /// librdkafka properties, applied last so that they override defaults.
    pub properties: Vec<(String, String)>,
}

impl KafkaOptions {
    /// A librdkafka configuration with the brokers and pass-through settings.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config
    }
}

/// The partition end offsets (the next offset to be written) of topics,
/// keyed `topic:partition`.
pub type Offsets = BTreeMap<String, i64>;

/// Splits a `topic:partition` key.
pub fn split_key(key: &str) -> Option<(&str, i32)> {
    let (topic, partition) = key.rsplit_once(':')?;
    Some((topic, partition.parse().ok()?))
}

/// Runs a blocking librdkafka call off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

fn consumer(options: &KafkaOptions) -> Result<BaseConsumer> {
    options
        .client_config()
        .set("group.id", "tweetlambda-replayer-admin")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(Error::kafka("create a consumer"))
}

/// Fails with a clear error when no broker answers within `timeout`.
pub async fn check_reachable(options: &KafkaOptions, timeout: Duration) -> Result<()> {
    let consumer = consumer(options)?;
    let brokers = options.brokers.clone();
    blocking(move || {
        consumer
            .fetch_metadata(None, timeout)
            .map(|_| ())
            .map_err(|e| Error::KafkaConnect {
                brokers,
                reason: e.to_string(),
            })
    })
    .await
}

/// Creates the topics that do not exist yet, with `partitions` partitions
/// each. Existing topics are left as they are.
pub async fn ensure_topics(options: &KafkaOptions, topics: &[&str], partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = options
        .client_config()
        .create()
        .map_err(Error::kafka("create an admin client"))?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    let results = admin
        .create_topics(
            &new,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .map_err(Error::kafka("create topics"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(Error::Kafka {
                    what: format!("create topic {topic}"),
                    source: rdkafka::error::KafkaError::AdminOp(code),
                })
            }
        }
    }
    // Wait until the metadata lists every partition, so that producers and
    // offset look-ups see the topics.
    let consumer = consumer(options)?;
    let names: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
    blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = names.iter().all(|t| {
                consumer
                    .fetch_metadata(Some(t), Duration::from_secs(5))
                    .ok()
                    .and_then(|m| {
                        m.topics()
                            .first()
                            .map(|t| t.error().is_none() && !t.partitions().is_empty())
                    })
                    .unwrap_or(false)
            });
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Config(format!(
                    "topics {names:?} were created but do not show up in the broker's metadata"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
}

/// The end offset of every partition of `topics`.
pub async fn end_offsets(options: &KafkaOptions, topics: &[&str]) -> Result<Offsets> {
    let consumer = consumer(options)?;
    let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
    blocking(move || {
        let mut offsets = Offsets::new();
        for topic in &topics {
            let metadata = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .map_err(Error::kafka(format!("read metadata of {topic}")))?;
            for t in metadata.topics() {
                for p in t.partitions() {
                    let (_, high) = consumer
                        .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                        .map_err(Error::kafka(format!(
                            "read end offset of {topic}:{}",
                            p.id()
                        )))?;
                    offsets.insert(format!("{topic}:{}", p.id()), high);
                }
            }
        }
        Ok(offsets)
    })
    .await
}

/// One message read back from a topic.
#[derive(Debug, Clone)]
pub struct TailMessage {
    /// Its topic.
    pub topic: String,
    /// Its key, if any.
    pub key: Option<Vec<u8>>,
    /// Its payload, if any.
    pub payload: Option<Vec<u8>>,
}

/// Reads every message between `from` (inclusive) and the current end of
/// each listed partition.
pub async fn read_tail(options: &KafkaOptions, from: &Offsets) -> Result<Vec<TailMessage>> {
    let ends = {
        let topics: Vec<&str> = from
            .keys()
            .filter_map(|k| split_key(k).map(|(t, _)| t))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        end_offsets(options, &topics).await?
    };
    let consumer = consumer(options)?;
    let from = from.clone();
    blocking(move || {
        let mut assignment = TopicPartitionList::new();
        let mut remaining: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for (key, start) in &from {
            let Some((topic, partition)) = split_key(key) else {
                continue;
            };
            let end = ends.get(key).copied().unwrap_or(*start);
            if end > *start {
                assignment
                    .add_partition_offset(topic, partition, Offset::Offset(*start))
                    .map_err(Error::kafka("assign partitions"))?;
                remaining.insert((topic.to_string(), partition), end);
            }
        }
        let mut out = Vec::new();
        if remaining.is_empty() {
            return Ok(out);
        }
        consumer
            .assign(&assignment)
            .map_err(Error::kafka("assign partitions"))?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while !remaining.is_empty() {
            if Instant::now() > deadline {
                return Err(Error::Config(format!(
                    "timed out reading back the tail of {remaining:?}"
                )));
            }
            let Some(message) = consumer.poll(Duration::from_millis(500)) else {
                continue;
            };
            let m = message.map_err(Error::kafka("read back published messages"))?;
            let slot = (m.topic().to_string(), m.partition());
            if let Some(end) = remaining.get(&slot).copied() {
                if m.offset() < end {
                    out.push(TailMessage {
                        topic: slot.0.clone(),
                        key: m.key().map(<[u8]>::to_vec),
                        payload: m.payload().map(<[u8]>::to_vec),
                    });
                }
                if m.offset() + 1 >= end {
                    remaining.remove(&slot);
                }
            }
        }
        Ok(out)
    })
    .await
}

/// What a topic holds: message count per partition and the first messages.
#[derive(Debug, Clone, Default)]
pub struct TopicSample {
    /// Messages per partition.
    pub counts: BTreeMap<i32, u64>,
    /// The first messages of partition order (partition 0 first), as
    /// `(partition, key, payload)`.
    pub first: Vec<(i32, String, String)>,
}

/// Reads a topic from the beginning to its current end, counting messages
/// and keeping the first `keep` of each partition.
pub async fn sample_topic(options: &KafkaOptions, topic: &str, keep: usize) -> Result<TopicSample> {
    let ends = end_offsets(options, &[topic]).await?;
    let consumer = consumer(options)?;
    blocking(move || {
        let mut sample = TopicSample::default();
        let mut assignment = TopicPartitionList::new();
        let mut remaining: BTreeMap<i32, i64> = BTreeMap::new();
        for (key, end) in &ends {
            let Some((t, partition)) = split_key(key) else {
                continue;
            };
            sample.counts.insert(partition, 0);
            if *end > 0 {
                assignment
                    .add_partition_offset(t, partition, Offset::Beginning)
                    .map_err(Error::kafka("assign partitions"))?;
                remaining.insert(partition, *end);
            }
        }
        if remaining.is_empty() {
            return Ok(sample);
        }
        consumer
            .assign(&assignment)
            .map_err(Error::kafka("assign partitions"))?;
        let mut idle = Instant::now();
        while !remaining.is_empty() {
            if idle.elapsed() > Duration::from_secs(30) {
                return Err(Error::Config(format!("no progress reading {remaining:?}")));
            }
            let Some(message) = consumer.poll(Duration::from_millis(500)) else {
                continue;
            };
            let m = message.map_err(Error::kafka("read the topic"))?;
            idle = Instant::now();
            let count = sample.counts.entry(m.partition()).or_default();
            *count += 1;
            if (*count as usize) <= keep {
                let text = |b: Option<&[u8]>| {
                    b.map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default()
                };
                sample
                    .first
                    .push((m.partition(), text(m.key()), text(m.payload())));
            }
            if remaining
                .get(&m.partition())
                .is_some_and(|end| m.offset() + 1 >= *end)
            {
                remaining.remove(&m.partition());
            }
        }
        sample.first.sort_by_key(|(p, _, _)| *p);
        Ok(sample)
    })
    .await
}

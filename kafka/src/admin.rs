//! Broker administration: reachability, topic creation with topic configs,
//! and end offsets.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;

use crate::blocking;
use crate::error::{Error, Result};
use crate::options::{KafkaOptions, Offsets};

/// A topic to create if it does not exist: its partitions and topic-level
/// configs (`cleanup.policy=compact`, `retention.ms`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// The topic's name.
    pub name: String,
    /// Partitions (≥ 1).
    pub partitions: i32,
    /// Topic configs set at creation.
    pub configs: Vec<(String, String)>,
}

impl TopicSpec {
    /// A topic of `partitions` partitions with the broker's default configs.
    pub fn new(name: impl Into<String>, partitions: i32) -> TopicSpec {
        TopicSpec {
            name: name.into(),
            partitions: partitions.max(1),
            configs: Vec::new(),
        }
    }

    /// Adds a topic config.
    pub fn config(mut self, key: &str, value: &str) -> TopicSpec {
        self.configs.push((key.to_string(), value.to_string()));
        self
    }

    /// A compacted topic (`cleanup.policy=compact`): the newest value of each
    /// key is kept, a null value (tombstone) removes the key.
    pub fn compacted(self) -> TopicSpec {
        self.config("cleanup.policy", "compact")
    }
}

/// A consumer for one-off reads; it never commits.
pub(crate) fn helper_consumer(options: &KafkaOptions) -> Result<BaseConsumer> {
    let mut config = options.client_config();
    config
        .set("group.id", "tweetlambda-admin")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    options.apply_properties(&mut config);
    config.create().map_err(Error::kafka("create a consumer"))
}

/// Fails with a clear error when no broker answers within `timeout`.
pub async fn check_reachable(options: &KafkaOptions, timeout: Duration) -> Result<()> {
    let consumer = helper_consumer(options)?;
    let brokers = options.brokers.clone();
    blocking(move || {
        consumer
            .fetch_metadata(None, timeout)
            .map(|_| ())
            .map_err(|e| Error::Connect {
                brokers,
                reason: e.to_string(),
            })
    })
    .await
}

/// Creates the topics that do not exist yet, as `specs` describe them.
/// Existing topics are left as they are. Returns once the broker's metadata
/// lists every partition of every topic.
pub async fn ensure_topics(options: &KafkaOptions, specs: &[TopicSpec]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = options
        .client_config()
        .create()
        .map_err(Error::kafka("create an admin client"))?;
    let new: Vec<NewTopic> = specs
        .iter()
        .map(|s| {
            s.configs.iter().fold(
                NewTopic::new(&s.name, s.partitions, TopicReplication::Fixed(1)),
                |t, (k, v)| t.set(k, v),
            )
        })
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
    let consumer = helper_consumer(options)?;
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
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
                return Err(Error::Timeout(format!(
                    "topics {names:?} were created but do not show up in the broker's metadata"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
}

/// The end offset (the next offset to be written) of every partition of
/// `topics`.
pub async fn end_offsets(options: &KafkaOptions, topics: &[&str]) -> Result<Offsets> {
    let consumer = helper_consumer(options)?;
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

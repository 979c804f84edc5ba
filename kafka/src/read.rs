//! Reading topics to their current end: the tail after given offsets (the
//! replay's resume check) and whole topics (`peek`, `finals`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::admin::{end_offsets, helper_consumer};
use crate::blocking;
use crate::error::{Error, Result};
use crate::options::{split_key, KafkaOptions, Offsets};

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
    let consumer = helper_consumer(options)?;
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
                return Err(Error::Timeout(format!(
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
    let consumer = helper_consumer(options)?;
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
                return Err(Error::Timeout(format!("no progress reading {remaining:?}")));
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

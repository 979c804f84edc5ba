//! The Kafka side every tweetlambda process shares: the replayer, the speed
//! layer, the archive, the serving layer and any new client build on it, so
//! that no layer depends on another layer's crate for its broker code.
//!
//! # Layout
//!
//! - [`options`]: [`KafkaOptions`], the brokers and the librdkafka
//!   properties passed through as is (SASL/SSL included).
//! - [`producer`]: [`Producer`], idempotent (`acks=all`), with a delivery
//!   barrier that returns the offsets reached or fails if anything was lost.
//! - [`admin`]: reachability, topic creation with topic configs
//!   ([`TopicSpec`], e.g. `cleanup.policy=compact`), end offsets.
//! - [`read`]: reading a topic to its current end: the tail after given
//!   offsets, or a whole topic with a sample of its first messages.
//! - [`partitioner`]: the Java client's key → partition mapping, so that
//!   code can tell where a keyed message lands without asking a broker.
//! - [`error`]: what can go wrong, with what to do about it.

pub mod admin;
pub mod error;
pub mod options;
pub mod partitioner;
pub mod producer;
pub mod read;

pub use admin::{check_reachable, end_offsets, ensure_topics, TopicSpec};
pub use error::{Error, Result};
pub use options::{advance_offsets, split_key, KafkaOptions, Offsets};
pub use partitioner::partition_for_key;
pub use producer::Producer;
pub use read::{read_tail, sample_topic, TailMessage, TopicSample};

/// Runs a blocking librdkafka call off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

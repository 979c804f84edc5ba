//! The speed layer: rolling top hashtags and top tweets, computed in event
//! time from the `tweets` and `hashtags` topics and published back to Kafka,
//! with the per-bucket partial aggregates as the realtime view.
//!
//! # Layout
//!
//! - [`config`]: settings (windows, lateness, topics, intervals).
//! - [`engine`]: the state machine, free of Kafka, split by concern:
//!   [`engine::clock`] (per-partition clocks, the watermark, retweet
//!   markers), window running sums, and [`engine::output`] (top-N messages
//!   and realtime view records). Built on [`tweetlambda_core::aggregate`],
//!   the code the batch layer shares.
//! - Input messages are admitted by [`tweetlambda_core::admit`] (the rule
//!   the archive applies too); what is refused is dead-lettered.
//! - [`service`]: the consume → apply → produce → commit loop.
//! - [`error`]: what can stop it.
//!
//! # Outputs
//!
//! `top_hashtags` and `top_tweets` (key: window name), the realtime view
//! (`speed.view`, compacted: newest value per key) and dead letters, in
//! the formats defined once in [`tweetlambda_core::messages`] (examples in
//! the README).
//!
//! With several instances in one consumer group each instance owns disjoint
//! hashtags and tweets, so each publishes the exact top-N of its own keys;
//! the global top-N of a window is the top-N of the union of the instances'
//! final lists for it (exact because no key appears in two lists).

pub mod config;
pub mod engine;
pub mod error;
pub mod service;

pub use config::{SpeedConfig, SpeedTopics, WindowSpec};
pub use error::{Error, Result};
pub use service::{run, SpeedSummary};

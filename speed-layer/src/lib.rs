//! The speed layer: rolling top hashtags and top tweets, computed in event
//! time from the `tweets` and `hashtags` topics and published back to Kafka,
//! with the per-bucket partial aggregates as the realtime view.
//!
//! # Layout
//!
//! - [`config`]: settings (windows, lateness, topics, intervals).
//! - [`engine`]: the state machine, free of Kafka: watermark, late events,
//!   window finals and updates, the realtime view. Built on
//!   [`tweetlambda_core::aggregate`], the code the batch layer shares.
//! - [`decode`]: reading input messages; what cannot be read is dead-lettered.
//! - [`service`]: the consume → apply → produce → commit loop.
//! - [`error`]: what can stop it.
//!
//! # Outputs
//!
//! `top_hashtags` and `top_tweets` (key: window name):
//! `{"window":"5m","start":RFC3339,"end":RFC3339,"final":bool,"watermark":RFC3339,"items":[…]}`
//! with items `{"hashtag","count"}` (count descending, then hashtag) or
//! `{"tweet_id","score","text"}` (score descending, then tweet id).
//!
//! The realtime view (`speed.view`, compacted): key
//! `hashtag/<bucket start ms>/<hashtag>` → `{"kind":"hashtag","bucket_start","hashtag","count"}`,
//! key `tweet/<bucket start ms>/<tweet id>` → `{"kind":"tweet","bucket_start","tweet_id","score","text"}`.
//!
//! With several instances in one consumer group each instance owns disjoint
//! hashtags and tweets, so each publishes the exact top-N of its own keys;
//! the global top-N of a window is the top-N of the union of the instances'
//! final lists for it (exact because no key appears in two lists).

pub mod config;
pub mod decode;
pub mod engine;
pub mod error;
pub mod service;

pub use config::{SpeedConfig, SpeedTopics, WindowSpec};
pub use error::{Error, Result};
pub use service::{run, SpeedSummary};

//! Shared code of every tweetlambda layer: the tweet model and its messages,
//! event time, hashtag normalisation, buckets and the engagement score.
//! Both the speed and the batch layer compute with these functions, so that
//! they compute the same thing.
//!
//! # Layout
//!
//! - [`aggregate`]: per-bucket partial aggregates, exactly-once
//!   application, windows and top-N ranking.
//! - [`time`]: parsing creation times of every source format into UTC.
//! - [`hashtag`]: the one hashtag normalisation, and extraction from text.
//! - [`bucket`]: epoch-aligned event-time buckets.
//! - [`tweet`]: the `tweets` and `hashtags` topic messages and the
//!   engagement score.
//! - [`messages`]: every message that crosses a process boundary (tweets,
//!   hashtags, dead letters, the realtime view, top-N, internal retweets),
//!   one definition each, pinned by golden files.
//! - [`admit`]: the one admission rule for input messages (ids, event
//!   time, hashtags), shared by the speed layer, the archive and any reader.
//! - [`rank`]: the one top-N ranking.
//! - [`duration`]: the one duration grammar of flags and HTTP parameters.
//! - [`text`]: decoding the HTML escapes of the APIs' tweet text.

pub mod admit;
pub mod aggregate;
pub mod bucket;
pub mod duration;
pub mod hashtag;
pub mod messages;
pub mod rank;
pub mod text;
pub mod time;
pub mod tweet;

pub use bucket::{bucket_start, bucket_start_ms, DEFAULT_BUCKET_MS};
pub use duration::{parse_duration, parse_duration_ms, parse_positive_ms, DurationError};
pub use hashtag::{distinct_hashtags, extract_hashtags, normalize_hashtag};
pub use text::decode_html_entities;
pub use time::{format_rfc3339, parse_event_time, TimeError};
pub use tweet::{engagement_score, Geo, HashtagEvent, TweetEvent, User};

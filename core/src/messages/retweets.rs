//! The speed layer's internal `speed.retweets` topic: retweets re-keyed by
//! the retweeted tweet, so that the instance owning a tweet also counts its
//! retweets, and progress markers that give its partitions a clock.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::admit::{parse_tweet_id, Rejection};

/// A retweet re-keyed by the retweeted tweet (key: `tweet_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetweetEvent {
    /// The retweeted tweet.
    pub tweet_id: String,
    /// The retweet.
    pub retweet_id: String,
    /// Event time of the retweet.
    #[serde(with = "crate::tweet::rfc3339")]
    pub created_at: DateTime<Utc>,
    /// The retweeted tweet's text, as the retweet quotes it.
    pub text: String,
}

/// A progress marker (key `marker/<tweets partition>`): every retweet
/// re-keyed from tweets partition `marker` after it is at least as recent
/// as `time_ms`, up to the allowed lateness (none: that partition had no
/// tweet yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The tweets partition.
    pub marker: i32,
    /// Its newest event time, ms.
    pub time_ms: Option<i64>,
}

/// The progress of every tweets partition an instance reads whose marker
/// changed since its last tick, in one message to each retweets partition
/// (key `markers`): one message per retweets partition and tick, instead of
/// one per tweets partition and retweets partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Markers {
    /// One marker per tweets partition.
    pub markers: Vec<Marker>,
}

/// A message of the retweets topic.
#[derive(Debug, Clone, PartialEq)]
pub enum RetweetsMessage {
    /// A retweet, with both ids parsed.
    Retweet {
        /// The message.
        event: RetweetEvent,
        /// The retweeted tweet's id.
        original: u64,
        /// The retweet's id.
        retweet: u64,
    },
    /// Progress markers: a [`Markers`] message, or one [`Marker`] as
    /// instances before `Markers` sent them.
    Markers(Vec<Marker>),
}

impl RetweetsMessage {
    /// Reads a message of the retweets topic.
    pub fn parse(payload: Option<&[u8]>) -> Result<RetweetsMessage, Rejection> {
        let bytes = payload.ok_or(Rejection::Empty)?;
        let text = std::str::from_utf8(bytes).map_err(|e| Rejection::Utf8(e.to_string()))?;
        if let Ok(m) = serde_json::from_str::<Markers>(text) {
            return Ok(RetweetsMessage::Markers(m.markers));
        }
        if let Ok(m) = serde_json::from_str::<Marker>(text) {
            return Ok(RetweetsMessage::Markers(vec![m]));
        }
        let event: RetweetEvent =
            serde_json::from_str(text).map_err(|e| Rejection::Json(e.to_string()))?;
        let original = parse_tweet_id("tweet_id", &event.tweet_id)?;
        let retweet = parse_tweet_id("retweet_id", &event.retweet_id)?;
        Ok(RetweetsMessage::Retweet {
            event,
            original,
            retweet,
        })
    }
}

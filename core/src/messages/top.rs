//! The `top_hashtags` and `top_tweets` messages of the speed layer (key:
//! the window name): one window instance's top-N, an update while it is
//! open (`final: false`) and once when the watermark passes its end.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One window instance's top-N.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopMessage<I> {
    /// Window name, e.g. `5m`.
    pub window: String,
    /// Start of the instance (inclusive).
    #[serde(with = "crate::tweet::rfc3339")]
    pub start: DateTime<Utc>,
    /// End of the instance (exclusive).
    #[serde(with = "crate::tweet::rfc3339")]
    pub end: DateTime<Utc>,
    /// True once the watermark passed `end`: the list will not change.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// The speed layer's watermark when this was sent.
    #[serde(with = "crate::tweet::rfc3339")]
    pub watermark: DateTime<Utc>,
    /// Best first (see [`crate::rank`]).
    pub items: Vec<I>,
}

/// An item of `top_hashtags`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashtagCount {
    /// Normalised hashtag.
    pub hashtag: String,
    /// Distinct tweets carrying it in the window.
    pub count: i64,
}

/// An item of `top_tweets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TweetRank {
    /// Tweet id.
    pub tweet_id: String,
    /// Engagement score in the window.
    pub score: i64,
    /// The tweet's text, at most [`crate::messages::EXCERPT_BYTES`] bytes.
    pub text: String,
}

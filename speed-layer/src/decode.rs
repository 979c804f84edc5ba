//! Reading input messages. Anything that cannot be read becomes a
//! [`DecodeError`] with the reason, for the dead-letter topic.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tweetlambda_core::{normalize_hashtag, HashtagEvent, TweetEvent};

/// A retweet re-keyed by the retweeted tweet (the internal retweets topic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetweetEvent {
    /// The retweeted tweet.
    pub tweet_id: String,
    /// The retweet.
    pub retweet_id: String,
    /// Event time of the retweet.
    #[serde(with = "tweetlambda_core::tweet::rfc3339")]
    pub created_at: DateTime<Utc>,
    /// The retweeted tweet's text, as the retweet quotes it.
    pub text: String,
}

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// No payload at all.
    #[error("empty message")]
    Empty,
    /// The payload is not UTF-8.
    #[error("payload is not valid UTF-8: {0}")]
    Utf8(String),
    /// The payload is not the expected JSON.
    #[error("invalid message: {0}")]
    Json(String),
    /// A tweet id is not a number.
    #[error("tweet id {0:?} is not a number")]
    Id(String),
    /// The hashtag is empty once normalised.
    #[error("empty hashtag")]
    Hashtag,
}

fn text(payload: Option<&[u8]>) -> Result<&str, DecodeError> {
    let bytes = payload.ok_or(DecodeError::Empty)?;
    std::str::from_utf8(bytes).map_err(|e| DecodeError::Utf8(e.to_string()))
}

/// Parses a tweet id.
pub fn parse_id(id: &str) -> Result<u64, DecodeError> {
    id.trim()
        .parse()
        .map_err(|_| DecodeError::Id(id.to_string()))
}

/// A message of the tweets topic.
pub fn tweet(payload: Option<&[u8]>) -> Result<TweetEvent, DecodeError> {
    let t: TweetEvent =
        serde_json::from_str(text(payload)?).map_err(|e| DecodeError::Json(e.to_string()))?;
    parse_id(&t.id)?;
    if let Some(rt) = &t.retweet_of {
        parse_id(rt)?;
    }
    Ok(t)
}

/// A message of the hashtags topic, with its hashtag normalised.
pub fn hashtag(payload: Option<&[u8]>) -> Result<HashtagEvent, DecodeError> {
    let mut h: HashtagEvent =
        serde_json::from_str(text(payload)?).map_err(|e| DecodeError::Json(e.to_string()))?;
    parse_id(&h.tweet_id)?;
    h.hashtag = normalize_hashtag(&h.hashtag).ok_or(DecodeError::Hashtag)?;
    Ok(h)
}

/// A progress marker on the retweets topic: every retweet re-keyed from
/// tweets partition `marker` after it is at least as recent as `time_ms`,
/// up to the allowed lateness (none: that partition had no tweet yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The tweets partition.
    pub marker: i32,
    /// Its newest event time, ms.
    pub time_ms: Option<i64>,
}

/// A message of the internal retweets topic.
#[derive(Debug, Clone, PartialEq)]
pub enum RetweetsMessage {
    /// A retweet re-keyed by the retweeted tweet.
    Retweet(RetweetEvent),
    /// A progress marker.
    Marker(Marker),
}

/// A message of the internal retweets topic.
pub fn retweet(payload: Option<&[u8]>) -> Result<RetweetsMessage, DecodeError> {
    let text = text(payload)?;
    if let Ok(m) = serde_json::from_str::<Marker>(text) {
        return Ok(RetweetsMessage::Marker(m));
    }
    let r: RetweetEvent =
        serde_json::from_str(text).map_err(|e| DecodeError::Json(e.to_string()))?;
    parse_id(&r.tweet_id)?;
    parse_id(&r.retweet_id)?;
    Ok(RetweetsMessage::Retweet(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_payloads_say_why() {
        assert_eq!(hashtag(None), Err(DecodeError::Empty));
        assert!(matches!(
            hashtag(Some(b"\xff\xfe")),
            Err(DecodeError::Utf8(_))
        ));
        assert!(
            matches!(hashtag(Some(b"{\"tweet_id\":\"1\"}")), Err(DecodeError::Json(e)) if e.contains("hashtag"))
        );
        assert_eq!(
            hashtag(Some(
                br##"{"tweet_id":"x1","hashtag":"a","created_at":"2021-08-29T23:51:27Z"}"##
            )),
            Err(DecodeError::Id("x1".into()))
        );
        assert_eq!(
            hashtag(Some(
                br##"{"tweet_id":"1","hashtag":"#","created_at":"2021-08-29T23:51:27Z"}"##
            )),
            Err(DecodeError::Hashtag)
        );
        let h = hashtag(Some(
            br##"{"tweet_id":"1","hashtag":"#GOP","created_at":"2021-08-29 19:51:27 EDT"}"##,
        ))
        .expect("valid");
        assert_eq!(h.hashtag, "gop");
    }
}

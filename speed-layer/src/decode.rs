//! Reading input messages. Anything that cannot be read becomes a
//! [`DecodeError`] with the reason, for the dead-letter topic.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

use tweetlambda_core::{distinct_hashtags, engagement_score, normalize_hashtag, parse_event_time};

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

/// A tweets-topic message as the speed layer reads it: borrowed from the
/// payload, only the fields it needs (the schema is
/// [`TweetEvent`](tweetlambda_core::TweetEvent)'s).
#[derive(Debug, Deserialize)]
struct TweetIn<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    created_at: Cow<'a, str>,
    #[serde(borrow)]
    text: Cow<'a, str>,
    #[serde(borrow, default)]
    hashtags: Vec<Cow<'a, str>>,
    #[serde(default)]
    retweet_count: Option<i64>,
    #[serde(default)]
    favorite_count: Option<i64>,
    #[serde(borrow, default)]
    retweet_of: Option<Cow<'a, str>>,
}

/// A tweet, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Tweet<'a> {
    /// Tweet id.
    pub id: u64,
    /// The id as written.
    pub id_text: Cow<'a, str>,
    /// Event time.
    pub created_at: DateTime<Utc>,
    /// Engagement score from the source's counts (see [`tweetlambda_core::engagement_score`]).
    pub score: i64,
    /// Text.
    pub text: Cow<'a, str>,
    /// For a retweet: the retweeted tweet's id, as written.
    pub retweet_of: Option<Cow<'a, str>>,
}

fn time(text: &str) -> Result<DateTime<Utc>, DecodeError> {
    parse_event_time(text).map_err(|e| DecodeError::Json(format!("created_at: {e}")))
}

/// A message of the tweets topic.
pub fn tweet(payload: Option<&[u8]>) -> Result<Tweet<'_>, DecodeError> {
    let t: TweetIn<'_> =
        serde_json::from_str(text(payload)?).map_err(|e| DecodeError::Json(e.to_string()))?;
    let id = parse_id(&t.id)?;
    if let Some(rt) = &t.retweet_of {
        parse_id(rt)?;
    }
    let score = match (t.retweet_count, t.favorite_count) {
        (None, None) => engagement_score(None, None, distinct_hashtags(&t.hashtags).len()),
        (r, f) => engagement_score(r, f, 0),
    };
    Ok(Tweet {
        id,
        id_text: t.id,
        created_at: time(&t.created_at)?,
        score,
        text: t.text,
        retweet_of: t.retweet_of,
    })
}

#[derive(Debug, Deserialize)]
struct HashtagIn<'a> {
    #[serde(borrow)]
    tweet_id: Cow<'a, str>,
    #[serde(borrow)]
    hashtag: Cow<'a, str>,
    #[serde(borrow)]
    created_at: Cow<'a, str>,
}

/// One hashtag of one tweet, decoded and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashtag {
    /// Tweet id.
    pub tweet_id: u64,
    /// Event time, ms.
    pub t_ms: i64,
    /// The normalised hashtag.
    pub hashtag: String,
}

/// A message of the hashtags topic, with its hashtag normalised.
pub fn hashtag(payload: Option<&[u8]>) -> Result<Hashtag, DecodeError> {
    let h: HashtagIn<'_> =
        serde_json::from_str(text(payload)?).map_err(|e| DecodeError::Json(e.to_string()))?;
    Ok(Hashtag {
        tweet_id: parse_id(&h.tweet_id)?,
        t_ms: time(&h.created_at)?.timestamp_millis(),
        hashtag: normalize_hashtag(&h.hashtag).ok_or(DecodeError::Hashtag)?,
    })
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
        assert_eq!(h.t_ms, 1_630_281_087_000);
        let t = tweet(Some(br##"{"id":"5","created_at":"2021-08-29T23:51:27Z","text":"a #X #x #y","hashtags":["X","x","y"]}"##))
            .expect("valid");
        assert_eq!(
            (t.id, t.score),
            (5, 2),
            "seed-like tweets score their distinct hashtags"
        );
        let t = tweet(Some(br##"{"id":"6","created_at":"2021-08-29T23:51:27Z","text":"RT @a: b","hashtags":[],"retweet_count":3,"favorite_count":4,"retweet_of":"5"}"##))
            .expect("valid");
        assert_eq!((t.score, t.retweet_of.as_deref()), (7, Some("5")));
        assert!(
            matches!(tweet(Some(br##"{"id":"1","text":"no time"}"##)), Err(DecodeError::Json(e)) if e.contains("created_at"))
        );
    }
}

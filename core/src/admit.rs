//! The one admission rule for input messages: what makes a `tweets` or
//! `hashtags` message countable. The speed layer's decoder, the archive
//! (hence the batch layer) and every other consumer call these functions,
//! so that both layers count exactly the same tweets.
//!
//! A `tweets` message is admitted when:
//! - it is UTF-8 JSON of the [`TweetEvent`] schema (`id`, `created_at` and
//!   `text` present; a missing `hashtags` is an empty list);
//! - `id` (and `retweet_of`, `quote_of` when present) is a tweet id in
//!   canonical form: decimal digits only, no sign, no spaces, no leading
//!   zero, at most `u64::MAX` (so `"7"`, `" 7"` and `"007"` can never be
//!   three tweets in one layer and one in the other);
//! - `created_at` parses ([`crate::parse_event_time`]) and is not before
//!   [`EARLIEST_EVENT_MS`], the first tweet ever.
//!
//! Admitted, its hashtags are normalised and made distinct
//! ([`crate::distinct_hashtags`]) and its engagement score computed
//! ([`crate::engagement_score`], saturating).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::tweet::{Geo, TweetEvent, User};
use crate::{distinct_hashtags, engagement_score, normalize_hashtag, parse_event_time};

/// 2006-03-21T00:00:00Z: the day of the first tweet. Earlier event times
/// are refused: they come from broken clocks or mangled dates.
pub const EARLIEST_EVENT_MS: i64 = 1_142_899_200_000;

/// Why an input message was not admitted; the text goes into dead letters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No payload at all.
    #[error("empty message")]
    Empty,
    /// The payload is not UTF-8.
    #[error("payload is not valid UTF-8: {0}")]
    Utf8(String),
    /// The payload is not the expected JSON.
    #[error("invalid message: {0}")]
    Json(String),
    /// A tweet id is not in canonical form.
    #[error("{field} {value:?} is not a tweet id (decimal digits without sign, spaces or leading zeros)")]
    Id {
        /// Which field (`id`, `tweet_id`, `retweet_of`, …).
        field: &'static str,
        /// The text found.
        value: String,
    },
    /// The event time cannot be used.
    #[error("invalid message: created_at: {0}")]
    Time(String),
    /// The hashtag is empty once normalised.
    #[error("empty hashtag")]
    Hashtag,
}

/// Parses a tweet id in canonical form (see the module's rule).
pub fn parse_tweet_id(field: &'static str, text: &str) -> Result<u64, Rejection> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    let refuse = || Rejection::Id {
        field,
        value: text.chars().take(64).collect(),
    };
    if !canonical {
        return Err(refuse());
    }
    text.parse().map_err(|_| refuse())
}

/// The default bound on how far ahead of the wall clock an event time may
/// be: one hour (clock skew between sources and this machine).
pub const DEFAULT_MAX_FUTURE_MS: i64 = 3_600_000;

/// Refuses an event time more than `max_future_ms` ahead of the wall clock
/// `now_ms`: such an event would move the speed layer's clocks past every
/// real event (a clock never goes back). It is dead-lettered instead.
pub fn check_not_future(t_ms: i64, now_ms: i64, max_future_ms: i64) -> Result<(), Rejection> {
    if t_ms > now_ms.saturating_add(max_future_ms) {
        let ahead_s = (t_ms - now_ms) / 1000;
        return Err(Rejection::Time(format!(
            "event time is {ahead_s} s ahead of the clock, more than the bound (--max-future {} s)",
            max_future_ms / 1000
        )));
    }
    Ok(())
}

/// Parses and checks an event time.
pub fn parse_created_at(text: &str) -> Result<DateTime<Utc>, Rejection> {
    let t = parse_event_time(text).map_err(|e| Rejection::Time(e.to_string()))?;
    if t.timestamp_millis() < EARLIEST_EVENT_MS {
        return Err(Rejection::Time(format!(
            "{text:?} is before 2006-03-21, the first tweet"
        )));
    }
    Ok(t)
}

fn utf8(payload: Option<&[u8]>) -> Result<&str, Rejection> {
    let bytes = payload.ok_or(Rejection::Empty)?;
    std::str::from_utf8(bytes).map_err(|e| Rejection::Utf8(e.to_string()))
}

/// A `tweets` message as read, borrowed from the payload where it can be
/// (the schema is [`TweetEvent`]'s; this is its zero-copy reading).
#[derive(Debug, Clone, Deserialize)]
pub struct TweetMessage<'a> {
    /// Tweet id as written.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// Event time as written.
    #[serde(borrow)]
    pub created_at: Cow<'a, str>,
    /// Text.
    #[serde(borrow)]
    pub text: Cow<'a, str>,
    /// Language.
    #[serde(borrow, default)]
    pub lang: Option<Cow<'a, str>>,
    /// Hashtags as written (missing: none).
    #[serde(borrow, default)]
    pub hashtags: Vec<Cow<'a, str>>,
    /// Author.
    #[serde(default)]
    pub user: Option<User>,
    /// Retweets reported by the source.
    #[serde(default)]
    pub retweet_count: Option<i64>,
    /// Likes reported by the source.
    #[serde(default)]
    pub favorite_count: Option<i64>,
    /// Retweeted tweet's id as written.
    #[serde(borrow, default)]
    pub retweet_of: Option<Cow<'a, str>>,
    /// Quoted tweet's id as written.
    #[serde(borrow, default)]
    pub quote_of: Option<Cow<'a, str>>,
    /// Exact location.
    #[serde(default)]
    pub geo: Option<Geo>,
    /// Place name.
    #[serde(borrow, default)]
    pub place: Option<Cow<'a, str>>,
    /// Country code.
    #[serde(borrow, default)]
    pub country_code: Option<Cow<'a, str>>,
}

/// An admitted `tweets` message: the checked values and the message.
#[derive(Debug, Clone)]
pub struct AdmittedTweet<'a> {
    /// Tweet id.
    pub id: u64,
    /// Event time.
    pub created_at: DateTime<Utc>,
    /// The retweeted tweet, for a retweet.
    pub retweet_of: Option<u64>,
    /// Distinct normalised hashtags.
    pub hashtags: Vec<String>,
    /// Engagement score from the source's counts.
    pub score: i64,
    /// The message as read.
    pub message: TweetMessage<'a>,
}

impl AdmittedTweet<'_> {
    /// The tweet as the `tweets` topic carries it, normalised.
    pub fn to_event(&self) -> TweetEvent {
        let m = &self.message;
        let owned = |c: &Option<Cow<'_, str>>| c.as_ref().map(|s| s.to_string());
        TweetEvent {
            id: m.id.to_string(),
            created_at: self.created_at,
            text: m.text.to_string(),
            lang: owned(&m.lang),
            hashtags: self.hashtags.clone(),
            user: m.user.clone(),
            retweet_count: m.retweet_count,
            favorite_count: m.favorite_count,
            retweet_of: owned(&m.retweet_of),
            quote_of: owned(&m.quote_of),
            geo: m.geo,
            place: owned(&m.place),
            country_code: owned(&m.country_code),
        }
    }
}

/// Admits a `tweets` message (see the module's rule).
pub fn admit_tweet(payload: Option<&[u8]>) -> Result<AdmittedTweet<'_>, Rejection> {
    let message: TweetMessage<'_> =
        serde_json::from_str(utf8(payload)?).map_err(|e| Rejection::Json(e.to_string()))?;
    let id = parse_tweet_id("id", &message.id)?;
    let retweet_of = message
        .retweet_of
        .as_deref()
        .map(|r| parse_tweet_id("retweet_of", r))
        .transpose()?;
    if let Some(q) = message.quote_of.as_deref() {
        parse_tweet_id("quote_of", q)?;
    }
    let created_at = parse_created_at(&message.created_at)?;
    let hashtags = distinct_hashtags(&message.hashtags);
    let score = engagement_score(
        message.retweet_count,
        message.favorite_count,
        hashtags.len(),
    );
    Ok(AdmittedTweet {
        id,
        created_at,
        retweet_of,
        hashtags,
        score,
        message,
    })
}

#[derive(Debug, Deserialize)]
struct HashtagMessage<'a> {
    #[serde(borrow)]
    tweet_id: Cow<'a, str>,
    #[serde(borrow)]
    hashtag: Cow<'a, str>,
    #[serde(borrow)]
    created_at: Cow<'a, str>,
}

/// An admitted `hashtags` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmittedHashtag {
    /// Tweet id.
    pub tweet_id: u64,
    /// Event time, ms.
    pub t_ms: i64,
    /// The normalised hashtag.
    pub hashtag: String,
}

/// Admits a `hashtags` message: the same id and time rules as a tweet's,
/// and a hashtag that is not empty once normalised.
pub fn admit_hashtag(payload: Option<&[u8]>) -> Result<AdmittedHashtag, Rejection> {
    let h: HashtagMessage<'_> =
        serde_json::from_str(utf8(payload)?).map_err(|e| Rejection::Json(e.to_string()))?;
    Ok(AdmittedHashtag {
        tweet_id: parse_tweet_id("tweet_id", &h.tweet_id)?,
        t_ms: parse_created_at(&h.created_at)?.timestamp_millis(),
        hashtag: normalize_hashtag(&h.hashtag).ok_or(Rejection::Hashtag)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_payloads_say_why() {
        assert_eq!(admit_hashtag(None), Err(Rejection::Empty));
        assert!(matches!(
            admit_hashtag(Some(b"\xff\xfe")),
            Err(Rejection::Utf8(_))
        ));
        assert!(
            matches!(admit_hashtag(Some(b"{\"tweet_id\":\"1\"}")), Err(Rejection::Json(e)) if e.contains("hashtag"))
        );
        assert_eq!(
            admit_hashtag(Some(
                br##"{"tweet_id":"x1","hashtag":"a","created_at":"2021-08-29T23:51:27Z"}"##
            )),
            Err(Rejection::Id {
                field: "tweet_id",
                value: "x1".into()
            })
        );
        assert_eq!(
            admit_hashtag(Some(
                br##"{"tweet_id":"1","hashtag":"#","created_at":"2021-08-29T23:51:27Z"}"##
            )),
            Err(Rejection::Hashtag)
        );
        let h = admit_hashtag(Some(
            br##"{"tweet_id":"1","hashtag":"#GOP","created_at":"2021-08-29 19:51:27 EDT"}"##,
        ))
        .expect("valid");
        assert_eq!(h.hashtag, "gop");
        assert_eq!(h.t_ms, 1_630_281_087_000);
        let t = admit_tweet(Some(br##"{"id":"5","created_at":"2021-08-29T23:51:27Z","text":"a #X #x #y","hashtags":["X","x","y"]}"##))
            .expect("valid");
        assert_eq!(
            (t.id, t.score),
            (5, 2),
            "seed-like tweets score their distinct hashtags"
        );
        let t = admit_tweet(Some(br##"{"id":"6","created_at":"2021-08-29T23:51:27Z","text":"RT @a: b","hashtags":[],"retweet_count":3,"favorite_count":4,"retweet_of":"5"}"##))
            .expect("valid");
        assert_eq!((t.score, t.retweet_of), (7, Some(5)));
        assert!(
            matches!(admit_tweet(Some(br##"{"id":"1","text":"no time"}"##)), Err(Rejection::Json(e)) if e.contains("created_at"))
        );
        let e = admit_tweet(Some(
            br##"{"id":"1","text":"x","created_at":"not a date"}"##,
        ))
        .expect_err("bad time");
        assert!(e.to_string().contains("created_at"), "{e}");
    }

    #[test]
    fn ids_are_admitted_in_canonical_form_only() {
        assert_eq!(
            parse_tweet_id("id", "1432128795021086722"),
            Ok(1_432_128_795_021_086_722)
        );
        assert_eq!(parse_tweet_id("id", "0"), Ok(0));
        for bad in [
            "",
            " 7",
            "7 ",
            "007",
            "+7",
            "-7",
            "7.0",
            "18446744073709551616",
            "٣",
        ] {
            assert!(parse_tweet_id("id", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_missing_hashtags_field_is_an_empty_list_and_times_before_twitter_are_refused() {
        let t = admit_tweet(Some(
            br#"{"id":"9","created_at":"2021-08-29T23:51:27Z","text":"x"}"#,
        ))
        .expect("admitted");
        assert!(t.hashtags.is_empty());
        assert_eq!(t.score, 0);
        assert!(admit_tweet(Some(
            br#"{"id":"9","created_at":"1999-01-01T00:00:00Z","text":"x"}"#
        ))
        .is_err());
    }

    #[test]
    fn events_too_far_ahead_of_the_clock_are_refused() {
        let now = 1_700_000_000_000;
        assert!(check_not_future(now + DEFAULT_MAX_FUTURE_MS, now, DEFAULT_MAX_FUTURE_MS).is_ok());
        let e = check_not_future(now + DEFAULT_MAX_FUTURE_MS + 1, now, DEFAULT_MAX_FUTURE_MS)
            .expect_err("too far ahead");
        assert!(e.to_string().contains("ahead of the clock"), "{e}");
        assert!(check_not_future(i64::MAX, i64::MAX - 5, 10).is_ok());
    }

    #[test]
    fn huge_counts_are_capped() {
        let json = format!(
            r#"{{"id":"9","created_at":"2021-08-29T23:51:27Z","text":"x","retweet_count":{},"favorite_count":{}}}"#,
            i64::MAX,
            i64::MAX
        );
        let t = admit_tweet(Some(json.as_bytes())).expect("admitted");
        assert_eq!(t.score, 2 * crate::tweet::MAX_REPORTED_COUNT);
    }

    #[test]
    fn the_owned_event_is_normalised() {
        let t = admit_tweet(Some(br##"{"id":"5","created_at":"2021-08-29 19:51:27 EDT","text":"a","hashtags":["#X","x"],"lang":"en"}"##))
            .expect("valid");
        let e = t.to_event();
        assert_eq!(e.hashtags, vec!["x".to_string()]);
        assert_eq!(crate::format_rfc3339(e.created_at), "2021-08-29T23:51:27Z");
        assert_eq!(e.lang.as_deref(), Some("en"));
    }

    use proptest::prelude::*;

    proptest! {
        /// No input makes a decoder panic: it is admitted or refused with a reason.
        #[test]
        fn random_bytes_never_panic_a_decoder(bytes in prop::collection::vec(any::<u8>(), 0..300), key in prop::collection::vec(any::<u8>(), 0..40)) {
            let _ = admit_tweet(Some(&bytes));
            let _ = admit_hashtag(Some(&bytes));
            let _ = crate::messages::RetweetsMessage::parse(Some(&bytes));
            let _ = crate::messages::ViewRecord::parse(&key, Some(&bytes));
        }

        /// Near-valid JSON: every field mutated, still no panic.
        #[test]
        fn mutated_tweets_never_panic(id in ".{0,25}", time in ".{0,30}", tags in prop::collection::vec(".{0,10}", 0..4), rt in proptest::option::of(any::<i64>())) {
            let v = serde_json::json!({"id": id, "created_at": time, "text": "t", "hashtags": tags, "retweet_count": rt});
            let bytes = v.to_string().into_bytes();
            if let Ok(t) = admit_tweet(Some(&bytes)) {
                prop_assert!(t.score >= 0);
                prop_assert_eq!(t.id.to_string(), id);
            }
        }
    }
}

//! The messages on the `tweets` and `hashtags` topics, and the engagement
//! score used to rank top tweets.
//!
//! ## `tweets` (key: the tweet id as decimal text)
//!
//! ```json
//! {"id":"1432128795021086722","created_at":"2021-08-29T23:51:27Z",
//!  "text":"Played #IrishGauge today …","lang":"en",
//!  "hashtags":["irishgauge","bggplay"],
//!  "user":{"id":"12","screen_name":"jack"},
//!  "retweet_count":3,"favorite_count":10,"retweet_of":"1432…","quote_of":null,
//!  "geo":{"lat":40.7,"lon":-74.0},"place":"New York, NY","country_code":"US"}
//! ```
//! `id`, `created_at`, `text` and `hashtags` are always written; the others
//! are present when the source has them (the seed dump has `lang` only).
//!
//! ## `hashtags` (key: the normalised hashtag)
//!
//! One message per distinct hashtag of a tweet:
//! `{"tweet_id":"1432128795021086722","hashtag":"irishgauge","created_at":"2021-08-29T23:51:27Z"}`.
//!
//! The Kafka message timestamp of both is the event time.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The author of a tweet, when the source names one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The user's numeric id as text, when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    /// The user's handle, without `@`, when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub screen_name: Option<String>,
}

/// A point on the globe (WGS 84 degrees).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Geo {
    /// Latitude, −90 to 90.
    pub lat: f64,
    /// Longitude, −180 to 180.
    pub lon: f64,
}

/// A tweet as published on the `tweets` topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TweetEvent {
    /// Tweet id, decimal text (ids exceed JavaScript's safe integers).
    pub id: String,
    /// Event time: the tweet's creation time in UTC.
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    /// Full text (for a retweet, `RT @user: ` and the original's full text).
    pub text: String,
    /// Language code as the source gives it (`en`, `und`, …).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lang: Option<String>,
    /// Distinct normalised hashtags (a missing field reads as none).
    #[serde(default)]
    pub hashtags: Vec<String>,
    /// Author, when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user: Option<User>,
    /// Times retweeted, as the source reported it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub retweet_count: Option<i64>,
    /// Times liked, as the source reported it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub favorite_count: Option<i64>,
    /// For a retweet, the id of the retweeted tweet.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub retweet_of: Option<String>,
    /// For a quote tweet, the id of the quoted tweet.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub quote_of: Option<String>,
    /// Exact location, when the source has one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub geo: Option<Geo>,
    /// Place name, when the source has one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub place: Option<String>,
    /// ISO country code of the place, when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub country_code: Option<String>,
}

/// One distinct hashtag of one tweet, as published on the `hashtags` topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HashtagEvent {
    /// Id of the tweet that carries the hashtag.
    pub tweet_id: String,
    /// The normalised hashtag (see [`crate::normalize_hashtag`]).
    pub hashtag: String,
    /// Event time of the tweet.
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

impl TweetEvent {
    /// The `hashtags` topic messages for this tweet, one per distinct hashtag.
    pub fn hashtag_events(&self) -> impl Iterator<Item = HashtagEvent> + '_ {
        self.hashtags.iter().map(|h| HashtagEvent {
            tweet_id: self.id.clone(),
            hashtag: h.clone(),
            created_at: self.created_at,
        })
    }

    /// The tweet's own engagement score; see [`engagement_score`].
    pub fn base_score(&self) -> i64 {
        engagement_score(self.retweet_count, self.favorite_count, self.hashtags.len())
    }
}

/// The largest retweet or like count a score takes from a source: larger
/// reported counts (up to `i64::MAX` in broken input) count as this. Far above
/// any real tweet's, and small enough that no sum of scores a layer computes
/// (a tweet's counts plus one per retweet, over any range) can overflow.
pub const MAX_REPORTED_COUNT: i64 = 1_000_000_000_000;

/// The engagement score of a tweet, before retweets seen in the stream are
/// added:
///
/// - where the source reports retweets or likes: `retweet_count + favorite_count`,
///   each taken between 0 and [`MAX_REPORTED_COUNT`] (a missing one counts 0);
/// - where it reports neither (the seed dump): the number of distinct
///   hashtags, which is how the seed project ranked its top tweets.
///
/// The speed and batch layers add 1 for every retweet of the tweet that they
/// see in the stream. Ties are broken by tweet id, ascending.
pub fn engagement_score(
    retweet_count: Option<i64>,
    favorite_count: Option<i64>,
    distinct_hashtags: usize,
) -> i64 {
    match (retweet_count, favorite_count) {
        (None, None) => i64::try_from(distinct_hashtags).unwrap_or(i64::MAX),
        (r, f) => {
            let count = |c: Option<i64>| c.unwrap_or(0).clamp(0, MAX_REPORTED_COUNT);
            count(r) + count(f)
        }
    }
}

/// Serde helper: RFC 3339 text in UTC with a `Z`.
pub mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the time as `2021-08-29T23:51:27Z`.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::time::format_rfc3339(*t))
    }

    /// Reads any format [`crate::parse_event_time`] accepts.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        crate::parse_event_time(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TweetEvent {
        TweetEvent {
            id: "1432128795021086722".into(),
            created_at: crate::parse_event_time("2021-08-29 19:51:27 EDT").expect("valid"),
            text: "Played #IrishGauge today #bggplay".into(),
            lang: Some("en".into()),
            hashtags: vec!["irishgauge".into(), "bggplay".into()],
            user: None,
            retweet_count: None,
            favorite_count: None,
            retweet_of: None,
            quote_of: None,
            geo: None,
            place: None,
            country_code: None,
        }
    }

    #[test]
    fn tweet_json_has_string_id_and_utc_time() {
        let json = serde_json::to_value(sample()).expect("serialises");
        assert_eq!(json["id"], "1432128795021086722");
        assert_eq!(json["created_at"], "2021-08-29T23:51:27Z");
        assert!(json.get("retweet_count").is_none());
        let back: TweetEvent = serde_json::from_value(json).expect("parses back");
        assert_eq!(back, sample());
    }

    #[test]
    fn one_hashtag_event_per_distinct_hashtag() {
        let events: Vec<_> = sample().hashtag_events().collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].hashtag, "bggplay");
        assert_eq!(events[1].tweet_id, "1432128795021086722");
    }

    #[test]
    fn score_uses_engagement_or_falls_back_to_hashtags() {
        assert_eq!(engagement_score(None, None, 3), 3);
        assert_eq!(engagement_score(Some(5), None, 3), 5);
        assert_eq!(engagement_score(Some(5), Some(7), 3), 12);
        assert_eq!(engagement_score(Some(-1), Some(0), 3), 0);
        assert_eq!(
            engagement_score(Some(i64::MAX), Some(i64::MAX), 3),
            2 * MAX_REPORTED_COUNT
        );
        assert_eq!(sample().base_score(), 2);
    }
}

//! The Elasticsearch document of one tweet: the `tweets` message as the one
//! admission rule reads it, with the engagement score and the location as a
//! `geo_point`. Its `_id` is the tweet id, so that indexing a tweet again
//! (a second replay, a restart, a rebalance) overwrites the same document.

use serde::Serialize;
use tweetlambda_core::admit::AdmittedTweet;
use tweetlambda_core::tweet::User;

/// A `geo_point` in Elasticsearch's object form.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Location {
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
}

/// One indexed tweet. Absent values are left out of the document (not
/// written as `null`), as Elasticsearch treats both alike.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TweetDocument {
    /// Tweet id, decimal text.
    pub id: String,
    /// Event time, RFC 3339 with milliseconds, UTC.
    pub created_at: String,
    /// Text.
    pub text: String,
    /// Distinct normalised hashtags.
    pub hashtags: Vec<String>,
    /// Language code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// Author.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// Retweets reported by the source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retweet_count: Option<i64>,
    /// Likes reported by the source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub favorite_count: Option<i64>,
    /// The engagement score as core defines it
    /// ([`tweetlambda_core::engagement_score`]).
    pub score: i64,
    /// The retweeted tweet's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retweet_of: Option<String>,
    /// The quoted tweet's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote_of: Option<String>,
    /// The tweet's coordinates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Place name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// Country code of the place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
}

impl TweetDocument {
    /// The document of an admitted tweet.
    pub fn of(tweet: &AdmittedTweet<'_>) -> TweetDocument {
        let m = &tweet.message;
        let owned = |c: &Option<std::borrow::Cow<'_, str>>| c.as_ref().map(|s| s.to_string());
        TweetDocument {
            id: tweet.id.to_string(),
            created_at: tweet
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            text: m.text.to_string(),
            hashtags: tweet.hashtags.clone(),
            lang: owned(&m.lang),
            user: m.user.clone(),
            retweet_count: m.retweet_count,
            favorite_count: m.favorite_count,
            score: tweet.score,
            retweet_of: tweet.retweet_of.map(|r| r.to_string()),
            quote_of: owned(&m.quote_of),
            location: m.geo.map(|g| Location {
                lat: g.lat,
                lon: g.lon,
            }),
            place: owned(&m.place),
            country_code: owned(&m.country_code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tweetlambda_core::admit::admit_tweet;

    #[test]
    fn a_tweet_becomes_its_document() {
        let payload = br#"{"id":"1432128795021086722","created_at":"2021-08-29T23:51:27Z",
            "text":"Played #IrishGauge","lang":"en","hashtags":["IrishGauge","irishgauge","bggplay"],
            "user":{"id":"12","screen_name":"jack"},"retweet_count":3,"favorite_count":10,
            "geo":{"lat":40.7,"lon":-74.0},"place":"New York, NY","country_code":"US"}"#;
        let tweet = admit_tweet(Some(payload)).expect("admitted");
        let doc = serde_json::to_value(TweetDocument::of(&tweet)).expect("serialises");
        assert_eq!(doc["id"], "1432128795021086722");
        assert_eq!(doc["created_at"], "2021-08-29T23:51:27.000Z");
        assert_eq!(
            doc["hashtags"],
            serde_json::json!(["irishgauge", "bggplay"])
        );
        assert_eq!(doc["score"], 13);
        assert_eq!(
            doc["location"],
            serde_json::json!({"lat": 40.7, "lon": -74.0})
        );
        assert_eq!(doc["user"]["screen_name"], "jack");
        assert!(doc.get("retweet_of").is_none(), "absent, not null: {doc}");
    }

    #[test]
    fn the_seed_dump_score_is_the_number_of_hashtags() {
        let payload = br#"{"id":"7","created_at":"2021-08-29T23:51:27Z","text":"x #a #b","hashtags":["a","b"],"retweet_of":"5"}"#;
        let doc = TweetDocument::of(&admit_tweet(Some(payload)).expect("admitted"));
        assert_eq!(doc.score, 2);
        assert_eq!(doc.retweet_of.as_deref(), Some("5"));
        assert_eq!(doc.location, None);
    }
}

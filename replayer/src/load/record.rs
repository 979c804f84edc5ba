//! One tweet read from a source file, in the shape of the MySQL schema.

use chrono::{DateTime, Utc};

/// A tweet ready to be written to `tweets`, `tweet_meta`, `hashtags` and
/// `tweet_hashtags`.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Tweet id.
    pub tweet_id: i64,
    /// Full text.
    pub text: String,
    /// The creation time as the source wrote it (stored in `tweets.date_time`).
    pub date_time: String,
    /// The creation time parsed, in UTC.
    pub event_time: DateTime<Utc>,
    /// Language code.
    pub lang: Option<String>,
    /// Normalised hashtags with the number of times each occurs in the tweet.
    pub hashtags: Vec<(String, i64)>,
    /// Which source format: `v1`, `v2`, `csv`, `synthetic`.
    pub source: &'static str,
    /// Author id.
    pub user_id: Option<i64>,
    /// Author handle.
    pub user_screen_name: Option<String>,
    /// Retweets reported by the source.
    pub retweet_count: Option<i64>,
    /// Likes reported by the source.
    pub favorite_count: Option<i64>,
    /// The retweeted tweet.
    pub retweet_of_id: Option<i64>,
    /// The quoted tweet.
    pub quote_of_id: Option<i64>,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Place name.
    pub place_name: Option<String>,
    /// Place country code.
    pub country_code: Option<String>,
}

impl Record {
    /// A record with the required fields and nothing else.
    pub fn new(
        tweet_id: i64,
        text: String,
        date_time: String,
        event_time: DateTime<Utc>,
        source: &'static str,
    ) -> Record {
        Record {
            tweet_id,
            text,
            date_time,
            event_time,
            lang: None,
            hashtags: Vec::new(),
            source,
            user_id: None,
            user_screen_name: None,
            retweet_count: None,
            favorite_count: None,
            retweet_of_id: None,
            quote_of_id: None,
            lat: None,
            lon: None,
            place_name: None,
            country_code: None,
        }
    }

    /// Sets the hashtags from tags as written (normalised and counted here).
    pub fn set_hashtags<I, S>(&mut self, tags: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut counted: Vec<(String, i64)> = Vec::new();
        for tag in tags {
            if let Some(n) = tweetlambda_core::normalize_hashtag(tag.as_ref()) {
                match counted.iter_mut().find(|(h, _)| *h == n) {
                    Some((_, c)) => *c += 1,
                    None => counted.push((n, 1)),
                }
            }
        }
        self.hashtags = counted;
    }
}

impl Record {
    /// The `tweets` topic message of this tweet, as the replay publishes it
    /// after a round trip through MySQL: the same fields and the same
    /// hashtags.
    pub fn to_event(&self) -> tweetlambda_core::TweetEvent {
        use tweetlambda_core::{Geo, TweetEvent, User};
        TweetEvent {
            id: self.tweet_id.to_string(),
            created_at: self.event_time,
            text: self.text.clone(),
            lang: self.lang.clone(),
            hashtags: self.hashtags.iter().map(|(h, _)| h.clone()).collect(),
            user: (self.user_id.is_some() || self.user_screen_name.is_some()).then(|| User {
                id: self.user_id.map(|u| u.to_string()),
                screen_name: self.user_screen_name.clone(),
            }),
            retweet_count: self.retweet_count,
            favorite_count: self.favorite_count,
            retweet_of: self.retweet_of_id.map(|i| i.to_string()),
            quote_of: self.quote_of_id.map(|i| i.to_string()),
            geo: self.lat.zip(self.lon).map(|(lat, lon)| Geo { lat, lon }),
            place: self.place_name.clone(),
            country_code: self.country_code.clone(),
        }
    }
}

/// The longest values the schema's columns hold (`sql/`): `tweets.tweet`
/// is a TEXT (bytes), the others VARCHAR (characters).
const TEXT_BYTES: usize = 65_535;
const HASHTAG_CHARS: usize = 300;
const CHAR_LIMITS: [(&str, usize); 5] = [
    ("date_time", 40),
    ("language", 10),
    ("user screen name", 100),
    ("place name", 255),
    ("country code", 8),
];

impl Record {
    /// Why the record does not fit the schema's columns, if it does not: a
    /// line is skipped for it (with its number), never the whole load.
    pub fn check_columns(&self) -> Result<(), String> {
        if self.text.len() > TEXT_BYTES {
            return Err(format!(
                "text of {} bytes is longer than its column ({TEXT_BYTES})",
                self.text.len()
            ));
        }
        if let Some((tag, _)) = self
            .hashtags
            .iter()
            .find(|(h, _)| h.chars().count() > HASHTAG_CHARS)
        {
            return Err(format!(
                "hashtag of {} characters is longer than its column ({HASHTAG_CHARS})",
                tag.chars().count()
            ));
        }
        let values = [
            Some(&self.date_time),
            self.lang.as_ref(),
            self.user_screen_name.as_ref(),
            self.place_name.as_ref(),
            self.country_code.as_ref(),
        ];
        for ((name, limit), value) in CHAR_LIMITS.iter().zip(values) {
            if let Some(n) = value.map(|v| v.chars().count()).filter(|n| n > limit) {
                return Err(format!(
                    "{name} of {n} characters is longer than its column ({limit})"
                ));
            }
        }
        Ok(())
    }
}

/// Parses a tweet id given as a JSON string or number, or as text.
pub fn parse_id(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::String(s) => s.trim().parse().ok(),
        serde_json::Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

//! Every message that crosses a process boundary, defined once: the writer
//! and every reader use these types, so the wire format has one definition.
//! Golden files in `core/tests/golden/` (the README's documented examples)
//! pin each format: a change that alters one fails the tests below.
//!
//! | topic | key | value |
//! |---|---|---|
//! | `tweets` | tweet id | [`TweetEvent`] |
//! | `hashtags` | normalised hashtag | [`HashtagEvent`] |
//! | `*.dead-letter` | where the input was | [`DeadLetter`] |
//! | `speed.view` (compacted) | [`ViewKey`] | [`ViewValue`] |
//! | `top_hashtags`, `top_tweets` | window name | [`TopMessage`] of [`HashtagCount`] / [`TweetRank`] |
//! | `speed.retweets` (internal) | retweeted tweet id / `marker/P` | [`RetweetsMessage`] |

mod dead_letter;
mod retweets;
mod top;
mod view;

pub use crate::tweet::{HashtagEvent, TweetEvent};
pub use dead_letter::{excerpt, DeadLetter, EXCERPT_BYTES};
pub use retweets::{Marker, Markers, RetweetEvent, RetweetsMessage};
pub use top::{HashtagCount, TopMessage, TweetRank};
pub use view::{ViewKey, ViewRecord, ViewValue};

#[cfg(test)]
mod golden {
    //! Each golden file holds `{"key": …, "value": …}` as the topic carries
    //! it. The value must parse into its type and serialise back to the very
    //! same JSON; the README shows the same examples.
    use super::*;
    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use serde_json::Value;

    /// `core/` of this checkout, read at run time: the test binary may come
    /// from another checkout that shares the Cargo target directory.
    fn package_dir() -> String {
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into())
    }

    fn golden(name: &str) -> (String, Value) {
        let path = format!("{}/tests/golden/{name}.json", package_dir());
        let text = std::fs::read_to_string(&path).expect("golden file");
        let v: Value = serde_json::from_str(&text).expect("golden JSON");
        (
            v["key"].as_str().expect("key").to_string(),
            v["value"].clone(),
        )
    }

    fn round_trip<T: Serialize + DeserializeOwned>(name: &str) -> (String, T) {
        let (key, value) = golden(name);
        let parsed: T = serde_json::from_value(value.clone()).expect(name);
        assert_eq!(
            serde_json::to_value(&parsed).expect("serialise"),
            value,
            "{name}"
        );
        (key, parsed)
    }

    #[test]
    fn tweets_and_hashtags() {
        let (key, t) = round_trip::<TweetEvent>("tweet");
        assert_eq!(key, t.id);
        let (key, t) = round_trip::<TweetEvent>("tweet_full");
        assert_eq!(key, t.id);
        assert_eq!(t.retweet_of.as_deref(), Some("1432128000000000000"));
        let (key, h) = round_trip::<HashtagEvent>("hashtag");
        assert_eq!(key, h.hashtag);
    }

    #[test]
    fn dead_letters() {
        let (key, d) = round_trip::<DeadLetter>("dead_letter_kafka");
        assert_eq!(key, d.key());
        let (key, d) = round_trip::<DeadLetter>("dead_letter_mysql");
        assert_eq!(key, d.key());
    }

    #[test]
    fn realtime_view_records() {
        for name in ["view_hashtag", "view_tweet", "view_late"] {
            let (key, value) = golden(name);
            let bytes = serde_json::to_vec(&value).expect("bytes");
            let record = ViewRecord::parse(key.as_bytes(), Some(&bytes)).expect(name);
            assert_eq!(record.key.to_string(), key);
            let written: Value = serde_json::from_str(&record.value_json()).expect("written value");
            assert_eq!(written, value, "{name}");
        }
    }

    #[test]
    fn top_n_messages() {
        let (key, m) = round_trip::<TopMessage<HashtagCount>>("top_hashtags");
        assert_eq!(key, m.window);
        let (key, m) = round_trip::<TopMessage<TweetRank>>("top_tweets");
        assert_eq!(key, m.window);
    }

    #[test]
    fn internal_retweets_messages() {
        let (key, r) = round_trip::<RetweetEvent>("retweet");
        assert_eq!(key, r.tweet_id);
        // Read from the topic: a `Markers` message, and one marker as
        // instances before `Markers` sent them.
        let parsed = |name: &str| {
            let bytes = serde_json::to_vec(&golden(name).1).expect("bytes");
            RetweetsMessage::parse(Some(&bytes)).expect(name)
        };
        let (key, m) = round_trip::<Marker>("marker");
        assert_eq!(key, format!("marker/{}", m.marker));
        assert_eq!(parsed("marker"), RetweetsMessage::Markers(vec![m]));
        let (key, m) = round_trip::<Markers>("markers");
        assert_eq!(key, "markers");
        assert_eq!(parsed("markers"), RetweetsMessage::Markers(m.markers));
    }

    /// The README documents the same examples: the docs cannot drift either.
    #[test]
    fn readme_shows_every_golden_value() {
        let readme =
            std::fs::read_to_string(format!("{}/../README.md", package_dir())).expect("README");
        for name in [
            "tweet",
            "hashtag",
            "dead_letter_kafka",
            "dead_letter_mysql",
            "view_hashtag",
            "view_tweet",
            "view_late",
            "top_hashtags",
            "top_tweets",
        ] {
            let (key, value) = golden(name);
            let shown = readme.lines().any(|line| {
                line.strip_prefix(&format!("{key} → "))
                    .and_then(|json| serde_json::from_str::<Value>(json).ok())
                    .is_some_and(|v| v == value)
            });
            assert!(shown, "README lacks the {name} example `{key} → {value}`");
        }
    }
}

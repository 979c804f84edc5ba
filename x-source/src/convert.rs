//! From X API v2 bodies to the product's tweets: the same reading as
//! `tweetlambda load` of v2 files ([`tweetlambda_replayer::load::json`]):
//! event time from `created_at`, a retweet's text and hashtags from the
//! retweeted tweet in `includes.tweets`, metrics, references, geo, and the
//! text's HTML escapes decoded.

use serde_json::Value;
use tweetlambda_replayer::load::json::parse_v2;
use tweetlambda_replayer::load::Record;

/// A tweet of a body that cannot be used, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Its `id`, when it has a readable one.
    pub id: Option<String>,
    /// Why.
    pub reason: String,
    /// The tweet object as JSON, for the dead letter.
    pub raw: String,
}

/// The tweets of a search page (`data` a list) or a stream line (`data` one
/// tweet), each read or rejected. A body without `data` has none.
pub fn tweets(body: &Value) -> Vec<Result<Record, Rejected>> {
    let includes = body.get("includes").unwrap_or(&Value::Null);
    let one = |t: &Value| {
        parse_v2(t, includes).map_err(|reason| Rejected {
            id: t.get("id").and_then(Value::as_str).map(str::to_string),
            reason,
            raw: t.to_string(),
        })
    };
    match body.get("data") {
        Some(Value::Array(list)) => list.iter().map(one).collect(),
        Some(t @ Value::Object(_)) => vec![one(t)],
        Some(other) => vec![Err(Rejected {
            id: None,
            reason: "`data` is neither a tweet nor a list of tweets".into(),
            raw: other.to_string(),
        })],
        None => Vec::new(),
    }
}

/// The top-level `errors` of a body, one line each (`title: detail`): in a
/// 200 answer with `data` they are partial errors (a referenced tweet
/// that is protected or deleted); alone in a stream line, a message from
/// the stream (`operational-disconnect`).
pub fn errors(body: &Value) -> Vec<String> {
    body.get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            let field = |k: &str| e.get(k).and_then(Value::as_str);
            match (field("title"), field("detail").or_else(|| field("message"))) {
                (Some(t), Some(d)) => format!("{t}: {d}"),
                (Some(t), None) => t.to_string(),
                (None, Some(d)) => d.to_string(),
                (None, None) => e.to_string(),
            }
        })
        .collect()
}

/// Whether a stream line announces that the server closes the connection.
pub fn is_disconnect(body: &Value) -> bool {
    body.get("data").is_none()
        && body
            .get("errors")
            .and_then(Value::as_array)
            .is_some_and(|errors| {
                errors.iter().any(|e| {
                    e.get("title").and_then(Value::as_str) == Some("operational-disconnect")
                        || e.get("disconnect_type").is_some()
                })
            })
}

/// `meta.next_token` of a search page.
pub fn next_token(body: &Value) -> Option<String> {
    body.get("meta")?
        .get("next_token")?
        .as_str()
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// The larger of two tweet ids (decimal text; a longer one is larger).
pub fn newer_id(a: Option<String>, b: Option<&str>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if id_order(&a, b).is_lt() {
            b.to_string()
        } else {
            a
        }),
        (a, b) => a.or_else(|| b.map(str::to_string)),
    }
}

/// Order of two tweet ids given as decimal text without leading zeros.
pub fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_line_is_one_tweet_and_a_disconnect_is_recognised() {
        let line: Value = serde_json::from_str(
            r#"{"data":{"id":"5","created_at":"2021-02-10T15:01:33.000Z","text":"a &amp; b #Go"},
                "matching_rules":[{"id":1359517181646635008,"tag":null}]}"#,
        )
        .expect("json");
        let t = tweets(&line);
        assert_eq!(t.len(), 1);
        let r = t[0].as_ref().expect("read");
        assert_eq!(r.text, "a & b #Go");
        assert_eq!(r.hashtags, vec![("go".to_string(), 1)]);
        assert!(!is_disconnect(&line));
        let bye: Value = serde_json::from_str(
            r#"{"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream for operational reasons.","type":"https://api.twitter.com/2/problems/operational-disconnect"}]}"#,
        )
        .expect("json");
        assert!(is_disconnect(&bye));
        assert!(tweets(&bye).is_empty());
        assert_eq!(errors(&bye).len(), 1);
        assert!(errors(&bye)[0].starts_with("operational-disconnect: This stream"));
    }

    #[test]
    fn a_tweet_without_a_time_is_rejected_with_its_id() {
        let page: Value = serde_json::from_str(
            r#"{"data":[{"id":"7","text":"no time"},{"id":"8","created_at":"2021-02-10T15:01:33.000Z","text":"ok"}]}"#,
        )
        .expect("json");
        let t = tweets(&page);
        let rejected = t[0].as_ref().expect_err("rejected");
        assert_eq!(rejected.id.as_deref(), Some("7"));
        assert!(
            rejected.reason.contains("created_at"),
            "{}",
            rejected.reason
        );
        assert!(t[1].is_ok());
    }

    #[test]
    fn ids_compare_as_numbers() {
        assert!(id_order("99", "100").is_lt());
        assert!(id_order("1359610108666388490", "1359610003892670465").is_gt());
        assert_eq!(
            newer_id(Some("99".into()), Some("100")).as_deref(),
            Some("100")
        );
        assert_eq!(newer_id(None, Some("5")).as_deref(), Some("5"));
        assert_eq!(newer_id(Some("5".into()), None).as_deref(), Some("5"));
    }
}

/// Every recorded search and lookup body of the shared data
/// (`../shared/data/twitter_api_v2`, or `TWEETLAMBDA_SHARED_DATA`), read
/// without a panic; each tweet's event time and hashtags checked against
/// the body by a reading written apart from [`parse_v2`].
#[cfg(test)]
mod recorded {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use serde_json::Value;

    use super::tweets;

    fn manifest_dir() -> PathBuf {
        std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
    }

    fn data_dir() -> PathBuf {
        let manifest = manifest_dir();
        std::env::var_os("TWEETLAMBDA_SHARED_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| manifest.join("../../shared/data"))
            .join("twitter_api_v2")
    }

    fn bodies(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.to_string_lossy().into_owned();
            if path.is_dir() {
                bodies(&path, out);
            } else if (name.ends_with(".json") || name.ends_with(".json.gz"))
                && !name.ends_with(".headers.json")
            {
                out.push(path);
            }
        }
    }

    /// The hashtags a tweet should get: those of the retweeted tweet when
    /// the body includes it, else its own; normalised, distinct.
    fn expected_hashtags(tweet: &Value, includes: &Value) -> Option<BTreeSet<String>> {
        let retweeted = tweet["referenced_tweets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["type"] == "retweeted")
            .and_then(|r| r["id"].as_str());
        let original = retweeted.and_then(|id| {
            includes["tweets"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["id"].as_str() == Some(id))
        });
        let source = original.unwrap_or(tweet);
        // A tweet without entities gets its hashtags from the text: not
        // checked here (the loader's own tests cover it).
        let tags = source.get("entities")?.get("hashtags");
        Some(
            tags.and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|h| h["tag"].as_str())
                .filter_map(tweetlambda_core::normalize_hashtag)
                .collect(),
        )
    }

    #[test]
    fn every_recorded_body_maps_with_the_right_time_and_hashtags() {
        let dir = data_dir();
        let mut files = Vec::new();
        bodies(&dir.join("search_recent"), &mut files);
        bodies(&dir.join("tweets_lookup"), &mut files);
        let whole = !files.is_empty();
        if !whole {
            // A plain clone: the sample bundled in the repository.
            eprintln!(
                "{} missing (set TWEETLAMBDA_SHARED_DATA): checking the bundled sample only",
                dir.display()
            );
            bodies(&manifest_dir().join("../data/twitter_api_v2"), &mut files);
        }
        assert!(files.len() >= 5, "no bodies found");
        let (mut checked_time, mut without_time, mut checked_tags, mut with_tags) = (0, 0, 0, 0);
        for file in &files {
            let bytes = if file.extension().is_some_and(|e| e == "gz") {
                let out = std::process::Command::new("gzip")
                    .arg("-dc")
                    .arg(file)
                    .output()
                    .expect("gzip");
                out.stdout
            } else {
                std::fs::read(file).expect("read")
            };
            let body: Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let includes = &body["includes"];
            let data: Vec<&Value> = match &body["data"] {
                Value::Array(list) => list.iter().collect(),
                Value::Null => Vec::new(),
                one => vec![one],
            };
            let read = tweets(&body);
            assert_eq!(read.len(), data.len(), "{}", file.display());
            for (tweet, record) in data.iter().zip(read) {
                let id = tweet["id"].as_str().expect("id");
                let Some(created) = tweet["created_at"].as_str() else {
                    // Recorded without `tweet.fields=created_at` (the tweepy
                    // sets): no event time, so a dead letter that says so.
                    let rejected = record.expect_err("a tweet without a time is rejected");
                    assert!(
                        rejected.reason.contains("created_at"),
                        "{}",
                        rejected.reason
                    );
                    assert_eq!(rejected.id.as_deref(), Some(id));
                    without_time += 1;
                    continue;
                };
                let record = record
                    .unwrap_or_else(|r| panic!("{}: tweet {id}: {}", file.display(), r.reason));
                assert_eq!(record.tweet_id.to_string(), id);
                let expected = chrono::DateTime::parse_from_rfc3339(created).expect("RFC 3339");
                assert_eq!(
                    record.event_time,
                    expected,
                    "{}: tweet {id}",
                    file.display()
                );
                checked_time += 1;
                if let Some(tags) = expected_hashtags(tweet, includes) {
                    let got: BTreeSet<String> =
                        record.hashtags.iter().map(|(h, _)| h.clone()).collect();
                    assert_eq!(got, tags, "{}: tweet {id}", file.display());
                    checked_tags += 1;
                    with_tags += usize::from(!got.is_empty());
                }
                assert!(
                    !record.text.contains("&amp;"),
                    "{}: tweet {id} kept an escape",
                    file.display()
                );
            }
        }
        if !whole {
            assert!(
                checked_time >= 500 && with_tags > 300,
                "{checked_time} {with_tags}"
            );
            return;
        }
        // The README's totals: 6604 + 127 tweet objects in `data`.
        assert_eq!(
            checked_time + without_time,
            6731,
            "tweets in {} bodies",
            files.len()
        );
        assert_eq!(
            without_time, 80,
            "the eight tweepy sets of 10 have no created_at"
        );
        assert!(
            checked_tags > 3000 && with_tags > 2000,
            "{checked_tags} checked, {with_tags} with hashtags"
        );
    }
}

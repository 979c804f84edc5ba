//! The realtime view (`speed.view`, compacted): one record per bucket and
//! hashtag, and per bucket and tweet, holding that bucket's partial
//! aggregate, and one per bucket that lost late events. A newer record of a
//! key replaces the older one.
//!
//! Keys: `hashtag/<bucket start ms>/<hashtag>`,
//! `tweet/<bucket start ms>/<tweet id>` and
//! `late/<bucket start ms>/<input>-<partition>` (events of the bucket read
//! from that input partition after the speed layer had dropped the bucket:
//! the view's records of that bucket miss them until the batch counts them;
//! one key per partition, so that instances never write the same key).
//!
//! A record with no value (a tombstone) ends its key: the serving layer
//! writes one for each key of a bucket before the boundary B of a batch
//! version it loaded (the batch covers that bucket), so that compaction
//! bounds the topic by the buckets since B.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The key of a view record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ViewKey {
    /// A hashtag's count in a bucket.
    Hashtag {
        /// Bucket start, ms since the epoch.
        bucket_ms: i64,
        /// Normalised hashtag.
        hashtag: String,
    },
    /// A tweet's score in a bucket.
    Tweet {
        /// Bucket start, ms since the epoch.
        bucket_ms: i64,
        /// Tweet id.
        tweet_id: u64,
    },
    /// Events of a bucket the view does not hold, read from one input
    /// partition.
    Late {
        /// Bucket start, ms since the epoch.
        bucket_ms: i64,
        /// The input partition, `<input>-<partition>` (`hashtags-2`).
        source: String,
    },
}

impl fmt::Display for ViewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewKey::Hashtag { bucket_ms, hashtag } => write!(f, "hashtag/{bucket_ms}/{hashtag}"),
            ViewKey::Tweet {
                bucket_ms,
                tweet_id,
            } => write!(f, "tweet/{bucket_ms}/{tweet_id}"),
            ViewKey::Late { bucket_ms, source } => write!(f, "late/{bucket_ms}/{source}"),
        }
    }
}

impl ViewKey {
    /// Reads a key.
    pub fn parse(key: &[u8]) -> Result<ViewKey, String> {
        let key = std::str::from_utf8(key).map_err(|_| "key is not UTF-8".to_string())?;
        let mut parts = key.splitn(3, '/');
        let (Some(kind), Some(bucket), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("unexpected key {key:?}"));
        };
        let bucket_ms: i64 = bucket
            .parse()
            .map_err(|_| format!("bucket of key {key:?} is not a number"))?;
        match kind {
            "hashtag" => Ok(ViewKey::Hashtag {
                bucket_ms,
                hashtag: name.to_string(),
            }),
            "tweet" => Ok(ViewKey::Tweet {
                bucket_ms,
                tweet_id: name
                    .parse()
                    .map_err(|_| format!("tweet id of key {key:?} is not a number"))?,
            }),
            "late" => Ok(ViewKey::Late {
                bucket_ms,
                source: name.to_string(),
            }),
            _ => Err(format!("unexpected key {key:?}")),
        }
    }

    /// The bucket start, ms.
    pub fn bucket_ms(&self) -> i64 {
        match self {
            ViewKey::Hashtag { bucket_ms, .. }
            | ViewKey::Tweet { bucket_ms, .. }
            | ViewKey::Late { bucket_ms, .. } => *bucket_ms,
        }
    }
}

/// The value of a view record, as JSON (`kind` tells which).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ViewValue {
    /// A hashtag's count in a bucket.
    Hashtag {
        /// Bucket start, RFC 3339 (for people reading the topic).
        #[serde(default)]
        bucket_start: Option<String>,
        /// Normalised hashtag (also in the key).
        #[serde(default)]
        hashtag: String,
        /// Distinct tweets with the hashtag in the bucket.
        count: i64,
    },
    /// A tweet's score in a bucket.
    Tweet {
        /// Bucket start, RFC 3339.
        #[serde(default)]
        bucket_start: Option<String>,
        /// Tweet id (also in the key).
        #[serde(default)]
        tweet_id: String,
        /// Score gained in the bucket.
        score: i64,
        /// The tweet's text, when known.
        #[serde(default)]
        text: String,
    },
    /// Events of a bucket that came after the speed layer had dropped the
    /// bucket: not in the view's records of that bucket.
    Late {
        /// Bucket start, RFC 3339.
        #[serde(default)]
        bucket_start: Option<String>,
        /// How many (a newer record carries the total so far).
        events: i64,
    },
}

/// One record of the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewRecord {
    /// The key.
    pub key: ViewKey,
    /// The value.
    pub value: ViewValue,
}

impl ViewRecord {
    /// A hashtag's count in a bucket.
    pub fn hashtag(bucket_ms: i64, hashtag: &str, count: i64) -> ViewRecord {
        ViewRecord {
            key: ViewKey::Hashtag {
                bucket_ms,
                hashtag: hashtag.to_string(),
            },
            value: ViewValue::Hashtag {
                bucket_start: bucket_start(bucket_ms),
                hashtag: hashtag.to_string(),
                count,
            },
        }
    }

    /// A tweet's score in a bucket.
    pub fn tweet(bucket_ms: i64, tweet_id: u64, score: i64, text: &str) -> ViewRecord {
        ViewRecord {
            key: ViewKey::Tweet {
                bucket_ms,
                tweet_id,
            },
            value: ViewValue::Tweet {
                bucket_start: bucket_start(bucket_ms),
                tweet_id: tweet_id.to_string(),
                score,
                text: text.to_string(),
            },
        }
    }

    /// Events of a bucket the view no longer holds, read from `source`.
    pub fn late(bucket_ms: i64, source: &str, events: i64) -> ViewRecord {
        ViewRecord {
            key: ViewKey::Late {
                bucket_ms,
                source: source.to_string(),
            },
            value: ViewValue::Late {
                bucket_start: bucket_start(bucket_ms),
                events,
            },
        }
    }

    /// The value as JSON text.
    pub fn value_json(&self) -> String {
        // An enum of strings and numbers always serialises.
        serde_json::to_string(&self.value).unwrap_or_default()
    }

    /// Reads a record; the key decides what it is, the value must agree.
    pub fn parse(key: &[u8], value: Option<&[u8]>) -> Result<ViewRecord, String> {
        let key = ViewKey::parse(key)?;
        let bytes = value.ok_or_else(|| format!("{key}: empty value"))?;
        let value: ViewValue = serde_json::from_slice(bytes).map_err(|e| format!("{key}: {e}"))?;
        match (&key, &value) {
            (ViewKey::Hashtag { .. }, ViewValue::Hashtag { .. })
            | (ViewKey::Tweet { .. }, ViewValue::Tweet { .. })
            | (ViewKey::Late { .. }, ViewValue::Late { .. }) => Ok(ViewRecord { key, value }),
            _ => Err(format!("{key}: the value's kind does not match the key")),
        }
    }
}

fn bucket_start(ms: i64) -> Option<String> {
    crate::time::from_millis(ms).map(crate::time::format_rfc3339)
}

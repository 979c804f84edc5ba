//! Dead letters: input that could not be used, with where it was and why,
//! and a bounded excerpt of it, so that no input can make a dead letter too
//! large to send.

use serde::{Deserialize, Serialize};

/// Bytes of the input kept in a dead letter (key and payload each): far
/// below any broker's message size limit.
pub const EXCERPT_BYTES: usize = 4096;

/// Up to `max` bytes of `bytes` as text (invalid UTF-8 replaced), cut at a
/// character boundary; `true` when something was cut off.
pub fn excerpt(bytes: &[u8], max: usize) -> (String, bool) {
    let cut = bytes.len() > max;
    let mut text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned();
    if cut {
        // A cut inside a multi-byte character leaves one replacement char: drop it.
        if text.ends_with('\u{fffd}') {
            text.pop();
        }
    }
    (text, cut)
}

/// A dead letter. Kafka input names its topic, partition and offset; MySQL
/// rows name their table and tweet id; X API input its endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Where the input came from: `kafka`, `mysql` or `x-api`.
    pub source: String,
    /// Why it was refused.
    pub reason: String,
    /// Kafka input: the topic.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub topic: Option<String>,
    /// Kafka input: the partition.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub partition: Option<i32>,
    /// Kafka input: the offset.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub offset: Option<i64>,
    /// MySQL input: the table.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub table: Option<String>,
    /// X API input: the endpoint it came from.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub endpoint: Option<String>,
    /// MySQL or X API input: the tweet id, when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tweet_id: Option<String>,
    /// The input's key (Kafka), at most [`EXCERPT_BYTES`].
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub input_key: Option<String>,
    /// The input, at most [`EXCERPT_BYTES`] of it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub excerpt: Option<String>,
    /// The input was longer than the excerpt.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub truncated: bool,
}

impl DeadLetter {
    /// A Kafka message that could not be read.
    pub fn kafka(
        topic: &str,
        partition: i32,
        offset: i64,
        reason: impl Into<String>,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
    ) -> DeadLetter {
        let key = key.map(|k| excerpt(k, EXCERPT_BYTES));
        let payload = payload.map(|p| excerpt(p, EXCERPT_BYTES));
        let truncated = key.as_ref().is_some_and(|k| k.1) || payload.as_ref().is_some_and(|p| p.1);
        DeadLetter {
            source: "kafka".into(),
            reason: reason.into(),
            topic: Some(topic.to_string()),
            partition: Some(partition),
            offset: Some(offset),
            table: None,
            endpoint: None,
            tweet_id: None,
            input_key: key.map(|k| k.0),
            excerpt: payload.map(|p| p.0),
            truncated,
        }
    }

    /// A MySQL row that could not be replayed.
    pub fn mysql_row(
        table: &str,
        tweet_id: &str,
        reason: impl Into<String>,
        row: &str,
    ) -> DeadLetter {
        let (text, truncated) = excerpt(row.as_bytes(), EXCERPT_BYTES);
        DeadLetter {
            source: "mysql".into(),
            reason: reason.into(),
            topic: None,
            partition: None,
            offset: None,
            table: Some(table.to_string()),
            endpoint: None,
            tweet_id: Some(tweet_id.to_string()),
            input_key: None,
            excerpt: Some(text),
            truncated,
        }
    }

    /// Input from the X API that could not be used: a response body, a
    /// stream line or one tweet of a page, with the endpoint it came from
    /// and the tweet's id when one is known.
    pub fn x_api(
        endpoint: &str,
        tweet_id: Option<&str>,
        reason: impl Into<String>,
        input: &[u8],
    ) -> DeadLetter {
        let (text, truncated) = excerpt(input, EXCERPT_BYTES);
        DeadLetter {
            source: "x-api".into(),
            reason: reason.into(),
            topic: None,
            partition: None,
            offset: None,
            table: None,
            endpoint: Some(endpoint.to_string()),
            tweet_id: tweet_id.map(str::to_string),
            input_key: None,
            excerpt: Some(text),
            truncated,
        }
    }

    /// The dead letter's message key: `topic/partition/offset` for Kafka
    /// input, the tweet id for a MySQL row.
    pub fn key(&self) -> String {
        match (&self.topic, self.partition, self.offset, &self.tweet_id) {
            (Some(t), Some(p), Some(o), _) => format!("{t}/{p}/{o}"),
            (_, _, _, Some(id)) => id.clone(),
            _ => self.source.clone(),
        }
    }

    /// The JSON payload; it is small by construction.
    pub fn to_json(&self) -> String {
        // A struct of strings and numbers always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_input_gives_a_small_dead_letter() {
        let payload = "é".repeat(400_000);
        let d = DeadLetter::kafka(
            "tweets",
            2,
            41,
            "invalid message",
            Some(b"k"),
            Some(payload.as_bytes()),
        );
        assert!(d.truncated);
        assert!(
            d.to_json().len() < 2 * EXCERPT_BYTES + 500,
            "{}",
            d.to_json().len()
        );
        assert!(d
            .excerpt
            .as_deref()
            .is_some_and(|e| e.chars().all(|c| c == 'é')));
        assert_eq!(d.key(), "tweets/2/41");
    }
}

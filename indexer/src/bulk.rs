//! `_bulk` requests: a batch bounded by documents and bytes, the offsets
//! and dead letters it stands for, and the reading of Elasticsearch's
//! per-item answer.

use std::collections::HashMap;

use serde_json::Value;
use tweetlambda_core::messages::DeadLetter;

use crate::document::TweetDocument;

/// One document of a bulk request: its action and source lines, and where
/// it came from (for its dead letter, should Elasticsearch refuse it).
#[derive(Debug, Clone)]
pub struct Item {
    /// Tweet id (`_id`).
    pub id: String,
    /// Input partition.
    pub partition: i32,
    /// Input offset.
    pub offset: i64,
    /// `{"index":{"_id":…}}\n{document}\n`.
    pub lines: Vec<u8>,
}

impl Item {
    /// The item indexing `doc`, from input `partition`/`offset`.
    pub fn new(doc: &TweetDocument, partition: i32, offset: i64) -> Item {
        let mut lines =
            serde_json::to_vec(&serde_json::json!({"index": {"_id": doc.id}})).unwrap_or_default();
        lines.push(b'\n');
        // A struct of strings and numbers always serialises.
        lines.extend(serde_json::to_vec(doc).unwrap_or_default());
        lines.push(b'\n');
        Item {
            id: doc.id.clone(),
            partition,
            offset,
            lines,
        }
    }

    /// The document line, without its newline.
    pub fn source(&self) -> &[u8] {
        let start = self
            .lines
            .iter()
            .position(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        self.lines[start..].strip_suffix(b"\n").unwrap_or_default()
    }
}

/// The body of a bulk request for these items.
pub fn body(items: &[Item]) -> Vec<u8> {
    let mut body = Vec::with_capacity(items.iter().map(|i| i.lines.len()).sum());
    for item in items {
        body.extend_from_slice(&item.lines);
    }
    body
}

/// Input read since the last dispatch: the documents to index, the dead
/// letters of messages refused before indexing, and the next offset of
/// every input partition it covers.
#[derive(Debug, Default)]
pub struct Batch {
    /// Documents.
    pub items: Vec<Item>,
    /// Messages the admission rule refused.
    pub dead_letters: Vec<DeadLetter>,
    /// Partition → the offset after the last message of the batch.
    pub next_offsets: HashMap<i32, i64>,
    bytes: usize,
}

impl Batch {
    /// Records that `offset` of `partition` is part of this batch.
    pub fn cover(&mut self, partition: i32, offset: i64) {
        let next = self.next_offsets.entry(partition).or_insert(offset + 1);
        *next = (*next).max(offset + 1);
    }

    /// Adds a document.
    pub fn push(&mut self, item: Item) {
        self.cover(item.partition, item.offset);
        self.bytes += item.lines.len();
        self.items.push(item);
    }

    /// Adds a dead letter for a message that was not admitted.
    pub fn refuse(&mut self, partition: i32, offset: i64, letter: DeadLetter) {
        self.cover(partition, offset);
        self.dead_letters.push(letter);
    }

    /// Bytes of the request body so far.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether nothing was read since the last dispatch.
    pub fn is_empty(&self) -> bool {
        self.next_offsets.is_empty()
    }

    /// Whether one more document of `next_bytes` would pass a bound (a
    /// single document larger than `max_bytes` still goes alone).
    pub fn is_full(&self, max_docs: usize, max_bytes: usize, next_bytes: usize) -> bool {
        !self.items.is_empty()
            && (self.items.len() >= max_docs || self.bytes + next_bytes > max_bytes)
    }
}

/// What Elasticsearch did with one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored (created or overwritten).
    Indexed,
    /// Not stored for a reason that may pass (429, 5xx): send it again.
    Retry(String),
    /// Refused for good (a mapping error, …): dead-letter it with the reason.
    Refused(String),
}

fn reason(error: &Value) -> String {
    match (
        error.get("type").and_then(Value::as_str),
        error.get("reason").and_then(Value::as_str),
    ) {
        (Some(t), Some(r)) => format!("{t}: {r}"),
        (Some(t), None) => t.to_string(),
        (None, Some(r)) => r.to_string(),
        (None, None) => error.to_string(),
    }
}

/// Reads the answer to a bulk request of `sent` items: one outcome per
/// item, in order. An answer of another shape is an error (the request is
/// then sent again whole).
pub fn outcomes(answer: &Value, sent: usize) -> Result<Vec<Outcome>, String> {
    let items = answer
        .get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("bulk answer without `items`: {}", excerpt(answer)))?;
    if items.len() != sent {
        return Err(format!(
            "bulk answer has {} items for {sent} sent",
            items.len()
        ));
    }
    items
        .iter()
        .map(|item| {
            let result = item
                .as_object()
                .and_then(|o| o.values().next())
                .ok_or_else(|| format!("bulk item of unknown shape: {}", excerpt(item)))?;
            let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
            let why = || {
                result
                    .get("error")
                    .map(reason)
                    .unwrap_or_else(|| format!("status {status}"))
            };
            Ok(match status {
                200..=299 => Outcome::Indexed,
                429 | 500..=599 => Outcome::Retry(format!("{status} {}", why())),
                _ => Outcome::Refused(format!("{status} {}", why())),
            })
        })
        .collect()
}

fn excerpt(v: &Value) -> String {
    let text = v.to_string();
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn doc(id: &str) -> TweetDocument {
        TweetDocument {
            id: id.into(),
            created_at: "2021-08-29T23:51:27.000Z".into(),
            text: "t".into(),
            hashtags: vec![],
            lang: None,
            user: None,
            retweet_count: None,
            favorite_count: None,
            score: 0,
            retweet_of: None,
            quote_of: None,
            location: None,
            place: None,
            country_code: None,
        }
    }

    #[test]
    fn a_batch_is_bounded_by_documents_and_bytes() {
        let mut batch = Batch::default();
        let item = Item::new(&doc("1"), 0, 10);
        let size = item.lines.len();
        assert!(
            !batch.is_full(1, 1, size),
            "an empty batch takes any document"
        );
        batch.push(item);
        assert!(batch.is_full(1, usize::MAX, size));
        assert!(batch.is_full(10, 2 * size - 1, size));
        assert!(!batch.is_full(10, 2 * size, size));
        batch.refuse(0, 12, DeadLetter::kafka("tweets", 0, 12, "bad", None, None));
        batch.push(Item::new(&doc("2"), 1, 4));
        assert_eq!(batch.next_offsets, HashMap::from([(0, 13), (1, 5)]));
        let body = String::from_utf8(body(&batch.items)).expect("UTF-8");
        assert_eq!(body.lines().count(), 4);
        assert!(
            body.starts_with("{\"index\":{\"_id\":\"1\"}}\n{\"id\":\"1\""),
            "{body}"
        );
        assert_eq!(
            batch.items[1].source(),
            serde_json::to_vec(&doc("2")).expect("json")
        );
    }

    #[test]
    fn each_item_of_the_answer_is_read() {
        let answer = json!({"took": 3, "errors": true, "items": [
            {"index": {"_id": "1", "status": 201, "result": "created"}},
            {"index": {"_id": "2", "status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}},
            {"index": {"_id": "3", "status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [location]"}}},
            {"index": {"_id": "4", "status": 503}},
        ]});
        let got = outcomes(&answer, 4).expect("read");
        assert_eq!(got[0], Outcome::Indexed);
        assert_eq!(
            got[1],
            Outcome::Retry("429 es_rejected_execution_exception: queue full".into())
        );
        assert_eq!(
            got[2],
            Outcome::Refused(
                "400 mapper_parsing_exception: failed to parse field [location]".into()
            )
        );
        assert_eq!(got[3], Outcome::Retry("503 status 503".into()));
        assert!(outcomes(&answer, 3).is_err(), "an item missing");
        assert!(outcomes(&json!({"error": "x"}), 1).is_err());
    }

    proptest! {
        /// Whatever a server answers, reading it never panics.
        #[test]
        fn any_answer_is_read_without_a_panic(text in ".{0,200}", n in 0usize..4) {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                let _ = outcomes(&v, n);
            }
            let _ = outcomes(&json!({"items": [text.clone(), {"x": {"status": text}}]}), 2);
        }
    }
}

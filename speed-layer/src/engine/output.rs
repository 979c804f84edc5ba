//! What a tick publishes, encoded in the formats of
//! [`tweetlambda_core::messages`]: top-N messages (sent only when they
//! changed, or once as finals) and realtime view records.

use std::collections::HashMap;

use serde_json::Value;
use tweetlambda_core::aggregate::{top_hashtags, top_tweets, Aggregator, BucketAggregate};
use tweetlambda_core::bucket_start_ms;
use tweetlambda_core::messages::{
    excerpt, HashtagCount, TopMessage as TopWire, TweetRank, EXCERPT_BYTES,
};
use tweetlambda_core::time::from_millis;

use crate::config::WindowSpec;

/// Which top-N a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopKind {
    /// Top hashtags.
    Hashtags,
    /// Top tweets.
    Tweets,
}

/// A message for `top_hashtags` or `top_tweets` (key: the window name).
#[derive(Debug, Clone, PartialEq)]
pub struct TopMessage {
    /// Which topic.
    pub kind: TopKind,
    /// Window name.
    pub window: String,
    /// The message, as JSON (a [`TopWire`] of hashtag or tweet items).
    pub value: Value,
}

/// A keyed record ready to send (the realtime view).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedMessage {
    /// The key, e.g. `hashtag/<bucket start ms>/<hashtag>`.
    pub key: String,
    /// The value as JSON text.
    pub value: String,
}

/// What a tick produced.
#[derive(Debug, Default)]
pub struct TickOutput {
    /// Top-N messages.
    pub tops: Vec<TopMessage>,
    /// Realtime view records.
    pub view: Vec<KeyedMessage>,
    /// Window instances finalised by this tick.
    pub finals: usize,
}

/// One window instance to publish.
pub(crate) struct Instance<'a> {
    pub window: &'a str,
    pub start_ms: i64,
    pub end_ms: i64,
    pub is_final: bool,
    pub watermark_ms: i64,
}

impl<'a> Instance<'a> {
    /// The instance of window `w` ending at `end_ms`.
    pub(crate) fn of(w: &'a WindowSpec, end_ms: i64, is_final: bool, watermark_ms: i64) -> Self {
        Instance {
            window: &w.name,
            start_ms: end_ms - w.size_ms,
            end_ms,
            is_final,
            watermark_ms,
        }
    }
}

/// Encodes top-N messages and remembers what was sent, so that an update
/// goes out only when its list changed.
#[derive(Debug)]
pub(crate) struct Publisher {
    top_n: usize,
    /// (window, kind, final) → (end, items) last sent.
    last_published: HashMap<(String, TopKind, bool), (i64, Value)>,
}

impl Publisher {
    /// Items per list.
    pub(crate) fn top_n(&self) -> usize {
        self.top_n
    }

    pub(crate) fn new(top_n: usize) -> Publisher {
        Publisher {
            top_n,
            last_published: HashMap::new(),
        }
    }

    /// Adds the top hashtags and top tweets of `a` for `instance` to `out`.
    /// A tweet whose sum carries no text gets it from its buckets in `agg`.
    pub(crate) fn publish(
        &mut self,
        out: &mut TickOutput,
        instance: &Instance<'_>,
        a: &BucketAggregate,
        agg: &Aggregator,
    ) {
        let (Some(start), Some(end), Some(watermark)) = (
            from_millis(instance.start_ms),
            from_millis(instance.end_ms),
            from_millis(instance.watermark_ms),
        ) else {
            tracing::warn!(
                end_ms = instance.end_ms,
                "window instance out of the time range: not published"
            );
            return;
        };
        let hashtags: Vec<HashtagCount> = top_hashtags(&a.hashtags, self.top_n)
            .into_iter()
            .map(|(hashtag, count)| HashtagCount { hashtag, count })
            .collect();
        let tweets: Vec<TweetRank> = top_tweets(&a.tweets, self.top_n)
            .into_iter()
            .map(|(id, s)| {
                let text = if s.text.is_empty() {
                    text_of(agg, id, instance.start_ms, instance.end_ms)
                } else {
                    s.text
                };
                TweetRank {
                    tweet_id: id.to_string(),
                    score: s.score,
                    // Output messages stay bounded whatever the input's texts.
                    text: excerpt(text.as_bytes(), EXCERPT_BYTES).0,
                }
            })
            .collect();
        let encode = |items: Value| -> Value {
            let mut v = serde_json::to_value(TopWire::<Value> {
                window: instance.window.to_string(),
                start,
                end,
                is_final: instance.is_final,
                watermark,
                items: Vec::new(),
            })
            .unwrap_or_default();
            v["items"] = items;
            v
        };
        let lists = [
            (
                TopKind::Hashtags,
                serde_json::to_value(hashtags).unwrap_or_default(),
            ),
            (
                TopKind::Tweets,
                serde_json::to_value(tweets).unwrap_or_default(),
            ),
        ];
        for (kind, items) in lists {
            let key = (instance.window.to_string(), kind, instance.is_final);
            // Updates are sent only when the top-N changed.
            if !instance.is_final
                && self
                    .last_published
                    .get(&key)
                    .is_some_and(|(e, i)| *e == instance.end_ms && *i == items)
            {
                continue;
            }
            self.last_published
                .insert(key, (instance.end_ms, items.clone()));
            out.tops.push(TopMessage {
                kind,
                window: instance.window.to_string(),
                value: encode(items),
            });
        }
    }
}

/// The text of a tweet, from the first bucket in `[start, end)` that has it.
fn text_of(agg: &Aggregator, id: u64, start: i64, end: i64) -> String {
    let b = agg.bucket_ms();
    let mut s = bucket_start_ms(start, b);
    while s < end {
        if let Some(t) = agg.bucket_aggregate(s).and_then(|a| a.tweets.get(&id)) {
            if !t.text.is_empty() {
                return t.text.clone();
            }
        }
        s += b;
    }
    String::new()
}

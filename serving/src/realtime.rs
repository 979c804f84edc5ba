//! The realtime view: the speed layer's per-bucket partials, materialised
//! from its topic (`speed.view`, keyed, newest value wins) and rebuilt from
//! the beginning of the topic on every start.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tweetlambda_core::messages::{ViewKey, ViewRecord, ViewValue};
use tweetlambda_kafka::KafkaOptions;

/// The speed layer's partial aggregates, per bucket.
#[derive(Debug, Clone)]
pub struct RealtimeView {
    /// Bucket start → hashtag → distinct tweets.
    pub hashtags: BTreeMap<i64, HashMap<String, i64>>,
    /// Bucket start → tweet id → score.
    pub tweets: BTreeMap<i64, HashMap<u64, i64>>,
    /// Bucket start → input partition → events the speed layer could no
    /// longer count in that bucket (they came after it dropped the bucket):
    /// its records there are short by them until the batch covers it.
    pub late: BTreeMap<i64, HashMap<String, i64>>,
    texts: HashMap<u64, String>,
    /// Bucket size, for the end of the newest bucket.
    pub bucket_ms: i64,
    /// True once every message present at the last check was read.
    pub caught_up: bool,
    /// Messages of the topic not read yet (at the last check).
    pub lag: i64,
    /// Records applied.
    pub records: u64,
    /// Records that could not be read (logged, skipped).
    pub bad_records: u64,
    /// Set when the topic does not exist (the speed layer never ran).
    pub topic_missing: bool,
    /// Buckets before this were released (a batch version covers them) and
    /// their records are ignored ([`RealtimeView::release_before`]).
    pub released_before: i64,
    /// The earliest bucket any record named, released or not.
    earliest_seen: Option<i64>,
}

impl Default for RealtimeView {
    fn default() -> Self {
        RealtimeView {
            hashtags: BTreeMap::new(),
            tweets: BTreeMap::new(),
            late: BTreeMap::new(),
            texts: HashMap::new(),
            bucket_ms: 0,
            caught_up: false,
            lag: 0,
            records: 0,
            bad_records: 0,
            topic_missing: false,
            released_before: i64::MIN,
            earliest_seen: None,
        }
    }
}

impl RealtimeView {
    /// An empty view of buckets of `bucket_ms`.
    pub fn new(bucket_ms: i64) -> RealtimeView {
        RealtimeView {
            bucket_ms,
            ..RealtimeView::default()
        }
    }

    /// Releases the buckets before `boundary` (and the texts of tweets no
    /// bucket held still names): a batch version with that boundary covers
    /// them, and queries take only buckets from B on from this view. Later
    /// records of such buckets are ignored, so that memory is bounded by the
    /// buckets since B, not by the topic's history. A boundary that moves
    /// back releases nothing; queries over released buckets say so.
    pub fn release_before(&mut self, boundary: i64) {
        if boundary <= self.released_before {
            return;
        }
        self.released_before = boundary;
        self.hashtags = self.hashtags.split_off(&boundary);
        self.tweets = self.tweets.split_off(&boundary);
        self.late = self.late.split_off(&boundary);
        let held: std::collections::HashSet<u64> = self
            .tweets
            .values()
            .flat_map(|m| m.keys().copied())
            .collect();
        self.texts.retain(|id, _| held.contains(id));
    }

    /// Sets a hashtag's count in a bucket (0 removes it).
    pub fn apply_hashtag(&mut self, bucket: i64, tag: &str, count: i64) {
        self.seen(bucket);
        if bucket < self.released_before {
            return;
        }
        let tags = self.hashtags.entry(bucket).or_default();
        if count == 0 {
            tags.remove(tag);
        } else {
            tags.insert(tag.to_string(), count);
        }
    }

    /// Sets a tweet's score in a bucket.
    pub fn apply_tweet(&mut self, bucket: i64, id: u64, score: i64, text: &str) {
        self.seen(bucket);
        if bucket < self.released_before {
            return;
        }
        self.tweets.entry(bucket).or_default().insert(id, score);
        if !text.is_empty() {
            self.texts.entry(id).or_insert_with(|| text.to_string());
        }
    }

    /// Applies one record of the view topic (see
    /// [`tweetlambda_core::messages::ViewRecord`]).
    pub fn apply_record(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), String> {
        let record = ViewRecord::parse(key, value)?;
        match (record.key, record.value) {
            (ViewKey::Hashtag { bucket_ms, hashtag }, ViewValue::Hashtag { count, .. }) => {
                self.apply_hashtag(bucket_ms, &hashtag, count);
            }
            (
                ViewKey::Tweet {
                    bucket_ms,
                    tweet_id,
                },
                ViewValue::Tweet { score, text, .. },
            ) => {
                self.apply_tweet(bucket_ms, tweet_id, score, &text);
            }
            (ViewKey::Late { bucket_ms, source }, ViewValue::Late { events, .. }) => {
                if bucket_ms < self.released_before {
                    self.records += 1;
                    return Ok(());
                }
                self.late
                    .entry(bucket_ms)
                    .or_default()
                    .insert(source, events);
            }
            // ViewRecord::parse refuses a value whose kind differs from the key's.
            _ => return Err("the value's kind does not match the key".into()),
        }
        self.records += 1;
        Ok(())
    }

    fn seen(&mut self, bucket: i64) {
        self.earliest_seen = Some(self.earliest_seen.map_or(bucket, |e| e.min(bucket)));
    }

    /// The earliest bucket the view had a record of, also one released
    /// since: where the speed layer's coverage starts (for holes).
    pub fn first_seen_bucket_ms(&self) -> Option<i64> {
        match (self.earliest_seen, self.first_bucket_ms()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The first bucket held, if any.
    pub fn first_bucket_ms(&self) -> Option<i64> {
        let h = self.hashtags.keys().next().copied();
        let t = self.tweets.keys().next().copied();
        match (h, t) {
            (Some(h), Some(t)) => Some(h.min(t)),
            (h, t) => h.or(t),
        }
    }

    /// The end of the newest bucket held, if any.
    pub fn newest_bucket_end_ms(&self) -> Option<i64> {
        let h = self.hashtags.keys().next_back().copied();
        let t = self.tweets.keys().next_back().copied();
        let newest = match (h, t) {
            (Some(h), Some(t)) => Some(h.max(t)),
            (h, t) => h.or(t),
        };
        newest.map(|b| b + self.bucket_ms.max(1))
    }

    /// A tweet's text, if the view has it.
    pub fn text(&self, id: u64) -> Option<&str> {
        self.texts.get(&id).map(String::as_str)
    }

    /// Late events the view misses in `[from, to)`, and in how many buckets.
    pub fn late_in(&self, from: i64, to: i64) -> (i64, usize) {
        self.late
            .range(from..to)
            .map(|(_, sources)| sources.values().fold(0i64, |a, n| a.saturating_add(*n)))
            .filter(|n| *n > 0)
            .fold((0, 0), |(events, buckets), n| {
                (events.saturating_add(n), buckets + 1)
            })
    }

    /// Buckets held.
    pub fn buckets(&self) -> usize {
        self.hashtags.len().max(self.tweets.len())
    }
}

/// Reads the view topic into `view` until `stop` is set: from the
/// beginning, then following it. Runs on its own thread.
pub fn follow(
    kafka: KafkaOptions,
    topic: String,
    view: Arc<RwLock<RealtimeView>>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = follow_once(&kafka, &topic, &view, &stop) {
            tracing::warn!("realtime view: {e}; retrying in 2 s");
            std::thread::sleep(Duration::from_secs(2));
        }
    }
}

fn follow_once(
    kafka: &KafkaOptions,
    topic: &str,
    view: &RwLock<RealtimeView>,
    stop: &AtomicBool,
) -> Result<(), String> {
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", "tweetlambda-serve")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| format!("create the consumer: {e}"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| format!("metadata of {topic}: {e}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        if let Ok(mut v) = view.write() {
            v.topic_missing = true;
            v.caught_up = true;
        }
        std::thread::sleep(Duration::from_secs(3));
        return Ok(());
    }
    let mut assignment = TopicPartitionList::new();
    for p in &partitions {
        assignment
            .add_partition_offset(topic, *p, Offset::Beginning)
            .map_err(|e| format!("assign: {e}"))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|e| format!("assign: {e}"))?;
    if let Ok(mut v) = view.write() {
        v.topic_missing = false;
        v.caught_up = false;
    }
    tracing::info!(
        topic,
        partitions = partitions.len(),
        "reading the realtime view"
    );
    let mut read: HashMap<i32, i64> = HashMap::new();
    let mut last_check = Instant::now() - Duration::from_secs(10);
    let mut pending: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        // Read what is there (up to a batch), then apply under one lock.
        let mut wait = Duration::from_millis(100);
        while pending.len() < 10_000 {
            match consumer.poll(wait) {
                Some(Ok(m)) => {
                    read.insert(m.partition(), m.offset() + 1);
                    pending.push((
                        m.key().unwrap_or_default().to_vec(),
                        m.payload().map(<[u8]>::to_vec),
                    ));
                    wait = Duration::ZERO;
                }
                Some(Err(e)) => return Err(format!("read {topic}: {e}")),
                None => break,
            }
        }
        if !pending.is_empty() {
            let mut v = view
                .write()
                .map_err(|_| "the view lock is poisoned".to_string())?;
            for (key, value) in pending.drain(..) {
                if let Err(e) = v.apply_record(&key, value.as_deref()) {
                    v.bad_records += 1;
                    tracing::warn!("realtime view record skipped: {e}");
                }
            }
        }
        if last_check.elapsed() >= Duration::from_secs(1) {
            last_check = Instant::now();
            let mut lag = 0;
            for p in &partitions {
                let (_, high) = consumer
                    .fetch_watermarks(topic, *p, Duration::from_secs(5))
                    .map_err(|e| format!("end offsets of {topic}: {e}"))?;
                let position = read.get(p).copied().unwrap_or(0);
                lag += (high - position).max(0);
            }
            if let Ok(mut v) = view.write() {
                v.lag = lag;
                v.caught_up = lag == 0;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_set_values_and_bad_ones_are_refused() {
        let mut v = RealtimeView {
            bucket_ms: 60_000,
            ..RealtimeView::default()
        };
        v.apply_record(
            b"hashtag/60000/rust",
            Some(br#"{"kind":"hashtag","count":3}"#),
        )
        .expect("hashtag");
        v.apply_record(
            b"hashtag/60000/rust",
            Some(br#"{"kind":"hashtag","count":5}"#),
        )
        .expect("newer value");
        v.apply_record(
            b"tweet/120000/42",
            Some(br#"{"kind":"tweet","score":2,"text":"hi"}"#),
        )
        .expect("tweet");
        assert_eq!(v.hashtags[&60_000]["rust"], 5);
        assert_eq!(v.tweets[&120_000][&42], 2);
        assert_eq!(v.text(42), Some("hi"));
        assert_eq!(v.first_bucket_ms(), Some(60_000));
        assert_eq!(v.newest_bucket_end_ms(), Some(180_000));
        assert!(v.apply_record(b"tweet/x/42", Some(b"{}")).is_err());
        assert!(v
            .apply_record(b"hashtag/60000/a", Some(b"not json"))
            .is_err());
        assert!(v.apply_record(b"other", None).is_err());
        assert_eq!(v.records, 3);
    }

    #[test]
    fn buckets_before_a_boundary_are_released_and_stay_out() {
        let mut v = RealtimeView::new(60_000);
        let record = |v: &mut RealtimeView, key: &str, value: &str| {
            v.apply_record(key.as_bytes(), Some(value.as_bytes()))
                .expect("record");
        };
        record(&mut v, "hashtag/0/a", r#"{"kind":"hashtag","count":1}"#);
        record(&mut v, "hashtag/60000/a", r#"{"kind":"hashtag","count":2}"#);
        record(
            &mut v,
            "tweet/0/7",
            r#"{"kind":"tweet","score":1,"text":"old"}"#,
        );
        record(
            &mut v,
            "tweet/0/8",
            r#"{"kind":"tweet","score":1,"text":"both"}"#,
        );
        record(
            &mut v,
            "tweet/60000/8",
            r#"{"kind":"tweet","score":3,"text":"both"}"#,
        );
        record(&mut v, "late/0/hashtags-0", r#"{"kind":"late","events":4}"#);
        v.release_before(60_000);
        assert_eq!(v.first_bucket_ms(), Some(60_000));
        assert_eq!((v.hashtags.len(), v.tweets.len(), v.late.len()), (1, 1, 0));
        assert_eq!(v.text(7), None, "no bucket held names it");
        assert_eq!(v.text(8), Some("both"));
        // Later records of released buckets are ignored (counted as read).
        record(&mut v, "hashtag/0/b", r#"{"kind":"hashtag","count":9}"#);
        record(
            &mut v,
            "tweet/0/9",
            r#"{"kind":"tweet","score":1,"text":"x"}"#,
        );
        assert_eq!(v.first_bucket_ms(), Some(60_000));
        assert_eq!(v.text(9), None);
        // A boundary that moves back releases nothing more.
        v.release_before(0);
        assert_eq!(v.released_before, 60_000);
        // Coverage still starts at the earliest bucket seen (no false hole).
        assert_eq!(v.first_seen_bucket_ms(), Some(0));
    }
}

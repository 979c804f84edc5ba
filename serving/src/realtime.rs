//! The realtime view: the speed layer's per-bucket partials, materialised
//! from its topic (`speed.view`, keyed, newest value wins) and rebuilt from
//! the beginning of the topic on every start.
//!
//! The view also ends the keys a batch version covers: once it has read the
//! topic to its end, it publishes a tombstone (a record with no value) for
//! each key of a bucket before the loaded version's boundary B that the
//! topic still holds, so that a compacted topic keeps the buckets since B,
//! not every bucket ever published. A tombstone read from the topic (from
//! this server or another one) tells that some batch version covers its
//! bucket: the view releases the buckets up to it, and answers over them on
//! a version with an earlier B are flagged.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tweetlambda_core::messages::{ViewKey, ViewRecord, ViewValue};
use tweetlambda_kafka::{KafkaOptions, Producer};

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
    /// Whether keys of released buckets are collected for tombstones.
    pub publish_tombstones: bool,
    /// Keys of released buckets that the topic holds a value of, read or
    /// held since the last [`RealtimeView::take_tombstones`] and not
    /// followed by a tombstone since.
    unended: HashSet<String>,
    /// Tombstones read from the topic.
    pub tombstones_read: u64,
    /// Tombstones this server published and the broker acknowledged.
    pub tombstones_sent: u64,
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
            publish_tombstones: false,
            unended: HashSet::new(),
            tombstones_read: 0,
            tombstones_sent: 0,
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
        let kept = self.hashtags.split_off(&boundary);
        let released = std::mem::replace(&mut self.hashtags, kept);
        let kept = self.tweets.split_off(&boundary);
        let released_tweets = std::mem::replace(&mut self.tweets, kept);
        let kept = self.late.split_off(&boundary);
        let released_late = std::mem::replace(&mut self.late, kept);
        if self.publish_tombstones {
            for (bucket_ms, tags) in released {
                self.unended.extend(
                    tags.into_keys()
                        .map(|hashtag| ViewKey::Hashtag { bucket_ms, hashtag }.to_string()),
                );
            }
            for (bucket_ms, ids) in released_tweets {
                self.unended.extend(ids.into_keys().map(|tweet_id| {
                    ViewKey::Tweet {
                        bucket_ms,
                        tweet_id,
                    }
                    .to_string()
                }));
            }
            for (bucket_ms, sources) in released_late {
                self.unended.extend(
                    sources
                        .into_keys()
                        .map(|source| ViewKey::Late { bucket_ms, source }.to_string()),
                );
            }
        }
        let held: std::collections::HashSet<u64> = self
            .tweets
            .values()
            .flat_map(|m| m.keys().copied())
            .collect();
        self.texts.retain(|id, _| held.contains(id));
    }

    /// Sets a hashtag's count in a bucket (a 0 is kept, so that its key is
    /// ended with the bucket; sums and rankings leave it out).
    pub fn apply_hashtag(&mut self, bucket: i64, tag: &str, count: i64) {
        self.seen(bucket);
        if bucket < self.released_before {
            return;
        }
        self.hashtags
            .entry(bucket)
            .or_default()
            .insert(tag.to_string(), count);
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
    /// [`tweetlambda_core::messages::ViewRecord`]); a record with no value
    /// is a tombstone.
    pub fn apply_record(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), String> {
        let Some(value) = value else {
            return self.apply_tombstone(key);
        };
        let record = ViewRecord::parse(key, Some(value))?;
        let bucket = record.key.bucket_ms();
        if bucket < self.released_before {
            // A batch version covers it: not held, and to be ended.
            self.seen(bucket);
            if self.publish_tombstones {
                self.unended
                    .insert(String::from_utf8_lossy(key).into_owned());
            }
            self.records += 1;
            return Ok(());
        }
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

    /// A tombstone: whoever wrote it had loaded a batch version whose B is
    /// after the key's bucket, so the buckets up to that one are covered by
    /// the batch and may have lost records here. They are released (up to
    /// the bucket's start + 1 ms: keys name bucket starts, so this does not
    /// depend on this server's `--bucket`): a query on a version with an
    /// earlier B is flagged for them, not answered from what is left of
    /// them. The key itself is ended already.
    fn apply_tombstone(&mut self, key: &[u8]) -> Result<(), String> {
        let parsed = ViewKey::parse(key)?;
        let bucket = parsed.bucket_ms();
        self.seen(bucket);
        self.release_before(bucket.saturating_add(1));
        self.unended.remove(String::from_utf8_lossy(key).as_ref());
        self.tombstones_read += 1;
        self.records += 1;
        Ok(())
    }

    /// Up to `at_most` keys to publish tombstones for, now (then
    /// forgotten: a failed one is given back by
    /// [`RealtimeView::tombstone_failed`]).
    pub fn take_tombstones(&mut self, at_most: usize) -> Vec<String> {
        let keys: Vec<String> = self.unended.iter().take(at_most).cloned().collect();
        for key in &keys {
            self.unended.remove(key);
        }
        keys
    }

    /// A tombstone the broker did not take: published again later.
    pub fn tombstone_failed(&mut self, key: String) {
        self.unended.insert(key);
    }

    /// Tombstones waiting to be published.
    pub fn tombstones_waiting(&self) -> usize {
        self.unended.len()
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
/// beginning, then following it; once read to its end, publishes the
/// view's tombstones (when `view.publish_tombstones`). Runs on its own
/// thread.
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
    let publishes = view.read().is_ok_and(|v| v.publish_tombstones);
    let producer = if publishes {
        let p = Producer::new(kafka).map_err(|e| format!("create the producer: {e}"))?;
        p.keep_failed();
        Some(p)
    } else {
        None
    };
    let mut own = OwnTombstones::default();
    let mut retry_at = Instant::now();
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
                    if m.payload().is_none() {
                        own.read_back(m.key().unwrap_or_default(), m.partition());
                    }
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
                lag += (high - position - own.unread_in(*p)).max(0);
            }
            if let Ok(mut v) = view.write() {
                v.lag = lag;
                v.caught_up = lag == 0;
            }
        }
        if let Some(producer) = producer.as_ref().filter(|_| Instant::now() >= retry_at) {
            let partitions = i32::try_from(partitions.len()).unwrap_or(i32::MAX);
            if !publish_tombstones(producer, topic, partitions, view, &mut own)? {
                retry_at = Instant::now() + TOMBSTONE_RETRY;
            }
        }
    }
    Ok(())
}

/// The tombstones this server published, acknowledged and not read back
/// yet: the lag leaves them out, so that ending keys does not make the view
/// look behind its topic (and its answers partial).
#[derive(Default)]
struct OwnTombstones {
    keys: HashSet<String>,
    per_partition: HashMap<i32, i64>,
}

impl OwnTombstones {
    fn acknowledged(&mut self, key: String, partition: i32) {
        if self.keys.insert(key) {
            *self.per_partition.entry(partition).or_default() += 1;
        }
    }

    fn read_back(&mut self, key: &[u8], partition: i32) {
        if self.keys.remove(String::from_utf8_lossy(key).as_ref()) {
            if let Some(n) = self.per_partition.get_mut(&partition) {
                *n -= 1;
            }
        }
    }

    fn unread_in(&self, partition: i32) -> i64 {
        self.per_partition.get(&partition).copied().unwrap_or(0)
    }
}

/// Tombstones sent in one round, at most.
const TOMBSTONE_BATCH: usize = 20_000;

/// How long tombstones wait after a failed round before the next one.
const TOMBSTONE_RETRY: Duration = Duration::from_secs(10);

/// How long the reader waits for a round's tombstones to be acknowledged
/// (it reads nothing meanwhile).
const TOMBSTONE_FLUSH: Duration = Duration::from_secs(10);

/// Sends the view's tombstones once it has read its topic to the end (a
/// tombstone further on in the topic would make one redundant), at most
/// `TOMBSTONE_BATCH` a round, and waits for their acknowledgement; those
/// the broker did not take are given back to the view, to be sent again
/// after `TOMBSTONE_RETRY` (unless no retry can pass). False when the round
/// failed.
fn publish_tombstones(
    producer: &Producer,
    topic: &str,
    partitions: i32,
    view: &RwLock<RealtimeView>,
    own: &mut OwnTombstones,
) -> Result<bool, String> {
    let keys = {
        let mut v = view
            .write()
            .map_err(|_| "the view lock is poisoned".to_string())?;
        if !v.caught_up || v.tombstones_waiting() == 0 {
            return Ok(true);
        }
        v.take_tombstones(TOMBSTONE_BATCH)
    };
    tracing::info!(
        tombstones = keys.len(),
        "ending the realtime view's keys of buckets the batch version covers"
    );
    let mut queued = 0;
    for key in &keys {
        if let Err(e) = producer.send_tombstone_blocking(topic, key) {
            tracing::warn!("cannot queue a tombstone of the realtime view: {e}; retried later");
            break;
        }
        queued += 1;
    }
    let flushed = producer.flush_within(TOMBSTONE_FLUSH);
    if let Err(e) = &flushed {
        tracing::warn!("tombstones of the realtime view: {e}; retried later");
    }
    let failed: HashMap<String, bool> = producer
        .take_failed()
        .into_iter()
        .map(|m| {
            (
                String::from_utf8_lossy(&m.key).into_owned(),
                m.is_permanent(),
            )
        })
        .collect();
    let mut v = view
        .write()
        .map_err(|_| "the view lock is poisoned".to_string())?;
    let (total, mut refused, mut acknowledged) = (keys.len(), 0, 0u64);
    for (i, key) in keys.into_iter().enumerate() {
        if i >= queued {
            v.tombstone_failed(key);
            continue;
        }
        match failed.get(&key) {
            // Still in flight after the wait: not counted as acknowledged
            // (it may land later, and then counts in the lag like any
            // record; if it fails, the next start ends the key).
            None if flushed.is_err() => {}
            None => {
                let partition = tweetlambda_kafka::partition_for_key(key.as_bytes(), partitions);
                own.acknowledged(key, partition);
                v.tombstones_sent += 1;
                acknowledged += 1;
            }
            Some(false) => v.tombstone_failed(key),
            Some(true) => refused += 1,
        }
    }
    metrics::counter!("serving_view_tombstones_total").increment(acknowledged);
    if refused > 0 {
        tracing::error!(
            refused,
            "the broker refuses tombstones of the realtime view; left for the next start"
        );
    }
    Ok(queued == total && flushed.is_ok() && failed.is_empty())
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

    fn sorted(mut keys: Vec<String>) -> Vec<String> {
        keys.sort();
        keys
    }

    #[test]
    fn keys_of_released_buckets_are_ended_once_unless_a_tombstone_follows() {
        let mut v = RealtimeView::new(60_000);
        v.publish_tombstones = true;
        let record = |v: &mut RealtimeView, key: &str, value: &str| {
            v.apply_record(key.as_bytes(), Some(value.as_bytes()))
                .expect("record");
        };
        let tag = r#"{"kind":"hashtag","count":1}"#;
        record(&mut v, "hashtag/0/a", tag);
        record(&mut v, "hashtag/0/gone", r#"{"kind":"hashtag","count":0}"#);
        record(&mut v, "tweet/0/7", r#"{"kind":"tweet","score":1}"#);
        record(&mut v, "late/0/tweets-1", r#"{"kind":"late","events":2}"#);
        record(&mut v, "hashtag/60000/a", tag);
        assert!(
            v.take_tombstones(usize::MAX).is_empty(),
            "nothing is released yet"
        );

        // A version with B = 60000: every key of bucket 0, also the one
        // whose count went to 0.
        v.release_before(60_000);
        assert_eq!(
            sorted(v.take_tombstones(usize::MAX)),
            [
                "hashtag/0/a",
                "hashtag/0/gone",
                "late/0/tweets-1",
                "tweet/0/7"
            ]
        );
        assert!(v.take_tombstones(usize::MAX).is_empty(), "taken once");

        // A later record of a released bucket is ended again, unless a
        // tombstone of its key follows it in the topic.
        record(&mut v, "hashtag/0/b", tag);
        record(&mut v, "hashtag/0/c", tag);
        v.apply_record(b"hashtag/0/c", None).expect("tombstone");
        assert_eq!(v.take_tombstones(usize::MAX), ["hashtag/0/b"]);
        v.tombstone_failed("hashtag/0/b".into());
        assert_eq!(
            v.take_tombstones(usize::MAX),
            ["hashtag/0/b"],
            "a failed one comes back"
        );
        assert_eq!((v.tombstones_read, v.bad_records), (1, 0));
        assert!(v.apply_record(b"not a key", None).is_err());

        // Without publishing, nothing is collected.
        let mut quiet = RealtimeView::new(60_000);
        record(&mut quiet, "hashtag/0/a", tag);
        quiet.release_before(60_000);
        record(&mut quiet, "hashtag/0/b", tag);
        assert!(quiet.take_tombstones(usize::MAX).is_empty());
    }

    #[test]
    fn a_tombstone_releases_its_bucket_so_an_older_version_flags_it() {
        // A server on a version with B = 60000 reads the topic after a
        // server on a later version ended the keys of buckets 60000 and
        // 120000: what is left of them is not answered from.
        let mut v = RealtimeView::new(60_000);
        v.publish_tombstones = true;
        v.release_before(60_000);
        let tag = r#"{"kind":"hashtag","count":1}"#;
        for key in ["hashtag/60000/a", "hashtag/120000/a", "hashtag/180000/a"] {
            v.apply_record(key.as_bytes(), Some(tag.as_bytes()))
                .expect("record");
        }
        v.apply_record(b"hashtag/120000/a", None)
            .expect("tombstone");
        // Released up to the tombstone's bucket, whatever this server's
        // bucket size: keys name bucket starts.
        assert_eq!(v.released_before, 120_001);
        assert_eq!(v.first_bucket_ms(), Some(180_000));
        // The key read ended is not ended again; the other released one is.
        assert_eq!(v.take_tombstones(usize::MAX), ["hashtag/60000/a"]);
        // An older tombstone moves nothing back.
        v.apply_record(b"hashtag/0/a", None).expect("tombstone");
        assert_eq!(v.released_before, 120_001);
        assert_eq!(v.first_seen_bucket_ms(), Some(0));
    }
}

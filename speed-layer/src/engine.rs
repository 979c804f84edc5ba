//! The speed layer's state machine, free of Kafka: events in, messages out.
//!
//! - **Buckets** come from [`Aggregator`] (shared with the batch layer).
//! - **Watermark**: for each input partition, the newest event time seen;
//!   the watermark is the oldest of those (over partitions that received
//!   something within the idle timeout) minus the allowed lateness, and
//!   never goes back. An event older than the watermark is *late*: counted
//!   and logged, not applied (the next batch run counts it). Because each
//!   partition is in event-time order up to the allowed lateness, the events
//!   a window receives are the same whatever the interleaving of partitions,
//!   so results do not depend on timing, restarts or the number of instances.
//! - **Idle input**: when no partition received anything for the idle
//!   timeout, the input is taken as ended and the watermark moves to the end
//!   of the newest bucket, closing every window that holds data.
//! - **Windows**: each window of size S has one instance per bucket
//!   boundary E, covering `[E − S, E)`. On every tick the instance holding
//!   the newest event is published when its top-N changed (`final: false`),
//!   and every instance whose end the watermark has passed is published once
//!   with `final: true`.
//! - **Realtime view**: every bucket aggregate changed since the last tick.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tweetlambda_core::aggregate::{
    top_hashtags, top_tweets, Aggregator, Applied, BucketAggregate, TweetScore,
};
use tweetlambda_core::{bucket_start_ms, format_rfc3339};

use crate::config::WindowSpec;

/// One input event, already decoded.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A tweet with its own engagement score.
    Tweet {
        /// Tweet id.
        id: u64,
        /// Event time, ms.
        t_ms: i64,
        /// Engagement score from the source's counts.
        score: i64,
        /// Text.
        text: &'a str,
    },
    /// One hashtag of one tweet.
    Hashtag {
        /// Tweet id.
        tweet_id: u64,
        /// Event time, ms.
        t_ms: i64,
        /// Normalised hashtag.
        hashtag: &'a str,
    },
    /// A retweet of `original`, created at `t_ms`.
    Retweet {
        /// The retweeted tweet.
        original: u64,
        /// The retweet.
        retweet: u64,
        /// Event time of the retweet, ms.
        t_ms: i64,
        /// The original's text.
        text: &'a str,
    },
}

impl Event<'_> {
    fn time_ms(&self) -> i64 {
        match self {
            Event::Tweet { t_ms, .. }
            | Event::Hashtag { t_ms, .. }
            | Event::Retweet { t_ms, .. } => *t_ms,
        }
    }
}

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Counted.
    Applied,
    /// Already counted before.
    Duplicate,
    /// Older than the watermark: not counted here.
    Late,
}

/// Which top-N a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// The JSON value.
    pub value: Value,
}

/// A record for the realtime view topic.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewRecord {
    /// `hashtag/<bucket start ms>/<hashtag>` or `tweet/<bucket start ms>/<tweet id>`.
    pub key: String,
    /// The partial aggregate as JSON text.
    pub value: String,
}

/// A hashtag record of the realtime view.
#[derive(serde::Serialize)]
struct HashtagView<'a> {
    kind: &'static str,
    bucket_start: Option<String>,
    hashtag: &'a str,
    count: i64,
}

/// A tweet record of the realtime view.
#[derive(serde::Serialize)]
struct TweetView<'a> {
    kind: &'static str,
    bucket_start: Option<String>,
    tweet_id: &'a str,
    score: i64,
    text: &'a str,
}

/// What a tick produced.
#[derive(Debug, Default)]
pub struct TickOutput {
    /// Top-N messages.
    pub tops: Vec<TopMessage>,
    /// Realtime view records.
    pub view: Vec<ViewRecord>,
    /// Window instances finalised by this tick.
    pub finals: usize,
}

/// An input partition: topic index and partition number.
pub type Source = (u8, i32);

/// Topic index of the internal retweets topic. Its partitions are filled by
/// the speed layer itself, interleaving the tweets partitions, so they are
/// not in event-time order: their clock comes from markers instead (see
/// [`Engine::apply_marker`]).
pub const RETWEETS: u8 = 2;

#[derive(Debug, Clone, Copy)]
struct Clock {
    /// Newest event time read from the partition; none before the first.
    max_ms: Option<i64>,
    /// When the partition last delivered an event.
    last_seen: Instant,
    /// The partition has been read to its end.
    at_end: bool,
}

/// The running sum of the buckets of a window's current instance
/// `[end − size, end)`, kept up to date event by event so that a tick does
/// not sum the buckets again.
#[derive(Debug, Default)]
struct WindowSum {
    size_ms: i64,
    end: i64,
    sum: BucketAggregate,
    /// Tweet id → number of buckets of the window it has a score in, so that
    /// a tweet leaves the sum when its last bucket leaves the window.
    tweet_buckets: HashMap<u64, u32>,
}

impl WindowSum {
    fn new(size_ms: i64) -> WindowSum {
        WindowSum {
            size_ms,
            end: i64::MIN,
            ..WindowSum::default()
        }
    }

    /// Moves the window to end at `end`, adding the buckets that enter and
    /// removing those that leave; sums again from the buckets when that is
    /// not possible (first use, a jump, or buckets already dropped).
    fn advance(&mut self, agg: &Aggregator, evicted_before: i64, end: i64) {
        if self.end == end {
            return;
        }
        let b = agg.bucket_ms();
        let (old_start, new_start) = (self.end.saturating_sub(self.size_ms), end - self.size_ms);
        let incremental = self.end != i64::MIN
            && end > self.end
            && old_start >= evicted_before
            && end - self.end < self.size_ms;
        if incremental {
            let mut s = old_start;
            while s < new_start {
                if let Some(a) = agg.bucket_aggregate(s) {
                    self.remove_bucket(a);
                }
                s += b;
            }
            let mut s = self.end;
            while s < end {
                if let Some(a) = agg.bucket_aggregate(s) {
                    self.add_bucket(a);
                }
                s += b;
            }
        } else {
            *self = WindowSum::new(self.size_ms);
            for start in agg
                .bucket_starts()
                .filter(|s| *s >= new_start && *s < end)
                .collect::<Vec<_>>()
            {
                if let Some(a) = agg.bucket_aggregate(start) {
                    self.add_bucket(a);
                }
            }
        }
        self.end = end;
    }

    /// Adds a bucket. Texts are not copied (the tick looks up the texts of
    /// the few tweets it publishes).
    fn add_bucket(&mut self, a: &BucketAggregate) {
        for (tag, count) in &a.hashtags {
            match self.sum.hashtags.get_mut(tag) {
                Some(c) => *c += count,
                None => {
                    self.sum.hashtags.insert(tag.clone(), *count);
                }
            }
        }
        for (id, s) in &a.tweets {
            self.add_score(*id, s.score);
            *self.tweet_buckets.entry(*id).or_default() += 1;
        }
    }

    fn add_score(&mut self, id: u64, score: i64) {
        match self.sum.tweets.get_mut(&id) {
            Some(s) => s.score += score,
            None => {
                self.sum.tweets.insert(
                    id,
                    TweetScore {
                        score,
                        text: String::new(),
                    },
                );
            }
        }
    }

    fn remove_bucket(&mut self, a: &BucketAggregate) {
        for (tag, c) in &a.hashtags {
            if let Some(x) = self.sum.hashtags.get_mut(tag) {
                *x -= c;
                if *x <= 0 {
                    self.sum.hashtags.remove(tag);
                }
            }
        }
        for (id, s) in &a.tweets {
            if let Some(x) = self.sum.tweets.get_mut(id) {
                x.score -= s.score;
            }
            if let Some(n) = self.tweet_buckets.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    self.tweet_buckets.remove(id);
                    self.sum.tweets.remove(id);
                }
            }
        }
    }
}

/// The state of one speed-layer instance.
#[derive(Debug)]
pub struct Engine {
    agg: Aggregator,
    windows: Vec<WindowSpec>,
    lateness_ms: i64,
    top_n: usize,
    idle_timeout: Duration,
    clocks: HashMap<Source, Clock>,
    watermark: Option<i64>,
    max_event_ms: Option<i64>,
    first_bucket: Option<i64>,
    finalized_until: HashMap<String, i64>,
    last_published: HashMap<(String, bool), (i64, Value)>,
    dirty_hashtags: HashMap<i64, HashSet<String>>,
    dirty_tweets: HashMap<i64, HashSet<u64>>,
    late_events: u64,
    /// Current instance of each window (same order as `windows`).
    current: Vec<WindowSum>,
    /// The next instance of each window to finalise, kept the same way.
    finals: Vec<WindowSum>,
    /// Buckets before this were dropped from memory.
    evicted_before: i64,
    /// Partitions of the tweets topic (the sources of retweet markers).
    tweets_partitions: i32,
    /// Retweets partition → tweets partition → the marker's time (none: that
    /// tweets partition had no data yet).
    markers: HashMap<i32, HashMap<i32, Option<i64>>>,
}

impl Engine {
    /// A new, empty engine.
    pub fn new(
        bucket_ms: i64,
        windows: Vec<WindowSpec>,
        lateness_ms: i64,
        top_n: usize,
        idle_timeout: Duration,
    ) -> Engine {
        Engine {
            agg: Aggregator::new(bucket_ms),
            windows,
            lateness_ms: lateness_ms.max(0),
            top_n,
            idle_timeout,
            clocks: HashMap::new(),
            watermark: None,
            max_event_ms: None,
            first_bucket: None,
            finalized_until: HashMap::new(),
            last_published: HashMap::new(),
            dirty_hashtags: HashMap::new(),
            dirty_tweets: HashMap::new(),
            late_events: 0,
            current: Vec::new(),
            finals: Vec::new(),
            evicted_before: i64::MIN,
            tweets_partitions: 0,
            markers: HashMap::new(),
        }
    }

    /// Forgets everything (after a change of partition assignment the state
    /// is rebuilt from the input).
    pub fn reset(&mut self) {
        let tweets_partitions = self.tweets_partitions;
        *self = Engine::new(
            self.agg.bucket_ms(),
            std::mem::take(&mut self.windows),
            self.lateness_ms,
            self.top_n,
            self.idle_timeout,
        );
        self.tweets_partitions = tweets_partitions;
    }

    /// Sets the number of partitions of the tweets topic, whose markers a
    /// retweets partition waits for.
    pub fn set_tweets_partitions(&mut self, n: i32) {
        self.tweets_partitions = n;
    }

    /// The marker a tweets partition's reader sends along the retweets
    /// topic: `Some(Some(t))`, its newest event time (every retweet it
    /// re-keys later is at least that recent, up to the allowed lateness);
    /// `Some(None)` when it has had no tweet and is idle at its end (it
    /// constrains nothing); `None` when there is nothing to say yet.
    pub fn tweets_marker(&self, tweets_partition: i32, now: Instant) -> Option<Option<i64>> {
        let c = self.clocks.get(&(0, tweets_partition))?;
        match c.max_ms {
            Some(t) => Some(Some(t)),
            None if c.at_end && now.duration_since(c.last_seen) >= self.idle_timeout => Some(None),
            None => None,
        }
    }

    /// A marker read from retweets partition `partition`: all retweets
    /// re-keyed from tweets partition `from` before it are older than
    /// `time_ms` plus the allowed lateness. The partition's clock is the
    /// oldest marker over all tweets partitions.
    pub fn apply_marker(&mut self, partition: i32, from: i32, time_ms: Option<i64>, now: Instant) {
        let markers = self.markers.entry(partition).or_default();
        markers.insert(from, time_ms);
        let complete = (0..self.tweets_partitions).all(|p| markers.contains_key(&p));
        let clock = self.clocks.entry((RETWEETS, partition)).or_insert(Clock {
            max_ms: None,
            last_seen: now,
            at_end: false,
        });
        clock.last_seen = now;
        if complete {
            // A tweets partition without data constrains nothing.
            let oldest = markers
                .values()
                .flatten()
                .min()
                .copied()
                .unwrap_or(i64::MAX);
            clock.max_ms = Some(oldest);
        }
    }

    /// Late events so far.
    pub fn late_events(&self) -> u64 {
        self.late_events
    }

    /// The current watermark (ms), once there is one.
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// The newest event time seen (ms).
    pub fn max_event_ms(&self) -> Option<i64> {
        self.max_event_ms
    }

    /// Buckets held in memory.
    pub fn buckets_held(&self) -> usize {
        self.agg.len()
    }

    /// Applies one event read from `source` at wall time `now`.
    pub fn apply(&mut self, source: Source, event: Event<'_>, now: Instant) -> Outcome {
        let t = event.time_ms();
        let clock = self.clocks.entry(source).or_insert(Clock {
            max_ms: None,
            last_seen: now,
            at_end: false,
        });
        if source.0 != RETWEETS {
            clock.max_ms = Some(clock.max_ms.map_or(t, |m| m.max(t)));
        }
        clock.last_seen = now;
        clock.at_end = false;
        self.max_event_ms = Some(self.max_event_ms.map_or(t, |m| m.max(t)));
        if self.watermark.is_some_and(|w| t < w) {
            // Counted already (a redelivery): a duplicate, not a late event.
            let seen = match event {
                Event::Tweet { id, t_ms, .. } => self.agg.has_tweet(id, t_ms),
                Event::Hashtag {
                    tweet_id,
                    t_ms,
                    hashtag,
                } => self.agg.has_hashtag(tweet_id, t_ms, hashtag),
                Event::Retweet {
                    original,
                    retweet,
                    t_ms,
                    ..
                } => self.agg.has_retweet(original, retweet, t_ms),
            };
            if seen {
                return Outcome::Duplicate;
            }
            self.late_events += 1;
            return Outcome::Late;
        }
        let bucket = bucket_start_ms(t, self.agg.bucket_ms());
        let (bucket, applied) = match event {
            Event::Tweet {
                id,
                t_ms,
                score,
                text,
            } => {
                let had = self.tweet_in_bucket(bucket, id);
                let r = self.agg.apply_tweet(id, t_ms, score, text);
                if r.1 == Applied::New {
                    self.dirty_tweets.entry(r.0).or_default().insert(id);
                    self.add_to_current_tweets(bucket, id, score, had);
                }
                r
            }
            Event::Hashtag {
                tweet_id,
                t_ms,
                hashtag,
            } => {
                let r = self.agg.apply_hashtag(tweet_id, t_ms, hashtag);
                if r.1 == Applied::New {
                    let dirty = self.dirty_hashtags.entry(r.0).or_default();
                    if !dirty.contains(hashtag) {
                        dirty.insert(hashtag.to_string());
                    }
                    for w in self.current.iter_mut() {
                        if bucket < w.end && bucket >= w.end - w.size_ms {
                            match w.sum.hashtags.get_mut(hashtag) {
                                Some(c) => *c += 1,
                                None => {
                                    w.sum.hashtags.insert(hashtag.to_string(), 1);
                                }
                            }
                        }
                    }
                }
                r
            }
            Event::Retweet {
                original,
                retweet,
                t_ms,
                text,
            } => {
                let had = self.tweet_in_bucket(bucket, original);
                let r = self.agg.apply_retweet(original, retweet, t_ms, text);
                if r.1 == Applied::New {
                    self.dirty_tweets.entry(r.0).or_default().insert(original);
                    self.add_to_current_tweets(bucket, original, 1, had);
                }
                r
            }
        };
        self.first_bucket = Some(self.first_bucket.map_or(bucket, |b| b.min(bucket)));
        match applied {
            Applied::New => Outcome::Applied,
            Applied::Duplicate => Outcome::Duplicate,
        }
    }

    fn tweet_in_bucket(&self, bucket: i64, id: u64) -> bool {
        self.agg
            .bucket_aggregate(bucket)
            .is_some_and(|a| a.tweets.contains_key(&id))
    }

    /// Adds a tweet score to the current window instances holding `bucket`;
    /// `had` tells whether the tweet already had a score in that bucket.
    /// (Texts are looked up when published, not copied into the sums.)
    fn add_to_current_tweets(&mut self, bucket: i64, id: u64, score: i64, had: bool) {
        for w in self.current.iter_mut() {
            if bucket < w.end && bucket >= w.end - w.size_ms {
                w.add_score(id, score);
                if !had {
                    *w.tweet_buckets.entry(id).or_default() += 1;
                }
            }
        }
    }

    /// Moves each window's current instance to end at `end`, adding the
    /// buckets that enter and removing those that leave.
    fn advance_current(&mut self, end: i64) {
        if self.current.len() != self.windows.len() {
            self.current = self
                .windows
                .iter()
                .map(|w| WindowSum::new(w.size_ms))
                .collect();
        }
        for cur in self.current.iter_mut() {
            cur.advance(&self.agg, self.evicted_before, end);
        }
    }

    /// Registers the partitions this instance reads: until each has delivered
    /// an event or been read to its end and stayed idle, the watermark waits
    /// for it.
    pub fn assign(&mut self, sources: &[Source], now: Instant) {
        for s in sources {
            self.clocks.entry(*s).or_insert(Clock {
                max_ms: None,
                last_seen: now,
                at_end: false,
            });
        }
    }

    /// The partitions known to the engine.
    pub fn sources(&self) -> Vec<Source> {
        self.clocks.keys().copied().collect()
    }

    /// Records whether a partition has been read to its current end.
    pub fn set_at_end(&mut self, source: Source, at_end: bool) {
        if let Some(c) = self.clocks.get_mut(&source) {
            c.at_end = at_end;
        }
    }

    fn update_watermark(&mut self, now: Instant) {
        // A partition is idle once read to its end and quiet for the idle
        // timeout; idle partitions do not hold the watermark back. The
        // retweets partitions follow their markers while any input is active.
        let idle = |c: &Clock| c.at_end && now.duration_since(c.last_seen) >= self.idle_timeout;
        let inputs_active = self.clocks.iter().any(|(s, c)| s.0 != RETWEETS && !idle(c));
        let active: Vec<Option<i64>> = self
            .clocks
            .iter()
            .filter(|(s, c)| {
                if s.0 == RETWEETS {
                    inputs_active
                } else {
                    !idle(c)
                }
            })
            .map(|(_, c)| c.max_ms)
            .collect();
        if active.iter().any(Option::is_none) {
            return; // a partition has not delivered anything yet
        }
        let retweets_caught_up = self.clocks.iter().all(|(s, c)| s.0 != RETWEETS || c.at_end);
        let candidate = match (active.into_iter().flatten().min(), self.newest_known()) {
            (Some(oldest), _) => Some(oldest.saturating_sub(self.lateness_ms)),
            // Every input partition is idle and every re-keyed retweet has
            // been read: the input has ended for now; close every window
            // that holds data.
            (None, Some(newest)) if retweets_caught_up => {
                Some(bucket_start_ms(newest, self.agg.bucket_ms()) + self.agg.bucket_ms())
            }
            _ => None,
        };
        if let Some(c) = candidate {
            self.watermark = Some(self.watermark.map_or(c, |w| w.max(c)));
        }
    }

    /// The newest event time known: seen here, or reported by a marker of
    /// any tweets partition (also those other instances read), so that at
    /// the end of the input every instance closes the same windows.
    fn newest_known(&self) -> Option<i64> {
        let marked = self
            .markers
            .values()
            .flat_map(|m| m.values().flatten())
            .max()
            .copied();
        match (self.max_event_ms, marked) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// True when every input partition has been read to its end and stayed
    /// quiet for the idle timeout, and every window holding data is final.
    pub fn is_drained(&self, now: Instant) -> bool {
        let idle = !self.clocks.is_empty()
            && self.clocks.iter().all(|(s, c)| {
                c.at_end
                    && (s.0 == RETWEETS || now.duration_since(c.last_seen) >= self.idle_timeout)
            });
        let b = self.agg.bucket_ms();
        let newest_end = self.newest_known().map(|m| bucket_start_ms(m, b) + b);
        idle && newest_end.is_some_and(|end| {
            self.windows
                .iter()
                .all(|w| self.finalized_until.get(&w.name).is_some_and(|f| *f >= end))
        })
    }

    /// Publishes what changed since the last tick: finals for windows the
    /// watermark passed, updates of the current windows, the realtime view.
    pub fn tick(&mut self, now: Instant) -> TickOutput {
        let mut out = TickOutput::default();
        self.update_watermark(now);
        let (Some(first), Some(newest), Some(watermark)) =
            (self.first_bucket, self.max_event_ms, self.watermark)
        else {
            return out;
        };
        let b = self.agg.bucket_ms();
        let current_end = bucket_start_ms(newest, b) + b;
        self.advance_current(current_end);
        for (i, w) in self.windows.clone().into_iter().enumerate() {
            // Finals.
            let mut end = self
                .finalized_until
                .get(&w.name)
                .map_or(first + b, |e| e + b);
            while end <= watermark {
                if self
                    .agg
                    .bucket_starts()
                    .any(|s| s >= end - w.size_ms && s < end)
                {
                    if self.finals.len() != self.windows.len() {
                        self.finals = self
                            .windows
                            .iter()
                            .map(|w| WindowSum::new(w.size_ms))
                            .collect();
                    }
                    self.finals[i].advance(&self.agg, self.evicted_before, end);
                    let aggregate = std::mem::take(&mut self.finals[i].sum);
                    self.publish(&mut out, &w, end, true, watermark, &aggregate);
                    self.finals[i].sum = aggregate;
                    out.finals += 1;
                    self.finalized_until.insert(w.name.clone(), end);
                    end += b;
                } else {
                    // Nothing in this window: jump to the next bucket with data.
                    match self.agg.bucket_starts().find(|s| *s >= end) {
                        Some(next) => end = next + b,
                        None => break,
                    }
                }
            }
            // The current window instance.
            if self
                .finalized_until
                .get(&w.name)
                .is_none_or(|f| current_end > *f)
            {
                let aggregate = std::mem::take(&mut self.current[i].sum);
                self.publish(&mut out, &w, current_end, false, watermark, &aggregate);
                self.current[i].sum = aggregate;
            }
        }
        self.flush_view(&mut out);
        self.evict();
        out
    }

    /// The text of a tweet, from the first bucket in `[start, end)` that has it.
    fn text_of(&self, id: u64, start: i64, end: i64) -> String {
        let b = self.agg.bucket_ms();
        let mut s = bucket_start_ms(start, b);
        while s < end {
            if let Some(t) = self.agg.bucket_aggregate(s).and_then(|a| a.tweets.get(&id)) {
                if !t.text.is_empty() {
                    return t.text.clone();
                }
            }
            s += b;
        }
        String::new()
    }

    fn publish(
        &mut self,
        out: &mut TickOutput,
        w: &WindowSpec,
        end: i64,
        fin: bool,
        watermark: i64,
        a: &BucketAggregate,
    ) {
        let hashtags: Vec<Value> = top_hashtags(&a.hashtags, self.top_n)
            .into_iter()
            .map(|(hashtag, count)| json!({"hashtag": hashtag, "count": count}))
            .collect();
        let tweets: Vec<Value> = top_tweets(&a.tweets, self.top_n)
            .into_iter()
            .map(|(id, s)| {
                let text = if s.text.is_empty() {
                    self.text_of(id, end - w.size_ms, end)
                } else {
                    s.text
                };
                json!({"tweet_id": id.to_string(), "score": s.score, "text": text})
            })
            .collect();
        for (kind, items) in [(TopKind::Hashtags, hashtags), (TopKind::Tweets, tweets)] {
            let items = Value::Array(items);
            let key = (format!("{}/{:?}", w.name, kind), fin);
            // Updates are sent only when the top-N changed.
            if !fin
                && self
                    .last_published
                    .get(&key)
                    .is_some_and(|(e, i)| *e == end && *i == items)
            {
                continue;
            }
            self.last_published.insert(key, (end, items.clone()));
            let time = |ms: i64| tweetlambda_core::time::from_millis(ms).map(format_rfc3339);
            out.tops.push(TopMessage {
                kind,
                window: w.name.clone(),
                value: json!({
                    "window": w.name,
                    "start": time(end - w.size_ms),
                    "end": time(end),
                    "final": fin,
                    "watermark": time(watermark),
                    "items": items,
                }),
            });
        }
    }

    fn flush_view(&mut self, out: &mut TickOutput) {
        let time = |ms: i64| tweetlambda_core::time::from_millis(ms).map(format_rfc3339);
        for (bucket, tags) in std::mem::take(&mut self.dirty_hashtags) {
            let Some(a) = self.agg.bucket_aggregate(bucket) else {
                continue;
            };
            for tag in tags {
                let count = a.hashtags.get(&tag).copied().unwrap_or(0);
                let value = HashtagView {
                    kind: "hashtag",
                    bucket_start: time(bucket),
                    hashtag: &tag,
                    count,
                };
                out.view.push(ViewRecord {
                    key: format!("hashtag/{bucket}/{tag}"),
                    value: serde_json::to_string(&value).unwrap_or_default(),
                });
            }
        }
        for (bucket, ids) in std::mem::take(&mut self.dirty_tweets) {
            let Some(a) = self.agg.bucket_aggregate(bucket) else {
                continue;
            };
            for id in ids {
                let Some(s) = a.tweets.get(&id) else { continue };
                let tweet_id = id.to_string();
                let value = TweetView {
                    kind: "tweet",
                    bucket_start: time(bucket),
                    tweet_id: &tweet_id,
                    score: s.score,
                    text: &s.text,
                };
                out.view.push(ViewRecord {
                    key: format!("tweet/{bucket}/{id}"),
                    value: serde_json::to_string(&value).unwrap_or_default(),
                });
            }
        }
    }

    /// Drops buckets that no window still to be finalised needs.
    fn evict(&mut self) {
        let needed = self
            .windows
            .iter()
            .map(|w| self.finalized_until.get(&w.name).map(|f| f - w.size_ms))
            .collect::<Option<Vec<i64>>>()
            .and_then(|starts| starts.into_iter().min());
        if let Some(start) = needed {
            self.agg.evict_before(start);
            self.evicted_before = self.evicted_before.max(start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn engine() -> Engine {
        let windows = vec![
            WindowSpec {
                name: "1m".into(),
                size_ms: MIN,
            },
            WindowSpec {
                name: "2m".into(),
                size_ms: 2 * MIN,
            },
        ];
        Engine::new(MIN, windows, 5_000, 3, Duration::from_secs(5))
    }

    fn tag(e: &mut Engine, p: i32, id: u64, t: i64, h: &str, now: Instant) -> Outcome {
        e.apply(
            (0, p),
            Event::Hashtag {
                tweet_id: id,
                t_ms: t,
                hashtag: h,
            },
            now,
        )
    }

    fn finals(out: &TickOutput, window: &str) -> Vec<Value> {
        out.tops
            .iter()
            .filter(|m| {
                m.kind == TopKind::Hashtags && m.window == window && m.value["final"] == true
            })
            .map(|m| m.value.clone())
            .collect()
    }

    #[test]
    fn windows_finalise_when_the_slowest_partition_passes_them() {
        let now = Instant::now();
        let mut e = engine();
        tag(&mut e, 0, 1, 10_000, "a", now);
        tag(&mut e, 1, 2, 20_000, "a", now);
        tag(&mut e, 0, 3, MIN + 30_000, "b", now);
        // Partition 1 is still at 0:20, so nothing is final yet.
        let first = e.tick(now);
        assert!(finals(&first, "1m").is_empty());
        // The view carries the changed buckets.
        assert!(first
            .view
            .iter()
            .any(|v| v.key == "hashtag/0/a" && v.value.contains("\"count\":2")));
        tag(&mut e, 1, 4, 2 * MIN + 10_000, "b", now);
        let out = e.tick(now);
        let f = finals(&out, "1m");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0]["start"], "1970-01-01T00:00:00Z");
        assert_eq!(f[0]["items"], json!([{"hashtag": "a", "count": 2}]));
        assert!(
            out.view.iter().all(|v| v.key != "hashtag/0/a"),
            "unchanged buckets are not re-sent"
        );
    }

    #[test]
    fn an_assigned_partition_without_data_holds_the_watermark() {
        let now = Instant::now();
        let mut e = engine();
        e.assign(&[(0, 0), (0, 1)], now);
        tag(&mut e, 0, 1, 10 * MIN, "a", now);
        e.tick(now);
        assert_eq!(e.watermark(), None);
        assert_eq!(
            tag(&mut e, 1, 2, MIN, "a", now),
            Outcome::Applied,
            "partition 1 is behind, not late"
        );
        e.tick(now);
        assert_eq!(e.watermark(), Some(MIN - 5_000));
    }

    #[test]
    fn retweets_partitions_follow_their_markers() {
        let now = Instant::now();
        let mut e = engine();
        e.set_tweets_partitions(2);
        e.assign(&[(0, 0), (0, 1), (RETWEETS, 0)], now);
        let tweet = |e: &mut Engine, p: i32, id: u64, t: i64| {
            e.apply(
                (0, p),
                Event::Tweet {
                    id,
                    t_ms: t,
                    score: 1,
                    text: "",
                },
                now,
            )
        };
        tweet(&mut e, 0, 1, 10 * MIN);
        tweet(&mut e, 1, 2, 10 * MIN);
        e.tick(now);
        assert_eq!(
            e.watermark(),
            None,
            "no marker yet: the retweets partition holds the watermark"
        );
        // Re-keyed retweets arrive out of order: no clock of their own.
        let rt = |e: &mut Engine, id: u64, t: i64| {
            e.apply(
                (RETWEETS, 0),
                Event::Retweet {
                    original: 1,
                    retweet: id,
                    t_ms: t,
                    text: "",
                },
                now,
            )
        };
        assert_eq!(rt(&mut e, 10, 3 * MIN), Outcome::Applied);
        e.apply_marker(0, 0, e.tweets_marker(0, now).flatten(), now);
        e.tick(now);
        assert_eq!(
            e.watermark(),
            None,
            "a marker from every tweets partition is needed"
        );
        e.apply_marker(0, 1, Some(4 * MIN), now);
        e.tick(now);
        assert_eq!(e.watermark(), Some(4 * MIN - 5_000));
        assert_eq!(rt(&mut e, 11, 5 * MIN), Outcome::Applied);
        assert_eq!(rt(&mut e, 12, MIN), Outcome::Late);
    }

    #[test]
    fn late_events_are_counted_not_applied() {
        let now = Instant::now();
        let mut e = engine();
        tag(&mut e, 0, 1, 10 * MIN, "a", now);
        e.tick(now);
        assert_eq!(tag(&mut e, 0, 2, MIN, "a", now), Outcome::Late);
        assert_eq!(
            tag(&mut e, 0, 3, 10 * MIN - 1_000, "a", now),
            Outcome::Applied,
            "within the allowed lateness"
        );
        assert_eq!(
            tag(&mut e, 0, 3, 10 * MIN - 1_000, "a", now),
            Outcome::Duplicate
        );
        assert_eq!(e.late_events(), 1);
    }

    #[test]
    fn idle_input_closes_every_window_with_data() {
        let now = Instant::now();
        let mut e = engine();
        tag(&mut e, 0, 1, 10_000, "a", now);
        tag(&mut e, 0, 2, MIN + 10_000, "b", now);
        let ends = |out: &TickOutput, w: &str| -> Vec<Value> {
            finals(out, w).iter().map(|f| f["end"].clone()).collect()
        };
        // Quiet, but not read to its end: the watermark stays at 1:05.
        let out = e.tick(now + Duration::from_secs(6));
        assert_eq!(ends(&out, "1m"), vec![json!("1970-01-01T00:01:00Z")]);
        e.set_at_end((0, 0), true);
        let out = e.tick(now + Duration::from_secs(6));
        assert_eq!(ends(&out, "1m"), vec![json!("1970-01-01T00:02:00Z")]);
        assert_eq!(ends(&out, "2m"), vec![json!("1970-01-01T00:02:00Z")]);
        // Finals are not sent twice.
        assert!(e
            .tick(now + Duration::from_secs(7))
            .tops
            .iter()
            .all(|m| m.value["final"] == false));
    }

    #[test]
    fn updates_are_sent_only_when_the_top_changes() {
        let now = Instant::now();
        let mut e = engine();
        tag(&mut e, 0, 1, 10_000, "a", now);
        let first = e.tick(now);
        assert!(first.tops.iter().any(|m| m.value["final"] == false));
        assert!(e.tick(now).tops.is_empty(), "no change, no message");
        tag(&mut e, 0, 2, 11_000, "a", now);
        assert!(!e.tick(now).tops.is_empty());
    }

    use proptest::prelude::*;

    proptest! {
        /// The running sums of the current windows always equal the sum of
        /// their buckets, however events and ticks interleave.
        #[test]
        fn running_window_sums_equal_the_sum_of_buckets(
            evs in prop::collection::vec((0u8..3, 0u64..200, 0i64..600, 0u8..8, any::<bool>()), 1..300)
        ) {
            let now = Instant::now();
            let mut e = Engine::new(10_000, vec![
                WindowSpec { name: "10s".into(), size_ms: 10_000 },
                WindowSpec { name: "30s".into(), size_ms: 30_000 },
            ], 1_000, 5, Duration::from_secs(3600));
            let mut clock = 0i64;
            for (kind, id, step, tag, tick) in evs {
                clock += step;
                let t = clock - (id as i64 % 7) * 100;
                let h = format!("h{tag}");
                match kind {
                    0 => { e.apply((1, 0), Event::Hashtag { tweet_id: id, t_ms: t, hashtag: &h }, now); }
                    1 => { e.apply((0, 0), Event::Tweet { id, t_ms: t, score: (id % 4) as i64, text: "" }, now); }
                    _ => { e.apply((2, 0), Event::Retweet { original: id % 20, retweet: id, t_ms: t, text: "" }, now); }
                }
                if tick {
                    e.tick(now);
                    for w in e.current.iter().chain(e.finals.iter().filter(|f| f.end != i64::MIN)) {
                        let full = e.agg.window(w.end - w.size_ms, w.end);
                        prop_assert_eq!(&w.sum.hashtags, &full.hashtags);
                        let scores = |m: &HashMap<u64, tweetlambda_core::aggregate::TweetScore>| {
                            m.iter().map(|(k, v)| (*k, v.score)).collect::<HashMap<u64, i64>>()
                        };
                        prop_assert_eq!(scores(&w.sum.tweets), scores(&full.tweets));
                    }
                }
            }
        }
    }
}

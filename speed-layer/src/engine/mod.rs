//! The speed layer's state machine, free of Kafka: events in, messages out.
//!
//! - **Buckets** come from [`Aggregator`] (shared with the batch layer).
//! - **Clocks and the watermark** ([`clock`]): per input partition, the
//!   newest event time; an event older than the watermark is *late*: counted
//!   and logged. While its bucket is still in memory it is applied to the
//!   bucket and to the window instances not yet final (the realtime view
//!   stays exact for every bucket it holds; finals already published stay
//!   as they were). A late event of a bucket already dropped is *too late*:
//!   not applied, and announced by a `late` view record so that the serving
//!   layer flags answers over that bucket until the batch counts it.
//! - **Windows** ([`window`]): each window of size S has one instance per
//!   bucket boundary E, covering `[E − S, E)`, kept as a running sum. On
//!   every tick the instance holding the newest event is published when its
//!   top-N changed (`final: false`), and every instance whose end the
//!   watermark has passed is published once with `final: true`.
//! - **Output** ([`output`]): top-N messages and the realtime view records
//!   (the bucket aggregates changed since they were last published, at
//!   most [`VIEW_RECORDS_PER_TICK`] per tick, oldest buckets first), in the
//!   formats of [`tweetlambda_core::messages`]. While the state is being
//!   rebuilt (after a start, restart or rebalance, until every partition
//!   was read up to the end it had when the rebuild began) only the
//!   records of buckets every window has passed go out, as they are
//!   dropped: a bucket read again halfway would replace its complete record
//!   in the topic with a partial one. A bucket is dropped only once its
//!   records are out, except the first buckets of a partition whose start
//!   retention removed (they may lack events; the topic keeps the records
//!   of before).

pub mod clock;
pub mod output;
mod window;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tweetlambda_core::aggregate::{Aggregator, Applied, FastMap};
use tweetlambda_core::bucket_start_ms;
use tweetlambda_core::messages::ViewRecord;

use crate::config::WindowSpec;
use clock::Clocks;
pub use clock::{Input, Source};
use output::{Instance, Publisher};
pub use output::{KeyedMessage, TickOutput, TopKind, TopMessage};
use window::WindowSum;

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
    /// Older than the watermark, its bucket still held: applied to the
    /// bucket and to the window instances not yet final.
    Late,
    /// Older than the watermark and its bucket already dropped: not counted
    /// here (the next batch run counts it).
    TooLate,
}

/// The state of one speed-layer instance.
#[derive(Debug)]
pub struct Engine {
    agg: Aggregator,
    windows: Vec<WindowSpec>,
    clocks: Clocks,
    publisher: Publisher,
    first_bucket: Option<i64>,
    /// Window name → end of the newest instance published as final.
    finalized_until: HashMap<String, i64>,
    /// Hashtags and tweets changed per bucket since the view was last
    /// published (hashtags added at each tick, tweets at each event):
    /// foldhash, seeded per process (std's SipHash is the slower default).
    dirty_hashtags: FastMap<i64, HashSet<String, foldhash::fast::RandomState>>,
    dirty_tweets: FastMap<i64, HashSet<u64, foldhash::fast::RandomState>>,
    late_events: u64,
    /// (Bucket, input partition) → events that came after the bucket was
    /// dropped.
    too_late: HashMap<(i64, Source), i64>,
    /// Keys of `too_late` changed since the last tick.
    dirty_late: HashSet<(i64, Source)>,
    /// Current instance of each window (same order as `windows`).
    current: Vec<WindowSum>,
    /// The next instance of each window to finalise, kept the same way.
    finals: Vec<WindowSum>,
    /// Buckets before this were dropped from memory.
    evicted_before: i64,
    /// The state is being rebuilt from the input: view records wait.
    rebuilding: bool,
    /// During a rebuild, per partition: the end it had when first seen,
    /// and whether the reading has reached it.
    rebuild_ends: HashMap<Source, (i64, bool)>,
    /// Realtime-view records published per tick at most
    /// ([`VIEW_RECORDS_PER_TICK`]).
    view_records_per_tick: usize,
    /// Partitions whose reading began past offset 0 since the last reset
    /// (retention removed their start) and that have not delivered an
    /// event yet.
    cut_pending: HashSet<Source>,
    /// Buckets before this may lack events that retention removed: during
    /// a rebuild their records are not published (the topic keeps the
    /// complete ones of before).
    suspect_before: i64,
}

/// Realtime-view records a tick publishes at most. The end of a rebuild
/// leaves every key of every held bucket to publish at once; encoded in one
/// tick, they and the producer's copies of them would all be in memory
/// together (measured: 1 GiB at the end of a rebuild of 800,000 tweets
/// whose state took 400 MiB). The rest wait for the next ticks, as keys;
/// a bucket whose records wait is not dropped.
pub const VIEW_RECORDS_PER_TICK: usize = 100_000;

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
            current: window_sums(&windows),
            finals: window_sums(&windows),
            windows,
            clocks: Clocks::new(lateness_ms, idle_timeout),
            publisher: Publisher::new(top_n),
            first_bucket: None,
            finalized_until: HashMap::new(),
            dirty_hashtags: FastMap::default(),
            dirty_tweets: FastMap::default(),
            late_events: 0,
            too_late: HashMap::new(),
            dirty_late: HashSet::new(),
            evicted_before: i64::MIN,
            rebuilding: true,
            rebuild_ends: HashMap::new(),
            view_records_per_tick: VIEW_RECORDS_PER_TICK,
            cut_pending: HashSet::new(),
            suspect_before: i64::MIN,
        }
    }

    /// Forgets everything (after a change of partition assignment the state
    /// is rebuilt from the input). The settings and the tweets topic's
    /// partition count stay.
    pub fn reset(&mut self) {
        self.clocks.reset();
        self.agg = Aggregator::new(self.agg.bucket_ms());
        self.publisher = Publisher::new(self.publisher.top_n());
        self.first_bucket = None;
        self.finalized_until.clear();
        self.dirty_hashtags.clear();
        self.dirty_tweets.clear();
        self.late_events = 0;
        self.too_late.clear();
        self.dirty_late.clear();
        self.current = window_sums(&self.windows);
        self.finals = window_sums(&self.windows);
        self.evicted_before = i64::MIN;
        self.rebuilding = true;
        self.rebuild_ends.clear();
        self.cut_pending.clear();
        self.suspect_before = i64::MIN;
    }

    /// The first message read from `source` since the last reset has
    /// `offset`: past 0, retention removed the partition's start, so the
    /// bucket of its first event may lack events.
    pub fn note_first_offset(&mut self, source: Source, offset: i64) {
        if offset > 0 && self.rebuilding {
            self.cut_pending.insert(source);
        }
    }

    /// True when view records wait behind the per-tick limit (ticks until
    /// it is false publish them all).
    pub fn view_waiting(&self) -> bool {
        let waiting = !self.dirty_hashtags.is_empty() || !self.dirty_tweets.is_empty();
        !self.rebuilding && waiting
    }

    /// Records how far a partition has been read (`position`, the next
    /// offset) and its end as last fetched (`high`), for the end of a
    /// rebuild: the first end seen is the one the rebuild must reach (a
    /// speed layer that lags behind new input has still rebuilt its state).
    pub fn note_position(&mut self, source: Source, position: i64, high: Option<i64>) {
        if !self.rebuilding {
            return;
        }
        let Some(high) = high else { return };
        let end = self.rebuild_ends.entry(source).or_insert((high, false));
        if position >= end.0 {
            end.1 = true;
        }
    }

    /// Sets the number of partitions of the tweets topic, whose markers a
    /// retweets partition waits for.
    pub fn set_tweets_partitions(&mut self, n: i32) {
        self.clocks.set_tweets_partitions(n);
    }

    /// See [`Clocks::tweets_marker`].
    pub fn tweets_marker(&self, tweets_partition: i32, now: Instant) -> Option<Option<i64>> {
        self.clocks.tweets_marker(tweets_partition, now)
    }

    /// See [`Clocks::apply_marker`].
    pub fn apply_marker(&mut self, partition: i32, from: i32, time_ms: Option<i64>, now: Instant) {
        self.clocks.apply_marker(partition, from, time_ms, now);
    }

    /// Late events so far (applied or too late).
    pub fn late_events(&self) -> u64 {
        self.late_events
    }

    /// Events that came after their bucket was dropped, so far.
    pub fn too_late_events(&self) -> i64 {
        self.too_late.values().sum()
    }

    /// The current watermark (ms), once there is one.
    pub fn watermark(&self) -> Option<i64> {
        self.clocks.watermark()
    }

    /// The newest event time seen (ms).
    pub fn max_event_ms(&self) -> Option<i64> {
        self.clocks.max_event_ms()
    }

    /// Buckets held in memory.
    pub fn buckets_held(&self) -> usize {
        self.agg.len()
    }

    /// See [`Clocks::assign`].
    pub fn assign(&mut self, sources: &[Source], now: Instant) {
        self.clocks.assign(sources, now);
    }

    /// The partitions known to the engine.
    pub fn sources(&self) -> Vec<Source> {
        self.clocks.sources()
    }

    /// The input partitions more than `limit_ms` ahead of the slowest one
    /// still being read (see [`Clocks::running_ahead`]).
    pub fn running_ahead(&self, limit_ms: i64) -> Vec<Source> {
        self.clocks.running_ahead(limit_ms)
    }

    /// The size of the largest window (ms).
    pub fn largest_window_ms(&self) -> i64 {
        self.windows.iter().map(|w| w.size_ms).max().unwrap_or(0)
    }

    /// See [`Clocks::brokers_unreachable`].
    pub fn brokers_unreachable(&mut self, now: Instant) {
        self.clocks.brokers_unreachable(now);
    }

    /// Records whether a partition has been read to its current end.
    pub fn set_at_end(&mut self, source: Source, at_end: bool) {
        self.clocks.set_at_end(source, at_end);
    }

    /// Applies one event read from `source` at wall time `now`.
    pub fn apply(&mut self, source: Source, event: Event<'_>, now: Instant) -> Outcome {
        let t = event.time_ms();
        self.clocks.observe(source, t, now);
        let bucket = bucket_start_ms(t, self.agg.bucket_ms());
        if !self.cut_pending.is_empty() && self.cut_pending.remove(&source) {
            self.suspect_before = self.suspect_before.max(bucket + self.agg.bucket_ms());
        }
        let late = self.clocks.is_behind(t);
        if late {
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
            // Held: not dropped, and not before the first bucket (a late
            // event must not open buckets the view never had).
            let held = bucket >= self.evicted_before
                && self.first_bucket.is_some_and(|first| bucket >= first);
            if !held {
                // Re-keyed retweets of a dropped bucket are copies sent
                // again after a restart or rebalance; a retweet that is
                // really late is also a late tweet of the same bucket, which
                // flags it. So only tweets and hashtags flag a bucket.
                if source.0 != Input::Retweets {
                    *self.too_late.entry((bucket, source)).or_default() += 1;
                    self.dirty_late.insert((bucket, source));
                }
                return Outcome::TooLate;
            }
        }
        let applied = match event {
            Event::Tweet {
                id,
                t_ms,
                score,
                text,
            } => {
                let had = self.tweet_in_bucket(bucket, id);
                let (_, applied) = self.agg.apply_tweet(id, t_ms, score, text);
                if applied == Applied::New {
                    self.dirty_tweets.entry(bucket).or_default().insert(id);
                    self.add_to_current_tweets(bucket, id, score, had);
                }
                applied
            }
            Event::Hashtag {
                tweet_id,
                t_ms,
                hashtag,
            } => {
                // The window sums and the view learn of it at the next tick
                // (`take_hashtag_changes`): once per hashtag and bucket, not
                // once per event.
                self.agg.apply_hashtag(tweet_id, t_ms, hashtag).1
            }
            Event::Retweet {
                original,
                retweet,
                t_ms,
                text,
            } => {
                let had = self.tweet_in_bucket(bucket, original);
                let (_, applied) = self.agg.apply_retweet(original, retweet, t_ms, text);
                if applied == Applied::New {
                    self.dirty_tweets
                        .entry(bucket)
                        .or_default()
                        .insert(original);
                    self.add_to_current_tweets(bucket, original, 1, had);
                }
                applied
            }
        };
        if !late {
            // A late event does not open windows before the first one.
            self.first_bucket = Some(self.first_bucket.map_or(bucket, |b| b.min(bucket)));
        }
        match applied {
            Applied::New if late => Outcome::Late,
            Applied::New => Outcome::Applied,
            Applied::Duplicate => Outcome::Duplicate,
        }
    }

    /// The running sums that hold `bucket`: current instances, and (for a
    /// late event) the instance last published final, whose sum the next
    /// finals are advanced from, so that they include the event.
    fn window_sums_holding(&mut self, bucket: i64) -> impl Iterator<Item = &mut WindowSum> {
        self.current
            .iter_mut()
            .chain(self.finals.iter_mut())
            .filter(move |w| w.covers(bucket))
    }

    fn tweet_in_bucket(&self, bucket: i64, id: u64) -> bool {
        self.agg
            .bucket_aggregate(bucket)
            .is_some_and(|a| a.tweets.contains_key(&id))
    }

    /// Adds a tweet score to the current window instances holding `bucket`;
    /// `had` tells whether the tweet already had a score in that bucket.
    fn add_to_current_tweets(&mut self, bucket: i64, id: u64, score: i64, had: bool) {
        for w in self.window_sums_holding(bucket) {
            w.add_tweet_score(id, score, !had);
        }
    }

    /// True when every input partition has been read to its end and stayed
    /// quiet for the idle timeout, and every window holding data is final.
    pub fn is_drained(&self, now: Instant) -> bool {
        let b = self.agg.bucket_ms();
        let newest_end = self
            .clocks
            .newest_known()
            .map(|m| bucket_start_ms(m, b) + b);
        self.clocks.all_idle(now)
            && self.dirty_hashtags.is_empty()
            && self.dirty_tweets.is_empty()
            && newest_end.is_some_and(|end| {
                self.windows
                    .iter()
                    .all(|w| self.finalized_until.get(&w.name).is_some_and(|f| *f >= end))
            })
    }

    /// Publishes what changed since the last tick: finals for windows the
    /// watermark passed, updates of the current windows, the realtime view.
    pub fn tick(&mut self, now: Instant) -> TickOutput {
        let mut out = TickOutput::default();
        // Hashtag counts applied since the last tick, into the window sums
        // that held their buckets when they were applied (windows move only
        // here, below) and into the view's pending records.
        for change in self.agg.take_hashtag_changes() {
            for w in self.window_sums_holding(change.bucket) {
                w.add_hashtag(&change.hashtag, change.added);
            }
            self.dirty_hashtags
                .entry(change.bucket)
                .or_default()
                .insert(change.hashtag);
        }
        let b = self.agg.bucket_ms();
        self.clocks.update_watermark(now, b);
        let (Some(first), Some(newest), Some(watermark)) = (
            self.first_bucket,
            self.clocks.max_event_ms(),
            self.clocks.watermark(),
        ) else {
            return out;
        };
        let current_end = bucket_start_ms(newest, b) + b;
        for cur in self.current.iter_mut() {
            cur.advance(&self.agg, self.evicted_before, current_end);
        }
        for (i, w) in self.windows.iter().enumerate() {
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
                    self.finals[i].advance(&self.agg, self.evicted_before, end);
                    let instance = Instance::of(w, end, true, watermark);
                    self.publisher
                        .publish(&mut out, &instance, &self.finals[i].sum, &self.agg);
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
                let instance = Instance::of(w, current_end, false, watermark);
                self.publisher
                    .publish(&mut out, &instance, &self.current[i].sum, &self.agg);
            }
        }
        let sources = self.clocks.sources();
        if self.rebuilding
            && !sources.is_empty()
            && sources.iter().all(|s| {
                self.rebuild_ends
                    .get(s)
                    .is_some_and(|(_, reached)| *reached)
            })
        {
            self.rebuilding = false;
            self.rebuild_ends.clear();
            self.drop_suspect_records();
        }
        let mut budget = self.view_records_per_tick;
        if !self.rebuilding {
            self.flush_view(&mut out, &mut budget);
        }
        self.evict(&mut out, &mut budget);
        out
    }

    /// Forgets the waiting records of buckets that may lack events
    /// retention removed (see `suspect_before`).
    fn drop_suspect_records(&mut self) {
        let before = self.suspect_before;
        self.dirty_hashtags.retain(|b, _| *b >= before);
        self.dirty_tweets.retain(|b, _| *b >= before);
    }

    /// Takes up to `budget` waiting keys of buckets before `before`, oldest
    /// buckets first (a bucket's hashtags, then its tweets).
    fn take_waiting(&mut self, budget: &mut usize, before: i64) -> (Waiting<String>, Waiting<u64>) {
        let mut buckets: Vec<i64> = self
            .dirty_hashtags
            .keys()
            .chain(self.dirty_tweets.keys())
            .copied()
            .filter(|b| *b < before)
            .collect();
        buckets.sort_unstable();
        buckets.dedup();
        let (mut tags, mut ids) = (Vec::new(), Vec::new());
        for bucket in buckets {
            if *budget == 0 {
                break;
            }
            if let Some(keys) = take_from(&mut self.dirty_hashtags, bucket, budget) {
                tags.push((bucket, keys));
            }
            if let Some(keys) = take_from(&mut self.dirty_tweets, bucket, budget) {
                ids.push((bucket, keys));
            }
        }
        (tags, ids)
    }

    /// The oldest bucket with records waiting.
    fn oldest_waiting(&self) -> Option<i64> {
        self.dirty_hashtags
            .keys()
            .chain(self.dirty_tweets.keys())
            .min()
            .copied()
    }

    /// True while the state is being rebuilt from the input (only the view
    /// records of buckets being dropped are published meanwhile).
    pub fn is_rebuilding(&self) -> bool {
        self.rebuilding
    }

    /// The changed bucket aggregates, as realtime view records, and the
    /// buckets that lost events to lateness.
    fn flush_view(&mut self, out: &mut TickOutput, budget: &mut usize) {
        for (bucket, source) in std::mem::take(&mut self.dirty_late) {
            let events = self.too_late.get(&(bucket, source)).copied().unwrap_or(0);
            let name = format!("{}-{}", source.0.name(), source.1);
            out.view
                .push(encode(ViewRecord::late(bucket, &name, events)));
        }
        // Within the tick's budget, oldest buckets first; each record
        // carries the key's complete value, so publishing the rest later
        // never shows a partial one.
        let (tags, ids) = self.take_waiting(budget, i64::MAX);
        self.encode_view(out, tags, ids);
    }

    /// The realtime-view records of these keys (bucket → keys).
    fn encode_view(&self, out: &mut TickOutput, tags: Waiting<String>, ids: Waiting<u64>) {
        for (bucket, tags) in tags {
            let Some(a) = self.agg.bucket_aggregate(bucket) else {
                continue;
            };
            for tag in tags {
                let count = a.hashtags.get(&tag).copied().unwrap_or(0);
                out.view
                    .push(encode(ViewRecord::hashtag(bucket, &tag, count)));
            }
        }
        for (bucket, ids) in ids {
            let Some(a) = self.agg.bucket_aggregate(bucket) else {
                continue;
            };
            for id in ids {
                let Some(s) = a.tweets.get(&id) else { continue };
                out.view
                    .push(encode(ViewRecord::tweet(bucket, id, s.score, &s.text)));
            }
        }
    }

    /// Drops buckets that no window still to be finalised needs.
    fn evict(&mut self, out: &mut TickOutput, budget: &mut usize) {
        let needed = self
            .windows
            .iter()
            .map(|w| self.finalized_until.get(&w.name).map(|f| f - w.size_ms))
            .collect::<Option<Vec<i64>>>()
            .and_then(|starts| starts.into_iter().min());
        let Some(mut start) = needed else {
            return;
        };
        // Records of the buckets about to go that wait (for the end of a
        // rebuild, or behind the limit) go out first, within the tick's
        // budget: every window has passed these buckets, so their values
        // are complete, and once dropped they could not be published at
        // all (a first start on input longer than the windows would leave
        // them out of the view). Those that may lack events retention
        // removed are not published during a rebuild.
        if self.rebuilding {
            let before = self.suspect_before.min(start);
            self.dirty_hashtags.retain(|b, _| *b >= before);
            self.dirty_tweets.retain(|b, _| *b >= before);
        }
        let (tags, ids) = self.take_waiting(budget, start);
        self.encode_view(out, tags, ids);
        // A bucket with records still waiting stays until they are out.
        if let Some(oldest) = self.oldest_waiting() {
            start = start.min(oldest);
        }
        if start > self.evicted_before {
            self.agg.evict_before(start);
            self.evicted_before = start;
        }
    }
}

/// Keys taken out of a dirty map, by bucket.
type Waiting<K> = Vec<(i64, Vec<K>)>;

/// Takes up to `budget` keys of `bucket` out of `dirty` (bucket → keys)
/// and lowers the budget by as many.
fn take_from<K: std::hash::Hash + Eq>(
    dirty: &mut FastMap<i64, HashSet<K, foldhash::fast::RandomState>>,
    bucket: i64,
    budget: &mut usize,
) -> Option<Vec<K>> {
    let keys = dirty.get_mut(&bucket)?;
    let mut left = *budget;
    let taken: Vec<K> = keys
        .extract_if(|_| {
            let take = left > 0;
            left = left.saturating_sub(1);
            take
        })
        .collect();
    *budget -= taken.len();
    if keys.is_empty() {
        dirty.remove(&bucket);
    }
    (!taken.is_empty()).then_some(taken)
}

fn window_sums(windows: &[WindowSpec]) -> Vec<WindowSum> {
    windows.iter().map(|w| WindowSum::new(w.size_ms)).collect()
}

fn encode(record: ViewRecord) -> KeyedMessage {
    KeyedMessage {
        key: record.key.to_string(),
        value: record.value_json(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

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
            (Input::Hashtags, p),
            Event::Hashtag {
                tweet_id: id,
                t_ms: t,
                hashtag: h,
            },
            now,
        )
    }

    /// Marks every partition seen as read to the end of a rebuild.
    fn rebuilt(e: &mut Engine) {
        for s in e.sources() {
            e.note_position(s, 0, Some(0));
        }
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
        rebuilt(&mut e);
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
        e.assign(&[(Input::Hashtags, 0), (Input::Hashtags, 1)], now);
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
        e.assign(
            &[(Input::Tweets, 0), (Input::Tweets, 1), (Input::Retweets, 0)],
            now,
        );
        let tweet = |e: &mut Engine, p: i32, id: u64, t: i64| {
            e.apply(
                (Input::Tweets, p),
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
                (Input::Retweets, 0),
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
        // Behind the watermark and before the first bucket: too late (a
        // late event opens no bucket), and a retweet flags none.
        assert_eq!(rt(&mut e, 12, MIN), Outcome::TooLate);
        assert!(e.tick(now).view.iter().all(|v| !v.key.starts_with("late/")));
    }

    #[test]
    fn late_events_update_the_buckets_still_held_and_flag_the_others() {
        let now = Instant::now();
        let mut e = engine();
        for (id, t) in [
            (1, 10_000),
            (2, MIN + 10_000),
            (3, 2 * MIN + 10_000),
            (4, 3 * MIN + 10_000),
        ] {
            tag(&mut e, 0, id, t, "a", now);
        }
        // Watermark 3:05: the instances ending 1:00, 2:00 and 3:00 are final.
        rebuilt(&mut e);
        let out = e.tick(now);
        assert_eq!(finals(&out, "1m").len(), 3);
        assert_eq!(finals(&out, "2m").len(), 3);
        // Behind the watermark, in a bucket still held (the 2m window's
        // instance ending 4:00 needs 2:00–4:00): applied to the bucket,
        // counted as late.
        assert_eq!(tag(&mut e, 0, 5, 2 * MIN + 20_000, "a", now), Outcome::Late);
        assert_eq!(
            tag(&mut e, 0, 5, 2 * MIN + 20_000, "a", now),
            Outcome::Duplicate
        );
        let out = e.tick(now);
        assert!(
            out.view
                .iter()
                .any(|v| v.key == format!("hashtag/{}/a", 2 * MIN)
                    && v.value.contains("\"count\":2")),
            "the bucket's view record counts the late event: {:?}",
            out.view
        );
        assert!(
            finals(&out, "1m").is_empty(),
            "published finals stay as they were"
        );
        // The next finals include it: the 2m instance ending 4:00 holds
        // buckets 2:00 (a ×2) and 3:00 (a ×1).
        tag(&mut e, 0, 6, 5 * MIN, "b", now);
        let out = e.tick(now);
        let f = finals(&out, "2m");
        assert_eq!(f[0]["end"], "1970-01-01T00:04:00Z", "{f:?}");
        assert_eq!(f[0]["items"], json!([{"hashtag": "a", "count": 3}]));
        // A bucket already dropped: not applied, announced by a late record.
        assert_eq!(tag(&mut e, 0, 7, 10_000, "a", now), Outcome::TooLate);
        assert_eq!(tag(&mut e, 0, 8, 20_000, "a", now), Outcome::TooLate);
        let out = e.tick(now);
        let late: Vec<&KeyedMessage> = out
            .view
            .iter()
            .filter(|v| v.key.starts_with("late/"))
            .collect();
        assert_eq!(late.len(), 1, "{late:?}");
        assert_eq!(late[0].key, "late/0/hashtags-0");
        assert!(late[0].value.contains("\"events\":2"), "{}", late[0].value);
        assert!(
            out.view.iter().all(|v| v.key != "hashtag/0/a"),
            "the dropped bucket is not republished"
        );
        assert_eq!((e.late_events(), e.too_late_events()), (3, 2));
    }

    /// While the state is rebuilt (start, restart, rebalance), the view is
    /// not published: a bucket half read again would replace its complete
    /// record with a partial one. Once every partition was read to its end,
    /// the complete records go out.
    #[test]
    fn the_view_is_published_only_once_the_state_is_rebuilt() {
        let now = Instant::now();
        let mut e = engine();
        let sources = [(Input::Hashtags, 0), (Input::Hashtags, 1)];
        e.assign(&sources, now);
        // Partition 0 holds 1 message, partition 1 holds 2.
        tag(&mut e, 0, 1, 10_000, "a", now);
        tag(&mut e, 1, 2, 20_000, "a", now);
        e.note_position(sources[0], 1, Some(1));
        e.note_position(sources[1], 1, Some(2));
        let out = e.tick(now);
        assert!(
            out.view.is_empty(),
            "partition 1 is still being read: {:?}",
            out.view
        );
        tag(&mut e, 1, 3, 30_000, "a", now);
        // New input arrived meanwhile: the rebuild's end stays the first one.
        e.note_position(sources[1], 2, Some(50));
        let out = e.tick(now);
        let a: Vec<&KeyedMessage> = out.view.iter().filter(|v| v.key == "hashtag/0/a").collect();
        assert_eq!(a.len(), 1, "{:?}", out.view);
        assert!(a[0].value.contains("\"count\":3"), "{}", a[0].value);
        // From then on, every change is published at the next tick.
        tag(&mut e, 1, 4, 40_000, "a", now);
        let out = e.tick(now);
        assert!(out
            .view
            .iter()
            .any(|v| v.key == "hashtag/0/a" && v.value.contains("\"count\":4")));
        // A reset (rebalance) rebuilds again: nothing until caught up.
        e.reset();
        e.assign(&sources, now);
        tag(&mut e, 0, 1, 10_000, "a", now);
        assert!(e.tick(now).view.is_empty());
    }

    #[test]
    fn the_view_goes_out_at_most_the_limit_of_records_per_tick() {
        let now = Instant::now();
        let mut e = engine();
        e.view_records_per_tick = 3;
        e.assign(&[(Input::Hashtags, 0)], now);
        // 7 keys: 4 hashtags in the first minute ("a" twice), 3 in the
        // second.
        for (id, t, h) in [
            (1, 0, "a"),
            (2, 1, "a"),
            (2, 2, "b"),
            (3, 3, "c"),
            (4, 4, "d"),
            (5, MIN, "a"),
            (6, MIN + 1, "e"),
            (7, MIN + 2, "f"),
        ] {
            tag(&mut e, 0, id, t, h, now);
        }
        rebuilt(&mut e);
        let mut published: Vec<(String, String)> = Vec::new();
        let mut per_tick = Vec::new();
        loop {
            let out = e.tick(now);
            if out.view.is_empty() {
                break;
            }
            per_tick.push(out.view.len());
            published.extend(out.view.into_iter().map(|v| (v.key, v.value)));
            assert!(per_tick.len() < 10, "never done: {per_tick:?}");
        }
        assert_eq!(per_tick, vec![3, 3, 1]);
        let keys: HashSet<&str> = published.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys.len(), 7, "every key once: {published:?}");
        // Oldest bucket first, and each value complete.
        assert!(published[..3]
            .iter()
            .all(|(k, _)| k.starts_with("hashtag/0/")));
        let a = published.iter().find(|(k, _)| k == "hashtag/0/a");
        assert!(a.is_some_and(|(_, v)| v.contains("\"count\":2")), "{a:?}");
        assert!(e.dirty_hashtags.is_empty());
    }

    /// Five hashtags in the first minute, one at 10 and one at 20 minutes:
    /// the first minute is the only bucket every window has passed.
    fn backlog(e: &mut Engine, now: Instant) {
        e.assign(&[(Input::Hashtags, 0)], now);
        for (id, h) in [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")] {
            tag(e, 0, id, 0, h, now);
        }
        tag(e, 0, 6, 10 * MIN, "f", now);
        tag(e, 0, 7, 20 * MIN, "g", now);
    }

    /// The records of the backlog's later buckets, sorted.
    fn later() -> Vec<String> {
        let mut keys = vec![
            format!("hashtag/{}/f", 10 * MIN),
            format!("hashtag/{}/g", 20 * MIN),
        ];
        keys.sort();
        keys
    }

    fn view_keys(out: &TickOutput) -> Vec<String> {
        out.view.iter().map(|v| v.key.clone()).collect()
    }

    #[test]
    fn a_bucket_is_dropped_only_once_its_waiting_records_are_out() {
        let now = Instant::now();
        let mut e = engine();
        e.view_records_per_tick = 2;
        backlog(&mut e, now);
        // Still rebuilding: the first minute's records go out as it is
        // dropped, two per tick, and it stays until the last one is out.
        let mut first = Vec::new();
        for (tick, dropped) in [(1, false), (2, false), (3, true)] {
            let out = e.tick(now);
            assert!(out.view.len() <= 2, "tick {tick}: {:?}", out.view);
            first.extend(view_keys(&out));
            assert_eq!(e.agg.bucket_aggregate(0).is_none(), dropped, "tick {tick}");
        }
        first.sort();
        let want: Vec<String> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|h| format!("hashtag/0/{h}"))
            .collect();
        assert_eq!(first, want, "each once, nothing of the later buckets");
        // Rebuilt: the later buckets' records follow.
        rebuilt(&mut e);
        let mut rest = view_keys(&e.tick(now));
        rest.sort();
        assert_eq!(rest, later());
        assert!(!e.view_waiting());
    }

    #[test]
    fn a_partition_cut_by_retention_keeps_its_first_bucket_out_of_a_rebuild() {
        let now = Instant::now();
        let mut e = engine();
        // The partition's first message read is at offset 100: its first
        // minute may lack events; the topic keeps the records of before.
        e.note_first_offset((Input::Hashtags, 0), 100);
        backlog(&mut e, now);
        let mut published = view_keys(&e.tick(now));
        assert!(e.agg.bucket_aggregate(0).is_none(), "dropped");
        rebuilt(&mut e);
        published.extend(view_keys(&e.tick(now)));
        published.sort();
        assert_eq!(published, later());
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
        e.set_at_end((Input::Hashtags, 0), true);
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
    fn a_broker_outage_is_not_a_pause_of_the_input() {
        let now = Instant::now();
        let mut e = engine();
        tag(&mut e, 0, 1, 10_000, "a", now);
        tag(&mut e, 0, 2, MIN + 10_000, "b", now);
        let ends = |out: &TickOutput, w: &str| -> Vec<Value> {
            finals(out, w).iter().map(|f| f["end"].clone()).collect()
        };
        e.set_at_end((Input::Hashtags, 0), true);
        // Unreachable 4 s in; back at once, its end as known before (stale).
        e.brokers_unreachable(now + Duration::from_secs(4));
        e.set_at_end((Input::Hashtags, 0), true);
        // 6 s after the last event but 2 s after the outage: not idle.
        let out = e.tick(now + Duration::from_secs(6));
        assert_eq!(ends(&out, "1m"), vec![json!("1970-01-01T00:01:00Z")]);
        // A whole idle timeout after the outage: the input has ended.
        let out = e.tick(now + Duration::from_secs(10));
        assert_eq!(ends(&out, "1m"), vec![json!("1970-01-01T00:02:00Z")]);
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
                    0 => { e.apply((Input::Hashtags, 0), Event::Hashtag { tweet_id: id, t_ms: t, hashtag: &h }, now); }
                    1 => { e.apply((Input::Tweets, 0), Event::Tweet { id, t_ms: t, score: (id % 4) as i64, text: "" }, now); }
                    _ => { e.apply((Input::Retweets, 0), Event::Retweet { original: id % 20, retweet: id, t_ms: t, text: "" }, now); }
                }
                if tick {
                    e.tick(now);
                    for w in e.current.iter().chain(e.finals.iter()).filter(|w| w.end != i64::MIN) {
                        let full = e.agg.window(w.end - w.size_ms, w.end);
                        prop_assert_eq!(&w.sum.hashtags, &full.hashtags);
                        let scores = |m: &tweetlambda_core::aggregate::FastMap<u64, tweetlambda_core::aggregate::TweetScore>| {
                            m.iter().map(|(k, v)| (*k, v.score)).collect::<HashMap<u64, i64>>()
                        };
                        prop_assert_eq!(scores(&w.sum.tweets), scores(&full.tweets));
                    }
                }
            }
        }
    }
}

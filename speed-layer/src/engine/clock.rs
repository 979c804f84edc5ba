//! Event-time clocks: one per input partition, the watermark over them, and
//! the markers that give the retweets partitions a clock.
//!
//! For each input partition the newest event time seen; the watermark is the
//! oldest of those (over partitions that received something within the idle
//! timeout) minus the allowed lateness, and never goes back. Because each
//! partition is in event-time order up to the allowed lateness, the events
//! a window receives are the same whatever the interleaving of partitions.
//! When every partition is idle (read to its end and quiet for the idle
//! timeout) the input is taken as ended and the watermark moves to the end
//! of the newest bucket, closing every window that holds data.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tweetlambda_core::aggregate::FastMap;
use tweetlambda_core::bucket_start_ms;

/// The topic an input partition belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Input {
    /// The `tweets` topic.
    Tweets,
    /// The `hashtags` topic.
    Hashtags,
    /// The internal retweets topic. Its partitions are filled by the speed
    /// layer itself, interleaving the tweets partitions, so they are not in
    /// event-time order: their clock comes from markers instead (see
    /// [`Clocks::apply_marker`]).
    Retweets,
}

impl Input {
    /// Every input, in a fixed order (for per-input counters).
    pub const ALL: [Input; 3] = [Input::Tweets, Input::Hashtags, Input::Retweets];

    /// A short name for metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Input::Tweets => "tweets",
            Input::Hashtags => "hashtags",
            Input::Retweets => "retweets",
        }
    }

    /// Position in [`Input::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// An input partition.
pub type Source = (Input, i32);

#[derive(Debug, Clone, Copy)]
struct Clock {
    /// Newest event time read from the partition; none before the first.
    max_ms: Option<i64>,
    /// When the partition last delivered an event.
    last_seen: Instant,
    /// The partition has been read to its end.
    at_end: bool,
}

impl Clock {
    fn new(now: Instant) -> Clock {
        Clock {
            max_ms: None,
            last_seen: now,
            at_end: false,
        }
    }
}

/// The clocks of one instance's input partitions and the watermark.
#[derive(Debug)]
pub struct Clocks {
    lateness_ms: i64,
    idle_timeout: Duration,
    /// Read on every event: foldhash (see `FastMap`).
    clocks: FastMap<Source, Clock>,
    watermark: Option<i64>,
    max_event_ms: Option<i64>,
    /// Partitions of the tweets topic (the sources of retweet markers).
    tweets_partitions: i32,
    /// Retweets partition → tweets partition → the marker's time (none: that
    /// tweets partition had no data yet).
    markers: HashMap<i32, HashMap<i32, Option<i64>>>,
}

impl Clocks {
    /// No partition known yet.
    pub fn new(lateness_ms: i64, idle_timeout: Duration) -> Clocks {
        Clocks {
            lateness_ms: lateness_ms.max(0),
            idle_timeout,
            clocks: FastMap::default(),
            watermark: None,
            max_event_ms: None,
            tweets_partitions: 0,
            markers: HashMap::new(),
        }
    }

    /// Forgets every clock (the partition count stays).
    pub fn reset(&mut self) {
        let tweets_partitions = self.tweets_partitions;
        *self = Clocks::new(self.lateness_ms, self.idle_timeout);
        self.tweets_partitions = tweets_partitions;
    }

    /// Sets the number of partitions of the tweets topic, whose markers a
    /// retweets partition waits for.
    pub fn set_tweets_partitions(&mut self, n: i32) {
        self.tweets_partitions = n;
    }

    /// The current watermark (ms), once there is one.
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// The newest event time seen (ms).
    pub fn max_event_ms(&self) -> Option<i64> {
        self.max_event_ms
    }

    /// True when `t_ms` is older than the watermark.
    pub fn is_behind(&self, t_ms: i64) -> bool {
        self.watermark.is_some_and(|w| t_ms < w)
    }

    /// Records an event of time `t_ms` read from `source` at `now`.
    pub fn observe(&mut self, source: Source, t_ms: i64, now: Instant) {
        let clock = self.clocks.entry(source).or_insert(Clock::new(now));
        if source.0 != Input::Retweets {
            clock.max_ms = Some(clock.max_ms.map_or(t_ms, |m| m.max(t_ms)));
        }
        clock.last_seen = now;
        clock.at_end = false;
        self.max_event_ms = Some(self.max_event_ms.map_or(t_ms, |m| m.max(t_ms)));
    }

    /// Registers the partitions this instance reads: until each has delivered
    /// an event or been read to its end and stayed idle, the watermark waits
    /// for it.
    pub fn assign(&mut self, sources: &[Source], now: Instant) {
        for s in sources {
            self.clocks.entry(*s).or_insert(Clock::new(now));
        }
    }

    /// The partitions known.
    pub fn sources(&self) -> Vec<Source> {
        self.clocks.keys().copied().collect()
    }

    /// The brokers could not be reached: no partition is known to be at
    /// its end, and the quiet time of each starts again (an outage is not
    /// a pause of the input; once the brokers are back, a partition is idle
    /// only after a whole idle timeout read to its end).
    pub fn brokers_unreachable(&mut self, now: Instant) {
        for c in self.clocks.values_mut() {
            c.at_end = false;
            c.last_seen = now;
        }
    }

    /// Records whether a partition has been read to its current end.
    pub fn set_at_end(&mut self, source: Source, at_end: bool) {
        if let Some(c) = self.clocks.get_mut(&source) {
            c.at_end = at_end;
        }
    }

    /// The marker a tweets partition's reader sends along the retweets
    /// topic: `Some(Some(t))`, its newest event time (every retweet it
    /// re-keys later is at least that recent, up to the allowed lateness);
    /// `Some(None)` when it has had no tweet and is idle at its end (it
    /// constrains nothing); `None` when there is nothing to say yet.
    pub fn tweets_marker(&self, tweets_partition: i32, now: Instant) -> Option<Option<i64>> {
        let c = self.clocks.get(&(Input::Tweets, tweets_partition))?;
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
        let clock = self
            .clocks
            .entry((Input::Retweets, partition))
            .or_insert(Clock::new(now));
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

    /// Moves the watermark forward if the clocks allow it.
    pub fn update_watermark(&mut self, now: Instant, bucket_ms: i64) {
        // A partition is idle once read to its end and quiet for the idle
        // timeout; idle partitions do not hold the watermark back. The
        // retweets partitions follow their markers while any input is active.
        let idle = |c: &Clock| c.at_end && now.duration_since(c.last_seen) >= self.idle_timeout;
        let inputs_active = self
            .clocks
            .iter()
            .any(|(s, c)| s.0 != Input::Retweets && !idle(c));
        let active: Vec<Option<i64>> = self
            .clocks
            .iter()
            .filter(|(s, c)| {
                if s.0 == Input::Retweets {
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
        let retweets_caught_up = self
            .clocks
            .iter()
            .all(|(s, c)| s.0 != Input::Retweets || c.at_end);
        let candidate = match (active.into_iter().flatten().min(), self.newest_known()) {
            (Some(oldest), _) => Some(oldest.saturating_sub(self.lateness_ms)),
            // Every input partition is idle and every re-keyed retweet has
            // been read: the input has ended for now; close every window
            // that holds data.
            (None, Some(newest)) if retweets_caught_up => {
                Some(bucket_start_ms(newest, bucket_ms) + bucket_ms)
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
    pub fn newest_known(&self) -> Option<i64> {
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

    /// The input partitions (tweets and hashtags) whose newest event time
    /// is more than `limit_ms` ahead of the slowest one still being read
    /// (not at its end, and with an event already): pausing them until it
    /// catches up keeps the buckets held to about the windows, where a
    /// catch-up reads the topics unevenly (small hashtag messages run ahead
    /// of tweets). The slowest partition is never among them, so reading it
    /// goes on until it catches up or reaches its end.
    pub fn running_ahead(&self, limit_ms: i64) -> Vec<Source> {
        let inputs = || {
            self.clocks
                .iter()
                .filter(|(s, _)| s.0 != Input::Retweets)
                .filter_map(|(s, c)| c.max_ms.map(|t| (*s, c, t)))
        };
        let Some(slowest) = inputs()
            .filter(|(_, c, _)| !c.at_end)
            .map(|(.., t)| t)
            .min()
        else {
            return Vec::new();
        };
        let mut ahead: Vec<Source> = inputs()
            .filter(|(.., t)| *t > slowest.saturating_add(limit_ms))
            .map(|(s, ..)| s)
            .collect();
        ahead.sort_unstable();
        ahead
    }

    /// True when every input partition has been read to its end and stayed
    /// quiet for the idle timeout.
    pub fn all_idle(&self, now: Instant) -> bool {
        !self.clocks.is_empty()
            && self.clocks.iter().all(|(s, c)| {
                c.at_end
                    && (s.0 == Input::Retweets
                        || now.duration_since(c.last_seen) >= self.idle_timeout)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn partitions_ahead_of_the_slowest_one_still_read_are_named() {
        let now = Instant::now();
        let mut clocks = Clocks::new(0, Duration::from_secs(5));
        let (t0, h0, h1, r0) = (
            (Input::Tweets, 0),
            (Input::Hashtags, 0),
            (Input::Hashtags, 1),
            (Input::Retweets, 0),
        );
        clocks.assign(&[t0, h0, h1, r0], now);
        // No event yet: nothing to compare with.
        assert!(clocks.running_ahead(60 * MIN).is_empty());
        clocks.observe(t0, 10 * MIN, now);
        clocks.observe(h0, 75 * MIN, now);
        clocks.observe(h1, 65 * MIN, now);
        // Retweets follow markers, not their own events: never paced.
        clocks.observe(r0, 500 * MIN, now);
        assert_eq!(clocks.running_ahead(60 * MIN), vec![h0]);
        assert_eq!(clocks.running_ahead(30 * MIN), vec![h0, h1]);
        // The slowest partition read to its end no longer holds the others
        // back: the next slowest (65 minutes) does.
        clocks.set_at_end(t0, true);
        assert!(clocks.running_ahead(5 * MIN).contains(&h0));
        assert!(!clocks.running_ahead(5 * MIN).contains(&h1));
        assert!(clocks.running_ahead(60 * MIN).is_empty());
        // Every partition at its end: none is paced.
        clocks.set_at_end(h0, true);
        clocks.set_at_end(h1, true);
        assert!(clocks.running_ahead(0).is_empty());
    }
}

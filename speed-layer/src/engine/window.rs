//! Running window sums: the sum of the buckets of a window instance, kept up
//! to date as events arrive (tweet scores at each event, hashtag counts at
//! each tick, once per hashtag and bucket) so that a tick does not sum the
//! buckets again.

use std::collections::HashMap;

use tweetlambda_core::aggregate::{Aggregator, BucketAggregate, TweetScore};

/// The running sum of the buckets of a window's current instance
/// `[end − size, end)`, kept up to date as events arrive so that a tick
/// does not sum the buckets again.
#[derive(Debug, Default)]
pub(crate) struct WindowSum {
    pub(crate) size_ms: i64,
    pub(crate) end: i64,
    pub(crate) sum: BucketAggregate,
    /// Tweet id → number of buckets of the window it has a score in, so that
    /// a tweet leaves the sum when its last bucket leaves the window.
    pub(crate) tweet_buckets: HashMap<u64, u32, foldhash::fast::RandomState>,
}

impl WindowSum {
    pub(crate) fn new(size_ms: i64) -> WindowSum {
        WindowSum {
            size_ms,
            end: i64::MIN,
            ..WindowSum::default()
        }
    }

    /// Moves the window to end at `end`, adding the buckets that enter and
    /// removing those that leave; sums again from the buckets when that is
    /// not possible (first use, a jump, or buckets already dropped).
    pub(crate) fn advance(&mut self, agg: &Aggregator, evicted_before: i64, end: i64) {
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

    /// True when `bucket` is one of the instance's buckets.
    pub(crate) fn covers(&self, bucket: i64) -> bool {
        bucket < self.end && bucket >= self.end.saturating_sub(self.size_ms)
    }

    /// Counts `added` more tweets carrying `hashtag`.
    pub(crate) fn add_hashtag(&mut self, hashtag: &str, added: i64) {
        match self.sum.hashtags.get_mut(hashtag) {
            Some(c) => *c += added,
            None => {
                self.sum.hashtags.insert(hashtag.to_string(), added);
            }
        }
    }

    /// Adds score a tweet gained in one of the instance's buckets;
    /// `new_bucket` when it had no score in that bucket before. (Texts are
    /// looked up when published, not copied into the sums.)
    pub(crate) fn add_tweet_score(&mut self, id: u64, score: i64, new_bucket: bool) {
        self.add_score(id, score);
        if new_bucket {
            *self.tweet_buckets.entry(id).or_default() += 1;
        }
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

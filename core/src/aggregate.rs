//! The aggregation algebra both layers compute with: per-bucket partial
//! aggregates that merge by addition, deduplicated by tweet id, and the
//! top-N ranking.
//!
//! A [`BucketAggregate`] holds, for one event-time bucket:
//! - for each hashtag, the number of distinct tweets that mention it;
//! - for each tweet, its engagement score in that bucket: its own
//!   [`engagement_score`](crate::engagement_score) in the bucket of its
//!   creation, plus 1 for every distinct retweet of it created in the bucket.
//!
//! [`Aggregator`] applies events to buckets exactly once: a tweet, a
//! (tweet, hashtag) pair or a (tweet, retweet) pair delivered twice counts
//! once. A window's aggregate is the sum of its buckets
//! ([`Aggregator::window`]); ranking happens after summing, never by
//! merging top-N lists.

use std::collections::{BTreeMap, HashMap, HashSet};

/// A tweet's score and text, as ranked in top tweets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TweetScore {
    /// Engagement score (see the module documentation).
    pub score: i64,
    /// The tweet's text, when known (a retweet tells the original's text).
    pub text: String,
}

/// A map read on every event: it hashes with foldhash (seeded per process)
/// rather than SipHash, which the engine's profile showed as a tenth of its
/// time. Keys come from the input, but collisions cost time, not
/// correctness.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The partial aggregates of one bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketAggregate {
    /// Hashtag → distinct tweets mentioning it.
    pub hashtags: FastMap<String, i64>,
    /// Tweet id → score in this bucket.
    pub tweets: FastMap<u64, TweetScore>,
}

impl BucketAggregate {
    /// Adds another partial aggregate to this one (the merge).
    pub fn merge(&mut self, other: &BucketAggregate) {
        for (tag, count) in &other.hashtags {
            match self.hashtags.get_mut(tag) {
                Some(c) => *c = c.saturating_add(*count),
                None => {
                    self.hashtags.insert(tag.clone(), *count);
                }
            }
        }
        for (id, s) in &other.tweets {
            add_score(&mut self.tweets, *id, s.score, &s.text);
        }
    }
}

fn add_score(tweets: &mut FastMap<u64, TweetScore>, id: u64, score: i64, text: &str) {
    match tweets.get_mut(&id) {
        Some(s) => {
            // Scores of admitted tweets cannot overflow (see
            // `MAX_REPORTED_COUNT`); a merged view message might.
            s.score = s.score.saturating_add(score);
            if s.text.is_empty() && !text.is_empty() {
                s.text = text.to_string();
            }
        }
        None => {
            tweets.insert(
                id,
                TweetScore {
                    score,
                    text: text.to_string(),
                },
            );
        }
    }
}

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event changed the aggregates.
    New,
    /// The event had been applied before; nothing changed.
    Duplicate,
}

/// A hashtag's count in one bucket grew (see
/// [`Aggregator::take_hashtag_changes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashtagChange {
    /// Start of the bucket.
    pub bucket: i64,
    /// The hashtag.
    pub hashtag: String,
    /// Its count in the bucket now.
    pub count: i64,
    /// What the count grew by since the last take.
    pub added: i64,
}

/// A set read on every event (the exactly-once sets) or every row read
/// (the serving layer's top-N search): it hashes with foldhash (seeded at
/// random per process, like std's SipHash, but faster).
pub type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;

/// The tweets counted for one hashtag in one bucket.
#[derive(Debug, Default, Clone)]
struct TagTweets {
    tweets: FastSet<u64>,
    /// The count as of the last [`Aggregator::take_hashtag_changes`].
    taken: i64,
}

#[derive(Debug, Default, Clone)]
struct Bucket {
    aggregate: BucketAggregate,
    seen_tweets: FastSet<u64>,
    /// Hashtag → the tweets counted for it (looked up by `&str`, so that a
    /// known hashtag costs no allocation).
    tag_tweets: FastMap<String, TagTweets>,
    /// Hashtags whose count grew since the last take, each once.
    changed_tags: Vec<String>,
    seen_retweets: FastSet<(u64, u64)>,
}

/// Per-bucket aggregates with exactly-once application of events.
#[derive(Debug, Clone)]
pub struct Aggregator {
    bucket_ms: i64,
    buckets: BTreeMap<i64, Bucket>,
}

impl Aggregator {
    /// An empty aggregator with buckets of `bucket_ms` milliseconds (> 0).
    pub fn new(bucket_ms: i64) -> Aggregator {
        Aggregator {
            bucket_ms: bucket_ms.max(1),
            buckets: BTreeMap::new(),
        }
    }

    /// The bucket size in milliseconds.
    pub fn bucket_ms(&self) -> i64 {
        self.bucket_ms
    }

    fn bucket(&mut self, t_ms: i64) -> (i64, &mut Bucket) {
        let start = crate::bucket_start_ms(t_ms, self.bucket_ms);
        (start, self.buckets.entry(start).or_default())
    }

    /// A tweet: its own engagement score goes to the bucket of its creation.
    /// Returns the bucket start and whether it was new.
    pub fn apply_tweet(&mut self, id: u64, t_ms: i64, score: i64, text: &str) -> (i64, Applied) {
        let (start, b) = self.bucket(t_ms);
        if !b.seen_tweets.insert(id) {
            return (start, Applied::Duplicate);
        }
        add_score(&mut b.aggregate.tweets, id, score, text);
        (start, Applied::New)
    }

    /// One hashtag of one tweet: counts the tweet once for the hashtag.
    pub fn apply_hashtag(&mut self, tweet_id: u64, t_ms: i64, hashtag: &str) -> (i64, Applied) {
        let (start, b) = self.bucket(t_ms);
        // New, and the first change since the last take?
        let (new, first_change) = match b.tag_tweets.get_mut(hashtag) {
            Some(tag) => {
                let new = tag.tweets.insert(tweet_id);
                (new, new && tag.tweets.len() as i64 - 1 == tag.taken)
            }
            None => {
                let tag = TagTweets {
                    tweets: FastSet::from_iter([tweet_id]),
                    taken: 0,
                };
                b.tag_tweets.insert(hashtag.to_string(), tag);
                (true, true)
            }
        };
        if !new {
            return (start, Applied::Duplicate);
        }
        if first_change {
            b.changed_tags.push(hashtag.to_string());
        }
        match b.aggregate.hashtags.get_mut(hashtag) {
            Some(c) => *c += 1,
            None => {
                b.aggregate.hashtags.insert(hashtag.to_string(), 1);
            }
        }
        (start, Applied::New)
    }

    /// A retweet `retweet_id`, created at `t_ms`, of tweet `original_id`:
    /// adds 1 to the original's score in the retweet's bucket.
    pub fn apply_retweet(
        &mut self,
        original_id: u64,
        retweet_id: u64,
        t_ms: i64,
        original_text: &str,
    ) -> (i64, Applied) {
        let (start, b) = self.bucket(t_ms);
        if !b.seen_retweets.insert((original_id, retweet_id)) {
            return (start, Applied::Duplicate);
        }
        add_score(&mut b.aggregate.tweets, original_id, 1, original_text);
        (start, Applied::New)
    }

    /// True if this tweet was applied (and its bucket is still held).
    pub fn has_tweet(&self, id: u64, t_ms: i64) -> bool {
        self.held(t_ms).is_some_and(|b| b.seen_tweets.contains(&id))
    }

    /// True if this (tweet, hashtag) was applied (and its bucket is still held).
    pub fn has_hashtag(&self, tweet_id: u64, t_ms: i64, hashtag: &str) -> bool {
        self.held(t_ms)
            .and_then(|b| b.tag_tweets.get(hashtag))
            .is_some_and(|tag| tag.tweets.contains(&tweet_id))
    }

    /// True if this (original, retweet) was applied (and its bucket is still held).
    pub fn has_retweet(&self, original_id: u64, retweet_id: u64, t_ms: i64) -> bool {
        self.held(t_ms)
            .is_some_and(|b| b.seen_retweets.contains(&(original_id, retweet_id)))
    }

    fn held(&self, t_ms: i64) -> Option<&Bucket> {
        self.buckets
            .get(&crate::bucket_start_ms(t_ms, self.bucket_ms))
    }

    /// The hashtags whose count grew since the last call, each once, as
    /// (bucket start, hashtag, count now, added since the last call), by
    /// bucket. A reader that keeps sums of buckets up to date adds these
    /// once per tick instead of once per event.
    pub fn take_hashtag_changes(&mut self) -> Vec<HashtagChange> {
        let mut changes = Vec::new();
        for (start, b) in self.buckets.iter_mut() {
            for hashtag in b.changed_tags.drain(..) {
                let Some(tag) = b.tag_tweets.get_mut(&hashtag) else {
                    continue;
                };
                let count = tag.tweets.len() as i64;
                changes.push(HashtagChange {
                    bucket: *start,
                    added: count - tag.taken,
                    count,
                    hashtag,
                });
                tag.taken = count;
            }
        }
        changes
    }

    /// The aggregate of one bucket, if it holds anything.
    pub fn bucket_aggregate(&self, start: i64) -> Option<&BucketAggregate> {
        self.buckets.get(&start).map(|b| &b.aggregate)
    }

    /// Starts of the buckets held, ascending.
    pub fn bucket_starts(&self) -> impl Iterator<Item = i64> + '_ {
        self.buckets.keys().copied()
    }

    /// The sum of the buckets in `[start_ms, end_ms)`.
    pub fn window(&self, start_ms: i64, end_ms: i64) -> BucketAggregate {
        let mut sum = BucketAggregate::default();
        for (_, b) in self.buckets.range(start_ms..end_ms) {
            sum.merge(&b.aggregate);
        }
        sum
    }

    /// Drops every bucket that starts before `start_ms` (and what it
    /// remembers of duplicates).
    pub fn evict_before(&mut self, start_ms: i64) {
        self.buckets = self.buckets.split_off(&start_ms);
    }

    /// Number of buckets held.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// The top `n` hashtags by [`crate::rank::top_n`]: count descending, ties
/// by hashtag ascending.
pub fn top_hashtags<S: std::hash::BuildHasher>(
    counts: &HashMap<String, i64, S>,
    n: usize,
) -> Vec<(String, i64)> {
    crate::rank::top_n(counts.iter().map(|(h, c)| (h, *c)), n)
        .into_iter()
        .map(|(h, c)| (h.clone(), c))
        .collect()
}

/// The top `n` tweets by [`crate::rank::top_n`]: score descending, ties by
/// tweet id ascending.
pub fn top_tweets<S: std::hash::BuildHasher>(
    scores: &HashMap<u64, TweetScore, S>,
    n: usize,
) -> Vec<(u64, TweetScore)> {
    crate::rank::top_n(scores.iter().map(|(id, s)| (*id, s.score)), n)
        .into_iter()
        .filter_map(|(id, _)| scores.get(&id).map(|s| (id, s.clone())))
        .collect()
}

/// The text of the original tweet, from a retweet's text `RT @user: …`.
pub fn retweeted_text(retweet_text: &str) -> &str {
    retweet_text
        .strip_prefix("RT @")
        .and_then(|rest| rest.split_once(": "))
        .map_or("", |(_, text)| text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: i64 = 60_000;

    #[test]
    fn duplicates_count_once() {
        let mut a = Aggregator::new(MIN);
        assert_eq!(a.apply_hashtag(1, 5, "x"), (0, Applied::New));
        assert_eq!(a.apply_hashtag(1, 5, "x"), (0, Applied::Duplicate));
        assert_eq!(a.apply_hashtag(2, 6, "x").1, Applied::New);
        assert_eq!(a.apply_tweet(1, 5, 3, "hi").1, Applied::New);
        assert_eq!(a.apply_tweet(1, 5, 3, "hi").1, Applied::Duplicate);
        assert_eq!(a.apply_retweet(1, 9, MIN + 1, "hi").1, Applied::New);
        assert_eq!(a.apply_retweet(1, 9, MIN + 1, "hi").1, Applied::Duplicate);
        let w = a.window(0, 2 * MIN);
        assert_eq!(w.hashtags["x"], 2);
        assert_eq!(w.tweets[&1].score, 4);
        assert_eq!(a.window(0, MIN).tweets[&1].score, 3);
    }

    #[test]
    fn hashtag_changes_are_taken_once_per_hashtag_and_bucket() {
        let mut a = Aggregator::new(MIN);
        let change = |bucket, hashtag: &str, count, added| HashtagChange {
            bucket,
            hashtag: hashtag.to_string(),
            count,
            added,
        };
        for (id, t, tag) in [(1, 5, "x"), (1, 5, "x"), (2, 6, "x"), (2, MIN, "y")] {
            a.apply_hashtag(id, t, tag);
        }
        assert_eq!(
            a.take_hashtag_changes(),
            vec![change(0, "x", 2, 2), change(MIN, "y", 1, 1)]
        );
        assert_eq!(a.take_hashtag_changes(), vec![]);
        a.apply_hashtag(2, 6, "x");
        assert_eq!(
            a.take_hashtag_changes(),
            vec![],
            "a duplicate changes nothing"
        );
        a.apply_hashtag(3, 7, "x");
        a.apply_hashtag(4, 8, "x");
        assert_eq!(a.take_hashtag_changes(), vec![change(0, "x", 4, 2)]);
    }

    #[test]
    fn ranking_breaks_ties_by_key() {
        let counts: HashMap<String, i64> = [("b", 2), ("a", 2), ("c", 5), ("d", 1)]
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        assert_eq!(
            top_hashtags(&counts, 3),
            vec![("c".into(), 5), ("a".into(), 2), ("b".into(), 2)]
        );
        let scores: HashMap<u64, TweetScore> = [(7, 1), (3, 1), (9, 4)]
            .iter()
            .map(|(k, v)| {
                (
                    *k,
                    TweetScore {
                        score: *v,
                        text: String::new(),
                    },
                )
            })
            .collect();
        let ids: Vec<u64> = top_tweets(&scores, 10)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, vec![9, 3, 7]);
    }

    #[test]
    fn eviction_drops_old_buckets() {
        let mut a = Aggregator::new(MIN);
        a.apply_hashtag(1, 10, "x");
        a.apply_hashtag(2, MIN + 10, "x");
        a.evict_before(MIN);
        assert_eq!(a.bucket_starts().collect::<Vec<_>>(), vec![MIN]);
    }

    #[test]
    fn retweet_text_names_the_original() {
        assert_eq!(retweeted_text("RT @a_b: hello: world"), "hello: world");
        assert_eq!(retweeted_text("plain"), "");
    }

    /// One event of a random stream.
    #[derive(Debug, Clone)]
    enum Ev {
        Tag(u64, i64, u8),
        Tweet(u64, i64, i64),
        Retweet(u64, u64, i64),
    }

    fn apply(a: &mut Aggregator, e: &Ev) {
        match e {
            Ev::Tag(id, t, h) => {
                a.apply_hashtag(*id, *t, &format!("h{h}"));
            }
            Ev::Tweet(id, t, s) => {
                a.apply_tweet(*id, *t, *s, "");
            }
            Ev::Retweet(o, r, t) => {
                a.apply_retweet(*o, *r, *t, "");
            }
        }
    }

    /// Exact recomputation: distinct events, summed directly.
    fn recompute(events: &[Ev], start: i64, end: i64) -> BucketAggregate {
        let mut out = BucketAggregate::default();
        let mut seen_tags = HashSet::new();
        let mut seen_tweets = HashSet::new();
        let mut seen_rt = HashSet::new();
        for e in events {
            match e {
                Ev::Tag(id, t, h) if (start..end).contains(t) && seen_tags.insert((*id, *h)) => {
                    *out.hashtags.entry(format!("h{h}")).or_default() += 1;
                }
                Ev::Tweet(id, t, s) if (start..end).contains(t) && seen_tweets.insert(*id) => {
                    add_score(&mut out.tweets, *id, *s, "");
                }
                Ev::Retweet(o, r, t) if (start..end).contains(t) && seen_rt.insert((*o, *r)) => {
                    add_score(&mut out.tweets, *o, 1, "");
                }
                _ => {}
            }
        }
        out
    }

    // A tweet id always comes with the same time and score, as in real data.
    fn events() -> impl Strategy<Value = Vec<Ev>> {
        prop::collection::vec((0u8..3, 0u64..40, 0u8..6, 0u64..40), 0..120).prop_map(|raw| {
            raw.into_iter()
                .map(|(kind, id, h, other)| {
                    let t = (id as i64 * 7_919) % (10 * MIN);
                    match kind {
                        0 => Ev::Tag(id, t, h),
                        1 => Ev::Tweet(id, t, (id % 5) as i64),
                        _ => Ev::Retweet(other, id, t),
                    }
                })
                .collect()
        })
    }

    proptest! {
        /// Order and duplicates do not change the result, and a window equals
        /// an exact recomputation over the distinct events in its range.
        #[test]
        fn order_and_duplicates_do_not_matter(evs in events(), seed in any::<u64>(), start in 0i64..10, len in 1i64..10) {
            let mut a = Aggregator::new(MIN);
            for e in &evs { apply(&mut a, e); }
            let mut shuffled = evs.clone();
            shuffled.extend(evs.iter().take(evs.len() / 2).cloned());
            let n = shuffled.len().max(1);
            for i in 0..shuffled.len() {
                let j = (seed.wrapping_mul(i as u64 + 1) % n as u64) as usize;
                shuffled.swap(i, j);
            }
            let mut b = Aggregator::new(MIN);
            for e in &shuffled { apply(&mut b, e); }
            let (s, e) = (start * MIN, (start + len) * MIN);
            prop_assert_eq!(a.window(s, e), b.window(s, e));
            prop_assert_eq!(a.window(s, e), recompute(&evs, s, e));
        }

        /// Merge is associative and commutative, and a window is the sum of
        /// its buckets.
        #[test]
        fn merge_is_associative_and_commutative(evs in events()) {
            let mut a = Aggregator::new(MIN);
            for e in &evs { apply(&mut a, e); }
            let parts: Vec<BucketAggregate> = (0..10).map(|i| a.window(i * MIN, (i + 1) * MIN)).collect();
            let mut left = BucketAggregate::default();
            for p in &parts { left.merge(p); }
            let mut right = BucketAggregate::default();
            for p in parts.iter().rev() { right.merge(p); }
            let mut grouped = BucketAggregate::default();
            for chunk in parts.chunks(3) {
                let mut c = BucketAggregate::default();
                for p in chunk { c.merge(p); }
                grouped.merge(&c);
            }
            let whole = a.window(0, 10 * MIN);
            prop_assert_eq!(&left, &whole);
            prop_assert_eq!(&right, &whole);
            prop_assert_eq!(&grouped, &whole);
        }
    }
}

//! The batch views of one published version, in memory, indexed by bucket.
//!
//! Hashtag counts are held at three levels (minute, hour, day); a range is
//! summed from the largest periods that fit in it, so that 30 days read
//! about thirty day rows per hashtag instead of 43,200 minute rows.
//!
//! Tweet scores cannot be ranked that way: a top-N over a range needs each
//! tweet's sum over the range, and a month holds millions of tweets. Built
//! at load time from the `tweet_scores` rows, they are held
//!
//! - per tweet, as its buckets and running sums, which give the exact sum
//!   of any range for one tweet in two binary searches;
//! - as one list of every tweet by its total over all buckets, descending.
//!   A tweet's sum over any range is at most its total, so
//!   [`BatchView::top_tweets`] reads that list from the top, sums each tweet
//!   over the range, and stops as soon as the next total is below the N-th
//!   best sum: no tweet further down can enter the top N (a threshold
//!   algorithm with one sorted list);
//!   For a range within one day, the day's list by the tweets' sums over
//!   that day is read instead: a tighter bound, fewer tweets read.
//! - by day, hour and bucket, summed in full when the list by total would
//!   be read deeper than the range has rows (a range that only tweets of
//!   small totals fill), so that an answer never costs much more than
//!   summing the range.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use tweetlambda_batch::manifest::{self, Manifest};
use tweetlambda_batch::views::{DAY_MS, HOUR_MS};

use crate::error::{Error, Result};

/// How a top-tweets answer was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Every row of the range summed.
    Summed,
    /// The list by total read down to `read` tweets.
    ByTotal { read: usize },
}

/// Rows of one level: bucket start → (key, value) rows.
#[derive(Debug, Default, Clone)]
pub struct Level<K> {
    /// Bucket size of the level, in ms.
    pub size_ms: i64,
    /// Bucket start → rows.
    pub buckets: BTreeMap<i64, Vec<(K, i64)>>,
}

/// One version of the batch views.
#[derive(Debug, Default, Clone)]
pub struct BatchView {
    /// The manifest's version number.
    pub version: u64,
    /// The boundary B: the views hold buckets `< B`.
    pub boundary_ms: i64,
    /// Bucket size.
    pub bucket_ms: i64,
    /// Tweets archived at or after B (the realtime view must hold them).
    pub tweets_from_boundary: u64,
    /// Newest event time the version's input held.
    pub newest_event_ms: i64,
    /// The manifest, for `/api/status`.
    pub manifest: Option<Manifest>,
    /// Hashtags by dense index, and back.
    tags: Vec<String>,
    tag_index: HashMap<String, u32>,
    /// Largest level first; the last is the bucket level.
    hashtag_levels: Vec<Level<u32>>,
    /// Tweet ids by dense index (sums go into arrays, not hash maps).
    tweet_ids: Vec<u64>,
    tweet_index: HashMap<u64, u32>,
    /// Tweet scores by day, hour and bucket (the last).
    tweet_levels: Vec<Level<u32>>,
    /// Each tweet's buckets and running sums.
    postings: Postings,
    /// Tweet indexes by total score over all buckets, descending.
    by_total: Vec<u32>,
    /// False when a row's score is negative or a tweet's sum reaches
    /// `i64::MAX` (hand-made views): the threshold algorithm's bound needs
    /// non-negative scores and exact running sums, so every tweet's bucket
    /// rows are summed instead (and no day or hour lists are built).
    threshold_ok: bool,
    texts: HashMap<u64, String>,
}

/// Per tweet index `i`: its rows are `offsets[i]..offsets[i + 1]` of
/// `buckets` (ascending) and `sums` (the tweet's running sum up to and
/// including that row).
#[derive(Debug, Default, Clone)]
struct Postings {
    offsets: Vec<u32>,
    buckets: Vec<i64>,
    sums: Vec<i64>,
}

impl BatchView {
    /// Loads the version the manifest of `views` names; `None` if no version
    /// was published yet.
    pub fn load(views: &Path) -> Result<Option<BatchView>> {
        let Some(m) = manifest::read(views).map_err(|e| Error::Batch(e.to_string()))? else {
            return Ok(None);
        };
        let file = |name: &str| -> Result<Vec<PathBuf>> {
            m.views
                .get(name)
                .ok_or_else(|| Error::Batch(format!("the manifest names no {name} view")))?
                .files(views)
                .map_err(|e| Error::Batch(e.to_string()))
        };
        let mut view = BatchView {
            version: m.version,
            boundary_ms: m.boundary_ms,
            bucket_ms: m.bucket_ms,
            tweets_from_boundary: m.input.tweets_from_boundary,
            newest_event_ms: m
                .input
                .partitions
                .values()
                .filter_map(|p| p.newest_event.as_deref())
                .filter_map(|t| tweetlambda_core::parse_event_time(t).ok())
                .map(|t| t.timestamp_millis())
                .max()
                .unwrap_or(i64::MIN),
            ..BatchView::default()
        };
        let mut ids: HashMap<String, u32> = HashMap::new();
        for (name, size) in [
            ("hashtag_counts_day", DAY_MS),
            ("hashtag_counts_hour", HOUR_MS),
            ("hashtag_counts", m.bucket_ms),
        ] {
            if !m.views.contains_key(name) && name != "hashtag_counts" {
                continue;
            }
            let level = view.read_hashtags(&file(name)?, size, &mut ids)?;
            view.hashtag_levels.push(level);
        }
        view.tag_index = ids;
        view.read_tweets(&file("tweet_scores")?)?;
        view.manifest = Some(m);
        Ok(Some(view))
    }

    fn read_hashtags(
        &mut self,
        path: &[PathBuf],
        size_ms: i64,
        ids: &mut HashMap<String, u32>,
    ) -> Result<Level<u32>> {
        if path.is_empty() {
            // A version of a dataset without rows.
            return Ok(Level {
                size_ms,
                buckets: BTreeMap::new(),
            });
        }
        let df = read(path, &["bucket_start", "hashtag", "count"])?;
        let context = |e: PolarsError| Error::Batch(format!("{}: {e}", describe(path)));
        let buckets = df.column("bucket_start").map_err(context)?;
        let buckets = buckets.i64().map_err(context)?;
        let tags = df
            .column("hashtag")
            .map_err(context)?
            .str()
            .map_err(context)?;
        let counts = df
            .column("count")
            .map_err(context)?
            .i64()
            .map_err(context)?;
        let mut level = Level {
            size_ms,
            buckets: BTreeMap::new(),
        };
        for ((b, tag), c) in buckets.iter().zip(tags.iter()).zip(counts.iter()) {
            let (Some(b), Some(tag), Some(c)) = (b, tag, c) else {
                continue;
            };
            let id = match ids.get(tag) {
                Some(id) => *id,
                None => {
                    let id = self.tags.len() as u32;
                    self.tags.push(tag.to_string());
                    ids.insert(tag.to_string(), id);
                    id
                }
            };
            level.buckets.entry(b).or_default().push((id, c));
        }
        Ok(level)
    }

    fn read_tweets(&mut self, path: &[PathBuf]) -> Result<()> {
        if path.is_empty() {
            self.index_tweets(Level {
                size_ms: self.bucket_ms,
                buckets: BTreeMap::new(),
            });
            return Ok(());
        }
        let df = read(path, &["bucket_start", "tweet_id", "score", "text"])?;
        let context = |e: PolarsError| Error::Batch(format!("{}: {e}", describe(path)));
        let buckets = df.column("bucket_start").map_err(context)?;
        let buckets = buckets.i64().map_err(context)?;
        let ids = df
            .column("tweet_id")
            .map_err(context)?
            .str()
            .map_err(context)?;
        let scores = df
            .column("score")
            .map_err(context)?
            .i64()
            .map_err(context)?;
        let texts = df.column("text").map_err(context)?.str().map_err(context)?;
        let mut bucket_level = Level {
            size_ms: self.bucket_ms,
            buckets: BTreeMap::new(),
        };
        for (((b, id), s), text) in buckets
            .iter()
            .zip(ids.iter())
            .zip(scores.iter())
            .zip(texts.iter())
        {
            let (Some(b), Some(id), Some(s)) = (b, id.and_then(|i| i.parse::<u64>().ok()), s)
            else {
                continue;
            };
            let index = match self.tweet_index.get(&id) {
                Some(i) => *i,
                None => {
                    let i = self.tweet_ids.len() as u32;
                    self.tweet_ids.push(id);
                    self.tweet_index.insert(id, i);
                    i
                }
            };
            bucket_level.buckets.entry(b).or_default().push((index, s));
            if let Some(text) = text.filter(|t| !t.is_empty()) {
                self.texts.entry(id).or_insert_with(|| text.to_string());
            }
        }
        self.index_tweets(bucket_level);
        Ok(())
    }

    /// Builds the tweet lists and postings from the bucket rows.
    fn index_tweets(&mut self, mut bucket_level: Level<u32>) {
        let tweets = self.tweet_ids.len();
        let mut ok = true;
        // Postings, in two passes over the rows (counts, then fill): the
        // rows come in bucket order, so each tweet's buckets ascend.
        let mut offsets = vec![0u32; tweets + 1];
        for rows in bucket_level.buckets.values() {
            for (i, s) in rows {
                offsets[*i as usize + 1] += 1;
                ok &= *s >= 0;
            }
        }
        for i in 0..tweets {
            offsets[i + 1] += offsets[i];
        }
        let total = offsets[tweets] as usize;
        let mut next: Vec<u32> = offsets[..tweets].to_vec();
        let mut buckets = vec![0i64; total];
        let mut scores = vec![0i64; total];
        for (b, rows) in &bucket_level.buckets {
            for (i, s) in rows {
                let at = next[*i as usize] as usize;
                next[*i as usize] += 1;
                buckets[at] = *b;
                scores[at] = *s;
            }
        }
        for i in 0..tweets {
            let mut sum = 0i64;
            for score in &mut scores[offsets[i] as usize..offsets[i + 1] as usize] {
                sum = sum.saturating_add(*score);
                ok &= sum < i64::MAX;
                *score = sum;
            }
        }
        self.postings = Postings {
            offsets,
            buckets,
            sums: scores,
        };
        // Day and hour lists from the postings (rows of score 0 cannot move
        // a sum and are left out of them), for periods made of whole
        // buckets, and only over sums that are exact.
        let mut levels = Vec::new();
        for size_ms in [DAY_MS, HOUR_MS] {
            if !ok || size_ms <= self.bucket_ms || size_ms % self.bucket_ms != 0 {
                continue;
            }
            let mut level = Level {
                size_ms,
                buckets: BTreeMap::new(),
            };
            let p = &self.postings;
            let period = |at: usize| p.buckets[at] - p.buckets[at].rem_euclid(size_ms);
            for i in 0..tweets {
                let rows = p.offsets[i] as usize..p.offsets[i + 1] as usize;
                // A run of a tweet's rows in one period sums to the running
                // sum at its last row minus the one before it.
                let mut run_start = rows.start;
                for at in rows.clone() {
                    if at + 1 < rows.end && period(at + 1) == period(at) {
                        continue;
                    }
                    let before = if run_start == rows.start {
                        0
                    } else {
                        p.sums[run_start - 1]
                    };
                    let sum = p.sums[at] - before;
                    if sum != 0 {
                        level
                            .buckets
                            .entry(period(at))
                            .or_default()
                            .push((i as u32, sum));
                    }
                    run_start = at + 1;
                }
            }
            levels.push(level);
        }
        // The day lists, best first: the bound for ranges within a day.
        for level in levels.iter_mut().filter(|l| l.size_ms == DAY_MS) {
            for rows in level.buckets.values_mut() {
                rows.sort_unstable_by_key(|(i, s)| (Reverse(*s), *i));
            }
        }
        levels.push(std::mem::take(&mut bucket_level));
        self.tweet_levels = levels;
        let mut by_total: Vec<u32> = (0..tweets as u32).collect();
        by_total.sort_unstable_by_key(|i| (Reverse(self.tweet_total(*i as usize)), *i));
        self.by_total = by_total;
        self.threshold_ok = ok;
    }

    /// A tweet's sum over all its buckets.
    fn tweet_total(&self, index: usize) -> i64 {
        let p = &self.postings;
        match (p.offsets.get(index), p.offsets.get(index + 1)) {
            (Some(start), Some(end)) if end > start => p.sums[*end as usize - 1],
            _ => 0,
        }
    }

    /// The exact sum of one tweet's scores over `[from, to)` before B.
    fn tweet_sum(&self, index: usize, from: i64, to: i64) -> i64 {
        let p = &self.postings;
        let (Some(start), Some(end)) = (p.offsets.get(index), p.offsets.get(index + 1)) else {
            return 0;
        };
        let (start, end) = (*start as usize, *end as usize);
        let buckets = &p.buckets[start..end];
        let to = to.min(self.boundary_ms);
        // Running sum of the rows before position k (k rows in).
        let before = |k: usize| if k == 0 { 0 } else { p.sums[start + k - 1] };
        let lo = buckets.partition_point(|b| *b < from);
        let hi = buckets.partition_point(|b| *b < to);
        if hi <= lo {
            return 0;
        }
        before(hi).saturating_sub(before(lo))
    }

    /// The `n` best tweets over `[from, to)` before B, by score summed with
    /// `extra` (scores from after B, by tweet id), ranked by the product's
    /// rule; tweets whose sum is zero are left out. Exact: the same list as
    /// summing every tweet ([`BatchView::top_tweets_by_summing_all`]).
    pub fn top_tweets(
        &self,
        from: i64,
        to: i64,
        n: usize,
        extra: &HashMap<u64, i64>,
    ) -> Vec<(u64, i64)> {
        self.top_tweets_reading(from, to, n, extra).0
    }

    /// [`BatchView::top_tweets`], and how it was answered.
    fn top_tweets_reading(
        &self,
        from: i64,
        to: i64,
        n: usize,
        extra: &HashMap<u64, i64>,
    ) -> (Vec<(u64, i64)>, Reading) {
        if n == 0 {
            return (Vec::new(), Reading::Summed);
        }
        if !self.threshold_ok {
            let top = self.top_tweets_by_summing_all(from, to, n, extra);
            return (top, Reading::Summed);
        }
        let lists = self.range_lists(from, to);
        let rows: usize = lists.iter().map(|l| l.len()).sum();
        // Every tweet of `extra` is a candidate with its exact total.
        let mut totals: Vec<(u64, i64)> = Vec::with_capacity(extra.len() + 4 * n);
        for (id, s) in extra {
            let before_b = self
                .tweet_index(*id)
                .map_or(0, |i| self.tweet_sum(i, from, to));
            totals.push((*id, s.saturating_add(before_b)));
        }
        // The n best sums so far (a min-heap).
        let mut best: BinaryHeap<Reverse<i64>> = BinaryHeap::with_capacity(n + 1);
        let keep = |best: &mut BinaryHeap<Reverse<i64>>, total: i64| {
            if best.len() < n {
                best.push(Reverse(total));
            } else if best.peek().is_some_and(|Reverse(worst)| total > *worst) {
                best.pop();
                best.push(Reverse(total));
            }
        };
        for (_, total) in &totals {
            keep(&mut best, *total);
        }
        // The tightest list whose bound holds for the range: a tweet's sum
        // over its day when the range lies within one day, else its total.
        // (A day rollup exists only beside a smaller bucket level.)
        let day = match self.tweet_levels.as_slice() {
            [day, _, ..] if day.size_ms == DAY_MS => Some(day),
            _ => None,
        };
        let end = to.min(self.boundary_ms);
        let within_one_day = from.div_euclid(DAY_MS) == (end - 1).div_euclid(DAY_MS);
        let by_bound: Box<dyn Iterator<Item = (u32, i64)> + '_> = match day {
            Some(day) if within_one_day => {
                let rows = day.buckets.get(&(from - from.rem_euclid(DAY_MS)));
                Box::new(rows.into_iter().flatten().copied())
            }
            _ => Box::new(
                self.by_total
                    .iter()
                    .map(|i| (*i, self.tweet_total(*i as usize))),
            ),
        };
        let mut read = 0;
        for (i, bound) in by_bound {
            // Strictly below: a tweet whose sum equals the N-th best could
            // still win the tie by its smaller id.
            if bound <= 0 || (best.len() == n && best.peek().is_some_and(|Reverse(w)| bound < *w)) {
                break;
            }
            if read > rows {
                // Deeper than the range has rows: summing them costs less.
                return (self.sum_lists(&lists, n, extra), Reading::Summed);
            }
            read += 1;
            let id = self.tweet_id(i as usize);
            if !extra.contains_key(&id) {
                let sum = self.tweet_sum(i as usize, from, to);
                if sum > 0 {
                    totals.push((id, sum));
                    keep(&mut best, sum);
                }
            }
        }
        let top = tweetlambda_core::rank::top_n(totals.into_iter().filter(|(_, s)| *s > 0), n);
        (top, Reading::ByTotal { read })
    }

    /// [`BatchView::top_tweets`] by summing the range's rows (per day,
    /// hour and bucket; the fallback's way, tested on its own).
    #[cfg(test)]
    fn top_tweets_summing(
        &self,
        from: i64,
        to: i64,
        n: usize,
        extra: &HashMap<u64, i64>,
    ) -> Vec<(u64, i64)> {
        self.sum_lists(&self.range_lists(from, to), n, extra)
    }

    /// The day, hour and bucket rows that make up `[from, to)` before B.
    fn range_lists(&self, from: i64, to: i64) -> Vec<&[(u32, i64)]> {
        let mut lists: Vec<&[(u32, i64)]> = Vec::new();
        visit(&self.tweet_levels, self.boundary_ms, from, to, |rows| {
            lists.push(rows)
        });
        lists
    }

    /// Sums the rows of `lists` by tweet, adds `extra` and ranks.
    fn sum_lists(
        &self,
        lists: &[&[(u32, i64)]],
        n: usize,
        extra: &HashMap<u64, i64>,
    ) -> Vec<(u64, i64)> {
        let mut sums: HashMap<u64, i64> = extra.clone();
        for rows in lists {
            for (i, s) in rows.iter() {
                let sum = sums.entry(self.tweet_id(*i as usize)).or_default();
                *sum = sum.saturating_add(*s);
            }
        }
        tweetlambda_core::rank::top_n(sums.into_iter().filter(|(_, s)| *s > 0), n)
    }

    /// [`BatchView::top_tweets`] by summing every tweet of the range: the
    /// reference the threshold algorithm is tested against, and the way
    /// for views it cannot read.
    pub fn top_tweets_by_summing_all(
        &self,
        from: i64,
        to: i64,
        n: usize,
        extra: &HashMap<u64, i64>,
    ) -> Vec<(u64, i64)> {
        let mut sums = vec![0i64; self.tweet_count()];
        self.sum_tweets(from, to, |i, s| {
            if let Some(sum) = sums.get_mut(i) {
                *sum = sum.saturating_add(s);
            }
        });
        let mut others: Vec<(u64, i64)> = Vec::new();
        for (id, s) in extra {
            match self.tweet_index(*id) {
                Some(i) if i < sums.len() => sums[i] = sums[i].saturating_add(*s),
                _ => others.push((*id, *s)),
            }
        }
        let all = sums
            .iter()
            .enumerate()
            .map(|(i, s)| (self.tweet_id(i), *s))
            .chain(others);
        tweetlambda_core::rank::top_n(all.filter(|(_, s)| *s > 0), n)
    }

    /// Calls `f` with every (hashtag, count) row that makes up `[from, to)`
    /// (the part before B), using the largest periods that fit.
    pub fn sum_hashtags<'a>(&'a self, from: i64, to: i64, mut f: impl FnMut(&'a str, i64)) {
        visit(&self.hashtag_levels, self.boundary_ms, from, to, |rows| {
            for (id, c) in rows {
                if let Some(tag) = self.tags.get(*id as usize) {
                    f(tag, *c);
                }
            }
        });
    }

    /// Counts of `[from, to)` before B, indexed by hashtag index (see
    /// [`BatchView::tag`]).
    pub fn hashtag_counts(&self, from: i64, to: i64) -> Vec<i64> {
        let mut sums = vec![0i64; self.tags.len()];
        visit(&self.hashtag_levels, self.boundary_ms, from, to, |rows| {
            for (id, c) in rows {
                if let Some(s) = sums.get_mut(*id as usize) {
                    *s = s.saturating_add(*c);
                }
            }
        });
        sums
    }

    /// The hashtag of an index.
    pub fn tag(&self, index: usize) -> &str {
        self.tags.get(index).map_or("", String::as_str)
    }

    /// The index of a hashtag, if the views have it.
    pub fn tag_index(&self, tag: &str) -> Option<usize> {
        self.tag_index.get(tag).map(|i| *i as usize)
    }

    /// Calls `f` with every (tweet index, score) row of `[from, to)` before
    /// B (see [`BatchView::tweet_id`]).
    pub fn sum_tweets(&self, from: i64, to: i64, mut f: impl FnMut(usize, i64)) {
        let Some(level) = self.tweet_levels.last() else {
            return;
        };
        visit(
            std::slice::from_ref(level),
            self.boundary_ms,
            from,
            to,
            |rows| {
                for (index, s) in rows {
                    f(*index as usize, *s);
                }
            },
        );
    }

    /// Number of distinct tweets in the views.
    pub fn tweet_count(&self) -> usize {
        self.tweet_ids.len()
    }

    /// The tweet id of an index.
    pub fn tweet_id(&self, index: usize) -> u64 {
        self.tweet_ids.get(index).copied().unwrap_or(0)
    }

    /// The index of a tweet id, if the views have it.
    pub fn tweet_index(&self, id: u64) -> Option<usize> {
        self.tweet_index.get(&id).map(|i| *i as usize)
    }

    /// A tweet's text, if the views have it.
    pub fn text(&self, id: u64) -> Option<&str> {
        self.texts.get(&id).map(String::as_str)
    }
}

/// Walks `[from, min(to, B))` with the largest level whose period starts at
/// the cursor and fits. A rollup row sums only the buckets before B, so a
/// period that reaches past B fits as long as B does not pass `to`.
fn visit<'a, K>(
    levels: &'a [Level<K>],
    boundary: i64,
    from: i64,
    to: i64,
    mut f: impl FnMut(&'a [(K, i64)]),
) {
    let Some(base) = levels.last() else {
        return;
    };
    let end = to.min(boundary);
    let mut cursor = from;
    while cursor < end {
        let level = levels
            .iter()
            .find(|l| cursor.rem_euclid(l.size_ms) == 0 && (cursor + l.size_ms).min(boundary) <= to)
            .unwrap_or(base);
        if let Some(rows) = level.buckets.get(&cursor) {
            f(rows);
        }
        cursor += level.size_ms.max(1);
    }
}

/// Names the files of a view in an error: the directory (or file).
fn describe(files: &[PathBuf]) -> String {
    match files {
        [one] => one.display().to_string(),
        _ => files
            .first()
            .and_then(|f| f.parent())
            .map_or_else(|| "(no file)".to_string(), |d| d.display().to_string()),
    }
}

fn read(files: &[PathBuf], columns: &[&str]) -> Result<DataFrame> {
    let context = |e: PolarsError| Error::Batch(format!("{}: {e}", describe(files)));
    let select: Vec<Expr> = columns
        .iter()
        .map(|c| {
            if *c == "bucket_start" {
                col(*c).cast(DataType::Int64)
            } else {
                col(*c)
            }
        })
        .collect();
    let sources = ScanSources::Paths(
        files
            .iter()
            .map(|p| PlRefPath::new(p.to_string_lossy().into_owned()))
            .collect(),
    );
    let args = ScanArgsParquet {
        // The files are named by date; the names carry no columns.
        hive_options: HiveOptions {
            enabled: Some(false),
            ..Default::default()
        },
        ..Default::default()
    };
    LazyFrame::scan_parquet_sources(sources, args)
        .map_err(context)?
        .select(select)
        .collect()
        .map_err(context)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A batch view built from minute rows as the batch job would build it:
    /// rows `< boundary` kept, rolled up by hour and day.
    pub(crate) fn view_of(rows: &[(i64, &str, i64)], boundary: i64, bucket_ms: i64) -> BatchView {
        let mut view = BatchView {
            version: 1,
            boundary_ms: boundary,
            bucket_ms,
            newest_event_ms: boundary,
            ..BatchView::default()
        };
        let mut ids: HashMap<String, u32> = HashMap::new();
        for size in [DAY_MS, HOUR_MS, bucket_ms] {
            let mut sums: BTreeMap<(i64, u32), i64> = BTreeMap::new();
            for (t, tag, c) in rows.iter().filter(|r| r.0 < boundary) {
                let next = ids.len() as u32;
                let id = *ids.entry(tag.to_string()).or_insert_with(|| {
                    view.tags.push(tag.to_string());
                    next
                });
                let sum = sums.entry((t - t.rem_euclid(size), id)).or_default();
                *sum = sum.saturating_add(*c);
            }
            let mut level = Level {
                size_ms: size,
                buckets: BTreeMap::new(),
            };
            for ((b, id), c) in sums {
                level.buckets.entry(b).or_default().push((id, c));
            }
            view.hashtag_levels.push(level);
        }
        view.tag_index = ids;
        view.index_tweets(Level {
            size_ms: bucket_ms,
            buckets: BTreeMap::new(),
        });
        view
    }

    /// Adds (bucket, tweet id, score) rows `< B` to a test view, as
    /// `read_tweets` does.
    pub(crate) fn add_tweets(view: &mut BatchView, rows: &[(i64, u64, i64)]) {
        let mut level = view.tweet_levels.pop().unwrap_or_else(|| Level {
            size_ms: view.bucket_ms,
            buckets: BTreeMap::new(),
        });
        for (b, id, score) in rows.iter().filter(|r| r.0 < view.boundary_ms) {
            let next = view.tweet_ids.len() as u32;
            let index = *view.tweet_index.entry(*id).or_insert(next);
            if index == next {
                view.tweet_ids.push(*id);
            }
            level.buckets.entry(*b).or_default().push((index, *score));
        }
        view.index_tweets(level);
    }
}

#[cfg(test)]
mod threshold_tests {
    use super::tests::{add_tweets, view_of};
    use super::*;
    use proptest::prelude::*;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;

    fn view(rows: &[(i64, u64, i64)], boundary: i64) -> BatchView {
        view_with_bucket(rows, boundary, MIN)
    }

    fn view_with_bucket(rows: &[(i64, u64, i64)], boundary: i64, bucket: i64) -> BatchView {
        let mut view = view_of(&[], boundary, bucket);
        add_tweets(&mut view, rows);
        view
    }

    #[test]
    fn one_tweet_sum_over_any_range_from_its_postings() {
        let rows = [
            (0, 7, 2),
            (MIN, 7, 3),
            (HOUR, 7, 5),
            (DAY, 7, 11),
            (MIN, 8, 1),
        ];
        let v = view(&rows, 2 * DAY);
        let i = v.tweet_index(7).expect("indexed");
        assert_eq!(v.tweet_sum(i, 0, 2 * DAY), 21);
        assert_eq!(v.tweet_sum(i, MIN, HOUR + MIN), 8);
        assert_eq!(v.tweet_sum(i, HOUR + MIN, DAY), 0);
        // Nothing at or after B counts.
        assert_eq!(view(&rows, DAY).tweet_sum(i, 0, 3 * DAY), 10);
    }

    #[test]
    fn ties_at_the_bound_keep_reading_for_the_smaller_id() {
        // Tweet 9 comes first in the list by total (its index is smaller),
        // tweet 1 ties it and must win the tie by its id.
        let rows = [(0, 9, 6), (MIN, 1, 3), (2 * MIN, 1, 3), (3 * MIN, 5, 1)];
        let v = view(&rows, DAY);
        assert_eq!(v.by_total.first().map(|i| v.tweet_id(*i as usize)), Some(9));
        let none = HashMap::new();
        assert_eq!(v.top_tweets_reading(0, DAY, 1, &none).0, vec![(1, 6)]);
        assert_eq!(
            v.top_tweets_reading(0, DAY, 3, &none).0,
            vec![(1, 6), (9, 6), (5, 1)]
        );
    }

    #[test]
    fn the_list_by_total_stops_early_on_a_long_range() {
        // 1000 tweets of one row each, totals 1 to 1000, and one of 5000.
        let mut rows: Vec<(i64, u64, i64)> =
            (0..1000).map(|i| (i * MIN, i as u64 + 1, 1 + i)).collect();
        rows.push((5 * MIN, 5000, 5000));
        let v = view(&rows, DAY);
        let expected = v.top_tweets_by_summing_all(0, DAY, 3, &HashMap::new());
        assert_eq!(expected, vec![(5000, 5000), (1000, 1000), (999, 999)]);
        // Three reads settle it: the next total (998) is below the third
        // best sum.
        let (top, how) = v.top_tweets_reading(0, DAY, 3, &HashMap::new());
        assert_eq!(top, expected);
        assert_eq!(how, Reading::ByTotal { read: 3 });
        // A range that only the low-total tweets fill reads deeper than it
        // has rows, and is summed instead.
        let (top, how) = v.top_tweets_reading(900 * MIN, 910 * MIN, 3, &HashMap::new());
        assert_eq!(
            top,
            v.top_tweets_by_summing_all(900 * MIN, 910 * MIN, 3, &HashMap::new())
        );
        assert_eq!(how, Reading::Summed);
    }

    #[test]
    fn a_range_within_one_day_reads_that_day_s_list() {
        // Day 0: 500 tweets of large totals; day 1: 100 tweets of 1 to 100.
        let mut rows: Vec<(i64, u64, i64)> = (0..500)
            .map(|i| (i * MIN, i as u64 + 1, 1000 + i))
            .collect();
        rows.extend((0..100).map(|i| (DAY + i * MIN, 1000 + i as u64, 1 + i)));
        let v = view(&rows, 2 * DAY);
        let none = HashMap::new();
        let (top, how) = v.top_tweets_reading(DAY, DAY + HOUR, 2, &none);
        assert_eq!(top, vec![(1059, 60), (1058, 59)]);
        // The day's list starts at its best (100, 99, …, 61 are outside
        // the hour): 40 reads, then 60 and 59, then 58 is below 59. The
        // list by total would first read the 500 tweets of day 0.
        assert_eq!(how, Reading::ByTotal { read: 42 });
    }

    #[test]
    fn a_one_day_bucket_has_no_day_list_to_misread() {
        // Unsorted bucket rows, a zero first: the answer must still be exact.
        let rows = [(0, 1, 0), (0, 2, 5), (0, 3, 1), (0, 4, 7)];
        let v = view_with_bucket(&rows, 2 * DAY, DAY);
        let none = HashMap::new();
        assert_eq!(v.top_tweets(0, DAY, 1, &none), vec![(4, 7)]);
        assert_eq!(v.top_tweets(0, DAY, 3, &none), vec![(4, 7), (2, 5), (3, 1)]);
    }

    #[test]
    fn saturating_views_are_summed_row_by_row() {
        // A running sum at i64::MAX, then a later day: no rollup is built
        // from differences of saturated sums, and nothing overflows.
        let rows = [
            (0, 1, i64::MAX),
            (DAY, 1, 5),
            (DAY, 2, 3),
            (2 * DAY, 3, i64::MIN),
        ];
        let v = view(&rows, 3 * DAY);
        assert!(!v.threshold_ok);
        let none = HashMap::new();
        assert_eq!(v.top_tweets(DAY, 2 * DAY, 2, &none), vec![(1, 5), (2, 3)]);
    }

    #[test]
    fn negative_rows_are_summed_in_full() {
        let rows = [(0, 1, 5), (MIN, 1, -4), (0, 2, 3)];
        let v = view(&rows, DAY);
        assert!(!v.threshold_ok);
        assert_eq!(v.top_tweets(0, DAY, 1, &HashMap::new()), vec![(2, 3)]);
    }

    proptest! {
        /// Both ways give exactly what summing every tweet gives, for any
        /// bucket size, rows, boundary, range, N and scores after B.
        #[test]
        fn threshold_top_n_equals_the_brute_force_sum(
            bucket in prop::sample::select(vec![MIN, 36 * MIN, 7 * MIN, DAY, 2 * DAY]),
            rows in prop::collection::vec((0i64..4 * 24 * 60, 1u64..60, 0i64..40), 0..400),
            skew in prop::collection::vec((0i64..4 * 24 * 60, 1u64..5, 0i64..2000), 0..8),
            extra in prop::collection::vec((1u64..80, 0i64..300), 0..10),
            boundary_min in 0i64..4 * 24 * 60,
            from_min in 0i64..4 * 24 * 60,
            len_min in 1i64..4 * 24 * 60,
            n in 0usize..12,
        ) {
            // Times at bucket starts, as the views and the queries have them.
            let align = |t: i64| t - t.rem_euclid(bucket);
            let rows: Vec<(i64, u64, i64)> = rows
                .into_iter()
                .chain(skew)
                .map(|(m, id, s)| (align(m * MIN), id, s))
                .collect();
            let v = view_with_bucket(&rows, align(boundary_min * MIN), bucket);
            prop_assert!(v.threshold_ok);
            let extra: HashMap<u64, i64> = extra.into_iter().collect();
            let from = align(from_min * MIN);
            let to = align((from_min + len_min) * MIN - 1) + bucket;
            let expected = v.top_tweets_by_summing_all(from, to, n, &extra);
            // By the list of totals (or its fallback), and by summing the
            // range's rows.
            prop_assert_eq!(&v.top_tweets(from, to, n, &extra), &expected);
            prop_assert_eq!(&v.top_tweets_summing(from, to, n, &extra), &expected);
        }
    }
}

//! The batch views of one published version, in memory.
//!
//! Hashtag counts and tweet scores are each held as a `Ranked` (module
//! `ranked`): per key its buckets and running sums, rollups by hour and
//! day (each by value, and their keys by total), and a list of keys by
//! total, from which a top N over any range is read without summing every
//! key of the range (see that module). The hashtag rollups are built from
//! the bucket rows here; the batch's own hour and day views are for other
//! readers.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use tweetlambda_batch::manifest::{self, Manifest};

use crate::error::{Error, Result};
use crate::ranked::{Level, Ranked, Reading};

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
    /// Hashtag counts by hashtag index.
    hashtags: Ranked,
    /// Tweet ids by dense index (sums go into arrays, not hash maps).
    tweet_ids: Vec<u64>,
    tweet_index: HashMap<u64, u32>,
    /// Tweet scores by tweet index.
    tweets: Ranked,
    texts: HashMap<u64, String>,
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
        view.read_hashtags(&file("hashtag_counts")?)?;
        view.read_tweets(&file("tweet_scores")?)?;
        view.manifest = Some(m);
        Ok(Some(view))
    }

    fn read_hashtags(&mut self, path: &[PathBuf]) -> Result<()> {
        let mut level = Level {
            size_ms: self.bucket_ms,
            buckets: BTreeMap::new(),
        };
        if !path.is_empty() {
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
            for ((b, tag), c) in buckets.iter().zip(tags.iter()).zip(counts.iter()) {
                let (Some(b), Some(tag), Some(c)) = (b, tag, c) else {
                    continue;
                };
                let id = self.intern_tag(tag);
                level.buckets.entry(b).or_default().push((id, c));
            }
        }
        self.hashtags = Ranked::build(level, self.tags.len());
        Ok(())
    }

    /// The index of a hashtag, given it a new one if it has none.
    fn intern_tag(&mut self, tag: &str) -> u32 {
        if let Some(id) = self.tag_index.get(tag) {
            return *id;
        }
        let id = self.tags.len() as u32;
        self.tags.push(tag.to_string());
        self.tag_index.insert(tag.to_string(), id);
        id
    }

    /// The index of a tweet id, given it a new one if it has none.
    fn intern_tweet(&mut self, id: u64) -> u32 {
        if let Some(i) = self.tweet_index.get(&id) {
            return *i;
        }
        let i = self.tweet_ids.len() as u32;
        self.tweet_ids.push(id);
        self.tweet_index.insert(id, i);
        i
    }

    fn read_tweets(&mut self, path: &[PathBuf]) -> Result<()> {
        let mut level = Level {
            size_ms: self.bucket_ms,
            buckets: BTreeMap::new(),
        };
        if !path.is_empty() {
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
                let index = self.intern_tweet(id);
                level.buckets.entry(b).or_default().push((index, s));
                if let Some(text) = text.filter(|t| !t.is_empty()) {
                    self.texts.entry(id).or_insert_with(|| text.to_string());
                }
            }
        }
        self.tweets = Ranked::build(level, self.tweet_ids.len());
        Ok(())
    }

    /// The `n` best hashtags over `[from, to)` before B, by count summed
    /// with `extra` (counts from after B, by hashtag), ranked by the
    /// product's rule; hashtags whose sum is zero are left out. Exact: the
    /// same list as summing every hashtag of the range.
    pub fn top_hashtags<'a>(
        &'a self,
        from: i64,
        to: i64,
        n: usize,
        extra: &HashMap<&'a str, i64>,
    ) -> Vec<(&'a str, i64)> {
        let index = |tag: &&str| self.tag_index.get(*tag).copied();
        let key = |i: u32| self.tag(i as usize);
        self.top(&self.hashtags, (from, to), n, extra, index, key).0
    }

    /// The `n` best tweets over `[from, to)` before B, by score summed with
    /// `extra` (scores from after B, by tweet id), ranked by the product's
    /// rule; tweets whose sum is zero are left out. Exact: the same list as
    /// summing every tweet of the range.
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
        let index = |id: &u64| self.tweet_index.get(id).copied();
        let key = |i: u32| self.tweet_id(i as usize);
        self.top(&self.tweets, (from, to), n, extra, index, key)
    }

    /// The top `n` of one view over `range` with `extra` added: the
    /// view's candidates (`index` gives a key's index in it, `key` the
    /// key of an index) and the keys of `extra` it does not have, ranked.
    fn top<K: Ord + Copy>(
        &self,
        ranked: &Ranked,
        (from, to): (i64, i64),
        n: usize,
        extra: &HashMap<K, i64>,
        index: impl Fn(&K) -> Option<u32>,
        key: impl Fn(u32) -> K,
    ) -> (Vec<(K, i64)>, Reading) {
        let mut known: HashMap<u32, i64> = HashMap::new();
        let mut unknown: Vec<(K, i64)> = Vec::new();
        for (k, v) in extra {
            match index(k) {
                Some(i) => {
                    known.insert(i, *v);
                }
                None => unknown.push((*k, *v)),
            }
        }
        let unknown_sums = unknown.iter().map(|(_, v)| *v);
        let (candidates, reading) =
            ranked.candidates(self.boundary_ms, from, to, n, &known, unknown_sums);
        let all = candidates
            .into_iter()
            .map(|(i, v)| (key(i), v))
            .chain(unknown);
        let top = tweetlambda_core::rank::top_n(all.filter(|(_, v)| *v > 0), n);
        (top, reading)
    }

    /// Calls `f` with every (hashtag, count) row that makes up `[from, to)`
    /// (the part before B), using the largest periods that fit.
    pub fn sum_hashtags<'a>(&'a self, from: i64, to: i64, mut f: impl FnMut(&'a str, i64)) {
        self.hashtags.visit(self.boundary_ms, from, to, |rows| {
            for (id, c) in rows {
                f(self.tag(*id as usize), *c);
            }
        });
    }

    /// The hashtag of an index.
    pub fn tag(&self, index: usize) -> &str {
        self.tags.get(index).map_or("", String::as_str)
    }

    /// The tweet id of an index.
    pub fn tweet_id(&self, index: usize) -> u64 {
        self.tweet_ids.get(index).copied().unwrap_or(0)
    }

    /// A tweet's text, if the views have it.
    pub fn text(&self, id: u64) -> Option<&str> {
        self.texts.get(&id).map(String::as_str)
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

    /// A batch view built from (time, hashtag, count) rows as the batch job
    /// would build it: rows `< boundary` kept, summed by bucket.
    pub(crate) fn view_of(rows: &[(i64, &str, i64)], boundary: i64, bucket_ms: i64) -> BatchView {
        let mut view = BatchView {
            version: 1,
            boundary_ms: boundary,
            bucket_ms,
            newest_event_ms: boundary,
            ..BatchView::default()
        };
        let mut sums: BTreeMap<(i64, u32), i64> = BTreeMap::new();
        for (t, tag, c) in rows.iter().filter(|r| r.0 < boundary) {
            let id = view.intern_tag(tag);
            let sum = sums.entry((t - t.rem_euclid(bucket_ms), id)).or_default();
            *sum = sum.saturating_add(*c);
        }
        let mut level = Level {
            size_ms: bucket_ms,
            buckets: BTreeMap::new(),
        };
        for ((b, id), c) in sums {
            level.buckets.entry(b).or_default().push((id, c));
        }
        view.hashtags = Ranked::build(level, view.tags.len());
        set_tweets(&mut view, &[]);
        view
    }

    /// Sets the (bucket, tweet id, score) rows `< B` of a test view, as
    /// `read_tweets` does.
    pub(crate) fn set_tweets(view: &mut BatchView, rows: &[(i64, u64, i64)]) {
        let mut level = Level {
            size_ms: view.bucket_ms,
            buckets: BTreeMap::new(),
        };
        let boundary = view.boundary_ms;
        for (b, id, score) in rows.iter().filter(|r| r.0 < boundary) {
            let index = view.intern_tweet(*id);
            level.buckets.entry(*b).or_default().push((index, *score));
        }
        view.tweets = Ranked::build(level, view.tweet_ids.len());
    }

    /// The reference: every row of `[from, min(to, B))` summed by key,
    /// `extra` added, ranked.
    pub(crate) fn brute_force<K: Ord + Copy + std::hash::Hash>(
        rows: &[(i64, K, i64)],
        boundary: i64,
        (from, to): (i64, i64),
        n: usize,
        extra: &HashMap<K, i64>,
    ) -> Vec<(K, i64)> {
        let mut sums: HashMap<K, i64> = extra.clone();
        for (t, k, v) in rows {
            if *t >= from && *t < to.min(boundary) {
                let sum = sums.entry(*k).or_default();
                *sum = sum.saturating_add(*v);
            }
        }
        tweetlambda_core::rank::top_n(sums.into_iter().filter(|(_, v)| *v > 0), n)
    }
}

#[cfg(test)]
mod threshold_tests {
    use super::tests::{brute_force, set_tweets, view_of};
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
        set_tweets(&mut view, rows);
        view
    }

    /// The top tweets by summing the range's rows (day, hour and bucket),
    /// the fallback's way, on its own.
    fn top_tweets_summing(
        v: &BatchView,
        (from, to): (i64, i64),
        n: usize,
        extra: &HashMap<u64, i64>,
    ) -> Vec<(u64, i64)> {
        let mut lists = Vec::new();
        v.tweets
            .visit(v.boundary_ms, from, to, |rows| lists.push(rows));
        let mut sums: HashMap<u64, i64> = extra.clone();
        for (i, s) in lists.into_iter().flatten() {
            let sum = sums.entry(v.tweet_id(*i as usize)).or_default();
            *sum = sum.saturating_add(*s);
        }
        tweetlambda_core::rank::top_n(sums.into_iter().filter(|(_, s)| *s > 0), n)
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
        let i = v.tweet_index[&7] as usize;
        let sum = |v: &BatchView, from, to| v.tweets.sum(i, v.boundary_ms, from, to);
        assert_eq!(sum(&v, 0, 2 * DAY), 21);
        assert_eq!(sum(&v, MIN, HOUR + MIN), 8);
        assert_eq!(sum(&v, HOUR + MIN, DAY), 0);
        // Nothing at or after B counts.
        assert_eq!(sum(&view(&rows, DAY), 0, 3 * DAY), 10);
    }

    #[test]
    fn ties_at_the_bound_keep_reading_for_the_smaller_id() {
        // Tweet 9 comes first in the list by total (its index is smaller),
        // tweet 1 ties it and must win the tie by its id.
        let rows = [(0, 9, 6), (MIN, 1, 3), (2 * MIN, 1, 3), (3 * MIN, 5, 1)];
        let v = view(&rows, DAY);
        let first = v.tweets.by_total.first();
        assert_eq!(first.map(|i| v.tweet_id(*i as usize)), Some(9));
        let none = HashMap::new();
        assert_eq!(v.top_tweets_reading(0, DAY, 1, &none).0, vec![(1, 6)]);
        assert_eq!(
            v.top_tweets_reading(0, DAY, 3, &none).0,
            vec![(1, 6), (9, 6), (5, 1)]
        );
    }

    #[test]
    fn the_list_by_total_stops_early_on_a_long_range() {
        // 1000 tweets with a row a day on days 0 to 2, of 1 to 1000 at the
        // minute of their number (totals 3 to 3000), and one of 5000 a
        // day: no row holds most of a tweet's score, so the list of every
        // key by total is read (beside the days' lists by value).
        let mut rows: Vec<(i64, u64, i64)> = Vec::new();
        for day in 0..3 {
            rows.extend((0..1000).map(|i| (day * DAY + i * MIN, i as u64 + 1, 1 + i)));
            rows.push((day * DAY + 5 * MIN, 5000, 5000));
        }
        let v = view(&rows, 3 * DAY);
        assert!(!v.tweets.concentrated);
        let none = HashMap::new();
        let expected = brute_force(&rows, 3 * DAY, (0, 3 * DAY), 3, &none);
        assert_eq!(expected, vec![(5000, 15000), (1000, 3000), (999, 2997)]);
        // Three reads settle it: the next total (2994) is below the third
        // best sum, as are the days' next rows added up.
        let (top, how) = v.top_tweets_reading(0, 3 * DAY, 3, &none);
        assert_eq!(top, expected);
        assert_eq!(how, Reading::ByLists { read: 3 });
        // Ten minutes of tweets 901 to 910 on day 0: the list by total and
        // the hour's list (up to tweet 960) read deeper than the range has
        // rows, and the range is summed instead.
        let range = (900 * MIN, 910 * MIN);
        let (top, how) = v.top_tweets_reading(range.0, range.1, 3, &none);
        assert_eq!(top, brute_force(&rows, 3 * DAY, range, 3, &none));
        assert_eq!(top, vec![(910, 910), (909, 909), (908, 908)]);
        assert_eq!(how, Reading::Summed);
    }

    #[test]
    fn a_short_range_reads_its_own_tweets_by_total() {
        // 1000 tweets of one row each (totals 1 to 1000) and one of 5000,
        // retweeted once a minute later: most of each score is in one row.
        let mut rows: Vec<(i64, u64, i64)> =
            (0..1000).map(|i| (i * MIN, i as u64 + 1, 1 + i)).collect();
        rows.push((5 * MIN, 5000, 5000));
        rows.push((6 * MIN, 5000, 1));
        let v = view(&rows, DAY);
        assert!(v.tweets.concentrated);
        let none = HashMap::new();
        // 10 minutes of tweets 901 to 910: the range's keys by total give
        // them best first, and three reads settle it (the next, 907, is
        // below the third best). The list by total would first read the
        // 90 tweets of larger totals outside the range.
        let range = (900 * MIN, 910 * MIN);
        let (top, how) = v.top_tweets_reading(range.0, range.1, 3, &none);
        assert_eq!(top, brute_force(&rows, DAY, range, 3, &none));
        assert_eq!(top, vec![(910, 910), (909, 909), (908, 908)]);
        assert_eq!(how, Reading::ByLists { read: 3 });
        // Only the retweet's minute of 5000 in the range: its total (5001)
        // is read first, its sum there is 1.
        let (top, how) = v.top_tweets_reading(6 * MIN, 8 * MIN, 2, &none);
        assert_eq!(top, vec![(8, 8), (7, 7)]);
        assert_eq!(how, Reading::ByLists { read: 3 });
    }

    #[test]
    fn a_range_at_or_after_b_reads_no_list() {
        // B is day 1: the batch part of [B, B + 1 h) is empty, the
        // realtime values alone rank (and no list is read).
        let rows: Vec<(i64, u64, i64)> = (0..50).map(|i| (i * MIN, i as u64 + 1, 1 + i)).collect();
        let v = view(&rows, DAY);
        let extra = HashMap::from([(7, 3), (10_000, 9)]);
        let (top, how) = v.top_tweets_reading(DAY, DAY + HOUR, 5, &extra);
        assert_eq!(top, vec![(10_000, 9), (7, 3)]);
        assert_eq!(top, brute_force(&rows, DAY, (DAY, DAY + HOUR), 5, &extra));
        assert_eq!(how, Reading::ByLists { read: 0 });
    }

    #[test]
    fn a_range_of_an_hour_reads_that_hour_s_list() {
        // Day 0: 500 tweets of large totals; day 1: 100 tweets of 1 to 100.
        let mut rows: Vec<(i64, u64, i64)> = (0..500)
            .map(|i| (i * MIN, i as u64 + 1, 1000 + i))
            .collect();
        rows.extend((0..100).map(|i| (DAY + i * MIN, 1000 + i as u64, 1 + i)));
        let v = view(&rows, 2 * DAY);
        let none = HashMap::new();
        let (top, how) = v.top_tweets_reading(DAY, DAY + HOUR, 2, &none);
        assert_eq!(top, vec![(1059, 60), (1058, 59)]);
        // The hour's keys by total (beside them its list by value, in the
        // same order) start at its best: 60 and 59, then 58 is below 59.
        // The day's list would first read 100 to 61 (outside the hour),
        // the list by total the 500 of day 0.
        assert_eq!(how, Reading::ByLists { read: 2 });
    }

    #[test]
    fn a_range_of_two_days_reads_both_days_lists_together() {
        // Day 0: 500 tweets of large totals; days 1 and 2: 100 tweets of 1
        // to 100 each, and tweet 7777 with 150 on each day.
        let mut rows: Vec<(i64, u64, i64)> = (0..500)
            .map(|i| (i * MIN, i as u64 + 1, 1000 + i))
            .collect();
        for day in [1, 2] {
            rows.extend(
                (0..100).map(|i| (day * DAY + i * MIN, day as u64 * 1000 + i as u64, 1 + i)),
            );
            rows.push((day * DAY + 200 * MIN, 7777, 150));
        }
        let v = view(&rows, 3 * DAY);
        let none = HashMap::new();
        let expected = brute_force(&rows, 3 * DAY, (DAY, 3 * DAY), 1, &none);
        assert_eq!(expected, vec![(7777, 300)]);
        let (top, how) = v.top_tweets_reading(DAY, 3 * DAY, 1, &none);
        assert_eq!(top, expected);
        // 7777 heads both days' keys by total: read once; the next total
        // is 100, below 300. The list by total would read day 0's 500
        // first.
        assert_eq!(how, Reading::ByLists { read: 1 });
        // A key at the head of one list only still needs the other's rows.
        let (top, _) = v.top_tweets_reading(DAY, 3 * DAY, 3, &none);
        assert_eq!(top, brute_force(&rows, 3 * DAY, (DAY, 3 * DAY), 3, &none));
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
        assert!(!v.tweets.exact);
        let none = HashMap::new();
        assert_eq!(v.top_tweets(DAY, 2 * DAY, 2, &none), vec![(1, 5), (2, 3)]);
    }

    #[test]
    fn negative_rows_are_summed_in_full() {
        let rows = [(0, 1, 5), (MIN, 1, -4), (0, 2, 3)];
        let v = view(&rows, DAY);
        assert!(!v.tweets.exact);
        assert_eq!(v.top_tweets(0, DAY, 1, &HashMap::new()), vec![(2, 3)]);
    }

    #[test]
    fn top_hashtags_over_a_month_read_a_few_hashtags() {
        // 30 days; hashtag "a" leads every day, "b" is second, and 2000
        // others of one mention each.
        let mut rows: Vec<(i64, String, i64)> = Vec::new();
        for day in 0..30 {
            rows.push((day * DAY + HOUR, "a".into(), 50));
            rows.push((day * DAY + 2 * HOUR, "b".into(), 20));
            for k in 0..2000 {
                rows.push((day * DAY + k * MIN / 2, format!("t{day}-{k}"), 1));
            }
        }
        let borrowed: Vec<(i64, &str, i64)> =
            rows.iter().map(|(t, k, c)| (*t, k.as_str(), *c)).collect();
        let v = view_of(&borrowed, 30 * DAY, MIN);
        // A realtime count of a hashtag the batch does not know enters too.
        let extra: HashMap<&str, i64> = [("new", 700), ("b", 1)].into_iter().collect();
        let index = |tag: &&str| v.tag_index.get(*tag).copied();
        let key = |i: u32| v.tag(i as usize);
        let (top, how) = v.top(&v.hashtags, (0, 30 * DAY), 2, &extra, index, key);
        assert_eq!(top, vec![("a", 1500), ("new", 700)]);
        assert_eq!(
            top,
            brute_force(&borrowed, 30 * DAY, (0, 30 * DAY), 2, &extra)
        );
        // "b" (601 with its realtime count) and "new" (700) set the bar at
        // 601; "a" raises it to 700; the next total, b's 600, is below it.
        assert_eq!(how, Reading::ByLists { read: 1 });
    }

    proptest! {
        /// Both ways give exactly what summing every tweet gives, for any
        /// bucket size, rows, boundary, range, N and scores after B.
        #[test]
        fn threshold_top_n_equals_the_brute_force_sum(
            bucket in prop::sample::select(vec![MIN, 36 * MIN, 7 * MIN, DAY, 2 * DAY]),
            rows in prop::collection::vec((0i64..4 * 24 * 60, 1u64..2000, 0i64..40), 0..400),
            spread in any::<bool>(),
            skew in prop::collection::vec((0i64..4 * 24 * 60, 1u64..5, 0i64..2000), 0..8),
            extra in prop::collection::vec((1u64..80, 0i64..300), 0..10),
            boundary_min in 0i64..4 * 24 * 60,
            from_min in 0i64..4 * 24 * 60,
            len_min in prop_oneof![1i64..5 * 60, 1i64..4 * 24 * 60],
            n in 0usize..12,
        ) {
            // Times at bucket starts, as the views and the queries have them.
            let align = |t: i64| t - t.rem_euclid(bucket);
            let rows: Vec<(i64, u64, i64)> = rows
                .into_iter()
                .map(|(m, id, s)| (m, if spread { id % 59 + 1 } else { id }, s))
                .chain(skew)
                .map(|(m, id, s)| (align(m * MIN), id, s))
                .collect();
            let boundary = align(boundary_min * MIN);
            let v = view_with_bucket(&rows, boundary, bucket);
            prop_assert!(v.tweets.exact);
            let extra: HashMap<u64, i64> = extra.into_iter().collect();
            let from = align(from_min * MIN);
            let to = align((from_min + len_min) * MIN - 1) + bucket;
            let expected = brute_force(&rows, boundary, (from, to), n, &extra);
            // By the list of totals (or its fallback), and by summing the
            // range's rows.
            prop_assert_eq!(&v.top_tweets(from, to, n, &extra), &expected);
            prop_assert_eq!(&top_tweets_summing(&v, (from, to), n, &extra), &expected);
            // The same rows as hashtag counts (the key a name, ranked by
            // name on ties, the batch's rollups summed).
            let name = |id: u64| format!("h{id:03}");
            let names: Vec<(i64, String, i64)> =
                rows.iter().map(|(t, id, c)| (*t, name(*id), *c)).collect();
            let tags: Vec<(i64, &str, i64)> =
                names.iter().map(|(t, k, c)| (*t, k.as_str(), *c)).collect();
            let extra_names: Vec<(String, i64)> =
                extra.iter().map(|(id, c)| (name(*id), *c)).collect();
            let extra_tags: HashMap<&str, i64> =
                extra_names.iter().map(|(k, c)| (k.as_str(), *c)).collect();
            let v = view_of(&tags, boundary, bucket);
            prop_assert_eq!(
                v.top_hashtags(from, to, n, &extra_tags),
                brute_force(&tags, boundary, (from, to), n, &extra_tags)
            );
        }
    }
}

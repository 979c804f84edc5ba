//! The batch views of one published version, in memory, indexed by bucket.
//!
//! Hashtag counts are held at three levels (minute, hour, day); a range is
//! summed from the largest periods that fit in it, so that 30 days read
//! about thirty day rows per hashtag instead of 43,200 minute rows. Tweet
//! scores are held per minute (the batch layer has no tweet rollups).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use polars::prelude::*;
use tweetlambda_batch::manifest::{self, Manifest};

use crate::error::{Error, Result};

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
    tweets: Level<u32>,
    texts: HashMap<u64, String>,
}

impl BatchView {
    /// Loads the version the manifest of `views` names; `None` if no version
    /// was published yet.
    pub fn load(views: &Path) -> Result<Option<BatchView>> {
        let Some(m) = manifest::read(views).map_err(|e| Error::Batch(e.to_string()))? else {
            return Ok(None);
        };
        let file = |name: &str| -> Result<std::path::PathBuf> {
            m.views
                .get(name)
                .map(|f| views.join(&f.path))
                .ok_or_else(|| Error::Batch(format!("the manifest names no {name} view")))
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
            ("hashtag_counts_day", tweetlambda_batch::views::DAY_MS),
            ("hashtag_counts_hour", tweetlambda_batch::views::HOUR_MS),
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
        path: &Path,
        size_ms: i64,
        ids: &mut HashMap<String, u32>,
    ) -> Result<Level<u32>> {
        let df = read(path, &["bucket_start", "hashtag", "count"])?;
        let context = |e: PolarsError| Error::Batch(format!("{}: {e}", path.display()));
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

    fn read_tweets(&mut self, path: &Path) -> Result<()> {
        let df = read(path, &["bucket_start", "tweet_id", "score", "text"])?;
        let context = |e: PolarsError| Error::Batch(format!("{}: {e}", path.display()));
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
        self.tweets.size_ms = self.bucket_ms;
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
            self.tweets.buckets.entry(b).or_default().push((index, s));
            if let Some(text) = text.filter(|t| !t.is_empty()) {
                self.texts.entry(id).or_insert_with(|| text.to_string());
            }
        }
        Ok(())
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
        visit(
            std::slice::from_ref(&self.tweets),
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
fn visit<K>(
    levels: &[Level<K>],
    boundary: i64,
    from: i64,
    to: i64,
    mut f: impl FnMut(&[(K, i64)]),
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

fn read(path: &Path, columns: &[&str]) -> Result<DataFrame> {
    let context = |e: PolarsError| Error::Batch(format!("{}: {e}", path.display()));
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
    LazyFrame::scan_parquet(
        PlRefPath::new(path.to_string_lossy().into_owned()),
        ScanArgsParquet::default(),
    )
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
        for size in [
            tweetlambda_batch::views::DAY_MS,
            tweetlambda_batch::views::HOUR_MS,
            bucket_ms,
        ] {
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
        view.tweets.size_ms = bucket_ms;
        view
    }

    /// Adds (bucket, tweet id, score) rows `< B` to a test view.
    pub(crate) fn add_tweets(view: &mut BatchView, rows: &[(i64, u64, i64)]) {
        for (b, id, score) in rows.iter().filter(|r| r.0 < view.boundary_ms) {
            let next = view.tweet_ids.len() as u32;
            let index = *view.tweet_index.entry(*id).or_insert(next);
            if index == next {
                view.tweet_ids.push(*id);
            }
            view.tweets
                .buckets
                .entry(*b)
                .or_default()
                .push((index, *score));
        }
    }
}

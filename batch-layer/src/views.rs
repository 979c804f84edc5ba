//! The batch views, computed with Polars over the committed files of the
//! master dataset.
//!
//! Every view is a table of per-bucket partial aggregates, defined as in
//! [`tweetlambda_core::aggregate`] (the speed layer's definitions):
//!
//! | view | columns | one row per |
//! |------|---------|-------------|
//! | `hashtag_counts` | `bucket_start` timestamp(ms, UTC), `hashtag` string, `count` int64 | bucket and hashtag: distinct tweets mentioning it |
//! | `tweet_scores` | `bucket_start`, `tweet_id` string, `score` int64, `text` string | bucket and tweet: its own engagement score in the bucket of its creation, plus 1 per retweet of it created in the bucket |
//! | `hashtag_counts_hour`, `hashtag_counts_day` | same as `hashtag_counts` | hour or day (UTC) and hashtag |
//!
//! Tweet scores have no rollups: nearly every tweet lives in one minute, so
//! they would be as large as `tweet_scores`. Tweets are deduplicated by id
//! first (the first copy in file and offset order is kept). Only buckets before the boundary
//! are kept, so a rollup row sums the buckets of its hour or day that are
//! before the boundary. `text` is the tweet's own text, or, in a bucket
//! where only its retweets appear, the original text that they carry.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::error::{Error, Result};

/// Bucket size of the rollups, in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// Bucket size of the daily rollups, in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The deduplicated tweets of the master dataset, ready for aggregation.
pub struct Tweets {
    frame: DataFrame,
    bucket_ms: i64,
}

/// A computed view, ready to be written.
pub struct View {
    /// File stem (`hashtag_counts`, …).
    pub name: &'static str,
    /// Its rows.
    pub frame: DataFrame,
}

fn polars_error(context: &str) -> impl FnOnce(PolarsError) -> Error + '_ {
    move |e| Error::Polars(format!("{context}: {e}"))
}

fn scan(files: &[PathBuf]) -> PolarsResult<LazyFrame> {
    let args = ScanArgsParquet {
        // The paths carry `date=…`, but the files hold the full event time.
        hive_options: HiveOptions {
            enabled: Some(false),
            ..Default::default()
        },
        ..Default::default()
    };
    let sources = ScanSources::Paths(
        files
            .iter()
            .map(|p| PlRefPath::new(p.to_string_lossy().into_owned()))
            .collect(),
    );
    LazyFrame::scan_parquet_sources(sources, args)
}

/// The hashtag rollups (name, period) for a bucket size: they exist when
/// the bucket size divides an hour.
fn rollups(bucket_ms: i64) -> &'static [(&'static str, i64)] {
    if HOUR_MS % bucket_ms == 0 {
        &[
            ("hashtag_counts_hour", HOUR_MS),
            ("hashtag_counts_day", DAY_MS),
        ]
    } else {
        &[]
    }
}

/// The names of the views computed for a bucket size.
pub fn view_names(bucket_ms: i64) -> Vec<&'static str> {
    let mut names = vec!["hashtag_counts", "tweet_scores"];
    names.extend(rollups(bucket_ms).iter().map(|(name, _)| *name));
    names
}

/// The newest event time of one master-dataset file, read from its
/// `created_at` column (for files whose footer has no statistics).
pub fn newest_event_ms(file: &Path) -> Result<Option<i64>> {
    let context = file.display().to_string();
    let df = scan(&[file.to_path_buf()])
        .and_then(|lf| {
            lf.select([col("created_at").cast(DataType::Int64).max()])
                .collect()
        })
        .map_err(|e| Error::Corrupt(format!("{context}: {e}")))?;
    let value = df
        .column("created_at")
        .and_then(|c| c.i64().map(|c| c.get(0)))
        .map_err(|e| Error::Corrupt(format!("{context}: {e}")))?;
    Ok(value)
}

/// Runs a query on Polars' streaming engine: on the batch's queries it
/// measured about twice as fast as the in-memory engine (reading and
/// deduplicating 10M tweets, the tweet_scores join).
fn collect(query: LazyFrame) -> PolarsResult<DataFrame> {
    // One query (not `collect_all`) has one result frame.
    Ok(query
        .collect_with_engine(Engine::Streaming)?
        .unwrap_single())
}

fn bucket_of(t: Expr, size_ms: i64) -> Expr {
    t.floor_div(lit(size_ms)) * lit(size_ms)
}

fn utc_ms() -> DataType {
    DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
}

impl Tweets {
    /// Reads the files (all of them committed master-dataset files) and
    /// deduplicates tweets by id. On a read error, finds the file at fault.
    pub fn read(files: &[PathBuf], bucket_ms: i64) -> Result<Tweets> {
        let t0 = std::time::Instant::now();
        let frame = Self::query(files, bucket_ms)
            .and_then(collect)
            .map_err(|e| blame_file(files, e))?;
        tracing::debug!(
            seconds = t0.elapsed().as_secs_f64(),
            "read and deduplicated"
        );
        Ok(Tweets { frame, bucket_ms })
    }

    fn query(files: &[PathBuf], bucket_ms: i64) -> PolarsResult<LazyFrame> {
        let none = col("retweet_count")
            .is_null()
            .and(col("favorite_count").is_null());
        let cap = tweetlambda_core::tweet::MAX_REPORTED_COUNT;
        let counts = col("retweet_count")
            .fill_null(lit(0i64))
            .clip(lit(0i64), lit(cap))
            + col("favorite_count")
                .fill_null(lit(0i64))
                .clip(lit(0i64), lit(cap));
        // `engagement_score` of tweetlambda-core, as an expression.
        let score = when(none)
            .then(col("hashtags").list().len().cast(DataType::Int64))
            .otherwise(counts);
        Ok(scan(files)?
            .select([
                // Ids are canonical decimal u64 (the admission rule): an
                // integer key groups and deduplicates faster than text.
                col("tweet_id").strict_cast(DataType::UInt64),
                col("created_at").cast(DataType::Int64).alias("t"),
                col("text"),
                col("hashtags"),
                col("retweet_count"),
                col("favorite_count"),
                col("retweet_of").strict_cast(DataType::UInt64),
                col("kafka_partition"),
            ])
            // The first copy of each tweet, in file and offset order.
            .filter(col("tweet_id").is_first_distinct())
            .select([
                col("tweet_id"),
                col("t"),
                bucket_of(col("t"), bucket_ms).alias("bucket"),
                col("text"),
                col("hashtags"),
                score.alias("score"),
                col("retweet_of"),
                col("kafka_partition"),
            ]))
    }

    /// Number of distinct tweets.
    pub fn len(&self) -> usize {
        self.frame.height()
    }

    /// True when there is no tweet.
    pub fn is_empty(&self) -> bool {
        self.frame.height() == 0
    }

    /// Tweets whose bucket starts at or after `boundary_ms` (left for the
    /// next run).
    pub fn count_from(&self, boundary_ms: i64) -> Result<usize> {
        let df = self
            .frame
            .clone()
            .lazy()
            .filter(col("bucket").gt_eq(lit(boundary_ms)))
            .select([len()])
            .collect()
            .map_err(polars_error("count"))?;
        let n = df
            .column("len")
            .and_then(|c| c.get(0))
            .map_err(polars_error("count"))?;
        Ok(n.extract::<usize>().unwrap_or(0))
    }

    /// Every view, over the buckets before `boundary_ms`. Rollups are
    /// computed when the bucket size divides an hour.
    pub fn views(&self, boundary_ms: i64) -> Result<Vec<View>> {
        let t0 = std::time::Instant::now();
        let before = self
            .frame
            .clone()
            .lazy()
            .filter(col("bucket").lt(lit(boundary_ms)));
        let hashtags = before
            .clone()
            .select([col("bucket"), col("hashtags").alias("hashtag")])
            .explode(
                cols(["hashtag"]),
                ExplodeOptions {
                    empty_as_null: false,
                    keep_nulls: false,
                },
            )
            .filter(col("hashtag").is_not_null())
            .group_by([col("bucket"), col("hashtag")])
            .agg([len().cast(DataType::Int64).alias("count")]);
        let hashtags = collect(hashtags).map_err(polars_error("hashtag_counts"))?;
        tracing::debug!(seconds = t0.elapsed().as_secs_f64(), "hashtag_counts");
        // A tweet's own row: one per tweet (they are distinct by now), in
        // the bucket of its creation, with its score and text.
        let own =
            before
                .clone()
                .select([col("bucket"), col("tweet_id"), col("score"), col("text")]);
        // Each retweet adds 1 to the retweeted tweet, in the retweet's
        // bucket, with the original's text that the retweet carries
        // (`retweeted_text` of tweetlambda-core), extracted once per group.
        let retweets = before
            .filter(col("retweet_of").is_not_null())
            .group_by([col("bucket"), col("retweet_of").alias("tweet_id")])
            .agg([
                len().cast(DataType::Int64).alias("retweets"),
                col("text").first().alias("retweet_text"),
            ]);
        // Own rows and retweet groups meet on (bucket, tweet): the text is
        // the tweet's own where the bucket has it.
        let scores = own
            .join(
                retweets,
                [col("bucket"), col("tweet_id")],
                [col("bucket"), col("tweet_id")],
                JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
            )
            .select([
                col("bucket"),
                col("tweet_id"),
                (col("score").fill_null(lit(0i64)) + col("retweets").fill_null(lit(0i64)))
                    .alias("score"),
                when(col("text").is_not_null())
                    .then(col("text"))
                    .otherwise(
                        col("retweet_text")
                            .str()
                            .extract(lit(r"(?s)^RT @.*?: (.*)$"), 1)
                            .fill_null(lit("")),
                    )
                    .alias("text"),
            ]);
        let scores = collect(scores).map_err(polars_error("tweet_scores"))?;
        tracing::debug!(seconds = t0.elapsed().as_secs_f64(), "tweet_scores");

        let mut views = Vec::new();
        // Hashtags roll up by hour and day; tweet scores do not: nearly every
        // tweet lives in one minute, so a rollup would be as large as the
        // minute view and save a reader nothing.
        for &(name, size) in rollups(self.bucket_ms) {
            let tags = hashtags
                .clone()
                .lazy()
                .group_by([
                    bucket_of(col("bucket"), size).alias("bucket"),
                    col("hashtag"),
                ])
                .agg([col("count").sum().alias("count")]);
            views.push(View {
                name,
                frame: finish_hashtags(tags).map_err(polars_error(name))?,
            });
        }
        views.insert(
            0,
            View {
                name: "tweet_scores",
                frame: finish_scores(scores.lazy()).map_err(polars_error("tweet_scores"))?,
            },
        );
        views.insert(
            0,
            View {
                name: "hashtag_counts",
                frame: finish_hashtags(hashtags.lazy()).map_err(polars_error("hashtag_counts"))?,
            },
        );
        Ok(views)
    }
}

/// Orders a hashtag view (bucket, count descending, hashtag) and gives
/// `bucket_start` its timestamp type.
fn finish_hashtags(rows: LazyFrame) -> PolarsResult<DataFrame> {
    let sorted = rows
        .sort_by_exprs(
            [col("bucket"), col("count"), col("hashtag")],
            SortMultipleOptions::default().with_order_descending_multi([false, true, false]),
        )
        .select([
            col("bucket").cast(utc_ms()).alias("bucket_start"),
            col("hashtag"),
            col("count"),
        ]);
    collect(sorted)
}

/// Types a tweet view (left unsorted: sorting millions of rows costs more
/// than a reader saves).
fn finish_scores(rows: LazyFrame) -> PolarsResult<DataFrame> {
    collect(rows.select([
        col("bucket").cast(utc_ms()).alias("bucket_start"),
        col("tweet_id").cast(DataType::String),
        col("score"),
        col("text").fill_null(lit("")),
    ]))
}

/// Writes a view as one Parquet file (Snappy, statistics on).
pub fn write_view(path: &Path, frame: &mut DataFrame) -> Result<()> {
    let started = std::time::Instant::now();
    let file = std::fs::File::create(path).map_err(Error::io(path))?;
    ParquetWriter::new(&file)
        .with_compression(ParquetCompression::Snappy)
        .finish(frame)
        .map_err(|e| Error::Parquet(path.display().to_string(), e.to_string()))?;
    let written = started.elapsed().as_secs_f64();
    file.sync_all().map_err(Error::io(path))?;
    tracing::debug!(
        file = %path.display(),
        rows = frame.height(),
        written,
        synced = started.elapsed().as_secs_f64() - written,
        "view written"
    );
    Ok(())
}

/// The top `n` hashtags of a hashtag view's files, over all its buckets,
/// ranked by the product's one ranking ([`tweetlambda_core::rank::top_n`]).
pub fn top_hashtags(files: &[PathBuf], n: usize) -> Result<Vec<(String, i64)>> {
    let context = files
        .first()
        .and_then(|f| f.parent())
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let df = scan(files)
        .map_err(polars_error(&context))?
        .group_by([col("hashtag")])
        .agg([col("count").sum().alias("count")])
        .collect()
        .map_err(polars_error(&context))?;
    let tags = df
        .column("hashtag")
        .and_then(|c| c.str())
        .map_err(polars_error(&context))?;
    let counts = df
        .column("count")
        .and_then(|c| c.i64())
        .map_err(polars_error(&context))?;
    let sums = tags
        .iter()
        .zip(counts.iter())
        .filter_map(|(t, c)| Some((t?, c?)));
    Ok(tweetlambda_core::rank::top_n(sums, n)
        .into_iter()
        .map(|(t, c)| (t.to_string(), c))
        .collect())
}

/// After a failed scan: reads the files one by one to name the one at fault.
fn blame_file(files: &[PathBuf], error: PolarsError) -> Error {
    for file in files {
        let one = scan(std::slice::from_ref(file)).and_then(|lf| {
            lf.select([
                col("tweet_id"),
                col("created_at"),
                col("text"),
                col("hashtags"),
            ])
            .collect()
        });
        if let Err(e) = one {
            return Error::Corrupt(format!("{}: {e}", file.display()));
        }
    }
    Error::Polars(format!("reading the master dataset: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{write_parquet, Row};
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashMap};
    use tweetlambda_core::aggregate::{retweeted_text, Aggregator};
    use tweetlambda_core::TweetEvent;

    const MIN: i64 = 60_000;
    const T0: i64 = 1_630_281_087_000; // 2021-08-29T23:51:27Z

    fn tweet(
        id: u64,
        t_ms: i64,
        tags: &[&str],
        counts: Option<(i64, i64)>,
        rt: Option<u64>,
    ) -> TweetEvent {
        let text = match rt {
            Some(o) => format!("RT @user{o}: original {o} #x"),
            None => format!("tweet {id}"),
        };
        TweetEvent {
            id: id.to_string(),
            created_at: DateTime::<Utc>::from_timestamp_millis(t_ms).expect("valid time"),
            text,
            lang: None,
            hashtags: tags.iter().map(|t| t.to_string()).collect(),
            user: None,
            retweet_count: counts.map(|c| c.0),
            favorite_count: counts.map(|c| c.1),
            retweet_of: rt.map(|o| o.to_string()),
            quote_of: None,
            geo: None,
            place: None,
            country_code: None,
        }
    }

    /// Writes `deliveries` as `files` Parquet files in a fresh directory.
    fn write_files(name: &str, deliveries: &[TweetEvent], files: usize) -> Vec<PathBuf> {
        let dir =
            std::env::temp_dir().join(format!("tweetlambda-views-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let rows: Vec<Row> = deliveries
            .iter()
            .enumerate()
            .map(|(i, t)| Row {
                offset: i as i64,
                tweet: t.clone(),
            })
            .collect();
        let per_file = rows.len().div_ceil(files.max(1)).max(1);
        rows.chunks(per_file)
            .enumerate()
            .map(|(i, chunk)| {
                let path = dir.join(format!("part-{i}.parquet"));
                let refs: Vec<&Row> = chunk.iter().collect();
                write_parquet(&path, 0, &refs).expect("write parquet");
                path
            })
            .collect()
    }

    type Buckets<K> = BTreeMap<(i64, K), i64>;

    fn hashtag_rows(df: &DataFrame) -> Buckets<String> {
        let b = df
            .column("bucket_start")
            .expect("bucket")
            .cast(&DataType::Int64)
            .expect("cast");
        let b = b.i64().expect("i64");
        let h = df.column("hashtag").expect("hashtag").str().expect("str");
        let c = df.column("count").expect("count").i64().expect("i64");
        b.iter()
            .zip(h.iter())
            .zip(c.iter())
            .map(|((b, h), c)| {
                (
                    (b.expect("bucket"), h.expect("tag").to_string()),
                    c.expect("count"),
                )
            })
            .collect()
    }

    fn score_rows(df: &DataFrame) -> (Buckets<u64>, BTreeMap<(i64, u64), String>) {
        let b = df
            .column("bucket_start")
            .expect("bucket")
            .cast(&DataType::Int64)
            .expect("cast");
        let b = b.i64().expect("i64");
        let id = df.column("tweet_id").expect("id").str().expect("str");
        let s = df.column("score").expect("score").i64().expect("i64");
        let t = df.column("text").expect("text").str().expect("str");
        let mut scores = BTreeMap::new();
        let mut texts = BTreeMap::new();
        for (((b, id), s), t) in b.iter().zip(id.iter()).zip(s.iter()).zip(t.iter()) {
            let key = (
                b.expect("bucket"),
                id.expect("id").parse::<u64>().expect("numeric id"),
            );
            scores.insert(key, s.expect("score"));
            texts.insert(key, t.expect("text").to_string());
        }
        (scores, texts)
    }

    /// What the speed layer computes for the same deliveries, bucket by bucket.
    fn speed_layer(deliveries: &[TweetEvent], bucket_ms: i64) -> (Buckets<String>, Buckets<u64>) {
        let mut agg = Aggregator::new(bucket_ms);
        for t in deliveries {
            let id: u64 = t.id.parse().expect("numeric id");
            let ms = t.created_at.timestamp_millis();
            agg.apply_tweet(id, ms, t.base_score(), &t.text);
            for h in t.hashtag_events() {
                agg.apply_hashtag(id, ms, &h.hashtag);
            }
            if let Some(original) = &t.retweet_of {
                let original: u64 = original.parse().expect("numeric id");
                agg.apply_retweet(original, id, ms, retweeted_text(&t.text));
            }
        }
        let mut tags = BTreeMap::new();
        let mut scores = BTreeMap::new();
        for start in agg.bucket_starts().collect::<Vec<_>>() {
            let Some(a) = agg.bucket_aggregate(start) else {
                continue;
            };
            tags.extend(a.hashtags.iter().map(|(h, c)| ((start, h.clone()), *c)));
            scores.extend(a.tweets.iter().map(|(id, s)| ((start, *id), s.score)));
        }
        (tags, scores)
    }

    fn view<'a>(views: &'a [View], name: &str) -> &'a DataFrame {
        &views
            .iter()
            .find(|v| v.name == name)
            .expect("view present")
            .frame
    }

    fn rollup<K: Ord + Clone>(rows: &Buckets<K>, size: i64) -> Buckets<K> {
        let mut out = BTreeMap::new();
        for ((b, k), v) in rows {
            *out.entry((b - b.rem_euclid(size), k.clone())).or_insert(0) += v;
        }
        out
    }

    #[test]
    fn views_of_a_small_example() {
        let t = |s: i64| T0 + s * 1000;
        let tweets = [
            tweet(1, t(0), &["a", "b"], None, None),
            tweet(2, t(10), &["a"], Some((3, 4)), None),
            tweet(3, t(70), &["a"], None, Some(1)),
            tweet(4, t(75), &[], None, Some(1)),
            tweet(2, t(10), &["a"], Some((3, 4)), None),
        ];
        let files = write_files("small", &tweets, 2);
        let read = Tweets::read(&files, MIN).expect("read");
        assert_eq!(read.len(), 4);
        let b0 = bucket_start_of(t(0));
        let views = read.views(i64::MAX).expect("views");
        let tags = hashtag_rows(view(&views, "hashtag_counts"));
        assert_eq!(tags[&(b0, "a".to_string())], 2);
        assert_eq!(tags[&(b0 + MIN, "a".to_string())], 1);
        let (scores, texts) = score_rows(view(&views, "tweet_scores"));
        assert_eq!(scores[&(b0, 1)], 2, "two hashtags, no counts");
        assert_eq!(scores[&(b0, 2)], 7, "retweets + likes");
        assert_eq!(scores[&(b0 + MIN, 1)], 2, "two retweets in the next bucket");
        assert_eq!(texts[&(b0 + MIN, 1)], "original 1 #x");
        // The boundary cuts the second bucket off.
        let cut = read.views(b0 + MIN).expect("views");
        assert!(hashtag_rows(view(&cut, "hashtag_counts"))
            .keys()
            .all(|(b, _)| *b == b0));
        assert_eq!(read.count_from(b0 + MIN).expect("count"), 2);
    }

    /// Counts a source can report that sum past `i64::MAX`, negative ones,
    /// one of the two missing, and retweets of the largest: both layers
    /// score them the same, and nothing overflows.
    #[test]
    fn edge_case_counts_score_the_same_in_both_layers() {
        let t = |s: i64| T0 + s * 1000;
        let huge = Some((i64::MAX, i64::MAX));
        let tweets = [
            tweet(1, t(0), &["a"], huge, None),
            tweet(2, t(1), &["a"], Some((i64::MAX, -7)), None),
            tweet(3, t(2), &[], Some((-3, -4)), None),
            tweet(4, t(3), &["b"], Some((i64::MAX - 1, 1)), None),
            tweet(5, t(4), &[], None, Some(1)),
            tweet(6, t(61), &[], None, Some(1)),
            tweet(7, t(62), &[], None, Some(1)),
        ];
        let files = write_files("edge", &tweets, 1);
        let views = Tweets::read(&files, MIN)
            .expect("read")
            .views(i64::MAX)
            .expect("views");
        let (scores, _) = score_rows(view(&views, "tweet_scores"));
        let (_, speed_scores) = speed_layer(&tweets, MIN);
        assert_eq!(scores, speed_scores);
        let b0 = bucket_start_of(t(0));
        let cap = tweetlambda_core::tweet::MAX_REPORTED_COUNT;
        assert_eq!(
            scores[&(b0, 1)],
            2 * cap + 1,
            "capped counts, plus one retweet"
        );
        assert_eq!(scores[&(b0 + MIN, 1)], 2);
        assert_eq!(scores[&(b0, 2)], cap);
        assert_eq!(scores[&(b0, 3)], 0);
        assert!(scores.values().all(|s| *s >= 0));
    }

    /// Raw messages with the edge cases of the admission rule (ids as
    /// numbers, with spaces or leading zeros; no `hashtags` field; hashtags
    /// that normalise to one; counts at `i64::MAX`), through core's one
    /// rule: the same are refused, and the batch views of the archived rows
    /// equal the speed layer's aggregates of the admitted tweets.
    #[test]
    fn raw_edge_cases_are_admitted_and_scored_the_same_by_both_layers() {
        use tweetlambda_core::admit::admit_tweet;
        let max = i64::MAX;
        // Ids that are not canonical decimal text are refused (both layers
        // dead-letter them), not read as another tweet's id.
        for refused in [
            r#"{"id":" 0012 ","created_at":"2021-08-29T23:51:27Z","text":"a"}"#,
            r#"{"id":"0012","created_at":"2021-08-29T23:51:27Z","text":"a"}"#,
            r#"{"id":"14","created_at":"2021-08-29T23:52:01Z","text":"RT","retweet_of":" 12"}"#,
        ] {
            let e = admit_tweet(Some(refused.as_bytes())).err();
            assert!(
                e.is_some_and(|e| e.to_string().contains("not a tweet id")),
                "{refused}"
            );
        }
        let payloads = [
            format!(r##"{{"id":"12","created_at":"2021-08-29T23:51:27Z","text":"a","hashtags":["#X","x","X"],"retweet_count":{max},"favorite_count":{max}}}"##),
            r#"{"id":"13","created_at":"2021-08-29T23:51:30Z","text":"b"}"#.to_string(),
            r#"{"id":"14","created_at":"2021-08-29T23:52:01Z","text":"RT @a: a","retweet_of":"12","hashtags":["x"]}"#.to_string(),
            format!(r#"{{"id":"15","created_at":"2021-08-29T23:52:02Z","text":"c","hashtags":["y"],"favorite_count":{max}}}"#),
        ];
        let admitted: Vec<_> = payloads
            .iter()
            .map(|p| admit_tweet(Some(p.as_bytes())).unwrap_or_else(|e| panic!("{p}: {e}")))
            .collect();
        // The archive stores the normalised tweet.
        let rows: Vec<TweetEvent> = admitted.iter().map(|t| t.to_event()).collect();
        let views = Tweets::read(&write_files("raw-edge", &rows, 1), MIN)
            .expect("read")
            .views(i64::MAX)
            .expect("views");
        // The speed layer applies the admitted tweet itself.
        let mut agg = Aggregator::new(MIN);
        for t in &admitted {
            let ms = t.created_at.timestamp_millis();
            agg.apply_tweet(t.id, ms, t.score, &t.message.text);
            for h in &t.hashtags {
                agg.apply_hashtag(t.id, ms, h);
            }
            if let Some(original) = t.retweet_of {
                agg.apply_retweet(original, t.id, ms, retweeted_text(&t.message.text));
            }
        }
        let mut speed_tags = BTreeMap::new();
        let mut speed_scores = BTreeMap::new();
        for start in agg.bucket_starts().collect::<Vec<_>>() {
            if let Some(a) = agg.bucket_aggregate(start) {
                speed_tags.extend(a.hashtags.iter().map(|(h, c)| ((start, h.clone()), *c)));
                speed_scores.extend(a.tweets.iter().map(|(id, s)| ((start, *id), s.score)));
            }
        }
        let tags = hashtag_rows(view(&views, "hashtag_counts"));
        let (scores, _) = score_rows(view(&views, "tweet_scores"));
        assert_eq!(tags, speed_tags);
        assert_eq!(scores, speed_scores);
        let b0 = bucket_start_of(T0);
        let cap = tweetlambda_core::tweet::MAX_REPORTED_COUNT;
        assert_eq!(scores[&(b0, 12)], 2 * cap, "counts at i64::MAX, capped");
        assert_eq!(scores[&(b0 + MIN, 12)], 1, "its retweet");
        assert_eq!(scores[&(b0 + MIN, 15)], cap);
        assert_eq!(scores[&(b0, 13)], 0, "no counts, no hashtags field");
        assert_eq!(
            tags[&(b0, "x".to_string())],
            1,
            "#X, x and X are one hashtag"
        );
    }

    fn bucket_start_of(t: i64) -> i64 {
        tweetlambda_core::bucket_start_ms(t, MIN)
    }

    /// Small counts mostly, and the edges: negative, and near `i64::MAX`.
    fn reported_count() -> impl Strategy<Value = i64> {
        prop_oneof![
            4 => 0i64..5,
            1 => -3i64..0,
            1 => (i64::MAX - 3)..=i64::MAX,
        ]
    }

    fn arbitrary_tweets() -> impl Strategy<Value = Vec<TweetEvent>> {
        let one = (
            1u64..40,
            0i64..(6 * 3600),
            proptest::sample::subsequence(vec!["a", "b", "c", "d"], 0..3),
            proptest::option::of((reported_count(), reported_count())),
            proptest::option::of(1u64..40),
        );
        proptest::collection::vec(one, 1..60).prop_map(|items| {
            // One version of each id, as the replayer publishes.
            let mut by_id: HashMap<u64, TweetEvent> = HashMap::new();
            for (id, s, tags, counts, rt) in items {
                by_id.entry(id).or_insert_with(|| {
                    tweet(id, T0 + s * 1000, &tags, counts, rt.filter(|o| *o != id))
                });
            }
            by_id.into_values().collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Same events, delivered with duplicates in any order: the batch
        /// views equal the speed layer's per-bucket aggregates, and each
        /// rollup equals the sum of its buckets.
        #[test]
        fn batch_views_equal_the_speed_layers_aggregates(
            tweets in arbitrary_tweets(),
            dup in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
            seed in any::<u64>(),
            files in 1usize..4,
        ) {
            let mut deliveries = tweets.clone();
            deliveries.extend(dup.iter().map(|i| tweets[i.index(tweets.len())].clone()));
            // A shuffle by a seeded key.
            deliveries.sort_by_key(|t| (t.id.len() as u64 ^ seed).wrapping_mul(t.id.parse::<u64>().unwrap_or(0).wrapping_add(seed)));
            let paths = write_files("prop", &deliveries, files);
            let read = Tweets::read(&paths, MIN).expect("read");
            let views = read.views(i64::MAX).expect("views");
            let (speed_tags, speed_scores) = speed_layer(&deliveries, MIN);
            let tags = hashtag_rows(view(&views, "hashtag_counts"));
            let (scores, _) = score_rows(view(&views, "tweet_scores"));
            prop_assert_eq!(&tags, &speed_tags);
            prop_assert_eq!(&scores, &speed_scores);
            prop_assert_eq!(hashtag_rows(view(&views, "hashtag_counts_hour")), rollup(&tags, HOUR_MS));
            prop_assert_eq!(hashtag_rows(view(&views, "hashtag_counts_day")), rollup(&tags, DAY_MS));
        }
    }
}

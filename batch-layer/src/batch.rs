//! `tweetlambda batch`: the cron job. Publishes the views of the whole
//! master dataset as a new version, recomputing only the event dates whose
//! input changed.
//!
//! # Incremental by date
//!
//! The archive writes each tweet into the directory of its event date, and
//! every contribution to a view falls in that date too: a tweet's copies
//! share its event time, and a retweet counts in its own bucket. So the
//! views of a date depend on that date's files and on the boundary B alone
//! (through its cut: the views hold the date's buckets before B). A run
//! computes the dates whose files or cut changed, one date at a time (memory
//! is bounded by the largest date, not by the dataset), and carries the
//! other dates' files over from the version before by hard links. The
//! manifest records per date its files, cut and counts. `--force`
//! recomputes every date. When the bucket size does not divide a day,
//! buckets can straddle midnight and the whole dataset is one group.
//!
//! One consequence: a tweet id archived under two dates (two copies with
//! different event times, which no producer of ours makes) counts once per
//! date, where a whole-dataset run would keep only its first copy.
//!
//! # The boundary B
//!
//! The views cover the buckets before B, completely. B comes from the
//! archive's progress: for each partition of the tweets topic, the newest
//! event time archived; the oldest of these, minus the allowed lateness (the
//! speed layer's, 5 s by default), is the archive watermark `w`; B is the
//! start of the bucket that holds `w`. A tweet that reaches the archive
//! later than that with an older event time is counted by the next run.
//! With `--complete` (a finished backfill: nothing more will arrive), B is
//! the end of the newest bucket. The serving layer takes buckets `< B` from
//! these views and buckets `>= B` from the speed layer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use tweetlambda_core::{bucket_start_ms, format_rfc3339};

use crate::archive::{self, Commit};
use crate::error::{Error, Result};
use crate::manifest::{self, Coverage, DateCoverage, Manifest, PartitionCoverage, ViewFile};
use crate::views::{self, Tweets, DAY_MS};

/// Settings of a batch run.
#[derive(Debug, Clone)]
pub struct BatchConfig {
    /// Root of the master dataset.
    pub master: PathBuf,
    /// Root of the views.
    pub views: PathBuf,
    /// The archived topic.
    pub topic: String,
    /// Bucket size in milliseconds.
    pub bucket_ms: i64,
    /// Lateness allowed for, in milliseconds (see the module documentation).
    pub allowed_lateness_ms: i64,
    /// The input is complete: B is the end of the newest bucket.
    pub complete: bool,
    /// Versions to keep (the current one included).
    pub keep_versions: usize,
    /// Publish even if the input did not change since the last version.
    pub force: bool,
}

/// What a batch run did.
#[derive(Debug, Clone)]
pub enum BatchOutcome {
    /// A new version was published.
    Published {
        /// Its manifest.
        manifest: Manifest,
        /// Older versions removed.
        pruned: Vec<u64>,
        /// Seconds from start to the manifest switch.
        seconds: f64,
    },
    /// The master dataset did not change since the current version.
    UpToDate(Manifest),
    /// The master dataset holds no committed file yet.
    Empty,
}

/// Runs the batch job once. Blocking (Polars uses its own threads).
pub fn run(config: &BatchConfig) -> Result<BatchOutcome> {
    let started = Instant::now();
    if config.bucket_ms <= 0 {
        return Err(Error::Config("--bucket must be positive".into()));
    }
    std::fs::create_dir_all(&config.views).map_err(Error::io(&config.views))?;
    let _lock = manifest::lock(&config.views)?;
    manifest::remove_leftovers(&config.views)?;
    // Compaction removes no file of the master dataset while this is held.
    let _reading = crate::compact::read_lock(&config.master)?;

    let commits = archive::read_commits(&config.master, &config.topic)?;
    if commits.is_empty() {
        return Ok(BatchOutcome::Empty);
    }
    let previous = manifest::read(&config.views)?;
    if let Some(previous) = previous
        .as_ref()
        .filter(|p| !config.force && unchanged(p, config, &commits))
    {
        return Ok(BatchOutcome::UpToDate(previous.clone()));
    }
    let dates = dated_files(config, &commits)?;
    let mut newest: BTreeMap<i32, i64> = BTreeMap::new();
    for input in dates.values() {
        for (p, t) in &input.newest_ms {
            let slot = newest.entry(*p).or_insert(*t);
            *slot = (*slot).max(*t);
        }
    }
    let boundary_ms = boundary(config, newest.values().copied());

    let version = next_version(&config.views, previous.as_ref())?;
    let tmp = manifest::temporary_dir(&config.views, version)?;
    let directory = manifest::version_dir(version);
    let names = views::view_names(config.bucket_ms);
    for name in &names {
        let dir = tmp.join(name);
        std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    }
    let built = build_dates(
        config,
        &dates,
        previous.as_ref(),
        boundary_ms,
        version,
        &tmp,
    );
    if built.is_err() {
        // Nothing half-written stays behind (the next run would remove it).
        let _ = std::fs::remove_dir_all(&tmp);
    }
    let (coverage, computed, carried) = built?;
    for name in &names {
        manifest::sync_dir(&tmp.join(name))?;
    }
    manifest::sync_dir(&tmp)?;
    let view_files: BTreeMap<String, ViewFile> = names
        .iter()
        .map(|name| {
            let rows = coverage
                .values()
                .map(|d| d.view_rows.get(*name).copied().unwrap_or(0))
                .sum();
            let file = ViewFile {
                path: format!("{directory}/{name}"),
                rows,
            };
            (name.to_string(), file)
        })
        .collect();
    manifest::seal(&config.views, &tmp, version)?;
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        dates_computed = computed,
        dates_carried_over = carried,
        "views computed and written"
    );

    let mut partitions: BTreeMap<String, PartitionCoverage> = BTreeMap::new();
    for c in &commits {
        let entry = partitions
            .entry(c.partition.to_string())
            .or_insert(PartitionCoverage {
                last_offset: c.last,
                newest_event: None,
            });
        entry.last_offset = entry.last_offset.max(c.last);
    }
    for (p, t) in &newest {
        if let Some(c) = partitions.get_mut(&p.to_string()) {
            c.newest_event = tweetlambda_core::time::from_millis(*t).map(format_rfc3339);
        }
    }
    let manifest = Manifest {
        format: 2,
        version,
        directory,
        created_at: format_rfc3339(Utc::now()),
        bucket_ms: config.bucket_ms,
        allowed_lateness_ms: config.allowed_lateness_ms,
        boundary: tweetlambda_core::time::from_millis(boundary_ms)
            .map(format_rfc3339)
            .unwrap_or_default(),
        boundary_ms,
        complete: config.complete,
        input: Coverage {
            topic: config.topic.clone(),
            commits: commits.len() as u64,
            files: dates.values().map(|d| d.paths.len() as u64).sum(),
            rows: commits.iter().map(|c| c.rows).sum(),
            distinct_tweets: coverage.values().map(|d| d.distinct_tweets).sum(),
            tweets_from_boundary: coverage.values().map(|d| d.tweets_from_boundary).sum(),
            partitions,
            dates: coverage,
            dates_computed: computed,
            dates_carried_over: carried,
        },
        views: view_files,
    };
    manifest::write(&config.views, &manifest)?;
    let pruned = manifest::prune(&config.views, config.keep_versions, version)?;
    Ok(BatchOutcome::Published {
        manifest,
        pruned,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Computes or carries over the views of every date into `tmp`. Returns
/// the dates' coverage and how many were computed and carried over.
fn build_dates(
    config: &BatchConfig,
    dates: &BTreeMap<String, DateInput>,
    previous: Option<&Manifest>,
    boundary_ms: i64,
    version: u64,
    tmp: &Path,
) -> Result<(BTreeMap<String, DateCoverage>, u64, u64)> {
    // The version before, if its dates can be carried over.
    let reusable =
        previous.filter(|p| !config.force && p.format == 2 && p.bucket_ms == config.bucket_ms);
    let names = views::view_names(config.bucket_ms);
    let mut coverage: BTreeMap<String, DateCoverage> = BTreeMap::new();
    let (mut computed, mut carried) = (0u64, 0u64);
    for (date, input) in dates {
        let cut_ms = cut(date, boundary_ms);
        let before = reusable.and_then(|p| {
            let d = p.input.dates.get(date)?;
            let same = d.files == input.relative && d.cut_ms == cut_ms;
            same.then_some((p, d))
        });
        if let Some((p, d)) = before {
            if carry_over(&config.views, &p.directory, tmp, &names, date)? {
                coverage.insert(date.clone(), d.clone());
                carried += 1;
                continue;
            }
        }
        let started_date = Instant::now();
        let tweets = Tweets::read(&input.paths, config.bucket_ms)?;
        let from_boundary = tweets.count_from(boundary_ms)?;
        let mut frames = tweets.views(boundary_ms)?;
        write_date(tmp, date, &mut frames)?;
        tracing::debug!(
            date,
            tweets = tweets.len(),
            seconds = started_date.elapsed().as_secs_f64(),
            "date computed"
        );
        coverage.insert(
            date.clone(),
            DateCoverage {
                files: input.relative.clone(),
                cut_ms,
                distinct_tweets: tweets.len() as u64,
                tweets_from_boundary: from_boundary as u64,
                newest_ms: input
                    .newest_ms
                    .iter()
                    .map(|(p, t)| (p.to_string(), *t))
                    .collect(),
                view_rows: frames
                    .iter()
                    .map(|v| (v.name.to_string(), v.frame.height() as u64))
                    .collect(),
                computed_in: version,
            },
        );
        computed += 1;
    }
    Ok((coverage, computed, carried))
}

/// The committed files of one event date.
struct DateInput {
    /// The files the archive wrote, relative to the master dataset (the
    /// date's identity: files are immutable and named by offsets). For a
    /// file compaction merged, the files it holds: compacting a date does
    /// not change its identity.
    relative: Vec<String>,
    /// The same, absolute, in commit order (partition, offset): the order
    /// in which the first copy of a tweet is kept.
    paths: Vec<PathBuf>,
    /// Per partition: newest event time in the date's files.
    newest_ms: BTreeMap<i32, i64>,
}

/// The group a file belongs to: its `date=` directory, or `all` when
/// buckets may straddle midnight.
fn date_of(relative: &str, bucket_ms: i64) -> String {
    if DAY_MS % bucket_ms != 0 {
        return "all".to_string();
    }
    relative
        .strip_prefix("date=")
        .and_then(|r| r.split('/').next())
        .filter(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok())
        .map_or_else(|| "all".to_string(), str::to_string)
}

/// Where the views of `date` stop: B, within the date's span.
fn cut(date: &str, boundary_ms: i64) -> i64 {
    match NaiveDate::parse_from_str(date, "%Y-%m-%d") {
        Ok(d) => {
            let start = d
                .and_hms_opt(0, 0, 0)
                .map_or(i64::MIN, |t| t.and_utc().timestamp_millis());
            boundary_ms.clamp(start, start.saturating_add(DAY_MS))
        }
        Err(_) => boundary_ms,
    }
}

/// Links the files of `date` of every view from the version in `previous`
/// into `tmp`. False (and nothing linked) if one of them is missing.
fn carry_over(
    views_dir: &Path,
    previous: &str,
    tmp: &Path,
    names: &[&str],
    date: &str,
) -> Result<bool> {
    let from = |name: &str| {
        views_dir
            .join(previous)
            .join(name)
            .join(format!("{date}.parquet"))
    };
    if !names.iter().all(|name| from(name).is_file()) {
        return Ok(false);
    }
    for name in names {
        let to = tmp.join(name).join(format!("{date}.parquet"));
        std::fs::hard_link(from(name), &to).map_err(Error::io(&to))?;
    }
    Ok(true)
}

/// Writes the views of one date, one writer thread per view (Parquet
/// encoding is the slow part).
fn write_date(tmp: &Path, date: &str, frames: &mut [views::View]) -> Result<()> {
    let written: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = frames
            .iter_mut()
            .map(|view| {
                let path = tmp.join(view.name).join(format!("{date}.parquet"));
                scope.spawn(move || views::write_view(&path, &mut view.frame))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Polars("a view writer panicked".into())))
            })
            .collect()
    });
    written.into_iter().collect::<Result<Vec<()>>>().map(|_| ())
}

/// B, from the newest event time of each partition (see the module
/// documentation).
pub fn boundary(config: &BatchConfig, newest_per_partition: impl Iterator<Item = i64>) -> i64 {
    let newest: Vec<i64> = newest_per_partition.collect();
    if config.complete {
        let newest = newest.iter().copied().max().unwrap_or(0);
        bucket_start_ms(newest, config.bucket_ms).saturating_add(config.bucket_ms)
    } else {
        let oldest = newest.iter().copied().min().unwrap_or(0);
        bucket_start_ms(
            oldest.saturating_sub(config.allowed_lateness_ms),
            config.bucket_ms,
        )
    }
}

/// True if the current version was computed from exactly these commits with
/// these settings.
fn unchanged(previous: &Manifest, config: &BatchConfig, commits: &[Commit]) -> bool {
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for c in commits {
        let slot = last.entry(c.partition.to_string()).or_insert(c.last);
        *slot = (*slot).max(c.last);
    }
    let before: BTreeMap<String, i64> = previous
        .input
        .partitions
        .iter()
        .map(|(p, c)| (p.clone(), c.last_offset))
        .collect();
    previous.input.commits == commits.len() as u64
        && before == last
        && previous.bucket_ms == config.bucket_ms
        && previous.allowed_lateness_ms == config.allowed_lateness_ms
        && previous.complete == config.complete
}

/// The files the commits list, by event date; each must exist and have a
/// readable Parquet footer, or the run stops naming it. The newest event
/// time per partition comes from the footers' statistics (the archive
/// writes them), or from reading the column when a file has none.
fn dated_files(config: &BatchConfig, commits: &[Commit]) -> Result<BTreeMap<String, DateInput>> {
    use parquet::file::reader::FileReader;
    let mut dates: BTreeMap<String, DateInput> = BTreeMap::new();
    for commit in commits {
        for relative in &commit.files {
            let path = config.master.join(relative);
            let file = std::fs::File::open(&path).map_err(|e| {
                Error::Corrupt(format!(
                    "{} (listed by the commit of {}-p{}-{}-{}): {e}",
                    path.display(),
                    commit.topic,
                    commit.partition,
                    commit.first,
                    commit.last
                ))
            })?;
            let reader = parquet::file::serialized_reader::SerializedFileReader::new(file)
                .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display())))?;
            let newest = match newest_from_statistics(reader.metadata()) {
                Some(t) => Some(t),
                None => views::newest_event_ms(&path)?,
            };
            let input = dates
                .entry(date_of(relative, config.bucket_ms))
                .or_insert_with(|| DateInput {
                    relative: Vec::new(),
                    paths: Vec::new(),
                    newest_ms: BTreeMap::new(),
                });
            input
                .relative
                .extend(commit.sources_of(relative).map(str::to_string));
            input.paths.push(path);
            if let Some(t) = newest {
                let slot = input.newest_ms.entry(commit.partition).or_insert(t);
                *slot = (*slot).max(t);
            }
        }
    }
    Ok(dates)
}

/// The largest `created_at` of a file by its row groups' statistics; `None`
/// if a row group has none (then the column must be read).
fn newest_from_statistics(meta: &parquet::file::metadata::ParquetMetaData) -> Option<i64> {
    use parquet::file::statistics::Statistics;
    let mut newest: Option<i64> = None;
    for group in meta.row_groups() {
        if group.num_rows() == 0 {
            continue;
        }
        let column = group
            .columns()
            .iter()
            .find(|c| c.column_path().string() == "created_at")?;
        let Some(Statistics::Int64(s)) = column.statistics() else {
            return None;
        };
        let max = *s.max_opt()?;
        newest = Some(newest.map_or(max, |n| n.max(max)));
    }
    newest
}

fn next_version(views: &std::path::Path, previous: Option<&Manifest>) -> Result<u64> {
    let newest_dir = manifest::versions(views)?.last().map_or(0, |(v, _)| *v);
    Ok(newest_dir.max(previous.map_or(0, |m| m.version)) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(complete: bool) -> BatchConfig {
        BatchConfig {
            master: PathBuf::new(),
            views: PathBuf::new(),
            topic: "tweets".into(),
            bucket_ms: 60_000,
            allowed_lateness_ms: 5_000,
            complete,
            keep_versions: 3,
            force: false,
        }
    }

    #[test]
    fn boundary_follows_the_slowest_partition_minus_lateness() {
        // Partitions at 10:03:04 and 10:05:00 (ms of the day); lateness 5 s.
        let slow = (10 * 3600 + 3 * 60 + 4) * 1000;
        let fast = (10 * 3600 + 5 * 60) * 1000;
        assert_eq!(
            boundary(&config(false), [fast, slow].into_iter()),
            (10 * 3600 + 2 * 60) * 1000
        );
        assert_eq!(
            boundary(&config(false), [slow + 2_000].into_iter()),
            (10 * 3600 + 3 * 60) * 1000
        );
        assert_eq!(
            boundary(&config(true), [fast, slow].into_iter()),
            (10 * 3600 + 6 * 60) * 1000
        );
    }
}

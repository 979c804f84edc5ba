//! `tweetlambda batch`: the cron job. Recomputes every view from the whole
//! master dataset and publishes them as a new version.
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
use std::path::PathBuf;
use std::time::Instant;

use chrono::Utc;
use tweetlambda_core::{bucket_start_ms, format_rfc3339};

use crate::archive::{self, Commit};
use crate::error::{Error, Result};
use crate::manifest::{self, Coverage, Manifest, PartitionCoverage, ViewFile};
use crate::views::{self, Tweets};

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
    let files = committed_files(config, &commits)?;

    let tweets = Tweets::read(&files, config.bucket_ms)?;
    let newest = tweets.newest_per_partition()?;
    let boundary_ms = boundary(config, newest.iter().map(|n| n.newest_ms));
    let from_boundary = tweets.count_from(boundary_ms)?;
    let read_s = started.elapsed().as_secs_f64();
    let mut computed = tweets.views(boundary_ms)?;
    let views_s = started.elapsed().as_secs_f64() - read_s;

    let version = next_version(&config.views, previous.as_ref())?;
    let tmp = manifest::temporary_dir(&config.views, version)?;
    let directory = manifest::version_dir(version);
    // One writer thread per view: Parquet encoding is the slow part.
    let written: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = computed
            .iter_mut()
            .map(|view| {
                let path = tmp.join(format!("{}.parquet", view.name));
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
    written.into_iter().collect::<Result<Vec<()>>>()?;
    let view_files: BTreeMap<String, ViewFile> = computed
        .iter()
        .map(|view| {
            let file = ViewFile {
                path: format!("{directory}/{}.parquet", view.name),
                rows: view.frame.height() as u64,
            };
            (view.name.to_string(), file)
        })
        .collect();
    manifest::seal(&config.views, &tmp, version)?;
    tracing::info!(
        read_s,
        views_s,
        write_s = started.elapsed().as_secs_f64() - read_s - views_s,
        tweets = tweets.len(),
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
    for n in &newest {
        if let Some(p) = partitions.get_mut(&n.partition.to_string()) {
            p.newest_event = tweetlambda_core::time::from_millis(n.newest_ms).map(format_rfc3339);
        }
    }
    let manifest = Manifest {
        format: 1,
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
            files: files.len() as u64,
            rows: commits.iter().map(|c| c.rows).sum(),
            distinct_tweets: tweets.len() as u64,
            tweets_from_boundary: from_boundary as u64,
            partitions,
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

/// The files the commits list; each must exist and have a readable Parquet
/// footer, or the run stops naming it.
fn committed_files(config: &BatchConfig, commits: &[Commit]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
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
            parquet::file::reader::SerializedFileReader::new(file)
                .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display())))?;
            files.push(path);
        }
    }
    Ok(files)
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

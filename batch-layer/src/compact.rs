//! Compaction of the master dataset: a partition's small commits merged
//! into one, so that a continuous archive with a short `--batch-interval`
//! does not leave the batch job thousands of small files to open.
//!
//! # Which commits
//!
//! A commit is small when it holds fewer rows than the archive's
//! `--batch-rows`. Each commit has a level: 0 when the archive wrote it, one
//! more than the highest level merged when compaction wrote it. `fanout`
//! consecutive small commits of one partition and one level (offsets in
//! order, nothing between them) are merged into one commit of the next
//! level: one file per event date, holding the rows of the files it
//! replaces in their order (so the batch's "first copy counts" is
//! unchanged). Every row is rewritten once per level, about
//! log_fanout(commits) times in all, and a date keeps at most
//! `fanout - 1` small files per level and partition.
//!
//! # Atomic, and safe beside a running batch
//!
//! 1. The merged files are written to temporary names, fsynced, renamed.
//! 2. The merged commit is written. From then on it is in force: its offsets
//!    contain those of the commits it merged, so readers skip those
//!    ([`crate::archive::read_commits`]). A crash before this step leaves
//!    only unlisted files, which the archive removes at start.
//! 3. The merged commits and their files are removed, but only while no
//!    batch reads the dataset: a batch holds `MASTER/.readers.lock` shared
//!    for its run, and this step takes it exclusive without waiting; if a
//!    batch holds it, the removal waits for the next compaction or start.
//!
//! Compaction runs inside the archive (it holds the archive's lock), after
//! its writes, or as `tweetlambda compact` while no archive runs.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::Path;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;

use crate::archive::{self, Commit};
use crate::error::{Error, Result};
use crate::manifest;

/// The lock a batch run holds shared while it reads the master dataset.
const READERS_LOCK: &str = ".readers.lock";

/// Settings of compaction.
#[derive(Debug, Clone, Copy)]
pub struct CompactConfig {
    /// Commits merged into one (at least 2).
    pub fanout: usize,
    /// A commit with fewer rows than this is small (the archive's
    /// `--batch-rows`); larger ones are left as they are.
    pub small_rows: u64,
}

/// What a compaction did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CompactSummary {
    /// Commits merged into others.
    pub merged: u64,
    /// Commits written by merging.
    pub written: u64,
    /// Rows copied into merged files.
    pub rows_rewritten: u64,
    /// Files of merged commits removed.
    pub removed_files: u64,
    /// Merged commits left in place because a batch was reading.
    pub removal_deferred: u64,
}

/// Merges small commits until no `fanout` of one level and partition are
/// consecutive, then removes the merged ones if no batch reads. The caller
/// holds the archive's lock.
pub fn compact(master: &Path, topic: &str, config: CompactConfig) -> Result<CompactSummary> {
    let mut summary = CompactSummary::default();
    if config.fanout < 2 {
        return Ok(summary);
    }
    loop {
        let live = archive::read_commits(master, topic)?;
        let runs = plan(&live, config);
        if runs.is_empty() {
            break;
        }
        for run in runs {
            let merged = merge(master, run)?;
            summary.rows_rewritten += merged.rows;
            summary.merged += run.len() as u64;
            summary.written += 1;
        }
    }
    let (removed, deferred) = remove_superseded(master, topic)?;
    summary.removed_files = removed;
    summary.removal_deferred = deferred;
    Ok(summary)
}

/// `tweetlambda compact`: compaction while no archive runs (it takes the
/// archive's lock).
pub fn compact_locked(master: &Path, topic: &str, config: CompactConfig) -> Result<CompactSummary> {
    let _lock = manifest::lock_file(master, archive::ARCHIVE_LOCK).map_err(|e| match e {
        Error::Locked(_) => Error::ArchiveLocked(master.display().to_string()),
        e => e,
    })?;
    compact(master, topic, config)
}

/// The runs to merge: `fanout` consecutive small commits of one partition
/// and one level (`live` is ordered by partition and offset).
fn plan(live: &[Commit], config: CompactConfig) -> Vec<&[Commit]> {
    let mut runs = Vec::new();
    // Where the run that `live[i]` may extend starts.
    let mut start = 0;
    for (i, c) in live.iter().enumerate() {
        if c.rows >= config.small_rows {
            start = i + 1;
            continue;
        }
        if i > start && (c.partition != live[start].partition || c.level != live[start].level) {
            start = i;
        }
        if i + 1 - start == config.fanout {
            runs.push(&live[start..=i]);
            start = i + 1;
        }
    }
    runs
}

/// Writes the merged commit of `run`: per event date, one file holding the
/// rows of the run's files of that date in commit order.
fn merge(master: &Path, run: &[Commit]) -> Result<Commit> {
    let (head, tail) = (&run[0], &run[run.len() - 1]);
    let mut merged = Commit {
        topic: head.topic.clone(),
        partition: head.partition,
        first: head.first,
        last: tail.last,
        rows: run.iter().map(|c| c.rows).sum(),
        files: Vec::new(),
        level: run.iter().map(|c| c.level).max().unwrap_or(0) + 1,
        sources: BTreeMap::new(),
    };
    let stem = merged.stem();
    // Per date directory: the files, and the archive's files they hold.
    let mut by_dir: BTreeMap<String, (Vec<&str>, Vec<String>)> = BTreeMap::new();
    for c in run {
        for f in &c.files {
            let dir = f.rsplit_once('/').map_or("", |(d, _)| d);
            let entry = by_dir.entry(dir.to_string()).or_default();
            entry.0.push(f);
            entry.1.extend(c.sources_of(f).map(str::to_string));
        }
    }
    for (dir, (files, sources)) in by_dir {
        let relative = if dir.is_empty() {
            format!("{stem}.parquet")
        } else {
            format!("{dir}/{stem}.parquet")
        };
        let path = master.join(&relative);
        let tmp = path.with_extension("parquet.tmp");
        if let Err(e) = concatenate(master, &files, &tmp) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &path).map_err(Error::io(&path))?;
        if let Some(parent) = path.parent() {
            manifest::sync_dir(parent)?;
        }
        merged.sources.insert(relative.clone(), sources);
        merged.files.push(relative);
    }
    archive::write_commit(master, &merged)?;
    tracing::info!(
        partition = merged.partition,
        first = merged.first,
        last = merged.last,
        commits = run.len(),
        level = merged.level,
        "compacted"
    );
    Ok(merged)
}

/// Copies the rows of `files` (relative to `master`), in order, into one
/// Parquet file at `out`, fsynced.
fn concatenate(master: &Path, files: &[&str], out: &Path) -> Result<()> {
    let parquet_error = |path: &Path| {
        let name = path.display().to_string();
        move |e: parquet::errors::ParquetError| Error::Parquet(name, e.to_string())
    };
    let mut writer: Option<ArrowWriter<fs::File>> = None;
    let expected = archive::schema();
    for f in files {
        let path = master.join(f);
        let file = fs::File::open(&path).map_err(Error::io(&path))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(parquet_error(&path))?;
        for batch in reader {
            let batch =
                batch.map_err(|e| Error::Parquet(path.display().to_string(), e.to_string()))?;
            // A file of another schema (an older archive's) is not merged:
            // the run fails and stays as it is.
            if batch.schema().fields() != expected.fields() {
                return Err(Error::Corrupt(format!(
                    "{}: not the master dataset's schema; its commits are not compacted",
                    path.display()
                )));
            }
            let w = match &mut writer {
                Some(w) => w,
                None => {
                    let file = fs::File::create(out).map_err(Error::io(out))?;
                    writer.insert(
                        ArrowWriter::try_new(
                            file,
                            expected.clone(),
                            Some(archive::writer_properties()),
                        )
                        .map_err(parquet_error(out))?,
                    )
                }
            };
            w.write(&batch).map_err(parquet_error(&path))?;
        }
    }
    let writer = match writer {
        Some(w) => w,
        // No rows at all: an empty file of the dataset's schema.
        None => ArrowWriter::try_new(
            fs::File::create(out).map_err(Error::io(out))?,
            archive::schema(),
            Some(archive::writer_properties()),
        )
        .map_err(parquet_error(out))?,
    };
    let file = writer.into_inner().map_err(parquet_error(out))?;
    file.sync_all().map_err(Error::io(out))
}

/// Removes the commits a compaction merged, and their files, if no batch
/// reads the dataset. Returns (files removed, commits left for later).
pub(crate) fn remove_superseded(master: &Path, topic: &str) -> Result<(u64, u64)> {
    let commits = archive::read_all_commits(master, topic)?;
    if commits.superseded.is_empty() {
        return Ok((0, 0));
    }
    let _readers = match manifest::lock_file(master, READERS_LOCK) {
        Ok(lock) => lock,
        Err(Error::Locked(_)) => {
            tracing::info!(
                commits = commits.superseded.len(),
                "a batch is reading the master dataset: merged commits are removed later"
            );
            return Ok((0, commits.superseded.len() as u64));
        }
        Err(e) => return Err(e),
    };
    let keep: HashSet<&String> = commits.live.iter().flat_map(|c| &c.files).collect();
    let mut dirs: HashSet<std::path::PathBuf> = HashSet::new();
    let mut removed = 0;
    for c in &commits.superseded {
        for f in c.files.iter().filter(|f| !keep.contains(f)) {
            let path = master.join(f);
            if remove_if_present(&path)? {
                removed += 1;
            }
            dirs.extend(path.parent().map(Path::to_path_buf));
        }
    }
    for dir in &dirs {
        manifest::sync_dir(dir)?;
    }
    // The commits last: until they go, their files are accounted for.
    let commits_dir = master.join("_commits");
    for c in &commits.superseded {
        remove_if_present(&commits_dir.join(format!("{}.json", c.stem())))?;
    }
    manifest::sync_dir(&commits_dir)?;
    Ok((removed, 0))
}

fn remove_if_present(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path)(e)),
    }
}

/// Creates the readers' lock file if it is missing.
pub(crate) fn create_read_lock(master: &Path) -> Result<()> {
    let path = master.join(READERS_LOCK);
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map(drop)
        .map_err(Error::io(&path))
}

/// Held by a batch run while it reads the master dataset: compaction
/// removes no file meanwhile. `None` when the dataset is read-only (then
/// nothing compacts it either).
pub fn read_lock(master: &Path) -> Result<Option<manifest::Lock>> {
    match manifest::lock_file_shared(master, READERS_LOCK) {
        Ok(lock) => Ok(Some(lock)),
        Err(Error::Io { source, .. })
            if matches!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::ReadOnlyFilesystem
                    | std::io::ErrorKind::NotFound
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(partition: i32, first: i64, last: i64, rows: u64, level: u32) -> Commit {
        Commit {
            topic: "tweets".into(),
            partition,
            first,
            last,
            rows,
            files: vec![format!(
                "date=2021-08-29/tweets-p{partition}-{first}-{last}.parquet"
            )],
            level,
            sources: BTreeMap::new(),
        }
    }

    fn stems(runs: &[&[Commit]]) -> Vec<Vec<String>> {
        runs.iter()
            .map(|r| r.iter().map(Commit::stem).collect())
            .collect()
    }

    #[test]
    fn runs_are_fanout_consecutive_small_commits_of_one_partition_and_level() {
        let config = CompactConfig {
            fanout: 3,
            small_rows: 100,
        };
        let live = vec![
            commit(0, 0, 9, 10, 1),
            commit(0, 10, 19, 10, 0),
            commit(0, 20, 29, 10, 0),
            // A large commit breaks the run.
            commit(0, 30, 239, 200, 0),
            commit(0, 240, 249, 10, 0),
            commit(0, 250, 259, 10, 0),
            commit(0, 260, 269, 10, 0),
            commit(0, 270, 279, 10, 0),
            // Another partition starts a new run.
            commit(1, 0, 9, 10, 0),
            commit(1, 10, 19, 10, 0),
            commit(2, 0, 9, 10, 0),
            commit(2, 10, 19, 10, 0),
            commit(2, 20, 29, 10, 0),
        ];
        assert_eq!(
            stems(&plan(&live, config)),
            vec![
                vec![
                    "tweets-p0-240-249",
                    "tweets-p0-250-259",
                    "tweets-p0-260-269"
                ],
                vec!["tweets-p2-0-9", "tweets-p2-10-19", "tweets-p2-20-29"],
            ]
        );
    }

    #[test]
    fn a_merged_commit_supersedes_the_commits_within_its_offsets() {
        let root = manifest::tests::scratch("compact-supersede");
        let master = root.as_path();
        fs::create_dir_all(master.join("_commits")).expect("mkdir");
        let mut wide = commit(0, 0, 29, 30, 1);
        wide.files = vec!["date=2021-08-29/tweets-p0-0-29.parquet".into()];
        for c in [
            commit(0, 0, 9, 10, 0),
            commit(0, 10, 29, 20, 0),
            wide,
            commit(0, 30, 39, 10, 0),
            commit(1, 0, 9, 10, 0),
        ] {
            archive::write_commit(master, &c).expect("commit");
        }
        let all = archive::read_all_commits(master, "tweets").expect("read");
        let live: Vec<String> = all.live.iter().map(Commit::stem).collect();
        let old: Vec<String> = all.superseded.iter().map(Commit::stem).collect();
        assert_eq!(live, ["tweets-p0-0-29", "tweets-p0-30-39", "tweets-p1-0-9"]);
        assert_eq!(old, ["tweets-p0-0-9", "tweets-p0-10-29"]);

        // Ranges that overlap without one holding the other are corrupt.
        archive::write_commit(master, &commit(0, 25, 34, 10, 0)).expect("commit");
        let e = archive::read_all_commits(master, "tweets")
            .err()
            .expect("overlap");
        assert!(e.to_string().contains("overlap"), "{e}");
        let _ = fs::remove_dir_all(&root);
    }

    /// Tweets over three days, with retweets, duplicates and hashtags.
    fn tweets() -> Vec<tweetlambda_core::TweetEvent> {
        let start = 1_630_195_200_000_i64; // 2021-08-29T00:00:00Z
        let mut out = Vec::new();
        for i in 0..1_500_i64 {
            let id = 1_000 + i;
            let t = start + i * 170_000; // about 3 days in all
            let retweet_of = (i % 4 == 3).then(|| (1_000 + i / 2).to_string());
            let tags = [format!("tag{}", i % 7), format!("t{}", i % 3)];
            let event = tweetlambda_core::TweetEvent {
                id: id.to_string(),
                created_at: chrono::DateTime::from_timestamp_millis(t).expect("time"),
                text: format!("tweet {id}"),
                lang: None,
                hashtags: tags.to_vec(),
                user: None,
                retweet_count: Some(i % 5),
                favorite_count: Some(i % 11),
                retweet_of,
                quote_of: None,
                geo: None,
                place: None,
                country_code: None,
            };
            // Every tenth tweet delivered twice.
            if i % 10 == 0 {
                out.push(event.clone());
            }
            out.push(event);
        }
        out
    }

    /// The rows of every file of a view, as text, sorted.
    fn view_rows(views: &Path, name: &str) -> Vec<String> {
        use arrow_array::cast::AsArray;
        use arrow_array::types::{Int64Type, TimestampMillisecondType};
        use arrow_schema::DataType;
        let manifest = manifest::read(views).expect("manifest").expect("a version");
        let mut rows = Vec::new();
        for path in manifest.views[name].files(views).expect("files") {
            let file = fs::File::open(&path).expect("open");
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.build())
                .expect("reader");
            for batch in reader {
                let batch = batch.expect("batch");
                for i in 0..batch.num_rows() {
                    let cells: Vec<String> = batch
                        .columns()
                        .iter()
                        .map(|c| match c.data_type() {
                            DataType::Int64 => c.as_primitive::<Int64Type>().value(i).to_string(),
                            DataType::Timestamp(..) => c
                                .as_primitive::<TimestampMillisecondType>()
                                .value(i)
                                .to_string(),
                            DataType::Utf8 => c.as_string::<i32>().value(i).to_string(),
                            DataType::LargeUtf8 => c.as_string::<i64>().value(i).to_string(),
                            DataType::Utf8View => c.as_string_view().value(i).to_string(),
                            other => panic!("column type {other}"),
                        })
                        .collect();
                    rows.push(cells.join("|"));
                }
            }
        }
        rows.sort();
        rows
    }

    fn batch(master: &Path, views: &Path, force: bool) -> crate::manifest::Manifest {
        let config = crate::batch::BatchConfig {
            master: master.to_path_buf(),
            views: views.to_path_buf(),
            topic: "tweets".into(),
            bucket_ms: 60_000,
            allowed_lateness_ms: 5_000,
            complete: true,
            keep_versions: 3,
            force,
        };
        match crate::batch::run(&config).expect("batch") {
            crate::batch::BatchOutcome::Published { manifest, .. } => manifest,
            other => panic!("not published: {other:?}"),
        }
    }

    fn data_files(master: &Path) -> usize {
        fs::read_dir(master)
            .expect("master")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|d| d.is_dir() && d.to_string_lossy().contains("date="))
            .map(|d| fs::read_dir(d).expect("date").count())
            .sum()
    }

    #[test]
    fn compaction_keeps_the_views_and_the_dates_identity() {
        let root = manifest::tests::scratch("compact-views");
        let master = root.join("master");
        // 1,650 deliveries over 3 partitions, 10 per commit: 165 commits.
        archive::write_tweets(&master, "tweets", 3, 10, tweets()).expect("write");
        let before = archive::read_commits(&master, "tweets").expect("commits");
        assert_eq!(before.len(), 165);
        let files_before = data_files(&master);
        let views = root.join("views");
        let first = batch(&master, &views, false);
        let names = crate::views::view_names(60_000);
        let expected: Vec<Vec<String>> = names.iter().map(|n| view_rows(&views, n)).collect();

        let config = CompactConfig {
            fanout: 4,
            small_rows: 1_000,
        };
        let summary = compact_locked(&master, "tweets", config).expect("compact");
        let after = archive::read_commits(&master, "tweets").expect("commits");
        // Per partition 55 commits: 13 of level 1 (52) and 3 left; 13 of
        // level 1: 3 of level 2 (12) and 1 left.
        assert_eq!(after.len(), 3 * (3 + 1 + 3));
        assert_eq!(summary.merged, 3 * (52 + 12));
        assert_eq!(summary.written, 3 * (13 + 3));
        assert_eq!(summary.removal_deferred, 0);
        assert!(
            data_files(&master) < files_before / 4,
            "{} files before, {} after",
            files_before,
            data_files(&master)
        );
        // Every row still there, once, in offset order within a partition.
        let rows_after: u64 = after.iter().map(|c| c.rows).sum();
        assert_eq!(rows_after, 1_650);
        for c in after.iter().filter(|c| c.level > 0) {
            for f in &c.files {
                let file = fs::File::open(master.join(f)).expect("open");
                let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                    .and_then(|b| b.build())
                    .expect("reader");
                let mut offsets = Vec::new();
                for batch in reader {
                    let batch = batch.expect("batch");
                    let column = batch.column_by_name("kafka_offset").expect("offset");
                    let column = arrow_array::cast::AsArray::as_primitive::<
                        arrow_array::types::Int64Type,
                    >(column.as_ref());
                    offsets.extend(column.values().iter().copied());
                }
                assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{f}: {offsets:?}");
                assert!(offsets.iter().all(|o| (c.first..=c.last).contains(o)));
            }
        }

        // The next run finds every date's input unchanged: nothing recomputed.
        let second = batch(&master, &views, false);
        assert_eq!(second.input.dates_computed, 0);
        assert_eq!(
            second.input.dates_carried_over,
            first.input.dates.len() as u64
        );
        assert!(second.input.files < first.input.files / 4);
        // A full recompute of the compacted dataset gives the same views.
        let forced = root.join("forced");
        let third = batch(&master, &forced, true);
        assert_eq!(third.input.distinct_tweets, first.input.distinct_tweets);
        for (name, rows) in names.iter().zip(&expected) {
            assert!(!rows.is_empty(), "{name}");
            assert_eq!(&view_rows(&forced, name), rows, "{name}");
        }
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn merged_commits_stay_while_a_batch_reads_and_go_after() {
        let root = manifest::tests::scratch("compact-readers");
        let master = root.join("master");
        archive::write_tweets(&master, "tweets", 1, 100, tweets().into_iter().take(400))
            .expect("write");
        let config = CompactConfig {
            fanout: 4,
            small_rows: 1_000,
        };
        let files_before = data_files(&master);
        let reading = read_lock(&master).expect("lock").expect("writable");
        let summary = compact_locked(&master, "tweets", config).expect("compact");
        assert_eq!((summary.merged, summary.written), (4, 1));
        assert_eq!(summary.removal_deferred, 4);
        // The old files are still there, the reader sees the merged commit.
        assert!(data_files(&master) > files_before);
        let live = archive::read_commits(&master, "tweets").expect("commits");
        assert_eq!(live.len(), 1);
        assert_eq!((live[0].first, live[0].last, live[0].rows), (0, 399, 400));
        drop(reading);
        // The next compaction (or the archive's start) removes them.
        let summary = compact_locked(&master, "tweets", config).expect("compact");
        assert_eq!(summary.merged, 0);
        assert_eq!(summary.removal_deferred, 0);
        assert_eq!(summary.removed_files as usize, files_before);
        let all = archive::read_all_commits(&master, "tweets").expect("commits");
        assert!(all.superseded.is_empty());
        assert_eq!(data_files(&master), live[0].files.len());
        let _ = fs::remove_dir_all(&root);
    }
}

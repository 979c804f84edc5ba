//! The views directory: versions of the batch views and the manifest that
//! names the one to serve.
//!
//! ```text
//! VIEWS/manifest.json          the version to serve (replaced atomically)
//! VIEWS/v000004/VIEW/DATE.parquet
//!                              a complete version, never modified: one
//!                              directory per view, one file per event date
//!                              (hard links to the previous version's file
//!                              where that date did not change)
//! VIEWS/v000003/…parquet       older versions, kept up to --keep
//! VIEWS/.tmp-v000005/          a run in progress (removed if it crashed)
//! VIEWS/.batch.lock            held by the run in progress
//! ```
//!
//! A run writes its version under a temporary name, renames it into place,
//! and only then replaces `manifest.json` (write, fsync, rename). A reader
//! that reads the manifest and then the files it names always sees one
//! complete version; a run that crashes leaves the previous one serving.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// File name of the manifest inside the views directory.
pub const MANIFEST: &str = "manifest.json";
const LOCK: &str = ".batch.lock";
const TMP_PREFIX: &str = ".tmp-";

/// The manifest of a published version (schema documented in the README).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format of this file: 2 (a view is a directory of per-date files;
    /// in format 1 it was one file).
    pub format: u32,
    /// Version number, increasing by one per published run.
    pub version: u64,
    /// Directory of the version, relative to the views directory.
    pub directory: String,
    /// When the run published it (RFC 3339, UTC).
    pub created_at: String,
    /// Bucket size of the views, in milliseconds.
    pub bucket_ms: i64,
    /// The lateness the boundary allows for.
    pub allowed_lateness_ms: i64,
    /// The boundary B: the first bucket the views do not cover completely
    /// (RFC 3339). The views hold buckets `< B` only.
    pub boundary: String,
    /// B in milliseconds since the epoch.
    pub boundary_ms: i64,
    /// Whether B was chosen as the end of the data (`--complete`) rather
    /// than from the archive's progress.
    pub complete: bool,
    /// What the run read.
    pub input: Coverage,
    /// The views: name → file and row count.
    pub views: BTreeMap<String, ViewFile>,
}

/// The part of the master dataset a version was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// The topic archived.
    pub topic: String,
    /// Commits read.
    pub commits: u64,
    /// Parquet files read.
    pub files: u64,
    /// Rows read (before deduplication).
    pub rows: u64,
    /// Distinct tweets.
    pub distinct_tweets: u64,
    /// Distinct tweets in buckets `>= B`, left for a later run.
    pub tweets_from_boundary: u64,
    /// Per partition of the topic: offsets archived and newest event time.
    pub partitions: BTreeMap<String, PartitionCoverage>,
    /// Per event date (`YYYY-MM-DD`, or `all` when the bucket size does not
    /// divide a day): what its views were computed from. The next run
    /// recomputes only the dates whose input files or cut changed.
    #[serde(default)]
    pub dates: BTreeMap<String, DateCoverage>,
    /// Dates this run computed.
    #[serde(default)]
    pub dates_computed: u64,
    /// Dates this run carried over from the version before (hard links).
    #[serde(default)]
    pub dates_carried_over: u64,
}

/// What the views of one event date were computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DateCoverage {
    /// The master dataset's files of that date, relative to its root.
    pub files: Vec<String>,
    /// The date's views hold its buckets before this time (ms): B, or the
    /// date's end when B is later, or its start when B is earlier.
    pub cut_ms: i64,
    /// Distinct tweets of the date.
    pub distinct_tweets: u64,
    /// Of those, in buckets at or after B.
    pub tweets_from_boundary: u64,
    /// Per Kafka partition: newest event time of the date's rows (ms).
    pub newest_ms: BTreeMap<String, i64>,
    /// Rows of each view's file of this date.
    pub view_rows: BTreeMap<String, u64>,
    /// The version whose run computed these files.
    pub computed_in: u64,
}

/// What a version holds of one partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionCoverage {
    /// Last archived offset read.
    pub last_offset: i64,
    /// Newest event time among its tweets (RFC 3339), if any.
    pub newest_event: Option<String>,
}

/// One view of a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewFile {
    /// Path relative to the views directory: a directory of Parquet files,
    /// one per date (format 2), or one Parquet file (format 1).
    pub path: String,
    /// Rows in all its files.
    pub rows: u64,
}

impl ViewFile {
    /// The Parquet files of the view, given the views directory, sorted.
    pub fn files(&self, views: &Path) -> Result<Vec<PathBuf>> {
        let path = views.join(&self.path);
        if !path.is_dir() {
            return Ok(vec![path]);
        }
        let mut files = Vec::new();
        for entry in fs::read_dir(&path).map_err(Error::io(&path))? {
            let file = entry.map_err(Error::io(&path))?.path();
            if file.extension().is_some_and(|e| e == "parquet") {
                files.push(file);
            }
        }
        files.sort();
        Ok(files)
    }
}

/// Reads the manifest; `None` if no version was published yet.
pub fn read(views: &Path) -> Result<Option<Manifest>> {
    let path = views.join(MANIFEST);
    match fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&path)(e)),
    }
}

/// Replaces the manifest atomically (temporary file, fsync, rename, fsync of
/// the directory).
pub fn write(views: &Path, manifest: &Manifest) -> Result<()> {
    let path = views.join(MANIFEST);
    let tmp = views.join(format!("{MANIFEST}.tmp"));
    let text = serde_json::to_string_pretty(manifest).map_err(|e| Error::Corrupt(e.to_string()))?;
    fs::write(&tmp, text).map_err(Error::io(&tmp))?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(Error::io(&tmp))?;
    fs::rename(&tmp, &path).map_err(Error::io(&path))?;
    sync_dir(views)
}

/// fsync of a directory: the names renamed into it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(dir))
}

/// The lock of a views directory, held while a run publishes; released when
/// dropped, or by the OS if the process dies.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Takes the lock, or fails at once with [`Error::Locked`].
pub fn lock(views: &Path) -> Result<Lock> {
    lock_file(views, LOCK).map_err(|e| match e {
        Error::Locked(_) => Error::Locked(views.display().to_string()),
        e => e,
    })
}

/// Takes the lock file `name` in `dir`; [`Error::Locked`] names the file
/// when another process holds it.
pub(crate) fn lock_file(dir: &Path, name: &str) -> Result<Lock> {
    let path = dir.join(name);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(Error::io(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(Lock { _file: file }),
        Err(fs::TryLockError::WouldBlock) => Err(Error::Locked(path.display().to_string())),
        Err(fs::TryLockError::Error(e)) => Err(Error::io(&path)(e)),
    }
}

/// Takes the lock file `name` in `dir` shared, waiting while a holder of
/// it exclusive finishes.
pub(crate) fn lock_file_shared(dir: &Path, name: &str) -> Result<Lock> {
    let path = dir.join(name);
    // Read-only when it exists: a reader without write access to the
    // directory can still hold it (the archive creates it).
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io(&path))?,
        Err(e) => return Err(Error::io(&path)(e)),
    };
    file.lock_shared().map_err(Error::io(&path))?;
    Ok(Lock { _file: file })
}

/// Directory name of a version.
pub fn version_dir(version: u64) -> String {
    format!("v{version:06}")
}

/// The published version directories, as (version, path), ascending.
pub fn versions(views: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(views).map_err(Error::io(views))? {
        let path = entry.map_err(Error::io(views))?.path();
        let version = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix('v'))
            .and_then(|n| n.parse::<u64>().ok());
        if let (Some(v), true) = (version, path.is_dir()) {
            found.push((v, path));
        }
    }
    found.sort();
    Ok(found)
}

/// A new, empty temporary directory for `version`.
pub fn temporary_dir(views: &Path, version: u64) -> Result<PathBuf> {
    let dir = views.join(format!("{TMP_PREFIX}{}", version_dir(version)));
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(Error::io(&dir))?;
    }
    fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    Ok(dir)
}

/// Removes what crashed runs left (call with the lock held). Returns how
/// many directories were removed.
pub fn remove_leftovers(views: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(views).map_err(Error::io(views))? {
        let path = entry.map_err(Error::io(views))?.path();
        let leftover = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(TMP_PREFIX));
        if leftover && path.is_dir() {
            tracing::warn!(dir = %path.display(), "removing the output of an interrupted run");
            fs::remove_dir_all(&path).map_err(Error::io(&path))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Moves a finished temporary directory to its version name.
pub fn seal(views: &Path, tmp: &Path, version: u64) -> Result<()> {
    let dir = views.join(version_dir(version));
    fs::rename(tmp, &dir).map_err(Error::io(&dir))?;
    sync_dir(views)
}

/// Keeps the newest `keep` versions (at least the current one) and removes
/// the others. Returns the versions removed.
pub fn prune(views: &Path, keep: usize, current: u64) -> Result<Vec<u64>> {
    let all = versions(views)?;
    let mut removed = Vec::new();
    let excess = all.len().saturating_sub(keep.max(1));
    for (version, path) in all.into_iter().take(excess) {
        if version == current {
            continue;
        }
        fs::remove_dir_all(&path).map_err(Error::io(&path))?;
        removed.push(version);
    }
    Ok(removed)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An empty directory for a test.
    pub(crate) fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tweetlambda-manifest-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch directory");
        dir
    }

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = scratch("lock");
        let first = lock(&dir).expect("first lock");
        assert!(matches!(lock(&dir), Err(Error::Locked(_))));
        drop(first);
        assert!(lock(&dir).is_ok());
    }

    #[test]
    fn a_view_is_a_directory_of_dated_files_or_one_file() {
        let dir = scratch("files");
        let view = dir.join("v000002").join("tweet_scores");
        fs::create_dir_all(&view).expect("view dir");
        for name in ["2021-08-30.parquet", "2021-08-29.parquet", "notes.txt"] {
            fs::write(view.join(name), b"").expect("file");
        }
        let format_2 = ViewFile {
            path: "v000002/tweet_scores".into(),
            rows: 0,
        };
        assert_eq!(
            format_2.files(&dir).expect("files"),
            vec![
                view.join("2021-08-29.parquet"),
                view.join("2021-08-30.parquet")
            ]
        );
        // Format 1 named the file itself.
        let format_1 = ViewFile {
            path: "v000001/tweet_scores.parquet".into(),
            rows: 0,
        };
        assert_eq!(
            format_1.files(&dir).expect("files"),
            vec![dir.join("v000001/tweet_scores.parquet")]
        );
    }

    #[test]
    fn prune_keeps_the_newest_versions() {
        let dir = scratch("prune");
        for v in 1..=5 {
            fs::create_dir_all(dir.join(version_dir(v))).expect("version dir");
        }
        fs::create_dir_all(dir.join(".tmp-v000006")).expect("tmp dir");
        assert_eq!(prune(&dir, 2, 5).expect("prune"), vec![1, 2, 3]);
        let left: Vec<u64> = versions(&dir)
            .expect("list")
            .into_iter()
            .map(|(v, _)| v)
            .collect();
        assert_eq!(left, vec![4, 5]);
        assert_eq!(remove_leftovers(&dir).expect("leftovers"), 1);
        assert!(read(&dir).expect("no manifest").is_none());
    }
}

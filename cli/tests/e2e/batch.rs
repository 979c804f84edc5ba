//! `tweetlambda batch`: views equal to an exact count from the MySQL rows,
//! the boundary, atomic publication, the lock and corrupt input.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::RowAccessor;
use serde_json::Value;

use super::helpers::*;

const MIN: i64 = 60_000;

/// The seed dump replayed and archived.
struct Archived {
    db: TestDb,
    master: PathBuf,
    topic: String,
}

async fn archived_seed() -> Archived {
    let db = TestDb::new().await;
    db.load_dump(&shared_data("tweet_hashtags_db.sql"));
    let topics = TestTopics::new();
    topics.replay(&db, &[]);
    let master = scratch_dir("tl_master");
    ok(tweetlambda(&[
        "archive",
        "--brokers",
        &brokers(),
        "--tweets-topic",
        &topics.tweets,
        "--master",
        master.to_str().unwrap_or_default(),
        "--once",
    ]));
    Archived {
        db,
        master,
        topic: topics.tweets,
    }
}

fn batch_args<'a>(a: &'a Archived, views: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "batch",
        "--tweets-topic",
        &a.topic,
        "--master",
        a.master.to_str().unwrap_or_default(),
        "--views",
        views.to_str().unwrap_or_default(),
    ];
    args.extend_from_slice(extra);
    args
}

fn manifest(views: &Path) -> Value {
    let text = std::fs::read_to_string(views.join("manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest JSON")
}

/// The rows of a view, read with the Parquet crate's row API (independent
/// of Polars, which wrote them): a directory of per-date files, or a file.
fn rows(path: &Path) -> Vec<parquet::record::Row> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        return files.iter().flat_map(|f| rows(f)).collect();
    }
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = SerializedFileReader::new(file).expect("parquet footer");
    reader
        .get_row_iter(None)
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect()
}

/// A view of the current version as bucket → key → value.
fn view_of<K: std::hash::Hash + Eq>(
    views: &Path,
    name: &str,
    key: impl Fn(&parquet::record::Row) -> K,
) -> BTreeMap<i64, HashMap<K, i64>> {
    let m = manifest(views);
    let file = m["views"][name]["path"].as_str().expect("view path");
    let mut out: BTreeMap<i64, HashMap<K, i64>> = BTreeMap::new();
    let all = rows(&views.join(file));
    assert_eq!(
        all.len() as u64,
        m["views"][name]["rows"].as_u64().expect("rows")
    );
    for row in &all {
        let bucket = row.get_timestamp_millis(0).expect("bucket_start");
        let value = row.get_long(2).expect("count or score");
        let previous = out.entry(bucket).or_default().insert(key(row), value);
        assert!(previous.is_none(), "one row per bucket and key");
    }
    out
}

fn hashtag_view(views: &Path, name: &str) -> BTreeMap<i64, HashMap<String, i64>> {
    view_of(views, name, |r| r.get_string(1).expect("hashtag").clone())
}

fn tweet_view(views: &Path, name: &str) -> BTreeMap<i64, HashMap<i64, i64>> {
    view_of(views, name, |r| {
        r.get_string(1)
            .expect("tweet_id")
            .parse()
            .expect("numeric id")
    })
}

fn before<K: Clone>(
    buckets: &BTreeMap<i64, HashMap<K, i64>>,
    boundary: i64,
) -> BTreeMap<i64, HashMap<K, i64>> {
    buckets
        .range(..boundary)
        .map(|(b, m)| (*b, m.clone()))
        .collect()
}

#[tokio::test]
async fn batch_views_equal_an_exact_count_from_mysql_bucket_by_bucket() {
    let a = archived_seed().await;
    let views = scratch_dir("tl_views");
    let exact = exact_buckets(&a.db).await;

    // From cron: B is the archive watermark (oldest partition's newest event
    // minus 5 s of lateness), and the views hold the buckets before it only.
    ok(tweetlambda(&batch_args(&a, &views, &[])));
    let m = manifest(&views);
    assert_eq!(m["version"], 1);
    let b = m["boundary_ms"].as_i64().expect("boundary");
    let newest_per_partition: Vec<i64> = m["input"]["partitions"]
        .as_object()
        .expect("partitions")
        .values()
        .map(|p| {
            let t = p["newest_event"].as_str().expect("newest event");
            tweetlambda_core::parse_event_time(t)
                .expect("time")
                .timestamp_millis()
        })
        .collect();
    let oldest = newest_per_partition.iter().min().expect("partitions");
    assert_eq!(b, (oldest - 5_000).div_euclid(MIN) * MIN);
    assert!(
        b > *exact.hashtags.keys().next().expect("buckets"),
        "B mid-stream"
    );
    assert_eq!(
        hashtag_view(&views, "hashtag_counts"),
        before(&exact.hashtags, b)
    );
    assert_eq!(tweet_view(&views, "tweet_scores"), before(&exact.tweets, b));
    let left: usize = exact.tweets.range(b..).map(|(_, t)| t.len()).sum();
    assert_eq!(
        m["input"]["tweets_from_boundary"].as_u64(),
        Some(left as u64)
    );
    assert_eq!(m["input"]["distinct_tweets"], 8759);

    // Nothing new: nothing published.
    let again = ok(tweetlambda(&batch_args(&a, &views, &[])));
    assert!(again.contains("version 1 is up to date"), "{again}");

    // A finished backfill covers every bucket; the rollups are sums of
    // buckets; only one version is kept.
    let out = ok(tweetlambda(&batch_args(
        &a,
        &views,
        &["--complete", "--keep", "1", "--show-top", "3"],
    )));
    let m = manifest(&views);
    assert_eq!(m["version"], 2);
    assert!(!views.join("v000001").exists(), "old version pruned");
    assert_eq!(hashtag_view(&views, "hashtag_counts"), exact.hashtags);
    assert_eq!(tweet_view(&views, "tweet_scores"), exact.tweets);
    let mut totals: HashMap<String, i64> = HashMap::new();
    for tags in exact.hashtags.values() {
        for (tag, c) in tags {
            *totals.entry(tag.clone()).or_default() += c;
        }
    }
    let hourly = hashtag_view(&views, "hashtag_counts_hour");
    let from_rollup: i64 = hourly.values().flat_map(|t| t.values()).sum();
    assert_eq!(from_rollup, totals.values().sum::<i64>());
    let (top_tag, top_count) = totals
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        .expect("hashtags");
    assert!(
        out.contains(&format!("  1. #{top_tag} {top_count}")),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&a.master);
    let _ = std::fs::remove_dir_all(&views);
}

#[tokio::test]
async fn a_corrupt_file_or_a_held_lock_never_replaces_the_serving_version() {
    let a = archived_seed().await;
    let views = scratch_dir("tl_views");
    ok(tweetlambda(&batch_args(&a, &views, &[])));

    // A topic the archive did not write: nothing published, and the topics
    // the master dataset holds are named.
    let elsewhere = scratch_dir("tl_views");
    let mut args = batch_args(&a, &elsewhere, &[]);
    args[2] = "not-archived";
    let out = tweetlambda(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("no committed file of topic 'not-archived'") && stdout.contains(&a.topic),
        "{stdout}"
    );
    assert!(!elsewhere.join("manifest.json").exists());

    // A reader polls the manifest while runs publish: every version it sees
    // is complete (each file named is there, with the rows announced).
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, views) = (stop.clone(), views.clone());
        std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                let m = manifest(&views);
                for (_, v) in m["views"].as_object().expect("views") {
                    let path = views.join(v["path"].as_str().expect("path"));
                    assert_eq!(rows(&path).len() as u64, v["rows"].as_u64().expect("rows"));
                }
                seen.insert(m["version"].as_u64().expect("version"));
            }
            seen
        })
    };
    for _ in 0..3 {
        ok(tweetlambda(&batch_args(
            &a,
            &views,
            &["--force", "--keep", "3"],
        )));
    }
    stop.store(true, Ordering::Relaxed);
    let seen = reader
        .join()
        .expect("the reader saw only complete versions");
    assert!(seen.len() >= 2, "the reader saw the switches: {seen:?}");
    let published = manifest(&views);
    assert_eq!(published["version"], 4);

    // Another run holds the lock: skipped with exit code 75.
    {
        let lock = std::fs::File::options()
            .write(true)
            .open(views.join(".batch.lock"))
            .expect("lock file");
        lock.lock().expect("take the lock");
        let out = tweetlambda(&batch_args(&a, &views, &["--force"]));
        assert_eq!(out.status.code(), Some(75), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("another batch run"));
    }

    // A data file damaged in its middle (its footer intact): the run stops
    // with exit code 65 naming the file; the serving version is untouched
    // and no half-written version is left.
    let commit = std::fs::read_dir(a.master.join("_commits"))
        .expect("commits")
        .flatten()
        .next()
        .expect("a commit");
    let commit: Value =
        serde_json::from_str(&std::fs::read_to_string(commit.path()).expect("commit"))
            .expect("commit JSON");
    let victim = a.master.join(commit["files"][0].as_str().expect("file"));
    let mut bytes = std::fs::read(&victim).expect("read");
    let len = bytes.len();
    for b in &mut bytes[4..len / 2] {
        *b = 0xAB;
    }
    std::fs::write(&victim, bytes).expect("damage");
    let out = tweetlambda(&batch_args(&a, &views, &["--force"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{stderr}");
    let name = victim.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(stderr.contains(name), "names the file: {stderr}");
    assert_eq!(manifest(&views), published);
    let leftovers: Vec<_> = std::fs::read_dir(&views)
        .expect("views")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());

    // A truncated file (no footer) too.
    std::fs::write(&victim, b"PAR1").expect("truncate");
    let out = tweetlambda(&batch_args(&a, &views, &["--force"]));
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stderr).contains(name));
    let _ = std::fs::remove_dir_all(&a.master);
    let _ = std::fs::remove_dir_all(&views);
}

/// A master dataset spread over several days, then one more day: the second
/// run computes only the new date and the one whose cut moved, carries the
/// others over (the same files, hard-linked), and its views equal a full
/// recompute's.
#[test]
fn one_more_day_recomputes_only_the_dates_that_changed() {
    use std::os::unix::fs::MetadataExt;
    let master = scratch_dir("tl_master_days");
    let views = scratch_dir("tl_views_days");
    let (m_dir, v_dir) = (
        master.to_str().unwrap_or_default(),
        views.to_str().unwrap_or_default(),
    );
    let generate = |first_id: &str, tweets: &str, start: &str| {
        ok(tweetlambda(&[
            "generate",
            "--master",
            m_dir,
            "--tweets",
            tweets,
            "--rate",
            "0.05",
            "--start",
            start,
            "--first-id",
            first_id,
        ]));
    };
    let batch = |extra: &[&str]| {
        let mut args = vec![
            "batch",
            "--tweets-topic",
            "tweets",
            "--master",
            m_dir,
            "--views",
            v_dir,
            "--complete",
        ];
        args.extend_from_slice(extra);
        ok(tweetlambda(&args));
        manifest(&views)
    };
    let dates = |m: &Value| -> Vec<String> {
        m["input"]["dates"]
            .as_object()
            .expect("dates")
            .keys()
            .cloned()
            .collect()
    };
    // About 3 days at 0.05 tweets/s.
    generate("1", "12000", "2021-08-01T00:00:00Z");
    let first = batch(&[]);
    let first_dates = dates(&first);
    assert!(first_dates.len() >= 3, "{first_dates:?}");
    assert_eq!(first["input"]["dates_computed"], first_dates.len());
    assert_eq!(first["input"]["dates_carried_over"], 0);

    // One more day, later, with new ids.
    generate("1000000", "3000", "2021-08-06T00:00:00Z");
    let second = batch(&[]);
    let second_dates = dates(&second);
    assert_eq!(
        second_dates.len(),
        first_dates.len() + 1,
        "{second_dates:?}"
    );
    // Computed: the new date, and the last old one (B was inside it, its
    // views stopped there; now they hold the whole date).
    assert_eq!(second["input"]["dates_computed"], 2);
    let carried = first_dates.len() as u64 - 1;
    assert_eq!(second["input"]["dates_carried_over"], carried);
    for date in &first_dates[..first_dates.len() - 1] {
        let entry = &second["input"]["dates"][date];
        assert_eq!(entry["computed_in"], 1, "{date}");
        for view in ["hashtag_counts", "tweet_scores"] {
            let file = |m: &Value| {
                views
                    .join(m["views"][view]["path"].as_str().expect("path"))
                    .join(format!("{date}.parquet"))
            };
            let (a, b) = (file(&first), file(&second));
            assert_ne!(a, b);
            assert_eq!(
                std::fs::metadata(&a).expect("old").ino(),
                std::fs::metadata(&b).expect("new").ino(),
                "{date} {view}: the same file, linked"
            );
        }
    }
    let incremental = (
        hashtag_view(&views, "hashtag_counts"),
        hashtag_view(&views, "hashtag_counts_day"),
        tweet_view(&views, "tweet_scores"),
    );

    // A full recompute gives the same views and counts.
    let full = batch(&["--force"]);
    assert_eq!(full["input"]["dates_computed"], second_dates.len());
    assert_eq!(full["input"]["dates_carried_over"], 0);
    assert_eq!(
        full["input"]["distinct_tweets"],
        second["input"]["distinct_tweets"]
    );
    assert_eq!(full["input"]["distinct_tweets"], 15000);
    assert_eq!(full["boundary_ms"], second["boundary_ms"]);
    assert_eq!(
        (
            hashtag_view(&views, "hashtag_counts"),
            hashtag_view(&views, "hashtag_counts_day"),
            tweet_view(&views, "tweet_scores"),
        ),
        incremental
    );
    let _ = std::fs::remove_dir_all(&master);
    let _ = std::fs::remove_dir_all(&views);
}

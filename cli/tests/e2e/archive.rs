//! `tweetlambda archive`: the master dataset, exactly once.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use arrow_array::{Array, Int64Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::helpers::*;

/// Every (tweet id, kafka offset) row of the master dataset, and the dates.
fn read_master(master: &Path) -> (Vec<(String, i64)>, Vec<String>) {
    let mut rows = Vec::new();
    let mut dates = Vec::new();
    for dir in std::fs::read_dir(master).expect("master").flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        if !name.starts_with("date=") {
            continue;
        }
        dates.push(name);
        for file in std::fs::read_dir(dir.path()).expect("date dir").flatten() {
            let path = file.path();
            assert_eq!(
                path.extension().and_then(|e| e.to_str()),
                Some("parquet"),
                "{}",
                path.display()
            );
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).expect("open"))
                    .expect("parquet")
                    .build()
                    .expect("reader");
            for batch in reader {
                let batch = batch.expect("batch");
                let ids = batch.column_by_name("tweet_id").expect("tweet_id");
                let ids = ids.as_any().downcast_ref::<StringArray>().expect("strings");
                let offsets = batch.column_by_name("kafka_offset").expect("kafka_offset");
                let offsets = offsets.as_any().downcast_ref::<Int64Array>().expect("ints");
                for i in 0..ids.len() {
                    rows.push((ids.value(i).to_string(), offsets.value(i)));
                }
            }
        }
    }
    (rows, dates)
}

#[tokio::test]
async fn archive_holds_every_tweet_once_after_a_rerun_and_a_kill() {
    let db = TestDb::new().await;
    db.load_dump(&shared_data("tweet_hashtags_db.sql"));
    let topics = TestTopics::new();
    topics.replay(&db, &[]);
    let brokers = brokers();
    let master = scratch_dir("tl_master");
    let m = master.to_str().unwrap_or_default();
    let args = |extra: &[&'static str]| -> Vec<String> {
        let base = [
            "archive",
            "--brokers",
            &brokers,
            "--tweets-topic",
            &topics.tweets,
            "--master",
            m,
        ];
        base.iter()
            .chain(extra.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |extra: &[&'static str]| {
        ok(tweetlambda(
            &args(extra).iter().map(String::as_str).collect::<Vec<_>>(),
        ))
    };

    // Continuous archive in small batches, killed once files exist.
    let continuous = args(&["--batch-rows", "500", "--batch-interval", "100ms"]);
    let mut child = spawn_tweetlambda(&continuous.iter().map(String::as_str).collect::<Vec<_>>());
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(master.join("_commits")).map_or(0, |d| d.count()) < 3 {
        assert!(Instant::now() < deadline, "no commits");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill -9");
    let _ = child.wait();

    // A crash may leave files of an uncommitted batch: they are removed, and
    // the rest is archived once.
    run(&["--once"]);
    let (rows, dates) = read_master(&master);
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for (id, _) in &rows {
        *per_id.entry(id.as_str()).or_default() += 1;
    }
    assert_eq!(per_id.len(), 8759, "distinct tweets");
    assert_eq!(rows.len(), 8759, "every message exactly once");
    // The seed dump's tweets are of 29 Aug 2021 (EDT), 23:51–00:00 UTC: two dates.
    let mut dates = dates;
    dates.sort();
    assert_eq!(
        dates,
        vec!["date=2021-08-29".to_string(), "date=2021-08-30".to_string()]
    );

    // Running again archives nothing new.
    let again = run(&["--once"]);
    assert!(
        again.contains("archive: 0 messages archived in 0 files"),
        "{again}"
    );
    assert_eq!(read_master(&master).0.len(), 8759);

    // Compaction merges the small commits into one per partition and date;
    // every row stays, once.
    let commits = || std::fs::read_dir(master.join("_commits")).map_or(0, |d| d.count());
    let files = |m: &Path| -> usize {
        std::fs::read_dir(m)
            .expect("master")
            .flatten()
            .filter(|d| d.file_name().to_string_lossy().starts_with("date="))
            .map(|d| std::fs::read_dir(d.path()).expect("date").count())
            .sum()
    };
    let (commits_before, files_before) = (commits(), files(&master));
    let mut before = read_master(&master).0;
    let out = ok(tweetlambda(&[
        "compact",
        "--master",
        m,
        "--tweets-topic",
        &topics.tweets,
        "--compact-fanout",
        "2",
    ]));
    assert!(out.contains("0 merged commits left"), "{out}");
    let mut after = read_master(&master).0;
    before.sort();
    after.sort();
    assert_eq!(after, before);
    let partitions = 3;
    assert!(
        commits() <= partitions * 12 && commits() < commits_before,
        "{commits_before} commits before, {} after",
        commits()
    );
    assert!(files(&master) < files_before, "{files_before} files before");
    let _ = std::fs::remove_dir_all(&master);
}

/// A second archive on a master dataset in use fails at start, naming the
/// lock, and removes nothing of the first one's; an archive whose topic no
/// longer holds the offsets it resumes from fails naming them.
#[tokio::test]
async fn one_archive_per_master_dataset_and_no_silent_gap() {
    let db = TestDb::new().await;
    db.load_dump(&shared_data("tweet_hashtags_db.sql"));
    let topics = TestTopics::new();
    topics.replay(&db, &[]);
    let brokers = brokers();
    let master = scratch_dir("tl_master");
    let m = master.to_str().unwrap_or_default();
    let base = [
        "archive",
        "--brokers",
        &brokers,
        "--tweets-topic",
        &topics.tweets,
        "--master",
        m,
    ];
    let first: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--batch-interval", "100ms"])
        .collect();
    let mut child = spawn_tweetlambda(&first);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(master.join("_commits")).map_or(0, |d| d.count()) < 1 {
        assert!(Instant::now() < deadline, "no commits");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second: Vec<&str> = base.iter().copied().chain(["--once"]).collect();
    let out = tweetlambda(&second);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the second archive ran: {stderr}");
    assert!(
        stderr.contains(&format!(
            "another archive is writing into the master dataset {m}"
        )),
        "{stderr}"
    );
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    // The first one's work is whole: a run after it archives the rest, once.
    ok(tweetlambda(&second));
    assert_eq!(read_master(&master).0.len(), 8759);

    // The master dataset says partition 0 was archived far past the
    // topic's end, as after the topic was deleted and created again.
    let commits = master.join("_commits");
    let entry = std::fs::read_dir(&commits)
        .expect("commits")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("\"partition\": 0")))
        .expect("a commit of partition 0");
    let mut commit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&entry).expect("read")).expect("JSON");
    commit["last"] = serde_json::json!(1_000_000);
    std::fs::write(&entry, commit.to_string()).expect("write");
    let out = tweetlambda(&second);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "gap in {} partition 0: the master dataset holds offsets up to 1000000",
            topics.tweets
        )),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&master);
}

//! `tweetlambda replay` against real MariaDB and Tansu.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use super::helpers::*;

async fn seed_db() -> TestDb {
    let db = TestDb::new().await;
    db.load_dump(&shared_data("tweet_hashtags_db.sql"));
    db
}

/// Every tweet id exactly once, and every (tweet, hashtag) pair exactly once.
fn assert_exactly_once(topics: &TestTopics, tweets: usize, hashtags: usize) {
    assert_exactly_once_at(&brokers(), topics, tweets, hashtags);
}

fn assert_exactly_once_at(brokers: &str, topics: &TestTopics, tweets: usize, hashtags: usize) {
    let t = read_topic_at(brokers, &topics.tweets);
    let ids: HashSet<&str> = t.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(ids.len(), tweets, "distinct tweet ids");
    assert_eq!(
        t.len(),
        tweets,
        "tweet messages (duplicates would make more)"
    );
    let h = read_topic_at(brokers, &topics.hashtags);
    let pairs: HashSet<(String, String)> = h
        .iter()
        .map(|r| {
            (
                r.value["tweet_id"].as_str().unwrap_or_default().to_string(),
                r.key.clone(),
            )
        })
        .collect();
    assert_eq!(pairs.len(), hashtags, "distinct (tweet, hashtag) pairs");
    assert_eq!(h.len(), hashtags, "hashtag messages");
}

#[tokio::test]
async fn seed_dump_replays_every_tweet_once_in_event_time_order() {
    let db = seed_db().await;
    let topics = TestTopics::new();
    let out = topics.replay(&db, &["--speed", "max"]);
    assert!(
        out.contains("8759 tweets and 19602 hashtag messages sent"),
        "{out}"
    );

    assert_exactly_once(&topics, 8759, 19602);
    let tweets = read_topic(&topics.tweets);
    let first = tweets
        .iter()
        .find(|r| r.key == "1432128795021086722")
        .expect("seed tweet replayed");
    assert_eq!(first.value["created_at"], "2021-08-29T23:51:27Z");
    assert_eq!(first.value["id"], "1432128795021086722");
    assert_eq!(first.value["lang"], "en");
    assert_eq!(first.value["hashtags"].as_array().map(Vec::len), Some(2));

    // Within each partition, event time never decreases.
    for topic in [&topics.tweets, &topics.hashtags] {
        let mut by_partition: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
        for r in read_topic(topic) {
            let t = r.value["created_at"]
                .as_str()
                .expect("created_at")
                .to_string();
            by_partition
                .entry(r.partition)
                .or_default()
                .push((r.offset, t));
        }
        assert!(by_partition.len() > 1, "messages spread over partitions");
        for (p, mut msgs) in by_partition {
            msgs.sort();
            assert!(
                msgs.windows(2).all(|w| w[0].1 <= w[1].1),
                "{topic} partition {p} goes back in time"
            );
        }
    }

    // The hashtags topic agrees with MySQL, tag by tag.
    let pool = db.pool().await;
    let expected: Vec<(String, i64)> = sqlx::query_as(
        "SELECT CONVERT(h.hashtag USING utf8mb4), COUNT(*) FROM tweet_hashtags th JOIN hashtags h ON h.hashtag_id = th.hashtag_id GROUP BY h.hashtag",
    )
    .fetch_all(&pool)
    .await
    .expect("count hashtags in MySQL");
    let mut got: BTreeMap<String, i64> = BTreeMap::new();
    for r in read_topic(&topics.hashtags) {
        *got.entry(r.key).or_default() += 1;
    }
    let expected: BTreeMap<String, i64> = expected.into_iter().collect();
    assert_eq!(got, expected);

    // Run again: the checkpoint says it is complete, nothing more is sent.
    let again = topics.replay(&db, &[]);
    assert!(again.contains("already complete"), "{again}");
    assert_eq!(read_topic(&topics.tweets).len(), 8759);

    // Output piped to `head`: the reader goes away after one line (the
    // sample is far larger than a pipe's buffer); the command stops
    // printing and succeeds instead of panicking on the broken pipe.
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{}' peek --brokers {} -n 2000 {} | head -1",
            env!("CARGO_BIN_EXE_tweetlambda"),
            brokers(),
            topics.tweets
        ))
        .output()
        .expect("bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn from_and_to_select_an_event_time_range() {
    let db = seed_db().await;
    let topics = TestTopics::new();
    topics.replay(
        &db,
        &[
            "--from",
            "2021-08-29T23:55:00Z",
            "--to",
            "2021-08-29 19:57:00 EDT",
        ],
    );
    let pool = db.pool().await;
    let expected: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tweet_meta WHERE event_time_ms >= UNIX_TIMESTAMP('2021-08-29 23:55:00') * 1000 \
         AND event_time_ms < UNIX_TIMESTAMP('2021-08-29 23:57:00') * 1000",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    let tweets = read_topic(&topics.tweets);
    assert!(expected > 100, "the range holds tweets");
    assert_eq!(tweets.len() as i64, expected);
    for r in &tweets {
        let t = r.value["created_at"].as_str().unwrap_or_default();
        assert!(
            ("2021-08-29T23:55:00Z".."2021-08-29T23:57:00Z").contains(&t),
            "{t}"
        );
    }
}

#[tokio::test]
async fn replay_killed_mid_way_and_restarted_publishes_every_tweet_once() {
    let db = seed_db().await;
    let topics = TestTopics::new();
    // 9 minutes of tweets at 60x take about 9 s; kill -9 after 3 s, past the
    // first checkpoint and with messages published after it.
    let mut args = topics.replay_args(&db);
    args.extend(["--speed", "60x", "--checkpoint-interval", "2s"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = spawn_tweetlambda(&args);
    tokio::time::sleep(Duration::from_secs(3)).await;
    child.kill().expect("kill -9 the replay");
    let _ = child.wait();
    let partial = read_topic(&topics.tweets).len();
    assert!(
        partial > 0 && partial < 8759,
        "killed mid-way ({partial} tweets published)"
    );

    let out = topics.replay(&db, &[]);
    assert!(out.contains("resumed"), "{out}");
    assert_exactly_once(&topics, 8759, 19602);
}

#[tokio::test]
async fn replay_stopped_by_sigterm_resumes_where_it_stopped() {
    let db = seed_db().await;
    let topics = TestTopics::new();
    let mut args = topics.replay_args(&db);
    args.extend(["--speed", "60x"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = spawn_tweetlambda(&args);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(status.success());
    let output = child.wait_with_output().expect("wait for the replay");
    assert_eq!(
        output.status.code(),
        Some(130),
        "interrupted replays exit 130: {output:?}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("interrupted"), "{stdout}");

    let out = topics.replay(&db, &[]);
    assert!(out.contains("resumed"), "{out}");
    // A graceful stop checkpoints everything it sent: nothing to read back.
    assert!(out.contains(" 0 already published"), "{out}");
    assert_exactly_once(&topics, 8759, 19602);
}

#[tokio::test]
async fn unparseable_dates_are_dead_lettered_and_the_rest_delivered() {
    let db = seed_db().await;
    let pool = db.pool().await;
    sqlx::query("INSERT INTO tweets (tweet_id, tweet, date_time, language) VALUES (1, 'bad #time', 'not a date', 'en'), (2, 'odd zone #x', '2021-08-29 19:51:27 XYZ', 'en')")
        .execute(&pool)
        .await
        .expect("insert bad rows");
    let topics = TestTopics::new();
    let out = topics.replay(&db, &[]);
    assert!(out.contains("2 dead letters"), "{out}");
    let dead = read_topic(&topics.dead_letters);
    assert_eq!(dead.len(), 2);
    let reasons: BTreeMap<String, String> = dead
        .iter()
        .map(|r| {
            (
                r.key.clone(),
                r.value["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(reasons["1"].contains("not a date"), "{reasons:?}");
    assert!(reasons["2"].contains("XYZ"), "{reasons:?}");
    assert_exactly_once(&topics, 8759, 19602);
}

#[tokio::test]
async fn unreachable_services_fail_fast_with_a_clear_error() {
    let db = TestDb::new().await;
    let topics = TestTopics::new();
    let mut args = topics.replay_args(&db);
    let brokers_at = args
        .iter()
        .position(|a| a == "--brokers")
        .expect("has --brokers")
        + 1;
    args[brokers_at] = "127.0.0.1:1".into();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = tweetlambda(&args);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach the Kafka brokers at 127.0.0.1:1"),
        "{stderr}"
    );

    let out = tweetlambda(&[
        "replay",
        "--mysql-url",
        "mysql://u:secret@127.0.0.1:1/x",
        "--brokers",
        &brokers(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot connect to MySQL at mysql://u:***@127.0.0.1:1/x"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "the password is never printed");
}

/// Waits for a spawned replay; returns (exit code, stdout).
fn finish(child: std::process::Child) -> (Option<i32>, String) {
    let out = child.wait_with_output().expect("wait for the replay");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The broker stopped for a few seconds in the middle of a replay (a
/// broker of the test's own, SQLite storage): the replay resumes from its
/// checkpoint once the broker is back and finishes, and every tweet is in
/// the topics exactly once. (Before `--retry-for`, the replay stopped with
/// "595 message(s) could not be delivered (Unknown broker error)".)
#[tokio::test]
async fn the_broker_restarted_mid_replay_loses_and_duplicates_nothing() {
    let _heavy = HEAVY.lock().await;
    let mut broker = PrivateBroker::start();
    let db = seed_db().await;
    let topics = TestTopics::new();
    let mut args = topics.replay_args_at(&db, &broker.brokers());
    // `--restart` too: it must apply to the first pass only, not to the
    // passes that resume after the failure.
    args.extend(["--speed", "60x", "--checkpoint-interval", "1s", "--restart"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = Reap(Some(spawn_tweetlambda(&args)));
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.start_again();
    let (code, out) = finish(child.take());
    eprintln!("replay across a broker restart: exit {code:?}: {out}");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("resumed from its checkpoint"), "{out}");
    assert_exactly_once_at(&broker.brokers(), &topics, 8759, 19602);
}

/// MariaDB stopped and started again in the middle of a replay (a server of
/// the test's own): the replay's reads and checkpoints wait for it
/// (reconnecting), and it finishes with every tweet once.
#[tokio::test]
async fn mariadb_restarted_mid_replay_loses_and_duplicates_nothing() {
    let _heavy = HEAVY.lock().await;
    let mut mariadb = PrivateMariaDb::start();
    let db = TestDb::on(&mariadb.server()).await;
    db.load_dump(&shared_data("tweet_hashtags_db.sql"));
    let topics = TestTopics::new();
    let mut args = topics.replay_args(&db);
    args.extend(["--speed", "60x", "--checkpoint-interval", "1s"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = Reap(Some(spawn_tweetlambda(&args)));
    tokio::time::sleep(Duration::from_secs(3)).await;
    mariadb.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    mariadb.start_again();
    let (code, out) = finish(child.take());
    eprintln!("replay across a MariaDB restart: exit {code:?}: {out}");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("finished: 8759 rows read, 8759 tweets and 19602 hashtag messages sent"),
        "{out}"
    );
    assert_exactly_once(&topics, 8759, 19602);
}

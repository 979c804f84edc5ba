//! `tweetlambda load`, then replay, on the shared API JSON and CSV files.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use super::helpers::*;

fn distinct_ids_in_jsonl(path: &std::path::Path) -> HashSet<String> {
    std::fs::read_to_string(path)
        .expect("read JSONL")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["id_str"].as_str().map(str::to_string))
        .collect()
}

/// Distinct valid ids of the CSV, and the number of rows whose id is not a
/// number (the export has ids mangled by a spreadsheet, such as `6.29697E+17`).
fn ids_in_csv(path: &std::path::Path) -> (HashSet<String>, usize) {
    let mut reader = csv::Reader::from_path(path).expect("read CSV");
    let column = reader
        .headers()
        .expect("header")
        .iter()
        .position(|h| h == "tweet_id")
        .expect("tweet_id column");
    let ids: Vec<String> = reader
        .records()
        .map(|r| r.expect("row")[column].to_string())
        .collect();
    let bad = ids.iter().filter(|id| id.parse::<i64>().is_err()).count();
    (
        ids.into_iter()
            .filter(|id| id.parse::<i64>().is_ok())
            .collect(),
        bad,
    )
}

#[tokio::test]
async fn api_json_and_csv_load_idempotently_and_replay_every_distinct_tweet() {
    if !has_shared_data(&["twitter_api_v1_sample.jsonl", "gop_debate_2015.csv"]) {
        return;
    }
    let db = TestDb::new().await;
    let jsonl = shared_data("twitter_api_v1_sample.jsonl");
    let csv_file = shared_data("gop_debate_2015.csv");
    let (csv_ids, bad_csv_ids) = ids_in_csv(&csv_file);
    assert!(bad_csv_ids > 0, "the export has mangled ids");
    let expected: HashSet<String> = distinct_ids_in_jsonl(&jsonl)
        .union(&csv_ids)
        .cloned()
        .collect();

    let out = ok(tweetlambda(&[
        "load",
        "--mysql-url",
        &db.url,
        jsonl.to_str().unwrap_or_default(),
        csv_file.to_str().unwrap_or_default(),
    ]));
    assert!(
        out.contains(&format!("{} inserted", expected.len())),
        "{out}"
    );
    // Rows with a mangled id cannot be loaded: each is skipped and counted.
    assert!(
        out.contains(&format!("{bad_csv_ids} lines skipped")),
        "{out}"
    );
    assert!(
        out.contains("gop_debate_2015.csv:20: invalid tweet_id \"6.29697E+17\""),
        "{out}"
    );

    // Loading again changes nothing.
    let again = ok(tweetlambda(&[
        "load",
        "--mysql-url",
        &db.url,
        jsonl.to_str().unwrap_or_default(),
        csv_file.to_str().unwrap_or_default(),
    ]));
    assert!(again.contains("0 inserted"), "{again}");
    assert!(again.contains("0 new hashtags"), "{again}");

    let topics = TestTopics::new();
    topics.replay(&db, &["--speed", "max"]);
    let tweets = read_topic(&topics.tweets);
    let got: HashSet<String> = tweets.iter().map(|r| r.key.clone()).collect();
    assert_eq!(tweets.len(), expected.len());
    assert_eq!(got, expected);

    // A retweet's hashtags come from the retweeted tweet's full text, not the
    // truncated top-level text: check every such retweet of the file.
    let by_id: HashMap<&str, &serde_json::Value> =
        tweets.iter().map(|r| (r.key.as_str(), &r.value)).collect();
    let mut checked = 0;
    for line in std::fs::read_to_string(&jsonl).expect("read").lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("valid line");
        let Some(rt) = v.get("retweeted_status") else {
            continue;
        };
        let entities = rt
            .get("extended_tweet")
            .and_then(|e| e.get("entities"))
            .or_else(|| rt.get("entities"));
        let mut full: Vec<String> = entities
            .and_then(|e| e["hashtags"].as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|h| h["text"].as_str().map(str::to_lowercase))
                    .collect()
            })
            .unwrap_or_default();
        full.sort();
        full.dedup();
        let id = v["id_str"].as_str().expect("id_str");
        let mut replayed: Vec<String> = by_id[id]["hashtags"]
            .as_array()
            .expect("hashtags")
            .iter()
            .filter_map(|h| h.as_str().map(str::to_string))
            .collect();
        replayed.sort();
        assert_eq!(replayed, full, "retweet {id}");
        assert_eq!(by_id[id]["retweet_of"], rt["id_str"], "retweet {id}");
        assert!(by_id[id]["text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("RT @"));
        checked += 1;
    }
    assert!(checked > 100, "the sample holds retweets ({checked})");

    // The CSV's engagement field and the time zone arrive.
    let gop = tweets
        .iter()
        .find(|r| r.key == "629697200650592256")
        .expect("first CSV row");
    assert_eq!(gop.value["created_at"], "2015-08-07T16:54:46Z");
    assert_eq!(gop.value["retweet_count"], 5);
    assert!(gop.value["hashtags"]
        .as_array()
        .expect("hashtags")
        .iter()
        .any(|h| h == "gopdebate"));
}

#[tokio::test]
async fn broken_lines_are_reported_with_their_line_number_and_skipped() {
    if !has_shared_data(&["twitter_api_v1_sample.jsonl"]) {
        return;
    }
    let db = TestDb::new().await;
    let source = std::fs::read_to_string(shared_data("twitter_api_v1_sample.jsonl")).expect("read");
    let good: Vec<&str> = source.lines().take(3).collect();
    let dir = std::env::temp_dir().join(unique("tl_load"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("mixed.jsonl");
    let mut f = std::fs::File::create(&path).expect("create");
    writeln!(f, "{}", good[0]).expect("write");
    writeln!(f, "{{\"id_str\": \"5\", \"text\": broken").expect("write");
    f.write_all(b"\xff\xfe not utf-8\n").expect("write");
    writeln!(f, "{}", good[1]).expect("write");
    writeln!(
        f,
        "{}",
        good[2].replace("\"created_at\": \"", "\"created_at\": \"someday ")
    )
    .expect("write");
    drop(f);

    let out = ok(tweetlambda(&[
        "load",
        "--mysql-url",
        &db.url,
        path.to_str().unwrap_or_default(),
    ]));
    assert!(out.contains("2 inserted"), "{out}");
    assert!(out.contains("3 lines skipped"), "{out}");
    assert!(out.contains("mixed.jsonl:2: invalid JSON"), "{out}");
    assert!(out.contains("mixed.jsonl:3: not valid UTF-8"), "{out}");
    assert!(
        out.contains("mixed.jsonl:5: unrecognised date-time"),
        "{out}"
    );
    let pool = db.pool().await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tweets")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(n, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A value longer than its column (a hashtag over 300 characters, a text
/// over 64 KB) skips its line with the line number; the load goes on.
#[tokio::test]
async fn values_longer_than_their_column_skip_their_line_not_the_load() {
    let db = TestDb::new().await;
    let dir = scratch_dir("tl_load");
    let path = dir.join("long.jsonl");
    let tweet = |id: u64, text: &str, tag: &str| {
        serde_json::json!({
            "id_str": id.to_string(), "created_at": "Sun Aug 29 23:51:27 +0000 2021", "full_text": text,
            "entities": {"hashtags": [{"text": tag}]}
        })
        .to_string()
    };
    let lines = [
        tweet(1, "short #ok", "ok"),
        tweet(2, "long hashtag", &"h".repeat(301)),
        tweet(3, &"x".repeat(70_000), "big"),
        tweet(4, "fine #ok", "ok"),
    ];
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    let out = ok(tweetlambda(&[
        "load",
        "--mysql-url",
        &db.url,
        path.to_str().expect("path"),
    ]));
    assert!(out.contains("2 inserted"), "{out}");
    assert!(out.contains("2 lines skipped"), "{out}");
    assert!(
        out.contains("long.jsonl:2: hashtag of 301 characters is longer than its column (300)"),
        "{out}"
    );
    assert!(
        out.contains("long.jsonl:3: text of 70000 bytes is longer than its column (65535)"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

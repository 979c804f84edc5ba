//! `tweetlambda serve` and `query`: the Lambda invariant end to end. For
//! many ranges, the merged answers equal an exact recomputation from the
//! MySQL rows, with the boundary mid-stream and at the end, with every
//! message delivered twice and the speed layer restarted in between.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::helpers::*;

const MIN: i64 = 60_000;
/// Part 1 of the replay ends here (the seed dump spans 23:51–00:00 UTC).
const MID: &str = "2021-08-29T23:56:30Z";

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(views: &std::path::Path, view_topic: &str) -> Server {
        Server::start_with(views, view_topic, &[])
    }

    fn start_with(views: &std::path::Path, view_topic: &str, extra: &[&str]) -> Server {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tweetlambda"))
            .args([
                "serve",
                "--brokers",
                &brokers(),
                "--views",
                views.to_str().unwrap_or_default(),
                "--view-topic",
                view_topic,
                "--listen",
                "127.0.0.1:0",
                "--reload-interval",
                "200ms",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("serve prints its address");
        let url = line
            .trim()
            .strip_prefix("serve: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .trim_end_matches('/')
            .to_string();
        Server { child, url }
    }

    fn query(&self, args: &[&str]) -> Value {
        let mut all = vec!["query", "--server", &self.url, "--json"];
        all.extend_from_slice(args);
        let out = ok(tweetlambda(&all));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    fn status(&self) -> Value {
        let out = std::process::Command::new("curl")
            .args(["-sf", &format!("{}/api/status", self.url)])
            .output()
            .expect("curl");
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    /// Waits until the realtime view is read to its end and `version` is served.
    fn wait_ready(&self, version: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.status();
            if s["realtime"]["caught_up"] == true && s["batch"]["version"] == version {
                return;
            }
            assert!(Instant::now() < deadline, "server not ready: {s}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rfc3339(ms: i64) -> String {
    tweetlambda_core::time::from_millis(ms)
        .map(tweetlambda_core::format_rfc3339)
        .unwrap_or_default()
}

/// Sum of the exact buckets in `[from, to)`, ranked like the server.
fn exact_top<K: Clone + Ord + std::hash::Hash>(
    buckets: &BTreeMap<i64, HashMap<K, i64>>,
    from: i64,
    to: i64,
) -> Vec<(K, i64)> {
    let mut sum: HashMap<K, i64> = HashMap::new();
    for (_, m) in buckets.range(from..to) {
        for (k, v) in m {
            *sum.entry(k.clone()).or_default() += v;
        }
    }
    let mut items: Vec<(K, i64)> = sum.into_iter().filter(|(_, v)| *v > 0).collect();
    items.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    items
}

/// Checks many bucket-aligned ranges against the exact recomputation.
fn assert_invariant(server: &Server, exact: &ExactBuckets, boundary: i64) -> usize {
    let first = *exact.hashtags.keys().next().expect("buckets");
    let last = *exact.hashtags.keys().next_back().expect("buckets") + MIN;
    let mut checked = 0;
    let mut straddling = 0;
    for from in (first - MIN..last).step_by(MIN as usize) {
        for to in (from + MIN..=last + MIN).step_by(2 * MIN as usize) {
            let (f, t) = (rfc3339(from), rfc3339(to));
            let range = ["--from", f.as_str(), "--to", t.as_str()];
            let mut args = vec!["top-hashtags"];
            args.extend_from_slice(&range);
            args.extend_from_slice(&["-n", "1000"]);
            let got = server.query(&args);
            assert_eq!(got["partial"], false, "{f}..{t}: {got}");
            let items: Vec<(String, i64)> = got["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| {
                    (
                        i["hashtag"].as_str().unwrap_or_default().to_string(),
                        i["count"].as_i64().unwrap_or(0),
                    )
                })
                .collect();
            let mut expected = exact_top(&exact.hashtags, from, to);
            expected.truncate(1000);
            assert_eq!(
                items,
                expected,
                "top hashtags {f}..{t} (B = {})",
                rfc3339(boundary)
            );

            let mut args = vec!["top-tweets"];
            args.extend_from_slice(&range);
            args.extend_from_slice(&["-n", "50"]);
            let got = server.query(&args);
            let items: Vec<(i64, i64)> = got["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| {
                    let id = i["tweet_id"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    (id, i["score"].as_i64().unwrap_or(0))
                })
                .collect();
            let mut expected = exact_top(&exact.tweets, from, to);
            expected.truncate(50);
            assert_eq!(items, expected, "top tweets {f}..{t}");
            checked += 1;
            if from < boundary && to > boundary {
                straddling += 1;
                let s = &got["sources"];
                assert!(
                    s["batch_buckets"].as_i64() > Some(0)
                        && s["realtime_buckets"].as_i64() > Some(0),
                    "{got}"
                );
            }
        }
    }
    assert!(straddling > 0 || boundary >= last, "some ranges straddle B");
    checked
}

/// Checks the view topic once the server has ended the keys a version with
/// B = `boundary` covers: the last record of each key of a bucket before B
/// is a tombstone, and no key from B on has one. Returns how many keys were
/// ended (retried while the server still publishes).
fn assert_view_ended_before(topic: &str, boundary: i64) -> usize {
    let bucket_of = |key: &str| -> i64 {
        key.split('/')
            .nth(1)
            .and_then(|b| b.parse().ok())
            .unwrap_or_else(|| panic!("view key {key:?}"))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Key → whether its last record is a tombstone.
        let mut last: HashMap<String, bool> = HashMap::new();
        let mut ended_from_b = Vec::new();
        for r in read_topic(topic) {
            if r.value.is_null() && bucket_of(&r.key) >= boundary {
                ended_from_b.push(r.key.clone());
            }
            last.insert(r.key, r.value.is_null());
        }
        assert!(
            ended_from_b.is_empty(),
            "keys from B on ended: {ended_from_b:?}"
        );
        let before: Vec<(&String, bool)> = last
            .iter()
            .filter(|(k, _)| bucket_of(k) < boundary)
            .map(|(k, ended)| (k, *ended))
            .collect();
        let open: Vec<&String> = before.iter().filter(|(_, e)| !e).map(|(k, _)| *k).collect();
        if open.is_empty() {
            return before.len();
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} keys before B not ended, e.g. {:?}",
            open.len(),
            before.len(),
            &open[..open.len().min(5)]
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn batch(master: &std::path::Path, views: &std::path::Path, topic: &str) -> Value {
    ok(tweetlambda(&[
        "batch",
        "--tweets-topic",
        topic,
        "--master",
        master.to_str().unwrap_or_default(),
        "--views",
        views.to_str().unwrap_or_default(),
    ]));
    let text = std::fs::read_to_string(views.join("manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest JSON")
}

fn archive(master: &std::path::Path, topic: &str) {
    ok(tweetlambda(&[
        "archive",
        "--brokers",
        &brokers(),
        "--tweets-topic",
        topic,
        "--master",
        master.to_str().unwrap_or_default(),
        "--once",
    ]));
}

fn speed(topics: &TestTopics, prefix: &str) {
    ok(tweetlambda(&[
        "speed",
        "--brokers",
        &brokers(),
        "--tweets-topic",
        &topics.tweets,
        "--hashtags-topic",
        &topics.hashtags,
        "--topic-prefix",
        prefix,
        "--group",
        &unique("g"),
        "--idle-timeout",
        "1s",
        "--emit-interval",
        "200ms",
        "--metrics-listen",
        "none",
        "--exit-when-idle",
    ]));
}

#[tokio::test]
async fn merged_answers_equal_an_exact_recomputation_whatever_the_boundary() {
    let db = TestDb::new().await;
    db.load_dump(&shared_data("tweet_hashtags_db.sql"));
    let topics = TestTopics::new();
    let (master, views) = (scratch_dir("tl_master"), scratch_dir("tl_views"));
    let prefix = format!("{}.", unique("s"));

    // Part 1 replayed, archived and batched: B falls mid-stream.
    topics.replay(&db, &["--to", MID, "--checkpoint", "part1"]);
    let exact = exact_buckets(&db).await;
    archive(&master, &topics.tweets);
    let m = batch(&master, &views, &topics.tweets);
    let b1 = m["boundary_ms"].as_i64().expect("boundary");
    let mid = tweetlambda_core::parse_event_time(MID)
        .expect("time")
        .timestamp_millis();
    assert!(b1 < mid && b1 > mid - 2 * MIN, "B = {}", rfc3339(b1));

    // The rest replayed, then everything again (duplicates); the speed
    // layer run to the end of its input, then restarted over it.
    topics.replay(&db, &["--from", MID, "--checkpoint", "part2"]);
    topics.replay(&db, &["--restart", "--checkpoint", "again"]);
    speed(&topics, &prefix);
    speed(&topics, &prefix);

    let view_topic = format!("{prefix}speed.view");
    let server = Server::start(&views, &view_topic);
    server.wait_ready(1);
    let n = assert_invariant(&server, &exact, b1);
    assert!(n > 30, "{n} ranges");
    let ended = assert_view_ended_before(&view_topic, b1);
    assert!(ended > 100, "{ended} keys before B1");
    // Version 1 as it was, for a server that has not moved on (below).
    let views_v1 = scratch_dir("tl_views_v1");
    let copied = std::process::Command::new("cp")
        .args(["-a", &format!("{}/.", views.display())])
        .arg(&views_v1)
        .status()
        .expect("cp");
    assert!(copied.success());

    // The archive catches up and the cron job runs again: the server swaps
    // to version 2, B moves to the end, and the answers stay exact.
    archive(&master, &topics.tweets);
    let m = batch(&master, &views, &topics.tweets);
    let b2 = m["boundary_ms"].as_i64().expect("boundary");
    assert!(b2 > b1);
    server.wait_ready(2);
    assert_invariant(&server, &exact, b2);
    assert!(assert_view_ended_before(&view_topic, b2) > ended);

    // A server started now reads the ended keys and stays exact, with no
    // tombstone of its own to publish.
    let second = Server::start(&views, &view_topic);
    second.wait_ready(2);
    std::thread::sleep(Duration::from_secs(2));
    let tombstones = &second.status()["realtime"]["tombstones"];
    assert_eq!(tombstones["published"], 0, "{tombstones}");
    assert!(tombstones["read"].as_u64() > Some(0), "{tombstones}");
    assert_invariant(&second, &exact, b2);
    drop(second);

    // A server still on version 1 finds the buckets in [B1, B2) ended: its
    // answers over them are flagged, never short; before B1 they are exact.
    let old = Server::start(&views_v1, &view_topic);
    old.wait_ready(1);
    let got = old.query(&["top-hashtags", "--from", &rfc3339(b1), "--to", &rfc3339(b2)]);
    assert_eq!(got["partial"], true, "{got}");
    assert!(got["warnings"].to_string().contains("released"), "{got}");
    let first = *exact.hashtags.keys().next().expect("buckets");
    let got = old.query(&[
        "top-hashtags",
        "--from",
        &rfc3339(first),
        "--to",
        &rfc3339(b1),
        "-n",
        "1000",
    ]);
    assert_eq!(got["partial"], false, "{got}");
    let mut expected = exact_top(&exact.hashtags, first, b1);
    expected.truncate(1000);
    assert_eq!(items_of::<String>(&got, "hashtag", "count"), expected);
    drop(old);
    let _ = std::fs::remove_dir_all(&views_v1);

    // `last` is relative to the newest event, not the wall clock.
    let got = server.query(&["top-hashtags", "--last", "5m", "-n", "3"]);
    let newest_end = *exact.hashtags.keys().next_back().expect("buckets") + MIN;
    assert_eq!(got["to"], rfc3339(newest_end));
    let expected = exact_top(&exact.hashtags, newest_end - 5 * MIN, newest_end);
    assert_eq!(got["items"][0]["hashtag"], expected[0].0.as_str());

    assert_dashboard_shows(
        &server,
        &exact_top(&exact.hashtags, newest_end - 60 * MIN, newest_end)[0].0,
    );

    let _ = std::fs::remove_dir_all(&master);
    let _ = std::fs::remove_dir_all(&views);
}

/// The dashboard at `url` in headless Chromium: the page after its script
/// ran, and the browser's log.
fn chromium_dom(url: &str) -> (String, String) {
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            url,
        ])
        .output()
        .expect("chromium (scripts/services.sh installs it)");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The dashboard in headless Chromium: it loads, its script draws the top
/// hashtag of the last hour (its default range), and logs no error.
fn assert_dashboard_shows(server: &Server, top_hashtag: &str) {
    let (dom, log) = chromium_dom(&format!("{}/", server.url));
    assert!(
        dom.contains(&format!(">#{top_hashtag}<")),
        "top hashtag #{top_hashtag} not drawn:\n{dom}"
    );
    assert!(dom.contains("batch version 2"), "status not shown:\n{dom}");
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

/// With `--token`, the API refuses calls without it, and the dashboard
/// opened with the token in its fragment sends it and draws.
#[tokio::test]
async fn the_dashboard_works_when_the_server_needs_a_token() {
    let views = scratch_dir("tl_views");
    let server = Server::start_with(&views, &unique("missing"), &["--token", "s3cret"]);
    let code = |auth: &[&str]| -> String {
        let out = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(auth)
            .arg(format!("{}/api/status", server.url))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(code(&[]), "401");
    assert_eq!(code(&["-H", "Authorization: Bearer s3cre"]), "401");
    assert_eq!(code(&["-H", "Authorization: Bearer s3cret"]), "200");
    let (dom, _) = chromium_dom(&format!("{}/#token=s3cret", server.url));
    assert!(
        dom.contains("no batch version"),
        "the status was drawn:\n{dom}"
    );
    assert!(!dom.contains(": 401 "), "no refused call shown: {dom}");
    let _ = std::fs::remove_dir_all(&views);
}

#[tokio::test]
async fn bad_parameters_get_a_400_naming_them_and_the_dashboard_loads() {
    let views = scratch_dir("tl_views");
    // No batch version and no realtime topic yet: still answers.
    let server = Server::start(&views, &unique("missing"));
    let get = |path: &str| -> (u16, String) {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
                &format!("{}{path}", server.url),
            ])
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.parse().unwrap_or(0), body.to_string())
    };
    for (path, parameter) in [
        ("/api/top/hashtags?n=0&last=1h", "n"),
        ("/api/top/hashtags?n=abc&last=1h", "n"),
        ("/api/top/hashtags?n=100000&last=1h", "n"),
        ("/api/top/hashtags?last=1y", "last"),
        (
            "/api/top/hashtags?from=yesterday&to=2021-08-30T00:00:00Z",
            "from",
        ),
        ("/api/top/hashtags?from=2021-08-30T00:00:00Z", "to"),
        (
            "/api/top/tweets?from=2021-08-30T00:00:00Z&to=2021-08-29T00:00:00Z",
            "to",
        ),
        (
            "/api/top/tweets?from=2000-01-01T00:00:00Z&to=2021-08-29T00:00:00Z",
            "from",
        ),
        ("/api/series/hashtags?last=1h&step=0m", "step"),
        ("/api/top/hashtags?last=1h&last=2h", "last"),
    ] {
        let (code, body) = get(path);
        assert_eq!(code, 400, "{path}: {body}");
        let json: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        assert_eq!(json["parameter"], parameter, "{path}: {body}");
        assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let (code, body) = get("/api/top/hashtags?limit=3");
    assert_eq!(code, 400);
    assert!(body.contains("unknown parameter"), "{body}");
    let (code, body) = get("/api/top/hashtags?last=1h");
    assert_eq!(code, 200, "{body}");
    let json: Value = serde_json::from_str(&body).expect("JSON");
    assert!(
        json["warnings"].to_string().contains("no batch version"),
        "{json}"
    );
    let (code, body) = get("/");
    assert_eq!(code, 200);
    assert!(body.contains("<title>tweetlambda</title>"));
    assert_eq!(get("/health").0, 200);
    let _ = std::fs::remove_dir_all(&views);
}

/// An answer's items as (key, value), the key parsed (a hashtag, a tweet id).
fn items_of<K: std::str::FromStr + Default>(got: &Value, key: &str, value: &str) -> Vec<(K, i64)> {
    got["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    (
                        i[key]
                            .as_str()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or_default(),
                        i[value].as_i64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One answer of the server at `url` (`tweetlambda query … --json`).
fn query_at(url: &str, args: &[&str]) -> Value {
    let mut all = vec!["query", "--server", url, "--json"];
    all.extend_from_slice(args);
    let out = ok(tweetlambda(&all));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// `kill -9` of the speed layer while the serving layer answers, and a new
/// instance rebuilding its state from the input: every answer the server
/// does not flag partial, polled all along, equals the exact recount.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_speed_layer_while_serving_leaves_no_unflagged_wrong_answer() {
    let _heavy = HEAVY.lock().await;
    let db = TestDb::new().await;
    db.load_dump(&shared_data("tweet_hashtags_db.sql"));
    let topics = TestTopics::new();
    let (master, views) = (scratch_dir("tl_master"), scratch_dir("tl_views"));
    let prefix = format!("{}.", unique("s"));
    topics.replay(&db, &["--to", MID, "--checkpoint", "part1"]);
    archive(&master, &topics.tweets);
    let b = batch(&master, &views, &topics.tweets)["boundary_ms"]
        .as_i64()
        .expect("boundary");
    topics.replay(&db, &["--from", MID, "--checkpoint", "part2"]);
    let exact = exact_buckets(&db).await;
    let first = *exact.hashtags.keys().next().expect("buckets");
    let last = *exact.hashtags.keys().next_back().expect("buckets") + MIN;
    // The whole range (batch and realtime), and the realtime part alone.
    let ranges = [(first, last), (b, last)];

    let start_speed = |group: &str, extra: &[&str]| {
        let b = brokers();
        let mut args = vec![
            "speed",
            "--brokers",
            &b,
            "--tweets-topic",
            &topics.tweets,
            "--hashtags-topic",
            &topics.hashtags,
            "--topic-prefix",
            &prefix,
            "--group",
            group,
            "--idle-timeout",
            "1s",
            "--emit-interval",
            "200ms",
            "--metrics-listen",
            "none",
        ];
        args.extend_from_slice(extra);
        Reap(Some(spawn_tweetlambda(&args)))
    };
    eprintln!("view topic {prefix}speed.view");
    let speed = start_speed(&unique("g"), &[]);
    let server = Server::start(&views, &format!("{prefix}speed.view"));
    server.wait_ready(1);

    // (answers checked unflagged, answers flagged partial, wrong answers)
    let check = |url: &str| -> (usize, usize, Vec<String>) {
        let (mut unflagged, mut flagged, mut wrong) = (0, 0, Vec::new());
        for (from, to) in ranges {
            let (f, t) = (rfc3339(from), rfc3339(to));
            let got = query_at(
                url,
                &["top-hashtags", "--from", &f, "--to", &t, "-n", "1000"],
            );
            if got["partial"] != false {
                flagged += 1;
                continue;
            }
            unflagged += 1;
            let items: Vec<(String, i64)> = items_of(&got, "hashtag", "count");
            let mut expected = exact_top(&exact.hashtags, from, to);
            expected.truncate(1000);
            if items != expected {
                wrong.push(format!("hashtags {f}..{t}: {} items", items.len()));
            }
            let got = query_at(url, &["top-tweets", "--from", &f, "--to", &t, "-n", "50"]);
            if got["partial"] != false {
                flagged += 1;
                continue;
            }
            unflagged += 1;
            let items: Vec<(i64, i64)> = items_of(&got, "tweet_id", "score");
            let mut expected = exact_top(&exact.tweets, from, to);
            expected.truncate(50);
            if items != expected {
                wrong.push(format!("tweets {f}..{t}: {} items", items.len()));
            }
        }
        (unflagged, flagged, wrong)
    };
    // The realtime layer has caught up: every answer exact.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (unflagged, _, wrong) = check(&server.url);
        if unflagged == 2 * ranges.len() && wrong.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "never exact: {wrong:?}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Poll while the speed layer is killed and a new instance rebuilds.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (stopping, url) = (stop.clone(), server.url.clone());
        let check = &check;
        std::thread::scope(|scope| {
            let handle = scope.spawn(move || {
                let mut totals = (0, 0, Vec::new());
                while !stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    let (u, f, w) = check(&url);
                    totals.0 += u;
                    totals.1 += f;
                    totals.2.extend(w);
                }
                totals
            });
            std::thread::sleep(Duration::from_secs(1));
            let mut killed = speed;
            if let Some(child) = killed.0.as_mut() {
                child.kill().expect("kill -9");
            }
            drop(killed);
            // Small fetches: a rebuild that takes seconds (the seed dump
            // alone is read in a fraction of one), so that the server is
            // asked while it runs.
            // (A group of its own: takeover within a group, after the
            // session timeout, is tested with the speed layer.)
            let restarted = start_speed(&unique("g"), &["-X", "max.partition.fetch.bytes=1000"]);
            std::thread::sleep(Duration::from_secs(12));
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            let totals = handle.join().expect("poller");
            // The new instance did take over and count the input.
            let child = restarted.take();
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let out = child.wait_with_output().expect("speed");
            let summary = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(out.status.success(), "{summary}");
            assert!(summary.contains(" 28361 events counted"), "{summary}");
            totals
        })
    };
    let (unflagged, flagged, wrong) = poller;
    eprintln!("kill -9 under the server: {unflagged} answers unflagged, {flagged} flagged partial, {} wrong", wrong.len());
    assert!(
        wrong.is_empty(),
        "unflagged answers that are wrong: {wrong:?}"
    );
    assert!(unflagged > 10, "{unflagged} answers checked");
    let _ = std::fs::remove_dir_all(&master);
    let _ = std::fs::remove_dir_all(&views);
}

//! `tweetlambda index` against the Elasticsearch-API server (noida-db,
//! started by `scripts/services.sh`), and `tweetlambda kibana import`
//! against a stand-in Kibana that checks the request's shape.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use sqlx::Row;

use super::helpers::*;

/// The test profile's Elasticsearch-API server.
fn es_url() -> String {
    std::env::var("TWEETLAMBDA_TEST_ES_URL").unwrap_or_else(|_| "http://127.0.0.1:19200".into())
}

async fn es(method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = client.request(method, url);
    if let Some(b) = body {
        request = request
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let response = request.send().await.expect("Elasticsearch API answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The number of documents, after a refresh (so that every write shows).
async fn count(base: &str, index: &str) -> i64 {
    es(
        reqwest::Method::POST,
        &format!("{base}/{index}/_refresh"),
        None,
    )
    .await;
    let (_, v) = es(
        reqwest::Method::GET,
        &format!("{base}/{index}/_count"),
        None,
    )
    .await;
    v["count"].as_i64().unwrap_or(-1)
}

async fn search(base: &str, index: &str, body: Value) -> Value {
    es(
        reqwest::Method::POST,
        &format!("{base}/{index}/_refresh"),
        None,
    )
    .await;
    let (status, v) = es(
        reqwest::Method::POST,
        &format!("{base}/{index}/_search"),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v
}

/// Hashtag → documents, from a terms aggregation over every hashtag.
async fn es_hashtags(base: &str, index: &str) -> BTreeMap<String, i64> {
    let v = search(
        base,
        index,
        json!({"size": 0, "aggs": {"h": {"terms": {"field": "hashtags", "size": 100000}}}}),
    )
    .await;
    v["aggregations"]["h"]["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| {
            (
                b["key"].as_str().expect("key").to_string(),
                b["doc_count"].as_i64().expect("count"),
            )
        })
        .collect()
}

/// Minute (ms) → documents, from a date histogram on `created_at`.
async fn es_minutes(base: &str, index: &str) -> BTreeMap<i64, i64> {
    let v = search(
        base,
        index,
        json!({"size": 0, "aggs": {"m": {"date_histogram": {"field": "created_at", "fixed_interval": "1m", "min_doc_count": 1}}}}),
    )
    .await;
    v["aggregations"]["m"]["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| {
            (
                b["key"].as_i64().expect("key"),
                b["doc_count"].as_i64().expect("count"),
            )
        })
        .collect()
}

/// What MySQL says: distinct tweets, tweets per normalised hashtag, tweets
/// per minute.
struct Expected {
    tweets: i64,
    hashtags: BTreeMap<String, i64>,
    minutes: BTreeMap<i64, i64>,
}

async fn expected(db: &TestDb) -> Expected {
    let exact = exact_buckets(db).await;
    let mut hashtags = BTreeMap::new();
    for bucket in exact.hashtags.values() {
        for (tag, n) in bucket {
            *hashtags.entry(tag.clone()).or_insert(0) += n;
        }
    }
    let rows = sqlx::query(
        "SELECT m.event_time_ms DIV 60000 * 60000, COUNT(*) FROM tweet_meta m \
         JOIN tweets t ON t.tweet_id = m.tweet_id WHERE m.event_time_ms IS NOT NULL \
         GROUP BY 1",
    )
    .fetch_all(&db.pool().await)
    .await
    .expect("per minute");
    let minutes: BTreeMap<i64, i64> = rows
        .iter()
        .map(|r| (r.get::<i64, _>(0), r.get::<i64, _>(1)))
        .collect();
    Expected {
        tweets: minutes.values().sum(),
        hashtags,
        minutes,
    }
}

async fn assert_matches_mysql(base: &str, index: &str, want: &Expected) {
    assert_eq!(count(base, index).await, want.tweets, "documents");
    let got = es_hashtags(base, index).await;
    assert_eq!(got.len(), want.hashtags.len(), "distinct hashtags");
    assert_eq!(got, want.hashtags, "tweets per hashtag");
    assert_eq!(
        es_minutes(base, index).await,
        want.minutes,
        "tweets per minute"
    );
}

/// `tweetlambda index` of these topics into `base`/`index` with `group`,
/// and `extra` flags.
fn index_args(
    topics: &TestTopics,
    base: &str,
    index: &str,
    group: &str,
    extra: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = [
        "index",
        "--brokers",
        &brokers(),
        "--tweets-topic",
        &topics.tweets,
        "--dead-letter-topic",
        &topics.dead_letters,
        "--es-url",
        base,
        "--index",
        index,
        "--group",
        group,
        "--metrics-listen",
        "none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

async fn replayed_seed() -> (TestDb, TestTopics) {
    let db = TestDb::new().await;
    db.load_dump(&shared_data("tweet_hashtags_db.sql"));
    let topics = TestTopics::new();
    topics.replay(&db, &[]);
    (db, topics)
}

/// The number after `label` in a summary line such as `index: 8759 documents indexed`.
fn number_before(out: &str, label: &str) -> i64 {
    let at = out
        .find(label)
        .unwrap_or_else(|| panic!("{label:?} in {out}"));
    out[..at]
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a number before {label:?} in {out}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_dump_indexed_matches_mysql_and_indexing_again_changes_nothing() {
    let (db, topics) = replayed_seed().await;
    let want = expected(&db).await;
    assert!(want.tweets > 8000, "{}", want.tweets);
    let base = es_url();
    let index = unique("tweets");
    let args = index_args(&topics, &base, &index, &unique("g"), &["--once"]);
    let out = ok(tweetlambda(&strs(&args)));
    assert_eq!(
        number_before(&out, "documents indexed"),
        want.tweets,
        "{out}"
    );
    assert_matches_mysql(&base, &index, &want).await;

    // The same group again: nothing left to read.
    let out = ok(tweetlambda(&strs(&args)));
    assert_eq!(number_before(&out, "documents indexed"), 0, "{out}");
    // Another group reads everything again: the same documents, overwritten.
    let again = index_args(&topics, &base, &index, &unique("g"), &["--once"]);
    let out = ok(tweetlambda(&strs(&again)));
    assert_eq!(
        number_before(&out, "documents indexed"),
        want.tweets,
        "{out}"
    );
    assert_matches_mysql(&base, &index, &want).await;
}

/// A child process killed when dropped, so that a failing test leaves no
/// indexer or server behind.
struct Running(Option<Child>);

/// An indexer of its own group with small bulk requests (100 documents,
/// one in flight), so that a run over the seed dump takes many requests.
struct SmallBulks {
    process: Running,
    group: String,
}

impl SmallBulks {
    fn child(&mut self) -> &mut Child {
        self.process.child()
    }
}

fn spawn_small_bulks(topics: &TestTopics, base: &str, index: &str, extra: &[&str]) -> SmallBulks {
    let group = unique("g");
    let mut flags = vec![
        "--bulk-docs",
        "100",
        "--max-in-flight",
        "1",
        "--linger",
        "10ms",
    ];
    flags.extend_from_slice(extra);
    let args = index_args(topics, base, index, &group, &flags);
    SmallBulks {
        process: Running(Some(spawn_tweetlambda(&strs(&args)))),
        group,
    }
}

/// Waits until at least 1000 documents are indexed and returns how many;
/// fails if indexing already finished (then a fault injected now would
/// prove nothing).
async fn wait_mid_run(base: &str, index: &str, total: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let n = loop {
        let n = count(base, index).await;
        if n >= 1000 {
            break n;
        }
        assert!(Instant::now() < deadline, "nothing indexed in 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        n < total,
        "indexing finished ({n} documents) before the fault: the test proves nothing"
    );
    n
}

impl Running {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("running")
    }

    fn take(mut self) -> Child {
        self.0.take().expect("running")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn kill9(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_mid_run_and_restarted_the_index_is_the_same() {
    let (db, topics) = replayed_seed().await;
    let want = expected(&db).await;
    let base = es_url();
    let index = unique("tweets");
    let mut child = spawn_small_bulks(&topics, &base, &index, &[]);
    let at_kill = wait_mid_run(&base, &index, want.tweets).await;
    kill9(child.child());
    eprintln!("killed at {at_kill} documents");
    let args = index_args(&topics, &base, &index, &child.group, &["--once"]);
    let out = ok(tweetlambda(&strs(&args)));
    let second = number_before(&out, "documents indexed");
    assert!(
        second < want.tweets,
        "the restart resumed from the committed offsets: {out}"
    );
    assert_matches_mysql(&base, &index, &want).await;
}

/// A noida-db of the test's own (the shared one stays up for the others).
fn start_es(port: u16, data: &std::path::Path) -> Child {
    let bin = std::env::var("TWEETLAMBDA_TEST_ES_SERVER_BIN").unwrap_or_else(|_| {
        format!(
            "{}/.cache/tweetlambda/noida/bin/noida-db",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let child = Command::new(bin)
        .args([
            "start",
            "--only",
            "elasticsearch",
            "--elasticsearch-port",
            &port.to_string(),
            "--data-dir",
        ])
        .arg(data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start noida-db (scripts/services.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "noida-db did not start on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

/// A TCP relay from a port of its own to the server's, which the test can
/// cut (new connections refused, open ones closed) and open again.
///
/// The server-down test cuts the relay before it stops the server, and
/// opens it after the server is back. noida-db 0.2.3 saves its data on
/// SIGTERM while it goes on answering `_bulk` requests, and documents it
/// acknowledges during that save are gone after the restart (the old form
/// of this test, which stopped the server under the indexer's requests,
/// failed one run in two for it). Elasticsearch keeps every
/// acknowledged write in its translog, so the indexer is right to count
/// on it; with the relay cut first, no answer reaches the indexer while
/// the server stops, and what the indexer sees is still a server that goes
/// away mid-request and comes back with its data.
struct Relay {
    port: u16,
    to: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    async fn new(to: u16) -> Relay {
        let mut relay = Relay {
            port: free_port(),
            to,
            task: None,
        };
        relay.open().await;
        relay
    }

    async fn open(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("relay port");
        let to = self.to;
        self.task = Some(tokio::spawn(async move {
            // Dropped with the task when the relay is cut: every
            // connection under way is aborted and its sockets closed.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                while connections.try_join_next().is_some() {}
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                connections.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }));
    }

    async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_stopped_mid_run_and_started_again_loses_nothing() {
    let (db, topics) = replayed_seed().await;
    let want = expected(&db).await;
    let port = free_port();
    let data = scratch_dir("es-data");
    let mut server = Running(Some(start_es(port, &data)));
    let base = format!("http://127.0.0.1:{port}");
    let mut relay = Relay::new(port).await;
    let through_relay = format!("http://127.0.0.1:{}", relay.port);
    let index = unique("tweets");
    let mut indexer = spawn_small_bulks(&topics, &through_relay, &index, &["--max-backoff", "1s"]);
    let at_stop = wait_mid_run(&base, &index, want.tweets).await;
    relay.cut().await;
    eprintln!("server cut off and stopped at {at_stop} documents");
    // A bulk request the server had read when the relay was cut may still
    // be applied, in part, during the stop: its answer is lost, so the
    // indexer sends it again.
    stop(server.child());
    tokio::time::sleep(Duration::from_secs(3)).await;
    server = Running(Some(start_es(port, &data)));
    relay.open().await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(&base, &index).await < want.tweets {
        assert!(
            Instant::now() < deadline,
            "only {} of {} documents two minutes after the restart",
            count(&base, &index).await,
            want.tweets
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_matches_mysql(&base, &index, &want).await;
    stop(indexer.child());
    let out = indexer
        .process
        .take()
        .wait_with_output()
        .expect("indexer output");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        number_before(&summary, "retried") > 0,
        "the indexer retried while the server was down: {summary}"
    );
    stop(server.child());
}

fn producer() -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("producer")
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_the_server_refuses_and_bad_messages_are_dead_lettered() {
    let topics = TestTopics::new();
    let base = es_url();
    let index = unique("tweets");
    // Someone created the index with the right field types, but a date
    // format the indexer's documents do not have: Elasticsearch refuses
    // each document with its reason.
    let mut body = tweetlambda_indexer::mapping::index_body();
    body["mappings"]["properties"]["created_at"] =
        json!({"type": "date", "format": "epoch_millis"});
    let (status, v) = es(reqwest::Method::PUT, &format!("{base}/{index}"), Some(body)).await;
    assert_eq!(status, 200, "{v}");
    create_topics(&[&topics.tweets], 1).await;
    let group = unique("g");
    let p = producer();
    let tweets = [
        r#"{"id":"101","created_at":"2021-08-29T23:51:27Z","text":"a #x","hashtags":["x"]}"#,
        r#"{"id":"102","created_at":"2021-08-29T23:52:27Z","text":"b","hashtags":[]}"#,
        r#"{"id":"103","created_at":"not a time","text":"c"}"#,
        "{broken",
    ];
    for (i, t) in tweets.iter().enumerate() {
        p.send(
            BaseRecord::to(&topics.tweets)
                .key(&i.to_string())
                .payload(*t),
        )
        .expect("queue");
    }
    p.flush(Duration::from_secs(10)).expect("flush");
    let args = index_args(&topics, &base, &index, &group, &["--once"]);
    let out = ok(tweetlambda(&strs(&args)));
    assert!(out.contains("0 documents indexed"), "{out}");
    assert!(
        out.contains("(2 invalid messages, 2 refused by Elasticsearch)"),
        "{out}"
    );
    let letters = read_topic(&topics.dead_letters);
    assert_eq!(letters.len(), 4, "{letters:?}");
    let refused: Vec<&Record> = letters
        .iter()
        .filter(|r| {
            r.value["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("Elasticsearch refused")
        })
        .collect();
    assert_eq!(refused.len(), 2, "{letters:?}");
    for r in &refused {
        let reason = r.value["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("400") && reason.contains("created_at"),
            "ES's reason kept: {reason}"
        );
        assert!(
            r.value["excerpt"]
                .as_str()
                .unwrap_or_default()
                .contains("\"created_at\""),
            "{r:?}"
        );
        assert_eq!(r.value["topic"], topics.tweets.as_str());
    }
    // Dead-lettered input is committed: a second run reads nothing.
    let out = ok(tweetlambda(&strs(&args)));
    assert!(out.contains("0 dead letters"), "{out}");
    assert_eq!(count(&base, &index).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_server_or_a_conflicting_index_is_a_clear_error() {
    let topics = TestTopics::new();
    let port = free_port();
    let down = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let group = unique("g");
    let out = tweetlambda(&strs(&index_args(&topics, &down, "tweets", &group, &[])));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains(&format!(
            "cannot reach Elasticsearch at http://127.0.0.1:{port}/"
        )),
        "{stderr}"
    );

    let base = es_url();
    let index = unique("tweets");
    let mut body = tweetlambda_indexer::mapping::index_body();
    body["mappings"]["properties"]["hashtags"] = json!({"type": "text"});
    let (status, v) = es(reqwest::Method::PUT, &format!("{base}/{index}"), Some(body)).await;
    assert_eq!(status, 200, "{v}");
    let out = tweetlambda(&strs(&index_args(&topics, &base, &index, &group, &[])));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "index `{index}` exists with a mapping that conflicts"
        )) && stderr.contains("`hashtags` is text, the indexer writes keyword"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tweets_with_coordinates_carry_a_location() {
    // The bundled excerpt of the API v1.1 sample holds all of its 20
    // tweets with coordinates.
    let gz = package_dir().join("../data/twitter_api_v1_excerpt.jsonl.gz");
    let dir = scratch_dir("v1");
    let jsonl = dir.join("sample.jsonl");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -dc '{}' > '{}'",
            gz.display(),
            jsonl.display()
        ))
        .status()
        .expect("gzip");
    assert!(status.success());
    let mut with_coordinates: HashMap<String, (f64, f64)> = HashMap::new();
    for line in std::fs::read_to_string(&jsonl).expect("read").lines() {
        let Ok(t) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(c) = t["coordinates"]["coordinates"].as_array() {
            let (lon, lat) = (c[0].as_f64().expect("lon"), c[1].as_f64().expect("lat"));
            with_coordinates.insert(t["id_str"].as_str().expect("id").to_string(), (lat, lon));
        }
    }
    assert!(with_coordinates.len() >= 10, "{}", with_coordinates.len());
    let db = TestDb::new().await;
    ok(tweetlambda(&["migrate", "--mysql-url", &db.url]));
    ok(tweetlambda(&[
        "load",
        "--mysql-url",
        &db.url,
        jsonl.to_str().expect("path"),
    ]));
    let topics = TestTopics::new();
    topics.replay(&db, &[]);
    let base = es_url();
    let index = unique("tweets");
    let group = unique("g");
    ok(tweetlambda(&strs(&index_args(
        &topics,
        &base,
        &index,
        &group,
        &["--once"],
    ))));
    let v = search(
        &base,
        &index,
        json!({"size": 1000, "query": {"exists": {"field": "location"}}}),
    )
    .await;
    let hits = v["hits"]["hits"].as_array().expect("hits");
    let found: HashMap<String, (f64, f64)> = hits
        .iter()
        .map(|h| {
            let s = &h["_source"];
            (
                h["_id"].as_str().expect("id").to_string(),
                (
                    s["location"]["lat"].as_f64().expect("lat"),
                    s["location"]["lon"].as_f64().expect("lon"),
                ),
            )
        })
        .collect();
    assert_eq!(
        found, with_coordinates,
        "GeoJSON is [lon, lat]: the location must not swap them"
    );
}

/// A stand-in Kibana: answers one request with `answer` and hands the
/// request (head and body) back.
fn stand_in_kibana(answer: &'static str) -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("a request");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut request = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            let n = stream.read(&mut buf).expect("read");
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        );
        stream.write_all(response.as_bytes()).expect("answer");
        String::from_utf8_lossy(&request).to_string()
    });
    (url, handle)
}

#[test]
fn kibana_import_posts_the_saved_objects_as_kibana_expects() {
    let (url, server) = stand_in_kibana(r#"{"success":true,"successCount":8,"errors":[]}"#);
    let with_user = url.replace("http://", "http://elastic:s3cret@");
    let out = tweetlambda(&["kibana", "import", "--kibana-url", &with_user]);
    let request = server.join().expect("stand-in");
    let stdout = ok(out);
    assert!(stdout.contains("8 saved objects imported"), "{stdout}");
    assert!(!stdout.contains("s3cret"));
    let (head, body) = request.split_once("\r\n\r\n").expect("head and body");
    let head_lower = head.to_ascii_lowercase();
    assert!(
        head.starts_with("POST /api/saved_objects/_import?overwrite=true HTTP/1.1"),
        "{head}"
    );
    assert!(head_lower.contains("\r\nkbn-xsrf: "), "{head}");
    assert!(
        head_lower.contains("content-type: multipart/form-data; boundary="),
        "{head}"
    );
    // elastic:s3cret, base64.
    assert!(
        head_lower.contains("authorization: basic zwxhc3rpyzpzm2nyzxq="),
        "{head}"
    );
    assert!(
        body.contains(
            "Content-Disposition: form-data; name=\"file\"; filename=\"tweetlambda.ndjson\""
        ),
        "{body}"
    );
    let objects = tweetlambda_indexer::kibana::SAVED_OBJECTS;
    assert!(
        body.contains(objects),
        "the file part is the saved objects, whole"
    );
    assert_eq!(objects.lines().count(), 8);

    let (url, server) = stand_in_kibana(
        r#"{"success":false,"successCount":7,"errors":[{"id":"tweetlambda-map","type":"map","error":{"type":"unsupported_type"}}]}"#,
    );
    let out = tweetlambda(&["kibana", "import", "--kibana-url", &url]);
    server.join().expect("stand-in");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "an object not imported fails the command"
    );
    assert!(stdout.contains("7 saved objects imported"), "{stdout}");
    assert!(
        stdout.contains("not imported: map tweetlambda-map: unsupported_type"),
        "{stdout}"
    );
}

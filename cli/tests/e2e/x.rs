//! `tweetlambda x`: the X API v2 source against a stand-in of the API that
//! serves the recorded responses of `data/twitter_api_v2` (a raw HTTP/1.1
//! server in this file), a real broker, and a real MariaDB for
//! `--mysql-url`.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::helpers::*;

/// The bearer token the tests use; no output may contain it.
const TOKEN: &str = "test-bearer-7Qz9-must-never-be-printed";

/// A request the stand-in received.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    query: HashMap<String, String>,
    authorization: Option<String>,
    body: String,
    at: Instant,
}

/// What the stand-in answers.
enum Reply {
    /// A whole response.
    Body {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// A stream: the pieces in order, then the connection is closed.
    Stream(Vec<Piece>),
}

enum Piece {
    Bytes(Vec<u8>),
    Pause(Duration),
}

fn json_reply(status: u16, body: &[u8]) -> Reply {
    Reply::Body {
        status,
        headers: Vec::new(),
        body: body.to_vec(),
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A stand-in of the X API on 127.0.0.1.
struct StandIn {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl StandIn {
    fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let seen = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (handler, seen) = (handler.clone(), seen.clone());
                std::thread::spawn(move || serve(conn, &*handler, &seen));
            }
        });
        StandIn { url, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("lock").clone()
    }
}

fn serve(mut conn: TcpStream, handler: &Handler, seen: &Mutex<Vec<Request>>) {
    let Some(request) = read_request(&mut conn) else {
        return;
    };
    seen.lock().expect("lock").push(request.clone());
    match handler(&request) {
        Reply::Body {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        }
        Reply::Stream(pieces) => {
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
            );
            for piece in pieces {
                match piece {
                    Piece::Bytes(b) => {
                        if conn.write_all(&b).and_then(|_| conn.flush()).is_err() {
                            return;
                        }
                    }
                    Piece::Pause(d) => std::thread::sleep(d),
                }
            }
        }
    }
    let _ = conn.shutdown(std::net::Shutdown::Both);
}

fn read_request(conn: &mut TcpStream) -> Option<Request> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = conn.read(&mut buf).ok().filter(|n| *n > 0)?;
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let mut headers = HashMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut buf).ok().filter(|n| *n > 0)?;
        body.extend_from_slice(&buf[..n]);
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Request {
        method,
        path: path.to_string(),
        query: url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
        authorization: headers.get("authorization").cloned(),
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    })
}

/// A file of the bundled API v2 sample (`data/twitter_api_v2`), gunzipped.
fn bundled(name: &str) -> Vec<u8> {
    let path = package_dir().join("../data/twitter_api_v2").join(name);
    if name.ends_with(".gz") {
        let out = Command::new("gzip")
            .arg("-dc")
            .arg(&path)
            .output()
            .expect("gzip");
        assert!(out.status.success(), "gzip -dc {}", path.display());
        out.stdout
    } else {
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

/// The five recorded pages of the `blacklivesmatter` chain.
fn chain() -> Vec<Value> {
    (1..=5)
        .map(|i| {
            let bytes = bundled(&format!(
                "search_recent/recent_blacklivesmatter_chain/page-00{i}.json.gz"
            ));
            serde_json::from_slice(&bytes).expect("page JSON")
        })
        .collect()
}

fn page_ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_string())
        .collect()
}

const EMPTY: &[u8] = br#"{"meta":{"result_count":0}}"#;

/// Runs `tweetlambda x ARGS…` against the stand-in with the test token.
fn x(api: &str, state: &Path, args: &[&str]) -> Output {
    x_command(api, state, args)
        .stdin(Stdio::null())
        .output()
        .expect("run tweetlambda x")
}

fn x_command(api: &str, state: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tweetlambda"));
    cmd.arg("x")
        .args(args)
        .args(["--api-base", api])
        .env("TWEETLAMBDA_X_BEARER_TOKEN", TOKEN)
        .env("TWEETLAMBDA_LOG", "info")
        .env_remove("TWEETLAMBDA_CONFIG");
    if args.first() != Some(&"rules") {
        cmd.arg("--state-dir").arg(state);
    }
    cmd
}

/// The source arguments for a set of topics.
fn sink_args(topics: &TestTopics) -> Vec<String> {
    [
        "--brokers",
        &brokers(),
        "--tweets-topic",
        &topics.tweets,
        "--hashtags-topic",
        &topics.hashtags,
        "--dead-letter-topic",
        &topics.dead_letters,
        "--metrics-listen",
        "none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Stdout and stderr, asserting that neither holds the token.
fn outputs(out: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "the token was printed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

fn succeeded(out: &Output) -> String {
    let (stdout, stderr) = outputs(out);
    assert!(
        out.status.success(),
        "tweetlambda x failed: {:?}\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

/// Every tweet once, with the event time and hashtags of its body.
fn assert_published_once(topics: &TestTopics, pages: &[Value]) {
    let tweets = read_topic(&topics.tweets);
    let expected: BTreeSet<String> = pages.iter().flat_map(page_ids).collect();
    let keys: BTreeSet<String> = tweets.iter().map(|r| r.key.clone()).collect();
    assert_eq!(keys, expected, "the tweets of the pages");
    assert_eq!(tweets.len(), expected.len(), "each exactly once");
    let created: HashMap<&str, &str> = pages
        .iter()
        .flat_map(|p| p["data"].as_array().into_iter().flatten())
        .map(|t| {
            (
                t["id"].as_str().unwrap_or(""),
                t["created_at"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for t in &tweets {
        let published =
            chrono::DateTime::parse_from_rfc3339(t.value["created_at"].as_str().expect("time"))
                .expect("RFC 3339");
        let recorded =
            chrono::DateTime::parse_from_rfc3339(created[t.key.as_str()]).expect("RFC 3339");
        assert_eq!(published, recorded, "tweet {}", t.key);
    }
    let hashtags = read_topic(&topics.hashtags);
    let pairs: BTreeSet<(String, String)> = hashtags
        .iter()
        .map(|r| {
            (
                r.value["tweet_id"].as_str().unwrap_or("").to_string(),
                r.key.clone(),
            )
        })
        .collect();
    let announced: usize = tweets
        .iter()
        .map(|t| t.value["hashtags"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(announced > 300, "the chain has hashtags ({announced})");
    assert_eq!(
        hashtags.len(),
        announced,
        "one message per hashtag of each tweet"
    );
    assert_eq!(pairs.len(), announced, "no pair twice");
}

#[tokio::test]
async fn search_reads_the_chain_through_a_429_and_a_503_and_a_second_run_publishes_nothing() {
    let pages = chain();
    let tokens: Vec<String> = pages
        .iter()
        .map(|p| p["meta"]["next_token"].as_str().expect("token").to_string())
        .collect();
    let bodies: Vec<Vec<u8>> = pages.iter().map(|p| p.to_string().into_bytes()).collect();
    let (limited, failed) = (AtomicBool::new(false), AtomicBool::new(false));
    let api = StandIn::start(move |r| {
        if r.path != "/2/tweets/search/recent" {
            return json_reply(404, b"{}");
        }
        if r.query.contains_key("since_id") {
            return json_reply(200, EMPTY);
        }
        let page = match r.query.get("next_token") {
            None => 0,
            Some(t) => tokens.iter().position(|x| x == t).map_or(99, |i| i + 1),
        };
        if page == 1 && !limited.swap(true, Ordering::SeqCst) {
            let reset = chrono::Utc::now().timestamp() + 2;
            return Reply::Body {
                status: 429,
                headers: vec![
                    ("x-rate-limit-remaining".into(), "0".into()),
                    ("x-rate-limit-reset".into(), reset.to_string()),
                ],
                body: br#"{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}"#.to_vec(),
            };
        }
        if page == 2 && !failed.swap(true, Ordering::SeqCst) {
            return json_reply(503, br#"{"title":"Service Unavailable","status":503}"#);
        }
        match bodies.get(page) {
            Some(body) => Reply::Body {
                status: 200,
                headers: vec![
                    ("x-rate-limit-remaining".into(), "440".into()),
                    (
                        "x-rate-limit-reset".into(),
                        (chrono::Utc::now().timestamp() + 900).to_string(),
                    ),
                ],
                body: body.clone(),
            },
            // After the last recorded page: nothing more.
            None => json_reply(200, EMPTY),
        }
    });
    let topics = TestTopics::new();
    let state = scratch_dir("x-state");
    let db = TestDb::new().await;
    let mut args = vec![
        "search",
        "--query",
        "blacklivesmatter",
        "--once",
        "--mysql-url",
        &db.url,
    ];
    let sink = sink_args(&topics);
    args.extend(sink.iter().map(String::as_str));

    let started = Instant::now();
    let stdout = succeeded(&x(&api.url, &state, &args));
    let elapsed = started.elapsed();
    eprintln!("{stdout}");
    for part in [
        "6 pages",
        "500 tweets",
        "4 partial errors",
        "1 waits for rate limits",
        "1 retries",
        "500 tweets stored in MySQL",
    ] {
        assert!(stdout.contains(part), "{part:?} in {stdout}");
    }
    assert!(
        elapsed >= Duration::from_secs(5),
        "the 503 waits 5 s ({elapsed:?})"
    );
    assert_published_once(&topics, &pages);

    let requests = api.requests();
    let first = &requests[0];
    assert_eq!(
        first.authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(first.query["query"], "blacklivesmatter");
    assert_eq!(first.query["max_results"], "100");
    for field in [
        "created_at",
        "lang",
        "public_metrics",
        "entities",
        "referenced_tweets",
        "geo",
        "author_id",
    ] {
        assert!(
            first.query["tweet.fields"].split(',').any(|f| f == field),
            "tweet.fields has {field}"
        );
    }
    for expansion in ["author_id", "referenced_tweets.id", "geo.place_id"] {
        assert!(
            first.query["expansions"].split(',').any(|f| f == expansion),
            "expansions has {expansion}"
        );
    }
    // The 429 said: no request before the reset (2 s ahead, whole seconds).
    let asked = |token: &str| -> Vec<Instant> {
        requests
            .iter()
            .filter(|r| r.query.get("next_token").map(String::as_str) == Some(token))
            .map(|r| r.at)
            .collect()
    };
    let second_page = asked(pages[0]["meta"]["next_token"].as_str().unwrap_or(""));
    assert_eq!(second_page.len(), 2, "page 2 asked again after the 429");
    assert!(second_page[1] - second_page[0] >= Duration::from_secs(1));
    let third_page = asked(pages[1]["meta"]["next_token"].as_str().unwrap_or(""));
    assert_eq!(third_page.len(), 2, "page 3 asked again after the 503");
    assert!(third_page[1] - third_page[0] >= Duration::from_secs(5));

    // The text's HTML escapes are decoded; a retweet's text is the original's.
    let tweets = read_topic(&topics.tweets);
    let escaped: Vec<&Value> = pages
        .iter()
        .flat_map(|p| p["data"].as_array().into_iter().flatten())
        .filter(|t| t["text"].as_str().is_some_and(|s| s.contains("&amp;")))
        .collect();
    assert!(!escaped.is_empty(), "the chain has escaped text");
    for t in &tweets {
        let text = t.value["text"].as_str().unwrap_or("");
        assert!(
            !text.contains("&amp;"),
            "tweet {} kept an escape: {text}",
            t.key
        );
    }
    let retweets = tweets
        .iter()
        .filter(|t| t.value["retweet_of"].is_string())
        .count();
    assert!(retweets > 100, "{retweets} retweets");

    // The database of record holds them too.
    let pool = db.pool().await;
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tweets")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(stored, 500);

    // A second run asks only for what is newer than the newest tweet seen,
    // and publishes nothing.
    let before = api.requests().len();
    let stdout = succeeded(&x(&api.url, &state, &args));
    assert!(
        stdout.contains("resumed and finished") && stdout.contains(" 0 tweets"),
        "{stdout}"
    );
    let again = &api.requests()[before];
    let newest = page_ids(&pages[0])
        .into_iter()
        .max_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
    assert_eq!(again.query.get("since_id"), newest.as_ref());
    assert_eq!(api.requests().len(), before + 1, "one request: nothing new");
    assert_eq!(read_topic(&topics.tweets).len(), 500);
}

/// The state file of the one search in `dir`.
fn state_file(dir: &Path) -> Option<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
}

#[tokio::test]
async fn search_stopped_mid_pass_reads_back_what_it_sent_and_continues_below_its_oldest_tweet() {
    let pages = chain();
    let tokens: Vec<String> = pages
        .iter()
        .map(|p| p["meta"]["next_token"].as_str().expect("token").to_string())
        .collect();
    let oldest_of_page_2 = pages[1]["meta"]["oldest_id"]
        .as_str()
        .expect("oldest")
        .to_string();
    let bodies: Vec<Vec<u8>> = pages.iter().map(|p| p.to_string().into_bytes()).collect();
    let state = scratch_dir("x-state");
    let expected_until = oldest_of_page_2.clone();
    let (state_dir, first_run) = (state.clone(), Arc::new(AtomicBool::new(true)));
    let expired = Arc::new(AtomicBool::new(false));
    let (first, gone) = (first_run.clone(), expired.clone());
    let api = StandIn::start(move |r| {
        if gone.load(Ordering::SeqCst) {
            // A week later: the since_id is out of recent search's window,
            // and nothing newer was tweeted.
            return match r.query.get("since_id") {
                Some(id) => json_reply(
                    400,
                    format!(r#"{{"errors":[{{"parameters":{{"since_id":["{id}"]}},"message":"Invalid 'since_id':'{id}'. 'since_id' must be a tweet id created after 2026-11-16T00:00Z."}}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.twitter.com/2/problems/invalid-request"}}"#).as_bytes(),
                ),
                None => json_reply(200, EMPTY),
            };
        }
        if r.query.contains_key("since_id") {
            return json_reply(200, EMPTY);
        }
        let page = match (r.query.get("next_token"), r.query.get("until_id")) {
            (None, None) => 0,
            // The restart: below the oldest tweet saved, the pass goes on.
            (None, Some(until)) if *until == expected_until => 2,
            (None, Some(_)) => return json_reply(400, br#"{"title":"unexpected until_id"}"#),
            (Some(t), _) => tokens.iter().position(|x| x == t).map_or(99, |i| i + 1),
        };
        if page == 2 && first.load(Ordering::SeqCst) {
            // The first run's checkpoint after page 3 fails (its temporary
            // file cannot be created): page 3 is published, not saved.
            if let Some(file) = state_file(&state_dir) {
                let _ = std::fs::create_dir(file.with_extension("json.tmp"));
            }
        }
        match bodies.get(page) {
            Some(body) => json_reply(200, body),
            None => json_reply(200, EMPTY),
        }
    });
    let topics = TestTopics::new();
    let mut args = vec!["search", "--query", "blacklivesmatter", "--once"];
    let sink = sink_args(&topics);
    args.extend(sink.iter().map(String::as_str));

    let out = x(&api.url, &state, &args);
    assert!(!out.status.success(), "the checkpoint could not be written");
    let (_, stderr) = outputs(&out);
    assert!(stderr.contains("state file"), "{stderr}");
    assert_eq!(
        read_topic(&topics.tweets).len(),
        300,
        "page 3 published, not saved"
    );

    first_run.store(false, Ordering::SeqCst);
    let file = state_file(&state).expect("state file");
    std::fs::remove_dir(file.with_extension("json.tmp")).expect("unblock");
    let before = api.requests().len();
    let stdout = succeeded(&x(&api.url, &state, &args));
    assert!(
        stdout.contains("resumed and finished")
            && stdout.contains("100 already published before a restart"),
        "{stdout}"
    );
    let restart = &api.requests()[before];
    assert_eq!(restart.query.get("until_id"), Some(&oldest_of_page_2));
    assert_eq!(
        restart.query.get("since_id"),
        None,
        "the first pass had not ended"
    );
    assert_published_once(&topics, &pages);

    // The pass ended: the next run starts after its newest tweet.
    let before = api.requests().len();
    succeeded(&x(&api.url, &state, &args));
    assert_eq!(
        api.requests()[before]
            .query
            .get("since_id")
            .map(String::as_str),
        pages[0]["meta"]["newest_id"].as_str()
    );

    // A week later that since_id is refused as too old: the source asks
    // without it (nothing older than a week can be fetched) and goes on.
    expired.store(true, Ordering::SeqCst);
    let before = api.requests().len();
    let stdout = succeeded(&x(&api.url, &state, &args));
    assert!(stdout.contains(" 0 tweets"), "{stdout}");
    let asked: Vec<Option<String>> = api.requests()[before..]
        .iter()
        .map(|r| r.query.get("since_id").cloned())
        .collect();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[0].is_some() && asked[1].is_none(), "{asked:?}");
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).expect("state")).expect("JSON");
    assert!(saved.get("since_id").is_none(), "{saved}");
    assert_eq!(read_topic(&topics.tweets).len(), 500);
}

#[tokio::test]
async fn refused_requests_give_clear_errors_that_never_show_the_token() {
    let unauthorized = bundled("search_recent/errors/all_401_unauthorized/page-001.json");
    let invalid = bundled("search_recent/errors/all_400_start-after-end/page-001.json");
    let api = StandIn::start(move |r| match r.query.get("query").map(String::as_str) {
        Some("bad") => json_reply(400, &invalid),
        _ => json_reply(401, &unauthorized),
    });
    let topics = TestTopics::new();
    let state = scratch_dir("x-state");
    let sink = sink_args(&topics);
    let run = |query: &str, extra: &[&str]| {
        let mut args = vec!["search", "--query", query, "--once"];
        args.extend(sink.iter().map(String::as_str));
        args.extend(extra);
        let out = x(&api.url, &state, &args);
        assert!(!out.status.success(), "refused");
        outputs(&out).1
    };
    let stderr = run("blacklivesmatter", &[]);
    assert!(
        stderr.contains("401")
            && stderr.contains("Unauthorized")
            && stderr.contains("TWEETLAMBDA_X_BEARER_TOKEN"),
        "{stderr}"
    );
    let file = state.join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).expect("token file");
    let stderr = run(
        "blacklivesmatter",
        &["--bearer-token-file", file.to_str().expect("path")],
    );
    assert!(stderr.contains("--bearer-token-file"), "{stderr}");
    let stderr = run("bad", &[]);
    assert!(
        stderr.contains("400") && stderr.contains("'start_time' must be before 'end_time'"),
        "{stderr}"
    );
    assert_eq!(read_topic(&topics.tweets).len(), 0);

    // No token at all: said before any request.
    let before = api.requests().len();
    let mut args = vec!["search", "--query", "q", "--once"];
    args.extend(sink.iter().map(String::as_str));
    let out = x_command(&api.url, &state, &args)
        .env_remove("TWEETLAMBDA_X_BEARER_TOKEN")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no bearer token"));
    assert_eq!(api.requests().len(), before);
}

fn crlf(line: &[u8]) -> Vec<u8> {
    let mut v = line.to_vec();
    v.extend_from_slice(b"\r\n");
    v
}

#[tokio::test]
async fn the_stream_survives_keep_alives_cuts_stalls_broken_lines_and_disconnects() {
    let lines: Vec<Vec<u8>> = bundled("stream/stream.jsonl")
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(lines.len(), 11);
    let raw = bundled("stream/stream_raw_twittered.data");
    let disconnect = bundled("stream/stream_errors.jsonl");
    let disconnect = disconnect.trim_ascii().to_vec();
    let connections = Mutex::new(0usize);
    let api = StandIn::start(move |r| {
        if r.path != "/2/tweets/search/stream" {
            return json_reply(404, b"{}");
        }
        let n = {
            let mut c = connections.lock().expect("lock");
            *c += 1;
            *c
        };
        let bytes = |i: usize| Piece::Bytes(crlf(&lines[i]));
        Reply::Stream(match n {
            // Tweet 1, then the raw capture (tweets 2–4, CRLF, with a
            // keep-alive), then a broken line, then the connection is cut.
            1 => vec![
                bytes(0),
                Piece::Bytes(raw.clone()),
                Piece::Bytes(b"{\"data\":{\"id\":\r\n".to_vec()),
            ],
            // Tweet 4 again, 5–7, and the disconnect message.
            2 => vec![
                bytes(3),
                bytes(4),
                bytes(5),
                bytes(6),
                Piece::Bytes(crlf(&disconnect)),
            ],
            // Tweets 8–9, then silence, the connection held open.
            3 => vec![bytes(7), bytes(8), Piece::Pause(Duration::from_secs(60))],
            // The rest, then keep-alives until the client has enough.
            _ => {
                let mut p = vec![bytes(9), bytes(10)];
                for _ in 0..40 {
                    p.push(Piece::Pause(Duration::from_millis(500)));
                    p.push(Piece::Bytes(b"\r\n".to_vec()));
                }
                p
            }
        })
    });
    let topics = TestTopics::new();
    let state = scratch_dir("x-state");
    let mut args = vec!["stream", "--max-tweets", "11", "--stall-timeout", "2s"];
    let sink = sink_args(&topics);
    args.extend(sink.iter().map(String::as_str));
    let stdout = succeeded(&x(&api.url, &state, &args));
    for part in [
        "11 tweets",
        "1 duplicates skipped",
        "2 dead letters",
        "3 reconnections",
    ] {
        assert!(stdout.contains(part), "{part:?} in {stdout}");
    }
    let tweets = read_topic(&topics.tweets);
    let ids: BTreeSet<&str> = tweets.iter().map(|t| t.key.as_str()).collect();
    assert_eq!((ids.len(), tweets.len()), (11, 11), "each tweet once");
    assert!(ids.contains("1359517868925280258") && ids.contains("1377650529766154240"));
    let letters = read_topic(&topics.dead_letters);
    assert_eq!(letters.len(), 2);
    for l in &letters {
        assert_eq!(l.value["source"], "x-api");
        assert_eq!(l.value["endpoint"], "/2/tweets/search/stream");
    }
    let reasons: Vec<&str> = letters
        .iter()
        .filter_map(|l| l.value["reason"].as_str())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("not JSON")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("operational-disconnect")),
        "{reasons:?}"
    );
    let requests = api.requests();
    assert_eq!(requests.len(), 4);
    // The silent connection was given up after the stall timeout (2 s), not
    // when the server closed it (60 s).
    let given_up = requests[3].at - requests[2].at;
    assert!(given_up < Duration::from_secs(10), "{given_up:?}");
    assert!(requests[0].query["expansions"].contains("referenced_tweets.id"));

    // A restart is sent tweets 10 and 11 again (the stand-in's fifth
    // connection): it skips them, and publishes nothing until stopped.
    let mut args = vec!["stream", "--stall-timeout", "2s"];
    args.extend(sink.iter().map(String::as_str));
    let restart = x_command(&api.url, &state, &args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.requests().len() < 5 {
        assert!(Instant::now() < deadline, "the restart never connected");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let stopped = Command::new("kill")
        .args(["-TERM", &restart.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(stopped.success());
    let out = restart.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "stopped by SIGTERM");
    let (stdout, _) = outputs(&out);
    for part in [
        "interrupted",
        " 0 tweets",
        "2 duplicates skipped",
        "keep-alives",
    ] {
        assert!(stdout.contains(part), "{part:?} in {stdout}");
    }
    assert_eq!(read_topic(&topics.tweets).len(), 11);
}

#[tokio::test]
async fn rules_are_listed_added_and_deleted() {
    let api = StandIn::start(|r| {
        match r.method.as_str() {
        "GET" => json_reply(
            200,
            br##"{"data":[{"id":"1001","value":"#rustlang lang:en","tag":"rust"},{"id":"1002","value":"kafka"}],"meta":{"sent":"2026-11-23T10:00:00.000Z","result_count":2}}"##,
        ),
        _ => {
            let body: Value = serde_json::from_str(&r.body).unwrap_or_default();
            if body.get("add").is_some() {
                json_reply(200, br##"{"data":[{"value":"#polars","tag":"df","id":"1003"}],"meta":{"sent":"2026-11-23T10:00:01.000Z","summary":{"created":1,"not_created":0,"valid":1,"invalid":0}}}"##)
            } else {
                json_reply(200, br#"{"meta":{"sent":"2026-11-23T10:00:02.000Z","summary":{"deleted":1,"not_deleted":1}},"errors":[{"value":"9","details":["Rule does not exist"],"title":"Invalid Request","type":"https://api.twitter.com/2/problems/invalid-request"}]}"#)
            }
        }
    }
    });
    let state = scratch_dir("x-state");
    let list = succeeded(&x(&api.url, &state, &["rules", "list"]));
    assert_eq!(list, "1001\t#rustlang lang:en\trust\n1002\tkafka\t\n");
    let add = succeeded(&x(
        &api.url,
        &state,
        &["rules", "add", "#polars", "--tag", "df"],
    ));
    assert!(add.contains("1003\t#polars\tdf"), "{add}");
    let out = x(&api.url, &state, &["rules", "delete", "1003", "9"]);
    assert!(
        !out.status.success(),
        "a rule not deleted fails the command"
    );
    assert!(outputs(&out).1.contains("Invalid Request"));
    let requests = api.requests();
    let bodies: Vec<Value> = requests
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| serde_json::from_str(&r.body).expect("JSON body"))
        .collect();
    assert_eq!(
        bodies[0],
        serde_json::json!({"add": [{"value": "#polars", "tag": "df"}]})
    );
    assert_eq!(
        bodies[1],
        serde_json::json!({"delete": {"ids": ["1003", "9"]}})
    );
    assert!(requests
        .iter()
        .all(|r| r.path == "/2/tweets/search/stream/rules"));
}

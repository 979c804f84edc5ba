//! Test helpers: a fresh MySQL database per test, unique topic names, the
//! `tweetlambda` binary, and reading topics back. The services are the real
//! MariaDB and Tansu started by `scripts/services.sh --profile test up`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sqlx::Row;

/// The MySQL server, without a database: `TWEETLAMBDA_TEST_MYSQL_URL`.
pub fn mysql_server() -> String {
    std::env::var("TWEETLAMBDA_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://tweetlambda:tweetlambda@127.0.0.1:13306".into())
}

/// The broker: `TWEETLAMBDA_TEST_BROKERS`.
pub fn brokers() -> String {
    std::env::var("TWEETLAMBDA_TEST_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

/// The `cli/` directory of this checkout, read when the test runs (cargo
/// sets it): the test binary may have been built in another checkout
/// sharing the Cargo target directory, so the path compiled in may be gone.
pub fn package_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// A file of the shared tweet data: `TWEETLAMBDA_SHARED_DATA`, else
/// `../shared/data` next to the repository; a file missing there that the
/// repository bundles gzipped (`data/NAME.gz`: the seed dump) is taken from `data/`.
pub fn shared_data(name: &str) -> PathBuf {
    let dir = std::env::var("TWEETLAMBDA_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| package_dir().join("../../shared/data"));
    let bundled = package_dir().join(format!("../data/{name}.gz"));
    match dir.join(name) {
        path if !path.exists() && bundled.exists() => bundled,
        path => path,
    }
}

/// Whether the shared tweet data holds these files (a plain clone bundles
/// only excerpts of the large ones); if not, says that the test is skipped.
pub fn has_shared_data(names: &[&str]) -> bool {
    let dir = std::env::var("TWEETLAMBDA_SHARED_DATA").unwrap_or_else(|_| "../shared/data".into());
    let missing: Vec<&&str> = names.iter().filter(|n| !shared_data(n).exists()).collect();
    for name in &missing {
        eprintln!("skipped: needs {dir}/{name} (set TWEETLAMBDA_SHARED_DATA)");
    }
    missing.is_empty()
}

/// A short unique name.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A new empty directory under the system's temporary directory.
pub fn scratch_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// A new, empty database.
pub struct TestDb {
    /// Its URL.
    pub url: String,
    /// Its name.
    pub name: String,
    /// The server's URL, without a database.
    server: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        TestDb::on(&mysql_server()).await
    }

    /// A new database on the server at `server` (a URL without database).
    pub async fn on(server: &str) -> TestDb {
        let name = unique("tl_test");
        let pool = sqlx::MySqlPool::connect(server)
            .await
            .expect("MySQL test server (scripts/services.sh --profile test up)");
        sqlx::query(&format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            .execute(&pool)
            .await
            .expect("create database");
        TestDb {
            url: format!("{server}/{name}"),
            name,
            server: server.to_string(),
        }
    }

    pub async fn pool(&self) -> sqlx::MySqlPool {
        sqlx::MySqlPool::connect(&self.url)
            .await
            .expect("connect to test database")
    }

    /// Loads a SQL dump the way a user does: `mariadb DB < dump.sql`, or
    /// `gzip -dc dump.sql.gz | mariadb DB`.
    pub fn load_dump(&self, dump: &std::path::Path) {
        let rest = self.server.trim_start_matches("mysql://").to_string();
        let (creds, hostport) = rest.split_once('@').expect("user@host in the test URL");
        let (user, password) = creds.split_once(':').unwrap_or((creds, ""));
        let (host, port) = hostport.split_once(':').unwrap_or((hostport, "3306"));
        let file = std::fs::File::open(dump).expect("dump file");
        let mut gunzip = None;
        let input = if dump.extension().is_some_and(|e| e == "gz") {
            let mut child = Command::new("gzip")
                .arg("-dc")
                .stdin(file)
                .stdout(Stdio::piped())
                .spawn()
                .expect("run gzip");
            let stdout = child.stdout.take().expect("gzip output");
            gunzip = Some(child);
            Stdio::from(stdout)
        } else {
            Stdio::from(file)
        };
        let status = Command::new("mariadb")
            .args(["--protocol=TCP", "-h", host, "-P", port, "-u", user])
            .arg(format!("-p{password}"))
            .arg(&self.name)
            .stdin(input)
            .status()
            .expect("run the mariadb client");
        assert!(
            status.success(),
            "mariadb {} < {}",
            self.name,
            dump.display()
        );
        if let Some(mut gunzip) = gunzip {
            let status = gunzip.wait().expect("wait for gzip");
            assert!(status.success(), "gzip -dc {}", dump.display());
        }
    }
}

/// Runs `tweetlambda ARGS…` and returns its output.
pub fn tweetlambda(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tweetlambda"))
        .args(args)
        .env("TWEETLAMBDA_LOG", "warn")
        .env_remove("TWEETLAMBDA_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run tweetlambda")
}

/// Starts `tweetlambda ARGS…` without waiting. Its log goes to a file in
/// the temporary directory, named on the test's output.
pub fn spawn_tweetlambda(args: &[&str]) -> std::process::Child {
    spawn_tweetlambda_logged(args).0
}

/// [`spawn_tweetlambda`], also returning the path of the log.
pub fn spawn_tweetlambda_logged(args: &[&str]) -> (std::process::Child, PathBuf) {
    let dir = std::env::temp_dir().join("tweetlambda-test-logs");
    std::fs::create_dir_all(&dir).expect("log directory");
    let log = dir.join(format!(
        "{}.log",
        unique(args.first().copied().unwrap_or("run"))
    ));
    eprintln!("tweetlambda {} → log {}", args.join(" "), log.display());
    let child = Command::new(env!("CARGO_BIN_EXE_tweetlambda"))
        .args(args)
        .env("TWEETLAMBDA_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start tweetlambda");
    (child, log)
}

/// Asserts success and returns stdout.
pub fn ok(output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "tweetlambda failed: {:?}\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    stdout
}

/// Topic names unique to one test.
pub struct TestTopics {
    pub tweets: String,
    pub hashtags: String,
    pub dead_letters: String,
}

impl TestTopics {
    pub fn new() -> TestTopics {
        let id = unique("t");
        TestTopics {
            tweets: format!("{id}.tweets"),
            hashtags: format!("{id}.hashtags"),
            dead_letters: format!("{id}.dead"),
        }
    }

    /// Replays a database into these topics (with extra flags); returns
    /// the replay's summary line, asserting success.
    pub fn replay(&self, db: &TestDb, extra: &[&str]) -> String {
        let mut args = self.replay_args(db);
        args.extend(extra.iter().map(|s| s.to_string()));
        ok(tweetlambda(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        ))
    }

    /// The replay arguments for these topics and a database.
    pub fn replay_args(&self, db: &TestDb) -> Vec<String> {
        self.replay_args_at(db, &brokers())
    }

    /// [`TestTopics::replay_args`] for the broker at `brokers`.
    pub fn replay_args_at(&self, db: &TestDb, brokers: &str) -> Vec<String> {
        vec![
            "replay".into(),
            "--mysql-url".into(),
            db.url.clone(),
            "--brokers".into(),
            brokers.into(),
            "--tweets-topic".into(),
            self.tweets.clone(),
            "--hashtags-topic".into(),
            self.hashtags.clone(),
            "--dead-letter-topic".into(),
            self.dead_letters.clone(),
        ]
    }
}

/// A message read back.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub value: serde_json::Value,
}

/// Reads every message of a topic, from the beginning to its current end.
pub fn read_topic(topic: &str) -> Vec<Record> {
    read_topic_at(&brokers(), topic)
}

/// [`read_topic`] from the broker at `brokers`.
pub fn read_topic_at(brokers: &str, topic: &str) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for p in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (_, high) = consumer
            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
            .expect("watermarks");
        if high > 0 {
            ends.insert(p.id(), high);
            assignment
                .add_partition_offset(topic, p.id(), Offset::Beginning)
                .expect("assign");
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return out;
    }
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ends.is_empty() {
        assert!(Instant::now() < deadline, "timed out reading {topic}");
        let Some(m) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let m = m.expect("message");
        let key = m
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default();
        let value = m
            .payload()
            .map(|p| serde_json::from_slice(p).expect("JSON payload"))
            .unwrap_or_default();
        out.push(Record {
            partition: m.partition(),
            offset: m.offset(),
            key,
            value,
        });
        if ends
            .get(&m.partition())
            .is_some_and(|end| m.offset() + 1 >= *end)
        {
            ends.remove(&m.partition());
        }
    }
    out
}

/// Per-bucket aggregates recomputed from the MySQL rows, independently of
/// the layers: distinct tweets per hashtag per minute; per tweet, in the
/// minute of its creation, `retweet_count + favorite_count` where the source
/// has them, else its number of distinct hashtags; plus 1 per distinct
/// retweet of it, in the retweet's minute.
pub struct ExactBuckets {
    /// Bucket start (ms) → hashtag → count.
    pub hashtags: BTreeMap<i64, HashMap<String, i64>>,
    /// Bucket start (ms) → tweet id → score.
    pub tweets: BTreeMap<i64, HashMap<i64, i64>>,
}

/// See [`ExactBuckets`]; one-minute buckets.
pub async fn exact_buckets(db: &TestDb) -> ExactBuckets {
    let pool = db.pool().await;
    let rows = sqlx::query(
        "SELECT m.tweet_id, m.event_time_ms, CAST(h.hashtag AS CHAR CHARACTER SET utf8mb4) FROM tweet_meta m \
         JOIN tweets t ON t.tweet_id = m.tweet_id \
         JOIN tweet_hashtags th ON th.tweet_id = m.tweet_id JOIN hashtags h ON h.hashtag_id = th.hashtag_id \
         WHERE m.event_time_ms IS NOT NULL",
    )
    .fetch_all(&pool)
    .await
    .expect("read rows");
    const MIN: i64 = 60_000;
    let bucket_of = |t: i64| t.div_euclid(MIN) * MIN;
    let mut tag_buckets: BTreeMap<i64, HashMap<String, i64>> = BTreeMap::new();
    let mut tweet_tags: HashMap<i64, HashSet<String>> = HashMap::new();
    for row in rows {
        let id: i64 = row.get(0);
        let t: i64 = row.get(1);
        let tag = tweetlambda_core::normalize_hashtag(&row.get::<String, _>(2)).expect("hashtag");
        if tweet_tags.entry(id).or_default().insert(tag.clone()) {
            *tag_buckets
                .entry(bucket_of(t))
                .or_default()
                .entry(tag)
                .or_default() += 1;
        }
    }
    let tweets_rows = sqlx::query(
        "SELECT m.tweet_id, m.event_time_ms, m.retweet_count, m.favorite_count, m.retweet_of_id FROM tweet_meta m \
         JOIN tweets t ON t.tweet_id = m.tweet_id WHERE m.event_time_ms IS NOT NULL",
    )
    .fetch_all(&pool)
    .await
    .expect("read tweets");
    let mut tweet_buckets: BTreeMap<i64, HashMap<i64, i64>> = BTreeMap::new();
    for row in tweets_rows {
        let (id, t): (i64, i64) = (row.get(0), row.get(1));
        let (rc, fc, rt): (Option<i64>, Option<i64>, Option<i64>) =
            (row.get(2), row.get(3), row.get(4));
        let cap = tweetlambda_core::tweet::MAX_REPORTED_COUNT;
        let base = match (rc, fc) {
            (None, None) => tweet_tags.get(&id).map_or(0, |t| t.len() as i64),
            (r, f) => r.unwrap_or(0).clamp(0, cap) + f.unwrap_or(0).clamp(0, cap),
        };
        *tweet_buckets
            .entry(bucket_of(t))
            .or_default()
            .entry(id)
            .or_default() += base;
        if let Some(original) = rt {
            *tweet_buckets
                .entry(bucket_of(t))
                .or_default()
                .entry(original)
                .or_default() += 1;
        }
    }
    ExactBuckets {
        hashtags: tag_buckets,
        tweets: tweet_buckets,
    }
}

/// An admin client of the test broker.
fn admin() -> rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> {
    admin_at(&brokers())
}

fn admin_at(brokers: &str) -> rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin")
}

/// Creates topics (each with `partitions` partitions).
pub async fn create_topics(names: &[&str], partitions: i32) {
    create_topics_at(&brokers(), names, partitions, &[]).await;
}

/// [`create_topics`] at the broker at `brokers`, with topic configs.
pub async fn create_topics_at(
    brokers: &str,
    names: &[&str],
    partitions: i32,
    configs: &[(&str, &str)],
) {
    use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
    let admin = admin_at(brokers);
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|n| {
            configs.iter().fold(
                NewTopic::new(n, partitions, TopicReplication::Fixed(1)),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    for r in admin
        .create_topics(&topics, &AdminOptions::new())
        .await
        .expect("create topics")
    {
        r.expect("topic created");
    }
}

/// A topic's configuration value `name`, as the broker describes it.
pub async fn topic_config(topic: &str, name: &str) -> Option<String> {
    use rdkafka::admin::{AdminOptions, ResourceSpecifier};
    let described = admin()
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .expect("describe the topic's configuration");
    let resource = described
        .into_iter()
        .next()
        .expect("one resource")
        .expect("the topic's configuration");
    resource.get(name).and_then(|entry| entry.value.clone())
}

/// A free TCP port on 127.0.0.1 (free when asked).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("address").port()
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends SIGTERM and waits for the process to exit.
fn terminate(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// A Tansu broker of the test's own, with SQLite storage in a scratch
/// directory, that the test may stop and start again (the shared one stays
/// up for the other tests). Stopped when dropped.
pub struct PrivateBroker {
    pub port: u16,
    dir: PathBuf,
    child: Option<std::process::Child>,
}

impl PrivateBroker {
    pub fn start() -> PrivateBroker {
        let mut broker = PrivateBroker {
            port: free_port(),
            dir: scratch_dir("tansu"),
            child: None,
        };
        broker.start_again();
        broker
    }

    /// Its bootstrap address.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops it (SIGTERM) and waits until it has exited.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }

    /// Starts it on the same port and storage.
    pub fn start_again(&mut self) {
        let bin = std::env::var("TWEETLAMBDA_TEST_TANSU_BIN").unwrap_or_else(|_| {
            format!(
                "{}/.cache/tweetlambda/tansu/bin/tansu",
                std::env::var("HOME").unwrap_or_default()
            )
        });
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("tansu.log"))
            .expect("broker log");
        let child = Command::new(bin)
            .current_dir(&self.dir)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            // Without maintenance, as scripts/services.sh starts it.
            .args([
                "--storage-engine",
                "sqlite://tansu.db?maintenance_interval=30days",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start Tansu (scripts/services.sh installs it)");
        self.child = Some(child);
        wait_for_port(self.port, "Tansu");
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("broker log kept: {}/tansu.log", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The name of the user running the tests (MariaDB runs as them).
fn user_name() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A MariaDB server of the test's own, in a scratch directory, that the
/// test may stop and start again. Stopped when dropped.
pub struct PrivateMariaDb {
    pub port: u16,
    dir: PathBuf,
    child: Option<std::process::Child>,
}

impl PrivateMariaDb {
    pub fn start() -> PrivateMariaDb {
        let dir = scratch_dir("mariadb");
        let user = user_name();
        let status = Command::new("mariadb-install-db")
            .args(["--no-defaults", &format!("--user={user}")])
            .arg(format!("--datadir={}", dir.join("data").display()))
            .args(["--auth-root-authentication-method=socket", "--skip-test-db"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mariadb-install-db (scripts/services.sh installs it)");
        assert!(status.success(), "mariadb-install-db");
        let mut db = PrivateMariaDb {
            port: free_port(),
            dir,
            child: None,
        };
        db.start_again();
        let status = Command::new("mariadb")
            .args(["--no-defaults", "-uroot"])
            .arg(format!("--socket={}", db.dir.join("sock").display()))
            .args([
                "-e",
                "CREATE USER 'tl'@'127.0.0.1' IDENTIFIED BY 'tl'; \
                 GRANT ALL PRIVILEGES ON *.* TO 'tl'@'127.0.0.1';",
            ])
            .status()
            .expect("mariadb client");
        assert!(status.success(), "create the test user");
        db
    }

    /// Its URL, without a database.
    pub fn server(&self) -> String {
        format!("mysql://tl:tl@127.0.0.1:{}", self.port)
    }

    /// Stops it (SIGTERM: a clean shutdown) and waits until it has exited.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }

    /// Starts it on the same port and data.
    pub fn start_again(&mut self) {
        let user = user_name();
        let child = Command::new("mariadbd")
            .args(["--no-defaults", &format!("--user={user}")])
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .arg(format!("--port={}", self.port))
            .args(["--bind-address=127.0.0.1", "--skip-name-resolve"])
            .args([
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_general_ci",
            ])
            .arg(format!(
                "--log-error={}",
                self.dir.join("error.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        self.child = Some(child);
        wait_for_port(self.port, "MariaDB");
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A child process killed (SIGKILL) when dropped, so that a failing test
/// leaves none behind.
pub struct Reap(pub Option<std::process::Child>);

impl Reap {
    /// The child, no longer killed on drop.
    pub fn take(mut self) -> std::process::Child {
        self.0.take().expect("a child")
    }
}

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Held by the tests that restart a service or kill a layer and wait for a
/// takeover: they run one at a time, so that a machine of two cores does
/// not starve one of them into a timeout (the broker's group coordinator
/// was seen missing a session expiry under that load).
pub static HEAVY: std::sync::LazyLock<tokio::sync::Mutex<()>> =
    std::sync::LazyLock::new(|| tokio::sync::Mutex::new(()));

//! `tweetlambda`: the one command of the pipeline. Parses arguments, sets up
//! logging and configuration, and calls the library of the layer asked for.

mod config;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use tokio::sync::watch;
use tweetlambda_replayer::{generate, kafka::KafkaOptions, load, replay};
use tweetlambda_speed::WindowSpec;

/// Lambda-architecture analytics of tweet streams.
#[derive(Parser, Debug)]
#[command(name = "tweetlambda", version, about)]
struct Cli {
    /// TOML configuration file (see README, "Configuration").
    #[arg(long, global = true, env = "TWEETLAMBDA_CONFIG")]
    config: Option<PathBuf>,
    /// Log filter, e.g. `info`, `debug`, `tweetlambda_replayer=debug`.
    #[arg(long, global = true, env = "TWEETLAMBDA_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Import tweet files (API v1.1 JSONL, API v2 JSON, CSV export) into MySQL.
    Load(LoadArgs),
    /// Stream tweets from MySQL into Kafka in event-time order.
    Replay(ReplayArgs),
    /// Write synthetic tweets into MySQL (for benchmarks).
    Generate(GenerateArgs),
    /// Create the schema of `sql/` in a database (idempotent).
    Migrate(MysqlArgs),
    /// Count the messages of topics and show the first ones.
    Peek(PeekArgs),
    /// Run the speed layer: rolling top hashtags and top tweets.
    Speed(SpeedArgs),
    /// Print the final top-N of each window instance published by the speed layer.
    Finals(FinalsArgs),
    /// Copy the tweets topic into the master dataset (Parquet by event date).
    Archive(ArchiveArgs),
    /// Recompute the batch views from the master dataset and publish them (for cron).
    Batch(BatchArgs),
    /// Serve merged top-N over HTTP (JSON API, dashboard, metrics).
    Serve(serve::ServeArgs),
    /// Ask a running server for top hashtags, top tweets or a series.
    Query(serve::QueryArgs),
}

/// Exit codes of `tweetlambda batch`, for cron wrappers.
mod batch_exit {
    /// Another run holds the lock (EX_TEMPFAIL): try again later.
    pub const LOCKED: u8 = 75;
    /// A file of the master dataset is corrupt or missing (EX_DATAERR).
    pub const CORRUPT: u8 = 65;
}

#[derive(Args, Debug)]
struct BatchArgs {
    /// Root directory of the master dataset.
    #[arg(long, env = "TWEETLAMBDA_MASTER")]
    master: PathBuf,
    /// Root directory of the views (versions and manifest.json).
    #[arg(long, env = "TWEETLAMBDA_VIEWS")]
    views: PathBuf,
    /// Topic whose archive is read.
    #[arg(long, env = "TWEETLAMBDA_TWEETS_TOPIC", default_value = "tweets")]
    tweets_topic: String,
    /// Bucket size (the speed layer's).
    #[arg(long, default_value = "1m", value_parser = tweetlambda_speed::config::parse_duration_ms)]
    bucket: i64,
    /// Lateness the boundary allows for (the speed layer's).
    #[arg(long, default_value = "5s", value_parser = tweetlambda_speed::config::parse_duration_ms)]
    allowed_lateness: i64,
    /// The input is complete (a finished backfill): cover every bucket.
    #[arg(long)]
    complete: bool,
    /// Versions to keep, the current one included.
    #[arg(long, default_value_t = 3)]
    keep: usize,
    /// Publish a new version even if the master dataset did not change.
    #[arg(long)]
    force: bool,
    /// Also print the top N hashtags over all the buckets of the views.
    #[arg(long, default_value_t = 0)]
    show_top: usize,
}

#[derive(Args, Debug)]
struct ArchiveArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Root directory of the master dataset.
    #[arg(long, env = "TWEETLAMBDA_MASTER")]
    master: PathBuf,
    /// Stop at the end of the topic as it is at start.
    #[arg(long)]
    once: bool,
    /// Topic for tweets.
    #[arg(long, env = "TWEETLAMBDA_TWEETS_TOPIC", default_value = "tweets")]
    tweets_topic: String,
    /// Rows of one partition that trigger writing files.
    #[arg(long, default_value_t = 100_000)]
    batch_rows: usize,
    /// Longest time rows wait before they are written.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    batch_interval: Duration,
}

#[derive(Args, Debug)]
struct FinalsArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// The topic to read (`top_hashtags` or `top_tweets`, with the speed layer's prefix).
    #[arg(long, default_value = "top_hashtags")]
    topic: String,
    /// Only this window (e.g. `5m`).
    #[arg(long)]
    window: Option<String>,
    /// Items shown per window instance.
    #[arg(short = 'n', long, default_value_t = 5)]
    limit: usize,
}

#[derive(Args, Debug)]
struct SpeedArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Consumer group shared by all instances.
    #[arg(
        long,
        env = "TWEETLAMBDA_SPEED_GROUP",
        default_value = "tweetlambda-speed"
    )]
    group: String,
    /// Bucket size.
    #[arg(long, default_value = "1m", value_parser = tweetlambda_speed::config::parse_duration_ms)]
    bucket: i64,
    /// Rolling windows, comma-separated.
    #[arg(long, default_value = "1m,5m,15m,1h", value_delimiter = ',', value_parser = WindowSpec::parse)]
    windows: Vec<WindowSpec>,
    /// How far behind the newest event time an event may arrive and still count.
    #[arg(long, default_value = "5s", value_parser = tweetlambda_speed::config::parse_duration_ms)]
    allowed_lateness: i64,
    /// Items per top-N message.
    #[arg(long = "top", default_value_t = 10)]
    top_n: usize,
    /// How often outputs are published and offsets committed.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    emit_interval: Duration,
    /// Input idle this long is taken as ended: every window with data is closed.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    idle_timeout: Duration,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(
        long,
        env = "TWEETLAMBDA_SPEED_METRICS",
        default_value = "127.0.0.1:9464"
    )]
    metrics_listen: String,
    /// Topic for tweets.
    #[arg(long, env = "TWEETLAMBDA_TWEETS_TOPIC", default_value = "tweets")]
    tweets_topic: String,
    /// Topic for hashtags.
    #[arg(long, env = "TWEETLAMBDA_HASHTAGS_TOPIC", default_value = "hashtags")]
    hashtags_topic: String,
    /// Exit once the input is idle and every window is final.
    #[arg(long)]
    exit_when_idle: bool,
    /// Prefix of the speed layer's own topics: PREFIX{top_hashtags,top_tweets,speed.view,speed.retweets,speed.dead-letter}.
    #[arg(long, default_value = "")]
    topic_prefix: String,
}

#[derive(Args, Debug)]
struct PeekArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Topics to read.
    #[arg(required = true)]
    topics: Vec<String>,
    /// Messages to show per partition.
    #[arg(short = 'n', long, default_value_t = 1)]
    limit: usize,
}

#[derive(Args, Debug)]
struct MysqlArgs {
    /// MySQL URL, `mysql://USER:PASSWORD@HOST:PORT/DATABASE`.
    #[arg(long, env = "TWEETLAMBDA_MYSQL_URL")]
    mysql_url: String,
}

#[derive(Args, Debug)]
pub(crate) struct KafkaArgs {
    /// Kafka bootstrap servers, `HOST:PORT[,HOST:PORT…]`.
    #[arg(long, env = "TWEETLAMBDA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// A librdkafka property passed through as is, e.g.
    /// `-X security.protocol=SASL_SSL`; repeatable.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_property)]
    kafka_property: Vec<(String, String)>,
}

impl KafkaArgs {
    fn options(&self, from_file: &[(String, String)]) -> KafkaOptions {
        let mut properties = from_file.to_vec();
        properties.extend(self.kafka_property.iter().cloned());
        KafkaOptions {
            brokers: self.brokers.clone(),
            properties,
        }
    }
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    tweetlambda_core::parse_event_time(s).map_err(|e| e.to_string())
}

#[derive(Args, Debug)]
struct LoadArgs {
    #[command(flatten)]
    mysql: MysqlArgs,
    /// Files to load.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Input format: `auto` (by extension: `.csv` is CSV, else JSON lines), `json` or `csv`.
    #[arg(long, default_value = "auto", value_parser = ["auto", "json", "csv"])]
    format: String,
    /// Tweets per transaction.
    #[arg(long, default_value_t = 2000)]
    batch_size: usize,
}

#[derive(Args, Debug)]
struct ReplayArgs {
    #[command(flatten)]
    mysql: MysqlArgs,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Pacing: `max`, or N times real time (`1x`, `60x`) over the gaps between event times.
    #[arg(long, default_value = "max", value_parser = clap::value_parser!(replay::Speed))]
    speed: replay::Speed,
    /// Replay tweets created at or after this time (any supported format, e.g. RFC 3339).
    #[arg(long, value_parser = parse_time)]
    from: Option<DateTime<Utc>>,
    /// Replay tweets created before this time.
    #[arg(long, value_parser = parse_time)]
    to: Option<DateTime<Utc>>,
    /// Topic for tweets (key: tweet id).
    #[arg(long, env = "TWEETLAMBDA_TWEETS_TOPIC", default_value = "tweets")]
    tweets_topic: String,
    /// Topic for hashtags (key: hashtag).
    #[arg(long, env = "TWEETLAMBDA_HASHTAGS_TOPIC", default_value = "hashtags")]
    hashtags_topic: String,
    /// Topic for rows that cannot be replayed.
    #[arg(
        long,
        env = "TWEETLAMBDA_DEAD_LETTER_TOPIC",
        default_value = "tweets.dead-letter"
    )]
    dead_letter_topic: String,
    /// Partitions of the topics the replay creates.
    #[arg(long, env = "TWEETLAMBDA_PARTITIONS", default_value_t = 3)]
    partitions: i32,
    /// Name of the checkpoint that makes this replay resumable.
    #[arg(long = "checkpoint", default_value = "default")]
    checkpoint_name: String,
    /// Ignore the checkpoint and publish everything again.
    #[arg(long)]
    restart: bool,
    /// How often progress is made durable, e.g. `1s`, `500ms`.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    checkpoint_interval: Duration,
    /// Rows read from MySQL per query.
    #[arg(long, default_value_t = 10_000)]
    fetch_size: u32,
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: use e.g. 500ms, 2s, 1m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?}: use ms, s, m or h")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid duration {s:?}"))
}

#[derive(Args, Debug)]
struct GenerateArgs {
    /// MySQL URL, `mysql://USER:PASSWORD@HOST:PORT/DATABASE`.
    #[arg(
        long,
        env = "TWEETLAMBDA_MYSQL_URL",
        required_unless_present = "master"
    )]
    mysql_url: Option<String>,
    /// Write into this master dataset instead of MySQL (as if archived from
    /// a topic `tweets` of 3 partitions), for batch benchmarks.
    #[arg(long, conflicts_with = "mysql_url")]
    master: Option<PathBuf>,
    /// Number of tweets.
    #[arg(long, default_value_t = 1_000_000)]
    tweets: u64,
    /// Event time of the first tweet.
    #[arg(long, default_value = "2021-08-29T00:00:00Z", value_parser = parse_time)]
    start: DateTime<Utc>,
    /// Average tweets per second of event time.
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// Distinct hashtags.
    #[arg(long, default_value_t = 50_000)]
    vocabulary: u64,
    /// Zipf exponent of hashtag popularity.
    #[arg(long, default_value_t = 1.1)]
    zipf: f64,
    /// Share of tweets that are retweets.
    #[arg(long, default_value_t = 0.3)]
    retweets: f64,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mut kafka_from_file = Vec::new();
    if let Some(path) = config::config_path(&args) {
        match config::read(&path) {
            Ok(settings) => {
                for (var, value) in settings.env {
                    if std::env::var_os(&var).is_none() {
                        // Single-threaded here: no runtime has started yet.
                        std::env::set_var(var, value);
                    }
                }
                kafka_from_file = settings.kafka;
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        }
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, kafka_from_file)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A channel that turns true on Ctrl-C or SIGTERM.
pub(crate) fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                        let _ = tx.send(true);
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested: finishing the current batch and saving progress");
        let _ = tx.send(true);
    });
    rx
}

fn is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

async fn run(command: Command, kafka_from_file: Vec<(String, String)>) -> anyhow::Result<ExitCode> {
    match command {
        Command::Load(a) => {
            let options = load::LoadOptions {
                mysql_url: a.mysql.mysql_url,
                files: a.files,
                format: match a.format.as_str() {
                    "json" => load::Format::Json,
                    "csv" => load::Format::Csv,
                    _ => load::Format::Auto,
                },
                batch_size: a.batch_size.max(1),
                progress: is_terminal(),
            };
            let summary = load::run(&options).await.context("load failed")?;
            println!("load: {summary}");
        }
        Command::Replay(a) => {
            let options = replay::ReplayOptions {
                mysql_url: a.mysql.mysql_url,
                kafka: a.kafka.options(&kafka_from_file),
                topics: replay::Topics {
                    tweets: a.tweets_topic,
                    hashtags: a.hashtags_topic,
                    dead_letters: a.dead_letter_topic,
                },
                partitions: a.partitions.max(1),
                speed: a.speed,
                from: a.from,
                to: a.to,
                checkpoint_name: a.checkpoint_name,
                restart: a.restart,
                checkpoint_interval: a.checkpoint_interval,
                fetch_size: a.fetch_size.max(1),
                progress: is_terminal(),
            };
            let summary = replay::run(&options, shutdown_signal())
                .await
                .context("replay failed")?;
            println!("replay: {summary}");
            if summary.interrupted {
                return Ok(ExitCode::from(130));
            }
        }
        Command::Generate(a) => {
            let shape = generate::Shape {
                tweets: a.tweets,
                start: a.start,
                rate_per_sec: a.rate,
                vocabulary: a.vocabulary,
                zipf_exponent: a.zipf,
                retweet_share: a.retweets.clamp(0.0, 1.0),
                seed: a.seed,
            };
            if let Some(master) = a.master {
                let tweets = generate::Synthetic::new(&shape, 1)?;
                let mut failure = None;
                let events = tweets.map_while(|t| match t {
                    Ok(t) => Some(t.event()),
                    Err(e) => {
                        failure = Some(e);
                        None
                    }
                });
                let s = tweetlambda_batch::archive::write_tweets(
                    &master, "tweets", 3, 1_000_000, events,
                )
                .context("generate failed")?;
                if let Some(e) = failure {
                    return Err(e).context("generate failed");
                }
                println!(
                    "generate: {} tweets written to the master dataset in {} files",
                    s.archived, s.files
                );
            } else {
                let options = generate::GenerateOptions {
                    mysql_url: a.mysql_url.unwrap_or_default(),
                    shape,
                    batch_size: 5000,
                };
                let summary = generate::run(&options).await.context("generate failed")?;
                println!("generate: {summary}");
            }
        }
        Command::Peek(a) => {
            let kafka = a.kafka.options(&kafka_from_file);
            for topic in &a.topics {
                let sample =
                    tweetlambda_replayer::kafka::sample_topic(&kafka, topic, a.limit).await?;
                let total: u64 = sample.counts.values().sum();
                let per: Vec<String> = sample
                    .counts
                    .iter()
                    .map(|(p, n)| format!("p{p}={n}"))
                    .collect();
                println!("{topic}: {total} messages ({})", per.join(" "));
                for (p, key, value) in &sample.first {
                    println!("  p{p} key={key} {value}");
                }
            }
        }
        Command::Speed(a) => {
            let p = &a.topic_prefix;
            let metrics_listen = match a.metrics_listen.as_str() {
                "" | "none" => None,
                addr => Some(
                    addr.parse()
                        .with_context(|| format!("--metrics-listen {addr:?} is not HOST:PORT"))?,
                ),
            };
            let config = tweetlambda_speed::SpeedConfig {
                kafka: a.kafka.options(&kafka_from_file),
                topics: tweetlambda_speed::SpeedTopics {
                    tweets: a.tweets_topic,
                    hashtags: a.hashtags_topic,
                    retweets: format!("{p}speed.retweets"),
                    top_hashtags: format!("{p}top_hashtags"),
                    top_tweets: format!("{p}top_tweets"),
                    view: format!("{p}speed.view"),
                    dead_letters: format!("{p}speed.dead-letter"),
                },
                group_id: a.group,
                bucket_ms: a.bucket,
                windows: a.windows,
                allowed_lateness_ms: a.allowed_lateness,
                top_n: a.top_n,
                emit_interval: a.emit_interval,
                idle_timeout: a.idle_timeout,
                metrics_listen,
                exit_when_idle: a.exit_when_idle,
            };
            let summary = tweetlambda_speed::run(&config, shutdown_signal())
                .await
                .context("speed layer failed")?;
            println!(
                "speed: {} events counted, {} duplicates, {} late, {} dead letters, {} window instances finalised",
                summary.applied, summary.duplicates, summary.late, summary.dead_letters, summary.finals
            );
        }
        Command::Finals(a) => {
            let kafka = a.kafka.options(&kafka_from_file);
            let sample =
                tweetlambda_replayer::kafka::sample_topic(&kafka, &a.topic, usize::MAX).await?;
            for (_, key, value) in &sample.first {
                if a.window.as_ref().is_some_and(|w| w != key) {
                    continue;
                }
                let Ok(v) = serde_json::from_str::<serde_json::Value>(value) else {
                    continue;
                };
                if v["final"] != true {
                    continue;
                }
                let items: Vec<String> = v["items"]
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .take(a.limit)
                            .map(|i| match (i.get("hashtag"), i.get("tweet_id")) {
                                (Some(h), _) => {
                                    format!("#{} {}", h.as_str().unwrap_or_default(), i["count"])
                                }
                                (_, Some(t)) => {
                                    format!("{} ({})", t.as_str().unwrap_or_default(), i["score"])
                                }
                                _ => i.to_string(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                println!(
                    "{:>4} {} .. {}  {}",
                    key,
                    v["start"].as_str().unwrap_or_default(),
                    v["end"].as_str().unwrap_or_default(),
                    items.join(", ")
                );
            }
        }
        Command::Archive(a) => {
            let config = tweetlambda_batch::archive::ArchiveConfig {
                kafka: a.kafka.options(&kafka_from_file),
                topic: a.tweets_topic,
                master: a.master,
                once: a.once,
                batch_rows: a.batch_rows.max(1),
                batch_interval: a.batch_interval,
            };
            let s = tweetlambda_batch::archive::run(&config, shutdown_signal())
                .await
                .context("archive failed")?;
            println!(
                "archive: {} messages archived in {} files, {} skipped, {} leftover files of an interrupted run removed",
                s.archived, s.files, s.skipped, s.removed_leftovers
            );
        }
        Command::Batch(a) => return batch(a).await,
        Command::Serve(a) => return serve::serve(a, &kafka_from_file).await,
        Command::Query(a) => return serve::query(a).await,
        Command::Migrate(a) => {
            let pool = tweetlambda_replayer::mysql::connect(&a.mysql_url, 1).await?;
            tweetlambda_replayer::mysql::migrate(&pool).await?;
            println!("migrate: schema is up to date");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `tweetlambda batch`: one line per outcome, exit codes for cron.
async fn batch(a: BatchArgs) -> anyhow::Result<ExitCode> {
    use tweetlambda_batch::batch::{self, BatchOutcome};
    let (views, show_top) = (a.views.clone(), a.show_top);
    let config = batch::BatchConfig {
        master: a.master,
        views: a.views,
        topic: a.tweets_topic,
        bucket_ms: a.bucket,
        allowed_lateness_ms: a.allowed_lateness,
        complete: a.complete,
        keep_versions: a.keep.max(1),
        force: a.force,
    };
    let outcome = match tokio::task::spawn_blocking(move || batch::run(&config)).await? {
        Ok(outcome) => outcome,
        Err(e @ tweetlambda_batch::Error::Locked(_)) => {
            eprintln!("batch: skipped: {e}");
            return Ok(ExitCode::from(batch_exit::LOCKED));
        }
        Err(e @ tweetlambda_batch::Error::Corrupt(_)) => {
            eprintln!("error: batch failed, the previous version keeps serving: {e}");
            return Ok(ExitCode::from(batch_exit::CORRUPT));
        }
        Err(e) => return Err(e).context("batch failed, the previous version keeps serving"),
    };
    let manifest = match outcome {
        BatchOutcome::Empty => {
            println!("batch: the master dataset has no committed file yet; nothing published");
            return Ok(ExitCode::SUCCESS);
        }
        BatchOutcome::UpToDate(m) => {
            println!(
                "batch: version {} is up to date (boundary {}); nothing published",
                m.version, m.boundary
            );
            m
        }
        BatchOutcome::Published {
            manifest: m,
            pruned,
            seconds,
        } => {
            let rows = |v: &str| m.views.get(v).map_or(0, |f| f.rows);
            println!(
                "batch: published version {} in {seconds:.2} s: boundary {}, {} distinct tweets ({} at or after the boundary left for a later run), hashtag_counts {} rows, tweet_scores {} rows; versions removed: {pruned:?}",
                m.version,
                m.boundary,
                m.input.distinct_tweets,
                m.input.tweets_from_boundary,
                rows("hashtag_counts"),
                rows("tweet_scores"),
            );
            m
        }
    };
    if show_top > 0 {
        if let Some(file) = manifest.views.get("hashtag_counts") {
            let top = tweetlambda_batch::views::top_hashtags(&views.join(&file.path), show_top)?;
            println!(
                "top hashtags of the batch views (buckets before {}):",
                manifest.boundary
            );
            for (i, (tag, count)) in top.iter().enumerate() {
                println!("{:>3}. #{tag} {count}", i + 1);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("1y").is_err());
    }

    #[test]
    fn properties_need_a_key() {
        assert_eq!(parse_property("a.b=c=d"), Ok(("a.b".into(), "c=d".into())));
        assert!(parse_property("=x").is_err());
        assert!(parse_property("novalue").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

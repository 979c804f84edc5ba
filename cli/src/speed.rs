//! `tweetlambda speed`: the speed layer.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tweetlambda_speed::WindowSpec;

use crate::common::{
    parse_duration, parse_duration_ms, parse_positive_ms, shutdown_signal, KafkaArgs,
};

#[derive(Args, Debug)]
pub struct SpeedArgs {
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
    #[arg(long, default_value = "1m", value_parser = parse_positive_ms)]
    bucket: i64,
    /// Rolling windows, comma-separated.
    #[arg(long, default_value = "1m,5m,15m,1h", value_delimiter = ',', value_parser = WindowSpec::parse)]
    windows: Vec<WindowSpec>,
    /// How far behind the newest event time an event may arrive and still count.
    #[arg(long, default_value = "5s", value_parser = parse_duration_ms)]
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
    /// An event time further ahead of the wall clock than this is
    /// dead-lettered and moves no clock.
    #[arg(long, default_value = "1h", value_parser = parse_duration_ms)]
    max_future: i64,
    /// Exit once the input is idle and every window is final.
    #[arg(long)]
    exit_when_idle: bool,
    /// Prefix of the speed layer's own topics: PREFIX{top_hashtags,top_tweets,speed.view,speed.retweets,speed.dead-letter}.
    #[arg(long, default_value = "")]
    topic_prefix: String,
}

pub async fn run(a: SpeedArgs, kafka_from_file: &[(String, String)]) -> anyhow::Result<ExitCode> {
    let p = &a.topic_prefix;
    let metrics_listen = crate::common::metrics_address(&a.metrics_listen)?;
    let config = tweetlambda_speed::SpeedConfig {
        kafka: a.kafka.options(kafka_from_file),
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
        max_future_ms: a.max_future,
    };
    let summary = tweetlambda_speed::run(&config, shutdown_signal())
        .await
        .context("speed layer failed")?;
    println!(
        "speed: {} events counted, {} duplicates, {} late ({} too late for the view), {} dead letters, {} window instances finalised, {} outputs sent again after a failed delivery, {} outputs not delivered",
        summary.applied, summary.duplicates, summary.late, summary.too_late, summary.dead_letters, summary.finals, summary.resent, summary.produce_failures
    );
    Ok(ExitCode::SUCCESS)
}

//! `tweetlambda replay`: tweets from MySQL into Kafka in event-time order.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use tweetlambda_replayer::replay;

use crate::common::{
    is_terminal, parse_duration, parse_time, shutdown_signal, KafkaArgs, MysqlArgs,
};

#[derive(Args, Debug)]
pub struct ReplayArgs {
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

pub async fn run(a: ReplayArgs, kafka_from_file: &[(String, String)]) -> anyhow::Result<ExitCode> {
    let options = replay::ReplayOptions {
        mysql_url: a.mysql.mysql_url,
        kafka: a.kafka.options(kafka_from_file),
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
    Ok(ExitCode::SUCCESS)
}

//! `tweetlambda replay`: tweets from MySQL into Kafka in event-time order.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use tweetlambda_replayer::replay;

use crate::common::{
    is_terminal, parse_duration, parse_time, shutdown_signal, KafkaArgs, MysqlArgs, TopicArgs,
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
    #[command(flatten)]
    topics: TopicArgs,
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
    /// When the broker fails deliveries (a restart), keep resuming from the
    /// checkpoint for this long after the first failure (`0s`: stop at once).
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    retry_for: Duration,
}

pub async fn run(a: ReplayArgs, kafka_from_file: &[(String, String)]) -> anyhow::Result<ExitCode> {
    let options = replay::ReplayOptions {
        mysql_url: a.mysql.mysql_url,
        kafka: a.kafka.options(kafka_from_file),
        topics: a.topics.topics(),
        partitions: a.topics.partitions.max(1),
        speed: a.speed,
        from: a.from,
        to: a.to,
        checkpoint_name: a.checkpoint_name,
        restart: a.restart,
        checkpoint_interval: a.checkpoint_interval,
        fetch_size: a.fetch_size.max(1),
        retry_for: a.retry_for,
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

//! `tweetlambda archive`: the tweets topic into the master dataset, and
//! `tweetlambda compact`: its small files merged.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::common::{parse_duration, parse_duration_ms, shutdown_signal, KafkaArgs};

#[derive(Args, Debug)]
pub struct ArchiveArgs {
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
    /// A tweet further ahead of the wall clock than this is not archived
    /// (the speed layer's `--max-future`).
    #[arg(long, default_value = "1h", value_parser = parse_duration_ms)]
    max_future: i64,
    /// Compaction: this many consecutive commits of a partition smaller
    /// than `--batch-rows` are merged into one (0: never).
    #[arg(long, default_value_t = 10)]
    compact_fanout: usize,
}

#[derive(Args, Debug)]
pub struct CompactArgs {
    /// Root directory of the master dataset.
    #[arg(long, env = "TWEETLAMBDA_MASTER")]
    master: PathBuf,
    /// Topic for tweets.
    #[arg(long, env = "TWEETLAMBDA_TWEETS_TOPIC", default_value = "tweets")]
    tweets_topic: String,
    /// Commits holding fewer rows than this are small (the archive's
    /// `--batch-rows`).
    #[arg(long, default_value_t = 100_000)]
    batch_rows: u64,
    /// Consecutive small commits of a partition merged into one.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..))]
    compact_fanout: u64,
}

pub async fn run(a: ArchiveArgs, kafka_from_file: &[(String, String)]) -> anyhow::Result<ExitCode> {
    let config = tweetlambda_batch::archive::ArchiveConfig {
        kafka: a.kafka.options(kafka_from_file),
        topic: a.tweets_topic,
        master: a.master,
        once: a.once,
        batch_rows: a.batch_rows.max(1),
        batch_interval: a.batch_interval,
        max_future_ms: a.max_future,
        compact_fanout: a.compact_fanout,
    };
    let s = tweetlambda_batch::archive::run(&config, shutdown_signal())
        .await
        .context("archive failed")?;
    println!(
        "archive: {} messages archived in {} files, {} skipped, {} leftover files of an interrupted run removed, {} commits compacted",
        s.archived, s.files, s.skipped, s.removed_leftovers, s.compacted
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn compact(a: CompactArgs) -> anyhow::Result<ExitCode> {
    let config = tweetlambda_batch::compact::CompactConfig {
        fanout: usize::try_from(a.compact_fanout).unwrap_or(usize::MAX),
        small_rows: a.batch_rows,
    };
    let s = tokio::task::spawn_blocking(move || {
        tweetlambda_batch::compact::compact_locked(&a.master, &a.tweets_topic, config)
    })
    .await
    .context("compaction thread failed")?
    .context("compact failed")?;
    println!(
        "compact: {} commits merged into {} ({} rows rewritten), {} files removed, {} merged commits left until no batch reads",
        s.merged, s.written, s.rows_rewritten, s.removed_files, s.removal_deferred
    );
    Ok(ExitCode::SUCCESS)
}

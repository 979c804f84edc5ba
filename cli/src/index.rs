//! `tweetlambda index`: the tweets topic into Elasticsearch.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::common::{parse_duration, parse_duration_ms, shutdown_signal, KafkaArgs};

#[derive(Args, Debug)]
pub struct IndexArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Elasticsearch, `http://[USER:PASSWORD@]HOST:PORT`.
    #[arg(
        long,
        env = "TWEETLAMBDA_ES_URL",
        hide_env_values = true,
        default_value = "http://127.0.0.1:9200"
    )]
    es_url: String,
    /// Index name (created with the tweets mapping if missing).
    #[arg(long, env = "TWEETLAMBDA_ES_INDEX", default_value = "tweets")]
    index: String,
    /// Consumer group shared by all instances.
    #[arg(
        long,
        env = "TWEETLAMBDA_INDEX_GROUP",
        default_value = "tweetlambda-index"
    )]
    group: String,
    /// Stop at the end of the topic as it was at start (backfills).
    #[arg(long)]
    once: bool,
    /// Topic for tweets.
    #[arg(long, env = "TWEETLAMBDA_TWEETS_TOPIC", default_value = "tweets")]
    tweets_topic: String,
    /// Topic for messages and documents that cannot be indexed.
    #[arg(long, default_value = "index.dead-letter")]
    dead_letter_topic: String,
    /// Documents per bulk request, at most.
    #[arg(long, default_value_t = 1000)]
    bulk_docs: usize,
    /// Bytes per bulk request, at most.
    #[arg(long, default_value_t = 5 * 1024 * 1024)]
    bulk_bytes: usize,
    /// Bulk requests under way at once, at most.
    #[arg(long, default_value_t = 2)]
    max_in_flight: usize,
    /// How long a batch that is not full waits for more tweets.
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    linger: Duration,
    /// The longest wait between two tries of a document Elasticsearch did
    /// not store (429, 5xx, unreachable); the wait doubles up to it.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    max_backoff: Duration,
    /// An event time further ahead of the wall clock than this is dead-lettered.
    #[arg(long, default_value = "1h", value_parser = parse_duration_ms)]
    max_future: i64,
    /// Serve Prometheus metrics at http://ADDR/metrics (`none`: off).
    #[arg(
        long,
        env = "TWEETLAMBDA_INDEX_METRICS",
        default_value = "127.0.0.1:9465"
    )]
    metrics_listen: String,
}

pub async fn run(a: IndexArgs, kafka_from_file: &[(String, String)]) -> anyhow::Result<ExitCode> {
    let metrics_listen = crate::common::metrics_address(&a.metrics_listen)?;
    let config = tweetlambda_indexer::IndexConfig {
        kafka: a.kafka.options(kafka_from_file),
        tweets_topic: a.tweets_topic,
        dead_letter_topic: a.dead_letter_topic,
        group_id: a.group,
        es_url: a.es_url,
        index: a.index,
        once: a.once,
        bulk_docs: a.bulk_docs,
        bulk_bytes: a.bulk_bytes,
        max_in_flight: a.max_in_flight,
        linger: a.linger,
        max_backoff: a.max_backoff,
        max_future_ms: a.max_future,
        metrics_listen,
    };
    let summary = tweetlambda_indexer::run(&config, shutdown_signal())
        .await
        .context("indexer failed")?;
    println!(
        "index: {} documents indexed in {} bulk requests, {} retried, {} dead letters ({} invalid messages, {} refused by Elasticsearch)",
        summary.indexed,
        summary.bulks,
        summary.retries,
        summary.invalid + summary.refused,
        summary.invalid,
        summary.refused
    );
    Ok(ExitCode::SUCCESS)
}

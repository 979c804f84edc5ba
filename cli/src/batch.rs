//! `tweetlambda batch`: the batch views recomputed and published (for cron).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::common::{parse_duration_ms, parse_positive_ms};

/// Exit codes of `tweetlambda batch`, for cron wrappers.
mod batch_exit {
    /// Another run holds the lock (EX_TEMPFAIL): try again later.
    pub const LOCKED: u8 = 75;
    /// A file of the master dataset is corrupt or missing (EX_DATAERR).
    pub const CORRUPT: u8 = 65;
}

#[derive(Args, Debug)]
pub struct BatchArgs {
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
    #[arg(long, default_value = "1m", value_parser = parse_positive_ms)]
    bucket: i64,
    /// Lateness the boundary allows for (the speed layer's).
    #[arg(long, default_value = "5s", value_parser = parse_duration_ms)]
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

/// `tweetlambda batch`: one line per outcome, exit codes for cron.
pub async fn run(a: BatchArgs) -> anyhow::Result<ExitCode> {
    use tweetlambda_batch::batch::{self, BatchOutcome};
    let (views, show_top) = (a.views.clone(), a.show_top);
    let (master, topic) = (a.master.clone(), a.tweets_topic.clone());
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
            // Commits of other topics only: most likely a --tweets-topic
            // that is not the archive's.
            let others = tweetlambda_batch::archive::committed_topics(&master).unwrap_or_default();
            if others.is_empty() {
                println!("batch: the master dataset has no committed file yet; nothing published");
            } else {
                let others: Vec<String> = others.into_iter().collect();
                println!(
                    "batch: the master dataset has no committed file of topic '{topic}' (it holds topic(s) {}: see --tweets-topic); nothing published",
                    others.join(", ")
                );
            }
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
                "batch: published version {} in {seconds:.2} s: {} dates computed, {} carried over; boundary {}, {} distinct tweets ({} at or after the boundary left for a later run), hashtag_counts {} rows, tweet_scores {} rows; versions removed: {pruned:?}",
                m.version,
                m.input.dates_computed,
                m.input.dates_carried_over,
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
            let top = tweetlambda_batch::views::top_hashtags(&file.files(&views)?, show_top)?;
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

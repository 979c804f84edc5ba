//! The live source: tweets from the X API v2 into the `tweets` and
//! `hashtags` topics, published exactly as the replay publishes them.
//!
//! - `tweetlambda x search`: recent search, paged through with
//!   `next_token`, then polled with `since_id` ([`search`]).
//! - `tweetlambda x stream`: the filtered stream, and its rules ([`stream`]).
//!
//! # Layout
//!
//! - [`api`]: requests, the fields asked for, the bearer token, and the
//!   sorting of failures.
//! - [`retry`]: the waits X documents for 429, 5xx and network errors.
//! - [`convert`]: response bodies to the product's tweets.
//! - [`sink`]: the topics (and MySQL) the tweets go to, without repeats.
//! - [`state`]: the durable checkpoint that makes restarts exact.
//! - [`search`], [`stream`]: the two loops.

pub mod api;
pub mod convert;
pub mod error;
pub mod retry;
pub mod search;
pub mod sink;
pub mod state;
pub mod stream;

use std::net::SocketAddr;
use std::time::Duration;

use metrics::counter;
use tokio::sync::watch;

use crate::retry::{Backoff, Failure};

pub use api::{Api, Token};
pub use error::{Error, Result};
pub use sink::{Counts, SinkOptions, Topics};

/// What a run of the source did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Search pages, or stream lines with a tweet, read.
    pub pages: u64,
    /// What the sink did.
    pub counts: Counts,
    /// `errors` entries in answers that also had `data` (a referenced tweet
    /// that is deleted or protected, …): logged and counted.
    pub partial_errors: u64,
    /// Keep-alive lines of the stream.
    pub keep_alives: u64,
    /// Waits for a rate limit (a 429, or no requests left in the window).
    pub rate_limit_waits: u64,
    /// Time spent in them.
    pub rate_limit_waited: Duration,
    /// Requests retried after a 5xx or a network error.
    pub retries: u64,
    /// Stream connections opened again.
    pub reconnects: u64,
    /// This run continued from a checkpoint.
    pub resumed: bool,
    /// Stopped by Ctrl-C or SIGTERM.
    pub interrupted: bool,
    /// Wall time.
    pub elapsed: Duration,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.counts;
        write!(
            f,
            "{}: {} pages, {} tweets and {} hashtag messages published, {} duplicates skipped, {} already published before a restart, {} dead letters, {} partial errors; {} waits for rate limits ({:.0} s), {} retries, {} reconnections; {:.1} s",
            if self.interrupted { "interrupted (run again to resume)" } else if self.resumed { "resumed and finished" } else { "finished" },
            self.pages,
            c.tweets,
            c.hashtags,
            c.duplicates,
            c.already_published,
            c.dead_letters,
            self.partial_errors,
            self.rate_limit_waits,
            self.rate_limit_waited.as_secs_f64(),
            self.retries,
            self.reconnects,
            self.elapsed.as_secs_f64()
        )?;
        if self.keep_alives > 0 {
            write!(f, "; {} keep-alives", self.keep_alives)?;
        }
        if c.stored > 0 {
            write!(f, "; {} tweets stored in MySQL", c.stored)?;
        }
        Ok(())
    }
}

/// Serves Prometheus metrics (`x_*`) on `addr`.
pub fn serve_metrics(addr: SocketAddr) -> Result<()> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| Error::Config(format!("cannot serve metrics on {addr}: {e}")))?;
    tracing::info!("metrics on http://{addr}/metrics");
    Ok(())
}

/// Waits `wait`, or until a shutdown is asked for: `false` then.
pub(crate) async fn pause(wait: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return false;
    }
    if wait.is_zero() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = shutdown.changed() => false,
    }
}

/// Logs a failure, counts it and waits as [`Backoff`] says; `false` when a
/// shutdown came during the wait.
pub(crate) async fn wait_after(
    failure: &Failure,
    backoff: &mut Backoff,
    summary: &mut Summary,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let wait = backoff.next_wait(failure, unix_now());
    tracing::warn!("{failure}: retrying in {:.1} s", wait.as_secs_f64());
    match failure {
        Failure::RateLimited { .. } => {
            summary.rate_limit_waits += 1;
            summary.rate_limit_waited += wait;
            counter!("x_rate_limit_waits_total").increment(1);
        }
        _ => {
            summary.retries += 1;
            counter!("x_retries_total").increment(1);
        }
    }
    pause(wait, shutdown).await
}

/// Now, in Unix seconds (the unit of `x-rate-limit-reset`).
pub(crate) fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

//! `tweetlambda x stream`: the filtered stream into Kafka, and its rules.
//!
//! The stream sends one JSON object a line (CRLF), and an empty line as a
//! keep-alive every few seconds. A line with `data` is a tweet; a line with
//! only `errors` is a message from the stream (`operational-disconnect`
//! before the server closes): logged, counted and dead-lettered. A line
//! that is not JSON is dead-lettered and the stream goes on.
//!
//! The connection is opened again when the server closes it, when it
//! breaks, or when nothing (not even a keep-alive) arrived for the stall
//! timeout (30 s); tweets a new connection repeats are skipped by id.
//! Progress is checkpointed every second (the producer flushed first) with
//! the last tweet ids, so that a restart reads back what was sent since,
//! and skips what a new connection sends again.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use metrics::counter;
use serde_json::Value;
use tokio::sync::watch;

use crate::api::{Api, Trouble, STREAM_PATH};
use crate::convert;
use crate::error::Result;
use crate::retry::{Backoff, Failure, Policy};
use crate::sink::{Sink, SinkOptions};
use crate::state::State;
use crate::wait_after;
use crate::Summary;
use tweetlambda_kafka::advance_offsets;

/// Tweet ids kept in the checkpoint for a restart to skip: a new
/// connection re-sends at most the last seconds.
const IDS_KEPT: usize = 1000;

/// A stream line longer than this is dead-lettered (its start) and the
/// connection opened again: no tweet is near it.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// What `x stream` does.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// Stop after this many tweets published.
    pub max_tweets: Option<u64>,
    /// Reconnect when nothing arrived for this long.
    pub stall_timeout: Duration,
    /// How often progress is made durable.
    pub checkpoint_interval: Duration,
    /// Where the checkpoint is kept.
    pub state_dir: PathBuf,
    /// The waits after failures.
    pub policy: Policy,
    /// Where tweets go.
    pub sink: SinkOptions,
}

/// Why reading a connection ended.
enum End {
    /// Reconnect after this failure.
    Failed(Failure),
    /// `--max-tweets` reached, or a shutdown: stop.
    Stop,
}

struct Run<'a> {
    options: &'a StreamOptions,
    sink: Sink,
    state: State,
    summary: Summary,
    last_checkpoint: Instant,
    /// When the end offsets of the topics were last taken into the
    /// checkpoint (and progress logged).
    last_refresh: Instant,
}

/// How often the checkpoint takes the topics' end offsets, and progress is
/// logged.
const REFRESH: Duration = Duration::from_secs(10);

/// Runs the stream until `--max-tweets` or a shutdown.
pub async fn run(
    api: &Api,
    options: &StreamOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Summary> {
    let started = Instant::now();
    let source = format!("stream into {}", options.sink.topics.tweets);
    let (_lock, state, sink) = Sink::start(&options.sink, &options.state_dir, &source).await?;
    let resumed = state.since_id.is_some() || !state.recent_ids.is_empty();
    let mut run = Run {
        options,
        sink,
        state,
        summary: Summary {
            resumed,
            ..Summary::default()
        },
        last_checkpoint: Instant::now(),
        last_refresh: Instant::now(),
    };
    let mut backoff = Backoff::new(options.policy);
    let mut connections = 0u64;
    loop {
        if run.done() {
            break;
        }
        // A server that accepts the connection and never answers is a
        // stalled stream too.
        let opened = tokio::select! {
            opened = tokio::time::timeout(options.stall_timeout, api.stream()) => opened,
            _ = shutdown.changed() => {
                run.summary.interrupted = true;
                break;
            }
        };
        let opened = opened.unwrap_or_else(|_| {
            Err(Trouble::Retry(Failure::Network(format!(
                "no answer to the connection within {} s",
                options.stall_timeout.as_secs_f64()
            ))))
        });
        let response = match opened {
            Ok(r) => r,
            Err(Trouble::Stop(e)) => {
                run.checkpoint().await?;
                return Err(e);
            }
            Err(Trouble::Retry(failure)) => {
                if !wait_after(&failure, &mut backoff, &mut run.summary, &mut shutdown).await {
                    run.summary.interrupted = true;
                    break;
                }
                continue;
            }
        };
        connections += 1;
        if connections > 1 {
            run.summary.reconnects += 1;
            counter!("x_reconnects_total").increment(1);
        }
        tracing::info!("connected to the filtered stream");
        let end = run.read(response, &mut backoff, &mut shutdown).await?;
        run.checkpoint().await?;
        match end {
            End::Stop => break,
            End::Failed(failure) => {
                if !wait_after(&failure, &mut backoff, &mut run.summary, &mut shutdown).await {
                    run.summary.interrupted = true;
                    break;
                }
            }
        }
    }
    run.last_refresh = Instant::now() - REFRESH;
    run.checkpoint().await?;
    let mut summary = run.summary;
    summary.counts = run.sink.counts;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

impl Run<'_> {
    fn done(&self) -> bool {
        let c = &self.sink.counts;
        self.options
            .max_tweets
            .is_some_and(|max| c.tweets + c.already_published >= max)
    }

    async fn checkpoint(&mut self) -> Result<()> {
        let flushed = self.sink.flush().await?;
        advance_offsets(&mut self.state.offsets, flushed);
        if self.last_refresh.elapsed() >= REFRESH {
            // Everything before the topics' end now is this source's
            // (delivered) or another producer's: a restart reads back
            // only from here.
            advance_offsets(&mut self.state.offsets, self.sink.end_offsets().await?);
            self.last_refresh = Instant::now();
            let c = &self.sink.counts;
            tracing::info!(
                tweets = c.tweets,
                duplicates = c.duplicates,
                dead_letters = c.dead_letters,
                keep_alives = self.summary.keep_alives,
                reconnects = self.summary.reconnects,
                "stream progress"
            );
        }
        self.state.recent_ids = self.sink.recent_ids(IDS_KEPT);
        self.state.save(&self.options.state_dir)?;
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    /// Reads one connection until it ends.
    async fn read(
        &mut self,
        mut response: reqwest::Response,
        backoff: &mut Backoff,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<End> {
        let mut buffer: Vec<u8> = Vec::new();
        // Bytes of `buffer` already searched for a line end.
        let mut scanned = 0;
        let stall = self.options.stall_timeout;
        let connected = Instant::now();
        loop {
            let chunk = tokio::select! {
                c = tokio::time::timeout(stall, response.chunk()) => c,
                _ = shutdown.changed() => {
                    self.summary.interrupted = true;
                    return Ok(End::Stop);
                }
            };
            let bytes = match chunk {
                Err(_) => {
                    return Ok(End::Failed(Failure::Network(format!(
                        "nothing arrived for {} s, not even a keep-alive",
                        stall.as_secs_f64()
                    ))))
                }
                Ok(Err(e)) => return Ok(End::Failed(Failure::Network(e.to_string()))),
                Ok(Ok(None)) => {
                    return Ok(End::Failed(Failure::Network(
                        "the server closed the stream".into(),
                    )))
                }
                Ok(Ok(Some(bytes))) => bytes,
            };
            // A connection that stayed up as long as the stall timeout
            // works: failures start over (see also tweets, below).
            if connected.elapsed() >= stall {
                backoff.succeeded();
            }
            buffer.extend_from_slice(&bytes);
            while let Some(at) = buffer[scanned..].iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=scanned + at).collect();
                scanned = 0;
                if self.line(&line).await? {
                    backoff.succeeded();
                }
                if self.done() {
                    return Ok(End::Stop);
                }
            }
            scanned = buffer.len();
            if buffer.len() > MAX_LINE_BYTES {
                let reason = format!("a stream line longer than {MAX_LINE_BYTES} bytes");
                self.sink
                    .dead_letter(STREAM_PATH, None, &reason, &buffer)
                    .await?;
                return Ok(End::Failed(Failure::Network(reason)));
            }
            if self.last_checkpoint.elapsed() >= self.options.checkpoint_interval {
                self.checkpoint().await?;
            }
        }
    }

    /// One line of the stream; `true` when it held a tweet.
    async fn line(&mut self, raw: &[u8]) -> Result<bool> {
        let line = raw.trim_ascii();
        if line.is_empty() {
            self.summary.keep_alives += 1;
            counter!("x_keep_alives_total").increment(1);
            return Ok(false);
        }
        let value = match serde_json::from_slice::<Value>(line) {
            Ok(v) if v.is_object() => v,
            Ok(_) => {
                let reason = "a stream line that is not a JSON object";
                self.sink
                    .dead_letter(STREAM_PATH, None, reason, line)
                    .await?;
                return Ok(false);
            }
            Err(e) => {
                let reason = format!("a stream line that is not JSON: {e}");
                self.sink
                    .dead_letter(STREAM_PATH, None, &reason, line)
                    .await?;
                return Ok(false);
            }
        };
        let errors = convert::errors(&value);
        if value.get("data").is_some() {
            self.summary.pages += 1;
            self.sink.publish(STREAM_PATH, &value).await?;
            for e in errors {
                self.summary.partial_errors += 1;
                counter!("x_partial_errors_total").increment(1);
                tracing::info!("the stream line names an object it does not include: {e}");
            }
            return Ok(true);
        }
        let reason = if errors.is_empty() {
            "a stream line with neither `data` nor `errors`".to_string()
        } else {
            format!("the stream says: {}", errors.join("; "))
        };
        if convert::is_disconnect(&value) {
            tracing::warn!("the stream announces a disconnection; it will be opened again");
        }
        self.sink
            .dead_letter(STREAM_PATH, None, &reason, line)
            .await?;
        Ok(false)
    }
}

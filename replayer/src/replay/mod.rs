//! `tweetlambda replay`: streams tweets from MySQL into Kafka in event-time
//! order.
//!
//! For every tweet, one message on the tweets topic (key: tweet id) and one
//! per distinct hashtag on the hashtags topic (key: hashtag); see
//! [`tweetlambda_core::tweet`] for the message schemas. Rows whose creation
//! time cannot be parsed go to the dead-letter topic with the reason.
//!
//! Delivery: an idempotent producer with `acks=all`; every
//! `checkpoint_interval` the producer is flushed and the position reached is
//! written to the checkpoint (see [`checkpoint`]). A replay started again
//! after Ctrl-C, `kill` or a crash reads back what was published after the
//! checkpoint, skips it, and publishes the rest: every message exactly once.

pub mod checkpoint;
mod options;
pub mod source;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tweetlambda_core::format_rfc3339;

use checkpoint::{Checkpoint, Phase, Position, Settings};
pub use options::{ReplayOptions, Speed, Topics};

use crate::error::{Error, Result};
use tweetlambda_core::messages::DeadLetter;
use tweetlambda_kafka::{self as kafka, Offsets, Producer, TopicSpec};

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReplaySummary {
    /// Tweets whose `date_time` was parsed into `tweet_meta` before the replay.
    pub indexed: u64,
    /// Rows read from MySQL by this run.
    pub rows_read: u64,
    /// Messages sent to the tweets topic.
    pub tweets_sent: u64,
    /// Messages sent to the hashtags topic.
    pub hashtags_sent: u64,
    /// Rows sent to the dead-letter topic.
    pub dead_letters: u64,
    /// Messages not sent again because a stopped run had already published them.
    pub already_published: u64,
    /// This run continued from a checkpoint.
    pub resumed: bool,
    /// The checkpoint said the replay was already complete; nothing was sent.
    pub already_complete: bool,
    /// Stopped by a shutdown request before the end; run again to resume.
    pub interrupted: bool,
    /// Times the replay resumed from its checkpoint after the broker failed
    /// deliveries (the other figures are of the last pass).
    pub recoveries: u32,
    /// Wall time of the run (of its last pass).
    pub elapsed: Duration,
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.already_complete {
            return write!(f, "replay already complete according to its checkpoint; nothing sent (use --restart to publish everything again)");
        }
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        if self.recoveries > 0 {
            write!(
                f,
                "resumed from its checkpoint {} time(s) after failed deliveries; last pass ",
                self.recoveries
            )?;
        }
        write!(
            f,
            "{}: {} rows read, {} tweets and {} hashtag messages sent, {} dead letters, {} already published before a restart; {:.1} s, {:.0} tweets/s",
            if self.interrupted { "interrupted (run again to resume)" } else if self.resumed { "resumed and finished" } else { "finished" },
            self.rows_read,
            self.tweets_sent,
            self.hashtags_sent,
            self.dead_letters,
            self.already_published,
            secs,
            self.rows_read as f64 / secs
        )
    }
}

/// Identity of a published message, to recognise what a stopped run sent
/// (the replay's, and the X source's).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Published {
    /// A tweet, by id.
    Tweet(String),
    /// A hashtag message: tweet id, hashtag.
    Hashtag(String, String),
    /// A dead letter, by key.
    DeadLetter(String),
}

/// Runs a replay until the end of the range or until `shutdown` turns true.
///
/// When the broker fails deliveries (a restart, say), the pass stops without
/// advancing the checkpoint, and the replay resumes from it as a new run
/// would (reading back what was published after it): every message still
/// exactly once. It keeps resuming, a second apart, for
/// [`ReplayOptions::retry_for`] after the first failure of an outage (a
/// pass that saved a checkpoint ends the outage); a broker that cannot be
/// reached at the very start is an error at once. `--restart` applies to
/// the first pass only.
pub async fn run(
    options: &ReplayOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<ReplaySummary> {
    let mut recoveries = 0;
    let mut first_failure: Option<Instant> = None;
    let mut pass = options.clone();
    // Checkpoints saved by the passes (progress made).
    let saves = std::sync::atomic::AtomicU64::new(0);
    loop {
        let saved_before = saves.load(std::sync::atomic::Ordering::Relaxed);
        let error = match run_once(&pass, shutdown.clone(), &saves).await {
            Ok(mut summary) => {
                summary.recoveries = recoveries;
                return Ok(summary);
            }
            Err(e) => e,
        };
        // `--restart` starts the first pass afresh; the passes after a
        // failure resume from the checkpoint it wrote.
        pass.restart = false;
        // A pass that saved a checkpoint made progress: a later outage has
        // its own `retry_for`.
        if saves.load(std::sync::atomic::Ordering::Relaxed) != saved_before {
            first_failure = None;
        }
        let recoverable = match &error {
            Error::Delivery(_) => true,
            // A connection to MySQL lost mid-statement (a server restart):
            // the checkpoint is the old one or the new one, and the next
            // pass reads back what was published after it.
            Error::Mysql { source, .. } => connection_lost(source),
            // Unreachable while it restarts: only once a pass has failed.
            Error::Broker(_) => first_failure.is_some(),
            Error::MysqlConnect { source, .. } => {
                first_failure.is_some() && connection_lost(source)
            }
            _ => false,
        };
        let since = *first_failure.get_or_insert_with(Instant::now);
        if !recoverable || since.elapsed() >= options.retry_for || *shutdown.borrow() {
            return Err(error);
        }
        tracing::warn!(
            "{error}; resuming from the checkpoint in 1 s (for up to {} s after the first failure)",
            options.retry_for.as_secs()
        );
        recoveries += 1;
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// True for driver errors of the connection rather than of the statement
/// (a server going away, no connection to be had in time).
fn connection_lost(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
    )
}

/// One pass of [`run`]: from the checkpoint to the end or the first error.
async fn run_once(
    options: &ReplayOptions,
    shutdown: watch::Receiver<bool>,
    saves: &std::sync::atomic::AtomicU64,
) -> Result<ReplaySummary> {
    let started = Instant::now();
    let pool = crate::mysql::connect(&options.mysql_url, 4).await?;
    crate::mysql::migrate(&pool).await?;
    kafka::check_reachable(&options.kafka, Duration::from_secs(10)).await?;
    let topics = &options.topics;
    let topic_names = [
        topics.tweets.as_str(),
        topics.hashtags.as_str(),
        topics.dead_letters.as_str(),
    ];
    let specs: Vec<TopicSpec> = topic_names
        .iter()
        .map(|t| TopicSpec::new(*t, options.partitions))
        .collect();
    kafka::ensure_topics(&options.kafka, &specs).await?;

    let mut summary = ReplaySummary::default();
    let (indexed, unparseable) = source::index_event_times(&pool).await?;
    summary.indexed = indexed;
    if indexed > 0 {
        tracing::info!(
            indexed,
            unparseable,
            "parsed date_time of tweets without an event time"
        );
    }

    let settings = Settings {
        topics: topics.clone(),
        from: options.from.map(format_rfc3339),
        to: options.to.map(format_rfc3339),
    };
    let existing = if options.restart {
        None
    } else {
        Checkpoint::load(&pool, &options.checkpoint_name).await?
    };
    let mut published: HashSet<Published> = HashSet::new();
    let mut cp = match existing {
        Some(cp) if cp.settings != settings => {
            return Err(Error::Config(cp.settings.mismatch(&cp.name, &settings)))
        }
        Some(cp) if cp.phase == Phase::Done => {
            summary.already_complete = true;
            return Ok(summary);
        }
        Some(cp) => {
            summary.resumed = true;
            published = read_back(&options.kafka, topics, &cp.offsets).await?;
            tracing::info!(
                checkpoint = %cp.name, position = ?cp.position, read_back = published.len(),
                "resuming a stopped replay"
            );
            cp
        }
        None => {
            let cp = Checkpoint {
                name: options.checkpoint_name.clone(),
                settings,
                phase: Phase::DeadLetters,
                position: None,
                offsets: kafka::end_offsets(&options.kafka, &topic_names).await?,
                rows_read: 0,
            };
            cp.save(&pool).await?;
            cp
        }
    };

    let producer = Producer::new(&options.kafka)?;
    let mut run = Run {
        options,
        producer: &producer,
        pool: &pool,
        published,
        summary,
        last_checkpoint: Instant::now(),
        saves,
    };

    if cp.phase == Phase::DeadLetters {
        run.dead_letters().await?;
        cp.phase = Phase::Tweets;
        run.checkpoint(&mut cp).await?;
    }
    let finished = run.tweets(&mut cp, shutdown).await?;
    if finished {
        cp.phase = Phase::Done;
    }
    run.checkpoint(&mut cp).await?;
    let mut summary = run.summary;
    summary.interrupted = !finished;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Reads what was published to the topics after the checkpoint's offsets.
pub async fn read_back(
    kafka: &kafka::KafkaOptions,
    topics: &Topics,
    offsets: &Offsets,
) -> Result<HashSet<Published>> {
    let mut published = HashSet::new();
    for m in kafka::read_tail(kafka, offsets).await? {
        let key = m
            .key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default();
        if m.topic == topics.tweets {
            published.insert(Published::Tweet(key));
        } else if m.topic == topics.hashtags {
            let tweet_id = m
                .payload
                .as_deref()
                .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
                .and_then(|v| {
                    v.get("tweet_id")
                        .and_then(|t| t.as_str())
                        .map(str::to_string)
                })
                .unwrap_or_default();
            published.insert(Published::Hashtag(tweet_id, key));
        } else if m.topic == topics.dead_letters {
            published.insert(Published::DeadLetter(key));
        }
    }
    Ok(published)
}

struct Run<'a> {
    options: &'a ReplayOptions,
    producer: &'a Producer,
    pool: &'a sqlx::MySqlPool,
    published: HashSet<Published>,
    summary: ReplaySummary,
    last_checkpoint: Instant,
    /// Counts the checkpoints saved (see [`run`]).
    saves: &'a std::sync::atomic::AtomicU64,
}

impl Run<'_> {
    /// Sends a message unless a stopped run already published it.
    async fn send(
        &mut self,
        id: Published,
        topic: &str,
        key: &str,
        payload: &[u8],
        ts: i64,
    ) -> Result<bool> {
        if !self.published.is_empty() && self.published.remove(&id) {
            self.summary.already_published += 1;
            return Ok(false);
        }
        self.producer.send(topic, key, payload, ts).await?;
        Ok(true)
    }

    async fn dead_letter(
        &mut self,
        tweet_id: i64,
        reason: &str,
        date_time: Option<&str>,
        text: Option<&str>,
    ) -> Result<()> {
        let key = tweet_id.to_string();
        let row = json!({"date_time": date_time, "text": text}).to_string();
        let letter = DeadLetter::mysql_row("tweets", &key, reason, &row);
        tracing::warn!(tweet_id, reason, "dead-lettered");
        let topic = self.options.topics.dead_letters.clone();
        let now = chrono::Utc::now().timestamp_millis();
        if self
            .send(
                Published::DeadLetter(key.clone()),
                &topic,
                &letter.key(),
                letter.to_json().as_bytes(),
                now,
            )
            .await?
        {
            self.summary.dead_letters += 1;
        }
        Ok(())
    }

    /// Publishes rows whose creation time cannot be parsed.
    async fn dead_letters(&mut self) -> Result<()> {
        let mut after = i64::MIN;
        loop {
            let rows = source::read_unparseable(self.pool, after, 1000).await?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = last.0;
            for (id, date_time, text, reason) in rows {
                self.dead_letter(id, &reason, date_time.as_deref(), text.as_deref())
                    .await?;
            }
        }
    }

    /// Flushes the producer and records the position reached.
    async fn checkpoint(&mut self, cp: &mut Checkpoint) -> Result<()> {
        let offsets = self.producer.flush().await.map_err(|e| match e {
            e @ tweetlambda_kafka::Error::Delivery { .. } => Error::Delivery(e),
            e => Error::Broker(e),
        })?;
        kafka::advance_offsets(&mut cp.offsets, offsets);
        cp.save(self.pool).await?;
        self.saves
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    /// Publishes tweets in event-time order from the checkpoint's position.
    /// Returns false when stopped by `shutdown` before the end.
    async fn tweets(
        &mut self,
        cp: &mut Checkpoint,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<bool> {
        let from_ms = self.options.from.map_or(i64::MIN, |t| t.timestamp_millis());
        let to_ms = self.options.to.map_or(i64::MAX, |t| t.timestamp_millis());
        let start: Position = cp.position.unwrap_or((from_ms, i64::MIN));
        let bar = self.progress_bar(start, to_ms).await?;
        let (tx, mut rx) = mpsc::channel(2);
        let reader = tokio::spawn(read_pages(
            self.pool.clone(),
            start,
            to_ms,
            self.options.fetch_size,
            tx,
        ));
        let mut pace: Option<(tokio::time::Instant, i64)> = None;
        let topics = self.options.topics.clone();
        let mut finished = true;
        'pages: while let Some(page) = rx.recv().await {
            for row in page? {
                if *shutdown.borrow() {
                    finished = false;
                    break 'pages;
                }
                // A resumed run skips what was already published without
                // pacing: the pace starts at the first row it sends.
                let already_published = !self.published.is_empty()
                    && self.published.contains(&match &row.tweet {
                        Ok(tweet) => Published::Tweet(tweet.id.clone()),
                        Err(_) => Published::DeadLetter(row.position.1.to_string()),
                    });
                if let (Speed::Factor(factor), false) = (self.options.speed, already_published) {
                    let (wall0, event0) =
                        *pace.get_or_insert((tokio::time::Instant::now(), row.position.0));
                    // The factor is bounded (options::MIN_FACTOR); a wait is
                    // still capped at a year so no gap overflows the clock.
                    let offset = Duration::try_from_secs_f64(
                        ((row.position.0 - event0).max(0) as f64 / 1000.0) / factor,
                    )
                    .unwrap_or(Duration::MAX);
                    let year = Duration::from_secs(365 * 86_400);
                    let deadline = wall0.checked_add(offset.min(year)).unwrap_or(wall0);
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => {}
                        _ = shutdown.changed() => { finished = false; break 'pages; }
                    }
                }
                match &row.tweet {
                    Ok(tweet) => {
                        let ts = tweet.created_at.timestamp_millis();
                        let payload =
                            serde_json::to_vec(tweet).map_err(|e| Error::Config(e.to_string()))?;
                        if self
                            .send(
                                Published::Tweet(tweet.id.clone()),
                                &topics.tweets,
                                &tweet.id,
                                &payload,
                                ts,
                            )
                            .await?
                        {
                            self.summary.tweets_sent += 1;
                        }
                        for h in tweet.hashtag_events() {
                            let payload =
                                serde_json::to_vec(&h).map_err(|e| Error::Config(e.to_string()))?;
                            let id = Published::Hashtag(h.tweet_id.clone(), h.hashtag.clone());
                            if self
                                .send(id, &topics.hashtags, &h.hashtag, &payload, ts)
                                .await?
                            {
                                self.summary.hashtags_sent += 1;
                            }
                        }
                    }
                    Err(reason) => self.dead_letter(row.position.1, reason, None, None).await?,
                }
                cp.position = Some(row.position);
                cp.rows_read += 1;
                self.summary.rows_read += 1;
                bar.inc(1);
                if self.last_checkpoint.elapsed() >= self.options.checkpoint_interval {
                    self.checkpoint(cp).await?;
                }
            }
        }
        reader.abort();
        bar.finish_and_clear();
        Ok(finished)
    }

    async fn progress_bar(&self, start: Position, to_ms: i64) -> Result<ProgressBar> {
        if !self.options.progress {
            return Ok(ProgressBar::hidden());
        }
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tweet_meta m JOIN tweets t ON t.tweet_id = m.tweet_id \
             WHERE (m.event_time_ms > ? OR (m.event_time_ms = ? AND m.tweet_id > ?)) AND m.event_time_ms < ?",
        )
        .bind(start.0)
        .bind(start.0)
        .bind(start.1)
        .bind(to_ms)
        .fetch_one(self.pool)
        .await
        .map_err(Error::mysql("count tweets to replay"))?;
        let bar = ProgressBar::new(u64::try_from(total).unwrap_or(0));
        if let Ok(style) =
            ProgressStyle::with_template("replay [{bar:30}] {pos}/{len} tweets {per_sec} eta {eta}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Ok(bar)
    }
}

/// Reads pages of tweets ahead of the producer.
async fn read_pages(
    pool: sqlx::MySqlPool,
    mut after: Position,
    to_ms: i64,
    fetch_size: u32,
    tx: mpsc::Sender<Result<Vec<source::SourceRow>>>,
) {
    loop {
        let page = source::read_page_retrying(&pool, after, to_ms, fetch_size).await;
        let done = match &page {
            Ok(rows) => match rows.last() {
                Some(last) => {
                    after = last.position;
                    rows.len() < fetch_size as usize
                }
                None => true,
            },
            Err(_) => true,
        };
        let empty = matches!(&page, Ok(rows) if rows.is_empty());
        if !empty && tx.send(page).await.is_err() {
            return;
        }
        if done {
            return;
        }
    }
}

//! The indexer's loop: consume `tweets`, batch, index, dead-letter, commit.
//!
//! Messages are admitted by core's one rule (the rule the speed layer and
//! the archive apply) and gathered in a [`Batch`] until it holds
//! `bulk_docs` documents or `bulk_bytes` bytes, or `linger` passes. A batch
//! is sent as one `_bulk` request; up to `max_in_flight` are under way at
//! once. Items Elasticsearch answers with 429 or 5xx (or a request that
//! gets no answer) are sent again with exponential backoff, without end:
//! a server lost mid-run is waited for. An item refused for good goes to
//! the dead-letter topic with Elasticsearch's reason.
//!
//! Batches complete in the order they were read, and only then, with their
//! dead letters delivered, are their input offsets committed: a crash
//! re-reads at most the batches under way, and since a document's `_id` is
//! its tweet id, indexing them again changes nothing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesOrdered, StreamExt};
use metrics::{counter, gauge, histogram};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::watch;
use tweetlambda_core::admit::{admit_tweet, check_not_future};
use tweetlambda_core::messages::DeadLetter;
use tweetlambda_kafka::{self as kafka, KafkaOptions, Producer, TopicSpec};

use crate::bulk::{self, Batch, Item, Outcome};
use crate::document::TweetDocument;
use crate::error::{Error, Result};
use crate::es::{Es, SendError};

/// The indexer's settings.
#[derive(Debug, Clone)]
pub struct IndexConfig {
    /// The broker.
    pub kafka: KafkaOptions,
    /// Input topic.
    pub tweets_topic: String,
    /// Where refused messages and documents go.
    pub dead_letter_topic: String,
    /// Consumer group.
    pub group_id: String,
    /// Elasticsearch, `http://[USER:PASSWORD@]HOST:PORT`.
    pub es_url: String,
    /// Index name.
    pub index: String,
    /// Stop at the end of the input as it was at start.
    pub once: bool,
    /// Documents per bulk request, at most.
    pub bulk_docs: usize,
    /// Bytes per bulk request, at most (a larger single document goes alone).
    pub bulk_bytes: usize,
    /// Bulk requests under way at once, at most.
    pub max_in_flight: usize,
    /// How long a batch that is not full waits for more input.
    pub linger: Duration,
    /// The longest wait between two tries of a bulk item.
    pub max_backoff: Duration,
    /// An event time further ahead of the wall clock is dead-lettered.
    pub max_future_ms: i64,
    /// Serve Prometheus metrics here.
    pub metrics_listen: Option<SocketAddr>,
}

impl IndexConfig {
    /// Checks the bounds.
    pub fn validate(&self) -> Result<()> {
        let bad = |s: &str| Err(Error::Config(s.to_string()));
        if self.bulk_docs == 0 {
            return bad("--bulk-docs must be at least 1");
        }
        if self.bulk_bytes < 1024 {
            return bad("--bulk-bytes must be at least 1 KiB");
        }
        if self.max_in_flight == 0 {
            return bad("--max-in-flight must be at least 1");
        }
        if self.max_backoff < Duration::from_millis(100) {
            return bad("--max-backoff must be at least 100ms");
        }
        if self.index.is_empty() || self.index != self.index.to_lowercase() {
            return bad("--index must be a lowercase Elasticsearch index name");
        }
        Ok(())
    }
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IndexSummary {
    /// Documents Elasticsearch stored (a tweet read twice counts twice).
    pub indexed: u64,
    /// Messages the admission rule refused, dead-lettered.
    pub invalid: u64,
    /// Documents Elasticsearch refused, dead-lettered.
    pub refused: u64,
    /// Items sent again after a 429, a 5xx or no answer.
    pub retries: u64,
    /// Bulk requests sent (retries included).
    pub bulks: u64,
}

/// Consumer lag per partition, from librdkafka's statistics.
struct IndexContext {
    topic: String,
}

impl ClientContext for IndexContext {
    fn stats(&self, statistics: Statistics) {
        let Some(t) = statistics.topics.get(&self.topic) else {
            return;
        };
        for (id, p) in &t.partitions {
            if *id >= 0 && p.consumer_lag >= 0 {
                gauge!("index_consumer_lag", "partition" => id.to_string())
                    .set(p.consumer_lag as f64);
            }
        }
    }
}

impl ConsumerContext for IndexContext {}

type IndexConsumer = StreamConsumer<IndexContext>;

/// One batch, indexed: what to do before its offsets may be committed.
struct Done {
    next_offsets: HashMap<i32, i64>,
    dead_letters: Vec<DeadLetter>,
    indexed: u64,
    invalid: u64,
    refused: u64,
    retries: u64,
    requests: u64,
}

/// Runs the indexer until `shutdown` turns true (or, with `once`, until
/// the input as it was at start is indexed).
pub async fn run(
    config: &IndexConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<IndexSummary> {
    config.validate()?;
    let es = Arc::new(Es::new(&config.es_url)?);
    es.check_reachable().await?;
    kafka::check_reachable(&config.kafka, Duration::from_secs(10)).await?;
    if es.ensure_index(&config.index).await? {
        tracing::info!(index = %config.index, "index created with the tweets mapping");
    }
    kafka::ensure_topics(
        &config.kafka,
        &[
            TopicSpec::new(&config.tweets_topic, 3),
            TopicSpec::new(&config.dead_letter_topic, 1),
        ],
    )
    .await?;
    if let Some(addr) = config.metrics_listen {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .map_err(|e| Error::Config(format!("cannot serve metrics on {addr}: {e}")))?;
        tracing::info!("metrics on http://{addr}/metrics");
    }
    let consumer = consumer(config)?;
    // With --once: the end of every partition now, and where the group is.
    let mut remaining = if config.once {
        let ends = kafka::end_offsets(&config.kafka, &[&config.tweets_topic]).await?;
        let ends: HashMap<i32, i64> = ends
            .iter()
            .filter_map(|(key, end)| match kafka::split_key(key) {
                Some((t, p)) if t == config.tweets_topic => Some((p, *end)),
                _ => None,
            })
            .collect();
        Some(assign_from_committed(config, &consumer, ends).await?)
    } else {
        consumer
            .subscribe(&[&config.tweets_topic])
            .map_err(|e| Error::Consumer(format!("subscribe: {e}")))?;
        None
    };
    let producer = Producer::new(&config.kafka)?;

    let mut summary = IndexSummary::default();
    let mut batch = Batch::default();
    let mut in_flight = FuturesOrdered::new();
    let mut committed: HashMap<i32, i64> = HashMap::new();
    let mut linger_until = Instant::now() + config.linger;
    loop {
        if *shutdown.borrow() {
            tracing::info!(
                "shutdown: {} bulk requests under way are left uncommitted (indexed again at the next start)",
                in_flight.len()
            );
            break;
        }
        let input_done = remaining.as_ref().is_some_and(HashMap::is_empty);
        if input_done && batch.is_empty() && in_flight.is_empty() {
            break;
        }
        if !batch.is_empty()
            && (input_done || Instant::now() >= linger_until)
            && in_flight.len() < config.max_in_flight
        {
            in_flight.push_back(dispatch(config, &es, std::mem::take(&mut batch), &shutdown));
            continue;
        }
        let can_read = !input_done && in_flight.len() < config.max_in_flight;
        let wait = linger_until.saturating_duration_since(Instant::now());
        tokio::select! {
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                let done = done?;
                finish(config, &consumer, &producer, done, &mut committed, &mut summary).await?;
            }
            message = consumer.recv(), if can_read => {
                let m = match message {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!("consumer error: {e}");
                        continue;
                    }
                };
                let read = read(config, &m);
                // A document that would take the batch past a bound opens
                // the next one (there is room in flight: `can_read`).
                if let Read::Document(item) = &read {
                    if batch.is_full(config.bulk_docs, config.bulk_bytes, item.lines.len()) {
                        in_flight.push_back(dispatch(config, &es, std::mem::take(&mut batch), &shutdown));
                    }
                }
                if batch.is_empty() {
                    linger_until = Instant::now() + config.linger;
                }
                match read {
                    Read::Document(item) => batch.push(item),
                    Read::Refused(letter) => batch.refuse(m.partition(), m.offset(), letter),
                }
                if let Some(left) = remaining.as_mut() {
                    let reached = left.get(&m.partition()).is_some_and(|end| m.offset() + 1 >= *end);
                    if reached {
                        left.remove(&m.partition());
                    }
                }
                if batch.items.len() >= config.bulk_docs {
                    linger_until = Instant::now();
                }
            }
            // Only with room in flight: a full pipeline waits on its requests.
            _ = tokio::time::sleep(wait), if !batch.is_empty() && in_flight.len() < config.max_in_flight => {}
            _ = shutdown.changed() => {}
        }
    }
    // The last commit is synchronous: the next start resumes after it.
    commit(config, &consumer, &committed, CommitMode::Sync);
    Ok(summary)
}

fn consumer(config: &IndexConfig) -> Result<IndexConsumer> {
    let mut client = config.kafka.client_config();
    client
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", "1000");
    config.kafka.apply_properties(&mut client);
    client
        .create_with_context(IndexContext {
            topic: config.tweets_topic.clone(),
        })
        .map_err(|e| Error::Consumer(format!("create the consumer: {e}")))
}

/// Assigns every partition at the group's committed offset (the beginning
/// where there is none); returns the partitions that still have input
/// before `ends`.
async fn assign_from_committed(
    config: &IndexConfig,
    consumer: &IndexConsumer,
    ends: HashMap<i32, i64>,
) -> Result<HashMap<i32, i64>> {
    let mut tpl = TopicPartitionList::new();
    for p in ends.keys() {
        tpl.add_partition(&config.tweets_topic, *p);
    }
    let committed = tokio::task::block_in_place(|| {
        consumer.committed_offsets(tpl.clone(), Duration::from_secs(10))
    })
    .map_err(|e| Error::Consumer(format!("read the committed offsets: {e}")))?;
    let mut start = TopicPartitionList::new();
    let mut remaining = HashMap::new();
    for e in committed.elements() {
        // Offsets before the partition's first (deleted by retention) will
        // never arrive: reading starts at the first one there is.
        let (low, _) = tokio::task::block_in_place(|| {
            consumer.fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(10))
        })
        .map_err(|err| Error::Consumer(format!("offsets of partition {}: {err}", e.partition())))?;
        let from = match e.offset() {
            Offset::Offset(o) => o.max(low),
            _ => low,
        };
        let offset = if from > 0 {
            Offset::Offset(from)
        } else {
            Offset::Beginning
        };
        start
            .add_partition_offset(e.topic(), e.partition(), offset)
            .map_err(|err| Error::Consumer(err.to_string()))?;
        if let Some(end) = ends.get(&e.partition()) {
            if from < *end {
                remaining.insert(e.partition(), *end);
            }
        }
    }
    consumer
        .assign(&start)
        .map_err(|e| Error::Consumer(format!("assign: {e}")))?;
    Ok(remaining)
}

/// One message, read: a document to index, or a dead letter.
enum Read {
    Document(Item),
    Refused(DeadLetter),
}

/// Admits one message by core's rule.
fn read(config: &IndexConfig, m: &BorrowedMessage<'_>) -> Read {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let admitted = admit_tweet(m.payload()).and_then(|t| {
        check_not_future(
            t.created_at.timestamp_millis(),
            now_ms,
            config.max_future_ms,
        )?;
        Ok(t)
    });
    match admitted {
        Ok(tweet) => Read::Document(Item::new(
            &TweetDocument::of(&tweet),
            m.partition(),
            m.offset(),
        )),
        Err(reason) => {
            tracing::warn!(
                partition = m.partition(),
                offset = m.offset(),
                "dead-lettered: {reason}"
            );
            Read::Refused(DeadLetter::kafka(
                m.topic(),
                m.partition(),
                m.offset(),
                reason.to_string(),
                m.key(),
                m.payload(),
            ))
        }
    }
}

/// Indexes one batch: sends its items until each is stored or refused.
fn dispatch(
    config: &IndexConfig,
    es: &Arc<Es>,
    batch: Batch,
    shutdown: &watch::Receiver<bool>,
) -> impl std::future::Future<Output = Result<Done>> {
    let es = es.clone();
    let index = config.index.clone();
    let topic = config.tweets_topic.clone();
    let max_backoff = config.max_backoff;
    let mut shutdown = shutdown.clone();
    async move {
        let Batch {
            items,
            mut dead_letters,
            next_offsets,
            ..
        } = batch;
        let mut done = Done {
            next_offsets,
            invalid: dead_letters.len() as u64,
            dead_letters: Vec::new(),
            indexed: 0,
            refused: 0,
            retries: 0,
            requests: 0,
        };
        let mut pending = items;
        let mut backoff = Duration::from_millis(200);
        while !pending.is_empty() {
            let started = Instant::now();
            done.requests += 1;
            let answer = es.bulk(&index, bulk::body(&pending)).await;
            histogram!("index_bulk_seconds").record(started.elapsed().as_secs_f64());
            let retry = match answer {
                Ok(answer) => match bulk::outcomes(&answer, pending.len()) {
                    Ok(outcomes) => {
                        let mut again = Vec::new();
                        let mut first_reason = None;
                        for (item, outcome) in pending.into_iter().zip(outcomes) {
                            match outcome {
                                Outcome::Indexed => done.indexed += 1,
                                Outcome::Retry(why) => {
                                    first_reason.get_or_insert(why);
                                    again.push(item);
                                }
                                Outcome::Refused(why) => {
                                    done.refused += 1;
                                    tracing::warn!(id = %item.id, "Elasticsearch refused the document: {why}");
                                    dead_letters.push(DeadLetter::kafka(
                                        &topic,
                                        item.partition,
                                        item.offset,
                                        format!("Elasticsearch refused the document: {why}"),
                                        Some(item.id.as_bytes()),
                                        Some(item.source()),
                                    ));
                                }
                            }
                        }
                        pending = again;
                        first_reason
                    }
                    Err(why) => Some(why),
                },
                Err(SendError::Retry(why)) => Some(why),
                Err(SendError::Fatal(e)) => return Err(e),
            };
            if let Some(why) = retry {
                done.retries += pending.len() as u64;
                counter!("index_retries_total").increment(pending.len() as u64);
                tracing::warn!(
                    items = pending.len(),
                    wait_ms = backoff.as_millis() as u64,
                    "bulk items not stored, sending again: {why}"
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                if *shutdown.borrow() {
                    // Not committed: indexed again at the next start.
                    return Ok(Done {
                        next_offsets: HashMap::new(),
                        dead_letters: Vec::new(),
                        ..done
                    });
                }
                backoff = (backoff * 2).min(max_backoff);
            }
        }
        done.dead_letters = dead_letters;
        Ok(done)
    }
}

/// A batch is indexed: its dead letters are delivered, then its offsets
/// committed.
async fn finish(
    config: &IndexConfig,
    consumer: &IndexConsumer,
    producer: &Producer,
    done: Done,
    committed: &mut HashMap<i32, i64>,
    summary: &mut IndexSummary,
) -> Result<()> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    for letter in &done.dead_letters {
        producer
            .send(
                &config.dead_letter_topic,
                &letter.key(),
                letter.to_json().as_bytes(),
                now_ms,
            )
            .await?;
    }
    if !done.dead_letters.is_empty() {
        producer.flush().await?;
    }
    summary.indexed += done.indexed;
    summary.invalid += done.invalid;
    summary.refused += done.refused;
    summary.retries += done.retries;
    summary.bulks += done.requests;
    counter!("index_documents_total").increment(done.indexed);
    counter!("index_dead_letters_total", "reason" => "invalid").increment(done.invalid);
    counter!("index_dead_letters_total", "reason" => "refused").increment(done.refused);
    if done.next_offsets.is_empty() {
        return Ok(());
    }
    for (p, next) in done.next_offsets {
        let slot = committed.entry(p).or_insert(next);
        *slot = (*slot).max(next);
    }
    if !config.once {
        // After a rebalance, partitions another instance now owns are not
        // committed from here (that could move its offsets back).
        if let Ok(assigned) = consumer.assignment() {
            let mine: std::collections::HashSet<i32> =
                assigned.elements().iter().map(|e| e.partition()).collect();
            committed.retain(|p, _| mine.contains(p));
        }
    }
    commit(config, consumer, committed, CommitMode::Async);
    Ok(())
}

fn commit(
    config: &IndexConfig,
    consumer: &IndexConsumer,
    committed: &HashMap<i32, i64>,
    mode: CommitMode,
) {
    if committed.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for (p, next) in committed {
        if let Err(e) = tpl.add_partition_offset(&config.tweets_topic, *p, Offset::Offset(*next)) {
            tracing::warn!("cannot record offset {p}: {e}");
        }
    }
    let result = match mode {
        CommitMode::Sync => tokio::task::block_in_place(|| consumer.commit(&tpl, mode)),
        CommitMode::Async => consumer.commit(&tpl, mode),
    };
    if let Err(e) = result {
        tracing::warn!("offset commit failed (retried with the next batch): {e}");
    }
}

//! The Kafka side of the speed layer: consume, apply, tick, produce, commit.
//!
//! Loop: messages from `tweets`, `hashtags` and the internal retweets topic
//! are decoded and applied to the [`Engine`]; every `emit_interval` the
//! engine's outputs are produced, the producer is flushed (acks=all,
//! idempotent), and only then are the input offsets committed.
//!
//! State: on every partition assignment (start, restart, rebalance) the
//! engine is emptied and the assigned partitions are read again from their
//! beginning, so the state is rebuilt from Kafka exactly; outputs are keyed
//! (window name, view key) and carry the same values when recomputed, so
//! re-publishing them is harmless. Partitions are assigned with the range
//! assignor, so partition *i* of `tweets` and of the retweets topic (which
//! has as many partitions) belong to the same instance: each instance owns
//! disjoint tweets and disjoint hashtags.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics::{counter, gauge, histogram, Counter, Histogram};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset};
use tokio::sync::watch;
use tweetlambda_kafka::{self as kafka, Producer, TopicSpec};

use crate::config::SpeedConfig;
use tweetlambda_core::admit::{admit_hashtag, admit_tweet, check_not_future};
use tweetlambda_core::messages::{
    excerpt, DeadLetter, Marker, RetweetEvent, RetweetsMessage, EXCERPT_BYTES,
};

use crate::engine::{Engine, Event, Input, Outcome, Source, TopKind};
use crate::error::{Error, Result};

/// Counts assignments, so that the loop knows when to rebuild its state.
#[derive(Default)]
struct Assignments {
    generation: AtomicU64,
}

/// High watermarks of the input partitions, from librdkafka's statistics.
type HighWatermarks = Arc<Mutex<BrokerView>>;

/// What librdkafka's statistics say of the input.
#[derive(Debug, Default)]
struct BrokerView {
    /// Each partition's high watermark.
    highs: HashMap<(String, i32), i64>,
    /// When the statistics last showed every broker that leads a partition
    /// read connected.
    all_up_at: Option<Instant>,
    /// Those not connected at the last statistics (name and state).
    not_up: Vec<String>,
    /// The outage was logged (logged again once the brokers are back).
    outage_logged: bool,
    /// Statistics older than this no longer show the brokers connected:
    /// four statistics intervals, at least 2 s.
    stale_after: Duration,
}

/// Statistics every this many ms (`statistics.interval.ms`, unless set).
const STATISTICS_INTERVAL_MS: u64 = 500;

struct SpeedContext {
    assignments: Arc<Assignments>,
    high_watermarks: HighWatermarks,
}

impl ClientContext for SpeedContext {
    /// librdkafka's statistics (every `statistics.interval.ms`) carry each
    /// partition's high watermark and the consumer lag.
    fn stats(&self, statistics: Statistics) {
        let Ok(mut view) = self.high_watermarks.lock() else {
            return;
        };
        // The brokers that lead the partitions read: another broker of a
        // cluster being down does not make these stale.
        let leaders: std::collections::HashSet<i32> = statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .filter(|(id, p)| **id >= 0 && p.leader >= 0)
            .map(|(_, p)| p.leader)
            .collect();
        view.not_up = statistics
            .brokers
            .values()
            .filter(|b| leaders.contains(&b.nodeid) && b.state != "UP" && b.state != "UPDATE")
            .map(|b| format!("{} {}", b.name, b.state))
            .collect();
        if !leaders.is_empty() && view.not_up.is_empty() {
            view.all_up_at = Some(Instant::now());
        }
        let highs = &mut view.highs;
        for (topic, t) in &statistics.topics {
            for (id, p) in &t.partitions {
                if *id >= 0 && p.hi_offset >= 0 {
                    highs.insert((topic.clone(), *id), p.hi_offset);
                    if p.consumer_lag >= 0 {
                        gauge!("speed_consumer_lag", "topic" => topic.clone(), "partition" => id.to_string())
                            .set(p.consumer_lag as f64);
                    }
                }
            }
        }
    }
}

impl ConsumerContext for SpeedContext {
    /// Every assigned partition is read from its beginning: the state is
    /// rebuilt from the input.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Err(e) = tpl.set_all_offsets(Offset::Beginning) {
                    tracing::error!("cannot rewind assigned partitions: {e}");
                }
                tracing::info!(
                    partitions = tpl.count(),
                    "partitions assigned; rebuilding state from the beginning"
                );
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!("assign failed: {e}");
                }
            }
            _ => {
                tracing::info!("partitions revoked");
                if let Err(e) = consumer.unassign() {
                    tracing::error!("unassign failed: {e}");
                }
            }
        }
        self.assignments.generation.fetch_add(1, Ordering::SeqCst);
    }
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SpeedSummary {
    /// Events counted.
    pub applied: u64,
    /// Events seen before and not counted again.
    pub duplicates: u64,
    /// Events older than the watermark (applied to their bucket while it
    /// is held, see `too_late`).
    pub late: u64,
    /// Late events whose bucket was already dropped: left to the batch.
    pub too_late: u64,
    /// Messages sent to the dead-letter topic.
    pub dead_letters: u64,
    /// Window instances finalised.
    pub finals: u64,
    /// Output and dead-letter messages the broker refused for good (or
    /// that could not be queued): logged and counted, the loop goes on.
    pub produce_failures: u64,
    /// Messages whose delivery failed for a reason that may pass (a broker
    /// restarting), sent again at the next tick.
    pub resent: u64,
}

/// How long a message whose delivery failed is sent again (once a tick)
/// before it counts as not delivered: longer than a broker restart.
const RESEND_FOR: Duration = Duration::from_secs(300);

/// Runs the speed layer until `shutdown` turns true.
pub async fn run(config: &SpeedConfig, shutdown: watch::Receiver<bool>) -> Result<SpeedSummary> {
    config.validate().map_err(Error::Config)?;
    kafka::check_reachable(&config.kafka, Duration::from_secs(10)).await?;
    let partitions = prepare_topics(config).await?;
    if let Some(addr) = config.metrics_listen {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .map_err(|e| Error::Config(format!("cannot serve metrics on {addr}: {e}")))?;
        tracing::info!("metrics on http://{addr}/metrics");
    }

    // The consume → apply → publish loop is synchronous (librdkafka polls,
    // CPU-bound aggregation): it runs on a thread of its own.
    let config = config.clone();
    tokio::task::spawn_blocking(move || consume_loop(&config, partitions, &shutdown))
        .await
        .map_err(|e| Error::Config(format!("speed layer thread failed: {e}")))?
}

fn consume_loop(
    config: &SpeedConfig,
    (tweets_partitions, retweets_partitions): (i32, i32),
    shutdown: &watch::Receiver<bool>,
) -> Result<SpeedSummary> {
    let assignments = Arc::new(Assignments::default());
    // Statistics every `statistics.interval.ms` (ours unless set).
    let interval = config
        .kafka
        .properties
        .iter()
        .rev()
        .find(|(k, _)| k == "statistics.interval.ms")
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .unwrap_or(STATISTICS_INTERVAL_MS);
    let stale_after = Duration::from_millis(interval.saturating_mul(4).max(2_000));
    let high_watermarks = Arc::new(Mutex::new(BrokerView {
        stale_after,
        ..BrokerView::default()
    }));
    let mut client = config.kafka.client_config();
    client
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "range")
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string())
        // A broker may hold a fetch for this long even when data is there:
        // keep it short, latency matters more than fewer requests.
        .set("fetch.wait.max.ms", "20");
    // Pass-through settings win over the defaults above.
    for (k, v) in &config.kafka.properties {
        client.set(k, v);
    }
    let consumer: BaseConsumer<SpeedContext> = client
        .create_with_context(SpeedContext {
            assignments: assignments.clone(),
            high_watermarks: high_watermarks.clone(),
        })
        .map_err(|e| Error::Kafka(format!("create the consumer: {e}")))?;
    let t = &config.topics;
    consumer
        .subscribe(&[&t.tweets, &t.hashtags, &t.retweets])
        .map_err(|e| Error::Kafka(format!("subscribe: {e}")))?;
    let producer = Producer::new(&config.kafka)?;
    // What a broker outage refused is sent again (the re-keyed retweets
    // are input: lost, they would be missing until a restart).
    producer.keep_failed();

    let mut engine = Engine::new(
        config.bucket_ms,
        config.windows.clone(),
        config.allowed_lateness_ms,
        config.top_n,
        config.idle_timeout,
    );
    engine.set_tweets_partitions(tweets_partitions);
    let clients = Clients {
        producer: &producer,
        consumer: &consumer,
        highs: &high_watermarks,
    };
    let mut markers = Markers::new(retweets_partitions, config.idle_timeout, stale_after);
    let counters = Counters::new();
    let mut summary = SpeedSummary::default();
    let mut generation = 0;
    let mut positions: HashMap<Source, i64> = HashMap::new();
    // What the retweets topic holds already (see `Rebuild`).
    let mut rebuild = Rebuild::default();
    let mut next_tick = Instant::now() + config.emit_interval;
    // When the oldest message applied since the last tick was read, and
    // the time spent applying messages since then.
    let mut oldest_unpublished: Option<Instant> = None;
    let mut applying = Duration::ZERO;
    let mut rebuild_started = Instant::now();
    // Input partitions paused for running ahead (see `pace`).
    let mut paused: Vec<Source> = Vec::new();
    while !*shutdown.borrow() {
        if Instant::now() >= next_tick {
            // Stages "wait" (the oldest message's wait for this tick) and
            // "apply" (decoding and applying the tick's messages).
            if let Some(read) = oldest_unpublished.take() {
                histogram!("speed_stage_wait_seconds").record(read.elapsed().as_secs_f64());
            }
            histogram!("speed_stage_apply_seconds").record(applying.as_secs_f64());
            applying = Duration::ZERO;
            let was_rebuilding = engine.is_rebuilding();
            flush(
                config,
                &clients,
                &mut engine,
                &mut markers,
                &mut positions,
                &mut summary,
                Commit {
                    mode: CommitMode::Async,
                    tweets_at_least: &rebuild.rekeyed_before,
                },
            )?;
            pace(config, &consumer, &engine, &mut paused);
            if was_rebuilding && !engine.is_rebuilding() {
                tracing::info!(
                    seconds = rebuild_started.elapsed().as_secs_f64(),
                    "state rebuilt; publishing the view again"
                );
            }
            next_tick = Instant::now() + config.emit_interval;
            if config.exit_when_idle && engine.is_drained(Instant::now()) {
                tracing::info!("input idle and every window final: exiting (--exit-when-idle)");
                break;
            }
        }
        let wait = next_tick
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        let message = consumer.poll(wait);
        let current = assignments.generation.load(Ordering::SeqCst);
        if current != generation {
            generation = current;
            engine.reset();
            // A new assignment starts with no partition paused.
            paused.clear();
            rebuild_started = Instant::now();
            positions.clear();
            markers.sent.clear();
            engine.assign(&assigned_sources(config, &consumer), Instant::now());
            rebuild = Rebuild::at_assignment(config, &consumer);
        }
        match message {
            Some(Ok(m)) => {
                if let Some(input) = input_of(config, m.topic()) {
                    let source = (input, m.partition());
                    if positions.insert(source, m.offset() + 1).is_none() {
                        engine.note_first_offset(source, m.offset());
                    }
                }
                let started = Instant::now();
                oldest_unpublished.get_or_insert(started);
                handle(
                    config,
                    &counters,
                    &mut engine,
                    &producer,
                    &m,
                    &rebuild,
                    &mut summary,
                )?;
                applying += started.elapsed();
            }
            Some(Err(e)) => tracing::warn!("consumer error: {e}"),
            None => {}
        }
    }
    tracing::info!("shutting down: flushing outputs and committing offsets");
    // View records waiting behind the per-tick limit go out first (each
    // tick takes up to the limit of them).
    while engine.view_waiting() {
        flush(
            config,
            &clients,
            &mut engine,
            &mut markers,
            &mut positions,
            &mut summary,
            Commit {
                mode: CommitMode::Async,
                tweets_at_least: &rebuild.rekeyed_before,
            },
        )?;
    }
    // The last commit waits for the coordinator's answer, so that a restart
    // knows every retweet re-keyed so far (see `Rebuild::at_assignment`).
    flush(
        config,
        &clients,
        &mut engine,
        &mut markers,
        &mut positions,
        &mut summary,
        Commit {
            mode: CommitMode::Sync,
            tweets_at_least: &rebuild.rekeyed_before,
        },
    )?;
    Ok(summary)
}

fn topic_of(config: &SpeedConfig, input: Input) -> &str {
    let t = &config.topics;
    match input {
        Input::Tweets => &t.tweets,
        Input::Hashtags => &t.hashtags,
        Input::Retweets => &t.retweets,
    }
}

fn input_of(config: &SpeedConfig, topic: &str) -> Option<Input> {
    Input::ALL
        .into_iter()
        .find(|i| topic_of(config, *i) == topic)
}

/// The partitions currently assigned to this instance.
fn assigned_sources(config: &SpeedConfig, consumer: &BaseConsumer<SpeedContext>) -> Vec<Source> {
    match consumer.assignment() {
        Ok(tpl) => tpl
            .elements()
            .iter()
            .filter_map(|e| input_of(config, e.topic()).map(|i| (i, e.partition())))
            .collect(),
        Err(e) => {
            tracing::warn!("cannot read the assignment: {e}");
            Vec::new()
        }
    }
}

/// What an assignment's rebuild finds in the retweets topic, read when the
/// partitions are assigned.
#[derive(Debug, Default)]
struct Rebuild {
    /// Per tweets partition, the offset before which its retweets were
    /// re-keyed already: those are not sent again.
    rekeyed_before: HashMap<i32, i64>,
    /// Per retweets partition, the offset below which its markers are
    /// outdated and ignored: set when records were removed from the topic.
    /// A marker vouches for the retweets before it; once those may be gone
    /// and are re-keyed again (after it), it would move the partition's
    /// clock past retweets still on their way, and close their windows
    /// without them. The clock comes from the markers sent after them
    /// (every instance sends all of its markers again within the idle
    /// timeout, see `Markers::all_every`).
    markers_from: HashMap<i32, i64>,
}

impl Rebuild {
    /// Per assigned tweets partition, the offset before which its retweets
    /// were re-keyed already: the group's committed offset (a commit follows
    /// the acknowledgement of what the tick produced). A rebuild re-reads the
    /// tweets but does not send those retweets again (every restart used to
    /// add a copy of each to the retweets topic). Trusted only where the
    /// group also committed an offset of the co-partitioned retweets
    /// partition that the topic still reaches: a retweets topic that is new
    /// to the group (a new `--topic-prefix`) or was re-created gets every
    /// retweet again. Not trusted at all once any retweets partition starts
    /// after offset 0: the retweets of any tweets partition land in every
    /// retweets partition, and records removed there (retention) would be
    /// missing from the rebuild; the copies sent again are deduplicated, and
    /// the markers already there are outdated (see `markers_from`).
    fn at_assignment(config: &SpeedConfig, consumer: &BaseConsumer<SpeedContext>) -> Rebuild {
        let t = &config.topics;
        let watermarks = match watermarks_of(consumer, &t.retweets) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(
                    "cannot read the watermarks of {}: {e}; every retweet is re-keyed again",
                    t.retweets
                );
                return Rebuild::default();
            }
        };
        if let Some((partition, _)) = watermarks.iter().find(|(_, (low, _))| *low > 0) {
            tracing::warn!(
                partition,
                "records of {} were removed (retention): every retweet is re-keyed again, and the markers already there are ignored",
                t.retweets
            );
            return Rebuild {
                rekeyed_before: HashMap::new(),
                markers_from: watermarks
                    .iter()
                    .map(|(p, (_, high))| (*p, *high))
                    .collect(),
            };
        }
        let committed = match consumer.committed(Duration::from_secs(10)) {
            Ok(tpl) => tpl,
            Err(e) => {
                tracing::warn!(
                    "cannot read the committed offsets (every retweet is re-keyed again): {e}"
                );
                return Rebuild::default();
            }
        };
        let offset_of = |topic: &str, partition: i32| match committed
            .find_partition(topic, partition)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(n)) if n > 0 => Some(n),
            _ => None,
        };
        let mut before = HashMap::new();
        for e in committed.elements_for_topic(&t.tweets) {
            let p = e.partition();
            let (Some(tweets), Some(retweets)) =
                (offset_of(&t.tweets, p), offset_of(&t.retweets, p))
            else {
                continue;
            };
            if watermarks
                .get(&p)
                .is_some_and(|(_, high)| retweets <= *high)
            {
                before.insert(p, tweets);
            }
        }
        if !before.is_empty() {
            tracing::info!(
                partitions = ?before,
                "retweets re-keyed before the committed offsets of these tweets partitions are in {} already: not sent again",
                t.retweets
            );
        }
        Rebuild {
            rekeyed_before: before,
            markers_from: HashMap::new(),
        }
    }

    /// A marker at `offset` of retweets partition `partition` is outdated.
    fn outdated_marker(&self, partition: i32, offset: i64) -> bool {
        self.markers_from
            .get(&partition)
            .is_some_and(|from| offset < *from)
    }
}

/// The low and high watermarks of each partition of `topic`.
fn watermarks_of<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
) -> Result<BTreeMap<i32, (i64, i64)>, rdkafka::error::KafkaError> {
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    metadata
        .topics()
        .iter()
        .filter(|m| m.name() == topic)
        .flat_map(|m| m.partitions())
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                .map(|w| (p.id(), w))
        })
        .collect()
}

/// Pauses the input partitions that run more than the largest window ahead
/// of the slowest one still being read, and resumes them once they are
/// back within half of it (so that they do not flap every tick). Pausing
/// changes only the order in which partitions are read, not what is
/// counted: it bounds the buckets held in a catch-up to about twice the
/// largest window plus the lateness, where uneven reading made them grow
/// with the input.
fn pace<C: ConsumerContext>(
    config: &SpeedConfig,
    consumer: &BaseConsumer<C>,
    engine: &Engine,
    paused: &mut Vec<Source>,
) {
    let limit = engine.largest_window_ms();
    let far = engine.running_ahead(limit);
    let still = engine.running_ahead(limit / 2);
    let next: Vec<Source> = still
        .into_iter()
        .filter(|s| far.contains(s) || paused.contains(s))
        .collect();
    let list = |sources: &mut dyn Iterator<Item = &Source>| {
        let mut tpl = TopicPartitionList::new();
        for (input, partition) in sources {
            tpl.add_partition(topic_of(config, *input), *partition);
        }
        tpl
    };
    let to_pause = list(&mut next.iter().filter(|s| !paused.contains(s)));
    let to_resume = list(&mut paused.iter().filter(|s| !next.contains(s)));
    if to_pause.count() > 0 {
        match consumer.pause(&to_pause) {
            Ok(()) => {
                tracing::debug!(partitions = ?to_pause, "paused: ahead of the slowest partition")
            }
            Err(e) => tracing::warn!("pause: {e}"),
        }
    }
    if to_resume.count() > 0 {
        if let Err(e) = consumer.resume(&to_resume) {
            tracing::warn!("resume: {e}");
        }
    }
    *paused = next;
    gauge!("speed_partitions_paused").set(paused.len() as f64);
}

/// Marks which partitions have been read to their end (from the high
/// watermarks of the latest fetch responses; no broker round trip; see also
/// [`Markers::hold_retweets_ends`]).
fn update_ends(
    config: &SpeedConfig,
    engine: &mut Engine,
    highs: &HighWatermarks,
    positions: &HashMap<Source, i64>,
) {
    let Ok(mut view) = highs.lock() else { return };
    // Statistics that no longer show every broker connected: the ends
    // known are stale, and the time is not quiet time.
    let now = Instant::now();
    let unreachable = view
        .all_up_at
        .is_some_and(|t| now.duration_since(t) > view.stale_after);
    if unreachable != view.outage_logged {
        view.outage_logged = unreachable;
        if unreachable {
            tracing::warn!(brokers = ?view.not_up, "brokers not connected: partitions are not idle meanwhile");
        } else {
            tracing::info!("brokers connected again");
        }
    }
    if unreachable {
        engine.brokers_unreachable(now);
        return;
    }
    for (input, partition) in engine.sources() {
        let high = view
            .highs
            .get(&(topic_of(config, input).to_string(), partition))
            .copied();
        let position = positions.get(&(input, partition)).copied().unwrap_or(0);
        engine.set_at_end((input, partition), high.is_some_and(|h| position >= h));
        engine.note_position((input, partition), position, high);
    }
}

/// Creates the topics that are missing; returns the partition counts of
/// the tweets and retweets topics.
async fn prepare_topics(config: &SpeedConfig) -> Result<(i32, i32)> {
    let t = &config.topics;
    kafka::ensure_topics(
        &config.kafka,
        &[TopicSpec::new(&t.tweets, 3), TopicSpec::new(&t.hashtags, 3)],
    )
    .await?;
    // The retweets topic has as many partitions as tweets: co-partitioned.
    let tweets = i32::try_from(
        kafka::end_offsets(&config.kafka, &[&t.tweets])
            .await?
            .len()
            .max(1),
    )
    .unwrap_or(1);
    kafka::ensure_topics(&config.kafka, &[TopicSpec::new(&t.retweets, tweets)]).await?;
    let retweets = i32::try_from(
        kafka::end_offsets(&config.kafka, &[&t.retweets])
            .await?
            .len()
            .max(1),
    )
    .unwrap_or(1);
    // Only the newest value of a view key matters: the view is compacted,
    // so that reading it from the beginning (the serving layer's start)
    // costs its keys, not its history. (The top-N topics keep every
    // message: each window instance's final is a message of its own under
    // the window's key.)
    kafka::ensure_topics(
        &config.kafka,
        &[
            TopicSpec::new(&t.top_hashtags, 1),
            TopicSpec::new(&t.top_tweets, 1),
            TopicSpec::new(&t.view, 1).compacted(),
            TopicSpec::new(&t.dead_letters, 1),
        ],
    )
    .await?;
    Ok((tweets, retweets))
}

/// Per-topic counters, registered once (not looked up per message).
struct Counters {
    events_in: [Counter; 3],
    duplicates: [Counter; 3],
    late: [Counter; 3],
    too_late: [Counter; 3],
    dead_letters: [Counter; 3],
    /// Stage "input": from a message's producer timestamp to its poll.
    input_age: Histogram,
}

impl Counters {
    fn new() -> Counters {
        let per_topic =
            |name: &'static str| Input::ALL.map(|input| counter!(name, "topic" => input.name()));
        Counters {
            events_in: per_topic("speed_events_in_total"),
            duplicates: per_topic("speed_duplicates_total"),
            late: per_topic("speed_late_events_total"),
            too_late: per_topic("speed_too_late_events_total"),
            dead_letters: per_topic("speed_dead_letters_total"),
            input_age: histogram!("speed_stage_input_seconds"),
        }
    }
}

fn handle(
    config: &SpeedConfig,
    counters: &Counters,
    engine: &mut Engine,
    producer: &Producer,
    m: &BorrowedMessage<'_>,
    rebuild: &Rebuild,
    summary: &mut SpeedSummary,
) -> Result<()> {
    let t = &config.topics;
    let topic = m.topic();
    let now = Instant::now();
    let Some(input) = input_of(config, topic) else {
        return Ok(());
    };
    let source = (input, m.partition());
    let wall_ms = chrono::Utc::now().timestamp_millis();
    // Stage "input": from the producer's timestamp to this poll (the
    // producer's batching, the broker, the fetch wait).
    if let Some(created_ms) = m.timestamp().to_millis() {
        let age_ms = (wall_ms - created_ms).max(0);
        counters.input_age.record(age_ms as f64 / 1e3);
    }
    let not_future = |t_ms: i64| check_not_future(t_ms, wall_ms, config.max_future_ms);
    let outcome = match input {
        Input::Tweets => match admit_tweet(m.payload()).and_then(|t| {
            not_future(t.created_at.timestamp_millis())?;
            Ok(t)
        }) {
            Ok(tweet) => {
                let t_ms = tweet.created_at.timestamp_millis();
                let rekeyed = rebuild
                    .rekeyed_before
                    .get(&m.partition())
                    .is_some_and(|before| m.offset() < *before);
                if let (Some(original), false) = (&tweet.message.retweet_of, rekeyed) {
                    // Re-keyed by the retweeted tweet: its owner counts it.
                    let r = RetweetEvent {
                        tweet_id: original.to_string(),
                        retweet_id: tweet.message.id.to_string(),
                        created_at: tweet.created_at,
                        // Bounded: the text is only shown, and a huge one
                        // must not make the message too large to send.
                        text: excerpt(
                            tweetlambda_core::aggregate::retweeted_text(&tweet.message.text)
                                .as_bytes(),
                            EXCERPT_BYTES,
                        )
                        .0,
                    };
                    let payload =
                        serde_json::to_vec(&r).map_err(|e| Error::Config(e.to_string()))?;
                    producer.send_blocking(&t.retweets, original, &payload, t_ms)?;
                }
                let event = Event::Tweet {
                    id: tweet.id,
                    t_ms,
                    score: tweet.score,
                    text: &tweet.message.text,
                };
                Ok(engine.apply(source, event, now))
            }
            Err(e) => Err(e),
        },
        Input::Hashtags => match admit_hashtag(m.payload()).and_then(|h| {
            not_future(h.t_ms)?;
            Ok(h)
        }) {
            Ok(h) => {
                let event = Event::Hashtag {
                    tweet_id: h.tweet_id,
                    t_ms: h.t_ms,
                    hashtag: &h.hashtag,
                };
                Ok(engine.apply(source, event, now))
            }
            Err(e) => Err(e),
        },
        // A re-keyed retweet passed the future bound when its tweet was read;
        // checked again here (another instance's clock may differ).
        Input::Retweets => match RetweetsMessage::parse(m.payload()).and_then(|r| {
            if let RetweetsMessage::Retweet { event, .. } = &r {
                not_future(event.created_at.timestamp_millis())?;
            }
            Ok(r)
        }) {
            Ok(RetweetsMessage::Markers(markers)) => {
                if rebuild.outdated_marker(m.partition(), m.offset()) {
                    return Ok(());
                }
                for marker in markers {
                    engine.apply_marker(m.partition(), marker.marker, marker.time_ms, now);
                }
                return Ok(());
            }
            Ok(RetweetsMessage::Retweet {
                event: r,
                original,
                retweet,
            }) => {
                let event = Event::Retweet {
                    original,
                    retweet,
                    t_ms: r.created_at.timestamp_millis(),
                    text: &r.text,
                };
                Ok(engine.apply(source, event, now))
            }
            Err(e) => Err(e),
        },
    };
    let index = input.index();
    counters.events_in[index].increment(1);
    match outcome {
        Ok(Outcome::Applied) => summary.applied += 1,
        Ok(Outcome::Duplicate) => {
            summary.duplicates += 1;
            counters.duplicates[index].increment(1);
        }
        Ok(outcome @ (Outcome::Late | Outcome::TooLate)) => {
            let too_late = outcome == Outcome::TooLate;
            summary.late += 1;
            counters.late[index].increment(1);
            if too_late {
                summary.too_late += 1;
                counters.too_late[index].increment(1);
            }
            // The first ten, then one in a thousand.
            if summary.late <= 10 || summary.late.is_multiple_of(1000) {
                let what = if too_late {
                    "late event of a bucket no longer held: not counted here (the next batch run counts it; the serving layer flags answers over its bucket)"
                } else {
                    "late event: older than the watermark; applied to its bucket of the realtime view, finals already published unchanged"
                };
                tracing::warn!(
                    topic, partition = m.partition(), offset = m.offset(),
                    late_events = summary.late, too_late_events = summary.too_late,
                    watermark = ?engine.watermark(), "{what}"
                );
            }
        }
        Err(reason) => {
            summary.dead_letters += 1;
            counters.dead_letters[index].increment(1);
            tracing::warn!(
                topic,
                partition = m.partition(),
                offset = m.offset(),
                "dead-lettered: {reason}"
            );
            let letter = DeadLetter::kafka(
                topic,
                m.partition(),
                m.offset(),
                reason.to_string(),
                m.key(),
                m.payload(),
            );
            let now_ms = chrono::Utc::now().timestamp_millis();
            let sent = producer.send_blocking(
                &t.dead_letters,
                &letter.key(),
                letter.to_json().as_bytes(),
                now_ms,
            );
            count_failure(sent, &t.dead_letters, summary);
        }
    }
    Ok(())
}

/// A message that could not be queued, or a flush that found deliveries
/// refused, is logged and counted; the loop goes on. (Outputs are
/// recomputed state: the next change of a key sends it again.)
fn count_failure(result: kafka::Result<impl Sized>, topic: &str, summary: &mut SpeedSummary) {
    if let Err(e) = result {
        let lost = match &e {
            kafka::Error::Delivery { count, .. } => *count,
            _ => 1,
        };
        summary.produce_failures += lost;
        counter!("speed_produce_failures_total", "topic" => topic.to_string()).increment(lost);
        if summary.produce_failures <= 10 || summary.produce_failures.is_multiple_of(1000) {
            tracing::error!(
                topic,
                failures = summary.produce_failures,
                "output not delivered, going on: {e}"
            );
        }
    }
}

/// Takes the messages whose delivery failed: sent again at the next tick
/// (with when they first failed, from `first_failed` for re-sent ones),
/// unless refused for good, failing for `RESEND_FOR`, or (on the view, a
/// topic of latest values) replaced by a newer value of their key in
/// `newest`.
fn keep_for_resend(
    producer: &Producer,
    first_failed: &HashMap<(String, Vec<u8>, Vec<u8>), Instant>,
    newest: &HashMap<(String, Vec<u8>), Vec<u8>>,
    latest_topics: &[&String],
    markers: &mut Markers,
    summary: &mut SpeedSummary,
) {
    let now = Instant::now();
    for m in producer.take_failed() {
        if latest_topics.contains(&&m.topic)
            && newest
                .get(&(m.topic.clone(), m.key.clone()))
                .is_some_and(|p| *p != m.payload)
        {
            continue;
        }
        let since = first_failed
            .get(&(m.topic.clone(), m.key.clone(), m.payload.clone()))
            .copied()
            .unwrap_or(now);
        if m.is_permanent() || now.duration_since(since) >= RESEND_FOR {
            count_failure(
                Err::<(), _>(kafka::Error::Delivery {
                    count: 1,
                    last: m.error.to_string(),
                }),
                &m.topic,
                summary,
            );
            continue;
        }
        summary.resent += 1;
        counter!("speed_outputs_resent_total", "topic" => m.topic.clone()).increment(1);
        if summary.resent <= 10 || summary.resent.is_multiple_of(1000) {
            tracing::warn!(
                topic = m.topic,
                resent = summary.resent,
                "delivery failed, sending again at the next tick: {}",
                m.error
            );
        }
        markers.resend.push((m, since));
    }
}

/// What this instance last told each retweets partition, and the messages
/// to send again.
struct Markers {
    retweets_partitions: i32,
    sent: HashMap<i32, Option<i64>>,
    /// When every marker was last sent, changed or not, and how often that
    /// is done (the idle timeout): an instance whose rebuild ignored the
    /// markers already there (see `Rebuild::markers_from`) gets those of
    /// the partitions that no longer move within that time.
    all_sent_at: Option<Instant>,
    all_every: Duration,
    /// Per retweets partition, the offset after the last message this
    /// process sent there that the broker acknowledged, and when that was
    /// noted.
    acknowledged: HashMap<i32, (i64, Instant)>,
    /// How long an acknowledged offset is held against the partition's end
    /// in the statistics (see `hold_retweets_ends`).
    hold_for: Duration,
    /// Messages whose delivery failed, with when it first failed.
    resend: Vec<(kafka::producer::FailedMessage, Instant)>,
}

impl Markers {
    fn new(retweets_partitions: i32, all_every: Duration, hold_for: Duration) -> Markers {
        Markers {
            retweets_partitions,
            sent: HashMap::new(),
            all_sent_at: None,
            all_every,
            acknowledged: HashMap::new(),
            hold_for,
            resend: Vec::new(),
        }
    }

    /// Takes the retweets partitions' offsets from a flush's acknowledged
    /// offsets (the producer's, of every partition it wrote; they only grow).
    fn note_acknowledged(&mut self, retweets_topic: &str, offsets: &kafka::Offsets, now: Instant) {
        for (key, next) in offsets {
            let Some((topic, partition)) = kafka::split_key(key) else {
                continue;
            };
            if topic == retweets_topic
                && self
                    .acknowledged
                    .get(&partition)
                    .is_none_or(|(known, _)| next > known)
            {
                self.acknowledged.insert(partition, (*next, now));
            }
        }
    }

    /// After the barrier: a retweets partition is not read to its end when
    /// the barrier failed (re-keyed retweets of this instance wait to be
    /// sent again), nor before the messages the broker acknowledged there
    /// recently have been read (the statistics' end offsets lag behind them: a window closed
    /// on them, and `--exit-when-idle` exited, with those retweets unread).
    /// An acknowledged offset is held for `hold_for` only, the time the
    /// statistics take to show it, so that a topic re-created or a broker
    /// that lost its data cannot hold the end for good.
    fn hold_retweets_ends(
        &self,
        engine: &mut Engine,
        positions: &HashMap<Source, i64>,
        barrier_delivered: bool,
    ) {
        for (input, partition) in engine.sources() {
            if input != Input::Retweets {
                continue;
            }
            let position = positions.get(&(input, partition)).copied().unwrap_or(0);
            let unread = self
                .acknowledged
                .get(&partition)
                .is_some_and(|(next, at)| position < *next && at.elapsed() < self.hold_for);
            if !barrier_delivered || unread {
                engine.set_at_end((input, partition), false);
            }
        }
    }
}

/// Sends the progress of the tweets partitions this instance reads to
/// every retweets partition, after the retweets it re-keyed (same producer,
/// so they stay in order). Only changes are sent (and every marker once per
/// `all_every`), all of a tick's in one [`Markers`] message per retweets
/// partition.
fn send_markers(
    retweets_topic: &str,
    engine: &Engine,
    producer: &Producer,
    markers: &mut Markers,
) -> Result<()> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let now = Instant::now();
    let all = markers
        .all_sent_at
        .is_none_or(|at| now.duration_since(at) >= markers.all_every);
    let mut changed = Vec::new();
    for (input, p) in engine.sources() {
        if input != Input::Tweets {
            continue;
        }
        let Some(time_ms) = engine.tweets_marker(p, now) else {
            continue;
        };
        if all || markers.sent.get(&p) != Some(&time_ms) {
            changed.push(Marker { marker: p, time_ms });
        }
    }
    if all {
        markers.all_sent_at = Some(now);
    }
    if changed.is_empty() {
        return Ok(());
    }
    changed.sort_by_key(|m| m.marker);
    let payload = serde_json::to_vec(&tweetlambda_core::messages::Markers {
        markers: changed.clone(),
    })
    .map_err(|e| Error::Config(e.to_string()))?;
    for k in 0..markers.retweets_partitions {
        producer.send_to_partition(retweets_topic, k, "markers", &payload, now_ms)?;
    }
    for m in changed {
        markers.sent.insert(m.marker, m.time_ms);
    }
    Ok(())
}

/// The Kafka clients of one instance.
struct Clients<'a> {
    producer: &'a Producer,
    consumer: &'a BaseConsumer<SpeedContext>,
    highs: &'a HighWatermarks,
}

/// How a tick commits the input offsets.
struct Commit<'a> {
    mode: CommitMode,
    /// Per tweets partition, the lowest offset to commit: a rebuild's
    /// position is behind the offset below which the retweets were re-keyed
    /// already, and committing it would make a crash during the rebuild
    /// re-key those retweets again (see `Rebuild::at_assignment`).
    tweets_at_least: &'a HashMap<i32, i64>,
}

fn flush(
    config: &SpeedConfig,
    clients: &Clients<'_>,
    engine: &mut Engine,
    markers: &mut Markers,
    positions: &mut HashMap<Source, i64>,
    summary: &mut SpeedSummary,
    commit: Commit<'_>,
) -> Result<()> {
    let Clients {
        producer,
        consumer,
        highs,
    } = *clients;
    // Stages of a tick, each timed: markers, tick (the engine's outputs),
    // produce (queueing them), flush (until the broker acknowledged them),
    // commit (queueing the offset commit).
    let started = Instant::now();
    update_ends(config, engine, highs, positions);
    let t = &config.topics;
    // The topic of latest values per key (the view): a failed value is not
    // sent again once a newer value of its key was queued after it. (The
    // top-N topics are keyed by window name: a final and the next
    // instance's updates share a key, and every final must arrive.)
    let latest_topics = [&t.view];
    // What failed last time, then a barrier: the re-keyed retweets queued
    // since the last tick and these must be acknowledged before a marker
    // claims progress past them (a marker delivered ahead of a retweet
    // that failed would make it late).
    let mut first_failed: HashMap<(String, Vec<u8>, Vec<u8>), Instant> = HashMap::new();
    for (m, since) in std::mem::take(&mut markers.resend) {
        let sent = producer.resend_blocking(&m);
        if sent.is_err() {
            count_failure(sent, &m.topic, summary);
        } else {
            first_failed.insert((m.topic, m.key, m.payload), since);
        }
    }
    let mut delivered = true;
    let barrier = producer.flush_blocking();
    if let Ok(acknowledged) = &barrier {
        markers.note_acknowledged(&t.retweets, acknowledged, Instant::now());
    }
    markers.hold_retweets_ends(engine, positions, barrier.is_ok());
    if barrier.is_err() {
        delivered = false;
        keep_for_resend(
            producer,
            &first_failed,
            &HashMap::new(),
            &latest_topics,
            markers,
            summary,
        );
    } else {
        send_markers(&t.retweets, engine, producer, markers)?;
    }
    histogram!("speed_stage_markers_seconds").record(started.elapsed().as_secs_f64());
    let started = Instant::now();
    let out = engine.tick(Instant::now());
    histogram!("speed_stage_tick_seconds").record(started.elapsed().as_secs_f64());
    let started = Instant::now();
    let now_ms = chrono::Utc::now().timestamp_millis();
    for m in &out.tops {
        let topic = match m.kind {
            TopKind::Hashtags => &t.top_hashtags,
            TopKind::Tweets => &t.top_tweets,
        };
        let sent = producer.send_blocking(topic, &m.window, m.value.to_string().as_bytes(), now_ms);
        count_failure(sent, topic, summary);
    }
    for v in &out.view {
        let sent = producer.send_blocking(&t.view, &v.key, v.value.as_bytes(), now_ms);
        count_failure(sent, &t.view, summary);
    }
    histogram!("speed_stage_produce_seconds").record(started.elapsed().as_secs_f64());
    let produced = Instant::now();
    let flushed = producer.flush_blocking();
    if let Ok(acknowledged) = &flushed {
        markers.note_acknowledged(&t.retweets, acknowledged, Instant::now());
    }
    histogram!("speed_stage_flush_seconds").record(produced.elapsed().as_secs_f64());
    // The newest view value of each key this tick, only when something
    // failed.
    let failed_before = !markers.resend.is_empty();
    if flushed.is_err() || failed_before {
        let mut newest: HashMap<(String, Vec<u8>), Vec<u8>> = HashMap::new();
        for v in &out.view {
            newest.insert(
                (t.view.clone(), v.key.as_bytes().to_vec()),
                v.value.as_bytes().to_vec(),
            );
        }
        // Failures of the barrier with a newer value queued since: gone.
        markers.resend.retain(|(m, _)| {
            !latest_topics.contains(&&m.topic)
                || newest
                    .get(&(m.topic.clone(), m.key.clone()))
                    .is_none_or(|p| *p == m.payload)
        });
        if flushed.is_err() {
            delivered = false;
            keep_for_resend(
                producer,
                &first_failed,
                &newest,
                &latest_topics,
                markers,
                summary,
            );
        }
    }
    summary.finals += out.finals as u64;
    counter!("speed_top_messages_total").increment(out.tops.len() as u64);
    counter!("speed_view_records_total").increment(out.view.len() as u64);
    counter!("speed_finals_total").increment(out.finals as u64);
    if let Some(w) = engine.watermark() {
        gauge!("speed_watermark_ms").set(w as f64);
    }
    if let Some(m) = engine.max_event_ms() {
        gauge!("speed_max_event_time_ms").set(m as f64);
    }
    gauge!("speed_buckets_held").set(engine.buckets_held() as f64);
    // Outputs are durable: now the inputs that produced them may be
    // committed (not after a refused delivery; the state is rebuilt from
    // the input on restart either way).
    if delivered && !positions.is_empty() {
        let started = Instant::now();
        let mut tpl = TopicPartitionList::new();
        for ((input, partition), offset) in positions.iter() {
            let topic = topic_of(config, *input);
            let offset = match (input, commit.tweets_at_least.get(partition)) {
                (Input::Tweets, Some(floor)) => (*offset).max(*floor),
                _ => *offset,
            };
            if let Err(e) = tpl.add_partition_offset(topic, *partition, Offset::Offset(offset)) {
                tracing::warn!("cannot record offset {topic}:{partition}: {e}");
            }
        }
        if let Err(e) = consumer.commit(&tpl, commit.mode) {
            tracing::warn!("offset commit failed (will retry on the next tick): {e}");
        }
        histogram!("speed_stage_commit_seconds").record(started.elapsed().as_secs_f64());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::mocking::MockCluster;
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

    /// librdkafka's mock cluster refusing every produce with "unknown
    /// error" (a restarting Tansu): a failed message is kept for the next
    /// tick unless a newer value of its key on a topic of latest values was
    /// queued after it; other topics keep every failed message.
    #[test]
    fn failed_messages_are_kept_unless_a_newer_value_replaces_them() {
        let mock = MockCluster::new(1).expect("mock cluster");
        for topic in ["view", "retweets"] {
            mock.create_topic(topic, 1, 1).expect("topic");
        }
        let producer = Producer::new(&tweetlambda_kafka::KafkaOptions {
            brokers: mock.bootstrap_servers(),
            properties: vec![("message.timeout.ms".into(), "5000".into())],
        })
        .expect("producer");
        producer.keep_failed();
        mock.request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN; 8],
        );
        for (topic, key, value) in [
            ("view", "hashtag/0/a", "1"),
            ("view", "hashtag/0/b", "1"),
            ("retweets", "42", "r1"),
            ("retweets", "42", "r2"),
        ] {
            producer
                .send_blocking(topic, key, value.as_bytes(), 0)
                .expect("queued");
        }
        assert!(producer.flush_blocking().is_err());
        // "a" was queued again with a newer value since; "b" was not.
        let newest: HashMap<(String, Vec<u8>), Vec<u8>> =
            [(("view".to_string(), b"hashtag/0/a".to_vec()), b"2".to_vec())].into();
        let view = "view".to_string();
        let hour = Duration::from_secs(3600);
        let mut markers = Markers::new(1, hour, hour);
        let mut summary = SpeedSummary::default();
        keep_for_resend(
            &producer,
            &HashMap::new(),
            &newest,
            &[&view],
            &mut markers,
            &mut summary,
        );
        let mut kept: Vec<(String, String, String)> = markers
            .resend
            .iter()
            .map(|(m, _)| {
                (
                    m.topic.clone(),
                    String::from_utf8_lossy(&m.key).into_owned(),
                    String::from_utf8_lossy(&m.payload).into_owned(),
                )
            })
            .collect();
        kept.sort();
        assert_eq!(
            kept,
            vec![
                ("retweets".into(), "42".into(), "r1".into()),
                ("retweets".into(), "42".into(), "r2".into()),
                ("view".into(), "hashtag/0/b".into(), "1".into()),
            ]
        );
        assert_eq!((summary.resent, summary.produce_failures), (3, 0));
    }

    /// An instance reading four tweets partitions tells each of the four
    /// retweets partitions their progress in one message a tick (it was one
    /// message per tweets partition: partitions² a tick), and sends nothing
    /// while no marker changed, until it is time to send them all again.
    #[test]
    fn markers_cost_one_message_per_retweets_partition() {
        let mock = MockCluster::new(1).expect("mock cluster");
        mock.create_topic("retweets", 4, 1).expect("topic");
        let producer = Producer::new(&tweetlambda_kafka::KafkaOptions {
            brokers: mock.bootstrap_servers(),
            properties: Vec::new(),
        })
        .expect("producer");
        let now = Instant::now();
        let mut engine = Engine::new(60_000, Vec::new(), 0, 3, Duration::from_secs(5));
        engine.set_tweets_partitions(4);
        let sources: Vec<Source> = (0..4).map(|p| (Input::Tweets, p)).collect();
        engine.assign(&sources, now);
        for (p, source) in sources.iter().enumerate() {
            let event = Event::Tweet {
                id: 1 + p as u64,
                t_ms: 60_000 * (1 + p as i64),
                score: 1,
                text: "",
            };
            engine.apply(*source, event, now);
        }
        let hour = Duration::from_secs(3600);
        let mut markers = Markers::new(4, hour, hour);
        let per_partition = |offsets: &tweetlambda_kafka::Offsets| -> Vec<i64> {
            (0..4)
                .map(|k| offsets.get(&format!("retweets:{k}")).copied().unwrap_or(0))
                .collect()
        };
        send_markers("retweets", &engine, &producer, &mut markers).expect("sent");
        let offsets = producer.flush_blocking().expect("delivered");
        assert_eq!(per_partition(&offsets), vec![1, 1, 1, 1]);
        assert_eq!(markers.sent.len(), 4);
        // Nothing changed: nothing sent.
        send_markers("retweets", &engine, &producer, &mut markers).expect("sent");
        let offsets = producer.flush_blocking().expect("delivered");
        assert_eq!(per_partition(&offsets), vec![1, 1, 1, 1]);
        // Once `all_every` has passed, every marker again, in one message
        // per retweets partition.
        markers.all_every = Duration::ZERO;
        send_markers("retweets", &engine, &producer, &mut markers).expect("sent");
        let offsets = producer.flush_blocking().expect("delivered");
        assert_eq!(per_partition(&offsets), vec![2, 2, 2, 2]);
    }

    /// A retweets partition is not read to its end before this process read
    /// what the broker acknowledged there from it, nor after a failed
    /// barrier; an acknowledged offset holds the end for `hold_for` only.
    #[test]
    fn acknowledged_retweets_hold_the_end_of_their_partition() {
        let now = Instant::now();
        let (tweets, retweets) = ((Input::Tweets, 0), (Input::Retweets, 0));
        let mut engine = Engine::new(60_000, Vec::new(), 0, 3, Duration::ZERO);
        engine.set_tweets_partitions(1);
        engine.assign(&[tweets, retweets], now);
        // A newest event time, nothing to publish (no window).
        engine.apply_marker(0, 0, Some(60_000), now);
        // What `update_ends` concludes from the statistics.
        let from_statistics = |engine: &mut Engine| {
            engine.set_at_end(tweets, true);
            engine.set_at_end(retweets, true);
        };
        from_statistics(&mut engine);
        assert!(engine.is_drained(Instant::now()), "both at their end");

        let hour = Duration::from_secs(3600);
        let mut markers = Markers::new(1, hour, hour);
        let offsets = tweetlambda_kafka::Offsets::from([
            ("retweets:0".to_string(), 7),
            ("view:0".to_string(), 99),
        ]);
        markers.note_acknowledged("retweets", &offsets, now);
        assert_eq!(markers.acknowledged.get(&0).map(|a| a.0), Some(7));
        let read_to = |offset: i64| HashMap::from([(retweets, offset)]);
        markers.hold_retweets_ends(&mut engine, &read_to(5), true);
        assert!(
            !engine.is_drained(Instant::now()),
            "offsets 5 and 6 were acknowledged but not read yet"
        );
        from_statistics(&mut engine);
        markers.hold_retweets_ends(&mut engine, &read_to(7), true);
        assert!(engine.is_drained(Instant::now()), "read to 7");
        markers.hold_retweets_ends(&mut engine, &read_to(7), false);
        assert!(
            !engine.is_drained(Instant::now()),
            "a failed barrier: retweets may wait to be sent again"
        );

        // Held no longer than `hold_for`.
        let mut markers = Markers::new(1, hour, Duration::ZERO);
        markers.note_acknowledged("retweets", &offsets, now);
        from_statistics(&mut engine);
        markers.hold_retweets_ends(&mut engine, &read_to(5), true);
        assert!(engine.is_drained(Instant::now()), "the hold has expired");
    }

    /// A partition more than the largest window (here 1 hour) ahead of the
    /// slowest one still read is paused: its messages wait while the slow
    /// one's are read. It stays paused while it is more than half the
    /// window ahead, and is resumed within it.
    #[test]
    fn a_partition_running_ahead_is_paused_until_the_slowest_catches_up() {
        use crate::config::{SpeedTopics, WindowSpec};
        use rdkafka::ClientConfig;
        const MIN: i64 = 60_000;
        let mock = MockCluster::new(1).expect("mock cluster");
        for topic in ["tweets", "hashtags"] {
            mock.create_topic(topic, 1, 1).expect("topic");
        }
        let kafka = tweetlambda_kafka::KafkaOptions {
            brokers: mock.bootstrap_servers(),
            properties: Vec::new(),
        };
        let window = WindowSpec {
            name: "1h".into(),
            size_ms: 60 * MIN,
        };
        let config = SpeedConfig {
            kafka: kafka.clone(),
            topics: SpeedTopics::default(),
            group_id: "pace".into(),
            bucket_ms: MIN,
            windows: vec![window.clone()],
            allowed_lateness_ms: 0,
            top_n: 3,
            emit_interval: Duration::from_millis(50),
            idle_timeout: Duration::from_secs(5),
            metrics_listen: None,
            max_future_ms: 0,
            exit_when_idle: false,
        };
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &kafka.brokers)
            .set("group.id", "pace")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "10")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for topic in ["tweets", "hashtags"] {
            tpl.add_partition_offset(topic, 0, Offset::Beginning)
                .expect("partition");
        }
        consumer.assign(&tpl).expect("assign");
        let producer = Producer::new(&kafka).expect("producer");
        let now = Instant::now();
        let (tweets, hashtags) = ((Input::Tweets, 0), (Input::Hashtags, 0));
        let mut engine = Engine::new(MIN, vec![window], 0, 3, Duration::from_secs(5));
        engine.assign(&[tweets, hashtags], now);
        let tweet = |t_ms: i64| Event::Tweet {
            id: 1 + t_ms as u64,
            t_ms,
            score: 1,
            text: "",
        };
        engine.apply(tweets, tweet(0), now);
        let hashtag = Event::Hashtag {
            tweet_id: 1,
            t_ms: 120 * MIN,
            hashtag: "a",
        };
        engine.apply(hashtags, hashtag, now);
        let mut paused = Vec::new();
        pace(&config, &consumer, &engine, &mut paused);
        assert_eq!(paused, vec![hashtags]);

        // The topics of the messages read within `wait`.
        let read = |wait: Duration| {
            let mut topics = Vec::new();
            let until = Instant::now() + wait;
            while Instant::now() < until {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                    topics.push(m.topic().to_string());
                }
            }
            topics
        };
        for topic in ["hashtags", "tweets"] {
            producer.send_blocking(topic, "1", b"x", 0).expect("queued");
        }
        producer.flush_blocking().expect("delivered");
        assert_eq!(read(Duration::from_secs(3)), vec!["tweets"]);
        // 40 minutes behind: still paused.
        engine.apply(tweets, tweet(80 * MIN), now);
        pace(&config, &consumer, &engine, &mut paused);
        assert_eq!(paused, vec![hashtags]);
        assert!(read(Duration::from_secs(1)).is_empty());
        // 20 minutes behind: resumed, and its message is read.
        engine.apply(tweets, tweet(100 * MIN), now);
        pace(&config, &consumer, &engine, &mut paused);
        assert!(paused.is_empty());
        assert_eq!(read(Duration::from_secs(3)), vec!["hashtags"]);
    }
}

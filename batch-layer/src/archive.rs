//! `tweetlambda archive`: copies the `tweets` topic into the master dataset,
//! Parquet files partitioned by event date.
//!
//! ```text
//! MASTER/date=2021-08-29/tweets-p0-0-2862.parquet     rows of partition 0, offsets 0..=2862
//! MASTER/_commits/tweets-p0-0-2862.json                written last: the files above are complete
//! ```
//!
//! Files are immutable and named by topic, partition and offset range. A
//! batch of messages is written to temporary names, renamed, and then
//! committed by a small JSON file in `_commits/` that lists its files and
//! offsets: the archived offsets live with the data, not only in a consumer
//! group. On start, data files that no commit lists (left by a crash) are
//! removed and every partition resumes after its last committed offset, so
//! a re-run or a crash never duplicates or loses a message.
//!
//! One archive writes into a master dataset at a time: it holds
//! `MASTER/.archive.lock` (a second one fails at start). Data files, commit
//! files and their directories are fsynced before a commit counts. A
//! partition whose topic no longer holds the offset the archive resumes
//! from (retention deleted it, or the topic was re-created) is an error that
//! names the offsets: the archive never skips data silently.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::builder::{
    Float64Builder, Int32Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tweetlambda_core::admit::{admit_tweet, check_not_future};
use tweetlambda_core::TweetEvent;
use tweetlambda_kafka::{self as kafka, KafkaOptions};

use crate::error::{Error, Result};

/// Settings of the archive.
#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    /// Broker connection.
    pub kafka: KafkaOptions,
    /// The tweets topic.
    pub topic: String,
    /// Root of the master dataset.
    pub master: PathBuf,
    /// Stop at the end of the topic as it was at start.
    pub once: bool,
    /// Rows per partition that trigger writing a file set.
    pub batch_rows: usize,
    /// Longest time rows wait before they are written.
    pub batch_interval: Duration,
    /// A tweet whose event time is further ahead of the wall clock is not
    /// archived (the speed layer dead-letters it by the same rule).
    pub max_future_ms: i64,
    /// Small commits merged into one by compaction (0: no compaction); a
    /// commit is small below `batch_rows` rows ([`crate::compact`]).
    pub compact_fanout: usize,
}

/// What an archive run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// Messages archived.
    pub archived: u64,
    /// Messages that were not tweets (skipped, logged).
    pub skipped: u64,
    /// Parquet files written.
    pub files: u64,
    /// Files of an interrupted run that were removed at start.
    pub removed_leftovers: u64,
    /// Commits compaction merged into others.
    pub compacted: u64,
    /// Commits written.
    pub commits: u64,
}

/// A commit: the files that hold offsets `first..=last` of a partition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Commit {
    /// The topic archived.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// First offset in the files.
    pub first: i64,
    /// Last offset in the files.
    pub last: i64,
    /// Tweets written (messages that were not tweets are skipped).
    pub rows: u64,
    /// The files, relative to the master dataset's root.
    pub files: Vec<String>,
    /// 0 for a commit the archive wrote; one more than the highest level
    /// merged for a commit compaction wrote ([`crate::compact`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub level: u32,
    /// For each file compaction merged: the files the archive wrote whose
    /// rows it holds, in order. A date's input is named by these, so that
    /// compaction does not make the batch recompute it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, Vec<String>>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Commit {
    /// The files the archive wrote whose rows `file` holds: `file` itself
    /// unless compaction merged it.
    pub fn sources_of<'a>(&'a self, file: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let merged = self.sources.get(file);
        merged
            .into_iter()
            .flatten()
            .map(String::as_str)
            .chain(merged.is_none().then_some(file))
    }

    /// The name of a commit's JSON file, and the stem of its data files.
    pub(crate) fn stem(&self) -> String {
        format!(
            "{}-p{}-{}-{}",
            self.topic, self.partition, self.first, self.last
        )
    }
}

/// The commits of `topic` in the master dataset, ordered by partition and
/// offset. Only the files they list belong to the dataset.
pub fn read_commits(master: &Path, topic: &str) -> Result<Vec<Commit>> {
    Ok(read_all_commits(master, topic)?.live)
}

/// The commits of a topic: those in force, and those a compaction merged
/// whose removal is still pending.
pub(crate) struct Commits {
    /// In force, ordered by partition and offset.
    pub(crate) live: Vec<Commit>,
    /// Merged into a commit of `live` whose offsets contain theirs.
    pub(crate) superseded: Vec<Commit>,
}

pub(crate) fn read_all_commits(master: &Path, topic: &str) -> Result<Commits> {
    let mut commits = read_commit_files(master)?;
    commits.retain(|c| c.topic == topic);
    split_superseded(commits)
}

/// The topics the master dataset holds commits of (to name them when a
/// batch finds none of its own topic).
pub fn committed_topics(master: &Path) -> Result<std::collections::BTreeSet<String>> {
    Ok(read_commit_files(master)?
        .into_iter()
        .map(|c| c.topic)
        .collect())
}

/// Every commit file of the master dataset, of any topic.
fn read_commit_files(master: &Path) -> Result<Vec<Commit>> {
    let commits_dir = master.join("_commits");
    let mut commits = Vec::new();
    let entries = match fs::read_dir(&commits_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(commits),
        Err(e) => return Err(Error::io(&commits_dir)(e)),
    };
    for entry in entries {
        let path = entry.map_err(Error::io(&commits_dir))?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            // Removed since the listing: a merged commit a compaction
            // cleaned up (it does so only while no batch reads).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&path)(e)),
        };
        let commit: Commit = serde_json::from_str(&text)
            .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display())))?;
        commits.push(commit);
    }
    Ok(commits)
}

/// Separates the commits a compaction merged (their offsets lie within a
/// larger commit of the same partition) from those in force. Ranges that
/// overlap without one holding the other are corrupt.
fn split_superseded(mut commits: Vec<Commit>) -> Result<Commits> {
    // Per partition by first offset, the widest range first.
    commits.sort_by_key(|c| (c.partition, c.first, std::cmp::Reverse(c.last)));
    let mut live: Vec<Commit> = Vec::new();
    let mut superseded = Vec::new();
    for c in commits {
        match live.last() {
            Some(l) if l.partition == c.partition && c.first <= l.last => {
                if c.last > l.last {
                    return Err(Error::Corrupt(format!(
                        "commits {} and {} overlap",
                        l.stem(),
                        c.stem()
                    )));
                }
                superseded.push(c);
            }
            _ => live.push(c),
        }
    }
    Ok(Commits { live, superseded })
}

/// One archived row.
pub(crate) struct Row {
    pub(crate) offset: i64,
    pub(crate) tweet: TweetEvent,
}

/// The schema of the master dataset (documented in the README).
pub fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("tweet_id", DataType::Utf8, false),
        Field::new(
            "created_at",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("text", DataType::Utf8, false),
        Field::new("lang", DataType::Utf8, true),
        Field::new(
            "hashtags",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
        Field::new("user_id", DataType::Utf8, true),
        Field::new("retweet_count", DataType::Int64, true),
        Field::new("favorite_count", DataType::Int64, true),
        Field::new("retweet_of", DataType::Utf8, true),
        Field::new("quote_of", DataType::Utf8, true),
        Field::new("lat", DataType::Float64, true),
        Field::new("lon", DataType::Float64, true),
        Field::new("kafka_partition", DataType::Int32, false),
        Field::new("kafka_offset", DataType::Int64, false),
    ]))
}

/// Reads the commits: per partition, the last archived offset. Removes data
/// and temporary files that no commit lists.
fn recover(master: &Path, topic: &str, summary: &mut ArchiveSummary) -> Result<BTreeMap<i32, i64>> {
    let commits_dir = master.join("_commits");
    fs::create_dir_all(&commits_dir).map_err(Error::io(&commits_dir))?;
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    let mut listed: HashSet<PathBuf> = HashSet::new();
    let commits = read_all_commits(master, topic)?;
    for commit in &commits.live {
        let slot = last.entry(commit.partition).or_insert(commit.last);
        *slot = (*slot).max(commit.last);
    }
    // A merged commit's files stay until no batch reads them.
    for commit in commits.live.iter().chain(&commits.superseded) {
        listed.extend(commit.files.iter().map(|f| master.join(f)));
    }
    for entry in fs::read_dir(master).map_err(Error::io(master))? {
        let dir = entry.map_err(Error::io(master))?.path();
        if !dir.is_dir()
            || !dir
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("date="))
        {
            continue;
        }
        for file in fs::read_dir(&dir).map_err(Error::io(&dir))? {
            let path = file.map_err(Error::io(&dir))?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let ours = name.starts_with(&format!("{topic}-p"));
            if ours && (name.ends_with(".tmp") || !listed.contains(&path)) {
                tracing::warn!(file = %path.display(), "removing a file of an interrupted run");
                fs::remove_file(&path).map_err(Error::io(&path))?;
                summary.removed_leftovers += 1;
            }
        }
    }
    // The readers' lock file exists, so that a batch that may not write
    // here can still hold it.
    crate::compact::create_read_lock(master)?;
    crate::compact::remove_superseded(master, topic)?;
    Ok(last)
}

/// The archive's lock file in the master dataset.
pub(crate) const ARCHIVE_LOCK: &str = ".archive.lock";

/// Checks that a partition holding offsets `low..high` can be archived from
/// `from` without a gap.
fn check_resume(topic: &str, partition: i32, from: i64, low: i64, high: i64) -> Result<()> {
    let gap = |detail: String| {
        Err(Error::Gap {
            topic: topic.to_string(),
            partition,
            detail,
        })
    };
    if from > high {
        return gap(format!(
            "the master dataset holds offsets up to {} but the partition ends at {high}: \
             was the topic deleted and created again? Archive it into another master dataset",
            from - 1
        ));
    }
    if from < low {
        return gap(format!(
            "offsets {from}..{} were deleted from the topic (retention) before they were archived; \
             its first offset is {low}",
            low - 1
        ));
    }
    Ok(())
}

/// Writes one partition's rows as one file per event date, then commits them.
fn write_batch(
    master: &Path,
    topic: &str,
    partition: i32,
    rows: &[Row],
    summary: &mut ArchiveSummary,
) -> Result<()> {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(());
    };
    let (first, last) = (first.offset, last.offset);
    let mut by_date: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        by_date
            .entry(r.tweet.created_at.format("%Y-%m-%d").to_string())
            .or_default()
            .push(r);
    }
    let stem = format!("{topic}-p{partition}-{first}-{last}");
    let mut files = Vec::new();
    for (date, rows) in by_date {
        let dir = master.join(format!("date={date}"));
        fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        let relative = format!("date={date}/{stem}.parquet");
        let path = master.join(&relative);
        let tmp = path.with_extension("parquet.tmp");
        write_parquet(&tmp, partition, &rows)?;
        fs::rename(&tmp, &path).map_err(Error::io(&path))?;
        crate::manifest::sync_dir(&dir)?;
        files.push(relative);
        summary.files += 1;
    }
    write_commit(
        master,
        &Commit {
            topic: topic.to_string(),
            partition,
            first,
            last,
            rows: rows.len() as u64,
            files,
            level: 0,
            sources: BTreeMap::new(),
        },
    )?;
    summary.archived += rows.len() as u64;
    summary.commits += 1;
    Ok(())
}

/// Writes a commit's JSON file (the step that makes its data files count),
/// fsynced with its directory.
pub(crate) fn write_commit(master: &Path, commit: &Commit) -> Result<()> {
    let dir = master.join("_commits");
    let path = dir.join(format!("{}.json", commit.stem()));
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(commit).map_err(|e| Error::Corrupt(e.to_string()))?;
    let mut file = fs::File::create(&tmp).map_err(Error::io(&tmp))?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(Error::io(&tmp))?;
    file.sync_all().map_err(Error::io(&tmp))?;
    fs::rename(&tmp, &path).map_err(Error::io(&path))?;
    crate::manifest::sync_dir(&dir)
}

/// How the master dataset's Parquet files are written.
pub(crate) fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build()
}

pub(crate) fn write_parquet(path: &Path, partition: i32, rows: &[&Row]) -> Result<()> {
    let mut id = StringBuilder::new();
    let mut created = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let mut text = StringBuilder::new();
    let mut lang = StringBuilder::new();
    let mut hashtags = ListBuilder::new(StringBuilder::new());
    let mut user = StringBuilder::new();
    let mut retweets = Int64Builder::new();
    let mut likes = Int64Builder::new();
    let mut retweet_of = StringBuilder::new();
    let mut quote_of = StringBuilder::new();
    let mut lat = Float64Builder::new();
    let mut lon = Float64Builder::new();
    let mut kafka_partition = Int32Builder::new();
    let mut kafka_offset = Int64Builder::new();
    for r in rows {
        let t = &r.tweet;
        id.append_value(&t.id);
        created.append_value(t.created_at.timestamp_millis());
        text.append_value(&t.text);
        lang.append_option(t.lang.as_deref());
        for h in &t.hashtags {
            hashtags.values().append_value(h);
        }
        hashtags.append(true);
        user.append_option(t.user.as_ref().and_then(|u| u.id.as_deref()));
        retweets.append_option(t.retweet_count);
        likes.append_option(t.favorite_count);
        retweet_of.append_option(t.retweet_of.as_deref());
        quote_of.append_option(t.quote_of.as_deref());
        lat.append_option(t.geo.map(|g| g.lat));
        lon.append_option(t.geo.map(|g| g.lon));
        kafka_partition.append_value(partition);
        kafka_offset.append_value(r.offset);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(created.finish()),
        Arc::new(text.finish()),
        Arc::new(lang.finish()),
        Arc::new(hashtags.finish()),
        Arc::new(user.finish()),
        Arc::new(retweets.finish()),
        Arc::new(likes.finish()),
        Arc::new(retweet_of.finish()),
        Arc::new(quote_of.finish()),
        Arc::new(lat.finish()),
        Arc::new(lon.finish()),
        Arc::new(kafka_partition.finish()),
        Arc::new(kafka_offset.finish()),
    ];
    let batch =
        RecordBatch::try_new(schema(), columns).map_err(|e| Error::Corrupt(e.to_string()))?;
    let file = fs::File::create(path).map_err(Error::io(path))?;
    let mut writer = ArrowWriter::try_new(file, schema(), Some(writer_properties()))
        .map_err(|e| Error::Parquet(path.display().to_string(), e.to_string()))?;
    writer
        .write(&batch)
        .map_err(|e| Error::Parquet(path.display().to_string(), e.to_string()))?;
    let file = writer
        .into_inner()
        .map_err(|e| Error::Parquet(path.display().to_string(), e.to_string()))?;
    file.sync_all().map_err(Error::io(path))
}

/// Archives until the end of the topic (`once`) or until `shutdown`.
pub async fn run(
    config: &ArchiveConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<ArchiveSummary> {
    kafka::check_reachable(&config.kafka, Duration::from_secs(10)).await?;
    let ends = kafka::end_offsets(&config.kafka, &[&config.topic]).await?;
    if ends.is_empty() {
        return Err(Error::Config(format!(
            "topic {:?} does not exist",
            config.topic
        )));
    }
    let config = config.clone();
    tokio::task::spawn_blocking(move || archive_loop(&config, ends, &shutdown))
        .await
        .map_err(|e| Error::Config(format!("archive thread failed: {e}")))?
}

fn archive_loop(
    config: &ArchiveConfig,
    ends: kafka::Offsets,
    shutdown: &watch::Receiver<bool>,
) -> Result<ArchiveSummary> {
    let mut summary = ArchiveSummary::default();
    fs::create_dir_all(&config.master).map_err(Error::io(&config.master))?;
    // Before recovery: another archive's renamed but uncommitted files are
    // not leftovers of a crash.
    let _lock = crate::manifest::lock_file(&config.master, ARCHIVE_LOCK).map_err(|e| match e {
        Error::Locked(_) => Error::ArchiveLocked(config.master.display().to_string()),
        e => e,
    })?;
    let done = recover(&config.master, &config.topic, &mut summary)?;
    // The backlog first; then a pass only once enough commits were written
    // to form a run (merges within a pass cascade by themselves).
    let mut compacted_at = None;
    compact(config, &mut summary, &mut compacted_at);
    let consumer: BaseConsumer = config
        .kafka
        .client_config()
        .set("group.id", "tweetlambda-archive")
        .set("enable.auto.commit", "false")
        // An offset the topic no longer holds is an error, never a jump.
        .set("auto.offset.reset", "error")
        .create()
        .map_err(|e| Error::Kafka(format!("create the consumer: {e}")))?;
    let mut assignment = TopicPartitionList::new();
    // The end of each partition at start (for --once) and where to resume.
    let mut remaining: BTreeMap<i32, i64> = BTreeMap::new();
    for key in ends.keys() {
        let Some((_, p)) = kafka::split_key(key) else {
            continue;
        };
        let (low, high) = consumer
            .fetch_watermarks(&config.topic, p, Duration::from_secs(10))
            .map_err(|e| Error::Kafka(format!("offsets of {}:{p}: {e}", config.topic)))?;
        let from = match done.get(&p) {
            Some(last) => {
                check_resume(&config.topic, p, last + 1, low, high)?;
                last + 1
            }
            // Never archived: from the first offset the topic still holds.
            None => {
                if low > 0 {
                    tracing::warn!(
                        partition = p,
                        "offsets 0..{} were deleted from the topic before any archive; starting at {low}",
                        low - 1
                    );
                }
                low
            }
        };
        assignment
            .add_partition_offset(&config.topic, p, Offset::Offset(from))
            .map_err(|e| Error::Kafka(format!("assign: {e}")))?;
        if ends[key] > from {
            remaining.insert(p, ends[key]);
        }
        tracing::info!(partition = p, from, "archiving");
    }
    consumer
        .assign(&assignment)
        .map_err(|e| Error::Kafka(format!("assign: {e}")))?;
    let mut buffers: BTreeMap<i32, Vec<Row>> = BTreeMap::new();
    let mut last_write = Instant::now();
    loop {
        if *shutdown.borrow() || (config.once && remaining.is_empty()) {
            break;
        }
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let m = message.map_err(|e| match e.rdkafka_error_code() {
                // Retention overtook the archive while it ran.
                Some(rdkafka::types::RDKafkaErrorCode::OffsetOutOfRange) => Error::Kafka(format!(
                    "read {}: the next offsets to archive were deleted from the topic (retention) \
                     while the archive ran ({e}); what is committed stays, nothing was skipped",
                    config.topic
                )),
                _ => Error::Kafka(format!("read {}: {e}", config.topic)),
            })?;
            let (p, offset) = (m.partition(), m.offset());
            let wall_ms = chrono::Utc::now().timestamp_millis();
            match decode_tweet(m.payload()).and_then(|t| {
                check_not_future(
                    t.created_at.timestamp_millis(),
                    wall_ms,
                    config.max_future_ms,
                )
                .map_err(|e| e.to_string())?;
                Ok(t)
            }) {
                Ok(tweet) => buffers.entry(p).or_default().push(Row { offset, tweet }),
                Err(reason) => {
                    summary.skipped += 1;
                    tracing::warn!(partition = p, offset, "not archived: {reason}");
                }
            }
            if remaining.get(&p).is_some_and(|end| offset + 1 >= *end) {
                remaining.remove(&p);
            }
            if buffers
                .get(&p)
                .is_some_and(|b| b.len() >= config.batch_rows)
            {
                if let Some(rows) = buffers.remove(&p) {
                    write_batch(&config.master, &config.topic, p, &rows, &mut summary)?;
                }
            }
        }
        if last_write.elapsed() >= config.batch_interval {
            for (p, rows) in std::mem::take(&mut buffers) {
                write_batch(&config.master, &config.topic, p, &rows, &mut summary)?;
            }
            compact(config, &mut summary, &mut compacted_at);
            last_write = Instant::now();
        }
    }
    for (p, rows) in std::mem::take(&mut buffers) {
        write_batch(&config.master, &config.topic, p, &rows, &mut summary)?;
    }
    compact(config, &mut summary, &mut compacted_at);
    Ok(summary)
}

/// Merges small commits, if compaction is on (the archive's lock is held)
/// and `fanout` commits were written since the pass at `compacted_at` (a
/// count of commits; none: no pass yet). Failures are logged: archiving
/// goes on.
fn compact(config: &ArchiveConfig, summary: &mut ArchiveSummary, compacted_at: &mut Option<u64>) {
    let due = compacted_at.is_none_or(|at| summary.commits - at >= config.compact_fanout as u64);
    if config.compact_fanout < 2 || !due {
        return;
    }
    *compacted_at = Some(summary.commits);
    let done = crate::compact::compact(
        &config.master,
        &config.topic,
        crate::compact::CompactConfig {
            fanout: config.compact_fanout,
            small_rows: config.batch_rows as u64,
        },
    );
    // Archiving goes on without it: what is committed stays as it is.
    match done {
        Ok(done) => summary.compacted += done.merged,
        Err(e) => tracing::warn!("compaction failed, archiving goes on: {e}"),
    }
}

/// Writes tweets straight into the master dataset as if archived from a
/// topic of `partitions` partitions (partition = id modulo partitions,
/// offsets counted per partition), `rows_per_file` rows per commit: for
/// benchmarks of the batch job at scales the broker would take long to
/// carry.
pub fn write_tweets<I>(
    master: &Path,
    topic: &str,
    partitions: i32,
    rows_per_file: usize,
    tweets: I,
) -> Result<ArchiveSummary>
where
    I: IntoIterator<Item = TweetEvent>,
{
    let mut summary = ArchiveSummary::default();
    let partitions = partitions.max(1);
    let mut done = recover(master, topic, &mut summary)?;
    let mut buffers: BTreeMap<i32, Vec<Row>> = BTreeMap::new();
    for tweet in tweets {
        let p = tweet
            .id
            .parse::<u64>()
            .map_or(0, |id| (id % partitions as u64) as i32);
        let offset = done.get(&p).map_or(0, |last| last + 1);
        done.insert(p, offset);
        let rows = buffers.entry(p).or_default();
        rows.push(Row { offset, tweet });
        if rows.len() >= rows_per_file.max(1) {
            if let Some(rows) = buffers.remove(&p) {
                write_batch(master, topic, p, &rows, &mut summary)?;
            }
        }
    }
    for (p, rows) in buffers {
        write_batch(master, topic, p, &rows, &mut summary)?;
    }
    Ok(summary)
}

/// Reads a tweets-topic message by the admission rule the speed layer
/// applies too ([`tweetlambda_core::admit`]), so that both layers count the
/// same tweets; the archived row is the normalised tweet.
fn decode_tweet(payload: Option<&[u8]>) -> std::result::Result<TweetEvent, String> {
    admit_tweet(payload)
        .map(|t| t.to_event())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_point_the_topic_no_longer_holds_is_a_named_gap() {
        assert!(
            check_resume("tweets", 0, 0, 0, 0).is_ok(),
            "empty topic, nothing archived"
        );
        assert!(
            check_resume("tweets", 0, 100, 0, 100).is_ok(),
            "archived to the end"
        );
        assert!(check_resume("tweets", 0, 100, 40, 250).is_ok());
        let e = check_resume("tweets", 2, 100, 250, 900).expect_err("retention");
        assert_eq!(
            e.to_string(),
            "gap in tweets partition 2: offsets 100..249 were deleted from the topic (retention) \
             before they were archived; its first offset is 250; nothing was archived (the master dataset is unchanged)"
        );
        let e = check_resume("tweets", 1, 1000, 0, 10).expect_err("re-created");
        assert!(
            e.to_string()
                .contains("holds offsets up to 999 but the partition ends at 10"),
            "{e}"
        );
    }
}

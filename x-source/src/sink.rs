//! Where the source's tweets go: the `tweets` and `hashtags` topics exactly
//! as the replay publishes them (the same types, the same producer), the
//! dead-letter topic, and, with `--mysql-url`, the MySQL schema.
//!
//! Nothing is published twice: a tweet already sent by this run (a stream
//! reconnection, overlapping pages) is skipped, and so is what a stopped
//! run sent after its last checkpoint, read back at start.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use metrics::counter;
use serde_json::Value;
use tweetlambda_core::messages::DeadLetter;
use tweetlambda_kafka::{self as kafka, KafkaOptions, Offsets, Producer, TopicSpec};
use tweetlambda_replayer::load::{LoadSummary, Record, Writer};
pub use tweetlambda_replayer::replay::Topics;
use tweetlambda_replayer::replay::{read_back, Published};

use crate::convert;
use crate::error::{Error, Result};
use crate::state::{State, StateLock};

/// Where to write.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// The broker.
    pub kafka: KafkaOptions,
    /// The topics.
    pub topics: Topics,
    /// Partitions of the topics when they are created.
    pub partitions: i32,
    /// Also store every tweet in this MySQL database.
    pub mysql_url: Option<String>,
}

/// What the sink did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tweets published.
    pub tweets: u64,
    /// Hashtag messages published.
    pub hashtags: u64,
    /// Tweets skipped because this run had published them already.
    pub duplicates: u64,
    /// Tweets skipped because a stopped run had published them.
    pub already_published: u64,
    /// Dead letters published.
    pub dead_letters: u64,
    /// Tweets newly stored in MySQL.
    pub stored: u64,
}

/// The last `capacity` tweet ids published, for skipping repeats.
struct RecentIds {
    capacity: usize,
    set: HashSet<i64>,
    order: VecDeque<i64>,
}

impl RecentIds {
    fn new(capacity: usize) -> RecentIds {
        RecentIds {
            capacity,
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// The last `n` ids, oldest first.
    fn last(&self, n: usize) -> Vec<i64> {
        self.order
            .iter()
            .skip(self.order.len().saturating_sub(n))
            .copied()
            .collect()
    }

    /// `false` when the id is already there.
    fn insert(&mut self, id: i64) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// Tweet ids remembered for skipping repeats: a stream reconnection
/// re-sends at most the last few seconds, far fewer.
const RECENT_IDS: usize = 200_000;

/// The topics (and database) tweets are written to.
pub struct Sink {
    producer: Producer,
    kafka: KafkaOptions,
    topics: Topics,
    recent: RecentIds,
    before_restart: HashSet<Published>,
    mysql: Option<sqlx::MySqlPool>,
    to_store: Vec<Record>,
    /// What was done so far.
    pub counts: Counts,
}

impl Sink {
    /// Checks the broker (and MySQL), creates the topics if needed.
    pub async fn open(options: &SinkOptions) -> Result<Sink> {
        let mysql = match &options.mysql_url {
            Some(url) => {
                let pool = tweetlambda_replayer::mysql::connect(url, 2).await?;
                tweetlambda_replayer::mysql::migrate(&pool).await?;
                Some(pool)
            }
            None => None,
        };
        kafka::check_reachable(&options.kafka, Duration::from_secs(10)).await?;
        let t = &options.topics;
        let specs: Vec<TopicSpec> = [&t.tweets, &t.hashtags, &t.dead_letters]
            .iter()
            .map(|name| TopicSpec::new(name.as_str(), options.partitions.max(1)))
            .collect();
        kafka::ensure_topics(&options.kafka, &specs).await?;
        Ok(Sink {
            producer: Producer::new(&options.kafka)?,
            kafka: options.kafka.clone(),
            topics: options.topics.clone(),
            recent: RecentIds::new(RECENT_IDS),
            before_restart: HashSet::new(),
            mysql,
            to_store: Vec::new(),
            counts: Counts::default(),
        })
    }

    /// Takes the lock of a source's state, reads the state and opens the
    /// sink: a fresh state starts at the end of the topics; a saved one
    /// has what was published after its checkpoint read back, and its
    /// recent tweet ids skipped.
    pub async fn start(
        options: &SinkOptions,
        state_dir: &std::path::Path,
        source: &str,
    ) -> Result<(StateLock, State, Sink)> {
        let lock = StateLock::take(state_dir, source)?;
        let mut state = State::load(state_dir, source)?;
        let mut sink = Sink::open(options).await?;
        if state.offsets.is_empty() {
            state.offsets = sink.end_offsets().await?;
            state.save(state_dir)?;
        } else {
            sink.skip_ids(&state.recent_ids);
            let n = sink.remember_published(&state.offsets).await?;
            tracing::info!(
                since_id = state.since_id.as_deref(),
                pass = ?state.pass,
                read_back = n,
                "resuming from the checkpoint"
            );
        }
        Ok((lock, state, sink))
    }

    /// The current end of the topics written: where a checkpoint taken
    /// right after a flush may start reading back (everything before it is
    /// either this source's, delivered, or another producer's).
    pub async fn end_offsets(&self) -> Result<Offsets> {
        let t = &self.topics;
        let topics = [
            t.tweets.as_str(),
            t.hashtags.as_str(),
            t.dead_letters.as_str(),
        ];
        Ok(kafka::end_offsets(&self.kafka, &topics).await?)
    }

    /// Reads what was published after `offsets` (the last checkpoint) so
    /// that it is not published again; returns how many messages.
    pub async fn remember_published(&mut self, offsets: &Offsets) -> Result<usize> {
        self.before_restart = read_back(&self.kafka, &self.topics, offsets).await?;
        Ok(self.before_restart.len())
    }

    /// The ids of the last `n` tweets published (or skipped), oldest first.
    pub fn recent_ids(&self, n: usize) -> Vec<i64> {
        self.recent.last(n)
    }

    /// Tweets to skip if they come again (from an earlier run's state).
    pub fn skip_ids(&mut self, ids: &[i64]) {
        for id in ids {
            self.recent.insert(*id);
        }
    }

    /// Publishes the tweets of a body (a search page or a stream line);
    /// dead-letters those that cannot be read. Returns the tweets read.
    pub async fn publish(&mut self, endpoint: &str, body: &Value) -> Result<u64> {
        let mut read = 0;
        for tweet in convert::tweets(body) {
            match tweet {
                Ok(record) => {
                    read += 1;
                    self.tweet(record).await?;
                }
                Err(rejected) => {
                    self.dead_letter(
                        endpoint,
                        rejected.id.as_deref(),
                        &rejected.reason,
                        rejected.raw.as_bytes(),
                    )
                    .await?;
                }
            }
        }
        Ok(read)
    }

    async fn tweet(&mut self, record: Record) -> Result<()> {
        if !self.recent.insert(record.tweet_id) {
            self.counts.duplicates += 1;
            counter!("x_duplicates_skipped_total").increment(1);
            return Ok(());
        }
        let event = record.to_event();
        let timestamp = event.created_at.timestamp_millis();
        let tweet_key = Published::Tweet(event.id.clone());
        if self.before_restart.contains(&tweet_key) {
            self.counts.already_published += 1;
        } else {
            let payload = serde_json::to_vec(&event).unwrap_or_default();
            self.producer
                .send(&self.topics.tweets, &event.id, &payload, timestamp)
                .await?;
            self.counts.tweets += 1;
            counter!("x_tweets_published_total").increment(1);
        }
        for h in event.hashtag_events() {
            if self
                .before_restart
                .contains(&Published::Hashtag(h.tweet_id.clone(), h.hashtag.clone()))
            {
                continue;
            }
            let payload = serde_json::to_vec(&h).unwrap_or_default();
            self.producer
                .send(&self.topics.hashtags, &h.hashtag, &payload, timestamp)
                .await?;
            self.counts.hashtags += 1;
        }
        if self.mysql.is_some() {
            match record.check_columns() {
                Ok(()) => self.to_store.push(record),
                Err(why) => tracing::warn!(
                    tweet_id = record.tweet_id,
                    "published but not stored in MySQL: {why}"
                ),
            }
        }
        Ok(())
    }

    /// Publishes a dead letter for input that cannot be used.
    pub async fn dead_letter(
        &mut self,
        endpoint: &str,
        tweet_id: Option<&str>,
        reason: &str,
        input: &[u8],
    ) -> Result<()> {
        if let Some(id) = tweet_id {
            // Dead letters of a tweet are recognised after a restart; those
            // of a broken line or body have no identity to recognise.
            if self
                .before_restart
                .contains(&Published::DeadLetter(id.to_string()))
            {
                return Ok(());
            }
        }
        tracing::warn!(endpoint, tweet_id, reason, "dead-lettered");
        let letter = DeadLetter::x_api(endpoint, tweet_id, reason, input);
        let now = chrono::Utc::now().timestamp_millis();
        self.producer
            .send(
                &self.topics.dead_letters,
                &letter.key(),
                letter.to_json().as_bytes(),
                now,
            )
            .await?;
        self.counts.dead_letters += 1;
        counter!("x_dead_letters_total").increment(1);
        Ok(())
    }

    /// Stores the tweets published since the last flush in MySQL (when
    /// asked to), then waits until the broker acknowledged every message;
    /// returns the offsets after them: what a checkpoint may record.
    pub async fn flush(&mut self) -> Result<Offsets> {
        if let Some(pool) = &self.mysql {
            if !self.to_store.is_empty() {
                let mut writer = Writer::new(pool).await?;
                for record in self.to_store.drain(..) {
                    writer.push(record);
                }
                let mut summary = LoadSummary::default();
                writer.finish(&mut summary).await?;
                self.counts.stored += summary.inserted;
            }
        }
        self.producer.flush().await.map_err(Error::Kafka)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ids_forget_the_oldest_beyond_capacity() {
        let mut r = RecentIds::new(2);
        assert!(r.insert(1));
        assert!(!r.insert(1));
        assert!(r.insert(2));
        assert!(r.insert(3));
        assert!(r.insert(1), "1 was forgotten when 3 came");
        assert!(!r.insert(3));
        assert_eq!(r.last(5), vec![3, 1]);
        assert_eq!(r.last(1), vec![1]);
    }
}

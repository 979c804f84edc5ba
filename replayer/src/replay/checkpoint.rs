//! The replay checkpoint, kept in MySQL table `replay_checkpoints`.
//!
//! A checkpoint says: every tweet up to `position` (in replay order) has
//! been published and acknowledged, and at that moment the topics ended at
//! `offsets`. Messages after `offsets` may have been published after the
//! checkpoint by a replay that then died; a restart reads them back and
//! does not send them again, so every message is published exactly once.

use serde::{Deserialize, Serialize};
use sqlx::mysql::MySqlPool;
use sqlx::Row;

use crate::error::{Error, Result};
use crate::mysql::text_column;
use tweetlambda_kafka::Offsets;

/// Which part of the replay a checkpoint is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Publishing rows whose event time cannot be parsed to the dead-letter topic.
    DeadLetters,
    /// Publishing tweets in event-time order.
    Tweets,
    /// Finished.
    Done,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::DeadLetters => "dead_letters",
            Phase::Tweets => "tweets",
            Phase::Done => "done",
        }
    }

    fn parse(s: &str) -> Option<Phase> {
        match s {
            "dead_letters" => Some(Phase::DeadLetters),
            "tweets" => Some(Phase::Tweets),
            "done" => Some(Phase::Done),
            _ => None,
        }
    }
}

/// The settings a checkpoint belongs to; resuming with others is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Topic names.
    pub topics: super::Topics,
    /// `--from`, RFC 3339.
    pub from: Option<String>,
    /// `--to`, RFC 3339.
    pub to: Option<String>,
}

impl Settings {
    /// Why a checkpoint saved with `self` cannot be resumed with `wanted`,
    /// in words: each setting that differs, and the two ways forward.
    pub fn mismatch(&self, checkpoint: &str, wanted: &Settings) -> String {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "not set".into());
        let mut differences = Vec::new();
        let mut differ = |flag: &str, saved: String, now: String| {
            if saved != now {
                differences.push(format!("{flag} was {saved} and is {now} now"));
            }
        };
        let (a, b) = (&self.topics, &wanted.topics);
        differ("--tweets-topic", a.tweets.clone(), b.tweets.clone());
        differ("--hashtags-topic", a.hashtags.clone(), b.hashtags.clone());
        differ(
            "--dead-letter-topic",
            a.dead_letters.clone(),
            b.dead_letters.clone(),
        );
        differ("--from", show(&self.from), show(&wanted.from));
        differ("--to", show(&self.to), show(&wanted.to));
        format!(
            "checkpoint {checkpoint:?} belongs to a replay with other settings: {}. \
             Either pass --restart to publish everything again under this checkpoint, \
             or --checkpoint NAME to keep this replay apart from that one",
            differences.join("; ")
        )
    }
}

/// A position in replay order: (event time in ms, tweet id).
pub type Position = (i64, i64);

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Its name.
    pub name: String,
    /// What it belongs to.
    pub settings: Settings,
    /// Which phase the replay is in.
    pub phase: Phase,
    /// The last tweet published, in replay order.
    pub position: Option<Position>,
    /// Topic end offsets when it was taken.
    pub offsets: Offsets,
    /// Rows read up to it, over all runs.
    pub rows_read: i64,
}

impl Checkpoint {
    /// Reads the checkpoint called `name`, if there is one.
    pub async fn load(pool: &MySqlPool, name: &str) -> Result<Option<Checkpoint>> {
        let row = sqlx::query(
            "SELECT settings, phase, position_ms, position_tweet_id, offsets, rows_read \
             FROM replay_checkpoints WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(pool)
        .await
        .map_err(Error::mysql("read the replay checkpoint"))?;
        let Some(row) = row else { return Ok(None) };
        let corrupt = |what: &str| {
            Error::Config(format!(
                "replay checkpoint {name:?} is unreadable ({what}); start over with --restart"
            ))
        };
        let read = Error::mysql("read the replay checkpoint");
        let settings = text_column(&row, 0)?.unwrap_or_default();
        let phase = text_column(&row, 1)?.unwrap_or_default();
        let offsets = text_column(&row, 4)?.unwrap_or_default();
        let (position_ms, position_id, rows_read): (Option<i64>, Option<i64>, i64) =
            match (row.try_get(2), row.try_get(3), row.try_get(5)) {
                (Ok(a), Ok(b), Ok(c)) => (a, b, c),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Err(read(e)),
            };
        Ok(Some(Checkpoint {
            name: name.to_string(),
            settings: serde_json::from_str(&settings).map_err(|_| corrupt("settings"))?,
            phase: Phase::parse(&phase).ok_or_else(|| corrupt("phase"))?,
            position: position_ms.zip(position_id),
            offsets: serde_json::from_str(&offsets).map_err(|_| corrupt("offsets"))?,
            rows_read,
        }))
    }

    /// Writes (creates or replaces) the checkpoint.
    pub async fn save(&self, pool: &MySqlPool) -> Result<()> {
        let settings =
            serde_json::to_string(&self.settings).map_err(|e| Error::Config(e.to_string()))?;
        let offsets =
            serde_json::to_string(&self.offsets).map_err(|e| Error::Config(e.to_string()))?;
        sqlx::query(
            "INSERT INTO replay_checkpoints (name, settings, phase, position_ms, position_tweet_id, offsets, rows_read) \
             VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON DUPLICATE KEY UPDATE settings = VALUES(settings), phase = VALUES(phase), \
             position_ms = VALUES(position_ms), position_tweet_id = VALUES(position_tweet_id), \
             offsets = VALUES(offsets), rows_read = VALUES(rows_read)",
        )
        .bind(&self.name)
        .bind(settings)
        .bind(self.phase.as_str())
        .bind(self.position.map(|p| p.0))
        .bind(self.position.map(|p| p.1))
        .bind(offsets)
        .bind(self.rows_read)
        .execute(pool)
        .await
        .map_err(Error::mysql("write the replay checkpoint"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_says_in_words_what_differs_and_what_to_do() {
        let saved = Settings {
            topics: super::super::Topics::default(),
            from: None,
            to: None,
        };
        let mut wanted = saved.clone();
        wanted.topics.tweets = "other".into();
        wanted.from = Some("2021-08-29T00:00:00Z".into());
        let text = saved.mismatch("replay", &wanted);
        assert!(!text.contains("Settings {"), "no Debug dump: {text}");
        assert!(
            text.contains("--tweets-topic was tweets and is other now"),
            "{text}"
        );
        assert!(
            text.contains("--from was not set and is 2021-08-29T00:00:00Z now"),
            "{text}"
        );
        assert!(
            !text.contains("--hashtags-topic"),
            "only what differs: {text}"
        );
        assert!(text.contains("--restart") && text.contains("--checkpoint NAME"));
    }
}

//! Settings of the speed layer.

use std::net::SocketAddr;
use std::time::Duration;

use tweetlambda_kafka::KafkaOptions;

/// A rolling window: its name (`5m`) and size. Windows end on bucket
/// boundaries and advance one bucket at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpec {
    /// Name used in messages, e.g. `5m`.
    pub name: String,
    /// Size in milliseconds, a multiple of the bucket size.
    pub size_ms: i64,
}

impl WindowSpec {
    /// Parses a window size in the one duration grammar
    /// ([`tweetlambda_core::duration`]): `30s`, `5m`, `1h`, `1d`.
    pub fn parse(s: &str) -> Result<WindowSpec, String> {
        let ms = tweetlambda_core::parse_positive_ms(s).map_err(|e| e.to_string())?;
        Ok(WindowSpec {
            name: s.trim().to_string(),
            size_ms: ms,
        })
    }
}

/// Topic names the speed layer reads and writes.
#[derive(Debug, Clone)]
pub struct SpeedTopics {
    /// Input: tweets (key tweet id).
    pub tweets: String,
    /// Input: hashtags (key hashtag).
    pub hashtags: String,
    /// Internal: retweets re-keyed by the retweeted tweet, so that the
    /// instance owning a tweet also counts its retweets.
    pub retweets: String,
    /// Output: rolling top hashtags (key window name).
    pub top_hashtags: String,
    /// Output: rolling top tweets (key window name).
    pub top_tweets: String,
    /// Output: the realtime view, per-bucket partial aggregates (the newest
    /// value of a key counts).
    pub view: String,
    /// Output: input messages that could not be read, with the reason.
    pub dead_letters: String,
}

impl Default for SpeedTopics {
    fn default() -> Self {
        SpeedTopics {
            tweets: "tweets".into(),
            hashtags: "hashtags".into(),
            retweets: "speed.retweets".into(),
            top_hashtags: "top_hashtags".into(),
            top_tweets: "top_tweets".into(),
            view: "speed.view".into(),
            dead_letters: "speed.dead-letter".into(),
        }
    }
}

/// The longest window: far beyond any rolling top-N anyone asks for, and
/// well inside the range of event times.
pub const MAX_WINDOW_MS: i64 = 400 * 86_400_000;

/// Everything the speed layer needs.
#[derive(Debug, Clone)]
pub struct SpeedConfig {
    /// Broker connection.
    pub kafka: KafkaOptions,
    /// Topic names.
    pub topics: SpeedTopics,
    /// Consumer group shared by all instances.
    pub group_id: String,
    /// Bucket size in milliseconds.
    pub bucket_ms: i64,
    /// Rolling windows.
    pub windows: Vec<WindowSpec>,
    /// How far behind the newest event time an event may arrive and still count.
    pub allowed_lateness_ms: i64,
    /// Items per top-N message.
    pub top_n: usize,
    /// How often outputs are flushed and offsets committed.
    pub emit_interval: Duration,
    /// After this long without input, the input is taken as ended and every
    /// window up to the newest event is closed (final).
    pub idle_timeout: Duration,
    /// Where `/metrics` is served (Prometheus text format); none to disable.
    pub metrics_listen: Option<SocketAddr>,
    /// An event time further ahead of the wall clock than this is
    /// dead-lettered and moves no clock.
    pub max_future_ms: i64,
    /// Stop once the input is idle and every window is final (for demos and
    /// one-off runs over a finished replay).
    pub exit_when_idle: bool,
}

impl SpeedConfig {
    /// Checks the settings against each other.
    pub fn validate(&self) -> Result<(), String> {
        if self.bucket_ms <= 0 || self.bucket_ms > MAX_WINDOW_MS {
            return Err("--bucket must be positive and at most 400 days".into());
        }
        if self.windows.is_empty() {
            return Err("--windows needs at least one window".into());
        }
        for w in &self.windows {
            if w.size_ms > MAX_WINDOW_MS {
                return Err(format!("window {} is longer than 400 days", w.name));
            }
            if w.size_ms % self.bucket_ms != 0 {
                return Err(format!(
                    "window {} is not a multiple of the bucket size",
                    w.name
                ));
            }
        }
        if self.top_n == 0 {
            return Err("--top must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse() {
        assert_eq!(WindowSpec::parse("5m").map(|w| w.size_ms), Ok(300_000));
        assert_eq!(WindowSpec::parse("1h").map(|w| w.size_ms), Ok(3_600_000));
        assert!(WindowSpec::parse("0m").is_err());
        assert!(WindowSpec::parse("5 minutes").is_err());
        assert!(WindowSpec::parse("m").is_err());
    }
}

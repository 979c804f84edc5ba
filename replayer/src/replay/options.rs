//! What a replay publishes, where, and how fast.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use tweetlambda_kafka::KafkaOptions;

/// Topic names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Topics {
    /// Tweets, keyed by tweet id.
    pub tweets: String,
    /// One message per distinct hashtag of a tweet, keyed by hashtag.
    pub hashtags: String,
    /// Rows that could not be replayed, with the reason.
    pub dead_letters: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            tweets: "tweets".into(),
            hashtags: "hashtags".into(),
            dead_letters: "tweets.dead-letter".into(),
        }
    }
}

/// Pacing of a replay relative to the gaps between event times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// As fast as MySQL and the broker allow.
    Max,
    /// `N` times real time: a gap of N seconds of event time takes 1 s.
    Factor(f64),
}

/// The slowest pacing: one second of event time takes 1,000 s.
pub const MIN_FACTOR: f64 = 0.001;
/// The fastest factor; beyond it, use `max`.
pub const MAX_FACTOR: f64 = 1_000_000.0;

impl FromStr for Speed {
    type Err = String;

    /// Accepts `max`, `1x`, `60x`, `0.5x` (or the bare number).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        let number = s.strip_suffix(['x', 'X']).unwrap_or(s);
        match number.parse::<f64>() {
            Ok(f) if (MIN_FACTOR..=MAX_FACTOR).contains(&f) => Ok(Speed::Factor(f)),
            _ => Err(format!(
                "invalid speed {s:?}: use `max` or a factor from {MIN_FACTOR}x to {MAX_FACTOR}x such as `1x` or `60x`"
            )),
        }
    }
}

/// Everything a replay needs.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// MySQL URL of the database holding the tweets.
    pub mysql_url: String,
    /// Broker connection.
    pub kafka: KafkaOptions,
    /// Topic names.
    pub topics: Topics,
    /// Partitions of topics that the replay creates (existing topics keep theirs).
    pub partitions: i32,
    /// Pacing.
    pub speed: Speed,
    /// Replay tweets created at or after this time only.
    pub from: Option<DateTime<Utc>>,
    /// Replay tweets created before this time only.
    pub to: Option<DateTime<Utc>>,
    /// Name of the checkpoint that makes the replay resumable.
    pub checkpoint_name: String,
    /// Ignore an existing checkpoint and publish everything again.
    pub restart: bool,
    /// How often progress is made durable (flush, then checkpoint).
    pub checkpoint_interval: Duration,
    /// Rows read from MySQL per query.
    pub fetch_size: u32,
    /// How long after the broker first fails deliveries the replay keeps
    /// resuming from its checkpoint (zero: it stops at the first failure).
    pub retry_for: Duration,
    /// Show a progress bar on a terminal.
    pub progress: bool,
}

#[cfg(test)]
mod tests {
    use super::Speed;

    #[test]
    fn speeds_parse() {
        assert_eq!("max".parse(), Ok(Speed::Max));
        assert_eq!("1x".parse(), Ok(Speed::Factor(1.0)));
        assert_eq!("60X".parse(), Ok(Speed::Factor(60.0)));
        assert_eq!("0.5".parse(), Ok(Speed::Factor(0.5)));
        for bad in ["0x", "-2x", "fast", "", "NaNx", "1e-20x", "1e300x", "infx"] {
            assert!(bad.parse::<Speed>().is_err(), "{bad}");
        }
    }
}

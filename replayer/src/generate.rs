//! `tweetlambda generate`: synthetic tweets at scale, for benchmarks.
//!
//! Hashtags follow a Zipf distribution over a fixed vocabulary (a few tags
//! are everywhere, most are rare, as in real streams); the tweet rate has
//! bursts; a share of tweets are retweets of earlier ones, with retweet and
//! like counts. Deterministic for a given seed. Rows go through the same
//! writer as `tweetlambda load`, so the data looks like loaded data.

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

use crate::error::{Error, Result};
use crate::load::{LoadSummary, Record, Writer};

/// Shape of the synthetic data.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// MySQL URL.
    pub mysql_url: String,
    /// Number of tweets.
    pub tweets: u64,
    /// Event time of the first tweet.
    pub start: DateTime<Utc>,
    /// Average tweets per second of event time.
    pub rate_per_sec: f64,
    /// Number of distinct hashtags.
    pub vocabulary: u64,
    /// Zipf exponent of hashtag popularity.
    pub zipf_exponent: f64,
    /// Share of tweets that are retweets (0..1).
    pub retweet_share: f64,
    /// Random seed.
    pub seed: u64,
    /// Tweets per transaction.
    pub batch_size: usize,
}

/// Generates and writes the tweets; ids start after the largest id present.
pub async fn run(options: &GenerateOptions) -> Result<LoadSummary> {
    if options.rate_per_sec.is_nan() || options.rate_per_sec <= 0.0 || options.vocabulary == 0 {
        return Err(Error::Config(
            "--rate and --vocabulary must be positive".into(),
        ));
    }
    let zipf = Zipf::new(options.vocabulary, options.zipf_exponent)
        .map_err(|e| Error::Config(format!("invalid --zipf {}: {e}", options.zipf_exponent)))?;
    let pool = crate::mysql::connect(&options.mysql_url, 2).await?;
    crate::mysql::migrate(&pool).await?;
    let first_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(tweet_id), 0) + 1 FROM tweets")
        .fetch_one(&pool)
        .await
        .map_err(Error::mysql("read the largest tweet id"))?;
    let mut writer = Writer::new(&pool).await?;
    let mut summary = LoadSummary::default();
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut t_ms = options.start.timestamp_millis() as f64;
    let mean_gap_ms = 1000.0 / options.rate_per_sec;
    for i in 0..options.tweets {
        let id = first_id + i as i64;
        // Bursts: one minute in ten runs at five times the rate.
        let minute = (t_ms / 60_000.0) as i64;
        let gap = if minute % 10 == 0 {
            mean_gap_ms / 5.0
        } else {
            mean_gap_ms * 1.44
        };
        t_ms += rng.gen::<f64>() * 2.0 * gap;
        let Some(event_time) = tweetlambda_core::time::from_millis(t_ms as i64) else {
            return Err(Error::Config(
                "generated times ran out of range; lower --tweets or raise --rate".into(),
            ));
        };
        let n_tags = match rng.gen_range(0..10) {
            0..=2 => 0,
            3..=6 => 1,
            7..=8 => 2,
            _ => 3,
        };
        let tags: Vec<String> = (0..n_tags)
            .map(|_| format!("tag{}", zipf.sample(&mut rng) as u64))
            .collect();
        let retweet_of = (i > 0 && rng.gen::<f64>() < options.retweet_share)
            .then(|| first_id + rng.gen_range(0..i) as i64);
        let text = match retweet_of {
            Some(orig) => format!(
                "RT @user{}: synthetic tweet {orig} {}",
                orig % 1000,
                hash_text(&tags)
            ),
            None => format!("synthetic tweet {id} {}", hash_text(&tags)),
        };
        let mut r = Record::new(
            id,
            text,
            format_seed_time(event_time),
            event_time,
            "synthetic",
        );
        r.set_hashtags(&tags);
        r.lang = Some("en".into());
        r.user_id = Some(rng.gen_range(1..100_000));
        r.retweet_count = Some(rng.gen_range(0..50));
        r.favorite_count = Some(rng.gen_range(0..200));
        r.retweet_of_id = retweet_of;
        summary.tweets += 1;
        writer.push(r);
        if writer.pending() >= options.batch_size {
            writer.flush(&mut summary).await?;
        }
    }
    writer.finish(&mut summary).await?;
    Ok(summary)
}

fn hash_text(tags: &[String]) -> String {
    tags.iter()
        .map(|t| format!("#{t}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes the time the way the seed dump does, in UTC.
fn format_seed_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

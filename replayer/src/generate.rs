//! `tweetlambda generate`: synthetic tweets at scale, for benchmarks.
//!
//! Hashtags follow a Zipf distribution over a fixed vocabulary (a few tags
//! are everywhere, most are rare, as in real streams); the tweet rate has
//! bursts; a share of tweets are retweets of earlier ones, with retweet and
//! like counts. Deterministic for a given seed. Rows go through the same
//! writer as `tweetlambda load`, so the data looks like loaded data; or,
//! for batch benchmarks, straight into the master dataset ([`Synthetic`]).

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use tweetlambda_core::{TweetEvent, User};

use crate::error::{Error, Result};
use crate::load::{LoadSummary, Record, Writer};

/// Shape of the synthetic data.
#[derive(Debug, Clone)]
pub struct Shape {
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
}

/// Settings of `tweetlambda generate` into MySQL.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// MySQL URL.
    pub mysql_url: String,
    /// What to generate.
    pub shape: Shape,
    /// Tweets per transaction.
    pub batch_size: usize,
}

/// One synthetic tweet.
#[derive(Debug, Clone)]
pub struct SyntheticTweet {
    /// Tweet id.
    pub id: i64,
    /// Creation time.
    pub event_time: DateTime<Utc>,
    /// Text (`RT @user…: ` and the original's text for a retweet).
    pub text: String,
    /// Hashtags as written (a tag may repeat).
    pub tags: Vec<String>,
    /// Author id.
    pub user_id: i64,
    /// Times retweeted, as a source would report it.
    pub retweet_count: i64,
    /// Times liked.
    pub favorite_count: i64,
    /// The retweeted tweet, for a retweet.
    pub retweet_of: Option<i64>,
}

impl SyntheticTweet {
    /// The tweet as the replayer publishes it on the `tweets` topic.
    pub fn event(&self) -> TweetEvent {
        TweetEvent {
            id: self.id.to_string(),
            created_at: self.event_time,
            text: self.text.clone(),
            lang: Some("en".into()),
            hashtags: tweetlambda_core::distinct_hashtags(&self.tags),
            user: Some(User {
                id: Some(self.user_id.to_string()),
                screen_name: None,
            }),
            retweet_count: Some(self.retweet_count),
            favorite_count: Some(self.favorite_count),
            retweet_of: self.retweet_of.map(|id| id.to_string()),
            quote_of: None,
            geo: None,
            place: None,
            country_code: None,
        }
    }
}

/// The synthetic tweets of a shape, ids from `first_id`: an iterator that
/// ends early with an error if times run out of range.
pub struct Synthetic {
    shape: Shape,
    zipf: Zipf<f64>,
    rng: StdRng,
    first_id: i64,
    next: u64,
    t_ms: f64,
}

impl Synthetic {
    /// Checks the shape and starts the sequence.
    pub fn new(shape: &Shape, first_id: i64) -> Result<Synthetic> {
        if shape.rate_per_sec.is_nan() || shape.rate_per_sec <= 0.0 || shape.vocabulary == 0 {
            return Err(Error::Config(
                "--rate and --vocabulary must be positive".into(),
            ));
        }
        let zipf = Zipf::new(shape.vocabulary, shape.zipf_exponent)
            .map_err(|e| Error::Config(format!("invalid --zipf {}: {e}", shape.zipf_exponent)))?;
        Ok(Synthetic {
            shape: shape.clone(),
            zipf,
            rng: StdRng::seed_from_u64(shape.seed),
            first_id,
            next: 0,
            t_ms: shape.start.timestamp_millis() as f64,
        })
    }
}

impl Iterator for Synthetic {
    type Item = Result<SyntheticTweet>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.shape.tweets {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let rng = &mut self.rng;
        let id = self.first_id + i as i64;
        let mean_gap_ms = 1000.0 / self.shape.rate_per_sec;
        // Bursts: one minute in ten runs at five times the rate.
        let minute = (self.t_ms / 60_000.0) as i64;
        let gap = if minute % 10 == 0 {
            mean_gap_ms / 5.0
        } else {
            mean_gap_ms * 1.44
        };
        self.t_ms += rng.gen::<f64>() * 2.0 * gap;
        let Some(event_time) = tweetlambda_core::time::from_millis(self.t_ms as i64) else {
            self.next = self.shape.tweets;
            return Some(Err(Error::Config(
                "generated times ran out of range; lower --tweets or raise --rate".into(),
            )));
        };
        let n_tags = match rng.gen_range(0..10) {
            0..=2 => 0,
            3..=6 => 1,
            7..=8 => 2,
            _ => 3,
        };
        let tags: Vec<String> = (0..n_tags)
            .map(|_| format!("tag{}", self.zipf.sample(rng) as u64))
            .collect();
        let retweet_of = (i > 0 && rng.gen::<f64>() < self.shape.retweet_share)
            .then(|| self.first_id + rng.gen_range(0..i) as i64);
        let text = match retweet_of {
            Some(orig) => format!(
                "RT @user{}: synthetic tweet {orig} {}",
                orig % 1000,
                hash_text(&tags)
            ),
            None => format!("synthetic tweet {id} {}", hash_text(&tags)),
        };
        Some(Ok(SyntheticTweet {
            id,
            event_time,
            text,
            tags,
            user_id: rng.gen_range(1..100_000),
            retweet_count: rng.gen_range(0..50),
            favorite_count: rng.gen_range(0..200),
            retweet_of,
        }))
    }
}

/// Generates and writes the tweets into MySQL; ids start after the largest
/// id present.
pub async fn run(options: &GenerateOptions) -> Result<LoadSummary> {
    let pool = crate::mysql::connect(&options.mysql_url, 2).await?;
    crate::mysql::migrate(&pool).await?;
    let first_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(tweet_id), 0) + 1 FROM tweets")
        .fetch_one(&pool)
        .await
        .map_err(Error::mysql("read the largest tweet id"))?;
    let tweets = Synthetic::new(&options.shape, first_id)?;
    let mut writer = Writer::new(&pool).await?;
    let mut summary = LoadSummary::default();
    for t in tweets {
        let t = t?;
        let mut r = Record::new(
            t.id,
            t.text,
            format_seed_time(t.event_time),
            t.event_time,
            "synthetic",
        );
        r.set_hashtags(&t.tags);
        r.lang = Some("en".into());
        r.user_id = Some(t.user_id);
        r.retweet_count = Some(t.retweet_count);
        r.favorite_count = Some(t.favorite_count);
        r.retweet_of_id = t.retweet_of;
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

//! `tweetlambda generate`: synthetic tweets into MySQL or straight into a
//! master dataset, for benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use tweetlambda_replayer::generate;

use crate::common::parse_time;

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// MySQL URL, `mysql://USER:PASSWORD@HOST:PORT/DATABASE`.
    #[arg(
        long,
        env = "TWEETLAMBDA_MYSQL_URL",
        hide_env_values = true,
        required_unless_present = "master"
    )]
    mysql_url: Option<String>,
    /// Write into this master dataset instead of MySQL (as if archived from
    /// a topic `tweets` of 3 partitions), for batch benchmarks.
    #[arg(long, conflicts_with = "mysql_url")]
    master: Option<PathBuf>,
    /// Number of tweets.
    #[arg(long, default_value_t = 1_000_000)]
    tweets: u64,
    /// Event time of the first tweet.
    #[arg(long, default_value = "2021-08-29T00:00:00Z", value_parser = parse_time)]
    start: DateTime<Utc>,
    /// Average tweets per second of event time.
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// Distinct hashtags.
    #[arg(long, default_value_t = 50_000)]
    vocabulary: u64,
    /// Zipf exponent of hashtag popularity.
    #[arg(long, default_value_t = 1.1)]
    zipf: f64,
    /// Share of tweets that are retweets.
    #[arg(long, default_value_t = 0.3)]
    retweets: f64,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Id of the first tweet (`--master` only): a second run into the same
    /// master dataset starts after the first one's ids, so that it adds
    /// new tweets (one more day, say) instead of duplicates.
    #[arg(long, default_value_t = 1, requires = "master", value_parser = clap::value_parser!(i64).range(1..))]
    first_id: i64,
    /// Tweets per partition and commit (`--master` only): small values make
    /// the many small files of a continuous archive.
    #[arg(long, default_value_t = 1_000_000, requires = "master", value_parser = clap::value_parser!(u64).range(1..))]
    rows_per_file: u64,
}

pub async fn run(a: GenerateArgs) -> anyhow::Result<ExitCode> {
    let shape = generate::Shape {
        tweets: a.tweets,
        start: a.start,
        rate_per_sec: a.rate,
        vocabulary: a.vocabulary,
        zipf_exponent: a.zipf,
        retweet_share: a.retweets.clamp(0.0, 1.0),
        seed: a.seed,
    };
    if let Some(master) = a.master {
        let tweets = generate::Synthetic::new(&shape, a.first_id)?;
        let mut failure = None;
        let events = tweets.map_while(|t| match t {
            Ok(t) => Some(t.event()),
            Err(e) => {
                failure = Some(e);
                None
            }
        });
        let s = tweetlambda_batch::archive::write_tweets(
            &master,
            "tweets",
            3,
            usize::try_from(a.rows_per_file).unwrap_or(usize::MAX),
            events,
        )
        .context("generate failed")?;
        if let Some(e) = failure {
            return Err(e).context("generate failed");
        }
        println!(
            "generate: {} tweets written to the master dataset in {} files",
            s.archived, s.files
        );
    } else {
        let options = generate::GenerateOptions {
            mysql_url: a.mysql_url.unwrap_or_default(),
            shape,
            batch_size: 5000,
        };
        let summary = generate::run(&options).await.context("generate failed")?;
        println!("generate: {summary}");
    }
    Ok(ExitCode::SUCCESS)
}

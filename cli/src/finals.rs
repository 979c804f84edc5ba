//! `tweetlambda finals`: the final top-N of each window instance the speed
//! layer published.

use std::process::ExitCode;

use clap::Args;
use tweetlambda_core::format_rfc3339;
use tweetlambda_core::messages::{HashtagCount, TopMessage, TweetRank};

use crate::common::KafkaArgs;

#[derive(Args, Debug)]
pub struct FinalsArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// The topic to read (`top_hashtags` or `top_tweets`, with the speed layer's prefix).
    #[arg(long, default_value = "top_hashtags")]
    topic: String,
    /// Only this window (e.g. `5m`).
    #[arg(long)]
    window: Option<String>,
    /// Items shown per window instance.
    #[arg(short = 'n', long, default_value_t = 5)]
    limit: usize,
}

pub async fn run(a: FinalsArgs, kafka_from_file: &[(String, String)]) -> anyhow::Result<ExitCode> {
    let kafka = a.kafka.options(kafka_from_file);
    let sample = tweetlambda_kafka::sample_topic(&kafka, &a.topic, usize::MAX).await?;
    for (_, key, value) in &sample.first {
        if a.window.as_ref().is_some_and(|w| w != key) {
            continue;
        }
        // Either kind of top-N message: the items tell which.
        let (instance, items): (TopMessage<()>, Vec<String>) =
            if let Ok(m) = serde_json::from_str::<TopMessage<HashtagCount>>(value) {
                let items = m
                    .items
                    .iter()
                    .map(|i| format!("#{} {}", i.hashtag, i.count));
                (envelope(&m), items.take(a.limit).collect())
            } else if let Ok(m) = serde_json::from_str::<TopMessage<TweetRank>>(value) {
                let items = m
                    .items
                    .iter()
                    .map(|i| format!("{} ({})", i.tweet_id, i.score));
                (envelope(&m), items.take(a.limit).collect())
            } else {
                continue;
            };
        if !instance.is_final {
            continue;
        }
        let printed = crate::common::print_line(format_args!(
            "{:>4} {} .. {}  {}",
            key,
            format_rfc3339(instance.start),
            format_rfc3339(instance.end),
            items.join(", ")
        ));
        if !printed {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The message without its items.
fn envelope<I>(m: &TopMessage<I>) -> TopMessage<()> {
    TopMessage {
        window: m.window.clone(),
        start: m.start,
        end: m.end,
        is_final: m.is_final,
        watermark: m.watermark,
        items: Vec::new(),
    }
}

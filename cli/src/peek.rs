//! `tweetlambda peek`: count the messages of topics and show the first ones.

use std::process::ExitCode;

use clap::Args;

use crate::common::KafkaArgs;

#[derive(Args, Debug)]
pub struct PeekArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Topics to read.
    #[arg(required = true)]
    topics: Vec<String>,
    /// Messages to show per partition.
    #[arg(short = 'n', long, default_value_t = 1)]
    limit: usize,
}

pub async fn run(a: PeekArgs, kafka_from_file: &[(String, String)]) -> anyhow::Result<ExitCode> {
    let kafka = a.kafka.options(kafka_from_file);
    for topic in &a.topics {
        let sample = tweetlambda_kafka::sample_topic(&kafka, topic, a.limit).await?;
        let total: u64 = sample.counts.values().sum();
        let per: Vec<String> = sample
            .counts
            .iter()
            .map(|(p, n)| format!("p{p}={n}"))
            .collect();
        if !crate::common::print_line(format_args!(
            "{topic}: {total} messages ({})",
            per.join(" ")
        )) {
            break;
        }
        for (p, key, value) in &sample.first {
            if !crate::common::print_line(format_args!("  p{p} key={key} {value}")) {
                break;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

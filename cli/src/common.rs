//! What several commands share: broker and MySQL arguments, value parsers,
//! and the shutdown signal.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;
use tokio::sync::watch;
use tweetlambda_kafka::KafkaOptions;

/// A duration flag in the product's one grammar ([`tweetlambda_core::duration`]).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    tweetlambda_core::parse_duration(s).map_err(|e| e.to_string())
}

/// A duration flag in milliseconds (zero allowed).
pub(crate) fn parse_duration_ms(s: &str) -> Result<i64, String> {
    tweetlambda_core::parse_duration_ms(s).map_err(|e| e.to_string())
}

/// A size flag in milliseconds (bucket, window): longer than zero.
pub(crate) fn parse_positive_ms(s: &str) -> Result<i64, String> {
    tweetlambda_core::parse_positive_ms(s).map_err(|e| e.to_string())
}

#[derive(Args, Debug)]
pub(crate) struct MysqlArgs {
    /// MySQL URL, `mysql://USER:PASSWORD@HOST:PORT/DATABASE`.
    #[arg(long, env = "TWEETLAMBDA_MYSQL_URL", hide_env_values = true)]
    pub(crate) mysql_url: String,
}

/// The topics a source (the replay, the X source) writes, and their
/// partitions when it creates them.
#[derive(Args, Debug)]
pub(crate) struct TopicArgs {
    /// Topic for tweets (key: tweet id).
    #[arg(long, env = "TWEETLAMBDA_TWEETS_TOPIC", default_value = "tweets")]
    pub(crate) tweets_topic: String,
    /// Topic for hashtags (key: hashtag).
    #[arg(long, env = "TWEETLAMBDA_HASHTAGS_TOPIC", default_value = "hashtags")]
    pub(crate) hashtags_topic: String,
    /// Topic for input that cannot be used.
    #[arg(
        long,
        env = "TWEETLAMBDA_DEAD_LETTER_TOPIC",
        default_value = "tweets.dead-letter"
    )]
    pub(crate) dead_letter_topic: String,
    /// Partitions of the topics when they are created.
    #[arg(long, env = "TWEETLAMBDA_PARTITIONS", default_value_t = 3)]
    pub(crate) partitions: i32,
}

impl TopicArgs {
    pub(crate) fn topics(&self) -> tweetlambda_replayer::replay::Topics {
        tweetlambda_replayer::replay::Topics {
            tweets: self.tweets_topic.clone(),
            hashtags: self.hashtags_topic.clone(),
            dead_letters: self.dead_letter_topic.clone(),
        }
    }
}

/// A duration flag that must be longer than zero.
pub(crate) fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be longer than zero".into()),
        d => Ok(d),
    }
}

#[derive(Args, Debug)]
pub(crate) struct KafkaArgs {
    /// Kafka bootstrap servers, `HOST:PORT[,HOST:PORT…]`.
    #[arg(long, env = "TWEETLAMBDA_BROKERS", default_value = "127.0.0.1:9092")]
    pub(crate) brokers: String,
    /// A librdkafka property passed through as is, e.g.
    /// `-X security.protocol=SASL_SSL`; repeatable.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_property)]
    pub(crate) kafka_property: Vec<(String, String)>,
}

impl KafkaArgs {
    pub(crate) fn options(&self, from_file: &[(String, String)]) -> KafkaOptions {
        let mut properties = from_file.to_vec();
        properties.extend(self.kafka_property.iter().cloned());
        KafkaOptions {
            brokers: self.brokers.clone(),
            properties,
        }
    }
}

pub(crate) fn parse_property(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    tweetlambda_core::parse_event_time(s).map_err(|e| e.to_string())
}

/// A `--metrics-listen` value: `HOST:PORT`, or `none` (or empty) for no
/// metrics endpoint.
pub(crate) fn metrics_address(text: &str) -> anyhow::Result<Option<std::net::SocketAddr>> {
    match text {
        "" | "none" => Ok(None),
        addr => addr
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("--metrics-listen {addr:?} is not HOST:PORT or none")),
    }
}

/// A channel that turns true on Ctrl-C or SIGTERM.
pub(crate) fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                        let _ = tx.send(true);
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested: finishing the current batch and saving progress");
        let _ = tx.send(true);
    });
    rx
}

/// Writes one line to stdout; `false` once the reader is gone (`| head`
/// closed the pipe): the caller stops printing, and the command still
/// succeeds instead of panicking as `println!` does.
pub(crate) fn print_line(line: std::fmt::Arguments<'_>) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}") {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            false
        }
    }
}

pub(crate) fn is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(
            parse_duration("2").is_err(),
            "one grammar: the unit is required"
        );
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("1y").is_err());
    }

    #[test]
    fn metrics_addresses_parse_or_are_off() {
        assert_eq!(metrics_address("none").ok(), Some(None));
        assert_eq!(
            metrics_address("127.0.0.1:9465").ok().flatten(),
            "127.0.0.1:9465".parse().ok()
        );
        assert!(metrics_address("localhost").is_err());
    }

    #[test]
    fn properties_need_a_key() {
        assert_eq!(parse_property("a.b=c=d"), Ok(("a.b".into(), "c=d".into())));
        assert!(parse_property("=x").is_err());
        assert!(parse_property("novalue").is_err());
    }
}

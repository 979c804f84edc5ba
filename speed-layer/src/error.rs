//! What can stop the speed layer. Bad input never does: it is dead-lettered.

/// Why the speed layer stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is wrong; the message names it.
    #[error("{0}")]
    Config(String),
    /// A Kafka operation failed.
    #[error("Kafka: {0}")]
    Kafka(String),
    /// Broker setup or delivery failed.
    #[error(transparent)]
    Broker(#[from] tweetlambda_kafka::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

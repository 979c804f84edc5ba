//! What can stop the indexer, each with what to do about it.

/// An indexer error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is wrong.
    #[error("{0}")]
    Config(String),
    /// Elasticsearch cannot be reached at start.
    #[error("cannot reach Elasticsearch at {url} within {seconds} s ({cause}); is it running, and is --es-url right?")]
    Unreachable {
        /// The URL, without credentials.
        url: String,
        /// How long was waited.
        seconds: u64,
        /// The client's error.
        cause: String,
    },
    /// The index exists with a mapping the indexer cannot write to.
    #[error("index `{index}` exists with a mapping that conflicts with the indexer's: {}; delete the index or choose another with --index", conflicts.join("; "))]
    Mapping {
        /// The index.
        index: String,
        /// One line per field.
        conflicts: Vec<String>,
    },
    /// Elasticsearch answered a request with an error that retrying will
    /// not cure (authentication, a request too large, …).
    #[error("Elasticsearch refused {what}: {reason}")]
    Refused {
        /// The request.
        what: String,
        /// Status and Elasticsearch's reason.
        reason: String,
    },
    /// The broker.
    #[error(transparent)]
    Kafka(#[from] tweetlambda_kafka::Error),
    /// The broker, from the consumer.
    #[error("Kafka consumer: {0}")]
    Consumer(String),
    /// Kibana.
    #[error("{0}")]
    Kibana(String),
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

//! Errors of the Kafka client code. Each message says what failed and, where
//! there is one, what to do about it.

/// Why a broker operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The brokers could not be reached.
    #[error("cannot reach the Kafka brokers at {brokers}: {reason}. Is the broker running (scripts/services.sh up)?")]
    Connect {
        /// The bootstrap servers tried.
        brokers: String,
        /// What librdkafka said.
        reason: String,
    },
    /// A Kafka operation failed.
    #[error("Kafka {what}: {source}")]
    Kafka {
        /// What was being done.
        what: String,
        /// What librdkafka said.
        source: rdkafka::error::KafkaError,
    },
    /// Messages could not be delivered, even after librdkafka's retries.
    #[error("{count} message(s) could not be delivered (last error: {last})")]
    Delivery {
        /// How many messages failed.
        count: u64,
        /// The last delivery error.
        last: String,
    },
    /// The broker did not answer as expected in time; the message says what.
    #[error("{0}")]
    Timeout(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps a librdkafka error with what was being done.
    pub fn kafka(what: impl Into<String>) -> impl FnOnce(rdkafka::error::KafkaError) -> Error {
        let what = what.into();
        move |source| Error::Kafka { what, source }
    }
}

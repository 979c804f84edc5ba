//! What can stop the X API source, each with what to do about it. Nothing
//! here ever holds the bearer token.

/// An X source error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is wrong.
    #[error("{0}")]
    Config(String),
    /// The API refused the credentials (401) or the access level (403).
    #[error("the X API refused the bearer token ({status} {detail}); check {setting}")]
    Auth {
        /// The HTTP status.
        status: u16,
        /// The API's title and detail.
        detail: String,
        /// Where the token came from (`TWEETLAMBDA_X_BEARER_TOKEN` or `--bearer-token-file PATH`).
        setting: String,
    },
    /// The API refused the request itself (400, 404, …): retrying the same
    /// request cannot help.
    #[error("the X API refused {what} ({status}): {detail}")]
    Refused {
        /// The request, e.g. `GET /2/tweets/search/recent`.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The API's messages.
        detail: String,
    },
    /// The checkpoint in the state directory.
    #[error("state file {path}: {cause}")]
    State {
        /// The file.
        path: String,
        /// What went wrong.
        cause: String,
    },
    /// The broker.
    #[error(transparent)]
    Kafka(#[from] tweetlambda_kafka::Error),
    /// MySQL (with `--mysql-url`), or reading back what a stopped run
    /// published (the replay's code does both).
    #[error(transparent)]
    Replayer(#[from] tweetlambda_replayer::Error),
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

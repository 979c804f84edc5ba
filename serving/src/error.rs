//! What can stop the serving layer.

/// Why the server or a query stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is wrong; the message names it.
    #[error("{0}")]
    Config(String),
    /// The batch views could not be read; names the file.
    #[error("batch views: {0}")]
    Batch(String),
    /// The server could not listen or serve.
    #[error("HTTP: {0}")]
    Http(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

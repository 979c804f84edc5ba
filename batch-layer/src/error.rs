//! What can stop the batch layer.

use std::path::Path;

/// Why an archive or batch run stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is wrong; the message names it.
    #[error("{0}")]
    Config(String),
    /// A Kafka operation failed.
    #[error("Kafka: {0}")]
    Kafka(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A Parquet file could not be written or read; names the file.
    #[error("Parquet file {0}: {1}")]
    Parquet(String, String),
    /// A file of the dataset is not what it should be; names it.
    #[error("corrupt dataset file: {0}")]
    Corrupt(String),
    /// A Polars computation failed.
    #[error("Polars: {0}")]
    Polars(String),
    /// Another batch run holds the lock of the views directory.
    #[error("another batch run is publishing into {0} (it holds {0}/.batch.lock)")]
    Locked(String),
    /// Another archive writes into the same master dataset.
    #[error("another archive is writing into the master dataset {0} (it holds {0}/.archive.lock); run one archive per master dataset")]
    ArchiveLocked(String),
    /// The topic does not hold the offsets the archive resumes from.
    #[error("gap in {topic} partition {partition}: {detail}; nothing was archived (the master dataset is unchanged)")]
    Gap {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Which offsets, and the likely cause.
        detail: String,
    },
    /// Broker setup failed.
    #[error(transparent)]
    Broker(#[from] tweetlambda_kafka::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

//! Errors of loading and replaying. Each message says what failed and, where
//! there is one, what to do about it.

/// Why a load, replay or generation could not go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// MySQL could not be reached or refused the login.
    #[error("cannot connect to MySQL at {url}: {source}. Is it running (scripts/services.sh up) and is the URL right?")]
    MysqlConnect {
        /// The URL with its password hidden.
        url: String,
        /// What the driver said.
        source: sqlx::Error,
    },
    /// A MySQL statement failed.
    #[error("MySQL {what}: {source}")]
    Mysql {
        /// What was being done.
        what: String,
        /// What the driver said.
        source: sqlx::Error,
    },
    /// A broker operation failed (unreachable, refused, timed out).
    #[error(transparent)]
    Broker(#[from] tweetlambda_kafka::Error),
    /// Messages could not be delivered, even after librdkafka's retries.
    #[error(
        "{0}; the checkpoint was not advanced, so running the replay again resumes without loss"
    )]
    Delivery(tweetlambda_kafka::Error),
    /// An input file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A setting is wrong; the message names it.
    #[error("{0}")]
    Config(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn mysql(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Error {
        let what = what.into();
        move |source| Error::Mysql { what, source }
    }
}

/// A MySQL URL with the password replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_print() {
        assert_eq!(
            super::redact_url("mysql://u:secret@127.0.0.1:3306/db"),
            "mysql://u:***@127.0.0.1:3306/db"
        );
        assert_eq!(
            super::redact_url("mysql://127.0.0.1/db"),
            "mysql://127.0.0.1/db"
        );
    }
}

//! The Elasticsearch side, through the official client: reachability, the
//! index and its mapping, and one bulk request.

use std::time::Duration;

use elasticsearch::auth::Credentials;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::indices::{IndicesCreateParts, IndicesExistsParts, IndicesGetMappingParts};
use elasticsearch::{BulkParts, Elasticsearch};
use serde_json::Value;
use url::Url;

use crate::error::{Error, Result};
use crate::mapping;

/// How long the indexer waits for Elasticsearch at start.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one bulk request may take before it is sent again.
pub const BULK_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a bulk request did not get an answer to read.
#[derive(Debug)]
pub enum SendError {
    /// The server could not be reached, or answered 429/5xx: send again.
    Retry(String),
    /// The server refused the request itself (authentication, size): stop.
    Fatal(Error),
}

/// A client of one Elasticsearch server.
pub struct Es {
    client: Elasticsearch,
    /// The URL without credentials, for messages.
    pub url: String,
}

impl Es {
    /// A client of `url`; `http://USER:PASSWORD@HOST:PORT` gives basic
    /// authentication.
    pub fn new(url: &str) -> Result<Es> {
        let mut parsed = Url::parse(url)
            .map_err(|e| Error::Config(format!("--es-url {url:?} is not a URL: {e}")))?;
        let credentials = (!parsed.username().is_empty()).then(|| {
            Credentials::Basic(
                parsed.username().to_string(),
                parsed.password().unwrap_or_default().to_string(),
            )
        });
        // Credentials go in a header, never into messages.
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        let shown = parsed.to_string();
        let mut builder =
            TransportBuilder::new(SingleNodeConnectionPool::new(parsed)).disable_proxy();
        if let Some(c) = credentials {
            builder = builder.auth(c);
        }
        let transport = builder
            .build()
            .map_err(|e| Error::Config(format!("Elasticsearch client: {e}")))?;
        Ok(Es {
            client: Elasticsearch::new(transport),
            url: shown,
        })
    }

    /// Fails within [`CONNECT_TIMEOUT`] when the server does not answer.
    pub async fn check_reachable(&self) -> Result<()> {
        let unreachable = |cause: String| Error::Unreachable {
            url: self.url.clone(),
            seconds: CONNECT_TIMEOUT.as_secs(),
            cause,
        };
        let response = self
            .client
            .info()
            .request_timeout(CONNECT_TIMEOUT)
            .send()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status_code().as_u16();
        match status {
            200..=299 => Ok(()),
            401 | 403 => Err(Error::Refused {
                what: "the connection".into(),
                reason: format!("{status}: check the user and password in --es-url"),
            }),
            _ => Err(unreachable(format!("status {status}"))),
        }
    }

    /// Creates the index with the indexer's mapping if it is missing;
    /// checks an existing one's mapping. Returns whether it was created.
    pub async fn ensure_index(&self, index: &str) -> Result<bool> {
        let failed = |what: &str, e: elasticsearch::Error| Error::Refused {
            what: format!("{what} of index `{index}`"),
            reason: e.to_string(),
        };
        let exists = self
            .client
            .indices()
            .exists(IndicesExistsParts::Index(&[index]))
            .request_timeout(CONNECT_TIMEOUT)
            .send()
            .await
            .map_err(|e| failed("the existence check", e))?
            .status_code()
            .is_success();
        if !exists {
            let response = self
                .client
                .indices()
                .create(IndicesCreateParts::Index(index))
                .body(mapping::index_body())
                .send()
                .await
                .map_err(|e| failed("the creation", e))?;
            let status = response.status_code().as_u16();
            let body: Value = response.json().await.unwrap_or_default();
            let raced = body["error"]["type"] == "resource_already_exists_exception";
            if !(200..300).contains(&status) && !raced {
                return Err(Error::Refused {
                    what: format!("the creation of index `{index}`"),
                    reason: format!("{status} {}", body["error"]),
                });
            }
            if !raced {
                return Ok(true);
            }
        }
        let response = self
            .client
            .indices()
            .get_mapping(IndicesGetMappingParts::Index(&[index]))
            .send()
            .await
            .map_err(|e| failed("reading the mapping", e))?;
        let body: Value = response
            .json()
            .await
            .map_err(|e| failed("reading the mapping", e))?;
        // The answer is keyed by the index's concrete name (an alias
        // resolves to it): take the one entry.
        let entry = body
            .as_object()
            .and_then(|o| o.values().next())
            .cloned()
            .unwrap_or_default();
        let conflicts = mapping::conflicts(&entry);
        if conflicts.is_empty() {
            Ok(false)
        } else {
            Err(Error::Mapping {
                index: index.to_string(),
                conflicts,
            })
        }
    }

    /// Sends one bulk request and returns Elasticsearch's answer.
    pub async fn bulk(&self, index: &str, body: Vec<u8>) -> std::result::Result<Value, SendError> {
        let response = self
            .client
            .bulk(BulkParts::Index(index))
            .body(vec![body])
            .request_timeout(BULK_TIMEOUT)
            .send()
            .await
            .map_err(|e| SendError::Retry(e.to_string()))?;
        let status = response.status_code().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| SendError::Retry(e.to_string()))?;
        let short = || text.chars().take(500).collect::<String>();
        match status {
            200..=299 => serde_json::from_str(&text).map_err(|e| {
                SendError::Retry(format!("unreadable bulk answer ({e}): {}", short()))
            }),
            408 | 429 | 500..=599 => Err(SendError::Retry(format!("{status} {}", short()))),
            413 => Err(SendError::Fatal(Error::Refused {
                what: "a bulk request as too large".into(),
                reason: "413: lower --bulk-bytes".into(),
            })),
            _ => Err(SendError::Fatal(Error::Refused {
                what: "a bulk request".into(),
                reason: format!("{status} {}", short()),
            })),
        }
    }
}

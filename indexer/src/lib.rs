//! The indexer: the `tweets` topic into Elasticsearch, for Kibana.
//!
//! # Layout
//!
//! - [`document`]: a tweet's Elasticsearch document (`_id` = tweet id).
//! - [`mapping`]: the index's explicit mapping and the check of an
//!   existing index against it.
//! - [`bulk`]: bulk batches bounded by documents and bytes, and the
//!   reading of Elasticsearch's per-item answer.
//! - [`es`]: the official client: reachability, the index, one bulk request.
//! - [`service`]: the consume → index → dead-letter → commit loop.
//! - [`kibana`]: the saved objects of `kibana/tweetlambda.ndjson` and
//!   their import into Kibana.

pub mod bulk;
pub mod document;
pub mod error;
pub mod es;
pub mod kibana;
pub mod mapping;
pub mod service;

pub use document::TweetDocument;
pub use error::{Error, Result};
pub use service::{run, IndexConfig, IndexSummary};

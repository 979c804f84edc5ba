//! Getting tweets into the pipeline: `tweetlambda load` (files → MySQL),
//! `tweetlambda replay` (MySQL → Kafka, in event-time order) and
//! `tweetlambda generate` (synthetic tweets for benchmarks).
//!
//! # Layout
//!
//! - [`mysql`]: connection and the schema migrations of `sql/`.
//! - [`load`]: parsers for API v1.1 / v2 JSON and the CSV export, and the
//!   idempotent batch writer.
//! - [`replay`]: the replay: event-time index, keyset reader, pacing and
//!   the resumable checkpoint, publishing through `tweetlambda-kafka`.
//! - [`generate`]: the synthetic data generator.
//! - [`error`]: what can go wrong.

pub mod error;
pub mod generate;
pub mod load;
pub mod mysql;
pub mod replay;

pub use error::{Error, Result};

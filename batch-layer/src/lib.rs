//! The batch layer.
//!
//! # Layout
//!
//! - [`archive`]: `tweetlambda archive`, the master dataset: the `tweets`
//!   topic as immutable Parquet files partitioned by event date, named by
//!   topic, partition and offset range, committed atomically.
//! - [`error`]: what can stop it.
//!
//! The batch job (`tweetlambda batch`, Polars views and the manifest) is the
//! next piece of work.

pub mod archive;
pub mod error;

pub use error::{Error, Result};

//! The batch layer.
//!
//! # Layout
//!
//! - [`archive`]: `tweetlambda archive`, the master dataset: the `tweets`
//!   topic as immutable Parquet files partitioned by event date, named by
//!   topic, partition and offset range, committed atomically.
//! - [`compact`]: small commits of the master dataset merged into one.
//! - [`batch`]: `tweetlambda batch`, the cron job: the views recomputed from
//!   the whole master dataset, and the boundary B.
//! - [`views`]: the views and their definitions, in Polars.
//! - [`manifest`]: the versions of the views directory, the manifest that
//!   is switched atomically, the lock and the retention.
//! - [`error`]: what can stop it.

pub mod archive;
pub mod batch;
pub mod compact;
pub mod error;
pub mod manifest;
pub mod views;

pub use error::{Error, Result};

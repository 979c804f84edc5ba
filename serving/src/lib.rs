//! The serving layer: the batch views (buckets before the boundary B) and
//! the speed layer's realtime view (buckets from B on) merged per DESIGN.md,
//! answering top-N queries over HTTP.
//!
//! # Layout
//!
//! - [`batch`]: one version of the batch views in memory, with rollups.
//! - `ranked`: sums by key over bucket ranges and their exact top N, for
//!   both views (hashtag counts and tweet scores).
//! - [`realtime`]: the realtime view, materialised from its topic.
//! - [`query`]: the merge and the ranking (pure functions).
//! - [`http`]: the JSON API, `/metrics`, `/health` and the dashboard.
//! - [`run`]: the server: loading, the version swap, the reader thread.

pub mod batch;
pub mod error;
pub mod http;
pub mod query;
mod ranked;
pub mod realtime;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tweetlambda_kafka::KafkaOptions;

pub use error::{Error, Result};

use crate::batch::BatchView;
use crate::http::AppState;
use crate::realtime::RealtimeView;

/// Settings of `tweetlambda serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Broker connection, for the realtime view.
    pub kafka: KafkaOptions,
    /// The speed layer's realtime view topic.
    pub view_topic: String,
    /// The batch views directory (with `manifest.json`).
    pub views: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Bearer token for `/api/*` and `/metrics`, if any.
    pub token: Option<String>,
    /// How often the manifest is checked for a new version.
    pub reload_interval: Duration,
    /// Bucket size of the realtime view.
    pub bucket_ms: i64,
    /// Queries computed at once, at most.
    pub max_queries: usize,
    /// How long a query may wait and compute before a 503.
    pub query_timeout: Duration,
    /// Publish tombstones for the view topic's keys of buckets before the
    /// loaded version's B (see [`realtime`]).
    pub tombstones: bool,
}

fn load_batch(views: &std::path::Path) -> Option<BatchView> {
    match BatchView::load(views) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!("{e}; serving without this batch version");
            None
        }
    }
}

/// Serves until `shutdown` turns true. Logs the address it listens on.
pub async fn run(config: ServeConfig, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| tracing::warn!("metrics disabled: {e}"))
        .ok();
    let views = config.views.clone();
    let first = tokio::task::spawn_blocking(move || load_batch(&views))
        .await
        .map_err(|e| Error::Config(format!("loading the batch views failed: {e}")))?;
    match &first {
        Some(b) => tracing::info!(
            version = b.version,
            boundary_ms = b.boundary_ms,
            "batch views loaded"
        ),
        None => tracing::warn!(views = %config.views.display(), "no batch version published yet"),
    }
    let mut view = RealtimeView::new(config.bucket_ms);
    view.publish_tombstones = config.tombstones;
    // Buckets before B come from the batch: never held (memory is bounded
    // by the buckets since B, not by the view topic's history).
    if let Some(b) = &first {
        view.release_before(b.boundary_ms);
    }
    let realtime = Arc::new(RwLock::new(view));
    let state = Arc::new(AppState {
        batch: RwLock::new(first.map(Arc::new)),
        realtime: realtime.clone(),
        token: config.token.clone(),
        metrics,
        queries: Arc::new(tokio::sync::Semaphore::new(config.max_queries.max(1))),
        query_timeout: config.query_timeout,
    });

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (kafka, topic, stop) = (
            config.kafka.clone(),
            config.view_topic.clone(),
            stop.clone(),
        );
        std::thread::Builder::new()
            .name("realtime-view".into())
            .spawn(move || realtime::follow(kafka, topic, realtime, stop))
            .map_err(|e| Error::Config(format!("cannot start the realtime reader: {e}")))?
    };

    // The swap: a new version is loaded aside, then replaces the old one
    // whole; queries in flight keep the Arc of the version they started on.
    let reloader = {
        let (state, views, every) = (state.clone(), config.views.clone(), config.reload_interval);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let current = state.batch().map(|b| b.version);
                let views = views.clone();
                let newer = tokio::task::spawn_blocking(move || {
                    let version = tweetlambda_batch::manifest::read(&views)
                        .ok()
                        .flatten()
                        .map(|m| m.version);
                    (version.is_some() && version != current)
                        .then(|| load_batch(&views))
                        .flatten()
                })
                .await
                .ok()
                .flatten();
                if let Some(v) = newer {
                    tracing::info!(
                        version = v.version,
                        boundary_ms = v.boundary_ms,
                        "new batch version"
                    );
                    let boundary = v.boundary_ms;
                    if let Ok(mut slot) = state.batch.write() {
                        *slot = Some(Arc::new(v));
                    }
                    // After the swap: a query still on the version before
                    // sees the release and flags what it misses.
                    if let Ok(mut rt) = state.realtime.write() {
                        rt.release_before(boundary);
                    }
                }
            }
        })
    };

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::Http(format!("cannot listen on {}: {e}", config.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::Http(e.to_string()))?;
    tracing::info!("serving on http://{address}/");
    println!("serve: listening on http://{address}/");
    let served = axum::serve(listener, http::router(state))
        .with_graceful_shutdown(async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        })
        .await
        .map_err(|e| Error::Http(e.to_string()));
    reloader.abort();
    stop.store(true, Ordering::Relaxed);
    let _ = reader.join();
    served
}

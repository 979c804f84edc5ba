//! The HTTP API: JSON answers, 400s that name the parameter, an optional
//! bearer token, `/metrics` and `/health`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use crate::batch::BatchView;
use crate::query::{self, Range};
use crate::realtime::RealtimeView;

/// Largest `n`.
pub const MAX_N: usize = 1000;
/// Longest range, in days.
pub const MAX_RANGE_DAYS: i64 = 400;
/// Most points of a series.
pub const MAX_POINTS: i64 = 10_000;
/// Most hashtags in one series query.
pub const MAX_TAGS: usize = 20;

/// What the handlers share.
pub struct AppState {
    /// The batch version being served (swapped whole by the reloader).
    pub batch: RwLock<Option<Arc<BatchView>>>,
    /// The realtime view, updated by its reader thread.
    pub realtime: Arc<RwLock<RealtimeView>>,
    /// Bearer token required on `/api/*` and `/metrics`, if set.
    pub token: Option<String>,
    /// Prometheus metrics, if the recorder could be installed.
    pub metrics: Option<PrometheusHandle>,
    /// Queries computed at once, at most (the others wait for a permit).
    pub queries: Arc<tokio::sync::Semaphore>,
    /// How long a query may wait and compute before it is answered 503.
    pub query_timeout: std::time::Duration,
}

impl AppState {
    /// The batch version at the time of the call: a query holds it to its
    /// end even if a new version is swapped in meanwhile.
    pub fn batch(&self) -> Option<Arc<BatchView>> {
        self.batch.read().ok().and_then(|b| b.clone())
    }
}

/// A 400 (or 401) with a JSON body naming the parameter.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    parameter: Option<&'static str>,
    message: String,
}

impl ApiError {
    fn bad(parameter: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            parameter: Some(parameter),
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.message, "parameter": self.parameter});
        (self.status, Json(body)).into_response()
    }
}

/// The router of the server.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/health", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/api/top/hashtags", get(top_hashtags))
        .route("/api/top/tweets", get(top_tweets))
        .route("/api/series/hashtags", get(series))
        .route("/api/status", get(status))
        .with_state(state)
}

type Params = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// Runs a query's work off the async workers (on the blocking pool), at
/// most `state.queries` at once; a query not answered within
/// `state.query_timeout` (waiting included) gets a 503. Its work, once
/// started, still holds its permit to its end, so the bound holds.
async fn bounded<F>(state: &Arc<AppState>, endpoint: &'static str, work: F) -> Response
where
    F: FnOnce(&AppState) -> Response + Send + 'static,
{
    let shared = state.clone();
    let run = async move {
        let permit = shared.queries.clone().acquire_owned().await.ok()?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&shared)
        })
        .await
        .ok()
    };
    match tokio::time::timeout(state.query_timeout, run).await {
        Ok(Some(response)) => response,
        _ => {
            metrics::counter!("serving_requests_total", "endpoint" => endpoint, "status" => "busy")
                .increment(1);
            ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                parameter: None,
                message: format!(
                    "the server is busy: no answer within {} ms; try again, or a shorter range",
                    state.query_timeout.as_millis()
                ),
            }
            .into_response()
        }
    }
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &state.token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| same_secret(g.as_bytes(), token.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            parameter: None,
            message: "a bearer token is required (Authorization: Bearer …)".into(),
        })
    }
}

/// Compares a given secret with the expected one in time that depends on
/// their lengths only, not on where they first differ.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let mut differ = u8::from(given.len() != expected.len());
    for (k, e) in expected.iter().enumerate() {
        // Past the end of `given`, compare with a byte no secret can match
        // equally for every position (the lengths already differ then).
        differ |= e ^ given.get(k).copied().unwrap_or(!e);
    }
    differ == 0
}

/// Query parameters, checked: unknown or repeated ones are refused.
fn params(
    raw: Params,
    allowed: &[&'static str],
) -> Result<HashMap<&'static str, String>, ApiError> {
    let Query(pairs) = raw.map_err(|e| ApiError::bad("query", e.body_text()))?;
    let mut out = HashMap::new();
    for (k, v) in pairs {
        let Some(name) = allowed.iter().find(|a| **a == k) else {
            return Err(ApiError {
                status: StatusCode::BAD_REQUEST,
                parameter: None,
                message: format!("unknown parameter {k:?}; expected one of {allowed:?}"),
            });
        };
        if out.insert(*name, v).is_some() {
            return Err(ApiError::bad(name, format!("{name} is given twice")));
        }
    }
    Ok(out)
}

/// `last=` and `step=`: the one duration grammar of the product
/// ([`tweetlambda_core::duration`]), longer than zero.
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    tweetlambda_core::parse_positive_ms(text).ok()
}

fn time_param(p: &HashMap<&'static str, String>, name: &'static str) -> Result<i64, ApiError> {
    let text = p.get(name).ok_or_else(|| {
        ApiError::bad(
            name,
            format!("{name} is required (RFC 3339), or give last=…"),
        )
    })?;
    tweetlambda_core::parse_event_time(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| ApiError::bad(name, format!("{name}: {e}")))
}

/// The range of a query: `from`/`to`, or `last` before the newest event.
fn range(state: &AppState, p: &HashMap<&'static str, String>) -> Result<Range, ApiError> {
    let batch = state.batch();
    let realtime = state
        .realtime
        .read()
        .map_err(|_| ApiError::bad("query", "the realtime view is unavailable"))?;
    let bucket_ms = query::bucket_ms(batch.as_deref(), &realtime);
    let (from, to) = if let Some(last) = p.get("last") {
        if p.contains_key("from") || p.contains_key("to") {
            return Err(ApiError::bad(
                "last",
                "give either last or from/to, not both",
            ));
        }
        let span = parse_duration_ms(last).ok_or_else(|| {
            ApiError::bad(
                "last",
                format!("last: {last:?} is not a duration such as 15m, 1h or 7d"),
            )
        })?;
        let end = query::newest_end_ms(batch.as_deref(), &realtime)
            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
        (end.saturating_sub(span), end)
    } else {
        (time_param(p, "from")?, time_param(p, "to")?)
    };
    if from >= to {
        return Err(ApiError::bad("to", "to must be after from"));
    }
    if to - from > MAX_RANGE_DAYS * 86_400_000 {
        return Err(ApiError::bad(
            "from",
            format!("the range is longer than {MAX_RANGE_DAYS} days"),
        ));
    }
    Ok(Range::aligned(from, to, bucket_ms))
}

fn n_param(p: &HashMap<&'static str, String>) -> Result<usize, ApiError> {
    match p.get("n") {
        None => Ok(10),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_N).contains(n))
            .ok_or_else(|| {
                ApiError::bad("n", format!("n must be a whole number from 1 to {MAX_N}"))
            }),
    }
}

fn record(endpoint: &'static str, started: Instant, ok: bool) {
    let status = if ok { "ok" } else { "error" };
    metrics::counter!("serving_requests_total", "endpoint" => endpoint, "status" => status)
        .increment(1);
    metrics::histogram!("serving_request_seconds", "endpoint" => endpoint)
        .record(started.elapsed().as_secs_f64());
}

const TOP_PARAMS: [&str; 4] = ["from", "to", "last", "n"];

/// A top-N answer: both views, as they are at the start of the query.
type TopFn<T> = fn(Option<&BatchView>, &RealtimeView, Range, usize) -> query::TopAnswer<T>;

fn top<T: serde::Serialize>(
    endpoint: &'static str,
    state: &AppState,
    headers: &HeaderMap,
    raw: Params,
    answer: TopFn<T>,
) -> Response {
    let started = Instant::now();
    let result = (|| {
        authorize(state, headers)?;
        let p = params(raw, &TOP_PARAMS)?;
        let (range, n) = (range(state, &p)?, n_param(&p)?);
        let batch = state.batch();
        let realtime = state
            .realtime
            .read()
            .map_err(|_| ApiError::bad("query", "the realtime view is unavailable"))?;
        Ok::<_, ApiError>(answer(batch.as_deref(), &realtime, range, n))
    })();
    record(endpoint, started, result.is_ok());
    match result {
        Ok(a) => Json(a).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn top_hashtags(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    raw: Params,
) -> Response {
    // Refused before it takes a query slot.
    if let Err(e) = authorize(&state, &headers) {
        return e.into_response();
    }
    bounded(&state, "top_hashtags", move |s| {
        top("top_hashtags", s, &headers, raw, query::top_hashtags)
    })
    .await
}

async fn top_tweets(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    raw: Params,
) -> Response {
    // Refused before it takes a query slot.
    if let Err(e) = authorize(&state, &headers) {
        return e.into_response();
    }
    bounded(&state, "top_tweets", move |s| {
        top("top_tweets", s, &headers, raw, query::top_tweets)
    })
    .await
}

async fn series(State(state): State<Arc<AppState>>, headers: HeaderMap, raw: Params) -> Response {
    if let Err(e) = authorize(&state, &headers) {
        return e.into_response();
    }
    bounded(&state, "series", move |s| series_answer(s, &headers, raw)).await
}

fn series_answer(state: &AppState, headers: &HeaderMap, raw: Params) -> Response {
    let started = Instant::now();
    let answer = (|| {
        authorize(state, headers)?;
        let p = params(raw, &["from", "to", "last", "tags", "step"])?;
        let range = range(state, &p)?;
        let tags: Vec<String> = p
            .get("tags")
            .map(|t| {
                t.split(',')
                    .filter_map(tweetlambda_core::normalize_hashtag)
                    .collect()
            })
            .unwrap_or_default();
        if tags.len() > MAX_TAGS {
            return Err(ApiError::bad(
                "tags",
                format!("at most {MAX_TAGS} hashtags"),
            ));
        }
        let span = range.to_ms - range.from_ms;
        let step = match p.get("step") {
            Some(s) => parse_duration_ms(s).ok_or_else(|| {
                ApiError::bad(
                    "step",
                    format!("step: {s:?} is not a duration such as 1m or 1h"),
                )
            })?,
            // About 120 points.
            None => [60_000, 300_000, 900_000, 3_600_000, 21_600_000, 86_400_000]
                .into_iter()
                .find(|s| span / s <= 120)
                .unwrap_or(86_400_000),
        };
        if span / step > MAX_POINTS {
            return Err(ApiError::bad(
                "step",
                format!("more than {MAX_POINTS} points; use a larger step"),
            ));
        }
        let batch = state.batch();
        let realtime = state
            .realtime
            .read()
            .map_err(|_| ApiError::bad("query", "the realtime view is unavailable"))?;
        Ok::<_, ApiError>(query::series(
            batch.as_deref(),
            &realtime,
            range,
            step,
            &tags,
        ))
    })();
    record("series", started, answer.is_ok());
    match answer {
        Ok(a) => Json(a).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn status(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&state, &headers) {
        return e.into_response();
    }
    let batch = state.batch();
    let Ok(rt) = state.realtime.read() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let time = |ms: Option<i64>| {
        ms.and_then(tweetlambda_core::time::from_millis)
            .map(tweetlambda_core::format_rfc3339)
    };
    let boundary = batch.as_ref().map(|b| b.boundary_ms);
    let first = rt.first_bucket_ms();
    let hole = match (boundary, rt.first_seen_bucket_ms()) {
        (Some(b), Some(f))
            if f > b && batch.as_ref().is_some_and(|v| v.tweets_from_boundary > 0) =>
        {
            Some(json!({"from": time(Some(b)), "to": time(Some(f))}))
        }
        _ => None,
    };
    // Late events the speed layer could not count, in buckets from B on
    // (before B the batch counts them).
    let (late_events, late_buckets) = rt.late_in(boundary.unwrap_or(i64::MIN), i64::MAX);
    let body = json!({
        "batch": batch.as_ref().map(|b| json!({
            "version": b.version,
            "boundary": time(Some(b.boundary_ms)),
            "created_at": b.manifest.as_ref().map(|m| m.created_at.clone()),
            "newest_event": time(Some(b.newest_event_ms)),
            "tweets_from_boundary": b.tweets_from_boundary,
        })),
        "realtime": {
            "caught_up": rt.caught_up,
            "lag": rt.lag,
            "topic_missing": rt.topic_missing,
            "records": rt.records,
            "bad_records": rt.bad_records,
            "buckets": rt.buckets(),
            "released_before": (rt.released_before > i64::MIN).then(|| time(Some(rt.released_before))),
            "first_bucket": time(first),
            "newest_event": time(rt.newest_bucket_end_ms()),
            "late_events_waiting_for_batch": late_events,
            "late_buckets": late_buckets,
            "tombstones": {
                "published": rt.tombstones_sent,
                "waiting": rt.tombstones_waiting(),
                "read": rt.tombstones_read,
            },
        },
        "holes": hole.into_iter().collect::<Vec<_>>(),
    });
    Json(body).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&state, &headers) {
        return e.into_response();
    }
    if let Some(b) = state.batch() {
        metrics::gauge!("serving_batch_version").set(b.version as f64);
        metrics::gauge!("serving_batch_boundary_ms").set(b.boundary_ms as f64);
    }
    if let Ok(rt) = state.realtime.read() {
        metrics::gauge!("serving_realtime_lag").set(rt.lag as f64);
        metrics::gauge!("serving_realtime_buckets").set(rt.buckets() as f64);
    }
    match &state.metrics {
        Some(handle) => handle.render().into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are disabled\n").into_response(),
    }
}

async fn dashboard() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server state over `view`, with `permits` query slots and a timeout.
    fn state(view: RealtimeView, permits: usize, timeout_ms: u64) -> AppState {
        AppState {
            batch: RwLock::new(None),
            realtime: Arc::new(RwLock::new(view)),
            token: None,
            metrics: None,
            queries: Arc::new(tokio::sync::Semaphore::new(permits)),
            query_timeout: std::time::Duration::from_millis(timeout_ms),
        }
    }

    proptest::proptest! {
        /// Whatever the query string, the parameter parsing answers a
        /// range and n, or a 400: never a panic.
        #[test]
        fn any_parameters_give_an_answer_or_a_400(
            pairs in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["from", "to", "last", "n", "tags", "step", "x"]),
                    proptest::prop_oneof![".{0,40}", "[0-9]{1,6}(ms|s|m|h|d)", "[a-z,#]{0,30}"],
                ),
                0..5,
            ),
            digits in "[0-9]{1,25}[a-z]{0,2}",
        ) {
            let state = state(RealtimeView::new(60_000), 1, 1000);
            let mut pairs: Vec<(String, String)> =
                pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            pairs.push(("last".into(), digits));
            match params(Ok(Query(pairs.clone())), &TOP_PARAMS) {
                Ok(p) => {
                    if let Err(e) = range(&state, &p).and_then(|_| n_param(&p)) {
                        proptest::prop_assert_eq!(e.status, StatusCode::BAD_REQUEST);
                    }
                }
                Err(e) => proptest::prop_assert_eq!(e.status, StatusCode::BAD_REQUEST),
            }
            // The whole handlers, series (tags, step) included: 200 or 400.
            let headers = HeaderMap::new();
            for response in [
                top("t", &state, &headers, Ok(Query(pairs.clone())), query::top_tweets),
                series_answer(&state, &headers, Ok(Query(pairs))),
            ] {
                let status = response.status();
                proptest::prop_assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{status}");
            }
        }
    }

    /// Queries beyond the concurrency bound wait; one that waits past the
    /// timeout is answered 503 and computes nothing.
    #[tokio::test(flavor = "multi_thread")]
    async fn queries_beyond_the_bound_wait_then_get_a_503() {
        let state = Arc::new(state(RealtimeView::new(60_000), 1, 200));
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let work = |ran: &Arc<std::sync::atomic::AtomicUsize>| {
            let ran = ran.clone();
            move |_: &AppState| {
                ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                "ok".into_response()
            }
        };
        let answer = bounded(&state, "test", work(&ran)).await;
        assert_eq!(answer.status(), StatusCode::OK);
        let held = state.queries.clone().acquire_owned().await.expect("permit");
        let started = Instant::now();
        let answer = bounded(&state, "test", work(&ran)).await;
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(
            ran.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the refused query computed nothing"
        );
        drop(held);
        let answer = bounded(&state, "test", work(&ran)).await;
        assert_eq!(answer.status(), StatusCode::OK);
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3creT", b"s3cret"));
        assert!(!same_secret(b"s3cre", b"s3cret"), "a prefix");
        assert!(!same_secret(b"s3crets", b"s3cret"), "longer");
        assert!(!same_secret(b"", b"s3cret"));
        assert!(same_secret(b"", b""));
    }

    /// Before any batch version exists, ranges align to the realtime view's
    /// bucket (the server's `--bucket`), not to one minute.
    #[test]
    fn without_a_batch_version_ranges_align_to_the_realtime_bucket() {
        const MIN: i64 = 60_000;
        let mut view = RealtimeView::new(5 * MIN);
        view.apply_hashtag(10 * MIN, "rust", 1);
        let state = state(view, 1, 1000);
        let params = |pairs: &[(&'static str, String)]| pairs.iter().cloned().collect();
        let r = range(
            &state,
            &params(&[
                ("from", "1970-01-01T00:06:00Z".into()),
                ("to", "1970-01-01T00:07:00Z".into()),
            ]),
        )
        .expect("valid range");
        assert_eq!((r.from_ms, r.to_ms), (5 * MIN, 10 * MIN));
        let r = range(&state, &params(&[("last", "1m".into())])).expect("valid range");
        assert_eq!((r.from_ms, r.to_ms), (10 * MIN, 15 * MIN));
    }

    #[test]
    fn durations_need_a_unit_and_a_positive_length() {
        assert_eq!(parse_duration_ms("1h"), Some(3_600_000));
        assert_eq!(parse_duration_ms("15m"), Some(900_000));
        assert_eq!(parse_duration_ms("7d"), Some(604_800_000));
        assert_eq!(parse_duration_ms("0m"), None);
        assert_eq!(parse_duration_ms("10"), None);
        assert_eq!(parse_duration_ms("1y"), None);
        assert_eq!(parse_duration_ms("99999999999999999d"), None);
    }
}

//! `tweetlambda x search`: recent search into Kafka.
//!
//! A pass asks for everything newer than `since_id` (none on the first
//! run), newest first, following `next_token` to the last page; then
//! `since_id` becomes the newest tweet of the pass. `--once` stops after one
//! pass; otherwise a pass starts every `--interval`.
//!
//! After each page the sink is flushed and the checkpoint written
//! ([`crate::state`]). A run stopped mid-pass continues that pass below its
//! oldest published tweet (`until_id`), so a restart publishes nothing twice
//! and misses nothing.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use metrics::{counter, gauge};
use serde_json::Value;
use tokio::sync::watch;

use crate::api::{Api, SearchRequest, Trouble, SEARCH_PATH};
use crate::convert::{self, id_order, newer_id};
use crate::error::Result;
use crate::retry::{Backoff, Failure, Policy, RateLimit};
use crate::sink::{Sink, SinkOptions};
use crate::state::{Pass, State};
use crate::{pause, unix_now, Summary};

/// What `x search` does.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// The query, in X's search syntax.
    pub query: String,
    /// One pass, then exit.
    pub once: bool,
    /// Time between the starts of passes.
    pub interval: Duration,
    /// Where the checkpoint is kept.
    pub state_dir: PathBuf,
    /// The waits after failures.
    pub policy: Policy,
    /// Where tweets go.
    pub sink: SinkOptions,
}

/// The newest and oldest id among a page's tweets.
fn id_range(body: &Value) -> Option<(String, String)> {
    let ids = body
        .get("data")?
        .as_array()?
        .iter()
        .filter_map(|t| t.get("id")?.as_str());
    ids.fold(None, |range: Option<(&str, &str)>, id| match range {
        None => Some((id, id)),
        Some((newest, oldest)) => Some((
            if id_order(id, newest).is_gt() {
                id
            } else {
                newest
            },
            if id_order(id, oldest).is_lt() {
                id
            } else {
                oldest
            },
        )),
    })
    .map(|(n, o)| (n.to_string(), o.to_string()))
}

/// Runs recent search until the end of one pass (`once`) or a shutdown.
pub async fn run(
    api: &Api,
    options: &SearchOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Summary> {
    let started = Instant::now();
    let source = format!(
        "search {:?} into {}",
        options.query, options.sink.topics.tweets
    );
    let mut state = State::load(&options.state_dir, &source)?;
    let mut sink = Sink::open(&options.sink).await?;
    let mut summary = Summary {
        resumed: state.since_id.is_some() || state.pass.is_some(),
        ..Summary::default()
    };
    if state.offsets.is_empty() {
        state.offsets = sink.end_offsets().await?;
        state.save(&options.state_dir)?;
    } else {
        let n = sink.remember_published(&state.offsets).await?;
        tracing::info!(
            since_id = state.since_id.as_deref(),
            pass = ?state.pass,
            read_back = n,
            "resuming from the checkpoint"
        );
    }
    let mut backoff = Backoff::new(options.policy);
    let mut rate = RateLimit::default();
    'passes: loop {
        let pass_started = Instant::now();
        let since_id = state.since_id.clone();
        let until_id = state.pass.as_ref().map(|p| p.oldest_id.clone());
        let mut pass_newest = state.pass.as_ref().map(|p| p.newest_id.clone());
        let mut next_token: Option<String> = None;
        loop {
            if let Some(wait) = rate.wait_before_next(unix_now()) {
                tracing::info!(
                    "no requests left in this rate-limit window: waiting {} s",
                    wait.as_secs()
                );
                summary.rate_limit_waits += 1;
                summary.rate_limit_waited += wait;
                counter!("x_rate_limit_waits_total").increment(1);
                rate = RateLimit::default();
                if !pause(wait, &mut shutdown).await {
                    summary.interrupted = true;
                    break 'passes;
                }
            }
            let request = SearchRequest {
                query: options.query.clone(),
                since_id: since_id.clone(),
                until_id: until_id.clone(),
                next_token: next_token.clone(),
                max_results: 100,
            };
            let answer = match api.search(&request).await {
                Ok(answer) => answer,
                Err(Trouble::Stop(e)) => return Err(e),
                Err(Trouble::Retry(failure)) => {
                    if !wait_after(&failure, &mut backoff, &mut summary, &mut shutdown).await {
                        summary.interrupted = true;
                        break 'passes;
                    }
                    continue;
                }
            };
            rate = answer.rate;
            if let Some(left) = rate.remaining {
                gauge!("x_rate_limit_remaining").set(left as f64);
            }
            let body = match serde_json::from_slice::<Value>(&answer.body) {
                Ok(v) if v.is_object() => v,
                parsed => {
                    // Nothing of it can be used, not even the next token:
                    // kept as a dead letter, and the request made again.
                    let reason = match parsed {
                        Err(e) => format!("a search page that is not JSON: {e}"),
                        Ok(_) => "a search page that is not a JSON object".to_string(),
                    };
                    sink.dead_letter(SEARCH_PATH, None, &reason, &answer.body)
                        .await?;
                    let failure = Failure::Server { status: 200 };
                    if !wait_after(&failure, &mut backoff, &mut summary, &mut shutdown).await {
                        summary.interrupted = true;
                        break 'passes;
                    }
                    continue;
                }
            };
            backoff.succeeded();
            summary.pages += 1;
            counter!("x_pages_total").increment(1);
            for e in convert::errors(&body) {
                summary.partial_errors += 1;
                counter!("x_partial_errors_total").increment(1);
                tracing::info!("the answer names an object it does not include: {e}");
            }
            let read = sink.publish(SEARCH_PATH, &body).await?;
            let token = convert::next_token(&body);
            let range = id_range(&body);
            if let Some((newest, _)) = &range {
                pass_newest = newer_id(pass_newest, Some(newest));
            }
            let offsets = sink.flush().await?;
            state.advance_offsets(offsets);
            match (&token, &range, &pass_newest) {
                (Some(_), Some((_, oldest)), Some(newest)) => {
                    state.pass = Some(Pass {
                        newest_id: newest.clone(),
                        oldest_id: oldest.clone(),
                    });
                }
                // More pages, none of this pass's tweets published yet:
                // nothing to record.
                (Some(_), _, _) => {}
                (None, _, _) => {
                    state.since_id = newer_id(state.since_id.take(), pass_newest.as_deref());
                    state.pass = None;
                }
            }
            state.save(&options.state_dir)?;
            tracing::info!(
                page = summary.pages,
                tweets = read,
                published = sink.counts.tweets,
                more = token.is_some(),
                "search page"
            );
            match token {
                Some(t) => next_token = Some(t),
                None => break,
            }
            if *shutdown.borrow() {
                summary.interrupted = true;
                break 'passes;
            }
        }
        if options.once {
            break;
        }
        let wait = options.interval.saturating_sub(pass_started.elapsed());
        if !pause(wait, &mut shutdown).await {
            summary.interrupted = true;
            break;
        }
    }
    summary.counts = sink.counts;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Logs a failure, counts it and waits as [`Backoff`] says; `false` when a
/// shutdown came during the wait.
pub(crate) async fn wait_after(
    failure: &Failure,
    backoff: &mut Backoff,
    summary: &mut Summary,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let wait = backoff.next_wait(failure, unix_now());
    tracing::warn!("{failure}: retrying in {:.1} s", wait.as_secs_f64());
    match failure {
        Failure::RateLimited { .. } => {
            summary.rate_limit_waits += 1;
            summary.rate_limit_waited += wait;
            counter!("x_rate_limit_waits_total").increment(1);
        }
        _ => {
            summary.retries += 1;
            counter!("x_retries_total").increment(1);
        }
    }
    pause(wait, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_range_is_its_newest_and_oldest_id() {
        let page: Value = serde_json::from_str(
            r#"{"data":[{"id":"1000"},{"id":"999"},{"id":"1002"}],"meta":{"result_count":3}}"#,
        )
        .expect("json");
        assert_eq!(id_range(&page), Some(("1002".into(), "999".into())));
        let empty: Value = serde_json::from_str(r#"{"meta":{"result_count":0}}"#).expect("json");
        assert_eq!(id_range(&empty), None);
    }
}

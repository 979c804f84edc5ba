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
use crate::error::{Error, Result};
use crate::retry::{Backoff, Failure, Policy, RateLimit};
use crate::sink::{Sink, SinkOptions};
use crate::state::Pass;
use crate::{pause, unix_now, wait_after, Summary};
use tweetlambda_kafka::advance_offsets;

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

/// The parameter of `request` the API refused as too old, if that is
/// what `e` says (`Invalid 'since_id': … must be a tweet id created after …`).
fn too_old(e: &Error, request: &SearchRequest) -> Option<&'static str> {
    let Error::Refused {
        status: 400,
        detail,
        ..
    } = e
    else {
        return None;
    };
    [
        ("since_id", &request.since_id),
        ("until_id", &request.until_id),
    ]
    .into_iter()
    .find(|(name, value)| value.is_some() && detail.contains(&format!("'{name}'")))
    .map(|(name, _)| name)
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
    let (_lock, mut state, mut sink) =
        Sink::start(&options.sink, &options.state_dir, &source).await?;
    let mut summary = Summary {
        resumed: state.since_id.is_some() || state.pass.is_some(),
        ..Summary::default()
    };
    let mut backoff = Backoff::new(options.policy);
    let mut rate = RateLimit::default();
    'passes: loop {
        let pass_started = Instant::now();
        // A pass that continues a stopped one ends at that pass's newest
        // tweet: with --once, one more pass fetches what came since.
        let continues_a_pass = state.pass.is_some();
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
            let outcome = tokio::select! {
                outcome = api.search(&request) => outcome,
                _ = shutdown.changed() => {
                    summary.interrupted = true;
                    break 'passes;
                }
            };
            let answer = match outcome {
                Ok(answer) => answer,
                Err(Trouble::Stop(e)) => match too_old(&e, &request) {
                    // Recent search covers 7 days: an older since_id or
                    // until_id is refused. Nothing older can be fetched, so
                    // nothing is lost by asking without it.
                    Some(param) => {
                        tracing::warn!("the API refuses {param} as too old for recent search ({e}); asking without it");
                        if param == "since_id" {
                            state.since_id = None;
                        } else {
                            state.since_id =
                                newer_id(state.since_id.take(), pass_newest.as_deref());
                            state.pass = None;
                        }
                        state.save(&options.state_dir)?;
                        continue 'passes;
                    }
                    None => return Err(e),
                },
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
                    let failure = Failure::Unreadable(reason);
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
            // Everything before the end of the topics now is this source's
            // (delivered) or another producer's: a restart reads back only
            // from here.
            let flushed = sink.flush().await?;
            advance_offsets(&mut state.offsets, flushed);
            advance_offsets(&mut state.offsets, sink.end_offsets().await?);
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
        if options.once && !continues_a_pass {
            break;
        }
        if options.once {
            continue;
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

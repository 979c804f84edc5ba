//! The merge: buckets before the boundary B from the batch views only,
//! buckets from B on from the realtime view only; counts are summed over
//! the range first, then ranked. Pure functions over the two views.

use std::collections::HashMap;

use serde::Serialize;
use tweetlambda_core::{format_rfc3339, time::from_millis};

use crate::batch::BatchView;
use crate::realtime::RealtimeView;

/// A query range `[from_ms, to_ms)`, aligned to buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Start, inclusive.
    pub from_ms: i64,
    /// End, exclusive.
    pub to_ms: i64,
}

impl Range {
    /// The smallest bucket-aligned range that holds `[from_ms, to_ms)`.
    pub fn aligned(from_ms: i64, to_ms: i64, bucket_ms: i64) -> Range {
        let from = tweetlambda_core::bucket_start_ms(from_ms, bucket_ms);
        let to = tweetlambda_core::bucket_start_ms(to_ms - 1, bucket_ms) + bucket_ms;
        Range {
            from_ms: from,
            to_ms: to.max(from),
        }
    }
}

/// A hashtag and its count over the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HashtagItem {
    /// The normalised hashtag.
    pub hashtag: String,
    /// Distinct tweets that mention it, summed over the range's buckets.
    pub count: i64,
}

/// A tweet and its score over the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TweetItem {
    /// Tweet id, decimal text.
    pub tweet_id: String,
    /// Engagement score summed over the range's buckets.
    pub score: i64,
    /// The tweet's text, when known.
    pub text: String,
}

/// How many buckets of the range each view answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sources {
    /// Buckets `< B` (from the batch views).
    pub batch_buckets: i64,
    /// Buckets `>= B` (from the realtime view).
    pub realtime_buckets: i64,
}

/// The answer to a top-N query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopAnswer<T> {
    /// Start of the range answered (RFC 3339).
    pub from: String,
    /// End of the range answered, exclusive.
    pub to: String,
    /// The batch boundary B, if a batch version is loaded.
    pub boundary: Option<String>,
    /// The batch version answering buckets before B.
    pub batch_version: Option<u64>,
    /// The ranked items.
    pub items: Vec<T>,
    /// Which view answered how many buckets.
    pub sources: Sources,
    /// True when part of the range could not be answered exactly (see
    /// `warnings`).
    pub partial: bool,
    /// Holes and other reasons the answer may be incomplete.
    pub warnings: Vec<String>,
}

/// Counts per bucket of some hashtags, for charts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesAnswer {
    /// Start of the range (RFC 3339).
    pub from: String,
    /// End of the range, exclusive.
    pub to: String,
    /// Width of a point, in milliseconds.
    pub step_ms: i64,
    /// The batch boundary B, if any.
    pub boundary: Option<String>,
    /// Start of each point (RFC 3339).
    pub buckets: Vec<String>,
    /// Hashtag → one count per point; `"*"` is every hashtag mention.
    pub series: Vec<Series>,
    /// As in [`TopAnswer`].
    pub partial: bool,
    /// As in [`TopAnswer`].
    pub warnings: Vec<String>,
}

/// One line of a [`SeriesAnswer`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// The hashtag (`*` for all mentions).
    pub hashtag: String,
    /// Counts, one per point.
    pub counts: Vec<i64>,
}

fn rfc3339(ms: i64) -> String {
    from_millis(ms).map(format_rfc3339).unwrap_or_default()
}

/// The split of a range between the two views, and what is missing.
struct Plan {
    boundary: i64,
    /// `[from, min(to, B))`, answered by the batch views.
    batch: Option<(i64, i64)>,
    /// `[max(from, B), to)`, answered by the realtime view.
    realtime: Option<(i64, i64)>,
    partial: bool,
    warnings: Vec<String>,
}

fn plan(batch: Option<&BatchView>, realtime: &RealtimeView, range: Range) -> Plan {
    let boundary = batch.map_or(i64::MIN, |b| b.boundary_ms);
    let mut warnings = Vec::new();
    let mut partial = false;
    if batch.is_none() {
        warnings.push(
            "no batch version is loaded: every bucket comes from the realtime view".to_string(),
        );
    }
    let batch_part = (range.from_ms < boundary.min(range.to_ms))
        .then(|| (range.from_ms, boundary.min(range.to_ms)));
    let rt_from = range.from_ms.max(boundary);
    let realtime_part = (rt_from < range.to_ms).then_some((rt_from, range.to_ms));
    if let Some((from, to)) = realtime_part {
        if from < realtime.released_before {
            partial = true;
            warnings.push(format!(
                "the realtime view released its buckets before {} (a batch version covered them) and this version's boundary is earlier",
                rfc3339(realtime.released_before)
            ));
        }
        if !realtime.caught_up {
            partial = true;
            warnings.push(format!(
                "the realtime view is still loading ({} messages behind its topic)",
                realtime.lag
            ));
        }
        // A hole: buckets from B on that the realtime view does not hold.
        // From the earliest bucket it had a record of: buckets released
        // after a batch version are not a hole.
        let held_from = realtime.first_seen_bucket_ms();
        let archived_after_b = batch.is_some_and(|b| b.tweets_from_boundary > 0);
        match held_from {
            Some(first) if first > from && (archived_after_b || batch.is_none()) => {
                partial = true;
                warnings.push(format!(
                    "hole: the realtime view holds no bucket in [{}, {}); they appear after the next batch run",
                    rfc3339(from),
                    rfc3339(first.min(to))
                ));
            }
            None if archived_after_b => {
                partial = true;
                warnings.push(format!(
                    "hole: the realtime view is empty; buckets from {} appear after the next batch run",
                    rfc3339(from)
                ));
            }
            _ => {}
        }
        // Buckets that lost late events the speed layer could no longer
        // count: short until the batch covers them.
        let (late, late_buckets) = realtime.late_in(from, to);
        if late > 0 {
            partial = true;
            warnings.push(format!(
                "late events: {late} events in {late_buckets} buckets of the realtime part arrived after the speed layer had dropped their buckets; they count once a batch run covers them"
            ));
        }
        if let (Some(b), Some(newest)) = (batch, realtime.newest_bucket_end_ms()) {
            if b.newest_event_ms >= newest && to > newest {
                partial = true;
                warnings.push(format!(
                    "the speed layer is behind the archive: the realtime view ends at {}",
                    rfc3339(newest)
                ));
            }
        }
    }
    Plan {
        boundary,
        batch: batch_part,
        realtime: realtime_part,
        partial,
        warnings,
    }
}

fn bucket_count(part: Option<(i64, i64)>, bucket_ms: i64) -> i64 {
    part.map_or(0, |(from, to)| (to - from) / bucket_ms.max(1))
}

fn answer<T>(
    batch: Option<&BatchView>,
    range: Range,
    bucket_ms: i64,
    plan: Plan,
    items: Vec<T>,
) -> TopAnswer<T> {
    TopAnswer {
        from: rfc3339(range.from_ms),
        to: rfc3339(range.to_ms),
        boundary: batch.map(|_| rfc3339(plan.boundary)),
        batch_version: batch.map(|b| b.version),
        items,
        sources: Sources {
            batch_buckets: bucket_count(plan.batch, bucket_ms),
            realtime_buckets: bucket_count(plan.realtime, bucket_ms),
        },
        partial: plan.partial,
        warnings: plan.warnings,
    }
}

/// The `n` best of `items` by the product's one ranking
/// ([`tweetlambda_core::rank::top_n`]); a zero sum means "absent from
/// the range" and is left out before ranking.
fn rank<K: Ord>(items: impl Iterator<Item = (K, i64)>, n: usize) -> Vec<(K, i64)> {
    tweetlambda_core::rank::top_n(items.filter(|(_, v)| *v > 0), n)
}

/// The top `n` hashtags over `range`.
pub fn top_hashtags(
    batch: Option<&BatchView>,
    realtime: &RealtimeView,
    range: Range,
    n: usize,
) -> TopAnswer<HashtagItem> {
    let plan = plan(batch, realtime, range);
    let mut after_b: HashMap<&str, i64> = HashMap::new();
    if let Some((from, to)) = plan.realtime {
        for (_, tags) in realtime.hashtags.range(from..to) {
            for (tag, c) in tags {
                add(after_b.entry(tag.as_str()).or_default(), *c);
            }
        }
    }
    let ranked = match (batch, plan.batch) {
        (Some(b), Some((from, to))) => b.top_hashtags(from, to, n, &after_b),
        _ => rank(after_b.into_iter(), n),
    };
    let items = ranked
        .into_iter()
        .map(|(hashtag, count)| HashtagItem {
            hashtag: hashtag.to_string(),
            count,
        })
        .collect();
    let bucket_ms = bucket_ms(batch, realtime);
    answer(batch, range, bucket_ms, plan, items)
}

/// Adds to a sum, saturating: the views' values are bounded (see
/// `tweetlambda_core::tweet::MAX_REPORTED_COUNT`), a broken view message
/// is not.
fn add(sum: &mut i64, value: i64) {
    *sum = sum.saturating_add(value);
}

/// The top `n` tweets over `range`.
///
/// The realtime part's scores are summed by tweet (a few hours of buckets);
/// the batch views then rank them together with the part before B
/// ([`BatchView::top_tweets`] reads only the heads of its sorted lists).
pub fn top_tweets(
    batch: Option<&BatchView>,
    realtime: &RealtimeView,
    range: Range,
    n: usize,
) -> TopAnswer<TweetItem> {
    let plan = plan(batch, realtime, range);
    let mut after_b: HashMap<u64, i64> = HashMap::new();
    if let Some((from, to)) = plan.realtime {
        for (_, tweets) in realtime.tweets.range(from..to) {
            for (id, s) in tweets {
                add(after_b.entry(*id).or_default(), *s);
            }
        }
    }
    let ranked = match (batch, plan.batch) {
        (Some(b), Some((from, to))) => b.top_tweets(from, to, n, &after_b),
        _ => rank(after_b.into_iter(), n),
    };
    let items = ranked
        .into_iter()
        .map(|(id, score)| TweetItem {
            tweet_id: id.to_string(),
            score,
            text: batch
                .and_then(|b| b.text(id))
                .or_else(|| realtime.text(id))
                .unwrap_or_default()
                .to_string(),
        })
        .collect();
    let bucket_ms = bucket_ms(batch, realtime);
    answer(batch, range, bucket_ms, plan, items)
}

/// Counts per point of `step_ms` for `tags` (and `*`, all mentions).
pub fn series(
    batch: Option<&BatchView>,
    realtime: &RealtimeView,
    range: Range,
    step_ms: i64,
    tags: &[String],
) -> SeriesAnswer {
    let full = plan(batch, realtime, range);
    let step = step_ms.max(bucket_ms(batch, realtime));
    let points: Vec<i64> = (0..)
        .map(|k| range.from_ms + k * step)
        .take_while(|t| *t < range.to_ms)
        .collect();
    let mut series: Vec<Series> = tags
        .iter()
        .map(|t| t.as_str())
        .chain(["*"])
        .map(|t| Series {
            hashtag: t.to_string(),
            counts: vec![0; points.len()],
        })
        .collect();
    let index: HashMap<&str, usize> = tags
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    let all = tags.len();
    for (k, start) in points.iter().enumerate() {
        let point = Range {
            from_ms: *start,
            to_ms: (start + step).min(range.to_ms),
        };
        let p = plan(batch, realtime, point);
        let mut add_tag = |tag: &str, c: i64| {
            if let Some(i) = index.get(tag) {
                add(&mut series[*i].counts[k], c);
            }
            add(&mut series[all].counts[k], c);
        };
        if let (Some(b), Some((from, to))) = (batch, p.batch) {
            b.sum_hashtags(from, to, &mut add_tag);
        }
        if let Some((from, to)) = p.realtime {
            for (_, m) in realtime.hashtags.range(from..to) {
                for (tag, c) in m {
                    add_tag(tag, *c);
                }
            }
        }
    }
    SeriesAnswer {
        from: rfc3339(range.from_ms),
        to: rfc3339(range.to_ms),
        step_ms: step,
        boundary: batch.map(|_| rfc3339(full.boundary)),
        buckets: points.iter().map(|t| rfc3339(*t)).collect(),
        series,
        partial: full.partial,
        warnings: full.warnings,
    }
}

/// Bucket size: the batch manifest's, else the realtime view's (the
/// server's `--bucket`, which must be the speed layer's).
pub fn bucket_ms(batch: Option<&BatchView>, realtime: &RealtimeView) -> i64 {
    batch.map_or(realtime.bucket_ms, |b| b.bucket_ms)
}

/// The end of the newest bucket either view knows: `last=1h` ends there.
pub fn newest_end_ms(batch: Option<&BatchView>, realtime: &RealtimeView) -> Option<i64> {
    let rt = realtime.newest_bucket_end_ms();
    let b = batch.map(|b| b.boundary_ms);
    match (rt, b) {
        (Some(r), Some(b)) => Some(r.max(b)),
        (r, b) => r.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::{set_tweets, view_of};

    const MIN: i64 = 60_000;
    const HOUR: i64 = 3_600_000;

    /// A realtime view from (bucket, hashtag, count) rows.
    fn realtime(rows: &[(i64, &str, i64)]) -> RealtimeView {
        let mut rt = RealtimeView::new(MIN);
        rt.caught_up = true;
        for (b, tag, c) in rows {
            rt.apply_hashtag(*b, tag, *c);
        }
        rt
    }

    fn counts(a: &TopAnswer<HashtagItem>) -> Vec<(String, i64)> {
        a.items
            .iter()
            .map(|i| (i.hashtag.clone(), i.count))
            .collect()
    }

    #[test]
    fn ranking_keeps_the_best_with_ties_by_key() {
        let items = vec![("b", 2), ("a", 2), ("c", 5), ("d", 1), ("e", 0)];
        assert_eq!(
            rank(items.clone().into_iter(), 3),
            vec![("c", 5), ("a", 2), ("b", 2)]
        );
        assert_eq!(
            rank(items.clone().into_iter(), 10).len(),
            4,
            "zeros are left out"
        );
        assert!(rank(items.into_iter(), 0).is_empty());
    }

    #[test]
    fn ranges_align_to_buckets() {
        assert_eq!(
            Range::aligned(MIN + 5, 3 * MIN + 1, MIN),
            Range {
                from_ms: MIN,
                to_ms: 4 * MIN
            }
        );
        assert_eq!(
            Range::aligned(MIN, 2 * MIN, MIN),
            Range {
                from_ms: MIN,
                to_ms: 2 * MIN
            }
        );
    }

    #[test]
    fn buckets_before_b_come_from_batch_and_the_rest_from_realtime() {
        // Batch: "a" 1 per minute for two hours; B at 2 h. The realtime view
        // also holds minutes before B (with other counts): they must be ignored.
        let rows: Vec<(i64, &str, i64)> = (0..120).map(|m| (m * MIN, "a", 1)).collect();
        let batch = view_of(&rows, 2 * HOUR, MIN);
        let rt = realtime(&[
            (HOUR, "a", 50),
            (2 * HOUR, "a", 7),
            (2 * HOUR + MIN, "b", 9),
        ]);
        let all = Range {
            from_ms: 0,
            to_ms: 3 * HOUR,
        };
        let a = top_hashtags(Some(&batch), &rt, all, 10);
        assert_eq!(counts(&a), vec![("a".into(), 127), ("b".into(), 9)]);
        assert_eq!(a.sources.batch_buckets, 120);
        assert_eq!(a.sources.realtime_buckets, 60);
        assert!(!a.partial, "{:?}", a.warnings);
        // Entirely before B, straddling inside an hour, entirely after.
        let before = Range {
            from_ms: 30 * MIN,
            to_ms: 90 * MIN,
        };
        assert_eq!(
            counts(&top_hashtags(Some(&batch), &rt, before, 10)),
            vec![("a".into(), 60)]
        );
        let after = Range {
            from_ms: 2 * HOUR,
            to_ms: 3 * HOUR,
        };
        let a = top_hashtags(Some(&batch), &rt, after, 1);
        assert_eq!(counts(&a), vec![("b".into(), 9)]);
        assert_eq!(a.sources.batch_buckets, 0);
    }

    #[test]
    fn rollups_give_the_same_sums_as_minutes() {
        // Minutes of three days; B in the middle of an hour of day 2.
        let rows: Vec<(i64, &str, i64)> = (0..3 * 24 * 60)
            .map(|m| (m * MIN, if m % 3 == 0 { "x" } else { "y" }, 1 + m % 5))
            .collect();
        let b = (24 * 60 + 90) * MIN + 17 * MIN;
        let batch = view_of(&rows, b, MIN);
        let rt = realtime(&[]);
        for (from, to) in [
            (0, 3 * 24 * 60),
            (13, 24 * 60 + 200),
            (60, 24 * 60),
            (24 * 60, 2 * 24 * 60),
        ] {
            let range = Range {
                from_ms: from * MIN,
                to_ms: to * MIN,
            };
            let mut expected: HashMap<&str, i64> = HashMap::new();
            for (t, tag, c) in &rows {
                if *t >= range.from_ms && *t < range.to_ms.min(b) {
                    *expected.entry(tag).or_default() += c;
                }
            }
            let got: HashMap<String, i64> = counts(&top_hashtags(Some(&batch), &rt, range, 10))
                .into_iter()
                .collect();
            let expected: HashMap<String, i64> = expected
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            assert_eq!(got, expected, "range {from}..{to} min");
        }
    }

    #[test]
    fn top_tweets_sum_batch_and_realtime_over_short_and_long_ranges() {
        // Tweets over three days; B at the start of day 3.
        let day = 24 * HOUR;
        let rows: Vec<(i64, u64, i64)> = (0..3 * 24 * 60)
            .map(|m| (m * MIN, (m % 97) as u64 + 1, 1 + m % 7))
            .collect();
        let mut batch = view_of(&[], 2 * day, MIN);
        set_tweets(&mut batch, &rows);
        let mut rt = realtime(&[]);
        for (b, id, s) in rows.iter().filter(|r| r.0 >= 2 * day) {
            let prev = rt
                .tweets
                .get(b)
                .and_then(|m| m.get(id))
                .copied()
                .unwrap_or(0);
            rt.apply_tweet(*b, *id, prev + s, "");
        }
        rt.apply_tweet(2 * day + MIN, 5000, 100_000, "only realtime");
        for (from, to) in [
            (0, 3 * day),
            (day - 7 * MIN, day + 3 * HOUR),
            (2 * day - HOUR, 2 * day + HOUR),
        ] {
            let mut expected: HashMap<u64, i64> = HashMap::new();
            for (b, id, s) in &rows {
                if *b >= from && *b < to {
                    *expected.entry(*id).or_default() += s;
                }
            }
            if (from..to).contains(&(2 * day + MIN)) {
                expected.insert(5000, 100_000);
            }
            let mut expected: Vec<(u64, i64)> = expected.into_iter().collect();
            expected.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            expected.truncate(5);
            let got: Vec<(u64, i64)> = top_tweets(
                Some(&batch),
                &rt,
                Range {
                    from_ms: from,
                    to_ms: to,
                },
                5,
            )
            .items
            .iter()
            .map(|t| (t.tweet_id.parse().expect("id"), t.score))
            .collect();
            assert_eq!(got, expected, "range {from}..{to}");
        }
    }

    #[test]
    fn holes_and_missing_batch_are_reported() {
        let rows = [(0, "a", 1)];
        let mut batch = view_of(&rows, HOUR, MIN);
        batch.tweets_from_boundary = 5;
        // The realtime view starts 10 minutes after B.
        let rt = realtime(&[(HOUR + 10 * MIN, "a", 2)]);
        let range = Range {
            from_ms: 0,
            to_ms: 2 * HOUR,
        };
        let a = top_hashtags(Some(&batch), &rt, range, 10);
        assert!(a.partial);
        assert!(
            a.warnings.iter().any(|w| w.starts_with("hole")),
            "{:?}",
            a.warnings
        );
        // Entirely before B: no hole in it.
        let early = Range {
            from_ms: 0,
            to_ms: HOUR,
        };
        assert!(!top_hashtags(Some(&batch), &rt, early, 10).partial);
        // No batch: everything from the realtime view, said so.
        let a = top_hashtags(None, &rt, range, 10);
        assert_eq!(counts(&a), vec![("a".into(), 2)]);
        assert!(a.warnings.iter().any(|w| w.contains("no batch version")));
        assert_eq!(a.boundary, None);
    }

    /// Late events the speed layer could not count flag the answers whose
    /// realtime part covers their buckets, and only those.
    #[test]
    fn answers_over_buckets_with_late_events_are_partial() {
        let batch = view_of(&[(0, "a", 1)], HOUR, MIN);
        let mut rt = realtime(&[(HOUR, "a", 2), (HOUR + 5 * MIN, "a", 1)]);
        rt.caught_up = true;
        let whole = Range {
            from_ms: 0,
            to_ms: 2 * HOUR,
        };
        assert!(!top_hashtags(Some(&batch), &rt, whole, 10).partial);
        for source in ["hashtags-0", "tweets-1"] {
            rt.apply_record(
                format!("late/3900000/{source}").as_bytes(),
                Some(br#"{"kind":"late","events":1}"#),
            )
            .expect("late record");
        }
        // A newer record of a key replaces the older one: 2 from tweets-1.
        rt.apply_record(
            b"late/3900000/tweets-1",
            Some(br#"{"kind":"late","events":2}"#),
        )
        .expect("late record");
        let a = top_tweets(Some(&batch), &rt, whole, 10);
        assert!(a.partial);
        assert!(
            a.warnings
                .iter()
                .any(|w| w.starts_with("late events: 3 events in 1 buckets")),
            "{:?}",
            a.warnings
        );
        assert!(top_hashtags(Some(&batch), &rt, whole, 10).partial);
        // A range whose realtime part does not hold that bucket is exact.
        let before = Range {
            from_ms: 0,
            to_ms: HOUR + 5 * MIN,
        };
        assert!(!top_hashtags(Some(&batch), &rt, before, 10).partial);
        // Before B the batch counts them: no flag either.
        let past = view_of(&[(0, "a", 1)], 2 * HOUR, MIN);
        assert!(!top_hashtags(Some(&past), &rt, whole, 10).partial);
    }

    /// Buckets the realtime view released after a batch version with a
    /// later boundary: a version with an earlier one (a query that started
    /// on it, or a version put back) flags what it would miss.
    #[test]
    fn released_realtime_buckets_flag_a_version_with_an_earlier_boundary() {
        let mut rt = realtime(&[(HOUR, "a", 2), (2 * HOUR, "a", 3)]);
        let whole = Range {
            from_ms: 0,
            to_ms: 3 * HOUR,
        };
        let newer = view_of(&[(HOUR, "a", 2)], 2 * HOUR, MIN);
        rt.release_before(newer.boundary_ms);
        let a = top_hashtags(Some(&newer), &rt, whole, 10);
        assert!(!a.partial, "{:?}", a.warnings);
        assert_eq!(counts(&a), vec![("a".into(), 5)]);
        let older = view_of(&[(0, "a", 1)], HOUR, MIN);
        let a = top_hashtags(Some(&older), &rt, whole, 10);
        assert!(a.partial);
        assert!(
            a.warnings.iter().any(|w| w.contains("released")),
            "{:?}",
            a.warnings
        );
    }

    #[test]
    fn series_points_sum_buckets_across_the_boundary() {
        let rows: Vec<(i64, &str, i64)> = (0..120).map(|m| (m * MIN, "a", 1)).collect();
        let batch = view_of(&rows, 90 * MIN, MIN);
        let rt = realtime(&[(90 * MIN, "a", 4), (100 * MIN, "b", 3)]);
        let s = series(
            Some(&batch),
            &rt,
            Range {
                from_ms: 0,
                to_ms: 2 * HOUR,
            },
            HOUR,
            &["a".to_string()],
        );
        assert_eq!(s.buckets.len(), 2);
        assert_eq!(s.series[0].counts, vec![60, 30 + 4]);
        assert_eq!(s.series[1].hashtag, "*");
        assert_eq!(s.series[1].counts, vec![60, 30 + 4 + 3]);
    }
}

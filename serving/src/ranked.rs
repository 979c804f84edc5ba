//! Sums by key over bucket ranges, and their exact top N without summing
//! every key of the range.
//!
//! One [`Ranked`] holds one view's rows (hashtag counts, or tweet scores)
//! with the keys as dense indexes:
//!
//! - per key, its buckets and running sums (postings), which give the
//!   exact sum of any range for one key in two binary searches;
//! - one list of every key by its total over all buckets, descending. A
//!   key's sum over any range is at most its total (the values are not
//!   negative), so [`Ranked::candidates`] reads that list from the top,
//!   sums each key over the range, and stops as soon as the next total is
//!   below the N-th best sum: no key further down can enter the top N (a
//!   threshold algorithm with one sorted list). For a range that a few
//!   hours (or else a few days) cover, the lists of those periods, each by
//!   the keys' sums over its period, are read too, side by side with it, a
//!   row of each list at a time: a key not read yet can sum at most the
//!   period rows just read added up (Fagin's threshold algorithm), and at
//!   most the total just read; the search stops once either bound is
//!   below the N-th best sum. The periods' bound is the tighter one when
//!   the range covers its periods; a day partly outside the range can
//!   leave the totals' bound tighter; the two are read by turns, a key
//!   not summed yet from each, so the search sums at most twice the keys
//!   the better one alone would;
//! - per day, hour and bucket, its keys by total. Where most of each key's
//!   value lies in one bucket (tweet scores: the counts a source reports
//!   land in the minute a tweet was created), a key's total bounds its sum
//!   over a short range closely, and only the keys with a row in the
//!   range can have a sum there: the keys of the range's pieces, merged by
//!   total, are then the one list read (a key not given yet sums at most
//!   the next total). A range of an hour reads its own dozen best keys
//!   instead of thousands that the hours' rows, loose on a partly covered
//!   hour, or the totals of every key would have read;
//! - the rows by day, hour and bucket, so that a range is summed from the
//!   largest periods that fit in it (30 days read about thirty day rows
//!   per key instead of 43,200 minute rows). They are summed in full when
//!   the list would be read deeper than the range has rows (a range that
//!   only keys of small totals fill), so that an answer never costs much
//!   more than summing the range.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use tweetlambda_batch::views::{DAY_MS, HOUR_MS};
use tweetlambda_core::aggregate::FastSet;

/// How a top-N answer was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    /// Every row of the range summed.
    Summed,
    /// The list by total, with the lists of the hours or days that cover
    /// the range, read until `read` keys were summed.
    ByLists { read: usize },
}

/// At most this many hour or day lists are read together for one range
/// (a range of an hour or a day usually meets two).
const MAX_PERIOD_LISTS: i64 = 4;

/// At most this many pieces (days, hours, buckets) of a range are merged
/// by total; a longer walk reads the list of every key by total instead
/// (any range of 30 days takes at most 29 days, 46 hours and 118 minutes).
const MAX_PIECES: usize = 256;

/// A list of keys, best first, that [`Ranked::candidates`] reads.
enum List<'a> {
    /// Every key by its total over all buckets.
    ByTotal,
    /// The rows of one day or hour, by value.
    Period(&'a [(u32, i64)]),
}

impl List<'_> {
    /// The key and its bound at `depth` rows in, if the list is that long.
    fn row(&self, ranked: &Ranked, depth: usize) -> Option<(u32, i64)> {
        match self {
            List::ByTotal => ranked
                .by_total
                .get(depth)
                .map(|i| (*i, ranked.total(*i as usize))),
            List::Period(rows) => rows.get(depth).copied(),
        }
    }
}

/// The keys of one piece of a range (a day, an hour or a bucket) by
/// total, best first.
#[derive(Clone, Copy)]
enum Keys<'a> {
    /// A day's or an hour's keys.
    Indexes(&'a [u32]),
    /// A bucket's rows, kept in that order.
    Rows(&'a [(u32, i64)]),
}

impl Keys<'_> {
    fn get(&self, at: usize) -> Option<u32> {
        match self {
            Keys::Indexes(keys) => keys.get(at).copied(),
            Keys::Rows(rows) => rows.get(at).map(|(i, _)| *i),
        }
    }
}

/// A piece of a range as [`visit`] gives it: its level's index, its start
/// and its rows.
type Piece<'a> = (usize, i64, &'a [(u32, i64)]);

/// Lists whose rows bound the sum over the range of every key that none
/// of them gave yet, and where the search stands in them.
enum Group<'a> {
    /// Lists read a row of each at a time (Fagin's threshold algorithm): a
    /// key not read yet lies at `depth` or deeper in each, so its sum is at
    /// most their rows at `depth` added up.
    SideBySide {
        lists: Vec<List<'a>>,
        depth: usize,
        next: usize,
    },
    /// The keys of the pieces that make up the range, merged by total: a
    /// key with a sum in the range has a row in one of the pieces, and its
    /// sum is at most its total, so a key not given yet sums at most the
    /// next total. Tight where a key's values sit in few buckets (a
    /// tweet's score, mostly in the minute it was created).
    InRange {
        pieces: Vec<Keys<'a>>,
        /// The next key of each piece not ended: (total, key, piece, at).
        heads: BinaryHeap<(i64, Reverse<u32>, usize, usize)>,
    },
}

impl<'a> Group<'a> {
    fn in_range(ranked: &Ranked, pieces: Vec<Keys<'a>>) -> Group<'a> {
        let heads = pieces
            .iter()
            .enumerate()
            .filter_map(|(p, keys)| {
                let i = keys.get(0)?;
                Some((ranked.total(i as usize), Reverse(i), p, 0))
            })
            .collect();
        Group::InRange { pieces, heads }
    }

    /// The most a key not given yet can sum over the range.
    fn bound(&self, ranked: &Ranked) -> i64 {
        match self {
            Group::SideBySide { lists, depth, .. } => lists
                .iter()
                .filter_map(|list| list.row(ranked, *depth))
                .fold(0i64, |bound, (_, v)| bound.saturating_add(v)),
            Group::InRange { heads, .. } => heads.peek().map_or(0, |(total, ..)| *total),
        }
    }

    /// The next key, `None` once every list ended (the bound is then 0).
    fn next_key(&mut self, ranked: &Ranked) -> Option<u32> {
        match self {
            Group::SideBySide { lists, depth, next } => {
                // At most one turn over the lists at this depth: if none
                // has a row there, all of them ended.
                for _ in 0..lists.len() {
                    let row = lists[*next].row(ranked, *depth);
                    *next += 1;
                    if *next == lists.len() {
                        *next = 0;
                        *depth += 1;
                    }
                    if let Some((i, _)) = row {
                        return Some(i);
                    }
                }
                None
            }
            Group::InRange { pieces, heads } => {
                let (_, Reverse(i), p, at) = heads.pop()?;
                if let Some(n) = pieces[p].get(at + 1) {
                    heads.push((ranked.total(n as usize), Reverse(n), p, at + 1));
                }
                Some(i)
            }
        }
    }
}

/// Rows of one level: bucket start → (key, value) rows.
#[derive(Debug, Default, Clone)]
pub struct Level<K> {
    /// Bucket size of the level, in ms.
    pub size_ms: i64,
    /// Bucket start → rows.
    pub buckets: BTreeMap<i64, Vec<(K, i64)>>,
}

/// Per key index `i`: its rows are `offsets[i]..offsets[i + 1]` of
/// `buckets` (ascending) and `sums` (the key's running sum up to and
/// including that row).
#[derive(Debug, Default, Clone)]
struct Postings {
    offsets: Vec<u32>,
    buckets: Vec<i64>,
    sums: Vec<i64>,
}

/// One view's values by key index and bucket (see the module's comment).
#[derive(Debug, Default, Clone)]
pub(crate) struct Ranked {
    /// Rows by day, hour and bucket (the last), largest first. A day's or
    /// an hour's rows are by value, best first; in a concentrated view, a
    /// bucket's by the keys' totals.
    levels: Vec<Level<u32>>,
    /// Per day and hour level (as in `levels`): per period, the keys of
    /// its rows by total, best first (only for a concentrated view).
    keys_by_total: Vec<BTreeMap<i64, Vec<u32>>>,
    postings: Postings,
    /// Per key index, its sum over all buckets (read at every step of a
    /// search: one array, not the postings).
    totals: Vec<i64>,
    /// Key indexes by total over all buckets, descending (ties by index).
    pub(crate) by_total: Vec<u32>,
    /// False when a value is negative or a key's sum reaches `i64::MAX`
    /// (hand-made views): the threshold's bound needs non-negative values
    /// and exact running sums, so every row of the range is summed instead
    /// (and no day or hour rows are built from the running sums).
    pub(crate) exact: bool,
    /// True when at least half of all the values lie in each key's largest
    /// bucket row (tweet scores, mostly in the minute a tweet was created;
    /// not hashtags, counted in every bucket): then a key's total bounds
    /// its sum over a short range closely, and the keys of the range's
    /// pieces by total are the list to read (a key in every piece would be
    /// met once per piece).
    pub(crate) concentrated: bool,
}

impl Ranked {
    /// Indexes the bucket rows of `keys` keys (indexes `0..keys`).
    pub(crate) fn build(mut bucket_level: Level<u32>, keys: usize) -> Ranked {
        let bucket_ms = bucket_level.size_ms;
        let mut exact = true;
        // Postings, in two passes over the rows (counts, then fill): the
        // buckets come in order, so each key's buckets ascend.
        let mut offsets = vec![0u32; keys + 1];
        for rows in bucket_level.buckets.values() {
            for (i, v) in rows {
                if let Some(o) = offsets.get_mut(*i as usize + 1) {
                    *o += 1;
                }
                exact &= *v >= 0;
            }
        }
        for i in 0..keys {
            offsets[i + 1] += offsets[i];
        }
        let total = offsets[keys] as usize;
        let mut next: Vec<u32> = offsets[..keys].to_vec();
        let mut buckets = vec![0i64; total];
        let mut sums = vec![0i64; total];
        for (b, rows) in &bucket_level.buckets {
            for (i, v) in rows {
                let Some(at) = next.get_mut(*i as usize) else {
                    continue;
                };
                buckets[*at as usize] = *b;
                sums[*at as usize] = *v;
                *at += 1;
            }
        }
        // Running sums; and the values of all keys and of their largest
        // rows, added up.
        let (mut all, mut largest) = (0i128, 0i128);
        let mut totals = vec![0i64; keys];
        for i in 0..keys {
            let mut sum = 0i64;
            let mut max = 0i64;
            for value in &mut sums[offsets[i] as usize..offsets[i + 1] as usize] {
                max = max.max(*value);
                sum = sum.saturating_add(*value);
                exact &= sum < i64::MAX;
                *value = sum;
            }
            totals[i] = sum;
            all += i128::from(sum);
            largest += i128::from(max);
        }
        let concentrated = exact && 2 * largest >= all;
        let mut ranked = Ranked {
            levels: Vec::new(),
            keys_by_total: Vec::new(),
            totals,
            postings: Postings {
                offsets,
                buckets,
                sums,
            },
            by_total: Vec::new(),
            exact,
            concentrated,
        };
        // Day and hour rows from the postings (rows of value 0 cannot move
        // a sum and are left out), for periods made of whole buckets, and
        // only over sums that are exact.
        for size_ms in [DAY_MS, HOUR_MS] {
            if exact && size_ms > bucket_ms && size_ms % bucket_ms == 0 {
                let level = ranked.rollup(size_ms, keys);
                ranked.levels.push(level);
            }
        }
        // The day and hour lists, best first by value; and, for a view whose
        // values are concentrated (the only one that reads them), the same
        // periods' keys by total and the buckets' rows by total.
        let by_total = |ranked: &Ranked, i: u32| (Reverse(ranked.total(i as usize)), i);
        if concentrated {
            let mut keys_by_total = Vec::new();
            for level in &ranked.levels {
                let periods = level.buckets.iter().map(|(start, rows)| {
                    let mut keys: Vec<u32> = rows.iter().map(|(i, _)| *i).collect();
                    keys.sort_unstable_by_key(|i| by_total(&ranked, *i));
                    (*start, keys)
                });
                keys_by_total.push(periods.collect());
            }
            ranked.keys_by_total = keys_by_total;
            for rows in bucket_level.buckets.values_mut() {
                rows.sort_unstable_by_key(|(i, _)| by_total(&ranked, *i));
            }
        }
        for level in ranked.levels.iter_mut() {
            for rows in level.buckets.values_mut() {
                rows.sort_unstable_by_key(|(i, v)| (Reverse(*v), *i));
            }
        }
        ranked.levels.push(std::mem::take(&mut bucket_level));
        let mut order: Vec<u32> = (0..keys as u32).collect();
        order.sort_unstable_by_key(|i| by_total(&ranked, *i));
        ranked.by_total = order;
        ranked
    }

    /// The rows of periods of `size_ms`, from the running sums: a run of a
    /// key's rows in one period sums to the running sum at its last row
    /// minus the one before it.
    fn rollup(&self, size_ms: i64, keys: usize) -> Level<u32> {
        let mut level = Level {
            size_ms,
            buckets: BTreeMap::new(),
        };
        let p = &self.postings;
        let period = |at: usize| p.buckets[at] - p.buckets[at].rem_euclid(size_ms);
        for i in 0..keys {
            let rows = p.offsets[i] as usize..p.offsets[i + 1] as usize;
            let mut run_start = rows.start;
            for at in rows.clone() {
                if at + 1 < rows.end && period(at + 1) == period(at) {
                    continue;
                }
                let before = if run_start == rows.start {
                    0
                } else {
                    p.sums[run_start - 1]
                };
                let sum = p.sums[at] - before;
                if sum != 0 {
                    level
                        .buckets
                        .entry(period(at))
                        .or_default()
                        .push((i as u32, sum));
                }
                run_start = at + 1;
            }
        }
        level
    }

    /// The groups of lists that bound the sum over `[from, end)` (`end` at
    /// most B) of every key not read from them yet. For a view whose
    /// values are concentrated, the keys of the range's `pieces` by total
    /// alone, when at most [`MAX_PIECES`] pieces make it up. Else the list
    /// of every key by total; and the lists of the hours (or else the
    /// days) that cover the range by value, when at most
    /// [`MAX_PERIOD_LISTS`] of them do (the rows of a period sum only
    /// buckets before B, as the range does). Neither of these two bounds
    /// is the tighter one for every range: the totals count every bucket,
    /// a period's rows the part of a partly covered period outside it.
    fn bounding_lists<'a>(&'a self, pieces: &[Piece<'a>], from: i64, end: i64) -> Vec<Group<'a>> {
        if end <= from {
            return Vec::new();
        }
        if self.concentrated && pieces.len() <= MAX_PIECES {
            let keys = pieces.iter().map(|p| self.keys_by_total(p)).collect();
            return vec![Group::in_range(self, keys)];
        }
        let mut groups = vec![Group::SideBySide {
            lists: vec![List::ByTotal],
            depth: 0,
            next: 0,
        }];
        // The rollups, smallest period first (the bucket level is last).
        let rollups = &self.levels[..self.levels.len().saturating_sub(1)];
        for level in rollups.iter().rev() {
            let size = level.size_ms;
            let first = from - from.rem_euclid(size);
            let periods = (end - 1 - first) / size + 1;
            if periods <= MAX_PERIOD_LISTS {
                let lists = (0..periods)
                    .map(|k| {
                        let rows = level.buckets.get(&(first + k * size));
                        List::Period(rows.map_or(&[][..], Vec::as_slice))
                    })
                    .collect();
                groups.push(Group::SideBySide {
                    lists,
                    depth: 0,
                    next: 0,
                });
                break;
            }
        }
        groups
    }

    /// A key's sum over all its buckets.
    fn total(&self, index: usize) -> i64 {
        self.totals.get(index).copied().unwrap_or(0)
    }

    /// The exact sum of one key's values over `[from, min(to, boundary))`.
    pub(crate) fn sum(&self, index: usize, boundary: i64, from: i64, to: i64) -> i64 {
        let p = &self.postings;
        let (Some(start), Some(end)) = (p.offsets.get(index), p.offsets.get(index + 1)) else {
            return 0;
        };
        let (start, end) = (*start as usize, *end as usize);
        let buckets = &p.buckets[start..end];
        let to = to.min(boundary);
        // Running sum of the rows before position k (k rows in).
        let before = |k: usize| if k == 0 { 0 } else { p.sums[start + k - 1] };
        let lo = buckets.partition_point(|b| *b < from);
        let hi = buckets.partition_point(|b| *b < to);
        if hi <= lo {
            return 0;
        }
        before(hi).saturating_sub(before(lo))
    }

    /// Calls `f` with the rows that make up `[from, min(to, boundary))`,
    /// from the largest periods that fit.
    pub(crate) fn visit<'a>(
        &'a self,
        boundary: i64,
        from: i64,
        to: i64,
        mut f: impl FnMut(&'a [(u32, i64)]),
    ) {
        visit(&self.levels, boundary, from, to, |_, _, rows| f(rows));
    }

    /// The keys of one piece that [`visit`] gave, by total.
    fn keys_by_total<'a>(&'a self, &(level, start, rows): &Piece<'a>) -> Keys<'a> {
        match self.keys_by_total.get(level) {
            Some(periods) => Keys::Indexes(periods.get(&start).map_or(&[][..], Vec::as_slice)),
            None => Keys::Rows(rows),
        }
    }

    /// Every key that may be among the `n` best over `[from, min(to,
    /// boundary))`, with its exact sum, and how they were found. `extra`
    /// holds values of known keys from elsewhere (after B), added to their
    /// sums; `unknown` the sums of keys this view does not have, which
    /// compete for the top N but are not returned (the caller has them).
    /// Ranking the candidates with the unknown keys by the product's rule
    /// gives the same top N as summing every key.
    pub(crate) fn candidates(
        &self,
        boundary: i64,
        from: i64,
        to: i64,
        n: usize,
        extra: &HashMap<u32, i64>,
        unknown: impl Iterator<Item = i64>,
    ) -> (Vec<(u32, i64)>, Reading) {
        if n == 0 {
            return (Vec::new(), Reading::Summed);
        }
        let mut pieces: Vec<Piece<'_>> = Vec::new();
        visit(&self.levels, boundary, from, to, |level, start, rows| {
            pieces.push((level, start, rows));
        });
        let ranges: Vec<&[(u32, i64)]> = pieces.iter().map(|(_, _, rows)| *rows).collect();
        if !self.exact {
            return (sum_lists(&ranges, extra), Reading::Summed);
        }
        let rows: usize = ranges.iter().map(|l| l.len()).sum();
        // Every key of `extra` is a candidate with its exact sum.
        let mut sums: Vec<(u32, i64)> = extra
            .iter()
            .map(|(i, v)| {
                let before_b = self.sum(*i as usize, boundary, from, to);
                (*i, v.saturating_add(before_b))
            })
            .collect();
        // The n best sums so far (a min-heap).
        let mut best: BinaryHeap<Reverse<i64>> = BinaryHeap::with_capacity(n + 1);
        let mut keep = |sum: i64| {
            if best.len() < n {
                best.push(Reverse(sum));
            } else if best.peek().is_some_and(|Reverse(worst)| sum > *worst) {
                best.pop();
                best.push(Reverse(sum));
            }
            // The bound a key must reach to still enter the top n.
            (best.len() == n).then(|| best.peek().map_or(i64::MIN, |Reverse(w)| *w))
        };
        let mut threshold = None;
        for sum in sums.iter().map(|(_, v)| *v).chain(unknown) {
            threshold = keep(sum);
        }
        // Read the groups of lists whose bounds hold for the range side by
        // side, a new key from each at a time, until one group's bound is
        // below the N-th best sum.
        let mut groups = self.bounding_lists(&pieces, from, to.min(boundary));
        if groups.is_empty() {
            // No batch part in the range: `extra` and `unknown` rank alone.
            return (sums, Reading::ByLists { read: 0 });
        }
        let mut seen: FastSet<u32> = FastSet::default();
        let mut read = 0;
        'search: loop {
            for group in groups.iter_mut() {
                // Up to the next key not summed yet, unless the group's
                // bound settles the search first.
                loop {
                    let bound = group.bound(self);
                    // Strictly below: a key whose sum equals the N-th best
                    // could still win the tie by its key. (An ended group
                    // bounds by 0.)
                    if bound <= 0 || threshold.is_some_and(|t| bound < t) {
                        break 'search;
                    }
                    let Some(i) = group.next_key(self) else {
                        break 'search;
                    };
                    if extra.contains_key(&i) || !seen.insert(i) {
                        continue;
                    }
                    if read > rows {
                        // Deeper than the range has rows: summing them costs less.
                        return (sum_lists(&ranges, extra), Reading::Summed);
                    }
                    read += 1;
                    let sum = self.sum(i as usize, boundary, from, to);
                    if sum > 0 {
                        sums.push((i, sum));
                        threshold = keep(sum);
                    }
                    break;
                }
            }
        }
        (sums, Reading::ByLists { read })
    }
}

/// The rows of `lists` summed by key, with `extra` added.
fn sum_lists(lists: &[&[(u32, i64)]], extra: &HashMap<u32, i64>) -> Vec<(u32, i64)> {
    let mut sums: HashMap<u32, i64> = extra.clone();
    for rows in lists {
        for (i, v) in rows.iter() {
            let sum = sums.entry(*i).or_default();
            *sum = sum.saturating_add(*v);
        }
    }
    sums.into_iter().collect()
}

/// Walks `[from, min(to, B))` with the largest level whose period starts at
/// the cursor and fits, calling `f` with the level's index, the period's
/// start and its rows. A rollup row sums only the buckets before B, so a
/// period that reaches past B fits as long as B does not pass `to`.
fn visit<'a, K>(
    levels: &'a [Level<K>],
    boundary: i64,
    from: i64,
    to: i64,
    mut f: impl FnMut(usize, i64, &'a [(K, i64)]),
) {
    let Some(base) = levels.len().checked_sub(1) else {
        return;
    };
    let end = to.min(boundary);
    let mut cursor = from;
    while cursor < end {
        let at = levels
            .iter()
            .position(|l| {
                cursor.rem_euclid(l.size_ms) == 0 && (cursor + l.size_ms).min(boundary) <= to
            })
            .unwrap_or(base);
        let level = &levels[at];
        if let Some(rows) = level.buckets.get(&cursor) {
            f(at, cursor, rows);
        }
        cursor += level.size_ms.max(1);
    }
}

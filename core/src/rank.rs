//! The one top-N ranking of the product, used by the speed layer's window
//! messages, the batch layer's `--show-top` and the serving layer's answers.
//!
//! Rule: every item present is ranked, a zero value included (a tweet with
//! no engagement is still a tweet of the range); value descending, ties by
//! key ascending. Absent items (a hashtag whose count fell to zero is
//! removed from its bucket) are never ranked; the serving layer, whose sums
//! hold a slot for every known key, leaves its zero slots out for that
//! reason.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The `n` best of `items` by the rule above. One pass with a bounded heap:
/// memory for `n` items whatever the input's length.
pub fn top_n<K: Ord>(items: impl IntoIterator<Item = (K, i64)>, n: usize) -> Vec<(K, i64)> {
    if n == 0 {
        return Vec::new();
    }
    // Greater = better: higher value, then smaller key. The heap keeps the
    // worst of the best n on top.
    let mut heap: BinaryHeap<Reverse<(i64, Reverse<K>)>> = BinaryHeap::with_capacity(n + 1);
    for (key, value) in items {
        let entry = Reverse((value, Reverse(key)));
        if heap.len() < n {
            heap.push(entry);
        } else if heap.peek().is_some_and(|worst| entry < *worst) {
            heap.pop();
            heap.push(entry);
        }
    }
    // Ascending order of Reverse(entry) is best first.
    heap.into_sorted_vec()
        .into_iter()
        .map(|Reverse((value, Reverse(key)))| (key, value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn best_first_with_ties_by_key_and_zeros_ranked_last() {
        let items = vec![("b", 2), ("a", 2), ("c", 5), ("d", 1), ("e", 0)];
        assert_eq!(top_n(items.clone(), 3), vec![("c", 5), ("a", 2), ("b", 2)]);
        assert_eq!(top_n(items.clone(), 10).last(), Some(&("e", 0)));
        assert!(top_n(items, 0).is_empty());
    }

    proptest! {
        /// The heap gives what a full sort gives.
        #[test]
        fn equals_a_full_sort(items in prop::collection::vec((0u16..300, 0i64..20), 0..200), n in 0usize..30) {
            let mut unique = std::collections::BTreeMap::new();
            for (k, v) in items { unique.insert(k, v); }
            let mut sorted: Vec<(u16, i64)> = unique.clone().into_iter().collect();
            sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            sorted.truncate(n);
            prop_assert_eq!(top_n(unique, n), sorted);
        }
    }
}

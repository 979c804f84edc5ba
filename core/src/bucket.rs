//! Event-time buckets: fixed-size intervals aligned to the Unix epoch.
//! Every aggregate of both layers is kept per bucket and merges by addition.

use chrono::{DateTime, Utc};

/// Default bucket size: one minute.
pub const DEFAULT_BUCKET_MS: i64 = 60_000;

/// Start (milliseconds since the epoch) of the bucket holding `t_ms`, for a
/// bucket size of `size_ms` (> 0). Times before 1970 fall into buckets that
/// start at or before them, as for any other time.
pub fn bucket_start_ms(t_ms: i64, size_ms: i64) -> i64 {
    debug_assert!(size_ms > 0, "bucket size must be positive");
    t_ms.div_euclid(size_ms) * size_ms
}

/// Start of the bucket holding `t`.
pub fn bucket_start(t: DateTime<Utc>, size_ms: i64) -> i64 {
    bucket_start_ms(t.timestamp_millis(), size_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seed_times_fall_in_minute_buckets() {
        let t = crate::parse_event_time("2021-08-29 19:51:27 EDT").expect("valid");
        let b = bucket_start(t, DEFAULT_BUCKET_MS);
        assert_eq!(
            crate::time::format_rfc3339(crate::time::from_millis(b).expect("valid")),
            "2021-08-29T23:51:00Z"
        );
    }

    proptest! {
        #[test]
        fn a_time_lies_in_its_bucket(t in -10_000_000_000_000i64..10_000_000_000_000, size in 1i64..86_400_000) {
            let b = bucket_start_ms(t, size);
            prop_assert!(b <= t && t < b + size);
            prop_assert_eq!(b.rem_euclid(size), 0);
        }
    }
}

//! Event time: a tweet's creation time, parsed from every format the
//! supported sources use and normalised to UTC.
//!
//! Formats accepted (see the tests for one example of each):
//!
//! | source | example |
//! |---|---|
//! | seed MySQL dump (`tweets.date_time`) | `2021-08-29 19:51:27 EDT` |
//! | Twitter API v1.1 `created_at` | `Sun Aug 29 23:55:00 +0000 2021` |
//! | CSV export `tweet_created` | `2015-08-07 09:54:46 -0700` |
//! | Twitter API v2 `created_at`, RFC 3339 | `2021-08-29T23:51:27.000Z` |
//! | MySQL `DATETIME` text, taken as UTC | `2021-08-29 23:51:27` |
//!
//! Time-zone abbreviations are ambiguous in general (`IST` is India, Ireland
//! or Israel); [`ZONE_ABBREVIATIONS`] lists the ones accepted and the offset
//! each stands for. An unknown abbreviation is an error, never a guess.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};

/// Time-zone abbreviations accepted after a `YYYY-MM-DD HH:MM:SS` time, with
/// their offset from UTC in minutes. North American zones come first because
/// the seed data uses them.
pub const ZONE_ABBREVIATIONS: &[(&str, i32)] = &[
    ("UTC", 0),
    ("GMT", 0),
    ("Z", 0),
    ("EST", -5 * 60),
    ("EDT", -4 * 60),
    ("CST", -6 * 60),
    ("CDT", -5 * 60),
    ("MST", -7 * 60),
    ("MDT", -6 * 60),
    ("PST", -8 * 60),
    ("PDT", -7 * 60),
    ("AKST", -9 * 60),
    ("AKDT", -8 * 60),
    ("HST", -10 * 60),
    ("AST", -4 * 60),
    ("ADT", -3 * 60),
    ("NST", -(3 * 60 + 30)),
    ("NDT", -(2 * 60 + 30)),
    ("BST", 60),
    ("WET", 0),
    ("WEST", 60),
    ("CET", 60),
    ("CEST", 2 * 60),
    ("EET", 2 * 60),
    ("EEST", 3 * 60),
    ("MSK", 3 * 60),
    ("JST", 9 * 60),
    ("KST", 9 * 60),
    ("AEST", 10 * 60),
    ("AEDT", 11 * 60),
    ("NZST", 12 * 60),
    ("NZDT", 13 * 60),
];

/// Why a creation time could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// The text matches none of the accepted formats.
    #[error("unrecognised date-time {0:?}: expected e.g. `2021-08-29 19:51:27 EDT`, `Sun Aug 29 23:55:00 +0000 2021`, `2015-08-07 09:54:46 -0700` or RFC 3339")]
    Unrecognised(String),
    /// The time is followed by a zone abbreviation this code does not know.
    #[error("unknown time-zone abbreviation {0:?} (known: see tweetlambda_core::time::ZONE_ABBREVIATIONS)")]
    UnknownZone(String),
}

/// Parses a tweet creation time in any supported format and returns it in UTC.
pub fn parse_event_time(text: &str) -> Result<DateTime<Utc>, TimeError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(TimeError::Unrecognised(text.to_string()));
    }
    // RFC 3339 (API v2, our own messages).
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    // API v1.1: `Sun Aug 29 23:55:00 +0000 2021`.
    if let Ok(t) = DateTime::parse_from_str(s, "%a %b %d %H:%M:%S %z %Y") {
        return Ok(t.with_timezone(&Utc));
    }
    // CSV export: `2015-08-07 09:54:46 -0700`.
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S %z") {
        return Ok(t.with_timezone(&Utc));
    }
    // Plain date-time, no zone: taken as UTC.
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f") {
        return Ok(t.and_utc());
    }
    // Seed dump: `2021-08-29 19:51:27 EDT`.
    if let Some((local, zone)) = s.rsplit_once(' ') {
        if let Ok(naive) = NaiveDateTime::parse_from_str(local.trim(), "%Y-%m-%d %H:%M:%S%.f") {
            let minutes = zone_offset_minutes(zone)
                .ok_or_else(|| TimeError::UnknownZone(zone.to_string()))?;
            let offset = FixedOffset::east_opt(minutes * 60)
                .ok_or_else(|| TimeError::UnknownZone(zone.to_string()))?;
            return offset
                .from_local_datetime(&naive)
                .single()
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| TimeError::Unrecognised(text.to_string()));
        }
    }
    Err(TimeError::Unrecognised(text.to_string()))
}

/// The offset in minutes east of UTC that a zone abbreviation stands for.
pub fn zone_offset_minutes(abbreviation: &str) -> Option<i32> {
    ZONE_ABBREVIATIONS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(abbreviation))
        .map(|(_, minutes)| *minutes)
}

/// Formats a UTC time as RFC 3339 with a `Z` suffix and whole seconds, or
/// milliseconds when the time has them: the form every message uses.
pub fn format_rfc3339(t: DateTime<Utc>) -> String {
    if t.timestamp_subsec_millis() == 0 {
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    } else {
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }
}

/// Milliseconds since the Unix epoch to a UTC time (None if out of range).
pub fn from_millis(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test literal")
            .with_timezone(&Utc)
    }

    #[test]
    fn seed_dump_edt_is_four_hours_behind_utc() {
        assert_eq!(
            parse_event_time("2021-08-29 19:51:27 EDT"),
            Ok(utc("2021-08-29T23:51:27Z"))
        );
    }

    #[test]
    fn every_source_format_parses() {
        let expected = utc("2021-08-29T23:55:00Z");
        for s in [
            "Sun Aug 29 23:55:00 +0000 2021",
            "2021-08-29 16:55:00 -0700",
            "2021-08-29T23:55:00.000Z",
            "2021-08-29T19:55:00-04:00",
            "2021-08-29 23:55:00",
            "2021-08-29 23:55:00 UTC",
            "2021-08-29 18:55:00 cdt",
            " 2021-08-29 19:55:00 EDT ",
        ] {
            assert_eq!(parse_event_time(s), Ok(expected), "{s}");
        }
    }

    #[test]
    fn bad_times_are_errors_not_guesses() {
        assert!(matches!(
            parse_event_time("2021-08-29 19:51:27 XYZ"),
            Err(TimeError::UnknownZone(z)) if z == "XYZ"
        ));
        for s in [
            "",
            "yesterday",
            "2021-13-40 25:00:00 EDT",
            "Sun Aug 29 2021",
        ] {
            assert!(parse_event_time(s).is_err(), "{s}");
        }
    }

    #[test]
    fn formatting_uses_z_and_drops_zero_millis() {
        assert_eq!(
            format_rfc3339(utc("2021-08-29T23:51:27Z")),
            "2021-08-29T23:51:27Z"
        );
        assert_eq!(
            format_rfc3339(utc("2021-08-29T23:51:27.250Z")),
            "2021-08-29T23:51:27.250Z"
        );
    }

    proptest! {
        /// Any instant, written in any of the formats with any accepted zone,
        /// parses back to the same instant.
        #[test]
        fn any_format_round_trips(secs in 0i64..4_102_444_800, zone in 0usize..ZONE_ABBREVIATIONS.len()) {
            let t = Utc.timestamp_opt(secs, 0).single().expect("in range");
            let (name, minutes) = ZONE_ABBREVIATIONS[zone];
            let local = t.with_timezone(&FixedOffset::east_opt(minutes * 60).expect("valid"));
            let seed = format!("{} {}", local.format("%Y-%m-%d %H:%M:%S"), name);
            let v1 = local.format("%a %b %d %H:%M:%S %z %Y").to_string();
            let csv = local.format("%Y-%m-%d %H:%M:%S %z").to_string();
            let rfc = format_rfc3339(t);
            for s in [seed, v1, csv, rfc] {
                prop_assert_eq!(parse_event_time(&s), Ok(t), "{}", s);
            }
        }

        /// Arbitrary text never panics the parser.
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,40}") {
            let _ = parse_event_time(&s);
        }
    }
}

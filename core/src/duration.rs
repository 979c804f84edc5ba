//! The one duration grammar of every flag (`--bucket`, `--windows`,
//! `--allowed-lateness`, `--emit-interval`, …) and of the HTTP parameters
//! `last=` and `step=`: a number and a unit, no space, e.g. `500ms`, `1.5s`,
//! `15m`, `1h`, `7d`.
//!
//! Units: `ms`, `s`, `m`, `h`, `d`. The unit is required: a bare `10` could
//! mean seconds or milliseconds, so it is refused rather than guessed.

use std::time::Duration;

/// Why a duration was refused; the message shows the text and the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {text:?}: {why} (use a number and a unit: 500ms, 30s, 15m, 1h, 7d)")]
pub struct DurationError {
    text: String,
    why: &'static str,
}

fn refuse(text: &str, why: &'static str) -> DurationError {
    DurationError {
        text: text.to_string(),
        why,
    }
}

/// Parses a duration; zero is allowed (`0s`).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let ms = parse_millis_f64(text)?;
    Duration::try_from_secs_f64(ms / 1000.0).map_err(|_| refuse(text, "out of range"))
}

/// Parses a duration into whole milliseconds; zero is allowed.
pub fn parse_duration_ms(text: &str) -> Result<i64, DurationError> {
    let ms = parse_millis_f64(text)?;
    if ms.fract() != 0.0 {
        return Err(refuse(text, "not a whole number of milliseconds"));
    }
    // 2^53: every integer below it is exact in an f64.
    if ms > 9_007_199_254_740_992.0 {
        return Err(refuse(text, "out of range"));
    }
    Ok(ms as i64)
}

/// Parses a duration that must be longer than zero (bucket and window
/// sizes, `last=`, `step=`), into whole milliseconds.
pub fn parse_positive_ms(text: &str) -> Result<i64, DurationError> {
    match parse_duration_ms(text)? {
        0 => Err(refuse(text, "must be longer than zero")),
        ms => Ok(ms),
    }
}

fn parse_millis_f64(text: &str) -> Result<f64, DurationError> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| refuse(text, "the unit is missing"))?;
    let (number, unit) = trimmed.split_at(split);
    let valid_number = !number.is_empty()
        && number.chars().filter(|c| *c == '.').count() <= 1
        && !number.starts_with('.')
        && !number.ends_with('.');
    if !valid_number {
        return Err(refuse(text, "the number is missing or malformed"));
    }
    let n: f64 = number
        .parse()
        .map_err(|_| refuse(text, "the number is malformed"))?;
    let unit_ms = match unit {
        "ms" => 1.0,
        "s" => 1_000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return Err(refuse(text, "unknown unit")),
    };
    let ms = n * unit_ms;
    if !ms.is_finite() || ms > 9_007_199_254_740_992.0 {
        return Err(refuse(text, "out of range"));
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_unit_parses() {
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("15m"), Ok(900_000));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert_eq!(parse_duration_ms("7d"), Ok(604_800_000));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn ambiguous_or_malformed_text_is_refused() {
        for bad in [
            "", "10", "s", "1y", "1 s", "-1s", "1.2.3s", ".5s", "5.s", "1e3s", "soon",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_positive_ms("0m").is_err());
        assert!(parse_duration_ms("0.5ms").is_err());
        assert!(parse_duration_ms("99999999999999999d").is_err());
        let e = parse_duration("10").expect_err("no unit");
        assert!(e.to_string().contains("unit is missing"), "{e}");
    }

    proptest! {
        #[test]
        fn no_text_makes_it_panic(text in ".{0,24}") {
            let _ = parse_duration(&text);
            let _ = parse_positive_ms(&text);
        }

        #[test]
        fn whole_units_round_trip(n in 0i64..1_000_000, unit in 0usize..5) {
            let (suffix, factor) = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)][unit];
            prop_assert_eq!(parse_duration_ms(&format!("{n}{suffix}")), Ok(n * factor));
        }
    }
}

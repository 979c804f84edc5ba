//! How long to wait before the next request, as X documents it:
//!
//! - **429 Too Many Requests**: until `x-rate-limit-reset` (Unix seconds),
//!   plus a second; without the header, exponentially from one minute.
//! - **HTTP 5xx**: exponentially from 5 s, doubling, capped (320 s).
//! - **Network errors** (refused, reset, a stalled stream): reconnect at
//!   once, then linearly, +250 ms a time, up to 16 s.
//!
//! Every success resets the counts. The arithmetic is here, apart from the
//! I/O, so that it is tested alone.

use std::time::Duration;

/// What a failed request was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// HTTP 429, with the reset time when the API sent one.
    RateLimited {
        /// `x-rate-limit-reset`: Unix seconds.
        reset: Option<i64>,
    },
    /// HTTP 5xx.
    Server {
        /// The status.
        status: u16,
    },
    /// No answer: connection refused or cut, a timeout, a stalled stream.
    Network(String),
    /// An answer that cannot be read (a 200 whose body is not JSON): waited
    /// on as a server error.
    Unreadable(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::RateLimited { reset: Some(r) } => write!(f, "rate limited (429) until {r}"),
            Failure::RateLimited { reset: None } => {
                write!(f, "rate limited (429), no reset time given")
            }
            Failure::Server { status } => write!(f, "server error {status}"),
            Failure::Network(cause) => write!(f, "network error: {cause}"),
            Failure::Unreadable(why) => write!(f, "unreadable answer: {why}"),
        }
    }
}

/// The waits' parameters; [`Policy::default`] is X's guidance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// First wait after a 429 without a reset time.
    pub rate_limit_first: Duration,
    /// Longest wait after a 429 without a reset time.
    pub rate_limit_cap: Duration,
    /// First wait after a 5xx.
    pub server_first: Duration,
    /// Longest wait after 5xx.
    pub server_cap: Duration,
    /// Added per further network error.
    pub network_step: Duration,
    /// Longest wait after network errors.
    pub network_cap: Duration,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            rate_limit_first: Duration::from_secs(60),
            rate_limit_cap: Duration::from_secs(15 * 60),
            server_first: Duration::from_secs(5),
            server_cap: Duration::from_secs(320),
            network_step: Duration::from_millis(250),
            network_cap: Duration::from_secs(16),
        }
    }
}

/// Consecutive failures of each kind since the last success.
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    policy: Policy,
    rate_limited: u32,
    server: u32,
    network: u32,
}

impl Backoff {
    /// A backoff with these parameters.
    pub fn new(policy: Policy) -> Backoff {
        Backoff {
            policy,
            ..Backoff::default()
        }
    }

    /// The wait before retrying after `failure`, at `now` (Unix seconds).
    pub fn next_wait(&mut self, failure: &Failure, now: i64) -> Duration {
        let p = &self.policy;
        match failure {
            Failure::RateLimited { reset: Some(reset) } => {
                self.rate_limited += 1;
                let left = u64::try_from(reset.saturating_sub(now)).unwrap_or(0);
                // At most a day: a reset time further ahead is not believed.
                Duration::from_secs(left.min(86_400) + 1)
            }
            Failure::RateLimited { reset: None } => {
                self.rate_limited += 1;
                doubled(p.rate_limit_first, self.rate_limited - 1, p.rate_limit_cap)
            }
            Failure::Server { .. } | Failure::Unreadable(_) => {
                self.server += 1;
                doubled(p.server_first, self.server - 1, p.server_cap)
            }
            Failure::Network(_) => {
                self.network += 1;
                p.network_step
                    .saturating_mul(self.network - 1)
                    .min(p.network_cap)
            }
        }
    }

    /// A request succeeded: the next failure waits the least again.
    pub fn succeeded(&mut self) {
        self.rate_limited = 0;
        self.server = 0;
        self.network = 0;
    }
}

/// `first · 2^n`, at most `cap`.
fn doubled(first: Duration, n: u32, cap: Duration) -> Duration {
    first
        .saturating_mul(2u32.saturating_pow(n.min(31)))
        .min(cap)
}

/// The rate-limit headers of an answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimit {
    /// `x-rate-limit-remaining`: requests left in the window.
    pub remaining: Option<u64>,
    /// `x-rate-limit-reset`: when the window ends, Unix seconds.
    pub reset: Option<i64>,
}

impl RateLimit {
    /// Reads the headers (absent or unreadable ones are `None`).
    pub fn from_headers(headers: &reqwest::header::HeaderMap) -> RateLimit {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        RateLimit {
            remaining: number("x-rate-limit-remaining").and_then(|n| u64::try_from(n).ok()),
            reset: number("x-rate-limit-reset"),
        }
    }

    /// The wait before the next request at `now` (Unix seconds): none while
    /// requests remain; until the reset (plus a second) when none do.
    pub fn wait_before_next(&self, now: i64) -> Option<Duration> {
        match (self.remaining, self.reset) {
            (Some(0), Some(reset)) => {
                let left = u64::try_from(reset.saturating_sub(now)).unwrap_or(0);
                Some(Duration::from_secs(left.min(86_400) + 1))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_429_waits_until_the_reset_or_doubles_from_a_minute() {
        let mut b = Backoff::default();
        let now = 1_700_000_000;
        assert_eq!(
            b.next_wait(
                &Failure::RateLimited {
                    reset: Some(now + 30)
                },
                now
            ),
            secs(31)
        );
        // A reset in the past: a second, never a negative wait.
        assert_eq!(
            b.next_wait(
                &Failure::RateLimited {
                    reset: Some(now - 5)
                },
                now
            ),
            secs(1)
        );
        let mut b = Backoff::default();
        let none = Failure::RateLimited { reset: None };
        let waits: Vec<u64> = (0..6).map(|_| b.next_wait(&none, now).as_secs()).collect();
        assert_eq!(waits, [60, 120, 240, 480, 900, 900]);
    }

    #[test]
    fn server_errors_double_from_five_seconds_up_to_the_cap() {
        let mut b = Backoff::default();
        let e = Failure::Server { status: 503 };
        let waits: Vec<u64> = (0..9).map(|_| b.next_wait(&e, 0).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 320, 320]);
    }

    #[test]
    fn network_errors_reconnect_at_once_then_linearly_up_to_16_seconds() {
        let mut b = Backoff::default();
        let e = Failure::Network("reset".into());
        let waits: Vec<u128> = (0..70).map(|_| b.next_wait(&e, 0).as_millis()).collect();
        assert_eq!(&waits[..4], [0, 250, 500, 750]);
        assert_eq!(waits[64], 16_000);
        assert_eq!(waits[69], 16_000);
    }

    #[test]
    fn a_success_starts_over() {
        let mut b = Backoff::default();
        let e = Failure::Server { status: 500 };
        b.next_wait(&e, 0);
        b.next_wait(&e, 0);
        b.succeeded();
        assert_eq!(b.next_wait(&e, 0), secs(5));
    }

    #[test]
    fn no_requests_left_waits_for_the_reset() {
        let r = RateLimit {
            remaining: Some(0),
            reset: Some(110),
        };
        assert_eq!(r.wait_before_next(100), Some(secs(11)));
        let r = RateLimit {
            remaining: Some(3),
            reset: Some(110),
        };
        assert_eq!(r.wait_before_next(100), None);
        assert_eq!(RateLimit::default().wait_before_next(100), None);
    }
}

//! When to retry a failed transfer and how long to wait before the next attempt.

use std::time::Duration;

/// Retry settings: a file fails after `max_attempts` failed requests in a row that did not
/// extend its partial file; exponential backoff with jitter between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Failed requests without progress before a file counts as failed; at least 1.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles for every further attempt.
    pub base_delay: Duration,
    /// Upper bound of one backoff (also caps a server's `Retry-After`).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts, 1 s doubling up to 60 s (1, 2, 4, 8, 16 s before jitter).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based): `base * 2^(attempt-1)` capped at
    /// `max_delay`, then "equal jitter" (a uniform pick in its upper half), so workers that fail
    /// together do not retry in lockstep. A server's `Retry-After` raises it (up to `max_delay`).
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let full = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let half = full / 2;
        let jittered = half + half.mul_f64(fastrand::f64());
        match retry_after {
            Some(server) => jittered.max(server.min(self.max_delay)),
            None => jittered,
        }
    }
}

/// Whether an HTTP status is worth another attempt: 408, 429 and every 5xx.
pub fn status_is_retryable(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for _ in 0..50 {
            let d1 = p.backoff(1, None);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = p.backoff(3, None);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            let d9 = p.backoff(9, None);
            assert!(d9 >= Duration::from_millis(500) && d9 <= Duration::from_millis(1000));
        }
        assert!(p.backoff(1, Some(Duration::from_millis(700))) >= Duration::from_millis(700));
        assert!(p.backoff(1, Some(Duration::from_secs(3600))) <= Duration::from_millis(1000));
    }

    #[test]
    fn only_timeouts_throttling_and_server_errors_are_retried() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(status_is_retryable(s), "{s}");
        }
        for s in [400, 401, 403, 404, 410, 416] {
            assert!(!status_is_retryable(s), "{s}");
        }
    }
}

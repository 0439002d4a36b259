//! The HTTP layer every download mode shares: one way to build the agent, and one way to
//! classify what a request gave (worth another attempt or not, and how long the server asked
//! us to wait). Retries use [`super::retry::RetryPolicy`], byte rates [`super::rate`].

use std::time::{Duration, SystemTime};

use anyhow::{bail, Result};

use super::dates::parse_http_date;
use super::retry::{status_is_retryable, RetryPolicy};

/// The `User-Agent` of every request, also the product token matched in robots.txt.
pub const USER_AGENT: &str = concat!("datamill/", env!("CARGO_PKG_VERSION"));

/// The robots.txt product token of [`USER_AGENT`].
pub const ROBOTS_TOKEN: &str = "datamill";

/// Settings of the shared agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentSettings {
    /// Connect timeout (capped at 30 s) and the longest a read or write may stall.
    pub timeout: Duration,
    /// Redirects the agent follows by itself; 0 hands every 3xx back to the caller.
    pub redirects: u32,
}

/// Builds the HTTP agent (connection pool, timeouts, user agent) for a run.
pub fn build_agent(settings: AgentSettings) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(settings.timeout.min(Duration::from_secs(30)))
        .timeout_read(settings.timeout)
        .timeout_write(settings.timeout)
        .redirects(settings.redirects)
        .user_agent(USER_AGENT)
        .build()
}

/// Checks the settings every download mode shares: workers, rate limit and attempts.
pub fn check_transfer_settings(
    concurrency: usize,
    rate_limit_mb_per_sec: Option<f64>,
    retry: &RetryPolicy,
) -> Result<()> {
    if concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if let Some(r) = rate_limit_mb_per_sec {
        if !(r.is_finite() && r > 0.0) {
            bail!("--rate-limit must be a positive number of MB/s, got {r}");
        }
    }
    if retry.max_attempts == 0 {
        bail!("--max-attempts must be at least 1");
    }
    Ok(())
}

/// Why one request did not give what was wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptError {
    /// Worth another attempt (timeout, reset, short read, 408/429/5xx).
    Retry {
        /// The HTTP status, when the failure was one.
        status: Option<u16>,
        /// What went wrong.
        reason: String,
        /// How long the server asked to wait (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// Not worth another attempt (other 4xx, bad URL, local I/O error, checksum mismatch).
    Fatal {
        /// The HTTP status, when the failure was one.
        status: Option<u16>,
        /// What went wrong.
        reason: String,
    },
}

impl AttemptError {
    /// The HTTP status, if the failure was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            AttemptError::Retry { status, .. } | AttemptError::Fatal { status, .. } => *status,
        }
    }

    /// What went wrong.
    pub fn reason(&self) -> &str {
        match self {
            AttemptError::Retry { reason, .. } | AttemptError::Fatal { reason, .. } => reason,
        }
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AttemptError::Retry { .. })
    }
}

/// A retryable failure without an HTTP status.
pub fn retry(reason: impl Into<String>) -> AttemptError {
    AttemptError::Retry {
        status: None,
        reason: reason.into(),
        retry_after: None,
    }
}

/// A final failure without an HTTP status.
pub fn fatal(reason: impl Into<String>) -> AttemptError {
    AttemptError::Fatal {
        status: None,
        reason: reason.into(),
    }
}

/// Classifies an HTTP error status: 408, 429 and 5xx are retried (honouring `Retry-After`),
/// every other status is final.
pub fn status_error(code: u16, resp: &ureq::Response) -> AttemptError {
    let reason = format!("HTTP {code} {}", resp.status_text());
    if status_is_retryable(code) {
        AttemptError::Retry {
            status: Some(code),
            reason,
            retry_after: resp
                .header("Retry-After")
                .and_then(|v| parse_retry_after(v, SystemTime::now())),
        }
    } else {
        AttemptError::Fatal {
            status: Some(code),
            reason,
        }
    }
}

/// Classifies a transport error: a bad URL or scheme is final, anything else (refused,
/// reset, timed out, DNS) is retried.
pub fn transport_error(t: &ureq::Transport) -> AttemptError {
    use ureq::ErrorKind as K;
    let reason = t.to_string();
    match t.kind() {
        K::InvalidUrl
        | K::UnknownScheme
        | K::TooManyRedirects
        | K::InsecureRequestHttpsOnly
        | K::InvalidProxyUrl => fatal(reason),
        _ => retry(reason),
    }
}

/// Classifies any error of `ureq::Request::call`.
pub fn classify(e: ureq::Error) -> AttemptError {
    match e {
        ureq::Error::Status(code, resp) => status_error(code, &resp),
        ureq::Error::Transport(t) => transport_error(&t),
    }
}

/// A `Retry-After` value: delay-seconds or an HTTP date (a date in the past means now).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(v)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}

//! A token-bucket rate limiter shared by all download workers.
//!
//! Tokens are bytes. The bucket refills at `bytes_per_sec` up to a small burst; a worker that
//! takes more than the bucket holds drives it negative and sleeps until the debt is repaid,
//! so the long-run rate of all workers together never exceeds the limit.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Largest burst the bucket allows, in bytes (one read chunk).
pub const BURST_BYTES: f64 = 64.0 * 1024.0;

/// A global byte-rate limit; `take(n)` blocks long enough to keep the average at the limit.
#[derive(Debug)]
pub struct RateLimiter {
    bytes_per_sec: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Bytes that may be taken now without waiting; negative while in debt.
    tokens: f64,
    last_refill: Instant,
}

impl RateLimiter {
    /// A limiter at `bytes_per_sec` (must be positive and finite), starting with a full burst.
    pub fn new(bytes_per_sec: f64) -> Self {
        RateLimiter {
            bytes_per_sec,
            state: Mutex::new(Bucket {
                tokens: BURST_BYTES,
                last_refill: Instant::now(),
            }),
        }
    }

    /// A limiter from a rate in MB/s (1 MB = 1,000,000 bytes).
    pub fn from_mb_per_sec(mb_per_sec: f64) -> Self {
        Self::new(mb_per_sec * 1e6)
    }

    /// The limit in bytes per second.
    pub fn bytes_per_sec(&self) -> f64 {
        self.bytes_per_sec
    }

    /// Accounts for `n` bytes just transferred and sleeps as long as the limit requires.
    pub fn take(&self, n: usize) {
        let wait = {
            let mut b = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let refill = now.duration_since(b.last_refill).as_secs_f64() * self.bytes_per_sec;
            b.tokens = (b.tokens + refill).min(BURST_BYTES);
            b.last_refill = now;
            b.tokens -= n as f64;
            if b.tokens < 0.0 {
                -b.tokens / self.bytes_per_sec
            } else {
                0.0
            }
        };
        if wait > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(wait));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debt_makes_the_caller_wait() {
        // 100 kB/s; the first 64 KiB are free, the next 50 kB cost at least ~0.15 s in total.
        let limiter = RateLimiter::new(100_000.0);
        let start = Instant::now();
        limiter.take(BURST_BYTES as usize);
        limiter.take(10_000);
        limiter.take(10_000);
        assert!(start.elapsed() >= Duration::from_millis(190));
    }
}

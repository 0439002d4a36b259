//! Reading one remote file as a byte stream, never stored: a dropped connection, a stall or a
//! 5xx resumes with a Range request at the byte reached (after the download's backoff, which
//! honours `Retry-After`), so a decompressor in the middle of a member simply goes on reading.
//! A server that ignores Range is read again from the start and the bytes already delivered
//! are skipped. The global rate limit ([`RateLimiter`]) and a cap on open connections are
//! shared by every stream of the process.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::client::{classify, AttemptError};
use super::fetch::{parse_content_range, MAX_PROGRESS_RETRIES};
use super::rate::RateLimiter;
use super::retry::RetryPolicy;

/// What every remote stream of a process shares.
#[derive(Clone)]
pub struct RemoteOptions {
    agent: ureq::Agent,
    retry: RetryPolicy,
    limiter: Option<Arc<RateLimiter>>,
    connections: Arc<ConnectionCap>,
}

impl RemoteOptions {
    /// Streams with `timeout` for connecting and for a read that stalls, `retry` between
    /// requests, at most `bytes_per_sec` together (none: no limit) over at most
    /// `max_connections` open connections.
    pub fn new(
        timeout: Duration,
        retry: RetryPolicy,
        bytes_per_sec: Option<f64>,
        max_connections: usize,
    ) -> Result<Self> {
        if let Some(r) = bytes_per_sec {
            if !(r.is_finite() && r > 0.0) {
                bail!("the rate limit must be a positive number, got {r}");
            }
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(timeout)
            .timeout_read(timeout)
            .timeout_write(timeout)
            .user_agent(concat!("datamill/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(RemoteOptions {
            agent,
            retry: RetryPolicy {
                max_attempts: retry.max_attempts.max(1),
                ..retry
            },
            limiter: bytes_per_sec.map(|r| Arc::new(RateLimiter::new(r))),
            connections: Arc::new(ConnectionCap::new(max_connections.max(1))),
        })
    }
}

impl RemoteOptions {
    /// The rate limit in bytes per second, if any.
    pub fn bytes_per_sec(&self) -> Option<f64> {
        self.limiter.as_ref().map(|l| l.bytes_per_sec())
    }

    /// Most connections open at once.
    pub fn max_connections(&self) -> usize {
        self.connections.max
    }
}

/// A counting semaphore over open connections.
struct ConnectionCap {
    max: usize,
    open: Mutex<usize>,
    freed: Condvar,
}

impl ConnectionCap {
    fn new(max: usize) -> Self {
        ConnectionCap {
            max,
            open: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free connection slot.
    fn acquire(self: &Arc<Self>) -> Permit {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        while *open >= self.max {
            open = self.freed.wait(open).unwrap_or_else(|e| e.into_inner());
        }
        *open += 1;
        Permit(Arc::clone(self))
    }
}

/// A connection slot, given back when dropped.
struct Permit(Arc<ConnectionCap>);

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.0.open.lock().unwrap_or_else(|e| e.into_inner());
        *open = open.saturating_sub(1);
        self.0.freed.notify_one();
    }
}

/// What the server said about the file, as the first response gave it (no extra request).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    /// `ETag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// `Last-Modified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// The file's size (`Content-Length` of a 200, the total of a `Content-Range`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

impl Validators {
    fn of(resp: &ureq::Response, size: Option<u64>) -> Self {
        Validators {
            etag: resp.header("ETag").map(str::to_string),
            last_modified: resp.header("Last-Modified").map(str::to_string),
            size,
        }
    }

    /// Whether `other` describes a different version of the file (a validator both have
    /// differs).
    fn differs(&self, other: &Validators) -> bool {
        let differ =
            |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(x), Some(y)) if x != y);
        differ(&self.etag, &other.etag)
            || differ(&self.last_modified, &other.last_modified)
            || matches!((self.size, other.size), (Some(x), Some(y)) if x != y)
    }
}

/// What a stream reports to whoever runs it: the bytes delivered, the file's validators and,
/// if it gave up, why (the stream then ends with an I/O error naming the URL).
#[derive(Debug, Default)]
pub struct StreamReport {
    /// Bytes delivered to the reader so far.
    pub bytes: AtomicU64,
    /// Validators of the first response.
    pub validators: Mutex<Validators>,
    /// Set when the stream gave up.
    pub failure: Mutex<Option<String>>,
}

impl StreamReport {
    /// Why the stream gave up, if it did.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Why one request did not give a usable body.
struct Failed {
    reason: String,
    retry_after: Option<Duration>,
    retryable: bool,
}

impl Failed {
    fn retry(reason: impl Into<String>) -> Self {
        Failed {
            reason: reason.into(),
            retry_after: None,
            retryable: true,
        }
    }

    fn fatal(reason: impl Into<String>) -> Self {
        Failed {
            reason: reason.into(),
            retry_after: None,
            retryable: false,
        }
    }
}

impl From<AttemptError> for Failed {
    fn from(e: AttemptError) -> Self {
        match e {
            AttemptError::Retry {
                reason,
                retry_after,
                ..
            } => Failed {
                reason,
                retry_after,
                retryable: true,
            },
            AttemptError::Fatal { reason, .. } => Failed::fatal(reason),
        }
    }
}

/// A remote file read as a stream, resuming where it broke off.
pub struct RemoteReader {
    url: String,
    opts: RemoteOptions,
    body: Option<Box<dyn Read + Send + Sync>>,
    /// Bytes delivered.
    pos: u64,
    /// Bytes of the current body still to be thrown away (a server that ignored Range).
    skip: u64,
    /// The file's validators, from the first response.
    first: Option<Validators>,
    /// Failed requests since the stream last moved past `mark`.
    failed: u32,
    mark: u64,
    progress_retries: u32,
    requests: u32,
    report: Arc<StreamReport>,
    _permit: Permit,
}

impl RemoteReader {
    /// Opens `url` (waiting for a connection slot) and makes the first request, retrying as a
    /// broken stream would; an error names the URL and the last status.
    pub fn open(url: &str, opts: &RemoteOptions) -> Result<Self> {
        let permit = opts.connections.acquire();
        let mut r = RemoteReader {
            url: url.to_string(),
            opts: opts.clone(),
            body: None,
            pos: 0,
            skip: 0,
            first: None,
            failed: 0,
            mark: 0,
            progress_retries: 0,
            requests: 0,
            report: Arc::new(StreamReport::default()),
            _permit: permit,
        };
        r.connect().map_err(anyhow::Error::new)?;
        Ok(r)
    }

    /// The report shared with whoever runs the stream.
    pub fn report(&self) -> Arc<StreamReport> {
        Arc::clone(&self.report)
    }

    /// Requests made so far (1 when nothing went wrong).
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// Makes requests until one gives a body to read from `pos`, or gives up.
    fn connect(&mut self) -> std::io::Result<()> {
        loop {
            match self.request() {
                Ok(()) => return Ok(()),
                Err(f) if f.retryable => self.note_failure(f.reason, f.retry_after)?,
                Err(f) => return Err(self.give_up(f.reason)),
            }
        }
    }

    /// Counts a failed request; sleeps the backoff, or gives up after `max_attempts` failures
    /// in a row that brought no new bytes.
    fn note_failure(
        &mut self,
        reason: String,
        retry_after: Option<Duration>,
    ) -> std::io::Result<()> {
        self.body = None;
        if self.pos > self.mark && self.progress_retries < MAX_PROGRESS_RETRIES {
            self.mark = self.pos;
            self.progress_retries += 1;
            self.failed = 0;
        }
        self.failed += 1;
        let max = self.opts.retry.max_attempts;
        if self.failed >= max {
            return Err(self.give_up(format!(
                "gave up after {} requests ({max} without progress, at byte {}): {reason}",
                self.requests, self.pos
            )));
        }
        let wait = self.opts.retry.backoff(self.failed, retry_after);
        tracing::warn!(
            "{}: {reason} at byte {}; request {} of at most {max} without progress in {:.2} s",
            self.url,
            self.pos,
            self.failed + 1,
            wait.as_secs_f64()
        );
        std::thread::sleep(wait);
        Ok(())
    }

    fn give_up(&mut self, reason: String) -> std::io::Error {
        self.body = None;
        let msg = format!("{}: {reason}", self.url);
        *self
            .report
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(msg.clone());
        std::io::Error::other(msg)
    }

    /// One request for the bytes from `pos` on.
    fn request(&mut self) -> Result<(), Failed> {
        self.requests += 1;
        let mut req = self
            .opts
            .agent
            .get(&self.url)
            .set("Accept-Encoding", "identity");
        if self.pos > 0 {
            req = req.set("Range", &format!("bytes={}-", self.pos));
        }
        let resp = match req.call() {
            Ok(resp) => resp,
            Err(ureq::Error::Status(416, _)) if self.pos > 0 && self.at_end() => {
                self.body = Some(Box::new(std::io::empty()));
                return Ok(());
            }
            // The download command's classification: which statuses and transport errors
            // are retried, and the server's `Retry-After` (seconds or an HTTP date).
            Err(e) => return Err(Failed::from(classify(e))),
        };
        let (start, total) = match resp.status() {
            206 => {
                let range = resp.header("Content-Range").unwrap_or_default();
                match parse_content_range(range) {
                    Some((start, total)) if start == self.pos => (start, total),
                    _ => {
                        return Err(Failed::retry(format!(
                            "asked for bytes {}- and got Content-Range {range:?}",
                            self.pos
                        )))
                    }
                }
            }
            200 => {
                let len = resp
                    .header("Content-Length")
                    .and_then(|v| v.trim().parse::<u64>().ok());
                (0, len)
            }
            code => {
                return Err(Failed::fatal(format!(
                    "unexpected HTTP {code} {}",
                    resp.status_text()
                )))
            }
        };
        let seen = Validators::of(&resp, total);
        match &self.first {
            None => {
                *self
                    .report
                    .validators
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = seen.clone();
                self.first = Some(seen);
            }
            Some(first) if first.differs(&seen) => {
                return Err(Failed::fatal(format!(
                    "the remote file changed while being read (was {first:?}, now {seen:?})"
                )));
            }
            Some(_) => {}
        }
        if start == 0 && self.pos > 0 {
            tracing::info!(
                "{}: the server ignored the Range request; reading again from byte 0 and \
                 skipping {} bytes",
                self.url,
                self.pos
            );
        }
        self.skip = self.pos - start;
        self.body = Some(resp.into_reader());
        Ok(())
    }

    /// Whether `pos` is the whole file (as the first response announced it).
    fn at_end(&self) -> bool {
        self.first
            .as_ref()
            .and_then(|v| v.size)
            .is_some_and(|s| s == self.pos)
    }

    /// The announced size, when known.
    fn size(&self) -> Option<u64> {
        self.first.as_ref().and_then(|v| v.size)
    }
}

impl Read for RemoteReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.body.is_none() {
                if self.report.failure().is_some() {
                    return Err(std::io::Error::other(
                        self.report.failure().unwrap_or_default(),
                    ));
                }
                self.connect()?;
            }
            let Some(body) = self.body.as_mut() else {
                continue;
            };
            let result = body.read(buf);
            match result {
                Ok(0) => match self.size() {
                    Some(size) if self.pos < size => {
                        let reason =
                            format!("the connection closed at byte {} of {size}", self.pos);
                        self.note_failure(reason, None)?;
                    }
                    _ => return Ok(0),
                },
                Ok(n) => {
                    if let Some(limiter) = &self.opts.limiter {
                        limiter.take(n);
                    }
                    let skipped = self.skip.min(n as u64) as usize;
                    self.skip -= skipped as u64;
                    if skipped == n {
                        continue;
                    }
                    if skipped > 0 {
                        buf.copy_within(skipped..n, 0);
                    }
                    let n = n - skipped;
                    self.pos += n as u64;
                    self.report.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => self.note_failure(format!("the transfer broke off: {e}"), None)?,
            }
        }
    }
}

/// Whether the remote file still is the version `known` describes, asked with one
/// conditional request (`If-None-Match` / `If-Modified-Since`; a 304 answer means unchanged).
/// Without any validator to compare, the file counts as unchanged.
pub fn remote_unchanged(url: &str, opts: &RemoteOptions, known: &Validators) -> Result<bool> {
    if known.etag.is_none() && known.last_modified.is_none() {
        return Ok(true);
    }
    let _permit = opts.connections.acquire();
    let mut req = opts
        .agent
        .get(url)
        .set("Accept-Encoding", "identity")
        .set("Range", "bytes=0-0");
    if let Some(e) = &known.etag {
        req = req.set("If-None-Match", e);
    }
    if let Some(m) = &known.last_modified {
        req = req.set("If-Modified-Since", m);
    }
    match req.call() {
        Ok(resp) if resp.status() == 304 => Ok(true),
        Ok(resp) => {
            let total = match resp.status() {
                206 => resp
                    .header("Content-Range")
                    .and_then(parse_content_range)
                    .and_then(|(_, t)| t),
                _ => resp
                    .header("Content-Length")
                    .and_then(|v| v.trim().parse::<u64>().ok()),
            };
            Ok(!known.differs(&Validators::of(&resp, total)))
        }
        Err(e) => bail!("{url}: cannot check whether the file changed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators_differ_only_on_a_value_both_have() {
        let a = Validators {
            etag: Some("\"1\"".into()),
            last_modified: None,
            size: Some(10),
        };
        let mut b = a.clone();
        b.last_modified = Some("Sun, 06 Dec 2026 08:00:00 GMT".into());
        assert!(!a.differs(&b));
        b.etag = Some("\"2\"".into());
        assert!(a.differs(&b));
        let mut c = a.clone();
        c.size = Some(11);
        assert!(a.differs(&c));
    }

    #[test]
    fn connection_slots_are_given_back() {
        let cap = Arc::new(ConnectionCap::new(1));
        let p = cap.acquire();
        drop(p);
        let _q = cap.acquire();
        assert_eq!(*cap.open.lock().unwrap(), 1);
    }
}

//! Fetching one file: resume from the `.part` file with a Range request, retry with backoff,
//! check the size against Content-Length / Content-Range and the SHA-256, then rename.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::checksum::sha256_of;
use super::client::{classify, fatal, retry, AttemptError};
use super::rate::RateLimiter;
use super::retry::RetryPolicy;
use super::PART_SUFFIX;

/// Bytes read from the network per call (and per rate-limiter charge).
const CHUNK: usize = 64 * 1024;

/// Most retries per file that are not counted against `max_attempts` because the failed
/// request still extended the partial file (a connection that keeps breaking off mid-file).
pub const MAX_PROGRESS_RETRIES: u32 = 100;

/// What every fetch of a run shares.
pub struct FetchContext<'a> {
    /// HTTP agent with the run's timeouts.
    pub agent: &'a ureq::Agent,
    /// Global rate limit, if any.
    pub limiter: Option<&'a RateLimiter>,
    /// Attempts and backoff.
    pub retry: RetryPolicy,
    /// Bytes received by all workers (for the summary).
    pub bytes_received: &'a AtomicU64,
}

/// A file that was fetched, verified and renamed to its final name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Size of the final file.
    pub size: u64,
    /// Lowercase hex SHA-256 of the final file.
    pub sha256: String,
    /// Bytes received for it in this run (less than `size` when resumed).
    pub received: u64,
    /// Requests made (1 when nothing went wrong).
    pub attempts: u32,
    /// Whether some request continued a partial file with `Range`.
    pub resumed: bool,
}

/// A file that could not be fetched; its `.part` may remain for a later resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchFailure {
    /// The last HTTP status seen, if the failure was an HTTP status.
    pub status: Option<u16>,
    /// What went wrong.
    pub reason: String,
    /// Requests made.
    pub attempts: u32,
}

/// The partial-download name of a final path: `NAME.part` next to it.
pub fn part_path(final_path: &Path) -> PathBuf {
    let mut name = final_path.file_name().unwrap_or_default().to_os_string();
    name.push(PART_SUFFIX);
    final_path.with_file_name(name)
}

/// State of one file across its attempts.
struct Transfer<'p> {
    part: &'p Path,
    /// SHA-256 of the first `.1` bytes of the part file, kept while they are written.
    hash: Option<(Sha256, u64)>,
    received: u64,
    resumed: bool,
}

/// Fetches `url` to `final_path` (parent folders are created). Partial data goes to
/// `final_path.part`, which a later call resumes; the final name appears only after the size
/// and, if `expected_sha256` is given, the digest were checked and the data fsynced.
pub fn fetch_file(
    ctx: &FetchContext<'_>,
    url: &str,
    final_path: &Path,
    expected_sha256: Option<&str>,
) -> Result<Fetched, FetchFailure> {
    let part = part_path(final_path);
    let fail = |status, reason: String, attempts| FetchFailure {
        status,
        reason,
        attempts,
    };
    if let Some(dir) = final_path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| fail(None, format!("cannot create {}: {e}", dir.display()), 0))?;
    }
    let mut t = Transfer {
        part: &part,
        hash: None,
        received: 0,
        resumed: false,
    };
    let max = ctx.retry.max_attempts.max(1);
    // `failed` counts failed requests since the part file last grew past its longest length;
    // a request that extended it does not use up an attempt (at most MAX_PROGRESS_RETRIES).
    let mut failed = 0u32;
    let mut requests = 0u32;
    let mut progress_retries = 0u32;
    let mut longest = part_len(&part);
    let (last_status, last_reason) = loop {
        requests += 1;
        let result = t
            .attempt(ctx, url)
            .and_then(|()| t.finish(final_path, expected_sha256));
        match result {
            Ok(sha256) => {
                let size = t.hash.as_ref().map_or(0, |h| h.1);
                return Ok(Fetched {
                    size,
                    sha256,
                    received: t.received,
                    attempts: requests,
                    resumed: t.resumed,
                });
            }
            Err(AttemptError::Fatal { status, reason }) => {
                return Err(fail(status, reason, requests));
            }
            Err(AttemptError::Retry {
                status,
                reason,
                retry_after,
            }) => {
                let now = part_len(&part);
                if now > longest && progress_retries < MAX_PROGRESS_RETRIES {
                    longest = now;
                    progress_retries += 1;
                    failed = 0;
                } else {
                    failed += 1;
                }
                if failed >= max {
                    break (status, reason);
                }
                let wait = ctx.retry.backoff(failed.max(1), retry_after);
                tracing::warn!(
                    "{url}: request {requests} failed ({reason}; {failed}/{max} attempts without progress); \
                     retrying in {:.2} s",
                    wait.as_secs_f64()
                );
                std::thread::sleep(wait);
            }
        }
    };
    Err(fail(
        last_status,
        format!("gave up after {requests} requests ({max} without progress): {last_reason}"),
        requests,
    ))
}

/// Length of a file, 0 when it does not exist.
fn part_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

impl Transfer<'_> {
    /// One request: continues the part file (or restarts it) and streams the body into it.
    /// Returns when the body ended and the part file has exactly the announced size.
    fn attempt(&mut self, ctx: &FetchContext<'_>, url: &str) -> Result<(), AttemptError> {
        let offset = part_len(self.part);
        let mut req = ctx.agent.get(url).set("Accept-Encoding", "identity");
        if offset > 0 {
            req = req.set("Range", &format!("bytes={offset}-"));
        }
        let resp = match req.call() {
            Ok(resp) => resp,
            Err(ureq::Error::Status(416, resp)) if offset > 0 => {
                let total = resp.header("Content-Range").and_then(content_range_total);
                if total == Some(offset) {
                    return Ok(()); // the part file already holds the whole file
                }
                self.restart()?;
                return Err(retry(format!(
                    "HTTP 416 for a resume at byte {offset}: the remote file is shorter; restarting"
                )));
            }
            Err(e) => return Err(classify(e)),
        };

        let (start, total) = match resp.status() {
            206 => {
                let range = resp.header("Content-Range").unwrap_or_default();
                match parse_content_range(range) {
                    Some((start, total)) if start == offset => (offset, total),
                    _ => {
                        self.restart()?;
                        return Err(retry(format!(
                            "asked for bytes {offset}- and got Content-Range {range:?}; restarting"
                        )));
                    }
                }
            }
            200 => {
                if offset > 0 {
                    tracing::info!("{url}: server ignored the Range request; restarting at 0");
                }
                let len = resp
                    .header("Content-Length")
                    .and_then(|v| v.trim().parse::<u64>().ok());
                (0, len)
            }
            code => {
                return Err(AttemptError::Fatal {
                    status: Some(code),
                    reason: format!("unexpected HTTP {code} {}", resp.status_text()),
                })
            }
        };

        let mut file = if start == 0 {
            self.hash = Some((Sha256::new(), 0));
            File::create(self.part)
        } else {
            self.resumed = true;
            if self.hash.as_ref().map(|h| h.1) != Some(start) {
                self.hash = None;
                let f = File::open(self.part).map_err(|e| self.io_error("read", e))?;
                self.hash = Some(sha256_of(f).map_err(|e| self.io_error("read", e))?);
            }
            OpenOptions::new().append(true).open(self.part)
        }
        .map_err(|e| self.io_error("open", e))?;

        let mut body = resp.into_reader();
        let mut buf = vec![0u8; CHUNK];
        let body_result = loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            };
            if let Some(limiter) = ctx.limiter {
                limiter.take(n);
            }
            if let Err(e) = file.write_all(&buf[..n]) {
                self.hash = None;
                return Err(self.io_error("write", e));
            }
            if let Some((h, len)) = self.hash.as_mut() {
                h.update(&buf[..n]);
                *len += n as u64;
            }
            self.received += n as u64;
            ctx.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
        };
        file.sync_all().map_err(|e| self.io_error("fsync", e))?;
        drop(file);
        let have = self.hash.as_ref().map_or(0, |h| h.1);
        if let Err(e) = body_result {
            return Err(retry(format!(
                "transfer broke off after byte {have}{}: {e}",
                total.map(|t| format!(" of {t}")).unwrap_or_default()
            )));
        }
        match total {
            Some(t) if have < t => Err(retry(format!("short read: {have} of {t} bytes"))),
            Some(t) if have > t => {
                self.restart()?;
                Err(retry(format!(
                    "{have} bytes but the server announced {t}; restarting"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Checks the digest of the complete part file and renames it to the final name.
    fn finish(
        &mut self,
        final_path: &Path,
        expected: Option<&str>,
    ) -> Result<String, AttemptError> {
        let on_disk = std::fs::metadata(self.part).map_or(0, |m| m.len());
        if self.hash.as_ref().map(|h| h.1) != Some(on_disk) {
            let f = File::open(self.part).map_err(|e| self.io_error("read", e))?;
            self.hash = Some(sha256_of(f).map_err(|e| self.io_error("read", e))?);
        }
        let digest = match self.hash.as_ref() {
            Some((h, _)) => hex::encode(h.clone().finalize()),
            None => return Err(fatal("no data")),
        };
        if let Some(want) = expected {
            if !want.eq_ignore_ascii_case(&digest) {
                let _ = std::fs::remove_file(self.part);
                return Err(fatal(format!(
                    "sha256 mismatch: expected {want}, got {digest} ({on_disk} bytes); partial file removed"
                )));
            }
        }
        std::fs::rename(self.part, final_path).map_err(|e| self.io_error("rename", e))?;
        if let Some(dir) = final_path.parent() {
            // Make the rename itself durable.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(digest)
    }

    /// Throws the partial data away so the next attempt starts at byte 0.
    fn restart(&mut self) -> Result<(), AttemptError> {
        self.hash = None;
        match std::fs::remove_file(self.part) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io_error("remove", e)),
        }
    }

    fn io_error(&self, what: &str, e: std::io::Error) -> AttemptError {
        fatal(format!("cannot {what} {}: {e}", self.part.display()))
    }
}

/// Parses `bytes START-END/TOTAL` (TOTAL may be `*`) into `(START, TOTAL)`.
pub fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse::<u64>().ok()?),
    };
    if end < start || total.is_some_and(|t| end >= t) {
        return None;
    }
    Some((start, total))
}

/// The TOTAL of a `bytes */TOTAL` (416) or `bytes START-END/TOTAL` header.
fn content_range_total(v: &str) -> Option<u64> {
    v.trim().rsplit_once('/')?.1.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_range() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 0-9/*"), Some((0, None)));
        assert_eq!(parse_content_range("bytes 5-9/9"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(content_range_total("bytes */1234"), Some(1234));
    }

    #[test]
    fn part_name_sits_next_to_the_final_name() {
        assert_eq!(
            part_path(Path::new("d/x/f.warc.gz")),
            Path::new("d/x/f.warc.gz.part")
        );
    }
}

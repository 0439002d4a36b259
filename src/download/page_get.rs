//! One page request of `download --urls`: a GET that does not follow redirects, reads a 2xx
//! body up to the size cap (charging the rate limit) and gives back the HTTP head to store,
//! or the redirect target, or a classified failure.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::client::{classify, retry, AttemptError};
use super::rate::RateLimiter;

/// Bytes read from a response body per call (and per rate-limiter charge).
const CHUNK: usize = 64 * 1024;

/// What a page request needs.
pub struct PageGet<'a> {
    /// The agent (built with no redirects).
    pub agent: &'a ureq::Agent,
    /// Longest one request may take.
    pub timeout: Duration,
    /// Largest body kept.
    pub max_bytes: u64,
    /// Global rate limit, if any.
    pub limiter: Option<&'a RateLimiter>,
    /// Body bytes received by all workers.
    pub bytes: &'a AtomicU64,
}

/// What one request gave.
pub enum Reply {
    /// A 2xx response, read whole.
    Page {
        /// Status line and header fields, ending with the blank line.
        head: Vec<u8>,
        /// The body, transfer coding undone.
        body: Vec<u8>,
        /// The HTTP status.
        status: u16,
        /// The server's address.
        ip: std::net::SocketAddr,
    },
    /// A redirect to this URL (fragment dropped), with its status.
    Redirect(url::Url, u16),
}

impl PageGet<'_> {
    /// One request for `url`, not following redirects; reads a 2xx body up to the size cap.
    pub fn get(&self, url: &url::Url) -> Result<Reply, AttemptError> {
        let resp = self
            .agent
            .get(url.as_str())
            .set("Accept-Encoding", "identity")
            .timeout(self.timeout)
            .call()
            .map_err(classify)?;
        let status = resp.status();
        if (300..400).contains(&status) {
            let Some(location) = resp.header("Location") else {
                return Err(AttemptError::Fatal {
                    status: Some(status),
                    reason: format!("HTTP {status} without a Location"),
                });
            };
            let mut to = url.join(location.trim()).map_err(|e| AttemptError::Fatal {
                status: Some(status),
                reason: format!("HTTP {status} to a bad redirect location {location:?}: {e}"),
            })?;
            to.set_fragment(None);
            if !matches!(to.scheme(), "http" | "https") {
                return Err(AttemptError::Fatal {
                    status: Some(status),
                    reason: format!("HTTP {status} redirect to a non-HTTP location {to}"),
                });
            }
            return Ok(Reply::Redirect(to, status));
        }
        if !(200..300).contains(&status) {
            return Err(AttemptError::Fatal {
                status: Some(status),
                reason: format!("unexpected HTTP {status} {}", resp.status_text()),
            });
        }
        let cap = self.max_bytes;
        let announced = resp
            .header("Content-Length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(n) = announced.filter(|&n| n > cap) {
            return Err(AttemptError::Fatal {
                status: None,
                reason: format!("too_large: the server announces {n} bytes, the cap is {cap}"),
            });
        }
        let head = http_head(&resp);
        let ip = resp.remote_addr();
        let mut reader = resp.into_reader();
        let mut body = Vec::with_capacity(announced.unwrap_or(16 << 10).min(cap) as usize);
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(retry(format!(
                        "transfer broke off after {} bytes{}: {e}",
                        body.len(),
                        announced.map(|t| format!(" of {t}")).unwrap_or_default()
                    )))
                }
            };
            if let Some(l) = self.limiter {
                l.take(n);
            }
            self.bytes.fetch_add(n as u64, Ordering::Relaxed);
            if (body.len() + n) as u64 > cap {
                return Err(AttemptError::Fatal {
                    status: None,
                    reason: format!("too_large: more than {cap} bytes"),
                });
            }
            body.extend_from_slice(&buf[..n]);
        }
        if let Some(t) = announced.filter(|&t| t != body.len() as u64) {
            return Err(retry(format!(
                "transfer broke off after {} bytes of {t}",
                body.len()
            )));
        }
        let mut head = head;
        head.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        Ok(Reply::Page {
            head,
            body,
            status,
            ip,
        })
    }
}

/// The status line and header fields as received, minus the framing fields that no longer
/// describe the stored body (they are kept under `X-Crawler-` names, as Common Crawl does);
/// the caller appends `Content-Length` and the blank line.
fn http_head(resp: &ureq::Response) -> Vec<u8> {
    let mut out = format!(
        "{} {} {}\r\n",
        resp.http_version(),
        resp.status(),
        resp.status_text()
    )
    .into_bytes();
    let mut seen: Vec<String> = Vec::new();
    for name in resp.headers_names() {
        if seen.contains(&name) {
            continue;
        }
        for value in resp.all(&name) {
            let shown = match name.as_str() {
                "content-length" | "transfer-encoding" | "content-encoding" => {
                    format!("x-crawler-{name}")
                }
                _ => name.clone(),
            };
            let value: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
            out.extend_from_slice(format!("{shown}: {value}\r\n").as_bytes());
        }
        seen.push(name);
    }
    out
}

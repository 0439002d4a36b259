//! `datamill download`, two modes over one fetch layer:
//! `--list` fetches every path of a Common Crawl style path list from a base URL into a
//! destination folder, in parallel, resumable, rate-limited and verified; `--urls` fetches
//! every URL of a list into WARC files ([`pages`]).
//!
//! The shared layer: [`client`] builds the HTTP agent and classifies errors (retryable or
//! not, `Retry-After`), [`retry`] is the backoff policy, [`rate`] the global token bucket.
//! `--list`: [`paths`] reads the list, [`checksum`] the expected digests, [`fetch`] moves one
//! file (resume, retry, size and digest check) and [`manifest`] records what is complete.
//! `--urls`: [`host_queue`] schedules per host ([`set_aside`] holds the overflow),
//! [`page_get`] makes one page request, [`robots`] reads robots.txt, [`warc_writer`] writes
//! the records and [`fetch_log`] records what is done; [`pages`] runs them.
//! [`stream`] reads a remote file as a resumable stream (URL inputs of a run).

pub mod checksum;
pub mod client;
pub mod dates;
pub mod fetch;
pub mod fetch_log;
pub mod host_queue;
pub mod manifest;
pub mod page_get;
pub mod pages;
pub mod paths;
pub mod rate;
pub mod retry;
pub mod robots;
pub mod set_aside;
pub mod stream;
pub mod warc_writer;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};

use checksum::{read_checksums, Checksums};
use client::{build_agent, check_transfer_settings, AgentSettings};
use fetch::{fetch_file, FetchContext};
use manifest::{Manifest, ManifestEntry};
pub use pages::{fetch_pages, PageFetchOptions, PageFetchSummary};
use paths::{read_path_list, url_for};
use rate::RateLimiter;
pub use retry::RetryPolicy;

/// Suffix of a file that is still being downloaded.
pub const PART_SUFFIX: &str = ".part";

/// How often (at most) the manifest is rewritten while files complete.
const MANIFEST_SAVE_INTERVAL: Duration = Duration::from_secs(2);

/// Everything `datamill download` needs.
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// The path list (plain or gzipped), one relative path per line.
    pub list: PathBuf,
    /// Prefix of every URL: a path `P` is fetched from `BASE_URL/P`.
    pub base_url: String,
    /// Destination folder: `P` is written to `DEST/P`.
    pub dest: PathBuf,
    /// Files fetched at the same time.
    pub concurrency: usize,
    /// Global limit over all workers in MB/s (1 MB = 10^6 bytes); `None` = unlimited.
    pub rate_limit_mb_per_sec: Option<f64>,
    /// Optional `sha256sum`-format file with the expected digest of some or all paths.
    pub checksums: Option<PathBuf>,
    /// Attempts and backoff per file.
    pub retry: RetryPolicy,
    /// Connect timeout and the longest a read may stall.
    pub timeout: Duration,
}

impl DownloadOptions {
    /// Options with the defaults: 4 workers, no rate limit, no checksums, [`RetryPolicy`]
    /// defaults, 60 s timeout.
    pub fn new(list: impl Into<PathBuf>, base_url: &str, dest: impl Into<PathBuf>) -> Self {
        DownloadOptions {
            list: list.into(),
            base_url: base_url.to_string(),
            dest: dest.into(),
            concurrency: 4,
            rate_limit_mb_per_sec: None,
            checksums: None,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(60),
        }
    }
}

/// A path that did not end up complete in DEST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedFile {
    /// The path as written in the list.
    pub path: String,
    /// The URL tried (none for a refused list line).
    pub url: Option<String>,
    /// The HTTP status, when that was the failure.
    pub status: Option<u16>,
    /// What went wrong.
    pub reason: String,
}

/// What a download run did.
#[derive(Debug, Clone, Default)]
pub struct DownloadSummary {
    /// Files fetched and verified in this run.
    pub ok: u64,
    /// Files already complete according to the manifest (not requested).
    pub skipped: u64,
    /// Files that failed, in completion order.
    pub failed: Vec<FailedFile>,
    /// Bytes received over the network in this run.
    pub bytes: u64,
    /// Requests that were repeated after a retryable failure.
    pub retries: u64,
    /// Files completed by continuing a partial file with a Range request.
    pub resumed: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl DownloadSummary {
    /// Received bytes per second of wall time, in MB/s.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The human-readable summary printed at the end of a run.
    pub fn report(&self) -> String {
        let mut s = format!(
            "files: {} ok, {} skipped, {} failed; {:.2} MB in {:.1} s ({:.2} MB/s); {} retries, {} resumed\n",
            self.ok,
            self.skipped,
            self.failed.len(),
            self.bytes as f64 / 1e6,
            self.elapsed.as_secs_f64(),
            self.mb_per_sec(),
            self.retries,
            self.resumed
        );
        for f in &self.failed {
            let _ = writeln!(
                s,
                "failed: {} ({}): {}",
                f.path,
                f.url.as_deref().unwrap_or("not fetched"),
                f.reason
            );
        }
        s
    }
}

/// Shared by the workers: the manifest and the counts.
struct RunState {
    manifest: Manifest,
    dirty: bool,
    last_save: Instant,
    save_error: Option<anyhow::Error>,
    summary: DownloadSummary,
}

/// Fetches every path of the list that the manifest of DEST does not list as complete.
/// Failed files are counted in the summary and do not stop the run; an `Err` means the run
/// could not start or its manifest could not be written.
pub fn download(opts: &DownloadOptions) -> Result<DownloadSummary> {
    let started = Instant::now();
    check_options(opts)?;
    let list = read_path_list(&opts.list)?;
    let checksums: Checksums = match &opts.checksums {
        Some(f) => read_checksums(f)?,
        None => Checksums::new(),
    };
    std::fs::create_dir_all(&opts.dest)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", opts.dest.display()))?;
    let manifest = Manifest::load(&opts.dest)?;

    let mut summary = DownloadSummary::default();
    for bad in &list.invalid {
        tracing::warn!(
            "{}: line {} refused ({}): {:?}",
            opts.list.display(),
            bad.line,
            bad.reason,
            bad.text
        );
        summary.failed.push(FailedFile {
            path: bad.text.clone(),
            url: None,
            status: None,
            reason: format!("line {} of the path list refused: {}", bad.line, bad.reason),
        });
    }
    let todo: Vec<&str> = list
        .paths
        .iter()
        .map(String::as_str)
        .filter(|p| {
            let done = manifest
                .complete_entry(&opts.dest, p, checksums.get(*p).map(String::as_str))
                .is_some();
            summary.skipped += u64::from(done);
            !done
        })
        .collect();
    tracing::info!(
        "{} paths: {} already complete, {} to fetch",
        list.paths.len(),
        summary.skipped,
        todo.len()
    );

    let agent = build_agent(AgentSettings {
        timeout: opts.timeout,
        redirects: 5,
    });
    let limiter = opts.rate_limit_mb_per_sec.map(RateLimiter::from_mb_per_sec);
    let received = AtomicU64::new(0);
    let ctx = FetchContext {
        agent: &agent,
        limiter: limiter.as_ref(),
        retry: opts.retry,
        bytes_received: &received,
    };
    let state = Mutex::new(RunState {
        manifest,
        dirty: false,
        last_save: Instant::now(),
        save_error: None,
        summary,
    });
    let next = AtomicUsize::new(0);
    let workers = opts.concurrency.min(todo.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = todo.get(i) else { break };
                fetch_one(opts, &ctx, &checksums, path, &state);
            });
        }
    });

    let mut st = state.into_inner().unwrap_or_else(|e| e.into_inner());
    if st.dirty {
        st.manifest.save(&opts.dest)?;
    }
    if let Some(e) = st.save_error {
        return Err(e.context("the manifest could not be saved during the run"));
    }
    st.summary.bytes = received.load(Ordering::Relaxed);
    st.summary.elapsed = started.elapsed();
    Ok(st.summary)
}

/// Fetches one path and records the outcome.
fn fetch_one(
    opts: &DownloadOptions,
    ctx: &FetchContext<'_>,
    checksums: &Checksums,
    path: &str,
    state: &Mutex<RunState>,
) {
    let url = url_for(&opts.base_url, path);
    let final_path = opts.dest.join(path);
    let result = fetch_file(
        ctx,
        &url,
        &final_path,
        checksums.get(path).map(String::as_str),
    );
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    match result {
        Ok(f) => {
            tracing::info!(
                "{path}: {} bytes ({} received, {} requests{})",
                f.size,
                f.received,
                f.attempts,
                if f.resumed { ", resumed" } else { "" }
            );
            st.summary.ok += 1;
            st.summary.retries += u64::from(f.attempts - 1);
            st.summary.resumed += u64::from(f.resumed);
            let completed_unix = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            st.manifest.files.insert(
                path.to_string(),
                ManifestEntry {
                    size: f.size,
                    sha256: f.sha256,
                    url,
                    completed_unix,
                },
            );
            st.dirty = true;
            if st.last_save.elapsed() >= MANIFEST_SAVE_INTERVAL {
                save_manifest(&mut st, &opts.dest);
            }
        }
        Err(f) => {
            tracing::warn!(
                "{url}: failed{}: {}",
                f.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(),
                f.reason
            );
            st.summary.retries += u64::from(f.attempts.saturating_sub(1));
            st.summary.failed.push(FailedFile {
                path: path.to_string(),
                url: Some(url),
                status: f.status,
                reason: f.reason,
            });
        }
    }
}

fn save_manifest(st: &mut RunState, dest: &Path) {
    match st.manifest.save(dest) {
        Ok(()) => st.dirty = false,
        Err(e) => {
            tracing::error!("{e:#}");
            st.save_error.get_or_insert(e);
        }
    }
    st.last_save = Instant::now();
}

/// Cuts `path` to `len` bytes and makes that durable (a crash's leftovers after the last
/// complete record of a WARC file or the fetch log).
pub(crate) fn truncate_durably(path: &Path, len: u64) -> Result<()> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    f.set_len(len)
        .and_then(|()| f.sync_all())
        .map_err(|e| anyhow::anyhow!("cannot truncate {}: {e}", path.display()))
}

fn check_options(opts: &DownloadOptions) -> Result<()> {
    check_transfer_settings(opts.concurrency, opts.rate_limit_mb_per_sec, &opts.retry)?;
    if !(opts.base_url.starts_with("http://") || opts.base_url.starts_with("https://")) {
        bail!(
            "--base-url must start with http:// or https://, got {:?}",
            opts.base_url
        );
    }
    Ok(())
}

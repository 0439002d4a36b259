//! `datamill download --urls LIST --warc DIR`: fetches every URL of a list (the references
//! `datamill wiki-refs` collects, or any list of URLs) and writes each final HTTP response as
//! a WARC/1.1 `response` record, as RedPajama built the positives of its Wikipedia-reference
//! classifier.
//!
//! The list is streamed into a [`HostQueue`] (bounded; one connection per host), workers
//! fetch with the shared agent, retry policy and rate limit, obey robots.txt and follow
//! redirects one hop at a time (a hop to another host queues under that host), and each
//! outcome goes to the fetch log after its record is durable, so a rerun fetches only what
//! is missing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};

use super::client::{
    build_agent, check_transfer_settings, classify, fatal, retry, AgentSettings, AttemptError,
    ROBOTS_TOKEN,
};
use super::fetch_log::{list_fingerprint, FetchLog, LogEntry, LogHeader, Outcome};
use super::host_queue::{host_key, Admitted, HostQueue, HostRobots, Job};
use super::page_get::{PageGet, Reply};
use super::rate::RateLimiter;
use super::retry::RetryPolicy;
use super::robots::{Robots, MAX_ROBOTS_BYTES};
use super::set_aside::SetAside;
use super::warc_writer::{recover, response_member, PageResponse, WarcWriter};
use crate::sources::url_list::{parse_line, BadUrlLine, UrlListReader};

/// Name of the file listing the refused lines of the URL list (rewritten by every run).
pub const BAD_LINES_NAME: &str = "bad-url-lines.tsv";

/// How often (at most) WARC data is fsynced and the fetch log committed.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// Entries after which the fetch log is committed whatever the time.
const COMMIT_ENTRIES: u64 = 1000;

/// Examples of refused lines and failures kept for the printed summary.
const EXAMPLES: usize = 20;

/// Longest robots.txt `Crawl-delay` honoured; a larger one is cut to this.
pub const MAX_CRAWL_DELAY: Duration = Duration::from_secs(30);

/// Everything `datamill download --urls` needs.
#[derive(Debug, Clone)]
pub struct PageFetchOptions {
    /// The URL list (`url<TAB>count` lines or one URL per line; plain, `.gz` or `.zst`).
    pub urls: PathBuf,
    /// Folder of the WARC files and the fetch log.
    pub warc_dir: PathBuf,
    /// Pages fetched at the same time (never two from one host).
    pub concurrency: usize,
    /// Global limit over all workers in MB/s; `None` = unlimited.
    pub rate_limit_mb_per_sec: Option<f64>,
    /// Attempts and backoff per page.
    pub retry: RetryPolicy,
    /// Longest one request may take, from connecting to the last body byte.
    pub timeout: Duration,
    /// Largest body kept; a larger response fails as `too_large`.
    pub max_page_bytes: u64,
    /// Redirects followed per URL.
    pub max_redirects: u32,
    /// A WARC file is closed once it reaches this many bytes.
    pub warc_file_bytes: u64,
    /// Most URLs held in memory (queued or in flight).
    pub window: usize,
    /// Most URLs queued per host; more are set aside on disk for a second pass.
    pub per_host_queue: usize,
    /// Pause between the end of one request to a host and the start of the next (a host's
    /// robots.txt `Crawl-delay`, up to [`MAX_CRAWL_DELAY`], when longer).
    pub host_delay: Duration,
    /// Hosts whose robots.txt is kept in memory.
    pub robots_cache_hosts: usize,
    /// This task's rank: it fetches the URLs whose host hashes to it.
    pub rank: usize,
    /// Tasks sharing the list (each writes into `WARC_DIR/rank-NNNNN` when more than one).
    pub world_size: usize,
}

impl PageFetchOptions {
    /// Options with the defaults: 16 workers, 30 s per request, 10 MiB per page, 10
    /// redirects, 1 GB WARC files, 100,000 URLs in memory, 256 per host.
    pub fn new(urls: impl Into<PathBuf>, warc_dir: impl Into<PathBuf>) -> Self {
        PageFetchOptions {
            urls: urls.into(),
            warc_dir: warc_dir.into(),
            concurrency: 16,
            rate_limit_mb_per_sec: None,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            max_page_bytes: 10 << 20,
            max_redirects: 10,
            warc_file_bytes: 1_000_000_000,
            window: 100_000,
            per_host_queue: 256,
            host_delay: Duration::ZERO,
            robots_cache_hosts: 100_000,
            rank: 0,
            world_size: 1,
        }
    }
}

/// One failed URL, for the printed summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageFailure {
    /// Line in the list.
    pub line: u64,
    /// The URL as listed.
    pub url: String,
    /// What went wrong.
    pub reason: String,
}

/// What a `download --urls` run did.
#[derive(Debug, Clone, Default)]
pub struct PageFetchSummary {
    /// URL lines read from the list (refused ones included).
    pub lines: u64,
    /// Pages fetched and written this run.
    pub fetched: u64,
    /// Of those, pages served from another URL after redirects.
    pub redirected: u64,
    /// URLs robots.txt forbids.
    pub robots_skipped: u64,
    /// URLs that failed (all reasons).
    pub failed: u64,
    /// Of the failures, those a rerun tries again.
    pub failed_retryable: u64,
    /// Failures and skips by kind (`HTTP 404`, `too_large`, `timeout`, `robots`, ...).
    pub by_reason: BTreeMap<String, u64>,
    /// The first failures, for the report (all are in the fetch log).
    pub failure_examples: Vec<PageFailure>,
    /// Lines the fetch log lists as done (not requested again).
    pub already_done: u64,
    /// Lines of the list refused (garbage).
    pub bad_lines: u64,
    /// The first refused lines.
    pub bad_line_examples: Vec<BadUrlLine>,
    /// URLs set aside for the second pass because their host's queue was full.
    pub deferred: u64,
    /// URL lines left to the other ranks (their host hashes elsewhere).
    pub other_ranks: u64,
    /// Requests repeated after a retryable failure.
    pub retries: u64,
    /// Response body bytes received.
    pub bytes: u64,
    /// Bytes of WARC data cut back at the start (left by a crash).
    pub warc_bytes_cut: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl PageFetchSummary {
    /// Pages fetched per second of wall time.
    pub fn pages_per_sec(&self) -> f64 {
        self.fetched as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The human-readable summary printed at the end of a run.
    pub fn report(&self) -> String {
        let mut s = format!(
            "urls: {} lines read{}; {} fetched ({} after redirects), {} forbidden by robots.txt, \
             {} failed ({} to retry on a rerun), {} already done, {} refused lines; \
             {:.2} MB in {:.1} s ({:.1} pages/s); {} retries\n",
            self.lines,
            if self.other_ranks > 0 {
                format!(" ({} left to other ranks)", self.other_ranks)
            } else {
                String::new()
            },
            self.fetched,
            self.redirected,
            self.robots_skipped,
            self.failed,
            self.failed_retryable,
            self.already_done,
            self.bad_lines,
            self.bytes as f64 / 1e6,
            self.elapsed.as_secs_f64(),
            self.pages_per_sec(),
            self.retries
        );
        if self.lines == 0 {
            s.push_str("the URL list holds no URL line: nothing was read\n");
        }
        for (k, n) in &self.by_reason {
            let _ = writeln!(s, "  {k}: {n}");
        }
        for f in &self.failure_examples {
            let _ = writeln!(s, "failed: line {} {}: {}", f.line, f.url, f.reason);
        }
        for b in &self.bad_line_examples {
            let _ = writeln!(s, "refused: line {} ({}): {:?}", b.line, b.reason, b.text);
        }
        if self.failed as usize > self.failure_examples.len()
            || self.bad_lines as usize > self.bad_line_examples.len()
        {
            let _ = writeln!(
                s,
                "(every failure is in {}, every refused line in {BAD_LINES_NAME})",
                super::fetch_log::FETCH_LOG_NAME
            );
        }
        s
    }
}

/// Where outcomes go: the WARC writer and the fetch log, committed together.
struct Sink {
    warc: WarcWriter,
    log: FetchLog,
    last_commit: Instant,
    summary: PageFetchSummary,
    error: Option<anyhow::Error>,
}

impl Sink {
    /// Makes the WARC data durable, then the log lines that point into it.
    fn commit(&mut self) -> Result<()> {
        self.warc.sync()?;
        self.log.commit()?;
        self.last_commit = Instant::now();
        Ok(())
    }

    fn maybe_commit(&mut self) {
        if self.error.is_none()
            && (self.last_commit.elapsed() >= COMMIT_INTERVAL
                || self.log.pending() >= COMMIT_ENTRIES)
        {
            if let Err(e) = self.commit() {
                tracing::error!("{e:#}");
                self.error = Some(e);
            }
        }
    }
}

/// What every worker shares.
struct Shared<'a> {
    opts: &'a PageFetchOptions,
    pages: ureq::Agent,
    robots_agent: ureq::Agent,
    limiter: Option<RateLimiter>,
    queue: HostQueue,
    sink: Mutex<Sink>,
    bytes: AtomicU64,
    retries: AtomicU64,
}

impl Shared<'_> {
    /// The page request settings of this run.
    fn page_get(&self) -> PageGet<'_> {
        PageGet {
            agent: &self.pages,
            timeout: self.opts.timeout,
            max_bytes: self.opts.max_page_bytes,
            limiter: self.limiter.as_ref(),
            bytes: &self.bytes,
        }
    }

    /// How long `host` rests after a request: the run's host delay, or its robots.txt
    /// `Crawl-delay` (at most [`MAX_CRAWL_DELAY`]) when longer.
    fn pause_after(&self, host: &str) -> Duration {
        let crawl_delay = self
            .queue
            .robots(host)
            .and_then(|r| r.robots.crawl_delay())
            .map_or(Duration::ZERO, |d| d.min(MAX_CRAWL_DELAY));
        self.opts.host_delay.max(crawl_delay)
    }

    /// Whether writing the WARC files or the log failed (the run is stopping).
    fn output_failed(&self) -> bool {
        self.sink
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .error
            .is_some()
    }
}

/// Fetches every URL of the list that the fetch log of the WARC folder does not list as
/// done. Failures are logged and counted and do not stop the run; an `Err` means the run
/// could not start, the list could not be read on, or the output could not be written.
pub fn fetch_pages(opts: &PageFetchOptions) -> Result<PageFetchSummary> {
    let started = Instant::now();
    check_options(opts)?;
    let dir = &rank_dir(opts);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let header = LogHeader {
        fetch_log_version: super::fetch_log::FETCH_LOG_VERSION,
        list: crate::doc::file_name(&opts.urls),
        list_fingerprint: list_fingerprint(&opts.urls)?,
    };
    let reader = UrlListReader::open(&opts.urls)?;
    let (log, state) = FetchLog::open(dir, &header)?;
    let (next_warc, cut) = recover(dir, |name| state.warc_ends.get(name).copied())?;
    tracing::info!(
        "{}: {} lines already done ({} ranges); next WARC file number {next_warc}",
        dir.display(),
        state.done.len(),
        state.done.ranges()
    );
    let shared = Shared {
        opts,
        pages: build_agent(AgentSettings {
            timeout: opts.timeout,
            redirects: 0,
        }),
        robots_agent: build_agent(AgentSettings {
            timeout: opts.timeout,
            redirects: 5,
        }),
        limiter: opts.rate_limit_mb_per_sec.map(RateLimiter::from_mb_per_sec),
        queue: HostQueue::new(opts.window, opts.per_host_queue, opts.robots_cache_hosts),
        sink: Mutex::new(Sink {
            warc: WarcWriter::new(dir, opts.warc_file_bytes, next_warc),
            log,
            last_commit: Instant::now(),
            summary: PageFetchSummary {
                warc_bytes_cut: cut,
                ..PageFetchSummary::default()
            },
            error: None,
        }),
        bytes: AtomicU64::new(0),
        retries: AtomicU64::new(0),
    };

    let read_result = std::thread::scope(|scope| {
        for _ in 0..opts.concurrency {
            scope.spawn(|| worker(&shared));
        }
        let r = feed(&shared, reader, &state.done);
        shared.queue.close();
        r
    });

    let mut sink = shared.sink.into_inner().unwrap_or_else(|e| e.into_inner());
    let committed = sink.commit();
    sink.warc.close()?;
    if let Some(e) = sink.error.take() {
        return Err(e.context("the WARC files or the fetch log could not be written"));
    }
    committed?;
    let fed = read_result?;
    let mut summary = sink.summary;
    summary.lines = fed.lines;
    summary.already_done = fed.already;
    summary.bad_lines = fed.refused.0;
    summary.bad_line_examples = fed.refused.1;
    summary.deferred = fed.deferred;
    summary.other_ranks = fed.other_ranks;
    summary.bytes = shared.bytes.load(Ordering::Relaxed);
    summary.retries = shared.retries.load(Ordering::Relaxed);
    summary.elapsed = started.elapsed();
    Ok(summary)
}

type Refused = (u64, Vec<BadUrlLine>);

/// What reading the list gave.
struct Fed {
    lines: u64,
    already: u64,
    refused: Refused,
    deferred: u64,
    other_ranks: u64,
}

/// Reads the list into the queue (this rank's hosts only), then the URLs set aside.
fn feed(
    shared: &Shared<'_>,
    reader: UrlListReader,
    done: &super::fetch_log::LineSet,
) -> Result<Fed> {
    let dir = &rank_dir(shared.opts);
    let bad_path = dir.join(BAD_LINES_NAME);
    let bad_tmp = crate::doc::temp_path(&bad_path);
    let mut bad_out = BufWriter::new(
        File::create(&bad_tmp).with_context(|| format!("cannot create {}", bad_tmp.display()))?,
    );
    writeln!(bad_out, "line\treason\ttext")?;
    let mut set_aside = SetAside::new(dir, shared.opts.per_host_queue)?;
    let (mut lines, mut already, mut other_ranks) = (0u64, 0u64, 0u64);
    let mut refused: Refused = (0, Vec::new());
    let list = shared.opts.urls.display().to_string();
    for item in reader {
        let item = item?;
        lines += 1;
        if lines.is_multiple_of(1024) && shared.output_failed() {
            break; // the WARC files cannot be written: stop reading (the error is reported)
        }
        let u = match item {
            Ok(u) => u,
            Err(b) => {
                tracing::warn!(
                    "{list}: line {} refused ({}): {:?}",
                    b.line,
                    b.reason,
                    b.text
                );
                writeln!(
                    bad_out,
                    "{}\t{}\t{}",
                    b.line,
                    b.reason,
                    b.text.replace('\t', " ")
                )
                .with_context(|| format!("cannot write {}", bad_tmp.display()))?;
                refused.0 += 1;
                if refused.1.len() < EXAMPLES {
                    refused.1.push(b);
                }
                continue;
            }
        };
        if shared.opts.world_size > 1
            && host_rank(&host_key(&u.url), shared.opts.world_size) != shared.opts.rank
        {
            other_ranks += 1;
            continue;
        }
        if done.contains(u.line) {
            already += 1;
            continue;
        }
        let job = Job {
            line: u.line,
            requested: u.text,
            url: u.url,
            hops: 0,
            failed_requests: 0,
        };
        if let Admitted::HostFull(job) = shared.queue.admit(job, false) {
            set_aside.push(&host_key(&job.url), job.line, &job.requested)?;
        }
    }
    bad_out
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot write {}", bad_tmp.display()))?;
    std::fs::rename(&bad_tmp, &bad_path)
        .with_context(|| format!("cannot rename {}", bad_tmp.display()))?;
    let deferred = set_aside.len();
    if !set_aside.is_empty() {
        tracing::info!("second pass: {deferred} URLs of hosts whose queue was full");
        set_aside.drain(|line, text| {
            if shared.output_failed() {
                bail!("stopped: the WARC files or the fetch log could not be written");
            }
            let Ok((url, _)) = parse_line(text) else {
                bail!("a set-aside URL of line {line} no longer parses: {text:?}");
            };
            let job = Job {
                line,
                requested: text.to_string(),
                url,
                hops: 0,
                failed_requests: 0,
            };
            shared.queue.admit(job, true);
            Ok(())
        })?;
    }
    Ok(Fed {
        lines,
        already,
        refused,
        deferred,
        other_ranks,
    })
}

/// Takes jobs until the queue is closed and empty.
fn worker(shared: &Shared<'_>) {
    while let Some((host, job)) = shared.queue.next() {
        let step = fetch_on_host(shared, &host, job);
        let pause = shared.pause_after(&host);
        match step {
            Step::Moved(job) => {
                shared.queue.requeue(job);
                shared.queue.release(&host, false, pause);
            }
            Step::Done(done) => {
                record(shared, done);
                shared.queue.release(&host, true, pause);
            }
        }
    }
}

/// Where one job got to on one host.
enum Step {
    /// Redirected to another host: queue it there.
    Moved(Job),
    /// Reached its outcome.
    Done(Finished),
}

/// A job's outcome.
struct Finished {
    job: Job,
    outcome: Outcome,
    status: Option<u16>,
    reason: Option<String>,
    /// Short kind for the summary counts.
    kind: String,
    retryable: bool,
    /// The compressed record of a fetched page.
    member: Option<Vec<u8>>,
    payload_bytes: u64,
}

impl Finished {
    fn failed(job: Job, err: &AttemptError, kind: &str) -> Self {
        Finished {
            job,
            outcome: Outcome::Failed,
            status: err.status(),
            reason: Some(err.reason().to_string()),
            kind: err
                .status()
                .map_or_else(|| kind.to_string(), |s| format!("HTTP {s}")),
            retryable: err.is_retryable(),
            member: None,
            payload_bytes: 0,
        }
    }
}

/// Works on `job` while it stays on `host`: robots.txt, requests with retries, redirects.
fn fetch_on_host(shared: &Shared<'_>, host: &str, mut job: Job) -> Step {
    let opts = shared.opts;
    loop {
        let robots = host_robots(shared, host, &job.url);
        let path = match job.url.query() {
            Some(q) => format!("{}?{q}", job.url.path()),
            None => job.url.path().to_string(),
        };
        if let Some(why) = &robots.unreachable {
            let err = retry(format!("robots.txt of {host} could not be fetched: {why}"));
            return Step::Done(Finished::failed(job, &err, "robots_unreachable"));
        }
        if !robots.robots.allows(&path) {
            return Step::Done(Finished {
                reason: Some(format!("robots.txt of {host} disallows {path}")),
                outcome: Outcome::Skipped,
                status: None,
                kind: "robots".into(),
                retryable: false,
                member: None,
                payload_bytes: 0,
                job,
            });
        }
        let reply = loop {
            match shared.page_get().get(&job.url) {
                Ok(r) => break r,
                Err(e) => {
                    job.failed_requests += 1;
                    if !e.is_retryable() || job.failed_requests >= opts.retry.max_attempts {
                        let kind = failure_kind(&e);
                        let mut err = e;
                        if err.is_retryable() {
                            let reason = format!(
                                "gave up after {} requests: {}",
                                job.failed_requests,
                                err.reason()
                            );
                            err = AttemptError::Retry {
                                status: err.status(),
                                reason,
                                retry_after: None,
                            };
                        }
                        return Step::Done(Finished::failed(job, &err, kind));
                    }
                    let retry_after = match &e {
                        AttemptError::Retry { retry_after, .. } => *retry_after,
                        AttemptError::Fatal { .. } => None,
                    };
                    let wait = opts.retry.backoff(job.failed_requests, retry_after);
                    tracing::info!(
                        "{}: {} (request {}); retrying in {:.2} s",
                        job.url,
                        e.reason(),
                        job.failed_requests,
                        wait.as_secs_f64()
                    );
                    shared.retries.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(wait);
                }
            }
        };
        match reply {
            Reply::Redirect(to, status) => {
                job.hops += 1;
                if job.hops > opts.max_redirects {
                    let err = AttemptError::Fatal {
                        status: Some(status),
                        reason: format!(
                            "more than {} redirects (the last to {to})",
                            opts.max_redirects
                        ),
                    };
                    return Step::Done(Finished::failed(job, &err, "redirects"));
                }
                let same_host = host_key(&to) == host;
                job.url = to;
                if !same_host {
                    return Step::Moved(job);
                }
            }
            Reply::Page {
                head,
                body,
                status,
                ip,
            } => {
                let target = job.url.to_string();
                let member = response_member(&PageResponse {
                    target_uri: &target,
                    requested_uri: &job.requested,
                    date: SystemTime::now(),
                    ip: Some(ip),
                    http_head: &head,
                    payload: &body,
                });
                return Step::Done(Finished {
                    outcome: Outcome::Fetched,
                    status: Some(status),
                    reason: None,
                    kind: "fetched".into(),
                    retryable: false,
                    member: Some(member),
                    payload_bytes: body.len() as u64,
                    job,
                });
            }
        }
    }
}

/// A short name for a failure without an HTTP status.
fn failure_kind(e: &AttemptError) -> &'static str {
    let r = e.reason().to_ascii_lowercase();
    if r.contains("too_large") {
        "too_large"
    } else if r.contains("timed out") || r.contains("timeout") {
        "timeout"
    } else if r.contains("redirect") {
        "bad_redirect"
    } else if r.contains("broke off") || r.contains("closed before") {
        "cut_connection"
    } else {
        "transport"
    }
}

/// The robots.txt verdict for `host`, fetched on first use (the caller holds the host).
fn host_robots(shared: &Shared<'_>, host: &str, url: &url::Url) -> Arc<HostRobots> {
    if let Some(r) = shared.queue.robots(host) {
        return r;
    }
    let mut robots_url = url.clone();
    robots_url.set_path("/robots.txt");
    robots_url.set_query(None);
    robots_url.set_fragment(None);
    let verdict = fetch_robots(shared, robots_url.as_str());
    let verdict = Arc::new(verdict);
    shared.queue.set_robots(host, verdict.clone());
    verdict
}

/// Fetches and parses one robots.txt (RFC 9309: a 4xx means no rules, a 5xx or no answer
/// means nothing may be fetched). Transport errors and 5xx get the run's retries.
fn fetch_robots(shared: &Shared<'_>, url: &str) -> HostRobots {
    let policy = shared.opts.retry;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let result = shared
            .robots_agent
            .get(url)
            .timeout(shared.opts.timeout)
            .call();
        let err = match result {
            Ok(resp) if (200..300).contains(&resp.status()) => {
                let mut body = Vec::new();
                match resp
                    .into_reader()
                    .take(MAX_ROBOTS_BYTES as u64)
                    .read_to_end(&mut body)
                {
                    Ok(_) => {
                        return HostRobots {
                            robots: Robots::parse(&body, ROBOTS_TOKEN),
                            unreachable: None,
                        }
                    }
                    Err(e) => retry(format!("reading {url} broke off: {e}")),
                }
            }
            Ok(resp) => fatal(format!("{url}: HTTP {}", resp.status())),
            Err(ureq::Error::Status(code, _)) if (400..500).contains(&code) && code != 429 => {
                return HostRobots {
                    robots: Robots::allow_all(),
                    unreachable: None,
                }
            }
            Err(e) => classify(e),
        };
        if err.is_retryable() && attempt < policy.max_attempts {
            let retry_after = match &err {
                AttemptError::Retry { retry_after, .. } => *retry_after,
                AttemptError::Fatal { .. } => None,
            };
            std::thread::sleep(policy.backoff(attempt, retry_after));
            continue;
        }
        return HostRobots {
            robots: Robots::disallow_all(),
            unreachable: Some(err.reason().to_string()),
        };
    }
}

/// Writes a job's record (if any) and its log entry, and counts it.
fn record(shared: &Shared<'_>, f: Finished) {
    let mut sink = shared.sink.lock().unwrap_or_else(|e| e.into_inner());
    if sink.error.is_some() {
        return;
    }
    let final_url = (f.job.hops > 0).then(|| f.job.url.to_string());
    let mut entry = LogEntry {
        line: f.job.line,
        url: f.job.requested.clone(),
        outcome: f.outcome,
        status: f.status,
        final_url,
        reason: f.reason.clone(),
        retryable: f.retryable,
        warc: None,
        offset: None,
        end: None,
    };
    if let Some(member) = &f.member {
        match sink.warc.append(member) {
            Ok(placed) => {
                entry.warc = Some(placed.file);
                entry.offset = Some(placed.offset);
                entry.end = Some(placed.end);
            }
            Err(e) => {
                tracing::error!("{e:#}");
                sink.error = Some(e);
                return;
            }
        }
    }
    if let Err(e) = sink.log.push(&entry) {
        sink.error = Some(e);
        return;
    }
    let s = &mut sink.summary;
    match f.outcome {
        Outcome::Fetched => {
            s.fetched += 1;
            s.redirected += u64::from(entry.final_url.is_some());
            tracing::debug!("{}: {} bytes", entry.url, f.payload_bytes);
        }
        Outcome::Skipped => {
            s.robots_skipped += 1;
            *s.by_reason.entry(f.kind).or_insert(0) += 1;
        }
        Outcome::Failed => {
            s.failed += 1;
            s.failed_retryable += u64::from(f.retryable);
            *s.by_reason.entry(f.kind).or_insert(0) += 1;
            let reason = f.reason.unwrap_or_default();
            tracing::warn!("line {} {}: failed: {reason}", entry.line, entry.url);
            if s.failure_examples.len() < EXAMPLES {
                s.failure_examples.push(PageFailure {
                    line: entry.line,
                    url: entry.url.clone(),
                    reason,
                });
            }
        }
    }
    sink.maybe_commit();
}

/// The folder this rank writes to: the WARC folder itself, or `rank-NNNNN` inside it when
/// several tasks share the list.
pub fn rank_dir(opts: &PageFetchOptions) -> PathBuf {
    if opts.world_size > 1 {
        opts.warc_dir.join(format!("rank-{:05}", opts.rank))
    } else {
        opts.warc_dir.clone()
    }
}

/// Whether the URLs of `host` belong to `rank` of `world_size` tasks.
pub fn host_rank(host: &str, world_size: usize) -> usize {
    (xxhash_rust::xxh3::xxh3_64(host.as_bytes()) % world_size.max(1) as u64) as usize
}

fn check_options(opts: &PageFetchOptions) -> Result<()> {
    if opts.world_size == 0 || opts.rank >= opts.world_size {
        bail!(
            "rank {} is not below world size {}",
            opts.rank,
            opts.world_size
        );
    }
    check_transfer_settings(opts.concurrency, opts.rate_limit_mb_per_sec, &opts.retry)?;
    if opts.max_page_bytes == 0 {
        bail!("--max-page-bytes must be at least 1");
    }
    if opts.window == 0 || opts.per_host_queue == 0 {
        bail!("--window and --host-queue must be at least 1");
    }
    if opts.timeout.is_zero() {
        bail!("--timeout must be at least 1 second");
    }
    Ok(())
}

//! `datamill download --urls LIST --warc DIR` against real HTTP servers on 127.0.0.1 written
//! here with std::net. Two servers (two ports, so two hosts) serve pages and misbehave on
//! purpose by path: redirects within and across hosts, a redirect loop, 404, a slow answer,
//! a connection cut mid-body (once, or always), 503 with Retry-After, bodies over the size
//! cap, paths robots.txt forbids. Every request is logged with its time, and each server
//! records the most connections it ever had open at once.
//!
//! The WARC files are read back with datamill's own WARC record parser and `warc` reader,
//! and checked with warcio (digests included) from the project's `.venv`.

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod common;

use datamill::download::fetch_log::{LogEntry, Outcome, FETCH_LOG_NAME};
use datamill::download::{fetch_pages, PageFetchOptions, PageFetchSummary, RetryPolicy};
use datamill::sources::warc::record::{StreamKind, WarcRecord, WarcRecordReader};
use datamill::sources::warc::WarcSource;
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_datamill");

/// One request as a server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    at: Instant,
}

/// Test-wide switches the handlers read.
#[derive(Default)]
struct Knobs {
    /// `/flaky/...` answers 503 while this is false.
    flaky_healed: AtomicBool,
}

struct Server {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Seen>>>,
    /// Most requests handled at once (counted over a 15 ms pause before each answer).
    max_open: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// A server whose robots.txt is `robots`; `other` is the base URL cross-host redirects
    /// point to.
    fn start(robots: &'static str, other: Option<String>, knobs: Arc<Knobs>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(AtomicUsize::new(0));
        let max_open = Arc::new(AtomicUsize::new(0));
        let counts = Arc::new(Mutex::new(HashMap::<String, u32>::new()));
        let (log2, stop2, max2) = (log.clone(), stop.clone(), max_open.clone());
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (log, counts, open, max, other, knobs) = (
                    log2.clone(),
                    counts.clone(),
                    open.clone(),
                    max2.clone(),
                    other.clone(),
                    knobs.clone(),
                );
                std::thread::spawn(move || {
                    let ctx = Ctx {
                        robots,
                        other: other.as_deref(),
                        log: &log,
                        counts: &counts,
                        knobs: &knobs,
                        active: &open,
                        max_active: &max,
                    };
                    serve(stream, &ctx);
                });
            }
        });
        Server {
            addr,
            log,
            max_open,
            stop,
            accept: Some(accept),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    fn requests_for(&self, path: &str) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// The HTML of page `n`: a paragraph of real-looking English so the `warc` reader keeps it.
fn page_html(path: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><title>Page {path}</title></head><body><article>\
         <h1>Notes for {path}</h1><p>The committee met on Tuesday to review the annual report \
         on water quality in the northern district. Members agreed that the new filtration \
         plant had reduced contamination and asked for a follow-up study next spring.</p>\
         <p>Residents can read the full report at the public library.</p></article></body></html>"
    )
}

fn respond(stream: &mut TcpStream, status: &str, headers: &str, body: &[u8]) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(body);
}

/// What a connection handler sees.
struct Ctx<'a> {
    robots: &'a str,
    other: Option<&'a str>,
    log: &'a Mutex<Vec<Seen>>,
    counts: &'a Mutex<HashMap<String, u32>>,
    knobs: &'a Knobs,
    active: &'a AtomicUsize,
    max_active: &'a AtomicUsize,
}

fn serve(mut stream: TcpStream, ctx: &Ctx<'_>) {
    let Ctx {
        robots,
        other,
        log,
        counts,
        knobs,
        ..
    } = *ctx;
    let Some((path, _)) = common::read_request_head(&stream) else {
        return;
    };
    let nth = {
        let mut c = counts.lock().unwrap();
        let n = c.entry(path.clone()).or_insert(0);
        *n += 1;
        *n
    };
    log.lock().unwrap().push(Seen {
        path: path.clone(),
        at: Instant::now(),
    });
    // Long enough that two requests to one host would overlap if they were allowed to.
    let now = ctx.active.fetch_add(1, Ordering::SeqCst) + 1;
    ctx.max_active.fetch_max(now, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(15));
    ctx.active.fetch_sub(1, Ordering::SeqCst);
    let html = page_html(&path);
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match seg.as_slice() {
        ["robots.txt"] if robots == ROBOTS_DOWN => {
            respond(&mut stream, "503 Service Unavailable", "", b"down")
        }
        ["robots.txt"] => respond(
            &mut stream,
            "200 OK",
            "Content-Type: text/plain\r\n",
            robots.as_bytes(),
        ),
        ["page", ..] | ["private-ok", ..] => respond(
            &mut stream,
            "200 OK",
            "Content-Type: text/html; charset=utf-8\r\nX-Test: a\r\nX-Test: b\r\n",
            html.as_bytes(),
        ),
        ["chunked", ..] => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            );
            for part in html.as_bytes().chunks(100) {
                let _ = write!(stream, "{:x}\r\n", part.len());
                let _ = stream.write_all(part);
                let _ = stream.write_all(b"\r\n");
            }
            let _ = stream.write_all(b"0\r\n\r\n");
        }
        ["redirect", rest @ ..] => respond(
            &mut stream,
            "301 Moved Permanently",
            &format!("Location: /page/{}\r\n", rest.join("/")),
            b"",
        ),
        ["cross", rest @ ..] => respond(
            &mut stream,
            "302 Found",
            &format!(
                "Location: {}/page/{}\r\n",
                other.unwrap_or(""),
                rest.join("/")
            ),
            b"",
        ),
        ["loop"] => respond(&mut stream, "302 Found", "Location: /loop\r\n", b""),
        ["slow"] => {
            std::thread::sleep(Duration::from_secs(3));
            respond(
                &mut stream,
                "200 OK",
                "Content-Type: text/html\r\n",
                html.as_bytes(),
            );
        }
        ["cut", ..] | ["alwayscut", ..] if seg[0] == "alwayscut" || nth == 1 => {
            let body = html.as_bytes();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body[..body.len() / 2]);
            let _ = stream.flush();
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        ["cut", ..] => respond(
            &mut stream,
            "200 OK",
            "Content-Type: text/html\r\n",
            html.as_bytes(),
        ),
        ["throttle", ..] if nth == 1 => respond(
            &mut stream,
            "503 Service Unavailable",
            "Retry-After: 1\r\n",
            b"busy",
        ),
        ["throttle", ..] => respond(
            &mut stream,
            "200 OK",
            "Content-Type: text/html\r\n",
            html.as_bytes(),
        ),
        ["flaky", ..] if !knobs.flaky_healed.load(Ordering::SeqCst) => {
            respond(&mut stream, "503 Service Unavailable", "", b"down")
        }
        ["flaky", ..] => respond(
            &mut stream,
            "200 OK",
            "Content-Type: text/html\r\n",
            html.as_bytes(),
        ),
        ["big"] => respond(
            &mut stream,
            "200 OK",
            "Content-Type: text/html\r\n",
            &vec![b'x'; 300_000],
        ),
        ["bigchunked"] => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            );
            for _ in 0..40 {
                let _ = write!(stream, "{:x}\r\n", 10_000);
                let _ = stream.write_all(&[b'y'; 10_000]);
                let _ = stream.write_all(b"\r\n");
            }
            let _ = stream.write_all(b"0\r\n\r\n");
        }
        _ => respond(&mut stream, "404 Not Found", "", b"not found"),
    }
}

fn quick_options(list: &Path, warc: &Path) -> PageFetchOptions {
    PageFetchOptions {
        concurrency: 4,
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(2),
        },
        timeout: Duration::from_secs(1),
        max_page_bytes: 200_000,
        max_redirects: 3,
        ..PageFetchOptions::new(list, warc)
    }
}

/// The fetch log's entries, by requested URL (the last entry of each wins).
fn log_entries(warc: &Path) -> HashMap<String, LogEntry> {
    let text = std::fs::read_to_string(warc.join(FETCH_LOG_NAME)).unwrap();
    text.lines()
        .skip(1)
        .map(|l| serde_json::from_str::<LogEntry>(l).unwrap())
        .map(|e| (e.url.clone(), e))
        .collect()
}

fn warc_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".warc.gz"))
        .collect();
    v.sort();
    v
}

/// Every record of the folder's WARC files, through datamill's record parser.
fn read_records(dir: &Path) -> Vec<WarcRecord> {
    let mut out = Vec::new();
    for f in warc_files(dir) {
        let gz = flate2::read::MultiGzDecoder::new(std::fs::File::open(&f).unwrap());
        let wanted = ["response".to_string(), "warcinfo".to_string()];
        for r in WarcRecordReader::new(BufReader::new(gz), StreamKind::Gzip, 1 << 24, &wanted) {
            out.push(r.unwrap_or_else(|e| panic!("{}: {e:?}", f.display())));
        }
    }
    out
}

fn b32_sha256(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let d = Sha256::digest(bytes);
    let mut bits = 0u64;
    let mut n = 0;
    let mut s = String::new();
    for &b in d.iter() {
        bits = (bits << 8) | u64::from(b);
        n += 8;
        while n >= 5 {
            s.push(A[((bits >> (n - 5)) & 31) as usize] as char);
            n -= 5;
        }
    }
    if n > 0 {
        s.push(A[((bits << (5 - n)) & 31) as usize] as char);
    }
    while !s.len().is_multiple_of(8) {
        s.push('=');
    }
    format!("sha256:{s}")
}

fn venv_python() -> PathBuf {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run `make setup-python` (installs warcio)",
        py.display()
    );
    py
}

/// warcio reads every file with digest checks on; returns `type target refers length` lines.
fn warcio_lines(dir: &Path) -> Vec<String> {
    let script = r#"
import sys
from warcio.archiveiterator import ArchiveIterator
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        it = ArchiveIterator(f, check_digests='raise')
        for rec in it:
            body = rec.content_stream().read()
            h = rec.rec_headers
            print(rec.rec_type, h.get_header('WARC-Target-URI'), h.get_header('WARC-Refers-To-Target-URI'), len(body), rec.http_headers.get_statuscode() if rec.http_headers else '-')
"#;
    let files: Vec<String> = warc_files(dir)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let out = Command::new(venv_python())
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "warcio refused the files: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

struct Fixture {
    _tmp: tempfile::TempDir,
    a: Server,
    b: Server,
    knobs: Arc<Knobs>,
    list: PathBuf,
    warc: PathBuf,
}

/// A server started with this robots.txt answers 503 for it.
const ROBOTS_DOWN: &str = "(503)";

const ROBOTS_A: &str = "User-agent: *\nDisallow: /private\n\nUser-agent: datamill\nDisallow: /private/\nAllow: /private-ok\n";

/// Two hosts and a list covering every case, with garbage lines mixed in.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let knobs = Arc::new(Knobs::default());
    let b = Server::start("User-agent: *\nDisallow:\n", None, knobs.clone());
    let a = Server::start(ROBOTS_A, Some(format!("http://{}", b.addr)), knobs.clone());
    let mut lines = vec![
        format!("{}\t3", a.url("/page/1")),
        "this is not a url\t2".to_string(),
        a.url("/chunked/2"),
        a.url("/redirect/3"),
        a.url("/cross/4"),
        a.url("/missing"),
        "ftp://example.org/file\t1".to_string(),
        a.url("/slow"),
        a.url("/cut/5"),
        a.url("/alwayscut/6"),
        a.url("/throttle/7"),
        a.url("/big"),
        a.url("/bigchunked"),
        a.url("/private/secret"),
        a.url("/private-ok/8"),
        a.url("/loop"),
        format!("{}\tmany", a.url("/page/bad-count")),
        a.url("/flaky/9"),
    ];
    for i in 10..20 {
        lines.push(b.url(&format!("/page/{i}")));
    }
    let list = tmp.path().join("refs.tsv");
    std::fs::write(&list, lines.join("\n") + "\n").unwrap();
    let warc = tmp.path().join("warc");
    Fixture {
        _tmp: tmp,
        a,
        b,
        knobs,
        list,
        warc,
    }
}

fn run(fx: &Fixture) -> PageFetchSummary {
    fetch_pages(&quick_options(&fx.list, &fx.warc)).unwrap()
}

#[test]
fn every_case_ends_as_a_record_a_named_failure_or_a_robots_skip() {
    let fx = fixture();
    let s = run(&fx);
    let report = s.report();
    // 1, 2, 3 (redirect), 4 (cross-host), 5 (cut once), 7 (Retry-After), 8, 10..19.
    assert_eq!(s.fetched, 17, "{report}");
    assert_eq!(s.redirected, 2, "{report}");
    assert_eq!(s.robots_skipped, 1, "{report}");
    assert_eq!(s.bad_lines, 3, "{report}");
    let bad: Vec<(u64, &str)> = s
        .bad_line_examples
        .iter()
        .map(|b| (b.line, b.reason))
        .collect();
    assert_eq!(bad, [(2, "bad_url"), (7, "not_http"), (17, "bad_count")]);
    let bad_file = std::fs::read_to_string(fx.warc.join("bad-url-lines.tsv")).unwrap();
    assert!(
        bad_file.contains("7\tnot_http\tftp://example.org/file"),
        "{bad_file}"
    );

    let log = log_entries(&fx.warc);
    let get = |p: &str| {
        log.get(&fx.a.url(p))
            .unwrap_or_else(|| panic!("{p} not logged"))
    };
    let missing = get("/missing");
    assert_eq!(
        (missing.outcome, missing.status, missing.retryable),
        (Outcome::Failed, Some(404), false)
    );
    let slow = get("/slow");
    assert_eq!(slow.outcome, Outcome::Failed);
    assert!(
        slow.retryable && slow.reason.as_deref().unwrap().contains("timed out"),
        "{slow:?}"
    );
    assert_eq!(
        fx.a.requests_for("/slow").len(),
        3,
        "three attempts at the slow page"
    );
    let cut = get("/alwayscut/6");
    assert!(
        cut.retryable && cut.reason.as_deref().unwrap().contains("gave up after 3"),
        "{cut:?}"
    );
    for p in ["/big", "/bigchunked"] {
        let e = get(p);
        assert!(
            !e.retryable && e.reason.as_deref().unwrap().contains("too_large"),
            "{e:?}"
        );
        assert_eq!(fx.a.requests_for(p).len(), 1, "{p} is not retried");
    }
    let lp = get("/loop");
    assert!(
        lp.reason
            .as_deref()
            .unwrap()
            .contains("more than 3 redirects"),
        "{lp:?}"
    );
    let private = get("/private/secret");
    assert_eq!(private.outcome, Outcome::Skipped);
    assert!(private
        .reason
        .as_deref()
        .unwrap()
        .contains("disallows /private/secret"));
    assert!(
        fx.a.requests_for("/private/secret").is_empty(),
        "a forbidden path was requested"
    );
    assert_eq!(get("/private-ok/8").outcome, Outcome::Fetched);
    assert_eq!(
        fx.a.requests_for("/robots.txt").len(),
        1,
        "robots.txt once per host"
    );
    assert_eq!(fx.b.requests_for("/robots.txt").len(), 1);
    assert_eq!(get("/cut/5").outcome, Outcome::Fetched);
    assert_eq!(fx.a.requests_for("/cut/5").len(), 2);
    let flaky = get("/flaky/9");
    assert!(flaky.retryable && flaky.status == Some(503), "{flaky:?}");

    // Retry-After: 1 was honoured although the backoff alone is 20 ms.
    let t = fx.a.requests_for("/throttle/7");
    assert_eq!(t.len(), 2);
    assert!(t[1].at.duration_since(t[0].at) >= Duration::from_millis(950));

    // Never two connections to one host at a time, although four workers ran.
    assert_eq!(fx.a.max_open.load(Ordering::SeqCst), 1);
    assert_eq!(fx.b.max_open.load(Ordering::SeqCst), 1);

    // The records: under the URL served, the requested one beside it, digests right.
    let records = read_records(&fx.warc);
    assert_eq!(records[0].warc_type(), "warcinfo");
    let responses: Vec<&WarcRecord> = records
        .iter()
        .filter(|r| r.warc_type() == "response")
        .collect();
    assert_eq!(responses.len(), 17);
    let mut by_target = HashMap::new();
    for r in &responses {
        assert_eq!(r.version, "WARC/1.1");
        let block = &r.block;
        let split = block.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let (head, payload) = block.split_at(split);
        let head = String::from_utf8_lossy(head);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.contains(&format!("Content-Length: {}\r\n", payload.len())),
            "{head}"
        );
        assert!(
            !head.to_ascii_lowercase().contains("\r\ntransfer-encoding:"),
            "{head}"
        );
        assert_eq!(
            r.headers.get("WARC-Payload-Digest").unwrap(),
            b32_sha256(payload)
        );
        assert_eq!(
            r.headers.get("WARC-Block-Digest").unwrap(),
            b32_sha256(block)
        );
        assert!(r
            .headers
            .get("WARC-Record-ID")
            .unwrap()
            .starts_with("<urn:uuid:"));
        assert!(r.headers.get("WARC-Date").unwrap().ends_with('Z'));
        assert_eq!(r.headers.get("WARC-IP-Address"), Some("127.0.0.1"));
        by_target.insert(
            r.headers.get("WARC-Target-URI").unwrap().to_string(),
            r.headers
                .get("WARC-Refers-To-Target-URI")
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(by_target[&fx.a.url("/page/3")], fx.a.url("/redirect/3"));
    assert_eq!(by_target[&fx.b.url("/page/4")], fx.a.url("/cross/4"));
    assert_eq!(by_target[&fx.a.url("/page/1")], fx.a.url("/page/1"));
    let chunked = responses
        .iter()
        .find(|r| r.headers.get("WARC-Target-URI") == Some(&fx.a.url("/chunked/2")))
        .unwrap();
    assert!(
        String::from_utf8_lossy(&chunked.block).contains("x-crawler-transfer-encoding: chunked")
    );
    let e = get("/redirect/3");
    assert_eq!(e.final_url.as_deref(), Some(fx.a.url("/page/3").as_str()));

    // warcio agrees (and checks both digests of every record).
    let lines = warcio_lines(&fx.warc);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("response ")).count(),
        17
    );
    let line = format!("response {} {} ", fx.b.url("/page/4"), fx.a.url("/cross/4"));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&line) && l.ends_with(" 200")),
        "{lines:?}"
    );

    // datamill's `warc` reader turns the pages into documents.
    let source = WarcSource::warc_from_options(&toml::Table::new()).unwrap();
    let mut docs = 0;
    for f in warc_files(&fx.warc) {
        for d in source.documents(&f, "web").unwrap() {
            let d = d.unwrap();
            assert!(d.text.contains("filtration plant"), "{}", d.text);
            docs += 1;
        }
    }
    assert_eq!(docs, 17);
}

#[test]
fn a_rerun_fetches_only_what_is_missing() {
    let fx = fixture();
    let first = run(&fx);
    assert_eq!(first.fetched, 17);
    let warc_before: Vec<(PathBuf, u64)> = warc_files(&fx.warc)
        .into_iter()
        .map(|p| {
            let n = std::fs::metadata(&p).unwrap().len();
            (p, n)
        })
        .collect();
    fx.knobs.flaky_healed.store(true, Ordering::SeqCst);
    fx.a.clear_log();
    fx.b.clear_log();
    let second = run(&fx);
    // Retried: the retryable failures (slow, alwayscut, flaky). Not retried: fetched pages,
    // 404, too large, redirect loop, robots skip.
    let asked: Vec<String> = fx.a.requests().into_iter().map(|r| r.path).collect();
    let mut pages: Vec<&str> = asked
        .iter()
        .map(String::as_str)
        .filter(|p| *p != "/robots.txt")
        .collect();
    pages.sort_unstable();
    pages.dedup();
    assert_eq!(
        pages,
        ["/alwayscut/6", "/flaky/9", "/slow"],
        "{}",
        second.report()
    );
    assert!(
        fx.b.requests().is_empty(),
        "host b had nothing left to fetch"
    );
    assert_eq!(second.fetched, 1);
    assert_eq!(second.already_done, 25 - 3);
    assert_eq!(second.bad_lines, 3, "refused lines are named again");
    // Earlier files are untouched; the new record went to a new file.
    for (p, n) in &warc_before {
        assert_eq!(std::fs::metadata(p).unwrap().len(), *n);
    }
    assert_eq!(warc_files(&fx.warc).len(), warc_before.len() + 1);
    assert_eq!(
        log_entries(&fx.warc)[&fx.a.url("/flaky/9")].outcome,
        Outcome::Fetched
    );
    let responses = read_records(&fx.warc)
        .iter()
        .filter(|r| r.warc_type() == "response")
        .count();
    assert_eq!(responses, 18);
}

#[test]
fn a_crash_mid_record_is_cut_back_and_the_page_fetched_again() {
    let fx = fixture();
    run(&fx);
    let files = warc_files(&fx.warc);
    let last = files.last().unwrap().clone();
    let good_len = std::fs::metadata(&last).unwrap().len();
    // What a crash leaves: half of a gzip member after the last logged record, a record
    // written but never logged, and a log line cut short.
    let member = std::fs::read(&last).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    f.write_all(&member[member.len() - 300..member.len() - 100])
        .unwrap();
    drop(f);
    let orphan = fx.warc.join("pages-00099.warc.gz");
    std::fs::write(&orphan, &member[..200]).unwrap();
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(fx.warc.join(FETCH_LOG_NAME))
        .unwrap();
    log.write_all(b"{\"line\":1,\"url\":\"http://x").unwrap();
    drop(log);

    let s = run(&fx);
    assert!(s.warc_bytes_cut >= 400, "{}", s.report());
    assert_eq!(std::fs::metadata(&last).unwrap().len(), good_len);
    assert!(
        !orphan.exists(),
        "a WARC file no log entry points into is removed"
    );
    // Every file reads back whole, through datamill and through warcio.
    let records = read_records(&fx.warc);
    assert!(records.iter().all(|r| !r.length_repaired));
    warcio_lines(&fx.warc);
    // The log is whole again: every line parses.
    log_entries(&fx.warc);
}

#[test]
fn one_busy_host_does_not_fill_memory_or_stall_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let knobs = Arc::new(Knobs::default());
    let a = Server::start("", None, knobs.clone());
    let b = Server::start("", None, knobs);
    // 30 URLs of host a first, then 5 of host b: with 2 per host queued and 6 in memory,
    // most of a's URLs wait on disk for the second pass while b's are fetched.
    let mut lines: Vec<String> = (0..30).map(|i| a.url(&format!("/page/{i}"))).collect();
    lines.extend((0..5).map(|i| b.url(&format!("/page/{i}"))));
    let list = tmp.path().join("urls.txt.zst");
    let mut enc = zstd::Encoder::new(std::fs::File::create(&list).unwrap(), 3).unwrap();
    enc.write_all((lines.join("\n") + "\n").as_bytes()).unwrap();
    enc.finish().unwrap();
    let warc = tmp.path().join("warc");
    let opts = PageFetchOptions {
        window: 6,
        per_host_queue: 2,
        warc_file_bytes: 3000,
        ..quick_options(&list, &warc)
    };
    let s = fetch_pages(&opts).unwrap();
    assert_eq!(s.fetched, 35, "{}", s.report());
    assert!(s.deferred >= 20, "{}", s.report());
    assert!(!warc.join("deferred-00.tsv").exists());
    // b's pages were not held up behind the 30 of a.
    let last_b = b.requests().iter().map(|r| r.at).max().unwrap();
    let last_a = a.requests().iter().map(|r| r.at).max().unwrap();
    assert!(last_b < last_a);
    // Small files: rotated, each read back on its own.
    let files = warc_files(&warc);
    assert!(files.len() > 3, "{files:?}");
    let lines = warcio_lines(&warc);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("warcinfo ")).count(),
        files.len()
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("response ")).count(),
        35
    );
}

#[test]
fn the_command_line_fetches_a_zstd_list_and_says_what_it_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Server::start("", None, Arc::new(Knobs::default()));
    let list = tmp.path().join("refs.tsv.zst");
    // A URL with a fragment and an upper-case scheme: the list's text is kept as written.
    let with_fragment = a.url("/page/2#Section").replace("http://", "HTTP://");
    let text = format!(
        "{}\t2\n%%garbage%%\n{}\t1\n{with_fragment}\t1\n",
        a.url("/page/1"),
        a.url("/missing")
    );
    std::fs::write(&list, zstd::encode_all(text.as_bytes(), 3).unwrap()).unwrap();
    let warc = tmp.path().join("out");
    let out = Command::new(BIN)
        .args(["download", "--urls"])
        .arg(&list)
        .arg("--warc")
        .arg(&warc)
        .args(["--retry-delay-ms", "10", "--timeout", "5"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 fetched (0 after redirects)"), "{stdout}");
    // The fragment is not requested; the list's text is kept beside the URL served.
    assert_eq!(a.requests_for("/page/2").len(), 1);
    let lines = warcio_lines(&warc);
    let want = format!("response {} {with_fragment} ", a.url("/page/2"));
    assert!(lines.iter().any(|l| l.starts_with(&want)), "{lines:?}");
    assert!(log_entries(&warc)[&with_fragment].final_url.is_none());
    assert!(stdout.contains("refused: line 2 (bad_url)"), "{stdout}");
    assert!(
        stdout.contains(&format!("failed: line 3 {}: HTTP 404", a.url("/missing"))),
        "{stdout}"
    );

    // An empty list is said to be empty.
    let empty = tmp.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let out = Command::new(BIN)
        .args(["download", "--urls"])
        .arg(&empty)
        .arg("--warc")
        .arg(tmp.path().join("out2"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("holds no URL line"));

    // --urls without --warc is refused by the parser.
    let out = Command::new(BIN)
        .args(["download", "--urls"])
        .arg(&list)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let mut buf = String::new();
    std::io::Cursor::new(out.stderr)
        .read_to_string(&mut buf)
        .unwrap();
    assert!(buf.contains("--warc"), "{buf}");
}

#[test]
fn an_unreachable_robots_txt_fails_its_host_for_this_run_only() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Server::start(ROBOTS_DOWN, None, Arc::new(Knobs::default()));
    let list = tmp.path().join("urls.txt");
    std::fs::write(
        &list,
        format!("{}\n{}\n", a.url("/page/1"), a.url("/page/2")),
    )
    .unwrap();
    let warc = tmp.path().join("warc");
    let s = fetch_pages(&quick_options(&list, &warc)).unwrap();
    assert_eq!(
        (s.fetched, s.failed, s.failed_retryable),
        (0, 2, 2),
        "{}",
        s.report()
    );
    // Tried with the run's retries, once for the host, and no page was requested.
    assert_eq!(a.requests_for("/robots.txt").len(), 3);
    assert_eq!(a.requests().len(), 3);
    let e = &log_entries(&warc)[&a.url("/page/2")];
    assert!(e.retryable, "{e:?}");
    assert!(
        e.reason
            .as_deref()
            .unwrap()
            .contains("could not be fetched"),
        "{e:?}"
    );
    // A rerun tries again.
    fetch_pages(&quick_options(&list, &warc)).unwrap();
    assert_eq!(a.requests_for("/robots.txt").len(), 6);
}

#[test]
fn ranks_split_the_list_by_host_and_together_fetch_it_once() {
    let tmp = tempfile::tempdir().unwrap();
    let knobs = Arc::new(Knobs::default());
    let servers: Vec<Server> = (0..4)
        .map(|_| Server::start("", None, knobs.clone()))
        .collect();
    let urls: Vec<String> = (0..5)
        .flat_map(|i| servers.iter().map(move |s| s.url(&format!("/page/{i}"))))
        .collect();
    let list = tmp.path().join("urls.txt");
    std::fs::write(&list, urls.join("\n")).unwrap();
    let warc = tmp.path().join("warc");
    let mut fetched = 0;
    for rank in 0..2 {
        let opts = PageFetchOptions {
            rank,
            world_size: 2,
            ..quick_options(&list, &warc)
        };
        let s = fetch_pages(&opts).unwrap();
        assert_eq!(s.fetched + s.other_ranks, 20, "{}", s.report());
        fetched += s.fetched;
        assert!(warc
            .join(format!("rank-{rank:05}"))
            .join(FETCH_LOG_NAME)
            .exists());
    }
    assert_eq!(fetched, 20);
    // Every page once, each host from one rank only.
    for s in &servers {
        for i in 0..5 {
            assert_eq!(s.requests_for(&format!("/page/{i}")).len(), 1);
        }
        assert_eq!(s.requests_for("/robots.txt").len(), 1);
    }
}

#[test]
fn a_page_served_after_a_redirect_is_a_positive_under_the_url_it_was_cited_at() {
    let tmp = tempfile::tempdir().unwrap();
    let knobs = Arc::new(Knobs::default());
    let b = Server::start("", None, knobs.clone());
    let a = Server::start("", Some(format!("http://{}", b.addr)), knobs);
    let list = tmp.path().join("fetch.txt");
    let cited = [a.url("/redirect/3"), a.url("/cross/4")];
    std::fs::write(
        &list,
        format!("{}\n{}\n{}\n", cited[0], cited[1], a.url("/page/1")),
    )
    .unwrap();
    let warc = tmp.path().join("warc");
    let s = fetch_pages(&quick_options(&list, &warc)).unwrap();
    assert_eq!(s.redirected, 2, "{s:?}");

    // The reader names both URLs of a redirected page.
    let source = WarcSource::warc_from_options(&toml::Table::new()).unwrap();
    let mut asked = Vec::new();
    for f in warc_files(&warc) {
        for d in source.documents(&f, "web").unwrap() {
            let d = d.unwrap();
            asked.push((
                d.meta_str("url").unwrap().to_string(),
                d.meta_str("requested_url").unwrap().to_string(),
            ));
        }
    }
    asked.sort();
    let mut want = vec![
        (a.url("/page/1"), a.url("/page/1")),
        (a.url("/page/3"), cited[0].clone()),
        (b.url("/page/4"), cited[1].clone()),
    ];
    want.sort();
    assert_eq!(asked, want);

    // Cited at the URLs that redirected: the served pages are the positives.
    let refs = tmp.path().join("refs.tsv");
    std::fs::write(&refs, format!("{}\t1\n{}\t2\n", cited[0], cited[1])).unwrap();
    let model = tmp.path().join("m.bin");
    let out = Command::new(BIN)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("train-classifier")
        .arg("--positive")
        .arg(&warc)
        .arg("--positive-urls")
        .arg(&refs)
        .args(["--negative", common::C4_SAMPLE, "--no-stages"])
        .args(["--holdout", "0", "--epoch", "2", "--output"])
        .arg(&model)
        .output()
        .unwrap();
    common::assert_ok(&out);
    let side: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("m.bin.json")).unwrap()).unwrap();
    assert_eq!(side["rule"]["positive_match"], "url");
    assert_eq!(side["rule"]["matched_by_url"], 2);
    assert_eq!(side["report"]["positives"], 2);
}

#[test]
fn a_host_rests_between_requests_for_its_crawl_delay_or_the_run_s_delay() {
    let tmp = tempfile::tempdir().unwrap();
    let knobs = Arc::new(Knobs::default());
    // a.test asks for 0.4 s between requests; b.test says nothing, so the run's 0.2 s holds.
    let a = Server::start(
        "User-agent: *\nCrawl-delay: 0.4\nDisallow: /private\n",
        None,
        knobs.clone(),
    );
    let b = Server::start("", None, knobs);
    let mut lines = Vec::new();
    for i in 1..=3 {
        lines.push(a.url(&format!("/page/{i}")));
        lines.push(b.url(&format!("/page/{}", 10 + i)));
    }
    let list = tmp.path().join("urls.txt");
    std::fs::write(&list, lines.join("\n") + "\n").unwrap();
    let warc = tmp.path().join("warc");
    let s = fetch_pages(&PageFetchOptions {
        host_delay: Duration::from_millis(200),
        ..quick_options(&list, &warc)
    })
    .unwrap();
    assert_eq!(s.fetched, 6, "{s:?}");
    let gaps = |server: &Server| -> Vec<Duration> {
        let pages: Vec<Instant> = server
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/page/"))
            .map(|r| r.at)
            .collect();
        assert_eq!(pages.len(), 3);
        pages.windows(2).map(|w| w[1] - w[0]).collect()
    };
    for gap in gaps(&a) {
        assert!(gap >= Duration::from_millis(400), "a.test: {gap:?}");
    }
    for gap in gaps(&b) {
        assert!(gap >= Duration::from_millis(200), "b.test: {gap:?}");
    }
}

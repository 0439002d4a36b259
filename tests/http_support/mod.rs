//! A small HTTP/1.1 file server on 127.0.0.1 (std::net, one thread per connection) for the
//! URL-input tests: serves a folder with Range, ETag and If-None-Match, and misbehaves on
//! purpose per path (cut the connection at a byte, stall mid-body, send a few bytes per
//! request, answer 503 with Retry-After, ignore Range, never answer). Every request is recorded.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How the server misbehaves for one path.
#[derive(Debug, Clone, Default)]
pub struct Fault {
    /// On the first request, send the full headers but close the connection after this
    /// byte of the file.
    pub cut_at: Option<usize>,
    /// Answer this many requests with `503` and `Retry-After: 1` first.
    pub unavailable: u32,
    /// Answer every request with the whole file (200), whatever its Range.
    pub ignore_range: bool,
    /// Accept the connection and never answer.
    pub hang: bool,
    /// On the first request, send the body up to this byte, then keep the connection open
    /// without sending for 4 s.
    pub stall_at: Option<usize>,
    /// Send at most this many body bytes per request, then close the connection.
    pub body_per_request: Option<usize>,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The request path (`/a/b.gz`).
    pub path: String,
    /// The Range header.
    pub range: Option<String>,
    /// The status answered.
    pub status: u16,
}

#[derive(Default)]
struct Shared {
    faults: Mutex<HashMap<String, Fault>>,
    served: Mutex<HashMap<String, u32>>,
    log: Mutex<Vec<Seen>>,
}

/// The running server; stops when dropped.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves the files under `root`.
    pub fn start(root: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (shared2, stop2, root) = (shared.clone(), stop.clone(), root.to_path_buf());
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (shared, root) = (shared2.clone(), root.clone());
                std::thread::spawn(move || serve(stream, &root, &shared));
            }
        });
        Server {
            addr,
            shared,
            stop,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Makes the server misbehave for `path` (relative, as in the URL) from now on.
    pub fn set_fault(&self, path: &str, fault: Fault) {
        self.shared
            .faults
            .lock()
            .unwrap()
            .insert(format!("/{path}"), fault);
        self.shared
            .served
            .lock()
            .unwrap()
            .remove(&format!("/{path}"));
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.shared.log.lock().unwrap().clone()
    }

    /// The requests for `path` (relative, as in the URL).
    pub fn requests_for(&self, path: &str) -> Vec<Seen> {
        let want = format!("/{path}");
        self.requests()
            .into_iter()
            .filter(|r| r.path == want)
            .collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_log(&self) {
        self.shared.log.lock().unwrap().clear();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Reads the request line and headers: (path, Range, If-None-Match).
fn read_request(stream: &TcpStream) -> Option<(String, Option<String>, Option<String>)> {
    let (path, fields) = crate::common::read_request_head(stream)?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    Some((path, field("range"), field("if-none-match")))
}

/// Handles one connection (one request, then `Connection: close`).
fn serve(mut stream: TcpStream, root: &Path, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Some((path, range, if_none_match)) = read_request(&stream) else {
        return;
    };
    let fault = shared
        .faults
        .lock()
        .unwrap()
        .get(&path)
        .cloned()
        .unwrap_or_default();
    let nth = {
        let mut served = shared.served.lock().unwrap();
        let n = served.entry(path.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let record = |status| {
        shared.log.lock().unwrap().push(Seen {
            path: path.clone(),
            range: range.clone(),
            status,
        })
    };
    if fault.hang {
        record(0);
        std::thread::sleep(Duration::from_secs(30));
        return;
    }
    let rel = path.trim_start_matches('/');
    let file: PathBuf = root.join(rel);
    let data = (!rel.is_empty() && !rel.contains(".."))
        .then(|| std::fs::read(&file).ok())
        .flatten();
    let Some(data) = data else {
        record(404);
        let _ = stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
        );
        return;
    };
    if nth <= fault.unavailable {
        record(503);
        let _ = stream.write_all(
            b"HTTP/1.1 503 Slow Down\r\nRetry-After: 1\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy",
        );
        return;
    }
    let etag = format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(&data));
    let validators = format!("ETag: {etag}\r\nLast-Modified: Sun, 06 Dec 2026 08:00:00 GMT\r\n");
    if if_none_match.as_deref() == Some(etag.as_str()) {
        record(304);
        let _ = write!(
            stream,
            "HTTP/1.1 304 Not Modified\r\n{validators}Connection: close\r\n\r\n"
        );
        return;
    }
    let len = data.len();
    let start = range
        .as_deref()
        .filter(|_| !fault.ignore_range)
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(s, _)| s.parse::<usize>().ok());
    let head = match start {
        Some(s) if s >= len => {
            record(416);
            let _ = write!(
                stream,
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return;
        }
        Some(s) => {
            record(206);
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {s}-{}/{len}\r\nContent-Length: {}\r\n{validators}Connection: close\r\n\r\n",
                len - 1,
                len - s
            )
        }
        None => {
            record(200);
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n{validators}Accept-Ranges: bytes\r\nConnection: close\r\n\r\n"
            )
        }
    };
    let start = start.unwrap_or(0);
    let first = nth == fault.unavailable + 1;
    let mut end = match fault.cut_at.or(fault.stall_at) {
        Some(cut) if first && cut > start => cut.min(len),
        _ => len,
    };
    if let Some(most) = fault.body_per_request {
        end = end.min(start + most);
    }
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    for chunk in data[start..end].chunks(16 * 1024) {
        if stream.write_all(chunk).is_err() {
            return;
        }
    }
    let _ = stream.flush();
    if first && fault.stall_at.is_some() {
        std::thread::sleep(Duration::from_secs(4));
    }
    // Returning drops the stream: the connection closes (mid-body when cut).
}

//! The fetch log of `download --urls`: `DIR/fetch-log.jsonl`, one JSON line per list line
//! that reached an outcome (fetched, failed or skipped), after a header naming the list.
//!
//! It is the durable record a rerun starts from. Lines are appended only after the WARC
//! bytes they point to were fsynced ([`FetchLog::commit`]), so every logged record is really
//! on disk; a line cut by a crash at the end of the log is dropped on the next start.
//! A rerun skips the list lines logged as done: fetched, skipped by robots.txt, or failed for
//! good (a 4xx, too large, a bad redirect). Failures that may pass another time (timeouts,
//! 5xx, cut connections) are fetched again.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::doc::write_atomic;

/// File name of the fetch log inside the WARC folder.
pub const FETCH_LOG_NAME: &str = "fetch-log.jsonl";

/// Version written into the header; another version is refused.
pub const FETCH_LOG_VERSION: u32 = 1;

/// Bytes of the list hashed into its fingerprint (plus its size).
const FINGERPRINT_BYTES: u64 = 1 << 20;

/// The first line of the log: which list the line numbers refer to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogHeader {
    /// [`FETCH_LOG_VERSION`].
    pub fetch_log_version: u32,
    /// The list's file name (informative).
    pub list: String,
    /// Size and xxh3 of the list's first MiB, `SIZE:HEX`.
    pub list_fingerprint: String,
}

/// What became of one list line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Fetched and written to a WARC file.
    Fetched,
    /// Not fetched because robots.txt forbids it.
    Skipped,
    /// Fetching failed.
    Failed,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Line number in the list.
    pub line: u64,
    /// The URL as the list gave it.
    pub url: String,
    /// What happened.
    pub outcome: Outcome,
    /// Final HTTP status, when one was received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The URL the response came from, when a redirect was followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_url: Option<String>,
    /// Why it failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether a later run may succeed (such failures are tried again by a rerun).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retryable: bool,
    /// WARC file holding the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warc: Option<String>,
    /// Byte offset of the record's gzip member in that file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Byte offset just past the member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<u64>,
}

impl LogEntry {
    /// Whether a rerun leaves this line alone.
    pub fn is_done(&self) -> bool {
        !(self.outcome == Outcome::Failed && self.retryable)
    }
}

/// Sets of line numbers held as ranges, so a nearly contiguous set costs almost nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineSet {
    /// start -> end (exclusive), disjoint and not touching.
    ranges: BTreeMap<u64, u64>,
}

impl LineSet {
    /// Adds one line.
    pub fn insert(&mut self, n: u64) {
        if self.contains(n) {
            return;
        }
        let (mut start, mut end) = (n, n + 1);
        if let Some((&s, &e)) = self.ranges.range(..=n).next_back() {
            if e == n {
                start = s;
                self.ranges.remove(&s);
            }
        }
        if let Some(&e) = self.ranges.get(&end) {
            self.ranges.remove(&end);
            end = e;
        }
        self.ranges.insert(start, end);
    }

    /// Whether `n` is in the set.
    pub fn contains(&self, n: u64) -> bool {
        self.ranges
            .range(..=n)
            .next_back()
            .is_some_and(|(_, &e)| n < e)
    }

    /// Lines in the set.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Ranges held (memory grows with this, not with the lines).
    pub fn ranges(&self) -> usize {
        self.ranges.len()
    }
}

/// What an existing log says.
#[derive(Debug, Default)]
pub struct LogState {
    /// List lines a rerun skips.
    pub done: LineSet,
    /// Per WARC file, the end of its last logged record.
    pub warc_ends: HashMap<String, u64>,
    /// Entries read.
    pub entries: u64,
}

/// The open fetch log: entries are buffered and written by [`FetchLog::commit`].
pub struct FetchLog {
    path: PathBuf,
    file: File,
    pending: Vec<u8>,
    pending_entries: u64,
}

/// `SIZE:XXH3` of the list's size and first MiB.
pub fn list_fingerprint(list: &Path) -> Result<String> {
    let f = File::open(list).with_context(|| format!("cannot open {}", list.display()))?;
    let size = f
        .metadata()
        .with_context(|| format!("cannot stat {}", list.display()))?
        .len();
    let mut head = Vec::new();
    f.take(FINGERPRINT_BYTES)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", list.display()))?;
    Ok(format!("{size}:{:016x}", xxhash_rust::xxh3::xxh3_64(&head)))
}

impl FetchLog {
    /// Opens (or starts) the log of `dir` for a list with `header`; returns what it records.
    /// A log written for another list is refused; a line cut at the end is dropped.
    pub fn open(dir: &Path, header: &LogHeader) -> Result<(FetchLog, LogState)> {
        let path = dir.join(FETCH_LOG_NAME);
        let mut state = LogState::default();
        match File::open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = serde_json::to_vec(header)?;
                bytes.push(b'\n');
                write_atomic(&path, &bytes)?;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
            Ok(f) => {
                let good = read_log(&path, f, header, &mut state)?;
                let len = std::fs::metadata(&path)
                    .with_context(|| format!("cannot stat {}", path.display()))?
                    .len();
                if good < len {
                    tracing::warn!(
                        "{}: dropping {} bytes of a line cut by a crash",
                        path.display(),
                        len - good
                    );
                    super::truncate_durably(&path, good)?;
                }
            }
        }
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {} for appending", path.display()))?;
        Ok((
            FetchLog {
                path,
                file,
                pending: Vec::new(),
                pending_entries: 0,
            },
            state,
        ))
    }

    /// Buffers one entry (written at the next [`FetchLog::commit`]).
    pub fn push(&mut self, entry: &LogEntry) -> Result<()> {
        serde_json::to_writer(&mut self.pending, entry)?;
        self.pending.push(b'\n');
        self.pending_entries += 1;
        Ok(())
    }

    /// Entries buffered and not yet written.
    pub fn pending(&self) -> u64 {
        self.pending_entries
    }

    /// Writes and fsyncs the buffered entries. Call it only after the WARC files they point
    /// to were synced.
    pub fn commit(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(&self.pending)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| crate::doc::io_error(&self.path, e, "appending to the fetch log"))?;
        self.pending.clear();
        self.pending_entries = 0;
        Ok(())
    }
}

/// Reads an existing log into `state`; returns the length of its complete, parsable prefix.
fn read_log(path: &Path, f: File, want: &LogHeader, state: &mut LogState) -> Result<u64> {
    let mut r = BufReader::new(f);
    let mut buf = Vec::new();
    let mut good = 0u64;
    let mut line_no = 0u64;
    let mut cut_at: Option<u64> = None;
    loop {
        buf.clear();
        let n = r
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if let Some(at) = cut_at {
            bail!(
                "{}: line {at} is not a log entry but more lines follow; the log is damaged \
                 (move it away to fetch everything again)",
                path.display()
            );
        }
        let complete = buf.ends_with(b"\n");
        if line_no == 1 {
            let header: LogHeader = match serde_json::from_slice(&buf) {
                Ok(h) if complete => h,
                _ => bail!("{}: line 1 is not a fetch log header", path.display()),
            };
            if header.fetch_log_version != FETCH_LOG_VERSION {
                bail!(
                    "{}: fetch log version {} (this datamill writes {FETCH_LOG_VERSION})",
                    path.display(),
                    header.fetch_log_version
                );
            }
            if header.list_fingerprint != want.list_fingerprint {
                bail!(
                    "{}: this folder was filled from another URL list ({}, fingerprint {}; \
                     now {}, {}): line numbers would not match; use a new --warc folder",
                    path.display(),
                    header.list,
                    header.list_fingerprint,
                    want.list,
                    want.list_fingerprint
                );
            }
            good += n as u64;
            continue;
        }
        match serde_json::from_slice::<LogEntry>(&buf) {
            Ok(e) if complete => {
                if e.is_done() {
                    state.done.insert(e.line);
                }
                if let (Some(w), Some(end)) = (&e.warc, e.end) {
                    let slot = state.warc_ends.entry(w.clone()).or_insert(0);
                    *slot = (*slot).max(end);
                }
                state.entries += 1;
                good += n as u64;
            }
            _ => cut_at = Some(line_no),
        }
    }
    Ok(good)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_set_merges_ranges() {
        let mut s = LineSet::default();
        for n in [5, 3, 4, 10, 6, 1] {
            s.insert(n);
        }
        assert_eq!(s.ranges(), 3); // 1, 3..=6, 10
        assert!(s.contains(4) && s.contains(1) && s.contains(10));
        assert!(!s.contains(2) && !s.contains(7) && !s.contains(0));
        s.insert(2);
        assert_eq!(s.ranges(), 2);
        assert_eq!(s.len(), 7);
    }

    fn entry(line: u64, outcome: Outcome, retryable: bool) -> LogEntry {
        LogEntry {
            line,
            url: format!("http://h.test/{line}"),
            outcome,
            status: None,
            final_url: None,
            reason: None,
            retryable,
            warc: None,
            offset: None,
            end: None,
        }
    }

    #[test]
    fn reopens_drops_a_cut_line_and_refuses_another_list() {
        let dir = tempfile::tempdir().unwrap();
        let header = LogHeader {
            fetch_log_version: 1,
            list: "l".into(),
            list_fingerprint: "1:00".into(),
        };
        let (mut log, state) = FetchLog::open(dir.path(), &header).unwrap();
        assert!(state.done.is_empty());
        log.push(&entry(1, Outcome::Fetched, false)).unwrap();
        log.push(&entry(2, Outcome::Failed, true)).unwrap();
        log.push(&entry(3, Outcome::Failed, false)).unwrap();
        log.commit().unwrap();
        drop(log);
        let path = dir.path().join(FETCH_LOG_NAME);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"line\":4,\"url\":\"http://h").unwrap();
        drop(f);
        let (_, state) = FetchLog::open(dir.path(), &header).unwrap();
        assert!(state.done.contains(1) && state.done.contains(3));
        assert!(!state.done.contains(2) && !state.done.contains(4));
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("}\n"));
        let other = LogHeader {
            list_fingerprint: "2:00".into(),
            ..header
        };
        let err = FetchLog::open(dir.path(), &other).err().unwrap();
        assert!(format!("{err:#}").contains("another URL list"), "{err:#}");
    }
}

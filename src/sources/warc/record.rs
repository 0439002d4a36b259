//! Streaming WARC record parser: WARC/1.0 and 1.1 (ISO 28500), and the drafts WARC/0.17 and
//! WARC/0.18 that older crawls such as ClueWeb09 wrote (same record layout, named fields).
//!
//! Reads one record at a time from a (decompressed) byte stream: the version line, the header
//! fields, then exactly `Content-Length` bytes of block. Only records of the wanted types are
//! held in memory, and only up to a size cap; everything else is read past. A malformed header
//! becomes a [`RecordError`] and reading resynchronises on the next version line
//! (`WARC/1.x`, `WARC/0.17`, `WARC/0.18`); a stream that cannot be read further ends with a
//! fatal error.

use std::collections::VecDeque;
use std::io::{BufRead, ErrorKind, Read};

use crate::doc::RecordError;

/// Longest header line accepted (a longer one makes the header malformed).
pub const MAX_HEADER_LINE_BYTES: usize = 64 << 10;
/// Most header bytes accepted for one record.
pub const MAX_HEADER_BYTES: usize = 1 << 20;

/// How the stream under the parser was compressed; decides the name of a read error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// A gzip stream (`.gz`): a read error means a truncated or corrupt gzip member.
    Gzip,
    /// Another compression (`.zst`, `.bz2`).
    OtherCompression,
    /// An uncompressed file.
    Plain,
}

/// The named header fields of one WARC record, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WarcHeaders {
    fields: Vec<(String, String)>,
}

impl WarcHeaders {
    /// The value of the first field named `name` (compared without case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All fields as `(name, value)` pairs.
    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }
}

/// One WARC record whose block is held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarcRecord {
    /// Byte offset of the record's version line in the decompressed stream.
    pub offset: u64,
    /// The version line without its line end (`WARC/1.0`, `WARC/1.1`, `WARC/0.18`).
    pub version: String,
    /// Header fields.
    pub headers: WarcHeaders,
    /// The record block (`Content-Length` bytes).
    pub block: Vec<u8>,
    /// True when `Content-Length` did not match the file and the block was re-read as the
    /// bytes up to the next record.
    pub length_repaired: bool,
}

impl WarcRecord {
    /// The `WARC-Type` field as written (empty if missing).
    pub fn warc_type(&self) -> &str {
        self.headers.get("WARC-Type").unwrap_or_default()
    }
}

/// A buffered input that can be given bytes back, read again before the rest of the stream.
struct Rewind<R> {
    back: Vec<u8>,
    pos: usize,
    inner: R,
}

impl<R: BufRead> Rewind<R> {
    /// Puts `bytes` in front of what is left to read.
    fn unread(&mut self, bytes: &[u8]) {
        let mut back = Vec::with_capacity(bytes.len() + self.back.len() - self.pos);
        back.extend_from_slice(bytes);
        back.extend_from_slice(&self.back[self.pos..]);
        self.back = back;
        self.pos = 0;
    }
}

impl<R: BufRead> Read for Rewind<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Rewind<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos < self.back.len() {
            return Ok(&self.back[self.pos..]);
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        if self.pos < self.back.len() {
            self.pos += n;
            if self.pos >= self.back.len() {
                self.back = Vec::new();
                self.pos = 0;
            }
        } else {
            self.inner.consume(n);
        }
    }
}

/// Streams the records of one WARC file; see the module documentation.
pub struct WarcRecordReader<R> {
    input: Rewind<R>,
    kind: StreamKind,
    offset: u64,
    max_record_bytes: u64,
    wanted: Vec<String>,
    line: Vec<u8>,
    /// Offset of a version line already read into `line` by a resync.
    pending_version: Option<u64>,
    /// Errors found while finishing the previous item, yielded next in order.
    pending_errors: VecDeque<RecordError>,
    done: bool,
}

/// What reading one line gave.
enum Line {
    /// End of input before any byte.
    Eof,
    /// A line starting at this offset is in `self.line` (with its line end); `too_long` when
    /// it was cut at the cap (the rest was read past).
    Read { start: u64, too_long: bool },
}

/// Why a record's header could not be used.
enum HeaderError {
    /// Malformed: report it and resynchronise on the next record.
    Bad(String),
    /// Reading stopped (end of input or a read error): report it as is.
    Stop(RecordError),
}

impl<R: BufRead> WarcRecordReader<R> {
    /// A reader over `input` that holds blocks of the `wanted` record types (compared without
    /// case) up to `max_record_bytes` each.
    pub fn new(input: R, kind: StreamKind, max_record_bytes: u64, wanted: &[String]) -> Self {
        WarcRecordReader {
            input: Rewind {
                back: Vec::new(),
                pos: 0,
                inner: input,
            },
            kind,
            offset: 0,
            max_record_bytes,
            wanted: wanted.iter().map(|w| w.to_ascii_lowercase()).collect(),
            line: Vec::with_capacity(256),
            pending_version: None,
            pending_errors: VecDeque::new(),
            done: false,
        }
    }

    /// Bytes of the decompressed stream consumed so far.
    pub fn position(&self) -> u64 {
        self.offset
    }

    fn read_error(&mut self, record: u64, e: std::io::Error) -> RecordError {
        self.done = true;
        let reason = match (self.kind, e.kind()) {
            (StreamKind::Gzip, ErrorKind::UnexpectedEof) => "gzip_truncated",
            (StreamKind::Gzip, _) => "gzip_corrupt",
            _ => "read_error",
        };
        RecordError::fatal(
            record,
            reason,
            format!(
                "cannot read past byte {} of the decompressed stream: {e}",
                self.offset
            ),
        )
    }

    /// Reads one line into `self.line`, holding at most `cap` bytes of it.
    fn read_line(&mut self, cap: usize) -> std::io::Result<Line> {
        self.line.clear();
        let start = self.offset;
        let mut too_long = false;
        let mut any = false;
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (take, found) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            let room = cap.saturating_sub(self.line.len());
            if take > room {
                too_long = true;
            }
            self.line.extend_from_slice(&chunk[..take.min(room)]);
            self.input.consume(take);
            self.offset += take as u64;
            if found {
                break;
            }
        }
        Ok(if any {
            Line::Read { start, too_long }
        } else {
            Line::Eof
        })
    }

    /// Reads past `len` bytes; returns how many there were before the end of input.
    fn skip(&mut self, len: u64) -> std::io::Result<u64> {
        let mut left = len;
        while left > 0 {
            let chunk = match self.input.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                break;
            }
            let take = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            self.input.consume(take);
            self.offset += take as u64;
            left -= take as u64;
        }
        Ok(len - left)
    }

    /// Scans forward to the next version line and leaves it pending.
    fn resync(&mut self) {
        loop {
            match self.read_line(MAX_HEADER_LINE_BYTES) {
                Ok(Line::Eof) => {
                    self.done = true;
                    return;
                }
                Ok(Line::Read { start, .. }) => {
                    if is_version_line(&self.line) {
                        self.pending_version = Some(start);
                        return;
                    }
                }
                Err(e) => {
                    let err = self.read_error(self.offset, e);
                    self.pending_errors.push_back(err);
                    return;
                }
            }
        }
    }

    fn wants(&self, warc_type: &str) -> bool {
        self.wanted
            .iter()
            .any(|w| w.eq_ignore_ascii_case(warc_type))
    }

    /// Reads header lines after the version line until the empty line.
    fn read_headers(&mut self, start: u64) -> Result<WarcHeaders, HeaderError> {
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut total = 0usize;
        loop {
            let too_long = match self.read_line(MAX_HEADER_LINE_BYTES) {
                Ok(Line::Eof) => {
                    self.done = true;
                    return Err(HeaderError::Stop(RecordError::record(
                        start,
                        "warc_truncated",
                        "input ends inside the record header",
                    )));
                }
                Ok(Line::Read { too_long, .. }) => too_long,
                Err(e) => return Err(HeaderError::Stop(self.read_error(start, e))),
            };
            if too_long {
                return Err(HeaderError::Bad(format!(
                    "header line longer than {MAX_HEADER_LINE_BYTES} bytes"
                )));
            }
            total += self.line.len();
            if total > MAX_HEADER_BYTES {
                return Err(HeaderError::Bad(format!(
                    "header longer than {MAX_HEADER_BYTES} bytes"
                )));
            }
            if !self.line.ends_with(b"\n") {
                self.done = true;
                return Err(HeaderError::Stop(RecordError::record(
                    start,
                    "warc_truncated",
                    "input ends inside the record header",
                )));
            }
            let line = trim_line_end(&self.line);
            if line.is_empty() {
                return Ok(WarcHeaders { fields });
            }
            if matches!(line[0], b' ' | b'\t') {
                match fields.last_mut() {
                    Some((_, value)) => {
                        value.push(' ');
                        value.push_str(String::from_utf8_lossy(line).trim());
                    }
                    None => {
                        return Err(HeaderError::Bad(
                            "continuation line before any header field".into(),
                        ))
                    }
                }
                continue;
            }
            let Some(colon) = memchr::memchr(b':', line) else {
                return Err(HeaderError::Bad(format!(
                    "header line without a colon: {:?}",
                    preview(line)
                )));
            };
            let name = String::from_utf8_lossy(&line[..colon]).trim().to_string();
            if name.is_empty() || name.contains(' ') {
                return Err(HeaderError::Bad(format!(
                    "bad header field name: {:?}",
                    preview(line)
                )));
            }
            let value = String::from_utf8_lossy(&line[colon + 1..])
                .trim()
                .to_string();
            fields.push((name, value));
        }
    }

    /// The next record of a wanted type, or an error; `None` at the end of input.
    fn next_record(&mut self) -> Option<Result<WarcRecord, RecordError>> {
        loop {
            if let Some(e) = self.pending_errors.pop_front() {
                return Some(Err(e));
            }
            if self.done {
                return None;
            }
            let start = match self.pending_version.take() {
                Some(start) => start,
                None => match self.read_line(MAX_HEADER_LINE_BYTES) {
                    Ok(Line::Eof) => {
                        self.done = true;
                        return None;
                    }
                    Ok(Line::Read { start, too_long }) => {
                        if !too_long && trim_line_end(&self.line).is_empty() {
                            continue; // blank lines between records
                        }
                        if too_long || !is_version_line(&self.line) {
                            let err = RecordError::record(
                                start,
                                "warc_bad_header",
                                format!(
                                    "expected a `WARC/1.x` or `WARC/0.18` version line, found {:?}",
                                    preview(&self.line)
                                ),
                            );
                            self.resync();
                            return Some(Err(err));
                        }
                        start
                    }
                    Err(e) => return Some(Err(self.read_error(self.offset, e))),
                },
            };
            let version = String::from_utf8_lossy(trim_line_end(&self.line)).into_owned();
            let headers = match self.read_headers(start) {
                Ok(h) => h,
                Err(HeaderError::Stop(e)) => return Some(Err(e)),
                Err(HeaderError::Bad(why)) => {
                    self.resync();
                    return Some(Err(RecordError::record(start, "warc_bad_header", why)));
                }
            };
            let length = match headers.get("Content-Length").map(str::parse::<u64>) {
                Some(Ok(n)) => n,
                Some(Err(_)) | None => {
                    let why = match headers.get("Content-Length") {
                        Some(v) => format!("bad Content-Length {v:?}"),
                        None => "no Content-Length".to_string(),
                    };
                    self.resync();
                    return Some(Err(RecordError::record(start, "warc_bad_header", why)));
                }
            };
            let warc_type = headers.get("WARC-Type").unwrap_or_default();
            if warc_type.is_empty() {
                self.resync();
                return Some(Err(RecordError::record(
                    start,
                    "warc_bad_header",
                    "no WARC-Type",
                )));
            }
            let wanted = self.wants(warc_type);
            if length > self.max_record_bytes {
                let skipped = match self.skip(length) {
                    Ok(n) => n,
                    Err(e) => return Some(Err(self.read_error(start, e))),
                };
                if skipped < length {
                    self.done = true;
                    return Some(Err(truncated(start, skipped, length)));
                }
                if !wanted {
                    continue;
                }
                return Some(Err(RecordError::record(
                    start,
                    "warc_record_too_large",
                    format!(
                        "{warc_type} record of {length} bytes is over max_record_bytes = {}",
                        self.max_record_bytes
                    ),
                )));
            }
            let block_start = self.offset;
            let mut block = Vec::with_capacity(usize::try_from(length.min(1 << 20)).unwrap_or(0));
            match (&mut self.input).take(length).read_to_end(&mut block) {
                Ok(n) => self.offset += n as u64,
                Err(e) => {
                    self.offset += block.len() as u64;
                    return Some(Err(self.read_error(start, e)));
                }
            }
            // A block that does not end where Content-Length says (a hand-edited file, line
            // ends converted after writing) is re-read up to the next version line.
            let mut after = Vec::new();
            let consistent = if (block.len() as u64) < length {
                if !contains_version_line(&block) {
                    self.done = true;
                    return Some(Err(truncated(start, block.len() as u64, length)));
                }
                false
            } else {
                match self.trailer_ok(&mut after) {
                    Ok(ok) => ok,
                    Err(e) => return Some(Err(self.read_error(start, e))),
                }
            };
            if !consistent {
                block.extend_from_slice(&after);
                self.pending_version = None;
                self.done = false;
                self.input.unread(&block);
                self.offset = block_start;
                block = match self.rescan_block() {
                    Ok(Some(b)) => b,
                    Ok(None) if !wanted => continue,
                    Ok(None) => {
                        return Some(Err(RecordError::record(
                            start,
                            "warc_record_too_large",
                            format!(
                                "{warc_type} record is over max_record_bytes = {}",
                                self.max_record_bytes
                            ),
                        )))
                    }
                    Err(e) => return Some(Err(self.read_error(start, e))),
                };
            }
            if !wanted {
                continue;
            }
            return Some(Ok(WarcRecord {
                offset: start,
                version,
                headers,
                block,
                length_repaired: !consistent,
            }));
        }
    }

    /// After a block: true when it is followed by the record separator (two line ends) or
    /// directly by the next version line (left pending) or by the end of input; false when
    /// other bytes come first, i.e. `Content-Length` is wrong. The lines read before that are
    /// appended to `after`. After a proper separator, a line that is not a version line is
    /// given back for the next call to report as a bad header.
    fn trailer_ok(&mut self, after: &mut Vec<u8>) -> std::io::Result<bool> {
        let mut blank_lines = 0;
        loop {
            match self.read_line(MAX_HEADER_LINE_BYTES)? {
                Line::Eof => {
                    self.done = true;
                    return Ok(true);
                }
                Line::Read { start, too_long } => {
                    if !too_long && is_version_line(&self.line) {
                        self.pending_version = Some(start);
                        return Ok(true);
                    }
                    if !too_long && trim_line_end(&self.line).is_empty() {
                        after.extend_from_slice(&self.line);
                        blank_lines += 1;
                        continue;
                    }
                    if blank_lines >= 2 {
                        if too_long {
                            // Only part of the line is held: report it now and resynchronise.
                            self.pending_errors.push_back(RecordError::record(
                                start,
                                "warc_bad_header",
                                format!(
                                    "expected a `WARC/1.x` or `WARC/0.18` version line, found a line of more than {MAX_HEADER_LINE_BYTES} bytes"
                                ),
                            ));
                            self.resync();
                        } else {
                            self.input.unread(&self.line);
                            self.offset = start;
                        }
                        return Ok(true);
                    }
                    after.extend_from_slice(&self.line);
                    return Ok(false);
                }
            }
        }
    }

    /// Reads a block as the lines up to the next version line (left pending) or the end of
    /// input, without its trailing line ends. `None` when it is over `max_record_bytes` (the
    /// rest is then read past).
    fn rescan_block(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let max = usize::try_from(self.max_record_bytes).unwrap_or(usize::MAX);
        let mut block = Vec::new();
        let mut over = false;
        loop {
            let cap = if over {
                MAX_HEADER_LINE_BYTES
            } else {
                max.saturating_sub(block.len()).max(8)
            };
            match self.read_line(cap)? {
                Line::Eof => {
                    self.done = true;
                    break;
                }
                Line::Read { start, too_long } => {
                    if !too_long && is_version_line(&self.line) {
                        self.pending_version = Some(start);
                        break;
                    }
                    if over || too_long || block.len() + self.line.len() > max {
                        over = true;
                        block = Vec::new();
                    } else {
                        block.extend_from_slice(&self.line);
                    }
                }
            }
        }
        while let [.., b'\n' | b'\r'] = block.as_slice() {
            block.pop();
        }
        Ok((!over).then_some(block))
    }
}

impl<R: BufRead> Iterator for WarcRecordReader<R> {
    type Item = Result<WarcRecord, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record()
    }
}

fn truncated(start: u64, got: u64, length: u64) -> RecordError {
    RecordError::record(
        start,
        "warc_truncated",
        format!("input ends after {got} of the record's {length} block bytes"),
    )
}

/// Draft versions read besides `WARC/1.x`: the record layout is the same.
const DRAFT_VERSIONS: [&[u8]; 2] = [b"WARC/0.17", b"WARC/0.18"];

/// True for a record's first line: `WARC/1.` and a minor version, or a draft version.
fn is_version_line(line: &[u8]) -> bool {
    line.starts_with(b"WARC/1.")
        || DRAFT_VERSIONS.iter().any(|v| {
            line.strip_prefix(*v)
                .is_some_and(|rest| matches!(rest.first(), None | Some(b'\r' | b'\n')))
        })
}

/// True when a version line starts somewhere inside `block` (not at its first byte).
fn contains_version_line(block: &[u8]) -> bool {
    memchr::memmem::find_iter(block, b"\nWARC/").any(|at| is_version_line(&block[at + 1..]))
}

fn trim_line_end(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = line {
        line = rest;
    }
    line
}

/// The first bytes of a line, for error messages.
fn preview(line: &[u8]) -> String {
    let line = trim_line_end(line);
    let cut = &line[..line.len().min(60)];
    String::from_utf8_lossy(cut).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: &str, body: &str) -> String {
        format!(
            "WARC/1.1\r\nWARC-Type: {kind}\r\nWARC-Record-ID: <urn:uuid:{kind}>\r\nContent-Length: {}\r\n\r\n{body}\r\n\r\n",
            body.len()
        )
    }

    fn read_all(bytes: &[u8], wanted: &[&str], max: u64) -> Vec<Result<WarcRecord, RecordError>> {
        let wanted: Vec<String> = wanted.iter().map(|s| s.to_string()).collect();
        WarcRecordReader::new(bytes, StreamKind::Plain, max, &wanted).collect()
    }

    #[test]
    fn reads_wanted_records_and_skips_others() {
        let input = record("warcinfo", "x: y\r\n") + &record("conversion", "hello\nworld");
        let items = read_all(input.as_bytes(), &["conversion"], 1 << 20);
        assert_eq!(items.len(), 1);
        let rec = items[0].as_ref().unwrap();
        assert_eq!(rec.block, b"hello\nworld");
        assert_eq!(rec.offset, record("warcinfo", "x: y\r\n").len() as u64);
        assert_eq!(
            rec.headers.get("warc-record-id"),
            Some("<urn:uuid:conversion>")
        );
        assert_eq!(rec.version, "WARC/1.1");
    }

    #[test]
    fn draft_and_current_versions_are_read_and_others_refused() {
        let mut input = String::new();
        for v in [
            "WARC/0.17",
            "WARC/0.18",
            "WARC/1.0",
            "WARC/1.1",
            "WARC/0.9",
            "WARC/0.180",
        ] {
            input += &record("conversion", v).replacen("WARC/1.1", v, 1);
        }
        let items = read_all(input.as_bytes(), &["conversion"], 1 << 20);
        let read: Vec<String> = items
            .iter()
            .map(|r| match r {
                Ok(rec) => format!("{} {}", rec.version, String::from_utf8_lossy(&rec.block)),
                Err(e) => e.reason.clone(),
            })
            .collect();
        assert_eq!(
            read,
            [
                "WARC/0.17 WARC/0.17",
                "WARC/0.18 WARC/0.18",
                "WARC/1.0 WARC/1.0",
                "WARC/1.1 WARC/1.1",
                "warc_bad_header"
            ]
        );
    }

    #[test]
    fn oversized_record_is_read_past_and_reported() {
        let big = "a".repeat(5000);
        let input = record("conversion", &big) + &record("conversion", "small");
        let items = read_all(input.as_bytes(), &["conversion"], 1000);
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].as_ref().unwrap_err().reason,
            "warc_record_too_large"
        );
        assert_eq!(items[1].as_ref().unwrap().block, b"small");
    }

    #[test]
    fn header_folding_and_missing_length() {
        let input = "WARC/1.0\r\nWARC-Type: conversion\r\nX-Long: a\r\n  b\r\n\r\nbody\r\n\r\n"
            .to_string()
            + &record("conversion", "ok");
        let items = read_all(input.as_bytes(), &["conversion"], 1 << 20);
        assert_eq!(items.len(), 2);
        let e = items[0].as_ref().unwrap_err();
        assert_eq!((e.offset, e.reason.as_str()), (0, "warc_bad_header"));
        assert!(e.message.contains("Content-Length"), "{e:?}");
        assert_eq!(items[1].as_ref().unwrap().block, b"ok");
    }

    #[test]
    fn garbage_only_gives_one_error_and_ends() {
        let items = read_all(b"\x00\xff garbage\nmore\n", &["conversion"], 1 << 20);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].as_ref().unwrap_err().reason, "warc_bad_header");
        assert!(read_all(b"", &["conversion"], 10).is_empty());
        assert!(read_all(b"\r\n\r\n", &["conversion"], 10).is_empty());
    }

    #[test]
    fn truncated_header_and_block_are_reported() {
        let full = record("conversion", "abcdefgh");
        let cut_block = &full.as_bytes()[..full.len() - 8];
        let items = read_all(cut_block, &["conversion"], 1 << 20);
        assert_eq!(items.len(), 1);
        let e = items[0].as_ref().unwrap_err();
        assert_eq!(e.reason, "warc_truncated");
        assert!(!e.fatal);
        let items = read_all(&full.as_bytes()[..20], &["conversion"], 1 << 20);
        assert_eq!(items[0].as_ref().unwrap_err().reason, "warc_truncated");
        // An unwanted record that is cut short is reported too.
        let items = read_all(cut_block, &["response"], 1 << 20);
        assert_eq!(items[0].as_ref().unwrap_err().reason, "warc_truncated");
    }

    #[test]
    fn wrong_content_length_is_repaired_from_the_next_record() {
        let good = record("conversion", "third");
        // Too small (counted in characters, not bytes) and too large (line ends changed).
        let short = "WARC/1.0\nWARC-Type: conversion\nContent-Length: 4\n\nпривет\n\n";
        let long = "WARC/1.0\nWARC-Type: conversion\nContent-Length: 12\n\nhello\n\n";
        let input = format!("{short}{long}{good}");
        let items = read_all(input.as_bytes(), &["conversion"], 1 << 20);
        let blocks: Vec<(&[u8], bool)> = items
            .iter()
            .map(|r| {
                let r = r.as_ref().unwrap();
                (r.block.as_slice(), r.length_repaired)
            })
            .collect();
        assert_eq!(
            blocks,
            [
                ("привет".as_bytes(), true),
                (&b"hello"[..], true),
                (&b"third"[..], false)
            ]
        );
        assert_eq!(items[1].as_ref().unwrap().offset, short.len() as u64);
    }

    #[test]
    fn broken_version_line_after_a_good_record_is_reported() {
        let first = record("request", "GET / HTTP/1.1\r\n\r\n");
        let broken = record("conversion", "lost").replacen("WARC/1.1", "WARC/X", 1);
        let input = format!("{first}{broken}{}", record("conversion", "kept"));
        let items = read_all(input.as_bytes(), &["conversion"], 1 << 20);
        assert_eq!(items.len(), 2);
        let e = items[0].as_ref().unwrap_err();
        assert_eq!(
            (e.offset, e.reason.as_str()),
            (first.len() as u64, "warc_bad_header")
        );
        assert_eq!(items[1].as_ref().unwrap().block, b"kept");
    }

    #[test]
    fn huge_junk_line_between_records_keeps_offsets_right() {
        let first = record("conversion", "one");
        let junk = "x".repeat(MAX_HEADER_LINE_BYTES + 10) + "\r\n";
        let input = format!("{first}{junk}{}", record("conversion", "two"));
        let items = read_all(input.as_bytes(), &["conversion"], 1 << 20);
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].as_ref().unwrap().block, b"one");
        let e = items[1].as_ref().unwrap_err();
        assert_eq!(
            (e.offset, e.reason.as_str()),
            (first.len() as u64, "warc_bad_header")
        );
        let two = items[2].as_ref().unwrap();
        assert_eq!(
            (two.offset, two.block.as_slice()),
            ((first.len() + junk.len()) as u64, &b"two"[..])
        );
    }
}

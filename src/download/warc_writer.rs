//! Writes fetched pages as WARC/1.1 `response` records: one gzip member per record, files
//! `pages-NNNNN.warc.gz` rotated by size, each starting with a `warcinfo` record.
//!
//! Records are compressed by the caller's thread ([`response_member`]) and appended whole by
//! [`WarcWriter::append`], which reports the byte range the member took. [`recover`] cuts each
//! file back to the end of its last member the fetch log records as durable, so a crash in the
//! middle of a member never leaves a corrupt file behind.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use super::client::USER_AGENT;
use super::dates::warc_date;
use crate::doc::sync_parent;

/// File name prefix of the WARC files.
pub const WARC_PREFIX: &str = "pages-";
/// File name suffix of the WARC files.
pub const WARC_SUFFIX: &str = ".warc.gz";

/// One fetched page, ready to become a `response` record.
#[derive(Debug, Clone)]
pub struct PageResponse<'a> {
    /// The URL the response was served from (after redirects).
    pub target_uri: &'a str,
    /// The URL the list asked for.
    pub requested_uri: &'a str,
    /// When the response was received.
    pub date: SystemTime,
    /// The server's address, when known.
    pub ip: Option<SocketAddr>,
    /// HTTP status line and header fields, `\r\n`-terminated, ending with the blank line.
    pub http_head: &'a [u8],
    /// The body as stored (transfer and content coding undone).
    pub payload: &'a [u8],
}

/// `sha256:` and the RFC 4648 base32 of the SHA-256 of `bytes` (the form WARC tools expect).
pub fn sha256_label(bytes: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for b in bytes {
        h.update(b);
    }
    format!("sha256:{}", base32(&h.finalize()))
}

/// RFC 4648 base32 with padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    for chunk in bytes.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let v = buf.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < chars {
                out.push(ALPHABET[((v >> (35 - 5 * i)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A record id made from what the record is (so the same input gives the same id).
fn record_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8: a name-based id of our own
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let x = hex::encode(b);
    format!(
        "<urn:uuid:{}-{}-{}-{}-{}>",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// A complete WARC record: header fields (without `Content-Length`, added here) and block.
fn record_bytes(fields: &[(&str, &str)], block_parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = block_parts.iter().map(|b| b.len()).sum();
    let mut out = Vec::with_capacity(len + 1024);
    out.extend_from_slice(b"WARC/1.1\r\n");
    for (k, v) in fields {
        // A field value never carries a line break into the header.
        let v: String = v.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("Content-Length: {len}\r\n\r\n").as_bytes());
    for b in block_parts {
        out.extend_from_slice(b);
    }
    out.extend_from_slice(b"\r\n\r\n");
    out
}

fn gzip_member(record: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(
        Vec::with_capacity(record.len() / 3 + 64),
        flate2::Compression::new(6),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(record);
    enc.finish().unwrap_or_default()
}

/// The gzip member of a `response` record for `page`. The requested URL goes into
/// `WARC-Refers-To-Target-URI`, so a page is found under either URL.
pub fn response_member(page: &PageResponse<'_>) -> Vec<u8> {
    let date = warc_date(page.date);
    let payload_digest = sha256_label(&[page.payload]);
    let block_digest = sha256_label(&[page.http_head, page.payload]);
    let id = record_id(&[page.target_uri, &date, &block_digest]);
    let ip = page.ip.map(|a| a.ip().to_string());
    let mut fields: Vec<(&str, &str)> = vec![
        ("WARC-Type", "response"),
        ("WARC-Record-ID", &id),
        ("WARC-Date", &date),
        ("WARC-Target-URI", page.target_uri),
        ("WARC-Refers-To-Target-URI", page.requested_uri),
    ];
    if let Some(ip) = &ip {
        fields.push(("WARC-IP-Address", ip));
    }
    fields.extend([
        ("WARC-Block-Digest", block_digest.as_str()),
        ("WARC-Payload-Digest", payload_digest.as_str()),
        ("Content-Type", "application/http;msgtype=response"),
    ]);
    gzip_member(&record_bytes(&fields, &[page.http_head, page.payload]))
}

/// The gzip member of the `warcinfo` record that opens file `name`.
fn warcinfo_member(name: &str, date: SystemTime) -> Vec<u8> {
    let date = warc_date(date);
    let body = format!(
        "software: {USER_AGENT}\r\nformat: WARC File Format 1.1\r\n\
         conformsTo: https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/\r\n"
    );
    let id = record_id(&["warcinfo", name, &date]);
    let fields = [
        ("WARC-Type", "warcinfo"),
        ("WARC-Record-ID", id.as_str()),
        ("WARC-Date", date.as_str()),
        ("WARC-Filename", name),
        ("Content-Type", "application/warc-fields"),
    ];
    gzip_member(&record_bytes(&fields, &[body.as_bytes()]))
}

/// The name of WARC file number `index`.
pub fn warc_name(index: u32) -> String {
    format!("{WARC_PREFIX}{index:05}{WARC_SUFFIX}")
}

/// The number of a WARC file name written by [`warc_name`].
pub fn warc_index(name: &str) -> Option<u32> {
    name.strip_prefix(WARC_PREFIX)?
        .strip_suffix(WARC_SUFFIX)?
        .parse()
        .ok()
}

/// Where an appended member landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// File name inside the WARC folder.
    pub file: String,
    /// Offset of the member's first byte.
    pub offset: u64,
    /// Offset just past its last byte.
    pub end: u64,
}

struct OpenWarc {
    name: String,
    file: File,
    len: u64,
}

/// Appends gzip members to rotating WARC files in one folder.
pub struct WarcWriter {
    dir: PathBuf,
    max_file_bytes: u64,
    next_index: u32,
    current: Option<OpenWarc>,
}

impl WarcWriter {
    /// A writer whose first file is number `next_index` (see [`recover`]); a file is closed
    /// once it holds `max_file_bytes` or more.
    pub fn new(dir: &Path, max_file_bytes: u64, next_index: u32) -> Self {
        WarcWriter {
            dir: dir.to_path_buf(),
            max_file_bytes: max_file_bytes.max(1),
            next_index,
            current: None,
        }
    }

    /// Appends one member, rotating first when the current file is full.
    pub fn append(&mut self, member: &[u8]) -> Result<Placed> {
        if self
            .current
            .as_ref()
            .is_some_and(|c| c.len >= self.max_file_bytes)
        {
            self.close()?;
        }
        if self.current.is_none() {
            self.open_next()?;
        }
        let cur = self
            .current
            .as_mut()
            .context("no WARC file open after opening one")?;
        let offset = cur.len;
        let path = self.dir.join(&cur.name);
        cur.file
            .write_all(member)
            .map_err(|e| crate::doc::io_error(&path, e, "appending a WARC record"))?;
        cur.len += member.len() as u64;
        Ok(Placed {
            file: cur.name.clone(),
            offset,
            end: cur.len,
        })
    }

    /// Makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<()> {
        if let Some(cur) = &self.current {
            cur.file
                .sync_data()
                .with_context(|| format!("cannot fsync {}", self.dir.join(&cur.name).display()))?;
        }
        Ok(())
    }

    /// Syncs and closes the current file (the next append opens a new one).
    pub fn close(&mut self) -> Result<()> {
        self.sync()?;
        self.current = None;
        Ok(())
    }

    fn open_next(&mut self) -> Result<()> {
        let name = warc_name(self.next_index);
        self.next_index += 1;
        let path = self.dir.join(&name);
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let info = warcinfo_member(&name, SystemTime::now());
        file.write_all(&info)
            .map_err(|e| crate::doc::io_error(&path, e, "writing its warcinfo record"))?;
        sync_parent(&path)?;
        self.current = Some(OpenWarc {
            name,
            file,
            len: info.len() as u64,
        });
        Ok(())
    }
}

/// Cuts every WARC file of `dir` back to the end of its last durable member (`durable_end`
/// gives it per file name, from the fetch log); a file with no durable member is removed.
/// Returns the number for the next new file and the bytes cut.
pub fn recover(dir: &Path, durable_end: impl Fn(&str) -> Option<u64>) -> Result<(u32, u64)> {
    let mut next = 0u32;
    let mut cut = 0u64;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(index) = warc_index(&name) else {
            continue;
        };
        next = next.max(index + 1);
        let path = entry.path();
        let len = entry
            .metadata()
            .with_context(|| format!("cannot stat {}", path.display()))?
            .len();
        match durable_end(&name) {
            None => {
                tracing::warn!(
                    "{}: no record of it is in the fetch log (a crash before the first was \
                     logged); removing it, its pages are fetched again",
                    path.display()
                );
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
                cut += len;
            }
            Some(end) if end > len => anyhow::bail!(
                "{}: the fetch log records a record ending at byte {end} but the file has only \
                 {len} bytes; the folder was changed by hand, start a new one",
                path.display()
            ),
            Some(end) if end < len => {
                tracing::warn!(
                    "{}: cutting {} bytes written after the last logged record (a crash)",
                    path.display(),
                    len - end
                );
                super::truncate_durably(&path, end)?;
                cut += len - end;
            }
            Some(_) => {}
        }
    }
    Ok((next, cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY======");
        assert_eq!(base32(b"fo"), "MZXQ====");
        assert_eq!(base32(b"foob"), "MZXW6YQ=");
        assert_eq!(base32(b"fooba"), "MZXW6YTB");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI======");
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(warc_name(7), "pages-00007.warc.gz");
        assert_eq!(warc_index("pages-00007.warc.gz"), Some(7));
        assert_eq!(warc_index("pages-00007.warc.gz.tmp"), None);
    }
}

//! URL lists: the `url<TAB>count` lines `datamill wiki-refs` writes (zstd), or a plain list
//! of URLs, one per line; plain, `.gz` or `.zst` by extension. Streamed line by line, so a
//! list of tens of millions of URLs is never held in memory.
//!
//! Blank lines and lines starting with `#` are skipped. A line whose first field is not an
//! absolute `http`/`https` URL (parsed by the URL standard), or whose second field is not a count, is a
//! [`BadUrlLine`] naming its line number; reading goes on.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::doc::open_decompressed;

/// Longest line kept; a longer one is read past and reported as `line_too_long`.
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// One usable line of a URL list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlLine {
    /// 1-based line number in the decompressed list.
    pub line: u64,
    /// The URL field as written in the list.
    pub text: String,
    /// The URL as parsed (scheme and host lower case, as the URL standard gives them), without
    /// its fragment (never sent to a server).
    pub url: url::Url,
    /// The second field (citing articles), when the line has one.
    pub count: Option<u64>,
}

/// A line of a URL list that cannot be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadUrlLine {
    /// 1-based line number in the decompressed list.
    pub line: u64,
    /// Short reason (`not_utf8`, `bad_url`, `not_http`, `bad_count`, `line_too_long`).
    pub reason: &'static str,
    /// The line as written (cut at 200 characters).
    pub text: String,
}

/// Streams the lines of a URL list; see the module documentation.
pub struct UrlListReader {
    path: PathBuf,
    input: Box<dyn BufRead + Send>,
    line_no: u64,
    buf: Vec<u8>,
}

impl UrlListReader {
    /// Opens a list (compression by extension).
    pub fn open(path: &Path) -> Result<Self> {
        let size = std::fs::metadata(path)
            .with_context(|| format!("cannot open URL list {}", path.display()))?
            .len();
        let input: Box<dyn Read + Send> = if size == 0 {
            Box::new(std::io::empty())
        } else {
            open_decompressed(path)?
        };
        Ok(Self::from_reader(path, input))
    }

    /// A reader over already opened, decompressed bytes; `path` names them in errors.
    pub fn from_reader(path: &Path, input: Box<dyn Read + Send>) -> Self {
        UrlListReader {
            path: path.to_path_buf(),
            input: Box::new(BufReader::with_capacity(1 << 16, input)),
            line_no: 0,
            buf: Vec::with_capacity(256),
        }
    }

    /// Lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.line_no
    }

    /// Reads one line into `self.buf` (without its end), keeping at most MAX_LINE_BYTES.
    /// Returns `None` at the end, `Some(too_long)` otherwise.
    fn read_line(&mut self) -> std::io::Result<Option<bool>> {
        self.buf.clear();
        let mut any = false;
        let mut too_long = false;
        loop {
            let avail = match self.input.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                return Ok(any.then_some(too_long));
            }
            any = true;
            let (chunk, used, end) = match memchr::memchr(b'\n', avail) {
                Some(i) => (&avail[..i], i + 1, true),
                None => (avail, avail.len(), false),
            };
            let room = MAX_LINE_BYTES.saturating_sub(self.buf.len());
            too_long |= chunk.len() > room;
            self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            self.input.consume(used);
            if end {
                return Ok(Some(too_long));
            }
        }
    }
}

impl Iterator for UrlListReader {
    type Item = Result<std::result::Result<UrlLine, BadUrlLine>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let too_long = match self.read_line() {
                Ok(Some(t)) => t,
                Ok(None) => return None,
                Err(e) => {
                    return Some(Err(anyhow::Error::new(e).context(format!(
                        "{}: cannot read past line {}",
                        self.path.display(),
                        self.line_no
                    ))))
                }
            };
            self.line_no += 1;
            let line = self.line_no;
            let text = String::from_utf8_lossy(&self.buf);
            let trimmed = text.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let bad = |reason| {
                Some(Ok(Err(BadUrlLine {
                    line,
                    reason,
                    text: trimmed.chars().take(200).collect(),
                })))
            };
            if too_long {
                return bad("line_too_long");
            }
            if std::str::from_utf8(&self.buf).is_err() {
                return bad("not_utf8");
            }
            return match parse_line(trimmed) {
                Ok((url, count)) => Some(Ok(Ok(UrlLine {
                    line,
                    text: trimmed
                        .split('\t')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                    url,
                    count,
                }))),
                Err(reason) => bad(reason),
            };
        }
    }
}

/// Parses `URL` or `URL<TAB>COUNT` (further tab-separated fields are ignored); the URL comes
/// back without its fragment.
pub fn parse_line(line: &str) -> std::result::Result<(url::Url, Option<u64>), &'static str> {
    let mut fields = line.split('\t');
    let raw = fields.next().unwrap_or_default().trim();
    let count = match fields.next().map(str::trim) {
        None => None,
        Some(c) => Some(c.parse::<u64>().map_err(|_| "bad_count")?),
    };
    if raw.contains(char::is_whitespace) {
        return Err("bad_url");
    }
    let mut url = url::Url::parse(raw).map_err(|_| "bad_url")?;
    url.set_fragment(None);
    if !matches!(url.scheme(), "http" | "https") {
        return Err("not_http");
    }
    // The URL standard gives every http(s) URL a host (`http:///x` parses as `http://x/`).
    Ok((url, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Lines = (Vec<(u64, String, Option<u64>)>, Vec<(u64, &'static str)>);

    fn read(text: &str) -> Lines {
        let r = UrlListReader::from_reader(
            Path::new("l"),
            Box::new(std::io::Cursor::new(text.to_string())),
        );
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for item in r {
            match item.unwrap() {
                Ok(u) => good.push((u.line, u.url.to_string(), u.count)),
                Err(b) => bad.push((b.line, b.reason)),
            }
        }
        (good, bad)
    }

    #[test]
    fn reads_counts_plain_urls_and_names_garbage() {
        let (good, bad) = read(
            "https://Example.org/a#s\t3\n# note\n\nhttp://x.test/b\r\nnot a url\nftp://h/f\n\
             https://e.org/c\tmany\nhttp://:80/x\nhttps://e.org/last",
        );
        assert_eq!(
            good,
            [
                (1, "https://example.org/a".to_string(), Some(3)),
                (4, "http://x.test/b".to_string(), None),
                (9, "https://e.org/last".to_string(), None),
            ]
        );
        assert_eq!(
            bad,
            [
                (5, "bad_url"),
                (6, "not_http"),
                (7, "bad_count"),
                (8, "bad_url")
            ]
        );
    }

    #[test]
    fn a_huge_line_is_refused_and_reading_goes_on() {
        let long = format!(
            "http://h.test/{}\nhttp://h.test/ok\n",
            "a".repeat(MAX_LINE_BYTES)
        );
        let (good, bad) = read(&long);
        assert_eq!(bad, [(1, "line_too_long")]);
        assert_eq!(good.len(), 1);
        assert_eq!(good[0].0, 2);
    }
}

//! The HTTP response inside a WARC `response` record: status line, the few header fields the
//! reader needs, and the payload with its transfer and content encodings undone.

use std::borrow::Cow;
use std::io::Read;

/// The parts of an HTTP response the text extraction needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse<'a> {
    /// Status code (200, 301, 404, ...).
    pub status: u16,
    /// The `Content-Type` field, as written.
    pub content_type: Option<String>,
    /// The `Transfer-Encoding` field, lower-cased.
    pub transfer_encoding: Option<String>,
    /// The `Content-Encoding` field, lower-cased.
    pub content_encoding: Option<String>,
    /// The bytes after the header, still encoded.
    pub body: &'a [u8],
}

/// Splits an HTTP response block into status, header fields and body; the error is a short
/// description of what is malformed.
pub fn parse_response(block: &[u8]) -> Result<HttpResponse<'_>, String> {
    if !block.starts_with(b"HTTP/") {
        return Err("block does not start with an HTTP status line".into());
    }
    let (head, body) = split_head(block).ok_or("HTTP header has no end")?;
    let mut lines = head.split(|&b| b == b'\n').map(trim_cr);
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(|&b| b == b' ')
        .filter(|t| !t.is_empty())
        .nth(1)
        .and_then(|t| std::str::from_utf8(t).ok())
        .and_then(|t| t.parse::<u16>().ok())
        .ok_or_else(|| {
            format!(
                "bad HTTP status line {:?}",
                String::from_utf8_lossy(&status_line[..status_line.len().min(60)])
            )
        })?;
    let mut resp = HttpResponse {
        status,
        content_type: None,
        transfer_encoding: None,
        content_encoding: None,
        body,
    };
    for line in lines {
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = trim_ascii(&line[..colon]);
        let value = || String::from_utf8_lossy(trim_ascii(&line[colon + 1..])).into_owned();
        if name.eq_ignore_ascii_case(b"content-type") {
            resp.content_type.get_or_insert_with(value);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            resp.transfer_encoding
                .get_or_insert_with(|| value().to_ascii_lowercase());
        } else if name.eq_ignore_ascii_case(b"content-encoding") {
            resp.content_encoding
                .get_or_insert_with(|| value().to_ascii_lowercase());
        }
    }
    Ok(resp)
}

/// The header part (without the blank line) and the body, split at the first empty line
/// (`\r\n\r\n`, or a bare `\n\n` from sloppy servers).
fn split_head(block: &[u8]) -> Option<(&[u8], &[u8])> {
    let crlf = memchr::memmem::find(block, b"\r\n\r\n").map(|i| (i, i + 4));
    let lf = memchr::memmem::find(block, b"\n\n").map(|i| (i, i + 2));
    let (end, body) = match (crlf, lf) {
        (Some(a), Some(b)) => {
            if a.0 < b.0 {
                a
            } else {
                b
            }
        }
        (a, b) => a.or(b)?,
    };
    Some((&block[..end], &block[body..]))
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim_ascii(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !first.is_ascii_whitespace() {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !last.is_ascii_whitespace() {
            break;
        }
        s = rest;
    }
    s
}

/// Undoes `Transfer-Encoding: chunked`. Returns `None` when the body does not start with a
/// chunk-size line (the crawler already de-chunked it); a body cut inside a chunk gives what
/// was complete plus the partial chunk.
pub fn dechunk(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    let mut first = true;
    loop {
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            return if first { None } else { Some(out) };
        };
        let size_line = trim_ascii(&rest[..nl]);
        let hex = size_line
            .split(|&b| b == b';')
            .next()
            .map(trim_ascii)
            .unwrap_or_default();
        let size = std::str::from_utf8(hex)
            .ok()
            .filter(|h| !h.is_empty() && h.len() <= 16)
            .and_then(|h| usize::from_str_radix(h, 16).ok());
        let Some(size) = size else {
            return if first { None } else { Some(out) };
        };
        first = false;
        rest = &rest[nl + 1..];
        if size == 0 {
            return Some(out);
        }
        let take = size.min(rest.len());
        out.extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        if take < size {
            return Some(out);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))
            .unwrap_or(rest);
    }
}

/// Undoes a `Content-Encoding` (`gzip`, `x-gzip`, `deflate`; `identity` or none leave the
/// body as is), producing at most `max_bytes`. The error names an encoding that is not
/// supported or a stream that does not decode.
pub fn decode_content<'a>(
    body: &'a [u8],
    encoding: Option<&str>,
    max_bytes: u64,
) -> Result<Cow<'a, [u8]>, String> {
    let encoding = encoding.map(str::trim).unwrap_or_default();
    let mut out = Vec::new();
    let result = match encoding {
        "" | "identity" | "none" => return Ok(Cow::Borrowed(body)),
        "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(body)
            .take(max_bytes)
            .read_to_end(&mut out),
        "deflate" => {
            let zlib = flate2::read::ZlibDecoder::new(body)
                .take(max_bytes)
                .read_to_end(&mut out);
            if zlib.is_err() {
                out.clear();
                flate2::read::DeflateDecoder::new(body)
                    .take(max_bytes)
                    .read_to_end(&mut out)
            } else {
                zlib
            }
        }
        other => return Err(format!("unsupported Content-Encoding {other:?}")),
    };
    match result {
        Ok(_) => Ok(Cow::Owned(out)),
        // A payload cut short still gives the text decoded so far.
        Err(_) if !out.is_empty() => Ok(Cow::Owned(out)),
        Err(e) => Err(format!(
            "Content-Encoding {encoding:?} does not decode: {e}"
        )),
    }
}

/// The media type of a `Content-Type` value, lower-cased, without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// True for media types whose payload is HTML.
pub fn is_html_type(media_type: &str) -> bool {
    matches!(media_type, "text/html" | "application/xhtml+xml")
}

/// True when the first bytes of a payload look like an HTML document.
pub fn sniff_html(body: &[u8]) -> bool {
    let head = &body[..body.len().min(1024)];
    let head = trim_ascii(head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head));
    let lower: Vec<u8> = head.iter().take(512).map(u8::to_ascii_lowercase).collect();
    lower.starts_with(b"<!doctype html")
        || lower.starts_with(b"<html")
        || memchr::memmem::find(&lower, b"<html").is_some()
        || memchr::memmem::find(&lower, b"<head").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn parses_status_and_fields() {
        let block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=GBK\r\nTransfer-Encoding: Chunked\r\n\r\n<p>x";
        let r = parse_response(block).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type.as_deref(), Some("text/html; charset=GBK"));
        assert_eq!(r.transfer_encoding.as_deref(), Some("chunked"));
        assert_eq!(r.body, b"<p>x");
        assert!(parse_response(b"HTTP/1.1 abc\r\n\r\n").is_err());
        assert!(parse_response(b"GET / HTTP/1.1\r\n\r\n").is_err());
        assert_eq!(
            parse_response(b"HTTP/1.0 404 Nope\n\nbody").unwrap().body,
            b"body"
        );
    }

    #[test]
    fn dechunks_and_leaves_plain_bodies() {
        assert_eq!(
            dechunk(b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n").unwrap(),
            b"hello, world"
        );
        assert_eq!(dechunk(b"<html>").as_deref(), None);
        assert_eq!(dechunk(b"5\r\nhel").unwrap(), b"hel");
    }

    #[test]
    fn decodes_gzip_and_refuses_unknown() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"<p>zipped</p>").unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(
            decode_content(&gz, Some("gzip"), 1 << 20).unwrap().as_ref(),
            b"<p>zipped</p>"
        );
        assert_eq!(
            decode_content(&gz, Some("gzip"), 3).unwrap().as_ref(),
            b"<p>"
        );
        assert!(decode_content(b"not gzip", Some("gzip"), 100).is_err());
        assert!(decode_content(b"x", Some("br"), 100).is_err());
        assert_eq!(decode_content(b"x", None, 100).unwrap().as_ref(), b"x");
    }

    #[test]
    fn media_types_and_sniffing() {
        assert_eq!(media_type(" Text/HTML ; charset=x"), "text/html");
        assert!(sniff_html(b"\xEF\xBB\xBF  <!DOCTYPE html><html>"));
        assert!(!sniff_html(b"%PDF-1.4"));
    }
}

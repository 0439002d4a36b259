//! Books (`reader = "books"`): one plain-text book per file in any encoding (Project Gutenberg
//! `.txt`, optionally `.gz`/`.zst`/`.bz2`), or Books3/PG19-style JSONL (`.jsonl[.gz|.zst]`,
//! one book a line, `{"text", "meta": {...}}`), or a tar archive of such text files as Books3
//! is published (`.tar`, `.tar.gz`, `.tgz`, `.tar.zst`, `.tar.bz2`): one book per regular
//! member, the member's path as its id. Archives are walked with the same safety rules as
//! repository archives ([`super::archive`]): nothing is extracted to disk, members with
//! absolute or `..` paths, links and device files are reported and never read, and a member
//! over `max_book_mb` is set aside as `book_too_large` without being read.
//!
//! Encoding of a text file, in this order: a byte-order mark (UTF-8, UTF-16); valid UTF-8; the
//! `Character set encoding:` line of a Gutenberg header, when the bytes decode cleanly with it;
//! otherwise the guess of `chardetng`. A file with NUL bytes (binary, or UTF-16 without a
//! BOM) or that does not decode cleanly with the guess is set aside as `unknown_encoding`
//! with the byte offset of the first offending byte. Line ends become `\n`. The UTF-8 check
//! and line ends are those of [`super::text`], which tokenizer training uses too.

use std::io::Read;
use std::path::Path;

use anyhow::Result;
use serde::Deserialize;
use serde_json::Value;

use super::archive::{
    skipped_member, stream_from_thread, walk_tar, MemberBody, WalkEvent, WalkLimits,
};
use super::text::normalize_newlines;
use super::{stop_after_fatal, Reader, Records};
use crate::doc::{Document, JsonlReader, RecordError, RecordResult};
use crate::run::config::parse_params;

/// Options of the `books` reader.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BooksOptions {
    /// Largest book read, in MB (default 256); a larger file is set aside as `book_too_large`.
    #[serde(default = "default_max_mb")]
    pub max_book_mb: u64,
}

fn default_max_mb() -> u64 {
    256
}

/// Reads books.
#[derive(Debug, Clone)]
pub struct BooksSource {
    options: BooksOptions,
}

impl BooksSource {
    /// Builds the reader from `[input.options]`.
    pub fn from_options(options: &toml::Table) -> Result<Self> {
        Ok(BooksSource {
            options: parse_params("reader books", options)?,
        })
    }
}

/// True for file names read as JSONL (Books3, PG19 exports).
pub fn is_jsonl_name(name: &str) -> bool {
    [
        ".jsonl",
        ".jsonl.gz",
        ".jsonl.zst",
        ".json",
        ".json.gz",
        ".json.zst",
    ]
    .iter()
    .any(|ext| name.ends_with(ext))
}

/// A book's id when read on its own: its folder and file name
/// (`Pride-and-Prejudice_1342/1342.txt`); a run uses the path relative to its input root.
pub fn book_id(path: &Path) -> String {
    let file = crate::doc::file_name(path);
    match path
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy())
    {
        Some(dir) if !dir.is_empty() => format!("{dir}/{file}"),
        _ => file,
    }
}

impl Reader for BooksSource {
    fn read(&self, path: &Path, source: &str) -> Result<Records> {
        self.read_named(path, &book_id(path), source)
    }

    /// The book's id is `id`: its path relative to the input root in a run.
    fn read_named(&self, path: &Path, id: &str, source: &str) -> Result<Records> {
        let name = crate::doc::file_name(path);
        let source = source.to_string();
        if is_jsonl_name(&name) {
            let reader = JsonlReader::open(path)?;
            let id = id.to_string();
            return Ok(stop_after_fatal(reader.map(move |(line, r)| {
                r.map(|d| books3_document(d, &id, line, &source))
            })));
        }
        let max = self.options.max_book_mb.saturating_mul(1 << 20);
        if super::archive::ArchiveKind::of(path) == Some(super::archive::ArchiveKind::Tar) {
            let input = crate::doc::open_decompressed(path)?;
            let (path, mb) = (path.to_path_buf(), self.options.max_book_mb);
            return Ok(stream_from_thread(move |send| {
                read_tar(input, &path, max, mb, &source, send)
            }));
        }
        let mut input = crate::doc::open_decompressed(path)?;
        let mut bytes = Vec::new();
        let item = match (&mut input).take(max + 1).read_to_end(&mut bytes) {
            Err(e) => Err(RecordError::fatal(
                bytes.len() as u64,
                "read_error",
                format!("cannot read further: {e}"),
            )),
            Ok(_) if bytes.len() as u64 > max => Err(too_large(0, self.options.max_book_mb, "")),
            Ok(_) => book_document(&bytes, id, &path.to_string_lossy(), &source),
        };
        Ok(Box::new(std::iter::once(item)))
    }
}

/// The `book_too_large` record of a book (`member` names it inside an archive).
fn too_large(offset: u64, max_mb: u64, member: &str) -> RecordError {
    RecordError::record(
        offset,
        "book_too_large",
        format!("book {member}is larger than {max_mb} MB (max_book_mb)"),
    )
}

/// A book's document from its bytes, or why they cannot be read as text.
fn book_document(bytes: &[u8], id: &str, file: &str, source: &str) -> RecordResult {
    decode_book(bytes).map(|(text, encoding, how)| {
        Document::new(id, text, source)
            .with("file", file)
            .with("encoding", encoding)
            .with("encoding_source", how)
    })
}

/// Streams the books of a tar archive (already decompressed) to `send`: one per regular
/// member, in archive order; unsafe members and oversized books as records, a broken archive
/// as a last fatal record. Offsets are those of the members in the decompressed tar stream.
fn read_tar(
    input: impl Read,
    path: &Path,
    max: u64,
    max_mb: u64,
    source: &str,
    send: &mut dyn FnMut(RecordResult) -> bool,
) {
    let limits = WalkLimits {
        max_member_bytes: max,
        max_total_bytes: u64::MAX,
    };
    let file = path.to_string_lossy();
    let walked = walk_tar(input, limits, &mut |_, _| true, &mut |event| {
        send(match event {
            WalkEvent::File(m) => match m.body {
                MemberBody::Bytes(bytes) => {
                    book_document(&bytes, &m.path, &file, source).map_err(|mut e| {
                        e.offset += m.offset;
                        e.message = format!("{}: {}", m.path, e.message);
                        e
                    })
                }
                _ => Err(too_large(m.offset, max_mb, &format!("{} ", m.path))),
            },
            WalkEvent::Skipped {
                name,
                reason,
                offset,
            } => Err(skipped_member(&file, &name, reason, offset)),
        })
    });
    if let Err(mut e) = walked {
        e.message = format!("{}: {}", path.display(), e.message);
        send(Err(e));
    }
}

/// Moves a Books3/PG19 record's `meta` fields into metadata and names the title `title`.
fn books3_document(mut d: Document, file_id: &str, line: u64, source: &str) -> Document {
    if let Some(Value::Object(meta)) = d.metadata.remove("meta") {
        for (k, v) in meta {
            d.metadata.entry(k).or_insert(v);
        }
    }
    if !d.metadata.contains_key("title") {
        if let Some(t) = d.metadata.get("short_book_title").cloned() {
            d.metadata.insert("title".into(), t);
        }
    }
    if d.id.is_empty() {
        d.id = format!("{file_id}:{line}");
    }
    d.source = source.to_string();
    d
}

/// Decodes a book's bytes: returns the text with `\n` line ends, the encoding's name and how
/// it was chosen (`bom`, `utf8`, `declared`, `detected`).
pub fn decode_book(
    bytes: &[u8],
) -> std::result::Result<(String, &'static str, &'static str), RecordError> {
    if let Some((enc, bom_len)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, had_errors) = enc.decode_without_bom_handling(&bytes[bom_len..]);
        if had_errors {
            return Err(RecordError::record(
                0,
                "unknown_encoding",
                format!(
                    "file starts with a {} byte-order mark but does not decode",
                    enc.name()
                ),
            ));
        }
        return Ok((normalize_newlines(&text), enc.name(), "bom"));
    }
    if let Some(nul) = memchr::memchr(0, bytes) {
        return Err(RecordError::record(
            nul as u64,
            "unknown_encoding",
            format!("NUL byte at offset {nul}: binary data or UTF-16 without a byte-order mark"),
        ));
    }
    let utf8_error = match super::text::utf8(bytes) {
        Ok(s) => return Ok((normalize_newlines(s), "UTF-8", "utf8")),
        Err(at) => at,
    };
    if let Some(enc) = declared_charset(bytes) {
        if let Some(text) = enc.decode_without_bom_handling_and_without_replacement(bytes) {
            return Ok((normalize_newlines(&text), enc.name(), "declared"));
        }
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Allow);
    detector.feed(bytes, true);
    let enc = detector.guess(None, chardetng::Utf8Detection::Deny);
    match enc.decode_without_bom_handling_and_without_replacement(bytes) {
        Some(text) => Ok((normalize_newlines(&text), enc.name(), "detected")),
        None => Err(RecordError::record(
            utf8_error,
            "unknown_encoding",
            format!(
                "not UTF-8 (invalid byte at offset {utf8_error}) and not valid {} either",
                enc.name()
            ),
        )),
    }
}

/// The encoding named by a Gutenberg `Character set encoding: X` header line, if known.
fn declared_charset(bytes: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let head = &bytes[..bytes.len().min(16 << 10)];
    let needle = b"character set encoding:";
    let at = head
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))?;
    let rest = &head[at + needle.len()..];
    let end = rest
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .unwrap_or(rest.len());
    let label = std::str::from_utf8(&rest[..end]).ok()?.trim();
    encoding_rs::Encoding::for_label(label.as_bytes())
}

/// Reads one record set for tests and tools: every document or error of `path`.
pub fn read_all(path: &Path, source: &str) -> Result<Vec<RecordResult>> {
    Ok(BooksSource::from_options(&toml::Table::new())?
        .read(path, source)?
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_utf8_latin1_and_utf16_and_rejects_binary() {
        let (t, e, how) = decode_book("Grüße\r\nok".as_bytes()).unwrap();
        assert_eq!((t.as_str(), e, how), ("Grüße\nok", "UTF-8", "utf8"));
        let latin1 = b"Character set encoding: ISO-8859-1\r\n\r\nGr\xfc\xdfe aus M\xfcnchen";
        let (t, e, how) = decode_book(latin1).unwrap();
        assert!(t.ends_with("Grüße aus München"), "{t}");
        assert_eq!((e, how), ("windows-1252", "declared"));
        let undeclared = "Die Straße führt über die Brücke nach Süden, schöne Grüße.".as_bytes();
        let (bytes, _, _) =
            encoding_rs::WINDOWS_1252.encode(std::str::from_utf8(undeclared).unwrap());
        let (t, _, how) = decode_book(&bytes).unwrap();
        assert_eq!(
            (t.as_str(), how),
            (std::str::from_utf8(undeclared).unwrap(), "detected")
        );
        let mut utf16 = vec![0xFF, 0xFE];
        for u in "Hi".encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(decode_book(&utf16).unwrap().0, "Hi");
        let err = decode_book(b"PK\x03\x04\x00\x00binary").unwrap_err();
        assert_eq!((err.reason.as_str(), err.offset), ("unknown_encoding", 4));
    }

    #[test]
    fn books3_meta_is_flattened() {
        let d = Document::new("", "text", "x").with(
            "meta",
            serde_json::json!({"short_book_title": "A Book", "url": "u"}),
        );
        let d = books3_document(d, "dir/books3.jsonl", 3, "books");
        assert_eq!(d.meta_str("title"), Some("A Book"));
        assert_eq!(d.meta_str("url"), Some("u"));
        assert_eq!(d.id, "dir/books3.jsonl:3");
        assert_eq!(d.source, "books");
    }
}

//! The document model and the `*.jsonl[.gz|.zst]` shard reader and writer.
//!
//! Every stage of datamill passes [`Document`]s. On disk a document is one JSON object per
//! line with the keys `id`, `text`, `source` and `metadata`, in that order.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One document: a web page, a source file, a book, an article, a question with its answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Stable identifier, derived from the input file and the record's offset or URL.
    pub id: String,
    /// The text that ends up in the corpus.
    pub text: String,
    /// Which corpus source the document belongs to (`commoncrawl`, `c4`, `github`, ...).
    #[serde(default)]
    pub source: String,
    /// Everything else we know: URL, language, scores, repository, licence, ...
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

impl Document {
    /// A new document with empty metadata.
    pub fn new(id: impl Into<String>, text: impl Into<String>, source: impl Into<String>) -> Self {
        Document {
            id: id.into(),
            text: text.into(),
            source: source.into(),
            metadata: Map::new(),
        }
    }

    /// Sets one metadata field (builder style).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.to_string(), value.into());
        self
    }

    /// Sets one metadata field.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.metadata.insert(key.to_string(), value.into());
    }

    /// A metadata field as a string, if it is one.
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }
}

/// A compression [`open_decompressed`] undoes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// `.gz` (multi-member).
    Gzip,
    /// `.zst`.
    Zstd,
    /// `.bz2` (multi-stream).
    Bzip2,
}

/// The compression of a file, chosen by extension; `None`: read as is.
pub fn compression_of(path: &Path) -> Option<Compression> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    [
        (".gz", Compression::Gzip),
        (".zst", Compression::Zstd),
        (".bz2", Compression::Bzip2),
    ]
    .into_iter()
    .find_map(|(ext, c)| name.ends_with(ext).then_some(c))
}

/// Opens a file for reading and undoes its compression (see [`compression_of`]).
pub fn open_decompressed(path: &Path) -> Result<Box<dyn Read + Send>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let raw = BufReader::with_capacity(1 << 16, file);
    decompress(raw, compression_of(path))
        .with_context(|| format!("{}: not a zstd stream", path.display()))
}

/// Undoes `compression` over a stream of raw bytes.
pub fn decompress<R: BufRead + Send + 'static>(
    raw: R,
    compression: Option<Compression>,
) -> Result<Box<dyn Read + Send>> {
    Ok(match compression {
        Some(Compression::Gzip) => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
        Some(Compression::Zstd) => Box::new(zstd::stream::read::Decoder::with_buffer(raw)?),
        Some(Compression::Bzip2) => Box::new(bzip2::bufread::MultiBzDecoder::new(raw)),
        None => Box::new(raw),
    })
}

/// Streams documents from a `.jsonl`, `.jsonl.gz` or `.jsonl.zst` shard written by datamill
/// (or any JSONL with a `text` field). Yields `(line_number, byte_offset, result)`.
pub struct JsonlReader {
    path: PathBuf,
    input: Box<dyn BufRead + Send>,
    line_no: u64,
    offset: u64,
    buf: Vec<u8>,
    done: bool,
}

/// A record of an input that could not be turned into a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// Byte offset of the record in the (decompressed) input stream.
    pub offset: u64,
    /// Short machine-readable reason, used as the drop counter key (`bad_json`, `warc_truncated`).
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
    /// True when the input cannot be read any further (truncated compression, I/O error).
    pub fatal: bool,
}

impl RecordError {
    /// A record-level error after which reading goes on.
    pub fn record(offset: u64, reason: &str, message: impl Into<String>) -> Self {
        RecordError {
            offset,
            reason: reason.to_string(),
            message: message.into(),
            fatal: false,
        }
    }

    /// An error that ends reading of this input.
    pub fn fatal(offset: u64, reason: &str, message: impl Into<String>) -> Self {
        RecordError {
            fatal: true,
            ..Self::record(offset, reason, message)
        }
    }
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "at byte {}: {} ({})",
            self.offset, self.message, self.reason
        )
    }
}

/// What readers yield: a document, or a record that was set aside.
pub type RecordResult = std::result::Result<Document, RecordError>;

/// Longest JSONL line accepted; a longer one is skipped as `line_too_long` without being held.
pub const MAX_LINE_BYTES: usize = 256 << 20;

impl JsonlReader {
    /// Opens `path` (compression chosen by extension).
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self::from_stream(path, open_decompressed(path)?, 0, 0))
    }

    /// Reads decompressed JSONL from `input`, named `path` in errors, whose first byte is at
    /// `offset` of the whole input after `lines_before` lines (a range of a bigger file).
    pub fn from_stream(
        path: &Path,
        input: Box<dyn Read + Send>,
        lines_before: u64,
        offset: u64,
    ) -> Self {
        JsonlReader {
            path: path.to_path_buf(),
            input: Box::new(BufReader::with_capacity(1 << 16, input)),
            line_no: lines_before,
            offset,
            buf: Vec::new(),
            done: false,
        }
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn next_line(&mut self) -> Option<std::result::Result<(u64, u64), RecordError>> {
        self.buf.clear();
        let start = self.offset;
        let mut too_long = false;
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(RecordError::fatal(
                        self.offset,
                        "read_error",
                        format!("cannot read further: {e}"),
                    )));
                }
            };
            if chunk.is_empty() {
                self.done = true;
                if self.buf.is_empty() && !too_long {
                    return None;
                }
                break;
            }
            let (take, found) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            if !too_long {
                if self.buf.len() + take > MAX_LINE_BYTES {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(&chunk[..take]);
                }
            }
            self.input.consume(take);
            self.offset += take as u64;
            if found {
                break;
            }
        }
        self.line_no += 1;
        if too_long {
            return Some(Err(RecordError::record(
                start,
                "line_too_long",
                format!(
                    "line {} is longer than {} bytes",
                    self.line_no, MAX_LINE_BYTES
                ),
            )));
        }
        Some(Ok((self.line_no, start)))
    }
}

impl JsonlReader {
    /// The next record's `text` only, with its line number, parsed as
    /// [`crate::sources::jsonl::text_of_line`] does (blank lines skipped); `None` at the end.
    pub fn next_text(
        &mut self,
    ) -> Option<(
        u64,
        std::result::Result<std::borrow::Cow<'_, str>, RecordError>,
    )> {
        let (line_no, offset) = loop {
            if self.done {
                return None;
            }
            match self.next_line()? {
                Ok(at) if !crate::sources::jsonl::is_blank(&self.buf) => break at,
                Ok(_) => continue,
                Err(e) => return Some((self.line_no, Err(e))),
            }
        };
        // (Not blank, so the line gives a text or a record error.)
        let text = crate::sources::jsonl::text_of_line(&self.buf, offset, line_no)?;
        Some((line_no, text))
    }
}

impl Iterator for JsonlReader {
    type Item = (u64, RecordResult);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let (line_no, offset) = match self.next_line()? {
                Ok(x) => x,
                Err(e) => return Some((self.line_no, Err(e))),
            };
            match crate::sources::jsonl::document_of_line(&self.buf, offset, line_no) {
                Some(parsed) => return Some((line_no, parsed)),
                None => continue,
            }
        }
    }
}

/// Writes documents as a `.jsonl.zst` shard under a temporary name; [`ShardWriter::finish`]
/// fsyncs it and renames it into place, so a crash never leaves a half-written shard.
pub struct ShardWriter {
    final_path: PathBuf,
    tmp_path: PathBuf,
    encoder: Option<zstd::stream::write::Encoder<'static, HashingWriter<BufWriter<File>>>>,
    docs: u64,
}

/// Counts and hashes (xxh3-64) the bytes written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: xxhash_rust::xxh3::Xxh3,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What a finished shard looks like on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardFile {
    /// File name inside its folder.
    pub file: String,
    /// Size in bytes.
    pub bytes: u64,
    /// xxh3-64 of the file's bytes, as 16 hex digits.
    pub xxh3: String,
    /// Number of documents in it.
    pub docs: u64,
}

/// zstd level used for every shard: fast, and deterministic for a given input.
pub const ZSTD_LEVEL: i32 = 3;

/// The temporary name a file is written under before it is renamed to `path`.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

impl ShardWriter {
    /// Starts a shard that will appear at `path` once finished.
    pub fn create(path: &Path) -> Result<Self> {
        Self::with_buffer(path, 1 << 20)
    }

    /// Like [`ShardWriter::create`] with a small buffer, for the many side outputs of a shard.
    pub fn create_small(path: &Path) -> Result<Self> {
        Self::with_buffer(path, 64 << 10)
    }

    fn with_buffer(path: &Path, buffer: usize) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let tmp_path = temp_path(path);
        let file = File::create(&tmp_path).map_err(|e| io_error(path, e, "creating the shard"))?;
        let sink = HashingWriter {
            inner: BufWriter::with_capacity(buffer, file),
            hasher: xxhash_rust::xxh3::Xxh3::new(),
            bytes: 0,
        };
        let encoder = zstd::stream::write::Encoder::new(sink, ZSTD_LEVEL)?;
        Ok(ShardWriter {
            final_path: path.to_path_buf(),
            tmp_path,
            encoder: Some(encoder),
            docs: 0,
        })
    }

    /// Appends one document as a JSON line.
    pub fn write(&mut self, doc: &Document) -> Result<()> {
        let enc = self
            .encoder
            .as_mut()
            .context("shard writer already finished")?;
        let written = serde_json::to_writer(&mut *enc, doc)
            .map_err(std::io::Error::from)
            .and_then(|()| enc.write_all(b"\n"));
        if let Err(e) = written {
            return Err(io_error(&self.final_path, e, "writing the shard"));
        }
        self.docs += 1;
        Ok(())
    }

    /// Number of documents written so far.
    pub fn docs(&self) -> u64 {
        self.docs
    }

    /// Ends the zstd frame, fsyncs, renames into place and returns what was written.
    pub fn finish(mut self) -> Result<ShardFile> {
        let enc = self
            .encoder
            .take()
            .context("shard writer already finished")?;
        let finished = enc.finish().and_then(|mut sink| {
            sink.flush()?;
            let HashingWriter {
                inner,
                hasher,
                bytes,
            } = sink;
            let file = inner.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            Ok((hasher, bytes))
        });
        let (hasher, bytes) = match finished {
            Ok(done) => done,
            Err(e) => {
                // Never leave a half-written shard behind, even under its temporary name.
                let _ = std::fs::remove_file(&self.tmp_path);
                return Err(io_error(&self.final_path, e, "finishing the shard"));
            }
        };
        std::fs::rename(&self.tmp_path, &self.final_path).with_context(|| {
            format!(
                "cannot rename {} to {}",
                self.tmp_path.display(),
                self.final_path.display()
            )
        })?;
        sync_parent(&self.final_path)?;
        Ok(ShardFile {
            file: file_name(&self.final_path),
            bytes,
            xxh3: format!("{:016x}", hasher.digest()),
            docs: self.docs,
        })
    }
}

impl Drop for ShardWriter {
    fn drop(&mut self) {
        if self.encoder.is_some() {
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

/// The file name of a path as a string (empty if it has none).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The entries of a folder, sorted by path, without hidden (dot) names: the deterministic
/// listing every folder walk uses.
pub fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !file_name(p).starts_with('.'))
        .collect();
    entries.sort();
    Ok(entries)
}

/// Linux `EDQUOT`: the user's disk quota is used up (common on cluster filesystems).
const EDQUOT: i32 = 122;

/// True when an I/O error says the disk is full (`ENOSPC`) or the disk quota is used up
/// (`EDQUOT`).
pub fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || matches!(e.raw_os_error(), Some(28 | EDQUOT))
}

/// An I/O error on `path` while `doing` something, as a clear message: a full disk (or used-up
/// quota) says so and what to do about it.
pub fn io_error(path: &Path, e: std::io::Error, doing: &str) -> anyhow::Error {
    if is_disk_full(&e) {
        let what = if e.raw_os_error() == Some(EDQUOT) {
            "disk quota exceeded (Disk quota exceeded)"
        } else {
            "disk full (No space left on device)"
        };
        anyhow::anyhow!(
            "{}: {what} while {doing}; free space and rerun: finished shards are kept",
            path.display()
        )
    } else {
        anyhow::Error::new(e).context(format!("{}: I/O error while {doing}", path.display()))
    }
}

/// Writes `bytes` to `path` atomically: temp name, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = temp_path(path);
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(path, e, "writing it"));
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    sync_parent(path)
}

/// Fsyncs the folder holding `path`, so that a rename into it survives a crash.
pub fn sync_parent(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot fsync folder {}", dir.display()))
}

/// xxh3-64 of a file's bytes, as 16 hex digits.
pub fn file_xxh3(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:016x}", h.digest()))
}

/// Reads every document of a datamill shard into memory (tests and small tools only).
pub fn read_shard(path: &Path) -> Result<Vec<Document>> {
    JsonlReader::open(path)?
        .map(|(_, r)| r.map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_or_used_up_quota_is_a_clear_message_naming_the_file() {
        let path = Path::new("out/00003.jsonl.zst");
        let full = io_error(
            path,
            std::io::Error::from_raw_os_error(28),
            "writing the shard",
        );
        assert_eq!(
            full.to_string(),
            "out/00003.jsonl.zst: disk full (No space left on device) while writing the shard; \
             free space and rerun: finished shards are kept"
        );
        let quota = io_error(
            path,
            std::io::Error::from_raw_os_error(122),
            "writing the shard",
        );
        assert!(
            quota
                .to_string()
                .starts_with("out/00003.jsonl.zst: disk quota exceeded"),
            "{quota}"
        );
        let other = io_error(
            path,
            std::io::Error::from_raw_os_error(5),
            "writing the shard",
        );
        let shown = format!("{other:#}");
        assert!(
            shown.starts_with("out/00003.jsonl.zst: I/O error while writing the shard")
                && !shown.contains("disk"),
            "{shown}"
        );
    }

    #[test]
    fn shard_round_trip_keeps_field_order_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl.zst");
        let mut w = ShardWriter::create(&path).unwrap();
        let doc = Document::new("x:0", "héllo\nworld", "web").with("url", "http://e.x/");
        w.write(&doc).unwrap();
        let info = w.finish().unwrap();
        assert_eq!(info.docs, 1);
        assert!(!temp_path(&path).exists());
        assert_eq!(file_xxh3(&path).unwrap(), info.xxh3);
        let back = read_shard(&path).unwrap();
        assert_eq!(back, vec![doc]);
        let raw = zstd::decode_all(File::open(&path).unwrap()).unwrap();
        assert!(String::from_utf8(raw)
            .unwrap()
            .starts_with(r#"{"id":"x:0","text":"héllo\nworld","source":"web","metadata":{"url""#));
    }

    #[test]
    fn jsonl_reader_reports_bad_lines_with_offsets_and_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(
            &path,
            "{\"text\":\"a\",\"url\":\"u\"}\nnot json\n\n{\"id\":7,\"text\":\"b\"}\n{\"x\":1}",
        )
        .unwrap();
        let items: Vec<_> = JsonlReader::open(&path).unwrap().collect();
        assert_eq!(items.len(), 4);
        let first = items[0].1.as_ref().unwrap();
        assert_eq!(first.meta_str("url"), Some("u"));
        let bad = items[1].1.as_ref().unwrap_err();
        assert_eq!((bad.offset, bad.reason.as_str()), (23, "bad_json"));
        assert_eq!(items[2].1.as_ref().unwrap().id, "7");
        assert_eq!(items[3].1.as_ref().unwrap_err().reason, "missing_text");
    }

    #[test]
    fn truncated_gzip_is_a_fatal_record_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for i in 0..2000 {
            writeln!(enc, "{{\"text\":\"document number {i} with some words\"}}").unwrap();
        }
        let bytes = enc.finish().unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let items: Vec<_> = JsonlReader::open(&path).unwrap().collect();
        let last = items.last().unwrap().1.as_ref().unwrap_err();
        assert!(last.fatal, "{last:?}");
        assert!(items.len() > 10);
    }
}

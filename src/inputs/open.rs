//! Turning an [`InputItem`] into a reader's records: a whole local file by its path (the
//! reader's own, fastest way), a range or a URL as a byte stream. A reader that needs random
//! access reads a URL from a temporary local copy, removed when its records are dropped.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{ByteRange, InputItem, Location, RangeKind};
use crate::doc::{compression_of, decompress, Compression};
use crate::download::stream::{
    remote_unchanged, RemoteOptions, RemoteReader, StreamReport, Validators,
};
use crate::download::RetryPolicy;
use crate::run::config::RemoteConfig;
use crate::sources::{InputStream, Reader, Records};

/// How this task fetches URL inputs: its share (one of `world`) of the run's global rate
/// limit and connection cap.
pub fn remote_options(cfg: &RemoteConfig, world: usize) -> Result<RemoteOptions> {
    let world = world.max(1);
    let secs = |s: f64, what: &str| {
        if s.is_finite() && s >= 0.0 {
            Ok(Duration::from_secs_f64(s))
        } else {
            bail!("[input.remote] {what} must be a number of seconds, got {s}")
        }
    };
    RemoteOptions::new(
        secs(cfg.timeout_secs, "timeout_secs")?,
        RetryPolicy {
            max_attempts: cfg.max_attempts,
            base_delay: secs(cfg.retry_base_secs, "retry_base_secs")?,
            max_delay: secs(cfg.retry_max_secs, "retry_max_secs")?,
        },
        cfg.rate_limit_mb.map(|r| r * 1e6 / world as f64),
        (cfg.max_connections / world).max(1),
    )
    .context("[input.remote]")
}

/// The records of one item and, for a URL, what its stream reports (bytes read, the
/// response's validators, why it gave up).
pub struct OpenedItem {
    /// The reader's records.
    pub records: Records,
    /// The stream of a URL input.
    pub remote: Option<Arc<StreamReport>>,
}

/// Opens `item` for `reader`; `scratch` holds temporary local copies.
pub fn read_item(
    reader: &dyn Reader,
    item: &InputItem,
    source: &str,
    remote: &RemoteOptions,
    scratch: &Path,
) -> Result<OpenedItem> {
    let local = |records| OpenedItem {
        records,
        remote: None,
    };
    match (&item.location, &item.range) {
        (Location::File(path), None) => Ok(local(reader.read_named(path, &item.name, source)?)),
        (Location::File(path), Some(range)) => {
            let stream = range_stream(path, &item.name, range)?;
            Ok(local(reader.read_stream(stream, source)?))
        }
        (Location::Url(url), None) => {
            let body = RemoteReader::open(url, remote)?;
            let report = body.report();
            let records = if reader.reads_streams() {
                let compression = compression_of(Path::new(&item.name));
                let data = decompress(BufReader::with_capacity(1 << 16, body), compression)
                    .with_context(|| format!("{url}: not a zstd stream"))?;
                let stream = InputStream {
                    name: item.name.clone(),
                    folder: url_folder(url),
                    data,
                    compression,
                    lines_before: 0,
                    offset: 0,
                };
                reader.read_stream(stream, source)?
            } else {
                read_local_copy(reader, item, body, &report, source, scratch)?
            };
            Ok(OpenedItem {
                records,
                remote: Some(report),
            })
        }
        (Location::Url(url), Some(_)) => bail!("{url}: ranges of URLs are not read"),
    }
}

/// Bytes `start..end` of a local file.
fn file_slice(path: &Path, start: u64, end: u64) -> Result<BufReader<std::io::Take<File>>> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    f.seek(SeekFrom::Start(start))
        .with_context(|| format!("cannot seek to byte {start} of {}", path.display()))?;
    Ok(BufReader::with_capacity(
        1 << 16,
        f.take(end.saturating_sub(start)),
    ))
}

/// A range of a local file as the stream the reader reads.
fn range_stream(path: &Path, name: &str, range: &ByteRange) -> Result<InputStream> {
    let folder = path
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    let body = file_slice(path, range.start, range.end)?;
    let (data, compression, lines_before, offset): (Box<dyn Read + Send>, _, _, _) =
        match range.kind {
            RangeKind::Lines { lines_before } => (Box::new(body), None, lines_before, range.start),
            RangeKind::Bz2Streams { header_end, last } => {
                let header = bzip2::bufread::MultiBzDecoder::new(file_slice(path, 0, header_end)?);
                let pages = bzip2::bufread::MultiBzDecoder::new(body);
                let end: &'static [u8] = if last { b"" } else { b"</mediawiki>\n" };
                (
                    Box::new(header.chain(pages).chain(end)),
                    Some(Compression::Bzip2),
                    0,
                    0,
                )
            }
        };
    Ok(InputStream {
        name: name.to_string(),
        folder,
        data,
        compression,
        lines_before,
        offset,
    })
}

/// The last folder of a URL's path (`de` of `https://h/dumps/de/wiki.xml.bz2`).
fn url_folder(url: &str) -> Option<String> {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.split_once('/')?.1;
    let path = path.split(['?', '#']).next().unwrap_or(path);
    path.rsplit('/')
        .nth(1)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Copies a URL to a temporary folder under `scratch` and reads the copy; the folder goes
/// when the records are dropped.
fn read_local_copy(
    reader: &dyn Reader,
    item: &InputItem,
    mut body: RemoteReader,
    report: &StreamReport,
    source: &str,
    scratch: &Path,
) -> Result<Records> {
    std::fs::create_dir_all(scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    let dir = tempfile::Builder::new()
        .prefix(".input-")
        .tempdir_in(scratch)
        .with_context(|| format!("cannot make a temporary folder in {}", scratch.display()))?;
    // The file keeps its name and its folder's name (a Stack Exchange site is named by it).
    let mut tail: Vec<&str> = item.name.rsplit('/').take(2).collect();
    tail.reverse();
    let copy = tail.iter().fold(dir.path().to_path_buf(), |p, c| p.join(c));
    if let Some(parent) = copy.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut out =
        File::create(&copy).with_context(|| format!("cannot create {}", copy.display()))?;
    if let Err(e) = std::io::copy(&mut body, &mut out) {
        match report.failure() {
            Some(f) => bail!("{f}"),
            None => bail!("cannot copy {} to {}: {e}", item.label(), copy.display()),
        }
    }
    drop(out);
    let records = reader.read_named(&copy, &item.name, source)?;
    Ok(Box::new(WithTempCopy { records, _dir: dir }))
}

/// Records read from a temporary copy, removed with them.
struct WithTempCopy {
    records: Records,
    _dir: tempfile::TempDir,
}

impl Iterator for WithTempCopy {
    type Item = crate::doc::RecordResult;
    fn next(&mut self) -> Option<Self::Item> {
        self.records.next()
    }
}

/// Whether URL inputs are still the files a complete shard was made from; each URL is asked
/// once per process (one conditional request).
pub struct RemoteFreshness {
    remote: Option<RemoteOptions>,
    known: Mutex<HashMap<String, bool>>,
}

impl RemoteFreshness {
    /// Checks with `remote`, or (`None`) takes every complete shard as fresh without asking.
    pub fn new(remote: Option<RemoteOptions>) -> Self {
        RemoteFreshness {
            remote,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `url` still has the `recorded` validators; a failed check counts as changed.
    pub fn unchanged(&self, url: &str, recorded: &Validators) -> bool {
        let Some(remote) = &self.remote else {
            return true;
        };
        if let Some(&v) = self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(url)
        {
            return v;
        }
        let v = match remote_unchanged(url, remote, recorded) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("{e:#}; its shard is made again");
                false
            }
        };
        if !v {
            tracing::info!("{url} changed since its shard was made; making it again");
        }
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(url.to_string(), v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_task_gets_its_share_of_the_global_limits() {
        let cfg = RemoteConfig {
            rate_limit_mb: Some(8.0),
            max_connections: 10,
            ..RemoteConfig::default()
        };
        let one = remote_options(&cfg, 1).unwrap();
        assert_eq!(
            (one.bytes_per_sec(), one.max_connections()),
            (Some(8e6), 10)
        );
        let four = remote_options(&cfg, 4).unwrap();
        assert_eq!(
            (four.bytes_per_sec(), four.max_connections()),
            (Some(2e6), 2)
        );
        let many = remote_options(&cfg, 64).unwrap();
        assert_eq!(many.max_connections(), 1, "at least one connection");
        let unlimited = remote_options(&RemoteConfig::default(), 4).unwrap();
        assert_eq!(unlimited.bytes_per_sec(), None);
    }

    #[test]
    fn url_folders() {
        assert_eq!(
            url_folder("https://h/dumps/de/wiki.xml.bz2").as_deref(),
            Some("de")
        );
        assert_eq!(url_folder("https://h/wiki.xml.bz2"), None);
        assert_eq!(url_folder("https://h/a/b.gz?x=/y").as_deref(), Some("a"));
    }
}

//! The inputs of a run as one list: local files, HTTP(S) URLs and byte ranges of big files are
//! all [`InputItem`]s, with one ordering, one naming and one split over ranks.
//!
//! - [`input_list`] builds the list from `[input]`: `paths` (files, folders, globs, URLs) and
//!   `path_list` + `base_url`, then cuts big files into ranges (`split_bytes`, see [`split`]).
//! - The list is sorted by location (files before URLs, files in path order) and then by the
//!   range's first byte, so a shard's number is its item's position and a split file's ranges
//!   keep the order of its documents.
//! - [`items_for_rank`] gives rank `r` of `w` every `w`-th item, as for plain files.
//! - Each item has a name used in document ids ([`InputItem::name`]: the path relative to the
//!   input root, or to `base_url`) and a label for logs, stats and manifests that says file and
//!   range ([`InputItem::label`]).
//! - [`open`] turns an item into the records of a reader: whole local files by path, ranges and
//!   URLs as a byte stream (a reader that needs random access gets a temporary local copy).

pub mod open;
pub mod split;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::download::paths::{parse_path_list, read_path_list, url_for};
use crate::run::config::InputConfig;
use crate::run::input_names::input_names;

/// Where an input's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Location {
    /// A local file.
    File(PathBuf),
    /// An `http://` or `https://` URL.
    Url(String),
}

impl Location {
    /// The path or URL as text (what manifests record as `input`).
    pub fn as_string(&self) -> String {
        match self {
            Location::File(p) => p.to_string_lossy().into_owned(),
            Location::Url(u) => u.clone(),
        }
    }
}

/// What a range of a big file holds, so that it reads as the whole file would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RangeKind {
    /// Whole lines of a plain JSONL file; `lines_before` lines precede the range, so line
    /// numbers (and ids made from them) are those of the whole file.
    Lines {
        /// Lines in the file before the range's first byte.
        lines_before: u64,
    },
    /// Whole bz2 streams of a multistream MediaWiki dump. The dump's first stream (bytes
    /// `0..header_end`: `<mediawiki>` and `<siteinfo>`) is read before the range, and
    /// `</mediawiki>` after it unless the range holds the dump's end.
    Bz2Streams {
        /// End of the dump's first stream.
        header_end: u64,
        /// The range ends at the end of the dump.
        last: bool,
    },
}

/// Bytes `start..end` of an input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// How to read it.
    #[serde(flatten)]
    pub kind: RangeKind,
}

/// One input of a run: a whole file or URL, or a range of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputItem {
    /// Where the bytes are.
    pub location: Location,
    /// The name in document ids: the path relative to the input root (local files) or to
    /// `base_url` / the URL's folder (URLs), `/`-separated, so a local mirror of the same
    /// files gives the same ids.
    pub name: String,
    /// The part of the input this item reads; `None`: all of it.
    pub range: Option<ByteRange>,
    /// Size in bytes of the file (or of the range), when known before reading (URLs: no).
    pub bytes: Option<u64>,
}

impl InputItem {
    /// A whole local file named `name` in ids.
    pub fn file(path: impl Into<PathBuf>, name: impl Into<String>) -> Self {
        let path = path.into();
        let bytes = std::fs::metadata(&path).ok().map(|m| m.len());
        InputItem {
            location: Location::File(path),
            name: name.into(),
            range: None,
            bytes,
        }
    }

    /// A whole remote file named `name` in ids.
    pub fn url(url: impl Into<String>, name: impl Into<String>) -> Self {
        InputItem {
            location: Location::Url(url.into()),
            name: name.into(),
            range: None,
            bytes: None,
        }
    }

    /// The item as shown in logs, stats, quarantine records and failures: its path or URL,
    /// with `@START-END` for a range (`dumps/enwiki.xml.bz2@1048576-2097152`).
    pub fn label(&self) -> String {
        match &self.range {
            None => self.location.as_string(),
            Some(r) => format!("{}@{}-{}", self.location.as_string(), r.start, r.end),
        }
    }

    /// The local file, if the item is (a range of) one.
    pub fn local_path(&self) -> Option<&Path> {
        match &self.location {
            Location::File(p) => Some(p),
            Location::Url(_) => None,
        }
    }

    /// Whether the item is read over the network.
    pub fn is_remote(&self) -> bool {
        matches!(self.location, Location::Url(_))
    }

    /// Files before URLs; both compared folder by folder (so a URL list and the same files
    /// in a local mirror come in the same order), then ranges by their first byte.
    fn sort_key(&self) -> (bool, Vec<&[u8]>, u64) {
        let parts: Vec<&[u8]> = match &self.location {
            Location::File(p) => p
                .components()
                .map(|c| c.as_os_str().as_encoded_bytes())
                .collect(),
            Location::Url(u) => u.split('/').map(str::as_bytes).collect(),
        };
        (
            self.is_remote(),
            parts,
            self.range.as_ref().map_or(0, |r| r.start),
        )
    }
}

/// Whether an input pattern is a URL.
pub fn is_url(pattern: &str) -> bool {
    pattern.starts_with("http://") || pattern.starts_with("https://")
}

/// The run's inputs, sorted, and the lines of a path list that were refused.
#[derive(Debug, Clone, Default)]
pub struct InputList {
    /// Every input of the run, in shard order.
    pub items: Vec<InputItem>,
    /// Path-list lines that could not be used (`line N: reason: text`).
    pub refused: Vec<String>,
}

/// Builds the run's input list from `[input]` (`paths`, `path_list`, `base_url`,
/// `split_bytes`). Local patterns that match nothing are reported and skipped; refused lines
/// of a path list are listed in [`InputList::refused`]. Every rank builds the same list.
pub fn input_list(input: &InputConfig) -> Result<InputList> {
    let mut list = InputList::default();
    let (urls, patterns): (Vec<&String>, Vec<&String>) =
        input.paths.iter().partition(|p| is_url(p));
    let patterns: Vec<String> = patterns.into_iter().cloned().collect();
    let files = expand_inputs(&patterns)?;
    let names = input_names(&patterns, &files);
    list.items.extend(
        files
            .into_iter()
            .zip(names)
            .map(|(f, n)| InputItem::file(f, n)),
    );
    for url in urls {
        let name = match &input.base_url {
            Some(base) if is_url(base) => url_name(url, Some(base)),
            _ => url_name(url, None),
        };
        list.items.push(InputItem::url(url.clone(), name));
    }
    if let Some(path_list) = &input.path_list {
        let base = input
            .base_url
            .as_deref()
            .context("`path_list` needs `base_url` (a URL, or a local folder holding a mirror)")?;
        let parsed = if is_url(path_list) {
            let remote = open::remote_options(&input.remote, 1)?;
            let reader = crate::download::stream::RemoteReader::open(path_list, &remote)?;
            let raw = std::io::BufReader::new(reader);
            parse_path_list(crate::download::paths::maybe_gunzip(raw)?)
                .with_context(|| format!("cannot read path list {path_list}"))?
        } else {
            read_path_list(Path::new(path_list))?
        };
        for bad in &parsed.invalid {
            list.refused.push(format!(
                "{path_list} line {}: {}: {:?}",
                bad.line, bad.reason, bad.text
            ));
        }
        for p in parsed.paths {
            list.items.push(if is_url(base) {
                InputItem::url(url_for(base, &p), p)
            } else {
                InputItem::file(Path::new(base).join(&p), p)
            });
        }
    }
    if let Some(bytes) = &input.split_bytes {
        let limit = parse_bytes(bytes)?;
        let mut split_items = Vec::with_capacity(list.items.len());
        for item in list.items {
            split_items.extend(split::split_item(item, &input.reader, limit)?);
        }
        list.items = split_items;
    }
    list.items.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    list.items
        .dedup_by(|a, b| a.location == b.location && a.range == b.range);
    Ok(list)
}

/// The name in ids of a URL: its path relative to `base` when it starts with it, else its
/// last path segment (relative to the URL's folder).
pub fn url_name(url: &str, base: Option<&str>) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    if let Some(base) = base {
        let base = base.trim_end_matches('/');
        if let Some(rest) = path.strip_prefix(base).and_then(|r| r.strip_prefix('/')) {
            if !rest.is_empty() {
                return rest.to_string();
            }
        }
    }
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// Parses a size: a number of bytes, or with `KB`, `MB`, `GB`, `TB` (powers of 1000) or
/// `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num
        .parse()
        .with_context(|| format!("bad size {text:?}: expected e.g. \"1GB\" or \"512MiB\""))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => bail!("bad size {text:?}: unknown unit {other:?}"),
    };
    let bytes = (num * mult).round();
    if !(bytes >= 1.0 && bytes.is_finite()) {
        bail!("bad size {text:?}: must be at least one byte");
    }
    Ok(bytes as u64)
}

/// Expands local paths, folders (recursive) and globs into a sorted, de-duplicated file list.
/// A pattern matching nothing is reported and skipped.
pub fn expand_inputs(patterns: &[String]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for pat in patterns {
        let p = Path::new(pat);
        if p.is_dir() {
            collect_dir(p, &mut files)?;
            continue;
        }
        if p.is_file() {
            files.push(p.to_path_buf());
            continue;
        }
        let mut matched = 0;
        for entry in glob::glob(pat).with_context(|| format!("bad glob pattern `{pat}`"))? {
            match entry {
                Ok(path) if path.is_file() => {
                    files.push(path);
                    matched += 1;
                }
                Ok(path) if path.is_dir() => {
                    matched += collect_dir(&path, &mut files)?;
                }
                Ok(_) => {}
                Err(e) => tracing::error!("{}: cannot read: {}", e.path().display(), e.error()),
            }
        }
        if matched == 0 {
            tracing::error!("input `{pat}` matches no file; going on with the others");
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> Result<usize> {
    let mut n = 0;
    for p in crate::doc::sorted_entries(dir)? {
        let name = crate::doc::file_name(&p);
        if p.is_dir() {
            n += collect_dir(&p, out)?;
        } else if p.is_file() && !name.ends_with(".md") {
            out.push(p);
            n += 1;
        }
    }
    Ok(n)
}

/// The items rank `rank` of `world` takes, with their shard numbers: every `world`-th item of
/// the list.
pub fn items_for_rank(all: &[InputItem], rank: usize, world: usize) -> Vec<(u32, &InputItem)> {
    all.iter()
        .enumerate()
        .filter(|(i, _)| i % world.max(1) == rank)
        .map(|(i, item)| (i as u32, item))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_decimal_and_binary_units() {
        assert_eq!(parse_bytes("1GB").unwrap(), 1_000_000_000);
        assert_eq!(parse_bytes("1.5 MB").unwrap(), 1_500_000);
        assert_eq!(parse_bytes("2KiB").unwrap(), 2048);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("1 parsec").is_err());
    }

    #[test]
    fn url_names_are_relative_to_the_base_or_the_folder() {
        let base = "https://data.commoncrawl.org/";
        let url = "https://data.commoncrawl.org/crawl-data/CC/x.warc.wet.gz";
        assert_eq!(url_name(url, Some(base)), "crawl-data/CC/x.warc.wet.gz");
        assert_eq!(url_name(url, None), "x.warc.wet.gz");
        assert_eq!(url_name("http://h/a/b.gz?sig=1", None), "b.gz");
        assert_eq!(url_name("http://other/b.gz", Some(base)), "b.gz");
    }

    #[test]
    fn ranges_sort_after_their_file_by_first_byte_and_labels_say_the_range() {
        let range = |start, end| ByteRange {
            start,
            end,
            kind: RangeKind::Lines { lines_before: 0 },
        };
        let mut items = vec![
            InputItem {
                range: Some(range(10, 20)),
                ..InputItem::file("b.jsonl", "b.jsonl")
            },
            InputItem::url("http://h/a.gz", "a.gz"),
            InputItem::url("http://h/a-b/c.gz", "a-b/c.gz"),
            InputItem::url("http://h/a/c.gz", "a/c.gz"),
            InputItem {
                range: Some(range(0, 10)),
                ..InputItem::file("b.jsonl", "b.jsonl")
            },
            InputItem::file("a.jsonl", "a.jsonl"),
        ];
        items.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        let labels: Vec<String> = items.iter().map(InputItem::label).collect();
        assert_eq!(
            labels,
            [
                "a.jsonl",
                "b.jsonl@0-10",
                "b.jsonl@10-20",
                "http://h/a/c.gz",
                "http://h/a-b/c.gz",
                "http://h/a.gz"
            ]
        );
        let mine: Vec<u32> = items_for_rank(&items, 1, 2).iter().map(|x| x.0).collect();
        assert_eq!(mine, [1, 3, 5]);
    }
}

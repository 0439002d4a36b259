//! The Common Crawl style path list: one relative path per line, plain text or gzipped.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path};

use anyhow::{Context, Result};
use flate2::bufread::MultiGzDecoder;

/// A line of the list that cannot be used as a destination path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPath {
    /// 1-based line number in the (decompressed) list.
    pub line: u64,
    /// The line as written.
    pub text: String,
    /// Why it was refused.
    pub reason: &'static str,
}

/// The usable paths of a list, in list order without repeats, and the refused lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathList {
    /// Relative paths, `/`-separated as in the list.
    pub paths: Vec<String>,
    /// Lines refused as unsafe or malformed.
    pub invalid: Vec<InvalidPath>,
    /// Lines that repeated an earlier path (fetched once).
    pub duplicates: u64,
}

/// Opens a file and undoes gzip when its first two bytes are the gzip magic, whatever its name.
pub fn open_maybe_gzipped(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    maybe_gunzip(BufReader::with_capacity(1 << 16, file))
        .with_context(|| format!("cannot read {}", path.display()))
}

/// Undoes gzip when the stream starts with the gzip magic.
pub fn maybe_gunzip<R: BufRead + Send + 'static>(mut raw: R) -> Result<Box<dyn BufRead + Send>> {
    let head = raw.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::new(MultiGzDecoder::new(raw)))
    } else {
        Box::new(raw)
    })
}

/// Reads a path list (plain or gzipped). Blank lines and lines starting with `#` are skipped;
/// surrounding whitespace (and a CR) is trimmed.
pub fn read_path_list(list: &Path) -> Result<PathList> {
    let input = open_maybe_gzipped(list)?;
    parse_path_list(input).with_context(|| format!("cannot read path list {}", list.display()))
}

/// Parses a path list from any reader (see [`read_path_list`]).
pub fn parse_path_list(input: impl Read) -> Result<PathList> {
    let mut out = PathList::default();
    let mut seen = std::collections::HashSet::new();
    let mut reader = BufReader::new(input);
    let mut raw = Vec::new();
    let mut line_no = 0u64;
    loop {
        raw.clear();
        if reader.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        line_no += 1;
        let text = String::from_utf8_lossy(&raw);
        let line = text.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let refuse = |reason| InvalidPath {
            line: line_no,
            text: line.to_string(),
            reason,
        };
        if std::str::from_utf8(&raw).is_err() {
            out.invalid.push(refuse("not_utf8"));
        } else if let Err(reason) = check_relative_path(line) {
            out.invalid.push(refuse(reason));
        } else if seen.insert(line.to_string()) {
            out.paths.push(line.to_string());
        } else {
            out.duplicates += 1;
        }
    }
    Ok(out)
}

/// Accepts only paths that stay inside the destination folder: relative, no `..` or `.`
/// component, no empty component, no backslash, no `.part` suffix (reserved for partial files),
/// not the manifest's own name.
pub fn check_relative_path(path: &str) -> std::result::Result<(), &'static str> {
    if path.starts_with('/') {
        return Err("absolute_path");
    }
    if path.contains('\\') || path.contains('\0') {
        return Err("bad_character");
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("bad_component");
    }
    if path.ends_with(super::PART_SUFFIX) {
        return Err("part_suffix");
    }
    if path == super::manifest::MANIFEST_NAME {
        return Err("reserved_name");
    }
    if !Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err("bad_component");
    }
    Ok(())
}

/// The URL of `path` under `base_url` (exactly one `/` between them).
pub fn url_for(base_url: &str, path: &str) -> String {
    format!("{}/{}", base_url.trim_end_matches('/'), path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_skips_and_refuses() {
        let list = "# comment\ncrawl-data/a/b.warc.wet.gz\r\n\n  crawl-data/c.gz  \n\
                    /etc/passwd\ncrawl-data/../x\ncrawl-data/a/b.warc.wet.gz\nx//y\nfile.part\n\
                    download-manifest.json\n";
        let got = parse_path_list(list.as_bytes()).unwrap();
        assert_eq!(got.paths, ["crawl-data/a/b.warc.wet.gz", "crawl-data/c.gz"]);
        assert_eq!(got.duplicates, 1);
        let reasons: Vec<_> = got.invalid.iter().map(|i| (i.line, i.reason)).collect();
        assert_eq!(
            reasons,
            [
                (5, "absolute_path"),
                (6, "bad_component"),
                (8, "bad_component"),
                (9, "part_suffix"),
                (10, "reserved_name")
            ]
        );
    }

    #[test]
    fn joins_urls() {
        assert_eq!(url_for("http://h/x/", "a/b"), "http://h/x/a/b");
        assert_eq!(url_for("http://h/x", "a/b"), "http://h/x/a/b");
    }
}

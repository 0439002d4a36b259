//! Cutting one big local file into ranges that run as shards of their own (`split_bytes`):
//! a plain JSONL file at line ends, a multistream MediaWiki dump (`.xml.bz2`) at bz2 streams.
//! Anything else (a single-stream compressed file, a Stack Exchange `Posts.xml`, a URL) is
//! read whole.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{ByteRange, InputItem, Location, RangeKind};
use crate::doc::{compression_of, Compression};

/// Bytes scanned per read while looking for line ends.
const SCAN_CHUNK: usize = 1 << 20;

/// The ranges `item` is read as with ranges of about `limit` bytes: itself when it is not a
/// local file the `reader` can read in ranges, or not larger than `limit`.
pub fn split_item(item: InputItem, reader: &str, limit: u64) -> Result<Vec<InputItem>> {
    let (Location::File(path), None, Some(size)) = (&item.location, &item.range, item.bytes) else {
        return Ok(vec![item]);
    };
    if size <= limit {
        return Ok(vec![item]);
    }
    let ranges = match (reader, compression_of(path)) {
        ("jsonl", None) => line_ranges(path, size, limit)?,
        ("wikipedia", Some(Compression::Bzip2)) => stream_ranges(path, size, limit)?,
        _ => Vec::new(),
    };
    if ranges.len() < 2 {
        return Ok(vec![item]);
    }
    Ok(ranges
        .into_iter()
        .map(|r| InputItem {
            bytes: Some(r.end - r.start),
            range: Some(r),
            ..item.clone()
        })
        .collect())
}

/// Ranges of about `limit` bytes of a plain text file, each ending just after a `\n` (or at
/// the end of the file), with the number of lines before each. One pass over the file.
pub fn line_ranges(path: &Path, size: u64, limit: u64) -> Result<Vec<ByteRange>> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut buf = vec![0u8; SCAN_CHUNK];
    let mut ranges = Vec::new();
    let (mut start, mut lines_before, mut lines) = (0u64, 0u64, 0u64);
    let mut at = 0u64;
    loop {
        let len = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let chunk = &buf[..len];
        let mut off = 0usize;
        while off < len {
            // The first line end at or after byte `start + limit - 1` closes the range.
            let cut_from = (start + limit - 1).max(at + off as u64);
            if cut_from >= at + len as u64 {
                lines += count_lines(&chunk[off..]);
                break;
            }
            let from = (cut_from - at) as usize;
            lines += count_lines(&chunk[off..from]);
            match memchr::memchr(b'\n', &chunk[from..]) {
                Some(i) => {
                    let end = from + i + 1;
                    lines += 1;
                    let end_abs = at + end as u64;
                    ranges.push(ByteRange {
                        start,
                        end: end_abs,
                        kind: RangeKind::Lines { lines_before },
                    });
                    start = end_abs;
                    lines_before = lines;
                    off = end;
                }
                None => break,
            }
        }
        at += len as u64;
    }
    if at != size {
        anyhow::bail!(
            "{}: the file changed size while being split ({size} then {at} bytes)",
            path.display()
        );
    }
    if start < size {
        ranges.push(ByteRange {
            start,
            end: size,
            kind: RangeKind::Lines { lines_before },
        });
    }
    Ok(ranges)
}

fn count_lines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// The index beside a multistream dump: `X-multistream.xml.bz2` → `X-multistream-index.txt.bz2`.
pub fn index_path(dump: &Path) -> Option<PathBuf> {
    let name = dump.file_name()?.to_str()?;
    let stem = name.strip_suffix(".xml.bz2")?;
    Some(dump.with_file_name(format!("{stem}-index.txt.bz2")))
}

/// Start offsets of the bz2 streams of a dump, the first one 0: from its index (the offsets of
/// the page streams) when present, else by scanning for stream headers.
pub fn stream_starts(path: &Path) -> Result<Vec<u64>> {
    let mut starts = vec![0u64];
    match index_path(path).filter(|p| p.is_file()) {
        Some(index) => {
            let file =
                File::open(&index).with_context(|| format!("cannot open {}", index.display()))?;
            let lines = BufReader::new(bzip2::read::MultiBzDecoder::new(BufReader::new(file)));
            for (n, line) in lines.split(b'\n').enumerate() {
                let line = line.with_context(|| format!("cannot read {}", index.display()))?;
                if line.is_empty() {
                    continue;
                }
                let offset = line
                    .split(|&b| b == b':')
                    .next()
                    .and_then(|o| std::str::from_utf8(o).ok())
                    .and_then(|o| o.parse::<u64>().ok())
                    .with_context(|| {
                        format!("{} line {}: no `offset:id:title`", index.display(), n + 1)
                    })?;
                if starts.last().is_some_and(|&l| offset > l) {
                    starts.push(offset);
                } else if starts.last() != Some(&offset) {
                    anyhow::bail!(
                        "{} line {}: offset {offset} is not after the previous one",
                        index.display(),
                        n + 1
                    );
                }
            }
        }
        None => {
            let file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            // SAFETY: the dump is only read; a dump rewritten while it is scanned gives wrong
            // cut points, which the bz2 decoder of the ranges then reports as bad data.
            let map = unsafe { memmap2::Mmap::map(&file) }
                .with_context(|| format!("cannot map {}", path.display()))?;
            starts.extend(scan_stream_starts(&map).into_iter().filter(|&s| s > 0));
        }
    }
    Ok(starts)
}

/// Offsets where a bz2 stream with at least one block starts: `BZh1`..`BZh9` followed by the
/// block magic `1AY&SY` (π's digits), which are byte-aligned only at a stream's start.
pub fn scan_stream_starts(bytes: &[u8]) -> Vec<u64> {
    const BLOCK_MAGIC: &[u8] = &[0x31, 0x41, 0x59, 0x26, 0x53, 0x59];
    memchr::memmem::find_iter(bytes, BLOCK_MAGIC)
        .filter(|&i| {
            i >= 4 && bytes[i - 4..i - 1] == *b"BZh" && (b'1'..=b'9').contains(&bytes[i - 1])
        })
        .map(|i| (i - 4) as u64)
        .collect()
}

/// Ranges of whole bz2 streams of about `limit` bytes, after the dump's first stream (the
/// `<siteinfo>` every range is read with). The last stream (`</mediawiki>`) stays with the
/// one before it. Empty when the file is not a multistream dump.
pub fn stream_ranges(path: &Path, size: u64, limit: u64) -> Result<Vec<ByteRange>> {
    let starts = stream_starts(path)?;
    // A header stream, at least two page streams.
    if starts.len() < 3 {
        return Ok(Vec::new());
    }
    let header_end = starts[1];
    let cuts = &starts[1..starts.len() - 1];
    let mut ranges = Vec::new();
    let mut start = header_end;
    for &cut in &cuts[1..] {
        if cut - start >= limit {
            ranges.push((start, cut));
            start = cut;
        }
    }
    ranges.push((start, size));
    let n = ranges.len();
    Ok(ranges
        .into_iter()
        .enumerate()
        .map(|(i, (start, end))| ByteRange {
            start,
            end,
            kind: RangeKind::Bz2Streams {
                header_end,
                last: i + 1 == n,
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ranges_cut_after_line_ends_and_count_the_lines_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        let text = "aaaa\nbb\ncccccccc\nd\n\neeee";
        std::fs::write(&path, text).unwrap();
        let size = text.len() as u64;
        let ranges = line_ranges(&path, size, 5).unwrap();
        let parts: Vec<(&str, u64)> = ranges
            .iter()
            .map(|r| {
                let RangeKind::Lines { lines_before } = r.kind else {
                    panic!("not lines")
                };
                (&text[r.start as usize..r.end as usize], lines_before)
            })
            .collect();
        assert_eq!(
            parts,
            [("aaaa\n", 0), ("bb\ncccccccc\n", 1), ("d\n\neeee", 3)]
        );
        // A limit past the end gives one range; a limit of one byte, one range per line.
        assert_eq!(line_ranges(&path, size, 1000).unwrap().len(), 1);
        assert_eq!(line_ranges(&path, size, 1).unwrap().len(), 6);
    }

    #[test]
    fn stream_headers_are_found_only_with_a_block_magic() {
        let mut bytes = b"BZh91AY&SYxxxxBZh9".to_vec();
        bytes.extend_from_slice(b"junkBZh51AY&SYmore");
        assert_eq!(scan_stream_starts(&bytes), [0, 18 + 4]);
    }

    #[test]
    fn the_index_sits_beside_the_dump() {
        assert_eq!(
            index_path(Path::new("d/enwiki-1-pages-articles-multistream.xml.bz2")).unwrap(),
            Path::new("d/enwiki-1-pages-articles-multistream-index.txt.bz2")
        );
    }
}

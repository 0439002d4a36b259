//! Expected SHA-256 digests, read from a `sha256sum`-format file: `HEX  PATH` per line.

use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// Expected lowercase hex SHA-256 per relative path.
pub type Checksums = HashMap<String, String>;

/// Reads a checksum file (plain or gzipped) as written by `sha256sum`: 64 hex digits, one or
/// two spaces (a `*` binary marker is allowed), the path as in the path list. Blank lines and
/// `#` comments are skipped; any other malformed line is an error naming file and line.
pub fn read_checksums(file: &Path) -> Result<Checksums> {
    let input = super::paths::open_maybe_gzipped(file)?;
    parse_checksums(input).with_context(|| format!("bad checksum file {}", file.display()))
}

/// Parses checksum lines from any reader (see [`read_checksums`]).
pub fn parse_checksums(input: impl BufRead) -> Result<Checksums> {
    let mut out = Checksums::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("line {}", i + 1))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((hex, rest)) = line.split_once(' ') else {
            bail!("line {}: expected `SHA256  PATH`, got {line:?}", i + 1);
        };
        let path = rest.trim_start_matches(' ');
        let path = path.strip_prefix('*').unwrap_or(path);
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("line {}: {hex:?} is not a SHA-256 (64 hex digits)", i + 1);
        }
        if path.is_empty() {
            bail!("line {}: no path after the digest", i + 1);
        }
        out.insert(path.to_string(), hex.to_ascii_lowercase());
    }
    Ok(out)
}

/// SHA-256 of everything a reader yields, with the number of bytes hashed.
pub fn sha256_of(mut input: impl Read) -> std::io::Result<(Sha256, u64)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((h, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sha256sum_format() {
        let text = format!(
            "{}  a/b.gz\n# note\n{} *c d.txt\n",
            "AB".repeat(32),
            "01".repeat(32)
        );
        let got = parse_checksums(text.as_bytes()).unwrap();
        assert_eq!(got["a/b.gz"], "ab".repeat(32));
        assert_eq!(got["c d.txt"], "01".repeat(32));
        assert!(parse_checksums("abc  x\n".as_bytes()).is_err());
        assert!(parse_checksums("nospace\n".as_bytes()).is_err());
    }
}

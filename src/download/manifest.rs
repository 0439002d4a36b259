//! The download manifest: which files of DEST are complete, with size and SHA-256.
//!
//! One JSON file, `DEST/download-manifest.json`, rewritten atomically (temporary file, fsync,
//! rename). A file is listed only after it was verified and renamed to its final name, so a
//! rerun skips exactly the listed files whose final file still has the recorded size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::doc::write_atomic;

/// File name of the manifest inside DEST.
pub const MANIFEST_NAME: &str = "download-manifest.json";

/// Version written into the manifest; a different version is refused.
pub const MANIFEST_VERSION: u32 = 1;

/// One completed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// Size of the final file in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the final file.
    pub sha256: String,
    /// The URL it was fetched from.
    pub url: String,
    /// When it was completed (seconds since the Unix epoch).
    pub completed_unix: u64,
}

/// The manifest's content: completed files by relative path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// Completed files, keyed by the path as written in the path list.
    pub files: BTreeMap<String, ManifestEntry>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            version: MANIFEST_VERSION,
            files: BTreeMap::new(),
        }
    }
}

impl Manifest {
    /// Where the manifest of `dest` lives.
    pub fn path_in(dest: &Path) -> PathBuf {
        dest.join(MANIFEST_NAME)
    }

    /// Loads the manifest of `dest`, or an empty one when there is none yet.
    pub fn load(dest: &Path) -> Result<Self> {
        let path = Self::path_in(dest);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let m: Manifest = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a download manifest", path.display()))?;
        if m.version != MANIFEST_VERSION {
            bail!(
                "{}: manifest version {} (this datamill writes {MANIFEST_VERSION})",
                path.display(),
                m.version
            );
        }
        Ok(m)
    }

    /// Writes the manifest into `dest` atomically.
    pub fn save(&self, dest: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        write_atomic(&Self::path_in(dest), &bytes)
    }

    /// The entry of `path` if the final file is still there with the recorded size and, when an
    /// expected digest is given, the recorded digest equals it.
    pub fn complete_entry(
        &self,
        dest: &Path,
        path: &str,
        expected_sha256: Option<&str>,
    ) -> Option<&ManifestEntry> {
        let entry = self.files.get(path)?;
        if expected_sha256.is_some_and(|want| want != entry.sha256) {
            return None;
        }
        let meta = std::fs::metadata(dest.join(path)).ok()?;
        (meta.is_file() && meta.len() == entry.size).then_some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_the_final_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::load(dir.path()).unwrap();
        assert!(m.files.is_empty());
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/f"), b"hello").unwrap();
        m.files.insert(
            "a/f".into(),
            ManifestEntry {
                size: 5,
                sha256: "00".repeat(32),
                url: "http://127.0.0.1/a/f".into(),
                completed_unix: 1,
            },
        );
        m.save(dir.path()).unwrap();
        let back = Manifest::load(dir.path()).unwrap();
        assert_eq!(back, m);
        assert!(back.complete_entry(dir.path(), "a/f", None).is_some());
        assert!(back
            .complete_entry(dir.path(), "a/f", Some(&"11".repeat(32)))
            .is_none());
        std::fs::write(dir.path().join("a/f"), b"hell").unwrap();
        assert!(back.complete_entry(dir.path(), "a/f", None).is_none());
    }
}

//! The quarantine file of one shard (`quarantine/NNNNN.jsonl`): the records a reader set aside,
//! one JSON line each, streamed to a temporary file as they come (memory stays flat however much
//! bad input there is) and fsynced and renamed into place when the shard ends, so a crash never
//! leaves a half-written file and a rerun writes the same bytes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::doc::{io_error, sync_parent, temp_path};

/// A record the reader set aside, as written to `quarantine/NNNNN.jsonl`.
#[derive(Debug, Serialize, Deserialize)]
pub struct QuarantineRecord {
    /// Input file.
    pub file: String,
    /// Byte offset in the (decompressed) input.
    pub offset: u64,
    /// Counter key.
    pub reason: String,
    /// Detail.
    pub message: String,
}

/// Streams one shard's quarantined records to `path` (or only counts them when there is no
/// path, as for later pipeline segments, whose bad records were already set aside).
pub struct QuarantineWriter {
    final_path: Option<PathBuf>,
    /// Opened at the first record, so a clean shard creates no file.
    out: Option<BufWriter<File>>,
    records: u64,
}

impl QuarantineWriter {
    /// A writer whose file appears at `path` when finished, if any record was written.
    pub fn create(path: Option<&Path>) -> Self {
        QuarantineWriter {
            final_path: path.map(Path::to_path_buf),
            out: None,
            records: 0,
        }
    }

    /// Appends one record (to the temporary file) and counts it.
    pub fn write(&mut self, rec: &QuarantineRecord) -> Result<()> {
        self.records += 1;
        let Some(path) = &self.final_path else {
            return Ok(());
        };
        if self.out.is_none() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let file = File::create(temp_path(path))
                .map_err(|e| io_error(path, e, "creating the quarantine file"))?;
            self.out = Some(BufWriter::with_capacity(64 << 10, file));
        }
        if let Some(out) = self.out.as_mut() {
            serde_json::to_writer(&mut *out, rec)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
                .map_err(|e| io_error(path, e, "writing the quarantine file"))?;
        }
        Ok(())
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Fsyncs and renames the file into place; with no record, removes a stale file left by an
    /// earlier run instead. Returns the number of records.
    pub fn finish(mut self) -> Result<u64> {
        let Some(path) = self.final_path.take() else {
            return Ok(self.records);
        };
        let tmp = temp_path(&path);
        match self.out.take() {
            None => {
                let _ = std::fs::remove_file(&path);
                // A crashed earlier run may have left its temporary file.
                let _ = std::fs::remove_file(&tmp);
            }
            Some(out) => {
                let synced = out
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .and_then(|file| file.sync_all());
                if let Err(e) = synced {
                    // Never leave a half-written file behind, even under its temporary name.
                    let _ = std::fs::remove_file(&tmp);
                    return Err(io_error(&path, e, "finishing the quarantine file"));
                }
                std::fs::rename(&tmp, &path).with_context(|| {
                    format!("cannot rename {} to {}", tmp.display(), path.display())
                })?;
                sync_parent(&path)?;
            }
        }
        Ok(self.records)
    }
}

impl Drop for QuarantineWriter {
    fn drop(&mut self) {
        // `finish` takes the file first, so only an unfinished writer removes its temp file.
        if self.out.take().is_some() {
            if let Some(path) = &self.final_path {
                let _ = std::fs::remove_file(temp_path(path));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(offset: u64) -> QuarantineRecord {
        QuarantineRecord {
            file: "in/x.jsonl".into(),
            offset,
            reason: "bad_json".into(),
            message: "expected value".into(),
        }
    }

    #[test]
    fn streams_to_a_temp_file_and_renames_at_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quarantine/00001.jsonl");
        let mut w = QuarantineWriter::create(Some(&path));
        for i in 0..1000 {
            w.write(&rec(i)).unwrap();
        }
        assert!(!path.exists(), "the final name appears only when finished");
        assert!(temp_path(&path).exists());
        assert_eq!(w.finish().unwrap(), 1000);
        assert!(!temp_path(&path).exists());
        let body = std::fs::read_to_string(&path).unwrap();
        assert_eq!(body.lines().count(), 1000);
        assert_eq!(
            body.lines().nth(7).unwrap(),
            r#"{"file":"in/x.jsonl","offset":7,"reason":"bad_json","message":"expected value"}"#
        );
    }

    #[test]
    fn an_unfinished_writer_leaves_nothing_and_an_empty_one_removes_a_stale_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.jsonl");
        let mut w = QuarantineWriter::create(Some(&path));
        w.write(&rec(1)).unwrap();
        drop(w);
        assert!(!path.exists() && !temp_path(&path).exists());

        std::fs::write(&path, "stale\n").unwrap();
        std::fs::write(temp_path(&path), "crashed\n").unwrap();
        let w = QuarantineWriter::create(Some(&path));
        assert_eq!(w.finish().unwrap(), 0);
        assert!(!path.exists() && !temp_path(&path).exists());
    }

    #[test]
    fn without_a_path_records_are_only_counted() {
        let mut w = QuarantineWriter::create(None);
        w.write(&rec(3)).unwrap();
        w.write(&rec(4)).unwrap();
        assert_eq!(w.records(), 2);
        assert_eq!(w.finish().unwrap(), 2);
    }
}

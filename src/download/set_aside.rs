//! URLs set aside on disk while their host's queue was full, read back in host turns.
//!
//! The `k`-th URL set aside for a host goes to bucket `k / per_host` (the last bucket takes
//! the rest), so reading bucket 0, then 1, ... gives every busy host its next `per_host`
//! URLs before any host gets more: a list sorted by URL, where one host's URLs come in one
//! long run, is still fetched from many hosts at once. Memory: one counter per host that
//! had URLs set aside.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Bucket files at most; a host's URLs past `BUCKETS * per_host` all go to the last one.
pub const BUCKETS: usize = 64;

/// The set-aside URLs of one run (files `deferred-NN.tsv` in the WARC folder).
pub struct SetAside {
    dir: PathBuf,
    per_host: u64,
    files: Vec<Option<BufWriter<File>>>,
    ranks: HashMap<String, u64>,
    count: u64,
}

/// The file of bucket `i`.
fn bucket_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("deferred-{i:02}.tsv"))
}

impl SetAside {
    /// An empty set in `dir` for hosts holding `per_host` queued URLs; files left by an
    /// interrupted run are removed (their URLs are not in the fetch log, so they are read
    /// from the list again).
    pub fn new(dir: &Path, per_host: usize) -> Result<Self> {
        for i in 0..BUCKETS {
            let p = bucket_path(dir, i);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("cannot remove {}", p.display())),
            }
        }
        Ok(SetAside {
            dir: dir.to_path_buf(),
            per_host: per_host.max(1) as u64,
            files: (0..BUCKETS).map(|_| None).collect(),
            ranks: HashMap::new(),
            count: 0,
        })
    }

    /// Sets aside list line `line` with `url` of host `host`.
    pub fn push(&mut self, host: &str, line: u64, url: &str) -> Result<()> {
        let rank = self.ranks.entry(host.to_string()).or_insert(0);
        let bucket = ((*rank / self.per_host) as usize).min(BUCKETS - 1);
        *rank += 1;
        let path = bucket_path(&self.dir, bucket);
        let out = match &mut self.files[bucket] {
            Some(f) => f,
            slot => slot.insert(BufWriter::new(
                File::create(&path).with_context(|| format!("cannot create {}", path.display()))?,
            )),
        };
        writeln!(out, "{line}\t{url}")
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.count += 1;
        Ok(())
    }

    /// URLs set aside.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether nothing was set aside.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Reads every URL back, bucket by bucket, handing `(line, url as pushed)` to `each`;
    /// removes the files as it goes.
    pub fn drain(mut self, mut each: impl FnMut(u64, &str) -> Result<()>) -> Result<()> {
        self.ranks = HashMap::new();
        for (i, slot) in self.files.iter_mut().enumerate() {
            let Some(out) = slot.take() else { continue };
            let path = bucket_path(&self.dir, i);
            out.into_inner()
                .map_err(|e| e.into_error())
                .with_context(|| format!("cannot write {}", path.display()))?;
            let f = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
            for (n, line) in BufReader::new(f).lines().enumerate() {
                let line = line.with_context(|| format!("cannot read {}", path.display()))?;
                let parsed = line
                    .split_once('\t')
                    .and_then(|(l, u)| Some((l.parse::<u64>().ok()?, u)));
                let Some((l, u)) = parsed else {
                    bail!("{}: line {} is damaged", path.display(), n + 1);
                };
                each(l, u)?;
            }
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_take_turns_when_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SetAside::new(dir.path(), 2).unwrap();
        for i in 0..6 {
            s.push("a", i, &format!("http://a.test/{i}")).unwrap();
        }
        for i in 10..12 {
            s.push("b", i, &format!("http://b.test/{i}")).unwrap();
        }
        assert_eq!(s.len(), 8);
        let mut got = Vec::new();
        s.drain(|l, _| {
            got.push(l);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, [0, 1, 10, 11, 2, 3, 4, 5]);
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }
}

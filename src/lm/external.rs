//! Sorting fixed-size records with bounded memory, as `lmplz` does: records collect in a buffer
//! of at most a given number of records; a full buffer is sorted, records with equal keys are
//! combined, and the result is written to a run file on disk. Finishing merges the runs (and
//! what is left in memory) k-way, in several passes when there are more runs than
//! [`MAX_FAN_IN`], into one stream sorted by key with every key once.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// One record: a 128-bit key and two 64-bit payload words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rec {
    /// Sort key.
    pub key: u128,
    /// First payload word (a count, or the bits of an `f64`).
    pub a: u64,
    /// Second payload word.
    pub b: u64,
}

/// Bytes of one record on disk.
pub const REC_BYTES: usize = 32;
/// Most runs merged at once; more are merged in several passes.
pub const MAX_FAN_IN: usize = 64;

impl Rec {
    /// A record with payload words `a`, `b`.
    pub fn new(key: u128, a: u64, b: u64) -> Self {
        Rec { key, a, b }
    }

    fn to_bytes(self) -> [u8; REC_BYTES] {
        let mut out = [0u8; REC_BYTES];
        out[..16].copy_from_slice(&self.key.to_le_bytes());
        out[16..24].copy_from_slice(&self.a.to_le_bytes());
        out[24..].copy_from_slice(&self.b.to_le_bytes());
        out
    }

    fn from_bytes(b: &[u8; REC_BYTES]) -> Self {
        let mut k = [0u8; 16];
        k.copy_from_slice(&b[..16]);
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[16..24]);
        let mut c = [0u8; 8];
        c.copy_from_slice(&b[24..]);
        Rec {
            key: u128::from_le_bytes(k),
            a: u64::from_le_bytes(a),
            b: u64::from_le_bytes(c),
        }
    }
}

/// How two records with the same key become one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// Add both payload words (counts).
    Sum,
    /// Keys are unique by construction: finding a repeat is an error.
    Unique,
}

fn combine(how: Combine, into: &mut Rec, other: &Rec) -> Result<()> {
    match how {
        Combine::Sum => {
            into.a += other.a;
            into.b += other.b;
            Ok(())
        }
        Combine::Unique => anyhow::bail!("key {:#x} sorted twice", other.key),
    }
}

/// Writes records to a run file (already sorted by the caller).
pub struct RunWriter {
    out: BufWriter<File>,
    path: PathBuf,
    records: u64,
}

impl RunWriter {
    /// Creates `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(RunWriter {
            out: BufWriter::with_capacity(1 << 16, f),
            path: path.to_path_buf(),
            records: 0,
        })
    }

    /// Appends one record.
    pub fn push(&mut self, r: Rec) -> Result<()> {
        self.records += 1;
        self.out
            .write_all(&r.to_bytes())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Flushes and returns the run.
    pub fn finish(mut self) -> Result<Run> {
        self.out
            .flush()
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(Run {
            path: self.path,
            records: self.records,
        })
    }
}

/// A sorted run on disk.
#[derive(Debug, Clone)]
pub struct Run {
    /// Its file.
    pub path: PathBuf,
    /// Records in it.
    pub records: u64,
}

impl Run {
    /// Reads it from the start.
    pub fn open(&self) -> Result<RunReader> {
        let f = File::open(&self.path)
            .with_context(|| format!("cannot open {}", self.path.display()))?;
        Ok(RunReader {
            input: BufReader::with_capacity(1 << 16, f),
            left: self.records,
            path: self.path.clone(),
        })
    }
}

/// Reads a run record by record.
pub struct RunReader {
    input: BufReader<File>,
    left: u64,
    path: PathBuf,
}

impl RunReader {
    /// The next record, `None` at the end.
    pub fn next_rec(&mut self) -> Result<Option<Rec>> {
        if self.left == 0 {
            return Ok(None);
        }
        let mut b = [0u8; REC_BYTES];
        self.input
            .read_exact(&mut b)
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        self.left -= 1;
        Ok(Some(Rec::from_bytes(&b)))
    }
}

/// A source of records in key order.
pub trait RecSource {
    /// The next record, `None` at the end.
    fn next_rec(&mut self) -> Result<Option<Rec>>;
}

impl RecSource for RunReader {
    fn next_rec(&mut self) -> Result<Option<Rec>> {
        RunReader::next_rec(self)
    }
}

/// Sorts records with at most `capacity` of them in memory.
pub struct ExternalSorter {
    buf: Vec<Rec>,
    capacity: usize,
    combine: Combine,
    dir: PathBuf,
    name: String,
    runs: Vec<Run>,
    next_run: usize,
    /// Records pushed.
    pub pushed: u64,
}

impl ExternalSorter {
    /// A sorter writing its runs into `dir` as `NAME.N.run`.
    pub fn new(dir: &Path, name: &str, capacity: usize, combine: Combine) -> Self {
        ExternalSorter {
            buf: Vec::new(),
            capacity: capacity.max(16),
            combine,
            dir: dir.to_path_buf(),
            name: name.to_string(),
            runs: Vec::new(),
            next_run: 0,
            pushed: 0,
        }
    }

    /// Changes the in-memory limit (spilling now if the buffer is already larger).
    pub fn set_capacity(&mut self, capacity: usize) -> Result<()> {
        self.capacity = capacity.max(16);
        if self.buf.len() >= self.capacity {
            self.spill()?;
        }
        if self.buf.capacity() > 0 && self.buf.capacity() < self.capacity {
            self.reserve();
        }
        Ok(())
    }

    /// Reserves the whole buffer at once (pages are only touched as records come), so it
    /// never grows by copying; a budget larger than the address space allows grows as usual.
    fn reserve(&mut self) {
        let more = self.capacity.saturating_sub(self.buf.len());
        if self.buf.try_reserve_exact(more).is_err() {
            self.buf.reserve(1024);
        }
    }

    /// Runs written to disk so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Adds one record.
    #[inline]
    pub fn push(&mut self, r: Rec) -> Result<()> {
        if self.buf.capacity() == 0 {
            self.reserve();
        }
        self.pushed += 1;
        self.buf.push(r);
        if self.buf.len() >= self.capacity {
            self.compact()?;
            // Combining freed less than half: write the buffer out.
            if self.buf.len() * 2 >= self.capacity {
                self.spill()?;
            }
        }
        Ok(())
    }

    /// Sorts the buffer and combines equal keys.
    fn compact(&mut self) -> Result<()> {
        self.buf.sort_unstable_by_key(|r| r.key);
        let mut w = 0usize;
        for i in 0..self.buf.len() {
            if w > 0 && self.buf[w - 1].key == self.buf[i].key {
                let r = self.buf[i];
                combine(self.combine, &mut self.buf[w - 1], &r)?;
            } else {
                self.buf[w] = self.buf[i];
                w += 1;
            }
        }
        self.buf.truncate(w);
        Ok(())
    }

    fn run_path(&mut self) -> PathBuf {
        self.next_run += 1;
        self.dir
            .join(format!("{}.{}.run", self.name, self.next_run))
    }

    /// Writes the (compacted) buffer as a run and empties it.
    fn spill(&mut self) -> Result<()> {
        self.compact()?;
        if self.buf.is_empty() {
            return Ok(());
        }
        let path = self.run_path();
        let mut w = RunWriter::create(&path)?;
        for &r in &self.buf {
            w.push(r)?;
        }
        self.runs.push(w.finish()?);
        self.buf.clear();
        Ok(())
    }

    /// Merges everything into one sorted stream (fewer than [`MAX_FAN_IN`] runs at a time).
    /// When runs were spilled, the rest is spilled too, so the merge holds no large buffer.
    pub fn finish(mut self) -> Result<Merged> {
        if self.runs.is_empty() {
            self.compact()?;
            let mut mem = std::mem::take(&mut self.buf);
            mem.shrink_to_fit();
            return Merged::new(vec![], mem, self.combine);
        }
        self.spill()?;
        self.buf = Vec::new();
        crate::stats::return_freed_memory();
        // Merge groups of runs first while there are too many to merge at once.
        while self.runs.len() > MAX_FAN_IN {
            let group: Vec<Run> = self.runs.drain(..MAX_FAN_IN).collect();
            let path = self.run_path();
            let mut w = RunWriter::create(&path)?;
            let mut m = Merged::new(group.clone(), Vec::new(), self.combine)?;
            while let Some(r) = m.next_rec()? {
                w.push(r)?;
            }
            for run in &group {
                let _ = std::fs::remove_file(&run.path);
            }
            self.runs.push(w.finish()?);
        }
        Merged::new(std::mem::take(&mut self.runs), Vec::new(), self.combine)
    }
}

/// The k-way merge of sorted runs and one sorted in-memory part, combining equal keys. Run
/// files are deleted when the merge is dropped.
pub struct Merged {
    readers: Vec<RunReader>,
    runs: Vec<Run>,
    mem: std::vec::IntoIter<Rec>,
    heads: Vec<Option<Rec>>,
    heap: BinaryHeap<Reverse<(u128, usize)>>,
    combine: Combine,
    held: usize,
}

impl Merged {
    fn new(runs: Vec<Run>, mem: Vec<Rec>, combine: Combine) -> Result<Self> {
        let mut readers = Vec::with_capacity(runs.len());
        for r in &runs {
            readers.push(r.open()?);
        }
        let mut m = Merged {
            held: mem.len(),
            heads: vec![None; readers.len() + 1],
            readers,
            runs,
            mem: mem.into_iter(),
            heap: BinaryHeap::new(),
            combine,
        };
        for i in 0..m.heads.len() {
            m.advance(i)?;
        }
        Ok(m)
    }

    /// Records still held in memory.
    pub fn in_memory(&self) -> usize {
        self.held
    }

    fn advance(&mut self, i: usize) -> Result<()> {
        let next = if i < self.readers.len() {
            self.readers[i].next_rec()?
        } else {
            self.mem.next()
        };
        if let Some(r) = next {
            self.heap.push(Reverse((r.key, i)));
        }
        self.heads[i] = next;
        Ok(())
    }
}

impl RecSource for Merged {
    fn next_rec(&mut self) -> Result<Option<Rec>> {
        let Some(Reverse((_, i))) = self.heap.pop() else {
            return Ok(None);
        };
        let mut out = self.heads[i].take().context("merge head missing")?;
        self.advance(i)?;
        while let Some(&Reverse((k, j))) = self.heap.peek() {
            if k != out.key {
                break;
            }
            self.heap.pop();
            let r = self.heads[j].take().context("merge head missing")?;
            combine(self.combine, &mut out, &r)?;
            self.advance(j)?;
        }
        Ok(Some(out))
    }
}

impl Drop for Merged {
    fn drop(&mut self) {
        for r in &self.runs {
            let _ = std::fs::remove_file(&r.path);
        }
    }
}

/// Writes a whole sorted stream to one run file (to be read more than once).
pub fn materialise(src: &mut dyn RecSource, path: &Path) -> Result<Run> {
    let mut w = RunWriter::create(path)?;
    while let Some(r) = src.next_rec()? {
        w.push(r)?;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(mut m: Merged) -> Vec<Rec> {
        let mut v = Vec::new();
        while let Some(r) = m.next_rec().unwrap() {
            v.push(r);
        }
        v
    }

    #[test]
    fn tiny_buffer_gives_the_same_sorted_sums_as_a_large_one() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<u128> = (0..20_000u64)
            .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 3001) as u128)
            .collect();
        let run = |cap: usize, name: &str| {
            let mut s = ExternalSorter::new(dir.path(), name, cap, Combine::Sum);
            for &k in &keys {
                s.push(Rec::new(k, 1, 2)).unwrap();
            }
            let spilled = s.runs();
            (drain(s.finish().unwrap()), spilled)
        };
        let (small, runs) = run(16, "small");
        let (large, none) = run(1 << 20, "large");
        assert!(
            runs > MAX_FAN_IN,
            "{runs} runs: the multi-pass merge was not exercised"
        );
        assert_eq!(none, 0);
        assert_eq!(small, large);
        assert_eq!(small.len(), 3001);
        assert!(small.windows(2).all(|w| w[0].key < w[1].key));
        assert_eq!(small.iter().map(|r| r.a).sum::<u64>(), 20_000);
        // Runs are deleted once merged.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn unique_sorter_rejects_a_repeated_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ExternalSorter::new(dir.path(), "u", 16, Combine::Unique);
        s.push(Rec::new(3, 0, 0)).unwrap();
        s.push(Rec::new(3, 1, 0)).unwrap();
        assert!(s.finish().is_err());
    }
}

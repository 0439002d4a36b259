//! Counts of distinct strings (cited URLs) in bounded memory: strings are buffered up to a
//! byte budget, then sorted, counted and spilled to a zstd-compressed run file
//! (`string<TAB>count` lines in byte order); the runs are merged (at most [`FAN_IN`] at a time,
//! in several passes when there are more) into one sorted stream of `(string, count)`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Most runs merged at once (open files per merge).
pub const FAN_IN: usize = 64;
/// Bookkeeping bytes counted per buffered string on top of its length.
const PER_STRING: usize = 32;

/// Buffers strings and spills sorted, counted runs into a folder.
pub struct RunWriter {
    dir: PathBuf,
    prefix: String,
    budget: usize,
    buf: Vec<String>,
    buf_bytes: usize,
    runs: Vec<PathBuf>,
}

impl RunWriter {
    /// A writer spilling into `dir` as `PREFIX-NNNNN.run.zst` once `budget` bytes are buffered.
    pub fn new(dir: &Path, prefix: &str, budget: usize) -> Self {
        RunWriter {
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            budget: budget.max(1 << 16),
            buf: Vec::new(),
            buf_bytes: 0,
            runs: Vec::new(),
        }
    }

    /// Counts one occurrence of `s` (it must hold no TAB or newline).
    pub fn add(&mut self, s: String) -> Result<()> {
        self.buf_bytes += s.len() + PER_STRING;
        self.buf.push(s);
        if self.buf_bytes >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.buf.sort_unstable();
        let path = self
            .dir
            .join(format!("{}-{:05}.run.zst", self.prefix, self.runs.len()));
        let mut w = RunFile::create(&path)?;
        let mut i = 0;
        while i < self.buf.len() {
            let j = i + self.buf[i..]
                .iter()
                .take_while(|s| **s == self.buf[i])
                .count();
            w.write(&self.buf[i], (j - i) as u64)?;
            i = j;
        }
        w.finish()?;
        self.runs.push(path);
        self.buf.clear();
        self.buf_bytes = 0;
        Ok(())
    }

    /// Spills what is left; returns the run files.
    pub fn finish(mut self) -> Result<Vec<PathBuf>> {
        self.spill()?;
        Ok(self.runs)
    }
}

/// A run file being written.
struct RunFile {
    path: PathBuf,
    w: zstd::Encoder<'static, BufWriter<File>>,
}

impl RunFile {
    fn create(path: &Path) -> Result<Self> {
        let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(RunFile {
            path: path.to_path_buf(),
            w: zstd::Encoder::new(BufWriter::new(f), 1)?,
        })
    }

    fn write(&mut self, s: &str, count: u64) -> Result<()> {
        writeln!(self.w, "{s}\t{count}")
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    fn finish(self) -> Result<()> {
        self.w
            .finish()
            .and_then(|mut w| w.flush())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// Reads one run file line by line.
struct RunReader {
    path: PathBuf,
    input: Box<dyn BufRead>,
    line: String,
}

impl RunReader {
    fn open(path: &Path) -> Result<Self> {
        let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(RunReader {
            path: path.to_path_buf(),
            input: Box::new(BufReader::new(zstd::Decoder::new(f)?)),
            line: String::new(),
        })
    }

    fn next_entry(&mut self) -> Result<Option<(String, u64)>> {
        self.line.clear();
        if self.input.read_line(&mut self.line)? == 0 {
            return Ok(None);
        }
        let line = self.line.trim_end_matches('\n');
        let Some((s, n)) = line.rsplit_once('\t') else {
            bail!("{}: bad run line {line:?}", self.path.display());
        };
        let n = n
            .parse()
            .with_context(|| format!("{}: bad count in {line:?}", self.path.display()))?;
        Ok(Some((s.to_string(), n)))
    }
}

/// Merges sorted runs, summing the counts of equal strings; calls `emit` in byte order.
fn merge_runs(runs: &[PathBuf], emit: &mut dyn FnMut(&str, u64) -> Result<()>) -> Result<()> {
    let mut readers = runs
        .iter()
        .map(|p| RunReader::open(p))
        .collect::<Result<Vec<_>>>()?;
    let mut heap = BinaryHeap::new();
    for (i, r) in readers.iter_mut().enumerate() {
        if let Some((s, n)) = r.next_entry()? {
            heap.push(Reverse((s, i, n)));
        }
    }
    let mut current: Option<(String, u64)> = None;
    while let Some(Reverse((s, i, n))) = heap.pop() {
        match current.as_mut() {
            Some((cs, cn)) if *cs == s => *cn += n,
            _ => {
                if let Some((cs, cn)) = current.take() {
                    emit(&cs, cn)?;
                }
                current = Some((s, n));
            }
        }
        if let Some((s, n)) = readers[i].next_entry()? {
            heap.push(Reverse((s, i, n)));
        }
    }
    if let Some((cs, cn)) = current {
        emit(&cs, cn)?;
    }
    Ok(())
}

/// Merges all `runs` (in passes of [`FAN_IN`], intermediate runs written to `dir`) and calls
/// `emit` with every distinct string and its total count, in byte order.
pub fn merge_all(
    mut runs: Vec<PathBuf>,
    dir: &Path,
    emit: &mut dyn FnMut(&str, u64) -> Result<()>,
) -> Result<()> {
    let mut pass = 0;
    while runs.len() > FAN_IN {
        let mut next = Vec::new();
        for (k, group) in runs.chunks(FAN_IN).enumerate() {
            let path = dir.join(format!("merge{pass}-{k:05}.run.zst"));
            let mut w = RunFile::create(&path)?;
            merge_runs(group, &mut |s, n| w.write(s, n))?;
            w.finish()?;
            for p in group {
                let _ = std::fs::remove_file(p);
            }
            next.push(path);
        }
        runs = next;
        pass += 1;
    }
    merge_runs(&runs, emit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_budget_and_many_passes_give_the_in_memory_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut expected = std::collections::BTreeMap::new();
        let mut w = RunWriter::new(dir.path(), "t", 0);
        for i in 0..200_000u64 {
            let s = format!("https://h{}.example/{}", i % 7, (i * 7919) % 5003);
            *expected.entry(s.clone()).or_insert(0u64) += 1;
            w.add(s).unwrap();
        }
        let runs = w.finish().unwrap();
        assert!(
            runs.len() > FAN_IN,
            "{} runs: several merge passes",
            runs.len()
        );
        let mut got = Vec::new();
        merge_all(runs, dir.path(), &mut |s, n| {
            got.push((s.to_string(), n));
            Ok(())
        })
        .unwrap();
        assert_eq!(got, expected.into_iter().collect::<Vec<_>>());
    }
}

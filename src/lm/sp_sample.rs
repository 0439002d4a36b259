//! The SentencePiece model's training sample: a seeded, evenly spread selection of the
//! normalised lines within a byte budget, as SentencePiece's `input_sentence_size` bounds its
//! input (CCNet trained its SentencePiece model on 400,000 lead sections, its n-gram model on a
//! million). The n-grams are counted on every line; only the tokenizer trainer, whose memory
//! grows with the distinct words it sees, reads the sample.
//!
//! Each eligible line (within the first `--sp-docs` documents, at most the trainer's longest
//! line) falls into one of 65,536 buckets by a seeded hash of its line number. While the text
//! is written, the bytes of each bucket are summed (a fixed 512 KB table); the sample is then
//! the lines of the lowest buckets whose bytes together fit the budget. So the bound is exact,
//! every line has the same chance whatever its place, and the same text gives the same sample.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};

/// Seed of the line hash (recorded in the sidecar).
pub const SEED: u64 = 0x5350_5341_4d50_4c45;

/// Buckets of the line hash: the budget is met to within one of them (1/65,536 of the text).
const BUCKETS: usize = 1 << 16;

/// The default byte budget of the sample (`--sp-max-bytes`): 64 MiB, which the tokenizer
/// trainer holds in about 150 MB. It does not follow `--memory`, so the sort budget never
/// changes the model.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

/// How the sample was drawn and what it holds (written to the sidecar).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpSample {
    /// The rule, in words.
    pub rule: String,
    /// Seed of the line hash.
    pub seed: u64,
    /// Documents the sample is drawn from: the first this many (`--sp-docs`).
    pub max_docs: u64,
    /// Byte budget of the sample (`--sp-max-bytes`).
    pub max_bytes: u64,
    /// Longest line eligible, in bytes (the tokenizer trainer skips longer ones).
    pub max_line_bytes: usize,
    /// Eligible lines.
    pub lines_offered: u64,
    /// Bytes of the eligible lines (newlines counted).
    pub bytes_offered: u64,
    /// Lines in the sample.
    pub lines: u64,
    /// Bytes of the sample.
    pub bytes: u64,
}

/// The rule written to the sidecar.
const RULE: &str = "normalised lines of the first `max_docs` documents, at most \
`max_line_bytes` long, kept when xxh3(line number, seed) falls in the lowest buckets of \
65,536 whose lines together fit `max_bytes` (all of them when they fit)";

/// Sums the bytes of the eligible lines per hash bucket while the text is written, then
/// writes the sample.
pub struct LineSampler {
    max_docs: u64,
    max_bytes: u64,
    max_line_bytes: usize,
    bucket_bytes: Vec<u64>,
    /// Lines of the first `max_docs` documents (they come first in the text).
    prefix_lines: u64,
    lines_offered: u64,
    bytes_offered: u64,
}

/// The bucket of line number `line`.
fn bucket(line: u64) -> usize {
    (xxhash_rust::xxh3::xxh3_64_with_seed(&line.to_le_bytes(), SEED) >> 48) as usize
}

impl LineSampler {
    /// A sampler of the lines of at most `max_line_bytes` bytes of the first `max_docs`
    /// documents into at most `max_bytes` bytes.
    pub fn new(max_docs: u64, max_bytes: u64, max_line_bytes: usize) -> Self {
        LineSampler {
            max_docs,
            max_bytes,
            max_line_bytes,
            bucket_bytes: vec![0; BUCKETS],
            prefix_lines: 0,
            lines_offered: 0,
            bytes_offered: 0,
        }
    }

    /// Notes the next line written, `len` bytes without its newline, of document `doc`
    /// (numbered from 0, in the order written).
    pub fn offer(&mut self, doc: u64, len: usize) {
        if doc >= self.max_docs {
            return;
        }
        let line = self.prefix_lines;
        self.prefix_lines += 1;
        if len <= self.max_line_bytes {
            self.bucket_bytes[bucket(line)] += len as u64 + 1;
            self.lines_offered += 1;
            self.bytes_offered += len as u64 + 1;
        }
    }

    /// The number of lowest buckets whose lines fit the budget.
    fn kept_buckets(&self) -> usize {
        let mut sum = 0u64;
        for (i, &b) in self.bucket_bytes.iter().enumerate() {
            sum += b;
            if sum > self.max_bytes {
                return i;
            }
        }
        BUCKETS
    }

    /// Reads back `text`, the lines offered, one each (more may follow), and writes the
    /// sample's lines to `out`.
    pub fn write_sample(&self, text: &Path, out: &Path) -> Result<SpSample> {
        let kept = self.kept_buckets();
        ensure!(
            self.bytes_offered == 0 || self.bucket_bytes[..kept].iter().any(|&b| b > 0),
            "a SentencePiece sample of at most {} bytes holds no line (the text has {} bytes \
             in {} lines); give a larger --sp-max-bytes",
            self.max_bytes,
            self.bytes_offered,
            self.lines_offered
        );
        let input =
            std::fs::File::open(text).with_context(|| format!("cannot read {}", text.display()))?;
        let mut reader = BufReader::with_capacity(1 << 20, input);
        let file = std::fs::File::create(out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let (mut lines, mut bytes) = (0u64, 0u64);
        let mut line = Vec::new();
        for number in 0..self.prefix_lines {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .with_context(|| format!("cannot read {}", text.display()))?;
            ensure!(
                n > 0,
                "{} ends after {number} lines, {} were written",
                text.display(),
                self.prefix_lines
            );
            let len = line.len() - usize::from(line.last() == Some(&b'\n'));
            if len <= self.max_line_bytes && bucket(number) < kept {
                w.write_all(&line[..len])
                    .and_then(|_| w.write_all(b"\n"))
                    .with_context(|| format!("cannot write {}", out.display()))?;
                lines += 1;
                bytes += len as u64 + 1;
            }
        }
        w.flush()
            .with_context(|| format!("cannot write {}", out.display()))?;
        Ok(SpSample {
            rule: RULE.into(),
            seed: SEED,
            max_docs: self.max_docs,
            max_bytes: self.max_bytes,
            max_line_bytes: self.max_line_bytes,
            lines_offered: self.lines_offered,
            bytes_offered: self.bytes_offered,
            lines,
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `docs` documents of `lines` lines each (line `i` is `i` repeated to 40 bytes,
    /// every tenth 5,000 bytes long) and offers them to `sampler`.
    fn write_text(path: &Path, docs: u64, lines: u64, sampler: &mut LineSampler) {
        let mut out = String::new();
        for d in 0..docs {
            for l in 0..lines {
                let i = d * lines + l;
                let len = if i % 10 == 9 { 5000 } else { 40 };
                let line: String = format!("{i:08} ").repeat(len / 9 + 1)[..len].to_string();
                sampler.offer(d, line.len());
                out.push_str(&line);
                out.push('\n');
            }
        }
        std::fs::write(path, out).unwrap();
    }

    fn sample(docs: u64, max_docs: u64, max_bytes: u64) -> (SpSample, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("text");
        let mut sampler = LineSampler::new(max_docs, max_bytes, 4192);
        write_text(&text, docs, 100, &mut sampler);
        let out = dir.path().join("sample");
        let s = sampler.write_sample(&text, &out).unwrap();
        let lines = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        (s, lines)
    }

    #[test]
    fn the_byte_budget_is_met_by_an_even_deterministic_sample() {
        // 200 documents of 100 lines: 18,000 eligible lines of 41 bytes; 100 KB keeps ~13%.
        let (s, lines) = sample(200, 1000, 100_000);
        assert_eq!(s.lines_offered, 18_000);
        assert_eq!(s.bytes_offered, 18_000 * 41);
        assert!(s.bytes <= 100_000 && s.bytes > 97_000, "{} bytes", s.bytes);
        assert_eq!(s.lines as usize, lines.len());
        assert_eq!(
            s.bytes,
            lines.iter().map(|l| l.len() as u64 + 1).sum::<u64>()
        );
        // No line longer than the trainer takes; every sampled line is one written.
        assert!(
            lines.iter().all(|l| l.len() == 40),
            "a long line was sampled"
        );
        // Evenly spread: each fifth of the text gives about a fifth of the sample.
        let mut fifths = [0usize; 5];
        for l in &lines {
            let i: u64 = l[..8].parse().unwrap();
            fifths[(i / 4000) as usize] += 1;
        }
        for f in fifths {
            assert!(
                f * 5 > lines.len() * 4 / 5 && f * 5 < lines.len() * 6 / 5,
                "{fifths:?}"
            );
        }
        // The same text gives the same sample.
        assert_eq!(sample(200, 1000, 100_000), (s, lines));
    }

    #[test]
    fn text_within_the_budget_is_taken_whole_and_only_the_first_documents_count() {
        let (s, lines) = sample(20, 1000, 1 << 30);
        assert_eq!((s.lines, s.lines_offered), (1800, 1800));
        assert_eq!(s.bytes, s.bytes_offered);
        assert_eq!(lines.len(), 1800);
        // Of 20 documents, the first 5 are drawn from (500 lines, 450 eligible).
        let (s, lines) = sample(20, 5, 1 << 30);
        assert_eq!((s.lines, s.lines_offered), (450, 450));
        assert!(lines.iter().all(|l| l[..8].parse::<u64>().unwrap() < 500));
    }

    #[test]
    fn a_budget_below_one_bucket_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("text");
        let mut sampler = LineSampler::new(10, 1, 4192);
        write_text(&text, 1, 10, &mut sampler);
        let e = sampler
            .write_sample(&text, &dir.path().join("sample"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--sp-max-bytes"), "{e}");
    }
}

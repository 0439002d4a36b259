//! `datamill verify-shards`: checks every Megatron dataset under a folder against its `.bin`
//! (header, sizes, pointers, document indices, token ids, manifest checksums) and decodes a
//! sample of documents back to text.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::encoder::TokenEncoder;
use super::megatron::{dataset_paths, read_index, read_sequence, Index, TokenDtype};
use super::pack::ShardManifest;
use crate::doc::{file_name, file_xxh3};

/// What was found for one dataset.
#[derive(Debug, Clone, Default)]
pub struct DatasetCheck {
    /// The dataset prefix.
    pub prefix: PathBuf,
    /// Documents.
    pub docs: u64,
    /// Tokens.
    pub tokens: u64,
    /// Problems found (empty = valid).
    pub problems: Vec<String>,
    /// Decoded sample documents: (document index, first characters of the text).
    pub samples: Vec<(u64, String)>,
}

/// The result of checking a folder.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// One entry per dataset, sorted by prefix.
    pub datasets: Vec<DatasetCheck>,
}

impl VerifyReport {
    /// True when no dataset has a problem.
    pub fn ok(&self) -> bool {
        self.datasets.iter().all(|d| d.problems.is_empty())
    }

    /// Human-readable report.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for d in &self.datasets {
            let status = if d.problems.is_empty() { "ok" } else { "BAD" };
            out.push_str(&format!(
                "{status:<4} {}  {} docs, {} tokens\n",
                d.prefix.display(),
                d.docs,
                d.tokens
            ));
            for p in &d.problems {
                out.push_str(&format!("     problem: {p}\n"));
            }
            for (i, text) in &d.samples {
                out.push_str(&format!("     doc {i}: {text:?}\n"));
            }
        }
        let bad = self
            .datasets
            .iter()
            .filter(|d| !d.problems.is_empty())
            .count();
        out.push_str(&format!(
            "{} datasets checked, {} with problems\n",
            self.datasets.len(),
            bad
        ));
        out
    }
}

/// Finds every `*.idx` under `dir` (recursively, hidden folders such as `.work` skipped) and
/// returns the dataset prefixes, sorted.
pub fn find_datasets(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    collect(dir, &mut out)?;
    out.sort();
    Ok(out)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let p = entry?.path();
        let name = file_name(&p);
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            collect(&p, out)?;
        } else if let Some(stem) = name.strip_suffix(".idx") {
            out.push(p.with_file_name(stem));
        }
    }
    Ok(())
}

/// Checks every dataset under `dir`; decodes `samples` documents of each with `encoder`.
pub fn verify_dir(
    dir: &Path,
    encoder: Option<&dyn TokenEncoder>,
    samples: usize,
) -> Result<VerifyReport> {
    let prefixes = find_datasets(dir)?;
    if prefixes.is_empty() {
        anyhow::bail!("no .idx file under {}", dir.display());
    }
    let datasets = prefixes
        .iter()
        .map(|p| verify_dataset(p, encoder, samples))
        .collect();
    Ok(VerifyReport { datasets })
}

/// Checks one dataset prefix.
pub fn verify_dataset(
    prefix: &Path,
    encoder: Option<&dyn TokenEncoder>,
    samples: usize,
) -> DatasetCheck {
    let mut check = DatasetCheck {
        prefix: prefix.to_path_buf(),
        ..Default::default()
    };
    if let Err(e) = check_into(prefix, encoder, samples, &mut check) {
        check.problems.push(format!("{e:#}"));
    }
    check
}

fn check_into(
    prefix: &Path,
    encoder: Option<&dyn TokenEncoder>,
    samples: usize,
    check: &mut DatasetCheck,
) -> Result<()> {
    let (bin_path, idx_path) = dataset_paths(prefix);
    let index = read_index(&idx_path)?;
    let h = index.header;
    let idx_size = std::fs::metadata(&idx_path)?.len();
    // Megatron's multimodal datasets add one int8 mode per sequence; datamill writes none.
    if idx_size != h.expected_idx_bytes() && idx_size != h.expected_idx_bytes() + h.sequences {
        check.problems.push(format!(
            ".idx has {idx_size} bytes, the header implies {}",
            h.expected_idx_bytes()
        ));
    }
    check.docs = h.document_count.saturating_sub(1);
    check.problems.extend(structure_problems(&index));
    let size = h.dtype.size();
    let bin_size = std::fs::metadata(&bin_path)
        .with_context(|| format!("cannot stat {}", bin_path.display()))?
        .len();
    let tokens: u64 = index.lengths.iter().map(|&l| l.max(0) as u64).sum();
    check.tokens = tokens;
    if tokens * size != bin_size {
        check.problems.push(format!(
            ".bin has {bin_size} bytes, the lengths add up to {} ({} tokens of {} bytes)",
            tokens * size,
            tokens,
            size
        ));
    }
    if let Some(enc) = encoder {
        let vocab = enc.vocab_size() as u64;
        if let Some((pos, id)) = first_out_of_vocab(&bin_path, h.dtype, vocab)? {
            check.problems.push(format!(
                "token {id} at token {pos} is outside the vocabulary of {vocab}"
            ));
        }
    }
    let manifest_path = prefix.with_file_name(format!("{}.manifest.json", file_name(prefix)));
    if let Ok(bytes) = std::fs::read(&manifest_path) {
        let m: ShardManifest = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a shard manifest", manifest_path.display()))?;
        if file_xxh3(&bin_path)? != m.files.bin_xxh3 {
            check
                .problems
                .push(".bin checksum differs from the manifest".into());
        }
        if file_xxh3(&idx_path)? != m.files.idx_xxh3 {
            check
                .problems
                .push(".idx checksum differs from the manifest".into());
        }
        if m.files.docs != check.docs || m.files.tokens != tokens {
            check.problems.push(format!(
                "manifest says {} docs / {} tokens, the index {} / {}",
                m.files.docs, m.files.tokens, check.docs, tokens
            ));
        }
    }
    if let (Some(enc), true) = (encoder, check.problems.is_empty()) {
        let s = h.sequences as usize;
        let picks: Vec<usize> = match samples.min(s) {
            0 => Vec::new(),
            1 => vec![0],
            n => (0..n).map(|k| k * (s - 1) / (n - 1)).collect(),
        };
        let mut bin = File::open(&bin_path)?;
        for i in picks {
            let ids = read_sequence(&mut bin, &index, i)?;
            let text = enc
                .decode(&ids)
                .with_context(|| format!("document {i} does not decode"))?;
            let shown: String = text.chars().take(160).collect();
            check.samples.push((i as u64, shown));
        }
    }
    Ok(())
}

/// Pointers, document indices and lengths checked against each other.
fn structure_problems(index: &Index) -> Vec<String> {
    let mut problems = Vec::new();
    let s = index.header.sequences as i64;
    let size = index.header.dtype.size() as i64;
    let mut expect = 0i64;
    for (i, (&len, &ptr)) in index.lengths.iter().zip(&index.pointers).enumerate() {
        if len < 0 {
            problems.push(format!("sequence {i} has negative length {len}"));
            break;
        }
        if ptr != expect {
            problems.push(format!(
                "sequence {i} points at byte {ptr}, expected {expect}"
            ));
            break;
        }
        expect += len as i64 * size;
    }
    let docs = &index.documents;
    if docs.first() != Some(&0) {
        problems.push("document_indices does not start with 0".into());
    }
    if docs.last() != Some(&s) {
        problems.push(format!(
            "document_indices ends at {:?}, expected the sequence count {s}",
            docs.last()
        ));
    }
    if docs.windows(2).any(|w| w[1] < w[0]) {
        problems.push("document_indices is not increasing".into());
    }
    problems
}

fn first_out_of_vocab(bin: &Path, dtype: TokenDtype, vocab: u64) -> Result<Option<(u64, u64)>> {
    let mut r = BufReader::with_capacity(
        1 << 20,
        File::open(bin).with_context(|| format!("cannot open {}", bin.display()))?,
    );
    let size = dtype.size() as usize;
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    loop {
        let n = read_full(&mut r, &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        for c in buf[..n - n % size].chunks_exact(size) {
            let id = match dtype {
                TokenDtype::Uint16 => u16::from_le_bytes([c[0], c[1]]) as u64,
                TokenDtype::Int32 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64 as u64,
            };
            if id >= vocab {
                return Ok(Some((pos, id)));
            }
            pos += 1;
        }
        if n < buf.len() {
            return Ok(None);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = r.read(&mut buf[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// The tokenizer model named in the first `pack.json` under `dir`, if it still exists.
pub fn tokenizer_from_pack(dir: &Path) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&d)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() && !file_name(&p).starts_with('.') {
                stack.push(p);
            } else if file_name(&p) == "pack.json" {
                let packed: super::PackedSource =
                    serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
                let model = PathBuf::from(packed.tokenizer);
                return model.exists().then_some(model);
            }
        }
    }
    None
}

//! Writes an estimated model ([`super::train::Estimate`]) as datamill's binary file and as
//! ARPA text, each under a temporary name that the caller renames once everything is written.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{Context, Result};

use super::arpa::ArpaWriter;
use super::external::{Combine, ExternalSorter, Rec, RecSource};
use super::model::{ngram_key, Entry, ModelWriter};
use super::train::{unpack, Estimate};

/// Writes the binary model to `path`: each order's n-grams are sorted by their hash key on
/// disk (at most `memory_records` records in memory) and written in one pass.
pub fn write_binary(
    est: &Estimate,
    hashes: &[u64],
    path: &Path,
    work: &Path,
    memory_records: usize,
) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = ModelWriter::new(
        BufWriter::with_capacity(1 << 20, file),
        est.orders.len(),
        est.unk,
    )?;
    let mut ids = Vec::new();
    let mut toks = Vec::new();
    for (k, run) in est.orders.iter().enumerate() {
        let n = k + 1;
        let mut sorter =
            ExternalSorter::new(work, &format!("hash{n}"), memory_records, Combine::Unique);
        let mut input = run.open()?;
        while let Some(r) = input.next_rec()? {
            unpack(r.key, n, &mut ids);
            toks.clear();
            for &id in &ids {
                toks.push(
                    *hashes
                        .get(id as usize)
                        .context("token id outside the vocabulary")?,
                );
            }
            sorter.push(Rec::new(ngram_key(&toks) as u128, r.a, r.b))?;
        }
        let mut merged = sorter
            .finish()
            .context("two n-grams share one 64-bit key; the binary model cannot hold both")?;
        w.table(run.records, || {
            Ok(merged.next_rec()?.map(|r| Entry {
                key: r.key as u64,
                prob: f32::from_bits(r.a as u32),
                backoff: f32::from_bits(r.b as u32),
            }))
        })
        .with_context(|| format!("cannot write {}", path.display()))?;
    }
    w.finish()?
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes the ARPA text of the model to `path`; `pieces[id]` is the text of token `id`.
pub fn write_arpa(est: &Estimate, pieces: &[String], path: &Path) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let counts: Vec<u64> = est.orders.iter().map(|r| r.records).collect();
    let mut counts_with_unk = counts.clone();
    counts_with_unk[0] += 1;
    let mut w = ArpaWriter::new(BufWriter::with_capacity(1 << 20, file), &counts_with_unk)?;
    let mut ids = Vec::new();
    let mut words: Vec<&str> = Vec::new();
    for (k, run) in est.orders.iter().enumerate() {
        let n = k + 1;
        w.section(n)?;
        if n == 1 {
            w.entry(&["<unk>"], est.unk, 0.0)?;
        }
        let mut input = run.open()?;
        while let Some(r) = input.next_rec()? {
            unpack(r.key, n, &mut ids);
            words.clear();
            for &id in &ids {
                words.push(
                    pieces
                        .get(id as usize)
                        .context("token id outside the vocabulary")?,
                );
            }
            w.entry(
                &words,
                f32::from_bits(r.a as u32),
                f32::from_bits(r.b as u32),
            )?;
        }
    }
    w.finish()?
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// One n-gram as `(token ids, log10 p, log10 back-off)`.
pub type IdEntry = (Vec<u32>, f32, f32);

/// The n-grams of every order, for tests and inspection.
pub fn entries(est: &Estimate) -> Result<Vec<Vec<IdEntry>>> {
    let mut out = Vec::new();
    for (k, run) in est.orders.iter().enumerate() {
        let mut input = run.open()?;
        let mut v = Vec::new();
        while let Some(r) = input.next_rec()? {
            let mut ids = Vec::new();
            unpack(r.key, k + 1, &mut ids);
            v.push((ids, f32::from_bits(r.a as u32), f32::from_bits(r.b as u32)));
        }
        out.push(v);
    }
    Ok(out)
}

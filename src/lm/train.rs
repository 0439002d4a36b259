//! Estimates an interpolated modified Kneser-Ney n-gram model (Chen & Goodman, as KenLM's
//! `lmplz`) over token ids, with bounded memory.
//!
//! Every sentence is `<s> t1 .. tm </s>`. Counting keeps, per position, the longest n-gram
//! ending there (N tokens, fewer only at the sentence start). Every stage after that is a
//! stream over records sorted on disk ([`super::external`]), so memory holds one sort buffer
//! and one context's children at a time, whatever the corpus size:
//!
//! 1. From order N down: the merged counts of order n are final; each distinct n-gram adds one
//!    left extension to its suffix (the adjusted counts of order n - 1; n-grams starting with
//!    `<s>` keep raw counts). Count-of-counts give three discounts per order (for counts 1, 2
//!    and 3+); when they are degenerate the fallback discounts 0.5, 1.0, 1.5 are used, like
//!    `lmplz --discount_fallback`. With pruning thresholds, an n-gram of order >= 2 whose
//!    adjusted count is at most its order's threshold is dropped, unless it is the context or
//!    the suffix of a kept longer n-gram.
//! 2. From order 1 up: n-grams sorted by key are grouped by context; the discounted
//!    probability and the context's interpolation weight (the discounted mass plus the whole
//!    mass of pruned children) are sorted by suffix and joined with the probabilities of order
//!    n - 1, giving p = u + gamma * p_lower, sorted back by key.
//! 3. Each order's probabilities are joined with the interpolation weights of its n-grams as
//!    contexts, which are the back-off weights of the ARPA form.
//!
//! `<unk>` receives the unigram interpolation mass spread uniformly over the vocabulary.
//! Results do not depend on the memory budget: sums run over records in key order.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde::Serialize;

use super::external::{
    materialise, Combine, ExternalSorter, Rec, RecSource, Run, RunReader, RunWriter, REC_BYTES,
};
use super::model::MAX_ORDER;

/// Bits of one token id in a packed n-gram key (at most 2^24 distinct tokens).
pub const ID_BITS: u32 = 24;
const ID_MASK: u128 = (1 << ID_BITS) - 1;

/// Packs token ids (text order) into a key: the first token in the highest bits, so keys sort
/// by context first.
pub fn key_of(ids: &[u32]) -> u128 {
    ids.iter().fold(0u128, |k, &id| (k << ID_BITS) | id as u128)
}

/// The token ids of a key of `n` tokens.
pub fn unpack(mut key: u128, n: usize, out: &mut Vec<u32>) {
    out.clear();
    out.resize(n, 0);
    for slot in out.iter_mut().rev() {
        *slot = (key & ID_MASK) as u32;
        key >>= ID_BITS;
    }
}

fn suffix(key: u128, n: usize) -> u128 {
    key & ((1u128 << (ID_BITS * (n as u32 - 1))) - 1)
}

fn first(key: u128, n: usize) -> u128 {
    key >> (ID_BITS * (n as u32 - 1))
}

/// The key with its first token moved last: sorts by suffix.
fn rotate(key: u128, n: usize) -> u128 {
    (suffix(key, n) << ID_BITS) | first(key, n)
}

fn unrotate(rot: u128, n: usize) -> u128 {
    ((rot & ID_MASK) << (ID_BITS * (n as u32 - 1))) | (rot >> ID_BITS)
}

fn f(bits: u64) -> f64 {
    f64::from_bits(bits)
}

/// What training produced, written to the model's sidecar JSON.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    /// Model order N.
    pub order: usize,
    /// Sentences (lines with at least one token) counted.
    pub sentences: u64,
    /// Tokens counted (without markers).
    pub tokens: u64,
    /// Vocabulary size: tokens seen, `</s>` and `<unk>`.
    pub vocabulary: u64,
    /// N-grams kept per order (ARPA counts, `<s>` and `<unk>` included in the unigrams).
    pub ngrams: Vec<u64>,
    /// Distinct n-grams per order before pruning.
    pub counted: Vec<u64>,
    /// Pruning thresholds per order (adjusted count at most this is dropped).
    pub prune: Vec<u64>,
    /// Discounts D1, D2, D3+ per order.
    pub discounts: Vec<[f64; 3]>,
    /// Sort runs written to disk while counting (0: everything fitted in memory).
    pub spilled_runs: usize,
}

/// The estimated model: per order a run of `(key, log10 p as f32 bits, log10 back-off as f32
/// bits)` sorted by key, and log10 p(`<unk>`).
pub struct Estimate {
    /// One run per order.
    pub orders: Vec<Run>,
    /// log10 p(`<unk>`).
    pub unk: f32,
    /// Id of `<s>` (its unigram gets log10 p = -99, as in KenLM's ARPA output).
    pub bos: u32,
    /// What was counted and kept.
    pub summary: TrainSummary,
}

/// Counts the n-grams of sentences of token ids in bounded memory.
pub struct NgramCounter {
    order: usize,
    sorters: Vec<ExternalSorter>,
    dir: PathBuf,
    memory_records: usize,
    bos: u32,
    eos: u32,
    sent: Vec<u32>,
    sentences: u64,
    tokens: u64,
}

impl NgramCounter {
    /// A counter for an order-`order` model using about `memory` bytes of sort buffers,
    /// spilling into `dir`; `bos`/`eos` are the ids of `<s>` and `</s>`.
    pub fn new(order: usize, memory: u64, dir: &Path, bos: u32, eos: u32) -> Result<Self> {
        ensure!(
            (1..=MAX_ORDER).contains(&order),
            "order must be 1..={MAX_ORDER}, got {order}"
        );
        let memory_records = (memory / REC_BYTES as u64).max(1024) as usize;
        // The top order gets most of the buffer; lower orders only see sentence starts now.
        let lower = if order > 1 {
            memory_records / 5 / (order - 1)
        } else {
            0
        };
        let sorters = (1..=order)
            .map(|n| {
                let cap = if n == order {
                    memory_records - lower * (order - 1)
                } else {
                    lower
                };
                ExternalSorter::new(dir, &format!("count{n}"), cap, Combine::Sum)
            })
            .collect();
        Ok(NgramCounter {
            order,
            sorters,
            dir: dir.to_path_buf(),
            memory_records,
            bos,
            eos,
            sent: Vec::new(),
            sentences: 0,
            tokens: 0,
        })
    }

    /// Sentences counted so far.
    pub fn sentences(&self) -> u64 {
        self.sentences
    }

    /// Counts one sentence (token ids without markers; an empty one is ignored).
    pub fn add_sentence(&mut self, ids: &[u32]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        if let Some(&big) = ids.iter().find(|&&id| id as u128 > ID_MASK) {
            bail!("token id {big} does not fit in {ID_BITS} bits");
        }
        self.sent.clear();
        self.sent.push(self.bos);
        self.sent.extend_from_slice(ids);
        self.sent.push(self.eos);
        self.sentences += 1;
        self.tokens += ids.len() as u64;
        for i in 1..self.sent.len() {
            let n = self.order.min(i + 1);
            let key = key_of(&self.sent[i + 1 - n..=i]);
            self.sorters[n - 1].push(Rec::new(key, 1, 0))?;
        }
        Ok(())
    }

    /// Estimates the model; `prune[k]` is the threshold of order k + 1 (empty: no pruning).
    pub fn estimate(self, prune: &[u64]) -> Result<Estimate> {
        ensure!(self.sentences > 0, "no text to train on");
        let n_max = self.order;
        let prune = prune_thresholds(prune, n_max)?;
        let pruning = prune.iter().any(|&t| t > 0);
        let spilled_runs = self.sorters.iter().map(|s| s.runs()).sum();
        let NgramCounter {
            mut sorters,
            dir,
            memory_records,
            bos,
            sentences,
            tokens,
            ..
        } = self;
        let (a_runs, coc, counted) =
            adjusted_counts(&mut sorters, &dir, memory_records, bos, &prune, pruning)?;
        let discounts: Vec<[f64; 3]> = coc.iter().map(|&c| discounts_from(c)).collect();
        // Tokens and </s> (`counted[0]`, without <s>), plus <unk>.
        let vocab = (counted[0] + 1) as f64;

        // Bottom-up probabilities; contexts' interpolation weights become back-offs.
        let mut p_runs: Vec<Run> = Vec::with_capacity(n_max);
        let mut bo_runs: Vec<Run> = Vec::with_capacity(n_max);
        let mut unk = 0f64;
        let mut kept = vec![0u64; n_max];
        for n in 1..=n_max {
            let disc = |c: u64| discounts[n - 1][(c.min(3) - 1) as usize];
            let mut input = a_runs[n - 1].open()?;
            let mut bo_out = if n >= 2 {
                Some(RunWriter::create(&dir.join(format!("bo{}.run", n - 1)))?)
            } else {
                None
            };
            let mut p1 = if n == 1 {
                Some(RunWriter::create(&dir.join("p1.run"))?)
            } else {
                None
            };
            let mut by_suffix = ExternalSorter::new(
                &dir,
                &format!("suffix{n}"),
                memory_records / 2,
                Combine::Unique,
            );
            let mut group: Vec<Rec> = Vec::new();
            let mut next = input.next_rec()?;
            while let Some(head) = next {
                let ctx = if n == 1 { 0 } else { head.key >> ID_BITS };
                group.clear();
                group.push(head);
                loop {
                    next = input.next_rec()?;
                    match next {
                        Some(r) if n > 1 && r.key >> ID_BITS == ctx => group.push(r),
                        Some(r) if n == 1 => group.push(r),
                        _ => break,
                    }
                }
                let is_bos = |r: &Rec| n == 1 && r.key == bos as u128;
                let (mut total, mut taken) = (0u64, 0f64);
                for r in group.iter().filter(|r| !is_bos(r)) {
                    total += r.a;
                    taken += if r.b == 1 { disc(r.a) } else { r.a as f64 };
                }
                ensure!(total > 0, "order {n}: a context with no count");
                let gamma = taken / total as f64;
                if let Some(w) = bo_out.as_mut() {
                    w.push(Rec::new(ctx, gamma.to_bits(), 0))?;
                }
                if n == 1 {
                    unk = gamma / vocab;
                }
                for r in group.iter().filter(|r| r.b == 1) {
                    kept[n - 1] += 1;
                    if is_bos(r) {
                        if let Some(w) = p1.as_mut() {
                            w.push(Rec::new(r.key, 0f64.to_bits(), 0))?;
                        }
                        continue;
                    }
                    let u = (r.a as f64 - disc(r.a)) / total as f64;
                    match p1.as_mut() {
                        Some(w) => w.push(Rec::new(r.key, (u + gamma / vocab).to_bits(), 0))?,
                        None => by_suffix.push(Rec::new(
                            rotate(r.key, n),
                            u.to_bits(),
                            gamma.to_bits(),
                        ))?,
                    }
                }
            }
            if let Some(w) = bo_out {
                bo_runs.push(w.finish()?);
            }
            if let Some(w) = p1 {
                p_runs.push(w.finish()?);
                continue;
            }
            // Join with p of order n - 1 (both sorted by the suffix), then sort back by key.
            let mut lower = p_runs[n - 2].open()?;
            let mut low = lower.next_rec()?;
            let mut by_key = ExternalSorter::new(
                &dir,
                &format!("key{n}"),
                memory_records / 2,
                Combine::Unique,
            );
            let mut merged = by_suffix.finish()?;
            while let Some(r) = merged.next_rec()? {
                let want = r.key >> ID_BITS;
                while low.is_some_and(|l| l.key < want) {
                    low = lower.next_rec()?;
                }
                let Some(l) = low.filter(|l| l.key == want) else {
                    bail!("order {n}: an n-gram whose suffix has no probability");
                };
                let p = f(r.a) + f(r.b) * f(l.a);
                by_key.push(Rec::new(unrotate(r.key, n), p.to_bits(), 0))?;
            }
            drop(merged);
            let path = dir.join(format!("p{n}.run"));
            p_runs.push(materialise(&mut by_key.finish()?, &path)?);
        }
        for run in &a_runs {
            let _ = std::fs::remove_file(&run.path);
        }

        // Join probabilities with back-offs into the final log10 form.
        let mut orders = Vec::with_capacity(n_max);
        for n in 1..=n_max {
            let mut p = p_runs[n - 1].open()?;
            let mut bo: Option<RunReader> = match bo_runs.get(n - 1) {
                Some(r) => Some(r.open()?),
                None => None,
            };
            let mut bo_head = match bo.as_mut() {
                Some(b) => b.next_rec()?,
                None => None,
            };
            let mut w = RunWriter::create(&dir.join(format!("final{n}.run")))?;
            while let Some(r) = p.next_rec()? {
                if let Some(b) = bo.as_mut() {
                    while bo_head.is_some_and(|h| h.key < r.key) {
                        bo_head = b.next_rec()?;
                    }
                }
                let backoff = match bo_head {
                    Some(h) if h.key == r.key => f(h.a).log10() as f32,
                    _ => 0.0,
                };
                let prob = if n == 1 && r.key == bos as u128 {
                    -99.0
                } else {
                    f(r.a).log10() as f32
                };
                ensure!(prob.is_finite(), "order {n}: a probability of zero");
                let backoff = if backoff.is_finite() { backoff } else { 0.0 };
                w.push(Rec::new(
                    r.key,
                    prob.to_bits() as u64,
                    backoff.to_bits() as u64,
                ))?;
            }
            orders.push(w.finish()?);
        }
        for r in p_runs.iter().chain(&bo_runs) {
            let _ = std::fs::remove_file(&r.path);
        }
        let mut ngrams = kept;
        ngrams[0] += 1; // <unk>
        Ok(Estimate {
            orders,
            unk: unk.log10() as f32,
            bos,
            summary: TrainSummary {
                order: n_max,
                sentences,
                tokens,
                vocabulary: vocab as u64,
                ngrams,
                counted,
                prune,
                discounts,
                spilled_runs,
            },
        })
    }
}

/// The thresholds per order: the last one given applies to the higher orders; unigrams are
/// never pruned and thresholds must not decrease.
fn prune_thresholds(given: &[u64], order: usize) -> Result<Vec<u64>> {
    if given.is_empty() {
        return Ok(vec![0; order]);
    }
    ensure!(
        given[0] == 0,
        "unigrams cannot be pruned: the first threshold must be 0"
    );
    ensure!(
        given.windows(2).all(|w| w[0] <= w[1]),
        "pruning thresholds must not decrease, got {given:?}"
    );
    let last = *given.last().unwrap_or(&0);
    Ok((0..order)
        .map(|k| given.get(k).copied().unwrap_or(last))
        .collect())
}

/// Per order: the run of `(key, adjusted count, kept 0/1)`, the count-of-counts n1..n4 and
/// the number of distinct n-grams.
type AdjustedCounts = (Vec<Run>, Vec<[u64; 5]>, Vec<u64>);

/// Step 1: merges the counts from the top order down into adjusted counts (per order a run
/// of `(key, adjusted count, kept 0/1)` sorted by key), count-of-counts and distinct n-grams.
fn adjusted_counts(
    sorters: &mut Vec<ExternalSorter>,
    dir: &Path,
    memory_records: usize,
    bos: u32,
    prune: &[u64],
    pruning: bool,
) -> Result<AdjustedCounts> {
    let n_max = sorters.len();
    // `<s>` is never predicted but is a context: it needs a unigram for its back-off.
    sorters[0].push(Rec::new(bos as u128, 0, 0))?;
    let mut runs: Vec<Option<Run>> = vec![None; n_max];
    let mut coc = vec![[0u64; 5]; n_max];
    let mut counted = vec![0u64; n_max];
    let mut needed: Option<ExternalSorter> = None;
    for n in (1..=n_max).rev() {
        let sorter = sorters.pop().context("missing sorter")?;
        let mut merged = sorter.finish()?;
        let mut need = match needed.take() {
            Some(s) => Some(s.finish()?),
            None => None,
        };
        let mut need_head = match need.as_mut() {
            Some(m) => m.next_rec()?,
            None => None,
        };
        if let Some(lower) = sorters.last_mut() {
            // What the merge still holds in memory is taken from the budget.
            let free = memory_records.saturating_sub(merged.in_memory());
            let share = if pruning { 2 } else { 1 };
            lower.set_capacity(free / (share + 1) * share)?;
            if pruning {
                needed = Some(ExternalSorter::new(
                    dir,
                    &format!("needed{}", n - 1),
                    free / 3,
                    Combine::Sum,
                ));
            }
        }
        let mut out = RunWriter::create(&dir.join(format!("adjusted{n}.run")))?;
        while let Some(r) = merged.next_rec()? {
            let c = r.a;
            let is_bos = n == 1 && r.key == bos as u128;
            if !is_bos {
                counted[n - 1] += 1;
                if (1..=4).contains(&c) {
                    coc[n - 1][c as usize] += 1;
                }
            }
            let mut keep = n == 1 || c > prune[n - 1];
            if let Some(m) = need.as_mut() {
                while need_head.is_some_and(|h| h.key < r.key) {
                    need_head = m.next_rec()?;
                }
                keep |= need_head.is_some_and(|h| h.key == r.key);
            }
            out.push(Rec::new(r.key, c, keep as u64))?;
            if n >= 2 {
                if let Some(lower) = sorters.last_mut() {
                    lower.push(Rec::new(suffix(r.key, n), 1, 0))?;
                }
                if keep {
                    if let Some(s) = needed.as_mut() {
                        s.push(Rec::new(r.key >> ID_BITS, 1, 0))?;
                        s.push(Rec::new(suffix(r.key, n), 1, 0))?;
                    }
                }
            }
        }
        runs[n - 1] = Some(out.finish()?);
    }
    let runs = runs
        .into_iter()
        .collect::<Option<Vec<Run>>>()
        .context("missing order")?;
    Ok((runs, coc, counted))
}

/// Modified Kneser-Ney discounts from the count-of-counts n1..n4 (index = count).
fn discounts_from(coc: [u64; 5]) -> [f64; 3] {
    let fallback = [0.5, 1.0, 1.5];
    let [_, n1, n2, n3, n4] = coc.map(|c| c as f64);
    if n1 == 0.0 || n2 == 0.0 || n3 == 0.0 || n4 == 0.0 {
        return fallback;
    }
    let y = n1 / (n1 + 2.0 * n2);
    let d = [
        1.0 - 2.0 * y * n2 / n1,
        2.0 - 3.0 * y * n3 / n2,
        3.0 - 4.0 * y * n4 / n3,
    ];
    if d.iter()
        .enumerate()
        .all(|(i, &x)| x > 0.0 && x < (i + 1) as f64)
    {
        d
    } else {
        fallback
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lm::model::{token_hash, NgramModel};
    use crate::lm::output::{entries, write_binary};

    /// Word ids: 0 <unk>, 1 <s>, 2 </s>, then the words of the corpus in order of appearance.
    struct Vocab(Vec<String>);

    impl Vocab {
        fn new() -> Self {
            Vocab(vec!["<unk>".into(), "<s>".into(), "</s>".into()])
        }
        fn id(&mut self, w: &str) -> u32 {
            match self.0.iter().position(|x| x == w) {
                Some(i) => i as u32,
                None => {
                    self.0.push(w.to_string());
                    (self.0.len() - 1) as u32
                }
            }
        }
    }

    fn estimate(
        text: &str,
        order: usize,
        memory: u64,
        prune: &[u64],
    ) -> (Estimate, Vocab, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut v = Vocab::new();
        let mut c = NgramCounter::new(order, memory, dir.path(), 1, 2).unwrap();
        for line in text.lines() {
            let ids: Vec<u32> = line.split_whitespace().map(|w| v.id(w)).collect();
            c.add_sentence(&ids).unwrap();
        }
        (c.estimate(prune).unwrap(), v, dir)
    }

    fn model(est: &Estimate, v: &Vocab, dir: &Path) -> NgramModel {
        let hashes: Vec<u64> = v.0.iter().map(|w| token_hash(w)).collect();
        let p = dir.join("m.bin");
        write_binary(est, &hashes, &p, dir, 1 << 16).unwrap();
        NgramModel::load(&p).unwrap()
    }

    const TEXT: &str =
        "the cat sat on the mat\nthe dog sat on the log\na cat and a dog\nthe cat sat";

    /// Sums p(w | context) over the whole vocabulary plus <unk>: must be 1 for a proper model.
    fn assert_normalised(m: &NgramModel, vocab: &[&str], contexts: &[&[&str]]) {
        for ctx in contexts {
            let mut sum = 0f64;
            let mut buf: Vec<u64> = vec![token_hash("<s>")];
            buf.extend(ctx.iter().map(|w| token_hash(w)));
            let i = buf.len();
            for w in vocab.iter().copied().chain(["</s>", "unseen-word"]) {
                buf.truncate(i);
                buf.push(token_hash(w));
                sum += 10f64.powf(m.token_log10(&buf, i) as f64);
            }
            assert!((sum - 1.0).abs() < 1e-4, "context {ctx:?}: sum {sum}");
        }
    }

    #[test]
    fn conditional_distributions_sum_to_one_with_and_without_pruning() {
        let vocab: Vec<&str> = "the cat sat on mat dog log a and".split(' ').collect();
        let contexts: [&[&str]; 5] = [&[], &["the"], &["the", "cat"], &["on", "the"], &["zzz"]];
        for prune in [&[][..], &[0, 1][..], &[0, 0, 1][..]] {
            let (est, v, dir) = estimate(TEXT, 3, 1 << 20, prune);
            let m = model(&est, &v, dir.path());
            assert_normalised(&m, &vocab, &contexts);
        }
    }

    #[test]
    fn tiny_memory_gives_the_model_of_unlimited_memory() {
        // Enough text that a 1024-record buffer spills many runs at every order.
        let mut text = String::new();
        let mut x = 7u64;
        for i in 0..3000u64 {
            for _ in 0..(3 + i % 6) {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                // Skewed: small word numbers are frequent.
                let r = (x >> 40) % 1000;
                text.push_str(&format!("w{} ", r * r / 10_000));
            }
            text.push('\n');
        }
        let (small, _, _d1) = estimate(&text, 5, 1024 * 32, &[]);
        let (large, _, _d2) = estimate(&text, 5, 1 << 30, &[]);
        assert!(
            small.summary.spilled_runs > 10,
            "{} runs",
            small.summary.spilled_runs
        );
        assert_eq!(large.summary.spilled_runs, 0);
        assert_eq!(entries(&small).unwrap(), entries(&large).unwrap());
        assert_eq!(small.unk, large.unk);
        assert_eq!(small.summary.ngrams, large.summary.ngrams);
        let (pruned_small, _, _d3) = estimate(&text, 5, 1024 * 32, &[0, 1, 1, 2]);
        let (pruned_large, _, _d4) = estimate(&text, 5, 1 << 30, &[0, 1, 1, 2]);
        assert_eq!(
            entries(&pruned_small).unwrap(),
            entries(&pruned_large).unwrap()
        );
        assert!(pruned_large.summary.ngrams[4] < large.summary.ngrams[4]);
    }

    #[test]
    fn pruning_drops_rare_ngrams_by_hand_counted_thresholds() {
        // Trigrams (raw counts): <s> a b 4, a b c 3, b c </s> 3, a b d 1, b d </s> 1.
        // Bigrams (adjusted): <s> a 4 (raw), a b 1, b c 1, c </s> 1, b d 1, d </s> 1.
        let text = "a b c\na b c\na b c\na b d";
        let (none, v, _d) = estimate(text, 3, 1 << 20, &[]);
        // Unigrams: <s> a b c d </s> and <unk>.
        assert_eq!(none.summary.ngrams, [7, 6, 5]);
        let words = |e: &Estimate, n: usize| -> Vec<String> {
            entries(e).unwrap()[n - 1]
                .iter()
                .map(|(ids, _, _)| {
                    ids.iter()
                        .map(|&i| v.0[i as usize].as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect()
        };
        let (p3, _, _d) = estimate(text, 3, 1 << 20, &[0, 0, 1]);
        assert_eq!(p3.summary.ngrams, [7, 6, 3]);
        let mut tri = words(&p3, 3);
        tri.sort();
        assert_eq!(tri, ["<s> a b", "a b c", "b c </s>"]);
        // Bigram threshold 1 drops every bigram but `<s> a`, except the contexts and suffixes
        // of the kept trigrams: `a b`, `b c`, `c </s>` stay, `b d` and `d </s>` go.
        let (p2, _, _d) = estimate(text, 3, 1 << 20, &[0, 1]);
        assert_eq!(p2.summary.ngrams, [7, 4, 3]);
        let mut bi = words(&p2, 2);
        bi.sort();
        assert_eq!(bi, ["<s> a", "a b", "b c", "c </s>"]);
        assert!(estimate_err(text, &[1]).contains("unigrams cannot be pruned"));
        assert!(estimate_err(text, &[0, 2, 1]).contains("must not decrease"));
    }

    fn estimate_err(text: &str, prune: &[u64]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let mut c = NgramCounter::new(3, 1 << 20, dir.path(), 1, 2).unwrap();
        for line in text.lines() {
            c.add_sentence(&[3, 4, line.len() as u32]).unwrap();
        }
        format!("{:#}", c.estimate(prune).err().unwrap())
    }

    #[test]
    fn stateful_scoring_matches_token_by_token_lookups() {
        for order in 1..=5 {
            let (est, v, dir) = estimate(TEXT, order, 1 << 20, &[]);
            let m = model(&est, &v, dir.path());
            for sent in [
                "the cat sat on the log",
                "zebra the cat",
                "a dog sat zebra on mat",
                "log",
            ] {
                let words: Vec<u64> = sent.split(' ').map(token_hash).collect();
                let mut buf = Vec::new();
                let fast = m.score_tokens(&words, &mut buf);
                let mut full = vec![token_hash("<s>")];
                full.extend(&words);
                full.push(token_hash("</s>"));
                let slow: f64 = (1..full.len())
                    .map(|i| m.token_log10(&full, i) as f64)
                    .sum();
                assert!(
                    (fast.log10_prob - slow).abs() < 1e-4,
                    "order {order} {sent}: {fast:?} vs {slow}"
                );
            }
        }
    }

    #[test]
    fn seen_text_scores_better_than_shuffled() {
        let text = "the quick brown fox jumps over the lazy dog\n".repeat(3)
            + "a quick brown dog jumps over the lazy fox\n";
        let (est, v, dir) = estimate(&text, 5, 1 << 20, &[]);
        let m = model(&est, &v, dir.path());
        let score = |s: &str| {
            let w: Vec<u64> = s.split(' ').map(token_hash).collect();
            m.score_tokens(&w, &mut Vec::new())
        };
        let good = score("the quick brown fox jumps over the lazy dog");
        let bad = score("dog lazy the over jumps fox brown quick the");
        assert_eq!(good.tokens, 10);
        assert!(good.perplexity().unwrap() * 3.0 < bad.perplexity().unwrap());
    }
}

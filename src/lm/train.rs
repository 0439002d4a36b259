//! Estimates an interpolated modified Kneser-Ney n-gram model (Chen & Goodman) from text.
//!
//! Every line of the input is a sentence `<s> w1 .. wm </s>`. The highest order keeps raw
//! counts; lower orders use continuation counts (number of distinct left extensions), except
//! n-grams that start with `<s>`, which keep raw counts. Three discounts per order (for counts
//! 1, 2 and 3+) come from the count-of-counts; when those are degenerate (tiny corpora) the
//! fallback discounts 0.5, 1.0, 1.5 are used, like KenLM's `--discount_fallback`.
//! The interpolated probabilities are stored in back-off form, as KenLM's ARPA output does.
//! `<unk>` receives the unigram interpolation mass spread uniformly over the vocabulary.
//! No pruning: every n-gram seen is kept.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use anyhow::{ensure, Result};
use serde::Serialize;

use super::model::{encode, ngram_key, Entry, MAX_ORDER};
use super::tokenize::{bos_hash, eos_hash, WordTokenizer};

const ID_BITS: u32 = 24;
const ID_MASK: u128 = (1 << ID_BITS) - 1;
const BOS: u32 = 0;
const EOS: u32 = 1;

/// Hasher for packed n-gram keys (`u128` of token ids): one multiply-xorshift, far cheaper
/// than SipHash on the counting hot path. Keys come from our own ids, not from adversaries.
#[derive(Default, Clone, Copy)]
pub struct PackedKeyHasher(u64);

impl Hasher for PackedKeyHasher {
    fn finish(&self) -> u64 {
        let x = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^ (x >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x100_0000_01B3);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = (n as u64) ^ ((n >> 64) as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type KeyMap<V> = HashMap<u128, V, BuildHasherDefault<PackedKeyHasher>>;

/// Counts n-grams of a corpus, one sentence at a time, then estimates the model.
pub struct KneserNeyTrainer {
    order: usize,
    ids: HashMap<u64, u32, BuildHasherDefault<PackedKeyHasher>>,
    hashes: Vec<u64>,
    counts: Vec<KeyMap<u64>>,
    tokenizer: WordTokenizer,
    sentence: Vec<u32>,
    sentences: u64,
    tokens: u64,
}

/// What training produced, written to the model's sidecar JSON.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    /// Model order N.
    pub order: usize,
    /// Sentences (non-empty lines) read.
    pub sentences: u64,
    /// Word tokens read (without markers).
    pub tokens: u64,
    /// Vocabulary size including `</s>` and `<unk>`.
    pub vocabulary: u64,
    /// Number of n-grams per order.
    pub ngrams: Vec<u64>,
    /// Discounts D1, D2, D3+ per order.
    pub discounts: Vec<[f64; 3]>,
}

fn key_of(ids: &[u32]) -> u128 {
    ids.iter().fold(0u128, |k, &id| (k << ID_BITS) | id as u128)
}

fn unpack(mut key: u128, n: usize, out: &mut Vec<u32>) {
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

impl KneserNeyTrainer {
    /// A trainer for an order-`order` model (1..=5).
    pub fn new(order: usize) -> Result<Self> {
        ensure!(
            (1..=MAX_ORDER).contains(&order),
            "order must be 1..={MAX_ORDER}, got {order}"
        );
        Ok(KneserNeyTrainer {
            order,
            ids: HashMap::default(),
            hashes: vec![bos_hash(), eos_hash()],
            counts: vec![KeyMap::default(); order],
            tokenizer: WordTokenizer::new(),
            sentence: Vec::new(),
            sentences: 0,
            tokens: 0,
        })
    }

    /// Adds every non-empty line of `text` as a sentence.
    pub fn add_text(&mut self, text: &str) -> Result<()> {
        for line in text.split('\n') {
            self.add_sentence(line)?;
        }
        Ok(())
    }

    /// Adds one sentence (ignored if it has no token).
    pub fn add_sentence(&mut self, line: &str) -> Result<()> {
        let mut sent = std::mem::take(&mut self.sentence);
        sent.clear();
        sent.push(BOS);
        let (ids, hashes) = (&mut self.ids, &mut self.hashes);
        let mut full = false;
        self.tokenizer.for_each_token(line, |t| {
            let h = super::tokenize::token_hash(t);
            let next = hashes.len() as u32;
            let id = *ids.entry(h).or_insert_with(|| {
                hashes.push(h);
                next
            });
            full |= id as u128 > ID_MASK;
            sent.push(id);
        });
        ensure!(!full, "vocabulary larger than 2^24 words");
        if sent.len() > 1 {
            sent.push(EOS);
            self.sentences += 1;
            self.tokens += (sent.len() - 2) as u64;
            for i in 1..sent.len() {
                let n = self.order.min(i + 1);
                *self.counts[n - 1]
                    .entry(key_of(&sent[i + 1 - n..=i]))
                    .or_insert(0) += 1;
            }
        }
        self.sentence = sent;
        Ok(())
    }

    /// Number of sentences added so far.
    pub fn sentences(&self) -> u64 {
        self.sentences
    }

    /// Estimates the model and returns the encoded file with a summary.
    pub fn finish(mut self) -> Result<(Vec<u8>, TrainSummary)> {
        ensure!(self.sentences > 0, "no text to train on");
        let n_max = self.order;
        // Continuation counts: every distinct n-gram adds one left extension to its suffix.
        for n in (2..=n_max).rev() {
            let (lower, upper) = self.counts.split_at_mut(n - 1);
            for &key in upper[0].keys() {
                *lower[n - 2].entry(suffix(key, n)).or_insert(0) += 1;
            }
        }
        // `<s>` is never predicted but is a context: it needs a unigram entry for its back-off.
        self.counts[0].insert(key_of(&[BOS]), 0);
        let discounts: Vec<[f64; 3]> = (1..=n_max)
            .map(|n| {
                let mut coc = [0u64; 5];
                for (&k, &c) in &self.counts[n - 1] {
                    if n == 1 && k == BOS as u128 {
                        continue;
                    }
                    if (1..=4).contains(&c) {
                        coc[c as usize] += 1;
                    }
                }
                discounts_from(coc)
            })
            .collect();
        let disc = |n: usize, c: u64| -> f64 { discounts[n - 1][(c.min(3) - 1) as usize] };

        // Per context: total count and the mass taken away by discounting (gamma numerator).
        let mut ctx_stats: Vec<KeyMap<(u64, f64)>> = vec![KeyMap::default(); n_max];
        for n in 1..=n_max {
            let stats = &mut ctx_stats[n - 1];
            for (&k, &c) in &self.counts[n - 1] {
                if n == 1 && k == BOS as u128 {
                    continue;
                }
                let e = stats.entry(k >> ID_BITS).or_insert((0, 0.0));
                e.0 += c;
                e.1 += disc(n, c);
            }
        }
        let vocab = (self.hashes.len() - 1 + 1) as f64; // words + </s> (no <s>) + <unk>
        let unigram_stats = ctx_stats[0].get(&0).copied().unwrap_or((1, 0.0));
        let p_unk = (unigram_stats.1 / unigram_stats.0 as f64) / vocab;

        // Interpolate from low to high order.
        let mut probs: Vec<KeyMap<f64>> = Vec::with_capacity(n_max);
        for n in 1..=n_max {
            let mut p_n =
                KeyMap::with_capacity_and_hasher(self.counts[n - 1].len(), Default::default());
            for (&k, &c) in &self.counts[n - 1] {
                if n == 1 && k == BOS as u128 {
                    continue;
                }
                let (total, taken) = ctx_stats[n - 1][&(k >> ID_BITS)];
                let u = (c as f64 - disc(n, c)) / total as f64;
                let gamma = taken / total as f64;
                let lower = if n == 1 {
                    1.0 / vocab
                } else {
                    probs[n - 2][&suffix(k, n)]
                };
                p_n.insert(k, u + gamma * lower);
            }
            probs.push(p_n);
        }

        let mut tables: Vec<Vec<Entry>> = Vec::with_capacity(n_max);
        let mut ids = Vec::new();
        let mut toks = Vec::new();
        for n in 1..=n_max {
            let mut t = Vec::with_capacity(self.counts[n - 1].len());
            for &k in self.counts[n - 1].keys() {
                let prob = if n == 1 && k == BOS as u128 {
                    -99.0
                } else {
                    probs[n - 1][&k].log10() as f32
                };
                let backoff = if n < n_max {
                    ctx_stats[n]
                        .get(&k)
                        .map(|&(total, taken)| (taken / total as f64).log10() as f32)
                        .unwrap_or(0.0)
                } else {
                    0.0
                };
                unpack(k, n, &mut ids);
                toks.clear();
                toks.extend(ids.iter().map(|&id| self.hashes[id as usize]));
                t.push(Entry {
                    key: ngram_key(&toks),
                    prob,
                    backoff: if backoff.is_finite() { backoff } else { 0.0 },
                });
            }
            // Deterministic file bytes: insertion order must not depend on hash map order.
            t.sort_unstable_by_key(|e| e.key);
            tables.push(t);
        }
        let bytes = encode(&tables, p_unk.log10() as f32)?;
        let summary = TrainSummary {
            order: n_max,
            sentences: self.sentences,
            tokens: self.tokens,
            vocabulary: vocab as u64,
            ngrams: tables.iter().map(|t| t.len() as u64).collect(),
            discounts,
        };
        Ok((bytes, summary))
    }
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
    use crate::lm::model::{NgramModel, ScoreScratch};

    fn train(text: &str, order: usize) -> NgramModel {
        let mut t = KneserNeyTrainer::new(order).unwrap();
        t.add_text(text).unwrap();
        let (bytes, _) = t.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.bin");
        std::fs::write(&p, bytes).unwrap();
        NgramModel::load(&p).unwrap()
    }

    /// Sums p(w | context) over the whole vocabulary plus <unk>: must be 1 for a proper model.
    #[test]
    fn conditional_distributions_sum_to_one() {
        let text = "the cat sat on the mat\nthe dog sat on the log\na cat and a dog\nthe cat sat";
        let m = train(text, 3);
        let vocab: Vec<&str> = "the cat sat on mat dog log a and".split(' ').collect();
        let mut tok = WordTokenizer::new();
        for ctx in [
            vec![],
            vec!["the"],
            vec!["the", "cat"],
            vec!["on", "the"],
            vec!["zzz"],
        ] {
            let mut sum = 0f64;
            let mut buf = vec![bos_hash()];
            for w in &ctx {
                tok.hash_tokens(w, &mut buf);
            }
            let i = buf.len();
            for w in vocab.iter().copied().chain(["</s>"]) {
                buf.truncate(i);
                buf.push(super::super::tokenize::token_hash(w));
                sum += 10f64.powf(m.token_log10(&buf, i) as f64);
            }
            buf.truncate(i);
            buf.push(super::super::tokenize::token_hash("unseen-word"));
            sum += 10f64.powf(m.token_log10(&buf, i) as f64);
            assert!((sum - 1.0).abs() < 1e-4, "context {ctx:?}: sum {sum}");
        }
    }

    #[test]
    fn seen_text_scores_better_than_shuffled() {
        let text = "the quick brown fox jumps over the lazy dog\n".repeat(3)
            + "a quick brown dog jumps over the lazy fox\n";
        let m = train(&text, 5);
        let mut s = ScoreScratch::default();
        let good = m.score_text("the quick brown fox jumps over the lazy dog", &mut s);
        let bad = m.score_text("dog lazy the over jumps fox brown quick the", &mut s);
        assert_eq!(good.tokens, 10);
        assert!(good.perplexity().unwrap() * 3.0 < bad.perplexity().unwrap());
    }

    #[test]
    fn stateful_scoring_matches_token_by_token_lookups() {
        let text = "the cat sat on the mat\nthe dog sat on the log\na cat and a dog\nthe cat sat";
        for order in 1..=5 {
            let m = train(text, order);
            let mut tok = WordTokenizer::new();
            for sent in [
                "the cat sat on the log",
                "zebra the cat",
                "a dog sat zebra on mat",
                "log",
            ] {
                let mut words = Vec::new();
                tok.hash_tokens(sent, &mut words);
                let mut buf = Vec::new();
                let fast = m.score_tokens(&words, &mut buf);
                let mut full = vec![bos_hash()];
                full.extend(&words);
                full.push(eos_hash());
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
    fn training_is_deterministic() {
        let text = "one two three\nthree two one\none one two";
        let mk = || {
            let mut t = KneserNeyTrainer::new(3).unwrap();
            t.add_text(text).unwrap();
            t.finish().unwrap().0
        };
        assert_eq!(mk(), mk());
    }
}

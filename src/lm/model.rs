//! The n-gram model file: written once by `train-lm`, memory-mapped by every process that
//! scores, shared by all threads (loaded once per process through [`NgramModel::load_shared`]).
//!
//! Layout (all integers little-endian):
//!
//! | offset | content |
//! |---|---|
//! | 0 | magic `DMKNLM01` |
//! | 8 | `u32` format version (1), `u32` order N (1..=5) |
//! | 16 | `u64` total file length |
//! | 24 | `u64` xxh3-64 of every byte after the header |
//! | 32 | `f32` log10 p(`<unk>`), `u32` zero |
//! | 40 | per order 1..=N: `u64` table offset, `u64` slots (power of two), `u64` entries |
//! | header end, 16-aligned | per order: `slots` × 16-byte slots `u64 key, f32 log10 prob, f32 log10 backoff` |
//!
//! An n-gram's key is [`ngram_key`] of its token hashes, folded from the last token leftwards;
//! key 0 marks an empty slot. Lookup is linear probing from `key & (slots - 1)`. Probabilities
//! are in ARPA back-off form (the interpolation is already folded in), so scoring one token is
//! at most N lookups for the longest matching n-gram plus N - 1 for the back-off weights.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{bail, ensure, Context, Result};
use memmap2::Mmap;

use super::tokenize::{bos_hash, eos_hash, WordTokenizer};

/// File magic of a datamill n-gram model.
pub const MAGIC: &[u8; 8] = b"DMKNLM01";
/// Format version written and accepted.
pub const VERSION: u32 = 1;
/// Highest supported order.
pub const MAX_ORDER: usize = 5;
const FIXED_HEADER: usize = 40;
const SLOT: usize = 16;

/// Length of the header for a model of `order`, padded to 16 bytes.
pub fn header_len(order: usize) -> usize {
    (FIXED_HEADER + 24 * order).div_ceil(16) * 16
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Key of the unigram `w` (never 0).
#[inline]
pub fn key_start(w: u64) -> u64 {
    splitmix(w).max(1)
}

/// Extends a key one token to the left (never 0).
#[inline]
pub fn key_extend(key: u64, w: u64) -> u64 {
    splitmix(key.rotate_left(23) ^ w).max(1)
}

/// Key of an n-gram given its token hashes in text order.
pub fn ngram_key(tokens: &[u64]) -> u64 {
    let (last, rest) = tokens.split_last().expect("n-gram has at least one token");
    rest.iter()
        .rev()
        .fold(key_start(*last), |k, &w| key_extend(k, w))
}

#[derive(Clone, Copy)]
struct Table {
    offset: usize,
    mask: usize,
}

/// A loaded (memory-mapped) n-gram model.
pub struct NgramModel {
    map: Mmap,
    order: usize,
    unk: f32,
    tables: Vec<Table>,
    path: PathBuf,
    bos: u64,
    eos: u64,
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_bits(u32_at(b, at))
}

/// Log10 probability and token count of one text (sentence, paragraph or document).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Score {
    /// Sum of log10 p over the predicted tokens.
    pub log10_prob: f64,
    /// Number of predicted tokens (words plus one `</s>` per scored line).
    pub tokens: u64,
}

impl Score {
    /// Perplexity `10^(-log10_prob / tokens)`; `None` when nothing was scored.
    pub fn perplexity(&self) -> Option<f64> {
        (self.tokens > 0).then(|| 10f64.powf(-self.log10_prob / self.tokens as f64))
    }
}

impl NgramModel {
    /// Maps and checks a model file: a missing, truncated or foreign file is an error naming it.
    pub fn load(path: &Path) -> Result<Self> {
        let file = File::open(path)
            .with_context(|| format!("cannot open n-gram model {}", path.display()))?;
        // SAFETY: the model file is written once (atomically renamed) and never modified in
        // place while mapped; a concurrent truncation would be a misuse outside our control.
        let map = unsafe { Mmap::map(&file) }
            .with_context(|| format!("cannot map n-gram model {}", path.display()))?;
        Self::check(map, path).with_context(|| format!("bad n-gram model {}", path.display()))
    }

    fn check(map: Mmap, path: &Path) -> Result<Self> {
        let b: &[u8] = &map;
        ensure!(
            b.len() >= FIXED_HEADER && &b[..8] == MAGIC,
            "not a datamill n-gram model (wrong magic; make one with `datamill train-lm`)"
        );
        let version = u32_at(b, 8);
        ensure!(
            version == VERSION,
            "format version {version}, expected {VERSION}"
        );
        let order = u32_at(b, 12) as usize;
        ensure!(
            (1..=MAX_ORDER).contains(&order),
            "order {order} out of range"
        );
        let len = u64_at(b, 16);
        ensure!(
            len == b.len() as u64,
            "file is {} bytes, header says {len}: truncated or damaged",
            b.len()
        );
        let hl = header_len(order);
        ensure!(b.len() >= hl, "file shorter than its header");
        let sum = xxhash_rust::xxh3::xxh3_64(&b[hl..]);
        ensure!(sum == u64_at(b, 24), "checksum mismatch: damaged file");
        let unk = f32_at(b, 32);
        let mut tables = Vec::with_capacity(order);
        for k in 0..order {
            let at = FIXED_HEADER + 24 * k;
            let offset = u64_at(b, at) as usize;
            let slots = u64_at(b, at + 8) as usize;
            ensure!(
                slots.is_power_of_two()
                    && offset.is_multiple_of(SLOT)
                    && offset >= hl
                    && offset
                        .checked_add(slots * SLOT)
                        .is_some_and(|end| end <= b.len()),
                "table of order {} out of bounds",
                k + 1
            );
            tables.push(Table {
                offset,
                mask: slots - 1,
            });
        }
        Ok(NgramModel {
            map,
            order,
            unk,
            tables,
            path: path.to_path_buf(),
            bos: bos_hash(),
            eos: eos_hash(),
        })
    }

    /// Loads `path` once per process; later calls return the same shared model.
    pub fn load_shared(path: &Path) -> Result<Arc<Self>> {
        static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<NgramModel>>>> = OnceLock::new();
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let mut cache = CACHE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(m) = cache.get(&key) {
            return Ok(m.clone());
        }
        let m = Arc::new(Self::load(path)?);
        cache.insert(key, m.clone());
        Ok(m)
    }

    /// The model's order N.
    pub fn order(&self) -> usize {
        self.order
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of n-grams stored for each order.
    pub fn counts(&self) -> Vec<u64> {
        (0..self.order)
            .map(|k| u64_at(&self.map, FIXED_HEADER + 24 * k + 16))
            .collect()
    }

    /// Looks up an n-gram key in the table of order `n` (1-based): `(log10 prob, backoff)`.
    #[inline]
    fn get(&self, n: usize, key: u64) -> Option<(f32, f32)> {
        let t = self.tables[n - 1];
        let b: &[u8] = &self.map;
        let mut i = key as usize & t.mask;
        loop {
            let at = t.offset + i * SLOT;
            let k = u64_at(b, at);
            if k == key {
                return Some((f32_at(b, at + 8), f32_at(b, at + 12)));
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & t.mask;
        }
    }

    /// log10 p(`tokens[i]` | up to N - 1 tokens before it), ARPA back-off rule.
    pub fn token_log10(&self, tokens: &[u64], i: usize) -> f32 {
        let n_max = self.order.min(i + 1);
        let mut key = key_start(tokens[i]);
        let (mut prob, mut found) = match self.get(1, key) {
            Some((p, _)) => (p, 1),
            None => (self.unk, 1),
        };
        for n in 2..=n_max {
            key = key_extend(key, tokens[i + 1 - n]);
            match self.get(n, key) {
                Some((p, _)) => {
                    prob = p;
                    found = n;
                }
                None => break,
            }
        }
        // Back-off weights of the contexts of length found..N-1 that did not hold the word.
        let ctx_max = (self.order - 1).min(i);
        if found <= ctx_max {
            let mut ckey = key_start(tokens[i - 1]);
            for j in 1..=ctx_max {
                if j > 1 {
                    ckey = key_extend(ckey, tokens[i - j]);
                }
                if j < found {
                    continue;
                }
                match self.get(j, ckey) {
                    Some((_, bo)) => prob += bo,
                    None => break,
                }
            }
        }
        prob
    }

    /// Scores one sentence given as token hashes (without markers): `<s>` before, `</s>` after.
    ///
    /// Carries KenLM-style state from token to token: the contexts of token i are the n-grams
    /// ending at token i - 1, which were just looked up, so their back-off weights are reused
    /// and only the n-grams ending at i are probed (same result as [`Self::token_log10`]).
    pub fn score_tokens(&self, words: &[u64], buf: &mut Vec<u64>) -> Score {
        buf.clear();
        buf.push(self.bos);
        buf.extend_from_slice(words);
        buf.push(self.eos);
        // State: back-off of the n-grams of length 1..=matched ending at the previous token.
        let mut prev_bo = [0f32; MAX_ORDER];
        let mut prev_matched = match self.get(1, key_start(self.bos)) {
            Some((_, bo)) => {
                prev_bo[0] = bo;
                1
            }
            None => 0,
        };
        let mut s = 0f64;
        for i in 1..buf.len() {
            let mut cur_bo = [0f32; MAX_ORDER];
            let mut key = key_start(buf[i]);
            let (mut prob, mut matched) = match self.get(1, key) {
                Some((p, bo)) => {
                    cur_bo[0] = bo;
                    (p, 1)
                }
                None => (self.unk, 0),
            };
            for n in 2..=self.order.min(i + 1) {
                if matched < n - 1 {
                    break;
                }
                key = key_extend(key, buf[i + 1 - n]);
                match self.get(n, key) {
                    Some((p, bo)) => {
                        prob = p;
                        cur_bo[n - 1] = bo;
                        matched = n;
                    }
                    None => break,
                }
            }
            // Back-off weights of the contexts (length found..) that did not hold the word;
            // contexts longer than the previous token's match are absent (weight 1).
            let found = matched.max(1);
            let ctx_max = (self.order - 1).min(i).min(prev_matched);
            if ctx_max >= found {
                prob += prev_bo[found - 1..ctx_max].iter().sum::<f32>();
            }
            s += prob as f64;
            prev_bo = cur_bo;
            prev_matched = matched;
        }
        Score {
            log10_prob: s,
            tokens: (buf.len() - 1) as u64,
        }
    }

    /// Scores a text like CCNet: every non-empty line is a sentence; the scores are summed.
    pub fn score_text(&self, text: &str, scratch: &mut ScoreScratch) -> Score {
        let mut total = Score::default();
        for line in text.split('\n') {
            scratch.words.clear();
            scratch.tokenizer.hash_tokens(line, &mut scratch.words);
            if scratch.words.is_empty() {
                continue;
            }
            let s = self.score_tokens(&scratch.words, &mut scratch.buf);
            total.log10_prob += s.log10_prob;
            total.tokens += s.tokens;
        }
        total
    }
}

/// Reusable buffers for scoring (one per thread).
#[derive(Default)]
pub struct ScoreScratch {
    tokenizer: WordTokenizer,
    words: Vec<u64>,
    buf: Vec<u64>,
}

/// One n-gram entry to write: its key, log10 probability and log10 back-off weight.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// [`ngram_key`] of the n-gram.
    pub key: u64,
    /// log10 p(last token | the others).
    pub prob: f32,
    /// log10 back-off weight when the n-gram is a context (0 if never).
    pub backoff: f32,
}

/// Serialises a model: `tables[k]` holds the (k+1)-grams.
pub fn encode(tables: &[Vec<Entry>], unk: f32) -> Result<Vec<u8>> {
    let order = tables.len();
    ensure!(
        (1..=MAX_ORDER).contains(&order),
        "order {order} out of range"
    );
    let hl = header_len(order);
    let mut layout = Vec::with_capacity(order);
    let mut at = hl;
    for t in tables {
        let slots = (t.len() * 3 / 2 + 1).next_power_of_two().max(16);
        layout.push((at, slots));
        at += slots * SLOT;
    }
    let mut out = vec![0u8; at];
    out[..8].copy_from_slice(MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(order as u32).to_le_bytes());
    out[16..24].copy_from_slice(&(at as u64).to_le_bytes());
    out[32..36].copy_from_slice(&unk.to_bits().to_le_bytes());
    for (k, (t, &(offset, slots))) in tables.iter().zip(&layout).enumerate() {
        let h = FIXED_HEADER + 24 * k;
        out[h..h + 8].copy_from_slice(&(offset as u64).to_le_bytes());
        out[h + 8..h + 16].copy_from_slice(&(slots as u64).to_le_bytes());
        out[h + 16..h + 24].copy_from_slice(&(t.len() as u64).to_le_bytes());
        let mask = slots - 1;
        for e in t {
            if e.key == 0 {
                bail!("n-gram key 0 is reserved");
            }
            let mut i = e.key as usize & mask;
            loop {
                let s = offset + i * SLOT;
                let k = u64_at(&out, s);
                if k == 0 {
                    out[s..s + 8].copy_from_slice(&e.key.to_le_bytes());
                    out[s + 8..s + 12].copy_from_slice(&e.prob.to_bits().to_le_bytes());
                    out[s + 12..s + 16].copy_from_slice(&e.backoff.to_bits().to_le_bytes());
                    break;
                }
                ensure!(k != e.key, "duplicate n-gram key (hash collision)");
                i = (i + 1) & mask;
            }
        }
    }
    let sum = xxhash_rust::xxh3::xxh3_64(&out[hl..]);
    out[24..32].copy_from_slice(&sum.to_le_bytes());
    Ok(out)
}

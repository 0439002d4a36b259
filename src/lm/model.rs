//! The n-gram model file: written once by `train-lm` (or built in memory from an ARPA file),
//! memory-mapped by every process that scores, shared by all threads (loaded once per process
//! through [`super::scorer::PieceScorer::load_shared`]).
//!
//! Layout (all integers little-endian):
//!
//! | offset | content |
//! |---|---|
//! | 0 | magic `DMKNLM02` |
//! | 8 | `u32` format version (2), `u32` order N (1..=5) |
//! | 16 | `u64` total file length |
//! | 24 | `u64` xxh3-64 of every byte after the header |
//! | 32 | `f32` log10 p(`<unk>`), `u32` zero |
//! | 40 | per order 1..=N: `u64` table offset, `u64` home bits B, `u64` slots, `u64` entries |
//! | header end, 16-aligned | per order: `slots` × 16-byte slots `u64 key, f32 log10 prob, f32 log10 backoff` |
//!
//! An n-gram's key is [`ngram_key`] of its token hashes (the xxh3-64 of each token's text),
//! folded from the last token leftwards; key 0 marks an empty slot. A key's home slot is its
//! top B bits; lookup probes forward from there (never wrapping) until the key or an empty
//! slot. Entries are stored in key order, so the table is written in one sequential pass, and
//! its last slot is always empty. Probabilities are in ARPA back-off form, so scoring one
//! token is at most N lookups for the longest matching n-gram. As in KenLM's probing format,
//! n-grams are known by a 64-bit hash: two n-grams with the same key would be an error when
//! the table is built.

use std::fs::File;
use std::io::{Cursor, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use memmap2::Mmap;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

/// File magic of a datamill n-gram model.
pub const MAGIC: &[u8; 8] = b"DMKNLM02";
/// Format version written and accepted.
pub const VERSION: u32 = 2;
/// Highest supported order.
pub const MAX_ORDER: usize = 5;
const FIXED_HEADER: usize = 40;
const TABLE_HEADER: usize = 32;
const SLOT: usize = 16;

/// Length of the header for a model of `order`, padded to 16 bytes.
pub fn header_len(order: usize) -> usize {
    (FIXED_HEADER + TABLE_HEADER * order).div_ceil(16) * 16
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The hash a token is known by (xxh3-64 of its text).
pub fn token_hash(token: &str) -> u64 {
    xxh3_64(token.as_bytes())
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
    shift: u32,
}

enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A loaded n-gram model: a memory-mapped datamill file, or an ARPA file built in memory.
pub struct NgramModel {
    bytes: Bytes,
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
    /// Number of predicted tokens (pieces plus one `</s>` per scored line).
    pub tokens: u64,
}

impl Score {
    /// Perplexity `10^(-log10_prob / tokens)`; `None` when nothing was scored.
    pub fn perplexity(&self) -> Option<f64> {
        (self.tokens > 0).then(|| 10f64.powf(-self.log10_prob / self.tokens as f64))
    }
}

/// True when the file starts with the datamill model magic.
pub fn is_datamill_model(path: &Path) -> bool {
    let mut head = [0u8; 8];
    File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && &head == MAGIC
}

impl NgramModel {
    /// Loads a model: datamill's binary file (memory-mapped) or, when the file does not start
    /// with its magic, an ARPA text file (built in memory). A missing, truncated or foreign
    /// file is an error naming it.
    pub fn load(path: &Path) -> Result<Self> {
        if !is_datamill_model(path) {
            let file = File::open(path)
                .with_context(|| format!("cannot open n-gram model {}", path.display()))?;
            let mut head = Vec::with_capacity(4096);
            std::io::Read::read_to_end(&mut std::io::Read::take(&file, 4096), &mut head)
                .with_context(|| format!("cannot read n-gram model {}", path.display()))?;
            ensure!(
                memchr::memmem::find(&head, b"\\data\\").is_some(),
                "{}: neither a datamill n-gram model (wrong magic; make one with `datamill \
                 train-lm`) nor an ARPA file (no `\\data\\` line near the start)",
                path.display()
            );
            let file = File::open(path)
                .with_context(|| format!("cannot open n-gram model {}", path.display()))?;
            let bytes = super::arpa::read_arpa(std::io::BufReader::new(file), path)?;
            return Self::check(Bytes::Owned(bytes), path)
                .with_context(|| format!("bad n-gram model built from {}", path.display()));
        }
        let file = File::open(path)
            .with_context(|| format!("cannot open n-gram model {}", path.display()))?;
        // SAFETY: the model file is written once (atomically renamed) and never modified in
        // place while mapped; a concurrent truncation would be a misuse outside our control.
        let map = unsafe { Mmap::map(&file) }
            .with_context(|| format!("cannot map n-gram model {}", path.display()))?;
        Self::check(Bytes::Mapped(map), path)
            .with_context(|| format!("bad n-gram model {}", path.display()))
    }

    /// A model from encoded bytes (see [`ModelWriter`]).
    pub fn from_bytes(bytes: Vec<u8>, name: &Path) -> Result<Self> {
        Self::check(Bytes::Owned(bytes), name)
    }

    fn check(bytes: Bytes, path: &Path) -> Result<Self> {
        let b: &[u8] = &bytes;
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
        let sum = xxh3_64(&b[hl..]);
        ensure!(sum == u64_at(b, 24), "checksum mismatch: damaged file");
        let unk = f32_at(b, 32);
        let mut tables = Vec::with_capacity(order);
        for k in 0..order {
            let at = FIXED_HEADER + TABLE_HEADER * k;
            let offset = u64_at(b, at) as usize;
            let bits = u64_at(b, at + 8);
            let slots = u64_at(b, at + 16) as usize;
            ensure!(
                (1..=40).contains(&bits)
                    && slots > 1usize << bits
                    && offset.is_multiple_of(SLOT)
                    && offset >= hl
                    && slots
                        .checked_mul(SLOT)
                        .and_then(|n| offset.checked_add(n))
                        .is_some_and(|end| end <= b.len()),
                "table of order {} out of bounds",
                k + 1
            );
            // Every probe ends at an empty slot: the last one must be empty.
            ensure!(
                u64_at(b, offset + (slots - 1) * SLOT) == 0,
                "table of order {} does not end with an empty slot",
                k + 1
            );
            tables.push(Table {
                offset,
                shift: 64 - bits as u32,
            });
        }
        Ok(NgramModel {
            bytes,
            order,
            unk,
            tables,
            path: path.to_path_buf(),
            bos: token_hash("<s>"),
            eos: token_hash("</s>"),
        })
    }

    /// The model's order N.
    pub fn order(&self) -> usize {
        self.order
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// log10 p(`<unk>`).
    pub fn unk(&self) -> f32 {
        self.unk
    }

    /// Number of n-grams stored for each order.
    pub fn counts(&self) -> Vec<u64> {
        (0..self.order)
            .map(|k| u64_at(&self.bytes, FIXED_HEADER + TABLE_HEADER * k + 24))
            .collect()
    }

    /// Looks up an n-gram key in the table of order `n` (1-based): `(log10 prob, backoff)`.
    #[inline]
    fn get(&self, n: usize, key: u64) -> Option<(f32, f32)> {
        let t = self.tables[n - 1];
        let b: &[u8] = &self.bytes;
        let mut at = t.offset + (key >> t.shift) as usize * SLOT;
        loop {
            let k = u64_at(b, at);
            if k == key {
                return Some((f32_at(b, at + 8), f32_at(b, at + 12)));
            }
            if k == 0 {
                return None;
            }
            at += SLOT;
        }
    }

    /// Asks the CPU to start loading the home slots of the n-grams ending at `tokens[i]`
    /// (orders 1..=N, as far as the sentence reaches back). Only a hint: nothing is read, so
    /// results cannot change; it lets the lookups of later tokens overlap their cache misses.
    #[inline(always)]
    fn prefetch_ngrams_at(&self, tokens: &[u64], i: usize) {
        let mut key = key_start(tokens[i]);
        for n in 1..=self.order.min(i + 1) {
            if n > 1 {
                key = key_extend(key, tokens[i + 1 - n]);
            }
            let t = self.tables[n - 1];
            let at = t.offset + (key >> t.shift) as usize * SLOT;
            prefetch(self.bytes.as_ptr().wrapping_add(at));
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
        // Summed in f32 as KenLM's `score` does, so both give the same sentence scores.
        let mut s = 0f32;
        for i in 1..buf.len().min(1 + PREFETCH_AHEAD) {
            self.prefetch_ngrams_at(buf, i);
        }
        for i in 1..buf.len() {
            if i + PREFETCH_AHEAD < buf.len() {
                self.prefetch_ngrams_at(buf, i + PREFETCH_AHEAD);
            }
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
                for &bo in &prev_bo[found - 1..ctx_max] {
                    prob += bo;
                }
            }
            s += prob;
            prev_bo = cur_bo;
            prev_matched = matched;
        }
        Score {
            log10_prob: s as f64,
            tokens: (buf.len() - 1) as u64,
        }
    }
}

/// How many tokens ahead [`NgramModel::score_tokens`] starts loading table slots: enough for
/// the misses of several tokens to overlap.
const PREFETCH_AHEAD: usize = 8;

/// A hint to bring the cache line at `p` closer to the core (nothing off x86-64). The address
/// is never dereferenced, so any value is allowed.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint and does not fault on any address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
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

/// Home bits for a table of `entries`: at most two thirds of the home slots used.
pub fn home_bits(entries: u64) -> u32 {
    let want = (entries * 3 / 2 + 1).max(16);
    64 - (want - 1).leading_zeros()
}

/// Writes a model file in one sequential pass: the header is reserved, each order's entries
/// come in key order ([`ModelWriter::table`]), then the header is filled in.
pub struct ModelWriter<W: Write + Seek> {
    out: W,
    order: usize,
    unk: f32,
    hasher: Xxh3,
    tables: Vec<[u64; 4]>,
    at: u64,
}

impl<W: Write + Seek> ModelWriter<W> {
    /// Starts a model of `order` with log10 p(`<unk>`) `unk`.
    pub fn new(mut out: W, order: usize, unk: f32) -> Result<Self> {
        ensure!(
            (1..=MAX_ORDER).contains(&order),
            "order {order} out of range"
        );
        let hl = header_len(order);
        out.write_all(&vec![0u8; hl])?;
        Ok(ModelWriter {
            out,
            order,
            unk,
            hasher: Xxh3::new(),
            tables: Vec::with_capacity(order),
            at: hl as u64,
        })
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.hasher.update(bytes);
        self.out.write_all(bytes)?;
        self.at += bytes.len() as u64;
        Ok(())
    }

    /// Writes the next order's table: `entries` entries, strictly increasing keys.
    pub fn table(
        &mut self,
        entries: u64,
        mut next: impl FnMut() -> Result<Option<Entry>>,
    ) -> Result<()> {
        ensure!(self.tables.len() < self.order, "more tables than the order");
        let bits = home_bits(entries);
        let homes = 1u64 << bits;
        let offset = self.at;
        let empty = [0u8; SLOT];
        let (mut slot, mut written, mut last) = (0u64, 0u64, 0u64);
        while let Some(e) = next()? {
            ensure!(e.key != 0, "n-gram key 0 is reserved");
            ensure!(
                written == 0 || e.key > last,
                "n-gram keys out of order or repeated (two n-grams with one 64-bit key)"
            );
            let home = e.key >> (64 - bits);
            while slot < home {
                self.put(&empty)?;
                slot += 1;
            }
            let mut rec = [0u8; SLOT];
            rec[..8].copy_from_slice(&e.key.to_le_bytes());
            rec[8..12].copy_from_slice(&e.prob.to_bits().to_le_bytes());
            rec[12..].copy_from_slice(&e.backoff.to_bits().to_le_bytes());
            self.put(&rec)?;
            slot += 1;
            written += 1;
            last = e.key;
        }
        ensure!(
            written == entries,
            "order {}: {written} entries written, {entries} announced",
            self.tables.len() + 1
        );
        // Fill the home range and end with an empty slot.
        while slot < homes {
            self.put(&empty)?;
            slot += 1;
        }
        self.put(&empty)?;
        slot += 1;
        self.tables.push([offset, bits as u64, slot, entries]);
        Ok(())
    }

    /// Fills in the header and returns the output.
    pub fn finish(mut self) -> Result<W> {
        ensure!(self.tables.len() == self.order, "missing tables");
        let hl = header_len(self.order);
        let mut h = vec![0u8; hl];
        h[..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&(self.order as u32).to_le_bytes());
        h[16..24].copy_from_slice(&self.at.to_le_bytes());
        h[24..32].copy_from_slice(&self.hasher.digest().to_le_bytes());
        h[32..36].copy_from_slice(&self.unk.to_bits().to_le_bytes());
        for (k, t) in self.tables.iter().enumerate() {
            for (j, v) in t.iter().enumerate() {
                let at = FIXED_HEADER + TABLE_HEADER * k + 8 * j;
                h[at..at + 8].copy_from_slice(&v.to_le_bytes());
            }
        }
        self.out.seek(SeekFrom::Start(0))?;
        self.out.write_all(&h)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Serialises a model held in memory: `tables[k]` holds the (k+1)-grams, in any order.
pub fn encode(mut tables: Vec<Vec<Entry>>, unk: f32) -> Result<Vec<u8>> {
    let mut w = ModelWriter::new(Cursor::new(Vec::new()), tables.len(), unk)?;
    for t in &mut tables {
        t.sort_unstable_by_key(|e| e.key);
        let mut it = t.iter().copied();
        w.table(t.len() as u64, || Ok(it.next()))?;
    }
    Ok(w.finish()?.into_inner())
}

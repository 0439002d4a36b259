//! datamill's own inference for fastText supervised models (`.bin` and quantized `.ftz`),
//! giving the C++ library's answers without its per-word string building.
//!
//! A text becomes tokens ([`super::fasttext_tokens`]); each word adds its input rows (its own row
//! and the rows of its character n-grams, or for an unknown word the rows of its n-grams only),
//! then each word n-gram adds its hashed row; the mean of those rows is the hidden vector, and
//! the softmax or hierarchical-softmax output turns it into label probabilities.
//!
//! The rows are added one by one in the C++ library's order, so the hidden vector is the same
//! to the bit: summing each word's rows first (and caching the sums) changes float rounding
//! enough to move probabilities by 6e-5 on long documents. What is saved is everything around
//! the additions: a quantized input matrix is decoded once at load (each entry is the same
//! `norm * centroid` product the C++ code forms per use); known words' rows are listed at load;
//! an unknown word's rows (its character n-grams, hashed and looked up in the pruning index)
//! are kept in a bounded per-thread cache. The per-thread scratch is allocated once per thread,
//! so a document allocates nothing.
//!
//! The loaded model is read-only and shared by all threads (`Send + Sync`); only the per-thread
//! scratch is mutable.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use rustc_hash::FxHashMap;
use thread_local::ThreadLocal;

use super::fasttext_file::{self, Matrix, ModelFile, ProductQuantizer, QuantMatrix};
use super::fasttext_tokens::{fnv, for_each_char_ngram, for_each_token, Input, BOW, EOS, EOW};

/// Prefix of labels in fastText's dictionary (not stored in the file; fastText's default).
pub const LABEL_PREFIX: &[u8] = b"__label__";
/// Longest unknown word (bytes) whose rows are cached.
const CACHED_WORD_BYTES: usize = 30;
/// Most rows a cached word may have.
const CACHED_ROWS: usize = 40;
/// Slots of one thread's word cache (about 1.4 MB).
const CACHE_SLOTS: usize = 8192;
/// A quantized input matrix is decoded at load when it then takes at most this many bytes.
const DECODE_BYTES: usize = 1 << 30;
/// fastText's `std_log`: log(x + 1e-5), the probability floor of its scores.
fn std_log(x: f32) -> f32 {
    ((x as f64) + 1e-5).ln() as f32
}

/// One predicted label: its index among the model's labels and its probability as fastText
/// reports it (which includes fastText's 1e-5 floor).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Index into [`FastTextModel::labels`].
    pub label: usize,
    /// Probability.
    pub prob: f32,
}

/// The input matrix's rows: dense (as stored, or decoded from the quantizer) or quantized.
enum InputRows {
    Dense(Vec<f32>),
    Quantized(QuantMatrix),
}

/// How the output layer turns the hidden vector into scores.
enum Loss {
    Softmax,
    /// Hierarchical softmax: the Huffman tree over the label counts (`(left, right)` per node,
    /// leaves are the labels, the root is the last node).
    Hierarchical(Vec<(i32, i32)>),
}

/// A loaded fastText supervised model.
pub struct FastTextModel {
    path: PathBuf,
    dim: usize,
    nwords: usize,
    labels: Vec<String>,
    word_ngrams: usize,
    bucket: u32,
    minn: usize,
    maxn: usize,
    /// Dictionary entries' bytes, back to back; entry `i` is `arena[offsets[i]..offsets[i+1]]`.
    arena: Vec<u8>,
    offsets: Vec<u32>,
    /// Hash of each entry.
    hashes: Vec<u32>,
    /// Open-addressing table: entry id + 1, 0 for empty.
    table: Vec<u32>,
    /// For each word, its rows (own row first, then its character n-grams), when `maxn > 0`.
    subword_starts: Vec<u32>,
    subword_rows: Vec<u32>,
    /// Bucket to row remapping of a pruned model.
    prune: Option<FxHashMap<i32, i32>>,
    input: InputRows,
    output: Matrix,
    loss: Loss,
    scratch: ThreadLocal<RefCell<Scratch>>,
}

/// Per-thread working memory, allocated once per thread and model.
struct Scratch {
    hidden: Vec<f32>,
    output: Vec<f32>,
    word_hashes: Vec<i32>,
    wrapped: Vec<u8>,
    rows: Vec<u32>,
    best: Vec<(f32, u32)>,
    cache: RowCache,
}

/// A direct-mapped cache from an unknown word to its input rows.
struct RowCache {
    lens: Vec<u8>,
    keys: Vec<[u8; CACHED_WORD_BYTES]>,
    counts: Vec<u8>,
    rows: Vec<u32>,
}

impl RowCache {
    fn new() -> Self {
        RowCache {
            lens: vec![0; CACHE_SLOTS],
            keys: vec![[0; CACHED_WORD_BYTES]; CACHE_SLOTS],
            counts: vec![0; CACHE_SLOTS],
            rows: vec![0; CACHE_SLOTS * CACHED_ROWS],
        }
    }
    #[inline]
    fn slot(h: u32) -> usize {
        (h.wrapping_mul(0x9E37_79B1) >> 16) as usize & (CACHE_SLOTS - 1)
    }
    #[inline]
    fn get(&self, word: &[u8], h: u32) -> Option<&[u32]> {
        let s = Self::slot(h);
        let len = self.lens[s] as usize;
        (len == word.len() && &self.keys[s][..len] == word).then(|| {
            let start = s * CACHED_ROWS;
            &self.rows[start..start + self.counts[s] as usize]
        })
    }
    #[inline]
    fn put(&mut self, word: &[u8], h: u32, rows: &[u32]) {
        if word.len() > CACHED_WORD_BYTES || rows.len() > CACHED_ROWS {
            return;
        }
        let s = Self::slot(h);
        self.lens[s] = word.len() as u8;
        self.keys[s][..word.len()].copy_from_slice(word);
        self.counts[s] = rows.len() as u8;
        let start = s * CACHED_ROWS;
        self.rows[start..start + rows.len()].copy_from_slice(rows);
    }
}

impl FastTextModel {
    /// Loads a supervised model; any defect of the file, or a loss other than softmax and
    /// hierarchical softmax, is an error naming the file.
    pub fn load(path: &Path) -> Result<Self> {
        let file = fasttext_file::read(path)?;
        Self::from_file(file, path)
            .with_context(|| format!("cannot use fastText model {}", path.display()))
    }

    fn from_file(f: ModelFile, path: &Path) -> Result<Self> {
        let a = &f.args;
        ensure!(
            a.model == 3,
            "not a supervised model (model type {}): only classifiers predict labels",
            a.model
        );
        let loss_name = match a.loss {
            1 => "hierarchical softmax",
            3 => "softmax",
            2 => bail!(
                "negative-sampling loss is not supported (softmax and hierarchical softmax are)"
            ),
            4 => bail!("one-vs-all loss is not supported (softmax and hierarchical softmax are)"),
            l => bail!("unknown loss {l}"),
        };
        ensure!(f.nlabels > 0, "the model has no labels");
        let dim = a.dim as usize;
        let minn = a.minn.max(0) as usize;
        let maxn = a.maxn.max(0) as usize;
        let word_ngrams = a.word_ngrams.max(1) as usize;
        let uses_buckets = maxn > 0 || word_ngrams > 1;
        ensure!(
            a.bucket > 0 || !uses_buckets,
            "n-grams without hash buckets"
        );
        ensure!(
            f.input.cols() == dim && f.output.cols() == dim,
            "matrices of {} and {} columns for dimension {dim}",
            f.input.cols(),
            f.output.cols()
        );
        let in_rows = f.input.rows();
        ensure!(
            in_rows >= f.nwords,
            "input matrix has {in_rows} rows for {} words",
            f.nwords
        );
        let prune = match &f.pruneidx {
            Some(pairs) => {
                let mut m = FxHashMap::default();
                m.reserve(pairs.len());
                for &(from, to) in pairs {
                    ensure!(
                        to >= 0 && f.nwords + (to as usize) < in_rows,
                        "pruning index maps bucket {from} to row {to}, past the input matrix"
                    );
                    m.insert(from, to);
                }
                Some(m)
            }
            None => {
                ensure!(
                    !uses_buckets || in_rows >= f.nwords + a.bucket as usize,
                    "input matrix has {in_rows} rows for {} words and {} buckets",
                    f.nwords,
                    a.bucket
                );
                None
            }
        };
        let out_rows = f.output.rows();
        let loss = if a.loss == 3 {
            ensure!(
                out_rows == f.nlabels,
                "{loss_name} output has {out_rows} rows for {} labels",
                f.nlabels
            );
            Loss::Softmax
        } else {
            ensure!(
                out_rows + 1 >= f.nlabels,
                "{loss_name} output has {out_rows} rows for {} labels",
                f.nlabels
            );
            let counts: Vec<i64> = f.entries[f.nwords..].iter().map(|e| e.count).collect();
            Loss::Hierarchical(huffman_tree(&counts))
        };
        let input = match f.input {
            Matrix::Dense { data, .. } => InputRows::Dense(data),
            Matrix::Quantized(q) if q.rows.saturating_mul(dim * 4) <= DECODE_BYTES => {
                InputRows::Dense(decode_rows(&q))
            }
            Matrix::Quantized(q) => InputRows::Quantized(q),
        };

        let mut arena = Vec::new();
        let mut offsets = vec![0u32];
        let mut hashes = Vec::with_capacity(f.entries.len());
        for e in &f.entries {
            arena.extend_from_slice(&e.word);
            offsets.push(u32::try_from(arena.len()).context("dictionary over 4 GB")?);
            hashes.push(fnv(&e.word));
        }
        let slots = (f.entries.len() * 2).next_power_of_two().max(16);
        let mut table = vec![0u32; slots];
        for (id, &h) in hashes.iter().enumerate() {
            let mut s = h as usize & (slots - 1);
            // fastText keeps the first of two equal entries.
            loop {
                match table[s] {
                    0 => {
                        table[s] = id as u32 + 1;
                        break;
                    }
                    t if arena_word(&arena, &offsets, t as usize - 1) == f.entries[id].word => {
                        break
                    }
                    _ => s = (s + 1) & (slots - 1),
                }
            }
        }
        let labels = f.entries[f.nwords..]
            .iter()
            .map(|e| {
                let w = String::from_utf8_lossy(&e.word);
                w.strip_prefix("__label__").unwrap_or(&w).to_string()
            })
            .collect();

        let mut model = FastTextModel {
            path: path.to_path_buf(),
            dim,
            nwords: f.nwords,
            labels,
            word_ngrams,
            bucket: a.bucket.max(1) as u32,
            minn,
            maxn,
            arena,
            offsets,
            hashes,
            table,
            subword_starts: vec![0],
            subword_rows: Vec::new(),
            prune,
            input,
            output: f.output,
            loss,
            scratch: ThreadLocal::new(),
        };
        if maxn > 0 {
            let mut wrapped = Vec::new();
            let (mut starts, mut rows) = (vec![0u32], Vec::new());
            for id in 0..model.nwords {
                rows.push(id as u32);
                let word = model.entry(id);
                if word != EOS {
                    wrap(word, &mut wrapped);
                    model.char_ngram_rows(&wrapped, |r| rows.push(r));
                }
                starts.push(u32::try_from(rows.len()).context("too many subword rows")?);
            }
            model.subword_starts = starts;
            model.subword_rows = rows;
        }
        Ok(model)
    }

    /// The file the model was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The labels, without fastText's `__label__` prefix, in the model's order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    fn entry(&self, id: usize) -> &[u8] {
        arena_word(&self.arena, &self.offsets, id)
    }

    /// Dictionary id of `word` (hash `h`).
    #[inline]
    fn find(&self, word: &[u8], h: u32) -> Option<usize> {
        let mask = self.table.len() - 1;
        let mut s = h as usize & mask;
        loop {
            let t = self.table[s] as usize;
            if t == 0 {
                return None;
            }
            if self.hashes[t - 1] == h && self.entry(t - 1) == word {
                return Some(t - 1);
            }
            s = (s + 1) & mask;
        }
    }

    /// The input row of n-gram bucket `bucket`, after pruning (fastText's `pushHash`).
    #[inline]
    fn bucket_row(&self, bucket: i32) -> Option<u32> {
        let id = match &self.prune {
            None => bucket,
            Some(map) => *map.get(&bucket)?,
        };
        Some((self.nwords as i32 + id) as u32)
    }

    fn char_ngram_rows(&self, wrapped: &[u8], mut f: impl FnMut(u32)) {
        for_each_char_ngram(wrapped, self.minn, self.maxn, |h| {
            if let Some(r) = self.bucket_row((h % self.bucket) as i32) {
                f(r);
            }
        });
    }

    /// Adds input row `row` to `x`.
    #[inline]
    fn add_row(&self, x: &mut [f32], row: usize) {
        match &self.input {
            InputRows::Dense(data) => {
                let r = &data[row * self.dim..(row + 1) * self.dim];
                for (a, b) in x.iter_mut().zip(r) {
                    *a += *b;
                }
            }
            InputRows::Quantized(q) => add_quantized_row(q, x, row),
        }
    }

    /// The most likely label of `text`, or `None` when the text gives no input row (fastText
    /// then predicts nothing).
    pub fn predict_best(&self, text: &str, input: Input) -> Option<Prediction> {
        self.predict(text, input, 1, |p| p.first().copied())
    }

    /// The `k` most likely labels of `text`, best first, handed to `f` (no allocation).
    pub fn predict<R>(
        &self,
        text: &str,
        input: Input,
        k: usize,
        f: impl FnOnce(&[Prediction]) -> R,
    ) -> R {
        let cell = self.scratch.get_or(|| RefCell::new(self.new_scratch()));
        let mut s = cell.borrow_mut();
        let s = &mut *s;
        let k = k.clamp(1, self.labels.len());
        if !self.hidden(text.as_bytes(), input, s) {
            return f(&[]);
        }
        s.best.clear();
        match &self.loss {
            Loss::Softmax => self.softmax_best(k, s),
            Loss::Hierarchical(tree) => {
                let root = tree.len() - 1;
                self.dfs(tree, k, root, 0.0, &s.hidden, &mut s.best);
            }
        }
        let mut out = [Prediction {
            label: 0,
            prob: 0.0,
        }; 8];
        if k <= out.len() {
            for (o, &(score, label)) in out.iter_mut().zip(&s.best) {
                *o = Prediction {
                    label: label as usize,
                    prob: score.exp(),
                };
            }
            f(&out[..s.best.len()])
        } else {
            let v: Vec<Prediction> = s
                .best
                .iter()
                .map(|&(score, label)| Prediction {
                    label: label as usize,
                    prob: score.exp(),
                })
                .collect();
            f(&v)
        }
    }

    fn new_scratch(&self) -> Scratch {
        Scratch {
            hidden: vec![0.0; self.dim],
            output: vec![0.0; self.labels.len()],
            word_hashes: Vec::with_capacity(1024),
            wrapped: Vec::with_capacity(64),
            rows: Vec::with_capacity(64),
            best: Vec::with_capacity(8),
            cache: RowCache::new(),
        }
    }

    /// Fills `s.hidden` with the mean of the text's input rows; false when there are none.
    fn hidden(&self, text: &[u8], input: Input, s: &mut Scratch) -> bool {
        s.hidden.fill(0.0);
        s.word_hashes.clear();
        let mut rows = 0usize;
        for_each_token(text, input, |token| {
            let h = fnv(token);
            if let Some(n) = self.add_word(token, h, s) {
                rows += n as usize;
                s.word_hashes.push(h as i32);
            }
        });
        if self.word_ngrams > 1 {
            let hashes = &s.word_hashes;
            for i in 0..hashes.len() {
                let mut h = hashes[i] as i64 as u64;
                for &next in hashes.iter().take(i + self.word_ngrams).skip(i + 1) {
                    h = h.wrapping_mul(116_049_371).wrapping_add(next as i64 as u64);
                    if let Some(r) = self.bucket_row((h % self.bucket as u64) as i32) {
                        self.add_row(&mut s.hidden, r as usize);
                        rows += 1;
                    }
                }
            }
        }
        if rows == 0 {
            return false;
        }
        let scale = (1.0 / rows as f64) as f32;
        for x in &mut s.hidden {
            *x *= scale;
        }
        true
    }

    /// Adds the rows of one token to `s.hidden`, in fastText's order; returns their number, or
    /// `None` when the token is a label (which adds nothing and is not part of word n-grams).
    #[inline]
    fn add_word(&self, token: &[u8], h: u32, s: &mut Scratch) -> Option<u32> {
        match self.find(token, h) {
            Some(id) if id >= self.nwords => None,
            Some(id) if self.maxn == 0 => {
                self.add_row(&mut s.hidden, id);
                Some(1)
            }
            Some(id) => {
                let (a, b) = (
                    self.subword_starts[id] as usize,
                    self.subword_starts[id + 1] as usize,
                );
                for &r in &self.subword_rows[a..b] {
                    self.add_row(&mut s.hidden, r as usize);
                }
                Some((b - a) as u32)
            }
            None if token.starts_with(LABEL_PREFIX) => None,
            None if self.maxn == 0 || token == EOS => Some(0),
            None => {
                if let Some(rows) = s.cache.get(token, h) {
                    for &r in rows {
                        self.add_row(&mut s.hidden, r as usize);
                    }
                    return Some(rows.len() as u32);
                }
                wrap(token, &mut s.wrapped);
                s.rows.clear();
                let (rows, wrapped) = (&mut s.rows, &s.wrapped);
                self.char_ngram_rows(wrapped, |r| rows.push(r));
                for &r in rows.iter() {
                    self.add_row(&mut s.hidden, r as usize);
                }
                s.cache.put(token, h, &s.rows);
                Some(s.rows.len() as u32)
            }
        }
    }

    fn softmax_best(&self, k: usize, s: &mut Scratch) {
        let out = &mut s.output;
        for (i, o) in out.iter_mut().enumerate() {
            *o = dot_row(&self.output, &s.hidden, i);
        }
        let max = out.iter().copied().fold(out[0], f32::max);
        let mut z = 0.0f32;
        for o in out.iter_mut() {
            *o = ((*o - max) as f64).exp() as f32;
            z += *o;
        }
        for o in out.iter_mut() {
            *o /= z;
        }
        for (i, &p) in out.iter().enumerate() {
            push_best(&mut s.best, k, std_log(p), i as u32);
        }
    }

    /// Walks the Huffman tree best-first as fastText does, pruning branches that cannot beat
    /// the `k`-th best leaf so far or fall below fastText's floor.
    fn dfs(
        &self,
        tree: &[(i32, i32)],
        k: usize,
        node: usize,
        score: f32,
        hidden: &[f32],
        best: &mut Vec<(f32, u32)>,
    ) {
        if score < std_log(0.0) {
            return;
        }
        if best.len() == k && score < best[k - 1].0 {
            return;
        }
        let (left, right) = tree[node];
        if left < 0 && right < 0 {
            push_best(best, k, score, node as u32);
            return;
        }
        let osz = self.labels.len();
        let f = dot_row(&self.output, hidden, node - osz);
        let f = (1.0 / (1.0f32 + (-f).exp()) as f64) as f32;
        let low = std_log((1.0 - f as f64) as f32);
        self.dfs(tree, k, left as usize, score + low, hidden, best);
        self.dfs(tree, k, right as usize, score + std_log(f), hidden, best);
    }
}

fn arena_word<'a>(arena: &'a [u8], offsets: &[u32], id: usize) -> &'a [u8] {
    &arena[offsets[id] as usize..offsets[id + 1] as usize]
}

/// `<word>` into `out`.
fn wrap(word: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.push(BOW);
    out.extend_from_slice(word);
    out.push(EOW);
}

/// Keeps the `k` best `(score, label)` pairs, best first; a new pair equal to the worst kept
/// one replaces it (the order fastText's heap gives).
fn push_best(best: &mut Vec<(f32, u32)>, k: usize, score: f32, label: u32) {
    if best.len() == k && score < best[k - 1].0 {
        return;
    }
    let at = best
        .iter()
        .position(|&(s, _)| s <= score)
        .unwrap_or(best.len());
    best.insert(at, (score, label));
    best.truncate(k);
}

/// The quantized norm of row `row` (1 when norms are not quantized).
#[inline]
fn row_norm(q: &QuantMatrix, row: usize) -> f32 {
    match &q.norms {
        Some((codes, npq)) => npq.centroids[codes[row] as usize],
        None => 1.0,
    }
}

/// Centroid `code` of sub-quantizer `m`, with the offset of its floats in a row.
#[inline]
fn centroid(pq: &ProductQuantizer, m: usize, code: u8) -> (usize, &[f32]) {
    let (start, d) = if m == pq.nsubq - 1 {
        (m * 256 * pq.dsub + code as usize * pq.lastdsub, pq.lastdsub)
    } else {
        ((m * 256 + code as usize) * pq.dsub, pq.dsub)
    };
    (m * pq.dsub, &pq.centroids[start..start + d])
}

/// Adds row `row` of a product-quantized matrix to `x` (times its quantized norm).
#[inline]
fn add_quantized_row(q: &QuantMatrix, x: &mut [f32], row: usize) {
    let norm = row_norm(q, row);
    let pq = &q.pq;
    for (m, &code) in q.codes[row * pq.nsubq..(row + 1) * pq.nsubq]
        .iter()
        .enumerate()
    {
        let (at, c) = centroid(pq, m, code);
        for (a, b) in x[at..at + c.len()].iter_mut().zip(c) {
            *a += norm * *b;
        }
    }
}

/// The rows of a quantized matrix as dense floats: each entry is the product `norm * centroid`
/// that adding the row forms, so adding a decoded row gives the same floats.
fn decode_rows(q: &QuantMatrix) -> Vec<f32> {
    let dim = q.pq.dim;
    let mut out = vec![0.0f32; q.rows * dim];
    for (row, x) in out.chunks_exact_mut(dim).enumerate() {
        add_quantized_row(q, x, row);
    }
    out
}

/// Row `row` of an output matrix dotted with `x`, summed in fastText's order.
fn dot_row(m: &Matrix, x: &[f32], row: usize) -> f32 {
    match m {
        Matrix::Dense { cols, data, .. } => {
            let r = &data[row * cols..(row + 1) * cols];
            let mut d = 0.0f32;
            for (a, b) in r.iter().zip(x) {
                d += a * b;
            }
            d
        }
        Matrix::Quantized(q) => {
            let pq = &q.pq;
            let mut res = 0.0f32;
            for (m, &code) in q.codes[row * pq.nsubq..(row + 1) * pq.nsubq]
                .iter()
                .enumerate()
            {
                let (at, c) = centroid(pq, m, code);
                for (xv, cv) in x[at..at + c.len()].iter().zip(c) {
                    res += xv * cv;
                }
            }
            res * row_norm(q, row)
        }
    }
}

/// fastText's Huffman tree over label counts (labels sorted by falling count): leaves first,
/// then internal nodes, the root last; `(-1, -1)` for a leaf.
fn huffman_tree(counts: &[i64]) -> Vec<(i32, i32)> {
    let osz = counts.len();
    let n = 2 * osz - 1;
    let mut count = vec![1e15 as i64; n];
    count[..osz].copy_from_slice(counts);
    let mut children = vec![(-1i32, -1i32); n];
    let mut leaf = osz as i64 - 1;
    let mut node = osz;
    for i in osz..n {
        let mut mini = [0usize; 2];
        for m in &mut mini {
            if leaf >= 0 && count[leaf as usize] < count[node] {
                *m = leaf as usize;
                leaf -= 1;
            } else {
                *m = node;
                node += 1;
            }
        }
        children[i] = (mini[0] as i32, mini[1] as i32);
        count[i] = count[mini[0]].saturating_add(count[mini[1]]);
    }
    children
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huffman_tree_joins_the_two_rarest_first() {
        // Counts 5, 3, 1: leaves 2 (1) and 1 (3) join first, then that node (4) and leaf 0 (5).
        let t = huffman_tree(&[5, 3, 1]);
        assert_eq!(t[3], (2, 1));
        assert_eq!(t[4], (3, 0));
        assert_eq!(t[0], (-1, -1));
    }

    #[test]
    fn best_keeps_k_in_order_and_later_ties_win() {
        let mut b = Vec::new();
        for (s, l) in [(-3.0, 0), (-1.0, 1), (-2.0, 2), (-1.0, 3)] {
            push_best(&mut b, 2, s, l);
        }
        assert_eq!(b, [(-1.0, 3), (-1.0, 1)]);
    }
}

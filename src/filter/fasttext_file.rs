//! Reads a fastText model file (`.bin` or quantized `.ftz`) into memory, checking every size.
//!
//! The layout, all little-endian: magic and version (`i32` each); the arguments (12 `i32`, one
//! `f64`); the dictionary (size, word and label counts, token count, pruning-index size, then
//! each entry as a NUL-terminated string, an `i64` count and a type byte, then the pruning
//! index as `i32` pairs); the input matrix (a flag, then dense rows or a product-quantized
//! matrix); the output matrix likewise. Truncated files, impossible sizes and trailing bytes
//! are errors with the byte offset; nothing is allocated from a size before the bytes behind
//! it are known to exist.

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};

/// fastText's file magic.
const MAGIC: i32 = 793_712_314;
/// Newest fastText file version (fastText 0.9).
const VERSION: i32 = 12;
/// Oldest version with this layout (its supervised models use no character n-grams).
const OLDEST_VERSION: i32 = 11;
/// Centroids per sub-quantizer (fastText's `ksub_ = 1 << 8`).
const KSUB: usize = 256;

/// Training arguments stored in the file (the ones prediction needs).
#[derive(Debug, Clone)]
pub struct ModelArgs {
    /// Vector dimension.
    pub dim: i32,
    /// Longest word n-gram (1: words only).
    pub word_ngrams: i32,
    /// Loss: 1 hierarchical softmax, 2 negative sampling, 3 softmax, 4 one-vs-all.
    pub loss: i32,
    /// Model kind: 1 cbow, 2 skip-gram, 3 supervised.
    pub model: i32,
    /// Hash buckets of the n-grams.
    pub bucket: i32,
    /// Shortest character n-gram.
    pub minn: i32,
    /// Longest character n-gram (0: none).
    pub maxn: i32,
}

/// One dictionary entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The word or label, as bytes.
    pub word: Vec<u8>,
    /// Occurrences in the training data.
    pub count: i64,
}

/// A product quantizer: `nsubq` sub-vectors of `dsub` floats (the last has `lastdsub`), 256
/// centroids each.
#[derive(Debug, Clone)]
pub struct ProductQuantizer {
    /// Full vector dimension.
    pub dim: usize,
    /// Sub-quantizers.
    pub nsubq: usize,
    /// Floats per sub-vector.
    pub dsub: usize,
    /// Floats of the last sub-vector.
    pub lastdsub: usize,
    /// `dim * 256` floats.
    pub centroids: Vec<f32>,
}

/// A product-quantized matrix, with optionally quantized row norms.
#[derive(Debug, Clone)]
pub struct QuantMatrix {
    /// Rows.
    pub rows: usize,
    /// One code byte per sub-quantizer per row.
    pub codes: Vec<u8>,
    /// The row quantizer.
    pub pq: ProductQuantizer,
    /// Per-row norm codes and the one-dimensional norm quantizer.
    pub norms: Option<(Vec<u8>, ProductQuantizer)>,
}

/// A model matrix as stored.
#[derive(Debug, Clone)]
pub enum Matrix {
    /// Row-major floats.
    Dense {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// `rows * cols` floats.
        data: Vec<f32>,
    },
    /// Product-quantized rows.
    Quantized(QuantMatrix),
}

impl Matrix {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        match self {
            Matrix::Dense { rows, .. } => *rows,
            Matrix::Quantized(q) => q.rows,
        }
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        match self {
            Matrix::Dense { cols, .. } => *cols,
            Matrix::Quantized(q) => q.pq.dim,
        }
    }
}

/// Everything a fastText model file holds that prediction needs.
#[derive(Debug, Clone)]
pub struct ModelFile {
    /// Training arguments.
    pub args: ModelArgs,
    /// Words (ids `0..nwords`), then labels.
    pub entries: Vec<Entry>,
    /// Number of words.
    pub nwords: usize,
    /// Number of labels.
    pub nlabels: usize,
    /// Pruning index (n-gram bucket to kept row), `None` when the model was not pruned.
    pub pruneidx: Option<Vec<(i32, i32)>>,
    /// Input (embedding) matrix.
    pub input: Matrix,
    /// Output matrix.
    pub output: Matrix,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            bail!(
                "file ends inside {what} (needs {n} bytes at byte {}, file has {})",
                self.pos,
                self.bytes.len()
            );
        };
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        b.copy_from_slice(self.take(N, what)?);
        Ok(b)
    }
    fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }
    fn i64(&mut self, what: &str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }
    fn bool(&mut self, what: &str) -> Result<bool> {
        Ok(self.array::<1>(what)?[0] != 0)
    }
    /// A size that must be in `0..=max`.
    fn size(&mut self, wide: bool, max: usize, what: &str) -> Result<usize> {
        let at = self.pos;
        let v = if wide {
            self.i64(what)?
        } else {
            self.i32(what)? as i64
        };
        ensure!(
            v >= 0 && v as u64 <= max as u64,
            "impossible {what} {v} at byte {at} (at most {max} possible: the file is truncated or corrupt)"
        );
        Ok(v as usize)
    }
    fn floats(&mut self, n: usize, what: &str) -> Result<Vec<f32>> {
        let bytes = n.checked_mul(4).context("size overflows")?;
        let raw = self.take(bytes, what)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
    /// A NUL-terminated string.
    fn cstr(&mut self, what: &str) -> Result<Vec<u8>> {
        let rest = &self.bytes[self.pos..];
        let Some(n) = memchr::memchr(0, rest) else {
            bail!("file ends inside {what} at byte {}", self.pos);
        };
        let s = rest[..n].to_vec();
        self.pos += n + 1;
        Ok(s)
    }
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn product_quantizer(&mut self, what: &str) -> Result<ProductQuantizer> {
        let at = self.pos;
        let dim = self.size(false, self.remaining() / (KSUB * 4), what)?;
        let nsubq = self.size(false, dim, what)?;
        let dsub = self.size(false, dim, what)?;
        let lastdsub = self.size(false, dim, what)?;
        ensure!(
            nsubq > 0
                && dsub > 0
                && lastdsub > 0
                && lastdsub <= dsub
                && (nsubq - 1) * dsub + lastdsub == dim,
            "inconsistent {what} at byte {at}: dim {dim}, {nsubq} sub-quantizers of {dsub} (last {lastdsub})"
        );
        let centroids = self.floats(dim * KSUB, "quantizer centroids")?;
        Ok(ProductQuantizer {
            dim,
            nsubq,
            dsub,
            lastdsub,
            centroids,
        })
    }

    fn matrix(&mut self, quantized: bool) -> Result<Matrix> {
        let at = self.pos;
        if !quantized {
            let rows = self.size(true, self.remaining(), "matrix rows")?;
            let cols = self.size(true, self.remaining(), "matrix columns")?;
            let n = rows.checked_mul(cols).context("matrix size overflows")?;
            ensure!(
                n <= self.remaining() / 4,
                "file ends inside the {rows}x{cols} matrix at byte {at}"
            );
            let data = self.floats(n, "matrix data")?;
            return Ok(Matrix::Dense { rows, cols, data });
        }
        let qnorm = self.bool("quantized matrix")?;
        let rows = self.size(true, self.remaining(), "quantized matrix rows")?;
        let _cols = self.size(true, usize::MAX, "quantized matrix columns")?;
        let codesize = self.size(false, self.remaining(), "quantized code size")?;
        let codes = self.take(codesize, "quantized codes")?.to_vec();
        let pq = self.product_quantizer("quantizer")?;
        ensure!(
            rows.checked_mul(pq.nsubq) == Some(codesize),
            "quantized matrix at byte {at}: {codesize} code bytes for {rows} rows of {} sub-quantizers",
            pq.nsubq
        );
        let norms = if qnorm {
            let codes = self.take(rows, "norm codes")?.to_vec();
            let npq = self.product_quantizer("norm quantizer")?;
            ensure!(npq.dim == 1, "norm quantizer of dimension {}", npq.dim);
            Some((codes, npq))
        } else {
            None
        };
        Ok(Matrix::Quantized(QuantMatrix {
            rows,
            codes,
            pq,
            norms,
        }))
    }
}

/// Reads and checks the model file at `path`; errors name the file.
pub fn read(path: &Path) -> Result<ModelFile> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&bytes).with_context(|| format!("{} is not a usable fastText model", path.display()))
}

/// Parses the bytes of a model file.
pub fn parse(bytes: &[u8]) -> Result<ModelFile> {
    let mut c = Cursor { bytes, pos: 0 };
    let magic = c.i32("header")?;
    let version = c.i32("header")?;
    if magic != MAGIC {
        bail!("not a fastText model (magic {magic}, expected {MAGIC})");
    }
    ensure!(
        (OLDEST_VERSION..=VERSION).contains(&version),
        "fastText file version {version}, this reader knows versions {OLDEST_VERSION} to {VERSION}"
    );
    let mut a = [0i32; 12];
    for v in &mut a {
        *v = c.i32("arguments")?;
    }
    let _sampling = c.array::<8>("arguments")?;
    let [dim, _ws, _epoch, _min_count, _neg, word_ngrams, loss, model, bucket, minn, maxn, _lr_update] =
        a;
    let args = ModelArgs {
        dim,
        word_ngrams,
        loss,
        model,
        bucket,
        minn,
        // fastText reads version-11 supervised models without character n-grams.
        maxn: if version == 11 && model == 3 { 0 } else { maxn },
    };
    ensure!(
        dim > 0 && bucket >= 0,
        "impossible arguments: dim {dim}, bucket {bucket}"
    );

    let at = c.pos;
    let size = c.size(false, c.remaining() / 10, "dictionary size")?;
    let nwords = c.size(false, size, "word count")?;
    let nlabels = c.size(false, size, "label count")?;
    ensure!(
        nwords + nlabels == size,
        "dictionary at byte {at}: {nwords} words and {nlabels} labels but {size} entries"
    );
    let _ntokens = c.i64("dictionary")?;
    let prune_at = c.pos;
    let pruned = c.i64("pruning index size")?;
    ensure!(
        pruned >= -1 && pruned <= (c.remaining() / 8) as i64,
        "impossible pruning index size {pruned} at byte {prune_at} (the file is truncated or corrupt)"
    );
    let mut entries = Vec::with_capacity(size);
    for i in 0..size {
        let at = c.pos;
        let word = c.cstr("dictionary entry")?;
        let count = c.i64("dictionary entry")?;
        let kind = c.array::<1>("dictionary entry")?[0];
        ensure!(kind <= 1, "dictionary entry {i} at byte {at}: type {kind}");
        let is_label = kind == 1;
        ensure!(
            is_label == (i >= nwords),
            "dictionary entry {i} at byte {at}: words must come before labels"
        );
        entries.push(Entry { word, count });
    }
    let pruneidx = if pruned >= 0 {
        let mut pairs = Vec::with_capacity(pruned as usize);
        for _ in 0..pruned {
            pairs.push((c.i32("pruning index")?, c.i32("pruning index")?));
        }
        Some(pairs)
    } else {
        None
    };
    let quant_input = c.bool("input matrix flag")?;
    let input = c.matrix(quant_input)?;
    let qout = c.bool("output matrix flag")?;
    let output = c.matrix(quant_input && qout)?;
    ensure!(
        c.pos == bytes.len(),
        "{} unexpected bytes after the model's end at byte {}",
        bytes.len() - c.pos,
        c.pos
    );
    ensure!(
        quant_input || pruneidx.is_none(),
        "a pruned model must be quantized (fastText rejects this file too)"
    );
    Ok(ModelFile {
        args,
        entries,
        nwords,
        nlabels,
        pruneidx,
        input,
        output,
    })
}

//! Near-duplicate document removal with MinHash and LSH banding (`type = "minhash_dedup"`).
//!
//! Scan pass (one [`MinHashScanner`] per shard, in parallel): the text is normalised (lowercase,
//! punctuation dropped, whitespace collapsed), cut into word `shingle_size`-grams, and each
//! 64-bit shingle hash goes through `permutations` hash functions `a·x + b mod 2^64` (odd `a`,
//! the multiply-add family, cheaper than `mod 2^61 − 1`); the minimum of each is the
//! signature. The signature is cut into `bands` bands of
//! `permutations / bands` rows; each band gives one 64-bit band key. The scanner writes
//!
//! * `(band key, position)` records, 16 bytes each, in sorted runs of at most `memory_mb` to
//!   spill files, and
//! * one fixed-size signature record per document (position, text length, distinct shingles,
//!   signature) plus the document id to a per-shard signature file,
//!
//! so the scan holds at most `memory_mb` of band records per thread, whatever the corpus size.
//!
//! Absorb: the sorted runs of all shards are merged (k-way, streaming); documents that share a
//! band key are candidate pairs. Pairs are verified on the signatures read back from disk:
//! a duplicate when the estimated Jaccard similarity is at least `jaccard_threshold` or
//! the estimated containment of the smaller document in the larger one is at least
//! `containment_threshold`. Verified pairs are joined with union-find, each bucket exactly as
//! if all its pairs were verified, whatever its size; each cluster keeps one
//! document chosen by a deterministic key (`keep = "first"`: lowest shard and stream position;
//! `keep = "longest"`: longest text, then lowest position).
//!
//! Across ranks ([`ClusterDedup`]): map writes each shard's band records partitioned by key and
//! its signatures; reduce clusters the buckets of one partition and writes their edges; the
//! cluster step joins all edges and writes each shard's decisions; apply loads them. A band
//! key lives in one partition, so the clusters are those of one process.
//!
//! Filter: a document of a cluster gets `metadata.minhash_cluster` (the id of the kept
//! document) and `minhash_cluster_size`; the others are dropped as `near_duplicate` with
//! `near_duplicate_of`.
//!
//! Memory in RAM: nothing per unique document after the scan; about 100 bytes per document
//! that is part of a verified cluster (union-find entry and decision). On disk (the spill
//! folder): `16 · bands + 24 + 8 · permutations` bytes plus the id per document.

use std::any::Any;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

use super::partitioned;
use crate::doc::{io_error, sync_parent, temp_path, write_atomic, Document};
use crate::run::config::parse_params;
use crate::stage::{ClusterDedup, DocPos, Scanner, Stage, Verdict};

/// Which document of a cluster is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepRule {
    /// The earliest document in shard and stream order.
    First,
    /// The longest text; ties go to the earliest.
    Longest,
}

/// Parameters of `type = "minhash_dedup"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinHashConfig {
    /// Words per shingle (default 5, as datatrove and most LLM corpora).
    #[serde(default = "default_shingle")]
    pub shingle_size: usize,
    /// Hash functions in a signature (default 128).
    #[serde(default = "default_permutations")]
    pub permutations: usize,
    /// LSH bands; `permutations` must be a multiple (default 16 bands of 8 rows: a pair with
    /// Jaccard 0.9 becomes a candidate with probability 0.9999, one with 0.5 with 0.06).
    #[serde(default = "default_bands")]
    pub bands: usize,
    /// A candidate pair with estimated Jaccard similarity at least this is a duplicate (0.9).
    #[serde(default = "default_threshold")]
    pub jaccard_threshold: f64,
    /// ... or with estimated containment of the smaller shingle set in the larger one at least
    /// this (0.9; 1.0 or more turns the containment test off).
    #[serde(default = "default_threshold")]
    pub containment_threshold: f64,
    /// Which document of a cluster is kept (`first` or `longest`; default `first`).
    #[serde(default = "default_keep")]
    pub keep: KeepRule,
    /// Seed of the hash functions (default 1).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Band records a scanning thread holds before it writes a sorted run to disk, in MB (64).
    #[serde(default = "default_memory_mb")]
    pub memory_mb: usize,
    /// Folder for spill files (default: the system temporary folder); removed at the end.
    #[serde(default)]
    pub spill_dir: Option<PathBuf>,
}

fn default_shingle() -> usize {
    5
}
fn default_permutations() -> usize {
    128
}
fn default_bands() -> usize {
    16
}
fn default_threshold() -> f64 {
    0.9
}
fn default_keep() -> KeepRule {
    KeepRule::First
}
fn default_seed() -> u64 {
    1
}
fn default_memory_mb() -> usize {
    64
}

/// A set of shingle hashes; they are uniform already, so they are their own hash.
pub type ShingleSet = HashSet<u64, std::hash::BuildHasherDefault<super::PassThroughHasher>>;

/// The signature computer: normalisation, shingling and the permutation parameters.
#[derive(Debug, Clone)]
pub struct MinHasher {
    shingle_size: usize,
    bands: usize,
    rows: usize,
    a: Vec<u64>,
    b: Vec<u64>,
}

/// One document's MinHash signature and the sizes the containment estimate needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Minimum of each hash function over the shingles.
    pub mins: Vec<u64>,
    /// Number of distinct shingles.
    pub shingles: u64,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl MinHasher {
    /// A hasher for `permutations` functions in `bands` bands; errors on inconsistent sizes.
    pub fn new(shingle_size: usize, permutations: usize, bands: usize, seed: u64) -> Result<Self> {
        if shingle_size == 0 || permutations == 0 || bands == 0 {
            bail!("shingle_size, permutations and bands must be positive");
        }
        if !permutations.is_multiple_of(bands) {
            bail!("permutations ({permutations}) must be a multiple of bands ({bands})");
        }
        let mut state = seed;
        let mut a = Vec::with_capacity(permutations);
        let mut b = Vec::with_capacity(permutations);
        for _ in 0..permutations {
            a.push(splitmix(&mut state) | 1);
            b.push(splitmix(&mut state));
        }
        Ok(MinHasher {
            shingle_size,
            bands,
            rows: permutations / bands,
            a,
            b,
        })
    }

    /// Number of hash functions.
    pub fn permutations(&self) -> usize {
        self.a.len()
    }

    /// Hashes of the distinct word shingles of `text` (normalised), into `out` (cleared).
    /// A text with fewer words than a shingle gives one shingle of all its words.
    pub fn shingles(&self, text: &str, words: &mut Vec<u64>, out: &mut ShingleSet) {
        words.clear();
        out.clear();
        let mut word = String::new();
        let flush = |word: &mut String, words: &mut Vec<u64>| {
            if !word.is_empty() {
                words.push(xxhash_rust::xxh3::xxh3_64(word.as_bytes()));
                word.clear();
            }
        };
        for c in text.chars() {
            if c.is_alphanumeric() {
                if c.is_ascii() {
                    word.push(c.to_ascii_lowercase());
                } else {
                    word.extend(c.to_lowercase());
                }
            } else if c.is_whitespace() {
                flush(&mut word, words);
            }
            // Punctuation and symbols are dropped, so "don't" and "dont" match.
        }
        flush(&mut word, words);
        if words.is_empty() {
            return;
        }
        let n = self.shingle_size.min(words.len());
        let mut bytes = Vec::with_capacity(n * 8);
        for w in words.windows(n) {
            bytes.clear();
            for h in w {
                bytes.extend_from_slice(&h.to_le_bytes());
            }
            out.insert(xxhash_rust::xxh3::xxh3_64(&bytes));
        }
    }

    /// The signature of a set of shingle hashes (all `u64::MAX` for an empty set).
    pub fn signature(&self, shingles: &ShingleSet) -> Signature {
        let mut mins = vec![u64::MAX; self.a.len()];
        for &x in shingles {
            for ((m, &a), &b) in mins.iter_mut().zip(&self.a).zip(&self.b) {
                *m = (*m).min(a.wrapping_mul(x).wrapping_add(b));
            }
        }
        Signature {
            mins,
            shingles: shingles.len() as u64,
        }
    }

    /// The band keys of a signature; the band number is mixed in so bands never share keys.
    pub fn band_keys(&self, sig: &Signature, out: &mut Vec<u64>) {
        out.clear();
        let mut bytes = Vec::with_capacity(8 * (self.rows + 1));
        for (band, rows) in sig.mins.chunks(self.rows).enumerate() {
            bytes.clear();
            bytes.extend_from_slice(&(band as u64).to_le_bytes());
            for r in rows {
                bytes.extend_from_slice(&r.to_le_bytes());
            }
            out.push(xxhash_rust::xxh3::xxh3_64(&bytes));
        }
        debug_assert_eq!(out.len(), self.bands);
    }
}

/// Estimated Jaccard similarity of two signatures: the share of equal minimums.
pub fn estimated_jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() || a.len() != b.len() {
        return 0.0;
    }
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    same as f64 / a.len() as f64
}

/// Estimated containment of the smaller set in the larger: |A∩B| / min(|A|, |B|), with
/// |A∩B| = J·(|A|+|B|)/(1+J).
pub fn estimated_containment(jaccard: f64, size_a: u64, size_b: u64) -> f64 {
    let small = size_a.min(size_b);
    if small == 0 {
        return 0.0;
    }
    let inter = jaccard * (size_a + size_b) as f64 / (1.0 + jaccard);
    (inter / small as f64).min(1.0)
}

/// Drops near-duplicate documents found with MinHash LSH; keeps one per cluster.
pub struct MinHashDeduper {
    config: MinHashConfig,
    hasher: Arc<MinHasher>,
    spill: Arc<SpillDir>,
    decisions: HashMap<u64, Decision>,
    clusters: Vec<ClusterInfo>,
}

/// The stage's spill folder, created on first use and removed when the stage is dropped.
struct SpillDir {
    parent: PathBuf,
    dir: std::sync::OnceLock<std::result::Result<tempfile::TempDir, String>>,
    counter: AtomicU64,
}

impl SpillDir {
    fn path(&self) -> Result<&Path> {
        let made = self.dir.get_or_init(|| {
            tempfile::Builder::new()
                .prefix("datamill-minhash-")
                .tempdir_in(&self.parent)
                .map_err(|e| {
                    format!(
                        "cannot create a spill folder in {}: {e}",
                        self.parent.display()
                    )
                })
        });
        match made {
            Ok(d) => Ok(d.path()),
            Err(e) => bail!("{e}"),
        }
    }

    fn new_file(&self, kind: &str) -> Result<(PathBuf, File)> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let path = self.path()?.join(format!("{kind}-{n:06}.bin"));
        let f = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok((path, f))
    }
}

#[derive(Debug, Clone, Copy)]
struct Decision {
    cluster: u32,
    keep: bool,
}

#[derive(Debug, Clone)]
struct ClusterInfo {
    kept_id: String,
    size: u64,
}

impl MinHashDeduper {
    /// Builds the stage from its TOML parameters.
    pub fn from_params(params: &toml::Table) -> Result<Self> {
        let config: MinHashConfig = parse_params("minhash_dedup", params)?;
        Self::new(config)
    }

    /// Builds the stage from a typed configuration.
    pub fn new(config: MinHashConfig) -> Result<Self> {
        let hasher = MinHasher::new(
            config.shingle_size,
            config.permutations,
            config.bands,
            config.seed,
        )
        .context("stage `minhash_dedup`")?;
        if !(0.0..=1.0).contains(&config.jaccard_threshold) {
            bail!("stage `minhash_dedup`: jaccard_threshold must be between 0 and 1");
        }
        let parent = config.spill_dir.clone().unwrap_or_else(std::env::temp_dir);
        Ok(MinHashDeduper {
            hasher: Arc::new(hasher),
            spill: Arc::new(SpillDir {
                parent,
                dir: std::sync::OnceLock::new(),
                counter: AtomicU64::new(0),
            }),
            config,
            decisions: HashMap::new(),
            clusters: Vec::new(),
        })
    }

    /// Number of clusters (groups of two or more near-duplicates) found by the last absorb.
    pub fn clusters(&self) -> usize {
        self.clusters.len()
    }
}

/// What a scanner leaves on disk for one shard.
#[derive(Debug, Default)]
pub struct MinHashScan {
    runs: Vec<PathBuf>,
    signatures: Option<(PathBuf, PathBuf)>,
    first_index: u64,
    docs: u64,
}

/// Scans one shard: writes signatures and sorted runs of band records to the spill folder.
pub struct MinHashScanner {
    hasher: Arc<MinHasher>,
    spill: Arc<SpillDir>,
    max_records: usize,
    records: Vec<(u64, u64)>,
    words: Vec<u64>,
    set: ShingleSet,
    keys: Vec<u64>,
    sig_out: Option<(BufWriter<File>, BufWriter<File>)>,
    id_offset: u64,
    scan: MinHashScan,
    error: Option<anyhow::Error>,
}

/// Bytes of one signature record: packed position, text length, distinct shingles, id offset,
/// id length (u32) padded to 8, then the signature.
fn sig_record_len(permutations: usize) -> usize {
    40 + 8 * permutations
}

impl MinHashScanner {
    fn write_run(&mut self) -> Result<()> {
        if self.records.is_empty() {
            return Ok(());
        }
        self.records.sort_unstable();
        let (path, f) = self.spill.new_file("run")?;
        let mut w = BufWriter::with_capacity(1 << 16, f);
        let written = self.records.iter().try_for_each(|(k, p)| {
            w.write_all(&k.to_le_bytes())?;
            w.write_all(&p.to_le_bytes())
        });
        if let Err(e) = written.and_then(|()| w.flush()) {
            return Err(io_error(&path, e, "writing a MinHash spill run"));
        }
        self.records.clear();
        self.scan.runs.push(path);
        Ok(())
    }

    fn observe_inner(&mut self, doc: &Document, pos: DocPos) -> Result<()> {
        if self.sig_out.is_none() {
            let (sp, sf) = self.spill.new_file("sig")?;
            let (ip, idf) = self.spill.new_file("ids")?;
            self.sig_out = Some((
                BufWriter::with_capacity(1 << 16, sf),
                BufWriter::with_capacity(1 << 16, idf),
            ));
            self.scan.signatures = Some((sp, ip));
            self.scan.first_index = pos.index;
        }
        if pos.index != self.scan.first_index + self.scan.docs {
            bail!("documents of shard {} not seen in order", pos.shard);
        }
        self.hasher
            .shingles(&doc.text, &mut self.words, &mut self.set);
        let sig = self.hasher.signature(&self.set);
        let packed = pos.packed();
        if sig.shingles > 0 {
            self.hasher.band_keys(&sig, &mut self.keys);
            for &k in &self.keys {
                self.records.push((k, packed));
            }
        }
        let (sigw, idw) = self.sig_out.as_mut().context("signature file not open")?;
        let header = [
            packed,
            doc.text.len() as u64,
            sig.shingles,
            self.id_offset,
            doc.id.len() as u64,
        ];
        let written = header
            .iter()
            .chain(&sig.mins)
            .try_for_each(|w| sigw.write_all(&w.to_le_bytes()))
            .and_then(|()| idw.write_all(doc.id.as_bytes()));
        if let Err(e) = written {
            let path = self.scan.signatures.as_ref().map(|s| s.0.as_path());
            return Err(io_error(
                path.unwrap_or(Path::new("minhash spill")),
                e,
                "writing MinHash signatures",
            ));
        }
        self.id_offset += doc.id.len() as u64;
        self.scan.docs += 1;
        if self.records.len() >= self.max_records {
            self.write_run()?;
        }
        Ok(())
    }
}

impl Scanner for MinHashScanner {
    fn observe(&mut self, doc: &Document, pos: DocPos) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.observe_inner(doc, pos) {
            self.error = Some(e);
        }
    }

    fn finish(mut self: Box<Self>) -> Box<dyn Any + Send> {
        if let Some(e) = self.error.take() {
            return Box::new(Err::<MinHashScan, _>(e));
        }
        let result = (|| -> Result<()> {
            self.write_run()?;
            if let Some((mut s, mut i)) = self.sig_out.take() {
                if let Err(e) = s.flush().and_then(|()| i.flush()) {
                    let path = self.scan.signatures.as_ref().map(|s| s.0.as_path());
                    return Err(io_error(
                        path.unwrap_or(Path::new("minhash spill")),
                        e,
                        "writing MinHash signatures",
                    ));
                }
            }
            Ok(())
        })();
        Box::new(result.map(|_| std::mem::take(&mut self.scan)))
    }
}

/// Reads the 16-byte band records of one sorted run.
struct RunReader {
    input: BufReader<File>,
}

impl RunReader {
    fn next(&mut self) -> Result<Option<(u64, u64)>> {
        let mut buf = [0u8; 16];
        match self.input.read_exact(&mut buf) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let k = u64::from_le_bytes(buf[..8].try_into()?);
        let p = u64::from_le_bytes(buf[8..].try_into()?);
        Ok(Some((k, p)))
    }
}

/// Most runs merged at once; more are merged in several passes.
const MAX_FAN_IN: usize = 64;

/// Merges sorted runs into one sorted stream, calling `f` for every record in order.
fn merge_runs(paths: &[PathBuf], mut f: impl FnMut(u64, u64) -> Result<()>) -> Result<()> {
    let mut readers = Vec::with_capacity(paths.len());
    for p in paths {
        let file = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
        readers.push(RunReader {
            input: BufReader::with_capacity(1 << 16, file),
        });
    }
    let mut heap = BinaryHeap::new();
    for (i, r) in readers.iter_mut().enumerate() {
        if let Some(rec) = r.next()? {
            heap.push(Reverse((rec, i)));
        }
    }
    while let Some(Reverse(((k, p), i))) = heap.pop() {
        f(k, p)?;
        if let Some(rec) = readers[i].next()? {
            heap.push(Reverse((rec, i)));
        }
    }
    Ok(())
}

/// Merges groups of runs until at most [`MAX_FAN_IN`] remain.
fn reduce_runs(spill: &SpillDir, mut runs: Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    while runs.len() > MAX_FAN_IN {
        let mut next = Vec::new();
        for group in runs.chunks(MAX_FAN_IN) {
            let (path, f) = spill.new_file("merged")?;
            let mut w = BufWriter::with_capacity(1 << 16, f);
            merge_runs(group, |k, p| {
                w.write_all(&k.to_le_bytes())?;
                w.write_all(&p.to_le_bytes())?;
                Ok(())
            })?;
            w.flush()?;
            for p in group {
                let _ = std::fs::remove_file(p);
            }
            next.push(path);
        }
        runs = next;
    }
    Ok(runs)
}

/// Random access to the signature files of every shard; at most [`OPEN_SHARDS`] shards' files
/// are open at once, so a run with thousands of shards stays under the descriptor limit.
struct SignatureStore {
    shards: HashMap<u32, (PathBuf, PathBuf, u64)>,
    open: std::cell::RefCell<HashMap<u32, std::rc::Rc<(File, File)>>>,
    record_len: usize,
    permutations: usize,
}

/// Most shards whose signature files are open at the same time during absorb.
const OPEN_SHARDS: usize = 128;

/// One signature record read back.
#[derive(Debug)]
struct StoredSig {
    text_len: u64,
    shingles: u64,
    id_offset: u64,
    id_len: u64,
    mins: Vec<u64>,
}

impl SignatureStore {
    /// The open signature and id files of `shard` and its first document index.
    fn files(&self, shard: u32) -> Result<(std::rc::Rc<(File, File)>, u64)> {
        let (sp, ip, first) = self
            .shards
            .get(&shard)
            .with_context(|| format!("no signatures for shard {shard}"))?;
        let mut open = self.open.borrow_mut();
        if let Some(f) = open.get(&shard) {
            return Ok((f.clone(), *first));
        }
        if open.len() >= OPEN_SHARDS {
            open.clear();
        }
        let sf = File::open(sp).with_context(|| format!("cannot open {}", sp.display()))?;
        let idf = File::open(ip).with_context(|| format!("cannot open {}", ip.display()))?;
        let f = std::rc::Rc::new((sf, idf));
        open.insert(shard, f.clone());
        Ok((f, *first))
    }

    /// The signature file of `shard` (or, with `ids`, its id file), named in errors.
    fn shown(&self, shard: u32, ids: bool) -> String {
        match self.shards.get(&shard) {
            Some((sig, id, _)) => (if ids { id } else { sig }).display().to_string(),
            None => format!("the signatures of shard {shard}"),
        }
    }

    fn read(&self, packed: u64) -> Result<StoredSig> {
        let shard = (packed >> 40) as u32;
        let index = packed & ((1 << 40) - 1);
        let (files, first) = self.files(shard)?;
        let sig = &files.0;
        let mut buf = vec![0u8; self.record_len];
        let at = index
            .checked_sub(first)
            .map(|i| i * self.record_len as u64)
            .with_context(|| {
                format!(
                    "{}: document {index} is before the file's first ({first})",
                    self.shown(shard, false)
                )
            })?;
        sig.read_exact_at(&mut buf, at).with_context(|| {
            format!(
                "{}: cannot read the signature of document {index} at byte {at} (truncated?)",
                self.shown(shard, false)
            )
        })?;
        let word =
            |i: usize| u64::from_le_bytes(buf[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        if word(0) != packed {
            bail!(
                "{}: the record at byte {at} is not document {index}: the file is out of order",
                self.shown(shard, false)
            );
        }
        Ok(StoredSig {
            text_len: word(1),
            shingles: word(2),
            id_offset: word(3),
            id_len: word(4),
            mins: (0..self.permutations).map(|i| word(5 + i)).collect(),
        })
    }

    fn read_id(&self, packed: u64, sig: &StoredSig) -> Result<String> {
        let (files, _) = self.files((packed >> 40) as u32)?;
        let mut buf = vec![0u8; sig.id_len as usize];
        files
            .1
            .read_exact_at(&mut buf, sig.id_offset)
            .with_context(|| {
                format!(
                    "{}: cannot read {} id bytes at byte {} (truncated?)",
                    self.shown((packed >> 40) as u32, true),
                    sig.id_len,
                    sig.id_offset
                )
            })?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// Union-find over packed positions, with path halving.
#[derive(Default)]
struct UnionFind {
    parent: HashMap<u64, u64>,
}

impl UnionFind {
    fn find(&mut self, x: u64) -> u64 {
        let mut x = x;
        loop {
            let p = *self.parent.get(&x).unwrap_or(&x);
            if p == x {
                return x;
            }
            let gp = *self.parent.get(&p).unwrap_or(&p);
            self.parent.insert(x, gp);
            x = gp;
        }
    }

    fn union(&mut self, a: u64, b: u64) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // The smaller position becomes the root: the result does not depend on pair order.
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent.insert(hi, lo);
            self.parent.entry(lo).or_insert(lo);
        }
    }
}

impl UnionFind {
    /// Every cluster of two or more, members in position order, clusters sorted.
    fn groups(&mut self) -> Vec<Vec<u64>> {
        let members: Vec<u64> = self.parent.keys().copied().collect();
        let mut groups: HashMap<u64, Vec<u64>> = HashMap::new();
        for m in members {
            let root = self.find(m);
            groups.entry(root).or_default().push(m);
        }
        let mut groups: Vec<Vec<u64>> = groups.into_values().filter(|g| g.len() > 1).collect();
        for g in &mut groups {
            g.sort_unstable();
        }
        groups.sort_unstable();
        groups
    }

    /// `(member, root)` for every member that is not its cluster's root, sorted: edges that
    /// rebuild the same clusters.
    fn edges(&mut self) -> Vec<(u64, u64)> {
        let members: Vec<u64> = self.parent.keys().copied().collect();
        let mut edges: Vec<(u64, u64)> = members
            .into_iter()
            .filter_map(|m| {
                let root = self.find(m);
                (root != m).then_some((m, root))
            })
            .collect();
        edges.sort_unstable();
        edges
    }
}

/// Most rejected pairs remembered; only a cache (pairs sharing several bands are verified
/// once), so the cap never changes a result.
const REJECTED_CACHE: usize = 1 << 22;

/// True when two signatures are near-duplicates under `config`'s thresholds.
fn is_duplicate(config: &MinHashConfig, a: &StoredSig, b: &StoredSig) -> bool {
    let j = estimated_jaccard(&a.mins, &b.mins);
    j >= config.jaccard_threshold
        || estimated_containment(j, a.shingles, b.shingles) >= config.containment_threshold
}

/// Joins the verified near-duplicate pairs of LSH buckets into clusters; used by the
/// one-process absorb and by the distributed reduce, so both find the same clusters.
struct BucketClusterer<'a> {
    config: &'a MinHashConfig,
    store: &'a SignatureStore,
    uf: UnionFind,
    rejected: HashSet<(u64, u64)>,
}

impl<'a> BucketClusterer<'a> {
    fn new(config: &'a MinHashConfig, store: &'a SignatureStore) -> Self {
        BucketClusterer {
            config,
            store,
            uf: UnionFind::default(),
            rejected: HashSet::new(),
        }
    }

    /// Joins the members of one bucket (positions in ascending order) exactly as verifying
    /// every pair would, whatever the bucket's size: each member is compared with each
    /// connected group of earlier members until one matches (a group it already belongs to is
    /// skipped). Cost: one verification per member when the bucket is one cluster; pairs of
    /// members only when the bucket holds many distinct clusters.
    fn bucket(&mut self, bucket: &[u64]) -> Result<()> {
        if bucket.len() < 2 {
            return Ok(());
        }
        let mut sigs: Vec<Option<StoredSig>> = (0..bucket.len()).map(|_| None).collect();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for i in 0..bucket.len() {
            if i > 0 && bucket[i] == bucket[i - 1] {
                continue;
            }
            let a = bucket[i];
            let mut joined: Vec<usize> = Vec::new();
            for (g, members) in groups.iter().enumerate() {
                if self.uf.find(bucket[members[0]]) == self.uf.find(a) {
                    joined.push(g);
                    continue;
                }
                for &m in members {
                    let b = bucket[m];
                    if self.rejected.contains(&(b, a)) {
                        continue;
                    }
                    if sigs[i].is_none() {
                        sigs[i] = Some(self.store.read(a)?);
                    }
                    // A group's first member, compared first by every later member, stays in
                    // memory; the others are read again when needed.
                    if sigs[m].is_none() && m == members[0] {
                        sigs[m] = Some(self.store.read(b)?);
                    }
                    let fetched;
                    let sb = match &sigs[m] {
                        Some(sb) => sb,
                        None => {
                            fetched = self.store.read(b)?;
                            &fetched
                        }
                    };
                    let Some(sa) = &sigs[i] else {
                        continue;
                    };
                    if is_duplicate(self.config, sa, sb) {
                        self.uf.union(a, b);
                        joined.push(g);
                        break;
                    }
                    if self.rejected.len() < REJECTED_CACHE {
                        self.rejected.insert((b, a));
                    }
                }
            }
            match joined.first() {
                None => groups.push(vec![i]),
                Some(&first) => {
                    // `joined` ascends: removing from the back never moves a group still listed.
                    for &g in joined[1..].iter().rev() {
                        let moved = groups.swap_remove(g);
                        groups[first].extend(moved);
                    }
                    groups[first].push(i);
                    // Not a group's first member: its signature leaves memory, so a bucket of
                    // many copies holds one signature per group, not one per member.
                    sigs[i] = None;
                }
            }
        }
        Ok(())
    }

    /// Feeds `(band key, position)` records sorted by key, one bucket per key.
    fn sorted_records(&mut self, records: impl Iterator<Item = (u64, u64)>) -> Result<()> {
        let mut bucket: Vec<u64> = Vec::new();
        let mut current: Option<u64> = None;
        for (key, pos) in records {
            if current != Some(key) {
                self.bucket(&bucket)?;
                bucket.clear();
                current = Some(key);
            }
            bucket.push(pos);
        }
        self.bucket(&bucket)
    }
}

/// One cluster of near-duplicates: its members in position order and the kept one.
struct Cluster {
    members: Vec<u64>,
    kept: u64,
    kept_id: String,
}

/// The cluster decisions about one shard's documents, written by the cluster step of a
/// distributed run (`.work/sK/cluster/NNNNN.json`) and handed to `absorb` by the apply step.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ShardClusters {
    /// The shard.
    pub shard: u32,
    /// Its documents that belong to a cluster, in position order.
    pub members: Vec<ClusterMember>,
}

/// One document of a cluster.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClusterMember {
    /// Packed position of the document.
    pub pos: u64,
    /// Packed position of the cluster's kept document.
    pub kept: u64,
    /// Documents in the cluster.
    pub size: u64,
    /// Id of the kept document.
    pub kept_id: String,
}

impl SignatureStore {
    /// The signature files the map step wrote to work folder `dir` for `shards`.
    fn in_work_dir(dir: &Path, shards: &[u32], permutations: usize) -> Self {
        let shards = shards
            .iter()
            .map(|&s| {
                let sig = partitioned::signature_path(dir, s);
                let ids = sig.with_extension("ids");
                (s, (sig, ids, 0))
            })
            .collect();
        SignatureStore {
            shards,
            open: Default::default(),
            record_len: sig_record_len(permutations),
            permutations,
        }
    }
}

/// Moves a finished spill file to `to` atomically (rename, or copy across filesystems).
fn move_into_place(from: &Path, to: &Path) -> Result<()> {
    if let Some(d) = to.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let tmp = temp_path(to);
    if std::fs::rename(from, &tmp).is_err() {
        if let Err(e) = std::fs::copy(from, &tmp) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_error(&tmp, e, "writing a signature file"));
        }
        let _ = std::fs::remove_file(from);
    }
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot fsync {}", tmp.display()))?;
    std::fs::rename(&tmp, to)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), to.display()))?;
    sync_parent(to)
}

impl MinHashDeduper {
    /// Chooses each cluster's kept document by the `keep` rule and reads its id.
    fn choose_kept(&self, groups: Vec<Vec<u64>>, store: &SignatureStore) -> Result<Vec<Cluster>> {
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            let mut kept = g[0];
            let mut kept_sig = store.read(kept)?;
            if self.config.keep == KeepRule::Longest {
                for &m in &g[1..] {
                    let s = store.read(m)?;
                    if s.text_len > kept_sig.text_len {
                        kept = m;
                        kept_sig = s;
                    }
                }
            }
            out.push(Cluster {
                kept_id: store.read_id(kept, &kept_sig)?,
                kept,
                members: g,
            });
        }
        Ok(out)
    }

    /// Sets the decisions `process` applies from `(member, kept, size, kept id)` entries.
    fn set_decisions<'s>(&mut self, members: impl Iterator<Item = (u64, u64, u64, &'s str)>) {
        self.decisions.clear();
        self.clusters.clear();
        let mut index: HashMap<u64, u32> = HashMap::new();
        for (pos, kept, size, kept_id) in members {
            let cluster = *index.entry(kept).or_insert_with(|| {
                self.clusters.push(ClusterInfo {
                    kept_id: kept_id.to_string(),
                    size,
                });
                (self.clusters.len() - 1) as u32
            });
            self.decisions.insert(
                pos,
                Decision {
                    cluster,
                    keep: pos == kept,
                },
            );
        }
    }
}

impl ClusterDedup for MinHashDeduper {
    fn write_map(
        &self,
        dir: &Path,
        shard: u32,
        scan: Box<dyn Any + Send>,
        partitions: usize,
    ) -> Result<()> {
        let scan = scan
            .downcast::<Result<MinHashScan>>()
            .ok()
            .context("scan of the wrong type")?;
        let scan = (*scan).with_context(|| format!("minhash scan of shard {shard}"))?;
        let sig = partitioned::signature_path(dir, shard);
        let ids = sig.with_extension("ids");
        match &scan.signatures {
            Some((sp, ip)) => {
                ensure!(
                    scan.first_index == 0,
                    "shard {shard} was scanned from document {}, not 0",
                    scan.first_index
                );
                move_into_place(sp, &sig)?;
                move_into_place(ip, &ids)?;
            }
            None => {
                write_atomic(&sig, &[])?;
                write_atomic(&ids, &[])?;
            }
        }
        let runs = reduce_runs(&self.spill, scan.runs)?;
        let mut records = Vec::new();
        merge_runs(&runs, |k, p| {
            records.push((k, p));
            Ok(())
        })?;
        for p in &runs {
            let _ = std::fs::remove_file(p);
        }
        // Written last: the map file marks the shard's map step complete.
        partitioned::write_records(&partitioned::map_path(dir, shard), records, partitions)
    }

    fn reduce(
        &self,
        dir: &Path,
        shards: &[u32],
        partition: usize,
        partitions: usize,
    ) -> Result<u64> {
        let mut records: Vec<(u64, u64)> =
            partitioned::read_partition(dir, shards, partition, partitions)?
                .into_iter()
                .map(|(_, key, pos)| (key, pos))
                .collect();
        records.sort_unstable();
        let store = SignatureStore::in_work_dir(dir, shards, self.hasher.permutations());
        let mut clusterer = BucketClusterer::new(&self.config, &store);
        clusterer.sorted_records(records.into_iter())?;
        let edges = clusterer.uf.edges();
        partitioned::write_edges(&partitioned::edges_path(dir, partition), &edges)?;
        Ok(edges.len() as u64)
    }

    fn cluster(&self, dir: &Path, shards: &[u32], partitions: usize) -> Result<u64> {
        match partitioned::recorded_partitions(dir) {
            Some(p) if p != partitions => bail!(
                "partition count changed between phases: the map files in {} have {p} \
                 partitions, the cluster step was given {partitions}",
                dir.display()
            ),
            Some(_) => {}
            None => bail!(
                "no map files in {}: run the previous step first",
                dir.join("map").display()
            ),
        }
        let mut uf = UnionFind::default();
        for p in 0..partitions {
            for (a, b) in partitioned::read_edges(dir, p)? {
                uf.union(a, b);
            }
        }
        let store = SignatureStore::in_work_dir(dir, shards, self.hasher.permutations());
        let clusters = self.choose_kept(uf.groups(), &store)?;
        let mut per_shard: BTreeMap<u32, Vec<ClusterMember>> =
            shards.iter().map(|&s| (s, Vec::new())).collect();
        for c in &clusters {
            for &m in &c.members {
                per_shard
                    .entry((m >> 40) as u32)
                    .or_default()
                    .push(ClusterMember {
                        pos: m,
                        kept: c.kept,
                        size: c.members.len() as u64,
                        kept_id: c.kept_id.clone(),
                    });
            }
        }
        for (shard, mut members) in per_shard {
            members.sort_unstable_by_key(|m| m.pos);
            let body = serde_json::to_vec(&ShardClusters { shard, members })?;
            write_atomic(&partitioned::cluster_path(dir, shard), &body)?;
        }
        Ok(clusters.len() as u64)
    }

    fn load(&self, dir: &Path, shard: u32) -> Result<Box<dyn Any + Send>> {
        let path = partitioned::cluster_path(dir, shard);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "cluster file {} is missing: the cluster step has not finished",
                path.display()
            )
        })?;
        let clusters: ShardClusters = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a datamill cluster file", path.display()))?;
        ensure!(
            clusters.shard == shard,
            "{} holds shard {}, not {shard}",
            path.display(),
            clusters.shard
        );
        Ok(Box::new(clusters))
    }
}

impl Stage for MinHashDeduper {
    fn name(&self) -> &str {
        "minhash_dedup"
    }

    fn scanner(&self) -> Option<Box<dyn Scanner>> {
        let record_bytes = 16;
        Some(Box::new(MinHashScanner {
            hasher: self.hasher.clone(),
            spill: self.spill.clone(),
            max_records: (self.config.memory_mb.max(1) << 20) / record_bytes,
            records: Vec::new(),
            words: Vec::new(),
            set: ShingleSet::default(),
            keys: Vec::new(),
            sig_out: None,
            id_offset: 0,
            scan: MinHashScan::default(),
            error: None,
        }))
    }

    fn cluster_dedup(&self) -> Option<&dyn ClusterDedup> {
        Some(self)
    }

    fn absorb(&mut self, scans: Vec<(u32, Box<dyn Any + Send>)>) -> Result<()> {
        if !scans.is_empty() && scans.iter().all(|(_, s)| s.as_ref().is::<ShardClusters>()) {
            // Apply step of a distributed run: the cluster step decided already.
            let mut all = Vec::new();
            for (shard, scan) in scans {
                let c = scan
                    .downcast::<ShardClusters>()
                    .ok()
                    .with_context(|| format!("cluster decisions of shard {shard}"))?;
                all.extend(c.members);
            }
            self.set_decisions(
                all.iter()
                    .map(|m| (m.pos, m.kept, m.size, m.kept_id.as_str())),
            );
            return Ok(());
        }
        let permutations = self.hasher.permutations();
        let mut store = SignatureStore {
            shards: HashMap::new(),
            open: Default::default(),
            record_len: sig_record_len(permutations),
            permutations,
        };
        let mut runs = Vec::new();
        let mut sig_files = Vec::new();
        for (shard, scan) in scans {
            let scan = scan
                .downcast::<Result<MinHashScan>>()
                .ok()
                .context("scan of the wrong type")?;
            let scan = (*scan).with_context(|| format!("minhash scan of shard {shard}"))?;
            if let Some((sp, ip)) = &scan.signatures {
                store
                    .shards
                    .insert(shard, (sp.clone(), ip.clone(), scan.first_index));
                sig_files.extend([sp.clone(), ip.clone()]);
            }
            runs.extend(scan.runs);
        }
        let runs = reduce_runs(&self.spill, runs)?;

        let mut clusterer = BucketClusterer::new(&self.config, &store);
        let mut merged = Vec::new();
        // Buckets are handed over one at a time, in key order, as the merge streams them.
        let mut current: Option<u64> = None;
        merge_runs(&runs, |key, pos| {
            if current != Some(key) {
                clusterer.bucket(&merged)?;
                merged.clear();
                current = Some(key);
            }
            merged.push(pos);
            Ok(())
        })?;
        clusterer.bucket(&merged)?;
        let groups = clusterer.uf.groups();
        for p in &runs {
            let _ = std::fs::remove_file(p);
        }
        let clusters = self.choose_kept(groups, &store)?;
        // The decisions are in memory now; the spill files are no longer needed.
        drop(store);
        for p in sig_files {
            let _ = std::fs::remove_file(p);
        }
        self.set_decisions(clusters.iter().flat_map(|c| {
            c.members
                .iter()
                .map(move |&m| (m, c.kept, c.members.len() as u64, c.kept_id.as_str()))
        }));
        Ok(())
    }

    fn process(&self, doc: &mut Document, pos: DocPos) -> Verdict {
        let Some(d) = self.decisions.get(&pos.packed()) else {
            return Verdict::Keep;
        };
        let Some(c) = self.clusters.get(d.cluster as usize) else {
            return Verdict::Keep;
        };
        doc.set("minhash_cluster", c.kept_id.as_str());
        doc.set("minhash_cluster_size", c.size);
        if d.keep {
            Verdict::Keep
        } else {
            doc.set("near_duplicate_of", c.kept_id.as_str());
            Verdict::drop("near_duplicate")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(params: &str) -> MinHashDeduper {
        MinHashDeduper::from_params(&toml::from_str(params).unwrap()).unwrap()
    }

    fn run(stage: &mut MinHashDeduper, shards: &[Vec<Document>]) -> Vec<Vec<Verdict>> {
        let mut scans = Vec::new();
        for (s, docs) in shards.iter().enumerate() {
            let mut sc = stage.scanner().unwrap();
            for (i, d) in docs.iter().enumerate() {
                sc.observe(
                    d,
                    DocPos {
                        shard: s as u32,
                        index: i as u64,
                    },
                );
            }
            scans.push((s as u32, sc.finish()));
        }
        stage.absorb(scans).unwrap();
        shards
            .iter()
            .enumerate()
            .map(|(s, docs)| {
                docs.iter()
                    .enumerate()
                    .map(|(i, d)| {
                        let mut d = d.clone();
                        stage.process(
                            &mut d,
                            DocPos {
                                shard: s as u32,
                                index: i as u64,
                            },
                        )
                    })
                    .collect()
            })
            .collect()
    }

    fn words(seed: u64, n: usize) -> String {
        let mut state = seed;
        (0..n)
            .map(|_| format!("w{}", splitmix(&mut state) % 5000))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn identical_sets_have_equal_signatures_and_jaccard_estimate_is_close() {
        let h = MinHasher::new(3, 256, 32, 7).unwrap();
        let (mut w, mut a, mut b) = (Vec::new(), ShingleSet::default(), ShingleSet::default());
        let base = words(1, 2000);
        h.shingles(&base, &mut w, &mut a);
        h.shingles(&base.to_uppercase().replace(' ', " ,  "), &mut w, &mut b);
        assert_eq!(a, b, "case, punctuation and spacing do not matter");
        // Replace the last fifth of the words: true Jaccard about 0.6.
        let changed = format!(
            "{} {}",
            base.split(' ').take(1600).collect::<Vec<_>>().join(" "),
            words(2, 400)
        );
        h.shingles(&changed, &mut w, &mut b);
        let truth = a.intersection(&b).count() as f64 / a.union(&b).count() as f64;
        let est = estimated_jaccard(&h.signature(&a).mins, &h.signature(&b).mins);
        assert!((est - truth).abs() < 0.1, "estimate {est} vs {truth}");
    }

    #[test]
    fn containment_estimate() {
        // A of 100 inside B of 200: J = 0.5, containment 1.
        assert!((estimated_containment(0.5, 100, 200) - 1.0).abs() < 1e-9);
        assert_eq!(estimated_containment(0.5, 0, 200), 0.0);
    }

    #[test]
    fn clusters_keep_one_document_by_the_keep_rule_across_shards() {
        let dir = tempfile::tempdir().unwrap();
        let base = words(3, 3000);
        let near = format!("{} tail", base.replacen('w', "x", 3)); // three words changed, longer
        let other = words(4, 3000);
        let short_copy = base.split(' ').take(2900).collect::<Vec<_>>().join(" ");
        let shards = vec![
            vec![
                Document::new("a", base.clone(), ""),
                Document::new("b", other.clone(), ""),
            ],
            vec![
                Document::new("c", near, ""),
                Document::new("d", "", ""),
                Document::new("e", short_copy, ""),
            ],
        ];
        let params = format!(
            "spill_dir = {:?}\nmemory_mb = 1",
            dir.path().to_string_lossy()
        );
        let mut st = stage(&params);
        let v = run(&mut st, &shards);
        assert_eq!(st.clusters(), 1);
        assert_eq!(v[0], vec![Verdict::Keep, Verdict::Keep]);
        assert_eq!(
            v[1],
            vec![
                Verdict::drop("near_duplicate"),
                Verdict::Keep,
                Verdict::drop("near_duplicate")
            ]
        );
        let mut c = shards[1][0].clone();
        st.process(&mut c, DocPos { shard: 1, index: 0 });
        assert_eq!(c.meta_str("near_duplicate_of"), Some("a"));
        assert_eq!(c.metadata["minhash_cluster_size"], 3);

        drop(st);
        // keep = "longest" keeps the longest text of the cluster instead.
        let mut st = stage(&format!("{params}\nkeep = \"longest\""));
        let v = run(&mut st, &shards);
        let kept: Vec<bool> = v.concat().iter().map(|v| *v == Verdict::Keep).collect();
        assert_eq!(kept, vec![false, true, true, true, false]);
        drop(st);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "spill removed"
        );
    }

    #[test]
    fn many_runs_are_merged_in_several_passes_into_one_sorted_stream() {
        let st = stage("");
        let mut runs = Vec::new();
        let mut expected = Vec::new();
        for r in 0..150u64 {
            let (path, f) = st.spill.new_file("run").unwrap();
            let mut w = BufWriter::new(f);
            for i in 0..20u64 {
                let rec = ((i * 7919 + r * 31) % 1000, r);
                expected.push(rec);
            }
            let mut mine: Vec<_> = expected[expected.len() - 20..].to_vec();
            mine.sort_unstable();
            for (k, p) in mine {
                w.write_all(&k.to_le_bytes()).unwrap();
                w.write_all(&p.to_le_bytes()).unwrap();
            }
            w.flush().unwrap();
            runs.push(path);
        }
        let reduced = reduce_runs(&st.spill, runs).unwrap();
        assert!(reduced.len() <= MAX_FAN_IN && reduced.len() > 1);
        let mut got = Vec::new();
        merge_runs(&reduced, |k, p| {
            got.push((k, p));
            Ok(())
        })
        .unwrap();
        expected.sort_unstable();
        assert_eq!(got, expected);
    }

    /// Writes signature records for shard 0 and returns a store over them.
    fn store_of(dir: &Path, sigs: &[Vec<u64>]) -> SignatureStore {
        let (sp, ip) = (dir.join("s.sig"), dir.join("s.ids"));
        let mut out = Vec::new();
        for (i, mins) in sigs.iter().enumerate() {
            for w in [i as u64, 100, 1000, 0, 0].iter().chain(mins) {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        std::fs::write(&sp, out).unwrap();
        std::fs::write(&ip, b"").unwrap();
        store_of_files(dir, sigs[0].len())
    }

    /// A store over the files `store_of` wrote.
    fn store_of_files(dir: &Path, permutations: usize) -> SignatureStore {
        let (sp, ip) = (dir.join("s.sig"), dir.join("s.ids"));
        SignatureStore {
            shards: HashMap::from([(0, (sp, ip, 0))]),
            open: Default::default(),
            record_len: sig_record_len(permutations),
            permutations,
        }
    }

    #[test]
    fn a_truncated_or_shuffled_signature_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_of(dir.path(), &[vec![1, 2], vec![3, 4]]);
        assert_eq!(store.read(1).unwrap().mins, [3, 4]);
        let sig = dir.path().join("s.sig");
        let e = format!("{:#}", store.read(2).unwrap_err());
        assert!(
            e.contains(&sig.display().to_string()) && e.contains("truncated"),
            "{e}"
        );
        // Record 0 where record 1 should be.
        let bytes = std::fs::read(&sig).unwrap();
        let half = bytes.len() / 2;
        std::fs::write(&sig, [&bytes[..half], &bytes[..half]].concat()).unwrap();
        let store = store_of_files(dir.path(), 2);
        let e = format!("{:#}", store.read(1).unwrap_err());
        assert!(e.contains("s.sig") && e.contains("out of order"), "{e}");
        let ids = dir.path().join("s.ids");
        let sig0 = store.read(0).unwrap();
        let e = format!(
            "{:#}",
            store
                .read_id(0, &StoredSig { id_len: 4, ..sig0 })
                .unwrap_err()
        );
        assert!(e.contains(&ids.display().to_string()), "{e}");
    }

    #[test]
    fn big_buckets_cluster_exactly_as_verifying_every_pair() {
        // 80 members of one bucket in 3 families; each member changes up to 14 of its
        // family's 128 minimums, so two members are duplicates (>= 116 equal, Jaccard 0.9)
        // or not depending on their changes: similarity is not transitive here.
        let dir = tempfile::tempdir().unwrap();
        let mut state = 11u64;
        let bases: Vec<Vec<u64>> = (0..3)
            .map(|_| (0..128).map(|_| splitmix(&mut state)).collect())
            .collect();
        let sigs: Vec<Vec<u64>> = (0..80)
            .map(|i| {
                let mut m = bases[(splitmix(&mut state) % 3) as usize].clone();
                let changes = splitmix(&mut state) % 15;
                for _ in 0..changes {
                    let at = (splitmix(&mut state) % 128) as usize;
                    m[at] = splitmix(&mut state) ^ i;
                }
                m
            })
            .collect();
        let store = store_of(dir.path(), &sigs);
        let config = stage("containment_threshold = 1.1").config;
        let bucket: Vec<u64> = (0..80).collect();
        let mut clusterer = BucketClusterer::new(&config, &store);
        clusterer.bucket(&bucket).unwrap();
        let got = clusterer.uf.groups();

        let mut all_pairs = UnionFind::default();
        let mut direct = 0;
        let mut indirect = 0;
        for a in 0..80u64 {
            for b in a + 1..80 {
                let (sa, sb) = (store.read(a).unwrap(), store.read(b).unwrap());
                if is_duplicate(&config, &sa, &sb) {
                    all_pairs.union(a, b);
                    direct += 1;
                }
            }
        }
        let want = all_pairs.groups();
        for g in &want {
            for (i, &a) in g.iter().enumerate() {
                for &b in &g[i + 1..] {
                    let (sa, sb) = (store.read(a).unwrap(), store.read(b).unwrap());
                    indirect += usize::from(!is_duplicate(&config, &sa, &sb));
                }
            }
        }
        assert!(
            direct > 0 && indirect > 0,
            "{direct} {indirect}: the case tests nothing"
        );
        // Pairing each member only with the first and its predecessor (the former shortcut
        // for buckets over 32) misses some of these clusters.
        let mut shortcut = UnionFind::default();
        for b in 1..80u64 {
            for a in [0, b - 1] {
                if is_duplicate(&config, &store.read(a).unwrap(), &store.read(b).unwrap()) {
                    shortcut.union(a, b);
                }
            }
        }
        assert_ne!(shortcut.groups(), want);
        assert_eq!(got, want);
        // The edges of the clusters rebuild the same clusters (what the reduce writes).
        let mut rebuilt = UnionFind::default();
        for (a, b) in clusterer.uf.edges() {
            rebuilt.union(a, b);
        }
        assert_eq!(rebuilt.groups(), want);
    }

    #[test]
    fn bad_parameters_are_errors() {
        let e =
            MinHashDeduper::from_params(&toml::from_str("permutations = 100\nbands = 16").unwrap());
        assert!(e.is_err());
        let e = MinHashDeduper::from_params(&toml::from_str("shingle = 5").unwrap());
        assert!(format!("{:#}", e.err().unwrap()).contains("shingle"));
    }
}

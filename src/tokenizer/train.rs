//! The BPE trainer with LLaMA's rules, and the `.model` writer.
//!
//! Like sentencepiece's `bpe_model_trainer.cc` it works on unique words with counts (stored as
//! the distinct runs between places no merge can join), picks
//! the most frequent valid pair each step (ties: fewer characters, then the smaller string),
//! and scores merge `k` with `-k`, then appends the alphabet. Unlike it, the pick is an exact
//! arg-max from a lazy heap (sentencepiece scans a refreshed 5% "active" set), counts are
//! built in parallel, and no sentence is held in memory.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use prost::Message;
use rayon::prelude::*;
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};
use serde::Deserialize;
use unicode_script::{Script, UnicodeScript};

use super::corpus::{count_words, SourceConfig, WordCounts, WordTable};
use super::model::{piece_of_byte, WS};
use super::proto::{
    ModelProto, NormalizerSpec, PieceType, SentencePiece, TrainerSpec, MODEL_TYPE_BPE,
};
use super::{prefetch, written_zeros};
use crate::doc::write_atomic;

/// Pieces before the learned ones: `<unk>`, `<s>`, `</s>` and 256 byte pieces.
pub const META_PIECES: usize = 3 + 256;

/// Training settings (`pipelines/tokenizer.toml`); defaults are LLaMA's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Total pieces in the model, including the 259 meta pieces (default 32000).
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    /// Share of character occurrences the alphabet covers; rarer characters are left to
    /// byte fallback (default 0.99995).
    #[serde(default = "default_coverage")]
    pub character_coverage: f64,
    /// Longest piece in characters (default 16).
    #[serde(default = "default_piece_chars")]
    pub max_piece_chars: usize,
    /// Lines longer than this many bytes are skipped, as sentencepiece does (default 4192).
    #[serde(default = "default_line_bytes")]
    pub max_line_bytes: usize,
    /// Counting threads (0 = one per core).
    #[serde(default)]
    pub threads: usize,
    /// Where `train-tokenizer` writes the model.
    #[serde(default)]
    pub output: Option<PathBuf>,
    /// The corpus: one or more weighted sources.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
}

fn default_vocab() -> usize {
    32000
}
fn default_coverage() -> f64 {
    0.99995
}
fn default_piece_chars() -> usize {
    16
}
fn default_line_bytes() -> usize {
    4192
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            vocab_size: default_vocab(),
            character_coverage: default_coverage(),
            max_piece_chars: default_piece_chars(),
            max_line_bytes: default_line_bytes(),
            threads: 0,
            output: None,
            sources: Vec::new(),
        }
    }
}

impl TrainConfig {
    /// Reads a TOML settings file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{}: bad tokenizer settings", path.display()))
    }
}

/// What training saw and did.
#[derive(Debug, Clone, Default)]
pub struct TrainReport {
    /// Lines counted.
    pub lines: u64,
    /// Bytes of those lines.
    pub bytes: u64,
    /// Lines skipped for length.
    pub long_lines: u64,
    /// Distinct words.
    pub unique_words: usize,
    /// Characters in the alphabet.
    pub alphabet: usize,
    /// Learned merges.
    pub merges: usize,
    /// Seconds spent reading and counting.
    pub count_secs: f64,
    /// Seconds spent merging.
    pub merge_secs: f64,
}

impl TrainReport {
    /// One line for the command line.
    pub fn summary(&self, output: &Path) -> String {
        format!(
            "wrote {}: {} lines, {:.1} MB, {} long lines skipped, {} distinct words, \
             alphabet {}, {} merges; counting {:.2} s, merging {:.2} s",
            output.display(),
            self.lines,
            self.bytes as f64 / 1e6,
            self.long_lines,
            self.unique_words,
            self.alphabet,
            self.merges,
            self.count_secs,
            self.merge_secs
        )
    }
}

/// Trains a model from `config.sources`.
pub fn train_tokenizer(config: &TrainConfig) -> Result<(ModelProto, TrainReport)> {
    if config.sources.is_empty() {
        bail!("no training input given");
    }
    if !(0.98..=1.0).contains(&config.character_coverage) {
        bail!("character_coverage must be in [0.98, 1]");
    }
    if config.max_piece_chars == 0 || config.max_piece_chars > 255 {
        bail!("max_piece_chars must be in 1..=255");
    }
    let threads = if config.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        config.threads
    };
    let t0 = Instant::now();
    let counts = count_words(&config.sources, config.max_line_bytes, threads)?;
    let count_secs = t0.elapsed().as_secs_f64();
    tracing::info!(
        "counted {} distinct words in {:.2} s; peak RSS {} MB",
        counts.distinct(),
        count_secs,
        peak_rss_mb()
    );
    if counts.distinct() == 0 {
        bail!(
            "the training corpus is empty (no non-empty line of at most {} bytes)",
            config.max_line_bytes
        );
    }
    let t1 = Instant::now();
    let mut report = TrainReport {
        lines: counts.lines,
        bytes: counts.bytes,
        long_lines: counts.long_lines,
        unique_words: counts.distinct(),
        count_secs,
        ..Default::default()
    };
    // On a rayon worker, so the merge loop's `rayon::join` hands half a list to the other
    // worker without a trip through the pool's injector.
    let proto = rayon::scope(|_| train_from_counts(counts, config, &mut report, HEAP_PAIRS))?;
    report.merge_secs = t1.elapsed().as_secs_f64();
    Ok((proto, report))
}

/// Writes a model atomically (temporary file, fsync, rename): never half-written.
pub fn write_model(proto: &ModelProto, path: &Path) -> Result<()> {
    write_atomic(path, &proto.encode_to_vec())
}

/// Peak resident memory of this process in MB (Linux; 0 elsewhere), for progress logs.
pub fn peak_rss_mb() -> u64 {
    crate::stats::peak_rss_bytes().map_or(0, |b| b >> 20)
}

/// Per-symbol facts the validity rules need (the texts are kept apart, so this stays small
/// and the merge loop's checks stay in cache).
#[derive(Clone, Copy)]
struct SymInfo {
    chars: u8,
    /// 0: no `▁`; 1: one leading `▁` then other characters; 2: only `▁`.
    ws: u8,
    /// Script class (0 = any: only inherited marks or `▁`).
    script: u16,
    /// Never merges (digits, rare characters, tab, NUL).
    frozen: bool,
}

/// The symbol standing for every character outside the alphabet.
const BARRIER: u32 = 0;

fn char_info(c: char) -> SymInfo {
    let frozen = c.is_ascii_digit() || ('\u{FF10}'..='\u{FF19}').contains(&c);
    let (ws, script) = if c == WS {
        (2, 0)
    } else {
        let s = c.script();
        let s = if s == Script::Hiragana || s == Script::Katakana || c == '\u{30FC}' {
            Script::Han
        } else {
            s
        };
        (
            0,
            if s == Script::Inherited {
                0
            } else {
                s as u16 + 1
            },
        )
    };
    SymInfo {
        chars: 1,
        ws,
        script,
        frozen,
    }
}

/// True when no symbol ending in character `x` can ever merge with one starting with
/// character `y`: a frozen character, two different scripts, or `▁` after another character.
fn permanent_break(x: &SymInfo, y: &SymInfo) -> bool {
    x.frozen
        || y.frozen
        || (x.script != 0 && y.script != 0 && x.script != y.script)
        || (y.ws != 0 && x.ws == 0)
}

/// A distinct run of symbols: where it is in the arena and how often it occurs.
#[derive(Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
    count: u64,
}

/// The distinct runs of symbols of one hash shard of the words, with their pair counts.
#[derive(Default)]
struct Runs {
    arena: Vec<u32>,
    spans: Vec<Span>,
    /// Run index by content, to add the count of a repeated run to its first copy.
    index: RunIndex,
    /// Runs cut from the words, waiting for their lookup in `index`.
    pending: PendingRuns,
    /// Live pair -> (count, the runs holding it).
    pairs: FxHashMap<u64, (i64, Vec<u32>)>,
}

/// Runs are looked up in groups of this many: the index slots of the whole group are asked
/// for, then the spans those slots name, then the symbols, and only then compared, so the
/// memory loads of the group overlap.
const RUN_GROUP: usize = 32;

/// Runs waiting for their lookup: their symbols back to back, and per run its place in them,
/// its count and its hash.
#[derive(Default)]
struct PendingRuns {
    symbols: Vec<u32>,
    runs: Vec<PendingRun>,
}

#[derive(Clone, Copy)]
struct PendingRun {
    start: usize,
    len: usize,
    count: u64,
    hash: u64,
}

/// Distinct runs by content: open addressing over `u64` slots (the hash's low 32 bits, then
/// the run index + 1; 0 is empty), so the slot of a hash is known before it is read. It holds
/// every stored run, so its size is the number of spans.
#[derive(Default)]
struct RunIndex {
    slots: Vec<u64>,
}

impl RunIndex {
    fn with_capacity(runs: usize) -> Self {
        RunIndex {
            slots: written_zeros((runs * 4 / 3 + 1).next_power_of_two().max(16)),
        }
    }

    fn home(&self, h: u64) -> usize {
        h as usize & (self.slots.len() - 1)
    }

    /// The run in the first slot probed for `h` when its tag matches (a likely equal run).
    fn first_candidate(&self, h: u64) -> Option<usize> {
        let s = *self.slots.get(self.home(h))?;
        (s != 0 && s >> 32 == h & 0xFFFF_FFFF).then(|| (s & 0xFFFF_FFFF) as usize - 1)
    }

    /// The run equal to the one hashed `h` (`eq` compares a stored run), or the empty slot
    /// where it belongs. Call [`Self::reserve_one`] first.
    fn find(&self, h: u64, eq: impl Fn(usize) -> bool) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(h);
        loop {
            let s = self.slots[i];
            if s == 0 {
                return Err(i);
            }
            if s >> 32 == h & 0xFFFF_FFFF && eq((s & 0xFFFF_FFFF) as usize - 1) {
                return Ok((s & 0xFFFF_FFFF) as usize - 1);
            }
            i = (i + 1) & mask;
        }
    }

    /// Stores run `w` hashed `h` in the empty slot `i` that [`Self::find`] gave.
    fn insert(&mut self, i: usize, h: u64, w: usize) {
        self.slots[i] = ((h & 0xFFFF_FFFF) << 32) | (w as u64 + 1);
    }

    /// Makes room for one more run when `stored` are in (at most three quarters of the slots
    /// are taken).
    fn reserve_one(&mut self, stored: usize) {
        if (stored + 1) * 4 <= self.slots.len() * 3 {
            return;
        }
        let size = (self.slots.len() * 2).max(16);
        let mut slots = written_zeros(size);
        for &s in self.slots.iter().filter(|&&s| s != 0) {
            let mut i = (s >> 32) as usize & (size - 1);
            while slots[i] != 0 {
                i = (i + 1) & (size - 1);
            }
            slots[i] = s;
        }
        self.slots = slots;
    }
}

impl Runs {
    /// Ends the run `pending.symbols[start..]` of a word seen `count` times: dropped if it
    /// has no pair, else queued for its lookup.
    fn close(&mut self, start: usize, count: u64) {
        let symbols = &mut self.pending.symbols;
        if symbols.len() - start < 2 {
            symbols.truncate(start);
            return;
        }
        let hash = FxBuildHasher.hash_one(&symbols[start..]);
        self.pending.runs.push(PendingRun {
            start,
            len: symbols.len() - start,
            count,
            hash,
        });
    }

    /// Looks the pending runs up (see [`RUN_GROUP`]): a run equal to a stored one adds its
    /// count there, a new one is stored.
    fn resolve(&mut self) -> Result<()> {
        let Runs {
            arena,
            spans,
            index,
            pending,
            ..
        } = self;
        for r in &pending.runs {
            if !index.slots.is_empty() {
                prefetch(&index.slots[index.home(r.hash)]);
            }
        }
        for r in &pending.runs {
            if let Some(w) = index.first_candidate(r.hash) {
                prefetch(&spans[w]);
            }
        }
        for r in &pending.runs {
            if let Some(w) = index.first_candidate(r.hash) {
                if let Some(first) = arena.get(spans[w].start as usize) {
                    prefetch(first);
                }
            }
        }
        for r in &pending.runs {
            let run = &pending.symbols[r.start..][..r.len];
            index.reserve_one(spans.len());
            let found = index.find(r.hash, |w| {
                let sp = spans[w];
                &arena[sp.start as usize..][..sp.len as usize] == run
            });
            match found {
                Ok(w) => spans[w].count += r.count,
                Err(slot) => {
                    let start = u32::try_from(arena.len())
                        .ok()
                        .filter(|s| s.checked_add(r.len as u32).is_some())
                        .context("the sample has too many distinct words; lower max_bytes")?;
                    let w = spans.len();
                    spans.push(Span {
                        start,
                        len: r.len as u32,
                        count: r.count,
                    });
                    arena.extend_from_slice(run);
                    index.insert(slot, r.hash, w);
                }
            }
        }
        pending.runs.clear();
        pending.symbols.clear();
        Ok(())
    }

    /// Cuts every word of `tables` (one hash shard of the words) into its runs between
    /// permanent breaks (no merge can ever join across one, so a merge rescans only the run
    /// it touched), stores each distinct run once, then counts the valid pairs of the runs.
    /// (Another shard may hold an equal run: a run stored twice is merged twice, the same
    /// counts either way.)
    fn build(tables: &[&WordTable], symbols: &SymbolTable, max_chars: usize) -> Result<Runs> {
        let syms = &symbols.syms;
        let words: usize = tables.iter().map(|t| t.len()).sum();
        let mut runs = Runs {
            // About 0.6 runs a word on English text; the index grows past that.
            index: RunIndex::with_capacity(words * 2 / 3),
            spans: Vec::with_capacity(words),
            ..Default::default()
        };
        for (w, c) in tables.iter().flat_map(|t| t.iter()) {
            let mut start = runs.pending.symbols.len();
            let mut prev: Option<u32> = None;
            for ch in w.chars() {
                let sym = symbols.of_char(ch);
                if let Some(p) = prev {
                    if permanent_break(&syms[p as usize], &syms[sym as usize]) {
                        runs.close(start, c);
                        start = runs.pending.symbols.len();
                    }
                }
                runs.pending.symbols.push(sym);
                prev = Some(sym);
            }
            runs.close(start, c);
            if runs.pending.runs.len() >= RUN_GROUP {
                runs.resolve()?;
            }
        }
        runs.resolve()?;
        runs.index = RunIndex::default();
        runs.arena.shrink_to_fit();
        for (w, sp) in runs.spans.iter().enumerate() {
            let word = &runs.arena[sp.start as usize..][..sp.len as usize];
            for i in 0..word.len() - 1 {
                let (a, b) = (word[i], word[i + 1]);
                if merged_info(&syms[a as usize], &syms[b as usize], max_chars).is_none() {
                    continue;
                }
                let (count, list) = runs.pairs.entry(pair_key(a, b)).or_default();
                *count += sp.count as i64;
                if list.last() != Some(&(w as u32)) {
                    list.push(w as u32);
                }
            }
        }
        Ok(runs)
    }

    /// Appends the runs of `other` (another hash shard), adding its pair counts and lists.
    fn append(&mut self, other: Runs) -> Result<()> {
        let base = u32::try_from(self.arena.len())
            .ok()
            .filter(|b| b.checked_add(other.arena.len() as u32).is_some())
            .context("the sample has too many distinct words; lower max_bytes")?;
        let first = self.spans.len() as u32;
        self.arena.extend_from_slice(&other.arena);
        self.spans.extend(other.spans.iter().map(|sp| Span {
            start: sp.start + base,
            ..*sp
        }));
        for (k, (count, list)) in other.pairs {
            let (c, l) = self.pairs.entry(k).or_default();
            *c += count;
            l.extend(list.iter().map(|w| w + first));
        }
        Ok(())
    }
}

/// The pair key of symbols `a`, `b`.
fn pair_key(a: u32, b: u32) -> u64 {
    ((a as u64) << 32) | b as u64
}

/// The symbols (0 = barrier, then the alphabet, then merged pieces) and the character lookup.
struct SymbolTable {
    syms: Vec<SymInfo>,
    /// Text of each symbol.
    texts: Vec<String>,
    /// Symbol of each Basic Multilingual Plane character (BARRIER when outside the alphabet).
    bmp: Vec<u32>,
    /// Symbols of the alphabet's characters beyond the BMP.
    astral: FxHashMap<char, u32>,
}

impl SymbolTable {
    fn new(alphabet: &[char]) -> Self {
        let mut table = SymbolTable {
            syms: vec![SymInfo {
                chars: 1,
                ws: 0,
                script: 0,
                frozen: true,
            }],
            texts: vec![String::new()],
            bmp: vec![BARRIER; 0x10000],
            astral: FxHashMap::default(),
        };
        for &ch in alphabet {
            let id = table.syms.len() as u32;
            if (ch as u32) < 0x10000 {
                table.bmp[ch as usize] = id;
            } else {
                table.astral.insert(ch, id);
            }
            table.syms.push(char_info(ch));
            table.texts.push(ch.to_string());
        }
        table
    }

    /// The symbol of a character of a counted word (' ' stands for `▁`).
    #[inline]
    fn of_char(&self, ch: char) -> u32 {
        let ch = if ch == ' ' { WS } else { ch };
        match self.bmp.get(ch as usize) {
            Some(&s) => s,
            None => *self.astral.get(&ch).unwrap_or(&BARRIER),
        }
    }
}

/// Character frequencies of word tables (' ' counted as `▁`).
fn char_frequencies<'a>(tables: impl Iterator<Item = &'a WordTable>) -> FxHashMap<char, u64> {
    let mut bmp = vec![0u64; 0x10000];
    let mut astral: FxHashMap<char, u64> = FxHashMap::default();
    for (w, c) in tables.flat_map(|t| t.iter()) {
        for ch in w.chars() {
            let ch = if ch == ' ' { WS } else { ch };
            match bmp.get_mut(ch as usize) {
                Some(f) => *f += c,
                None => *astral.entry(ch).or_insert(0) += c,
            }
        }
    }
    for (i, &f) in bmp.iter().enumerate() {
        if f > 0 {
            if let Some(ch) = char::from_u32(i as u32) {
                astral.insert(ch, f);
            }
        }
    }
    astral
}

/// The merged symbol of `a` + `b` if LLaMA's rules allow it (sentencepiece's
/// `IsValidSentencePiece` with split_digits, split_by_unicode_script, split_by_whitespace
/// and allow_whitespace_only_pieces).
fn merged_info(a: &SymInfo, b: &SymInfo, max_chars: usize) -> Option<(u8, u8, u16)> {
    if a.frozen || b.frozen || a.chars as usize + b.chars as usize > max_chars {
        return None;
    }
    let ws = match (a.ws, b.ws) {
        (2, 2) => 2,
        (2, 0) if a.chars == 1 => 1,
        (1 | 0, 0) => a.ws,
        _ => return None,
    };
    let script = match (a.script, b.script) {
        (0, s) | (s, 0) => s,
        (x, y) if x == y => x,
        _ => return None,
    };
    Some((a.chars + b.chars, ws, script))
}

fn is_reserved(text: &str) -> bool {
    matches!(text, "<unk>" | "<s>" | "</s>" | "<pad>")
        || (text.len() == 6 && super::model::byte_of_piece(text).is_some())
}

/// Learns the merges from word counts; the merge heap holds about `heap_pairs` pairs at a
/// time (only speed depends on it).
fn train_from_counts(
    counts: WordCounts,
    config: &TrainConfig,
    report: &mut TrainReport,
    heap_pairs: usize,
) -> Result<ModelProto> {
    // Alphabet by coverage: most frequent characters first; tab and NUL never.
    // One thread per hash shard (as many as counting threads).
    let parts: Vec<Result<FxHashMap<char, u64>>> = std::thread::scope(|scope| {
        let counts = &counts;
        let handles: Vec<_> = (0..counts.shards)
            .map(|shard| scope.spawn(move || char_frequencies(counts.shard(shard))))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a character counting thread panicked"))
            })
            .collect()
    });
    let mut char_freq: FxHashMap<char, u64> = FxHashMap::default();
    for part in parts {
        for (ch, f) in part? {
            *char_freq.entry(ch).or_insert(0) += f;
        }
    }
    let total: u64 = char_freq.values().sum();
    let mut by_freq: Vec<(char, u64)> = char_freq.into_iter().collect();
    by_freq.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut alphabet = Vec::new();
    let mut covered = 0u64;
    for &(ch, f) in &by_freq {
        if covered as f64 / total as f64 >= config.character_coverage {
            break;
        }
        covered += f;
        if ch == '\t' || ch == '\0' {
            continue;
        }
        alphabet.push(ch);
    }
    report.alphabet = alphabet.len();
    let needed = META_PIECES + alphabet.len();
    if config.vocab_size < needed {
        bail!(
            "vocab_size {} is too small: the 259 meta pieces (<unk>, <s>, </s>, 256 bytes) and \
             the {} characters of the alphabet need at least {needed} (or lower character_coverage)",
            config.vocab_size,
            alphabet.len()
        );
    }
    let merges_wanted = config.vocab_size - needed;
    tracing::info!(
        "alphabet: {} characters; peak RSS {} MB",
        alphabet.len(),
        peak_rss_mb()
    );

    let symbols = SymbolTable::new(&alphabet);
    let mut sym_of_text: FxHashMap<String, u32> = symbols
        .texts
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();

    // Words as symbol runs in one arena, built in parallel: each thread converts the words
    // of one hash shard.
    let built: Vec<Result<Runs>> = std::thread::scope(|scope| {
        let symbols = &symbols;
        let counts = &counts;
        let handles: Vec<_> = (0..counts.shards)
            .map(|shard| {
                scope.spawn(move || {
                    let tables: Vec<&WordTable> = counts.shard(shard).collect();
                    Runs::build(&tables, symbols, config.max_piece_chars)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a run building thread panicked"))
                    .and_then(|r| r)
            })
            .collect()
    });
    drop(counts);
    let mut runs = Runs::default();
    for part in built {
        let part = part?;
        if runs.spans.is_empty() {
            runs = part;
        } else {
            runs.append(part)?;
        }
    }
    let Runs {
        mut arena,
        mut spans,
        mut pairs,
        ..
    } = runs;
    let mut syms = symbols.syms;
    let mut texts = symbols.texts;
    // Word lists gather stale and repeated entries; they are rebuilt from the words when
    // the entries pushed since the last build outgrow the build.
    let mut list_entries: usize = pairs.values().map(|p| p.1.len()).sum();
    let mut pushed = 0usize;

    tracing::info!(
        "{} words, {} symbols, {} pairs counted; peak RSS {} MB",
        spans.len(),
        arena.len(),
        pairs.len(),
        peak_rss_mb()
    );
    // The heap holds only the pairs counted at least `floor` times: most pairs are rare and
    // never merged, and a small heap stays in cache. Every live pair at or above the floor
    // has an entry (maybe with an older, higher count); when the heap runs dry the floor is
    // lowered and the pairs now above it are added, so the pick is the same as with all.
    let mut floor = heap_floor(&pairs, &FxHashSet::default(), heap_pairs);
    let mut heap = heap_at_least(&pairs, &FxHashSet::default(), floor, &syms, &texts);
    let mut rebuild_at = heap.len().saturating_add(heap_pairs.saturating_mul(3));

    let mut pieces: Vec<(String, f32)> = Vec::with_capacity(merges_wanted);
    // Buffers reused by every merge (allocating them anew cost a fifth of the loop).
    // One part per piece of a long run list (twice the threads, for balance), and the
    // summed change of the pair counts.
    let mut parts: Vec<PairChange> = (0..2 * rayon::current_num_threads().max(1))
        .map(|_| PairChange::default())
        .collect();
    let mut counts: FxHashMap<u64, i64> = FxHashMap::default();
    let mut spare_words: Vec<u32> = Vec::new();
    let mut banned: FxHashSet<u64> = FxHashSet::default();
    let max_chars = config.max_piece_chars;
    while pieces.len() < merges_wanted {
        if pieces.len().is_multiple_of(2000) {
            tracing::debug!(
                "{} merges, {} live pairs, {} heap entries, {} lists; peak RSS {} MB",
                pieces.len(),
                pairs.len(),
                heap.len(),
                pairs.len(),
                peak_rss_mb()
            );
        }
        // Best pair: highest count, then fewer characters, then the smaller string.
        let Some(top) = heap.pop() else {
            if floor <= 1 {
                break;
            }
            floor = heap_floor(&pairs, &banned, heap_pairs).min(floor - 1);
            heap = heap_at_least(&pairs, &banned, floor, &syms, &texts);
            rebuild_at = heap.len().saturating_add(heap_pairs.saturating_mul(3));
            continue;
        };
        let current = pairs.get(&top.pair).map_or(0, |p| p.0);
        if current != top.count as i64 || banned.contains(&top.pair) {
            if current as u64 >= floor
                && (current as u64) < top.count
                && !banned.contains(&top.pair)
            {
                heap.push(entry(&syms, &texts, top.pair, current));
            }
            continue;
        }
        let mut best = top;
        // Entries tied on (count, chars, 8-byte prefix) are resolved on the full string.
        let mut tied = Vec::new();
        while let Some(next) = heap.peek() {
            if (next.count, next.chars, next.prefix) != (best.count, best.chars, best.prefix) {
                break;
            }
            let next = heap.pop().expect("peeked");
            let cur = pairs.get(&next.pair).map_or(0, |p| p.0);
            if cur != next.count as i64 || banned.contains(&next.pair) {
                if cur as u64 >= floor && (cur as u64) < next.count && !banned.contains(&next.pair)
                {
                    heap.push(entry(&syms, &texts, next.pair, cur));
                }
                continue;
            }
            // Equal texts from different pairs (`ab`+`c`, `a`+`bc`): the smaller pair key, so
            // the pick never depends on the heap's history.
            if (pair_text(&texts, next.pair), next.pair) < (pair_text(&texts, best.pair), best.pair)
            {
                tied.push(std::mem::replace(&mut best, next));
            } else {
                tied.push(next);
            }
        }
        for t in tied {
            heap.push(t);
        }
        if best.count == 0 {
            break;
        }
        let (a, b) = ((best.pair >> 32) as u32, best.pair as u32);
        let text = pair_text(&texts, best.pair);
        if is_reserved(&text) {
            banned.insert(best.pair);
            continue;
        }
        let c = match sym_of_text.get(&text) {
            Some(&c) => c,
            None => {
                let (chars, ws, script) =
                    merged_info(&syms[a as usize], &syms[b as usize], max_chars)
                        .context("invalid pair counted")?;
                let c = syms.len() as u32;
                texts.push(text.clone());
                syms.push(SymInfo {
                    chars,
                    ws,
                    script,
                    frozen: false,
                });
                sym_of_text.insert(text.clone(), c);
                pieces.push((text, -(pieces.len() as f32)));
                c
            }
        };

        // Replace a b by c in every word that has the pair.
        let mut words = pairs
            .get_mut(&best.pair)
            .map(|p| std::mem::replace(&mut p.1, std::mem::take(&mut spare_words)))
            .unwrap_or_default();
        words.sort_unstable();
        words.dedup();
        let step = MergeStep {
            a,
            b,
            c,
            syms: &syms,
            max_chars,
        };
        step.apply_split(&words, &mut spans, &mut arena, &mut parts);
        summed_counts(&parts, &mut counts);
        spare_words = words;
        pairs.remove(&best.pair);
        for (&k, &d) in &counts {
            if k == best.pair || d == 0 {
                continue;
            }
            let v = &mut pairs.entry(k).or_default().0;
            *v += d;
            let now = *v;
            if now <= 0 {
                // The pair occurs nowhere any more: forget it and where it was.
                pairs.remove(&k);
            } else if d > 0 && now as u64 >= floor {
                heap.push(entry(&syms, &texts, k, now));
            }
        }
        // Stale entries and new pairs pile up: rebuild from the live counts, with the floor
        // raised again to let in about `heap_pairs` pairs.
        // (`rebuild_at` keeps it from rebuilding at every merge when many pairs tie at the
        // floor.)
        if heap.len() > rebuild_at {
            floor = heap_floor(&pairs, &banned, heap_pairs);
            heap = heap_at_least(&pairs, &banned, floor, &syms, &texts);
            rebuild_at = heap.len().saturating_add(heap_pairs.saturating_mul(3));
        }
        for bucket in parts.iter().flat_map(PairChange::buckets) {
            if bucket.words.is_empty() || bucket.key == best.pair {
                continue;
            }
            let Some((_, list)) = pairs.get_mut(&bucket.key) else {
                continue;
            };
            for &w in &bucket.words {
                if list.last() != Some(&w) {
                    list.push(w);
                    pushed += 1;
                }
            }
        }
        if pushed > list_entries.max(1 << 20) {
            index_pairs(&arena, &spans, &mut pairs);
            list_entries = pairs.values().map(|p| p.1.len()).sum();
            pushed = 0;
        }
    }
    report.merges = pieces.len();
    tracing::info!(
        "{} merges, {} live pairs, {} heap entries, {} list entries; peak RSS {} MB",
        pieces.len(),
        pairs.len(),
        heap.len(),
        pairs.values().map(|p| p.1.len()).sum::<usize>(),
        peak_rss_mb()
    );
    // Freeing the merge state (a list per live pair, the arena, the heap) takes a tenth of
    // a second: a short-lived background thread does it while the caller writes the model
    // (its memory is back shortly after this returns). If no thread can be started, the
    // closure and the state are dropped here.
    let state = (pairs, arena, spans, heap, sym_of_text);
    let _ = std::thread::Builder::new()
        .name("free-merge-state".into())
        .spawn(move || drop(state));
    if pieces.len() < merges_wanted {
        bail!(
            "the corpus is too small for vocab_size {}: only {} merges could be learned \
             (need {merges_wanted}); lower vocab_size or give more text",
            config.vocab_size,
            pieces.len()
        );
    }
    Ok(build_proto(&pieces, &alphabet, config))
}

/// The merge heap is filled with about this many of the most frequent pairs at a time.
const HEAP_PAIRS: usize = 1 << 16;

/// The heap floor that lets in about `heap_pairs` live pairs: the count of the
/// `heap_pairs`-th most frequent one that is not banned (1 when there are fewer).
fn heap_floor(
    pairs: &FxHashMap<u64, (i64, Vec<u32>)>,
    banned: &FxHashSet<u64>,
    heap_pairs: usize,
) -> u64 {
    let mut counts: Vec<u64> = pairs
        .iter()
        .filter(|(k, (c, _))| *c > 0 && !banned.contains(*k))
        .map(|(_, (c, _))| *c as u64)
        .collect();
    if counts.len() <= heap_pairs.max(1) {
        return 1;
    }
    let (_, nth, _) = counts.select_nth_unstable_by(heap_pairs.max(1) - 1, |a, b| b.cmp(a));
    (*nth).max(1)
}

/// A heap of every live, not banned pair counted at least `floor` times.
fn heap_at_least(
    pairs: &FxHashMap<u64, (i64, Vec<u32>)>,
    banned: &FxHashSet<u64>,
    floor: u64,
    syms: &[SymInfo],
    texts: &[String],
) -> BinaryHeap<HeapEntry> {
    pairs
        .iter()
        .filter(|(k, (c, _))| *c > 0 && *c as u64 >= floor && !banned.contains(*k))
        .map(|(&k, &(c, _))| entry(syms, texts, k, c))
        .collect()
}

/// One merge `a b -> c` applied to the runs that may hold the pair.
struct MergeStep<'a> {
    a: u32,
    b: u32,
    c: u32,
    syms: &'a [SymInfo],
    max_chars: usize,
}

/// The four pairs a merge `a b -> c` changes around one occurrence, named by the side of the
/// neighbour symbol: `x a` and `b y` are lost, `x c` and `c y` gained.
const LEFT_LOST: usize = 0;
const LEFT_GAINED: usize = 1;
const RIGHT_LOST: usize = 2;
const RIGHT_GAINED: usize = 3;

/// What a merge changed in one piece of its run list: for every neighbour symbol and side,
/// the pair, the change of its count and, for a gained pair, the runs where it appeared.
/// Symbols index a flat array, so counting an occurrence costs no hashing.
#[derive(Default)]
struct PairChange {
    /// `4 * symbol + side` -> 1 + index in `buckets` (0: not seen in this merge).
    slot_of: Vec<u32>,
    /// The first `used` are this merge's; the rest keep their memory for later merges.
    buckets: Vec<PairBucket>,
    used: usize,
}

/// One changed pair of a [`PairChange`].
#[derive(Default)]
struct PairBucket {
    /// Its index in `slot_of`.
    slot: u32,
    key: u64,
    delta: i64,
    /// False for a pair that can never merge: such pairs are not counted at all.
    mergeable: bool,
    /// Runs where the (gained) pair appeared, in run order, each once.
    words: Vec<u32>,
}

impl PairChange {
    /// Empties it for a merge over `symbols` symbols, keeping its memory.
    fn clear(&mut self, symbols: usize) {
        for bucket in &mut self.buckets[..self.used] {
            self.slot_of[bucket.slot as usize] = 0;
            bucket.words.clear();
        }
        self.used = 0;
        if self.slot_of.len() < 4 * symbols {
            self.slot_of.resize(4 * symbols, 0);
        }
    }

    /// The pairs this merge changed.
    fn buckets(&self) -> &[PairBucket] {
        &self.buckets[..self.used]
    }
}

/// The change of every mergeable pair count over all pieces of a merge (a pair may show up
/// in several pieces and sides).
fn summed_counts(parts: &[PairChange], out: &mut FxHashMap<u64, i64>) {
    out.clear();
    for bucket in parts.iter().flat_map(PairChange::buckets) {
        if bucket.mergeable {
            *out.entry(bucket.key).or_insert(0) += bucket.delta;
        }
    }
}

/// Lists at least this long are cut into pieces merged on all threads.
const PARALLEL_WORDS: usize = 1024;

impl MergeStep<'_> {
    /// Replaces `a b` by `c` in the runs `words` (sorted, distinct run indices) and records
    /// what changed in `parts`, one part per piece of the list (all parts are emptied first).
    /// A long list is cut into up to `parts.len()` pieces at run boundaries, so each thread
    /// owns its part of the arena (no locking); pieces are in run order.
    fn apply_split(
        &self,
        words: &[u32],
        spans: &mut [Span],
        arena: &mut [u32],
        parts: &mut [PairChange],
    ) {
        for part in parts.iter_mut() {
            part.clear(self.syms.len());
        }
        let pieces = (words.len() / PARALLEL_WORDS).clamp(1, parts.len().max(1));
        if pieces == 1 {
            self.apply(words, spans, arena, 0, 0, &mut parts[0]);
            return;
        }
        let mut jobs = Vec::with_capacity(pieces);
        let (mut spans_rest, mut arena_rest, mut w0, mut s0) = (spans, arena, 0u32, 0usize);
        for k in 0..pieces {
            let (lo, hi) = (k * words.len() / pieces, (k + 1) * words.len() / pieces);
            if k + 1 == pieces {
                jobs.push((
                    &words[lo..hi],
                    std::mem::take(&mut spans_rest),
                    std::mem::take(&mut arena_rest),
                    w0,
                    s0,
                ));
                break;
            }
            let mid = words[hi];
            let mid_start = spans_rest[(mid - w0) as usize].start as usize;
            let (spans_l, spans_r) =
                std::mem::take(&mut spans_rest).split_at_mut((mid - w0) as usize);
            let (arena_l, arena_r) = std::mem::take(&mut arena_rest).split_at_mut(mid_start - s0);
            jobs.push((&words[lo..hi], spans_l, arena_l, w0, s0));
            (spans_rest, arena_rest, w0, s0) = (spans_r, arena_r, mid, mid_start);
        }
        jobs.into_par_iter().zip(parts.par_iter_mut()).for_each(
            |((piece, spans, arena, w0, s0), part)| self.apply(piece, spans, arena, w0, s0, part),
        );
    }

    /// [`Self::apply_split`] on one piece, on this thread: `spans` starts at run `w0` and
    /// `arena` at symbol `s0`; adds to `out`.
    fn apply(
        &self,
        words: &[u32],
        spans: &mut [Span],
        arena: &mut [u32],
        w0: u32,
        s0: usize,
        out: &mut PairChange,
    ) {
        let (a, b) = (self.a, self.b);
        for (k, &w) in words.iter().enumerate() {
            // The runs are scattered: ask for the run record 16 ahead and the symbols of the
            // run 8 ahead, so the memory loads overlap.
            if let Some(&ahead) = words.get(k + 16) {
                prefetch(&spans[(ahead - w0) as usize]);
            }
            if let Some(&ahead) = words.get(k + 8) {
                prefetch(&arena[spans[(ahead - w0) as usize].start as usize - s0]);
            }
            let sp = &mut spans[(w - w0) as usize];
            let s = sp.start as usize - s0;
            let mut len = sp.len as usize;
            let word = &mut arena[s..s + len];
            let n = sp.count as i64;
            let mut i = 0;
            let mut changed = false;
            while i + 1 < len {
                if word[i] != a || word[i + 1] != b {
                    i += 1;
                    continue;
                }
                changed = true;
                if i > 0 {
                    self.bump(out, LEFT_LOST, word[i - 1], -n, w);
                    self.bump(out, LEFT_GAINED, word[i - 1], n, w);
                }
                if i + 2 < len {
                    self.bump(out, RIGHT_LOST, word[i + 2], -n, w);
                    self.bump(out, RIGHT_GAINED, word[i + 2], n, w);
                }
                // (`a b` itself is not counted: the caller drops the pair.)
                word[i] = self.c;
                word.copy_within(i + 2..len, i + 1);
                len -= 1;
                i += 1;
            }
            if changed {
                sp.len = len as u32;
            }
        }
    }

    /// Adds `d` to the pair on `side` of neighbour `sym`, and run `w` to where it appeared
    /// when gained.
    #[inline]
    fn bump(&self, out: &mut PairChange, side: usize, sym: u32, d: i64, w: u32) {
        let slot = 4 * sym as usize + side;
        let mut at = out.slot_of[slot] as usize;
        if at == 0 {
            let (x, y) = match side {
                LEFT_LOST => (sym, self.a),
                LEFT_GAINED => (sym, self.c),
                RIGHT_LOST => (self.b, sym),
                _ => (self.c, sym),
            };
            if out.used == out.buckets.len() {
                out.buckets.push(PairBucket::default());
            }
            let bucket = &mut out.buckets[out.used];
            bucket.slot = slot as u32;
            bucket.key = pair_key(x, y);
            bucket.delta = 0;
            bucket.mergeable = merged_info(
                &self.syms[x as usize],
                &self.syms[y as usize],
                self.max_chars,
            )
            .is_some();
            out.used += 1;
            at = out.used;
            out.slot_of[slot] = at as u32;
        }
        let bucket = &mut out.buckets[at - 1];
        if bucket.mergeable {
            bucket.delta += d;
            if d > 0 && bucket.words.last() != Some(&w) {
                bucket.words.push(w);
            }
        }
    }
}

/// Rebuilds, for every live pair, the list of the runs holding it (each once, in order).
fn index_pairs(arena: &[u32], spans: &[Span], pairs: &mut FxHashMap<u64, (i64, Vec<u32>)>) {
    for (_, list) in pairs.values_mut() {
        *list = Vec::new();
    }
    for (w, sp) in spans.iter().enumerate() {
        let word = &arena[sp.start as usize..][..sp.len as usize];
        for i in 1..word.len() {
            let k = ((word[i - 1] as u64) << 32) | word[i] as u64;
            if let Some((_, list)) = pairs.get_mut(&k) {
                if list.last() != Some(&(w as u32)) {
                    list.push(w as u32);
                }
            }
        }
    }
}

/// Heap entry of a pair: ordered by count, then fewer characters, then smaller text
/// (first 8 bytes; full ties are resolved by the caller).
#[derive(PartialEq, Eq, Clone, Copy)]
struct HeapEntry {
    count: u64,
    chars: Reverse<u8>,
    prefix: Reverse<u64>,
    pair: u64,
}

impl Ord for HeapEntry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.count, self.chars, self.prefix).cmp(&(o.count, o.chars, o.prefix))
    }
}

impl PartialOrd for HeapEntry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

fn pair_text(texts: &[String], pair: u64) -> String {
    let (a, b) = ((pair >> 32) as usize, (pair as u32) as usize);
    let mut t = String::with_capacity(texts[a].len() + texts[b].len());
    t.push_str(&texts[a]);
    t.push_str(&texts[b]);
    t
}

fn entry(syms: &[SymInfo], texts: &[String], pair: u64, count: i64) -> HeapEntry {
    let (a, b) = ((pair >> 32) as usize, (pair as u32) as usize);
    let mut prefix = [0u8; 8];
    for (slot, &byte) in prefix
        .iter_mut()
        .zip(texts[a].as_bytes().iter().chain(texts[b].as_bytes()))
    {
        *slot = byte;
    }
    HeapEntry {
        count: count.max(0) as u64,
        chars: Reverse(syms[a].chars + syms[b].chars),
        prefix: Reverse(u64::from_be_bytes(prefix)),
        pair,
    }
}

/// The `ModelProto` of a trained vocabulary, with LLaMA's trainer and normalizer settings.
fn build_proto(pieces: &[(String, f32)], alphabet: &[char], config: &TrainConfig) -> ModelProto {
    let piece = |text: String, score: f32, kind: PieceType| SentencePiece {
        piece: Some(text),
        score: Some(score),
        r#type: Some(kind as i32),
    };
    let mut all = vec![
        piece("<unk>".into(), 0.0, PieceType::Unknown),
        piece("<s>".into(), 0.0, PieceType::Control),
        piece("</s>".into(), 0.0, PieceType::Control),
    ];
    for b in 0..=255u8 {
        all.push(piece(piece_of_byte(b), 0.0, PieceType::Byte));
    }
    for (t, s) in pieces {
        all.push(piece(t.clone(), *s, PieceType::Normal));
    }
    for (i, ch) in alphabet.iter().enumerate() {
        all.push(piece(
            ch.to_string(),
            -((pieces.len() + i) as f32),
            PieceType::Normal,
        ));
    }
    ModelProto {
        pieces: all,
        trainer_spec: Some(TrainerSpec {
            input: Vec::new(),
            model_prefix: Some("datamill".into()),
            model_type: Some(MODEL_TYPE_BPE),
            vocab_size: Some(config.vocab_size as i32),
            input_format: Some("text".into()),
            character_coverage: Some(config.character_coverage as f32),
            input_sentence_size: Some(0),
            num_threads: Some(config.threads as i32),
            max_sentence_length: Some(config.max_line_bytes as i32),
            shuffle_input_sentence: Some(false),
            max_sentencepiece_length: Some(config.max_piece_chars as i32),
            split_by_unicode_script: Some(true),
            split_by_whitespace: Some(true),
            split_by_number: Some(true),
            treat_whitespace_as_suffix: Some(false),
            split_digits: Some(true),
            allow_whitespace_only_pieces: Some(true),
            vocabulary_output_piece_score: Some(true),
            hard_vocab_limit: Some(true),
            byte_fallback: Some(true),
            unk_id: Some(0),
            bos_id: Some(1),
            eos_id: Some(2),
            pad_id: Some(-1),
            unk_surface: Some(" \u{2047} ".into()),
            unk_piece: Some("<unk>".into()),
            bos_piece: Some("<s>".into()),
            eos_piece: Some("</s>".into()),
            pad_piece: Some("<pad>".into()),
        }),
        normalizer_spec: Some(NormalizerSpec {
            name: Some("identity".into()),
            precompiled_charsmap: Some(Vec::new()),
            add_dummy_prefix: Some(true),
            remove_extra_whitespaces: Some(false),
            escape_whitespaces: Some(true),
        }),
        denormalizer_spec: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(s: &str) -> SymInfo {
        let mut chars = s.chars();
        let mut acc = char_info(chars.next().unwrap());
        for c in chars {
            let (n, ws, script) = merged_info(&acc, &char_info(c), 16).expect(s);
            acc = SymInfo {
                chars: n,
                ws,
                script,
                frozen: false,
            };
        }
        acc
    }

    fn ok(a: &str, b: &str) -> bool {
        merged_info(&info(a), &info(b), 16).is_some()
    }

    #[test]
    fn llama_piece_rules() {
        assert!(ok("▁", "the") && ok("▁t", "he") && ok("th", "e"));
        assert!(ok("▁", "▁") && ok("▁▁", "▁▁"), "whitespace-only pieces");
        assert!(!ok("▁▁", "a"), "▁ only at the start of a word piece");
        assert!(!ok("a", "▁") && !ok("▁a", "▁b"));
        assert!(
            !ok("1", "2") && !ok("a", "1") && !ok("▁", "7") && !ok("５", "a"),
            "digits alone"
        );
        assert!(!ok("a", "Ж") && !ok("▁abc", "д"), "no script change");
        assert!(ok("日本", "語") && ok("カタ", "カナ") && ok("漢", "ひら") && ok("ー", "漢"));
        assert!(
            ok("e", "\u{301}") && ok("\u{301}", "x"),
            "combining marks join any script"
        );
        assert!(!ok("abcdefghijklmnop", "q"), "at most 16 characters");
        assert!(
            ok(",", ".") && !ok("a", ","),
            "punctuation is its own (Common) script"
        );
    }

    #[test]
    fn permanent_breaks_never_merge() {
        let brk = |x: char, y: char| permanent_break(&char_info(x), &char_info(y));
        assert!(brk('a', '1') && brk('7', 'b') && brk('a', 'Ж') && brk('x', '▁'));
        assert!(brk('日', ',') && brk('５', '▁'));
        assert!(!brk('▁', 'a') && !brk('▁', '▁') && !brk('a', 'b') && !brk('カ', '漢'));
        assert!(
            !brk('e', '\u{301}') && !brk('\u{301}', 'Ж'),
            "marks join both sides"
        );
        // Across a break, no symbol ending in the left character merges with one starting
        // with the right one.
        let lefts = ["a", "▁a", "▁ab", "e\u{301}", "Ж", "▁", ",", "日本"];
        let rights = ["1", "b", "bc", "Жд", "▁", "▁x", "\u{301}x", ",", "語"];
        for l in lefts {
            for r in rights {
                let (x, y) = (l.chars().last().unwrap(), r.chars().next().unwrap());
                if brk(x, y) {
                    assert!(!ok(l, r), "{l} + {r} merges across a break");
                }
            }
        }
    }

    #[test]
    fn reserved_texts_are_never_pieces() {
        assert!(is_reserved("<s>") && is_reserved("<0x0A>") && is_reserved("<unk>"));
        assert!(!is_reserved("<0x0") && !is_reserved("<s"));
    }

    #[test]
    fn equal_runs_are_stored_once_through_index_growth_and_shared_hashes() {
        // Runs queued in groups, many repeated, far more than the index starts with; then
        // three different runs forced onto one hash.
        let mut runs = Runs {
            index: RunIndex::with_capacity(4),
            ..Default::default()
        };
        let mut expected: Vec<(Vec<u32>, u64)> = Vec::new();
        for round in 0..3u64 {
            for i in 0..5_000u32 {
                let run = vec![1 + i % 7, 2 + i / 7, 3];
                let start = runs.pending.symbols.len();
                runs.pending.symbols.extend(&run);
                runs.close(start, round + 1);
                if round == 0 {
                    expected.push((run, 0));
                }
                expected[i as usize].1 += round + 1;
                if runs.pending.runs.len() >= RUN_GROUP {
                    runs.resolve().expect("resolve");
                }
            }
        }
        for (k, run) in [[9u32, 9], [8, 8], [9, 9], [7, 7]].iter().enumerate() {
            let start = runs.pending.symbols.len();
            runs.pending.symbols.extend(run);
            runs.pending.runs.push(PendingRun {
                start,
                len: 2,
                count: 10 + k as u64,
                hash: 42,
            });
        }
        runs.resolve().expect("resolve");
        expected.push((vec![9, 9], 10 + 12));
        expected.push((vec![8, 8], 11));
        expected.push((vec![7, 7], 13));
        let got: Vec<(Vec<u32>, u64)> = runs
            .spans
            .iter()
            .map(|sp| {
                let run = runs.arena[sp.start as usize..][..sp.len as usize].to_vec();
                (run, sp.count)
            })
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_small_merge_heap_picks_the_same_merges_as_a_heap_of_every_pair() {
        // A tiny heap is refilled and rebuilt hundreds of times, with many pairs tied at the
        // floor; the model must be the one a heap holding every pair gives.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = TrainConfig {
            sources: vec![SourceConfig {
                name: "sample".into(),
                paths: vec![root
                    .join("samples/stackexchange/conlang.meta/Posts.xml")
                    .display()
                    .to_string()],
                weight: 1,
                max_bytes: 0,
            }],
            vocab_size: 2500,
            threads: 2,
            ..Default::default()
        };
        let train = |heap_pairs: usize| {
            let counts = count_words(&config.sources, config.max_line_bytes, 2).expect("count");
            let mut report = TrainReport::default();
            train_from_counts(counts, &config, &mut report, heap_pairs).expect("train")
        };
        let pieces = |p: ModelProto| -> Vec<String> {
            p.pieces.into_iter().filter_map(|x| x.piece).collect()
        };
        let all = pieces(train(usize::MAX));
        assert_eq!(all.len(), 2500);
        assert_eq!(pieces(train(8)), all);
        assert_eq!(pieces(train(1)), all);
    }

    #[test]
    fn a_merge_split_across_threads_equals_one_thread() {
        // Symbols 1..=3 are letters of one script, mixed pseudo-randomly so `1 2` occurs at
        // the start, middle and end of runs, twice in some; 4 is the merged symbol.
        let syms: Vec<SymInfo> = ['\0', 'a', 'b', 'c', 'd']
            .iter()
            .map(|&c| char_info(c))
            .collect();
        let (mut arena, mut spans) = (Vec::new(), Vec::new());
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        for w in 0..(8 * PARALLEL_WORDS as u32) {
            let run: Vec<u32> = (0..2 + w % 7)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    1 + (rng % 3) as u32
                })
                .collect();
            spans.push(Span {
                start: arena.len() as u32,
                len: run.len() as u32,
                count: 1 + (w % 5) as u64,
            });
            arena.extend(run);
        }
        let words: Vec<u32> = (0..spans.len() as u32)
            .filter(|&w| {
                let sp = spans[w as usize];
                arena[sp.start as usize..][..sp.len as usize]
                    .windows(2)
                    .any(|p| p == [1, 2])
            })
            .collect();
        assert!(
            words.len() >= 3 * PARALLEL_WORDS,
            "the test must take the split path"
        );
        let step = MergeStep {
            a: 1,
            b: 2,
            c: 4,
            syms: &syms,
            max_chars: 16,
        };
        let (mut arena1, mut spans1) = (arena.clone(), spans.clone());
        let mut one = vec![PairChange::default()];
        step.apply_split(&words, &mut spans1, &mut arena1, &mut one);
        let mut split: Vec<PairChange> = (0..3).map(|_| PairChange::default()).collect();
        step.apply_split(&words, &mut spans, &mut arena, &mut split);
        assert!(
            split.iter().all(|p| p.used > 0),
            "every piece must have changed pairs"
        );
        let live = |arena: &[u32], spans: &[Span]| -> Vec<Vec<u32>> {
            spans
                .iter()
                .map(|sp| arena[sp.start as usize..][..sp.len as usize].to_vec())
                .collect()
        };
        assert_eq!(live(&arena1, &spans1), live(&arena, &spans));
        assert!(live(&arena, &spans)
            .iter()
            .all(|r| !r.windows(2).any(|p| p == [1, 2])));
        let sorted = |parts: &[PairChange]| {
            let mut d = FxHashMap::default();
            summed_counts(parts, &mut d);
            let mut v: Vec<_> = d.into_iter().filter(|e| e.1 != 0).collect();
            v.sort();
            v
        };
        assert_eq!(sorted(&one), sorted(&split));
        assert!(!sorted(&one).is_empty());
        // Where each gained pair appeared (each run once per bucket, in run order).
        let appeared = |parts: &[PairChange]| {
            let mut at: std::collections::BTreeMap<u64, Vec<u32>> = Default::default();
            for bucket in parts.iter().flat_map(PairChange::buckets) {
                assert!(bucket.words.windows(2).all(|w| w[0] < w[1]));
                at.entry(bucket.key).or_default().extend(&bucket.words);
            }
            at.retain(|_, w| !w.is_empty());
            for w in at.values_mut() {
                w.sort_unstable();
                w.dedup();
            }
            at
        };
        let holding: std::collections::BTreeMap<u64, Vec<u32>> = {
            // Recomputed from the runs after the merge: every run holding `4 x` or `x 4`
            // gained that pair (the runs before the merge held no 4). A run may also be
            // listed for a pair it held only between two occurrences (`1 2 1 2`: `4 1`).
            let mut at: std::collections::BTreeMap<u64, Vec<u32>> = Default::default();
            for (w, run) in live(&arena, &spans).iter().enumerate() {
                let mut keys: Vec<u64> = run
                    .windows(2)
                    .filter(|p| p[0] == 4 || p[1] == 4)
                    .map(|p| pair_key(p[0], p[1]))
                    .collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    at.entry(k).or_default().push(w as u32);
                }
            }
            at
        };
        let (one_at, split_at) = (appeared(&one), appeared(&split));
        assert!(
            one_at == split_at,
            "the pieces list other runs than one thread"
        );
        for (k, runs) in &holding {
            let listed = &one_at[k];
            assert!(
                runs.iter().all(|w| listed.binary_search(w).is_ok()),
                "pair {k:x}: a run is missing"
            );
        }
        // And it starts afresh: applying the merge again changes nothing.
        step.apply_split(&words, &mut spans, &mut arena, &mut split);
        assert!(split.iter().all(|p| p.used == 0));
    }
}

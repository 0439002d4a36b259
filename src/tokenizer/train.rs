//! The BPE trainer with LLaMA's rules, and the `.model` writer.
//!
//! Like sentencepiece's `bpe_model_trainer.cc` it works on unique words with counts (stored as
//! the distinct runs between places no merge can join), picks
//! the most frequent valid pair each step (ties: fewer characters, then the smaller string),
//! and scores merge `k` with `-k`, then appends the alphabet. Unlike it, the pick is an exact
//! arg-max from lazy heaps (sentencepiece scans a refreshed 5% "active" set), counts are
//! built and merges applied in parallel (see `MergeWorker`), and no sentence is held in
//! memory.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use prost::Message;
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};
use serde::Deserialize;
use unicode_script::{Script, UnicodeScript};

use super::corpus::{count_words, SourceConfig, WordCounts, WordTable};
use super::model::{piece_of_byte, WS};
use super::pair_map::PairMap;
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
    /// Counting threads, which are also the run-building and merge threads (0 = one per
    /// core; more than the cores makes the merge threads, which spin while they wait for
    /// each other, slow).
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
    /// Records the readers set aside (logged), skipped.
    pub bad_records: u64,
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
            "wrote {}: {} lines, {:.1} MB, {} long lines skipped, {} bad records skipped, \
             {} distinct words, alphabet {}, {} merges; counting {:.2} s, merging {:.2} s",
            output.display(),
            self.lines,
            self.bytes as f64 / 1e6,
            self.long_lines,
            self.bad_records,
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
    train_with(config, StateFreeing::Background)
}

/// Trains a model from `config.sources` like [`train_tokenizer`], but has freed all of the
/// trainer's memory when it returns, for a caller that needs that memory next.
pub fn train_tokenizer_then_free(config: &TrainConfig) -> Result<(ModelProto, TrainReport)> {
    train_with(config, StateFreeing::BeforeReturn)
}

/// When the merge state is freed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StateFreeing {
    /// By a background thread while the caller goes on (freeing takes a tenth of a second).
    Background,
    /// Before training returns.
    BeforeReturn,
}

fn train_with(config: &TrainConfig, freeing: StateFreeing) -> Result<(ModelProto, TrainReport)> {
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
            "the training corpus is empty (no non-empty line of at most {} bytes; {} bad \
             records skipped)",
            config.max_line_bytes,
            counts.bad_records
        );
    }
    let t1 = Instant::now();
    let mut report = TrainReport {
        lines: counts.lines,
        bytes: counts.bytes,
        long_lines: counts.long_lines,
        bad_records: counts.bad_records,
        unique_words: counts.distinct(),
        count_secs,
        ..Default::default()
    };
    let proto = train_from_counts(counts, config, &mut report, HEAP_PAIRS, freeing)?;
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

/// Words before a run's symbols in a run arena: its length now, the length it was stored with
/// (its room), and its count (low half, high half).
const RUN_HEAD: usize = 4;

/// The symbols of the run whose header is at `at` in `arena`.
fn run_syms(arena: &[u32], at: u32) -> &[u32] {
    let at = at as usize;
    &arena[at + RUN_HEAD..][..arena[at] as usize]
}

/// How often the run whose header is at `at` occurs.
fn run_count(arena: &[u32], at: u32) -> u64 {
    let at = at as usize;
    arena[at + 2] as u64 | (arena[at + 3] as u64) << 32
}

/// Adds `count` to the count of the run at `at`.
fn add_run_count(arena: &mut [u32], at: u32, count: u64) {
    let sum = run_count(arena, at).saturating_add(count);
    let at = at as usize;
    arena[at + 2] = sum as u32;
    arena[at + 3] = (sum >> 32) as u32;
}

/// Stores a run at the end of `arena`; its header's place names it.
fn push_run(arena: &mut Vec<u32>, syms: &[u32], count: u64) -> Result<u32> {
    let at = u32::try_from(arena.len())
        .ok()
        .filter(|at| {
            (*at as usize)
                .checked_add(RUN_HEAD + syms.len())
                .is_some_and(|end| end <= u32::MAX as usize)
        })
        .context("the sample has too many distinct words; lower max_bytes")?;
    arena.extend_from_slice(&[
        syms.len() as u32,
        syms.len() as u32,
        count as u32,
        (count >> 32) as u32,
    ]);
    arena.extend_from_slice(syms);
    Ok(at)
}

/// The places of the runs of `arena`, in order.
fn run_starts(arena: &[u32]) -> impl Iterator<Item = u32> + '_ {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let run = at;
        at += RUN_HEAD + *arena.get(run + 1)? as usize;
        Some(run as u32)
    })
}

/// The distinct runs of symbols of one hash shard of the words, with their pair counts.
/// The runs lie back to back in `arena`, each a header ([`RUN_HEAD`]) then its symbols, and
/// a run is named by the place of its header: a list of runs leads straight to their
/// symbols and counts, with no table in between to wait for.
#[derive(Default)]
struct Runs {
    arena: Vec<u32>,
    /// Distinct runs stored.
    runs: usize,
    /// Run index by content, to add the count of a repeated run to its first copy.
    index: RunIndex,
    /// Runs cut from the words, waiting for their lookup in `index`.
    pending: PendingRuns,
    /// Live pair -> its count in these runs and the runs holding it (`here` and `list`).
    pairs: PairMap<PairState>,
}

/// Runs are looked up in groups of this many: the index slots of the whole group are asked
/// for, then the runs those slots name, and only then compared, so the memory loads of the
/// group overlap.
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
/// the run's place + 1; 0 is empty), so the slot of a hash is known before it is read. It
/// holds every stored run.
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
            runs,
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
                if let Some(head) = arena.get(w) {
                    prefetch(head);
                }
            }
        }
        for r in &pending.runs {
            let run = &pending.symbols[r.start..][..r.len];
            index.reserve_one(*runs);
            let found = index.find(r.hash, |w| run_syms(arena, w as u32) == run);
            match found {
                Ok(w) => add_run_count(arena, w as u32, r.count),
                Err(slot) => {
                    let w = push_run(arena, run, r.count)?;
                    *runs += 1;
                    index.insert(slot, r.hash, w as usize);
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
        runs.count_pairs(syms, max_chars);
        Ok(runs)
    }

    /// Counts the pairs that may merge, and lists the runs holding each.
    fn count_pairs(&mut self, syms: &[SymInfo], max_chars: usize) {
        list_pairs(&self.arena, &mut self.pairs, syms, max_chars);
    }
}

/// Adds the runs of `arena` to `pairs`: per pair that may merge, its count in them (`here`)
/// and the runs holding it, each once, in order.
fn list_pairs(arena: &[u32], pairs: &mut PairMap<PairState>, syms: &[SymInfo], max_chars: usize) {
    for w in run_starts(arena) {
        let count = run_count(arena, w) as i64;
        for p in run_syms(arena, w).windows(2) {
            let (a, b) = (p[0], p[1]);
            if merged_info(&syms[a as usize], &syms[b as usize], max_chars).is_none() {
                continue;
            }
            let pair = pairs.entry(pair_key(a, b));
            pair.here += count;
            pair.list.push_new(w);
        }
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
    freeing: StateFreeing,
) -> Result<ModelProto> {
    // Alphabet by coverage: most frequent characters first; tab and NUL never.
    // One thread per hash shard (as many as counting threads).
    let parts: Vec<Result<FxHashMap<char, u64>>> = std::thread::scope(|scope| {
        let counts = &counts;
        let handles: Vec<_> = (0..counts.shards)
            .map(|shard| scope.spawn(move || char_frequencies(counts.shard(shard))))
            .collect();
        joined(handles, "character counting")
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
    let sym_of_text: FxHashMap<String, u32> = symbols
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
        joined(handles, "run building")
            .into_iter()
            .map(|r| r.and_then(|r| r))
            .collect()
    });
    drop(counts);
    let mut shards = Vec::with_capacity(built.len());
    for part in built {
        shards.push(part?);
    }
    tracing::info!(
        "{} distinct runs, {} symbols, {} pair lists over {} threads; peak RSS {} MB",
        shards.iter().map(|r| r.runs).sum::<usize>(),
        shards
            .iter()
            .map(|r| r.arena.len() - RUN_HEAD * r.runs)
            .sum::<usize>(),
        shards.iter().map(|r| r.pairs.len()).sum::<usize>(),
        shards.len(),
        peak_rss_mb()
    );

    // One merge thread per shard of runs; they agree on every merge (see `MergeWorker`).
    let shared = MergeShared {
        syms: symbols.syms,
        texts: symbols.texts,
        sym_of_text,
        merges_wanted,
        heap_pairs,
        max_chars: config.max_piece_chars,
    };
    let exchange = MergeExchange::new(shards.len());
    let results: Vec<Result<MergeResult>> = std::thread::scope(|scope| {
        let handles: Vec<_> = shards
            .into_iter()
            .enumerate()
            .map(|(id, runs)| {
                let (shared, exchange) = (&shared, &exchange);
                scope.spawn(move || {
                    let mut leave = LeaveGuard {
                        barrier: &exchange.barrier,
                        done: false,
                    };
                    let result = MergeWorker::new(id, runs, shared, exchange).run();
                    leave.done = result.is_ok();
                    result
                })
            })
            .collect();
        joined(handles, "merge")
            .into_iter()
            .map(|r| r.and_then(|r| r))
            .collect()
    });
    // A thread that failed makes the others stop at the barrier: report its error.
    let mut results = results;
    if let Some(i) = results.iter().position(|r| {
        r.as_ref()
            .is_err_and(|e| !e.to_string().starts_with(BARRIER_BROKEN))
    }) {
        results.swap_remove(i)?;
    }
    let mut pieces = None;
    let (mut tracked, mut heaped) = (0, 0);
    let mut states = Vec::with_capacity(results.len());
    for result in results {
        let result = result?;
        tracked += result.pairs;
        heaped += result.heap_entries;
        pieces.get_or_insert(result.pieces);
        states.push(result.state);
    }
    let pieces = pieces.unwrap_or_default();
    report.merges = pieces.len();
    tracing::info!(
        "{} merges, {tracked} pairs tracked, {heaped} heap entries; peak RSS {} MB",
        pieces.len(),
        peak_rss_mb()
    );
    // Freeing the merge state (a list per pair and thread, the arenas, the heaps) takes a
    // tenth of a second: a short-lived background thread does it while the caller writes the
    // model (its memory is back shortly after this returns). If no thread can be started,
    // the closure and the state are dropped here.
    if freeing == StateFreeing::Background {
        let _ = std::thread::Builder::new()
            .name("free-merge-state".into())
            .spawn(move || drop(states));
    } else {
        drop(states);
        crate::stats::return_freed_memory();
    }
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

/// The runs holding a pair, in the order added: up to three inline (most pairs are rare, and
/// a list of their own would cost an allocation each), more on the heap.
enum RunList {
    Inline { len: u8, runs: [u32; 3] },
    Heap(Vec<u32>),
}

impl Default for RunList {
    fn default() -> Self {
        RunList::Inline {
            len: 0,
            runs: [0; 3],
        }
    }
}

impl RunList {
    /// Adds run `w` unless it is the last one added; true when added.
    fn push_new(&mut self, w: u32) -> bool {
        match self {
            RunList::Inline { len, runs } => {
                let n = *len as usize;
                if n > 0 && runs[n - 1] == w {
                    return false;
                }
                if n < runs.len() {
                    runs[n] = w;
                    *len += 1;
                } else {
                    let mut v = Vec::with_capacity(8);
                    v.extend_from_slice(runs);
                    v.push(w);
                    *self = RunList::Heap(v);
                }
                true
            }
            RunList::Heap(v) => {
                if v.last() == Some(&w) {
                    return false;
                }
                v.push(w);
                true
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            RunList::Inline { len, .. } => *len as usize,
            RunList::Heap(v) => v.len(),
        }
    }

    fn into_vec(self) -> Vec<u32> {
        match self {
            RunList::Inline { len, runs } => runs[..len as usize].to_vec(),
            RunList::Heap(v) => v,
        }
    }
}

// No larger than the `Vec` it replaces.
const _: () = assert!(std::mem::size_of::<RunList>() == 24);

/// Joins scoped threads in order; a panic becomes an error naming the `what` thread.
fn joined<T>(handles: Vec<std::thread::ScopedJoinHandle<'_, T>>, what: &str) -> Vec<Result<T>> {
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .map_err(|_| anyhow::anyhow!("a {what} thread panicked"))
        })
        .collect()
}

/// What every merge thread starts from.
struct MergeShared {
    syms: Vec<SymInfo>,
    texts: Vec<String>,
    sym_of_text: FxHashMap<String, u32>,
    merges_wanted: usize,
    heap_pairs: usize,
    max_chars: usize,
}

/// A merge thread's results: the pieces learned (the same in every thread), a few sizes for
/// the log, and its state, to be freed off the critical path.
struct MergeResult {
    pieces: Vec<(String, f32)>,
    /// Entries of its pair map (counting them by kind would take a scan of the map).
    pairs: usize,
    heap_entries: usize,
    state: Box<dyn Send>,
}

/// The best pair a merge thread owns, offered to the others.
#[derive(Clone)]
struct Pick {
    entry: HeapEntry,
    text: String,
}

/// Orders picks: higher count, then fewer characters, then the smaller text, then the
/// smaller pair key is greater (the one merged).
fn pick_order(x: &Pick, y: &Pick) -> std::cmp::Ordering {
    x.entry
        .cmp(&y.entry)
        .then_with(|| y.text.cmp(&x.text))
        .then_with(|| y.entry.pair.cmp(&x.entry.pair))
}

/// The merge thread that owns a pair's count (by a hash of the pair).
fn owner(pair: u64, threads: usize) -> usize {
    ((pair.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize) % threads
}

/// Pair changes are made in groups of this many, whose memory is asked for first.
const PAIR_GROUP: usize = 16;

/// What a merge thread knows of a pair: its count over all threads (kept by the thread that
/// owns the pair, 0 elsewhere), its count in this thread's runs, and the runs here holding it.
#[derive(Default)]
struct PairState {
    count: i64,
    here: i64,
    list: RunList,
}

/// Adds `d` to the count of owned pair `k`; one that grew to the floor or above gets a heap
/// entry. The changes of one pair come in several parts (buckets, other threads' mail) in any
/// order, so a count may dip to zero or below on the way: such pairs are noted in `zeroed` and
/// only forgotten by [`forget_zeroed`] once every part is in. (The heap keeps an entry at or
/// above the count of every pair at or above the floor, so the pick is the same as with the
/// sum.)
#[allow(clippy::too_many_arguments)]
fn add_count(
    pair: &mut PairState,
    zeroed: &mut Vec<u64>,
    heap: &mut BinaryHeap<HeapEntry>,
    floor: u64,
    (syms, texts): (&[SymInfo], &[String]),
    k: u64,
    d: i64,
) {
    if d == 0 {
        return;
    }
    pair.count += d;
    let now = pair.count;
    if now <= 0 {
        zeroed.push(k);
    } else if d > 0 && now as u64 >= floor {
        heap.push(entry(syms, texts, k, now));
    }
}

/// Forgets the counts of the pairs of `zeroed` that are counted nowhere any more (all parts
/// are in), and the pairs themselves when this thread's runs do not hold them either.
fn forget_zeroed(pairs: &mut PairMap<PairState>, zeroed: &mut Vec<u64>) {
    for k in zeroed.drain(..) {
        if let Some(pair) = pairs.get_mut(k) {
            debug_assert!(pair.count >= 0, "pair {k:x} counted {} times", pair.count);
            if pair.count <= 0 {
                pair.count = 0;
                if pair.here <= 0 {
                    pairs.remove(k);
                }
            }
        }
    }
}

/// What the merge threads share: their picks, and per (sender, owner) the count changes of
/// the owner's pairs.
struct MergeExchange {
    threads: usize,
    barrier: SpinBarrier,
    picks: Vec<Mutex<Option<Pick>>>,
    /// `from * threads + to` -> changes of pair counts that thread `to` owns.
    mail: Vec<Mutex<Vec<(u64, i64)>>>,
}

impl MergeExchange {
    fn new(threads: usize) -> Self {
        MergeExchange {
            threads,
            barrier: SpinBarrier::new(threads),
            picks: (0..threads).map(|_| Mutex::new(None)).collect(),
            mail: (0..threads * threads)
                .map(|_| Mutex::new(Vec::new()))
                .collect(),
        }
    }
}

/// Locks a mutex of the exchange; a thread that panicked left nothing half-done in it.
fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A barrier that spins (the merge threads meet twice a merge, tens of thousands of times a
/// second: sleeping and waking would cost more than the merges). It can be broken by a thread
/// that leaves early, so the others stop instead of waiting forever.
struct SpinBarrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    broken: AtomicBool,
}

impl SpinBarrier {
    fn new(threads: usize) -> Self {
        SpinBarrier {
            threads,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            broken: AtomicBool::new(false),
        }
    }

    /// Waits for every thread; fails if one left.
    fn wait(&self) -> Result<()> {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return Ok(());
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            if self.broken.load(Ordering::Relaxed) {
                bail!("{BARRIER_BROKEN}");
            }
            spins += 1;
            if spins < 1 << 12 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        Ok(())
    }
}

/// The error of a merge thread whose barrier was broken by another.
const BARRIER_BROKEN: &str = "another merge thread stopped";

/// Breaks the barrier when its merge thread leaves without finishing (error or panic).
struct LeaveGuard<'a> {
    barrier: &'a SpinBarrier,
    done: bool,
}

impl Drop for LeaveGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.barrier.broken.store(true, Ordering::Relaxed);
        }
    }
}

/// One merge thread. It holds the runs of one hash shard (and, per pair, the runs that hold
/// it), and the counts and heap of the pairs it owns. For every merge each thread offers its
/// best pair; all take the best offer (so all learn the same pieces), apply the merge to their
/// own runs, and send the count changes of other threads' pairs to their owners. The heap
/// holds only the owned pairs counted at least `floor` times: most pairs are rare and never
/// merged, and a small heap stays in cache. Every live pair at or above the floor has an entry
/// (maybe with an older, higher count); when the heap runs dry the floor is lowered and the
/// pairs now above it are added, so the offer is the same as with all pairs.
struct MergeWorker<'a> {
    id: usize,
    exchange: &'a MergeExchange,
    /// Its runs (see [`Runs`]).
    arena: Vec<u32>,
    /// Every pair this thread owns (its count) or its runs hold (their count, and the runs
    /// holding it, with stale and repeated entries); a pair neither live and owned nor held
    /// here is dropped.
    pairs: PairMap<PairState>,
    /// Pairs whose count here fell to zero or below during a merge.
    emptied: Vec<u64>,
    /// Owned pairs whose count fell to zero or below during this merge.
    zeroed: Vec<u64>,
    heap: BinaryHeap<HeapEntry>,
    floor: u64,
    rebuild_at: usize,
    heap_pairs: usize,
    banned: FxHashSet<u64>,
    syms: Vec<SymInfo>,
    texts: Vec<String>,
    sym_of_text: FxHashMap<String, u32>,
    pieces: Vec<(String, f32)>,
    merges_wanted: usize,
    max_chars: usize,
    /// Count changes for the other threads' pairs, per owner.
    outgoing: Vec<Vec<(u64, i64)>>,
    change: PairChange,
    /// List entries after the last rebuild, and pushed since.
    list_entries: usize,
    pushed: usize,
}

impl<'a> MergeWorker<'a> {
    fn new(id: usize, runs: Runs, shared: &MergeShared, exchange: &'a MergeExchange) -> Self {
        let Runs { arena, pairs, .. } = runs;
        let threads = exchange.threads;
        let mut worker = MergeWorker {
            id,
            exchange,
            arena,
            pairs,
            emptied: Vec::new(),
            zeroed: Vec::new(),
            heap: BinaryHeap::new(),
            floor: 1,
            rebuild_at: 0,
            heap_pairs: shared.heap_pairs,
            banned: FxHashSet::default(),
            syms: shared.syms.clone(),
            texts: shared.texts.clone(),
            sym_of_text: shared.sym_of_text.clone(),
            pieces: Vec::with_capacity(shared.merges_wanted),
            merges_wanted: shared.merges_wanted,
            max_chars: shared.max_chars,
            outgoing: vec![Vec::new(); threads],
            change: PairChange::default(),
            list_entries: 0,
            pushed: 0,
        };
        for (k, pair) in worker.pairs.iter_mut() {
            worker.list_entries += pair.list.len();
            let to = owner(k, threads);
            if to == id {
                pair.count = pair.here;
            } else {
                worker.outgoing[to].push((k, pair.here));
            }
        }
        worker
    }

    /// Learns merges with the other threads until `merges_wanted` or no pair is left.
    fn run(mut self) -> Result<MergeResult> {
        let exchange = self.exchange;
        self.send_mail();
        exchange.barrier.wait()?;
        self.receive_mail();
        self.refill(heap_floor(&self.pairs, &self.banned, self.heap_pairs));
        while self.pieces.len() < self.merges_wanted {
            if self.id == 0 && self.pieces.len().is_multiple_of(2000) {
                tracing::debug!(
                    "{} merges; thread 0: {} pairs, {} heap entries; peak RSS {} MB",
                    self.pieces.len(),
                    self.pairs.len(),
                    self.heap.len(),
                    peak_rss_mb()
                );
            }
            let offer = self.best_owned();
            *locked(&exchange.picks[self.id]) = offer;
            exchange.barrier.wait()?;
            let best = (0..exchange.threads)
                .filter_map(|t| locked(&exchange.picks[t]).clone())
                .max_by(pick_order);
            let Some(best) = best else {
                // No thread has a pair left.
                break;
            };
            let pair = best.entry.pair;
            if is_reserved(&best.text) {
                self.banned.insert(pair);
            } else {
                let c = self.symbol_of(best.text, pair)?;
                self.merge(pair, c);
            }
            self.send_mail();
            exchange.barrier.wait()?;
            self.receive_mail();
            // Stale entries and new pairs pile up: rebuild from the live counts, with the
            // floor raised again to let in about `heap_pairs` pairs. (`rebuild_at` keeps it
            // from rebuilding at every merge when many pairs tie at the floor.)
            if self.heap.len() > self.rebuild_at {
                self.refill(heap_floor(&self.pairs, &self.banned, self.heap_pairs));
            }
            if self.pushed > self.list_entries.max(1 << 20) {
                self.rebuild_lists();
            }
        }
        let pieces = std::mem::take(&mut self.pieces);
        Ok(MergeResult {
            pieces,
            pairs: self.pairs.len(),
            heap_entries: self.heap.len(),
            state: Box::new((self.pairs, self.arena, self.heap)),
        })
    }

    /// Sets the floor and fills the heap with every owned, live, not banned pair at or
    /// above it.
    fn refill(&mut self, floor: u64) {
        self.floor = floor;
        self.heap = heap_at_least(&self.pairs, &self.banned, floor, &self.syms, &self.texts);
        self.rebuild_at = self
            .heap
            .len()
            .saturating_add(self.heap_pairs.saturating_mul(3));
    }

    /// The best live pair this thread owns (left in the heap), or None when it owns none.
    fn best_owned(&mut self) -> Option<Pick> {
        loop {
            let Some(top) = self.heap.pop() else {
                if self.floor <= 1 {
                    return None;
                }
                let floor = heap_floor(&self.pairs, &self.banned, self.heap_pairs);
                self.refill(floor.min(self.floor - 1));
                continue;
            };
            if !self.still_counted(&top) {
                continue;
            }
            // Entries tied on (count, chars, 8-byte prefix) are resolved on the full string,
            // then on the pair key, so the pick never depends on the heap's history.
            let mut best = Pick {
                text: pair_text(&self.texts, top.pair),
                entry: top,
            };
            let mut tied = Vec::new();
            while let Some(next) = self.heap.peek() {
                let e = &best.entry;
                if (next.count, next.chars, next.prefix) != (e.count, e.chars, e.prefix) {
                    break;
                }
                let next = self.heap.pop().expect("peeked");
                if !self.still_counted(&next) {
                    continue;
                }
                let next = Pick {
                    text: pair_text(&self.texts, next.pair),
                    entry: next,
                };
                if pick_order(&next, &best).is_gt() {
                    tied.push(std::mem::replace(&mut best, next).entry);
                } else {
                    tied.push(next.entry);
                }
            }
            self.heap.extend(tied);
            self.heap.push(best.entry);
            return Some(best);
        }
    }

    /// True when a popped heap entry still holds its pair's count; a stale entry of a pair
    /// still at or above the floor is pushed again with the current count.
    fn still_counted(&mut self, e: &HeapEntry) -> bool {
        let current = self.pairs.get(e.pair).map_or(0, |p| p.count);
        let banned = self.banned.contains(&e.pair);
        if current == e.count as i64 && !banned {
            return true;
        }
        if current > 0 && current as u64 >= self.floor && (current as u64) < e.count && !banned {
            self.heap
                .push(entry(&self.syms, &self.texts, e.pair, current));
        }
        false
    }

    /// The symbol for the merged pair, added (with its piece) when its text is new.
    fn symbol_of(&mut self, text: String, pair: u64) -> Result<u32> {
        if let Some(&c) = self.sym_of_text.get(&text) {
            return Ok(c);
        }
        let (a, b) = ((pair >> 32) as usize, (pair as u32) as usize);
        let (chars, ws, script) = merged_info(&self.syms[a], &self.syms[b], self.max_chars)
            .context("invalid pair counted")?;
        let c = self.syms.len() as u32;
        self.texts.push(text.clone());
        self.syms.push(SymInfo {
            chars,
            ws,
            script,
            frozen: false,
        });
        self.sym_of_text.insert(text.clone(), c);
        let score = -(self.pieces.len() as f32);
        self.pieces.push((text, score));
        Ok(c)
    }

    /// Replaces the pair by `c` in this thread's runs; the count changes of owned pairs are
    /// made, the others go to `outgoing`, and the runs where a pair appeared to its list.
    fn merge(&mut self, pair: u64, c: u32) {
        let threads = self.exchange.threads;
        // The pair is gone from every run: its count (if owned) and list go.
        let mut words = self
            .pairs
            .remove(pair)
            .map_or_else(Vec::new, |p| p.list.into_vec());
        words.sort_unstable();
        words.dedup();
        let step = MergeStep {
            a: (pair >> 32) as u32,
            b: pair as u32,
            c,
            syms: &self.syms,
            max_chars: self.max_chars,
        };
        self.change.clear(self.syms.len());
        step.apply(&words, &mut self.arena, &mut self.change);
        // In groups: first the home slots of the group's pairs are asked for, then their
        // entries, then they are changed, so the memory loads of a group overlap.
        for group in self.change.buckets().chunks(PAIR_GROUP) {
            for bucket in group {
                self.pairs.prefetch_slot(bucket.key);
            }
            for bucket in group {
                self.pairs.prefetch_entry(bucket.key);
            }
            for bucket in group {
                // (`a b` itself is gone everywhere: its owner dropped it.)
                if !bucket.mergeable || bucket.key == pair {
                    continue;
                }
                let to = owner(bucket.key, threads);
                if to != self.id && bucket.delta != 0 {
                    self.outgoing[to].push((bucket.key, bucket.delta));
                }
                let state = self.pairs.entry(bucket.key);
                if to == self.id {
                    add_count(
                        state,
                        &mut self.zeroed,
                        &mut self.heap,
                        self.floor,
                        (&self.syms, &self.texts),
                        bucket.key,
                        bucket.delta,
                    );
                }
                state.here += bucket.delta;
                if state.here <= 0 {
                    self.emptied.push(bucket.key);
                }
                for &w in &bucket.words {
                    if state.list.push_new(w) {
                        self.pushed += 1;
                    }
                }
            }
        }
        // Only once every change is in (a pair may gain in one bucket and lose in another):
        // the runs here no longer hold these. An owned pair keeps its count until the other
        // threads' changes are in too (see `forget_zeroed`).
        for k in self.emptied.drain(..) {
            let Some(state) = self.pairs.get_mut(k) else {
                continue;
            };
            if state.here > 0 {
                continue;
            }
            if owner(k, threads) == self.id {
                state.list = RunList::default();
            } else {
                self.pairs.remove(k);
            }
        }
    }

    /// Hands the changes of other threads' pairs to their owners.
    fn send_mail(&mut self) {
        let threads = self.exchange.threads;
        for (to, out) in self.outgoing.iter_mut().enumerate() {
            if to != self.id && !out.is_empty() {
                locked(&self.exchange.mail[self.id * threads + to]).append(out);
            }
        }
    }

    /// Adds the changes of owned pairs sent by the other threads to the counts; then every
    /// change of the merge is in, and the owned pairs counted nowhere any more are forgotten.
    fn receive_mail(&mut self) {
        let threads = self.exchange.threads;
        for from in 0..threads {
            if from == self.id {
                continue;
            }
            let mut mail = locked(&self.exchange.mail[from * threads + self.id]);
            for group in mail.chunks(PAIR_GROUP) {
                for &(k, _) in group {
                    self.pairs.prefetch_slot(k);
                }
                for &(k, _) in group {
                    self.pairs.prefetch_entry(k);
                }
                for &(k, d) in group {
                    add_count(
                        self.pairs.entry(k),
                        &mut self.zeroed,
                        &mut self.heap,
                        self.floor,
                        (&self.syms, &self.texts),
                        k,
                        d,
                    );
                }
            }
            mail.clear();
        }
        forget_zeroed(&mut self.pairs, &mut self.zeroed);
    }

    /// Rebuilds every pair's list of runs from the runs (each run once, in order).
    fn rebuild_lists(&mut self) {
        for (_, pair) in self.pairs.iter_mut() {
            pair.here = 0;
            pair.list = RunList::default();
        }
        list_pairs(&self.arena, &mut self.pairs, &self.syms, self.max_chars);
        self.pairs.retain(|_, p| p.here > 0 || p.count > 0);
        self.list_entries = self.pairs.iter().map(|(_, p)| p.list.len()).sum();
        self.pushed = 0;
    }
}

/// Each merge thread's heap is filled with about this many of its most frequent pairs at a
/// time (8 K: smaller heaps were faster on the benchmark text down to this, 4 K no more).
const HEAP_PAIRS: usize = 1 << 13;

/// The heap floor that lets in about `heap_pairs` live pairs: the count of the
/// `heap_pairs`-th most frequent one that is not banned (1 when there are fewer).
fn heap_floor(pairs: &PairMap<PairState>, banned: &FxHashSet<u64>, heap_pairs: usize) -> u64 {
    let mut counts: Vec<u64> = pairs
        .iter()
        .filter(|(k, p)| p.count > 0 && !banned.contains(k))
        .map(|(_, p)| p.count as u64)
        .collect();
    if counts.len() <= heap_pairs.max(1) {
        return 1;
    }
    let (_, nth, _) = counts.select_nth_unstable_by(heap_pairs.max(1) - 1, |a, b| b.cmp(a));
    (*nth).max(1)
}

/// A heap of every live, not banned pair counted at least `floor` times.
fn heap_at_least(
    pairs: &PairMap<PairState>,
    banned: &FxHashSet<u64>,
    floor: u64,
    syms: &[SymInfo],
    texts: &[String],
) -> BinaryHeap<HeapEntry> {
    pairs
        .iter()
        .filter(|(k, p)| p.count > 0 && p.count as u64 >= floor && !banned.contains(k))
        .map(|(k, p)| entry(syms, texts, k, p.count))
        .collect()
}

/// How many runs ahead [`MergeStep::apply`] asks for a run.
const APPLY_AHEAD: usize = 8;

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

/// What a merge changed in one thread's runs: for every neighbour symbol and side, the pair,
/// the change of its count and, for a gained pair, the runs where it appeared.
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

impl MergeStep<'_> {
    /// Replaces `a b` by `c` in the runs `words` (sorted, distinct run places in `arena`)
    /// and adds to `out` what changed.
    fn apply(&self, words: &[u32], arena: &mut [u32], out: &mut PairChange) {
        let (a, b) = (self.a, self.b);
        // The runs are scattered: ask for the run (header and first symbols) 8 ahead, so the
        // memory loads overlap; the first ones are asked for all at once (most lists are
        // short).
        for &w in words.iter().take(APPLY_AHEAD) {
            prefetch(&arena[w as usize]);
        }
        for (k, &w) in words.iter().enumerate() {
            if let Some(&ahead) = words.get(k + APPLY_AHEAD) {
                prefetch(&arena[ahead as usize]);
            }
            let at = w as usize;
            let n = run_count(arena, w) as i64;
            let mut len = arena[at] as usize;
            let word = &mut arena[at + RUN_HEAD..at + RUN_HEAD + len];
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
                arena[at] = len as u32;
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
        let got: Vec<(Vec<u32>, u64)> = run_starts(&runs.arena)
            .map(|w| (run_syms(&runs.arena, w).to_vec(), run_count(&runs.arena, w)))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(runs.runs, expected.len());
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
                    .join("samples/books/Pride-and-Prejudice_1342/1342.txt")
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
            train_from_counts(
                counts,
                &config,
                &mut report,
                heap_pairs,
                StateFreeing::Background,
            )
            .expect("train")
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
    fn a_count_that_dips_below_zero_within_a_merge_is_not_lost() {
        // `a` + `bc` spells the existing symbol `abc`. In run 0 (`abc a bc`, once) the merge
        // loses `abc a`; in run 1 (`a bc a bc`, 5 times) it gains `abc a` between the two
        // occurrences and loses it again: the parts of its change are -1, -5, +5 (sum -1),
        // and the pair must end counted nowhere, not at 5.
        let letter = char_info('a');
        let multi = |chars: u8| SymInfo { chars, ..letter };
        let syms = vec![char_info('\0'), letter, letter, letter, multi(2), multi(3)];
        let texts: Vec<String> = ["", "a", "b", "c", "bc", "abc"].map(String::from).into();
        let (a, bc, abc) = (1u32, 4u32, 5u32);
        let mut runs = Runs::default();
        for (run, count) in [(vec![abc, a, bc], 1u64), (vec![a, bc, a, bc], 5)] {
            push_run(&mut runs.arena, &run, count).expect("push");
        }
        runs.count_pairs(&syms, 16);
        let shared = MergeShared {
            sym_of_text: texts
                .iter()
                .enumerate()
                .skip(1)
                .map(|(i, t)| (t.clone(), i as u32))
                .collect(),
            syms,
            texts,
            merges_wanted: 1,
            heap_pairs: HEAP_PAIRS,
            max_chars: 16,
        };
        let exchange = MergeExchange::new(1);
        let mut worker = MergeWorker::new(0, runs, &shared, &exchange);
        worker.merge(pair_key(a, bc), abc);
        worker.receive_mail();
        // The counts are the pairs of the runs after the merge: `abc abc` in both.
        let mut truth: FxHashMap<u64, i64> = FxHashMap::default();
        for w in run_starts(&worker.arena) {
            for p in run_syms(&worker.arena, w).windows(2) {
                *truth.entry(pair_key(p[0], p[1])).or_default() +=
                    run_count(&worker.arena, w) as i64;
            }
        }
        assert_eq!(truth, [(pair_key(abc, abc), 6)].into_iter().collect());
        let counted: FxHashMap<u64, i64> = worker
            .pairs
            .iter()
            .filter(|(_, p)| p.count != 0)
            .map(|(k, p)| (k, p.count))
            .collect();
        assert_eq!(counted, truth);
        assert!(worker
            .pairs
            .iter()
            .all(|(k, p)| truth.contains_key(&k) && p.here == truth[&k]));
    }

    #[test]
    fn a_merge_changes_exactly_the_pair_counts_of_its_runs() {
        // Symbols 1..=3 are letters of one script, mixed pseudo-randomly so `1 2` occurs at
        // the start, middle and end of runs, twice or overlapping (`1 2 1 2`) in some; 4 is
        // the merged symbol.
        let syms: Vec<SymInfo> = ['\0', 'a', 'b', 'c', 'd']
            .iter()
            .map(|&c| char_info(c))
            .collect();
        let mut arena = Vec::new();
        // A count over 32 bits for some runs: both halves of the header count.
        let big = 1u64 << 33;
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        for w in 0..4000u32 {
            let run: Vec<u32> = (0..2 + w % 7)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    1 + (rng % 3) as u32
                })
                .collect();
            let count = 1 + (w % 5) as u64 + if w % 11 == 0 { big } else { 0 };
            push_run(&mut arena, &run, count).expect("push");
        }
        let starts: Vec<u32> = run_starts(&arena).collect();
        assert_eq!(starts.len(), 4000);
        let live = |arena: &[u32]| -> Vec<Vec<u32>> {
            run_starts(arena)
                .map(|w| run_syms(arena, w).to_vec())
                .collect()
        };
        let pair_counts = |arena: &[u32]| {
            let mut counts: std::collections::BTreeMap<u64, i64> = Default::default();
            for w in run_starts(arena) {
                for p in run_syms(arena, w).windows(2) {
                    *counts.entry(pair_key(p[0], p[1])).or_default() += run_count(arena, w) as i64;
                }
            }
            counts
        };
        let before = pair_counts(&arena);
        // Every run, some twice and some without the pair: the list may hold stale entries.
        let mut words = starts.clone();
        words.extend([starts[7], starts[7], starts[100]]);
        words.sort_unstable();
        words.dedup();
        let step = MergeStep {
            a: 1,
            b: 2,
            c: 4,
            syms: &syms,
            max_chars: 16,
        };
        let mut change = PairChange::default();
        change.clear(syms.len());
        step.apply(&words, &mut arena, &mut change);
        assert!(live(&arena)
            .iter()
            .all(|r| !r.windows(2).any(|p| p == [1, 2])));
        // The counted change of every pair but `1 2` is the change of its true count.
        let after = pair_counts(&arena);
        // The runs keep their places and counts.
        assert_eq!(run_starts(&arena).collect::<Vec<_>>(), starts);
        let mut counted: std::collections::BTreeMap<u64, i64> = Default::default();
        for bucket in change.buckets() {
            assert!(bucket.mergeable);
            *counted.entry(bucket.key).or_default() += bucket.delta;
        }
        counted.remove(&pair_key(1, 2));
        counted.retain(|_, d| *d != 0);
        let mut truth: std::collections::BTreeMap<u64, i64> = Default::default();
        for k in before.keys().chain(after.keys()) {
            let d = after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0);
            if d != 0 && *k != pair_key(1, 2) {
                truth.insert(*k, d);
            }
        }
        assert!(!truth.is_empty());
        assert_eq!(counted, truth);
        // Every run now holding a pair with 4 is listed for it, once and in order (a run may
        // also be listed for a pair it held only between two occurrences: `1 2 1 2`).
        let mut listed: std::collections::BTreeMap<u64, Vec<u32>> = Default::default();
        for bucket in change.buckets() {
            assert!(bucket.words.windows(2).all(|w| w[0] < w[1]));
            listed.entry(bucket.key).or_default().extend(&bucket.words);
        }
        for (run, w) in live(&arena).iter().zip(&starts) {
            for p in run.windows(2).filter(|p| p[0] == 4 || p[1] == 4) {
                let runs = &listed[&pair_key(p[0], p[1])];
                assert!(runs.contains(w), "run {w} is missing");
            }
        }
        // And it starts afresh: applying the merge again changes nothing.
        change.clear(syms.len());
        step.apply(&words, &mut arena, &mut change);
        assert!(change.buckets().is_empty());
    }
}

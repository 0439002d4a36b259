//! Streams the training text (datamill shards or plain text files) and counts its words in
//! parallel: each line gets sentencepiece's dummy `▁` prefix and `▁` for spaces, and is cut
//! into words the way the trainer does (a run of `▁` plus the characters up to the next `▁`).

use std::fs::File;
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use memmap2::{Mmap, MmapOptions};
use rustc_hash::FxBuildHasher;
use serde::Deserialize;

use super::encode::Chunker;
use super::model::WS;
use super::{prefetch, written_zeros};
use crate::doc::{open_decompressed, JsonlReader, RecordError, MAX_LINE_BYTES};
use crate::sources::jsonl::text_of_line;
use crate::sources::text;
use crate::sources::training::{for_each_training_document, reader_for, training_files};

/// One weighted part of the training corpus.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Name shown in the report.
    #[serde(default)]
    pub name: String,
    /// Files, folders (recursive) or globs, as the training commands take them
    /// ([`crate::sources::training`]: a run's folder gives its kept shards only):
    /// `*.jsonl[.gz|.zst]` are read with the `jsonl` reader's line parser (their `text`),
    /// WARC, WET and MediaWiki XML by their pipeline readers, anything else as UTF-8 text
    /// ([`crate::sources::text`]; `.gz`, `.zst`, `.bz2` decompressed).
    pub paths: Vec<String>,
    /// Every word count of this source is multiplied by it (default 1), as if the source
    /// were repeated `weight` times.
    #[serde(default = "one")]
    pub weight: u64,
    /// Stop reading this source after this many bytes of lines (0 = all, the default).
    #[serde(default)]
    pub max_bytes: u64,
}

fn one() -> u64 {
    1
}

/// Word counts of the whole sample.
#[derive(Default)]
pub struct WordCounts {
    /// Word (with ' ' standing for `▁`, the dummy prefix included) -> weighted count: table
    /// `t * shards + s` holds counting thread `t`'s words of hash shard `s`, so a word is in
    /// one shard, though maybe in several threads' tables (its count is the sum).
    pub words: Vec<WordTable>,
    /// Hash shards of the words (the number of counting threads).
    pub shards: usize,
    /// Lines counted.
    pub lines: u64,
    /// Bytes of the lines counted.
    pub bytes: u64,
    /// Lines longer than the limit, skipped (as sentencepiece does).
    pub long_lines: u64,
    /// Records the readers set aside (JSONL lines that are not JSON or have no `text`
    /// string, bad WARC records, ...): logged, counted and skipped.
    pub bad_records: u64,
}

impl WordCounts {
    /// Table entries over all tables (distinct words, plus words counted by several threads).
    pub fn distinct(&self) -> usize {
        self.words.iter().map(|m| m.len()).sum()
    }

    /// The tables of hash shard `shard`, one per counting thread.
    pub fn shard(&self, shard: usize) -> impl Iterator<Item = &WordTable> + '_ {
        self.words.iter().skip(shard).step_by(self.shards.max(1))
    }
}

/// Distinct words with their weighted counts, stored back to back in one byte arena (an
/// 8-byte aligned record per word: count `u64`, length `u32`, the bytes), so that a word costs
/// no allocation of its own and a pass over all words reads memory in order. The index is
/// an open-addressing table of `u64` slots (the hash's low 32 bits, then the record offset
/// / 8 + 1; 0 is empty) whose slot address is known from the hash alone, so the counting
/// thread can ask for it ahead of time ([`Self::prefetch`]).
#[derive(Default)]
pub struct WordTable {
    arena: Vec<u8>,
    slots: Vec<u64>,
    len: usize,
}

/// Bytes before a record's text: count and length.
const RECORD_HEAD: usize = 12;

impl WordTable {
    /// An empty table with room for `words` words before it grows.
    fn with_capacity(words: usize) -> Self {
        WordTable {
            arena: Vec::new(),
            slots: written_zeros((words * 2).next_power_of_two().max(16)),
            len: 0,
        }
    }

    /// Distinct words.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no word was added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The count of the record at byte `at`.
    fn count_at(arena: &[u8], at: usize) -> u64 {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&arena[at..at + 8]);
        u64::from_le_bytes(bytes)
    }

    /// The word of the record at byte `at`.
    fn word_at(arena: &[u8], at: usize) -> &[u8] {
        let mut len = [0u8; 4];
        len.copy_from_slice(&arena[at + 8..at + 12]);
        let len = u32::from_le_bytes(len) as usize;
        &arena[at + RECORD_HEAD..at + RECORD_HEAD + len]
    }

    /// The first slot to probe for hash `h`.
    fn home(&self, h: u64) -> usize {
        h as usize & (self.slots.len() - 1)
    }

    /// Asks the CPU for the first slot of hash `h` and, when that slot is taken by a word
    /// of the same hash tag, for its record: a later [`Self::add`] of the word then finds
    /// both in cache. Call it twice a few words apart (the second call reads the slot the
    /// first one fetched).
    fn prefetch(&self, h: u64, record_too: bool) {
        if self.slots.is_empty() {
            return;
        }
        let slot = &self.slots[self.home(h)];
        if !record_too {
            prefetch(slot);
            return;
        }
        let s = *slot;
        if s != 0 && s >> 32 == h & 0xFFFF_FFFF {
            let at = ((s & 0xFFFF_FFFF) as usize - 1) * 8;
            if let Some(record) = self.arena.get(at) {
                prefetch(record);
            }
        }
    }

    /// Adds `weight` to the count of `word`, whose hash is `h` (see [`ShardCounter::add_word`]).
    /// (`word` is UTF-8: every caller cut it from a `&str` at character boundaries.)
    fn add(&mut self, word: &[u8], h: u64, weight: u64) -> Result<()> {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let tag = h & 0xFFFF_FFFF;
        let mask = self.slots.len() - 1;
        let mut i = self.home(h);
        loop {
            let s = self.slots[i];
            if s == 0 {
                break;
            }
            if s >> 32 == tag {
                let at = ((s & 0xFFFF_FFFF) as usize - 1) * 8;
                if Self::word_at(&self.arena, at) == word {
                    let count = Self::count_at(&self.arena, at);
                    self.arena[at..at + 8]
                        .copy_from_slice(&count.saturating_add(weight).to_le_bytes());
                    return Ok(());
                }
            }
            i = (i + 1) & mask;
        }
        let at = self.arena.len();
        let Some(slot) = u32::try_from(at / 8 + 1).ok().filter(|&s| s < u32::MAX) else {
            bail!("more than 32 GB of distinct words in one counting shard: lower max_bytes");
        };
        let arena = &mut self.arena;
        arena.extend_from_slice(&weight.to_le_bytes());
        arena.extend_from_slice(&(word.len() as u32).to_le_bytes());
        arena.extend_from_slice(word);
        arena.resize(arena.len().next_multiple_of(8), 0);
        self.slots[i] = (tag << 32) | slot as u64;
        self.len += 1;
        Ok(())
    }

    /// Doubles the slots (the home slot comes from the tag, so no word is hashed again).
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(16);
        let mut slots = written_zeros(size);
        let mask = size - 1;
        for &s in self.slots.iter().filter(|&&s| s != 0) {
            let mut i = (s >> 32) as usize & mask;
            while slots[i] != 0 {
                i = (i + 1) & mask;
            }
            slots[i] = s;
        }
        self.slots = slots;
    }

    /// Every word with its count, in the order the words reached the table.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        let arena = &self.arena;
        let mut at = 0;
        std::iter::from_fn(move || {
            if at >= arena.len() {
                return None;
            }
            let count = Self::count_at(arena, at);
            let word = Self::word_at(arena, at);
            at = (at + RECORD_HEAD + word.len()).next_multiple_of(8);
            debug_assert!(std::str::from_utf8(word).is_ok());
            // SAFETY: every word reaches the table through `add`, whose callers all pass the
            // bytes of a `&str` cut at character boundaries (a word of a line, or the bytes of
            // a `ShortKey` made from one), so the bytes are UTF-8. (A mapped text file is
            // checked before its words are cut; see `MappedText::map` for the one way around
            // that. Checking them again took a tenth of the run building time.)
            let word = unsafe { std::str::from_utf8_unchecked(word) };
            Some((word, count))
        })
    }
}

/// Text sent to the counting threads at once.
const BATCH_BYTES: usize = 1 << 20;

/// A batch of input for a counting thread.
enum Batch {
    /// Lines of text, `\n`-separated, every word counted `weight` times.
    Text { text: String, weight: u64 },
    /// Whole JSONL records of `path` starting at byte `offset` after `lines` lines, whose
    /// `text` fields are counted `weight` times each.
    Jsonl {
        bytes: Vec<u8>,
        weight: u64,
        path: Arc<Path>,
        offset: u64,
        lines: u64,
    },
    /// Block `block` of a plain text file, counted in place (see [`MappedText`]).
    Mapped {
        text: Arc<MappedText>,
        block: u64,
        weight: u64,
    },
}

/// Reads every source and counts its words on `threads` threads. The reading thread only
/// decompresses and cuts the input into batches of whole records (or names the blocks of a
/// plain text file, which the counting threads map themselves), handed out in turn (so the
/// result does not depend on timing); each counting thread parses its batches and counts
/// into its own table.
pub fn count_words(
    sources: &[SourceConfig],
    max_line_bytes: usize,
    threads: usize,
) -> Result<WordCounts> {
    let workers = threads.max(1);
    let mut senders = Vec::with_capacity(workers);
    let mut receivers = Vec::with_capacity(workers);
    for _ in 0..workers {
        // Each batch goes with its place in the input, so that of several bad batches the
        // first is the one reported.
        let (tx, rx) = sync_channel::<(u64, Batch)>(2);
        senders.push(tx);
        receivers.push(rx);
    }
    // Counted batches come back to the reader to be filled again: allocating and freeing a
    // megabyte per batch cost page clearing and cross-core TLB flushes.
    let (recycle, recycled) = sync_channel::<Vec<u8>>(workers * 3);
    std::thread::scope(|scope| -> Result<WordCounts> {
        let handles: Vec<_> = receivers
            .into_iter()
            .map(|rx| {
                let recycle = recycle.clone();
                scope.spawn(move || -> Result<ShardCounter, (u64, anyhow::Error)> {
                    let mut counter = ShardCounter::new(workers);
                    let mut norm = String::new();
                    let mut last = 0;
                    while let Ok((seq, batch)) = rx.recv() {
                        last = seq;
                        let done =
                            count_one_batch(seq, batch, max_line_bytes, &mut norm, &mut counter)
                                .map_err(|e| (seq, e))?;
                        if let Some(mut done) = done {
                            done.clear();
                            // A full channel means enough spare buffers: drop this one.
                            let _ = recycle.try_send(done);
                        }
                        counter.error.take().map_or(Ok(()), |e| Err((seq, e)))?;
                    }
                    counter.flush_hot();
                    counter.error.take().map_or(Ok(()), |e| Err((last, e)))?;
                    for table in &mut counter.words {
                        table.arena.shrink_to_fit();
                    }
                    Ok(counter)
                })
            })
            .collect();
        let mut next = 0u64;
        drop(recycle);
        let mut skipped = SkippedRecords::default();
        let read = read_sources(sources, &recycled, &mut skipped, |batch| {
            let tx = &senders[next as usize % senders.len()];
            next += 1;
            tx.send((next - 1, batch))
                .context("a counting thread stopped")
        });
        drop(senders);
        let mut total = WordCounts {
            shards: workers,
            ..Default::default()
        };
        let mut failure: Option<(u64, anyhow::Error)> = None;
        for h in handles {
            let part = h
                .join()
                .map_err(|_| anyhow::anyhow!("a counting thread panicked"))?;
            match part {
                Ok(part) => {
                    total.lines += part.lines;
                    total.bytes += part.bytes;
                    total.long_lines += part.long_lines;
                    total.words.extend(part.words);
                    skipped.merge(part.skipped);
                }
                Err(e) => {
                    if failure.as_ref().is_none_or(|f| e.0 < f.0) {
                        failure = Some(e);
                    }
                }
            }
        }
        // A counting thread's error (bad record) explains a failed send; report it first.
        if let Some((_, e)) = failure {
            return Err(e);
        }
        read?;
        skipped.log();
        total.bad_records = skipped.count;
        total.long_lines += skipped.long_lines;
        Ok(total)
    })
}

/// Bad records logged; the rest are only counted.
const LOGGED_BAD_RECORDS: usize = 5;

/// The records set aside while counting: how many, and the first few (by place in the input)
/// to log.
#[derive(Default)]
struct SkippedRecords {
    /// Lines of text files too long to be held (the reading thread's; not records).
    long_lines: u64,
    count: u64,
    /// (batch number, file, error) of the first [`LOGGED_BAD_RECORDS`] records.
    first: Vec<(u64, Arc<Path>, RecordError)>,
}

impl SkippedRecords {
    /// Counts the bad record `error` of `path`, found in batch `seq`.
    fn add(&mut self, seq: u64, path: &Arc<Path>, error: RecordError) {
        self.count += 1;
        if self.first.len() < LOGGED_BAD_RECORDS {
            self.first.push((seq, path.clone(), error));
        }
    }

    /// Takes in another thread's records.
    fn merge(&mut self, other: SkippedRecords) {
        self.count += other.count;
        self.long_lines += other.long_lines;
        self.first.extend(other.first);
        self.first.sort_by_key(|(seq, _, e)| (*seq, e.offset));
        self.first.truncate(LOGGED_BAD_RECORDS);
    }

    /// Logs the first records and how many there were in all.
    fn log(&self) {
        for (_, path, e) in &self.first {
            tracing::warn!(
                "{}: record at byte {} skipped: {}: {}",
                path.display(),
                e.offset,
                e.reason,
                e.message
            );
        }
        if self.count > self.first.len() as u64 {
            tracing::warn!("{} bad records skipped in all", self.count);
        }
    }
}

/// Counts the words of batch number `seq`; gives back its buffer, if it has one, to be filled
/// again. A bad JSONL record is set aside in `counter.skipped`.
fn count_one_batch(
    seq: u64,
    batch: Batch,
    max_line_bytes: usize,
    norm: &mut String,
    counter: &mut ShardCounter,
) -> Result<Option<Vec<u8>>> {
    Ok(match batch {
        Batch::Text { text, weight } => {
            count_batch(&text, weight, max_line_bytes, norm, counter);
            Some(text.into_bytes())
        }
        Batch::Jsonl {
            bytes,
            weight,
            path,
            offset,
            lines,
        } => {
            let mut at = offset;
            for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
                match text_of_line(line, at, lines + i as u64 + 1) {
                    Some(Ok(text)) => count_batch(&text, weight, max_line_bytes, norm, counter),
                    Some(Err(e)) => counter.skipped.add(seq, &path, e),
                    None => {}
                }
                at += line.len() as u64 + 1;
            }
            Some(bytes)
        }
        Batch::Mapped {
            text,
            block,
            weight,
        } => {
            text.count_block(block, weight, max_line_bytes, norm, counter)?;
            None
        }
    })
}

/// Bytes of a plain text file a counting thread maps and counts at once.
const MAPPED_BLOCK: u64 = 1 << 21;

/// A plain (uncompressed) text file whose blocks the counting threads map and count in
/// place: the reading thread neither copies nor checks its bytes, and the file is never
/// mapped whole (the memory in use stays a few blocks, however big the file).
///
/// Block `k` holds bytes `[k * block, (k + 1) * block)`. It counts the lines
/// that start in it (the last one read on into the next block) and checks that its own bytes
/// are UTF-8 (a character cut by its end is checked whole), so every byte is checked.
struct MappedText {
    path: Arc<Path>,
    file: File,
    len: u64,
    /// Bytes a block ([`MAPPED_BLOCK`]; smaller in tests).
    block: u64,
}

impl MappedText {
    /// Opens `path` to be counted in place, or `None` when it must be streamed: compressed,
    /// or not a regular file (a pipe).
    fn open(path: &Path) -> Result<Option<MappedText>> {
        if crate::doc::compression_of(path).is_some() {
            return Ok(None);
        }
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let meta = file
            .metadata()
            .with_context(|| format!("cannot read the size of {}", path.display()))?;
        // (A file whose size reads 0 may still have content, as in /proc: streamed.)
        if !meta.is_file() || meta.len() == 0 {
            return Ok(None);
        }
        Ok(Some(MappedText {
            path: Arc::from(path),
            file,
            len: meta.len(),
            block: MAPPED_BLOCK,
        }))
    }

    /// The number of blocks.
    fn blocks(&self) -> u64 {
        self.len.div_ceil(self.block)
    }

    /// Maps bytes `[from, to)` of the file.
    fn map(&self, from: u64, to: u64) -> Result<Mmap> {
        let len = usize::try_from(to - from).context("a block larger than memory")?;
        // SAFETY: the map is only read, and dropped before this block's counting returns.
        // This relies on nothing writing the file while it is trained on (the README says
        // so; training data is not written meanwhile): bytes changed after the UTF-8 check
        // would break the `&str` made of them (undefined behaviour), and a file cut short
        // under the map ends the process (SIGBUS). The streaming path copies instead.
        unsafe {
            MmapOptions::new()
                .offset(from)
                .len(len)
                .populate()
                .map(&self.file)
        }
        .with_context(|| format!("{}: cannot map bytes {from}..{to}", self.path.display()))
    }

    /// Counts the lines starting in block `block` (see [`MappedText`]).
    fn count_block(
        &self,
        block: u64,
        weight: u64,
        max_line_bytes: usize,
        norm: &mut String,
        counts: &mut ShardCounter,
    ) -> Result<()> {
        let start = block * self.block;
        let end = (start + self.block).min(self.len);
        if start >= end {
            return Ok(());
        }
        // How far past the block the map reaches: enough to end a line that is not too long
        // to count, at first at most 1 MB (with a huge `max_line_bytes`, widened only for a
        // block whose last line runs on that far).
        let mut reach = (max_line_bytes as u64).saturating_add(4096).min(1 << 20);
        loop {
            // Three bytes back: the start of a character cut by the block's start.
            let from = start.saturating_sub(3);
            let to = end.saturating_add(reach).min(self.len);
            let map = self.map(from, to)?;
            match BlockLines::find(&map, from, start, end, self.len, max_line_bytes) {
                Some(lines) => {
                    return self.count_lines(
                        &map,
                        from,
                        &lines,
                        weight,
                        max_line_bytes,
                        norm,
                        counts,
                    )
                }
                None => reach = reach.saturating_mul(2),
            }
        }
    }

    /// Checks the bytes of `lines.check` and counts the lines of `lines.count`; `map` starts
    /// at file byte `from`.
    #[allow(clippy::too_many_arguments)]
    fn count_lines(
        &self,
        map: &[u8],
        from: u64,
        lines: &BlockLines,
        weight: u64,
        max_line_bytes: usize,
        norm: &mut String,
        counts: &mut ShardCounter,
    ) -> Result<()> {
        let at = |byte: u64| (byte - from) as usize;
        let checked = &map[at(lines.check.0)..at(lines.check.1)];
        let text = text::utf8(checked).map_err(|at| not_utf8(&self.path, lines.check.0 + at))?;
        if lines.count.0 < lines.count.1 {
            let count = text
                .get(at(lines.count.0) - at(lines.check.0)..at(lines.count.1) - at(lines.check.0))
                .context("a block's lines are not cut at characters")?;
            count_batch(count, weight, max_line_bytes, norm, counts);
        }
        counts.long_lines += lines.long_tail as u64;
        Ok(())
    }
}

/// Where the work of one block of a [`MappedText`] lies (file byte ranges).
#[derive(Debug, PartialEq)]
struct BlockLines {
    /// The lines to count: those starting in the block, the last one to its end.
    count: (u64, u64),
    /// The bytes to check: the block's own (less the end of a character the block before
    /// checks), a character cut by the block's end, and the end of its last line.
    check: (u64, u64),
    /// The block's last line runs on too far to be counted: it is only counted as long.
    long_tail: bool,
}

impl BlockLines {
    /// Finds the lines and bytes of block `[start, end)` of a file of `len` bytes, from
    /// `map`, which holds its bytes from `from` (at most 3 before `start`). `None` when the
    /// map ends before it is known whether the last line is too long (the caller maps more).
    fn find(
        map: &[u8],
        from: u64,
        start: u64,
        end: u64,
        len: u64,
        max_line_bytes: usize,
    ) -> Option<BlockLines> {
        let at = |byte: u64| (byte - from) as usize;
        let map_end = from + map.len() as u64;
        // The first line starting in the block: the file's first, or the one after the first
        // `\n` from the byte before the block on.
        let first = if start == 0 {
            start
        } else {
            memchr::memchr(b'\n', &map[at(start - 1)..at(end)]).map_or(end, |p| start + p as u64)
        };
        let mut long_tail = false;
        let last_end = if first == end || end == len || map[at(end - 1)] == b'\n' {
            end.max(first)
        } else if let Some(p) = memchr::memchr(b'\n', &map[at(end)..]) {
            end + p as u64 + 1
        } else if map_end == len {
            len
        } else {
            // No `\n` in reach: the last line is too long if it holds more than
            // `max_line_bytes` before its trailing `\r`s (which are not counted); when the
            // map ends before that can be seen, the caller maps more.
            let last_start = memchr::memrchr(b'\n', &map[at(first)..at(end)])
                .map_or(first, |p| first + p as u64 + 1);
            let limit = at(last_start).saturating_add(max_line_bytes);
            if limit >= map.len() || !map[limit..].iter().any(|&b| b != b'\r') {
                return None;
            }
            long_tail = true;
            last_start
        };
        // (After a `\n`, `first` starts a character, unless the text is bad there: the block
        // before, which checks that character, then fails.)
        let check_start = if first < end {
            first.min(char_end(map, from, start))
        } else {
            char_end(map, from, start)
        };
        let check_end = last_end.max(char_end(map, from, end)).min(map_end);
        Some(BlockLines {
            count: (first, last_end),
            check: (check_start, check_end),
            long_tail,
        })
    }
}

/// The file byte where the character holding file byte `byte` ends, when it starts before
/// `byte` (judged by its lead byte, up to 3 bytes back in `map`, which starts at file byte
/// `from`); else `byte`. The result is not past the map's end.
fn char_end(map: &[u8], from: u64, byte: u64) -> u64 {
    for back in 1..=3u64 {
        if byte < from + back {
            break;
        }
        let b = map[(byte - back - from) as usize];
        if b & 0xC0 == 0x80 {
            continue;
        }
        let len = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return (byte - back + len).max(byte).min(from + map.len() as u64);
    }
    byte
}

/// The error for a byte that is not UTF-8, naming its line when the file can be read again.
fn not_utf8(path: &Path, at: u64) -> anyhow::Error {
    match line_of_byte(path, at) {
        Ok(line) => anyhow::anyhow!(
            "{}: line {line} (byte {at}) is not valid UTF-8; convert the file first",
            path.display()
        ),
        Err(_) => anyhow::anyhow!(
            "{}: byte {at} is not valid UTF-8; convert the file first",
            path.display()
        ),
    }
}

/// Words of at most this many bytes go through [`HotWords`].
const HOT_WORD_BYTES: usize = 15;

/// A cache of the counts of recently seen short words: 16 K sets of two slots, a set one
/// cache line (1 MB: it stays in the core's L2 cache). Most words of a text are a few
/// thousand frequent ones: they are counted here, and a word pushed out of its set adds its
/// count to the word table, so the big table is touched once per miss instead of once per
/// word. In a set the word seen last is first; a new word pushes out the second.
struct HotWords {
    sets: Vec<HotSet>,
}

/// Two [`HotSlot`]s in one cache line.
#[derive(Clone, Copy, Default)]
#[repr(align(64))]
struct HotSet([HotSlot; 2]);

/// One slot of [`HotWords`]; empty when `key` is 0 (no word has length 0).
#[derive(Clone, Copy, Default)]
struct HotSlot {
    /// The word as one number (see [`ShortKey`]).
    key: u128,
    hash: u64,
    count: u64,
}

// Two slots a cache line.
const _: () = assert!(std::mem::size_of::<HotSet>() == 64);

impl HotWords {
    const SETS: usize = 1 << 14;

    fn new() -> Self {
        HotWords {
            sets: vec![HotSet::default(); Self::SETS],
        }
    }

    /// The set of the word hashed `h`.
    #[inline(always)]
    fn set_of(h: u64) -> usize {
        (h >> 17) as usize & (Self::SETS - 1)
    }
}

/// A word of at most [`HOT_WORD_BYTES`] bytes as one `u128`: its bytes from the lowest byte
/// up, zeros after them, its length in the top byte. Two words are equal when their keys
/// are, so a hot slot is checked with one comparison, and the key is read from the text
/// with one load when 16 bytes of text follow the word's start.
struct ShortKey;

impl ShortKey {
    /// The bytes `text[at..at + len]` (`len` at most 15) in the low bytes, without the
    /// length.
    #[inline(always)]
    fn bytes_at(text: &[u8], at: usize, len: usize) -> u128 {
        debug_assert!(len <= HOT_WORD_BYTES);
        let raw = match text
            .get(at..at + 16)
            .and_then(|b| <&[u8; 16]>::try_from(b).ok())
        {
            Some(b) => u128::from_le_bytes(*b),
            None => {
                let mut b = [0u8; 16];
                b[..len].copy_from_slice(&text[at..at + len]);
                u128::from_le_bytes(b)
            }
        };
        raw & ((1u128 << (8 * len)) - 1)
    }

    /// The key of a word whose bytes (from [`Self::bytes_at`]) are `bytes`, `len` of them.
    #[inline(always)]
    fn with_len(bytes: u128, len: usize) -> u128 {
        bytes | ((len as u128) << 120)
    }

    /// The word's bytes back from its key.
    fn word(key: u128) -> ([u8; 16], usize) {
        (key.to_le_bytes(), (key >> 120) as usize)
    }

    /// The hash of a key: two folded 64 x 64 -> 128 bit multiplications. (Long words get
    /// `FxBuildHasher`'s: a word's length decides which, so each word has one hash.)
    #[inline(always)]
    fn hash(key: u128) -> u64 {
        fn fold(a: u64, b: u64) -> u64 {
            let m = (a as u128).wrapping_mul(b as u128);
            (m as u64) ^ ((m >> 64) as u64)
        }
        let (lo, hi) = (key as u64, (key >> 64) as u64);
        fold(
            fold(lo ^ 0x243F_6A88_85A3_08D3, hi ^ 0x1319_8A2E_0370_7344),
            0xA409_3822_299F_31D0,
        )
    }
}

/// Short words wait for their hot slot in groups of this many.
const QUEUED: usize = 16;

/// Words pushed out of [`HotWords`] wait in groups of this many: the table slots of the
/// whole group are fetched from memory together, then the words are added.
const PENDING: usize = 16;

/// One counting thread's state: the words of its batches, one table per hash shard.
struct ShardCounter {
    hot: HotWords,
    /// Short words (key, hash, weight) waiting for their hot slot.
    queue: Vec<(u128, u64, u64)>,
    /// Words pushed out of their hot slot, not yet in their table.
    pending: Vec<HotSlot>,
    words: Vec<WordTable>,
    /// The first error (the table is full); later words are not counted.
    error: Option<anyhow::Error>,
    lines: u64,
    bytes: u64,
    long_lines: u64,
    /// Bad JSONL records of this thread's batches.
    skipped: SkippedRecords,
}

impl ShardCounter {
    fn new(shards: usize) -> Self {
        let words = (0..shards.max(1))
            .map(|_| {
                // Room for two million words over all threads' tables up front (32 MB in
                // all, however many threads): the first growths are the costly part of
                // filling a table.
                WordTable::with_capacity((1 << 21) / (shards * shards).max(1))
            })
            .collect();
        ShardCounter {
            hot: HotWords::new(),
            queue: Vec::with_capacity(QUEUED),
            pending: Vec::with_capacity(PENDING),
            words,
            error: None,
            lines: 0,
            bytes: 0,
            long_lines: 0,
            skipped: SkippedRecords::default(),
        }
    }

    /// Counts `word` `weight` times. A word of up to [`HOT_WORD_BYTES`] bytes is hashed as a
    /// [`ShortKey`], a longer one with `FxBuildHasher`: its length decides, so every word
    /// has one hash, which picks its table shard and slot.
    fn add_word(&mut self, word: &str, weight: u64) {
        self.add_word_at(word.as_bytes(), 0, word.len(), weight);
    }

    /// Counts the word `text[at..at + len]`, which is cut at characters.
    #[inline(always)]
    fn add_word_at(&mut self, text: &[u8], at: usize, len: usize, weight: u64) {
        if len > HOT_WORD_BYTES {
            let bytes = &text[at..at + len];
            self.add_to_table(bytes, FxBuildHasher.hash_one(bytes), weight);
        } else {
            let key = ShortKey::bytes_at(text, at, len);
            self.add_short(ShortKey::with_len(key, len), weight);
        }
    }

    /// Queues the short word `key` for its hot slot, which is asked for now: the words of
    /// a queue are counted together (see [`QUEUED`]), so their slot loads overlap.
    #[inline(always)]
    fn add_short(&mut self, key: u128, weight: u64) {
        let h = ShortKey::hash(key);
        prefetch(&self.hot.sets[HotWords::set_of(h)]);
        self.queue.push((key, h, weight));
        if self.queue.len() == QUEUED {
            self.count_queued();
        }
    }

    /// Counts the queued short words in their hot slots.
    fn count_queued(&mut self) {
        let mut queue = std::mem::take(&mut self.queue);
        for &(key, h, weight) in &queue {
            self.count_short(key, h, weight);
        }
        queue.clear();
        self.queue = queue;
    }

    /// Counts the short word `key`, hashed `h`, in its hot set; the word it pushes out
    /// goes to the pending group.
    #[inline(always)]
    fn count_short(&mut self, key: u128, h: u64, weight: u64) {
        let set = &mut self.hot.sets[HotWords::set_of(h)].0;
        if set[0].key == key {
            set[0].count = set[0].count.saturating_add(weight);
            return;
        }
        if set[1].key == key {
            set[1].count = set[1].count.saturating_add(weight);
            set.swap(0, 1);
            return;
        }
        let first = set[0];
        let old = std::mem::replace(&mut set[1], first);
        set[0] = HotSlot {
            key,
            hash: h,
            count: weight,
        };
        if old.key != 0 {
            self.pending.push(old);
            if self.pending.len() == PENDING {
                self.add_pending();
            }
        }
    }

    /// Adds the pending words to their tables: first asks for all their slots, then for the
    /// records those slots point to, then adds them, so the memory loads of the group overlap
    /// instead of each word waiting for its own.
    fn add_pending(&mut self) {
        let shards = self.words.len();
        let table = |h: u64| ((h >> 32) as usize) % shards;
        for p in &self.pending {
            self.words[table(p.hash)].prefetch(p.hash, false);
        }
        for p in &self.pending {
            self.words[table(p.hash)].prefetch(p.hash, true);
        }
        let mut pending = std::mem::take(&mut self.pending);
        for p in &pending {
            let (bytes, len) = ShortKey::word(p.key);
            self.add_to_table(&bytes[..len], p.hash, p.count);
        }
        pending.clear();
        self.pending = pending;
    }

    /// Adds `count` to the word table entry of `word`, whose hash is `h`.
    fn add_to_table(&mut self, word: &[u8], h: u64, count: u64) {
        // The high half picks the shard; the table's buckets come from the low bits.
        let shard = ((h >> 32) as usize) % self.words.len();
        if self.error.is_none() {
            if let Err(e) = self.words[shard].add(word, h, count) {
                self.error = Some(e);
            }
        }
    }

    /// Moves the counts still pending or in the hot slots to the tables (the hot slots are
    /// left empty, ready for more words).
    fn flush_hot(&mut self) {
        self.count_queued();
        self.add_pending();
        for i in 0..self.hot.sets.len() {
            for slot in std::mem::take(&mut self.hot.sets[i]).0 {
                if slot.key != 0 {
                    let (bytes, len) = ShortKey::word(slot.key);
                    self.add_to_table(&bytes[..len], slot.hash, slot.count);
                }
            }
        }
    }
}

/// Counts the words of `\n`-separated lines.
fn count_batch(
    batch: &str,
    weight: u64,
    max_line_bytes: usize,
    norm: &mut String,
    counts: &mut ShardCounter,
) {
    let text = batch.as_bytes();
    let mut first = String::new();
    for line in batch.split('\n') {
        let line = text::line_content(line);
        if line.is_empty() {
            continue;
        }
        if line.len() > max_line_bytes {
            counts.long_lines += 1;
            continue;
        }
        counts.lines += 1;
        counts.bytes += line.len() as u64;
        if line.contains(WS) {
            count_line_with_markers(line, weight, norm, &mut first, counts);
            continue;
        }
        // Where the line starts in the batch (words are read from the batch, which may go on
        // past the word: see `ShortKey`).
        let off = line.as_ptr() as usize - batch.as_ptr() as usize;
        // A word is a run of spaces plus the characters up to the next space; the first word
        // gets the dummy-prefix space. Keys keep ' ' for `▁`.
        let bytes = line.as_bytes();
        let first_end = memchr::memchr_iter(b' ', bytes)
            .find(|&p| p > 0 && bytes[p - 1] != b' ')
            .unwrap_or(bytes.len());
        if first_end < HOT_WORD_BYTES {
            let key = (ShortKey::bytes_at(text, off, first_end) << 8) | b' ' as u128;
            counts.add_short(ShortKey::with_len(key, first_end + 1), weight);
        } else {
            first.clear();
            first.push(' ');
            first.push_str(&line[..first_end]);
            counts.add_word(&first, weight);
        }
        let mut start = first_end;
        if start == bytes.len() {
            continue;
        }
        let base = start + 1;
        for p in memchr::memchr_iter(b' ', &bytes[base..]) {
            let p = base + p;
            if bytes[p - 1] == b' ' {
                continue;
            }
            counts.add_word_at(text, off + start, p - start, weight);
            start = p;
        }
        counts.add_word_at(text, off + start, bytes.len() - start, weight);
    }
}

/// The slow path for a line holding literal `▁` characters, which also separate words.
fn count_line_with_markers(
    line: &str,
    weight: u64,
    norm: &mut String,
    key: &mut String,
    counts: &mut ShardCounter,
) {
    norm.clear();
    norm.push(WS);
    for c in line.chars() {
        norm.push(if c == ' ' { WS } else { c });
    }
    for word in Chunker::new(norm) {
        key.clear();
        key.extend(word.chars().map(|c| if c == WS { ' ' } else { c }));
        counts.add_word(key, weight);
    }
}

/// Reads the sources in order and hands batches to `sink`: when a source has no byte budget,
/// whole JSONL records (the counting threads parse them) or whole lines of a text file, read
/// in blocks; else (and for WARC, WET and MediaWiki XML, read by their pipeline readers) the
/// lines of its texts up to the budget, joined by `\n`.
/// Records the readers set aside on this thread go to `skipped` (those of WARC, WET and XML
/// files are logged by [`for_each_training_document`] and only counted).
fn read_sources(
    sources: &[SourceConfig],
    recycled: &Receiver<Vec<u8>>,
    skipped: &mut SkippedRecords,
    mut sink: impl FnMut(Batch) -> Result<()>,
) -> Result<()> {
    for source in sources {
        if source.weight == 0 {
            continue;
        }
        let files =
            training_files(&source.paths).with_context(|| format!("source `{}`", source.name))?;
        let budget = if source.max_bytes == 0 {
            u64::MAX
        } else {
            source.max_bytes
        };
        let mut taken = 0u64;
        let mut batch = String::with_capacity(BATCH_BYTES + 4096);
        let weight = source.weight;
        'files: for file in &files {
            let reader = reader_for(file);
            let own_format = reader == "jsonl" || reader == "books";
            if source.max_bytes == 0 && own_format {
                if is_jsonl(file) {
                    read_records(file, weight, recycled, skipped, &mut sink)?;
                } else if let Some(text) = MappedText::open(file)? {
                    let text = Arc::new(text);
                    for block in 0..text.blocks() {
                        sink(Batch::Mapped {
                            text: text.clone(),
                            block,
                            weight,
                        })?;
                    }
                } else {
                    read_text(file, weight, recycled, skipped, &mut sink)?;
                }
                continue;
            }
            let mut add = |text: &str| -> Result<bool> {
                let take = (budget - taken).min(text.len() as u64) as usize;
                let mut cut = take;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                batch.push_str(&text[..cut]);
                batch.push('\n');
                taken += cut as u64;
                if batch.len() >= BATCH_BYTES {
                    // (An empty buffer is valid UTF-8.)
                    let spare = String::from_utf8(spare_buffer(recycled)).unwrap_or_default();
                    let text = std::mem::replace(&mut batch, spare);
                    sink(Batch::Text { text, weight })?;
                    batch.reserve(BATCH_BYTES + 4096);
                }
                Ok(taken < budget)
            };
            let more = if own_format {
                read_file(file, skipped, &mut add)?
            } else {
                read_with_reader(file, reader, skipped, &mut add)?
            };
            if !more {
                break 'files;
            }
        }
        if !batch.is_empty() {
            sink(Batch::Text {
                text: batch,
                weight,
            })?;
        }
    }
    Ok(())
}

/// Hands a JSONL file to `sink` in batches of whole records, unparsed; a line longer than
/// the `jsonl` reader takes ([`MAX_LINE_BYTES`]) is set aside in `skipped` unread, as that
/// reader does.
fn read_records(
    path: &Path,
    weight: u64,
    recycled: &Receiver<Vec<u8>>,
    skipped: &mut SkippedRecords,
    sink: &mut impl FnMut(Batch) -> Result<()>,
) -> Result<()> {
    let shared: Arc<Path> = Arc::from(path);
    let mut lines = 0;
    read_blocks(path, recycled, MAX_LINE_BYTES, |block| match block {
        Block::Lines(bytes, offset) => {
            let before = lines;
            lines += memchr::memchr_iter(b'\n', &bytes).count() as u64;
            sink(Batch::Jsonl {
                bytes,
                weight,
                path: shared.clone(),
                offset,
                lines: before,
            })
        }
        Block::LongLine(offset) => {
            lines += 1;
            let message = format!("line {lines} is longer than {MAX_LINE_BYTES} bytes");
            let error = RecordError::record(offset, "line_too_long", message);
            skipped.add(0, &shared, error);
            Ok(())
        }
    })
}

/// Hands a text file to `sink` in batches of whole lines, checked to be UTF-8 (one check per
/// batch; the line of a bad byte is only looked for when there is one). A line longer than
/// [`MAX_LINE_BYTES`] is counted in `skipped.long_lines` unread.
fn read_text(
    path: &Path,
    weight: u64,
    recycled: &Receiver<Vec<u8>>,
    skipped: &mut SkippedRecords,
    sink: &mut impl FnMut(Batch) -> Result<()>,
) -> Result<()> {
    read_blocks(path, recycled, MAX_LINE_BYTES, |block| match block {
        Block::Lines(bytes, offset) => {
            if let Err(at) = text::utf8(&bytes) {
                return Err(not_utf8(path, offset + at));
            }
            let text = String::from_utf8(bytes).context("text checked to be UTF-8")?;
            sink(Batch::Text { text, weight })
        }
        Block::LongLine(_) => {
            skipped.long_lines += 1;
            Ok(())
        }
    })
}

/// What [`read_blocks`] hands on.
enum Block {
    /// Whole lines, with the file offset of their first byte.
    Lines(Vec<u8>, u64),
    /// A line longer than the limit, starting at this file offset, was passed over unread.
    LongLine(u64),
}

/// The line number (from 1) of byte `at` of a (maybe compressed) file.
fn line_of_byte(path: &Path, at: u64) -> Result<u64> {
    let mut input = open_decompressed(path)?.take(at);
    let mut buf = vec![0u8; 1 << 16];
    let mut line = 1;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            return Ok(line);
        }
        line += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
    }
}

/// Reads a (maybe compressed) file in blocks and hands `emit` batches of about
/// [`BATCH_BYTES`] cut after a `\n` (the last one: whatever is left), with the file offset of
/// each batch's first byte. Batch buffers are taken from `recycled` when there are some. A line
/// longer than `max_line` bytes (at least [`BATCH_BYTES`]) is not held: `emit` is told where
/// it starts, and reading goes on after it.
fn read_blocks(
    path: &Path,
    recycled: &Receiver<Vec<u8>>,
    max_line: usize,
    mut emit: impl FnMut(Block) -> Result<()>,
) -> Result<()> {
    const BLOCK: usize = 1 << 16;
    let mut input = open_decompressed(path)?;
    let mut buf: Vec<u8> = Vec::with_capacity(BATCH_BYTES + BLOCK);
    // File offset of buf[0].
    let mut offset = 0u64;
    // Passing over a long line until its `\n`.
    let mut skipping = false;
    loop {
        let len = buf.len();
        buf.resize(len + BLOCK, 0);
        let n = loop {
            match input.read(&mut buf[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "{}: read error after byte {}",
                            path.display(),
                            offset + len as u64
                        )
                    })
                }
            }
        };
        buf.truncate(len + n);
        let at_end = n == 0;
        if skipping {
            let Some(nl) = memchr::memchr(b'\n', &buf) else {
                offset += buf.len() as u64;
                buf.clear();
                if at_end {
                    return Ok(());
                }
                continue;
            };
            offset += nl as u64 + 1;
            buf.drain(..=nl);
            skipping = false;
        }
        let cut = if at_end {
            buf.len()
        } else if buf.len() >= BATCH_BYTES {
            memchr::memrchr(b'\n', &buf).map_or(0, |nl| nl + 1)
        } else {
            0
        };
        if cut == 0 && !at_end && buf.len() > max_line {
            // No `\n` in a buffer that starts a line (the memrchr above found none).
            emit(Block::LongLine(offset))?;
            skipping = true;
            offset += buf.len() as u64;
            buf.clear();
            continue;
        }
        if cut > 0 {
            let mut rest = spare_buffer(recycled);
            rest.extend_from_slice(&buf[cut..]);
            buf.truncate(cut);
            let bytes = std::mem::replace(&mut buf, rest);
            buf.reserve(BATCH_BYTES + BLOCK);
            emit(Block::Lines(bytes, offset))?;
            offset += cut as u64;
        }
        if at_end {
            return Ok(());
        }
    }
}

/// An empty batch buffer: one the counting threads sent back, else a new one.
fn spare_buffer(recycled: &Receiver<Vec<u8>>) -> Vec<u8> {
    recycled
        .try_recv()
        .unwrap_or_else(|_| Vec::with_capacity(BATCH_BYTES + (1 << 16)))
}

/// True for datamill shards and other JSONL files.
fn is_jsonl(path: &Path) -> bool {
    reader_for(path) == "jsonl"
}

/// Feeds the documents of a file in another format (WARC, WET, MediaWiki XML), read by its
/// pipeline reader, to `add` until it returns false. Returns false when `add` asked to stop.
fn read_with_reader(
    path: &Path,
    reader: &str,
    skipped: &mut SkippedRecords,
    add: &mut impl FnMut(&str) -> Result<bool>,
) -> Result<bool> {
    let mut more = true;
    let read = for_each_training_document(&[path.to_path_buf()], Some(reader), None, &mut |doc| {
        more = add(&doc.text)?;
        Ok(more)
    })?;
    skipped.count += read.bad_records;
    Ok(more)
}

/// Feeds one file's texts (JSONL documents or lines of text) to `add` until it returns false;
/// bad JSONL records go to `skipped`. Returns false when `add` asked to stop.
fn read_file(
    path: &Path,
    skipped: &mut SkippedRecords,
    add: &mut impl FnMut(&str) -> Result<bool>,
) -> Result<bool> {
    if is_jsonl(path) {
        return read_jsonl_texts(path, skipped, add);
    }
    let mut input = BufReader::with_capacity(1 << 16, open_decompressed(path)?);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut offset = 0u64;
    loop {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("{}: read error after byte {offset}", path.display()))?;
        if n == 0 {
            return Ok(true);
        }
        line_no += 1;
        let at = offset;
        offset += n as u64;
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let text = text::utf8(line).map_err(|e| {
            anyhow::anyhow!(
                "{}: line {line_no} (byte {}) is not valid UTF-8; convert the file first",
                path.display(),
                at + e
            )
        })?;
        if !add(text::line_content(text))? {
            return Ok(false);
        }
    }
}

/// Feeds the texts of a JSONL file, read by the `jsonl` reader's [`JsonlReader`] with its
/// text-only parse, to `add` until it returns false; bad records go to `skipped`, an input
/// that cannot be read further is an error naming the file and byte. Returns false when
/// `add` asked to stop.
fn read_jsonl_texts(
    path: &Path,
    skipped: &mut SkippedRecords,
    add: &mut impl FnMut(&str) -> Result<bool>,
) -> Result<bool> {
    let shared: Arc<Path> = Arc::from(path);
    let mut reader = JsonlReader::open(path)?;
    while let Some((_, text)) = reader.next_text() {
        match text {
            Ok(text) => {
                if !add(&text)? {
                    return Ok(false);
                }
            }
            Err(e) if e.fatal => bail!("{}: byte {}: {}", path.display(), e.offset, e.message),
            Err(e) => skipped.add(0, &shared, e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_table_counts_every_word_through_growth_in_first_seen_order() {
        let mut table = WordTable::default();
        let mut expected: Vec<(String, u64)> = Vec::new();
        // Enough distinct words for several table and arena growths, lengths 1..=40.
        for round in 0..3u64 {
            for i in 0..20_000u64 {
                let word: String = format!("{i:x}-").repeat(1 + (i % 10) as usize);
                let h = FxBuildHasher.hash_one(word.as_bytes());
                table.add(word.as_bytes(), h, round + 1).expect("add");
                if round == 0 {
                    expected.push((word, 0));
                }
                expected[i as usize].1 += round + 1;
            }
        }
        assert_eq!(table.len(), expected.len());
        let got: Vec<(String, u64)> = table.iter().map(|(w, c)| (w.to_string(), c)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn hot_slots_and_pending_words_lose_no_count() {
        // 100,000 distinct words (far more than the hot slots: many are pushed out and come
        // back), some longer than a hot slot holds, seen a Zipf-like number of times.
        let mut counter = ShardCounter::new(3);
        let mut expected: std::collections::HashMap<String, u64> = Default::default();
        for round in 0..4u64 {
            for i in 0..100_000u64 {
                if i % (round + 1) != 0 {
                    continue;
                }
                let word = if i % 7 == 0 {
                    format!(" long-word-number-{i}")
                } else {
                    format!(" w{i}")
                };
                let weight = 1 + i % 3;
                counter.add_word(&word, weight);
                *expected.entry(word).or_insert(0) += weight;
            }
        }
        counter.flush_hot();
        assert!(counter.error.is_none());
        let mut got: std::collections::HashMap<String, u64> = Default::default();
        for table in &counter.words {
            for (word, count) in table.iter() {
                *got.entry(word.to_string()).or_insert(0) += count;
            }
        }
        assert_eq!(got, expected);
        // A word is in the table of its hash shard only.
        let distinct: usize = counter.words.iter().map(|t| t.len()).sum();
        assert_eq!(distinct, expected.len());
    }

    #[test]
    fn words_sharing_a_hash_stay_apart_and_an_empty_table_takes_prefetches() {
        let mut table = WordTable::default();
        table.prefetch(7, false);
        table.prefetch(7, true);
        // The same hash (so the same tag and home slot) for three different words.
        for (word, count) in [(&b"a"[..], 1), (b"b", 2), (b"a", 3), (b"ccc", 4), (b"b", 5)] {
            table.add(word, 7, count).expect("add");
        }
        table.prefetch(7, true);
        let got: Vec<(String, u64)> = table.iter().map(|(w, c)| (w.to_string(), c)).collect();
        assert_eq!(
            got,
            [
                ("a".to_string(), 4),
                ("b".to_string(), 7),
                ("ccc".to_string(), 4)
            ]
        );
    }
    /// Counts `text` as a file mapped in blocks of `block` bytes, block after block, as the
    /// counting threads do; the first error stops it.
    fn count_mapped(
        text: &[u8],
        block: u64,
        max_line_bytes: usize,
    ) -> Result<(std::collections::BTreeMap<String, u64>, u64, u64, u64)> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lines.txt");
        std::fs::write(&path, text).expect("write");
        let mut mapped = MappedText::open(&path)
            .expect("open")
            .expect("a plain file");
        mapped.block = block;
        let mut counter = ShardCounter::new(2);
        let mut norm = String::new();
        for b in 0..mapped.blocks() {
            mapped.count_block(b, 1, max_line_bytes, &mut norm, &mut counter)?;
        }
        Ok(totals(counter))
    }

    /// What counting `text` as one batch gives (see [`totals`]).
    fn count_whole(
        text: &str,
        max_line_bytes: usize,
    ) -> (std::collections::BTreeMap<String, u64>, u64, u64, u64) {
        let mut whole = ShardCounter::new(2);
        count_batch(text, 1, max_line_bytes, &mut String::new(), &mut whole);
        totals(whole)
    }

    /// Words with their counts, lines, bytes and long lines of a counter.
    fn totals(
        mut counter: ShardCounter,
    ) -> (std::collections::BTreeMap<String, u64>, u64, u64, u64) {
        counter.flush_hot();
        let mut words = std::collections::BTreeMap::new();
        for table in &counter.words {
            for (word, count) in table.iter() {
                *words.entry(word.to_string()).or_insert(0) += count;
            }
        }
        (words, counter.lines, counter.bytes, counter.long_lines)
    }

    #[test]
    fn mapped_blocks_count_what_one_batch_counts_wherever_the_blocks_end() {
        // Characters of 1 to 4 bytes, CRLF and empty lines, runs of spaces, lines just under
        // and over the limit (one over it for many blocks), a short line padded with more
        // `\r`s than the first map reaches, no final newline.
        let max_line_bytes = 24;
        let mut text = String::new();
        text.push_str("Grüße aus Köln  und 東京 🙂🙂 x\r\n\n  indented line\n");
        text.push_str("exactly twenty-four byte");
        text.push('\n');
        text.push_str("twenty-five bytes is long\n");
        text.push_str(&"a very long line ".repeat(400));
        text.push_str("\nshort\n");
        text.push_str("cr");
        text.push_str(&"\r".repeat(5000));
        text.push_str("\nlast 𝄞 line without newline é");
        let expected = count_whole(&text, max_line_bytes);
        // The first line, the 25-byte one, the very long one and the last one.
        assert_eq!(expected.3, 4, "lines over the limit");
        for block in (1..=40).chain([63, 64, 100, 4097, 7000, 1 << 20]) {
            let got = count_mapped(text.as_bytes(), block, max_line_bytes).expect("count");
            assert_eq!(got, expected, "blocks of {block} bytes");
        }
    }

    #[test]
    fn a_bad_byte_is_found_at_its_offset_wherever_the_blocks_end() {
        let good = "ab\ncé€\n𝄞z\n".as_bytes();
        // A stray continuation byte, a character cut short before ASCII, one cut short at
        // the end, a byte that never starts one, a character cut by a newline.
        // With a limit of 8 bytes a line: a bad byte inside a line too long to count that
        // spans many blocks, and one after more `\r`s than the first map reaches.
        let long = "é long line ".repeat(30);
        let crs = "\r".repeat(5000);
        let cases: Vec<Vec<u8>> = vec![
            [good, b"\x80rest\n"].concat(),
            [good, b"x\xE2\x82y\n"].concat(),
            [good, b"tail\xF0\x9D"].concat(),
            [b"\xFF".as_slice(), good].concat(),
            [good, b"\xE2\n\x82\xAC\n", good].concat(),
            [
                good,
                long.as_bytes(),
                b"\xC3(",
                long.as_bytes(),
                b"\n",
                good,
            ]
            .concat(),
            [good, b"cr", crs.as_bytes(), b"\xE9\n", good].concat(),
        ];
        for bad in &cases {
            let at = std::str::from_utf8(bad).expect_err("bad").valid_up_to();
            for max_line_bytes in [1000, 8] {
                for block in (1..=20).chain([333, 4099]) {
                    let err = count_mapped(bad, block, max_line_bytes).expect_err("not UTF-8");
                    let msg = format!("{err:#}");
                    assert!(
                        msg.contains(&format!("(byte {at})")) && msg.contains("not valid UTF-8"),
                        "blocks of {block}, limit {max_line_bytes}, {bad:?}: {msg}"
                    );
                }
            }
        }
    }
    #[test]
    fn a_batch_counts_the_words_a_plain_split_gives() {
        // Words around the hot-slot limit (first words with the dummy prefix too), runs of
        // spaces, multi-byte characters, and lines at the batch's end (whose keys cannot be
        // read 16 bytes at a time).
        let mut lines: Vec<String> = Vec::new();
        for n in 10..=18 {
            let w = "x".repeat(n);
            lines.push(format!("{w} {w}  {w}   é{w}"));
            lines.push(format!("  {w} ü{}", "y".repeat(n - 3)));
        }
        lines.push("a b  c   d".into());
        lines.push("trailing spaces   ".into());
        lines.push("∑ 東京 🙂".into());
        let mut expected: std::collections::BTreeMap<String, u64> = Default::default();
        for line in &lines {
            let mut word = String::from(" ");
            let mut prev_space = false;
            for (i, c) in line.char_indices() {
                if c == ' ' && i > 0 && !prev_space {
                    *expected.entry(std::mem::take(&mut word)).or_insert(0) += 1;
                }
                word.push(c);
                prev_space = c == ' ';
            }
            *expected.entry(word).or_insert(0) += 1;
        }
        for end in 0..lines.len() {
            // Every line once, the batch ending after line `end`.
            let mut counter = ShardCounter::new(2);
            let head = lines[..=end].join("\n");
            let tail = lines[end + 1..].join("\n");
            count_batch(&head, 1, 1000, &mut String::new(), &mut counter);
            count_batch(&tail, 1, 1000, &mut String::new(), &mut counter);
            let (words, lines_counted, _, _) = totals(counter);
            assert_eq!(words, expected, "batch ending after line {end}");
            assert_eq!(lines_counted, lines.len() as u64);
        }
    }
    #[test]
    fn a_line_over_the_limit_is_passed_over_unheld_and_its_place_told() {
        // Short lines around two lines of 3 MB (over a 2 MB limit), one at the end of the
        // file without a `\n`, and one of 1.5 MB (under it).
        let long = "x".repeat(3 << 20);
        let under = "y".repeat(3 << 19);
        let text = format!("a\n{long}\nb\n{under}\nc\n{long}");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lines.txt.zst");
        std::fs::write(&path, zstd::encode_all(text.as_bytes(), 1).expect("zstd")).expect("write");
        let (_, recycled) = sync_channel(1);
        let mut kept = Vec::new();
        let mut long_at = Vec::new();
        read_blocks(&path, &recycled, 2 << 20, |block| {
            match block {
                Block::Lines(bytes, offset) => {
                    assert_eq!(
                        &text.as_bytes()[offset as usize..][..bytes.len()],
                        &bytes[..]
                    );
                    kept.extend(bytes);
                }
                Block::LongLine(offset) => long_at.push(offset),
            }
            Ok(())
        })
        .expect("read");
        let second = 2 + long.len() as u64 + 1 + 2 + under.len() as u64 + 1 + 2;
        assert_eq!(long_at, [2, second]);
        assert_eq!(kept, format!("a\nb\n{under}\nc\n").into_bytes());
    }

    #[test]
    fn a_line_past_the_first_map_is_counted_when_the_limit_allows_it() {
        // With a 2 MB limit the first map reaches 1 MB past a block: a 1.5 MB line must be
        // counted (the map widened), a 2.5 MB one only counted as long.
        let max_line_bytes = 2 << 20;
        let mut text = String::from("first line\n");
        text.push_str(&"ab cd ".repeat(250_000));
        text.push_str("\nmiddle\n");
        text.push_str(&"ef gh ".repeat(420_000));
        text.push_str("\nlast line\n");
        let expected = count_whole(&text, max_line_bytes);
        assert_eq!(
            (expected.1, expected.3),
            (4, 1),
            "four lines counted, one long"
        );
        for block in [4096, 1 << 20] {
            let got = count_mapped(text.as_bytes(), block, max_line_bytes).expect("count");
            assert_eq!(got, expected, "blocks of {block} bytes");
        }
    }
}

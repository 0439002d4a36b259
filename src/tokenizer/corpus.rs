//! Streams the training text (datamill shards or plain text files) and counts its words in
//! parallel: each line gets sentencepiece's dummy `▁` prefix and `▁` for spaces, and is cut
//! into words the way the trainer does (a run of `▁` plus the characters up to the next `▁`).

use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use serde::Deserialize;

use super::encode::Chunker;
use super::model::WS;
use crate::doc::open_decompressed;
use crate::run::runner::expand_inputs;

/// One weighted part of the training corpus.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Name shown in the report.
    #[serde(default)]
    pub name: String,
    /// Files, folders (recursive) or globs: `*.jsonl[.gz|.zst]` are datamill shards (their
    /// `text`), anything else is read as UTF-8 text (`.gz`, `.zst`, `.bz2` decompressed).
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
/// no allocation of its own and a pass over all words reads memory in order.
#[derive(Default)]
pub struct WordTable {
    arena: Vec<u8>,
    /// Record offsets divided by 8.
    index: HashTable<u32>,
}

/// Bytes before a record's text: count and length.
const RECORD_HEAD: usize = 12;

impl WordTable {
    /// Distinct words.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no word was added.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
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

    /// Adds `weight` to the count of `word`, whose `FxBuildHasher` hash is `h`.
    fn add(&mut self, word: &str, h: u64, weight: u64) -> Result<()> {
        let WordTable { arena, index } = self;
        let word = word.as_bytes();
        if let Some(&slot) = index.find(h, |&slot| Self::word_at(arena, slot as usize * 8) == word)
        {
            let at = slot as usize * 8;
            let count = Self::count_at(arena, at);
            arena[at..at + 8].copy_from_slice(&(count + weight).to_le_bytes());
            return Ok(());
        }
        let at = arena.len();
        let Ok(slot) = u32::try_from(at / 8) else {
            bail!("more than 32 GB of distinct words in one counting shard: lower max_bytes");
        };
        arena.extend_from_slice(&weight.to_le_bytes());
        arena.extend_from_slice(&(word.len() as u32).to_le_bytes());
        arena.extend_from_slice(word);
        arena.resize(arena.len().next_multiple_of(8), 0);
        index.insert_unique(h, slot, |&s| {
            FxBuildHasher.hash_one(Self::word_at(arena, s as usize * 8))
        });
        Ok(())
    }

    /// Every word with its count, in the order first seen.
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
            // Only `&str` words are ever stored.
            let word = std::str::from_utf8(word).expect("stored words are UTF-8");
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
    /// Whole JSONL records of `path` starting at byte `offset`, whose `text` fields are
    /// counted `weight` times each.
    Jsonl {
        bytes: Vec<u8>,
        weight: u64,
        path: Arc<Path>,
        offset: u64,
    },
}

/// Reads every source and counts its words on `threads` threads. The reading thread only
/// decompresses and cuts the input into batches of whole records, handed out in turn (so the
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
        let (tx, rx) = sync_channel::<Batch>(2);
        senders.push(tx);
        receivers.push(rx);
    }
    std::thread::scope(|scope| -> Result<WordCounts> {
        let handles: Vec<_> = receivers
            .into_iter()
            .map(|rx| {
                scope.spawn(move || -> Result<ShardCounter> {
                    let mut counter = ShardCounter::new(workers);
                    let mut norm = String::new();
                    while let Ok(batch) = rx.recv() {
                        match batch {
                            Batch::Text { text, weight } => {
                                count_batch(&text, weight, max_line_bytes, &mut norm, &mut counter)
                            }
                            Batch::Jsonl {
                                bytes,
                                weight,
                                path,
                                offset,
                            } => {
                                let mut at = offset;
                                for line in bytes.split(|&b| b == b'\n') {
                                    let record = trim_eol(line);
                                    if !record.iter().all(u8::is_ascii_whitespace) {
                                        let rec: TextRecord = serde_json::from_slice(record)
                                            .with_context(|| {
                                                format!(
                                                    "{}: the record at byte {at} is not a JSON \
                                                     object with a `text` string",
                                                    path.display()
                                                )
                                            })?;
                                        count_batch(
                                            &rec.text,
                                            weight,
                                            max_line_bytes,
                                            &mut norm,
                                            &mut counter,
                                        );
                                    }
                                    at += line.len() as u64 + 1;
                                }
                            }
                        }
                        counter.error.take().map_or(Ok(()), Err)?;
                    }
                    for table in &mut counter.words {
                        table.arena.shrink_to_fit();
                    }
                    Ok(counter)
                })
            })
            .collect();
        let mut next = 0usize;
        let read = read_sources(sources, |batch| {
            let tx = &senders[next % senders.len()];
            next += 1;
            tx.send(batch).context("a counting thread stopped")
        });
        drop(senders);
        let mut total = WordCounts {
            shards: workers,
            ..Default::default()
        };
        let mut failure = None;
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
                }
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        // A counting thread's error (bad record) explains a failed send; report it first.
        if let Some(e) = failure {
            return Err(e);
        }
        read?;
        Ok(total)
    })
}

/// One counting thread's state: the words of its batches, one table per hash shard.
struct ShardCounter {
    words: Vec<WordTable>,
    /// The first error (the table is full); later words are not counted.
    error: Option<anyhow::Error>,
    lines: u64,
    bytes: u64,
    long_lines: u64,
}

impl ShardCounter {
    fn new(shards: usize) -> Self {
        let words = (0..shards.max(1))
            .map(|_| {
                let mut table = WordTable::default();
                // Room for a million words up front (5 MB): the first growths are the costly
                // part of filling a table.
                table.index.reserve((1 << 20) / shards.max(1), |_| 0);
                table
            })
            .collect();
        ShardCounter {
            words,
            error: None,
            lines: 0,
            bytes: 0,
            long_lines: 0,
        }
    }

    #[inline]
    fn add_word(&mut self, word: &str, weight: u64) {
        let h = FxBuildHasher.hash_one(word.as_bytes());
        // The high half picks the shard; the table's buckets come from the low bits.
        let shard = ((h >> 32) as usize) % self.words.len();
        if self.error.is_none() {
            if let Err(e) = self.words[shard].add(word, h, weight) {
                self.error = Some(e);
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
    let mut first = String::new();
    for line in batch.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
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
        // A word is a run of spaces plus the characters up to the next space; the first word
        // gets the dummy-prefix space. Keys keep ' ' for `▁`.
        let bytes = line.as_bytes();
        let mut start = 0;
        let mut first_word = true;
        for p in memchr::memchr_iter(b' ', bytes) {
            if p == 0 || bytes[p - 1] == b' ' {
                continue;
            }
            if first_word {
                first.clear();
                first.push(' ');
                first.push_str(&line[..p]);
                counts.add_word(&first, weight);
                first_word = false;
            } else {
                counts.add_word(&line[start..p], weight);
            }
            start = p;
        }
        if first_word {
            first.clear();
            first.push(' ');
            first.push_str(line);
            counts.add_word(&first, weight);
        } else {
            counts.add_word(&line[start..], weight);
        }
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

/// Reads the sources in order and hands batches to `sink`: whole JSONL records when a source
/// has no byte budget (the counting threads parse them), else lines of text joined by `\n`.
fn read_sources(sources: &[SourceConfig], mut sink: impl FnMut(Batch) -> Result<()>) -> Result<()> {
    for source in sources {
        if source.weight == 0 {
            continue;
        }
        let files = expand_inputs(&source.paths)?;
        if files.is_empty() {
            bail!(
                "source `{}`: no input file in {:?}",
                source.name,
                source.paths
            );
        }
        let budget = if source.max_bytes == 0 {
            u64::MAX
        } else {
            source.max_bytes
        };
        let mut taken = 0u64;
        let mut batch = String::with_capacity(BATCH_BYTES + 4096);
        let weight = source.weight;
        'files: for file in &files {
            if source.max_bytes == 0 && is_jsonl(file) {
                read_records(file, weight, &mut sink)?;
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
                    let text = std::mem::take(&mut batch);
                    sink(Batch::Text { text, weight })?;
                    batch.reserve(BATCH_BYTES + 4096);
                }
                Ok(taken < budget)
            };
            if !read_file(file, &mut add)? {
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

/// Hands a JSONL file to `sink` in batches of whole records, unparsed.
fn read_records(
    path: &Path,
    weight: u64,
    sink: &mut impl FnMut(Batch) -> Result<()>,
) -> Result<()> {
    const BLOCK: usize = 1 << 16;
    let shared: Arc<Path> = Arc::from(path);
    let mut input = open_decompressed(path)?;
    let mut buf: Vec<u8> = Vec::with_capacity(BATCH_BYTES + BLOCK);
    // File offset of buf[0].
    let mut offset = 0u64;
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
        let cut = if at_end {
            buf.len()
        } else if buf.len() >= BATCH_BYTES {
            memchr::memrchr(b'\n', &buf).map_or(0, |nl| nl + 1)
        } else {
            0
        };
        if cut > 0 {
            let rest = buf[cut..].to_vec();
            buf.truncate(cut);
            let bytes = std::mem::replace(&mut buf, rest);
            buf.reserve(BATCH_BYTES + BLOCK);
            sink(Batch::Jsonl {
                bytes,
                weight,
                path: shared.clone(),
                offset,
            })?;
            offset += cut as u64;
        }
        if at_end {
            return Ok(());
        }
    }
}

/// A JSONL record; only `text` is needed.
#[derive(Deserialize)]
struct TextRecord<'a> {
    #[serde(borrow)]
    text: std::borrow::Cow<'a, str>,
}

/// True for datamill shards and other JSONL files.
fn is_jsonl(path: &Path) -> bool {
    let name = crate::doc::file_name(path);
    [
        ".jsonl",
        ".jsonl.gz",
        ".jsonl.zst",
        ".json.gz",
        ".jsonl.bz2",
    ]
    .iter()
    .any(|ext| name.ends_with(ext))
}

/// Feeds one file's texts (documents or lines) to `add` until it returns false.
/// Returns false when `add` asked to stop.
fn read_file(path: &Path, add: &mut impl FnMut(&str) -> Result<bool>) -> Result<bool> {
    let mut input = BufReader::with_capacity(1 << 16, open_decompressed(path)?);
    let jsonl = is_jsonl(path);
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
        let line = trim_eol(&buf);
        let keep_going = if jsonl {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let rec: TextRecord = serde_json::from_slice(line).with_context(|| {
                format!(
                    "{}: line {line_no} (byte {at}) is not a JSON object with a `text` string",
                    path.display()
                )
            })?;
            add(&rec.text)?
        } else {
            let text = std::str::from_utf8(line).map_err(|e| {
                anyhow::anyhow!(
                    "{}: line {line_no} (byte {}) is not valid UTF-8; convert the file first",
                    path.display(),
                    at + e.valid_up_to() as u64
                )
            })?;
            add(text)?
        };
        if !keep_going {
            return Ok(false);
        }
    }
}

fn trim_eol(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = line {
        line = rest;
    }
    line
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
                table.add(&word, h, round + 1).expect("add");
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
}

//! Streams the training text (datamill shards or plain text files) and counts its words in
//! parallel: each line gets sentencepiece's dummy `▁` prefix and `▁` for spaces, and is cut
//! into words the way the trainer does (a run of `▁` plus the characters up to the next `▁`).

use std::hash::BuildHasher;
use std::io::{BufRead, BufReader};
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
    /// Word (with ' ' standing for `▁`, the dummy prefix included) -> weighted count, in
    /// disjoint shards.
    pub words: Vec<WordTable>,
    /// Lines counted.
    pub lines: u64,
    /// Bytes of the lines counted.
    pub bytes: u64,
    /// Lines longer than the limit, skipped (as sentencepiece does).
    pub long_lines: u64,
}

impl WordCounts {
    /// Distinct words.
    pub fn distinct(&self) -> usize {
        self.words.iter().map(|m| m.len()).sum()
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

    /// The word of the record at byte `at`.
    fn word_at(arena: &[u8], at: usize) -> &[u8] {
        let len = u32::from_le_bytes(arena[at + 8..at + 12].try_into().expect("4 bytes")) as usize;
        &arena[at + RECORD_HEAD..at + RECORD_HEAD + len]
    }

    /// Adds `weight` to the count of `word`, whose `FxBuildHasher` hash is `h`.
    fn add(&mut self, word: &str, h: u64, weight: u64) -> Result<()> {
        let WordTable { arena, index } = self;
        let word = word.as_bytes();
        if let Some(&slot) = index.find(h, |&slot| Self::word_at(arena, slot as usize * 8) == word)
        {
            let at = slot as usize * 8;
            let count = u64::from_le_bytes(arena[at..at + 8].try_into().expect("8 bytes"));
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
            let count = u64::from_le_bytes(arena[at..at + 8].try_into().expect("8 bytes"));
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

/// Reads every source and counts its words on `threads` threads. The reading thread
/// decompresses and parses; every counting thread sees every batch but counts only the words
/// of its hash shard, so the per-thread maps are disjoint: no merge, no word held twice.
pub fn count_words(
    sources: &[SourceConfig],
    max_line_bytes: usize,
    threads: usize,
) -> Result<WordCounts> {
    let workers = threads.max(1);
    let mut senders = Vec::with_capacity(workers);
    let mut receivers = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (tx, rx) = sync_channel::<(Arc<String>, u64)>(4);
        senders.push(tx);
        receivers.push(rx);
    }
    std::thread::scope(|scope| -> Result<WordCounts> {
        let handles: Vec<_> = receivers
            .into_iter()
            .enumerate()
            .map(|(shard, rx)| {
                scope.spawn(move || {
                    let mut counter = ShardCounter {
                        shard: shard as u64,
                        shards: workers as u64,
                        words: WordTable::default(),
                        error: None,
                        lines: 0,
                        bytes: 0,
                        long_lines: 0,
                    };
                    let mut norm = String::new();
                    while let Ok((batch, weight)) = rx.recv() {
                        count_batch(&batch, weight, max_line_bytes, &mut norm, &mut counter);
                    }
                    counter
                })
            })
            .collect();
        let read = read_sources(sources, |batch, weight| {
            let batch = Arc::new(batch);
            for tx in &senders {
                tx.send((batch.clone(), weight))
                    .context("counting threads stopped")?;
            }
            Ok(())
        });
        drop(senders);
        let mut total = WordCounts::default();
        for h in handles {
            let part = h
                .join()
                .map_err(|_| anyhow::anyhow!("a counting thread panicked"))?;
            if part.shard == 0 {
                total.lines = part.lines;
                total.bytes = part.bytes;
                total.long_lines = part.long_lines;
            }
            if let Some(e) = part.error {
                return Err(e);
            }
            total.words.push(part.words);
        }
        read?;
        Ok(total)
    })
}

/// One counting thread's state: the words of its shard.
struct ShardCounter {
    shard: u64,
    shards: u64,
    words: WordTable,
    /// The first error (the table is full); later words are not counted.
    error: Option<anyhow::Error>,
    lines: u64,
    bytes: u64,
    long_lines: u64,
}

impl ShardCounter {
    #[inline]
    fn add_word(&mut self, word: &str, weight: u64) {
        // One hash per word: it picks the shard (middle bits; the table indexes with the low
        // ones) and then finds the word in the table.
        let h = FxBuildHasher.hash_one(word.as_bytes());
        if (h >> 32) % self.shards != self.shard {
            return;
        }
        if self.error.is_none() {
            if let Err(e) = self.words.add(word, h, weight) {
                self.error = Some(e);
            }
        }
    }
}

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

/// Reads the sources in order and hands batches of lines (joined by `\n`) to `sink`.
fn read_sources(
    sources: &[SourceConfig],
    mut sink: impl FnMut(String, u64) -> Result<()>,
) -> Result<()> {
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
        'files: for file in &files {
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
                    sink(std::mem::take(&mut batch), source.weight)?;
                    batch.reserve(BATCH_BYTES + 4096);
                }
                Ok(taken < budget)
            };
            if !read_file(file, &mut add)? {
                break 'files;
            }
        }
        if !batch.is_empty() {
            sink(batch, source.weight)?;
        }
    }
    Ok(())
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

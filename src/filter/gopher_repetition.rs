//! Gopher repetition rules (Rae et al. 2021, table A1; defaults as in datatrove's
//! `GopherRepetitionFilter`): duplicate paragraphs and lines (as a fraction of pieces and of
//! characters), the character share of the most frequent 2-, 3- and 4-gram, and the character
//! share of duplicated 5- to 10-grams.
//!
//! Paragraphs are the stripped text cut at runs of two or more `\n`; lines are the text cut at
//! runs of `\n`. Character fractions are over the characters of the whole text. n-grams are over
//! [`split_words`] tokens; a top n-gram's length counts the single spaces between its words, a
//! duplicated n-gram's does not (as datatrove). A tie for the most frequent n-gram goes to the
//! one seen first, like Python's `Counter.most_common`.
//!
//! Speed: no n-gram is ever built as a string. Every word is hashed once (xxh3); the hash of the
//! n-gram starting at word `i` is updated in place from the (n−1)-gram's (`h = h·P + w[i+n−1]`);
//! counts live in a reused open-addressing table. n grows one level at a time, and an n-gram can
//! only occur twice if both (n−1)-grams inside it do, so each level only counts the positions
//! whose two (n−1)-grams were repeated: in ordinary prose few 4-grams and almost no 6-grams
//! repeat, so the ten levels cost about two passes over the words. Two different n-grams with the
//! same 64-bit hash would count as one (negligible).

use std::cell::RefCell;

use anyhow::{ensure, Result};
use serde::Deserialize;
use xxhash_rust::xxh3::xxh3_64;

use super::words::{char_len, with_words};
use crate::doc::Document;
use crate::run::config::parse_params;
use crate::stage::{DocPos, Stage, Verdict};

/// Parameters of `type = "gopher_repetition"` (Gopher table A1). A fraction of 0 turns its rule off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GopherRepetitionConfig {
    /// Highest fraction of lines that repeat an earlier line (0.3).
    pub dup_line_frac: f64,
    /// Highest fraction of paragraphs that repeat an earlier paragraph (0.3).
    pub dup_para_frac: f64,
    /// Highest share of characters in repeated lines (0.2).
    pub dup_line_char_frac: f64,
    /// Highest share of characters in repeated paragraphs (0.2).
    pub dup_para_char_frac: f64,
    /// `[n, fraction]`: highest character share of the most frequent n-gram
    /// (`[[2, 0.2], [3, 0.18], [4, 0.16]]`).
    pub top_n_grams: Vec<(usize, f64)>,
    /// `[n, fraction]`: highest character share of duplicated n-grams
    /// (`[[5, 0.15], [6, 0.14], [7, 0.13], [8, 0.12], [9, 0.11], [10, 0.10]]`).
    pub dup_n_grams: Vec<(usize, f64)>,
}

impl Default for GopherRepetitionConfig {
    fn default() -> Self {
        GopherRepetitionConfig {
            dup_line_frac: 0.3,
            dup_para_frac: 0.3,
            dup_line_char_frac: 0.2,
            dup_para_char_frac: 0.2,
            top_n_grams: vec![(2, 0.2), (3, 0.18), (4, 0.16)],
            dup_n_grams: vec![
                (5, 0.15),
                (6, 0.14),
                (7, 0.13),
                (8, 0.12),
                (9, 0.11),
                (10, 0.10),
            ],
        }
    }
}

/// The Gopher repetition filter stage.
pub struct GopherRepetition {
    config: GopherRepetitionConfig,
}

/// One slot of [`CountTable`]: a (mixed, nonzero) key, its count and first position.
#[derive(Clone, Copy, Default)]
struct Slot {
    key: u64,
    count: u32,
    first: u32,
}

/// Open-addressing hash table from a 64-bit hash to (count, first position), reused between
/// documents; it also tracks the most frequent key (earliest first position on ties).
#[derive(Default)]
struct CountTable {
    slots: Vec<Slot>,
    mask: usize,
    /// (count, first position) of the most frequent key so far.
    top: (u32, u32),
}

impl CountTable {
    /// Empties the table and sizes it for `n` keys (load at most 1/2).
    fn reset(&mut self, n: usize) {
        let cap = (n.max(8) * 2).next_power_of_two();
        if self.slots.len() != cap {
            self.slots = vec![Slot::default(); cap];
        } else {
            self.slots.fill(Slot::default());
        }
        self.mask = cap - 1;
        self.top = (0, 0);
    }

    /// Counts one occurrence of `key` at position `at`; returns the count so far.
    #[inline]
    fn add(&mut self, key: u64, at: u32) -> u32 {
        let slot = self.add_slot(key, at);
        self.slots[slot].count
    }

    /// The count of the key in slot `slot`.
    #[inline]
    fn count(&self, slot: usize) -> u32 {
        self.slots[slot].count
    }

    /// Counts one occurrence of `key` at position `at`; returns its slot.
    #[inline]
    fn add_slot(&mut self, key: u64, at: u32) -> usize {
        let key = mix(key) | 1;
        let mut i = key as usize & self.mask;
        loop {
            let slot = &mut self.slots[i];
            if slot.key == key {
                slot.count += 1;
                let (count, first) = (slot.count, slot.first);
                if count > self.top.0 || (count == self.top.0 && first < self.top.1) {
                    self.top = (count, first);
                }
                return i;
            }
            if slot.key == 0 {
                *slot = Slot {
                    key,
                    count: 1,
                    first: at,
                };
                if self.top.0 == 0 {
                    self.top = (1, at);
                }
                return i;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The (count, first position) with the highest count, the earliest first position on ties.
    fn top(&self) -> (u32, u32) {
        self.top
    }

    /// Gives the memory back after an unusually large document.
    fn trim(&mut self) {
        if self.slots.len() > 1 << 20 {
            *self = CountTable::default();
        }
    }
}

/// murmur3's 64-bit finaliser: spreads the polynomial n-gram hashes over the table.
#[inline]
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Odd multiplier of the n-gram polynomial hash.
const NGRAM_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

#[derive(Default)]
struct Scratch {
    /// `chars_before[i]`: characters of words `0..i`.
    chars_before: Vec<usize>,
    /// xxh3 of every word.
    word_hashes: Vec<u64>,
    /// Per position, the hash of the n-gram starting there (updated in place as n grows).
    grams: Vec<u64>,
    /// Per position, whether the current level's n-gram there occurs more than once.
    repeated: Vec<bool>,
    /// Positions counted at the current level, and their table slots.
    candidates: Vec<(u32, u32)>,
    /// Per n: most frequent n-gram's characters times its count, and duplicated n-gram
    /// characters (datatrove's two measures), when asked for.
    top_chars: Vec<Option<usize>>,
    dup_chars: Vec<Option<usize>>,
    table: CountTable,
    seen: CountTable,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Number of pieces and (count, characters) of pieces equal to an earlier piece.
fn duplicates<'a>(
    pieces: impl Iterator<Item = &'a str>,
    table: &mut CountTable,
) -> (usize, usize, usize) {
    let (mut total, mut dup, mut dup_chars) = (0, 0, 0);
    for (i, p) in pieces.enumerate() {
        total += 1;
        if table.add(xxh3_64(p.as_bytes()), i as u32) > 1 {
            dup += 1;
            dup_chars += char_len(p);
        }
    }
    (total, dup, dup_chars)
}

/// Python's `re.split(r"\n{2,}", s)`.
fn paragraphs(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        let bytes = r.as_bytes();
        let mut from = 0;
        while let Some(i) = memchr::memchr(b'\n', &bytes[from..]).map(|i| i + from) {
            let run = bytes[i..].iter().take_while(|&&b| b == b'\n').count();
            if run >= 2 {
                rest = Some(&r[i + run..]);
                return Some(&r[..i]);
            }
            from = i + run;
        }
        rest = None;
        Some(r)
    })
}

/// Python's `re.split(r"\n+", s)` (keeps the empty pieces at the ends).
fn lines(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memchr(b'\n', r.as_bytes()) {
            Some(i) => {
                let run = r.as_bytes()[i..]
                    .iter()
                    .take_while(|&&b| b == b'\n')
                    .count();
                rest = Some(&r[i + run..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

fn static_reason(prefix: &str, n: usize) -> Option<&'static str> {
    const TOP: [&str; 11] = [
        "",
        "gopher_top_1gram",
        "gopher_top_2gram",
        "gopher_top_3gram",
        "gopher_top_4gram",
        "gopher_top_5gram",
        "gopher_top_6gram",
        "gopher_top_7gram",
        "gopher_top_8gram",
        "gopher_top_9gram",
        "gopher_top_10gram",
    ];
    const DUP: [&str; 11] = [
        "",
        "gopher_dup_1gram",
        "gopher_dup_2gram",
        "gopher_dup_3gram",
        "gopher_dup_4gram",
        "gopher_dup_5gram",
        "gopher_dup_6gram",
        "gopher_dup_7gram",
        "gopher_dup_8gram",
        "gopher_dup_9gram",
        "gopher_dup_10gram",
    ];
    let table = if prefix == "top" { &TOP } else { &DUP };
    table.get(n).copied()
}

/// Which rule a document failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepetitionFailure {
    /// A fixed reason (`gopher_dup_line_frac`, `gopher_top_2gram`).
    Named(&'static str),
    /// The n-gram rules: `top` or `dup` with the n.
    NGram(&'static str, usize),
}

impl RepetitionFailure {
    /// The drop reason.
    pub fn reason(&self) -> std::borrow::Cow<'static, str> {
        match self {
            RepetitionFailure::Named(r) => (*r).into(),
            RepetitionFailure::NGram(kind, n) => match static_reason(kind, *n) {
                Some(r) => r.into(),
                None => format!("gopher_{kind}_{n}gram").into(),
            },
        }
    }
}

impl GopherRepetition {
    /// Builds the stage from its TOML parameters.
    pub fn from_params(params: &toml::Table) -> Result<Self> {
        Self::new(parse_params("gopher_repetition", params)?)
    }

    /// The stage with the given configuration; every n must be at least 1.
    pub fn new(config: GopherRepetitionConfig) -> Result<Self> {
        for &(n, _) in config.top_n_grams.iter().chain(&config.dup_n_grams) {
            ensure!(
                n >= 1,
                "stage `gopher_repetition`: n-gram size must be at least 1"
            );
        }
        Ok(GopherRepetition { config })
    }

    /// Applies the rules to a text; `Err` names the first rule that fails.
    pub fn check(&self, text: &str) -> Result<(), RepetitionFailure> {
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let r = self.check_with(text, &mut s);
            s.table.trim();
            s.seen.trim();
            if s.word_hashes.capacity() > 1 << 20 {
                *s = Scratch::default();
            }
            r
        })
    }

    fn check_with(&self, text: &str, s: &mut Scratch) -> Result<(), RepetitionFailure> {
        use RepetitionFailure::{NGram, Named};
        let c = &self.config;
        let text_chars = char_len(text);
        if text_chars == 0 {
            return Ok(());
        }
        let len = text_chars as f64;
        let bytes = text.as_bytes();

        if c.dup_para_frac > 0.0 || c.dup_para_char_frac > 0.0 {
            let stripped = text.trim();
            s.table
                .reset(memchr::memchr_iter(b'\n', stripped.as_bytes()).count() / 2 + 1);
            let (n, dup, dup_chars) = duplicates(paragraphs(stripped), &mut s.table);
            if c.dup_para_frac > 0.0 && dup as f64 / n as f64 > c.dup_para_frac {
                return Err(Named("gopher_dup_para_frac"));
            }
            if c.dup_para_char_frac > 0.0 && dup_chars as f64 / len > c.dup_para_char_frac {
                return Err(Named("gopher_dup_para_char_frac"));
            }
        }
        if c.dup_line_frac > 0.0 || c.dup_line_char_frac > 0.0 {
            s.table.reset(memchr::memchr_iter(b'\n', bytes).count() + 1);
            let (n, dup, dup_chars) = duplicates(lines(text), &mut s.table);
            if c.dup_line_frac > 0.0 && dup as f64 / n as f64 > c.dup_line_frac {
                return Err(Named("gopher_dup_line_frac"));
            }
            if c.dup_line_char_frac > 0.0 && dup_chars as f64 / len > c.dup_line_char_frac {
                return Err(Named("gopher_dup_line_char_frac"));
            }
        }
        if c.top_n_grams.is_empty() && c.dup_n_grams.is_empty() {
            return Ok(());
        }

        s.chars_before.clear();
        s.word_hashes.clear();
        with_words(text, |words| {
            s.chars_before.push(0);
            let mut acc = 0;
            for w in words {
                acc += w.chars;
                s.chars_before.push(acc);
            }
            s.word_hashes
                .extend(words.iter().map(|w| xxh3_64(&bytes[w.start..w.end])));
        });
        let n_words = s.word_hashes.len();
        let active = |list: &[(usize, f64)], n: usize| list.iter().any(|&(m, f)| m == n && f > 0.0);
        let max_n = c
            .top_n_grams
            .iter()
            .chain(&c.dup_n_grams)
            .filter(|&&(_, f)| f > 0.0)
            .map(|&(n, _)| n)
            .max()
            .unwrap_or(0)
            .min(n_words);
        s.top_chars.clear();
        s.top_chars.resize(max_n + 1, None);
        s.dup_chars.clear();
        s.dup_chars.resize(max_n + 1, None);
        for n in 1..=max_n {
            s.level(n, active(&c.top_n_grams, n), active(&c.dup_n_grams, n));
        }
        for &(n, frac) in &c.top_n_grams {
            if let Some(Some(chars)) = s.top_chars.get(n).filter(|_| frac > 0.0) {
                if *chars as f64 / len > frac {
                    return Err(NGram("top", n));
                }
            }
        }
        for &(n, frac) in &c.dup_n_grams {
            if let Some(Some(chars)) = s.dup_chars.get(n).filter(|_| frac > 0.0) {
                if *chars as f64 / len > frac {
                    return Err(NGram("dup", n));
                }
            }
        }
        Ok(())
    }
}

impl Scratch {
    /// Moves from (n−1)-grams to n-grams (`n >= 1`, at most the number of words) and records the
    /// measures asked for.
    fn level(&mut self, n: usize, want_top: bool, want_dup: bool) {
        let n_words = self.word_hashes.len();
        let count = n_words + 1 - n;
        self.candidates.clear();
        if n == 1 {
            self.grams.clear();
            self.grams.extend_from_slice(&self.word_hashes);
            if !(want_top || want_dup) {
                // Counting single words costs a full pass and prunes little (most words repeat):
                // level 2 then counts every position instead.
                self.repeated.clear();
                self.repeated.resize(count, true);
                return;
            }
            self.candidates.extend((0..count as u32).map(|i| (i, 0)));
        } else {
            let new_word = &self.word_hashes[n - 1..];
            for (g, &w) in self.grams[..count].iter_mut().zip(new_word) {
                *g = g.wrapping_mul(NGRAM_MUL).wrapping_add(w);
            }
            let rep = &self.repeated;
            self.candidates.extend(
                (0..count)
                    .filter(|&i| rep[i] && rep[i + 1])
                    .map(|i| (i as u32, 0)),
            );
        }
        self.table.reset(self.candidates.len());
        for cand in self.candidates.iter_mut() {
            cand.1 = self.table.add_slot(self.grams[cand.0 as usize], cand.0) as u32;
        }
        self.repeated.clear();
        self.repeated.resize(count, false);
        for &(i, slot) in &self.candidates {
            self.repeated[i as usize] = self.table.count(slot as usize) > 1;
        }
        let span = |at: usize| self.chars_before[at + n] - self.chars_before[at];
        if want_top {
            // Only repeated n-grams were counted; with none, every n-gram occurs once and the
            // first one is the "most frequent".
            let (times, at) = match self.table.top() {
                (t, at) if t > 1 => (t as usize, at as usize),
                _ => (1, 0),
            };
            self.top_chars[n] = Some((span(at) + n - 1) * times);
        }
        if want_dup {
            // datatrove's scan: a repeat of an n-gram seen earlier counts its characters and
            // skips past it. n-grams occurring once can never be repeats, so only repeated
            // positions need the seen-set.
            let repeated_positions = self.candidates.len();
            self.seen.reset(repeated_positions);
            let mut chars = 0;
            let mut i = 0;
            while i < count {
                if self.repeated[i] && self.seen.add(self.grams[i], i as u32) > 1 {
                    chars += span(i);
                    i += n;
                } else {
                    i += 1;
                }
            }
            self.dup_chars[n] = Some(chars);
        }
    }
}

impl Stage for GopherRepetition {
    fn name(&self) -> &str {
        "gopher_repetition"
    }

    fn process(&self, doc: &mut Document, _pos: DocPos) -> Verdict {
        match self.check(&doc.text) {
            Ok(()) => Verdict::Keep,
            Err(f) => Verdict::Drop(f.reason()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_python_re_split() {
        let p: Vec<&str> = paragraphs("a\nb\n\n\nc\n\nd").collect();
        assert_eq!(p, ["a\nb", "c", "d"]);
        let l: Vec<&str> = lines("\na\n\nb\n").collect();
        assert_eq!(l, ["", "a", "b", ""]);
    }

    #[test]
    fn repeated_lines_and_paragraphs_are_caught() {
        let st = GopherRepetition::new(GopherRepetitionConfig::default()).unwrap();
        let para = "Buy now and save on every order today.";
        let text = format!("{para}\n\n{para}\n\nSomething else entirely here.");
        assert_eq!(
            st.check(&text).unwrap_err().reason(),
            "gopher_dup_para_frac"
        );
        let lines = "alpha beta gamma\nalpha beta gamma\ndelta epsilon\nzeta eta theta iota";
        let only_lines = GopherRepetition::new(GopherRepetitionConfig {
            dup_para_frac: 0.0,
            dup_para_char_frac: 0.0,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            only_lines.check(lines).unwrap_err().reason(),
            "gopher_dup_line_char_frac"
        );
        assert_eq!(st.check(""), Ok(()));
    }
}

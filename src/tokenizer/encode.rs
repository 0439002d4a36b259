//! The BPE merge loop of sentencepiece's `bpe_model.cc`, on symbol ids instead of strings.
//!
//! Short words use a linear scan for the best pair (fast for the usual 2–15 characters);
//! long ones (CJK runs, long numbers, base64) a heap with lazy deletion. Both pick the pair
//! whose merged piece has the best score, leftmost on ties, exactly as sentencepiece does.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::model::{push_id, Tokenizer, NO_RANK, UNKNOWN_SYM, WS_STR};

/// Words up to this many characters use the linear scan.
const LINEAR_MAX: usize = 64;

/// Splits a normalized text before every `▁` that follows a character other than `▁`.
/// Valid when no piece contains such a `▁` ([`Tokenizer`] checks this when loading): then
/// no merge crosses a cut, and merging each word alone gives the same pieces.
pub struct Chunker<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Chunker<'a> {
    /// Words of `text`.
    pub fn new(text: &'a str) -> Self {
        Chunker { text, pos: 0 }
    }
}

impl<'a> Iterator for Chunker<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        if start >= bytes.len() {
            return None;
        }
        // Skip the leading run of ▁.
        let mut i = start;
        while bytes[i..].starts_with(WS_STR.as_bytes()) {
            i += 3;
        }
        // The word ends at the next ▁ (which follows a non-▁ character by construction).
        let end = match memchr::memmem::find(&bytes[i..], WS_STR.as_bytes()) {
            Some(k) if i < bytes.len() => i + k,
            _ => bytes.len(),
        };
        self.pos = end;
        Some(&self.text[start..end])
    }
}

/// One symbol of the heap variant: a piece (or unknown character) spanning `start..end`.
#[derive(Clone, Copy)]
struct Sym {
    id: u32,
    start: u32,
    end: u32,
    prev: u32,
    next: u32,
}

const NONE: u32 = u32::MAX;

/// Reusable buffers for encoding words.
#[derive(Default)]
pub struct EncodeScratch {
    ids: Vec<u32>,
    starts: Vec<u32>,
    ranks: Vec<u32>,
    merged: Vec<u32>,
    syms: Vec<Sym>,
    heap: BinaryHeap<Reverse<(u32, u32, u32, u32)>>,
}

impl EncodeScratch {
    /// Encodes one normalized word and appends its ids to `out` (`start` = where the current
    /// text's ids begin, for `<unk>` fusion).
    pub fn encode_word(&mut self, tok: &Tokenizer, word: &str, out: &mut Vec<u32>, start: usize) {
        self.ids.clear();
        self.starts.clear();
        for (i, c) in word.char_indices() {
            let s = if c.is_ascii() {
                tok.ascii_sym[c as usize]
            } else {
                tok.char_sym.get(&c).copied().unwrap_or(UNKNOWN_SYM)
            };
            self.ids.push(s);
            self.starts.push(i as u32);
        }
        self.starts.push(word.len() as u32);
        if self.ids.len() <= LINEAR_MAX {
            self.merge_linear(tok);
            for k in 0..self.ids.len() {
                let (a, b) = (self.starts[k] as usize, self.starts[k + 1] as usize);
                emit(tok, self.ids[k], &word[a..b], out, start);
            }
        } else {
            self.merge_heap(tok);
            let mut k = 0;
            while k != NONE {
                let s = self.syms[k as usize];
                emit(
                    tok,
                    s.id,
                    &word[s.start as usize..s.end as usize],
                    out,
                    start,
                );
                k = s.next;
            }
        }
    }

    fn merge_linear(&mut self, tok: &Tokenizer) {
        let n = self.ids.len();
        self.ranks.clear();
        self.merged.clear();
        for k in 0..n.saturating_sub(1) {
            let (m, r) = lookup(tok, self.ids[k], self.ids[k + 1]);
            self.merged.push(m);
            self.ranks.push(r);
        }
        loop {
            let mut best = NO_RANK;
            let mut at = usize::MAX;
            for (k, &r) in self.ranks.iter().enumerate() {
                if r < best {
                    best = r;
                    at = k;
                }
            }
            if best == NO_RANK {
                break;
            }
            self.ids[at] = self.merged[at];
            self.ids.remove(at + 1);
            self.starts.remove(at + 1);
            self.ranks.remove(at);
            self.merged.remove(at);
            if at > 0 {
                let (m, r) = lookup(tok, self.ids[at - 1], self.ids[at]);
                self.merged[at - 1] = m;
                self.ranks[at - 1] = r;
            }
            if at + 1 < self.ids.len() {
                let (m, r) = lookup(tok, self.ids[at], self.ids[at + 1]);
                self.merged[at] = m;
                self.ranks[at] = r;
            }
        }
    }

    fn merge_heap(&mut self, tok: &Tokenizer) {
        let n = self.ids.len();
        self.syms.clear();
        self.heap.clear();
        for k in 0..n {
            self.syms.push(Sym {
                id: self.ids[k],
                start: self.starts[k],
                end: self.starts[k + 1],
                prev: if k == 0 { NONE } else { k as u32 - 1 },
                next: if k + 1 == n { NONE } else { k as u32 + 1 },
            });
        }
        for k in 0..n.saturating_sub(1) {
            self.push_pair(tok, k as u32, k as u32 + 1);
        }
        while let Some(Reverse((_, left, right, merged))) = self.heap.pop() {
            let (l, r) = (self.syms[left as usize], self.syms[right as usize]);
            // Stale: one side changed since the pair was pushed.
            if l.id == NONE || r.id == NONE || l.next != right {
                continue;
            }
            if lookup(tok, l.id, r.id).0 != merged {
                continue;
            }
            let ls = &mut self.syms[left as usize];
            ls.id = merged;
            ls.end = r.end;
            ls.next = r.next;
            self.syms[right as usize].id = NONE;
            if r.next != NONE {
                self.syms[r.next as usize].prev = left;
            }
            if l.prev != NONE {
                self.push_pair(tok, l.prev, left);
            }
            if r.next != NONE {
                self.push_pair(tok, left, r.next);
            }
        }
    }

    fn push_pair(&mut self, tok: &Tokenizer, left: u32, right: u32) {
        let (m, r) = lookup(
            tok,
            self.syms[left as usize].id,
            self.syms[right as usize].id,
        );
        if r != NO_RANK {
            self.heap.push(Reverse((r, left, right, m)));
        }
    }
}

/// The merge of two adjacent symbols: `(merged piece, rank)`, rank `NO_RANK` if none.
#[inline]
fn lookup(tok: &Tokenizer, a: u32, b: u32) -> (u32, u32) {
    if a == UNKNOWN_SYM || b == UNKNOWN_SYM {
        return (0, NO_RANK);
    }
    match tok.merges.get(&(((a as u64) << 32) | b as u64)) {
        Some(&(m, r)) => (m, r),
        None => (0, NO_RANK),
    }
}

/// Appends the ids of one final symbol: its piece id, or for a character that is not a piece
/// its UTF-8 byte pieces (byte fallback) or `<unk>`.
#[inline]
fn emit(tok: &Tokenizer, sym: u32, text: &str, out: &mut Vec<u32>, start: usize) {
    if (sym as usize) < tok.pieces.len() {
        out.push(sym);
    } else if let Some(bytes) = &tok.byte_ids {
        for &b in text.as_bytes() {
            out.push(bytes[b as usize]);
        }
    } else {
        push_id(tok, tok.unk_id, out, start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::corpus::SourceConfig;
    use crate::tokenizer::{train_tokenizer, TrainConfig};

    #[test]
    fn chunker_cuts_before_each_space_run() {
        let words: Vec<&str> = Chunker::new("▁a▁▁bc▁▁▁▁d▁").collect();
        assert_eq!(words, ["▁a", "▁▁bc", "▁▁▁▁d", "▁"]);
        let words: Vec<&str> = Chunker::new("x▁▁").collect();
        assert_eq!(words, ["x", "▁▁"]);
        assert_eq!(Chunker::new("").count(), 0);
    }

    fn small_model() -> Tokenizer {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        let mut text = String::new();
        for i in 0..400 {
            text.push_str(&format!(
                "the cat sat on the mat {i} times, então 日本語のテキスト    indented\tline\n"
            ));
        }
        std::fs::write(&path, text).unwrap();
        let book = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/samples/books/Pride-and-Prejudice_1342/1342.txt"
        );
        let source = |p: &str, max_bytes| SourceConfig {
            name: "t".into(),
            paths: vec![p.into()],
            weight: 1,
            max_bytes,
        };
        let config = TrainConfig {
            vocab_size: 700,
            character_coverage: 1.0,
            sources: vec![
                source(&path.display().to_string(), 0),
                source(book, 200_000),
            ],
            ..TrainConfig::default()
        };
        let (proto, _) = train_tokenizer(&config).unwrap();
        Tokenizer::from_proto(proto).unwrap()
    }

    /// Both merge loops give the same pieces, on long random mixes of the vocabulary.
    #[test]
    fn linear_and_heap_merges_agree() {
        let tok = small_model();
        let texts: Vec<&str> = tok.pieces[259..].iter().map(|s| s.as_str()).collect();
        let mut seed = 12345u64;
        for _ in 0..300 {
            let mut word = String::from(WS_STR);
            for _ in 0..40 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let t = texts[(seed >> 33) as usize % texts.len()];
                word.push_str(&t.replace(WS_STR, ""));
            }
            let run = |heap: bool| {
                let mut s = EncodeScratch::default();
                s.ids.clear();
                s.starts.clear();
                for (i, c) in word.char_indices() {
                    let sym = if c.is_ascii() {
                        tok.ascii_sym[c as usize]
                    } else {
                        tok.char_sym.get(&c).copied().unwrap_or(UNKNOWN_SYM)
                    };
                    s.ids.push(sym);
                    s.starts.push(i as u32);
                }
                s.starts.push(word.len() as u32);
                if heap {
                    s.merge_heap(&tok);
                    let mut out = Vec::new();
                    let mut k = 0;
                    while k != NONE {
                        out.push(s.syms[k as usize].id);
                        k = s.syms[k as usize].next;
                    }
                    out
                } else {
                    s.merge_linear(&tok);
                    s.ids.clone()
                }
            };
            assert_eq!(run(false), run(true), "{word}");
        }
    }

    #[test]
    fn unknown_characters_fall_back_to_bytes() {
        let tok = small_model();
        let ids = tok.encode("cat 🦀");
        let pieces: Vec<&str> = ids.iter().map(|&i| tok.piece(i).unwrap()).collect();
        assert_eq!(
            &pieces[pieces.len() - 4..],
            ["<0xF0>", "<0x9F>", "<0xA6>", "<0x80>"]
        );
        assert_eq!(tok.decode(&ids).unwrap(), "cat 🦀");
        assert!(tok.encode("").is_empty());
    }
}

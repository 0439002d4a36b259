//! The word tokenizer shared by the Gopher and C4 rules.
//!
//! Rules (a fast approximation of the spaCy tokenizer datatrove uses for English):
//! 1. The text is cut at Unicode whitespace into chunks.
//! 2. A chunk made only of punctuation (see [`is_punct`]) is one token (`-`, `...`, `#`, `|`).
//! 3. Otherwise every leading punctuation character is a token of its own, the core from the
//!    first to the last non-punctuation character is one token (so `don't`, `e-mail`, `3.14`
//!    stay whole), and the trailing punctuation follows as tokens of one character each, except
//!    that a run of dots is one token (`end...` gives `end`, `...`).
//!
//! `Hello, "world"!` gives `Hello` `,` `"` `world` `"` `!`. Tokens are byte ranges of the text,
//! so splitting allocates nothing beyond the reused output vector.

use std::cell::RefCell;

use unicode_normalization::char::is_combining_mark;
use xxhash_rust::xxh3::xxh3_64;

/// One token: a byte range of the text and its length in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset just past the last byte.
    pub end: usize,
    /// Length in Unicode scalar values (Python's `len`).
    pub chars: usize,
}

impl Word {
    /// The token's text.
    pub fn text<'a>(&self, text: &'a str) -> &'a str {
        &text[self.start..self.end]
    }
}

/// Punctuation and symbols: ASCII punctuation and control characters, and any other character
/// that is neither alphanumeric, a combining mark (so Indic vowel signs stay inside words), nor
/// whitespace.
#[inline]
pub fn is_punct(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_punctuation() || c.is_ascii_control()
    } else {
        !is_letter(c) && !c.is_numeric() && !c.is_whitespace() && !is_combining_mark(c)
    }
}

/// `char::is_alphabetic` with a table-free answer for the big blocks that are letters only
/// (Latin-1 and Latin Extended letters, Cyrillic, Greek and Coptic letters, CJK ideographs, kana,
/// Hangul syllables); the standard library's lookup is slow enough to show in profiles.
#[inline]
pub fn is_letter(c: char) -> bool {
    match c as u32 {
        0x41..=0x5a | 0x61..=0x7a => true,
        0..=0x7f => false,
        0xc0..=0x24f => c != '×' && c != '÷',
        0x388..=0x3ff => c != '΅' && c != '·' && c != '϶',
        0x400..=0x481 | 0x48a..=0x52f => true,
        0x3041..=0x3096 | 0x30a1..=0x30fa | 0x4e00..=0x9fff | 0xac00..=0xd7a3 => true,
        _ => c.is_alphabetic(),
    }
}

/// Number of characters in `s` (counts the bytes that start a UTF-8 sequence).
#[inline]
pub fn char_len(s: &str) -> usize {
    s.as_bytes().iter().filter(|&&b| (b as i8) >= -0x40).count()
}

/// The last split of this thread, so that consecutive word-based stages of one document share it.
#[derive(Default)]
struct LastSplit {
    /// Address, length and xxh3 of the text split, or `None`.
    key: Option<(usize, usize, u64)>,
    words: Vec<Word>,
}

thread_local! {
    static LAST_SPLIT: RefCell<LastSplit> = RefCell::new(LastSplit::default());
}

/// Calls `f` with the tokens of `text`. The split is kept per thread, keyed by the text's
/// address, length and xxh3 hash, so the next stage of the chain (Gopher repetition, then Gopher
/// quality) reuses it instead of splitting again. `f` must not call `with_words` itself.
pub fn with_words<R>(text: &str, f: impl FnOnce(&[Word]) -> R) -> R {
    LAST_SPLIT.with(|cell| {
        let mut last = cell.borrow_mut();
        let key = (text.as_ptr() as usize, text.len(), xxh3_64(text.as_bytes()));
        if last.key != Some(key) {
            split_words(text, &mut last.words);
            last.key = Some(key);
        }
        let result = f(&last.words);
        if last.words.capacity() > 1 << 20 {
            *last = LastSplit::default();
        }
        result
    })
}

/// Splits `text` into tokens (rules in the module documentation); `out` is cleared first.
pub fn split_words(text: &str, out: &mut Vec<Word>) {
    out.clear();
    let bytes = text.as_bytes();
    let n = bytes.len();
    let mut i = 0;
    while i < n {
        let (ws, len) = whitespace_at(text, i);
        if ws {
            i += len;
            continue;
        }
        let start = i;
        let mut ascii = true;
        while i < n {
            let b = bytes[i];
            if b < 0x80 {
                if is_ascii_space(b) {
                    break;
                }
                i += 1;
            } else {
                let (ws, len) = whitespace_at(text, i);
                if ws {
                    break;
                }
                ascii = false;
                i += len;
            }
        }
        push_any_chunk(text, start, i, ascii, out);
    }
}

/// ASCII whitespace as Python's `str.split` sees it (space, \t, \n, \v, \f, \r, 0x1c-0x1f).
#[inline]
fn is_ascii_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t'..=b'\r' | 0x1c..=0x1f)
}

/// Whether the character at byte `i` is whitespace, and its length in bytes.
#[inline]
fn whitespace_at(text: &str, i: usize) -> (bool, usize) {
    let b = text.as_bytes()[i];
    if b < 0x80 {
        return (is_ascii_space(b), 1);
    }
    let c = text[i..].chars().next().unwrap_or(' ');
    (c.is_whitespace(), c.len_utf8())
}

#[inline]
fn push_any_chunk(text: &str, s: usize, e: usize, ascii: bool, out: &mut Vec<Word>) {
    if ascii {
        push_ascii_chunk(text.as_bytes(), s, e, out);
    } else {
        push_chunk(text, s, e, out);
    }
}

/// [`push_chunk`] for a chunk of ASCII bytes (one byte per character).
fn push_ascii_chunk(bytes: &[u8], s: usize, e: usize, out: &mut Vec<Word>) {
    let chunk = &bytes[s..e];
    let punct = |x: &u8| x.is_ascii_punctuation() || x.is_ascii_control();
    let Some(first) = chunk.iter().position(|x| !punct(x)) else {
        out.push(Word {
            start: s,
            end: e,
            chars: chunk.len(),
        });
        return;
    };
    for k in 0..first {
        out.push(Word {
            start: s + k,
            end: s + k + 1,
            chars: 1,
        });
    }
    let last = chunk.iter().rposition(|x| !punct(x)).unwrap_or(first);
    out.push(Word {
        start: s + first,
        end: s + last + 1,
        chars: last + 1 - first,
    });
    let mut k = last + 1;
    while k < chunk.len() {
        let mut end = k + 1;
        if chunk[k] == b'.' {
            while end < chunk.len() && chunk[end] == b'.' {
                end += 1;
            }
        }
        out.push(Word {
            start: s + k,
            end: s + end,
            chars: end - k,
        });
        k = end;
    }
}

fn push_chunk(text: &str, s: usize, e: usize, out: &mut Vec<Word>) {
    let chunk = &text[s..e];
    let Some((first, _)) = chunk.char_indices().find(|&(_, c)| !is_punct(c)) else {
        out.push(Word {
            start: s,
            end: e,
            chars: char_len(chunk),
        });
        return;
    };
    for (off, c) in chunk[..first].char_indices() {
        out.push(Word {
            start: s + off,
            end: s + off + c.len_utf8(),
            chars: 1,
        });
    }
    let core_end = chunk
        .char_indices()
        .rev()
        .find(|&(_, c)| !is_punct(c))
        .map_or(chunk.len(), |(off, c)| off + c.len_utf8());
    out.push(Word {
        start: s + first,
        end: s + core_end,
        chars: char_len(&chunk[first..core_end]),
    });
    let tail = &chunk[core_end..];
    let mut chars = tail.char_indices().peekable();
    while let Some((off, c)) = chars.next() {
        let mut end = off + c.len_utf8();
        let mut n = 1;
        if c == '.' {
            while let Some(&(o, '.')) = chars.peek() {
                end = o + 1;
                n += 1;
                chars.next();
            }
        }
        out.push(Word {
            start: s + core_end + off,
            end: s + core_end + end,
            chars: n,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<&str> {
        let mut v = Vec::new();
        split_words(text, &mut v);
        v.iter().map(|w| w.text(text)).collect()
    }

    #[test]
    fn splits_punctuation_off_words() {
        assert_eq!(
            tokens("Hello, \"world\"! don't stop... e-mail (3.14)"),
            [
                "Hello", ",", "\"", "world", "\"", "!", "don't", "stop", "...", "e-mail", "(",
                "3.14", ")"
            ]
        );
        assert_eq!(tokens("- item\n#  ... |"), ["-", "item", "#", "...", "|"]);
        assert_eq!(tokens("  "), Vec::<&str>::new());
    }

    #[test]
    fn handles_non_ascii_words_and_marks() {
        assert_eq!(
            tokens("«Привет», мир…"),
            ["«", "Привет", "»", ",", "мир", "…"]
        );
        // Devanagari: the vowel sign at the end is a combining mark, not punctuation.
        assert_eq!(tokens("नमस्ते दुनिया।"), ["नमस्ते", "दुनिया", "।"]);
        let mut v = Vec::new();
        split_words("héllo", &mut v);
        assert_eq!(v[0].chars, 5);
        let t1 = String::from("one two");
        let t2 = String::from("three");
        assert_eq!(with_words(&t1, |w| w.len()), 2);
        assert_eq!(with_words(&t1, |w| w.len()), 2);
        assert_eq!(with_words(&t2, |w| w.len()), 1);
        // Mixed chunks take the Unicode path, pure ASCII chunks the byte path: same rules.
        assert_eq!(
            tokens("(café)... (cafe)..."),
            ["(", "café", ")", "...", "(", "cafe", ")", "..."]
        );
    }
}

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

use unicode_normalization::char::is_combining_mark;

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
        !c.is_alphanumeric() && !c.is_whitespace() && !is_combining_mark(c)
    }
}

/// Number of characters in `s` (counts the bytes that start a UTF-8 sequence).
#[inline]
pub fn char_len(s: &str) -> usize {
    s.as_bytes().iter().filter(|&&b| (b as i8) >= -0x40).count()
}

/// Splits `text` into tokens (rules in the module documentation); `out` is cleared first.
pub fn split_words(text: &str, out: &mut Vec<Word>) {
    out.clear();
    let bytes = text.as_bytes();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (ws, len) = if b < 0x80 {
            (b.is_ascii_whitespace() || b == 0x0b, 1)
        } else {
            let c = text[i..].chars().next().unwrap_or(' ');
            (c.is_whitespace(), c.len_utf8())
        };
        if ws {
            if let Some(s) = start.take() {
                push_chunk(text, s, i, out);
            }
        } else if start.is_none() {
            start = Some(i);
        }
        i += len;
    }
    if let Some(s) = start {
        push_chunk(text, s, text.len(), out);
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
    }
}

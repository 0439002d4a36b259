//! fastText's view of text: tokens split on its whitespace set, the end-of-sentence token,
//! its 32-bit FNV-1a hash and the character n-grams of a word.
//!
//! The hash runs over bytes taken as *signed* chars widened to 32 bits, as fastText's C++ code
//! does: bytes of 0x80 and above (all non-ASCII UTF-8) XOR in `0xFFFFFF80..`, not `0x80..`.

/// The end-of-sentence token fastText reads for a newline.
pub const EOS: &[u8] = b"</s>";
/// Opens a word before its character n-grams are taken.
pub const BOW: u8 = b'<';
/// Closes a word before its character n-grams are taken.
pub const EOW: u8 = b'>';

const FNV_OFFSET: u32 = 2_166_136_261;
const FNV_PRIME: u32 = 16_777_619;

/// fastText's whitespace: space, `\n`, `\r`, `\t`, `\v`, `\f` and NUL.
const SPACE: [bool; 256] = {
    let mut t = [false; 256];
    t[b' ' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t[b'\t' as usize] = true;
    t[0x0b] = true;
    t[0x0c] = true;
    t[0] = true;
    t
};

/// True for a byte fastText splits words on.
#[inline]
pub fn is_space(b: u8) -> bool {
    SPACE[b as usize]
}

/// One step of fastText's FNV-1a (the byte as a signed char).
#[inline]
pub fn fnv_step(h: u32, b: u8) -> u32 {
    (h ^ (b as i8 as i32 as u32)).wrapping_mul(FNV_PRIME)
}

/// fastText's hash of a token.
#[inline]
pub fn fnv(bytes: &[u8]) -> u32 {
    bytes.iter().fold(FNV_OFFSET, |h, &b| fnv_step(h, b))
}

/// How a text becomes tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// As fastText's `predict` reads one line: a newline ends the line with the
    /// end-of-sentence token and the rest is not read; text without a newline has no such token.
    Line,
    /// A whole document as the Python binding and CCNet pass it: newlines are spaces, and the
    /// end-of-sentence token follows the last word.
    Document,
}

/// Calls `f` with each token of `text` in order, the end-of-sentence token included, as
/// fastText's `getLine` reads it: nothing after the first `</s>` (a newline in a line, or the
/// token written out) is read.
#[inline]
pub fn for_each_token(text: &[u8], input: Input, mut f: impl FnMut(&[u8])) {
    let mut i = 0;
    let n = text.len();
    while i < n {
        let b = text[i];
        if is_space(b) {
            if b == b'\n' && input == Input::Line {
                f(EOS);
                return;
            }
            i += 1;
            continue;
        }
        let start = i;
        while i < n && !is_space(text[i]) {
            i += 1;
        }
        let token = &text[start..i];
        f(token);
        // fastText ends the line at the end-of-sentence token, even one written in the text.
        if token == EOS {
            return;
        }
    }
    if input == Input::Document {
        f(EOS);
    }
}

/// Calls `f` with the hash of each character n-gram (`minn..=maxn` characters) of `word`,
/// which must already be wrapped in `<` and `>`, in fastText's order. Single-character n-grams
/// of the wrapping marks themselves are skipped, as fastText does.
#[inline]
pub fn for_each_char_ngram(word: &[u8], minn: usize, maxn: usize, mut f: impl FnMut(u32)) {
    let len = word.len();
    for i in 0..len {
        if word[i] & 0xC0 == 0x80 {
            continue;
        }
        let mut h = FNV_OFFSET;
        let mut j = i;
        let mut n = 1;
        while j < len && n <= maxn {
            h = fnv_step(h, word[j]);
            j += 1;
            while j < len && word[j] & 0xC0 == 0x80 {
                h = fnv_step(h, word[j]);
                j += 1;
            }
            if n >= minn && !(n == 1 && (i == 0 || j == len)) {
                f(h);
            }
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str, input: Input) -> Vec<String> {
        let mut v = Vec::new();
        for_each_token(text.as_bytes(), input, |t| {
            v.push(String::from_utf8_lossy(t).into_owned())
        });
        v
    }

    #[test]
    fn splits_on_fasttext_whitespace_only() {
        let t = tokens("a\tb\u{b}c\u{c}d\re\0f\u{a0}g", Input::Document);
        assert_eq!(t, ["a", "b", "c", "d", "e", "f\u{a0}g", "</s>"]);
        assert_eq!(tokens("", Input::Document), ["</s>"]);
        assert_eq!(tokens("  ", Input::Line), Vec::<String>::new());
    }

    #[test]
    fn a_newline_ends_a_line_but_not_a_document() {
        assert_eq!(tokens("x y\nz", Input::Line), ["x", "y", "</s>"]);
        assert_eq!(tokens("x\n\nz", Input::Document), ["x", "z", "</s>"]);
        assert_eq!(tokens("\nz", Input::Line), ["</s>"]);
        assert_eq!(tokens("a </s> b", Input::Document), ["a", "</s>"]);
        assert_eq!(tokens("a </s>b", Input::Line), ["a", "</s>b"]);
    }

    #[test]
    fn hash_takes_bytes_as_signed_chars() {
        // Values computed by hand from fastText's definition.
        assert_eq!(fnv(b""), 2_166_136_261);
        assert_eq!(fnv(b"a"), 0xe40c292c);
        // 0xC3 as a signed char is -61: XOR with 0xFFFFFFC3, not 0xC3.
        let signed = (FNV_OFFSET ^ 0xFFFF_FFC3).wrapping_mul(FNV_PRIME);
        let unsigned = (FNV_OFFSET ^ 0xC3).wrapping_mul(FNV_PRIME);
        assert_eq!(fnv(&[0xC3]), signed);
        assert_ne!(signed, unsigned);
    }

    #[test]
    fn char_ngrams_follow_characters_not_bytes() {
        let mut grams = Vec::new();
        let word = "<é>".as_bytes();
        for_each_char_ngram(word, 1, 3, |h| grams.push(h));
        // "é" alone (1 char, not at an edge), "<é", "<é>", "é>".
        let want = [
            fnv("é".as_bytes()),
            fnv("<é".as_bytes()),
            fnv("<é>".as_bytes()),
            fnv("é>".as_bytes()),
        ];
        let mut got = grams.clone();
        got.sort();
        let mut w = want.to_vec();
        w.sort();
        assert_eq!(got, w);
        assert_eq!(grams[0], fnv("<é".as_bytes()));
    }
}

//! The word tokeniser of the reference classifier: a run of letters and digits is one word (lowercased, every
//! decimal digit turned into `0`), every other non-space character (punctuation, symbols, and
//! each CJK / kana / hangul character) is a token of its own. No vocabulary is needed.

use super::model::token_hash;

/// Splits text into normalised tokens, reusing one buffer (no allocation per token).
#[derive(Default)]
pub struct WordTokenizer {
    word: String,
}

/// True for characters written without spaces between words (CJK ideographs, kana, hangul,
/// Thai): each is a token of its own.
fn is_unspaced_script(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0E7F      // Thai
        | 0x3040..=0x30FF    // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0x20000..=0x2FA1F) // CJK extensions B-F
}

impl WordTokenizer {
    /// A tokeniser with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls `f` with every token of `text`, in order.
    pub fn for_each_token(&mut self, text: &str, mut f: impl FnMut(&str)) {
        self.word.clear();
        for c in text.chars() {
            if c.is_alphanumeric() && !is_unspaced_script(c) {
                if c.is_ascii() {
                    let b = c as u8;
                    self.word.push(if b.is_ascii_digit() {
                        '0'
                    } else {
                        b.to_ascii_lowercase() as char
                    });
                } else if c.is_numeric() {
                    self.word.push('0');
                } else {
                    self.word.extend(c.to_lowercase());
                }
                continue;
            }
            if !self.word.is_empty() {
                f(&self.word);
                self.word.clear();
            }
            if !c.is_whitespace() && !c.is_control() {
                let mut buf = [0u8; 4];
                f(c.encode_utf8(&mut buf));
            }
        }
        if !self.word.is_empty() {
            f(&self.word);
            self.word.clear();
        }
    }

    /// Appends the 64-bit hash of every token of `text` to `out`.
    pub fn hash_tokens(&mut self, text: &str, out: &mut Vec<u64>) {
        self.for_each_token(text, |t| out.push(token_hash(t)));
    }

    /// The tokens of `text` joined by single spaces (the classifier's input form).
    pub fn normalized(&mut self, text: &str, out: &mut String) {
        out.clear();
        self.for_each_token(text, |t| {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(t);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        let mut v = Vec::new();
        WordTokenizer::new().for_each_token(s, |t| v.push(t.to_string()));
        v
    }

    #[test]
    fn words_are_lowercased_digits_zeroed_punctuation_split() {
        assert_eq!(
            toks("Hello, World! In 2024 Étienne's"),
            ["hello", ",", "world", "!", "in", "0000", "étienne", "'", "s"]
        );
        assert_eq!(toks("東京は大きい"), ["東", "京", "は", "大", "き", "い"]);
        assert!(toks("  \n\t ").is_empty());
    }

    #[test]
    fn normalized_joins_with_spaces() {
        let mut s = String::new();
        WordTokenizer::new().normalized("A  b.\nC", &mut s);
        assert_eq!(s, "a b . c");
    }
}

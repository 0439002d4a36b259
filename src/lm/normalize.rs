//! CCNet's line normalisation before SentencePiece and the language model (its
//! `normalize(line, accent=True, case=True, numbers=True, punct=1)`): trim, lower case, strip
//! accents (canonical decomposition, combining marks dropped), every decimal digit to `0`,
//! Unicode punctuation mapped to ASCII by a fixed table, then control characters (U+0000 to
//! U+001F and U+007F to U+009F) removed.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The Unicode punctuation CCNet replaces, and what with.
const PUNCT: [(char, &str); 34] = [
    ('，', ","),
    ('。', "."),
    ('、', ","),
    ('„', "\""),
    ('”', "\""),
    ('“', "\""),
    ('«', "\""),
    ('»', "\""),
    ('１', "\""),
    ('」', "\""),
    ('「', "\""),
    ('《', "\""),
    ('》', "\""),
    ('´', "'"),
    ('∶', ":"),
    ('：', ":"),
    ('？', "?"),
    ('！', "!"),
    ('（', "("),
    ('）', ")"),
    ('；', ";"),
    ('–', "-"),
    ('—', " - "),
    ('．', ". "),
    ('～', "~"),
    ('’', "'"),
    ('…', "..."),
    ('━', "-"),
    ('〈', "<"),
    ('〉', ">"),
    ('【', "["),
    ('】', "]"),
    ('％', "%"),
    ('►', "-"),
];

fn punct(c: char) -> Option<&'static str> {
    if c.is_ascii() {
        return None;
    }
    PUNCT.iter().find(|(p, _)| *p == c).map(|(_, r)| *r)
}

fn is_non_printing(c: char) -> bool {
    matches!(c as u32, 0..=31 | 127..=159)
}

/// Normalises one line into `out` (cleared first).
pub fn normalize_line(line: &str, out: &mut String) {
    out.clear();
    let line = line.trim();
    if line.is_ascii() {
        // Fast path: no accents, no Unicode digits or punctuation.
        for b in line.bytes() {
            let c = if b.is_ascii_digit() {
                '0'
            } else {
                b.to_ascii_lowercase() as char
            };
            if !is_non_printing(c) {
                out.push(c);
            }
        }
        return;
    }
    for c in line.chars().flat_map(char::to_lowercase).nfd() {
        if is_combining_mark(c) || is_non_printing(c) {
            continue;
        }
        if c.is_ascii_digit() || (!c.is_ascii() && is_decimal_digit(c)) {
            out.push('0');
        } else if let Some(r) = punct(c) {
            out.push_str(r);
        } else {
            out.push(c);
        }
    }
}

/// Non-ASCII decimal digits (general category Nd, which Python's `\d` matches: Arabic-Indic,
/// Devanagari, fullwidth, ...), each block a run of ten from its zero.
fn is_decimal_digit(c: char) -> bool {
    const ZEROS: [u32; 37] = [
        0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
        0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0,
        0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0,
        0xAA50, 0xABF0, 0xFF10, 0x1D7CE,
    ];
    let u = c as u32;
    ZEROS.iter().any(|&z| (z..z + 10).contains(&u))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        let mut out = String::new();
        normalize_line(s, &mut out);
        out
    }

    #[test]
    fn ccnet_rules() {
        assert_eq!(norm("  Hello World 2024!\t"), "hello world 0000!");
        assert_eq!(norm("Élève à Zürich, ça"), "eleve a zurich, ca");
        assert_eq!(
            norm("«Quoted» — dash… ５０％"),
            "\"quoted\"  -  dash... 00%"
        );
        assert_eq!(norm("a\u{7}b\u{85}c"), "abc");
        assert_eq!(norm("٣ apples"), "0 apples");
        assert_eq!(norm("東京（とうきょう）"), "東京(とうきょう)");
        assert_eq!(norm("It’s"), "it's");
    }
}

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
    push_normalized(line, out);
}

/// [`normalize_line`] without its ASCII shortcut: every character through the Unicode
/// tables (the reference the shortcut must equal).
pub fn normalize_line_unicode(line: &str, out: &mut String) {
    out.clear();
    push_normalized(line.trim(), out);
}

/// Appends the normalisation of an already trimmed line, character by character.
fn push_normalized(line: &str, out: &mut String) {
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
        assert_eq!(norm("ÀÉÎÕÜ Ça Ñ"), "aeiou ca n");
        assert_eq!(norm("１２３ ４.５"), "000 0.0");
        assert_eq!(norm("„a“ ‹b› 《c》 【d】"), "\"a\" ‹b› \"c\" [d]");
    }

    fn unicode(s: &str) -> String {
        let mut out = String::new();
        normalize_line_unicode(s, &mut out);
        out
    }

    /// Every line of the text samples, and hand-made ASCII lines with every ASCII character:
    /// the ASCII shortcut gives what the Unicode tables give.
    #[test]
    fn ascii_shortcut_equals_the_unicode_path() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
        let mut ascii_lines = 0;
        for file in [
            "books/Pride-and-Prejudice_1342/1342.txt",
            "books/The-Wonderful-Wizard-of-Oz_55/55.txt",
            "books/Italienische-Reise-Band-1_2404/2404-8.txt",
            "commoncrawl/cc_net/sample.warc.txt",
            "c4/dolma/cc_en_head-0091.jsonl",
            "stackexchange/french.meta/Posts.xml",
        ] {
            let bytes = std::fs::read(root.join(file)).unwrap();
            for line in String::from_utf8_lossy(&bytes).split('\n') {
                ascii_lines += usize::from(line.trim().is_ascii());
                assert_eq!(norm(line), unicode(line), "{file}: {line:?}");
            }
        }
        assert!(ascii_lines > 10_000, "{ascii_lines} ASCII lines");
        let all: String = (0u8..128).map(char::from).collect();
        let mut cases = vec![all.clone(), all.chars().rev().collect()];
        for a in 0u8..128 {
            for b in 0u8..128 {
                cases.push(format!(" {}x{}9 ", a as char, b as char));
            }
        }
        cases.extend(["", " ", "\t\r", "\u{7f}A\u{1f}", "Zz09 \x0b\x0c"].map(String::from));
        for case in &cases {
            assert_eq!(norm(case), unicode(case), "{case:?}");
        }
    }
}

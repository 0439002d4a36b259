//! Gopher quality rules (Rae et al. 2021, appendix A; defaults as in datatrove's
//! `GopherQualityFilter`): document length in words, mean word length, `#` and ellipsis ratios,
//! bullet and ellipsis-ending lines, alphabetic words and stop words.
//!
//! Words come from [`split_words`]; only tokens with at least one character that is not
//! punctuation count as words (datatrove does this for the length rules only). So the `#`,
//! ellipsis and alphabetic ratios are per word as in the Gopher paper, not per token: datatrove's
//! spaCy tokens include every comma and period, which drops clean prose (a CCNet "head" page in
//! samples/ has 77% alphabetic tokens but 94% alphabetic words). Lines are split at `\n` (a `\r`
//! before it is ignored). A parameter set to 0 turns its rule off.

use anyhow::Result;
use serde::Deserialize;

use super::words::{is_letter, is_punct, with_words, Word};
use crate::doc::Document;
use crate::run::config::parse_params;
use crate::stage::{DocPos, Stage, Verdict};

/// Parameters of `type = "gopher_quality"` (published defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GopherQualityConfig {
    /// Fewest non-symbol words (50).
    pub min_doc_words: usize,
    /// Most non-symbol words (100,000).
    pub max_doc_words: usize,
    /// Lowest mean length of non-symbol words, in characters (3).
    pub min_avg_word_length: f64,
    /// Highest mean length of non-symbol words (10).
    pub max_avg_word_length: f64,
    /// Highest ratio of `#` to words, and separately of `...`/`…` to words (0.1).
    pub max_symbol_word_ratio: f64,
    /// Highest fraction of lines starting with `•` or `-` after leading spaces (0.9).
    pub max_bullet_lines_ratio: f64,
    /// Highest fraction of lines ending with `...` or `…` (0.3).
    pub max_ellipsis_lines_ratio: f64,
    /// Lowest fraction of words containing an alphabetic character (0.8).
    pub max_non_alpha_words_ratio: f64,
    /// Fewest stop-word tokens (2).
    pub min_stop_words: usize,
    /// The stop words, matched case-sensitively (the, be, to, of, and, that, have, with).
    pub stop_words: Vec<String>,
}

impl Default for GopherQualityConfig {
    fn default() -> Self {
        GopherQualityConfig {
            min_doc_words: 50,
            max_doc_words: 100_000,
            min_avg_word_length: 3.0,
            max_avg_word_length: 10.0,
            max_symbol_word_ratio: 0.1,
            max_bullet_lines_ratio: 0.9,
            max_ellipsis_lines_ratio: 0.3,
            max_non_alpha_words_ratio: 0.8,
            min_stop_words: 2,
            stop_words: ["the", "be", "to", "of", "and", "that", "have", "with"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// The Gopher quality filter stage.
pub struct GopherQuality {
    config: GopherQualityConfig,
    /// Length in bytes of the longest stop word (shorter tokens are the only candidates).
    max_stop_len: usize,
}

impl GopherQuality {
    /// Builds the stage from its TOML parameters.
    pub fn from_params(params: &toml::Table) -> Result<Self> {
        Ok(Self::new(parse_params("gopher_quality", params)?))
    }

    /// The stage with the given configuration.
    pub fn new(config: GopherQualityConfig) -> Self {
        let max_stop_len = config.stop_words.iter().map(String::len).max().unwrap_or(0);
        GopherQuality {
            config,
            max_stop_len,
        }
    }

    /// Applies the rules to a text; `Err(reason)` names the first rule that fails.
    pub fn check(&self, text: &str) -> Result<(), &'static str> {
        with_words(text, |words| self.check_words(text, words))
    }

    fn check_words(&self, text: &str, words: &[Word]) -> Result<(), &'static str> {
        let c = &self.config;
        let mut non_symbol = 0usize;
        let mut non_symbol_chars = 0usize;
        let mut alpha_words = 0usize;
        let mut stop_words = 0usize;
        for w in words {
            let t = w.text(text);
            let mut has_non_punct = false;
            let mut has_alpha = false;
            for ch in t.chars() {
                if is_letter(ch) {
                    (has_alpha, has_non_punct) = (true, true);
                    break;
                }
                has_non_punct |= !is_punct(ch);
            }
            if has_non_punct {
                non_symbol += 1;
                non_symbol_chars += w.chars;
            }
            alpha_words += has_alpha as usize;
            if c.min_stop_words > 0
                && w.end - w.start <= self.max_stop_len
                && c.stop_words.iter().any(|s| s == t)
            {
                stop_words += 1;
            }
        }
        if c.min_doc_words > 0 && non_symbol < c.min_doc_words {
            return Err("gopher_short_doc");
        }
        if c.max_doc_words > 0 && non_symbol > c.max_doc_words {
            return Err("gopher_long_doc");
        }
        if non_symbol == 0 {
            return Err("gopher_short_doc");
        }
        let n_words = non_symbol;
        let avg = non_symbol_chars as f64 / non_symbol as f64;
        if c.min_avg_word_length > 0.0 && avg < c.min_avg_word_length {
            return Err("gopher_word_len_low");
        }
        if c.max_avg_word_length > 0.0 && avg > c.max_avg_word_length {
            return Err("gopher_word_len_high");
        }
        let bytes = text.as_bytes();
        if c.max_symbol_word_ratio > 0.0 {
            let hashes = memchr::memchr_iter(b'#', bytes).count();
            if hashes as f64 / n_words as f64 > c.max_symbol_word_ratio {
                return Err("gopher_too_many_hashes");
            }
            let ellipses = count_non_overlapping(bytes, b"...")
                + memchr::memmem::find_iter(bytes, "…".as_bytes()).count();
            if ellipses as f64 / n_words as f64 > c.max_symbol_word_ratio {
                return Err("gopher_too_many_ellipsis");
            }
        }
        if c.max_bullet_lines_ratio > 0.0 || c.max_ellipsis_lines_ratio > 0.0 {
            let (mut lines, mut bullets, mut ellipsis_ends) = (0usize, 0usize, 0usize);
            for line in text.lines() {
                lines += 1;
                let start = line.trim_start();
                bullets += (start.starts_with('•') || start.starts_with('-')) as usize;
                let end = line.trim_end();
                ellipsis_ends += (end.ends_with("...") || end.ends_with('…')) as usize;
            }
            let lines = lines.max(1) as f64;
            if c.max_bullet_lines_ratio > 0.0 && bullets as f64 / lines > c.max_bullet_lines_ratio {
                return Err("gopher_too_many_bullets");
            }
            if c.max_ellipsis_lines_ratio > 0.0
                && ellipsis_ends as f64 / lines > c.max_ellipsis_lines_ratio
            {
                return Err("gopher_too_many_end_ellipsis");
            }
        }
        if c.max_non_alpha_words_ratio > 0.0
            && (alpha_words as f64 / n_words as f64) < c.max_non_alpha_words_ratio
        {
            return Err("gopher_below_alpha_threshold");
        }
        if c.min_stop_words > 0 && stop_words < c.min_stop_words {
            return Err("gopher_few_stop_words");
        }
        Ok(())
    }
}

/// Non-overlapping occurrences of `needle` (Python's `str.count`).
fn count_non_overlapping(hay: &[u8], needle: &[u8]) -> usize {
    let mut n = 0;
    let mut at = 0;
    while let Some(i) = memchr::memmem::find(&hay[at..], needle) {
        n += 1;
        at += i + needle.len();
    }
    n
}

impl Stage for GopherQuality {
    fn name(&self) -> &str {
        "gopher_quality"
    }

    fn process(&self, doc: &mut Document, _pos: DocPos) -> Verdict {
        match self.check(&doc.text) {
            Ok(()) => Verdict::Keep,
            Err(reason) => Verdict::drop(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<(), &'static str> {
        GopherQuality::new(GopherQualityConfig::default()).check(text)
    }

    #[test]
    fn each_rule_has_its_reason() {
        let sentence = "The cat sat on the mat and looked at the birds with interest. ";
        let good = sentence.repeat(5);
        assert_eq!(check(&good), Ok(()));
        assert_eq!(check("The cat sat on the mat."), Err("gopher_short_doc"));
        assert_eq!(
            check(&"a an to of be ".repeat(20)),
            Err("gopher_word_len_low")
        );
        assert_eq!(
            check(&format!("{good}{}", "#tag ".repeat(20))),
            Err("gopher_too_many_hashes")
        );
        let bullets = "- the visitors admired the paintings with interest\n".repeat(10);
        assert_eq!(check(&bullets), Err("gopher_too_many_bullets"));
        let dots = format!("{good}\n{}", "and then the cat...\n".repeat(20));
        assert_eq!(check(&dots), Err("gopher_too_many_ellipsis"));
        let numbers = format!("{good} {}", "1234 5678 ".repeat(40));
        assert_eq!(check(&numbers), Err("gopher_below_alpha_threshold"));
        let no_stop = "Cats sat on mats looking at birds quite happily. ".repeat(8);
        assert_eq!(check(&no_stop), Err("gopher_few_stop_words"));
    }

    #[test]
    fn custom_stop_words_of_any_length() {
        let q = GopherQuality::new(GopherQualityConfig {
            min_doc_words: 0,
            stop_words: vec!["because".into(), "although".into()],
            ..Default::default()
        });
        assert_eq!(
            q.check("I stayed because it rained, although briefly."),
            Ok(())
        );
        assert_eq!(
            q.check("I stayed since it rained, though briefly."),
            Err("gopher_few_stop_words")
        );
    }

    #[test]
    fn zero_turns_a_rule_off() {
        let q = GopherQuality::new(GopherQualityConfig {
            min_doc_words: 0,
            min_stop_words: 0,
            ..Default::default()
        });
        assert_eq!(q.check("Cats sat on mats."), Ok(()));
        assert_eq!(q.check(""), Err("gopher_short_doc"));
    }
}

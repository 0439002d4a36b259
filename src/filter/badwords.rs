//! Stage `c4_badwords`: C4 dropped every page containing a word or phrase of the "List of
//! Dirty, Naughty, Obscene, and Otherwise Bad Words" (LDNOOBW). Matching is on the lowercased
//! text, whole words only (the match must not touch a letter, digit or `_` on either side), as
//! C4's `(?:\W|^)(words)(?:\W|$)` pattern did.
//!
//! The list is not in the repository: the Makefile fetches it from the npm package
//! `naughty-words` (LDNOOBW, CC-BY-4.0) into `models/badwords/en.txt`, one entry a line.

use std::path::PathBuf;

use aho_corasick::{AhoCorasick, MatchKind};
use anyhow::{ensure, Context, Result};
use serde::Deserialize;

use crate::doc::Document;
use crate::run::config::parse_params;
use crate::stage::{DocPos, Stage, Verdict};

fn default_words_file() -> PathBuf {
    PathBuf::from("models/badwords/en.txt")
}

/// Parameters of `type = "c4_badwords"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BadWordsConfig {
    /// Word list, one word or phrase a line, `#` comments (default `models/badwords/en.txt`).
    #[serde(default = "default_words_file")]
    pub words_file: PathBuf,
}

/// Drops documents containing a listed word or phrase (`c4_badwords`).
pub struct BadWordsFilter {
    matcher: AhoCorasick,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl BadWordsFilter {
    /// Builds the stage from its TOML parameters, reading the word list.
    pub fn from_params(params: &toml::Table) -> Result<Self> {
        let c: BadWordsConfig = parse_params("c4_badwords", params)?;
        let text = std::fs::read_to_string(&c.words_file).with_context(|| {
            format!(
                "stage `c4_badwords`: cannot read word list {} (`make setup` fetches it)",
                c.words_file.display()
            )
        })?;
        let words: Vec<String> = text
            .lines()
            .map(|l| l.trim().to_lowercase())
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        ensure!(
            !words.is_empty(),
            "stage `c4_badwords`: word list {} is empty",
            c.words_file.display()
        );
        Self::from_words(&words)
    }

    /// Builds the filter from lowercase words and phrases.
    pub fn from_words(words: &[String]) -> Result<Self> {
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(words)
            .context("cannot build the bad-words matcher")?;
        Ok(BadWordsFilter { matcher })
    }

    /// True when `text` contains a listed entry as whole words.
    pub fn matches(&self, text: &str) -> bool {
        let lower;
        let hay = if text.chars().any(char::is_uppercase) {
            lower = text.to_lowercase();
            &lower
        } else {
            text
        };
        self.matcher.find_overlapping_iter(hay).any(|m| {
            let before = hay[..m.start()].chars().next_back();
            let after = hay[m.end()..].chars().next();
            !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char)
        })
    }
}

impl Stage for BadWordsFilter {
    fn name(&self) -> &str {
        "c4_badwords"
    }

    fn process(&self, doc: &mut Document, _pos: DocPos) -> Verdict {
        if self.matches(&doc.text) {
            Verdict::drop("c4_badwords")
        } else {
            Verdict::Keep
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_only_case_insensitive() {
        let f = BadWordsFilter::from_words(&["darn".into(), "heck no".into()]).unwrap();
        assert!(f.matches("Well, DARN it."));
        assert!(f.matches("and heck no!"));
        assert!(!f.matches("darned socks"));
        assert!(!f.matches("heck not"));
        assert!(!f.matches("undarn"));
        assert!(f.matches("undarn darn"));
    }
}

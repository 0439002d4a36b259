//! C4's heuristic rules (Raffel et al. 2020; defaults as in datatrove's `C4QualityFilter`).
//!
//! Line rules remove lines: a line (stripped) is removed when it has a word longer than
//! `max_word_length`, does not end in terminal punctuation (`.`, `?`, `!`, `"`, `'`, but not
//! `...`) after Wikipedia citation marks (`[1]`, `[edit]`, `[citation needed]`) are removed,
//! has fewer than `min_words_per_line` whitespace-separated words, mentions `javascript`, or
//! mentions a cookie/terms/privacy policy phrase. Document rules drop: `lorem ipsum`
//! (`c4_lorem_ipsum`) or a `{` (`c4_curly_bracket`) in a kept line, or fewer than
//! `min_num_sentences` sentences in the kept lines (`c4_too_few_sentences`, counted with
//! [`count_sentences`]). Kept lines are joined with `\n`; `metadata.c4_lines_removed` counts the
//! removed lines. Phrase matching is ASCII case-insensitive.

use std::cell::RefCell;

use anyhow::Result;
use memchr::memmem;
use serde::Deserialize;

use super::sentences::count_sentences;
use super::words::char_len;
use crate::doc::Document;
use crate::run::config::parse_params;
use crate::stage::{DocPos, Stage, Verdict};

/// Parameters of `type = "c4_quality"` (C4 defaults). A count of 0 turns its rule off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct C4QualityConfig {
    /// Remove `[1]`, `[edit]`, `[citation needed]` before the other line rules (true).
    pub remove_citations: bool,
    /// Remove lines without terminal punctuation (true).
    pub filter_no_terminal_punct: bool,
    /// Fewest sentences in the kept lines (5).
    pub min_num_sentences: usize,
    /// Fewest words in a kept line (3).
    pub min_words_per_line: usize,
    /// Longest word, in characters, a kept line may have (1000).
    pub max_word_length: usize,
    /// Drop documents containing "lorem ipsum" (true).
    pub filter_lorem_ipsum: bool,
    /// Remove lines containing "javascript" (true).
    pub filter_javascript: bool,
    /// Drop documents containing `{` (true).
    pub filter_curly_bracket: bool,
    /// Remove lines with "terms of use", "privacy policy", "cookie policy", "uses cookies",
    /// "use of cookies" or "use cookies" (true).
    pub filter_policy: bool,
}

impl Default for C4QualityConfig {
    fn default() -> Self {
        C4QualityConfig {
            remove_citations: true,
            filter_no_terminal_punct: true,
            min_num_sentences: 5,
            min_words_per_line: 3,
            max_word_length: 1000,
            filter_lorem_ipsum: true,
            filter_javascript: true,
            filter_curly_bracket: true,
            filter_policy: true,
        }
    }
}

const POLICY: &[&str] = &[
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
];

/// The C4 quality stage.
pub struct C4Quality {
    config: C4QualityConfig,
    policy: Vec<memmem::Finder<'static>>,
    lorem: memmem::Finder<'static>,
    javascript: memmem::Finder<'static>,
}

/// What the C4 rules made of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum C4Outcome {
    /// Kept with this text, after removing this many lines.
    Keep(String, usize),
    /// Dropped for this reason.
    Drop(&'static str),
}

thread_local! {
    static LOWER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Removes `[digits]`, `[edit]` and `[citation needed]` (appends the rest to `out`).
fn remove_citations(line: &str, out: &mut String) {
    let bytes = line.as_bytes();
    let mut from = 0;
    let mut copied = 0;
    while let Some(i) = memchr::memchr(b'[', &bytes[from..]).map(|i| i + from) {
        let rest = &bytes[i + 1..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let len = if rest.get(digits) == Some(&b']') {
            Some(digits + 2)
        } else if rest.starts_with(b"edit]") {
            Some(6)
        } else if rest.starts_with(b"citation needed]") {
            Some(17)
        } else {
            None
        };
        match len {
            Some(n) => {
                out.push_str(&line[copied..i]);
                copied = i + n;
                from = i + n;
            }
            None => from = i + 1,
        }
    }
    out.push_str(&line[copied..]);
}

impl C4Quality {
    /// Builds the stage from its TOML parameters.
    pub fn from_params(params: &toml::Table) -> Result<Self> {
        Ok(Self::new(parse_params("c4_quality", params)?))
    }

    /// The stage with the given configuration.
    pub fn new(config: C4QualityConfig) -> Self {
        C4Quality {
            config,
            policy: POLICY
                .iter()
                .map(|p| memmem::Finder::new(p.as_bytes()))
                .collect(),
            lorem: memmem::Finder::new(b"lorem ipsum"),
            javascript: memmem::Finder::new(b"javascript"),
        }
    }

    /// Applies the line and document rules to a text.
    pub fn apply(&self, text: &str) -> C4Outcome {
        LOWER.with(|l| {
            let mut lower = l.borrow_mut();
            let r = self.apply_with(text, &mut lower);
            if lower.capacity() > 1 << 20 {
                *lower = Vec::new();
            }
            r
        })
    }

    fn apply_with(&self, text: &str, lower: &mut Vec<u8>) -> C4Outcome {
        let c = &self.config;
        let mut kept = String::with_capacity(text.len());
        let mut cleaned = String::new();
        let mut sentences = 0;
        let mut removed = 0;
        for raw in text.lines() {
            let line = raw.trim();
            let mut words = 0;
            let mut too_long = false;
            for w in line.split_whitespace() {
                words += 1;
                too_long |= c.max_word_length > 0
                    && w.len() > c.max_word_length
                    && char_len(w) > c.max_word_length;
            }
            if too_long {
                removed += 1;
                continue;
            }
            let line = if c.remove_citations && line.contains('[') {
                cleaned.clear();
                remove_citations(line, &mut cleaned);
                cleaned.as_str()
            } else {
                line
            };
            if c.filter_no_terminal_punct
                && (!line.ends_with(['.', '?', '!', '"', '\'']) || line.ends_with("..."))
            {
                removed += 1;
                continue;
            }
            if words < c.min_words_per_line {
                removed += 1;
                continue;
            }
            lower.clear();
            lower.extend(line.bytes().map(|b| b.to_ascii_lowercase()));
            if c.filter_lorem_ipsum && self.lorem.find(lower).is_some() {
                return C4Outcome::Drop("c4_lorem_ipsum");
            }
            if c.filter_javascript && self.javascript.find(lower).is_some() {
                removed += 1;
                continue;
            }
            if c.filter_curly_bracket && line.contains('{') {
                return C4Outcome::Drop("c4_curly_bracket");
            }
            if c.filter_policy && self.policy.iter().any(|f| f.find(lower).is_some()) {
                removed += 1;
                continue;
            }
            if c.min_num_sentences > 0 {
                sentences += count_sentences(line);
            }
            if !kept.is_empty() {
                kept.push('\n');
            }
            kept.push_str(line);
        }
        if sentences < c.min_num_sentences {
            return C4Outcome::Drop("c4_too_few_sentences");
        }
        let trimmed = kept.trim();
        if trimmed.len() != kept.len() {
            kept = trimmed.to_string();
        }
        C4Outcome::Keep(kept, removed)
    }
}

impl Stage for C4Quality {
    fn name(&self) -> &str {
        "c4_quality"
    }

    fn process(&self, doc: &mut Document, _pos: DocPos) -> Verdict {
        match self.apply(&doc.text) {
            C4Outcome::Drop(reason) => Verdict::drop(reason),
            C4Outcome::Keep(text, removed) => {
                if removed > 0 {
                    doc.set("c4_lines_removed", removed);
                }
                doc.text = text;
                Verdict::Keep
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c4() -> C4Quality {
        C4Quality::new(C4QualityConfig::default())
    }

    #[test]
    fn line_rules_remove_lines_and_citations() {
        let text = "Home | About | Contact\n\
                    The river flows through the old town.[1] It is long.[citation needed]\n\
                    Please enable JavaScript to view this page.\n\
                    This site uses cookies to improve your experience.\n\
                    Short one.\n\
                    Boats carry goods. Fishermen work at dawn. Markets open early.\n";
        match c4().apply(text) {
            C4Outcome::Keep(kept, removed) => {
                assert_eq!(
                    kept,
                    "The river flows through the old town. It is long.\n\
                     Boats carry goods. Fishermen work at dawn. Markets open early."
                );
                assert_eq!(removed, 4);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn document_rules_drop() {
        let five = "One is here. Two is here. Three is here. Four is here. Five is here.";
        assert!(matches!(c4().apply(five), C4Outcome::Keep(..)));
        let four = "One is here. Two is here. Three is here. Four is here.";
        assert_eq!(c4().apply(four), C4Outcome::Drop("c4_too_few_sentences"));
        let lorem = format!("{five}\nLorem ipsum dolor sit amet.");
        assert_eq!(c4().apply(&lorem), C4Outcome::Drop("c4_lorem_ipsum"));
        let code = format!("{five}\nfunction f() {{ return 1; }} is it.");
        assert_eq!(c4().apply(&code), C4Outcome::Drop("c4_curly_bracket"));
    }
}

//! Stage `c4_span_dedup`: C4's deduplication, "discarded all but one of any three-sentence span
//! occurring more than once in the data set". Every window of three consecutive sentences of a
//! document is hashed (sentences lowercased, whitespace collapsed); a span whose first
//! occurrence in the group (shard order, then stream order, so independent of threads) is
//! elsewhere, or earlier in the same document, has its three sentences removed. A document left
//! without sentences is dropped (`c4_duplicate_spans`). Documents of fewer than three
//! sentences have no span and pass unchanged.
//!
//! Sentences come from the splitter shared with the C4 sentence count
//! ([`crate::filter::sentences`]): a line end always ends one, and within a line a sentence ends
//! at `.`, `!`, `?` or `…` (with closing quotes/brackets) followed by whitespace and no lowercase
//! letter, except after an abbreviation or an initial.

use std::any::Any;

use anyhow::Result;
use serde::Deserialize;

use crate::dedup::{FirstSeenIndex, FirstSeenScanner};
use crate::doc::Document;
pub use crate::filter::sentences::{split_sentences, Sentence};
use crate::run::config::parse_params;
use crate::stage::{DocPos, Scanner, Stage, Verdict};

/// Sentences per span (C4: three).
pub const SPAN: usize = 3;

/// Parameters of `type = "c4_span_dedup"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanDedupConfig {
    /// Shards per dedup group; 0 = all shards of the run in one group.
    #[serde(default)]
    pub group_size: u32,
}

/// Removes three-sentence spans seen earlier in the group.
pub struct SpanDeduper {
    index: FirstSeenIndex,
}

/// Hash of one sentence: lowercased, runs of whitespace as one space.
fn sentence_hash(s: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut space = false;
    let mut buf = [0u8; 4];
    for c in s.chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space {
            h.update(b" ");
            space = false;
        }
        for l in c.to_lowercase() {
            h.update(l.encode_utf8(&mut buf).as_bytes());
        }
    }
    h.digest()
}

fn span_hash(hs: &[u64]) -> u64 {
    let mut bytes = [0u8; 8 * SPAN];
    for (i, h) in hs.iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&h.to_le_bytes());
    }
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

/// Hashes of every three-sentence window of a text, in order.
pub fn span_hashes(text: &str, sentences: &mut Vec<Sentence>, out: &mut Vec<u64>) {
    split_sentences(text, sentences);
    if sentences.len() < SPAN {
        return;
    }
    let hs: Vec<u64> = sentences
        .iter()
        .map(|s| sentence_hash(&text[s.start..s.end]))
        .collect();
    out.extend(hs.windows(SPAN).map(span_hash));
}

fn doc_span_hashes(doc: &Document, out: &mut Vec<u64>) {
    let mut sentences = Vec::new();
    span_hashes(&doc.text, &mut sentences, out);
}

impl SpanDeduper {
    /// Builds the stage from its TOML parameters.
    pub fn from_params(params: &toml::Table) -> Result<Self> {
        let c: SpanDedupConfig = parse_params("c4_span_dedup", params)?;
        Ok(SpanDeduper {
            index: FirstSeenIndex::new(c.group_size),
        })
    }
}

impl Stage for SpanDeduper {
    fn name(&self) -> &str {
        "c4_span_dedup"
    }

    fn scanner(&self) -> Option<Box<dyn Scanner>> {
        Some(Box::new(FirstSeenScanner::new(doc_span_hashes)))
    }

    fn dedup_group_size(&self) -> Option<u32> {
        Some(self.index.group_size())
    }

    fn absorb(&mut self, scans: Vec<(u32, Box<dyn Any + Send>)>) -> Result<()> {
        self.index.absorb(scans)
    }

    fn process(&self, doc: &mut Document, pos: DocPos) -> Verdict {
        let mut sentences = Vec::new();
        let mut spans = Vec::new();
        span_hashes(&doc.text, &mut sentences, &mut spans);
        if spans.is_empty() {
            return Verdict::Keep;
        }
        let mut removed = vec![false; sentences.len()];
        let mut seen_here: std::collections::HashSet<u64> =
            std::collections::HashSet::with_capacity(spans.len());
        for (i, &h) in spans.iter().enumerate() {
            let new_here = seen_here.insert(h);
            let first = self.index.is_first(h, pos) && new_here;
            if !first {
                removed[i..i + SPAN].iter_mut().for_each(|r| *r = true);
            }
        }
        let n_removed = removed.iter().filter(|&&r| r).count();
        if n_removed == 0 {
            return Verdict::Keep;
        }
        if n_removed == sentences.len() {
            return Verdict::drop("c4_duplicate_spans");
        }
        // Rebuild: kept sentences, space-joined within a line, lines joined by '\n'.
        let mut out = String::with_capacity(doc.text.len());
        let mut last_line = None;
        for (s, r) in sentences.iter().zip(&removed) {
            if *r {
                continue;
            }
            match last_line {
                Some(l) if l == s.line => out.push(' '),
                Some(_) => out.push('\n'),
                None => {}
            }
            out.push_str(&doc.text[s.start..s.end]);
            last_line = Some(s.line);
        }
        doc.text = out;
        doc.set("c4_sentences_removed", n_removed as u64);
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::sentences::count_sentences;

    #[test]
    fn spans_use_the_sentences_the_c4_count_sees() {
        // The abbreviation and the initial do not end sentences: three sentences, one span.
        let text = "Mr. Smith came home. J. Watson sat down. They both left.";
        let (mut sentences, mut spans) = (Vec::new(), Vec::new());
        span_hashes(text, &mut sentences, &mut spans);
        assert_eq!(sentences.len(), 3);
        assert_eq!(count_sentences(text), 3);
        assert_eq!(spans.len(), 1);
        // Case and spacing do not change a span's hash.
        let mut again = Vec::new();
        span_hashes(
            "MR. SMITH came   home. J. Watson sat down. They both left.",
            &mut sentences,
            &mut again,
        );
        assert_eq!(again, spans);
    }
}

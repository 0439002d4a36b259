//! CCNet-style line deduplication: a line is removed when its normalised form already occurred
//! earlier in the dedup group (default: every shard of the run; CCNet used 50 shards).

use std::any::Any;
use std::sync::OnceLock;

use anyhow::Result;
use serde::Deserialize;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use std::hash::BuildHasherDefault;

use super::FirstSeenScanner;
use super::{FirstSeenIndex, PassThroughHasher};
use crate::doc::Document;
use crate::run::config::parse_params;
use crate::stage::{DocPos, Scanner, Stage, Verdict};

/// Parameters of `type = "line_dedup"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineDedupConfig {
    /// Shards per dedup group; 0 = all shards of the run in one group.
    #[serde(default)]
    pub group_size: u32,
}

/// Removes lines seen earlier in the group (first occurrence kept).
pub struct LineDeduper {
    index: FirstSeenIndex,
}

impl LineDeduper {
    /// Builds the stage from its TOML parameters.
    pub fn from_params(params: &toml::Table) -> Result<Self> {
        let c: LineDedupConfig = parse_params("line_dedup", params)?;
        Ok(LineDeduper {
            index: FirstSeenIndex::new(c.group_size),
        })
    }

    /// Distinct line hashes held after the scan.
    pub fn distinct_lines(&self) -> usize {
        self.index.len()
    }
}

/// CCNet's line normalisation: lowercase, accents stripped, digits to `0`, punctuation removed,
/// whitespace collapsed and trimmed. Writes into `out` (cleared first).
pub fn normalize_line(line: &str, out: &mut String) {
    out.clear();
    let mut pending_space = false;
    let mut push = |c: char, out: &mut String| {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    };
    if line.is_ascii() {
        for b in line.bytes() {
            let c = b as char;
            if c.is_ascii_digit() {
                push('0', out);
            } else if c.is_ascii_punctuation() {
                continue;
            } else {
                push(c.to_ascii_lowercase(), out);
            }
        }
        return;
    }
    for c in line.nfd() {
        if is_combining_mark(c) || is_punctuation(c) {
            continue;
        }
        if is_decimal_digit(c) {
            push('0', out);
        } else if c.is_uppercase() {
            for l in c.to_lowercase() {
                push(l, out);
            }
        } else {
            push(c, out);
        }
    }
}

/// Unicode punctuation (general categories P*) and the ASCII symbols CCNet strips.
fn is_punctuation(c: char) -> bool {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    if c.is_ascii() {
        return c.is_ascii_punctuation();
    }
    let re = RE.get_or_init(|| regex::Regex::new(r"^\p{P}$").expect("static regex"));
    let mut buf = [0u8; 4];
    re.is_match(c.encode_utf8(&mut buf))
}

/// Unicode decimal digits (general category Nd), as Python's `\d` in CCNet.
fn is_decimal_digit(c: char) -> bool {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    let re = RE.get_or_init(|| regex::Regex::new(r"^\p{Nd}$").expect("static regex"));
    let mut buf = [0u8; 4];
    re.is_match(c.encode_utf8(&mut buf))
}

/// xxh3-64 of a normalised line.
pub fn line_hash(normalized: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(normalized.as_bytes())
}

fn doc_line_hashes(doc: &Document, out: &mut Vec<u64>) {
    let mut norm = String::new();
    for line in doc.text.split('\n') {
        normalize_line(line, &mut norm);
        if !norm.is_empty() {
            out.push(line_hash(&norm));
        }
    }
}

impl Stage for LineDeduper {
    fn name(&self) -> &str {
        "line_dedup"
    }

    fn scanner(&self) -> Option<Box<dyn Scanner>> {
        Some(Box::new(FirstSeenScanner::new(doc_line_hashes)))
    }

    fn dedup_group_size(&self) -> Option<u32> {
        Some(self.index.group_size())
    }

    fn absorb(&mut self, scans: Vec<(u32, Box<dyn Any + Send>)>) -> Result<()> {
        self.index.absorb(scans)
    }

    fn process(&self, doc: &mut Document, pos: DocPos) -> Verdict {
        let mut norm = String::new();
        let mut seen_here = std::collections::HashSet::with_capacity_and_hasher(
            64,
            BuildHasherDefault::<PassThroughHasher>::default(),
        );
        let mut out = String::with_capacity(doc.text.len());
        let mut removed = 0u64;
        let mut kept_content = false;
        let mut any_content = false;
        for line in doc.text.split('\n') {
            normalize_line(line, &mut norm);
            if norm.is_empty() {
                if !out.is_empty() {
                    out.push_str(line);
                    out.push('\n');
                }
                continue;
            }
            any_content = true;
            let h = line_hash(&norm);
            if self.index.is_first(h, pos) && seen_here.insert(h) {
                out.push_str(line);
                out.push('\n');
                kept_content = true;
            } else {
                removed += 1;
            }
        }
        if !any_content {
            return Verdict::drop("no_text");
        }
        if !kept_content {
            return Verdict::drop("all_lines_duplicate");
        }
        let trimmed = out.trim_end_matches(['\n', ' ', '\t', '\r']).len();
        out.truncate(trimmed);
        if removed > 0 {
            doc.set("dedup_lines_removed", removed);
        }
        doc.text = out;
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_matches_ccnet_rules() {
        let mut s = String::new();
        normalize_line("  Héllo,   WORLD! 2024 ", &mut s);
        assert_eq!(s, "hello world 0000");
        normalize_line("Ça coûte 12,50 €.", &mut s);
        assert_eq!(s, "ca coute 0000 €");
        normalize_line("«Привет», мир…", &mut s);
        assert_eq!(s, "привет мир");
    }

    fn scan(stage: &mut LineDeduper, shards: &[&[&str]]) {
        let mut scans = Vec::new();
        for (s, docs) in shards.iter().enumerate() {
            let mut sc = stage.scanner().unwrap();
            for (i, t) in docs.iter().enumerate() {
                sc.observe(
                    &Document::new("", *t, ""),
                    DocPos {
                        shard: s as u32,
                        index: i as u64,
                    },
                );
            }
            scans.push((s as u32, sc.finish()));
        }
        stage.absorb(scans).unwrap();
    }

    #[test]
    fn keeps_first_occurrence_in_shard_order() {
        let mut st = LineDeduper::from_params(&toml::Table::new()).unwrap();
        scan(
            &mut st,
            &[
                &["Cookie notice\nfirst page"],
                &["cookie NOTICE!\nsecond page\nsecond page"],
            ],
        );
        let mut a = Document::new("a", "Cookie notice\nfirst page", "");
        assert_eq!(
            st.process(&mut a, DocPos { shard: 0, index: 0 }),
            Verdict::Keep
        );
        assert_eq!(a.text, "Cookie notice\nfirst page");
        let mut b = Document::new("b", "cookie NOTICE!\nsecond page\nsecond page", "");
        assert_eq!(
            st.process(&mut b, DocPos { shard: 1, index: 0 }),
            Verdict::Keep
        );
        assert_eq!(b.text, "second page");
        assert_eq!(b.metadata["dedup_lines_removed"], 2);
        let mut c = Document::new("c", "first page", "");
        let v = st.process(&mut c, DocPos { shard: 1, index: 1 });
        assert_eq!(v, Verdict::drop("all_lines_duplicate"));
    }

    #[test]
    fn groups_are_independent() {
        let mut p = toml::Table::new();
        p.insert("group_size".into(), toml::Value::Integer(1));
        let mut st = LineDeduper::from_params(&p).unwrap();
        scan(&mut st, &[&["same line"], &["same line"]]);
        let mut b = Document::new("b", "same line", "");
        assert_eq!(
            st.process(&mut b, DocPos { shard: 1, index: 0 }),
            Verdict::Keep
        );
    }
}

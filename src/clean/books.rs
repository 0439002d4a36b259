//! Project Gutenberg header and licence-footer removal (`type = "gutenberg_strip"`).
//!
//! Recognised forms:
//! * modern: `*** START OF THIS/THE PROJECT GUTENBERG EBOOK ... ***` and `*** END OF ... ***`,
//!   with `End of the Project Gutenberg EBook of ...` lines just before the end marker;
//! * old (before 2001): a header closed by `*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*...`,
//!   and a body closed by `End of (The) Project Gutenberg Etext ...` (or the German
//!   `Ende dieses Projekt Gutenberg Etextes`), or by a small print placed at the end.
//!
//! Title, author and language come from the `Title:`, `Author:` and `Language:` header lines,
//! else from the first line (`The Project Gutenberg EBook of TITLE, by AUTHOR`) and a
//! `This book is written in LANGUAGE.` line. Texts without any Gutenberg marker (Books3) pass
//! unchanged.

use anyhow::Result;
use serde::Deserialize;

use crate::doc::Document;
use crate::run::config::parse_params;
use crate::stage::{DocPos, Stage, Verdict};

/// What was found in a Project Gutenberg text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GutenbergParts {
    /// Byte range of the book's own text.
    pub body: std::ops::Range<usize>,
    /// Title from the header.
    pub title: Option<String>,
    /// Author from the header.
    pub author: Option<String>,
    /// Language name as written in the header (`English`, `German`).
    pub language_name: Option<String>,
    /// True when a header marker was found.
    pub header_found: bool,
    /// True when a footer marker was found.
    pub footer_found: bool,
}

/// How far into a text header fields and the first line are looked for.
const HEADER_SCAN_BYTES: usize = 64 << 10;

fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.len() >= needle.len()
        && hay
            .as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn starts_ci(hay: &str, prefix: &str) -> bool {
    hay.len() >= prefix.len()
        && hay.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Lines of `text` with their byte start offsets (line without its `\n`/`\r`).
fn lines_with_offsets(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut at = 0;
    text.split_inclusive('\n').map(move |l| {
        let start = at;
        at += l.len();
        (start, l.trim_end_matches(['\n', '\r']))
    })
}

fn is_header_end(line: &str) -> bool {
    let t = line.trim_start_matches([' ', '*']);
    (starts_ci(t, "START OF THIS PROJECT GUTENBERG")
        || starts_ci(t, "START OF THE PROJECT GUTENBERG")
        || (starts_ci(t, "START OF") && contains_ci(t, "PROJECT GUTENBERG")))
        || squeezed_starts(line, "ENDTHESMALLPRINT")
}

/// True when `line` without `*` and spaces starts with `prefix` (ASCII, case-insensitive):
/// the small-print markers come as `*END*THE SMALL PRINT!` and `***START**THE SMALL PRINT!`.
fn squeezed_starts(line: &str, prefix: &str) -> bool {
    let mut want = prefix.bytes();
    for b in line.bytes().filter(|b| *b != b'*' && *b != b' ') {
        match want.next() {
            None => return true,
            Some(w) if w.eq_ignore_ascii_case(&b) => {}
            Some(_) => return false,
        }
    }
    want.next().is_none()
}

fn is_footer_start(line: &str) -> bool {
    let t = line.trim_start_matches([' ', '*']);
    (starts_ci(t, "END OF") && contains_ci(t, "PROJECT GUTENBERG"))
        || starts_ci(line.trim_start(), "End of the Project Gutenberg")
        || starts_ci(line.trim_start(), "End of Project Gutenberg")
        || starts_ci(line.trim_start(), "Ende dieses Projekt Gutenberg")
        || starts_ci(line.trim_start(), "Ende des Projekt Gutenberg")
        || squeezed_starts(line, "STARTTHESMALLPRINT")
}

/// Lines at the very start of the body that are still Gutenberg matter (credits, a repeated
/// "Project Gutenberg Etext of" title line).
fn is_leading_credit(line: &str) -> bool {
    let t = line.trim();
    contains_ci(t, "Project Gutenberg")
        || starts_ci(t, "Produced by")
        || starts_ci(t, "This etext was prepared by")
        || starts_ci(t, "This eBook was prepared by")
        || starts_ci(t, "This eBook was produced by")
        || starts_ci(t, "E-text prepared by")
        || starts_ci(t, "Transcribed by")
}

fn field(line: &str, name: &str) -> Option<String> {
    let t = line.trim();
    if starts_ci(t, name) && t[name.len()..].starts_with(':') {
        let v = t[name.len() + 1..].trim();
        (!v.is_empty()).then(|| v.to_string())
    } else {
        None
    }
}

/// Finds the book's text and header fields; `None` when there is no Gutenberg marker at all.
pub fn find_gutenberg_parts(text: &str) -> Option<GutenbergParts> {
    let mut parts = GutenbergParts {
        body: 0..text.len(),
        ..Default::default()
    };
    let head_limit = floor_char_boundary(text, HEADER_SCAN_BYTES);
    let mut first_line: Option<(&str, Option<&str>)> = None;
    for (start, line) in lines_with_offsets(&text[..head_limit]) {
        if line.trim().is_empty() {
            continue;
        }
        if first_line.is_none() {
            first_line = Some((line, None));
        } else if let Some((l, None)) = first_line {
            first_line = Some((l, Some(line)));
        }
        if parts.title.is_none() {
            parts.title = field(line, "Title");
        }
        if parts.author.is_none() {
            parts.author = field(line, "Author");
        }
        if parts.language_name.is_none() {
            parts.language_name = field(line, "Language").or_else(|| written_in(line));
        }
        if is_header_end(line) {
            parts.header_found = true;
            parts.body.start = start + line.len();
            break;
        }
    }
    if let Some((first, second)) = first_line {
        if contains_ci(first, "Project Gutenberg") {
            let (t, a) = title_from_first_line(first, second);
            parts.title = parts.title.take().or(t);
            parts.author = parts.author.take().or(a);
        }
    }
    if !parts.header_found && !contains_ci(&text[..head_limit], "Project Gutenberg") {
        return None;
    }
    // Footer: the first footer marker after the body start.
    for (start, line) in lines_with_offsets(&text[parts.body.start..]) {
        if start > 0 && is_footer_start(line) {
            parts.footer_found = true;
            parts.body.end = parts.body.start + start;
            break;
        }
    }
    // Drop credit lines at the start of the body.
    let mut begin = parts.body.start;
    for (start, line) in lines_with_offsets(&text[parts.body.clone()]) {
        if line.trim().is_empty() || parts.body.start + start < begin {
            continue;
        }
        if is_leading_credit(line) {
            // Skip the credit's whole paragraph.
            let rest = &text[parts.body.start + start..parts.body.end];
            let para_end = rest
                .find("\n\n")
                .or_else(|| rest.find("\r\n\r\n"))
                .unwrap_or(rest.len());
            begin = parts.body.start + start + para_end;
            continue;
        }
        break;
    }
    if begin > parts.body.start && begin <= parts.body.end {
        parts.body.start = begin;
    }
    if !parts.header_found && !parts.footer_found {
        return None;
    }
    Some(parts)
}

fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut i = at.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn written_in(line: &str) -> Option<String> {
    let t = line.trim();
    let marker = "This book is written in ";
    if starts_ci(t, marker) {
        let v = t[marker.len()..].trim_end_matches('.').trim();
        return (!v.is_empty()).then(|| v.to_string());
    }
    None
}

/// `The Project Gutenberg EBook of TITLE, by AUTHOR` (or `by AUTHOR` on the next line).
fn title_from_first_line(first: &str, second: Option<&str>) -> (Option<String>, Option<String>) {
    let line = first.trim().trim_matches(['*', ' ']);
    let lower = line.to_ascii_lowercase();
    let Some(of) = lower.find(" of ") else {
        return (None, None);
    };
    if !lower[..of].contains("project gutenberg") {
        return (None, None);
    }
    let rest = line[of + 4..].trim();
    let (title, mut author) = match rest.rfind(", by ").or_else(|| rest.rfind(" by ")) {
        Some(i) => {
            let by = if rest[i..].starts_with(", by ") { 5 } else { 4 };
            (rest[..i].trim(), Some(rest[i + by..].trim().to_string()))
        }
        None => (rest, None),
    };
    if author.is_none() {
        if let Some(s) = second {
            let s = s.trim();
            if starts_ci(s, "by ") {
                author = Some(s[3..].trim().to_string());
            }
        }
    }
    let title = (!title.is_empty()).then(|| title.to_string());
    (title, author.filter(|a| !a.is_empty()))
}

/// ISO 639-1 code of a language name as Gutenberg headers write it (`English` → `en`).
pub fn language_code(name: &str) -> Option<&'static str> {
    const NAMES: &[(&str, &str)] = &[
        ("english", "en"),
        ("german", "de"),
        ("french", "fr"),
        ("spanish", "es"),
        ("italian", "it"),
        ("dutch", "nl"),
        ("portuguese", "pt"),
        ("finnish", "fi"),
        ("swedish", "sv"),
        ("danish", "da"),
        ("norwegian", "no"),
        ("polish", "pl"),
        ("russian", "ru"),
        ("hungarian", "hu"),
        ("czech", "cs"),
        ("latin", "la"),
        ("greek", "el"),
        ("chinese", "zh"),
        ("japanese", "ja"),
        ("esperanto", "eo"),
        ("catalan", "ca"),
        ("tagalog", "tl"),
        ("welsh", "cy"),
        ("icelandic", "is"),
        ("romanian", "ro"),
        ("bulgarian", "bg"),
        ("ukrainian", "uk"),
        ("serbian", "sr"),
        ("croatian", "hr"),
        ("slovenian", "sl"),
    ];
    let n = name.trim().to_ascii_lowercase();
    NAMES.iter().find(|(k, _)| *k == n).map(|(_, v)| *v)
}

/// Parameters of `type = "gutenberg_strip"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GutenbergStripConfig {
    /// Drop texts that have no Gutenberg marker (`not_gutenberg`) instead of passing them on
    /// (default false: Books3 texts pass unchanged).
    #[serde(default)]
    pub require_markers: bool,
}

/// Removes the Project Gutenberg header and licence footer; title, author and language go into
/// metadata (`title`, `author`, `language` as an ISO code when known, `language_name`).
pub struct GutenbergStrip {
    config: GutenbergStripConfig,
}

impl GutenbergStrip {
    /// Builds the stage from its TOML parameters.
    pub fn from_params(params: &toml::Table) -> Result<Self> {
        Ok(GutenbergStrip {
            config: parse_params("gutenberg_strip", params)?,
        })
    }
}

impl Stage for GutenbergStrip {
    fn name(&self) -> &str {
        "gutenberg_strip"
    }

    fn process(&self, doc: &mut Document, _pos: DocPos) -> Verdict {
        let Some(parts) = find_gutenberg_parts(&doc.text) else {
            return if self.config.require_markers {
                Verdict::drop("not_gutenberg")
            } else {
                Verdict::Keep
            };
        };
        let body = doc.text[parts.body.clone()].trim_matches(['\n', '\r', ' ', '\t']);
        if body.is_empty() {
            return Verdict::drop("empty_after_strip");
        }
        doc.text = body.to_string();
        if let Some(t) = parts.title {
            doc.set("title", t);
        }
        if let Some(a) = parts.author {
            doc.set("author", a);
        }
        if let Some(l) = parts.language_name {
            if let Some(code) = language_code(&l) {
                doc.set("language", code);
            }
            doc.set("language_name", l);
        }
        doc.set("gutenberg_header", parts.header_found);
        doc.set("gutenberg_footer", parts.footer_found);
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODERN: &str = "The Project Gutenberg EBook of Emma, by Jane Austen\n\nTitle: Emma\n\nAuthor: Jane Austen\n\nLanguage: English\n\n*** START OF THIS PROJECT GUTENBERG EBOOK EMMA ***\n\n\n\nProduced by An Anonymous Volunteer\n\n\n\n\nEMMA\n\nVOLUME I\n\nEmma Woodhouse, handsome, clever, and rich.\n\nEnd of the Project Gutenberg EBook of Emma, by Jane Austen\n\n*** END OF THIS PROJECT GUTENBERG EBOOK EMMA ***\n\nThe licence text.\n";

    #[test]
    fn modern_header_and_footer() {
        let p = find_gutenberg_parts(MODERN).unwrap();
        assert_eq!(
            &MODERN[p.body.clone()].trim(),
            &"EMMA\n\nVOLUME I\n\nEmma Woodhouse, handsome, clever, and rich."
        );
        assert_eq!(p.title.as_deref(), Some("Emma"));
        assert_eq!(p.author.as_deref(), Some("Jane Austen"));
        assert_eq!(p.language_name.as_deref(), Some("English"));
    }

    #[test]
    fn old_small_print_header() {
        let t = "The Project Gutenberg Etext of Faust\nby Johann Wolfgang Goethe\n\nThis book is written in German.\n\n***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***\nlawyers\n*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\nThis etext was prepared by someone.\n\nHabe nun, ach! Philosophie\n\nEnde dieses Projekt Gutenberg Etextes \"Faust\"\n";
        let p = find_gutenberg_parts(t).unwrap();
        assert_eq!(t[p.body.clone()].trim(), "Habe nun, ach! Philosophie");
        assert_eq!(p.title.as_deref(), Some("Faust"));
        assert_eq!(p.author.as_deref(), Some("Johann Wolfgang Goethe"));
        assert_eq!(
            language_code(p.language_name.as_deref().unwrap()),
            Some("de")
        );
    }

    #[test]
    fn text_without_markers_passes_unchanged() {
        assert_eq!(
            find_gutenberg_parts("Chapter 1\n\nIt was a dark night."),
            None
        );
        let st = GutenbergStrip::from_params(&toml::Table::new()).unwrap();
        let mut d = Document::new("b", "Chapter 1\n\nIt was a dark night.", "books");
        assert_eq!(
            st.process(&mut d, DocPos { shard: 0, index: 0 }),
            Verdict::Keep
        );
        assert_eq!(d.text, "Chapter 1\n\nIt was a dark night.");
        let mut strict = toml::Table::new();
        strict.insert("require_markers".into(), true.into());
        let st = GutenbergStrip::from_params(&strict).unwrap();
        assert_eq!(
            st.process(&mut d, DocPos { shard: 0, index: 0 }),
            Verdict::drop("not_gutenberg")
        );
    }

    #[test]
    fn stage_sets_metadata() {
        let st = GutenbergStrip::from_params(&toml::Table::new()).unwrap();
        let mut d = Document::new("b", MODERN, "books");
        assert_eq!(
            st.process(&mut d, DocPos { shard: 0, index: 0 }),
            Verdict::Keep
        );
        assert!(d.text.starts_with("EMMA"));
        assert!(!d.text.contains("Gutenberg"));
        assert_eq!(d.meta_str("language"), Some("en"));
        assert_eq!(d.meta_str("title"), Some("Emma"));
    }
}

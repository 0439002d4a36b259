//! Reads the reference and negative texts the quality models are trained on, as documents.
//!
//! By file name: `*.jsonl`, `*.json` (optionally `.gz`/`.zst`/`.bz2`) are JSON lines with a
//! `text` field (datamill shards, C4, dolma); `*.warc*` / `*.wet*` go through the `warc` / `wet`
//! pipeline readers; `*.xml` (optionally compressed) is a MediaWiki dump (also recognised by its
//! first bytes) whose prose is extracted ([`super::wikitext`]); anything else is plain text, cut
//! at blank lines into paragraphs (hard-wrapped lines joined), grouped into documents of about
//! [`PLAIN_DOC_BYTES`]. Non-UTF-8 plain text is decoded as Windows-1252. Folders are read
//! recursively in name order. With `reader = Some(name)`, every file goes through that
//! pipeline reader instead (for example `wikipedia` or `warc`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::doc::{open_decompressed, JsonlReader};

/// Plain text is grouped into documents of about this many bytes.
pub const PLAIN_DOC_BYTES: usize = 4096;
/// A paragraph longer than this is cut (plain text without blank lines stays bounded).
const MAX_PARAGRAPH: usize = 64 << 10;

/// Expands files, folders (recursively) and globs into a sorted list of files, like a
/// pipeline's `[input] paths`; a plain path that does not exist is an error.
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut patterns = Vec::with_capacity(inputs.len());
    for input in inputs {
        let s = input.to_string_lossy().into_owned();
        if !s.contains(['*', '?', '[']) && !input.exists() {
            anyhow::bail!("input {} does not exist", input.display());
        }
        patterns.push(s);
    }
    crate::run::runner::expand_inputs(&patterns)
}

fn stem_has(path: &Path, ext: &str) -> bool {
    let name = crate::doc::file_name(path);
    let name = name
        .trim_end_matches(".gz")
        .trim_end_matches(".zst")
        .trim_end_matches(".bz2");
    name.ends_with(ext)
}

/// Keeps only documents of one language: `(metadata field, language)`. Documents without the
/// field (plain text, Wikipedia prose, unlabelled JSONL) are kept.
pub type LanguageFilter<'a> = Option<(&'a str, &'a str)>;

fn wanted(doc: &crate::doc::Document, language: LanguageFilter) -> bool {
    language.is_none_or(|(field, lang)| doc.meta_str(field).is_none_or(|l| l == lang))
}

/// Calls `f` with the text of every document in `path`.
pub fn for_each_document(
    path: &Path,
    reader: Option<&str>,
    language: LanguageFilter,
    f: &mut dyn FnMut(&str),
) -> Result<()> {
    // WARC / WET files go through the pipeline readers (HTML to text for WARC responses).
    let by_name = if stem_has(path, ".wet") || stem_has(path, ".warc.wet") {
        Some("wet")
    } else if stem_has(path, ".warc") {
        Some("warc")
    } else {
        None
    };
    if let Some(name) = reader.or(by_name) {
        let r = crate::sources::build_reader(name, &toml::Table::new())?;
        for rec in r.read(path, "reference")? {
            match rec {
                Ok(doc) if wanted(&doc, language) => f(&doc.text),
                Ok(_) => {}
                Err(e) if e.fatal => {
                    return Err(anyhow::anyhow!("{}: {e}", path.display()));
                }
                Err(_) => {}
            }
        }
        return Ok(());
    }
    if stem_has(path, ".jsonl") || stem_has(path, ".json") {
        for (_, rec) in JsonlReader::open(path)? {
            match rec {
                Ok(doc) if wanted(&doc, language) => f(&doc.text),
                Ok(_) => {}
                Err(e) if e.fatal => return Err(anyhow::anyhow!("{}: {e}", path.display())),
                Err(_) => {}
            }
        }
        return Ok(());
    }
    let mut input = BufReader::with_capacity(1 << 16, open_decompressed(path)?);
    if stem_has(path, ".xml") || looks_like_mediawiki(&mut input) {
        return super::wikitext::for_each_page(input, |p| f(p))
            .with_context(|| format!("cannot read {}", path.display()));
    }
    plain_text_documents(input, f).with_context(|| format!("cannot read {}", path.display()))
}

/// True when the stream starts (after blanks) with `<mediawiki` or an XML declaration.
fn looks_like_mediawiki(input: &mut impl BufRead) -> bool {
    let Ok(head) = input.fill_buf() else {
        return false;
    };
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let head = &head[start..];
    head.starts_with(b"<mediawiki") || head.starts_with(b"<?xml")
}

fn decode(raw: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(raw) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => encoding_rs::WINDOWS_1252.decode_without_bom_handling(raw).0,
    }
}

/// Cuts plain text into paragraphs (one line each) grouped into documents.
pub fn plain_text_documents(mut input: impl BufRead, f: &mut dyn FnMut(&str)) -> Result<()> {
    let mut raw = Vec::new();
    let mut para = String::new();
    let mut doc = String::new();
    let end_para = |para: &mut String, doc: &mut String, f: &mut dyn FnMut(&str)| {
        if !para.is_empty() {
            doc.push_str(para);
            doc.push('\n');
            para.clear();
        }
        if doc.len() >= PLAIN_DOC_BYTES {
            f(doc.trim_end());
            doc.clear();
        }
    };
    loop {
        raw.clear();
        if input.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        let line = decode(&raw);
        let line = line.trim();
        if line.is_empty() || para.len() > MAX_PARAGRAPH {
            end_para(&mut para, &mut doc, f);
        }
        if !line.is_empty() {
            if !para.is_empty() {
                para.push(' ');
            }
            para.push_str(line);
        }
    }
    end_para(&mut para, &mut doc, f);
    if !doc.trim().is_empty() {
        f(doc.trim_end());
    }
    Ok(())
}

/// Calls `f` with every document of every input (files, folders, globs).
pub fn for_each_input_document(
    inputs: &[PathBuf],
    reader: Option<&str>,
    language: LanguageFilter,
    f: &mut dyn FnMut(&str),
) -> Result<usize> {
    let files = expand_inputs(inputs)?;
    for file in &files {
        for_each_document(file, reader, language, f)?;
    }
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_joins_wrapped_lines_into_paragraphs() {
        let text =
            "It is a truth universally\nacknowledged, that a man.\n\n\nSecond para\r\nhere.\n";
        let mut docs = Vec::new();
        plain_text_documents(text.as_bytes(), &mut |d| docs.push(d.to_string())).unwrap();
        assert_eq!(
            docs,
            ["It is a truth universally acknowledged, that a man.\nSecond para here."]
        );
    }

    #[test]
    fn latin1_text_is_decoded() {
        let mut docs = Vec::new();
        plain_text_documents(&b"Gr\xfc\xdfe aus K\xf6ln\n"[..], &mut |d| {
            docs.push(d.to_string())
        })
        .unwrap();
        assert_eq!(docs, ["Grüße aus Köln"]);
    }
}

//! arXiv LaTeX sources: one document per paper, the main file with its `\input`/`\include`d
//! files inlined (comments removed first, so commented-out inputs are not followed).
//!
//! Inputs, by file name:
//! - `*.tar.gz` / `*.tgz` / `*.gz`: one paper as arXiv serves it — a gzipped tar, or a single
//!   gzipped `.tex` (told apart by the tar magic, not the name);
//! - `*.tar`: an arXiv bulk file (`arXiv_src_YYMM_NNN.tar`) whose members are per-paper `.gz`
//!   files (PDF-only members are skipped), or an uncompressed single-paper tar;
//! - `*.tex`: one flattened paper.
//!
//! Member paths are normalised and confined to the paper (`..`, absolute paths and links are
//! never followed); `\input` targets are resolved inside the paper only, with a depth limit and
//! cycle detection. Decompressed bytes per paper are capped (`max_paper_bytes`).
//! Metadata: `arxiv_id`, `url` (for ids that look like arXiv ids), `main_file`, `files`
//! (inlined files in order), `missing_inputs`, `encoding` when not UTF-8.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Result};
use serde::Deserialize;

use super::archive::{stream_from_thread, walk_tar, MemberBody, WalkEvent, WalkLimits};
use super::{Reader, Records};
use crate::clean::arxiv::strip_comments;
use crate::doc::{open_decompressed, Document, RecordError, RecordResult};
use crate::run::config::parse_params;

/// Options of the `arxiv` reader.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArxivOptions {
    /// Decompressed bytes read for one paper before it is given up (default 256 MiB).
    #[serde(default = "default_max_paper")]
    pub max_paper_bytes: u64,
    /// A single `.tex` file larger than this is not read (default 32 MiB).
    #[serde(default = "default_max_tex")]
    pub max_tex_bytes: u64,
    /// Deepest chain of `\input`s followed (default 16).
    #[serde(default = "default_depth")]
    pub max_input_depth: usize,
}

fn default_max_paper() -> u64 {
    256 << 20
}
fn default_max_tex() -> u64 {
    32 << 20
}
fn default_depth() -> usize {
    16
}

impl Default for ArxivOptions {
    fn default() -> Self {
        ArxivOptions {
            max_paper_bytes: default_max_paper(),
            max_tex_bytes: default_max_tex(),
            max_input_depth: default_depth(),
        }
    }
}

/// Reads arXiv source files into one document per paper.
#[derive(Debug, Clone, Default)]
pub struct ArxivSource {
    options: ArxivOptions,
}

impl ArxivSource {
    /// Builds the reader from `[input.options]`.
    pub fn from_options(options: &toml::Table) -> Result<Self> {
        Ok(ArxivSource {
            options: parse_params("reader arxiv", options)?,
        })
    }
}

/// The paper id from a file name: extensions removed, old-style ids (`hep-th9901001`) get
/// their slash back (`hep-th/9901001`).
pub fn arxiv_id_from_name(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    let mut stem = base;
    for ext in [".tgz", ".gz", ".tar", ".tex"] {
        if let Some(s) = stem.strip_suffix(ext) {
            stem = s;
        }
    }
    let digits = stem
        .bytes()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 7 && stem.len() > 7 {
        let (archive, number) = stem.split_at(stem.len() - 7);
        if archive
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-' || b == b'.')
        {
            return format!("{archive}/{number}");
        }
    }
    stem.to_string()
}

/// True when `id` has the shape of an arXiv identifier (`2101.00001`, `hep-th/9901001`).
pub fn looks_like_arxiv_id(id: &str) -> bool {
    let new_style = id.len() >= 9
        && id.as_bytes()[4] == b'.'
        && id
            .bytes()
            .enumerate()
            .all(|(i, b)| i == 4 || b.is_ascii_digit() || b == b'v');
    new_style || id.contains('/')
}

impl Reader for ArxivSource {
    fn read(&self, path: &Path, source: &str) -> Result<Records> {
        let name = crate::doc::file_name(path).to_string();
        let opts = self.options.clone();
        let source = source.to_string();
        let path = path.to_path_buf();
        if name.ends_with(".tar") {
            return Ok(stream_from_thread(move |send| {
                read_bulk_tar(&path, &opts, &source, send)
            }));
        }
        if !(name.ends_with(".gz") || name.ends_with(".tgz") || name.ends_with(".tex")) {
            bail!(
                "{}: not an arXiv source file (.tar, .tar.gz, .gz, .tex)",
                path.display()
            );
        }
        let id = arxiv_id_from_name(&name);
        Ok(stream_from_thread(move |send| {
            let result = open_decompressed(&path)
                .map_err(|e| RecordError::fatal(0, "read_error", format!("{e:#}")))
                .and_then(|input| read_paper_stream(input, &id, &name, &opts, &source));
            send(result);
        }))
    }
}

/// Reads a bulk `.tar`: each `.gz` member is one paper; loose `.tex` members form one paper.
fn read_bulk_tar(
    path: &Path,
    opts: &ArxivOptions,
    source: &str,
    send: &mut dyn FnMut(RecordResult) -> bool,
) {
    let input = match std::fs::File::open(path) {
        Ok(f) => std::io::BufReader::with_capacity(1 << 16, f),
        Err(e) => {
            send(Err(RecordError::fatal(0, "read_error", e.to_string())));
            return;
        }
    };
    let limits = WalkLimits {
        max_member_bytes: opts.max_paper_bytes,
        max_total_bytes: u64::MAX,
    };
    let mut loose: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut alive = true;
    let walked = walk_tar(
        input,
        limits,
        &mut |p, _| p.ends_with(".gz") || p.ends_with(".tgz") || is_tex_name(p),
        &mut |event| {
            let WalkEvent::File(m) = event else {
                return true;
            };
            let MemberBody::Bytes(bytes) = m.body else {
                if matches!(m.body, MemberBody::TooLarge(_)) {
                    alive = send(Err(RecordError::record(
                        m.offset,
                        "paper_too_large",
                        format!("{}: {} bytes", m.path, m.size),
                    )));
                }
                return alive;
            };
            if is_tex_name(&m.path) {
                loose.insert(m.path, bytes);
                return true;
            }
            let id = arxiv_id_from_name(&m.path);
            let input = flate2::read::MultiGzDecoder::new(&bytes[..]);
            // Errors point at the paper's member in the bulk file.
            let paper = read_paper_stream(input, &id, &m.path, opts, source).map_err(|mut e| {
                e.offset = m.offset;
                e
            });
            alive = send(paper);
            alive
        },
    );
    if let Err(e) = walked {
        send(Err(e));
        return;
    }
    if alive && !loose.is_empty() {
        let name = crate::doc::file_name(path).to_string();
        let id = arxiv_id_from_name(&name);
        let files = decode_files(loose);
        send(paper_document(files, &id, opts, source));
    }
}

fn is_tex_name(p: &str) -> bool {
    let lower = p.to_ascii_lowercase();
    lower.ends_with(".tex") || lower.ends_with(".ltx") || lower.ends_with(".latex")
}

/// Decodes files: UTF-8, else Windows-1252 (a superset of Latin-1, common in old papers).
fn decode_files(raw: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, (String, bool)> {
    raw.into_iter()
        .map(|(p, b)| match String::from_utf8(b) {
            Ok(s) => (p, (s, false)),
            Err(e) => {
                let bytes = e.into_bytes();
                let (s, _, _) = encoding_rs::WINDOWS_1252.decode(&bytes);
                (p, (s.into_owned(), true))
            }
        })
        .collect()
}

/// Reads one paper from its decompressed stream: a tar of files or a single `.tex`.
fn read_paper_stream(
    input: impl Read,
    id: &str,
    name: &str,
    opts: &ArxivOptions,
    source: &str,
) -> RecordResult {
    let mut input = input.take(opts.max_paper_bytes + 1);
    let mut head = vec![0u8; 512];
    let mut filled = 0;
    while filled < head.len() {
        match input.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => {
                return Err(RecordError::record(
                    0,
                    "bad_archive",
                    format!("{name}: cannot decompress: {e}"),
                ))
            }
        }
    }
    head.truncate(filled);
    let is_tar = filled >= 262 && &head[257..262] == b"ustar";
    let chained = std::io::Cursor::new(head).chain(input);
    let mut files = BTreeMap::new();
    if is_tar {
        let limits = WalkLimits {
            max_member_bytes: opts.max_tex_bytes,
            max_total_bytes: opts.max_paper_bytes,
        };
        walk_tar(chained, limits, &mut |p, _| is_tex_name(p), &mut |event| {
            if let WalkEvent::File(m) = event {
                if let MemberBody::Bytes(b) = m.body {
                    files.insert(m.path, b);
                }
            }
            true
        })
        .map_err(|e| RecordError::record(e.offset, &e.reason, format!("{name}: {}", e.message)))?;
    } else {
        let mut buf = Vec::new();
        let mut limited = chained.take(opts.max_tex_bytes + 1);
        limited.read_to_end(&mut buf).map_err(|e| {
            RecordError::record(0, "bad_archive", format!("{name}: cannot decompress: {e}"))
        })?;
        if buf.len() as u64 > opts.max_tex_bytes {
            return Err(RecordError::record(
                0,
                "paper_too_large",
                format!("{name}: more than {} bytes", opts.max_tex_bytes),
            ));
        }
        let full = crate::doc::file_name(Path::new(name));
        let base = full.strip_suffix(".gz").unwrap_or(&full);
        let file = if is_tex_name(base) {
            base.to_string()
        } else {
            "main.tex".to_string()
        };
        files.insert(file, buf);
    }
    paper_document(decode_files(files), id, opts, source)
}

/// Finds the main file of a paper: a file with `\documentclass` and `\begin{document}` that
/// no other file inputs; ties go to `main`/`ms`/`paper` names, then to the largest.
pub fn find_main_file(files: &BTreeMap<String, String>) -> Option<String> {
    let mut candidates: Vec<&String> = files
        .iter()
        .filter(|(_, t)| t.contains("\\begin{document}"))
        .map(|(p, _)| p)
        .collect();
    let with_class: Vec<&String> = candidates
        .iter()
        .copied()
        .filter(|p| files[*p].contains("\\documentclass") || files[*p].contains("\\documentstyle"))
        .collect();
    if !with_class.is_empty() {
        candidates = with_class;
    }
    if candidates.is_empty() {
        return (files.len() == 1)
            .then(|| files.keys().next().cloned())
            .flatten();
    }
    let referenced: HashSet<String> = files
        .iter()
        .flat_map(|(p, t)| input_targets(t).into_iter().map(move |x| resolve(p, &x)))
        .flatten()
        .collect();
    candidates.sort_by_key(|p| {
        let stem = p
            .rsplit('/')
            .next()
            .unwrap_or(p)
            .trim_end_matches(".tex")
            .to_ascii_lowercase();
        (
            referenced.contains(p.as_str()),
            !matches!(stem.as_str(), "main" | "ms" | "paper" | "article"),
            std::cmp::Reverse(files[*p].len()),
            p.matches('/').count(),
        )
    });
    candidates.first().map(|p| p.to_string())
}

/// The `\input`/`\include`/`\subfile` targets named in a (comment-free) text.
fn input_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some((_, target, end)) = next_input(text, i) {
        out.push(target);
        i = end;
    }
    out
}

/// Finds the next input command at or after `from`: (start, target, end).
fn next_input(text: &str, from: usize) -> Option<(usize, String, usize)> {
    let b = text.as_bytes();
    let mut i = from;
    while let Some(k) = memchr::memchr(b'\\', &b[i..]) {
        let at = i + k;
        let mut j = at + 1;
        while j < b.len() && b[j].is_ascii_alphabetic() {
            j += 1;
        }
        let cmd = &text[at + 1..j];
        if matches!(cmd, "input" | "include" | "subfile" | "subfileinclude") {
            let mut s = j;
            while s < b.len() && (b[s] == b' ' || b[s] == b'\t') {
                s += 1;
            }
            if b.get(s) == Some(&b'{') {
                if let Some(close) = memchr::memchr(b'}', &b[s..]) {
                    let target = text[s + 1..s + close].trim().to_string();
                    if !target.is_empty() && !target.contains(['#', '\\', '\n']) {
                        return Some((at, target, s + close + 1));
                    }
                }
            } else if cmd == "input" && s > j {
                // `\input file` (TeX primitive syntax): up to whitespace.
                let end = b[s..]
                    .iter()
                    .position(|c| c.is_ascii_whitespace() || *c == b'}' || *c == b'\\')
                    .map_or(b.len(), |e| s + e);
                if end > s {
                    return Some((at, text[s..end].to_string(), end));
                }
            }
        }
        i = j.max(at + 1);
    }
    None
}

/// Resolves an input target against the paper root (LaTeX resolves relative to the main
/// file's folder, which is where arXiv compiles); `None` when it would leave the paper.
fn resolve(main: &str, target: &str) -> Option<String> {
    let dir = match main.rfind('/') {
        Some(i) => &main[..i],
        None => "",
    };
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// State of one flattening.
struct Flattener<'a> {
    files: &'a BTreeMap<String, String>,
    main_dir_file: String,
    max_depth: usize,
    budget: usize,
    stack: Vec<String>,
    used: Vec<String>,
    missing: Vec<String>,
}

impl Flattener<'_> {
    fn lookup(&self, target: &str) -> Option<String> {
        let base = resolve(&self.main_dir_file, target)?;
        [base.clone(), format!("{base}.tex")]
            .into_iter()
            .find(|c| self.files.contains_key(c))
    }

    fn inline(&mut self, text: &str, out: &mut String, depth: usize) {
        let text = strip_comments(text);
        let mut last = 0;
        let mut i = 0;
        while let Some((start, target, end)) = next_input(&text, i) {
            out.push_str(&text[last..start]);
            match self.lookup(&target) {
                Some(file)
                    if depth < self.max_depth
                        && !self.stack.contains(&file)
                        && out.len() < self.budget =>
                {
                    self.stack.push(file.clone());
                    self.used.push(file.clone());
                    let body = &self.files[&file];
                    self.inline(body, out, depth + 1);
                    if !out.ends_with('\n') {
                        out.push('\n');
                    }
                    self.stack.pop();
                }
                Some(_) => out.push_str(&text[start..end]),
                None => {
                    self.missing.push(target);
                    out.push_str(&text[start..end]);
                }
            }
            last = end;
            i = end;
        }
        out.push_str(&text[last..]);
    }
}

/// Builds the document of one paper from its decoded files.
fn paper_document(
    files: BTreeMap<String, (String, bool)>,
    id: &str,
    opts: &ArxivOptions,
    source: &str,
) -> RecordResult {
    let latin1 = files.values().any(|(_, l)| *l);
    // Comments out first, so a commented `\begin{document}` or `\input` counts for nothing.
    let texts: BTreeMap<String, String> = files
        .into_iter()
        .map(|(p, (t, _))| (p, strip_comments(&t)))
        .collect();
    let Some(main) = find_main_file(&texts) else {
        return Err(RecordError::record(
            0,
            "no_main_file",
            format!("{id}: no .tex file with \\documentclass and \\begin{{document}}"),
        ));
    };
    let mut f = Flattener {
        files: &texts,
        main_dir_file: main.clone(),
        max_depth: opts.max_input_depth,
        budget: opts.max_paper_bytes as usize,
        stack: vec![main.clone()],
        used: vec![main.clone()],
        missing: Vec::new(),
    };
    let mut out = String::new();
    f.inline(&texts[&main], &mut out, 0);
    let mut doc = Document::new(id, out, source);
    doc.set("arxiv_id", id);
    if looks_like_arxiv_id(id) {
        doc.set("url", format!("https://arxiv.org/abs/{id}"));
    }
    doc.set("main_file", main);
    doc.set("files", f.used.clone());
    if !f.missing.is_empty() {
        doc.set("missing_inputs", f.missing.clone());
    }
    if latin1 {
        doc.set("encoding", "windows-1252");
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn ids_from_names() {
        assert_eq!(arxiv_id_from_name("2101.00001.gz"), "2101.00001");
        assert_eq!(
            arxiv_id_from_name("0001/hep-th0001001.gz"),
            "hep-th/0001001"
        );
        assert_eq!(arxiv_id_from_name("edo-paper.tar.gz"), "edo-paper");
        assert_eq!(arxiv_id_from_name("main.tex.gz"), "main");
        assert!(looks_like_arxiv_id("2101.00001"));
        assert!(!looks_like_arxiv_id("edo-paper"));
    }

    #[test]
    fn inputs_inline_with_cycles_escapes_and_comments_handled() {
        let fs = files(&[
            ("p/main.tex", "\\documentclass{article}\\begin{document}\nA\n\\input{sec/a}\n% \\input{sec/b}\n\\include{../../etc/passwd}\n\\end{document}\n"),
            ("p/sec/a.tex", "in A\n\\input{sec/a.tex}\n\\input sec/c\n"),
            ("p/sec/b.tex", "in B\n"),
            ("p/sec/c.tex", "in C\n"),
        ]);
        assert_eq!(find_main_file(&fs).as_deref(), Some("p/main.tex"));
        let mut f = Flattener {
            files: &fs,
            main_dir_file: "p/main.tex".into(),
            max_depth: 8,
            budget: 1 << 20,
            stack: vec!["p/main.tex".into()],
            used: vec!["p/main.tex".into()],
            missing: vec![],
        };
        let mut out = String::new();
        f.inline(&fs["p/main.tex"], &mut out, 0);
        assert!(out.contains("in A\n\\input{sec/a.tex}\nin C\n"), "{out}");
        assert!(!out.contains("in B"));
        assert_eq!(f.used, vec!["p/main.tex", "p/sec/a.tex", "p/sec/c.tex"]);
        assert_eq!(f.missing, vec!["../../etc/passwd"]);
    }
}

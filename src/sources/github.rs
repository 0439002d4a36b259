//! GitHub repositories: one document per file, with `metadata.repo`, `path`, `license` (SPDX
//! expression or null), `license_source`, `language` and `bytes`.
//!
//! Inputs, by file name:
//! - repository archives (`.tar.gz`, `.tgz`, `.tar`, `.tar.zst`, `.zip`): one repository each;
//!   when every member sits under one top folder (as `git archive --prefix` and GitHub's
//!   downloads do) that folder is the repository root and its name the repository name;
//! - `*.repos`: a list of checked-out repository folders, one path a line (relative to the
//!   list's folder; `#` starts a comment); each folder is walked without following symlinks;
//! - `.jsonl[.gz|.zst]`: one file a line with `repo` (or `repo_name`), `path`, `content` (or
//!   `text`) and optionally `license`, as exported from BigQuery's `github_repos`.
//!
//! The licence of a repository must be known before its files are judged, so each input is
//! read twice: a first pass reads only root-level licence files and manifests, the second
//! streams every file with the licence attached. The `license_filter` stage then drops files
//! of repositories that are not permissively licensed.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

use super::archive::{
    skipped_member, stream_from_thread, walk, ArchiveKind, MemberBody, WalkEvent, WalkLimits,
};
use super::{Reader, Records};
use crate::clean::github::{base_name, language_of};
use crate::clean::license::{
    is_license_file, is_manifest_file, normalize_license_expression, LicenseEvidence, RepoLicense,
};
use crate::doc::{open_decompressed, Document, RecordError, RecordResult, MAX_LINE_BYTES};
use crate::run::config::parse_params;

/// Options of the `github` reader.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubOptions {
    /// Files larger than this are not read; they reach the stages with empty text and
    /// `metadata.too_large` (default 1 MiB, the size limit of BigQuery's `contents` table).
    #[serde(default = "default_max_file")]
    pub max_file_bytes: u64,
    /// Decompressed bytes read from one repository before it is abandoned with
    /// `archive_too_large` (default 4 GiB).
    #[serde(default = "default_max_repo")]
    pub max_repo_bytes: u64,
}

fn default_max_file() -> u64 {
    1 << 20
}
fn default_max_repo() -> u64 {
    4 << 30
}

impl Default for GithubOptions {
    fn default() -> Self {
        GithubOptions {
            max_file_bytes: default_max_file(),
            max_repo_bytes: default_max_repo(),
        }
    }
}

/// Reads repositories into one document per file.
#[derive(Debug, Clone, Default)]
pub struct GithubSource {
    options: GithubOptions,
}

impl GithubSource {
    /// Builds the reader from `[input.options]`.
    pub fn from_options(options: &toml::Table) -> Result<Self> {
        Ok(GithubSource {
            options: parse_params("reader github", options)?,
        })
    }
}

fn is_jsonl(name: &str) -> bool {
    name.ends_with(".jsonl") || name.ends_with(".jsonl.gz") || name.ends_with(".jsonl.zst")
}

impl Reader for GithubSource {
    fn read(&self, path: &Path, source: &str) -> Result<Records> {
        let name = crate::doc::file_name(path).to_string();
        let opts = self.options.clone();
        let source = source.to_string();
        let path = path.to_path_buf();
        if is_jsonl(&name) {
            return Ok(stream_from_thread(move |send| {
                read_jsonl_files(&path, &source, send)
            }));
        }
        if name.ends_with(".repos") {
            let list = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read repository list {}", path.display()))?;
            let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let folders: Vec<PathBuf> = list
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| base.join(l))
                .collect();
            return Ok(stream_from_thread(move |send| {
                for folder in folders {
                    if !folder.is_dir() {
                        let e = RecordError::record(
                            0,
                            "missing_repository",
                            format!("{} is not a folder", folder.display()),
                        );
                        if !send(Err(e)) {
                            return;
                        }
                        continue;
                    }
                    let repo = crate::doc::file_name(&folder).to_string();
                    if !read_repository(&folder, &ArchiveKind::Folder, &repo, &opts, &source, send)
                    {
                        return;
                    }
                }
            }));
        }
        let Some(kind) = ArchiveKind::of(&path) else {
            bail!(
                "{}: not a repository archive (.tar.gz, .zip, ...), .repos list or JSONL",
                path.display()
            );
        };
        let repo = archive_stem(&name).to_string();
        Ok(stream_from_thread(move |send| {
            read_repository(&path, &kind, &repo, &opts, &source, send);
        }))
    }
}

/// The archive's name without its archive extensions (`clipboard.js.tar.gz` → `clipboard.js`).
pub fn archive_stem(name: &str) -> &str {
    for ext in [".tar.gz", ".tar.zst", ".tar.bz2", ".tgz", ".tar", ".zip"] {
        if let Some(s) = name.strip_suffix(ext) {
            return s;
        }
    }
    name
}

/// Licence and manifest files found in the first pass, with the set of top-level names.
#[derive(Default)]
struct FirstPass {
    candidates: Vec<(String, Vec<u8>)>,
    top: Option<String>,
    single_top: bool,
    nested: bool,
}

fn is_candidate(path: &str) -> bool {
    path.matches('/').count() <= 1 && {
        let n = base_name(path);
        is_license_file(n) || is_manifest_file(n)
    }
}

/// Reads one repository (archive or folder) in two passes; returns false when the consumer
/// went away.
fn read_repository(
    path: &Path,
    kind: &ArchiveKind,
    repo_hint: &str,
    opts: &GithubOptions,
    source: &str,
    send: &mut dyn FnMut(RecordResult) -> bool,
) -> bool {
    let limits = WalkLimits {
        max_member_bytes: opts.max_file_bytes,
        max_total_bytes: opts.max_repo_bytes,
    };
    let mut first = FirstPass {
        single_top: true,
        ..Default::default()
    };
    let pass1 = walk(
        path,
        kind,
        limits,
        &mut |p, size| size <= 1 << 20 && is_candidate(p),
        &mut |event| {
            if let WalkEvent::File(m) = event {
                let top = m.path.split('/').next().unwrap_or_default();
                match &first.top {
                    None => first.top = Some(top.to_string()),
                    Some(t) if t != top => first.single_top = false,
                    _ => {}
                }
                first.nested |= m.path.contains('/');
                if let MemberBody::Bytes(b) = m.body {
                    first.candidates.push((m.path, b));
                }
            }
            true
        },
    );
    if let Err(e) = pass1 {
        return send(Err(e));
    }
    let root = match (&first.top, first.single_top && first.nested) {
        (Some(t), true) if *kind != ArchiveKind::Folder => format!("{t}/"),
        _ => String::new(),
    };
    let repo = if root.is_empty() {
        repo_hint.to_string()
    } else {
        root.trim_end_matches('/').to_string()
    };
    let mut evidence = LicenseEvidence::default();
    for (p, bytes) in &first.candidates {
        let Some(rel) = p.strip_prefix(root.as_str()) else {
            continue;
        };
        if rel.contains('/') {
            continue;
        }
        let text = String::from_utf8_lossy(bytes);
        if is_license_file(rel) {
            evidence.add_license_file(rel, &text);
        } else {
            evidence.add_manifest(rel, &text);
        }
    }
    let license = evidence.decide();

    let mut alive = true;
    let pass2 = walk(path, kind, limits, &mut |_, _| true, &mut |event| {
        let record = match event {
            WalkEvent::File(m) => {
                let rel = m.path.strip_prefix(root.as_str()).unwrap_or(&m.path);
                Ok(file_document(&repo, rel, m.size, m.body, &license, source))
            }
            WalkEvent::Skipped {
                name,
                reason,
                offset,
            } => Err(skipped_member(&repo, &name, reason, offset)),
        };
        alive = send(record);
        alive
    });
    if let Err(e) = pass2 {
        return send(Err(e));
    }
    alive
}

/// Builds the document of one repository file.
fn file_document(
    repo: &str,
    rel: &str,
    size: u64,
    body: MemberBody,
    license: &RepoLicense,
    source: &str,
) -> Document {
    let mut doc = Document::new(format!("{repo}/{rel}"), String::new(), source);
    doc.set("repo", repo);
    doc.set("path", rel);
    doc.set("bytes", size);
    match body {
        MemberBody::Bytes(b) => match String::from_utf8(b) {
            Ok(s) => doc.text = s,
            Err(_) => doc.set("binary", true),
        },
        MemberBody::TooLarge(_) | MemberBody::NotRead => doc.set("too_large", true),
    }
    license.annotate(&mut doc);
    if let Some(lang) = language_of(rel, &doc.text) {
        doc.set("language", lang);
    }
    doc
}

/// One line of a BigQuery-style export.
struct JsonlFile {
    repo: String,
    path: String,
    content: String,
    license: Option<String>,
}

fn parse_file_line(line: &[u8], offset: u64) -> Result<JsonlFile, RecordError> {
    let v: Value = serde_json::from_slice(line)
        .map_err(|e| RecordError::record(offset, "bad_json", e.to_string()))?;
    let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let repo = field("repo").or_else(|| field("repo_name"));
    let path = field("path");
    let content = field("content").or_else(|| field("text"));
    match (repo, path, content) {
        (Some(repo), Some(path), Some(content)) => Ok(JsonlFile {
            repo,
            path,
            content,
            license: field("license"),
        }),
        _ => Err(RecordError::record(
            offset,
            "missing_field",
            "needs `repo`, `path` and `content`",
        )),
    }
}

/// Receives each line of a JSONL file with its byte offset; returns false to stop.
type LineVisitor<'a> = dyn FnMut(u64, Result<&[u8], RecordError>) -> bool + 'a;

/// Calls `each(offset, line)` for every non-empty line; lines over [`MAX_LINE_BYTES`] are
/// reported as `line_too_long`.
fn for_each_line(path: &Path, each: &mut LineVisitor) -> Result<(), RecordError> {
    let input = open_decompressed(path)
        .map_err(|e| RecordError::fatal(0, "read_error", format!("{e:#}")))?;
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let mut buf = Vec::new();
    let mut offset = 0u64;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| RecordError::fatal(offset, "read_error", e.to_string()))?;
        if n == 0 {
            return Ok(());
        }
        let start = offset;
        offset += n as u64;
        let item = if n > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            // Skip the rest of the overlong line.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                let m = (&mut reader)
                    .take(1 << 20)
                    .read_until(b'\n', &mut rest)
                    .map_err(|e| RecordError::fatal(offset, "read_error", e.to_string()))?;
                offset += m as u64;
                if m == 0 || rest.last() == Some(&b'\n') {
                    break;
                }
            }
            Err(RecordError::record(start, "line_too_long", "line too long"))
        } else {
            let line = buf.trim_ascii();
            if line.is_empty() {
                continue;
            }
            Ok(line)
        };
        if !each(start, item) {
            return Ok(());
        }
    }
}

fn read_jsonl_files(path: &Path, source: &str, send: &mut dyn FnMut(RecordResult) -> bool) {
    // Pass 1: licence evidence of repositories whose records carry no `license`.
    let mut evidence: HashMap<String, LicenseEvidence> = HashMap::new();
    let pass1 = for_each_line(path, &mut |offset, line| {
        if let Ok(f) = line.and_then(|l| parse_file_line(l, offset)) {
            if f.license.is_none() && !f.path.contains('/') {
                let name = f.path.as_str();
                if is_license_file(name) {
                    evidence
                        .entry(f.repo)
                        .or_default()
                        .add_license_file(name, &f.content);
                } else if is_manifest_file(name) {
                    evidence
                        .entry(f.repo)
                        .or_default()
                        .add_manifest(name, &f.content);
                }
            }
        }
        true
    });
    if let Err(e) = pass1 {
        send(Err(e));
        return;
    }
    let decided: HashMap<String, RepoLicense> =
        evidence.into_iter().map(|(k, v)| (k, v.decide())).collect();
    let none = RepoLicense {
        spdx: None,
        source: "none".into(),
        unrecognized_file: false,
    };
    let pass2 = for_each_line(path, &mut |offset, line| {
        let record = line.and_then(|l| parse_file_line(l, offset)).map(|f| {
            let license = match &f.license {
                Some(l) => RepoLicense {
                    spdx: normalize_license_expression(l),
                    source: "export".into(),
                    unrecognized_file: false,
                },
                None => decided.get(&f.repo).unwrap_or(&none).clone(),
            };
            let size = f.content.len() as u64;
            file_document(
                &f.repo,
                &f.path,
                size,
                MemberBody::Bytes(f.content.into_bytes()),
                &license,
                source,
            )
        });
        send(record)
    });
    if let Err(e) = pass2 {
        send(Err(e));
    }
}

//! `datamill wiki-refs`: the external URLs Wikipedia articles cite, as RedPajama collected them
//! to fetch the positive pages of the Wikipedia-reference classifier.
//!
//! The dumps are streamed through the `wikipedia` reader with `keep_wikitext`, one dump per
//! thread. Each article's cited URLs ([`cite::cited_urls`]) are normalised
//! ([`url::normalize_url`]) and counted once per article; the counts go through sorted runs
//! spilled to disk and merged ([`counts`]), so memory stays near `--memory` however many URLs
//! a dump cites (38 M for English Wikipedia). The output (`refs.tsv.zst`) holds one line per
//! distinct URL, `URL<TAB>citing articles`, in byte order of the URL, zstd-compressed when the
//! name ends in `.zst`; it is written under a temporary name and renamed when complete.
//! `--max-urls N` keeps a seeded uniform sample of N URLs (the N smallest xxh3 hashes of
//! seed and URL), held in memory.

pub mod cite;
pub mod counts;
pub mod url;

use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;

use crate::doc::temp_path;

/// Settings of `wiki-refs`.
#[derive(Debug, Clone)]
pub struct WikiRefsOptions {
    /// Keep a seeded sample of at most this many URLs (None: all).
    pub max_urls: Option<usize>,
    /// Seed of the sample.
    pub seed: u64,
    /// Memory for buffered URLs over all threads, in bytes, before they are spilled to disk.
    pub memory: usize,
    /// Dumps read at the same time (0 = one per core).
    pub threads: usize,
}

impl Default for WikiRefsOptions {
    fn default() -> Self {
        WikiRefsOptions {
            max_urls: None,
            seed: 0,
            memory: 1 << 30,
            threads: 0,
        }
    }
}

/// What `wiki-refs` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WikiRefsSummary {
    /// Dumps read.
    pub dumps: usize,
    /// Articles read (namespace 0, not redirects).
    pub articles: u64,
    /// Articles citing at least one URL.
    pub citing_articles: u64,
    /// (article, URL) pairs counted.
    pub citations: u64,
    /// Cited strings that are not http(s) URLs, skipped.
    pub invalid: u64,
    /// Pages the reader set aside (too large, cut off).
    pub bad_pages: u64,
    /// Distinct URLs found.
    pub distinct: u64,
    /// URLs written.
    pub written: u64,
}

/// What one dump gave.
#[derive(Default)]
struct DumpCount {
    articles: u64,
    citing: u64,
    citations: u64,
    invalid: u64,
    bad_pages: u64,
    runs: Vec<PathBuf>,
}

/// Reads one dump, spilling its per-article URLs as runs named after `index`.
fn read_dump(path: &Path, index: usize, work: &Path, budget: usize) -> Result<DumpCount> {
    let mut options = toml::Table::new();
    options.insert("keep_wikitext".into(), toml::Value::Boolean(true));
    let reader = crate::sources::build_reader("wikipedia", &options)?;
    let mut runs = counts::RunWriter::new(work, &format!("d{index:05}"), budget);
    let mut c = DumpCount::default();
    let mut pages = 0u64;
    let mut raw = Vec::new();
    for rec in reader.read(path, "wikipedia")? {
        let doc = match rec {
            Ok(doc) => doc,
            Err(e) if e.fatal => bail!(
                "{}: byte {}: {}: {}",
                path.display(),
                e.offset,
                e.reason,
                e.message
            ),
            Err(e) => {
                c.bad_pages += 1;
                tracing::warn!(
                    "{}: page at byte {} skipped: {}",
                    path.display(),
                    e.offset,
                    e.message
                );
                continue;
            }
        };
        pages += 1;
        if doc.meta_str("wiki_skip").is_some() {
            continue;
        }
        c.articles += 1;
        raw.clear();
        cite::cited_urls(&doc.text, &mut raw);
        let mut urls: Vec<String> = Vec::with_capacity(raw.len());
        for r in &raw {
            match url::normalize_url(r) {
                Some(u) => urls.push(u),
                None => c.invalid += 1,
            }
        }
        urls.sort_unstable();
        urls.dedup();
        c.citing += u64::from(!urls.is_empty());
        c.citations += urls.len() as u64;
        for u in urls {
            runs.add(u)?;
        }
    }
    if pages == 0 && c.bad_pages == 0 {
        bail!(
            "{}: no <page> element: not a MediaWiki XML dump (pages-articles.xml[.bz2])",
            path.display()
        );
    }
    c.runs = runs.finish()?;
    Ok(c)
}

/// A scratch folder removed when dropped.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `URL<TAB>count` lines, zstd-compressed when the path ends in `.zst`.
enum RefsOut {
    Plain(BufWriter<File>),
    Zstd(zstd::Encoder<'static, BufWriter<File>>),
}

impl RefsOut {
    fn create(path: &Path, zstd: bool) -> Result<Self> {
        let f = BufWriter::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        );
        Ok(if zstd {
            RefsOut::Zstd(zstd::Encoder::new(f, crate::doc::ZSTD_LEVEL)?)
        } else {
            RefsOut::Plain(f)
        })
    }

    fn line(&mut self, url: &str, count: u64) -> std::io::Result<()> {
        match self {
            RefsOut::Plain(w) => writeln!(w, "{url}\t{count}"),
            RefsOut::Zstd(w) => writeln!(w, "{url}\t{count}"),
        }
    }

    fn finish(self) -> std::io::Result<()> {
        let mut w = match self {
            RefsOut::Plain(w) => w,
            RefsOut::Zstd(w) => w.finish()?,
        };
        w.flush()?;
        w.get_ref().sync_all()
    }
}

/// `datamill wiki-refs`: reads `dumps`, writes the cited URLs to `output` (see the module docs).
pub fn wiki_refs(
    dumps: &[PathBuf],
    output: &Path,
    options: &WikiRefsOptions,
) -> Result<WikiRefsSummary> {
    if dumps.is_empty() {
        bail!("no dump given");
    }
    if options.max_urls == Some(0) {
        bail!("--max-urls must be at least 1");
    }
    for d in dumps {
        if !d.is_file() {
            bail!("dump {} does not exist or is not a file", d.display());
        }
    }
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let work = ScratchDir(dir.join(format!(".wiki-refs-{}", std::process::id())));
    std::fs::create_dir_all(&work.0)
        .with_context(|| format!("cannot create {}", work.0.display()))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads)
        .build()?;
    let budget = options.memory / pool.current_num_threads().max(1);
    let counted: Vec<DumpCount> = pool.install(|| {
        dumps
            .par_iter()
            .enumerate()
            .map(|(i, d)| read_dump(d, i, &work.0, budget))
            .collect::<Result<Vec<_>>>()
    })?;
    let mut s = WikiRefsSummary {
        dumps: dumps.len(),
        ..Default::default()
    };
    let mut runs = Vec::new();
    for c in counted {
        s.articles += c.articles;
        s.citing_articles += c.citing;
        s.citations += c.citations;
        s.invalid += c.invalid;
        s.bad_pages += c.bad_pages;
        runs.extend(c.runs);
    }
    if s.articles == 0 {
        bail!("the dumps hold no article (only redirects or other namespaces)");
    }
    let tmp = temp_path(output);
    let zstd = output.extension().is_some_and(|e| e == "zst");
    let written = RefsOut::create(&tmp, zstd)
        .and_then(|out| write_refs(out, runs, &work.0, &tmp, options, &mut s));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, output)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), output.display()))?;
    crate::doc::sync_parent(output)?;
    Ok(s)
}

fn write_refs(
    mut out: RefsOut,
    runs: Vec<PathBuf>,
    work: &Path,
    tmp: &Path,
    options: &WikiRefsOptions,
    s: &mut WikiRefsSummary,
) -> Result<()> {
    let io = |e: std::io::Error| anyhow::anyhow!("cannot write {}: {e}", tmp.display());
    match options.max_urls {
        None => {
            counts::merge_all(runs, work, &mut |u, n| {
                s.distinct += 1;
                s.written += 1;
                out.line(u, n).map_err(io)
            })?;
        }
        Some(max) => {
            // Bottom-k by hash: the kept set does not depend on the order URLs come in.
            let mut heap: BinaryHeap<(u64, String, u64)> = BinaryHeap::new();
            counts::merge_all(runs, work, &mut |u, n| {
                s.distinct += 1;
                let h = xxhash_rust::xxh3::xxh3_64_with_seed(u.as_bytes(), options.seed);
                if heap.len() < max {
                    heap.push((h, u.to_string(), n));
                } else if heap.peek().is_some_and(|top| h < top.0) {
                    heap.pop();
                    heap.push((h, u.to_string(), n));
                }
                Ok(())
            })?;
            let mut kept: Vec<(String, u64)> = heap.into_iter().map(|(_, u, n)| (u, n)).collect();
            kept.sort_unstable();
            for (u, n) in &kept {
                out.line(u, *n).map_err(io)?;
            }
            s.written = kept.len() as u64;
        }
    }
    out.finish().map_err(io)
}

//! `datamill inspect`: a seeded sample of the kept or dropped documents of a run, to read.
//!
//! Kept documents come from a run's shards; dropped ones from its `rejected/` folder (written
//! with `keep_rejected = true`), or, when a run kept none, from the few dropped documents the
//! runner samples into every shard's stats. The sample is the `n` documents with the smallest
//! seeded hash of their id among those that match, so it does not depend on file order and
//! memory holds only `n` documents.

use std::collections::BinaryHeap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use regex::Regex;

use crate::doc::{file_name, sorted_entries, Document, JsonlReader};
use crate::stats::ShardStats;

/// What to show.
#[derive(Debug, Clone, Default)]
pub struct InspectOptions {
    /// Only this source (`commoncrawl`, ...); all sources when `None`.
    pub source: Option<String>,
    /// Dropped documents of this stage (implies dropped documents).
    pub stage: Option<String>,
    /// Dropped documents with this reason (implies dropped documents).
    pub reason: Option<String>,
    /// Dropped documents of any stage instead of kept ones.
    pub dropped: bool,
    /// Documents to show.
    pub sample: usize,
    /// Seed of the sample.
    pub seed: u64,
    /// Only documents whose text matches.
    pub grep: Option<Regex>,
    /// Lines of text shown per document.
    pub lines: usize,
}

impl InspectOptions {
    fn wants_dropped(&self) -> bool {
        self.dropped || self.stage.is_some() || self.reason.is_some()
    }

    fn matches(&self, doc: &Document) -> bool {
        if self.wants_dropped() {
            let by = doc.meta_str("rejected_by");
            let why = doc.meta_str("reject_reason");
            if self.stage.as_deref().is_some_and(|s| by != Some(s))
                || self.reason.as_deref().is_some_and(|r| why != Some(r))
            {
                return false;
            }
        }
        self.grep.as_ref().is_none_or(|re| re.is_match(&doc.text))
    }
}

/// A run folder found under the inspected folder.
#[derive(Debug, Clone)]
pub struct RunFolder {
    /// The run's source.
    pub source: String,
    /// The folder holding its shards.
    pub dir: PathBuf,
}

/// Every run folder (one holding `*.stats.json`) at or under `dir`, in path order.
pub fn find_runs(dir: &Path) -> Result<Vec<RunFolder>> {
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<RunFolder>) -> Result<()> {
    let entries = sorted_entries(dir)?;
    let stats = entries
        .iter()
        .find(|p| file_name(p).ends_with(".stats.json") && p.is_file());
    if let Some(p) = stats {
        let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
        let s: ShardStats = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a shard stats file", p.display()))?;
        out.push(RunFolder {
            source: s.source,
            dir: dir.to_path_buf(),
        });
        return Ok(());
    }
    for p in entries {
        let name = file_name(&p);
        if p.is_dir() && !name.starts_with('.') && name != "rejected" && name != "quarantine" {
            walk(&p, out)?;
        }
    }
    Ok(())
}

/// One document of the sample, ordered by its seeded id hash.
struct Picked {
    key: u64,
    doc: Document,
    origin: String,
}

impl PartialEq for Picked {
    fn eq(&self, o: &Self) -> bool {
        (self.key, &self.doc.id) == (o.key, &o.doc.id)
    }
}
impl Eq for Picked {}
impl PartialOrd for Picked {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Picked {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.key, &self.doc.id).cmp(&(o.key, &o.doc.id))
    }
}

/// The sample: at most `n` documents with the smallest keys seen.
struct Sample {
    n: usize,
    heap: BinaryHeap<Picked>,
    seen: u64,
}

impl Sample {
    fn offer(&mut self, key: u64, doc: Document, origin: &str) {
        self.seen += 1;
        if self.heap.len() < self.n {
            self.heap.push(Picked {
                key,
                doc,
                origin: origin.to_string(),
            });
        } else if self
            .heap
            .peek()
            .is_some_and(|top| (key, &doc.id) < (top.key, &top.doc.id))
        {
            self.heap.pop();
            self.heap.push(Picked {
                key,
                doc,
                origin: origin.to_string(),
            });
        }
    }
}

/// The shard files of a run holding the documents asked for.
fn shard_files(run: &RunFolder, dropped: bool) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if dropped {
        let rejected = run.dir.join("rejected");
        if rejected.is_dir() {
            collect_shards(&rejected, &mut files)?;
        }
    } else {
        for p in sorted_entries(&run.dir)? {
            if p.is_file() && is_shard(&p) {
                files.push(p);
            }
        }
    }
    Ok(files)
}

fn is_shard(p: &Path) -> bool {
    let n = file_name(p);
    n.ends_with(".jsonl.zst") || n.ends_with(".jsonl.gz") || n.ends_with(".jsonl")
}

fn collect_shards(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for p in sorted_entries(dir)? {
        if p.is_dir() {
            collect_shards(&p, out)?;
        } else if is_shard(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// Writes the sample of the runs under `dir` to `out`; returns the number of documents shown.
pub fn inspect(dir: &Path, opts: &InspectOptions, out: &mut dyn Write) -> Result<usize> {
    let runs: Vec<RunFolder> = find_runs(dir)?
        .into_iter()
        .filter(|r| opts.source.as_deref().is_none_or(|s| s == r.source))
        .collect();
    if runs.is_empty() {
        anyhow::bail!(
            "no run output{} under {} (a run folder holds NNNNN.stats.json files)",
            opts.source
                .as_deref()
                .map(|s| format!(" of source `{s}`"))
                .unwrap_or_default(),
            dir.display()
        );
    }
    let dropped = opts.wants_dropped();
    let mut sample = Sample {
        n: opts.sample.max(1),
        heap: BinaryHeap::new(),
        seen: 0,
    };
    let mut notes = Vec::new();
    for run in &runs {
        let files = shard_files(run, dropped)?;
        if dropped && files.is_empty() {
            // No rejected/ folder: the stats' sampled drops are all there is.
            let merged = crate::stats::MergedStats::from_dir(&run.dir)?;
            let mut n = 0;
            for (key, docs) in &merged.profile.samples {
                let (stage, reason) = key.split_once('/').unwrap_or((key, ""));
                for d in docs {
                    let mut doc = Document::new(d.id.clone(), d.text.clone(), run.source.clone());
                    doc.metadata = d.metadata.clone();
                    doc.set("rejected_by", stage);
                    doc.set("reject_reason", reason);
                    if opts.matches(&doc) {
                        let k = xxhash_rust::xxh3::xxh3_64_with_seed(doc.id.as_bytes(), opts.seed);
                        sample.offer(k, doc, &format!("{} (stats sample)", run.dir.display()));
                        n += 1;
                    }
                }
            }
            notes.push(format!(
                "{}: no rejected/ folder (keep_rejected is off); chose from the \
                 {n} dropped documents sampled into its stats",
                run.dir.display()
            ));
            continue;
        }
        for f in files {
            let origin = f.display().to_string();
            for (line, rec) in JsonlReader::open(&f)? {
                let mut doc = rec.map_err(|e| anyhow::anyhow!("{origin}: line {line}: {e}"))?;
                if doc.source.is_empty() {
                    doc.source = run.source.clone();
                }
                if opts.matches(&doc) {
                    let k = xxhash_rust::xxh3::xxh3_64_with_seed(doc.id.as_bytes(), opts.seed);
                    sample.offer(k, doc, &origin);
                }
            }
        }
    }
    let picked = sample.heap.into_sorted_vec();
    for p in &picked {
        write_doc(out, p, opts.lines)?;
    }
    writeln!(
        out,
        "{} of {} matching {} documents shown (seed {}).",
        picked.len(),
        sample.seen,
        if dropped { "dropped" } else { "kept" },
        opts.seed
    )?;
    for n in notes {
        writeln!(out, "note: {n}")?;
    }
    Ok(picked.len())
}

fn write_doc(out: &mut dyn Write, p: &Picked, lines: usize) -> Result<()> {
    let d = &p.doc;
    let verdict = match (d.meta_str("rejected_by"), d.meta_str("reject_reason")) {
        (Some(s), Some(r)) => format!("dropped by {s}: {r}"),
        _ => "kept".to_string(),
    };
    writeln!(out, "=== {}  [{}, {}]", d.id, d.source, verdict)?;
    writeln!(out, "from: {}", p.origin)?;
    writeln!(out, "metadata: {}", serde_json::to_string(&d.metadata)?)?;
    let total = d.text.lines().count();
    for l in d.text.lines().take(lines) {
        writeln!(out, "  | {l}")?;
    }
    if total > lines {
        writeln!(
            out,
            "  | ... ({} more lines, {} bytes in all)",
            total - lines,
            d.text.len()
        )?;
    }
    writeln!(out)?;
    Ok(())
}

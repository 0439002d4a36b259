//! `datamill report`: the LLaMA Table 1 view of a corpus built by datamill — per source
//! documents, bytes, tokens, sampling proportion, epochs and disk size — plus each source's
//! drop funnel per stage with reasons. Printed as Markdown, written as JSON and as one
//! self-contained HTML page with inline SVG charts.

pub mod html;
pub mod inspect;
pub mod pager;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::doc::{file_name, write_atomic};
use crate::mixture::config::{RecipeConfig, LLAMA_TABLE1_WEIGHTS};
use crate::mixture::plan::{human_bytes, plan, read_supply, MixturePlan, SourceSupply};
use crate::shards::megatron::{dataset_paths, read_header};
use crate::shards::PackedSource;
use crate::stats::profile::Profile;
use crate::stats::{MergedStats, ShardStats, StageStats};

/// One row of the Table 1 view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceRow {
    /// Source name.
    pub source: String,
    /// Documents kept by the source's pipeline.
    pub docs: u64,
    /// UTF-8 bytes of the kept documents' text.
    pub text_bytes: u64,
    /// Size of the input files the pipeline read.
    pub input_bytes: u64,
    /// Size of the kept document shards (`*.jsonl.zst`).
    pub doc_shard_bytes: u64,
    /// Tokens in the source's token shards.
    pub tokens: u64,
    /// Documents in the token shards.
    pub packed_docs: u64,
    /// Text bytes per token (from the packer's counts).
    pub bytes_per_token: Option<f64>,
    /// Size of the token shards (`.bin` + `.idx`).
    pub token_disk_bytes: u64,
    /// Number of token shards.
    pub token_shards: u64,
    /// Sampling proportion in the mixture (0..1).
    pub proportion: f64,
    /// Tokens drawn in training.
    pub tokens_seen: f64,
    /// Epochs over the source in training (None when the source has no tokens).
    pub epochs: Option<f64>,
    /// The drop funnel: per stage counters, `read` first.
    pub funnel: Vec<StageStats>,
    /// Histograms with the stages' thresholds, the language mix and sampled dropped documents.
    #[serde(default)]
    pub profile: Profile,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct CorpusReport {
    /// Recipe name (or the folder name).
    pub name: String,
    /// The folder reported on.
    pub output: String,
    /// One row per source.
    pub sources: Vec<SourceRow>,
    /// The mixture plan the proportions and epochs come from.
    pub plan: MixturePlan,
    /// Things the reader should know (sources without weights, without tokens, ...).
    pub notes: Vec<String>,
}

/// Stats of every run output under `dir`, merged per source.
pub fn collect_run_stats(dir: &Path) -> Result<BTreeMap<String, (MergedStats, u64)>> {
    let mut out: BTreeMap<String, (MergedStats, u64)> = BTreeMap::new();
    walk_stats(dir, &mut out)?;
    Ok(out)
}

fn walk_stats(dir: &Path, out: &mut BTreeMap<String, (MergedStats, u64)>) -> Result<()> {
    for p in crate::doc::sorted_entries(dir)? {
        let name = file_name(&p);
        if p.is_dir() {
            if name != "rejected" && name != "quarantine" {
                walk_stats(&p, out)?;
            }
        } else if let Some(stem) = name.strip_suffix(".stats.json") {
            let bytes =
                std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
            let s: ShardStats = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a shard stats file", p.display()))?;
            let shard = p.with_file_name(format!("{stem}.jsonl.zst"));
            let shard_bytes = std::fs::metadata(&shard).map(|m| m.len()).unwrap_or(0);
            let entry = out.entry(s.source.clone()).or_default();
            entry.0.add(&s);
            entry.1 += shard_bytes;
        }
    }
    Ok(())
}

/// Every `pack.json` under `dir`, by source.
pub fn collect_packed(dir: &Path) -> Result<BTreeMap<String, (PathBuf, PackedSource)>> {
    let mut out = BTreeMap::new();
    walk_packed(dir, &mut out)?;
    Ok(out)
}

fn walk_packed(dir: &Path, out: &mut BTreeMap<String, (PathBuf, PackedSource)>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let p = entry?.path();
        let name = file_name(&p);
        if name.starts_with('.') || name == "rejected" || name == "quarantine" {
            continue;
        }
        if p.is_dir() {
            walk_packed(&p, out)?;
        } else if name == "pack.json" {
            let bytes = std::fs::read(&p)?;
            let packed: PackedSource = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a pack summary", p.display()))?;
            let family = p.parent().map(Path::to_path_buf).unwrap_or_default();
            out.insert(packed.source.clone(), (family, packed));
        }
    }
    Ok(())
}

/// Builds the report for `dir` (a recipe output root or any folder holding run outputs and
/// token shard families). Weights come from `recipe`, else LLaMA's Table 1.
pub fn build_report(dir: &Path, recipe: Option<&RecipeConfig>) -> Result<CorpusReport> {
    let runs = collect_run_stats(dir)?;
    let packed = collect_packed(dir)?;
    let mut notes = Vec::new();
    let mut names: Vec<String> = runs.keys().chain(packed.keys()).cloned().collect();
    if let Some(r) = recipe {
        names.extend(r.sources.iter().map(|s| s.name.clone()));
    }
    names.sort();
    names.dedup();
    // Table 1 order for the known sources, then the others alphabetically.
    let order = |n: &str| {
        recipe
            .and_then(|r| r.sources.iter().position(|s| s.name == n))
            .or_else(|| LLAMA_TABLE1_WEIGHTS.iter().position(|(k, _)| *k == n))
            .unwrap_or(usize::MAX)
    };
    names.sort_by_key(|n| order(n));
    if names.is_empty() {
        anyhow::bail!(
            "no run stats (*.stats.json) and no token shards (pack.json) under {}",
            dir.display()
        );
    }

    let mut supplies = Vec::new();
    for n in &names {
        let weight = match recipe {
            Some(r) => r.sources.iter().find(|s| &s.name == n).map(|s| s.weight),
            None => LLAMA_TABLE1_WEIGHTS
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, w)| *w),
        };
        let weight = weight.unwrap_or_else(|| {
            notes.push(format!(
                "{n}: no sampling weight (not in the recipe / Table 1); weight 0"
            ));
            0.0
        });
        let shards = match packed.get(n) {
            Some((family, _)) => read_supply(family)?,
            None => Vec::new(),
        };
        let token_bytes = shards
            .first()
            .and_then(|s| read_header(&dataset_paths(&s.prefix).1).ok())
            .map(|h| h.dtype.size())
            .unwrap_or(2);
        if shards.is_empty() {
            notes.push(format!("{n}: no token shards (not packed yet)"));
        }
        supplies.push(SourceSupply {
            name: n.clone(),
            weight,
            tokens: shards.iter().map(|s| s.tokens).sum::<u64>() as f64,
            token_bytes,
            shards,
            given: false,
        });
    }
    let settings = recipe.map(|r| r.mixture.clone()).unwrap_or_default();
    let max_shard = recipe
        .map(|r| r.pack.max_shard_bytes)
        .unwrap_or(2_000_000_000);
    let plan = plan(&settings, &supplies, max_shard);

    let mut rows = Vec::new();
    for (n, p) in names.iter().zip(&plan.sources) {
        let mut row = SourceRow {
            source: n.clone(),
            proportion: p.proportion,
            tokens_seen: p.tokens_seen,
            epochs: p.epochs.is_finite().then_some(p.epochs),
            ..Default::default()
        };
        if let Some((merged, shard_bytes)) = runs.get(n) {
            if let Some(last) = merged.stages.last() {
                row.docs = last.docs_out;
                row.text_bytes = last.bytes_out;
            }
            row.input_bytes = merged.stages.first().map(|s| s.bytes_in).unwrap_or(0);
            row.doc_shard_bytes = *shard_bytes;
            row.funnel = merged.stages.clone();
            row.profile = merged.profile.clone();
        } else {
            notes.push(format!("{n}: no run stats"));
        }
        if let Some((_, pk)) = packed.get(n) {
            row.tokens = pk.tokens;
            row.packed_docs = pk.docs;
            row.token_disk_bytes = pk.disk_bytes;
            row.token_shards = pk.shards.len() as u64;
            row.bytes_per_token = (pk.tokens > 0).then(|| pk.text_bytes as f64 / pk.tokens as f64);
            if row.funnel.is_empty() {
                row.docs = pk.docs;
                row.text_bytes = pk.text_bytes;
            }
            let empty: u64 = pk.inputs.iter().map(|i| i.empty_docs).sum();
            if empty > 0 {
                notes.push(format!(
                    "{n}: {empty} kept documents have empty text and are not in the token shards"
                ));
            }
        }
        rows.push(row);
    }
    Ok(CorpusReport {
        name: recipe
            .map(|r| r.name.clone())
            .unwrap_or_else(|| file_name(dir)),
        output: dir.display().to_string(),
        sources: rows,
        plan,
        notes,
    })
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

impl CorpusReport {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let s = &self.plan.settings;
        let mut out = format!(
            "# Corpus report: {}\n\nFolder `{}`; mixture planned for {:.3e} training tokens, sequence length {}, global batch {} tokens.\n\n",
            self.name, self.output, s.target_tokens, s.sequence_length, s.global_batch_tokens
        );
        out.push_str("| Dataset | Documents | Text | Tokens | Bytes/token | Sampling prop. | Epochs | Disk size (tokens) | Shards |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for r in &self.sources {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.source,
                r.docs,
                human_bytes(r.text_bytes as f64),
                r.tokens,
                r.bytes_per_token
                    .map(|b| format!("{b:.2}"))
                    .unwrap_or_else(|| "-".into()),
                pct(r.proportion),
                r.epochs
                    .map(|e| format!("{e:.2}"))
                    .unwrap_or_else(|| "-".into()),
                human_bytes(r.token_disk_bytes as f64),
                r.token_shards
            ));
        }
        let docs: u64 = self.sources.iter().map(|r| r.docs).sum();
        let text: u64 = self.sources.iter().map(|r| r.text_bytes).sum();
        let tokens: u64 = self.sources.iter().map(|r| r.tokens).sum();
        let disk: u64 = self.sources.iter().map(|r| r.token_disk_bytes).sum();
        out.push_str(&format!(
            "| **total** | {docs} | {} | {tokens} | | 100% | | {} | |\n",
            human_bytes(text as f64),
            human_bytes(disk as f64)
        ));
        out.push_str("\n## Drop funnel per source\n");
        for r in &self.sources {
            if r.funnel.is_empty() {
                continue;
            }
            out.push_str(&format!(
                "\n### {}\n\n| stage | docs in | docs out | kept | MB out | drops by reason |\n|---|---:|---:|---:|---:|---|\n",
                r.source
            ));
            for st in &r.funnel {
                let kept = if st.docs_in > 0 {
                    pct(st.docs_out as f64 / st.docs_in as f64)
                } else {
                    "-".into()
                };
                let drops = st
                    .drops
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {:.3} | {} |\n",
                    st.name,
                    st.docs_in,
                    st.docs_out,
                    kept,
                    st.bytes_out as f64 / 1e6,
                    drops
                ));
            }
        }
        if !self.plan.warnings.is_empty() || !self.notes.is_empty() {
            out.push_str("\n## Notes\n\n");
            for w in self.plan.warnings.iter().chain(&self.notes) {
                out.push_str(&format!("- {w}\n"));
            }
        }
        out
    }

    /// Writes `report.md`, `report.json` and `report.html` into `dir`; returns the HTML path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        write_atomic(&dir.join("report.md"), self.markdown().as_bytes())?;
        write_atomic(&dir.join("report.json"), &serde_json::to_vec_pretty(self)?)?;
        let html_path = dir.join("report.html");
        write_atomic(&html_path, html::render(self).as_bytes())?;
        Ok(html_path)
    }
}

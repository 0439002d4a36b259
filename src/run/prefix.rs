//! Runs training inputs through the first stages of a pipeline (those before a named stage), so
//! that a model is trained on documents prepared exactly as the pipeline prepares the ones it
//! will judge: `train-classifier` runs its positive and negative pages through the CommonCrawl
//! pipeline's line dedup, language ID and perplexity buckets, the stages before `classifier`.
//!
//! Each group of files read by one reader is one run (a pipeline reads one format) into its own
//! folder `WORK/<label>-<reader>`; the pipeline's own reader options apply to the group of its
//! reader. Runs are resumable like any other: a complete shard is not redone.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::config::PipelineConfig;
use super::runner::{run_config, Manifest, RunOptions};
use crate::sources::training::{reader_for, training_files};

/// The stages of a pipeline that come before the first stage of type `before` (all of them
/// when it has none), with the pipeline.
#[derive(Debug, Clone)]
pub struct PipelinePrefix {
    /// The pipeline file.
    pub path: PathBuf,
    /// The pipeline, its stages cut before `before`.
    pub config: PipelineConfig,
}

impl PipelinePrefix {
    /// Loads `path` and keeps the stages before the first one of type `before`.
    pub fn load(path: &Path, before: &str) -> Result<Self> {
        let mut config = PipelineConfig::load(path)?;
        let cut = config
            .stages
            .iter()
            .position(|t| t.get("type").and_then(toml::Value::as_str) == Some(before))
            .unwrap_or(config.stages.len());
        config.stages.truncate(cut);
        Ok(PipelinePrefix {
            path: path.to_path_buf(),
            config,
        })
    }

    /// The type names of the kept stages, in order.
    pub fn stage_names(&self) -> Vec<String> {
        self.config
            .stages
            .iter()
            .filter_map(|t| t.get("type").and_then(toml::Value::as_str))
            .map(str::to_string)
            .collect()
    }
}

/// What running one side's inputs through the prefix gave.
#[derive(Debug, Clone, Default)]
pub struct PrefixOutput {
    /// The runs' kept shards that hold documents (the prepared documents).
    pub shards: Vec<PathBuf>,
    /// Records the readers read.
    pub read: u64,
    /// Documents the stages kept.
    pub kept: u64,
    /// Why the others were dropped: `stage: reason` → documents.
    pub drops: Vec<(String, u64)>,
}

/// Runs `inputs` (files, folders, globs, as the training commands take them) through the
/// prefix into folders under `work` named after `label`. `reader` forces one reader for every
/// file. Inputs where the readers find no record at all are an error naming them.
pub fn run_prefix(
    prefix: &PipelinePrefix,
    label: &str,
    inputs: &[PathBuf],
    reader: Option<&str>,
    work: &Path,
    threads: usize,
) -> Result<PrefixOutput> {
    let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    let files = training_files(&names)?;
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for f in &files {
        let r = reader.unwrap_or_else(|| reader_for(f));
        let path = f.display().to_string();
        match groups.iter_mut().find(|(n, _)| *n == r) {
            Some((_, v)) => v.push(path),
            None => groups.push((r, vec![path])),
        }
    }
    let mut out = PrefixOutput::default();
    for (r, paths) in groups {
        let mut config = prefix.config.clone();
        if config.input.reader != r {
            config.input.reader = r.to_string();
            config.input.options = toml::Table::new();
        }
        config.input.paths = paths;
        let dir = work.join(format!("{label}-{r}"));
        config.output.dir = dir.clone();
        config.output.keep_rejected = false;
        config.output.split_rejected_by = None;
        let opts = RunOptions {
            threads,
            world_size: 1,
            ..Default::default()
        };
        let summary = run_config(&config, &opts).with_context(|| {
            format!(
                "{label} inputs read as `{r}` through the stages of {}",
                prefix.path.display()
            )
        })?;
        if let Some(f) = summary.failures.first() {
            bail!("{label} inputs: {f}");
        }
        let stages = &summary.stats.stages;
        out.read += stages.first().map_or(0, |s| s.docs_out);
        out.kept += stages.last().map_or(0, |s| s.docs_out);
        for s in stages {
            for (reason, n) in &s.drops {
                out.drops.push((format!("{}: {reason}", s.name), *n));
            }
        }
        out.shards.extend(non_empty_shards(&dir)?);
    }
    if out.read == 0 {
        bail!(
            "{label} inputs {names:?}: no record read from {} file(s) ({})",
            files.len(),
            files
                .iter()
                .map(|f| format!(
                    "{} as `{}`",
                    f.display(),
                    reader.unwrap_or_else(|| reader_for(f))
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(out)
}

/// The kept shards of a run folder whose manifest counts at least one document.
fn non_empty_shards(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut shards = Vec::new();
    for p in crate::doc::sorted_entries(dir)? {
        if !crate::doc::file_name(&p).ends_with(".manifest.json") {
            continue;
        }
        let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
        let m: Manifest = serde_json::from_slice(&bytes)
            .with_context(|| format!("bad manifest {}", p.display()))?;
        if m.output.docs > 0 {
            shards.push(dir.join(&m.output.file));
        }
    }
    Ok(shards)
}

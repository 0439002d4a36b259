//! The pipeline TOML: input files and reader, ordered stages with their parameters, output.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// One pipeline file (`pipelines/*.toml`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Pipeline name, shown in stats.
    pub name: String,
    /// Corpus source the documents belong to (`commoncrawl`, `c4`, ...).
    pub source: String,
    /// What to read.
    pub input: InputConfig,
    /// Where to write.
    pub output: OutputConfig,
    /// Ordered stages; each table has a `type` key naming the stage, the rest are parameters.
    #[serde(default)]
    pub stages: Vec<toml::Table>,
}

/// `[input]`: files and how to read them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// Files, folders (read recursively) or glob patterns.
    pub paths: Vec<String>,
    /// Reader name (`jsonl`, `warc`, `wet`, ...).
    pub reader: String,
    /// Reader options.
    #[serde(default)]
    pub options: toml::Table,
}

/// `[output]`: the output folder and what else to keep.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Output folder.
    pub dir: PathBuf,
    /// Write dropped documents to `rejected/` with the stage and reason in metadata.
    #[serde(default)]
    pub keep_rejected: bool,
    /// With `keep_rejected`: one rejected shard per value of this metadata key, e.g.
    /// `"language"` to keep the documents the language filter dropped, per language.
    #[serde(default)]
    pub split_rejected_by: Option<String>,
    /// Seed of the few dropped documents sampled per (stage, reason) for the report.
    #[serde(default)]
    pub sample_seed: u64,
}

impl PipelineConfig {
    /// Reads and checks a pipeline file; errors name the file and the offending key.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read pipeline {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in pipeline {}", path.display()))
    }

    /// Parses pipeline TOML text.
    pub fn parse(text: &str) -> Result<Self> {
        let config: PipelineConfig = toml::from_str(text)?;
        for (i, stage) in config.stages.iter().enumerate() {
            match stage.get("type") {
                Some(toml::Value::String(_)) => {}
                _ => anyhow::bail!("stage #{} has no `type = \"...\"`", i + 1),
            }
        }
        Ok(config)
    }
}

/// Parses a stage's parameter table into its typed config; unknown keys are errors that name
/// the key and the stage.
pub fn parse_params<T: serde::de::DeserializeOwned>(
    stage: &str,
    params: &toml::Table,
) -> Result<T> {
    toml::Value::Table(params.clone())
        .try_into()
        .map_err(|e| anyhow::anyhow!("stage `{stage}`: {e}"))
}

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
    /// Files, folders (read recursively), glob patterns or `http(s)://` URLs.
    #[serde(default)]
    pub paths: Vec<String>,
    /// A Common Crawl style path list (local file or URL, plain or gzipped): one path per
    /// line, each read from `base_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_list: Option<String>,
    /// Prefix of the path list's entries (a URL, or a local folder holding a mirror); with
    /// URLs in `paths`, the root their names in document ids are relative to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Cut big inputs into ranges of about this size (`"1GB"`), each its own shard: plain
    /// JSONL files at line ends, multistream MediaWiki dumps at bz2 streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_bytes: Option<String>,
    /// Reader name (`jsonl`, `warc`, `wet`, ...).
    pub reader: String,
    /// Reader options.
    #[serde(default)]
    pub options: toml::Table,
    /// How URL inputs are fetched.
    #[serde(default)]
    pub remote: RemoteConfig,
}

/// `[input.remote]`: limits and retries of URL inputs. The rate and connection limits are
/// global: each of the run's tasks gets its share.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// All tasks together read at most this many MB/s (1 MB = 10^6 bytes); none: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_mb: Option<f64>,
    /// All tasks together keep at most this many connections open (default 16).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Connect timeout and the longest a read may stall, in seconds (default 60).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: f64,
    /// Failed requests in a row without new bytes before an input fails (default 6).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Backoff before the second attempt, in seconds; doubles per attempt (default 1).
    #[serde(default = "default_retry_secs")]
    pub retry_base_secs: f64,
    /// Longest backoff (and longest `Retry-After` honoured), in seconds (default 60).
    #[serde(default = "default_retry_max_secs")]
    pub retry_max_secs: f64,
}

fn default_max_connections() -> usize {
    16
}
fn default_timeout_secs() -> f64 {
    60.0
}
fn default_max_attempts() -> u32 {
    6
}
fn default_retry_secs() -> f64 {
    1.0
}
fn default_retry_max_secs() -> f64 {
    60.0
}

impl Default for RemoteConfig {
    fn default() -> Self {
        RemoteConfig {
            rate_limit_mb: None,
            max_connections: default_max_connections(),
            timeout_secs: default_timeout_secs(),
            max_attempts: default_max_attempts(),
            retry_base_secs: default_retry_secs(),
            retry_max_secs: default_retry_max_secs(),
        }
    }
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

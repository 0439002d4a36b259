//! The recipe file (`pipelines/llama.toml`): which source pipelines make the corpus, the
//! tokenizer, the packing and the mixture. The schema is documented in docs/recipe.md.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::shards::PackSettings;

/// A whole recipe.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeConfig {
    /// Recipe name, shown in the report.
    pub name: String,
    /// Root folder of everything the recipe makes: `runs/<source>/`, `tokenizer/`,
    /// `tokens/<source>/`, `plan.json`, `report/`.
    pub output: PathBuf,
    /// The tokenizer.
    #[serde(default)]
    pub tokenizer: TokenizerConfig,
    /// Sequences and shard size.
    #[serde(default)]
    pub pack: PackSettings,
    /// Token budget, batch, cluster.
    #[serde(default)]
    pub mixture: MixtureSettings,
    /// The sources and their sampling weights.
    pub sources: Vec<SourceEntry>,
    /// Task counts and resources on a Slurm cluster (`datamill slurm submit`).
    #[serde(default)]
    pub slurm: crate::slurm::SlurmSettings,
}

/// `[tokenizer]`: a given model, or how to train one when it is missing.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenizerConfig {
    /// Model file; used when it exists, trained there when it does not (default:
    /// `OUTPUT/tokenizer/tokenizer.model`).
    pub model: Option<PathBuf>,
    /// Vocabulary size when training (LLaMA: 32,000).
    pub vocab_size: u32,
    /// Text sampled from the run outputs for training, in bytes (spread over all sources).
    pub sample_bytes: u64,
    /// Fraction of characters the alphabet covers when training (LLaMA: 0.99995).
    pub character_coverage: f64,
}

impl Default for TokenizerConfig {
    fn default() -> Self {
        TokenizerConfig {
            model: None,
            vocab_size: 32_000,
            sample_bytes: 200_000_000,
            character_coverage: 0.99995,
        }
    }
}

/// `[mixture]`: the training run the corpus is planned for. Defaults are LLaMA-65B's.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MixtureSettings {
    /// Tokens seen in training (LLaMA: 1.4T).
    pub target_tokens: f64,
    /// Tokens per optimizer step (LLaMA: "4M" = 2048 sequences of 2048 tokens).
    pub global_batch_tokens: u64,
    /// Sequence length in tokens.
    pub sequence_length: u64,
    /// GPUs in the cluster (LLaMA: 2048 A100 80 GB).
    pub gpus: u64,
    /// Data-parallel size (GPUs / (tensor x pipeline parallel)); default 256 = TP 8.
    pub data_parallel: u64,
    /// Warn when a source would be repeated more than this many epochs.
    pub max_epochs: f64,
    /// Training throughput per GPU, for the time estimate (LLaMA-65B: 380 tokens/s/GPU).
    pub tokens_per_gpu_second: f64,
}

impl Default for MixtureSettings {
    fn default() -> Self {
        MixtureSettings {
            target_tokens: 1.4e12,
            global_batch_tokens: 4_194_304,
            sequence_length: 2048,
            gpus: 2048,
            data_parallel: 256,
            max_epochs: 4.0,
            tokens_per_gpu_second: 380.0,
        }
    }
}

/// `[[sources]]`: one corpus source.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceEntry {
    /// Source name; must be the `source` its pipeline writes (it names `tokens/<name>/`).
    pub name: String,
    /// The source's pipeline file, run by `datamill recipe` when it exists.
    #[serde(default)]
    pub pipeline: Option<PathBuf>,
    /// Sampling weight (Table 1 percentages; normalised over all sources).
    pub weight: f64,
    /// Tokens available, when given instead of read from the shards' indexes.
    #[serde(default)]
    pub tokens: Option<f64>,
}

/// LLaMA Table 1 sampling proportions (percent), used when no recipe gives weights.
pub const LLAMA_TABLE1_WEIGHTS: &[(&str, f64)] = &[
    ("commoncrawl", 67.0),
    ("c4", 15.0),
    ("github", 4.5),
    ("wikipedia", 4.5),
    ("books", 4.5),
    ("arxiv", 2.5),
    ("stackexchange", 2.0),
];

impl RecipeConfig {
    /// Reads and checks a recipe; errors name the file and the key.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read recipe {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in recipe {}", path.display()))
    }

    /// Parses recipe TOML text.
    pub fn parse(text: &str) -> Result<Self> {
        let r: RecipeConfig = toml::from_str(text)?;
        if r.sources.is_empty() {
            bail!("no [[sources]]");
        }
        for s in &r.sources {
            if !(s.weight.is_finite() && s.weight >= 0.0) {
                bail!("source `{}`: weight must be a number >= 0", s.name);
            }
            if s.tokens.is_some_and(|t| !(t.is_finite() && t >= 0.0)) {
                bail!("source `{}`: tokens must be a number >= 0", s.name);
            }
        }
        r.slurm.check()?;
        let m = &r.mixture;
        if m.sequence_length == 0 || m.global_batch_tokens == 0 || m.data_parallel == 0 {
            bail!("[mixture]: sequence_length, global_batch_tokens and data_parallel must be > 0");
        }
        if !(m.target_tokens.is_finite() && m.target_tokens > 0.0) {
            bail!("[mixture]: target_tokens must be > 0");
        }
        Ok(r)
    }

    /// Folder of a source's run output.
    pub fn run_dir(&self, source: &str) -> PathBuf {
        self.output.join("runs").join(source)
    }

    /// Folder of the token shard families.
    pub fn tokens_dir(&self) -> PathBuf {
        self.output.join("tokens")
    }

    /// The tokenizer model path.
    pub fn tokenizer_model(&self) -> PathBuf {
        self.tokenizer
            .model
            .clone()
            .unwrap_or_else(|| self.output.join("tokenizer").join("tokenizer.model"))
    }
}

//! The mixture planner: from sampling weights, available tokens per source and the training
//! run, the tokens drawn from each source, its epochs, steps, disk, shards per data-parallel
//! rank and Megatron's `--data-path` blend.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::config::{MixtureSettings, RecipeConfig};
use crate::shards::megatron::{dataset_paths, read_header, LengthStream};
use crate::shards::verify::find_datasets;

/// Megatron's `mid_level_dataset_surplus`: each blended dataset is asked for 0.5% more samples.
pub const MEGATRON_SURPLUS: f64 = 0.005;

/// One token shard of a source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardSupply {
    /// Megatron prefix (path without `.bin`/`.idx`).
    pub prefix: PathBuf,
    /// Tokens in it.
    pub tokens: u64,
    /// `.bin` + `.idx` bytes.
    pub disk_bytes: u64,
}

/// What a source offers: its weight and tokens, from its shards or given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSupply {
    /// Source name.
    pub name: String,
    /// Sampling weight (any scale; normalised).
    pub weight: f64,
    /// Tokens available (one epoch).
    pub tokens: f64,
    /// Bytes per token of the shards (2 for uint16).
    pub token_bytes: u64,
    /// Its shards, when read from disk (empty when the count was given).
    pub shards: Vec<ShardSupply>,
    /// True when `tokens` was given rather than read from shards.
    pub given: bool,
}

/// The plan of one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourcePlan {
    /// Source name.
    pub name: String,
    /// Normalised sampling proportion (0..1).
    pub proportion: f64,
    /// Tokens available (one epoch).
    pub tokens_available: f64,
    /// Tokens drawn from it during training.
    pub tokens_seen: f64,
    /// tokens_seen / tokens_available.
    pub epochs: f64,
    /// Bytes of its token shards on disk (measured, or tokens x bytes per token).
    pub disk_bytes: f64,
    /// Number of shards (measured, or estimated from the shard size).
    pub shards: u64,
    /// Shards per data-parallel rank.
    pub shards_per_rank: f64,
    /// Samples Megatron's blend asks this dataset for (with the 0.5% surplus).
    pub megatron_samples: u64,
    /// Passes Megatron's GPTDataset builds into its document index for those samples.
    pub megatron_epochs: u64,
    /// Where the token count came from: `shards` or `given`.
    pub tokens_from: String,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixturePlan {
    /// The training run planned for.
    pub settings: MixtureSettings,
    /// Per source.
    pub sources: Vec<SourcePlan>,
    /// Optimizer steps: ceil(target / global batch).
    pub steps: u64,
    /// Sequences per step.
    pub sequences_per_step: u64,
    /// Sequences per data-parallel rank per step.
    pub sequences_per_rank_per_step: f64,
    /// Tokens each data-parallel rank reads over the run.
    pub tokens_per_rank: f64,
    /// Training samples (target / sequence length), Megatron's `N`.
    pub samples: u64,
    /// Unique tokens over all sources.
    pub tokens_available: f64,
    /// Estimated training days at `tokens_per_gpu_second` on all GPUs.
    pub days: f64,
    /// Megatron `--data-path` pairs: (weight, prefix).
    pub data_path: Vec<(f64, String)>,
    /// Warnings (too many epochs, missing tokens, ...).
    pub warnings: Vec<String>,
}

/// Reads the shards of `tokens/<source>/` (indexes only: header and lengths).
pub fn read_supply(dir: &Path) -> Result<Vec<ShardSupply>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for prefix in find_datasets(dir)? {
        let (bin, idx) = dataset_paths(&prefix);
        let mut tokens = 0u64;
        for len in LengthStream::open(&idx, 0)? {
            tokens += len.with_context(|| format!("{}", idx.display()))?;
        }
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        out.push(ShardSupply {
            disk_bytes: size(&bin) + size(&idx),
            prefix,
            tokens,
        });
    }
    Ok(out)
}

/// The supplies of a recipe's sources: given tokens win, else the shards in
/// `tokens_dir/<source>/`. A source with neither is kept with 0 tokens (and a warning).
pub fn recipe_supplies(recipe: &RecipeConfig, tokens_dir: &Path) -> Result<Vec<SourceSupply>> {
    recipe
        .sources
        .iter()
        .map(|s| {
            let shards = read_supply(&tokens_dir.join(&s.name))?;
            let token_bytes = shards
                .first()
                .and_then(|sh| read_header(&dataset_paths(&sh.prefix).1).ok())
                .map(|h| h.dtype.size())
                .unwrap_or(2);
            Ok(match s.tokens {
                Some(t) => SourceSupply {
                    name: s.name.clone(),
                    weight: s.weight,
                    tokens: t,
                    token_bytes,
                    shards: Vec::new(),
                    given: true,
                },
                None => SourceSupply {
                    name: s.name.clone(),
                    weight: s.weight,
                    tokens: shards.iter().map(|x| x.tokens).sum::<u64>() as f64,
                    token_bytes,
                    shards,
                    given: false,
                },
            })
        })
        .collect()
}

/// Megatron GPTDataset's epoch count: the fewest passes over `tokens` that give `samples`
/// sequences of `seq_len` (+1 extra token).
pub fn megatron_epochs(tokens: f64, samples: u64, seq_len: u64) -> u64 {
    if tokens < 1.0 {
        return 0;
    }
    let need = samples as f64 * seq_len as f64 + 1.0;
    (need / tokens).ceil().max(1.0) as u64
}

/// Plans the mixture. `max_shard_bytes` estimates shard counts of sources without shards.
pub fn plan(
    settings: &MixtureSettings,
    supplies: &[SourceSupply],
    max_shard_bytes: u64,
) -> MixturePlan {
    let mut warnings = Vec::new();
    let total_weight: f64 = supplies.iter().map(|s| s.weight).sum();
    let target = settings.target_tokens;
    let seq = settings.sequence_length;
    let samples = (target / seq as f64).ceil() as u64;
    let dp = settings.data_parallel.max(1);
    let mut sources = Vec::new();
    let mut data_path = Vec::new();
    for s in supplies {
        let proportion = if total_weight > 0.0 {
            s.weight / total_weight
        } else {
            0.0
        };
        let seen = proportion * target;
        let epochs = if s.tokens > 0.0 {
            seen / s.tokens
        } else {
            f64::INFINITY
        };
        if proportion > 0.0 && s.tokens <= 0.0 {
            warnings.push(format!(
                "{}: weight {} but no tokens (no shards under tokens/{}/ and none given)",
                s.name, s.weight, s.name
            ));
        } else if epochs > settings.max_epochs {
            warnings.push(format!(
                "{}: {:.2} epochs, more than max_epochs = {} (the source would repeat; lower its weight or add data)",
                s.name, epochs, settings.max_epochs
            ));
        }
        let (disk_bytes, shards) = if s.shards.is_empty() {
            let bytes = s.tokens * s.token_bytes as f64;
            (bytes, (bytes / max_shard_bytes.max(1) as f64).ceil() as u64)
        } else {
            (
                s.shards.iter().map(|x| x.disk_bytes as f64).sum(),
                s.shards.len() as u64,
            )
        };
        let megatron_samples =
            ((samples as f64 * proportion).ceil() * (1.0 + MEGATRON_SURPLUS)).ceil() as u64;
        if proportion > 0.0 {
            if s.shards.is_empty() {
                data_path.push((
                    proportion,
                    format!("tokens/{}/{}_NNNNN (no shards yet)", s.name, s.name),
                ));
            } else {
                let total: f64 = s.shards.iter().map(|x| x.tokens as f64).sum();
                for sh in &s.shards {
                    let w = if total > 0.0 {
                        proportion * sh.tokens as f64 / total
                    } else {
                        0.0
                    };
                    data_path.push((w, sh.prefix.display().to_string()));
                }
            }
        }
        sources.push(SourcePlan {
            name: s.name.clone(),
            proportion,
            tokens_available: s.tokens,
            tokens_seen: seen,
            epochs,
            disk_bytes,
            shards,
            shards_per_rank: shards as f64 / dp as f64,
            megatron_samples,
            megatron_epochs: megatron_epochs(s.tokens, megatron_samples, seq),
            tokens_from: if s.given { "given" } else { "shards" }.to_string(),
        });
    }
    let sequences_per_step = settings.global_batch_tokens / seq.max(1);
    let gpus_tokens_per_s = settings.tokens_per_gpu_second * settings.gpus as f64;
    MixturePlan {
        settings: settings.clone(),
        steps: (target / settings.global_batch_tokens as f64).ceil() as u64,
        sequences_per_step,
        sequences_per_rank_per_step: sequences_per_step as f64 / dp as f64,
        tokens_per_rank: target / dp as f64,
        samples,
        tokens_available: supplies.iter().map(|s| s.tokens).sum(),
        days: if gpus_tokens_per_s > 0.0 {
            target / gpus_tokens_per_s / 86_400.0
        } else {
            0.0
        },
        data_path,
        warnings,
        sources,
    }
}

fn human(x: f64) -> String {
    let a = x.abs();
    if a >= 1e12 {
        format!("{:.2}T", x / 1e12)
    } else if a >= 1e9 {
        format!("{:.1}B", x / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// Human-readable bytes (GB with decimals, as Table 1 gives them).
pub fn human_bytes(x: f64) -> String {
    if x >= 1e12 {
        format!("{:.2} TB", x / 1e12)
    } else if x >= 1e9 {
        format!("{:.1} GB", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.2} MB", x / 1e6)
    } else {
        format!("{:.1} kB", x / 1e3)
    }
}

impl MixturePlan {
    /// The plan as printed by `datamill plan`.
    pub fn render(&self) -> String {
        let s = &self.settings;
        let mut out = format!(
            "target {} tokens, global batch {} tokens ({} x {}), {} GPUs, data-parallel {}\n\n",
            human(s.target_tokens),
            s.global_batch_tokens,
            self.sequences_per_step,
            s.sequence_length,
            s.gpus,
            s.data_parallel
        );
        out.push_str(&format!(
            "{:<14} {:>7} {:>11} {:>11} {:>7} {:>10} {:>7} {:>10} {:>10} {:>4}  {}\n",
            "source",
            "prop.",
            "available",
            "seen",
            "epochs",
            "disk",
            "shards",
            "shards/DP",
            "MG samples",
            "MG E",
            "tokens"
        ));
        for p in &self.sources {
            out.push_str(&format!(
                "{:<14} {:>6.2}% {:>11} {:>11} {:>7.2} {:>10} {:>7} {:>10.3} {:>10} {:>4}  {}\n",
                p.name,
                p.proportion * 100.0,
                human(p.tokens_available),
                human(p.tokens_seen),
                p.epochs,
                human_bytes(p.disk_bytes),
                p.shards,
                p.shards_per_rank,
                human(p.megatron_samples as f64),
                p.megatron_epochs,
                p.tokens_from
            ));
        }
        out.push_str(&format!(
            "\n{} steps; {} sequences of {} tokens per step, {:.2} per data-parallel rank; {} tokens per rank over the run; {} unique tokens available; {} samples (Megatron N)\n",
            self.steps,
            self.sequences_per_step,
            s.sequence_length,
            self.sequences_per_rank_per_step,
            human(self.tokens_per_rank),
            human(self.tokens_available),
            self.samples
        ));
        if self.days > 0.0 {
            out.push_str(&format!(
                "at {} tokens/s/GPU on {} GPUs: {:.1} days\n",
                s.tokens_per_gpu_second, s.gpus, self.days
            ));
        }
        out.push_str("\nMegatron: --data-path");
        for (w, p) in &self.data_path {
            out.push_str(&format!(" \\\n  {w:.8} {p}"));
        }
        out.push('\n');
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn megatron_epochs_are_the_fewest_passes_that_cover_the_samples() {
        assert_eq!(megatron_epochs(4097.0, 2, 2048), 1);
        assert_eq!(megatron_epochs(4096.0, 2, 2048), 2);
        assert_eq!(megatron_epochs(0.0, 2, 2048), 0);
    }

    #[test]
    fn a_source_without_tokens_is_a_warning_not_a_division_by_zero() {
        let supply = SourceSupply {
            name: "books".into(),
            weight: 1.0,
            tokens: 0.0,
            token_bytes: 2,
            shards: vec![],
            given: false,
        };
        let p = plan(&MixtureSettings::default(), &[supply], 1 << 30);
        assert!(p.warnings[0].contains("no tokens"), "{:?}", p.warnings);
        assert!(p.sources[0].epochs.is_infinite());
        let shown = p.render();
        assert!(
            shown.contains("tokens/books/books_NNNNN (no shards yet)"),
            "{shown}"
        );
    }

    #[test]
    fn tokens_read_from_an_empty_folder_are_zero_not_minus_zero() {
        let dir = tempfile::tempdir().unwrap();
        let recipe = RecipeConfig::parse(
            "name = \"x\"\noutput = \"o\"\n[[sources]]\nname = \"c4\"\nweight = 1\n",
        )
        .unwrap();
        let s = recipe_supplies(&recipe, dir.path()).unwrap();
        assert!(s[0].tokens == 0.0 && s[0].tokens.is_sign_positive());
        let shown = plan(&recipe.mixture, &s, 1 << 30).render();
        assert!(!shown.contains("-0"), "{shown}");
    }
}

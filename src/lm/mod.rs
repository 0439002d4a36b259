//! The CCNet-style n-gram language model: tokeniser, Kneser-Ney training, the memory-mapped
//! model file, and its sidecar JSON with the per-language perplexity cutoffs.

pub mod model;
pub mod tokenize;
pub mod train;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};

use crate::doc::write_atomic;
use crate::sources::training::for_each_training_text;
use model::{NgramModel, ScoreScratch};
use train::{KneserNeyTrainer, TrainSummary};

/// How the model's text is tokenised (written to the sidecar).
pub const TOKENIZER: &str =
    "datamill-words-v1: lowercase, digits to 0, letter/digit runs are words, \
every other non-space character (and each CJK/kana/hangul/Thai character) one token";

/// Perplexity cutoffs of one language: documents below `head` are head, below `middle` middle.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cutoffs {
    /// Head/middle boundary (CCNet: 30th percentile).
    pub head: f64,
    /// Middle/tail boundary (CCNet: 60th percentile).
    pub middle: f64,
    /// Percentiles the two cutoffs were taken at.
    #[serde(default)]
    pub percentiles: [f64; 2],
    /// Number of sample documents they were computed from.
    #[serde(default)]
    pub docs: u64,
}

/// The sidecar JSON next to a model (`MODEL.json`): how it was made and the cutoffs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LmSidecar {
    /// Always `datamill-kn-lm`.
    pub format: String,
    /// Tokeniser description ([`TOKENIZER`]).
    pub tokenizer: String,
    /// Training inputs as given.
    pub inputs: Vec<String>,
    /// Training summary (order, counts, discounts).
    pub training: Option<serde_json::Value>,
    /// Perplexity cutoffs per language, written by `datamill lm-cutoffs`.
    #[serde(default)]
    pub cutoffs: BTreeMap<String, Cutoffs>,
}

/// The sidecar path of a model: the model path with `.json` appended.
pub fn sidecar_path(model: &Path) -> PathBuf {
    let mut s = model.as_os_str().to_os_string();
    s.push(".json");
    PathBuf::from(s)
}

impl LmSidecar {
    /// Reads the sidecar of `model`.
    pub fn load(model: &Path) -> Result<Self> {
        let p = sidecar_path(model);
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("cannot read model sidecar {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("bad model sidecar {}", p.display()))
    }

    /// Writes it next to `model` (atomically).
    pub fn save(&self, model: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        write_atomic(&sidecar_path(model), &bytes)
    }
}

/// `datamill train-lm`: trains on every document of `inputs`, writes the model and sidecar.
pub fn train_lm(
    inputs: &[PathBuf],
    reader: Option<&str>,
    order: usize,
    output: &Path,
) -> Result<TrainSummary> {
    let mut trainer = KneserNeyTrainer::new(order)?;
    let mut err = None;
    for_each_training_text(inputs, reader, None, &mut |text| {
        if err.is_none() {
            if let Err(e) = trainer.add_text(text) {
                err = Some(e);
            }
        }
    })?;
    if let Some(e) = err {
        return Err(e);
    }
    let (bytes, summary) = trainer.finish()?;
    write_atomic(output, &bytes)?;
    LmSidecar {
        format: "datamill-kn-lm".into(),
        tokenizer: TOKENIZER.into(),
        inputs: inputs.iter().map(|p| p.display().to_string()).collect(),
        training: Some(serde_json::to_value(&summary)?),
        cutoffs: BTreeMap::new(),
    }
    .save(output)?;
    // Check what was written loads.
    NgramModel::load(output)?;
    Ok(summary)
}

/// Rounds a perplexity to one decimal, as CCNet stores it.
pub fn round_perplexity(pp: f64) -> f64 {
    (pp * 10.0).round() / 10.0
}

/// The value at percentile `p` (0..=100) of sorted `values`, by linear interpolation.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = (p / 100.0).clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// `datamill lm-cutoffs`: scores every document of a sample, takes the perplexity percentiles
/// and writes them as the cutoffs of `lang` into the model's sidecar. With `language_field`,
/// JSONL documents whose field names another language are skipped.
pub fn compute_cutoffs(
    model_path: &Path,
    lang: &str,
    inputs: &[PathBuf],
    reader: Option<&str>,
    language_field: Option<&str>,
    percentiles: [f64; 2],
) -> Result<Cutoffs> {
    ensure!(
        percentiles[0] < percentiles[1],
        "percentiles must increase, got {percentiles:?}"
    );
    let model = NgramModel::load(model_path)?;
    let mut sidecar = LmSidecar::load(model_path)?;
    let mut scratch = ScoreScratch::default();
    let mut pps = Vec::new();
    let filter = language_field.map(|f| (f, lang));
    for_each_training_text(inputs, reader, filter, &mut |text| {
        if let Some(pp) = model.score_text(text, &mut scratch).perplexity() {
            pps.push(round_perplexity(pp));
        }
    })?;
    ensure!(!pps.is_empty(), "no document with text in the sample");
    pps.sort_by(f64::total_cmp);
    let cut = Cutoffs {
        head: percentile(&pps, percentiles[0]),
        middle: percentile(&pps, percentiles[1]),
        percentiles,
        docs: pps.len() as u64,
    };
    sidecar.cutoffs.insert(lang.to_string(), cut);
    sidecar.save(model_path)?;
    Ok(cut)
}

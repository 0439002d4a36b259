//! The Wikipedia-reference classifier (LLaMA's "pages used as references in Wikipedia vs
//! random pages"): a fastText supervised linear model over normalised words and bigrams.
//!
//! `train-classifier` ([`super::wikiref_training`]) writes `MODEL` (a fastText `.bin`) and
//! `MODEL.json` (size and xxh3 of the model, how the classes were chosen, training figures);
//! the stage `classifier` checks both at start-up, so a missing, truncated or foreign model
//! file is a clear error before any work.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use fasttext::FastText;
use serde::{Deserialize, Serialize};

use crate::doc::Document;
use crate::filter::fasttext_model::FastTextModel;
use crate::filter::fasttext_tokens::Input;
use crate::lm::tokenize::WordTokenizer;
use crate::run::config::parse_params;
use crate::stage::{DocPos, Stage, Verdict};

/// Label of reference-like text.
pub const POSITIVE: &str = "__label__ref";
/// Label of random web text.
pub const NEGATIVE: &str = "__label__web";
/// At most this many bytes of a document are classified (fastText cost grows with length).
pub const MAX_CLASSIFIED_BYTES: usize = 16 << 10;

/// Training settings of `train-classifier`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSettings {
    /// Passes over the data (default 20).
    pub epoch: i32,
    /// Learning rate (default 0.5).
    pub lr: f64,
    /// Vector dimension (default 32).
    pub dim: i32,
    /// Word n-gram length (default 2).
    pub word_ngrams: i32,
    /// Hash buckets for the word n-grams (default 200,000).
    pub bucket: i32,
    /// Fraction of hosts whose documents are held out for the report (default 0.1).
    pub holdout: f64,
    /// Threshold on p(ref) at which the report counts a prediction as positive (default 0.5).
    pub threshold: f32,
    /// At most this many documents per class are kept for training and held-out testing: a
    /// deterministic uniform sample (reservoir, seed [`SAMPLE_SEED`]) of each class's stream,
    /// so memory stays bounded however large the inputs (default 20,000).
    #[serde(default = "default_max_per_class")]
    pub max_per_class: usize,
    /// Seed of the samples and of the held-out hosts (default [`SAMPLE_SEED`]).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Quantize the trained model (product quantizer, quantized norms, at most
    /// [`QUANTIZE_CUTOFF`] input rows kept) before the held-out test and saving.
    #[serde(default)]
    pub quantize: bool,
}

fn default_seed() -> u64 {
    SAMPLE_SEED
}

/// The threshold the pipeline keeps pages at (RedPajama's `wiki_prob >= 0.25`); the report
/// gives the share of each held-out class kept at it.
pub const KEEP_THRESHOLD: f32 = 0.25;

/// Input rows a quantized classifier keeps (those of largest norm; fastText's `-cutoff`).
pub const QUANTIZE_CUTOFF: usize = 100_000;

/// Default of [`TrainSettings::max_per_class`].
pub const DEFAULT_MAX_PER_CLASS: usize = 20_000;

/// Seed of the per-class reservoir sample (fixed: the same inputs give the same model).
pub const SAMPLE_SEED: u64 = 0x5eed_c1a5_51f1_e700;

fn default_max_per_class() -> usize {
    DEFAULT_MAX_PER_CLASS
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            epoch: 20,
            lr: 0.5,
            dim: 32,
            word_ngrams: 2,
            bucket: 200_000,
            holdout: 0.1,
            threshold: 0.5,
            max_per_class: DEFAULT_MAX_PER_CLASS,
            seed: SAMPLE_SEED,
            quantize: false,
        }
    }
}

/// Held-out figures of a trained classifier.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassifierReport {
    /// Positive documents used (at most `max_per_class`).
    pub positives: usize,
    /// Negative documents used (at most `max_per_class`).
    pub negatives: usize,
    /// Positive documents read (non-empty after normalisation).
    #[serde(default)]
    pub positives_read: u64,
    /// Negative documents read.
    #[serde(default)]
    pub negatives_read: u64,
    /// Documents trained on.
    pub trained: usize,
    /// Documents held out.
    pub held_out: usize,
    /// Held-out precision of the positive class at the report threshold.
    pub precision: f64,
    /// Held-out recall of the positive class.
    pub recall: f64,
    /// Held-out accuracy.
    pub accuracy: f64,
    /// Held-out positive documents.
    #[serde(default)]
    pub held_out_positives: usize,
    /// Held-out negative documents.
    #[serde(default)]
    pub held_out_negatives: usize,
    /// Median p(ref) of the held-out positives.
    #[serde(default)]
    pub held_out_positive_median: f64,
    /// Median p(ref) of the held-out negatives.
    #[serde(default)]
    pub held_out_negative_median: f64,
    /// Share of the held-out positives with p(ref) at least [`KEEP_THRESHOLD`].
    #[serde(default)]
    pub held_out_positive_kept: f64,
    /// Share of the held-out negatives with p(ref) at least [`KEEP_THRESHOLD`].
    #[serde(default)]
    pub held_out_negative_kept: f64,
}

/// How the two classes of a classifier were chosen (in its sidecar).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainingRule {
    /// The rule in words.
    pub summary: String,
    /// Inputs of the positive side.
    pub positive_inputs: Vec<String>,
    /// Inputs of the negative side (random pages).
    pub negative_inputs: Vec<String>,
    /// Which positive-side records are positives: `all`, `url` (normalised URL cited in
    /// `refs`) or `url_or_host` (URL cited, or failing that host cited, `www.` ignored).
    pub positive_match: String,
    /// The cited-URL list (`wiki-refs` output) when one was used.
    pub refs: Option<String>,
    /// Distinct URLs in it.
    pub refs_urls: u64,
    /// Positive records matched by URL and by host only.
    pub matched_by_url: u64,
    /// Positive records matched by host only (`url_or_host`).
    pub matched_by_host: u64,
    /// The pipeline whose stages both sides ran through, and those stages.
    pub pipeline: Option<String>,
    /// Stage types run before training, in order.
    pub stages: Vec<String>,
    /// How the negatives were drawn.
    pub negatives: String,
    /// How documents were held out.
    pub holdout: String,
}

/// The sidecar of a classifier model: integrity data and how it was trained.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassifierSidecar {
    /// Always `datamill-wikiref-fasttext`.
    pub format: String,
    /// Model size in bytes.
    pub bytes: u64,
    /// xxh3-64 of the model file, 16 hex digits.
    pub xxh3: String,
    /// Training settings.
    pub settings: TrainSettings,
    /// Held-out figures.
    pub report: ClassifierReport,
    /// How the classes were chosen.
    #[serde(default)]
    pub rule: Option<TrainingRule>,
}

pub(crate) fn sidecar_path(model: &Path) -> PathBuf {
    crate::lm::sidecar_path(model)
}

/// One training line: label then the normalised words of the document on one line.
pub(crate) fn normalise_doc(tok: &mut WordTokenizer, text: &str, out: &mut String) {
    let cut = floor_char_boundary(text, MAX_CLASSIFIED_BYTES);
    tok.normalized(&text[..cut], out);
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// p(`__label__ref`) of a normalised one-line text.
pub(crate) fn positive_prob(ft: &FastText, normalised: &str) -> Result<f32> {
    let preds = ft
        .predict(normalised, 2, 0.0)
        .map_err(|e| anyhow::anyhow!("fastText predict: {e}"))?;
    for p in &preds {
        if p.label == POSITIVE {
            return Ok(p.prob.clamp(0.0, 1.0));
        }
    }
    // Only the negative label came back: its complement.
    Ok(preds
        .iter()
        .find(|p| p.label == NEGATIVE)
        .map_or(0.0, |p| (1.0 - p.prob).clamp(0.0, 1.0)))
}

/// A loaded reference classifier, shared by all threads (datamill's own fastText inference).
pub struct ReferenceClassifier {
    model: FastTextModel,
    positive: usize,
    negative: Option<usize>,
}

impl ReferenceClassifier {
    /// Checks the model against its sidecar (size, xxh3) and loads it.
    pub fn load(path: &Path) -> Result<Self> {
        let side_path = sidecar_path(path);
        let side: ClassifierSidecar =
            serde_json::from_str(&std::fs::read_to_string(&side_path).with_context(|| {
                format!(
                    "cannot read classifier sidecar {} (train with `datamill train-classifier`)",
                    side_path.display()
                )
            })?)
            .with_context(|| format!("bad classifier sidecar {}", side_path.display()))?;
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read classifier model {}", path.display()))?;
        ensure!(
            bytes.len() as u64 == side.bytes,
            "classifier model {} is {} bytes, its sidecar says {}: truncated or replaced",
            path.display(),
            bytes.len(),
            side.bytes
        );
        let sum = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
        ensure!(
            sum == side.xxh3,
            "classifier model {} does not match its sidecar checksum",
            path.display()
        );
        drop(bytes);
        let model = FastTextModel::load(path)?;
        let find = |full: &str| {
            let name = full.strip_prefix("__label__").unwrap_or(full);
            model.labels().iter().position(|l| l == name)
        };
        let Some(positive) = find(POSITIVE) else {
            bail!(
                "classifier model {} has no label {POSITIVE} (labels: {:?})",
                path.display(),
                model.labels()
            );
        };
        let negative = find(NEGATIVE);
        Ok(ReferenceClassifier {
            model,
            positive,
            negative,
        })
    }

    /// p(reference-like) of a raw document text.
    pub fn score(&self, text: &str, tok: &mut WordTokenizer, buf: &mut String) -> f32 {
        normalise_doc(tok, text, buf);
        if buf.is_empty() {
            return 0.0;
        }
        // As the C++ library's top-2 prediction of the normalised line: p(ref), or the
        // complement of p(web) when only that came back.
        self.model.predict(buf, Input::Line, 2, |preds| {
            if let Some(p) = preds.iter().find(|p| p.label == self.positive) {
                p.prob.clamp(0.0, 1.0)
            } else {
                preds
                    .iter()
                    .find(|p| Some(p.label) == self.negative)
                    .map_or(0.0, |p| (1.0 - p.prob).clamp(0.0, 1.0))
            }
        })
    }
}

fn default_threshold() -> f64 {
    0.25
}

fn default_model() -> PathBuf {
    PathBuf::from("models/wikiref.bin")
}

/// Parameters of `type = "classifier"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// Model trained by `datamill train-classifier` (default `models/wikiref.bin`).
    #[serde(default = "default_model")]
    pub model: PathBuf,
    /// Documents with `wiki_ref_prob` below this are dropped (default 0.25, RedPajama's).
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

/// Writes `metadata.wiki_ref_prob` and drops documents below the threshold
/// (`wiki_ref_prob_low`).
pub struct ClassifierStage {
    classifier: ReferenceClassifier,
    threshold: f64,
}

thread_local! {
    static BUFS: std::cell::RefCell<(WordTokenizer, String)> =
        std::cell::RefCell::new((WordTokenizer::new(), String::new()));
}

impl ClassifierStage {
    /// Builds the stage and loads the model (checked) once.
    pub fn from_params(params: &toml::Table) -> Result<Self> {
        let c: ClassifierConfig = parse_params("classifier", params)?;
        ensure!(
            (0.0..=1.0).contains(&c.threshold),
            "stage `classifier`: threshold must be in [0, 1]"
        );
        Ok(ClassifierStage {
            classifier: ReferenceClassifier::load(&c.model)?,
            threshold: c.threshold,
        })
    }
}

impl Stage for ClassifierStage {
    fn name(&self) -> &str {
        "classifier"
    }

    fn marks(&self) -> Vec<(&'static str, String, f64)> {
        vec![(
            "wiki_ref_prob",
            "classifier threshold".into(),
            self.threshold,
        )]
    }

    fn process(&self, doc: &mut Document, _pos: DocPos) -> Verdict {
        let p = BUFS.with(|b| {
            let (tok, buf) = &mut *b.borrow_mut();
            self.classifier.score(&doc.text, tok, buf)
        });
        let p = (p as f64 * 10_000.0).round() / 10_000.0;
        doc.set("wiki_ref_prob", p);
        if p < self.threshold {
            Verdict::drop("wiki_ref_prob_low")
        } else {
            Verdict::Keep
        }
    }
}

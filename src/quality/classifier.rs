//! The Wikipedia-reference classifier (LLaMA's "pages used as references in Wikipedia vs
//! random pages"): a fastText supervised linear model over normalised words and bigrams.
//!
//! `train-classifier` writes `MODEL` (a fastText `.bin`) and `MODEL.json` (size and xxh3 of the
//! model, training figures); the stage `classifier` checks both at start-up, so a missing,
//! truncated or foreign model file is a clear error before any work.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use fasttext::{Args, FastText, LossName, ModelName};
use serde::{Deserialize, Serialize};

use super::corpus::for_each_input_document;
use super::reservoir::Reservoir;
use crate::doc::{write_atomic, Document};
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
    /// Fraction of documents held out for the precision/recall report (default 0.1).
    pub holdout: f64,
    /// Threshold on p(ref) at which the report counts a prediction as positive (default 0.5).
    pub threshold: f32,
    /// At most this many documents per class are kept for training and held-out testing: a
    /// deterministic uniform sample (reservoir, seed [`SAMPLE_SEED`]) of each class's stream,
    /// so memory stays bounded however large the inputs (default 20,000).
    #[serde(default = "default_max_per_class")]
    pub max_per_class: usize,
    /// Quantize the trained model (product quantizer, quantized norms, at most
    /// [`QUANTIZE_CUTOFF`] input rows kept) before the held-out test and saving.
    #[serde(default)]
    pub quantize: bool,
}

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
}

fn sidecar_path(model: &Path) -> PathBuf {
    crate::lm::sidecar_path(model)
}

/// Deterministic 64-bit mixing for the train/held-out split.
fn split_hash(i: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes())
}

/// One training line: label then the normalised words of the document on one line.
fn normalise_doc(tok: &mut WordTokenizer, text: &str, out: &mut String) {
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

/// `datamill train-classifier`: trains on positives vs negatives, holds out a fraction, prints
/// nothing itself but returns the held-out report (also stored in the sidecar).
pub fn train_classifier(
    positives: &[PathBuf],
    negatives: &[PathBuf],
    reader: Option<&str>,
    output: &Path,
    settings: &TrainSettings,
) -> Result<ClassifierReport> {
    ensure!(
        (0.0..1.0).contains(&settings.holdout),
        "holdout must be in [0, 1)"
    );
    ensure!(
        settings.max_per_class > 0,
        "max_per_class must be at least 1"
    );
    let mut tok = WordTokenizer::new();
    let mut docs: Vec<(bool, String)> = Vec::new();
    let mut read = [0u64; 2];
    let mut line = String::new();
    for (label, inputs) in [(true, positives), (false, negatives)] {
        // Streams the inputs, keeping a bounded, deterministic sample of the class.
        let mut sample = Reservoir::new(settings.max_per_class, SAMPLE_SEED);
        for_each_input_document(inputs, reader, None, &mut |text| {
            normalise_doc(&mut tok, text, &mut line);
            if !line.is_empty() {
                sample.offer_with(|| line.clone());
            }
        })?;
        read[usize::from(!label)] = sample.seen();
        docs.extend(sample.into_stream_order().into_iter().map(|l| (label, l)));
    }
    let n_pos = docs.iter().filter(|d| d.0).count();
    let n_neg = docs.len() - n_pos;
    ensure!(
        n_pos > 0 && n_neg > 0,
        "need positive and negative documents (got {n_pos} and {n_neg})"
    );
    // Deterministic shuffle, then the first `holdout` share is held out.
    let mut order: Vec<usize> = (0..docs.len()).collect();
    order.sort_by_key(|&i| split_hash(i as u64));
    let n_hold = ((docs.len() as f64) * settings.holdout).round() as usize;
    let (held, train) = order.split_at(n_hold);

    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = TempDir::create(dir.join(format!(".train-classifier-{}", std::process::id())))?;
    let train_file = tmp.0.join("train.txt");
    {
        let mut w = BufWriter::new(File::create(&train_file)?);
        for &i in train {
            let (label, text) = &docs[i];
            writeln!(w, "{} {}", if *label { POSITIVE } else { NEGATIVE }, text)?;
        }
        w.flush()?;
    }
    let mut args = Args::new();
    args.set_input(&train_file.to_string_lossy())
        .map_err(|e| anyhow::anyhow!("fastText args: {e}"))?;
    args.set_model(ModelName::SUP);
    args.set_loss(LossName::SOFTMAX);
    args.set_word_ngrams(settings.word_ngrams);
    args.set_bucket(settings.bucket);
    args.set_min_count(1);
    args.set_minn(0);
    args.set_maxn(0);
    args.set_lr(settings.lr);
    args.set_dim(settings.dim);
    args.set_epoch(settings.epoch);
    args.set_thread(1); // one thread: the same inputs give the same model
    args.set_verbose(0);
    let mut ft = FastText::new();
    ft.train(&args)
        .map_err(|e| anyhow::anyhow!("fastText training failed: {e}"))?;
    if settings.quantize {
        args.set_qnorm(true);
        args.set_cutoff(QUANTIZE_CUTOFF);
        args.set_retrain(false);
        ft.quantize(&args)
            .map_err(|e| anyhow::anyhow!("fastText quantization failed: {e}"))?;
    }

    let (mut tp, mut fp, mut fneg, mut correct) = (0usize, 0usize, 0usize, 0usize);
    for &i in held {
        let (label, text) = &docs[i];
        let p = positive_prob(&ft, text)?;
        let predicted = p >= settings.threshold;
        match (predicted, *label) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fneg += 1,
            (false, false) => {}
        }
        correct += usize::from(predicted == *label);
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let report = ClassifierReport {
        positives: n_pos,
        negatives: n_neg,
        positives_read: read[0],
        negatives_read: read[1],
        trained: train.len(),
        held_out: held.len(),
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, tp + fneg),
        accuracy: ratio(correct, held.len()),
    };

    let tmp_model = tmp.0.join("model.bin");
    ft.save_model(&tmp_model.to_string_lossy())
        .map_err(|e| anyhow::anyhow!("cannot save fastText model: {e}"))?;
    let bytes = std::fs::read(&tmp_model)?;
    write_atomic(output, &bytes)?;
    let side = ClassifierSidecar {
        format: "datamill-wikiref-fasttext".into(),
        bytes: bytes.len() as u64,
        xxh3: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes)),
        settings: settings.clone(),
        report: report.clone(),
    };
    let mut json = serde_json::to_vec_pretty(&side)?;
    json.push(b'\n');
    write_atomic(&sidecar_path(output), &json)?;
    Ok(report)
}

/// A scratch folder removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn create(path: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// p(`__label__ref`) of a normalised one-line text.
fn positive_prob(ft: &FastText, normalised: &str) -> Result<f32> {
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

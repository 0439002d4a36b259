//! Language identification with fastText's `lid.176` model (176 languages), through datamill's
//! own fastText inference ([`super::fasttext_model`]), which gives the C++ library's answers.
//!
//! The model is loaded once per stage and shared by all threads. Newlines count as spaces and
//! the end-of-sentence token follows the last word, as when the Python binding is given the
//! text with its newlines replaced and one final newline (as CCNet and datatrove do).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::Deserialize;

use super::fasttext_model::{FastTextModel, Prediction};
use super::fasttext_tokens::Input;
use crate::doc::Document;
use crate::run::config::parse_params;
use crate::stage::{DocPos, Stage, Verdict};

/// Where `make setup` puts the model.
pub const DEFAULT_MODEL: &str = "models/lid.176.ftz";

/// A loaded fastText language-ID model.
pub struct LidModel {
    model: FastTextModel,
}

/// One prediction: ISO code (without fastText's `__label__`) and probability.
#[derive(Debug, Clone, PartialEq)]
pub struct LangPrediction {
    /// Language code as the model names it (`en`, `de`, `als`, ...).
    pub language: String,
    /// Probability in [0, 1].
    pub score: f32,
}

impl LidModel {
    /// Loads a fastText model; a missing, truncated or foreign file is an error naming the path.
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            bail!(
                "language-ID model {} not found (run `make setup` to fetch lid.176.ftz)",
                path.display()
            );
        }
        let model = FastTextModel::load(path)
            .with_context(|| format!("language-ID model {} is not usable", path.display()))?;
        Ok(LidModel { model })
    }

    /// The file the model came from.
    pub fn path(&self) -> &Path {
        self.model.path()
    }

    /// The language codes the model knows.
    pub fn languages(&self) -> Result<Vec<String>> {
        Ok(self.model.labels().to_vec())
    }

    /// The most likely language of `text`, or `None` when the text has no words.
    pub fn predict(&self, text: &str) -> Option<LangPrediction> {
        let p = self.predict_index(text)?;
        Some(LangPrediction {
            language: self.model.labels()[p.label].clone(),
            score: p.prob,
        })
    }

    /// Like [`LidModel::predict`], with the language as an index into
    /// [`LidModel::language_codes`] (no allocation).
    pub fn predict_index(&self, text: &str) -> Option<Prediction> {
        let mut p = self.model.predict_best(text, Input::Document)?;
        p.prob = p.prob.clamp(0.0, 1.0);
        Some(p)
    }

    /// The language codes, in the model's order.
    pub fn language_codes(&self) -> &[String] {
        self.model.labels()
    }
}

/// Parameters of `type = "langid"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LangIdConfig {
    /// fastText model file (`models/lid.176.ftz`).
    pub model: PathBuf,
    /// Languages to keep (`["en"]`); empty keeps every language.
    pub languages: Vec<String>,
    /// Lowest top-1 probability kept (0.5, CCNet's default).
    pub threshold: f32,
}

impl Default for LangIdConfig {
    fn default() -> Self {
        LangIdConfig {
            model: PathBuf::from(DEFAULT_MODEL),
            languages: Vec::new(),
            threshold: 0.5,
        }
    }
}

/// The language-ID stage: writes `metadata.language` and `metadata.language_score`, drops
/// documents in other languages (`lang_not_kept`), below the threshold (`lang_low_score`) or
/// without any word (`lang_unknown`).
pub struct LangIdFilter {
    model: LidModel,
    /// Per model label: kept by the `languages` setting.
    kept: Vec<bool>,
    threshold: f32,
}

impl LangIdFilter {
    /// Builds the stage from its TOML parameters; loads the model.
    pub fn from_params(params: &toml::Table) -> Result<Self> {
        let c: LangIdConfig = parse_params("langid", params)?;
        Self::new(c).context("stage `langid`")
    }

    /// The stage with the given configuration; loads the model.
    pub fn new(config: LangIdConfig) -> Result<Self> {
        if !(0.0..=1.0).contains(&config.threshold) {
            bail!("threshold must be in [0, 1], got {}", config.threshold);
        }
        let model = LidModel::load(&config.model)?;
        let kept = model
            .language_codes()
            .iter()
            .map(|l| config.languages.is_empty() || config.languages.contains(l))
            .collect();
        Ok(LangIdFilter {
            model,
            kept,
            threshold: config.threshold,
        })
    }
}

impl Stage for LangIdFilter {
    fn name(&self) -> &str {
        "langid"
    }

    fn marks(&self) -> Vec<(&'static str, String, f64)> {
        vec![(
            "language_score",
            "langid threshold".into(),
            self.threshold as f64,
        )]
    }

    fn process(&self, doc: &mut Document, _pos: DocPos) -> Verdict {
        let Some(pred) = self.model.predict_index(&doc.text) else {
            return Verdict::drop("lang_unknown");
        };
        let score = (pred.prob as f64 * 1e4).round() / 1e4;
        let keep_language = self.kept[pred.label];
        let low = pred.prob < self.threshold;
        doc.set("language", self.model.language_codes()[pred.label].clone());
        doc.set("language_score", score);
        if !keep_language {
            Verdict::drop("lang_not_kept")
        } else if low {
            Verdict::drop("lang_low_score")
        } else {
            Verdict::Keep
        }
    }
}

/// Items and correct top-1 predictions of one gold label.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabelScore {
    /// Lines with this gold label.
    pub items: u64,
    /// Of those, lines whose top-1 prediction is the label.
    pub correct: u64,
}

impl LabelScore {
    /// Fraction correct (0 for no items).
    pub fn accuracy(&self) -> f64 {
        if self.items == 0 {
            0.0
        } else {
            self.correct as f64 / self.items as f64
        }
    }

    fn add(&mut self, other: LabelScore) {
        self.items += other.items;
        self.correct += other.correct;
    }
}

/// Accuracy of a model on a `label<TAB>text` file.
#[derive(Debug, Clone, Default)]
pub struct LangIdEval {
    /// Per gold label.
    pub labels: BTreeMap<String, LabelScore>,
    /// Labels the model knows.
    pub known: Vec<String>,
    /// Labels asked for with `--languages` (empty: none).
    pub selected: Vec<String>,
    /// Lines skipped because they had no tab or were not UTF-8.
    pub malformed: u64,
}

impl LangIdEval {
    /// Pooled score over the labels for which `pick` is true.
    pub fn pooled(&self, pick: impl Fn(&str) -> bool) -> LabelScore {
        let mut s = LabelScore::default();
        for (l, v) in &self.labels {
            if pick(l) {
                s.add(*v);
            }
        }
        s
    }

    /// Pooled score over the selected labels.
    pub fn selected_score(&self) -> LabelScore {
        self.pooled(|l| self.selected.iter().any(|s| s == l))
    }

    /// Pooled score over the labels the model knows.
    pub fn known_score(&self) -> LabelScore {
        self.pooled(|l| self.known.iter().any(|s| s == l))
    }

    /// A table: one row per label (the selected ones, or all), then the pooled accuracies.
    pub fn report(&self) -> String {
        let mut out = format!(
            "{:<8} {:>7} {:>7} {:>8}\n",
            "label", "items", "correct", "accuracy"
        );
        for (l, s) in &self.labels {
            if !self.selected.is_empty() && !self.selected.contains(l) {
                continue;
            }
            let mark = if self.known.contains(l) {
                ""
            } else {
                "  (not a model label)"
            };
            out.push_str(&format!(
                "{l:<8} {:>7} {:>7} {:>8.3}{mark}\n",
                s.items,
                s.correct,
                s.accuracy()
            ));
        }
        let mut line = |name: &str, n: usize, s: LabelScore| {
            out.push_str(&format!(
                "{name} ({n} labels, {} items): accuracy {:.3}\n",
                s.items,
                s.accuracy()
            ));
        };
        if !self.selected.is_empty() {
            let n = self
                .labels
                .keys()
                .filter(|l| self.selected.contains(l))
                .count();
            line("selected", n, self.selected_score());
        }
        let n_known = self
            .labels
            .keys()
            .filter(|l| self.known.contains(l))
            .count();
        line("known to the model", n_known, self.known_score());
        line("all", self.labels.len(), self.pooled(|_| true));
        if self.malformed > 0 {
            out.push_str(&format!(
                "{} lines without a tab or not UTF-8 skipped\n",
                self.malformed
            ));
        }
        out
    }
}

/// Evaluates `model` on a `label<TAB>text` file: top-1 prediction of each line's text, scored
/// per gold label. Reads in batches (bounded memory) and predicts in parallel.
pub fn evaluate_tsv(model: &LidModel, path: &Path, selected: &[String]) -> Result<LangIdEval> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = std::io::BufReader::new(file);
    let mut eval = LangIdEval {
        known: model.languages()?,
        selected: selected.to_vec(),
        ..Default::default()
    };
    let mut batch: Vec<(String, String)> = Vec::with_capacity(4096);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("{}: cannot read line {}", path.display(), line_no + 1))?;
        if n > 0 {
            line_no += 1;
            let line = std::str::from_utf8(&buf).map(|l| l.trim_end_matches(['\n', '\r']));
            match line.map(|l| (l.is_empty(), l.split_once('\t'))) {
                Ok((_, Some((label, text)))) => batch.push((label.to_string(), text.to_string())),
                Ok((true, None)) => {}
                _ => eval.malformed += 1,
            }
        }
        if batch.len() >= 4096 || (n == 0 && !batch.is_empty()) {
            let hits: Vec<bool> = batch
                .par_iter()
                .map(|(label, text)| model.predict(text).is_some_and(|p| &p.language == label))
                .collect();
            for ((label, _), hit) in batch.drain(..).zip(hits) {
                let s = eval.labels.entry(label).or_default();
                s.items += 1;
                s.correct += hit as u64;
            }
        }
        if n == 0 {
            break;
        }
    }
    Ok(eval)
}

//! Stages `perplexity` (CCNet document perplexity under the language's n-gram model) and
//! `perplexity_bucket` (head / middle / tail by the language's cutoffs).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Result};
use serde::Deserialize;

use crate::doc::Document;
use crate::lm::scorer::PieceScorer;
use crate::lm::{round_perplexity, Cutoffs, LmSidecar};
use crate::run::config::parse_params;
use crate::stage::{DocPos, Stage, Verdict};

fn language_field() -> String {
    "language".into()
}

fn default_language() -> Option<String> {
    Some("en".into())
}

/// Parameters of `type = "perplexity"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerplexityConfig {
    /// Model file per language code, e.g. `{ en = "models/cc_lm.bin" }`: datamill's binary
    /// model or an ARPA file, with a sidecar `MODEL.json` naming its SentencePiece model.
    pub models: BTreeMap<String, PathBuf>,
    /// Metadata field holding the document's language (default `language`).
    #[serde(default = "language_field")]
    pub language_field: String,
    /// Language assumed when the field is missing (default `en`; set `""` for none).
    #[serde(default = "default_language")]
    pub default_language: Option<String>,
}

/// Scores documents like CCNet: every line is normalised, cut into the language's
/// SentencePiece pieces and scored as a sentence `<s> .. </s>`; the document's
/// perplexity is `10^(-sum of log10 p / number of predicted tokens)`, rounded to 0.1.
/// Documents whose language has no model pass unscored; a document with no token is dropped
/// (`no_tokens`).
pub struct PerplexityScorer {
    models: BTreeMap<String, Arc<PieceScorer>>,
    language_field: String,
    default_language: Option<String>,
}

/// The language of a document: its metadata field, else the default.
fn doc_language<'a>(
    doc: &'a Document,
    field: &str,
    default: &'a Option<String>,
) -> Option<&'a str> {
    doc.meta_str(field)
        .or(default.as_deref())
        .filter(|l| !l.is_empty())
}

impl PerplexityScorer {
    /// Builds the stage, loading (memory-mapping) every model once; a bad model is an error.
    pub fn from_params(params: &toml::Table) -> Result<Self> {
        let c: PerplexityConfig = parse_params("perplexity", params)?;
        if c.models.is_empty() {
            bail!("stage `perplexity`: `models` names no model");
        }
        let mut models = BTreeMap::new();
        for (lang, path) in &c.models {
            models.insert(lang.clone(), PieceScorer::load_shared(path)?);
        }
        Ok(PerplexityScorer {
            models,
            language_field: c.language_field,
            default_language: c.default_language,
        })
    }
}

impl Stage for PerplexityScorer {
    fn name(&self) -> &str {
        "perplexity"
    }

    fn process(&self, doc: &mut Document, _pos: DocPos) -> Verdict {
        let Some(lang) = doc_language(doc, &self.language_field, &self.default_language) else {
            return Verdict::Keep;
        };
        let Some(model) = self.models.get(lang) else {
            return Verdict::Keep;
        };
        let score = model.score_text(&doc.text);
        match score.perplexity() {
            Some(pp) => {
                doc.set("perplexity", round_perplexity(pp));
                Verdict::Keep
            }
            None => Verdict::drop("no_tokens"),
        }
    }
}

fn default_keep() -> Vec<String> {
    vec!["head".into(), "middle".into()]
}

fn yes() -> bool {
    true
}

/// Parameters of `type = "perplexity_bucket"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerplexityBucketConfig {
    /// Models whose sidecar cutoffs to use, per language (as in `perplexity`).
    #[serde(default)]
    pub models: BTreeMap<String, PathBuf>,
    /// Explicit cutoffs `[head, middle]` per language; they override the sidecar's.
    #[serde(default)]
    pub cutoffs: BTreeMap<String, [f64; 2]>,
    /// Buckets kept (default `["head", "middle"]`); others are dropped as `bucket_<name>`.
    #[serde(default = "default_keep")]
    pub keep: Vec<String>,
    /// Keep documents without a perplexity or without cutoffs for their language (bucket
    /// `all`, as CCNet named it); default true.
    #[serde(default = "yes")]
    pub keep_unscored: bool,
    /// Metadata field holding the document's language (default `language`).
    #[serde(default = "language_field")]
    pub language_field: String,
    /// Language assumed when the field is missing (default `en`).
    #[serde(default = "default_language")]
    pub default_language: Option<String>,
}

/// Labels `metadata.bucket` head (pp < head cutoff), middle (< middle cutoff) or tail, and
/// keeps the configured buckets.
pub struct PerplexityBucketer {
    cutoffs: BTreeMap<String, Cutoffs>,
    keep: [bool; 3],
    keep_unscored: bool,
    language_field: String,
    default_language: Option<String>,
}

const BUCKETS: [&str; 3] = ["head", "middle", "tail"];

impl PerplexityBucketer {
    /// Builds the stage; cutoffs come from `cutoffs` or the models' sidecars (an error when a
    /// listed model has none: run `datamill lm-cutoffs`).
    pub fn from_params(params: &toml::Table) -> Result<Self> {
        let c: PerplexityBucketConfig = parse_params("perplexity_bucket", params)?;
        let mut cutoffs = BTreeMap::new();
        for (lang, path) in &c.models {
            if c.cutoffs.contains_key(lang) {
                continue;
            }
            let side = LmSidecar::load(path)?;
            let Some(cut) = side.cutoffs.get(lang) else {
                bail!(
                    "stage `perplexity_bucket`: the sidecar of {} has no cutoffs for `{lang}` \
                     (run `datamill lm-cutoffs --model {} --lang {lang} --input SAMPLE`)",
                    path.display(),
                    path.display()
                );
            };
            cutoffs.insert(lang.clone(), *cut);
        }
        for (lang, &[head, middle]) in &c.cutoffs {
            cutoffs.insert(
                lang.clone(),
                Cutoffs {
                    head,
                    middle,
                    percentiles: [0.0, 0.0],
                    docs: 0,
                },
            );
        }
        if cutoffs.is_empty() {
            bail!("stage `perplexity_bucket`: no cutoffs (give `models` or `cutoffs`)");
        }
        for (lang, cut) in &cutoffs {
            if cut.head > cut.middle || cut.head.is_nan() || cut.middle.is_nan() {
                bail!("stage `perplexity_bucket`: cutoffs of `{lang}` are not increasing");
            }
        }
        let mut keep = [false; 3];
        for k in &c.keep {
            match BUCKETS.iter().position(|b| b == k) {
                Some(i) => keep[i] = true,
                None => bail!("stage `perplexity_bucket`: unknown bucket `{k}` in `keep`"),
            }
        }
        Ok(PerplexityBucketer {
            cutoffs,
            keep,
            keep_unscored: c.keep_unscored,
            language_field: c.language_field,
            default_language: c.default_language,
        })
    }
}

impl Stage for PerplexityBucketer {
    fn name(&self) -> &str {
        "perplexity_bucket"
    }

    fn marks(&self) -> Vec<(&'static str, String, f64)> {
        let mut marks = Vec::new();
        for (lang, cut) in &self.cutoffs {
            marks.push(("perplexity", format!("{lang} head"), cut.head));
            marks.push(("perplexity", format!("{lang} middle"), cut.middle));
        }
        marks
    }

    fn process(&self, doc: &mut Document, _pos: DocPos) -> Verdict {
        let pp = doc.metadata.get("perplexity").and_then(|v| v.as_f64());
        let cut = doc_language(doc, &self.language_field, &self.default_language)
            .and_then(|l| self.cutoffs.get(l));
        let (Some(pp), Some(cut)) = (pp, cut) else {
            doc.set("bucket", "all");
            return if self.keep_unscored {
                Verdict::Keep
            } else {
                Verdict::drop("bucket_unscored")
            };
        };
        let b = if pp < cut.head {
            0
        } else if pp < cut.middle {
            1
        } else {
            2
        };
        doc.set("bucket", BUCKETS[b]);
        if self.keep[b] {
            Verdict::Keep
        } else {
            Verdict::drop(["bucket_head", "bucket_middle", "bucket_tail"][b])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucketer(extra: &str) -> PerplexityBucketer {
        let t: toml::Table =
            toml::from_str(&format!("cutoffs = {{ en = [340.0, 520.0] }}\n{extra}")).unwrap();
        PerplexityBucketer::from_params(&t).unwrap()
    }

    #[test]
    fn buckets_follow_ccnet_english_cutoffs() {
        let st = bucketer("");
        let pos = DocPos { shard: 0, index: 0 };
        for (pp, bucket, verdict) in [
            (120.0, "head", Verdict::Keep),
            (339.9, "head", Verdict::Keep),
            (340.0, "middle", Verdict::Keep),
            (600.0, "tail", Verdict::drop("bucket_tail")),
        ] {
            let mut d = Document::new("a", "x", "").with("perplexity", pp);
            assert_eq!(st.process(&mut d, pos), verdict, "pp {pp}");
            assert_eq!(d.metadata["bucket"], bucket);
        }
        let mut fr = Document::new("b", "x", "")
            .with("perplexity", 900.0)
            .with("language", "fr");
        assert_eq!(st.process(&mut fr, pos), Verdict::Keep);
        assert_eq!(fr.metadata["bucket"], "all");
        let strict = bucketer("keep = [\"head\"]\nkeep_unscored = false");
        assert_eq!(
            strict.process(&mut fr, pos),
            Verdict::drop("bucket_unscored")
        );
        let mut mid = Document::new("c", "x", "").with("perplexity", 400.0);
        assert_eq!(
            strict.process(&mut mid, pos),
            Verdict::drop("bucket_middle")
        );
    }

    #[test]
    fn unknown_bucket_and_missing_cutoffs_are_errors() {
        let t: toml::Table =
            toml::from_str("cutoffs = { en = [1.0, 2.0] }\nkeep = [\"top\"]").unwrap();
        assert!(PerplexityBucketer::from_params(&t).is_err());
        assert!(PerplexityBucketer::from_params(&toml::Table::new()).is_err());
    }
}

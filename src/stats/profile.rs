//! What a shard's documents look like, gathered while they pass: histograms of length and of
//! the scores the stages write, the language mix, a few sampled dropped documents per
//! (stage, reason), and the type of every metadata key (the run's `features.json`).
//!
//! Everything here merges across shards in any order to the same result, so the report and
//! `features.json` never reread the corpus: histograms add, samples keep the documents whose
//! seeded id hash is smallest, types widen.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::doc::Document;

/// Sampled dropped documents kept per (stage, reason).
pub const SAMPLES_PER_REASON: usize = 3;
/// Characters of text kept with a sampled document.
pub const SAMPLE_TEXT_CHARS: usize = 1200;

/// How a histogram's bins divide its range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// Equal steps from `lo` to `hi`.
    Linear,
    /// Equal steps of log10 from `lo` to `hi` (both > 0).
    Log10,
}

/// A metric the runner draws a histogram of.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Name in the report, and the metadata key read (`length` is the text's UTF-8 bytes as
    /// read, before any stage rewrote it).
    pub key: &'static str,
    /// Bin layout.
    pub scale: Scale,
    /// Lower end of the first bin; smaller values fall into it.
    pub lo: f64,
    /// Upper end of the last bin; larger values fall into it.
    pub hi: f64,
    /// Number of bins.
    pub bins: usize,
}

/// The histograms every run keeps: document length, language-ID score, perplexity and the
/// Wikipedia-reference classifier's probability.
pub const METRICS: &[Metric] = &[
    Metric {
        key: "length",
        scale: Scale::Log10,
        lo: 10.0,
        hi: 1e7,
        bins: 30,
    },
    Metric {
        key: "language_score",
        scale: Scale::Linear,
        lo: 0.0,
        hi: 1.0,
        bins: 20,
    },
    Metric {
        key: "perplexity",
        scale: Scale::Log10,
        lo: 10.0,
        hi: 1e6,
        bins: 30,
    },
    Metric {
        key: "wiki_ref_prob",
        scale: Scale::Linear,
        lo: 0.0,
        hi: 1.0,
        bins: 20,
    },
];

/// Counts of one metric's values, for kept and for dropped documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Metric name (`length`, `language_score`, `perplexity`, `wiki_ref_prob`).
    pub metric: String,
    /// Bin layout.
    pub scale: Scale,
    /// Lower end of the range.
    pub lo: f64,
    /// Upper end of the range.
    pub hi: f64,
    /// Documents kept by the pipeline, per bin.
    pub kept: Vec<u64>,
    /// Documents dropped by a stage, per bin.
    pub dropped: Vec<u64>,
}

impl Histogram {
    fn new(m: &Metric) -> Self {
        Histogram {
            metric: m.key.to_string(),
            scale: m.scale,
            lo: m.lo,
            hi: m.hi,
            kept: vec![0; m.bins],
            dropped: vec![0; m.bins],
        }
    }

    /// The bin of `value`; values outside the range go to the first or last bin.
    pub fn bin(&self, value: f64) -> usize {
        let n = self.kept.len();
        let (v, lo, hi) = match self.scale {
            Scale::Linear => (value, self.lo, self.hi),
            Scale::Log10 => (value.max(1e-300).log10(), self.lo.log10(), self.hi.log10()),
        };
        let x = ((v - lo) / (hi - lo) * n as f64).floor();
        if x.is_nan() || x < 0.0 {
            0
        } else {
            (x as usize).min(n - 1)
        }
    }

    /// The value where bin `i` starts (`i == bins` gives the upper end).
    pub fn edge(&self, i: usize) -> f64 {
        let f = i as f64 / self.kept.len() as f64;
        match self.scale {
            Scale::Linear => self.lo + f * (self.hi - self.lo),
            Scale::Log10 => 10f64.powf(self.lo.log10() + f * (self.hi.log10() - self.lo.log10())),
        }
    }

    fn add(&mut self, value: f64, kept: bool) {
        let b = self.bin(value);
        if kept {
            self.kept[b] += 1;
        } else {
            self.dropped[b] += 1;
        }
    }

    fn merge(&mut self, other: &Histogram) {
        if self.kept.len() != other.kept.len() || self.scale != other.scale {
            return;
        }
        for (a, b) in self.kept.iter_mut().zip(&other.kept) {
            *a += b;
        }
        for (a, b) in self.dropped.iter_mut().zip(&other.dropped) {
            *a += b;
        }
    }

    /// Documents counted, kept and dropped.
    pub fn total(&self) -> u64 {
        self.kept.iter().sum::<u64>() + self.dropped.iter().sum::<u64>()
    }
}

/// A dropped document as the report shows it: the start of its text and its metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampledDoc {
    /// Document id.
    pub id: String,
    /// Seeded hash of the id: the samples kept are the smallest.
    pub key: u64,
    /// Metadata as it was when the stage dropped it.
    pub metadata: Map<String, Value>,
    /// The first [`SAMPLE_TEXT_CHARS`] characters of the text.
    pub text: String,
    /// Bytes of the whole text as read.
    pub bytes: u64,
}

/// The Hugging Face `datasets` type of a JSON value, widened over every document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Only nulls seen so far.
    Null,
    /// `true`/`false`.
    Bool,
    /// Whole numbers (64-bit signed).
    Int64,
    /// Any other number, or whole and fractional numbers mixed.
    Float64,
    /// Text, or values of types that do not widen into each other.
    String,
    /// A list whose items have this type.
    List(Box<FieldType>),
    /// An object with these keys.
    Struct(BTreeMap<String, FieldType>),
}

impl FieldType {
    /// The type of one JSON value.
    pub fn of(v: &Value) -> FieldType {
        match v {
            Value::Null => FieldType::Null,
            Value::Bool(_) => FieldType::Bool,
            Value::Number(n) if n.is_i64() => FieldType::Int64,
            Value::Number(_) => FieldType::Float64,
            Value::String(_) => FieldType::String,
            Value::Array(items) => FieldType::List(Box::new(
                items
                    .iter()
                    .fold(FieldType::Null, |t, x| t.widen(&FieldType::of(x))),
            )),
            Value::Object(map) => FieldType::Struct(
                map.iter()
                    .map(|(k, x)| (k.clone(), FieldType::of(x)))
                    .collect(),
            ),
        }
    }

    /// The narrowest type that holds values of both.
    pub fn widen(&self, other: &FieldType) -> FieldType {
        use FieldType::*;
        match (self, other) {
            (a, b) if a == b => a.clone(),
            (Null, b) => b.clone(),
            (a, Null) => a.clone(),
            (Int64, Float64) | (Float64, Int64) => Float64,
            (List(a), List(b)) => List(Box::new(a.widen(b))),
            (Struct(a), Struct(b)) => {
                let mut m = a.clone();
                for (k, t) in b {
                    let w = m.get(k).map_or_else(|| t.clone(), |x| x.widen(t));
                    m.insert(k.clone(), w);
                }
                Struct(m)
            }
            _ => String,
        }
    }

    /// The type as a Hugging Face `datasets.Features` dictionary entry (`Features.from_dict`);
    /// a key that was null everywhere is a string column (all nulls load as such).
    pub fn to_hf(&self) -> Value {
        let value = |dtype: &str| serde_json::json!({"dtype": dtype, "_type": "Value"});
        match self {
            FieldType::Null | FieldType::String => value("string"),
            FieldType::Bool => value("bool"),
            FieldType::Int64 => value("int64"),
            FieldType::Float64 => value("float64"),
            FieldType::List(t) => serde_json::json!({"feature": t.to_hf(), "_type": "List"}),
            FieldType::Struct(m) => {
                Value::Object(m.iter().map(|(k, t)| (k.clone(), t.to_hf())).collect())
            }
        }
    }
}

/// Everything the runner learns about one shard's documents besides the counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// One histogram per [`METRICS`] entry that any document had.
    #[serde(default)]
    pub histograms: Vec<Histogram>,
    /// Documents per `metadata.language`: (kept, dropped).
    #[serde(default)]
    pub languages: BTreeMap<String, (u64, u64)>,
    /// Sampled dropped documents per `stage/reason`, at most [`SAMPLES_PER_REASON`] each.
    #[serde(default)]
    pub samples: BTreeMap<String, Vec<SampledDoc>>,
    /// Type of every metadata key of the kept documents.
    #[serde(default)]
    pub metadata_types: BTreeMap<String, FieldType>,
    /// Thresholds the stages compare with, per metric: (label, value).
    #[serde(default)]
    pub marks: BTreeMap<String, Vec<(String, f64)>>,
}

impl Profile {
    /// Counts one document at the end of its pass: kept, or dropped by `stage` for `reason`;
    /// `bytes` is its length as read, `seed` picks the sampled documents.
    pub fn observe(&mut self, doc: &Document, bytes: u64, drop: Option<(&str, &str)>, seed: u64) {
        let kept = drop.is_none();
        for m in METRICS {
            let value = if m.key == "length" {
                Some(bytes as f64)
            } else {
                doc.metadata.get(m.key).and_then(Value::as_f64)
            };
            let Some(v) = value else { continue };
            let h = match self.histograms.iter_mut().position(|h| h.metric == m.key) {
                Some(i) => &mut self.histograms[i],
                None => {
                    self.histograms.push(Histogram::new(m));
                    self.histograms.last_mut().expect("just pushed")
                }
            };
            h.add(v, kept);
        }
        if let Some(lang) = doc.meta_str("language") {
            let e = self.languages.entry(lang.to_string()).or_default();
            if kept {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        match drop {
            None => {
                for (k, v) in &doc.metadata {
                    let t = FieldType::of(v);
                    match self.metadata_types.get_mut(k) {
                        Some(x) if *x == t => {}
                        Some(x) => *x = x.widen(&t),
                        None => {
                            self.metadata_types.insert(k.clone(), t);
                        }
                    }
                }
            }
            Some((stage, reason)) => {
                let key = xxhash_rust::xxh3::xxh3_64_with_seed(doc.id.as_bytes(), seed);
                let list = self.samples.entry(format!("{stage}/{reason}")).or_default();
                if list.len() < SAMPLES_PER_REASON || list.iter().any(|s| s.key > key) {
                    list.push(SampledDoc {
                        id: doc.id.clone(),
                        key,
                        metadata: doc.metadata.clone(),
                        text: doc.text.chars().take(SAMPLE_TEXT_CHARS).collect(),
                        bytes,
                    });
                    keep_smallest(list);
                }
            }
        }
    }

    /// Adds another shard's profile.
    pub fn merge(&mut self, other: &Profile) {
        for h in &other.histograms {
            match self.histograms.iter_mut().find(|x| x.metric == h.metric) {
                Some(x) => x.merge(h),
                None => self.histograms.push(h.clone()),
            }
        }
        self.histograms.sort_by_key(|h| {
            METRICS
                .iter()
                .position(|m| m.key == h.metric)
                .unwrap_or(usize::MAX)
        });
        for (lang, (k, d)) in &other.languages {
            let e = self.languages.entry(lang.clone()).or_default();
            e.0 += k;
            e.1 += d;
        }
        for (reason, docs) in &other.samples {
            let list = self.samples.entry(reason.clone()).or_default();
            for d in docs {
                if !list.iter().any(|x| x.id == d.id) {
                    list.push(d.clone());
                }
            }
            keep_smallest(list);
        }
        for (k, t) in &other.metadata_types {
            let w = self
                .metadata_types
                .get(k)
                .map_or_else(|| t.clone(), |x| x.widen(t));
            self.metadata_types.insert(k.clone(), w);
        }
        for (metric, marks) in &other.marks {
            let list = self.marks.entry(metric.clone()).or_default();
            for m in marks {
                if !list.contains(m) {
                    list.push(m.clone());
                }
            }
        }
    }

    /// The Hugging Face `datasets.Features` of the documents (`Features.from_dict` of this).
    pub fn features(&self) -> Value {
        let string = serde_json::json!({"dtype": "string", "_type": "Value"});
        serde_json::json!({
            "id": string,
            "text": string,
            "source": string,
            "metadata": FieldType::Struct(self.metadata_types.clone()).to_hf(),
        })
    }
}

fn keep_smallest(list: &mut Vec<SampledDoc>) {
    list.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| a.id.cmp(&b.id)));
    list.truncate(SAMPLES_PER_REASON);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, meta: Value) -> Document {
        let mut d = Document::new(id, "some text", "s");
        if let Value::Object(m) = meta {
            d.metadata = m;
        }
        d
    }

    #[test]
    fn types_widen_and_nulls_never_decide() {
        let mut p = Profile::default();
        p.observe(
            &doc("a", serde_json::json!({"x": null, "n": 1})),
            9,
            None,
            0,
        );
        p.observe(
            &doc("b", serde_json::json!({"n": 2.5, "l": [1, 2]})),
            9,
            None,
            0,
        );
        p.observe(
            &doc("c", serde_json::json!({"x": "v", "l": []})),
            9,
            None,
            0,
        );
        assert_eq!(p.metadata_types["x"], FieldType::String);
        assert_eq!(p.metadata_types["n"], FieldType::Float64);
        assert_eq!(
            p.metadata_types["l"],
            FieldType::List(Box::new(FieldType::Int64))
        );
        let f = p.features();
        assert_eq!(f["metadata"]["n"]["dtype"], "float64");
        assert_eq!(f["metadata"]["l"]["_type"], "List");
    }

    #[test]
    fn samples_merge_to_the_same_set_in_any_order() {
        let mut shards = Vec::new();
        for s in 0..4 {
            let mut p = Profile::default();
            for i in 0..10 {
                let d = doc(&format!("{s}:{i}"), serde_json::json!({"language": "de"}));
                p.observe(&d, 9, Some(("langid", "lang_not_kept")), 7);
            }
            shards.push(p);
        }
        let mut a = Profile::default();
        for p in &shards {
            a.merge(p);
        }
        let mut b = Profile::default();
        for p in shards.iter().rev() {
            b.merge(p);
        }
        assert_eq!(a, b);
        assert_eq!(a.samples["langid/lang_not_kept"].len(), SAMPLES_PER_REASON);
        assert_eq!(a.languages["de"], (0, 40));
        // A different seed picks other documents.
        let mut c = Profile::default();
        for i in 0..40 {
            let d = doc(&format!("{}:{}", i / 10, i % 10), serde_json::json!({}));
            c.observe(&d, 9, Some(("langid", "lang_not_kept")), 8);
        }
        let ids = |p: &Profile| -> Vec<String> {
            p.samples["langid/lang_not_kept"]
                .iter()
                .map(|s| s.id.clone())
                .collect()
        };
        assert_ne!(ids(&a), ids(&c));
    }

    #[test]
    fn bins_clamp_and_split_the_range() {
        let h = Histogram::new(&METRICS[1]);
        assert_eq!(h.bin(-1.0), 0);
        assert_eq!(h.bin(0.0), 0);
        assert_eq!(h.bin(0.051), 1);
        assert_eq!(h.bin(1.0), 19);
        assert_eq!(h.bin(f64::NAN), 0);
        let l = Histogram::new(&METRICS[0]);
        assert_eq!(l.bin(10.0), 0);
        assert_eq!(l.bin(1e7), 29);
        assert!((l.edge(5) - 100.0).abs() < 1e-9);
    }
}

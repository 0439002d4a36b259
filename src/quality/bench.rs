//! `datamill bench-quality`: single-thread throughput of perplexity scoring and of the
//! reference classifier over a JSONL corpus (MB of document text per second, one core).

use std::path::Path;
use std::time::Instant;

use anyhow::{ensure, Result};
use serde::Serialize;

use super::classifier::ReferenceClassifier;
use crate::doc::JsonlReader;
use crate::lm::scorer::{PieceScorer, ScoreScratch};
use crate::lm::tokenize::WordTokenizer;

/// Measured throughput of the quality models.
#[derive(Debug, Clone, Serialize)]
pub struct QualityBench {
    /// Documents scored.
    pub docs: u64,
    /// Bytes of text scored.
    pub bytes: u64,
    /// Perplexity scoring, MB/s on one thread.
    pub perplexity_mb_s: f64,
    /// Reference classification, MB/s on one thread (None without a classifier).
    pub classifier_mb_s: Option<f64>,
}

/// Reads up to `max_bytes` of document text from `corpus`, then times each model over it.
pub fn bench_quality(
    corpus: &Path,
    lm: &Path,
    classifier: Option<&Path>,
    max_bytes: u64,
) -> Result<QualityBench> {
    let mut texts = Vec::new();
    let mut bytes = 0u64;
    for (_, rec) in JsonlReader::open(corpus)? {
        if let Ok(doc) = rec {
            bytes += doc.text.len() as u64;
            texts.push(doc.text);
            if bytes >= max_bytes {
                break;
            }
        }
    }
    ensure!(bytes > 0, "no text in {}", corpus.display());
    let model = PieceScorer::load(lm)?;
    let mut scratch = ScoreScratch::default();
    let t = Instant::now();
    let mut sink = 0f64;
    for text in &texts {
        sink += model.score_text_with(text, &mut scratch).log10_prob;
    }
    let pp_secs = t.elapsed().as_secs_f64();
    std::hint::black_box(sink);
    let classifier_mb_s = match classifier {
        Some(path) => {
            let c = ReferenceClassifier::load(path)?;
            let (mut tok, mut buf) = (WordTokenizer::new(), String::new());
            let t = Instant::now();
            let mut sink = 0f32;
            for text in &texts {
                sink += c.score(text, &mut tok, &mut buf);
            }
            std::hint::black_box(sink);
            Some(bytes as f64 / 1e6 / t.elapsed().as_secs_f64())
        }
        None => None,
    };
    Ok(QualityBench {
        docs: texts.len() as u64,
        bytes,
        perplexity_mb_s: bytes as f64 / 1e6 / pp_secs,
        classifier_mb_s,
    })
}

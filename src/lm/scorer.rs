//! Scores text as CCNet did: every line normalised ([`super::normalize`]), cut into the
//! language's SentencePiece pieces, and scored as a sentence `<s> pieces </s>` by the n-gram
//! model over those pieces (a datamill model or an ARPA file, e.g. one built by KenLM).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result};

use super::model::{token_hash, NgramModel, Score};
use super::normalize::normalize_line;
use super::LmSidecar;
use crate::tokenizer::{Encoder, Tokenizer};

/// An n-gram model with the SentencePiece model its sidecar names.
pub struct PieceScorer {
    model: NgramModel,
    tokenizer: &'static Tokenizer,
    /// Token hash of every piece id.
    hashes: Vec<u64>,
}

/// Per-thread buffers and encoders (one encoder per loaded tokenizer).
#[derive(Default)]
pub struct ScoreScratch {
    line: String,
    ids: Vec<u32>,
    words: Vec<u64>,
    buf: Vec<u64>,
    encoders: HashMap<usize, Encoder<'static>>,
}

thread_local! {
    static SCRATCH: RefCell<ScoreScratch> = RefCell::new(ScoreScratch::default());
}

impl PieceScorer {
    /// Loads `model` and the SentencePiece model named in its sidecar (`MODEL.json`).
    pub fn load(model: &Path) -> Result<Self> {
        let ngrams = NgramModel::load(model)?;
        let side = LmSidecar::load(model)?;
        let sp = side.sentencepiece_path(model).with_context(|| {
            format!(
                "the sidecar of {} names no `sentencepiece` model (an n-gram model over \
                 SentencePiece pieces needs one; retrain with `datamill train-lm`)",
                model.display()
            )
        })?;
        let tokenizer = Tokenizer::load(&sp)
            .with_context(|| format!("SentencePiece model of {}", model.display()))?;
        Ok(Self::new(ngrams, tokenizer))
    }

    /// Pairs a loaded n-gram model with a tokenizer (kept for the life of the process).
    pub fn new(model: NgramModel, tokenizer: Tokenizer) -> Self {
        let hashes = (0..tokenizer.vocab_size() as u32)
            .map(|id| token_hash(tokenizer.piece(id).unwrap_or("<unk>")))
            .collect();
        // Scorers are loaded once per process and shared; encoders borrow the tokenizer.
        let tokenizer: &'static Tokenizer = Box::leak(Box::new(tokenizer));
        PieceScorer {
            model,
            tokenizer,
            hashes,
        }
    }

    /// Loads `path` once per process; later calls return the same scorer.
    pub fn load_shared(path: &Path) -> Result<Arc<Self>> {
        static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<PieceScorer>>>> = OnceLock::new();
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let mut cache = CACHE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(m) = cache.get(&key) {
            return Ok(m.clone());
        }
        let m = Arc::new(Self::load(path)?);
        cache.insert(key, m.clone());
        Ok(m)
    }

    /// The n-gram model.
    pub fn model(&self) -> &NgramModel {
        &self.model
    }

    /// The normalised pieces of one line, joined by spaces (what KenLM's `score` is given).
    pub fn pieces_of_line(&self, line: &str) -> String {
        let mut norm = String::new();
        normalize_line(line, &mut norm);
        let ids = self.tokenizer.encode(&norm);
        let pieces: Vec<&str> = ids
            .iter()
            .map(|&id| self.tokenizer.piece(id).unwrap_or("<unk>"))
            .collect();
        pieces.join(" ")
    }

    /// Scores a text like CCNet: every line with a piece is a sentence; scores are summed.
    pub fn score_text_with(&self, text: &str, s: &mut ScoreScratch) -> Score {
        let key = self.tokenizer as *const Tokenizer as usize;
        let ScoreScratch {
            line,
            ids,
            words,
            buf,
            encoders,
        } = s;
        let enc = encoders
            .entry(key)
            .or_insert_with(|| self.tokenizer.encoder());
        let mut total = Score::default();
        for raw in text.split('\n') {
            normalize_line(raw, line);
            if line.is_empty() {
                continue;
            }
            ids.clear();
            enc.encode_into(line, ids);
            if ids.is_empty() {
                continue;
            }
            words.clear();
            words.extend(ids.iter().map(|&id| {
                self.hashes
                    .get(id as usize)
                    .copied()
                    .unwrap_or_else(|| token_hash("<unk>"))
            }));
            let sc = self.model.score_tokens(words, buf);
            total.log10_prob += sc.log10_prob;
            total.tokens += sc.tokens;
        }
        total
    }

    /// [`Self::score_text_with`] with this thread's scratch buffers.
    pub fn score_text(&self, text: &str) -> Score {
        SCRATCH.with(|s| self.score_text_with(text, &mut s.borrow_mut()))
    }
}

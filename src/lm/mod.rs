//! CCNet's perplexity model: the line normalisation, a SentencePiece model trained on the
//! normalised text, a modified Kneser-Ney n-gram model over its pieces trained with bounded
//! memory, the memory-mapped model file, ARPA text in and out, and the sidecar JSON that
//! names the SentencePiece model and holds the per-language perplexity cutoffs.

pub mod arpa;
pub mod external;
pub mod model;
pub mod normalize;
pub mod output;
pub mod scorer;
pub mod sp_sample;
pub mod tokenize;
pub mod train;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

use crate::doc::{temp_path, write_atomic};
use crate::sources::training;
use crate::tokenizer::train::{train_tokenizer_then_free, write_model, TrainConfig};
use crate::tokenizer::Tokenizer;
use model::token_hash;
use normalize::normalize_line;
use scorer::PieceScorer;
use sp_sample::{LineSampler, SpSample};
use train::{NgramCounter, TrainSummary};

/// How the model's text is normalised and cut (written to the sidecar).
pub const TOKENIZER: &str = "ccnet-normalize + sentencepiece-bpe: each line trimmed, lower \
case, accents stripped, digits to 0, Unicode punctuation to ASCII, control characters \
removed, then cut into the pieces of the sidecar's SentencePiece model";

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

/// The sidecar JSON next to a model (`MODEL.json`): the SentencePiece model it scores, how
/// it was made, and the cutoffs. A model built elsewhere (an ARPA file from KenLM) needs one
/// too, naming at least `sentencepiece`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LmSidecar {
    /// `datamill-kn-lm` (binary) or `arpa`.
    #[serde(default)]
    pub format: String,
    /// Normalisation and tokeniser description ([`TOKENIZER`]).
    #[serde(default)]
    pub tokenizer: String,
    /// The SentencePiece model, relative to the sidecar's folder (or absolute).
    #[serde(default)]
    pub sentencepiece: Option<String>,
    /// Language of the training text.
    #[serde(default)]
    pub language: Option<String>,
    /// Training inputs as given.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Training summary (order, counts, discounts).
    #[serde(default)]
    pub training: Option<serde_json::Value>,
    /// How the SentencePiece model's training sample was drawn, and its size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentencepiece_sample: Option<SpSample>,
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

    /// The SentencePiece model's path, resolved against the folder of `model`.
    pub fn sentencepiece_path(&self, model: &Path) -> Option<PathBuf> {
        let sp = Path::new(self.sentencepiece.as_deref()?);
        Some(match model.parent() {
            Some(dir) if sp.is_relative() => dir.join(sp),
            _ => sp.to_path_buf(),
        })
    }
}

/// Settings of `datamill train-lm` (also its command-line arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct TrainLmOptions {
    /// Train on these text, JSONL or MediaWiki XML files, folders or globs.
    #[arg(long = "input", num_args = 1.., required = true)]
    pub inputs: Vec<PathBuf>,
    /// Read every input with this pipeline reader instead (e.g. `wikipedia`).
    #[arg(long)]
    pub reader: Option<String>,
    /// Record this language of the text in the sidecar.
    #[arg(long = "lang", default_value = "en")]
    pub language: String,
    /// Count n-grams up to this order (1..=5).
    #[arg(long, default_value_t = 5)]
    pub order: usize,
    /// Give the n-gram sort buffers this much memory (e.g. 256M, 2G); counts beyond it spill
    /// to sorted runs on disk next to the output; the model is the same whatever the budget.
    #[arg(long, default_value = "1G", value_parser = parse_memory)]
    pub memory: u64,
    /// Take only each Wikipedia article's lead section (inputs read as MediaWiki dumps).
    #[arg(long)]
    pub lead_only: bool,
    /// Stop after this many documents with text.
    #[arg(long)]
    pub max_docs: Option<u64>,
    /// Drop n-grams whose adjusted count is at most these thresholds, one per order from
    /// unigrams (the first must be 0; the last repeats), e.g. `0 0 1`.
    #[arg(long, num_args = 1..)]
    pub prune: Vec<u64>,
    /// Give the SentencePiece model this vocabulary size (CCNet: 65536).
    #[arg(long, default_value_t = 65536)]
    pub vocab_size: usize,
    /// Draw the SentencePiece model's training sample from the first this many documents
    /// (CCNet: 400000).
    #[arg(long, default_value_t = 400_000)]
    pub sp_docs: u64,
    /// Train the SentencePiece model on an evenly spread, seeded sample of at most this many
    /// bytes of those documents' normalised lines (default 64M, held in about 150 MB); the
    /// n-grams are counted on all lines.
    #[arg(long, value_parser = parse_memory)]
    pub sp_max_bytes: Option<u64>,
    /// Also write the model as ARPA text to this file (with its own sidecar).
    #[arg(long)]
    pub arpa: Option<PathBuf>,
    /// Write the model to this file; the SentencePiece model (`NAME.sp.model`) and the
    /// sidecar (`MODEL.json`) go beside it.
    #[arg(long)]
    pub output: PathBuf,
}

/// What `train-lm` did.
#[derive(Debug, Clone)]
pub struct TrainLmReport {
    /// Documents read (with text).
    pub docs: u64,
    /// Bytes of normalised text.
    pub bytes: u64,
    /// The SentencePiece model written.
    pub sentencepiece: PathBuf,
    /// Its training sample.
    pub sp_sample: SpSample,
    /// N-gram training summary.
    pub summary: TrainSummary,
}

/// Where the SentencePiece model of `output` goes: `models/en.bin` -> `models/en.sp.model`.
pub fn sentencepiece_path_for(output: &Path) -> PathBuf {
    let name = crate::doc::file_name(output);
    let stem = name.strip_suffix(".bin").unwrap_or(&name);
    output.with_file_name(format!("{stem}.sp.model"))
}

/// Calls `f` with the text of every training document, at most `max_docs` of them: through
/// the `wikipedia` reader with `lead_only` when asked, else as the other training commands
/// read their inputs. Returns false from `f` to stop.
pub fn for_each_training_text(
    inputs: &[PathBuf],
    reader: Option<&str>,
    lead_only: bool,
    f: &mut dyn FnMut(&str) -> bool,
) -> Result<()> {
    if !lead_only {
        training::for_each_training_document(inputs, reader, None, &mut |doc| Ok(f(&doc.text)))?;
        return Ok(());
    }
    ensure!(
        reader.is_none_or(|r| r == "wikipedia"),
        "--lead-only reads MediaWiki dumps with the `wikipedia` reader"
    );
    let mut options = toml::Table::new();
    options.insert("lead_only".into(), toml::Value::Boolean(true));
    let wiki = crate::sources::build_reader("wikipedia", &options)?;
    let names: Vec<String> = inputs
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    for file in training::training_files(&names)? {
        for rec in wiki.read(&file, "wikipedia")? {
            match rec {
                Ok(doc) if doc.meta_str("wiki_skip").is_none() && !doc.text.is_empty() => {
                    if !f(&doc.text) {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(e) if e.fatal => bail!("{}: {e}", file.display()),
                Err(_) => {}
            }
        }
    }
    Ok(())
}

/// Normalises every line of the training documents into `out` (one line each, empty lines
/// dropped), offering each to `sampler`; returns (documents, bytes).
fn write_normalized(
    opts: &TrainLmOptions,
    out: &Path,
    sampler: &mut LineSampler,
) -> Result<(u64, u64)> {
    let file =
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let (mut docs, mut bytes) = (0u64, 0u64);
    let mut line = String::new();
    let mut err = None;
    for_each_training_text(
        &opts.inputs,
        opts.reader.as_deref(),
        opts.lead_only,
        &mut |text| {
            let before = bytes;
            for raw in text.split('\n') {
                normalize_line(raw, &mut line);
                if line.is_empty() {
                    continue;
                }
                if let Err(e) = w
                    .write_all(line.as_bytes())
                    .and_then(|_| w.write_all(b"\n"))
                {
                    err = Some(e);
                    return false;
                }
                bytes += line.len() as u64 + 1;
                sampler.offer(docs, line.len());
            }
            if bytes > before {
                docs += 1;
            }
            opts.max_docs.is_none_or(|m| docs < m)
        },
    )?;
    if let Some(e) = err {
        return Err(e).with_context(|| format!("cannot write {}", out.display()));
    }
    w.flush()
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok((docs, bytes))
}

/// The folder holding `path` (`.` for a bare file name).
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Renames the written `tmp` files to their final names.
fn publish(files: &[(PathBuf, PathBuf)]) -> Result<()> {
    for (tmp, path) in files {
        std::fs::rename(tmp, path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    }
    Ok(())
}

/// `datamill train-lm`: normalises the text, trains the SentencePiece model on it, counts the
/// n-grams of its pieces with bounded memory and writes the model, the SentencePiece model,
/// the sidecar and (with `arpa`) ARPA text. Nothing is renamed into place before all is
/// written.
pub fn train_lm(opts: &TrainLmOptions) -> Result<TrainLmReport> {
    let dir = folder_of(&opts.output);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let work = tempfile::Builder::new()
        .prefix(".train-lm.")
        .tempdir_in(&dir)
        .with_context(|| format!("cannot create a work folder in {}", dir.display()))?;
    let text = work.path().join("normalized.txt");
    let config = TrainConfig {
        vocab_size: opts.vocab_size,
        character_coverage: 0.9995,
        ..Default::default()
    };
    let sp_max_bytes = opts.sp_max_bytes.unwrap_or(sp_sample::DEFAULT_MAX_BYTES);
    let mut sampler = LineSampler::new(opts.sp_docs, sp_max_bytes, config.max_line_bytes);
    let (docs, bytes) = write_normalized(opts, &text, &mut sampler)?;
    if docs == 0 {
        bail!(
            "no text read from {} (nothing to train on)",
            opts.inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    tracing::info!("{docs} documents, {bytes} bytes of normalised text");

    // The language's SentencePiece model, on a bounded sample of the first `sp_docs`
    // documents' lines.
    let sample_path = work.path().join("sp-sample.txt");
    let sample = sampler.write_sample(&text, &sample_path)?;
    tracing::info!(
        "SentencePiece sample: {} of {} lines, {} of {} bytes",
        sample.lines,
        sample.lines_offered,
        sample.bytes,
        sample.bytes_offered
    );
    let sp_path = sentencepiece_path_for(&opts.output);
    let config = TrainConfig {
        sources: vec![crate::tokenizer::corpus::SourceConfig {
            name: "normalized".into(),
            paths: vec![sample_path.display().to_string()],
            weight: 1,
            max_bytes: 0,
        }],
        ..config
    };
    // Its memory is free again before the n-gram sort buffers fill.
    let (proto, _) =
        train_tokenizer_then_free(&config).context("cannot train the SentencePiece model")?;
    let _ = std::fs::remove_file(&sample_path);
    tracing::info!(
        "SentencePiece model trained; resident memory {} MB",
        crate::stats::resident_bytes().unwrap_or(0) >> 20
    );
    let sp_tmp = temp_path(&sp_path);
    write_model(&proto, &sp_tmp)?;
    let tokenizer = Tokenizer::load(&sp_tmp)?;
    let pieces: Vec<String> = (0..tokenizer.vocab_size() as u32)
        .map(|id| tokenizer.piece(id).unwrap_or("<unk>").to_string())
        .collect();
    let hashes: Vec<u64> = pieces.iter().map(|p| token_hash(p)).collect();
    let bos = tokenizer
        .bos_id()
        .context("the SentencePiece model has no <s>")?;
    let eos = tokenizer
        .eos_id()
        .context("the SentencePiece model has no </s>")?;
    let unk = tokenizer.unk_id();

    // Count n-grams of pieces, line by line.
    let mut counter = NgramCounter::new(opts.order, opts.memory, work.path(), bos, eos)?;
    let input = std::fs::File::open(&text)?;
    let mut enc = tokenizer.encoder();
    let mut ids = Vec::new();
    for line in BufReader::with_capacity(1 << 20, input).lines() {
        let line = line.with_context(|| format!("cannot read {}", text.display()))?;
        ids.clear();
        enc.encode_into(&line, &mut ids);
        ensure!(
            !ids.contains(&unk),
            "the SentencePiece model gave <unk> (it must have byte fallback)"
        );
        counter.add_sentence(&ids)?;
    }
    drop(enc);
    crate::stats::return_freed_memory();
    let _ = std::fs::remove_file(&text);
    tracing::info!(
        "n-grams counted; resident memory {} MB",
        crate::stats::resident_bytes().unwrap_or(0) >> 20
    );
    let est = counter.estimate(&opts.prune)?;

    let lm_tmp = temp_path(&opts.output);
    let records = (opts.memory / external::REC_BYTES as u64).max(1024) as usize;
    crate::stats::return_freed_memory();
    tracing::info!(
        "model estimated; resident memory {} MB",
        crate::stats::resident_bytes().unwrap_or(0) >> 20
    );
    output::write_binary(&est, &hashes, &lm_tmp, work.path(), records)?;
    let sp_name = crate::doc::file_name(&sp_path);
    let sidecar = LmSidecar {
        format: "datamill-kn-lm".into(),
        tokenizer: TOKENIZER.into(),
        sentencepiece: Some(sp_name.clone()),
        language: Some(opts.language.clone()),
        inputs: opts
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        training: Some(serde_json::to_value(&est.summary)?),
        sentencepiece_sample: Some(sample.clone()),
        cutoffs: BTreeMap::new(),
    };
    let mut files = vec![(sp_tmp, sp_path.clone()), (lm_tmp, opts.output.clone())];
    if let Some(arpa) = &opts.arpa {
        let arpa_tmp = temp_path(arpa);
        output::write_arpa(&est, &pieces, &arpa_tmp)?;
        files.push((arpa_tmp, arpa.clone()));
    }
    publish(&files)?;
    sidecar.save(&opts.output)?;
    if let Some(arpa) = &opts.arpa {
        let sp = if folder_of(arpa).canonicalize().ok() == dir.canonicalize().ok() {
            sp_name
        } else {
            std::fs::canonicalize(&sp_path)
                .unwrap_or(sp_path.clone())
                .display()
                .to_string()
        };
        LmSidecar {
            format: "arpa".into(),
            sentencepiece: Some(sp),
            ..sidecar.clone()
        }
        .save(arpa)?;
    }
    Ok(TrainLmReport {
        docs,
        bytes,
        sentencepiece: sp_path,
        sp_sample: sample,
        summary: est.summary,
    })
}

/// Parses a memory size: bytes, or a number with K, M, G or T (powers of 1024).
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], t[i..].trim_end_matches(['B', 'b'])),
        None => (t, ""),
    };
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("bad memory size `{s}` (e.g. 256M, 2G)")),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad memory size `{s}` (e.g. 256M, 2G)"))?;
    if v.is_nan() || v <= 0.0 {
        return Err(format!("memory size must be positive, got `{s}`"));
    }
    Ok((v * (1u64 << shift) as f64) as u64)
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

/// Keeps only the documents fastText language ID gives `lang` with at least `threshold`
/// (as the CommonCrawl pipeline's `langid` stage does before the perplexity stages).
pub struct LanguageGate {
    /// The fastText model (lid.176).
    pub model: crate::filter::langid::LidModel,
    /// Lowest probability kept (CCNet: 0.5).
    pub threshold: f32,
}

/// `datamill lm-cutoffs`: scores every document of a sample, takes the perplexity percentiles
/// and writes them as the cutoffs of `lang` into the model's sidecar. With `language_field`,
/// JSONL documents whose field names another language are skipped; with `gate`, documents
/// that language ID does not give `lang` are skipped.
pub fn compute_cutoffs(
    model_path: &Path,
    lang: &str,
    inputs: &[PathBuf],
    reader: Option<&str>,
    language_field: Option<&str>,
    gate: Option<&LanguageGate>,
    percentiles: [f64; 2],
) -> Result<Cutoffs> {
    ensure!(
        percentiles[0] < percentiles[1],
        "percentiles must increase, got {percentiles:?}"
    );
    let scorer = PieceScorer::load(model_path)?;
    let mut sidecar = LmSidecar::load(model_path)?;
    let mut pps = Vec::new();
    let filter = language_field.map(|f| (f, lang));
    training::for_each_training_text(inputs, reader, filter, &mut |text| {
        if let Some(g) = gate {
            match g.model.predict(text) {
                Some(p) if p.language == lang && p.score >= g.threshold => {}
                _ => return,
            }
        }
        if let Some(pp) = scorer.score_text(text).perplexity() {
            pps.push(round_perplexity(pp));
        }
    })?;
    ensure!(!pps.is_empty(), "no document with text in the sample");
    pps.sort_by(f64::total_cmp);
    // Perplexities have one decimal; two keep the cutoffs exact through the sidecar's JSON.
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    let cut = Cutoffs {
        head: round2(percentile(&pps, percentiles[0])),
        middle: round2(percentile(&pps, percentiles[1])),
        percentiles,
        docs: pps.len() as u64,
    };
    sidecar.cutoffs.insert(lang.to_string(), cut);
    sidecar.save(model_path)?;
    Ok(cut)
}
